/*
 * JSON-RPC 2.0: decoding one text message (a request, a notification or a
 * batch), the method table, and the answers.  Every error is an object
 * {code, message, data: {kind, ...}}; integers go out as plain integers;
 * ids are echoed as received (numbers as integers when they are
 * integral).  A malformed message gets an error and the connection stays
 * usable.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gatewayd.h"
#include "json.h"
#include "log.h"
#include "udf.h"

#define RPC_MAX_SESSION_ID	128	/* sessionId length */
#define RPC_MAX_QUERY_ID	2147483647
#define RPC_MAX_KNOWN_HASH	128	/* knownHash length */
#define RPC_RESULT_ROOM		64	/* a mutation's answer beyond id, value */

struct rpc_call {
	struct session		*s;
	const char		*id;		/* JSON text, NULL: notification */
	const cJSON		*params;
	struct rpc_batch	*batch;
	int			 slot;
};

typedef void (*rpc_fn)(struct rpc_call *);

static void	m_connect(struct rpc_call *);
static void	m_modify(struct rpc_call *);
static void	m_mutation(struct rpc_call *);
static void	m_query(struct rpc_call *);
static void	m_action(struct rpc_call *);
static void	m_ping(struct rpc_call *);
static void	m_provide(struct rpc_call *);
static void	m_unprovide(struct rpc_call *);

static const struct {
	const char	*name;
	rpc_fn		 fn;
	int		 before_connect;	/* allowed before connect */
} rpc_methods[] = {
	{ "tinyvex/connect",		m_connect,	1 },
	{ "tinyvex/modifyQuerySet",	m_modify,	0 },
	{ "tinyvex/mutation",		m_mutation,	0 },
	{ "tinyvex/query",		m_query,	0 },
	{ "tinyvex/action",		m_action,	0 },
	{ "tinyvex/ping",		m_ping,		0 },
	{ "tinyvex/provide",		m_provide,	0 },
	{ "tinyvex/unprovide",		m_unprovide,	0 },
};

/*
 * An error object with data {"kind", name: value (when value is not
 * NULL), and the members of the JSON object text data (when not NULL)}.
 */
static void
error_text(struct buf *b, const char *id, int code, const char *message,
    const char *name, const char *value, const char *data, size_t datalen)
{
	buf_adds(b, "{\"jsonrpc\":\"2.0\",\"id\":");
	buf_adds(b, id != NULL ? id : "null");
	buf_adds(b, ",\"error\":{\"code\":");
	buf_add_i64(b, code);
	buf_adds(b, ",\"message\":");
	json_print_string(b, message, strlen(message));
	buf_adds(b, ",\"data\":{\"kind\":\"");
	buf_adds(b, tv_kind(code));
	buf_addc(b, '"');
	if (value != NULL) {
		buf_adds(b, ",\"");
		buf_adds(b, name);
		buf_adds(b, "\":\"");
		buf_adds(b, value);
		buf_addc(b, '"');
	}
	/* Members of a mutation outcome's data, as {"path":...}. */
	if (data != NULL && datalen > 2 && data[0] == '{' &&
	    data[datalen - 1] == '}') {
		buf_addc(b, ',');
		buf_add(b, data + 1, datalen - 2);
	}
	buf_adds(b, "}}}");
}

void
rpc_error_text(struct buf *b, const char *id, int code, const char *message,
    const char *outcome)
{
	error_text(b, id, code, message, "outcome", outcome, NULL, 0);
}

void
rpc_error_data_text(struct buf *b, const char *id, int code,
    const char *message, const char *name, const char *value)
{
	error_text(b, id, code, message, name, value, NULL, 0);
}

/* An answer's envelope up to its result, which the caller adds, then '}'. */
static void
result_open(struct buf *b, const char *id)
{
	buf_adds(b, "{\"jsonrpc\":\"2.0\",\"id\":");
	buf_adds(b, id);
	buf_adds(b, ",\"result\":");
}

