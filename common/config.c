/*
 * The configuration file reader.  One table lists every key with its kind
 * (size, count, duration, flag, string), where it lands in struct config
 * and the range it accepts; the parser walks the text a line at a time
 * and fails closed, naming the file, line and key, on anything it does
 * not understand.  Settings that constrain each other are checked once
 * the whole file is read.  config_load also reads the token file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "util.h"

#define SZ_K		1024LL
#define SZ_M		(1024 * SZ_K)
#define SZ_G		(1024 * SZ_M)
#define US_MS		1000LL			/* microseconds in a ms */
#define US_S		(1000 * US_MS)
#define US_M		(60 * US_S)
#define US_H		(60 * US_M)
#define US_D		(24 * US_H)

#define CONFIG_MAX_FILE		(1 * SZ_M)	/* largest config file */
#define TOKEN_FILE_MAX		4096	/* largest token file */
#define TOKEN_MIN		16	/* shortest token accepted */
#define TOKEN_MAX		255	/* longest token accepted */
#define ORIGIN_MAX		511	/* longest allow_origin value */
#define USER_MAX		64	/* longest gateway_user name */
#define MESSAGE_MIN		SZ_K	/* smallest max_message_bytes */
#define MESSAGE_MAX		(64 * SZ_M) /* largest max_message_bytes */
#define CHUNK_MIN		SZ_K	/* smallest chunk_bytes */
#define CHUNK_MAX		(16 * SZ_M) /* largest chunk_bytes */
#define DURATION_BUFLEN		32	/* a formatted duration or size */

/* What a value is and how it is read. */
enum conf_kind {
	CONF_PATH,	/* any non-empty text: char * */
	CONF_USER,	/* a user name: char * */
	CONF_ORIGIN,	/* scheme://host[:port], repeatable: origins[] */
	CONF_FLAG,	/* yes|no: int */
	CONF_SYNC,	/* normal|full: int */
	CONF_SIZE,	/* parse_size: uint64_t */
	CONF_COUNT,	/* parse_i64: int64_t */
	CONF_DURATION,	/* parse_duration: int64_t microseconds */
};

/* One configuration key. */
struct conf_key {
	const char	*name;		/* as written in the file */
	enum conf_kind	 kind;
	size_t		 off;		/* member of struct config */
	int64_t		 min, max;	/* accepted range, sizes and numbers */
};

#define KEY(n, k, m, lo, hi)	{ n, k, offsetof(struct config, m), lo, hi }

static const struct conf_key conf_keys[] = {
	KEY("token_file", CONF_PATH, token_file, 0, 0),
	KEY("allow_origin", CONF_ORIGIN, origins, 0, 0),
	KEY("reuseport", CONF_FLAG, reuseport, 0, 0),
	KEY("static_dir", CONF_PATH, static_dir, 0, 0),
	KEY("static_max_file_bytes", CONF_SIZE, static_max_file_bytes,
	    0, 1024 * SZ_G),
	KEY("max_message_bytes", CONF_SIZE, max_message_bytes,
	    MESSAGE_MIN, MESSAGE_MAX),
	KEY("chunk_bytes", CONF_SIZE, chunk_bytes, CHUNK_MIN, CHUNK_MAX),
	KEY("max_queries", CONF_COUNT, max_queries, 1, 1 << 20),
	KEY("max_connections", CONF_COUNT, max_connections, 1, 1 << 20),
	KEY("output_soft_limit", CONF_SIZE, output_soft_limit,
	    64 * SZ_K, 64 * SZ_G),
	KEY("output_soft_grace", CONF_DURATION, output_soft_grace_us,
	    0, US_H),
	KEY("output_hard_limit", CONF_SIZE, output_hard_limit,
	    64 * SZ_K, 64 * SZ_G),
	KEY("handshake_timeout", CONF_DURATION, handshake_timeout_us,
	    100 * US_MS, US_H),
	KEY("ping_interval", CONF_DURATION, ping_interval_us,
	    100 * US_MS, US_D),
	KEY("idle_timeout", CONF_DURATION, idle_timeout_us,
	    US_S, 7 * US_D),
	KEY("connect_wait", CONF_DURATION, connect_wait_us, 0, US_H),
	KEY("max_pending_mutations", CONF_COUNT, max_pending_mutations,
	    1, 1 << 20),
	KEY("provider_token", CONF_PATH, provider_token, 0, 0),
	KEY("query_max_rows", CONF_COUNT, query_max_rows, 1, 100000000),
	KEY("max_args_bytes", CONF_SIZE, max_args_bytes, 16, MESSAGE_MAX),
	KEY("max_document_bytes", CONF_SIZE, max_document_bytes,
	    16, MESSAGE_MAX),
	KEY("max_document_depth", CONF_COUNT, max_document_depth,
	    1, JSON_MAX_DEPTH),
	KEY("max_batch_ops", CONF_COUNT, max_batch_ops, 1, 1000000),
	KEY("synchronous", CONF_SYNC, synchronous_full, 0, 0),
	KEY("retention", CONF_DURATION, retention_us, 0, 3650 * US_D),
	KEY("idempotency_window", CONF_DURATION, idempotency_window_us,
	    0, 3650 * US_D),
	KEY("gc_interval", CONF_DURATION, gc_interval_us,
	    100 * US_MS, US_D),
	KEY("gc_step", CONF_DURATION, gc_step_us, 100, 10 * US_S),
	KEY("max_group_mutations", CONF_COUNT, max_group_mutations,
	    1, 1 << 16),
	KEY("gateway_output_limit", CONF_SIZE, gateway_output_limit,
	    SZ_M, 64 * SZ_G),
	KEY("max_gateways", CONF_COUNT, max_gateways, 1, 4096),
	KEY("gateway_user", CONF_USER, gateway_user, 0, 0),
	KEY("journal_size_limit", CONF_SIZE, journal_size_limit,
	    0, 1024 * SZ_G),
	KEY("checkpoint_interval", CONF_DURATION, checkpoint_interval_us,
	    10 * US_MS, US_H),
	KEY("action_timeout", CONF_DURATION, action_timeout_us,
	    10 * US_MS, US_D),
	KEY("action_queue", CONF_COUNT, action_queue, 0, 1 << 20),
};

