/*
 * Unit tests for common/json.c: what json_parse accepts and refuses (one
 * case per error kind and the traps of cJSON), the number printer and its
 * round trip, canonical member order, string escaping, and the UTF-8
 * helpers.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

#define ROUNDTRIP_RUNS	200000	/* random doubles printed and read back */
#define CUT_RUNS	2000	/* random UTF-8 strings cut at every length */
#define CUT_MAXCP	40	/* code points in one random string */
#define STRPOS_MAXLEN	40	/* strings of 1..39 bytes, five words */

#define CHECK_SEED	0x9e3779b97f4a7c15ULL	/* fixed: runs repeat */

#include "check.h"

struct parse_case {
	const char	*text;
	int		 max_depth;
	enum json_err	 want;
};

static const struct parse_case parse_cases[] = {
	{ "null", 8, JSON_OK },
	{ " \t\r\n1 \n", 8, JSON_OK },
	{ "[1,2,{\"a\":[]}]", 8, JSON_OK },
	{ "{}", 8, JSON_OK },
	{ "\"x\"", 0, JSON_OK },
	{ "-0.5e-3", 8, JSON_OK },
	{ "1E+5", 8, JSON_OK },
	{ "1e-999", 8, JSON_OK },
	{ "\"\\ud83d\\ude00\"", 8, JSON_OK },
	{ "\"\\\\u0000\"", 8, JSON_OK },	/* escaped backslash, then text */
	{ "\"\\\\\\\\u0000\"", 8, JSON_OK },
	{ "{\"a\":1,\"A\":2}", 8, JSON_OK },
	{ "[\"[[[[{{{{\"]", 1, JSON_OK },	/* brackets in a string */
	{ "", 8, JSON_ERR_SYNTAX },
	{ "   ", 8, JSON_ERR_SYNTAX },
	{ "[1,2] x", 8, JSON_ERR_SYNTAX },
	{ "[1,2]]", 8, JSON_ERR_SYNTAX },
	{ "1 2", 8, JSON_ERR_SYNTAX },
	{ "01", 8, JSON_ERR_SYNTAX },
	{ "1.", 8, JSON_ERR_SYNTAX },
	{ ".5", 8, JSON_ERR_SYNTAX },
	{ "+1", 8, JSON_ERR_SYNTAX },
	{ "-", 8, JSON_ERR_SYNTAX },
	{ "1e", 8, JSON_ERR_SYNTAX },
	{ "[1,]", 8, JSON_ERR_SYNTAX },
	{ "{\"a\"}", 8, JSON_ERR_SYNTAX },
	{ "{\"a\":1,}", 8, JSON_ERR_SYNTAX },
	{ "tru", 8, JSON_ERR_SYNTAX },
	{ "\"abc", 8, JSON_ERR_SYNTAX },
	{ "\"\\x\"", 8, JSON_ERR_SYNTAX },
	{ "\"\\ud800\"", 8, JSON_ERR_SYNTAX },
	{ "\"a\tb\"", 8, JSON_ERR_SYNTAX },	/* raw control byte */
	{ "[1,\f2]", 8, JSON_ERR_SYNTAX },	/* not JSON whitespace */
	{ "\"\\u0000\"", 8, JSON_ERR_NUL },
	{ "\"ab\\u0000cd\"", 8, JSON_ERR_NUL },
	{ "\"\\\\\\u0000\"", 8, JSON_ERR_NUL },	/* \\ then \u0000 */
	{ "{\"a\\u0000b\":1}", 8, JSON_ERR_NUL },
	{ "1e999", 8, JSON_ERR_NUMBER },
	{ "[0,-1e999]", 8, JSON_ERR_NUMBER },
	{ "{\"a\":{\"b\":1e400}}", 8, JSON_ERR_NUMBER },
	{ "[]", 0, JSON_ERR_DEPTH },
	{ "{\"a\":1,\"a\":2}", 8, JSON_ERR_DUPKEY },
	{ "{\"a\":{\"b\":1,\"c\":2,\"b\":3}}", 8, JSON_ERR_DUPKEY },
	{ "[{\"x\":[{\"k\":1,\"k\":1}]}]", 8, JSON_ERR_DUPKEY },
	{ "{\"\\u0041\":1,\"A\":2}", 8, JSON_ERR_DUPKEY },
};

