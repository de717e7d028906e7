/*
 * Shared query executions and invalidation.  Identical subscriptions on
 * this gateway (same udfPath, same canonical args) share one execution and
 * one serialized value.  Every execution is valid at the gateway's ts: a
 * commit notice marks the executions whose read set holds a key of its
 * write set, and one refresh reruns exactly those, inside one read
 * transaction whose ts becomes the gateway's ts.  When the database is
 * ahead of the notices processed (a notice not here yet, a gap, a write
 * set left out), the refresh reads the log for the missing range first,
 * so an execution it does not rerun is known to be valid at the new ts.
 *
 * The invalidation index maps a written key to the executions that may
 * depend on it without looking at the others: point intervals (db/get)
 * by (index, key) in a hash, range intervals in one list per index.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "gatewayd.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "udf.h"

struct ivent {
	struct exec		*ex;
	const struct readset_iv	*iv;
};

/*
 * The executions with intervals of one index: the point intervals at one
 * key, or (point 0) all the range intervals.  Its key in gw->ivtab is
 * the index id, the point flag, then the point's key bytes.
 */
struct ivbucket {
	struct hentry	 hent;
	unsigned char	*key;		/* index id, point, key bytes */
	size_t		 keylen;
	struct ivent	*ents;
	size_t		 n, cap;
};

#define IV_KEY_HEAD	(sizeof(int64_t) + 1)	/* index id, point */

/* The key of a bucket in gw->ivtab, into out (IV_KEY_HEAD + keylen). */
static void
iv_key(unsigned char *out, int64_t index_id, int point, const void *key,
    size_t keylen)
{
	memcpy(out, &index_id, sizeof(index_id));
	out[sizeof(index_id)] = point != 0;
	if (point && keylen > 0)
		memcpy(out + IV_KEY_HEAD, key, keylen);
}

static struct ivbucket *
iv_bucket(struct gateway *gw, int64_t index_id, int point, const void *key,
    size_t keylen, int create)
{
	struct ivbucket	*bk;
	struct hentry	*e;
	unsigned char	 small[IV_KEY_HEAD + 64], *k = small;
	size_t		 klen = IV_KEY_HEAD + (point ? keylen : 0);

	if (klen > sizeof(small))
		k = xmalloc(klen);
	iv_key(k, index_id, point, key, keylen);
	if ((e = htab_get(&gw->ivtab, k, klen)) != NULL) {
		bk = HTAB_ELEM(e, struct ivbucket, hent);
		goto done;
	}
	bk = NULL;
	if (!create)
		goto done;
	bk = xcalloc(1, sizeof(*bk));
	bk->key = xmalloc(klen);
	memcpy(bk->key, k, klen);
	bk->keylen = klen;
	htab_insert_key(&gw->ivtab, &bk->hent, bk->key, klen);
done:
	if (k != small)
		free(k);
	return bk;
}

static void
iv_bucket_free(struct gateway *gw, struct ivbucket *bk)
{
	htab_remove(&gw->ivtab, &bk->hent);
	free(bk->key);
	free(bk->ents);
	free(bk);
}

/* A point interval [k, k + 0x00) holds exactly k. */
static int
iv_is_point(const struct readset_iv *iv)
{
	return iv->hi != NULL && iv->hilen == iv->lolen + 1 &&
	    iv->hi[iv->lolen] == 0 && memcmp(iv->lo, iv->hi, iv->lolen) == 0;
}

static void
exec_register(struct gateway *gw, struct exec *ex)
{
	struct ivbucket	*bk;
	size_t		 i;
	int		 point;

	for (i = 0; i < ex->rs.n; i++) {
		point = iv_is_point(&ex->rs.iv[i]);
		bk = iv_bucket(gw, ex->rs.iv[i].index_id, point,
		    ex->rs.iv[i].lo, ex->rs.iv[i].lolen, 1);
		if (bk->n == bk->cap) {
			bk->cap = bk->cap == 0 ? 2 : bk->cap * 2;
			bk->ents = xreallocarray(bk->ents, bk->cap,
			    sizeof(*bk->ents));
		}
		bk->ents[bk->n].ex = ex;
		bk->ents[bk->n].iv = &ex->rs.iv[i];
		bk->n++;
	}
}

