/*
 * Scenario 1, write throughput.  write_conns connections each run
 * db/insert of a document of about DOC_BODY_TARGET bytes in a closed loop
 * (the next insert leaves when the answer to the last has come); the
 * figure is acknowledged mutations per second over write_secs after a
 * warm-up.  Then the same connections send db/batch of WRITE_BATCH_OPS
 * inserts each, closed loop: rows/s.  Baseline: tinyvex-bench-sql
 * inserting the same rows straight into SQLite, 1,000 documents a
 * transaction, in the same run, with ids that grow with each insert (as
 * Tinyvex's time-ordered ids do); the random-id baseline is measured
 * beside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define WRITE_AIM_RATE		50000.0	/* acknowledged mutations/s */
#define WRITE_AIM_RATIO		0.5	/* of the baseline */
#define WRITE_BATCH_OPS		100	/* inserts per db/batch */
#define WRITE_BATCH_AIM_RATIO	0.7	/* batch rows/s of the baseline */
#define WRITE_WARM_US		(1000 * 1000)
#define WRITE_DRAIN_US		(20 * 1000000)
#define WRITE_BASE_CACHE	"65536"	/* KiB: the baseline's page cache */

struct wstate {
	int		 running;
	int		 measuring;
	int		 batch;		/* ops per mutation; 0: db/insert */
	uint64_t	 acked, errors;
	uint64_t	 next_doc;
	struct hist	 lat;
	struct buf	 msg;
};

static void	send_insert(struct cl *, struct wstate *);

static void
insert_done(struct cl *c, void *arg, const char *msg, size_t len,
    int is_error, int64_t t_sent)
{
	struct wstate	*w = arg;

	(void)msg;
	(void)len;
	if (is_error)
		w->errors++;
	else
		w->acked++;
	if (w->measuring)
		hist_add(&w->lat, c->ws->t_read - t_sent);
	if (w->running)
		send_insert(c, w);
}

static void
send_insert(struct cl *c, struct wstate *w)
{
	int	 i;

	buf_reset(&w->msg);
	if (w->batch > 0) {
		buf_adds(&w->msg, "{\"udfPath\":\"db/batch\",\"args\":"
		    "{\"ops\":[");
		for (i = 0; i < w->batch; i++) {
			if (i > 0)
				buf_addc(&w->msg, ',');
			buf_adds(&w->msg, "{\"op\":\"insert\",\"table\":"
			    "\"bench\",\"doc\":");
			doc_user(&w->msg, w->next_doc++);
			buf_addc(&w->msg, '}');
		}
		buf_adds(&w->msg, "]}}");
	} else {
		buf_adds(&w->msg, "{\"udfPath\":\"db/insert\",\"args\":"
		    "{\"table\":\"bench\",\"doc\":");
		doc_user(&w->msg, w->next_doc++);
		buf_adds(&w->msg, "}}");
	}
	cl_call(c, "tinyvex/mutation", w->msg.data, w->msg.len, insert_done,
	    w);
}

/*
 * The SQLite baseline: rows per second, or -1.  With ordered, the ids
 * grow with each insert (what time-ordered ids would give).
 */
static double
baseline(struct bench *b, struct result *r, int ordered)
{
	char		 dir[512], rows[32];
	char		*argv[7];
	cJSON		*j;
	double		 secs, cpu, rate = -1;
	uint64_t	 rss;
	struct proc_fig	*p;

	snprintf(dir, sizeof(dir), "%s/tinyvex-bench-XXXXXX", b->tmp);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(rows, sizeof(rows), "%d", b->sz.write_rows);
	argv[0] = b->sql;
	argv[1] = "baseline";
	argv[2] = dir;
	argv[3] = rows;
	argv[4] = ordered ? WRITE_BASE_CACHE : NULL;
	argv[5] = ordered ? "ordered" : NULL;
	argv[6] = NULL;
	j = run_json(argv, &secs, &cpu, &rss);
	if (j != NULL && cJSON_IsNumber(json_get(j, "rows_per_s")))
		rate = json_get(j, "rows_per_s")->valuedouble;
	if (j != NULL && r->nprocs < BENCH_MAX_PROCS) {
		p = &r->procs[r->nprocs++];
		memset(p, 0, sizeof(*p));
		strlcpy_tv(p->phase, ordered ? "baseline, ordered ids" :
		    "baseline", sizeof(p->phase));
		strlcpy_tv(p->name, "tinyvex-bench-sql", sizeof(p->name));
		p->secs = secs;
		p->cpu_s = cpu;
		p->cpu_pct = 100 * cpu / secs;
		p->hwm_mb = p->rss_mb = (double)rss / 1024.0;
	}
	cJSON_Delete(j);
	rm_tree(dir);
	return rate;
}