static void
test_parse_cases(void)
{
	const struct parse_case	*c;
	enum json_err		 err;
	cJSON			*j;
	size_t			 i;

	for (i = 0; i < nitems(parse_cases); i++) {
		c = &parse_cases[i];
		j = json_parse(c->text, strlen(c->text), c->max_depth, &err);
		CHECK(err == c->want, "parse %s: got %s, want %s", c->text,
		    json_strerror(err), json_strerror(c->want));
		CHECK((j != NULL) == (c->want == JSON_OK),
		    "parse %s: tree %p", c->text, (void *)j);
		cJSON_Delete(j);
	}
	printf("parse: %zu cases\n", nitems(parse_cases));
}

/* The length bounds the text: what follows it is never read as JSON. */
static void
test_parse_length(void)
{
	const char	*s = "[1,2]XYZ";
	enum json_err	 err;
	cJSON		*j;
	char		*exact;

	j = json_parse(s, 5, 8, &err);
	CHECK(j != NULL && err == JSON_OK, "length 5 of %s", s);
	cJSON_Delete(j);
	j = json_parse(s, 4, 8, &err);
	CHECK(j == NULL && err == JSON_ERR_SYNTAX, "length 4 of %s", s);
	/* An exact-size heap copy without a NUL (for the sanitizers). */
	exact = xmalloc(5);
	memcpy(exact, "12345", 5);
	j = json_parse(exact, 5, 8, &err);
	CHECK(j != NULL && j->valuedouble == 12345, "unterminated number");
	cJSON_Delete(j);
	memcpy(exact, "\"abc\"", 5);
	j = json_parse(exact, 5, 8, &err);
	CHECK(j != NULL && strcmp(j->valuestring, "abc") == 0,
	    "unterminated string");
	cJSON_Delete(j);
	free(exact);
	/* A NUL byte is not whitespace. */
	j = json_parse("[1]\0", 4, 8, &err);
	CHECK(j == NULL && err == JSON_ERR_SYNTAX, "trailing NUL byte");
	j = json_parse("[1,\0 2]", 7, 8, &err);
	CHECK(j == NULL && err == JSON_ERR_SYNTAX, "NUL byte inside");
	printf("parse: length bounds\n");
}

/* d nested arrays, or objects {"a":...} when obj is set, around 0. */
static char *
nested(int d, int obj, size_t *lenp)
{
	struct buf	 b;
	int		 i;

	buf_init(&b);
	for (i = 0; i < d; i++)
		buf_adds(&b, obj ? "{\"a\":" : "[");
	buf_addc(&b, '0');
	for (i = 0; i < d; i++)
		buf_addc(&b, obj ? '}' : ']');
	return buf_steal(&b, lenp);
}

static void
test_parse_depth(void)
{
	static const int	 maxes[] = { 1, 10, JSON_MAX_DEPTH, 1000 };
	enum json_err		 err;
	cJSON			*j;
	size_t			 i, len;
	char			*s;
	int			 obj, m;

	for (i = 0; i < nitems(maxes); i++)
		for (obj = 0; obj < 2; obj++) {
			m = maxes[i];
			s = nested(m, obj, &len);
			j = json_parse(s, len, m, &err);
			CHECK(j != NULL, "depth %d, max %d: %s", m, m,
			    json_strerror(err));
			CHECK(json_depth(j) == m, "json_depth %d, want %d",
			    json_depth(j), m);
			cJSON_Delete(j);
			free(s);
			s = nested(m + 1, obj, &len);
			j = json_parse(s, len, m, &err);
			CHECK(j == NULL && err == JSON_ERR_DEPTH,
			    "depth %d, max %d: %s", m + 1, m,
			    json_strerror(err));
			cJSON_Delete(j);
			free(s);
		}
	/* Deeper than cJSON's own limit: refused as depth, not recursed. */
	s = nested(200000, 0, &len);
	j = json_parse(s, len, 1000000, &err);
	CHECK(j == NULL && err == JSON_ERR_DEPTH, "depth 200000: %s",
	    json_strerror(err));
	j = json_parse(s, len, JSON_MAX_DEPTH, &err);
	CHECK(j == NULL && err == JSON_ERR_DEPTH, "depth 200000, max 64");
	free(s);
	/* Deep but unbalanced text is still refused. */
	j = json_parse("[[[[[[[[[[", 10, 5, &err);
	CHECK(j == NULL && err != JSON_OK, "unbalanced");
	CHECK(json_depth(NULL) == 0, "json_depth(NULL)");
	printf("parse: depth limits\n");
}

