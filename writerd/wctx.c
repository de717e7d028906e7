/*
 * The write path of one mutation: document revisions, index entries,
 * unique checks, table and index creation, and the write set.  Every
 * statement runs inside the caller's savepoint, so a failure leaves
 * nothing behind once the caller rolls back to it.
 */
#include <sys/random.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "proto/ipc.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "udf.h"
#include "wctx.h"

static int	step_done(struct wctx *, sqlite3_stmt *, struct tv_error *);

static const char *wstmt_sql[WS_COUNT] = {
	[WS_CUR_DOC] =
	    "SELECT c.table_id, c.ts, d.json_value"
	    " FROM current_documents c, documents d"
	    " WHERE c.id = ?1 AND d.seq = c.seq",
	[WS_DOC_LOG] =
	    "INSERT INTO documents(id, ts, table_id, json_value, deleted,"
	    " prev_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT(id, ts) DO UPDATE SET"
	    " json_value = excluded.json_value, deleted = excluded.deleted"
	    " RETURNING seq",
	[WS_DOC_NEW] =
	    "INSERT INTO documents(id, ts, table_id, json_value, deleted,"
	    " prev_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[WS_CUR_DOC_PUT] =
	    "INSERT INTO current_documents(id, table_id, ts, seq)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET"
	    " ts = excluded.ts, seq = excluded.seq",
	[WS_CUR_DOC_NEW] =
	    "INSERT INTO current_documents(id, table_id, ts, seq)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[WS_CUR_DOC_DEL] =
	    "DELETE FROM current_documents WHERE id = ?1",
	[WS_IDX_LOG] =
	    "INSERT INTO indexes(index_id, key, ts, deleted, table_id)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT(index_id, key, ts) DO UPDATE SET"
	    " deleted = excluded.deleted",
	[WS_IDX_LOG_NEW] =
	    "INSERT INTO indexes(index_id, key, ts, deleted, table_id)"
	    " VALUES (?1, ?2, ?3, 0, ?4)",
	[WS_IDX_LOG_DROP] =
	    "DELETE FROM indexes WHERE index_id = ?1 AND key = ?2 AND ts = ?3",
	[WS_CUR_IDX_PUT] =
	    "INSERT INTO current_indexes(index_id, key) VALUES (?1, ?2)",
	[WS_CUR_IDX_DEL] =
	    "DELETE FROM current_indexes WHERE index_id = ?1 AND key = ?2",
	[WS_CUR_IDX_RANGE] =
	    "SELECT key FROM current_indexes"
	    " WHERE index_id = ?1 AND key >= ?2 AND key < ?3 LIMIT 2",
	[WS_ID_USED] =
	    "SELECT 1 FROM documents WHERE id = ?1 LIMIT 1",
	[WS_TABLE_NEW] =
	    "INSERT INTO tables(name, created_ts) VALUES (?1, ?2)",
	[WS_COUNT_NEW] =
	    "INSERT INTO table_counts(table_id, documents) VALUES (?1, 0)",
	[WS_COUNT_ADD] =
	    "UPDATE table_counts SET documents = documents + ?2"
	    " WHERE table_id = ?1",
	[WS_INDEX_NEW] =
	    "INSERT INTO index_defs(table_id, name, fields, builtin,"
	    " is_unique, created_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
};

int
wctx_init(struct wctx *w, struct store *st, const struct config *conf)
{
	int	 i;

	assert(w != NULL && st != NULL && conf != NULL);
	memset(w, 0, sizeof(*w));
	w->st = st;
	w->conf = conf;
	buf_init(&w->key);
	buf_init(&w->key2);
	buf_init(&w->json);
	for (i = 0; i < WS_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, wstmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &w->stmt[i], NULL) != SQLITE_OK) {
			log_warnx("%s: %s", __func__, sqlite3_errmsg(st->db));
			wctx_free(w);
			return -1;
		}
	}
	return 0;
}

static void
wdoc_free(struct wdoc *d)
{
	size_t	 i;

	for (i = 0; i < d->keycap; i++) {
		buf_free(&d->keys[i].old);
		buf_free(&d->keys[i].new);
	}
	free(d->keys);
	memset(d, 0, sizeof(*d));
}

