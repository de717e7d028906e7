/*
 * WebSocket connections: the glue between wslay, which does the framing
 * (masking rules, fragmentation, control frames, UTF-8, close codes), and
 * a libevent bufferevent, which does the socket.
 *
 * wslay reads through ws_recv_cb, which takes bytes from the bufferevent's
 * input, and writes through ws_send_cb, which appends to its output and
 * answers WOULDBLOCK once the output holds WS_HIGH_WATER bytes (a large
 * message goes out in pieces, so the output never holds more).  One loop,
 * ws_proceed, runs wslay's receive and send until neither moves a byte; it
 * runs from the bufferevent's read and write callbacks, the timer, and
 * after ws_send_text and ws_close.  While ws_unsent is above WS_HIGH_WATER
 * the connection stops reading, so a peer that sends but does not read
 * cannot make its pongs and answers pile up without end.
 *
 * Closing.  A close frame is queued by ws_close, by the timer (1008 after
 * idle_timeout_us without a byte from the peer), for a binary message
 * (1003), by wslay for a protocol error (1002), bad UTF-8 (1007) or a
 * message over max_message_bytes (1009), or by wslay as the answer to the
 * peer's close.  wslay sends a close frame at the next frame boundary,
 * before messages still in its queue, which are then dropped; what is
 * already in the bufferevent's output goes first.  From then on text
 * messages are ignored and a deadline of close_timeout_us runs.  The connection is finished when the close frame
 * has left the output and the peer's close has arrived; when the peer
 * hangs up; or at the deadline.  After a protocol error nothing more is
 * read: once our close frame is out, the write side is shut and the
 * connection waits for the peer's end of file, so the peer gets the close
 * frame and not a reset.  Finishing shuts the socket and schedules
 * on_closed from an event of its own, so the owner may ws_free there.
 *
 * wslay 1.1.1 answers a frame-level violation (a fragmented control
 * frame, a control frame over 125 bytes, a length not in its shortest
 * form or with the top bit set) with a close frame without a status code.
 * So ws_guard follows the frame headers on the bytes on their way to
 * wslay, and holds back a bad header, which wslay never sees: the
 * connection is then closed with 1002 here.  A close frame with a
 * one-byte payload, which wslay takes as "no status code", is refused
 * the same way.  wslay also checks the UTF-8 of a close reason wrongly
 * when the frame reaches it in pieces, so the guard hands control frames
 * (131 bytes at most) over whole, keeping a cut one in the input until
 * the rest has come.
 *
 * Re-entrancy.  on_text and on_drain are called from inside ws_proceed.
 * From them the owner may call ws_send_text, ws_close, ws_abort and even
 * ws_free (the free then waits until the callback has returned).
 * ws_send_text and ws_close never call back into the owner.  on_closed
 * is called from a deferred event only, once.
 *
 * Memory.  wslay's context is about 8.8 KiB (a 4 KiB frame input buffer
 * and a 4 KiB buffer for fragmented output among it), and most
 * connections are idle most of the time.  So the context exists only
 * while it holds something: it is made when bytes arrive or a message is
 * queued, and freed again at the end of ws_proceed once the connection is
 * open and at rest: the guard is at a frame boundary outside a fragmented
 * message (so wslay has parsed every byte it was given and holds no part
 * of a message), and nothing is queued or half sent.  A context in that
 * state is the same as a new one, so nothing is lost, and it goes to a
 * small pool (struct ws_pool) for the next connection that needs one:
 * making a context costs more than most messages.  Closing keeps it to
 * the end.  A text message that fits whole under WS_HIGH_WATER, when
 * wslay holds nothing that must go first, is written as one frame
 * straight to the output (ws_send_direct): sending needs no context and
 * no copy in wslay's queue, which keeps a copy of every message it
 * queues until its last byte is handed over.  A connection at rest is
 * struct ws_conn, its two events and the bufferevent: about 1.5 KiB.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <wslay/wslay.h>

#include "sendnow.h"
#include "util.h"
#include "ws.h"

/* Paused reading resumes when ws_unsent is down to this. */
#define WS_READ_RESUME		(WS_HIGH_WATER / 2)
/* The write callback runs when the output falls to this. */
#define WS_WRITE_LOW		(WS_HIGH_WATER / 2)
#define WS_DEFAULT_MAX_MESSAGE	(1024 * 1024)	/* max_message_bytes 0 */
#define WS_MAX_REASON		123	/* close reason bytes (RFC 6455) */
#define WS_MAX_CONTROL		125	/* control frame payload bytes */
#define WS_HDR_LEN		10	/* header bytes kept: 2 + 64-bit length */

