/*
 * Page cursors (db/paginate): an opaque string naming a position in one
 * index walked in one order.  A position is either a key (after the
 * document with that key) or the end (after every document, however many
 * come later).
 *
 * The string is the unpadded base64url of, in order:
 *   1 byte   version (CURSOR_VERSION)
 *   1 byte   flags: CURSOR_F_DESC, CURSOR_F_END; no other bit set
 *   8 bytes  table id, big-endian
 *   8 bytes  index id, big-endian
 *   2 bytes  key length, big-endian (0 for the end)
 *   the key
 *   4 bytes  check: the low 32 bits of FNV-1a 64 of everything before
 * The check catches truncation and damage, not forgery: a forged cursor
 * decodes to a position, which is bound-checked against the index it is
 * used on (cursor_check_key) and only ever narrows a scan of that index.
 * An end with table and index id 0 is the end of a table that did not
 * exist when the cursor was made; it matches every index of the order.
 */
#ifndef TINYVEX_CURSOR_H
#define TINYVEX_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "util.h"

#define CURSOR_VERSION		1
#define CURSOR_F_DESC		0x01
#define CURSOR_F_END		0x02
#define CURSOR_HEAD_BYTES	20	/* version .. key length */
#define CURSOR_CHECK_BYTES	4
#define CURSOR_MAX_BYTES	(CURSOR_HEAD_BYTES + KEY_MAX_BYTES + \
				    CURSOR_CHECK_BYTES)
/* Longest cursor string: base64 of CURSOR_MAX_BYTES. */
#define CURSOR_MAX_CHARS	((CURSOR_MAX_BYTES * 4 + 2) / 3)

struct cursor {
	int		 desc;		/* made by a walk in desc order */
	int		 end;		/* after everything; no key */
	int64_t		 table_id;
	int64_t		 index_id;
	unsigned char	 key[KEY_MAX_BYTES];
	size_t		 keylen;
};

/* Append the cursor string of c to out.  c->keylen <= KEY_MAX_BYTES. */
void	 cursor_encode(struct buf *out, const struct cursor *c);

/*
 * Decode s (len chars) into c.  Returns 0, or -1 when s is not a cursor
 * string of this version: too short or long, a character outside
 * base64url, padding or stray bits, a bad check, an unknown version or
 * flag, a key length that does not match, an end with a key or a key
 * position without one.  Reads nothing past s + len; c is garbage on -1.
 */
int	 cursor_decode(const char *s, size_t len, struct cursor *c);

/*
 * 0 when key (len bytes) can be a key of an index with nfields fields:
 * exactly nfields well-formed values using every byte, the last a
 * string of STORE_ID_LEN bytes (the document id); else -1.
 */
int	 cursor_check_key(const unsigned char *key, size_t len,
	    size_t nfields);

#endif
