/*
 * A WebSocket client connection: a non-blocking TCP connect, the HTTP
 * upgrade written and checked here (status 101, Sec-WebSocket-Accept, the
 * subprotocol), then wslay in client mode over the raw socket.  wslay's
 * recv callback reads the socket (after any bytes that came with the
 * answer head), its send callback writes it and answers WOULDBLOCK when
 * the socket is full, which arms the write event.  Every read is
 * timestamped with the monotonic clock before wslay sees its bytes, so a
 * message's time is when it came off the socket.
 *
 * Callbacks may call wsc_send (the message is queued and goes out once
 * wslay_event_recv has returned) but not wsc_free.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bench.h"

#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void	wsc_readable(evutil_socket_t, short, void *);
static void	wsc_writable(evutil_socket_t, short, void *);

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t	 x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Tear the connection down and tell the owner, once. */
static void
wsc_fail(struct wsc *c, int err)
{
	if (c->state == WSC_CLOSED)
		return;
	c->state = WSC_CLOSED;
	c->err = err;
	if (c->rev != NULL)
		event_del(c->rev);
	if (c->wev != NULL)
		event_del(c->wev);
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->ops->on_close != NULL)
		c->ops->on_close(c, c->arg);
}

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct wsc	*c = user;
	ssize_t		 n;
	size_t		 left;

	(void)flags;
	if (c->preoff < c->prelen) {
		left = c->prelen - c->preoff;
		n = (ssize_t)(left < len ? left : len);
		memcpy(buf, c->pre + c->preoff, (size_t)n);
		c->preoff += (size_t)n;
		c->bytes_in += (uint64_t)n;
		return n;
	}
	n = read(c->fd, buf, len);
	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		return n;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else {
		c->err = n == 0 ? ECONNRESET : errno;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct wsc	*c = user;
	ssize_t		 n;

	(void)flags;
	n = send(c->fd, data, len, MSG_NOSIGNAL);
	if (n >= 0) {
		c->bytes_out += (uint64_t)n;
		return n;
	}
	if (errno == EAGAIN || errno == EINTR) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		event_add(c->wev, NULL);
	} else {
		c->err = errno;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static int
genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    void *user)
{
	struct wsc	*c = user;
	uint64_t	 r;
	size_t		 i;

	(void)ctx;
	for (i = 0; i < len; i += sizeof(r)) {
		r = rng_next(&c->rng);
		memcpy(buf + i, &r, len - i < sizeof(r) ? len - i : sizeof(r));
	}
	return 0;
}

static void
msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg
    *a, void *user)
{
	struct wsc	*c = user;

	(void)ctx;
	if (a->opcode != WSLAY_TEXT_FRAME)
		return;
	c->msgs_in++;
	if (c->ops->on_msg != NULL)
		c->ops->on_msg(c, c->arg, (const char *)a->msg, a->msg_length,
		    c->t_read);
}

/* Hand what wslay has queued to the socket. */
static void
wsc_flush(struct wsc *c)
{
	if (c->state != WSC_OPEN || c->in_recv)
		return;
	if (wslay_event_want_write(c->ctx) &&
	    wslay_event_send(c->ctx) != 0) {
		wsc_fail(c, c->err != 0 ? c->err : -1);
		return;
	}
	if (!wslay_event_want_write(c->ctx))
		event_del(c->wev);
	if (!wslay_event_want_read(c->ctx) &&
	    !wslay_event_want_write(c->ctx))
		wsc_fail(c, 0);
}

static void
accept_key(const char *key, char out[32])
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	char		 in[128];

	snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
	EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* The value of header name in head, or NULL; *len its length. */
static const char *
head_value(const char *head, const char *name, size_t *len)
{
	const char	*p = head, *e;
	size_t		 nl = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			if ((e = strstr(p, "\r\n")) == NULL)
				return NULL;
			while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			*len = (size_t)(e - p);
			return p;
		}
	}
	return NULL;
}

static int
check_head(struct wsc *c)
{
	char		 want[32];
	const char	*v;
	size_t		 len;

	if (strncmp(c->head, "HTTP/1.1 101 ", 13) != 0)
		return -1;
	accept_key(c->key, want);
	if ((v = head_value(c->head, "Sec-WebSocket-Accept", &len)) == NULL ||
	    len != strlen(want) || memcmp(v, want, len) != 0)
		return -1;
	if (c->subproto != NULL && ((v = head_value(c->head,
	    "Sec-WebSocket-Protocol", &len)) == NULL ||
	    len != strlen(c->subproto) || memcmp(v, c->subproto, len) != 0))
		return -1;
	return 0;
}

static int
start_wslay(struct wsc *c)
{
	static const struct wslay_event_callbacks cb = {
		recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, msg_cb
	};

	if (wslay_event_context_client_init(&c->ctx, &cb, c) != 0)
		return -1;
	wslay_event_config_set_max_recv_msg_length(c->ctx, WSC_MAX_MESSAGE);
	return 0;
}