enum ws_state {
	WS_OPEN,		/* messages flow */
	WS_CLOSING,		/* a close frame is queued; deadline runs */
	WS_DONE			/* finished: on_closed scheduled or called */
};

struct ws_conn {
	struct bufferevent	*bev;		/* the socket; owned */
	wslay_event_context_ptr	 wslay;		/* the framing; owned; NULL
						   while at rest */
	struct ws_slot		*slot;		/* wslay's, with its user data */
	struct ws_pool		*pool;		/* where it goes at rest */
	uint64_t		 max_msg;	/* wslay's message limit */
	struct event		*tick;		/* ping, idle, close deadline */
	struct event		*done;		/* deferred on_closed */
	struct ws_callbacks	 cb;
	void			*arg;		/* for the callbacks */
	int64_t			 ping_us;	/* ping interval; 0: none */
	int64_t			 idle_us;	/* idle timeout; 0: none */
	int64_t			 close_us;	/* close handshake timeout */
	int64_t			 last_recv;	/* mono_us of the last read */
	int64_t			 next_ping;	/* mono_us of the next ping */
	int64_t			 close_by;	/* mono_us deadline, closing */
	uint64_t		 g_left;	/* guard: payload bytes to pass */
	uint8_t			 g_hdr[WS_HDR_LEN]; /* guard: header bytes */
	uint8_t			 g_have;	/* guard: header bytes seen */
	uint8_t			 g_need;	/* guard: header length */
	uint16_t		 code;		/* our close code, or the final
						   one once done; 0: none */
	enum ws_state		 state;
	unsigned int		 busy : 1;	/* inside ws_proceed */
	unsigned int		 again : 1;	/* work asked for while busy */
	unsigned int		 dead : 1;	/* ws_free called while busy */
	unsigned int		 paused : 1;	/* reading stopped: output */
	unsigned int		 bad_frame : 1;	/* guard held back a header */
	unsigned int		 linger : 1;	/* write side shut: wait EOF */
	unsigned int		 sent : 1;	/* unsent > 0 since on_drain */
	unsigned int		 g_frag : 1;	/* guard: inside a fragmented
						   data message */
};

/*
 * A wslay context and what its callbacks are given: the connection it
 * serves now, so that a context can pass from one connection to another.
 */
struct ws_slot {
	struct ws_conn		*c;		/* NULL while pooled */
	wslay_event_context_ptr	 w;
	struct ws_slot		*next;		/* in the pool */
};

static void	ws_finish(struct ws_conn *);
static void	ws_slot_free(struct ws_slot *);
static wslay_event_context_ptr ws_wslay(struct ws_conn *);

static int64_t
ws_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void
ws_arm(struct ws_conn *c, int64_t delay_us)
{
	struct timeval	 tv;

	if (delay_us < 0)
		delay_us = 0;
	tv.tv_sec = delay_us / 1000000;
	tv.tv_usec = delay_us % 1000000;
	event_add(c->tick, &tv);
}

