/*
 * The admin socket, control.sock: mode 0600, peer credentials checked on
 * accept (root or writerd's own user), a bounded number of clients, one
 * request and one reply at a time.  A malformed request closes that
 * client's connection, never the daemon.  Commands live in one table;
 * each handler fills in a JSON object.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon.h"
#include "json.h"
#include "log.h"
#include "proto/ctl.h"
#include "writerd.h"

struct ctl_args {
	const char	*argv[CTL_MAX_ARGS];
	char		 store[CTL_MAX_ARGS][CTL_MAX_ARG_LEN + 1];
	size_t		 argc;
	struct ctlconn	*conn;		/* who asked */
	uint32_t	 seq;		/* its request's number */
};

/*
 * What a handler returns: 0 done (reply filled in), -1 failed (err
 * filled in), CTL_LATER when it answers later itself, with
 * control_answer.
 */
#define CTL_LATER	1

#define CTL_CKPT_WAIT_MS	200	/* checkpoint: wait for readers */

typedef int (*ctl_handler)(struct writerd *, const struct ctl_args *,
    cJSON *reply, char *err, size_t errlen);

static int	do_status(struct writerd *, const struct ctl_args *, cJSON *,
		    char *, size_t);
static int	do_stats(struct writerd *, const struct ctl_args *, cJSON *,
		    char *, size_t);
static int	do_checkpoint(struct writerd *, const struct ctl_args *,
		    cJSON *, char *, size_t);
static int	do_log(struct writerd *, const struct ctl_args *, cJSON *,
		    char *, size_t);
static int	do_schema_reload(struct writerd *, const struct ctl_args *,
		    cJSON *, char *, size_t);
static int	do_gc(struct writerd *, const struct ctl_args *, cJSON *,
		    char *, size_t);
static int	do_backup(struct writerd *, const struct ctl_args *, cJSON *,
		    char *, size_t);

static const struct {
	const char	*name;
	size_t		 minargs, maxargs;
	ctl_handler	 fn;
} ctl_commands[] = {
	{ "status",		0, 0, do_status },
	{ "stats",		0, 0, do_stats },
	{ "checkpoint",		0, 0, do_checkpoint },
	{ "log",		1, 1, do_log },
	{ "schema reload",	0, 0, do_schema_reload },
	{ "gc",			0, 2, do_gc },
	{ "backup",		1, 1, do_backup },
};

static void	ctl_read(struct bufferevent *, void *);
static void	ctl_event(struct bufferevent *, short, void *);

