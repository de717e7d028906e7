/*
 * libtinyvex against the real daemons, one scenario per invocation:
 *
 *   test_lib basic URL       subscribe, mutate, read-your-writes, cached
 *                            values, errors as values
 *   test_lib reconnect URL   mutations in flight while the gateway is
 *                            killed (the driver does it when this prints
 *                            KILL, and answers on stdin once a new one
 *                            runs): each applied exactly once, the
 *                            subscriptions resumed
 *   test_lib diff URL SEED   a seeded random stream of writes; every
 *                            update (diffs applied) equals a full read at
 *                            its ts
 *   test_lib chunks URL SEED the same through a gateway whose chunkBytes
 *                            is small: transitions reassembled
 *   test_lib provider URL    a provider written in C, called by another
 *                            context
 *   test_lib pages URL       a paginated subscription: pages loaded,
 *                            writes on them, a reconnect; always equal
 *                            to the whole query
 *
 * Driven by test_lib.py, which starts the daemons.  Prints "ok"/"FAIL"
 * lines and exits 1 on any failure.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "tinyvex.h"
#include "tvx_int.h"

#define WAIT_SECS	30	/* any single wait, generous under ASan */

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

/* A callback's outcome. */
struct result {
	int		 done;
	int		 failed;
	int		 code;
	char		 kind[64];
	char		*value;
	int64_t		 ts;
	char		*data;
};

static void
result_clear(struct result *r)
{
	free(r->value);
	free(r->data);
	memset(r, 0, sizeof(*r));
}

static void
on_result(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct result	*r = arg;

	(void)ctx;
	r->done = 1;
	r->ts = ts;
	if (err != NULL) {
		r->failed = 1;
		r->code = err->code;
		snprintf(r->kind, sizeof(r->kind), "%s", err->kind);
		r->data = err->data ? strdup(err->data) : NULL;
	} else
		r->value = strdup(value);
}

/* A subscription's latest update. */
struct watch {
	int		 updates;
	int		 errors;
	char		*value;
	int64_t		 ts;
	char		 kind[64];
};

static void
on_update(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct watch	*w = arg;

	(void)ctx;
	w->ts = ts;
	if (err != NULL) {
		w->errors++;
		snprintf(w->kind, sizeof(w->kind), "%s", err->kind);
		return;
	}
	w->updates++;
	free(w->value);
	w->value = strdup(value);
}

static void
tick(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
}

/* Run the loop until *flag is non-zero or secs pass; the flag's value. */
static int
wait_for(struct tvx_ctx *ctx, const int *flag, int secs)
{
	struct event	*t;
	struct timeval	 tv = { 0, 20000 };
	int		 n;

	t = event_new(tvx_base(ctx), -1, EV_PERSIST, tick, NULL);
	event_add(t, &tv);
	for (n = 0; !*flag && n < secs * 50; n++)
		event_base_loop(tvx_base(ctx), EVLOOP_ONCE);
	event_free(t);
	return *flag;
}

/* Run the loop for about ms milliseconds. */
static void
spin(struct tvx_ctx *ctx, int ms)
{
	int	 never = 0;
	struct event	*t;
	struct timeval	 tv = { 0, 20000 };
	int		 n;

	t = event_new(tvx_base(ctx), -1, EV_PERSIST, tick, NULL);
	event_add(t, &tv);
	for (n = 0; !never && n < ms / 20; n++)
		event_base_loop(tvx_base(ctx), EVLOOP_ONCE);
	event_free(t);
}

static struct tvx_ctx *
connect_to(const char *url, struct event_base *base, int features)
{
	struct tvx_config	 cf;
	struct tvx_ctx		*ctx;

	memset(&cf, 0, sizeof(cf));
	cf.url = url;
	cf.base = base;
	cf.no_features = !features;
	if ((ctx = tvx_new(&cf)) == NULL) {
		perror("tvx_new");
		exit(1);
	}
	return ctx;
}

static int
sync_call(struct tvx_ctx *ctx, int kind, const char *udf, const char *args,
    int64_t ts, struct result *r)
{
	memset(r, 0, sizeof(*r));
	if ((kind == 'q' ? tvx_query(ctx, udf, args, ts, on_result, r) :
	    kind == 'm' ? tvx_mutation(ctx, udf, args, on_result, r) :
	    tvx_action(ctx, udf, args, on_result, r)) == -1)
		return -1;
	if (!wait_for(ctx, &r->done, WAIT_SECS))
		return -1;
	return r->failed ? -1 : 0;
}

