/*
 * One client connection after the upgrade: its query set and versions,
 * the transitions that carry changed results (single-flight: at most one
 * transition unsent at a time; later changes coalesce into the next, at
 * the newest ts), answers held back until the transition they depend on
 * has gone out, chunking of large transitions, and the output limits (a
 * hard limit that drops at once, a soft limit with a grace period).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gatewayd.h"
#include "json.h"
#include "log.h"

/* Room a transitionChunk frame needs beyond its chunk text. */
#define CHUNK_OVERHEAD		256

static void
on_text(void *arg, const char *msg, size_t len)
{
	struct session	*s = arg;

	s->gw->stats.messages_in++;
	s->gw->stats.bytes_in += len;
	rpc_message(s, msg, len);
}

static void
on_closed(void *arg, uint16_t code)
{
	struct session	*s = arg;

	log_debug("session %" PRIu64 ": closed (%u)", s->id, code);
	session_free(s);
}

static void
on_drain(void *arg)
{
	struct session	*s = arg;

	s->inflight = 0;
	s->over_soft_since = 0;
	session_flush(s);
}

struct session *
session_new(struct gateway *gw, struct bufferevent *bev, int token_ok)
{
	static const struct ws_callbacks cb = { on_text, on_closed, on_drain };
	struct ws_limits	 lim;
	struct session		*s;

	assert(gw != NULL && bev != NULL);
	s = xcalloc(1, sizeof(*s));
	s->gw = gw;
	s->id = ++gw->next_session;
	s->token_ok = token_ok;
	s->last_text_us = mono_us();
	TAILQ_INIT(&s->held);
	memset(&lim, 0, sizeof(lim));
	lim.max_message_bytes = gw->conf.max_message_bytes;
	lim.ping_interval_us = gw->conf.ping_interval_us;
	lim.idle_timeout_us = gw->conf.idle_timeout_us;
	lim.pool = &gw->ws_pool;
	if ((s->ws = ws_new(gw->base, bev, &lim, &cb, s)) == NULL) {
		free(s);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&gw->sessions, s, entry);
	htab_insert_key(&gw->session_tab, &s->hent, &s->id, sizeof(s->id));
	gw->nsessions++;
	gw->stats.connections_total++;
	return s;
}

/* The session with this id, or NULL when it has gone. */
struct session *
session_find(struct gateway *gw, uint64_t id)
{
	struct hentry	*e;

	e = htab_get(&gw->session_tab, &id, sizeof(id));
	return e != NULL ? HTAB_ELEM(e, struct session, hent) : NULL;
}

void
session_free(struct session *s)
{
	struct gateway	*gw = s->gw;
	struct held	*h;
	size_t		 i;

	assert(s != NULL && s->gw != NULL);
	action_session_gone(s);
	for (i = 0; i < s->nsubs; i++) {
		query_exec_unwatch(s->subs[i].ex, s);
		query_exec_release(gw, s->subs[i].ex);
	}
	free(s->subs);
	free(s->removed);
	while ((h = TAILQ_FIRST(&s->held)) != NULL) {
		TAILQ_REMOVE(&s->held, h, entry);
		free(h->text);
		free(h);
	}
	if (s->nheld > 0)
		TAILQ_REMOVE(&gw->heldq, s, held_entry);
	if (s->on_flush)
		TAILQ_REMOVE(&gw->flushq, s, flush_entry);
	TAILQ_REMOVE(&gw->sessions, s, entry);
	htab_remove(&gw->session_tab, &s->hent);
	gw->nsessions--;
	ws_free(s->ws);
	free(s->session_id);
	free(s->wait_id);
	free(s);
	if (gw->stopping && gw->nsessions == 0)
		event_base_loopexit(gw->base, NULL);
}

void
session_close(struct session *s, uint16_t code, const char *why)
{
	if (s->closing)
		return;
	s->closing = 1;
	log_debug("session %" PRIu64 ": closing %u: %s", s->id, code, why);
	ws_close(s->ws, code, why);
}