static void
exec_unregister(struct gateway *gw, struct exec *ex)
{
	struct ivbucket	*bk;
	size_t		 i, j;

	for (i = 0; i < ex->rs.n; i++) {
		bk = iv_bucket(gw, ex->rs.iv[i].index_id,
		    iv_is_point(&ex->rs.iv[i]), ex->rs.iv[i].lo,
		    ex->rs.iv[i].lolen, 0);
		if (bk == NULL)
			continue;
		for (j = 0; j < bk->n; j++) {
			if (bk->ents[j].ex == ex) {
				bk->ents[j] = bk->ents[--bk->n];
				j--;
			}
		}
		if (bk->n == 0)
			iv_bucket_free(gw, bk);
	}
}

static void
exec_mark(struct gateway *gw, struct exec *ex)
{
	if (ex->dirty)
		return;
	ex->dirty = 1;
	TAILQ_INSERT_TAIL(&gw->dirtyq, ex, dirty_entry);
}

void
query_invalidate_key(struct gateway *gw, int64_t index_id, const void *key,
    size_t keylen)
{
	struct ivbucket		*bk;
	const struct readset_iv	*iv;
	size_t			 i;

	assert(key != NULL || keylen == 0);
	if ((bk = iv_bucket(gw, index_id, 1, key, keylen, 0)) != NULL)
		for (i = 0; i < bk->n; i++)
			exec_mark(gw, bk->ents[i].ex);
	if ((bk = iv_bucket(gw, index_id, 0, NULL, 0, 0)) != NULL) {
		for (i = 0; i < bk->n; i++) {
			iv = bk->ents[i].iv;
			if (bytecmp(key, keylen, iv->lo, iv->lolen) >= 0 &&
			    (iv->hi == NULL ||
			    bytecmp(key, keylen, iv->hi, iv->hilen) < 0))
				exec_mark(gw, bk->ents[i].ex);
		}
	}
}

/* Executions: a hash by key. */

static struct exec *
exec_lookup(struct gateway *gw, const char *key, size_t keylen, uint64_t h)
{
	struct hentry	*e;

	if ((e = htab_find(&gw->exec_tab, h, key, keylen)) == NULL)
		return NULL;
	return HTAB_ELEM(e, struct exec, hent);
}

/*
 * Find or create the execution of (udf_path, args).  A new one is marked
 * dirty: the caller runs query_refresh before it uses the value.
 */
struct exec *
query_exec_get(struct gateway *gw, const char *udf_path, const cJSON *args)
{
	struct exec	*ex;
	struct buf	 key;
	uint64_t	 h;

	assert(udf_path != NULL && args != NULL);
	buf_init(&key);
	buf_adds(&key, udf_path);
	buf_addc(&key, '\0');
	json_print_canonical(&key, args);
	h = json_hash(key.data, key.len);
	if ((ex = exec_lookup(gw, key.data, key.len, h)) != NULL) {
		buf_free(&key);
		ex->refs++;
		return ex;
	}
	ex = xcalloc(1, sizeof(*ex));
	ex->keylen = key.len;
	ex->key = buf_steal(&key, NULL);
	ex->hent.hash = h;
	ex->hent.key = ex->key;
	ex->hent.keylen = ex->keylen;
	ex->udf_path = ex->key;
	readset_init(&ex->rs);
	ex->refs = 1;
	TAILQ_INSERT_TAIL(&gw->execs, ex, entry);
	gw->nexecs++;
	htab_insert(&gw->exec_tab, &ex->hent);
	exec_mark(gw, ex);
	return ex;
}

/*
 * The sessions to tell when the result changes: each session once, however
 * many of its queries share this execution.
 */
void
query_exec_watch(struct exec *ex, struct session *s)
{
	size_t	 i;

	assert(ex != NULL && s != NULL && ex->refs > 0);
	for (i = 0; i < ex->nwatchers; i++)
		if (ex->watchers[i] == s)
			return;
	if (ex->nwatchers == ex->capwatchers) {
		ex->capwatchers = ex->capwatchers == 0 ? 2 :
		    ex->capwatchers * 2;
		ex->watchers = xreallocarray(ex->watchers, ex->capwatchers,
		    sizeof(*ex->watchers));
	}
	ex->watchers[ex->nwatchers++] = s;
}

/* s no longer has any query on ex. */
void
query_exec_unwatch(struct exec *ex, struct session *s)
{
	size_t	 i;

	assert(ex != NULL && s != NULL);
	for (i = 0; i < ex->nwatchers; i++)
		if (ex->watchers[i] == s) {
			ex->watchers[i] = ex->watchers[--ex->nwatchers];
			return;
		}
}

