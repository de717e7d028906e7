/*
 * Scenario 5, token streaming.  stream_threads threads each hold
 * stream_history earlier messages and one assistant message that grows to
 * stream_bytes by STREAM_CHUNK-byte patches at STREAM_HZ, each thread
 * from a connection of its own.  stream_clients clients each subscribe to
 * the thread list and to the last STREAM_LIMIT messages of
 * STREAM_FOLLOW threads.  Each patch sets "sk" = thread * STREAM_SK +
 * patch number beside the text, so a client finds in any transition
 * which patches of its threads it shows.  Figures: latency from sending a
 * patch to each following client reading it, bytes received per patch
 * per following client, and the database size after GC over the size of
 * the live documents.  Baseline: the broadcaster relaying to the same
 * clients, at the same rate, a frame carrying only the appended text.
 * The stream runs twice against Tinyvex: to clients that ask for
 * nothing (every patch re-sends the 50 messages), then to clients that
 * asked for "diff" (a patch is an update op with the appended text).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define STREAM_CHUNK		20	/* bytes a patch appends */
#define STREAM_HZ		20	/* patches a second per thread */
#define STREAM_LIMIT		50	/* messages a client query returns */
#define STREAM_FOLLOW		3	/* threads a client follows */
#define STREAM_SK		100000	/* sk = thread * STREAM_SK + k */
#define STREAM_TICK_US		1000	/* timer period; patches catch up */
#define STREAM_AIM_GC		3.0	/* database / live data after GC */
#define STREAM_AIM_BYTES	2	/* diff bytes per patch / baseline */
#define STREAM_AIM_P99		5	/* diff p99 latency / baseline */
#define STREAM_WAIT_US		(120 * 1000000LL)
#define STREAM_SETTLE_US	(10 * 1000000)
#define SK_KEY			"\"sk\":"

static const char schema[] =
    "{\"tables\":{\"messages\":{\"indexes\":{\"by_thread\":"
    "[\"threadId\"]}},\"threads\":{}}}";

/* One streamed message. */
struct streamer {
	struct cl	*c;		/* Tinyvex: its connection */
	struct wsc	*w;		/* baseline: its connection */
	char		 id[DOC_ID_LEN + 1];
	struct buf	 text;
	int		 k;		/* patches sent */
	int64_t		*sent;		/* mono_us of patch k */
};

/* What a client follows and has seen. */
struct follower {
	int		 t[STREAM_FOLLOW];
	int		 last[STREAM_FOLLOW];
	int		 nt;
};

struct stream {
	struct bench		*b;
	int			 nthreads, nclients, maxk;
	struct streamer		*st;
	struct follower		*fo;
	int			*nsub;		/* clients following thread t */
	int			 next;		/* round robin of the timer */
	int			 baseline;
	struct event		*timer;
	struct hist		 h;
	uint64_t		 sent_total;
	int64_t			 t_start;	/* mono_us the stream began */
	double			 doc_only_bytes;	/* changed doc alone */
	struct buf		 msg, val;
};

static void
seen(struct stream *s, struct follower *fo, const char *msg, size_t len,
    int64_t t)
{
	size_t	 from = 0, next;
	int64_t	 v;
	int	 th, k, i, j;

	while ((v = json_find_int(msg, len, SK_KEY, from, &next)) >= 0) {
		from = next;
		th = (int)(v / STREAM_SK);
		k = (int)(v % STREAM_SK);
		for (i = 0; i < fo->nt; i++) {
			if (fo->t[i] != th || k > s->maxk)
				continue;
			for (j = fo->last[i] + 1; j <= k; j++)
				hist_add(&s->h, t - s->st[th].sent[j]);
			if (k > fo->last[i])
				fo->last[i] = k;
		}
	}
}

static void
tv_trans(struct cl *c, void *arg, const char *msg, size_t len, int64_t t)
{
	struct stream	*s = arg;

	seen(s, &s->fo[c->index], msg, len, t);
}

static void
bc_msg(struct wsc *w, void *arg, const char *msg, size_t len, int64_t t)
{
	struct stream	*s = arg;

	seen(s, &s->fo[w->index], msg, len, t);
}

