/*
 * Setting up and tearing down writerd's process context, apart from
 * main(), so that a struct writerd can also live inside another program
 * (the writer IPC fuzz harness runs a whole writer link in-process).
 * writerd_init gives the defaults and empty lists; writerd_setup the
 * paths, the event base and the provider registry; writerd_open the database and what each
 * module prepares on it; writerd_listen writer.sock and control.sock.
 * writerd_close undoes writerd_open, each module finalizing what it
 * prepared, and writerd_free releases everything.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "writerd.h"

/* Defaults and empty lists; nothing is allocated. */
void
writerd_init(struct writerd *wd)
{
	memset(wd, 0, sizeof(*wd));
	config_defaults(&wd->conf);
	TAILQ_INIT(&wd->gateways);
	TAILQ_INIT(&wd->ctlconns);
	TAILQ_INIT(&wd->queue);
	TAILQ_INIT(&wd->group);
	wd->gw_uid = geteuid();
	wd->gw_gid = getegid();
}

/*
 * The state directory dir (NULL: the default), the database path in it,
 * and the event base.  Nothing is created on disk.  0, or -1 (logged).
 */
int
writerd_setup(struct writerd *wd, const char *dir)
{
	assert(wd->statedir == NULL && wd->base == NULL);
	wd->statedir = statedir_path(dir);
	wd->dbpath = path_join(wd->statedir, TINYVEX_DB_NAME);
	if ((wd->base = event_base_new()) == NULL) {
		log_warnx("event_base_new failed");
		return -1;
	}
	registry_init(wd);
	wd->stats.started_us = now_us();
	wd->stats.rate_at = mono_us();
	return 0;
}

/*
 * Open the database read-write with the configured options, then the
 * write path (commit.c) and GC (gc.c).  0, or -1 with err; writerd_close
 * releases what was made either way.
 */
int
writerd_open(struct writerd *wd, char *err, size_t errlen)
{
	struct store_options	 so;

	assert(wd->st == NULL && wd->base != NULL && wd->dbpath != NULL);
	memset(&so, 0, sizeof(so));
	so.synchronous_full = wd->conf.synchronous_full;
	so.journal_size_limit = wd->conf.journal_size_limit;
	if ((wd->st = store_open(wd->dbpath, STORE_RW, &so, err, errlen)) ==
	    NULL)
		return -1;
	if (commit_open(wd) == -1 || gc_init(wd) == -1) {
		snprintf(err, errlen, "cannot prepare the write path");
		return -1;
	}
	return 0;
}

/*
 * Finalize every module's statements, checkpoint the WAL into the
 * database file and close it.  Nothing may be queued.
 */
void
writerd_close(struct writerd *wd)
{
	if (wd->st == NULL)
		return;
	gc_free(wd);
	commit_close(wd);
	sqlite3_wal_checkpoint_v2(wd->st->db, NULL,
	    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	store_close(wd->st);
	wd->st = NULL;
}

/* writer.sock and control.sock in the state directory.  0 or -1. */
int
writerd_listen(struct writerd *wd)
{
	char	*p;
	int	 rc;

	p = path_join(wd->statedir, TINYVEX_WRITER_SOCK);
	if ((rc = notify_listen(wd, p)) == -1)
		log_warnx("cannot listen on %s", p);
	free(p);
	if (rc == -1)
		return -1;
	p = path_join(wd->statedir, TINYVEX_CONTROL_SOCK);
	if ((rc = control_listen(wd, p)) == -1)
		log_warnx("cannot listen on %s", p);
	free(p);
	return rc;
}

/* Remove the socket at name in the state directory. */
static void
sock_unlink(struct writerd *wd, const char *name)
{
	char	*p;

	p = path_join(wd->statedir, name);
	unlink(p);
	free(p);
}

/* Close every link and socket, the database, and free it all. */
void
writerd_free(struct writerd *wd)
{
	size_t	 i;

	if (wd->ctl_listener != NULL)
		sock_unlink(wd, TINYVEX_CONTROL_SOCK);
	if (wd->gw_listener != NULL)
		sock_unlink(wd, TINYVEX_WRITER_SOCK);
	control_close_all(wd);
	notify_close_all(wd);
	if (wd->base != NULL)
		registry_free(wd);
	for (i = 0; i < nitems(wd->sig_ev); i++)
		if (wd->sig_ev[i] != NULL)
			event_free(wd->sig_ev[i]);
	if (wd->timer_ev != NULL)
		event_free(wd->timer_ev);
	writerd_close(wd);
	schema_free(wd->schema);
	wd->schema = NULL;
	if (wd->base != NULL)
		event_base_free(wd->base);
	config_free(&wd->conf);
	free(wd->dbpath);
	free(wd->statedir);
	memset(wd, 0, sizeof(*wd));
}
