/*
 * Scenario 3, idle connections.  idle_conns connections each hold one
 * subscription (db/get) to a document of its own; the figure is the
 * growth of the gateway's resident memory per connection.  The growth is
 * measured in steps on the same connections (WebSocket open,
 * tinyvex/connect, the own-document subscription, then a second
 * subscription shared by all), and probe.c measures in this process what
 * the libraries allocate per connection.  Baseline: the resident memory
 * per connection of tinyvex-bench-bcast holding as many WebSocket
 * connections, each following one topic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define IDLE_AIM_KIB		4.0	/* RSS growth per connection */
#define IDLE_SETTLE_US		(1000 * 1000)
#define IDLE_OPEN_US		(300 * 1000000LL)

static const struct wsc_ops quiet_ops = { NULL, NULL, NULL };

static void
gen_doc(struct buf *b, int i, void *arg)
{
	(void)arg;
	doc_user(b, (uint64_t)i);
}

struct conn_wait {
	struct cl	**c;
	int		  n;
};

static int
all_connected(void *arg)
{
	struct conn_wait	*w = arg;
	int			 i;

	for (i = 0; i < w->n; i++)
		if (!w->c[i]->connected && !w->c[i]->closed &&
		    w->c[i]->errors == 0)
			return 0;
	return 1;
}

/* RSS of pid in KiB after letting the process settle. */
static uint64_t
rss_after(struct bench *b, pid_t pid)
{
	struct pstat	 ps;

	bench_sleep(b, b->tiny ? IDLE_SETTLE_US / 4 : IDLE_SETTLE_US);
	proc_read(pid, &ps);
	return ps.rss_kb;
}

static double
per_conn(uint64_t a, uint64_t b, int n)
{
	return ((double)b - (double)a) / (double)n;
}

/* The broadcaster's RSS per connection, in KiB; -1 on failure. */
static double
baseline(struct bench *b, struct result *r, int n)
{
	struct wsc	**w;
	struct pmon	 pm[2];
	char		 cmd[16];
	uint64_t	 r0, r1;
	double		 v = -1;
	pid_t		 pid;
	int		 port, i, len;

	if (bcast_start(b, &port, &pid) == -1)
		return -1;
	r0 = rss_after(b, pid);
	pmon_start(&pm[0], "tinyvex-bench-bcast", pid);
	pmon_start(&pm[1], "generator", 0);
	w = xcalloc((size_t)n, sizeof(*w));
	if (bc_open_many(b, port, w, n, &quiet_ops, NULL, IDLE_OPEN_US) == 0) {
		for (i = 0; i < n; i++) {
			len = snprintf(cmd, sizeof(cmd), "S%d",
			    i % BCAST_MAX_TOPICS);
			wsc_send(w[i], cmd, (size_t)len);
			wsc_send(w[i], "Eok", 3);
		}
		if (bc_wait_msgs(b, w, n, 1, IDLE_OPEN_US) == 0) {
			r1 = rss_after(b, pid);
			v = per_conn(r0, r1, n);
			pmon_stop(&pm[0]);
			pmon_stop(&pm[1]);
			res_procs(r, "baseline", pm, 2);
		}
	}
	if (v < 0)
		res_note(r, "the broadcaster baseline failed");
	for (i = 0; i < n; i++)
		wsc_free(w[i]);
	free(w);
	bcast_stop(pid);
	return v;
}

