/*
 * The hash table of htab.h.  Lookups compare the hash first, then the
 * length and the bytes of the key.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "json.h"
#include "util.h"

void
htab_init(struct htab *t)
{
	memset(t, 0, sizeof(*t));
}

/* Free the buckets; the elements are the caller's. */
void
htab_free(struct htab *t)
{
	free(t->b);
	memset(t, 0, sizeof(*t));
}

/* FNV-1a of the bytes, the hash that JSON values are compared by. */
uint64_t
htab_hash(const void *p, size_t len)
{
	return json_hash(p, len);
}

/* The element with this key, or NULL. */
struct hentry *
htab_find(const struct htab *t, uint64_t hash, const void *key,
    size_t keylen)
{
	struct hentry	*e;

	if (t->size == 0)
		return NULL;
	for (e = t->b[hash & (t->size - 1)]; e != NULL; e = e->next)
		if (e->hash == hash && e->keylen == keylen &&
		    (keylen == 0 || memcmp(e->key, key, keylen) == 0))
			return e;
	return NULL;
}

static void
htab_grow(struct htab *t)
{
	struct hentry	**nb, *e;
	size_t		  i, nsize, slot;

	nsize = t->size == 0 ? HTAB_MIN_BUCKETS : t->size * 2;
	nb = xcalloc(nsize, sizeof(*nb));
	for (i = 0; i < t->size; i++) {
		while ((e = t->b[i]) != NULL) {
			t->b[i] = e->next;
			slot = e->hash & (nsize - 1);
			e->next = nb[slot];
			nb[slot] = e;
		}
	}
	free(t->b);
	t->b = nb;
	t->size = nsize;
}

/*
 * Add e (hash, key and keylen set).  A key may be in t more than once:
 * htab_find then returns one of them.
 */
void
htab_insert(struct htab *t, struct hentry *e)
{
	size_t	 slot;

	if (t->count >= t->size)
		htab_grow(t);
	slot = e->hash & (t->size - 1);
	e->next = t->b[slot];
	t->b[slot] = e;
	t->count++;
}

/*
 * Add e under key (owned by the element, e.g. its id: &x->id), hashed
 * with htab_hash.
 */
void
htab_insert_key(struct htab *t, struct hentry *e, const void *key,
    size_t keylen)
{
	e->hash = htab_hash(key, keylen);
	e->key = key;
	e->keylen = keylen;
	htab_insert(t, e);
}

/* The element added with htab_insert_key under key, or NULL. */
struct hentry *
htab_get(const struct htab *t, const void *key, size_t keylen)
{
	return htab_find(t, htab_hash(key, keylen), key, keylen);
}

/* Take e out of t; it must be in it. */
void
htab_remove(struct htab *t, struct hentry *e)
{
	struct hentry	**pp;

	assert(t->size > 0);
	for (pp = &t->b[e->hash & (t->size - 1)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			e->next = NULL;
			t->count--;
			return;
		}
	assert(!"htab_remove: not in the table");
}

/*
 * Walk every element: htab_first, then htab_next until NULL.  iter is the
 * walk's state.  The element returned may be removed before the next call
 * only when the caller takes the next one first.
 */
struct hentry *
htab_first(const struct htab *t, size_t *iter)
{
	for (*iter = 0; *iter < t->size; (*iter)++)
		if (t->b[*iter] != NULL)
			return t->b[*iter];
	return NULL;
}

struct hentry *
htab_next(const struct htab *t, struct hentry *e, size_t *iter)
{
	if (e->next != NULL)
		return e->next;
	for ((*iter)++; *iter < t->size; (*iter)++)
		if (t->b[*iter] != NULL)
			return t->b[*iter];
	return NULL;
}
