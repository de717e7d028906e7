/*
 * Unit tests for common/config.c: the defaults, every key read from text,
 * each way a file can be wrong (reported with its line and key), the
 * cross-field checks, and the token file rules of config_load.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define CHECK_SEED	0x636f6e666967ULL	/* fixed: runs repeat */

#include "check.h"

static char	tmpdir[] = "/tmp/test_config.XXXXXX";

static void
test_defaults(void)
{
	struct config	 cf;

	config_defaults(&cf);
	CHECK(cf.token_file == NULL && cf.token == NULL, "token");
	CHECK(cf.norigins == 0 && cf.origins[0] == NULL, "origins");
	CHECK(cf.reuseport == 0, "reuseport");
	CHECK(cf.max_message_bytes == 1024 * 1024, "max_message_bytes");
	CHECK(cf.chunk_bytes == 512 * 1024, "chunk_bytes");
	CHECK(cf.max_queries == 1024, "max_queries");
	CHECK(cf.max_connections == 10000, "max_connections");
	CHECK(cf.output_soft_limit == 8 * 1024 * 1024, "output_soft_limit");
	CHECK(cf.output_soft_grace_us == 10000000, "output_soft_grace");
	CHECK(cf.output_hard_limit == 32 * 1024 * 1024, "output_hard_limit");
	CHECK(cf.handshake_timeout_us == 10000000, "handshake_timeout");
	CHECK(cf.ping_interval_us == 5000000, "ping_interval");
	CHECK(cf.idle_timeout_us == 120000000, "idle_timeout");
	CHECK(cf.connect_wait_us == 5000000, "connect_wait");
	CHECK(cf.max_pending_mutations == 1024, "max_pending_mutations");
	CHECK(cf.query_max_rows == 10000, "query_max_rows");
	CHECK(cf.max_args_bytes == 1024 * 1024, "max_args_bytes");
	CHECK(cf.max_document_bytes == 1024 * 1024, "max_document_bytes");
	CHECK(cf.max_document_depth == 32, "max_document_depth");
	CHECK(cf.max_batch_ops == 1000, "max_batch_ops");
	CHECK(cf.synchronous_full == 0, "synchronous");
	CHECK(cf.retention_us == 3600LL * 1000000, "retention");
	CHECK(cf.idempotency_window_us == 24 * 3600LL * 1000000,
	    "idempotency_window");
	CHECK(cf.gc_interval_us == 60000000, "gc_interval");
	CHECK(cf.gc_step_us == 5000, "gc_step");
	CHECK(cf.max_group_mutations == 512, "max_group_mutations");
	CHECK(cf.gateway_output_limit == 64 * 1024 * 1024,
	    "gateway_output_limit");
	CHECK(cf.max_gateways == 64, "max_gateways");
	CHECK(cf.gateway_user == NULL, "gateway_user");
	CHECK(cf.journal_size_limit == 64 * 1024 * 1024, "journal_size_limit");
	CHECK(cf.checkpoint_interval_us == 1000000, "checkpoint_interval");
	/* The defaults pass their own cross-field checks. */
	CHECK(config_parse(&cf, "", 0, "empty", NULL, 0) == 0, "empty text");
	config_free(&cf);
	config_free(&cf);
	printf("defaults: checked, freed twice\n");
}

