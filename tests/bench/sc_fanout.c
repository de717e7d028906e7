/*
 * Scenario 2, fan-out latency.  For each subscriber count S, S
 * connections subscribe to db/get of one document, and one more
 * connection patches that document at a fixed rate (50 a second, 10 at
 * 5,000 subscribers and more).  Each patch carries its sequence number;
 * latency runs from the moment the generator sends the patch to the
 * moment each subscriber reads the transition that shows it (a patch that
 * a later transition covers without being shown on its own counts from
 * its own send time).  Baseline: tinyvex-bench-bcast sending frames of
 * the size the wire contract gives such a transition to the same number
 * of connections at the same rate, no queries, no database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define FAN_RATE		50	/* patches a second */
#define FAN_RATE_LARGE		10	/* at FAN_LARGE subscribers and up */
#define FAN_LARGE		5000
#define FAN_AIM_1000_US		10000	/* p99 at 1,000 subscribers */
#define FAN_AIM_5000_US		50000	/* p99 at 5,000 subscribers */
#define FAN_AIM_RATIO		2.0	/* p99 within this of the baseline */
#define FAN_WARM_FRACTION	10	/* first 1/10 of patches not counted */
#define FAN_SETTLE_US		(5 * 1000000)
#define FAN_OPEN_US		(120 * 1000000LL)
#define SEQ_KEY			"\"seq\":"

/* One measured run: Tinyvex or the broadcaster. */
struct fan {
	struct bench	*b;
	int64_t		*sent;		/* mono_us of each patch, by seq */
	int		 nseq;		/* patches to send */
	int		 next;		/* last seq sent */
	int		 warm;		/* seqs below are not counted */
	int		*last;		/* per subscriber: last seq seen */
	int		 nsubs;
	struct hist	 h;
	uint64_t	 coalesced;	/* seqs shown only by a later one */
	uint64_t	 frames, frame_bytes;
	struct event	*timer;
	int64_t		 t_start;	/* mono_us of the first patch */
	int		 rate;		/* patches a second */
	struct cl	*pub;		/* Tinyvex publisher */
	struct wsc	*bpub;		/* broadcaster publisher */
	const char	*doc_id;
	char		 body[DOC_BODY_TARGET];
	struct buf	 msg, val;
};

/* Record what a subscriber saw: every seq up to the one in msg. */
static void
seen(struct fan *f, int sub, const char *msg, size_t len, int64_t t)
{
	int64_t	 k;
	int	 j;

	if ((k = json_find_int(msg, len, SEQ_KEY, 0, NULL)) < 0 ||
	    k > f->nseq)
		return;
	f->frames++;
	f->frame_bytes += len;
	for (j = f->last[sub] + 1; j <= (int)k; j++) {
		if (j >= f->warm && f->sent[j] > 0)
			hist_add(&f->h, t - f->sent[j]);
		if (j < (int)k)
			f->coalesced++;
	}
	if ((int)k > f->last[sub])
		f->last[sub] = (int)k;
}

static void
tv_trans(struct cl *c, void *arg, const char *msg, size_t len, int64_t t)
{
	seen(arg, c->index, msg, len, t);
}

static void
bc_msg(struct wsc *w, void *arg, const char *msg, size_t len, int64_t t)
{
	seen(arg, w->index, msg, len, t);
}

static const struct wsc_ops bc_sub_ops = { NULL, bc_msg, NULL };
static const struct wsc_ops bc_pub_ops = { NULL, NULL, NULL };

static void	tv_send(struct fan *);
static void	bc_send(struct fan *);

static void
fan_init(struct fan *f, struct bench *b, int nsubs, int rate, double secs)
{
	memset(f, 0, sizeof(*f));
	f->b = b;
	f->nseq = (int)(rate * secs);
	if (f->nseq < 2 * FAN_WARM_FRACTION)
		f->nseq = 2 * FAN_WARM_FRACTION;
	f->warm = f->nseq / FAN_WARM_FRACTION + 1;
	f->sent = xcalloc((size_t)f->nseq + 1, sizeof(*f->sent));
	f->nsubs = nsubs;
	f->last = xcalloc((size_t)nsubs, sizeof(*f->last));
	hist_init(&f->h);
	buf_init(&f->msg);
	buf_init(&f->val);
	memset(f->body, 'x', sizeof(f->body) - 1);
	f->body[DOC_BODY_TARGET - 60] = '\0';
}

