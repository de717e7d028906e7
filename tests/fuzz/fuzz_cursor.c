/*
 * Fuzz the page cursor decoder with arbitrary text, and with arbitrary
 * bytes given a valid check and base64url (so that the fields behind the
 * check are reached too).  Whatever cursor_decode accepts must encode
 * back to exactly the text decoded (one text per cursor), hold a key no
 * longer than KEY_MAX_BYTES, and a key position must have a key;
 * cursor_check_key, given the key and any field count, must either refuse
 * it or find that many values using every byte.  Any disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "fuzz.h"
#include "json.h"
#include "store.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 check_text(const char *, size_t);

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The bytes with their check appended, as unpadded base64url. */
static void
check_body(const uint8_t *data, size_t size)
{
	unsigned char	 raw[CURSOR_MAX_BYTES + 1];
	struct buf	 t;
	uint32_t	 h, v;
	size_t		 n, i;

	if (size > CURSOR_MAX_BYTES - CURSOR_CHECK_BYTES + 1)
		return;
	memcpy(raw, data, size);
	h = (uint32_t)json_hash(data, size);
	for (i = 0; i < CURSOR_CHECK_BYTES; i++)
		raw[size + i] = (h >> (8 * (CURSOR_CHECK_BYTES - 1 - i))) & 0xff;
	n = size + CURSOR_CHECK_BYTES;
	buf_init(&t);
	for (i = 0; i < n; i += 3) {
		v = (uint32_t)raw[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)raw[i + 1] << 8;
		if (i + 2 < n)
			v |= raw[i + 2];
		buf_addc(&t, b64url[v >> 18]);
		buf_addc(&t, b64url[(v >> 12) & 63]);
		if (i + 1 < n)
			buf_addc(&t, b64url[(v >> 6) & 63]);
		if (i + 2 < n)
			buf_addc(&t, b64url[v & 63]);
	}
	check_text(t.data, t.len);
	buf_free(&t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_text((const char *)data, size);
	check_body(data, size);
	return 0;
}

static void
check_text(const char *data, size_t size)
{
	static struct cursor	 c;
	struct buf		 b;
	size_t			 nf, i, off, used;

	if (cursor_decode(data, size, &c) == -1)
		return;
	need(c.keylen <= KEY_MAX_BYTES);
	need(c.end == (c.keylen == 0));
	buf_init(&b);
	cursor_encode(&b, &c);
	need(b.len == size && memcmp(b.data, data, size) == 0);
	buf_free(&b);
	for (nf = 0; nf <= STORE_MAX_INDEX_FIELDS + 2; nf++) {
		if (cursor_check_key(c.key, c.keylen, nf) == -1)
			continue;
		need(nf > 0);
		for (i = 0, off = 0; i < nf; i++) {
			need(key_skip_value(c.key + off, c.keylen - off,
			    &used) == 0);
			off += used;
		}
		need(off == c.keylen);
	}
}
