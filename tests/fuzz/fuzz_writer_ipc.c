/*
 * Fuzz target for writerd's side of the gateway link: what a gateway
 * sends on writer.sock.  The input is the byte stream of one gateway
 * connection, a sequence of frames.
 *
 * First the frames are walked the way writerd reads them (header bounds,
 * ipc_frame_peek, then HELLO first, MUTATE and GW_STATS after), with
 * every body given to both ipcmsg_hello and ipcmsg_mutate, and the
 * provider and action frames (PROVIDE .. RUN_DONE) to their decoders in
 * common/actmsg.c.  Checked: at
 * most one of them accepts a body; an accepted one has its strings inside
 * the body, within their limits and without NUL bytes where the protocol
 * forbids them; rebuilt with the message builder it decodes to the same
 * fields; a refused one leaves its output zeroed.
 *
 * Then the same bytes go through a whole writerd link in this process:
 * a writerd context set up as writerd's main sets it up (wdinit.c) on a
 * scratch state directory, one client connection that writes the input and
 * shuts its side.  Mutations run through the real group commit.  Checked:
 * the link ends within a bounded number of loop turns; it is dropped for
 * a bad frame exactly when the walk found one; no more mutations run
 * than the walk found well-formed; nothing stays queued; every frame
 * writerd sends back is whole, within IPC_MAX_WR_FRAME, of a type a
 * writer sends, and WELCOME comes first.  The database is made anew
 * every FUZZ_RESET_COMMITS commits so that it stays small.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actmsg.h"
#include "daemon.h"
#include "fuzz.h"
#include "json.h"
#include "log.h"
#include "proto/ipc.h"
#include "writerd.h"

#define FUZZ_SPINS		4000	/* loop turns allowed per input */
#define FUZZ_RESET_COMMITS	2000	/* new database after this many */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct writerd	 wd;
static char		 sockpath[256];
static uint64_t		 commits_at_open;