/*
 * One closed-loop window on every connection: warm up, measure, drain.
 * The acknowledged mutations per second, or -1.
 */
static double
closed_loop(struct bench *b, struct result *r, struct stack *s,
    struct cl **c, int n, struct wstate *w, const char *phase,
    const char *perfname)
{
	struct pmon	 pm[3];
	pid_t		 perf[2];
	char		 pname[64];
	uint64_t	 acked0;
	double		 window;
	int64_t		 t0;
	int		 i;

	w->running = 1;
	for (i = 0; i < n; i++)
		send_insert(c[i], w);
	bench_sleep(b, b->tiny ? WRITE_WARM_US / 4 : WRITE_WARM_US);
	snprintf(pname, sizeof(pname), "%s-gatewayd", perfname);
	perf_start(b, pname, s->gateway, &perf[0]);
	snprintf(pname, sizeof(pname), "%s-writerd", perfname);
	perf_start(b, pname, s->writer, &perf[1]);
	pmon_start(&pm[0], "gatewayd", s->gateway);
	pmon_start(&pm[1], "writerd", s->writer);
	pmon_start(&pm[2], "generator", 0);
	acked0 = w->acked;
	t0 = mono_us();
	w->measuring = 1;
	bench_sleep(b, (int64_t)(b->sz.write_secs * 1e6));
	w->measuring = 0;
	window = (double)(mono_us() - t0) / 1e6;
	for (i = 0; i < 3; i++)
		pmon_stop(&pm[i]);
	snprintf(pname, sizeof(pname), "%s-gatewayd", perfname);
	perf_stop(b, pname, perf[0]);
	snprintf(pname, sizeof(pname), "%s-writerd", perfname);
	perf_stop(b, pname, perf[1]);
	w->running = 0;
	if (cl_wait_answers(c, n, WRITE_DRAIN_US) == -1)
		res_note(r, "%s: some mutations were still unanswered at the "
		    "end", phase);
	res_procs(r, phase, pm, 3);
	return (double)(w->acked - acked0) / window;
}

