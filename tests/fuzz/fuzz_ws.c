/*
 * Fuzz the WebSocket glue with raw client bytes.  Per input: a socketpair,
 * an event base and ws_new on one end.  The first byte picks a chunk size
 * (0: all at once); the rest is written to the other end in chunks of that
 * size, with the loop run after each.  Every text message is sent back,
 * except "close", "abort" and "free", which call ws_close, ws_abort and
 * ws_free from inside on_text.  Then the client shuts its side and the
 * loop runs until on_closed.  Checked: on_closed comes exactly once (none
 * after ws_free); every message is valid UTF-8 within the limit; the
 * server's bytes are whole unmasked frames, FIN set, no reserved bits or
 * opcodes, control payloads within 125 bytes, no one-byte close payload,
 * and nothing after a close frame.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util.h"
#include "ws.h"

#define FUZZ_MAX_MSG	1000	/* max_message_bytes */
#define FUZZ_CLOSE_US	20000	/* close_timeout_us */
#define FUZZ_MAX_CHUNK	64	/* chunk sizes 1..64, 0 all at once */
#define FUZZ_SPINS	2000	/* loop turns allowed after the feed */

struct fuzz_peer {
	struct ws_conn	*ws;
	int		 cfd;		/* the client's end */
	int		 closed;	/* on_closed calls */
	int		 freed;		/* ws_free from on_text */
	struct buf	 rx;		/* bytes the client read */
};

/* Strict UTF-8: no overlong forms, surrogates or code points > 10FFFF. */
static int
utf8_ok(const unsigned char *s, size_t n)
{
	size_t		 i = 0, k, len;
	uint32_t	 cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			len = 2;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			len = 3;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			len = 4;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

static void
fuzz_text(void *arg, const char *msg, size_t len)
{
	struct fuzz_peer	*p = arg;

	if (len > FUZZ_MAX_MSG || !utf8_ok((const unsigned char *)msg, len))
		abort();
	if (len == 5 && memcmp(msg, "close", 5) == 0)
		ws_close(p->ws, 1000, "bye");
	else if (len == 5 && memcmp(msg, "abort", 5) == 0)
		ws_abort(p->ws, 1013);
	else if (len == 4 && memcmp(msg, "free", 4) == 0) {
		ws_free(p->ws);
		p->ws = NULL;
		p->freed = 1;
	} else if (ws_send_text(p->ws, msg, len) == -1)
		abort();	/* on_text only comes while open */
}

static void
fuzz_closed(void *arg, uint16_t code)
{
	struct fuzz_peer	*p = arg;

	(void)code;
	if (p->closed++ > 0 || p->freed)
		abort();
	ws_free(p->ws);
	p->ws = NULL;
}

static void
fuzz_drain(void *arg)
{
	(void)arg;
}

static const struct ws_callbacks fuzz_cb = {
	fuzz_text, fuzz_closed, fuzz_drain
};

static void
client_read(struct fuzz_peer *p)
{
	char	 b[16384];
	ssize_t	 n;

	while ((n = read(p->cfd, b, sizeof(b))) > 0)
		buf_add(&p->rx, b, (size_t)n);
}

/* Write all of d unless the server is gone; 0, or -1 when it is. */
static int
client_write(struct fuzz_peer *p, struct event_base *base, const uint8_t *d,
    size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = write(p->cfd, d, n)) == -1) {
			if (errno != EAGAIN && errno != EINTR)
				return -1;
			event_base_loop(base, EVLOOP_NONBLOCK);
			client_read(p);
			continue;
		}
		d += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The server's bytes: frames as a server may send them.  The last may be
 * cut short: a connection that ends without the close handshake drops
 * what it had not written.
 */
static void
check_output(const struct buf *b)
{
	const uint8_t	*s = (const uint8_t *)b->data;
	size_t		 off = 0, hl, n, i;
	int		 op, closed = 0;

	while (off < b->len) {
		if (closed)
			abort();
		if (b->len - off < 2)
			break;
		op = s[off] & 0x0f;
		if ((s[off] & 0xf0) != 0x80 || (s[off + 1] & 0x80) != 0)
			abort();	/* not FIN, RSV set, or masked */
		if (op != 0x1 && op != 0x8 && op != 0x9 && op != 0xa)
			abort();
		n = s[off + 1] & 0x7f;
		hl = 2;
		if (n == 126) {
			if (b->len - off < 4)
				break;
			n = (size_t)s[off + 2] << 8 | s[off + 3];
			hl = 4;
		} else if (n == 127) {
			if (b->len - off < 10)
				break;
			for (n = 0, i = 0; i < 8; i++)
				n = n << 8 | s[off + 2 + i];
			hl = 10;
		}
		if ((op & 0x8) && (n > 125 || (op == 0x8 && n == 1)))
			abort();
		if (b->len - off - hl < n)
			break;
		if (op == 0x8)
			closed = 1;
		off += hl + n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 sigpipe_ignored;
	struct ws_limits	 lim = { FUZZ_MAX_MSG, 0, 0, FUZZ_CLOSE_US };
	struct fuzz_peer	 p;
	struct event_base	*base;
	struct bufferevent	*bev;
	struct pollfd		 pfd;
	size_t			 chunk, off, n;
	int			 sv[2], spins;

	if (size < 1)
		return 0;
	if (!sigpipe_ignored) {
		signal(SIGPIPE, SIG_IGN);
		sigpipe_ignored = 1;
	}
	memset(&p, 0, sizeof(p));
	buf_init(&p.rx);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	p.cfd = sv[1];
	if ((base = event_base_new()) == NULL ||
	    (bev = bufferevent_socket_new(base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		abort();
	if ((p.ws = ws_new(base, bev, &lim, &fuzz_cb, &p)) == NULL)
		abort();

	chunk = data[0] % (FUZZ_MAX_CHUNK + 1);
	data++;
	size--;
	if (chunk == 0)
		chunk = size > 0 ? size : 1;
	for (off = 0; off < size; off += n) {
		n = size - off < chunk ? size - off : chunk;
		if (client_write(&p, base, data + off, n) == -1)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK);
		client_read(&p);
	}

	shutdown(p.cfd, SHUT_WR);
	for (spins = 0; !p.closed && !p.freed; spins++) {
		if (spins == FUZZ_SPINS)
			abort();	/* the connection never finished */
		event_base_loop(base, EVLOOP_NONBLOCK);
		client_read(&p);
		pfd.fd = p.cfd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		poll(&pfd, 1, 1);
	}
	client_read(&p);
	check_output(&p.rx);

	event_base_free(base);
	close(p.cfd);
	buf_free(&p.rx);
	return 0;
}