static void
test_every_key(void)
{
	const char	*text =
	    "# every key, none at its default\n"
	    "\n"
	    "token_file /etc/tinyvex/token with space\n"
	    "allow_origin https://app.example.com\n"
	    "allow_origin http://localhost:3000\n"
	    "reuseport yes\n"
	    "max_message_bytes 2M\n"
	    "chunk_bytes 256K\n"
	    "max_queries 77\n"
	    "max_connections 500\n"
	    "output_soft_limit 4M\n"
	    "output_soft_grace 1500ms\n"
	    "output_hard_limit 16M\n"
	    "handshake_timeout 3s\n"
	    "ping_interval 2\n"
	    "idle_timeout 1m\n"
	    "connect_wait 250ms\n"
	    "max_pending_mutations 99\n"
	    "query_max_rows 500\n"
	    "max_args_bytes 65536\n"
	    "max_document_bytes 128k\n"
	    "max_document_depth 16\n"
	    "max_batch_ops 50\n"
	    "synchronous full\n"
	    "retention 2h\n"
	    "idempotency_window 7d\n"
	    "gc_interval 30s\n"
	    "gc_step 2.5ms\n"
	    "max_group_mutations 128\n"
	    "gateway_output_limit 1G\n"
	    "max_gateways 8\n"
	    "gateway_user _tinyvex\n"
	    "journal_size_limit 0\n"
	    "checkpoint_interval 250ms\n";
	struct config	 cf;
	char		 err[256];
	int		 rc;

	config_defaults(&cf);
	rc = config_parse(&cf, text, strlen(text), "every", err, sizeof(err));
	CHECK(rc == 0, "parse: %s", err);
	CHECK(cf.token_file != NULL &&
	    strcmp(cf.token_file, "/etc/tinyvex/token with space") == 0,
	    "token_file %s", cf.token_file);
	CHECK(cf.token == NULL, "config_parse reads no token file");
	CHECK(cf.norigins == 2 &&
	    strcmp(cf.origins[0], "https://app.example.com") == 0 &&
	    strcmp(cf.origins[1], "http://localhost:3000") == 0, "origins");
	CHECK(cf.reuseport == 1, "reuseport");
	CHECK(cf.max_message_bytes == 2 * 1024 * 1024, "max_message_bytes");
	CHECK(cf.chunk_bytes == 256 * 1024, "chunk_bytes");
	CHECK(cf.max_queries == 77, "max_queries");
	CHECK(cf.max_connections == 500, "max_connections");
	CHECK(cf.output_soft_limit == 4 * 1024 * 1024, "output_soft_limit");
	CHECK(cf.output_soft_grace_us == 1500000, "output_soft_grace %"
	    PRId64, cf.output_soft_grace_us);
	CHECK(cf.output_hard_limit == 16 * 1024 * 1024, "output_hard_limit");
	CHECK(cf.handshake_timeout_us == 3000000, "handshake_timeout");
	CHECK(cf.ping_interval_us == 2000000, "ping_interval");
	CHECK(cf.idle_timeout_us == 60000000, "idle_timeout");
	CHECK(cf.connect_wait_us == 250000, "connect_wait");
	CHECK(cf.max_pending_mutations == 99, "max_pending_mutations");
	CHECK(cf.query_max_rows == 500, "query_max_rows");
	CHECK(cf.max_args_bytes == 65536, "max_args_bytes");
	CHECK(cf.max_document_bytes == 128 * 1024, "max_document_bytes");
	CHECK(cf.max_document_depth == 16, "max_document_depth");
	CHECK(cf.max_batch_ops == 50, "max_batch_ops");
	CHECK(cf.synchronous_full == 1, "synchronous");
	CHECK(cf.retention_us == 2 * 3600LL * 1000000, "retention");
	CHECK(cf.idempotency_window_us == 7 * 86400LL * 1000000,
	    "idempotency_window");
	CHECK(cf.gc_interval_us == 30000000, "gc_interval");
	CHECK(cf.gc_step_us == 2500, "gc_step %" PRId64, cf.gc_step_us);
	CHECK(cf.max_group_mutations == 128, "max_group_mutations");
	CHECK(cf.gateway_output_limit == 1024LL * 1024 * 1024,
	    "gateway_output_limit");
	CHECK(cf.max_gateways == 8, "max_gateways");
	CHECK(cf.gateway_user != NULL &&
	    strcmp(cf.gateway_user, "_tinyvex") == 0, "gateway_user");
	CHECK(cf.journal_size_limit == 0, "journal_size_limit");
	CHECK(cf.checkpoint_interval_us == 250000, "checkpoint_interval");
	config_free(&cf);
	CHECK(cf.token_file == NULL && cf.norigins == 0 &&
	    cf.gateway_user == NULL, "config_free clears");
	printf("keys: every key read\n");
}

/* Layout: whitespace, comments, CRLF, no final newline. */
static void
test_layout(void)
{
	const char	*text =
	    "   # indented comment\r\n"
	    "\t\r\n"
	    "  max_queries\t \t 12   \r\n"
	    "synchronous normal\n"
	    "#max_queries 13\n"
	    "reuseport no";
	struct config	 cf;
	char		 err[256];
	int		 rc;

	config_defaults(&cf);
	cf.reuseport = 1;
	cf.synchronous_full = 1;
	rc = config_parse(&cf, text, strlen(text), "layout", err, sizeof(err));
	CHECK(rc == 0, "layout: %s", err);
	CHECK(cf.max_queries == 12, "max_queries %" PRId64, cf.max_queries);
	CHECK(cf.synchronous_full == 0 && cf.reuseport == 0, "normal, no");
	config_free(&cf);
	printf("layout: comments, blanks, CRLF, tabs\n");
}

struct bad_case {
	const char	*text;
	const char	*want;	/* expected in the message */
};

