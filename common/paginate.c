/*
 * db/paginate (DESIGN §3): one page of an index walk, between opaque
 * cursors.  A page is the documents after `cursor` (exclusive) in the
 * walk's order, within the range: the first numItems of them, or, with
 * `endCursor`, every one up to and including endCursor's position.
 *
 * Positions are keys of the index (cursor.h), so a page is an interval of
 * the index and its read set is that interval, plus the interval up to
 * the first key after the page, which decides isDone.  A page that runs
 * to the end of the range ends at the end cursor, which stays after every
 * later document: a page pinned there keeps growing.
 *
 * The result is written as {"continueCursor":C,"isDone":B,"page":[...]},
 * continueCursor first so a gateway can take it without parsing the page
 * (paginate_continue_cursor).
 */
#include <string.h>

#include "cursor.h"
#include "json.h"
#include "keys.h"
#include "udf.h"

#define PAGINATE_CC_PREFIX	"{\"continueCursor\":\""

/* An interval [lo, hi) of keys; hi_open: no upper end. */
struct piv {
	struct buf	 lo, hi;
	int		 hi_open;
};

static void
piv_init(struct piv *v)
{
	buf_init(&v->lo);
	buf_init(&v->hi);
	v->hi_open = 1;
}

static void
piv_free(struct piv *v)
{
	buf_free(&v->lo);
	buf_free(&v->hi);
}

static void
piv_copy(struct piv *d, const struct piv *s)
{
	buf_reset(&d->lo);
	buf_add(&d->lo, s->lo.data, s->lo.len);
	buf_reset(&d->hi);
	buf_add(&d->hi, s->hi.data, s->hi.len);
	d->hi_open = s->hi_open;
}

/* Raise lo to k (k + 0x00 when after: just above k), if above it. */
static void
piv_raise_lo(struct piv *v, const void *k, size_t klen, int after)
{
	struct buf	 b;

	buf_init(&b);
	buf_add(&b, k, klen);
	if (after)
		buf_addc(&b, '\0');
	if (bytecmp(b.data, b.len, v->lo.data, v->lo.len) > 0) {
		buf_reset(&v->lo);
		buf_add(&v->lo, b.data, b.len);
	}
	buf_free(&b);
}

/* Lower hi to k (k + 0x00 when after: k itself inside), if below it. */
static void
piv_lower_hi(struct piv *v, const void *k, size_t klen, int after)
{
	struct buf	 b;

	buf_init(&b);
	buf_add(&b, k, klen);
	if (after)
		buf_addc(&b, '\0');
	if (v->hi_open || bytecmp(b.data, b.len, v->hi.data, v->hi.len) < 0) {
		buf_reset(&v->hi);
		buf_add(&v->hi, b.data, b.len);
		v->hi_open = 0;
	}
	buf_free(&b);
}

/*
 * Narrow v to the keys after position k in the walk's order: above k
 * ascending, below it descending.
 */
static void
piv_after(struct piv *v, const void *k, size_t klen, int desc)
{
	if (desc)
		piv_lower_hi(v, k, klen, 0);
	else
		piv_raise_lo(v, k, klen, 1);
}

/* Narrow v to the keys up to and including position k in the walk. */
static void
piv_upto(struct piv *v, const void *k, size_t klen, int desc)
{
	if (desc)
		piv_raise_lo(v, k, klen, 0);
	else
		piv_lower_hi(v, k, klen, 1);
}

static int64_t
piv_scan(struct store *st, const struct store_index *ix, const struct piv *v,
    int desc, int64_t limit, int64_t read_ts, scan_cb cb, void *arg,
    struct buf *last, struct readset *rs)
{
	struct scan_range	 r;

	memset(&r, 0, sizeof(r));
	r.index_id = ix->id;
	r.lo = v->lo.data != NULL ? v->lo.data : "";
	r.lolen = v->lo.len;
	r.hi = v->hi_open ? NULL : (v->hi.data != NULL ? v->hi.data : "");
	r.hilen = v->hi_open ? 0 : v->hi.len;
	r.desc = desc;
	r.limit = limit;
	r.read_ts = read_ts;
	r.last_key = last;
	return scan_index(st, &r, cb, arg, rs);
}

