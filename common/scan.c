/*
 * Snapshot reads over the storage engine: a document by id, and index
 * range scans, on the current state or on the log at a past ts, with the
 * read sets that let a gateway decide later whether a write touched a
 * result.  The log is walked key by key in index order, taking for each
 * key its newest revision at or before the read ts: a streaming plan with
 * a LIMIT and a key cursor, never a GROUP BY over the whole range.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "scan.h"

/* A blob greater than every key: keys start with a tag <= 0x07. */
static const unsigned char key_top[1] = { 0xff };

void
readset_init(struct readset *rs)
{
	memset(rs, 0, sizeof(*rs));
}

void
readset_free(struct readset *rs)
{
	size_t	 i;

	for (i = 0; i < rs->n; i++) {
		free(rs->iv[i].lo);
		free(rs->iv[i].hi);
	}
	free(rs->iv);
	readset_init(rs);
}

static unsigned char *
dupbytes(const void *p, size_t n)
{
	unsigned char	*d;

	d = xmalloc(n == 0 ? 1 : n);
	if (n > 0)
		memcpy(d, p, n);
	return d;
}

void
readset_add(struct readset *rs, int64_t index_id, const void *lo,
    size_t lolen, const void *hi, size_t hilen, int hi_unbounded)
{
	struct readset_iv	*iv;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap == 0 ? 4 : rs->cap * 2;
		rs->iv = xreallocarray(rs->iv, rs->cap, sizeof(*rs->iv));
	}
	iv = &rs->iv[rs->n++];
	iv->index_id = index_id;
	iv->lo = dupbytes(lo, lolen);
	iv->lolen = lolen;
	if (hi_unbounded) {
		iv->hi = NULL;
		iv->hilen = 0;
	} else {
		iv->hi = dupbytes(hi, hilen);
		iv->hilen = hilen;
	}
}

/* 1 when a and b hold the same intervals in the same order. */
int
readset_equal(const struct readset *a, const struct readset *b)
{
	const struct readset_iv	*x, *y;
	size_t			 i;

	if (a->n != b->n || a->catalog_dep != b->catalog_dep)
		return 0;
	for (i = 0; i < a->n; i++) {
		x = &a->iv[i];
		y = &b->iv[i];
		if (x->index_id != y->index_id ||
		    bytecmp(x->lo, x->lolen, y->lo, y->lolen) != 0 ||
		    (x->hi == NULL) != (y->hi == NULL) ||
		    (x->hi != NULL &&
		    bytecmp(x->hi, x->hilen, y->hi, y->hilen) != 0))
			return 0;
	}
	return 1;
}

int
readset_hit(const struct readset *rs, int64_t index_id, const void *key,
    size_t keylen)
{
	size_t			 i;
	const struct readset_iv	*iv;

	for (i = 0; i < rs->n; i++) {
		iv = &rs->iv[i];
		if (iv->index_id != index_id)
			continue;
		if (bytecmp(key, keylen, iv->lo, iv->lolen) < 0)
			continue;
		if (iv->hi != NULL &&
		    bytecmp(key, keylen, iv->hi, iv->hilen) >= 0)
			continue;
		return 1;
	}
	return 0;
}

size_t
readset_bytes(const struct readset *rs)
{
	size_t	 i, n = rs->cap * sizeof(*rs->iv);

	for (i = 0; i < rs->n; i++)
		n += rs->iv[i].lolen + rs->iv[i].hilen;
	return n;
}

/*
 * Record the part of [lo, hi) a scan covered: all of it when it ran to
 * the end, else up to and including the last key read.
 */
static void
note_interval(struct readset *rs, const struct scan_range *r, int complete,
    const struct buf *last)
{
	struct buf	 edge;

	if (rs == NULL)
		return;
	if (complete || last->len == 0) {
		readset_add(rs, r->index_id, r->lo, r->lolen, r->hi, r->hilen,
		    r->hi == NULL);
		return;
	}
	if (!r->desc) {
		/* [lo, last + 0x00): the smallest string above last. */
		buf_init(&edge);
		buf_add(&edge, last->data, last->len);
		buf_addc(&edge, '\0');
		readset_add(rs, r->index_id, r->lo, r->lolen, edge.data,
		    edge.len, 0);
		buf_free(&edge);
	} else
		readset_add(rs, r->index_id, last->data, last->len, r->hi,
		    r->hilen, r->hi == NULL);
}

/* The key of the document just returned, for a caller that asked. */
static void
note_last(const struct scan_range *r, const struct buf *key)
{
	if (r->last_key == NULL)
		return;
	buf_reset(r->last_key);
	buf_add(r->last_key, key->data, key->len);
}