static void
test_errors(void)
{
	static char	 longline[CONFIG_MAX_LINE + 64];
	static char	 okline[CONFIG_MAX_LINE + 64];
	static const struct bad_case	 cases[] = {
		{ "\n\nnot_a_key 1\n", "bad.conf:3: unknown key not_a_key" },
		{ "Max_queries 1\n", "bad.conf:1: unknown key" },
		{ "max_queries\n", "bad.conf:1: max_queries: missing value" },
		{ "max_queries   \n", "bad.conf:1: max_queries: missing" },
		{ "max_queries 1\n#\nmax_queries 2\n",
		    "bad.conf:3: max_queries: set twice (first on line 1)" },
		{ "token_file /a\ntoken_file /b\n", "bad.conf:2: token_file" },
		{ "max_queries 0\n", "bad.conf:1: max_queries:" },
		{ "max_queries 1048577\n", "bad.conf:1: max_queries:" },
		{ "max_queries 12x\n", "bad.conf:1: max_queries:" },
		{ "max_queries 12 # twelve\n", "bad.conf:1: max_queries:" },
		{ "max_queries -5\n", "bad.conf:1: max_queries:" },
		{ "max_queries 99999999999999999999\n", "bad.conf:1: max_q" },
		{ "max_document_depth 65\n", "bad.conf:1: max_document_depth" },
		{ "max_message_bytes 1023\n", "bad.conf:1: max_message_bytes" },
		{ "max_message_bytes 65M\n", "bad.conf:1: max_message_bytes: "
		    "65M is outside 1K..64M bytes" },
		{ "max_message_bytes 1T\n", "bad.conf:1: max_message_bytes" },
		{ "max_message_bytes -1\n", "bad.conf:1: max_message_bytes" },
		{ "chunk_bytes 17M\n", "bad.conf:1: chunk_bytes" },
		{ "chunk_bytes 512\n", "bad.conf:1: chunk_bytes" },
		{ "output_hard_limit 99999999999999999999K\n",
		    "bad.conf:1: output_hard_limit" },
		{ "idle_timeout 5x\n", "bad.conf:1: idle_timeout" },
		{ "idle_timeout nan\n", "bad.conf:1: idle_timeout" },
		{ "idle_timeout inf\n", "bad.conf:1: idle_timeout" },
		{ "idle_timeout -1s\n", "bad.conf:1: idle_timeout" },
		{ "idle_timeout 0x10s\n", "bad.conf:1: idle_timeout" },
		{ "idle_timeout 1e3s\n", "bad.conf:1: idle_timeout" },
		{ "idle_timeout 500ms\n", "bad.conf:1: idle_timeout" },
		{ "retention 3651d\n", "bad.conf:1: retention: 3651d is outside "
		    "0us..3650d" },
		{ "gc_step 50us\n", "bad.conf:1: gc_step: 50us is outside "
		    "100us..10s" },
		{ "reuseport on\n", "bad.conf:1: reuseport: expected yes" },
		{ "reuseport YES\n", "bad.conf:1: reuseport" },
		{ "synchronous off\n", "bad.conf:1: synchronous: expected" },
		{ "allow_origin example.com\n", "bad.conf:1: allow_origin" },
		{ "allow_origin ftp://example.com\n", "bad.conf:1: allow_ori" },
		{ "allow_origin https://\n", "bad.conf:1: allow_origin" },
		{ "allow_origin https://a.com/path\n", "bad.conf:1: allow_or" },
		{ "allow_origin https://a .com\n", "bad.conf:1: allow_origin" },
		{ "gateway_user bad user\n", "bad.conf:1: gateway_user" },
		{ "gateway_user -x\n", "bad.conf:1: gateway_user" },
		{ "token_file /a\tb\n", "bad.conf:1: token_file: control" },
		{ "max_queries 1\n\x01\n", "bad.conf:2: control character" },
		{ "max_queries 1\nmax_connections 1\x7f\n", "bad.conf:2:" },
		{ "chunk_bytes 1M\nmax_message_bytes 512K\n",
		    "bad.conf: chunk_bytes: 1M is more than "
		    "max_message_bytes (512K)" },
		{ "output_soft_limit 64M\n",
		    "bad.conf: output_soft_limit: 64M is more than "
		    "output_hard_limit (32M)" },
		{ "output_soft_limit 64K\noutput_hard_limit 256K\n",
		    "bad.conf: chunk_bytes: 512K is more than "
		    "output_hard_limit (256K)" },
		{ "ping_interval 2m\n",
		    "bad.conf: ping_interval: 2m is not less than "
		    "idle_timeout (2m)" },
		{ "ping_interval 10s\nidle_timeout 10s\n",
		    "bad.conf: ping_interval:" },
	};
	struct config	 cf;
	char		 err[256];
	char		 text[4096];
	size_t		 i;
	int		 rc;

	for (i = 0; i < nitems(cases); i++) {
		config_defaults(&cf);
		err[0] = '\0';
		rc = config_parse(&cf, cases[i].text, strlen(cases[i].text),
		    "bad.conf", err, sizeof(err));
		CHECK(rc == -1, "accepted: %s", cases[i].text);
		CHECK(strstr(err, cases[i].want) == err,
		    "message \"%s\", want \"%s\"", err, cases[i].want);
		config_free(&cf);
	}

	/* Line length: CONFIG_MAX_LINE bytes is fine, one more is not. */
	memset(longline, ' ', sizeof(longline));
	memcpy(longline, "\n\nmax_queries 5", 15);
	config_defaults(&cf);
	rc = config_parse(&cf, longline, 2 + CONFIG_MAX_LINE, "bad.conf",
	    err, sizeof(err));
	CHECK(rc == 0 && cf.max_queries == 5, "line of %d bytes: %s",
	    CONFIG_MAX_LINE, err);
	rc = config_parse(&cf, longline, 2 + CONFIG_MAX_LINE + 1, "bad.conf",
	    err, sizeof(err));
	CHECK(rc == -1 && strstr(err, "bad.conf:3: line longer") == err,
	    "line of %d bytes: %s", CONFIG_MAX_LINE + 1, err);
	config_free(&cf);
	memset(okline, '#', sizeof(okline));
	okline[CONFIG_MAX_LINE] = '\n';
	config_defaults(&cf);
	rc = config_parse(&cf, okline, CONFIG_MAX_LINE + 1, "ok", err,
	    sizeof(err));
	CHECK(rc == 0, "comment of %d bytes: %s", CONFIG_MAX_LINE, err);
	config_free(&cf);

	/* A NUL byte in the text. */
	config_defaults(&cf);
	rc = config_parse(&cf, "max_queries 1\nmax_queries\0 2\n", 28,
	    "bad.conf", err, sizeof(err));
	CHECK(rc == -1 && strstr(err, "bad.conf:2: NUL") == err, "NUL: %s",
	    err);
	config_free(&cf);

	/* allow_origin repeats, up to CONFIG_MAX_ORIGINS. */
	text[0] = '\0';
	for (i = 0; i < CONFIG_MAX_ORIGINS; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "allow_origin http://h%zu.example:8080\n", i);
	config_defaults(&cf);
	rc = config_parse(&cf, text, strlen(text), "o", err, sizeof(err));
	CHECK(rc == 0 && cf.norigins == CONFIG_MAX_ORIGINS, "%d origins: %s",
	    CONFIG_MAX_ORIGINS, err);
	CHECK(cf.norigins == CONFIG_MAX_ORIGINS &&
	    strcmp(cf.origins[CONFIG_MAX_ORIGINS - 1],
	    "http://h63.example:8080") == 0, "last origin");
	config_free(&cf);
	strlcpy_tv(text + strlen(text), "allow_origin http://one.more\n",
	    sizeof(text) - strlen(text));
	config_defaults(&cf);
	rc = config_parse(&cf, text, strlen(text), "o", err, sizeof(err));
	CHECK(rc == -1 && strstr(err, "o:65: allow_origin: more than") == err,
	    "origin 65: %s", err);
	config_free(&cf);

	/* No error buffer, and a NULL name. */
	config_defaults(&cf);
	CHECK(config_parse(&cf, "x 1\n", 4, NULL, NULL, 0) == -1,
	    "NULL err buffer");
	rc = config_parse(&cf, "ping_interval 1h\n", 17, NULL, err,
	    sizeof(err));
	CHECK(rc == -1 && strstr(err, "config: ping_interval") == err,
	    "NULL name: %s", err);
	/* A short error buffer is cut, still terminated. */
	rc = config_parse(&cf, "x 1\n", 4, "name", err, 5);
	CHECK(rc == -1 && strcmp(err, "name") == 0, "short buffer: %s", err);
	config_free(&cf);
	printf("errors: %zu cases, line length, NUL, origins\n",
	    nitems(cases));
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL ||
	    fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		printf("cannot write %s\n", path);
		exit(1);
	}
}