void
query_exec_release(struct gateway *gw, struct exec *ex)
{
	assert(ex->refs > 0);
	if (--ex->refs > 0)
		return;
	exec_unregister(gw, ex);
	htab_remove(&gw->exec_tab, &ex->hent);
	if (ex->dirty)
		TAILQ_REMOVE(&gw->dirtyq, ex, dirty_entry);
	TAILQ_REMOVE(&gw->execs, ex, entry);
	gw->nexecs--;
	readset_free(&ex->rs);
	free(ex->err);
	free(ex->watchers);
	free(ex->key);
	free(ex->value);
	free(ex->diff);
	free(ex);
}

/*
 * Key ex under (its udfPath, args) from now on.  Another execution may
 * already hold that key: both stay, with equal results.
 */
void
query_exec_rekey(struct gateway *gw, struct exec *ex, const cJSON *args)
{
	struct buf	 key;

	assert(ex->refs > 0 && args != NULL);
	buf_init(&key);
	buf_adds(&key, ex->udf_path);
	buf_addc(&key, '\0');
	json_print_canonical(&key, args);
	htab_remove(&gw->exec_tab, &ex->hent);
	free(ex->key);
	ex->keylen = key.len;
	ex->key = buf_steal(&key, NULL);
	ex->udf_path = ex->key;
	htab_insert_key(&gw->exec_tab, &ex->hent, ex->key, ex->keylen);
}

/*
 * The canonical key of a db/get of a valid table name and document id,
 * which print without escapes: its args as json_print_canonical writes
 * them, members in byte order.
 */
#define GET_KEY_PATH	"db/get"
#define GET_KEY_ID	"{\"id\":\""
#define GET_KEY_TABLE	"\",\"table\":\""
#define GET_KEY_END	"\"}"

/*
 * 1 with the table name and the id copied out when ex is such a db/get,
 * which then runs without parsing its args again; 0 otherwise.
 */
static int
exec_get_args(const struct exec *ex, char table[STORE_NAME_MAX + 1],
    char id[STORE_ID_LEN + 1])
{
	const char	*p = ex->key, *end = ex->key + ex->keylen;
	size_t		 n;

	if ((size_t)(end - p) < sizeof(GET_KEY_PATH) + sizeof(GET_KEY_ID) -
	    1 + STORE_ID_LEN + sizeof(GET_KEY_TABLE) - 1 +
	    sizeof(GET_KEY_END) - 1 ||
	    memcmp(p, GET_KEY_PATH, sizeof(GET_KEY_PATH)) != 0)
		return 0;
	p += sizeof(GET_KEY_PATH);
	if (memcmp(p, GET_KEY_ID, sizeof(GET_KEY_ID) - 1) != 0)
		return 0;
	p += sizeof(GET_KEY_ID) - 1;
	memcpy(id, p, STORE_ID_LEN);
	id[STORE_ID_LEN] = '\0';
	p += STORE_ID_LEN;
	if (memcmp(p, GET_KEY_TABLE, sizeof(GET_KEY_TABLE) - 1) != 0)
		return 0;
	p += sizeof(GET_KEY_TABLE) - 1;
	n = (size_t)(end - p) - (sizeof(GET_KEY_END) - 1);
	if (n > STORE_NAME_MAX || memcmp(p + n, GET_KEY_END,
	    sizeof(GET_KEY_END) - 1) != 0)
		return 0;
	memcpy(table, p, n);
	table[n] = '\0';
	return store_valid_id(id) && store_valid_name(table);
}

