/*
 * Scenario 7, actions.  A provider connection answers every
 * tinyvex/runAction at once with a small value, so what is measured is
 * the routing: caller → gateway → writerd → the provider's gateway →
 * provider and back.  One writerd, two gateways.
 *
 *   round trips: one caller, one call at a time, action_calls calls each:
 *   a tinyvex/action with caller and provider on one gateway, the same
 *   across the two gateways, and a tinyvex/mutation (db/insert) from the
 *   same caller in the same run, as the yardstick;
 *
 *   throughput: action_callers callers (half on each gateway), each with
 *   one call outstanding at a time, over action_providers providers
 *   (half on each gateway, concurrency 64); calls/s over action_secs
 *   after a warm-up.
 *
 * Baseline: the mutation round trip of the same run (a mutation also goes
 * caller → gateway → writerd and back, plus a commit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define ACT_WARM_US		(500 * 1000)
#define ACT_DRAIN_US		(20 * 1000000)
#define ACT_PROVIDER_CONC	"64"	/* concurrency of each provider */
#define ACT_MAX_ID		64	/* bytes of a runAction id */

/* One measured sequence or loop. */
struct astate {
	int		 running;	/* send the next call when answered */
	int		 measuring;
	int		 left;		/* sequential calls still to make */
	const char	*method;
	const char	*params;
	uint64_t	 done, errors;
	struct hist	 lat;
};

static void	send_next(struct cl *, struct astate *);

static void
call_done(struct cl *c, void *arg, const char *msg, size_t len,
    int is_error, int64_t t_sent)
{
	struct astate	*a = arg;

	(void)msg;
	(void)len;
	if (is_error)
		a->errors++;
	else
		a->done++;
	if (a->measuring)
		hist_add(&a->lat, c->ws->t_read - t_sent);
	if (a->left > 0)
		a->left--;
	if (a->running && (a->left > 0 || a->left == -1))
		send_next(c, a);
}

static void
send_next(struct cl *c, struct astate *a)
{
	cl_call(c, a->method, a->params, strlen(a->params), call_done, a);
}

/* A provider: answer each runAction at once. */
static void
provider_request(struct cl *c, void *arg, const char *msg, size_t len,
    int64_t t)
{
	const char	*p, *q;
	char		 out[160];
	int		 n;

	(void)arg;
	(void)t;
	if ((p = memmem(msg, len, "\"id\":\"", 6)) == NULL)
		return;
	p += 6;
	if ((q = memchr(p, '"', (size_t)(msg + len - p))) == NULL ||
	    q - p > ACT_MAX_ID)
		return;
	n = snprintf(out, sizeof(out), "{\"jsonrpc\":\"2.0\",\"id\":\"%.*s\","
	    "\"result\":{\"ok\":true}}", (int)(q - p), p);
	wsc_send(c->ws, out, (size_t)n);
}

static int
seq_done(void *arg)
{
	struct astate	*a = arg;

	return a->left == 0;
}

/* n calls one after another on c; the histogram of their round trips. */
static int
sequence(struct bench *b, struct cl *c, const char *method,
    const char *params, int n, struct hist *out)
{
	struct astate	 a;

	memset(&a, 0, sizeof(a));
	hist_init(&a.lat);
	a.running = 1;
	a.measuring = 1;
	a.left = n;
	a.method = method;
	a.params = params;
	send_next(c, &a);
	if (bench_wait(b, seq_done, &a, ACT_DRAIN_US + (int64_t)n * 100000) ==
	    -1 || a.errors > 0)
		return -1;
	*out = a.lat;
	return 0;
}

static int
provide(struct cl *c)
{
	cJSON	*a;
	int	 ok;

	a = cl_call_wait(c, "tinyvex/provide", "{\"functions\":[\"bench/*\"],"
	    "\"concurrency\":" ACT_PROVIDER_CONC "}", BENCH_CALL_US);
	ok = a != NULL && json_get(a, "result") != NULL;
	cJSON_Delete(a);
	return ok ? 0 : -1;
}