struct token_case {
	const char	*content;
	const char	*token;		/* expected, or NULL for an error */
	const char	*want;		/* expected in the message */
};

static void
test_load(void)
{
	static const struct token_case	 cases[] = {
		{ "0123456789abcdef\n", "0123456789abcdef", NULL },
		{ "  \t0123456789abcdef \r\n\n", "0123456789abcdef", NULL },
		{ "!#$%&'()*+,-./:;<=>?@[]^_`{|}~", "!#$%&'()*+,-./:;<=>?@[]"
		    "^_`{|}~", NULL },
		{ "", NULL, "empty" },
		{ " \n\t\n", NULL, "empty" },
		{ "0123456789abcde", NULL, "16 to 255" },
		{ "0123456789 abcdef", NULL, "printable ASCII" },
		{ "0123456789abcdef\x01", NULL, "printable ASCII" },
		{ "0123456789abcd\xc3\xa9", NULL, "printable ASCII" },
		{ "0123456789abcdef\n0123456789abcdef", NULL, "printable" },
	};
	struct config	 cf;
	char		 conf[512], tok[512], err[512], text[1024];
	char		 big[300];
	size_t		 i;
	int		 rc;

	snprintf(conf, sizeof(conf), "%s/tinyvex.conf", tmpdir);
	snprintf(tok, sizeof(tok), "%s/token", tmpdir);
	snprintf(text, sizeof(text), "max_queries 7\ntoken_file %s\n", tok);
	write_file(conf, text, strlen(text));
	for (i = 0; i < nitems(cases); i++) {
		write_file(tok, cases[i].content, strlen(cases[i].content));
		config_defaults(&cf);
		err[0] = '\0';
		rc = config_load(&cf, conf, err, sizeof(err));
		if (cases[i].token != NULL) {
			CHECK(rc == 0 && cf.token != NULL &&
			    strcmp(cf.token, cases[i].token) == 0,
			    "token case %zu: %s", i, err);
			CHECK(cf.max_queries == 7, "file read");
		} else {
			CHECK(rc == -1 && strstr(err, conf) == err &&
			    strstr(err, "token_file") != NULL &&
			    strstr(err, cases[i].want) != NULL,
			    "token case %zu: \"%s\"", i, err);
			CHECK(cf.token == NULL, "no token kept");
		}
		config_free(&cf);
	}
	/* 255 characters are fine, 256 are not. */
	memset(big, 'x', sizeof(big));
	write_file(tok, big, 255);
	config_defaults(&cf);
	rc = config_load(&cf, conf, err, sizeof(err));
	CHECK(rc == 0 && cf.token != NULL && strlen(cf.token) == 255,
	    "255: %s", err);
	config_free(&cf);
	write_file(tok, big, 256);
	config_defaults(&cf);
	rc = config_load(&cf, conf, err, sizeof(err));
	CHECK(rc == -1 && strstr(err, "16 to 255") != NULL, "256: %s", err);
	config_free(&cf);
	/* A token file that is missing or not a file. */
	unlink(tok);
	config_defaults(&cf);
	rc = config_load(&cf, conf, err, sizeof(err));
	CHECK(rc == -1 && strstr(err, "token_file") != NULL &&
	    strstr(err, tok) != NULL, "missing token file: %s", err);
	config_free(&cf);
	snprintf(text, sizeof(text), "token_file %s\n", tmpdir);
	write_file(conf, text, strlen(text));
	config_defaults(&cf);
	rc = config_load(&cf, conf, err, sizeof(err));
	CHECK(rc == -1 && strstr(err, "token_file") != NULL,
	    "directory as token file: %s", err);
	config_free(&cf);
	/* Without token_file there is no token. */
	write_file(conf, "reuseport yes\n", 14);
	config_defaults(&cf);
	rc = config_load(&cf, conf, err, sizeof(err));
	CHECK(rc == 0 && cf.token == NULL && cf.reuseport == 1,
	    "no token file: %s", err);
	config_free(&cf);
	/* Errors in the file name the file and line. */
	write_file(conf, "reuseport yes\nbogus 1\n", 22);
	config_defaults(&cf);
	rc = config_load(&cf, conf, err, sizeof(err));
	snprintf(text, sizeof(text), "%s:2: unknown key bogus", conf);
	CHECK(rc == -1 && strcmp(err, text) == 0, "load error: %s", err);
	config_free(&cf);
	/* A missing configuration file. */
	unlink(conf);
	config_defaults(&cf);
	rc = config_load(&cf, conf, err, sizeof(err));
	CHECK(rc == -1 && strstr(err, conf) == err, "missing file: %s", err);
	config_free(&cf);
	printf("load: %zu token files, sizes, missing files\n",
	    nitems(cases));
}

int
main(void)
{
	char	 path[512];

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_every_key();
	test_layout();
	test_errors();
	test_load();
	snprintf(path, sizeof(path), "%s/tinyvex.conf", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	if (nfail > 0) {
		printf("%d checks failed\n", nfail);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}