/* Rerun one execution at the current read transaction. */
static void
exec_run(struct gateway *gw, struct exec *ex)
{
	struct readset	 rs;
	struct buf	 out;
	struct tv_error	 err;
	enum json_err	 jerr;
	cJSON		*args;
	size_t		 off = strlen(ex->udf_path) + 1;
	char		*old, table[STORE_NAME_MAX + 1], id[STORE_ID_LEN + 1];
	size_t		 oldlen;
	int		 rc, same_rs = 0;

	readset_init(&rs);
	buf_init(&out);
	memset(&err, 0, sizeof(err));
	if (exec_get_args(ex, table, id)) {
		/*
		 * What a db/get reads follows from its id and the catalog
		 * alone: under the catalog of the last run, the same keys.
		 */
		same_rs = ex->version > 0 &&
		    ex->rs_catalog == gw->st->catalog->version;
		rc = udf_get(gw->st, table, id, SCAN_CURRENT, &out,
		    same_rs ? NULL : &rs, &err);
	} else {
		/*
		 * The arguments are kept only as the key's canonical text,
		 * which a parse gives back exactly: an execution at rest
		 * holds no tree.
		 */
		if ((args = json_parse(ex->key + off, ex->keylen - off,
		    JSON_MAX_DEPTH + 1, &jerr)) == NULL)
			fatalx("%s: canonical args do not parse: %s",
			    __func__, json_strerror(jerr));
		rc = udf_run_query(gw->st, ex->udf_path, args, SCAN_CURRENT,
		    gw->conf.query_max_rows, &out, &rs, &err);
		cJSON_Delete(args);
	}
	/* A rerun usually reads what the last run read: index kept. */
	if (same_rs || readset_equal(&rs, &ex->rs))
		readset_free(&rs);
	else {
		exec_unregister(gw, ex);
		readset_free(&ex->rs);
		ex->rs = rs;
		exec_register(gw, ex);
	}
	ex->rs_catalog = gw->st->catalog->version;
	if (rc != 0)
		buf_free(&out);
	/* The same text (or error) as the last run's: nothing changed. */
	if (ex->version > 0 && (rc == 0) == ex->ok && (rc == 0 ?
	    out.len == ex->valuelen && (out.len == 0 ||
	    memcmp(out.data, ex->value, out.len) == 0) :
	    err.code == ex->err->code &&
	    strcmp(err.message, ex->err->message) == 0))
		buf_free(&out);
	else {
		old = ex->version > 0 && ex->ok ? ex->value : NULL;
		oldlen = ex->valuelen;
		if (old == NULL)
			free(ex->value);
		ex->value = NULL;
		ex->valuelen = 0;
		if (rc == 0)
			ex->value = buf_steal(&out, &ex->valuelen);
		ex->ok = rc == 0;
		free(ex->err);
		ex->err = NULL;
		if (rc != 0) {
			ex->err = xmalloc(sizeof(*ex->err));
			*ex->err = err;
		}
		ex->version++;
		diff_exec_changed(ex, old, oldlen);
		free(old);
	}
	ex->runs++;
	gw->stats.reruns++;
	pages_pin(gw, ex);
}

struct logctx {
	struct gateway	*gw;
	struct buf	 key;
};

/* Invalidate from one log revision: its keys before and after. */
static int
log_invalidate(void *arg, int64_t ts, int64_t table_id, const char *id,
    const char *before, const char *after)
{
	struct logctx			*lc = arg;
	const struct store_table	*t;
	const char			*docs[2] = { before, after };
	cJSON				*doc;
	enum json_err			 jerr;
	size_t				 i, j;

	(void)ts;
	if ((t = catalog_table_by_id(lc->gw->st->catalog, table_id)) == NULL)
		return 0;
	for (j = 0; j < 2; j++) {
		if (docs[j] == NULL)
			continue;
		doc = json_parse(docs[j], strlen(docs[j]), JSON_MAX_DEPTH + 1,
		    &jerr);
		if (doc == NULL)
			continue;
		for (i = 0; i < t->nindexes; i++) {
			if (key_encode_doc(&lc->key, doc, t->indexes[i]->fields,
			    t->indexes[i]->nfields, id) == -1)
				continue;
			query_invalidate_key(lc->gw, t->indexes[i]->id,
			    lc->key.data, lc->key.len);
		}
		cJSON_Delete(doc);
	}
	return 0;
}

static void
invalidate_all(struct gateway *gw)
{
	struct exec	*ex;

	TAILQ_FOREACH(ex, &gw->execs, entry)
		exec_mark(gw, ex);
}

static void
on_refresh(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	query_refresh(arg);
}

void
query_schedule_refresh(struct gateway *gw)
{
	if (gw->refresh_ev == NULL)
		gw->refresh_ev = event_new(gw->base, -1, 0, on_refresh, gw);
	event_active(gw->refresh_ev, EV_TIMEOUT, 0);
}

int
query_open_store(struct gateway *gw)
{
	char	 err[512];

	if (gw->st != NULL)
		return 0;
	/* The sandbox first, once the state directory is there. */
	if (gw->sandbox_pending && sandbox_restrict(gw) == 1)
		return -1;
	gw->st = store_open(gw->dbpath, STORE_RO, NULL, err, sizeof(err));
	if (gw->st == NULL) {
		log_debug("database not ready: %s", err);
		return -1;
	}
	log_info("database %s open read-only", gw->dbpath);
	return 0;
}