/* Set the timer for the next ping or idle check, whichever is first. */
static void
ws_schedule(struct ws_conn *c, int64_t now)
{
	int64_t	 at = INT64_MAX;

	if (c->ping_us > 0)
		at = c->next_ping;
	if (c->idle_us > 0)
		at = ws_min(at, c->last_recv + c->idle_us);
	if (at != INT64_MAX)
		ws_arm(c, at - now);
}

static void
ws_read_trigger(struct ws_conn *c)
{
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void
ws_pause(struct ws_conn *c)
{
	bufferevent_disable(c->bev, EV_READ);
	c->paused = 1;
}

/* Read again; bytes already in the input get a (deferred) read callback. */
static void
ws_resume(struct ws_conn *c)
{
	c->paused = 0;
	bufferevent_enable(c->bev, EV_READ);
	ws_read_trigger(c);
}

static void
ws_enter_closing(struct ws_conn *c)
{
	c->state = WS_CLOSING;
	c->close_by = mono_us() + c->close_us;
	event_del(c->tick);
	ws_arm(c, c->close_us);
	if (c->paused)
		ws_resume(c);
}

/*
 * Hand what wslay has queued to the output, as far as there is room.
 * Safe inside wslay_event_recv's message callback.
 */
static void
ws_flush(struct ws_conn *c)
{
	if (c->dead || c->state == WS_DONE || c->wslay == NULL ||
	    !wslay_event_want_write(c->wslay) ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) >=
	    WS_HIGH_WATER)
		return;
	if (wslay_event_send(c->wslay) != 0) {
		if (c->code == 0)
			c->code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
		ws_finish(c);
	}
}

/*
 * Queue a close frame with code and start closing.  Messages queued
 * before go to the output first where there is room: wslay would send
 * the close frame ahead of them, and them never.  c->code records the
 * code only when the frame was queued: wslay may have queued its own.
 */
static void
ws_start_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	size_t	 rlen = 0;

	if (c->state != WS_OPEN)
		return;
	ws_flush(c);
	if (c->state != WS_OPEN)
		return;
	if (reason == NULL)
		reason = "";
	if ((rlen = strlen(reason)) > WS_MAX_REASON) {
		rlen = WS_MAX_REASON;
		/* Do not cut a UTF-8 sequence. */
		while (rlen > 0 && ((unsigned char)reason[rlen] & 0xc0) ==
		    0x80)
			rlen--;
	}
	if (ws_wslay(c) == NULL) {
		/* No memory for the close frame: drop the connection. */
		c->code = code;
		ws_finish(c);
		return;
	}
	if (wslay_event_queue_close(c->wslay, code, (const uint8_t *)reason,
	    rlen) == 0)
		c->code = code;
	ws_enter_closing(c);
}

/* Length of the frame whose header the guard holds. */
static uint64_t
ws_guard_len(const struct ws_conn *c)
{
	uint64_t	 len;
	int		 i, ext;

	len = c->g_hdr[1] & 0x7f;
	ext = len == 126 ? 2 : len == 127 ? 8 : 0;
	if (ext == 0)
		return len;
	for (len = 0, i = 0; i < ext; i++)
		len = len << 8 | c->g_hdr[2 + i];
	return len;
}

/*
 * The frame guard: follow the frame headers in the n bytes at p, which
 * are on their way to wslay, and return how many of them may go.  A
 * control frame goes whole or not at all (wslay checks the UTF-8 of a
 * close reason correctly only when it gets the frame in one piece).  At
 * a header that wslay would answer with a close frame without a status
 * code, stop before its deciding byte and set bad_frame.
 */
