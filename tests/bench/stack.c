/*
 * Child processes: writerd and gatewayd from the build directory in a
 * temporary state directory with a configuration (and schema) written
 * for the scenario, on a free loopback port; their /healthz; tinyvexctl
 * with -j; the helper programs of the harness, whose one line of JSON
 * output is read back; and perf, when the run profiles the daemons.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "json.h"
#include "log.h"

#define STACK_STOP_MS		10000	/* SIGTERM, then SIGKILL */
#define HTTP_TIMEOUT_S		5	/* a /healthz answer */
#define OUTPUT_MAX		(1024 * 1024) /* a helper's JSON output */

/* The configuration every scenario starts from. */
static const char *base_conf =
    "max_connections 12000\n"
    "max_queries 1024\n";

int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

pid_t
spawn(const char *path, char *const argv[], const char *logpath)
{
	pid_t	 pid;
	int	 fd;

	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0)
		return pid;
	fd = open(logpath != NULL ? logpath : "/dev/null",
	    O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd != -1) {
		dup2(fd, STDERR_FILENO);
		if (logpath == NULL)
			dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	execv(path, argv);
	_exit(127);
}

/*
 * Wait for pid up to timeout_ms (then SIGKILL); its CPU seconds and peak
 * RSS from wait4.  Returns its exit status, or -1.
 */
