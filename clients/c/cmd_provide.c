/*
 * tinyvex provide NAME [-c N] -- CMD [ARG ...]: serve an action with any
 * program.  Each call runs CMD in a process group of its own, with the
 * call's args (JSON) on its standard input and TINYVEX_URL,
 * TINYVEX_CALL_ID and TINYVEX_FUNCTION in its environment.  Exit status
 * 0: its standard output, parsed as one JSON value (nothing at all is
 * null), is the action's value.  Any other end: the call fails with
 * ActionFailed, its message the (trimmed) standard error, its data
 * {"exitCode": N} or {"signal": N}.  A cancelled call's process group
 * is sent SIGTERM.
 *
 * Bounded: at most PROVIDE_MAX_OUT bytes of standard output and
 * PROVIDE_MAX_ERR of standard error are kept (more output fails the
 * call); calls at once are bounded by -c (the server sends no more).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cli.h"

#define PROVIDE_MAX_OUT		(16 * 1024 * 1024)	/* value bytes */
#define PROVIDE_MAX_ERR		(4 * 1024)	/* stderr bytes kept */
#define PROVIDE_MAX_CONCURRENCY	1024

struct job {
	TAILQ_ENTRY(job)	 link;
	struct provide		*pv;
	struct tvx_call		*call;
	pid_t			 pid;
	int			 status;	/* from waitpid */
	int			 exited;
	struct bufferevent	*in;		/* to the child's stdin */
	struct bufferevent	*out;		/* its stdout */
	struct bufferevent	*err;		/* its stderr */
	struct tvx_buf		 outb;
	struct tvx_buf		 errb;
	int			 too_much;	/* stdout over the bound */
};

struct provide {
	struct cli		*cli;
	char			**argv;		/* CMD and its args */
	struct event		*sigchld;
	TAILQ_HEAD(, job)	 jobs;
};

static void
job_finish(struct job *j)
{
	struct tvx_buf	 data = { 0 };
	const char	*why;
	char		*msg;
	cJSON		*v;
	size_t		 n;

	if (!j->exited || j->out != NULL || j->err != NULL)
		return;
	TAILQ_REMOVE(&j->pv->jobs, j, link);
	if (j->in != NULL)
		bufferevent_free(j->in);
	if (WIFEXITED(j->status) && WEXITSTATUS(j->status) == 0 &&
	    !j->too_much) {
		if (j->outb.len == 0)
			tvx_call_return(j->call, "null");
		else if ((v = tvx_json_parse(j->outb.data, j->outb.len,
		    TVX_JSON_DEPTH, &why)) == NULL)
			tvx_call_fail(j->call, "the provider command's output "
			    "is not one JSON value", NULL);
		else {
			cJSON_Delete(v);
			tvx_call_return(j->call, j->outb.data);
		}
	} else {
		if (WIFEXITED(j->status)) {
			tvx_buf_adds(&data, "{\"exitCode\":");
			tvx_buf_i64(&data, WEXITSTATUS(j->status));
		} else {
			tvx_buf_adds(&data, "{\"signal\":");
			tvx_buf_i64(&data, WIFSIGNALED(j->status) ?
			    WTERMSIG(j->status) : 0);
		}
		tvx_buf_addc(&data, '}');
		msg = j->errb.data ? j->errb.data : "";
		n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		if (j->too_much)
			msg = "the provider command's output is too large";
		else if (n == 0)
			msg = "the provider command failed";
		tvx_call_fail(j->call, msg, data.data);
		tvx_buf_free(&data);
	}
	tvx_buf_free(&j->outb);
	tvx_buf_free(&j->errb);
	free(j);
}

static void
pipe_read(struct bufferevent *bev, void *arg)
{
	struct job	*j = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct tvx_buf	*b = bev == j->out ? &j->outb : &j->errb;
	size_t		 max = bev == j->out ? PROVIDE_MAX_OUT :
			    PROVIDE_MAX_ERR;
	size_t		 n = evbuffer_get_length(in), take;
	char		 tmp[4096];

	while (n > 0) {
		take = n < sizeof(tmp) ? n : sizeof(tmp);
		evbuffer_remove(in, tmp, take);
		n -= take;
		if (b->len + take > max) {
			if (bev == j->out)
				j->too_much = 1;
			take = max > b->len ? max - b->len : 0;
		}
		tvx_buf_add(b, tmp, take);
	}
}

static void
pipe_event(struct bufferevent *bev, short what, void *arg)
{
	struct job	*j = arg;

	if (bev == j->in) {
		/* The child closed its stdin early, or it is all written. */
		bufferevent_free(j->in);
		j->in = NULL;
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	pipe_read(bev, arg);
	bufferevent_free(bev);
	if (bev == j->out)
		j->out = NULL;
	else
		j->err = NULL;
	job_finish(j);
}

static void
stdin_written(struct bufferevent *bev, void *arg)
{
	struct job	*j = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		bufferevent_free(j->in);
		j->in = NULL;
	}
}

static void
on_sigchld(evutil_socket_t sig, short ev, void *arg)
{
	struct provide	*pv = arg;
	struct job	*j;
	pid_t		 pid;
	int		 status;

	(void)sig;
	(void)ev;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(j, &pv->jobs, link)
			if (j->pid == pid)
				break;
		if (j == NULL)
			continue;
		j->exited = 1;
		j->status = status;
		job_finish(j);
	}
}

