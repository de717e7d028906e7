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

#endif
