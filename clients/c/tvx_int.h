/*
 * libtinyvex internals: the pieces of the client and how they meet.
 *
 *   json.c    bounded JSON parsing and exact printing over cJSON
 *   reader.c  server messages to typed events: JSON-RPC shape, chunk
 *             reassembly, transition versions (no sockets, no state
 *             beyond the chunk being reassembled)
 *   diff.c    QueryDiff application
 *   ws.c      the WebSocket client: upgrade request and answer, wslay in
 *             client mode over two evbuffers (no sockets either)
 *   client.c  the context: connection and backoff, query set, requests,
 *             providers, callbacks
 *   pages.c   paginated subscriptions: one db/paginate query per page
 *
 * Every size a server controls is bounded by a limit named here or in
 * <tinyvex.h>.
 */
#ifndef TVX_INT_H
#define TVX_INT_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tinyvex.h"

struct evbuffer;

#define TVX_JSON_DEPTH		128	/* deepest JSON accepted */
#define TVX_MAX_HEAD		(16 * 1024)	/* upgrade answer head */
#define TVX_MAX_CALLS		1024	/* provider calls held at once */
#define TVX_MAX_CHUNK_PARTS	65536	/* totalParts of one transition */
#define TVX_MAX_ID_BYTES	256	/* a JSON-RPC id echoed to the server */
#define TVX_CONNECT_TIMEOUT_US	(10 * 1000000LL)  /* socket to connect answer */
#define TVX_IDLE_US		(45 * 1000000LL)  /* silence that means dead */
#define TVX_BACKOFF_MIN_US	(100 * 1000LL)	/* first retry delay cap */
#define TVX_BACKOFF_MAX_US	(10 * 1000000LL)  /* largest retry delay cap */
#define TVX_MUTATION_DEADLINE_US (60 * 1000000LL)
#define TVX_DEFAULT_CONCURRENCY	16	/* provider calls at once */
#define TVX_OUT_HIGH		(4u * 1024 * 1024) /* socket output bound */

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

/* A growable buffer; a failed allocation sets failed and drops bytes. */
struct tvx_buf {
	char	*data;		/* NUL-terminated when cap > 0; owned */
	size_t	 len;
	size_t	 cap;
	int	 failed;	/* an allocation failed */
};

/* json.c */
void	 tvx_buf_add(struct tvx_buf *, const void *, size_t);
void	 tvx_buf_adds(struct tvx_buf *, const char *);
void	 tvx_buf_addc(struct tvx_buf *, char);
void	 tvx_buf_i64(struct tvx_buf *, int64_t);
void	 tvx_buf_free(struct tvx_buf *);
char	*tvx_buf_steal(struct tvx_buf *);
cJSON	*tvx_json_parse(const char *, size_t, int max_depth, const char **why);
void	 tvx_json_print(struct tvx_buf *, const cJSON *);
void	 tvx_json_print_canonical(struct tvx_buf *, const cJSON *);
void	 tvx_json_string(struct tvx_buf *, const char *, size_t);
void	 tvx_json_number(struct tvx_buf *, double);
char	*tvx_json_text(const cJSON *);
cJSON	*tvx_json_get(const cJSON *, const char *);
int	 tvx_json_int(const cJSON *, int64_t min, int64_t max, int64_t *);

/* reader.c */
struct tvx_version {
	int64_t		 query_set;
	int64_t		 identity;
	int64_t		 ts;
};

enum tvx_msg_type {
	TVX_MSG_RESPONSE,	/* an answer to one of our requests */
	TVX_MSG_TRANSITION,	/* whole, or reassembled from chunks */
	TVX_MSG_PING,		/* tinyvex/ping notification */
	TVX_MSG_RUN_ACTION,	/* tinyvex/runAction request */
	TVX_MSG_CANCEL_ACTION,	/* tinyvex/cancelAction notification */
};

