/*
 * The schema file (tinyvex-schema(5)): tables that exist from the start,
 * their user indexes and their validators.  Parsing is strict and
 * bounded (validators are compiled by validate.c); applying it checks
 * every stored document of a table with a validator, compares the file
 * with the catalog, builds new indexes from the existing documents
 * before they are used, drops removed ones, and tells the gateways
 * through a commit notice that carries the new catalog version.  A
 * schema that cannot be applied changes nothing, and the validators of
 * the running schema stay.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "udf.h"
#include "writerd.h"

#define SCHEMA_MAX_TABLES	1000

void
schema_free(struct schema *sc)
{
	size_t	 i, j, k;

	if (sc == NULL)
		return;
	for (i = 0; i < sc->ntables; i++) {
		for (j = 0; j < sc->tables[i].nindexes; j++)
			for (k = 0; k < sc->tables[i].indexes[j].nfields; k++)
				free(sc->tables[i].indexes[j].fields[k]);
		free(sc->tables[i].indexes);
		validate_free(sc->tables[i].valid);
	}
	free(sc->tables);
	free(sc);
}

static int
parse_index(struct schema_index *ix, const cJSON *def, struct tv_error *err)
{
	const cJSON	*fields = def, *f, *u, *m;

	if (cJSON_IsObject(def)) {
		cJSON_ArrayForEach(m, def)
			if (strcmp(m->string, "fields") != 0 &&
			    strcmp(m->string, "unique") != 0)
				return tv_seterr(err, TV_VALIDATION, "index %s:"
				    " unknown member %.64s", ix->name,
				    m->string);
		fields = json_get(def, "fields");
		u = json_get(def, "unique");
		if (u != NULL && !cJSON_IsBool(u))
			return tv_seterr(err, TV_VALIDATION, "index %s: "
			    "unique must be true or false", ix->name);
		ix->unique = cJSON_IsTrue(u);
	}
	if (!cJSON_IsArray(fields) || cJSON_GetArraySize(fields) == 0 ||
	    cJSON_GetArraySize(fields) > STORE_MAX_INDEX_FIELDS)
		return tv_seterr(err, TV_VALIDATION, "index %s: fields must "
		    "be a list of 1 to %d field names", ix->name,
		    STORE_MAX_INDEX_FIELDS);
	cJSON_ArrayForEach(f, fields) {
		if (!cJSON_IsString(f) || !store_valid_name(f->valuestring))
			return tv_seterr(err, TV_VALIDATION, "index %s: "
			    "fields must be user field names", ix->name);
		ix->fields[ix->nfields++] = xstrdup(f->valuestring);
	}
	return 0;
}

/* The table's "fields" and "strict", compiled; none is fine. */
static int
parse_validator(struct schema_table *t, const cJSON *tdef,
    struct tv_error *err)
{
	struct tv_error	 e;

	memset(&e, 0, sizeof(e));
	t->valid = validate_compile(json_get(tdef, "fields"),
	    json_get(tdef, "strict"), &e);
	if (e.code != 0)
		return tv_seterr(err, e.code, "schema: table %s: %s", t->name,
		    e.message);
	return 0;
}

