/*
 * IPC framing and the msgpack message layer.  Frames are built with
 * msgpack-c's packer writing into a growable buffer, behind a header
 * placeholder filled in when the message is finished.  Frames are read
 * without msgpack-c's unpacker, which allocates for whatever counts a peer
 * declares: a reader is a cursor over the body that decodes one object
 * header at a time, checks every length and count against the bytes left
 * before it moves, allocates nothing, and stays failed after the first
 * mismatch.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "ipc.h"
#include "log.h"
#include "util.h"

/*
 * Room a new frame starts with: the frames that go by the thousand (a
 * mutation, its result, a commit notice of a few documents) fit, and are
 * built in one allocation instead of growing from 64 bytes.
 */
#define IPC_MSG_ROOM	512

/* One decoded object header, as ipc_head finds it at the cursor. */
struct ipc_obj {
	enum ipc_kind	 kind;
	size_t		 hlen;	/* bytes of tag, length and inline value */
	size_t		 dlen;	/* bytes of data after the header (str, bin, ext) */
	uint64_t	 n;	/* UINT value, BOOL value, ARRAY/MAP count */
	int64_t		 i;	/* INT value (always < 0) */
	double		 d;	/* FLOAT value */
};

static uint64_t	 ipc_load_be(const unsigned char *, size_t);
static int64_t	 ipc_sext(uint64_t, size_t);
static int	 ipc_head(struct ipc_reader *, struct ipc_obj *);
static int	 ipc_take(struct ipc_reader *, enum ipc_kind, struct ipc_obj *);
static int	 ipc_fail(struct ipc_reader *);
static int	 ipc_pk_write(void *, const char *, size_t);

long
ipc_frame_peek(const unsigned char *p, size_t avail, size_t maxlen,
    struct ipc_hdr *hdr)
{
	struct ipc_hdr	 h;

	if (avail < IPC_HDR_LEN)
		return 0;
	if (maxlen > IPC_MAX_FRAME)
		maxlen = IPC_MAX_FRAME;
	h.len = (uint32_t)ipc_load_be(p, 4);
	h.type = (uint32_t)ipc_load_be(p + 4, 4);
	h.seq = (uint32_t)ipc_load_be(p + 8, 4);
	h.flags = (uint32_t)ipc_load_be(p + 12, 4);
	if (h.len < IPC_HDR_LEN || h.len > maxlen || h.flags != 0)
		return -1;
	if (avail < h.len)
		return 0;
	if (hdr != NULL)
		*hdr = h;
	return (long)h.len;
}

/*
 * Building.  The packer's callback appends to msg->frame, which cannot
 * fail (allocation failure is fatal), so the packer's return values carry
 * no information.  msg->pk points at msg->frame: a message must not be
 * moved between ipc_msg_init and ipc_msg_free.
 */

static int
ipc_pk_write(void *data, const char *p, size_t len)
{
	buf_add(data, p, len);
	return 0;
}

void
ipc_msg_init(struct ipc_msg *msg, uint32_t type, uint32_t seq,
    uint32_t nfields)
{
	static const unsigned char	 zero[IPC_HDR_LEN];

	buf_init(&msg->frame);
	buf_reserve(&msg->frame, IPC_MSG_ROOM);
	buf_add(&msg->frame, zero, sizeof(zero));
	msgpack_packer_init(&msg->pk, &msg->frame, ipc_pk_write);
	msg->type = type;
	msg->seq = seq;
	msgpack_pack_array(&msg->pk, nfields);
}

void
ipc_add_u64(struct ipc_msg *msg, uint64_t v)
{
	msgpack_pack_uint64(&msg->pk, v);
}

void
ipc_add_i64(struct ipc_msg *msg, int64_t v)
{
	msgpack_pack_int64(&msg->pk, v);
}

void
ipc_add_bool(struct ipc_msg *msg, int v)
{
	if (v)
		msgpack_pack_true(&msg->pk);
	else
		msgpack_pack_false(&msg->pk);
}

void
ipc_add_nil(struct ipc_msg *msg)
{
	msgpack_pack_nil(&msg->pk);
}

void
ipc_add_str(struct ipc_msg *msg, const char *s, size_t len)
{
	if (len > UINT32_MAX)
		fatalx("%s: string of %zu bytes", __func__, len);
	msgpack_pack_str(&msg->pk, len);
	msgpack_pack_str_body(&msg->pk, s, len);
}

void
ipc_add_cstr(struct ipc_msg *msg, const char *s)
{
	ipc_add_str(msg, s, strlen(s));
}

void
ipc_add_bin(struct ipc_msg *msg, const void *p, size_t len)
{
	if (len > UINT32_MAX)
		fatalx("%s: bin of %zu bytes", __func__, len);
	msgpack_pack_bin(&msg->pk, len);
	msgpack_pack_bin_body(&msg->pk, p, len);
}

