/*
 * Unit tests for gatewayd/diff.c: result hashes against SHA-256 vectors,
 * the diff of each result shape on hand-written cases (the ops expected
 * byte for byte), the shapes no diff expresses, and a seeded randomized
 * round trip: random document arrays, random inserts, deletes, moves,
 * patches, appends and unsets, diffed, applied by an independent applier
 * written here, and compared with the new result.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gatewayd.h"
#include "json.h"
#include "util.h"

#define RANDOM_RUNS	3000	/* random old/new result pairs */
#define RANDOM_DOCS	12	/* documents in one random array, at most */
#define RANDOM_FIELDS	4	/* user fields per random document */

#define CHECK_SEED	0x2545f4914f6cdd1dULL	/* fixed: runs repeat */

#include "check.h"

static void
test_hash(void)
{
	char	 h[DIFF_HASH_LEN + 1];

	/* python3: base64.urlsafe_b64encode(sha256(v).digest()[:16]) */
	diff_hash("[]", 2, h);
	CHECK(strcmp(h, "T1PNoYwrqgwDVLtfmj7L5Q") == 0, "hash of []: %s", h);
	diff_hash("null", 4, h);
	CHECK(strcmp(h, "dCNOmK_nSY-12vHzasLXig") == 0, "hash of null: %s",
	    h);
	CHECK(strlen(h) == DIFF_HASH_LEN, "hash length %zu", strlen(h));
}

struct case_ {
	const char	*old;
	const char	*new;
	const char	*want;		/* NULL: no diff */
};

static const struct case_ cases[] = {
	/* db/query: an append to a string field costs the suffix. */
	{ "[{\"_id\":\"a\",\"t\":\"hel\"}]",
	  "[{\"_id\":\"a\",\"t\":\"hello\"}]",
	  "\"ops\":[{\"op\":\"update\",\"id\":\"a\","
	  "\"append\":{\"t\":\"lo\"}}]" },
	/* set, unset and append in one update. */
	{ "[{\"_id\":\"a\",\"t\":\"x\",\"n\":1,\"g\":true}]",
	  "[{\"_id\":\"a\",\"t\":\"xy\",\"n\":2,\"k\":null}]",
	  "\"ops\":[{\"op\":\"update\",\"id\":\"a\",\"set\":{\"n\":2,"
	  "\"k\":null},\"unset\":[\"g\"],\"append\":{\"t\":\"y\"}}]" },
	/* A string that does not start with the old one is set. */
	{ "[{\"_id\":\"a\",\"t\":\"abc\"}]", "[{\"_id\":\"a\",\"t\":\"ab\"}]",
	  "\"ops\":[{\"op\":\"update\",\"id\":\"a\",\"set\":{\"t\":\"ab\"}}]" },
	/* remove and insert */
	{ "[{\"_id\":\"a\"},{\"_id\":\"b\"}]",
	  "[{\"_id\":\"b\"},{\"_id\":\"c\"}]",
	  "\"ops\":[{\"op\":\"remove\",\"id\":\"a\"},{\"op\":\"insert\","
	  "\"at\":1,\"doc\":{\"_id\":\"c\"}}]" },
	/* A document that moved is a remove and an insert. */
	{ "[{\"_id\":\"a\"},{\"_id\":\"b\"},{\"_id\":\"c\"}]",
	  "[{\"_id\":\"b\"},{\"_id\":\"c\"},{\"_id\":\"a\",\"x\":1}]",
	  "\"ops\":[{\"op\":\"remove\",\"id\":\"a\"},{\"op\":\"insert\","
	  "\"at\":2,\"doc\":{\"_id\":\"a\",\"x\":1}}]" },
	/* The worked examples of tinyvex(7). */
	{ "[{\"_id\":\"a\",\"text\":\"Hel\",\"n\":1},{\"_id\":\"b\","
	  "\"text\":\"x\"},{\"_id\":\"c\",\"text\":\"y\",\"tag\":\"old\"}]",
	  "[{\"_id\":\"d\",\"text\":\"z\"},{\"_id\":\"a\",\"text\":\"Hello\","
	  "\"n\":1},{\"_id\":\"c\",\"text\":\"y\",\"n\":2}]",
	  "\"ops\":[{\"op\":\"remove\",\"id\":\"b\"},{\"op\":\"insert\","
	  "\"at\":0,\"doc\":{\"_id\":\"d\",\"text\":\"z\"}},{\"op\":"
	  "\"update\",\"id\":\"a\",\"append\":{\"text\":\"lo\"}},{\"op\":"
	  "\"update\",\"id\":\"c\",\"set\":{\"n\":2},\"unset\":[\"tag\"]}]" },
	{ "[{\"_id\":\"d\",\"text\":\"z\"},{\"_id\":\"a\",\"text\":\"Hello\","
	  "\"n\":1},{\"_id\":\"c\",\"text\":\"y\",\"n\":2}]",
	  "[{\"_id\":\"d\",\"text\":\"z\"},{\"_id\":\"c\",\"text\":\"y\","
	  "\"n\":2},{\"_id\":\"a\",\"text\":\"Hello\",\"n\":1}]",
	  "\"ops\":[{\"op\":\"remove\",\"id\":\"a\"},{\"op\":\"insert\","
	  "\"at\":2,\"doc\":{\"_id\":\"a\",\"text\":\"Hello\",\"n\":1}}]" },
	/* Nothing changed in value: no ops. */
	{ "[]", "[]", "\"ops\":[]" },
	/* db/get: one update without id. */
	{ "{\"_id\":\"a\",\"t\":\"to\"}", "{\"_id\":\"a\",\"t\":\"token\"}",
	  "\"ops\":[{\"op\":\"update\",\"append\":{\"t\":\"ken\"}}]" },
	/* To or from null: no diff. */
	{ "null", "{\"_id\":\"a\"}", NULL },
	{ "{\"_id\":\"a\"}", "null", NULL },
	/* db/paginate: the page, and the other members as fields. */
	{ "{\"page\":[{\"_id\":\"a\"}],\"continueCursor\":\"c1\","
	  "\"isDone\":false}",
	  "{\"page\":[{\"_id\":\"a\"},{\"_id\":\"b\"}],\"continueCursor\":"
	  "\"c2\",\"isDone\":false}",
	  "\"ops\":[{\"op\":\"insert\",\"at\":1,\"doc\":{\"_id\":\"b\"}}],"
	  "\"fields\":{\"continueCursor\":\"c2\"}" },
	/* A member a page result lost cannot be said with fields. */
	{ "{\"page\":[],\"x\":1}", "{\"page\":[]}", NULL },
	/* Shapes differ, ids missing or repeated: no diff. */
	{ "[]", "{\"page\":[]}", NULL },
	{ "[{\"x\":1}]", "[]", NULL },
	{ "[{\"_id\":\"a\"},{\"_id\":\"a\"}]", "[]", NULL },
	{ "[]", "[{\"_id\":1}]", NULL },
	{ "1", "2", NULL },
};

