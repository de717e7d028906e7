/*
 * The C client's protocol logic without sockets: JSON helpers, the
 * reader (responses, transitions, chunk reassembly, bounds), diff
 * application, the WebSocket layer fed frames in every chunk size, and a
 * whole context driven through tvx_new_offline: the messages it sends
 * are captured, the server's are fed by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tvx_int.h"

static int	 failures;
static int	 checks;

static void
check(int cond, const char *what)
{
	checks++;
	if (!cond)
		failures++;
	printf("%s %s\n", cond ? "ok  " : "FAIL", what);
	fflush(stdout);
}

/* ---- json ---- */

static int
parses(const char *s)
{
	const char	*why;
	cJSON		*v = tvx_json_parse(s, strlen(s), 8, &why);

	cJSON_Delete(v);
	return v != NULL;
}

static void
test_json(void)
{
	struct tvx_buf	 b = { 0 };
	const char	*why, *text;
	cJSON		*v;

	check(parses(" {\"a\":[1,2,{\"b\":null}]} "), "json: parses");
	check(!parses("[[[[[[[[[1]]]]]]]]]"), "json: depth bounded");
	check(parses("[\"[[[[[[[[[[[[\"]"), "json: brackets in strings "
	    "do not count");
	check(!parses("\"a\\u0000b\""), "json: \\u0000 refused");
	check(parses("\"a\\\\u0000b\""), "json: an escaped backslash is no "
	    "\\u0000");
	check(!parses("1e999"), "json: infinite numbers refused");
	check(!parses("{} x"), "json: trailing bytes refused");
	text = "[9007199254740991,1796639924797.3,-0,1e300,0.1]";
	v = tvx_json_parse(text, strlen(text), 8, &why);
	tvx_json_print(&b, v);
	check(b.data != NULL && strcmp(b.data,
	    "[9007199254740991,1796639924797.3,0,1e+300,0.1]") == 0,
	    "json: integers printed exactly, others round-trip");
	cJSON_Delete(v);
	tvx_buf_free(&b);
	text = "{\"b\":1,\"a\":{\"d\":2,\"c\":3}}";
	v = tvx_json_parse(text, strlen(text), 8, &why);
	tvx_json_print_canonical(&b, v);
	check(b.data != NULL &&
	    strcmp(b.data, "{\"a\":{\"c\":3,\"d\":2},\"b\":1}") == 0,
	    "json: canonical text sorts members");
	check(tvx_json_get(v, "B") == NULL, "json: lookups are case-sensitive");
	cJSON_Delete(v);
	tvx_buf_free(&b);
}

/* ---- reader ---- */

static int
feed(struct tvx_reader *r, const char *s, struct tvx_msg *m)
{
	const char	*why;
	int		 rc = tvx_reader_feed(r, s, strlen(s), m, &why);

	if (rc == -1)
		printf("     refused: %s\n", why);
	return rc;
}

#define TRANSITION "{\"startVersion\":{\"querySet\":0,\"identity\":0,\"ts\":0}," \
	"\"endVersion\":{\"querySet\":1,\"identity\":0,\"ts\":1796639924797300}," \
	"\"modifications\":[{\"type\":\"QueryUpdated\",\"queryId\":0," \
	"\"value\":[{\"_id\":\"x\",\"t\":\"h\\u00e9llo w\\u00f6rld\"}]}]," \
	"\"serverTs\":5}"

/* The transition cut into parts of n bytes, fed as chunks. */
static int
feed_chunked(struct tvx_reader *r, size_t n, struct tvx_msg *m)
{
	struct tvx_buf	 b = { 0 };
	const char	*t = TRANSITION;
	size_t		 len = strlen(t), off, total = (len + n - 1) / n;
	int		 rc = 0, part = 0;

	for (off = 0; off < len; off += n, part++) {
		b.len = 0;
		tvx_buf_adds(&b, "{\"jsonrpc\":\"2.0\",\"method\":"
		    "\"tinyvex/transitionChunk\",\"params\":{\"transitionId\":"
		    "\"t1\",\"partNumber\":");
		tvx_buf_i64(&b, part);
		tvx_buf_adds(&b, ",\"totalParts\":");
		tvx_buf_i64(&b, (int64_t)total);
		tvx_buf_adds(&b, ",\"chunk\":");
		tvx_json_string(&b, t + off, len - off < n ? len - off : n);
		tvx_buf_adds(&b, "}}");
		rc = feed(r, b.data, m);
		if (rc != 0)
			break;
	}
	tvx_buf_free(&b);
	return rc;
}