/* Where an error is reported from. */
struct conf_ctx {
	const char	*name;		/* file name for messages */
	int		 lineno;	/* 0 once the whole text is read */
	char		*err;		/* message buffer, or NULL */
	size_t		 errlen;
};

static int	conf_error(struct conf_ctx *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Write "name:line: key: message" to the context's buffer; returns -1. */
static int
conf_error(struct conf_ctx *ctx, const char *key, const char *fmt, ...)
{
	char	 msg[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx->err == NULL || ctx->errlen == 0)
		return -1;
	if (ctx->lineno > 0 && key != NULL)
		snprintf(ctx->err, ctx->errlen, "%s:%d: %s: %s", ctx->name,
		    ctx->lineno, key, msg);
	else if (ctx->lineno > 0)
		snprintf(ctx->err, ctx->errlen, "%s:%d: %s", ctx->name,
		    ctx->lineno, msg);
	else if (key != NULL)
		snprintf(ctx->err, ctx->errlen, "%s: %s: %s", ctx->name, key,
		    msg);
	else
		snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->name, msg);
	return -1;
}

void
config_defaults(struct config *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->token_file = NULL;
	cf->token = NULL;
	cf->norigins = 0;
	cf->reuseport = 0;
	cf->static_dir = NULL;
	cf->static_max_file_bytes = 64 * SZ_M;
	cf->max_message_bytes = 1 * SZ_M;
	cf->chunk_bytes = 512 * SZ_K;
	cf->max_queries = 1024;
	cf->max_connections = 10000;
	cf->output_soft_limit = 8 * SZ_M;
	cf->output_soft_grace_us = 10 * US_S;
	cf->output_hard_limit = 32 * SZ_M;
	cf->handshake_timeout_us = 10 * US_S;
	cf->ping_interval_us = 5 * US_S;
	cf->idle_timeout_us = 120 * US_S;
	cf->connect_wait_us = 5 * US_S;
	cf->max_pending_mutations = 1024;
	cf->query_max_rows = 10000;
	cf->max_args_bytes = 1 * SZ_M;
	cf->max_document_bytes = 1 * SZ_M;
	cf->max_document_depth = 32;
	cf->max_batch_ops = 1000;
	cf->synchronous_full = 0;
	cf->retention_us = 1 * US_H;
	cf->idempotency_window_us = 24 * US_H;
	cf->gc_interval_us = 60 * US_S;
	cf->gc_step_us = 5 * US_MS;
	cf->max_group_mutations = 512;
	cf->gateway_output_limit = 64 * SZ_M;
	cf->max_gateways = 64;
	cf->gateway_user = NULL;
	cf->journal_size_limit = 64 * SZ_M;
	cf->checkpoint_interval_us = 1 * US_S;
	cf->action_timeout_us = 300 * US_S;
	cf->action_queue = 1024;
}

