/*
 * The page cursor codec: a versioned binary form with a check, as
 * unpadded base64url.  The decoder takes untrusted text and fails closed:
 * every length is checked before it is used, and nothing outside the
 * given string is read.
 */
#include <string.h>

#include "cursor.h"
#include "json.h"
#include "store.h"

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
put_be(unsigned char *p, uint64_t v, int n)
{
	int	 i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t
get_be(const unsigned char *p, int n)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t
check_of(const unsigned char *p, size_t len)
{
	return (uint32_t)json_hash(p, len);
}

void
cursor_encode(struct buf *out, const struct cursor *c)
{
	unsigned char	 raw[CURSOR_MAX_BYTES];
	size_t		 n, i, keylen = c->end ? 0 : c->keylen;
	uint32_t	 v;

	raw[0] = CURSOR_VERSION;
	raw[1] = (c->desc ? CURSOR_F_DESC : 0) | (c->end ? CURSOR_F_END : 0);
	put_be(raw + 2, (uint64_t)c->table_id, 8);
	put_be(raw + 10, (uint64_t)c->index_id, 8);
	put_be(raw + 18, keylen, 2);
	memcpy(raw + CURSOR_HEAD_BYTES, c->key, keylen);
	n = CURSOR_HEAD_BYTES + keylen;
	put_be(raw + n, check_of(raw, n), CURSOR_CHECK_BYTES);
	n += CURSOR_CHECK_BYTES;
	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 |
		    raw[i + 2];
		buf_addc(out, b64url[v >> 18]);
		buf_addc(out, b64url[(v >> 12) & 63]);
		buf_addc(out, b64url[(v >> 6) & 63]);
		buf_addc(out, b64url[v & 63]);
	}
	if (n - i == 1) {
		v = (uint32_t)raw[i] << 16;
		buf_addc(out, b64url[v >> 18]);
		buf_addc(out, b64url[(v >> 12) & 63]);
	} else if (n - i == 2) {
		v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8;
		buf_addc(out, b64url[v >> 18]);
		buf_addc(out, b64url[(v >> 12) & 63]);
		buf_addc(out, b64url[(v >> 6) & 63]);
	}
}

static int
b64val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/*
 * Strict unpadded base64url into raw (at most cap bytes): every
 * character in the alphabet, no length that leaves a lone character,
 * and the unused low bits of the last character zero, so that each byte
 * string has exactly one text.  Returns the byte count, or -1.
 */
static int
b64_decode(const char *s, size_t len, unsigned char *raw, size_t cap)
{
	size_t		 i, n = 0;
	uint32_t	 acc = 0;
	int		 bits = 0, v;

	if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
		return -1;
	for (i = 0; i < len; i++) {
		if ((v = b64val(s[i])) == -1)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[n++] = (acc >> bits) & 0xff;
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1;
	return (int)n;
}

int
cursor_decode(const char *s, size_t len, struct cursor *c)
{
	unsigned char	 raw[CURSOR_MAX_BYTES];
	size_t		 keylen;
	int		 n;

	if (len > CURSOR_MAX_CHARS ||
	    (n = b64_decode(s, len, raw, sizeof(raw))) == -1 ||
	    (size_t)n < CURSOR_HEAD_BYTES + CURSOR_CHECK_BYTES)
		return -1;
	n -= CURSOR_CHECK_BYTES;
	if (get_be(raw + n, CURSOR_CHECK_BYTES) != check_of(raw, (size_t)n))
		return -1;
	if (raw[0] != CURSOR_VERSION ||
	    (raw[1] & ~(CURSOR_F_DESC | CURSOR_F_END)) != 0)
		return -1;
	keylen = (size_t)get_be(raw + 18, 2);
	if (keylen != (size_t)n - CURSOR_HEAD_BYTES || keylen > KEY_MAX_BYTES)
		return -1;
	c->desc = (raw[1] & CURSOR_F_DESC) != 0;
	c->end = (raw[1] & CURSOR_F_END) != 0;
	if (c->end != (keylen == 0))
		return -1;
	c->table_id = (int64_t)get_be(raw + 2, 8);
	c->index_id = (int64_t)get_be(raw + 10, 8);
	if (c->table_id < 0 || c->index_id < 0 ||
	    (c->end && (c->table_id == 0) != (c->index_id == 0)) ||
	    (!c->end && (c->table_id == 0 || c->index_id == 0)))
		return -1;
	memcpy(c->key, raw + CURSOR_HEAD_BYTES, keylen);
	c->keylen = keylen;
	return 0;
}

int
cursor_check_key(const unsigned char *key, size_t len, size_t nfields)
{
	char	 id[STORE_ID_LEN + 1];
	size_t	 i, off = 0, used;

	if (nfields == 0 || len > KEY_MAX_BYTES)
		return -1;
	for (i = 0; i < nfields; i++) {
		if (off >= len ||
		    key_skip_value(key + off, len - off, &used) == -1)
			return -1;
		off += used;
	}
	if (off != len || key_doc_id(key, len, STORE_ID_LEN, id) == -1 ||
	    !store_valid_id(id))
		return -1;
	return 0;
}