void
wctx_reset(struct wctx *w, int64_t ts)
{
	size_t	 i;

	assert(w != NULL && ts >= 0);
	w->ndocs = 0;
	w->ts = ts;
	w->catalog_changed = 0;
	for (i = 0; i < w->ncounts; i++)
		w->counts[i].mut = 0;
}

/* A document of table_id came (+1) or went (-1) in the running mutation. */
static void
count_add(struct wctx *w, int64_t table_id, int64_t d)
{
	size_t	 i;

	for (i = 0; i < w->ncounts; i++)
		if (w->counts[i].table_id == table_id)
			break;
	if (i == w->ncounts) {
		if (w->ncounts == w->countcap) {
			w->countcap = w->countcap == 0 ? 4 : w->countcap * 2;
			w->counts = xreallocarray(w->counts, w->countcap,
			    sizeof(*w->counts));
		}
		memset(&w->counts[i], 0, sizeof(w->counts[i]));
		w->counts[i].table_id = table_id;
		w->ncounts++;
	}
	w->counts[i].mut += d;
}

void
wctx_keep(struct wctx *w)
{
	size_t	 i;

	for (i = 0; i < w->ncounts; i++) {
		w->counts[i].kept += w->counts[i].mut;
		w->counts[i].mut = 0;
	}
}

void
wctx_forget(struct wctx *w)
{
	w->ncounts = 0;
}

int
wctx_flush(struct wctx *w)
{
	sqlite3_stmt	*s = w->stmt[WS_COUNT_ADD];
	struct tv_error	 err;
	size_t		 i;

	for (i = 0; i < w->ncounts; i++) {
		if (w->counts[i].kept == 0)
			continue;
		sqlite3_bind_int64(s, 1, w->counts[i].table_id);
		sqlite3_bind_int64(s, 2, w->counts[i].kept);
		if (step_done(w, s, &err) == -1)
			return -1;
	}
	w->ncounts = 0;
	return 0;
}

void
wctx_free(struct wctx *w)
{
	int	 i;

	wctx_reset(w, 0);
	for (i = 0; i < (int)w->cap; i++)
		wdoc_free(&w->docs[i]);
	free(w->docs);
	free(w->counts);
	for (i = 0; i < WS_COUNT; i++)
		sqlite3_finalize(w->stmt[i]);
	buf_free(&w->key);
	buf_free(&w->key2);
	buf_free(&w->json);
	memset(w, 0, sizeof(*w));
}

/*
 * A statement failed with rc.  When the storage failed (full, I/O error,
 * locked, out of memory) the error is Unavailable: the caller rolls the
 * whole transaction back and nothing of it is committed.  Anything else
 * is a bug: InternalError.  Returns -1.
 */
static int
db_fail(struct wctx *w, int rc, struct tv_error *err)
{
	log_warnx("wctx: %s", sqlite3_errmsg(w->st->db));
	switch (rc & 0xff) {
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_NOMEM:
	case SQLITE_CANTOPEN:
	case SQLITE_PROTOCOL:
	case SQLITE_READONLY:
		return tv_seterr(err, TV_UNAVAILABLE, "%s", sqlite3_errstr(rc));
	default:
		return tv_seterr(err, TV_INTERNAL, "database failed: %s",
		    sqlite3_errstr(rc));
	}
}

/* Step a statement that returns no row; reset it either way. */
static int
step_done(struct wctx *w, sqlite3_stmt *s, struct tv_error *err)
{
	int	 rc;

	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(w, rc, err);
}

/*
 * Step an INSERT that does not expect its row to be there; reset it
 * either way.  1 inserted, 0 the row is there (a constraint), -1 failed.
 */
static int
step_new(struct wctx *w, sqlite3_stmt *s, struct tv_error *err)
{
	int	 rc;

	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return 1;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return 0;
	return db_fail(w, rc, err);
}

static int
db_error(struct wctx *w, sqlite3_stmt *s, int rc, struct tv_error *err)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return db_fail(w, rc, err);
}