static size_t
ws_guard(struct ws_conn *c, const uint8_t *p, size_t n)
{
	uint64_t	 len;
	size_t		 i = 0, skip, need;
	uint8_t		 op, len7, ext;

	while (i < n) {
		if (c->g_left > 0) {
			skip = n - i;
			if (skip > c->g_left)
				skip = (size_t)c->g_left;
			i += skip;
			c->g_left -= skip;
			continue;
		}
		if (c->g_have == 0 && (p[i] & 0x08)) {
			if (n - i < 2)
				break;
			op = p[i] & 0x0f;
			len7 = p[i + 1] & 0x7f;
			if (!(p[i] & 0x80) || len7 > WS_MAX_CONTROL ||
			    (op == WSLAY_CONNECTION_CLOSE && len7 == 1)) {
				c->bad_frame = 1;
				break;
			}
			need = 2 + (p[i + 1] & 0x80 ? 4 : 0) + len7;
			if (n - i < need)
				break;
			i += need;
			continue;
		}
		if (c->g_have < WS_HDR_LEN)
			c->g_hdr[c->g_have] = p[i];
		c->g_have++;
		len7 = c->g_hdr[1] & 0x7f;
		ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
		if (c->g_have == 2) {
			c->g_need = 2 + ext + (c->g_hdr[1] & 0x80 ? 4 : 0);
			/* A data frame without FIN: more of it follows. */
			c->g_frag = !(c->g_hdr[0] & 0x80);
		}
		if (c->g_have >= 2 && ext > 0 && c->g_have == 2 + ext) {
			len = ws_guard_len(c);
			if ((ext == 2 && len < 126) || (ext == 8 &&
			    (len < 65536 || (len >> 63) != 0))) {
				c->bad_frame = 1;
				break;
			}
		}
		i++;
		if (c->g_have >= 2 && c->g_have == c->g_need) {
			c->g_left = ws_guard_len(c);
			c->g_have = 0;
		}
	}
	return i;
}

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    int flags, void *arg)
{
	struct ws_conn	*c = ((struct ws_slot *)arg)->c;
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	ev_ssize_t	 n;
	size_t		 ok;

	(void)flags;
	if (c->dead || c->state == WS_DONE || c->bad_frame)
		goto wouldblock;
	if ((n = evbuffer_copyout(in, buf, len)) <= 0)
		goto wouldblock;
	if ((ok = ws_guard(c, buf, (size_t)n)) == 0)
		goto wouldblock;
	evbuffer_drain(in, ok);
	return (ssize_t)ok;
 wouldblock:
	wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	return -1;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct ws_conn	*c = ((struct ws_slot *)arg)->c;
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 have = evbuffer_get_length(out);

	(void)flags;
	if (c->dead || c->state == WS_DONE || have >= WS_HIGH_WATER) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > WS_HIGH_WATER - have)
		len = WS_HIGH_WATER - have;
	if (evbuffer_add(out, data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void
ws_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct ws_conn	*c = ((struct ws_slot *)arg)->c;

	(void)ctx;
	if (c->dead || c->state == WS_DONE)
		return;
	if (c->state == WS_OPEN && m->opcode == WSLAY_TEXT_FRAME) {
		if (c->cb.on_text != NULL)
			c->cb.on_text(c->arg, m->msg_length > 0 ?
			    (const char *)m->msg : "", m->msg_length);
	} else if (c->state == WS_OPEN && m->opcode == WSLAY_BINARY_FRAME)
		ws_start_close(c, WSLAY_CODE_UNSUPPORTED_DATA,
		    "binary frames are not supported");
	/*
	 * Send what this message caused (wslay's pong or close answer, the
	 * owner's answers) before wslay reads on: wslay sends a close frame
	 * queued later before everything else, and the rest never.
	 */
	ws_flush(c);
}

/*
 * Run wslay's receive (when rd is set) and send until neither moves a
 * byte.  Reading stops while ws_unsent is over WS_HIGH_WATER; input that
 * wslay will not read any more is thrown away.
 */
static void
ws_pump(struct ws_conn *c, int rd)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 inlen, outlen;
	int		 progress, r;

	do {
		progress = 0;
		if (c->dead || c->state == WS_DONE)
			return;
		if (c->paused && (c->state != WS_OPEN ||
		    ws_unsent(c) <= WS_READ_RESUME))
			ws_resume(c);
		inlen = evbuffer_get_length(in);
		if (rd && inlen > 0 && !c->paused) {
			if (ws_wslay(c) == NULL) {
				c->code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
				ws_finish(c);
				return;
			}
			if (!wslay_event_get_read_enabled(c->wslay) ||
			    c->bad_frame || c->linger)
				evbuffer_drain(in, inlen);
			else if (c->state == WS_OPEN &&
			    ws_unsent(c) > WS_HIGH_WATER)
				ws_pause(c);
			else {
				r = wslay_event_recv(c->wslay);
				if (c->dead || c->state == WS_DONE)
					return;
				if (c->bad_frame || r != 0) {
					wslay_event_shutdown_read(c->wslay);
					ws_start_close(c, r == WSLAY_ERR_NOMEM ?
					    WSLAY_CODE_INTERNAL_SERVER_ERROR :
					    WSLAY_CODE_PROTOCOL_ERROR, NULL);
				}
				if (evbuffer_get_length(in) != inlen)
					progress = 1;
			}
		}
		outlen = evbuffer_get_length(out);
		if (c->wslay != NULL && wslay_event_want_write(c->wslay) &&
		    outlen < WS_HIGH_WATER) {
			if (wslay_event_send(c->wslay) != 0) {
				if (c->code == 0)
					c->code =
					    WSLAY_CODE_INTERNAL_SERVER_ERROR;
				ws_finish(c);
				return;
			}
			if (evbuffer_get_length(out) != outlen)
				progress = 1;
		}
	} while (progress);
}

