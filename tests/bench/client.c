/*
 * JSON-RPC clients of the wire contract over wsc connections: the
 * tinyvex.v1 subprotocol, tinyvex/connect first, calls matched to their
 * answers by id, transitions handed to the scenario.  Messages in the hot
 * path are classified without a JSON parser (an answer's "id", the
 * transition method name); setup steps that need values parse the answer
 * with cJSON.  Also: opening thousands of connections with a bounded
 * number of handshakes in flight, and inserting documents in batches.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define TRANSITION_METHOD	"\"method\":\"tinyvex/transition\""
#define CHUNK_METHOD		"\"method\":\"tinyvex/transitionChunk\""
#define RUN_METHOD		"\"method\":\"tinyvex/runAction\""

static void	cl_ws_open(struct wsc *, void *);
static void	cl_ws_msg(struct wsc *, void *, const char *, size_t, int64_t);
static void	cl_ws_close(struct wsc *, void *);

static const struct wsc_ops cl_ops = { cl_ws_open, cl_ws_msg, cl_ws_close };

/*
 * The integer after "key": at or after from in msg; -1 when absent.  *next
 * (if not NULL) is set past it.
 */
int64_t
json_find_int(const char *msg, size_t len, const char *key, size_t from,
    size_t *next)
{
	const char	*p;
	size_t		 kl = strlen(key);
	int64_t		 v = 0;
	int		 neg = 0;

	if (from >= len)
		return -1;
	p = memmem(msg + from, len - from, key, kl);
	if (p == NULL)
		return -1;
	p += kl;
	if (p < msg + len && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= msg + len || *p < '0' || *p > '9')
		return -1;
	while (p < msg + len && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	if (next != NULL)
		*next = (size_t)(p - msg);
	return neg ? -v : v;
}

static void
connect_done(struct cl *c, void *arg, const char *msg, size_t len,
    int is_error, int64_t t_sent)
{
	(void)arg;
	(void)t_sent;
	if (is_error) {
		snprintf(c->last_error, sizeof(c->last_error), "connect: %.*s",
		    (int)(len > 120 ? 120 : len), msg);
		c->errors++;
		return;
	}
	c->connected = 1;
}

/* Send tinyvex/connect; c->connected is set when it is answered. */
int
cl_connect(struct cl *c)
{
	char	 p[160];
	int	 n;

	n = snprintf(p, sizeof(p), "{\"sessionId\":\"bench-%d-%" PRIu64
	    "\"%s%.60s}", c->index, (uint64_t)mono_us(),
	    c->b->cl_features != NULL ? ",\"features\":" : "",
	    c->b->cl_features != NULL ? c->b->cl_features : "");
	return cl_call(c, "tinyvex/connect", p, (size_t)n, connect_done,
	    NULL);
}

static void
cl_ws_open(struct wsc *ws, void *arg)
{
	struct cl	*c = arg;

	(void)ws;
	c->opened = 1;
	if (!c->no_connect)
		cl_connect(c);
}

static void
cl_ws_close(struct wsc *ws, void *arg)
{
	struct cl	*c = arg;

	c->closed = 1;
	if (c->last_error[0] == '\0')
		snprintf(c->last_error, sizeof(c->last_error),
		    "connection closed: %s", ws->err > 0 ? strerror(ws->err) :
		    ws->err < 0 ? "protocol error" : "by the server");
}

static void
cl_ws_msg(struct wsc *ws, void *arg, const char *msg, size_t len, int64_t t)
{
	struct cl		*c = arg;
	struct cl_pending	 p;
	size_t			 head = len < 96 ? len : 96, i;
	int64_t			 id;
	int			 is_error;

	(void)ws;
	if (memmem(msg, head, TRANSITION_METHOD,
	    sizeof(TRANSITION_METHOD) - 1) != NULL ||
	    memmem(msg, head, CHUNK_METHOD, sizeof(CHUNK_METHOD) - 1) != NULL) {
		c->transitions++;
		c->trans_bytes += len;
		if (c->on_trans != NULL)
			c->on_trans(c, c->arg, msg, len, t);
		return;
	}
	if (memmem(msg, head, RUN_METHOD, sizeof(RUN_METHOD) - 1) != NULL) {
		if (c->on_request != NULL)
			c->on_request(c, c->arg, msg, len, t);
		return;
	}
	if (memmem(msg, head, "\"method\":", 9) != NULL)
		return;		/* tinyvex/ping */
	id = json_find_int(msg, head, "\"id\":", 0, NULL);
	if (id < 0)
		return;
	for (i = 0; i < c->npend; i++)
		if (c->pend[i].id == (uint64_t)id)
			break;
	if (i == c->npend)
		return;
	p = c->pend[i];
	c->pend[i] = c->pend[--c->npend];
	is_error = memmem(msg, len, "\"error\":{", 9) != NULL &&
	    memmem(msg, head, "\"result\":", 9) == NULL;
	c->answers++;
	if (is_error) {
		c->errors++;
		snprintf(c->last_error, sizeof(c->last_error), "%.*s",
		    (int)(len > 150 ? 150 : len), msg);
	}
	if (p.fn != NULL)
		p.fn(c, p.arg, msg, len, is_error, p.t_sent);
}

struct cl *
cl_open(struct bench *b, int port, cl_trans_fn on_trans, void *arg)
{
	struct cl	*c;

	c = xcalloc(1, sizeof(*c));
	c->b = b;
	c->port = port;
	c->on_trans = on_trans;
	c->arg = arg;
	c->next_id = 1;
	c->ws = wsc_open(b, port, "tinyvex.v1", &cl_ops, c);
	if (c->ws->state == WSC_CLOSED)
		c->closed = 1;
	return c;
}

void
cl_free(struct cl *c)
{
	if (c == NULL)
		return;
	wsc_free(c->ws);
	free(c->pend);
	free(c);
}

int
cl_call(struct cl *c, const char *method, const char *params, size_t plen,
    cl_done_fn fn, void *arg)
{
	struct buf		 m;
	struct cl_pending	*p;
	int			 rc;

	if (c->closed)
		return -1;
	buf_init(&m);
	buf_reserve(&m, plen + 64);
	buf_adds(&m, "{\"jsonrpc\":\"2.0\",\"id\":");
	buf_add_u64(&m, c->next_id);
	buf_adds(&m, ",\"method\":\"");
	buf_adds(&m, method);
	buf_adds(&m, "\",\"params\":");
	buf_add(&m, params, plen);
	buf_addc(&m, '}');
	if (c->npend == c->cappend) {
		c->cappend = c->cappend == 0 ? 4 : c->cappend * 2;
		c->pend = xreallocarray(c->pend, c->cappend, sizeof(*c->pend));
	}
	p = &c->pend[c->npend];
	p->id = c->next_id++;
	p->fn = fn;
	p->arg = arg;
	p->t_sent = mono_us();
	rc = wsc_send(c->ws, m.data, m.len);
	buf_free(&m);
	if (rc == 0)
		c->npend++;
	return rc;
}

/* A call whose answer is parsed: the whole answer object, or NULL. */
struct sync_call {
	int	 done;
	cJSON	*answer;
};

static void
sync_done(struct cl *c, void *arg, const char *msg, size_t len, int is_error,
    int64_t t_sent)
{
	struct sync_call	*s = arg;
	enum json_err		 jerr;

	(void)c;
	(void)is_error;
	(void)t_sent;
	s->answer = json_parse(msg, len, JSON_MAX_DEPTH, &jerr);
	s->done = 1;
}

static int
sync_is_done(void *arg)
{
	struct sync_call	*s = arg;

	return s->done;
}

cJSON *
cl_call_wait(struct cl *c, const char *method, const char *params,
    int64_t timeout_us)
{
	struct sync_call	 s;

	memset(&s, 0, sizeof(s));
	if (cl_call(c, method, params, strlen(params), sync_done, &s) == -1)
		return NULL;
	if (bench_wait(c->b, sync_is_done, &s, timeout_us) == -1)
		return NULL;
	return s.answer;
}

/*
 * One modifyQuerySet adding n queries.  args[i] is JSON text.  The answer
 * goes to fn.
 */
int
cl_subscribe(struct cl *c, const uint32_t *qids, char *const *udfs,
    char *const *args, int n, cl_done_fn fn, void *arg)
{
	return cl_subscribe_known(c, qids, udfs, args, NULL, n, fn, arg);
}

/* As cl_subscribe, with a knownHash for each query (known[i] NULL: none). */
int
cl_subscribe_known(struct cl *c, const uint32_t *qids, char *const *udfs,
    char *const *args, char *const *known, int n, cl_done_fn fn, void *arg)
{
	struct buf	 p;
	int		 i, rc;

	buf_init(&p);
	buf_adds(&p, "{\"baseVersion\":");
	buf_add_u64(&p, c->qs);
	buf_adds(&p, ",\"newVersion\":");
	buf_add_u64(&p, c->qs + 1);
	buf_adds(&p, ",\"modifications\":[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(&p, ',');
		buf_adds(&p, "{\"type\":\"Add\",\"queryId\":");
		buf_add_u64(&p, qids[i]);
		buf_adds(&p, ",\"udfPath\":\"");
		buf_adds(&p, udfs[i]);
		buf_adds(&p, "\",\"args\":");
		buf_adds(&p, args[i]);
		if (known != NULL && known[i] != NULL) {
			buf_adds(&p, ",\"knownHash\":\"");
			buf_adds(&p, known[i]);
			buf_addc(&p, '"');
		}
		buf_addc(&p, '}');
	}
	buf_adds(&p, "]}");
	rc = cl_call(c, "tinyvex/modifyQuerySet", p.data, p.len, fn, arg);
	if (rc == 0)
		c->qs++;
	buf_free(&p);
	return rc;
}

/* Opening many connections. */
struct opener {
	struct cl	**out;
	int		  n, started, ready, failed, do_connect;
};

static void
opener_step(struct opener *o)
{
	int		 i;

	o->ready = 0;
	o->failed = 0;
	for (i = 0; i < o->started; i++) {
		struct cl	*c = o->out[i];

		if (c->closed)
			o->failed++;
		else if (o->do_connect ? c->connected : c->opened)
			o->ready++;
	}
}

int
cl_open_many(struct bench *b, int port, struct cl **out, int n,
    int do_connect, cl_trans_fn on_trans, void *arg, int64_t timeout_us)
{
	struct opener	 o;
	int64_t		 deadline = mono_us() + timeout_us;
	int		 inflight;

	memset(&o, 0, sizeof(o));
	o.out = out;
	o.n = n;
	o.do_connect = do_connect;
	for (;;) {
		opener_step(&o);
		if (o.failed > 0) {
			int	 i;

			for (i = 0; i < o.started; i++)
				if (out[i]->closed)
					break;
			log_warnx("connection %d of %d failed: %s", i, n,
			    i < o.started ? out[i]->last_error : "?");
			return -1;
		}
		if (o.ready == n)
			return 0;
		inflight = o.started - o.ready;
		while (o.started < n && inflight < BENCH_OPEN_INFLIGHT) {
			out[o.started] = cl_open(b, port, on_trans, arg);
			out[o.started]->index = o.started;
			out[o.started]->no_connect = !do_connect;
			o.started++;
			inflight++;
		}
		if (mono_us() > deadline) {
			log_warnx("opening %d connections: %d ready after "
			    "%.1f s", n, o.ready, (double)timeout_us / 1e6);
			return -1;
		}
		event_base_loop(b->base, EVLOOP_ONCE);
	}
}

/* Every pending call of every client answered. */
struct answers_wait {
	struct cl	**c;
	int		  n;
};

static int
answers_done(void *arg)
{
	struct answers_wait	*w = arg;
	int			 i;

	for (i = 0; i < w->n; i++)
		if (w->c[i]->npend > 0 && !w->c[i]->closed)
			return 0;
	return 1;
}

int
cl_wait_answers(struct cl **c, int n, int64_t timeout_us)
{
	struct answers_wait	 w;

	if (n == 0)
		return 0;
	w.c = c;
	w.n = n;
	return bench_wait(c[0]->b, answers_done, &w, timeout_us);
}

/* Inserting many documents with db/batch. */
struct insert_ctx {
	char		(*ids)[DOC_ID_LEN + 1];
	int		 failed;
	int		 outstanding;
	int		 limit;		/* wait while this many are out */
};

struct insert_part {
	struct insert_ctx	*ctx;
	int			 first, n;
};

static void
insert_done(struct cl *c, void *arg, const char *msg, size_t len,
    int is_error, int64_t t_sent)
{
	struct insert_part	*p = arg;
	cJSON			*a, *v, *id;
	enum json_err		 jerr;
	int			 i = 0;

	(void)c;
	(void)t_sent;
	p->ctx->outstanding--;
	a = is_error ? NULL : json_parse(msg, len, JSON_MAX_DEPTH, &jerr);
	v = json_get(json_get(a, "result"), "value");
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != p->n) {
		log_warnx("db/batch failed: %.*s", (int)(len > 200 ? 200 :
		    len), msg);
		p->ctx->failed = 1;
	} else {
		cJSON_ArrayForEach(id, v) {
			if (!cJSON_IsString(id) ||
			    strlen(id->valuestring) > DOC_ID_LEN) {
				p->ctx->failed = 1;
				break;
			}
			if (p->ctx->ids != NULL)
				strlcpy_tv(p->ctx->ids[p->first + i],
				    id->valuestring, DOC_ID_LEN + 1);
			i++;
		}
	}
	cJSON_Delete(a);
	free(p);
}