int
sc_write(struct bench *b, struct result *r)
{
	struct stack	 s;
	struct wstate	 w;
	struct cl	**c = NULL;
	struct figure	*f;
	cJSON		*a, *st;
	double		 base, rbase, rate, brate;
	uint64_t	 err0, commits0 = 0, muts0 = 0;
	int		 n = b->sz.write_conns, i, ret = -1;

	r->baseline_desc = "tinyvex-bench-sql: the rows of each insert (log, "
	    "current document, 2 index log entries, 2 current index "
	    "entries) straight into SQLite, prepared statements, 1,000 "
	    "documents a transaction, ids that grow with each insert (as "
	    "time-ordered ids do), one process";
	res_expect(r, "acknowledged mutations/s");
	res_expect(r, "insert round trip p50");
	res_expect(r, "insert round trip p99");
	res_expect(r, "db/batch rows/s");
	memset(&w, 0, sizeof(w));
	hist_init(&w.lat);
	buf_init(&w.msg);
	log_info("write: baselines, %d rows", b->sz.write_rows);
	if ((base = baseline(b, r, 1)) <= 0) {
		res_fail(r, "the SQLite baseline failed");
		goto done;
	}
	rbase = baseline(b, r, 0);
	if (stack_start(b, &s, NULL, NULL) == -1) {
		res_fail(r, "daemons did not start");
		goto done;
	}
	c = xcalloc((size_t)n, sizeof(*c));
	if (cl_open_many(b, s.port, c, n, 1, NULL, NULL, BENCH_OPEN_US) == -1) {
		res_fail(r, "cannot open %d connections", n);
		goto stop;
	}
	/* The first insert creates the table. */
	a = cl_call_wait(c[0], "tinyvex/mutation", "{\"udfPath\":\"db/insert\","
	    "\"args\":{\"table\":\"bench\",\"doc\":{\"first\":true}}}",
	    BENCH_CALL_US);
	if (a == NULL || json_get(a, "result") == NULL) {
		cJSON_Delete(a);
		res_fail(r, "the first insert failed");
		goto stop;
	}
	cJSON_Delete(a);
	log_info("write: %d connections, closed loop", n);
	if ((st = stack_ctl(b, &s, "stats", NULL, NULL)) != NULL) {
		commits0 = (uint64_t)json_num(st, "writer", "commits");
		muts0 = (uint64_t)json_num(st, "writer", "mutations");
		cJSON_Delete(st);
	}
	err0 = w.errors;
	rate = closed_loop(b, r, &s, c, n, &w, "closed loop", "write");
	if ((st = stack_ctl(b, &s, "stats", NULL, NULL)) != NULL) {
		double	 cm = json_num(st, "writer", "commits") -
		    (double)commits0;
		double	 mu = json_num(st, "writer", "mutations") -
		    (double)muts0;

		if (cm > 0)
			res_fig(r, "mutations per group commit", "", mu / cm);
		if (json_num(st, "writer", "checkpoint_max_us") > 0)
			res_fig(r, "writerd longest checkpoint", "ms",
			    json_num(st, "writer", "checkpoint_max_us") / 1000);
		cJSON_Delete(st);
	}
	f = res_fig(r, "acknowledged mutations/s", "1/s", rate);
	fig_baseline(f, base);
	fig_aim(f, rate >= WRITE_AIM_RATE && rate / base >= WRITE_AIM_RATIO,
	    ">= %.0f/s and >= %.2f x baseline", WRITE_AIM_RATE,
	    WRITE_AIM_RATIO);
	res_fig(r, "insert round trip p50", "ms",
	    (double)hist_pct(&w.lat, 50) / 1000);
	res_fig(r, "insert round trip p99", "ms",
	    (double)hist_pct(&w.lat, 99) / 1000);
	res_fig(r, "insert round trip max", "ms", (double)w.lat.max / 1000);
	if (rbase > 0) {
		f = res_fig(r, "mutations/s against random-id baseline",
		    "1/s", rate);
		fig_baseline(f, rbase);
	}

	log_info("write: %d connections, db/batch of %d inserts", n,
	    WRITE_BATCH_OPS);
	hist_init(&w.lat);
	w.batch = WRITE_BATCH_OPS;
	brate = closed_loop(b, r, &s, c, n, &w, "db/batch closed loop",
	    "batch") * WRITE_BATCH_OPS;
	f = res_fig(r, "db/batch rows/s", "1/s", brate);
	fig_baseline(f, base);
	fig_aim(f, brate / base >= WRITE_BATCH_AIM_RATIO,
	    ">= %.2f x baseline", WRITE_BATCH_AIM_RATIO);
	res_fig(r, "db/batch round trip p50", "ms",
	    (double)hist_pct(&w.lat, 50) / 1000);
	res_fig(r, "db/batch round trip p99", "ms",
	    (double)hist_pct(&w.lat, 99) / 1000);
	res_fig(r, "rows per db/batch", "", WRITE_BATCH_OPS);
	res_fig(r, "errors", "", (double)(w.errors - err0));
	res_fig(r, "connections", "", n);
	ret = 0;
stop:
	for (i = 0; c != NULL && i < n; i++)
		cl_free(c[i]);
	stack_remove(b, &s);
done:
	free(c);
	buf_free(&w.msg);
	return ret;
}
