/*
 * Unit test for the index key encoding: the memcmp order of encodings
 * against the reference value order on thousands of values drawn from a
 * fixed-seed generator (every type, awkward numbers, shared string
 * prefixes, nested containers), whole index keys of documents, strings
 * with NUL bytes, prefix successors, the depth and size limits, and the
 * decoder on valid, truncated and corrupted keys.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "keys.h"
#include "util.h"

#define CHECK_SEED	0x74696e7976657855ULL	/* fixed: runs repeat */
#define GEN_DEPTH	3	/* nesting of generated values */
#define GEN_WIDTH	4	/* most children of a generated container */
#define POOL_RANDOM	500	/* generated values */
#define POOL_MUTATED	500	/* near neighbours of earlier values */
#define POOL_MAX	1100
#define DOCS_PER_INDEX	600	/* documents per field count */
#define INDEX_FIELDS	3	/* most fields in a generated index */
#define NUL_STRINGS	1000	/* byte strings with NULs */
#define SUCC_ROUNDS	20000	/* prefix successor trials */
#define CORRUPT_KEYS	300	/* document keys to truncate and corrupt */
#define CHECK_MAX_REPORTS	20	/* failures printed in detail */

#include "check.h"

static void	 corrupt_all(const struct buf *);

static const char *const str_pieces[] = {
	"a", "b", "ab", "z", "A", "0", " ", "\x01", "\x7f", "aa",
	"\xc3\xa9",			/* é */
	"\xe2\x82\xac",			/* € */
	"\xf0\x9f\x98\x80",		/* U+1F600 */
	"\xc3\xa9t\xc3\xa9",
};

static const char *const name_pieces[] = {
	"", "a", "b", "ab", "_id", "x", "\xc3\xa9",
};

/* Values given as JSON text, the corner cases of the order. */
static const char *const fixed_values[] = {
	"null", "false", "true", "0", "-0", "1", "-1", "0.5", "-0.5",
	"1e308", "-1e308", "1.7976931348623157e308", "-1.7976931348623157e308",
	"5e-324", "-5e-324", "2.2250738585072009e-308",
	"2.2250738585072014e-308",
	"9007199254740991", "9007199254740992", "9007199254740993",
	"-9007199254740992", "1.7e15",
	"\"\"", "\"a\"", "\"ab\"", "\"abc\"", "\"b\"", "\"\\u00e9\"",
	"\"\\u00e9t\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\u007f\"",
	"[]", "[[]]", "[[[]]]", "[null]", "[[],[]]", "[1]", "[1,2]", "[2]",
	"[\"a\"]", "[\"a\",\"b\"]", "[\"ab\"]", "[false]", "[{}]",
	"{}", "{\"\":null}", "{\"a\":1}", "{\"a\":1,\"b\":2}", "{\"a\":2}",
	"{\"b\":1}", "{\"a\":[]}", "{\"a\":{}}", "{\"ab\":0}",
	"{\"a\":1,\"a\":0}",
	"{\"b\":1,\"a\":1}", "[-0]", "[0]", "{\"a\":-0}",
};

static const double interesting[] = {
	0.0, -0.0, 1, -1, 0.5, -0.5, 2, -2, 3.14159, -3.14159,
	1e308, -1e308, DBL_MAX, -DBL_MAX, DBL_MIN, -DBL_MIN,
	4.9406564584124654e-324, -4.9406564584124654e-324,
	2.2250738585072009e-308, -2.2250738585072009e-308,
	9007199254740991.0, 9007199254740992.0, 9007199254740994.0,
	-9007199254740991.0, -9007199254740992.0, 1e-300, -1e-300,
	1e15, 1.7e15, -1e15, 1e300, -1e300,
};

static int
sign(int r)
{
	return r < 0 ? -1 : r > 0;
}

/* Bytes as unsigned, a shorter prefix first. */
static int
bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int	 r;

	r = memcmp(a, b, alen < blen ? alen : blen);
	if (r != 0)
		return sign(r);
	return alen < blen ? -1 : alen > blen;
}

static int
buf_cmp(const struct buf *a, const struct buf *b)
{
	return bytes_cmp(a->data, a->len, b->data, b->len);
}

static int
starts_with(const struct buf *k, const struct buf *p)
{
	return k->len >= p->len && memcmp(k->data, p->data, p->len) == 0;
}

static double
gen_number(void)
{
	uint64_t	 u;
	double		 d;

	switch (rnd_below(8)) {
	case 0:
		return interesting[rnd_below(nitems(interesting))];
	case 1:
		return (double)((int64_t)rnd_below(2001) - 1000);
	case 2:		/* integers around +-2^53 */
		d = ldexp(1, 53) + (double)((int64_t)rnd_below(9) - 4);
		return rnd_below(2) ? d : -d;
	case 3:		/* any finite double */
		do {
			u = rnd();
			memcpy(&d, &u, sizeof(d));
		} while (!isfinite(d));
		return d;
	case 4:		/* subnormals */
		u = rnd() & (((uint64_t)1 << 52) - 1);
		u |= rnd() & ((uint64_t)1 << 63);
		memcpy(&d, &u, sizeof(d));
		return d;
	case 5:		/* neighbours of the awkward ones */
		d = interesting[rnd_below(nitems(interesting))];
		return nextafter(d, rnd_below(2) ? INFINITY : -INFINITY);
	case 6:
		return rnd_below(2) ? INFINITY : -INFINITY;
	default:
		return (double)((int64_t)rnd_below(2001) - 1000) / 8;
	}
}

