/*
 * writerd: the single writer daemon.  Start-up order: parse flags and the
 * configuration file; open the database, writer.sock and control.sock
 * (all that needs privilege); drop to the unprivileged user; set up
 * signal events; run the event loop.  It never forks: a supervisor keeps
 * it in the foreground.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "fault.h"
#include "log.h"
#include "writerd.h"

#define WRITERD_TICK_US		(250 * 1000)	/* housekeeping timer */

static void
usage(void)
{
	fprintf(stderr, "usage: writerd [-dv] [-f CONFIG] [-r DIR] "
	    "[-s SCHEMA] [-u USER]\n");
	exit(1);
}

static void
stop_check(evutil_socket_t fd, short ev, void *arg)
{
	struct writerd	*wd = arg;

	(void)fd;
	(void)ev;
	event_base_loopexit(wd->base, NULL);
}

void
writerd_stop(struct writerd *wd)
{
	struct timeval	 tv = { 0, 200 * 1000 };

	if (wd->stopping)
		return;
	wd->stopping = 1;
	log_info("stopping");
	/* A GC run stops between steps; the next run resumes its walk. */
	gc_abort(wd, "writerd is stopping");
	/* Everything received is run and answered before the links close. */
	while (!TAILQ_EMPTY(&wd->queue))
		commit_run(wd);
	if (wd->gw_listener != NULL)
		listen_disable(wd->gw_listener);
	/* Give the answers a moment to leave, then stop the loop. */
	event_base_once(wd->base, -1, EV_TIMEOUT, stop_check, wd, &tv);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct writerd	*wd = arg;
	struct tv_error	 err;

	(void)ev;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		writerd_stop(wd);
		break;
	case SIGHUP:
		log_reopen();
		log_info("SIGHUP: reloading");
		memset(&err, 0, sizeof(err));
		/* A schema that cannot be applied changes nothing. */
		if (wd->schema_path != NULL &&
		    schema_apply_file(wd, wd->schema_path, &err) == 0)
			log_info("SIGHUP: schema %s applied, catalog "
			    "version %lld", wd->schema_path,
			    (long long)wd->catalog_version);
		break;
	}
}

/* Checkpoints, periodic GC and the mutation rate. */
static void
on_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct writerd	*wd = arg;
	int64_t		 now = mono_us();
	int		 nlog = 0, nckpt = 0;
	char		 err[128], wal[4096];
	struct stat	 sb;

	(void)fd;
	(void)ev;
	snprintf(wal, sizeof(wal), "%s-wal", wd->dbpath);
	sb.st_size = 0;
	if (now - wd->stats.rate_at >= 1000000) {
		wd->stats.rate = (double)(wd->stats.mutations -
		    wd->stats.rate_base) * 1e6 / (double)(now -
		    wd->stats.rate_at);
		wd->stats.rate_base = wd->stats.mutations;
		wd->stats.rate_at = now;
	}
	/*
	 * Checkpoint every checkpoint_interval without waiting for readers
	 * (a WAL past journal_size_limit gets one that waits: see gc.c).
	 */
	if (stat(wal, &sb) == 0 && sb.st_size > wd->stats.wal_peak_bytes)
		wd->stats.wal_peak_bytes = sb.st_size;
	if (now - wd->last_checkpoint_us >= wd->conf.checkpoint_interval_us) {
		wd->last_checkpoint_us = now;
		gc_checkpoint(wd, 0, &nlog, &nckpt);
	}
	/* Start a GC run; its steps follow on the event loop. */
	if (wd->conf.gc_interval_us > 0 && wd->gc.phase == GC_IDLE &&
	    now - wd->last_gc_us >= wd->conf.gc_interval_us) {
		wd->last_gc_us = now;
		if (gc_start(wd, wd->conf.retention_us, 0, 0, err,
		    sizeof(err)) == -1)
			log_warnx("gc: %s", err);
	}
}

/*
 * The database files: the gateways' group may read the database and the
 * WAL, and must be able to write -shm (DESIGN §12).
 */
