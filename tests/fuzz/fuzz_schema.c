/*
 * Fuzz target for the schema file parser (writerd/schema.c): the input is
 * the text of a schema file, given to schema_parse and the result freed
 * with schema_free.  The checks: a refusal comes with an error code and a
 * message; an accepted schema has distinct valid table names, distinct
 * valid index names that are not the built-in ones, 1 to
 * STORE_MAX_INDEX_FIELDS valid field names per index, no more indexes per
 * table than the catalog can take besides the built-ins; validators
 * within the limits of validate.h (depth, fields, choices, no "?" but on
 * fields); printed back as a schema file (validators included) it parses
 * again to exactly the same schema.  Each table's validator is then run
 * over the input itself as a document (when it is a JSON object): it
 * must accept it or refuse it with a ValidationError whose data is a
 * JSON object holding only a string "path".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "validate.h"
#include "writerd.h"

#define FUZZ_SCHEMA_MAX_TABLES	1000	/* tables a schema file may list */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_index(const struct schema_table *t, size_t j)
{
	const struct schema_index	*ix = &t->indexes[j];
	size_t				 k;

	need(store_valid_name(ix->name));
	need(strcmp(ix->name, STORE_INDEX_BY_ID) != 0 &&
	    strcmp(ix->name, STORE_INDEX_BY_CREATION) != 0);
	need(ix->unique == 0 || ix->unique == 1);
	need(ix->nfields >= 1 && ix->nfields <= STORE_MAX_INDEX_FIELDS);
	for (k = 0; k < ix->nfields; k++)
		need(ix->fields[k] != NULL && store_valid_name(ix->fields[k]));
	for (k = 0; k < j; k++)
		need(strcmp(t->indexes[k].name, ix->name) != 0);
}

static void
check_vtype(const struct vtype *t, int depth, int field)
{
	size_t	 i, j;

	need(depth <= VALIDATE_MAX_DEPTH);
	need(!t->optional || field);
	need(t->nfields == 0 || t->kind == V_OBJECT);
	need(t->nmembers == 0 || t->kind == V_UNION);
	need((t->elem != NULL) == (t->kind == V_ARRAY));
	need((t->values != NULL) == (t->kind == V_ENUM));
	switch (t->kind) {
	case V_OBJECT:
		need(t->nfields <= VALIDATE_MAX_FIELDS);
		for (i = 0; i < t->nfields; i++) {
			need(store_valid_name(t->fields[i].name));
			for (j = 0; j < i; j++)
				need(strcmp(t->fields[i].name,
				    t->fields[j].name) != 0);
			check_vtype(t->fields[i].type, depth + 1, 1);
		}
		break;
	case V_UNION:
		need(t->nmembers >= 1 && t->nmembers <= VALIDATE_MAX_CHOICES);
		for (i = 0; i < t->nmembers; i++)
			check_vtype(t->members[i], depth + 1, 0);
		break;
	case V_ARRAY:
		check_vtype(t->elem, depth + 1, 0);
		break;
	case V_ENUM:
		need(cJSON_GetArraySize(t->values) >= 1 &&
		    cJSON_GetArraySize(t->values) <= VALIDATE_MAX_CHOICES);
		break;
	case V_ID:
		need(store_valid_name(t->table));
		break;
	default:
		break;
	}
}