static void
test_cases(void)
{
	struct buf	 b;
	size_t		 i;
	int		 rc;

	buf_init(&b);
	for (i = 0; i < nitems(cases); i++) {
		buf_reset(&b);
		buf_adds(&b, "X");
		rc = diff_results(cases[i].old, strlen(cases[i].old),
		    cases[i].new, strlen(cases[i].new), &b);
		if (cases[i].want == NULL) {
			CHECK(rc == -1 && b.len == 1, "case %zu: a diff: %s",
			    i, b.data);
			continue;
		}
		CHECK(rc == 0 && b.len > 0 && strcmp(b.data + 1,
		    cases[i].want) == 0, "case %zu: got %s want %s", i,
		    b.data, cases[i].want);
	}
	buf_free(&b);
}

/*
 * Put item at index at of arr (at == size appends).  Not with
 * cJSON_InsertItemInArray: Debian's cJSON 1.7.15 refuses to insert before
 * an element whose prev link its parser left unset.
 */
static void
arr_insert(cJSON *arr, int at, cJSON *item)
{
	cJSON	*rest = cJSON_CreateArray(), *d;

	while (cJSON_GetArraySize(arr) > at)
		cJSON_AddItemToArray(rest, cJSON_DetachItemFromArray(arr, at));
	cJSON_AddItemToArray(arr, item);
	while ((d = cJSON_DetachItemFromArray(rest, 0)) != NULL)
		cJSON_AddItemToArray(arr, d);
	cJSON_Delete(rest);
}

/* The applier: DESIGN §5's rules, written apart from diff.c. */
static cJSON *
find_doc(cJSON *arr, const char *id, int *at)
{
	cJSON	*d, *i;
	int	 k = 0;

	cJSON_ArrayForEach(d, arr) {
		i = cJSON_GetObjectItemCaseSensitive(d, "_id");
		if (cJSON_IsString(i) && strcmp(i->valuestring, id) == 0) {
			if (at != NULL)
				*at = k;
			return d;
		}
		k++;
	}
	return NULL;
}

