/*
 * JSON helpers around cJSON.  json_parse scans the text once before
 * handing it to cJSON (for nesting depth, \u0000 escapes, control bytes
 * and the number grammar, all things cJSON lets through or mangles), then
 * checks the tree it built (finite numbers, unique member names).  The
 * printers are our own: cJSON prints large integers in exponent form.
 * The UTF-8 helpers serve the WebSocket layer and transition chunking.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define FNV64_OFFSET	14695981039346656037ULL	/* FNV-1a offset basis */
#define FNV64_PRIME	1099511628211ULL	/* FNV-1a prime */
#define DUPKEY_LINEAR	16	/* up to this many members: pairwise check */
#define NUMBER_BUFLEN	32	/* "%.17g" of any double, with room */
#define JSON_MILLIS_MAX	4398046511104.0	/* 2^42: print_millis below */

/* One object member while sorting: its name and original position. */
struct member {
	const char	*name;
	size_t		 pos;
	const cJSON	*item;
};

static int	json_scan(const char *, size_t, int, enum json_err *);
static size_t	json_scan_number(const char *, size_t, size_t);
static int	json_check(const cJSON *, int, int, enum json_err *);
static int	json_check_dupkeys(const cJSON *);
static int	member_cmp(const void *, const void *);
static void	json_print_value(struct buf *, const cJSON *, int);

/*
 * The length of the leading run of s that a JSON string holds as it is:
 * no control byte, no '"' and no backslash.  Eight bytes at a time:
 * SWAR_LESS(x, n) is non-zero when a byte of x is below n (n <= 128),
 * SWAR_ZERO(x) when a byte of x is zero.
 */
#define SWAR_ONES	0x0101010101010101ULL
#define SWAR_HIGH	0x8080808080808080ULL
#define SWAR_LESS(x, n)	(((x) - SWAR_ONES * (n)) & ~(x) & SWAR_HIGH)
#define SWAR_ZERO(x)	SWAR_LESS(x, 1)

