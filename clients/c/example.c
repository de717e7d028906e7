/*
 * The smallest program on libtinyvex, as in README.md and libtinyvex(3):
 * print every update of a query.  Built against the shared library and
 * <tinyvex.h> alone, so the public interface is known to be enough.
 *
 *   example [URL [TABLE]]
 */
#include <stdio.h>

#include <tinyvex.h>

static void
update(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	(void)ctx;
	(void)arg;
	if (err != NULL)
		printf("error %s: %s\n", err->kind, err->message);
	else
		printf("%lld %s\n", (long long)ts, value);
	fflush(stdout);
}

int
main(int argc, char *argv[])
{
	struct tvx_config	 cf = { .url = "ws://127.0.0.1:7878/sync" };
	struct tvx_ctx		*ctx;
	char			 args[128];

	if (argc > 1)
		cf.url = argv[1];
	snprintf(args, sizeof(args), "{\"table\":\"%s\"}",
	    argc > 2 ? argv[2] : "messages");
	if ((ctx = tvx_new(&cf)) == NULL) {
		perror("tvx_new");
		return 1;
	}
	tvx_subscribe(ctx, "db/query", args, update, NULL);
	return tvx_run(ctx);
}
