/*
 * Tests of common/ipc.c: the frame header, the exact bytes the builder
 * writes at every format boundary, round trips of every field type, the
 * type and range rules of each getter, every msgpack format byte, nesting
 * limits, declared sizes far beyond the body, and every truncation and
 * many single-byte corruptions of realistic frames.  Buffers under test
 * are copied to allocations of their exact size, so that a read past the
 * end shows under AddressSanitizer.
 */
#include <float.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "ipc.h"

#define WALK_MAX_DEPTH	24	/* nesting the generic walker recurses into */
#define BIG_LEN		65536	/* longest string or bin in the round trips */

static int	 nchecks, nfailed;

#define CHECK(c)	check((c), #c, __LINE__)

static void
check(int ok, const char *what, int line)
{
	nchecks++;
	if (!ok) {
		nfailed++;
		fprintf(stderr, "FAIL line %d: %s\n", line, what);
	}
}

/* An exact-size copy of n bytes (at least one byte is allocated). */
static unsigned char *
dup_exact(const void *p, size_t n)
{
	unsigned char	*q;

	if ((q = malloc(n == 0 ? 1 : n)) == NULL)
		abort();
	if (n > 0)
		memcpy(q, p, n);
	return q;
}

static const unsigned char *
body_of(const struct buf *f)
{
	return (const unsigned char *)f->data + IPC_HDR_LEN;
}

static size_t
body_len(const struct buf *f)
{
	return f->len - IPC_HDR_LEN;
}

static int
in_range(const void *p, size_t len, const unsigned char *lo, size_t n)
{
	const unsigned char	*q = p;

	return q >= lo && q <= lo + n && len <= (size_t)(lo + n - q);
}

/* A deterministic byte pattern for strings and bins. */
static void
fill(unsigned char *p, size_t n, unsigned seed)
{
	size_t	 k;

	for (k = 0; k < n; k++)
		p[k] = (unsigned char)(' ' + (k * 7 + seed) % 90);
}

/*
 * A generic walker: reads any body with ipc_peek_kind and the getters,
 * checking that every pointer returned lies inside the body.  Returns 0
 * when the whole body was read, else -1.
 */
static int	walk_bad;	/* pointers out of range seen by walk_one */

static void
walk_one(struct ipc_reader *r, int depth)
{
	const char	*s;
	const void	*b;
	size_t		 len;
	uint64_t	 u;
	int64_t		 i;
	uint64_t	 nobj, k;
	uint32_t	 n;
	double		 d;
	int		 v;

	switch (ipc_peek_kind(r)) {
	case IPC_K_NIL:
		ipc_get_nil(r);
		break;
	case IPC_K_BOOL:
		ipc_get_bool(r, &v);
		break;
	case IPC_K_UINT:
		ipc_get_u64(r, &u);
		break;
	case IPC_K_INT:
		ipc_get_i64(r, &i);
		break;
	case IPC_K_FLOAT:
		ipc_get_double(r, &d);
		break;
	case IPC_K_STR:
		if (ipc_get_str(r, &s, &len, SIZE_MAX) == 0 &&
		    !in_range(s, len, r->p, r->len))
			walk_bad++;
		break;
	case IPC_K_BIN:
		if (ipc_get_bin(r, &b, &len, SIZE_MAX) == 0 &&
		    !in_range(b, len, r->p, r->len))
			walk_bad++;
		break;
	case IPC_K_ARRAY:
	case IPC_K_MAP:
		if (depth >= WALK_MAX_DEPTH) {
			ipc_skip(r);
			break;
		}
		if (ipc_peek_kind(r) == IPC_K_ARRAY) {
			if (ipc_get_array(r, &n, UINT32_MAX) == -1)
				break;
			nobj = n;
		} else {
			if (ipc_get_map(r, &n, UINT32_MAX) == -1)
				break;
			nobj = (uint64_t)n * 2;
		}
		for (k = 0; k < nobj && !r->failed; k++)
			walk_one(r, depth + 1);
		break;
	case IPC_K_EXT:
		ipc_skip(r);
		break;
	case IPC_K_NONE:
		ipc_skip(r);	/* must fail too */
		break;
	}
}

static int
walk(const unsigned char *body, size_t len)
{
	struct ipc_reader	 r = { body, len, 0, 0 };
	uint32_t		 n, k;

	if (ipc_get_array(&r, &n, UINT32_MAX) == -1)
		return -1;
	if (ipc_reader_init(&r, body, len, n) == -1)
		return -1;
	for (k = 0; k < n && !r.failed; k++)
		walk_one(&r, 0);
	return ipc_end(&r);
}

/* Frame header. */
static void
test_peek(void)
{
	struct ipc_msg	 m;
	const struct buf *f;
	struct ipc_hdr	 h;
	unsigned char	 raw[32], *cp;
	size_t		 k;
	long		 rc;
	int		 ok;

	printf("frame header: partial, whole, len/flags/max checks\n");
	ipc_msg_init(&m, 7, 0x01020304, 1);
	ipc_add_u64(&m, 5);
	f = ipc_msg_finish(&m);
	CHECK(f->len == IPC_HDR_LEN + 2);
	CHECK(memcmp(f->data, "\0\0\0\x12\0\0\0\x07\x01\x02\x03\x04\0\0\0\0"
	    "\x91\x05", 18) == 0);

	ok = 1;
	for (k = 0; k < f->len; k++) {
		cp = dup_exact(f->data, k);
		if (ipc_frame_peek(cp, k, IPC_MAX_FRAME, &h) != 0)
			ok = 0;
		free(cp);
	}
	CHECK(ok);
	memset(&h, 0, sizeof(h));
	cp = dup_exact(f->data, f->len);
	CHECK(ipc_frame_peek(cp, f->len, IPC_MAX_FRAME, &h) == 18);
	CHECK(h.len == 18 && h.type == 7 && h.seq == 0x01020304 &&
	    h.flags == 0);
	CHECK(ipc_frame_peek(cp, f->len, 18, &h) == 18);
	CHECK(ipc_frame_peek(cp, f->len, 17, &h) == -1);
	CHECK(ipc_frame_peek(cp, f->len, IPC_MAX_FRAME, NULL) == 18);
	free(cp);
	memset(raw, 0, sizeof(raw));
	memcpy(raw, f->data, f->len);
	CHECK(ipc_frame_peek(raw, sizeof(raw), IPC_MAX_FRAME, &h) == 18);
	ipc_msg_free(&m);

	/* Hand-made headers. */
	memset(raw, 0, sizeof(raw));
	raw[3] = 15;
	CHECK(ipc_frame_peek(raw, sizeof(raw), IPC_MAX_FRAME, &h) == -1);
	raw[3] = 0;
	CHECK(ipc_frame_peek(raw, sizeof(raw), IPC_MAX_FRAME, &h) == -1);
	raw[3] = 16;
	CHECK(ipc_frame_peek(raw, 16, IPC_MAX_FRAME, &h) == 16);
	CHECK(ipc_frame_peek(raw, 16, 16, &h) == 16);
	CHECK(ipc_frame_peek(raw, 16, 15, &h) == -1);
	CHECK(ipc_frame_peek(raw, 15, 15, &h) == 0);	/* partial header */
	raw[15] = 1;
	CHECK(ipc_frame_peek(raw, 16, IPC_MAX_FRAME, &h) == -1);
	raw[15] = 0;
	raw[12] = 0x80;
	CHECK(ipc_frame_peek(raw, 16, IPC_MAX_FRAME, &h) == -1);
	raw[12] = 0;
	raw[2] = 1;			/* len 272, max 271 */
	CHECK(ipc_frame_peek(raw, 16, 271, &h) == -1);
	CHECK(ipc_frame_peek(raw, 16, 272, &h) == 0);	/* not all here */
	memset(raw, 0xff, 4);		/* len 2^32 - 1 */
	CHECK(ipc_frame_peek(raw, 32, SIZE_MAX, &h) == -1);
	raw[0] = 0x01;			/* IPC_MAX_FRAME + 1 */
	raw[1] = raw[2] = 0;
	raw[3] = 0x01;
	CHECK(ipc_frame_peek(raw, 32, SIZE_MAX, &h) == -1);
	raw[3] = 0x00;			/* IPC_MAX_FRAME exactly */
	CHECK(ipc_frame_peek(raw, 32, SIZE_MAX, &h) == 0);
	rc = ipc_frame_peek(raw, 32, IPC_MAX_FRAME - 1, &h);
	CHECK(rc == -1);
}