void
ipc_add_array(struct ipc_msg *msg, uint32_t n)
{
	msgpack_pack_array(&msg->pk, n);
}

void
ipc_add_map(struct ipc_msg *msg, uint32_t n)
{
	msgpack_pack_map(&msg->pk, n);
}

void
ipc_add_double(struct ipc_msg *msg, double v)
{
	msgpack_pack_double(&msg->pk, v);
}

/*
 * Fill in the header.  The caller checks the frame's length against what
 * its peer accepts; a frame whose length a header cannot hold is a bug.
 */
const struct buf *
ipc_msg_finish(struct ipc_msg *msg)
{
	uint32_t	 h[4];

	assert(msg->frame.len >= IPC_HDR_LEN);
	if (msg->frame.len > UINT32_MAX)
		fatalx("%s: frame of %zu bytes", __func__, msg->frame.len);
	h[0] = htonl((uint32_t)msg->frame.len);
	h[1] = htonl(msg->type);
	h[2] = htonl(msg->seq);
	h[3] = 0;
	memcpy(msg->frame.data, h, sizeof(h));
	return &msg->frame;
}

void
ipc_msg_free(struct ipc_msg *msg)
{
	buf_free(&msg->frame);
}

/*
 * Reading.
 */

/* A big-endian unsigned integer of 0, 1, 2, 4 or 8 bytes. */
static uint64_t
ipc_load_be(const unsigned char *p, size_t sz)
{
	uint64_t	 v = 0;
	size_t		 k;

	for (k = 0; k < sz; k++)
		v = (v << 8) | p[k];
	return v;
}

/* Sign-extend the sz-byte two's complement value v, 1 <= sz <= 8. */
static int64_t
ipc_sext(uint64_t v, size_t sz)
{
	uint64_t	 sign, mask;

	sign = (uint64_t)1 << (sz * 8 - 1);
	mask = sz == 8 ? UINT64_MAX : (sign << 1) - 1;
	if ((v & sign) == 0)
		return (int64_t)v;
	return -(int64_t)(~v & mask) - 1;
}

static int
ipc_fail(struct ipc_reader *r)
{
	r->failed = 1;
	return -1;
}

/*
 * Decode the object header at the cursor without moving it.  Fails (and
 * fails the reader) on a failed reader, at the end of the body, on the
 * unused tag 0xc1, on a header cut short, on str/bin/ext data longer than
 * the bytes left, and on a container count larger than the bytes left
 * could hold (one byte an element, two a map entry).
 */