/* One decoded server message.  Pointers point into root. */
struct tvx_msg {
	enum tvx_msg_type	 type;
	cJSON			*root;	/* owned */
	int64_t			 id;	/* RESPONSE: our request id */
	cJSON			*result;	/* RESPONSE: result, or NULL */
	cJSON			*error;	/* RESPONSE: error object, or NULL */
	struct tvx_version	 start;	/* TRANSITION */
	struct tvx_version	 end;
	cJSON			*mods;	/* TRANSITION: modifications array */
	int			 chunked;	/* TRANSITION: from chunks */
	cJSON			*call_id;	/* RUN/CANCEL: the call's id */
	const char		*udf;	/* RUN_ACTION */
	cJSON			*args;	/* RUN_ACTION */
	const char		*session;	/* RUN_ACTION, or NULL */
};

/* Reassembly of one chunked transition at a time. */
struct tvx_reader {
	size_t		 max_message;
	size_t		 max_transition;
	char		*chunk_id;	/* transitionId being reassembled */
	int64_t		 next_part;
	int64_t		 total_parts;
	struct tvx_buf	 chunks;	/* the parts so far */
};

void	 tvx_reader_init(struct tvx_reader *, size_t, size_t);
void	 tvx_reader_reset(struct tvx_reader *);
/*
 * Decode one text message.  1: *msg holds an event (free it with
 * tvx_msg_free); 0: nothing to do yet (a chunk kept, or a notification
 * without meaning here); -1: the server broke the protocol, *why says
 * how (the connection must be dropped).
 */
int	 tvx_reader_feed(struct tvx_reader *, const char *, size_t,
	    struct tvx_msg *, const char **why);
void	 tvx_msg_free(struct tvx_msg *);
int	 tvx_version_parse(const cJSON *, struct tvx_version *);

/* diff.c */
/*
 * Apply a QueryDiff modification to *value (replaced in place).  0, or
 * -1 with *why when the ops do not fit the value held.
 */
int	 tvx_diff_apply(cJSON **value, const cJSON *mod, const char **why);

/* ws.c */
struct tvx_ws;
typedef void	tvx_ws_text_cb(void *arg, const char *, size_t);

/* Sec-WebSocket-Key (24 characters and a NUL) and the request head. */
void	 tvx_ws_key(char key[25]);
int	 tvx_ws_request(struct evbuffer *out, const char *host,
	    const char *path, const char *key, const char *token);
/*
 * Read the upgrade answer from in.  1: accepted (the head is drained);
 * 0: more bytes needed; -1: refused or malformed, *why says how.
 */
int	 tvx_ws_response(struct evbuffer *in, const char *key,
	    const char **why, int *status);
struct tvx_ws *tvx_ws_new(struct evbuffer *in, struct evbuffer *out,
	    size_t max_message, tvx_ws_text_cb *, void *arg);
void	 tvx_ws_free(struct tvx_ws *);
/*
 * Receive what in holds and send what is queued.  0, or -1 when the
 * connection is over (a protocol error, or closed): *why says why.
 * on_text is called from here; it may not free the ws.
 */
int	 tvx_ws_proceed(struct tvx_ws *, const char **why);
int	 tvx_ws_send(struct tvx_ws *, const char *, size_t);
size_t	 tvx_ws_queued(struct tvx_ws *);

/* client.c, for pages.c: a query of its own, re-added with other args. */
struct tvx_sub	*tvx_subscribe_own(struct tvx_ctx *, const char *udf,
		    const char *args, tvx_update_cb *, void *arg);
int		 tvx_sub_readd_args(struct tvx_sub *, const char *args);

/* client.c, for the tests and the fuzz harness: a context fed by hand. */
typedef void	tvx_send_hook(void *arg, const char *, size_t);
struct tvx_ctx	*tvx_new_offline(const struct tvx_config *, tvx_send_hook *,
		    void *arg);
/* Feed one message as if it came from the server; -1 if it broke the
 * connection (the context then waits for tvx_offline_up again). */
int		 tvx_offline_feed(struct tvx_ctx *, const char *, size_t);
/* Pretend a connection came up (sends tinyvex/connect through the hook). */
void		 tvx_offline_up(struct tvx_ctx *);

#endif