/* Number of elements of a JSON array text; -1 if not one. */
static int
array_len(const char *text)
{
	const char	*why;
	cJSON		*v;
	int		 n;

	if (text == NULL ||
	    (v = tvx_json_parse(text, strlen(text), 64, &why)) == NULL)
		return -1;
	n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
	cJSON_Delete(v);
	return n;
}

/* ---- basic ---- */

struct ryw {
	struct watch	*w;
	int		 done;
	int		 saw_own;	/* the update came before the answer */
	char		 id[64];
};

static void
on_insert(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct ryw	*r = arg;

	(void)ctx;
	(void)ts;
	r->done = 1;
	if (err != NULL || value == NULL)
		return;
	snprintf(r->id, sizeof(r->id), "%s", value);
	r->saw_own = r->w->value != NULL && strstr(r->w->value, value) != NULL;
}

static int
test_basic(const char *url)
{
	struct tvx_ctx		*ctx;
	struct watch		 w1 = { 0 }, w2 = { 0 }, wbad = { 0 };
	struct tvx_sub		*s1, *s2, *sbad;
	struct result		 r;
	struct ryw		 ryw = { 0 };
	struct tvx_stats	 st;
	int			 i, n;

	ctx = connect_to(url, NULL, 1);
	s1 = tvx_subscribe(ctx, "db/query", "{\"table\":\"items\"}", on_update,
	    &w1);
	check(s1 != NULL, "subscribe");
	check(tvx_subscribe(ctx, "db/query", "[1]", on_update, &w1) == NULL,
	    "subscribe refuses args that are no object");
	check(wait_for(ctx, &w1.updates, WAIT_SECS) &&
	    strcmp(w1.value, "[]") == 0, "first update: an empty table");
	ryw.w = &w1;
	for (i = 0; i < 5; i++) {
		char	 args[128];

		memset(&ryw, 0, sizeof(ryw));
		ryw.w = &w1;
		snprintf(args, sizeof(args), "{\"table\":\"items\",\"doc\":"
		    "{\"n\":%d,\"big\":12345678901234}}", i);
		tvx_mutation(ctx, "db/insert", args, on_insert, &ryw);
		wait_for(ctx, &ryw.done, WAIT_SECS);
		check(ryw.saw_own, "the subscription shows a write before "
		    "its answer");
	}
	check(array_len(w1.value) == 5, "five documents subscribed");
	check(strstr(w1.value, "12345678901234") != NULL,
	    "integers printed exactly");
	/* Same query, args in another order: shares the query, cached. */
	s2 = tvx_subscribe(ctx, "db/query", "{ \"table\" : \"items\" }",
	    on_update, &w2);
	check(w2.updates == 0, "a new subscriber's value is not given "
	    "inside tvx_subscribe");
	wait_for(ctx, &w2.updates, WAIT_SECS);
	check(w2.updates == 1 && array_len(w2.value) == 5,
	    "a new subscriber gets the cached value");
	tvx_unsubscribe(s2);
	n = w2.updates;
	sync_call(ctx, 'm', "db/insert", "{\"table\":\"items\",\"doc\":{}}", -1,
	    &r);
	result_clear(&r);
	check(w2.updates == n && array_len(w1.value) == 6,
	    "an unsubscribed callback is not called again");
	/* A query that cannot run: an error value, and it stays. */
	sbad = tvx_subscribe(ctx, "db/query", "{\"table\":\"items\","
	    "\"index\":\"nope\"}", on_update, &wbad);
	wait_for(ctx, &wbad.errors, WAIT_SECS);
	check(wbad.errors == 1 && strcmp(wbad.kind, "NotFound") == 0,
	    "QueryFailed arrives as an error value");
	/* Errors of a mutation, as values. */
	check(sync_call(ctx, 'm', "db/patch", "{\"table\":\"items\","
	    "\"id\":\"nope\",\"set\":{\"a\":1}}", -1, &r) == -1 &&
	    r.code != 0 && r.kind[0] != '\0', "a failed mutation gives code "
	    "and kind");
	printf("     %d %s\n", r.code, r.kind);
	result_clear(&r);
	/* A one-shot query, also at a past ts. */
	check(sync_call(ctx, 'q', "db/query", "{\"table\":\"items\"}", -1,
	    &r) == 0 && array_len(r.value) == 6 && r.ts > 0, "query");
	result_clear(&r);
	check(sync_call(ctx, 'q', "db/query", "{\"table\":\"items\"}",
	    w2.ts, &r) == 0 && array_len(r.value) == 5, "query at a past ts");
	result_clear(&r);
	tvx_stats(ctx, &st);
	check(st.connections == 1 && st.reconnects == 0 && st.mutations == 0,
	    "stats: one connection, nothing in flight");
	tvx_unsubscribe(s1);
	tvx_unsubscribe(sbad);
	spin(ctx, 100);
	free(w1.value);
	free(w2.value);
	free(wbad.value);
	tvx_free(ctx);
	return 0;
}

