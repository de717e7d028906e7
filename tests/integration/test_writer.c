/*
 * Integration test of writerd through its real writer.sock.  The program
 * starts the writerd named by argv[1] on a fresh state directory (with a
 * schema file that declares one user index) and acts as several gateways
 * at once, each a non-blocking Unix socket driven by one poll loop:
 *
 *   - concurrent pipelined insert streams: every mutation answered, ts
 *     distinct and increasing, every link sees every commit notice in ts
 *     order with prev_ts chaining, every acknowledged insert stored;
 *   - group commits in which a failing mutation sits between two that
 *     succeed: the failure writes nothing and has no notice;
 *   - idempotent resends (same and other args, other gateway, integer
 *     and string request ids, other sessions, recorded failures);
 *   - the write sets of inserts, patches and deletes, keys decoded;
 *   - malformed frames, each of which must drop only its own link;
 *   - SIGTERM: exit status 0 in time, and a restart sees the same data;
 *   - a gateway that sends without reading is dropped at the output
 *     bound, and only it.
 *
 * The database is checked directly through a read-only SQLite
 * connection.  On failure the state directory is kept and the end of
 * writerd's log is printed.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "daemon.h"
#include "ipc.h"
#include "json.h"
#include "keys.h"
#include "proto/errors.h"
#include "proto/ipc.h"
#include "store.h"
#include "util.h"

/* The document id at the end of an index key (0x05, the id, 0x00 0x00). */
#define KEY_ID_SQL	"CAST(substr(key, -28, 26) AS TEXT)"

#define NSTREAMS		4	/* gateways of the concurrent streams */
#define STREAM_MUTATIONS	500	/* inserts each of them sends */
#define STREAM_INFLIGHT		50	/* unanswered inserts per gateway */
#define MAX_LINKS		16	/* links the test holds at once */
#define MAX_WDOCS		8	/* documents in one decoded write set */
#define MAX_WKEYS		8	/* indexes of one decoded write */
#define MAX_SEQ			4096	/* mutations one link may send */
#define READ_CHUNK		65536	/* bytes asked of one read */
#define POLL_SLICE_MS		50	/* longest single poll */
#define START_TIMEOUT_MS	15000	/* writerd answers on writer.sock */
#define WAIT_TIMEOUT_MS		30000	/* an expected frame arrives */
/*
 * A bad frame must close its link well before writerd's HELLO timeout
 * (5 s) could be the reason.
 */
#define DROP_TIMEOUT_MS		3000
#define STOP_TIMEOUT_MS		5000	/* exit after SIGTERM */
#define LATE_MUTATIONS		20	/* in flight when SIGTERM arrives */
#define LOG_TAIL_BYTES		6000	/* of writerd's log, on failure */
#define BAD_RANDOM_BYTES	200	/* garbage sent in one malformed case */
/*
 * Section 7 runs writerd with the smallest output bound (1 MiB) and
 * args bound; FLOOD_MUTATIONS refused answers pass the bound plus what
 * the socket buffers hold.
 */
#define FLOOD_OUTPUT_LIMIT	"1M"
#define FLOOD_MAX_ARGS		"24"
#define FLOOD_MUTATIONS		60000
#define FLOOD_TIMEOUT_MS	20000

/* A commit notice as a link received it. */
struct notice {
	int64_t		 ts;
	int64_t		 prev_ts;
	int64_t		 catalog_version;
	int		 has_writes;	/* writes not nil */
	unsigned char	*body;		/* copy of the frame body */
	size_t		 len;
};

/* The answer to one IPC_MUTATE. */
struct result {
	int		 got;
	int64_t		 ts;
	int64_t		 code;
	char		*message;
	char		*value;
	size_t		 notices_before;	/* notices received before it */
};

/* One gateway link, from the gateway's side. */
struct link {
	int		 fd;
	char		 name[32];
	struct buf	 in;		/* received, not yet framed */
	struct buf	 out;		/* queued, not yet written */
	int		 eof;		/* closed by the peer, or failed */
	int		 broken;	/* writerd sent a bad frame: ignored */
	int		 mute;		/* not read until it fails; data dropped */
	int		 welcomed;
	uint32_t	 welcome_version;
	int64_t		 welcome_ts;
	int64_t		 welcome_catver;
	struct notice	*notices;
	size_t		 nnotices, capnotices;
	struct result	*results;	/* MAX_SEQ, indexed by seq */
	uint32_t	 next_seq;	/* seq of the next IPC_MUTATE */
	size_t		 nresults;	/* results received */
};

/* One index key of a decoded write set; old and new point into a body. */
struct tkey {
	int64_t			 index_id;
	const unsigned char	*old, *new;	/* NULL: nil */
	size_t			 oldlen, newlen;
};

/* One document of a decoded write set. */
struct tdoc {
	int64_t		 table_id;
	char		 id[STORE_ID_LEN + 1];
	struct tkey	 keys[MAX_WKEYS];
	size_t		 nkeys;
};

/* An acknowledged insert of the concurrent streams. */
struct acked {
	int64_t		 ts;
	char		 id[STORE_ID_LEN + 1];
	int		 conn, i;
};

/* The test's one context. */
struct itest {
	const char	*writerd;	/* argv[1] */
	char		 dir[PATH_MAX];
	char		*sock, *dbpath, *logpath, *schemapath;
	char		*confpath;	/* -f FILE when not NULL */
	pid_t		 pid;		/* writerd, 0 when not running */
	int		 stopping;	/* writerd may exit now */
	struct link	*links[MAX_LINKS];
	size_t		 nlinks;
	int		 nchecks, nfailed;
};

static struct itest	 T;

#define CHECK(c)	check((c), #c, __LINE__)
#define REQUIRE(c)	do {						\
		if (!check((c), #c, __LINE__))				\
			bail(__LINE__, "cannot go on");			\
	} while (0)

static void	 bail(int, const char *, ...)
		    __attribute__((format(printf, 2, 3), noreturn));
static void	 pump_once(int);

static int
check(int ok, const char *what, int line)
{
	T.nchecks++;
	if (!ok) {
		T.nfailed++;
		fprintf(stderr, "FAIL line %d: %s\n", line, what);
	}
	return ok;
}

static int64_t
ms_now(void)
{
	return mono_us() / 1000;
}

static void
print_log_tail(void)
{
	char	 b[LOG_TAIL_BYTES + 1];
	ssize_t	 n;
	off_t	 size;
	int	 fd;

	if (T.logpath == NULL || (fd = open(T.logpath, O_RDONLY)) == -1)
		return;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0,
	    SEEK_SET);
	if ((n = read(fd, b, LOG_TAIL_BYTES)) > 0) {
		b[n] = '\0';
		fprintf(stderr, "--- end of %s ---\n%s--- end ---\n",
		    T.logpath, b);
	}
	close(fd);
}

