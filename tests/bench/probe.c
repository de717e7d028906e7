/*
 * What one gateway connection is made of, measured in this process: the
 * heap that wslay's server context, a socket bufferevent and a libevent
 * event take (mallinfo2 before and after making PROBE_N of each), and the
 * allocated size of gatewayd's per-connection structures (their sizes
 * from its header, rounded up as malloc rounds them).  The scenario's
 * RSS steps say how much a connection costs; these say what it holds.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <wslay/wslay.h>

#include "bench.h"
#include "gatewayd.h"

#define PROBE_N		1000

static double
heap_used(void)
{
	struct mallinfo2	 mi = mallinfo2();

	return (double)mi.uordblks + (double)mi.hblkhd;
}

static size_t
alloc_size(size_t n)
{
	void	*p = calloc(1, n);
	size_t	 sz = malloc_usable_size(p) + sizeof(size_t);

	free(p);
	return sz;
}

static void
noop(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
}

void
probe_connection(struct result *r)
{
	struct wslay_event_callbacks	 cb;
	wslay_event_context_ptr		*ctx;
	struct bufferevent		**bev;
	struct event			**ev;
	struct event_base		*base;
	double				 h0;
	int				 i;

	memset(&cb, 0, sizeof(cb));
	ctx = xcalloc(PROBE_N, sizeof(*ctx));
	bev = xcalloc(PROBE_N, sizeof(*bev));
	ev = xcalloc(PROBE_N, sizeof(*ev));
	base = event_base_new();
	h0 = heap_used();
	for (i = 0; i < PROBE_N; i++)
		wslay_event_context_server_init(&ctx[i], &cb, NULL);
	res_fig(r, "  wslay server context (heap, measured)", "B",
	    (heap_used() - h0) / PROBE_N);
	h0 = heap_used();
	for (i = 0; i < PROBE_N; i++)
		bev[i] = bufferevent_socket_new(base, -1, 0);
	res_fig(r, "  libevent bufferevent (heap, measured)", "B",
	    (heap_used() - h0) / PROBE_N);
	h0 = heap_used();
	for (i = 0; i < PROBE_N; i++)
		ev[i] = event_new(base, -1, 0, noop, NULL);
	res_fig(r, "  libevent event (heap, measured)", "B",
	    (heap_used() - h0) / PROBE_N);
	res_fig(r, "  struct session (allocated)", "B",
	    (double)alloc_size(sizeof(struct session)));
	res_fig(r, "  struct exec (allocated)", "B",
	    (double)alloc_size(sizeof(struct exec)));
	res_fig(r, "  struct sub (in an array)", "B",
	    (double)sizeof(struct sub));
	for (i = 0; i < PROBE_N; i++) {
		wslay_event_context_free(ctx[i]);
		bufferevent_free(bev[i]);
		event_free(ev[i]);
	}
	event_base_free(base);
	free(ctx);
	free(bev);
	free(ev);
}