/*
 * After pumping: notice a close queued by wslay, and finish once the
 * close handshake is through and the output is empty.
 */
static void
ws_settle(struct ws_conn *c)
{
	wslay_event_context_ptr	 w = c->wslay;
	int			 fd;

	if (c->dead || c->state == WS_DONE || w == NULL)
		return;
	if (c->state == WS_OPEN && (!wslay_event_get_read_enabled(w) ||
	    wslay_event_get_close_sent(w)))
		ws_enter_closing(c);
	if (c->state != WS_CLOSING ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;
	if (wslay_event_get_close_sent(w)) {
		if (wslay_event_get_close_received(w))
			ws_finish(c);
		else if (!wslay_event_get_read_enabled(w) && !c->linger) {
			/* Failed: our close is out, wait for the peer's EOF. */
			c->linger = 1;
			if ((fd = bufferevent_getfd(c->bev)) != -1)
				shutdown(fd, SHUT_WR);
		}
	} else if (!wslay_event_want_write(w))
		ws_finish(c);	/* the close frame can never go out */
}

static void
ws_check_drain(struct ws_conn *c)
{
	if (c->dead || c->state != WS_OPEN || !c->sent || ws_unsent(c) > 0)
		return;
	c->sent = 0;
	if (c->cb.on_drain != NULL)
		c->cb.on_drain(c->arg);
}

static void
ws_destroy(struct ws_conn *c)
{
	if (c->tick != NULL)
		event_free(c->tick);
	if (c->done != NULL)
		event_free(c->done);
	if (c->slot != NULL)
		ws_slot_free(c->slot);
	bufferevent_free(c->bev);
	free(c);
}

/*
 * Make wslay's context if the connection has none; NULL when out of
 * memory.
 */
static wslay_event_context_ptr
ws_wslay(struct ws_conn *c)
{
	struct wslay_event_callbacks	 wcb = {
		ws_recv_cb, ws_send_cb, NULL, NULL, NULL, NULL, ws_msg_cb
	};
	struct ws_slot			*slot;

	if (c->wslay != NULL)
		return c->wslay;
	if (c->pool != NULL && (slot = c->pool->free) != NULL) {
		c->pool->free = slot->next;
		c->pool->n--;
		c->pool->reused++;
	} else {
		if ((slot = calloc(1, sizeof(*slot))) == NULL)
			return NULL;
		if (wslay_event_context_server_init(&slot->w, &wcb,
		    slot) != 0) {
			free(slot);
			return NULL;
		}
	}
	slot->c = c;
	slot->next = NULL;
	wslay_event_config_set_max_recv_msg_length(slot->w, c->max_msg);
	c->slot = slot;
	c->wslay = slot->w;
	return c->wslay;
}

static void
ws_slot_free(struct ws_slot *slot)
{
	wslay_event_context_free(slot->w);
	free(slot);
}

void
ws_pool_clear(struct ws_pool *pool)
{
	struct ws_slot	*slot;

	while ((slot = pool->free) != NULL) {
		pool->free = slot->next;
		ws_slot_free(slot);
	}
	pool->n = 0;
}

/*
 * Free wslay's context when it holds nothing that a new one would not:
 * the connection is open, the guard is at a frame boundary outside a
 * fragmented message, and nothing is queued or half sent.
 */
static void
ws_rest(struct ws_conn *c)
{
	if (c->wslay == NULL || c->state != WS_OPEN || c->bad_frame ||
	    c->g_left > 0 || c->g_have > 0 || c->g_frag ||
	    wslay_event_get_queued_msg_count(c->wslay) > 0 ||
	    wslay_event_want_write(c->wslay))
		return;
	/*
	 * At rest, a context is as it would be on this connection's next
	 * message: another connection may take it as it is.
	 */
	c->slot->c = NULL;
	if (c->pool != NULL && c->pool->n < WS_POOL_MAX) {
		c->slot->next = c->pool->free;
		c->pool->free = c->slot;
		c->pool->n++;
	} else
		ws_slot_free(c->slot);
	c->slot = NULL;
	c->wslay = NULL;
}

/*
 * The proceed loop.  from_event is set when called from a bufferevent
 * callback: only then may owner callbacks (on_text, on_drain) run.
 * Nested calls (ws_send_text from on_text) only ask the running loop for
 * another round.  When ws_free was called from a callback, c is freed on
 * the way out: callers must not touch c afterwards.
 */
static void
ws_proceed(struct ws_conn *c, int from_event)
{
	if (c->busy) {
		c->again = 1;
		return;
	}
	c->busy = 1;
	do {
		c->again = 0;
		ws_pump(c, from_event);
		ws_settle(c);
		if (from_event)
			ws_check_drain(c);
	} while (c->again && !c->dead && c->state != WS_DONE);
	c->busy = 0;
	if (c->dead)
		ws_destroy(c);
	else
		ws_rest(c);
}

/* The code for on_closed: ours, else the peer's, else wslay's, else 1006. */
static uint16_t
ws_final_code(const struct ws_conn *c)
{
	if (c->code != 0)
		return c->code;
	if (c->wslay == NULL)
		return WSLAY_CODE_ABNORMAL_CLOSURE;
	if (wslay_event_get_close_received(c->wslay))
		return wslay_event_get_status_code_received(c->wslay);
	if (wslay_event_get_close_sent(c->wslay))
		return wslay_event_get_status_code_sent(c->wslay);
	return WSLAY_CODE_ABNORMAL_CLOSURE;
}

static void
ws_finish(struct ws_conn *c)
{
	int	 fd;

	if (c->state == WS_DONE)
		return;
	c->code = ws_final_code(c);
	c->state = WS_DONE;
	event_del(c->tick);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->wslay != NULL) {
		wslay_event_shutdown_read(c->wslay);
		wslay_event_shutdown_write(c->wslay);
	}
	if ((fd = bufferevent_getfd(c->bev)) != -1)
		shutdown(fd, SHUT_RDWR);
	event_active(c->done, EV_TIMEOUT, 1);
}

