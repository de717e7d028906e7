/*
 * The write context: what one mutation sees and does while it runs in its
 * savepoint.  It reads current documents, writes document revisions with
 * their index entries (log and current state together), enforces unique
 * indexes, creates tables on first insert, and collects the write set
 * that the commit notice carries.
 */
#ifndef TINYVEX_WCTX_H
#define TINYVEX_WCTX_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "errors.h"
#include "store.h"
#include "util.h"

/* One index's key of a written document, before and after. */
struct wkey {
	int64_t		 index_id;
	int		 has_old, has_new;
	struct buf	 old, new;
};

/*
 * One document written by the mutation.  A slot keeps its keys and their
 * buffers from one mutation to the next (keycap of them).
 */
struct wdoc {
	int64_t		 table_id;
	char		 id[STORE_ID_LEN + 1];
	struct wkey	*keys;
	size_t		 nkeys, keycap;
};

enum wstmt {
	WS_CUR_DOC,
	WS_DOC_LOG,
	WS_DOC_NEW,
	WS_CUR_DOC_PUT,
	WS_CUR_DOC_NEW,
	WS_CUR_DOC_DEL,
	WS_IDX_LOG,
	WS_IDX_LOG_NEW,
	WS_IDX_LOG_DROP,
	WS_CUR_IDX_PUT,
	WS_CUR_IDX_DEL,
	WS_CUR_IDX_RANGE,
	WS_ID_USED,
	WS_TABLE_NEW,
	WS_INDEX_NEW,
	WS_COUNT_NEW,
	WS_COUNT_ADD,
	WS_COUNT
};

/* A change to one table's document count not yet written. */
struct wcount {
	int64_t		 table_id;
	int64_t		 kept;		/* of mutations that succeeded */
	int64_t		 mut;		/* of the running mutation */
};

/*
 * Ids take their random part from a buffer that one getrandom call fills
 * for 256 ids, instead of a system call for each.
 */
#define WCTX_RANDOM_BYTES	4096

struct schema;

struct wctx {
	struct store		*st;
	const struct config	*conf;
	const struct schema	*schema;	/* validators, or NULL */
	sqlite3_stmt		*stmt[WS_COUNT];
	int64_t			 ts;		/* this mutation's ts */
	struct wdoc		*docs;		/* the write set */
	size_t			 ndocs, cap;	/* cap slots, all initialized */
	int			 catalog_changed;
	struct buf		 key, key2;	/* scratch */
	struct buf		 json;		/* a written document's text */
	struct wcount		*counts;	/* per table, this transaction */
	size_t			 ncounts, countcap;
	/* Kernel randomness for ids not used yet: the last rndlen bytes. */
	unsigned char		 rnd[WCTX_RANDOM_BYTES];
	size_t			 rndlen;
};

int	 wctx_init(struct wctx *, struct store *, const struct config *);
void	 wctx_free(struct wctx *);
/*
 * Forget the write set and the running mutation's count changes; start a
 * mutation at ts.
 */
void	 wctx_reset(struct wctx *, int64_t ts);

/*
 * Table document counts are written once per transaction: wctx_keep adds
 * the running mutation's changes to the transaction's once it succeeded,
 * wctx_flush writes those (before COMMIT; 0 or -1) and wctx_forget drops
 * them (the transaction is rolled back, or a new one begins).
 */
void	 wctx_keep(struct wctx *);
int	 wctx_flush(struct wctx *);
void	 wctx_forget(struct wctx *);

/*
 * Find table name; when missing and create is set, create it with its
 * built-in indexes (TooLarge past STORE_MAX_TABLES).  *out is NULL when
 * missing and not created.  0 or -1 with err.
 */
int	 wctx_table(struct wctx *, const char *name, int create,
	    const struct store_table **out, struct tv_error *);

/*
 * Read document id of table t from the current state: *doc is a new tree
 * (NULL when there is no such document in t), *ts its revision's ts.
 * 0 or -1 with err.
 */
int	 wctx_read(struct wctx *, const struct store_table *, const char *id,
	    cJSON **doc, int64_t *ts, struct tv_error *);

/*
 * Write a revision of document id of table t: newdoc (complete, system
 * fields included) or NULL for a delete.  olddoc and old_ts are what
 * wctx_read returned.  Updates log and current state, index entries whose
 * key changed, enforces unique indexes (Conflict) and max_document_bytes
 * (TooLarge, before anything is written), and records the keys in the
 * write set.  0 or -1 with err.
 */
int	 wctx_write(struct wctx *, const struct store_table *, const char *id,
	    const cJSON *olddoc, int64_t old_ts, const cJSON *newdoc,
	    struct tv_error *);

/* A fresh document id that was never used.  0 or -1 with err. */
int	 wctx_new_id(struct wctx *, char out[STORE_ID_LEN + 1],
	    struct tv_error *);

/*
 * Add an index to table t and build its entries from the current
 * documents (unique violations: Conflict), or drop one.  0 or -1 with err.
 */
int	 wctx_index_create(struct wctx *, const struct store_table *,
	    const char *name, char *const *fields, size_t nfields, int unique,
	    struct tv_error *);
int	 wctx_index_drop(struct wctx *, const struct store_index *,
	    struct tv_error *);

/*
 * Append the IPC_COMMIT frame for the current write set to frame.  Past
 * IPC_MAX_WRITESET_BYTES the write set is left out (nil).
 */
void	 wctx_notice(struct wctx *, int64_t prev_ts, int64_t catalog_version,
	    struct buf *frame);

#endif
