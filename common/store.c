/*
 * Opening the database, creating and migrating its schema, the globals and
 * the catalog of tables and indexes.  Used read-write by writerd and
 * read-only by gatewayd (DESIGN §2, §12).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "log.h"
#include "store.h"

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS globals("
    " key TEXT PRIMARY KEY, json_value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS tables("
    " table_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created_ts INTEGER NOT NULL);"
    /* Current documents per table, kept in the same transaction. */
    "CREATE TABLE IF NOT EXISTS table_counts("
    " table_id INTEGER PRIMARY KEY, documents INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS index_defs("
    " index_id INTEGER PRIMARY KEY, table_id INTEGER NOT NULL,"
    " name TEXT NOT NULL, fields TEXT NOT NULL, builtin INTEGER NOT NULL,"
    " is_unique INTEGER NOT NULL, created_ts INTEGER NOT NULL,"
    " UNIQUE(table_id, name));"
    /*
     * The log holds the only copy of each value: a rowid table keeps rows
     * of up to about a page inline, where a WITHOUT ROWID b-tree would
     * spill everything past ~1 KB to an overflow page of its own.
     */
    "CREATE TABLE IF NOT EXISTS documents("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL, ts INTEGER NOT NULL, table_id INTEGER NOT NULL,"
    " json_value TEXT, deleted INTEGER NOT NULL, prev_ts INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS documents_by_id"
    " ON documents(id, ts);"
    "CREATE INDEX IF NOT EXISTS documents_by_ts ON documents(ts, id);"
    /* A key ends with its document's id (keys.h): not stored twice. */
    "CREATE TABLE IF NOT EXISTS indexes("
    " index_id INTEGER NOT NULL, key BLOB NOT NULL, ts INTEGER NOT NULL,"
    " deleted INTEGER NOT NULL, table_id INTEGER NOT NULL,"
    " PRIMARY KEY(index_id, key, ts)) WITHOUT ROWID;"
    /*
     * The removals, in ts order, for GC: every index entry that is garbage
     * is a removal at or below the floor or older than one (the entries of
     * a key alternate, see writerd/wctx.c).  GC deletes the removals it
     * visits, so this index holds only the ones not yet collected.
     */
    "CREATE INDEX IF NOT EXISTS indexes_removed ON indexes(ts)"
    " WHERE deleted = 1;"
    /* The newest revision of each live document: seq is its log row. */
    "CREATE TABLE IF NOT EXISTS current_documents("
    " id TEXT PRIMARY KEY, table_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS current_indexes("
    " index_id INTEGER NOT NULL, key BLOB NOT NULL,"
    " PRIMARY KEY(index_id, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS idempotency("
    " session_id TEXT NOT NULL, request_id TEXT NOT NULL,"
    " ts INTEGER NOT NULL, outcome TEXT NOT NULL,"
    " PRIMARY KEY(session_id, request_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS idempotency_by_ts ON idempotency(ts);";

/*
 * Format 1 kept the log in a WITHOUT ROWID table, a second copy of each
 * current value in current_documents, the document id of each index entry
 * in a column of its own, and a ts index over every index entry.  The old
 * document tables are renamed out of the way before schema_sql creates
 * the new ones, then copied across in log order, all in the one
 * transaction that opens the file.
 */
static const char *migrate_v1_before =
    "ALTER TABLE documents RENAME TO documents_v1;"
    "ALTER TABLE current_documents RENAME TO current_documents_v1;"
    /*
     * The name documents_by_ts is the new log's; the old log keeps an
     * index of its own, so that the copy in ts order reads it rather
     * than sorting every value through temporary files.
     */
    "DROP INDEX documents_by_ts;"
    "CREATE INDEX documents_v1_by_ts ON documents_v1(ts);"
    "DROP INDEX indexes_by_ts;"
    "ALTER TABLE indexes DROP COLUMN document_id;"
    "ALTER TABLE current_indexes DROP COLUMN document_id;"
    /*
     * Format 1 could log an entry that changed nothing (a key removed and
     * put back by one mutation): drop each entry that repeats the one
     * before it, and removals of keys never added, so that the entries of
     * every key alternate.  Reads at any ts see the same keys.
     */
    "DELETE FROM indexes WHERE (index_id, key, ts) IN"
    " (SELECT index_id, key, ts FROM (SELECT index_id, key, ts, deleted,"
    " lag(deleted, 1, 1) OVER (PARTITION BY index_id, key ORDER BY ts)"
    " AS before FROM indexes) WHERE deleted = before);";

