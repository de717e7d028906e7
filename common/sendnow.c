/*
 * Sending on a bufferevent's socket at once, a message or a loop turn's
 * messages (see sendnow.h).
 */
#include <sys/types.h>
#include <sys/uio.h>

#include <assert.h>
#include <errno.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "sendnow.h"

ssize_t
send_now(struct bufferevent *bev, const struct send_part *p, int n)
{
	struct evbuffer	*out = bufferevent_get_output(bev);
	struct iovec	 iov[SEND_NOW_MAX_PARTS];
	size_t		 total = 0, skip;
	ssize_t		 w = 0;
	int		 fd, i;

	assert(n > 0 && n <= SEND_NOW_MAX_PARTS);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)(uintptr_t)p[i].data;
		iov[i].iov_len = p[i].len;
		total += p[i].len;
	}
	if (total == 0)
		return 0;
	fd = bufferevent_getfd(bev);
	if (fd != -1 && evbuffer_get_length(out) == 0) {
		do
			w = writev(fd, iov, n);
		while (w == -1 && errno == EINTR);
		/* Would block, or failed: the bufferevent sends (or says). */
		if (w == -1)
			w = 0;
	}
	if ((size_t)w == total)
		return w;
	skip = (size_t)w;
	for (i = 0; i < n; i++) {
		if (skip >= p[i].len) {
			skip -= p[i].len;
			continue;
		}
		if (evbuffer_add(out, (const char *)p[i].data + skip,
		    p[i].len - skip) == -1)
			return -1;
		skip = 0;
	}
	return w;
}

static void
send_batch_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct send_batch	*b = arg;
	struct evbuffer		*out;
	int			 sfd;

	(void)fd;
	(void)ev;
	if (b->bev == NULL) {
		evbuffer_drain(b->pending, evbuffer_get_length(b->pending));
		return;
	}
	out = bufferevent_get_output(b->bev);
	sfd = bufferevent_getfd(b->bev);
	if (sfd != -1 && evbuffer_get_length(out) == 0)
		while (evbuffer_get_length(b->pending) > 0 &&
		    evbuffer_write(b->pending, sfd) > 0)
			;
	/* What the socket did not take: the bufferevent sends (or says). */
	if (evbuffer_get_length(b->pending) > 0)
		evbuffer_add_buffer(out, b->pending);
}

int
send_batch_init(struct send_batch *b, struct event_base *base)
{
	b->bev = NULL;
	b->pending = evbuffer_new();
	b->flush_ev = event_new(base, -1, 0, send_batch_flush, b);
	if (b->pending == NULL || b->flush_ev == NULL) {
		send_batch_free(b);
		return -1;
	}
	return 0;
}

void
send_batch_attach(struct send_batch *b, struct bufferevent *bev)
{
	b->bev = bev;
	if (b->pending != NULL)
		evbuffer_drain(b->pending, evbuffer_get_length(b->pending));
}

int
send_batch_add(struct send_batch *b, const void *data, size_t len)
{
	if (b->bev == NULL || evbuffer_add(b->pending, data, len) == -1)
		return -1;
	event_active(b->flush_ev, EV_TIMEOUT, 0);	/* once, if twice */
	return 0;
}

void
send_batch_free(struct send_batch *b)
{
	if (b->flush_ev != NULL)
		event_free(b->flush_ev);
	if (b->pending != NULL)
		evbuffer_free(b->pending);
	b->flush_ev = NULL;
	b->pending = NULL;
	b->bev = NULL;
}
