/*
 * The built-in query functions (DESIGN §3): db/get, db/query, db/paginate
 * (paginate.c) and db/tables (tables.c), run on a store inside a read
 * transaction, producing the result as JSON text and the read set that
 * says which writes can change it.
 */
#ifndef TINYVEX_UDF_H
#define TINYVEX_UDF_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "errors.h"
#include "scan.h"
#include "store.h"
#include "util.h"

#define UDF_MAX_RESULT_BYTES	(64 * 1024 * 1024)	/* one result */
#define UDF_MAX_RANGE_ITEMS	(STORE_MAX_INDEX_FIELDS + 3)

/* Which function a udfPath names. */
enum udf_kind {
	UDF_NONE = 0,
	UDF_GET,
	UDF_QUERY,
	UDF_PAGINATE,
	UDF_TABLES,
	UDF_INSERT,
	UDF_PATCH,
	UDF_REPLACE,
	UDF_DELETE,
	UDF_BATCH,
};

enum udf_kind	 udf_lookup(const char *udf_path);
int		 udf_is_query(enum udf_kind);
int		 udf_is_mutation(enum udf_kind);

/*
 * Run query function udf_path with args at read_ts (SCAN_CURRENT for the
 * current state).  On success returns 0, the result JSON in out (reset
 * first) and the intervals read added to rs (which may be NULL).  On
 * failure returns -1 with err set: NotFound (function or index),
 * ValidationError (args), TooLarge (more than max_rows documents, or a
 * result over UDF_MAX_RESULT_BYTES), OutOfRetention (read_ts before the
 * index existed), InternalError (database).  rs may have been partly
 * filled either way, including catalog_dep.
 */
int		 udf_run_query(struct store *, const char *udf_path,
		    const cJSON *args, int64_t read_ts, int64_t max_rows,
		    struct buf *out, struct readset *rs, struct tv_error *err);

/*
 * db/get of a valid table name and document id (store_valid_name,
 * store_valid_id), as udf_run_query with args {"table", "id"} once
 * those are checked.
 */
int		 udf_get(struct store *, const char *table, const char *id,
		    int64_t read_ts, struct buf *out, struct readset *rs,
		    struct tv_error *err);
/*
 * Argument checks shared by the query and mutation functions: args is an
 * object whose members are all in the NULL-terminated allowed list (0, or
 * -1 with err); "table" is a valid table name (the name, or NULL with
 * err).
 */
int		 udf_check_members(const cJSON *args,
		    const char *const *allowed, struct tv_error *err);
const char	*udf_arg_table(const cJSON *args, struct tv_error *err);
/*
 * The "index" (by_creation_time when absent) and "order" ("asc" when
 * absent; *desc set for "desc") arguments of db/query and db/paginate:
 * 0, or -1 with err (ValidationError).
 */
int		 udf_arg_index_order(const cJSON *args,
		    const char **index_name, int *desc, struct tv_error *err);

/*
 * The key interval [lo, hi) of index ix that a range (DESIGN §3: eq on a
 * prefix of the fields, then at most one lower and one upper bound on
 * the next) selects; *hi_open set when it has no upper end.  0, or -1
 * with err (ValidationError).
 */
int		 udf_range(const struct store_index *ix, const cJSON *range,
		    struct buf *lo, struct buf *hi, int *hi_open,
		    struct tv_error *err);

/*
 * Scan callbacks (scan_fn) shared by the query functions.
 * udf_collect_doc appends each document's JSON to out, comma-separated,
 * and stops the scan, setting toobig, before out would pass
 * UDF_MAX_RESULT_BYTES; udf_count_doc takes nothing (arg unused): the
 * scan's own count is the figure.
 */
struct udf_collect {
	struct buf	*out;		/* the documents so far */
	int64_t		 n;		/* how many */
	int		 toobig;	/* stopped at the size limit */
};
int		 udf_collect_doc(void *arg, const char *id, const char *json,
		    size_t len);
int		 udf_count_doc(void *arg, const char *id, const char *json,
		    size_t len);

/* paginate.c: db/paginate, as udf_run_query. */
int		 paginate_run(struct store *, const cJSON *args,
		    int64_t read_ts, int64_t max_rows, struct buf *out,
		    struct readset *rs, struct tv_error *err);
/*
 * The continueCursor of a db/paginate result as paginate_run wrote it
 * (value, len bytes), appended to out; 0, or -1 when value is not one.
 */
int		 paginate_continue_cursor(const char *value, size_t len,
		    struct buf *out);

/* tables.c: db/tables, as udf_run_query. */
int		 tables_run(struct store *, const cJSON *args, int64_t read_ts,
		    struct buf *out, struct readset *rs, struct tv_error *err);

/* Set err to code with a printf-style message; returns -1. */
int		 tv_seterr(struct tv_error *, int code, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));

#endif