int
reap(pid_t pid, int timeout_ms, double *cpu_s, uint64_t *maxrss_kb)
{
	struct rusage	 ru;
	int		 st = 0, waited = 0;
	pid_t		 r;

	for (;;) {
		r = wait4(pid, &st, timeout_ms < 0 ? 0 : WNOHANG, &ru);
		if (r == pid)
			break;
		if (r == -1 && errno != EINTR)
			return -1;
		if (timeout_ms >= 0 && waited >= timeout_ms) {
			kill(pid, SIGKILL);
			timeout_ms = -1;
			continue;
		}
		usleep(2000);
		waited += 2;
	}
	if (cpu_s != NULL)
		*cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec /
		    1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (maxrss_kb != NULL)
		*maxrss_kb = (uint64_t)ru.ru_maxrss;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Run a helper that prints JSON on its standard output; its parsed
 * output, or NULL.  secs, cpu_s and maxrss_kb (each may be NULL) get its
 * wall time, CPU time and peak RSS.
 */
cJSON *
run_json(char *const argv[], double *secs, double *cpu_s,
    uint64_t *maxrss_kb)
{
	struct buf	 out;
	char		 chunk[4096];
	enum json_err	 jerr;
	cJSON		*j = NULL;
	int		 p[2], st;
	int64_t		 t0 = mono_us();
	ssize_t		 n;
	pid_t		 pid;

	if (pipe(p) == -1)
		return NULL;
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return NULL;
	}
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	buf_init(&out);
	while ((n = read(p[0], chunk, sizeof(chunk))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (out.len < OUTPUT_MAX)
			buf_add(&out, chunk, (size_t)n);
	}
	close(p[0]);
	st = reap(pid, -1, cpu_s, maxrss_kb);
	if (secs != NULL)
		*secs = (double)(mono_us() - t0) / 1e6;
	if (st == 0)
		j = json_parse(out.data != NULL ? out.data : "", out.len,
		    JSON_MAX_DEPTH, &jerr);
	if (j == NULL)
		log_warnx("%s: exit %d, output %.*s", argv[0], st,
		    (int)(out.len > 300 ? 300 : out.len),
		    out.data != NULL ? out.data : "");
	buf_free(&out);
	return j;
}

static int
write_file(const char *path, const char *text)
{
	FILE	*f;
	int	 rc = 0;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	if (fputs(text, f) == EOF)
		rc = -1;
	if (fclose(f) == EOF)
		rc = -1;
	return rc;
}

int
stack_init(struct bench *b, struct stack *s, const char *conf_extra,
    const char *schema)
{
	char	 path[600], *conf;
	size_t	 len;

	memset(s, 0, sizeof(*s));
	s->writer = s->gateway = -1;
	snprintf(s->dir, sizeof(s->dir), "%s/tinyvex-bench-XXXXXX", b->tmp);
	if (mkdtemp(s->dir) == NULL) {
		log_warn("mkdtemp %s", s->dir);
		return -1;
	}
	len = strlen(base_conf) + (conf_extra != NULL ? strlen(conf_extra) :
	    0) + 1;
	conf = xmalloc(len);
	snprintf(conf, len, "%s%s", base_conf, conf_extra != NULL ?
	    conf_extra : "");
	snprintf(path, sizeof(path), "%s/tinyvex.conf", s->dir);
	if (write_file(path, conf) == -1) {
		free(conf);
		return -1;
	}
	free(conf);
	if (schema != NULL) {
		snprintf(path, sizeof(path), "%s/schema.json", s->dir);
		if (write_file(path, schema) == -1)
			return -1;
	}
	if ((s->port = free_port()) == -1)
		return -1;
	return 0;
}

/* Start writerd and, at once, gatewayd; do not wait for either. */
int
stack_spawn(struct bench *b, struct stack *s)
{
	char	 conf[600], schema[600], log[600], listen[64];
	char	*wargv[10], *gargv[10];
	int	 n = 0;
	struct stat sb;

	snprintf(conf, sizeof(conf), "%s/tinyvex.conf", s->dir);
	snprintf(schema, sizeof(schema), "%s/schema.json", s->dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
	wargv[n++] = b->writerd;
	wargv[n++] = "-d";
	wargv[n++] = "-r";
	wargv[n++] = s->dir;
	wargv[n++] = "-f";
	wargv[n++] = conf;
	if (stat(schema, &sb) == 0) {
		wargv[n++] = "-s";
		wargv[n++] = schema;
	}
	wargv[n] = NULL;
	n = 0;
	gargv[n++] = b->gatewayd;
	gargv[n++] = "-d";
	gargv[n++] = "-r";
	gargv[n++] = s->dir;
	gargv[n++] = "-f";
	gargv[n++] = conf;
	gargv[n++] = "-l";
	gargv[n++] = listen;
	gargv[n] = NULL;
	s->t_spawn = mono_us();
	snprintf(log, sizeof(log), "%s/writerd.log", s->dir);
	if ((s->writer = spawn(b->writerd, wargv, log)) == -1)
		return -1;
	snprintf(log, sizeof(log), "%s/gatewayd.log", s->dir);
	if ((s->gateway = spawn(b->gatewayd, gargv, log)) == -1)
		return -1;
	return 0;
}

/* Wait until /healthz says the gateway has the database and the writer. */
int
stack_ready(struct bench *b, struct stack *s, int64_t timeout_us)
{
	int64_t	 deadline = mono_us() + timeout_us;
	cJSON	*h;
	int	 ok;

	(void)b;
	while (mono_us() < deadline) {
		if (waitpid(s->gateway, NULL, WNOHANG) == s->gateway ||
		    waitpid(s->writer, NULL, WNOHANG) == s->writer) {
			log_warnx("a daemon exited; logs in %s", s->dir);
			s->gateway = s->writer = -1;
			return -1;
		}
		if ((h = stack_health(s)) != NULL) {
			ok = cJSON_IsTrue(json_get(h, "writer")) &&
			    cJSON_IsTrue(json_get(h, "database"));
			cJSON_Delete(h);
			if (ok)
				return 0;
		}
		usleep(5000);
	}
	log_warnx("daemons not ready after %.0f s; logs in %s",
	    (double)timeout_us / 1e6, s->dir);
	return -1;
}

int
stack_start(struct bench *b, struct stack *s, const char *conf_extra,
    const char *schema)
{
	if (stack_init(b, s, conf_extra, schema) == -1)
		return -1;
	if (stack_spawn(b, s) == -1 || stack_ready(b, s, BENCH_READY_US) == -1) {
		/* Keep the directory: its logs say why. */
		stack_stop(s);
		s->dir[0] = '\0';
		return -1;
	}
	return 0;
}

/* The number at obj.k1[.k2], or NAN. */
double
json_num(const cJSON *obj, const char *k1, const char *k2)
{
	const cJSON	*v = json_get(obj, k1);

	if (k2 != NULL)
		v = json_get(v, k2);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

void
stack_stop(struct stack *s)
{
	if (s->gateway > 0) {
		kill(s->gateway, SIGTERM);
		reap(s->gateway, STACK_STOP_MS, NULL, NULL);
	}
	if (s->writer > 0) {
		kill(s->writer, SIGTERM);
		reap(s->writer, STACK_STOP_MS, NULL, NULL);
	}
	s->gateway = s->writer = -1;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void
rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void
stack_remove(struct bench *b, struct stack *s)
{
	stack_stop(s);
	if (s->dir[0] != '\0' && !b->keep)
		rm_tree(s->dir);
}

int64_t
file_size(const char *path)
{
	struct stat	 sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* GET /healthz with a blocking socket: the parsed body, or NULL. */
cJSON *
stack_health(struct stack *s)
{
	struct sockaddr_in	 sin;
	struct timeval		 tv = { HTTP_TIMEOUT_S, 0 };
	char			 req[128], resp[8192], *body;
	enum json_err		 jerr;
	size_t			 have = 0;
	ssize_t			 n;
	int			 fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)s->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return NULL;
	}
	n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", s->port);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return NULL;
	}
	while (have < sizeof(resp) - 1 &&
	    (n = read(fd, resp + have, sizeof(resp) - 1 - have)) > 0)
		have += (size_t)n;
	close(fd);
	resp[have] = '\0';
	if (strncmp(resp, "HTTP/1.1 200", 12) != 0 ||
	    (body = strstr(resp, "\r\n\r\n")) == NULL)
		return NULL;
	body += 4;
	return json_parse(body, strlen(body), JSON_MAX_DEPTH, &jerr);
}

/* tinyvexctl -j -r DIR a1 [a2 [a3]]: its JSON output, or NULL. */
cJSON *
stack_ctl(struct bench *b, struct stack *s, const char *a1, const char *a2,
    const char *a3)
{
	char	*argv[8];
	int	 n = 0;

	argv[n++] = b->ctl;
	argv[n++] = "-j";
	argv[n++] = "-r";
	argv[n++] = s->dir;
	argv[n++] = (char *)a1;
	if (a2 != NULL)
		argv[n++] = (char *)a2;
	if (a3 != NULL)
		argv[n++] = (char *)a3;
	argv[n] = NULL;
	return run_json(argv, NULL, NULL, NULL);
}

/*
 * Profile pid with perf while a window is measured (when the run asked for
 * it): perf record into perfdir/tag.data.
 */
int
perf_start(struct bench *b, const char *tag, pid_t pid, pid_t *perf)
{
	char	 out[600], p[24];
	char	*argv[16];
	int	 n = 0;

	*perf = -1;
	if (b->perfdir == NULL)
		return 0;
	snprintf(out, sizeof(out), "%s/%s.data", b->perfdir, tag);
	snprintf(p, sizeof(p), "%d", (int)pid);
	argv[n++] = "/usr/bin/perf";
	argv[n++] = "record";
	argv[n++] = "-q";
	argv[n++] = "-F";
	argv[n++] = "499";
	argv[n++] = "--call-graph";
	argv[n++] = "dwarf,16384";
	argv[n++] = "-p";
	argv[n++] = p;
	argv[n++] = "-o";
	argv[n++] = out;
	argv[n] = NULL;
	if ((*perf = spawn(argv[0], argv, NULL)) == -1)
		return -1;
	usleep(200000);		/* let it attach */
	return 0;
}

/* Stop perf and write perfdir/tag.txt, the flat profile. */
void
perf_stop(struct bench *b, const char *tag, pid_t perf)
{
	char	 data[600], txt[600], cmd[2000];

	if (perf <= 0)
		return;
	kill(perf, SIGINT);
	reap(perf, 20000, NULL, NULL);
	snprintf(data, sizeof(data), "%s/%s.data", b->perfdir, tag);
	snprintf(txt, sizeof(txt), "%s/%s.txt", b->perfdir, tag);
	snprintf(cmd, sizeof(cmd), "(/usr/bin/perf report -i '%s' --stdio "
	    "--no-children --percent-limit 0.7 -g none --sort dso,symbol; "
	    "/usr/bin/perf report -i '%s' --stdio --children "
	    "--percent-limit 2 -g none --sort symbol) > '%s' 2>/dev/null",
	    data, data, txt);
	if (system(cmd) != 0)
		log_warnx("perf report for %s failed", tag);
}