static int
invalid_cursor(struct tv_error *err, const char *which, const char *why)
{
	tv_seterr(err, TV_VALIDATION, "%s %s", which, why);
	err->reason = "InvalidCursor";
	return -1;
}

/*
 * The cursor argument named which: absent or null leaves *have 0; else
 * it must be a cursor of table t, index ix and this order.
 */
static int
arg_cursor(const cJSON *args, const char *which,
    const struct store_table *t, const struct store_index *ix, int desc,
    struct cursor *c, int *have, struct tv_error *err)
{
	const cJSON	*v = json_get(args, which);
	size_t		 nvalues;

	*have = 0;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return tv_seterr(err, TV_VALIDATION, "%s must be a string or "
		    "null", which);
	if (cursor_decode(v->valuestring, strlen(v->valuestring), c) == -1)
		return invalid_cursor(err, which, "is not a cursor");
	if (c->desc != desc)
		return invalid_cursor(err, which, "was made for the other "
		    "order");
	if (c->end && c->table_id == 0) {
		/* The end of a table that did not exist yet. */
		*have = 1;
		return 0;
	}
	if (t == NULL || c->table_id != t->id)
		return invalid_cursor(err, which, "was made for another "
		    "table");
	if (c->index_id != ix->id)
		return invalid_cursor(err, which, "was made for another "
		    "index");
	nvalues = ix->nfields;
	if (ix->nfields == 0 || strcmp(ix->fields[ix->nfields - 1], "_id"))
		nvalues++;
	if (!c->end && cursor_check_key(c->key, c->keylen, nvalues) == -1)
		return invalid_cursor(err, which, "does not hold a key of its "
		    "index");
	*have = 1;
	return 0;
}

static void
add_result(struct buf *out, const struct cursor *cc, int done,
    const struct buf *page)
{
	buf_reset(out);
	buf_adds(out, PAGINATE_CC_PREFIX);
	cursor_encode(out, cc);
	buf_adds(out, done ? "\",\"isDone\":true,\"page\":[" :
	    "\",\"isDone\":false,\"page\":[");
	buf_add(out, page->data, page->len);
	buf_adds(out, "]}");
}

int
paginate_run(struct store *st, const cJSON *args, int64_t read_ts,
    int64_t max_rows, struct buf *out, struct readset *rs,
    struct tv_error *err)
{
	static const char *const allowed[] = { "table", "index", "range",
	    "order", "numItems", "cursor", "endCursor", NULL };
	struct cursor			 start, endc, cc;
	const struct store_table	*t;
	const struct store_index	*ix = NULL;
	const cJSON			*ni;
	const char			*name, *index_name;
	struct piv			 page, tail;
	struct buf			 docs, last;
	struct udf_collect		 c;
	int64_t				 num = 0, n, limit;
	int				 desc = 0, have_start, have_end, done;
	int				 ret = -1;

