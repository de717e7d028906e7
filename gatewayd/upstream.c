/*
 * The writer link: connect to writer.sock, HELLO/WELCOME, send mutations
 * up and match their outcomes, receive commit notices and turn their
 * write sets into invalidations.  When the link drops, every mutation in
 * flight is answered Unavailable with outcome "unknown" (the client
 * resends with its requestId to learn what happened), and the link is
 * retried with backoff; reads keep working meanwhile.  A notice that does
 * not follow the last one processed (a gap, or after a reconnect) is not
 * applied: the next refresh reads the log for the missing range.
 * writerd is trusted: a malformed frame from it is a broken invariant.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon.h"
#include "gatewayd.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "proto/ipc.h"

static void	up_read(struct bufferevent *, void *);
static void	up_event(struct bufferevent *, short, void *);
static void	up_retry(evutil_socket_t, short, void *);

static void
up_schedule(struct gateway *gw)
{
	struct upstream	*up = &gw->up;
	struct timeval	 tv;

	if (gw->stopping)
		return;
	if (up->retry_ev == NULL)
		up->retry_ev = evtimer_new(gw->base, up_retry, gw);
	tv.tv_sec = up->backoff_us / 1000000;
	tv.tv_usec = up->backoff_us % 1000000;
	evtimer_add(up->retry_ev, &tv);
	up->backoff_us *= 2;
	if (up->backoff_us > GW_RECONNECT_MAX_US)
		up->backoff_us = GW_RECONNECT_MAX_US;
}

static void
up_send(struct gateway *gw, struct ipc_msg *m)
{
	const struct buf	*f = ipc_msg_finish(m);

	send_batch_add(&gw->up.out, f->data, f->len);
	ipc_msg_free(m);
}

static void
up_connect(struct gateway *gw)
{
	struct upstream		*up = &gw->up;
	struct sockaddr_un	 sun;
	struct ipc_msg		 m;

	/* Checked at start-up (gateway_setup): the path fits. */
	unix_addr(&sun, gw->writer_sock);
	up->bev = bufferevent_socket_new(gw->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (up->bev == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(up->bev, up_read, NULL, up_event, gw);
	bufferevent_enable(up->bev, EV_READ);
	if (bufferevent_socket_connect(up->bev, (struct sockaddr *)&sun,
	    sizeof(sun)) == -1) {
		bufferevent_free(up->bev);
		up->bev = NULL;
		up_schedule(gw);
		return;
	}
	send_batch_attach(&up->out, up->bev);
	ipc_msg_init(&m, IPC_HELLO, 0, 3);
	ipc_add_u64(&m, IPC_VERSION);
	ipc_add_cstr(&m, gw->gateway_id);
	ipc_add_u64(&m, (uint64_t)getpid());
	up_send(gw, &m);
	up->connects++;
}

static void
up_retry(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	up_connect(arg);
}

void
upstream_start(struct gateway *gw)
{
	TAILQ_INIT(&gw->up.waiting);
	gw->up.backoff_us = GW_RECONNECT_MIN_US;
	if (send_batch_init(&gw->up.out, gw->base) == -1)
		fatalx("send_batch_init");
	up_connect(gw);
}

static void
upreq_free(struct upreq *u)
{
	free(u->id);
	free(u);
}

/* No outcome will come for what is in flight: fail it with why. */
static void
up_fail_waiting(struct gateway *gw, const char *why)
{
	struct upreq	*u;

	while ((u = TAILQ_FIRST(&gw->up.waiting)) != NULL) {
		TAILQ_REMOVE(&gw->up.waiting, u, entry);
		htab_remove(&gw->up.by_seq, &u->hent);
		rpc_mutation_done(gw, u, -1, TV_UNAVAILABLE, why, NULL, 0);
		upreq_free(u);
	}
}

/* The link is gone: fail what was in flight, try again later. */
static void
up_lost(struct gateway *gw, const char *why)
{
	struct upstream	*up = &gw->up;

	if (up->ready)
		log_warnx("writer link lost: %s", why);
	up->ready = 0;
	send_batch_attach(&up->out, NULL);
	if (up->bev != NULL) {
		bufferevent_free(up->bev);
		up->bev = NULL;
	}
	up_fail_waiting(gw, "writer link lost; the outcome is unknown: "
	    "resend with the same requestId");
	action_link_lost(gw);
	session_flush_all(gw);
	up_schedule(gw);
}

void
upstream_stop(struct gateway *gw)
{
	gw->stopping = 1;
	if (gw->up.retry_ev != NULL) {
		event_free(gw->up.retry_ev);
		gw->up.retry_ev = NULL;
	}
	send_batch_free(&gw->up.out);
	if (gw->up.bev != NULL) {
		bufferevent_free(gw->up.bev);
		gw->up.bev = NULL;
	}
	gw->up.ready = 0;
	up_fail_waiting(gw, "gateway stopping; the outcome is unknown: "
	    "resend with the same requestId");
	htab_free(&gw->up.by_seq);
}

static void
up_event(struct bufferevent *bev, short what, void *arg)
{
	struct gateway	*gw = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		up_lost(gw, what & BEV_EVENT_EOF ? "writer closed it" :
		    strerror(EVUTIL_SOCKET_ERROR()));
}

int
upstream_mutate(struct gateway *gw, struct session *s, const char *id,
    struct rpc_batch *batch, int slot, const char *udf_path,
    const char *args, size_t argslen, const cJSON *request_id)
{
	struct upstream	*up = &gw->up;
	struct upreq	*u;
	struct ipc_msg	 m;
	int64_t		 n;

	if (!up->ready)
		return -1;
	u = xcalloc(1, sizeof(*u));
	u->seq = ++up->next_seq;
	u->sid = s->id;
	u->id = id != NULL ? xstrdup(id) : NULL;
	u->batch = batch;
	u->batch_slot = slot;
	ipc_msg_init(&m, IPC_MUTATE, u->seq, 4);
	ipc_add_cstr(&m, s->session_id != NULL ? s->session_id : "");
	if (request_id == NULL)
		ipc_add_nil(&m);
	else if (cJSON_IsString(request_id))
		ipc_add_cstr(&m, request_id->valuestring);
	else {
		json_get_int(request_id, INT64_MIN, INT64_MAX, &n);
		ipc_add_i64(&m, n);
	}
	ipc_add_cstr(&m, udf_path);
	ipc_add_str(&m, args, argslen);
	up_send(gw, &m);
	TAILQ_INSERT_TAIL(&up->waiting, u, entry);
	htab_insert_key(&up->by_seq, &u->hent, &u->seq, sizeof(u->seq));
	s->pending_mutations++;
	gw->stats.mutations++;
	return 0;
}

void
upstream_notice(struct gateway *gw, const unsigned char *body, size_t len)
{
	struct ipc_reader	 r;
	int64_t			 ts, prev_ts, cv, table_id, index_id;
	uint32_t		 nw, nk, i, j;
	const char		*id;
	const void		*oldk, *newk;
	size_t			 idlen, oldlen, newlen;

	if (ipc_reader_init(&r, body, len, 4) == -1 ||
	    ipc_get_i64(&r, &ts) == -1 || ipc_get_i64(&r, &prev_ts) == -1 ||
	    ipc_get_i64(&r, &cv) == -1)
		fatalx("malformed commit notice from writerd");
	gw->stats.notices++;
	if (ts > gw->writer_ts)
		gw->writer_ts = ts;
	if (cv != gw->catalog_version)
		gw->catalog_changed = 1;
	if (ts <= gw->processed_ts) {
		/* Already covered by a read of the log. */
		return;
	}
	if (prev_ts != gw->processed_ts || ipc_peek_kind(&r) == IPC_K_NIL) {
		/* A gap, or no write set: the refresh reads the log. */
		query_schedule_refresh(gw);
		return;
	}
	if (ipc_get_array(&r, &nw, UINT32_MAX) == -1)
		fatalx("malformed commit notice from writerd");
	for (i = 0; i < nw; i++) {
		if (ipc_get_array(&r, &nk, 3) == -1 || nk != 3 ||
		    ipc_get_i64(&r, &table_id) == -1 ||
		    ipc_get_str(&r, &id, &idlen, IPC_MAX_DOC_ID_LEN) == -1 ||
		    ipc_get_array(&r, &nk, IPC_MAX_WRITE_KEYS) == -1)
			fatalx("malformed commit notice from writerd");
		for (j = 0; j < nk; j++) {
			uint32_t	 three;

			if (ipc_get_array(&r, &three, 3) == -1 || three != 3 ||
			    ipc_get_i64(&r, &index_id) == -1)
				fatalx("malformed commit notice from writerd");
			oldk = newk = NULL;
			oldlen = newlen = 0;
			if (ipc_peek_kind(&r) == IPC_K_NIL)
				ipc_get_nil(&r);
			else if (ipc_get_bin(&r, &oldk, &oldlen,
			    IPC_MAX_KEY_BYTES) == -1)
				fatalx("malformed commit notice from writerd");
			if (ipc_peek_kind(&r) == IPC_K_NIL)
				ipc_get_nil(&r);
			else if (ipc_get_bin(&r, &newk, &newlen,
			    IPC_MAX_KEY_BYTES) == -1)
				fatalx("malformed commit notice from writerd");
			if (oldk != NULL)
				query_invalidate_key(gw, index_id, oldk,
				    oldlen);
			/* A key the write left as it was: done above. */
			if (newk != NULL && (oldk == NULL ||
			    bytecmp(oldk, oldlen, newk, newlen) != 0))
				query_invalidate_key(gw, index_id, newk,
				    newlen);
		}
	}
	if (ipc_end(&r) == -1)
		fatalx("malformed commit notice from writerd");
	gw->processed_ts = ts;
	query_schedule_refresh(gw);
}

static void
handle_result(struct gateway *gw, uint32_t seq, const unsigned char *body,
    size_t len)
{
	struct ipc_reader	 r;
	struct upreq		*u;
	struct hentry		*e;
	int64_t			 ts, code;
	const char		*msg, *value;
	size_t			 msglen, valuelen, n;
	char			 m[TV_ERRMSG_MAX];

	if (ipc_reader_init(&r, body, len, 4) == -1 ||
	    ipc_get_i64(&r, &ts) == -1 || ipc_get_i64(&r, &code) == -1 ||
	    ipc_get_str(&r, &msg, &msglen, IPC_MAX_RESULT_MESSAGE) == -1 ||
	    ipc_get_str(&r, &value, &valuelen, IPC_MAX_WR_FRAME) == -1 ||
	    ipc_end(&r) == -1)
		fatalx("malformed mutation result from writerd");
	if ((e = htab_get(&gw->up.by_seq, &seq, sizeof(seq))) == NULL) {
		log_warnx("result for unknown request %u", seq);
		return;
	}
	u = HTAB_ELEM(e, struct upreq, hent);
	TAILQ_REMOVE(&gw->up.waiting, u, entry);
	htab_remove(&gw->up.by_seq, &u->hent);
	/* The message up to its first NUL, cut to fit. */
	n = strnlen(msg, msglen < sizeof(m) - 1 ? msglen : sizeof(m) - 1);
	memcpy(m, msg, n);
	m[n] = '\0';
	rpc_mutation_done(gw, u, ts, (int)code, m, value, valuelen);
	upreq_free(u);
	/* The answer may need the refresh of its notice first. */
	if (gw->ts < ts)
		query_schedule_refresh(gw);
}

static void
handle_frame(struct gateway *gw, const struct ipc_hdr *h,
    const unsigned char *body, size_t len)
{
	struct ipc_reader	 r;
	uint64_t		 version, verbose;
	int64_t			 max_ts, cv;

	if (!gw->up.ready) {
		if (h->type != IPC_WELCOME ||
		    ipc_reader_init(&r, body, len, 3) == -1 ||
		    ipc_get_u64(&r, &version) == -1 ||
		    ipc_get_i64(&r, &max_ts) == -1 ||
		    ipc_get_i64(&r, &cv) == -1 || ipc_end(&r) == -1)
			fatalx("malformed WELCOME from writerd");
		if (version != IPC_VERSION)
			fatalx("writerd speaks IPC version %" PRIu64 ", not %d",
			    version, IPC_VERSION);
		gw->up.ready = 1;
		gw->up.backoff_us = GW_RECONNECT_MIN_US;
		if (max_ts > gw->writer_ts)
			gw->writer_ts = max_ts;
		log_info("writer link up (writer at ts %" PRId64 ")", max_ts);
		query_schedule_refresh(gw);
		upstream_send_stats(gw);
		action_link_up(gw);
		return;
	}
	switch (h->type) {
	case IPC_COMMIT:
		upstream_notice(gw, body, len);
		break;
	case IPC_RESULT:
		handle_result(gw, h->seq, body, len);
		break;
	case IPC_PROVIDED:
	case IPC_RUN:
	case IPC_RUN_CANCEL:
	case IPC_ACTION_DONE:
		action_frame(gw, h, body, len);
		break;
	case IPC_SET_LOG:
		if (ipc_reader_init(&r, body, len, 1) == -1 ||
		    ipc_get_u64(&r, &verbose) == -1 || ipc_end(&r) == -1)
			fatalx("malformed SET_LOG from writerd");
		log_setverbose(verbose != 0);
		break;
	default:
		fatalx("unexpected message %u from writerd", h->type);
	}
}

static void
up_read(struct bufferevent *bev, void *arg)
{
	struct gateway	*gw = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct ipc_hdr		 h;
	const unsigned char	*p;
	int			 rc;

	while ((rc = ipc_evbuffer_frame(in, IPC_MAX_WR_FRAME, &h, &p)) == 1) {
		handle_frame(gw, &h, p + IPC_HDR_LEN, h.len - IPC_HDR_LEN);
		if (gw->up.bev != bev)
			return;
		evbuffer_drain(in, h.len);
	}
	if (rc == -1)
		fatalx("bad frame header from writerd");
	session_flush_all(gw);
}

void
upstream_send_stats(struct gateway *gw)
{
	struct ipc_msg	 m;
	struct buf	 b;
	struct session	*s;
	uint64_t	 queries = 0;
	int64_t		 lag;

	if (!gw->up.ready)
		return;
	TAILQ_FOREACH(s, &gw->sessions, entry)
		queries += s->nsubs;
	/* How far the results served trail the newest commit announced. */
	lag = gw->writer_ts > gw->ts ? gw->writer_ts - gw->ts : 0;
	buf_init(&b);
	buf_adds(&b, "{\"connections\":");
	buf_add_u64(&b, gw->nsessions);
	buf_adds(&b, ",\"queries\":");
	buf_add_u64(&b, queries);
	buf_adds(&b, ",\"shared_executions\":");
	buf_add_u64(&b, gw->nexecs);
	buf_adds(&b, ",\"reruns\":");
	buf_add_u64(&b, gw->stats.reruns);
	buf_adds(&b, ",\"transitions\":");
	buf_add_u64(&b, gw->stats.transitions);
	buf_adds(&b, ",\"bytes_in\":");
	buf_add_u64(&b, gw->stats.bytes_in);
	buf_adds(&b, ",\"bytes_out\":");
	buf_add_u64(&b, gw->stats.bytes_out);
	buf_adds(&b, ",\"slow_closes\":");
	buf_add_u64(&b, gw->stats.slow_closes);
	buf_adds(&b, ",\"mutations\":");
	buf_add_u64(&b, gw->stats.mutations);
	buf_adds(&b, ",\"ts\":");
	buf_add_i64(&b, gw->ts);
	buf_adds(&b, ",\"lag_us\":");
	buf_add_i64(&b, lag);
	action_stats(gw, &b);
	buf_addc(&b, '}');
	ipc_msg_init(&m, IPC_GW_STATS, 0, 1);
	ipc_add_str(&m, b.data, b.len);
	up_send(gw, &m);
	buf_free(&b);
}
