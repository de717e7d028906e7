/*
 * The client context (DESIGN §13): one sessionId, one connection at a
 * time, and the state that survives a reconnect.
 *
 * Split as Convex's client splits it: the connection (socket, upgrade,
 * tinyvex/connect, backoff, liveness), the query set (what the caller
 * subscribed to; what the server was told; the values it sent, version
 * checked), the requests (queries, mutations by requestId, actions) and
 * the provider calls.  The protocol itself is in reader.c and diff.c;
 * the WebSocket in ws.c.  Every message comes in through handle_text,
 * which the socket or a test (tvx_offline_feed) calls.
 *
 * The query set: one struct tvx_query per (udfPath, canonical args),
 * shared by its subscribers.  The server's view of each query (srv) moves
 * only with the answer to a modifyQuerySet, and one modifyQuerySet is in
 * flight at a time; changes made meanwhile go in the next one.  After a
 * reconnect every wanted query is re-added from version 0 in one
 * modifyQuerySet, with the hash of the value held as knownHash.
 *
 * Re-entrancy: callbacks run from the loop.  From a callback the caller
 * may subscribe, unsubscribe, send requests, answer calls, reconnect and
 * stop, but not tvx_free.  A subscriber removed during a delivery is
 * marked dead and swept later (kick), and the connection is dropped only
 * once the WebSocket layer has returned (broken).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "tvx_int.h"

#define MAX_QUERY_ID	0x7fffffff	/* queryId range of the contract */
#define MAX_URL		1024		/* bytes of a URL */

enum srv_state {
	SRV_OFF,	/* the server does not have it */
	SRV_ADDING,	/* an Add is in flight */
	SRV_ON,		/* in the server's query set */
	SRV_REMOVING,	/* a Remove is in flight */
};

/* An error kept with a query: strings owned. */
struct held_error {
	int		 code;
	char		*kind;
	char		*message;
	char		*data;
};

struct tvx_sub {
	TAILQ_ENTRY(tvx_sub)	 link;
	struct tvx_query	*q;
	tvx_update_cb		*cb;
	void			*arg;
	int			 pending;	/* cached value still to give */
	int			 dead;		/* unsubscribed; kick sweeps */
};

struct tvx_query {
	TAILQ_ENTRY(tvx_query)	 link;
	struct tvx_ctx		*ctx;
	int64_t			 id;		/* queryId */
	char			*udf;
	char			*args;		/* canonical JSON text */
	int			 refs;		/* live subscribers */
	int			 own;		/* never shared (a page) */
	char			*readd_args;	/* args of a re-add, or NULL */
	enum srv_state		 srv;
	int			 rejected;	/* Add refused: not re-added */
	cJSON			*value;		/* value held, or NULL */
	char			*hash;		/* its hash, or NULL */
	int64_t			 ts;		/* ts the value is at */
	struct held_error	*failed;	/* QueryFailed, or NULL */
	int			 changed;	/* to deliver */
	TAILQ_HEAD(, tvx_sub)	 subs;
};

enum req_kind {
	REQ_QUERY,
	REQ_MUTATION,
	REQ_ACTION,
};

struct tvx_req {
	TAILQ_ENTRY(tvx_req)	 link;
	struct tvx_ctx		*ctx;
	enum req_kind		 kind;
	int64_t			 rpc_id;	/* id of the send; 0: unsent */
	char			*udf;
	char			*args;		/* JSON text */
	char			*request_id;	/* JSON text (mutations) */
	int64_t			 ts;		/* query at ts, or -1 */
	int64_t			 deadline;	/* mutations: monotonic µs */
	int			 tries;		/* retries after Unavailable */
	struct event		*retry;		/* armed while waiting */
	tvx_result_cb		*cb;
	void			*arg;
};

struct tvx_provider {
	TAILQ_ENTRY(tvx_provider) link;
	struct tvx_ctx		*ctx;
	char			*name;
	int			 concurrency;
	int			 inflight;	/* its calls not answered */
	int64_t			 rpc_id;	/* provide in flight, or 0 */
	struct event		*retry;		/* provide again, or NULL */
	int			 tries;		/* answered Unavailable */
	tvx_handler_cb		*handler;
	tvx_cancel_cb		*cancel;
	void			*arg;
};

struct tvx_call {
	TAILQ_ENTRY(tvx_call)	 link;
	struct tvx_ctx		*ctx;
	struct tvx_provider	*p;
	char			*id;		/* the call id's JSON text */
	char			*id_str;	/* a string id, unquoted */
	char			*session;
	uint64_t		 gen;		/* connection it came on */
	int			 cancelled;
	void			*data;
};

struct tvx_ctx {
	char			*host;		/* HOST:PORT as in the URL */
	char			*node;		/* host name or address */
	char			*port;
	char			*path;
	char			*token;
	char			*provider_token;
	char			*session_id;
	char			 rid_prefix[17];	/* default requestIds' */
	struct event_base	*base;
	int			 own_base;
	tvx_state_cb		*on_state;
	void			*state_arg;
	size_t			 max_message;
	size_t			 max_transition;
	int64_t			 mutation_deadline;
	int			 want_features;

	enum tvx_state		 state;
	struct bufferevent	*bev;
	struct tvx_ws		*ws;
	char			 key[25];	/* Sec-WebSocket-Key */
	int			 upgraded;
	int			 in_proceed;	/* inside tvx_ws_proceed */
	int			 broken;	/* drop after the ws layer */
	char			 broken_why[128];
	struct tvx_reader	 reader;
	struct event		*retry_ev;	/* next connection attempt */
	struct event		*timeout_ev;	/* connect deadline */
	struct event		*tick_ev;	/* liveness and deadlines */
	struct event		*kick_ev;	/* deferred work */
	int			 stopping;
	int			 reconnect_now;	/* next attempt without delay */

	tvx_send_hook		*hook;		/* offline: where sends go */
	void			*hook_arg;

	int64_t			 next_id;	/* JSON-RPC ids */
	int64_t			 next_qid;
	uint64_t		 next_rid;
	int64_t			 connect_id;	/* connect in flight, or 0 */
	int64_t			 modify_id;	/* modifyQuerySet in flight */
	int64_t			 modify_next;	/* its newVersion */
	int			 readding;	/* first modify not answered */
	int			 attempts;	/* since the last good resume */
	uint64_t		 gen;		/* connection generation */
	char			*last_close;
	int64_t			 last_frame;	/* monotonic µs */
	int			 resume_ok;
	int			 diff_ok;
	struct tvx_version	 version;	/* last endVersion */
	int64_t			 qs_version;	/* server's query-set version */
	int			 ncalls;
	struct tvx_stats	 stats;

	TAILQ_HEAD(, tvx_query)	 queries;
	TAILQ_HEAD(, tvx_req)	 reqs;
	TAILQ_HEAD(, tvx_provider) providers;
	TAILQ_HEAD(, tvx_call)	 calls;
};

static void	 conn_start(struct tvx_ctx *);
static void	 conn_lost(struct tvx_ctx *, const char *);
static void	 kick(struct tvx_ctx *);
static void	 send_text(struct tvx_ctx *, struct tvx_buf *);
static int	 set_failed(struct tvx_query *, const cJSON *);
static void	 set_state(struct tvx_ctx *, enum tvx_state, const char *,
		    int64_t);

static int64_t
mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
tv_us(struct timeval *tv, int64_t us)
{
	tv->tv_sec = us / 1000000;
	tv->tv_usec = us % 1000000;
}

/* Full jitter: uniform in [0, min(max, min_us << tries)]. */
static int64_t
backoff(int tries)
{
	int64_t	 cap = TVX_BACKOFF_MIN_US;

	while (tries-- > 0 && cap < TVX_BACKOFF_MAX_US)
		cap *= 2;
	if (cap > TVX_BACKOFF_MAX_US)
		cap = TVX_BACKOFF_MAX_US;
	return (int64_t)arc4random_uniform((uint32_t)cap + 1);
}

