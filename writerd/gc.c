/*
 * Retention and garbage collection.  The retention floor is a ts: reads
 * at or above it are served, reads below fail with OutOfRetention.  Once
 * a revision of a document is at or below the floor, every older revision
 * of that document is garbage, and so is the revision itself when it is a
 * deletion; index entry revisions likewise per (index, key).  Expired
 * idempotency records go too, and the pages freed go back to the file
 * system with incremental vacuum.
 *
 * A run walks the revisions in ts order from where the last run stopped
 * (a cursor kept in globals), so its cost follows what was written since,
 * not the size of the history.  It runs on the event loop in steps: each
 * step is one short write transaction (at most about gc_step), and the
 * next step is a zero timeout, so the loop polls the gateways' sockets
 * and runs their group commits between any two steps.  The periodic timer
 * starts a run; tinyvexctl gc starts one (or joins the one in progress,
 * raising its floor) and is answered when it ends.
 *
 * Checkpoints live here too: they give the WAL's space back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "writerd.h"

#define GC_WORK_SHARE		60	/* % of gc_step for the rows; the */
					/* rest is left for the commit */
#define GC_IDEM_BATCH		64	/* idempotency records a statement */
#define GC_VACUUM_START		64	/* pages a vacuum step, at first */
#define GC_VACUUM_MIN		8	/* never fewer a step */
#define GC_VACUUM_MAX		8192	/* never more a step */
#define GC_SQL_MAX		64	/* a formatted PRAGMA */
#define GC_WHY_MAX		128	/* why a run failed */
#define GC_WAL_FRAME_HDR	24	/* bytes before each page in the WAL */
#define GC_CKPT_WAIT_MS		20	/* WAL too big: wait for readers */
#define GC_CKPT_RETRY_US	(100 * 1000)	/* after a busy one */

/*
 * Where the walks stopped (GLOBAL_GC_DOCUMENTS, GLOBAL_GC_INDEXES): every
 * row with ts <= value was examined.
 */

enum gc_stmt {
	GS_DOC_NEXT,
	GS_DOC_OLDER,
	GS_DOC_SELF,
	GS_IDX_NEXT,
	GS_IDX_OLDER,
	GS_IDX_SELF,
	GS_IDEM_DEL,
	GS_FREELIST,
	GS_COUNT
};

static const char *gc_sql[GS_COUNT] = {
	/* The next revision after the cursor, at or below the floor. */
	[GS_DOC_NEXT] =
	    "SELECT id, ts, deleted FROM documents"
	    " WHERE (ts, id) > (?1, ?2) AND ts <= ?3"
	    " ORDER BY ts, id LIMIT 1",
	[GS_DOC_OLDER] =
	    "DELETE FROM documents WHERE id = ?1 AND ts < ?2",
	[GS_DOC_SELF] =
	    "DELETE FROM documents WHERE id = ?1 AND ts = ?2",
	/* The next removal: the entries of a key alternate (wctx.c). */
	[GS_IDX_NEXT] =
	    "SELECT index_id, key, ts, deleted FROM indexes"
	    " WHERE deleted = 1 AND (ts, index_id, key) > (?1, ?2, ?3)"
	    " AND ts <= ?4 ORDER BY ts, index_id, key LIMIT 1",
	[GS_IDX_OLDER] =
	    "DELETE FROM indexes WHERE index_id = ?1 AND key = ?2"
	    " AND ts < ?3",
	[GS_IDX_SELF] =
	    "DELETE FROM indexes WHERE index_id = ?1 AND key = ?2"
	    " AND ts = ?3",
	[GS_IDEM_DEL] =
	    "DELETE FROM idempotency WHERE (session_id, request_id) IN"
	    " (SELECT session_id, request_id FROM idempotency"
	    " WHERE ts < ?1 LIMIT ?2)",
	[GS_FREELIST] =
	    "PRAGMA freelist_count",
};

_Static_assert(GS_COUNT == GC_NSTMT, "GC_NSTMT in writerd.h");

static const char *gc_phase_names[GC_NPHASES] = {
	[GC_IDLE] = "idle",
	[GC_DOCUMENTS] = "documents",
	[GC_INDEXES] = "indexes",
	[GC_IDEMPOTENCY] = "idempotency",
	[GC_VACUUM] = "vacuum",
};