static const struct wsc_ops bc_client_ops = { NULL, bc_msg, NULL };
static const struct wsc_ops quiet_ops = { NULL, NULL, NULL };

/* The next patch of the next thread that has one to send. */
static void
send_one(struct stream *s)
{
	struct streamer	*p = NULL;
	char		 chunk[STREAM_CHUNK + 8];
	int		 th = 0, tries;
	int64_t		 sk;
	size_t		 envelope;

	for (tries = 0; tries < s->nthreads; tries++) {
		th = s->next;
		s->next = (s->next + 1) % s->nthreads;
		p = &s->st[th];
		if (p->k < s->maxk)
			break;
	}
	if (p == NULL || p->k >= s->maxk)
		return;
	p->k++;
	snprintf(chunk, sizeof(chunk), "%05d:tokenabcdefgh ", p->k);
	buf_add(&p->text, chunk, STREAM_CHUNK);
	sk = (int64_t)th * STREAM_SK + p->k;
	buf_reset(&s->msg);
	buf_reset(&s->val);
	if (!s->baseline) {
		buf_printf(&s->msg, "{\"udfPath\":\"db/patch\",\"args\":"
		    "{\"table\":\"messages\",\"id\":\"%s\",\"set\":{\"sk\":%lld,"
		    "\"text\":\"%.*s\"}}}", p->id, (long long)sk,
		    (int)p->text.len, p->text.data);
		/* What the changed document alone would take. */
		buf_printf(&s->val, "{\"_id\":\"%s\",\"_creationTime\":"
		    "1700000000000.123,\"threadId\":\"t%02d\",\"role\":"
		    "\"assistant\",\"sk\":%lld,\"text\":\"%.*s\"}", p->id, th,
		    (long long)sk, (int)p->text.len, p->text.data);
		envelope = s->val.len;
		buf_reset(&s->val);
		transition_like(&s->val, "");
		s->doc_only_bytes += (double)(envelope + s->val.len) *
		    s->nsub[th];
		p->sent[p->k] = mono_us();
		cl_call(p->c, "tinyvex/mutation", s->msg.data, s->msg.len, NULL,
		    NULL);
	} else {
		buf_printf(&s->val, "{\"_id\":\"%s\",\"sk\":%lld,\"append\":"
		    "\"%s\"}", p->id, (long long)sk, chunk);
		buf_printf(&s->msg, "P%d ", th);
		transition_like(&s->msg, s->val.data);
		p->sent[p->k] = mono_us();
		wsc_send(p->w, s->msg.data, s->msg.len);
	}
	s->sent_total++;
}

/*
 * The timer: every patch due by now, threads in turn, so that each thread
 * keeps STREAM_HZ whatever the timer's own precision.
 */
static void
tick(evutil_socket_t fd, short ev, void *arg)
{
	struct stream	*s = arg;
	uint64_t	 due, total = (uint64_t)s->nthreads * (uint64_t)s->maxk;

	(void)fd;
	(void)ev;
	due = (uint64_t)((double)(mono_us() - s->t_start) * STREAM_HZ *
	    s->nthreads / 1e6) + 1;
	if (due > total)
		due = total;
	while (s->sent_total < due)
		send_one(s);
	if (s->sent_total >= total)
		evtimer_del(s->timer);
}

static int
all_sent(void *arg)
{
	struct stream	*s = arg;
	int		 i;

	for (i = 0; i < s->nthreads; i++)
		if (s->st[i].k < s->maxk)
			return 0;
	return 1;
}

static int
all_seen(void *arg)
{
	struct stream	*s = arg;
	int		 i, j;

	for (i = 0; i < s->nclients; i++)
		for (j = 0; j < s->fo[i].nt; j++)
			if (s->fo[i].last[j] < s->maxk)
				return 0;
	return 1;
}