/* An object of n distinct members, then optionally a repeat of one. */
static void
test_parse_dupkeys_large(void)
{
	struct buf	 b;
	enum json_err	 err;
	cJSON		*j;
	int		 i, n = 5000;

	buf_init(&b);
	buf_addc(&b, '{');
	for (i = 0; i < n; i++)
		buf_printf(&b, "%s\"k%d\":%d", i > 0 ? "," : "", i, i);
	buf_addc(&b, '}');
	j = json_parse(b.data, b.len, 8, &err);
	CHECK(j != NULL, "%d distinct members: %s", n, json_strerror(err));
	cJSON_Delete(j);
	b.len--;
	buf_adds(&b, ",\"k1234\":0}");
	j = json_parse(b.data, b.len, 8, &err);
	CHECK(j == NULL && err == JSON_ERR_DUPKEY, "%d members, one repeated",
	    n + 1);
	buf_free(&b);
	printf("parse: duplicate among %d members\n", n);
}

struct print_case {
	double		 d;
	const char	*want;
};

static void
test_print_numbers(void)
{
	const struct print_case	 cases[] = {
		{ 0.0, "0" },
		{ -0.0, "0" },
		{ 1, "1" },
		{ -1, "-1" },
		{ 9007199254740991.0, "9007199254740991" },
		{ -9007199254740991.0, "-9007199254740991" },
		{ 9007199254740992.0, "9007199254740992" },
		{ 9007199254740994.0, "9007199254740994" },
		{ 18014398509481984.0, "18014398509481984" },
		{ 1e15, "1000000000000000" },
		{ 1795627514490000.0, "1795627514490000" },
		{ 1.5, "1.5" },
		{ 0.1, "0.1" },
		{ 1e-7, "1e-07" },
		{ 1e300, "1e+300" },
		{ 1764094628123.456, "1764094628123.456" },
		{ -1e21, "-1e+21" },
		{ 0.30000000000000004, "0.30000000000000004" },
		{ 5e-324, "4.94065645841247e-324" },
		{ INFINITY, "null" },
		{ NAN, "null" },
	};
	struct buf		 b;
	size_t			 i;

	buf_init(&b);
	for (i = 0; i < nitems(cases); i++) {
		buf_reset(&b);
		json_print_number(&b, cases[i].d);
		CHECK(b.data != NULL && strcmp(b.data, cases[i].want) == 0,
		    "print %.17g: got %s, want %s", cases[i].d,
		    b.data != NULL ? b.data : "(none)", cases[i].want);
	}
	buf_free(&b);
	printf("print: %zu numbers\n", nitems(cases));
}

static double
random_double(void)
{
	uint64_t	 u;
	double		 d;

	do {
		u = rnd();
		memcpy(&d, &u, sizeof(d));
	} while (!isfinite(d));
	return d;
}

/* buf_add_i64 and buf_add_u64 write what printf's %lld and %llu do. */
static void
test_print_ints(void)
{
	static const int64_t	 edges[] = { 0, 1, -1, 9, 10, -10, 99, 100,
	    INT64_MAX, INT64_MIN, INT64_MIN + 1, 1000000000000000000LL };
	struct buf		 b;
	char			 want[32];
	int64_t			 v;
	uint64_t		 u;
	int			 i;

	buf_init(&b);
	for (i = 0; i < ROUNDTRIP_RUNS; i++) {
		if (i < (int)nitems(edges))
			v = edges[i];
		else
			v = (int64_t)(rnd() >> (rnd() % 64));
		if (i % 2 == 1 && v != INT64_MIN)	/* -INT64_MIN overflows */
			v = -v;
		buf_reset(&b);
		buf_add_i64(&b, v);
		buf_addc(&b, '\0');
		snprintf(want, sizeof(want), "%lld", (long long)v);
		CHECK(strcmp(b.data, want) == 0, "i64 %s: got %s", want,
		    b.data);
		u = i < 3 ? (uint64_t)i * UINT64_MAX / 2 : rnd() >> (i % 64);
		buf_reset(&b);
		buf_add_u64(&b, u);
		buf_addc(&b, '\0');
		snprintf(want, sizeof(want), "%llu", (unsigned long long)u);
		CHECK(strcmp(b.data, want) == 0, "u64 %s: got %s", want,
		    b.data);
		if (nfail > CHECK_MAX_REPORTS)
			break;
	}
	buf_free(&b);
	printf("print: %d integers of each sign as printf\n", i);
}