static void
broken(struct tvx_ctx *ctx, const char *why)
{
	size_t	 n = strlen(why);

	if (!ctx->broken) {
		ctx->broken = 1;
		if (n >= sizeof(ctx->broken_why))
			n = sizeof(ctx->broken_why) - 1;
		memcpy(ctx->broken_why, why, n);
		ctx->broken_why[n] = '\0';
	}
}

/*
 * Parse args text (NULL: {}) as an object; its text, canonical (members
 * sorted, for subscriptions) or as given (compact), or NULL.
 */
static char *
object_text(const char *args, int canonical)
{
	struct tvx_buf	 b = { 0 };
	const char	*why;
	cJSON		*v;

	if (args == NULL)
		args = "{}";
	v = tvx_json_parse(args, strlen(args), TVX_JSON_DEPTH, &why);
	if (v == NULL || !cJSON_IsObject(v)) {
		cJSON_Delete(v);
		errno = EINVAL;
		return NULL;
	}
	if (canonical)
		tvx_json_print_canonical(&b, v);
	else
		tvx_json_print(&b, v);
	cJSON_Delete(v);
	return tvx_buf_steal(&b);
}

static void
held_error_free(struct held_error *e)
{
	if (e == NULL)
		return;
	free(e->kind);
	free(e->message);
	free(e->data);
	free(e);
}

/*
 * Fill err from a JSON-RPC error object (kind from data.kind) or a
 * QueryFailed error (kind at the top); *data_text is the data's text,
 * to be freed by the caller.
 */
static void
error_from(const cJSON *obj, struct tvx_error *err, char **data_text)
{
	const cJSON	*data, *kind, *msg;
	int64_t		 code = TVX_ERR_INTERNAL;

	tvx_json_int(tvx_json_get(obj, "code"), INT_MIN, INT_MAX, &code);
	err->code = (int)code;
	data = tvx_json_get(obj, "data");
	kind = tvx_json_get(obj, "kind");
	if (!cJSON_IsString(kind))
		kind = tvx_json_get(data, "kind");
	err->kind = cJSON_IsString(kind) ? kind->valuestring : "Unknown";
	msg = tvx_json_get(obj, "message");
	err->message = cJSON_IsString(msg) ? msg->valuestring : "";
	*data_text = data != NULL ? tvx_json_text(data) : NULL;
	err->data = *data_text;
}

static void
client_error(struct tvx_error *err, int code, const char *kind,
    const char *message, const char *data)
{
	err->code = code;
	err->kind = kind;
	err->message = message;
	err->data = data;
}

