/*
 * Fuzz the index key decoder with arbitrary bytes.  Whatever key_decode
 * accepts must re-encode to exactly the input; key_decode_value and
 * key_skip_value must agree on every value they both accept; and the
 * first two values of the input, when they decode, must compare as their
 * bytes do; key_doc_id must find a key's trailing string.  Any
 * disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "keys.h"
#include "util.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
sign(int r)
{
	return r < 0 ? -1 : r > 0;
}

/* Bytes as unsigned, a shorter prefix first. */
static int
bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int	 r;

	r = memcmp(a, b, alen < blen ? alen : blen);
	if (r != 0)
		return sign(r);
	return alen < blen ? -1 : alen > blen;
}

/* Encode a decoded value; missing comes back from the decoder raw. */
static void
encode_into(struct buf *b, const cJSON *v)
{
	if (key_append_value(b, cJSON_IsRaw(v) ? NULL : v) == -1)
		abort();
}

#define FUZZ_ID_MAX	64	/* longest id asked of key_doc_id */

/*
 * key_doc_id on a key that decodes: when the last value is a string, it
 * finds exactly that string at its length; at any other length, what it
 * returns must be the bytes before the terminator.
 */
static void
check_doc_id(const uint8_t *data, size_t size, const cJSON *last)
{
	char	 out[FUZZ_ID_MAX + 1];
	size_t	 n, idlen;

	idlen = size > 0 ? data[0] % (FUZZ_ID_MAX + 1) : 0;
	if (key_doc_id(data, size, idlen, out) == 0 && (strlen(out) != idlen ||
	    memcmp(out, data + size - 2 - idlen, idlen) != 0))
		abort();
	if (!cJSON_IsString(last) || (n = strlen(last->valuestring)) >
	    FUZZ_ID_MAX)
		return;
	if (key_doc_id(data, size, n, out) != 0 ||
	    strcmp(out, last->valuestring) != 0)
		abort();
}

/* The whole input as a key. */
static void
check_key(const uint8_t *data, size_t size)
{
	struct buf	 b;
	const cJSON	*c;
	cJSON		*arr;

	if ((arr = key_decode(data, size)) == NULL)
		return;
	buf_init(&b);
	cJSON_ArrayForEach(c, arr)
		encode_into(&b, c);
	if (b.len != size || (size > 0 && memcmp(b.data, data, size) != 0))
		abort();
	buf_free(&b);
	check_doc_id(data, size, cJSON_GetArrayItem(arr,
	    cJSON_GetArraySize(arr) - 1));
	cJSON_Delete(arr);
}

/*
 * Walk the input value by value with key_skip_value, decoding each value
 * too.  Returns the number of values walked; the first two are kept.
 */
static int
walk(const uint8_t *data, size_t size, cJSON **first, size_t *lens)
{
	struct buf	 b;
	cJSON		*v;
	size_t		 off = 0, used, skipped;
	int		 n = 0;

	buf_init(&b);
	while (off < size) {
		if (key_skip_value(data + off, size - off, &skipped) == -1) {
			if (key_decode_value(data + off, size - off,
			    &used) != NULL)
				abort();
			break;
		}
		if (skipped == 0 || skipped > size - off)
			abort();
		if ((v = key_decode_value(data + off, size - off,
		    &used)) != NULL) {
			if (used != skipped)
				abort();
			buf_reset(&b);
			encode_into(&b, v);
			if (b.len != used || memcmp(b.data, data + off,
			    used) != 0)
				abort();
		}
		if (n < 2) {
			first[n] = v;
			lens[n] = v != NULL ? used : 0;
		} else
			cJSON_Delete(v);
		off += skipped;
		n++;
	}
	buf_free(&b);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON	*first[2] = { NULL, NULL };
	size_t	 lens[2] = { 0, 0 };
	int	 n;

	check_key(data, size);
	n = walk(data, size, first, lens);
	if (n >= 2 && first[0] != NULL && first[1] != NULL &&
	    sign(key_value_compare(first[0], first[1])) !=
	    bytes_cmp(data, lens[0], data + lens[0], lens[1]))
		abort();
	cJSON_Delete(first[0]);
	cJSON_Delete(first[1]);
	return 0;
}