static void
bind_range(sqlite3_stmt *s, const struct scan_range *r, const void *lo,
    size_t lolen, const void *hi, size_t hilen)
{
	sqlite3_bind_int64(s, 1, r->index_id);
	sqlite3_bind_blob(s, 2, lo, (int)lolen, SQLITE_TRANSIENT);
	if (hi == NULL)
		sqlite3_bind_blob(s, 3, key_top, sizeof(key_top),
		    SQLITE_STATIC);
	else
		sqlite3_bind_blob(s, 3, hi, (int)hilen, SQLITE_TRANSIENT);
}

static void
stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* The id at the end of a stored key; a key without one is damage. */
static int
key_id(const void *key, size_t len, char id[STORE_ID_LEN + 1])
{
	if (key_doc_id(key, len, STORE_ID_LEN, id) == 0)
		return 0;
	log_warnx("%s: index entry whose key does not end with an id",
	    __func__);
	return -1;
}

/* The current state: index entries joined to their documents. */
static int64_t
scan_current(struct store *st, const struct scan_range *r, scan_cb cb,
    void *arg, struct readset *rs)
{
	sqlite3_stmt	*s, *d = st->stmt[ST_CUR_DOC_GET];
	struct buf	 last;
	const char	*json;
	char		 id[STORE_ID_LEN + 1];
	int64_t		 n = 0;
	int		 rc, cbrc = 0, complete = 1;

	s = st->stmt[r->desc ? ST_CUR_IDX_DESC : ST_CUR_IDX_ASC];
	buf_init(&last);
	bind_range(s, r, r->lo, r->lolen, r->hi, r->hilen);
	sqlite3_bind_int64(s, 4, r->limit > 0 ? r->limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		buf_reset(&last);
		buf_add(&last, sqlite3_column_blob(s, 0),
		    (size_t)sqlite3_column_bytes(s, 0));
		if (key_id(last.data, last.len, id) == -1)
			goto fail;
		sqlite3_bind_text(d, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(d) != SQLITE_ROW) {
			log_warnx("%s: index entry without document %s",
			    __func__, id);
			stmt_done(d);
			goto fail;
		}
		json = (const char *)sqlite3_column_text(d, 2);
		cbrc = cb(arg, id, json, (size_t)sqlite3_column_bytes(d, 2));
		stmt_done(d);
		if (cbrc == -1)
			goto fail;
		note_last(r, &last);
		n++;
		if (cbrc == 1 || (r->limit > 0 && n >= r->limit)) {
			complete = 0;
			break;
		}
	}
	if (complete && rc != SQLITE_DONE) {
		log_warnx("%s: %s", __func__, sqlite3_errmsg(st->db));
		goto fail;
	}
	stmt_done(s);
	note_interval(rs, r, complete, &last);
	buf_free(&last);
	return n;
fail:
	stmt_done(s);
	buf_free(&last);
	return -1;
}

/*
 * The log at a past ts, a page of revisions at a time.  Revisions come
 * newest first within a key, so the first row of each key decides it.
 */
static int64_t
scan_log(struct store *st, const struct scan_range *r, scan_cb cb,
    void *arg, struct readset *rs)
{
	sqlite3_stmt	*s, *d = st->stmt[ST_LOG_DOC_AT];
	struct buf	 last, lo, hi;
	const char	*json;
	char		 id[STORE_ID_LEN + 1];
	const void	*key;
	size_t		 keylen;
	int64_t		 n = 0, rows;
	int		 rc, cbrc, complete = 1, hi_open = r->hi == NULL;

	s = st->stmt[r->desc ? ST_LOG_IDX_DESC : ST_LOG_IDX_ASC];
	buf_init(&last);
	buf_init(&lo);
	buf_init(&hi);
	buf_add(&lo, r->lo, r->lolen);
	if (!hi_open)
		buf_add(&hi, r->hi, r->hilen);
	for (;;) {
		bind_range(s, r, lo.data, lo.len, hi_open ? NULL : hi.data,
		    hi.len);
		sqlite3_bind_int64(s, 4, SCAN_PAGE_ROWS);
		sqlite3_bind_int64(s, 5, r->read_ts);
		rows = 0;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			rows++;
			key = sqlite3_column_blob(s, 0);
			keylen = (size_t)sqlite3_column_bytes(s, 0);
			if (last.len > 0 && last.len == keylen &&
			    memcmp(last.data, key, keylen) == 0)
				continue;	/* an older revision */
			buf_reset(&last);
			buf_add(&last, key, keylen);
			if (sqlite3_column_int(s, 2) != 0)
				continue;	/* deleted at read_ts */
			if (key_id(key, keylen, id) == -1)
				goto fail;
			sqlite3_bind_text(d, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(d, 2, r->read_ts);
			if (sqlite3_step(d) != SQLITE_ROW ||
			    sqlite3_column_int(d, 3) != 0) {
				log_warnx("%s: index entry without document"
				    " %s", __func__, id);
				stmt_done(d);
				goto fail;
			}
			json = (const char *)sqlite3_column_text(d, 2);
			cbrc = cb(arg, id, json,
			    (size_t)sqlite3_column_bytes(d, 2));
			stmt_done(d);
			if (cbrc == -1)
				goto fail;
			note_last(r, &last);
			n++;
			if (cbrc == 1 || (r->limit > 0 && n >= r->limit)) {
				complete = 0;
				break;
			}
		}
		if (complete && rc != SQLITE_DONE) {
			log_warnx("%s: %s", __func__, sqlite3_errmsg(st->db));
			goto fail;
		}
		stmt_done(s);
		if (!complete || rows < SCAN_PAGE_ROWS)
			break;
		/* Resume past the last key, skipping its older revisions. */
		if (!r->desc) {
			buf_reset(&lo);
			buf_add(&lo, last.data, last.len);
			buf_addc(&lo, '\0');
		} else {
			buf_reset(&hi);
			buf_add(&hi, last.data, last.len);
			hi_open = 0;
		}
	}
	note_interval(rs, r, complete, &last);
	buf_free(&last);
	buf_free(&lo);
	buf_free(&hi);
	return n;
fail:
	stmt_done(s);
	buf_free(&last);
	buf_free(&lo);
	buf_free(&hi);
	return -1;
}