static void
fan_free(struct fan *f)
{
	if (f->timer != NULL)
		event_free(f->timer);
	free(f->sent);
	free(f->last);
	buf_free(&f->msg);
	buf_free(&f->val);
}

/* How many patches are due by now: the timer catches up if late. */
static int
due(struct fan *f)
{
	int64_t	 n = (mono_us() - f->t_start) * f->rate / 1000000 + 1;

	return n > f->nseq ? f->nseq : (int)n;
}

static void
tv_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct fan	*f = arg;
	int		 n = due(f);

	(void)fd;
	(void)ev;
	while (f->next < n)
		tv_send(f);
	if (f->next >= f->nseq)
		evtimer_del(f->timer);
}

static void
bc_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct fan	*f = arg;
	int		 n = due(f);

	(void)fd;
	(void)ev;
	while (f->next < n)
		bc_send(f);
	if (f->next >= f->nseq)
		evtimer_del(f->timer);
}

static void
tv_send(struct fan *f)
{
	f->next++;
	buf_reset(&f->msg);
	buf_printf(&f->msg, "{\"udfPath\":\"db/patch\",\"args\":{\"table\":"
	    "\"fan\",\"id\":\"%s\",\"set\":{\"seq\":%d}}}", f->doc_id, f->next);
	f->sent[f->next] = mono_us();
	cl_call(f->pub, "tinyvex/mutation", f->msg.data, f->msg.len, NULL,
	    NULL);
}

static void
bc_send(struct fan *f)
{
	f->next++;
	/* The document as Tinyvex stores and sends it. */
	buf_reset(&f->val);
	buf_printf(&f->val, "{\"_id\":\"%s\",\"_creationTime\":"
	    "1700000000000.123,\"seq\":%d,\"body\":\"%s\"}", f->doc_id,
	    f->next, f->body);
	buf_reset(&f->msg);
	buf_adds(&f->msg, "P0 ");
	transition_like(&f->msg, f->val.data);
	f->sent[f->next] = mono_us();
	wsc_send(f->bpub, f->msg.data, f->msg.len);
}

static int
all_sent(void *arg)
{
	struct fan	*f = arg;

	return f->next >= f->nseq;
}

static int
all_seen(void *arg)
{
	struct fan	*f = arg;
	int		 i;

	for (i = 0; i < f->nsubs; i++)
		if (f->last[i] < f->nseq)
			return 0;
	return 1;
}

/* Send every patch at rate, wait for the subscribers to see the last. */
static void
fan_run(struct fan *f, int rate, void (*tick)(evutil_socket_t, short,
    void *), struct result *r, const char *phase)
{
	struct timeval	 tv;
	int64_t		 missing = 0;
	int		 i;

	tv.tv_sec = 0;
	tv.tv_usec = 1000000 / rate;
	f->rate = rate;
	f->t_start = mono_us();
	f->timer = event_new(f->b->base, -1, EV_PERSIST, tick, f);
	evtimer_add(f->timer, &tv);
	tick(-1, EV_TIMEOUT, f);
	bench_wait(f->b, all_sent, f, (int64_t)(f->nseq / rate + 30) *
	    1000000);
	if (bench_wait(f->b, all_seen, f, FAN_SETTLE_US) == -1) {
		for (i = 0; i < f->nsubs; i++)
			missing += f->nseq - f->last[i];
		res_note(r, "%s: %lld patches never seen by their subscribers "
		    "within %d s of the last", phase, (long long)missing,
		    FAN_SETTLE_US / 1000000);
	}
}

/* Tinyvex with nsubs subscribers; 0 or -1. */
static int
run_tinyvex(struct bench *b, struct result *r, int nsubs, int rate,
    struct fan *f)
{
	struct stack	 s;
	struct cl	**c = NULL, *setup = NULL;
	struct pmon	 pm[3];
	struct buf	 doc;
	char		 phase[40], id[DOC_ID_LEN + 1], args[128];
	char		*udf = "db/get", *argp = args;
	uint32_t	 qid = 0;
	pid_t		 perf[2];
	cJSON		*a;
	int		 i, ret = -1;

