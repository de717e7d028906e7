/*
 * Setting up and tearing down the gateway's process context, apart from
 * main(), so that a struct gateway can also live inside another program
 * (a test that drives sessions without a listener or a writer link).
 * gateway_init gives the defaults and empty lists, gateway_setup the
 * paths and the event base once the flags and the configuration are
 * known, and gateway_free releases what either of them or the event loop
 * left behind.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "gatewayd.h"
#include "log.h"

/* Defaults and empty lists; nothing is allocated. */
void
gateway_init(struct gateway *gw)
{
	memset(gw, 0, sizeof(*gw));
	config_defaults(&gw->conf);
	TAILQ_INIT(&gw->sessions);
	TAILQ_INIT(&gw->flushq);
	TAILQ_INIT(&gw->heldq);
	TAILQ_INIT(&gw->execs);
	TAILQ_INIT(&gw->dirtyq);
	TAILQ_INIT(&gw->up.waiting);
	TAILQ_INIT(&gw->static_xfers);
	gw->static_fd = -1;
}

/*
 * The state directory dir (NULL: the default) and the paths in it, the
 * Host/Origin/token policy from the configuration and listen_host, and
 * the event base.  0, or -1 when the writer's socket path is too long or
 * no event base could be made.
 */
int
gateway_setup(struct gateway *gw, const char *dir)
{
	struct sockaddr_un	 sun;

	gw->statedir = statedir_path(dir);
	gw->dbpath = path_join(gw->statedir, TINYVEX_DB_NAME);
	gw->writer_sock = path_join(gw->statedir, TINYVEX_WRITER_SOCK);
	if (unix_addr(&sun, gw->writer_sock) == -1) {
		log_warnx("%s: socket path too long", gw->writer_sock);
		return -1;
	}
	gw->policy.listen_host = gw->listen_host;
	gw->policy.origins = gw->conf.origins;
	gw->policy.norigins = gw->conf.norigins;
	gw->policy.token = gw->conf.token;
	gw->policy.static_files = gw->conf.static_dir != NULL;
	if ((gw->base = event_base_new()) == NULL) {
		log_warnx("event_base_new failed");
		return -1;
	}
	return 0;
}

/* Stop the writer link and the listener, free sessions and all. */
void
gateway_free(struct gateway *gw)
{
	size_t	 i;

	upstream_stop(gw);
	listener_stop(gw);
	while (!TAILQ_EMPTY(&gw->sessions))
		session_free(TAILQ_FIRST(&gw->sessions));
	ws_pool_clear(&gw->ws_pool);
	htab_free(&gw->session_tab);
	action_free(gw);
	static_close(gw);
	for (i = 0; i < nitems(gw->sig_ev); i++)
		if (gw->sig_ev[i] != NULL)
			event_free(gw->sig_ev[i]);
	if (gw->timer_ev != NULL)
		event_free(gw->timer_ev);
	if (gw->refresh_ev != NULL)
		event_free(gw->refresh_ev);
	if (gw->db_wait_ev != NULL)
		event_free(gw->db_wait_ev);
	store_close(gw->st);
	if (gw->base != NULL)
		event_base_free(gw->base);
	config_free(&gw->conf);
	query_shutdown(gw);
	buf_free(&gw->scratch);
	free(gw->listen_host);
	free(gw->listen_port);
	free(gw->dbpath);
	free(gw->writer_sock);
	free(gw->statedir);
	memset(gw, 0, sizeof(*gw));
}

/*
 * The gateway's scratch buffer, empty, for building one frame or message
 * that is sent (copied) before it is given back: taken, so that a user
 * reached from inside another finds it gone and starts its own.  Building
 * in it allocates nothing once it has grown to the usual size.
 */
void
gateway_scratch_take(struct gateway *gw, struct buf *b)
{
	*b = gw->scratch;
	buf_init(&gw->scratch);
	buf_reset(b);
}

/* Give b back, or free it when one is back already or it grew large. */
void
gateway_scratch_give(struct gateway *gw, struct buf *b)
{
	if (gw->scratch.data == NULL && b->cap <= GW_SCRATCH_KEEP) {
		gw->scratch = *b;
		buf_init(b);
	} else
		buf_free(b);
}