static void
rtt_figs(struct result *r, const char *what, const struct hist *h,
    const struct hist *base)
{
	char		 name[64];
	struct figure	*f;

	snprintf(name, sizeof(name), "%s p50", what);
	f = res_fig(r, name, "ms", (double)hist_pct(h, 50) / 1000);
	if (base != NULL)
		fig_baseline(f, (double)hist_pct(base, 50) / 1000);
	snprintf(name, sizeof(name), "%s p99", what);
	f = res_fig(r, name, "ms", (double)hist_pct(h, 99) / 1000);
	if (base != NULL)
		fig_baseline(f, (double)hist_pct(base, 99) / 1000);
}

int
sc_action(struct bench *b, struct result *r)
{
	struct stack	 s, s2;
	struct cl	**prov = NULL, **call = NULL, *caller1 = NULL,
			*caller2 = NULL;
	struct astate	 loop;
	struct hist	 mut, one, two;
	struct pmon	 pm[4];
	char		 listen[64], log[600], conf[600];
	char		*gargv[10];
	cJSON		*a;
	int		 ncall = b->sz.action_callers;
	int		 nprov = b->sz.action_providers;
	int		 n = b->sz.action_calls, i, ret = -1;
	uint64_t	 done0;
	int64_t		 t0;
	double		 window, rate;

	r->baseline_desc = "the round trip of a db/insert mutation from the "
	    "same caller in the same run";
	res_expect(r, "action round trip p50");
	res_expect(r, "action across gateways p50");
	res_expect(r, "action calls/s");
	memset(&s2, 0, sizeof(s2));
	memset(&loop, 0, sizeof(loop));
	hist_init(&loop.lat);
	if (stack_start(b, &s, NULL, NULL) == -1) {
		res_fail(r, "daemons did not start");
		return -1;
	}
	/* A second gateway on the same state directory. */
	s2 = s;
	s2.port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s2.port);
	snprintf(conf, sizeof(conf), "%s/tinyvex.conf", s.dir);
	snprintf(log, sizeof(log), "%s/gatewayd2.log", s.dir);
	i = 0;
	gargv[i++] = b->gatewayd;
	gargv[i++] = "-d";
	gargv[i++] = "-r";
	gargv[i++] = s.dir;
	gargv[i++] = "-f";
	gargv[i++] = conf;
	gargv[i++] = "-l";
	gargv[i++] = listen;
	gargv[i] = NULL;
	if ((s2.gateway = spawn(b->gatewayd, gargv, log)) == -1 ||
	    stack_ready(b, &s2, BENCH_READY_US) == -1) {
		res_fail(r, "the second gateway did not start");
		goto stop;
	}
	prov = xcalloc((size_t)nprov, sizeof(*prov));
	call = xcalloc((size_t)ncall, sizeof(*call));
	for (i = 0; i < nprov; i++) {
		prov[i] = cl_open_wait(b, i % 2 == 0 ? s.port : s2.port, NULL,
		    NULL, BENCH_OPEN_US);
		if (prov[i] == NULL) {
			res_fail(r, "cannot open provider %d", i);
			goto stop;
		}
		prov[i]->on_request = provider_request;
	}
	/* The round trips: one provider, on the first gateway. */
	if (provide(prov[0]) == -1) {
		res_fail(r, "tinyvex/provide failed");
		goto stop;
	}
	caller1 = cl_open_wait(b, s.port, NULL, NULL, BENCH_OPEN_US);
	caller2 = cl_open_wait(b, s2.port, NULL, NULL, BENCH_OPEN_US);
	if (caller1 == NULL || caller2 == NULL) {
		res_fail(r, "cannot open the callers");
		goto stop;
	}
	log_info("actions: %d sequential calls of each kind", n);