/* Enforce the output limits; called where output is appended. */
void
session_check_limits(struct session *s)
{
	struct gateway	*gw = s->gw;
	size_t		 unsent = ws_unsent(s->ws);

	if (s->closing)
		return;
	if (unsent > gw->conf.output_hard_limit) {
		log_warnx("session %" PRIu64 ": %zu bytes unsent, over the "
		    "hard limit: dropped", s->id, unsent);
		gw->stats.slow_closes++;
		s->closing = 1;
		ws_abort(s->ws, 1013);
		return;
	}
	if (unsent > gw->conf.output_soft_limit) {
		if (s->over_soft_since == 0)
			s->over_soft_since = mono_us();
		else if (mono_us() - s->over_soft_since >
		    gw->conf.output_soft_grace_us) {
			log_warnx("session %" PRIu64 ": over the soft output "
			    "limit for too long: dropped", s->id);
			gw->stats.slow_closes++;
			session_close(s, 1013, "slow consumer");
		}
	} else
		s->over_soft_since = 0;
}

void
session_send(struct session *s, const char *text, size_t len)
{
	assert(text != NULL || len == 0);

	if (s->closing)
		return;
	if (ws_send_text(s->ws, text, len) == -1)
		return;
	s->gw->stats.bytes_out += len;
	s->last_text_us = mono_us();
	session_check_limits(s);
}

/*
 * Send a transition: f holds the tinyvex/transition frame, whose params
 * text starts at off0 and ends before the closing brace.  Over chunkBytes
 * the params go as tinyvex/transitionChunk parts cut on UTF-8 boundaries
 * so that no frame exceeds chunkBytes.
 */
static void
send_transition(struct session *s, const struct buf *f, size_t off0)
{
	struct buf		 c, esc;
	const char		*params = f->data + off0;
	size_t			 plen = f->len - off0 - 1;
	size_t			 budget, off, n, cuts_cap = 0, ncuts = 0, i;
	size_t			*cuts = NULL;
	char			 tid[48];

	if (f->len <= s->gw->conf.chunk_bytes) {
		session_send(s, f->data, f->len);
		return;
	}
	/* Cut points: each part's escaped form must fit the budget. */
	budget = s->gw->conf.chunk_bytes - CHUNK_OVERHEAD;
	buf_init(&esc);
	for (off = 0; off < plen; off += n) {
		size_t	 lo = 1, hi = plen - off, best = 0, mid;

		/* The largest prefix whose escaped length fits. */
		while (lo <= hi) {
			mid = lo + (hi - lo) / 2;
			n = utf8_cut(params + off, plen - off, mid);
			buf_reset(&esc);
			json_print_string(&esc, params + off, n);
			if (n > 0 && esc.len <= budget) {
				best = n;
				lo = mid + 1;
			} else
				hi = mid - 1;
		}
		if (best == 0)
			best = utf8_cut(params + off, plen - off, 4) > 0 ?
			    utf8_cut(params + off, plen - off, 4) : 1;
		n = best;
		if (ncuts == cuts_cap) {
			cuts_cap = cuts_cap == 0 ? 8 : cuts_cap * 2;
			cuts = xreallocarray(cuts, cuts_cap, sizeof(*cuts));
		}
		cuts[ncuts++] = n;
	}
	snprintf(tid, sizeof(tid), "%" PRIu64 "-%" PRIu64, s->id,
	    ++s->transition_seq);
	buf_init(&c);
	for (off = 0, i = 0; i < ncuts; off += cuts[i], i++) {
		buf_reset(&c);
		buf_adds(&c, "{\"jsonrpc\":\"2.0\",\"method\":"
		    "\"tinyvex/transitionChunk\",\"params\":{\"transitionId\":\"");
		buf_adds(&c, tid);
		buf_adds(&c, "\",\"partNumber\":");
		buf_add_u64(&c, i);
		buf_adds(&c, ",\"totalParts\":");
		buf_add_u64(&c, ncuts);
		buf_adds(&c, ",\"chunk\":");
		json_print_string(&c, params + off, cuts[i]);
		buf_adds(&c, "}}");
		session_send(s, c.data, c.len);
	}
	free(cuts);
	buf_free(&esc);
	buf_free(&c);
}

static void
add_version(struct buf *b, uint64_t qs, int64_t ts)
{
	buf_adds(b, "{\"querySet\":");
	buf_add_u64(b, qs);
	buf_adds(b, ",\"identity\":0,\"ts\":");
	buf_add_i64(b, ts);
	buf_addc(b, '}');
}

