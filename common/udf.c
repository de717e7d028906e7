/*
 * The built-in query functions: argument validation, the translation of a
 * range ([field, op, value] items following an index's field order) into
 * one key interval, and the scan that produces the result.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "keys.h"
#include "log.h"
#include "udf.h"

static const struct {
	const char	*path;
	enum udf_kind	 kind;
} udf_table[] = {
	{ "db/get",	UDF_GET },
	{ "db/query",	UDF_QUERY },
	{ "db/paginate", UDF_PAGINATE },
	{ "db/tables",	UDF_TABLES },
	{ "db/insert",	UDF_INSERT },
	{ "db/patch",	UDF_PATCH },
	{ "db/replace",	UDF_REPLACE },
	{ "db/delete",	UDF_DELETE },
	{ "db/batch",	UDF_BATCH },
};

enum udf_kind
udf_lookup(const char *path)
{
	size_t	 i;

	for (i = 0; i < nitems(udf_table); i++)
		if (strcmp(udf_table[i].path, path) == 0)
			return udf_table[i].kind;
	return UDF_NONE;
}

int
udf_is_query(enum udf_kind k)
{
	return k == UDF_GET || k == UDF_QUERY || k == UDF_PAGINATE ||
	    k == UDF_TABLES;
}

int
udf_is_mutation(enum udf_kind k)
{
	return k >= UDF_INSERT && k <= UDF_BATCH;
}

int
tv_seterr(struct tv_error *err, int code, const char *fmt, ...)
{
	va_list	 ap;

	err->code = code;
	err->reason = NULL;
	err->data[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* Only the listed members may appear in args. */
int
udf_check_members(const cJSON *args, const char *const *allowed,
    struct tv_error *err)
{
	const cJSON	*m;
	size_t		 i;

	if (!cJSON_IsObject(args))
		return tv_seterr(err, TV_VALIDATION, "args must be an object");
	cJSON_ArrayForEach(m, args) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(m->string, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return tv_seterr(err, TV_VALIDATION,
			    "unknown argument \"%.64s\"", m->string);
	}
	return 0;
}

const char *
udf_arg_table(const cJSON *args, struct tv_error *err)
{
	const cJSON	*t = json_get(args, "table");

	if (!cJSON_IsString(t) || !store_valid_name(t->valuestring)) {
		tv_seterr(err, TV_VALIDATION, "table must be a name matching "
		    "[A-Za-z][A-Za-z0-9_]{0,63}");
		return NULL;
	}
	return t->valuestring;
}

int
udf_arg_index_order(const cJSON *args, const char **index_name, int *desc,
    struct tv_error *err)
{
	const cJSON	*index, *order;

	*index_name = STORE_INDEX_BY_CREATION;
	*desc = 0;
	if ((index = json_get(args, "index")) != NULL) {
		if (!cJSON_IsString(index) ||
		    !store_valid_name(index->valuestring))
			return tv_seterr(err, TV_VALIDATION,
			    "index must be an index name");
		*index_name = index->valuestring;
	}
	if ((order = json_get(args, "order")) != NULL) {
		if (cJSON_IsString(order) &&
		    strcmp(order->valuestring, "asc") == 0)
			*desc = 0;
		else if (cJSON_IsString(order) &&
		    strcmp(order->valuestring, "desc") == 0)
			*desc = 1;
		else
			return tv_seterr(err, TV_VALIDATION,
			    "order must be \"asc\" or \"desc\"");
	}
	return 0;
}

int
udf_collect_doc(void *arg, const char *id, const char *json, size_t len)
{
	struct udf_collect	*c = arg;

	(void)id;
	if (c->out->len + len + 2 > UDF_MAX_RESULT_BYTES) {
		c->toobig = 1;
		return 1;
	}
	if (c->n++ > 0)
		buf_addc(c->out, ',');
	buf_add(c->out, json, len);
	return 0;
}

int
udf_count_doc(void *arg, const char *id, const char *json, size_t len)
{
	(void)arg;
	(void)id;
	(void)json;
	(void)len;
	return 0;
}

static int
run_get(struct store *st, const cJSON *args, int64_t read_ts,
    struct buf *out, struct readset *rs, struct tv_error *err)
{
	static const char *const allowed[] = { "table", "id", NULL };
	const char			*name;
	const cJSON			*id;