static void
ws_readcb(struct bufferevent *bev, void *arg)
{
	struct ws_conn	*c = arg;

	(void)bev;
	if (c->state == WS_DONE)
		return;
	c->last_recv = mono_us();
	ws_proceed(c, 1);
}

static void
ws_writecb(struct bufferevent *bev, void *arg)
{
	struct ws_conn	*c = arg;

	(void)bev;
	if (c->state == WS_DONE)
		return;
	ws_proceed(c, 1);
}

static void
ws_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct ws_conn	*c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		ws_finish(c);
}

static void
ws_tickcb(evutil_socket_t fd, short what, void *arg)
{
	struct ws_conn		*c = arg;
	struct wslay_event_msg	 ping = { WSLAY_PING, NULL, 0 };
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	int64_t			 now = mono_us();

	(void)fd;
	(void)what;
	if (c->state == WS_CLOSING) {
		if (now >= c->close_by)
			ws_finish(c);
		else
			ws_arm(c, c->close_by - now);
		return;
	}
	if (c->state != WS_OPEN)
		return;
	if (c->idle_us > 0 && now - c->last_recv >= c->idle_us) {
		ws_close(c, WSLAY_CODE_POLICY_VIOLATION, "idle");
		return;
	}
	if (c->ping_us > 0 && now >= c->next_ping) {
		c->next_ping = now + c->ping_us;
		/* A ping that could not be written now would only queue. */
		if (evbuffer_get_length(out) < WS_HIGH_WATER &&
		    ws_wslay(c) != NULL)
			wslay_event_queue_msg(c->wslay, &ping);
		ws_schedule(c, now);
		ws_proceed(c, 0);
		return;
	}
	ws_schedule(c, now);
}

