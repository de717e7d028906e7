/*
 * tinyvex-bench main: flags and sizes, the table of scenarios, the wait
 * primitive every scenario is written with (run the event loop until a
 * condition holds or a deadline passes), and the output of the results.
 * Exits 0 when every scenario that ran produced all of its figures,
 * whatever their values: timing is reported, never asserted.
 */
#include <sys/resource.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "log.h"

#define BENCH_TICK_US		5000	/* longest sleep of bench_wait */

static const struct scenario {
	const char	*key;
	const char	*title;
	int		(*fn)(struct bench *, struct result *);
} scenarios[] = {
	{ "write", "1. Write throughput", sc_write },
	{ "fanout", "2. Fan-out latency", sc_fanout },
	{ "idle", "3. Idle connections", sc_idle },
	{ "invalidation", "4. Invalidation cost", sc_inval },
	{ "streaming", "5. Token streaming", sc_stream },
	{ "coldstart", "6. Cold start", sc_cold },
	{ "actions", "7. Actions", sc_action },
	{ "reconnect", "8. Reconnect storm", sc_storm },
};

static void
tick(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
}

int
bench_wait(struct bench *b, int (*done)(void *), void *arg,
    int64_t timeout_us)
{
	int64_t	 deadline = mono_us() + timeout_us;

	while (!done(arg)) {
		if (mono_us() >= deadline)
			return -1;
		event_base_loop(b->base, EVLOOP_ONCE);
	}
	return 0;
}

static int
never(void *arg)
{
	(void)arg;
	return 0;
}

/* Sleep while serving every connection. */
void
bench_sleep(struct bench *b, int64_t us)
{
	bench_wait(b, never, NULL, us);
}

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: tinyvex-bench [-k] [--tiny] [-b BUILD] "
	    "[-o FILE] [-t TMPDIR] [--only LIST]\n"
	    "\t[--perf DIR] [--write-conns N] [--write-secs S] "
	    "[--write-rows N]\n"
	    "\t[--fanout LIST] [--fanout-secs S] [--idle-conns N] "
	    "[--inval LIST]\n"
	    "\t[--inval-commits N] [--stream-threads N] "
	    "[--stream-clients N]\n"
	    "\t[--stream-bytes N] [--stream-history N] [--cold-docs N] "
	    "[--cold-runs N]\n"
	    "\t[--action-calls N] [--action-callers N] "
	    "[--action-providers N]\n\t[--action-secs S] "
	    "[--storm-clients N]\n");
	exit(2);
}

static void
sizes_default(struct sizes *z, int tiny)
{
	static const int fan[] = { 1, 100, 1000, 5000 };
	static const int inv[] = { 100, 1000, 10000 };
	size_t	 i;

	memset(z, 0, sizeof(*z));
	if (tiny) {
		z->write_conns = 8;
		z->write_secs = 1;
		z->write_rows = 5000;
		z->fanout[0] = 1;
		z->fanout[1] = 20;
		z->nfanout = 2;
		z->fanout_secs = 1;
		z->idle_conns = 200;
		z->inval[0] = 10;
		z->inval[1] = 100;
		z->ninval = 2;
		z->inval_commits = 100;
		z->stream_threads = 4;
		z->stream_clients = 5;
		z->stream_bytes = 200;
		z->stream_history = 10;
		z->cold_docs = 5000;
		z->cold_runs = 1;
		z->action_calls = 100;
		z->action_callers = 8;
		z->action_providers = 2;
		z->action_secs = 1;
		z->storm_clients = 20;
		return;
	}
	z->write_conns = 64;
	z->write_secs = 10;
	z->write_rows = 100000;
	for (i = 0; i < nitems(fan); i++)
		z->fanout[z->nfanout++] = fan[i];
	z->fanout_secs = 5;
	z->idle_conns = 10000;
	for (i = 0; i < nitems(inv); i++)
		z->inval[z->ninval++] = inv[i];
	z->inval_commits = 5000;
	z->stream_threads = 20;
	z->stream_clients = 50;
	z->stream_bytes = 4096;
	z->stream_history = 60;
	z->cold_docs = 1000000;
	z->cold_runs = 5;
	z->action_calls = 2000;
	z->action_callers = 64;
	z->action_providers = 4;
	z->action_secs = 5;
	z->storm_clients = 1000;
}

static int
num_arg(const char *s, int min, int max)
{
	int64_t	 v;

	if (parse_i64(s, min, max, &v) == -1) {
		fprintf(stderr, "tinyvex-bench: bad number %s\n", s);
		usage();
	}
	return (int)v;
}

static double
secs_arg(const char *s)
{
	char	*end;
	double	 v = strtod(s, &end);

	if (*end != '\0' || !(v > 0 && v < 3600)) {
		fprintf(stderr, "tinyvex-bench: bad duration %s\n", s);
		usage();
	}
	return v;
}

