/*
 * Retention and garbage collection.  The retention floor is a ts: reads
 * at or above it are served, reads below fail with OutOfRetention.  A
 * document revision is garbage when a newer revision of the same document
 * at or below the floor exists, or when it is a delete at or below the
 * floor that is the document's newest revision; index entry revisions
 * likewise per key.  Expired idempotency records go too.  The work runs in
 * small transactions, each bounded in rows and in time, and freed pages
 * go back to the filesystem with incremental vacuum.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "writerd.h"

#define GC_BATCH_ROWS		256	/* candidate rows per step */
#define GC_VACUUM_PAGES		256	/* pages freed per step */

enum gc_stmt {
	GC_DOC_CAND,
	GC_DOC_NEWER,
	GC_DOC_DEL,
	GC_IDX_CAND,
	GC_IDX_NEWER,
	GC_IDX_DEL,
	GC_IDEM_DEL,
	GC_COUNT
};

static const char *gc_sql[GC_COUNT] = {
	[GC_DOC_CAND] =
	    "SELECT id, ts, deleted FROM documents"
	    " WHERE ts > ?1 AND ts <= ?2 ORDER BY ts LIMIT ?3",
	[GC_DOC_NEWER] =
	    "SELECT 1 FROM documents WHERE id = ?1 AND ts > ?2 AND ts <= ?3"
	    " LIMIT 1",
	[GC_DOC_DEL] =
	    "DELETE FROM documents WHERE id = ?1 AND ts = ?2",
	[GC_IDX_CAND] =
	    "SELECT index_id, key, ts, deleted FROM indexes"
	    " WHERE ts > ?1 AND ts <= ?2 ORDER BY ts LIMIT ?3",
	[GC_IDX_NEWER] =
	    "SELECT 1 FROM indexes WHERE index_id = ?1 AND key = ?2"
	    " AND ts > ?3 AND ts <= ?4 LIMIT 1",
	[GC_IDX_DEL] =
	    "DELETE FROM indexes WHERE index_id = ?1 AND key = ?2 AND ts = ?3",
	[GC_IDEM_DEL] =
	    "DELETE FROM idempotency WHERE (session_id, request_id) IN"
	    " (SELECT session_id, request_id FROM idempotency"
	    " WHERE ts < ?1 LIMIT ?2)",
};

struct gc_state {
	sqlite3_stmt	*s[GC_COUNT];
	int64_t		 floor;
	int64_t		 doc_cursor, idx_cursor;	/* last ts examined */
	int		 docs_done, idx_done;
	uint64_t	 deleted_docs, deleted_idx, deleted_idem;
	int64_t		 max_step_us;
	int		 steps;
};

