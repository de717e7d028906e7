/*
 * Scenario 4, invalidation cost.  For each count n, n subscriptions
 * (db/get, INVAL_PER_CONN to a connection) on n distinct documents; one
 * patch to one of them must rerun exactly one query (/healthz "reruns"
 * before and after).  Then inval_commits patches in a closed loop, each
 * to another subscribed document: the gateway's CPU per commit, read from
 * /proc to the nanosecond, must stay within INVAL_AIM_RATIO from the
 * smallest n to the largest.  Baseline: the broadcaster's CPU per
 * message relayed to one of as many connections (a frame of the size of
 * the transition, and an answer back to the sender).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define INVAL_PER_CONN		100	/* subscriptions per connection */
#define INVAL_AIM_RATIO		2.0	/* CPU per commit, largest/smallest */
#define INVAL_WAIT_US		(300 * 1000000LL)
#define INVAL_SETTLE_US		(2 * 1000000)

struct istate {
	struct cl	*pub;
	struct wsc	*bpub;
	char		(*ids)[DOC_ID_LEN + 1];
	int		 n;		/* documents */
	int		 left;		/* patches still to send */
	uint64_t	 i;		/* patches sent */
	uint64_t	 errors;
	int64_t		 t_sent;
	struct hist	 rtt;
	struct buf	 msg, val;
};

static const struct wsc_ops quiet_ops = { NULL, NULL, NULL };

static void	patch_next(struct istate *);

static void
patch_done(struct cl *c, void *arg, const char *msg, size_t len,
    int is_error, int64_t t_sent)
{
	struct istate	*x = arg;

	(void)msg;
	(void)len;
	if (is_error)
		x->errors++;
	hist_add(&x->rtt, c->ws->t_read - t_sent);
	patch_next(x);
}

static void
patch_next(struct istate *x)
{
	if (x->left == 0)
		return;
	x->left--;
	buf_reset(&x->msg);
	buf_printf(&x->msg, "{\"udfPath\":\"db/patch\",\"args\":{\"table\":"
	    "\"inv\",\"id\":\"%s\",\"set\":{\"v\":%llu}}}",
	    x->ids[x->i % (uint64_t)x->n], (unsigned long long)x->i);
	x->i++;
	cl_call(x->pub, "tinyvex/mutation", x->msg.data, x->msg.len,
	    patch_done, x);
}

static int
patches_done(void *arg)
{
	struct istate	*x = arg;

	return x->left == 0 && (x->pub != NULL ? x->pub->npend == 0 ||
	    x->pub->closed : 1);
}

/* The broadcaster's closed loop: the next message when "A" comes. */
static void
bc_next(struct istate *x)
{
	int	 topic;

	if (x->left == 0)
		return;
	x->left--;
	topic = 1 + (int)((x->i % (uint64_t)x->n) / INVAL_PER_CONN);
	buf_reset(&x->val);
	buf_printf(&x->val, "{\"_id\":\"%s\",\"_creationTime\":"
	    "1700000000000.123,\"n\":1,\"v\":%llu}", "0123456789abcdefghjkmnpqrs",
	    (unsigned long long)x->i);
	buf_reset(&x->msg);
	buf_printf(&x->msg, "Q%d ", topic % BCAST_MAX_TOPICS);
	transition_like(&x->msg, x->val.data);
	x->i++;
	x->t_sent = mono_us();
	wsc_send(x->bpub, x->msg.data, x->msg.len);
}

static void
bc_ack(struct wsc *w, void *arg, const char *msg, size_t len, int64_t t)
{
	struct istate	*x = arg;

	(void)w;
	(void)msg;
	(void)len;
	hist_add(&x->rtt, t - x->t_sent);
	bc_next(x);
}

static const struct wsc_ops ack_ops = { NULL, bc_ack, NULL };

static int
bc_done(void *arg)
{
	struct istate	*x = arg;

	return x->left == 0 && x->bpub->msgs_in >= x->i;
}

static void
gen_doc(struct buf *b, int i, void *arg)
{
	(void)arg;
	buf_printf(b, "{\"n\":%d,\"v\":0}", i);
}

static uint64_t
total_transitions(struct cl **c, int n)
{
	uint64_t	 t = 0;
	int		 i;

	for (i = 0; i < n; i++)
		t += c[i]->transitions;
	return t;
}

struct trans_wait {
	struct cl	**c;
	int		  n;
	uint64_t	  want;
};

static int
transitions_in(void *arg)
{
	struct trans_wait	*w = arg;

	return total_transitions(w->c, w->n) >= w->want;
}

static double
reruns(struct stack *s)
{
	cJSON	*h = stack_health(s);
	double	 v = json_num(h, "reruns", NULL);

	cJSON_Delete(h);
	return v;
}

