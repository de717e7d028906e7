/*
 * The one registry of providers and the routing of action calls.  A
 * gateway tells writerd which functions each of its provider connections
 * serves; a client's action call arrives from any gateway, goes to a
 * provider of its name (an exact name before a prefix, then the provider
 * with the fewest calls in flight), waits in a bounded queue when every
 * such provider is at its concurrency, and its answer goes back to the
 * caller's gateway.
 *
 * Everything is held by id, never by pointer across a hop: a provider is
 * (gateway link id, provider id), a call is writerd's call id and names
 * its caller as (gateway link id, the gateway's call number).  Sending to
 * a gateway may drop that gateway's link, and a dropped link comes back
 * here (registry_gw_gone) before the send returns; so a function that
 * sends takes what it sends out of the registry first, sends last, and
 * looks everything up again afterwards.
 *
 * A call ends exactly once: answered by its provider, failed when its
 * provider's connection or gateway goes (Unavailable, outcome unknown),
 * timed out after action_timeout (Unavailable, and the provider is told to
 * cancel), or cancelled when its caller leaves.  Nothing is resent.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "actmsg.h"
#include "json.h"
#include "log.h"
#include "writerd.h"

#define REG_MAX_PROVIDERS	4096	/* providers over every gateway */
#define REG_ARGS_DEPTH		JSON_MAX_DEPTH	/* args, values, data */

static void	reg_timer(evutil_socket_t, short, void *);
static void	reg_dispatch(struct writerd *);

void
registry_init(struct writerd *wd)
{
	struct registry	*reg = &wd->reg;

	memset(reg, 0, sizeof(*reg));
	TAILQ_INIT(&reg->providers);
	TAILQ_INIT(&reg->calls);
	TAILQ_INIT(&reg->queue);
	reg->timer = evtimer_new(wd->base, reg_timer, wd);
	if (reg->timer == NULL)
		fatalx("evtimer_new");
}

static void
call_free(struct acall *c)
{
	free(c->session_id);
	free(c->udf_path);
	free(c->args);
	free(c);
}

static void
provider_free(struct provider *p)
{
	size_t	 i;

	for (i = 0; i < p->nnames; i++)
		free(p->names[i]);
	free(p);
}

void
registry_free(struct writerd *wd)
{
	struct registry	*reg = &wd->reg;
	struct provider	*p;
	struct acall	*c;

	while ((c = TAILQ_FIRST(&reg->calls)) != NULL) {
		TAILQ_REMOVE(&reg->calls, c, entry);
		call_free(c);
	}
	while ((p = TAILQ_FIRST(&reg->providers)) != NULL) {
		TAILQ_REMOVE(&reg->providers, p, entry);
		provider_free(p);
	}
	if (reg->timer != NULL)
		event_free(reg->timer);
	memset(reg, 0, sizeof(*reg));
}

static struct provider *
provider_find(struct writerd *wd, uint32_t gw_id, uint64_t id)
{
	struct provider	*p;

	TAILQ_FOREACH(p, &wd->reg.providers, entry)
		if (p->gw_id == gw_id && p->id == id)
			return p;
	return NULL;
}

static size_t
hash_slot(uint64_t id)
{
	return (size_t)(id * 0x9e3779b97f4a7c15ULL >> 54) % REG_HASH_SIZE;
}

