/*
 * Scenario 6, cold start.  The time from starting writerd and gatewayd
 * (both spawned at once, as a supervisor would) to the first answered
 * query (tinyvex/query of db/query with limit 1: the answer must be a
 * result, not an error), on an empty state directory and on a database
 * of cold_docs documents built beforehand by tinyvex-bench-sql with the
 * rows of the write baseline.  A client tries to connect every
 * COLD_RETRY_US until the gateway listens, and asks again after every
 * error.  The page cache is warm: the large database was just written
 * (or just read by the previous start).  Baseline: the time from spawning
 * tinyvex-bench-bcast to its first WebSocket echo, and for the large
 * database that plus the time for a process to open it with SQLite and
 * read one current document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define COLD_RETRY_US		500	/* between connection attempts */
#define COLD_TIMEOUT_US		(30 * 1000000LL)
#define COLD_AIM_EMPTY_MS	50.0
#define COLD_AIM_LARGE_MS	200.0
#define COLD_MAX_RUNS		1000
#define COLD_QUERY		"{\"udfPath\":\"db/query\",\"args\":" \
				"{\"table\":\"docs\",\"limit\":1}}"

/* Milliseconds after spawning of each step of one start. */
struct start {
	double	 open;		/* WebSocket upgraded */
	double	 connected;	/* tinyvex/connect answered */
	double	 answered;	/* first query answered with a result */
	int	 attempts;	/* queries that got an error first */
};

static int
opened_or_closed(void *arg)
{
	struct cl	*c = arg;

	return c->opened || c->closed;
}

static int
connected_or_failed(void *arg)
{
	struct cl	*c = arg;

	return c->connected || c->closed || c->errors > 0;
}

static double
since(int64_t t0, int64_t t)
{
	return (double)(t - t0) / 1000.0;
}

/* Ask port until a query is answered; 0 or -1 at the deadline. */
static int
first_answer(struct bench *b, int port, int64_t t0, struct start *st)
{
	struct cl	*c = NULL;
	cJSON		*a;
	int64_t		 deadline = t0 + COLD_TIMEOUT_US;
	int		 ok;

	memset(st, 0, sizeof(*st));
	while (mono_us() < deadline) {
		if (c == NULL || c->closed) {
			cl_free(c);
			c = cl_open(b, port, NULL, NULL);
			c->no_connect = 1;
			bench_wait(b, opened_or_closed, c, deadline - mono_us());
			if (!c->opened) {
				usleep(COLD_RETRY_US);
				continue;
			}
			st->open = since(t0, c->ws->t_read);
			cl_connect(c);
			bench_wait(b, connected_or_failed, c, deadline -
			    mono_us());
			if (!c->connected) {
				c->closed = 1;
				usleep(COLD_RETRY_US);
				continue;
			}
			st->connected = since(t0, c->ws->t_read);
		}
		a = cl_call_wait(c, "tinyvex/query", COLD_QUERY, deadline -
		    mono_us());
		ok = cJSON_IsArray(json_get(json_get(a, "result"), "value"));
		cJSON_Delete(a);
		if (ok) {
			st->answered = since(t0, c->ws->t_read);
			cl_free(c);
			return 0;
		}
		st->attempts++;
		usleep(COLD_RETRY_US);
	}
	cl_free(c);
	return -1;
}

static int
echoed(void *arg)
{
	struct wsc	*w = arg;

	return w->msgs_in > 0 || w->state == WSC_CLOSED;
}

static int
open_or_closed(void *arg)
{
	struct wsc	*w = arg;

	return w->state == WSC_OPEN || w->state == WSC_CLOSED;
}

static const struct wsc_ops quiet_ops = { NULL, NULL, NULL };

/* Spawn the broadcaster; ms to its first echo, or -1. */
static double
bcast_cold(struct bench *b)
{
	struct wsc	*w = NULL;
	char		 p[16];
	char		*argv[3];
	int64_t		 t0, deadline;
	double		 v = -1;
	pid_t		 pid;
	int		 port;

	if ((port = free_port()) == -1)
		return -1;
	snprintf(p, sizeof(p), "%d", port);
	argv[0] = b->bcast;
	argv[1] = p;
	argv[2] = NULL;
	t0 = mono_us();
	deadline = t0 + COLD_TIMEOUT_US;
	if ((pid = spawn(b->bcast, argv, NULL)) == -1)
		return -1;
	while (mono_us() < deadline) {
		wsc_free(w);
		w = bc_open(b, port, &quiet_ops, NULL);
		bench_wait(b, open_or_closed, w, deadline - mono_us());
		if (w->state != WSC_OPEN) {
			usleep(COLD_RETRY_US);
			continue;
		}
		wsc_send(w, "Eok", 3);
		bench_wait(b, echoed, w, deadline - mono_us());
		if (w->msgs_in > 0)
			v = since(t0, w->t_read);
		break;
	}
	wsc_free(w);
	bcast_stop(pid);
	return v;
}

