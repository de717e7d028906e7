/*
 * Providers and actions at the gateway.  Both ends of a call may be here:
 *
 *   a caller's tinyvex/action goes up to writerd as IPC_ACTION, numbered
 *   by this gateway (struct gcall), and its outcome comes back as
 *   IPC_ACTION_DONE with that number;
 *
 *   a provider's tinyvex/provide goes up as IPC_PROVIDE and is answered
 *   once writerd has registered it (struct gprov); writerd's IPC_RUN
 *   becomes a tinyvex/runAction request to the provider connection, with
 *   an id of this gateway's own ("r" and a number, struct grun), and the
 *   provider's JSON-RPC response goes back up as IPC_RUN_DONE.
 *
 * Everything names its session by the session's number, never by
 * pointer: a session that went away is simply not found.  A caller that
 * leaves cancels its calls upstream; a provider that leaves is reported
 * gone (writerd fails what it was running).  When the writer link drops,
 * every call waiting here fails Unavailable with outcome "unknown", every
 * call running here is cancelled at its provider, and once the link is
 * back the providers of this gateway are registered again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "actmsg.h"
#include "gatewayd.h"
#include "json.h"
#include "log.h"
#include "proto/ipc.h"

#define ACTION_DEFAULT_CONCURRENCY	16	/* provide without concurrency */
#define ACTION_RUN_ID_LEN		24	/* "r" and a uint64 */

/* What a provider connection serves. */
struct sprov {
	char		*names[IPC_MAX_FUNCTIONS];	/* registered */
	size_t		 nnames;
	uint32_t	 concurrency;
	int		 sent;		/* a PROVIDE went up for it */
};

/* A client's call sent up, waiting for IPC_ACTION_DONE. */
struct gcall {
	TAILQ_ENTRY(gcall)	 entry;
	uint32_t		 num;		/* the IPC_ACTION's seq */
	uint64_t		 session;	/* the caller's number */
	char			*id;		/* JSON-RPC id text */
	struct rpc_batch	*batch;
	int			 slot;
};

/* A call running on a provider connection of this gateway. */
struct grun {
	TAILQ_ENTRY(grun)	 entry;
	uint64_t		 call;		/* writerd's call id */
	uint64_t		 session;	/* the provider's number */
	uint64_t		 num;		/* its runAction id: "r<num>" */
};

/* A tinyvex/provide waiting for IPC_PROVIDED. */
struct gprov {
	TAILQ_ENTRY(gprov)	 entry;
	uint32_t		 seq;
	uint64_t		 session;
	char			*id;
	struct rpc_batch	*batch;
	int			 slot;
	char			*names[IPC_MAX_FUNCTIONS];
	size_t			 nnames;
	uint32_t		 concurrency;
};

TAILQ_HEAD(gcallq, gcall);
TAILQ_HEAD(grunq, grun);
TAILQ_HEAD(gprovq, gprov);

struct actions {
	struct gcallq	 calls;
	struct grunq	 runs;
	struct gprovq	 provides;
	uint32_t	 next_call;
	uint32_t	 next_provide;
	uint64_t	 next_run;
	uint64_t	 ncalls;	/* calls made here, ever */
	uint64_t	 nruns;		/* calls run here, ever */
};

/* The gateway's action state, made on first use. */
static struct actions *
acts(struct gateway *gw)
{
	if (gw->act == NULL) {
		gw->act = xcalloc(1, sizeof(*gw->act));
		TAILQ_INIT(&gw->act->calls);
		TAILQ_INIT(&gw->act->runs);
		TAILQ_INIT(&gw->act->provides);
	}
	return gw->act;
}

static void
gcall_free(struct gcall *c)
{
	free(c->id);
	free(c);
}

static void
gprov_free(struct gprov *p)
{
	size_t	 i;

	for (i = 0; i < p->nnames; i++)
		free(p->names[i]);
	free(p->id);
	free(p);
}

static void
sprov_free(struct sprov *p)
{
	size_t	 i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nnames; i++)
		free(p->names[i]);
	free(p);
}

