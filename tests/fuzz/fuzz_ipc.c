/*
 * Fuzz target for common/ipc.c.  The input is a frame: its header goes
 * through ipc_frame_peek, and its body (or, when the header is refused,
 * the bytes after it) is walked generically with ipc_peek_kind, the
 * getters and ipc_skip, each value copied into a new message.  The checks:
 * no crash or read past the body; every pointer a getter returns lies in
 * the body; a getter matching the kind ipc_peek_kind reported succeeds;
 * the integer getters agree with each other on range; skipping the fields
 * succeeds exactly when walking them does (within IPC_MAX_DEPTH); and the
 * rebuilt message reads back to itself, byte for byte.
 *
 * The same body also goes to every decoder of common/actmsg.c (the
 * provider and action messages): an accepted body has its strings inside
 * it and within their bounds, and rebuilt with the matching builder it
 * decodes to the same fields, and every string but a function name is
 * valid UTF-8; a refused one leaves the output zeroed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actmsg.h"
#include "fuzz.h"
#include "ipc.h"
#include "json.h"

#define FUZZ_MAX_DEPTH	32	/* nesting the walker follows */

struct walk {
	const unsigned char	*lo;	/* the body */
	size_t			 len;
	struct ipc_msg		*out;	/* the copy being built */
	int			 depth;	/* deepest container nesting seen */
	int			 toodeep;	/* nesting past FUZZ_MAX_DEPTH */
};

static void
walk_in_body(const struct walk *w, const void *p, size_t len)
{
	in_body(w->lo, w->len, p, len);
}

static void
walk_one(struct ipc_reader *r, struct walk *w, int depth)
{
	struct ipc_reader	 t;
	enum ipc_kind		 kind;
	const char		*s;
	const void		*b;
	size_t			 len;
	uint64_t		 u, nobj, k;
	uint32_t		 u32, n;
	int64_t			 i;
	double			 d;
	int			 v;

	kind = ipc_peek_kind(r);
	t = *r;
	switch (kind) {
	case IPC_K_NONE:
		need(ipc_skip(&t) == -1);
		r->failed = 1;
		break;
	case IPC_K_NIL:
		need(ipc_get_str_or_nil(&t, &s, &len, 0) == 0 && s == NULL);
		need(ipc_get_nil(r) == 0);
		ipc_add_nil(w->out);
		break;
	case IPC_K_BOOL:
		need(ipc_get_bool(r, &v) == 0 && (v == 0 || v == 1));
		ipc_add_bool(w->out, v);
		break;
	case IPC_K_UINT:
		need(ipc_get_u64(&t, &u) == 0);
		t = *r;
		need((ipc_get_u32(&t, &u32) == 0) == (u <= UINT32_MAX));
		t = *r;
		need((ipc_get_i64(&t, &i) == 0) == (u <= INT64_MAX));
		t = *r;
		need(ipc_get_double(&t, &d) == -1);
		need(ipc_get_u64(r, &u) == 0);
		ipc_add_u64(w->out, u);
		break;
	case IPC_K_INT:
		need(ipc_get_u64(&t, &u) == -1);
		need(ipc_get_i64(r, &i) == 0 && i < 0);
		ipc_add_i64(w->out, i);
		break;
	case IPC_K_FLOAT:
		need(ipc_get_double(r, &d) == 0);
		ipc_add_double(w->out, d);
		break;
	case IPC_K_STR:
		need(ipc_get_str(r, &s, &len, SIZE_MAX) == 0);
		walk_in_body(w, s, len);
		if (len > 0)
			need(ipc_get_str(&t, &s, &len, len - 1) == -1);
		ipc_add_str(w->out, s, len);
		break;
	case IPC_K_BIN:
		need(ipc_get_bin(r, &b, &len, SIZE_MAX) == 0);
		walk_in_body(w, b, len);
		if (len > 0)
			need(ipc_get_bin(&t, &b, &len, len - 1) == -1);
		ipc_add_bin(w->out, b, len);
		break;
	case IPC_K_ARRAY:
	case IPC_K_MAP:
		if (depth >= FUZZ_MAX_DEPTH) {
			w->toodeep = 1;
			r->failed = 1;
			break;
		}
		if (depth + 1 > w->depth)
			w->depth = depth + 1;
		if (kind == IPC_K_ARRAY) {
			need(ipc_get_array(r, &n, UINT32_MAX) == 0);
			need(n <= r->len - r->off);
			ipc_add_array(w->out, n);
			nobj = n;
		} else {
			need(ipc_get_map(r, &n, UINT32_MAX) == 0);
			need(n <= (r->len - r->off) / 2);
			ipc_add_map(w->out, n);
			nobj = (uint64_t)n * 2;
		}
		for (k = 0; k < nobj && !r->failed; k++)
			walk_one(r, w, depth + 1);
		break;
	case IPC_K_EXT:
		need(ipc_get_nil(&t) == -1);
		ipc_skip(r);
		ipc_add_nil(w->out);	/* the builder has no ext */
		break;
	}
}

