/*
 * Tests of the schema's validators (writerd/validate.c): a table of
 * documents accepted and refused per type (scalars, any, enum, id,
 * arrays, nested objects, unions, optional fields, strict at the top and
 * nested), each refusal with the data.path it must name; the order in
 * which failures are reported; validators that must not compile, with
 * the limits at and one past their bound; and schema files with
 * validators through schema_parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "validate.h"
#include "writerd.h"

#define ID	"0123456789abcdefghjkmnpqrs"	/* a document id */

/* A table's fields and strict, as in a schema file. */
static const char *const schemas[] = {
	/* 0: every scalar, optional forms, any */
	"{\"fields\":{\"s\":\"string\",\"n\":\"number\",\"b\":\"boolean\","
	"\"z\":\"null\",\"a\":\"any\",\"o\":\"object\",\"l\":\"array\","
	"\"opt\":\"string?\"}}",
	/* 1: enum, id, optional object form */
	"{\"fields\":{\"role\":{\"enum\":[\"user\",\"assistant\",1,true,"
	"null]},\"thread\":{\"id\":\"threads\"},\"maybe\":{\"id\":\"t\","
	"\"optional\":true}}}",
	/* 2: the example of DESIGN: nested object with an array */
	"{\"fields\":{\"threadId\":{\"id\":\"threads\"},\"role\":{\"enum\":"
	"[\"user\",\"assistant\"]},\"text\":\"string\",\"tokens\":\"number?\","
	"\"meta\":{\"object\":{\"tags\":{\"array\":\"string\"}},"
	"\"optional\":true}},\"strict\":true}",
	/* 3: unions, arrays of arrays, arrays of objects */
	"{\"fields\":{\"v\":{\"union\":[\"string\",\"number\",{\"array\":"
	"\"boolean\"}]},\"grid\":{\"array\":{\"array\":\"number\"},"
	"\"optional\":true},"
	"\"items\":{\"array\":{\"object\":{\"k\":\"string\",\"w\":\"number?\"},"
	"\"strict\":true},\"optional\":true}}}",
	/* 4: strict with no declared fields: only system fields */
	"{\"strict\":true}",
	/* 5: a nested object that is strict, the top not */
	"{\"fields\":{\"p\":{\"object\":{\"x\":\"number\","
	"\"q\":{\"object\":{\"deep\":\"string\"},"
	"\"strict\":true}}}}}",
};