static struct bufferevent *
pipe_bev(struct provide *pv, int fd, struct job *j)
{
	struct bufferevent	*bev;

	evutil_make_socket_nonblocking(fd);
	bev = bufferevent_socket_new(tvx_base(pv->cli->ctx), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return NULL;
	}
	bufferevent_setcb(bev, pipe_read, NULL, pipe_event, j);
	bufferevent_enable(bev, EV_READ);
	return bev;
}

static void
handler(struct tvx_ctx *ctx, void *arg, struct tvx_call *call,
    const char *udf, const char *args)
{
	struct provide	*pv = arg;
	struct job	*j;
	int		 pin[2] = { -1, -1 }, pout[2] = { -1, -1 };
	int		 perr[2] = { -1, -1 };

	(void)ctx;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    pipe2(pin, O_CLOEXEC) == -1 || pipe2(pout, O_CLOEXEC) == -1 ||
	    pipe2(perr, O_CLOEXEC) == -1)
		goto fail;
	j->pv = pv;
	j->call = call;
	switch (j->pid = fork()) {
	case -1:
		goto fail;
	case 0:
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(pin[0], 0) == -1 || dup2(pout[1], 1) == -1 ||
		    dup2(perr[1], 2) == -1)
			_exit(127);
		setenv("TINYVEX_CALL_ID", tvx_call_id(call), 1);
		setenv("TINYVEX_FUNCTION", udf, 1);
		execvp(pv->argv[0], pv->argv);
		fprintf(stderr, "%s: %s\n", pv->argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(j->pid, j->pid);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	TAILQ_INSERT_TAIL(&pv->jobs, j, link);
	j->in = pipe_bev(pv, pin[1], j);
	j->out = pipe_bev(pv, pout[0], j);
	j->err = pipe_bev(pv, perr[0], j);
	if (j->in != NULL) {
		bufferevent_setcb(j->in, NULL, stdin_written, pipe_event, j);
		bufferevent_disable(j->in, EV_READ);
		bufferevent_write(j->in, args, strlen(args));
		bufferevent_write(j->in, "\n", 1);
	}
	if (j->out == NULL || j->err == NULL) {
		/* The child runs on; its end is counted without output. */
		if (j->out != NULL)
			bufferevent_free(j->out);
		if (j->err != NULL)
			bufferevent_free(j->err);
		j->out = j->err = NULL;
		j->too_much = 1;
	}
	return;
fail:
	free(j);
	close(pin[0]);
	close(pin[1]);
	close(pout[0]);
	close(pout[1]);
	close(perr[0]);
	close(perr[1]);
	tvx_call_fail(call, "cannot start the provider command", NULL);
}

static void
cancel(struct tvx_ctx *ctx, void *arg, struct tvx_call *call)
{
	struct provide	*pv = arg;
	struct job	*j;

	(void)ctx;
	TAILQ_FOREACH(j, &pv->jobs, link)
		if (j->call == call && !j->exited)
			kill(-j->pid, SIGTERM);
}

/* At exit: the calls still running are ended with their groups. */
static void
provide_free(struct cli *cli)
{
	struct provide	*pv = cli->cmd;
	struct job	*j;

	while ((j = TAILQ_FIRST(&pv->jobs)) != NULL) {
		TAILQ_REMOVE(&pv->jobs, j, link);
		if (!j->exited)
			kill(-j->pid, SIGTERM);
		if (j->in != NULL)
			bufferevent_free(j->in);
		if (j->out != NULL)
			bufferevent_free(j->out);
		if (j->err != NULL)
			bufferevent_free(j->err);
		tvx_buf_free(&j->outb);
		tvx_buf_free(&j->errb);
		free(j);
	}
	if (pv->sigchld != NULL)
		event_free(pv->sigchld);
	free(pv);
	cli->cmd = NULL;
}

int
cmd_provide(struct cli *cli, int argc, char **argv)
{
	struct provide		*pv;
	const char		*name;
	char			*end;
	long			 n = 0;
	int			 i = 2;

	if (argc < 4)
		cli_usage();
	name = argv[1];
	if (strcmp(argv[i], "-c") == 0) {
		if (i + 1 >= argc)
			cli_usage();
		errno = 0;
		n = strtol(argv[i + 1], &end, 10);
		if (errno || *end != '\0' || n < 1 ||
		    n > PROVIDE_MAX_CONCURRENCY)
			cli_usage();
		i += 2;
	}
	if (i + 1 >= argc || strcmp(argv[i], "--") != 0)
		cli_usage();
	if ((pv = calloc(1, sizeof(*pv))) == NULL)
		return -1;
	pv->cli = cli;
	pv->argv = argv + i + 1;
	TAILQ_INIT(&pv->jobs);
	cli->cmd = pv;
	cli->cmd_free = provide_free;
	pv->sigchld = evsignal_new(tvx_base(cli->ctx), SIGCHLD, on_sigchld,
	    pv);
	if (pv->sigchld == NULL || evsignal_add(pv->sigchld, NULL) == -1)
		return -1;
	return tvx_provide(cli->ctx, name, (int)n, handler, cancel, pv);
}
