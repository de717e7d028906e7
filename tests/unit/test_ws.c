/*
 * Tests of the WebSocket glue: a socketpair, one end in a bufferevent
 * given to ws_new, the other end driven by the test as a raw client that
 * writes frame bytes built here and reads the server's frames back.  A
 * script of frames (fragments, pings, UTF-8 cut across fragments, a close)
 * is fed in every chunk size from 1 to 64 bytes and must give the same
 * messages and the same answer bytes; every way of breaking the protocol
 * must end in a close frame with its code on the wire; then the big
 * message, read pausing and drain flow, echoes and an answer followed by
 * ws_close from inside on_text, the close handshake both ways and its
 * timeout, abort, the idle timeout, pings, and ws_free from inside on_text.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "check.h"
#include "util.h"
#include "ws.h"

#define FIN		0x80
#define RSV1		0x40
#define RSV3		0x10
#define OP_CONT		0x0
#define OP_TEXT		0x1
#define OP_BIN		0x2
#define OP_CLOSE	0x8
#define OP_PING		0x9
#define OP_PONG		0xa

#define MAX_MSG		1000		/* max_message_bytes in the tests */
#define MAX_CHUNK	64		/* script fed 1..MAX_CHUNK at a time */
#define BIG_MSG		(300 * 1024)	/* the large outgoing message */
#define WAIT_MS		3000		/* bound on any wait */
#define MS		1000		/* microseconds */

static const uint8_t	 mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* One server connection and the raw client on the other end. */
struct peer {
	struct event_base	*base;
	struct ws_conn		*ws;
	int			 cfd;		/* the client's end */
	struct buf		 texts;		/* messages, length-prefixed */
	size_t			 ntexts;
	int			 closed;	/* on_closed calls */
	uint16_t		 code;		/* its code */
	int			 drains;	/* on_drain calls */
	int			 echo;		/* on_text sends it back */
	int			 free_in_text;	/* on_text calls ws_free */
	int			 close_in_text;	/* on_text answers, closes */
	int			 noread;	/* the client does not read */
	struct buf		 rx;		/* bytes the client read */
	int			 eof;		/* the client read EOF */
};

/* A server frame as the client read it. */
struct frame {
	int		 b0;		/* FIN, RSV and opcode */
	int		 masked;
	const uint8_t	*p;
	size_t		 len;
};

static void
on_text(void *arg, const char *msg, size_t len)
{
	struct peer	*p = arg;

	buf_add(&p->texts, &len, sizeof(len));
	buf_add(&p->texts, msg, len);
	p->ntexts++;
	if (p->echo && ws_send_text(p->ws, msg, len) == -1)
		check(0, "ws_send_text in on_text", "echo");
	if (p->close_in_text) {
		ws_send_text(p->ws, "reply", 5);
		ws_close(p->ws, 1008, "policy");
	}
	if (p->free_in_text) {
		ws_free(p->ws);
		p->ws = NULL;
	}
}

static void
on_closed(void *arg, uint16_t code)
{
	struct peer	*p = arg;

	p->closed++;
	p->code = code;
	ws_free(p->ws);
	p->ws = NULL;
}

static void
on_drain(void *arg)
{
	struct peer	*p = arg;

	p->drains++;
}

static const struct ws_callbacks callbacks = { on_text, on_closed, on_drain };

/* Shared by every connection: contexts pass from one to the next. */
static struct ws_pool	 pool;

static void
limits(struct ws_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_message_bytes = MAX_MSG;
	lim->close_timeout_us = 5000 * MS;
	lim->pool = &pool;
}

static void
ignore_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)arg;
}

/*
 * Open a connection.  pre (n bytes) is put in the bufferevent's input
 * before ws_new, like bytes that came after the HTTP head.  A small
 * sndbuf makes the socket fill up soon.
 */