static void
test_reader(void)
{
	struct tvx_reader	 r;
	struct tvx_msg		 m;
	size_t			 n;
	int			 ok = 1, rc;

	tvx_reader_init(&r, 1 << 20, 1 << 20);
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", &m) ==
	    1 && m.type == TVX_MSG_RESPONSE && m.id == 3, "reader: response");
	tvx_msg_free(&m);
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"id\":3}", &m) == -1,
	    "reader: a response without result or error is refused");
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":1}", &m) ==
	    -1, "reader: a response to an id never sent is refused");
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":" TRANSITION "}", &m) == 1 &&
	    m.type == TVX_MSG_TRANSITION && m.end.ts == 1796639924797300 &&
	    m.end.query_set == 1, "reader: transition");
	tvx_msg_free(&m);
	for (n = 1; n <= strlen(TRANSITION); n++) {
		rc = feed_chunked(&r, n, &m);
		if (rc != 1 || m.type != TVX_MSG_TRANSITION ||
		    m.end.ts != 1796639924797300)
			ok = 0;
		tvx_msg_free(&m);
		tvx_reader_reset(&r);
	}
	check(ok, "reader: a chunked transition cut at every size");
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/"
	    "transitionChunk\",\"params\":{\"transitionId\":\"a\","
	    "\"partNumber\":1,\"totalParts\":2,\"chunk\":\"x\"}}", &m) == -1,
	    "reader: a chunk out of order is refused");
	tvx_reader_reset(&r);
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/"
	    "transitionChunk\",\"params\":{\"transitionId\":\"a\","
	    "\"partNumber\":0,\"totalParts\":2,\"chunk\":\"{\"}}", &m) == 0 &&
	    feed(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":" TRANSITION "}", &m) == -1,
	    "reader: a transition between chunks is refused");
	tvx_reader_reset(&r);
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/"
	    "transitionChunk\",\"params\":{\"transitionId\":\"a\","
	    "\"partNumber\":0,\"totalParts\":100000000,\"chunk\":\"{\"}}",
	    &m) == -1, "reader: totalParts bounded");
	tvx_reader_reset(&r);
	/* Chunks adding up past max_transition. */
	tvx_reader_init(&r, 1 << 20, 1000);
	rc = 0;
	for (n = 0; n < 10 && rc == 0; n++) {
		char	 msg[400], part[201];

		memset(part, 'x', 200);
		part[200] = '\0';
		snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"method\":"
		    "\"tinyvex/transitionChunk\",\"params\":{\"transitionId\":"
		    "\"a\",\"partNumber\":%zu,\"totalParts\":10,\"chunk\":"
		    "\"%s\"}}", n, part);
		rc = feed(&r, msg, &m);
	}
	check(rc == -1 && n == 6, "reader: reassembly bounded by "
	    "max_transition");
	tvx_reader_reset(&r);
	tvx_reader_init(&r, 64, 1000);
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/ping\","
	    "\"params\":{\"serverTs\":123456789012}}", &m) == -1,
	    "reader: a message over max_message is refused");
	tvx_reader_init(&r, 1 << 20, 1 << 20);
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":"
	    "\"tinyvex/runAction\",\"params\":{\"udfPath\":\"a/b\",\"args\":"
	    "{},\"sessionId\":\"s\"}}", &m) == 1 &&
	    m.type == TVX_MSG_RUN_ACTION && strcmp(m.udf, "a/b") == 0,
	    "reader: runAction");
	tvx_msg_free(&m);
	check(feed(&r, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/someday\"}",
	    &m) == 0, "reader: an unknown notification is ignored");
	check(feed(&r, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}]", &m) ==
	    -1, "reader: a batch from the server is refused");
}

/* ---- diff ---- */

static int
diff_is(const char *value, const char *mod, const char *want)
{
	struct tvx_buf	 b = { 0 };
	const char	*why = NULL;
	cJSON		*v, *m;
	int		 ok;

	v = tvx_json_parse(value, strlen(value), 16, &why);
	m = tvx_json_parse(mod, strlen(mod), 16, &why);
	if (tvx_diff_apply(&v, m, &why) == -1) {
		printf("     diff refused: %s\n", why);
		ok = want == NULL;
		/* A refused diff leaves the value as it was. */
		tvx_json_print(&b, v);
		ok = ok && strcmp(b.data, value) == 0;
	} else {
		tvx_json_print(&b, v);
		ok = want != NULL && strcmp(b.data, want) == 0;
		if (!ok)
			printf("     got %s\n", b.data);
	}
	tvx_buf_free(&b);
	cJSON_Delete(v);
	cJSON_Delete(m);
	return ok;
}

