/*
 * Small helpers shared by every Tinyvex program: allocation that cannot
 * fail silently, a growable byte buffer, clocks, and bounded string copies.
 */
#ifndef TINYVEX_UTIL_H
#define TINYVEX_UTIL_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * A growable byte buffer.  data is NUL-terminated after len whenever
 * len > 0 or cap > 0, so text can be used as a C string.
 */
struct buf {
	char	*data;		/* bytes; owned */
	size_t	 len;		/* bytes used */
	size_t	 cap;		/* bytes allocated */
};

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);

void	 buf_init(struct buf *);
void	 buf_free(struct buf *);
void	 buf_reset(struct buf *);
void	 buf_reserve(struct buf *, size_t);
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_addc(struct buf *, char);
void	 buf_adds(struct buf *, const char *);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_add_i64(struct buf *, int64_t);
void	 buf_add_u64(struct buf *, uint64_t);
void	 buf_consume(struct buf *, size_t);
char	*buf_steal(struct buf *, size_t *);

int64_t	 now_us(void);		/* CLOCK_REALTIME, microseconds */
int64_t	 mono_us(void);		/* CLOCK_MONOTONIC, microseconds */
size_t	 strlcpy_tv(char *, const char *, size_t);
/* Byte strings in memcmp order, a prefix before what extends it: -1, 0, 1. */
int	 bytecmp(const void *, size_t, const void *, size_t);
int	 parse_duration(const char *, int64_t *);	/* "30s" → µs */
int	 parse_size(const char *, uint64_t *);		/* "1M" → bytes */
int	 parse_i64(const char *, int64_t, int64_t, int64_t *);

#endif