static void
peer_open(struct peer *p, const struct ws_limits *lim, const void *pre,
    size_t n, int small)
{
	struct bufferevent	*bev;
	int			 sv[2], sz = 16384;

	memset(p, 0, sizeof(*p));
	buf_init(&p->texts);
	buf_init(&p->rx);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		perror("socketpair");
		exit(2);
	}
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	if (small) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	p->cfd = sv[1];
	if ((p->base = event_base_new()) == NULL ||
	    (bev = bufferevent_socket_new(p->base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		fprintf(stderr, "libevent setup failed\n");
		exit(2);
	}
	if (n > 0) {
		/* As the HTTP side would: read them, and hand over. */
		bufferevent_setcb(bev, ignore_read, NULL, NULL, NULL);
		bufferevent_enable(bev, EV_READ);
		if (write(p->cfd, pre, n) != (ssize_t)n) {
			perror("write");
			exit(2);
		}
		while (evbuffer_get_length(bufferevent_get_input(bev)) < n)
			event_base_loop(p->base, EVLOOP_ONCE);
	}
	if ((p->ws = ws_new(p->base, bev, lim, &callbacks, p)) == NULL) {
		fprintf(stderr, "ws_new failed\n");
		exit(2);
	}
}

static void
peer_free(struct peer *p)
{
	ws_free(p->ws);
	p->ws = NULL;
	event_base_free(p->base);
	close(p->cfd);
	buf_free(&p->texts);
	buf_free(&p->rx);
}

static void
client_read(struct peer *p)
{
	char	 b[65536];
	ssize_t	 n;

	if (p->noread || p->eof)
		return;
	while ((n = read(p->cfd, b, sizeof(b))) > 0)
		buf_add(&p->rx, b, (size_t)n);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		p->eof = 1;
}

static void
client_write(struct peer *p, const void *d, size_t n)
{
	const char	*s = d;
	ssize_t		 w;

	while (n > 0) {
		if ((w = write(p->cfd, s, n)) == -1) {
			if (errno == EPIPE || errno == ECONNRESET)
				return;	/* the server is gone */
			if (errno != EAGAIN && errno != EINTR) {
				perror("client write");
				exit(2);
			}
			event_base_loop(p->base, EVLOOP_NONBLOCK);
			client_read(p);
			continue;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void
step(struct peer *p)
{
	struct pollfd	 pfd = { p->cfd, POLLIN, 0 };

	event_base_loop(p->base, EVLOOP_NONBLOCK);
	client_read(p);
	poll(&pfd, 1, 1);
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct peer *p, int ms)
{
	int64_t	 end = mono_us() + ms * MS;

	while (mono_us() < end)
		step(p);
}

/* Run until the client has read n bytes or WAIT_MS pass. */
static void
run_until_len(struct peer *p, size_t n)
{
	int64_t	 end = mono_us() + WAIT_MS * MS;

	while (p->rx.len < n && mono_us() < end)
		step(p);
}

#define RUN_UNTIL(p, cond)	run_until_((p), &(p)->cond)

/* Run until *flag is set or WAIT_MS pass; 1 if it was set. */
static int
run_until_(struct peer *p, const int *flag)
{
	int64_t	 end = mono_us() + WAIT_MS * MS;

	while (!*flag) {
		if (mono_us() > end)
			return 0;
		step(p);
	}
	return 1;
}

/* A client frame: masked unless told otherwise. */
static void
put_frame(struct buf *b, int b0, const void *payload, size_t n, int mask)
{
	const uint8_t	*s = payload;
	uint8_t		 h[14];
	size_t		 hl = 2, i;

	h[0] = (uint8_t)b0;
	h[1] = mask ? 0x80 : 0;
	if (n < 126)
		h[1] |= (uint8_t)n;
	else if (n < 65536) {
		h[1] |= 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	} else {
		h[1] |= 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	if (mask) {
		memcpy(h + hl, mask_key, 4);
		hl += 4;
	}
	buf_add(b, h, hl);
	for (i = 0; i < n; i++)
		buf_addc(b, (char)(s[i] ^ (mask ? mask_key[i % 4] : 0)));
}

static void
put_text(struct buf *b, const char *s)
{
	put_frame(b, FIN | OP_TEXT, s, strlen(s), 1);
}

static void
put_close(struct buf *b, int code, const char *reason)
{
	uint8_t	 pl[128] = { 0 };
	size_t	 n = 0;

	if (code >= 0) {
		pl[0] = (uint8_t)(code >> 8);
		pl[1] = (uint8_t)code;
		n = 2;
		if (reason != NULL) {
			memcpy(pl + 2, reason, strlen(reason));
			n += strlen(reason);
		}
	}
	put_frame(b, FIN | OP_CLOSE, pl, n, 1);
}

/* Raw header bytes, then a mask key and n masked zero bytes. */
static void
put_raw(struct buf *b, const uint8_t *h, size_t hl, size_t n)
{
	size_t	 i;

	buf_add(b, h, hl);
	buf_add(b, mask_key, 4);
	for (i = 0; i < n; i++)
		buf_addc(b, (char)mask_key[i % 4]);
}

/*
 * The next server frame in the client's bytes from *off: 1 and f filled,
 * 0 at the end of the bytes, -1 for a malformed or cut frame.
 */
static int
next_frame(const struct buf *b, size_t *off, struct frame *f)
{
	const uint8_t	*s;
	size_t		 left = b->len - *off, hl = 2, n, i;

	if (left == 0)
		return 0;
	s = (const uint8_t *)b->data + *off;
	if (left < 2)
		return -1;
	f->b0 = s[0];
	f->masked = (s[1] & 0x80) != 0;
	n = s[1] & 0x7f;
	if (n == 126) {
		if (left < 4)
			return -1;
		n = (size_t)s[2] << 8 | s[3];
		hl = 4;
	} else if (n == 127) {
		if (left < 10)
			return -1;
		for (n = 0, i = 0; i < 8; i++)
			n = n << 8 | s[2 + i];
		hl = 10;
	}
	if (f->masked || left - hl < n)
		return -1;
	f->p = s + hl;
	f->len = n;
	*off += hl + n;
	return 1;
}

/*
 * Check the client's bytes: well-formed frames, exactly one close frame
 * and it is the last; returns its code (1005 for none in it), -1 when
 * there is no close frame or the bytes are bad.  *pings counts pings.
 */
static int
close_code(const struct peer *p, int *pings)
{
	struct frame	 f;
	size_t		 off = 0;
	int		 r, code = -1;

	if (pings != NULL)
		*pings = 0;
	while ((r = next_frame(&p->rx, &off, &f)) == 1) {
		if (code != -1)
			return -1;	/* a frame after the close */
		if ((f.b0 & 0x0f) == OP_PING && pings != NULL)
			(*pings)++;
		if ((f.b0 & 0x0f) == OP_CLOSE)
			code = f.len >= 2 ? f.p[0] << 8 | f.p[1] : 1005;
	}
	return r == 0 ? code : -1;
}

/* Message i as recorded by on_text. */
static int
text_is(const struct peer *p, size_t i, const char *want, size_t wlen)
{
	size_t	 off = 0, len, k;

	for (k = 0; off < p->texts.len; k++) {
		memcpy(&len, p->texts.data + off, sizeof(len));
		off += sizeof(len);
		if (k == i)
			return len == wlen &&
			    memcmp(p->texts.data + off, want, len) == 0;
		off += len;
	}
	return 0;
}

/*
 * Feed b in chunks of size chunk (0: all at once), running the loop after
 * each chunk so the server sees that split.
 */
static void
feed(struct peer *p, const struct buf *b, size_t chunk)
{
	size_t	 off, n;

	if (chunk == 0)
		chunk = b->len;
	for (off = 0; off < b->len; off += n) {
		n = b->len - off < chunk ? b->len - off : chunk;
		client_write(p, b->data + off, n);
		event_base_loop(p->base, EVLOOP_NONBLOCK);
		client_read(p);
	}
}

static void
build_script(struct buf *b, char *long_msg, size_t long_len)
{
	size_t	 i;

	put_text(b, "hello");
	put_frame(b, FIN | OP_PING, "p1", 2, 1);
	/* "fragmented" in four parts, a ping and an empty part between. */
	put_frame(b, OP_TEXT, "frag", 4, 1);
	put_frame(b, OP_CONT, "men", 3, 1);
	put_frame(b, FIN | OP_PING, "p2", 2, 1);
	put_frame(b, OP_CONT, "", 0, 1);
	put_frame(b, FIN | OP_CONT, "ted", 3, 1);
	put_text(b, "");
	/* 200 bytes of "é": a 16-bit length. */
	for (i = 0; i + 1 < long_len; i += 2) {
		long_msg[i] = (char)0xc3;
		long_msg[i + 1] = (char)0xa9;
	}
	put_frame(b, FIN | OP_TEXT, long_msg, long_len, 1);
	/* "a€b" with the euro sign cut across three fragments. */
	put_frame(b, OP_TEXT, "a\xe2", 2, 1);
	put_frame(b, OP_CONT, "\x82", 1, 1);
	put_frame(b, FIN | OP_CONT, "\xac" "b", 2, 1);
	put_frame(b, FIN | OP_PONG, "u", 1, 1);
	put_close(b, 1000, "by\xc3\xa9");
	/* After the close: never delivered. */
	put_text(b, "late");
}

static void
test_script(void)
{
	struct ws_limits	 lim;
	struct peer		 p;
	struct buf		 script, want;
	char			 long_msg[200], name[64];
	size_t			 chunk;
	int			 pass;

	printf("== scripted input in every chunk size ==\n");
	limits(&lim);
	buf_init(&script);
	buf_init(&want);
	build_script(&script, long_msg, sizeof(long_msg));
	/* The answer: two pongs, then the close echoed. */
	buf_add(&want, "\x8a\x02p1\x8a\x02p2\x88\x06\x03\xe8" "by\xc3\xa9",
	    16);
	for (pass = 0; pass <= MAX_CHUNK + 1; pass++) {
		/* pass 0: all at once; MAX_CHUNK+1: before ws_new */
		chunk = pass <= MAX_CHUNK ? (size_t)pass : 0;
		if (pass <= MAX_CHUNK)
			snprintf(name, sizeof(name), "chunks of %zu", chunk);
		else
			snprintf(name, sizeof(name), "script in the input");
		if (pass <= MAX_CHUNK) {
			peer_open(&p, &lim, NULL, 0, 0);
			feed(&p, &script, chunk);
		} else {
			peer_open(&p, &lim, script.data, script.len, 0);
			check(p.ntexts == 0, "no on_text inside ws_new", name);
		}
		check(RUN_UNTIL(&p, closed) && RUN_UNTIL(&p, eof),
		    "on_closed and EOF", name);
		check(p.closed == 1 && p.code == 1000, "on_closed 1000", name);
		check(p.ntexts == 5 && text_is(&p, 0, "hello", 5) &&
		    text_is(&p, 1, "fragmented", 10) &&
		    text_is(&p, 2, "", 0) &&
		    text_is(&p, 3, long_msg, sizeof(long_msg)) &&
		    text_is(&p, 4, "a\xe2\x82\xac" "b", 5),
		    "the five messages", name);
		check(p.rx.len == want.len &&
		    memcmp(p.rx.data, want.data, want.len) == 0,
		    "two pongs and the close echoed", name);
		peer_free(&p);
	}
	printf("%d chunk sizes, the input case and all at once\n", MAX_CHUNK);
	buf_free(&script);
	buf_free(&want);
}

enum bad {
	BAD_UNMASKED, BAD_UTF8, BAD_UTF8_END, BAD_UTF8_FRAG, BAD_BIG,
	BAD_BIG_FRAG, BAD_BINARY, BAD_RSV1, BAD_RSV3, BAD_FRAG_PING,
	BAD_FRAG_CLOSE, BAD_LONG_PING, BAD_LEN16, BAD_LEN64, BAD_LEN64_TOP,
	BAD_CLOSE1, BAD_CLOSE1005, BAD_CLOSE999, BAD_CLOSE_UTF8, BAD_OP3,
	BAD_OPB, BAD_CONT, BAD_TEXT_IN_FRAG, BAD_COUNT
};

static const struct {
	const char	*name;
	int		 code;
} bad_cases[BAD_COUNT] = {
	[BAD_UNMASKED] = { "unmasked frame", 1002 },
	[BAD_UTF8] = { "invalid UTF-8", 1007 },
	[BAD_UTF8_END] = { "UTF-8 cut at the message end", 1007 },
	[BAD_UTF8_FRAG] = { "invalid UTF-8 across fragments", 1007 },
	[BAD_BIG] = { "message over the limit", 1009 },
	[BAD_BIG_FRAG] = { "fragments over the limit", 1009 },
	[BAD_BINARY] = { "binary message", 1003 },
	[BAD_RSV1] = { "RSV1 set", 1002 },
	[BAD_RSV3] = { "RSV3 set", 1002 },
	[BAD_FRAG_PING] = { "fragmented ping", 1002 },
	[BAD_FRAG_CLOSE] = { "fragmented close", 1002 },
	[BAD_LONG_PING] = { "ping of 126 bytes", 1002 },
	[BAD_LEN16] = { "16-bit length under 126", 1002 },
	[BAD_LEN64] = { "64-bit length under 65536", 1002 },
	[BAD_LEN64_TOP] = { "64-bit length with the top bit", 1002 },
	[BAD_CLOSE1] = { "close with a 1-byte payload", 1002 },
	[BAD_CLOSE1005] = { "close with code 1005", 1002 },
	[BAD_CLOSE999] = { "close with code 999", 1002 },
	[BAD_CLOSE_UTF8] = { "close reason not UTF-8", 1007 },
	[BAD_OP3] = { "reserved opcode 3", 1002 },
	[BAD_OPB] = { "reserved control opcode 0xb", 1002 },
	[BAD_CONT] = { "continuation without a start", 1002 },
	[BAD_TEXT_IN_FRAG] = { "text inside a fragmented message", 1002 },
};

static void
build_bad(struct buf *b, enum bad which)
{
	static char	 big[2 * MAX_MSG];
	uint8_t		 h[10] = { 0 };
	uint8_t		 cl[3];

	memset(big, 'z', sizeof(big));
	put_text(b, "ok");
	switch (which) {
	case BAD_UNMASKED:
		put_frame(b, FIN | OP_TEXT, "x", 1, 0);
		break;
	case BAD_UTF8:
		put_frame(b, FIN | OP_TEXT, "a\xff" "b", 3, 1);
		break;
	case BAD_UTF8_END:
		put_frame(b, FIN | OP_TEXT, "a\xe2\x82", 3, 1);
		break;
	case BAD_UTF8_FRAG:
		put_frame(b, OP_TEXT, "a\xe2", 2, 1);
		put_frame(b, FIN | OP_CONT, "(", 1, 1);
		break;
	case BAD_BIG:
		put_frame(b, FIN | OP_TEXT, big, MAX_MSG + 1, 1);
		break;
	case BAD_BIG_FRAG:
		put_frame(b, OP_TEXT, big, MAX_MSG / 2 + 1, 1);
		put_frame(b, FIN | OP_CONT, big, MAX_MSG / 2, 1);
		break;
	case BAD_BINARY:
		put_frame(b, FIN | OP_BIN, "\x01\x02", 2, 1);
		break;
	case BAD_RSV1:
		put_frame(b, FIN | RSV1 | OP_TEXT, "x", 1, 1);
		break;
	case BAD_RSV3:
		put_frame(b, FIN | RSV3 | OP_TEXT, "x", 1, 1);
		break;
	case BAD_FRAG_PING:
		put_frame(b, OP_PING, "x", 1, 1);
		break;
	case BAD_FRAG_CLOSE:
		put_frame(b, OP_CLOSE, "\x03\xe8", 2, 1);
		break;
	case BAD_LONG_PING:
		put_frame(b, FIN | OP_PING, big, 126, 1);
		break;
	case BAD_LEN16:
		h[0] = FIN | OP_TEXT;
		h[1] = 0x80 | 126;
		h[3] = 5;
		put_raw(b, h, 4, 5);
		break;
	case BAD_LEN64:
		h[0] = FIN | OP_TEXT;
		h[1] = 0x80 | 127;
		h[8] = 0x01;	/* 256 */
		put_raw(b, h, 10, 256);
		break;
	case BAD_LEN64_TOP:
		h[0] = FIN | OP_TEXT;
		h[1] = 0x80 | 127;
		h[2] = 0x80;
		h[9] = 5;
		put_raw(b, h, 10, 5);
		break;
	case BAD_CLOSE1:
		put_frame(b, FIN | OP_CLOSE, "\x03", 1, 1);
		break;
	case BAD_CLOSE1005:
		put_close(b, 1005, NULL);
		break;
	case BAD_CLOSE999:
		put_close(b, 999, NULL);
		break;
	case BAD_CLOSE_UTF8:
		cl[0] = 0x03;
		cl[1] = 0xe8;
		cl[2] = 0xff;
		put_frame(b, FIN | OP_CLOSE, cl, 3, 1);
		break;
	case BAD_OP3:
		put_frame(b, FIN | 0x3, "x", 1, 1);
		break;
	case BAD_OPB:
		put_frame(b, FIN | 0xb, "x", 1, 1);
		break;
	case BAD_CONT:
		put_frame(b, FIN | OP_CONT, "x", 1, 1);
		break;
	case BAD_TEXT_IN_FRAG:
		put_frame(b, OP_TEXT, "a", 1, 1);
		put_text(b, "b");
		break;
	case BAD_COUNT:
		break;
	}
	/* Never delivered: the connection is closing. */
	put_text(b, "after");
	put_frame(b, FIN | OP_PING, "late", 4, 1);
}

static void
test_bad(void)
{
	static const size_t	 chunks[] = { 1, 2, 3, 5, 7, 13, 0 };
	struct ws_limits	 lim;
	struct peer		 p;
	struct buf		 b, reply;
	char			 name[96], what[64];
	size_t			 i, k;
	int64_t			 t0;
	int			 code;

	printf("== protocol errors end in a close frame ==\n");
	limits(&lim);
	for (i = 0; i < BAD_COUNT; i++) {
		buf_init(&b);
		build_bad(&b, (enum bad)i);
		for (k = 0; k < nitems(chunks); k++) {
			snprintf(name, sizeof(name), "%s, chunks of %zu",
			    bad_cases[i].name, chunks[k]);
			peer_open(&p, &lim, NULL, 0, 0);
			t0 = mono_us();
			feed(&p, &b, chunks[k]);
			/* Wait for the close frame. */
			while (close_code(&p, NULL) == -1 && !p.eof &&
			    mono_us() - t0 < WAIT_MS * MS)
				step(&p);
			code = close_code(&p, NULL);
			snprintf(what, sizeof(what), "close frame %d, want %d",
			    code, bad_cases[i].code);
			check(code == bad_cases[i].code, what, name);
			check(p.ws != NULL && ws_closing(p.ws), "ws_closing",
			    name);
			check(p.ntexts == 1 && text_is(&p, 0, "ok", 2),
			    "only the message before the error", name);
			/* The client answers the close and hangs up. */
			buf_init(&reply);
			put_close(&reply, code, NULL);
			client_write(&p, reply.data, reply.len);
			buf_free(&reply);
			shutdown(p.cfd, SHUT_WR);
			check(RUN_UNTIL(&p, closed), "on_closed", name);
			snprintf(what, sizeof(what), "on_closed %u, want %d",
			    p.code, bad_cases[i].code);
			check(p.closed == 1 && p.code == bad_cases[i].code,
			    what, name);
			check(mono_us() - t0 < lim.close_timeout_us / 2,
			    "done before the close timeout", name);
			peer_free(&p);
		}
		printf("%-36s %d\n", bad_cases[i].name, bad_cases[i].code);
		buf_free(&b);
	}
}

static void
test_big_and_drain(void)
{
	struct ws_limits	 lim;
	struct peer		 p;
	struct frame		 f;
	struct buf		 b;
	char			*msg;
	size_t			 i, off = 0;
	int			 ok;

	printf("== a large message, ws_unsent and on_drain ==\n");
	limits(&lim);
	peer_open(&p, &lim, NULL, 0, 1);
	msg = xmalloc(BIG_MSG);
	for (i = 0; i < BIG_MSG; i++)
		msg[i] = (char)('a' + i % 26);
	p.noread = 1;
	check(ws_unsent(p.ws) == 0, "nothing unsent at first", "big");
	check(ws_send_text(p.ws, msg, BIG_MSG) == 0, "ws_send_text", "big");
	check(ws_unsent(p.ws) >= BIG_MSG, "the message counts as unsent",
	    "big");
	run_for(&p, 100);
	/* Over the high-water mark: what the client sends waits. */
	buf_init(&b);
	put_frame(&b, FIN | OP_PING, "x1", 2, 1);
	put_text(&b, "t1");
	client_write(&p, b.data, b.len);
	buf_free(&b);
	run_for(&p, 100);
	check(ws_unsent(p.ws) > 0, "unsent while the client does not read",
	    "big");
	check(p.drains == 0, "no on_drain while unsent", "big");
	check(p.ntexts == 0, "reading paused while the output is full",
	    "big");
	p.noread = 0;
	run_until_len(&p, BIG_MSG + 10 + 4);
	check(RUN_UNTIL(&p, drains), "on_drain after the client reads",
	    "big");
	run_for(&p, 20);
	check(p.drains == 1, "on_drain once", "big");
	check(ws_unsent(p.ws) == 0, "nothing unsent after", "big");
	ok = next_frame(&p.rx, &off, &f) == 1 && f.b0 == (FIN | OP_TEXT) &&
	    f.len == BIG_MSG && memcmp(f.p, msg, BIG_MSG) == 0;
	check(ok, "one text frame with the message intact", "big");
	ok = next_frame(&p.rx, &off, &f) == 1 && f.b0 == (FIN | OP_PONG) &&
	    f.len == 2 && memcmp(f.p, "x1", 2) == 0 && off == p.rx.len;
	check(ok, "then the pong", "big");
	check(p.ntexts == 1 && text_is(&p, 0, "t1", 2),
	    "the message read once the output drained", "big");

	/* Echo from inside on_text, a fragmented message too. */
	buf_reset(&p.rx);
	buf_reset(&p.texts);
	p.ntexts = 0;
	p.echo = 1;
	buf_init(&b);
	put_text(&b, "echo me");
	put_frame(&b, OP_TEXT, "two ", 4, 1);
	put_frame(&b, FIN | OP_CONT, "parts", 5, 1);
	client_write(&p, b.data, b.len);
	buf_free(&b);
	run_until_len(&p, 20);
	run_for(&p, 20);
	check(p.rx.len == 20 && memcmp(p.rx.data,
	    "\x81\x07" "echo me" "\x81\x09" "two parts", 20) == 0,
	    "both messages echoed", "echo");
	check(p.drains == 2, "on_drain after the echo", "echo");
	peer_free(&p);
	free(msg);
}

static void
test_close(void)
{
	struct ws_limits	 lim;
	struct peer		 p;
	struct buf		 b;
	struct frame		 f;
	size_t			 off = 0;
	int64_t			 t0, dt;

	printf("== close handshake ==\n");
	limits(&lim);

	/* ws_close, the client answers. */
	peer_open(&p, &lim, NULL, 0, 0);
	ws_close(p.ws, 1001, "going away");
	check(ws_closing(p.ws), "ws_closing after ws_close", "ws_close");
	check(ws_send_text(p.ws, "x", 1) == -1, "no text after ws_close",
	    "ws_close");
	run_until_len(&p, 14);
	check(next_frame(&p.rx, &off, &f) == 1 && f.b0 == (FIN | OP_CLOSE) &&
	    f.len == 12 && memcmp(f.p, "\x03\xe9" "going away", 12) == 0,
	    "close frame 1001 with the reason", "ws_close");
	run_for(&p, 50);
	check(p.closed == 0, "waits for the client's close", "ws_close");
	buf_init(&b);
	put_text(&b, "ignored");
	put_close(&b, 1001, NULL);
	client_write(&p, b.data, b.len);
	buf_free(&b);
	check(RUN_UNTIL(&p, closed) && p.code == 1001,
	    "on_closed 1001 after the client's close", "ws_close");
	check(p.ntexts == 0, "text after ws_close ignored", "ws_close");
	check(RUN_UNTIL(&p, eof), "socket shut", "ws_close");
	peer_free(&p);

	/* ws_close, the client does not answer: the timeout. */
	lim.close_timeout_us = 200 * MS;
	peer_open(&p, &lim, NULL, 0, 0);
	t0 = mono_us();
	ws_close(p.ws, 1001, NULL);
	check(RUN_UNTIL(&p, closed) && p.code == 1001,
	    "on_closed 1001 at the timeout", "close timeout");
	dt = mono_us() - t0;
	check(dt >= 200 * MS && dt < 2000 * MS, "after 200 ms",
	    "close timeout");
	check(close_code(&p, NULL) == 1001, "the close frame went out",
	    "close timeout");
	printf("close timeout after %lld ms\n", (long long)(dt / MS));
	peer_free(&p);
	limits(&lim);

	/* From on_text: an answer, then ws_close; the answer goes first. */
	peer_open(&p, &lim, NULL, 0, 0);
	p.close_in_text = 1;
	buf_init(&b);
	put_text(&b, "hi");
	client_write(&p, b.data, b.len);
	run_until_len(&p, 17);
	check(p.rx.len == 17 && memcmp(p.rx.data, "\x81\x05" "reply"
	    "\x88\x08\x03\xf0" "policy", 17) == 0,
	    "the answer, then close 1008", "close in on_text");
	buf_reset(&b);
	put_close(&b, 1008, NULL);
	client_write(&p, b.data, b.len);
	buf_free(&b);
	check(RUN_UNTIL(&p, closed) && p.code == 1008, "on_closed 1008",
	    "close in on_text");
	peer_free(&p);

	/* The client closes without a status code. */
	peer_open(&p, &lim, NULL, 0, 0);
	buf_init(&b);
	put_close(&b, -1, NULL);
	client_write(&p, b.data, b.len);
	buf_free(&b);
	check(RUN_UNTIL(&p, closed) && p.code == 1005, "on_closed 1005",
	    "empty close");
	check(RUN_UNTIL(&p, eof) && p.rx.len == 2 &&
	    memcmp(p.rx.data, "\x88\x00", 2) == 0, "empty close answered",
	    "empty close");
	peer_free(&p);

	/* The client just goes. */
	peer_open(&p, &lim, NULL, 0, 0);
	run_for(&p, 10);
	shutdown(p.cfd, SHUT_RDWR);
	check(RUN_UNTIL(&p, closed) && p.code == 1006, "on_closed 1006",
	    "peer gone");
	peer_free(&p);

	/* ws_abort, with a code and without. */
	peer_open(&p, &lim, NULL, 0, 0);
	ws_send_text(p.ws, "dropped", 7);
	ws_abort(p.ws, 1013);
	check(ws_closing(p.ws), "ws_closing after ws_abort", "ws_abort");
	check(RUN_UNTIL(&p, closed) && p.code == 1013 && p.closed == 1,
	    "on_closed 1013", "ws_abort");
	check(RUN_UNTIL(&p, eof) && close_code(&p, NULL) == -1,
	    "EOF without a close frame", "ws_abort");
	peer_free(&p);
	peer_open(&p, &lim, NULL, 0, 0);
	ws_abort(p.ws, 0);
	check(RUN_UNTIL(&p, closed) && p.code == 1006, "on_closed 1006",
	    "ws_abort 0");
	peer_free(&p);
	printf("close handshake checked\n");
}

static void
test_timers(void)
{
	struct ws_limits	 lim;
	struct peer		 p;
	struct buf		 b;
	int64_t			 t0, dt;
	int			 i, pings;

	printf("== idle timeout and pings ==\n");
	limits(&lim);
	lim.idle_timeout_us = 300 * MS;
	peer_open(&p, &lim, NULL, 0, 0);
	buf_init(&b);
	put_frame(&b, FIN | OP_PONG, "", 0, 1);
	/* A pong every 50 ms keeps the connection alive. */
	t0 = 0;
	for (i = 0; i < 8; i++) {
		t0 = mono_us();
		client_write(&p, b.data, b.len);
		run_for(&p, 50);
	}
	check(p.rx.len == 0 && p.closed == 0, "alive while pongs come",
	    "idle");
	while (close_code(&p, NULL) == -1 && mono_us() - t0 < WAIT_MS * MS)
		step(&p);
	dt = mono_us() - t0;
	check(close_code(&p, NULL) == 1008 && p.rx.len == 8 &&
	    memcmp(p.rx.data + 4, "idle", 4) == 0, "close 1008 \"idle\"",
	    "idle");
	/* The server read the last pong after it was written. */
	check(dt >= 300 * MS && dt < 2000 * MS, "300 ms after the last pong",
	    "idle");
	printf("idle close %lld ms after the last pong\n",
	    (long long)(dt / MS));
	buf_reset(&b);
	put_close(&b, 1008, NULL);
	client_write(&p, b.data, b.len);
	check(RUN_UNTIL(&p, closed) && p.code == 1008, "on_closed 1008",
	    "idle");
	buf_free(&b);
	peer_free(&p);

	limits(&lim);
	lim.ping_interval_us = 100 * MS;
	peer_open(&p, &lim, NULL, 0, 0);
	run_for(&p, 550);
	close_code(&p, &pings);
	check(pings >= 3 && pings <= 6, "3 to 6 pings in 550 ms", "pings");
	check(p.rx.len == (size_t)pings * 2, "only empty pings", "pings");
	printf("%d pings in 550 ms\n", pings);
	peer_free(&p);
}

static void
test_free_in_text(void)
{
	struct ws_limits	 lim;
	struct peer		 p;
	struct buf		 b;

	printf("== ws_free from inside on_text ==\n");
	limits(&lim);
	peer_open(&p, &lim, NULL, 0, 0);
	p.free_in_text = 1;
	buf_init(&b);
	put_text(&b, "first");
	put_text(&b, "second");
	put_frame(&b, FIN | OP_PING, "x", 1, 1);
	client_write(&p, b.data, b.len);
	buf_free(&b);
	run_for(&p, 100);
	check(p.ws == NULL && p.ntexts == 1, "one message, then freed",
	    "free in on_text");
	check(p.closed == 0, "no on_closed after ws_free", "free in on_text");
	check(RUN_UNTIL(&p, eof), "the socket closed", "free in on_text");
	peer_free(&p);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_script();
	test_bad();
	test_big_and_drain();
	test_close();
	test_timers();
	test_free_in_text();
	check(pool.reused > 0 && pool.n <= WS_POOL_MAX,
	    "connections at rest returned wslay contexts to the pool, and "
	    "they were taken again", "pool");
	ws_pool_clear(&pool);
	check(pool.n == 0 && pool.free == NULL, "the pool is cleared", "pool");
	printf("%ld checks, %d failed\n", nchecks, nfail);
	return nfail == 0 ? 0 : 1;
}
