/*
 * The built-in mutations of DESIGN §3: db/insert, db/patch, db/replace,
 * db/delete and db/batch.  Each validates its arguments completely
 * (names, reserved fields, sizes, depth, types) and the document it
 * would store against the schema's validator of its table before it
 * writes, and writes through the write context, inside the caller's
 * savepoint.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "udf.h"
#include "wctx.h"
#include "writerd.h"

static int	mutate_one(struct wctx *, enum udf_kind, const cJSON *, int,
		    struct buf *, struct tv_error *);

/*
 * The members a mutation's args may have: those of its list after the
 * first, which is "op", allowed too in the args of a db/batch op (the op
 * object itself).
 */
static int
check_args(const cJSON *args, const char *const *allowed, int inbatch,
    struct tv_error *err)
{
	return udf_check_members(args, inbatch ? allowed : allowed + 1, err);
}

static const char *
arg_id(const cJSON *args, struct tv_error *err)
{
	const cJSON	*id = json_get(args, "id");

	if (!cJSON_IsString(id) || !store_valid_id(id->valuestring)) {
		tv_seterr(err, TV_VALIDATION, "id must be a document id");
		return NULL;
	}
	return id->valuestring;
}

/*
 * Field names at every level follow the user field name rule; names that
 * start with '_' are reserved at the top level.
 */
static int
check_fields(const cJSON *v, int depth, int maxdepth, struct tv_error *err)
{
	const cJSON	*m;

	if (depth > maxdepth)
		return tv_seterr(err, TV_VALIDATION, "document nested deeper "
		    "than %d levels", maxdepth);
	if (cJSON_IsObject(v)) {
		cJSON_ArrayForEach(m, v) {
			if (!store_valid_name(m->string)) {
				if (m->string[0] == '_')
					return tv_seterr(err, TV_VALIDATION,
					    "field \"%.64s\": names starting "
					    "with _ are reserved", m->string);
				return tv_seterr(err, TV_VALIDATION, "field "
				    "\"%.64s\" is not a valid field name "
				    "([A-Za-z][A-Za-z0-9_]{0,63})", m->string);
			}
			if (check_fields(m, depth + 1, maxdepth, err) == -1)
				return -1;
		}
	} else if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach(m, v)
			if (check_fields(m, depth + 1, maxdepth, err) == -1)
				return -1;
	} else if (cJSON_IsNumber(v) && !isfinite(v->valuedouble))
		return tv_seterr(err, TV_VALIDATION, "numbers must be finite");
	else if (cJSON_IsRaw(v) || cJSON_IsInvalid(v))
		return tv_seterr(err, TV_VALIDATION, "not a JSON value");
	return 0;
}

static int
check_user_doc(struct wctx *w, const cJSON *doc, const char *what,
    struct tv_error *err)
{
	if (!cJSON_IsObject(doc))
		return tv_seterr(err, TV_VALIDATION, "%s must be an object",
		    what);
	return check_fields(doc, 1, (int)w->conf->max_document_depth, err);
}

static int
listed(const cJSON *names, const char *name)
{
	const cJSON	*u;

	cJSON_ArrayForEach(u, names)
		if (cJSON_IsString(u) && strcmp(u->valuestring, name) == 0)
			return 1;
	return 0;
}

/*
 * The stored document: _id, _creationTime, then the user fields of user
 * (system fields skipped) with set merged in and unset removed.  Its
 * user fields are references to the values in user and set, not copies:
 * the document is read (validated, keyed, printed) and freed before
 * them, and freeing it leaves them alone.
 */
static cJSON *
make_doc(const char *id, double creation, const cJSON *user,
    const cJSON *set, const cJSON *unset)
{
	cJSON		*doc, *m, *s;

	doc = cJSON_CreateObject();
	cJSON_AddItemToObject(doc, "_id", cJSON_CreateString(id));
	cJSON_AddItemToObject(doc, "_creationTime",
	    cJSON_CreateNumber(creation));
	cJSON_ArrayForEach(m, user) {
		if (m->string[0] == '_' || listed(unset, m->string))
			continue;
		s = json_get(set, m->string);
		cJSON_AddItemReferenceToObject(doc, m->string,
		    (cJSON *)(s != NULL ? s : m));
	}
	cJSON_ArrayForEach(m, set)
		if (json_get(user, m->string) == NULL)
			cJSON_AddItemReferenceToObject(doc, m->string,
			    (cJSON *)m);
	return doc;
}

/*
 * The stored document of an insert, built on the stack without copying
 * anything: an object whose members are _id and _creationTime, then the
 * user's members themselves (user's first member follows _creationTime;
 * user is not changed).  check_user_doc has refused system fields in
 * user.  The document is only read, and it is never freed: nothing in it
 * was allocated for it.
 */
struct insert_doc {
	cJSON	 obj, id, creation;
};