static void
stream_init(struct stream *s, struct bench *b, int baseline)
{
	int	 i, j;

	memset(s, 0, sizeof(*s));
	s->b = b;
	s->baseline = baseline;
	s->nthreads = b->sz.stream_threads;
	s->nclients = b->sz.stream_clients;
	s->maxk = (b->sz.stream_bytes + STREAM_CHUNK - 1) / STREAM_CHUNK;
	s->st = xcalloc((size_t)s->nthreads, sizeof(*s->st));
	s->fo = xcalloc((size_t)s->nclients, sizeof(*s->fo));
	s->nsub = xcalloc((size_t)s->nthreads, sizeof(*s->nsub));
	for (i = 0; i < s->nthreads; i++) {
		buf_init(&s->st[i].text);
		s->st[i].sent = xcalloc((size_t)s->maxk + 1, sizeof(int64_t));
	}
	for (i = 0; i < s->nclients; i++) {
		s->fo[i].nt = s->nthreads < STREAM_FOLLOW ? s->nthreads :
		    STREAM_FOLLOW;
		for (j = 0; j < s->fo[i].nt; j++) {
			s->fo[i].t[j] = (i + j) % s->nthreads;
			s->nsub[s->fo[i].t[j]]++;
		}
	}
	hist_init(&s->h);
	buf_init(&s->msg);
	buf_init(&s->val);
}

static void
stream_free(struct stream *s)
{
	int	 i;

	for (i = 0; i < s->nthreads; i++) {
		buf_free(&s->st[i].text);
		free(s->st[i].sent);
	}
	if (s->timer != NULL)
		event_free(s->timer);
	free(s->st);
	free(s->fo);
	free(s->nsub);
	buf_free(&s->msg);
	buf_free(&s->val);
}

/* Deliveries owed: patches times followers. */
static double
deliveries(struct stream *s)
{
	double	 d = 0;
	int	 i;

	for (i = 0; i < s->nthreads; i++)
		d += (double)s->st[i].k * s->nsub[i];
	return d;
}

static void
run_stream(struct stream *s, struct result *r, const char *phase)
{
	struct timeval	 tv;

	tv.tv_sec = 0;
	tv.tv_usec = STREAM_TICK_US;
	s->t_start = mono_us();
	s->timer = event_new(s->b->base, -1, EV_PERSIST, tick, s);
	evtimer_add(s->timer, &tv);
	tick(-1, EV_TIMEOUT, s);
	bench_wait(s->b, all_sent, s, STREAM_WAIT_US);
	if (bench_wait(s->b, all_seen, s, STREAM_SETTLE_US) == -1)
		res_note(r, "%s: some patches never reached their followers",
		    phase);
}

struct gen_arg {
	int	 nthreads;
};

static void
gen_thread(struct buf *b, int i, void *arg)
{
	(void)arg;
	buf_printf(b, "{\"title\":\"Thread %02d\",\"n\":%d}", i, i);
}

static void
gen_history(struct buf *b, int i, void *arg)
{
	static const char filler[] = "Some earlier words of this "
	    "conversation, long enough to make a message of about two "
	    "hundred bytes once the thread, the role and the number are in.";
	struct gen_arg	*g = arg;

	buf_printf(b, "{\"threadId\":\"t%02d\",\"role\":\"%s\",\"text\":"
	    "\"%d: %s\"}", i % g->nthreads, i / g->nthreads % 2 ?
	    "assistant" : "user", i, filler);
}

static void
gen_stream(struct buf *b, int i, void *arg)
{
	(void)arg;
	buf_printf(b, "{\"threadId\":\"t%02d\",\"role\":\"assistant\","
	    "\"sk\":%d,\"text\":\"\"}", i, i * STREAM_SK);
}

static void
subscribe(struct cl *c, struct follower *fo)
{
	uint32_t	 qids[STREAM_FOLLOW + 1];
	char		*udfs[STREAM_FOLLOW + 1], *args[STREAM_FOLLOW + 1];
	char		 a[STREAM_FOLLOW + 1][200];
	int		 i;

	qids[0] = 0;
	udfs[0] = "db/query";
	snprintf(a[0], sizeof(a[0]), "{\"table\":\"threads\"}");
	args[0] = a[0];
	for (i = 0; i < fo->nt; i++) {
		qids[i + 1] = (uint32_t)i + 1;
		udfs[i + 1] = "db/query";
		snprintf(a[i + 1], sizeof(a[i + 1]), "{\"table\":\"messages\","
		    "\"index\":\"by_thread\",\"range\":[[\"threadId\",\"eq\","
		    "\"t%02d\"]],\"order\":\"desc\",\"limit\":%d}", fo->t[i],
		    STREAM_LIMIT);
		args[i + 1] = a[i + 1];
	}
	cl_subscribe(c, qids, udfs, args, fo->nt + 1, NULL, NULL);
}