static const char *migrate_v1_copy =
    "INSERT INTO documents(id, ts, table_id, json_value, deleted, prev_ts)"
    " SELECT id, ts, table_id, json_value, deleted, prev_ts"
    " FROM documents_v1 ORDER BY ts, id;"
    "INSERT INTO current_documents(id, table_id, ts, seq)"
    " SELECT c.id, c.table_id, c.ts, d.seq FROM current_documents_v1 c"
    " JOIN documents d ON d.id = c.id AND d.ts = c.ts"
    " AND d.table_id = c.table_id AND d.deleted = 0;";

static const char *migrate_v1_after =
    "DROP TABLE current_documents_v1;"
    "DROP TABLE documents_v1;";

static const char *stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_GLOBAL_GET] =
	    "SELECT json_value FROM globals WHERE key = ?1",
	[ST_GLOBAL_SET] =
	    "INSERT INTO globals(key, json_value) VALUES (?1, ?2)"
	    " ON CONFLICT(key) DO UPDATE SET json_value = excluded.json_value",
	[ST_CUR_DOC_GET] =
	    "SELECT c.table_id, c.ts, d.json_value"
	    " FROM current_documents c, documents d"
	    " WHERE c.id = ?1 AND d.seq = c.seq",
	[ST_LOG_DOC_AT] =
	    "SELECT ts, table_id, json_value, deleted FROM documents"
	    " WHERE id = ?1 AND ts <= ?2 ORDER BY ts DESC LIMIT 1",
	[ST_CUR_IDX_ASC] =
	    "SELECT key FROM current_indexes"
	    " WHERE index_id = ?1 AND key >= ?2 AND key < ?3"
	    " ORDER BY key ASC LIMIT ?4",
	[ST_CUR_IDX_DESC] =
	    "SELECT key FROM current_indexes"
	    " WHERE index_id = ?1 AND key >= ?2 AND key < ?3"
	    " ORDER BY key DESC LIMIT ?4",
	[ST_LOG_IDX_ASC] =
	    "SELECT key, ts, deleted FROM indexes"
	    " WHERE index_id = ?1 AND key >= ?2 AND key < ?3 AND ts <= ?5"
	    " ORDER BY key ASC, ts DESC LIMIT ?4",
	[ST_LOG_IDX_DESC] =
	    "SELECT key, ts, deleted FROM indexes"
	    " WHERE index_id = ?1 AND key >= ?2 AND key < ?3 AND ts <= ?5"
	    " ORDER BY key DESC, ts DESC LIMIT ?4",
	[ST_LOG_SINCE] =
	    "SELECT id, ts, table_id, json_value, deleted, prev_ts"
	    " FROM documents WHERE ts > ?1 AND ts <= ?2"
	    " ORDER BY ts, id LIMIT ?3",
	[ST_LOG_DOC_EXACT] =
	    "SELECT json_value, deleted FROM documents"
	    " WHERE id = ?1 AND ts = ?2",
	[ST_TABLE_COUNT] =
	    "SELECT documents FROM table_counts WHERE table_id = ?1",
};

static void
seterr(char *err, size_t errlen, const char *fmt, const char *a,
    const char *b)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, fmt, a, b);
}

