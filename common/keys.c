/*
 * Order-preserving index key encoding (the format is described in keys.h):
 * building the key of a document for an index, the successor of a key
 * prefix for range scans, and a fail-closed decoder for keys read back from
 * the database or received from a peer.  The decoder accepts exactly the
 * byte strings the encoder can produce: "missing" only as a top-level
 * value, numbers other than -0 and NaN, booleans 0x00 and 0x01, the one
 * escape 0x00 0xFF, and nesting up to KEY_MAX_DEPTH, so whatever decodes
 * re-encodes to the same bytes.  key_value_compare is the order the
 * encoding must agree with, computed on the values themselves.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "keys.h"
#include "util.h"

#define KEY_END		0x00	/* ends an array, an object, a string */
#define KEY_FIELD	0x01	/* starts an object field */
#define KEY_ESC_NUL	0xFF	/* after 0x00 in a string: a NUL byte */
#define KEY_NUM_BYTES	8	/* payload of a number */
#define KEY_SIGN_BIT	((uint64_t)1 << 63)

_Static_assert(sizeof(double) == sizeof(uint64_t), "double is not 64-bit");

/* A decoder's position in the bytes it reads. */
struct keyrd {
	const unsigned char	*p;	/* the bytes */
	size_t			 len;	/* how many */
	size_t			 off;	/* next byte to read */
	int			 build;	/* build cJSON items; refuse NUL */
	struct buf		 str;	/* the string last read, if build */
};

static const unsigned char key_str_end[2] = { KEY_END, KEY_END };
static const unsigned char key_str_nul[2] = { KEY_END, KEY_ESC_NUL };

static void	 append_payload(struct buf *, const char *, size_t);
static int	 encode_value(struct buf *, const cJSON *, int, size_t);
static int	 read_string(struct keyrd *);
static int	 read_number(struct keyrd *, double *);
static int	 read_value(struct keyrd *, int, cJSON **);
static int	 type_rank(const cJSON *);
static int	 string_compare(const char *, const char *);

/* A string payload: the bytes with 0x00 escaped, then the terminator. */
static void
append_payload(struct buf *out, const char *s, size_t len)
{
	const char	*nul;
	size_t		 n;

	while (len > 0 && (nul = memchr(s, '\0', len)) != NULL) {
		n = (size_t)(nul - s);
		buf_add(out, s, n);
		buf_add(out, key_str_nul, sizeof(key_str_nul));
		s += n + 1;
		len -= n + 1;
	}
	buf_add(out, s, len);
	buf_add(out, key_str_end, sizeof(key_str_end));
}

int
key_doc_id(const void *key, size_t len, size_t idlen, char *out)
{
	const unsigned char	*p = key;
	size_t			 at;

	if (len < 1 + idlen + sizeof(key_str_end))
		return -1;
	at = len - sizeof(key_str_end) - idlen;
	if (p[at - 1] != KEY_TAG_STRING || memcmp(p + len -
	    sizeof(key_str_end), key_str_end, sizeof(key_str_end)) != 0 ||
	    memchr(p + at, KEY_END, idlen) != NULL)
		return -1;
	memcpy(out, p + at, idlen);
	out[idlen] = '\0';
	return 0;
}

void
key_append_string(struct buf *out, const char *s, size_t len)
{
	buf_reserve(out, 1 + len + sizeof(key_str_end));
	buf_addc(out, KEY_TAG_STRING);
	append_payload(out, s, len);
}

/*
 * Positive numbers get the sign bit set, so they sort above negatives;
 * negatives get every bit flipped, so a larger magnitude sorts lower.  The
 * caller must not pass a NaN, which has no place in the order.
 */
void
key_append_number(struct buf *out, double d)
{
	unsigned char	 b[1 + KEY_NUM_BYTES];
	uint64_t	 u;
	int		 i;

	assert(!isnan(d));
	if (d == 0)
		d = 0;		/* -0 is +0 */
	memcpy(&u, &d, sizeof(u));
	if (u & KEY_SIGN_BIT)
		u = ~u;
	else
		u |= KEY_SIGN_BIT;
	b[0] = KEY_TAG_NUMBER;
	for (i = KEY_NUM_BYTES; i > 0; i--) {
		b[i] = (unsigned char)(u & 0xff);
		u >>= 8;
	}
	buf_add(out, b, sizeof(b));
}