static void
gen_text(char *s, size_t size, const char *const *pieces, size_t npieces,
    size_t most)
{
	size_t	 i, n;

	s[0] = '\0';
	n = rnd_below(most + 1);
	for (i = 0; i < n; i++)
		if (strlen(s) + 16 < size)
			strcat(s, pieces[rnd_below(npieces)]);
}

static cJSON *
gen_value(int depth)
{
	cJSON	*v;
	char	 s[128];
	size_t	 i, n;

	switch (rnd_below(depth < GEN_DEPTH ? 11 : 7)) {
	case 0:
		return cJSON_CreateNull();
	case 1:
		return cJSON_CreateFalse();
	case 2:
		return cJSON_CreateTrue();
	case 3:
	case 4:
		return cJSON_CreateNumber(gen_number());
	case 5:
	case 6:
		gen_text(s, sizeof(s), str_pieces, nitems(str_pieces), 4);
		return cJSON_CreateString(s);
	case 7:
	case 8:
		v = cJSON_CreateArray();
		n = rnd_below(GEN_WIDTH + 1);
		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(v, gen_value(depth + 1));
		return v;
	default:
		v = cJSON_CreateObject();
		n = rnd_below(GEN_WIDTH + 1);
		for (i = 0; i < n; i++) {
			gen_text(s, sizeof(s), name_pieces,
			    nitems(name_pieces), 2);
			cJSON_AddItemToObject(v, s, gen_value(depth + 1));
		}
		return v;
	}
}

struct node {
	cJSON	*item;
	cJSON	*parent;
};

static void
collect(cJSON *v, cJSON *parent, struct node *nodes, size_t *n, size_t max)
{
	cJSON	*c;

	if (*n == max)
		return;
	nodes[*n].item = v;
	nodes[*n].parent = parent;
	(*n)++;
	for (c = v->child; c != NULL; c = c->next)
		collect(c, v, nodes, n, max);
}

/* A copy of v with one small change somewhere inside. */
static cJSON *
mutate(const cJSON *v)
{
	struct node	 nodes[256];
	cJSON		*root, *item, *parent, *repl = NULL, *last;
	char		 s[256];
	size_t		 n = 0, len, k;

	root = cJSON_Duplicate(v, 1);
	collect(root, NULL, nodes, &n, nitems(nodes));
	k = rnd_below(n);
	item = nodes[k].item;
	parent = nodes[k].parent;
	switch (rnd_below(3)) {
	case 0:
		repl = gen_value(GEN_DEPTH - 1);
		break;
	default:
		if (cJSON_IsNumber(item))
			repl = cJSON_CreateNumber(rnd_below(3) == 0 ?
			    -item->valuedouble : nextafter(item->valuedouble,
			    rnd_below(2) ? INFINITY : -INFINITY));
		else if (cJSON_IsString(item)) {
			len = strlen(item->valuestring);
			if (len > 0 && rnd_below(2)) {
				memcpy(s, item->valuestring, len - 1);
				s[len - 1] = '\0';
			} else if (len + 16 < sizeof(s)) {
				memcpy(s, item->valuestring, len + 1);
				strcat(s, str_pieces[rnd_below(
				    nitems(str_pieces))]);
			} else
				s[0] = '\0';
			repl = cJSON_CreateString(s);
		} else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
			for (last = item->child; last != NULL &&
			    last->next != NULL; last = last->next)
				;
			if (last != NULL && rnd_below(2))
				cJSON_Delete(cJSON_DetachItemViaPointer(item,
				    last));
			else if (cJSON_IsArray(item))
				cJSON_AddItemToArray(item,
				    gen_value(GEN_DEPTH));
			else {
				gen_text(s, sizeof(s), name_pieces,
				    nitems(name_pieces), 2);
				cJSON_AddItemToObject(item, s,
				    gen_value(GEN_DEPTH));
			}
		} else
			repl = gen_value(GEN_DEPTH);
		break;
	}
	if (repl == NULL)
		return root;
	if (parent == NULL) {
		cJSON_Delete(root);
		return repl;
	}
	if (cJSON_IsObject(parent))	/* keeps the field name */
		cJSON_ReplaceItemInObjectCaseSensitive(parent, item->string,
		    repl);
	else
		cJSON_ReplaceItemViaPointer(parent, item, repl);
	return root;
}

static void
encode(struct buf *b, const cJSON *v)
{
	buf_reset(b);
	CHECK(key_append_value(b, v) == 0, "encode failed");
}

/* Re-encode the items of a decoded key; missing comes back raw. */
static int
reencode(struct buf *b, const cJSON *arr)
{
	const cJSON	*c;

	buf_reset(b);
	cJSON_ArrayForEach(c, arr)
		if (key_append_value(b, cJSON_IsRaw(c) ? NULL : c) == -1)
			return -1;
	return 0;
}

static int
is_missing(const cJSON *v)
{
	return cJSON_IsRaw(v) && strcmp(v->valuestring, "undefined") == 0;
}