static void
add_failure(struct buf *b, const struct tv_error *e)
{
	buf_adds(b, "{\"code\":");
	buf_add_i64(b, e->code);
	buf_adds(b, ",\"kind\":\"");
	buf_adds(b, tv_kind(e->code));
	buf_adds(b, "\",\"message\":");
	json_print_string(b, e->message, strlen(e->message));
	if (e->reason != NULL) {
		buf_adds(b, ",\"data\":{\"kind\":\"");
		buf_adds(b, tv_kind(e->code));
		buf_adds(b, "\",\"reason\":\"");
		buf_adds(b, e->reason);
		buf_addc(b, '"');
		buf_addc(b, '}');
	}
	buf_addc(b, '}');
}

/* 1 when a held answer may go out now. */
static int
held_ready(struct session *s, struct held *h)
{
	return h->need_ts <= s->sent_ts && h->need_qs <= s->sent_qs;
}

/*
 * Build and send the next transition if there is anything to send: changed
 * results, removed queries, a new query-set version, or an answer that
 * needs a newer ts.  Then send the answers that it made ready.
 */
void
session_flush(struct session *s)
{
	struct gateway	*gw = s->gw;
	static const char pre[] =
	    "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/transition\",\"params\":";
	struct held	*h, *tmp;
	struct buf	 p;
	struct sub	*sub;
	size_t		 i, nmods = 0;
	int		 need = 0, need_answer = 0;

	if (s->closing)
		return;
	if (s->inflight) {
		if (ws_unsent(s->ws) > 0)
			return;
		s->inflight = 0;
	}
	/* Values not computed yet: wait for the refresh. */
	for (i = 0; i < s->nsubs; i++)
		if (s->subs[i].ex->version == 0)
			return;
	if (s->nremoved > 0 || s->qs_version != s->sent_qs)
		need = 1;
	for (i = 0; !need && i < s->nsubs; i++)
		if (s->subs[i].ex->version != s->subs[i].sent_version)
			need = 1;
	TAILQ_FOREACH(h, &s->held, entry)
		if (!held_ready(s, h) && h->need_ts > s->sent_ts &&
		    h->need_ts <= gw->ts)
			need_answer = 1;
	if ((need || need_answer) && (s->connected || s->nsubs > 0)) {
		gateway_scratch_take(gw, &p);
		buf_add(&p, pre, sizeof(pre) - 1);
		buf_adds(&p, "{\"startVersion\":");
		add_version(&p, s->sent_qs, s->sent_ts);
		buf_adds(&p, ",\"endVersion\":");
		add_version(&p, s->qs_version, gw->ts);
		buf_adds(&p, ",\"modifications\":[");
		for (i = 0; i < s->nremoved; i++) {
			if (nmods++ > 0)
				buf_addc(&p, ',');
			buf_adds(&p, "{\"type\":\"QueryRemoved\",\"queryId\":");
			buf_add_u64(&p, s->removed[i]);
			buf_addc(&p, '}');
		}
		s->nremoved = 0;
		for (i = 0; i < s->nsubs; i++) {
			sub = &s->subs[i];
			if (sub->ex->version == sub->sent_version)
				continue;
			if (nmods++ > 0)
				buf_addc(&p, ',');
			if (sub->ex->ok)
				diff_add_result(&p, s, sub);
			else {
				buf_adds(&p, "{\"type\":\"QueryFailed\","
				    "\"queryId\":");
				buf_add_u64(&p, sub->query_id);
				buf_adds(&p, ",\"error\":");
				add_failure(&p, sub->ex->err);
				buf_addc(&p, '}');
			}
			sub->sent_version = sub->ex->version;
		}
		buf_adds(&p, "],\"serverTs\":");
		buf_add_i64(&p, now_us());
		buf_add(&p, "}}", 2);
		s->sent_qs = s->qs_version;
		if (gw->ts > s->sent_ts)
			s->sent_ts = gw->ts;
		send_transition(s, &p, sizeof(pre) - 1);
		gateway_scratch_give(gw, &p);
		s->transitions++;
		gw->stats.transitions++;
		if (!s->closing && ws_unsent(s->ws) > 0)
			s->inflight = 1;
	}
	s->dirty = 0;
	TAILQ_FOREACH_SAFE(h, &s->held, entry, tmp) {
		if (!held_ready(s, h))
			continue;
		TAILQ_REMOVE(&s->held, h, entry);
		if (--s->nheld == 0)
			TAILQ_REMOVE(&gw->heldq, s, held_entry);
		session_send(s, h->text, h->len);
		free(h->text);
		free(h);
	}
}