static int
apply_update(cJSON *doc, const cJSON *op)
{
	const cJSON	*set, *unset, *app, *f;
	cJSON		*cur;
	char		*s;
	size_t		 l1, l2;

	if (doc == NULL)
		return -1;
	set = cJSON_GetObjectItemCaseSensitive(op, "set");
	unset = cJSON_GetObjectItemCaseSensitive(op, "unset");
	app = cJSON_GetObjectItemCaseSensitive(op, "append");
	cJSON_ArrayForEach(f, set) {
		cJSON_DeleteItemFromObjectCaseSensitive(doc, f->string);
		cJSON_AddItemToObject(doc, f->string, cJSON_Duplicate(f, 1));
	}
	cJSON_ArrayForEach(f, unset)
		cJSON_DeleteItemFromObjectCaseSensitive(doc, f->valuestring);
	cJSON_ArrayForEach(f, app) {
		cur = cJSON_GetObjectItemCaseSensitive(doc, f->string);
		if (!cJSON_IsString(cur))
			return -1;
		l1 = strlen(cur->valuestring);
		l2 = strlen(f->valuestring);
		s = xmalloc(l1 + l2 + 1);
		memcpy(s, cur->valuestring, l1);
		memcpy(s + l1, f->valuestring, l2 + 1);
		cJSON_ReplaceItemInObjectCaseSensitive(doc, f->string,
		    cJSON_CreateString(s));
		free(s);
	}
	return 0;
}

/* Apply "ops":[...] (wrapped into an object) to value; -1 when invalid. */
static int
apply(cJSON **value, const char *members)
{
	struct buf	 w;
	cJSON		*d, *ops, *op, *arr, *f;
	const char	*kind;
	enum json_err	 jerr;
	int		 at = 0, rc = -1;

	buf_init(&w);
	buf_addc(&w, '{');
	buf_adds(&w, members);
	buf_addc(&w, '}');
	d = json_parse(w.data, w.len, JSON_MAX_DEPTH, &jerr);
	buf_free(&w);
	if (d == NULL)
		return -1;
	ops = cJSON_GetObjectItemCaseSensitive(d, "ops");
	arr = cJSON_IsObject(*value) && !cJSON_HasObjectItem(*value, "_id") ?
	    cJSON_GetObjectItemCaseSensitive(*value, "page") : *value;
	cJSON_ArrayForEach(op, ops) {
		kind = cJSON_GetObjectItemCaseSensitive(op, "op")->valuestring;
		if (strcmp(kind, "remove") == 0) {
			if (find_doc(arr, cJSON_GetObjectItemCaseSensitive(op,
			    "id")->valuestring, &at) == NULL)
				goto done;
			cJSON_DeleteItemFromArray(arr, at);
		} else if (strcmp(kind, "insert") == 0) {
			at = cJSON_GetObjectItemCaseSensitive(op,
			    "at")->valueint;
			if (at < 0 || at > cJSON_GetArraySize(arr))
				goto done;
			arr_insert(arr, at, cJSON_Duplicate(
			    cJSON_GetObjectItemCaseSensitive(op, "doc"), 1));
		} else if (strcmp(kind, "update") == 0) {
			f = cJSON_GetObjectItemCaseSensitive(op, "id");
			if (apply_update(f == NULL ? *value : find_doc(arr,
			    f->valuestring, NULL), op) == -1)
				goto done;
		} else
			goto done;
	}
	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(d, "fields")) {
		cJSON_DeleteItemFromObjectCaseSensitive(*value, f->string);
		cJSON_AddItemToObject(*value, f->string, cJSON_Duplicate(f, 1));
	}
	rc = 0;
done:
	cJSON_Delete(d);
	return rc;
}

static cJSON *
random_doc(unsigned id)
{
	static const char *const names[] = { "a", "b", "text", "n" };
	cJSON	*d = cJSON_CreateObject();
	char	 s[32];
	int	 i;

	snprintf(s, sizeof(s), "id%u", id);
	cJSON_AddStringToObject(d, "_id", s);
	for (i = 0; i < RANDOM_FIELDS; i++) {
		if (rnd() % 3 == 0)
			continue;
		if (rnd() % 2)
			cJSON_AddNumberToObject(d, names[i],
			    (double)(rnd() % 100));
		else {
			snprintf(s, sizeof(s), "s%u", (unsigned)(rnd() % 50));
			cJSON_AddStringToObject(d, names[i], s);
		}
	}
	return d;
}

/* Change one document: append, set, unset a field. */
static void
random_change(cJSON *d)
{
	static const char *const names[] = { "a", "b", "text", "n" };
	const char	*name = names[rnd() % nitems(names)];
	cJSON		*f = cJSON_GetObjectItemCaseSensitive(d, name);
	char		 s[128];

	switch (rnd() % 3) {
	case 0:
		if (cJSON_IsString(f)) {
			snprintf(s, sizeof(s), "%s tok%u", f->valuestring,
			    (unsigned)(rnd() % 10));
			cJSON_ReplaceItemInObjectCaseSensitive(d, name,
			    cJSON_CreateString(s));
			break;
		}
		/* FALLTHROUGH */
	case 1:
		cJSON_DeleteItemFromObjectCaseSensitive(d, name);
		cJSON_AddNumberToObject(d, name, (double)(rnd() % 100));
		break;
	default:
		cJSON_DeleteItemFromObjectCaseSensitive(d, name);
		break;
	}
}

