/*
 * gatewayd: WebSocket and JSON-RPC in front of the database.  Each gateway
 * terminates client connections, keeps every connection's query set, runs
 * queries on its own read-only connection, and turns writerd's commit
 * notices into transitions.  This header is the map of the program.
 */
#ifndef TINYVEX_GATEWAYD_H
#define TINYVEX_GATEWAYD_H

#include <sys/queue.h>

#include <stdint.h>

#include <cjson/cJSON.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "errors.h"
#include "htab.h"
#include "http.h"
#include "listen.h"
#include "scan.h"
#include "sendnow.h"
#include "store.h"
#include "util.h"
#include "ws.h"

#define GW_STATS_INTERVAL_US	(2 * 1000000)	/* figures to writerd */
#define GW_TEXT_PING_US		(15 * 1000000)	/* tinyvex/ping when quiet */
#define GW_RECONNECT_MIN_US	(100 * 1000)	/* writer link backoff */
#define GW_RECONNECT_MAX_US	(2 * 1000000)
#define GW_DB_WAIT_US		(200 * 1000)	/* poll for the database */
#define GW_MAX_BATCH		1000	/* requests in one JSON-RPC batch */
#define GW_SCRATCH_KEEP		(64 * 1024) /* scratch kept between uses */

/* Protocol features a connection asked for and was granted (connect). */
#define GW_FEAT_DIFF		0x1	/* "diff": QueryDiff */
#define GW_FEAT_RESUME		0x2	/* "resume": hash, knownHash */

#define DIFF_HASH_BYTES		16	/* of SHA-256, in a result hash */
#define DIFF_HASH_LEN		22	/* its unpadded base64url length */

struct gateway;
struct session;
struct sprov;
struct actions;
struct ipc_hdr;

/* One shared execution of a query: (udfPath, canonical args). */
struct exec {
	TAILQ_ENTRY(exec)	 entry;		/* all executions */
	TAILQ_ENTRY(exec)	 dirty_entry;	/* on the rerun list */
	char			*key;		/* udfPath NUL canonical args */
	size_t			 keylen;
	struct hentry		 hent;		/* in exec_tab, by key */
	const char		*udf_path;	/* the start of key */
	struct readset		 rs;		/* what the last run read */
	int64_t			 rs_catalog;	/* catalog version of that run */
	int			 ok;		/* last run succeeded */
	struct tv_error		*err;		/* else why; NULL when ok */
	char			*value;		/* result JSON text */
	size_t			 valuelen;
	uint64_t		 version;	/* bumped when the result changes */
	char			*diff;		/* QueryDiff from version - 1 */
	size_t			 difflen;
	char			 rhash[DIFF_HASH_LEN + 1]; /* result hash */
	uint64_t		 rhash_version;	/* rhash is of; 0 none */
	int			 dirty;		/* must rerun */
	int			 refs;		/* subscriptions */
	int64_t			 runs;
	struct session		**watchers;	/* sessions subscribed, once */
	size_t			 nwatchers, capwatchers;
};

/* A query of one connection's query set. */
struct sub {
	uint32_t		 query_id;
	struct exec		*ex;
	uint64_t		 sent_version;	/* ex->version last sent; 0 none */
	char			 known_hash[DIFF_HASH_LEN + 1]; /* knownHash */
};

/* An answer held back until a transition has gone out. */
struct held {
	TAILQ_ENTRY(held)	 entry;
	int64_t			 need_ts;	/* endVersion.ts must be ≥ */
	uint64_t		 need_qs;	/* endVersion.querySet ≥ */
	char			*text;		/* the JSON-RPC response */
	size_t			 len;
	int			 batch_slot;	/* >= 0: part of a batch */
	struct rpc_batch	*batch;
};
TAILQ_HEAD(heldq, held);

/* A JSON-RPC batch whose answers are collected in order. */
struct rpc_batch {
	int		 n;		/* entries */
	int		 missing;	/* not yet answered */
	char		**parts;	/* response JSON per slot, NULL none */
	int64_t		 need_ts;
	uint64_t	 need_qs;
};

/*
 * A mutation sent up to writerd and waiting for its outcome.  Its session
 * is found again by id when the outcome comes: one that has gone is not
 * found, and no pointer to it is left behind.
 */
struct upreq {
	TAILQ_ENTRY(upreq)	 entry;
	struct hentry		 hent;		/* in up.by_seq */
	uint32_t		 seq;
	uint64_t		 sid;		/* its session: session_find */
	char			*id;		/* JSON-RPC id, JSON text */
	struct rpc_batch	*batch;
	int			 batch_slot;
};
TAILQ_HEAD(upreqq, upreq);