static void
ws_donecb(evutil_socket_t fd, short what, void *arg)
{
	struct ws_conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->cb.on_closed != NULL)
		c->cb.on_closed(c->arg, c->code);
}

struct ws_conn *
ws_new(struct event_base *base, struct bufferevent *bev,
    const struct ws_limits *lim, const struct ws_callbacks *cb, void *arg)
{
	struct ws_conn			*c;
	int64_t				 now;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->bev = bev;
	c->cb = *cb;
	c->arg = arg;
	c->ping_us = lim->ping_interval_us > 0 ? lim->ping_interval_us : 0;
	c->idle_us = lim->idle_timeout_us > 0 ? lim->idle_timeout_us : 0;
	c->close_us = lim->close_timeout_us > 0 ? lim->close_timeout_us :
	    WS_CLOSE_TIMEOUT_US;
	c->g_need = 2;
	c->state = WS_OPEN;
	c->max_msg = lim->max_message_bytes > 0 ? lim->max_message_bytes :
	    WS_DEFAULT_MAX_MESSAGE;
	c->pool = lim->pool;
	if ((c->tick = event_new(base, -1, 0, ws_tickcb, c)) == NULL ||
	    (c->done = event_new(base, -1, 0, ws_donecb, c)) == NULL)
		goto fail;

	bufferevent_setcb(bev, ws_readcb, ws_writecb, ws_eventcb, c);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_setwatermark(bev, EV_WRITE, WS_WRITE_LOW, 0);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) == -1)
		goto fail;
	now = mono_us();
	c->last_recv = now;
	c->next_ping = now + c->ping_us;
	ws_schedule(c, now);
	/* Bytes after the HTTP head: read them from the loop, not here. */
	ws_read_trigger(c);
	return c;
 fail:
	if (c != NULL) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		ws_destroy(c);
	} else
		bufferevent_free(bev);
	return NULL;
}

/*
 * Write a text message as one frame straight to the socket (what it does
 * not take to the output), when wslay holds nothing that must go first
 * and the whole frame fits under WS_HIGH_WATER: no context, no copy in
 * wslay's queue, and on an idle connection no loop turn.  1 when written,
 * 0 when wslay must queue it, -1 when the output could not take it (the
 * connection is then dropped: half a frame may be in it).
 */