void
config_free(struct config *cf)
{
	size_t	 i;

	free(cf->token_file);
	cf->token_file = NULL;
	if (cf->token != NULL) {
		explicit_bzero(cf->token, strlen(cf->token));
		free(cf->token);
		cf->token = NULL;
	}
	for (i = 0; i < cf->norigins; i++) {
		free(cf->origins[i]);
		cf->origins[i] = NULL;
	}
	cf->norigins = 0;
	free(cf->static_dir);
	cf->static_dir = NULL;
	free(cf->gateway_user);
	cf->gateway_user = NULL;
	if (cf->provider_token != NULL) {
		explicit_bzero(cf->provider_token, strlen(cf->provider_token));
		free(cf->provider_token);
		cf->provider_token = NULL;
	}
}

/* 1 when s is a browser origin: http or https, a host, maybe a port. */
static int
origin_valid(const char *s)
{
	const char	*host;
	size_t		 i;

	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else
		return 0;
	if (*host == '\0' || *host == ':' || strlen(s) > ORIGIN_MAX)
		return 0;
	for (i = 0; host[i] != '\0'; i++)
		if (host[i] <= ' ' || host[i] > '~' || host[i] == '/')
			return 0;
	return 1;
}

/* 1 when s looks like a login name. */
static int
user_valid(const char *s)
{
	size_t	 i, n = strlen(s);

	if (n == 0 || n > USER_MAX || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

/*
 * 1 when s is a decimal number followed by letters only, which is all
 * parse_duration needs to see (it would take "nan" or hex from strtod).
 */
static int
duration_shape(const char *s)
{
	size_t	 n;

	if ((n = strspn(s, "0123456789.")) == 0)
		return 0;
	return s[n + strspn(s + n, "abcdefghijklmnopqrstuvwxyz")] == '\0';
}

/* A duration in the largest unit that writes it exactly. */
static const char *
fmt_duration(int64_t us, char *out, size_t len)
{
	static const struct {
		int64_t		 us;
		const char	*unit;
	} units[] = {
		{ US_D, "d" }, { US_H, "h" }, { US_M, "m" }, { US_S, "s" },
		{ US_MS, "ms" }, { 1, "us" },
	};
	size_t	 i;

	for (i = 0; i < nitems(units) - 1; i++)
		if (us != 0 && us % units[i].us == 0)
			break;
	snprintf(out, len, "%lld%s", (long long)(us / units[i].us),
	    units[i].unit);
	return out;
}

/* A size in the largest unit that writes it exactly. */
static const char *
fmt_size(uint64_t n, char *out, size_t len)
{
	if (n != 0 && n % SZ_G == 0)
		snprintf(out, len, "%lluG", (unsigned long long)(n / SZ_G));
	else if (n != 0 && n % SZ_M == 0)
		snprintf(out, len, "%lluM", (unsigned long long)(n / SZ_M));
	else if (n != 0 && n % SZ_K == 0)
		snprintf(out, len, "%lluK", (unsigned long long)(n / SZ_K));
	else
		snprintf(out, len, "%llu", (unsigned long long)n);
	return out;
}

/* Store one value; returns 0, or -1 with the error written. */
static int
conf_set(struct config *cf, const struct conf_key *k, const char *v,
    struct conf_ctx *ctx)
{
	char		*base = (char *)cf + k->off;
	char		**sp;
	char		 lo[DURATION_BUFLEN], hi[DURATION_BUFLEN];
	uint64_t	 u;
	int64_t		 i;

	switch (k->kind) {
	case CONF_PATH:
	case CONF_USER:
		if (k->kind == CONF_USER && !user_valid(v))
			return conf_error(ctx, k->name,
			    "not a user name: %s", v);
		sp = (char **)(void *)base;
		free(*sp);
		*sp = xstrdup(v);
		break;
	case CONF_ORIGIN:
		if (!origin_valid(v))
			return conf_error(ctx, k->name,
			    "not an http(s)://host[:port] origin: %s", v);
		if (cf->norigins >= CONFIG_MAX_ORIGINS)
			return conf_error(ctx, k->name,
			    "more than %d origins", CONFIG_MAX_ORIGINS);
		cf->origins[cf->norigins++] = xstrdup(v);
		break;
	case CONF_FLAG:
		if (strcmp(v, "yes") == 0)
			*(int *)(void *)base = 1;
		else if (strcmp(v, "no") == 0)
			*(int *)(void *)base = 0;
		else
			return conf_error(ctx, k->name,
			    "expected yes or no, not %s", v);
		break;
	case CONF_SYNC:
		if (strcmp(v, "full") == 0)
			*(int *)(void *)base = 1;
		else if (strcmp(v, "normal") == 0)
			*(int *)(void *)base = 0;
		else
			return conf_error(ctx, k->name,
			    "expected normal or full, not %s", v);
		break;
	case CONF_SIZE:
		if (parse_size(v, &u) == -1)
			return conf_error(ctx, k->name,
			    "not a size (like 4096, 64K, 1M, 2G): %s", v);
		if (u < (uint64_t)k->min || u > (uint64_t)k->max)
			return conf_error(ctx, k->name,
			    "%s is outside %s..%s bytes", v,
			    fmt_size((uint64_t)k->min, lo, sizeof(lo)),
			    fmt_size((uint64_t)k->max, hi, sizeof(hi)));
		*(uint64_t *)(void *)base = u;
		break;
	case CONF_COUNT:
		if (parse_i64(v, k->min, k->max, &i) == -1)
			return conf_error(ctx, k->name,
			    "not a number in %lld..%lld: %s",
			    (long long)k->min, (long long)k->max, v);
		*(int64_t *)(void *)base = i;
		break;
	case CONF_DURATION:
		if (!duration_shape(v) || parse_duration(v, &i) == -1)
			return conf_error(ctx, k->name,
			    "not a duration (like 500ms, 30s, 15m, 24h, 7d): %s",
			    v);
		if (i < k->min || i > k->max)
			return conf_error(ctx, k->name, "%s is outside %s..%s",
			    v, fmt_duration(k->min, lo, sizeof(lo)),
			    fmt_duration(k->max, hi, sizeof(hi)));
		*(int64_t *)(void *)base = i;
		break;
	}
	return 0;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* One line, NUL-terminated, of n bytes; seen[] marks keys already set. */
static int
conf_line(struct config *cf, char *line, size_t n, int *seen,
    struct conf_ctx *ctx)
{
	const struct conf_key	*k = NULL;
	char			*key, *v, *end;
	size_t			 i;

	for (i = 0; i < n; i++)
		if (((unsigned char)line[i] < 0x20 && !is_blank(line[i])) ||
		    line[i] == 0x7f)
			return conf_error(ctx, NULL,
			    "control character in line");
	key = line;
	while (is_blank(*key))
		key++;
	end = line + n;
	while (end > key && is_blank(end[-1]))
		*--end = '\0';
	if (*key == '\0' || *key == '#')
		return 0;
	for (v = key; *v != '\0' && !is_blank(*v); v++)
		;
	if (*v != '\0') {
		*v++ = '\0';
		while (is_blank(*v))
			v++;
	}
	for (i = 0; i < nitems(conf_keys); i++)
		if (strcmp(conf_keys[i].name, key) == 0) {
			k = &conf_keys[i];
			break;
		}
	if (k == NULL)
		return conf_error(ctx, NULL, "unknown key %s", key);
	if (*v == '\0')
		return conf_error(ctx, k->name, "missing value");
	for (end = v; *end != '\0'; end++)
		if (*end == '\t' || *end == '\r')
			return conf_error(ctx, k->name,
			    "control character in value");
	if (k->kind != CONF_ORIGIN && seen[i])
		return conf_error(ctx, k->name, "set twice (first on line %d)",
		    seen[i]);
	seen[i] = ctx->lineno;
	return conf_set(cf, k, v, ctx);
}

/* Settings that constrain each other. */
static int
conf_check(const struct config *cf, struct conf_ctx *ctx)
{
	char	 a[DURATION_BUFLEN], b[DURATION_BUFLEN];

	if (cf->chunk_bytes > cf->max_message_bytes)
		return conf_error(ctx, "chunk_bytes",
		    "%s is more than max_message_bytes (%s)",
		    fmt_size(cf->chunk_bytes, a, sizeof(a)),
		    fmt_size(cf->max_message_bytes, b, sizeof(b)));
	if (cf->output_soft_limit > cf->output_hard_limit)
		return conf_error(ctx, "output_soft_limit",
		    "%s is more than output_hard_limit (%s)",
		    fmt_size(cf->output_soft_limit, a, sizeof(a)),
		    fmt_size(cf->output_hard_limit, b, sizeof(b)));
	if (cf->chunk_bytes > cf->output_hard_limit)
		return conf_error(ctx, "chunk_bytes",
		    "%s is more than output_hard_limit (%s)",
		    fmt_size(cf->chunk_bytes, a, sizeof(a)),
		    fmt_size(cf->output_hard_limit, b, sizeof(b)));
	if (cf->ping_interval_us >= cf->idle_timeout_us)
		return conf_error(ctx, "ping_interval",
		    "%s is not less than idle_timeout (%s)",
		    fmt_duration(cf->ping_interval_us, a, sizeof(a)),
		    fmt_duration(cf->idle_timeout_us, b, sizeof(b)));
	return 0;
}

int
config_parse(struct config *cf, const char *text, size_t len,
    const char *name, char *err, size_t errlen)
{
	struct conf_ctx	 ctx;
	char		 line[CONFIG_MAX_LINE + 1];
	int		 seen[nitems(conf_keys)];
	const char	*eol;
	size_t		 pos = 0, n;

	ctx.name = name != NULL ? name : "config";
	ctx.lineno = 0;
	ctx.err = err;
	ctx.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(seen, 0, sizeof(seen));
	while (pos < len) {
		ctx.lineno++;
		eol = memchr(text + pos, '\n', len - pos);
		n = eol != NULL ? (size_t)(eol - (text + pos)) : len - pos;
		if (n > CONFIG_MAX_LINE)
			return conf_error(&ctx, NULL,
			    "line longer than %d bytes", CONFIG_MAX_LINE);
		if (memchr(text + pos, '\0', n) != NULL)
			return conf_error(&ctx, NULL, "NUL byte in line");
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (eol != NULL);
		if (conf_line(cf, line, n, seen, &ctx) == -1)
			return -1;
	}
	ctx.lineno = 0;
	return conf_check(cf, &ctx);
}

/*
 * Read at most max bytes of a regular file into a new NUL-terminated
 * string.  Returns it, or NULL with errno set (EFBIG when larger).
 */
static char *
read_file(const char *path, size_t max, size_t *lenp)
{
	struct stat	 st;
	char		*p = NULL;
	size_t		 len = 0;
	ssize_t		 r;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	p = xmalloc(max + 1);
	for (;;) {
		r = read(fd, p + len, max + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	p[len] = '\0';
	*lenp = len;
	return p;
 fail:
	saved = errno;
	if (p != NULL) {
		explicit_bzero(p, max + 1);
		free(p);
	}
	close(fd);
	errno = saved;
	return NULL;
}

/* Read, trim and check the token file named by cf->token_file. */
static int
config_read_token(struct config *cf, struct conf_ctx *ctx)
{
	char	*p, *s, *e;
	size_t	 len, n;

	if ((p = read_file(cf->token_file, TOKEN_FILE_MAX, &len)) == NULL)
		return conf_error(ctx, "token_file", "%s: %s", cf->token_file,
		    errno == EFBIG ? "file too large" : strerror(errno));
	s = p;
	e = p + len;
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		e--;
	n = (size_t)(e - s);
	if (n == 0) {
		conf_error(ctx, "token_file", "%s: empty", cf->token_file);
		goto fail;
	}
	if (n < TOKEN_MIN || n > TOKEN_MAX) {
		conf_error(ctx, "token_file", "%s: token must be %d to %d "
		    "characters long", cf->token_file, TOKEN_MIN, TOKEN_MAX);
		goto fail;
	}
	for (e = s; e < s + n; e++)
		if (*e <= ' ' || *e > '~') {
			conf_error(ctx, "token_file", "%s: token must be "
			    "printable ASCII without spaces", cf->token_file);
			goto fail;
		}
	if (cf->token != NULL) {
		explicit_bzero(cf->token, strlen(cf->token));
		free(cf->token);
	}
	cf->token = xstrndup(s, n);
	explicit_bzero(p, len);
	free(p);
	return 0;
 fail:
	explicit_bzero(p, len);
	free(p);
	return -1;
}

int
config_load(struct config *cf, const char *path, char *err, size_t errlen)
{
	struct conf_ctx	 ctx;
	char		*text;
	size_t		 len;

	ctx.name = path;
	ctx.lineno = 0;
	ctx.err = err;
	ctx.errlen = errlen;
	if ((text = read_file(path, CONFIG_MAX_FILE, &len)) == NULL)
		return conf_error(&ctx, NULL, "%s", errno == EFBIG ?
		    "file too large" : strerror(errno));
	if (config_parse(cf, text, len, path, err, errlen) == -1)
		goto fail;
	free(text);
	if (cf->token_file != NULL && config_read_token(cf, &ctx) == -1)
		return -1;
	return 0;
 fail:
	free(text);
	return -1;
}
