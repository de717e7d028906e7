/*
 * A small chained hash table of elements that carry their own link
 * (struct hentry, embedded): keys are byte strings owned by the element,
 * the hash is the caller's.  It grows by doubling when it holds as many
 * elements as it has buckets, and never shrinks.  Used for lookups by
 * key (gatewayd's executions and invalidation index) and by id (things
 * in flight across an asynchronous hop, found again by their number
 * instead of a pointer that may have gone).
 */
#ifndef TINYVEX_HTAB_H
#define TINYVEX_HTAB_H

#include <stddef.h>
#include <stdint.h>

#define HTAB_MIN_BUCKETS	64	/* buckets of a new table */

/* The link of an element; hash, key and keylen are set before insert. */
struct hentry {
	struct hentry	*next;		/* bucket chain */
	uint64_t	 hash;		/* of key */
	const void	*key;		/* owned by the element */
	size_t		 keylen;
};

struct htab {
	struct hentry	**b;
	size_t		  size;		/* buckets, a power of two; 0: none */
	size_t		  count;	/* elements */
};

/* The element of type that holds the hentry member named field. */
#define HTAB_ELEM(e, type, field)					\
	((type *)(void *)((char *)(e) - offsetof(type, field)))

void		 htab_init(struct htab *);
void		 htab_free(struct htab *);
uint64_t	 htab_hash(const void *, size_t);
struct hentry	*htab_find(const struct htab *, uint64_t hash,
		    const void *key, size_t keylen);
void		 htab_insert(struct htab *, struct hentry *);
void		 htab_insert_key(struct htab *, struct hentry *,
		    const void *key, size_t keylen);
struct hentry	*htab_get(const struct htab *, const void *key,
		    size_t keylen);
void		 htab_remove(struct htab *, struct hentry *);
struct hentry	*htab_first(const struct htab *, size_t *iter);
struct hentry	*htab_next(const struct htab *, struct hentry *,
		    size_t *iter);

#endif