struct schema *
schema_parse(const char *text, size_t len, struct tv_error *err)
{
	struct schema		*sc;
	struct schema_table	*t;
	struct schema_index	*ix;
	cJSON			*root;
	const cJSON		*tables, *tdef, *indexes, *idef, *m;
	enum json_err		 jerr;

	if (len > SCHEMA_MAX_BYTES) {
		tv_seterr(err, TV_TOO_LARGE, "schema over %d bytes",
		    SCHEMA_MAX_BYTES);
		return NULL;
	}
	if ((root = json_parse(text, len, VALIDATE_JSON_DEPTH, &jerr)) ==
	    NULL) {
		tv_seterr(err, TV_VALIDATION, "schema: %s",
		    json_strerror(jerr));
		return NULL;
	}
	sc = xcalloc(1, sizeof(*sc));
	cJSON_ArrayForEach(m, root)
		if (m->string == NULL || strcmp(m->string, "tables") != 0) {
			tv_seterr(err, TV_VALIDATION, "schema: only \"tables\" "
			    "is allowed at the top");
			goto fail;
		}
	tables = json_get(root, "tables");
	if (!cJSON_IsObject(root) || !cJSON_IsObject(tables)) {
		tv_seterr(err, TV_VALIDATION, "schema: tables must be an "
		    "object");
		goto fail;
	}
	if (cJSON_GetArraySize(tables) > SCHEMA_MAX_TABLES) {
		tv_seterr(err, TV_TOO_LARGE, "schema: too many tables");
		goto fail;
	}
	sc->tables = xcalloc((size_t)cJSON_GetArraySize(tables) + 1,
	    sizeof(*sc->tables));
	cJSON_ArrayForEach(tdef, tables) {
		if (!store_valid_name(tdef->string)) {
			tv_seterr(err, TV_VALIDATION, "schema: bad table name "
			    "\"%.64s\"", tdef->string);
			goto fail;
		}
		t = &sc->tables[sc->ntables++];
		strlcpy_tv(t->name, tdef->string, sizeof(t->name));
		if (!cJSON_IsObject(tdef)) {
			tv_seterr(err, TV_VALIDATION, "schema: table %s must "
			    "be an object", t->name);
			goto fail;
		}
		cJSON_ArrayForEach(m, tdef)
			if (strcmp(m->string, "indexes") != 0 &&
			    strcmp(m->string, "fields") != 0 &&
			    strcmp(m->string, "strict") != 0) {
				tv_seterr(err, TV_VALIDATION, "schema: table "
				    "%s: unknown member %.64s", t->name,
				    m->string);
				goto fail;
			}
		if (parse_validator(t, tdef, err) == -1)
			goto fail;
		indexes = json_get(tdef, "indexes");
		if (indexes == NULL)
			continue;
		if (!cJSON_IsObject(indexes) || cJSON_GetArraySize(indexes) >
		    STORE_MAX_INDEXES - 2) {
			tv_seterr(err, TV_VALIDATION, "schema: table %s: "
			    "indexes must be an object of at most %d",
			    t->name, STORE_MAX_INDEXES - 2);
			goto fail;
		}
		t->indexes = xcalloc((size_t)cJSON_GetArraySize(indexes) + 1,
		    sizeof(*t->indexes));
		cJSON_ArrayForEach(idef, indexes) {
			if (!store_valid_name(idef->string) ||
			    strcmp(idef->string, STORE_INDEX_BY_ID) == 0 ||
			    strcmp(idef->string, STORE_INDEX_BY_CREATION)
			    == 0) {
				tv_seterr(err, TV_VALIDATION, "schema: table "
				    "%s: bad or reserved index name \"%.64s\"",
				    t->name, idef->string);
				goto fail;
			}
			ix = &t->indexes[t->nindexes++];
			strlcpy_tv(ix->name, idef->string, sizeof(ix->name));
			if (parse_index(ix, idef, err) == -1)
				goto fail;
		}
	}
	cJSON_Delete(root);
	return sc;
fail:
	cJSON_Delete(root);
	schema_free(sc);
	return NULL;
}

static int
same_index(const struct store_index *have, const struct schema_index *want)
{
	size_t	 i;

	if (have->ndeclared != want->nfields || have->unique != want->unique)
		return 0;
	for (i = 0; i < want->nfields; i++)
		if (strcmp(have->fields[i], want->fields[i]) != 0)
			return 0;
	return 1;
}

static const struct schema_table *
schema_table(const struct schema *sc, const char *name)
{
	size_t	 i;

	for (i = 0; i < sc->ntables; i++)
		if (strcmp(sc->tables[i].name, name) == 0)
			return &sc->tables[i];
	return NULL;
}