static cJSON	*pool[POOL_MAX];
static struct buf pool_enc[POOL_MAX];
static size_t	 npool;

static void
build_pool(void)
{
	size_t	 i;

	_Static_assert(1 + nitems(fixed_values) + POOL_RANDOM + POOL_MUTATED <=
	    POOL_MAX, "POOL_MAX too small");
	pool[npool++] = NULL;		/* missing */
	for (i = 0; i < nitems(fixed_values); i++) {
		pool[npool] = cJSON_Parse(fixed_values[i]);
		if (pool[npool] == NULL) {
			fprintf(stderr, "cannot parse %s\n", fixed_values[i]);
			exit(1);
		}
		npool++;
	}
	for (i = 0; i < POOL_RANDOM; i++)
		pool[npool++] = gen_value(0);
	for (i = 0; i < POOL_MUTATED; i++)
		pool[npool] = mutate(pool[1 + rnd_below(npool - 1)]), npool++;
	for (i = 0; i < npool; i++) {
		buf_init(&pool_enc[i]);
		encode(&pool_enc[i], pool[i]);
	}
}

static void
test_pairs(void)
{
	size_t	 i, j;
	long	 lt = 0, eq = 0, gt = 0, same = 0;
	int	 want, got;

	for (i = 0; i < npool; i++)
		for (j = 0; j < npool; j++) {
			want = sign(key_value_compare(pool[i], pool[j]));
			got = buf_cmp(&pool_enc[i], &pool_enc[j]);
			CHECK(want == got, "pair %zu %zu: compare %d, bytes %d",
			    i, j, want, got);
			CHECK(want == -sign(key_value_compare(pool[j],
			    pool[i])), "compare not antisymmetric %zu %zu",
			    i, j);
			if (want < 0)
				lt++;
			else if (want > 0)
				gt++;
			else
				eq++;
			if (pool_enc[i].len > 0 && pool_enc[j].len > 0 &&
			    pool_enc[i].data[0] == pool_enc[j].data[0])
				same++;
		}
	printf("keys: %zu values, %zu ordered pairs (%ld <, %ld =, %ld >, "
	    "%ld of one type): byte order is value order\n",
	    npool, npool * npool, lt, eq, gt, same);
	CHECK(lt > 1000 && gt > 1000 && eq > (long)npool,
	    "generator gives too few pairs of each kind");
}

static void
test_roundtrip(void)
{
	struct buf	 b;
	cJSON		*v, *arr;
	size_t		 i, used, skipped;

	buf_init(&b);
	for (i = 0; i < npool; i++) {
		const struct buf *e = &pool_enc[i];

		used = 0;
		v = key_decode_value((const unsigned char *)e->data, e->len,
		    &used);
		CHECK(v != NULL, "value %zu does not decode", i);
		if (v == NULL)
			continue;
		CHECK(used == e->len, "value %zu: used %zu of %zu", i, used,
		    e->len);
		CHECK(key_value_compare(v, pool[i]) == 0,
		    "value %zu decodes to another value", i);
		if (pool[i] == NULL)
			CHECK(is_missing(v), "missing does not decode raw");
		else
			CHECK((v->type & 0xff) == (pool[i]->type & 0xff),
			    "value %zu decodes to another type", i);
		if (cJSON_IsNumber(v))
			CHECK(!signbit(v->valuedouble) ||
			    v->valuedouble != 0, "-0 decoded");
		buf_reset(&b);
		CHECK(key_append_value(&b, is_missing(v) ? NULL : v) == 0 &&
		    buf_cmp(&b, e) == 0, "value %zu re-encodes differently",
		    i);
		cJSON_Delete(v);
		CHECK(key_skip_value((const unsigned char *)e->data, e->len,
		    &skipped) == 0 && skipped == e->len,
		    "value %zu not skipped", i);
		arr = key_decode((const unsigned char *)e->data, e->len);
		CHECK(arr != NULL && cJSON_GetArraySize(arr) == 1,
		    "value %zu as a key", i);
		cJSON_Delete(arr);
	}
	buf_free(&b);
	printf("keys: %zu values decode, compare equal, keep their type and "
	    "re-encode to the same bytes\n", npool);
}