static const struct vcase {
	int		 schema;
	const char	*doc;		/* user fields of the document */
	const char	*path;		/* NULL: accepted */
} cases[] = {
	/* Scalars. */
	{ 0, "{\"s\":\"x\",\"n\":1.5,\"b\":false,\"z\":null,\"a\":[1],"
	    "\"o\":{},\"l\":[]}", NULL },
	{ 0, "{\"s\":\"\",\"n\":-0,\"b\":true,\"z\":null,\"a\":null,"
	    "\"o\":{\"k\":1},\"l\":[1,\"a\"],\"opt\":\"here\",\"extra\":1}",
	    NULL },
	{ 0, "{\"s\":1,\"n\":1,\"b\":true,\"z\":null,\"a\":1,\"o\":{},"
	    "\"l\":[]}", "s" },
	{ 0, "{\"s\":\"x\",\"n\":\"1\",\"b\":true,\"z\":null,\"a\":1,"
	    "\"o\":{},\"l\":[]}", "n" },
	{ 0, "{\"s\":\"x\",\"n\":1,\"b\":0,\"z\":null,\"a\":1,\"o\":{},"
	    "\"l\":[]}", "b" },
	{ 0, "{\"s\":\"x\",\"n\":1,\"b\":true,\"z\":false,\"a\":1,\"o\":{},"
	    "\"l\":[]}", "z" },
	{ 0, "{\"s\":\"x\",\"n\":1,\"b\":true,\"z\":null,\"a\":1,\"o\":[],"
	    "\"l\":[]}", "o" },
	{ 0, "{\"s\":\"x\",\"n\":1,\"b\":true,\"z\":null,\"a\":1,\"o\":{},"
	    "\"l\":{}}", "l" },
	{ 0, "{\"s\":\"x\",\"n\":1,\"b\":true,\"z\":null,\"o\":{},\"l\":[]}",
	    "a" },
	{ 0, "{\"s\":\"x\",\"n\":1,\"b\":true,\"z\":null,\"a\":1,\"o\":{},"
	    "\"l\":[],\"opt\":null}", "opt" },
	{ 0, "{}", "s" },
	/* The first failure in the schema's order, not the document's. */
	{ 0, "{\"l\":1,\"o\":1,\"n\":\"x\"}", "s" },
	{ 0, "{\"l\":1,\"o\":1,\"s\":\"x\",\"n\":\"x\"}", "n" },
	/* Enum and id. */
	{ 1, "{\"role\":\"user\",\"thread\":\"" ID "\"}", NULL },
	{ 1, "{\"role\":1,\"thread\":\"" ID "\",\"maybe\":\"" ID "\"}", NULL },
	{ 1, "{\"role\":true,\"thread\":\"" ID "\"}", NULL },
	{ 1, "{\"role\":null,\"thread\":\"" ID "\"}", NULL },
	{ 1, "{\"role\":\"admin\",\"thread\":\"" ID "\"}", "role" },
	{ 1, "{\"role\":\"User\",\"thread\":\"" ID "\"}", "role" },
	{ 1, "{\"role\":\"1\",\"thread\":\"" ID "\"}", "role" },
	{ 1, "{\"role\":false,\"thread\":\"" ID "\"}", "role" },
	{ 1, "{\"role\":2,\"thread\":\"" ID "\"}", "role" },
	{ 1, "{\"role\":[\"user\"],\"thread\":\"" ID "\"}", "role" },
	{ 1, "{\"role\":\"user\",\"thread\":\"not an id\"}", "thread" },
	{ 1, "{\"role\":\"user\",\"thread\":\"" ID "x\"}", "thread" },
	{ 1, "{\"role\":\"user\",\"thread\":\"0123456789ABCDEFGHJKMNPQRS\"}",
	    "thread" },
	{ 1, "{\"role\":\"user\",\"thread\":12}", "thread" },
	{ 1, "{\"role\":\"user\",\"thread\":\"" ID "\",\"maybe\":7}",
	    "maybe" },
	/* Nested objects, arrays, strict at the top. */
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\",\"text\":\"hi\"}",
	    NULL },
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\",\"text\":\"hi\","
	    "\"tokens\":3,\"meta\":{\"tags\":[\"a\",\"b\"],\"more\":1}}",
	    NULL },
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\",\"text\":\"hi\","
	    "\"meta\":{\"tags\":[\"a\",\"b\",3]}}", "meta.tags[2]" },
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\",\"text\":\"hi\","
	    "\"meta\":{\"tags\":\"a\"}}", "meta.tags" },
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\",\"text\":\"hi\","
	    "\"meta\":{}}", "meta.tags" },
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\",\"text\":\"hi\","
	    "\"meta\":[]}", "meta" },
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\",\"text\":\"hi\","
	    "\"extra\":1}", "extra" },
	/* Declared failures come before undeclared fields. */
	{ 2, "{\"extra\":1,\"threadId\":\"" ID "\",\"role\":\"bot\","
	    "\"text\":\"hi\"}", "role" },
	/* Undeclared fields in the document's order. */
	{ 2, "{\"zz\":1,\"threadId\":\"" ID "\",\"aa\":2,\"role\":\"user\","
	    "\"text\":\"hi\"}", "zz" },
	{ 2, "{\"threadId\":\"" ID "\",\"role\":\"user\"}", "text" },
	/* Unions and arrays of arrays and objects. */
	{ 3, "{\"v\":\"s\"}", NULL },
	{ 3, "{\"v\":2,\"grid\":[[1,2],[],[3]]}", NULL },
	{ 3, "{\"v\":[true,false],\"items\":[{\"k\":\"a\"},{\"k\":\"b\","
	    "\"w\":2}]}", NULL },
	{ 3, "{\"v\":null}", "v" },
	{ 3, "{\"v\":[true,1]}", "v" },
	{ 3, "{\"v\":{}}", "v" },
	{ 3, "{\"v\":1,\"grid\":[[1],[2,\"x\"]]}", "grid[1][1]" },
	{ 3, "{\"v\":1,\"grid\":[1]}", "grid[0]" },
	{ 3, "{\"v\":1,\"items\":[{\"k\":\"a\"},{\"w\":1}]}", "items[1].k" },
	{ 3, "{\"v\":1,\"items\":[{\"k\":\"a\",\"x\":1}]}", "items[0].x" },
	{ 3, "{\"v\":1,\"items\":[{\"k\":\"a\",\"w\":\"1\"}]}", "items[0].w" },
	/* Strict with nothing declared. */
	{ 4, "{}", NULL },
	{ 4, "{\"a\":1}", "a" },
	/* Strict only where it is said. */
	{ 5, "{\"p\":{\"x\":1,\"other\":2,\"q\":{\"deep\":\"d\"}},\"top\":1}",
	    NULL },
	{ 5, "{\"p\":{\"x\":1,\"q\":{\"deep\":\"d\",\"no\":1}}}", "p.q.no" },
	{ 5, "{\"p\":{\"x\":1,\"q\":{}}}", "p.q.deep" },
	{ 5, "{\"p\":{\"q\":{\"deep\":\"d\"}}}", "p.x" },
	{ 5, "{}", "p" },
};