static void
test_diff(void)
{
	check(diff_is("[{\"_id\":\"a\",\"t\":\"he\"},{\"_id\":\"b\"}]",
	    "{\"ops\":[{\"op\":\"update\",\"id\":\"a\",\"append\":{\"t\":\"llo\"},"
	    "\"set\":{\"n\":1}},{\"op\":\"remove\",\"id\":\"b\"},{\"op\":"
	    "\"insert\",\"at\":0,\"doc\":{\"_id\":\"c\"}}]}",
	    "[{\"_id\":\"c\"},{\"_id\":\"a\",\"t\":\"hello\",\"n\":1}]"),
	    "diff: update, append, remove, insert in order");
	check(diff_is("[{\"_id\":\"a\",\"x\":1,\"y\":2}]", "{\"ops\":[{\"op\":"
	    "\"update\",\"id\":\"a\",\"unset\":[\"x\"]},{\"op\":\"insert\","
	    "\"at\":1,\"doc\":{\"_id\":\"b\"}}]}",
	    "[{\"_id\":\"a\",\"y\":2},{\"_id\":\"b\"}]"),
	    "diff: unset, insert at the end");
	check(diff_is("{\"page\":[{\"_id\":\"a\"}],\"continueCursor\":\"1\","
	    "\"isDone\":false}", "{\"ops\":[{\"op\":\"remove\",\"id\":\"a\"}],"
	    "\"fields\":{\"isDone\":true}}",
	    "{\"page\":[],\"continueCursor\":\"1\",\"isDone\":true}"),
	    "diff: a page and its fields");
	check(diff_is("{\"_id\":\"a\",\"t\":\"x\"}", "{\"ops\":[{\"op\":"
	    "\"update\",\"append\":{\"t\":\"y\"}}]}",
	    "{\"_id\":\"a\",\"t\":\"xy\"}"), "diff: one document");
	check(diff_is("[{\"_id\":\"a\"}]", "{\"ops\":[{\"op\":\"remove\","
	    "\"id\":\"z\"}]}", NULL), "diff: an unknown id is refused");
	check(diff_is("[{\"_id\":\"a\"}]", "{\"ops\":[{\"op\":\"insert\","
	    "\"at\":2,\"doc\":{}}]}", NULL), "diff: an index past the end "
	    "is refused");
	check(diff_is("[{\"_id\":\"a\",\"t\":1}]", "{\"ops\":[{\"op\":"
	    "\"remove\",\"id\":\"a\"},{\"op\":\"update\",\"id\":\"a\","
	    "\"append\":{\"t\":\"x\"}}]}", NULL),
	    "diff: a failure halfway leaves the value whole");
	check(diff_is("null", "{\"ops\":[]}", NULL),
	    "diff: no diff of null");
}

/* ---- ws ---- */

struct texts {
	char	 got[4][256];
	int	 n;
};

static void
on_text(void *arg, const char *s, size_t len)
{
	struct texts	*t = arg;

	if (t->n < 4 && len < 256) {
		memcpy(t->got[t->n], s, len);
		t->got[t->n][len] = '\0';
	}
	t->n++;
}

/* Server frames (unmasked): "hel" + "lo" fragmented, a ping, "abc". */
static const unsigned char frames[] = {
	0x01, 0x03, 'h', 'e', 'l',
	0x89, 0x01, 'p',
	0x80, 0x02, 'l', 'o',
	0x81, 0x03, 'a', 'b', 'c',
};