	if (udf_check_members(args, allowed, err) == -1 ||
	    (name = udf_arg_table(args, err)) == NULL)
		return -1;
	if (udf_arg_index_order(args, &index_name, &desc, err) == -1)
		return -1;
	ni = json_get(args, "numItems");
	if (ni == NULL || !json_get_int(ni, 1, max_rows, &num))
		return tv_seterr(err, TV_VALIDATION, "numItems must be an "
		    "integer from 1 to %lld", (long long)max_rows);
	t = catalog_table(st->catalog, name);
	if (t != NULL && (ix = catalog_index(t, index_name)) == NULL) {
		if (rs != NULL)
			rs->catalog_dep = 1;
		return tv_seterr(err, TV_NOT_FOUND, "table %s has no index %s",
		    name, index_name);
	}
	if (arg_cursor(args, "cursor", t, ix, desc, &start, &have_start,
	    err) == -1 ||
	    arg_cursor(args, "endCursor", t, ix, desc, &endc, &have_end,
	    err) == -1)
		return -1;
	memset(&cc, 0, sizeof(cc));
	cc.desc = desc;
	cc.end = 1;
	if (t == NULL) {
		/* Not there yet: an empty last page until it appears. */
		if (rs != NULL)
			rs->catalog_dep = 1;
		buf_init(&docs);
		if (have_end)
			cc = endc;
		add_result(out, &cc, 1, &docs);
		return 0;
	}
	cc.table_id = t->id;
	cc.index_id = ix->id;
	if (read_ts != SCAN_CURRENT && read_ts < ix->created_ts &&
	    read_ts >= t->created_ts)
		return tv_seterr(err, TV_OUT_OF_RETENTION, "index %s has no "
		    "history before ts %lld", ix->name,
		    (long long)ix->created_ts);
	piv_init(&page);
	piv_init(&tail);
	buf_init(&docs);
	buf_init(&last);
	if (udf_range(ix, json_get(args, "range"), &page.lo, &page.hi,
	    &page.hi_open, err) == -1)
		goto done;
	if (have_start && start.end) {
		/* Nothing comes after the end. */
		cc = start;
		cc.table_id = t->id;
		cc.index_id = ix->id;
		add_result(out, &cc, 1, &docs);
		ret = 0;
		goto done;
	}
	if (have_start)
		piv_after(&page, start.key, start.keylen, desc);
	piv_copy(&tail, &page);
	if (have_end && !endc.end) {
		piv_upto(&page, endc.key, endc.keylen, desc);
		piv_after(&tail, endc.key, endc.keylen, desc);
	}
	limit = have_end ? max_rows + 1 : num;
	c.out = &docs;
	c.n = 0;
	c.toobig = 0;
	if ((n = piv_scan(st, ix, &page, desc, limit, read_ts, udf_collect_doc,
	    &c, &last, rs)) == -1) {
		tv_seterr(err, TV_INTERNAL, "database read failed");
		goto done;
	}
	if (c.toobig) {
		tv_seterr(err, TV_TOO_LARGE, "page is over %d bytes",
		    UDF_MAX_RESULT_BYTES);
		goto done;
	}
	if (have_end && n > max_rows) {
		tv_seterr(err, TV_TOO_LARGE, "page holds more than %lld "
		    "documents", (long long)max_rows);
		goto done;
	}
	if (have_end) {
		cc = endc;
		cc.table_id = t->id;
		cc.index_id = ix->id;
		done = 1;
		if (!endc.end) {
			if ((n = piv_scan(st, ix, &tail, desc, 1, read_ts,
			    udf_count_doc, NULL, NULL, rs)) == -1) {
				tv_seterr(err, TV_INTERNAL,
				    "database read failed");
				goto done;
			}
			done = n == 0;
		}
	} else if (n < num)
		done = 1;
	else {
		piv_after(&tail, last.data, last.len, desc);
		if ((n = piv_scan(st, ix, &tail, desc, 1, read_ts, udf_count_doc,
		    NULL, NULL, rs)) == -1) {
			tv_seterr(err, TV_INTERNAL, "database read failed");
			goto done;
		}
		done = n == 0;
		if (!done && last.len > KEY_MAX_BYTES) {
			tv_seterr(err, TV_INTERNAL, "index key over %d bytes",
			    KEY_MAX_BYTES);
			goto done;
		}
		if (!done) {
			cc.end = 0;
			memcpy(cc.key, last.data, last.len);
			cc.keylen = last.len;
		}
	}
	add_result(out, &cc, done, &docs);
	ret = 0;
done:
	piv_free(&page);
	piv_free(&tail);
	buf_free(&docs);
	buf_free(&last);
	return ret;
}

int
paginate_continue_cursor(const char *value, size_t len, struct buf *out)
{
	size_t	 plen = strlen(PAGINATE_CC_PREFIX), i;

	if (len < plen || memcmp(value, PAGINATE_CC_PREFIX, plen) != 0)
		return -1;
	for (i = plen; i < len && value[i] != '"'; i++)
		if (i - plen >= CURSOR_MAX_CHARS)
			return -1;
	if (i == len)
		return -1;
	buf_add(out, value + plen, i - plen);
	return 0;
}
