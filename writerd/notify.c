/*
 * The gateway links on writer.sock: accept (peer credentials checked,
 * fail closed), HELLO/WELCOME, reading mutation requests into the group
 * commit queue, and sending commit notices and outcomes back.  Gateways
 * face the network, so everything they send is treated as untrusted: a
 * malformed or unexpected frame drops that link (logged), never the
 * writer.  Output to a gateway is bounded: a gateway that does not read
 * is dropped and resyncs from the log when it reconnects.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon.h"
#include "json.h"
#include "log.h"
#include "proto/ipc.h"
#include "writerd.h"

#define NOTIFY_FRAMES_PER_EVENT	256	/* fairness between gateways */

static void	gw_read(struct bufferevent *, void *);
static void	gw_event(struct bufferevent *, short, void *);
static void	gw_drop(struct gwlink *, const char *);
static int	result_send(struct gwlink *, const struct mutation *);

void
mutation_free(struct mutation *m)
{
	if (m == NULL)
		return;
	free(m->session_id);
	free(m->request_key);
	free(m->udf_path);
	free(m->args);
	buf_free(&m->value);
	buf_free(&m->notice);
	free(m);
}

/* 0 when the peer is allowed: root, our own uid, or the gateway user. */
static int
peer_allowed(struct writerd *wd, int fd, uid_t *uidp)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    len != sizeof(cred))
		return -1;
	*uidp = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid() || cred.uid == wd->gw_uid)
		return 0;
	return -1;
}

static void
hello_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	gw_drop(arg, "no HELLO in time");
}

static void
gw_accept(int fd, void *arg)
{
	struct writerd		*wd = arg;
	struct gwlink		*gw;
	struct timeval		 tv = { WRITERD_HELLO_TIMEOUT, 0 };
	size_t			 n = 0;
	uid_t			 uid = (uid_t)-1;

	if (peer_allowed(wd, fd, &uid) == -1) {
		log_warnx("writer.sock: refused peer uid %d", (int)uid);
		close(fd);
		return;
	}
	TAILQ_FOREACH(gw, &wd->gateways, entry)
		n++;
	if (wd->stopping || n >= (size_t)wd->conf.max_gateways) {
		log_warnx("writer.sock: refused gateway: %s", wd->stopping ?
		    "stopping" : "too many gateways");
		close(fd);
		return;
	}
	gw = xcalloc(1, sizeof(*gw));
	gw->wd = wd;
	/* An id of no linked gateway, never 0 (after 2^32 links). */
	do
		gw->id = ++wd->next_gw_id;
	while (gw->id == 0 ||
	    htab_get(&wd->gw_tab, &gw->id, sizeof(gw->id)) != NULL);
	snprintf(gw->name, sizeof(gw->name), "#%u", gw->id);
	gw->bev = bufferevent_socket_new(wd->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (gw->bev == NULL) {
		close(fd);
		free(gw);
		return;
	}
	bufferevent_setcb(gw->bev, gw_read, NULL, gw_event, gw);
	bufferevent_enable(gw->bev, EV_READ);
	gw->hello_timer = evtimer_new(wd->base, hello_timeout, gw);
	evtimer_add(gw->hello_timer, &tv);
	TAILQ_INSERT_TAIL(&wd->gateways, gw, entry);
	htab_insert_key(&wd->gw_tab, &gw->hent, &gw->id, sizeof(gw->id));
	log_debug("gateway %u connected (uid %d)", gw->id, (int)uid);
}

int
notify_listen(struct writerd *wd, const char *path)
{
	int	 fd;

	if ((fd = listen_unix(path, 0660)) == -1)
		return -1;
	if (geteuid() == 0 && wd->gw_gid != 0 &&
	    chown(path, 0, wd->gw_gid) == -1)
		log_warn("chown %s", path);
	wd->gw_listener = listen_start(wd->base, fd, TINYVEX_WRITER_SOCK,
	    gw_accept, wd);
	return wd->gw_listener != NULL ? 0 : -1;
}

static void
gw_free(struct gwlink *gw)
{
	struct writerd	*wd = gw->wd;
	struct mutation	*m, *tmp;
	uint32_t	 id;

	/* Queued work of this gateway never runs; answered work is lost. */
	TAILQ_FOREACH_SAFE(m, &wd->queue, entry, tmp) {
		if (m->gw_id == gw->id) {
			TAILQ_REMOVE(&wd->queue, m, entry);
			mutation_free(m);
		}
	}
	/* Outcomes of its group in progress find no gateway by its id. */
	htab_remove(&wd->gw_tab, &gw->hent);
	TAILQ_REMOVE(&wd->gateways, gw, entry);
	if (gw->hello_timer != NULL)
		event_free(gw->hello_timer);
	bufferevent_free(gw->bev);
	free(gw->stats);
	id = gw->id;
	free(gw);
	/* Out of the list first: what this fails cannot send to it. */
	registry_gw_gone(wd, id);
}

static void
gw_drop(struct gwlink *gw, const char *why)
{
	log_warnx("gateway %u (%s): dropped: %s", gw->id, gw->name, why);
	gw->wd->stats.gateways_dropped++;
	gw_free(gw);
}

static void
gw_event(struct bufferevent *bev, short what, void *arg)
{
	struct gwlink	*gw = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF) {
		log_info("gateway %u (%s) disconnected", gw->id, gw->name);
		gw_free(gw);
	} else if (what & BEV_EVENT_ERROR)
		gw_drop(gw, strerror(EVUTIL_SOCKET_ERROR()));
}

