/*
 * Fuzz target for the gateway's JSON-RPC dispatcher (gatewayd/rpc.c) and
 * what it drives: sessions, query sets, shared executions, transitions
 * and their chunks.
 *
 * Once, at start-up: a scratch database is written with the writer's own
 * code (store_open read-write, the write context, mutate_run): two
 * tables, a user index and a unique one, documents inserted, patched and
 * deleted over several ts.  Then a gateway lives in this process, set up
 * like gatewayd's main (gateway_init, gateway_setup) with that database
 * open read-only, no listener and no writer link, so every mutation is
 * answered Unavailable.
 *
 * Per input: the first byte holds options (bit 0: a token is configured,
 * bit 1: the upgrade carried it, bit 2: chunkBytes is small so that
 * transitions are cut into chunks, bit 3: after each message a commit
 * changes a message document, by turns appending to its body, setting it
 * back, and moving it within the by_thread index, and the gateway
 * refreshes, so that results change and diffs are made); the rest is
 * split on NUL bytes into messages.  A session is made over one end of a
 * socketpair; each message that is valid UTF-8 (the WebSocket layer lets
 * no other through) goes to rpc_message, and the loop runs and the client
 * end is read after each.
 * Then the session's timer work runs as if much time had passed (connect
 * waits expire, text pings go out) and the session is freed, unless it
 * closed itself already.
 *
 * Checked: every frame the client reads is a whole unmasked frame; every
 * text frame is JSON: a JSON-RPC 2.0 response (result, or an error with
 * an integer code, a message and data.kind) or notification, or an array
 * of responses; transition frames fit chunkBytes, and the chunks of one
 * transition come in order and join into a JSON object; a hash or a
 * QueryUnchanged only to a connection granted "resume", a QueryDiff only
 * to one granted "diff", every hash 22 base64url characters, a connect
 * answer's features only known names; and after the
 * session is gone the gateway holds no session, execution, rerun, flush
 * or held-answer entry, nor writer request.
 */
#include <sys/socket.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "daemon.h"
#include "fuzz.h"
#include "gatewayd.h"
#include "json.h"
#include "log.h"
#include "writerd.h"

#define FUZZ_TOKEN		"fuzz-token"
#define FUZZ_SMALL_CHUNK	600	/* chunkBytes with option bit 2 */
#define FUZZ_LATER_US		(3600LL * 1000000)	/* "much later" */
#define FUZZ_MAX_FRAME		(64 * 1024 * 1024)
#define FUZZ_CHECKPOINT_EVERY	512	/* commits between WAL truncations */
#define FUZZ_WCACHE_KB		"256"	/* the writer side's page cache */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct gateway	 gw;
static char		 dir[256];
static uint64_t		 default_chunk;
static int		 granted;	/* the session's GW_FEAT_* */

/* The writer side, for the commits of option bit 3. */
static struct store	*wst;
static struct wctx	 wctx;
static int64_t		 wts;
static uint64_t		 nwrites;
static char		 doc0[STORE_ID_LEN + 3];	/* JSON string */

/* Chunks of the transition being reassembled. */
struct chunks {
	char		 tid[64];
	int64_t		 next;		/* partNumber expected */
	int64_t		 total;
	struct buf	 text;
};

static void
write_one(struct wctx *w, int64_t *ts, const char *udf, const char *args,
    struct buf *value)
{
	struct tv_error	 err;
	enum json_err	 jerr;
	cJSON		*a;

	a = json_parse(args, strlen(args), JSON_MAX_DEPTH, &jerr);
	need(a != NULL);
	memset(&err, 0, sizeof(err));
	wctx_reset(w, ++*ts);
	buf_reset(value);
	if (mutate_run(w, udf, a, value, &err) == -1) {
		fprintf(stderr, "fuzz_rpc: %s %s: %s\n", udf, args,
		    err.message);
		abort();
	}
	wctx_keep(w);
	cJSON_Delete(a);
}

