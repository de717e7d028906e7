/*
 * tinyvex-bench-bcast: the minimal broadcaster the benchmark measures
 * Tinyvex against.  One libevent loop, one bufferevent per connection,
 * the WebSocket upgrade and frames written by hand (server frames are not
 * masked, so a frame is a header and the payload), no JSON, no queries,
 * no database.  Clients send one-letter commands as text messages:
 *
 *   S t1,t2,...		follow topics (numbers below BCAST_MAX_TOPICS)
 *   P topic payload	payload to every follower of topic
 *   Q topic payload	payload to the first follower of topic, then "A"
 *			back to the sender
 *   E payload		payload back to the sender
 *
 * Usage: tinyvex-bench-bcast PORT.  Stops on SIGTERM or SIGINT.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

#include "bench.h"

#define BC_MAX_HEAD		8192		/* upgrade request head */
#define BC_MAX_PAYLOAD		(16 * 1024 * 1024)
#define BC_CONN_TOPICS		8		/* topics one connection follows */
#define BC_BACKLOG		4096
#define WS_GUID			"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct bconn;

/* A connection's place in one topic's list of followers. */
struct member {
	TAILQ_ENTRY(member)	 entry;
	struct bconn		*c;
	int			 topic;
};
TAILQ_HEAD(memberq, member);

struct bconn {
	struct bcast		*srv;
	struct bufferevent	*bev;
	int			 upgraded;
	struct member		 m[BC_CONN_TOPICS];
	int			 ntopics;
};

/* The process context. */
struct bcast {
	struct event_base	*base;
	struct evconnlistener	*listener;
	struct memberq		 topics[BCAST_MAX_TOPICS];
	unsigned char		*scratch;	/* an unmasked payload */
	size_t			 scratchcap;
};

static void
conn_free(struct bconn *c)
{
	int	 i;

	for (i = 0; i < c->ntopics; i++)
		TAILQ_REMOVE(&c->srv->topics[c->m[i].topic], &c->m[i], entry);
	bufferevent_free(c->bev);
	free(c);
}

static void
send_frame(struct bconn *c, int opcode, const void *p, size_t len)
{
	unsigned char	 h[10];
	size_t		 hl;
	int		 i;

	h[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[1] = (unsigned char)len;
		hl = 2;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >>
			    (56 - 8 * i));
		hl = 10;
	}
	bufferevent_write(c->bev, h, hl);
	if (len > 0)
		bufferevent_write(c->bev, p, len);
}

/* "123 rest": the topic number and where the payload starts. */
static int
topic_of(const char *p, size_t len, size_t *off)
{
	size_t	 i = 0;
	int	 t = 0;

	while (i < len && p[i] >= '0' && p[i] <= '9' && t < BCAST_MAX_TOPICS)
		t = t * 10 + (p[i++] - '0');
	if (i == 0 || t >= BCAST_MAX_TOPICS)
		return -1;
	if (i < len && p[i] == ' ')
		i++;
	*off = i;
	return t;
}

static void
subscribe(struct bconn *c, const char *p, size_t len)
{
	size_t	 i = 0, used;
	int	 t;

	while (i < len && c->ntopics < BC_CONN_TOPICS) {
		if (p[i] == ',' || p[i] == ' ') {
			i++;
			continue;
		}
		if ((t = topic_of(p + i, len - i, &used)) == -1)
			return;
		i += used;
		c->m[c->ntopics].c = c;
		c->m[c->ntopics].topic = t;
		TAILQ_INSERT_TAIL(&c->srv->topics[t], &c->m[c->ntopics], entry);
		c->ntopics++;
	}
}

static void
on_text(struct bconn *c, const char *p, size_t len)
{
	struct member	*m;
	size_t		 off;
	int		 t;

	if (len == 0)
		return;
	switch (p[0]) {
	case BCAST_SUB:
		subscribe(c, p + 1, len - 1);
		break;
	case BCAST_PUB:
	case BCAST_ONE:
		if ((t = topic_of(p + 1, len - 1, &off)) == -1)
			break;
		off++;
		TAILQ_FOREACH(m, &c->srv->topics[t], entry) {
			send_frame(m->c, 1, p + off, len - off);
			if (p[0] == BCAST_ONE)
				break;
		}
		if (p[0] == BCAST_ONE)
			send_frame(c, 1, "A", 1);
		break;
	case BCAST_ECHO:
		send_frame(c, 1, p + 1, len - 1);
		break;
	}
}

