/*
 * Validators: the "fields" and "strict" of a table in the schema file,
 * compiled into a tree of struct vtype when the schema is parsed, and
 * checked against every document a mutation writes (and, when a schema is
 * applied, every document already stored).
 *
 * Compiling fails closed: an unknown type name or member, a kind given
 * twice, "optional" anywhere but on a field, a bad field or table name,
 * an empty enum or union, an enum value that is not a string, finite
 * number, boolean or null, and anything past the limits of validate.h.
 *
 * Checking walks the document and the type together and stops at the
 * first failure, whose path it reports (fields joined by '.', array
 * elements as [i]).  It allocates nothing.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "udf.h"
#include "util.h"
#include "validate.h"

/* What compiling has used so far. */
struct vcompile {
	size_t		 nodes;
	struct tv_error	*err;
	char		 where[VALIDATE_PATH_MAX];	/* field compiled */
};

static struct vtype	*compile_type(struct vcompile *, const cJSON *,
			    int depth, int field);

static int	cerr(struct vcompile *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* The error of compiling, naming the field being compiled; -1. */
static int
cerr(struct vcompile *c, int code, const char *fmt, ...)
{
	char	 what[TV_ERRMSG_MAX];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return tv_seterr(c->err, code, "field %.128s: %s",
	    c->where[0] != '\0' ? c->where : "(fields)", what);
}

void
validate_free(struct vtype *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nfields; i++)
		validate_free(t->fields[i].type);
	free(t->fields);
	for (i = 0; i < t->nmembers; i++)
		validate_free(t->members[i]);
	free(t->members);
	validate_free(t->elem);
	cJSON_Delete(t->values);
	free(t);
}