/* Upper bounds of the step duration histogram, microseconds. */
static const struct {
	const char	*name;
	int64_t		 le_us;
} gc_buckets[GC_STEP_BUCKETS] = {
	{ "1ms", 1000 }, { "2ms", 2000 }, { "5ms", 5000 },
	{ "10ms", 10000 }, { "50ms", 50000 }, { "more", INT64_MAX },
};

static void	gc_step(evutil_socket_t, short, void *);
static void	gc_ckpt_event(evutil_socket_t, short, void *);
static int	gc_wal_hook(void *, sqlite3 *, const char *, int);

/* CPU time of this thread, microseconds: a step's own work. */
static int64_t
cpu_us(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Step a statement that returns no rows, then reset it; 0 or -1. */
static int
gc_exec(sqlite3_stmt *s)
{
	int	 rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* An empty cursor text or blob must bind as empty, not as NULL. */
static void
bind_text(sqlite3_stmt *s, int i, const struct buf *b)
{
	if (b->len == 0)
		sqlite3_bind_text(s, i, "", 0, SQLITE_STATIC);
	else
		sqlite3_bind_text(s, i, b->data, (int)b->len,
		    SQLITE_TRANSIENT);
}

static void
bind_blob(sqlite3_stmt *s, int i, const struct buf *b)
{
	if (b->len == 0)
		sqlite3_bind_zeroblob(s, i, 0);
	else
		sqlite3_bind_blob(s, i, b->data, (int)b->len,
		    SQLITE_TRANSIENT);
}

int
gc_init(struct writerd *wd)
{
	struct gc_state	*g = &wd->gc;
	sqlite3_stmt	*s = NULL;
	int		 i;

	memset(g, 0, sizeof(*g));
	g->phase = GC_IDLE;
	buf_init(&g->doc_id);
	buf_init(&g->idx_key);
	for (i = 0; i < GS_COUNT; i++)
		if (sqlite3_prepare_v3(wd->st->db, gc_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &g->stmt[i], NULL) !=
		    SQLITE_OK) {
			log_warnx("%s: %s", __func__,
			    sqlite3_errmsg(wd->st->db));
			return -1;
		}
	if ((g->ev = evtimer_new(wd->base, gc_step, wd)) == NULL ||
	    (g->ckpt_ev = event_new(wd->base, -1, 0, gc_ckpt_event, wd)) ==
	    NULL)
		return -1;
	g->frame_bytes = GC_WAL_FRAME_HDR;
	if (sqlite3_prepare_v2(wd->st->db, "PRAGMA page_size", -1, &s,
	    NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		g->frame_bytes += sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_wal_hook(wd->st->db, gc_wal_hook, wd);
	return 0;
}

void
gc_free(struct writerd *wd)
{
	struct gc_state	*g = &wd->gc;
	int		 i;

	gc_abort(wd, "writerd is stopping");
	for (i = 0; i < GC_NSTMT; i++) {
		sqlite3_finalize(g->stmt[i]);
		g->stmt[i] = NULL;
	}
	sqlite3_wal_hook(wd->st->db, NULL, NULL);
	if (g->ev != NULL)
		event_free(g->ev);
	g->ev = NULL;
	if (g->ckpt_ev != NULL)
		event_free(g->ckpt_ev);
	g->ckpt_ev = NULL;
	buf_free(&g->doc_id);
	buf_free(&g->idx_key);
}

/* Run the next step after the loop has polled for I/O once more. */
static void
gc_schedule(struct writerd *wd)
{
	struct timeval	 now = { 0, 0 };

	evtimer_add(wd->gc.ev, &now);
}

/* Send text to every waiting tinyvexctl and forget them. */
static void
gc_answer(struct writerd *wd, int ok, const char *json)
{
	struct gc_waiter	*w;
	struct ctlconn		*c;
	size_t			 i;

	for (i = 0; i < GC_MAX_WAITERS; i++) {
		w = &wd->gc.waiters[i];
		if (w->ctl_id != 0 && (c = control_conn(wd, w->ctl_id)) != NULL)
			control_answer(c, w->seq, ok, json);
		w->ctl_id = 0;
	}
}

/* The figures of a complete run, for its answer. */
static void
gc_report(struct writerd *wd, struct buf *out)
{
	struct gc_state	*g = &wd->gc;
	cJSON		*r, *h;
	size_t		 i;

	r = cJSON_CreateObject();
	json_add_int(r, "retention_floor", g->floor);
	json_add_int(r, "revisions_deleted", (int64_t)g->deleted_docs);
	json_add_int(r, "index_entries_deleted", (int64_t)g->deleted_idx);
	json_add_int(r, "idempotency_deleted", (int64_t)g->deleted_idem);
	json_add_int(r, "pages_freed", g->pages_freed);
	json_add_int(r, "steps", (int64_t)g->steps);
	json_add_int(r, "max_step_us", g->max_step_us);
	json_add_int(r, "max_step_cpu_us", g->max_step_cpu_us);
	json_add_int(r, "mean_step_us", g->steps > 0 ?
	    g->step_total_us / (int64_t)g->steps : 0);
	h = cJSON_AddObjectToObject(r, "step_us");
	for (i = 0; i < GC_STEP_BUCKETS; i++)
		json_add_int(h, gc_buckets[i].name, (int64_t)g->step_hist[i]);
	h = cJSON_AddObjectToObject(r, "phase_steps");
	for (i = GC_DOCUMENTS; i < GC_NPHASES; i++)
		json_add_int(h, gc_phase_names[i], (int64_t)g->phase_steps[i]);
	h = cJSON_AddObjectToObject(r, "phase_us");
	for (i = GC_DOCUMENTS; i < GC_NPHASES; i++)
		json_add_int(h, gc_phase_names[i], g->phase_us[i]);
	h = cJSON_AddObjectToObject(r, "phase_max_step_us");
	for (i = GC_DOCUMENTS; i < GC_NPHASES; i++)
		json_add_int(h, gc_phase_names[i], g->phase_max_us[i]);
	json_add_int(r, "elapsed_us", mono_us() - g->started_us);
	json_add_int(r, "complete", 1);
	json_print(out, r);
	cJSON_Delete(r);
}

/*
 * End the run: answer the waiters (with the report, or with why when
 * why is not NULL) and go idle.
 */
static void
gc_finish(struct writerd *wd, const char *why)
{
	struct gc_state	*g = &wd->gc;
	struct buf	 out;

	if (g->phase == GC_IDLE)
		return;
	evtimer_del(g->ev);
	wd->stats.gc_deleted += g->deleted_docs + g->deleted_idx +
	    g->deleted_idem;
	buf_init(&out);
	if (why == NULL) {
		gc_report(wd, &out);
		gc_answer(wd, 1, out.data);
		wd->stats.gc_runs++;
		g->last_error[0] = '\0';
	} else {
		buf_adds(&out, "{\"error\":");
		json_print_string(&out, why, strlen(why));
		buf_addc(&out, '}');
		gc_answer(wd, 0, out.data);
		strlcpy_tv(g->last_error, why, sizeof(g->last_error));
	}
	buf_free(&out);
	wd->stats.gc_last_us = now_us();
	if (why != NULL)
		log_warnx("gc: stopped: %s", why);
	else if (g->deleted_docs + g->deleted_idx + g->deleted_idem > 0 ||
	    g->pages_freed > 0)
		log_info("gc: floor %" PRId64 ": %" PRIu64 " revisions, %"
		    PRIu64 " index entries, %" PRIu64 " idempotency records "
		    "deleted, %" PRId64 " pages freed, %" PRIu64 " steps, "
		    "longest %" PRId64 " us", g->floor, g->deleted_docs,
		    g->deleted_idx, g->deleted_idem, g->pages_freed, g->steps,
		    g->max_step_us);
	else
		log_debug("gc: floor %" PRId64 ": nothing to collect",
		    g->floor);
	g->phase = GC_IDLE;
}

void
gc_abort(struct writerd *wd, const char *why)
{
	gc_finish(wd, why);
}

/* The floor for keep_us: never older than the one stored. */
static int64_t
gc_floor(struct writerd *wd, int64_t keep_us)
{
	int64_t	 floor, now = now_us(), old = 0;

	/*
	 * Measured from the older of the newest commit and the clock, so
	 * the newest commit itself always stays readable.
	 */
	floor = (wd->max_ts < now ? wd->max_ts : now) - keep_us;
	store_global_get_i64(wd->st, GLOBAL_RETENTION_FLOOR, &old);
	if (floor < old)
		floor = old;
	if (floor < wd->gc.floor)
		floor = wd->gc.floor;
	return floor < 0 ? 0 : floor;
}

/*
 * Start a run, or join the one in progress with a floor for keep_us.
 * ctl_id (0: none) is the control client to answer when the run ends.
 * 0, or -1 with err.
 */
int
gc_start(struct writerd *wd, int64_t keep_us, uint32_t ctl_id,
    uint32_t seq, char *err, size_t errlen)
{
	struct gc_state	*g = &wd->gc;
	struct gc_waiter *w;
	int64_t		 floor, done, idem;
	size_t		 i, slot = GC_MAX_WAITERS;

	if (wd->stopping) {
		snprintf(err, errlen, "writerd is stopping");
		return -1;
	}
	if (ctl_id != 0) {
		for (i = 0; i < GC_MAX_WAITERS; i++) {
			w = &g->waiters[i];
			if (w->ctl_id == ctl_id) {
				snprintf(err, errlen, "gc already requested "
				    "on this connection");
				return -1;
			}
			/* Free, or of a client that has gone. */
			if ((w->ctl_id == 0 || control_conn(wd, w->ctl_id) ==
			    NULL) && slot == GC_MAX_WAITERS)
				slot = i;
		}
		if (slot == GC_MAX_WAITERS) {
			snprintf(err, errlen, "too many gc requests");
			return -1;
		}
	}
	idem = now_us() - wd->conf.idempotency_window_us;
	if (g->phase == GC_IDLE) {
		g->floor = 0;
		floor = gc_floor(wd, keep_us);
		memset(&g->waiters, 0, sizeof(g->waiters));
		g->phase = GC_DOCUMENTS;
		g->floor = floor;
		g->floor_saved = 0;
		g->idem_before = idem;
		g->started_us = mono_us();
		g->deleted_docs = g->deleted_idx = g->deleted_idem = 0;
		g->pages_freed = 0;
		g->steps = 0;
		g->step_total_us = g->max_step_us = g->max_step_cpu_us = 0;
		memset(g->step_hist, 0, sizeof(g->step_hist));
		memset(g->phase_steps, 0, sizeof(g->phase_steps));
		memset(g->phase_us, 0, sizeof(g->phase_us));
		memset(g->phase_max_us, 0, sizeof(g->phase_max_us));
		/* Resume the walks where the last run left them. */
		done = 0;
		store_global_get_i64(wd->st, GLOBAL_GC_DOCUMENTS, &done);
		g->doc_ts = done + 1;
		buf_reset(&g->doc_id);
		done = 0;
		store_global_get_i64(wd->st, GLOBAL_GC_INDEXES, &done);
		g->idx_ts = done + 1;
		g->idx_index = INT64_MIN;
		buf_reset(&g->idx_key);
		if (g->vacuum_pages == 0)
			g->vacuum_pages = GC_VACUUM_START;
		gc_schedule(wd);
	} else {
		/* Join the run; a newer floor sends it back to the walks. */
		floor = gc_floor(wd, keep_us);
		if (floor > g->floor) {
			g->floor = floor;
			g->floor_saved = 0;
			if (g->phase > GC_DOCUMENTS)
				g->phase = GC_DOCUMENTS;
		}
		if (idem > g->idem_before) {
			g->idem_before = idem;
			if (g->phase > GC_IDEMPOTENCY)
				g->phase = GC_IDEMPOTENCY;
		}
	}
	if (ctl_id != 0) {
		g->waiters[slot].ctl_id = ctl_id;
		g->waiters[slot].seq = seq;
	}
	return 0;
}

/*
 * Examine document revisions after the cursor, up to the floor, until the
 * deadline (at least one).  Returns 1 when none is left, 0 when the
 * deadline came first, -1 on a database error.
 */
static int
gc_documents(struct writerd *wd, int64_t deadline)
{
	struct gc_state	*g = &wd->gc;
	sqlite3_stmt	*next = g->stmt[GS_DOC_NEXT];
	sqlite3_stmt	*older = g->stmt[GS_DOC_OLDER];
	sqlite3_stmt	*self = g->stmt[GS_DOC_SELF];
	int		 rc, deleted;

	for (;;) {
		sqlite3_bind_int64(next, 1, g->doc_ts);
		bind_text(next, 2, &g->doc_id);
		sqlite3_bind_int64(next, 3, g->floor);
		rc = sqlite3_step(next);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(next);
			return rc == SQLITE_DONE ? 1 : -1;
		}
		buf_reset(&g->doc_id);
		buf_add(&g->doc_id, sqlite3_column_text(next, 0),
		    (size_t)sqlite3_column_bytes(next, 0));
		g->doc_ts = sqlite3_column_int64(next, 1);
		deleted = sqlite3_column_int(next, 2) != 0;
		sqlite3_reset(next);

		bind_text(older, 1, &g->doc_id);
		sqlite3_bind_int64(older, 2, g->doc_ts);
		if (gc_exec(older) == -1)
			return -1;
		g->deleted_docs += (uint64_t)sqlite3_changes(wd->st->db);
		if (deleted) {
			bind_text(self, 1, &g->doc_id);
			sqlite3_bind_int64(self, 2, g->doc_ts);
			if (gc_exec(self) == -1)
				return -1;
			g->deleted_docs +=
			    (uint64_t)sqlite3_changes(wd->st->db);
		}
		if (mono_us() >= deadline)
			return 0;
	}
}

/*
 * The same walk over index entries, per (index, key), visiting only the
 * removals: every entry older than a removal at or below the floor is
 * garbage, and so is the removal, and no other entry is.
 */
static int
gc_indexes(struct writerd *wd, int64_t deadline)
{
	struct gc_state	*g = &wd->gc;
	sqlite3_stmt	*next = g->stmt[GS_IDX_NEXT];
	sqlite3_stmt	*older = g->stmt[GS_IDX_OLDER];
	sqlite3_stmt	*self = g->stmt[GS_IDX_SELF];
	int		 rc, deleted;

	for (;;) {
		sqlite3_bind_int64(next, 1, g->idx_ts);
		sqlite3_bind_int64(next, 2, g->idx_index);
		bind_blob(next, 3, &g->idx_key);
		sqlite3_bind_int64(next, 4, g->floor);
		rc = sqlite3_step(next);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(next);
			return rc == SQLITE_DONE ? 1 : -1;
		}
		g->idx_index = sqlite3_column_int64(next, 0);
		buf_reset(&g->idx_key);
		buf_add(&g->idx_key, sqlite3_column_blob(next, 1),
		    (size_t)sqlite3_column_bytes(next, 1));
		g->idx_ts = sqlite3_column_int64(next, 2);
		deleted = sqlite3_column_int(next, 3) != 0;
		sqlite3_reset(next);

		sqlite3_bind_int64(older, 1, g->idx_index);
		bind_blob(older, 2, &g->idx_key);
		sqlite3_bind_int64(older, 3, g->idx_ts);
		if (gc_exec(older) == -1)
			return -1;
		g->deleted_idx += (uint64_t)sqlite3_changes(wd->st->db);
		if (deleted) {
			sqlite3_bind_int64(self, 1, g->idx_index);
			bind_blob(self, 2, &g->idx_key);
			sqlite3_bind_int64(self, 3, g->idx_ts);
			if (gc_exec(self) == -1)
				return -1;
			g->deleted_idx +=
			    (uint64_t)sqlite3_changes(wd->st->db);
		}
		if (mono_us() >= deadline)
			return 0;
	}
}

/* Expired idempotency records, a batch at a time; same returns. */
static int
gc_idempotency(struct writerd *wd, int64_t deadline)
{
	struct gc_state	*g = &wd->gc;
	sqlite3_stmt	*s = g->stmt[GS_IDEM_DEL];
	int		 n;

	for (;;) {
		sqlite3_bind_int64(s, 1, g->idem_before);
		sqlite3_bind_int(s, 2, GC_IDEM_BATCH);
		if (gc_exec(s) == -1)
			return -1;
		n = sqlite3_changes(wd->st->db);
		g->deleted_idem += (uint64_t)n;
		if (n < GC_IDEM_BATCH)
			return 1;
		if (mono_us() >= deadline)
			return 0;
	}
}

/* Pages on the free list, or -1. */
static int64_t
gc_freelist(struct writerd *wd)
{
	sqlite3_stmt	*s = wd->gc.stmt[GS_FREELIST];
	int64_t		 n = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

/*
 * Give up to vacuum_pages free pages back to the file system.  Returns 1
 * when the free list is empty (or cannot shrink: a database made without
 * incremental auto-vacuum), 0 when pages remain, -1 on an error.
 */
static int
gc_vacuum(struct writerd *wd)
{
	struct gc_state	*g = &wd->gc;
	char		 sql[GC_SQL_MAX];
	int64_t		 before, after;

	if ((before = gc_freelist(wd)) <= 0)
		return before == 0 ? 1 : -1;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)",
	    g->vacuum_pages);
	if (store_exec(wd->st, sql) == -1 || (after = gc_freelist(wd)) == -1)
		return -1;
	g->pages_freed += before - after;
	return after == 0 || after >= before ? 1 : 0;
}

/* Record one step's duration; adapt the vacuum step to the budget. */
static void
gc_account(struct writerd *wd, enum gc_phase phase, int64_t us,
    int64_t cpu)
{
	struct gc_state	*g = &wd->gc;
	size_t		 i;

	if (cpu > g->max_step_cpu_us)
		g->max_step_cpu_us = cpu;
	g->steps++;
	wd->stats.gc_steps++;
	g->step_total_us += us;
	if (us > g->max_step_us)
		g->max_step_us = us;
	if (us > wd->stats.gc_max_step_us)
		wd->stats.gc_max_step_us = us;
	for (i = 0; i < GC_STEP_BUCKETS - 1 && us > gc_buckets[i].le_us; i++)
		;
	g->step_hist[i]++;
	g->phase_steps[phase]++;
	g->phase_us[phase] += us;
	if (us > g->phase_max_us[phase])
		g->phase_max_us[phase] = us;
	if (phase != GC_VACUUM)
		return;
	if (us > wd->conf.gc_step_us && g->vacuum_pages > GC_VACUUM_MIN)
		g->vacuum_pages /= 2;
	else if (us < wd->conf.gc_step_us / 4 &&
	    g->vacuum_pages < GC_VACUUM_MAX)
		g->vacuum_pages *= 2;
}

/*
 * One step: one write transaction doing one phase's work until its share
 * of gc_step is spent.  Mutations already received are committed first.
 */
static void
gc_step(evutil_socket_t fd, short ev, void *arg)
{
	struct writerd	*wd = arg;
	struct gc_state	*g = &wd->gc;
	enum gc_phase	 phase = g->phase;
	int64_t		 t0, c0, deadline, old = 0;
	int		 rc = -1;
	char		 why[GC_WHY_MAX];

	(void)fd;
	(void)ev;
	if (phase == GC_IDLE || wd->stopping)
		return;
	if (!TAILQ_EMPTY(&wd->queue))
		commit_run(wd);
	t0 = mono_us();
	c0 = cpu_us();
	deadline = t0 + wd->conf.gc_step_us * GC_WORK_SHARE / 100;
	if (store_exec(wd->st, "BEGIN IMMEDIATE") == -1) {
		gc_finish(wd, "cannot begin a transaction");
		return;
	}
	if (!g->floor_saved) {
		/* The floor first: no read below it may start from now. */
		if (store_global_get_i64(wd->st, GLOBAL_RETENTION_FLOOR,
		    &old) == -1 || (g->floor > old && store_global_set_i64(wd->st,
		    GLOBAL_RETENTION_FLOOR, g->floor) == -1))
			goto rollback;
	}
	switch (phase) {
	case GC_DOCUMENTS:
		rc = gc_documents(wd, deadline);
		if (rc != -1 && store_global_set_i64(wd->st,
		    GLOBAL_GC_DOCUMENTS, rc == 1 ? g->floor : g->doc_ts - 1) == -1)
			rc = -1;
		break;
	case GC_INDEXES:
		rc = gc_indexes(wd, deadline);
		if (rc != -1 && store_global_set_i64(wd->st, GLOBAL_GC_INDEXES,
		    rc == 1 ? g->floor : g->idx_ts - 1) == -1)
			rc = -1;
		break;
	case GC_IDEMPOTENCY:
		rc = gc_idempotency(wd, deadline);
		break;
	case GC_VACUUM:
		rc = gc_vacuum(wd);
		break;
	case GC_IDLE:
	case GC_NPHASES:
		break;
	}
	if (rc == -1)
		goto rollback;
	if (store_exec(wd->st, "COMMIT") == -1)
		goto rollback;
	g->floor_saved = 1;
	gc_account(wd, phase, mono_us() - t0, cpu_us() - c0);
	if (rc == 1) {
		if (phase == GC_VACUUM) {
			gc_finish(wd, NULL);
			return;
		}
		g->phase = phase + 1;
	}
	gc_schedule(wd);
	return;
rollback:
	snprintf(why, sizeof(why), "%s: %s", gc_phase_names[phase],
	    sqlite3_errmsg(wd->st->db));
	store_exec(wd->st, "ROLLBACK");
	gc_finish(wd, why);
}

void
gc_stats(struct writerd *wd, cJSON *w)
{
	struct gc_state	*g = &wd->gc;
	int64_t		 floor = 0;

	store_global_get_i64(wd->st, GLOBAL_RETENTION_FLOOR, &floor);
	json_add_int(w, "retention_floor", floor);
	json_add_int(w, "gc_runs", (int64_t)wd->stats.gc_runs);
	json_add_int(w, "gc_deleted", (int64_t)wd->stats.gc_deleted);
	json_add_int(w, "gc_steps", (int64_t)wd->stats.gc_steps);
	json_add_int(w, "gc_max_step_us", wd->stats.gc_max_step_us);
	cJSON_AddStringToObject(w, "gc_phase", gc_phase_names[g->phase]);
	if (g->phase == GC_IDLE) {
		if (g->last_error[0] != '\0')
			cJSON_AddStringToObject(w, "gc_last_error",
			    g->last_error);
		return;
	}
	/* Progress of the run in progress. */
	json_add_int(w, "gc_floor", g->floor);
	json_add_int(w, "gc_cursor_ts", g->phase == GC_DOCUMENTS ? g->doc_ts :
	    g->phase == GC_INDEXES ? g->idx_ts : g->floor);
	json_add_int(w, "gc_run_deleted", (int64_t)(g->deleted_docs +
	    g->deleted_idx + g->deleted_idem));
	json_add_int(w, "gc_run_steps", (int64_t)g->steps);
	json_add_int(w, "gc_run_max_step_us", g->max_step_us);
	json_add_int(w, "gc_run_elapsed_us", mono_us() - g->started_us);
}

/*
 * Checkpoint: copy the WAL into the database and, once every frame is
 * copied and no reader still reads from the WAL, truncate it so that the
 * next commit starts it over.  Readers that start after the copy read the
 * database file only, so the wait (up to wait_ms for each lock, the writer
 * standing still meanwhile) is for the short read transactions already
 * running; with wait_ms 0 a busy WAL is simply left for the next time.
 * Fills *nlog and *nckpt (frames in the WAL, frames copied) as SQLite
 * reports them.  Returns 1 when the WAL was truncated, 0 when it was left
 * as it was (busy, or nothing to do without a wait), -1 on an error.
 */
int
gc_checkpoint(struct writerd *wd, int wait_ms, int *nlog, int *nckpt)
{
	sqlite3	*db = wd->st->db;
	int64_t	 t0 = mono_us();
	int	 rc, ret = -1;

	*nlog = *nckpt = 0;
	sqlite3_busy_timeout(db, 0);
	rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    nlog, nckpt);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		goto done;
	ret = 0;
	/* Without a wait, only a WAL copied completely is worth a try. */
	if (wait_ms == 0 && (*nlog == 0 || *nckpt < *nlog))
		goto done;
	sqlite3_busy_timeout(db, wait_ms);
	rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL);
	if (rc == SQLITE_OK) {
		wd->stats.checkpoints_truncated++;
		ret = 1;
	} else if (rc != SQLITE_BUSY)
		ret = -1;
