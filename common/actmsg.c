/*
 * Decoders and builders of the provider and action messages on
 * writer.sock, and the function-name rules both daemons apply.  See
 * actmsg.h for the contract and proto/ipc.h for the layouts.
 */
#include <string.h>

#include "actmsg.h"
#include "errors.h"
#include "json.h"

/* 1 when the n bytes at s hold a NUL byte. */
static int
has_nul(const char *s, size_t n)
{
	return n > 0 && memchr(s, '\0', n) != NULL;
}

enum act_name
actmsg_name_kind(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > IPC_MAX_UDF_LEN)
		return ACT_NAME_BAD;
	for (i = 0; i < len; i++) {
		if (s[i] <= ' ' || s[i] > '~')
			return ACT_NAME_BAD;
		if (s[i] == '*' && i != len - 1)
			return ACT_NAME_BAD;
	}
	if (s[len - 1] == '*' && (len < 3 || s[len - 2] != '/'))
		return ACT_NAME_BAD;
	if (len >= 3 && memcmp(s, "db/", 3) == 0)
		return ACT_NAME_RESERVED;
	return s[len - 1] == '*' ? ACT_NAME_PREFIX : ACT_NAME_EXACT;
}

int
actmsg_name_match(const char *name, size_t namelen, const char *path,
    size_t pathlen)
{
	if (namelen > 0 && name[namelen - 1] == '*')
		return pathlen > namelen - 1 &&
		    memcmp(name, path, namelen - 1) == 0;
	return namelen == pathlen && memcmp(name, path, namelen) == 0;
}

/* Read an array of 0..IPC_MAX_FUNCTIONS names. */
static int
get_names(struct ipc_reader *r, struct actmsg_names *out)
{
	uint32_t	 n, i;

	if (ipc_get_array(r, &n, IPC_MAX_FUNCTIONS) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (ipc_get_str(r, &out->name[i], &out->namelen[i],
		    IPC_MAX_UDF_LEN) == -1 ||
		    actmsg_name_kind(out->name[i], out->namelen[i]) ==
		    ACT_NAME_BAD)
			return -1;
	}
	out->n = n;
	return 0;
}

int
actmsg_provide(const unsigned char *body, size_t len,
    struct actmsg_names *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 3) == -1 ||
	    ipc_get_u64(&r, &out->provider) == -1 ||
	    ipc_get_u32(&r, &out->concurrency) == -1 ||
	    get_names(&r, out) == -1 || ipc_end(&r) == -1 ||
	    out->n == 0 || out->concurrency == 0 ||
	    out->concurrency > IPC_MAX_CONCURRENCY)
		goto fail;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}

int
actmsg_unprovide(const unsigned char *body, size_t len,
    struct actmsg_names *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 2) == -1 ||
	    ipc_get_u64(&r, &out->provider) == -1 ||
	    get_names(&r, out) == -1 || ipc_end(&r) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int
actmsg_provided(const unsigned char *body, size_t len,
    struct actmsg_outcome *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 2) == -1 ||
	    ipc_get_i64(&r, &out->code) == -1 ||
	    ipc_get_str(&r, &out->message, &out->messagelen,
	    IPC_MAX_ACTION_MESSAGE) == -1 || ipc_end(&r) == -1 ||
	    has_nul(out->message, out->messagelen) ||
	    !utf8_valid(out->message, out->messagelen) ||
	    (out->code != TV_OK && out->code != TV_VALIDATION &&
	    out->code != TV_TOO_LARGE && out->code != TV_UNAVAILABLE)) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int
actmsg_id(const unsigned char *body, size_t len, uint64_t *id)
{
	struct ipc_reader	 r;

	*id = 0;
	if (ipc_reader_init(&r, body, len, 1) == -1 ||
	    ipc_get_u64(&r, id) == -1 || ipc_end(&r) == -1) {
		*id = 0;
		return -1;
	}
	return 0;
}

int
actmsg_cancel(const unsigned char *body, size_t len, uint32_t *call)
{
	struct ipc_reader	 r;

	*call = 0;
	if (ipc_reader_init(&r, body, len, 1) == -1 ||
	    ipc_get_u32(&r, call) == -1 || ipc_end(&r) == -1) {
		*call = 0;
		return -1;
	}
	return 0;
}

/* session_id, udf_path, args, after the reader's other fields. */
static int
get_call(struct ipc_reader *r, struct actmsg_call *out)
{
	ipc_get_str(r, &out->session_id, &out->session_idlen,
	    IPC_MAX_ID_LEN);
	ipc_get_str(r, &out->udf_path, &out->udf_pathlen, IPC_MAX_UDF_LEN);
	ipc_get_str(r, &out->args, &out->argslen, IPC_MAX_ACTION_TEXT);
	if (ipc_end(r) == -1 || has_nul(out->session_id,
	    out->session_idlen) || out->udf_pathlen == 0 ||
	    has_nul(out->udf_path, out->udf_pathlen) || out->argslen == 0 ||
	    !utf8_valid(out->session_id, out->session_idlen) ||
	    !utf8_valid(out->udf_path, out->udf_pathlen) ||
	    !utf8_valid(out->args, out->argslen))
		return -1;
	return 0;
}