/* Send a JSON-RPC request: method, params text; returns its id. */
static int64_t
send_request(struct tvx_ctx *ctx, const char *method, struct tvx_buf *params)
{
	struct tvx_buf	 b = { 0 };
	int64_t		 id = ++ctx->next_id;

	tvx_buf_adds(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
	tvx_buf_i64(&b, id);
	tvx_buf_adds(&b, ",\"method\":");
	tvx_json_string(&b, method, strlen(method));
	tvx_buf_adds(&b, ",\"params\":");
	tvx_buf_add(&b, params->data ? params->data : "{}",
	    params->data ? params->len : 2);
	tvx_buf_addc(&b, '}');
	if (params->failed)
		b.failed = 1;
	send_text(ctx, &b);
	tvx_buf_free(&b);
	return id;
}

static void
pump(struct tvx_ctx *ctx)
{
	const char	*why;

	if (ctx->ws == NULL || ctx->in_proceed)
		return;
	ctx->in_proceed = 1;
	if (tvx_ws_proceed(ctx->ws, &why) == -1)
		broken(ctx, why);
	ctx->in_proceed = 0;
	if (ctx->broken)
		conn_lost(ctx, ctx->broken_why);
}

static void
send_text(struct tvx_ctx *ctx, struct tvx_buf *b)
{
	if (b->failed) {
		broken(ctx, "out of memory");
		return;
	}
	if (ctx->hook != NULL) {
		ctx->hook(ctx->hook_arg, b->data, b->len);
		return;
	}
	if (ctx->ws == NULL || tvx_ws_send(ctx->ws, b->data, b->len) == -1)
		broken(ctx, "send failed");
}

/* ---- subscriptions ---- */

static void
deliver_to(struct tvx_query *q, struct tvx_sub *s, struct tvx_ctx *ctx,
    const char *text)
{
	struct tvx_error	 err;

	if (q->failed != NULL) {
		client_error(&err, q->failed->code, q->failed->kind,
		    q->failed->message, q->failed->data);
		s->cb(ctx, s->arg, NULL, q->ts, &err);
	} else
		s->cb(ctx, s->arg, text, q->ts, NULL);
}

/* The text of q's value, or NULL with q failed when it is too large. */
static char *
value_text(struct tvx_ctx *ctx, struct tvx_query *q)
{
	char	*text;

	if (q->failed != NULL || q->value == NULL)
		return NULL;
	text = tvx_json_text(q->value);
	if (text == NULL || strlen(text) > ctx->max_transition) {
		free(text);
		cJSON_Delete(q->value);
		q->value = NULL;
		free(q->hash);
		q->hash = NULL;
		if ((q->failed = calloc(1, sizeof(*q->failed))) != NULL) {
			q->failed->code = TVX_ERR_CLIENT;
			q->failed->kind = strdup("TooLarge");
			q->failed->message =
			    strdup("value over max_transition");
			if (q->failed->kind == NULL ||
			    q->failed->message == NULL) {
				held_error_free(q->failed);
				q->failed = NULL;
			}
		}
		return NULL;
	}
	return text;
}

static void
deliver(struct tvx_ctx *ctx, struct tvx_query *q)
{
	struct tvx_sub	*s;
	char		*text;

	q->changed = 0;
	text = value_text(ctx, q);
	if (text == NULL && q->failed == NULL)
		return;
	TAILQ_FOREACH(s, &q->subs, link) {
		if (s->dead || s->pending)
			continue;
		deliver_to(q, s, ctx, text);
	}
	free(text);
}

static struct tvx_query *
query_by_id(struct tvx_ctx *ctx, int64_t id)
{
	struct tvx_query	*q;

	TAILQ_FOREACH(q, &ctx->queries, link)
		if (q->id == id && q->srv != SRV_OFF)
			return q;
	return NULL;
}

static void
query_free(struct tvx_query *q)
{
	struct tvx_sub	*s;

	while ((s = TAILQ_FIRST(&q->subs)) != NULL) {
		TAILQ_REMOVE(&q->subs, s, link);
		free(s);
	}
	free(q->udf);
	free(q->args);
	free(q->readd_args);
	free(q->hash);
	cJSON_Delete(q->value);
	held_error_free(q->failed);
	free(q);
}

/* Send the query-set changes, when connected and none are in flight. */
static void
qs_sync(struct tvx_ctx *ctx)
{
	struct tvx_query	*q;
	struct tvx_buf		 p = { 0 };
	int			 n = 0;

	if (ctx->state != TVX_CONNECTED || ctx->modify_id != 0)
		return;
	tvx_buf_adds(&p, "{\"baseVersion\":");
	tvx_buf_i64(&p, ctx->qs_version);
	tvx_buf_adds(&p, ",\"newVersion\":");
	tvx_buf_i64(&p, ctx->qs_version + 1);
	tvx_buf_adds(&p, ",\"modifications\":[");
	TAILQ_FOREACH(q, &ctx->queries, link) {
		if (q->refs > 0 && q->srv == SRV_OFF && !q->rejected) {
			tvx_buf_adds(&p, n++ ? ",{" : "{");
			tvx_buf_adds(&p, "\"type\":\"Add\",\"queryId\":");
			tvx_buf_i64(&p, q->id);
			tvx_buf_adds(&p, ",\"udfPath\":");
			tvx_json_string(&p, q->udf, strlen(q->udf));
			tvx_buf_adds(&p, ",\"args\":");
			tvx_buf_adds(&p, q->readd_args != NULL &&
			    q->value != NULL ? q->readd_args : q->args);
			if (q->value != NULL && q->hash != NULL) {
				tvx_buf_adds(&p, ",\"knownHash\":");
				tvx_json_string(&p, q->hash, strlen(q->hash));
			}
			tvx_buf_addc(&p, '}');
			q->srv = SRV_ADDING;
		} else if (q->refs == 0 && q->srv == SRV_ON) {
			tvx_buf_adds(&p, n++ ? ",{" : "{");
			tvx_buf_adds(&p, "\"type\":\"Remove\",\"queryId\":");
			tvx_buf_i64(&p, q->id);
			tvx_buf_addc(&p, '}');
			q->srv = SRV_REMOVING;
		}
	}
	tvx_buf_adds(&p, "]}");
	if (n > 0) {
		ctx->modify_next = ctx->qs_version + 1;
		ctx->modify_id = send_request(ctx, "tinyvex/modifyQuerySet",
		    &p);
	} else if (ctx->readding) {
		ctx->readding = 0;
		ctx->attempts = 0;
	}
	tvx_buf_free(&p);
}

static void
modify_answer(struct tvx_ctx *ctx, struct tvx_msg *m)
{
	struct tvx_query	*q;
	struct tvx_sub		*s;
	struct tvx_error	 err;
	char			*data = NULL;

	ctx->modify_id = 0;
	if (m->error != NULL) {
		error_from(m->error, &err, &data);
		if (err.code == TVX_ERR_VERSION || err.code == TVX_ERR_PARAMS) {
			free(data);
			broken(ctx, "modifyQuerySet refused: query set out "
			    "of step");
			return;
		}
		/* Refused as a whole: the Adds fail, the Removes stay.  The
		 * error is kept, for subscribers that come later. */
		TAILQ_FOREACH(q, &ctx->queries, link) {
			if (q->srv == SRV_REMOVING)
				q->srv = SRV_ON;
			if (q->srv != SRV_ADDING)
				continue;
			q->srv = SRV_OFF;
			q->rejected = 1;
			if (set_failed(q, m->error) == 0) {
				deliver(ctx, q);
				continue;
			}
			TAILQ_FOREACH(s, &q->subs, link)
				if (!s->dead)
					s->cb(ctx, s->arg, NULL, 0, &err);
		}
		free(data);
	} else {
		ctx->qs_version = ctx->modify_next;
		TAILQ_FOREACH(q, &ctx->queries, link) {
			if (q->srv == SRV_ADDING)
				q->srv = SRV_ON;
			else if (q->srv == SRV_REMOVING)
				q->srv = SRV_OFF;
		}
	}
	if (ctx->readding) {
		ctx->readding = 0;
		ctx->attempts = 0;
	}
	kick(ctx);
}

static struct tvx_sub *
subscribe(struct tvx_ctx *ctx, const char *udf, const char *args,
    tvx_update_cb *cb, void *arg, int own)
{
	struct tvx_query	*q;
	struct tvx_sub		*s;
	char			*canon;

	if (udf == NULL || cb == NULL || ctx->state == TVX_CLOSED) {
		errno = EINVAL;
		return NULL;
	}
	if ((canon = object_text(args, 1)) == NULL)
		return NULL;
	TAILQ_FOREACH(q, &ctx->queries, link)
		if (!own && !q->own && strcmp(q->udf, udf) == 0 &&
		    strcmp(q->args, canon) == 0)
			break;
	if (q == NULL) {
		if ((q = calloc(1, sizeof(*q))) == NULL ||
		    (q->udf = strdup(udf)) == NULL) {
			free(q);
			free(canon);
			return NULL;
		}
		q->ctx = ctx;
		q->own = own;
		q->args = canon;
		canon = NULL;
		if (ctx->next_qid >= MAX_QUERY_ID)
			ctx->next_qid = 0;
		q->id = ctx->next_qid++;
		TAILQ_INIT(&q->subs);
		TAILQ_INSERT_TAIL(&ctx->queries, q, link);
	}
	free(canon);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->q = q;
	s->cb = cb;
	s->arg = arg;
	s->pending = 1;
	TAILQ_INSERT_TAIL(&q->subs, s, link);
	q->refs++;
	kick(ctx);
	return s;
}

void
tvx_unsubscribe(struct tvx_sub *s)
{
	if (s == NULL || s->dead)
		return;
	s->dead = 1;
	s->q->refs--;
	kick(s->q->ctx);
}

struct tvx_sub *
tvx_subscribe(struct tvx_ctx *ctx, const char *udf, const char *args,
    tvx_update_cb *cb, void *arg)
{
	return subscribe(ctx, udf, args, cb, arg, 0);
}

struct tvx_sub *
tvx_subscribe_own(struct tvx_ctx *ctx, const char *udf, const char *args,
    tvx_update_cb *cb, void *arg)
{
	return subscribe(ctx, udf, args, cb, arg, 1);
}

int
tvx_sub_readd_args(struct tvx_sub *s, const char *args)
{
	char	*canon;

	if ((canon = object_text(args, 1)) == NULL)
		return -1;
	free(s->q->readd_args);
	s->q->readd_args = canon;
	return 0;
}

/* ---- requests ---- */

static void
req_free(struct tvx_ctx *ctx, struct tvx_req *r)
{
	TAILQ_REMOVE(&ctx->reqs, r, link);
	if (r->retry != NULL)
		event_free(r->retry);
	free(r->udf);
	free(r->args);
	free(r->request_id);
	free(r);
}

static void
req_send(struct tvx_ctx *ctx, struct tvx_req *r)
{
	struct tvx_buf	 p = { 0 };
	const char	*method;

	tvx_buf_adds(&p, "{\"udfPath\":");
	tvx_json_string(&p, r->udf, strlen(r->udf));
	tvx_buf_adds(&p, ",\"args\":");
	tvx_buf_adds(&p, r->args);
	switch (r->kind) {
	case REQ_QUERY:
		method = "tinyvex/query";
		if (r->ts >= 0) {
			tvx_buf_adds(&p, ",\"ts\":");
			tvx_buf_i64(&p, r->ts);
		}
		break;
	case REQ_MUTATION:
		method = "tinyvex/mutation";
		tvx_buf_adds(&p, ",\"requestId\":");
		tvx_buf_adds(&p, r->request_id);
		break;
	default:
		method = "tinyvex/action";
		break;
	}
	tvx_buf_addc(&p, '}');
	r->rpc_id = send_request(ctx, method, &p);
	tvx_buf_free(&p);
}

static void
flush_reqs(struct tvx_ctx *ctx)
{
	struct tvx_req	*r;

	if (ctx->state != TVX_CONNECTED)
		return;
	TAILQ_FOREACH(r, &ctx->reqs, link)
		if (r->rpc_id == 0 && r->retry == NULL)
			req_send(ctx, r);
}

static void
req_finish(struct tvx_ctx *ctx, struct tvx_req *r, const char *value,
    int64_t ts, const struct tvx_error *err)
{
	tvx_result_cb	*cb = r->cb;
	void		*arg = r->arg;

	req_free(ctx, r);
	cb(ctx, arg, value, ts, err);
}

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct tvx_req	*r = arg;
	struct tvx_ctx	*ctx = r->ctx;

	(void)fd;
	(void)ev;
	event_free(r->retry);
	r->retry = NULL;
	if (ctx->state == TVX_CONNECTED && r->rpc_id == 0)
		req_send(ctx, r);
	pump(ctx);
}