/* The builder's bytes for a one-field body, against the expected ones. */
static void
expect_field(const struct ipc_msg *m, const char *what, const char *bytes,
    size_t blen, size_t total)
{
	int	 ok;

	ok = m->frame.len - IPC_HDR_LEN == 1 + total &&
	    (unsigned char)m->frame.data[16] == 0x91 &&
	    memcmp(m->frame.data + 17, bytes, blen) == 0;
	if (!ok)
		fprintf(stderr, "encoding of %s\n", what);
	CHECK(ok);
}

static void
test_encodings(void)
{
	static const struct {
		uint64_t	 v;
		const char	*b;
		size_t		 n;
	} u[] = {
		{ 0, "\x00", 1 }, { 127, "\x7f", 1 }, { 128, "\xcc\x80", 2 },
		{ 255, "\xcc\xff", 2 }, { 256, "\xcd\x01\x00", 3 },
		{ 65535, "\xcd\xff\xff", 3 },
		{ 65536, "\xce\x00\x01\x00\x00", 5 },
		{ UINT32_MAX, "\xce\xff\xff\xff\xff", 5 },
		{ (uint64_t)UINT32_MAX + 1,
		    "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9 },
		{ UINT64_MAX, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9 },
	};
	static const struct {
		int64_t		 v;
		const char	*b;
		size_t		 n;
	} s[] = {
		{ -1, "\xff", 1 }, { -32, "\xe0", 1 }, { -33, "\xd0\xdf", 2 },
		{ -128, "\xd0\x80", 2 }, { -129, "\xd1\xff\x7f", 3 },
		{ -32768, "\xd1\x80\x00", 3 },
		{ -32769, "\xd2\xff\xff\x7f\xff", 5 },
		{ INT64_MIN, "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9 },
		{ 5, "\x05", 1 },
	};
	static const struct {
		size_t		 len;
		const char	*b;
		size_t		 n;
	} str[] = {
		{ 0, "\xa0", 1 }, { 31, "\xbf", 1 }, { 32, "\xd9\x20", 2 },
		{ 255, "\xd9\xff", 2 }, { 256, "\xda\x01\x00", 3 },
		{ 65535, "\xda\xff\xff", 3 },
		{ 65536, "\xdb\x00\x01\x00\x00", 5 },
	}, bin[] = {
		{ 0, "\xc4\x00", 2 }, { 255, "\xc4\xff", 2 },
		{ 256, "\xc5\x01\x00", 3 }, { 65535, "\xc5\xff\xff", 3 },
		{ 65536, "\xc6\x00\x01\x00\x00", 5 },
	}, cnt[] = {
		{ 0, "", 0 }, { 15, "", 0 }, { 16, "\x00\x10", 2 },
		{ 65535, "\xff\xff", 2 }, { 65536, "\x00\x01\x00\x00", 4 },
	};
	struct ipc_msg	 m;
	unsigned char	*data;
	char		 b[8];
	size_t		 k;

	printf("builder: exact bytes at every format boundary\n");
	data = calloc(1, BIG_LEN);
	for (k = 0; k < nitems(u); k++) {
		ipc_msg_init(&m, 1, 1, 1);
		ipc_add_u64(&m, u[k].v);
		expect_field(&m, "u64", u[k].b, u[k].n, u[k].n);
		ipc_msg_free(&m);
	}
	for (k = 0; k < nitems(s); k++) {
		ipc_msg_init(&m, 1, 1, 1);
		ipc_add_i64(&m, s[k].v);
		expect_field(&m, "i64", s[k].b, s[k].n, s[k].n);
		ipc_msg_free(&m);
	}
	for (k = 0; k < nitems(str); k++) {
		ipc_msg_init(&m, 1, 1, 1);
		ipc_add_str(&m, (char *)data, str[k].len);
		expect_field(&m, "str", str[k].b, str[k].n,
		    str[k].n + str[k].len);
		ipc_msg_free(&m);
	}
	for (k = 0; k < nitems(bin); k++) {
		ipc_msg_init(&m, 1, 1, 1);
		ipc_add_bin(&m, data, bin[k].len);
		expect_field(&m, "bin", bin[k].b, bin[k].n,
		    bin[k].n + bin[k].len);
		ipc_msg_free(&m);
	}
	for (k = 0; k < nitems(cnt); k++) {
		/* Headers only: the elements are not added. */
		ipc_msg_init(&m, 1, 1, 1);
		ipc_add_array(&m, (uint32_t)cnt[k].len);
		b[0] = cnt[k].len < 16 ? (char)(0x90 | cnt[k].len) :
		    cnt[k].len < 65536 ? '\xdc' : '\xdd';
		memcpy(b + 1, cnt[k].b, cnt[k].n);
		expect_field(&m, "array", b, 1 + cnt[k].n, 1 + cnt[k].n);
		ipc_msg_free(&m);
		ipc_msg_init(&m, 1, 1, 1);
		ipc_add_map(&m, (uint32_t)cnt[k].len);
		b[0] = cnt[k].len < 16 ? (char)(0x80 | cnt[k].len) :
		    cnt[k].len < 65536 ? '\xde' : '\xdf';
		expect_field(&m, "map", b, 1 + cnt[k].n, 1 + cnt[k].n);
		ipc_msg_free(&m);
	}
	ipc_msg_init(&m, 1, 1, 4);
	ipc_add_nil(&m);
	ipc_add_bool(&m, 0);
	ipc_add_bool(&m, 7);
	ipc_add_double(&m, 1.5);
	ipc_msg_finish(&m);
	CHECK(body_len(&m.frame) == 13 && memcmp(body_of(&m.frame),
	    "\x94\xc0\xc2\xc3\xcb\x3f\xf8\0\0\0\0\0\0", 13) == 0);
	ipc_msg_free(&m);
	ipc_msg_init(&m, 1, 1, 1);
	ipc_add_cstr(&m, "hello");
	CHECK(memcmp(m.frame.data + 16, "\x91\xa5hello", 7) == 0);
	ipc_msg_free(&m);
	free(data);
}

/* One unsigned value through every integer getter. */
static void
one_u64(uint64_t v)
{
	struct ipc_msg		 m;
	struct ipc_reader	 r;
	const unsigned char	*p;
	uint64_t		 u = 0;
	uint32_t		 u32 = 0;
	int64_t			 i = 0;
	double			 d;
	size_t			 n;

	ipc_msg_init(&m, 1, 2, 1);
	ipc_add_u64(&m, v);
	ipc_msg_finish(&m);
	p = body_of(&m.frame);
	n = body_len(&m.frame);

	CHECK(ipc_reader_init(&r, p, n, 1) == 0);
	CHECK(ipc_peek_kind(&r) == IPC_K_UINT);
	CHECK(ipc_get_u64(&r, &u) == 0 && u == v && ipc_end(&r) == 0);

	ipc_reader_init(&r, p, n, 1);
	if (v <= UINT32_MAX)
		CHECK(ipc_get_u32(&r, &u32) == 0 && u32 == v &&
		    ipc_end(&r) == 0);
	else
		CHECK(ipc_get_u32(&r, &u32) == -1 && ipc_end(&r) == -1);

	ipc_reader_init(&r, p, n, 1);
	if (v <= INT64_MAX)
		CHECK(ipc_get_i64(&r, &i) == 0 && (uint64_t)i == v &&
		    ipc_end(&r) == 0);
	else
		CHECK(ipc_get_i64(&r, &i) == -1 && ipc_end(&r) == -1);

	ipc_reader_init(&r, p, n, 1);
	CHECK(ipc_get_double(&r, &d) == -1 && ipc_end(&r) == -1);
	ipc_msg_free(&m);
}

/* One signed value through every integer getter. */
static void
one_i64(int64_t v)
{
	struct ipc_msg		 m;
	struct ipc_reader	 r;
	const unsigned char	*p;
	uint64_t		 u = 0;
	uint32_t		 u32 = 0;
	int64_t			 i = 0;
	size_t			 n;

	ipc_msg_init(&m, 1, 2, 1);
	ipc_add_i64(&m, v);
	ipc_msg_finish(&m);
	p = body_of(&m.frame);
	n = body_len(&m.frame);

	CHECK(ipc_reader_init(&r, p, n, 1) == 0);
	CHECK(ipc_peek_kind(&r) == (v < 0 ? IPC_K_INT : IPC_K_UINT));
	CHECK(ipc_get_i64(&r, &i) == 0 && i == v && ipc_end(&r) == 0);

	ipc_reader_init(&r, p, n, 1);
	if (v >= 0)
		CHECK(ipc_get_u64(&r, &u) == 0 && u == (uint64_t)v);
	else
		CHECK(ipc_get_u64(&r, &u) == -1 && ipc_end(&r) == -1);

	ipc_reader_init(&r, p, n, 1);
	if (v >= 0 && v <= UINT32_MAX)
		CHECK(ipc_get_u32(&r, &u32) == 0 && u32 == v);
	else
		CHECK(ipc_get_u32(&r, &u32) == -1 && ipc_end(&r) == -1);
	ipc_msg_free(&m);
}

static void
test_integers(void)
{
	static const uint64_t	 uv[] = { 0, 1, 127, 128, 255, 256, 65535,
	    65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, INT64_MAX,
	    (uint64_t)INT64_MAX + 1, UINT64_MAX };
	static const int64_t	 iv[] = { 0, 1, -1, -31, -32, -33, -127,
	    -128, -129, -32767, -32768, -32769, INT32_MIN,
	    (int64_t)INT32_MIN - 1, INT64_MIN + 1, INT64_MIN, 127, 128,
	    UINT32_MAX, (int64_t)UINT32_MAX + 1, INT64_MAX };
	size_t			 k;

	printf("integers: %zu unsigned and %zu signed boundary values "
	    "through every integer getter\n", nitems(uv), nitems(iv));
	for (k = 0; k < nitems(uv); k++)
		one_u64(uv[k]);
	for (k = 0; k < nitems(iv); k++)
		one_i64(iv[k]);
}

/*
 * A message with every field type: strings and bins of the boundary
 * lengths, doubles, booleans, nil, a map, and nested arrays.
 */
static const size_t	 rt_lens[] = { 0, 1, 31, 32, 255, 256, 65535, 65536 };
static const double	 rt_dbl[] = { 0.0, -0.0, 1.5, -2.25, DBL_MAX,
    -DBL_MAX, DBL_MIN, DBL_TRUE_MIN, 1e300, INFINITY, -INFINITY };

static void
test_roundtrip(void)
{
	struct ipc_msg		 m;
	struct ipc_reader	 r;
	const struct buf	*f;
	unsigned char		*data, *cp;
	const char		*s;
	const void		*b;
	size_t			 k, j, len, nf;
	uint32_t		 n, n2;
	uint64_t		 u;
	int64_t			 i;
	double			 d;
	int			 v, ok;

	printf("round trip: strings and bins of lengths 0..65536, doubles, "
	    "bool, nil, map, nested arrays\n");
	data = malloc(BIG_LEN);
	nf = 2 * nitems(rt_lens) + nitems(rt_dbl) + 9;
	ipc_msg_init(&m, 42, 43, (uint32_t)nf);
	for (k = 0; k < nitems(rt_lens); k++) {
		fill(data, rt_lens[k], (unsigned)k);
		ipc_add_str(&m, (char *)data, rt_lens[k]);
		ipc_add_bin(&m, data, rt_lens[k]);
	}
	for (k = 0; k < nitems(rt_dbl); k++)
		ipc_add_double(&m, rt_dbl[k]);
	ipc_add_double(&m, NAN);
	ipc_add_bool(&m, 1);
	ipc_add_bool(&m, 0);
	ipc_add_nil(&m);
	ipc_add_map(&m, 2);			/* {"a": 1, "bb": [-1, nil]} */
	ipc_add_cstr(&m, "a");
	ipc_add_u64(&m, 1);
	ipc_add_cstr(&m, "bb");
	ipc_add_array(&m, 2);
	ipc_add_i64(&m, -1);
	ipc_add_nil(&m);
	ipc_add_array(&m, 3);			/* [[], [[7]], {}] */
	ipc_add_array(&m, 0);
	ipc_add_array(&m, 1);
	ipc_add_array(&m, 1);
	ipc_add_u64(&m, 7);
	ipc_add_map(&m, 0);
	ipc_add_str(&m, NULL, 0);
	ipc_add_bin(&m, NULL, 0);
	ipc_add_cstr(&m, "last");
	f = ipc_msg_finish(&m);
	cp = dup_exact(body_of(f), body_len(f));
	len = body_len(f);

	CHECK(ipc_reader_init(&r, cp, len, (uint32_t)nf) == 0);
	ok = 1;
	for (k = 0; k < nitems(rt_lens); k++) {
		fill(data, rt_lens[k], (unsigned)k);
		if (ipc_get_str(&r, &s, &j, rt_lens[k]) == -1 ||
		    j != rt_lens[k] || memcmp(s, data, j) != 0 ||
		    !in_range(s, j, cp, len))
			ok = 0;
		if (ipc_get_bin(&r, &b, &j, rt_lens[k]) == -1 ||
		    j != rt_lens[k] || memcmp(b, data, j) != 0 ||
		    !in_range(b, j, cp, len))
			ok = 0;
	}
	CHECK(ok);
	ok = 1;
	for (k = 0; k < nitems(rt_dbl); k++)
		if (ipc_get_double(&r, &d) == -1 ||
		    memcmp(&d, &rt_dbl[k], sizeof(d)) != 0)
			ok = 0;
	CHECK(ok);
	CHECK(ipc_get_double(&r, &d) == 0 && isnan(d));
	CHECK(ipc_get_bool(&r, &v) == 0 && v == 1);
	CHECK(ipc_get_bool(&r, &v) == 0 && v == 0);
	CHECK(ipc_peek_kind(&r) == IPC_K_NIL);
	s = "x";
	CHECK(ipc_get_str_or_nil(&r, &s, &j, 10) == 0 && s == NULL && j == 0);
	CHECK(ipc_get_map(&r, &n, 2) == 0 && n == 2);
	CHECK(ipc_get_str(&r, &s, &j, 1) == 0 && j == 1 && *s == 'a');
	CHECK(ipc_get_u64(&r, &u) == 0 && u == 1);
	CHECK(ipc_get_str_or_nil(&r, &s, &j, 2) == 0 && j == 2 &&
	    memcmp(s, "bb", 2) == 0);
	CHECK(ipc_get_array(&r, &n, 2) == 0 && n == 2);
	CHECK(ipc_get_i64(&r, &i) == 0 && i == -1);
	CHECK(ipc_get_nil(&r) == 0);
	CHECK(ipc_get_array(&r, &n, 3) == 0 && n == 3);
	CHECK(ipc_get_array(&r, &n, 0) == 0 && n == 0);
	CHECK(ipc_get_array(&r, &n, 1) == 0 && n == 1);
	CHECK(ipc_get_array(&r, &n2, 1) == 0 && n2 == 1);
	CHECK(ipc_get_u32(&r, &n) == 0 && n == 7);
	CHECK(ipc_get_map(&r, &n, 0) == 0 && n == 0);
	CHECK(ipc_get_str(&r, &s, &j, 0) == 0 && j == 0);
	CHECK(ipc_get_bin(&r, &b, &j, 0) == 0 && j == 0);
	CHECK(ipc_peek_kind(&r) == IPC_K_STR);
	CHECK(ipc_end(&r) == -1);		/* "last" is left */
	CHECK(r.failed);
	CHECK(ipc_get_str(&r, &s, &j, 10) == -1);	/* stays failed */
	CHECK(ipc_peek_kind(&r) == IPC_K_NONE);

	/* The same body skipped field by field, and walked. */
	CHECK(ipc_reader_init(&r, cp, len, (uint32_t)nf) == 0);
	for (k = 0; k < nf; k++)
		ipc_skip(&r);
	CHECK(ipc_peek_kind(&r) == IPC_K_NONE && ipc_end(&r) == 0);
	walk_bad = 0;
	CHECK(walk(cp, len) == 0 && walk_bad == 0);

	/* Lengths over the max fail. */
	ok = 1;
	ipc_reader_init(&r, cp, len, (uint32_t)nf);
	for (k = 0; k < nitems(rt_lens); k++) {
		struct ipc_reader	 t;

		t = r;
		if (rt_lens[k] > 0 &&
		    ipc_get_str(&t, &s, &j, rt_lens[k] - 1) != -1)
			ok = 0;
		ipc_get_str(&r, &s, &j, SIZE_MAX);
		t = r;
		if (rt_lens[k] > 0 &&
		    ipc_get_bin(&t, &b, &j, rt_lens[k] - 1) != -1)
			ok = 0;
		ipc_get_bin(&r, &b, &j, SIZE_MAX);
	}
	CHECK(ok && !r.failed);
	free(cp);
	free(data);
	ipc_msg_free(&m);
}

/*
 * Every getter on one sample of every kind: only the matching getters
 * succeed, and a failure is sticky.
 */
enum getter {
	G_U64, G_U32, G_I64, G_BOOL, G_NIL, G_DOUBLE, G_STR, G_BIN,
	G_STRNIL, G_ARRAY, G_MAP, G_SKIP, G_COUNT
};

static int
run_getter(struct ipc_reader *r, enum getter g)
{
	const char	*s;
	const void	*b;
	size_t		 len;
	uint64_t	 u;
	uint32_t	 u32;
	int64_t		 i;
	double		 d;
	int		 v;

	switch (g) {
	case G_U64:
		return ipc_get_u64(r, &u);
	case G_U32:
		return ipc_get_u32(r, &u32);
	case G_I64:
		return ipc_get_i64(r, &i);
	case G_BOOL:
		return ipc_get_bool(r, &v);
	case G_NIL:
		return ipc_get_nil(r);
	case G_DOUBLE:
		return ipc_get_double(r, &d);
	case G_STR:
		return ipc_get_str(r, &s, &len, SIZE_MAX);
	case G_BIN:
		return ipc_get_bin(r, &b, &len, SIZE_MAX);
	case G_STRNIL:
		return ipc_get_str_or_nil(r, &s, &len, SIZE_MAX);
	case G_ARRAY:
		return ipc_get_array(r, &u32, UINT32_MAX);
	case G_MAP:
		return ipc_get_map(r, &u32, UINT32_MAX);
	case G_SKIP:
	case G_COUNT:
		break;
	}
	return ipc_skip(r);
}

static void
test_mismatch(void)
{
	static const struct {
		const char	*what;
		const char	*body;
		size_t		 len;
		enum ipc_kind	 kind;
		unsigned	 ok;	/* bit per getter that accepts it */
	} smp[] = {
		{ "nil", "\x91\xc0", 2, IPC_K_NIL,
		    1u << G_NIL | 1u << G_STRNIL },
		{ "bool", "\x91\xc3", 2, IPC_K_BOOL, 1u << G_BOOL },
		{ "uint", "\x91\x05", 2, IPC_K_UINT,
		    1u << G_U64 | 1u << G_U32 | 1u << G_I64 },
		{ "int8 >= 0", "\x91\xd0\x05", 3, IPC_K_UINT,
		    1u << G_U64 | 1u << G_U32 | 1u << G_I64 },
		{ "int", "\x91\xff", 2, IPC_K_INT, 1u << G_I64 },
		{ "uint64 2^63", "\x91\xcf\x80\0\0\0\0\0\0\0", 10, IPC_K_UINT,
		    1u << G_U64 },
		{ "float32", "\x91\xca\x3f\xc0\0\0", 6, IPC_K_FLOAT,
		    1u << G_DOUBLE },
		{ "float64", "\x91\xcb\x3f\xf8\0\0\0\0\0\0", 10, IPC_K_FLOAT,
		    1u << G_DOUBLE },
		{ "str", "\x91\xa1x", 3, IPC_K_STR,
		    1u << G_STR | 1u << G_STRNIL },
		{ "bin", "\x91\xc4\x01x", 4, IPC_K_BIN, 1u << G_BIN },
		{ "array", "\x91\x90", 2, IPC_K_ARRAY, 1u << G_ARRAY },
		{ "map", "\x91\x80", 2, IPC_K_MAP, 1u << G_MAP },
		{ "ext", "\x91\xd4\x01\x00", 4, IPC_K_EXT, 0 },
	};
	struct ipc_reader	 r;
	unsigned char		*cp;
	enum getter		 g, good;
	size_t			 k;
	int			 ok, acc;

	printf("getters: %d getters on %zu kinds, only matching ones "
	    "succeed, failures stick\n", G_COUNT, nitems(smp));
	for (k = 0; k < nitems(smp); k++) {
		cp = dup_exact(smp[k].body, smp[k].len);
		ok = 1;
		good = G_SKIP;
		for (g = 0; g < G_COUNT; g++)
			if (smp[k].ok & (1u << g))
				good = g;
		for (g = 0; g < G_COUNT; g++) {
			acc = g == G_SKIP || (smp[k].ok & (1u << g));
			if (ipc_reader_init(&r, cp, smp[k].len, 1) == -1 ||
			    ipc_peek_kind(&r) != smp[k].kind) {
				ok = 0;
				continue;
			}
			if (acc) {
				if (run_getter(&r, g) != 0 ||
				    ipc_end(&r) != 0)
					ok = 0;
				continue;
			}
			if (run_getter(&r, g) != -1 || !r.failed ||
			    ipc_peek_kind(&r) != IPC_K_NONE ||
			    run_getter(&r, good) != -1 || ipc_end(&r) != -1)
				ok = 0;
		}
		if (!ok)
			fprintf(stderr, "sample %s\n", smp[k].what);
		CHECK(ok);
		free(cp);
	}
}

/* Field counts, bodies that are not an array, leftover bytes. */
static void
test_init(void)
{
	struct ipc_msg		 m;
	struct ipc_reader	 r;
	const unsigned char	*p;
	unsigned char		*cp;
	size_t			 n;
	uint64_t		 u;
	uint32_t		 c;

	printf("reader init: field count, non-array body, empty body, "
	    "trailing bytes, container max\n");
	ipc_msg_init(&m, 1, 1, 3);
	ipc_add_u64(&m, 1);
	ipc_add_u64(&m, 2);
	ipc_add_u64(&m, 3);
	ipc_msg_finish(&m);
	p = body_of(&m.frame);
	n = body_len(&m.frame);
	CHECK(ipc_reader_init(&r, p, n, 2) == -1 && r.failed);
	CHECK(ipc_get_u64(&r, &u) == -1);
	CHECK(ipc_reader_init(&r, p, n, 4) == -1);
	CHECK(ipc_reader_init(&r, p, n, 0) == -1);
	CHECK(ipc_reader_init(&r, p, n, 3) == 0 && !r.failed);
	CHECK(ipc_get_u64(&r, &u) == 0 && u == 1);
	CHECK(ipc_get_u64(&r, &u) == 0 && u == 2);
	CHECK(ipc_end(&r) == -1);		/* one field left */
	ipc_msg_free(&m);

	CHECK(ipc_reader_init(&r, (const unsigned char *)"", 0, 0) == -1);
	CHECK(ipc_reader_init(&r, NULL, 0, 0) == -1);
	CHECK(ipc_reader_init(&r, (const unsigned char *)"\x80", 1, 0) == -1);
	CHECK(ipc_reader_init(&r, (const unsigned char *)"\x00", 1, 0) == -1);
	cp = dup_exact("\x90", 1);
	CHECK(ipc_reader_init(&r, cp, 1, 0) == 0 && ipc_end(&r) == 0);
	CHECK(ipc_peek_kind(&r) == IPC_K_NONE && !r.failed);
	CHECK(ipc_get_nil(&r) == -1);		/* nothing left */
	free(cp);
	cp = dup_exact("\x90\xc0", 2);
	CHECK(ipc_reader_init(&r, cp, 2, 0) == 0 && ipc_end(&r) == -1);
	free(cp);
	cp = dup_exact("\x91\x93\x01\x02\x03", 5);
	CHECK(ipc_reader_init(&r, cp, 5, 1) == 0 &&
	    ipc_get_array(&r, &c, 2) == -1);
	CHECK(ipc_reader_init(&r, cp, 5, 1) == 0 &&
	    ipc_get_array(&r, &c, 3) == 0 && c == 3);
	free(cp);
	cp = dup_exact("\x91\x82\x01\x02\x03\x04", 6);
	CHECK(ipc_reader_init(&r, cp, 6, 1) == 0 &&
	    ipc_get_map(&r, &c, 1) == -1);
	CHECK(ipc_reader_init(&r, cp, 6, 1) == 0 &&
	    ipc_get_map(&r, &c, 2) == 0 && c == 2);
	free(cp);
	/* array16 body declaring 3 fields */
	cp = dup_exact("\xdc\x00\x03\x01\x02\x03", 6);
	CHECK(ipc_reader_init(&r, cp, 6, 3) == 0);
	CHECK(ipc_skip(&r) == 0 && ipc_skip(&r) == 0 && ipc_skip(&r) == 0 &&
	    ipc_end(&r) == 0);
	free(cp);
}

/*
 * One object of every format byte, with the kind ipc_peek_kind gives it.
 * Returns the object's length, 0 for the unused byte 0xc1.
 */
static size_t
make_obj(unsigned c, unsigned char *o, enum ipc_kind *kind)
{
	static const unsigned char f32[] = { 0x3f, 0xc0, 0, 0 };
	static const unsigned char f64[] = { 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 };
	size_t	 n = 0, k, sz;

	o[n++] = (unsigned char)c;
	if (c <= 0x7f) {
		*kind = IPC_K_UINT;
	} else if (c <= 0x8f) {
		*kind = IPC_K_MAP;
		for (k = 0; k < (c & 0x0f); k++) {
			o[n++] = 0xa1;		/* "k" */
			o[n++] = 'k';
			o[n++] = (unsigned char)k;
		}
	} else if (c <= 0x9f) {
		*kind = IPC_K_ARRAY;
		for (k = 0; k < (c & 0x0f); k++)
			o[n++] = (unsigned char)k;
	} else if (c <= 0xbf) {
		*kind = IPC_K_STR;
		for (k = 0; k < (c & 0x1f); k++)
			o[n++] = 'a';
	} else if (c >= 0xe0) {
		*kind = IPC_K_INT;
	} else if (c == 0xc0) {
		*kind = IPC_K_NIL;
	} else if (c == 0xc1) {
		return 0;
	} else if (c == 0xc2 || c == 0xc3) {
		*kind = IPC_K_BOOL;
	} else if (c >= 0xc4 && c <= 0xc6) {
		*kind = IPC_K_BIN;
		sz = (size_t)1 << (c - 0xc4);
		memset(o + n, 0, sz - 1);
		n += sz - 1;
		o[n++] = 3;
		memcpy(o + n, "\x01\x02\x03", 3);
		n += 3;
	} else if (c >= 0xc7 && c <= 0xc9) {
		*kind = IPC_K_EXT;
		sz = (size_t)1 << (c - 0xc7);
		memset(o + n, 0, sz - 1);
		n += sz - 1;
		o[n++] = 3;
		o[n++] = 0x05;			/* ext type */
		memcpy(o + n, "\x01\x02\x03", 3);
		n += 3;
	} else if (c == 0xca) {
		*kind = IPC_K_FLOAT;
		memcpy(o + n, f32, 4);
		n += 4;
	} else if (c == 0xcb) {
		*kind = IPC_K_FLOAT;
		memcpy(o + n, f64, 8);
		n += 8;
	} else if (c >= 0xcc && c <= 0xcf) {
		*kind = IPC_K_UINT;
		sz = (size_t)1 << (c - 0xcc);
		memset(o + n, 0xff, sz);
		n += sz;
	} else if (c >= 0xd0 && c <= 0xd3) {
		*kind = IPC_K_INT;
		sz = (size_t)1 << (c - 0xd0);
		memset(o + n, 0xff, sz);	/* -1 */
		n += sz;
	} else if (c >= 0xd4 && c <= 0xd8) {
		*kind = IPC_K_EXT;
		sz = (size_t)1 << (c - 0xd4);
		o[n++] = 0x7f;
		memset(o + n, 0xab, sz);
		n += sz;
	} else if (c >= 0xd9 && c <= 0xdb) {
		*kind = IPC_K_STR;
		sz = (size_t)1 << (c - 0xd9);
		memset(o + n, 0, sz - 1);
		n += sz - 1;
		o[n++] = 3;
		memcpy(o + n, "abc", 3);
		n += 3;
	} else if (c == 0xdc || c == 0xdd) {
		*kind = IPC_K_ARRAY;
		sz = c == 0xdc ? 2 : 4;
		memset(o + n, 0, sz - 1);
		n += sz - 1;
		o[n++] = 2;
		o[n++] = 0xc3;
		o[n++] = 0x90;
	} else {				/* 0xde, 0xdf */
		*kind = IPC_K_MAP;
		sz = c == 0xde ? 2 : 4;
		memset(o + n, 0, sz - 1);
		n += sz - 1;
		o[n++] = 1;
		o[n++] = 0x01;
		o[n++] = 0x80;
	}
	return n;
}

/* Read the one-field body with the getter its kind calls for. */
static int
get_by_kind(struct ipc_reader *r, enum ipc_kind kind, unsigned c)
{
	const char	*s;
	const void	*b;
	size_t		 len;
	uint64_t	 u;
	uint32_t	 n, k;
	int64_t		 i;
	double		 d;
	int		 v;

	switch (kind) {
	case IPC_K_NIL:
		return ipc_get_nil(r);
	case IPC_K_BOOL:
		return ipc_get_bool(r, &v) == 0 && v == (c == 0xc3) ? 0 : -1;
	case IPC_K_UINT:
		if (ipc_get_u64(r, &u) == -1)
			return -1;
		if (c <= 0x7f)
			return u == c ? 0 : -1;
		return u == (UINT64_MAX >> (64 - 8 * (1u << (c - 0xcc)))) ?
		    0 : -1;
	case IPC_K_INT:
		if (ipc_get_i64(r, &i) == -1)
			return -1;
		return i == (c >= 0xe0 ? (int64_t)c - 256 : -1) ? 0 : -1;
	case IPC_K_FLOAT:
		return ipc_get_double(r, &d) == 0 && d == 1.5 ? 0 : -1;
	case IPC_K_STR:
		if (ipc_get_str(r, &s, &len, SIZE_MAX) == -1)
			return -1;
		if (c >= 0xa0 && c <= 0xbf)
			return len == (c & 0x1f) ? 0 : -1;
		return len == 3 && memcmp(s, "abc", 3) == 0 ? 0 : -1;
	case IPC_K_BIN:
		return ipc_get_bin(r, &b, &len, SIZE_MAX) == 0 && len == 3 &&
		    memcmp(b, "\x01\x02\x03", 3) == 0 ? 0 : -1;
	case IPC_K_ARRAY:
		if (ipc_get_array(r, &n, UINT32_MAX) == -1)
			return -1;
		for (k = 0; k < n; k++)
			ipc_skip(r);
		return 0;
	case IPC_K_MAP:
		if (ipc_get_map(r, &n, UINT32_MAX) == -1)
			return -1;
		for (k = 0; k < 2 * n; k++)
			ipc_skip(r);
		return 0;
	case IPC_K_EXT:
	case IPC_K_NONE:
		break;
	}
	return ipc_skip(r);
}

static void
test_formats(void)
{
	struct ipc_reader	 r;
	unsigned char		 o[64], *cp;
	enum ipc_kind		 kind;
	size_t			 n, t;
	unsigned		 c;
	int			 ok, okt;

	printf("format bytes: all 256, peek kind, getter, skip, every "
	    "truncation\n");
	ok = okt = 1;
	for (c = 0; c < 256; c++) {
		o[0] = 0x91;
		n = make_obj(c, o + 1, &kind);
		if (n == 0) {
			cp = dup_exact(o, 2);
			CHECK(ipc_reader_init(&r, cp, 2, 1) == 0);
			CHECK(ipc_peek_kind(&r) == IPC_K_NONE && r.failed);
			CHECK(ipc_reader_init(&r, cp, 2, 1) == 0 &&
			    ipc_skip(&r) == -1);
			CHECK(walk(cp, 2) == -1);
			free(cp);
			continue;
		}
		n++;
		cp = dup_exact(o, n);
		if (ipc_reader_init(&r, cp, n, 1) == -1 ||
		    ipc_peek_kind(&r) != kind || ipc_skip(&r) == -1 ||
		    ipc_end(&r) == -1) {
			fprintf(stderr, "format 0x%02x: skip\n", c);
			ok = 0;
		}
		if (ipc_reader_init(&r, cp, n, 1) == -1 ||
		    get_by_kind(&r, kind, c) == -1 || ipc_end(&r) == -1) {
			fprintf(stderr, "format 0x%02x: get\n", c);
			ok = 0;
		}
		walk_bad = 0;
		if (walk(cp, n) == -1 || walk_bad)
			ok = 0;
		free(cp);
		for (t = 1; t < n; t++) {
			cp = dup_exact(o, t);
			if (ipc_reader_init(&r, cp, t, 1) == 0 &&
			    get_by_kind(&r, kind, c) == 0 &&
			    ipc_end(&r) == 0)
				okt = 0;
			if (ipc_reader_init(&r, cp, t, 1) == 0 &&
			    ipc_skip(&r) == 0 && ipc_end(&r) == 0)
				okt = 0;
			if (walk(cp, t) == 0)
				okt = 0;
			free(cp);
		}
	}
	CHECK(ok);
	CHECK(okt);
}

/* Nesting: IPC_MAX_DEPTH containers skip, one more does not. */
static void
nest(unsigned depth, int map, int empty, int expect)
{
	struct ipc_msg		 m;
	struct ipc_reader	 r;
	unsigned		 k;

	ipc_msg_init(&m, 1, 1, 2);
	for (k = 0; k < depth; k++) {
		if (map) {
			ipc_add_map(&m, k + 1 == depth && empty ? 0 : 1);
			if (k + 1 < depth || !empty)
				ipc_add_u64(&m, k);
		} else
			ipc_add_array(&m, k + 1 == depth && empty ? 0 : 1);
	}
	if (!empty)
		ipc_add_cstr(&m, "leaf");
	ipc_add_u64(&m, 99);
	ipc_msg_finish(&m);
	CHECK(ipc_reader_init(&r, body_of(&m.frame), body_len(&m.frame),
	    2) == 0);
	if (expect == 0) {
		uint64_t	 u;

		CHECK(ipc_skip(&r) == 0 && ipc_get_u64(&r, &u) == 0 &&
		    u == 99 && ipc_end(&r) == 0);
	} else
		CHECK(ipc_skip(&r) == -1 && r.failed && ipc_end(&r) == -1);
	ipc_msg_free(&m);
}

static void
test_depth(void)
{
	printf("skip: %d nested arrays and maps pass, %d fail\n",
	    IPC_MAX_DEPTH, IPC_MAX_DEPTH + 1);
	nest(1, 0, 0, 0);
	nest(IPC_MAX_DEPTH, 0, 0, 0);
	nest(IPC_MAX_DEPTH, 0, 1, 0);
	nest(IPC_MAX_DEPTH, 1, 0, 0);
	nest(IPC_MAX_DEPTH, 1, 1, 0);
	nest(IPC_MAX_DEPTH + 1, 0, 0, -1);
	nest(IPC_MAX_DEPTH + 1, 0, 1, -1);
	nest(IPC_MAX_DEPTH + 1, 1, 0, -1);
	nest(IPC_MAX_DEPTH + 1, 1, 1, -1);
	nest(200, 0, 0, -1);
}

/*
 * Declared sizes far beyond the body: rejected before anything is
 * allocated or read.
 */
static void
test_huge(void)
{
	static const struct {
		const char	*body;
		size_t		 len;
		enum getter	 g;
	} h[] = {
		{ "\x91\xdd\xff\xff\xff\xff", 6, G_ARRAY },
		{ "\x91\xdf\xff\xff\xff\xff", 6, G_MAP },
		{ "\x91\xdb\xff\xff\xff\xff", 6, G_STR },
		{ "\x91\xc6\xff\xff\xff\xff", 6, G_BIN },
		{ "\x91\xc9\xff\xff\xff\xff\x01", 7, G_SKIP },
		{ "\x91\xdc\xff\xff\x00\x00", 6, G_ARRAY },
		{ "\x91\xde\xff\xff\x00\x00", 6, G_MAP },
		{ "\x91\xda\xff\xff\x00\x00", 6, G_STR },
		{ "\x91\xc5\xff\xff\x00\x00", 6, G_BIN },
		{ "\x91\x93\x01\x02", 4, G_ARRAY },	/* 3 in 2 bytes */
		{ "\x91\x82\x01\x02\x03", 5, G_MAP },	/* 2 entries in 3 */
		{ "\x91\xdd\x00\x00\x00\x03\x01\x02", 8, G_ARRAY },
		{ "\x91\xdf\x00\x00\x00\x02\x01\x02\x03", 9, G_MAP },
		{ "\x91\xdb\x00\x00\x00\x03" "ab", 8, G_STR },
		{ "\x91\xd8\x01" "0123456789abcde", 18, G_SKIP },
	};
	struct ipc_reader	 r;
	struct rusage		 ru0, ru1;
	struct mallinfo2	 mi0, mi1;
	unsigned char		*cp[nitems(h)], *top;
	uint32_t		 n;
	size_t			 k;
	int			 ok_get, ok_skip, ok_peek, ok_init;

	printf("huge declared sizes: array32/map32/str32/bin32/ext32 of "
	    "2^32-1 and near misses rejected, nothing allocated\n");
	for (k = 0; k < nitems(h); k++)
		cp[k] = dup_exact(h[k].body, h[k].len);
	top = dup_exact("\xdd\xff\xff\xff\xff", 5);

	getrusage(RUSAGE_SELF, &ru0);
	mi0 = mallinfo2();
	ok_get = ok_skip = ok_peek = ok_init = 1;
	for (k = 0; k < nitems(h); k++) {
		if (ipc_reader_init(&r, cp[k], h[k].len, 1) == -1 ||
		    run_getter(&r, h[k].g) != -1 || !r.failed || r.off != 1)
			ok_get = 0;
		if (ipc_reader_init(&r, cp[k], h[k].len, 1) == -1 ||
		    ipc_skip(&r) != -1 || ipc_end(&r) != -1)
			ok_skip = 0;
		if (ipc_reader_init(&r, cp[k], h[k].len, 1) == -1 ||
		    ipc_peek_kind(&r) != IPC_K_NONE)
			ok_peek = 0;
		if (walk(cp[k], h[k].len) != -1)
			ok_get = 0;
	}
	if (ipc_reader_init(&r, top, 5, UINT32_MAX) != -1 ||
	    ipc_get_array(&r, &n, UINT32_MAX) != -1)
		ok_init = 0;
	mi1 = mallinfo2();
	getrusage(RUSAGE_SELF, &ru1);

	CHECK(ok_get);
	CHECK(ok_skip);
	CHECK(ok_peek);
	CHECK(ok_init);
	CHECK(mi1.uordblks == mi0.uordblks && mi1.hblkhd == mi0.hblkhd);
	CHECK(ru1.ru_maxrss - ru0.ru_maxrss < 1024);	/* KiB */
	for (k = 0; k < nitems(h); k++)
		free(cp[k]);
	free(top);
}

/*
 * Realistic frames, each with a strict parser for its shape.  A parser
 * returns 0 when the whole body is read and every pointer it got lies in
 * the body.
 */
static const unsigned char key_a[] = { 0x02, 0x10, 0x00, 0x7f, 0xff };
static const unsigned char key_b[] = { 0x03, 'a', 'b', 'c', 0x00, 0x01 };

static void
build_commit(struct ipc_msg *m)
{
	unsigned	 w, k;

	/* [ts, prev_ts, catalog, writes, origin] */
	ipc_msg_init(m, 5, 77, 5);
	ipc_add_i64(m, 1700000000123456);
	ipc_add_i64(m, 1700000000123455);
	ipc_add_u64(m, 3);
	ipc_add_array(m, 2);
	for (w = 0; w < 2; w++) {
		ipc_add_array(m, 3);
		ipc_add_i64(m, 10 + w);
		ipc_add_cstr(m, w ? "k57bz0qm3pgn2ec8" : "j9x");
		ipc_add_array(m, 3);
		for (k = 0; k < 3; k++) {
			ipc_add_array(m, 3);
			ipc_add_i64(m, 100 + k);
			if (k == 0 && w == 0)
				ipc_add_nil(m);
			else
				ipc_add_bin(m, key_a, sizeof(key_a));
			ipc_add_bin(m, key_b, sizeof(key_b));
		}
	}
	ipc_add_cstr(m, "gw-1");
	ipc_msg_finish(m);
}

static int
parse_commit(const unsigned char *p, size_t len)
{
	struct ipc_reader	 r;
	const void		*b;
	const char		*s;
	size_t			 l;
	int64_t			 i;
	uint64_t		 u;
	uint32_t		 nw, nk, n3, w, k;

	if (ipc_reader_init(&r, p, len, 5) == -1)
		return -1;
	ipc_get_i64(&r, &i);
	ipc_get_i64(&r, &i);
	ipc_get_u64(&r, &u);
	if (ipc_get_array(&r, &nw, 1000) == -1)
		return -1;
	for (w = 0; w < nw; w++) {
		if (ipc_get_array(&r, &n3, 3) == -1 || n3 != 3)
			return -1;
		ipc_get_i64(&r, &i);
		if (ipc_get_str(&r, &s, &l, 128) == 0 && !in_range(s, l, p, len))
			abort();
		if (ipc_get_array(&r, &nk, 64) == -1)
			return -1;
		for (k = 0; k < nk; k++) {
			if (ipc_get_array(&r, &n3, 3) == -1 || n3 != 3)
				return -1;
			ipc_get_i64(&r, &i);
			if (ipc_peek_kind(&r) == IPC_K_NIL)
				ipc_get_nil(&r);
			else if (ipc_get_bin(&r, &b, &l, 1024) == 0 &&
			    !in_range(b, l, p, len))
				abort();
			if (ipc_get_bin(&r, &b, &l, 1024) == 0 &&
			    !in_range(b, l, p, len))
				abort();
		}
	}
	if (ipc_get_str(&r, &s, &l, 128) == 0 && !in_range(s, l, p, len))
		abort();
	return ipc_end(&r);
}

static void
build_mutate(struct ipc_msg *m)
{
	/* [session, request id, udf, args] */
	ipc_msg_init(m, 3, 9, 4);
	ipc_add_cstr(m, "sess-0123456789abcdef0123456789abcdef");
	ipc_add_i64(m, -40000);
	ipc_add_cstr(m, "db/insert");
	ipc_add_cstr(m, "{\"table\":\"messages\",\"doc\":{\"body\":\"hi\"}}");
	ipc_msg_finish(m);
}

static int
parse_mutate(const unsigned char *p, size_t len)
{
	struct ipc_reader	 r;
	const char		*s;
	size_t			 l;
	int64_t			 i;
	int			 k;

	if (ipc_reader_init(&r, p, len, 4) == -1)
		return -1;
	if (ipc_get_str(&r, &s, &l, 128) == 0 && !in_range(s, l, p, len))
		abort();
	if (ipc_peek_kind(&r) == IPC_K_STR || ipc_peek_kind(&r) == IPC_K_NIL) {
		if (ipc_get_str_or_nil(&r, &s, &l, 128) == 0 && s != NULL &&
		    !in_range(s, l, p, len))
			abort();
	} else
		ipc_get_i64(&r, &i);
	for (k = 0; k < 2; k++)
		if (ipc_get_str(&r, &s, &l, 1 << 20) == 0 &&
		    !in_range(s, l, p, len))
			abort();
	return ipc_end(&r);
}

static void
build_misc(struct ipc_msg *m)
{
	unsigned char	 big[300];

	/* [map, double, nil, i64, bin] */
	fill(big, sizeof(big), 3);
	ipc_msg_init(m, 6, 0xffffffff, 5);
	ipc_add_map(m, 3);
	ipc_add_cstr(m, "conns");
	ipc_add_u64(m, 65536);
	ipc_add_cstr(m, "lag");
	ipc_add_double(m, 0.25);
	ipc_add_cstr(m, "ids");
	ipc_add_array(m, 2);
	ipc_add_u64(m, UINT32_MAX);
	ipc_add_i64(m, INT64_MIN);
	ipc_add_double(m, -1e-300);
	ipc_add_nil(m);
	ipc_add_i64(m, -33);
	ipc_add_bin(m, big, sizeof(big));
	ipc_msg_finish(m);
}

static int
parse_misc(const unsigned char *p, size_t len)
{
	struct ipc_reader	 r;
	const char		*s;
	const void		*b;
	size_t			 l;
	uint32_t		 n, k;
	double			 d;
	int64_t			 i;

	if (ipc_reader_init(&r, p, len, 5) == -1)
		return -1;
	if (ipc_get_map(&r, &n, 16) == -1)
		return -1;
	for (k = 0; k < n; k++) {
		if (ipc_get_str(&r, &s, &l, 64) == 0 && !in_range(s, l, p, len))
			abort();
		ipc_skip(&r);
	}
	ipc_get_double(&r, &d);
	ipc_get_nil(&r);
	ipc_get_i64(&r, &i);
	if (ipc_get_bin(&r, &b, &l, 4096) == 0 && !in_range(b, l, p, len))
		abort();
	return ipc_end(&r);
}

static void
build_hello(struct ipc_msg *m)
{
	ipc_msg_init(m, 1, 1, 3);
	ipc_add_u64(m, 1);
	ipc_add_cstr(m, "gateway-7878");
	ipc_add_u64(m, 4242);
	ipc_msg_finish(m);
}

static int
parse_hello(const unsigned char *p, size_t len)
{
	struct ipc_reader	 r;
	const char		*s;
	size_t			 l;
	uint32_t		 v;
	uint64_t		 pid;

	if (ipc_reader_init(&r, p, len, 3) == -1)
		return -1;
	ipc_get_u32(&r, &v);
	if (ipc_get_str(&r, &s, &l, 128) == 0 && !in_range(s, l, p, len))
		abort();
	ipc_get_u64(&r, &pid);
	return ipc_end(&r);
}

static const struct {
	const char	*name;
	void		(*build)(struct ipc_msg *);
	int		(*parse)(const unsigned char *, size_t);
} frames[] = {
	{ "commit", build_commit, parse_commit },
	{ "mutate", build_mutate, parse_mutate },
	{ "misc", build_misc, parse_misc },
	{ "hello", build_hello, parse_hello },
};

static const int	 corrupt_vals[] = { 0x00, 0xff, 0xc0, 0xc1, 0xdc,
    0xdd, 0xde, 0xdf, 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb,
    -1 /* x ^ 0x01 */, -2 /* x ^ 0x80 */ };

static unsigned char
corrupt_val(unsigned char x, size_t k)
{
	if (corrupt_vals[k] == -1)
		return x ^ 0x01;
	if (corrupt_vals[k] == -2)
		return x ^ 0x80;
	return (unsigned char)corrupt_vals[k];
}

static void
test_damage(void)
{
	struct ipc_msg		 m;
	struct ipc_hdr		 h;
	const struct buf	*f;
	struct mallinfo2	 mi0, mi1;
	unsigned char		*cp;
	size_t			 fi, t, k, v, len;
	long			 rc;
	unsigned long		 tried = 0, parsed = 0;
	int			 ok_trunc, ok_ftrunc, ok_corrupt, ok_whole;

	printf("damage: every truncation and %zu single-byte corruptions "
	    "of every byte of %zu realistic frames\n", nitems(corrupt_vals),
	    nitems(frames));
	for (fi = 0; fi < nitems(frames); fi++) {
		frames[fi].build(&m);
		f = &m.frame;
		len = body_len(f);
		ok_trunc = ok_ftrunc = ok_corrupt = ok_whole = 1;

		/* The whole frame parses, and allocates nothing. */
		cp = dup_exact(f->data, f->len);
		mi0 = mallinfo2();
		rc = ipc_frame_peek(cp, f->len, IPC_MAX_FRAME, &h);
		if (rc != (long)f->len ||
		    frames[fi].parse(cp + IPC_HDR_LEN, len) != 0)
			ok_whole = 0;
		mi1 = mallinfo2();
		if (mi1.uordblks != mi0.uordblks)
			ok_whole = 0;
		walk_bad = 0;
		if (walk(cp + IPC_HDR_LEN, len) != 0 || walk_bad)
			ok_whole = 0;
		free(cp);

		/* Every truncation of the body. */
		for (t = 0; t < len; t++) {
			cp = dup_exact(body_of(f), t);
			if (frames[fi].parse(cp, t) != -1 || walk(cp, t) != -1)
				ok_trunc = 0;
			free(cp);
		}
		/* Every truncation of the frame. */
		for (t = 0; t < f->len; t++) {
			cp = dup_exact(f->data, t);
			if (ipc_frame_peek(cp, t, IPC_MAX_FRAME, &h) != 0)
				ok_ftrunc = 0;
			free(cp);
		}
		/* Every byte of the frame replaced by each value. */
		walk_bad = 0;
		for (t = 0; t < f->len; t++) {
			for (v = 0; v < nitems(corrupt_vals); v++) {
				cp = dup_exact(f->data, f->len);
				cp[t] = corrupt_val(cp[t], v);
				tried++;
				rc = ipc_frame_peek(cp, f->len, IPC_MAX_FRAME,
				    &h);
				if (rc > (long)f->len || (t < IPC_HDR_LEN &&
				    rc > 0 && (long)h.len != rc) ||
				    (t >= IPC_HDR_LEN && rc != (long)f->len))
					ok_corrupt = 0;
				if (rc >= IPC_HDR_LEN) {
					if (frames[fi].parse(cp + IPC_HDR_LEN,
					    (size_t)rc - IPC_HDR_LEN) == 0)
						parsed++;
					walk(cp + IPC_HDR_LEN,
					    (size_t)rc - IPC_HDR_LEN);
				}
				free(cp);
				/* The body alone, in an exact buffer. */
				if (t >= IPC_HDR_LEN) {
					cp = dup_exact(body_of(f), len);
					k = t - IPC_HDR_LEN;
					cp[k] = corrupt_val(cp[k], v);
					frames[fi].parse(cp, len);
					walk(cp, len);
					free(cp);
				}
			}
		}
		if (walk_bad)
			ok_corrupt = 0;
		if (!(ok_whole && ok_trunc && ok_ftrunc && ok_corrupt))
			fprintf(stderr, "frame %s\n", frames[fi].name);
		CHECK(ok_whole);
		CHECK(ok_trunc);
		CHECK(ok_ftrunc);
		CHECK(ok_corrupt);
		ipc_msg_free(&m);
	}
	printf("  %lu corrupted frames tried, %lu still parsed as their "
	    "shape\n", tried, parsed);
	CHECK(parsed < tried);
}

int
main(void)
{
	test_peek();
	test_encodings();
	test_integers();
	test_roundtrip();
	test_mismatch();
	test_init();
	test_formats();
	test_depth();
	test_huge();
	test_damage();
	printf("%d checks, %d failed\n", nchecks, nfailed);
	return nfailed == 0 ? 0 : 1;
}