int
sc_idle(struct bench *b, struct result *r)
{
	struct stack		 s;
	struct cl		**c = NULL, *setup = NULL;
	struct conn_wait	 cw;
	struct pstat		 gen0, gen1;
	struct pmon		 pm[3];
	struct figure		*f;
	char			(*ids)[DOC_ID_LEN + 1] = NULL;
	char			 args[160], *udf = "db/get", *argp = args;
	uint32_t		 qid;
	uint64_t		 r0, r1, r2, r3, r4;
	int64_t			 t0;
	double			 sub_secs, base;
	cJSON			*h;
	int			 n = b->sz.idle_conns, i, ret = -1;

	r->baseline_desc = "tinyvex-bench-bcast: RSS growth per WebSocket "
	    "connection following one topic (libevent bufferevent, no "
	    "wslay, no queries)";
	res_expect(r, "RSS per connection");
	res_expect(r, "  WebSocket open");
	res_expect(r, "  tinyvex/connect");
	res_expect(r, "  own-document subscription");
	if (stack_start(b, &s, NULL, NULL) == -1) {
		res_fail(r, "daemons did not start");
		return -1;
	}
	ids = xcalloc((size_t)n, sizeof(*ids));
	if ((setup = cl_open_wait(b, s.port, NULL, NULL, BENCH_CALL_US)) == NULL ||
	    cl_insert_many(setup, "idle", n, gen_doc, NULL, ids,
	    IDLE_OPEN_US) == -1) {
		res_fail(r, "cannot insert %d documents", n);
		goto done;
	}
	cl_free(setup);
	setup = NULL;
	proc_read(0, &gen0);
	r0 = rss_after(b, s.gateway);
	pmon_start(&pm[0], "gatewayd", s.gateway);
	pmon_start(&pm[1], "writerd", s.writer);
	pmon_start(&pm[2], "generator", 0);
	log_info("idle: opening %d connections", n);
	c = xcalloc((size_t)n, sizeof(*c));
	if (cl_open_many(b, s.port, c, n, 0, NULL, NULL, IDLE_OPEN_US) == -1) {
		res_fail(r, "cannot open %d connections", n);
		goto done;
	}
	r1 = rss_after(b, s.gateway);
	for (i = 0; i < n; i++)
		cl_connect(c[i]);
	cw.c = c;
	cw.n = n;
	if (bench_wait(b, all_connected, &cw, IDLE_OPEN_US) == -1) {
		res_fail(r, "tinyvex/connect not answered on every connection");
		goto done;
	}
	r2 = rss_after(b, s.gateway);
	log_info("idle: subscribing");
	t0 = mono_us();
	qid = 0;
	for (i = 0; i < n; i++) {
		snprintf(args, sizeof(args), "{\"table\":\"idle\",\"id\":"
		    "\"%s\"}", ids[i]);
		cl_subscribe(c[i], &qid, &udf, &argp, 1, NULL, NULL);
	}
	if (cl_wait_subscribed(c, n, IDLE_OPEN_US) == -1) {
		res_fail(r, "subscriptions not all answered");
		goto done;
	}
	sub_secs = (double)(mono_us() - t0) / 1e6;
	r3 = rss_after(b, s.gateway);
	proc_read(0, &gen1);
	qid = 1;
	snprintf(args, sizeof(args), "{\"table\":\"idle\",\"id\":\"%s\"}",
	    ids[0]);
	for (i = 0; i < n; i++)
		cl_subscribe(c[i], &qid, &udf, &argp, 1, NULL, NULL);
	if (cl_wait_answers(c, n, IDLE_OPEN_US) == -1) {
		res_fail(r, "shared subscriptions not all answered");
		goto done;
	}
	r4 = rss_after(b, s.gateway);
	for (i = 0; i < 3; i++)
		pmon_stop(&pm[i]);
	res_procs(r, "open, connect, subscribe", pm, 3);
	if ((h = stack_health(&s)) != NULL) {
		res_fig(r, "gateway connections", "",
		    json_num(h, "connections", NULL));
		res_fig(r, "gateway queries", "", json_num(h, "queries", NULL));
		res_fig(r, "gateway shared executions", "",
		    json_num(h, "executions", NULL));
		cJSON_Delete(h);
	}
	log_info("idle: baseline");
	for (i = 0; i < n; i++)
		cl_free(c[i]);
	free(c);
	c = NULL;
	stack_remove(b, &s);
	base = baseline(b, r, n);
	f = res_fig(r, "RSS per connection", "KiB", per_conn(r0, r3, n));
	if (base > 0)
		fig_baseline(f, base);
	fig_aim(f, per_conn(r0, r3, n) <= IDLE_AIM_KIB, "<= %.0f KiB",
	    IDLE_AIM_KIB);
	res_fig(r, "  WebSocket open", "KiB", per_conn(r0, r1, n));
	res_fig(r, "  tinyvex/connect", "KiB", per_conn(r1, r2, n));
	res_fig(r, "  own-document subscription", "KiB", per_conn(r2, r3, n));
	res_fig(r, "  a second, shared subscription", "KiB",
	    per_conn(r3, r4, n));
	res_fig(r, "gateway RSS before", "MiB", (double)r0 / 1024);
	res_fig(r, "gateway RSS with all subscriptions", "MiB",
	    (double)r3 / 1024);
	res_fig(r, "generator RSS per connection", "KiB",
	    per_conn(gen0.rss_kb, gen1.rss_kb, n));
	res_fig(r, "time to subscribe every connection", "s", sub_secs);
	probe_connection(r);
	ret = 0;
	free(ids);
	return ret;
done:
	for (i = 0; c != NULL && i < n; i++)
		cl_free(c[i]);
	free(c);
	cl_free(setup);
	free(ids);
	stack_remove(b, &s);
	return ret;
}
