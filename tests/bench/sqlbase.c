/*
 * tinyvex-bench-sql: SQLite without Tinyvex, for baselines and fixtures.
 *
 *   baseline DIR ROWS [CACHE_KIB [ordered]]
 *			insert ROWS documents into DIR/baseline.db the
 *			way one process would straight into SQLite: the
 *			rows Tinyvex writes for a db/insert (the log row,
 *			the current document, and for each built-in index
 *			a log entry and a current entry), with prepared
 *			statements, 1,000 documents a transaction, WAL,
 *			synchronous=NORMAL, a page cache of CACHE_KIB
 *			(default BASE_CACHE_KIB); with "ordered", ids
 *			that grow with each insert instead of random ones,
 *			to measure what time-ordered ids would give
 *   build DIR DOCS	the same rows into DIR/tinyvex.db, as a database
 *			for the daemons to start on; fast: ids that grow
 *			with each insert (so B-tree inserts append), large
 *			transactions and cache, no journal until the end
 *   probe DB		open DB read-only and read one current document
 *   live DB		live data: count and bytes of current documents,
 *			pages and free pages
 *
 * The schema, pragmas and catalog (the table and its index ids) come from
 * the storage code, so the rows land where Tinyvex reads them.  Each mode
 * prints one JSON object on standard output.
 */
#include <sys/stat.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench.h"
#include "config.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "store.h"
#include "wctx.h"

#define BASE_TXN_ROWS		1000	/* documents a baseline transaction */
#define BUILD_TXN_ROWS		100000	/* documents a build transaction */
#define BUILD_CACHE_KIB		(1024 * 1024) /* page cache of a build */
#define ID_ORDERED		13	/* build: id characters from a counter */
#define BASE_TABLE		"docs"
#define SQLITE_AUTOCHECKPOINT	1000	/* SQLite's default, in pages */
#define BASE_CACHE_KIB		65536	/* page cache: the working set */

enum { R_DOC_LOG, R_CUR_DOC, R_IDX_LOG, R_CUR_IDX, R_COUNT };

static const char *row_sql[R_COUNT] = {
	[R_DOC_LOG] = "INSERT INTO documents(id, ts, table_id, json_value,"
	    " deleted, prev_ts) VALUES (?1, ?2, ?3, ?4, 0, 0)",
	[R_CUR_DOC] = "INSERT INTO current_documents(id, table_id, ts, seq)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[R_IDX_LOG] = "INSERT INTO indexes(index_id, key, ts, deleted,"
	    " table_id) VALUES (?1, ?2, ?3, 0, ?4)",
	[R_CUR_IDX] = "INSERT INTO current_indexes(index_id, key)"
	    " VALUES (?1, ?2)",
};

struct loader {
	struct store	*st;
	int		 ordered;	/* ids in insert order: a build */
	uint64_t	 count;		/* ids made */
	sqlite3_stmt	*s[R_COUNT];
	int64_t		 table_id;
	int64_t		 by_id, by_ct;	/* index ids */
	uint64_t	 rng;
};

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: tinyvex-bench-sql baseline DIR ROWS "
	    "[CACHE_KIB [ordered]]\n"
	    "       tinyvex-bench-sql build DIR DOCS\n"
	    "       tinyvex-bench-sql probe DB\n"
	    "       tinyvex-bench-sql live DB\n");
	exit(2);
}

static int
step(struct loader *l, sqlite3_stmt *s)
{
	int	 rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		log_warnx("%s", sqlite3_errmsg(l->st->db));
		return -1;
	}
	return 0;
}