/* Database and live sizes after the stream, then after GC. */
static void
gc_figures(struct bench *b, struct result *r, struct stack *s)
{
	char		 db[600], wal[600];
	char		*argv[4];
	struct figure	*f;
	cJSON		*j, *live;
	double		 before, after, data;

	snprintf(db, sizeof(db), "%s/tinyvex.db", s->dir);
	snprintf(wal, sizeof(wal), "%s/tinyvex.db-wal", s->dir);
	j = stack_ctl(b, s, "checkpoint", NULL, NULL);
	cJSON_Delete(j);
	before = (double)(file_size(db) + file_size(wal));
	if ((j = stack_ctl(b, s, "gc", "--keep", "0s")) == NULL)
		res_note(r, "tinyvexctl gc --keep 0s failed");
	cJSON_Delete(j);
	j = stack_ctl(b, s, "checkpoint", NULL, NULL);
	cJSON_Delete(j);
	after = (double)(file_size(db) + file_size(wal));
	argv[0] = b->sql;
	argv[1] = "live";
	argv[2] = db;
	argv[3] = NULL;
	live = run_json(argv, NULL, NULL, NULL);
	data = json_num(live, "json_bytes", NULL);
	res_fig(r, "database bytes before GC", "B", before);
	res_fig(r, "database bytes after GC", "B", after);
	res_fig(r, "live data (current documents' JSON)", "B", data);
	res_fig(r, "revisions after GC", "", json_num(live, "revisions",
	    NULL));
	res_fig(r, "free pages after GC", "", json_num(live, "free_pages",
	    NULL));
	f = res_fig(r, "database after GC / live data", "", after / data);
	fig_aim(f, after / data <= STREAM_AIM_GC, "<= %.0f", STREAM_AIM_GC);
	cJSON_Delete(live);
}

