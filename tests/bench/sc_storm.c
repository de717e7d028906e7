/*
 * Scenario 8, reconnect storm.  storm_clients clients, each subscribed to
 * STORM_QUERIES queries (db/query of one of STORM_GROUPS groups of
 * STORM_PER_GROUP documents, so executions are shared), drop at once;
 * STORM_CHANGED documents change while they are away; then they all
 * reconnect at once and add their queries again.  Figures: the bytes the
 * clients receive and the time from the first reconnect until every query
 * of every client is current (its connect and modifyQuerySet answered and
 * its transition read), with "resume" (every Add carries the knownHash of
 * the value held) and without (every result re-sent).  The run without
 * resume is the baseline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define STORM_QUERIES		10	/* queries per client */
#define STORM_GROUPS		200	/* distinct queries */
#define STORM_PER_GROUP		20	/* documents a query returns */
#define STORM_CHANGED		10	/* documents patched while away */
#define STORM_AIM_BYTES		10.0	/* bytes without resume / with */
#define STORM_HASH		32	/* room for a hash and its NUL */
#define STORM_WAIT_US		(300 * 1000000LL)
#define STORM_DRAIN_US		(20 * 1000000LL)

static const char schema[] =
    "{\"tables\":{\"items\":{\"indexes\":{\"by_group\":[\"g\"]}}}}";

struct storm {
	struct bench	*b;
	int		 n;		/* clients */
	char		(*hash)[STORM_HASH];	/* client * queries + query */
	int		 capture;	/* record hashes from transitions */
	uint64_t	 unchanged;	/* QueryUnchanged seen */
};

static int
group_of(int client, int q)
{
	return (client + q * (STORM_GROUPS / STORM_QUERIES)) % STORM_GROUPS;
}

static void
gen_item(struct buf *b, int i, void *arg)
{
	(void)arg;
	buf_printf(b, "{\"g\":%d,\"n\":%d,\"text\":\"Item %d of a list that "
	    "a client keeps on screen, about two hundred bytes in all once "
	    "its group, number and text are in.\"}", i % STORM_GROUPS, i, i);
}

/* Hashes of the values in a transition (round one), QueryUnchanged. */
static void
on_trans(struct cl *c, void *arg, const char *msg, size_t len, int64_t t)
{
	struct storm	*x = arg;
	const cJSON	*m, *q, *h, *ty;
	const char	*p;
	cJSON		*root;
	enum json_err	 jerr;
	int64_t		 qid;

	(void)t;
	if (!x->capture) {
		for (p = msg; (p = memmem(p, (size_t)(msg + len - p),
		    "QueryUnchanged", 14)) != NULL; p += 14)
			x->unchanged++;
		return;
	}
	if ((root = json_parse(msg, len, JSON_MAX_DEPTH, &jerr)) == NULL)
		return;
	cJSON_ArrayForEach(m, json_get(json_get(root, "params"),
	    "modifications")) {
		q = json_get(m, "queryId");
		h = json_get(m, "hash");
		ty = json_get(m, "type");
		if (!json_get_int(q, 0, STORM_QUERIES - 1, &qid) ||
		    !cJSON_IsString(h) || !cJSON_IsString(ty) ||
		    strlen(h->valuestring) >= STORM_HASH)
			continue;
		strlcpy_tv(x->hash[c->index * STORM_QUERIES + qid],
		    h->valuestring, STORM_HASH);
	}
	cJSON_Delete(root);
}

static void
subscribe(struct storm *x, struct cl *c, int known)
{
	uint32_t	 qids[STORM_QUERIES];
	char		*udfs[STORM_QUERIES], *args[STORM_QUERIES];
	char		*kh[STORM_QUERIES];
	char		 a[STORM_QUERIES][128];
	int		 q;

	for (q = 0; q < STORM_QUERIES; q++) {
		qids[q] = (uint32_t)q;
		udfs[q] = "db/query";
		snprintf(a[q], sizeof(a[q]), "{\"table\":\"items\",\"index\":"
		    "\"by_group\",\"range\":[[\"g\",\"eq\",%d]]}",
		    group_of(c->index, q));
		args[q] = a[q];
		kh[q] = known && x->hash[c->index * STORM_QUERIES + q][0] !=
		    '\0' ? x->hash[c->index * STORM_QUERIES + q] : NULL;
	}
	cl_subscribe_known(c, qids, udfs, args, kh, STORM_QUERIES, NULL,
	    NULL);
}

static int
gateway_idle(void *arg)
{
	struct stack	*st = arg;
	cJSON		*j = stack_health(st);
	int		 idle;

	idle = j != NULL && json_num(j, "connections", NULL) == 0;

	cJSON_Delete(j);
	return idle;
}

/*
 * Every client connects, asking for features, and adds its queries (with
 * knownHash when known is set); the time until all are current, the
 * bytes they received and the gateway's CPU.  Then they all drop.
 */
