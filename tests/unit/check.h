/*
 * What the unit tests share: CHECK, which counts every condition and
 * reports the first CHECK_MAX_REPORTS that fail (nchecks, nfail), and a
 * deterministic generator (splitmix64) from CHECK_SEED, so that a
 * failure repeats on the next run; check() is CHECK for a table of
 * named cases.  A test may define CHECK_SEED and CHECK_MAX_REPORTS
 * before it includes this file.
 */
#ifndef TINYVEX_TEST_CHECK_H
#define TINYVEX_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>

#ifndef CHECK_SEED
#define CHECK_SEED		0x74696e797665782eULL	/* a test's own, else */
#endif
#ifndef CHECK_MAX_REPORTS
#define CHECK_MAX_REPORTS	20	/* failures printed in detail */
#endif

static long	 nchecks;
static int	 nfail;
static uint64_t	 check_rng = CHECK_SEED;

#define CHECK(cond, ...) do {						\
	nchecks++;							\
	if (!(cond)) {							\
		if (nfail++ < CHECK_MAX_REPORTS) {			\
			fprintf(stderr, "FAIL %s:%d: ", __FILE__,	\
			    __LINE__);					\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
		}							\
	}								\
} while (0)

/* One named case: counted as CHECK counts; name and what when it fails. */
static inline void
check(int ok, const char *what, const char *name)
{
	nchecks++;
	if (!ok && nfail++ < CHECK_MAX_REPORTS)
		fprintf(stderr, "FAIL %s: %s\n", name, what);
}

/* The next number of the sequence (splitmix64). */
static inline uint64_t
rnd(void)
{
	uint64_t	 z;

	z = (check_rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number below n (n > 0). */
static inline uint64_t
rnd_below(uint64_t n)
{
	return rnd() % n;
}

#endif
