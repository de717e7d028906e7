/*
 * WebSocket connections over a libevent bufferevent, with wslay doing the
 * framing (RFC 6455, server side): masking rules, fragmentation, control
 * frames, UTF-8 checks of text messages, close codes.  This module is the
 * glue: wslay's recv/send callbacks over the bufferevent, the send side
 * returning WOULDBLOCK above a high-water mark, one proceed loop that runs
 * until neither direction makes progress, pings, the idle timeout and the
 * close handshake with a timer.
 */
#ifndef TINYVEX_WS_H
#define TINYVEX_WS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#define WS_HIGH_WATER		(256 * 1024)	/* bufferevent output above
						   which wslay is told
						   WOULDBLOCK */
#define WS_CLOSE_TIMEOUT_US	(3 * 1000000)	/* wait for the peer's close */

#define WS_POOL_MAX		64	/* wslay contexts kept for reuse */

struct ws_slot;

/*
 * wslay contexts of connections at rest, kept for the next connection
 * that needs one: making one costs about 11,700 instructions, mostly
 * zeroing its 8.8 KiB.  At most WS_POOL_MAX.
 */
struct ws_pool {
	struct ws_slot	*free;		/* a list through ws_slot */
	size_t		 n;
	uint64_t	 reused;	/* contexts taken from the list */
};

struct ws_limits {
	uint64_t	 max_message_bytes;	/* larger message: close 1009 */
	int64_t		 ping_interval_us;	/* WebSocket ping every … */
	int64_t		 idle_timeout_us;	/* nothing received: 1008 */
	int64_t		 close_timeout_us;	/* 0: WS_CLOSE_TIMEOUT_US */
	struct ws_pool	*pool;			/* NULL: contexts are freed */
};

struct ws_callbacks {
	/* A complete text message (valid UTF-8, checked by wslay). */
	void	(*on_text)(void *arg, const char *msg, size_t len);
	/*
	 * The connection is finished: close handshake done or timed out,
	 * peer gone, protocol error, or a local ws_close completed.  code is
	 * the close code sent or received (1006 when the socket just
	 * dropped).  Called exactly once; the owner then calls ws_free
	 * (not from inside any other ws callback's stack: on_closed is
	 * always called from a deferred event, so ws_free is safe there).
	 */
	void	(*on_closed)(void *arg, uint16_t code);
	/*
	 * Unsent output (ws_unsent) fell to zero after having been above
	 * zero: the owner may send more.
	 */
	void	(*on_drain)(void *arg);
};

struct ws_conn;

/*
 * Take over bev (whose input may already hold bytes after the HTTP head)
 * and speak WebSocket on it.  The ws_conn owns bev from now on.  Returns
 * NULL on allocation failure (bev is then freed).
 */
struct ws_conn	*ws_new(struct event_base *, struct bufferevent *bev,
		    const struct ws_limits *, const struct ws_callbacks *,
		    void *arg);
/* Queue one text message.  0, or -1 when the connection is closing. */
int		 ws_send_text(struct ws_conn *, const char *msg, size_t len);
/*
 * Start the close handshake with code (1000, 1001, 1008, 1011, 1013…);
 * on_closed follows when it completes or after WS_CLOSE_TIMEOUT_US.
 */
void		 ws_close(struct ws_conn *, uint16_t code, const char *reason);
/*
 * Drop at once: shut the socket without a close handshake (the slow
 * consumer case where a close frame cannot get out).  on_closed follows
 * with code, or 1006 when code is 0.
 */
void		 ws_abort(struct ws_conn *, uint16_t code);
/* Bytes queued and not yet written to the socket: wslay + bufferevent. */
size_t		 ws_unsent(struct ws_conn *);
/* 1 once a close was sent or received. */
int		 ws_closing(struct ws_conn *);
void		 ws_free(struct ws_conn *);
/* Free the contexts a pool holds. */
void		 ws_pool_clear(struct ws_pool *);

#endif