/* ---- reconnect ---- */

struct states {
	int	 connected;
	int	 disconnected;
};

static void
on_state(struct tvx_ctx *ctx, void *arg, enum tvx_state st,
    const char *reason, int64_t retry)
{
	struct states	*s = arg;

	(void)ctx;
	(void)retry;
	if (st == TVX_CONNECTED)
		s->connected++;
	else if (st == TVX_DISCONNECTED) {
		s->disconnected++;
		printf("     disconnected: %s\n", reason);
	}
}

#define RECONNECT_MUTATIONS	60

static int
test_reconnect(const char *url)
{
	struct tvx_config	 cf;
	struct tvx_ctx		*ctx;
	struct states		 states = { 0 };
	struct watch		 w = { 0 }, still = { 0 };
	struct result		 r[RECONNECT_MUTATIONS], q;
	struct tvx_stats	 st;
	char			 args[128], line[16];
	int			 i, answered = 0, ok = 0, before, waited;

	memset(&cf, 0, sizeof(cf));
	cf.url = url;
	cf.on_state = on_state;
	cf.state_arg = &states;
	ctx = tvx_new(&cf);
	memset(r, 0, sizeof(r));
	sync_call(ctx, 'm', "db/insert", "{\"table\":\"still\",\"doc\":"
	    "{\"a\":1}}", -1, &q);
	result_clear(&q);
	tvx_subscribe(ctx, "db/query", "{\"table\":\"seq\"}", on_update, &w);
	tvx_subscribe(ctx, "db/query", "{\"table\":\"still\"}", on_update,
	    &still);
	wait_for(ctx, &still.updates, WAIT_SECS);
	wait_for(ctx, &w.updates, WAIT_SECS);
	for (i = 0; i < RECONNECT_MUTATIONS; i++) {
		snprintf(args, sizeof(args),
		    "{\"table\":\"seq\",\"doc\":{\"i\":%d}}", i);
		tvx_mutation(ctx, "db/insert", args, on_result, &r[i]);
		if (i == RECONNECT_MUTATIONS / 3) {
			/* Some sent and answered, some in flight: kill. */
			spin(ctx, 20);
			printf("KILL\n");
			fflush(stdout);
			if (fgets(line, sizeof(line), stdin) == NULL)
				return 1;
		}
	}
	before = still.updates;
	for (waited = 0; waited < WAIT_SECS * 10; waited++) {
		answered = ok = 0;
		for (i = 0; i < RECONNECT_MUTATIONS; i++) {
			answered += r[i].done;
			ok += r[i].done && !r[i].failed;
		}
		if (answered == RECONNECT_MUTATIONS)
			break;
		spin(ctx, 100);
	}
	check(answered == RECONNECT_MUTATIONS && ok == RECONNECT_MUTATIONS,
	    "every mutation answered after the restart");
	check(states.disconnected >= 1 && states.connected >= 2,
	    "the loss and the reconnect were reported");
	sync_call(ctx, 'q', "db/query", "{\"table\":\"seq\"}", -1, &q);
	check(array_len(q.value) == RECONNECT_MUTATIONS,
	    "each mutation applied exactly once");
	printf("     %d documents\n", array_len(q.value));
	result_clear(&q);
	for (i = 0; i < 50 && array_len(w.value) != RECONNECT_MUTATIONS; i++)
		spin(ctx, 100);
	check(array_len(w.value) == RECONNECT_MUTATIONS,
	    "the subscription resumed and shows every write");
	tvx_stats(ctx, &st);
	printf("     connections %llu, resent %llu, unchanged %llu, "
	    "resume %d\n", (unsigned long long)st.connections,
	    (unsigned long long)st.resent, (unsigned long long)st.unchanged,
	    st.resume);
	check(st.resent > 0, "mutations in flight were resent");
	if (st.resume) {
		check(st.unchanged >= 1 && still.updates == before,
		    "an unchanged query resumed with its hash, no new update");
	} else
		printf("skip resume: the server did not accept it\n");
	for (i = 0; i < RECONNECT_MUTATIONS; i++)
		result_clear(&r[i]);
	free(w.value);
	free(still.value);
	tvx_free(ctx);
	return 0;
}

