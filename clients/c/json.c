/*
 * JSON for the client, over cJSON 1.7.15 and around its traps: input is
 * scanned before cJSON sees it (nesting depth bounded, since cJSON
 * recurses; \u0000, which cJSON would silently cut a string at, refused),
 * numbers must be finite, nothing may follow the value; output is
 * printed here, with integers as plain integers (cJSON would print large
 * ones in exponent form) and member lookups are case-sensitive.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tvx_int.h"

#define SAFE_INT	9007199254740992.0	/* 2^53 */
#define NUMBER_BUFLEN	32

static void
buf_grow(struct tvx_buf *b, size_t more)
{
	size_t	 cap;
	char	*p;

	if (b->failed)
		return;
	if (more > SIZE_MAX / 2 - b->len) {
		b->failed = 1;
		return;
	}
	if (b->len + more + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL) {
		b->failed = 1;
		return;
	}
	b->data = p;
	b->cap = cap;
}

void
tvx_buf_add(struct tvx_buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (b->failed)
		return;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
tvx_buf_adds(struct tvx_buf *b, const char *s)
{
	tvx_buf_add(b, s, strlen(s));
}

void
tvx_buf_addc(struct tvx_buf *b, char c)
{
	tvx_buf_add(b, &c, 1);
}

void
tvx_buf_i64(struct tvx_buf *b, int64_t v)
{
	char	 tmp[NUMBER_BUFLEN];

	snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	tvx_buf_adds(b, tmp);
}

void
tvx_buf_free(struct tvx_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* The text, owned by the caller (NULL when an allocation failed). */
char *
tvx_buf_steal(struct tvx_buf *b)
{
	char	*p;

	if (b->failed || b->data == NULL) {
		if (!b->failed)
			return strdup("");
		tvx_buf_free(b);
		return NULL;
	}
	p = b->data;
	memset(b, 0, sizeof(*b));
	return p;
}

/*
 * Check depth and \u0000 before cJSON sees the text.  The scan follows
 * strings and escapes only; cJSON checks the rest of the grammar.
 */
static int
prescan(const char *s, size_t len, int max_depth, const char **why)
{
	size_t	 i;
	int	 depth = 0, in_str = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0') {
			*why = "NUL byte in JSON text";
			return -1;
		}
		if (in_str) {
			if (s[i] == '"')
				in_str = 0;
			else if (s[i] == '\\') {
				if (i + 5 < len && s[i + 1] == 'u' &&
				    memcmp(s + i + 2, "0000", 4) == 0) {
					*why = "\\u0000 in a JSON string";
					return -1;
				}
				i++;
			}
			continue;
		}
		switch (s[i]) {
		case '"':
			in_str = 1;
			break;
		case '[':
		case '{':
			if (++depth > max_depth) {
				*why = "JSON nested too deep";
				return -1;
			}
			break;
		case ']':
		case '}':
			depth--;
			break;
		}
	}
	return 0;
}

static int
finite_tree(const cJSON *v)
{
	const cJSON	*c;

	if (cJSON_IsNumber(v))
		return isfinite(v->valuedouble);
	if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		for (c = v->child; c != NULL; c = c->next)
			if (!finite_tree(c))
				return 0;
	}
	return 1;
}

cJSON *
tvx_json_parse(const char *text, size_t len, int max_depth, const char **why)
{
	cJSON		*v;
	const char	*end = NULL;
	size_t		 used;

	*why = NULL;
	if (prescan(text, len, max_depth, why) == -1)
		return NULL;
	v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (v == NULL) {
		*why = "not JSON";
		return NULL;
	}
	used = (size_t)(end - text);
	while (used < len && (text[used] == ' ' || text[used] == '\t' ||
	    text[used] == '\n' || text[used] == '\r'))
		used++;
	if (used != len) {
		*why = "bytes after the JSON value";
		goto fail;
	}
	if (!finite_tree(v)) {
		*why = "a number out of range";
		goto fail;
	}
	return v;
fail:
	cJSON_Delete(v);
	return NULL;
}

