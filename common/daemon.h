/*
 * Start-up helpers shared by the daemons: the default state directory,
 * the user to run as, and dropping privileges.
 */
#ifndef TINYVEX_DAEMON_H
#define TINYVEX_DAEMON_H

#include <sys/types.h>
#include <sys/un.h>

#define TINYVEX_ROOT_STATEDIR	"/var/lib/tinyvex"
#define TINYVEX_DB_NAME		"tinyvex.db"
#define TINYVEX_WRITER_SOCK	"writer.sock"
#define TINYVEX_CONTROL_SOCK	"control.sock"

/*
 * The state directory: dir if given, else /var/lib/tinyvex for root, else
 * $XDG_STATE_HOME/tinyvex or ~/.local/state/tinyvex.  Returns a new
 * string.
 */
char	*statedir_path(const char *dir);
/* Create it (and missing parents) with mode; 0 or -1. */
int	 statedir_make(const char *path, mode_t mode);
/* path/name in a new string. */
char	*path_join(const char *dir, const char *name);
/*
 * The address of the Unix socket at path: 0, or -1 (errno ENAMETOOLONG)
 * when path does not fit in it.
 */
int	 unix_addr(struct sockaddr_un *sun, const char *path);
/* 1 when a daemon answers on the Unix socket at path, else 0. */
int	 unix_answers(const char *path);
/*
 * Unblock every signal.  A blocked mask survives exec: a daemon started by
 * a thread that blocks signals (as some runtimes' process launchers do)
 * would otherwise never see the SIGTERM its signal events wait for.
 */
void	 signals_unblock(void);
/* Look up a user: 0 or -1. */
int	 user_lookup(const char *name, uid_t *uid, gid_t *gid);
/*
 * Become uid/gid for good (setgroups, setresgid, setresuid) and check
 * that root cannot be regained.  Exits through fatal on failure.
 */
void	 drop_privileges(uid_t uid, gid_t gid);

#endif
