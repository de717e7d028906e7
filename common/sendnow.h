/*
 * Sending on a bufferevent's socket at once.  A bufferevent queues what is
 * written and sends it from the loop: it arms its write event when the
 * output becomes non-empty (epoll_ctl), waits for the socket to be
 * writable (a loop turn), writes, and disarms the event (epoll_ctl again)
 * once the output is empty.  For a small message on an idle connection
 * that is three system calls and a loop turn more than the one write that
 * sends it.  send_now writes to the socket first when nothing is queued
 * before it, and queues only what the socket does not take, so the order
 * of the bytes is the order of the calls.
 */
#ifndef TINYVEX_SENDNOW_H
#define TINYVEX_SENDNOW_H

#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

/* At most this many parts in one call. */
#define SEND_NOW_MAX_PARTS	4

struct send_part {
	const void	*data;
	size_t		 len;
};

/*
 * Send the parts in order: written to the socket while the output is
 * empty and the socket takes them, queued on the output from the first
 * byte it does not take.  A socket that fails (reset, closed) is left to
 * the bufferevent, which reports it when it writes what was queued.
 * Returns the bytes written at once, or -1 when the output could not
 * take the rest (out of memory).
 */
ssize_t	 send_now(struct bufferevent *, const struct send_part *, int);

/*
 * Messages to one busy peer, gathered over a loop turn and written
 * together once the turn's callbacks have run: one write for all of them,
 * and, when the socket takes them, no write event armed.  Used where many
 * messages a turn go down one link (a gateway's link to writerd), where a
 * write per message would cost more than the bufferevent's one writev.
 */
struct send_batch {
	struct bufferevent	*bev;		/* NULL: nowhere to send */
	struct evbuffer		*pending;	/* added this turn */
	struct event		*flush_ev;	/* active while pending */
};

/* 0, or -1 when out of memory. */
int	 send_batch_init(struct send_batch *, struct event_base *);
/* Send to bev from now on (NULL: nowhere); what was pending is dropped. */
void	 send_batch_attach(struct send_batch *, struct bufferevent *);
/* 0, or -1 when there is nowhere to send or out of memory. */
int	 send_batch_add(struct send_batch *, const void *, size_t);
void	 send_batch_free(struct send_batch *);

#endif