static const cJSON *
insert_doc(struct insert_doc *d, char *id, double creation,
    const cJSON *user)
{
	memset(d, 0, sizeof(*d));
	d->obj.type = cJSON_Object;
	d->obj.child = &d->id;
	d->id.type = cJSON_String | cJSON_StringIsConst;
	d->id.string = "_id";
	d->id.valuestring = id;
	d->id.next = &d->creation;
	d->creation.type = cJSON_Number | cJSON_StringIsConst;
	d->creation.string = "_creationTime";
	d->creation.valuedouble = creation;
	d->creation.valueint = creation >= INT_MAX ? INT_MAX :
	    creation <= (double)INT_MIN ? INT_MIN : (int)creation;
	d->creation.prev = &d->id;
	d->creation.next = user->child;
	/* cJSON's convention: the first member's prev is the last one. */
	d->id.prev = user->child != NULL ? user->child->prev : &d->creation;
	return &d->obj;
}

static int
do_insert(struct wctx *w, const cJSON *args, int inbatch,
    struct buf *value, struct tv_error *err)
{
	static const char *const allowed[] = { "op", "table", "doc",
	    NULL };
	const struct store_table	*t;
	const char			*name;
	const cJSON			*user, *doc;
	struct insert_doc		 d;
	char				 id[STORE_ID_LEN + 1];
	int				 rc;

	if (check_args(args, allowed, inbatch, err) == -1 ||
	    (name = udf_arg_table(args, err)) == NULL)
		return -1;
	user = json_get(args, "doc");
	if (check_user_doc(w, user, "doc", err) == -1)
		return -1;
	if (wctx_table(w, name, 1, &t, err) == -1 ||
	    wctx_new_id(w, id, err) == -1)
		return -1;
	doc = insert_doc(&d, id, (double)w->ts / 1000.0, user);
	rc = schema_validate(w->schema, name, doc, err);
	if (rc == 0)
		rc = wctx_write(w, t, id, NULL, 0, doc, err);
	if (rc == -1)
		return -1;
	json_print_string(value, id, strlen(id));
	return 0;
}

/* Find the document a patch, replace or delete is about. */
static int
target(struct wctx *w, const cJSON *args, const struct store_table **t,
    const char **id, cJSON **old, int64_t *old_ts, struct tv_error *err)
{
	const char	*name;

	*old = NULL;
	if ((name = udf_arg_table(args, err)) == NULL ||
	    (*id = arg_id(args, err)) == NULL)
		return -1;
	if (wctx_table(w, name, 0, t, err) == -1)
		return -1;
	if (*t == NULL)
		return tv_seterr(err, TV_NOT_FOUND, "no document %s in table "
		    "%s", *id, name);
	if (wctx_read(w, *t, *id, old, old_ts, err) == -1)
		return -1;
	if (*old == NULL)
		return tv_seterr(err, TV_NOT_FOUND, "no document %s in table "
		    "%s", *id, name);
	return 0;
}

static double
creation_of(const cJSON *doc)
{
	const cJSON	*ct = json_get(doc, "_creationTime");

	return cJSON_IsNumber(ct) ? ct->valuedouble : 0;
}

/*
 * Write a new revision of the document args name: its fields are user's
 * (or, with user NULL, the current document's) with set merged in and
 * unset removed; _id and _creationTime are kept.  The value is null.
 */
static int
rewrite(struct wctx *w, const cJSON *args, const cJSON *user,
    const cJSON *set, const cJSON *unset, struct buf *value,
    struct tv_error *err)
{
	const struct store_table	*t;
	const char			*id;
	cJSON				*old = NULL, *doc = NULL;
	int64_t				 old_ts;
	int				 ret = -1;

	if (target(w, args, &t, &id, &old, &old_ts, err) == -1)
		goto done;
	doc = make_doc(id, creation_of(old), user != NULL ? user : old, set,
	    unset);
	/* A patch is checked on the document it makes, as a whole. */
	if (schema_validate(w->schema, t->name, doc, err) == -1 ||
	    wctx_write(w, t, id, old, old_ts, doc, err) == -1)
		goto done;
	buf_adds(value, "null");
	ret = 0;
done:
	cJSON_Delete(doc);	/* first: it refers to values of old */
	cJSON_Delete(old);
	return ret;
}

static int
do_patch(struct wctx *w, const cJSON *args, int inbatch,
    struct buf *value, struct tv_error *err)
{
	static const char *const allowed[] = { "op", "table", "id", "set",
	    "unset", NULL };
	const cJSON	*set, *unset, *u;

	if (check_args(args, allowed, inbatch, err) == -1)
		return -1;
	set = json_get(args, "set");
	unset = json_get(args, "unset");
	if (set != NULL && check_user_doc(w, set, "set", err) == -1)
		return -1;
	if (unset != NULL) {
		if (!cJSON_IsArray(unset))
			return tv_seterr(err, TV_VALIDATION,
			    "unset must be an array of field names");
		cJSON_ArrayForEach(u, unset) {
			if (!cJSON_IsString(u) ||
			    !store_valid_name(u->valuestring))
				return tv_seterr(err, TV_VALIDATION, "unset "
				    "must list user field names");
			if (json_get(set, u->valuestring) != NULL)
				return tv_seterr(err, TV_VALIDATION, "field "
				    "%s is both set and unset",
				    u->valuestring);
		}
	}
	return rewrite(w, args, NULL, set, unset, value, err);
}