/* ---- paginated lists ---- */

struct pagesw {
	int			 updates;
	int			 errors;
	char			 kind[64];
	char			*results;
	enum tvx_page_status	 status;
};

static void
on_pages(struct tvx_ctx *ctx, void *arg, const char *results,
    enum tvx_page_status status, int64_t ts, const struct tvx_error *err)
{
	struct pagesw	*w = arg;

	(void)ctx;
	(void)ts;
	if (err != NULL) {
		w->errors++;
		snprintf(w->kind, sizeof(w->kind), "%s", err->kind);
		return;
	}
	w->updates++;
	w->status = status;
	free(w->results);
	w->results = strdup(results);
}

static void
wait_updates(struct tvx_ctx *ctx, struct pagesw *w, int n)
{
	int	 i;

	for (i = 0; i < WAIT_SECS * 10 && w->updates < n && !w->errors; i++)
		spin(ctx, 100);
}

/* ---- diff ---- */

#define DIFF_DOCS	12
#define DIFF_STEPS	160

/* Stream a token into document id's text, as an LLM answer does. */
static void
stream_token(struct tvx_ctx *ctx, struct watch *w, const char *id)
{
	struct result	 r;
	char		*p, *e, text[256] = "", args[512];

	if (w->value != NULL && (p = strstr(w->value, id)) != NULL &&
	    (p = strstr(p, "\"text\":\"")) != NULL &&
	    (e = strchr(p + 8, '"')) != NULL && e - (p + 8) < 200) {
		memcpy(text, p + 8, (size_t)(e - (p + 8)));
		text[e - (p + 8)] = '\0';
	}
	snprintf(args, sizeof(args), "{\"table\":\"d\",\"id\":%s,"
	    "\"set\":{\"text\":\"%.200s t%ld\"}}", id, text, random() % 10);
	sync_call(ctx, 'm', "db/patch", args, -1, &r);
	result_clear(&r);
}