/*
 * Walk a body into a new message of the given type and seq.  Returns 0
 * when the whole body was read.
 */
static int
walk(const unsigned char *body, size_t len, struct ipc_msg *out,
    uint32_t type, uint32_t seq, struct walk *w)
{
	struct ipc_reader	 r = { body, len, 0, 0 }, t;
	uint32_t		 n, k;
	int			 skip_ok;

	memset(w, 0, sizeof(*w));
	w->lo = body;
	w->len = len;
	w->out = out;
	if (ipc_get_array(&r, &n, UINT32_MAX) == -1) {
		need(ipc_reader_init(&r, body, len, 0) == -1);
		return -1;
	}
	if (n < UINT32_MAX)
		need(ipc_reader_init(&r, body, len, n + 1) == -1);
	need(ipc_reader_init(&r, body, len, n) == 0);
	ipc_msg_init(out, type, seq, n);

	t = r;
	for (k = 0; k < n; k++)
		ipc_skip(&t);
	skip_ok = ipc_end(&t) == 0;

	for (k = 0; k < n && !r.failed; k++)
		walk_one(&r, w, 0);
	if (ipc_end(&r) == -1) {
		need(!skip_ok);
		need(ipc_peek_kind(&r) == IPC_K_NONE);
		return -1;
	}
	need(skip_ok == (w->depth <= IPC_MAX_DEPTH));
	return 0;
}

static int
zeroed(const void *p, size_t n)
{
	const unsigned char	*c = p;

	while (n-- > 0)
		if (*c++ != 0)
			return 0;
	return 1;
}

static int
same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Decode msg's body again with fn; fail unless it succeeds. */
#define REDECODE(msg, fn, out) do {					\
	const struct buf *f_ = ipc_msg_finish(msg);			\
	need(fn((const unsigned char *)f_->data + IPC_HDR_LEN,		\
	    f_->len - IPC_HDR_LEN, out) == 0);				\
} while (0)

static void
check_names(const unsigned char *body, size_t len, int provide)
{
	struct actmsg_names	 n, again;
	struct ipc_msg		 m;
	uint32_t		 i;

	if ((provide ? actmsg_provide(body, len, &n) :
	    actmsg_unprovide(body, len, &n)) == -1) {
		need(zeroed(&n, sizeof(n)));
		return;
	}
	need(n.n <= IPC_MAX_FUNCTIONS);
	for (i = 0; i < n.n; i++) {
		in_body(body, len, n.name[i], n.namelen[i]);
		need(actmsg_name_kind(n.name[i], n.namelen[i]) != ACT_NAME_BAD);
	}
	actmsg_build_names(&m, provide ? IPC_PROVIDE : IPC_UNPROVIDE, 0,
	    n.provider, n.concurrency, n.name, n.namelen, n.n);
	if (provide)
		REDECODE(&m, actmsg_provide, &again);
	else
		REDECODE(&m, actmsg_unprovide, &again);
	need(again.provider == n.provider && again.n == n.n &&
	    again.concurrency == n.concurrency);
	for (i = 0; i < n.n; i++)
		need(same(again.name[i], again.namelen[i], n.name[i],
		    n.namelen[i]));
	ipc_msg_free(&m);
}

static void
check_call(const unsigned char *body, size_t len, int run)
{
	struct actmsg_call	 c, again;
	struct ipc_msg		 m;

	if ((run ? actmsg_run(body, len, &c) :
	    actmsg_action(body, len, &c)) == -1) {
		need(zeroed(&c, sizeof(c)));
		return;
	}
	in_body(body, len, c.session_id, c.session_idlen);
	in_body(body, len, c.udf_path, c.udf_pathlen);
	in_body(body, len, c.args, c.argslen);
	need(c.session_idlen <= IPC_MAX_ID_LEN && c.udf_pathlen > 0 &&
	    c.udf_pathlen <= IPC_MAX_UDF_LEN && c.argslen > 0 &&
	    c.argslen <= IPC_MAX_ACTION_TEXT);
	need(utf8_valid(c.session_id, c.session_idlen) &&
	    utf8_valid(c.udf_path, c.udf_pathlen) &&
	    utf8_valid(c.args, c.argslen));
	actmsg_build_call(&m, run ? IPC_RUN : IPC_ACTION, 0, &c);
	if (run)
		REDECODE(&m, actmsg_run, &again);
	else
		REDECODE(&m, actmsg_action, &again);
	need(again.call == c.call && again.provider == c.provider &&
	    same(again.session_id, again.session_idlen, c.session_id,
	    c.session_idlen) && same(again.udf_path, again.udf_pathlen,
	    c.udf_path, c.udf_pathlen) && same(again.args, again.argslen,
	    c.args, c.argslen));
	ipc_msg_free(&m);
}

