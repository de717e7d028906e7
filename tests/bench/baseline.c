/*
 * The client side of the broadcaster baseline: starting
 * tinyvex-bench-bcast on a free port, opening WebSocket connections to it
 * with the same wsc code the Tinyvex clients use, and the frame text a
 * transition carrying one value has at the least under the wire contract
 * (so that the baseline sends frames of the size Tinyvex must send, fixed
 * by the contract rather than by how Tinyvex builds them).
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "log.h"

#define BCAST_START_US		(5 * 1000000)

static int
port_open(int port)
{
	struct sockaddr_in	 sin;
	int			 fd, rc;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return rc == 0;
}

int
bcast_start(struct bench *b, int *port, pid_t *pid)
{
	char	 p[16];
	char	*argv[3];
	int64_t	 deadline = mono_us() + BCAST_START_US;

	if ((*port = free_port()) == -1)
		return -1;
	snprintf(p, sizeof(p), "%d", *port);
	argv[0] = b->bcast;
	argv[1] = p;
	argv[2] = NULL;
	if ((*pid = spawn(b->bcast, argv, NULL)) == -1)
		return -1;
	while (!port_open(*port)) {
		if (mono_us() > deadline) {
			log_warnx("tinyvex-bench-bcast did not start");
			bcast_stop(*pid);
			return -1;
		}
		usleep(1000);
	}
	return 0;
}

void
bcast_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	reap(pid, 5000, NULL, NULL);
}

/*
 * The least a tinyvex/transition frame carrying value_json as the new
 * value of one query is: the envelope of the wire contract with versions
 * and serverTs at today's magnitude.
 */
void
transition_like(struct buf *b, const char *value_json)
{
	int64_t	 ts = now_us();

	buf_adds(b, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\","
	    "\"params\":{\"startVersion\":{\"querySet\":1,\"identity\":0,"
	    "\"ts\":");
	buf_add_i64(b, ts);
	buf_adds(b, "},\"endVersion\":{\"querySet\":1,\"identity\":0,"
	    "\"ts\":");
	buf_add_i64(b, ts + 1);
	buf_adds(b, "},\"modifications\":[{\"type\":\"QueryUpdated\","
	    "\"queryId\":0,\"value\":");
	buf_adds(b, value_json);
	buf_adds(b, "}],\"serverTs\":");
	buf_add_i64(b, ts + 2);
	buf_adds(b, "}}");
}

struct wsc *
bc_open(struct bench *b, int port, const struct wsc_ops *ops, void *arg)
{
	return wsc_open(b, port, NULL, ops, arg);
}

struct bc_opener {
	struct wsc	**out;
	int		  started, n;
};

static int
all_open(void *arg)
{
	struct bc_opener	*o = arg;
	int			 i, open = 0, inflight = 0;

	for (i = 0; i < o->started; i++) {
		if (o->out[i]->state == WSC_OPEN)
			open++;
		else if (o->out[i]->state == WSC_CLOSED)
			return 1;
		else
			inflight++;
	}
	return open == o->n || (o->started < o->n &&
	    inflight < BENCH_OPEN_INFLIGHT);
}

/* Open n connections to the broadcaster; 0 when all are open. */
int
bc_open_many(struct bench *b, int port, struct wsc **out, int n,
    const struct wsc_ops *ops, void *arg, int64_t timeout_us)
{
	struct bc_opener	 o;
	int64_t			 deadline = mono_us() + timeout_us;
	int			 i, open, inflight;

	memset(&o, 0, sizeof(o));
	o.out = out;
	o.n = n;
	for (;;) {
		open = inflight = 0;
		for (i = 0; i < o.started; i++) {
			if (out[i]->state == WSC_CLOSED) {
				log_warnx("broadcaster connection %d failed: "
				    "%s", i, out[i]->err > 0 ?
				    strerror(out[i]->err) : "protocol");
				return -1;
			}
			if (out[i]->state == WSC_OPEN)
				open++;
			else
				inflight++;
		}
		if (open == n)
			return 0;
		while (o.started < n && inflight < BENCH_OPEN_INFLIGHT) {
			out[o.started] = bc_open(b, port, ops, arg);
			out[o.started]->index = o.started;
			o.started++;
			inflight++;
		}
		if (mono_us() > deadline)
			return -1;
		bench_wait(b, all_open, &o, deadline - mono_us());
	}
}

struct msgs_wait {
	struct wsc	**w;
	int		  n;
	uint64_t	  count;
};

static int
got_msgs(void *arg)
{
	struct msgs_wait	*m = arg;
	int			 i;

	for (i = 0; i < m->n; i++)
		if (m->w[i]->msgs_in < m->count &&
		    m->w[i]->state != WSC_CLOSED)
			return 0;
	return 1;
}

/* Wait until each of n connections has received count messages. */
int
bc_wait_msgs(struct bench *b, struct wsc **w, int n, uint64_t count,
    int64_t timeout_us)
{
	struct msgs_wait	 m;

	m.w = w;
	m.n = n;
	m.count = count;
	return bench_wait(b, got_msgs, &m, timeout_us);
}