static int
insert_idle(void *arg)
{
	struct insert_ctx	*x = arg;

	return x->outstanding < x->limit || x->failed;
}

/*
 * Insert n documents into table, gen(buf, i, arg) writing document i's
 * JSON; their ids land in ids (may be NULL).  0 or -1.
 */
int
cl_insert_many(struct cl *c, const char *table, int n,
    void (*gen)(struct buf *, int, void *), void *arg,
    char (*ids)[DOC_ID_LEN + 1], int64_t timeout_us)
{
	struct insert_ctx	 x;
	struct insert_part	*p;
	struct buf		 m;
	int			 i, j;

	memset(&x, 0, sizeof(x));
	x.ids = ids;
	buf_init(&m);
	for (i = 0; i < n; i += CL_BATCH_OPS) {
		buf_reset(&m);
		buf_adds(&m, "{\"udfPath\":\"db/batch\",\"args\":{\"ops\":[");
		for (j = i; j < n && j < i + CL_BATCH_OPS; j++) {
			if (j > i)
				buf_addc(&m, ',');
			buf_adds(&m, "{\"op\":\"insert\",\"table\":\"");
			buf_adds(&m, table);
			buf_adds(&m, "\",\"doc\":");
			gen(&m, j, arg);
			buf_addc(&m, '}');
		}
		buf_adds(&m, "]}}");
		p = xcalloc(1, sizeof(*p));
		p->ctx = &x;
		p->first = i;
		p->n = j - i;
		if (cl_call(c, "tinyvex/mutation", m.data, m.len, insert_done,
		    p) == -1) {
			free(p);
			x.failed = 1;
			break;
		}
		x.outstanding++;
		/* Keep a few batches in flight, no more. */
		x.limit = 4;
		if (bench_wait(c->b, insert_idle, &x, timeout_us) == -1)
			x.failed = 1;
		if (x.failed)
			break;
	}
	buf_free(&m);
	x.limit = 1;
	if (!x.failed && bench_wait(c->b, insert_idle, &x, timeout_us) == -1)
		x.failed = 1;
	return x.failed ? -1 : 0;
}