void
rpc_result_text(struct buf *b, const char *id, const char *result,
    size_t len)
{
	result_open(b, id);
	buf_add(b, result, len);
	buf_addc(b, '}');
}

/*
 * Deliver one answer: alone, or as one slot of a batch whose array goes
 * out when its last slot is filled.  Takes text (may be NULL for a batch
 * slot of a notification).
 */
void
rpc_answer(struct session *s, struct rpc_batch *batch, int slot,
    int64_t need_ts, uint64_t need_qs, char *text, size_t len)
{
	struct buf	 b;
	size_t		 blen;
	int		 i, n = 0;

	if (batch == NULL) {
		if (text != NULL && s != NULL)
			session_hold(s, need_ts, need_qs, text, len);
		else
			free(text);
		return;
	}
	batch->parts[slot] = text;
	if (need_ts > batch->need_ts)
		batch->need_ts = need_ts;
	if (need_qs > batch->need_qs)
		batch->need_qs = need_qs;
	if (--batch->missing > 0)
		return;
	buf_init(&b);
	buf_addc(&b, '[');
	for (i = 0; i < batch->n; i++) {
		if (batch->parts[i] == NULL)
			continue;
		if (n++ > 0)
			buf_addc(&b, ',');
		buf_adds(&b, batch->parts[i]);
		free(batch->parts[i]);
	}
	buf_addc(&b, ']');
	if (s != NULL && n > 0) {
		blen = b.len;
		session_hold(s, batch->need_ts, batch->need_qs,
		    buf_steal(&b, NULL), blen);
	}
	buf_free(&b);
	free(batch->parts);
	free(batch);
}