/* Subscribe client c to documents ids[first..first+cnt). */
static void
subscribe_docs(struct cl *c, char (*ids)[DOC_ID_LEN + 1], int first,
    int cnt)
{
	uint32_t	*qids;
	char		**udfs, **args;
	int		 i;

	qids = xcalloc((size_t)cnt, sizeof(*qids));
	udfs = xcalloc((size_t)cnt, sizeof(*udfs));
	args = xcalloc((size_t)cnt, sizeof(*args));
	for (i = 0; i < cnt; i++) {
		qids[i] = (uint32_t)i;
		udfs[i] = "db/get";
		args[i] = xmalloc(96);
		snprintf(args[i], 96, "{\"table\":\"inv\",\"id\":\"%s\"}",
		    ids[first + i]);
	}
	cl_subscribe(c, qids, udfs, args, cnt, NULL, NULL);
	for (i = 0; i < cnt; i++)
		free(args[i]);
	free(qids);
	free(udfs);
	free(args);
}

/*
 * Tinyvex with n subscriptions: *one the reruns of one write, *cpu_us
 * the gateway's CPU per commit.
 */
static int
run_tinyvex(struct bench *b, struct result *r, int n, double *one,
    double *cpu_us)
{
	struct stack		 s;
	struct istate		 x;
	struct cl		**c = NULL, *setup = NULL;
	struct trans_wait	 tw;
	struct pmon		 pm[3];
	struct figure		*f;
	char			 name[64], tag[64], req[160];
	double			 r0, r1, r2;
	pid_t			 perf;
	cJSON			*a;
	int			 nconn = (n + INVAL_PER_CONN - 1) / INVAL_PER_CONN;
	int			 i, k = b->sz.inval_commits, ret = -1;

	memset(&x, 0, sizeof(x));
	hist_init(&x.rtt);
	buf_init(&x.msg);
	buf_init(&x.val);
	x.n = n;
	x.ids = xcalloc((size_t)n, sizeof(*x.ids));
	if (stack_start(b, &s, NULL, NULL) == -1) {
		res_fail(r, "daemons did not start");
		goto out;
	}
	if ((setup = cl_open_wait(b, s.port, NULL, NULL, BENCH_CALL_US)) == NULL ||
	    cl_insert_many(setup, "inv", n, gen_doc, NULL, x.ids,
	    INVAL_WAIT_US) == -1) {
		res_fail(r, "cannot insert %d documents", n);
		goto done;
	}
	c = xcalloc((size_t)nconn, sizeof(*c));
	if (cl_open_many(b, s.port, c, nconn, 1, NULL, NULL, INVAL_WAIT_US)
	    == -1) {
		res_fail(r, "cannot open %d connections", nconn);
		goto done;
	}
	for (i = 0; i < nconn; i++)
		subscribe_docs(c[i], x.ids, i * INVAL_PER_CONN,
		    n - i * INVAL_PER_CONN < INVAL_PER_CONN ?
		    n - i * INVAL_PER_CONN : INVAL_PER_CONN);
	if (cl_wait_subscribed(c, nconn, INVAL_WAIT_US) == -1) {
		res_fail(r, "subscriptions not all answered");
		goto done;
	}
	x.pub = setup;
	/* One write. */
	tw.c = c;
	tw.n = nconn;
	tw.want = total_transitions(c, nconn) + 1;
	r0 = reruns(&s);
	snprintf(req, sizeof(req), "{\"udfPath\":\"db/patch\",\"args\":"
	    "{\"table\":\"inv\",\"id\":\"%s\",\"set\":{\"v\":-1}}}", x.ids[0]);
	a = cl_call_wait(setup, "tinyvex/mutation", req, BENCH_CALL_US);
	if (a == NULL || json_get(a, "result") == NULL) {
		cJSON_Delete(a);
		res_fail(r, "a patch failed");
		goto done;
	}
	cJSON_Delete(a);
	bench_wait(b, transitions_in, &tw, INVAL_SETTLE_US);
	r1 = reruns(&s);
	*one = r1 - r0;
	snprintf(name, sizeof(name), "n=%d reruns for one write", n);
	f = res_fig(r, name, "", *one);
	fig_aim(f, *one == 1, "exactly 1");
	/* The closed loop. */
	log_info("invalidation: n=%d, %d commits", n, k);
	tw.want = total_transitions(c, nconn) + (uint64_t)k;
	snprintf(tag, sizeof(tag), "inval-%d-gatewayd", n);
	perf_start(b, tag, s.gateway, &perf);
	pmon_start(&pm[0], "gatewayd", s.gateway);
	pmon_start(&pm[1], "writerd", s.writer);
	pmon_start(&pm[2], "generator", 0);
	x.left = k;
	patch_next(&x);
	if (bench_wait(b, patches_done, &x, INVAL_WAIT_US) == -1) {
		res_fail(r, "the patches did not finish");
		goto done;
	}
	bench_wait(b, transitions_in, &tw, INVAL_SETTLE_US);
	for (i = 0; i < 3; i++)
		pmon_stop(&pm[i]);
	perf_stop(b, tag, perf);
	r2 = reruns(&s);
	*cpu_us = pmon_cpu_s(&pm[0]) * 1e6 / k;
	snprintf(name, sizeof(name), "n=%d reruns per commit", n);
	res_fig(r, name, "", (r2 - r1) / k);
	snprintf(name, sizeof(name), "n=%d writerd CPU per commit", n);
	res_fig(r, name, "us", pmon_cpu_s(&pm[1]) * 1e6 / k);
	snprintf(name, sizeof(name), "n=%d commit round trip p50", n);
	res_fig(r, name, "us", (double)hist_pct(&x.rtt, 50));
	snprintf(name, sizeof(name), "n=%d transitions sent per commit", n);
	res_fig(r, name, "", (double)(total_transitions(c, nconn) -
	    (tw.want - (uint64_t)k)) / k);
	if (x.errors > 0)
		res_note(r, "n=%d: %llu patches failed: %s", n,
		    (unsigned long long)x.errors, setup->last_error);
	snprintf(name, sizeof(name), "n=%d", n);
	res_procs(r, name, pm, 3);
	ret = 0;
done:
	for (i = 0; c != NULL && i < nconn; i++)
		cl_free(c[i]);
	free(c);
	cl_free(setup);
	stack_remove(b, &s);
out:
	free(x.ids);
	buf_free(&x.msg);
	buf_free(&x.val);
	return ret;
}

