/*
 * Listening sockets and accepting on them (see listen.h): a Unix socket
 * that refuses to replace one a live daemon still answers on, a TCP
 * socket, and the accept loop with its pause when descriptors run out.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "util.h"

/*
 * Create a listening Unix socket at path with the given mode, refusing to
 * replace one that a live daemon still answers on.  The descriptor, or -1
 * (logged).
 */
int
listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un	 sun;
	mode_t			 old;
	int			 fd;

	if (unix_addr(&sun, path) == -1) {
		log_warnx("%s: socket path too long", path);
		return -1;
	}
	if (unix_answers(path)) {
		log_warnx("%s: another daemon is answering on it", path);
		errno = EADDRINUSE;
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		log_warn("unlink %s", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("socket %s", path);
		return -1;
	}
	old = umask(0777 & ~mode);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("bind %s", path);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, mode) == -1 || listen(fd, LISTEN_BACKLOG) == -1) {
		log_warn("%s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A listening TCP socket on host:port (numeric), with SO_REUSEADDR and,
 * when reuseport is set, SO_REUSEPORT so that several daemons can share
 * the port.  The descriptor, or -1 (logged).
 */
int
listen_tcp(const char *host, const char *port, int reuseport)
{
	struct addrinfo	 hints, *res = NULL;
	int		 fd = -1, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
		log_warnx("bad listen address %s:%s", host, port);
		return -1;
	}
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, res->ai_protocol)) == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
	    sizeof(one)) == -1)
		goto fail;
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	log_warn("listen on %s:%s", host, port);
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

static void
listen_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listen_sock	*ls = arg;

	(void)l;
	(void)sa;
	(void)salen;
	if (ls->unsaid > 0) {
		log_info("%s: accepting again after %llu pauses", ls->name,
		    (unsigned long long)ls->unsaid);
		ls->unsaid = 0;
	}
	ls->cb(fd, ls->arg);
}

static void
listen_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct listen_sock	*ls = arg;

	(void)fd;
	(void)ev;
	ls->paused = 0;
	if (ls->enabled)
		evconnlistener_enable(ls->lev);
}

/*
 * Out of descriptors or memory: stop accepting for LISTEN_PAUSE_US.  The
 * first pause is logged, then one line per LISTEN_LOG_INTERVAL_US at
 * most, with the number of pauses in between.
 */
static void
listen_error(struct evconnlistener *l, void *arg)
{
	struct listen_sock	*ls = arg;
	struct timeval		 tv = { 0, LISTEN_PAUSE_US };
	int			 e = EVUTIL_SOCKET_ERROR();
	int64_t			 now = mono_us();

	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_warnx("%s: accept: %s", ls->name, strerror(e));
		return;
	}
	evconnlistener_disable(l);
	ls->paused = 1;
	ls->pauses++;
	ls->unsaid++;
	evtimer_add(ls->resume_ev, &tv);
	if (ls->said_us == 0 || now - ls->said_us >= LISTEN_LOG_INTERVAL_US) {
		log_warnx("%s: accept: %s: pausing (%llu times)", ls->name,
		    strerror(e), (unsigned long long)ls->unsaid);
		ls->said_us = now;
	}
}

/*
 * Accept on the listening socket fd (taken over: closed by listen_free
 * or on failure) and call cb with each connection.  Accepting starts at
 * once.  The listener, or NULL.
 */
struct listen_sock *
listen_start(struct event_base *base, int fd, const char *name, listen_cb cb,
    void *arg)
{
	struct listen_sock	*ls;

	assert(base != NULL && fd >= 0 && name != NULL && cb != NULL);
	ls = xcalloc(1, sizeof(*ls));
	ls->base = base;
	ls->cb = cb;
	ls->arg = arg;
	strlcpy_tv(ls->name, name, sizeof(ls->name));
	if ((ls->resume_ev = evtimer_new(base, listen_resume, ls)) == NULL) {
		close(fd);
		free(ls);
		return NULL;
	}
	/* Backlog 0: fd is listening already. */
	ls->lev = evconnlistener_new(base, listen_accept, ls,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ls->lev == NULL) {
		log_warnx("%s: cannot accept on it", name);
		close(fd);
		event_free(ls->resume_ev);
		free(ls);
		return NULL;
	}
	evconnlistener_set_error_cb(ls->lev, listen_error);
	ls->enabled = 1;
	return ls;
}

/* Accept again (after a pause for descriptors, once that is over). */
void
listen_enable(struct listen_sock *ls)
{
	ls->enabled = 1;
	if (!ls->paused)
		evconnlistener_enable(ls->lev);
}

/* Stop accepting; pending connections wait in the backlog. */
void
listen_disable(struct listen_sock *ls)
{
	ls->enabled = 0;
	evconnlistener_disable(ls->lev);
}

/* Close the socket.  NULL is allowed. */
void
listen_free(struct listen_sock *ls)
{
	if (ls == NULL)
		return;
	evconnlistener_free(ls->lev);
	event_free(ls->resume_ev);
	free(ls);
}
