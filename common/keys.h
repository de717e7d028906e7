/*
 * Order-preserving index key encoding.
 *
 * An index key is the encoding of each indexed field value, in the index's
 * field order, followed by the encoded document id.  Each value encoding is
 * self-delimiting (no encoding is a prefix of another), so the bytes of the
 * keys whose first k values are v1..vk are exactly the keys that start with
 * E(v1)..E(vk), and memcmp order of two keys is the value order of their
 * field tuples.
 *
 * Value order (as Convex): missing < null < number < boolean < string <
 * array < object.  Numbers compare as doubles, -0 equal to 0.  Strings
 * compare by their UTF-8 bytes.  Arrays compare element by element, a
 * shorter prefix first; objects field by field (name, then value) in the
 * document's field order, fewer fields first.
 *
 * Encoding, one tag byte then the payload:
 *   0x01 missing         (no payload)
 *   0x02 null            (no payload)
 *   0x03 number          8 bytes: the IEEE-754 bits big-endian; sign bit
 *                        flipped for positives, all bits flipped for
 *                        negatives; -0 is encoded as +0
 *   0x04 boolean         one byte: 0x00 false, 0x01 true
 *   0x05 string          the bytes, 0x00 escaped as 0x00 0xFF, then the
 *                        terminator 0x00 0x00
 *   0x06 array           each element's encoding, then 0x00
 *   0x07 object          for each field: 0x01, the name as a string
 *                        payload (escaped, terminated), the value's
 *                        encoding; then 0x00
 */
#ifndef TINYVEX_KEYS_H
#define TINYVEX_KEYS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util.h"

#define KEY_TAG_MISSING	0x01
#define KEY_TAG_NULL	0x02
#define KEY_TAG_NUMBER	0x03
#define KEY_TAG_BOOLEAN	0x04
#define KEY_TAG_STRING	0x05
#define KEY_TAG_ARRAY	0x06
#define KEY_TAG_OBJECT	0x07

#define KEY_MAX_DEPTH	64	/* deepest value that can be encoded */
#define KEY_MAX_BYTES	4096	/* longest index key a document may produce */

/*
 * Append the encoding of v to out; v == NULL encodes "missing".  Returns 0,
 * or -1 when v is nested deeper than KEY_MAX_DEPTH or is not a JSON value
 * (cJSON_Invalid, cJSON_Raw); out is then left at its length on entry.
 */
int	 key_append_value(struct buf *out, const cJSON *v);

/* Append a string value (tag and payload) of len bytes, NUL allowed. */
void	 key_append_string(struct buf *out, const char *s, size_t len);

/* Append a number value. */
void	 key_append_number(struct buf *out, double d);

/*
 * Build the key of a document for an index with the given fields into out
 * (which is reset first): the value of each field ("_id" and
 * "_creationTime" are fields like any other; a field the document lacks is
 * missing), then the document id as a string unless the last field is
 * "_id", whose value is that id already (by_id, by_creation_time and every
 * user index end in _id, so their keys are unique).  Returns 0, or -1 when a
 * value cannot be encoded or the key would exceed KEY_MAX_BYTES.
 */
int	 key_encode_doc(struct buf *out, const cJSON *doc,
	    char *const *fields, size_t nfields, const char *doc_id);

/*
 * Turn out, a prefix P, into the smallest byte string greater than every
 * string that starts with P.  Returns 0, or -1 when there is none (P is
 * empty or all 0xFF), in which case the range above P is unbounded.
 */
int	 key_prefix_successor(struct buf *out);

/*
 * Decode one value at p (at most len bytes).  Returns a new cJSON item
 * (missing decodes as a cJSON raw item with the text "undefined") and sets
 * *used to the bytes consumed, or returns NULL when the bytes are not a
 * valid encoding (truncated, unknown tag, bad escape, non-canonical number
 * such as an encoded -0, or deeper than KEY_MAX_DEPTH) or holds a string or
 * field name with a NUL byte.
 */
cJSON	*key_decode_value(const unsigned char *p, size_t len, size_t *used);

/*
 * Check that p (at most len bytes) starts with one valid value encoding,
 * by the same rules as key_decode_value, without building it; strings and
 * field names holding NUL bytes are accepted here (key_decode_value
 * refuses them, as a cJSON string cannot hold a NUL).  Returns 0 and sets
 * *used to the bytes the value takes, or -1 when malformed.
 */
int	 key_skip_value(const unsigned char *p, size_t len, size_t *used);

/*
 * The document id a stored key ends with.  Every key of an index ends with
 * its document's id, a string of idlen characters that never holds a NUL,
 * so it sits at a fixed distance from the end and the tables need not
 * store it again.  Copies it and a NUL to out (idlen + 1 bytes) and
 * returns 0, or -1 when the key does not end with such a string.
 */
int	 key_doc_id(const void *key, size_t len, size_t idlen, char *out);

/*
 * Decode a whole key: a sequence of values that must use every byte.
 * Returns a new cJSON array, or NULL when malformed.
 */
cJSON	*key_decode(const unsigned char *p, size_t len);

/*
 * The reference order on values, independent of the encoding: <0, 0, >0
 * as a sorts before, with, after b.  NULL is missing.  For tests.
 */
int	 key_value_compare(const cJSON *a, const cJSON *b);

#endif