static int
list_arg(const char *s, int *out)
{
	char	*copy = xstrdup(s), *tok, *save = NULL;
	int	 n = 0;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (n == BENCH_MAX_LIST)
			usage();
		out[n++] = num_arg(tok, 1, 1000000);
	}
	free(copy);
	if (n == 0)
		usage();
	return n;
}

enum {
	OPT_TINY = 256, OPT_ONLY, OPT_PERF, OPT_WCONNS, OPT_WSECS, OPT_WROWS,
	OPT_FANOUT, OPT_FSECS, OPT_IDLE, OPT_INVAL, OPT_ICOMMITS,
	OPT_STHREADS, OPT_SCLIENTS, OPT_SBYTES, OPT_SHIST, OPT_CDOCS,
	OPT_CRUNS, OPT_ACALLS, OPT_ACALLERS, OPT_APROVS, OPT_ASECS,
	OPT_STORM
};

static const struct option longopts[] = {
	{ "tiny", no_argument, NULL, OPT_TINY },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "perf", required_argument, NULL, OPT_PERF },
	{ "write-conns", required_argument, NULL, OPT_WCONNS },
	{ "write-secs", required_argument, NULL, OPT_WSECS },
	{ "write-rows", required_argument, NULL, OPT_WROWS },
	{ "fanout", required_argument, NULL, OPT_FANOUT },
	{ "fanout-secs", required_argument, NULL, OPT_FSECS },
	{ "idle-conns", required_argument, NULL, OPT_IDLE },
	{ "inval", required_argument, NULL, OPT_INVAL },
	{ "inval-commits", required_argument, NULL, OPT_ICOMMITS },
	{ "stream-threads", required_argument, NULL, OPT_STHREADS },
	{ "stream-clients", required_argument, NULL, OPT_SCLIENTS },
	{ "stream-bytes", required_argument, NULL, OPT_SBYTES },
	{ "stream-history", required_argument, NULL, OPT_SHIST },
	{ "cold-docs", required_argument, NULL, OPT_CDOCS },
	{ "cold-runs", required_argument, NULL, OPT_CRUNS },
	{ "action-calls", required_argument, NULL, OPT_ACALLS },
	{ "action-callers", required_argument, NULL, OPT_ACALLERS },
	{ "action-providers", required_argument, NULL, OPT_APROVS },
	{ "action-secs", required_argument, NULL, OPT_ASECS },
	{ "storm-clients", required_argument, NULL, OPT_STORM },
	{ NULL, 0, NULL, 0 }
};