/* What json_print_number printed for every number before print_millis. */
static void
print_general(char *out, size_t len, double d)
{
	int	 prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(out, len, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			return;
	}
	snprintf(out, len, "%.17g", d);
}

/*
 * Numbers of at most three decimals are printed without snprintf; the
 * text must be the one the general path gives, on both sides of 2^42.
 */
static void
test_print_millis(void)
{
	static const double	 edges[] = { 0.001, -0.001, 0.5, -0.5, 0.01,
	    0.1, 0.999, 1.001, 1764094628123.456, 1764094628123.45,
	    1764094628123.4, 4398046511103.999, 4398046511104.001,
	    -4398046511103.999, 123456.789, 1e-3 * 7 };
	struct buf		 b;
	char			 want[64];
	double			 d;
	size_t			 i;
	int			 n;

	buf_init(&b);
	for (n = 0; n < ROUNDTRIP_RUNS + (int)nitems(edges); n++) {
		if (n < (int)nitems(edges))
			d = edges[n];
		else if (n % 3 == 0)	/* a ts in milliseconds */
			d = (double)(int64_t)(1700000000000000ULL +
			    rnd() % 100000000000000ULL) / 1000.0;
		else if (n % 3 == 1)	/* anywhere up to 2^43 */
			d = (double)(int64_t)(rnd() % (1ULL << 53)) / 1000.0;
		else
			d = -(double)(int64_t)(rnd() % 1000000ULL) / 1000.0;
		if (d == trunc(d))
			continue;
		buf_reset(&b);
		json_print_number(&b, d);
		print_general(want, sizeof(want), d);
		CHECK(strcmp(b.data, want) == 0, "print %.17g: got %s, "
		    "want %s", d, b.data, want);
		if (nfail > CHECK_MAX_REPORTS)
			break;
	}
	i = (size_t)n;
	buf_free(&b);
	printf("print: %zu numbers of three decimals as the general path\n",
	    i);
}

static void
test_print_roundtrip(void)
{
	struct buf	 b;
	enum json_err	 err;
	cJSON		*j;
	double		 d, back;
	int		 i;

	buf_init(&b);
	for (i = 0; i < ROUNDTRIP_RUNS; i++) {
		switch (i % 4) {
		case 0:
			d = random_double();
			break;
		case 1:	/* integral, below 2^53 */
			d = (double)((int64_t)(rnd() >> 11) -
			    (int64_t)(1LL << 52));
			break;
		case 2:	/* a few decimals, like timestamps and prices */
			d = (double)(int64_t)(rnd() % 100000000000000ULL) /
			    1000.0;
			break;
		default:
			d = ldexp((double)(rnd() >> 11), (int)(rnd() % 200) -
			    100);
			break;
		}
		buf_reset(&b);
		json_print_number(&b, d);
		back = strtod(b.data, NULL);
		CHECK(back == d, "round trip %.17g: printed %s", d, b.data);
		if (d == trunc(d) && fabs(d) < JSON_SAFE_INT)
			CHECK(strspn(b.data, "-0123456789") == b.len,
			    "integer %.17g printed as %s", d, b.data);
		else
			CHECK(b.len <= 24, "%.17g printed long: %s", d,
			    b.data);
		if (i % 16 == 0) {
			j = json_parse(b.data, b.len, 1, &err);
			CHECK(j != NULL && cJSON_IsNumber(j) &&
			    j->valuedouble == d, "json_parse of %s", b.data);
			cJSON_Delete(j);
		}
		if (nfail > 20)
			break;
	}
	/* The shortest form: 15 digits when those are enough. */
	buf_reset(&b);
	json_print_number(&b, 123456.789);
	CHECK(strcmp(b.data, "123456.789") == 0, "shortest: %s", b.data);
	buf_free(&b);
	printf("print: %d random numbers read back equal\n", i);
}

