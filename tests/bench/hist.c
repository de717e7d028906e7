/*
 * Latency histograms: log-linear buckets over microseconds, HIST_SUB
 * buckets per power of two (under 1.6 % error), exact below HIST_SUB µs,
 * with the exact minimum, maximum and sum kept beside.
 */
#include <string.h>

#include "bench.h"

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = INT64_MAX;
}

static int
hist_slot(int64_t v)
{
	int	 e = 0;

	if (v < HIST_SUB)
		return (int)v;
	while ((v >> e) >= 2 * HIST_SUB)
		e++;
	/* v >> e is in [HIST_SUB, 2 * HIST_SUB). */
	if (e + 1 >= HIST_EXP)
		return HIST_EXP * HIST_SUB - 1;
	return (e + 1) * HIST_SUB + (int)((v >> e) - HIST_SUB);
}

/* The upper edge of a slot's values. */
static int64_t
hist_value(int slot)
{
	int	 e = slot / HIST_SUB - 1;
	int64_t	 m = slot % HIST_SUB + HIST_SUB;

	if (slot < HIST_SUB)
		return slot;
	return ((m + 1) << e) - 1;
}

void
hist_add(struct hist *h, int64_t us)
{
	if (us < 0)
		us = 0;
	h->n[hist_slot(us)]++;
	h->count++;
	h->sum += (double)us;
	if (us > h->max)
		h->max = us;
	if (us < h->min)
		h->min = us;
}

void
hist_merge(struct hist *h, const struct hist *o)
{
	size_t	 i;

	for (i = 0; i < nitems(h->n); i++)
		h->n[i] += o->n[i];
	h->count += o->count;
	h->sum += o->sum;
	if (o->max > h->max)
		h->max = o->max;
	if (o->min < h->min)
		h->min = o->min;
}

/* The value at percentile pct (0-100); the maximum is exact. */
int64_t
hist_pct(const struct hist *h, double pct)
{
	uint64_t	 want, seen = 0;
	size_t		 i;
	int64_t		 v;

	if (h->count == 0)
		return 0;
	if (pct >= 100)
		return h->max;
	want = (uint64_t)(pct / 100.0 * (double)h->count);
	if (want >= h->count)
		want = h->count - 1;
	for (i = 0; i < nitems(h->n); i++) {
		seen += h->n[i];
		if (seen > want) {
			v = hist_value((int)i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}