/* The stored document: system fields, then the user fields of doc. */
static cJSON *
stored(const char *user)
{
	enum json_err	 jerr;
	struct buf	 b;
	cJSON		*d;

	buf_init(&b);
	buf_adds(&b, "{\"_id\":\"" ID "\",\"_creationTime\":1.5");
	if (strcmp(user, "{}") != 0) {
		buf_addc(&b, ',');
		buf_adds(&b, user + 1);
	} else
		buf_addc(&b, '}');
	d = json_parse(b.data, b.len, JSON_MAX_DEPTH, &jerr);
	buf_free(&b);
	return d;
}

static struct vtype *
compile(const char *table, struct tv_error *err)
{
	enum json_err	 jerr;
	cJSON		*t;
	struct vtype	*v;

	memset(err, 0, sizeof(*err));
	t = json_parse(table, strlen(table), VALIDATE_JSON_DEPTH, &jerr);
	if (t == NULL)
		return NULL;
	v = validate_compile(json_get(t, "fields"), json_get(t, "strict"),
	    err);
	cJSON_Delete(t);
	return v;
}

static void
test_table(void)
{
	struct vtype	*v[nitems(schemas)];
	struct tv_error	 err;
	char		 want[256], name[64];
	cJSON		*doc;
	size_t		 i;
	int		 rc;

	for (i = 0; i < nitems(schemas); i++) {
		v[i] = compile(schemas[i], &err);
		snprintf(name, sizeof(name), "schema %zu", i);
		check(v[i] != NULL, err.message, name);
	}
	for (i = 0; i < nitems(cases); i++) {
		snprintf(name, sizeof(name), "case %zu (schema %d)", i,
		    cases[i].schema);
		if (v[cases[i].schema] == NULL)
			continue;
		if ((doc = stored(cases[i].doc)) == NULL) {
			check(0, "the test's document parses", name);
			continue;
		}
		memset(&err, 0, sizeof(err));
		rc = validate_doc(v[cases[i].schema], doc, &err);
		cJSON_Delete(doc);
		if (cases[i].path == NULL) {
			check(rc == 0 && err.code == 0, err.message, name);
			continue;
		}
		snprintf(want, sizeof(want), "{\"path\":\"%s\"}",
		    cases[i].path);
		check(rc == -1 && err.code == TV_VALIDATION,
		    "refused with ValidationError", name);
		check(strcmp(err.data, want) == 0, cases[i].path, name);
		if (strcmp(err.data, want) != 0)
			printf("     got %s (%s)\n", err.data, err.message);
		check(strstr(err.message, cases[i].path) != NULL,
		    "the message names the path", name);
	}
	for (i = 0; i < nitems(schemas); i++)
		validate_free(v[i]);
}

