/*
 * Fuzz target for what a hostile server can send the C client: the
 * WebSocket frames (ws.c over wslay in client mode) and the JSON-RPC
 * messages in them (reader.c: responses, transitions, chunks, provider
 * calls; diff.c; the context's handling in client.c).
 *
 * Per input: a context made with tvx_new_offline (no socket; what it
 * sends is captured) serves the prefix "p/", subscribes to two queries and
 * a paginated list (query 2 is its first page) and sends a mutation and
 * an action, then comes up and gets a canned
 * connect answer, so the ids the corpus uses are known: connect 1,
 * provide 2, modifyQuerySet 3, mutation 4, action 5.  The first input
 * byte holds options: bit 0 set, the rest is server bytes fed through
 * the WebSocket layer in pieces of (byte 1) bytes; clear, the rest is
 * split on NUL bytes into messages fed one by one.  When a message
 * breaks the connection, the context comes up again with a new canned
 * answer and the input goes on.
 *
 * Checked: everything the client sends is JSON; the loop's deferred work
 * runs after each message; nothing leaks (LeakSanitizer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tvx_int.h"

#define FUZZ_MAX_MESSAGE	(1024 * 1024)
#define FUZZ_MAX_TRANSITION	(4 * 1024 * 1024)
#define FUZZ_MAX_UPS		8	/* reconnects per input */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz {
	struct tvx_ctx	*ctx;
	int64_t		 connect_id;
	int		 ups;
	int		 dead;
};

static void
need(int cond)
{
	if (!cond)
		abort();
}

static void
hook(void *arg, const char *s, size_t len)
{
	struct fuzz	*f = arg;
	const char	*why;
	cJSON		*v, *m;

	v = tvx_json_parse(s, len, TVX_JSON_DEPTH + 8, &why);
	need(v != NULL);
	m = tvx_json_get(v, "method");
	if (cJSON_IsString(m) && strcmp(m->valuestring, "tinyvex/connect") == 0)
		need(tvx_json_int(tvx_json_get(v, "id"), 1, INT64_MAX,
		    &f->connect_id));
	cJSON_Delete(v);
}

static void
on_update(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	(void)ctx;
	(void)arg;
	(void)ts;
	need(value != NULL || err != NULL);
}

/* Pages: load one more whenever possible, up to a few. */
static void
on_pages(struct tvx_ctx *ctx, void *arg, const char *results,
    enum tvx_page_status status, int64_t ts, const struct tvx_error *err)
{
	struct tvx_pages	**pp = arg;

	(void)ctx;
	(void)ts;
	need(results != NULL || err != NULL);
	if (status == TVX_PAGES_CAN_LOAD_MORE && results != NULL &&
	    strlen(results) < 64)
		tvx_load_more(*pp, 1);
}

static void
handler(struct tvx_ctx *ctx, void *arg, struct tvx_call *call,
    const char *udf, const char *args)
{
	(void)ctx;
	(void)arg;
	(void)udf;
	if (args[0] == '{' && args[1] == '}')
		tvx_call_fail(call, "no", "{\"a\":1}");
	else
		tvx_call_return(call, args);
}

static void
loop(struct tvx_ctx *ctx)
{
	event_base_loop(tvx_base(ctx), EVLOOP_NONBLOCK);
}

static void
up(struct fuzz *f)
{
	char	 msg[256];

	if (f->ups++ >= FUZZ_MAX_UPS) {
		f->dead = 1;
		return;
	}
	tvx_offline_up(f->ctx);
	snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%lld,"
	    "\"result\":{\"protocol\":1,\"serverTs\":1,\"gatewayId\":\"g\","
	    "\"features\":[\"diff\",\"resume\"]}}", (long long)f->connect_id);
	if (tvx_offline_feed(f->ctx, msg, strlen(msg)) == -1)
		f->dead = 1;
	loop(f->ctx);
}

static void
message(struct fuzz *f, const char *s, size_t len)
{
	if (f->dead)
		return;
	if (tvx_offline_feed(f->ctx, s, len) == -1)
		up(f);
	loop(f->ctx);
}

static void
on_text(void *arg, const char *s, size_t len)
{
	message(arg, s, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tvx_config	 cf;
	struct fuzz		 f;
	struct evbuffer		*in, *out;
	struct tvx_ws		*ws;
	struct tvx_pages	*pp;
	const char		*why, *p, *end, *nul;
	size_t			 step, off, n;

	if (size < 2)
		return 0;
	memset(&f, 0, sizeof(f));
	memset(&cf, 0, sizeof(cf));
	cf.url = "ws://127.0.0.1:1/sync";
	cf.max_message = FUZZ_MAX_MESSAGE;
	cf.max_transition = FUZZ_MAX_TRANSITION;
	cf.base = event_base_new();
	need(cf.base != NULL);
	f.ctx = tvx_new_offline(&cf, hook, &f);
	need(f.ctx != NULL);
	tvx_provide(f.ctx, "p/*", 2, handler, NULL, NULL);
	tvx_subscribe(f.ctx, "db/query", "{\"table\":\"t\"}", on_update, NULL);
	tvx_subscribe(f.ctx, "db/get", "{\"table\":\"t\",\"id\":\"a\"}",
	    on_update, NULL);
	pp = tvx_paginate(f.ctx, "{\"table\":\"t\"}", 2, on_pages, &pp);
	need(pp != NULL);
	tvx_mutation(f.ctx, "db/insert", "{\"table\":\"t\",\"doc\":{}}",
	    on_update, NULL);
	tvx_action(f.ctx, "p/a", "{}", on_update, NULL);
	up(&f);

	p = (const char *)data + 2;
	end = (const char *)data + size;
	if (data[0] & 1) {
		in = evbuffer_new();
		out = evbuffer_new();
		ws = tvx_ws_new(in, out, FUZZ_MAX_MESSAGE, on_text, &f);
		need(in != NULL && out != NULL && ws != NULL);
		step = data[1] ? data[1] : 1;
		for (off = 0; off < (size_t)(end - p) && !f.dead; off += step) {
			n = (size_t)(end - p) - off < step ?
			    (size_t)(end - p) - off : step;
			evbuffer_add(in, p + off, n);
			if (tvx_ws_proceed(ws, &why) == -1)
				break;
		}
		tvx_ws_free(ws);
		evbuffer_free(in);
		evbuffer_free(out);
	} else {
		while (p < end && !f.dead) {
			nul = memchr(p, '\0', (size_t)(end - p));
			n = nul ? (size_t)(nul - p) : (size_t)(end - p);
			message(&f, p, n);
			p += n + 1;
		}
	}
	tvx_pages_free(pp);
	tvx_free(f.ctx);
	event_base_free(cf.base);
	return 0;
}