/* Open path, create the table through the write path, prepare. */
static int
loader_open(struct loader *l, const char *path, int cache_kib)
{
	struct store_options		 so;
	struct config			 conf;
	struct wctx			 w;
	struct tv_error			 terr;
	const struct store_table	*t = NULL;
	char				 err[512];
	int64_t				 ts = now_us();
	int				 i;

	memset(l, 0, sizeof(*l));
	memset(&so, 0, sizeof(so));
	config_defaults(&conf);
	l->rng = (uint64_t)ts | 1;
	if ((l->st = store_open(path, STORE_RW, &so, err, sizeof(err)))
	    == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	sqlite3_wal_autocheckpoint(l->st->db, SQLITE_AUTOCHECKPOINT);
	snprintf(err, sizeof(err), "PRAGMA cache_size = -%d", cache_kib);
	if (store_exec(l->st, err) == -1)
		return -1;
	if (wctx_init(&w, l->st, &conf) == -1)
		return -1;
	memset(&terr, 0, sizeof(terr));
	if (store_exec(l->st, "BEGIN IMMEDIATE") == -1)
		return -1;
	l->st->in_txn = 1;
	wctx_reset(&w, ts);
	if (wctx_table(&w, BASE_TABLE, 1, &t, &terr) == -1 || t == NULL ||
	    store_global_set_i64(l->st, "max_ts", ts) == -1) {
		log_warnx("cannot create table %s: %s", BASE_TABLE,
		    terr.message);
		return -1;
	}
	l->st->in_txn = 0;
	if (store_exec(l->st, "COMMIT") == -1)
		return -1;
	wctx_free(&w);
	t = catalog_table(l->st->catalog, BASE_TABLE);
	if (t == NULL || catalog_index(t, STORE_INDEX_BY_ID) == NULL ||
	    catalog_index(t, STORE_INDEX_BY_CREATION) == NULL)
		return -1;
	l->table_id = t->id;
	l->by_id = catalog_index(t, STORE_INDEX_BY_ID)->id;
	l->by_ct = catalog_index(t, STORE_INDEX_BY_CREATION)->id;
	for (i = 0; i < R_COUNT; i++)
		if (sqlite3_prepare_v3(l->st->db, row_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &l->s[i], NULL) != SQLITE_OK) {
			log_warnx("%s", sqlite3_errmsg(l->st->db));
			return -1;
		}
	return 0;
}

static void
loader_close(struct loader *l)
{
	int	 i;

	for (i = 0; i < R_COUNT; i++)
		sqlite3_finalize(l->s[i]);
	if (l->st != NULL)
		sqlite3_wal_checkpoint_v2(l->st->db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	store_close(l->st);
}

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t	 x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void
new_id(struct loader *l, char id[DOC_ID_LEN + 1])
{
	static const char	 alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
	uint64_t		 r = 0;
	int			 i;

	for (i = 0; i < DOC_ID_LEN; i++) {
		if (i % 12 == 0)
			r = rng_next(&l->rng);
		id[i] = alphabet[r & 31];
		r >>= 5;
	}
	/*
	 * A build takes ids that grow with each insert (the alphabet is in
	 * byte order), so every B-tree insert is an append.
	 */
	for (i = 0; l->ordered && i < ID_ORDERED; i++)
		id[i] = alphabet[(l->count >> (5 * (ID_ORDERED - 1 - i))) & 31];
	l->count++;
	id[DOC_ID_LEN] = '\0';
}

static int
index_rows(struct loader *l, int64_t ix, const struct buf *key, int64_t ts)
{
	sqlite3_stmt	*s = l->s[R_IDX_LOG];

	sqlite3_bind_int64(s, 1, ix);
	sqlite3_bind_blob(s, 2, key->data, (int)key->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, ts);
	sqlite3_bind_int64(s, 4, l->table_id);
	if (step(l, s) == -1)
		return -1;
	s = l->s[R_CUR_IDX];
	sqlite3_bind_int64(s, 1, ix);
	sqlite3_bind_blob(s, 2, key->data, (int)key->len, SQLITE_STATIC);
	return step(l, s);
}

/* Insert n documents, txn a transaction; the seconds it took. */
static double
load(struct loader *l, int n, int txn)
{
	struct buf	 user, doc, key;
	char		 id[DOC_ID_LEN + 1];
	int64_t		 t0, ts = now_us();
	double		 ct;
	sqlite3_stmt	*s;
	int		 i;

	buf_init(&user);
	buf_init(&doc);
	buf_init(&key);
	t0 = mono_us();
	if (store_exec(l->st, "BEGIN IMMEDIATE") == -1)
		return -1;
	for (i = 0; i < n; i++) {
		ts++;
		ct = (double)ts / 1000.0;
		new_id(l, id);
		buf_reset(&user);
		doc_user(&user, (uint64_t)i);
		buf_reset(&doc);
		buf_adds(&doc, "{\"_id\":\"");
		buf_adds(&doc, id);
		buf_adds(&doc, "\",\"_creationTime\":");
		json_print_number(&doc, ct);
		buf_addc(&doc, ',');
		buf_add(&doc, user.data + 1, user.len - 1);
		s = l->s[R_DOC_LOG];
		sqlite3_bind_text(s, 1, id, DOC_ID_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, ts);
		sqlite3_bind_int64(s, 3, l->table_id);
		sqlite3_bind_text(s, 4, doc.data, (int)doc.len, SQLITE_STATIC);
		if (step(l, s) == -1)
			return -1;
		s = l->s[R_CUR_DOC];
		sqlite3_bind_text(s, 1, id, DOC_ID_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, l->table_id);
		sqlite3_bind_int64(s, 3, ts);
		sqlite3_bind_int64(s, 4, sqlite3_last_insert_rowid(l->st->db));
		if (step(l, s) == -1)
			return -1;
		buf_reset(&key);
		key_append_string(&key, id, DOC_ID_LEN);
		if (index_rows(l, l->by_id, &key, ts) == -1)
			return -1;
		buf_reset(&key);
		key_append_number(&key, ct);
		key_append_string(&key, id, DOC_ID_LEN);
		if (index_rows(l, l->by_ct, &key, ts) == -1)
			return -1;
		if ((i + 1) % txn == 0 || i + 1 == n) {
			if (store_global_set_i64(l->st, "max_ts", ts) == -1 ||
			    store_exec(l->st, "COMMIT") == -1)
				return -1;
			if (i + 1 < n && store_exec(l->st, "BEGIN IMMEDIATE")
			    == -1)
				return -1;
		}
	}
	buf_free(&user);
	buf_free(&doc);
	buf_free(&key);
	return (double)(mono_us() - t0) / 1e6;
}

/* Bytes of the database and its WAL. */
static int64_t
db_bytes(const char *path)
{
	struct stat	 sb;
	char		 wal[1100];
	int64_t		 n = 0;

	if (stat(path, &sb) == 0)
		n += (int64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &sb) == 0)
		n += (int64_t)sb.st_size;
	return n;
}

static int
do_load(const char *dir, const char *name, const char *count, int txn,
    const char *cache, int build, int ordered)
{
	struct loader	 l;
	char		 path[1024];
	int64_t		 n;
	double		 secs;

	int64_t		 kib = build ? BUILD_CACHE_KIB : BASE_CACHE_KIB;

	if (parse_i64(count, 1, 1000000000, &n) == -1 || (cache != NULL &&
	    parse_i64(cache, 0, 1 << 30, &kib) == -1))
		usage();
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (loader_open(&l, path, (int)kib) == -1)
		return 1;
	l.ordered = build || ordered;
	/* A fixture: nothing to lose if the machine stops. */
	if (build && (store_exec(l.st, "PRAGMA journal_mode = OFF") == -1 ||
	    store_exec(l.st, "PRAGMA synchronous = OFF") == -1))
		return 1;
	secs = load(&l, (int)n, txn);
	if (build && store_exec(l.st, "PRAGMA journal_mode = WAL") == -1)
		secs = -1;
	loader_close(&l);
	if (secs < 0)
		return 1;
	printf("{\"rows\":%" PRId64 ",\"ordered_ids\":%s,\"seconds\":%.6f,"
	    "\"rows_per_s\":%.1f,"
	    "\"txn_rows\":%d,\"cache_kib\":%" PRId64 ",\"db_bytes\":%"
	    PRId64 "}\n", n, l.ordered ? "true" : "false", secs,
	    (double)n / secs, txn, kib,
	    db_bytes(path));
	return 0;
}

static int
do_probe(const char *path)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*s = NULL;
	int		 bytes = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(db, "SELECT d.json_value FROM"
	    " current_documents c, documents d WHERE d.seq = c.seq LIMIT 1",
	    -1, &s, NULL) != SQLITE_OK)
		goto done;
	if (sqlite3_step(s) == SQLITE_ROW)
		bytes = sqlite3_column_bytes(s, 0);
	else
		bytes = 0;