/*
 * Append the encoding of v, which sits inside level containers, and fail
 * once out holds more than limit bytes.  Leaves a partial encoding behind
 * on failure; the callers cut it off.
 */
static int
encode_value(struct buf *out, const cJSON *v, int level, size_t limit)
{
	const cJSON	*c;

	if (v == NULL)
		buf_addc(out, KEY_TAG_MISSING);
	else if (cJSON_IsNull(v))
		buf_addc(out, KEY_TAG_NULL);
	else if (cJSON_IsNumber(v)) {
		if (isnan(v->valuedouble))
			return -1;
		key_append_number(out, v->valuedouble);
	} else if (cJSON_IsBool(v)) {
		buf_addc(out, KEY_TAG_BOOLEAN);
		buf_addc(out, cJSON_IsTrue(v) ? 1 : 0);
	} else if (cJSON_IsString(v)) {
		if (v->valuestring == NULL)
			return -1;
		key_append_string(out, v->valuestring, strlen(v->valuestring));
	} else if (cJSON_IsArray(v)) {
		if (level >= KEY_MAX_DEPTH)
			return -1;
		buf_addc(out, KEY_TAG_ARRAY);
		for (c = v->child; c != NULL; c = c->next)
			if (encode_value(out, c, level + 1, limit) == -1)
				return -1;
		buf_addc(out, KEY_END);
	} else if (cJSON_IsObject(v)) {
		if (level >= KEY_MAX_DEPTH)
			return -1;
		buf_addc(out, KEY_TAG_OBJECT);
		for (c = v->child; c != NULL; c = c->next) {
			if (c->string == NULL)
				return -1;
			buf_addc(out, KEY_FIELD);
			append_payload(out, c->string, strlen(c->string));
			if (encode_value(out, c, level + 1, limit) == -1)
				return -1;
		}
		buf_addc(out, KEY_END);
	} else
		return -1;	/* cJSON_Invalid, cJSON_Raw */
	if (out->len > limit)
		return -1;
	return 0;
}

