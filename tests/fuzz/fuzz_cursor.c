/*
 * Fuzz the page cursor decoder with arbitrary text.  Whatever
 * cursor_decode accepts must encode back to exactly the input (one text
 * per cursor), hold a key no longer than KEY_MAX_BYTES, and a key
 * position must have a key; cursor_check_key, given the key and any
 * field count, must either refuse it or find that many values using
 * every byte and ending in a document id.  Any disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "fuzz.h"
#include "store.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cursor	 c;
	struct buf		 b;
	size_t			 nf, i, off, used;

	if (cursor_decode((const char *)data, size, &c) == -1)
		return 0;
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
	return 0;
}