void
action_free(struct gateway *gw)
{
	struct actions	*a = gw->act;
	struct gcall	*c;
	struct grun	*r;
	struct gprov	*p;

	if (a == NULL)
		return;
	while ((c = TAILQ_FIRST(&a->calls)) != NULL) {
		TAILQ_REMOVE(&a->calls, c, entry);
		gcall_free(c);
	}
	while ((r = TAILQ_FIRST(&a->runs)) != NULL) {
		TAILQ_REMOVE(&a->runs, r, entry);
		free(r);
	}
	while ((p = TAILQ_FIRST(&a->provides)) != NULL) {
		TAILQ_REMOVE(&a->provides, p, entry);
		gprov_free(p);
	}
	free(a);
	gw->act = NULL;
}

static void
up_msg(struct gateway *gw, struct ipc_msg *m)
{
	const struct buf	*f = ipc_msg_finish(m);

	if (gw->up.ready && gw->up.bev != NULL)
		send_batch_add(&gw->up.out, f->data, f->len);
	ipc_msg_free(m);
}

/* An error answer, or nothing for a notification. */
static void
fail(struct session *s, const char *id, struct rpc_batch *batch, int slot,
    int code, const char *message, const char *outcome)
{
	struct buf	 b;
	size_t		 len;

	if (id == NULL) {
		rpc_answer(s, batch, slot, 0, 0, NULL, 0);
		return;
	}
	buf_init(&b);
	rpc_error_text(&b, id, code, message, outcome);
	len = b.len;
	rpc_answer(s, batch, slot, 0, 0, buf_steal(&b, NULL), len);
}

static void
succeed(struct session *s, const char *id, struct rpc_batch *batch,
    int slot, int64_t need_ts, const char *result, size_t rlen)
{
	struct buf	 b;
	size_t		 len;

	if (id == NULL) {
		rpc_answer(s, batch, slot, 0, 0, NULL, 0);
		return;
	}
	buf_init(&b);
	rpc_result_text(&b, id, result, rlen);
	len = b.len;
	rpc_answer(s, batch, slot, need_ts, 0, buf_steal(&b, NULL), len);
}

/*
 * The functions member of provide or unprovide: 1..IPC_MAX_FUNCTIONS
 * names, each served by kind.  0, or -1 answered.
 */
static int
get_names(struct session *s, const char *id, struct rpc_batch *batch,
    int slot, const cJSON *fns, const char **names, size_t *n)
{
	const cJSON	*f;
	enum act_name	 kind;

	*n = 0;
	if (!cJSON_IsArray(fns) || cJSON_GetArraySize(fns) == 0) {
		fail(s, id, batch, slot, TV_INVALID_PARAMS, "functions must "
		    "be a non-empty array of names", NULL);
		return -1;
	}
	if (cJSON_GetArraySize(fns) > IPC_MAX_FUNCTIONS) {
		fail(s, id, batch, slot, TV_TOO_LARGE, "more than 64 "
		    "functions", NULL);
		return -1;
	}
	cJSON_ArrayForEach(f, fns) {
		if (!cJSON_IsString(f)) {
			fail(s, id, batch, slot, TV_INVALID_PARAMS,
			    "functions must be strings", NULL);
			return -1;
		}
		kind = actmsg_name_kind(f->valuestring,
		    strlen(f->valuestring));
		if (kind == ACT_NAME_RESERVED) {
			fail(s, id, batch, slot, TV_VALIDATION, "db/ names "
			    "are reserved", NULL);
			return -1;
		}
		if (kind == ACT_NAME_BAD) {
			fail(s, id, batch, slot, TV_VALIDATION, "a function "
			    "name is 1 to 128 printable characters, a prefix "
			    "ends in /*", NULL);
			return -1;
		}
		names[(*n)++] = f->valuestring;
	}
	return 0;
}

static int
has_name(char *const *names, size_t n, const char *name)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

void
action_provide(struct session *s, const char *id, const cJSON *params,
    struct rpc_batch *batch, int slot)
{
	struct gateway	*gw = s->gw;
	struct actions	*a = acts(gw);
	const cJSON	*tok, *conc;
	const char	*names[IPC_MAX_FUNCTIONS];
	size_t		 n, i, total;
	int64_t		 c = ACTION_DEFAULT_CONCURRENCY;
	struct gprov	*p;
	struct ipc_msg	 m;