static void
parse_flags(struct bench *b, int argc, char *argv[])
{
	struct sizes	*z = &b->sz;
	int		 ch, i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--tiny") == 0)
			b->tiny = 1;
	sizes_default(z, b->tiny);
	while ((ch = getopt_long(argc, argv, "b:ko:t:", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'b':
			b->build = optarg;
			break;
		case 'k':
			b->keep = 1;
			break;
		case 'o':
			b->out = optarg;
			break;
		case 't':
			b->tmp = optarg;
			break;
		case OPT_TINY:
			break;
		case OPT_ONLY:
			b->only = optarg;
			break;
		case OPT_PERF:
			b->perfdir = optarg;
			break;
		case OPT_WCONNS:
			z->write_conns = num_arg(optarg, 1, 10000);
			break;
		case OPT_WSECS:
			z->write_secs = secs_arg(optarg);
			break;
		case OPT_WROWS:
			z->write_rows = num_arg(optarg, 1000, 100000000);
			break;
		case OPT_FANOUT:
			z->nfanout = list_arg(optarg, z->fanout);
			break;
		case OPT_FSECS:
			z->fanout_secs = secs_arg(optarg);
			break;
		case OPT_IDLE:
			z->idle_conns = num_arg(optarg, 1, 100000);
			break;
		case OPT_INVAL:
			z->ninval = list_arg(optarg, z->inval);
			break;
		case OPT_ICOMMITS:
			z->inval_commits = num_arg(optarg, 10, 10000000);
			break;
		case OPT_STHREADS:
			z->stream_threads = num_arg(optarg, 1, 1000);
			break;
		case OPT_SCLIENTS:
			z->stream_clients = num_arg(optarg, 1, 10000);
			break;
		case OPT_SBYTES:
			z->stream_bytes = num_arg(optarg, 40, 1000000);
			break;
		case OPT_SHIST:
			z->stream_history = num_arg(optarg, 0, 100000);
			break;
		case OPT_CDOCS:
			z->cold_docs = num_arg(optarg, 1, 100000000);
			break;
		case OPT_CRUNS:
			z->cold_runs = num_arg(optarg, 1, 1000);
			break;
		case OPT_ACALLS:
			z->action_calls = num_arg(optarg, 10, 10000000);
			break;
		case OPT_ACALLERS:
			z->action_callers = num_arg(optarg, 1, 10000);
			break;
		case OPT_APROVS:
			z->action_providers = num_arg(optarg, 1, 1000);
			break;
		case OPT_ASECS:
			z->action_secs = secs_arg(optarg);
			break;
		case OPT_STORM:
			z->storm_clients = num_arg(optarg, 1, 10000);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

static int
selected(const struct bench *b, const char *key)
{
	char	*copy, *tok, *save = NULL;
	int	 found = 0;

	if (b->only == NULL)
		return 1;
	copy = xstrdup(b->only);
	for (tok = strtok_r(copy, ",", &save); tok != NULL && !found;
	    tok = strtok_r(NULL, ",", &save))
		found = strcmp(tok, key) == 0;
	free(copy);
	return found;
}

/* The table also beside the JSON file: FILE.json gives FILE.txt. */
static void
table_file(struct bench *b, struct result *res, int n)
{
	char	 path[1024];
	size_t	 len = strlen(b->out);
	FILE	*f;

	if (len < 5 || strcmp(b->out + len - 5, ".json") != 0 ||
	    len >= sizeof(path))
		return;
	snprintf(path, sizeof(path), "%.*s.txt", (int)(len - 5), b->out);
	if ((f = fopen(path, "w")) == NULL) {
		log_warn("%s", path);
		return;
	}
	fprintf(f, "%s\n", b->command);
	report_table(f, res, n);
	fclose(f);
}

static int
check_exe(const char *path)
{
	if (access(path, X_OK) == 0)
		return 0;
	fprintf(stderr, "tinyvex-bench: %s: not built\n", path);
	return -1;
}

int
main(int argc, char *argv[])
{
	struct bench	 b;
	struct result	*res;
	struct rlimit	 rl;
	struct timeval	 tv = { 0, BENCH_TICK_US };
	struct buf	 cmd;
	size_t		 i;
	int		 n = 0, ok = 1, j;
	int64_t		 t0;

	memset(&b, 0, sizeof(b));
	b.build = "build";
	b.tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	b.out = "latest.json";
	parse_flags(&b, argc, argv);
	buf_init(&cmd);
	for (j = 0; j < argc; j++) {
		if (j > 0)
			buf_addc(&cmd, ' ');
		buf_adds(&cmd, argv[j]);
	}
	b.command = cmd.data;
	log_init("tinyvex-bench", 1, 0);
	signal(SIGPIPE, SIG_IGN);
	/* Thousands of sockets: take the whole open-file allowance. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(b.writerd, sizeof(b.writerd), "%s/writerd/writerd", b.build);
	snprintf(b.gatewayd, sizeof(b.gatewayd), "%s/gatewayd/gatewayd",
	    b.build);
	snprintf(b.ctl, sizeof(b.ctl), "%s/ctl/tinyvexctl", b.build);
	snprintf(b.bcast, sizeof(b.bcast),
	    "%s/tests/bench/tinyvex-bench-bcast", b.build);
	snprintf(b.sql, sizeof(b.sql), "%s/tests/bench/tinyvex-bench-sql",
	    b.build);
	if (check_exe(b.writerd) == -1 || check_exe(b.gatewayd) == -1 ||
	    check_exe(b.ctl) == -1 || check_exe(b.bcast) == -1 ||
	    check_exe(b.sql) == -1)
		return 2;
	if ((b.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	b.tick = event_new(b.base, -1, EV_PERSIST, tick, NULL);
	evtimer_add(b.tick, &tv);
	res = xcalloc(nitems(scenarios), sizeof(*res));
	for (i = 0; i < nitems(scenarios); i++) {
		if (!selected(&b, scenarios[i].key))
			continue;
		res[n].key = scenarios[i].key;
		res[n].title = scenarios[i].title;
		b.cur = &res[n];
		log_info("scenario %s: %s", scenarios[i].key,
		    scenarios[i].title);
		t0 = mono_us();
		if (scenarios[i].fn(&b, &res[n]) == -1 && !res[n].failed)
			res_fail(&res[n], "failed");
		res[n].secs = (double)(mono_us() - t0) / 1e6;
		if (!res_complete(&res[n]))
			ok = 0;
		log_info("scenario %s: %.1f s%s", scenarios[i].key,
		    res[n].secs, res_complete(&res[n]) ? "" :
		    ": figures missing");
		n++;
		/* Partial results survive a later crash. */
		report_json(&b, res, n);
	}
	if (n == 0) {
		fprintf(stderr, "tinyvex-bench: no scenario selected\n");
		return 2;
	}
	if (report_json(&b, res, n) == -1)
		ok = 0;
	report_table(stdout, res, n);
	table_file(&b, res, n);
	printf("\nresults: %s\n", b.out);
	event_free(b.tick);
	event_base_free(b.base);
	free(res);
	buf_free(&cmd);
	return ok ? 0 : 1;
}
