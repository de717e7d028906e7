/*
 * The protocol reader: one text message from the server in, one typed
 * event out, in the manner of hiredis's read.c (it knows nothing of
 * sockets or of the client's state).  It checks the JSON-RPC shape of
 * every message, reassembles chunked transitions (in order, one at a
 * time, bounded by max_transition) and parses transition versions; a
 * message that breaks the contract is refused with a reason, and the
 * caller drops the connection.
 */
#include <stdlib.h>
#include <string.h>

#include "tvx_int.h"

void
tvx_reader_init(struct tvx_reader *r, size_t max_message,
    size_t max_transition)
{
	memset(r, 0, sizeof(*r));
	r->max_message = max_message;
	r->max_transition = max_transition;
}

void
tvx_reader_reset(struct tvx_reader *r)
{
	free(r->chunk_id);
	r->chunk_id = NULL;
	r->next_part = r->total_parts = 0;
	tvx_buf_free(&r->chunks);
}

void
tvx_msg_free(struct tvx_msg *m)
{
	cJSON_Delete(m->root);
	memset(m, 0, sizeof(*m));
}

int
tvx_version_parse(const cJSON *v, struct tvx_version *out)
{
	if (!cJSON_IsObject(v) ||
	    !tvx_json_int(tvx_json_get(v, "querySet"), 0, INT64_MAX,
	    &out->query_set) ||
	    !tvx_json_int(tvx_json_get(v, "identity"), 0, INT64_MAX,
	    &out->identity) ||
	    !tvx_json_int(tvx_json_get(v, "ts"), 0, INT64_MAX, &out->ts))
		return -1;
	return 0;
}

static int
transition(cJSON *params, struct tvx_msg *m, const char **why)
{
	if (!cJSON_IsObject(params) ||
	    tvx_version_parse(tvx_json_get(params, "startVersion"),
	    &m->start) == -1 ||
	    tvx_version_parse(tvx_json_get(params, "endVersion"),
	    &m->end) == -1) {
		*why = "transition without valid versions";
		return -1;
	}
	m->mods = tvx_json_get(params, "modifications");
	if (!cJSON_IsArray(m->mods)) {
		*why = "transition without modifications";
		return -1;
	}
	if (m->end.ts < m->start.ts || m->end.query_set < m->start.query_set) {
		*why = "transition goes backwards";
		return -1;
	}
	m->type = TVX_MSG_TRANSITION;
	return 1;
}