static struct acall *
call_find(struct writerd *wd, uint64_t id)
{
	struct acall	*c;

	for (c = wd->reg.hash[hash_slot(id)]; c != NULL; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

/*
 * Take c out of the registry: the hash, the list of calls, the queue.
 * A call that was running keeps its provider's ids; the caller adjusts
 * that provider's count.
 */
static void
call_unlink(struct writerd *wd, struct acall *c)
{
	struct registry	*reg = &wd->reg;
	struct acall	**pp;

	for (pp = &reg->hash[hash_slot(c->id)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	TAILQ_REMOVE(&reg->calls, c, entry);
	reg->ncalls--;
	if (c->queued) {
		TAILQ_REMOVE(&reg->queue, c, qentry);
		reg->nqueued--;
		c->queued = 0;
	}
}

/* The caller's gateway gets the outcome of its call seq (if still there). */
static void
answer(struct writerd *wd, uint32_t gw_id, uint32_t seq, int code,
    int64_t ts, const char *message, const char *text, size_t textlen)
{
	struct actmsg_outcome	 o;
	struct ipc_msg		 m;

	memset(&o, 0, sizeof(o));
	o.code = code;
	o.ts = ts;
	o.message = message;
	o.messagelen = strlen(message);
	o.text = text;
	o.textlen = textlen;
	actmsg_build_outcome(&m, IPC_ACTION_DONE, seq, &o);
	notify_send(wd, gw_id, ipc_msg_finish(&m));
	ipc_msg_free(&m);
}

/* Tell a provider's gateway that call id is over. */
static void
cancel_run(struct writerd *wd, uint32_t gw_id, uint64_t id)
{
	struct ipc_msg	 m;

	actmsg_build_id(&m, IPC_RUN_CANCEL, id);
	notify_send(wd, gw_id, ipc_msg_finish(&m));
	ipc_msg_free(&m);
}

/* A slot of the provider that ran c is free again. */
static void
slot_free(struct writerd *wd, const struct acall *c)
{
	struct provider	*p;

	if ((p = provider_find(wd, c->prov_gw, c->prov_id)) != NULL &&
	    p->inflight > 0)
		p->inflight--;
}

static void
timer_arm(struct writerd *wd)
{
	struct acall	*c = TAILQ_FIRST(&wd->reg.calls);
	struct timeval	 tv;
	int64_t		 d;

	if (c == NULL) {
		evtimer_del(wd->reg.timer);
		return;
	}
	d = c->deadline - mono_us();
	if (d < 0)
		d = 0;
	tv.tv_sec = d / 1000000;
	tv.tv_usec = d % 1000000;
	evtimer_add(wd->reg.timer, &tv);
}

/*
 * The provider for udf_path: among the providers of the best class (an
 * exact name, else a prefix), the one with the fewest calls in flight
 * that has a slot free (ties: the one sent fewer calls).  NULL when every
 * one is busy; *known is 0 when no provider serves the name at all.
 */
static struct provider *
route(struct writerd *wd, const char *path, size_t pathlen, int *known)
{
	struct provider	*p, *best;
	size_t		 i;
	int		 cls, exact, served;

	*known = 0;
	for (cls = 0; cls < 2; cls++) {
		exact = cls == 0;
		best = NULL;
		TAILQ_FOREACH(p, &wd->reg.providers, entry) {
			served = 0;
			for (i = 0; i < p->nnames && !served; i++) {
				size_t	 n = strlen(p->names[i]);

				if ((p->names[i][n - 1] != '*') == exact &&
				    actmsg_name_match(p->names[i], n, path,
				    pathlen))
					served = 1;
			}
			if (!served)
				continue;
			*known = 1;
			if (p->inflight >= p->concurrency)
				continue;
			if (best == NULL || p->inflight < best->inflight ||
			    (p->inflight == best->inflight &&
			    p->sent < best->sent))
				best = p;
		}
		if (*known)
			return best;
	}
	return NULL;
}

/*
 * Send c to provider p.  c must be out of the queue.  The send may drop
 * p's gateway, which fails c: neither c nor p may be used afterwards.
 */
static void
run(struct writerd *wd, struct acall *c, struct provider *p)
{
	struct actmsg_call	 q;
	struct ipc_msg		 m;
	uint32_t		 gw_id = p->gw_id;

	c->prov_gw = p->gw_id;
	c->prov_id = p->id;
	p->inflight++;
	p->sent++;
	memset(&q, 0, sizeof(q));
	q.call = c->id;
	q.provider = p->id;
	q.session_id = c->session_id;
	q.session_idlen = strlen(c->session_id);
	q.udf_path = c->udf_path;
	q.udf_pathlen = strlen(c->udf_path);
	q.args = c->args;
	q.argslen = c->argslen;
	actmsg_build_call(&m, IPC_RUN, 0, &q);
	notify_send(wd, gw_id, ipc_msg_finish(&m));
	ipc_msg_free(&m);
}

/* Send queued calls to providers with a slot free, oldest first. */
static void
reg_dispatch(struct writerd *wd)
{
	struct registry	*reg = &wd->reg;
	struct provider	*p;
	struct acall	*c, *next;
	uint64_t	 gen;
	int64_t		 slots;
	int		 known;

again:
	gen = reg->gen;
	slots = 0;
	TAILQ_FOREACH(p, &reg->providers, entry)
		if (p->inflight < p->concurrency)
			slots += p->concurrency - p->inflight;
	for (c = TAILQ_FIRST(&reg->queue); c != NULL && slots > 0; c = next) {
		next = TAILQ_NEXT(c, qentry);
		p = route(wd, c->udf_path, strlen(c->udf_path), &known);
		if (p == NULL && known)
			continue;
		TAILQ_REMOVE(&reg->queue, c, qentry);
		reg->nqueued--;
		c->queued = 0;
		if (p == NULL) {
			/* Its providers stopped serving the name. */
			call_unlink(wd, c);
			reg->not_found++;
			answer(wd, c->caller_gw, c->caller_seq, TV_NOT_FOUND,
			    0, "no provider serves this action", "", 0);
			call_free(c);
		} else {
			run(wd, c, p);
			slots--;
		}
		if (reg->gen != gen)
			goto again;
	}
	timer_arm(wd);
}

/* A new call from gateway gw_id. */
static void
handle_action(struct writerd *wd, uint32_t gw_id, uint32_t seq,
    const struct actmsg_call *q)
{
	struct registry	*reg = &wd->reg;
	struct provider	*p;
	struct acall	*c;
	char		 path[IPC_MAX_UDF_LEN + 1];
	int		 known;

	memcpy(path, q->udf_path, q->udf_pathlen);
	path[q->udf_pathlen] = '\0';
	reg->received++;
	if (wd->stopping) {
		answer(wd, gw_id, seq, TV_UNAVAILABLE, 0, "writer is stopping",
		    "", 0);
		return;
	}
	if (q->argslen > wd->conf.max_args_bytes) {
		answer(wd, gw_id, seq, TV_TOO_LARGE, 0,
		    "args over max_args_bytes", "", 0);
		return;
	}
	p = route(wd, path, q->udf_pathlen, &known);
	if (!known) {
		reg->not_found++;
		answer(wd, gw_id, seq, TV_NOT_FOUND, 0, "no provider serves "
		    "this action", "", 0);
		return;
	}
	if (p == NULL && reg->nqueued >= (size_t)wd->conf.action_queue) {
		reg->overloaded++;
		answer(wd, gw_id, seq, TV_OVERLOADED, 0, "every provider of "
		    "this action is busy and the queue is full", "", 0);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->id = ++reg->next_call;
	c->caller_gw = gw_id;
	c->caller_seq = seq;
	c->deadline = mono_us() + wd->conf.action_timeout_us;
	c->session_id = xstrndup(q->session_id, q->session_idlen);
	c->udf_path = xstrdup(path);
	c->args = xstrndup(q->args, q->argslen);
	c->argslen = q->argslen;
	c->hnext = reg->hash[hash_slot(c->id)];
	reg->hash[hash_slot(c->id)] = c;
	TAILQ_INSERT_TAIL(&reg->calls, c, entry);
	reg->ncalls++;
	if (TAILQ_FIRST(&reg->calls) == c)
		timer_arm(wd);
	if (p == NULL) {
		c->queued = 1;
		TAILQ_INSERT_TAIL(&reg->queue, c, qentry);
		reg->nqueued++;
		return;
	}
	run(wd, c, p);
}

/* The caller of gw_id's call number seq left. */
static void
handle_cancel(struct writerd *wd, uint32_t gw_id, uint32_t seq)
{
	struct acall	*c;
	int		 running;

	TAILQ_FOREACH(c, &wd->reg.calls, entry)
		if (c->caller_gw == gw_id && c->caller_seq == seq)
			break;
	if (c == NULL)
		return;		/* answered already */
	running = !c->queued;
	call_unlink(wd, c);
	wd->reg.cancelled++;
	if (running) {
		slot_free(wd, c);
		cancel_run(wd, c->prov_gw, c->id);
	}
	call_free(c);
	reg_dispatch(wd);
}

/* A provider answered call q->call. */
static int
handle_run_done(struct writerd *wd, uint32_t gw_id,
    const struct actmsg_outcome *o)
{
	struct registry	*reg = &wd->reg;
	struct provider	*p;
	struct acall	*c;
	char		 msg[IPC_MAX_ACTION_MESSAGE + 1];
	cJSON		*v;
	enum json_err	 jerr;

	/* What goes to the caller verbatim must be JSON. */
	if (o->textlen > 0) {
		if ((v = json_parse(o->text, o->textlen, REG_ARGS_DEPTH,
		    &jerr)) == NULL)
			return -1;
		cJSON_Delete(v);
	}
	c = call_find(wd, o->call);
	if (c == NULL || c->queued || c->prov_gw != gw_id) {
		/* Timed out or cancelled meanwhile: nobody waits for it. */
		log_debug("answer to call %llu, which is over",
		    (unsigned long long)o->call);
		return 0;
	}
	call_unlink(wd, c);
	if ((p = provider_find(wd, c->prov_gw, c->prov_id)) != NULL) {
		if (p->inflight > 0)
			p->inflight--;
		if (o->code == TV_OK)
			p->completed++;
		else
			p->failed++;
	}
	if (o->code == TV_OK)
		reg->completed++;
	else
		reg->failed++;
	memcpy(msg, o->message, o->messagelen);
	msg[o->messagelen] = '\0';
	answer(wd, c->caller_gw, c->caller_seq, (int)o->code, o->ts, msg,
	    o->text, o->textlen);
	call_free(c);
	reg_dispatch(wd);
	return 0;
}

static void
provided(struct writerd *wd, uint32_t gw_id, uint32_t seq, int code,
    const char *message)
{
	struct ipc_msg	 m;

	actmsg_build_provided(&m, seq, code, message);
	notify_send(wd, gw_id, ipc_msg_finish(&m));
	ipc_msg_free(&m);
}

static void
handle_provide(struct writerd *wd, uint32_t gw_id, uint32_t seq,
    const struct actmsg_names *q)
{
	struct registry	*reg = &wd->reg;
	struct provider	*p;
	size_t		 i, j, nnew = 0, count = 0;

	for (i = 0; i < q->n; i++)
		if (actmsg_name_kind(q->name[i], q->namelen[i]) ==
		    ACT_NAME_RESERVED) {
			provided(wd, gw_id, seq, TV_VALIDATION,
			    "db/ names are reserved");
			return;
		}
	if ((p = provider_find(wd, gw_id, q->provider)) == NULL) {
		TAILQ_FOREACH(p, &reg->providers, entry)
			count++;
		if (count >= REG_MAX_PROVIDERS) {
			provided(wd, gw_id, seq, TV_TOO_LARGE,
			    "too many providers");
			return;
		}
		p = xcalloc(1, sizeof(*p));
		p->gw_id = gw_id;
		p->id = q->provider;
		TAILQ_INSERT_TAIL(&reg->providers, p, entry);
	}
	/* Count the names that are new before adding any. */
	for (i = 0; i < q->n; i++) {
		for (j = 0; j < p->nnames; j++)
			if (strlen(p->names[j]) == q->namelen[i] &&
			    memcmp(p->names[j], q->name[i], q->namelen[i]) == 0)
				break;
		if (j == p->nnames)
			nnew++;
	}
	if (p->nnames + nnew > IPC_MAX_FUNCTIONS) {
		provided(wd, gw_id, seq, TV_TOO_LARGE, "more functions than "
		    "a provider may serve");
		return;
	}
	for (i = 0; i < q->n; i++) {
		for (j = 0; j < p->nnames; j++)
			if (strlen(p->names[j]) == q->namelen[i] &&
			    memcmp(p->names[j], q->name[i], q->namelen[i]) == 0)
				break;
		if (j == p->nnames)
			p->names[p->nnames++] = xstrndup(q->name[i],
			    q->namelen[i]);
	}
	p->concurrency = (int)q->concurrency;
	log_debug("gateway %u: provider %llu serves %zu functions", gw_id,
	    (unsigned long long)p->id, p->nnames);
	provided(wd, gw_id, seq, TV_OK, "");
	reg_dispatch(wd);
}

static void
handle_unprovide(struct writerd *wd, uint32_t gw_id,
    const struct actmsg_names *q)
{
	struct provider	*p;
	size_t		 i, j;

	if ((p = provider_find(wd, gw_id, q->provider)) == NULL)
		return;
	for (i = 0; i < q->n; i++)
		for (j = 0; j < p->nnames; j++)
			if (strlen(p->names[j]) == q->namelen[i] &&
			    memcmp(p->names[j], q->name[i], q->namelen[i]) ==
			    0) {
				free(p->names[j]);
				p->names[j] = p->names[--p->nnames];
				break;
			}
	/* Queued calls only it could have served now find none. */
	reg_dispatch(wd);
}

/*
 * Fail every call in flight on the providers that match (gw_id, and id
 * unless all), and remove those providers.
 */
static void
providers_gone(struct writerd *wd, uint32_t gw_id, int all, uint64_t id)
{
	struct registry	*reg = &wd->reg;
	struct provider	*p, *tp;
	struct acall	*c, *tc;
	struct acallq	 lost;

	TAILQ_INIT(&lost);
	TAILQ_FOREACH_SAFE(c, &reg->calls, entry, tc)
		if (!c->queued && c->prov_gw == gw_id &&
		    (all || c->prov_id == id)) {
			call_unlink(wd, c);
			TAILQ_INSERT_TAIL(&lost, c, entry);
		}
	TAILQ_FOREACH_SAFE(p, &reg->providers, entry, tp)
		if (p->gw_id == gw_id && (all || p->id == id)) {
			TAILQ_REMOVE(&reg->providers, p, entry);
			provider_free(p);
		}
	reg->gen++;
	while ((c = TAILQ_FIRST(&lost)) != NULL) {
		TAILQ_REMOVE(&lost, c, entry);
		reg->lost++;
		answer(wd, c->caller_gw, c->caller_seq, TV_UNAVAILABLE, 0,
		    "the action's provider went away; the outcome is unknown",
		    "", 0);
		call_free(c);
	}
}

/*
 * Gateway link gw_id is gone (already out of wd->gateways): its providers
 * go, the calls they were running fail, and the calls its clients made
 * are cancelled.
 */
void
registry_gw_gone(struct writerd *wd, uint32_t gw_id)
{
	struct registry	*reg = &wd->reg;
	struct acall	*c, *tc;
	struct acallq	 mine;

	if (reg->timer == NULL)
		return;
	TAILQ_INIT(&mine);
	TAILQ_FOREACH_SAFE(c, &reg->calls, entry, tc)
		if (c->caller_gw == gw_id) {
			call_unlink(wd, c);
			TAILQ_INSERT_TAIL(&mine, c, entry);
		}
	providers_gone(wd, gw_id, 1, 0);
	while ((c = TAILQ_FIRST(&mine)) != NULL) {
		TAILQ_REMOVE(&mine, c, entry);
		reg->cancelled++;
		if (c->prov_gw != 0 && c->prov_gw != gw_id) {
			slot_free(wd, c);
			cancel_run(wd, c->prov_gw, c->id);
		}
		call_free(c);
	}
	if (!wd->stopping)
		reg_dispatch(wd);
}

/* Calls past action_timeout: Unavailable, and a cancel to the provider. */
static void
reg_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct writerd	*wd = arg;
	struct registry	*reg = &wd->reg;
	struct acall	*c;
	struct provider	*p;
	int64_t		 now = mono_us();

	(void)fd;
	(void)ev;
	while ((c = TAILQ_FIRST(&reg->calls)) != NULL && c->deadline <= now) {
		call_unlink(wd, c);
		reg->timed_out++;
		if (c->prov_gw != 0) {
			if ((p = provider_find(wd, c->prov_gw,
			    c->prov_id)) != NULL) {
				p->timed_out++;
				if (p->inflight > 0)
					p->inflight--;
			}
			cancel_run(wd, c->prov_gw, c->id);
		}
		answer(wd, c->caller_gw, c->caller_seq, TV_UNAVAILABLE, 0,
		    "no answer within action_timeout; the outcome is unknown",
		    "", 0);
		call_free(c);
	}
	reg_dispatch(wd);
}

/*
 * One provider or action frame from gateway gw_id.  Returns 0 go on, 1
 * the link is gone already, -1 bad frame (drop the link).
 */
int
registry_frame(struct writerd *wd, uint32_t gw_id, const struct ipc_hdr *h,
    const unsigned char *body, size_t len)
{
	struct actmsg_names	 names;
	struct actmsg_call	 call;
	struct actmsg_outcome	 o;
	cJSON			*v;
	enum json_err		 jerr;
	uint64_t		 id;
	uint32_t		 seq;

	switch (h->type) {
	case IPC_PROVIDE:
		if (actmsg_provide(body, len, &names) == -1)
			return -1;
		handle_provide(wd, gw_id, h->seq, &names);
		break;
	case IPC_UNPROVIDE:
		if (actmsg_unprovide(body, len, &names) == -1)
			return -1;
		handle_unprovide(wd, gw_id, &names);
		break;
	case IPC_PROVIDER_GONE:
		if (actmsg_id(body, len, &id) == -1)
			return -1;
		providers_gone(wd, gw_id, 0, id);
		reg_dispatch(wd);
		break;
	case IPC_ACTION:
		if (actmsg_action(body, len, &call) == -1)
			return -1;
		/* The args go to a provider verbatim: a JSON object. */
		if ((v = json_parse(call.args, call.argslen, REG_ARGS_DEPTH,
		    &jerr)) == NULL)
			return -1;
		if (!cJSON_IsObject(v)) {
			cJSON_Delete(v);
			return -1;
		}
		cJSON_Delete(v);
		handle_action(wd, gw_id, h->seq, &call);
		break;
	case IPC_ACTION_CANCEL:
		if (actmsg_cancel(body, len, &seq) == -1)
			return -1;
		handle_cancel(wd, gw_id, seq);
		break;
	case IPC_RUN_DONE:
		if (actmsg_run_done(body, len, &o) == -1 ||
		    handle_run_done(wd, gw_id, &o) == -1)
			return -1;
		break;
	default:
		return -1;
	}
	return notify_gw_find(wd, gw_id) == NULL ? 1 : 0;
}

/* Figures for tinyvexctl stats. */
void
registry_stats(struct writerd *wd, cJSON *r)
{
	struct registry	*reg = &wd->reg;
	struct provider	*p;
	struct gwlink	*gw;
	cJSON		*a, *ps, *o, *fs;
	int64_t		 inflight = 0;
	size_t		 i;

	a = cJSON_AddObjectToObject(r, "actions");
	ps = cJSON_AddArrayToObject(a, "providers");
	TAILQ_FOREACH(p, &reg->providers, entry) {
		inflight += p->inflight;
		o = cJSON_CreateObject();
		gw = notify_gw_find(wd, p->gw_id);
		cJSON_AddStringToObject(o, "gateway", gw != NULL ? gw->name :
		    "");
		json_add_int(o, "id", (int64_t)p->id);
		fs = cJSON_AddArrayToObject(o, "functions");
		for (i = 0; i < p->nnames; i++)
			cJSON_AddItemToArray(fs,
			    cJSON_CreateString(p->names[i]));
		json_add_int(o, "concurrency", p->concurrency);
		json_add_int(o, "in_flight", p->inflight);
		json_add_int(o, "sent", (int64_t)p->sent);
		json_add_int(o, "completed", (int64_t)p->completed);
		json_add_int(o, "failed", (int64_t)p->failed);
		json_add_int(o, "timed_out", (int64_t)p->timed_out);
		cJSON_AddItemToArray(ps, o);
	}
	json_add_int(a, "in_flight", inflight);
	json_add_int(a, "queued", (int64_t)reg->nqueued);
	json_add_int(a, "calls", (int64_t)reg->received);
	json_add_int(a, "completed", (int64_t)reg->completed);
	json_add_int(a, "failed", (int64_t)reg->failed);
	json_add_int(a, "timed_out", (int64_t)reg->timed_out);
	json_add_int(a, "lost", (int64_t)reg->lost);
	json_add_int(a, "cancelled", (int64_t)reg->cancelled);
	json_add_int(a, "not_found", (int64_t)reg->not_found);
	json_add_int(a, "overloaded", (int64_t)reg->overloaded);
}