static int
storm_round(struct storm *x, struct stack *st, const char *features,
    int known, double *secs, double *bytes, double *cpu)
{
	struct bench	 *b = x->b;
	struct cl	**c;
	struct pmon	  pm;
	int64_t		  t0;
	int		  i, ret = -1;

	c = xcalloc((size_t)x->n, sizeof(*c));
	pmon_start(&pm, "gatewayd", st->gateway);
	t0 = mono_us();
	b->cl_features = features;
	if (cl_open_many(b, st->port, c, x->n, 1, on_trans, x,
	    STORM_WAIT_US) == -1) {
		b->cl_features = NULL;
		goto done;
	}
	b->cl_features = NULL;
	for (i = 0; i < x->n; i++)
		subscribe(x, c[i], known);
	if (cl_wait_subscribed(c, x->n, STORM_WAIT_US) == -1)
		goto done;
	*secs = (double)(mono_us() - t0) / 1e6;
	pmon_stop(&pm);
	*cpu = pmon_cpu_s(&pm);
	*bytes = 0;
	for (i = 0; i < x->n; i++)
		*bytes += (double)c[i]->ws->bytes_in;
	ret = 0;
done:
	for (i = 0; i < x->n; i++)
		if (c[i] != NULL)
			cl_free(c[i]);
	free(c);
	if (bench_wait(b, gateway_idle, st, STORM_DRAIN_US) == -1)
		log_warnx("reconnect storm: the gateway still has connections");
	return ret;
}

/* Patch STORM_CHANGED documents, each of another group. */
static int
change_some(struct bench *b, struct stack *st, char (*ids)[DOC_ID_LEN + 1])
{
	struct cl	*c;
	struct buf	 m;
	cJSON		*a;
	int		 i, ret = 0;

	if ((c = cl_open_wait(b, st->port, NULL, NULL, BENCH_CALL_US)) == NULL)
		return -1;
	buf_init(&m);
	for (i = 0; i < STORM_CHANGED; i++) {
		buf_reset(&m);
		buf_printf(&m, "{\"udfPath\":\"db/patch\",\"args\":{\"table\":"
		    "\"items\",\"id\":\"%s\",\"set\":{\"edited\":true}}}",
		    ids[i * (STORM_GROUPS / STORM_CHANGED) + 1]);
		if ((a = cl_call_wait(c, "tinyvex/mutation", m.data,
		    BENCH_CALL_US)) == NULL)
			ret = -1;
		cJSON_Delete(a);
	}
	buf_free(&m);
	cl_free(c);
	return ret;
}

int
sc_storm(struct bench *b, struct result *r)
{
	struct storm	 x;
	struct stack	 st;
	struct cl	*setup = NULL;
	struct figure	*f;
	char		(*ids)[DOC_ID_LEN + 1] = NULL;
	double		 s_res = 0, b_res = 0, c_res = 0;
	double		 s_full = 0, b_full = 0, c_full = 0, s0, b0, c0;
	int		 ndocs = STORM_GROUPS * STORM_PER_GROUP, ret = -1;

	r->baseline_desc = "the same clients reconnecting without \"resume\": "
	    "every result sent again";
	res_expect(r, "bytes until current, resume");
	res_expect(r, "time until current, resume");
	memset(&x, 0, sizeof(x));
	x.b = b;
	x.n = b->sz.storm_clients;
	x.hash = xcalloc((size_t)x.n * STORM_QUERIES, sizeof(*x.hash));
	if (stack_start(b, &st, NULL, schema) == -1) {
		res_fail(r, "daemons did not start");
		free(x.hash);
		return -1;
	}
	ids = xcalloc((size_t)ndocs, sizeof(*ids));
	if ((setup = cl_open_wait(b, st.port, NULL, NULL,
	    BENCH_CALL_US)) == NULL || cl_insert_many(setup, "items", ndocs,
	    gen_item, NULL, ids, STORM_WAIT_US) == -1) {
		res_fail(r, "cannot insert the documents");
		goto done;
	}
	cl_free(setup);
	setup = NULL;
	log_info("reconnect storm: %d clients x %d queries", x.n,
	    STORM_QUERIES);
	/* The clients come, hold their values, and go. */
	x.capture = 1;
	if (storm_round(&x, &st, "[\"resume\"]", 0, &s0, &b0, &c0) == -1) {
		res_fail(r, "the first connections failed");
		goto done;
	}
	x.capture = 0;
	if (change_some(b, &st, ids) == -1) {
		res_fail(r, "cannot patch while the clients are away");
		goto done;
	}
	if (storm_round(&x, &st, "[\"resume\"]", 1, &s_res, &b_res,
	    &c_res) == -1 || storm_round(&x, &st, NULL, 0, &s_full, &b_full,
	    &c_full) == -1) {
		res_fail(r, "the reconnecting clients failed");
		goto done;
	}
	res_fig(r, "clients", "", (double)x.n);
	res_fig(r, "queries per client", "", STORM_QUERIES);
	res_fig(r, "first connection: bytes", "B", b0);
	f = res_fig(r, "bytes until current, resume", "B", b_res);
	fig_baseline(f, b_full);
	fig_aim(f, b_res * STORM_AIM_BYTES <= b_full, ">= %.0fx fewer",
	    STORM_AIM_BYTES);
	res_fig(r, "bytes until current, no resume", "B", b_full);
	res_fig(r, "QueryUnchanged received", "", (double)x.unchanged);
	f = res_fig(r, "time until current, resume", "ms", s_res * 1000);
	fig_baseline(f, s_full * 1000);
	res_fig(r, "time until current, no resume", "ms", s_full * 1000);
	f = res_fig(r, "gateway CPU, resume", "s", c_res);
	fig_baseline(f, c_full);
	res_fig(r, "gateway CPU, no resume", "s", c_full);
	ret = 0;
done:
	cl_free(setup);
	free(ids);
	free(x.hash);
	stack_remove(b, &st);
	return ret;
}