static void
req_answer(struct tvx_ctx *ctx, struct tvx_req *r, struct tvx_msg *m)
{
	struct tvx_error	 err;
	struct timeval		 tv;
	char			*data = NULL, *text;
	int64_t			 ts = 0;
	cJSON			*value;

	r->rpc_id = 0;
	if (m->error != NULL) {
		error_from(m->error, &err, &data);
		if (r->kind == REQ_MUTATION &&
		    (err.code == TVX_ERR_UNAVAILABLE ||
		    err.code == TVX_ERR_OVERLOADED) &&
		    mono_us() < r->deadline &&
		    (r->retry = evtimer_new(ctx->base, retry_cb, r)) != NULL) {
			tv_us(&tv, backoff(++r->tries));
			evtimer_add(r->retry, &tv);
			free(data);
			return;
		}
		req_finish(ctx, r, NULL, 0, &err);
		free(data);
		return;
	}
	value = tvx_json_get(m->result, "value");
	if (value == NULL || !tvx_json_int(tvx_json_get(m->result, "ts"), 0,
	    INT64_MAX, &ts)) {
		broken(ctx, "answer without value and ts");
		return;
	}
	if (ts > ctx->stats.max_ts)
		ctx->stats.max_ts = ts;
	if ((text = tvx_json_text(value)) == NULL) {
		client_error(&err, TVX_ERR_CLIENT, "Client", "out of memory",
		    NULL);
		req_finish(ctx, r, NULL, 0, &err);
		return;
	}
	req_finish(ctx, r, text, ts, NULL);
	free(text);
}

static int
req_new(struct tvx_ctx *ctx, enum req_kind kind, const char *udf,
    const char *args, const char *request_id, int64_t ts, tvx_result_cb *cb,
    void *arg)
{
	struct tvx_req	*r;
	char		 rid[64];

	if (udf == NULL || cb == NULL || ctx->state == TVX_CLOSED) {
		errno = EINVAL;
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->ctx = ctx;
	r->kind = kind;
	r->ts = ts;
	r->cb = cb;
	r->arg = arg;
	r->deadline = mono_us() + ctx->mutation_deadline;
	if ((r->udf = strdup(udf)) == NULL ||
	    (r->args = object_text(args, 0)) == NULL)
		goto fail;
	if (kind == REQ_MUTATION) {
		if (request_id == NULL) {
			snprintf(rid, sizeof(rid), "\"%s-%llu\"",
			    ctx->rid_prefix,
			    (unsigned long long)++ctx->next_rid);
			request_id = rid;
		} else {
			/* A JSON string or integer, as the contract says. */
			const char	*why;
			cJSON		*v;
			int64_t		 i;

			v = tvx_json_parse(request_id, strlen(request_id), 1,
			    &why);
			if (v == NULL || (!cJSON_IsString(v) &&
			    !tvx_json_int(v, INT64_MIN, INT64_MAX, &i))) {
				cJSON_Delete(v);
				errno = EINVAL;
				goto fail;
			}
			cJSON_Delete(v);
		}
		if ((r->request_id = strdup(request_id)) == NULL)
			goto fail;
	}
	TAILQ_INSERT_TAIL(&ctx->reqs, r, link);
	kick(ctx);
	return 0;
fail:
	free(r->udf);
	free(r->args);
	free(r->request_id);
	free(r);
	return -1;
}

int
tvx_query(struct tvx_ctx *ctx, const char *udf, const char *args, int64_t ts,
    tvx_result_cb *cb, void *arg)
{
	return req_new(ctx, REQ_QUERY, udf, args, NULL, ts < 0 ? -1 : ts, cb,
	    arg);
}

int
tvx_mutation(struct tvx_ctx *ctx, const char *udf, const char *args,
    tvx_result_cb *cb, void *arg)
{
	return req_new(ctx, REQ_MUTATION, udf, args, NULL, -1, cb, arg);
}

int
tvx_mutation_id(struct tvx_ctx *ctx, const char *udf, const char *args,
    const char *request_id, tvx_result_cb *cb, void *arg)
{
	if (request_id == NULL) {
		errno = EINVAL;
		return -1;
	}
	return req_new(ctx, REQ_MUTATION, udf, args, request_id, -1, cb, arg);
}

int
tvx_action(struct tvx_ctx *ctx, const char *udf, const char *args,
    tvx_result_cb *cb, void *arg)
{
	return req_new(ctx, REQ_ACTION, udf, args, NULL, -1, cb, arg);
}

/* ---- providers ---- */

static void
provide_send(struct tvx_ctx *ctx, struct tvx_provider *p)
{
	struct tvx_buf	 b = { 0 };

	tvx_buf_adds(&b, "{\"functions\":[");
	tvx_json_string(&b, p->name, strlen(p->name));
	tvx_buf_adds(&b, "],\"concurrency\":");
	tvx_buf_i64(&b, p->concurrency);
	if (ctx->provider_token != NULL) {
		tvx_buf_adds(&b, ",\"token\":");
		tvx_json_string(&b, ctx->provider_token,
		    strlen(ctx->provider_token));
	}
	tvx_buf_addc(&b, '}');
	if (p->retry != NULL)
		evtimer_del(p->retry);
	p->rpc_id = send_request(ctx, "tinyvex/provide", &b);
	tvx_buf_free(&b);
}

static void
provide_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct tvx_provider	*p = arg;
	struct tvx_ctx		*ctx = p->ctx;

	(void)fd;
	(void)ev;
	if (ctx->state == TVX_CONNECTED && p->rpc_id == 0) {
		provide_send(ctx, p);
		pump(ctx);
	}
}

static void
provider_free(struct tvx_provider *p)
{
	if (p->retry != NULL)
		event_free(p->retry);
	free(p->name);
	free(p);
}

