/*
 * Accepting connections on a listening socket, for every daemon and every
 * socket it accepts on (writer.sock, control.sock, the WebSocket port).
 * Out of descriptors (EMFILE, ENFILE) or kernel memory, accept is paused
 * for LISTEN_PAUSE_US by a timer instead of being retried at once, which
 * would spin: the pending connection keeps the socket readable.  The
 * pause is logged at most once every LISTEN_LOG_INTERVAL_US.
 */
#ifndef TINYVEX_LISTEN_H
#define TINYVEX_LISTEN_H

#include <sys/types.h>

#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#define LISTEN_BACKLOG		1024	/* connections not yet accepted */
#define LISTEN_PAUSE_US		(100 * 1000)	/* accept paused, EMFILE */
#define LISTEN_LOG_INTERVAL_US	(10 * 1000 * 1000)	/* between lines */
#define LISTEN_NAME_MAX		63	/* bytes of a socket's log name */

/* Called with each accepted descriptor (non-blocking, close-on-exec). */
typedef void	(*listen_cb)(int fd, void *arg);

/* One listening socket. */
struct listen_sock {
	struct event_base	*base;
	struct evconnlistener	*lev;
	struct event		*resume_ev;	/* ends a pause */
	listen_cb		 cb;
	void			*arg;
	char			 name[LISTEN_NAME_MAX + 1];	/* for logs */
	int			 enabled;	/* wanted by the owner */
	int			 paused;	/* out of descriptors */
	uint64_t		 pauses;	/* since it was started */
	uint64_t		 unsaid;	/* pauses not logged yet */
	int64_t			 said_us;	/* mono_us of the last line */
};

int	 listen_unix(const char *path, mode_t mode);
int	 listen_tcp(const char *host, const char *port, int reuseport);
struct listen_sock *listen_start(struct event_base *, int fd,
	    const char *name, listen_cb, void *arg);
void	 listen_enable(struct listen_sock *);
void	 listen_disable(struct listen_sock *);
void	 listen_free(struct listen_sock *);

#endif