struct session {
	TAILQ_ENTRY(session)	 entry;
	TAILQ_ENTRY(session)	 flush_entry;	/* on the flush list */
	TAILQ_ENTRY(session)	 held_entry;	/* on the list of waiting ones */
	struct gateway		*gw;
	struct ws_conn		*ws;
	uint64_t		 id;		/* local number */
	struct hentry		 hent;		/* in gw->session_tab, by id */
	int			 connected;	/* tinyvex/connect done */
	int			 token_ok;	/* token given on the upgrade */
	int			 features;	/* GW_FEAT_* granted */
	int			 features_asked; /* connect listed features */
	char			*session_id;
	uint64_t		 qs_version;	/* query set as applied */
	uint64_t		 sent_qs;	/* endVersion last sent */
	int64_t			 sent_ts;
	struct sub		*subs;
	size_t			 nsubs, capsubs;
	uint32_t		*removed;	/* ids removed since last sent */
	size_t			 nremoved, capremoved;
	int			 dirty;		/* a subscribed result changed */
	int			 on_flush;	/* queued on the flush list */
	int			 inflight;	/* a transition is draining */
	int			 closing;
	struct heldq		 held;		/* answers after transitions */
	size_t			 nheld;
	int			 pending_mutations;
	int64_t			 wait_ts;	/* connect: maxObservedTs */
	char			*wait_id;	/* connect request id */
	int64_t			 wait_deadline;
	int64_t			 last_text_us;	/* mono_us of last text out */
	int64_t			 over_soft_since; /* 0: under the soft limit */
	uint64_t		 transitions;
	uint64_t		 transition_seq;	/* for transitionId */
	int			 browser;	/* the upgrade had an Origin */
	struct sprov		*prov;		/* action.c: what it serves */
	int			 pending_actions; /* its calls in flight */
};
TAILQ_HEAD(sessionq, session);
TAILQ_HEAD(execq, exec);

/* The writer link. */
struct upstream {
	struct bufferevent	*bev;
	struct send_batch	 out;		/* to bev, a loop turn's */
	int			 ready;		/* WELCOME received */
	uint32_t		 next_seq;
	struct upreqq		 waiting;	/* sent, no outcome yet */
	struct htab		 by_seq;	/* the same, by seq */
	struct event		*retry_ev;
	int64_t			 backoff_us;
	uint64_t		 connects;
};

struct gw_stats {
	uint64_t	 connections_total;
	uint64_t	 reruns;
	uint64_t	 transitions;
	uint64_t	 bytes_out;
	uint64_t	 bytes_in;
	uint64_t	 messages_in;
	uint64_t	 slow_closes;
	uint64_t	 mutations;
	uint64_t	 notices;
	uint64_t	 log_catchups;
};

struct static_xfer;
TAILQ_HEAD(static_xferq, static_xfer);

struct gateway {
	struct config		 conf;
	char			*statedir;
	char			*dbpath;
	char			*writer_sock;
	char			 gateway_id[64];
	char			*listen_host;
	char			*listen_port;
	struct event_base	*base;
	struct listen_sock	*listener;
	struct ws_pool		 ws_pool;	/* wslay contexts at rest */
	struct http_policy	 policy;
	struct store		*st;		/* NULL until the db exists */
	struct event		*db_wait_ev;
	struct upstream		 up;
	struct sessionq		 sessions;
	size_t			 nsessions;
	struct htab		 session_tab;	/* sessions by id */
	uint64_t		 next_session;
	struct sessionq		 flushq;	/* sessions to flush */
	struct sessionq		 heldq;		/* sessions holding answers */
	/* Shared executions and the invalidation index. */
	struct execq		 execs;
	size_t			 nexecs;
	struct htab		 exec_tab;	/* executions by key */
	struct execq		 dirtyq;	/* to rerun */
	struct htab		 ivtab;		/* key → executions (query.c) */
	int64_t			 ts;		/* executions valid at this ts */
	int64_t			 processed_ts;	/* invalidations applied to */
	int64_t			 writer_ts;	/* newest ts writerd announced */
	int64_t			 catalog_version;
	int			 catalog_changed;
	struct event		*refresh_ev;
	struct event		*timer_ev;
	struct event		*sig_ev[4];
	int			 stopping;
	int			 in_refresh;
	int64_t			 last_stats_us;
	struct gw_stats		 stats;
	struct buf		 scratch;	/* gateway_scratch_take */
	int			 sandbox_pending; /* no state directory yet */
	struct actions		*act;		/* action.c */
	int			 static_fd;	/* static_dir (O_PATH), or -1 */
	struct static_xferq	 static_xfers;	/* files being sent */
	size_t			 nstatic;
};

/* gatewayd.c */
void	 gateway_stop(struct gateway *);

/* gwinit.c */
void	 gateway_init(struct gateway *);
int	 gateway_setup(struct gateway *, const char *dir);
void	 gateway_free(struct gateway *);
void	 gateway_scratch_take(struct gateway *, struct buf *);
void	 gateway_scratch_give(struct gateway *, struct buf *);