static void
read_head(struct wsc *c)
{
	char	*end;
	ssize_t	 n;
	size_t	 headlen;

	n = read(c->fd, c->head + c->headlen, WSC_MAX_HEAD - 1 - c->headlen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		wsc_fail(c, n == 0 ? ECONNRESET : errno);
		return;
	}
	c->headlen += (size_t)n;
	c->head[c->headlen] = '\0';
	if ((end = strstr(c->head, "\r\n\r\n")) == NULL) {
		if (c->headlen >= WSC_MAX_HEAD - 1)
			wsc_fail(c, -1);
		return;
	}
	headlen = (size_t)(end - c->head) + 4;
	end[2] = '\0';
	if (check_head(c) == -1 || start_wslay(c) == -1) {
		wsc_fail(c, -1);
		return;
	}
	if (c->headlen > headlen) {
		c->prelen = c->headlen - headlen;
		c->pre = xmalloc(c->prelen);
		memcpy(c->pre, c->head + headlen, c->prelen);
	}
	free(c->head);
	c->head = NULL;
	c->state = WSC_OPEN;
	if (c->ops->on_open != NULL)
		c->ops->on_open(c, c->arg);
	if (c->state == WSC_OPEN && c->prelen > 0)
		wsc_readable(c->fd, EV_READ, c);
}

static void
wsc_readable(evutil_socket_t fd, short ev, void *arg)
{
	struct wsc	*c = arg;
	int		 rc;

	(void)fd;
	(void)ev;
	c->t_read = mono_us();
	if (c->state == WSC_HANDSHAKE) {
		read_head(c);
		return;
	}
	if (c->state != WSC_OPEN)
		return;
	c->in_recv = 1;
	rc = wslay_event_recv(c->ctx);
	c->in_recv = 0;
	if (c->preoff >= c->prelen && c->pre != NULL) {
		free(c->pre);
		c->pre = NULL;
		c->prelen = c->preoff = 0;
	}
	if (rc != 0) {
		wsc_fail(c, c->err != 0 ? c->err : -1);
		return;
	}
	wsc_flush(c);
}

static void
send_head(struct wsc *c, int port)
{
	char	 h[512];
	int	 n;

	n = snprintf(h, sizeof(h), "GET /sync HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n", port, c->key,
	    c->subproto != NULL ? "Sec-WebSocket-Protocol: " : "",
	    c->subproto != NULL ? c->subproto : "",
	    c->subproto != NULL ? "\r\n" : "");
	/* A fresh socket takes a few hundred bytes whole. */
	if (send(c->fd, h, (size_t)n, MSG_NOSIGNAL) != n) {
		wsc_fail(c, errno != 0 ? errno : -1);
		return;
	}
	c->state = WSC_HANDSHAKE;
	c->head = xmalloc(WSC_MAX_HEAD);
	c->headlen = 0;
	event_add(c->rev, NULL);
}

static void
wsc_writable(evutil_socket_t fd, short ev, void *arg)
{
	struct wsc	*c = arg;
	socklen_t	 sl = sizeof(int);
	int		 e = 0, port;
	struct sockaddr_in sin;
	socklen_t	 sinlen = sizeof(sin);

	(void)ev;
	if (c->state == WSC_CONNECTING) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1 ||
		    e != 0) {
			wsc_fail(c, e != 0 ? e : errno);
			return;
		}
		event_del(c->wev);
		if (getpeername(fd, (struct sockaddr *)&sin, &sinlen) == -1) {
			wsc_fail(c, errno);
			return;
		}
		port = ntohs(sin.sin_port);
		send_head(c, port);
		return;
	}
	if (c->state == WSC_OPEN)
		wsc_flush(c);
}

struct wsc *
wsc_open(struct bench *b, int port, const char *subproto,
    const struct wsc_ops *ops, void *arg)
{
	struct wsc		*c;
	struct sockaddr_in	 sin;
	unsigned char		 nonce[16];
	uint64_t		 r1, r2;
	int			 one = 1;

	c = xcalloc(1, sizeof(*c));
	c->b = b;
	c->ops = ops;
	c->arg = arg;
	c->subproto = subproto;
	c->rng = (uint64_t)mono_us() * 0x9e3779b97f4a7c15ULL ^
	    (uint64_t)(uintptr_t)c;
	if (c->rng == 0)
		c->rng = 1;
	r1 = rng_next(&c->rng);
	r2 = rng_next(&c->rng);
	memcpy(nonce, &r1, 8);
	memcpy(nonce + 8, &r2, 8);
	EVP_EncodeBlock((unsigned char *)c->key, nonce, sizeof(nonce));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->rev = event_new(b->base, c->fd, EV_READ | EV_PERSIST, wsc_readable,
	    c);
	c->wev = event_new(b->base, c->fd, EV_WRITE | EV_PERSIST,
	    wsc_writable, c);
	c->state = WSC_CONNECTING;
	if (c->fd == -1) {
		c->err = errno;
		c->state = WSC_CLOSED;
		return c;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS) {
		c->err = errno;
		close(c->fd);
		c->fd = -1;
		c->state = WSC_CLOSED;
		return c;
	}
	event_add(c->wev, NULL);
	return c;
}

int
wsc_send(struct wsc *c, const char *msg, size_t len)
{
	struct wslay_event_msg	 m;

	if (c->state != WSC_OPEN)
		return -1;
	m.opcode = WSLAY_TEXT_FRAME;
	m.msg = (const uint8_t *)msg;
	m.msg_length = len;
	if (wslay_event_queue_msg(c->ctx, &m) != 0)
		return -1;
	c->msgs_out++;
	wsc_flush(c);
	return 0;
}

void
wsc_free(struct wsc *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->ctx != NULL)
		wslay_event_context_free(c->ctx);
	free(c->head);
	free(c->pre);
	free(c);
}
