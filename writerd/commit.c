/*
 * Group commit.  Every mutation waiting on the gateway links is taken into
 * one write transaction; each runs with its own ts (max(now, last + 1))
 * and its own success or failure; the transaction commits once; then
 * every gateway is sent the commit notices, and the gateways that asked
 * are sent the outcomes.  A mutation that fails leaves nothing behind:
 * the group runs without savepoints, and should a mutation fail after it
 * wrote, the group is rolled back and run again with each mutation in its
 * own savepoint.  Idempotent requests are looked up first and answered
 * from their record without writing.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "proto/ipc.h"
#include "udf.h"
#include "writerd.h"

/*
 * How long a group waits for the write lock before it is answered
 * Unavailable.  writerd is the only writer, so the lock is busy only while
 * something outside holds it; the event loop must not stall on that.
 */
#define COMMIT_BUSY_WAIT_MS	250

enum { SP_BEGIN, SP_RELEASE, SP_UNDO };

static int
step_stmt(struct writerd *wd, sqlite3_stmt *s)
{
	int	 rc;

	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_warnx("commit: %s", sqlite3_errmsg(wd->st->db));
		return -1;
	}
	return 0;
}

static void
commit_event(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	commit_run(arg);
}

/*
 * Prepare the write path on the open database: the write context, the
 * idempotency and savepoint statements, the group commit event, and the
 * newest ts and catalog version from globals.  0, or -1 (logged); either
 * way commit_close releases what was made.
 */