static int
ipc_head(struct ipc_reader *r, struct ipc_obj *o)
{
	const unsigned char	*p;
	size_t			 left, sz, extra, rest;
	uint64_t		 v;
	int64_t			 sv;
	uint32_t		 f32;
	float			 f;
	unsigned char		 c;
	int			 sgn = 0, flt = 0;

	if (r->failed || r->off >= r->len)
		return ipc_fail(r);
	p = r->p + r->off;
	left = r->len - r->off;
	c = p[0];
	memset(o, 0, sizeof(*o));
	sz = 0;			/* bytes of length or value after the tag */
	extra = 0;		/* an ext's type byte */

	if (c <= 0x7f) {
		o->kind = IPC_K_UINT;
		o->n = c;
	} else if (c <= 0x8f) {
		o->kind = IPC_K_MAP;
		o->n = c & 0x0f;
	} else if (c <= 0x9f) {
		o->kind = IPC_K_ARRAY;
		o->n = c & 0x0f;
	} else if (c <= 0xbf) {
		o->kind = IPC_K_STR;
		o->n = c & 0x1f;
	} else if (c >= 0xe0) {
		o->kind = IPC_K_INT;
		o->i = (int64_t)c - 0x100;
	} else {
		switch (c) {
		case 0xc0:
			o->kind = IPC_K_NIL;
			break;
		case 0xc2:
		case 0xc3:
			o->kind = IPC_K_BOOL;
			o->n = c == 0xc3;
			break;
		case 0xc4:
		case 0xc5:
		case 0xc6:
			o->kind = IPC_K_BIN;
			sz = (size_t)1 << (c - 0xc4);
			break;
		case 0xc7:
		case 0xc8:
		case 0xc9:
			o->kind = IPC_K_EXT;
			sz = (size_t)1 << (c - 0xc7);
			extra = 1;
			break;
		case 0xca:
		case 0xcb:
			o->kind = IPC_K_FLOAT;
			sz = c == 0xca ? 4 : 8;
			flt = 1;
			break;
		case 0xcc:
		case 0xcd:
		case 0xce:
		case 0xcf:
			o->kind = IPC_K_UINT;
			sz = (size_t)1 << (c - 0xcc);
			break;
		case 0xd0:
		case 0xd1:
		case 0xd2:
		case 0xd3:
			sz = (size_t)1 << (c - 0xd0);
			sgn = 1;
			break;
		case 0xd4:
		case 0xd5:
		case 0xd6:
		case 0xd7:
		case 0xd8:
			o->kind = IPC_K_EXT;
			o->n = (uint64_t)1 << (c - 0xd4);
			extra = 1;
			break;
		case 0xd9:
		case 0xda:
		case 0xdb:
			o->kind = IPC_K_STR;
			sz = (size_t)1 << (c - 0xd9);
			break;
		case 0xdc:
		case 0xdd:
			o->kind = IPC_K_ARRAY;
			sz = c == 0xdc ? 2 : 4;
			break;
		case 0xde:
		case 0xdf:
			o->kind = IPC_K_MAP;
			sz = c == 0xde ? 2 : 4;
			break;
		default:		/* 0xc1, never used */
			return ipc_fail(r);
		}
	}

	o->hlen = 1 + sz + extra;
	if (o->hlen > left)
		return ipc_fail(r);
	rest = left - o->hlen;
	if (sz > 0) {
		v = ipc_load_be(p + 1, sz);
		if (flt && sz == 4) {
			f32 = (uint32_t)v;
			memcpy(&f, &f32, sizeof(f));
			o->d = f;
		} else if (flt)
			memcpy(&o->d, &v, sizeof(o->d));
		else if (sgn) {
			sv = ipc_sext(v, sz);
			if (sv >= 0) {
				o->kind = IPC_K_UINT;
				o->n = (uint64_t)sv;
			} else {
				o->kind = IPC_K_INT;
				o->i = sv;
			}
		} else
			o->n = v;
	}

	switch (o->kind) {
	case IPC_K_STR:
	case IPC_K_BIN:
	case IPC_K_EXT:
		if (o->n > rest)
			return ipc_fail(r);
		o->dlen = (size_t)o->n;
		break;
	case IPC_K_ARRAY:
		if (o->n > rest)
			return ipc_fail(r);
		break;
	case IPC_K_MAP:
		if (o->n > rest / 2)
			return ipc_fail(r);
		break;
	default:
		break;
	}
	return 0;
}

/* Decode the object at the cursor, check its kind, and step over it. */
static int
ipc_take(struct ipc_reader *r, enum ipc_kind kind, struct ipc_obj *o)
{
	if (ipc_head(r, o) == -1 || o->kind != kind)
		return ipc_fail(r);
	r->off += o->hlen + o->dlen;
	return 0;
}

int
ipc_reader_init(struct ipc_reader *r, const unsigned char *body, size_t len,
    uint32_t nfields)
{
	uint32_t	 n;

	r->p = body;
	r->len = body == NULL ? 0 : len;
	r->off = 0;
	r->failed = 0;
	if (ipc_get_array(r, &n, nfields) == -1 || n != nfields)
		return ipc_fail(r);
	return 0;
}

/*
 * The kind of the next object, without moving.  IPC_K_NONE at the end of
 * the body and on a failed reader; a header that cannot be decoded fails
 * the reader and gives IPC_K_NONE too.
 */
enum ipc_kind
ipc_peek_kind(struct ipc_reader *r)
{
	struct ipc_obj	 o;

	if (r->failed || r->off >= r->len)
		return IPC_K_NONE;
	if (ipc_head(r, &o) == -1)
		return IPC_K_NONE;
	return o.kind;
}

int
ipc_get_u64(struct ipc_reader *r, uint64_t *v)
{
	struct ipc_obj	 o;

	if (ipc_take(r, IPC_K_UINT, &o) == -1)
		return -1;
	*v = o.n;
	return 0;
}

int
ipc_get_u32(struct ipc_reader *r, uint32_t *v)
{
	struct ipc_obj	 o;

	if (ipc_head(r, &o) == -1 || o.kind != IPC_K_UINT ||
	    o.n > UINT32_MAX)
		return ipc_fail(r);
	r->off += o.hlen;
	*v = (uint32_t)o.n;
	return 0;
}

int
ipc_get_i64(struct ipc_reader *r, int64_t *v)
{
	struct ipc_obj	 o;

	if (ipc_head(r, &o) == -1)
		return -1;
	if (o.kind == IPC_K_UINT && o.n <= INT64_MAX)
		*v = (int64_t)o.n;
	else if (o.kind == IPC_K_INT)
		*v = o.i;
	else
		return ipc_fail(r);
	r->off += o.hlen;
	return 0;
}