/* The broadcaster's CPU per relayed message with n/100 connections. */
static double
run_baseline(struct bench *b, struct result *r, int n)
{
	struct istate	 x;
	struct wsc	**w = NULL, *pub[1] = { NULL };
	struct pmon	 pm[2];
	char		 cmd[16], name[64];
	double		 v = -1;
	pid_t		 pid;
	int		 nconn = (n + INVAL_PER_CONN - 1) / INVAL_PER_CONN;
	int		 port, i, len;

	memset(&x, 0, sizeof(x));
	hist_init(&x.rtt);
	buf_init(&x.msg);
	buf_init(&x.val);
	x.n = n;
	if (bcast_start(b, &port, &pid) == -1)
		goto out;
	w = xcalloc((size_t)nconn, sizeof(*w));
	if (bc_open_many(b, port, w, nconn, &quiet_ops, NULL,
	    INVAL_WAIT_US) == -1 || bc_open_many(b, port, pub, 1, &ack_ops,
	    &x, INVAL_WAIT_US) == -1)
		goto done;
	for (i = 0; i < nconn; i++) {
		len = snprintf(cmd, sizeof(cmd), "S%d",
		    (i + 1) % BCAST_MAX_TOPICS);
		wsc_send(w[i], cmd, (size_t)len);
		wsc_send(w[i], "Eok", 3);
	}
	if (bc_wait_msgs(b, w, nconn, 1, INVAL_WAIT_US) == -1)
		goto done;
	x.bpub = pub[0];
	pmon_start(&pm[0], "tinyvex-bench-bcast", pid);
	pmon_start(&pm[1], "generator", 0);
	x.left = b->sz.inval_commits;
	bc_next(&x);
	if (bench_wait(b, bc_done, &x, INVAL_WAIT_US) == 0) {
		pmon_stop(&pm[0]);
		pmon_stop(&pm[1]);
		v = pmon_cpu_s(&pm[0]) * 1e6 / b->sz.inval_commits;
		snprintf(name, sizeof(name), "n=%d baseline", n);
		res_procs(r, name, pm, 2);
	}
done:
	for (i = 0; w != NULL && i < nconn; i++)
		wsc_free(w[i]);
	free(w);
	wsc_free(pub[0]);
	bcast_stop(pid);
out:
	buf_free(&x.msg);
	buf_free(&x.val);
	if (v < 0)
		res_note(r, "n=%d: the broadcaster baseline failed", n);
	return v;
}

int
sc_inval(struct bench *b, struct result *r)
{
	struct figure	*f;
	char		 name[64];
	double		 one, cpu, base, first = NAN, last = NAN;
	int		 k, n;

	r->baseline_desc = "tinyvex-bench-bcast: CPU per message relayed to "
	    "one of as many connections as Tinyvex had subscribers on, a "
	    "frame of the transition's size, and an answer to the sender";
	for (k = 0; k < b->sz.ninval; k++) {
		res_expect(r, "n=%d reruns for one write", b->sz.inval[k]);
		res_expect(r, "n=%d gateway CPU per commit", b->sz.inval[k]);
	}
	res_expect(r, "gateway CPU per commit, largest n / smallest n");
	for (k = 0; k < b->sz.ninval; k++) {
		n = b->sz.inval[k];
		if (run_tinyvex(b, r, n, &one, &cpu) == -1)
			return -1;
		base = run_baseline(b, r, n);
		snprintf(name, sizeof(name), "n=%d gateway CPU per commit", n);
		f = res_fig(r, name, "us", cpu);
		if (base > 0)
			fig_baseline(f, base);
		if (k == 0)
			first = cpu;
		last = cpu;
	}
	f = res_fig(r, "gateway CPU per commit, largest n / smallest n", "",
	    last / first);
	fig_aim(f, last / first <= INVAL_AIM_RATIO, "<= %.0f",
	    INVAL_AIM_RATIO);
	return 0;
}
