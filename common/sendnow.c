/*
 * Sending on a bufferevent's socket at once (see sendnow.h).
 */
#include <sys/types.h>
#include <sys/uio.h>

#include <assert.h>
#include <errno.h>
#include <stdint.h>

#include <event2/buffer.h>

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