/* Numbers in increasing order; -0 and 0 encode alike. */
static void
test_numbers(void)
{
	static const double sorted[] = {
		-INFINITY, -DBL_MAX, -1e308, -9007199254740994.0,
		-9007199254740992.0, -9007199254740991.0, -1e15, -2, -1,
		-0.5, -DBL_MIN, -2.2250738585072009e-308,
		-4.9406564584124654e-324, 0, 4.9406564584124654e-324,
		2.2250738585072009e-308, DBL_MIN, 1e-300, 0.5, 1, 2, 1e15,
		9007199254740991.0, 9007199254740992.0, 9007199254740994.0,
		1e308, DBL_MAX, INFINITY,
	};
	static const unsigned char bad[][9] = {
		{ 3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },	/* -0 */
		{ 3, 0xff, 0xf8, 0, 0, 0, 0, 0, 0 },		/* NaN */
		{ 3, 0xff, 0xf0, 0, 0, 0, 0, 0, 1 },
		{ 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 3, 0, 0, 0, 0, 0, 0, 0, 0 },			/* -NaN */
		{ 3, 0x00, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe },
		{ 3, 0x00, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	};
	struct buf	 a, b;
	cJSON		*v;
	size_t		 i, used;

	buf_init(&a);
	buf_init(&b);
	for (i = 0; i + 1 < nitems(sorted); i++) {
		buf_reset(&a);
		buf_reset(&b);
		key_append_number(&a, sorted[i]);
		key_append_number(&b, sorted[i + 1]);
		CHECK(a.len == 9 && buf_cmp(&a, &b) < 0, "%g !< %g",
		    sorted[i], sorted[i + 1]);
	}
	buf_reset(&a);
	buf_reset(&b);
	key_append_number(&a, 0.0);
	key_append_number(&b, -0.0);
	CHECK(buf_cmp(&a, &b) == 0, "-0 and 0 encode differently");
	CHECK((unsigned char)a.data[1] == 0x80, "0 is not 0x80 00..");
	v = key_decode_value((const unsigned char *)a.data, a.len, &used);
	CHECK(v != NULL && v->valuedouble == 0 && !signbit(v->valuedouble),
	    "0 does not decode to +0");
	cJSON_Delete(v);
	for (i = 0; i < nitems(bad); i++) {
		CHECK(key_decode_value(bad[i], sizeof(bad[i]), &used) == NULL,
		    "bad number %zu decodes", i);
		CHECK(key_skip_value(bad[i], sizeof(bad[i]), &used) == -1,
		    "bad number %zu skipped", i);
	}
	v = cJSON_CreateNumber(NAN);
	buf_reset(&a);
	buf_addc(&a, 'x');
	CHECK(key_append_value(&a, v) == -1 && a.len == 1,
	    "NaN encoded");
	cJSON_Delete(v);
	buf_free(&a);
	buf_free(&b);
	printf("keys: %zu numbers in order, -0 is 0, -0 and NaN patterns "
	    "refused\n", nitems(sorted));
}

/* Hand-made encodings the decoder must refuse, or accept. */
static void
test_bad_bytes(void)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
		int		 ok;
	} cases[] = {
		{ "", 0, 0 },
		{ "\x00", 1, 0 },		/* no such tag */
		{ "\x08", 1, 0 },
		{ "\xff", 1, 0 },
		{ "\x01", 1, 1 },		/* missing */
		{ "\x02", 1, 1 },
		{ "\x04\x00", 2, 1 },
		{ "\x04\x01", 2, 1 },
		{ "\x04\x02", 2, 0 },		/* not a boolean */
		{ "\x04", 1, 0 },
		{ "\x05\x00\x00", 3, 1 },
		{ "\x05" "a\x00\x01", 4, 0 },	/* bad escape */
		{ "\x05" "a\x00\x01\x00\x00", 6, 0 },
		{ "\x05" "a\x00\xfe\x00\x00", 6, 0 },
		{ "\x05" "a\x00", 3, 0 },
		{ "\x05" "a", 2, 0 },
		{ "\x06\x00", 2, 1 },
		{ "\x06\x01\x00", 3, 0 },	/* missing inside an array */
		{ "\x06\x02", 2, 0 },
		{ "\x07\x00", 2, 1 },
		{ "\x07\x01\x00\x00\x02\x00", 6, 1 },	/* {"": null} */
		{ "\x07\x01\x00\x00\x01\x00", 6, 0 },	/* missing field */
		{ "\x07\x02\x00\x00\x02\x00", 6, 0 },	/* bad field mark */
		{ "\x07\x01" "a\x00\x00", 5, 0 },	/* no field value */
		{ "\x03\x80\x00\x00\x00\x00\x00\x00", 8, 0 },
	};
	cJSON		*v;
	size_t		 i, used;

	for (i = 0; i < nitems(cases); i++) {
		const unsigned char *p = (const unsigned char *)cases[i].bytes;

		v = key_decode_value(p, cases[i].len, &used);
		CHECK((v != NULL) == cases[i].ok && (v == NULL ||
		    used == cases[i].len), "case %zu: decode %s", i,
		    v != NULL ? "accepts" : "refuses");
		cJSON_Delete(v);
		CHECK((key_skip_value(p, cases[i].len, &used) == 0) ==
		    cases[i].ok, "case %zu: skip", i);
	}
	v = key_decode((const unsigned char *)"", 0);
	CHECK(v != NULL && cJSON_GetArraySize(v) == 0, "empty key");
	cJSON_Delete(v);
	v = key_decode((const unsigned char *)"\x02\x02\x01", 3);
	CHECK(v != NULL && cJSON_GetArraySize(v) == 3 &&
	    is_missing(cJSON_GetArrayItem(v, 2)), "three values");
	cJSON_Delete(v);
	v = key_decode((const unsigned char *)"\x02\x02\x00", 3);
	CHECK(v == NULL, "trailing byte accepted");
	cJSON_Delete(v);
	printf("keys: %zu hand-made encodings accepted or refused as they "
	    "should\n", nitems(cases));
}