static void
print_vtype(struct buf *b, const struct vtype *t)
{
	static const char *const names[] = {
		[V_ANY] = "any", [V_STRING] = "string", [V_NUMBER] = "number",
		[V_BOOLEAN] = "boolean", [V_NULL] = "null",
		[V_OBJECT_ANY] = "object", [V_ARRAY_ANY] = "array",
	};
	size_t	 i;

	if (t->kind <= V_ARRAY_ANY) {
		/* Optional fields in the short and the long form in turn. */
		buf_printf(b, "\"%s%s\"", names[t->kind], t->optional ? "?" :
		    "");
		return;
	}
	buf_addc(b, '{');
	if (t->optional)
		buf_adds(b, "\"optional\":true,");
	switch (t->kind) {
	case V_ENUM:
		buf_adds(b, "\"enum\":");
		json_print(b, t->values);
		break;
	case V_ID:
		buf_printf(b, "\"id\":\"%s\"", t->table);
		break;
	case V_ARRAY:
		buf_adds(b, "\"array\":");
		print_vtype(b, t->elem);
		break;
	case V_OBJECT:
		buf_printf(b, "\"strict\":%s,\"object\":{",
		    t->strict ? "true" : "false");
		for (i = 0; i < t->nfields; i++) {
			buf_printf(b, "%s\"%s\":", i > 0 ? "," : "",
			    t->fields[i].name);
			print_vtype(b, t->fields[i].type);
		}
		buf_addc(b, '}');
		break;
	case V_UNION:
		buf_adds(b, "\"union\":[");
		for (i = 0; i < t->nmembers; i++) {
			if (i > 0)
				buf_addc(b, ',');
			print_vtype(b, t->members[i]);
		}
		buf_addc(b, ']');
		break;
	default:
		break;
	}
	buf_addc(b, '}');
}

static int
same_vtype(const struct vtype *a, const struct vtype *b)
{
	size_t	 i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->kind != b->kind || a->optional != b->optional ||
	    a->strict != b->strict || a->nfields != b->nfields ||
	    a->nmembers != b->nmembers || strcmp(a->table, b->table) != 0 ||
	    !same_vtype(a->elem, b->elem))
		return 0;
	if ((a->values != NULL || b->values != NULL) &&
	    (a->values == NULL || b->values == NULL ||
	    !cJSON_Compare(a->values, b->values, 1)))
		return 0;
	for (i = 0; i < a->nfields; i++)
		if (strcmp(a->fields[i].name, b->fields[i].name) != 0 ||
		    !same_vtype(a->fields[i].type, b->fields[i].type))
			return 0;
	for (i = 0; i < a->nmembers; i++)
		if (!same_vtype(a->members[i], b->members[i]))
			return 0;
	return 1;
}

/* A validator run over doc: accepted, or refused with {"path": "..."}. */
static void
run_validator(const struct vtype *t, const cJSON *doc)
{
	struct tv_error	 err;
	enum json_err	 jerr;
	cJSON		*data;

	memset(&err, 0, sizeof(err));
	if (validate_doc(t, doc, &err) == 0) {
		need(err.code == 0);
		return;
	}
	need(err.code == TV_VALIDATION);
	need(memchr(err.message, '\0', sizeof(err.message)) != NULL);
	need(memchr(err.data, '\0', sizeof(err.data)) != NULL);
	data = json_parse(err.data, strlen(err.data), 4, &jerr);
	need(data != NULL && cJSON_IsObject(data) &&
	    cJSON_GetArraySize(data) == 1 &&
	    cJSON_IsString(json_get(data, "path")));
	cJSON_Delete(data);
}

static void
check(const struct schema *sc)
{
	const struct schema_table	*t;
	size_t				 i, j;

	need(sc->ntables <= FUZZ_SCHEMA_MAX_TABLES);
	need(sc->ntables == 0 || sc->tables != NULL);
	for (i = 0; i < sc->ntables; i++) {
		t = &sc->tables[i];
		need(store_valid_name(t->name));
		for (j = 0; j < i; j++)
			need(strcmp(sc->tables[j].name, t->name) != 0);
		need(t->nindexes <= STORE_MAX_INDEXES - 2);
		need(t->nindexes == 0 || t->indexes != NULL);
		for (j = 0; j < t->nindexes; j++)
			check_index(t, j);
		if (t->valid != NULL) {
			need(t->valid->kind == V_OBJECT && !t->valid->optional);
			check_vtype(t->valid, 0, 0);
		}
	}
}