static int64_t
file_size(const char *path, const char *suffix)
{
	char		 p[4096];
	struct stat	 sb;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static size_t
gateway_count(struct writerd *wd)
{
	struct gwlink	*gw;
	size_t		 n = 0;

	TAILQ_FOREACH(gw, &wd->gateways, entry)
		if (gw->ready)
			n++;
	return n;
}

static size_t
queue_length(struct writerd *wd)
{
	struct mutation	*m;
	size_t		 n = 0;

	TAILQ_FOREACH(m, &wd->queue, entry)
		n++;
	return n;
}

static int
do_status(struct writerd *wd, const struct ctl_args *a, cJSON *r,
    char *err, size_t errlen)
{
	(void)a;
	(void)err;
	(void)errlen;
	cJSON_AddStringToObject(r, "status", wd->stopping ? "stopping" :
	    "running");
	json_add_int(r, "pid", getpid());
	json_add_int(r, "ts", wd->max_ts);
	json_add_int(r, "uptime_us", now_us() - wd->stats.started_us);
	cJSON_AddStringToObject(r, "database", wd->dbpath);
	json_add_int(r, "gateways", (int64_t)gateway_count(wd));
	json_add_int(r, "queued", (int64_t)queue_length(wd));
	return 0;
}

static int
do_stats(struct writerd *wd, const struct ctl_args *a, cJSON *r, char *err,
    size_t errlen)
{
	struct writer_stats	*s = &wd->stats;
	struct gwlink		*gw;
	cJSON			*w, *gws, *g, *gs;
	enum json_err		 jerr;
	int64_t			 page;

	(void)a;
	(void)err;
	(void)errlen;
	w = cJSON_AddObjectToObject(r, "writer");
	json_add_int(w, "pid", getpid());
	json_add_int(w, "ts", wd->max_ts);
	json_add_int(w, "uptime_us", now_us() - s->started_us);
	json_add_int(w, "commits", (int64_t)s->commits);
	json_add_int(w, "mutations", (int64_t)s->mutations);
	json_add_int(w, "mutations_ok", (int64_t)s->mutations_ok);
	json_add_int(w, "replays", (int64_t)s->replays);
	cJSON_AddNumberToObject(w, "mutations_per_s", s->rate);
	json_add_int(w, "group_max", (int64_t)s->group_max);
	page = store_query_i64(wd->st, "PRAGMA page_size");
	json_add_int(w, "db_bytes", file_size(wd->dbpath, ""));
	json_add_int(w, "wal_bytes", file_size(wd->dbpath, "-wal"));
	json_add_int(w, "free_bytes", store_query_i64(wd->st,
	    "PRAGMA freelist_count") * page);
	json_add_int(w, "revisions", store_query_i64(wd->st,
	    "SELECT count(*) FROM documents"));
	json_add_int(w, "documents", store_query_i64(wd->st,
	    "SELECT count(*) FROM current_documents"));
	gc_stats(wd, w);
	json_add_int(w, "checkpoints", (int64_t)s->checkpoints);
	json_add_int(w, "checkpoints_truncated",
	    (int64_t)s->checkpoints_truncated);
	json_add_int(w, "wal_peak_bytes", s->wal_peak_bytes);
	json_add_int(w, "checkpoint_max_us", s->checkpoint_max_us);
	json_add_int(w, "gateways_dropped", (int64_t)s->gateways_dropped);
	json_add_int(w, "bad_frames", (int64_t)s->bad_frames);
	registry_stats(wd, r);
	gws = cJSON_AddArrayToObject(r, "gateways");
	TAILQ_FOREACH(gw, &wd->gateways, entry) {
		if (!gw->ready)
			continue;
		g = cJSON_CreateObject();
		cJSON_AddStringToObject(g, "id", gw->name);
		json_add_int(g, "pid", gw->pid);
		if (gw->stats != NULL && (gs = json_parse(gw->stats,
		    strlen(gw->stats), 8, &jerr)) != NULL) {
			cJSON_AddItemToObject(g, "stats", gs);
			json_add_int(g, "stats_age_ms",
			    (mono_us() - gw->stats_at) / 1000);
		}
		cJSON_AddItemToArray(gws, g);
	}
	return 0;
}

static int
do_checkpoint(struct writerd *wd, const struct ctl_args *a, cJSON *r,
    char *err, size_t errlen)
{
	int	 nlog = 0, nckpt = 0, rc;

	(void)a;
	/* Asked for: wait a little longer for readers than the timer does. */
	if ((rc = gc_checkpoint(wd, CTL_CKPT_WAIT_MS, &nlog, &nckpt)) == -1) {
		snprintf(err, errlen, "checkpoint failed: %s",
		    sqlite3_errmsg(wd->st->db));
		return -1;
	}
	json_add_int(r, "wal_frames", nlog);
	json_add_int(r, "checkpointed_frames", nckpt);
	json_add_int(r, "truncated", rc);
	json_add_int(r, "wal_bytes", file_size(wd->dbpath, "-wal"));
	return 0;
}

static int
do_log(struct writerd *wd, const struct ctl_args *a, cJSON *r, char *err,
    size_t errlen)
{
	int	 v;

	if (strcmp(a->argv[0], "verbose") == 0)
		v = 1;
	else if (strcmp(a->argv[0], "brief") == 0)
		v = 0;
	else {
		snprintf(err, errlen, "log takes verbose or brief");
		return -1;
	}
	log_setverbose(v);
	notify_set_log(wd, v);
	cJSON_AddStringToObject(r, "log", v ? "verbose" : "brief");
	return 0;
}

static int
do_schema_reload(struct writerd *wd, const struct ctl_args *a, cJSON *r,
    char *err, size_t errlen)
{
	struct tv_error	 e;

	(void)a;
	if (wd->schema_path == NULL) {
		snprintf(err, errlen, "writerd runs without a schema file");
		return -1;
	}
	memset(&e, 0, sizeof(e));
	if (schema_apply_file(wd, wd->schema_path, &e) == -1) {
		snprintf(err, errlen, "%s", e.message);
		return -1;
	}
	json_add_int(r, "catalog_version", wd->catalog_version);
	return 0;
}

static int
do_gc(struct writerd *wd, const struct ctl_args *a, cJSON *r, char *err,
    size_t errlen)
{
	int64_t	 keep = wd->conf.retention_us;

	if (a->argc == 2 && strcmp(a->argv[0], "--keep") == 0) {
		if (parse_duration(a->argv[1], &keep) == -1) {
			snprintf(err, errlen, "bad duration %s", a->argv[1]);
			return -1;
		}
	} else if (a->argc != 0) {
		snprintf(err, errlen, "usage: gc [--keep DURATION]");
		return -1;
	}
	(void)r;
	/* Answered when the run ends; see gc.c. */
	if (gc_start(wd, keep, a->conn->id, a->seq, err, errlen) == -1)
		return -1;
	return CTL_LATER;
}

static int
do_backup(struct writerd *wd, const struct ctl_args *a, cJSON *r,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 rc;

	if (a->argv[0][0] != '/') {
		snprintf(err, errlen, "backup needs an absolute path");
		return -1;
	}
	if (access(a->argv[0], F_OK) == 0) {
		snprintf(err, errlen, "%s exists already", a->argv[0]);
		return -1;
	}
	/*
	 * VACUUM INTO on writerd's own connection, between group commits: a
	 * consistent copy of the last commit, never restarted by writes.
	 */
	if (sqlite3_prepare_v2(wd->st->db, "VACUUM INTO ?1", -1, &s, NULL)
	    != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(wd->st->db));
		return -1;
	}
	sqlite3_bind_text(s, 1, a->argv[0], -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "backup failed: %s",
		    sqlite3_errmsg(wd->st->db));
		return -1;
	}
	cJSON_AddStringToObject(r, "path", a->argv[0]);
	json_add_int(r, "ts", wd->max_ts);
	json_add_int(r, "bytes", file_size(a->argv[0], ""));
	return 0;
}