/* Byte strings with NULs against each other, as raw bytes. */
static void
test_nul_strings(void)
{
	static const char alphabet[] = { 0x00, 0x01, 'a', (char)0xfe,
	    (char)0xff };
	static char	 raw[NUL_STRINGS][8];
	static size_t	 rawlen[NUL_STRINGS];
	static struct buf enc[NUL_STRINGS];
	cJSON		*v;
	size_t		 i, j, k, used;
	int		 has_nul;
	long		 withnul = 0;

	for (i = 0; i < NUL_STRINGS; i++) {
		rawlen[i] = rnd_below(sizeof(raw[i]) + 1);
		has_nul = 0;
		for (k = 0; k < rawlen[i]; k++) {
			raw[i][k] = alphabet[rnd_below(sizeof(alphabet))];
			has_nul |= raw[i][k] == '\0';
		}
		withnul += has_nul;
		buf_init(&enc[i]);
		key_append_string(&enc[i], raw[i], rawlen[i]);
		CHECK(key_skip_value((const unsigned char *)enc[i].data,
		    enc[i].len, &used) == 0 && used == enc[i].len,
		    "string %zu not skipped", i);
		v = key_decode_value((const unsigned char *)enc[i].data,
		    enc[i].len, &used);
		if (has_nul)
			CHECK(v == NULL, "string %zu with NUL decodes", i);
		else
			CHECK(v != NULL && cJSON_IsString(v) &&
			    strlen(v->valuestring) == rawlen[i] &&
			    memcmp(v->valuestring, raw[i], rawlen[i]) == 0,
			    "string %zu decodes wrong", i);
		cJSON_Delete(v);
	}
	for (i = 0; i < NUL_STRINGS; i++)
		for (j = 0; j < NUL_STRINGS; j++)
			CHECK(bytes_cmp(raw[i], rawlen[i], raw[j], rawlen[j]) ==
			    buf_cmp(&enc[i], &enc[j]),
			    "strings %zu %zu out of order", i, j);
	for (i = 0; i < NUL_STRINGS; i++)
		buf_free(&enc[i]);
	printf("keys: %d byte strings (%ld with NUL): byte order kept, "
	    "skipped, NUL refused by the decoder\n", NUL_STRINGS, withnul);
}

