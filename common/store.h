/*
 * The storage engine shared by writerd and gatewayd: opening the database,
 * its schema and migrations, the catalog of tables and indexes, and the
 * globals.  Reads (scan.c) and the built-in query functions (udf.c) sit on
 * top; the write path belongs to writerd.
 *
 * Tables (DESIGN §2):
 *   documents(seq, id, ts, table_id, json_value, deleted, prev_ts)
 *       every revision of every document: the log, and the only place
 *       a value is stored; seq is the row's place in it
 *   indexes(index_id, key, ts, deleted, table_id)
 *       every index entry revision; written only when a key appears or
 *       disappears.  A key ends with its document's id (key_doc_id).
 *   current_documents(id, table_id, ts, seq)
 *   current_indexes(index_id, key)
 *       the materialized current state, maintained in the same
 *       transaction as the log rows; live queries read these
 *   globals(key, json_value)
 *       max_ts, catalog_version, retention_floor, schema_version
 *   tables(table_id, name, created_ts), index_defs(index_id, table_id,
 *       name, fields, is_unique, created_ts)
 *       the catalog
 *   table_counts(table_id, documents)
 *       the number of current documents of each table, maintained in
 *       the same transaction as current_documents (format 3)
 *   idempotency(session_id, request_id, ts, outcome)
 *       recorded mutation outcomes
 */
#ifndef TINYVEX_STORE_H
#define TINYVEX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "globals.h"
#include "util.h"

#define STORE_SCHEMA_VERSION	3	/* the file's format */
#define STORE_NAME_MAX		64	/* table, index and field names */
#define STORE_MAX_INDEX_FIELDS	16	/* declared fields of one index */
#define STORE_MAX_TABLES	10000
#define STORE_MAX_INDEXES	64	/* per table, built-ins included */
#define STORE_ID_LEN		26	/* document id: base32 of 128 bits */
#define STORE_BUSY_TIMEOUT_MS	5000
/*
 * How much of a savepoint's sub-journal (the pages a mutation changes that
 * existed before it, 4 KiB each) SQLite keeps in memory, in one allocation,
 * before it moves the journal to a temporary file for the rest of the
 * transaction.  4 MiB holds about 1,000 pages; a single insert changes
 * about 9 that existed before it.
 */
#define STORE_SUBJOURNAL_BYTES	(4 * 1024 * 1024)

#define STORE_INDEX_BY_ID	"by_id"
#define STORE_INDEX_BY_CREATION	"by_creation_time"

struct store_index {
	int64_t		 id;		/* index_id */
	int64_t		 table_id;
	char		 name[STORE_NAME_MAX + 1];
	char		**fields;	/* all key fields, appended ones too */
	size_t		 nfields;
	size_t		 ndeclared;	/* fields a unique index compares */
	int		 unique;
	int64_t		 created_ts;	/* no history on this index before */
};

struct store_table {
	int64_t			  id;
	char			  name[STORE_NAME_MAX + 1];
	int64_t			  created_ts;
	struct store_index	**indexes;	/* by_id, by_creation_time, user */
	size_t			  nindexes;
};

struct catalog {
	int64_t			  version;
	struct store_table	**tables;
	size_t			  ntables;
};

enum store_mode {
	STORE_RW,		/* writerd: creates and migrates */
	STORE_RO,		/* gatewayd: read-only, query_only */
};

struct store_options {
	int		 synchronous_full;	/* PRAGMA synchronous=FULL */
	uint64_t	 journal_size_limit;	/* bytes */
};

/* Prepared statements, one per query the engine runs. */
enum store_stmt {
	ST_GLOBAL_GET,
	ST_GLOBAL_SET,
	ST_CUR_DOC_GET,
	ST_LOG_DOC_AT,
	ST_CUR_IDX_ASC,
	ST_CUR_IDX_DESC,
	ST_LOG_IDX_ASC,
	ST_LOG_IDX_DESC,
	ST_LOG_SINCE,
	ST_LOG_DOC_EXACT,
	ST_TABLE_COUNT,
	ST_BEGIN,		/* the transaction statements: store_exec */
	ST_BEGIN_IMMEDIATE,
	ST_COMMIT,
	ST_COUNT
};

struct store {
	sqlite3		*db;
	enum store_mode	 mode;
	struct catalog	*catalog;	/* as of the last catalog_version read */
	sqlite3_stmt	*stmt[ST_COUNT];
	char		*path;
	int		 in_txn;	/* a read or write transaction is open */
};

/*
 * Open path.  STORE_RW creates the file and schema when missing (with
 * auto_vacuum=INCREMENTAL before the first table, WAL, persistent WAL
 * files), migrates older schema versions, and refuses a newer one.
 * STORE_RO opens an existing database read-only and fails when it or its
 * -wal/-shm files do not exist yet.  Returns the store, or NULL with a
 * message in err.
 */
struct store	*store_open(const char *path, enum store_mode,
		    const struct store_options *, char *err, size_t errlen);
void		 store_close(struct store *);

/* Run SQL text that returns no rows; 0 or -1 (logged). */
int		 store_exec(struct store *, const char *sql);

/*
 * Start a read transaction and read the newest committed ts in it; the
 * catalog is reloaded when its version changed.  Everything read until
 * store_end_read is consistent at *max_ts.  0 or -1.
 */
int		 store_begin_read(struct store *, int64_t *max_ts);
void		 store_end_read(struct store *);

/* Globals, as integers; *out untouched (and 0 returned) when absent. */
int		 store_global_get_i64(struct store *, const char *key,
		    int64_t *out);
/* The integer in the first column of a query's first row; -1 on failure. */
int64_t		 store_query_i64(struct store *, const char *sql);
int		 store_global_set_i64(struct store *, const char *key,
		    int64_t v);

/* (Re)load the catalog from the database; 0 or -1. */
int		 store_load_catalog(struct store *);

const struct store_table *catalog_table(const struct catalog *,
		    const char *name);
const struct store_table *catalog_table_by_id(const struct catalog *,
		    int64_t id);
const struct store_index *catalog_index(const struct store_table *,
		    const char *name);
const struct store_index *catalog_index_by_id(const struct catalog *,
		    int64_t id);
void		 catalog_free(struct catalog *);

/* 1 when s is a valid table, index or user field name. */
int		 store_valid_name(const char *s);
/* 1 when s looks like a document id. */
int		 store_valid_id(const char *s);

#endif