/* Make catalog changes visible to this connection's catalog. */
static int
catalog_bump(struct wctx *w, struct tv_error *err)
{
	int64_t	 v = 0;

	if (store_global_get_i64(w->st, GLOBAL_CATALOG_VERSION, &v) == -1 ||
	    store_global_set_i64(w->st, GLOBAL_CATALOG_VERSION, v + 1) == -1 ||
	    store_load_catalog(w->st) == -1)
		return db_fail(w, sqlite3_extended_errcode(w->st->db), err);
	w->catalog_changed = 1;
	return 0;
}

static int
index_insert_def(struct wctx *w, int64_t table_id, const char *name,
    char *const *fields, size_t nfields, int builtin, int unique,
    struct tv_error *err)
{
	sqlite3_stmt	*s = w->stmt[WS_INDEX_NEW];
	struct buf	 f;
	size_t		 i;
	int		 rc;

	buf_init(&f);
	buf_addc(&f, '[');
	for (i = 0; i < nfields; i++) {
		if (i > 0)
			buf_addc(&f, ',');
		json_print_string(&f, fields[i], strlen(fields[i]));
	}
	buf_addc(&f, ']');
	sqlite3_bind_int64(s, 1, table_id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, f.data, (int)f.len, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, builtin);
	sqlite3_bind_int(s, 5, unique);
	sqlite3_bind_int64(s, 6, w->ts);
	rc = step_done(w, s, err);
	buf_free(&f);
	return rc;
}

int
wctx_table(struct wctx *w, const char *name, int create,
    const struct store_table **out, struct tv_error *err)
{
	static char *const by_id[] = { "_id" };
	static char *const by_ct[] = { "_creationTime", "_id" };
	sqlite3_stmt	*s = w->stmt[WS_TABLE_NEW];
	int64_t		 table_id;

	assert(w->st != NULL && name != NULL && out != NULL);
	*out = catalog_table(w->st->catalog, name);
	if (*out != NULL || !create)
		return 0;
	if (w->st->catalog->ntables >= STORE_MAX_TABLES)
		return tv_seterr(err, TV_TOO_LARGE, "more than %d tables",
		    STORE_MAX_TABLES);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, w->ts);
	if (step_done(w, s, err) == -1)
		return -1;
	table_id = sqlite3_last_insert_rowid(w->st->db);
	s = w->stmt[WS_COUNT_NEW];
	sqlite3_bind_int64(s, 1, table_id);
	if (step_done(w, s, err) == -1)
		return -1;
	if (index_insert_def(w, table_id, STORE_INDEX_BY_ID, by_id, 1, 1, 0,
	    err) == -1 ||
	    index_insert_def(w, table_id, STORE_INDEX_BY_CREATION, by_ct, 2, 1,
	    0, err) == -1 ||
	    catalog_bump(w, err) == -1)
		return -1;
	*out = catalog_table(w->st->catalog, name);
	if (*out == NULL)
		return tv_seterr(err, TV_INTERNAL, "table %s vanished", name);
	log_info("created table %s", name);
	return 0;
}

int
wctx_read(struct wctx *w, const struct store_table *t, const char *id,
    cJSON **doc, int64_t *ts, struct tv_error *err)
{
	sqlite3_stmt	*s = w->stmt[WS_CUR_DOC];
	const char	*json;
	enum json_err	 jerr;
	int		 rc;

	assert(w->st != NULL && t != NULL && id != NULL && doc != NULL);
	*doc = NULL;
	*ts = 0;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == t->id) {
		json = (const char *)sqlite3_column_text(s, 2);
		*ts = sqlite3_column_int64(s, 1);
		*doc = json_parse(json, (size_t)sqlite3_column_bytes(s, 2),
		    JSON_MAX_DEPTH + 1, &jerr);
		if (*doc == NULL) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			return tv_seterr(err, TV_INTERNAL,
			    "stored document %s unreadable", id);
		}
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(w, s, rc, err);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return 0;
}