/* Open the database in a fresh process and read a row: ms, or -1. */
static double
sql_cold(struct bench *b, const char *dir)
{
	char	 db[600];
	char	*argv[4];
	cJSON	*j;
	double	 secs = -1;

	snprintf(db, sizeof(db), "%s/tinyvex.db", dir);
	argv[0] = b->sql;
	argv[1] = "probe";
	argv[2] = db;
	argv[3] = NULL;
	if ((j = run_json(argv, &secs, NULL, NULL)) == NULL)
		return -1;
	cJSON_Delete(j);
	return secs * 1000;
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * runs starts on dir (a fresh one each time when dir is NULL); figures
 * named after label.
 */
static int
measure(struct bench *b, struct result *r, const char *label,
    struct stack *large, double base, double aim)
{
	struct stack	 s;
	struct start	 st;
	struct figure	*f;
	double		 ans[COLD_MAX_RUNS], opn[COLD_MAX_RUNS];
	double		 con[COLD_MAX_RUNS], worst = 0;
	char		 name[80];
	int		 i, n = b->sz.cold_runs, attempts = 0;

	if (n > COLD_MAX_RUNS)
		n = COLD_MAX_RUNS;
	for (i = 0; i < n; i++) {
		if (large != NULL)
			s = *large;
		else if (stack_init(b, &s, NULL, NULL) == -1) {
			res_fail(r, "cannot make a state directory");
			return -1;
		}
		s.port = free_port();
		if (stack_spawn(b, &s) == -1 ||
		    first_answer(b, s.port, s.t_spawn, &st) == -1) {
			res_fail(r, "%s: no answer within %lld s; logs in %s",
			    label, COLD_TIMEOUT_US / 1000000, s.dir);
			stack_stop(&s);
			return -1;
		}
		stack_stop(&s);
		if (large == NULL)
			stack_remove(b, &s);
		ans[i] = st.answered;
		opn[i] = st.open;
		con[i] = st.connected;
		attempts += st.attempts;
		if (st.answered > worst)
			worst = st.answered;
	}
	snprintf(name, sizeof(name), "%s: first answered query", label);
	f = res_fig(r, name, "ms", median(ans, n));
	if (base > 0)
		fig_baseline(f, base);
	fig_aim(f, median(ans, n) < aim, "< %.0f ms", aim);
	snprintf(name, sizeof(name), "%s: worst of %d starts", label, n);
	res_fig(r, name, "ms", worst);
	snprintf(name, sizeof(name), "%s:   gateway accepting WebSockets",
	    label);
	res_fig(r, name, "ms", median(opn, n));
	snprintf(name, sizeof(name), "%s:   tinyvex/connect answered", label);
	res_fig(r, name, "ms", median(con, n));
	if (attempts > 0)
		res_note(r, "%s: %d queries were answered with an error first "
		    "(retried after %d us)", label, attempts, COLD_RETRY_US);
	return 0;
}

int
sc_cold(struct bench *b, struct result *r)
{
	struct stack	 large;
	double		 bc[COLD_MAX_RUNS], sq[COLD_MAX_RUNS], build_s, v;
	char		 docs[32], label[64];
	char		*argv[5];
	cJSON		*j;
	int		 i, n = b->sz.cold_runs, ret = -1;

	r->baseline_desc = "spawning tinyvex-bench-bcast to its first "
	    "WebSocket echo; for the large database, plus a fresh process "
	    "opening it with SQLite and reading one current document";
	res_expect(r, "empty: first answered query");
	res_expect(r, "large: first answered query");
	if (n > COLD_MAX_RUNS)
		n = COLD_MAX_RUNS;
	for (i = 0; i < n; i++)
		if ((bc[i] = bcast_cold(b)) < 0) {
			res_fail(r, "the broadcaster baseline failed");
			return -1;
		}
	if (measure(b, r, "empty", NULL, median(bc, n), COLD_AIM_EMPTY_MS)
	    == -1)
		return -1;
	/* The large database. */
	if (stack_init(b, &large, NULL, NULL) == -1)
		return -1;
	log_info("coldstart: building a database of %d documents",
	    b->sz.cold_docs);
	snprintf(docs, sizeof(docs), "%d", b->sz.cold_docs);
	argv[0] = b->sql;
	argv[1] = "build";
	argv[2] = large.dir;
	argv[3] = docs;
	argv[4] = NULL;
	if ((j = run_json(argv, &build_s, NULL, NULL)) == NULL) {
		res_fail(r, "building the database failed");
		goto done;
	}
	res_fig(r, "large: documents", "", b->sz.cold_docs);
	res_fig(r, "large: database bytes", "B", json_num(j, "db_bytes",
	    NULL));
	res_fig(r, "large: build rate (tinyvex-bench-sql)", "docs/s",
	    json_num(j, "rows_per_s", NULL));
	cJSON_Delete(j);
	for (i = 0; i < n; i++) {
		if ((v = sql_cold(b, large.dir)) < 0) {
			res_fail(r, "the SQLite baseline failed");
			goto done;
		}
		sq[i] = v;
	}
	snprintf(label, sizeof(label), "large");
	if (measure(b, r, label, &large, median(bc, n) + median(sq, n),
	    COLD_AIM_LARGE_MS) == -1)
		goto done;
	res_fig(r, "baseline: broadcaster first echo", "ms", median(bc, n));
	res_fig(r, "baseline: SQLite open + first row (large)", "ms",
	    median(sq, n));
	ret = 0;
done:
	stack_remove(b, &large);
	return ret;
}