	if (params != NULL && !cJSON_IsObject(params)) {
		fail(s, id, batch, slot, TV_INVALID_PARAMS, "params must be "
		    "an object", NULL);
		return;
	}
	if (s->browser) {
		fail(s, id, batch, slot, TV_UNAUTHORIZED, "a connection "
		    "opened with an Origin header may not provide", NULL);
		return;
	}
	if (gw->conf.provider_token != NULL) {
		tok = json_get(params, "token");
		if (!cJSON_IsString(tok) || !http_token_equal(tok->valuestring,
		    gw->conf.provider_token)) {
			fail(s, id, batch, slot, TV_UNAUTHORIZED,
			    "provider token refused", NULL);
			return;
		}
	}
	if (get_names(s, id, batch, slot, json_get(params, "functions"),
	    names, &n) == -1)
		return;
	/* A later provide without concurrency keeps the one in force. */
	if (s->prov != NULL && s->prov->concurrency > 0)
		c = s->prov->concurrency;
	if ((conc = json_get(params, "concurrency")) != NULL &&
	    !json_get_int(conc, 1, IPC_MAX_CONCURRENCY, &c)) {
		fail(s, id, batch, slot, TV_INVALID_PARAMS, "concurrency must "
		    "be an integer from 1 to 1024", NULL);
		return;
	}
	total = s->prov != NULL ? s->prov->nnames : 0;
	for (i = 0; i < n; i++)
		if (s->prov == NULL || !has_name(s->prov->names,
		    s->prov->nnames, names[i]))
			total++;
	if (total > IPC_MAX_FUNCTIONS) {
		fail(s, id, batch, slot, TV_TOO_LARGE, "more than 64 "
		    "functions", NULL);
		return;
	}
	if (!gw->up.ready) {
		fail(s, id, batch, slot, TV_UNAVAILABLE, "writer link down; "
		    "retry later", NULL);
		return;
	}
	if (s->prov == NULL)
		s->prov = xcalloc(1, sizeof(*s->prov));
	s->prov->sent = 1;
	p = xcalloc(1, sizeof(*p));
	p->seq = ++a->next_provide;
	if (p->seq == 0)
		p->seq = ++a->next_provide;	/* 0: re-registrations */
	p->session = s->id;
	p->id = id != NULL ? xstrdup(id) : NULL;
	p->batch = batch;
	p->slot = slot;
	for (i = 0; i < n; i++)
		p->names[i] = xstrdup(names[i]);
	p->nnames = n;
	p->concurrency = (uint32_t)c;
	TAILQ_INSERT_TAIL(&a->provides, p, entry);
	actmsg_build_names(&m, IPC_PROVIDE, p->seq, s->id, p->concurrency,
	    (const char *const *)p->names, NULL, (uint32_t)n);
	up_msg(gw, &m);
}

void
action_unprovide(struct session *s, const char *id, const cJSON *params,
    struct rpc_batch *batch, int slot)
{
	struct gateway	*gw = s->gw;
	const char	*names[IPC_MAX_FUNCTIONS];
	size_t		 n, i, j;
	struct ipc_msg	 m;

	if (params != NULL && !cJSON_IsObject(params)) {
		fail(s, id, batch, slot, TV_INVALID_PARAMS, "params must be "
		    "an object", NULL);
		return;
	}
	if (get_names(s, id, batch, slot, json_get(params, "functions"),
	    names, &n) == -1)
		return;
	if (s->prov != NULL) {
		for (i = 0; i < n; i++)
			for (j = 0; j < s->prov->nnames; j++)
				if (strcmp(s->prov->names[j], names[i]) == 0) {
					free(s->prov->names[j]);
					s->prov->names[j] =
					    s->prov->names[--s->prov->nnames];
					break;
				}
		actmsg_build_names(&m, IPC_UNPROVIDE, 0, s->id, 0, names,
		    NULL, (uint32_t)n);
		up_msg(gw, &m);
	}
	succeed(s, id, batch, slot, 0, "{}", 2);
}

void
action_call(struct session *s, const char *id, const cJSON *params,
    struct rpc_batch *batch, int slot)
{
	struct gateway		*gw = s->gw;
	struct actions		*a = acts(gw);
	const cJSON		*udf, *args;
	struct actmsg_call	 q;
	struct gcall		*c;
	struct ipc_msg		 m;
	struct buf		 b;