int
commit_open(struct writerd *wd)
{
	static const char *sp_sql[3] = {
		"SAVEPOINT mutation", "RELEASE mutation",
		"ROLLBACK TO mutation",
	};
	int	 i;

	assert(wd->st != NULL && wd->base != NULL);
	if (wctx_init(&wd->wctx, wd->st, &wd->conf) == -1)
		return -1;
	if ((wd->commit_ev = event_new(wd->base, -1, 0, commit_event, wd)) ==
	    NULL)
		return -1;
	if (sqlite3_prepare_v3(wd->st->db, "SELECT outcome FROM idempotency"
	    " WHERE session_id = ?1 AND request_id = ?2", -1,
	    SQLITE_PREPARE_PERSISTENT, &wd->idem_get, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(wd->st->db, "INSERT OR REPLACE INTO idempotency"
	    "(session_id, request_id, ts, outcome) VALUES (?1, ?2, ?3, ?4)",
	    -1, SQLITE_PREPARE_PERSISTENT, &wd->idem_put, NULL) != SQLITE_OK)
		goto fail;
	for (i = 0; i < 3; i++)
		if (sqlite3_prepare_v3(wd->st->db, sp_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &wd->sp[i], NULL) != SQLITE_OK)
			goto fail;
	if (store_global_get_i64(wd->st, GLOBAL_MAX_TS, &wd->max_ts) == -1 ||
	    store_global_get_i64(wd->st, GLOBAL_CATALOG_VERSION,
	    &wd->catalog_version) == -1)
		return -1;
	return 0;
fail:
	log_warnx("%s: %s", __func__, sqlite3_errmsg(wd->st->db));
	return -1;
}

/* Release what commit_open made; nothing may be queued. */
void
commit_close(struct writerd *wd)
{
	size_t	 i;

	assert(TAILQ_EMPTY(&wd->queue) && TAILQ_EMPTY(&wd->group));
	wctx_free(&wd->wctx);
	sqlite3_finalize(wd->idem_get);
	sqlite3_finalize(wd->idem_put);
	wd->idem_get = wd->idem_put = NULL;
	for (i = 0; i < nitems(wd->sp); i++) {
		sqlite3_finalize(wd->sp[i]);
		wd->sp[i] = NULL;
	}
	if (wd->commit_ev != NULL)
		event_free(wd->commit_ev);
	wd->commit_ev = NULL;
}

void
commit_schedule(struct writerd *wd)
{
	if (!TAILQ_EMPTY(&wd->queue))
		event_active(wd->commit_ev, EV_TIMEOUT, 0);
}

/* The ts of the next commit: now, or one past the newest. */
static int64_t
next_ts(const struct writerd *wd)
{
	int64_t	 ts = now_us();

	return ts > wd->max_ts ? ts : wd->max_ts + 1;
}

/*
 * Begin the write transaction of a commit, waiting at most
 * COMMIT_BUSY_WAIT_MS for the lock, and reload a catalog left stale by a
 * failed commit.  0, or -1 (the transaction is not open).
 */
static int
commit_begin(struct writerd *wd)
{
	int	 rc;

	/* A rollback that failed (out of memory) left a transaction open. */
	if (!sqlite3_get_autocommit(wd->st->db))
		store_exec(wd->st, "ROLLBACK");
	sqlite3_busy_timeout(wd->st->db, COMMIT_BUSY_WAIT_MS);
	rc = store_exec(wd->st, "BEGIN IMMEDIATE");
	sqlite3_busy_timeout(wd->st->db, STORE_BUSY_TIMEOUT_MS);
	if (rc == -1)
		return -1;
	wctx_forget(&wd->wctx);
	if (wd->catalog_stale) {
		if (store_load_catalog(wd->st) == -1) {
			store_exec(wd->st, "ROLLBACK");
			return -1;
		}
		wd->catalog_stale = 0;
		wd->catalog_version = wd->st->catalog->version;
	}
	return 0;
}

/*
 * Write the table counts the commit changed, record the newest ts when it
 * moved past prev_ts, and commit.  0 or -1.
 */
static int
commit_end(struct writerd *wd, int64_t prev_ts)
{
	if (wctx_flush(&wd->wctx) == -1)
		return -1;
	if (wd->max_ts != prev_ts &&
	    store_global_set_i64(wd->st, GLOBAL_MAX_TS, wd->max_ts) == -1)
		return -1;
	return store_exec(wd->st, "COMMIT");
}

/*
 * Nothing of the transaction was committed: roll it back if it is still
 * open, and go back to the newest ts and the catalog before it.
 */
static void
commit_undo(struct writerd *wd, int64_t prev_ts)
{
	if (!sqlite3_get_autocommit(wd->st->db))
		store_exec(wd->st, "ROLLBACK");
	wctx_forget(&wd->wctx);
	wd->max_ts = prev_ts;
	/* A catalog change of the group is undone; so is ours, or later. */
	wd->catalog_stale = store_load_catalog(wd->st) == -1;
	wd->catalog_version = wd->st->catalog != NULL ?
	    wd->st->catalog->version : wd->catalog_version;
}

/* Outcomes that a resend with the same requestId gets back. */
static int
outcome_recorded(int code)
{
	return code == TV_OK || code == TV_VALIDATION ||
	    code == TV_NOT_FOUND || code == TV_CONFLICT;
}

/*
 * Look up the mutation's idempotency record.  1 found (outcome filled in),
 * 0 none, -1 error.
 */
static int
idem_lookup(struct writerd *wd, struct mutation *m)
{
	sqlite3_stmt	*s = wd->idem_get;
	cJSON		*o = NULL;
	const cJSON	*v;
	enum json_err	 jerr;
	int64_t		 n;
	int		 rc, ret = -1;

	sqlite3_bind_text(s, 1, m->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, m->request_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto done;
	}
	if (rc != SQLITE_ROW)
		goto done;
	o = json_parse((const char *)sqlite3_column_text(s, 0),
	    (size_t)sqlite3_column_bytes(s, 0), JSON_MAX_DEPTH, &jerr);
	if (o == NULL)
		goto done;
	if (json_get_int(json_get(o, "ts"), 0, INT64_MAX, &n))
		m->ts = n;
	if (json_get_int(json_get(o, "code"), -40000, 0, &n))
		m->err.code = (int)n;
	if (cJSON_IsString(v = json_get(o, "message")))
		strlcpy_tv(m->err.message, v->valuestring,
		    sizeof(m->err.message));
	if (cJSON_IsObject(v = json_get(o, "data"))) {
		buf_reset(&m->value);
		json_print(&m->value, v);
		if (m->value.len < sizeof(m->err.data)) {
			memcpy(m->err.data, m->value.data, m->value.len);
			m->err.data[m->value.len] = '\0';
		}
	}
	buf_reset(&m->value);
	if ((v = json_get(o, "value")) != NULL)
		json_print(&m->value, v);
	ret = 1;
done:
	if (ret == -1)
		log_warnx("%s: idempotency record unreadable", __func__);
	cJSON_Delete(o);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

static int
idem_record(struct writerd *wd, struct mutation *m)
{
	sqlite3_stmt	*s = wd->idem_put;
	struct buf	 o;
	int		 rc;

	buf_init(&o);
	buf_adds(&o, "{\"ts\":");
	buf_add_i64(&o, m->ts);
	buf_adds(&o, ",\"code\":");
	buf_add_i64(&o, m->err.code);
	if (m->err.code == TV_OK) {
		buf_adds(&o, ",\"value\":");
		buf_add(&o, m->value.data, m->value.len);
	} else {
		buf_adds(&o, ",\"message\":");
		json_print_string(&o, m->err.message, strlen(m->err.message));
		if (m->err.data[0] != '\0') {
			buf_adds(&o, ",\"data\":");
			buf_adds(&o, m->err.data);
		}
	}
	buf_addc(&o, '}');
	sqlite3_bind_text(s, 1, m->session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, m->request_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now_us());
	sqlite3_bind_text(s, 4, o.data, (int)o.len, SQLITE_STATIC);
	rc = step_stmt(wd, s);
	sqlite3_clear_bindings(s);
	buf_free(&o);
	return rc;
}

/*
 * Run one mutation, in its savepoint when sp is set.  Without one, a
 * mutation that fails must not have written anything: when it did, the
 * group is run again with savepoints.  Returns 0 when the transaction may
 * go on (the mutation succeeded or failed cleanly), 1 when it failed
 * after writing without a savepoint, -1 when the database itself failed
 * and the whole group must be rolled back.
 */
static int
run_one(struct writerd *wd, struct mutation *m, int sp)
{
	struct wctx	*w = &wd->wctx;
	cJSON		*args;
	enum json_err	 jerr;
	int64_t		 ts, changes;
	int		 rc;

	memset(&m->err, 0, sizeof(m->err));
	buf_reset(&m->value);
	buf_reset(&m->notice);
	if (m->request_key != NULL) {
		if ((rc = idem_lookup(wd, m)) == -1)
			return -1;
		if (rc == 1) {
			wd->stats.replays++;
			return 0;
		}
	}
	ts = next_ts(wd);
	m->ts = 0;
	args = json_parse(m->args, m->argslen, JSON_MAX_DEPTH, &jerr);
	if (args == NULL) {
		tv_seterr(&m->err, jerr == JSON_ERR_DEPTH ? TV_TOO_LARGE :
		    TV_VALIDATION, "args: %s", json_strerror(jerr));
		goto record;
	}
	if (sp && step_stmt(wd, wd->sp[SP_BEGIN]) == -1) {
		cJSON_Delete(args);
		return -1;
	}
	changes = sqlite3_total_changes64(wd->st->db);
	wctx_reset(w, ts);
	rc = mutate_run(w, m->udf_path, args, &m->value, &m->err);
	cJSON_Delete(args);
	if (rc == -1 && m->err.code == TV_UNAVAILABLE) {
		/*
		 * The storage failed under the mutation; SQLite may have
		 * rolled the transaction back already.  The whole group
		 * fails and nothing of it is committed.
		 */
		return -1;
	}
	if (rc == 0) {
		m->ts = ts;
		if (w->catalog_changed)
			wd->catalog_version = w->st->catalog->version;
		if (m->request_key != NULL && idem_record(wd, m) == -1)
			goto undo_fatal;
		if (sp && step_stmt(wd, wd->sp[SP_RELEASE]) == -1)
			goto undo_fatal;
		wctx_keep(w);
		wctx_notice(w, wd->max_ts, wd->catalog_version, &m->notice);
		wd->max_ts = ts;
		wd->stats.mutations_ok++;
		return 0;
	}
	if (!sp) {
		if (sqlite3_total_changes64(wd->st->db) != changes)
			return 1;
	} else if (step_stmt(wd, wd->sp[SP_UNDO]) == -1 ||
	    step_stmt(wd, wd->sp[SP_RELEASE]) == -1)
		return -1;
	if (w->catalog_changed && store_load_catalog(wd->st) == -1)
		return -1;
	if (m->err.code == TV_INTERNAL)
		log_warnx("mutation %s failed: %s", m->udf_path,
		    m->err.message);
record:
	if (m->request_key != NULL && outcome_recorded(m->err.code) &&
	    idem_record(wd, m) == -1)
		return -1;
	return 0;
undo_fatal:
	if (sp) {
		step_stmt(wd, wd->sp[SP_UNDO]);
		step_stmt(wd, wd->sp[SP_RELEASE]);
	}
	return -1;
}

/* The whole group failed to commit: nothing of it was written. */
static void
fail_group(struct writerd *wd, struct mutationq *group, int64_t prev_ts,
    const char *why)
{
	struct mutation	*m;

	commit_undo(wd, prev_ts);
	TAILQ_FOREACH(m, group, entry) {
		m->ts = 0;
		buf_reset(&m->notice);
		buf_reset(&m->value);
		tv_seterr(&m->err, TV_UNAVAILABLE, "not committed: %s", why);
	}
}

void
commit_run(struct writerd *wd)
{
	struct mutationq	*group = &wd->group;
	struct mutation		*m;
	struct gwlink		*gw;
	struct writer_stats	 stats0;
	int64_t			 prev_ts = wd->max_ts, t0;
	uint64_t		 n = 0;
	int			 failed = 0, sp = 0, rc;
	char			 why[TV_ERRMSG_MAX];

	assert(TAILQ_EMPTY(group));
	why[0] = '\0';
	while (n < (uint64_t)wd->conf.max_group_mutations &&
	    (m = TAILQ_FIRST(&wd->queue)) != NULL) {
		TAILQ_REMOVE(&wd->queue, m, entry);
		TAILQ_INSERT_TAIL(group, m, entry);
		if ((gw = notify_gw_find(wd, m->gw_id)) != NULL)
			gw->pending--;
		n++;
	}
	if (n == 0)
		return;
	t0 = mono_us();
	stats0 = wd->stats;
	/*
	 * The group runs without savepoints first: a savepoint copies every
	 * page its mutation changes that existed before it, the larger part
	 * of what a small mutation costs, and is needed only by a mutation
	 * that fails after it wrote.  Should one do so, the group is rolled
	 * back and run again, each mutation in its savepoint.  Nothing of
	 * the first run was committed or answered; the second gives each
	 * mutation a new ts (and an insert a new id).
	 */
again:
	if (commit_begin(wd) == -1) {
		fail_group(wd, group, prev_ts, sqlite3_errmsg(wd->st->db));
		goto answer;
	}
	TAILQ_FOREACH(m, group, entry) {
		wd->stats.mutations++;
		if ((rc = run_one(wd, m, sp)) == 1) {
			assert(!sp);
			commit_undo(wd, prev_ts);
			wd->stats = stats0;
			sp = 1;
			goto again;
		}
		if (rc == -1) {
			failed = 1;
			if (m->err.code == TV_UNAVAILABLE)
				strlcpy_tv(why, m->err.message, sizeof(why));
			break;
		}
	}
	if (!failed && commit_end(wd, prev_ts) == -1)
		failed = 1;
	if (failed) {
		/* Say why before the rollback changes the error message. */
		if (why[0] == '\0')
			strlcpy_tv(why, sqlite3_errmsg(wd->st->db),
			    sizeof(why));
		fail_group(wd, group, prev_ts, why);
		log_warnx("group of %" PRIu64 " mutations rolled back: %s", n,
		    why);
	} else {
		wd->stats.commits++;
		if (n > wd->stats.group_max)
			wd->stats.group_max = n;
	}
	log_debug("group commit: %" PRIu64 " mutations in %" PRId64 " us",
	    n, mono_us() - t0);
answer:
	/* Notices first, in ts order, then the outcomes. */
	TAILQ_FOREACH(m, group, entry)
		if (m->notice.len > 0)
			notify_broadcast(wd, &m->notice);
	while ((m = TAILQ_FIRST(group)) != NULL) {
		TAILQ_REMOVE(group, m, entry);
		notify_result(wd, m);
		mutation_free(m);
	}
	commit_schedule(wd);
}

/*
 * Run fn as one commit of its own, outside the mutation queue (a schema
 * change): the next ts, and when fn changed the catalog, the newest ts
 * in globals, the commit, and its notice to every gateway, as a group
 * commit does.  fn writes through wd->wctx, reset to the new ts.
 * Returns 1 committed, 0 nothing changed (rolled back), -1 nothing
 * committed, with err.
 */
int
commit_catalog(struct writerd *wd, commit_fn fn, void *arg,
    struct tv_error *err)
{
	struct buf	 notice;
	int64_t		 prev_ts = wd->max_ts;

	assert(TAILQ_EMPTY(&wd->group));
	if (commit_begin(wd) == -1)
		return tv_seterr(err, TV_UNAVAILABLE, "database busy: %s",
		    sqlite3_errmsg(wd->st->db));
	wctx_reset(&wd->wctx, next_ts(wd));
	if (fn(wd, arg, err) == -1) {
		commit_undo(wd, prev_ts);
		return -1;
	}
	if (!wd->wctx.catalog_changed) {
		store_exec(wd->st, "ROLLBACK");
		return 0;
	}
	wd->max_ts = wd->wctx.ts;
	wctx_keep(&wd->wctx);
	if (commit_end(wd, prev_ts) == -1) {
		tv_seterr(err, TV_UNAVAILABLE, "commit failed: %s",
		    sqlite3_errmsg(wd->st->db));
		commit_undo(wd, prev_ts);
		return -1;
	}
	wd->catalog_version = wd->st->catalog->version;
	buf_init(&notice);
	wctx_notice(&wd->wctx, prev_ts, wd->catalog_version, &notice);
	notify_broadcast(wd, &notice);
	buf_free(&notice);
	return 1;
}