/* The schema as a schema file; indexes in the long or the short form. */
static void
print(struct buf *b, const struct schema *sc)
{
	const struct schema_table	*t;
	const struct schema_index	*ix;
	size_t				 i, j, k;

	buf_adds(b, "{\"tables\":{");
	for (i = 0; i < sc->ntables; i++) {
		t = &sc->tables[i];
		if (i > 0)
			buf_addc(b, ',');
		json_print_string(b, t->name, strlen(t->name));
		buf_addc(b, ':');
		buf_addc(b, '{');
		if (t->valid != NULL) {
			buf_printf(b, "\"strict\":%s,\"fields\":{",
			    t->valid->strict ? "true" : "false");
			for (j = 0; j < t->valid->nfields; j++) {
				buf_printf(b, "%s\"%s\":", j > 0 ? "," : "",
				    t->valid->fields[j].name);
				print_vtype(b, t->valid->fields[j].type);
			}
			buf_adds(b, i % 2 == 0 ? "}," : "}");
			if (i % 2 == 1 && t->nindexes > 0)
				buf_addc(b, ',');
		}
		if (i % 2 == 0)
			buf_adds(b, "\"indexes\":{");
		for (j = 0; j < t->nindexes; j++) {
			ix = &t->indexes[j];
			if (i % 2 == 1 && j == 0)
				buf_adds(b, "\"indexes\":{");
			if (j > 0)
				buf_addc(b, ',');
			json_print_string(b, ix->name, strlen(ix->name));
			buf_adds(b, ix->unique ?
			    ":{\"unique\":true,\"fields\":[" : ":[");
			for (k = 0; k < ix->nfields; k++) {
				if (k > 0)
					buf_addc(b, ',');
				json_print_string(b, ix->fields[k],
				    strlen(ix->fields[k]));
			}
			buf_adds(b, ix->unique ? "]}" : "]");
		}
		if (i % 2 == 0 || t->nindexes > 0)
			buf_addc(b, '}');
		buf_addc(b, '}');
	}
	buf_adds(b, "}}");
}

static int
same(const struct schema *a, const struct schema *b)
{
	const struct schema_index	*x, *y;
	size_t				 i, j, k;

	if (a->ntables != b->ntables)
		return 0;
	for (i = 0; i < a->ntables; i++) {
		if (strcmp(a->tables[i].name, b->tables[i].name) != 0 ||
		    a->tables[i].nindexes != b->tables[i].nindexes ||
		    !same_vtype(a->tables[i].valid, b->tables[i].valid))
			return 0;
		for (j = 0; j < a->tables[i].nindexes; j++) {
			x = &a->tables[i].indexes[j];
			y = &b->tables[i].indexes[j];
			if (strcmp(x->name, y->name) != 0 ||
			    x->unique != y->unique || x->nfields != y->nfields)
				return 0;
			for (k = 0; k < x->nfields; k++)
				if (strcmp(x->fields[k], y->fields[k]) != 0)
					return 0;
		}
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct schema	*sc, *again;
	struct tv_error	 err;
	struct buf	 text;
	enum json_err	 jerr;
	cJSON		*doc;
	size_t		 i;
	char		*copy;

	/* An exact copy, so that a read past the text is caught. */
	if ((copy = malloc(size == 0 ? 1 : size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	memset(&err, 0, sizeof(err));
	sc = schema_parse(copy, size, &err);
	free(copy);
	if (sc == NULL) {
		need(err.code != 0 && err.message[0] != '\0' &&
		    memchr(err.message, '\0', sizeof(err.message)) != NULL);
		return 0;
	}
	need(err.code == 0);
	check(sc);
	/* The input itself as a document for every validator. */
	if ((doc = json_parse((const char *)data, size, JSON_MAX_DEPTH,
	    &jerr)) != NULL) {
		if (cJSON_IsObject(doc))
			for (i = 0; i < sc->ntables; i++)
				if (sc->tables[i].valid != NULL)
					run_validator(sc->tables[i].valid, doc);
		cJSON_Delete(doc);
	}
	buf_init(&text);
	print(&text, sc);
	again = schema_parse(text.data, text.len, &err);
	need(again != NULL && same(sc, again));
	schema_free(again);
	schema_free(sc);
	buf_free(&text);
	return 0;
}