	if (params != NULL && !cJSON_IsObject(params)) {
		fail(s, id, batch, slot, TV_INVALID_PARAMS, "params must be "
		    "an object", NULL);
		return;
	}
	udf = json_get(params, "udfPath");
	args = json_get(params, "args");
	if (!cJSON_IsString(udf) || udf->valuestring[0] == '\0' ||
	    strlen(udf->valuestring) > IPC_MAX_UDF_LEN) {
		fail(s, id, batch, slot, TV_INVALID_PARAMS, "udfPath must be "
		    "a string of 1 to 128 bytes", NULL);
		return;
	}
	if (args != NULL && !cJSON_IsObject(args)) {
		fail(s, id, batch, slot, TV_INVALID_PARAMS, "args must be an "
		    "object", NULL);
		return;
	}
	if (s->pending_actions >= gw->conf.max_pending_mutations) {
		fail(s, id, batch, slot, TV_OVERLOADED, "too many actions in "
		    "flight on this connection", NULL);
		return;
	}
	buf_init(&b);
	if (args != NULL)
		json_print(&b, args);
	else
		buf_adds(&b, "{}");
	if (b.len > gw->conf.max_args_bytes || b.len > IPC_MAX_ACTION_TEXT) {
		buf_free(&b);
		fail(s, id, batch, slot, TV_TOO_LARGE, "args over "
		    "max_args_bytes", NULL);
		return;
	}
	if (!gw->up.ready) {
		buf_free(&b);
		fail(s, id, batch, slot, TV_UNAVAILABLE, "writer link down; "
		    "retry later", NULL);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->num = ++a->next_call;
	c->session = s->id;
	c->id = id != NULL ? xstrdup(id) : NULL;
	c->batch = batch;
	c->slot = slot;
	TAILQ_INSERT_TAIL(&a->calls, c, entry);
	s->pending_actions++;
	a->ncalls++;
	memset(&q, 0, sizeof(q));
	q.session_id = s->session_id != NULL ? s->session_id : "";
	q.session_idlen = strlen(q.session_id);
	q.udf_path = udf->valuestring;
	q.udf_pathlen = strlen(udf->valuestring);
	q.args = b.data;
	q.argslen = b.len;
	actmsg_build_call(&m, IPC_ACTION, c->num, &q);
	up_msg(gw, &m);
	buf_free(&b);
}

/* The answer to call c, which is out of the list; frees c. */
static void
call_done(struct gateway *gw, struct gcall *c, int code, int64_t ts,
    const char *message, size_t msglen, const char *text, size_t textlen)
{
	struct session	*s = session_find(gw, c->session);
	struct buf	 b, r;
	size_t		 len;
	char		 msg[IPC_MAX_ACTION_MESSAGE + 1];

	if (s != NULL)
		s->pending_actions--;
	if (c->id == NULL) {
		rpc_answer(s, c->batch, c->slot, 0, 0, NULL, 0);
		gcall_free(c);
		return;
	}
	memcpy(msg, message, msglen);
	msg[msglen] = '\0';
	buf_init(&b);
	if (code == TV_OK) {
		buf_init(&r);
		buf_adds(&r, "{\"value\":");
		buf_add(&r, text, textlen);
		buf_adds(&r, ",\"ts\":");
		buf_add_i64(&r, ts);
		buf_addc(&r, '}');
		rpc_result_text(&b, c->id, r.data, r.len);
		buf_free(&r);
	} else if (code == TV_ACTION_FAILED) {
		buf_adds(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
		buf_adds(&b, c->id);
		buf_adds(&b, ",\"error\":{\"code\":");
		buf_add_i64(&b, code);
		buf_adds(&b, ",\"message\":");
		json_print_string(&b, msg, msglen);
		buf_adds(&b, ",\"data\":{\"kind\":\"ActionFailed\",\"data\":");
		if (textlen > 0)
			buf_add(&b, text, textlen);
		else
			buf_adds(&b, "null");
		buf_adds(&b, "}}}");
	} else
		rpc_error_text(&b, c->id, code, msg, code == TV_UNAVAILABLE ?
		    "unknown" : NULL);
	len = b.len;
	/* What the action wrote is on screen before its answer. */
	if (ts > gw->ts)
		query_schedule_refresh(gw);
	rpc_answer(s, c->batch, c->slot, ts, 0, buf_steal(&b, NULL), len);
	gcall_free(c);
}

/* A provider answered: anything but a request.  0, or -1 not ours. */
int
action_response(struct session *s, const cJSON *msg)
{
	struct gateway		*gw = s->gw;
	struct actions		*a = acts(gw);
	const cJSON		*id, *result, *error, *em, *data;
	struct actmsg_outcome	 o;
	struct grun		*r;
	struct ipc_msg		 m;
	struct buf		 text;
	char			 want[ACTION_RUN_ID_LEN];

	id = json_get(msg, "id");
	if (s->prov == NULL || !cJSON_IsString(id))
		return -1;
	TAILQ_FOREACH(r, &a->runs, entry) {
		if (r->session != s->id)
			continue;
		snprintf(want, sizeof(want), "r%" PRIu64, r->num);
		if (strcmp(want, id->valuestring) == 0)
			break;
	}
	if (r == NULL)
		return -1;
	TAILQ_REMOVE(&a->runs, r, entry);
	memset(&o, 0, sizeof(o));
	o.call = r->call;
	o.ts = s->sent_ts;
	o.message = "";
	buf_init(&text);
	result = json_get(msg, "result");
	error = json_get(msg, "error");
	if (result != NULL) {
		json_print(&text, result);
		o.code = TV_OK;
	} else {
		o.code = TV_ACTION_FAILED;
		em = json_get(error, "message");
		if (cJSON_IsString(em)) {
			o.message = em->valuestring;
			o.messagelen = utf8_cut(em->valuestring,
			    strlen(em->valuestring), IPC_MAX_ACTION_MESSAGE);
			if (memchr(o.message, '\0', o.messagelen) != NULL)
				o.messagelen = strlen(o.message);
		} else
			o.message = "the action failed";
		if (o.messagelen == 0)
			o.messagelen = strlen(o.message);
		if ((data = json_get(error, "data")) != NULL)
			json_print(&text, data);
	}
	if (text.len > IPC_MAX_ACTION_TEXT) {
		o.code = TV_TOO_LARGE;
		o.message = "the action's answer is too large";
		o.messagelen = strlen(o.message);
		buf_reset(&text);
	}
	o.text = text.data != NULL ? text.data : "";
	o.textlen = text.len;
	actmsg_build_outcome(&m, IPC_RUN_DONE, 0, &o);
	up_msg(gw, &m);
	buf_free(&text);
	free(r);
	return 0;
}

/* Tell provider s that its call r is off; r is out of the list. */
static void
run_cancel(struct gateway *gw, struct grun *r)
{
	struct session	*s = session_find(gw, r->session);
	char		 text[128];
	int		 n;

	if (s != NULL) {
		n = snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\","
		    "\"method\":\"tinyvex/cancelAction\",\"params\":"
		    "{\"id\":\"r%" PRIu64 "\"}}", r->num);
		session_hold(s, 0, 0, xstrndup(text, (size_t)n), (size_t)n);
	}
	free(r);
}

static void
handle_run(struct gateway *gw, const struct actmsg_call *q)
{
	struct actions	*a = acts(gw);
	struct session	*s = session_find(gw, q->provider);
	struct grun	*r;
	struct buf	 b;
	size_t		 len;

	/* Gone: writerd learns it from IPC_PROVIDER_GONE. */
	if (s == NULL || s->prov == NULL || s->closing)
		return;
	r = xcalloc(1, sizeof(*r));
	r->call = q->call;
	r->session = s->id;
	r->num = ++a->next_run;
	TAILQ_INSERT_TAIL(&a->runs, r, entry);
	a->nruns++;
	buf_init(&b);
	buf_adds(&b, "{\"jsonrpc\":\"2.0\",\"id\":\"r");
	buf_add_u64(&b, r->num);
	buf_adds(&b, "\",\"method\":\"tinyvex/runAction\",\"params\":"
	    "{\"udfPath\":");
	json_print_string(&b, q->udf_path, q->udf_pathlen);
	buf_adds(&b, ",\"args\":");
	buf_add(&b, q->args, q->argslen);
	buf_adds(&b, ",\"sessionId\":");
	json_print_string(&b, q->session_id, q->session_idlen);
	buf_adds(&b, "}}");
	len = b.len;
	session_hold(s, 0, 0, buf_steal(&b, NULL), len);
}

static void
handle_provided(struct gateway *gw, uint32_t seq,
    const struct actmsg_outcome *o)
{
	struct actions	*a = acts(gw);
	struct gprov	*p;
	struct session	*s;
	struct buf	 r;
	char		 msg[IPC_MAX_ACTION_MESSAGE + 1];
	char		 pid[128];
	size_t		 i;
	int		 n;

	if (seq == 0) {
		/* A registration again after a reconnect: nobody waits. */
		if (o->code != TV_OK)
			log_warnx("writerd refused to register a provider "
			    "again: %.*s", (int)o->messagelen, o->message);
		return;
	}
	TAILQ_FOREACH(p, &a->provides, entry)
		if (p->seq == seq)
			break;
	if (p == NULL)
		return;
	TAILQ_REMOVE(&a->provides, p, entry);
	s = session_find(gw, p->session);
	if (o->code != TV_OK) {
		memcpy(msg, o->message, o->messagelen);
		msg[o->messagelen] = '\0';
		fail(s, p->id, p->batch, p->slot, (int)o->code, msg, NULL);
		gprov_free(p);
		return;
	}
	if (s != NULL && s->prov != NULL) {
		for (i = 0; i < p->nnames; i++)
			if (!has_name(s->prov->names, s->prov->nnames,
			    p->names[i]) && s->prov->nnames < IPC_MAX_FUNCTIONS) {
				s->prov->names[s->prov->nnames++] = p->names[i];
				p->names[i] = NULL;
			}
		s->prov->concurrency = p->concurrency;
	}
	/* Unique over gateways: this gateway's id, then the number. */
	n = snprintf(pid, sizeof(pid), "%s/%" PRIu64, gw->gateway_id,
	    p->session);
	buf_init(&r);
	buf_adds(&r, "{\"providerId\":");
	json_print_string(&r, pid, (size_t)n);
	buf_addc(&r, '}');
	succeed(s, p->id, p->batch, p->slot, 0, r.data, r.len);
	buf_free(&r);
	gprov_free(p);
}

/* One provider or action frame from writerd (trusted: bad is fatal). */
void
action_frame(struct gateway *gw, const struct ipc_hdr *h,
    const unsigned char *body, size_t len)
{
	struct actions		*a = acts(gw);
	struct actmsg_outcome	 o;
	struct actmsg_call	 q;
	struct gcall		*c;
	struct grun		*r;
	uint64_t		 call;

	switch (h->type) {
	case IPC_PROVIDED:
		if (actmsg_provided(body, len, &o) == -1)
			fatalx("malformed PROVIDED from writerd");
		handle_provided(gw, h->seq, &o);
		break;
	case IPC_RUN:
		if (actmsg_run(body, len, &q) == -1)
			fatalx("malformed RUN from writerd");
		handle_run(gw, &q);
		break;
	case IPC_RUN_CANCEL:
		if (actmsg_id(body, len, &call) == -1)
			fatalx("malformed RUN_CANCEL from writerd");
		TAILQ_FOREACH(r, &a->runs, entry)
			if (r->call == call)
				break;
		if (r != NULL) {
			TAILQ_REMOVE(&a->runs, r, entry);
			run_cancel(gw, r);
		}
		break;
	case IPC_ACTION_DONE:
		if (actmsg_action_done(body, len, &o) == -1)
			fatalx("malformed ACTION_DONE from writerd");
		TAILQ_FOREACH(c, &a->calls, entry)
			if (c->num == h->seq)
				break;
		if (c == NULL) {
			log_debug("outcome of unknown call %u", h->seq);
			break;
		}
		TAILQ_REMOVE(&a->calls, c, entry);
		call_done(gw, c, (int)o.code, o.ts, o.message, o.messagelen,
		    o.text, o.textlen);
		break;
	default:
		fatalx("unexpected message %u from writerd", h->type);
	}
}

/* Session s is going away: cancel its calls, report it gone. */
void
action_session_gone(struct session *s)
{
	struct gateway	*gw = s->gw;
	struct actions	*a = acts(gw);
	struct gcall	*c, *tc;
	struct grun	*r, *tr;
	struct gprov	*p, *tp;
	struct ipc_msg	 m;

	if (a == NULL)
		return;
	TAILQ_FOREACH_SAFE(c, &a->calls, entry, tc) {
		if (c->session != s->id)
			continue;
		TAILQ_REMOVE(&a->calls, c, entry);
		actmsg_build_cancel(&m, c->num);
		up_msg(gw, &m);
		rpc_answer(NULL, c->batch, c->slot, 0, 0, NULL, 0);
		gcall_free(c);
	}
	TAILQ_FOREACH_SAFE(p, &a->provides, entry, tp) {
		if (p->session != s->id)
			continue;
		TAILQ_REMOVE(&a->provides, p, entry);
		rpc_answer(NULL, p->batch, p->slot, 0, 0, NULL, 0);
		gprov_free(p);
	}
	TAILQ_FOREACH_SAFE(r, &a->runs, entry, tr) {
		if (r->session != s->id)
			continue;
		TAILQ_REMOVE(&a->runs, r, entry);
		free(r);
	}
	if (s->prov != NULL && s->prov->sent) {
		actmsg_build_id(&m, IPC_PROVIDER_GONE, s->id);
		up_msg(gw, &m);
	}
	sprov_free(s->prov);
	s->prov = NULL;
}

/* The writer link dropped: nothing in flight can finish. */
void
action_link_lost(struct gateway *gw)
{
	struct actions	*a = acts(gw);
	struct gcall	*c;
	struct grun	*r;
	struct gprov	*p;
	static const char lost[] = "writer link lost; the outcome is unknown";

	if (a == NULL)
		return;
	while ((c = TAILQ_FIRST(&a->calls)) != NULL) {
		TAILQ_REMOVE(&a->calls, c, entry);
		call_done(gw, c, TV_UNAVAILABLE, 0, lost, sizeof(lost) - 1,
		    "", 0);
	}
	while ((p = TAILQ_FIRST(&a->provides)) != NULL) {
		TAILQ_REMOVE(&a->provides, p, entry);
		fail(session_find(gw, p->session), p->id, p->batch,
		    p->slot, TV_UNAVAILABLE, "writer link lost; retry later",
		    NULL);
		gprov_free(p);
	}
	while ((r = TAILQ_FIRST(&a->runs)) != NULL) {
		TAILQ_REMOVE(&a->runs, r, entry);
		run_cancel(gw, r);
	}
}

/* The writer link is up: register this gateway's providers again. */
void
action_link_up(struct gateway *gw)
{
	struct session	*s;
	struct ipc_msg	 m;

	TAILQ_FOREACH(s, &gw->sessions, entry) {
		if (s->prov == NULL || s->prov->nnames == 0 || s->closing)
			continue;
		actmsg_build_names(&m, IPC_PROVIDE, 0, s->id,
		    s->prov->concurrency, (const char *const *)s->prov->names,
		    NULL, (uint32_t)s->prov->nnames);
		up_msg(gw, &m);
	}
}

/* Figures for the stats sent to writerd. */
void
action_stats(struct gateway *gw, struct buf *b)
{
	struct actions	*a = acts(gw);
	struct session	*s;
	struct gcall	*c;
	struct grun	*r;
	uint64_t	 providers = 0, calls = 0, runs = 0;

	TAILQ_FOREACH(s, &gw->sessions, entry)
		if (s->prov != NULL && s->prov->nnames > 0)
			providers++;
	TAILQ_FOREACH(c, &a->calls, entry)
		calls++;
	TAILQ_FOREACH(r, &a->runs, entry)
		runs++;
	buf_adds(b, ",\"providers\":");
	buf_add_u64(b, providers);
	buf_adds(b, ",\"actions_waiting\":");
	buf_add_u64(b, calls);
	buf_adds(b, ",\"actions_running\":");
	buf_add_u64(b, runs);
	buf_adds(b, ",\"actions_called\":");
	buf_add_u64(b, a->ncalls);
	buf_adds(b, ",\"actions_run\":");
	buf_add_u64(b, a->nruns);
}