static void
test_ws(void)
{
	struct evbuffer	*in, *out;
	struct tvx_ws	*ws;
	struct texts	 t;
	const char	*why;
	size_t		 step, off, n;
	int		 ok = 1, rc;
	unsigned char	 bin[] = { 0x82, 0x01, 'x' };
	unsigned char	 masked[] = { 0x81, 0x81, 1, 2, 3, 4, 'a' ^ 1 };
	unsigned char	 big[] = { 0x81, 0x7e, 0x10, 0x00 };

	for (step = 1; step <= sizeof(frames); step++) {
		in = evbuffer_new();
		out = evbuffer_new();
		memset(&t, 0, sizeof(t));
		ws = tvx_ws_new(in, out, 1024, on_text, &t);
		rc = 0;
		for (off = 0; off < sizeof(frames) && rc == 0; off += step) {
			n = sizeof(frames) - off < step ? sizeof(frames) - off :
			    step;
			evbuffer_add(in, frames + off, n);
			rc = tvx_ws_proceed(ws, &why);
		}
		if (rc != 0 || t.n != 2 || strcmp(t.got[0], "hello") != 0 ||
		    strcmp(t.got[1], "abc") != 0 ||
		    evbuffer_get_length(out) != 7) {	/* the masked pong */
			printf("     step %zu: rc %d texts %d out %zu\n", step, rc,
			    t.n, evbuffer_get_length(out));
			ok = 0;
		}
		tvx_ws_free(ws);
		evbuffer_free(in);
		evbuffer_free(out);
	}
	check(ok, "ws: frames fed in every chunk size; the ping answered");

	in = evbuffer_new();
	out = evbuffer_new();
	ws = tvx_ws_new(in, out, 1024, on_text, &t);
	evbuffer_add(in, bin, sizeof(bin));
	check(tvx_ws_proceed(ws, &why) == -1, "ws: a binary message ends it");
	tvx_ws_free(ws);
	evbuffer_drain(in, evbuffer_get_length(in));
	ws = tvx_ws_new(in, out, 1024, on_text, &t);
	evbuffer_add(in, masked, sizeof(masked));
	check(tvx_ws_proceed(ws, &why) == -1, "ws: a masked server frame "
	    "ends it");
	tvx_ws_free(ws);
	evbuffer_drain(in, evbuffer_get_length(in));
	ws = tvx_ws_new(in, out, 1024, on_text, &t);
	evbuffer_add(in, big, sizeof(big));
	for (n = 0; n < 4096; n++)
		evbuffer_add(in, "x", 1);
	t.n = 0;
	check(tvx_ws_proceed(ws, &why) == -1 && t.n == 0,
	    "ws: a message over max_message ends it");
	tvx_ws_free(ws);
	evbuffer_free(in);
	evbuffer_free(out);
}

/* ---- a whole context, offline ---- */

struct sent {
	char	*msg[256];
	int	 n;
};

static void
hook(void *arg, const char *s, size_t len)
{
	struct sent	*st = arg;

	if (st->n < 256)
		st->msg[st->n++] = strndup(s, len);
}

/* The last message sent with method m; NULL if none. */
static cJSON *
last_sent(struct sent *st, const char *method)
{
	const char	*why;
	cJSON		*v, *mm;
	int		 i;

	for (i = st->n - 1; i >= 0; i--) {
		v = tvx_json_parse(st->msg[i], strlen(st->msg[i]), 64, &why);
		mm = tvx_json_get(v, "method");
		if (cJSON_IsString(mm) && strcmp(mm->valuestring, method) == 0)
			return v;
		cJSON_Delete(v);
	}
	return NULL;
}

static int64_t
sent_id(struct sent *st, const char *method)
{
	cJSON	*v = last_sent(st, method);
	int64_t	 id = -1;

	if (v != NULL)
		tvx_json_int(tvx_json_get(v, "id"), 0, INT64_MAX, &id);
	cJSON_Delete(v);
	return id;
}

static void
sent_clear(struct sent *st)
{
	while (st->n > 0)
		free(st->msg[--st->n]);
}

struct seen {
	int	 n;
	char	 last[512];
	int	 errors;
	int64_t	 ts;
};

static void
on_update(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct seen	*s = arg;

	(void)ctx;
	s->ts = ts;
	if (err != NULL) {
		s->errors++;
		snprintf(s->last, sizeof(s->last), "error %s", err->kind);
	} else {
		s->n++;
		snprintf(s->last, sizeof(s->last), "%s", value);
	}
}

static void
on_result(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct seen	*s = arg;

	on_update(ctx, arg, value, ts, err);
	if (err != NULL && err->data != NULL)
		snprintf(s->last, sizeof(s->last), "%s %s", err->kind,
		    err->data);
}

/* Calls held unanswered while held is set. */
static int		 held;
static struct tvx_call	*held_calls[2];

static void
handler(struct tvx_ctx *ctx, void *arg, struct tvx_call *call,
    const char *udf, const char *args)
{
	int	*calls = arg;

	(void)ctx;
	(void)udf;
	(void)args;
	if (held && *calls - 1 < 2) {
		held_calls[*calls - 1] = call;
		(*calls)++;
		return;
	}
	(*calls)++;
	tvx_call_return(call, "{\"ok\":true}");
}

static void
loop(struct tvx_ctx *ctx)
{
	int	 i;

	for (i = 0; i < 5; i++)
		event_base_loop(tvx_base(ctx), EVLOOP_NONBLOCK);
}

static int
put(struct tvx_ctx *ctx, const char *fmt, long long a, long long b)
{
	char	 msg[2048];

	snprintf(msg, sizeof(msg), fmt, a, b);
	return tvx_offline_feed(ctx, msg, strlen(msg));
}

