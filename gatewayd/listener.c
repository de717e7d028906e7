/*
 * Accepting clients: the listening socket (optionally SO_REUSEPORT, so
 * several gateways can share a port; accepting and its pause when out of
 * descriptors are common/listen.c's), and the HTTP/1.1 request head, read with a size
 * and a time limit before it is handed to http.c to decide on.  A
 * connection whose upgrade is accepted becomes a session, a request for
 * a file of static_dir goes to static.c; any other gets its answer and
 * is closed once the answer is out.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "gatewayd.h"
#include "log.h"


/* A connection still in its HTTP head. */
struct handshake {
	struct gateway		*gw;
	struct bufferevent	*bev;
	struct event		*timer;
	int			 answered;	/* close once flushed */
};

static void
hs_free(struct handshake *hs)
{
	if (hs->timer != NULL)
		event_free(hs->timer);
	if (hs->bev != NULL)
		bufferevent_free(hs->bev);
	free(hs);
}

static void
hs_written(struct bufferevent *bev, void *arg)
{
	struct handshake	*hs = arg;

	(void)bev;
	if (hs->answered)
		hs_free(hs);
}

static void
hs_answer(struct handshake *hs, const struct buf *out)
{
	hs->answered = 1;
	bufferevent_disable(hs->bev, EV_READ);
	bufferevent_write(hs->bev, out->data, out->len);
}

static void
health_body(struct gateway *gw, struct buf *b)
{
	struct session	*s;
	uint64_t	 queries = 0;

	TAILQ_FOREACH(s, &gw->sessions, entry)
		queries += s->nsubs;
	buf_adds(b, "{\"status\":\"ok\",\"gatewayId\":\"");
	buf_adds(b, gw->gateway_id);
	buf_adds(b, "\",\"ts\":");
	buf_add_i64(b, gw->ts);
	buf_adds(b, ",\"writer\":");
	buf_adds(b, gw->up.ready ? "true" : "false");
	buf_adds(b, ",\"database\":");
	buf_adds(b, gw->st != NULL ? "true" : "false");
	buf_adds(b, ",\"connections\":");
	buf_add_u64(b, gw->nsessions);
	buf_adds(b, ",\"queries\":");
	buf_add_u64(b, queries);
	buf_adds(b, ",\"executions\":");
	buf_add_u64(b, gw->nexecs);
	buf_adds(b, ",\"reruns\":");
	buf_add_u64(b, gw->stats.reruns);
	buf_adds(b, ",\"transitions\":");
	buf_add_u64(b, gw->stats.transitions);
	buf_adds(b, ",\"slowCloses\":");
	buf_add_u64(b, gw->stats.slow_closes);
	buf_addc(b, '}');
}

static void
hs_read(struct bufferevent *bev, void *arg)
{
	struct handshake	*hs = arg;
	struct gateway		*gw = hs->gw;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct http_request	 req;
	struct buf		 out, body;
	size_t			 avail, headlen = 0;
	enum http_parse		 pr;
	enum http_verdict	 verdict;
	const char		*p;
	struct session		*s;
	int			 token_ok = 0;

	if (hs->answered)
		return;
	avail = evbuffer_get_length(in);
	if (avail > HTTP_MAX_HEAD + 4)
		avail = HTTP_MAX_HEAD + 4;
	p = (const char *)evbuffer_pullup(in, (ssize_t)avail);
	pr = http_parse_head(p, avail, &req, &headlen);
	buf_init(&out);
	switch (pr) {
	case HTTP_PARSE_MORE:
		buf_free(&out);
		return;
	case HTTP_PARSE_BAD:
		http_error(&out, 400, NULL);
		hs_answer(hs, &out);
		break;
	case HTTP_PARSE_TOOBIG:
		http_error(&out, 431, NULL);
		hs_answer(hs, &out);
		break;
	case HTTP_PARSE_DONE:
		buf_init(&body);
		health_body(gw, &body);
		gw->policy.health_body = body.data;
		verdict = http_decide(&req, &gw->policy, &out, &token_ok);
		if (verdict == HTTP_STATIC && (gw->stopping || gw->nsessions +
		    gw->nstatic >= (size_t)gw->conf.max_connections)) {
			http_error(&out, 503, NULL);
			hs_answer(hs, &out);
		} else if (verdict == HTTP_STATIC) {
			evbuffer_drain(in, headlen);
			event_free(hs->timer);
			hs->timer = NULL;
			static_serve(gw, bev, &req);
			hs->bev = NULL;
			hs_free(hs);
		} else if (verdict == HTTP_UPGRADE) {
			if (gw->stopping || gw->nsessions >=
			    (size_t)gw->conf.max_connections) {
				buf_reset(&out);
				http_error(&out, 503, NULL);
				hs_answer(hs, &out);
			} else {
				evbuffer_drain(in, headlen);
				bufferevent_write(bev, out.data, out.len);
				bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
				event_free(hs->timer);
				hs->timer = NULL;
				if ((s = session_new(gw, bev, token_ok)) ==
				    NULL)
					log_warnx("cannot start a session");
				else
					s->browser = req.has_origin;
				hs->bev = NULL;
				hs_free(hs);
			}
		} else
			hs_answer(hs, &out);
		gw->policy.health_body = NULL;
		buf_free(&body);
		break;
	}
	buf_free(&out);
}

static void
hs_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		hs_free(arg);
}

static void
hs_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct handshake	*hs = arg;
	struct buf		 out;
	struct timeval		 giveup = { 1, 0 };

	(void)fd;
	(void)ev;
	if (hs->answered) {
		hs_free(hs);
		return;
	}
	buf_init(&out);
	http_error(&out, 408, NULL);
	hs_answer(hs, &out);
	buf_free(&out);
	/* If even that cannot get out, give up soon. */
	evtimer_add(hs->timer, &giveup);
}

static void
on_accept(int fd, void *arg)
{
	struct gateway		*gw = arg;
	struct handshake	*hs;
	struct timeval		 tv;
	int			 one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	hs = xcalloc(1, sizeof(*hs));
	hs->gw = gw;
	hs->bev = bufferevent_socket_new(gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (hs->bev == NULL) {
		close(fd);
		free(hs);
		return;
	}
	bufferevent_setcb(hs->bev, hs_read, hs_written, hs_event, hs);
	bufferevent_setwatermark(hs->bev, EV_READ, 0, HTTP_MAX_HEAD + 4);
	bufferevent_enable(hs->bev, EV_READ);
	hs->timer = evtimer_new(gw->base, hs_timeout, hs);
	tv.tv_sec = gw->conf.handshake_timeout_us / 1000000;
	tv.tv_usec = gw->conf.handshake_timeout_us % 1000000;
	evtimer_add(hs->timer, &tv);
}

int
listener_start(struct gateway *gw)
{
	char	 name[LISTEN_NAME_MAX + 1];
	int	 fd;

	if ((fd = listen_tcp(gw->listen_host, gw->listen_port,
	    gw->conf.reuseport)) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s:%s", gw->listen_host,
	    gw->listen_port);
	gw->listener = listen_start(gw->base, fd, name, on_accept, gw);
	return gw->listener != NULL ? 0 : -1;
}

void
listener_stop(struct gateway *gw)
{
	listen_free(gw->listener);
	gw->listener = NULL;
}
