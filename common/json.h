/*
 * JSON helpers around cJSON 1.7.15 that avoid its traps: a bounded parser
 * that refuses what cJSON would silently mangle (\u0000, non-finite
 * numbers, trailing bytes, excessive depth), a printer that writes
 * integers as plain integers and other numbers in their shortest
 * round-trip form, a canonical printer for cache keys, and a
 * case-sensitive lookup.
 */
#ifndef TINYVEX_JSON_H
#define TINYVEX_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util.h"

#define JSON_MAX_DEPTH		64	/* deepest nesting any parser accepts */
#define JSON_SAFE_INT		9007199254740992.0	/* 2^53 */

/* Why json_parse refused its input. */
enum json_err {
	JSON_OK = 0,
	JSON_ERR_SYNTAX,	/* not JSON, or bytes after the value */
	JSON_ERR_DEPTH,		/* nested deeper than max_depth */
	JSON_ERR_NUL,		/* a string contains \u0000 */
	JSON_ERR_NUMBER,	/* a number overflows a double */
	JSON_ERR_DUPKEY,	/* an object repeats a member name */
};

/*
 * Parse exactly len bytes (no NUL terminator needed) as one JSON value,
 * surrounded by optional whitespace.  Returns the tree, or NULL with *err
 * set.  max_depth counts containers: a scalar is depth 0, [] is 1.
 */
cJSON	*json_parse(const char *text, size_t len, int max_depth,
	    enum json_err *err);
const char *json_strerror(enum json_err);

/*
 * Compact JSON.  A number that is integral with magnitude < 2^53 prints as
 * a plain integer (-0 as 0); any other finite number prints as the shortest
 * %.Ng (N = 15..17) that reads back to the same double.
 */
void	 json_print(struct buf *, const cJSON *);
/* As json_print, with object members sorted by name (bytewise). */
void	 json_print_canonical(struct buf *, const cJSON *);
/* A JSON string literal for len bytes of UTF-8 (control chars escaped). */
void	 json_print_string(struct buf *, const char *, size_t);
void	 json_print_number(struct buf *, double);

/*
 * Add an integer member as raw text, so it prints exact and never in
 * exponent form (cJSON would print a double).
 */
void	 json_add_int(cJSON *obj, const char *name, int64_t v);

/* Case-sensitive member lookup; NULL when obj is not an object. */
cJSON	*json_get(const cJSON *obj, const char *key);
/* Nesting depth as json_parse counts it. */
int	 json_depth(const cJSON *);
/*
 * 1 when v is a number with an integral value in [min, max], stored in
 * *out; 0 otherwise.
 */
int	 json_get_int(const cJSON *v, int64_t min, int64_t max, int64_t *out);

/* 64-bit FNV-1a of bytes, for result hashes and cache keys. */
uint64_t json_hash(const void *, size_t);

/* 1 when the bytes are well-formed UTF-8 (no surrogates, no overlongs). */
int	 utf8_valid(const char *, size_t);
/* The largest n <= max such that s[0..n) ends on a code point boundary. */
size_t	 utf8_cut(const char *s, size_t len, size_t max);

#endif
