/*
 * libtinyvex: a client of the Tinyvex sync protocol (tinyvex.v1 over a
 * WebSocket), event-driven in the manner of hiredis's async API.
 *
 * A context (struct tvx_ctx) is one client object: one sessionId, one
 * connection at a time, reconnected with backoff whenever it is lost.  It
 * runs on a libevent base the caller owns (tvx_config.base), or on one of
 * its own driven by tvx_run.  Everything the server sends reaches the
 * caller through callbacks, always called from the event loop, never
 * from inside the call that caused them.
 *
 * JSON crosses the API as text: arguments are given as JSON text and
 * values are handed over as compact JSON text (integers printed as
 * integers).  Text handed to a callback is valid only during the call.
 *
 * Nothing here is thread-safe: use a context from the thread that runs
 * its event base.
 */
#ifndef TINYVEX_H
#define TINYVEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

struct event_base;
struct tvx_ctx;
struct tvx_sub;
struct tvx_call;

#define TVX_VERSION	"0.1.0"

/* JSON-RPC error codes of the wire contract. */
#define TVX_ERR_PARSE		-32700
#define TVX_ERR_INVALID_REQUEST	-32600
#define TVX_ERR_METHOD		-32601
#define TVX_ERR_PARAMS		-32602
#define TVX_ERR_INTERNAL	-32603
#define TVX_ERR_NOT_CONNECTED	-32001
#define TVX_ERR_VERSION		-32002
#define TVX_ERR_VALIDATION	-32003
#define TVX_ERR_NOT_FOUND	-32004
#define TVX_ERR_CONFLICT	-32005
#define TVX_ERR_TOO_LARGE	-32006
#define TVX_ERR_OVERLOADED	-32007
#define TVX_ERR_UNAVAILABLE	-32008
#define TVX_ERR_UNAUTHORIZED	-32009
#define TVX_ERR_RETENTION	-32010
#define TVX_ERR_ACTION_FAILED	-32011
/* Made by the library, not the server. */
#define TVX_ERR_CLIENT		-1	/* bad use of the API, or closed */
#define TVX_ERR_TIMEOUT		-2	/* the mutation deadline passed */

/*
 * An error as a value: the server's code, kind, message and data (JSON
 * text, or NULL), or one the library made (kind "Client", or
 * "Unavailable" with data {"outcome":"unknown"} for an action lost with
 * its connection).
 */
struct tvx_error {
	int		 code;
	const char	*kind;
	const char	*message;
	const char	*data;
};

enum tvx_state {
	TVX_CONNECTING,		/* socket, upgrade, tinyvex/connect */
	TVX_CONNECTED,		/* connect answered; requests flow */
	TVX_DISCONNECTED,	/* lost; a retry is scheduled */
	TVX_CLOSED,		/* being freed: nothing more happens */
};

/*
 * A subscription update: value (JSON text) consistent at ts, or err when
 * the query failed (the subscription stays and recovers by itself).
 */
typedef void	tvx_update_cb(struct tvx_ctx *, void *arg, const char *value,
		    int64_t ts, const struct tvx_error *err);
/* A query, mutation or action completed: value and ts, or err. */
typedef void	tvx_result_cb(struct tvx_ctx *, void *arg, const char *value,
		    int64_t ts, const struct tvx_error *err);
/*
 * The connection changed state.  For TVX_DISCONNECTED, reason says why
 * and retry_us is the delay until the next attempt.
 */
typedef void	tvx_state_cb(struct tvx_ctx *, void *arg, enum tvx_state,
		    const char *reason, int64_t retry_us);
/*
 * A provider handler: answer the call, now or later, with exactly one
 * tvx_call_return or tvx_call_fail.
 */
typedef void	tvx_handler_cb(struct tvx_ctx *, void *arg,
		    struct tvx_call *call, const char *udf, const char *args);
/* The server cancelled a call (its caller left, or it timed out). */
typedef void	tvx_cancel_cb(struct tvx_ctx *, void *arg,
		    struct tvx_call *call);

struct tvx_config {
	const char		*url;		/* ws://HOST:PORT/sync */
	const char		*token;		/* or NULL */
	const char		*provider_token;	/* or NULL */
	const char		*session_id;	/* or NULL: a random one */
	struct event_base	*base;		/* or NULL: the context's own */
	tvx_state_cb		*on_state;	/* or NULL */
	void			*state_arg;
	size_t			 max_message;	/* 0: TVX_DEFAULT_MAX_MESSAGE */
	size_t			 max_transition; /* 0: the default */
	int64_t			 mutation_deadline_us;	/* 0: 60 s */
	int			 no_features;	/* 1: ask for no additions */
};

/* Largest single message accepted from the server (a frame's payload). */
#define TVX_DEFAULT_MAX_MESSAGE		(16u * 1024 * 1024)
/* Largest transition reassembled from chunks, and largest held value. */
#define TVX_DEFAULT_MAX_TRANSITION	(64u * 1024 * 1024)

/*
 * A new context; it starts connecting at once (on its base).  NULL with
 * errno set on a bad configuration (EINVAL: the URL) or no memory.
 */