/*
 * sandbox.c: restrict the process to the state directory (Landlock).
 * 0 done (or not available: logged), 1 the state directory is not there
 * yet (sandbox_pending set: call again later).
 */
int	 sandbox_restrict(struct gateway *);

/* diff.c */
void	 diff_hash(const char *value, size_t len,
	    char out[DIFF_HASH_LEN + 1]);
int	 diff_results(const char *old, size_t oldlen, const char *new,
	    size_t newlen, struct buf *out);
void	 diff_exec_changed(struct exec *, const char *old, size_t oldlen);
void	 diff_add_result(struct buf *, const struct session *,
	    const struct sub *);

/* listener.c */
int	 listener_start(struct gateway *);
void	 listener_stop(struct gateway *);

/*
 * static.c: the files of static_dir.  static_open opens the directory
 * (0, or -1 logged); static_serve answers a request http_decide handed
 * over and owns bev from then on; static_close ends every transfer.
 */
int	 static_open(struct gateway *);
void	 static_serve(struct gateway *, struct bufferevent *,
	    const struct http_request *);
void	 static_close(struct gateway *);

/* session.c */
struct session *session_new(struct gateway *, struct bufferevent *,
	    int token_ok);
void	 session_close(struct session *, uint16_t code, const char *why);
void	 session_free(struct session *);
struct session *session_find(struct gateway *, uint64_t id);
void	 session_send(struct session *, const char *text, size_t len);
void	 session_hold(struct session *, int64_t need_ts, uint64_t need_qs,
	    char *text, size_t len);
void	 session_mark(struct session *);
void	 session_flush(struct session *);
void	 session_flush_all(struct gateway *);
void	 session_check_limits(struct session *);
int	 session_sub_add(struct session *, uint32_t qid, struct exec *);
struct sub *session_sub_find(struct session *, uint32_t qid);
void	 session_sub_remove(struct session *, uint32_t qid);
void	 session_tick(struct session *, int64_t now);

/* rpc.c */
void	 rpc_message(struct session *, const char *text, size_t len);
void	 rpc_error_text(struct buf *, const char *id, int code,
	    const char *message, const char *outcome);
void	 rpc_error_data_text(struct buf *, const char *id, int code,
	    const char *message, const char *name, const char *value);
void	 rpc_result_text(struct buf *, const char *id, const char *result,
	    size_t len);
void	 rpc_mutation_done(struct gateway *, struct upreq *, int64_t ts,
	    int code, const char *message, const char *value,
	    size_t valuelen);
void	 rpc_answer(struct session *, struct rpc_batch *, int slot,
	    int64_t need_ts, uint64_t need_qs, char *text, size_t len);
void	 rpc_connect_ready(struct session *);

/* action.c: providers and action calls */
void	 action_free(struct gateway *);
void	 action_provide(struct session *, const char *id, const cJSON *,
	    struct rpc_batch *, int slot);
void	 action_unprovide(struct session *, const char *id, const cJSON *,
	    struct rpc_batch *, int slot);
void	 action_call(struct session *, const char *id, const cJSON *,
	    struct rpc_batch *, int slot);
int	 action_response(struct session *, const cJSON *);
void	 action_frame(struct gateway *, const struct ipc_hdr *,
	    const unsigned char *, size_t);
void	 action_session_gone(struct session *);
void	 action_link_lost(struct gateway *);
void	 action_link_up(struct gateway *);
void	 action_stats(struct gateway *, struct buf *);

/* query.c */
struct exec *query_exec_get(struct gateway *, const char *udf_path,
	    const cJSON *args);
void	 query_exec_watch(struct exec *, struct session *);
void	 query_exec_unwatch(struct exec *, struct session *);
void	 query_exec_release(struct gateway *, struct exec *);
void	 query_invalidate_key(struct gateway *, int64_t index_id,
	    const void *key, size_t keylen);
void	 query_schedule_refresh(struct gateway *);
int	 query_refresh(struct gateway *);
int	 query_open_store(struct gateway *);
void	 query_shutdown(struct gateway *);
int	 query_oneshot(struct gateway *, const char *udf_path,
	    const cJSON *args, int64_t read_ts, struct buf *out,
	    int64_t *ts, struct tv_error *);
void	 query_exec_rekey(struct gateway *, struct exec *,
	    const cJSON *args);

/* pages.c */
void	 pages_pin(struct gateway *, struct exec *);

/* upstream.c */
void	 upstream_start(struct gateway *);
void	 upstream_stop(struct gateway *);
int	 upstream_mutate(struct gateway *, struct session *, const char *id,
	    struct rpc_batch *, int slot, const char *udf_path,
	    const char *args, size_t argslen, const cJSON *request_id);
void	 upstream_send_stats(struct gateway *);
void	 upstream_notice(struct gateway *, const unsigned char *body,
	    size_t len);

#endif