static size_t
plain_run(const char *s, size_t len)
{
	uint64_t	 x;
	size_t		 i = 0;
	unsigned char	 c;

	for (; i + 8 <= len; i += 8) {
		memcpy(&x, s + i, 8);
		if (SWAR_LESS(x, 0x20) | SWAR_ZERO(x ^ (SWAR_ONES * '"')) |
		    SWAR_ZERO(x ^ (SWAR_ONES * '\\')))
			break;
	}
	for (; i < len; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	return i;
}

static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Length of the number token that starts at text[i], or 0 when the bytes
 * there do not follow the JSON number grammar
 * (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?).
 */
static size_t
json_scan_number(const char *text, size_t len, size_t i)
{
	size_t	 start = i;

	if (i < len && text[i] == '-')
		i++;
	if (i >= len || !is_digit(text[i]))
		return 0;
	if (text[i] == '0')
		i++;
	else
		while (i < len && is_digit(text[i]))
			i++;
	if (i < len && text[i] == '.') {
		i++;
		if (i >= len || !is_digit(text[i]))
			return 0;
		while (i < len && is_digit(text[i]))
			i++;
	}
	if (i < len && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			i++;
		if (i >= len || !is_digit(text[i]))
			return 0;
		while (i < len && is_digit(text[i]))
			i++;
	}
	/* A number runs into the next token only through a delimiter. */
	if (i < len && (is_digit(text[i]) || text[i] == '.' ||
	    text[i] == 'e' || text[i] == 'E' || text[i] == '+' ||
	    text[i] == '-'))
		return 0;
	return i - start;
}

/*
 * The pass before cJSON sees the text: bracket depth outside strings
 * (which is the container depth of any valid text), \u0000 escapes,
 * control bytes (raw ones are not JSON; cJSON takes any byte below 0x21
 * for whitespace and copies them into strings), and numbers that are not
 * in JSON's grammar (cJSON reads "01" and "1." without complaint).
 * Returns 0, or -1 with *err set.
 */
static int
json_scan(const char *text, size_t len, int max_depth, enum json_err *err)
{
	size_t		 i, n;
	int		 depth = 0, instr = 0;
	unsigned char	 c;

	for (i = 0; i < len; i++) {
		if (instr && (i += plain_run(text + i, len - i)) == len)
			break;
		c = (unsigned char)text[i];
		if (instr) {
			if (c == '"')
				instr = 0;
			else if (c < 0x20)
				goto syntax;
			else if (c == '\\') {
				if (i + 1 >= len)
					goto syntax;
				if (text[i + 1] == 'u' && i + 5 < len &&
				    memcmp(text + i + 2, "0000", 4) == 0) {
					*err = JSON_ERR_NUL;
					return -1;
				}
				i++;	/* the escaped byte */
			}
			continue;
		}
		switch (c) {
		case '"':
			instr = 1;
			break;
		case '[':
		case '{':
			if (++depth > max_depth) {
				*err = JSON_ERR_DEPTH;
				return -1;
			}
			break;
		case ']':
		case '}':
			depth--;
			break;
		case '-':
		case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
			if ((n = json_scan_number(text, len, i)) == 0)
				goto syntax;
			i += n - 1;
			break;
		default:
			if (c < 0x20 && !is_space(c))
				goto syntax;
			break;
		}
	}
	return 0;
 syntax:
	*err = JSON_ERR_SYNTAX;
	return -1;
}

static int
member_cmp(const void *a, const void *b)
{
	const struct member	*ma = a, *mb = b;
	int			 r;

	if ((r = strcmp(ma->name, mb->name)) != 0)
		return r;
	return ma->pos < mb->pos ? -1 : ma->pos > mb->pos;
}

/* 1 when an object repeats a member name, 0 otherwise. */
static int
json_check_dupkeys(const cJSON *obj)
{
	const cJSON	*a, *b;
	struct member	*m;
	size_t		 n = 0, i;
	int		 dup = 0;

	cJSON_ArrayForEach(a, obj)
		n++;
	if (n <= DUPKEY_LINEAR) {
		cJSON_ArrayForEach(a, obj)
			for (b = a->next; b != NULL; b = b->next)
				if (strcmp(a->string, b->string) == 0)
					return 1;
		return 0;
	}
	m = xreallocarray(NULL, n, sizeof(*m));
	i = 0;
	cJSON_ArrayForEach(a, obj) {
		m[i].name = a->string;
		m[i].pos = i;
		m[i].item = a;
		i++;
	}
	qsort(m, n, sizeof(*m), member_cmp);
	for (i = 1; i < n && !dup; i++)
		dup = strcmp(m[i - 1].name, m[i].name) == 0;
	free(m);
	return dup;
}

/* Walk a parsed tree; returns 0, or -1 with *err set. */
static int
json_check(const cJSON *item, int depth, int max_depth, enum json_err *err)
{
	const cJSON	*c;

	if (cJSON_IsNumber(item)) {
		if (!isfinite(item->valuedouble)) {
			*err = JSON_ERR_NUMBER;
			return -1;
		}
		return 0;
	}
	if (!cJSON_IsArray(item) && !cJSON_IsObject(item))
		return 0;
	if (depth + 1 > max_depth) {
		*err = JSON_ERR_DEPTH;
		return -1;
	}
	if (cJSON_IsObject(item) && json_check_dupkeys(item)) {
		*err = JSON_ERR_DUPKEY;
		return -1;
	}
	cJSON_ArrayForEach(c, item)
		if (json_check(c, depth + 1, max_depth, err) == -1)
			return -1;
	return 0;
}

cJSON *
json_parse(const char *text, size_t len, int max_depth, enum json_err *err)
{
	cJSON		*root = NULL;
	const char	*end = NULL;
	size_t		 off;

	*err = JSON_OK;
	/* cJSON refuses what is nested deeper than its own limit. */
	if (max_depth > CJSON_NESTING_LIMIT)
		max_depth = CJSON_NESTING_LIMIT;
	if (json_scan(text, len, max_depth, err) == -1)
		goto fail;
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL || end == NULL) {
		*err = JSON_ERR_SYNTAX;
		goto fail;
	}
	for (off = (size_t)(end - text); off < len; off++)
		if (!is_space((unsigned char)text[off])) {
			*err = JSON_ERR_SYNTAX;
			goto fail;
		}
	if (json_check(root, 0, max_depth, err) == -1)
		goto fail;
	return root;
 fail:
	cJSON_Delete(root);
	if (*err == JSON_OK)
		*err = JSON_ERR_SYNTAX;
	return NULL;
}