static struct wdoc *
wdoc_find(struct wctx *w, int64_t table_id, const char *id)
{
	size_t	 i;

	for (i = 0; i < w->ndocs; i++)
		if (w->docs[i].table_id == table_id &&
		    strcmp(w->docs[i].id, id) == 0)
			return &w->docs[i];
	return NULL;
}

static int
doc_key(struct wctx *w, struct buf *out, const cJSON *doc,
    const struct store_index *ix, const char *id, struct tv_error *err)
{
	if (key_encode_doc(out, doc, ix->fields, ix->nfields, id) == -1)
		return tv_seterr(err, TV_VALIDATION, "the fields of index %s "
		    "make a key over %d bytes or too deep to index",
		    ix->name, KEY_MAX_BYTES);
	(void)w;
	return 0;
}

/*
 * A unique index compares its declared fields only.  Documents that lack
 * one of them are not constrained.
 */
static int
unique_check(struct wctx *w, const struct store_index *ix, const cJSON *doc,
    const char *id, struct tv_error *err)
{
	sqlite3_stmt	*s = w->stmt[WS_CUR_IDX_RANGE];
	const cJSON	*v;
	char		 other[STORE_ID_LEN + 1];
	size_t		 i;
	int		 rc, hi_open = 0, ret = 0;

	buf_reset(&w->key2);
	for (i = 0; i < ix->ndeclared; i++) {
		if ((v = json_get(doc, ix->fields[i])) == NULL)
			return 0;
		if (key_append_value(&w->key2, v) == -1)
			return tv_seterr(err, TV_VALIDATION, "value of index "
			    "%s cannot be indexed", ix->name);
	}
	buf_reset(&w->key);
	buf_add(&w->key, w->key2.data, w->key2.len);
	if (key_prefix_successor(&w->key) == -1)
		hi_open = 1;
	sqlite3_bind_int64(s, 1, ix->id);
	sqlite3_bind_blob(s, 2, w->key2.data, (int)w->key2.len,
	    SQLITE_STATIC);
	if (hi_open)
		sqlite3_bind_blob(s, 3, "\xff", 1, SQLITE_STATIC);
	else
		sqlite3_bind_blob(s, 3, w->key.data, (int)w->key.len,
		    SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (key_doc_id(sqlite3_column_blob(s, 0),
		    (size_t)sqlite3_column_bytes(s, 0), STORE_ID_LEN, other)
		    == -1) {
			ret = tv_seterr(err, TV_INTERNAL, "index %s holds a "
			    "key without a document id", ix->name);
			break;
		}
		if (strcmp(other, id) != 0) {
			ret = tv_seterr(err, TV_CONFLICT, "unique index %s "
			    "already has document %s with these values",
			    ix->name, other);
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(w, s, rc, err);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

/*
 * The index log records what a mutation changed against the state before
 * it: an entry at its ts says the key appeared (deleted = 0) or went away
 * (deleted = 1).  A key that one mutation removes and puts back, or adds
 * and removes again, keeps no entry at that ts, so the entries of every
 * key alternate, starting with an addition; GC relies on it (gc.c).
 */
static int
index_log(struct wctx *w, const struct store_index *ix, const struct wkey *k,
    const struct buf *key, int present, struct tv_error *err)
{
	sqlite3_stmt	*s;
	int		 before, rc;

	before = k->has_old && k->old.len == key->len &&
	    memcmp(k->old.data, key->data, key->len) == 0;
	if (before == present) {
		s = w->stmt[WS_IDX_LOG_DROP];
		sqlite3_bind_int64(s, 1, ix->id);
		sqlite3_bind_blob(s, 2, key->data, (int)key->len,
		    SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, w->ts);
		return step_done(w, s, err);
	}
	/*
	 * A key of a document that had no revision before the mutation
	 * cannot be in the log yet: a plain INSERT, cheaper than the upsert
	 * below, which still runs should the row be there after all.
	 */
	if (!k->has_old && present) {
		s = w->stmt[WS_IDX_LOG_NEW];
		sqlite3_bind_int64(s, 1, ix->id);
		sqlite3_bind_blob(s, 2, key->data, (int)key->len,
		    SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, w->ts);
		sqlite3_bind_int64(s, 4, ix->table_id);
		if ((rc = step_new(w, s, err)) != 0)
			return rc == 1 ? 0 : -1;
	}
	s = w->stmt[WS_IDX_LOG];
	sqlite3_bind_int64(s, 1, ix->id);
	sqlite3_bind_blob(s, 2, key->data, (int)key->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, w->ts);
	sqlite3_bind_int(s, 4, !present);
	sqlite3_bind_int64(s, 5, ix->table_id);
	return step_done(w, s, err);
}

static int
index_current(struct wctx *w, const struct store_index *ix,
    const struct buf *key, int present, struct tv_error *err)
{
	sqlite3_stmt	*s = w->stmt[present ? WS_CUR_IDX_PUT :
			    WS_CUR_IDX_DEL];

	sqlite3_bind_int64(s, 1, ix->id);
	sqlite3_bind_blob(s, 2, key->data, (int)key->len, SQLITE_STATIC);
	return step_done(w, s, err);
}

/* Bind a row of the document log: id at w->ts, json or a deletion. */
static void
doc_log_bind(struct wctx *w, sqlite3_stmt *s, const struct store_table *t,
    const char *id, const struct buf *json, int present, int64_t old_ts)
{
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, w->ts);
	sqlite3_bind_int64(s, 3, t->id);
	if (present)
		sqlite3_bind_text(s, 4, json->data, (int)json->len,
		    SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	sqlite3_bind_int(s, 5, !present);
	sqlite3_bind_int64(s, 6, old_ts);
}

int
wctx_write(struct wctx *w, const struct store_table *t, const char *id,
    const cJSON *olddoc, int64_t old_ts, const cJSON *newdoc,
    struct tv_error *err)
{
	const struct store_index	*ix;
	struct wdoc			*d;
	struct wkey			*k;
	sqlite3_stmt			*s;
	struct buf			*json = &w->json;
	size_t				 i, n;
	int64_t				 seq = 0;
	int				 changed, fresh = 0, rc;

	assert(w->st != NULL && t != NULL && id != NULL && w->ts > 0);
	/*
	 * Printed once, into a buffer that keeps its room from one write
	 * to the next: the size check and the stored text.
	 */
	buf_reset(json);
	if (newdoc != NULL) {
		json_print(json, newdoc);
		if (json->len > w->conf->max_document_bytes)
			return tv_seterr(err, TV_TOO_LARGE, "document is %zu "
			    "bytes, over max_document_bytes %llu", json->len,
			    (unsigned long long)w->conf->max_document_bytes);
	}
	/*
	 * A document without an old revision has a new id (wctx_new_id
	 * made sure that no revision has it, not even one of this
	 * transaction): it is not in the write set yet.
	 */
	d = olddoc != NULL ? wdoc_find(w, t->id, id) : NULL;
	if (d == NULL) {
		if (w->ndocs == w->cap) {
			n = w->cap == 0 ? 8 : w->cap * 2;
			w->docs = xreallocarray(w->docs, n, sizeof(*w->docs));
			memset(w->docs + w->cap, 0,
			    (n - w->cap) * sizeof(*w->docs));
			w->cap = n;
		}
		d = &w->docs[w->ndocs++];
		fresh = 1;
		d->table_id = t->id;
		strlcpy_tv(d->id, id, sizeof(d->id));
		if (d->keycap < t->nindexes) {
			d->keys = xreallocarray(d->keys, t->nindexes,
			    sizeof(*d->keys));
			for (i = d->keycap; i < t->nindexes; i++) {
				buf_init(&d->keys[i].old);
				buf_init(&d->keys[i].new);
			}
			d->keycap = t->nindexes;
		}
		d->nkeys = t->nindexes;
		for (i = 0; i < t->nindexes; i++) {
			k = &d->keys[i];
			k->index_id = t->indexes[i]->id;
			k->has_old = k->has_new = 0;
			buf_reset(&k->old);
			buf_reset(&k->new);
			if (olddoc != NULL) {
				if (doc_key(w, &k->old, olddoc, t->indexes[i],
				    id, err) == -1)
					goto fail;
				k->has_old = 1;
			}
		}
	}
	for (i = 0; i < t->nindexes && i < d->nkeys; i++) {
		ix = t->indexes[i];
		k = &d->keys[i];
		/* The key as it stands before this write. */
		buf_reset(&w->key);
		if (olddoc != NULL && doc_key(w, &w->key, olddoc, ix, id,
		    err) == -1)
			goto fail;
		buf_reset(&k->new);
		k->has_new = 0;
		if (newdoc != NULL) {
			if (doc_key(w, &k->new, newdoc, ix, id, err) == -1)
				goto fail;
			k->has_new = 1;
		}
		changed = (olddoc != NULL) != (newdoc != NULL) ||
		    (olddoc != NULL && (w->key.len != k->new.len ||
		    memcmp(w->key.data, k->new.data, w->key.len) != 0));
		if (!changed)
			continue;
		if (olddoc != NULL) {
			if (index_log(w, ix, k, &w->key, 0, err) == -1 ||
			    index_current(w, ix, &w->key, 0, err) == -1)
				goto fail;
		}
		if (newdoc != NULL) {
			if (ix->unique && unique_check(w, ix, newdoc, id,
			    err) == -1)
				goto fail;
			if (index_log(w, ix, k, &k->new, 1, err) == -1 ||
			    index_current(w, ix, &k->new, 1, err) == -1)
				goto fail;
		}
	}
	/*
	 * The first write of a document in a mutation has no row at this
	 * ts yet: a plain INSERT, its seq the rowid, and no RETURNING
	 * (which SQLite runs through a temporary table).  Should a row be
	 * there after all, the upsert below replaces it.
	 */
	if (fresh) {
		s = w->stmt[WS_DOC_NEW];
		doc_log_bind(w, s, t, id, json, newdoc != NULL, old_ts);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		if (rc == SQLITE_DONE)
			seq = sqlite3_last_insert_rowid(w->st->db);
		else if ((rc & 0xff) != SQLITE_CONSTRAINT) {
			db_fail(w, rc, err);
			goto fail;
		}
	}
	if (seq == 0) {
		s = w->stmt[WS_DOC_LOG];
		doc_log_bind(w, s, t, id, json, newdoc != NULL, old_ts);
		/* The row's seq, also when a second write of one ts updates
		 * it. */
		if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			seq = sqlite3_column_int64(s, 0);
			rc = sqlite3_step(s);
		}
		if (rc != SQLITE_DONE || seq == 0) {
			db_error(w, s, rc == SQLITE_DONE ? SQLITE_INTERNAL :
			    rc, err);
			goto fail;
		}
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	/* A new document: a plain INSERT, as in index_log. */
	rc = 0;
	if (olddoc == NULL && newdoc != NULL) {
		s = w->stmt[WS_CUR_DOC_NEW];
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, t->id);
		sqlite3_bind_int64(s, 3, w->ts);
		sqlite3_bind_int64(s, 4, seq);
		if ((rc = step_new(w, s, err)) == -1)
			goto fail;
	}
	if (rc == 1)
		s = NULL;
	else if (newdoc != NULL) {
		s = w->stmt[WS_CUR_DOC_PUT];
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, t->id);
		sqlite3_bind_int64(s, 3, w->ts);
		sqlite3_bind_int64(s, 4, seq);
	} else {
		s = w->stmt[WS_CUR_DOC_DEL];
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	}
	if (s != NULL && step_done(w, s, err) == -1)
		goto fail;
	/* A document came or went: the table's count moves, at commit. */
	if ((olddoc == NULL) != (newdoc == NULL))
		count_add(w, t->id, newdoc != NULL ? 1 : -1);
	return 0;
fail:
	return -1;
}

#define ID_TIME_CHARS	10	/* leading id characters that are a time */
#define ID_RANDOM_CHARS	(STORE_ID_LEN - ID_TIME_CHARS)

/*
 * n bytes from the kernel's random generator, taken from the buffer and
 * wiped there; the buffer is refilled when it runs short.  0 or -1.
 */
static int
random_take(struct wctx *w, unsigned char *out, size_t n)
{
	ssize_t	 got;

	assert(n <= sizeof(w->rnd));
	if (w->rndlen < n) {
		got = getrandom(w->rnd, sizeof(w->rnd), 0);
		if (got < (ssize_t)n)
			return -1;
		w->rndlen = (size_t)got;
	}
	w->rndlen -= n;
	memcpy(out, w->rnd + w->rndlen, n);
	explicit_bzero(w->rnd + w->rndlen, n);
	return 0;
}

int
wctx_new_id(struct wctx *w, char out[STORE_ID_LEN + 1],
    struct tv_error *err)
{
	static const char	 alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
	sqlite3_stmt		*s = w->stmt[WS_ID_USED];
	unsigned char		 r[ID_RANDOM_CHARS];
	uint64_t		 ms;
	int			 i, tries, rc;

	assert(w->st != NULL && out != NULL);
	for (tries = 0; tries < 8; tries++) {
		if (random_take(w, r, sizeof(r)) == -1)
			return tv_seterr(err, TV_INTERNAL, "no randomness");
		/*
		 * The first 10 characters are the milliseconds of the ts (50
		 * bits, in alphabet order), the other 16 random (80 bits):
		 * new ids land next to each other in every B-tree keyed by
		 * id instead of on a random page each.
		 */
		ms = (uint64_t)w->ts / 1000;
		for (i = ID_TIME_CHARS - 1; i >= 0; i--) {
			out[i] = alphabet[ms & 31];
			ms >>= 5;
		}
		for (i = 0; i < ID_RANDOM_CHARS; i++)
			out[ID_TIME_CHARS + i] = alphabet[r[i] & 31];
		out[STORE_ID_LEN] = '\0';
		sqlite3_bind_text(s, 1, out, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return db_fail(w, rc, err);
	}
	return tv_seterr(err, TV_INTERNAL, "cannot find a free id");
}

int
wctx_index_create(struct wctx *w, const struct store_table *t,
    const char *name, char *const *fields, size_t nfields, int unique,
    struct tv_error *err)
{
	const struct store_table	*nt;
	const struct store_index	*ix;
	sqlite3_stmt			*s = NULL;
	const char			*id, *json;
	cJSON				*doc;
	enum json_err			 jerr;
	int64_t				 table_id = t->id, ts;
	int				 rc;

	assert(w->st != NULL && t != NULL && name != NULL &&
	    nfields <= STORE_MAX_INDEX_FIELDS);
	if (t->nindexes >= STORE_MAX_INDEXES)
		return tv_seterr(err, TV_TOO_LARGE, "table %s has %d indexes",
		    t->name, STORE_MAX_INDEXES);
	if (index_insert_def(w, table_id, name, fields, nfields, 0, unique,
	    err) == -1 || catalog_bump(w, err) == -1)
		return -1;
	if ((nt = catalog_table_by_id(w->st->catalog, table_id)) == NULL ||
	    (ix = catalog_index(nt, name)) == NULL)
		return tv_seterr(err, TV_INTERNAL, "index %s vanished", name);
	/* Backfill from the current documents. */
	if (sqlite3_prepare_v2(w->st->db, "SELECT c.id, c.ts, d.json_value"
	    " FROM current_documents c, documents d"
	    " WHERE c.table_id = ?1 AND d.seq = c.seq", -1, &s, NULL)
	    != SQLITE_OK)
		return tv_seterr(err, TV_INTERNAL, "backfill failed");
	sqlite3_bind_int64(s, 1, table_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(s, 0);
		ts = sqlite3_column_int64(s, 1);
		json = (const char *)sqlite3_column_text(s, 2);
		doc = json_parse(json, (size_t)sqlite3_column_bytes(s, 2),
		    JSON_MAX_DEPTH + 1, &jerr);
		if (doc == NULL) {
			tv_seterr(err, TV_INTERNAL, "document %s unreadable",
			    id);
			goto fail;
		}
		/* unique_check uses w->key as scratch: build the key after. */
		rc = ix->unique ? unique_check(w, ix, doc, id, err) : 0;
		buf_reset(&w->key);
		if (rc == 0)
			rc = doc_key(w, &w->key, doc, ix, id, err);
		cJSON_Delete(doc);
		if (rc == -1)
			goto fail;
		{
			sqlite3_stmt	*l = w->stmt[WS_IDX_LOG];

			sqlite3_bind_int64(l, 1, ix->id);
			sqlite3_bind_blob(l, 2, w->key.data, (int)w->key.len,
			    SQLITE_STATIC);
			sqlite3_bind_int64(l, 3, ts);
			sqlite3_bind_int(l, 4, 0);
			sqlite3_bind_int64(l, 5, table_id);
			if (step_done(w, l, err) == -1 ||
			    index_current(w, ix, &w->key, 1, err) == -1)
				goto fail;
		}
	}
	if (rc != SQLITE_DONE) {
		db_fail(w, rc, err);
		goto fail;
	}
	sqlite3_finalize(s);
	log_info("built index %s.%s", nt->name, name);
	return 0;
fail:
	sqlite3_finalize(s);
	return -1;
}

int
wctx_index_drop(struct wctx *w, const struct store_index *ix,
    struct tv_error *err)
{
	sqlite3_stmt	*s = NULL;
	const char	*sql[] = {
		"DELETE FROM current_indexes WHERE index_id = ?1",
		"DELETE FROM indexes WHERE index_id = ?1",
		"DELETE FROM index_defs WHERE index_id = ?1",
	};
	int64_t		 id = ix->id;
	size_t		 i;

	assert(w->st != NULL && ix != NULL);
	for (i = 0; i < nitems(sql); i++) {
		if (sqlite3_prepare_v2(w->st->db, sql[i], -1, &s, NULL)
		    != SQLITE_OK)
			return tv_seterr(err, TV_INTERNAL, "drop failed");
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) != SQLITE_DONE) {
			sqlite3_finalize(s);
			return tv_seterr(err, TV_INTERNAL, "drop failed");
		}
		sqlite3_finalize(s);
	}
	return catalog_bump(w, err);
}

