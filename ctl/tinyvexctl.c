/*
 * tinyvexctl: the admin client.  It sends one command to writerd over
 * DIR/control.sock (proto/ctl.h), waits a bounded time for the one
 * reply, and prints it: readable aligned text by default, the reply's
 * JSON text as-is with -j.  Commands live in one table; each handler
 * checks its arguments and hands the reply to one of the output's
 * functions.  Exit status 0 when writerd ran the command, 1 otherwise,
 * with the reason on stderr.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "ipc.h"
#include "json.h"
#include "proto/ctl.h"
#include "util.h"

#define CTL_TIMEOUT_MS		(10 * 1000)	/* wait for most replies */
#define CTL_SLOW_TIMEOUT_MS	(600 * 1000)	/* gc and backup: long runs */
#define CTL_SEQ			1		/* the one request's number */
#define CTL_REPLY_SLACK		64	/* msgpack array, bool, str headers */
#define CTL_CMD_WORDS		2	/* longest command name, in words */

/* A reply writerd sent. */
struct reply {
	char		*json;		/* its JSON text, NUL-terminated */
	size_t		 len;		/* bytes of json */
	cJSON		*tree;		/* json parsed; numbers as exact Raw */
};

/* How a successful reply is shown: text or JSON. */
struct output {
	void	(*status)(const struct reply *);
	void	(*stats)(const struct reply *);
	void	(*result)(const struct reply *);	/* any other command */
};

struct ctl {
	char			*sockpath;	/* DIR/control.sock */
	const struct output	*out;
};

struct ctl_cmd;
typedef int (*ctl_handler)(struct ctl *, const struct ctl_cmd *, int,
    char **);

struct ctl_cmd {
	const char	*name;		/* as typed, one or two words */
	const char	*args;		/* argument synopsis, for usage */
	int		 minargs, maxargs;
	int		 timeout_ms;	/* how long to wait for the reply */
	ctl_handler	 fn;
};

/* One line of text output. */
struct row {
	char		*key;		/* dotted path below the section */
	char		*value;		/* printable text */
};

struct rows {
	struct row	*v;
	size_t		 n, cap;
	size_t		 width;		/* longest key */
};

static int	do_plain(struct ctl *, const struct ctl_cmd *, int, char **);
static int	do_status(struct ctl *, const struct ctl_cmd *, int, char **);
static int	do_stats(struct ctl *, const struct ctl_cmd *, int, char **);
static int	do_gc(struct ctl *, const struct ctl_cmd *, int, char **);
static int	do_backup(struct ctl *, const struct ctl_cmd *, int, char **);

static const struct ctl_cmd ctl_commands[] = {
	{ "status",		"",			0, 0,
	    CTL_TIMEOUT_MS,	do_status },
	{ "stats",		"",			0, 0,
	    CTL_TIMEOUT_MS,	do_stats },
	{ "checkpoint",		"",			0, 0,
	    CTL_TIMEOUT_MS,	do_plain },
	{ "log",		"verbose|brief",	1, 1,
	    CTL_TIMEOUT_MS,	do_plain },
	{ "schema reload",	"",			0, 0,
	    CTL_TIMEOUT_MS,	do_plain },
	{ "gc",			"[--keep DURATION]",	0, 2,
	    CTL_SLOW_TIMEOUT_MS, do_gc },
	{ "backup",		"PATH",			1, 1,
	    CTL_SLOW_TIMEOUT_MS, do_backup },
};

static void	text_kv(const struct reply *);
static void	text_stats(const struct reply *);
static void	text_providers(const cJSON *);
static void	json_raw(const struct reply *);

static const struct output output_text = {
	text_kv, text_stats, text_kv
};

static const struct output output_json = {
	json_raw, json_raw, json_raw
};

static void __attribute__((noreturn))
usage(void)
{
	size_t	 i;

	fprintf(stderr, "usage: tinyvexctl [-j] [-r DIR] COMMAND [ARG ...]\n"
	    "commands:\n");
	for (i = 0; i < nitems(ctl_commands); i++)
		fprintf(stderr, "\t%s%s%s\n", ctl_commands[i].name,
		    ctl_commands[i].args[0] != '\0' ? " " : "",
		    ctl_commands[i].args);
	exit(1);
}

static void __attribute__((noreturn))
cmd_usage(const struct ctl_cmd *cmd)
{
	fprintf(stderr, "usage: tinyvexctl [-j] [-r DIR] %s%s%s\n", cmd->name,
	    cmd->args[0] != '\0' ? " " : "", cmd->args);
	exit(1);
}

