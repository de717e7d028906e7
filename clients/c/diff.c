/*
 * QueryDiff application (DESIGN §5, "Diffs"): ops applied in order to
 * the array of documents a query result holds (a db/query result, or the
 * page of a db/paginate result), documents matched by _id; for a result
 * that is one document (db/get), one update without an id.  An op that
 * does not fit the value (an unknown id, an index past the end, append to
 * a field that is not a string) fails the whole diff: the caller then
 * treats the connection as broken and resumes, which brings the full
 * value again.
 */
#include <stdlib.h>
#include <string.h>

#include "tvx_int.h"

static cJSON *
find_doc(cJSON *arr, const char *id, int *index)
{
	cJSON	*d, *v;
	int	 i = 0;

	cJSON_ArrayForEach(d, arr) {
		v = tvx_json_get(d, "_id");
		if (cJSON_IsString(v) && strcmp(v->valuestring, id) == 0) {
			*index = i;
			return d;
		}
		i++;
	}
	return NULL;
}

/* Replace or add member name of obj with a copy of v. */
static int
set_member(cJSON *obj, const char *name, const cJSON *v)
{
	cJSON	*copy;

	if ((copy = cJSON_Duplicate(v, 1)) == NULL)
		return -1;
	if (tvx_json_get(obj, name) != NULL)
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, name,
		    copy) ? 0 : (cJSON_Delete(copy), -1);
	if (!cJSON_AddItemToObject(obj, name, copy)) {
		cJSON_Delete(copy);
		return -1;
	}
	return 0;
}

static int
update(cJSON *doc, const cJSON *op, const char **why)
{
	const cJSON	*set, *unset, *app, *c;
	cJSON		*old;
	char		*s;
	size_t		 a, b;

	set = tvx_json_get(op, "set");
	unset = tvx_json_get(op, "unset");
	app = tvx_json_get(op, "append");
	if (!cJSON_IsObject(doc) || (set && !cJSON_IsObject(set)) ||
	    (unset && !cJSON_IsArray(unset)) || (app && !cJSON_IsObject(app))) {
		*why = "malformed update op";
		return -1;
	}
	cJSON_ArrayForEach(c, set) {
		if (set_member(doc, c->string, c) == -1) {
			*why = "out of memory";
			return -1;
		}
	}
	cJSON_ArrayForEach(c, unset) {
		if (!cJSON_IsString(c)) {
			*why = "unset names a non-string";
			return -1;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(doc, c->valuestring);
	}
	cJSON_ArrayForEach(c, app) {
		old = tvx_json_get(doc, c->string);
		if (!cJSON_IsString(old) || !cJSON_IsString(c)) {
			*why = "append to a field that is not a string";
			return -1;
		}
		a = strlen(old->valuestring);
		b = strlen(c->valuestring);
		if ((s = malloc(a + b + 1)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		memcpy(s, old->valuestring, a);
		memcpy(s + a, c->valuestring, b + 1);
		/* cJSON_SetValuestring copies; swap the pointer instead. */
		free(old->valuestring);
		old->valuestring = s;
	}
	return 0;
}

static int
apply_ops(cJSON *arr, const cJSON *ops, const char **why)
{
	const cJSON	*op, *kind, *id, *doc;
	cJSON		*d, *copy;
	int64_t		 at;
	int		 i, n;

	cJSON_ArrayForEach(op, ops) {
		kind = tvx_json_get(op, "op");
		if (!cJSON_IsString(kind)) {
			*why = "diff op without op";
			return -1;
		}
		id = tvx_json_get(op, "id");
		if (strcmp(kind->valuestring, "insert") == 0) {
			n = cJSON_GetArraySize(arr);
			doc = tvx_json_get(op, "doc");
			if (!tvx_json_int(tvx_json_get(op, "at"), 0, n, &at) ||
			    !cJSON_IsObject(doc)) {
				*why = "malformed insert op";
				return -1;
			}
			if ((copy = cJSON_Duplicate(doc, 1)) == NULL) {
				*why = "out of memory";
				return -1;
			}
			if (at == n ? !cJSON_AddItemToArray(arr, copy) :
			    !cJSON_InsertItemInArray(arr, (int)at, copy)) {
				cJSON_Delete(copy);
				*why = "out of memory";
				return -1;
			}
			continue;
		}
		if (!cJSON_IsString(id) ||
		    (d = find_doc(arr, id->valuestring, &i)) == NULL) {
			*why = "diff op names a document not held";
			return -1;
		}
		if (strcmp(kind->valuestring, "remove") == 0)
			cJSON_DeleteItemFromArray(arr, i);
		else if (strcmp(kind->valuestring, "update") == 0) {
			if (update(d, op, why) == -1)
				return -1;
		} else {
			*why = "unknown diff op";
			return -1;
		}
	}
	return 0;
}

int
tvx_diff_apply(cJSON **value, const cJSON *mod, const char **why)
{
	const cJSON	*ops, *fields, *c, *op;
	cJSON		*work, *page;

	ops = tvx_json_get(mod, "ops");
	fields = tvx_json_get(mod, "fields");
	if (!cJSON_IsArray(ops) ||
	    (fields != NULL && !cJSON_IsObject(fields))) {
		*why = "malformed QueryDiff";
		return -1;
	}
	if (*value == NULL) {
		*why = "QueryDiff for a query without a value";
		return -1;
	}
	/* Work on a copy, so a failed diff leaves the value as it was. */
	if ((work = cJSON_Duplicate(*value, 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	page = tvx_json_get(work, "page");
	if (cJSON_IsArray(work)) {
		if (fields != NULL) {
			*why = "fields in a diff of an array";
			goto fail;
		}
		if (apply_ops(work, ops, why) == -1)
			goto fail;
	} else if (cJSON_IsObject(work) && cJSON_IsArray(page) &&
	    tvx_json_get(work, "_id") == NULL) {
		if (apply_ops(page, ops, why) == -1)
			goto fail;
		cJSON_ArrayForEach(c, fields) {
			if (strcmp(c->string, "page") == 0 ||
			    set_member(work, c->string, c) == -1) {
				*why = "bad fields in a QueryDiff";
				goto fail;
			}
		}
	} else if (cJSON_IsObject(work)) {
		op = cJSON_GetArrayItem(ops, 0);
		if (cJSON_GetArraySize(ops) != 1 || fields != NULL ||
		    !cJSON_IsString(tvx_json_get(op, "op")) ||
		    strcmp(tvx_json_get(op, "op")->valuestring,
		    "update") != 0 ||
		    tvx_json_get(op, "id") != NULL) {
			*why = "a document's diff is not one update";
			goto fail;
		}
		if (update(work, op, why) == -1)
			goto fail;
	} else {
		*why = "QueryDiff for a value that is no array or document";
		goto fail;
	}
	cJSON_Delete(*value);
	*value = work;
	return 0;
fail:
	cJSON_Delete(work);
	return -1;
}