static struct vtype *
new_type(struct vcompile *c, enum vkind kind)
{
	struct vtype	*t;

	if (++c->nodes > VALIDATE_MAX_NODES) {
		cerr(c, TV_TOO_LARGE, "more than %d types in one table",
		    VALIDATE_MAX_NODES);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->kind = kind;
	return t;
}

/* "string", "number?", ...  NULL with the error set when unknown. */
static struct vtype *
compile_name(struct vcompile *c, const char *s, int field)
{
	static const struct {
		const char	*name;
		enum vkind	 kind;
	} names[] = {
		{ "any", V_ANY }, { "string", V_STRING },
		{ "number", V_NUMBER }, { "boolean", V_BOOLEAN },
		{ "null", V_NULL }, { "object", V_OBJECT_ANY },
		{ "array", V_ARRAY_ANY },
	};
	struct vtype	*t;
	size_t		 i, len = strlen(s);
	int		 optional = 0;

	if (len > 0 && s[len - 1] == '?') {
		optional = 1;
		len--;
	}
	for (i = 0; i < nitems(names); i++)
		if (strlen(names[i].name) == len &&
		    strncmp(names[i].name, s, len) == 0)
			break;
	if (i == nitems(names)) {
		cerr(c, TV_VALIDATION, "unknown type (string, number, "
		    "boolean, null, any, object, array, or an object type)");
		return NULL;
	}
	if (optional && !field) {
		cerr(c, TV_VALIDATION, "\"?\" only makes a field optional");
		return NULL;
	}
	if ((t = new_type(c, names[i].kind)) != NULL)
		t->optional = optional;
	return t;
}

static int
literal_ok(const cJSON *v)
{
	if (cJSON_IsString(v))
		return strlen(v->valuestring) <= VALIDATE_MAX_LITERAL;
	if (cJSON_IsNumber(v))
		return isfinite(v->valuedouble);
	return cJSON_IsBool(v) || cJSON_IsNull(v);
}

/* Append ".name" (or "name" at the start) to c->where; its old length. */
static size_t
where_push(struct vcompile *c, const char *name)
{
	size_t	 len = strlen(c->where);

	snprintf(c->where + len, sizeof(c->where) - len, "%s%s",
	    len > 0 ? "." : "", name);
	return len;
}

/* The fields of an object type: an object of name → type. */
static int
compile_fields(struct vcompile *c, struct vtype *t, const cJSON *fields,
    int depth)
{
	const cJSON	*m;
	size_t		 i, n, saved;

	if (!cJSON_IsObject(fields))
		return cerr(c, TV_VALIDATION, "fields must be an object of "
		    "field names and types");
	n = (size_t)cJSON_GetArraySize(fields);
	if (n > VALIDATE_MAX_FIELDS)
		return cerr(c, TV_TOO_LARGE, "more than %d fields",
		    VALIDATE_MAX_FIELDS);
	t->fields = xcalloc(n + 1, sizeof(*t->fields));
	cJSON_ArrayForEach(m, fields) {
		if (!store_valid_name(m->string))
			return cerr(c, TV_VALIDATION, "field names must match "
			    "[A-Za-z][A-Za-z0-9_]{0,63}");
		for (i = 0; i < t->nfields; i++)
			if (strcmp(t->fields[i].name, m->string) == 0)
				return cerr(c, TV_VALIDATION,
				    "a field is declared twice");
		saved = where_push(c, m->string);
		strlcpy_tv(t->fields[t->nfields].name, m->string,
		    sizeof(t->fields[t->nfields].name));
		t->fields[t->nfields].type = compile_type(c, m, depth + 1, 1);
		if (t->fields[t->nfields].type == NULL)
			return -1;
		t->nfields++;
		c->where[saved] = '\0';
	}
	return 0;
}

static int
compile_strict(struct vcompile *c, struct vtype *t, const cJSON *strict)
{
	if (strict == NULL)
		return 0;
	if (!cJSON_IsBool(strict))
		return cerr(c, TV_VALIDATION, "strict must be true or false");
	t->strict = cJSON_IsTrue(strict);
	return 0;
}

/* {"enum": ...}, {"id": ...}, ... with "optional" and "strict". */
static struct vtype *
compile_object(struct vcompile *c, const cJSON *def, int depth, int field)
{
	static const struct {
		const char	*name;
		enum vkind	 kind;
	} kinds[] = {
		{ "enum", V_ENUM }, { "id", V_ID }, { "array", V_ARRAY },
		{ "object", V_OBJECT }, { "union", V_UNION },
	};
	struct vtype	*t = NULL, *u;
	const cJSON	*m, *arg = NULL, *opt = NULL, *strict = NULL;
	size_t		 i, n;
	int		 kind = -1;

	cJSON_ArrayForEach(m, def) {
		for (i = 0; i < nitems(kinds); i++)
			if (strcmp(m->string, kinds[i].name) == 0)
				break;
		if (i < nitems(kinds)) {
			if (kind != -1) {
				cerr(c, TV_VALIDATION, "a type has one of "
				    "enum, id, array, object, union");
				return NULL;
			}
			kind = (int)kinds[i].kind;
			arg = m;
		} else if (strcmp(m->string, "optional") == 0)
			opt = m;
		else if (strcmp(m->string, "strict") == 0)
			strict = m;
		else {
			cerr(c, TV_VALIDATION, "unknown member of a type");
			return NULL;
		}
	}
	if (kind == -1) {
		cerr(c, TV_VALIDATION, "a type object needs one of enum, id, "
		    "array, object, union");
		return NULL;
	}
	if (opt != NULL && (!cJSON_IsBool(opt) || !field)) {
		cerr(c, TV_VALIDATION, field ? "optional must be true or "
		    "false" : "optional only makes a field optional");
		return NULL;
	}
	if (strict != NULL && kind != V_OBJECT) {
		cerr(c, TV_VALIDATION, "strict belongs to an object type");
		return NULL;
	}
	if ((t = new_type(c, (enum vkind)kind)) == NULL)
		return NULL;
	t->optional = cJSON_IsTrue(opt);
	switch (t->kind) {
	case V_ENUM:
		n = cJSON_IsArray(arg) ? (size_t)cJSON_GetArraySize(arg) : 0;
		if (n == 0 || n > VALIDATE_MAX_CHOICES) {
			cerr(c, TV_VALIDATION, "enum must list 1 to %d values",
			    VALIDATE_MAX_CHOICES);
			goto fail;
		}
		cJSON_ArrayForEach(m, arg)
			if (!literal_ok(m)) {
				cerr(c, TV_VALIDATION, "enum values are "
				    "strings, numbers, booleans or null");
				goto fail;
			}
		t->values = cJSON_Duplicate(arg, 1);
		break;
	case V_ID:
		if (!cJSON_IsString(arg) ||
		    !store_valid_name(arg->valuestring)) {
			cerr(c, TV_VALIDATION, "id must name a table");
			goto fail;
		}
		strlcpy_tv(t->table, arg->valuestring, sizeof(t->table));
		break;
	case V_ARRAY:
		if ((t->elem = compile_type(c, arg, depth + 1, 0)) == NULL)
			goto fail;
		break;
	case V_OBJECT:
		if (compile_fields(c, t, arg, depth) == -1 ||
		    compile_strict(c, t, strict) == -1)
			goto fail;
		break;
	case V_UNION:
		n = cJSON_IsArray(arg) ? (size_t)cJSON_GetArraySize(arg) : 0;
		if (n == 0 || n > VALIDATE_MAX_CHOICES) {
			cerr(c, TV_VALIDATION, "union must list 1 to %d types",
			    VALIDATE_MAX_CHOICES);
			goto fail;
		}
		t->members = xcalloc(n, sizeof(*t->members));
		cJSON_ArrayForEach(m, arg) {
			if ((u = compile_type(c, m, depth + 1, 0)) == NULL)
				goto fail;
			t->members[t->nmembers++] = u;
		}
		break;
	default:
		break;
	}
	return t;
fail:
	validate_free(t);
	return NULL;
}

static struct vtype *
compile_type(struct vcompile *c, const cJSON *def, int depth, int field)
{
	if (depth > VALIDATE_MAX_DEPTH) {
		cerr(c, TV_TOO_LARGE, "types nested deeper than %d levels",
		    VALIDATE_MAX_DEPTH);
		return NULL;
	}
	if (cJSON_IsString(def))
		return compile_name(c, def->valuestring, field);
	if (cJSON_IsObject(def))
		return compile_object(c, def, depth, field);
	cerr(c, TV_VALIDATION, "a type is a name such as \"string\" or an "
	    "object such as {\"array\": \"string\"}");
	return NULL;
}

struct vtype *
validate_compile(const cJSON *fields, const cJSON *strict,
    struct tv_error *err)
{
	struct vcompile	 c;
	struct vtype	*t;

	if (fields == NULL && strict == NULL)
		return NULL;
	memset(&c, 0, sizeof(c));
	c.err = err;
	if ((t = new_type(&c, V_OBJECT)) == NULL)
		return NULL;
	if ((fields != NULL && compile_fields(&c, t, fields, 0) == -1) ||
	    compile_strict(&c, t, strict) == -1) {
		validate_free(t);
		return NULL;
	}
	if (t->fields == NULL)
		t->fields = xcalloc(1, sizeof(*t->fields));
	return t;
}

/* Checking. */

/* The path of the value being checked, grown and shrunk as we walk. */
struct vpath {
	char	 s[VALIDATE_PATH_MAX];
	size_t	 len;
};

static size_t
path_field(struct vpath *p, const char *name)
{
	size_t	 old = p->len;
	int	 n;

	n = snprintf(p->s + old, sizeof(p->s) - old, "%s%s",
	    old > 0 ? "." : "", name);
	if (n > 0)
		p->len = old + (size_t)n < sizeof(p->s) ? old + (size_t)n :
		    sizeof(p->s) - 1;
	return old;
}

static size_t
path_index(struct vpath *p, int i)
{
	size_t	 old = p->len;
	int	 n;

	n = snprintf(p->s + old, sizeof(p->s) - old, "[%d]", i);
	if (n > 0)
		p->len = old + (size_t)n < sizeof(p->s) ? old + (size_t)n :
		    sizeof(p->s) - 1;
	return old;
}

static void
path_pop(struct vpath *p, size_t old)
{
	p->len = old;
	p->s[old] = '\0';
}

static int
fail(struct vpath *p, struct tv_error *err, const char *what)
{
	struct buf	 b;

	tv_seterr(err, TV_VALIDATION, "field %s: %s", p->s, what);
	buf_init(&b);
	buf_adds(&b, "{\"path\":");
	json_print_string(&b, p->s, p->len);
	buf_addc(&b, '}');
	if (b.len < sizeof(err->data))
		memcpy(err->data, b.data, b.len + 1);
	buf_free(&b);
	return -1;
}

static const char *
kind_name(enum vkind k)
{
	switch (k) {
	case V_STRING:		return "expected a string";
	case V_NUMBER:		return "expected a number";
	case V_BOOLEAN:		return "expected a boolean";
	case V_NULL:		return "expected null";
	case V_OBJECT_ANY:
	case V_OBJECT:		return "expected an object";
	case V_ARRAY_ANY:
	case V_ARRAY:		return "expected an array";
	case V_ENUM:		return "not one of the enum's values";
	case V_ID:		return "expected a document id";
	case V_UNION:		return "matches no type of the union";
	default:		return "invalid";
	}
}

static int
literal_equal(const cJSON *a, const cJSON *b)
{
	if (cJSON_IsString(a) && cJSON_IsString(b))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble;
	if (cJSON_IsBool(a) && cJSON_IsBool(b))
		return cJSON_IsTrue(a) == cJSON_IsTrue(b);
	return cJSON_IsNull(a) && cJSON_IsNull(b);
}

static int	check_value(const struct vtype *, const cJSON *, struct vpath *,
		    struct tv_error *);

static int
check_object(const struct vtype *t, const cJSON *v, struct vpath *p,
    struct tv_error *err, int top)
{
	const cJSON	*m;
	size_t		 i, old;
	int		 found;

	if (!cJSON_IsObject(v))
		return fail(p, err, kind_name(t->kind));
	for (i = 0; i < t->nfields; i++) {
		old = path_field(p, t->fields[i].name);
		m = json_get(v, t->fields[i].name);
		if (m == NULL) {
			if (!t->fields[i].type->optional)
				return fail(p, err, "missing");
		} else if (check_value(t->fields[i].type, m, p, err) == -1)
			return -1;
		path_pop(p, old);
	}
	if (!t->strict)
		return 0;
	cJSON_ArrayForEach(m, v) {
		if (top && m->string[0] == '_')
			continue;	/* _id, _creationTime */
		for (i = 0, found = 0; i < t->nfields && !found; i++)
			found = strcmp(t->fields[i].name, m->string) == 0;
		if (!found) {
			path_field(p, m->string);
			return fail(p, err, "not declared in the schema "
			    "(strict)");
		}
	}
	return 0;
}

static int
check_value(const struct vtype *t, const cJSON *v, struct vpath *p,
    struct tv_error *err)
{
	const cJSON	*m;
	size_t		 i, old;
	int		 ok = 0, n;

	switch (t->kind) {
	case V_ANY:
		return 0;
	case V_STRING:
		ok = cJSON_IsString(v);
		break;
	case V_NUMBER:
		ok = cJSON_IsNumber(v);
		break;
	case V_BOOLEAN:
		ok = cJSON_IsBool(v);
		break;
	case V_NULL:
		ok = cJSON_IsNull(v);
		break;
	case V_OBJECT_ANY:
		ok = cJSON_IsObject(v);
		break;
	case V_ARRAY_ANY:
		ok = cJSON_IsArray(v);
		break;
	case V_ENUM:
		cJSON_ArrayForEach(m, t->values)
			if (literal_equal(m, v))
				ok = 1;
		break;
	case V_ID:
		ok = cJSON_IsString(v) && store_valid_id(v->valuestring);
		break;
	case V_ARRAY:
		if (!cJSON_IsArray(v))
			break;
		n = 0;
		cJSON_ArrayForEach(m, v) {
			old = path_index(p, n++);
			if (check_value(t->elem, m, p, err) == -1)
				return -1;
			path_pop(p, old);
		}
		return 0;
	case V_OBJECT:
		return check_object(t, v, p, err, 0);
	case V_UNION:
		/* The first member that takes it; the members' errors go. */
		old = p->len;
		for (i = 0; i < t->nmembers && !ok; i++) {
			ok = check_value(t->members[i], v, p, err) == 0;
			path_pop(p, old);
		}
		memset(err, 0, sizeof(*err));
		break;
	}
	return ok ? 0 : fail(p, err, kind_name(t->kind));
}

int
validate_doc(const struct vtype *t, const cJSON *doc, struct tv_error *err)
{
	struct vpath	 p;

	assert(t != NULL && t->kind == V_OBJECT);
	p.s[0] = '\0';
	p.len = 0;
	return check_object(t, doc, &p, err, 1);
}
