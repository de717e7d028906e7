/*
 * gatewayd: the WebSocket gateway.  Start-up order: parse flags and the
 * configuration file; bind the listening socket (all that needs
 * privilege); drop to the unprivileged user; restrict the process further
 * where the system allows; set up signal events; wait for the database to
 * exist and connect to writerd; run the event loop.  It never forks.
 */
#include <arpa/inet.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "gatewayd.h"
#include "log.h"

#define GATEWAYD_DEFAULT_LISTEN	"127.0.0.1:7878"
#define GATEWAYD_TICK_US	(500 * 1000)
#define GATEWAYD_STOP_GRACE	3	/* seconds to close clients */

static void
usage(void)
{
	fprintf(stderr, "usage: gatewayd [-dv] [-f CONFIG] [-r DIR] "
	    "[-l ADDR:PORT] [-u USER]\n");
	exit(1);
}

/* "127.0.0.1:7878", "[::1]:7878" → host, port. */
static int
split_listen(const char *s, char **host, char **port)
{
	const char	*colon;
	size_t		 hl;

	if (s[0] == '[') {
		if ((colon = strstr(s, "]:")) == NULL)
			return -1;
		*host = xstrndup(s + 1, (size_t)(colon - s - 1));
		*port = xstrdup(colon + 2);
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - s);
		*host = xstrndup(s, hl);
		*port = xstrdup(colon + 1);
	}
	return (*host)[0] != '\0' && (*port)[0] != '\0' ? 0 : -1;
}

static int
is_loopback(const char *host)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

static void
stop_now(evutil_socket_t fd, short ev, void *arg)
{
	struct gateway	*gw = arg;

	(void)fd;
	(void)ev;
	event_base_loopexit(gw->base, NULL);
}

void
gateway_stop(struct gateway *gw)
{
	struct session	*s, *tmp;
	struct timeval	 tv = { GATEWAYD_STOP_GRACE, 0 };

	if (gw->stopping)
		return;
	log_info("stopping: closing %zu connections", gw->nsessions);
	listener_stop(gw);
	upstream_stop(gw);
	TAILQ_FOREACH_SAFE(s, &gw->sessions, entry, tmp)
		session_close(s, 1001, "server shutting down");
	if (gw->nsessions == 0)
		event_base_loopexit(gw->base, NULL);
	else
		event_base_once(gw->base, -1, EV_TIMEOUT, stop_now, gw, &tv);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	if (sig == SIGHUP) {
		log_reopen();
		return;
	}
	gateway_stop(arg);
}

static void
on_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct gateway	*gw = arg;
	struct session	*s, *tmp;
	int64_t		 now = mono_us();

	(void)fd;
	(void)ev;
	if (gw->st == NULL && query_open_store(gw) == 0)
		query_schedule_refresh(gw);
	TAILQ_FOREACH_SAFE(s, &gw->sessions, entry, tmp)
		session_tick(s, now);
	if (now - gw->last_stats_us >= GW_STATS_INTERVAL_US) {
		gw->last_stats_us = now;
		upstream_send_stats(gw);
	}
}

int
main(int argc, char *argv[])
{
	struct gateway	 gw;
	char		 err[512], *user = NULL, *dir = NULL, *conf_path = NULL;
	const char	*listen_addr = GATEWAYD_DEFAULT_LISTEN;
	int		 ch, debug = 0, verbose = 0, i;
	int		 sigs[4] = { SIGTERM, SIGINT, SIGHUP, 0 };
	uid_t		 uid = 0;
	gid_t		 gid = 0;
	struct timeval	 tick = { 0, GATEWAYD_TICK_US };

	signals_unblock();
	gateway_init(&gw);
	while ((ch = getopt(argc, argv, "df:l:r:u:v")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			conf_path = optarg;
			break;
		case 'l':
			listen_addr = optarg;
			break;
		case 'r':
			dir = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("gatewayd", debug, verbose);
	if (conf_path != NULL &&
	    config_load(&gw.conf, conf_path, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (split_listen(listen_addr, &gw.listen_host, &gw.listen_port) == -1)
		fatalx("bad listen address %s (ADDR:PORT)", listen_addr);
	if (strcmp(gw.listen_host, "localhost") == 0) {
		free(gw.listen_host);
		gw.listen_host = xstrdup("127.0.0.1");
	}
	if (!is_loopback(gw.listen_host) && gw.conf.token == NULL)
		fatalx("listening on %s needs a token (token_file in the "
		    "configuration)", gw.listen_host);
	if (user != NULL) {
		if (geteuid() != 0)
			fatalx("-u needs root");
		if (user_lookup(user, &uid, &gid) == -1)
			fatalx("unknown user %s", user);
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(gw.gateway_id, sizeof(gw.gateway_id), "gw-%d-%s",
	    (int)getpid(), gw.listen_port);
	if (gateway_setup(&gw, dir) == -1)
		fatalx("cannot set up the gateway");

	/* Everything that needs privilege. */
	if (listener_start(&gw) == -1)
		fatalx("cannot listen on %s", listen_addr);
	if (static_open(&gw) == -1)
		fatalx("cannot open static_dir %s", gw.conf.static_dir);
	if (user != NULL)
		drop_privileges(uid, gid);
	/* From here on, of the file system only the state directory. */
	/* (and the files of static_dir, for reading). */
	sandbox_restrict(&gw);

	for (i = 0; sigs[i] != 0; i++) {
		gw.sig_ev[i] = evsignal_new(gw.base, sigs[i], on_signal, &gw);
		evsignal_add(gw.sig_ev[i], NULL);
	}
	gw.timer_ev = event_new(gw.base, -1, EV_PERSIST, on_tick, &gw);
	evtimer_add(gw.timer_ev, &tick);
	if (query_open_store(&gw) == 0)
		query_schedule_refresh(&gw);
	else
		log_info("waiting for the database at %s", gw.dbpath);
	upstream_start(&gw);
	log_info("listening on %s (%s)", listen_addr, gw.gateway_id);

	event_base_dispatch(gw.base);

	gateway_free(&gw);
	log_info("stopped");
	return 0;
}