int
store_exec(struct store *st, const char *sql)
{
	static const enum store_stmt	 txn[] = { ST_BEGIN,
	    ST_BEGIN_IMMEDIATE, ST_COMMIT };
	sqlite3_stmt			*s;
	char				*msg = NULL;
	size_t				 i;
	int				 rc;

	/*
	 * Every commit and every read runs BEGIN and COMMIT: prepared once
	 * (once the store is open) instead of parsed each time.
	 */
	for (i = 0; i < nitems(txn); i++) {
		if ((s = st->stmt[txn[i]]) == NULL ||
		    strcmp(sql, stmt_sql[txn[i]]) != 0)
			continue;
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc == SQLITE_DONE)
			return 0;
		log_warnx("%s: %s: %s", __func__, st->path,
		    sqlite3_errmsg(st->db));
		return -1;
	}
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("%s: %s: %s", __func__, st->path,
		    msg != NULL ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
file_exists(const char *path, const char *suffix)
{
	char		 p[4096];
	struct stat	 sb;

	if ((size_t)snprintf(p, sizeof(p), "%s%s", path, suffix) >= sizeof(p))
		return 0;
	return stat(p, &sb) == 0;
}

int64_t
store_query_i64(struct store *st, const char *sql)
{
	sqlite3_stmt	*s;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/*
 * From format 1: every current document must find its newest revision in
 * the log, live and in the same table, or the copy would lose it; then
 * the copy is refused and the file left as it was.
 */
static int
migrate_v1(struct store *st, char *err, size_t errlen)
{
	int64_t	 before, after;

	log_info("%s: converting the database from format 1 to %d",
	    st->path, STORE_SCHEMA_VERSION);
	if (store_exec(st, migrate_v1_copy) == -1)
		return -1;
	before = store_query_i64(st,
	    "SELECT count(*) FROM current_documents_v1");
	after = store_query_i64(st, "SELECT count(*) FROM current_documents");
	if (before == -1 || before != after) {
		seterr(err, errlen, "%s: cannot convert from format 1: current "
		    "documents without their revision in the log%s", st->path,
		    "");
		return -1;
	}
	return store_exec(st, migrate_v1_after);
}

/*
 * From formats 1 and 2: the count of every table's current documents,
 * taken once; writerd keeps it from then on.
 */
static const char migrate_counts[] =
    "DELETE FROM table_counts;"
    "INSERT INTO table_counts(table_id, documents)"
    " SELECT table_id, count(*) FROM current_documents GROUP BY table_id;"
    "INSERT OR IGNORE INTO table_counts(table_id, documents)"
    " SELECT table_id, 0 FROM tables;";

/*
 * A reader reads one format: the one writerd converts every file to.  A
 * gateway older or newer than its writer says so, rather than failing on
 * each statement.
 */
static int
check_format(struct store *st, char *err, size_t errlen)
{
	char	 have[24], want[24];
	int64_t	 version = 0;

	if (store_global_get_i64(st, GLOBAL_SCHEMA_VERSION, &version) == -1) {
		seterr(err, errlen, "%s: cannot read the database's format: %s",
		    st->path, sqlite3_errmsg(st->db));
		return -1;
	}
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	snprintf(have, sizeof(have), "%" PRId64, version);
	snprintf(want, sizeof(want), "%d", STORE_SCHEMA_VERSION);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: the database is in format %s; this "
		    "program reads format %s", st->path, have, want);
	return -1;
}

static int
create_schema(struct store *st, char *err, size_t errlen)
{
	int64_t	 version = 0, n;
	int	 rollback = 0;

	if (store_exec(st, "BEGIN IMMEDIATE") == -1)
		goto fail;
	st->in_txn = 1;
	/* A file without globals is new; one that cannot tell is refused. */
	if ((n = store_query_i64(st, "SELECT count(*) FROM sqlite_schema"
	    " WHERE type = 'table' AND name = 'globals'")) == -1 ||
	    (n == 1 && store_global_get_i64(st, GLOBAL_SCHEMA_VERSION, &version)
	    == -1))
		goto rollback;
	if (version > STORE_SCHEMA_VERSION) {
		seterr(err, errlen, "%s: schema version is newer than this "
		    "program's%s", st->path, "");
		goto rollback;
	}
	if (version == 1 && store_exec(st, migrate_v1_before) == -1)
		goto rollback;
	if (store_exec(st, schema_sql) == -1)
		goto rollback;
	if (version == 1 && migrate_v1(st, err, errlen) == -1)
		goto rollback;
	if ((version == 1 || version == 2) &&
	    store_exec(st, migrate_counts) == -1)
		goto rollback;
	if (version == 0) {
		if (store_global_set_i64(st, GLOBAL_MAX_TS, 0) == -1 ||
		    store_global_set_i64(st, GLOBAL_CATALOG_VERSION, 1) == -1 ||
		    store_global_set_i64(st, GLOBAL_RETENTION_FLOOR, 0) == -1)
			goto rollback;
	}
	if (version != STORE_SCHEMA_VERSION && store_global_set_i64(st,
	    GLOBAL_SCHEMA_VERSION, STORE_SCHEMA_VERSION) == -1)
		goto rollback;
	st->in_txn = 0;
	if (store_exec(st, "COMMIT") == -1)
		goto fail;
	return 0;
rollback:
	rollback = 1;
fail:
	/* The message first: ROLLBACK clears it. */
	if (err != NULL && err[0] == '\0')
		seterr(err, errlen, "%s: cannot create schema: %s", st->path,
		    sqlite3_errmsg(st->db));
	if (rollback) {
		st->in_txn = 0;
		store_exec(st, "ROLLBACK");
	}
	return -1;
}

struct store *
store_open(const char *path, enum store_mode mode,
    const struct store_options *opt, char *err, size_t errlen)
{
	struct store	*st;
	char		 sql[128];
	int		 flags, i, persist = 1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	st = xcalloc(1, sizeof(*st));
	st->mode = mode;
	st->path = xstrdup(path);
	if (mode == STORE_RO) {
		if (!file_exists(path, "") || !file_exists(path, "-wal") ||
		    !file_exists(path, "-shm")) {
			seterr(err, errlen, "%s%s: database, -wal or -shm not "
			    "there yet", path, "");
			goto fail;
		}
		flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
	} else
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX;
	/*
	 * No memory statistics: with them every allocation of SQLite takes
	 * a global mutex to count itself.  SQLite takes this only before
	 * its first use in the process; later calls change nothing.
	 */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/*
	 * A savepoint (writerd's, when a group runs again with one per
	 * mutation) copies every page it changes that existed before it
	 * into a sub-journal.  SQLite keeps that journal in memory up to
	 * STORE_SUBJOURNAL_BYTES as one allocation, freed at RELEASE; past
	 * its default of 64 KiB it would move the journal to a temporary
	 * file and write every later page there.  (temp_store = MEMORY
	 * would cut it into 1 KiB chunks instead: five allocations a page.)
	 * Other temporary data (sorts, RETURNING) stays in the page cache
	 * and spills to a file only when it outgrows it.
	 */
	(void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL,
	    STORE_SUBJOURNAL_BYTES);
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		seterr(err, errlen, "%s: %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if (mode == STORE_RW) {
		/* Keep -wal and -shm after close: readers need them. */
		sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL,
		    &persist);
		/*
		 * auto_vacuum takes effect only while the file is new: before
		 * the switch to WAL writes its first page.
		 */
		if (store_exec(st, "PRAGMA auto_vacuum = INCREMENTAL") == -1)
			goto sqlfail;
		if (store_exec(st, "PRAGMA journal_mode = WAL") == -1)
			goto sqlfail;
		snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s",
		    opt != NULL && opt->synchronous_full ? "FULL" : "NORMAL");
		if (store_exec(st, sql) == -1)
			goto sqlfail;
		snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %" PRIu64,
		    opt != NULL && opt->journal_size_limit > 0 ?
		    opt->journal_size_limit : (uint64_t)64 * 1024 * 1024);
		if (store_exec(st, sql) == -1)
			goto sqlfail;
		/* Room for the hot pages of the log, current state and indexes. */
		if (store_exec(st, "PRAGMA cache_size = -65536") == -1)
			goto sqlfail;
		/* Checkpoints are run by writerd on its own schedule. */
		sqlite3_wal_autocheckpoint(st->db, 0);
		if (create_schema(st, err, errlen) == -1)
			goto fail;
	} else {
		if (store_exec(st, "PRAGMA query_only = 1") == -1)
			goto sqlfail;
		/*
		 * Sorts stay in memory: a gateway never creates files (its
		 * sandbox allows none).
		 */
		if (store_exec(st, "PRAGMA temp_store = MEMORY") == -1)
			goto sqlfail;
		if (check_format(st, err, errlen) == -1)
			goto fail;
	}
	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) != SQLITE_OK)
			goto sqlfail;
	}
	if (store_load_catalog(st) == -1)
		goto sqlfail;
	return st;