static void
ctl_free(struct ctlconn *c)
{
	htab_remove(&c->wd->ctl_tab, &c->hent);
	TAILQ_REMOVE(&c->wd->ctlconns, c, entry);
	c->wd->nctl--;
	bufferevent_free(c->bev);
	free(c);
}

static void
ctl_reply(struct ctlconn *c, uint32_t seq, int ok, const char *json)
{
	struct ipc_msg	 m;
	const struct buf *f;

	ipc_msg_init(&m, CTL_REPLY, seq, 2);
	ipc_add_bool(&m, ok);
	ipc_add_cstr(&m, json);
	f = ipc_msg_finish(&m);
	bufferevent_write(c->bev, f->data, f->len);
	ipc_msg_free(&m);
}

/* The connected client with this id, or NULL when it has gone. */
struct ctlconn *
control_conn(struct writerd *wd, uint32_t id)
{
	struct hentry	*e;

	e = htab_get(&wd->ctl_tab, &id, sizeof(id));
	return e != NULL ? HTAB_ELEM(e, struct ctlconn, hent) : NULL;
}

/* A reply that a handler left for later (CTL_LATER). */
void
control_answer(struct ctlconn *c, uint32_t seq, int ok, const char *json)
{
	log_info("control: answer %u to uid %d: %s", seq, (int)c->uid,
	    ok ? "ok" : json);
	ctl_reply(c, seq, ok, json);
}

/*
 * Parse and run one request.  Returns 0, or -1 when the request is
 * malformed (the connection is closed).
 */