/*
 * The command whose words start argv, with *nwords set to how many words
 * its name takes; NULL when none matches.
 */
static const struct ctl_cmd *
cmd_lookup(int argc, char **argv, int *nwords)
{
	char		 copy[64], *words[CTL_CMD_WORDS], *w, *last;
	size_t		 i;
	int		 n, k;

	for (i = 0; i < nitems(ctl_commands); i++) {
		strlcpy_tv(copy, ctl_commands[i].name, sizeof(copy));
		n = 0;
		for (w = strtok_r(copy, " ", &last); w != NULL && n <
		    CTL_CMD_WORDS; w = strtok_r(NULL, " ", &last))
			words[n++] = w;
		if (n > argc)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(words[k], argv[k]) != 0)
				break;
		if (k == n) {
			*nwords = n;
			return &ctl_commands[i];
		}
	}
	return NULL;
}

/*
 * Wait until fd is ready for events, or the deadline (mono_us) passes.
 * Returns 0, or -1 with errno set (ETIMEDOUT at the deadline).
 */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd	 pfd;
	int64_t		 left;
	int		 n;

	for (;;) {
		if ((left = (deadline - mono_us()) / 1000) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n == 1)
			return 0;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

/* Send all of p before the deadline: 0, or -1 with errno set. */
static int
send_all(int fd, const void *p, size_t len, int64_t deadline)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		if (wait_fd(fd, POLLOUT, deadline) == -1)
			return -1;
		n = send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read len bytes before the deadline.  Returns the bytes read (fewer
 * than len only at end of file), or -1 with errno set.
 */
static ssize_t
recv_full(int fd, void *p, size_t len, int64_t deadline)
{
	char	*d = p;
	size_t	 got = 0;
	ssize_t	 n;

	while (got < len) {
		if (wait_fd(fd, POLLIN, deadline) == -1)
			return -1;
		n = recv(fd, d + got, len - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Connect to control.sock: the socket, or -1 after saying why. */
static int
ctl_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd, saved;

	if (unix_addr(&sun, path) == -1) {
		warnx("%s: path too long for a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		warn("socket");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		warnx("cannot connect to %s: %s%s", path, strerror(saved),
		    saved == ENOENT || saved == ECONNREFUSED ?
		    " (is writerd running?)" : "");
		return -1;
	}
	return fd;
}

/*
 * Say why talking to writerd failed: n is what send_all or recv_full
 * returned, midreply whether part of the reply had arrived.
 */
static void
io_warn(ssize_t n, int midreply, int timeout_ms)
{
	if (n == -1 && errno == ETIMEDOUT)
		warnx("no reply from writerd within %d s", timeout_ms / 1000);
	else if (n == -1 && errno != EPIPE && errno != ECONNRESET)
		warn("control.sock");
	else if (midreply)
		warnx("writerd closed the connection in mid-reply");
	else
		warnx("writerd closed the connection without a reply");
}

/*
 * Read one CTL_REPLY frame, bounded by CTL_MAX_REPLY, and take it apart
 * with the fail-closed reader.  Returns 0 with *ok and r->json set, or -1
 * after saying why.
 */
static int
reply_read(int fd, int64_t deadline, int timeout_ms, int *ok,
    struct reply *r)
{
	unsigned char		 hdr[IPC_HDR_LEN], *frame = NULL;
	struct ipc_hdr		 h;
	struct ipc_reader	 rd;
	const char		*s;
	size_t			 len, slen;
	ssize_t			 n;
	const size_t		 max = IPC_HDR_LEN + CTL_MAX_REPLY +
				    CTL_REPLY_SLACK;

	if ((n = recv_full(fd, hdr, sizeof(hdr), deadline)) !=
	    (ssize_t)sizeof(hdr)) {
		io_warn(n, n > 0, timeout_ms);
		return -1;
	}
	if (ipc_frame_peek(hdr, sizeof(hdr), max, NULL) == -1)
		goto bad;
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
	    (size_t)hdr[2] << 8 | hdr[3];
	frame = xmalloc(len);
	memcpy(frame, hdr, sizeof(hdr));
	if ((n = recv_full(fd, frame + sizeof(hdr), len - sizeof(hdr),
	    deadline)) != (ssize_t)(len - sizeof(hdr))) {
		io_warn(n, 1, timeout_ms);
		goto fail;
	}
	if (ipc_frame_peek(frame, len, max, &h) != (long)len ||
	    h.type != CTL_REPLY || h.seq != CTL_SEQ ||
	    ipc_reader_init(&rd, frame + IPC_HDR_LEN, len - IPC_HDR_LEN, 2)
	    == -1)
		goto bad;
	ipc_get_bool(&rd, ok);
	ipc_get_str(&rd, &s, &slen, CTL_MAX_REPLY);
	if (ipc_end(&rd) == -1 || memchr(s, '\0', slen) != NULL)
		goto bad;
	r->json = xmalloc(slen + 1);
	memcpy(r->json, s, slen);
	r->json[slen] = '\0';
	r->len = slen;
	free(frame);
	return 0;
bad:
	warnx("malformed reply from writerd");
fail:
	free(frame);
	return -1;
}

/*
 * Send one CTL_REQUEST and read its reply within the command's timeout.
 * Returns 0 with *ok and r->json set, or -1 after saying why.
 */
static int
ctl_request(const struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv, int *ok, struct reply *r)
{
	struct ipc_msg		 m;
	const struct buf	*f;
	int64_t			 deadline;
	int			 fd, i, rc = -1;

	if (argc > CTL_MAX_ARGS) {
		warnx("too many arguments");
		return -1;
	}
	for (i = 0; i < argc; i++)
		if (strlen(argv[i]) > CTL_MAX_ARG_LEN) {
			warnx("argument longer than %d bytes",
			    CTL_MAX_ARG_LEN);
			return -1;
		}
	if ((fd = ctl_connect(ctl->sockpath)) == -1)
		return -1;
	deadline = mono_us() + (int64_t)cmd->timeout_ms * 1000;
	ipc_msg_init(&m, CTL_REQUEST, CTL_SEQ, 3);
	ipc_add_u64(&m, CTL_VERSION);
	ipc_add_cstr(&m, cmd->name);
	ipc_add_array(&m, (uint32_t)argc);
	for (i = 0; i < argc; i++)
		ipc_add_cstr(&m, argv[i]);
	f = ipc_msg_finish(&m);
	if (send_all(fd, f->data, f->len, deadline) == -1) {
		io_warn(-1, 0, cmd->timeout_ms);
		goto fail;
	}
	if (reply_read(fd, deadline, cmd->timeout_ms, ok, r) == -1)
		goto fail;
	rc = 0;
fail:
	ipc_msg_free(&m);
	close(fd);
	return rc;
}

/*
 * The next number token in [p, end) outside strings, with *len its
 * length; NULL when there is none.  The text is valid JSON already.
 */
static const char *
next_number(const char *p, const char *end, size_t *len)
{
	const char	*q;
	int		 instr = 0;

	for (; p < end; p++) {
		if (instr) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				instr = 0;
		} else if (*p == '"')
			instr = 1;
		else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			for (q = p; q < end && (strchr("0123456789+-.eE", *q)
			    != NULL); q++)
				;
			*len = (size_t)(q - p);
			return p;
		}
	}
	return NULL;
}

/*
 * cJSON keeps numbers only as doubles.  Turn every number in the list
 * starting at item into a Raw item holding its exact text, so integers
 * print as writerd wrote them.  Numbers occur in the text in the order of
 * a depth-first walk of the tree (json_parse refuses duplicate members,
 * so none was dropped).  Returns 0, or -1 when the text runs out first.
 */
static int
numbers_exact(cJSON *item, const char **pos, const char *end)
{
	const char	*p;
	size_t		 len;

	for (; item != NULL; item = item->next) {
		if (cJSON_IsNumber(item)) {
			if ((p = next_number(*pos, end, &len)) == NULL)
				return -1;
			item->type = cJSON_Raw;
			item->valuestring = xstrndup(p, len);
			*pos = p + len;
		} else if (item->child != NULL &&
		    numbers_exact(item->child, pos, end) == -1)
			return -1;
	}
	return 0;
}

/* Parse r->json into r->tree, a JSON object: 0, or -1. */
static int
reply_parse(struct reply *r)
{
	const char	*pos = r->json, *end = r->json + r->len;
	enum json_err	 jerr;
	size_t		 len;

	if ((r->tree = json_parse(r->json, r->len, JSON_MAX_DEPTH, &jerr)) ==
	    NULL || !cJSON_IsObject(r->tree) ||
	    numbers_exact(r->tree->child, &pos, end) == -1 ||
	    next_number(pos, end, &len) != NULL)
		return -1;
	return 0;
}

/*
 * Run a command and show its reply with show.  Returns 0, or -1 after
 * saying why (writerd's own message when it refused).
 */
static int
ctl_run(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv,
    void (*show)(const struct reply *))
{
	struct reply	 r;
	const cJSON	*e;
	int		 ok = 0, rc = -1;

	memset(&r, 0, sizeof(r));
	if (ctl_request(ctl, cmd, argc, argv, &ok, &r) == -1)
		return -1;
	if (reply_parse(&r) == -1) {
		warnx("malformed reply from writerd");
		goto fail;
	}
	if (!ok) {
		e = json_get(r.tree, "error");
		if (cJSON_IsString(e))
			warnx("%s", e->valuestring);
		else
			warnx("%s failed: %s", cmd->name, r.json);
		goto fail;
	}
	show(&r);
	rc = 0;
fail:
	cJSON_Delete(r.tree);
	free(r.json);
	return rc;
}

/*
 * Handlers.  Each checks what only the client can check, then runs the
 * command; writerd validates the rest and says what is wrong.
 */

static int
do_plain(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	return ctl_run(ctl, cmd, argc, argv, ctl->out->result);
}

static int
do_status(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	return ctl_run(ctl, cmd, argc, argv, ctl->out->status);
}

static int
do_stats(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	return ctl_run(ctl, cmd, argc, argv, ctl->out->stats);
}

static int
do_gc(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	int64_t	 keep;

	if (argc != 0 && (argc != 2 || strcmp(argv[0], "--keep") != 0))
		cmd_usage(cmd);
	if (argc == 2 && parse_duration(argv[1], &keep) == -1) {
		warnx("bad duration %s (e.g. 90s, 30m, 1h, 7d)", argv[1]);
		return -1;
	}
	return ctl_run(ctl, cmd, argc, argv, ctl->out->result);
}

static int
do_backup(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	char	*cwd, *path;
	int	 rc;

	(void)argc;
	if (argv[0][0] == '\0')
		cmd_usage(cmd);
	if (argv[0][0] == '/')
		return ctl_run(ctl, cmd, 1, argv, ctl->out->result);
	/* writerd runs elsewhere: a relative path means ours. */
	if ((cwd = getcwd(NULL, 0)) == NULL) {
		warn("getcwd");
		return -1;
	}
	path = path_join(cwd, argv[0]);
	rc = ctl_run(ctl, cmd, 1, &path, ctl->out->result);
	free(path);
	free(cwd);
	return rc;
}

/*
 * Text output.  An object becomes aligned "key: value" lines; nested
 * objects flatten to dotted keys.  Strings lose control characters so a
 * reply cannot drive the terminal.
 */

static char *
printable(char *s)
{
	unsigned char	*p;

	for (p = (unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

static char *
value_text(const cJSON *v)
{
	struct buf	 b;

	if (cJSON_IsString(v))
		return printable(xstrdup(v->valuestring));
	if (cJSON_IsRaw(v))
		return xstrdup(v->valuestring);
	if (cJSON_IsNull(v))
		return xstrdup("-");
	buf_init(&b);
	json_print(&b, v);
	return printable(buf_steal(&b, NULL));
}

/* prefix.name, or name alone without a prefix, in a new string. */
static char *
key_join(const char *prefix, const char *name)
{
	struct buf	 b;

	if (prefix == NULL)
		return xstrdup(name);
	buf_init(&b);
	buf_printf(&b, "%s.%s", prefix, name);
	return buf_steal(&b, NULL);
}

static void
rows_add(struct rows *rs, const char *prefix, const char *name, char *value)
{
	struct row	*r;
	size_t		 len;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap == 0 ? 16 : rs->cap * 2;
		rs->v = xreallocarray(rs->v, rs->cap, sizeof(*rs->v));
	}
	r = &rs->v[rs->n++];
	r->key = printable(key_join(prefix, name));
	r->value = value;
	if ((len = strlen(r->key)) > rs->width)
		rs->width = len;
}

/*
 * Add obj's members, except those named in skip (NULL-terminated, or
 * NULL), under prefix.
 */
static void
rows_add_object(struct rows *rs, const cJSON *obj, const char *prefix,
    const char *const *skip)
{
	const cJSON		*m;
	const char *const	*s;
	char			*key;

	for (m = obj != NULL ? obj->child : NULL; m != NULL; m = m->next) {
		for (s = skip; s != NULL && *s != NULL; s++)
			if (strcmp(*s, m->string) == 0)
				break;
		if (s != NULL && *s != NULL)
			continue;
		if (cJSON_IsObject(m) && m->child != NULL) {
			key = key_join(prefix, m->string);
			rows_add_object(rs, m, key, NULL);
			free(key);
		} else
			rows_add(rs, prefix, m->string, value_text(m));
	}
}

/* Print and empty the rows, each line starting with indent spaces. */
static void
rows_print(struct rows *rs, int indent)
{
	size_t	 i;

	for (i = 0; i < rs->n; i++) {
		printf("%*s%s:%*s %s\n", indent, "", rs->v[i].key,
		    (int)(rs->width - strlen(rs->v[i].key)), "",
		    rs->v[i].value);
		free(rs->v[i].key);
		free(rs->v[i].value);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

static void
text_kv(const struct reply *r)
{
	struct rows	 rs;

	memset(&rs, 0, sizeof(rs));
	rows_add_object(&rs, r->tree, NULL, NULL);
	rows_print(&rs, 0);
}

/*
 * One section per action provider: its functions, then its calls in
 * flight, completed, failed and timed out.  (The totals are in the
 * writer's section.)
 */
static void
text_providers(const cJSON *a)
{
	static const struct {
		const char	*key, *label;
	} figures[] = {
		{ "concurrency",	"concurrency" },
		{ "in_flight",		"in flight" },
		{ "sent",		"sent" },
		{ "completed",		"completed" },
		{ "failed",		"failed" },
		{ "timed_out",		"timed out" },
	};
	const cJSON	*p, *f, *v;
	struct rows	 rs;
	char		*t;
	size_t		 i;
	int		 n;

	memset(&rs, 0, sizeof(rs));
	cJSON_ArrayForEach(p, json_get(a, "providers")) {
		t = value_text(json_get(p, "gateway"));
		printf("\nprovider %s/", t);
		free(t);
		t = value_text(json_get(p, "id"));
		printf("%s\n", t);
		free(t);
		n = 0;
		printf("  functions:");
		cJSON_ArrayForEach(f, json_get(p, "functions")) {
			t = value_text(f);
			printf("%s %s", n++ > 0 ? "," : "", t);
			free(t);
		}
		putchar('\n');
		for (i = 0; i < nitems(figures); i++)
			if ((v = json_get(p, figures[i].key)) != NULL)
				rows_add(&rs, NULL, figures[i].label,
				    value_text(v));
		rows_print(&rs, 4);
	}
}

/* The writer's figures, then one section per gateway. */
static void
text_stats(const struct reply *r)
{
	static const char *const skip_gw[] = { "id", "stats", NULL };
	static const char *const skip_actions[] = { "providers", NULL };
	const cJSON	*gws, *g, *id;
	struct rows	 rs;
	char		*name;

	memset(&rs, 0, sizeof(rs));
	printf("writer\n");
	rows_add_object(&rs, json_get(r->tree, "writer"), NULL, NULL);
	rows_add_object(&rs, json_get(r->tree, "actions"), "actions",
	    skip_actions);
	rows_print(&rs, 2);
	text_providers(json_get(r->tree, "actions"));
	if (!cJSON_IsArray(gws = json_get(r->tree, "gateways")))
		gws = NULL;
	if (cJSON_GetArraySize(gws) == 0)
		printf("\nno gateways connected\n");
	cJSON_ArrayForEach(g, gws) {
		id = json_get(g, "id");
		name = value_text(id != NULL ? id : g);
		printf("\ngateway %s\n", name);
		free(name);
		if (cJSON_IsObject(g)) {
			rows_add_object(&rs, g, NULL, skip_gw);
			rows_add_object(&rs, json_get(g, "stats"), NULL, NULL);
		}
		rows_print(&rs, 2);
	}
}

static void
json_raw(const struct reply *r)
{
	fwrite(r->json, 1, r->len, stdout);
	putchar('\n');
}

int
main(int argc, char *argv[])
{
	const struct ctl_cmd	*cmd;
	struct ctl		 ctl;
	char			*dir = NULL, *statedir;
	int			 ch, n, rc;

	memset(&ctl, 0, sizeof(ctl));
	ctl.out = &output_text;
	/* '+': stop at the command, so "gc --keep 1h" stays its own. */
	while ((ch = getopt(argc, argv, "+jr:")) != -1) {
		switch (ch) {
		case 'j':
			ctl.out = &output_json;
			break;
		case 'r':
			dir = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage();
	if ((cmd = cmd_lookup(argc, argv, &n)) == NULL) {
		warnx("unknown command %s", argv[0]);
		usage();
	}
	argc -= n;
	argv += n;
	if (argc < cmd->minargs || argc > cmd->maxargs)
		cmd_usage(cmd);

	statedir = statedir_path(dir);
	ctl.sockpath = path_join(statedir, TINYVEX_CONTROL_SOCK);
	rc = cmd->fn(&ctl, cmd, argc, argv);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		warn("stdout");
		rc = -1;
	}
	free(ctl.sockpath);
	free(statedir);
	return rc == 0 ? 0 : 1;
}