int
schema_validate(const struct schema *sc, const char *table, const cJSON *doc,
    struct tv_error *err)
{
	const struct schema_table	*t;

	if (sc == NULL || (t = schema_table(sc, table)) == NULL ||
	    t->valid == NULL)
		return 0;
	return validate_doc(t->valid, doc, err);
}

/* err's data: the table, the document and validate_doc's {"path":...}. */
static void
stored_data(struct tv_error *err, const char *table, const char *id,
    const char *pathobj)
{
	struct buf	 b;

	if (strlen(pathobj) < 2)
		return;
	buf_init(&b);
	buf_adds(&b, "{\"table\":");
	json_print_string(&b, table, strlen(table));
	buf_adds(&b, ",\"document\":");
	json_print_string(&b, id, strlen(id));
	buf_addc(&b, ',');
	buf_adds(&b, pathobj + 1);
	if (b.len < sizeof(err->data)) {
		memcpy(err->data, b.data, b.len);
		err->data[b.len] = '\0';
	}
	buf_free(&b);
}

/*
 * Every stored document of every table with a validator must pass it;
 * inside the write transaction, before anything changes.  0, or -1 with
 * err naming the first failing document and its path (data.path, and
 * data.document and data.table).
 */
static int
check_stored(struct writerd *wd, const struct schema *sc,
    struct tv_error *err)
{
	const struct store_table	*st;
	const struct schema_table	*t;
	sqlite3_stmt			*s = NULL;
	cJSON				*doc;
	struct tv_error			 e;
	enum json_err			 jerr;
	const char			*id;
	char				 path[TV_ERRDATA_MAX];
	size_t				 i;
	int				 rc, ret = -1;

	if (sqlite3_prepare_v2(wd->st->db, "SELECT c.id, d.json_value"
	    " FROM current_documents c, documents d"
	    " WHERE c.table_id = ?1 AND d.seq = c.seq ORDER BY c.id", -1, &s,
	    NULL) != SQLITE_OK)
		return tv_seterr(err, TV_UNAVAILABLE, "schema: cannot read "
		    "the documents");
	for (i = 0; i < sc->ntables; i++) {
		t = &sc->tables[i];
		if (t->valid == NULL ||
		    (st = catalog_table(wd->st->catalog, t->name)) == NULL)
			continue;
		sqlite3_bind_int64(s, 1, st->id);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			id = (const char *)sqlite3_column_text(s, 0);
			doc = json_parse((const char *)
			    sqlite3_column_text(s, 1),
			    (size_t)sqlite3_column_bytes(s, 1),
			    JSON_MAX_DEPTH, &jerr);
			if (doc == NULL) {
				tv_seterr(err, TV_INTERNAL, "schema: document "
				    "%s of table %s is unreadable", id,
				    t->name);
				goto done;
			}
			memset(&e, 0, sizeof(e));
			rc = validate_doc(t->valid, doc, &e);
			cJSON_Delete(doc);
			if (rc == -1) {
				strlcpy_tv(path, e.data, sizeof(path));
				tv_seterr(err, TV_VALIDATION, "schema: "
				    "document %s of table %s does not "
				    "conform: %s", id, t->name, e.message);
				stored_data(err, t->name, id, path);
				goto done;
			}
		}
		if (rc != SQLITE_DONE) {
			tv_seterr(err, TV_UNAVAILABLE, "schema: cannot read "
			    "the documents of %s", t->name);
			goto done;
		}
		sqlite3_reset(s);
	}
	ret = 0;
done:
	sqlite3_finalize(s);
	return ret;
}