	snprintf(phase, sizeof(phase), "S=%d tinyvex", nsubs);
	if (stack_start(b, &s, NULL, NULL) == -1) {
		res_fail(r, "daemons did not start");
		return -1;
	}
	buf_init(&doc);
	if ((setup = cl_open_wait(b, s.port, NULL, NULL, BENCH_CALL_US)) == NULL) {
		res_fail(r, "cannot connect");
		goto done;
	}
	buf_printf(&doc, "{\"udfPath\":\"db/insert\",\"args\":{\"table\":"
	    "\"fan\",\"doc\":{\"seq\":0,\"body\":\"%s\"}}}", f->body);
	a = cl_call_wait(setup, "tinyvex/mutation", doc.data, BENCH_CALL_US);
	if (!cJSON_IsString(json_get(json_get(a, "result"), "value"))) {
		cJSON_Delete(a);
		res_fail(r, "cannot insert the document");
		goto done;
	}
	strlcpy_tv(id, json_get(json_get(a, "result"), "value")->valuestring,
	    sizeof(id));
	cJSON_Delete(a);
	f->doc_id = id;
	f->pub = setup;
	c = xcalloc((size_t)nsubs, sizeof(*c));
	if (cl_open_many(b, s.port, c, nsubs, 1, tv_trans, f, FAN_OPEN_US)
	    == -1) {
		res_fail(r, "cannot open %d connections", nsubs);
		goto done;
	}
	snprintf(args, sizeof(args), "{\"table\":\"fan\",\"id\":\"%s\"}", id);
	for (i = 0; i < nsubs; i++)
		cl_subscribe(c[i], &qid, &udf, &argp, 1, NULL, NULL);
	if (cl_wait_subscribed(c, nsubs, FAN_OPEN_US) == -1) {
		res_fail(r, "%d subscriptions not all answered", nsubs);
		goto done;
	}
	log_info("fanout: S=%d, %d patches at %d/s", nsubs, f->nseq, rate);
	snprintf(args, sizeof(args), "fanout-%d-gatewayd", nsubs);
	perf_start(b, args, s.gateway, &perf[0]);
	snprintf(args, sizeof(args), "fanout-%d-generator", nsubs);
	perf_start(b, args, getpid(), &perf[1]);
	pmon_start(&pm[0], "gatewayd", s.gateway);
	pmon_start(&pm[1], "writerd", s.writer);
	pmon_start(&pm[2], "generator", 0);
	fan_run(f, rate, tv_tick, r, phase);
	for (i = 0; i < 3; i++)
		pmon_stop(&pm[i]);
	snprintf(args, sizeof(args), "fanout-%d-gatewayd", nsubs);
	perf_stop(b, args, perf[0]);
	snprintf(args, sizeof(args), "fanout-%d-generator", nsubs);
	perf_stop(b, args, perf[1]);
	res_procs(r, phase, pm, 3);
	if (setup->errors > 0)
		res_note(r, "%s: %llu patches failed: %s", phase,
		    (unsigned long long)setup->errors, setup->last_error);
	ret = 0;
done:
	for (i = 0; c != NULL && i < nsubs; i++)
		cl_free(c[i]);
	free(c);
	cl_free(setup);
	buf_free(&doc);
	stack_remove(b, &s);
	return ret;
}

/* The broadcaster with nsubs subscribers; 0 or -1. */
static int
run_baseline(struct bench *b, struct result *r, int nsubs, int rate,
    struct fan *f)
{
	struct wsc	**w = NULL, *pub[1];
	struct pmon	 pm[2];
	char		 phase[40], tag[64];
	pid_t		 pid, perf[2];
	int		 port, i, ret = -1;

	snprintf(phase, sizeof(phase), "S=%d baseline", nsubs);
	f->doc_id = "0123456789abcdefghjkmnpqrs";
	if (bcast_start(b, &port, &pid) == -1) {
		res_fail(r, "the broadcaster did not start");
		return -1;
	}
	w = xcalloc((size_t)nsubs, sizeof(*w));
	if (bc_open_many(b, port, w, nsubs, &bc_sub_ops, f, FAN_OPEN_US) ==
	    -1 || bc_open_many(b, port, pub, 1, &bc_pub_ops, NULL,
	    FAN_OPEN_US) == -1) {
		res_fail(r, "cannot open %d broadcaster connections", nsubs);
		goto done;
	}
	/* The subscriptions are in once an echo comes back to each. */
	for (i = 0; i < nsubs; i++) {
		wsc_send(w[i], "S0", 2);
		wsc_send(w[i], "Eok", 3);
	}
	if (bc_wait_msgs(b, w, nsubs, 1, FAN_OPEN_US) == -1) {
		res_fail(r, "the broadcaster did not answer");
		goto done;
	}
	f->bpub = pub[0];
	snprintf(tag, sizeof(tag), "fanout-%d-bcast", nsubs);
	perf_start(b, tag, pid, &perf[0]);
	snprintf(tag, sizeof(tag), "fanout-%d-bcast-generator", nsubs);
	perf_start(b, tag, getpid(), &perf[1]);
	pmon_start(&pm[0], "tinyvex-bench-bcast", pid);
	pmon_start(&pm[1], "generator", 0);
	fan_run(f, rate, bc_tick, r, phase);
	pmon_stop(&pm[0]);
	pmon_stop(&pm[1]);
	perf_stop(b, tag, perf[1]);
	snprintf(tag, sizeof(tag), "fanout-%d-bcast", nsubs);
	perf_stop(b, tag, perf[0]);
	res_procs(r, phase, pm, 2);
	wsc_free(pub[0]);
	ret = 0;
done:
	for (i = 0; w != NULL && i < nsubs; i++)
		wsc_free(w[i]);
	free(w);
	bcast_stop(pid);
	return ret;
}