done:
	if (ret == -1)
		log_warnx("checkpoint: %s", sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	wd->stats.checkpoints++;
	if (mono_us() - t0 > wd->stats.checkpoint_max_us)
		wd->stats.checkpoint_max_us = mono_us() - t0;
	return ret;
}

/*
 * After every commit: once the WAL holds more than journal_size_limit,
 * a checkpoint that waits for the readers runs right after this event
 * (not inside the commit), so the WAL stays near that size however
 * steady the reads are.  After a busy one, the next waits a little.
 */
static int
gc_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct writerd	*wd = arg;
	struct gc_state	*g = &wd->gc;

	(void)db;
	(void)name;
	if ((uint64_t)frames * (uint64_t)g->frame_bytes >
	    wd->conf.journal_size_limit && !wd->stopping &&
	    mono_us() - g->ckpt_busy_us >= GC_CKPT_RETRY_US)
		event_active(g->ckpt_ev, EV_TIMEOUT, 0);
	return SQLITE_OK;
}

static void
gc_ckpt_event(evutil_socket_t fd, short ev, void *arg)
{
	struct writerd	*wd = arg;
	int		 nlog, nckpt;

	(void)fd;
	(void)ev;
	if (gc_checkpoint(wd, GC_CKPT_WAIT_MS, &nlog, &nckpt) == 0)
		wd->gc.ckpt_busy_us = mono_us();
}