/* Make the catalog match the schema; inside a write transaction. */
static int
apply(struct writerd *wd, const struct schema *sc, struct tv_error *err)
{
	struct wctx			*w = &wd->wctx;
	const struct store_table	*t;
	const struct store_index	*ix;
	const struct schema_table	*stab;
	const struct schema_index	*six;
	char				 tname[STORE_NAME_MAX + 1];
	size_t				 i, j, k;
	int				 found;

	for (i = 0; i < sc->ntables; i++) {
		stab = &sc->tables[i];
		if (wctx_table(w, stab->name, 1, &t, err) == -1)
			return -1;
		for (j = 0; j < stab->nindexes; j++) {
			six = &stab->indexes[j];
			t = catalog_table(wd->st->catalog, stab->name);
			ix = catalog_index(t, six->name);
			if (ix != NULL && same_index(ix, six))
				continue;
			if (ix != NULL && wctx_index_drop(w, ix, err) == -1)
				return -1;
			t = catalog_table(wd->st->catalog, stab->name);
			if (wctx_index_create(w, t, six->name, six->fields,
			    six->nfields, six->unique, err) == -1)
				return -1;
		}
	}
	/* User indexes the schema no longer lists. */
	for (i = 0; i < wd->st->catalog->ntables; i++) {
		t = wd->st->catalog->tables[i];
		strlcpy_tv(tname, t->name, sizeof(tname));
		stab = schema_table(sc, tname);
		for (j = 2; j < t->nindexes; j++) {
			ix = t->indexes[j];
			found = 0;
			for (k = 0; stab != NULL && k < stab->nindexes; k++)
				if (strcmp(stab->indexes[k].name, ix->name)
				    == 0)
					found = 1;
			if (found)
				continue;
			log_info("dropping index %s.%s", tname, ix->name);
			if (wctx_index_drop(w, ix, err) == -1)
				return -1;
			/* The catalog was reloaded: start this table over. */
			t = catalog_table(wd->st->catalog, tname);
			j = 1;
		}
	}
	return 0;
}

static char *
read_file(const char *path, size_t *lenp, struct tv_error *err)
{
	struct buf	 b;
	char		 tmp[8192];
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		tv_seterr(err, TV_VALIDATION, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
		if (b.len + (size_t)n > SCHEMA_MAX_BYTES) {
			tv_seterr(err, TV_TOO_LARGE, "%s: over %d bytes", path,
			    SCHEMA_MAX_BYTES);
			close(fd);
			buf_free(&b);
			return NULL;
		}
		buf_add(&b, tmp, (size_t)n);
	}
	close(fd);
	if (n == -1) {
		tv_seterr(err, TV_VALIDATION, "%s: %s", path, strerror(errno));
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, lenp);
}

/* From now on, mutations are checked against sc's validators. */
static void
schema_use(struct writerd *wd, struct schema *sc)
{
	schema_free(wd->schema);
	wd->schema = sc;
	wd->wctx.schema = sc;
}

/* The stored documents conform, then the catalog is made to match. */
static int
apply_commit(struct writerd *wd, void *arg, struct tv_error *err)
{
	if (check_stored(wd, arg, err) == -1)
		return -1;
	return apply(wd, arg, err);
}

int
schema_apply_file(struct writerd *wd, const char *path, struct tv_error *err)
{
	struct schema	*sc;
	char		*text;
	size_t		 len;
	int64_t		 cv = wd->catalog_version;
	int		 rc;

	if ((text = read_file(path, &len, err)) == NULL)
		return -1;
	sc = schema_parse(text, len, err);
	free(text);
	if (sc == NULL) {
		log_warnx("schema %s: %s", path, err->message);
		return -1;
	}
	rc = commit_catalog(wd, apply_commit, sc, err);
	if (rc == -1) {
		schema_free(sc);
		log_warnx("schema %s not applied: %s", path, err->message);
		return -1;
	}
	schema_use(wd, sc);
	if (rc == 0)
		log_info("schema %s: catalog already matches", path);
	else
		log_info("schema %s applied: catalog version %lld -> %lld",
		    path, (long long)cv, (long long)wd->catalog_version);
	return 0;
}