static int
do_replace(struct wctx *w, const cJSON *args, int inbatch,
    struct buf *value, struct tv_error *err)
{
	static const char *const allowed[] = { "op", "table", "id", "doc",
	    NULL };
	const cJSON	*user;

	if (check_args(args, allowed, inbatch, err) == -1)
		return -1;
	user = json_get(args, "doc");
	if (check_user_doc(w, user, "doc", err) == -1)
		return -1;
	return rewrite(w, args, user, NULL, NULL, value, err);
}

static int
do_delete(struct wctx *w, const cJSON *args, int inbatch,
    struct buf *value, struct tv_error *err)
{
	static const char *const allowed[] = { "op", "table", "id", NULL };
	const struct store_table	*t;
	const char			*id;
	cJSON				*old = NULL;
	int64_t				 old_ts;
	int				 ret = -1;

	if (check_args(args, allowed, inbatch, err) == -1)
		return -1;
	if (target(w, args, &t, &id, &old, &old_ts, err) == -1 ||
	    wctx_write(w, t, id, old, old_ts, NULL, err) == -1)
		goto done;
	buf_adds(value, "null");
	ret = 0;
done:
	cJSON_Delete(old);
	return ret;
}

static int
do_batch(struct wctx *w, const cJSON *args, struct buf *value,
    struct tv_error *err)
{
	static const char *const allowed[] = { "ops", NULL };
	static const struct {
		const char	*name;
		enum udf_kind	 kind;
	} ops[] = {
		{ "insert", UDF_INSERT }, { "patch", UDF_PATCH },
		{ "replace", UDF_REPLACE }, { "delete", UDF_DELETE },
	};
	const cJSON	*list, *name;
	const cJSON	*op;
	struct tv_error	 sub;
	size_t		 i, n = 0;
	int		 rc;

	if (udf_check_members(args, allowed, err) == -1)
		return -1;
	list = json_get(args, "ops");
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
		return tv_seterr(err, TV_VALIDATION,
		    "ops must be a non-empty array");
	if (cJSON_GetArraySize(list) > w->conf->max_batch_ops)
		return tv_seterr(err, TV_TOO_LARGE, "more than %lld ops in a "
		    "batch", (long long)w->conf->max_batch_ops);
	buf_addc(value, '[');
	cJSON_ArrayForEach(op, list) {
		name = json_get(op, "op");
		if (!cJSON_IsObject(op) || !cJSON_IsString(name))
			return tv_seterr(err, TV_VALIDATION, "ops[%zu] must "
			    "be an object with an op", n);
		for (i = 0; i < nitems(ops); i++)
			if (strcmp(name->valuestring, ops[i].name) == 0)
				break;
		if (i == nitems(ops))
			return tv_seterr(err, TV_VALIDATION, "ops[%zu]: op "
			    "must be insert, patch, replace or delete", n);
		/* The op's own arguments: the op object, "op" ignored. */
		if (n > 0)
			buf_addc(value, ',');
		memset(&sub, 0, sizeof(sub));
		rc = mutate_one(w, ops[i].kind, op, 1, value, &sub);
		if (rc == -1) {
			tv_seterr(err, sub.code, "ops[%zu]: %s", n,
			    sub.message);
			/* data.path is the path in that op's document. */
			memcpy(err->data, sub.data, sizeof(err->data));
			return -1;
		}
		n++;
	}
	buf_addc(value, ']');
	return 0;
}

static int
mutate_one(struct wctx *w, enum udf_kind kind, const cJSON *args,
    int inbatch, struct buf *value, struct tv_error *err)
{
	switch (kind) {
	case UDF_INSERT:
		return do_insert(w, args, inbatch, value, err);
	case UDF_PATCH:
		return do_patch(w, args, inbatch, value, err);
	case UDF_REPLACE:
		return do_replace(w, args, inbatch, value, err);
	case UDF_DELETE:
		return do_delete(w, args, inbatch, value, err);
	default:
		return tv_seterr(err, TV_INTERNAL, "not a mutation");
	}
}

int
mutate_run(struct wctx *w, const char *udf_path, const cJSON *args,
    struct buf *value, struct tv_error *err)
{
	enum udf_kind	 kind = udf_lookup(udf_path);

	buf_reset(value);
	if (!udf_is_mutation(kind))
		return tv_seterr(err, TV_NOT_FOUND, "no mutation function "
		    "\"%.128s\"", udf_path);
	if (kind == UDF_BATCH)
		return do_batch(w, args, value, err);
	return mutate_one(w, kind, args, 0, value, err);
}