/* Queue a frame to a gateway, dropping it past the output bound. */
static int
gw_send(struct gwlink *gw, const struct buf *frame)
{
	struct evbuffer	*out = bufferevent_get_output(gw->bev);

	if (evbuffer_get_length(out) + frame->len >
	    gw->wd->conf.gateway_output_limit) {
		gw_drop(gw, "output limit passed; it will resync");
		return -1;
	}
	if (bufferevent_write(gw->bev, frame->data, frame->len) == -1) {
		gw_drop(gw, "write failed");
		return -1;
	}
	return 0;
}

static int
handle_hello(struct gwlink *gw, const struct ipc_hdr *h,
    const unsigned char *body, size_t len)
{
	struct writerd	*wd = gw->wd;
	struct hello	 hello;
	struct ipc_msg	 m;
	int		 rc;

	if (h->type != IPC_HELLO || ipcmsg_hello(body, len, &hello) == -1)
		return -1;
	if (hello.version != IPC_VERSION) {
		log_warnx("gateway %u speaks IPC version %u, not %u", gw->id,
		    hello.version, IPC_VERSION);
		return -1;
	}
	memcpy(gw->name, hello.name, hello.namelen);
	gw->name[hello.namelen] = '\0';
	gw->pid = (pid_t)hello.pid;
	gw->ready = 1;
	event_free(gw->hello_timer);
	gw->hello_timer = NULL;
	ipc_msg_init(&m, IPC_WELCOME, h->seq, 3);
	ipc_add_u64(&m, IPC_VERSION);
	ipc_add_i64(&m, wd->max_ts);
	ipc_add_i64(&m, wd->catalog_version);
	rc = gw_send(gw, ipc_msg_finish(&m));
	ipc_msg_free(&m);
	if (rc == 0)
		log_info("gateway %u is %s (pid %d)", gw->id, gw->name,
		    (int)gw->pid);
	return rc == 0 ? 0 : 1;
}

/*
 * Answer at once, without running: Overloaded, TooLarge.  Returns 0, or
 * 1 when the answer passed the output bound and the link is gone.
 */
static int
refuse(struct gwlink *gw, uint32_t seq, int code, const char *msg)
{
	struct mutation	 m;

	memset(&m, 0, sizeof(m));
	m.gw_id = gw->id;
	m.seq = seq;
	m.err.code = code;
	strlcpy_tv(m.err.message, msg, sizeof(m.err.message));
	return result_send(gw, &m) == -1 ? 1 : 0;
}

static int
handle_mutate(struct gwlink *gw, const struct ipc_hdr *h,
    const unsigned char *body, size_t len)
{
	struct writerd		*wd = gw->wd;
	struct mutate_req	 q;
	struct mutation		*m;
	struct buf		 key;

	if (ipcmsg_mutate(body, len, &q) == -1)
		return -1;
	if (wd->stopping)
		return refuse(gw, h->seq, TV_UNAVAILABLE, "writer is stopping");
	if (gw->pending >= WRITERD_MAX_PENDING_GW)
		return refuse(gw, h->seq, TV_OVERLOADED, "writer queue full");
	if (q.argslen > wd->conf.max_args_bytes)
		return refuse(gw, h->seq, TV_TOO_LARGE,
		    "args over max_args_bytes");
	m = xcalloc(1, sizeof(*m));
	m->gw_id = gw->id;
	m->seq = h->seq;
	m->session_id = xstrndup(q.session_id, q.session_idlen);
	/* Idempotency needs a session: without one a request id is moot. */
	if (q.has_request_id && q.session_idlen > 0) {
		buf_init(&key);
		if (q.request_id != NULL) {
			buf_adds(&key, "s:");
			buf_add(&key, q.request_id, q.request_idlen);
		} else {
			buf_adds(&key, "i:");
			buf_add_i64(&key, q.request_num);
		}
		m->request_key = buf_steal(&key, NULL);
	}
	m->udf_path = xstrndup(q.udf_path, q.udf_pathlen);
	m->args = xstrndup(q.args, q.argslen);
	m->argslen = q.argslen;
	buf_init(&m->value);
	buf_init(&m->notice);
	TAILQ_INSERT_TAIL(&wd->queue, m, entry);
	gw->pending++;
	commit_schedule(wd);
	return 0;
}

static int
handle_stats(struct gwlink *gw, const unsigned char *body, size_t len)
{
	struct ipc_reader	 r;
	const char		*s;
	size_t			 slen;

	if (ipc_reader_init(&r, body, len, 1) == -1 ||
	    ipc_get_str(&r, &s, &slen, IPC_MAX_STATS_BYTES) == -1 ||
	    ipc_end(&r) == -1)
		return -1;
	free(gw->stats);
	gw->stats = xstrndup(s, slen);
	gw->stats_at = mono_us();
	return 0;
}

