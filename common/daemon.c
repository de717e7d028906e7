/*
 * Start-up helpers shared by writerd, gatewayd and tinyvexctl: where the
 * state lives, the addresses of its sockets, who to run as, and the
 * privilege drop of the fixed start-up order.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "util.h"

char *
path_join(const char *dir, const char *name)
{
	struct buf	 b;

	buf_init(&b);
	buf_printf(&b, "%s/%s", dir, name);
	return buf_steal(&b, NULL);
}

char *
statedir_path(const char *dir)
{
	const char	*home, *xdg;
	struct buf	 b;

	if (dir != NULL)
		return xstrdup(dir);
	if (geteuid() == 0)
		return xstrdup(TINYVEX_ROOT_STATEDIR);
	buf_init(&b);
	if ((xdg = getenv("XDG_STATE_HOME")) != NULL && xdg[0] == '/')
		buf_printf(&b, "%s/tinyvex", xdg);
	else if ((home = getenv("HOME")) != NULL && home[0] == '/')
		buf_printf(&b, "%s/.local/state/tinyvex", home);
	else
		buf_printf(&b, "/tmp/tinyvex-%d", (int)geteuid());
	return buf_steal(&b, NULL);
}

int
statedir_make(const char *path, mode_t mode)
{
	char	*p, *s;

	p = xstrdup(path);
	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) == -1 && errno != EEXIST) {
			log_warn("mkdir %s", p);
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	if (mkdir(path, mode) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", path);
		return -1;
	}
	return 0;
}

int
unix_addr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlcpy_tv(sun->sun_path, path, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
unix_answers(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd, rc;

	if (unix_addr(&sun, path) == -1 ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return rc;
}

int
user_lookup(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd	*pw;

	if ((pw = getpwnam(name)) == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

void
drop_privileges(uid_t uid, gid_t gid)
{
	if (setgroups(1, &gid) == -1)
		fatal("setgroups");
	if (setresgid(gid, gid, gid) == -1)
		fatal("setresgid");
	if (setresuid(uid, uid, uid) == -1)
		fatal("setresuid");
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		fatalx("could regain root after dropping privileges");
}

void
signals_unblock(void)
{
	sigset_t	 none;

	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) == -1)
		fatal("sigprocmask");
}