static int
ctl_handle(struct ctlconn *c, const struct ipc_hdr *h,
    const unsigned char *body, size_t len)
{
	struct ctl_request	 q;
	struct ctl_args		 a;
	size_t			 i;
	char			 name[CTLMSG_MAX_COMMAND + 1], err[512];
	cJSON			*reply;
	struct buf		 out;
	int			 rc;

	if (h->type != CTL_REQUEST || ctlmsg_request(body, len, &q) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	for (i = 0; i < q.argc; i++) {
		memcpy(a.store[i], q.argv[i], q.arglen[i]);
		a.store[i][q.arglen[i]] = '\0';
		a.argv[i] = a.store[i];
	}
	a.argc = q.argc;
	a.conn = c;
	a.seq = h->seq;
	if (q.version != CTL_VERSION) {
		ctl_reply(c, h->seq, 0, "{\"error\":\"control protocol "
		    "version mismatch\"}");
		return 0;
	}
	memcpy(name, q.command, q.commandlen);
	name[q.commandlen] = '\0';
	for (i = 0; i < nitems(ctl_commands); i++)
		if (strcmp(ctl_commands[i].name, name) == 0)
			break;
	buf_init(&out);
	reply = cJSON_CreateObject();
	err[0] = '\0';
	if (i == nitems(ctl_commands)) {
		snprintf(err, sizeof(err), "unknown command \"%s\"", name);
		rc = -1;
	} else if (a.argc < ctl_commands[i].minargs ||
	    a.argc > ctl_commands[i].maxargs) {
		snprintf(err, sizeof(err), "wrong number of arguments for %s",
		    name);
		rc = -1;
	} else
		rc = ctl_commands[i].fn(c->wd, &a, reply, err, sizeof(err));
	if (rc == CTL_LATER) {
		log_info("control: %s by uid %d: started", name, (int)c->uid);
		goto done;
	}
	if (rc == -1) {
		buf_adds(&out, "{\"error\":");
		json_print_string(&out, err, strlen(err));
		buf_addc(&out, '}');
	} else
		json_print(&out, reply);
	if (out.len > CTL_MAX_REPLY) {
		buf_reset(&out);
		buf_adds(&out, "{\"error\":\"reply too large\"}");
		rc = -1;
	}
	log_info("control: %s by uid %d: %s", name, (int)c->uid,
	    rc == 0 ? "ok" : err);
	ctl_reply(c, h->seq, rc == 0, out.data);
done:
	cJSON_Delete(reply);
	buf_free(&out);
	return 0;
}

static void
ctl_read(struct bufferevent *bev, void *arg)
{
	struct ctlconn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct ipc_hdr		 h;
	const unsigned char	*p;
	int			 rc;

	while ((rc = ipc_evbuffer_frame(in, CTL_MAX_FRAME, &h, &p)) == 1) {
		if (ctl_handle(c, &h, p + IPC_HDR_LEN, h.len - IPC_HDR_LEN)
		    == -1)
			goto bad;
		evbuffer_drain(in, h.len);
	}
	if (rc == 0)
		return;
bad:
	log_warnx("control: malformed request from uid %d, closing",
	    (int)c->uid);
	ctl_free(c);
}

static void
ctl_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		ctl_free(arg);
}

static void
ctl_accept(int fd, void *arg)
{
	struct writerd	*wd = arg;
	struct ctlconn	*c;
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    len != sizeof(cred) ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warnx("control: refused peer uid %d", (int)cred.uid);
		close(fd);
		return;
	}
	if (wd->nctl >= CTL_MAX_CLIENTS) {
		log_warnx("control: too many clients");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->wd = wd;
	c->uid = cred.uid;
	if ((c->bev = bufferevent_socket_new(wd->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, ctl_read, NULL, ctl_event, c);
	bufferevent_enable(c->bev, EV_READ);
	/* An id of no connected client, never 0. */
	do
		c->id = ++wd->next_ctl_id;
	while (c->id == 0 || control_conn(wd, c->id) != NULL);
	htab_insert_key(&wd->ctl_tab, &c->hent, &c->id, sizeof(c->id));
	TAILQ_INSERT_TAIL(&wd->ctlconns, c, entry);
	wd->nctl++;
}

int
control_listen(struct writerd *wd, const char *path)
{
	int	 fd;

	if ((fd = listen_unix(path, 0600)) == -1)
		return -1;
	wd->ctl_listener = listen_start(wd->base, fd, TINYVEX_CONTROL_SOCK,
	    ctl_accept, wd);
	return wd->ctl_listener != NULL ? 0 : -1;
}

void
control_close_all(struct writerd *wd)
{
	struct ctlconn	*c;

	while ((c = TAILQ_FIRST(&wd->ctlconns)) != NULL)
		ctl_free(c);
	htab_free(&wd->ctl_tab);
	listen_free(wd->ctl_listener);
	wd->ctl_listener = NULL;
}