static void
test_print_tree(void)
{
	const char	*in = "{\"b\":1,\"a\":{\"d\":[true,false,null],"
	    "\"c\":\"x\"},\"ab\":3,\"\":0,\"\xc3\xa9\":1,\"Z\":2,"
	    "\"a\\u0000\":4}";
	const char	*text = "{\"b\":1,\"a\":{\"d\":[true,false,null],"
	    "\"c\":\"x\"},\"ab\":3,\"\":0,\"\xc3\xa9\":1,\"Z\":2}";
	const char	*canon = "{\"\":0,\"Z\":2,\"a\":{\"c\":\"x\","
	    "\"d\":[true,false,null]},\"ab\":3,\"b\":1,\"\xc3\xa9\":1}";
	struct buf	 b;
	enum json_err	 err;
	cJSON		*j, *j2, *arr;

	buf_init(&b);
	j = json_parse(in, strlen(in), 8, &err);
	CHECK(j == NULL && err == JSON_ERR_NUL, "member name with NUL");
	j = json_parse(text, strlen(text), 8, &err);
	CHECK(j != NULL, "parse tree: %s", json_strerror(err));
	if (j == NULL)
		return;
	json_print(&b, j);
	CHECK(strcmp(b.data, text) == 0, "print keeps order: %s", b.data);
	buf_reset(&b);
	json_print_canonical(&b, j);
	CHECK(strcmp(b.data, canon) == 0, "canonical: %s", b.data);
	/* Canonical text is a fixed point, whatever the input order. */
	j2 = json_parse(canon, strlen(canon), 8, &err);
	buf_reset(&b);
	json_print_canonical(&b, j2);
	CHECK(strcmp(b.data, canon) == 0, "canonical of canonical");
	cJSON_Delete(j2);
	/* Lookups are case-sensitive and need an object. */
	CHECK(json_get(j, "Z") != NULL && json_get(j, "z") == NULL,
	    "json_get case");
	CHECK(json_get(j, "a") != NULL && json_get(json_get(j, "a"), "c") !=
	    NULL, "json_get nested");
	CHECK(json_get(json_get(json_get(j, "a"), "d"), "0") == NULL,
	    "json_get on an array");
	CHECK(json_get(NULL, "a") == NULL, "json_get(NULL)");
	CHECK(json_depth(j) == 3, "json_depth %d", json_depth(j));
	cJSON_Delete(j);

	/* Prefixes sort first; bytes compare unsigned. */
	j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "ab", 2);
	cJSON_AddNumberToObject(j, "\xff", 3);
	cJSON_AddNumberToObject(j, "a", 1);
	cJSON_AddNumberToObject(j, "abc", 4);
	cJSON_AddItemToObject(j, "raw", cJSON_CreateRaw("{\"x\":[1]}"));
	arr = cJSON_AddArrayToObject(j, "big");
	cJSON_AddItemToArray(arr, cJSON_CreateNumber(1795627514490000.0));
	cJSON_AddItemToArray(arr, cJSON_CreateNumber(-0.0));
	buf_reset(&b);
	json_print_canonical(&b, j);
	CHECK(strcmp(b.data, "{\"a\":1,\"ab\":2,\"abc\":4,"
	    "\"big\":[1795627514490000,0],\"raw\":{\"x\":[1]},\"\xff\":3}") ==
	    0, "canonical prefixes: %s", b.data);
	buf_reset(&b);
	json_print(&b, j);
	CHECK(strcmp(b.data, "{\"ab\":2,\"\xff\":3,\"a\":1,\"abc\":4,"
	    "\"raw\":{\"x\":[1]},\"big\":[1795627514490000,0]}") == 0,
	    "print built tree: %s", b.data);
	cJSON_Delete(j);
	buf_free(&b);
	printf("print: trees, canonical order, lookups\n");
}