static void
test_offline(void)
{
	struct tvx_config	 cf;
	struct tvx_ctx		*ctx;
	struct sent		 st = { 0 };
	struct seen		 a = { 0 }, b = { 0 }, mut = { 0 }, act = { 0 };
	struct tvx_stats	 stats;
	cJSON			*v;
	char			*text;
	int			 calls = 0;
	int64_t			 id, mid;

	memset(&cf, 0, sizeof(cf));
	cf.url = "ws://127.0.0.1:1/sync";
	ctx = tvx_new_offline(&cf, hook, &st);
	tvx_provide(ctx, "p/*", 2, handler, NULL, &calls);
	tvx_subscribe(ctx, "db/query", "{\"table\":\"t\",\"limit\":5}",
	    on_update, &a);
	tvx_subscribe(ctx, "db/query", "{\"limit\":5,\"table\":\"t\"}",
	    on_update, &b);
	tvx_mutation(ctx, "db/insert", "{\"table\":\"t\",\"doc\":{}}",
	    on_result, &mut);
	tvx_action(ctx, "p/x", "{}", on_result, &act);
	loop(ctx);
	check(st.n == 0, "offline: nothing is sent before the connection");
	tvx_offline_up(ctx);
	v = last_sent(&st, "tinyvex/connect");
	text = v ? tvx_json_text(tvx_json_get(v, "params")) : NULL;
	check(text != NULL && strstr(text, "\"connectionCount\":0") &&
	    strstr(text, "\"features\":[\"diff\",\"resume\"]"),
	    "offline: connect with connectionCount 0 and features");
	free(text);
	cJSON_Delete(v);
	id = sent_id(&st, "tinyvex/connect");
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocol\":1,"
	    "\"serverTs\":%lld,\"gatewayId\":\"g\",\"features\":[\"diff\","
	    "\"resume\"]}}", id, 1);
	loop(ctx);
	v = last_sent(&st, "tinyvex/modifyQuerySet");
	check(v != NULL && cJSON_GetArraySize(tvx_json_get(tvx_json_get(v,
	    "params"), "modifications")) == 1, "offline: identical "
	    "subscriptions share one query");
	cJSON_Delete(v);
	check(sent_id(&st, "tinyvex/provide") > 0 &&
	    sent_id(&st, "tinyvex/mutation") > 0 &&
	    sent_id(&st, "tinyvex/action") > 0,
	    "offline: provide, mutation and action sent once connected");
	mid = sent_id(&st, "tinyvex/mutation");
	/* The transition that adds the query, then the modify answer. */
	put(ctx, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":0,\"identity\":0,"
	    "\"ts\":0},\"endVersion\":{\"querySet\":1,\"identity\":0,\"ts\":"
	    "%lld},\"modifications\":[{\"type\":\"QueryUpdated\",\"queryId\":0,"
	    "\"value\":[{\"_id\":\"a\",\"t\":\"x\"}],\"hash\":\"h1\"}]}}", 100,
	    0);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"querySet\":"
	    "1}}", sent_id(&st, "tinyvex/modifyQuerySet"), 0);
	loop(ctx);
	check(a.n == 1 && b.n == 1 && a.ts == 100 &&
	    strcmp(a.last, "[{\"_id\":\"a\",\"t\":\"x\"}]") == 0,
	    "offline: both subscribers get the value and its ts");
	check(put(ctx, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":1,\"identity\":0,"
	    "\"ts\":100},\"endVersion\":{\"querySet\":1,\"identity\":0,\"ts\":"
	    "%lld},\"modifications\":[{\"type\":\"QueryDiff\",\"queryId\":0,"
	    "\"ops\":[{\"op\":\"update\",\"id\":\"a\",\"append\":{\"t\":\"yz\"}}],"
	    "\"hash\":\"h2\"}]}}", 200, 0) == 0 && a.n == 2 &&
	    strcmp(a.last, "[{\"_id\":\"a\",\"t\":\"xyz\"}]") == 0,
	    "offline: a QueryDiff applied");
	/* A runAction: the handler answers on the same connection. */
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":\"call-%lld\",\"method\":"
	    "\"tinyvex/runAction\",\"params\":{\"udfPath\":\"p/y\",\"args\":{},"
	    "\"sessionId\":\"s%lld\"}}", 1, 1);
	check(calls == 1 && st.n > 0 &&
	    strstr(st.msg[st.n - 1], "\"id\":\"call-1\"") != NULL &&
	    strstr(st.msg[st.n - 1], "\"result\":{\"ok\":true}") != NULL,
	    "offline: a provider call answered with its id echoed");
	/* Calls past the provider's concurrency are refused. */
	held = 1;
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":\"call-%lld\",\"method\":"
	    "\"tinyvex/runAction\",\"params\":{\"udfPath\":\"p/y\",\"args\":{},"
	    "\"sessionId\":\"s%lld\"}}", 2, 1);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":\"call-%lld\",\"method\":"
	    "\"tinyvex/runAction\",\"params\":{\"udfPath\":\"p/y\",\"args\":{},"
	    "\"sessionId\":\"s%lld\"}}", 3, 1);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":\"call-%lld\",\"method\":"
	    "\"tinyvex/runAction\",\"params\":{\"udfPath\":\"p/y\",\"args\":{},"
	    "\"sessionId\":\"s%lld\"}}", 4, 1);
	check(calls == 3 && strstr(st.msg[st.n - 1], "\"id\":\"call-4\"") &&
	    strstr(st.msg[st.n - 1], "-32007"), "offline: a call past the "
	    "provider's concurrency is answered Overloaded");
	tvx_call_return(held_calls[0], "1");
	tvx_call_return(held_calls[1], "2");
	held = 0;
	/* A transition out of sequence breaks the connection. */
	check(put(ctx, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":9,\"identity\":0,"
	    "\"ts\":%lld},\"endVersion\":{\"querySet\":9,\"identity\":0,\"ts\":"
	    "%lld},\"modifications\":[]}}", 100, 300) == -1 &&
	    tvx_state(ctx) == TVX_DISCONNECTED,
	    "offline: a transition out of sequence drops the connection");
	check(act.errors == 1 && strstr(act.last, "Unavailable") != NULL &&
	    strstr(act.last, "\"outcome\":\"unknown\"") != NULL,
	    "offline: the action in flight fails, outcome unknown");
	check(mut.n == 0 && mut.errors == 0, "offline: the mutation waits");
	sent_clear(&st);
	tvx_offline_up(ctx);
	v = last_sent(&st, "tinyvex/connect");
	text = v ? tvx_json_text(tvx_json_get(v, "params")) : NULL;
	check(text != NULL && strstr(text, "\"connectionCount\":1") &&
	    strstr(text, "\"maxObservedTs\":200") &&
	    strstr(text, "\"lastCloseReason\":\"transition out of sequence\""),
	    "offline: reconnect with count, maxObservedTs and reason");
	free(text);
	cJSON_Delete(v);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocol\":1,"
	    "\"serverTs\":%lld,\"gatewayId\":\"g\",\"features\":[\"diff\","
	    "\"resume\"]}}", sent_id(&st, "tinyvex/connect"), 1);
	loop(ctx);
	v = last_sent(&st, "tinyvex/modifyQuerySet");
	text = v ? tvx_json_text(tvx_json_get(v, "params")) : NULL;
	check(text != NULL && strstr(text, "\"baseVersion\":0") &&
	    strstr(text, "\"knownHash\":\"h2\""),
	    "offline: the query re-added from version 0 with knownHash");
	free(text);
	cJSON_Delete(v);
	v = last_sent(&st, "tinyvex/mutation");
	text = v ? tvx_json_text(tvx_json_get(v, "params")) : NULL;
	check(text != NULL && sent_id(&st, "tinyvex/mutation") != mid &&
	    strstr(text, "\"requestId\":\"") != NULL,
	    "offline: the mutation resent with its requestId");
	free(text);
	cJSON_Delete(v);
	check(put(ctx, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":0,\"identity\":0,"
	    "\"ts\":0},\"endVersion\":{\"querySet\":1,\"identity\":0,\"ts\":"
	    "%lld},\"modifications\":[{\"type\":\"QueryUnchanged\",\"queryId\":"
	    "0,\"hash\":\"h2\"}]}}", 400, 0) == 0 && a.n == 2,
	    "offline: QueryUnchanged keeps the value without an update");
	/* Mutation answered Unavailable: retried, not reported. */
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32008,"
	    "\"message\":\"down\",\"data\":{\"kind\":\"Unavailable\"}}}",
	    sent_id(&st, "tinyvex/mutation"), 0);
	check(mut.n == 0 && mut.errors == 0, "offline: Unavailable is "
	    "retried by the library");
	tvx_stats(ctx, &stats);
	check(stats.unchanged == 1 && stats.diffs == 1 && stats.mutations == 1,
	    "offline: stats");
	/* A QueryUnchanged for a hash not held breaks the connection. */
	check(put(ctx, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":1,\"identity\":0,"
	    "\"ts\":400},\"endVersion\":{\"querySet\":1,\"identity\":0,\"ts\":"
	    "%lld},\"modifications\":[{\"type\":\"QueryUnchanged\",\"queryId\":"
	    "0,\"hash\":\"other%lld\"}]}}", 500, 1) == -1,
	    "offline: QueryUnchanged for another hash is refused");
	sent_clear(&st);
	tvx_free(ctx);
}