static int
one_connected(void *arg)
{
	struct cl	*c = arg;

	return c->connected || c->closed || c->errors > 0;
}

/* Open one connection and wait for its tinyvex/connect answer. */
struct cl *
cl_open_wait(struct bench *b, int port, cl_trans_fn on_trans, void *arg,
    int64_t timeout_us)
{
	struct cl	*c = cl_open(b, port, on_trans, arg);

	if (bench_wait(b, one_connected, c, timeout_us) == -1 ||
	    !c->connected) {
		log_warnx("connect to port %d: %s", port, c->last_error);
		cl_free(c);
		return NULL;
	}
	return c;
}

/* Every call answered and at least one transition, on every client. */
static int
subscribed(void *arg)
{
	struct answers_wait	*w = arg;
	int			 i;

	for (i = 0; i < w->n; i++) {
		if (w->c[i]->closed)
			return 1;
		if (w->c[i]->npend > 0 || w->c[i]->transitions == 0)
			return 0;
	}
	return 1;
}

int
cl_wait_subscribed(struct cl **c, int n, int64_t timeout_us)
{
	struct answers_wait	 w;
	int			 i;

	if (n == 0)
		return 0;
	w.c = c;
	w.n = n;
	if (bench_wait(c[0]->b, subscribed, &w, timeout_us) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (c[i]->closed || c[i]->errors > 0) {
			log_warnx("client %d: %s", i, c[i]->last_error);
			return -1;
		}
	return 0;
}