static int
upgrade(struct bconn *c, struct evbuffer *in)
{
	struct evbuffer_ptr	 end;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;
	char			*head, *k, *e, key[128], acc[64], resp[512];
	size_t			 hl;
	int			 n, proto;

	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos == -1)
		return evbuffer_get_length(in) > BC_MAX_HEAD ? -1 : 0;
	hl = (size_t)end.pos + 4;
	head = (char *)evbuffer_pullup(in, (ssize_t)hl);
	head[hl - 1] = '\0';
	if ((k = strcasestr(head, "\r\nSec-WebSocket-Key:")) == NULL)
		return -1;
	k += 20;
	while (*k == ' ')
		k++;
	if ((e = strstr(k, "\r\n")) == NULL || (size_t)(e - k) > 64)
		return -1;
	snprintf(key, sizeof(key), "%.*s%s", (int)(e - k), k, WS_GUID);
	proto = strcasestr(head, "\r\nSec-WebSocket-Protocol:") != NULL;
	EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)acc, md, (int)mdlen);
	n = snprintf(resp, sizeof(resp), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n%s\r\n", acc, proto ?
	    "Sec-WebSocket-Protocol: tinyvex.v1\r\n" : "");
	bufferevent_write(c->bev, resp, (size_t)n);
	evbuffer_drain(in, hl);
	c->upgraded = 1;
	return 1;
}

/* Handle every whole frame in the input; -1 to drop the connection. */
static int
frames(struct bconn *c, struct evbuffer *in)
{
	struct bcast	*s = c->srv;
	unsigned char	*p, mask[4];
	uint64_t	 len;
	size_t		 avail, hl, i;
	int		 op;

	while ((avail = evbuffer_get_length(in)) >= 2) {
		p = evbuffer_pullup(in, avail < 14 ? (ssize_t)avail : 14);
		op = p[0] & 0x0f;
		if (!(p[1] & 0x80))
			return -1;		/* clients must mask */
		len = p[1] & 0x7f;
		hl = 2;
		if (len == 126) {
			if (avail < 4)
				return 0;
			len = (uint64_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (len == 127) {
			if (avail < 10)
				return 0;
			for (len = 0, i = 0; i < 8; i++)
				len = len << 8 | p[2 + i];
			hl = 10;
		}
		if (len > BC_MAX_PAYLOAD)
			return -1;
		if (avail < hl + 4 + len)
			return 0;
		memcpy(mask, p + hl, 4);
		hl += 4;
		p = evbuffer_pullup(in, (ssize_t)(hl + len));
		if (s->scratchcap < len + 1) {
			s->scratchcap = len + 1;
			if ((s->scratch = realloc(s->scratch, s->scratchcap))
			    == NULL)
				abort();
		}
		for (i = 0; i < len; i++)
			s->scratch[i] = p[hl + i] ^ mask[i & 3];
		evbuffer_drain(in, hl + len);
		switch (op) {
		case 1:
			on_text(c, (const char *)s->scratch, len);
			break;
		case 8:
			send_frame(c, 8, s->scratch, len < 2 ? len : 2);
			return -1;
		case 9:
			send_frame(c, 10, s->scratch, len);
			break;
		default:
			break;
		}
	}
	return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct bconn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	int		 rc;

	if (!c->upgraded) {
		if ((rc = upgrade(c, in)) == -1) {
			conn_free(c);
			return;
		}
		if (rc == 0)
			return;
	}
	if (frames(c, in) == -1)
		conn_free(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct bcast	*s = arg;
	struct bconn	*c;
	int		 one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->srv = s;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	event_base_loopexit(arg, NULL);
}

int
main(int argc, char *argv[])
{
	struct bcast		 s;
	struct sockaddr_in	 sin;
	struct event		*sig[2];
	int			 port, i;

	if (argc != 2 || (port = atoi(argv[1])) <= 0 || port > 65535) {
		fprintf(stderr, "usage: tinyvex-bench-bcast PORT\n");
		return 2;
	}
	memset(&s, 0, sizeof(s));
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < BCAST_MAX_TOPICS; i++)
		TAILQ_INIT(&s.topics[i]);
	if ((s.base = event_base_new()) == NULL)
		return 1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s.listener = evconnlistener_new_bind(s.base, on_accept, &s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, BC_BACKLOG,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (s.listener == NULL) {
		fprintf(stderr, "tinyvex-bench-bcast: cannot listen on %d\n",
		    port);
		return 1;
	}
	sig[0] = evsignal_new(s.base, SIGTERM, on_signal, s.base);
	sig[1] = evsignal_new(s.base, SIGINT, on_signal, s.base);
	evsignal_add(sig[0], NULL);
	evsignal_add(sig[1], NULL);
	event_base_dispatch(s.base);
	event_free(sig[0]);
	event_free(sig[1]);
	evconnlistener_free(s.listener);
	free(s.scratch);
	return 0;
}
