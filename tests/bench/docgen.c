/*
 * The documents the scenarios write: about DOC_BODY_TARGET bytes of JSON
 * as a client sends them, with a title, a body of text, a number and a
 * small array.  The same function feeds the load generator and the
 * SQLite baseline, so both write the same bytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const char lorem[] =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
    "eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim "
    "ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut "
    "aliquip ex ea commodo consequat.";

void
doc_user(struct buf *b, uint64_t n)
{
	size_t	 start = b->len, fixed, room;
	char	 head[96];

	snprintf(head, sizeof(head), "{\"title\":\"Document %08" PRIu64
	    "\",\"n\":%" PRIu64 ",\"tags\":[\"bench\",\"tinyvex\"],"
	    "\"body\":\"", n, n);
	buf_adds(b, head);
	fixed = b->len - start + 2;	/* and the closing "} */
	room = DOC_BODY_TARGET > fixed ? DOC_BODY_TARGET - fixed : 0;
	if (room > sizeof(lorem) - 1)
		room = sizeof(lorem) - 1;
	buf_add(b, lorem, room);
	buf_adds(b, "\"}");
}