int
key_append_value(struct buf *out, const cJSON *v)
{
	size_t	 start = out->len;

	if (encode_value(out, v, 0, SIZE_MAX) == -1) {
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}

/*
 * A field the document lacks is missing; with duplicate names the first
 * wins, as everywhere cJSON looks a name up.  On failure out is left
 * empty.
 */
int
key_encode_doc(struct buf *out, const cJSON *doc, char *const *fields,
    size_t nfields, const char *doc_id)
{
	const cJSON	*v;
	size_t		 i;

	buf_reset(out);
	if (!cJSON_IsObject(doc))
		goto fail;
	for (i = 0; i < nfields; i++) {
		v = cJSON_GetObjectItemCaseSensitive(doc, fields[i]);
		if (encode_value(out, v, 0, KEY_MAX_BYTES) == -1)
			goto fail;
	}
	/* An index whose last field is _id ends in the id already. */
	if (nfields == 0 || strcmp(fields[nfields - 1], "_id") != 0)
		key_append_string(out, doc_id, strlen(doc_id));
	if (out->len > KEY_MAX_BYTES)
		goto fail;
	return 0;

fail:
	buf_reset(out);
	return -1;
}

/*
 * A trailing 0xFF cannot be raised: drop those, then add one to the last
 * byte left.
 */
int
key_prefix_successor(struct buf *out)
{
	unsigned char	*p = (unsigned char *)out->data;
	size_t		 n = out->len;

	while (n > 0 && p[n - 1] == 0xff)
		n--;
	if (n == 0)
		return -1;
	p[n - 1]++;
	out->len = n;
	out->data[n] = '\0';
	return 0;
}

/*
 * Read a string payload up to and including its terminator.  When
 * building, the bytes go to rd->str and a NUL byte is refused.
 */
static int
read_string(struct keyrd *rd)
{
	const unsigned char	*nul;
	size_t			 n;

	if (rd->build)
		buf_reset(&rd->str);
	for (;;) {
		nul = memchr(rd->p + rd->off, KEY_END, rd->len - rd->off);
		if (nul == NULL)
			return -1;
		n = (size_t)(nul - (rd->p + rd->off));
		if (rd->build)
			buf_add(&rd->str, rd->p + rd->off, n);
		rd->off += n + 1;
		if (rd->off == rd->len)
			return -1;
		if (rd->p[rd->off] == KEY_END) {
			rd->off++;
			return 0;
		}
		if (rd->p[rd->off] != KEY_ESC_NUL || rd->build)
			return -1;
		rd->off++;
	}
}

static int
read_number(struct keyrd *rd, double *dp)
{
	uint64_t	 u = 0;
	double		 d;
	int		 i;

	if (rd->len - rd->off < KEY_NUM_BYTES)
		return -1;
	for (i = 0; i < KEY_NUM_BYTES; i++)
		u = u << 8 | rd->p[rd->off + i];
	rd->off += KEY_NUM_BYTES;
	if (u & KEY_SIGN_BIT)
		u &= ~KEY_SIGN_BIT;
	else
		u = ~u;
	memcpy(&d, &u, sizeof(d));
	if (isnan(d) || (d == 0 && signbit(d)))
		return -1;
	*dp = d;
	return 0;
}

/*
 * Read one value that sits inside level containers.  When rd->build is
 * set the value is returned in *itemp, otherwise itemp is NULL and the
 * bytes are only checked.
 */
static int
read_value(struct keyrd *rd, int level, cJSON **itemp)
{
	cJSON		*item = NULL, *child = NULL;
	char		*name = NULL;
	double		 d;
	unsigned char	 tag, c;

	if (rd->off == rd->len)
		goto fail;
	tag = rd->p[rd->off++];
	switch (tag) {
	case KEY_TAG_MISSING:
		if (level > 0)
			goto fail;	/* the encoder never nests it */
		if (rd->build && (item = cJSON_CreateRaw("undefined")) == NULL)
			goto fail;
		break;
	case KEY_TAG_NULL:
		if (rd->build && (item = cJSON_CreateNull()) == NULL)
			goto fail;
		break;
	case KEY_TAG_NUMBER:
		if (read_number(rd, &d) == -1)
			goto fail;
		if (rd->build && (item = cJSON_CreateNumber(d)) == NULL)
			goto fail;
		break;
	case KEY_TAG_BOOLEAN:
		if (rd->off == rd->len || rd->p[rd->off] > 1)
			goto fail;
		c = rd->p[rd->off++];
		if (rd->build && (item = cJSON_CreateBool(c)) == NULL)
			goto fail;
		break;
	case KEY_TAG_STRING:
		if (read_string(rd) == -1)
			goto fail;
		if (rd->build && (item = cJSON_CreateString(
		    rd->str.len > 0 ? rd->str.data : "")) == NULL)
			goto fail;
		break;
	case KEY_TAG_ARRAY:
		if (level >= KEY_MAX_DEPTH)
			goto fail;
		if (rd->build && (item = cJSON_CreateArray()) == NULL)
			goto fail;
		for (;;) {
			if (rd->off == rd->len)
				goto fail;
			if (rd->p[rd->off] == KEY_END) {
				rd->off++;
				break;
			}
			if (read_value(rd, level + 1,
			    rd->build ? &child : NULL) == -1)
				goto fail;
			if (rd->build) {
				if (!cJSON_AddItemToArray(item, child))
					goto fail;
				child = NULL;
			}
		}
		break;
	case KEY_TAG_OBJECT:
		if (level >= KEY_MAX_DEPTH)
			goto fail;
		if (rd->build && (item = cJSON_CreateObject()) == NULL)
			goto fail;
		for (;;) {
			if (rd->off == rd->len)
				goto fail;
			c = rd->p[rd->off++];
			if (c == KEY_END)
				break;
			if (c != KEY_FIELD || read_string(rd) == -1)
				goto fail;
			if (rd->build)
				name = xstrndup(rd->str.len > 0 ?
				    rd->str.data : "", rd->str.len);
			if (read_value(rd, level + 1,
			    rd->build ? &child : NULL) == -1)
				goto fail;
			if (rd->build) {
				if (!cJSON_AddItemToObject(item, name, child))
					goto fail;
				child = NULL;
				free(name);
				name = NULL;
			}
		}
		break;
	default:
		goto fail;
	}
	if (itemp != NULL)
		*itemp = item;
	return 0;

fail:
	free(name);
	cJSON_Delete(child);
	cJSON_Delete(item);
	return -1;
}

cJSON *
key_decode_value(const unsigned char *p, size_t len, size_t *used)
{
	struct keyrd	 rd = { p, len, 0, 1, { NULL, 0, 0 } };
	cJSON		*item = NULL;

	if (read_value(&rd, 0, &item) == -1)
		goto fail;
	buf_free(&rd.str);
	*used = rd.off;
	return item;

fail:
	buf_free(&rd.str);
	return NULL;
}

int
key_skip_value(const unsigned char *p, size_t len, size_t *used)
{
	struct keyrd	 rd = { p, len, 0, 0, { NULL, 0, 0 } };

	if (read_value(&rd, 0, NULL) == -1)
		return -1;
	*used = rd.off;
	return 0;
}

cJSON *
key_decode(const unsigned char *p, size_t len)
{
	struct keyrd	 rd = { p, len, 0, 1, { NULL, 0, 0 } };
	cJSON		*arr, *item = NULL;

	if ((arr = cJSON_CreateArray()) == NULL)
		goto fail;
	while (rd.off < rd.len) {
		if (read_value(&rd, 0, &item) == -1)
			goto fail;
		if (!cJSON_AddItemToArray(arr, item))
			goto fail;
		item = NULL;
	}
	buf_free(&rd.str);
	return arr;

fail:
	buf_free(&rd.str);
	cJSON_Delete(item);
	cJSON_Delete(arr);
	return NULL;
}

/*
 * The type order, as the tag values.  Items that are not JSON values
 * (cJSON_Raw, cJSON_Invalid) rank as missing, which is how
 * key_decode_value returns missing.
 */
static int
type_rank(const cJSON *v)
{
	if (v == NULL)
		return KEY_TAG_MISSING;
	if (cJSON_IsNull(v))
		return KEY_TAG_NULL;
	if (cJSON_IsNumber(v))
		return KEY_TAG_NUMBER;
	if (cJSON_IsBool(v))
		return KEY_TAG_BOOLEAN;
	if (cJSON_IsString(v))
		return KEY_TAG_STRING;
	if (cJSON_IsArray(v))
		return KEY_TAG_ARRAY;
	if (cJSON_IsObject(v))
		return KEY_TAG_OBJECT;
	return KEY_TAG_MISSING;
}

static int
string_compare(const char *a, const char *b)
{
	if (a == NULL)
		a = "";
	if (b == NULL)
		b = "";
	return bytecmp(a, strlen(a), b, strlen(b));
}

int
key_value_compare(const cJSON *a, const cJSON *b)
{
	const cJSON	*ca, *cb;
	int		 ra, rb, r;

	ra = type_rank(a);
	rb = type_rank(b);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	switch (ra) {
	case KEY_TAG_NUMBER:
		if (a->valuedouble < b->valuedouble)
			return -1;
		return a->valuedouble > b->valuedouble;
	case KEY_TAG_BOOLEAN:
		return cJSON_IsTrue(a) - cJSON_IsTrue(b);
	case KEY_TAG_STRING:
		return string_compare(a->valuestring, b->valuestring);
	case KEY_TAG_ARRAY:
	case KEY_TAG_OBJECT:
		for (ca = a->child, cb = b->child; ca != NULL && cb != NULL;
		    ca = ca->next, cb = cb->next) {
			if (ra == KEY_TAG_OBJECT &&
			    (r = string_compare(ca->string, cb->string)) != 0)
				return r;
			if ((r = key_value_compare(ca, cb)) != 0)
				return r;
		}
		if (ca == NULL)
			return cb == NULL ? 0 : -1;
		return 1;
	default:
		return 0;	/* missing, null */
	}
}