static int
run_tinyvex(struct bench *b, struct result *r, struct stream *s, int diff)
{
	struct stack	 st;
	struct cl	**c = NULL, *setup = NULL;
	struct gen_arg	 g;
	struct pmon	 pm[3];
	char		(*ids)[DOC_ID_LEN + 1] = NULL;
	uint64_t	 bytes = 0;
	cJSON		*j;
	pid_t		 perf;
	int		 i, ret = -1;

	if (stack_start(b, &st, NULL, schema) == -1) {
		res_fail(r, "daemons did not start");
		return -1;
	}
	g.nthreads = s->nthreads;
	ids = xcalloc((size_t)s->nthreads, sizeof(*ids));
	if ((setup = cl_open_wait(b, st.port, NULL, NULL, BENCH_CALL_US)) == NULL ||
	    cl_insert_many(setup, "threads", s->nthreads, gen_thread, NULL,
	    NULL, STREAM_WAIT_US) == -1 ||
	    cl_insert_many(setup, "messages", s->nthreads *
	    b->sz.stream_history, gen_history, &g, NULL, STREAM_WAIT_US) == -1 ||
	    cl_insert_many(setup, "messages", s->nthreads, gen_stream, NULL,
	    ids, STREAM_WAIT_US) == -1) {
		res_fail(r, "cannot insert the threads and messages");
		goto done;
	}
	for (i = 0; i < s->nthreads; i++) {
		strlcpy_tv(s->st[i].id, ids[i], sizeof(s->st[i].id));
		if ((s->st[i].c = cl_open_wait(b, st.port, NULL, NULL,
		    BENCH_CALL_US)) == NULL) {
			res_fail(r, "cannot connect a streamer");
			goto done;
		}
	}
	c = xcalloc((size_t)s->nclients, sizeof(*c));
	b->cl_features = diff ? "[\"diff\"]" : NULL;
	if (cl_open_many(b, st.port, c, s->nclients, 1, tv_trans, s,
	    STREAM_WAIT_US) == -1) {
		b->cl_features = NULL;
		res_fail(r, "cannot open %d clients", s->nclients);
		goto done;
	}
	b->cl_features = NULL;
	for (i = 0; i < s->nclients; i++)
		subscribe(c[i], &s->fo[i]);
	if (cl_wait_subscribed(c, s->nclients, STREAM_WAIT_US) == -1) {
		res_fail(r, "subscriptions not all answered");
		goto done;
	}
	for (i = 0; i < s->nclients; i++)
		c[i]->trans_bytes = 0;
	log_info("streaming: %d threads to %d bytes, %d clients",
	    s->nthreads, b->sz.stream_bytes, s->nclients);
	perf_start(b, "stream-gatewayd", st.gateway, &perf);
	pmon_start(&pm[0], "gatewayd", st.gateway);
	pmon_start(&pm[1], "writerd", st.writer);
	pmon_start(&pm[2], "generator", 0);
	run_stream(s, r, diff ? "tinyvex, diff" : "tinyvex");
	for (i = 0; i < 3; i++)
		pmon_stop(&pm[i]);
	perf_stop(b, "stream-gatewayd", perf);
	res_procs(r, diff ? "streaming, diff clients" : "streaming", pm, 3);
	for (i = 0; i < s->nclients; i++)
		bytes += c[i]->trans_bytes;
	if (diff) {
		res_fig(r, "bytes sent per patch per client, diff", "B",
		    (double)bytes / deliveries(s));
		ret = 0;
		goto done;
	}
	res_fig(r, "bytes sent per patch per client", "B",
	    (double)bytes / deliveries(s));
	res_fig(r, "  if only the changed document were sent", "B",
	    s->doc_only_bytes / deliveries(s));
	res_fig(r, "patches", "", (double)s->sent_total);
	for (i = 0; i < s->nthreads; i++)
		if (s->st[i].c->errors > 0)
			res_note(r, "thread %d: %llu patches failed: %s", i,
			    (unsigned long long)s->st[i].c->errors,
			    s->st[i].c->last_error);
	if ((j = stack_ctl(b, &st, "stats", NULL, NULL)) != NULL &&
	    json_num(j, "writer", "checkpoint_max_us") > 0)
		res_fig(r, "writerd longest checkpoint", "ms",
		    json_num(j, "writer", "checkpoint_max_us") / 1000);
	cJSON_Delete(j);
	gc_figures(b, r, &st);
	ret = 0;
done:
	for (i = 0; c != NULL && i < s->nclients; i++)
		cl_free(c[i]);
	for (i = 0; i < s->nthreads; i++)
		cl_free(s->st[i].c);
	free(c);
	free(ids);
	cl_free(setup);
	stack_remove(b, &st);
	return ret;
}

static int
run_baseline(struct bench *b, struct result *r, struct stream *s,
    double *bytes)
{
	struct wsc	**w = NULL, **pub = NULL;
	struct pmon	 pm[2];
	struct buf	 cmd;
	uint64_t	 total = 0;
	pid_t		 pid;
	int		 port, i, j, ret = -1;

	if (bcast_start(b, &port, &pid) == -1)
		return -1;
	buf_init(&cmd);
	w = xcalloc((size_t)s->nclients, sizeof(*w));
	pub = xcalloc((size_t)s->nthreads, sizeof(*pub));
	if (bc_open_many(b, port, w, s->nclients, &bc_client_ops, s,
	    STREAM_WAIT_US) == -1 || bc_open_many(b, port, pub, s->nthreads,
	    &quiet_ops, NULL, STREAM_WAIT_US) == -1)
		goto done;
	for (i = 0; i < s->nclients; i++) {
		buf_reset(&cmd);
		buf_addc(&cmd, 'S');
		for (j = 0; j < s->fo[i].nt; j++)
			buf_printf(&cmd, "%s%d", j > 0 ? "," : "",
			    s->fo[i].t[j]);
		wsc_send(w[i], cmd.data, cmd.len);
		wsc_send(w[i], "Eok", 3);
	}
	if (bc_wait_msgs(b, w, s->nclients, 1, STREAM_WAIT_US) == -1)
		goto done;
	for (i = 0; i < s->nclients; i++)
		w[i]->bytes_in = 0;
	for (i = 0; i < s->nthreads; i++) {
		s->st[i].w = pub[i];
		snprintf(s->st[i].id, sizeof(s->st[i].id),
		    "0123456789abcdefghjkmnp%03d", i % 1000);
	}
	pmon_start(&pm[0], "tinyvex-bench-bcast", pid);
	pmon_start(&pm[1], "generator", 0);
	run_stream(s, r, "baseline");
	pmon_stop(&pm[0]);
	pmon_stop(&pm[1]);
	res_procs(r, "baseline", pm, 2);
	for (i = 0; i < s->nclients; i++)
		total += w[i]->bytes_in;
	/* Frame headers included, as the Tinyvex side counts payloads. */
	*bytes = (double)total / deliveries(s);
	ret = 0;
done:
	for (i = 0; w != NULL && i < s->nclients; i++)
		wsc_free(w[i]);
	for (i = 0; pub != NULL && i < s->nthreads; i++)
		wsc_free(pub[i]);
	free(w);
	free(pub);
	buf_free(&cmd);
	bcast_stop(pid);
	return ret;
}