static void
test_successor(void)
{
	static const unsigned char alphabet[] = { 0x00, 0x01, 0x7f, 0xfe,
	    0xff };
	struct buf	 p, s, k;
	size_t		 i, n, in = 0, above = 0;

	buf_init(&p);
	buf_init(&s);
	buf_init(&k);
	CHECK(key_prefix_successor(&p) == -1, "empty prefix has one");
	buf_add(&p, "\xff\xff\xff", 3);
	CHECK(key_prefix_successor(&p) == -1 && p.len == 3,
	    "all-0xff prefix has one");
	buf_reset(&p);
	buf_add(&p, "a\x01\xff\xff", 4);
	CHECK(key_prefix_successor(&p) == 0 && p.len == 2 &&
	    memcmp(p.data, "a\x02", 2) == 0, "a 01 ff ff");
	for (i = 0; i < SUCC_ROUNDS; i++) {
		buf_reset(&p);
		n = 1 + rnd_below(4);
		while (n-- > 0)
			buf_addc(&p, (char)alphabet[rnd_below(
			    sizeof(alphabet))]);
		buf_reset(&s);
		buf_add(&s, p.data, p.len);
		if (key_prefix_successor(&s) == -1) {
			for (n = 0; n < p.len; n++)
				CHECK((unsigned char)p.data[n] == 0xff,
				    "no successor for a prefix with one");
			continue;
		}
		/* the prefix followed by the largest bytes */
		buf_reset(&k);
		buf_add(&k, p.data, p.len);
		buf_add(&k, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
		CHECK(buf_cmp(&k, &s) < 0, "extension above successor");
		CHECK(buf_cmp(&p, &s) < 0, "prefix above successor");
		buf_reset(&k);
		if (rnd_below(2))
			buf_add(&k, p.data, p.len);
		n = rnd_below(4);
		while (n-- > 0)
			buf_addc(&k, (char)alphabet[rnd_below(
			    sizeof(alphabet))]);
		if (starts_with(&k, &p)) {
			in++;
			CHECK(buf_cmp(&k, &s) < 0, "extension above successor");
		} else if (buf_cmp(&k, &p) > 0) {
			above++;
			CHECK(buf_cmp(&k, &s) >= 0,
			    "non-extension below successor");
		}
	}
	CHECK(in > 1000 && above > 1000, "too few successor cases");
	buf_free(&p);
	buf_free(&s);
	buf_free(&k);
	printf("keys: %d successor trials (%zu extensions, %zu keys above)\n",
	    SUCC_ROUNDS, in, above);
}

static char *const index_fields[INDEX_FIELDS] = {
	"a", "_creationTime", "b",
};

/* A document with some of the index fields, in a random order. */
static cJSON *
gen_doc(void)
{
	cJSON	*doc;
	size_t	 i, order[INDEX_FIELDS + 1], t, j;

	doc = cJSON_CreateObject();
	for (i = 0; i < nitems(order); i++)
		order[i] = i;
	for (i = nitems(order) - 1; i > 0; i--) {
		j = rnd_below(i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < nitems(order); i++) {
		if (order[i] == INDEX_FIELDS) {
			/* a decoy that only a case-blind lookup finds */
			cJSON_AddItemToObject(doc, "A", cJSON_CreateNull());
			continue;
		}
		if (rnd_below(8) == 0)
			continue;	/* missing */
		cJSON_AddItemToObject(doc, index_fields[order[i]],
		    cJSON_Duplicate(pool[1 + rnd_below(rnd_below(2) ? 12 :
		    npool - 1)], 1));
	}
	return doc;
}

static void
check_decoded_key(const struct buf *key, const cJSON *doc, size_t nf,
    const char *id)
{
	cJSON		*arr, *c;
	size_t		 i;

	arr = key_decode((const unsigned char *)key->data, key->len);
	CHECK(arr != NULL && (size_t)cJSON_GetArraySize(arr) == nf + 1,
	    "key does not decode");
	if (arr == NULL)
		return;
	for (i = 0; i < nf; i++) {
		c = cJSON_GetArrayItem(arr, (int)i);
		CHECK(key_value_compare(c, cJSON_GetObjectItemCaseSensitive(
		    doc, index_fields[i])) == 0, "field %zu decodes wrong", i);
	}
	c = cJSON_GetArrayItem(arr, (int)nf);
	CHECK(cJSON_IsString(c) && strcmp(c->valuestring, id) == 0,
	    "id decodes wrong");
	cJSON_Delete(arr);
}

/* Whole keys of documents: tuple order, ranges on a first field. */
/* key_doc_id finds the id at the end, and only an id of that length. */
static void
check_doc_id(const struct buf *key, const char *id)
{
	char	 out[16];
	size_t	 n = strlen(id);

	memset(out, 'x', sizeof(out));
	CHECK(key_doc_id(key->data, key->len, n, out) == 0 &&
	    strcmp(out, id) == 0, "key_doc_id of a key ending in %s", id);
	CHECK(key_doc_id(key->data, key->len, n + 1, out) == -1 ||
	    key->len < n + 4, "key_doc_id takes a longer id than %s", id);
	CHECK(n < 2 || key_doc_id(key->data, key->len, n - 1, out) == -1,
	    "key_doc_id takes a shorter id than %s", id);
}

/* Keys that do not end with an id of the length asked for. */
static void
test_doc_id_bad(void)
{
	struct buf	 b;
	char		 out[8];

	buf_init(&b);
	key_append_string(&b, "abc", 3);
	key_append_number(&b, 1.5);
	CHECK(key_doc_id(b.data, b.len, 3, out) == -1, "a key ending in a "
	    "number has no id");
	CHECK(key_doc_id(b.data, 3, 3, out) == -1, "a short key has no id");
	CHECK(key_doc_id(b.data, 0, 0, out) == -1, "an empty key has no id");
	buf_reset(&b);
	key_append_string(&b, "a\0b", 3);
	CHECK(key_doc_id(b.data, b.len, 3, out) == -1 &&
	    key_doc_id(b.data, b.len, 4, out) == -1, "an id with a NUL is "
	    "refused");
	buf_reset(&b);
	key_append_string(&b, "abc", 3);
	CHECK(key_doc_id(b.data, b.len, 3, out) == 0 &&
	    strcmp(out, "abc") == 0, "a key of just the id");
	buf_free(&b);
}

static void
test_doc_keys(void)
{
	static cJSON	*docs[DOCS_PER_INDEX];
	static char	 ids[DOCS_PER_INDEX][8];
	static struct buf keys[DOCS_PER_INDEX];
	struct buf	 manual, p;
	size_t		 nf, i, j, f, n, corrupt_ok = 0;
	long		 pairs = 0, ranges = 0;
	int		 want, inrange, expect;

	buf_init(&manual);
	buf_init(&p);
	for (nf = 1; nf <= INDEX_FIELDS; nf++) {
		for (i = 0; i < DOCS_PER_INDEX; i++) {
			docs[i] = gen_doc();
			n = 1 + rnd_below(3);
			for (j = 0; j < n; j++)
				ids[i][j] = "abc"[rnd_below(3)];
			ids[i][n] = '\0';
			buf_init(&keys[i]);
			CHECK(key_encode_doc(&keys[i], docs[i], index_fields,
			    nf, ids[i]) == 0, "doc %zu has no key", i);
			buf_reset(&manual);
			for (f = 0; f < nf; f++)
				key_append_value(&manual,
				    cJSON_GetObjectItemCaseSensitive(docs[i],
				    index_fields[f]));
			key_append_string(&manual, ids[i], strlen(ids[i]));
			CHECK(buf_cmp(&manual, &keys[i]) == 0,
			    "doc key is not its values and id");
			check_decoded_key(&keys[i], docs[i], nf, ids[i]);
			check_doc_id(&keys[i], ids[i]);
		}
		for (i = 0; i < DOCS_PER_INDEX; i++)
			for (j = 0; j < DOCS_PER_INDEX; j++) {
				want = 0;
				for (f = 0; f < nf && want == 0; f++)
					want = sign(key_value_compare(
					    cJSON_GetObjectItemCaseSensitive(
					    docs[i], index_fields[f]),
					    cJSON_GetObjectItemCaseSensitive(
					    docs[j], index_fields[f])));
				if (want == 0)
					want = sign(strcmp(ids[i], ids[j]));
				CHECK(want == buf_cmp(&keys[i], &keys[j]),
				    "docs %zu %zu (%zu fields) out of order",
				    i, j, nf);
				pairs++;
			}
		/* eq on the first field is the range [P, succ(P)) */
		for (i = 0; i < DOCS_PER_INDEX; i += 10) {
			buf_reset(&p);
			key_append_value(&p, cJSON_GetObjectItemCaseSensitive(
			    docs[i], index_fields[0]));
			if (key_prefix_successor(&p) == -1)
				continue;
			buf_reset(&manual);
			key_append_value(&manual,
			    cJSON_GetObjectItemCaseSensitive(docs[i],
			    index_fields[0]));
			for (j = 0; j < DOCS_PER_INDEX; j++) {
				expect = key_value_compare(
				    cJSON_GetObjectItemCaseSensitive(docs[i],
				    index_fields[0]),
				    cJSON_GetObjectItemCaseSensitive(docs[j],
				    index_fields[0])) == 0;
				inrange = buf_cmp(&manual, &keys[j]) <= 0 &&
				    buf_cmp(&keys[j], &p) < 0;
				CHECK(expect == inrange, "range of doc %zu "
				    "and doc %zu", i, j);
				ranges++;
			}
		}
		for (i = 0; i < DOCS_PER_INDEX; i++) {
			if (nf == INDEX_FIELDS && corrupt_ok < CORRUPT_KEYS) {
				corrupt_all(&keys[i]);
				corrupt_ok++;
			}
			buf_free(&keys[i]);
			cJSON_Delete(docs[i]);
		}
	}
	buf_free(&manual);
	buf_free(&p);
	printf("keys: %ld document key pairs in tuple order, %ld range "
	    "memberships, keys decode to their fields\n", pairs, ranges);
}

static void
test_doc_limits(void)
{
	static char *const one[] = { "a" };
	static char *const upper[] = { "A" };
	struct buf	 k, e;
	cJSON		*doc;
	char		*s;
	size_t		 n = KEY_MAX_BYTES - 3 - 4;	/* string and "x" */

	buf_init(&k);
	buf_init(&e);
	s = xmalloc(n + 2);
	memset(s, 'q', n + 1);
	s[n] = '\0';
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "a", s);
	CHECK(key_encode_doc(&k, doc, one, 1, "x") == 0 &&
	    k.len == KEY_MAX_BYTES, "key of exactly the limit refused");
	CHECK(key_encode_doc(&k, doc, one, 1, "xy") == -1 && k.len == 0,
	    "key one byte over the limit accepted");
	cJSON_Delete(doc);
	s[n] = 'q';
	s[n + 1] = '\0';
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "a", s);
	CHECK(key_encode_doc(&k, doc, one, 1, "x") == -1 && k.len == 0,
	    "long value accepted");
	cJSON_Delete(doc);
	free(s);

	doc = cJSON_Parse("{\"A\": 1, \"a\": 2, \"a\": 3}");
	CHECK(key_encode_doc(&k, doc, one, 1, "i") == 0, "doc refused");
	buf_reset(&e);
	key_append_number(&e, 2);
	key_append_string(&e, "i", 1);
	CHECK(buf_cmp(&k, &e) == 0, "lookup is not case-sensitive, first");
	CHECK(key_encode_doc(&k, doc, upper, 1, "i") == 0, "doc refused");
	buf_reset(&e);
	key_append_number(&e, 1);
	key_append_string(&e, "i", 1);
	CHECK(buf_cmp(&k, &e) == 0, "field A");
	cJSON_Delete(doc);
	doc = cJSON_Parse("{\"b\": 1}");
	CHECK(key_encode_doc(&k, doc, one, 1, "i") == 0, "doc refused");
	CHECK(k.len == 5 && k.data[0] == KEY_TAG_MISSING, "missing field");
	cJSON_Delete(doc);
	doc = cJSON_Parse("[1]");
	CHECK(key_encode_doc(&k, doc, one, 1, "i") == -1, "array as doc");
	cJSON_Delete(doc);
	buf_free(&k);
	buf_free(&e);
	printf("keys: documents keys stop at %d bytes, lookups exact\n",
	    KEY_MAX_BYTES);
}