static void
reply_error(struct rpc_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
reply_error(struct rpc_call *c, int code, const char *fmt, ...)
{
	struct buf	 b;
	char		 msg[TV_ERRMSG_MAX];
	va_list		 ap;
	size_t		 len;

	if (c->id == NULL) {
		rpc_answer(c->s, c->batch, c->slot, 0, 0, NULL, 0);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_init(&b);
	rpc_error_text(&b, c->id, code, msg, NULL);
	len = b.len;
	rpc_answer(c->s, c->batch, c->slot, 0, 0, buf_steal(&b, NULL), len);
}

/* A function's error, with its data.reason when it has one. */
static void
reply_tv_error(struct rpc_call *c, const struct tv_error *err)
{
	struct buf	 b;
	size_t		 len;

	if (c->id == NULL) {
		rpc_answer(c->s, c->batch, c->slot, 0, 0, NULL, 0);
		return;
	}
	buf_init(&b);
	rpc_error_data_text(&b, c->id, err->code, err->message, "reason",
	    err->reason);
	len = b.len;
	rpc_answer(c->s, c->batch, c->slot, 0, 0, buf_steal(&b, NULL), len);
}

static void
reply_result(struct rpc_call *c, int64_t need_ts, uint64_t need_qs,
    const char *result, size_t rlen)
{
	struct buf	 b;
	size_t		 len;

	if (c->id == NULL) {
		rpc_answer(c->s, c->batch, c->slot, 0, 0, NULL, 0);
		return;
	}
	buf_init(&b);
	rpc_result_text(&b, c->id, result, rlen);
	len = b.len;
	rpc_answer(c->s, c->batch, c->slot, need_ts, need_qs,
	    buf_steal(&b, NULL), len);
}

/* params must be an object (absent counts as {}). */
static int
params_object(struct rpc_call *c)
{
	if (c->params != NULL && !cJSON_IsObject(c->params)) {
		reply_error(c, TV_INVALID_PARAMS, "params must be an object");
		return -1;
	}
	return 0;
}

/* The features protocol 1 knows, in the order the answer lists them. */
static const struct {
	const char	*name;
	int		 bit;
} rpc_features[] = {
	{ "diff",	GW_FEAT_DIFF },
	{ "resume",	GW_FEAT_RESUME },
};

/*
 * connect's features: a list of strings, the known ones granted, unknown
 * ones ignored.  The GW_FEAT_* bits, or -1 when it is no such list.
 */
static int
parse_features(const cJSON *list)
{
	const cJSON	*f;
	size_t		 i;
	int		 bits = 0;

	if (!cJSON_IsArray(list))
		return -1;
	cJSON_ArrayForEach(f, list) {
		if (!cJSON_IsString(f))
			return -1;
		for (i = 0; i < nitems(rpc_features); i++)
			if (strcmp(f->valuestring, rpc_features[i].name) == 0)
				bits |= rpc_features[i].bit;
	}
	return bits;
}

static void
add_features(struct buf *b, int bits)
{
	size_t	 i;
	int	 n = 0;

	buf_adds(b, ",\"features\":[");
	for (i = 0; i < nitems(rpc_features); i++) {
		if (!(bits & rpc_features[i].bit))
			continue;
		if (n++ > 0)
			buf_addc(b, ',');
		buf_addc(b, '"');
		buf_adds(b, rpc_features[i].name);
		buf_addc(b, '"');
	}
	buf_addc(b, ']');
}

static void
connect_result(struct session *s, struct buf *b)
{
	struct gateway	*gw = s->gw;

	buf_adds(b, "{\"protocol\":1,\"serverTs\":");
	buf_add_i64(b, now_us());
	buf_adds(b, ",\"gatewayId\":");
	json_print_string(b, gw->gateway_id, strlen(gw->gateway_id));
	buf_adds(b, ",\"limits\":{\"maxMessageBytes\":");
	buf_add_u64(b, gw->conf.max_message_bytes);
	buf_adds(b, ",\"maxQueries\":");
	buf_add_i64(b, gw->conf.max_queries);
	buf_adds(b, ",\"chunkBytes\":");
	buf_add_u64(b, gw->conf.chunk_bytes);
	buf_addc(b, '}');
	if (s->features_asked)
		add_features(b, s->features);
	buf_addc(b, '}');
}

/* A connect that waited for maxObservedTs: answer it now. */
void
rpc_connect_ready(struct session *s)
{
	struct buf	 r, b;
	size_t		 len;

	buf_init(&b);
	if (s->gw->ts >= s->wait_ts) {
		s->connected = 1;
		buf_init(&r);
		connect_result(s, &r);
		rpc_result_text(&b, s->wait_id, r.data, r.len);
		buf_free(&r);
	} else {
		free(s->session_id);
		s->session_id = NULL;
		rpc_error_text(&b, s->wait_id, TV_UNAVAILABLE, "this gateway "
		    "has not caught up to maxObservedTs in time", NULL);
	}
	free(s->wait_id);
	s->wait_id = NULL;
	len = b.len;
	session_hold(s, 0, 0, buf_steal(&b, NULL), len);
}

static void
m_connect(struct rpc_call *c)
{
	struct session	*s = c->s;
	struct gateway	*gw = s->gw;
	const cJSON	*sid, *tok, *mots, *m;
	int64_t		 ts = 0;
	struct buf	 r;
	int		 features = 0;

	if (params_object(c) == -1)
		return;
	if (s->connected || s->wait_id != NULL) {
		reply_error(c, TV_INVALID_REQUEST, "already connected");
		return;
	}
	sid = json_get(c->params, "sessionId");
	if (!cJSON_IsString(sid) || sid->valuestring[0] == '\0' ||
	    strlen(sid->valuestring) > RPC_MAX_SESSION_ID) {
		reply_error(c, TV_INVALID_PARAMS, "sessionId must be a "
		    "string of 1 to %d bytes", RPC_MAX_SESSION_ID);
		return;
	}
	cJSON_ArrayForEach(m, c->params) {
		if (strcmp(m->string, "connectionCount") == 0 ||
		    strcmp(m->string, "clientTs") == 0 ||
		    strcmp(m->string, "maxObservedTs") == 0) {
			if (!json_get_int(m, 0, INT64_MAX, &ts)) {
				reply_error(c, TV_INVALID_PARAMS, "%s must be "
				    "a non-negative integer", m->string);
				return;
			}
		} else if (strcmp(m->string, "lastCloseReason") == 0 ||
		    strcmp(m->string, "token") == 0) {
			if (!cJSON_IsString(m) && !cJSON_IsNull(m)) {
				reply_error(c, TV_INVALID_PARAMS, "%s must be "
				    "a string", m->string);
				return;
			}
		} else if (strcmp(m->string, "features") == 0) {
			if ((features = parse_features(m)) == -1) {
				reply_error(c, TV_INVALID_PARAMS, "features "
				    "must be a list of strings");
				return;
			}
		}
	}
	if (gw->policy.token != NULL && !s->token_ok) {
		tok = json_get(c->params, "token");
		if (!cJSON_IsString(tok) ||
		    !http_token_equal(tok->valuestring, gw->policy.token)) {
			reply_error(c, TV_UNAUTHORIZED, "token refused");
			session_close(s, 1008, "unauthorized");
			return;
		}
	}
	mots = json_get(c->params, "maxObservedTs");
	ts = 0;
	if (mots != NULL)
		json_get_int(mots, 0, INT64_MAX, &ts);
	free(s->session_id);
	s->session_id = xstrdup(sid->valuestring);
	s->features = features;
	s->features_asked = json_get(c->params, "features") != NULL;
	if (ts > gw->ts) {
		/* Catch up first; answer when there, or fail after a while. */
		query_refresh(gw);
	}
	if (ts > gw->ts && c->id != NULL && c->batch == NULL) {
		s->wait_ts = ts;
		s->wait_id = xstrdup(c->id);
		s->wait_deadline = mono_us() + gw->conf.connect_wait_us;
		return;
	}
	if (ts > gw->ts) {
		reply_error(c, TV_UNAVAILABLE, "this gateway has not caught "
		    "up to maxObservedTs");
		return;
	}
	s->connected = 1;
	buf_init(&r);
	connect_result(s, &r);
	reply_result(c, 0, 0, r.data, r.len);
	buf_free(&r);
}

static int
get_query_id(const cJSON *v, uint32_t *out)
{
	int64_t	 n;

	if (!json_get_int(v, 0, RPC_MAX_QUERY_ID, &n))
		return -1;
	*out = (uint32_t)n;
	return 0;
}

/*
 * Check every modification of a modifyQuerySet before any is applied:
 * types, query ids in use or not (counting the earlier ones of the same
 * request), udfPath, args and knownHash bounds, and max_queries.  0, or
 * -1 when the request has been answered with the error.
 */
static int
modify_validate(struct rpc_call *c, const cJSON *mods)
{
	struct session	*s = c->s;
	struct gateway	*gw = s->gw;
	const cJSON	*m, *type, *udf, *args, *other, *known;
	uint32_t	 qid = 0, *ids = NULL, *rem = NULL;
	size_t		 nids = 0, nrem = 0, i, count, j;
	struct buf	 canon;
	int		 rc = -1;

	count = s->nsubs;
	ids = xcalloc((size_t)cJSON_GetArraySize(mods) + 1, sizeof(*ids));
	rem = xcalloc((size_t)cJSON_GetArraySize(mods) + 1, sizeof(*rem));
	cJSON_ArrayForEach(m, mods) {
		type = json_get(m, "type");
		if (!cJSON_IsObject(m) || !cJSON_IsString(type) ||
		    get_query_id(json_get(m, "queryId"), &qid) == -1) {
			reply_error(c, TV_INVALID_PARAMS, "each modification "
			    "needs a type and a queryId from 0 to %d",
			    RPC_MAX_QUERY_ID);
			goto done;
		}
		if (strcmp(type->valuestring, "Add") == 0) {
			udf = json_get(m, "udfPath");
			args = json_get(m, "args");
			if (!cJSON_IsString(udf) ||
			    strlen(udf->valuestring) > 128) {
				reply_error(c, TV_INVALID_PARAMS, "Add needs a "
				    "udfPath string");
				goto done;
			}
			cJSON_ArrayForEach(other, m)
				if (strcmp(other->string, "type") != 0 &&
				    strcmp(other->string, "queryId") != 0 &&
				    strcmp(other->string, "udfPath") != 0 &&
				    strcmp(other->string, "args") != 0 &&
				    strcmp(other->string, "knownHash") != 0) {
					reply_error(c, TV_INVALID_PARAMS,
					    "unknown member %.64s in Add",
					    other->string);
					goto done;
				}
			known = json_get(m, "knownHash");
			if (known != NULL && (!cJSON_IsString(known) ||
			    strlen(known->valuestring) > RPC_MAX_KNOWN_HASH)) {
				reply_error(c, TV_INVALID_PARAMS, "knownHash "
				    "must be a string of at most %d bytes",
				    RPC_MAX_KNOWN_HASH);
				goto done;
			}
			if (args != NULL) {
				buf_init(&canon);
				json_print(&canon, args);
				if (canon.len > gw->conf.max_args_bytes) {
					buf_free(&canon);
					reply_error(c, TV_TOO_LARGE, "args "
					    "over max_args_bytes");
					goto done;
				}
				buf_free(&canon);
			}
			/* In use now, or added earlier in this request. */
			for (i = 0; i < nids; i++)
				if (ids[i] == qid)
					break;
			for (j = 0; j < nrem; j++)
				if (rem[j] == qid)
					break;
			if (i < nids || (session_sub_find(s, qid) != NULL &&
			    j == nrem)) {
				reply_error(c, TV_INVALID_PARAMS, "queryId %u "
				    "is in use", qid);
				goto done;
			}
			ids[nids++] = qid;
			if (++count > (size_t)gw->conf.max_queries) {
				reply_error(c, TV_TOO_LARGE, "more than %lld "
				    "queries", (long long)gw->conf.max_queries);
				goto done;
			}
		} else if (strcmp(type->valuestring, "Remove") == 0) {
			for (i = 0; i < nids; i++)
				if (ids[i] == qid)
					break;
			if (i < nids) {
				/* Added then removed in one request. */
				ids[i] = ids[--nids];
				count--;
				continue;
			}
			for (j = 0; j < nrem; j++)
				if (rem[j] == qid)
					break;
			if (j < nrem || session_sub_find(s, qid) == NULL) {
				reply_error(c, TV_INVALID_PARAMS, "queryId %u "
				    "is not in the query set", qid);
				goto done;
			}
			rem[nrem++] = qid;
			count--;
		} else {
			reply_error(c, TV_INVALID_PARAMS, "modification type "
			    "must be Add or Remove");
			goto done;
		}
	}
	rc = 0;
done:
	free(ids);
	free(rem);
	return rc;
}

/* Apply the checked modifications in order and answer with newv. */
static void
modify_apply(struct rpc_call *c, const cJSON *mods, int64_t newv)
{
	struct session	*s = c->s;
	struct gateway	*gw = s->gw;
	const cJSON	*m, *type, *args, *known;
	uint32_t	 qid = 0;
	struct exec	*ex;
	struct buf	 r;
	cJSON		*empty;

	empty = cJSON_CreateObject();
	cJSON_ArrayForEach(m, mods) {
		get_query_id(json_get(m, "queryId"), &qid);
		type = json_get(m, "type");
		if (strcmp(type->valuestring, "Remove") == 0) {
			session_sub_remove(s, qid);
			continue;
		}
		args = json_get(m, "args");
		ex = query_exec_get(gw, json_get(m, "udfPath")->valuestring,
		    args != NULL ? args : empty);
		session_sub_add(s, qid, ex);
		known = json_get(m, "knownHash");
		if (cJSON_IsString(known) &&
		    strlen(known->valuestring) == DIFF_HASH_LEN)
			memcpy(session_sub_find(s, qid)->known_hash,
			    known->valuestring, DIFF_HASH_LEN + 1);
	}
	s->qs_version = (uint64_t)newv;
	query_refresh(gw);
	buf_init(&r);
	buf_adds(&r, "{\"querySet\":");
	buf_add_i64(&r, newv);
	buf_addc(&r, '}');
	reply_result(c, 0, (uint64_t)newv, r.data, r.len);
	buf_free(&r);
	session_flush(s);
	cJSON_Delete(empty);
}

static void
m_modify(struct rpc_call *c)
{
	struct session	*s = c->s;
	const cJSON	*mods;
	int64_t		 base, newv;

	if (params_object(c) == -1)
		return;
	mods = json_get(c->params, "modifications");
	if (!json_get_int(json_get(c->params, "baseVersion"), 0, INT64_MAX,
	    &base) || !json_get_int(json_get(c->params, "newVersion"), 0,
	    INT64_MAX, &newv) || !cJSON_IsArray(mods)) {
		reply_error(c, TV_INVALID_PARAMS, "modifyQuerySet takes "
		    "baseVersion, newVersion (integers) and modifications");
		return;
	}
	if ((uint64_t)base != s->qs_version || newv <= base) {
		reply_error(c, TV_BASE_VERSION, "baseVersion %lld, newVersion "
		    "%lld: the query set is at version %" PRIu64,
		    (long long)base, (long long)newv, s->qs_version);
		return;
	}
	if (modify_validate(c, mods) == 0)
		modify_apply(c, mods, newv);
}

static void
m_mutation(struct rpc_call *c)
{
	struct session	*s = c->s;
	struct gateway	*gw = s->gw;
	const cJSON	*udf, *args, *rid;
	struct buf	 a;

	if (params_object(c) == -1)
		return;
	udf = json_get(c->params, "udfPath");
	args = json_get(c->params, "args");
	rid = json_get(c->params, "requestId");
	if (!cJSON_IsString(udf) || strlen(udf->valuestring) > 128) {
		reply_error(c, TV_INVALID_PARAMS, "udfPath must be a string");
		return;
	}
	if (rid != NULL && !cJSON_IsString(rid) &&
	    !json_get_int(rid, INT64_MIN / 2, INT64_MAX / 2, &(int64_t){0})) {
		reply_error(c, TV_INVALID_PARAMS, "requestId must be a string "
		    "or an integer");
		return;
	}
	if (cJSON_IsString(rid) && strlen(rid->valuestring) > 128) {
		reply_error(c, TV_INVALID_PARAMS, "requestId over 128 bytes");
		return;
	}
	if (!udf_is_mutation(udf_lookup(udf->valuestring))) {
		reply_error(c, TV_NOT_FOUND, "no mutation function \"%.128s\"",
		    udf->valuestring);
		return;
	}
	if (s->pending_mutations >= gw->conf.max_pending_mutations) {
		reply_error(c, TV_OVERLOADED, "too many mutations in flight "
		    "on this connection");
		return;
	}
	gateway_scratch_take(gw, &a);
	if (args != NULL)
		json_print(&a, args);
	else
		buf_adds(&a, "{}");
	if (a.len > gw->conf.max_args_bytes) {
		gateway_scratch_give(gw, &a);
		reply_error(c, TV_TOO_LARGE, "args over max_args_bytes");
		return;
	}
	if (upstream_mutate(gw, s, c->id, c->batch, c->slot, udf->valuestring,
	    a.data, a.len, rid) == -1)
		reply_error(c, TV_UNAVAILABLE, "writer link down; retry later");
	gateway_scratch_give(gw, &a);
}

/* The outcome of a mutation came back from writerd (or never will). */
void
rpc_mutation_done(struct gateway *gw, struct upreq *u, int64_t ts, int code,
    const char *message, const char *value, size_t valuelen)
{
	struct session	*s = session_find(gw, u->sid);
	struct buf	 b;
	size_t		 len;

	if (s != NULL)
		s->pending_mutations--;
	if (u->id == NULL) {
		rpc_answer(s, u->batch, u->batch_slot, 0, 0, NULL, 0);
		return;
	}
	buf_init(&b);
	if (code == TV_OK) {
		/* The answer in one allocation: its text is held as it is. */
		buf_reserve(&b, RPC_RESULT_ROOM + strlen(u->id) + valuelen);
		result_open(&b, u->id);
		buf_adds(&b, "{\"value\":");
		buf_add(&b, value, valuelen);
		buf_adds(&b, ",\"ts\":");
		buf_add_i64(&b, ts);
		buf_adds(&b, "}}");
	} else
		error_text(&b, u->id, code, message, "outcome",
		    code != TV_UNAVAILABLE ? NULL : ts < 0 ? "unknown" :
		    "notCommitted", value, valuelen);
	len = b.len;
	rpc_answer(s, u->batch, u->batch_slot, code == TV_OK ? ts : 0, 0,
	    buf_steal(&b, NULL), len);
}

static void
m_query(struct rpc_call *c)
{
	const cJSON	*udf, *args, *ts;
	int64_t		 read_ts = SCAN_CURRENT, at;
	struct buf	 out, r;
	struct tv_error	 err;
	cJSON		*empty;

	if (params_object(c) == -1)
		return;
	udf = json_get(c->params, "udfPath");
	args = json_get(c->params, "args");
	ts = json_get(c->params, "ts");
	if (!cJSON_IsString(udf)) {
		reply_error(c, TV_INVALID_PARAMS, "udfPath must be a string");
		return;
	}
	if (ts != NULL && !json_get_int(ts, 1, INT64_MAX, &read_ts)) {
		reply_error(c, TV_INVALID_PARAMS, "ts must be a positive "
		    "integer");
		return;
	}
	buf_init(&out);
	memset(&err, 0, sizeof(err));
	empty = cJSON_CreateObject();
	if (query_oneshot(c->s->gw, udf->valuestring, args != NULL ? args :
	    empty, read_ts, &out, &at, &err) == -1) {
		cJSON_Delete(empty);
		buf_free(&out);
		reply_tv_error(c, &err);
		return;
	}
	cJSON_Delete(empty);
	buf_init(&r);
	buf_adds(&r, "{\"value\":");
	buf_add(&r, out.data, out.len);
	buf_adds(&r, ",\"ts\":");
	buf_add_i64(&r, at);
	buf_addc(&r, '}');
	reply_result(c, 0, 0, r.data, r.len);
	buf_free(&r);
	buf_free(&out);
}

/* Providers and actions: action.c. */
static void
m_action(struct rpc_call *c)
{
	action_call(c->s, c->id, c->params, c->batch, c->slot);
}

static void
m_provide(struct rpc_call *c)
{
	action_provide(c->s, c->id, c->params, c->batch, c->slot);
}

static void
m_unprovide(struct rpc_call *c)
{
	action_unprovide(c->s, c->id, c->params, c->batch, c->slot);
}

static void
m_ping(struct rpc_call *c)
{
	struct buf	 r;

	if (params_object(c) == -1)
		return;
	buf_init(&r);
	buf_adds(&r, "{\"serverTs\":");
	buf_add_i64(&r, now_us());
	buf_addc(&r, '}');
	reply_result(c, 0, 0, r.data, r.len);
	buf_free(&r);
}

/* The id as JSON text, or NULL when the request is malformed. */
static char *
id_text(const cJSON *id)
{
	struct buf	 b;

	if (!cJSON_IsString(id) && !cJSON_IsNumber(id) && !cJSON_IsNull(id))
		return NULL;
	buf_init(&b);
	json_print(&b, id);
	return buf_steal(&b, NULL);
}

/*
 * 1 when req is a JSON-RPC response: no method, an id, and a result or
 * an error object.
 */
static int
is_response(const cJSON *req, const cJSON *ver, const cJSON *method,
    const cJSON *id)
{
	return cJSON_IsObject(req) && method == NULL && id != NULL &&
	    cJSON_IsString(ver) && strcmp(ver->valuestring, "2.0") == 0 &&
	    ((json_get(req, "result") != NULL) !=
	    cJSON_IsObject(json_get(req, "error")));
}

/* One request object, answered in slot of batch (or alone). */
static void
rpc_one(struct session *s, const cJSON *req, struct rpc_batch *batch,
    int slot)
{
	struct rpc_call	 c;
	const cJSON	*ver, *method, *id;
	char		*idt = NULL;
	size_t		 i;

	memset(&c, 0, sizeof(c));
	c.s = s;
	c.batch = batch;
	c.slot = slot;
	c.id = "null";
	id = cJSON_IsObject(req) ? json_get(req, "id") : NULL;
	if (id != NULL && (idt = id_text(id)) == NULL) {
		reply_error(&c, TV_INVALID_REQUEST, "id must be a string, a "
		    "number or null");
		return;
	}
	if (idt != NULL)
		c.id = idt;
	ver = json_get(req, "jsonrpc");
	method = json_get(req, "method");
	if (is_response(req, ver, method, id)) {
		/* A provider's answer to tinyvex/runAction. */
		if (action_response(s, req) == 0)
			rpc_answer(s, batch, slot, 0, 0, NULL, 0);
		else
			reply_error(&c, TV_INVALID_REQUEST, "no call with this "
			    "id was sent to this connection");
		goto done;
	}
	if (!cJSON_IsObject(req) || !cJSON_IsString(ver) ||
	    strcmp(ver->valuestring, "2.0") != 0 || !cJSON_IsString(method)) {
		reply_error(&c, TV_INVALID_REQUEST, "not a JSON-RPC 2.0 "
		    "request");
		goto done;
	}
	if (id == NULL)
		c.id = NULL;	/* a notification: no answer */
	c.params = json_get(req, "params");
	for (i = 0; i < nitems(rpc_methods); i++)
		if (strcmp(rpc_methods[i].name, method->valuestring) == 0)
			break;
	if (i == nitems(rpc_methods)) {
		reply_error(&c, TV_METHOD_NOT_FOUND, "no method \"%.64s\"",
		    method->valuestring);
		goto done;
	}
	if (!rpc_methods[i].before_connect && !s->connected) {
		reply_error(&c, TV_NOT_CONNECTED, "send tinyvex/connect first");
		goto done;
	}
	rpc_methods[i].fn(&c);
done:
	free(idt);
}

void
rpc_message(struct session *s, const char *text, size_t len)
{
	struct rpc_batch	*batch;
	struct buf		 b;
	cJSON			*root, *req;
	enum json_err		 jerr;
	size_t			 blen;
	int			 n, i;

	if (s->closing)
		return;
	root = json_parse(text, len, JSON_MAX_DEPTH, &jerr);
	if (root == NULL) {
		buf_init(&b);
		rpc_error_text(&b, NULL, jerr == JSON_ERR_DEPTH ?
		    TV_TOO_LARGE : TV_PARSE_ERROR, json_strerror(jerr), NULL);
		blen = b.len;
		session_hold(s, 0, 0, buf_steal(&b, NULL), blen);
		return;
	}
	if (!cJSON_IsArray(root)) {
		rpc_one(s, root, NULL, 0);
		cJSON_Delete(root);
		return;
	}
	n = cJSON_GetArraySize(root);
	if (n == 0 || n > GW_MAX_BATCH) {
		buf_init(&b);
		rpc_error_text(&b, NULL, n == 0 ? TV_INVALID_REQUEST :
		    TV_TOO_LARGE, n == 0 ? "empty batch" : "batch too large",
		    NULL);
		blen = b.len;
		session_hold(s, 0, 0, buf_steal(&b, NULL), blen);
		cJSON_Delete(root);
		return;
	}
	batch = xcalloc(1, sizeof(*batch));
	batch->n = n;
	batch->missing = n;
	batch->parts = xcalloc((size_t)n, sizeof(*batch->parts));
	i = 0;
	cJSON_ArrayForEach(req, root)
		rpc_one(s, req, batch, i++);
	cJSON_Delete(root);
}