/*
 * Handle one frame.  0 go on, 1 the link is gone already, -1 bad frame
 * (drop the link).
 */
static int
handle_frame(struct gwlink *gw, const struct ipc_hdr *h,
    const unsigned char *body, size_t len)
{
	if (!gw->ready)
		return handle_hello(gw, h, body, len);
	switch (h->type) {
	case IPC_MUTATE:
		return handle_mutate(gw, h, body, len);
	case IPC_GW_STATS:
		return handle_stats(gw, body, len);
	case IPC_PROVIDE:
	case IPC_UNPROVIDE:
	case IPC_PROVIDER_GONE:
	case IPC_ACTION:
	case IPC_ACTION_CANCEL:
	case IPC_RUN_DONE:
		return registry_frame(gw->wd, gw->id, h, body, len);
	default:
		return -1;
	}
}

static void
gw_read(struct bufferevent *bev, void *arg)
{
	struct gwlink		*gw = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct ipc_hdr		 h;
	const unsigned char	*p;
	int			 n, rc;

	for (n = 0; n < NOTIFY_FRAMES_PER_EVENT; n++) {
		if ((rc = ipc_evbuffer_frame(in, IPC_MAX_GW_FRAME, &h, &p)) == 0)
			return;
		if (rc == -1)
			goto bad;
		rc = handle_frame(gw, &h, p + IPC_HDR_LEN,
		    h.len - IPC_HDR_LEN);
		if (rc == 1)
			return;
		if (rc == -1) {
			gw->wd->stats.bad_frames++;
			gw_drop(gw, "malformed or unexpected frame");
			return;
		}
		evbuffer_drain(in, h.len);
	}
	/* More may be waiting: come back after the others had a turn. */
	bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	return;
bad:
	gw->wd->stats.bad_frames++;
	gw_drop(gw, "bad frame header");
}

/* The link with id, or NULL when it is gone (or has not said HELLO). */
struct gwlink *
notify_gw_find(struct writerd *wd, uint32_t id)
{
	struct hentry	*e;
	struct gwlink	*gw;

	if ((e = htab_get(&wd->gw_tab, &id, sizeof(id))) == NULL)
		return NULL;
	gw = HTAB_ELEM(e, struct gwlink, hent);
	return gw->ready ? gw : NULL;
}

/*
 * Queue a frame to the link with id.  -1 when there is none, or when the
 * frame passed its output bound and dropped it.
 */
int
notify_send(struct writerd *wd, uint32_t id, const struct buf *frame)
{
	struct gwlink	*gw;

	if ((gw = notify_gw_find(wd, id)) == NULL)
		return -1;
	return gw_send(gw, frame);
}

void
notify_broadcast(struct writerd *wd, const struct buf *frame)
{
	struct gwlink	*gw, *tmp;

	TAILQ_FOREACH_SAFE(gw, &wd->gateways, entry, tmp)
		if (gw->ready)
			gw_send(gw, frame);
}

/* Send an outcome; -1 when that dropped the link (gw is freed). */
static int
result_send(struct gwlink *gw, const struct mutation *m)
{
	struct ipc_msg	 msg;
	int		 rc;

	ipc_msg_init(&msg, IPC_RESULT, m->seq, 4);
	ipc_add_i64(&msg, m->ts);
	ipc_add_i64(&msg, m->err.code);
	ipc_add_cstr(&msg, m->err.code != TV_OK ? m->err.message : "");
	if (m->err.code == TV_OK)
		ipc_add_str(&msg, m->value.data != NULL ? m->value.data : "",
		    m->value.len);
	else
		ipc_add_cstr(&msg, m->err.data);
	rc = gw_send(gw, ipc_msg_finish(&msg));
	ipc_msg_free(&msg);
	return rc;
}

/* Send the outcome of m to its gateway, if that is still linked. */
void
notify_result(struct writerd *wd, struct mutation *m)
{
	struct gwlink	*gw;

	if ((gw = notify_gw_find(wd, m->gw_id)) != NULL)
		result_send(gw, m);
}


void
notify_set_log(struct writerd *wd, int verbose)
{
	struct gwlink	*gw, *tmp;
	struct ipc_msg	 m;
	const struct buf *f;

	ipc_msg_init(&m, IPC_SET_LOG, 0, 1);
	ipc_add_u64(&m, verbose ? 1 : 0);
	f = ipc_msg_finish(&m);
	TAILQ_FOREACH_SAFE(gw, &wd->gateways, entry, tmp)
		if (gw->ready)
			gw_send(gw, f);
	ipc_msg_free(&m);
}

void
notify_close_all(struct writerd *wd)
{
	struct gwlink	*gw;

	while ((gw = TAILQ_FIRST(&wd->gateways)) != NULL)
		gw_free(gw);
	htab_free(&wd->gw_tab);
	listen_free(wd->gw_listener);
	wd->gw_listener = NULL;
}
