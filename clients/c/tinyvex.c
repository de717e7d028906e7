/*
 * tinyvex: the Tinyvex client command (DESIGN §13), built on libtinyvex.
 *
 *   tinyvex [-j] [-u URL] [-t TOKEN] COMMAND [ARG ...]
 *
 * Commands in one table, each a few lines over the library: query,
 * watch, mutate, action and tables here; provide in cmd_provide.c;
 * export and import in cmd_export.c.  Output is JSON: the value, pretty
 * on a terminal and compact otherwise (or with -j); watch prints one
 * compact line per update.  Exit status 0 on success, 1 on an error or
 * bad arguments.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli.h"

struct command {
	const char	*name;
	int		 (*fn)(struct cli *, int, char **);
	/* Before the context exists: check arguments, adjust the config. */
	int		 (*prep)(struct cli *, int, char **,
			    struct tvx_config *);
};

void
cli_usage(void)
{
	fprintf(stderr,
	    "usage: tinyvex [-j] [-u URL] [-t TOKEN] COMMAND [ARG ...]\n"
	    "       query UDF [ARGS_JSON]\n"
	    "       watch UDF [ARGS_JSON]\n"
	    "       mutate UDF ARGS_JSON\n"
	    "       action UDF ARGS_JSON\n"
	    "       tables\n"
	    "       provide NAME [-c N] -- CMD [ARG ...]\n"
	    "       export FILE.zip [TABLE ...]\n"
	    "       import FILE.zip | FILE.jsonl --table TABLE\n");
	exit(1);
}