done:
	sqlite3_finalize(s);
	sqlite3_close(db);
	if (bytes < 0)
		return 1;
	printf("{\"bytes\":%d}\n", bytes);
	return 0;
}

static int64_t
one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*s = NULL;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int
do_live(const char *path)
{
	sqlite3		*db = NULL;
	int64_t		 docs, bytes, keys, pages, freep, psize, revs;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return 1;
	}
	docs = one_int(db, "SELECT count(*) FROM current_documents");
	bytes = one_int(db, "SELECT coalesce(sum(length(d.json_value)), 0)"
	    " FROM current_documents c, documents d WHERE d.seq = c.seq");
	keys = one_int(db, "SELECT coalesce(sum(length(key)), 0)"
	    " FROM current_indexes");
	revs = one_int(db, "SELECT count(*) FROM documents");
	pages = one_int(db, "PRAGMA page_count");
	freep = one_int(db, "PRAGMA freelist_count");
	psize = one_int(db, "PRAGMA page_size");
	sqlite3_close(db);
	printf("{\"docs\":%" PRId64 ",\"json_bytes\":%" PRId64
	    ",\"key_bytes\":%" PRId64 ",\"revisions\":%" PRId64
	    ",\"pages\":%" PRId64 ",\"free_pages\":%" PRId64
	    ",\"page_size\":%" PRId64 "}\n", docs, bytes, keys, revs, pages,
	    freep, psize);
	return docs < 0 ? 1 : 0;
}

int
main(int argc, char *argv[])
{
	log_init("tinyvex-bench-sql", 1, 0);
	if (argc >= 4 && argc <= 6 && strcmp(argv[1], "baseline") == 0) {
		if (argc == 6 && strcmp(argv[5], "ordered") != 0)
			usage();
		return do_load(argv[2], "baseline.db", argv[3], BASE_TXN_ROWS,
		    argc >= 5 ? argv[4] : NULL, 0, argc == 6);
	}
	if (argc == 4 && strcmp(argv[1], "build") == 0)
		return do_load(argv[2], "tinyvex.db", argv[3], BUILD_TXN_ROWS,
		    NULL, 1, 1);
	if (argc == 3 && strcmp(argv[1], "probe") == 0)
		return do_probe(argv[2]);
	if (argc == 3 && strcmp(argv[1], "live") == 0)
		return do_live(argv[2]);
	usage();
}