sqlfail:
	if (err != NULL && err[0] == '\0')
		seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
fail:
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	int	 i;

	if (st == NULL)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
		log_warnx("%s: %s", __func__, sqlite3_errmsg(st->db));
	catalog_free(st->catalog);
	free(st->path);
	free(st);
}

int
store_global_get_i64(struct store *st, const char *key, int64_t *out)
{
	sqlite3_stmt	*s = st->stmt[ST_GLOBAL_GET];
	const char	*txt;
	int		 rc, ret = 0;
	int64_t		 v;

	if (s == NULL) {
		/* Not prepared yet: during schema creation. */
		if (sqlite3_prepare_v2(st->db, stmt_sql[ST_GLOBAL_GET], -1,
		    &s, NULL) != SQLITE_OK)
			return -1;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		txt = (const char *)sqlite3_column_text(s, 0);
		if (txt == NULL || parse_i64(txt, INT64_MIN, INT64_MAX, &v)
		    == -1) {
			log_warnx("%s: global %s is not an integer", __func__,
			    key);
			ret = -1;
		} else
			*out = v;
	} else if (rc != SQLITE_DONE) {
		log_warnx("%s: %s: %s", __func__, key, sqlite3_errmsg(st->db));
		ret = -1;
	}
	if (s == st->stmt[ST_GLOBAL_GET]) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	} else
		sqlite3_finalize(s);
	return ret;
}