static int
step(sqlite3_stmt *s)
{
	int	 rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* One pass over up to GC_BATCH_ROWS document revisions. */
static int
gc_docs(struct gc_state *g)
{
	sqlite3_stmt	*c = g->s[GC_DOC_CAND], *n = g->s[GC_DOC_NEWER];
	sqlite3_stmt	*d = g->s[GC_DOC_DEL];
	const char	*id;
	int64_t		 ts;
	int		 rows = 0, rc, garbage;

	sqlite3_bind_int64(c, 1, g->doc_cursor);
	sqlite3_bind_int64(c, 2, g->floor);
	sqlite3_bind_int64(c, 3, GC_BATCH_ROWS);
	while ((rc = sqlite3_step(c)) == SQLITE_ROW) {
		rows++;
		id = (const char *)sqlite3_column_text(c, 0);
		ts = sqlite3_column_int64(c, 1);
		g->doc_cursor = ts - 1;	/* revisit this ts: ties */
		sqlite3_bind_text(n, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(n, 2, ts);
		sqlite3_bind_int64(n, 3, g->floor);
		garbage = sqlite3_step(n) == SQLITE_ROW ||
		    sqlite3_column_int(c, 2) != 0;
		sqlite3_reset(n);
		if (!garbage)
			continue;
		sqlite3_bind_text(d, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(d, 2, ts);
		if (step(d) == -1)
			goto fail;
		g->deleted_docs++;
	}
	sqlite3_reset(c);
	if (rc != SQLITE_DONE)
		return -1;
	if (rows < GC_BATCH_ROWS)
		g->docs_done = 1;
	else
		g->doc_cursor++;
	return 0;
fail:
	sqlite3_reset(c);
	return -1;
}

static int
gc_indexes(struct gc_state *g)
{
	sqlite3_stmt	*c = g->s[GC_IDX_CAND], *n = g->s[GC_IDX_NEWER];
	sqlite3_stmt	*d = g->s[GC_IDX_DEL];
	int64_t		 ts, index_id;
	int		 rows = 0, rc, garbage;

	sqlite3_bind_int64(c, 1, g->idx_cursor);
	sqlite3_bind_int64(c, 2, g->floor);
	sqlite3_bind_int64(c, 3, GC_BATCH_ROWS);
	while ((rc = sqlite3_step(c)) == SQLITE_ROW) {
		rows++;
		index_id = sqlite3_column_int64(c, 0);
		ts = sqlite3_column_int64(c, 2);
		g->idx_cursor = ts - 1;
		sqlite3_bind_int64(n, 1, index_id);
		sqlite3_bind_blob(n, 2, sqlite3_column_blob(c, 1),
		    sqlite3_column_bytes(c, 1), SQLITE_TRANSIENT);
		sqlite3_bind_int64(n, 3, ts);
		sqlite3_bind_int64(n, 4, g->floor);
		garbage = sqlite3_step(n) == SQLITE_ROW ||
		    sqlite3_column_int(c, 3) != 0;
		sqlite3_reset(n);
		if (!garbage)
			continue;
		sqlite3_bind_int64(d, 1, index_id);
		sqlite3_bind_blob(d, 2, sqlite3_column_blob(c, 1),
		    sqlite3_column_bytes(c, 1), SQLITE_TRANSIENT);
		sqlite3_bind_int64(d, 3, ts);
		if (step(d) == -1)
			goto fail;
		g->deleted_idx++;
	}
	sqlite3_reset(c);
	if (rc != SQLITE_DONE)
		return -1;
	if (rows < GC_BATCH_ROWS)
		g->idx_done = 1;
	else
		g->idx_cursor++;
	return 0;
fail:
	sqlite3_reset(c);
	return -1;
}

static void
add_int(cJSON *o, const char *name, int64_t v)
{
	char	 tmp[24];

	snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	cJSON_AddItemToObject(o, name, cJSON_CreateRaw(tmp));
}

/*
 * Collect garbage below now - keep_us.  Each step is its own write
 * transaction; between steps, waiting mutations get their group commit.
 * budget_us < 0: run to the end; otherwise stop after that much time (the
 * next run picks up from the floor).  Fills report when not NULL.
 */
int
gc_run(struct writerd *wd, int64_t keep_us, int64_t budget_us, cJSON *report)
{
	struct gc_state	 g;
	int64_t		 t0 = mono_us(), ts, old_floor = 0, freelist = 0;
	int		 i, ret = -1, rc;
	sqlite3_stmt	*s;

	memset(&g, 0, sizeof(g));
	for (i = 0; i < GC_COUNT; i++)
		if (sqlite3_prepare_v2(wd->st->db, gc_sql[i], -1, &g.s[i],
		    NULL) != SQLITE_OK) {
			log_warnx("gc: %s", sqlite3_errmsg(wd->st->db));
			goto done;
		}
	store_global_get_i64(wd->st, "retention_floor", &old_floor);
	g.floor = wd->max_ts - keep_us;
	if (now_us() - keep_us < g.floor)
		g.floor = now_us() - keep_us;
	if (g.floor < old_floor)
		g.floor = old_floor;	/* the floor never moves back */
	if (g.floor < 0)
		g.floor = 0;
	while (!g.docs_done || !g.idx_done) {
		ts = mono_us();
		if (store_exec(wd->st, "BEGIN IMMEDIATE") == -1)
			goto done;
		if (g.steps == 0 && store_global_set_i64(wd->st,
		    "retention_floor", g.floor) == -1)
			goto rollback;
		/* Work until the step budget is spent. */
		while ((!g.docs_done || !g.idx_done) &&
		    mono_us() - ts < wd->conf.gc_step_us) {
			if (!g.docs_done && gc_docs(&g) == -1)
				goto rollback;
			if (!g.idx_done && gc_indexes(&g) == -1)
				goto rollback;
		}
		if (store_exec(wd->st, "COMMIT") == -1)
			goto rollback;
		ts = mono_us() - ts;
		if (ts > g.max_step_us)
			g.max_step_us = ts;
		g.steps++;
		/* Let waiting mutations in between steps. */
		commit_run(wd);
		if (budget_us >= 0 && mono_us() - t0 > budget_us)
			break;
	}
	/* Expired idempotency records. */
	s = g.s[GC_IDEM_DEL];
	do {
		ts = mono_us();
		sqlite3_bind_int64(s, 1, now_us() -
		    wd->conf.idempotency_window_us);
		sqlite3_bind_int64(s, 2, GC_BATCH_ROWS * 4);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			goto done;
		g.deleted_idem += (uint64_t)sqlite3_changes(wd->st->db);
		ts = mono_us() - ts;
		if (ts > g.max_step_us)
			g.max_step_us = ts;
		commit_run(wd);
	} while (sqlite3_changes(wd->st->db) > 0);
	/* Give freed pages back to the filesystem, a few at a time. */
	for (;;) {
		freelist = 0;
		s = NULL;
		if (sqlite3_prepare_v2(wd->st->db, "PRAGMA freelist_count", -1,
		    &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
			freelist = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
		if (freelist == 0)
			break;
		ts = mono_us();
		if (store_exec(wd->st, "PRAGMA incremental_vacuum(256)") == -1)
			break;
		ts = mono_us() - ts;
		if (ts > g.max_step_us)
			g.max_step_us = ts;
		commit_run(wd);
	}
	ret = 0;
	goto done;
rollback:
	store_exec(wd->st, "ROLLBACK");
done:
	for (i = 0; i < GC_COUNT; i++)
		sqlite3_finalize(g.s[i]);
	wd->stats.gc_runs++;
	wd->stats.gc_deleted += g.deleted_docs + g.deleted_idx;
	if (g.max_step_us > wd->stats.gc_max_step_us)
		wd->stats.gc_max_step_us = g.max_step_us;
	wd->stats.gc_last_us = now_us();
	if (report != NULL) {
		add_int(report, "retention_floor", g.floor);
		add_int(report, "revisions_deleted", (int64_t)g.deleted_docs);
		add_int(report, "index_entries_deleted",
		    (int64_t)g.deleted_idx);
		add_int(report, "idempotency_deleted",
		    (int64_t)g.deleted_idem);
		add_int(report, "steps", g.steps);
		add_int(report, "max_step_us", g.max_step_us);
		add_int(report, "elapsed_us", mono_us() - t0);
		add_int(report, "complete", g.docs_done && g.idx_done);
	}
	log_info("gc: floor %" PRId64 ", %" PRIu64 " revisions, %" PRIu64
	    " index entries, %" PRIu64 " idempotency records deleted",
	    g.floor, g.deleted_docs, g.deleted_idx, g.deleted_idem);
	return ret;
}