int
tvx_provide(struct tvx_ctx *ctx, const char *name, int concurrency,
    tvx_handler_cb *handler, tvx_cancel_cb *cancel, void *arg)
{
	struct tvx_provider	*p;

	if (name == NULL || *name == '\0' || handler == NULL ||
	    concurrency < 0 || ctx->state == TVX_CLOSED) {
		errno = EINVAL;
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	if ((p->name = strdup(name)) == NULL) {
		free(p);
		return -1;
	}
	p->ctx = ctx;
	p->concurrency = concurrency ? concurrency : TVX_DEFAULT_CONCURRENCY;
	p->handler = handler;
	p->cancel = cancel;
	p->arg = arg;
	TAILQ_INSERT_TAIL(&ctx->providers, p, link);
	if (ctx->state == TVX_CONNECTED) {
		provide_send(ctx, p);
		pump(ctx);
	}
	return 0;
}

static int
provider_matches(const char *name, const char *udf)
{
	size_t	 n = strlen(name);

	if (n >= 2 && strcmp(name + n - 2, "/*") == 0)
		return strncmp(name, udf, n - 1) == 0;
	return strcmp(name, udf) == 0;
}

/* Answer a call with an error, on the connection it came on. */
static void
call_error(struct tvx_ctx *ctx, const char *id, int code, const char *msg,
    const char *data)
{
	struct tvx_buf	 b = { 0 };

	tvx_buf_adds(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
	tvx_buf_adds(&b, id);
	tvx_buf_adds(&b, ",\"error\":{\"code\":");
	tvx_buf_i64(&b, code);
	tvx_buf_adds(&b, ",\"message\":");
	tvx_json_string(&b, msg, strlen(msg));
	if (data != NULL) {
		tvx_buf_adds(&b, ",\"data\":");
		tvx_buf_adds(&b, data);
	}
	tvx_buf_adds(&b, "}}");
	send_text(ctx, &b);
	tvx_buf_free(&b);
}

static void
run_action(struct tvx_ctx *ctx, struct tvx_msg *m)
{
	struct tvx_provider	*p, *best = NULL;
	struct tvx_call		*c;
	char			*id, *args;

	if ((id = tvx_json_text(m->call_id)) == NULL) {
		broken(ctx, "out of memory");
		return;
	}
	if (strlen(id) > TVX_MAX_ID_BYTES) {
		free(id);
		broken(ctx, "runAction id too long");
		return;
	}
	TAILQ_FOREACH(p, &ctx->providers, link) {
		if (!provider_matches(p->name, m->udf))
			continue;
		if (best == NULL || strcmp(p->name, m->udf) == 0)
			best = p;
	}
	if (best == NULL) {
		call_error(ctx, id, TVX_ERR_NOT_FOUND,
		    "no handler for this function here", NULL);
		free(id);
		return;
	}
	/* The server should send no more than concurrency at once. */
	if (ctx->ncalls >= TVX_MAX_CALLS ||
	    best->inflight >= best->concurrency) {
		call_error(ctx, id, TVX_ERR_OVERLOADED,
		    "too many calls in flight", NULL);
		free(id);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (args = tvx_json_text(m->args)) == NULL) {
		free(c);
		free(id);
		broken(ctx, "out of memory");
		return;
	}
	c->ctx = ctx;
	c->p = best;
	c->id = id;
	c->id_str = cJSON_IsString(m->call_id) ?
	    strdup(m->call_id->valuestring) : strdup(id);
	c->session = strdup(m->session ? m->session : "");
	c->gen = ctx->gen;
	if (c->id_str == NULL || c->session == NULL) {
		free(c->id_str);
		free(c->session);
		free(c->id);
		free(c);
		free(args);
		broken(ctx, "out of memory");
		return;
	}
	TAILQ_INSERT_TAIL(&ctx->calls, c, link);
	ctx->ncalls++;
	best->inflight++;
	best->handler(ctx, best->arg, c, m->udf, args);
	free(args);
}

static void
cancel_action(struct tvx_ctx *ctx, struct tvx_msg *m)
{
	struct tvx_call	*c;
	char		*id;

	if ((id = tvx_json_text(m->call_id)) == NULL)
		return;
	TAILQ_FOREACH(c, &ctx->calls, link) {
		if (c->gen == ctx->gen && !c->cancelled &&
		    strcmp(c->id, id) == 0) {
			c->cancelled = 1;
			if (c->p != NULL && c->p->cancel != NULL)
				c->p->cancel(ctx, c->p->arg, c);
			break;
		}
	}
	free(id);
}

static void
call_free(struct tvx_call *c)
{
	struct tvx_ctx	*ctx = c->ctx;

	TAILQ_REMOVE(&ctx->calls, c, link);
	ctx->ncalls--;
	if (c->p != NULL)
		c->p->inflight--;
	free(c->id);
	free(c->id_str);
	free(c->session);
	free(c);
}

void
tvx_call_return(struct tvx_call *c, const char *value)
{
	struct tvx_ctx	*ctx = c->ctx;
	struct tvx_buf	 b = { 0 };
	const char	*why;
	cJSON		*v;

	if (c->gen == ctx->gen && ctx->state == TVX_CONNECTED) {
		v = value ? tvx_json_parse(value, strlen(value),
		    TVX_JSON_DEPTH, &why) : NULL;
		if (v == NULL)
			call_error(ctx, c->id, TVX_ERR_ACTION_FAILED,
			    "the provider's value is not JSON", NULL);
		else {
			tvx_buf_adds(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
			tvx_buf_adds(&b, c->id);
			tvx_buf_adds(&b, ",\"result\":");
			tvx_json_print(&b, v);
			tvx_buf_addc(&b, '}');
			send_text(ctx, &b);
			tvx_buf_free(&b);
			cJSON_Delete(v);
		}
		pump(ctx);
	}
	call_free(c);
}

void
tvx_call_fail(struct tvx_call *c, const char *message, const char *data)
{
	struct tvx_ctx	*ctx = c->ctx;
	const char	*why;
	char		*text = NULL;
	cJSON		*v = NULL;

	if (c->gen == ctx->gen && ctx->state == TVX_CONNECTED) {
		if (data != NULL && (v = tvx_json_parse(data, strlen(data),
		    TVX_JSON_DEPTH, &why)) != NULL)
			text = tvx_json_text(v);
		call_error(ctx, c->id, TVX_ERR_ACTION_FAILED,
		    message ? message : "action failed", text);
		free(text);
		cJSON_Delete(v);
		pump(ctx);
	}
	call_free(c);
}

const char *
tvx_call_id(struct tvx_call *c)
{
	return c->id_str;
}

const char *
tvx_call_session(struct tvx_call *c)
{
	return c->session;
}

void *
tvx_call_data(struct tvx_call *c)
{
	return c->data;
}

void
tvx_call_set_data(struct tvx_call *c, void *data)
{
	c->data = data;
}

/* ---- messages from the server ---- */

static void
connect_answer(struct tvx_ctx *ctx, struct tvx_msg *m)
{
	struct tvx_provider	*p;
	struct tvx_error	 err;
	const cJSON		*f;
	char			*data = NULL, why[160];
	int64_t			 proto;

	ctx->connect_id = 0;
	if (m->error != NULL) {
		error_from(m->error, &err, &data);
		snprintf(why, sizeof(why), "connect refused: %s: %s",
		    err.kind, err.message);
		free(data);
		broken(ctx, why);
		return;
	}
	if (!tvx_json_int(tvx_json_get(m->result, "protocol"), 0, INT64_MAX,
	    &proto) || proto != 1) {
		broken(ctx, "the server speaks another protocol version");
		return;
	}
	ctx->resume_ok = ctx->diff_ok = 0;
	cJSON_ArrayForEach(f, tvx_json_get(m->result, "features")) {
		if (!cJSON_IsString(f))
			continue;
		if (strcmp(f->valuestring, "resume") == 0)
			ctx->resume_ok = 1;
		else if (strcmp(f->valuestring, "diff") == 0)
			ctx->diff_ok = 1;
	}
	if (ctx->timeout_ev != NULL)
		evtimer_del(ctx->timeout_ev);
	ctx->readding = 1;
	set_state(ctx, TVX_CONNECTED, NULL, 0);
	if (ctx->state != TVX_CONNECTED)
		return;
	TAILQ_FOREACH(p, &ctx->providers, link)
		provide_send(ctx, p);
	qs_sync(ctx);
	flush_reqs(ctx);
}

static void
provide_answer(struct tvx_ctx *ctx, struct tvx_provider *p,
    struct tvx_msg *m)
{
	struct tvx_error	 err;
	struct tvx_call		*c;
	struct timeval		 tv;
	char			*data = NULL, why[200];

	p->rpc_id = 0;
	if (m->error == NULL) {
		p->tries = 0;
		return;
	}
	error_from(m->error, &err, &data);
	/* The writer link down, or the gateway busy: again, later. */
	if ((err.code == TVX_ERR_UNAVAILABLE ||
	    err.code == TVX_ERR_OVERLOADED) && (p->retry != NULL ||
	    (p->retry = evtimer_new(ctx->base, provide_retry_cb, p)) != NULL)) {
		tv_us(&tv, backoff(p->tries++));
		evtimer_add(p->retry, &tv);
		free(data);
		return;
	}
	/* A refused provide is a broken promise to the caller: say so. */
	snprintf(why, sizeof(why), "provide %s refused: %s: %s", p->name,
	    err.kind, err.message);
	free(data);
	TAILQ_FOREACH(c, &ctx->calls, link)
		if (c->p == p)
			c->p = NULL;
	TAILQ_REMOVE(&ctx->providers, p, link);
	provider_free(p);
	if (ctx->on_state != NULL)
		ctx->on_state(ctx, ctx->state_arg, ctx->state, why, 0);
}

static void
response(struct tvx_ctx *ctx, struct tvx_msg *m)
{
	struct tvx_provider	*p;
	struct tvx_req		*r;

	if (m->id == ctx->connect_id) {
		connect_answer(ctx, m);
		return;
	}
	if (ctx->state != TVX_CONNECTED) {
		broken(ctx, "answer before connect");
		return;
	}
	if (m->id == ctx->modify_id) {
		modify_answer(ctx, m);
		return;
	}
	TAILQ_FOREACH(p, &ctx->providers, link)
		if (p->rpc_id == m->id) {
			provide_answer(ctx, p, m);
			return;
		}
	TAILQ_FOREACH(r, &ctx->reqs, link)
		if (r->rpc_id == m->id) {
			req_answer(ctx, r, m);
			return;
		}
	broken(ctx, "answer to an id never sent");
}

static int
set_failed(struct tvx_query *q, const cJSON *e)
{
	struct held_error	*h;
	struct tvx_error	 err;
	char			*data = NULL;

	if (!cJSON_IsObject(e))
		return -1;
	error_from(e, &err, &data);
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->kind = strdup(err.kind)) == NULL ||
	    (h->message = strdup(err.message)) == NULL) {
		held_error_free(h);
		free(data);
		return -1;
	}
	h->code = err.code;
	h->data = data;
	held_error_free(q->failed);
	q->failed = h;
	cJSON_Delete(q->value);
	q->value = NULL;
	free(q->hash);
	q->hash = NULL;
	return 0;
}

static int
set_hash(struct tvx_query *q, const cJSON *mod)
{
	const cJSON	*h = tvx_json_get(mod, "hash");

	free(q->hash);
	q->hash = NULL;
	if (h == NULL)
		return 0;
	if (!cJSON_IsString(h) || strlen(h->valuestring) > TVX_MAX_ID_BYTES)
		return -1;
	return (q->hash = strdup(h->valuestring)) == NULL ? -1 : 0;
}

/* Apply one modification; -1 with *why when it breaks the contract. */
static int
modification(struct tvx_ctx *ctx, cJSON *mod, int64_t ts, const char **why)
{
	struct tvx_query	*q;
	const cJSON		*type, *h;
	cJSON			*v;
	int64_t			 id;

	type = tvx_json_get(mod, "type");
	if (!cJSON_IsString(type) || !tvx_json_int(tvx_json_get(mod,
	    "queryId"), 0, MAX_QUERY_ID, &id)) {
		*why = "malformed modification";
		return -1;
	}
	if ((q = query_by_id(ctx, id)) == NULL)
		return 0;
	if (strcmp(type->valuestring, "QueryUpdated") == 0) {
		if ((v = cJSON_DetachItemFromObjectCaseSensitive(mod,
		    "value")) == NULL) {
			*why = "QueryUpdated without value";
			return -1;
		}
		cJSON_Delete(q->value);
		q->value = v;
		held_error_free(q->failed);
		q->failed = NULL;
		if (set_hash(q, mod) == -1) {
			*why = "bad hash";
			return -1;
		}
	} else if (strcmp(type->valuestring, "QueryFailed") == 0) {
		if (set_failed(q, tvx_json_get(mod, "error")) == -1) {
			*why = "malformed QueryFailed";
			return -1;
		}
	} else if (strcmp(type->valuestring, "QueryRemoved") == 0) {
		return 0;
	} else if (strcmp(type->valuestring, "QueryUnchanged") == 0) {
		h = tvx_json_get(mod, "hash");
		if (q->value == NULL || q->hash == NULL || !cJSON_IsString(h) ||
		    strcmp(h->valuestring, q->hash) != 0) {
			*why = "QueryUnchanged for a value not held";
			return -1;
		}
		ctx->stats.unchanged++;
		q->ts = ts;
		return 0;
	} else if (strcmp(type->valuestring, "QueryDiff") == 0) {
		if (q->failed != NULL ||
		    tvx_diff_apply(&q->value, mod, why) == -1) {
			if (q->failed != NULL)
				*why = "QueryDiff for a failed query";
			return -1;
		}
		if (set_hash(q, mod) == -1) {
			*why = "bad hash";
			return -1;
		}
		ctx->stats.diffs++;
	} else {
		*why = "unknown modification type";
		return -1;
	}
	q->ts = ts;
	q->changed = 1;
	return 0;
}

static void
transition(struct tvx_ctx *ctx, struct tvx_msg *m)
{
	struct tvx_query	*q, *tq;
	const char		*why = NULL;
	cJSON			*mod;

	if (ctx->state != TVX_CONNECTED) {
		broken(ctx, "transition before connect");
		return;
	}
	if (m->start.query_set != ctx->version.query_set ||
	    m->start.identity != ctx->version.identity ||
	    m->start.ts != ctx->version.ts) {
		broken(ctx, "transition out of sequence");
		return;
	}
	ctx->version = m->end;
	if (m->chunked)
		ctx->stats.chunked++;
	if (m->end.ts > ctx->stats.max_ts)
		ctx->stats.max_ts = m->end.ts;
	cJSON_ArrayForEach(mod, m->mods)
		if (modification(ctx, mod, m->end.ts, &why) == -1)
			break;
	/* Everything applied is consistent at end.ts: show it. */
	TAILQ_FOREACH_SAFE(q, &ctx->queries, link, tq)
		if (q->changed)
			deliver(ctx, q);
	if (why != NULL)
		broken(ctx, why);
}

static void
handle_text(void *arg, const char *text, size_t len)
{
	struct tvx_ctx	*ctx = arg;
	struct tvx_msg	 m;
	const char	*why;
	int		 rc;

	if (ctx->broken)
		return;
	ctx->last_frame = mono_us();
	rc = tvx_reader_feed(&ctx->reader, text, len, &m, &why);
	if (rc == -1) {
		broken(ctx, why);
		return;
	}
	if (rc == 0)
		return;
	switch (m.type) {
	case TVX_MSG_RESPONSE:
		response(ctx, &m);
		break;
	case TVX_MSG_TRANSITION:
		transition(ctx, &m);
		break;
	case TVX_MSG_RUN_ACTION:
		if (ctx->state == TVX_CONNECTED)
			run_action(ctx, &m);
		else
			broken(ctx, "runAction before connect");
		break;
	case TVX_MSG_CANCEL_ACTION:
		cancel_action(ctx, &m);
		break;
	case TVX_MSG_PING:
		break;
	}
	tvx_msg_free(&m);
}

/* ---- the connection ---- */

static void
set_state(struct tvx_ctx *ctx, enum tvx_state st, const char *why,
    int64_t retry)
{
	ctx->state = st;
	if (ctx->on_state != NULL)
		ctx->on_state(ctx, ctx->state_arg, st, why, retry);
}

static void
send_connect(struct tvx_ctx *ctx)
{
	struct tvx_buf	 p = { 0 };

	tvx_buf_adds(&p, "{\"sessionId\":");
	tvx_json_string(&p, ctx->session_id, strlen(ctx->session_id));
	tvx_buf_adds(&p, ",\"connectionCount\":");
	tvx_buf_i64(&p, (int64_t)ctx->stats.connections - 1);
	if (ctx->last_close != NULL) {
		tvx_buf_adds(&p, ",\"lastCloseReason\":");
		tvx_json_string(&p, ctx->last_close, strlen(ctx->last_close));
	}
	if (ctx->stats.max_ts > 0) {
		tvx_buf_adds(&p, ",\"maxObservedTs\":");
		tvx_buf_i64(&p, ctx->stats.max_ts);
	}
	if (ctx->token != NULL) {
		tvx_buf_adds(&p, ",\"token\":");
		tvx_json_string(&p, ctx->token, strlen(ctx->token));
	}
	if (ctx->want_features)
		tvx_buf_adds(&p, ",\"features\":[\"diff\",\"resume\"]");
	tvx_buf_addc(&p, '}');
	ctx->connect_id = send_request(ctx, "tinyvex/connect", &p);
	tvx_buf_free(&p);
}

static void
bev_read(struct bufferevent *bev, void *arg)
{
	struct tvx_ctx	*ctx = arg;
	const char	*why;
	int		 rc, status;
	char		 msg[96];

	(void)bev;
	/* Any byte counts as a sign of life, WebSocket pings too. */
	ctx->last_frame = mono_us();
	if (!ctx->upgraded) {
		rc = tvx_ws_response(bufferevent_get_input(ctx->bev), ctx->key,
		    &why, &status);
		if (rc == 0)
			return;
		if (rc == -1) {
			if (status != 0 && status != 101) {
				snprintf(msg, sizeof(msg), "%s (HTTP %d)", why,
				    status);
				why = msg;
			}
			conn_lost(ctx, why);
			return;
		}
		ctx->ws = tvx_ws_new(bufferevent_get_input(ctx->bev),
		    bufferevent_get_output(ctx->bev), ctx->max_message,
		    handle_text, ctx);
		if (ctx->ws == NULL) {
			conn_lost(ctx, "out of memory");
			return;
		}
		ctx->upgraded = 1;
		ctx->stats.connections++;
		send_connect(ctx);
	}
	pump(ctx);
}

static void
bev_write(struct bufferevent *bev, void *arg)
{
	struct tvx_ctx	*ctx = arg;

	(void)bev;
	if (ctx->upgraded)
		pump(ctx);
}

static void
bev_event(struct bufferevent *bev, short what, void *arg)
{
	struct tvx_ctx	*ctx = arg;

	if (what & BEV_EVENT_CONNECTED) {
		tvx_ws_key(ctx->key);
		if (tvx_ws_request(bufferevent_get_output(bev), ctx->host,
		    ctx->path, ctx->key, ctx->token) == -1)
			conn_lost(ctx, "out of memory");
		return;
	}
	if (what & BEV_EVENT_EOF)
		conn_lost(ctx, ctx->upgraded ? "connection closed" :
		    "connection closed during the upgrade");
	else if (what & BEV_EVENT_ERROR)
		conn_lost(ctx, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
}

static void
retry_conn_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	conn_start(arg);
}

static void
timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	conn_lost(arg, "connect timed out");
}