static void
test_print_string(void)
{
	const char	 in[] = "a\"b\\c/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9\0z";
	const char	*want = "\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f"
	    "\x7f\xc3\xa9\\u0000z\"";
	struct buf	 b;
	enum json_err	 err;
	cJSON		*j;
	int		 c;
	char		 one;

	buf_init(&b);
	json_print_string(&b, in, sizeof(in) - 1);
	CHECK(strcmp(b.data, want) == 0, "escape: %s", b.data);
	/* Every byte below 0x20 comes back through the parser. */
	for (c = 1; c < 0x20; c++) {
		one = (char)c;
		buf_reset(&b);
		json_print_string(&b, &one, 1);
		j = json_parse(b.data, b.len, 1, &err);
		CHECK(j != NULL && cJSON_IsString(j) &&
		    (unsigned char)j->valuestring[0] == c &&
		    j->valuestring[1] == '\0', "control 0x%02x as %s", c,
		    b.data);
		cJSON_Delete(j);
	}
	buf_reset(&b);
	json_print_string(&b, "", 0);
	CHECK(strcmp(b.data, "\"\"") == 0, "empty string");
	buf_free(&b);
	printf("print: string escapes\n");
}

/*
 * Strings are scanned and printed eight bytes at a time: a byte that
 * needs care (a quote, a backslash, a control byte) is found in every
 * position of a word and of the tail after the last whole word, and
 * bytes that do not (space, DEL, UTF-8) are left alone there.
 */
static void
test_string_positions(void)
{
	static const unsigned char	 special[] = { '"', '\\', '\n', 0x01,
					    0x1f };
	static const unsigned char	 plain[] = { ' ', 0x7f, 0x80, 0xc3 };
	struct buf			 b, t;
	enum json_err			 err;
	cJSON				*j;
	char				 s[STRPOS_MAXLEN];
	size_t				 len, p, k;
	int				 n = 0;

	buf_init(&b);
	buf_init(&t);
	for (len = 1; len < sizeof(s); len++)
		for (p = 0; p < len; p++) {
			for (k = 0; k < sizeof(special); k++) {
				memset(s, 'a', len);
				s[p] = (char)special[k];
				buf_reset(&b);
				json_print_string(&b, s, len);
				CHECK(b.len == len + 3 + (special[k] < 0x20 &&
				    special[k] != '\n' ? 4 : 0),
				    "0x%02x at %zu of %zu printed as %s",
				    special[k], p, len, b.data);
				j = json_parse(b.data, b.len, 1, &err);
				CHECK(j != NULL && cJSON_IsString(j) &&
				    strlen(j->valuestring) == len &&
				    memcmp(j->valuestring, s, len) == 0,
				    "0x%02x at %zu of %zu: %s", special[k], p,
				    len, json_strerror(err));
				cJSON_Delete(j);
				/* The raw byte inside a string. */
				buf_reset(&t);
				buf_addc(&t, '"');
				buf_add(&t, s, len);
				buf_addc(&t, '"');
				j = json_parse(t.data, t.len, 1, &err);
				if (special[k] < 0x20)
					CHECK(j == NULL &&
					    err == JSON_ERR_SYNTAX,
					    "raw 0x%02x at %zu of %zu taken",
					    special[k], p, len);
				cJSON_Delete(j);
				n++;
			}
			for (k = 0; k < sizeof(plain); k++) {
				memset(s, 'a', len);
				s[p] = (char)plain[k];
				buf_reset(&b);
				json_print_string(&b, s, len);
				CHECK(b.len == len + 2 &&
				    memcmp(b.data + 1, s, len) == 0,
				    "0x%02x at %zu of %zu printed as %s",
				    plain[k], p, len, b.data);
				n++;
			}
			/* \u0000 starting at p. */
			if (p + 6 <= len) {
				memset(s, 'a', len);
				memcpy(s + p, "\\u0000", 6);
				buf_reset(&t);
				buf_addc(&t, '"');
				buf_add(&t, s, len);
				buf_addc(&t, '"');
				j = json_parse(t.data, t.len, 1, &err);
				CHECK(j == NULL && err == JSON_ERR_NUL,
				    "\\u0000 at %zu of %zu taken", p, len);
				cJSON_Delete(j);
			}
		}
	buf_free(&b);
	buf_free(&t);
	printf("strings: %d bytes that need care or not, at every position\n",
	    n);
}