	if (udf_check_members(args, allowed, err) == -1 ||
	    (name = udf_arg_table(args, err)) == NULL)
		return -1;
	id = json_get(args, "id");
	if (!cJSON_IsString(id))
		return tv_seterr(err, TV_VALIDATION, "id must be a string");
	if (!store_valid_id(id->valuestring))
		return tv_seterr(err, TV_VALIDATION, "id is not a document id");
	return udf_get(st, name, id->valuestring, read_ts, out, rs, err);
}

int
udf_get(struct store *st, const char *table, const char *id,
    int64_t read_ts, struct buf *out, struct readset *rs,
    struct tv_error *err)
{
	int	 rc;

	assert(store_valid_name(table) && store_valid_id(id));
	rc = scan_get(st, catalog_table(st->catalog, table), id, read_ts, out,
	    rs);
	if (rc == -1)
		return tv_seterr(err, TV_INTERNAL, "database read failed");
	if (rc == 0)
		buf_adds(out, "null");
	return 0;
}

/*
 * Turn the range items into [lo, hi) over index ix.  The eq items cover a
 * prefix of the fields in order; then at most one lower and one upper
 * bound on the next field.
 */
int
udf_range(const struct store_index *ix, const cJSON *range,
    struct buf *lo, struct buf *hi, int *hi_open, struct tv_error *err)
{
	const cJSON	*item, *f, *op, *v, *lower = NULL, *upper = NULL;
	const char	*lower_op = NULL, *upper_op = NULL, *opname;
	struct buf	 prefix;
	size_t		 neq = 0, nitems_ = 0;
	const char	*bound_field = NULL;

	buf_init(&prefix);
	buf_reset(lo);
	buf_reset(hi);
	*hi_open = 0;
	if (range != NULL && !cJSON_IsArray(range))
		return tv_seterr(err, TV_VALIDATION, "range must be an array");
	cJSON_ArrayForEach(item, range) {
		if (++nitems_ > UDF_MAX_RANGE_ITEMS)
			goto invalid_count;
		if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 3)
			goto invalid_item;
		f = cJSON_GetArrayItem(item, 0);
		op = cJSON_GetArrayItem(item, 1);
		v = cJSON_GetArrayItem(item, 2);
		if (!cJSON_IsString(f) || !cJSON_IsString(op))
			goto invalid_item;
		opname = op->valuestring;
		if (strcmp(opname, "eq") == 0) {
			if (lower != NULL || upper != NULL)
				goto bad_order;
			if (neq >= ix->nfields ||
			    strcmp(f->valuestring, ix->fields[neq]) != 0)
				goto bad_order;
			if (key_append_value(&prefix, v) == -1)
				goto bad_value;
			neq++;
			continue;
		}
		if (strcmp(opname, "gt") != 0 && strcmp(opname, "gte") != 0 &&
		    strcmp(opname, "lt") != 0 && strcmp(opname, "lte") != 0) {
			buf_free(&prefix);
			return tv_seterr(err, TV_VALIDATION, "range op must be "
			    "eq, gt, gte, lt or lte");
		}
		if (neq >= ix->nfields ||
		    strcmp(f->valuestring, ix->fields[neq]) != 0 ||
		    (bound_field != NULL &&
		    strcmp(bound_field, f->valuestring) != 0))
			goto bad_order;
		bound_field = f->valuestring;
		if (opname[0] == 'g') {
			if (lower != NULL)
				goto bad_order;
			lower = v;
			lower_op = opname;
		} else {
			if (upper != NULL)
				goto bad_order;
			upper = v;
			upper_op = opname;
		}
	}
	buf_add(lo, prefix.data, prefix.len);
	if (lower != NULL) {
		if (key_append_value(lo, lower) == -1)
			goto bad_value;
		if (strcmp(lower_op, "gt") == 0 &&
		    key_prefix_successor(lo) == -1)
			goto bad_value;
	}
	buf_add(hi, prefix.data, prefix.len);
	if (upper != NULL) {
		if (key_append_value(hi, upper) == -1)
			goto bad_value;
		if (strcmp(upper_op, "lte") == 0 &&
		    key_prefix_successor(hi) == -1)
			goto bad_value;
	} else if (hi->len == 0 || key_prefix_successor(hi) == -1)
		*hi_open = 1;
	buf_free(&prefix);
	return 0;
invalid_count:
	buf_free(&prefix);
	return tv_seterr(err, TV_VALIDATION, "range has too many items");
invalid_item:
	buf_free(&prefix);
	return tv_seterr(err, TV_VALIDATION,
	    "range items must be [field, op, value]");