const char *
json_strerror(enum json_err e)
{
	switch (e) {
	case JSON_OK:
		return "no error";
	case JSON_ERR_SYNTAX:
		return "not a JSON value";
	case JSON_ERR_DEPTH:
		return "nested too deep";
	case JSON_ERR_NUL:
		return "string contains \\u0000";
	case JSON_ERR_NUMBER:
		return "number out of range";
	case JSON_ERR_DUPKEY:
		return "duplicate member name";
	}
	return "unknown JSON error";
}

/*
 * A number of at most three decimals below JSON_MILLIS_MAX (a
 * _creationTime in milliseconds is one) printed without snprintf and
 * strtod: 1 if done.  Below 2^42 a double's spacing is under 0.0005, so
 * the nearest double to each k / 1000 is a different one and its
 * shortest round-trip spelling is k / 1000 itself, trailing zeros
 * dropped: what the "%.*g" loop below prints for it.
 */
static int
print_millis(struct buf *b, double d)
{
	int64_t	 k, frac;
	char	 digits[3];
	int	 n;

	if (fabs(d) >= JSON_MILLIS_MAX)
		return 0;
	k = llround(d * 1000.0);
	if ((double)k / 1000.0 != d)
		return 0;
	if (k < 0) {
		buf_addc(b, '-');
		k = -k;
	}
	buf_add_i64(b, k / 1000);
	frac = k % 1000;
	digits[0] = (char)('0' + frac / 100);
	digits[1] = (char)('0' + frac / 10 % 10);
	digits[2] = (char)('0' + frac % 10);
	for (n = 3; n > 0 && digits[n - 1] == '0'; n--)
		continue;
	buf_addc(b, '.');
	buf_add(b, digits, (size_t)n);
	return 1;
}

void
json_print_number(struct buf *b, double d)
{
	char	 tmp[NUMBER_BUFLEN];
	int	 prec;

	if (!isfinite(d)) {
		/* JSON has no spelling for these; cJSON writes null too. */
		buf_adds(b, "null");
		return;
	}
	if (d == trunc(d) && fabs(d) < JSON_SAFE_INT) {
		buf_add_i64(b, (int64_t)d);
		return;
	}
	if (print_millis(b, d))
		return;
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.17g", d);
	buf_adds(b, tmp);
}