static void
bail(int line, const char *fmt, ...)
{
	va_list	 ap;
	int	 status;

	fprintf(stderr, "FATAL line %d: ", line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (T.pid > 0) {
		kill(T.pid, SIGKILL);
		waitpid(T.pid, &status, 0);
		T.pid = 0;
	}
	print_log_tail();
	fprintf(stderr, "state directory kept: %s\n", T.dir);
	fprintf(stderr, "%d checks, %d failed before the fatal one\n",
	    T.nchecks, T.nfailed);
	exit(1);
}

/*
 * writerd.
 */

/* 1 while writerd runs; reaps it (status in *status) once it exited. */
static int
writerd_alive(int *status)
{
	int	 st = 0;
	pid_t	 r;

	if (T.pid <= 0)
		return 0;
	r = waitpid(T.pid, &st, WNOHANG);
	if (r == T.pid) {
		T.pid = 0;
		if (status != NULL)
			*status = st;
		return 0;
	}
	return r == 0 && kill(T.pid, 0) == 0;
}

static int
sock_connect(void)
{
	struct sockaddr_un	 sun;
	int			 fd;

	if (unix_addr(&sun, T.sock) == -1)
		bail(__LINE__, "socket path too long");
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		bail(__LINE__, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Start writerd on the state directory and wait until it accepts. */
static void
writerd_start(void)
{
	int64_t	 t0;
	pid_t	 pid;
	int	 fd, st;

	if ((pid = fork()) == -1)
		bail(__LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Never outlive the test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open(T.logpath, O_WRONLY | O_CREAT | O_APPEND,
		    0600)) == -1)
			_exit(126);
		dup2(fd, STDERR_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
		if ((fd = open("/dev/null", O_RDONLY)) != -1) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		signal(SIGPIPE, SIG_DFL);
		if (T.confpath != NULL)
			execl(T.writerd, "writerd", "-d", "-r", T.dir, "-s",
			    T.schemapath, "-f", T.confpath, (char *)NULL);
		else
			execl(T.writerd, "writerd", "-d", "-r", T.dir, "-s",
			    T.schemapath, (char *)NULL);
		_exit(127);
	}
	T.pid = pid;
	T.stopping = 0;
	t0 = ms_now();
	for (;;) {
		if (!writerd_alive(&st))
			bail(__LINE__, "writerd exited at start (status %d)",
			    st);
		if ((fd = sock_connect()) != -1) {
			/* An unused link: writerd logs it and moves on. */
			close(fd);
			break;
		}
		if (ms_now() - t0 > START_TIMEOUT_MS)
			bail(__LINE__, "writerd did not answer on %s",
			    T.sock);
		usleep(10 * 1000);
	}
}

/*
 * Send SIGTERM and wait for the exit, reading the links meanwhile (so
 * writerd's last answers are taken in).  Returns the wait status; sets
 * *ms to the time the exit took.
 */
static int
writerd_stop(int64_t *ms)
{
	int64_t		 t0;
	int		 st = -1;

	REQUIRE(T.pid > 0);
	T.stopping = 1;
	t0 = ms_now();
	if (kill(T.pid, SIGTERM) == -1)
		bail(__LINE__, "kill: %s", strerror(errno));
	while (writerd_alive(&st)) {
		if (ms_now() - t0 > STOP_TIMEOUT_MS + 1000) {
			*ms = ms_now() - t0;
			kill(T.pid, SIGKILL);
			waitpid(T.pid, &st, 0);
			T.pid = 0;
			return -1;
		}
		pump_once(5);
	}
	*ms = ms_now() - t0;
	return st;
}

/*
 * Links.
 */

static void
link_register(struct link *l)
{
	if (T.nlinks == MAX_LINKS)
		bail(__LINE__, "too many links");
	T.links[T.nlinks++] = l;
}

static struct link *
link_open(const char *name)
{
	struct link	*l;
	int		 fd;

	if ((fd = sock_connect()) == -1)
		bail(__LINE__, "connect %s: %s", T.sock, strerror(errno));
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		bail(__LINE__, "fcntl: %s", strerror(errno));
	l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	strlcpy_tv(l->name, name, sizeof(l->name));
	buf_init(&l->in);
	buf_init(&l->out);
	l->next_seq = 1;
	/* Never moved: callers keep pointers to results. */
	l->results = xcalloc(MAX_SEQ, sizeof(*l->results));
	link_register(l);
	return l;
}

static void
link_close(struct link *l)
{
	size_t	 i;

	for (i = 0; i < T.nlinks; i++)
		if (T.links[i] == l) {
			T.links[i] = T.links[--T.nlinks];
			break;
		}
	close(l->fd);
	for (i = 0; i < l->nnotices; i++)
		free(l->notices[i].body);
	free(l->notices);
	for (i = 0; i < MAX_SEQ; i++) {
		free(l->results[i].message);
		free(l->results[i].value);
	}
	free(l->results);
	buf_free(&l->in);
	buf_free(&l->out);
	free(l);
}

static void
link_queue(struct link *l, const void *p, size_t len)
{
	buf_add(&l->out, p, len);
}

static void
link_queue_msg(struct link *l, struct ipc_msg *m)
{
	const struct buf	*f = ipc_msg_finish(m);

	link_queue(l, f->data, f->len);
	ipc_msg_free(m);
}

/* One frame from writerd: anything malformed is a failed check. */
static void
link_frame(struct link *l, const struct ipc_hdr *h, const unsigned char *body,
    size_t len)
{
	struct ipc_reader	 r;
	struct notice		*n;
	struct result		*res;
	const char		*msg, *val;
	size_t			 msglen, vallen;
	uint32_t		 u;

	switch (h->type) {
	case IPC_WELCOME:
		ipc_reader_init(&r, body, len, 3);
		ipc_get_u32(&r, &l->welcome_version);
		ipc_get_i64(&r, &l->welcome_ts);
		ipc_get_i64(&r, &l->welcome_catver);
		if (!CHECK(ipc_end(&r) == 0 && !l->welcomed))
			l->broken = 1;
		l->welcomed = 1;
		break;
	case IPC_COMMIT:
		if (l->nnotices == l->capnotices) {
			l->capnotices = l->capnotices == 0 ? 256 :
			    l->capnotices * 2;
			l->notices = xreallocarray(l->notices, l->capnotices,
			    sizeof(*l->notices));
		}
		n = &l->notices[l->nnotices];
		memset(n, 0, sizeof(*n));
		ipc_reader_init(&r, body, len, 4);
		ipc_get_i64(&r, &n->ts);
		ipc_get_i64(&r, &n->prev_ts);
		ipc_get_i64(&r, &n->catalog_version);
		n->has_writes = ipc_peek_kind(&r) == IPC_K_ARRAY;
		ipc_skip(&r);
		if (!CHECK(ipc_end(&r) == 0 && h->seq == 0)) {
			l->broken = 1;
			break;
		}
		n->body = xmalloc(len);
		memcpy(n->body, body, len);
		n->len = len;
		l->nnotices++;
		break;
	case IPC_RESULT:
		if (!CHECK(h->seq > 0 && h->seq < l->next_seq)) {
			l->broken = 1;
			break;
		}
		res = &l->results[h->seq];
		if (!CHECK(!res->got)) {
			l->broken = 1;
			break;
		}
		ipc_reader_init(&r, body, len, 4);
		ipc_get_i64(&r, &res->ts);
		ipc_get_i64(&r, &res->code);
		ipc_get_str(&r, &msg, &msglen, IPC_MAX_WR_FRAME);
		ipc_get_str(&r, &val, &vallen, IPC_MAX_WR_FRAME);
		if (!CHECK(ipc_end(&r) == 0)) {
			l->broken = 1;
			break;
		}
		res->message = xstrndup(msg, msglen);
		res->value = xstrndup(val, vallen);
		res->notices_before = l->nnotices;
		res->got = 1;
		l->nresults++;
		break;
	case IPC_SET_LOG:
		ipc_reader_init(&r, body, len, 1);
		ipc_get_u32(&r, &u);
		if (!CHECK(ipc_end(&r) == 0))
			l->broken = 1;
		break;
	default:
		CHECK(h->type == IPC_WELCOME || h->type == IPC_COMMIT ||
		    h->type == IPC_RESULT || h->type == IPC_SET_LOG);
		l->broken = 1;
		break;
	}
}

/* Read what is there; frame it. */
static void
link_read(struct link *l)
{
	struct ipc_hdr	 h;
	ssize_t		 n;
	size_t		 off;
	long		 flen;

	for (;;) {
		buf_reserve(&l->in, READ_CHUNK);
		n = read(l->fd, l->in.data + l->in.len, READ_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			l->eof = 1;
			break;
		}
		l->in.len += (size_t)n;
	}
	/* A mute link reads only to see the end. */
	if (l->mute)
		buf_reset(&l->in);
	off = 0;
	while (off < l->in.len && !l->broken) {
		flen = ipc_frame_peek((unsigned char *)l->in.data + off,
		    l->in.len - off, IPC_MAX_WR_FRAME, &h);
		if (flen == 0)
			break;
		if (!CHECK(flen > 0)) {
			l->broken = 1;
			break;
		}
		link_frame(l, &h, (unsigned char *)l->in.data + off +
		    IPC_HDR_LEN, h.len - IPC_HDR_LEN);
		off += (size_t)flen;
	}
	if (l->broken)
		buf_reset(&l->in);
	else if (off > 0)
		buf_consume(&l->in, off);
}

static void
link_write(struct link *l)
{
	ssize_t	 n;

	while (l->out.len > 0) {
		n = write(l->fd, l->out.data, l->out.len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* The peer is gone: what it sent is still readable. */
			l->out.len = 0;
			link_read(l);
			l->eof = 1;
			return;
		}
		buf_consume(&l->out, (size_t)n);
	}
}

/*
 * Run the links until done(arg) says 1 (returns 0), says -1 or the time
 * is up (returns -1).  done may queue more frames.  writerd exiting
 * while it must not is fatal.
 */
/* One round of I/O on every open link, waiting at most ms. */
static void
pump_once(int ms)
{
	struct pollfd	 pfd[MAX_LINKS];
	struct link	*pl[MAX_LINKS];
	size_t		 i, n = 0;

	for (i = 0; i < T.nlinks; i++) {
		if (T.links[i]->eof)
			continue;
		pl[n] = T.links[i];
		pfd[n].fd = pl[n]->fd;
		pfd[n].events = pl[n]->mute ? 0 : POLLIN;
		if (pl[n]->out.len > 0)
			pfd[n].events |= POLLOUT;
		pfd[n].revents = 0;
		n++;
	}
	if (poll(pfd, n, ms) == -1 && errno != EINTR)
		bail(__LINE__, "poll: %s", strerror(errno));
	for (i = 0; i < n; i++) {
		if (pfd[i].revents & POLLOUT)
			link_write(pl[i]);
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			link_read(pl[i]);
	}
}

static int
pump(int (*done)(void *), void *arg, int timeout_ms)
{
	int64_t		 t0 = ms_now(), left;
	int		 rc, st = 0;

	for (;;) {
		if ((rc = done(arg)) != 0)
			return rc == 1 ? 0 : -1;
		left = timeout_ms - (ms_now() - t0);
		if (left <= 0)
			return -1;
		if (!T.stopping && !writerd_alive(&st))
			bail(__LINE__, "writerd exited (status %d)", st);
		pump_once(left < POLL_SLICE_MS ? (int)left : POLL_SLICE_MS);
	}
}

static int
done_hello(void *arg)
{
	struct link	*l = arg;

	if (l->welcomed)
		return 1;
	return l->eof || l->broken ? -1 : 0;
}

static void
hello_msg(struct ipc_msg *m, uint32_t version, const char *name)
{
	ipc_msg_init(m, IPC_HELLO, 0, 3);
	ipc_add_u64(m, version);
	ipc_add_cstr(m, name);
	ipc_add_u64(m, (uint64_t)getpid());
}

/* HELLO and wait for WELCOME. */
static void
link_hello(struct link *l)
{
	struct ipc_msg	 m;

	hello_msg(&m, IPC_VERSION, l->name);
	link_queue_msg(l, &m);
	if (pump(done_hello, l, WAIT_TIMEOUT_MS) == -1)
		bail(__LINE__, "%s: no WELCOME", l->name);
	CHECK(l->welcome_version == IPC_VERSION);
}

/*
 * An IPC_MUTATE frame.  rid: NULL (nil), "s:TEXT" (a string) or "i:N"
 * (an integer).
 */
static void
mutate_msg(struct ipc_msg *m, uint32_t seq, const char *sid, const char *rid,
    const char *udf, const char *args)
{
	ipc_msg_init(m, IPC_MUTATE, seq, 4);
	ipc_add_cstr(m, sid);
	if (rid == NULL)
		ipc_add_nil(m);
	else if (strncmp(rid, "s:", 2) == 0)
		ipc_add_cstr(m, rid + 2);
	else
		ipc_add_i64(m, strtoll(rid + 2, NULL, 10));
	ipc_add_cstr(m, udf);
	ipc_add_cstr(m, args);
}

/* Queue a mutation; returns its seq. */
static uint32_t
link_mutate(struct link *l, const char *sid, const char *rid, const char *udf,
    const char *args)
{
	struct ipc_msg	 m;
	uint32_t	 seq = l->next_seq++;

	if (seq >= MAX_SEQ)
		bail(__LINE__, "%s: more than %d mutations", l->name, MAX_SEQ);
	mutate_msg(&m, seq, sid, rid, udf, args);
	link_queue_msg(l, &m);
	return seq;
}

struct waitres {
	struct link	*l;
	uint32_t	 from, to;	/* seqs [from, to) */
};

static int
done_results(void *arg)
{
	struct waitres	*w = arg;
	uint32_t	 s;

	for (s = w->from; s < w->to; s++)
		if (!w->l->results[s].got)
			return w->l->eof || w->l->broken ? -1 : 0;
	return 1;
}

static void
wait_results(struct link *l, uint32_t from, uint32_t to)
{
	struct waitres	 w = { l, from, to };

	if (pump(done_results, &w, WAIT_TIMEOUT_MS) == -1)
		bail(__LINE__, "%s: no results for seqs %u..%u", l->name,
		    from, to - 1);
}

static struct result *
wait_result(struct link *l, uint32_t seq)
{
	wait_results(l, seq, seq + 1);
	return &l->results[seq];
}

/* Run one mutation and wait for its result. */
static struct result *
mutate(struct link *l, const char *sid, const char *rid, const char *udf,
    const char *args)
{
	return wait_result(l, link_mutate(l, sid, rid, udf, args));
}

static int
done_eof(void *arg)
{
	struct link	*l = arg;

	return l->eof;
}

static int
done_flushed(void *arg)
{
	struct link	*l = arg;

	if (l->out.len == 0)
		return 1;
	return l->eof ? -1 : 0;
}

static struct notice *
notice_by_ts(struct link *l, int64_t ts)
{
	size_t	 lo = 0, hi = l->nnotices, mid;

	/* Notices are in ts order (checked where it matters). */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (l->notices[mid].ts < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < l->nnotices && l->notices[lo].ts == ts)
		return &l->notices[lo];
	return NULL;
}

static struct notice *
last_notice(struct link *l)
{
	return l->nnotices > 0 ? &l->notices[l->nnotices - 1] : NULL;
}

/* The document id a successful insert returned, or "" when not one. */
static void
value_id(const struct result *r, char id[STORE_ID_LEN + 1])
{
	cJSON		*v;
	enum json_err	 jerr;

	id[0] = '\0';
	if (r->value == NULL)
		return;
	v = json_parse(r->value, strlen(r->value), 2, &jerr);
	if (cJSON_IsString(v) && store_valid_id(v->valuestring))
		strlcpy_tv(id, v->valuestring, STORE_ID_LEN + 1);
	cJSON_Delete(v);
}

/*
 * The database, read-only.
 */

static sqlite3 *
db_open(void)
{
	sqlite3	*db = NULL;

	if (sqlite3_open_v2(T.dbpath, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK)
		bail(__LINE__, "open %s: %s", T.dbpath, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	return db;
}

/*
 * Run a query built with sqlite3_mprintf's format; the first row is left
 * in *sp (NULL when none).  The caller finalizes.
 */
static void
db_vquery(sqlite3 *db, sqlite3_stmt **sp, const char *fmt, va_list ap)
{
	char	*sql;
	int	 rc;

	sql = sqlite3_vmprintf(fmt, ap);
	if (sql == NULL || sqlite3_prepare_v2(db, sql, -1, sp, NULL) !=
	    SQLITE_OK)
		bail(__LINE__, "%s: %s", sql, sqlite3_errmsg(db));
	rc = sqlite3_step(*sp);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		bail(__LINE__, "%s: %s", sql, sqlite3_errmsg(db));
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(*sp);
		*sp = NULL;
	}
	sqlite3_free(sql);
}

/*
 * The first column of the first row as an integer; -1 without a row.
 * fmt is an sqlite3_mprintf format (%Q quotes a string).
 */
static int64_t
db_int(sqlite3 *db, const char *fmt, ...)
{
	sqlite3_stmt	*s;
	va_list		 ap;
	int64_t		 v = -1;

	va_start(ap, fmt);
	db_vquery(db, &s, fmt, ap);
	va_end(ap);
	if (s != NULL) {
		v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	return v;
}

/* The first column of the first row as bytes; 0 without a row. */
static int
db_bytes(sqlite3 *db, struct buf *out, const char *fmt, ...)
{
	sqlite3_stmt	*s;
	va_list		 ap;

	buf_reset(out);
	va_start(ap, fmt);
	db_vquery(db, &s, fmt, ap);
	va_end(ap);
	if (s == NULL)
		return 0;
	buf_add(out, sqlite3_column_blob(s, 0),
	    (size_t)sqlite3_column_bytes(s, 0));
	sqlite3_finalize(s);
	return 1;
}

/* A document's current JSON, parsed; NULL when it has none. */
static cJSON *
db_doc(sqlite3 *db, const char *id, int64_t *ts)
{
	struct buf	 b;
	cJSON		*doc = NULL;
	enum json_err	 jerr;

	buf_init(&b);
	if (db_bytes(db, &b, "SELECT d.json_value FROM current_documents c,"
	    " documents d WHERE c.id = %Q AND d.seq = c.seq", id))
		doc = json_parse(b.data, b.len, JSON_MAX_DEPTH, &jerr);
	buf_free(&b);
	if (ts != NULL)
		*ts = db_int(db, "SELECT ts FROM current_documents"
		    " WHERE id = %Q", id);
	return doc;
}

static int64_t
db_table_id(sqlite3 *db, const char *name)
{
	return db_int(db, "SELECT table_id FROM tables WHERE name = %Q",
	    name);
}

/* A digest of everything stored, to compare across a restart. */
static uint64_t
db_digest(sqlite3 *db)
{
	static const char *const q[] = {
		"SELECT id, ts, table_id, json_value, deleted, prev_ts"
		" FROM documents ORDER BY id, ts",
		"SELECT index_id, key, ts, deleted, table_id"
		" FROM indexes ORDER BY index_id, key, ts",
		"SELECT c.id, c.table_id, c.ts, d.json_value"
		" FROM current_documents c, documents d WHERE d.seq = c.seq"
		" ORDER BY c.id",
		"SELECT index_id, key FROM current_indexes"
		" ORDER BY index_id, key",
		"SELECT session_id, request_id, outcome FROM idempotency"
		" ORDER BY session_id, request_id",
		"SELECT * FROM tables ORDER BY table_id",
		"SELECT * FROM index_defs ORDER BY index_id",
		"SELECT key, json_value FROM globals ORDER BY key",
	};
	sqlite3_stmt	*s;
	struct buf	 b;
	uint64_t	 h;
	size_t		 i;
	int		 c, nc;

	buf_init(&b);
	for (i = 0; i < nitems(q); i++) {
		if (sqlite3_prepare_v2(db, q[i], -1, &s, NULL) != SQLITE_OK)
			bail(__LINE__, "%s: %s", q[i], sqlite3_errmsg(db));
		nc = sqlite3_column_count(s);
		while (sqlite3_step(s) == SQLITE_ROW) {
			for (c = 0; c < nc; c++) {
				buf_add(&b, sqlite3_column_blob(s, c),
				    (size_t)sqlite3_column_bytes(s, c));
				buf_addc(&b, '\x1f');
			}
			buf_addc(&b, '\x1e');
		}
		sqlite3_finalize(s);
		buf_addc(&b, '\x1d');
	}
	h = json_hash(b.data, b.len);
	buf_free(&b);
	return h;
}

/*
 * Write sets.
 */

/* A key (bin) or nil (*p = NULL). */
static int
key_or_nil(struct ipc_reader *r, const unsigned char **p, size_t *len)
{
	const void	*v;

	*p = NULL;
	*len = 0;
	if (ipc_peek_kind(r) == IPC_K_NIL)
		return ipc_get_nil(r);
	if (ipc_get_bin(r, &v, len, KEY_MAX_BYTES) == -1)
		return -1;
	*p = v;
	return 0;
}

/* Decode a notice's writes; -1 when they are nil or malformed. */
static int
notice_writes(const struct notice *n, struct tdoc *docs, size_t *ndocs)
{
	struct ipc_reader	 r;
	struct tdoc		*d;
	struct tkey		*k;
	const char		*id;
	size_t			 idlen;
	uint32_t		 nw, nk, three, i, j;
	int64_t			 v;

	*ndocs = 0;
	if (ipc_reader_init(&r, n->body, n->len, 4) == -1)
		return -1;
	ipc_get_i64(&r, &v);
	ipc_get_i64(&r, &v);
	ipc_get_i64(&r, &v);
	if (ipc_get_array(&r, &nw, MAX_WDOCS) == -1)
		return -1;
	for (i = 0; i < nw; i++) {
		d = &docs[i];
		memset(d, 0, sizeof(*d));
		if (ipc_get_array(&r, &three, 3) == -1 || three != 3 ||
		    ipc_get_i64(&r, &d->table_id) == -1 ||
		    ipc_get_str(&r, &id, &idlen, STORE_ID_LEN) == -1 ||
		    ipc_get_array(&r, &nk, MAX_WKEYS) == -1)
			return -1;
		memcpy(d->id, id, idlen);
		d->nkeys = nk;
		for (j = 0; j < nk; j++) {
			k = &d->keys[j];
			if (ipc_get_array(&r, &three, 3) == -1 || three != 3 ||
			    ipc_get_i64(&r, &k->index_id) == -1)
				return -1;
			if (key_or_nil(&r, &k->old, &k->oldlen) == -1 ||
			    key_or_nil(&r, &k->new, &k->newlen) == -1)
				return -1;
		}
	}
	if (ipc_end(&r) == -1)
		return -1;
	*ndocs = nw;
	return 0;
}

static int
key_equal(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
	return a != NULL && b != NULL && alen == blen &&
	    memcmp(a, b, alen) == 0;
}

/*
 * The key a document should have in an index: the values of the index's
 * fields (a user index gets _creationTime and _id appended), then the
 * document id.
 */
static cJSON *
expected_key(const cJSON *doc, const char *fields_json, int builtin,
    const char *id)
{
	cJSON		*fields, *f, *key, *v;
	enum json_err	 jerr;

	fields = json_parse(fields_json, strlen(fields_json), 2, &jerr);
	if (!cJSON_IsArray(fields))
		bail(__LINE__, "index fields %s", fields_json);
	if (!builtin) {
		cJSON_AddItemToArray(fields, cJSON_CreateString(
		    "_creationTime"));
		cJSON_AddItemToArray(fields, cJSON_CreateString("_id"));
	}
	key = cJSON_CreateArray();
	cJSON_ArrayForEach(f, fields) {
		v = json_get(doc, f->valuestring);
		cJSON_AddItemToArray(key, v != NULL ? cJSON_Duplicate(v, 1) :
		    cJSON_CreateRaw("undefined"));
	}
	/* The id follows, unless the last field (_id) carries it already. */
	f = cJSON_GetArrayItem(fields, cJSON_GetArraySize(fields) - 1);
	if (f == NULL || strcmp(f->valuestring, "_id") != 0)
		cJSON_AddItemToArray(key, cJSON_CreateString(id));
	cJSON_Delete(fields);
	return key;
}

/* 1 when key bytes decode to what doc should have in index index_id. */
static int
key_matches(sqlite3 *db, int64_t index_id, const unsigned char *p,
    size_t len, const cJSON *doc, const char *id)
{
	struct buf	 fields;
	cJSON		*got, *want;
	int		 builtin, ok;

	if (p == NULL)
		return 0;
	buf_init(&fields);
	if (!db_bytes(db, &fields, "SELECT fields FROM index_defs"
	    " WHERE index_id = %lld", (long long)index_id)) {
		buf_free(&fields);
		return 0;
	}
	builtin = (int)db_int(db, "SELECT builtin FROM index_defs"
	    " WHERE index_id = %lld", (long long)index_id);
	got = key_decode(p, len);
	want = expected_key(doc, fields.data, builtin, id);
	ok = got != NULL && cJSON_Compare(got, want, 1);
	if (!ok) {
		char	*a = got != NULL ? cJSON_PrintUnformatted(got) : NULL;
		char	*b = cJSON_PrintUnformatted(want);

		fprintf(stderr, "  key of index %lld: got %s, want %s\n",
		    (long long)index_id, a != NULL ? a : "(undecodable)", b);
		free(a);
		free(b);
	}
	cJSON_Delete(got);
	cJSON_Delete(want);
	buf_free(&fields);
	return ok;
}

/* The index id of a table's index name. */
static int64_t
db_index_id(sqlite3 *db, const char *table, const char *index)
{
	return db_int(db, "SELECT index_id FROM index_defs WHERE name = %Q"
	    " AND table_id = (SELECT table_id FROM tables WHERE name = %Q)",
	    index, table);
}

/* The key of index index_id in a write, or NULL. */
static const struct tkey *
write_key(const struct tdoc *d, int64_t index_id)
{
	size_t	 i;

	for (i = 0; i < d->nkeys; i++)
		if (d->keys[i].index_id == index_id)
			return &d->keys[i];
	return NULL;
}

/*
 * A write covers every index of its table exactly once: the index ids
 * are those of index_defs for the table.
 */
static int
write_covers_indexes(sqlite3 *db, const struct tdoc *d)
{
	size_t	 i, j;

	if ((int64_t)d->nkeys != db_int(db, "SELECT count(*) FROM index_defs"
	    " WHERE table_id = %lld", (long long)d->table_id))
		return 0;
	for (i = 0; i < d->nkeys; i++) {
		if (db_int(db, "SELECT table_id FROM index_defs WHERE"
		    " index_id = %lld", (long long)d->keys[i].index_id) !=
		    d->table_id)
			return 0;
		for (j = 0; j < i; j++)
			if (d->keys[j].index_id == d->keys[i].index_id)
				return 0;
	}
	return 1;
}

/*
 * 1. Concurrent pipelined insert streams.
 */

struct streams {
	struct link	*l[NSTREAMS];
	int		 sent[NSTREAMS];
	size_t		 base[NSTREAMS];	/* notices before the test */
};

static void
stream_text(struct buf *b, int conn, int i)
{
	buf_printf(b, "gateway %d item %d: \"quoted\" \\ caf\xc3\xa9 "
	    "\xe2\x98\x83 and some more text to make the rows longer", conn, i);
}

static int
done_streams(void *arg)
{
	struct streams	*s = arg;
	struct buf	 args, text;
	size_t		 total = NSTREAMS * STREAM_MUTATIONS;
	int		 i, done = 1;

	buf_init(&args);
	buf_init(&text);
	for (i = 0; i < NSTREAMS; i++) {
		if (s->l[i]->eof || s->l[i]->broken) {
			done = -1;
			break;
		}
		while (s->sent[i] < STREAM_MUTATIONS && s->sent[i] -
		    (int)s->l[i]->nresults < STREAM_INFLIGHT) {
			buf_reset(&text);
			stream_text(&text, i, s->sent[i]);
			buf_reset(&args);
			buf_printf(&args, "{\"table\":\"items\",\"doc\":"
			    "{\"conn\":%d,\"i\":%d,\"text\":", i, s->sent[i]);
			json_print_string(&args, text.data, text.len);
			buf_adds(&args, "}}");
			link_mutate(s->l[i], "", NULL, "db/insert", args.data);
			s->sent[i]++;
		}
		if (s->l[i]->nresults < STREAM_MUTATIONS ||
		    s->l[i]->nnotices - s->base[i] < total)
			done = 0;
	}
	buf_free(&args);
	buf_free(&text);
	return done;
}

static int
cmp_acked(const void *a, const void *b)
{
	const struct acked	*x = a, *y = b;

	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static int
cmp_id(const void *a, const void *b)
{
	const struct acked	*x = a, *y = b;

	return strcmp(x->id, y->id);
}

/* Every acknowledged insert is stored, with the right fields. */
static void
verify_items(const struct acked *acked, size_t n, const char *when)
{
	sqlite3		*db = db_open();
	struct buf	 text;
	const cJSON	*v;
	cJSON		*doc;
	int64_t		 items, ts;
	size_t		 k, bad = 0;

	buf_init(&text);
	items = db_table_id(db, "items");
	CHECK(items > 0);
	CHECK(db_int(db, "SELECT count(*) FROM current_documents"
	    " WHERE table_id = %lld", (long long)items) == (int64_t)n);
	CHECK(db_int(db, "SELECT count(*) FROM documents"
	    " WHERE table_id = %lld", (long long)items) == (int64_t)n);
	for (k = 0; k < n; k++) {
		doc = db_doc(db, acked[k].id, &ts);
		buf_reset(&text);
		stream_text(&text, acked[k].conn, acked[k].i);
		if (doc == NULL || ts != acked[k].ts ||
		    cJSON_GetArraySize(doc) != 5 ||
		    !cJSON_IsString(v = json_get(doc, "_id")) ||
		    strcmp(v->valuestring, acked[k].id) != 0 ||
		    !cJSON_IsNumber(v = json_get(doc, "_creationTime")) ||
		    v->valuedouble != (double)acked[k].ts / 1000.0 ||
		    !cJSON_IsNumber(v = json_get(doc, "conn")) ||
		    v->valuedouble != acked[k].conn ||
		    !cJSON_IsNumber(v = json_get(doc, "i")) ||
		    v->valuedouble != acked[k].i ||
		    !cJSON_IsString(v = json_get(doc, "text")) ||
		    strcmp(v->valuestring, text.data) != 0) {
			if (bad++ < 5)
				fprintf(stderr, "  %s: document %s (ts %lld)"
				    " missing or wrong\n", when, acked[k].id,
				    (long long)acked[k].ts);
		}
		cJSON_Delete(doc);
	}
	CHECK(bad == 0);
	buf_free(&text);
	sqlite3_close(db);
	printf("  %s: %zu acknowledged inserts stored with their fields\n",
	    when, n);
}

static struct acked *
test_streams(struct link **gw)
{
	struct streams	 s;
	struct acked	*acked, *sorted;
	struct result	*r;
	struct notice	*n, *nn;
	struct tdoc	 docs[MAX_WDOCS];
	size_t		 total = NSTREAMS * STREAM_MUTATIONS, k, j, nd;
	size_t		 bad_code = 0, bad_order = 0, bad_link = 0;
	size_t		 bad_before = 0, bad_doc = 0;
	int64_t		 t0 = ms_now(), prev;
	int		 i;

	printf("1. %d gateways, %d pipelined inserts each (%d in flight)\n",
	    NSTREAMS, STREAM_MUTATIONS, STREAM_INFLIGHT);
	memset(&s, 0, sizeof(s));
	for (i = 0; i < NSTREAMS; i++) {
		s.l[i] = gw[i];
		s.base[i] = gw[i]->nnotices;
	}
	if (pump(done_streams, &s, 4 * WAIT_TIMEOUT_MS) == -1)
		bail(__LINE__, "streams did not complete");
	printf("  done in %lld ms\n", (long long)(ms_now() - t0));

	acked = xcalloc(total, sizeof(*acked));
	for (i = 0, k = 0; i < NSTREAMS; i++) {
		prev = 0;
		for (j = 1; j <= STREAM_MUTATIONS; j++) {
			r = &gw[i]->results[j];
			if (r->code != 0 || r->ts <= 0 || r->message[0] != '\0')
				bad_code++;
			/* One gateway's mutations are applied in order. */
			if (r->ts <= prev)
				bad_order++;
			prev = r->ts;
			acked[k].ts = r->ts;
			value_id(r, acked[k].id);
			if (acked[k].id[0] == '\0')
				bad_code++;
			acked[k].conn = i;
			acked[k].i = (int)j - 1;
			k++;
		}
	}
	CHECK(bad_code == 0);
	CHECK(bad_order == 0);

	/* Distinct ts, distinct ids. */
	sorted = xcalloc(total, sizeof(*sorted));
	memcpy(sorted, acked, total * sizeof(*sorted));
	qsort(sorted, total, sizeof(*sorted), cmp_id);
	for (k = 1; k < total; k++)
		CHECK(strcmp(sorted[k - 1].id, sorted[k].id) != 0);
	qsort(sorted, total, sizeof(*sorted), cmp_acked);
	for (k = 1; k < total; k++)
		if (!CHECK(sorted[k - 1].ts < sorted[k].ts))
			break;

	/*
	 * Every link: all notices, in ts order, prev_ts chaining from the
	 * WELCOME's max_ts, exactly the acknowledged ts, each with a write
	 * set naming the inserted document.
	 */
	for (i = 0; i < NSTREAMS; i++) {
		CHECK(gw[i]->nnotices - s.base[i] == total);
		prev = s.base[i] > 0 ? gw[i]->notices[s.base[i] - 1].ts :
		    gw[i]->welcome_ts;
		for (j = 0; j < total && s.base[i] + j < gw[i]->nnotices;
		    j++) {
			n = &gw[i]->notices[s.base[i] + j];
			if (n->prev_ts != prev || n->ts <= prev ||
			    n->ts != sorted[j].ts)
				bad_link++;
			prev = n->ts;
			if (i == 0 && (notice_writes(n, docs, &nd) == -1 ||
			    nd != 1 || strcmp(docs[0].id, sorted[j].id) != 0))
				bad_doc++;
		}
		/* Each result comes after the notice of its own commit. */
		for (j = 1; j <= STREAM_MUTATIONS; j++) {
			r = &gw[i]->results[j];
			nn = notice_by_ts(gw[i], r->ts);
			if (nn == NULL || (size_t)(nn - gw[i]->notices) >=
			    r->notices_before)
				bad_before++;
		}
	}
	CHECK(bad_link == 0);
	CHECK(bad_doc == 0);
	CHECK(bad_before == 0);
	printf("  %zu results ok, ts distinct and increasing, %d links saw "
	    "every notice chained in order\n", total, NSTREAMS);
	free(sorted);

	verify_items(acked, total, "after the streams");
	return acked;
}

/*
 * 2. A failing mutation between two that succeed, in one group.
 */

/* 1 when document id has the name given in insert args. */
static int
doc_name_is(sqlite3 *db, const char *id, const char *args)
{
	cJSON		*doc, *a;
	const cJSON	*n, *want;
	enum json_err	 jerr;
	int		 ok;

	doc = db_doc(db, id, NULL);
	a = json_parse(args, strlen(args), JSON_MAX_DEPTH, &jerr);
	n = json_get(doc, "name");
	want = json_get(json_get(a, "doc"), "name");
	ok = cJSON_IsString(n) && cJSON_IsString(want) &&
	    strcmp(n->valuestring, want->valuestring) == 0;
	cJSON_Delete(doc);
	cJSON_Delete(a);
	return ok;
}

static void
group_round(struct link *l, const char *what, const char *udf,
    const char *args, int64_t code, const char *absent_sql)
{
	sqlite3		*db;
	struct result	*a, *x, *b;
	struct notice	*na, *nb;
	char		 ida[STORE_ID_LEN + 1], idb[STORE_ID_LEN + 1];
	char		 arga[128], argb[128];
	int64_t		 rows0, rows1;
	size_t		 n0;
	uint32_t	 sa, sx, sb;

	db = db_open();
	rows0 = db_int(db, "SELECT count(*) FROM documents");
	n0 = l->nnotices;
	snprintf(arga, sizeof(arga), "{\"table\":\"grp\",\"doc\":{\"name\":"
	    "\"A %s\"}}", what);
	snprintf(argb, sizeof(argb), "{\"table\":\"grp\",\"doc\":{\"name\":"
	    "\"B %s\"}}", what);
	/* Queued together, written in one write: one group. */
	sa = link_mutate(l, "", NULL, "db/insert", arga);
	sx = link_mutate(l, "", NULL, udf, args);
	sb = link_mutate(l, "", NULL, "db/insert", argb);
	wait_results(l, sa, sb + 1);
	a = &l->results[sa];
	x = &l->results[sx];
	b = &l->results[sb];
	CHECK(a->code == 0 && a->ts > 0);
	CHECK(b->code == 0 && b->ts > a->ts);
	CHECK(x->code == code);
	CHECK(x->ts == 0 && x->value[0] == '\0' && x->message[0] != '\0');
	/* Exactly two notices, chained: none for the failure. */
	CHECK(l->nnotices == n0 + 2);
	na = notice_by_ts(l, a->ts);
	nb = notice_by_ts(l, b->ts);
	CHECK(na != NULL && nb != NULL && nb->prev_ts == a->ts);
	if (n0 > 0 && na != NULL)
		CHECK(na->prev_ts == l->notices[n0 - 1].ts);
	value_id(a, ida);
	value_id(b, idb);
	rows1 = db_int(db, "SELECT count(*) FROM documents");
	CHECK(rows1 == rows0 + 2);
	CHECK(doc_name_is(db, ida, arga));
	CHECK(doc_name_is(db, idb, argb));
	if (absent_sql != NULL)
		CHECK(db_int(db, "%s", absent_sql) == 0);
	sqlite3_close(db);
	printf("  %s: A ok, middle %lld (%s), B ok, 2 notices, 2 rows\n",
	    what, (long long)x->code, x->message);
}

static void
test_group(struct link *l)
{
	char	 args[256];

	printf("2. group commit with a failing neighbour\n");
	group_round(l, "reserved field", "db/insert",
	    "{\"table\":\"grp\",\"doc\":{\"name\":\"X\",\"_x\":1}}",
	    TV_VALIDATION, "SELECT count(*) FROM documents WHERE"
	    " json_extract(json_value, '$.name') = 'X'");
	snprintf(args, sizeof(args), "{\"table\":\"grp\",\"id\":\"%s\","
	    "\"set\":{\"name\":\"P\"}}", "0000000000000000000000000z");
	group_round(l, "patch of a missing id", "db/patch", args,
	    TV_NOT_FOUND, NULL);
	/* A batch whose second op fails: its first insert is undone. */
	snprintf(args, sizeof(args), "{\"ops\":[{\"op\":\"insert\",\"table\":"
	    "\"grp\",\"doc\":{\"name\":\"C1\"}},{\"op\":\"patch\",\"table\":"
	    "\"grp\",\"id\":\"%s\",\"set\":{\"name\":\"C2\"}}]}",
	    "0000000000000000000000000z");
	group_round(l, "batch failing at its second op", "db/batch", args,
	    TV_NOT_FOUND, "SELECT count(*) FROM documents WHERE"
	    " json_extract(json_value, '$.name') = 'C1'");
	/* A batch that creates a table and then fails: no table left. */
	group_round(l, "batch creating a table then failing", "db/batch",
	    "{\"ops\":[{\"op\":\"insert\",\"table\":\"ghost\",\"doc\":"
	    "{\"a\":1}},{\"op\":\"insert\",\"table\":\"ghost\",\"doc\":"
	    "{\"_x\":1}}]}", TV_VALIDATION,
	    "SELECT count(*) FROM tables WHERE name = 'ghost'");
	/* unknown function */
	group_round(l, "unknown function", "db/nothing", "{}", TV_NOT_FOUND,
	    NULL);
	/* args that are not JSON */
	group_round(l, "args not JSON", "db/insert", "{\"table\":",
	    TV_VALIDATION, NULL);
}

/*
 * 3. Idempotency.
 */

/* A result equal to a first one: same ts, code, message and value. */
static int
same_outcome(const struct result *a, const struct result *b)
{
	return a->got && b->got && a->ts == b->ts && a->code == b->code &&
	    strcmp(a->message, b->message) == 0 &&
	    strcmp(a->value, b->value) == 0;
}

static int64_t
doc_rows(void)
{
	sqlite3	*db = db_open();
	int64_t	 n;

	n = db_int(db, "SELECT count(*) FROM documents");
	sqlite3_close(db);
	return n;
}

static const char *const idem_args =
    "{\"table\":\"idem\",\"doc\":{\"v\":1}}";
static const char *const idem_other =
    "{\"table\":\"other\",\"doc\":{\"v\":99}}";

static void
test_idempotency(struct link *l, struct link *l2, struct result *first)
{
	struct result	*r1, *r, *ri, *rs, *rs2, *rbad, *rnf, *m;
	struct notice	*n;
	sqlite3		*db;
	char		 id1[STORE_ID_LEN + 1], idi[STORE_ID_LEN + 1];
	char		 ids[STORE_ID_LEN + 1], id2[STORE_ID_LEN + 1];
	char		 args[256];
	int64_t		 rows, last_ts;
	size_t		 n0;

	printf("3. idempotency\n");
	r1 = mutate(l, "s1", "s:r1", "db/insert", idem_args);
	REQUIRE(r1->code == 0 && r1->ts > 0);
	value_id(r1, id1);
	CHECK(id1[0] != '\0');
	*first = *r1;
	first->message = xstrdup(r1->message);
	first->value = xstrdup(r1->value);
	n0 = l->nnotices;
	rows = doc_rows();
	last_ts = r1->ts;

	r = mutate(l, "s1", "s:r1", "db/insert", idem_args);
	CHECK(same_outcome(r, r1));
	r = mutate(l, "s1", "s:r1", "db/insert", idem_other);
	CHECK(same_outcome(r, r1));
	r = mutate(l, "s1", "s:r1", "db/delete", "{\"table\":\"idem\","
	    "\"id\":\"0000000000000000000000000z\"}");
	CHECK(same_outcome(r, r1));
	/* From another gateway. */
	r = mutate(l2, "s1", "s:r1", "db/insert", idem_args);
	CHECK(same_outcome(r, r1));
	CHECK(l->nnotices == n0);
	CHECK(doc_rows() == rows);
	db = db_open();
	CHECK(db_table_id(db, "other") == -1);
	sqlite3_close(db);
	printf("  resends (same args, other args, other function, other "
	    "gateway): ts %lld, value %s, no notice, no row\n",
	    (long long)r1->ts, r1->value);

	/* Integer 1 and string "1" are different keys, and not "r1". */
	ri = mutate(l, "s1", "i:1", "db/insert", idem_args);
	rs = mutate(l, "s1", "s:1", "db/insert", idem_args);
	CHECK(ri->code == 0 && rs->code == 0);
	CHECK(ri->ts > last_ts && rs->ts > ri->ts);
	value_id(ri, idi);
	value_id(rs, ids);
	CHECK(idi[0] != '\0' && ids[0] != '\0' && strcmp(idi, ids) != 0 &&
	    strcmp(idi, id1) != 0);
	CHECK(same_outcome(mutate(l, "s1", "i:1", "db/insert", idem_other),
	    ri));
	CHECK(same_outcome(mutate(l, "s1", "s:1", "db/insert", idem_other),
	    rs));
	/* A negative integer is a key like any other. */
	r = mutate(l, "s1", "i:-7", "db/insert", idem_args);
	CHECK(r->code == 0 && r->ts > rs->ts);
	CHECK(same_outcome(mutate(l2, "s1", "i:-7", "db/insert",
	    idem_other), r));
	last_ts = r->ts;
	printf("  request id 1 and \"1\" are different keys\n");

	/* The same request id in another session is another key. */
	rs2 = mutate(l, "s2", "s:r1", "db/insert", idem_args);
	CHECK(rs2->code == 0 && rs2->ts > last_ts);
	value_id(rs2, id2);
	CHECK(id2[0] != '\0' && strcmp(id2, id1) != 0);
	CHECK(same_outcome(mutate(l, "s2", "s:r1", "db/insert", idem_args),
	    rs2));
	last_ts = rs2->ts;
	printf("  the same request id in session s2 is another key\n");

	/* Recorded failures replay, whatever the args. */
	rbad = mutate(l, "s1", "s:bad", "db/insert",
	    "{\"table\":\"idem\",\"doc\":{\"_x\":1}}");
	CHECK(rbad->code == TV_VALIDATION && rbad->ts == 0);
	r = mutate(l, "s1", "s:bad", "db/insert", idem_args);
	CHECK(same_outcome(r, rbad));
	snprintf(args, sizeof(args), "{\"table\":\"idem\",\"id\":\"%s\","
	    "\"set\":{\"v\":2}}", "0000000000000000000000000z");
	rnf = mutate(l, "s1", "s:nf", "db/patch", args);
	CHECK(rnf->code == TV_NOT_FOUND && rnf->ts == 0);
	snprintf(args, sizeof(args), "{\"table\":\"idem\",\"id\":\"%s\","
	    "\"set\":{\"v\":2}}", id1);
	r = mutate(l, "s1", "s:nf", "db/patch", args);
	CHECK(same_outcome(r, rnf));
	db = db_open();
	{
		cJSON	*d = db_doc(db, id1, NULL);

		/* The replayed patch did not run. */
		CHECK(d != NULL && json_get(d, "v") != NULL &&
		    json_get(d, "v")->valuedouble == 1);
		cJSON_Delete(d);
	}
	sqlite3_close(db);
	printf("  recorded ValidationError and NotFound replay: \"%s\"\n",
	    rbad->message);

	/* Without a request id, a resend is a new mutation. */
	m = mutate(l, "s1", NULL, "db/insert", idem_args);
	r = mutate(l, "s1", NULL, "db/insert", idem_args);
	CHECK(m->code == 0 && r->code == 0 && r->ts > m->ts &&
	    m->ts > last_ts && strcmp(m->value, r->value) != 0);

	/*
	 * Only the first-time successes produced notices: r1, ri, rs, -7,
	 * rs2 and the two without a request id, chained.
	 */
	CHECK(l->nnotices == n0 + 6);
	n = last_notice(l);
	CHECK(n != NULL && n->ts == r->ts && n->prev_ts == m->ts);
	CHECK(doc_rows() == rows + 6);
	printf("  replays wrote nothing: %zu notices and rows for 6 "
	    "first-time inserts\n", l->nnotices - n0);
}

/*
 * 4. Write sets.
 */

/* Find the only write of the notice of ts; NULL when not so. */
static int
single_write(struct link *l, int64_t ts, struct tdoc *d)
{
	struct tdoc	 docs[MAX_WDOCS];
	struct notice	*n;
	size_t		 nd;

	if ((n = notice_by_ts(l, ts)) == NULL ||
	    notice_writes(n, docs, &nd) == -1 || nd != 1)
		return -1;
	*d = docs[0];
	return 0;
}

static void
test_write_sets(struct link *l)
{
	struct result	*ri, *rp, *rd, *rb;
	struct tdoc	 ins, pat, del, docs[MAX_WDOCS];
	const struct tkey *k, *ki;
	struct buf	 cur;
	sqlite3		*db;
	cJSON		*doc, *prevdoc, *v;
	char		 id[STORE_ID_LEN + 1], args[256];
	int64_t		 by_id, by_ct, by_a, ts;
	size_t		 i, nd;
	const char	*table;
	int		 pass;

	printf("4. write sets\n");
	buf_init(&cur);
	/* "ws" has the built-in indexes; "wsx" also by_a from the schema. */
	for (pass = 0; pass < 2; pass++) {
		table = pass == 0 ? "ws" : "wsx";
		snprintf(args, sizeof(args), "{\"table\":\"%s\",\"doc\":"
		    "{\"a\":1,\"b\":\"x\"}}", table);
		ri = mutate(l, "", NULL, "db/insert", args);
		REQUIRE(ri->code == 0);
		value_id(ri, id);
		db = db_open();
		by_id = db_index_id(db, table, STORE_INDEX_BY_ID);
		by_ct = db_index_id(db, table, STORE_INDEX_BY_CREATION);
		by_a = db_index_id(db, table, "by_a");
		CHECK(by_id > 0 && by_ct > 0 && by_id != by_ct);
		CHECK(pass == 0 ? by_a == -1 : by_a > 0);
		doc = db_doc(db, id, &ts);
		REQUIRE(doc != NULL && ts == ri->ts);

		/* Insert: old nil, new the key, for every index. */
		REQUIRE(single_write(l, ri->ts, &ins) == 0);
		CHECK(ins.table_id == db_table_id(db, table));
		CHECK(strcmp(ins.id, id) == 0);
		CHECK(write_covers_indexes(db, &ins));
		CHECK(ins.nkeys == (pass == 0 ? 2 : 3));
		for (i = 0; i < ins.nkeys; i++) {
			k = &ins.keys[i];
			CHECK(k->old == NULL && k->new != NULL);
			CHECK(key_matches(db, k->index_id, k->new, k->newlen,
			    doc, id));
			/* The key is the one in the current state. */
			CHECK(db_bytes(db, &cur, "SELECT key FROM"
			    " current_indexes WHERE index_id = %lld AND"
			    " " KEY_ID_SQL " = %Q",
			    (long long)k->index_id, id) &&
			    key_equal(k->new, k->newlen,
			    (unsigned char *)cur.data, cur.len));
		}
		/* by_id decodes to [id]. */
		k = write_key(&ins, by_id);
		v = k != NULL ? key_decode(k->new, k->newlen) : NULL;
		CHECK(cJSON_GetArraySize(v) == 1 &&
		    strcmp(cJSON_GetArrayItem(v, 0)->valuestring, id) == 0);
		cJSON_Delete(v);
		/*
		 * by_creation_time starts with _creationTime (ts / 1000)
		 * and ends with the id.
		 */
		k = write_key(&ins, by_ct);
		v = k != NULL ? key_decode(k->new, k->newlen) : NULL;
		CHECK(cJSON_GetArraySize(v) >= 2 &&
		    cJSON_IsNumber(cJSON_GetArrayItem(v, 0)) &&
		    cJSON_GetArrayItem(v, 0)->valuedouble ==
		    (double)ri->ts / 1000.0 &&
		    strcmp(cJSON_GetArrayItem(v, cJSON_GetArraySize(v) -
		    1)->valuestring, id) == 0);
		if (pass == 0) {
			char	*s = cJSON_PrintUnformatted(v);

			printf("  by_creation_time key decodes to %s\n", s);
			free(s);
		}
		cJSON_Delete(v);
		sqlite3_close(db);

		/* Patch of a non-indexed field: old == new everywhere. */
		snprintf(args, sizeof(args), "{\"table\":\"%s\",\"id\":\"%s\","
		    "\"set\":{\"b\":\"y\"}}", table, id);
		rp = mutate(l, "", NULL, "db/patch", args);
		REQUIRE(rp->code == 0 && strcmp(rp->value, "null") == 0);
		REQUIRE(single_write(l, rp->ts, &pat) == 0);
		db = db_open();
		CHECK(strcmp(pat.id, id) == 0 && pat.nkeys == ins.nkeys &&
		    write_covers_indexes(db, &pat));
		for (i = 0; i < pat.nkeys; i++) {
			k = &pat.keys[i];
			ki = write_key(&ins, k->index_id);
			CHECK(ki != NULL && key_equal(k->old, k->oldlen,
			    k->new, k->newlen) && key_equal(k->old,
			    k->oldlen, ki->new, ki->newlen));
		}
		/* A new revision, no new index entry. */
		CHECK(db_int(db, "SELECT count(*) FROM indexes WHERE"
		    " ts = %lld", (long long)rp->ts) == 0);
		CHECK(db_int(db, "SELECT prev_ts FROM documents WHERE"
		    " id = %Q AND ts = %lld", id, (long long)rp->ts) ==
		    ri->ts);
		cJSON_Delete(doc);
		doc = db_doc(db, id, NULL);
		CHECK(doc != NULL && cJSON_IsString(json_get(doc, "b")) &&
		    strcmp(json_get(doc, "b")->valuestring, "y") == 0);
		sqlite3_close(db);

		if (pass == 1) {
			/* Patch of the indexed field: by_a moves. */
			snprintf(args, sizeof(args), "{\"table\":\"%s\","
			    "\"id\":\"%s\",\"set\":{\"a\":2}}", table, id);
			rp = mutate(l, "", NULL, "db/patch", args);
			REQUIRE(rp->code == 0);
			REQUIRE(single_write(l, rp->ts, &pat) == 0);
			db = db_open();
			prevdoc = doc;
			doc = db_doc(db, id, NULL);
			REQUIRE(doc != NULL);
			for (i = 0; i < pat.nkeys; i++) {
				k = &pat.keys[i];
				CHECK(k->old != NULL && k->new != NULL);
				CHECK(key_matches(db, k->index_id, k->old,
				    k->oldlen, prevdoc, id));
				CHECK(key_matches(db, k->index_id, k->new,
				    k->newlen, doc, id));
				CHECK(key_equal(k->old, k->oldlen, k->new,
				    k->newlen) == (k->index_id != by_a));
			}
			/* Exactly the old entry out and the new one in. */
			CHECK(db_int(db, "SELECT count(*) FROM indexes WHERE"
			    " ts = %lld", (long long)rp->ts) == 2);
			CHECK(db_int(db, "SELECT count(*) FROM indexes WHERE"
			    " ts = %lld AND index_id = %lld AND deleted = 1",
			    (long long)rp->ts, (long long)by_a) == 1);
			CHECK(db_int(db, "SELECT count(*) FROM indexes WHERE"
			    " ts = %lld AND index_id = %lld AND deleted = 0",
			    (long long)rp->ts, (long long)by_a) == 1);
			cJSON_Delete(prevdoc);
			sqlite3_close(db);
			printf("  patch of an indexed field: by_a old != new,"
			    " others equal\n");
		}

		/* Delete: old key, new nil. */
		snprintf(args, sizeof(args), "{\"table\":\"%s\",\"id\":\"%s\"}",
		    table, id);
		rd = mutate(l, "", NULL, "db/delete", args);
		REQUIRE(rd->code == 0 && strcmp(rd->value, "null") == 0);
		REQUIRE(single_write(l, rd->ts, &del) == 0);
		db = db_open();
		CHECK(strcmp(del.id, id) == 0 && del.nkeys == ins.nkeys &&
		    write_covers_indexes(db, &del));
		for (i = 0; i < del.nkeys; i++) {
			k = &del.keys[i];
			CHECK(k->old != NULL && k->new == NULL);
			CHECK(key_matches(db, k->index_id, k->old, k->oldlen,
			    doc, id));
		}
		CHECK(db_doc(db, id, NULL) == NULL);
		CHECK(db_int(db, "SELECT count(*) FROM current_indexes WHERE"
		    " " KEY_ID_SQL " = %Q", id) == 0);
		CHECK(db_int(db, "SELECT count(*) FROM indexes WHERE"
		    " ts = %lld AND deleted = 1", (long long)rd->ts) ==
		    (int64_t)ins.nkeys);
		CHECK(db_int(db, "SELECT deleted FROM documents WHERE"
		    " id = %Q AND ts = %lld", id, (long long)rd->ts) == 1);
		cJSON_Delete(doc);
		sqlite3_close(db);
		printf("  %s: insert (old nil), patch (old == new), delete "
		    "(new nil) over %zu indexes\n", table, ins.nkeys);
	}

	/* A batch of two inserts: one notice, two writes, in op order. */
	rb = mutate(l, "", NULL, "db/batch", "{\"ops\":[{\"op\":\"insert\","
	    "\"table\":\"ws\",\"doc\":{\"a\":5}},{\"op\":\"insert\",\"table\":"
	    "\"ws\",\"doc\":{\"a\":6}}]}");
	REQUIRE(rb->code == 0);
	{
		struct notice	*n = notice_by_ts(l, rb->ts);
		cJSON		*val;
		enum json_err	 jerr;

		val = json_parse(rb->value, strlen(rb->value), 2, &jerr);
		CHECK(n != NULL && notice_writes(n, docs, &nd) == 0 &&
		    nd == 2 && cJSON_GetArraySize(val) == 2 &&
		    strcmp(docs[0].id, cJSON_GetArrayItem(val, 0)->
		    valuestring) == 0 && strcmp(docs[1].id,
		    cJSON_GetArrayItem(val, 1)->valuestring) == 0);
		cJSON_Delete(val);
	}
	printf("  batch of two inserts: one notice with two writes\n");
	buf_free(&cur);
}

/*
 * 5. Malformed frames.
 */

/* Replace a finished frame's length word with its real length. */
static void
fix_len(struct buf *f)
{
	uint32_t	 len = htonl((uint32_t)f->len);

	memcpy(f->data, &len, sizeof(len));
}

static void
raw_header(struct buf *f, uint32_t len, uint32_t type, uint32_t seq,
    uint32_t flags)
{
	uint32_t	 h[4];

	h[0] = htonl(len);
	h[1] = htonl(type);
	h[2] = htonl(seq);
	h[3] = htonl(flags);
	buf_add(f, h, sizeof(h));
}

static void
take_msg(struct buf *f, struct ipc_msg *m)
{
	const struct buf	*p = ipc_msg_finish(m);

	buf_add(f, p->data, p->len);
	ipc_msg_free(m);
}

/*
 * Build malformed case k into f; returns its name (NULL past the last)
 * and sets *hello when the link says HELLO first.
 */
static const char *
bad_frame(int k, struct buf *f, int *hello)
{
	struct ipc_msg	 m;
	uint32_t	 x = 2463534242u;
	char		 longid[IPC_MAX_ID_LEN + 2];
	int		 i;

	buf_reset(f);
	*hello = 1;
	switch (k) {
	case 0:
		*hello = 0;
		buf_adds(f, "GET /sync HTTP/1.1\r\nHost: localhost\r\n\r\n");
		return "(a) text before HELLO";
	case 1:
		*hello = 0;
		raw_header(f, 5, IPC_HELLO, 0, 0);
		for (i = 0; i < 48; i++)
			buf_addc(f, 'x');
		return "(a) length below the header size";
	case 2:
		buf_addc(f, '\xff');
		for (i = 1; i < BAD_RANDOM_BYTES; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf_addc(f, (char)(x & 0xff));
		}
		return "(a) random bytes after HELLO";
	case 3:
		*hello = 0;
		hello_msg(&m, IPC_VERSION, "bad-gw");
		take_msg(f, &m);
		f->data[15] = 1;
		return "(b) HELLO with flags 1";
	case 4:
		mutate_msg(&m, 1, "", NULL, "db/insert",
		    "{\"table\":\"probe\",\"doc\":{}}");
		take_msg(f, &m);
		f->data[12] = '\x80';
		return "(b) MUTATE with flags 0x80000000";
	case 5:
		raw_header(f, IPC_MAX_GW_FRAME + 1, IPC_MUTATE, 1, 0);
		return "(b) length over the frame bound";
	case 6:
		*hello = 0;
		hello_msg(&m, IPC_VERSION, "bad-gw");
		take_msg(f, &m);
		f->len -= 1;
		fix_len(f);
		return "(c) HELLO body cut short";
	case 7:
		mutate_msg(&m, 1, "", NULL, "db/insert",
		    "{\"table\":\"probe\",\"doc\":{}}");
		take_msg(f, &m);
		f->len -= 3;
		fix_len(f);
		return "(c) MUTATE body cut short";
	case 8:
		ipc_msg_init(&m, IPC_MUTATE, 1, 4);
		ipc_add_cstr(&m, "");
		ipc_add_nil(&m);
		ipc_add_cstr(&m, "db/insert");
		ipc_add_i64(&m, 42);
		take_msg(f, &m);
		return "(c) MUTATE args an integer";
	case 9:
		ipc_msg_init(&m, IPC_MUTATE, 1, 5);
		ipc_add_cstr(&m, "");
		ipc_add_nil(&m);
		ipc_add_cstr(&m, "db/insert");
		ipc_add_cstr(&m, "{\"table\":\"probe\",\"doc\":{}}");
		ipc_add_nil(&m);
		take_msg(f, &m);
		return "(c) MUTATE with five fields";
	case 10:
		mutate_msg(&m, 1, "", NULL, "db/insert",
		    "{\"table\":\"probe\",\"doc\":{}}");
		take_msg(f, &m);
		buf_addc(f, '\xc0');
		fix_len(f);
		return "(c) MUTATE with a byte after its array";
	case 11:
		ipc_msg_init(&m, IPC_MUTATE, 1, 4);
		ipc_add_cstr(&m, "s1");
		ipc_add_bool(&m, 1);
		ipc_add_cstr(&m, "db/insert");
		ipc_add_cstr(&m, "{\"table\":\"probe\",\"doc\":{}}");
		take_msg(f, &m);
		return "(c) MUTATE request id a boolean";
	case 12:
		/* {"a": 1, "b": 2} */
		raw_header(f, IPC_HDR_LEN + 7, IPC_MUTATE, 1, 0);
		buf_add(f, "\x82\xa1" "a" "\x01\xa1" "b" "\x02", 7);
		return "(c) MUTATE body a map";
	case 13:
		ipc_msg_init(&m, IPC_MUTATE, 1, 4);
		ipc_add_str(&m, "s\0x", 3);
		ipc_add_nil(&m);
		ipc_add_cstr(&m, "db/insert");
		ipc_add_cstr(&m, "{\"table\":\"probe\",\"doc\":{}}");
		take_msg(f, &m);
		return "(c) MUTATE session id with a NUL";
	case 14:
		*hello = 0;
		ipc_msg_init(&m, IPC_HELLO, 0, 3);
		ipc_add_cstr(&m, "1");
		ipc_add_cstr(&m, "bad-gw");
		ipc_add_u64(&m, 1);
		take_msg(f, &m);
		return "(c) HELLO version a string";
	case 15:
		raw_header(f, IPC_HDR_LEN, IPC_MUTATE, 1, 0);
		return "(c) MUTATE with an empty body";
	case 16:
		raw_header(f, IPC_HDR_LEN + 5, IPC_MUTATE, 1, 0);
		buf_add(f, "\xdd\xff\xff\xff\xff", 5);
		return "(c) MUTATE declaring 2^32-1 fields";
	case 17:
		*hello = 0;
		memset(longid, 'g', sizeof(longid) - 1);
		longid[sizeof(longid) - 1] = '\0';
		hello_msg(&m, IPC_VERSION, longid);
		take_msg(f, &m);
		return "(c) HELLO gateway id over IPC_MAX_ID_LEN";
	case 18:
		*hello = 0;
		mutate_msg(&m, 1, "", NULL, "db/insert",
		    "{\"table\":\"probe\",\"doc\":{}}");
		take_msg(f, &m);
		return "(d) MUTATE before HELLO";
	case 19:
		*hello = 0;
		hello_msg(&m, IPC_VERSION + 1, "bad-gw");
		take_msg(f, &m);
		return "(e) HELLO with the next version";
	case 20:
		*hello = 0;
		hello_msg(&m, 0, "bad-gw");
		take_msg(f, &m);
		return "(e) HELLO with version 0";
	case 21:
		ipc_msg_init(&m, 99, 1, 0);
		take_msg(f, &m);
		return "unknown type after HELLO";
	case 22:
		hello_msg(&m, IPC_VERSION, "bad-gw");
		take_msg(f, &m);
		return "a second HELLO";
	case 23:
		ipc_msg_init(&m, IPC_COMMIT, 0, 4);
		ipc_add_i64(&m, 1);
		ipc_add_i64(&m, 0);
		ipc_add_i64(&m, 1);
		ipc_add_nil(&m);
		take_msg(f, &m);
		return "a COMMIT sent up";
	default:
		return NULL;
	}
}

static void
test_malformed(struct link *good, const struct acked *acked, size_t nacked)
{
	struct link	*bad;
	struct result	*r;
	struct buf	 f;
	const char	*name;
	int64_t		 t0;
	int		 k, hello, drops = 0;

	printf("5. malformed frames\n");
	buf_init(&f);
	for (k = 0; (name = bad_frame(k, &f, &hello)) != NULL; k++) {
		bad = link_open("bad-gw");
		if (hello)
			link_hello(bad);
		link_queue(bad, f.data, f.len);
		t0 = ms_now();
		if (!CHECK(pump(done_eof, bad, DROP_TIMEOUT_MS) == 0))
			fprintf(stderr, "  %s: link not closed\n", name);
		else
			drops++;
		CHECK(bad->nresults == 0);
		link_close(bad);
		CHECK(writerd_alive(NULL));
		r = mutate(good, "", NULL, "db/insert",
		    "{\"table\":\"probe\",\"doc\":{\"after\":1}}");
		CHECK(r->code == 0 && r->ts > 0);
		printf("  %-42s dropped in %3lld ms; writer up, other link "
		    "ok\n", name, (long long)(ms_now() - t0));
	}
	buf_free(&f);
	CHECK(drops == k);
	verify_items(acked, nacked, "after the malformed frames");
}

/*
 * 6. SIGTERM and a restart.
 */

static void
test_stop_restart(struct link **gw, const struct result *first,
    const struct acked *acked, size_t nacked)
{
	struct link	*l = gw[0], *nl;
	struct result	*r;
	struct notice	*n;
	sqlite3		*db;
	char		 args[128], id[STORE_ID_LEN + 1];
	uint64_t	 digest;
	int64_t		 ms, last_seen = 0, db_max, db_catver;
	uint32_t	 seq0, s;
	size_t		 i, ok = 0, refused = 0, unanswered = 0, other = 0;
	int		 st;

	printf("6. SIGTERM and restart\n");
	/* Inserts in flight when the signal arrives. */
	seq0 = l->next_seq;
	for (i = 0; i < LATE_MUTATIONS; i++) {
		snprintf(args, sizeof(args), "{\"table\":\"late\",\"doc\":"
		    "{\"n\":%zu}}", i);
		link_mutate(l, "", NULL, "db/insert", args);
	}
	if (pump(done_flushed, l, WAIT_TIMEOUT_MS) == -1)
		bail(__LINE__, "could not send the late inserts");
	st = writerd_stop(&ms);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(ms <= STOP_TIMEOUT_MS);
	printf("  writerd exited with status %d after %lld ms\n",
	    st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1, (long long)ms);
	for (i = 0; i < T.nlinks; i++)
		CHECK(pump(done_eof, T.links[i], DROP_TIMEOUT_MS) == 0);
	CHECK(access(T.sock, F_OK) == -1);

	/* What was acknowledged is stored; what was refused is not. */
	db = db_open();
	for (s = seq0; s < seq0 + LATE_MUTATIONS; s++) {
		r = &l->results[s];
		if (!r->got) {
			unanswered++;
			continue;
		}
		if (r->code == 0) {
			ok++;
			value_id(r, id);
			CHECK(id[0] != '\0' && db_int(db, "SELECT ts FROM"
			    " current_documents WHERE id = %Q", id) == r->ts);
		} else if (r->code == TV_UNAVAILABLE)
			refused++;
		else
			other++;
	}
	/*
	 * The inserts were in writerd's socket before the signal, so it
	 * reads them in the same loop pass at the latest and answers each
	 * (run, or Unavailable) within its stop grace.
	 */
	CHECK(other == 0 && unanswered == 0);
	CHECK(db_int(db, "SELECT count(*) FROM current_documents WHERE"
	    " table_id = (SELECT table_id FROM tables WHERE name = 'late')") >=
	    (int64_t)ok);
	printf("  late inserts: %zu ok (stored), %zu Unavailable, %zu "
	    "unanswered\n", ok, refused, unanswered);
	for (i = 0; i < NSTREAMS; i++) {
		if ((n = last_notice(gw[i])) != NULL && n->ts > last_seen)
			last_seen = n->ts;
	}
	db_max = db_int(db, "SELECT CAST(json_value AS INTEGER) FROM globals"
	    " WHERE key = 'max_ts'");
	CHECK(db_max >= last_seen && db_max == db_int(db,
	    "SELECT max(ts) FROM documents"));
	db_catver = db_int(db, "SELECT CAST(json_value AS INTEGER) FROM"
	    " globals WHERE key = 'catalog_version'");
	digest = db_digest(db);
	sqlite3_close(db);
	for (i = 0; i < NSTREAMS; i++)
		link_close(gw[i]);

	writerd_start();
	nl = link_open("test-gw-restart");
	link_hello(nl);
	CHECK(nl->welcome_ts == db_max);
	CHECK(nl->welcome_catver == db_catver);
	printf("  restarted: WELCOME max_ts %lld (stored %lld, last seen "
	    "%lld)\n", (long long)nl->welcome_ts, (long long)db_max,
	    (long long)last_seen);
	db = db_open();
	CHECK(db_digest(db) == digest);
	sqlite3_close(db);
	verify_items(acked, nacked, "after the restart");

	/* Idempotency records survive. */
	r = mutate(nl, "s1", "s:r1", "db/insert", idem_other);
	CHECK(same_outcome(r, first));
	/* The log goes on from max_ts. */
	r = mutate(nl, "", NULL, "db/insert",
	    "{\"table\":\"probe\",\"doc\":{\"restart\":1}}");
	CHECK(r->code == 0 && r->ts > db_max);
	n = last_notice(nl);
	CHECK(nl->nnotices == 1 && n != NULL && n->ts == r->ts &&
	    n->prev_ts == db_max);
	printf("  same data, idempotency record replayed, next ts chains "
	    "from max_ts\n");

	st = writerd_stop(&ms);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(ms <= STOP_TIMEOUT_MS);
	CHECK(pump(done_eof, nl, DROP_TIMEOUT_MS) == 0);
	link_close(nl);
	printf("  second stop: status %d after %lld ms\n",
	    st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1, (long long)ms);
}

/*
 * 7. A gateway that does not read.  Each mutation with args over
 * max_args_bytes is answered at once (TooLarge); the answers pile up in
 * writerd's output to that gateway until the bound drops it.
 */
static void
test_output_bound(void)
{
	struct link	*good, *flood;
	struct result	*r;
	struct ipc_msg	 m;
	FILE		*fp;
	int64_t		 t0, ms;
	uint32_t	 i;
	int		 st;

	printf("7. a gateway that does not read\n");
	T.confpath = path_join(T.dir, "tinyvex.conf");
	if ((fp = fopen(T.confpath, "w")) == NULL)
		bail(__LINE__, "%s: %s", T.confpath, strerror(errno));
	fprintf(fp, "gateway_output_limit %s\nmax_args_bytes %s\n",
	    FLOOD_OUTPUT_LIMIT, FLOOD_MAX_ARGS);
	fclose(fp);
	writerd_start();
	good = link_open("test-gw-good");
	link_hello(good);
	flood = link_open("test-gw-flood");
	link_hello(flood);
	r = mutate(flood, "", NULL, "db/insert",
	    "{\"table\":\"flood\",\"doc\":{\"a\":1,\"b\":2}}");
	CHECK(r->code == TV_TOO_LARGE && r->ts == 0);
	flood->mute = 1;
	for (i = 0; i < FLOOD_MUTATIONS; i++) {
		mutate_msg(&m, i + 2, "", NULL, "db/insert",
		    "{\"table\":\"flood\",\"doc\":{\"a\":1,\"b\":2}}");
		link_queue_msg(flood, &m);
	}
	t0 = ms_now();
	CHECK(pump(done_eof, flood, FLOOD_TIMEOUT_MS) == 0);
	printf("  the mute gateway was dropped after %lld ms, %zu bytes "
	    "still unsent\n", (long long)(ms_now() - t0), flood->out.len);
	link_close(flood);
	CHECK(writerd_alive(NULL));
	r = mutate(good, "", NULL, "db/insert",
	    "{\"table\":\"t\",\"doc\":{}}");
	CHECK(r->code == 0 && r->ts > 0);
	CHECK(!good->eof);
	st = writerd_stop(&ms);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(pump(done_eof, good, DROP_TIMEOUT_MS) == 0);
	link_close(good);
	printf("  writer up, the other gateway ok; stop status %d after %lld "
	    "ms\n", st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1,
	    (long long)ms);
}

/* Remove the (flat) state directory. */
static void
remove_dir(void)
{
	DIR		*d;
	struct dirent	*e;
	char		*p;

	if ((d = opendir(T.dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = path_join(T.dir, e->d_name);
		unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(T.dir);
}

int
main(int argc, char *argv[])
{
	struct link	*gw[NSTREAMS];
	struct acked	*acked;
	struct result	 first;
	const char	*tmp;
	char		 name[32];
	FILE		*fp;
	int		 i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s WRITERD\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	memset(&T, 0, sizeof(T));
	T.writerd = argv[1];
	if (access(T.writerd, X_OK) == -1)
		bail(__LINE__, "%s: %s", T.writerd, strerror(errno));
	if ((tmp = getenv("TMPDIR")) == NULL || tmp[0] != '/')
		tmp = "/tmp";
	snprintf(T.dir, sizeof(T.dir), "%s/tinyvex-itest-XXXXXX", tmp);
	if (mkdtemp(T.dir) == NULL)
		bail(__LINE__, "mkdtemp %s: %s", T.dir, strerror(errno));
	T.sock = path_join(T.dir, "writer.sock");
	T.dbpath = path_join(T.dir, "tinyvex.db");
	T.logpath = path_join(T.dir, "writerd.log");
	T.schemapath = path_join(T.dir, "schema.json");
	if ((fp = fopen(T.schemapath, "w")) == NULL)
		bail(__LINE__, "%s: %s", T.schemapath, strerror(errno));
	fprintf(fp, "{\"tables\": {\"wsx\": {\"indexes\": "
	    "{\"by_a\": [\"a\"]}}}}\n");
	fclose(fp);
	printf("state directory %s\n", T.dir);

	writerd_start();
	for (i = 0; i < NSTREAMS; i++) {
		snprintf(name, sizeof(name), "test-gw-%d", i);
		gw[i] = link_open(name);
		link_hello(gw[i]);
		CHECK(gw[i]->welcome_ts == gw[0]->welcome_ts);
	}
	acked = test_streams(gw);
	test_group(gw[0]);
	test_idempotency(gw[1], gw[2], &first);
	test_write_sets(gw[3]);
	test_malformed(gw[0], acked, NSTREAMS * STREAM_MUTATIONS);
	test_stop_restart(gw, &first, acked, NSTREAMS * STREAM_MUTATIONS);
	test_output_bound();

	free(acked);
	free(first.message);
	free(first.value);
	printf("%d checks, %d failed\n", T.nchecks, T.nfailed);
	if (T.nfailed > 0) {
		print_log_tail();
		fprintf(stderr, "state directory kept: %s\n", T.dir);
		return 1;
	}
	remove_dir();
	free(T.sock);
	free(T.dbpath);
	free(T.logpath);
	free(T.schemapath);
	free(T.confpath);
	return 0;
}