static void
test_get_int(void)
{
	struct {
		double	 d;
		int64_t	 min, max;
		int	 ok;
	} cases[] = {
		{ 0, 0, 10, 1 },
		{ -0.0, 0, 10, 1 },
		{ 10, 0, 10, 1 },
		{ 11, 0, 10, 0 },
		{ -1, 0, 10, 0 },
		{ 1.5, 0, 10, 0 },
		{ 9007199254740992.0, INT64_MIN, INT64_MAX, 1 },
		{ -9007199254740992.0, INT64_MIN, INT64_MAX, 1 },
		{ 9007199254740994.0, INT64_MIN, INT64_MAX, 0 },
		{ 1e300, INT64_MIN, INT64_MAX, 0 },
		{ 2147483647, 0, 2147483647, 1 },
		{ 2147483648.0, 0, 2147483647, 0 },
	};
	cJSON	*v;
	int64_t	 out;
	size_t	 i;
	int	 ok;

	for (i = 0; i < nitems(cases); i++) {
		v = cJSON_CreateNumber(cases[i].d);
		out = -12345;
		ok = json_get_int(v, cases[i].min, cases[i].max, &out);
		CHECK(ok == cases[i].ok, "get_int %.17g in %" PRId64 "..%"
		    PRId64 ": %d", cases[i].d, cases[i].min, cases[i].max, ok);
		if (ok)
			CHECK(out == (int64_t)cases[i].d, "get_int value %"
			    PRId64, out);
		else
			CHECK(out == -12345, "get_int wrote on failure");
		cJSON_Delete(v);
	}
	v = cJSON_CreateString("1");
	CHECK(json_get_int(v, 0, 10, &out) == 0, "get_int of a string");
	cJSON_Delete(v);
	CHECK(json_get_int(NULL, 0, 10, &out) == 0, "get_int of NULL");
	printf("get_int: %zu cases\n", nitems(cases));
}

static void
test_hash(void)
{
	CHECK(json_hash("", 0) == 0xcbf29ce484222325ULL, "fnv1a empty");
	CHECK(json_hash("a", 1) == 0xaf63dc4c8601ec8cULL, "fnv1a a");
	CHECK(json_hash("foobar", 6) == 0x85944171f73967e8ULL,
	    "fnv1a foobar");
	printf("hash: FNV-1a vectors\n");
}

struct utf8_case {
	const char	*s;
	size_t		 len;
	int		 valid;
};

#define U(s, v)	{ s, sizeof(s) - 1, v }

static void
test_utf8_valid(void)
{
	static const struct utf8_case	 cases[] = {
		U("", 1),
		U("plain ascii", 1),
		U("\0", 1),
		U("\x7f", 1),
		U("\xc2\x80", 1),		/* U+0080 */
		U("\xdf\xbf", 1),		/* U+07FF */
		U("\xe0\xa0\x80", 1),		/* U+0800 */
		U("\xed\x9f\xbf", 1),		/* U+D7FF */
		U("\xee\x80\x80", 1),		/* U+E000 */
		U("\xef\xbf\xbf", 1),		/* U+FFFF */
		U("\xf0\x90\x80\x80", 1),	/* U+10000 */
		U("\xf4\x8f\xbf\xbf", 1),	/* U+10FFFF */
		U("\xf0\x9f\x98\x80 ok", 1),
		U("\x80", 0),			/* lone continuation */
		U("\xbf", 0),
		U("\xc0\x80", 0),		/* overlong NUL */
		U("\xc1\xbf", 0),		/* overlong */
		U("\xe0\x80\x80", 0),		/* overlong */
		U("\xe0\x9f\xbf", 0),		/* overlong U+07FF */
		U("\xf0\x80\x80\x80", 0),	/* overlong */
		U("\xf0\x8f\xbf\xbf", 0),	/* overlong U+FFFF */
		U("\xed\xa0\x80", 0),		/* U+D800 */
		U("\xed\xbf\xbf", 0),		/* U+DFFF */
		U("\xf4\x90\x80\x80", 0),	/* U+110000 */
		U("\xf5\x80\x80\x80", 0),
		U("\xf8\x88\x80\x80\x80", 0),
		U("\xfe", 0),
		U("\xff", 0),
		U("\xc2", 0),			/* truncated */
		U("\xe2\x82", 0),
		U("\xf0\x9f\x98", 0),
		U("\xc2\x41", 0),		/* bad continuation */
		U("\xe2\x28\xa1", 0),
		U("\xe2\x82\x28", 0),
		U("\xf0\x9f\x98\x28", 0),
		U("a\xc3\xa9\x80", 0),
	};
	size_t	 i;

	for (i = 0; i < nitems(cases); i++)
		CHECK(utf8_valid(cases[i].s, cases[i].len) == cases[i].valid,
		    "utf8_valid case %zu: want %d", i, cases[i].valid);
	/* Truncating a valid string never reads past its length. */
	CHECK(utf8_valid("\xe2\x82\xac", 2) == 0, "length bounds the read");
	printf("utf8_valid: %zu cases\n", nitems(cases));
}