static int
test_diff(const char *url, unsigned seed, int chunks)
{
	struct tvx_ctx		*ctx;
	struct watch		 w = { 0 }, one = { 0 };
	struct pagesw		 pw = { 0 };
	struct tvx_pages	*pp;
	struct result		 r, full;
	struct tvx_stats	 st;
	char			 ids[DIFF_DOCS][64], args[512], getargs[128];
	int			 i, step, k, op, mismatches = 0, seen;
	int			 pmismatches = 0, paged;

	srandom(seed);
	/* With chunks: no diffs, so that every update is a whole value. */
	ctx = connect_to(url, NULL, !chunks);
	for (i = 0; i < DIFF_DOCS; i++) {
		snprintf(args, sizeof(args), "{\"table\":\"d\",\"doc\":{\"n\":%d,"
		    "\"text\":\"\",\"pad\":\"%0100d\"}}", i, i);
		sync_call(ctx, 'm', "db/insert", args, -1, &r);
		snprintf(ids[i], sizeof(ids[i]), "%s", r.value ? r.value : "\"\"");
		result_clear(&r);
	}
	tvx_subscribe(ctx, "db/query", "{\"table\":\"d\"}", on_update, &w);
	snprintf(getargs, sizeof(getargs), "{\"table\":\"d\",\"id\":%s}",
	    ids[0]);
	tvx_subscribe(ctx, "db/get", getargs, on_update, &one);
	wait_for(ctx, &w.updates, WAIT_SECS);
	wait_for(ctx, &one.updates, WAIT_SECS);
	/* The same table in pages of 4, all loaded: diffs of pages too. */
	pp = tvx_paginate(ctx, "{\"table\":\"d\"}", 4, on_pages, &pw);
	for (i = 0; i < 10; i++) {
		wait_updates(ctx, &pw, pw.updates + 1);
		if (pw.errors || pw.status != TVX_PAGES_CAN_LOAD_MORE)
			break;
		tvx_load_more(pp, 4);
	}
	paged = pw.errors == 0 && pw.status == TVX_PAGES_EXHAUSTED;
	for (step = 0; step < DIFF_STEPS; step++) {
		k = (int)(random() % DIFF_DOCS);
		op = (int)(random() % 6);
		if (k == 0 && op == 4)
			op = 0;	/* keep the db/get target */
		switch (op) {
		case 0:
		case 1:
			stream_token(ctx, &w, ids[k]);
			break;
		case 2:
			snprintf(args, sizeof(args), "{\"table\":\"d\",\"id\":%s,"
			    "\"set\":{\"x\":%ld},\"unset\":[\"y\"]}", ids[k],
			    random() % 100);
			sync_call(ctx, 'm', "db/patch", args, -1, &r);
			result_clear(&r);
			break;
		case 3:
			snprintf(args, sizeof(args), "{\"table\":\"d\",\"id\":%s,"
			    "\"set\":{\"y\":[1,2,{\"z\":%ld}]},\"unset\":[\"x\"]}",
			    ids[k], random() % 100);
			sync_call(ctx, 'm', "db/patch", args, -1, &r);
			result_clear(&r);
			break;
		case 4:
			snprintf(args, sizeof(args), "{\"table\":\"d\",\"id\":%s}",
			    ids[k]);
			sync_call(ctx, 'm', "db/delete", args, -1, &r);
			result_clear(&r);
			snprintf(args, sizeof(args), "{\"table\":\"d\",\"doc\":"
			    "{\"n\":%d,\"text\":\"again\"}}", k);
			sync_call(ctx, 'm', "db/insert", args, -1, &r);
			if (r.value != NULL)
				snprintf(ids[k], sizeof(ids[k]), "%s", r.value);
			result_clear(&r);
			break;
		default:
			snprintf(args, sizeof(args), "{\"table\":\"d\",\"id\":%s,"
			    "\"doc\":{\"n\":%d,\"text\":\"replaced\"}}", ids[k], k);
			sync_call(ctx, 'm', "db/replace", args, -1, &r);
			result_clear(&r);
			break;
		}
		/* The update already arrived: compare with a full read. */
		sync_call(ctx, 'q', "db/query", "{\"table\":\"d\"}", w.ts, &full);
		if (paged && (full.value == NULL || pw.results == NULL ||
		    strcmp(full.value, pw.results) != 0)) {
			if (pmismatches++ < 2)
				printf("     step %d op %d:\n pages %s\n full  %s\n",
				    step, op, pw.results, full.value);
		}
		if (full.value == NULL || w.value == NULL ||
		    strcmp(full.value, w.value) != 0) {
			mismatches++;
			if (mismatches < 3)
				printf("     step %d op %d:\n held %s\n full %s\n",
				    step, op, w.value, full.value);
		}
		result_clear(&full);
		sync_call(ctx, 'q', "db/get", getargs, one.ts, &full);
		if (full.value == NULL || one.value == NULL ||
		    strcmp(full.value, one.value) != 0)
			mismatches++;
		result_clear(&full);
	}
	tvx_stats(ctx, &st);
	seen = w.updates;
	printf("     %d updates, %llu diffs applied, diff accepted %d, "
	    "%llu chunked\n", seen, (unsigned long long)st.diffs, st.diff,
	    (unsigned long long)st.chunked);
	if (chunks)
		check(st.chunked > 0, "transitions came in chunks");
	check(mismatches == 0, "every update equals a full read at its ts");
	if (paged)
		check(pmismatches == 0, "the pages, concatenated, equal the "
		    "full read at every step");
	else
		printf("skip pages: the server has no db/paginate\n");
	tvx_pages_free(pp);
	free(pw.results);
	check(seen >= DIFF_STEPS / 2, "updates arrived");
	if (st.diff)
		check(st.diffs > 0, "diffs were applied");
	else if (!chunks)
		printf("skip diffs: the server did not accept them\n");
	free(w.value);
	free(one.value);
	tvx_free(ctx);
	return 0;
}

/* ---- provider ---- */

struct prov {
	struct tvx_ctx	*ctx;
	int		 calls;
	int		 refused;
	struct tvx_call	*pending;
	struct result	 write;
};