int
store_global_set_i64(struct store *st, const char *key, int64_t v)
{
	sqlite3_stmt	*s = st->stmt[ST_GLOBAL_SET];
	char		 txt[24];
	int		 rc;

	if (s == NULL && sqlite3_prepare_v2(st->db, stmt_sql[ST_GLOBAL_SET],
	    -1, &s, NULL) != SQLITE_OK)
		return -1;
	snprintf(txt, sizeof(txt), "%" PRId64, v);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, txt, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (s == st->stmt[ST_GLOBAL_SET]) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	} else
		sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		log_warnx("%s: %s: %s", __func__, key, sqlite3_errmsg(st->db));
		return -1;
	}
	return 0;
}

int
store_begin_read(struct store *st, int64_t *max_ts)
{
	int64_t	 cv = 0;

	assert(!st->in_txn);
	if (store_exec(st, "BEGIN") == -1)
		return -1;
	st->in_txn = 1;
	*max_ts = 0;
	if (store_global_get_i64(st, GLOBAL_MAX_TS, max_ts) == -1 ||
	    store_global_get_i64(st, GLOBAL_CATALOG_VERSION, &cv) == -1)
		goto fail;
	if (st->catalog == NULL || st->catalog->version != cv) {
		if (store_load_catalog(st) == -1)
			goto fail;
	}
	return 0;
fail:
	store_end_read(st);
	return -1;
}

void
store_end_read(struct store *st)
{
	if (!st->in_txn)
		return;
	st->in_txn = 0;
	if (sqlite3_get_autocommit(st->db) == 0)
		store_exec(st, "COMMIT");
}

/* Catalog */

void
catalog_free(struct catalog *cat)
{
	size_t	 i, j, k;

	if (cat == NULL)
		return;
	for (i = 0; i < cat->ntables; i++) {
		struct store_table *t = cat->tables[i];

		for (j = 0; j < t->nindexes; j++) {
			for (k = 0; k < t->indexes[j]->nfields; k++)
				free(t->indexes[j]->fields[k]);
			free(t->indexes[j]->fields);
			free(t->indexes[j]);
		}
		free(t->indexes);
		free(t);
	}
	free(cat->tables);
	free(cat);
}

static struct store_table *
catalog_table_mut(struct catalog *cat, int64_t id)
{
	size_t	 i;

	for (i = 0; i < cat->ntables; i++)
		if (cat->tables[i]->id == id)
			return cat->tables[i];
	return NULL;
}

/*
 * Parse an index's field list (a JSON array of names) and, for a user
 * index, append _creationTime and _id.
 */
static int
index_set_fields(struct store_index *ix, const char *text, int builtin)
{
	cJSON		*arr, *f;
	size_t		 n, i = 0;
	enum json_err	 jerr;

	if ((arr = json_parse(text, strlen(text), 2, &jerr)) == NULL ||
	    !cJSON_IsArray(arr))
		goto fail;
	n = (size_t)cJSON_GetArraySize(arr);
	if (n == 0 || n > STORE_MAX_INDEX_FIELDS)
		goto fail;
	ix->fields = xcalloc(n + 2, sizeof(char *));
	cJSON_ArrayForEach(f, arr) {
		if (!cJSON_IsString(f))
			goto fail;
		ix->fields[i++] = xstrdup(f->valuestring);
	}
	ix->ndeclared = n;
	if (!builtin) {
		ix->fields[i++] = xstrdup("_creationTime");
		ix->fields[i++] = xstrdup("_id");
	}
	ix->nfields = i;
	cJSON_Delete(arr);
	return 0;
fail:
	cJSON_Delete(arr);
	return -1;
}