/*
 * Bring every execution to the database's newest ts and hand the changes
 * to the sessions.  0, or -1 when the database cannot be read (nothing
 * changes then; the next notice tries again).
 */
int
query_refresh(struct gateway *gw)
{
	struct exec	*ex;
	struct logctx	 lc;
	struct session	*s;
	int64_t		 T, floor = 0;
	uint64_t	 v;
	size_t		 i;
	int		 catalog_moved;

	if (gw->in_refresh || query_open_store(gw) == -1)
		return -1;
	gw->in_refresh = 1;
	if (store_begin_read(gw->st, &T) == -1) {
		gw->in_refresh = 0;
		return -1;
	}
	catalog_moved = gw->st->catalog->version != gw->catalog_version;
	if (catalog_moved || gw->catalog_changed) {
		/* Tables or indexes came or went: rerun what named them. */
		TAILQ_FOREACH(ex, &gw->execs, entry)
			if (ex->rs.catalog_dep || !ex->ok)
				exec_mark(gw, ex);
		gw->catalog_version = gw->st->catalog->version;
		gw->catalog_changed = 0;
	}
	if (T > gw->processed_ts) {
		/* Writes the notices have not told us about: the log. */
		store_global_get_i64(gw->st, GLOBAL_RETENTION_FLOOR, &floor);
		if (gw->processed_ts < floor || gw->processed_ts == 0)
			invalidate_all(gw);
		else {
			lc.gw = gw;
			buf_init(&lc.key);
			if (scan_log_since(gw->st, gw->processed_ts, T,
			    log_invalidate, &lc) == -1)
				invalidate_all(gw);
			buf_free(&lc.key);
			gw->stats.log_catchups++;
		}
		gw->processed_ts = T;
	}
	while ((ex = TAILQ_FIRST(&gw->dirtyq)) != NULL) {
		TAILQ_REMOVE(&gw->dirtyq, ex, dirty_entry);
		ex->dirty = 0;
		v = ex->version;
		exec_run(gw, ex);
		/* Only the sessions whose results changed have work. */
		if (ex->version != v)
			for (i = 0; i < ex->nwatchers; i++)
				session_mark(ex->watchers[i]);
	}
	store_end_read(gw->st);
	if (T > gw->ts)
		gw->ts = T;
	gw->in_refresh = 0;
	/* And those holding answers for a transition at a newer ts. */
	TAILQ_FOREACH(s, &gw->heldq, held_entry)
		session_mark(s);
	session_flush_all(gw);
	return 0;
}

int
query_oneshot(struct gateway *gw, const char *udf_path, const cJSON *args,
    int64_t read_ts, struct buf *out, int64_t *ts, struct tv_error *err)
{
	int64_t	 T, floor = 0;
	int	 rc;

	assert(udf_path != NULL && args != NULL && out != NULL && ts != NULL);
	if (query_open_store(gw) == -1)
		return tv_seterr(err, TV_UNAVAILABLE, "database not ready");
	if (store_begin_read(gw->st, &T) == -1)
		return tv_seterr(err, TV_INTERNAL, "database read failed");
	if (read_ts != SCAN_CURRENT) {
		store_global_get_i64(gw->st, GLOBAL_RETENTION_FLOOR, &floor);
		if (read_ts < floor) {
			store_end_read(gw->st);
			return tv_seterr(err, TV_OUT_OF_RETENTION, "ts %lld is "
			    "older than the retention floor %lld",
			    (long long)read_ts, (long long)floor);
		}
		if (read_ts > T) {
			store_end_read(gw->st);
			return tv_seterr(err, TV_VALIDATION, "ts %lld is ahead "
			    "of the newest commit %lld", (long long)read_ts,
			    (long long)T);
		}
	}
	rc = udf_run_query(gw->st, udf_path, args, read_ts,
	    gw->conf.query_max_rows, out, NULL, err);
	store_end_read(gw->st);
	*ts = read_ts != SCAN_CURRENT ? read_ts : T;
	return rc;
}

/* Free the invalidation index and the execution table (at exit). */
void
query_shutdown(struct gateway *gw)
{
	struct hentry	*e;
	size_t		 it;

	while ((e = htab_first(&gw->ivtab, &it)) != NULL)
		iv_bucket_free(gw, HTAB_ELEM(e, struct ivbucket, hent));
	htab_free(&gw->ivtab);
	htab_free(&gw->exec_tab);
}