/* Validators that must not compile (NULL want: they must). */
static void
test_refused(void)
{
	static const struct {
		const char	*table;
		int		 code;
	} bad[] = {
		{ "{\"fields\":{\"a\":\"str\"}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":\"String\"}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":\"string??\"}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":\"?\"}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":\"\"}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":1}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":null}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":[\"string\"]}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"enum\":[]}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"enum\":\"x\"}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"enum\":[[1]]}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"enum\":[{}]}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"id\":\"_x\"}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"id\":1}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"array\":\"string?\"}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"array\":{\"id\":\"t\","
		    "\"optional\":true}}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"union\":[]}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"union\":[\"number?\"]}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"union\":\"string\"}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"array\":\"string\",\"id\":\"t\"}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"array\":\"string\",\"strict\":true}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"object\":{},\"strict\":1}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"object\":[]}}}", TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"object\":{\"_b\":\"string\"}}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"id\":\"t\",\"optional\":1}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"a\":{\"id\":\"t\",\"nullable\":true}}}",
		    TV_VALIDATION },
		{ "{\"fields\":{\"_id\":\"string\"}}", TV_VALIDATION },
		{ "{\"fields\":{\"a-b\":\"string\"}}", TV_VALIDATION },
		{ "{\"fields\":[]}", TV_VALIDATION },
		{ "{\"fields\":{},\"strict\":\"yes\"}", TV_VALIDATION },
	};
	struct tv_error	 err;
	struct vtype	*v;
	size_t		 i;

	for (i = 0; i < nitems(bad); i++) {
		v = compile(bad[i].table, &err);
		check(v == NULL && err.code == bad[i].code &&
		    err.message[0] != '\0', "refused", bad[i].table);
		validate_free(v);
	}
	v = compile("{}", &err);
	check(v == NULL && err.code == 0, "no fields, no strict: no validator",
	    "{}");
}

/* {"array": ... {"array": "string"}} n deep, as a field. */
static void
nested_arrays(struct buf *b, int n)
{
	int	 i;

	buf_adds(b, "{\"fields\":{\"a\":");
	for (i = 1; i < n; i++)
		buf_adds(b, "{\"array\":");
	buf_adds(b, "\"string\"");
	for (i = 1; i < n; i++)
		buf_addc(b, '}');
	buf_adds(b, "}}");
}

static void
test_limits(void)
{
	struct tv_error	 err;
	struct vtype	*v;
	struct buf	 b;
	cJSON		*doc;
	int		 i;

	buf_init(&b);
	nested_arrays(&b, VALIDATE_MAX_DEPTH);
	v = compile(b.data, &err);
	check(v != NULL, "types nested VALIDATE_MAX_DEPTH deep", "depth");
	validate_free(v);
	buf_reset(&b);
	nested_arrays(&b, VALIDATE_MAX_DEPTH + 1);
	v = compile(b.data, &err);
	check(v == NULL && err.code == TV_TOO_LARGE, "one deeper: TooLarge",
	    "depth");

	/* The longest path: nested objects of 64-character names. */
	buf_reset(&b);
	buf_adds(&b, "{\"fields\":{");
	for (i = 0; i < VALIDATE_MAX_DEPTH - 1; i++)
		buf_printf(&b, "\"%c%063d\":{\"object\":{", 'a' + i % 26, i);
	buf_printf(&b, "\"%c%063d\":\"number\"", 'z', i);
	for (i = 0; i < VALIDATE_MAX_DEPTH - 1; i++)
		buf_adds(&b, "}}");
	buf_adds(&b, "},\"strict\":true}");
	v = compile(b.data, &err);
	check(v != NULL, err.message, "longest path compiles");
	buf_reset(&b);
	for (i = 0; i < VALIDATE_MAX_DEPTH - 1; i++)
		buf_printf(&b, "{\"%c%063d\":", 'a' + i % 26, i);
	buf_printf(&b, "{\"%c%063d\":\"not a number\"}", 'z', i);
	for (i = 0; i < VALIDATE_MAX_DEPTH - 1; i++)
		buf_addc(&b, '}');
	if (v != NULL && (doc = stored(b.data)) != NULL) {
		check(validate_doc(v, doc, &err) == -1 &&
		    strlen(err.data) > (size_t)VALIDATE_MAX_DEPTH * 65 &&
		    err.data[strlen(err.data) - 1] == '}',
		    "the longest path is reported whole", "longest path");
		cJSON_Delete(doc);
	}
	validate_free(v);

	/* Enum values at and past the limit. */
	buf_reset(&b);
	buf_adds(&b, "{\"fields\":{\"e\":{\"enum\":[0");
	for (i = 1; i < VALIDATE_MAX_CHOICES; i++)
		buf_printf(&b, ",%d", i);
	buf_adds(&b, "]}}}");
	v = compile(b.data, &err);
	check(v != NULL, "VALIDATE_MAX_CHOICES enum values", "enum");
	validate_free(v);
	b.len -= 4;
	buf_printf(&b, ",%d]}}}", i);
	v = compile(b.data, &err);
	check(v == NULL, "one more: refused", "enum");

	/* Fields of one object at and past the limit. */
	buf_reset(&b);
	buf_adds(&b, "{\"fields\":{");
	for (i = 0; i < VALIDATE_MAX_FIELDS; i++)
		buf_printf(&b, "%s\"f%d\":\"any\"", i > 0 ? "," : "", i);
	buf_adds(&b, "}}");
	v = compile(b.data, &err);
	check(v != NULL, "VALIDATE_MAX_FIELDS fields", "fields");
	validate_free(v);
	b.len -= 2;
	buf_printf(&b, ",\"f%d\":\"any\"}}", i);
	v = compile(b.data, &err);
	check(v == NULL && err.code == TV_TOO_LARGE, "one more: TooLarge",
	    "fields");

	/* Types in one table past VALIDATE_MAX_NODES. */
	buf_reset(&b);
	buf_adds(&b, "{\"fields\":{");
	for (i = 0; i < VALIDATE_MAX_NODES / 8 + 1; i++)
		buf_printf(&b, "%s\"u%d\":{\"union\":[\"string\",\"number\","
		    "\"null\",\"boolean\",\"any\",\"object\",\"array\"]}",
		    i > 0 ? "," : "", i);
	buf_adds(&b, "}}");
	v = compile(b.data, &err);
	check(v == NULL && err.code == TV_TOO_LARGE, "over "
	    "VALIDATE_MAX_NODES types: TooLarge", "nodes");
	buf_free(&b);
}