/* A part of a chunked transition: keep it, or finish the whole. */
static int
chunk(struct tvx_reader *r, cJSON *params, struct tvx_msg *m,
    const char **why)
{
	cJSON		*id, *text, *root;
	int64_t		 part, total;
	size_t		 n;
	int		 rc;

	id = tvx_json_get(params, "transitionId");
	text = tvx_json_get(params, "chunk");
	if (!cJSON_IsString(id) || !cJSON_IsString(text) ||
	    !tvx_json_int(tvx_json_get(params, "partNumber"), 0,
	    TVX_MAX_CHUNK_PARTS - 1, &part) ||
	    !tvx_json_int(tvx_json_get(params, "totalParts"), 1,
	    TVX_MAX_CHUNK_PARTS, &total) || part >= total) {
		*why = "malformed transitionChunk";
		return -1;
	}
	if (part == 0) {
		if (r->chunk_id != NULL) {
			*why = "transitionChunk starts before the last ended";
			return -1;
		}
		if ((r->chunk_id = strdup(id->valuestring)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		r->total_parts = total;
		r->next_part = 0;
	} else if (r->chunk_id == NULL ||
	    strcmp(r->chunk_id, id->valuestring) != 0 ||
	    part != r->next_part || total != r->total_parts) {
		*why = "transitionChunk out of order";
		return -1;
	}
	n = strlen(text->valuestring);
	if (n > r->max_transition - r->chunks.len) {
		*why = "chunked transition over max_transition";
		return -1;
	}
	tvx_buf_add(&r->chunks, text->valuestring, n);
	if (r->chunks.failed) {
		*why = "out of memory";
		return -1;
	}
	r->next_part++;
	if (r->next_part < r->total_parts)
		return 0;
	root = tvx_json_parse(r->chunks.data ? r->chunks.data : "",
	    r->chunks.len, TVX_JSON_DEPTH, why);
	tvx_reader_reset(r);
	if (root == NULL)
		return -1;
	cJSON_Delete(m->root);
	m->root = root;
	rc = transition(root, m, why);
	m->chunked = 1;
	return rc;
}

static int
request(cJSON *root, cJSON *method, struct tvx_msg *m, const char **why)
{
	cJSON	*params, *id, *udf, *s;

	params = tvx_json_get(root, "params");
	id = tvx_json_get(root, "id");
	if (id != NULL && !cJSON_IsString(id) && !cJSON_IsNumber(id)) {
		*why = "request id neither string nor number";
		return -1;
	}
	if (strcmp(method->valuestring, "tinyvex/runAction") == 0) {
		udf = tvx_json_get(params, "udfPath");
		m->args = tvx_json_get(params, "args");
		s = tvx_json_get(params, "sessionId");
		if (id == NULL || !cJSON_IsString(udf) || m->args == NULL ||
		    (s != NULL && !cJSON_IsString(s))) {
			*why = "malformed runAction";
			return -1;
		}
		m->call_id = id;
		m->udf = udf->valuestring;
		m->session = s != NULL ? s->valuestring : NULL;
		m->type = TVX_MSG_RUN_ACTION;
		return 1;
	}
	if (id != NULL) {
		*why = "request of an unknown method";
		return -1;
	}
	if (strcmp(method->valuestring, "tinyvex/cancelAction") == 0) {
		m->call_id = tvx_json_get(params, "id");
		if (m->call_id == NULL) {
			*why = "malformed cancelAction";
			return -1;
		}
		m->type = TVX_MSG_CANCEL_ACTION;
		return 1;
	}
	if (strcmp(method->valuestring, "tinyvex/ping") == 0) {
		m->type = TVX_MSG_PING;
		return 1;
	}
	/* A notification this client does not know: later additions. */
	return 0;
}

int
tvx_reader_feed(struct tvx_reader *r, const char *text, size_t len,
    struct tvx_msg *m, const char **why)
{
	cJSON	*root, *method, *id, *v;
	int	 rc = -1;

	memset(m, 0, sizeof(*m));
	*why = NULL;
	if (len > r->max_message) {
		*why = "message over max_message";
		return -1;
	}
	if ((root = tvx_json_parse(text, len, TVX_JSON_DEPTH, why)) == NULL)
		return -1;
	m->root = root;
	v = tvx_json_get(root, "jsonrpc");
	if (!cJSON_IsObject(root) || !cJSON_IsString(v) ||
	    strcmp(v->valuestring, "2.0") != 0) {
		*why = "not a JSON-RPC 2.0 message";
		goto out;
	}
	method = tvx_json_get(root, "method");
	if (method != NULL) {
		if (!cJSON_IsString(method)) {
			*why = "method not a string";
			goto out;
		}
		if (strcmp(method->valuestring, "tinyvex/transition") == 0) {
			/* Nothing may come between the parts of another. */
			if (r->chunk_id != NULL)
				*why = "transition between transition chunks";
			else
				rc = transition(tvx_json_get(root, "params"),
				    m, why);
		} else if (strcmp(method->valuestring,
		    "tinyvex/transitionChunk") == 0)
			rc = chunk(r, tvx_json_get(root, "params"), m, why);
		else
			rc = request(root, method, m, why);
		goto out;
	}
	/* A response: ours are integer ids. */
	id = tvx_json_get(root, "id");
	m->result = tvx_json_get(root, "result");
	m->error = tvx_json_get(root, "error");
	if ((m->result == NULL) == (m->error == NULL)) {
		*why = "response with neither or both of result and error";
		goto out;
	}
	if (m->error != NULL && (!cJSON_IsObject(m->error) ||
	    !cJSON_IsNumber(tvx_json_get(m->error, "code")))) {
		*why = "malformed error object";
		goto out;
	}
	if (cJSON_IsNull(id) && m->error != NULL) {
		/* ParseError or InvalidRequest for something we sent. */
		*why = "the server could not read a request";
		goto out;
	}
	if (!tvx_json_int(id, 1, INT64_MAX, &m->id)) {
		*why = "response to an id never sent";
		goto out;
	}
	m->type = TVX_MSG_RESPONSE;
	rc = 1;
out:
	if (rc != 1)
		tvx_msg_free(m);
	return rc;
}