void
json_print_string(struct buf *b, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, run = 0;
	unsigned char		 c;
	char			 esc[6] = { '\\', 'u', '0', '0', 0, 0 };

	/* Most strings need no escape: one copy between the quotes. */
	buf_reserve(b, len + 2);
	b->data[b->len++] = '"';
	if ((i = plain_run(s, len)) == len) {
		memcpy(b->data + b->len, s, len);
		b->len += len;
		b->data[b->len++] = '"';
		b->data[b->len] = '\0';
		return;
	}
	for (; i < len; i++) {
		if ((i += plain_run(s + i, len - i)) == len)
			break;
		c = (unsigned char)s[i];
		buf_add(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			buf_add(b, "\\\"", 2);
			break;
		case '\\':
			buf_add(b, "\\\\", 2);
			break;
		case '\b':
			buf_add(b, "\\b", 2);
			break;
		case '\f':
			buf_add(b, "\\f", 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\r':
			buf_add(b, "\\r", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			buf_add(b, esc, sizeof(esc));
			break;
		}
	}
	buf_add(b, s + run, len - run);
	buf_addc(b, '"');
}

static void
json_print_cstring(struct buf *b, const char *s)
{
	if (s == NULL)
		s = "";
	json_print_string(b, s, strlen(s));
}

/* Members of obj in name order (ties in their original order). */
static void
json_print_sorted(struct buf *b, const cJSON *obj)
{
	const cJSON	*c;
	struct member	*m;
	size_t		 n = 0, i;

	cJSON_ArrayForEach(c, obj)
		n++;
	m = xreallocarray(NULL, n, sizeof(*m));
	i = 0;
	cJSON_ArrayForEach(c, obj) {
		m[i].name = c->string != NULL ? c->string : "";
		m[i].pos = i;
		m[i].item = c;
		i++;
	}
	qsort(m, n, sizeof(*m), member_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(b, ',');
		json_print_cstring(b, m[i].name);
		buf_addc(b, ':');
		json_print_value(b, m[i].item, 1);
	}
	free(m);
}

static void
json_print_value(struct buf *b, const cJSON *item, int canonical)
{
	const cJSON	*c;

	if (item == NULL) {
		buf_adds(b, "null");
		return;
	}
	switch (item->type & 0xff) {
	case cJSON_False:
		buf_adds(b, "false");
		break;
	case cJSON_True:
		buf_adds(b, "true");
		break;
	case cJSON_Number:
		json_print_number(b, item->valuedouble);
		break;
	case cJSON_String:
		json_print_cstring(b, item->valuestring);
		break;
	case cJSON_Raw:
		if (item->valuestring != NULL)
			buf_adds(b, item->valuestring);
		else
			buf_adds(b, "null");
		break;
	case cJSON_Array:
		buf_addc(b, '[');
		cJSON_ArrayForEach(c, item) {
			if (c != item->child)
				buf_addc(b, ',');
			json_print_value(b, c, canonical);
		}
		buf_addc(b, ']');
		break;
	case cJSON_Object:
		buf_addc(b, '{');
		if (canonical)
			json_print_sorted(b, item);
		else
			cJSON_ArrayForEach(c, item) {
				if (c != item->child)
					buf_addc(b, ',');
				json_print_cstring(b, c->string);
				buf_addc(b, ':');
				json_print_value(b, c, 0);
			}
		buf_addc(b, '}');
		break;
	default:	/* cJSON_NULL, cJSON_Invalid */
		buf_adds(b, "null");
		break;
	}
}

void
json_print(struct buf *b, const cJSON *item)
{
	json_print_value(b, item, 0);
}

void
json_print_canonical(struct buf *b, const cJSON *item)
{
	json_print_value(b, item, 1);
}

cJSON *
json_get(const cJSON *obj, const char *key)
{
	if (obj == NULL || !cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

int
json_depth(const cJSON *item)
{
	const cJSON	*c;
	int		 d, max = 0;

	if (item == NULL || (!cJSON_IsArray(item) && !cJSON_IsObject(item)))
		return 0;
	cJSON_ArrayForEach(c, item)
		if ((d = json_depth(c)) > max)
			max = d;
	return max + 1;
}

int
json_get_int(const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
	double	 d;
	int64_t	 i;

	if (v == NULL || !cJSON_IsNumber(v))
		return 0;
	d = v->valuedouble;
	if (!isfinite(d) || d != trunc(d) || fabs(d) > JSON_SAFE_INT)
		return 0;
	i = (int64_t)d;
	if (i < min || i > max)
		return 0;
	*out = i;
	return 1;
}

uint64_t
json_hash(const void *p, size_t len)
{
	const unsigned char	*s = p;
	uint64_t		 h = FNV64_OFFSET;
	size_t			 i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= FNV64_PRIME;
	}
	return h;
}

/* RFC 3629: shortest form only, no surrogates, nothing above U+10FFFF. */
int
utf8_valid(const char *p, size_t len)
{
	const unsigned char	*s = (const unsigned char *)p;
	size_t			 i = 0, n, k;
	unsigned char		 lo, hi;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			n = 1;
		else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			n = 2;
			if (s[i] == 0xe0)
				lo = 0xa0;	/* overlong */
			else if (s[i] == 0xed)
				hi = 0x9f;	/* surrogates */
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			n = 3;
			if (s[i] == 0xf0)
				lo = 0x90;	/* overlong */
			else if (s[i] == 0xf4)
				hi = 0x8f;	/* above U+10FFFF */
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += n + 1;
	}
	return 1;
}

size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	size_t	 n = max < len ? max : len;

	while (n > 0 && n < len && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void
json_add_int(cJSON *obj, const char *name, int64_t v)
{
	char	 tmp[24];

	snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	cJSON_AddItemToObject(obj, name, cJSON_CreateRaw(tmp));
}