/* Validators through the schema file parser. */
static void
test_schema_parse(void)
{
	static const char ok[] = "{\"tables\":{\"messages\":{\"fields\":{"
	    "\"threadId\":{\"id\":\"threads\"},\"text\":\"string\"},"
	    "\"strict\":true,\"indexes\":{\"by_thread\":[\"threadId\"]}},"
	    "\"threads\":{}}}";
	static const char *const bad[] = {
		"{\"tables\":{\"m\":{\"fields\":{\"a\":\"strin\"}}}}",
		"{\"tables\":{\"m\":"
		"{\"fields\":{\"a\":\"string\"},"
		"\"stric\":true}}}",
		"{\"tables\":{\"m\":{\"strict\":null}}}",
	};
	struct schema	*sc;
	struct tv_error	 err;
	cJSON		*doc;
	size_t		 i;

	memset(&err, 0, sizeof(err));
	sc = schema_parse(ok, strlen(ok), &err);
	check(sc != NULL && sc->ntables == 2 && sc->tables[0].valid != NULL &&
	    sc->tables[1].valid == NULL && sc->tables[0].nindexes == 1,
	    err.message, "schema_parse with validators");
	if (sc != NULL) {
		doc = stored("{\"threadId\":\"" ID "\",\"text\":\"t\"}");
		check(schema_validate(sc, "messages", doc, &err) == 0,
		    "a conforming document", "schema_validate");
		cJSON_AddItemToObject(doc, "x", cJSON_CreateTrue());
		check(schema_validate(sc, "messages", doc, &err) == -1 &&
		    strcmp(err.data, "{\"path\":\"x\"}") == 0,
		    "strict refuses x", "schema_validate");
		check(schema_validate(sc, "threads", doc, &err) == 0 &&
		    schema_validate(sc, "other", doc, &err) == 0 &&
		    schema_validate(NULL, "messages", doc, &err) == 0,
		    "tables without validators take anything",
		    "schema_validate");
		cJSON_Delete(doc);
	}
	schema_free(sc);
	for (i = 0; i < nitems(bad); i++) {
		memset(&err, 0, sizeof(err));
		sc = schema_parse(bad[i], strlen(bad[i]), &err);
		check(sc == NULL && err.code == TV_VALIDATION &&
		    strstr(err.message, "table m") != NULL,
		    "refused, naming the table", bad[i]);
		schema_free(sc);
	}
}

int
main(void)
{
	test_table();
	test_refused();
	test_limits();
	test_schema_parse();
	printf("%ld checks, %d failed\n", nchecks, nfail);
	return nfail == 0 ? 0 : 1;
}
