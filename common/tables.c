/*
 * db/tables (DESIGN §3): every table of the catalog with its number of
 * documents and its indexes, for data browsers and tools.
 *
 * The count of the current state is the one writerd keeps in
 * table_counts in the same transaction as the documents, one row read per
 * table; at a past ts the log is walked.  The read set is the whole by_id
 * interval of every table and the catalog, so any write to a table, and
 * any table or index that appears, reruns it: a rerun costs a row per
 * table, and a patch, which changes no count, sends nothing.
 */
#include <string.h>

#include "json.h"
#include "log.h"
#include "udf.h"

/* Documents of table t at read_ts; -1 on error. */
static int64_t
tables_count(struct store *st, const struct store_table *t,
    const struct store_index *by_id, int64_t read_ts, struct readset *rs)
{
	sqlite3_stmt		*s = st->stmt[ST_TABLE_COUNT];
	struct scan_range	 r;
	int64_t			 n = -1;

	if (rs != NULL)
		readset_add(rs, by_id->id, "", 0, NULL, 0, 1);
	if (read_ts != SCAN_CURRENT) {
		memset(&r, 0, sizeof(r));
		r.index_id = by_id->id;
		r.lo = "";
		r.read_ts = read_ts;
		return scan_index(st, &r, udf_count_doc, NULL, NULL);
	}
	sqlite3_bind_int64(s, 1, t->id);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	else
		log_warnx("%s: no count of table %s: %s", __func__, t->name,
		    sqlite3_errmsg(st->db));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return n;
}

/*
 * The fields an index was declared with: a user index's own, without
 * the _creationTime and _id appended to it; by_creation_time's
 * _creationTime, without its _id.
 */
static size_t
tables_declared(const struct store_index *ix)
{
	if (strcmp(ix->name, STORE_INDEX_BY_CREATION) == 0 &&
	    ix->ndeclared > 1)
		return ix->ndeclared - 1;
	return ix->ndeclared;
}

int
tables_run(struct store *st, const cJSON *args, int64_t read_ts,
    struct buf *out, struct readset *rs, struct tv_error *err)
{
	static const char *const allowed[] = { NULL };
	const struct catalog		*cat = st->catalog;
	const struct store_table	*t;
	const struct store_index	*ix, *by_id;
	int64_t				 n;
	size_t				 i, j, k, nix;

	if (udf_check_members(args, allowed, err) == -1)
		return -1;
	if (rs != NULL)
		rs->catalog_dep = 1;
	buf_reset(out);
	buf_addc(out, '[');
	for (i = 0; i < cat->ntables; i++) {
		t = cat->tables[i];
		if (read_ts != SCAN_CURRENT && read_ts < t->created_ts)
			continue;
		if ((by_id = catalog_index(t, STORE_INDEX_BY_ID)) == NULL)
			return tv_seterr(err, TV_INTERNAL, "table %s has no "
			    "index %s", t->name, STORE_INDEX_BY_ID);
		if ((n = tables_count(st, t, by_id, read_ts, rs)) == -1)
			return tv_seterr(err, TV_INTERNAL,
			    "database read failed");
		if (out->len > 1)
			buf_addc(out, ',');
		buf_adds(out, "{\"name\":");
		json_print_string(out, t->name, strlen(t->name));
		buf_adds(out, ",\"documents\":");
		buf_add_i64(out, n);
		buf_adds(out, ",\"indexes\":[");
		for (j = 0, nix = 0; j < t->nindexes; j++) {
			ix = t->indexes[j];
			if (read_ts != SCAN_CURRENT && read_ts < ix->created_ts)
				continue;	/* not there yet at read_ts */
			if (nix++ > 0)
				buf_addc(out, ',');
			buf_adds(out, "{\"name\":");
			json_print_string(out, ix->name, strlen(ix->name));
			buf_adds(out, ",\"fields\":[");
			for (k = 0; k < tables_declared(ix); k++) {
				if (k > 0)
					buf_addc(out, ',');
				json_print_string(out, ix->fields[k],
				    strlen(ix->fields[k]));
			}
			buf_adds(out, ix->unique ? "],\"unique\":true}" :
			    "],\"unique\":false}");
		}
		buf_adds(out, "]}");
	}
	buf_addc(out, ']');
	return 0;
}