/* Append code point cp as UTF-8. */
static void
put_utf8(struct buf *b, uint32_t cp)
{
	char	 t[4];

	if (cp < 0x80) {
		buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		t[0] = (char)(0xc0 | cp >> 6);
		t[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, t, 2);
	} else if (cp < 0x10000) {
		t[0] = (char)(0xe0 | cp >> 12);
		t[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		t[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, t, 3);
	} else {
		t[0] = (char)(0xf0 | cp >> 18);
		t[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		t[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		t[3] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, t, 4);
	}
}

static uint32_t
random_cp(void)
{
	uint32_t	 cp;

	switch (rnd() % 4) {
	case 0:
		return (uint32_t)(rnd() % 0x80);
	case 1:
		return 0x80 + (uint32_t)(rnd() % (0x800 - 0x80));
	case 2:
		do
			cp = 0x800 + (uint32_t)(rnd() % (0x10000 - 0x800));
		while (cp >= 0xd800 && cp <= 0xdfff);
		return cp;
	default:
		return 0x10000 + (uint32_t)(rnd() % (0x110000 - 0x10000));
	}
}

static void
test_utf8_cut(void)
{
	struct buf	 b;
	size_t		 max, n, len;
	int		 run, i, ncp;

	buf_init(&b);
	for (run = 0; run < CUT_RUNS; run++) {
		buf_reset(&b);
		ncp = (int)(rnd() % CUT_MAXCP);
		for (i = 0; i < ncp; i++)
			put_utf8(&b, random_cp());
		len = b.len;
		CHECK(utf8_valid(b.data, len), "generated string invalid");
		for (max = 0; max <= len + 2; max++) {
			n = utf8_cut(b.data, len, max);
			CHECK(n <= max && n <= len, "cut %zu of %zu: %zu", max,
			    len, n);
			CHECK(utf8_valid(b.data, n) &&
			    utf8_valid(b.data + n, len - n),
			    "cut %zu of %zu at %zu splits a code point", max,
			    len, n);
			/* Largest: the code point at n does not fit. */
			if (n < max && n < len) {
				size_t	 k = n + 1;

				while (k < len && ((unsigned char)b.data[k] &
				    0xc0) == 0x80)
					k++;
				CHECK(k > max, "cut %zu of %zu at %zu: next "
				    "code point ends at %zu", max, len, n, k);
			}
		}
		if (nfail > 20)
			break;
	}
	CHECK(utf8_cut("\xe2\x82\xac", 3, 2) == 0, "cut inside euro");
	CHECK(utf8_cut("a\xe2\x82\xac", 4, 3) == 1, "cut after a");
	CHECK(utf8_cut("a\xe2\x82\xac", 4, 4) == 4, "cut whole");
	CHECK(utf8_cut("a\xe2\x82\xac", 4, 100) == 4, "cut past end");
	buf_free(&b);
	printf("utf8_cut: %d random strings cut at every length\n", run);
}

int
main(void)
{
	test_parse_cases();
	test_parse_length();
	test_parse_depth();
	test_parse_dupkeys_large();
	test_print_numbers();
	test_print_roundtrip();
	test_print_millis();
	test_print_ints();
	test_print_tree();
	test_print_string();
	test_string_positions();
	test_get_int();
	test_hash();
	test_utf8_valid();
	test_utf8_cut();
	if (nfail > 0) {
		printf("%d checks failed\n", nfail);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}