static void
set_db_modes(struct writerd *wd, uid_t uid)
{
	static const struct {
		const char	*suffix;
		mode_t		 mode;
	} files[] = { { "", 0640 }, { "-wal", 0640 }, { "-shm", 0660 } };
	char	 p[4096];
	size_t	 i;

	for (i = 0; i < nitems(files); i++) {
		snprintf(p, sizeof(p), "%s%s", wd->dbpath, files[i].suffix);
		if (geteuid() == 0 && chown(p, uid, wd->gw_gid) == -1)
			log_warn("chown %s", p);
		if (chmod(p, files[i].mode) == -1)
			log_warn("chmod %s", p);
	}
}

int
main(int argc, char *argv[])
{
	struct writerd		 wd;
	struct tv_error		 terr;
	char			 err[512], *user = NULL, *dir = NULL, *p;
	int			 ch, debug = 0, verbose = 0, i;
	int			 sigs[4] = { SIGTERM, SIGINT, SIGHUP, 0 };
	uid_t			 uid = geteuid();
	gid_t			 gid = getegid();
	struct timeval		 tick = { 0, WRITERD_TICK_US };

	signals_unblock();
	writerd_init(&wd);
	while ((ch = getopt(argc, argv, "df:r:s:u:v")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			wd.conf_path = optarg;
			break;
		case 'r':
			dir = optarg;
			break;
		case 's':
			wd.schema_path = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("writerd", debug, verbose);
	/* A testing aid; before anything touches SQLite. */
	if (fault_init() == -1)
		fatalx("cannot set up storage fault injection");
	if (wd.conf_path != NULL &&
	    config_load(&wd.conf, wd.conf_path, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (user != NULL) {
		if (geteuid() != 0)
			fatalx("-u needs root");
		if (user_lookup(user, &uid, &gid) == -1)
			fatalx("unknown user %s", user);
	}
	wd.gw_uid = uid;
	wd.gw_gid = gid;
	if (wd.conf.gateway_user != NULL &&
	    user_lookup(wd.conf.gateway_user, &wd.gw_uid, &wd.gw_gid) == -1)
		fatalx("unknown gateway_user %s", wd.conf.gateway_user);
	signal(SIGPIPE, SIG_IGN);
	if (writerd_setup(&wd, dir) == -1)
		fatalx("cannot set up");

	/* Everything that needs privilege. */
	/* Another writerd here: refuse before touching anything. */
	for (i = 0; i < 2; i++) {
		p = path_join(wd.statedir, i == 0 ? TINYVEX_WRITER_SOCK :
		    TINYVEX_CONTROL_SOCK);
		if (unix_answers(p))
			fatalx("%s: another daemon is answering on it", p);
		free(p);
	}
	if (statedir_make(wd.statedir, 0750) == -1)
		fatalx("cannot create state directory %s", wd.statedir);
	if (geteuid() == 0 && user != NULL &&
	    chown(wd.statedir, uid, wd.gw_gid) == -1)
		fatal("chown %s", wd.statedir);
	/* Also when it existed: the gateways' group must get in. */
	if (geteuid() == 0 && user != NULL && chmod(wd.statedir, 0750) == -1)
		fatal("chmod %s", wd.statedir);
	if (writerd_open(&wd, err, sizeof(err)) == -1)
		fatalx("%s", err);
	set_db_modes(&wd, uid);
	if (wd.schema_path != NULL) {
		memset(&terr, 0, sizeof(terr));
		if (schema_apply_file(&wd, wd.schema_path, &terr) == -1)
			fatalx("schema: %s", terr.message);
	}
	if (writerd_listen(&wd) == -1)
		fatalx("cannot listen");
	p = path_join(wd.statedir, TINYVEX_CONTROL_SOCK);
	if (geteuid() == 0 && user != NULL && chown(p, uid, gid) == -1)
		fatal("chown %s", p);
	free(p);

	if (user != NULL)
		drop_privileges(uid, gid);

	for (i = 0; sigs[i] != 0; i++) {
		wd.sig_ev[i] = evsignal_new(wd.base, sigs[i], on_signal, &wd);
		evsignal_add(wd.sig_ev[i], NULL);
	}
	wd.timer_ev = event_new(wd.base, -1, EV_PERSIST, on_tick, &wd);
	evtimer_add(wd.timer_ev, &tick);
	wd.last_checkpoint_us = wd.last_gc_us = mono_us();
	log_info("started: database %s, ts %lld", wd.dbpath,
	    (long long)wd.max_ts);

	event_base_dispatch(wd.base);

	writerd_free(&wd);
	log_info("stopped");
	return 0;
}