/* The scratch database, written the way writerd writes. */
static void
make_db(const char *path)
{
	static char *const thread[] = { "threadId" };
	static char *const item[] = { "threadId", "itemId" };
	struct config			 conf;
	struct store			*st;
	struct wctx			 w;
	struct tv_error			 err;
	const struct store_table	*t;
	struct buf			 v, args;
	char				 e[512], ids[8][STORE_ID_LEN + 3];
	int64_t				 ts = now_us();
	int				 i;

	config_defaults(&conf);
	need((st = store_open(path, STORE_RW, NULL, e, sizeof(e))) != NULL);
	need(wctx_init(&w, st, &conf) == 0);
	need(store_exec(st, "BEGIN IMMEDIATE") == 0);
	memset(&err, 0, sizeof(err));
	wctx_reset(&w, ++ts);
	need(wctx_table(&w, "messages", 1, &t, &err) == 0);
	need(wctx_index_create(&w, t, "by_thread", thread, 1, 0, &err) == 0);
	t = catalog_table(st->catalog, "messages");
	need(wctx_index_create(&w, t, "by_item", item, 2, 1, &err) == 0);
	buf_init(&v);
	buf_init(&args);
	for (i = 0; i < 8; i++) {
		buf_reset(&args);
		buf_printf(&args, "{\"table\":\"messages\",\"doc\":{"
		    "\"threadId\":\"t%d\",\"itemId\":%d,\"body\":\"message "
		    "%d \\u00e9\",\"tags\":[%d,null,true,{\"k\":-%d.5}]}}",
		    i % 3, i, i, i, i);
		write_one(&w, &ts, "db/insert", args.data, &v);
		need(v.len == STORE_ID_LEN + 2);
		memcpy(ids[i], v.data, v.len + 1);
	}
	write_one(&w, &ts, "db/insert", "{\"table\":\"notes\",\"doc\":"
	    "{\"text\":\"a note\",\"n\":1e300,\"nested\":{\"a\":[[[]]]}}}", &v);
	write_one(&w, &ts, "db/batch", "{\"ops\":["
	    "{\"op\":\"insert\",\"table\":\"notes\",\"doc\":{\"n\":2}},"
	    "{\"op\":\"insert\",\"table\":\"notes\",\"doc\":{\"n\":3}}]}", &v);
	buf_reset(&args);
	buf_printf(&args, "{\"table\":\"messages\",\"id\":%s,\"set\":"
	    "{\"body\":\"edited\"},\"unset\":[\"tags\"]}", ids[1]);
	write_one(&w, &ts, "db/patch", args.data, &v);
	buf_reset(&args);
	buf_printf(&args, "{\"table\":\"messages\",\"id\":%s,\"doc\":"
	    "{\"threadId\":\"t9\",\"itemId\":99}}", ids[2]);
	write_one(&w, &ts, "db/replace", args.data, &v);
	buf_reset(&args);
	buf_printf(&args, "{\"table\":\"messages\",\"id\":%s}", ids[3]);
	write_one(&w, &ts, "db/delete", args.data, &v);
	need(store_global_set_i64(st, GLOBAL_MAX_TS, ts) == 0);
	need(wctx_flush(&w) == 0);
	need(store_exec(st, "COMMIT") == 0);
	buf_free(&args);
	buf_free(&v);
	wctx_free(&w);
	store_close(st);
	config_free(&conf);
	memcpy(doc0, ids[0], sizeof(doc0));
	wts = ts;
}

/*
 * One commit to message 0, by turns: its body set back, appended to
 * twice, its threadId moved; then the gateway refreshes.
 */
static void
commit_change(void)
{
	struct buf	 args, v;

	buf_init(&args);
	buf_init(&v);
	switch (nwrites++ % 4) {
	case 0:
		buf_printf(&args, "{\"table\":\"messages\",\"id\":%s,"
		    "\"set\":{\"body\":\"b\",\"threadId\":\"t0\"}}", doc0);
		break;
	case 1:
		buf_printf(&args, "{\"table\":\"messages\",\"id\":%s,"
		    "\"set\":{\"body\":\"bx\"}}", doc0);
		break;
	case 2:
		buf_printf(&args, "{\"table\":\"messages\",\"id\":%s,"
		    "\"set\":{\"body\":\"bx\\u00e9\"},\"unset\":[\"tags\"]}",
		    doc0);
		break;
	default:
		buf_printf(&args, "{\"table\":\"messages\",\"id\":%s,"
		    "\"set\":{\"threadId\":\"t2\"}}", doc0);
		break;
	}
	if (wts < now_us())
		wts = now_us();
	need(store_exec(wst, "BEGIN IMMEDIATE") == 0);
	write_one(&wctx, &wts, "db/patch", args.data, &v);
	need(store_global_set_i64(wst, GLOBAL_MAX_TS, wts) == 0);
	need(wctx_flush(&wctx) == 0);
	need(store_exec(wst, "COMMIT") == 0);
	buf_free(&args);
	buf_free(&v);
	need(query_refresh(&gw) == 0 && gw.ts == wts);
	if (nwrites % FUZZ_CHECKPOINT_EVERY == 0)
		store_exec(wst, "PRAGMA wal_checkpoint(TRUNCATE)");
}

