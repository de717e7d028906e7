/*
 * Fuzz target for the schema file parser (writerd/schema.c): the input is
 * the text of a schema file, given to schema_parse and the result freed
 * with schema_free.  The checks: a refusal comes with an error code and a
 * message; an accepted schema has distinct valid table names, distinct
 * valid index names that are not the built-in ones, 1 to
 * STORE_MAX_INDEX_FIELDS valid field names per index, no more indexes per
 * table than the catalog can take besides the built-ins; and printed back
 * as a schema file it parses again to exactly the same schema.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
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
		buf_adds(b, i % 2 == 0 ? ":{\"indexes\":{" : ":{");
		for (j = 0; j < t->nindexes; j++) {
			ix = &t->indexes[j];
			if (i % 2 == 1 && j == 0)
				buf_adds(b, "\"indexes\":{");
			if (j > 0)
				buf_addc(b, ',');
			json_print_string(b, ix->name, strlen(ix->name));
			buf_adds(b, ix->unique ? ":{\"unique\":true,\"fields\":[" :
			    ":[");
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
		    a->tables[i].nindexes != b->tables[i].nindexes)
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
	buf_init(&text);
	print(&text, sc);
	again = schema_parse(text.data, text.len, &err);
	need(again != NULL && same(sc, again));
	schema_free(again);
	schema_free(sc);
	buf_free(&text);
	return 0;
}