static cJSON *
random_next(const cJSON *old, unsigned *next_id)
{
	cJSON	*n = cJSON_Duplicate(old, 1), *d;
	int	 k, size, i, j;

	for (k = (int)(rnd() % 4); k >= 0; k--) {
		size = cJSON_GetArraySize(n);
		switch (rnd() % 4) {
		case 0:
			if (size < RANDOM_DOCS)
				arr_insert(n, (int)(rnd() % (size + 1)),
				    random_doc((*next_id)++));
			break;
		case 1:
			if (size > 0)
				cJSON_DeleteItemFromArray(n, (int)(rnd() %
				    size));
			break;
		case 2:
			if (size > 1) {
				i = (int)(rnd() % size);
				j = (int)(rnd() % size);
				d = cJSON_DetachItemFromArray(n, i);
				arr_insert(n, j < size - 1 ? j : size - 1, d);
			}
			break;
		default:
			if (size > 0)
				random_change(cJSON_GetArrayItem(n,
				    (int)(rnd() % size)));
			break;
		}
	}
	return n;
}

static int
same(const cJSON *a, const cJSON *b)
{
	struct buf	 x, y;
	int		 eq;

	buf_init(&x);
	buf_init(&y);
	json_print_canonical(&x, a);
	json_print_canonical(&y, b);
	eq = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	buf_free(&x);
	buf_free(&y);
	return eq;
}

static void
test_random(void)
{
	struct buf	 ot, nt, d;
	cJSON		*old, *new, *held, *page;
	unsigned	 next_id = 0;
	int		 run, paged, i, size;

	buf_init(&ot);
	buf_init(&nt);
	buf_init(&d);
	old = cJSON_CreateArray();
	for (run = 0; run < RANDOM_RUNS; run++) {
		new = random_next(old, &next_id);
		paged = run % 3 == 0;
		buf_reset(&ot);
		buf_reset(&nt);
		buf_reset(&d);
		if (paged) {
			buf_adds(&ot, "{\"page\":");
			json_print(&ot, old);
			buf_printf(&ot, ",\"continueCursor\":\"c%d\","
			    "\"isDone\":false}", run);
			buf_adds(&nt, "{\"page\":");
			json_print(&nt, new);
			buf_printf(&nt, ",\"continueCursor\":\"c%d\","
			    "\"isDone\":%s}", run + 1, run % 2 ? "true" :
			    "false");
		} else if (run % 3 == 1 && cJSON_GetArraySize(old) > 0 &&
		    cJSON_GetArraySize(new) > 0) {
			/* One document, as db/get returns it. */
			json_print(&ot, cJSON_GetArrayItem(old, 0));
			page = cJSON_Duplicate(cJSON_GetArrayItem(old, 0), 1);
			random_change(page);
			json_print(&nt, page);
			cJSON_Delete(page);
		} else {
			json_print(&ot, old);
			json_print(&nt, new);
		}
		if (diff_results(ot.data, ot.len, nt.data, nt.len, &d) == -1) {
			CHECK(0, "run %d: no diff for %s -> %s", run, ot.data,
			    nt.data);
			goto next;
		}
		held = cJSON_Parse(ot.data);
		CHECK(apply(&held, d.data) == 0, "run %d: ops do not apply: "
		    "%s", run, d.data);
		page = cJSON_Parse(nt.data);
		if (!same(held, page)) {
			buf_reset(&ot);
			json_print(&ot, held);
			CHECK(0, "run %d: %s then %s gives %s, not %s", run,
			    ot.data, d.data, ot.data, nt.data);
		}
		cJSON_Delete(held);
		cJSON_Delete(page);
next:
		cJSON_Delete(old);
		old = new;
		/* Now and then, start again from a fresh array. */
		if (run % 200 == 199) {
			cJSON_Delete(old);
			old = cJSON_CreateArray();
			size = (int)(rnd() % RANDOM_DOCS);
			for (i = 0; i < size; i++)
				cJSON_AddItemToArray(old,
				    random_doc(next_id++));
		}
	}
	cJSON_Delete(old);
	buf_free(&ot);
	buf_free(&nt);
	buf_free(&d);
}

int
main(void)
{
	test_hash();
	test_cases();
	test_random();
	if (nfail > 0) {
		printf("%d checks failed\n", nfail);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}