static void
check_outcome(const unsigned char *body, size_t len, uint32_t type)
{
	struct actmsg_outcome	 o, again;
	struct ipc_msg		 m;
	int			 rc;

	rc = type == IPC_RUN_DONE ? actmsg_run_done(body, len, &o) :
	    type == IPC_ACTION_DONE ? actmsg_action_done(body, len, &o) :
	    actmsg_provided(body, len, &o);
	if (rc == -1) {
		need(zeroed(&o, sizeof(o)));
		return;
	}
	in_body(body, len, o.message, o.messagelen);
	need(o.messagelen <= IPC_MAX_ACTION_MESSAGE && o.ts >= 0 &&
	    utf8_valid(o.message, o.messagelen));
	if (type == IPC_PROVIDED) {
		need(o.text == NULL && o.textlen == 0);
		return;
	}
	in_body(body, len, o.text, o.textlen);
	need(o.textlen <= IPC_MAX_ACTION_TEXT && utf8_valid(o.text, o.textlen));
	actmsg_build_outcome(&m, type, 0, &o);
	if (type == IPC_RUN_DONE)
		REDECODE(&m, actmsg_run_done, &again);
	else
		REDECODE(&m, actmsg_action_done, &again);
	need(again.call == o.call && again.code == o.code &&
	    again.ts == o.ts && same(again.message, again.messagelen,
	    o.message, o.messagelen) && same(again.text, again.textlen,
	    o.text, o.textlen));
	ipc_msg_free(&m);
}

static void
check_actmsg(const unsigned char *body, size_t len)
{
	uint64_t	 id;
	uint32_t	 call;

	check_names(body, len, 1);
	check_names(body, len, 0);
	check_call(body, len, 0);
	check_call(body, len, 1);
	check_outcome(body, len, IPC_PROVIDED);
	check_outcome(body, len, IPC_RUN_DONE);
	check_outcome(body, len, IPC_ACTION_DONE);
	if (actmsg_id(body, len, &id) == -1)
		need(id == 0);
	if (actmsg_cancel(body, len, &call) == -1)
		need(call == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg		 m1, m2;
	struct ipc_hdr		 h;
	struct walk		 w;
	const struct buf	*f1, *f2;
	unsigned char		*body;
	size_t			 off, len;
	long			 rc;

	memset(&h, 0, sizeof(h));
	memset(&m1, 0, sizeof(m1));
	memset(&m2, 0, sizeof(m2));
	rc = ipc_frame_peek(data, size, IPC_MAX_FRAME, &h);
	need(rc == -1 || (rc >= 0 && (size_t)rc <= size));
	if (rc > 0)
		need(h.len == (uint64_t)rc && h.flags == 0);
	if (size < IPC_HDR_LEN)
		need(rc == 0);
	off = size < IPC_HDR_LEN ? 0 : IPC_HDR_LEN;
	len = rc > 0 ? (size_t)rc - IPC_HDR_LEN : size - off;

	/* An exact copy, so that a read past the body is caught. */
	if ((body = malloc(len == 0 ? 1 : len)) == NULL)
		return 0;
	if (len > 0)
		memcpy(body, data + off, len);

	check_actmsg(body, len);
	if (walk(body, len, &m1, h.type, h.seq, &w) == 0) {
		f1 = ipc_msg_finish(&m1);
		need(ipc_frame_peek((const unsigned char *)f1->data, f1->len,
		    SIZE_MAX, NULL) == (long)f1->len || f1->len > IPC_MAX_FRAME);
		need(walk((const unsigned char *)f1->data + IPC_HDR_LEN,
		    f1->len - IPC_HDR_LEN, &m2, h.type, h.seq, &w) == 0);
		f2 = ipc_msg_finish(&m2);
		need(f1->len == f2->len &&
		    memcmp(f1->data, f2->data, f1->len) == 0);
	}
	ipc_msg_free(&m2);
	ipc_msg_free(&m1);
	free(body);
	return 0;
}