static cJSON *
nest(int depth, int object)
{
	cJSON	*v, *outer;
	int	 i;

	v = cJSON_CreateNumber(1);
	for (i = 0; i < depth; i++) {
		if (object == 1 || (object == 2 && i % 2)) {
			outer = cJSON_CreateObject();
			cJSON_AddItemToObject(outer, "a", v);
		} else {
			outer = cJSON_CreateArray();
			cJSON_AddItemToArray(outer, v);
		}
		v = outer;
	}
	return v;
}

static void
test_depth(void)
{
	struct buf	 b;
	cJSON		*v, *d, *bad;
	unsigned char	*p;
	size_t		 used, n;
	int		 kind;

	buf_init(&b);
	for (kind = 0; kind < 3; kind++) {
		v = nest(KEY_MAX_DEPTH, kind);
		buf_reset(&b);
		CHECK(key_append_value(&b, v) == 0, "depth %d refused",
		    KEY_MAX_DEPTH);
		d = key_decode_value((const unsigned char *)b.data, b.len,
		    &used);
		CHECK(d != NULL && key_value_compare(d, v) == 0,
		    "depth %d does not decode", KEY_MAX_DEPTH);
		cJSON_Delete(d);
		/* wrap the encoding by hand: one level too deep */
		n = b.len + (kind == 1 ? 6 : 2);
		p = xmalloc(n);
		if (kind == 1) {
			memcpy(p, "\x07\x01" "a\x00\x00", 5);
			memcpy(p + 5, b.data, b.len);
		} else {
			p[0] = KEY_TAG_ARRAY;
			memcpy(p + 1, b.data, b.len);
		}
		p[n - 1] = 0;
		CHECK(key_decode_value(p, n, &used) == NULL,
		    "depth %d decodes", KEY_MAX_DEPTH + 1);
		CHECK(key_skip_value(p, n, &used) == -1,
		    "depth %d skipped", KEY_MAX_DEPTH + 1);
		free(p);
		cJSON_Delete(v);

		v = nest(KEY_MAX_DEPTH + 1, kind);
		buf_reset(&b);
		buf_add(&b, "xyz", 3);
		CHECK(key_append_value(&b, v) == -1 && b.len == 3 &&
		    b.data[3] == '\0', "depth %d encoded",
		    KEY_MAX_DEPTH + 1);
		cJSON_Delete(v);
	}

	/* not JSON values, at the top and inside */
	bad = cJSON_CreateRaw("1");
	buf_reset(&b);
	CHECK(key_append_value(&b, bad) == -1 && b.len == 0, "raw encoded");
	v = cJSON_CreateArray();
	cJSON_AddItemToArray(v, cJSON_CreateNull());
	cJSON_AddItemToArray(v, bad);
	buf_add(&b, "xy", 2);
	CHECK(key_append_value(&b, v) == -1 && b.len == 2, "raw in array");
	cJSON_Delete(v);
	v = cJSON_CreateNull();
	v->type = cJSON_Invalid;
	CHECK(key_append_value(&b, v) == -1 && b.len == 2, "invalid encoded");
	cJSON_Delete(v);
	buf_free(&b);
	printf("keys: depth %d encodes and decodes, depth %d refused both "
	    "ways; raw and invalid items refused\n", KEY_MAX_DEPTH,
	    KEY_MAX_DEPTH + 1);
}

