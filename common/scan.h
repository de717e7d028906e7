/*
 * Snapshot reads: get by id and paged index range scans, either on the
 * materialized current state (read_ts == SCAN_CURRENT) or on the log at a
 * past ts, and the read sets they leave behind.
 *
 * A read set is the list of index intervals [lo, hi) a read scanned, so
 * that a later write can be tested against it: a write whose old or new
 * key in an index falls inside one of that index's intervals may change
 * the result.  For a limited scan the interval stops at the last key
 * read.  Intervals are byte strings compared with memcmp; hi == NULL is
 * unbounded.
 */
#ifndef TINYVEX_SCAN_H
#define TINYVEX_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

#define SCAN_CURRENT		0	/* read_ts: the current state */
#define SCAN_PAGE_ROWS		256	/* rows fetched per statement step */

struct readset_iv {
	int64_t		 index_id;
	unsigned char	*lo;		/* inclusive */
	size_t		 lolen;
	unsigned char	*hi;		/* exclusive; NULL unbounded */
	size_t		 hilen;
};

struct readset {
	struct readset_iv	*iv;
	size_t			 n, cap;
	/*
	 * The read named a table or index that does not exist (yet): any
	 * catalog change may change the result.
	 */
	int			 catalog_dep;
};

void	 readset_init(struct readset *);
void	 readset_free(struct readset *);
void	 readset_add(struct readset *, int64_t index_id,
	    const void *lo, size_t lolen, const void *hi, size_t hilen,
	    int hi_unbounded);
/* 1 when both hold the same intervals in the same order. */
int	 readset_equal(const struct readset *, const struct readset *);
/* 1 when key in index_id falls in one of the read set's intervals. */
int	 readset_hit(const struct readset *, int64_t index_id,
	    const void *key, size_t keylen);
/* Approximate bytes held, for memory accounting. */
size_t	 readset_bytes(const struct readset *);

/*
 * Called for each document a scan returns, in index order: its id and its
 * JSON text (system fields included).  Return 0 to go on, 1 to stop
 * early, -1 to fail the scan.
 */
typedef int (*scan_cb)(void *arg, const char *id, const char *json,
	    size_t jsonlen);

struct scan_range {
	int64_t		 index_id;
	const void	*lo;		/* inclusive */
	size_t		 lolen;
	const void	*hi;		/* exclusive; NULL unbounded */
	size_t		 hilen;
	int		 desc;		/* walk from hi down */
	int64_t		 limit;		/* stop after this many; 0 none */
	int64_t		 read_ts;	/* SCAN_CURRENT or a past ts */
	struct buf	*last_key;	/* NULL, or gets the key of the
					   last document returned */
};

/*
 * Walk one index interval, calling cb for each live document.  The
 * interval actually read (up to the last key returned when the scan
 * stopped at its limit or at cb's request) is added to rs when rs is not
 * NULL.  Returns the number of documents returned, or -1 on a database
 * error (logged).  Must run inside store_begin_read (or a write
 * transaction).
 */
int64_t	 scan_index(struct store *, const struct scan_range *, scan_cb,
	    void *arg, struct readset *rs);

/*
 * Read document id of table t at read_ts into out (reset first).
 * Returns 1 found, 0 not found (or deleted at read_ts, or of another
 * table), -1 on error.  Adds the by_id point interval to rs.
 */
int	 scan_get(struct store *, const struct store_table *t, const char *id,
	    int64_t read_ts, struct buf *out, struct readset *rs);

/*
 * The log since a ts: every document revision with after < ts <= upto,
 * in ts order.  For each, cb gets the revision and the revision before it
 * (NULL when it was created), both as JSON text (NULL when deleted).
 * Returns the number of revisions, or -1.
 */
typedef int (*scan_log_cb)(void *arg, int64_t ts, int64_t table_id,
	    const char *id, const char *before, const char *after);
int64_t	 scan_log_since(struct store *, int64_t after, int64_t upto,
	    scan_log_cb, void *arg);

#endif