void
cli_warnx(const char *fmt, ...)
{
	va_list	 ap;

	fputs("tinyvex: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
cli_done(struct cli *cli, int status)
{
	cli->status = status;
	tvx_stop(cli->ctx);
}

/* Pretty JSON of v at indent. */
static void
pretty(struct tvx_buf *b, const cJSON *v, int indent)
{
	const cJSON	*c;
	int		 i;

	if ((cJSON_IsArray(v) || cJSON_IsObject(v)) && v->child != NULL) {
		tvx_buf_addc(b, cJSON_IsArray(v) ? '[' : '{');
		for (c = v->child; c != NULL; c = c->next) {
			tvx_buf_adds(b, c == v->child ? "\n" : ",\n");
			for (i = 0; i < indent + 2; i++)
				tvx_buf_addc(b, ' ');
			if (cJSON_IsObject(v)) {
				tvx_json_string(b, c->string,
				    strlen(c->string));
				tvx_buf_adds(b, ": ");
			}
			pretty(b, c, indent + 2);
		}
		tvx_buf_addc(b, '\n');
		for (i = 0; i < indent; i++)
			tvx_buf_addc(b, ' ');
		tvx_buf_addc(b, cJSON_IsArray(v) ? ']' : '}');
		return;
	}
	tvx_json_print(b, v);
}

void
cli_print_value(struct cli *cli, const char *json)
{
	struct tvx_buf	 b = { 0 };
	const char	*why;
	cJSON		*v;

	if (cli->compact ||
	    (v = tvx_json_parse(json, strlen(json), TVX_JSON_DEPTH, &why)) ==
	    NULL) {
		printf("%s\n", json);
		fflush(stdout);
		return;
	}
	pretty(&b, v, 0);
	cJSON_Delete(v);
	printf("%s\n", b.data ? b.data : json);
	fflush(stdout);
	tvx_buf_free(&b);
}

/* {"code":..,"kind":..,"message":..,"data":..} */
void
cli_error_json(struct tvx_buf *b, const struct tvx_error *err)
{
	tvx_buf_adds(b, "{\"code\":");
	tvx_buf_i64(b, err->code);
	tvx_buf_adds(b, ",\"kind\":");
	tvx_json_string(b, err->kind, strlen(err->kind));
	tvx_buf_adds(b, ",\"message\":");
	tvx_json_string(b, err->message, strlen(err->message));
	if (err->data != NULL) {
		tvx_buf_adds(b, ",\"data\":");
		tvx_buf_adds(b, err->data);
	}
	tvx_buf_addc(b, '}');
}

void
cli_print_error(const struct tvx_error *err)
{
	struct tvx_buf	 b = { 0 };

	cli_error_json(&b, err);
	cli_warnx("%s: %s %s", err->kind, err->message,
	    b.data ? b.data : "");
	tvx_buf_free(&b);
}

/* A one-shot answer: print the value, or the error, and stop. */
static void
on_result(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct cli	*cli = arg;

	(void)ctx;
	(void)ts;
	if (err != NULL) {
		cli_print_error(err);
		cli_done(cli, 1);
		return;
	}
	cli_print_value(cli, value);
	cli_done(cli, 0);
}

static void
on_update(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct tvx_buf	 b = { 0 };

	(void)ctx;
	(void)arg;
	tvx_buf_adds(&b, "{\"ts\":");
	tvx_buf_i64(&b, ts);
	if (err != NULL) {
		tvx_buf_adds(&b, ",\"error\":");
		cli_error_json(&b, err);
	} else {
		tvx_buf_adds(&b, ",\"value\":");
		tvx_buf_adds(&b, value);
	}
	tvx_buf_addc(&b, '}');
	if (b.data != NULL)
		printf("%s\n", b.data);
	fflush(stdout);
	tvx_buf_free(&b);
}

static void
on_state(struct tvx_ctx *ctx, void *arg, enum tvx_state st,
    const char *reason, int64_t retry_us)
{
	struct cli	*cli = arg;

	(void)ctx;
	if (st == TVX_CONNECTED) {
		cli->ever_connected = 1;
		return;
	}
	if (reason == NULL)
		return;
	if (st != TVX_DISCONNECTED) {
		/* A provide the server refused, for one. */
		cli_warnx("%s", reason);
		cli_done(cli, 1);
		return;
	}
	if (!cli->ever_connected && !cli->keep_going) {
		cli_warnx("cannot connect to %s: %s", cli->url, reason);
		cli_done(cli, 1);
		return;
	}
	cli_warnx("connection lost (%s); retrying in %lld ms", reason,
	    (long long)(retry_us / 1000));
}

static const char *
args_or(int argc, char **argv, int i, const char *def)
{
	return i < argc ? argv[i] : def;
}

static int
cmd_query(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		cli_usage();
	return tvx_query(cli->ctx, argv[1], args_or(argc, argv, 2, "{}"), -1,
	    on_result, cli);
}

static int
cmd_watch(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		cli_usage();
	return tvx_subscribe(cli->ctx, argv[1], args_or(argc, argv, 2, "{}"),
	    on_update, cli) == NULL ? -1 : 0;
}

static int
cmd_mutate(struct cli *cli, int argc, char **argv)
{
	if (argc != 3)
		cli_usage();
	return tvx_mutation(cli->ctx, argv[1], argv[2], on_result, cli);
}

static int
cmd_action(struct cli *cli, int argc, char **argv)
{
	if (argc != 3)
		cli_usage();
	return tvx_action(cli->ctx, argv[1], argv[2], on_result, cli);
}

static int
cmd_tables(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		cli_usage();
	return tvx_query(cli->ctx, "db/tables", "{}", -1, on_result, cli);
}

static const struct command commands[] = {
	{ "query",	cmd_query,	NULL },
	{ "watch",	cmd_watch,	NULL },
	{ "mutate",	cmd_mutate,	NULL },
	{ "action",	cmd_action,	NULL },
	{ "tables",	cmd_tables,	NULL },
	{ "provide",	cmd_provide,	NULL },
	{ "export",	cmd_export,	NULL },
	{ "import",	cmd_import,	prep_import },
};

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	cli_done(arg, 0);
}

int
main(int argc, char *argv[])
{
	struct cli		 cli;
	struct tvx_config	 cf;
	const struct command	*cmd = NULL;
	struct event		*sigint, *sigterm;
	size_t			 i;
	int			 ch, jflag = 0;

	memset(&cli, 0, sizeof(cli));
	memset(&cf, 0, sizeof(cf));
	cli.url = getenv("TINYVEX_URL");
	if (cli.url == NULL || *cli.url == '\0')
		cli.url = CLI_DEFAULT_URL;
	cf.token = getenv("TINYVEX_TOKEN");
	if (cf.token != NULL && *cf.token == '\0')
		cf.token = NULL;
	while ((ch = getopt(argc, argv, "+ju:t:")) != -1) {
		switch (ch) {
		case 'j':
			jflag = 1;
			break;
		case 'u':
			cli.url = optarg;
			break;
		case 't':
			cf.token = optarg;
			break;
		default:
			cli_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		cli_usage();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		cli_warnx("unknown command: %s", argv[0]);
		cli_usage();
	}
	cli.compact = jflag || !isatty(STDOUT_FILENO);
	signal(SIGPIPE, SIG_IGN);
	/* The children of provide see where to reach the server. */
	setenv("TINYVEX_URL", cli.url, 1);
	if (cf.token != NULL)
		setenv("TINYVEX_TOKEN", cf.token, 1);

	cf.url = cli.url;
	cf.on_state = on_state;
	cf.state_arg = &cli;
	cf.provider_token = getenv("TINYVEX_PROVIDER_TOKEN");
	if (cmd->prep != NULL && cmd->prep(&cli, argc, argv, &cf) == -1) {
		if (cli.cmd_free != NULL)
			cli.cmd_free(&cli);
		return 1;
	}
	if ((cli.ctx = tvx_new(&cf)) == NULL) {
		cli_warnx("bad URL: %s (ws://HOST:PORT/PATH)", cli.url);
		return 1;
	}
	if (cmd->fn(&cli, argc, argv) == -1) {
		if (errno == EINVAL)
			cli_warnx("ARGS_JSON must be a JSON object");
		if (cli.cmd_free != NULL)
			cli.cmd_free(&cli);
		tvx_free(cli.ctx);
		return 1;
	}
	sigint = evsignal_new(tvx_base(cli.ctx), SIGINT, on_signal, &cli);
	sigterm = evsignal_new(tvx_base(cli.ctx), SIGTERM, on_signal, &cli);
	if (sigint == NULL || sigterm == NULL) {
		cli_warnx("out of memory");
		return 1;
	}
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	tvx_run(cli.ctx);
	event_free(sigint);
	event_free(sigterm);
	if (cli.cmd_free != NULL)
		cli.cmd_free(&cli);
	tvx_free(cli.ctx);
	return cli.status;
}