static void
prov_state(struct tvx_ctx *ctx, void *arg, enum tvx_state st,
    const char *reason, int64_t retry)
{
	struct prov	*p = arg;

	(void)ctx;
	(void)retry;
	if (st == TVX_CONNECTED && reason != NULL) {
		printf("     %s\n", reason);
		p->refused = 1;
	}
}

static void
prov_wrote(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct prov	*p = arg;
	char		 out[128];

	(void)ctx;
	(void)ts;
	if (err != NULL) {
		tvx_call_fail(p->pending, "write failed", NULL);
		return;
	}
	snprintf(out, sizeof(out), "{\"wrote\":%s}", value);
	tvx_call_return(p->pending, out);
	p->pending = NULL;
}

static void
prov_handler(struct tvx_ctx *ctx, void *arg, struct tvx_call *call,
    const char *udf, const char *args)
{
	struct prov	*p = arg;
	char		 out[512];

	p->calls++;
	if (strcmp(udf, "ctest/echo") == 0) {
		snprintf(out, sizeof(out), "{\"args\":%s,\"n\":%d}", args,
		    p->calls);
		tvx_call_return(call, out);
	} else if (strcmp(udf, "ctest/fail") == 0)
		tvx_call_fail(call, "nope", "{\"why\":42}");
	else if (strcmp(udf, "ctest/write") == 0) {
		/* Answer later, after a write on the provider's connection. */
		p->pending = call;
		tvx_mutation(ctx, "db/insert", "{\"table\":\"pw\",\"doc\":"
		    "{\"by\":\"provider\"}}", prov_wrote, p);
	} else
		tvx_call_fail(call, "unknown", NULL);
}

static int
test_provider(const char *url)
{
	struct event_base	*base = event_base_new();
	struct tvx_config	 cf;
	struct tvx_ctx		*pctx, *cctx;
	struct prov		 p = { 0 };
	struct watch		 w = { 0 };
	struct result		 r;
	int			 connected = 0;

	memset(&cf, 0, sizeof(cf));
	cf.url = url;
	cf.base = base;
	cf.on_state = prov_state;
	cf.state_arg = &p;
	pctx = tvx_new(&cf);
	p.ctx = pctx;
	check(tvx_provide(pctx, "ctest/*", 4, prov_handler, NULL, &p) == 0,
	    "provide");
	cctx = connect_to(url, base, 1);
	tvx_subscribe(cctx, "db/query", "{\"table\":\"pw\"}", on_update, &w);
	wait_for(cctx, &w.updates, WAIT_SECS);
	(void)connected;
	spin(cctx, 300);
	if (p.refused) {
		printf("skip provider: the server refused tinyvex/provide\n");
		goto out;
	}
	check(sync_call(cctx, 'a', "ctest/echo", "{\"x\":[1,2]}", -1, &r) == 0
	    && strstr(r.value, "\"args\":{\"x\":[1,2]}") != NULL,
	    "an action answered by a C provider");
	result_clear(&r);
	check(sync_call(cctx, 'a', "ctest/fail", "{}", -1, &r) == -1 &&
	    r.code == TVX_ERR_ACTION_FAILED && r.data != NULL &&
	    strstr(r.data, "42") != NULL, "a failed call is ActionFailed "
	    "with the provider's data");
	printf("     %d %s %s\n", r.code, r.kind, r.data ? r.data : "-");
	result_clear(&r);
	check(sync_call(cctx, 'a', "ctest/write", "{}", -1, &r) == 0 &&
	    array_len(w.value) == 1, "the provider's write shows before "
	    "the action's answer");
	result_clear(&r);
	check(sync_call(cctx, 'a', "other/x", "{}", -1, &r) == -1 &&
	    r.code == TVX_ERR_NOT_FOUND, "no provider: NotFound");
	result_clear(&r);
out:
	free(w.value);
	tvx_free(cctx);
	tvx_free(pctx);
	event_base_free(base);
	return 0;
}

/* ---- pages ---- */

/* The pages equal the whole query now. */
static int
pages_whole(struct tvx_ctx *ctx, struct pagesw *w)
{
	struct result	 r;
	int		 ok;

	sync_call(ctx, 'q', "db/query", "{\"table\":\"pg\"}", -1, &r);
	ok = r.value != NULL && w->results != NULL &&
	    strcmp(r.value, w->results) == 0;
	if (!ok)
		printf("     pages %s\n     whole %s\n", w->results, r.value);
	result_clear(&r);
	return ok;
}