static void
conn_start(struct tvx_ctx *ctx)
{
	struct addrinfo	 hints, *res = NULL;
	struct timeval	 tv;
	int		 rc;

	if (ctx->state == TVX_CLOSED || ctx->hook != NULL)
		return;
	ctx->gen++;
	ctx->broken = 0;
	ctx->upgraded = 0;
	set_state(ctx, TVX_CONNECTING, NULL, 0);
	tv_us(&tv, TVX_CONNECT_TIMEOUT_US);
	evtimer_add(ctx->timeout_ev, &tv);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(ctx->node, ctx->port, &hints, &res)) != 0) {
		conn_lost(ctx, gai_strerror(rc));
		return;
	}
	ctx->bev = bufferevent_socket_new(ctx->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (ctx->bev == NULL) {
		freeaddrinfo(res);
		conn_lost(ctx, "out of memory");
		return;
	}
	bufferevent_setcb(ctx->bev, bev_read, bev_write, bev_event, ctx);
	bufferevent_enable(ctx->bev, EV_READ | EV_WRITE);
	rc = bufferevent_socket_connect(ctx->bev, res->ai_addr,
	    (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (rc == -1)
		conn_lost(ctx, "connect failed");
}

/* Drop what the connection held; requests and queries wait for the next. */
static void
conn_reset(struct tvx_ctx *ctx)
{
	struct tvx_query	*q, *tq;
	struct tvx_call		*c, *tc;

	if (ctx->ws != NULL) {
		tvx_ws_free(ctx->ws);
		ctx->ws = NULL;
	}
	if (ctx->bev != NULL) {
		bufferevent_free(ctx->bev);
		ctx->bev = NULL;
	}
	if (ctx->timeout_ev != NULL)
		evtimer_del(ctx->timeout_ev);
	tvx_reader_reset(&ctx->reader);
	ctx->upgraded = 0;
	ctx->connect_id = ctx->modify_id = 0;
	ctx->readding = 0;
	memset(&ctx->version, 0, sizeof(ctx->version));
	ctx->qs_version = 0;
	/* A query refused stays out: re-added, it would be refused again,
	 * and with it every query of the re-add. */
	TAILQ_FOREACH_SAFE(q, &ctx->queries, link, tq)
		q->srv = SRV_OFF;
	TAILQ_FOREACH_SAFE(c, &ctx->calls, link, tc) {
		if (c->gen == ctx->gen && !c->cancelled) {
			c->cancelled = 1;
			if (c->p != NULL && c->p->cancel != NULL)
				c->p->cancel(ctx, c->p->arg, c);
		}
	}
}

static void
conn_lost(struct tvx_ctx *ctx, const char *why)
{
	struct tvx_req		*r, *tr;
	struct tvx_error	 err;
	struct timeval		 tv;
	int64_t			 delay;
	char			*reason;

	if (ctx->state == TVX_CLOSED)
		return;
	if (ctx->in_proceed) {
		broken(ctx, why);
		return;
	}
	/* why may point into what conn_reset frees. */
	if ((reason = strdup(why)) == NULL)
		reason = NULL;
	if (ctx->state == TVX_CONNECTED)
		ctx->stats.reconnects++;
	conn_reset(ctx);
	ctx->broken = 0;
	ctx->gen++;
	free(ctx->last_close);
	ctx->last_close = reason;
	if (reason == NULL)
		reason = "out of memory";
	if (ctx->hook != NULL || ctx->reconnect_now)
		delay = 0;
	else
		delay = backoff(ctx->attempts++);
	ctx->reconnect_now = 0;
	set_state(ctx, TVX_DISCONNECTED, reason, delay);
	/* Actions are never resent; the rest waits for the next connection. */
	TAILQ_FOREACH_SAFE(r, &ctx->reqs, link, tr) {
		if (r->rpc_id == 0)
			continue;
		r->rpc_id = 0;
		if (r->kind == REQ_MUTATION)
			ctx->stats.resent++;
		if (r->kind != REQ_ACTION)
			continue;
		client_error(&err, TVX_ERR_UNAVAILABLE, "Unavailable",
		    "connection lost, outcome unknown",
		    "{\"kind\":\"Unavailable\",\"outcome\":\"unknown\"}");
		req_finish(ctx, r, NULL, 0, &err);
	}
	if (ctx->hook == NULL && ctx->state == TVX_DISCONNECTED) {
		tv_us(&tv, delay);
		evtimer_add(ctx->retry_ev, &tv);
	}
}

static void
tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct tvx_ctx		*ctx = arg;
	struct tvx_req		*r, *tr;
	struct tvx_error	 err;
	int64_t			 now = mono_us();

	(void)fd;
	(void)ev;
	if (ctx->upgraded && now - ctx->last_frame > TVX_IDLE_US)
		conn_lost(ctx, "no frame from the server for 45 s");
	TAILQ_FOREACH_SAFE(r, &ctx->reqs, link, tr) {
		if (r->kind != REQ_MUTATION || r->rpc_id != 0 ||
		    now < r->deadline)
			continue;
		client_error(&err, TVX_ERR_TIMEOUT, "Timeout",
		    "mutation deadline passed without a recorded outcome",
		    NULL);
		req_finish(ctx, r, NULL, 0, &err);
	}
}

/* Deferred work: sweep, first deliveries, query set, unsent requests. */
static void
kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct tvx_ctx		*ctx = arg;
	struct tvx_query	*q, *tq;
	struct tvx_sub		*s, *ts;
	char			*text;

	(void)fd;
	(void)ev;
	TAILQ_FOREACH_SAFE(q, &ctx->queries, link, tq) {
		TAILQ_FOREACH_SAFE(s, &q->subs, link, ts) {
			if (s->dead) {
				TAILQ_REMOVE(&q->subs, s, link);
				free(s);
			}
		}
		if (q->refs == 0 && q->srv == SRV_OFF) {
			TAILQ_REMOVE(&ctx->queries, q, link);
			query_free(q);
		}
	}
	TAILQ_FOREACH(q, &ctx->queries, link) {
		text = NULL;
		TAILQ_FOREACH(s, &q->subs, link) {
			if (!s->pending || s->dead)
				continue;
			s->pending = 0;
			if (q->failed == NULL && q->value == NULL)
				continue;
			if (q->failed == NULL && text == NULL)
				text = value_text(ctx, q);
			if (q->failed == NULL && text == NULL)
				continue;
			deliver_to(q, s, ctx, text);
		}
		free(text);
	}
	qs_sync(ctx);
	flush_reqs(ctx);
	pump(ctx);
}