static void
on_pages(struct tvx_ctx *ctx, void *arg, const char *results,
    enum tvx_page_status status, int64_t ts, const struct tvx_error *err)
{
	struct seen	*s = arg;

	(void)ctx;
	(void)err;
	s->n++;
	s->ts = status;
	snprintf(s->last, sizeof(s->last), "%s", results ? results : "-");
	(void)ts;
}

static void
test_pages_offline(void)
{
	struct tvx_config	 cf;
	struct tvx_ctx		*ctx;
	struct tvx_pages	*pp;
	struct sent		 st = { 0 };
	struct seen		 w = { 0 };
	cJSON			*v;
	char			*text;

	memset(&cf, 0, sizeof(cf));
	cf.url = "ws://127.0.0.1:1/sync";
	ctx = tvx_new_offline(&cf, hook, &st);
	pp = tvx_paginate(ctx, "{\"table\":\"t\"}", 2, on_pages, &w);
	tvx_offline_up(ctx);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocol\":1,"
	    "\"serverTs\":%lld,\"gatewayId\":\"g\",\"features\":[\"resume\"]}}",
	    sent_id(&st, "tinyvex/connect"), 1);
	loop(ctx);
	v = last_sent(&st, "tinyvex/modifyQuerySet");
	text = v ? tvx_json_text(v) : NULL;
	check(text != NULL && strstr(text, "\"udfPath\":\"db/paginate\"") &&
	    strstr(text, "\"cursor\":null") && strstr(text, "\"numItems\":2"),
	    "pages: the first page added from the start");
	free(text);
	cJSON_Delete(v);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":0,\"identity\":0,"
	    "\"ts\":0},\"endVersion\":{\"querySet\":1,\"identity\":0,\"ts\":"
	    "%lld},\"modifications\":[{\"type\":\"QueryUpdated\",\"queryId\":0,"
	    "\"value\":{\"page\":[{\"_id\":\"a\"},{\"_id\":\"b\"}],"
	    "\"continueCursor\":\"C1\",\"isDone\":false},\"hash\":\"h%lld\"}]}}",
	    10, 1);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"querySet\":"
	    "%lld}}", sent_id(&st, "tinyvex/modifyQuerySet"), 1);
	check(w.n == 1 && w.ts == TVX_PAGES_CAN_LOAD_MORE &&
	    strcmp(w.last, "[{\"_id\":\"a\"},{\"_id\":\"b\"}]") == 0,
	    "pages: the first page's documents, more to load");
	check(tvx_load_more(pp, 3) == 0, "pages: load more");
	loop(ctx);
	v = last_sent(&st, "tinyvex/modifyQuerySet");
	text = v ? tvx_json_text(v) : NULL;
	check(text != NULL && strstr(text, "\"cursor\":\"C1\"") &&
	    strstr(text, "\"numItems\":3"), "pages: the next page starts at "
	    "the first one's end");
	free(text);
	cJSON_Delete(v);
	check(tvx_offline_feed(ctx, "{}", 2) == -1, "pages: drop the "
	    "connection");
	sent_clear(&st);
	tvx_offline_up(ctx);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocol\":1,"
	    "\"serverTs\":%lld,\"gatewayId\":\"g\",\"features\":[\"resume\"]}}",
	    sent_id(&st, "tinyvex/connect"), 1);
	loop(ctx);
	v = last_sent(&st, "tinyvex/modifyQuerySet");
	text = v ? tvx_json_text(v) : NULL;
	check(text != NULL && strstr(text, "\"endCursor\":\"C1\"") &&
	    strstr(text, "\"knownHash\":\"h1\""),
	    "pages: a page re-added with its end and its hash");
	free(text);
	cJSON_Delete(v);
	tvx_pages_free(pp);
	loop(ctx);
	sent_clear(&st);
	tvx_free(ctx);
}