static long	 corrupt_valid, corrupt_invalid;

/* Decode p (exactly n bytes, so a read past the end is caught). */
static void
decode_check(const unsigned char *src, size_t n)
{
	struct buf	 b;
	unsigned char	*p;
	cJSON		*arr, *v;
	size_t		 used = 0, skipped = 0;
	int		 sk;

	p = xmalloc(n);
	if (n > 0)
		memcpy(p, src, n);
	buf_init(&b);
	arr = key_decode(p, n);
	if (arr != NULL) {
		corrupt_valid++;
		CHECK(reencode(&b, arr) == 0 && b.len == n &&
		    (n == 0 || memcmp(b.data, p, n) == 0),
		    "decoded key re-encodes differently");
		cJSON_Delete(arr);
	} else
		corrupt_invalid++;
	v = key_decode_value(p, n, &used);
	sk = key_skip_value(p, n, &skipped);
	if (v != NULL) {
		CHECK(sk == 0 && skipped == used, "skip disagrees");
		buf_reset(&b);
		CHECK(key_append_value(&b, is_missing(v) ? NULL : v) == 0 &&
		    b.len == used && memcmp(b.data, p, used) == 0,
		    "decoded value re-encodes differently");
		cJSON_Delete(v);
	}
	buf_free(&b);
	free(p);
}

/* Every truncation and single-byte corruptions of one encoding. */
static void
corrupt_all(const struct buf *e)
{
	static const unsigned char repl[] = { 0x00, 0x01, 0x02, 0xff };
	unsigned char	*p;
	size_t		 i, k;

	for (i = 0; i < e->len; i++)
		decode_check((const unsigned char *)e->data, i);
	p = xmalloc(e->len + 1);
	for (i = 0; i < e->len; i++) {
		for (k = 0; k <= nitems(repl); k++) {
			memcpy(p, e->data, e->len);
			p[i] = k < nitems(repl) ? repl[k] :
			    p[i] ^ (unsigned char)(1 + rnd_below(255));
			decode_check(p, e->len);
		}
	}
	free(p);
}

static void
test_corruption(void)
{
	size_t	 i, k, used;

	for (i = 0; i < npool; i++) {
		corrupt_all(&pool_enc[i]);
		/* a cut value is never a whole one */
		for (k = 0; k < pool_enc[i].len; k++)
			CHECK(key_skip_value((const unsigned char *)
			    pool_enc[i].data, k, &used) == -1,
			    "value %zu: %zu-byte prefix skipped", i, k);
	}
	printf("keys: truncations and corruptions of %zu values and %d "
	    "document keys: %ld decoded and re-encoded alike, %ld refused\n",
	    npool, CORRUPT_KEYS, corrupt_valid, corrupt_invalid);
}

int
main(void)
{
	size_t	 i;

	build_pool();
	test_pairs();
	test_roundtrip();
	test_numbers();
	test_bad_bytes();
	test_nul_strings();
	test_successor();
	test_doc_keys();
	test_doc_id_bad();
	test_doc_limits();
	test_depth();
	test_corruption();
	for (i = 0; i < npool; i++) {
		cJSON_Delete(pool[i]);
		buf_free(&pool_enc[i]);
	}
	printf("keys: %ld checks, %d failed\n", nchecks, nfail);
	return nfail == 0 ? 0 : 1;
}