static void
kick(struct tvx_ctx *ctx)
{
	event_active(ctx->kick_ev, EV_TIMEOUT, 0);
}

/* ---- the context ---- */

static int
parse_url(struct tvx_ctx *ctx, const char *url)
{
	const char	*p, *host, *slash, *colon;
	size_t		 hlen;

	if (strlen(url) > MAX_URL || strncmp(url, "ws://", 5) != 0)
		return -1;
	host = url + 5;
	slash = strchr(host, '/');
	hlen = slash ? (size_t)(slash - host) : strlen(host);
	if (hlen == 0)
		return -1;
	if ((ctx->host = strndup(host, hlen)) == NULL)
		return -1;
	ctx->path = strdup(slash ? slash : "/sync");
	if (ctx->host[0] == '[') {
		if ((p = strchr(ctx->host, ']')) == NULL)
			return -1;
		ctx->node = strndup(ctx->host + 1, (size_t)(p - ctx->host - 1));
		colon = p[1] == ':' ? p + 1 : NULL;
		if (p[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strrchr(ctx->host, ':');
		ctx->node = colon ? strndup(ctx->host,
		    (size_t)(colon - ctx->host)) : strdup(ctx->host);
	}
	ctx->port = strdup(colon ? colon + 1 : "80");
	if (ctx->path == NULL || ctx->node == NULL || ctx->port == NULL ||
	    *ctx->node == '\0' || *ctx->port == '\0')
		return -1;
	for (p = ctx->path; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return -1;
	return 0;
}

static struct tvx_ctx *
ctx_new(const struct tvx_config *cf)
{
	struct tvx_ctx	*ctx;
	unsigned char	 r[16];
	char		 hex[33];
	int		 i;

	if (cf == NULL || cf->url == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return NULL;
	TAILQ_INIT(&ctx->queries);
	TAILQ_INIT(&ctx->reqs);
	TAILQ_INIT(&ctx->providers);
	TAILQ_INIT(&ctx->calls);
	ctx->state = TVX_DISCONNECTED;
	if (parse_url(ctx, cf->url) == -1) {
		tvx_free(ctx);
		errno = EINVAL;
		return NULL;
	}
	arc4random_buf(r, sizeof(r));
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	memcpy(ctx->rid_prefix, hex, 16);
	ctx->rid_prefix[16] = '\0';
	if ((cf->token && (ctx->token = strdup(cf->token)) == NULL) ||
	    (cf->provider_token &&
	    (ctx->provider_token = strdup(cf->provider_token)) == NULL) ||
	    (ctx->session_id = strdup(cf->session_id ? cf->session_id :
	    hex)) == NULL)
		goto fail;
	ctx->on_state = cf->on_state;
	ctx->state_arg = cf->state_arg;
	ctx->max_message = cf->max_message ? cf->max_message :
	    TVX_DEFAULT_MAX_MESSAGE;
	ctx->max_transition = cf->max_transition ? cf->max_transition :
	    TVX_DEFAULT_MAX_TRANSITION;
	ctx->mutation_deadline = cf->mutation_deadline_us > 0 ?
	    cf->mutation_deadline_us : TVX_MUTATION_DEADLINE_US;
	ctx->want_features = !cf->no_features;
	tvx_reader_init(&ctx->reader, ctx->max_message, ctx->max_transition);
	if ((ctx->base = cf->base) == NULL) {
		if ((ctx->base = event_base_new()) == NULL)
			goto fail;
		ctx->own_base = 1;
	}
	if ((ctx->retry_ev = evtimer_new(ctx->base, retry_conn_cb, ctx)) ==
	    NULL ||
	    (ctx->timeout_ev = evtimer_new(ctx->base, timeout_cb, ctx)) ==
	    NULL ||
	    (ctx->tick_ev = event_new(ctx->base, -1, EV_PERSIST, tick_cb,
	    ctx)) == NULL ||
	    (ctx->kick_ev = event_new(ctx->base, -1, 0, kick_cb, ctx)) == NULL)
		goto fail;
	return ctx;
fail:
	tvx_free(ctx);
	return NULL;
}

struct tvx_ctx *
tvx_new(const struct tvx_config *cf)
{
	struct tvx_ctx	*ctx;
	struct timeval	 tv = { 1, 0 };

	if ((ctx = ctx_new(cf)) == NULL)
		return NULL;
	evtimer_add(ctx->tick_ev, &tv);
	conn_start(ctx);
	return ctx;
}

struct tvx_ctx *
tvx_new_offline(const struct tvx_config *cf, tvx_send_hook *hook, void *arg)
{
	struct tvx_ctx	*ctx;

	if ((ctx = ctx_new(cf)) == NULL)
		return NULL;
	ctx->hook = hook;
	ctx->hook_arg = arg;
	return ctx;
}

void
tvx_offline_up(struct tvx_ctx *ctx)
{
	ctx->stats.connections++;
	ctx->gen++;
	ctx->broken = 0;
	ctx->upgraded = 1;
	ctx->last_frame = mono_us();
	set_state(ctx, TVX_CONNECTING, NULL, 0);
	send_connect(ctx);
}

int
tvx_offline_feed(struct tvx_ctx *ctx, const char *text, size_t len)
{
	ctx->in_proceed = 1;
	handle_text(ctx, text, len);
	ctx->in_proceed = 0;
	if (ctx->broken) {
		conn_lost(ctx, ctx->broken_why);
		return -1;
	}
	return 0;
}

void
tvx_free(struct tvx_ctx *ctx)
{
	struct tvx_query	*q;
	struct tvx_req		*r;
	struct tvx_provider	*p;
	struct tvx_call		*c;

	if (ctx == NULL)
		return;
	ctx->state = TVX_CLOSED;
	if (ctx->ws != NULL)
		tvx_ws_free(ctx->ws);
	if (ctx->bev != NULL)
		bufferevent_free(ctx->bev);
	tvx_reader_reset(&ctx->reader);
	while ((q = TAILQ_FIRST(&ctx->queries)) != NULL) {
		TAILQ_REMOVE(&ctx->queries, q, link);
		query_free(q);
	}
	while ((r = TAILQ_FIRST(&ctx->reqs)) != NULL)
		req_free(ctx, r);
	while ((c = TAILQ_FIRST(&ctx->calls)) != NULL)
		call_free(c);
	while ((p = TAILQ_FIRST(&ctx->providers)) != NULL) {
		TAILQ_REMOVE(&ctx->providers, p, link);
		provider_free(p);
	}
	if (ctx->retry_ev)
		event_free(ctx->retry_ev);
	if (ctx->timeout_ev)
		event_free(ctx->timeout_ev);
	if (ctx->tick_ev)
		event_free(ctx->tick_ev);
	if (ctx->kick_ev)
		event_free(ctx->kick_ev);
	if (ctx->own_base && ctx->base != NULL)
		event_base_free(ctx->base);
	free(ctx->host);
	free(ctx->node);
	free(ctx->port);
	free(ctx->path);
	free(ctx->token);
	free(ctx->provider_token);
	free(ctx->session_id);
	free(ctx->last_close);
	free(ctx);
}

int
tvx_run(struct tvx_ctx *ctx)
{
	while (!ctx->stopping) {
		if (event_base_loop(ctx->base, EVLOOP_ONCE) == -1)
			return -1;
	}
	ctx->stopping = 0;
	return 0;
}

void
tvx_stop(struct tvx_ctx *ctx)
{
	ctx->stopping = 1;
	event_base_loopbreak(ctx->base);
}

void
tvx_reconnect(struct tvx_ctx *ctx)
{
	if (ctx->state == TVX_CLOSED)
		return;
	if (ctx->state == TVX_DISCONNECTED) {
		if (ctx->hook == NULL) {
			evtimer_del(ctx->retry_ev);
			conn_start(ctx);
		}
		return;
	}
	ctx->reconnect_now = 1;
	conn_lost(ctx, "reconnect requested");
}

struct event_base *
tvx_base(struct tvx_ctx *ctx)
{
	return ctx->base;
}

enum tvx_state
tvx_state(struct tvx_ctx *ctx)
{
	return ctx->state;
}

const char *
tvx_session_id(struct tvx_ctx *ctx)
{
	return ctx->session_id;
}

void
tvx_stats(struct tvx_ctx *ctx, struct tvx_stats *st)
{
	struct tvx_req	*r;

	*st = ctx->stats;
	st->diff = ctx->diff_ok;
	st->resume = ctx->resume_ok;
	st->mutations = st->actions = 0;
	TAILQ_FOREACH(r, &ctx->reqs, link) {
		if (r->kind == REQ_MUTATION)
			st->mutations++;
		else if (r->kind == REQ_ACTION)
			st->actions++;
	}
}