struct tvx_ctx	*tvx_new(const struct tvx_config *);
/* Close the connection and free everything; pending requests are dropped
 * without their callbacks. */
void		 tvx_free(struct tvx_ctx *);
/* Run the context's base until tvx_stop; 0, or -1 on an error. */
int		 tvx_run(struct tvx_ctx *);
void		 tvx_stop(struct tvx_ctx *);
/* Drop the connection and reconnect at once. */
void		 tvx_reconnect(struct tvx_ctx *);
struct event_base *tvx_base(struct tvx_ctx *);
enum tvx_state	 tvx_state(struct tvx_ctx *);
const char	*tvx_session_id(struct tvx_ctx *);

struct tvx_stats {
	uint64_t	 connections;	/* connections opened (upgraded) */
	uint64_t	 reconnects;	/* connections lost */
	uint64_t	 mutations;	/* mutations in flight */
	uint64_t	 actions;	/* actions in flight */
	uint64_t	 resent;	/* mutations resent after a loss */
	uint64_t	 unchanged;	/* QueryUnchanged received */
	uint64_t	 diffs;		/* QueryDiff applied */
	uint64_t	 chunked;	/* transitions joined from chunks */
	int64_t		 max_ts;	/* highest ts seen */
	int		 diff;		/* the server accepted "diff" */
	int		 resume;	/* the server accepted "resume" */
};
void		 tvx_stats(struct tvx_ctx *, struct tvx_stats *);

/*
 * Subscribe to query udf with args (JSON object text; NULL is {}).  The
 * first update (the cached value when the query is already live) comes
 * from the loop.  NULL with errno EINVAL when args is not a JSON object.
 */
struct tvx_sub	*tvx_subscribe(struct tvx_ctx *, const char *udf,
		    const char *args, tvx_update_cb *, void *arg);
void		 tvx_unsubscribe(struct tvx_sub *);

/*
 * A paginated subscription (DESIGN §13, "Pagination"): db/paginate with
 * args (table, index?, range?, order?), first initial_num_items
 * documents, more with tvx_load_more.  Each page is a query of its own,
 * pinned to the end its first result reached, so pages never overlap nor
 * leave a gap while documents come and go.  The callback gets the pages
 * concatenated (a JSON array) once every page has a value, with a status,
 * or the error of a failing page.
 */
enum tvx_page_status {
	TVX_PAGES_LOADING,	/* a page is still without a value */
	TVX_PAGES_CAN_LOAD_MORE,
	TVX_PAGES_EXHAUSTED,	/* nothing follows the last page */
};
struct tvx_pages;
typedef void	tvx_pages_cb(struct tvx_ctx *, void *arg, const char *results,
		    enum tvx_page_status, int64_t ts,
		    const struct tvx_error *err);
struct tvx_pages *tvx_paginate(struct tvx_ctx *, const char *args,
		    int initial_num_items, tvx_pages_cb *, void *arg);
/* Add a page of n more; -1 with errno EAGAIN while loading or exhausted. */
int		 tvx_load_more(struct tvx_pages *, int n);
enum tvx_page_status tvx_pages_status(struct tvx_pages *);
void		 tvx_pages_free(struct tvx_pages *);

/*
 * One-shot query (ts < 0: now; else a read at that past ts), mutation,
 * action.  0, or -1 with errno EINVAL when args is not a JSON object.
 * A mutation is resent, with its requestId, after a reconnect and while
 * the server answers Unavailable or Overloaded, until the deadline.
 */
int		 tvx_query(struct tvx_ctx *, const char *udf, const char *args,
		    int64_t ts, tvx_result_cb *, void *arg);
int		 tvx_mutation(struct tvx_ctx *, const char *udf,
		    const char *args, tvx_result_cb *, void *arg);
/* As tvx_mutation, with the caller's requestId (JSON string or integer). */
int		 tvx_mutation_id(struct tvx_ctx *, const char *udf,
		    const char *args, const char *request_id, tvx_result_cb *,
		    void *arg);
int		 tvx_action(struct tvx_ctx *, const char *udf, const char *args,
		    tvx_result_cb *, void *arg);

/*
 * Serve functions with a handler: name is an exact udfPath, or a prefix
 * that ends in a slash and a star ("agent/" followed by "*" serves every
 * function under agent/).  At most concurrency calls at once (0: 16).
 * Registered again after every reconnect.  0, or -1 with errno EINVAL.
 */
int		 tvx_provide(struct tvx_ctx *, const char *name,
		    int concurrency, tvx_handler_cb *, tvx_cancel_cb *,
		    void *arg);
/* Answer a call with a value (JSON text), or fail it with a message and
 * data (JSON text or NULL).  The call is freed. */
void		 tvx_call_return(struct tvx_call *, const char *value);
void		 tvx_call_fail(struct tvx_call *, const char *message,
		    const char *data);
const char	*tvx_call_id(struct tvx_call *);
const char	*tvx_call_session(struct tvx_call *);
void		*tvx_call_data(struct tvx_call *);
void		 tvx_call_set_data(struct tvx_call *, void *);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