/*
 * A query the server refused (TooLarge: over maxQueries) is not re-added
 * after a reconnect: with it the re-add would be over the limit too, and
 * its refusal would fail every other query of the set.
 */
static void
test_refused_offline(void)
{
	struct tvx_config	 cf;
	struct tvx_ctx		*ctx;
	struct sent		 st = { 0 };
	struct seen		 a = { 0 }, b = { 0 }, c = { 0 };
	cJSON			*v;
	char			*text;
	const char		*connected = "{\"jsonrpc\":\"2.0\",\"id\":%lld,"
	    "\"result\":{\"protocol\":1,\"serverTs\":%lld,\"gatewayId\":"
	    "\"g\",\"features\":[\"resume\"]}}";

	memset(&cf, 0, sizeof(cf));
	cf.url = "ws://127.0.0.1:1/sync";
	ctx = tvx_new_offline(&cf, hook, &st);
	tvx_subscribe(ctx, "db/query", "{\"table\":\"a\"}", on_update, &a);
	tvx_offline_up(ctx);
	put(ctx, connected, sent_id(&st, "tinyvex/connect"), 1);
	loop(ctx);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":0,\"identity\":0,"
	    "\"ts\":0},\"endVersion\":{\"querySet\":1,\"identity\":0,\"ts\":"
	    "%lld},\"modifications\":[{\"type\":\"QueryUpdated\",\"queryId\":0,"
	    "\"value\":[],\"hash\":\"ha\"}]}}", 100, 0);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"querySet\":"
	    "1}}", sent_id(&st, "tinyvex/modifyQuerySet"), 0);
	tvx_subscribe(ctx, "db/query", "{\"table\":\"b\"}", on_update, &b);
	loop(ctx);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":"
	    "-32006,\"message\":\"over maxQueries\",\"data\":{\"kind\":"
	    "\"TooLarge\"}}}", sent_id(&st, "tinyvex/modifyQuerySet"), 0);
	loop(ctx);
	check(b.errors == 1 && strcmp(b.last, "error TooLarge") == 0 &&
	    a.errors == 0, "refused: the refused query's subscriber is told");
	tvx_subscribe(ctx, "db/query", "{\"table\":\"b\"}", on_update, &c);
	loop(ctx);
	check(c.errors == 1 && strcmp(c.last, "error TooLarge") == 0 &&
	    b.errors == 1, "refused: a later subscriber to it is told too");
	check(tvx_offline_feed(ctx, "{}", 2) == -1, "refused: drop the "
	    "connection");
	sent_clear(&st);
	tvx_offline_up(ctx);
	put(ctx, connected, sent_id(&st, "tinyvex/connect"), 1);
	loop(ctx);
	v = last_sent(&st, "tinyvex/modifyQuerySet");
	text = v ? tvx_json_text(tvx_json_get(v, "params")) : NULL;
	check(text != NULL && cJSON_GetArraySize(tvx_json_get(tvx_json_get(v,
	    "params"), "modifications")) == 1 && strstr(text, "\"a\"") &&
	    !strstr(text, "\"b\""), "refused: the re-add leaves the refused "
	    "query out");
	free(text);
	cJSON_Delete(v);
	sent_clear(&st);
	tvx_free(ctx);
}