static void
cleanup(void)
{
	static const char	*files[] = { TINYVEX_DB_NAME,
	    TINYVEX_DB_NAME "-wal", TINYVEX_DB_NAME "-shm" };
	char			 p[512];
	size_t			 i;

	gateway_free(&gw);
	wctx_free(&wctx);
	store_close(wst);
	for (i = 0; i < nitems(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void
setup(void)
{
	static const char	*bases[] = { "/dev/shm", "/tmp" };
	static struct config	 wconf;
	char			*path, err[512];
	size_t			 i;

	log_init("fuzz_rpc", 0, 0);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nitems(bases); i++) {
		snprintf(dir, sizeof(dir), "%s/fuzz_rpc.XXXXXX", bases[i]);
		if (mkdtemp(dir) != NULL)
			break;
	}
	need(i < nitems(bases));
	path = path_join(dir, TINYVEX_DB_NAME);
	make_db(path);
	need((wst = store_open(path, STORE_RW, NULL, err, sizeof(err))) !=
	    NULL);
	config_defaults(&wconf);
	need(wctx_init(&wctx, wst, &wconf) == 0);
	/* A small page cache: it stops allocating once warm. */
	need(store_exec(wst, "PRAGMA cache_size = -" FUZZ_WCACHE_KB) == 0);
	free(path);

	gateway_init(&gw);
	gw.listen_host = xstrdup("127.0.0.1");
	gw.listen_port = xstrdup("7878");
	snprintf(gw.gateway_id, sizeof(gw.gateway_id), "gw-fuzz");
	need(gateway_setup(&gw, dir) == 0);
	default_chunk = gw.conf.chunk_bytes;
	need(query_open_store(&gw) == 0);
	need(query_refresh(&gw) == 0 && gw.ts > 0);
	atexit(cleanup);
}

/* The features of a connect answer: known names only. */
static void
check_features(const cJSON *result)
{
	const cJSON	*f, *list;

	if (!cJSON_IsObject(result) || json_get(result, "protocol") == NULL)
		return;
	if ((list = json_get(result, "features")) == NULL)
		return;
	need(cJSON_IsArray(list));
	cJSON_ArrayForEach(f, list)
		need(cJSON_IsString(f) && (strcmp(f->valuestring,
		    "diff") == 0 || strcmp(f->valuestring, "resume") == 0));
}

/*
 * A transition's modifications: hashes and QueryUnchanged only with
 * "resume", QueryDiff only with "diff", and in their form.
 */
static void
check_mods(const cJSON *params)
{
	const cJSON	*m, *type, *h;
	size_t		 i;

	cJSON_ArrayForEach(m, json_get(params, "modifications")) {
		type = json_get(m, "type");
		need(cJSON_IsString(type));
		if ((h = json_get(m, "hash")) != NULL) {
			need(granted & GW_FEAT_RESUME);
			need(cJSON_IsString(h) &&
			    strlen(h->valuestring) == DIFF_HASH_LEN);
			for (i = 0; i < DIFF_HASH_LEN; i++)
				need(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789-_",
				    h->valuestring[i]) != NULL);
		}
		if (strcmp(type->valuestring, "QueryUnchanged") == 0)
			need((granted & GW_FEAT_RESUME) && h != NULL);
		if (strcmp(type->valuestring, "QueryDiff") == 0)
			need((granted & GW_FEAT_DIFF) &&
			    cJSON_IsArray(json_get(m, "ops")));
		if (strcmp(type->valuestring, "QueryUpdated") == 0 ||
		    strcmp(type->valuestring, "QueryDiff") == 0)
			need((h != NULL) == ((granted & GW_FEAT_RESUME) != 0));
	}
}

static void
check_error(const cJSON *e)
{
	const cJSON	*data;
	int64_t		 code;

	need(cJSON_IsObject(e));
	need(json_get_int(json_get(e, "code"), -32768, -32000, &code));
	need(cJSON_IsString(json_get(e, "message")));
	data = json_get(e, "data");
	need(cJSON_IsObject(data) && cJSON_IsString(json_get(data, "kind")));
}

/* One JSON-RPC response or notification the server sent. */
static void
check_object(const cJSON *o)
{
	const cJSON	*ver, *id, *res, *err, *method;

	need(cJSON_IsObject(o));
	ver = json_get(o, "jsonrpc");
	need(cJSON_IsString(ver) && strcmp(ver->valuestring, "2.0") == 0);
	method = json_get(o, "method");
	if (method != NULL) {
		need(cJSON_IsString(method) && json_get(o, "id") == NULL &&
		    cJSON_IsObject(json_get(o, "params")));
		if (strcmp(method->valuestring, "tinyvex/transition") == 0)
			check_mods(json_get(o, "params"));
		return;
	}
	id = json_get(o, "id");
	need(id != NULL && (cJSON_IsNull(id) || cJSON_IsString(id) ||
	    cJSON_IsNumber(id)));
	res = json_get(o, "result");
	err = json_get(o, "error");
	need((res == NULL) != (err == NULL));
	if (err != NULL)
		check_error(err);
	else
		check_features(res);
}

static void
check_chunk(const cJSON *params, struct chunks *c)
{
	const cJSON	*tid, *chunk;
	cJSON		*joined;
	enum json_err	 jerr;
	int64_t		 part, total;

	tid = json_get(params, "transitionId");
	chunk = json_get(params, "chunk");
	need(cJSON_IsString(tid) && strlen(tid->valuestring) < sizeof(c->tid));
	need(cJSON_IsString(chunk));
	need(json_get_int(json_get(params, "partNumber"), 0, INT32_MAX,
	    &part));
	need(json_get_int(json_get(params, "totalParts"), 1, INT32_MAX,
	    &total));
	need(part < total);
	if (part == 0) {
		/* The previous chunked transition must have been whole. */
		need(c->next == c->total);
		snprintf(c->tid, sizeof(c->tid), "%s", tid->valuestring);
		c->next = 0;
		c->total = total;
		buf_reset(&c->text);
	}
	need(strcmp(c->tid, tid->valuestring) == 0 && part == c->next &&
	    total == c->total);
	buf_adds(&c->text, chunk->valuestring);
	if (++c->next == c->total) {
		joined = json_parse(c->text.data, c->text.len, JSON_MAX_DEPTH,
		    &jerr);
		need(cJSON_IsObject(joined) &&
		    json_get(joined, "endVersion") != NULL);
		check_mods(joined);
		cJSON_Delete(joined);
	}
}

static void
check_text(const char *p, size_t len, struct chunks *c)
{
	cJSON		*root;
	const cJSON	*m, *method;
	enum json_err	 jerr;

	root = json_parse(p, len, JSON_MAX_DEPTH + 8, &jerr);
	need(root != NULL);
	if (cJSON_IsArray(root)) {
		need(cJSON_GetArraySize(root) > 0);
		cJSON_ArrayForEach(m, root) {
			check_object(m);
			need(json_get(m, "method") == NULL);
		}
	} else {
		check_object(root);
		method = json_get(root, "method");
		if (cJSON_IsString(method) && strncmp(method->valuestring,
		    "tinyvex/transition", 18) == 0)
			need(len <= gw.conf.chunk_bytes);
		if (cJSON_IsString(method) && strcmp(method->valuestring,
		    "tinyvex/transitionChunk") == 0)
			check_chunk(json_get(root, "params"), c);
	}
	cJSON_Delete(root);
}

/* Whole server frames: unmasked, FIN, text or control. */
static void
check_frames(struct buf *rx, struct chunks *c)
{
	const unsigned char	*p;
	uint64_t		 plen;
	size_t			 hlen, i;
	int			 closed = 0;

	for (;;) {
		p = (const unsigned char *)rx->data;
		if (rx->len < 2)
			return;
		need((p[0] & 0x80) != 0 && (p[0] & 0x70) == 0 &&
		    (p[1] & 0x80) == 0);
		plen = p[1] & 0x7f;
		hlen = 2;
		if (plen == 126) {
			if (rx->len < 4)
				return;
			plen = (uint64_t)p[2] << 8 | p[3];
			hlen = 4;
		} else if (plen == 127) {
			if (rx->len < 10)
				return;
			for (plen = 0, i = 2; i < 10; i++)
				plen = plen << 8 | p[i];
			hlen = 10;
		}
		need(plen <= FUZZ_MAX_FRAME);
		if (rx->len - hlen < plen)
			return;
		need(!closed);
		switch (p[0] & 0x0f) {
		case 0x1:
			check_text((const char *)p + hlen, (size_t)plen, c);
			break;
		case 0x8:
			closed = 1;
			/* FALLTHROUGH */
		case 0x9:
		case 0xa:
			need(plen <= 125);
			break;
		default:
			need(0);
		}
		buf_consume(rx, hlen + (size_t)plen);
	}
}

static void
drain(int fd, struct buf *rx, struct chunks *c)
{
	char	 tmp[16384];
	ssize_t	 n;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_add(rx, tmp, (size_t)n);
	check_frames(rx, c);
}

static struct session *
alive(void)
{
	return TAILQ_FIRST(&gw.sessions);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bufferevent	*bev;
	struct session		*s;
	struct chunks		 c;
	struct buf		 rx;
	const char		*msg, *end, *nul;
	uint8_t			 opt = size > 0 ? data[0] : 0;
	int			 sv[2];

	if (gw.base == NULL)
		setup();
	gw.policy.token = opt & 1 ? FUZZ_TOKEN : NULL;
	gw.conf.chunk_bytes = opt & 4 ? FUZZ_SMALL_CHUNK : default_chunk;
	need(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == 0);
	bev = bufferevent_socket_new(gw.base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	need(bev != NULL);
	s = session_new(&gw, bev, (opt & 2) != 0);
	need(s != NULL && alive() == s);
	granted = 0;
	memset(&c, 0, sizeof(c));
	buf_init(&c.text);
	buf_init(&rx);

	msg = size > 0 ? (const char *)data + 1 : (const char *)data;
	end = (const char *)data + size;
	while (msg < end && alive() != NULL) {
		nul = memchr(msg, '\0', (size_t)(end - msg));
		if (nul == NULL)
			nul = end;
		if (utf8_valid(msg, (size_t)(nul - msg)))
			rpc_message(s, msg, (size_t)(nul - msg));
		if (alive() != NULL)
			granted = s->features;
		event_base_loop(gw.base, EVLOOP_NONBLOCK);
		drain(sv[1], &rx, &c);
		if ((opt & 8) && alive() != NULL) {
			commit_change();
			event_base_loop(gw.base, EVLOOP_NONBLOCK);
			drain(sv[1], &rx, &c);
		}
		msg = nul + 1;
	}
	if (alive() != NULL) {
		session_tick(s, mono_us() + FUZZ_LATER_US);
		event_base_loop(gw.base, EVLOOP_NONBLOCK);
		drain(sv[1], &rx, &c);
	}
	if (alive() != NULL)
		session_free(s);
	event_base_loop(gw.base, EVLOOP_NONBLOCK);
	close(sv[1]);
	buf_free(&rx);
	buf_free(&c.text);

	need(gw.nsessions == 0 && TAILQ_EMPTY(&gw.sessions));
	need(gw.nexecs == 0 && TAILQ_EMPTY(&gw.execs));
	need(TAILQ_EMPTY(&gw.dirtyq) && TAILQ_EMPTY(&gw.flushq) &&
	    TAILQ_EMPTY(&gw.heldq));
	need(TAILQ_EMPTY(&gw.up.waiting));
	return 0;
}