int64_t
scan_index(struct store *st, const struct scan_range *r, scan_cb cb,
    void *arg, struct readset *rs)
{
	if (r->read_ts == SCAN_CURRENT)
		return scan_current(st, r, cb, arg, rs);
	return scan_log(st, r, cb, arg, rs);
}

int
scan_get(struct store *st, const struct store_table *t, const char *id,
    int64_t read_ts, struct buf *out, struct readset *rs)
{
	const struct store_index	*ix;
	sqlite3_stmt			*s;
	struct buf			 key;
	int				 rc, found = 0;

	buf_reset(out);
	if (t == NULL) {
		if (rs != NULL)
			rs->catalog_dep = 1;
		return 0;
	}
	if (rs != NULL && (ix = catalog_index(t, STORE_INDEX_BY_ID)) != NULL) {
		buf_init(&key);
		key_append_string(&key, id, strlen(id));
		buf_addc(&key, '\0');
		readset_add(rs, ix->id, key.data, key.len - 1, key.data,
		    key.len, 0);
		buf_free(&key);
	}
	if (read_ts == SCAN_CURRENT) {
		s = st->stmt[ST_CUR_DOC_GET];
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == t->id) {
			buf_add(out, sqlite3_column_text(s, 2),
			    (size_t)sqlite3_column_bytes(s, 2));
			found = 1;
		}
	} else {
		s = st->stmt[ST_LOG_DOC_AT];
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, read_ts);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && sqlite3_column_int64(s, 1) == t->id &&
		    sqlite3_column_int(s, 3) == 0) {
			buf_add(out, sqlite3_column_text(s, 2),
			    (size_t)sqlite3_column_bytes(s, 2));
			found = 1;
		}
	}
	stmt_done(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warnx("%s: %s", __func__, sqlite3_errmsg(st->db));
		return -1;
	}
	return found;
}

int64_t
scan_log_since(struct store *st, int64_t after, int64_t upto,
    scan_log_cb cb, void *arg)
{
	sqlite3_stmt	*s = st->stmt[ST_LOG_SINCE];
	sqlite3_stmt	*d = st->stmt[ST_LOG_DOC_EXACT];
	const char	*id, *json, *before;
	char		*prev;
	int64_t		 n = 0, prev_ts;
	int		 rc, cbrc;

	sqlite3_bind_int64(s, 1, after);
	sqlite3_bind_int64(s, 2, upto);
	sqlite3_bind_int64(s, 3, -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(s, 0);
		json = sqlite3_column_int(s, 4) ? NULL :
		    (const char *)sqlite3_column_text(s, 3);
		prev_ts = sqlite3_column_int64(s, 5);
		prev = NULL;
		if (prev_ts != 0) {
			sqlite3_bind_text(d, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(d, 2, prev_ts);
			if (sqlite3_step(d) == SQLITE_ROW &&
			    sqlite3_column_int(d, 1) == 0 &&
			    (before = (const char *)sqlite3_column_text(d, 0))
			    != NULL)
				prev = xstrdup(before);
			stmt_done(d);
		}
		cbrc = cb(arg, sqlite3_column_int64(s, 1),
		    sqlite3_column_int64(s, 2), id, prev, json);
		free(prev);
		if (cbrc == -1) {
			stmt_done(s);
			return -1;
		}
		n++;
	}
	stmt_done(s);
	if (rc != SQLITE_DONE) {
		log_warnx("%s: %s", __func__, sqlite3_errmsg(st->db));
		return -1;
	}
	return n;
}