bad_order:
	buf_free(&prefix);
	return tv_seterr(err, TV_VALIDATION, "range does not follow the "
	    "fields of index %s: eq on a prefix of them, then at most one "
	    "lower and one upper bound on the next", ix->name);
bad_value:
	buf_free(&prefix);
	return tv_seterr(err, TV_VALIDATION, "range value cannot be indexed");
}

static int
run_query(struct store *st, const cJSON *args, int64_t read_ts,
    int64_t max_rows, struct buf *out, struct readset *rs,
    struct tv_error *err)
{
	static const char *const allowed[] = { "table", "index", "range",
	    "order", "limit", NULL };
	const struct store_table	*t;
	const struct store_index	*ix;
	const cJSON			*limit;
	const char			*name, *index_name;
	struct scan_range		 r;
	struct buf			 lo, hi;
	struct udf_collect		 c;
	int64_t				 lim = 0, n;
	int				 desc = 0, hi_open, ret = -1;

	if (udf_check_members(args, allowed, err) == -1 ||
	    (name = udf_arg_table(args, err)) == NULL)
		return -1;
	if (udf_arg_index_order(args, &index_name, &desc, err) == -1)
		return -1;
	if ((limit = json_get(args, "limit")) != NULL &&
	    !json_get_int(limit, 1, max_rows, &lim))
		return tv_seterr(err, TV_VALIDATION, "limit must be an "
		    "integer from 1 to %lld", (long long)max_rows);
	if ((t = catalog_table(st->catalog, name)) == NULL) {
		/* Not there yet: empty until it appears. */
		if (rs != NULL)
			rs->catalog_dep = 1;
		buf_reset(out);
		buf_adds(out, "[]");
		return 0;
	}
	if ((ix = catalog_index(t, index_name)) == NULL) {
		if (rs != NULL)
			rs->catalog_dep = 1;
		return tv_seterr(err, TV_NOT_FOUND, "table %s has no index %s",
		    name, index_name);
	}
	if (read_ts != SCAN_CURRENT && read_ts < ix->created_ts &&
	    read_ts >= t->created_ts)
		return tv_seterr(err, TV_OUT_OF_RETENTION, "index %s has no "
		    "history before ts %lld", ix->name,
		    (long long)ix->created_ts);
	buf_init(&lo);
	buf_init(&hi);
	if (udf_range(ix, json_get(args, "range"), &lo, &hi, &hi_open,
	    err) == -1)
		goto done;
	memset(&r, 0, sizeof(r));
	r.index_id = ix->id;
	r.lo = lo.data != NULL ? lo.data : "";
	r.lolen = lo.len;
	r.hi = hi_open ? NULL : hi.data;
	r.hilen = hi_open ? 0 : hi.len;
	r.desc = desc;
	r.limit = lim > 0 ? lim : max_rows + 1;
	r.read_ts = read_ts;
	buf_reset(out);
	buf_addc(out, '[');
	c.out = out;
	c.n = 0;
	c.toobig = 0;
	if ((n = scan_index(st, &r, udf_collect_doc, &c, rs)) == -1) {
		tv_seterr(err, TV_INTERNAL, "database read failed");
		goto done;
	}
	if (c.toobig) {
		tv_seterr(err, TV_TOO_LARGE, "result is over %d bytes",
		    UDF_MAX_RESULT_BYTES);
		goto done;
	}
	if (lim == 0 && n > max_rows) {
		tv_seterr(err, TV_TOO_LARGE, "query matches more than %lld "
		    "documents; give a limit or a narrower range",
		    (long long)max_rows);
		goto done;
	}
	buf_addc(out, ']');
	ret = 0;
done:
	buf_free(&lo);
	buf_free(&hi);
	return ret;
}

int
udf_run_query(struct store *st, const char *udf_path, const cJSON *args,
    int64_t read_ts, int64_t max_rows, struct buf *out, struct readset *rs,
    struct tv_error *err)
{
	switch (udf_lookup(udf_path)) {
	case UDF_GET:
		return run_get(st, args, read_ts, out, rs, err);
	case UDF_QUERY:
		return run_query(st, args, read_ts, max_rows, out, rs, err);
	case UDF_PAGINATE:
		return paginate_run(st, args, read_ts, max_rows, out, rs, err);
	case UDF_TABLES:
		return tables_run(st, args, read_ts, out, rs, err);
	default:
		return tv_seterr(err, TV_NOT_FOUND, "no query function "
		    "\"%.128s\"", udf_path);
	}
}