/* Queue s for the next session_flush_all. */
void
session_mark(struct session *s)
{
	if (s->on_flush)
		return;
	s->on_flush = 1;
	TAILQ_INSERT_TAIL(&s->gw->flushq, s, flush_entry);
}

void
session_flush_all(struct gateway *gw)
{
	struct session	*s;

	while ((s = TAILQ_FIRST(&gw->flushq)) != NULL) {
		TAILQ_REMOVE(&gw->flushq, s, flush_entry);
		s->on_flush = 0;
		session_flush(s);
	}
}

/*
 * Send an answer now, or hold it until a transition with endVersion at or
 * past (need_qs, need_ts) has gone out.  Takes text.
 */
void
session_hold(struct session *s, int64_t need_ts, uint64_t need_qs,
    char *text, size_t len)
{
	struct held	*h;

	assert(s != NULL && text != NULL);
	if (need_ts <= s->sent_ts && need_qs <= s->sent_qs) {
		session_send(s, text, len);
		free(text);
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->need_ts = need_ts;
	h->need_qs = need_qs;
	h->text = text;
	h->len = len;
	TAILQ_INSERT_TAIL(&s->held, h, entry);
	if (s->nheld++ == 0)
		TAILQ_INSERT_TAIL(&s->gw->heldq, s, held_entry);
	session_flush(s);
}

struct sub *
session_sub_find(struct session *s, uint32_t qid)
{
	size_t	 i;

	for (i = 0; i < s->nsubs; i++)
		if (s->subs[i].query_id == qid)
			return &s->subs[i];
	return NULL;
}

int
session_sub_add(struct session *s, uint32_t qid, struct exec *ex)
{
	assert(ex != NULL && session_sub_find(s, qid) == NULL);

	if (s->nsubs == s->capsubs) {
		s->capsubs = s->capsubs == 0 ? 4 : s->capsubs * 2;
		s->subs = xreallocarray(s->subs, s->capsubs, sizeof(*s->subs));
	}
	query_exec_watch(ex, s);
	s->subs[s->nsubs].query_id = qid;
	s->subs[s->nsubs].ex = ex;
	s->subs[s->nsubs].sent_version = 0;
	s->subs[s->nsubs].known_hash[0] = '\0';
	s->nsubs++;
	return 0;
}

void
session_sub_remove(struct session *s, uint32_t qid)
{
	struct exec	*ex;
	size_t		 i, j;
	int		 seen = 1;

	for (i = 0; i < s->nsubs; i++) {
		if (s->subs[i].query_id != qid)
			continue;
		/* Never sent: the client never saw it, so no QueryRemoved. */
		seen = s->subs[i].sent_version != 0;
		ex = s->subs[i].ex;
		for (j = 0; j < s->nsubs; j++)
			if (j != i && s->subs[j].ex == ex)
				break;
		if (j == s->nsubs)
			query_exec_unwatch(ex, s);
		query_exec_release(s->gw, ex);
		memmove(&s->subs[i], &s->subs[i + 1],
		    (s->nsubs - i - 1) * sizeof(*s->subs));
		s->nsubs--;
		break;
	}
	if (!seen)
		return;
	if (s->nremoved == s->capremoved) {
		s->capremoved = s->capremoved == 0 ? 4 : s->capremoved * 2;
		s->removed = xreallocarray(s->removed, s->capremoved,
		    sizeof(*s->removed));
	}
	s->removed[s->nremoved++] = qid;
}

/* Once a second: text pings, the soft limit's grace, connect waits. */
void
session_tick(struct session *s, int64_t now)
{
	struct buf	 b;

	if (s->closing)
		return;
	session_check_limits(s);
	if (s->closing)
		return;
	if (s->wait_id != NULL && (s->gw->ts >= s->wait_ts ||
	    now >= s->wait_deadline))
		rpc_connect_ready(s);
	if (s->connected && now - s->last_text_us >= GW_TEXT_PING_US) {
		buf_init(&b);
		buf_adds(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"tinyvex/ping\","
		    "\"params\":{\"serverTs\":");
		buf_add_i64(&b, now_us());
		buf_adds(&b, "}}");
		session_send(s, b.data, b.len);
		buf_free(&b);
	}
}