int
actmsg_action(const unsigned char *body, size_t len, struct actmsg_call *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 3) == -1 ||
	    get_call(&r, out) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int
actmsg_run(const unsigned char *body, size_t len, struct actmsg_call *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 5) == -1 ||
	    ipc_get_u64(&r, &out->call) == -1 ||
	    ipc_get_u64(&r, &out->provider) == -1 ||
	    get_call(&r, out) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

/* code, ts, message, text after the reader's other fields. */
static int
get_outcome(struct ipc_reader *r, struct actmsg_outcome *out)
{
	ipc_get_i64(r, &out->code);
	ipc_get_i64(r, &out->ts);
	ipc_get_str(r, &out->message, &out->messagelen,
	    IPC_MAX_ACTION_MESSAGE);
	ipc_get_str(r, &out->text, &out->textlen, IPC_MAX_ACTION_TEXT);
	if (ipc_end(r) == -1 || out->ts < 0 ||
	    has_nul(out->message, out->messagelen) ||
	    !utf8_valid(out->message, out->messagelen) ||
	    !utf8_valid(out->text, out->textlen))
		return -1;
	return 0;
}

int
actmsg_run_done(const unsigned char *body, size_t len,
    struct actmsg_outcome *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 5) == -1 ||
	    ipc_get_u64(&r, &out->call) == -1 ||
	    get_outcome(&r, out) == -1 ||
	    (out->code != TV_OK && out->code != TV_ACTION_FAILED &&
	    out->code != TV_TOO_LARGE) ||
	    (out->code == TV_OK && out->textlen == 0)) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int
actmsg_action_done(const unsigned char *body, size_t len,
    struct actmsg_outcome *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 4) == -1 ||
	    get_outcome(&r, out) == -1 ||
	    (out->code != TV_OK && out->code != TV_ACTION_FAILED &&
	    out->code != TV_TOO_LARGE && out->code != TV_NOT_FOUND &&
	    out->code != TV_VALIDATION && out->code != TV_OVERLOADED &&
	    out->code != TV_UNAVAILABLE) ||
	    (out->code == TV_OK && out->textlen == 0)) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

void
actmsg_build_names(struct ipc_msg *m, uint32_t type, uint32_t seq,
    uint64_t provider, uint32_t concurrency, const char *const *names,
    const size_t *namelens, uint32_t n)
{
	uint32_t	 i;

	ipc_msg_init(m, type, seq, type == IPC_PROVIDE ? 3 : 2);
	ipc_add_u64(m, provider);
	if (type == IPC_PROVIDE)
		ipc_add_u64(m, concurrency);
	ipc_add_array(m, n);
	for (i = 0; i < n; i++)
		ipc_add_str(m, names[i], namelens != NULL ? namelens[i] :
		    strlen(names[i]));
}

void
actmsg_build_provided(struct ipc_msg *m, uint32_t seq, int64_t code,
    const char *message)
{
	ipc_msg_init(m, IPC_PROVIDED, seq, 2);
	ipc_add_i64(m, code);
	ipc_add_cstr(m, message);
}

void
actmsg_build_id(struct ipc_msg *m, uint32_t type, uint64_t id)
{
	ipc_msg_init(m, type, 0, 1);
	ipc_add_u64(m, id);
}

void
actmsg_build_cancel(struct ipc_msg *m, uint32_t call)
{
	ipc_msg_init(m, IPC_ACTION_CANCEL, 0, 1);
	ipc_add_u64(m, call);
}

void
actmsg_build_call(struct ipc_msg *m, uint32_t type, uint32_t seq,
    const struct actmsg_call *c)
{
	ipc_msg_init(m, type, seq, type == IPC_RUN ? 5 : 3);
	if (type == IPC_RUN) {
		ipc_add_u64(m, c->call);
		ipc_add_u64(m, c->provider);
	}
	ipc_add_str(m, c->session_id, c->session_idlen);
	ipc_add_str(m, c->udf_path, c->udf_pathlen);
	ipc_add_str(m, c->args, c->argslen);
}

void
actmsg_build_outcome(struct ipc_msg *m, uint32_t type, uint32_t seq,
    const struct actmsg_outcome *o)
{
	ipc_msg_init(m, type, seq, type == IPC_RUN_DONE ? 5 : 4);
	if (type == IPC_RUN_DONE)
		ipc_add_u64(m, o->call);
	ipc_add_i64(m, o->code);
	ipc_add_i64(m, o->ts);
	ipc_add_str(m, o->message != NULL ? o->message : "", o->messagelen);
	ipc_add_str(m, o->text != NULL ? o->text : "", o->textlen);
}
