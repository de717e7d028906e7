/*
 * The gateway's sandbox, the last step of start-up after the privilege
 * drop.  The gateway faces the network; once it runs, all it needs from
 * the file system is the state directory: read the database and its WAL,
 * read and write -shm, connect to writer.sock.  On Linux, Landlock takes
 * away everything else: no other file can be opened, created, removed or
 * executed, no TCP socket bound or connected (the listener is bound
 * already), no signal sent and no abstract socket reached outside the
 * process.  With static_dir, the files beneath it may be read as well
 * (not its directories listed: static.c opens them O_PATH).  The ABI
 * version decides which of these the kernel can enforce.  no_new_privs
 * is set in every case.
 *
 * A kernel without Landlock is logged ("landlock unavailable: ...") and
 * the gateway goes on.  A gateway started before its state directory
 * exists restricts itself once the directory appears, before it opens the
 * database (query_open_store, which the gateway polls, calls it again).
 */
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "gatewayd.h"
#include "log.h"

#if defined(__linux__) && defined(__NR_landlock_create_ruleset) && \
    defined(__NR_landlock_add_rule) && defined(__NR_landlock_restrict_self)

#include <linux/landlock.h>

/* Rights of later ABIs than the headers may know. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER		(1ULL << 13)	/* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE		(1ULL << 14)	/* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV		(1ULL << 15)	/* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP		(1ULL << 0)	/* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP		(1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET	(1ULL << 0)	/* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL			(1ULL << 1)
#endif
#define SANDBOX_FS_ABI1				((1ULL << 13) - 1)

/*
 * The leak checker of AddressSanitizer reads /proc (the process's maps and
 * threads) when the process exits: builds with it may read /proc too, or
 * every exit would fail the check.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_LEAK_CHECKER	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define SANDBOX_LEAK_CHECKER	1
#endif
#endif

/*
 * struct landlock_ruleset_attr as of ABI 6; the kernel is given only the
 * part its ABI knows.
 */
struct sandbox_ruleset_attr {
	uint64_t	 handled_access_fs;
	uint64_t	 handled_access_net;	/* ABI 4 */
	uint64_t	 scoped;		/* ABI 6 */
};

/* Every file system right the kernel of this ABI can enforce. */
static uint64_t
fs_handled(int abi)
{
	uint64_t	 r = SANDBOX_FS_ABI1;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/*
 * Beneath the state directory: read files, write them (only -shm is
 * writable by the gateway's user; the modes keep the database and the
 * WAL read-only), and truncate them (SQLite resets -shm when it is the
 * first to open it).  Nothing may be created, removed or listed.
 */
static uint64_t
fs_allowed(int abi)
{
	uint64_t	 r = LANDLOCK_ACCESS_FS_READ_FILE |
			    LANDLOCK_ACCESS_FS_WRITE_FILE;

	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return r;
}

/* Allow rights beneath the directory open as fd; -1 with errno. */
static int
allow_beneath_fd(int rfd, int fd, uint64_t rights)
{
	struct landlock_path_beneath_attr	 pb;

	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = rights;
	pb.parent_fd = fd;
	return (int)syscall(__NR_landlock_add_rule, rfd,
	    LANDLOCK_RULE_PATH_BENEATH, &pb, 0) == -1 ? -1 : 0;
}

/* Allow rights beneath path; -1 with errno when that fails. */
static int
allow_beneath(int rfd, const char *path, uint64_t rights)
{
	int	 fd, rc, saved;

	if ((fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = allow_beneath_fd(rfd, fd, rights);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* Landlock is off in this kernel: say why, go on. */
static int
unavailable(struct gateway *gw, int err)
{
	gw->sandbox_pending = 0;
	log_info("landlock unavailable: %s", err == ENOSYS ?
	    "not built into this kernel" : err == EOPNOTSUPP ?
	    "disabled in this kernel" : strerror(err));
	return 0;
}

int
sandbox_restrict(struct gateway *gw)
{
	struct sandbox_ruleset_attr	 attr;
	size_t				 attrlen;
	long				 abi;
	int				 rfd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	abi = syscall(__NR_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return unavailable(gw, errno);
	if (access(gw->statedir, F_OK) == -1) {
		if (errno != ENOENT)
			fatal("landlock: %s", gw->statedir);
		if (!gw->sandbox_pending)
			log_info("landlock: waiting for the state directory "
			    "%s", gw->statedir);
		gw->sandbox_pending = 1;
		return 1;
	}
	gw->sandbox_pending = 0;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = fs_handled((int)abi);
	attrlen = sizeof(attr.handled_access_fs);
	if (abi >= 4) {
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP |
		    LANDLOCK_ACCESS_NET_CONNECT_TCP;
		attrlen += sizeof(attr.handled_access_net);
	}
	if (abi >= 6) {
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET |
		    LANDLOCK_SCOPE_SIGNAL;
		attrlen += sizeof(attr.scoped);
	}
	rfd = (int)syscall(__NR_landlock_create_ruleset, &attr, attrlen, 0);
	if (rfd == -1) {
		if (errno == ENOSYS || errno == EOPNOTSUPP)
			return unavailable(gw, errno);
		fatal("landlock_create_ruleset");
	}
	if (allow_beneath(rfd, gw->statedir, fs_allowed((int)abi)) == -1)
		fatal("landlock: %s", gw->statedir);
	if (gw->static_fd != -1 && allow_beneath_fd(rfd, gw->static_fd,
	    LANDLOCK_ACCESS_FS_READ_FILE) == -1)
		fatal("landlock: %s", gw->conf.static_dir);
#ifdef SANDBOX_LEAK_CHECKER
	if (allow_beneath(rfd, "/proc", LANDLOCK_ACCESS_FS_READ_FILE |
	    LANDLOCK_ACCESS_FS_READ_DIR) == -1)
		fatal("landlock: /proc");
#endif
	if (syscall(__NR_landlock_restrict_self, rfd, 0) == -1)
		fatal("landlock_restrict_self");
	close(rfd);
	log_info("landlock: restricted (ABI %ld) to %s%s%s", abi, gw->statedir,
	    gw->static_fd != -1 ? " and reading " : "",
	    gw->static_fd != -1 ? gw->conf.static_dir : "");
	return 0;
}

#else /* no Landlock */

int
sandbox_restrict(struct gateway *gw)
{
#ifdef PR_SET_NO_NEW_PRIVS
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
#endif
	gw->sandbox_pending = 0;
	log_info("landlock unavailable: not supported on this system");
	return 0;
}

#endif