int
store_load_catalog(struct store *st)
{
	struct catalog		*cat;
	struct store_table	*t;
	struct store_index	*ix;
	sqlite3_stmt		*s = NULL;
	const char		*name, *fields;
	int			 rc;

	cat = xcalloc(1, sizeof(*cat));
	if (store_global_get_i64(st, GLOBAL_CATALOG_VERSION, &cat->version) ==
	    -1)
		goto fail;
	if (sqlite3_prepare_v2(st->db, "SELECT table_id, name, created_ts"
	    " FROM tables ORDER BY table_id", -1, &s, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(s, 1);
		if (name == NULL || !store_valid_name(name))
			goto fail;
		t = xcalloc(1, sizeof(*t));
		t->id = sqlite3_column_int64(s, 0);
		strlcpy_tv(t->name, name, sizeof(t->name));
		t->created_ts = sqlite3_column_int64(s, 2);
		cat->tables = xreallocarray(cat->tables, cat->ntables + 1,
		    sizeof(*cat->tables));
		cat->tables[cat->ntables++] = t;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(s);
	if (sqlite3_prepare_v2(st->db, "SELECT index_id, table_id, name,"
	    " fields, builtin, is_unique, created_ts FROM index_defs"
	    " ORDER BY table_id, builtin DESC, index_id", -1, &s, NULL)
	    != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(s, 2);
		fields = (const char *)sqlite3_column_text(s, 3);
		if ((t = catalog_table_mut(cat, sqlite3_column_int64(s, 1)))
		    == NULL || name == NULL || fields == NULL ||
		    strlen(name) > STORE_NAME_MAX ||
		    t->nindexes >= STORE_MAX_INDEXES)
			goto fail;
		ix = xcalloc(1, sizeof(*ix));
		ix->id = sqlite3_column_int64(s, 0);
		ix->table_id = t->id;
		strlcpy_tv(ix->name, name, sizeof(ix->name));
		ix->unique = sqlite3_column_int(s, 5) != 0;
		ix->created_ts = sqlite3_column_int64(s, 6);
		t->indexes = xreallocarray(t->indexes, t->nindexes + 1,
		    sizeof(*t->indexes));
		t->indexes[t->nindexes++] = ix;
		if (index_set_fields(ix, fields, sqlite3_column_int(s, 4))
		    == -1)
			goto fail;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(s);
	catalog_free(st->catalog);
	st->catalog = cat;
	return 0;
fail:
	log_warnx("%s: %s: catalog unreadable: %s", __func__, st->path,
	    sqlite3_errmsg(st->db));
	sqlite3_finalize(s);
	catalog_free(cat);
	return -1;
}

const struct store_table *
catalog_table(const struct catalog *cat, const char *name)
{
	size_t	 i;

	for (i = 0; cat != NULL && i < cat->ntables; i++)
		if (strcmp(cat->tables[i]->name, name) == 0)
			return cat->tables[i];
	return NULL;
}

const struct store_table *
catalog_table_by_id(const struct catalog *cat, int64_t id)
{
	size_t	 i;

	for (i = 0; cat != NULL && i < cat->ntables; i++)
		if (cat->tables[i]->id == id)
			return cat->tables[i];
	return NULL;
}

const struct store_index *
catalog_index(const struct store_table *t, const char *name)
{
	size_t	 i;

	for (i = 0; t != NULL && i < t->nindexes; i++)
		if (strcmp(t->indexes[i]->name, name) == 0)
			return t->indexes[i];
	return NULL;
}

const struct store_index *
catalog_index_by_id(const struct catalog *cat, int64_t id)
{
	size_t	 i, j;

	for (i = 0; cat != NULL && i < cat->ntables; i++)
		for (j = 0; j < cat->tables[i]->nindexes; j++)
			if (cat->tables[i]->indexes[j]->id == id)
				return cat->tables[i]->indexes[j];
	return NULL;
}

/* [A-Za-z][A-Za-z0-9_]{0,63} */
int
store_valid_name(const char *s)
{
	size_t	 i;

	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		if (i >= STORE_NAME_MAX)
			return 0;
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	}
	return 1;
}

/* Document ids: STORE_ID_LEN characters of the base32 alphabet. */
int
store_valid_id(const char *s)
{
	size_t	 i;

	/* 0-9 and a-z without i, l, o and u. */
	for (i = 0; i < STORE_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'z' && s[i] != 'i' &&
		    s[i] != 'l' && s[i] != 'o' && s[i] != 'u')))
			return 0;
	return s[i] == '\0';
}