#define ACTION_PARAMS	"{\"udfPath\":\"bench/echo\",\"args\":{\"n\":1}}"
#define INSERT_PARAMS	"{\"udfPath\":\"db/insert\",\"args\":{\"table\":" \
	"\"bench\",\"doc\":{\"n\":1}}}"
	/* Warm up both paths, then measure. */
	if (sequence(b, caller1, "tinyvex/mutation", INSERT_PARAMS, n / 10 + 1,
	    &mut) == -1 || sequence(b, caller1, "tinyvex/action",
	    ACTION_PARAMS, n / 10 + 1, &one) == -1 ||
	    sequence(b, caller1, "tinyvex/mutation", INSERT_PARAMS, n,
	    &mut) == -1 || sequence(b, caller1, "tinyvex/action",
	    ACTION_PARAMS, n, &one) == -1 || sequence(b, caller2,
	    "tinyvex/action", ACTION_PARAMS, n, &two) == -1) {
		res_fail(r, "a sequential call failed");
		goto stop;
	}
	rtt_figs(r, "mutation round trip", &mut, NULL);
	rtt_figs(r, "action round trip", &one, &mut);
	rtt_figs(r, "action across gateways", &two, &mut);

	/* Throughput: every provider, callers on both gateways. */
	for (i = 1; i < nprov; i++)
		if (provide(prov[i]) == -1) {
			res_fail(r, "tinyvex/provide failed");
			goto stop;
		}
	for (i = 0; i < ncall; i++)
		if ((call[i] = cl_open_wait(b, i % 2 == 0 ? s.port : s2.port,
		    NULL, NULL, BENCH_OPEN_US)) == NULL) {
			res_fail(r, "cannot open caller %d", i);
			goto stop;
		}
	log_info("actions: %d callers, %d providers, closed loop", ncall,
	    nprov);
	loop.running = 1;
	loop.left = -1;
	loop.method = "tinyvex/action";
	loop.params = ACTION_PARAMS;
	for (i = 0; i < ncall; i++)
		send_next(call[i], &loop);
	bench_sleep(b, b->tiny ? ACT_WARM_US / 4 : ACT_WARM_US);
	pmon_start(&pm[0], "gatewayd", s.gateway);
	pmon_start(&pm[1], "gatewayd 2", s2.gateway);
	pmon_start(&pm[2], "writerd", s.writer);
	pmon_start(&pm[3], "generator", 0);
	done0 = loop.done;
	t0 = mono_us();
	loop.measuring = 1;
	bench_sleep(b, (int64_t)(b->sz.action_secs * 1e6));
	loop.measuring = 0;
	window = (double)(mono_us() - t0) / 1e6;
	for (i = 0; i < 4; i++)
		pmon_stop(&pm[i]);
	rate = (double)(loop.done - done0) / window;
	loop.running = 0;
	if (cl_wait_answers(call, ncall, ACT_DRAIN_US) == -1)
		res_note(r, "some calls were still unanswered at the end");
	res_fig(r, "action calls/s", "1/s", rate);
	res_fig(r, "action under load p50", "ms",
	    (double)hist_pct(&loop.lat, 50) / 1000);
	res_fig(r, "action under load p99", "ms",
	    (double)hist_pct(&loop.lat, 99) / 1000);
	res_fig(r, "errors", "", (double)loop.errors);
	res_fig(r, "callers", "", ncall);
	res_fig(r, "providers", "", nprov);
	res_procs(r, "closed loop", pm, 4);
	if ((a = stack_ctl(b, &s, "stats", NULL, NULL)) != NULL) {
		res_fig(r, "calls completed (writerd)", "",
		    json_num(a, "actions", "completed"));
		cJSON_Delete(a);
	}
	ret = 0;
stop:
	for (i = 0; prov != NULL && i < nprov; i++)
		cl_free(prov[i]);
	for (i = 0; call != NULL && i < ncall; i++)
		cl_free(call[i]);
	cl_free(caller1);
	cl_free(caller2);
	free(prov);
	free(call);
	if (s2.gateway > 0) {
		kill(s2.gateway, SIGTERM);
		reap(s2.gateway, 5000, NULL, NULL);
	}
	stack_remove(b, &s);
	return ret;
}