/*
 * A provide answered Unavailable (the gateway's writer link down) keeps
 * the provider and is sent again after a backoff; one refused for good
 * (Unauthorized) drops it.
 */
static void
test_provide_retry_offline(void)
{
	struct tvx_config	 cf;
	struct tvx_ctx		*ctx;
	struct sent		 st = { 0 };
	int			 calls = 0;
	int64_t			 id;

	memset(&cf, 0, sizeof(cf));
	cf.url = "ws://127.0.0.1:1/sync";
	ctx = tvx_new_offline(&cf, hook, &st);
	tvx_provide(ctx, "p/*", 2, handler, NULL, &calls);
	tvx_offline_up(ctx);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocol\":1,"
	    "\"serverTs\":%lld,\"gatewayId\":\"g\"}}",
	    sent_id(&st, "tinyvex/connect"), 1);
	loop(ctx);
	id = sent_id(&st, "tinyvex/provide");
	sent_clear(&st);
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":"
	    "-32008,\"message\":\"writer link down\",\"data\":{\"kind\":"
	    "\"Unavailable\"}}}", id, 0);
	loop(ctx);
	check(st.n == 0, "provide retry: not at once");
	usleep(250 * 1000);
	loop(ctx);
	id = sent_id(&st, "tinyvex/provide");
	check(id > 0, "provide retry: sent again after a backoff");
	put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"providerId"
	    "\":\"p%lld\"}}", id, 1);
	check(put(ctx, "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":"
	    "\"tinyvex/runAction\",\"params\":{\"udfPath\":\"p/x\",\"args\":"
	    "{}}}", 0, 0) == 0 && calls == 1, "provide retry: the provider "
	    "serves calls");
	sent_clear(&st);
	tvx_free(ctx);
}

int
main(void)
{
	test_json();
	test_reader();
	test_diff();
	test_ws();
	test_offline();
	test_pages_offline();
	test_refused_offline();
	test_provide_retry_offline();
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