void
wctx_notice(struct wctx *w, int64_t prev_ts, int64_t catalog_version,
    struct buf *frame)
{
	struct ipc_msg	 m;
	size_t		 i, j, total = 0;
	struct wdoc	*d;
	struct wkey	*k;
	const struct buf *out;

	assert(w->st != NULL && frame != NULL && prev_ts < w->ts);
	for (i = 0; i < w->ndocs; i++)
		for (j = 0; j < w->docs[i].nkeys; j++)
			total += w->docs[i].keys[j].old.len +
			    w->docs[i].keys[j].new.len + 16;
	ipc_msg_init(&m, IPC_COMMIT, 0, 4);
	ipc_add_i64(&m, w->ts);
	ipc_add_i64(&m, prev_ts);
	ipc_add_i64(&m, catalog_version);
	if (total > IPC_MAX_WRITESET_BYTES)
		ipc_add_nil(&m);
	else {
		ipc_add_array(&m, (uint32_t)w->ndocs);
		for (i = 0; i < w->ndocs; i++) {
			d = &w->docs[i];
			ipc_add_array(&m, 3);
			ipc_add_i64(&m, d->table_id);
			ipc_add_cstr(&m, d->id);
			ipc_add_array(&m, (uint32_t)d->nkeys);
			for (j = 0; j < d->nkeys; j++) {
				k = &d->keys[j];
				ipc_add_array(&m, 3);
				ipc_add_i64(&m, k->index_id);
				if (k->has_old)
					ipc_add_bin(&m, k->old.data,
					    k->old.len);
				else
					ipc_add_nil(&m);
				if (k->has_new)
					ipc_add_bin(&m, k->new.data,
					    k->new.len);
				else
					ipc_add_nil(&m);
			}
		}
	}
	out = ipc_msg_finish(&m);
	buf_add(frame, out->data, out->len);
	ipc_msg_free(&m);
}