int
ipc_get_bool(struct ipc_reader *r, int *v)
{
	struct ipc_obj	 o;

	if (ipc_take(r, IPC_K_BOOL, &o) == -1)
		return -1;
	*v = (int)o.n;
	return 0;
}

int
ipc_get_nil(struct ipc_reader *r)
{
	struct ipc_obj	 o;

	return ipc_take(r, IPC_K_NIL, &o);
}

/* float32 or float64; an integer is not a double here. */
int
ipc_get_double(struct ipc_reader *r, double *v)
{
	struct ipc_obj	 o;

	if (ipc_take(r, IPC_K_FLOAT, &o) == -1)
		return -1;
	*v = o.d;
	return 0;
}

int
ipc_get_str(struct ipc_reader *r, const char **s, size_t *len, size_t max)
{
	struct ipc_obj	 o;

	if (ipc_head(r, &o) == -1 || o.kind != IPC_K_STR || o.dlen > max)
		return ipc_fail(r);
	*s = (const char *)r->p + r->off + o.hlen;
	*len = o.dlen;
	r->off += o.hlen + o.dlen;
	return 0;
}

int
ipc_get_bin(struct ipc_reader *r, const void **p, size_t *len, size_t max)
{
	struct ipc_obj	 o;

	if (ipc_head(r, &o) == -1 || o.kind != IPC_K_BIN || o.dlen > max)
		return ipc_fail(r);
	*p = r->p + r->off + o.hlen;
	*len = o.dlen;
	r->off += o.hlen + o.dlen;
	return 0;
}

int
ipc_get_str_or_nil(struct ipc_reader *r, const char **s, size_t *len,
    size_t max)
{
	if (ipc_peek_kind(r) == IPC_K_NIL) {
		if (ipc_get_nil(r) == -1)
			return -1;
		*s = NULL;
		*len = 0;
		return 0;
	}
	return ipc_get_str(r, s, len, max);
}

int
ipc_get_array(struct ipc_reader *r, uint32_t *n, uint32_t max)
{
	struct ipc_obj	 o;

	if (ipc_head(r, &o) == -1 || o.kind != IPC_K_ARRAY || o.n > max)
		return ipc_fail(r);
	r->off += o.hlen;
	*n = (uint32_t)o.n;
	return 0;
}

int
ipc_get_map(struct ipc_reader *r, uint32_t *n, uint32_t max)
{
	struct ipc_obj	 o;

	if (ipc_head(r, &o) == -1 || o.kind != IPC_K_MAP || o.n > max)
		return ipc_fail(r);
	r->off += o.hlen;
	*n = (uint32_t)o.n;
	return 0;
}

/*
 * Skip one object.  Iterative: todo[d] counts the objects still to skip
 * at nesting level d (level 0 holds the object itself), so a container
 * may sit at levels 0..IPC_MAX_DEPTH - 1, which is IPC_MAX_DEPTH nested
 * containers.  Every object takes at least one byte, so the walk ends
 * within the body's length in steps.
 */
int
ipc_skip(struct ipc_reader *r)
{
	uint64_t	 todo[IPC_MAX_DEPTH + 1];
	struct ipc_obj	 o;
	int		 d = 0;

	todo[0] = 1;
	while (d >= 0) {
		if (todo[d] == 0) {
			d--;
			continue;
		}
		todo[d]--;
		if (ipc_head(r, &o) == -1)
			return -1;
		r->off += o.hlen + o.dlen;
		if (o.kind != IPC_K_ARRAY && o.kind != IPC_K_MAP)
			continue;
		if (d == IPC_MAX_DEPTH)
			return ipc_fail(r);
		if (o.n > 0) {
			d++;
			todo[d] = o.kind == IPC_K_MAP ? o.n * 2 : o.n;
		}
	}
	return 0;
}

int
ipc_end(struct ipc_reader *r)
{
	if (r->failed || r->off != r->len)
		return ipc_fail(r);
	return 0;
}

int
ipc_evbuffer_frame(struct evbuffer *in, size_t maxlen, struct ipc_hdr *hdr,
    const unsigned char **frame)
{
	const unsigned char	*p;
	size_t			 avail, need;

	avail = evbuffer_get_length(in);
	if (avail < IPC_HDR_LEN)
		return 0;
	p = evbuffer_pullup(in, IPC_HDR_LEN);
	need = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 |
	    p[3];
	if (need < IPC_HDR_LEN || need > maxlen || need > IPC_MAX_FRAME)
		return -1;
	if (avail < need)
		return 0;
	p = evbuffer_pullup(in, (ssize_t)need);
	if (ipc_frame_peek(p, need, maxlen, hdr) <= 0)
		return -1;
	*frame = p;
	return 1;
}