static int
test_pages(const char *url)
{
	struct tvx_ctx		*ctx;
	struct tvx_pages	*pp;
	struct pagesw		 w = { 0 };
	struct result		 r;
	struct tvx_stats	 st;
	char			 args[128], first[64] = "";
	int			 i, n;

	ctx = connect_to(url, NULL, 1);
	for (i = 0; i < 25; i++) {
		snprintf(args, sizeof(args), "{\"table\":\"pg\",\"doc\":"
		    "{\"i\":%d}}", i);
		sync_call(ctx, 'm', "db/insert", args, -1, &r);
		if (i == 12 && r.value != NULL)
			snprintf(first, sizeof(first), "%s", r.value);
		result_clear(&r);
	}
	pp = tvx_paginate(ctx, "{\"table\":\"pg\"}", 10, on_pages, &w);
	check(pp != NULL, "paginate");
	check(tvx_paginate(ctx, "{\"table\":\"pg\",\"cursor\":null}", 10,
	    on_pages, &w) == NULL, "paginate refuses a cursor in its args");
	wait_updates(ctx, &w, 1);
	if (w.errors && strcmp(w.kind, "NotFound") == 0) {
		printf("skip pages: the server has no db/paginate\n");
		goto out;
	}
	check(array_len(w.results) == 10 &&
	    w.status == TVX_PAGES_CAN_LOAD_MORE, "the first page: 10, more");
	n = w.updates;
	check(tvx_load_more(pp, 10) == 0, "load more");
	wait_updates(ctx, &w, n + 1);
	n = w.updates;
	check(array_len(w.results) == 20 && tvx_load_more(pp, 10) == 0,
	    "a second page");
	wait_updates(ctx, &w, n + 1);
	check(array_len(w.results) == 25 && w.status == TVX_PAGES_EXHAUSTED &&
	    pages_whole(ctx, &w), "the last page: exhausted, the whole "
	    "table");
	check(tvx_load_more(pp, 10) == -1, "no more after the last page");
	/* Writes: the last page grows, a page loses a document. */
	sync_call(ctx, 'm', "db/insert", "{\"table\":\"pg\",\"doc\":"
	    "{\"i\":100}}", -1, &r);
	result_clear(&r);
	snprintf(args, sizeof(args), "{\"table\":\"pg\",\"id\":%s}", first);
	sync_call(ctx, 'm', "db/delete", args, -1, &r);
	result_clear(&r);
	check(array_len(w.results) == 25 && pages_whole(ctx, &w),
	    "after an insert and a delete: no gap, no overlap");
	/* A reconnect: pages re-added with their ends, values kept. */
	n = w.updates;
	tvx_reconnect(ctx);
	spin(ctx, 500);
	for (i = 0; i < 50 && tvx_state(ctx) != TVX_CONNECTED; i++)
		spin(ctx, 100);
	spin(ctx, 300);
	tvx_stats(ctx, &st);
	check(pages_whole(ctx, &w) && w.errors == 0,
	    "after a reconnect: the same pages");
	printf("     %d updates over the reconnect, %llu unchanged\n",
	    w.updates - n, (unsigned long long)st.unchanged);
	sync_call(ctx, 'm', "db/insert", "{\"table\":\"pg\",\"doc\":"
	    "{\"i\":101}}", -1, &r);
	result_clear(&r);
	check(array_len(w.results) == 26 && pages_whole(ctx, &w),
	    "after the reconnect the pages follow writes");
out:
	tvx_pages_free(pp);
	spin(ctx, 100);
	free(w.results);
	tvx_free(ctx);
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: test_lib basic|reconnect|diff|chunks|"
		    "provider URL [SEED]\n");
		return 2;
	}
	if (strcmp(argv[1], "basic") == 0)
		test_basic(argv[2]);
	else if (strcmp(argv[1], "reconnect") == 0)
		test_reconnect(argv[2]);
	else if (strcmp(argv[1], "diff") == 0)
		test_diff(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 1, 0);
	else if (strcmp(argv[1], "chunks") == 0)
		test_diff(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 1, 1);
	else if (strcmp(argv[1], "provider") == 0)
		test_provider(argv[2]);
	else if (strcmp(argv[1], "pages") == 0)
		test_pages(argv[2]);
	else
		return 2;
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