int
sc_stream(struct bench *b, struct result *r)
{
	struct stream	 tv, td, bl;
	struct figure	*f;
	double		 bbytes = 0;
	int		 i, ret = -1;

	r->baseline_desc = "tinyvex-bench-bcast relaying to the same clients "
	    "at the same rate a frame carrying only the appended text (a "
	    "transition envelope with the id, sk and the 20 bytes)";
	res_expect(r, "latency p50");
	res_expect(r, "latency p99");
	res_expect(r, "bytes sent per patch per client");
	res_expect(r, "database after GC / live data");
	res_expect(r, "bytes sent per patch per client, diff");
	res_expect(r, "latency p99, diff");
	stream_init(&tv, b, 0);
	stream_init(&td, b, 0);
	stream_init(&bl, b, 1);
	if (run_tinyvex(b, r, &tv, 0) == -1 ||
	    run_tinyvex(b, r, &td, 1) == -1)
		goto done;
	if (run_baseline(b, r, &bl, &bbytes) == -1) {
		res_fail(r, "the broadcaster baseline failed");
		goto done;
	}
	f = res_fig(r, "latency p50", "ms", (double)hist_pct(&tv.h, 50) /
	    1000);
	fig_baseline(f, (double)hist_pct(&bl.h, 50) / 1000);
	f = res_fig(r, "latency p99", "ms", (double)hist_pct(&tv.h, 99) /
	    1000);
	fig_baseline(f, (double)hist_pct(&bl.h, 99) / 1000);
	f = res_fig(r, "latency max", "ms", (double)tv.h.max / 1000);
	fig_baseline(f, (double)bl.h.max / 1000);
	f = res_fig(r, "latency p50, diff", "ms",
	    (double)hist_pct(&td.h, 50) / 1000);
	fig_baseline(f, (double)hist_pct(&bl.h, 50) / 1000);
	f = res_fig(r, "latency p99, diff", "ms",
	    (double)hist_pct(&td.h, 99) / 1000);
	fig_baseline(f, (double)hist_pct(&bl.h, 99) / 1000);
	fig_aim(f, hist_pct(&td.h, 99) <= STREAM_AIM_P99 * hist_pct(&bl.h,
	    99), "<= %dx baseline", STREAM_AIM_P99);
	for (i = 0; i < r->nfig; i++) {
		if (strcmp(r->fig[i].name, "bytes sent per patch per client")
		    == 0)
			fig_baseline(&r->fig[i], bbytes);
		if (strcmp(r->fig[i].name, "bytes sent per patch per client, "
		    "diff") != 0)
			continue;
		fig_baseline(&r->fig[i], bbytes);
		fig_aim(&r->fig[i], r->fig[i].value <= STREAM_AIM_BYTES *
		    bbytes, "<= %dx baseline", STREAM_AIM_BYTES);
	}
	res_fig(r, "latency samples", "", (double)tv.h.count);
	ret = 0;
done:
	stream_free(&td);
	stream_free(&tv);
	stream_free(&bl);
	return ret;
}