static void
db_open(void)
{
	char	 err[512];

	if (writerd_open(&wd, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_writer_ipc: %s\n", err);
		abort();
	}
	commits_at_open = wd.stats.commits;
}

/* Remove the files of the closed database. */
static void
db_remove(void)
{
	static const char	*suffix[] = { "", "-wal", "-shm" };
	char			 p[512];
	size_t			 i;

	for (i = 0; i < nitems(suffix); i++) {
		snprintf(p, sizeof(p), "%s%s", wd.dbpath, suffix[i]);
		unlink(p);
	}
}

/* Remove the scratch directory when the fuzzer exits. */
static void
cleanup(void)
{
	char	*dir = xstrdup(wd.statedir);

	writerd_close(&wd);
	db_remove();
	writerd_free(&wd);
	rmdir(dir);
	free(dir);
}

static void
setup(void)
{
	static const char	*bases[] = { "/dev/shm", "/tmp" };
	char			 dir[256];
	size_t			 i;

	log_init("fuzz_writer_ipc", 0, 0);
	signal(SIGPIPE, SIG_IGN);
	writerd_init(&wd);
	for (i = 0; i < nitems(bases); i++) {
		snprintf(dir, sizeof(dir), "%s/fuzz_writer_ipc.XXXXXX",
		    bases[i]);
		if (mkdtemp(dir) != NULL)
			break;
	}
	need(i < nitems(bases));
	need(writerd_setup(&wd, dir) == 0);
	snprintf(sockpath, sizeof(sockpath), "%s/%s", dir,
	    TINYVEX_WRITER_SOCK);
	db_open();
	need(writerd_listen(&wd) == 0);
	atexit(cleanup);
}

static void
check_hello(const unsigned char *body, size_t len, const struct hello *h)
{
	struct ipc_msg		 m;
	struct hello		 again;
	const struct buf	*f;

	in_body(body, len, h->name, h->namelen);
	need(h->namelen <= IPC_MAX_ID_LEN);
	ipc_msg_init(&m, IPC_HELLO, 0, 3);
	ipc_add_u64(&m, h->version);
	ipc_add_str(&m, h->name, h->namelen);
	ipc_add_u64(&m, h->pid);
	f = ipc_msg_finish(&m);
	need(ipcmsg_hello((const unsigned char *)f->data + IPC_HDR_LEN,
	    f->len - IPC_HDR_LEN, &again) == 0);
	need(again.version == h->version && again.pid == h->pid &&
	    again.namelen == h->namelen &&
	    memcmp(again.name, h->name, h->namelen) == 0);
	ipc_msg_free(&m);
}

static void
check_mutate(const unsigned char *body, size_t len,
    const struct mutate_req *q)
{
	struct ipc_msg		 m;
	struct mutate_req	 again;
	const struct buf	*f;

	in_body(body, len, q->session_id, q->session_idlen);
	in_body(body, len, q->udf_path, q->udf_pathlen);
	in_body(body, len, q->args, q->argslen);
	need(q->session_idlen <= IPC_MAX_ID_LEN &&
	    q->udf_pathlen <= IPC_MAX_UDF_LEN &&
	    q->argslen <= IPC_MAX_GW_FRAME);
	need(memchr(q->session_id, '\0', q->session_idlen) == NULL &&
	    memchr(q->udf_path, '\0', q->udf_pathlen) == NULL);
	if (q->request_id != NULL) {
		need(q->has_request_id && q->request_num == 0);
		in_body(body, len, q->request_id, q->request_idlen);
		need(q->request_idlen <= IPC_MAX_ID_LEN &&
		    memchr(q->request_id, '\0', q->request_idlen) == NULL);
	} else
		need(q->request_idlen == 0);
	if (!q->has_request_id)
		need(q->request_id == NULL && q->request_num == 0);

	ipc_msg_init(&m, IPC_MUTATE, 0, 4);
	ipc_add_str(&m, q->session_id, q->session_idlen);
	if (!q->has_request_id)
		ipc_add_nil(&m);
	else if (q->request_id != NULL)
		ipc_add_str(&m, q->request_id, q->request_idlen);
	else
		ipc_add_i64(&m, q->request_num);
	ipc_add_str(&m, q->udf_path, q->udf_pathlen);
	ipc_add_str(&m, q->args, q->argslen);
	f = ipc_msg_finish(&m);
	need(ipcmsg_mutate((const unsigned char *)f->data + IPC_HDR_LEN,
	    f->len - IPC_HDR_LEN, &again) == 0);
	need(again.has_request_id == q->has_request_id &&
	    (again.request_id == NULL) == (q->request_id == NULL) &&
	    again.request_num == q->request_num &&
	    again.request_idlen == q->request_idlen &&
	    (q->request_id == NULL || memcmp(again.request_id,
	    q->request_id, q->request_idlen) == 0) &&
	    again.session_idlen == q->session_idlen &&
	    memcmp(again.session_id, q->session_id, q->session_idlen) == 0 &&
	    again.udf_pathlen == q->udf_pathlen &&
	    memcmp(again.udf_path, q->udf_path, q->udf_pathlen) == 0 &&
	    again.argslen == q->argslen &&
	    memcmp(again.args, q->args, q->argslen) == 0);
	ipc_msg_free(&m);
}

static int	all_zero(const void *, size_t);

/* 1 when the n bytes at s are JSON (an object when object is set). */
static int
is_json(const char *s, size_t n, int object)
{
	enum json_err	 jerr;
	cJSON		*v;
	int		 ok;

	if ((v = json_parse(s, n, JSON_MAX_DEPTH, &jerr)) == NULL)
		return 0;
	ok = !object || cJSON_IsObject(v);
	cJSON_Delete(v);
	return ok;
}

/*
 * A provider or action frame as writerd judges it: 1 well-formed, 0 bad.
 * Decoded fields lie in the body and within their bounds, and a refused
 * body leaves the output zeroed.
 */
static int
check_action(uint32_t type, const unsigned char *body, size_t len)
{
	struct actmsg_names	 n;
	struct actmsg_call	 c;
	struct actmsg_outcome	 o;
	uint64_t		 id;
	uint32_t		 call, i;
	int			 ok = 0;

	switch (type) {
	case IPC_PROVIDE:
	case IPC_UNPROVIDE:
		ok = (type == IPC_PROVIDE ? actmsg_provide(body, len, &n) :
		    actmsg_unprovide(body, len, &n)) == 0;
		if (!ok) {
			need(all_zero(&n, sizeof(n)));
			break;
		}
		need(n.n <= IPC_MAX_FUNCTIONS);
		need(type == IPC_UNPROVIDE || (n.n > 0 && n.concurrency > 0 &&
		    n.concurrency <= IPC_MAX_CONCURRENCY));
		for (i = 0; i < n.n; i++) {
			in_body(body, len, n.name[i], n.namelen[i]);
			need(actmsg_name_kind(n.name[i], n.namelen[i]) !=
			    ACT_NAME_BAD);
		}
		break;
	case IPC_PROVIDER_GONE:
		ok = actmsg_id(body, len, &id) == 0;
		break;
	case IPC_ACTION_CANCEL:
		ok = actmsg_cancel(body, len, &call) == 0;
		break;
	case IPC_ACTION:
		ok = actmsg_action(body, len, &c) == 0;
		if (!ok) {
			need(all_zero(&c, sizeof(c)));
			break;
		}
		in_body(body, len, c.session_id, c.session_idlen);
		in_body(body, len, c.udf_path, c.udf_pathlen);
		in_body(body, len, c.args, c.argslen);
		need(c.udf_pathlen > 0 && c.udf_pathlen <= IPC_MAX_UDF_LEN &&
		    c.argslen <= IPC_MAX_ACTION_TEXT);
		ok = is_json(c.args, c.argslen, 1);
		break;
	case IPC_RUN_DONE:
		ok = actmsg_run_done(body, len, &o) == 0;
		if (!ok) {
			need(all_zero(&o, sizeof(o)));
			break;
		}
		in_body(body, len, o.message, o.messagelen);
		in_body(body, len, o.text, o.textlen);
		need(o.ts >= 0 && o.messagelen <= IPC_MAX_ACTION_MESSAGE);
		ok = o.textlen == 0 || is_json(o.text, o.textlen, 0);
		break;
	}
	return ok;
}

static int
all_zero(const void *p, size_t n)
{
	const unsigned char	*c = p;
	size_t			 i;

	for (i = 0; i < n; i++)
		if (c[i] != 0)
			return 0;
	return 1;
}

/*
 * Walk the frames as writerd reads them.  Returns 1 when writerd must
 * drop the link for a bad frame, else 0; *nmut is the number of
 * well-formed mutations before that point.
 */
static int
walk(const uint8_t *data, size_t size, size_t *nmut)
{
	struct ipc_hdr		 h;
	struct ipc_reader	 r;
	struct hello		 hello;
	struct mutate_req	 q;
	const unsigned char	*body;
	unsigned char		*copy;
	const char		*s;
	size_t			 off = 0, need_len, blen, slen;
	int			 first = 1, ok_h, ok_m, bad = 0;

	*nmut = 0;
	while (!bad && size - off >= IPC_HDR_LEN) {
		need_len = (size_t)data[off] << 24 |
		    (size_t)data[off + 1] << 16 |
		    (size_t)data[off + 2] << 8 | data[off + 3];
		if (need_len < IPC_HDR_LEN || need_len > IPC_MAX_GW_FRAME) {
			bad = 1;
			break;
		}
		if (size - off < need_len)
			break;
		if (ipc_frame_peek(data + off, need_len, IPC_MAX_GW_FRAME,
		    &h) <= 0) {
			bad = 1;
			break;
		}
		need(h.len == need_len);
		/* An exact copy, so that a read past the body is caught. */
		blen = need_len - IPC_HDR_LEN;
		copy = xmalloc(blen == 0 ? 1 : blen);
		memcpy(copy, data + off + IPC_HDR_LEN, blen);
		body = copy;
		ok_h = ipcmsg_hello(body, blen, &hello) == 0;
		ok_m = ipcmsg_mutate(body, blen, &q) == 0;
		need(!(ok_h && ok_m));
		if (ok_h)
			check_hello(body, blen, &hello);
		else
			need(all_zero(&hello, sizeof(hello)));
		if (ok_m)
			check_mutate(body, blen, &q);
		else
			need(all_zero(&q, sizeof(q)));
		if (first) {
			if (h.type != IPC_HELLO || !ok_h ||
			    hello.version != IPC_VERSION)
				bad = 1;
			first = 0;
		} else if (h.type == IPC_MUTATE) {
			if (ok_m)
				(*nmut)++;
			else
				bad = 1;
		} else if (h.type == IPC_PROVIDE || h.type == IPC_UNPROVIDE ||
		    h.type == IPC_PROVIDER_GONE || h.type == IPC_ACTION ||
		    h.type == IPC_ACTION_CANCEL || h.type == IPC_RUN_DONE) {
			if (!check_action(h.type, body, blen))
				bad = 1;
		} else if (h.type == IPC_GW_STATS) {
			if (ipc_reader_init(&r, body, blen, 1) == -1 ||
			    ipc_get_str(&r, &s, &slen,
			    IPC_MAX_STATS_BYTES) == -1 ||
			    ipc_end(&r) == -1)
				bad = 1;
		} else
			bad = 1;
		free(copy);
		off += need_len;
	}
	return bad;
}

/* What writerd sent: whole frames of writer types, WELCOME first. */
static void
check_output(const struct buf *rx)
{
	struct ipc_hdr	 h;
	size_t		 off = 0;
	long		 n;
	int		 first = 1;

	while (off < rx->len) {
		n = ipc_frame_peek((const unsigned char *)rx->data + off,
		    rx->len - off, IPC_MAX_WR_FRAME, &h);
		/* A cut frame is possible: the link may drop mid-write. */
		if (n == 0)
			break;
		need(n > 0);
		need(first ? h.type == IPC_WELCOME : (h.type == IPC_RESULT ||
		    h.type == IPC_COMMIT || h.type == IPC_SET_LOG ||
		    h.type == IPC_PROVIDED || h.type == IPC_ACTION_DONE ||
		    h.type == IPC_RUN || h.type == IPC_RUN_CANCEL));
		first = 0;
		off += (size_t)n;
	}
}

static void
drain(int fd, struct buf *rx)
{
	char	 tmp[16384];
	ssize_t	 n;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_add(rx, tmp, (size_t)n);
}

/* The input through a real link; returns 1 when it was dropped as bad. */
static int
drive(const uint8_t *data, size_t size, uint64_t *ran)
{
	struct sockaddr_un	 sun;
	struct buf		 rx;
	uint64_t		 bad0 = wd.stats.bad_frames;
	uint64_t		 mut0 = wd.stats.mutations;
	uint32_t		 id0 = wd.next_gw_id;
	size_t			 off = 0;
	ssize_t			 n;
	int			 fd, spins, shut = 0;

	need(unix_addr(&sun, sockpath) == 0);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	need(fd != -1);
	need(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	buf_init(&rx);
	for (spins = 0; spins < FUZZ_SPINS; spins++) {
		if (off < size) {
			n = send(fd, data + off, size - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n == -1 && errno != EAGAIN &&
			    errno != EWOULDBLOCK)
				off = size;	/* writerd hung up */
		}
		if (off == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = 1;
		}
		event_base_loop(wd.base, EVLOOP_NONBLOCK);
		drain(fd, &rx);
		if (shut && wd.next_gw_id != id0 &&
		    TAILQ_EMPTY(&wd.gateways))
			break;
	}
	need(spins < FUZZ_SPINS);
	need(wd.next_gw_id == id0 + 1);
	need(TAILQ_EMPTY(&wd.queue) && TAILQ_EMPTY(&wd.group));
	need(TAILQ_EMPTY(&wd.reg.calls) && TAILQ_EMPTY(&wd.reg.providers));
	drain(fd, &rx);
	close(fd);
	check_output(&rx);
	buf_free(&rx);
	*ran = wd.stats.mutations - mut0;
	return wd.stats.bad_frames != bad0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		 nmut;
	uint64_t	 ran;
	int		 bad;

	if (wd.base == NULL)
		setup();
	bad = walk(data, size, &nmut);
	need(drive(data, size, &ran) == bad);
	need(ran <= nmut);
	if (wd.stats.commits - commits_at_open >= FUZZ_RESET_COMMITS) {
		writerd_close(&wd);
		db_remove();
		db_open();
	}
	return 0;
}
