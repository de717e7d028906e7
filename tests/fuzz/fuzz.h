/*
 * What the fuzz harnesses share: the check that aborts, which libFuzzer
 * reports as a finding, and the check that a pointer and length a parser
 * returned lie inside the input it was given.
 */
#ifndef TINYVEX_FUZZ_H
#define TINYVEX_FUZZ_H

#include <stddef.h>
#include <stdlib.h>

static inline void
need(int cond)
{
	if (!cond)
		abort();
}

/* [p, p + n) lies within [body, body + len). */
static inline void
in_body(const unsigned char *body, size_t len, const void *p, size_t n)
{
	const unsigned char	*q = p;

	need(q >= body && q <= body + len && n <= (size_t)(body + len - q));
}

#endif
