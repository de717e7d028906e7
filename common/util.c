/*
 * Allocation helpers that abort on exhaustion, the growable byte buffer
 * used for every output path, clocks, and parsers for configuration values.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		fatal("%s", __func__);
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, sz == 0 ? 1 : sz)) == NULL)
		fatal("%s", __func__);
	return p;
}

void *
xreallocarray(void *old, size_t n, size_t sz)
{
	void	*p;

	if (sz != 0 && n > SIZE_MAX / sz)
		fatalx("%s: overflow", __func__);
	if ((p = realloc(old, n * sz == 0 ? 1 : n * sz)) == NULL)
		fatal("%s", __func__);
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("%s", __func__);
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Make room for n more bytes plus the terminating NUL. */
void
buf_reserve(struct buf *b, size_t n)
{
	size_t	 need, cap;

	if (n > SIZE_MAX - b->len - 1)
		fatalx("%s: overflow", __func__);
	need = b->len + n + 1;
	if (need <= b->cap)
		return;
	cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_addc(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	 tmp[256];
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("%s: vsnprintf", __func__);
	if ((size_t)n < sizeof(tmp)) {
		buf_add(b, tmp, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* The decimal digits of v, written backwards from end; the first. */
static char *
u64_digits(char *end, uint64_t v)
{
	static const char	 pairs[] =
	    "00010203040506070809101112131415161718192021222324252627282930"
	    "31323334353637383940414243444546474849505152535455565758596061"
	    "62636465666768697071727374757677787980818283848586878889909192"
	    "93949596979899";
	unsigned		 d;

	/* Two digits a division. */
	while (v >= 100) {
		d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--end = pairs[d + 1];
		*--end = pairs[d];
	}
	if (v >= 10) {
		d = (unsigned)v * 2;
		*--end = pairs[d + 1];
		*--end = pairs[d];
	} else
		*--end = (char)('0' + v);
	return end;
}

void
buf_add_i64(struct buf *b, int64_t v)
{
	char	 tmp[24], *p;

	/* The magnitude as unsigned: INT64_MIN has no positive. */
	p = u64_digits(tmp + sizeof(tmp), v < 0 ? -(uint64_t)v : (uint64_t)v);
	if (v < 0)
		*--p = '-';
	buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void
buf_add_u64(struct buf *b, uint64_t v)
{
	char	 tmp[24], *p;

	p = u64_digits(tmp + sizeof(tmp), v);
	buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Drop the first n bytes. */
void
buf_consume(struct buf *b, size_t n)
{
	assert(n <= b->len);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

/* Hand the bytes to the caller and leave the buffer empty. */
char *
buf_steal(struct buf *b, size_t *lenp)
{
	char	*p;

	if (b->data == NULL)
		buf_reserve(b, 0);
	p = b->data;
	if (lenp != NULL)
		*lenp = b->len;
	buf_init(b);
	return p;
}

int64_t
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

size_t
strlcpy_tv(char *dst, const char *src, size_t dsize)
{
	size_t	 n = strlen(src);

	if (dsize > 0) {
		size_t c = n < dsize - 1 ? n : dsize - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int
parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "500ms", "30s", "15m", "24h", "7d"; a bare number is seconds. */
int
parse_duration(const char *s, int64_t *out)
{
	char		*end;
	double		 v, mul = 1e6;

	if (s[0] < '0' || s[0] > '9')
		return -1;	/* no sign, hex, inf or nan */
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0 || !(v >= 0 && v < 1e15))
		return -1;
	if (strcmp(end, "ms") == 0)
		mul = 1e3;
	else if (strcmp(end, "us") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mul = 1e6;
	else if (strcmp(end, "m") == 0)
		mul = 60e6;
	else if (strcmp(end, "h") == 0)
		mul = 3600e6;
	else if (strcmp(end, "d") == 0)
		mul = 86400e6;
	else
		return -1;
	if (v * mul > 9e18)
		return -1;
	*out = (int64_t)(v * mul);
	return 0;
}

/* "4096", "64K", "1M", "2G". */
int
parse_size(const char *s, uint64_t *out)
{
	char			*end;
	unsigned long long	 v;
	uint64_t		 mul = 1;

	errno = 0;
	if (s[0] == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (end == s || errno != 0)
		return -1;
	if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0)
		mul = 1024;
	else if (strcmp(end, "M") == 0)
		mul = 1024 * 1024;
	else if (strcmp(end, "G") == 0)
		mul = 1024 * 1024 * 1024;
	else if (*end != '\0')
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int
bytecmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int	 r;

	r = memcmp(a, b, alen < blen ? alen : blen);
	if (r != 0)
		return r < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}