static double
ms(int64_t us)
{
	return (double)us / 1000.0;
}

int
sc_fanout(struct bench *b, struct result *r)
{
	struct fan	 tv, bl;
	struct figure	*f;
	char		 name[64];
	int		 k, nsubs, rate, ok;
	int64_t		 p99, bp99, aim;

	r->baseline_desc = "tinyvex-bench-bcast: libevent, no queries, no "
	    "database; frames of the size the wire contract gives the same "
	    "transition, to the same number of connections, at the same "
	    "rate";
	for (k = 0; k < b->sz.nfanout; k++) {
		nsubs = b->sz.fanout[k];
		res_expect(r, "S=%d p50", nsubs);
		res_expect(r, "S=%d p99", nsubs);
		res_expect(r, "S=%d max", nsubs);
	}
	for (k = 0; k < b->sz.nfanout; k++) {
		nsubs = b->sz.fanout[k];
		rate = nsubs >= FAN_LARGE ? FAN_RATE_LARGE : FAN_RATE;
		fan_init(&tv, b, nsubs, rate, b->sz.fanout_secs);
		fan_init(&bl, b, nsubs, rate, b->sz.fanout_secs);
		if (run_tinyvex(b, r, nsubs, rate, &tv) == -1 ||
		    run_baseline(b, r, nsubs, rate, &bl) == -1) {
			fan_free(&tv);
			fan_free(&bl);
			return -1;
		}
		p99 = hist_pct(&tv.h, 99);
		bp99 = hist_pct(&bl.h, 99);
		snprintf(name, sizeof(name), "S=%d p50", nsubs);
		f = res_fig(r, name, "ms", ms(hist_pct(&tv.h, 50)));
		fig_baseline(f, ms(hist_pct(&bl.h, 50)));
		snprintf(name, sizeof(name), "S=%d p99", nsubs);
		f = res_fig(r, name, "ms", ms(p99));
		fig_baseline(f, ms(bp99));
		aim = nsubs == 1000 ? FAN_AIM_1000_US : nsubs == 5000 ?
		    FAN_AIM_5000_US : 0;
		ok = bp99 > 0 && (double)p99 <= FAN_AIM_RATIO * (double)bp99;
		if (aim > 0)
			fig_aim(f, ok && p99 < aim, "< %lld ms and <= %.0f x "
			    "baseline", (long long)(aim / 1000), FAN_AIM_RATIO);
		else
			fig_aim(f, ok, "<= %.0f x baseline", FAN_AIM_RATIO);
		snprintf(name, sizeof(name), "S=%d max", nsubs);
		f = res_fig(r, name, "ms", ms(tv.h.max));
		fig_baseline(f, ms(bl.h.max));
		snprintf(name, sizeof(name), "S=%d frame bytes", nsubs);
		f = res_fig(r, name, "B", tv.frames > 0 ?
		    (double)tv.frame_bytes / (double)tv.frames : 0);
		fig_baseline(f, bl.frames > 0 ? (double)bl.frame_bytes /
		    (double)bl.frames : 0);
		snprintf(name, sizeof(name), "S=%d samples", nsubs);
		f = res_fig(r, name, "", (double)tv.h.count);
		fig_baseline(f, (double)bl.h.count);
		if (tv.coalesced > 0)
			res_note(r, "S=%d: %llu patch deliveries were folded "
			    "into a later transition (counted from their own "
			    "send time)", nsubs,
			    (unsigned long long)tv.coalesced);
		fan_free(&tv);
		fan_free(&bl);
	}
	return 0;
}