static int
ws_send_direct(struct ws_conn *c, const char *msg, size_t len)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	struct send_part	 part[2];
	uint8_t		 hdr[WS_HDR_LEN];
	size_t		 hlen, i;

	if (c->wslay != NULL && (wslay_event_want_write(c->wslay) ||
	    wslay_event_get_queued_msg_count(c->wslay) > 0))
		return 0;
	if (len > WS_HIGH_WATER || evbuffer_get_length(out) + WS_HDR_LEN +
	    len > WS_HIGH_WATER)
		return 0;
	hdr[0] = 0x80 | WSLAY_TEXT_FRAME;	/* FIN, text; unmasked */
	if (len < 126) {
		hdr[1] = (uint8_t)len;
		hlen = 2;
	} else if (len < 65536) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		hlen = 4;
	} else {
		hdr[1] = 127;
		for (i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hlen = 10;
	}
	part[0].data = hdr;
	part[0].len = hlen;
	part[1].data = msg;
	part[1].len = len;
	if (send_now(c->bev, part, 2) == -1) {
		ws_abort(c, WSLAY_CODE_INTERNAL_SERVER_ERROR);
		return -1;
	}
	return 1;
}

int
ws_send_text(struct ws_conn *c, const char *msg, size_t len)
{
	struct wslay_event_msg	 m;
	int			 r;

	if (c->dead || c->state != WS_OPEN)
		return -1;
	if ((r = ws_send_direct(c, msg, len)) != 0) {
		if (r == 1)
			c->sent = 1;
		return r == 1 ? 0 : -1;
	}
	m.opcode = WSLAY_TEXT_FRAME;
	m.msg = (const uint8_t *)msg;
	m.msg_length = len;
	if (ws_wslay(c) == NULL) {
		ws_abort(c, WSLAY_CODE_INTERNAL_SERVER_ERROR);
		return -1;
	}
	if (wslay_event_queue_msg(c->wslay, &m) != 0)
		return -1;
	c->sent = 1;
	/* At once, even from on_text: a close queued next would pass it. */
	ws_flush(c);
	ws_proceed(c, 0);
	return 0;
}

void
ws_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	if (c->dead || c->state != WS_OPEN)
		return;
	ws_start_close(c, code, reason);
	ws_proceed(c, 0);
}

void
ws_abort(struct ws_conn *c, uint16_t code)
{
	struct linger	 reset = { 1, 0 };
	struct evbuffer	*out;
	int		 fd;

	if (c->dead || c->state == WS_DONE)
		return;
	/*
	 * What the peer has not read is thrown away, the part the socket
	 * already took too: closed, the socket sends a reset instead of
	 * keeping up to its send buffer (megabytes) for a reader that may
	 * never read it.
	 */
	if ((fd = bufferevent_getfd(c->bev)) != -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset,
		    sizeof(reset));
	c->code = code != 0 ? code : WSLAY_CODE_ABNORMAL_CLOSURE;
	ws_finish(c);
	out = bufferevent_get_output(c->bev);
	evbuffer_drain(out, evbuffer_get_length(out));
}

size_t
ws_unsent(struct ws_conn *c)
{
	size_t	 n;

	n = evbuffer_get_length(bufferevent_get_output(c->bev));
	/* Once the close frame is out, what wslay still holds never goes. */
	if (c->wslay != NULL && wslay_event_get_write_enabled(c->wslay))
		n += wslay_event_get_queued_msg_length(c->wslay);
	return n;
}

int
ws_closing(struct ws_conn *c)
{
	return c->state != WS_OPEN;
}

void
ws_free(struct ws_conn *c)
{
	if (c == NULL)
		return;
	if (c->busy) {
		/* Inside on_text or on_drain: ws_proceed frees on return. */
		c->dead = 1;
		event_del(c->tick);
		event_del(c->done);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		if (c->wslay != NULL)
			wslay_event_shutdown_read(c->wslay);
		return;
	}
	ws_destroy(c);
}