void
tvx_json_number(struct tvx_buf *b, double d)
{
	char	 tmp[NUMBER_BUFLEN];
	int	 prec;

	if (!isfinite(d)) {
		tvx_buf_adds(b, "null");
		return;
	}
	if (d == trunc(d) && fabs(d) < SAFE_INT) {
		tvx_buf_i64(b, (int64_t)d);
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.17g", d);
	tvx_buf_adds(b, tmp);
}

void
tvx_json_string(struct tvx_buf *b, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t			 i, run = 0;
	unsigned char		 c;

	tvx_buf_addc(b, '"');
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		tvx_buf_add(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			tvx_buf_adds(b, "\\\"");
			break;
		case '\\':
			tvx_buf_adds(b, "\\\\");
			break;
		case '\n':
			tvx_buf_adds(b, "\\n");
			break;
		case '\r':
			tvx_buf_adds(b, "\\r");
			break;
		case '\t':
			tvx_buf_adds(b, "\\t");
			break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			tvx_buf_add(b, esc, sizeof(esc));
		}
	}
	tvx_buf_add(b, s + run, len - run);
	tvx_buf_addc(b, '"');
}

static int
member_cmp(const void *a, const void *b)
{
	const cJSON	*x = *(const cJSON * const *)a;
	const cJSON	*y = *(const cJSON * const *)b;

	return strcmp(x->string, y->string);
}

static void
print_value(struct tvx_buf *b, const cJSON *v, int canonical)
{
	const cJSON	*c, **sorted;
	size_t		 n, i;

	switch (v->type & 0xff) {
	case cJSON_NULL:
		tvx_buf_adds(b, "null");
		break;
	case cJSON_True:
		tvx_buf_adds(b, "true");
		break;
	case cJSON_False:
		tvx_buf_adds(b, "false");
		break;
	case cJSON_Number:
		tvx_json_number(b, v->valuedouble);
		break;
	case cJSON_String:
		tvx_json_string(b, v->valuestring, strlen(v->valuestring));
		break;
	case cJSON_Raw:
		tvx_buf_adds(b, v->valuestring ? v->valuestring : "null");
		break;
	case cJSON_Array:
		tvx_buf_addc(b, '[');
		for (c = v->child; c != NULL; c = c->next) {
			if (c != v->child)
				tvx_buf_addc(b, ',');
			print_value(b, c, canonical);
		}
		tvx_buf_addc(b, ']');
		break;
	case cJSON_Object:
		tvx_buf_addc(b, '{');
		for (n = 0, c = v->child; c != NULL; c = c->next)
			n++;
		sorted = NULL;
		if (canonical && n > 1 &&
		    (sorted = calloc(n, sizeof(*sorted))) == NULL) {
			b->failed = 1;
			return;
		}
		for (i = 0, c = v->child; c != NULL; c = c->next)
			if (sorted != NULL)
				sorted[i++] = c;
		if (sorted != NULL)
			qsort(sorted, n, sizeof(*sorted), member_cmp);
		for (i = 0, c = v->child; c != NULL; i++, c = c->next) {
			const cJSON *m = sorted != NULL ? sorted[i] : c;

			if (i > 0)
				tvx_buf_addc(b, ',');
			tvx_json_string(b, m->string, strlen(m->string));
			tvx_buf_addc(b, ':');
			print_value(b, m, canonical);
		}
		free(sorted);
		tvx_buf_addc(b, '}');
		break;
	default:
		tvx_buf_adds(b, "null");
	}
}

void
tvx_json_print(struct tvx_buf *b, const cJSON *v)
{
	print_value(b, v, 0);
}

void
tvx_json_print_canonical(struct tvx_buf *b, const cJSON *v)
{
	print_value(b, v, 1);
}

/* Compact text of v, owned by the caller; NULL when out of memory. */
char *
tvx_json_text(const cJSON *v)
{
	struct tvx_buf	 b = { 0 };

	tvx_json_print(&b, v);
	return tvx_buf_steal(&b);
}

cJSON *
tvx_json_get(const cJSON *obj, const char *key)
{
	if (!cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

int
tvx_json_int(const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
	double	 d;

	if (!cJSON_IsNumber(v))
		return 0;
	d = v->valuedouble;
	if (d != trunc(d) || d < (double)min || d > (double)max ||
	    fabs(d) >= SAFE_INT)
		return 0;
	*out = (int64_t)d;
	return 1;
}
