/*
 * Unit test for the storage engine: the write path (the write context and
 * the built-in mutations of writerd) driven directly on a temporary
 * database, each mutation in its own savepoint and ts as a group commit
 * runs it, and the read path (gets and index range scans on the current
 * state and on the log at past ts, with the read sets they leave) checked
 * against a reference model kept here: every revision of every document
 * with its ts.
 *
 * Checked: snapshot reads at every commit ts and between commits after a
 * random run of inserts, patches, replaces, deletes and batches; the
 * current state against the log and against a rebuild from the raw
 * tables, for every index (user and unique ones included); range scans
 * over values of every type against a brute-force filter and sort, with
 * every bound shape, both orders and limits, now and in the past; the read
 * sets of those scans; unique indexes; all-or-nothing batches; the
 * validation errors of mutations and queries; and a reopen of the file.
 */
#include <sys/stat.h>

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "config.h"
#include "errors.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "scan.h"
#include "store.h"
#include "udf.h"
#include "util.h"
#include "wctx.h"
#include "writerd.h"

#define CHECK_SEED	0x73746f7265746573ULL	/* fixed: runs repeat */
#define TS_START	INT64_C(1700000000000000) /* µs before the first ts */
#define TS_GAP		3000	/* most µs between two mutations */
#define RUN_MUTATIONS	450	/* mutations of the random run */
#define RUN_INDEX_AT	150	/* when alpha gets its user indexes */
#define BATCH_PCT	20	/* mutations that are batches, % */
#define BATCH_OPS	5	/* most ops in a generated batch */
#define FIELD_PCT	60	/* chance a generated doc has a field, % */
#define CODES_ALPHA	60	/* codes drawn once alpha's are unique */
#define GETS_PER_TS	6	/* db/get checks at each read point */
#define ALL_INDEX_EVERY	4	/* every index checked at every 4th point */
#define REOPEN_EVERY	7	/* read points sampled after the reopen */
#define RANGE_DOCS	150	/* documents of the range test */
#define RANGE_CHANGES	250	/* mutations after the past ts */
#define RANGE_DRAWS	5	/* value draws per range shape */
#define RANGE_EQ_MAX	3	/* longest eq prefix tried */
#define RANGE_B_VALUES	12	/* b is drawn from the first 12 data values */
#define CT_BETWEEN	0.0005	/* ms: half a µs, between two ts */
#define LIMIT_ALL	(-1)	/* limit: exactly the number of matches */
#define MAX_ROWS	100000	/* max_rows of every query */
#define SMALL_ROWS	5	/* max_rows of the TooLarge check */
#define KEY_BIG		5000	/* an indexed string over KEY_MAX_BYTES */
#define CHECK_MAX_REPORTS	25	/* failures printed in detail */
#define PARSE_DEPTH	(JSON_MAX_DEPTH + 1)	/* results: docs in an array */
#define TEXT_MAX	4096	/* a mutation or query written as text */

#include "check.h"

enum {
	T_ALPHA,	/* random run; by_group, unique by_code later */
	T_BETA,		/* random run; by_s from the start */
	T_GAMMA,	/* random run */
	T_RANGES,	/* range scans; by_ab */
	T_COUNT
};
#define T_RANDOM	3	/* tables 0..T_RANDOM-1 take the random run */

static const char *const table_names[T_COUNT] = {
	"alpha", "beta", "gamma", "ranges",
};

static const char *const random_fields[] = {
	"group", "n", "s", "flag", "tags", "meta", "code",
};
static const char *const range_fields[] = { "a", "b", "k" };

/* Values the range test's documents hold, every type. */
static const char *const range_data[] = {
	"null", "-5", "-1", "-0", "0", "0.5", "1", "2", "10", "1e9",
	"false", "true", "\"\"", "\"a\"", "\"ab\"", "\"b\"", "\"\\u00e9\"",
	"[]", "[1]", "[1,2]", "[\"a\"]", "[null]", "{\"x\":1}",
};
/* Values that fall between them. */
static const char *const range_between[] = {
	"-1e300", "-3", "-0.5", "0.25", "1.5", "1e10", "\"aa\"", "\"abc\"",
	"\"c\"", "[0]", "[1,1]", "[1,3]", "[[]]", "{}", "{\"x\":0}",
	"{\"y\":1}",
};

static const double num_pool[] = {
	-7, -1, -0.0, 0, 0.5, 1, 2.25, 3, 42, 1e6, -1e-3, 123456789012.0,
	1e300,
};

enum opkind { OP_INSERT, OP_PATCH, OP_REPLACE, OP_DELETE };
static const char *const op_names[] = {
	"insert", "patch", "replace", "delete",
};
static const char *const op_paths[] = {
	"db/insert", "db/patch", "db/replace", "db/delete",
};

/* One revision of a model document. */
struct rev {
	int64_t		 ts;
	cJSON		*doc;		/* the whole document; NULL deleted */
	char		*canon;		/* its canonical text, on demand */
};

/* A model document: its revisions in ts order. */
struct mdoc {
	int		 table;
	char		 id[STORE_ID_LEN + 1];	/* "" until committed */
	struct rev	*revs;
	size_t		 nrevs, cap;
};

/* A live model document at some ts. */
struct ent {
	size_t		 doc;		/* index in M.docs */
	struct rev	*rev;		/* its revision at that ts */
};

/* One range query of the range test. */
struct rq {
	int64_t		 read_ts;
	size_t		 neq;		/* eq on fields[0..neq) */
	cJSON		*eq[RANGE_EQ_MAX];
	int		 lop, uop;	/* 0 none; 1 gt/lt; 2 gte/lte */
	cJSON		*lower, *upper;
	int		 desc;
	int64_t		 limit;		/* 0 none, LIMIT_ALL, or a count */
};

/* Rows of a table or of a scan, as text. */
struct rows {
	char		**v;
	size_t		  n, cap;
};


/* The engine under test and the clock of the run. */
static struct {
	char		 dir[64];
	char		 path[128];
	struct store	*st;
	struct config	 conf;
	struct wctx	 w;
	int64_t		 ts;		/* last ts handed out */
	int64_t		 max_ts;	/* last committed ts */
	int64_t		*commits;	/* every committed ts, in order */
	size_t		 ncommits, capcommits;
	struct buf	 value;		/* last mutation's value */
	struct tv_error	 err;		/* last mutation's error */
	long		 nmut, nok, nbatch, nqueries, nranges;
	long		 nrefused, nqrefused;	/* expected failures */
	long		 byerr[4];	/* failures: validation, not found,
					 * conflict, other */
} E;

/* The reference model. */
static struct {
	struct mdoc	*docs;
	size_t		 n, cap;
	int		 unique_code[T_COUNT];	/* by_code constrains */
	int		 code_seq;
	cJSON		*data, *between;	/* range value pools */
} M;

/* The order model_list sorts by. */
static char *const	*sort_fields;
static size_t		 sort_nfields;

static uint32_t
rnd_n(uint32_t n)
{
	return (uint32_t)rnd_below(n);
}

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "FATAL: %s: %s\n", what, detail != NULL ? detail :
	    "");
	exit(1);
}

static cJSON *
parse_or_die(const char *text)
{
	enum json_err	 jerr;
	cJSON		*v;

	if ((v = json_parse(text, strlen(text), JSON_MAX_DEPTH, &jerr)) ==
	    NULL)
		die("test JSON does not parse", text);
	return v;
}

/* A short text of a value for a report; the caller frees it. */
static char *
show(const cJSON *v)
{
	struct buf	 b;

	buf_init(&b);
	if (v == NULL)
		buf_adds(&b, "(missing)");
	else
		json_print(&b, v);
	if (b.len > 300) {
		b.len = 300;
		b.data[b.len] = '\0';
	}
	return buf_steal(&b, NULL);
}

/* Engine harness */

static void
sql(const char *q)
{
	if (store_exec(E.st, q) == -1)
		die("statement failed", q);
}

static int64_t
next_ts(void)
{
	E.ts += 1 + (int64_t)rnd_n(TS_GAP);
	return E.ts;
}

static int64_t
count_rows(const char *table)
{
	sqlite3_stmt	*s;
	char		 q[128];
	int64_t		 n = -1;

	snprintf(q, sizeof(q), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(E.st->db, q, -1, &s, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(E.st->db));
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/*
 * End the savepoint of a mutation at ts as writerd's group commit does:
 * RELEASE it and keep its table count changes, or roll back to it (and
 * reload a catalog the mutation had changed); then the table counts,
 * max_ts and COMMIT.
 */
static void
finish(int64_t ts, int rc)
{
	if (rc == 0) {
		sql("RELEASE mutation");
		wctx_keep(&E.w);
	} else {
		sql("ROLLBACK TO mutation");
		sql("RELEASE mutation");
		if (E.w.catalog_changed && store_load_catalog(E.st) == -1)
			die("catalog reload", NULL);
	}
	if (rc == 0) {
		if (store_global_set_i64(E.st, GLOBAL_MAX_TS, ts) == -1)
			die("max_ts", NULL);
		E.max_ts = ts;
		if (E.ncommits == E.capcommits) {
			E.capcommits = E.capcommits == 0 ? 256 :
			    E.capcommits * 2;
			E.commits = xreallocarray(E.commits, E.capcommits,
			    sizeof(*E.commits));
		}
		E.commits[E.ncommits++] = ts;
	}
	if (wctx_flush(&E.w) == -1)
		die("table counts", NULL);
	sql("COMMIT");
}

/* One mutation at ts, alone in its transaction.  0 or -1 with E.err. */
static int
mutate_at(int64_t ts, const char *path, const cJSON *args)
{
	int	 rc;

	memset(&E.err, 0, sizeof(E.err));
	sql("BEGIN IMMEDIATE");
	sql("SAVEPOINT mutation");
	wctx_reset(&E.w, ts);
	rc = mutate_run(&E.w, path, args, &E.value, &E.err);
	finish(ts, rc);
	return rc;
}

/*
 * Create table (when missing) and an index on it in one transaction, as
 * the schema loader does.  Returns 0 or the error code.
 */
static int
create_index(const char *table, const char *name, char *const *fields,
    size_t nfields, int unique)
{
	const struct store_table	*t;
	int64_t				 ts = next_ts();
	int				 rc;

	memset(&E.err, 0, sizeof(E.err));
	sql("BEGIN IMMEDIATE");
	sql("SAVEPOINT mutation");
	wctx_reset(&E.w, ts);
	rc = wctx_table(&E.w, table, 1, &t, &E.err);
	if (rc == 0)
		rc = wctx_index_create(&E.w, t, name, fields, nfields, unique,
		    &E.err);
	finish(ts, rc);
	return rc == 0 ? 0 : E.err.code;
}

/* A query in its own read transaction. */
static int
read_q(const char *path, const cJSON *args, int64_t read_ts,
    int64_t max_rows, struct buf *out, struct readset *rs,
    struct tv_error *err)
{
	int64_t	 max_ts = -1;
	int	 rc;

	memset(err, 0, sizeof(*err));
	if (store_begin_read(E.st, &max_ts) == -1)
		die("store_begin_read", NULL);
	CHECK(max_ts == E.max_ts, "read transaction sees max_ts %" PRId64
	    ", last commit was %" PRId64, max_ts, E.max_ts);
	rc = udf_run_query(E.st, path, args, read_ts, max_rows, out, rs,
	    err);
	store_end_read(E.st);
	E.nqueries++;
	return rc;
}

static void
open_engine(void)
{
	char	 err[256];

	E.st = store_open(E.path, STORE_RW, NULL, err, sizeof(err));
	if (E.st == NULL)
		die("store_open", err);
	if (wctx_init(&E.w, E.st, &E.conf) == -1)
		die("wctx_init", NULL);
}

static void
close_engine(void)
{
	wctx_free(&E.w);
	store_close(E.st);
	E.st = NULL;
}

/* The catalog in memory matches the one in the database. */
static void
check_catalog(const char *when)
{
	int64_t		 v = -1, nix = 0;
	size_t		 i;

	if (store_global_get_i64(E.st, GLOBAL_CATALOG_VERSION, &v) == -1)
		die("catalog_version", NULL);
	CHECK(E.st->catalog->version == v, "%s: catalog version %" PRId64
	    " in memory, %" PRId64 " in the database", when,
	    E.st->catalog->version, v);
	CHECK((int64_t)E.st->catalog->ntables == count_rows("tables"),
	    "%s: %zu tables in memory, %" PRId64 " in the database", when,
	    E.st->catalog->ntables, count_rows("tables"));
	for (i = 0; i < E.st->catalog->ntables; i++)
		nix += (int64_t)E.st->catalog->tables[i]->nindexes;
	CHECK(nix == count_rows("index_defs"), "%s: %" PRId64 " indexes in "
	    "memory, %" PRId64 " in the database", when, nix,
	    count_rows("index_defs"));
}

/* Every table of the database, every column, in key order. */
static void
dump_db(struct buf *out)
{
	static const char *const q[] = {
		"SELECT * FROM documents ORDER BY id, ts",
		"SELECT * FROM indexes ORDER BY index_id, key, ts",
		"SELECT * FROM current_documents ORDER BY id",
		"SELECT * FROM current_indexes ORDER BY index_id, key",
		"SELECT * FROM globals ORDER BY key",
		"SELECT * FROM tables ORDER BY table_id",
		"SELECT * FROM index_defs ORDER BY index_id",
		"SELECT * FROM idempotency ORDER BY session_id, request_id",
	};
	sqlite3_stmt	*s;
	size_t		 i;
	int		 c, n;

	buf_reset(out);
	for (i = 0; i < nitems(q); i++) {
		if (sqlite3_prepare_v2(E.st->db, q[i], -1, &s, NULL) !=
		    SQLITE_OK)
			die("prepare", sqlite3_errmsg(E.st->db));
		buf_printf(out, "%s\n", q[i]);
		while (sqlite3_step(s) == SQLITE_ROW) {
			n = sqlite3_column_count(s);
			for (c = 0; c < n; c++) {
				buf_printf(out, "%d:%d:",
				    sqlite3_column_type(s, c),
				    sqlite3_column_bytes(s, c));
				buf_add(out, sqlite3_column_blob(s, c),
				    (size_t)sqlite3_column_bytes(s, c));
			}
			buf_addc(out, '\n');
		}
		sqlite3_finalize(s);
	}
}

/* Model */

static size_t
model_new(int table)
{
	if (M.n == M.cap) {
		M.cap = M.cap == 0 ? 128 : M.cap * 2;
		M.docs = xreallocarray(M.docs, M.cap, sizeof(*M.docs));
	}
	memset(&M.docs[M.n], 0, sizeof(M.docs[M.n]));
	M.docs[M.n].table = table;
	return M.n++;
}

/* Record doc (owned from now on; NULL deleted) as document i at ts. */
static void
model_put(size_t i, int64_t ts, cJSON *doc)
{
	struct mdoc	*d = &M.docs[i];
	struct rev	*r;

	if (d->nrevs > 0 && d->revs[d->nrevs - 1].ts == ts) {
		/* Written again by the same mutation. */
		r = &d->revs[d->nrevs - 1];
		cJSON_Delete(r->doc);
		free(r->canon);
	} else {
		if (d->nrevs == d->cap) {
			d->cap = d->cap == 0 ? 4 : d->cap * 2;
			d->revs = xreallocarray(d->revs, d->cap,
			    sizeof(*d->revs));
		}
		r = &d->revs[d->nrevs++];
	}
	r->ts = ts;
	r->doc = doc;
	r->canon = NULL;
}

/* Document i at ts (SCAN_CURRENT: newest); NULL before it existed. */
static struct rev *
model_rev(size_t i, int64_t ts)
{
	struct mdoc	*d = &M.docs[i];
	size_t		 k;

	if (d->nrevs == 0)
		return NULL;
	if (ts == SCAN_CURRENT)
		return &d->revs[d->nrevs - 1];
	for (k = d->nrevs; k > 0; k--)
		if (d->revs[k - 1].ts <= ts)
			return &d->revs[k - 1];
	return NULL;
}

static const cJSON *
model_at(size_t i, int64_t ts)
{
	struct rev	*r = model_rev(i, ts);

	return r != NULL ? r->doc : NULL;
}

static const char *
rev_canon(struct rev *r)
{
	struct buf	 b;

	if (r->canon == NULL) {
		buf_init(&b);
		json_print_canonical(&b, r->doc);
		r->canon = buf_steal(&b, NULL);
	}
	return r->canon;
}

/* Forget what a failed mutation at ts did to the model. */
static void
model_undo(int64_t ts)
{
	struct mdoc	*d;
	size_t		 i;

	for (i = 0; i < M.n; i++) {
		d = &M.docs[i];
		if (d->nrevs > 0 && d->revs[d->nrevs - 1].ts == ts) {
			d->nrevs--;
			cJSON_Delete(d->revs[d->nrevs].doc);
			free(d->revs[d->nrevs].canon);
		}
	}
	while (M.n > 0 && M.docs[M.n - 1].nrevs == 0) {
		free(M.docs[M.n - 1].revs);
		M.n--;
	}
}

static void
model_free(void)
{
	size_t	 i, k;

	for (i = 0; i < M.n; i++) {
		for (k = 0; k < M.docs[i].nrevs; k++) {
			cJSON_Delete(M.docs[i].revs[k].doc);
			free(M.docs[i].revs[k].canon);
		}
		free(M.docs[i].revs);
	}
	free(M.docs);
	cJSON_Delete(M.data);
	cJSON_Delete(M.between);
	memset(&M, 0, sizeof(M));
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
 * What a document should be: _id and _creationTime, the user fields of
 * user (system fields skipped, unset ones dropped, set ones replaced),
 * then the set fields user lacks.
 */
static cJSON *
model_doc(const char *id, double ct, const cJSON *user, const cJSON *set,
    const cJSON *unset)
{
	const cJSON	*m, *s;
	cJSON		*doc;

	doc = cJSON_CreateObject();
	cJSON_AddItemToObject(doc, "_id", cJSON_CreateString(id));
	cJSON_AddItemToObject(doc, "_creationTime", cJSON_CreateNumber(ct));
	cJSON_ArrayForEach(m, user) {
		if (m->string[0] == '_' || listed(unset, m->string))
			continue;
		s = json_get(set, m->string);
		cJSON_AddItemToObject(doc, m->string,
		    cJSON_Duplicate(s != NULL ? s : m, 1));
	}
	cJSON_ArrayForEach(m, set)
		if (json_get(user, m->string) == NULL)
			cJSON_AddItemToObject(doc, m->string,
			    cJSON_Duplicate(m, 1));
	return doc;
}

static double
ct_of(const cJSON *doc)
{
	const cJSON	*ct = json_get(doc, "_creationTime");

	return cJSON_IsNumber(ct) ? ct->valuedouble : 0;
}

/* 1 when doc's code is held by another live document of its table. */
static int
model_code_taken(int table, const cJSON *doc, long self)
{
	const cJSON	*code, *other, *c;
	size_t		 i;

	if (!M.unique_code[table] ||
	    (code = json_get(doc, "code")) == NULL)
		return 0;
	for (i = 0; i < M.n; i++) {
		if (M.docs[i].table != table || (long)i == self)
			continue;
		if ((other = model_at(i, SCAN_CURRENT)) != NULL &&
		    (c = json_get(other, "code")) != NULL &&
		    key_value_compare(c, code) == 0)
			return 1;
	}
	return 0;
}

/* A committed document of table, live or deleted now; -1 when none. */
static long
pick_doc(int table, int live)
{
	const cJSON	*cur;
	size_t		 i, seen = 0;
	long		 pick = -1;

	for (i = 0; i < M.n; i++) {
		if (M.docs[i].table != table || M.docs[i].id[0] == '\0')
			continue;
		cur = model_at(i, SCAN_CURRENT);
		if ((cur != NULL) != (live != 0))
			continue;
		if (rnd_n((uint32_t)++seen) == 0)
			pick = (long)i;
	}
	return pick;
}

static int
ent_cmp(const void *pa, const void *pb)
{
	const struct ent	*a = pa, *b = pb;
	size_t			 i;
	int			 c;

	for (i = 0; i < sort_nfields; i++) {
		c = key_value_compare(json_get(a->rev->doc, sort_fields[i]),
		    json_get(b->rev->doc, sort_fields[i]));
		if (c != 0)
			return c;
	}
	return strcmp(M.docs[a->doc].id, M.docs[b->doc].id);
}

/* The live documents of table at ts in the order of fields. */
static size_t
model_list(int table, int64_t ts, char *const *fields, size_t nfields,
    struct ent **out)
{
	struct ent	*e;
	struct rev	*r;
	size_t		 i, n = 0;

	e = xcalloc(M.n + 1, sizeof(*e));
	for (i = 0; i < M.n; i++) {
		if (M.docs[i].table != table)
			continue;
		if ((r = model_rev(i, ts)) == NULL || r->doc == NULL)
			continue;
		e[n].doc = i;
		e[n].rev = r;
		n++;
	}
	sort_fields = fields;
	sort_nfields = nfields;
	qsort(e, n, sizeof(*e), ent_cmp);
	*out = e;
	return n;
}

static void
ents_reverse(struct ent *e, size_t n)
{
	struct ent	 t;
	size_t		 i;

	for (i = 0; i < n / 2; i++) {
		t = e[i];
		e[i] = e[n - 1 - i];
		e[n - 1 - i] = t;
	}
}

/* Generators */

static cJSON *
gen_string(void)
{
	static const char *const pieces[] = {
		"a", "b", "z", " ", "\xc3\xa9", "\xe2\x82\xac", "\"", "\\",
		"\n", "\x01", "ab", "\xf0\x9f\x98\x80",
	};
	struct buf	 b;
	cJSON		*v;
	uint32_t	 i, n = rnd_n(5);

	buf_init(&b);
	buf_add(&b, "", 0);
	for (i = 0; i < n; i++)
		buf_adds(&b, pieces[rnd_n(nitems(pieces))]);
	v = cJSON_CreateString(b.data);
	buf_free(&b);
	return v;
}

static cJSON *
gen_field(int table, const char *name)
{
	cJSON		*v, *o;
	char		 s[32];
	uint32_t	 i, n;

	if (strcmp(name, "group") == 0) {
		if (rnd_n(5) < 4)
			return cJSON_CreateNumber(rnd_n(5));
		snprintf(s, sizeof(s), "g%u", rnd_n(3));
		return cJSON_CreateString(s);
	}
	if (strcmp(name, "n") == 0)
		return cJSON_CreateNumber(num_pool[rnd_n(nitems(num_pool))]);
	if (strcmp(name, "s") == 0)
		return gen_string();
	if (strcmp(name, "flag") == 0) {
		if (rnd_n(3) == 0)
			return cJSON_CreateNull();
		return cJSON_CreateBool(rnd_n(2));
	}
	if (strcmp(name, "tags") == 0) {
		v = cJSON_CreateArray();
		n = rnd_n(4);
		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(v, rnd_n(2) ?
			    cJSON_CreateNumber(rnd_n(10)) : gen_string());
		return v;
	}
	if (strcmp(name, "meta") == 0) {
		v = cJSON_CreateObject();
		cJSON_AddItemToObject(v, "x", cJSON_CreateNumber(rnd_n(100)));
		o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "deep", cJSON_CreateBool(rnd_n(2)));
		cJSON_AddItemToObject(v, "y", o);
		return v;
	}
	if (strcmp(name, "code") == 0) {
		if (table == T_ALPHA && !M.unique_code[T_ALPHA])
			snprintf(s, sizeof(s), "u%d", M.code_seq++);
		else
			snprintf(s, sizeof(s), "c%u", rnd_n(table == T_ALPHA ?
			    CODES_ALPHA : 5));
		return cJSON_CreateString(s);
	}
	if (strcmp(name, "a") == 0)
		return cJSON_Duplicate(cJSON_GetArrayItem(M.data,
		    (int)rnd_n((uint32_t)cJSON_GetArraySize(M.data))), 1);
	if (strcmp(name, "b") == 0)
		return cJSON_Duplicate(cJSON_GetArrayItem(M.data,
		    (int)rnd_n(RANGE_B_VALUES)), 1);
	return cJSON_CreateNumber(rnd_n(1000));
}

static cJSON *
gen_user_doc(int table)
{
	cJSON	*doc = cJSON_CreateObject();
	size_t	 i;

	if (table == T_RANGES) {
		if (rnd_n(8) != 0)
			cJSON_AddItemToObject(doc, "a", gen_field(table, "a"));
		if (rnd_n(8) != 0)
			cJSON_AddItemToObject(doc, "b", gen_field(table, "b"));
		cJSON_AddItemToObject(doc, "k", gen_field(table, "k"));
		return doc;
	}
	for (i = 0; i < nitems(random_fields); i++)
		if (rnd_n(100) < FIELD_PCT)
			cJSON_AddItemToObject(doc, random_fields[i],
			    gen_field(table, random_fields[i]));
	return doc;
}

/* The set and unset of a patch; either may be NULL (left out). */
static void
gen_patch(int table, cJSON **set, cJSON **unset)
{
	const char *const	*names = random_fields;
	size_t			 i, n = nitems(random_fields);
	uint32_t		 r;
	int			 keep_empty = 0;

	if (table == T_RANGES) {
		names = range_fields;
		n = nitems(range_fields);
	}
	*set = cJSON_CreateObject();
	*unset = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		r = rnd_n(10);
		if (r < 3)
			cJSON_AddItemToObject(*set, names[i],
			    gen_field(table, names[i]));
		else if (r == 3)
			cJSON_AddItemToArray(*unset,
			    cJSON_CreateString(names[i]));
	}
	if ((*set)->child == NULL && (*unset)->child == NULL) {
		r = rnd_n(3);
		if (r == 1)
			keep_empty = 1;
		else if (r == 2)
			cJSON_AddItemToObject(*set, names[0],
			    gen_field(table, names[0]));
	}
	if ((*set)->child == NULL && !keep_empty) {
		cJSON_Delete(*set);
		*set = NULL;
	}
	if ((*unset)->child == NULL) {
		cJSON_Delete(*unset);
		*unset = NULL;
	}
}

/*
 * Draw one op on table for a mutation at ts.  When it is expected to
 * succeed the model takes its effect at once, so a later op of the same
 * batch sees it; *newdoc is the model document an insert made (-1
 * otherwise).  Returns the expected error code, 0 for success.
 */
static int
gen_op(int table, int64_t ts, int insert_only, enum opkind *kind,
    cJSON **args, long *newdoc)
{
	const char	*tname = table_names[table];
	const cJSON	*old;
	cJSON		*a, *user, *set, *unset, *doc;
	long		 d, dead;
	uint32_t	 r = rnd_n(100);

	*newdoc = -1;
	a = cJSON_CreateObject();
	*args = a;
	d = insert_only ? -1 : pick_doc(table, 1);
	if (d == -1 || r < 35) {
		*kind = OP_INSERT;
		user = gen_user_doc(table);
		cJSON_AddStringToObject(a, "table", tname);
		cJSON_AddItemToObject(a, "doc", user);
		doc = model_doc("", (double)ts / 1000.0, user, NULL, NULL);
		if (model_code_taken(table, doc, -1)) {
			cJSON_Delete(doc);
			return TV_CONFLICT;
		}
		*newdoc = (long)model_new(table);
		model_put((size_t)*newdoc, ts, doc);
		return 0;
	}
	if (r >= 90) {
		/* A document that is not there: deleted, or elsewhere. */
		*kind = (enum opkind)(OP_PATCH + rnd_n(3));
		dead = pick_doc(table, 0);
		if (dead != -1 && rnd_n(2) == 0)
			cJSON_AddStringToObject(a, "table", tname);
		else {
			cJSON_AddStringToObject(a, "table",
			    table_names[(table + 1) % T_COUNT]);
			dead = d;
		}
		cJSON_AddStringToObject(a, "id", M.docs[dead].id);
		if (*kind == OP_PATCH)
			cJSON_AddItemToObject(a, "set", gen_user_doc(table));
		else if (*kind == OP_REPLACE)
			cJSON_AddItemToObject(a, "doc", gen_user_doc(table));
		return TV_NOT_FOUND;
	}
	old = model_at((size_t)d, SCAN_CURRENT);
	cJSON_AddStringToObject(a, "table", tname);
	cJSON_AddStringToObject(a, "id", M.docs[d].id);
	if (r < 65) {
		*kind = OP_PATCH;
		gen_patch(table, &set, &unset);
		doc = model_doc(M.docs[d].id, ct_of(old), old, set, unset);
		if (set != NULL)
			cJSON_AddItemToObject(a, "set", set);
		if (unset != NULL)
			cJSON_AddItemToObject(a, "unset", unset);
	} else if (r < 78) {
		*kind = OP_REPLACE;
		user = gen_user_doc(table);
		doc = model_doc(M.docs[d].id, ct_of(old), user, NULL, NULL);
		cJSON_AddItemToObject(a, "doc", user);
	} else {
		*kind = OP_DELETE;
		model_put((size_t)d, ts, NULL);
		return 0;
	}
	if (model_code_taken(table, doc, d)) {
		cJSON_Delete(doc);
		return TV_CONFLICT;
	}
	model_put((size_t)d, ts, doc);
	return 0;
}

/* Give a committed insert its id, in the model too. */
static void
model_set_id(long d, const cJSON *id)
{
	struct mdoc	*m = &M.docs[d];

	CHECK(cJSON_IsString(id) && store_valid_id(id->valuestring),
	    "insert returned %s, not an id", cJSON_IsString(id) ?
	    id->valuestring : "(not a string)");
	if (!cJSON_IsString(id))
		return;
	strlcpy_tv(m->id, id->valuestring, sizeof(m->id));
	cJSON_ReplaceItemInObjectCaseSensitive(m->revs[0].doc, "_id",
	    cJSON_CreateString(id->valuestring));
}

/*
 * One random mutation (a single op, or a batch of them) on one of tabs,
 * checked against the model.  0, or -1 when the engine disagreed and the
 * run cannot go on.
 */
static int
random_mutation(const int *tabs, size_t ntabs, int insert_only)
{
	enum opkind	 kinds[BATCH_OPS];
	cJSON		*opargs[BATCH_OPS], *args, *ops, *o, *value = NULL;
	long		 newdocs[BATCH_OPS];
	const char	*path;
	enum json_err	 jerr;
	struct buf	 text;
	size_t		 nops, n, j;
	int64_t		 ts = next_ts();
	int		 want = 0, got, rc, batch, ret = 0;

	nops = rnd_n(100) < BATCH_PCT ? 2 + rnd_n(BATCH_OPS - 1) : 1;
	batch = nops > 1;
	for (n = 0; n < nops && want == 0; n++)
		want = gen_op(tabs[rnd_n((uint32_t)ntabs)], ts, insert_only,
		    &kinds[n], &opargs[n], &newdocs[n]);
	if (!batch) {
		path = op_paths[kinds[0]];
		args = opargs[0];
	} else {
		path = "db/batch";
		args = cJSON_CreateObject();
		ops = cJSON_AddArrayToObject(args, "ops");
		for (j = 0; j < n; j++) {
			o = opargs[j];
			cJSON_AddStringToObject(o, "op", op_names[kinds[j]]);
			cJSON_AddItemToArray(ops, o);
		}
		E.nbatch++;
	}
	rc = mutate_at(ts, path, args);
	E.nmut++;
	got = rc == 0 ? 0 : E.err.code;
	if (got != want) {
		buf_init(&text);
		json_print(&text, args);
		CHECK(got == want, "%s at ts %" PRId64 ": got %d %s (%s), the "
		    "model expects %d: %.600s", path, ts, got,
		    got != 0 ? tv_kind(got) : "ok", E.err.message, want,
		    text.data);
		buf_free(&text);
		ret = -1;
		goto done;
	}
	if (rc == -1) {
		model_undo(ts);
		E.byerr[got == TV_VALIDATION ? 0 : got == TV_NOT_FOUND ? 1 :
		    got == TV_CONFLICT ? 2 : 3]++;
		goto done;
	}
	E.nok++;
	value = json_parse(E.value.data, E.value.len, JSON_MAX_DEPTH, &jerr);
	if (!batch) {
		if (kinds[0] == OP_INSERT)
			model_set_id(newdocs[0], value);
		else
			CHECK(cJSON_IsNull(value), "%s returned %s", path,
			    E.value.data);
		goto done;
	}
	CHECK(cJSON_IsArray(value) && cJSON_GetArraySize(value) == (int)n,
	    "db/batch of %zu ops returned %s", n, E.value.data);
	if (!cJSON_IsArray(value)) {
		ret = -1;
		goto done;
	}
	for (j = 0; j < n; j++) {
		o = cJSON_GetArrayItem(value, (int)j);
		if (kinds[j] == OP_INSERT)
			model_set_id(newdocs[j], o);
		else
			CHECK(cJSON_IsNull(o), "db/batch op %zu returned %s",
			    j, E.value.data);
	}
done:
	cJSON_Delete(value);
	cJSON_Delete(args);
	return ret;
}

/* Result checks */

/* Compare a result array with the model's documents, in order. */
static void
compare_result(const char *what, const struct buf *out,
    const struct ent *want, size_t nwant)
{
	const cJSON	*item;
	cJSON		*arr;
	enum json_err	 jerr;
	struct buf	 b;
	size_t		 i = 0;

	arr = json_parse(out->data, out->len, PARSE_DEPTH, &jerr);
	CHECK(cJSON_IsArray(arr), "%s: result is not an array: %.200s",
	    what, out->data != NULL ? out->data : "");
	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		return;
	}
	CHECK(cJSON_GetArraySize(arr) == (int)nwant, "%s: %d documents, the "
	    "model has %zu", what, cJSON_GetArraySize(arr), nwant);
	buf_init(&b);
	cJSON_ArrayForEach(item, arr) {
		if (i >= nwant)
			break;
		buf_reset(&b);
		json_print_canonical(&b, item);
		CHECK(strcmp(b.data, rev_canon(want[i].rev)) == 0, "%s: "
		    "document %zu is %.300s, the model has %.300s", what, i,
		    b.data, rev_canon(want[i].rev));
		if (strcmp(b.data, rev_canon(want[i].rev)) != 0)
			break;
		i++;
	}
	buf_free(&b);
	cJSON_Delete(arr);
}

static void
doc_key(struct buf *k, const cJSON *doc, const struct store_index *ix,
    const char *id)
{
	if (key_encode_doc(k, doc, ix->fields, ix->nfields, id) == -1)
		die("key_encode_doc", id);
}

/* A full scan of one index of a model table at ts. */
static void
check_index_at(int table, const struct store_table *tab,
    const struct store_index *ix, int64_t ts, int desc)
{
	struct readset	 rs;
	struct tv_error	 err;
	struct buf	 out, k;
	struct ent	*e = NULL;
	cJSON		*args;
	char		 what[160];
	size_t		 i, n;
	int		 rc, want;

	snprintf(what, sizeof(what), "db/query %s.%s %s at ts %" PRId64,
	    tab->name, ix->name, desc ? "desc" : "asc", ts);
	want = ts != SCAN_CURRENT && ts < ix->created_ts &&
	    ts >= tab->created_ts ? TV_OUT_OF_RETENTION : 0;
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "table", tab->name);
	cJSON_AddStringToObject(args, "index", ix->name);
	cJSON_AddStringToObject(args, "order", desc ? "desc" : "asc");
	buf_init(&out);
	buf_init(&k);
	readset_init(&rs);
	rc = read_q("db/query", args, ts, MAX_ROWS, &out, &rs, &err);
	if (want != 0) {
		CHECK(rc == -1 && err.code == want, "%s: before the index "
		    "existed: got %d, want OutOfRetention", what,
		    rc == 0 ? 0 : err.code);
		goto done;
	}
	CHECK(rc == 0, "%s: %s", what, err.message);
	if (rc == -1)
		goto done;
	n = model_list(table, ts, ix->fields, ix->nfields, &e);
	if (desc)
		ents_reverse(e, n);
	compare_result(what, &out, e, n);
	CHECK(!rs.catalog_dep, "%s: catalog dependency on a table that "
	    "exists", what);
	for (i = 0; i < n; i++) {
		doc_key(&k, e[i].rev->doc, ix, M.docs[e[i].doc].id);
		CHECK(readset_hit(&rs, ix->id, k.data, k.len), "%s: read set "
		    "misses returned document %s", what, M.docs[e[i].doc].id);
	}
done:
	free(e);
	readset_free(&rs);
	buf_free(&out);
	buf_free(&k);
	cJSON_Delete(args);
}

static void
check_table_at(int table, int64_t ts, int all_indexes)
{
	const struct store_table	*tab;
	size_t				 i;

	tab = catalog_table(E.st->catalog, table_names[table]);
	CHECK(tab != NULL, "table %s is not in the catalog",
	    table_names[table]);
	if (tab == NULL)
		return;
	for (i = 0; i < tab->nindexes; i++) {
		if (!all_indexes && strcmp(tab->indexes[i]->name,
		    STORE_INDEX_BY_CREATION) != 0)
			continue;
		check_index_at(table, tab, tab->indexes[i], ts,
		    rnd_n(4) == 0);
	}
}

/* db/get of document d, asked of table, at ts, and its read set. */
static void
check_get(size_t d, int table, int64_t ts)
{
	const struct store_table	*tab;
	const struct store_index	*byid;
	struct readset			 rs;
	struct tv_error			 err;
	struct buf			 out, got, k;
	struct rev			*r;
	cJSON				*args, *v, *kdoc;
	enum json_err			 jerr;
	const char			*want;
	char				 what[160];
	size_t				 other;
	int				 rc;

	snprintf(what, sizeof(what), "db/get %s %s at ts %" PRId64,
	    table_names[table], M.docs[d].id, ts);
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "table", table_names[table]);
	cJSON_AddStringToObject(args, "id", M.docs[d].id);
	buf_init(&out);
	buf_init(&got);
	buf_init(&k);
	readset_init(&rs);
	rc = read_q("db/get", args, ts, MAX_ROWS, &out, &rs, &err);
	CHECK(rc == 0, "%s: %s", what, err.message);
	if (rc == -1)
		goto done;
	r = table == M.docs[d].table ? model_rev(d, ts) : NULL;
	want = r != NULL && r->doc != NULL ? rev_canon(r) : "null";
	v = json_parse(out.data, out.len, PARSE_DEPTH, &jerr);
	if (v != NULL)
		json_print_canonical(&got, v);
	cJSON_Delete(v);
	CHECK(v != NULL && strcmp(got.data, want) == 0, "%s: got %.300s, "
	    "the model has %.300s", what, out.data, want);
	/* The read set: this id's by_id key, no other's. */
	tab = catalog_table(E.st->catalog, table_names[table]);
	if (tab == NULL || (byid = catalog_index(tab, STORE_INDEX_BY_ID)) ==
	    NULL)
		goto done;
	kdoc = cJSON_CreateObject();
	cJSON_AddStringToObject(kdoc, "_id", M.docs[d].id);
	doc_key(&k, kdoc, byid, M.docs[d].id);
	cJSON_Delete(kdoc);
	CHECK(readset_hit(&rs, byid->id, k.data, k.len), "%s: read set "
	    "misses the by_id key", what);
	other = (d + 1 + rnd_n((uint32_t)M.n - 1)) % M.n;
	if (strcmp(M.docs[other].id, M.docs[d].id) != 0 &&
	    M.docs[other].id[0] != '\0') {
		kdoc = cJSON_CreateObject();
		cJSON_AddStringToObject(kdoc, "_id", M.docs[other].id);
		doc_key(&k, kdoc, byid, M.docs[other].id);
		cJSON_Delete(kdoc);
		CHECK(!readset_hit(&rs, byid->id, k.data, k.len), "%s: read "
		    "set holds the by_id key of %s too", what,
		    M.docs[other].id);
	}
done:
	readset_free(&rs);
	buf_free(&out);
	buf_free(&got);
	buf_free(&k);
	cJSON_Delete(args);
}

static void
check_point(int64_t ts, int all_indexes)
{
	size_t	 g, d;
	int	 t;

	for (t = 0; t < T_RANDOM; t++)
		check_table_at(t, ts, all_indexes);
	for (g = 0; g < GETS_PER_TS && M.n > 1; g++) {
		do
			d = rnd_n((uint32_t)M.n);
		while (M.docs[d].table >= T_RANDOM);
		check_get(d, M.docs[d].table, ts);
		if (g == 0)
			check_get(d, (M.docs[d].table + 1) % T_RANDOM, ts);
	}
}

/*
 * Test 1: reads at every every-th commit ts and at a ts between it and
 * the commit before, then past the last commit and at the current state.
 */
static void
check_snapshots(size_t every)
{
	int64_t	 c, prev;
	size_t	 i, npoints = 0;

	check_point(TS_START, 1);
	for (i = 0; i < E.ncommits; i += every) {
		c = E.commits[i];
		prev = i > 0 ? E.commits[i - 1] : TS_START;
		if (c - prev > 1) {
			check_point(prev + 1 + (int64_t)rnd_n((uint32_t)(c -
			    prev - 1)), i % ALL_INDEX_EVERY == 0);
			npoints++;
		}
		check_point(c, i % ALL_INDEX_EVERY == 1);
		npoints++;
	}
	check_point(E.max_ts + TS_GAP, 1);
	check_point(SCAN_CURRENT, 1);
	printf("store: snapshot reads at %zu read points (every %zu "
	    "commits)\n", npoints + 3, every);
}

/* Test 2 */

static void
rows_add(struct rows *r, struct buf *b)
{
	if (r->n == r->cap) {
		r->cap = r->cap == 0 ? 256 : r->cap * 2;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	r->v[r->n++] = buf_steal(b, NULL);
}

static void
rows_free(struct rows *r)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
rows_compare(const char *what, const struct rows *a, const char *aname,
    const struct rows *b, const char *bname)
{
	size_t	 i;

	CHECK(a->n == b->n, "%s: %zu rows in %s, %zu in %s", what, a->n,
	    aname, b->n, bname);
	for (i = 0; i < a->n && i < b->n; i++) {
		CHECK(strcmp(a->v[i], b->v[i]) == 0, "%s: row %zu is %.200s "
		    "in %s, %.200s in %s", what, i, a->v[i], aname, b->v[i],
		    bname);
		if (strcmp(a->v[i], b->v[i]) != 0)
			break;
	}
}

static void
add_hex(struct buf *b, const void *p, size_t len)
{
	const unsigned char	*s = p;
	size_t			 i;

	for (i = 0; i < len; i++)
		buf_printf(b, "%02x", s[i]);
}

static sqlite3_stmt *
prep(const char *q)
{
	sqlite3_stmt	*s;

	if (sqlite3_prepare_v2(E.st->db, q, -1, &s, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(E.st->db));
	return s;
}

static int
collect_cb(void *arg, const char *id, const char *json, size_t len)
{
	struct rows	*r = arg;
	struct buf	 b;

	buf_init(&b);
	buf_adds(&b, id);
	buf_addc(&b, ' ');
	buf_add(&b, json, len);
	rows_add(r, &b);
	return 0;
}

/* A whole index, as scan_index walks it at read_ts. */
static void
scan_all(const struct store_index *ix, int64_t read_ts, int desc,
    struct rows *out)
{
	struct scan_range	 r;

	memset(&r, 0, sizeof(r));
	r.index_id = ix->id;
	r.lo = "";
	r.lolen = 0;
	r.hi = NULL;
	r.desc = desc;
	r.read_ts = read_ts;
	CHECK(scan_index(E.st, &r, collect_cb, out, NULL) == (int64_t)out->n,
	    "scan_index of %s: count differs from the documents returned",
	    ix->name);
}

/*
 * The current state against the log: current_documents against the
 * newest revision of every id in documents, current_indexes against the
 * newest revision of every key in indexes and against the keys of the
 * current documents, and every index scanned on the current state and on
 * the log at max_ts.
 */
static void
check_current_vs_log(const char *when)
{
	const struct store_table	*t;
	const struct store_index	*ix;
	struct rows			 cur, logd, curi, logi, want, a, b;
	sqlite3_stmt			*s;
	struct buf			 row, newest, k;
	cJSON				*doc, *dec, *last;
	enum json_err			 jerr;
	char				 previd[STORE_ID_LEN + 1] = "";
	char				 keyid[STORE_ID_LEN + 1];
	const char			*id;
	int64_t				 ts, prevts = 0, ndocs, previx = -1;
	size_t				 i, j, nt, r;
	int				 deleted, prevdel = 0, have = 0, desc;
	int				 fail0 = nfail;

	memset(&cur, 0, sizeof(cur));
	memset(&logd, 0, sizeof(logd));
	memset(&curi, 0, sizeof(curi));
	memset(&logi, 0, sizeof(logi));
	memset(&want, 0, sizeof(want));
	buf_init(&row);
	buf_init(&newest);
	buf_init(&k);

	/* Each table's kept count is its number of current documents. */
	CHECK(store_query_i64(E.st, "SELECT count(*) FROM tables t"
	    " WHERE (SELECT documents FROM table_counts c"
	    " WHERE c.table_id = t.table_id) IS NOT"
	    " (SELECT count(*) FROM current_documents d"
	    " WHERE d.table_id = t.table_id)") == 0 &&
	    store_query_i64(E.st, "SELECT count(*) FROM table_counts") ==
	    store_query_i64(E.st, "SELECT count(*) FROM tables"),
	    "%s: table_counts holds each table's current documents", when);

	/* Each current document points at its own newest log row. */
	s = prep("SELECT c.id, c.table_id, c.ts, d.json_value, d.id, d.ts,"
	    " d.table_id, d.deleted FROM current_documents c"
	    " LEFT JOIN documents d ON d.seq = c.seq ORDER BY c.id");
	while (sqlite3_step(s) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(s, 0);
		CHECK(sqlite3_column_type(s, 4) != SQLITE_NULL &&
		    strcmp((const char *)sqlite3_column_text(s, 4), id) == 0 &&
		    sqlite3_column_int64(s, 5) == sqlite3_column_int64(s, 2) &&
		    sqlite3_column_int64(s, 6) == sqlite3_column_int64(s, 1) &&
		    sqlite3_column_int(s, 7) == 0, "%s: current document %s "
		    "does not point at its revision at %lld", when, id,
		    (long long)sqlite3_column_int64(s, 2));
		buf_printf(&row, "%s %lld %lld %s", id,
		    (long long)sqlite3_column_int64(s, 1),
		    (long long)sqlite3_column_int64(s, 2),
		    (const char *)sqlite3_column_text(s, 3));
		rows_add(&cur, &row);
	}
	sqlite3_finalize(s);

	/* The log: each id's revisions in ts order, the newest last. */
	s = prep("SELECT id, ts, table_id, json_value, deleted, prev_ts FROM"
	    " documents ORDER BY id, ts");
	while (sqlite3_step(s) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(s, 0);
		ts = sqlite3_column_int64(s, 1);
		deleted = sqlite3_column_int(s, 4);
		if (strcmp(id, previd) == 0) {
			CHECK(sqlite3_column_int64(s, 5) == prevts, "%s: "
			    "document %s at %" PRId64 ": prev_ts %lld, the "
			    "revision before is at %" PRId64, when, id, ts,
			    (long long)sqlite3_column_int64(s, 5), prevts);
			CHECK(!prevdel, "%s: document %s has a revision after "
			    "its delete", when, id);
		} else {
			if (have && !prevdel)
				rows_add(&logd, &newest);
			CHECK(sqlite3_column_int64(s, 5) == 0, "%s: first "
			    "revision of %s has prev_ts %lld", when, id,
			    (long long)sqlite3_column_int64(s, 5));
			strlcpy_tv(previd, id, sizeof(previd));
		}
		have = 1;
		prevts = ts;
		prevdel = deleted;
		buf_reset(&newest);
		if (!deleted)
			buf_printf(&newest, "%s %lld %lld %s", id,
			    (long long)sqlite3_column_int64(s, 2),
			    (long long)ts,
			    (const char *)sqlite3_column_text(s, 3));
		else
			CHECK(sqlite3_column_type(s, 3) == SQLITE_NULL, "%s: "
			    "delete of %s holds a value", when, id);
	}
	if (have && !prevdel)
		rows_add(&logd, &newest);
	sqlite3_finalize(s);
	rows_compare(when, &cur, "current_documents", &logd,
	    "the newest revisions in documents");

	s = prep("SELECT index_id, key FROM current_indexes"
	    " ORDER BY index_id, key");
	while (sqlite3_step(s) == SQLITE_ROW) {
		buf_printf(&row, "%020lld ",
		    (long long)sqlite3_column_int64(s, 0));
		add_hex(&row, sqlite3_column_blob(s, 1),
		    (size_t)sqlite3_column_bytes(s, 1));
		CHECK(key_doc_id(sqlite3_column_blob(s, 1),
		    (size_t)sqlite3_column_bytes(s, 1), STORE_ID_LEN, keyid)
		    == 0, "%s: current index entry without an id", when);
		buf_printf(&row, " %s", keyid);
		rows_add(&curi, &row);
	}
	sqlite3_finalize(s);

	/* Index entry revisions: newest of each (index_id, key) last. */
	s = prep("SELECT index_id, key, ts, deleted, table_id"
	    " FROM indexes ORDER BY index_id, key, ts");
	have = 0;
	buf_reset(&k);
	while (sqlite3_step(s) == SQLITE_ROW) {
		ts = sqlite3_column_int64(s, 0);
		if (!have || ts != previx || k.len !=
		    (size_t)sqlite3_column_bytes(s, 1) || memcmp(k.data,
		    sqlite3_column_blob(s, 1), k.len) != 0) {
			if (have && !prevdel)
				rows_add(&logi, &newest);
			previx = ts;
			buf_reset(&k);
			buf_add(&k, sqlite3_column_blob(s, 1),
			    (size_t)sqlite3_column_bytes(s, 1));
			prevdel = 1;	/* absent before its first entry */
		}
		/* A key's entries alternate: added, removed, added... */
		CHECK(sqlite3_column_int(s, 3) != prevdel, "%s: index %"
		    PRId64 ": entry at %lld repeats the one before (%s)", when,
		    previx, (long long)sqlite3_column_int64(s, 2),
		    prevdel ? "removed twice" : "added twice");
		have = 1;
		prevdel = sqlite3_column_int(s, 3);
		keyid[0] = '\0';
		CHECK(key_doc_id(k.data, k.len, STORE_ID_LEN, keyid) == 0,
		    "%s: index entry without an id", when);
		id = keyid;
		ix = catalog_index_by_id(E.st->catalog, previx);
		CHECK(ix != NULL && ix->table_id ==
		    sqlite3_column_int64(s, 4), "%s: index entry of index %"
		    PRId64 " with table %lld", when, previx,
		    (long long)sqlite3_column_int64(s, 4));
		/* key_doc_id agrees with the whole key decoded. */
		dec = key_decode((const unsigned char *)k.data, k.len);
		last = dec != NULL ? cJSON_GetArrayItem(dec,
		    cJSON_GetArraySize(dec) - 1) : NULL;
		CHECK(cJSON_IsString(last) && strcmp(last->valuestring, id) ==
		    0, "%s: index entry of %s: the key does not end with its "
		    "id", when, id);
		cJSON_Delete(dec);
		buf_reset(&newest);
		buf_printf(&newest, "%020lld ", (long long)previx);
		add_hex(&newest, k.data, k.len);
		buf_printf(&newest, " %s", id);
	}
	if (have && !prevdel)
		rows_add(&logi, &newest);
	sqlite3_finalize(s);
	rows_compare(when, &curi, "current_indexes", &logi,
	    "the newest revisions in indexes");

	/* Each current document has exactly its keys, in each index. */
	nt = E.st->catalog->ntables;
	s = prep("SELECT c.id, c.table_id, d.json_value"
	    " FROM current_documents c, documents d WHERE d.seq = c.seq");
	while (sqlite3_step(s) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(s, 0);
		t = catalog_table_by_id(E.st->catalog,
		    sqlite3_column_int64(s, 1));
		doc = json_parse((const char *)sqlite3_column_text(s, 2),
		    (size_t)sqlite3_column_bytes(s, 2), PARSE_DEPTH, &jerr);
		CHECK(t != NULL && doc != NULL, "%s: current document %s: no "
		    "table or unreadable", when, id);
		for (i = 0; t != NULL && doc != NULL && i < t->nindexes;
		    i++) {
			doc_key(&k, doc, t->indexes[i], id);
			buf_printf(&row, "%020lld ",
			    (long long)t->indexes[i]->id);
			add_hex(&row, k.data, k.len);
			buf_printf(&row, " %s", id);
			rows_add(&want, &row);
		}
		cJSON_Delete(doc);
	}
	sqlite3_finalize(s);
	qsort(want.v, want.n, sizeof(*want.v), str_cmp);
	qsort(curi.v, curi.n, sizeof(*curi.v), str_cmp);
	rows_compare(when, &curi, "current_indexes", &want,
	    "the keys of current_documents");

	/* Every index: current state and log at max_ts scan alike. */
	if (store_begin_read(E.st, &ts) == -1)
		die("store_begin_read", NULL);
	for (i = 0; i < nt; i++) {
		t = E.st->catalog->tables[i];
		for (j = 0; j < t->nindexes; j++) {
			ix = t->indexes[j];
			ndocs = 0;
			for (r = 0; r < cur.n; r++)
				if (strtoll(strchr(cur.v[r], ' ') + 1, NULL,
				    10) == t->id)
					ndocs++;
			for (desc = 0; desc < 2; desc++) {
				memset(&a, 0, sizeof(a));
				memset(&b, 0, sizeof(b));
				scan_all(ix, SCAN_CURRENT, desc, &a);
				scan_all(ix, ts, desc, &b);
				rows_compare(ix->name, &a, "the current state",
				    &b, "the log at max_ts");
				CHECK((int64_t)a.n == ndocs, "%s: %s.%s has "
				    "%zu entries for %" PRId64 " documents",
				    when, t->name, ix->name, a.n, ndocs);
				rows_free(&a);
				rows_free(&b);
			}
		}
	}
	store_end_read(E.st);
	printf("store: %s: %zu current documents, %zu index entries: log "
	    "and current state %s\n", when, cur.n, curi.n,
	    nfail == fail0 ? "agree" : "DISAGREE");
	rows_free(&cur);
	rows_free(&logd);
	rows_free(&curi);
	rows_free(&logi);
	rows_free(&want);
	buf_free(&row);
	buf_free(&newest);
	buf_free(&k);
}

/* The model's tables, every index, at the current state and at max_ts. */
static void
check_model_current(void)
{
	int	 t;

	for (t = 0; t < T_COUNT; t++) {
		if (catalog_table(E.st->catalog, table_names[t]) == NULL &&
		    pick_doc(t, 0) == -1 && pick_doc(t, 1) == -1)
			continue;	/* not written yet */
		check_table_at(t, SCAN_CURRENT, 1);
		check_table_at(t, E.max_ts, 1);
	}
}

/* Tests 3 and 4: range scans and their read sets */

static cJSON *
pool_item(const cJSON *pool)
{
	return cJSON_Duplicate(cJSON_GetArrayItem(pool,
	    (int)rnd_n((uint32_t)cJSON_GetArraySize(pool))), 1);
}

/* A value for field f of the index: from the data, or between. */
static cJSON *
draw_value(size_t f, char *const *fields, const struct ent *S, size_t n)
{
	const cJSON	*v;
	char		 id[STORE_ID_LEN + 2];
	uint32_t	 r = rnd_n(3);

	if (f >= 2) {
		/* _creationTime or _id */
		if (n == 0)
			return f == 2 ? cJSON_CreateNumber((double)TS_START /
			    1000.0) : cJSON_CreateString("");
		v = json_get(S[rnd_n((uint32_t)n)].rev->doc, fields[f]);
		if (r == 0)
			return cJSON_Duplicate(v, 1);
		if (f == 2)
			return cJSON_CreateNumber(v->valuedouble +
			    (r == 1 ? CT_BETWEEN : -CT_BETWEEN));
		snprintf(id, sizeof(id), "%s%s", v->valuestring,
		    r == 1 ? "!" : "");
		if (r == 2)
			id[STORE_ID_LEN / 2] = '\0';
		return cJSON_CreateString(id);
	}
	if (r == 0 && n > 0 && (v = json_get(S[rnd_n((uint32_t)n)].rev->doc,
	    fields[f])) != NULL)
		return cJSON_Duplicate(v, 1);
	return pool_item(r == 2 ? M.between : M.data);
}

/* Eq values for q->neq fields: mostly those of one document. */
static void
draw_eq(struct rq *q, char *const *fields, const struct ent *S, size_t n)
{
	const cJSON	*doc;
	size_t		 i, tries;

	if (n > 0 && rnd_n(6) != 0) {
		for (tries = 0; tries < 20; tries++) {
			doc = S[rnd_n((uint32_t)n)].rev->doc;
			for (i = 0; i < q->neq &&
			    json_get(doc, fields[i]) != NULL; i++)
				;
			if (i < q->neq)
				continue;
			for (i = 0; i < q->neq; i++)
				q->eq[i] = cJSON_Duplicate(json_get(doc,
				    fields[i]), 1);
			return;
		}
	}
	for (i = 0; i < q->neq; i++)
		q->eq[i] = draw_value(i, fields, S, n);
}

static int
rq_match(const struct rq *q, const cJSON *doc, char *const *fields)
{
	const cJSON	*v;
	size_t		 i;
	int		 c;

	for (i = 0; i < q->neq; i++)
		if (key_value_compare(json_get(doc, fields[i]), q->eq[i]) != 0)
			return 0;
	v = json_get(doc, fields[q->neq]);
	if (q->lop != 0) {
		c = key_value_compare(v, q->lower);
		if (q->lop == 1 ? c <= 0 : c < 0)
			return 0;
	}
	if (q->uop != 0) {
		c = key_value_compare(v, q->upper);
		if (q->uop == 1 ? c >= 0 : c > 0)
			return 0;
	}
	return 1;
}

static void
add_item(cJSON *range, const char *field, const char *op, const cJSON *v)
{
	cJSON	*item = cJSON_CreateArray();

	cJSON_AddItemToArray(item, cJSON_CreateString(field));
	cJSON_AddItemToArray(item, cJSON_CreateString(op));
	cJSON_AddItemToArray(item, cJSON_Duplicate(v, 1));
	cJSON_AddItemToArray(range, item);
}

/*
 * One range query against the brute force: the matching documents of S
 * (the live documents at q->read_ts in index order), then its read set:
 * every returned key inside, every matching key past the limit and every
 * key outside the range not.
 */
static void
check_range(const struct rq *q, const struct store_index *ix,
    const struct ent *S, size_t n)
{
	static const char *const lops[] = { NULL, "gt", "gte" };
	static const char *const uops[] = { NULL, "lt", "lte" };
	struct readset	 rs;
	struct tv_error	 err;
	struct buf	 out, k, what;
	struct ent	*m;
	cJSON		*args, *range;
	size_t		 i, nm = 0, nret, iv;
	int64_t		 lim;
	int		 rc;

	m = xcalloc(n + 1, sizeof(*m));
	for (i = 0; i < n; i++)
		if (rq_match(q, S[i].rev->doc, ix->fields))
			m[nm++] = S[i];
	if (q->desc)
		ents_reverse(m, nm);
	lim = q->limit == LIMIT_ALL ? (nm > 0 ? (int64_t)nm : 1) : q->limit;
	nret = lim > 0 && (size_t)lim < nm ? (size_t)lim : nm;

	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "table", table_names[T_RANGES]);
	cJSON_AddStringToObject(args, "index", ix->name);
	range = cJSON_AddArrayToObject(args, "range");
	for (i = 0; i < q->neq; i++)
		add_item(range, ix->fields[i], "eq", q->eq[i]);
	if (q->lop != 0)
		add_item(range, ix->fields[q->neq], lops[q->lop], q->lower);
	if (q->uop != 0)
		add_item(range, ix->fields[q->neq], uops[q->uop], q->upper);
	cJSON_AddStringToObject(args, "order", q->desc ? "desc" : "asc");
	if (lim > 0)
		cJSON_AddNumberToObject(args, "limit", (double)lim);
	buf_init(&what);
	json_print(&what, args);
	buf_printf(&what, " at ts %" PRId64, q->read_ts);

	buf_init(&out);
	buf_init(&k);
	readset_init(&rs);
	rc = read_q("db/query", args, q->read_ts, MAX_ROWS, &out, &rs, &err);
	E.nranges++;
	CHECK(rc == 0, "%s: %s", what.data, err.message);
	if (rc == -1)
		goto done;
	compare_result(what.data, &out, m, nret);

	for (iv = 0; iv < rs.n; iv++)
		CHECK(rs.iv[iv].index_id == ix->id, "%s: read set names index "
		    "%" PRId64, what.data, rs.iv[iv].index_id);
	for (i = 0; i < nm; i++) {
		doc_key(&k, m[i].rev->doc, ix, M.docs[m[i].doc].id);
		if (i < nret)
			CHECK(readset_hit(&rs, ix->id, k.data, k.len), "%s: "
			    "read set misses returned document %zu (%s)",
			    what.data, i, M.docs[m[i].doc].id);
		else
			CHECK(!readset_hit(&rs, ix->id, k.data, k.len), "%s: "
			    "read set holds document %zu (%s), past the limit",
			    what.data, i, M.docs[m[i].doc].id);
	}
	for (i = 0; i < n; i++) {
		if (rq_match(q, S[i].rev->doc, ix->fields))
			continue;
		doc_key(&k, S[i].rev->doc, ix, M.docs[S[i].doc].id);
		CHECK(!readset_hit(&rs, ix->id, k.data, k.len), "%s: read set "
		    "holds %s, outside the range", what.data,
		    M.docs[S[i].doc].id);
	}
done:
	readset_free(&rs);
	buf_free(&out);
	buf_free(&k);
	buf_free(&what);
	cJSON_Delete(args);
	free(m);
}

static void
check_ranges_at(int64_t ts)
{
	static const int64_t		 limits[] = { 0, 1, 3, LIMIT_ALL };
	const struct store_table	*tab;
	const struct store_index	*ix;
	struct ent			*S;
	struct rq			 q;
	size_t				 n, i, l;
	int				 lop, uop, draw;

	tab = catalog_table(E.st->catalog, table_names[T_RANGES]);
	ix = catalog_index(tab, "by_ab");
	CHECK(ix != NULL && ix->nfields == 4, "ranges.by_ab missing");
	if (ix == NULL || ix->nfields != 4)
		return;
	n = model_list(T_RANGES, ts, ix->fields, ix->nfields, &S);
	memset(&q, 0, sizeof(q));
	q.read_ts = ts;
	for (q.neq = 0; q.neq <= RANGE_EQ_MAX; q.neq++)
	for (lop = 0; lop < 3; lop++)
	for (uop = 0; uop < 3; uop++)
	for (draw = 0; draw < RANGE_DRAWS; draw++) {
		q.lop = lop;
		q.uop = uop;
		draw_eq(&q, ix->fields, S, n);
		q.lower = lop ? draw_value(q.neq, ix->fields, S, n) : NULL;
		q.upper = uop ? draw_value(q.neq, ix->fields, S, n) : NULL;
		for (q.desc = 0; q.desc < 2; q.desc++)
			for (l = 0; l < nitems(limits); l++) {
				q.limit = limits[l];
				check_range(&q, ix, S, n);
			}
		for (i = 0; i < q.neq; i++)
			cJSON_Delete(q.eq[i]);
		cJSON_Delete(q.lower);
		cJSON_Delete(q.upper);
	}
	free(S);
}

static void
parse_pool(cJSON **pool, const char *const *texts, size_t n)
{
	size_t	 i;

	*pool = cJSON_CreateArray();
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(*pool, parse_or_die(texts[i]));
}

static void
test_ranges(void)
{
	static char *const	 ab[] = { "a", "b" };
	static const int	 tabs[] = { T_RANGES };
	int64_t			 past;
	size_t			 live = 0, i;
	long			 q0 = E.nranges;
	int			 fail0 = nfail;

	CHECK(create_index("ranges", "by_ab", ab, 2, 0) == 0, "create "
	    "ranges.by_ab: %s", E.err.message);
	while (live < RANGE_DOCS) {
		if (random_mutation(tabs, 1, 1) == -1)
			return;
		for (live = 0, i = 0; i < M.n; i++)
			live += M.docs[i].table == T_RANGES;
	}
	past = E.max_ts;
	for (i = 0; i < RANGE_CHANGES; i++)
		if (random_mutation(tabs, 1, 0) == -1)
			return;
	check_ranges_at(SCAN_CURRENT);
	check_ranges_at(past);
	printf("store: %ld range queries on ranges.by_ab (now and at ts %"
	    PRId64 "): %s\n", E.nranges - q0, past, nfail == fail0 ?
	    "results and read sets agree with the brute force" : "FAILED");
}

/* Tests 5 to 7: mutations written as text */

static int64_t	 alpha_index_ts;	/* when alpha.by_group was built */

/*
 * Args from text: JSON with ' for ", and the markers %, ^ and & replaced
 * by id0, id1 and id2.
 */
static cJSON *
targs(const char *fmt, const char *id0, const char *id1, const char *id2)
{
	struct buf	 b;
	cJSON		*v;
	const char	*p;

	buf_init(&b);
	for (p = fmt; *p != '\0'; p++) {
		if (*p == '\'')
			buf_addc(&b, '"');
		else if (*p == '%')
			buf_adds(&b, id0 != NULL ? id0 : "");
		else if (*p == '^')
			buf_adds(&b, id1 != NULL ? id1 : "");
		else if (*p == '&')
			buf_adds(&b, id2 != NULL ? id2 : "");
		else
			buf_addc(&b, *p);
	}
	v = parse_or_die(b.data);
	buf_free(&b);
	return v;
}

/*
 * Run a mutation at ts and want its outcome (0: success).  A failed one
 * must leave every table, and the catalog, as they were.
 */
static int
expect_mutj(int want, int64_t ts, const char *path, const cJSON *args,
    const char *what)
{
	struct buf	 before, after;
	int		 rc, got;

	buf_init(&before);
	buf_init(&after);
	dump_db(&before);
	rc = mutate_at(ts, path, args);
	got = rc == 0 ? 0 : E.err.code;
	CHECK(got == want, "%s %.300s: got %s (%s), want %s", path, what,
	    got != 0 ? tv_kind(got) : "success", E.err.message,
	    want != 0 ? tv_kind(want) : "success");
	if (want != 0)
		E.nrefused++;
	if (rc == -1) {
		dump_db(&after);
		CHECK(before.len == after.len && memcmp(before.data,
		    after.data, before.len) == 0, "%s %.300s: the failed "
		    "mutation left rows behind", path, what);
		check_catalog(what);
	}
	buf_free(&before);
	buf_free(&after);
	return got;
}

static int
expect_mut3(int want, const char *path, const char *fmt, const char *id0,
    const char *id1, const char *id2)
{
	cJSON	*args = targs(fmt, id0, id1, id2);
	int	 got;

	got = expect_mutj(want, next_ts(), path, args, fmt);
	cJSON_Delete(args);
	return got;
}

static int
expect_mut(int want, const char *path, const char *fmt, const char *id)
{
	return expect_mut3(want, path, fmt, id, NULL, NULL);
}

/* Insert from text; id gets the new document's id ("" on failure). */
static void
insert_id(const char *fmt, char id[STORE_ID_LEN + 1])
{
	cJSON		*v;
	enum json_err	 jerr;

	id[0] = '\0';
	if (expect_mut(0, "db/insert", fmt, NULL) != 0)
		return;
	v = json_parse(E.value.data, E.value.len, 1, &jerr);
	if (cJSON_IsString(v) && store_valid_id(v->valuestring))
		strlcpy_tv(id, v->valuestring, STORE_ID_LEN + 1);
	CHECK(id[0] != '\0', "db/insert returned %s", E.value.data);
	cJSON_Delete(v);
}

/*
 * A query from text at read_ts with max_rows: want its outcome and, when
 * want_out is not NULL, its result text; *catdep gets the read set's
 * catalog dependency.
 */
static void
expect_read(int want, const char *path, const char *fmt, const char *id,
    int64_t read_ts, int64_t max_rows, const char *want_out, int *catdep)
{
	struct readset	 rs;
	struct tv_error	 err;
	struct buf	 out;
	cJSON		*args = targs(fmt, id, NULL, NULL);
	int		 rc, got;

	buf_init(&out);
	readset_init(&rs);
	rc = read_q(path, args, read_ts, max_rows, &out, &rs, &err);
	got = rc == 0 ? 0 : err.code;
	if (want != 0)
		E.nqrefused++;
	CHECK(got == want, "%s %.300s: got %s (%s), want %s", path, fmt,
	    got != 0 ? tv_kind(got) : "success", err.message,
	    want != 0 ? tv_kind(want) : "success");
	if (rc == 0 && want_out != NULL)
		CHECK(strcmp(out.data, want_out) == 0, "%s %.300s: result "
		    "%.300s, want %s", path, fmt, out.data, want_out);
	if (catdep != NULL)
		*catdep = rs.catalog_dep;
	readset_free(&rs);
	buf_free(&out);
	cJSON_Delete(args);
}

/* A field of a current document, printed; the caller frees it. */
static char *
field_now(const char *table, const char *id, const char *field)
{
	struct tv_error	 err;
	struct buf	 out;
	cJSON		*args, *doc;
	enum json_err	 jerr;
	char		*s;

	args = targs("{'table':'%','id':'^'}", table, id, NULL);
	buf_init(&out);
	if (read_q("db/get", args, SCAN_CURRENT, MAX_ROWS, &out, NULL,
	    &err) == -1)
		die("db/get", err.message);
	doc = json_parse(out.data, out.len, PARSE_DEPTH, &jerr);
	s = cJSON_IsNull(doc) ? xstrdup("(no document)") :
	    show(json_get(doc, field));
	cJSON_Delete(doc);
	cJSON_Delete(args);
	buf_free(&out);
	return s;
}

static void
check_field(const char *table, const char *id, const char *field,
    const char *want)
{
	char	*got = field_now(table, id, field);

	CHECK(strcmp(got, want) == 0, "%s %s: %s is %s, want %s", table, id,
	    field, got, want);
	free(got);
}

/* Test 5 */
static void
test_unique(void)
{
	static char *const	 email[] = { "email" };
	static char *const	 pair[] = { "org", "num" };
	static char *const	 kf[] = { "k" };
	const struct store_table *t;
	struct buf		 before, after;
	char			 a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	char			 c[STORE_ID_LEN + 1], d[STORE_ID_LEN + 1];
	int64_t			 ndocs, nidx, ncur, ncuri;
	int			 rc, fail0 = nfail;

	CHECK(create_index("uniq", "by_email", email, 1, 1) == 0, "create "
	    "uniq.by_email: %s", E.err.message);
	CHECK(create_index("uniq", "by_pair", pair, 2, 1) == 0, "create "
	    "uniq.by_pair: %s", E.err.message);
	insert_id("{'table':'uniq','doc':{'email':'x.a','org':1,'num':1}}",
	    a);
	insert_id("{'table':'uniq','doc':{'email':'y.a','org':1,'num':2}}",
	    b);
	/* Documents that lack a declared field are not constrained. */
	insert_id("{'table':'uniq','doc':{'org':1}}", c);
	insert_id("{'table':'uniq','doc':{'org':1}}", d);
	ndocs = count_rows("documents");
	nidx = count_rows("indexes");
	ncur = count_rows("current_documents");
	ncuri = count_rows("current_indexes");
	expect_mut(TV_CONFLICT, "db/insert",
	    "{'table':'uniq','doc':{'email':'x.a'}}", NULL);
	expect_mut(TV_CONFLICT, "db/insert",
	    "{'table':'uniq','doc':{'email':'new','org':1,'num':1}}", NULL);
	expect_mut(TV_CONFLICT, "db/patch",
	    "{'table':'uniq','id':'%','set':{'email':'x.a'}}", b);
	expect_mut(TV_CONFLICT, "db/patch",
	    "{'table':'uniq','id':'%','set':{'num':1}}", b);
	expect_mut(TV_CONFLICT, "db/replace",
	    "{'table':'uniq','id':'%','doc':{'email':'x.a'}}", b);
	expect_mut(TV_CONFLICT, "db/patch",
	    "{'table':'uniq','id':'%','set':{'email':'y.a'}}", c);
	CHECK(count_rows("documents") == ndocs && count_rows("indexes") ==
	    nidx && count_rows("current_documents") == ncur &&
	    count_rows("current_indexes") == ncuri, "conflicts changed the "
	    "row counts");
	check_field("uniq", b, "email", "\"y.a\"");
	printf("store: unique: 6 conflicts over %" PRId64 " documents rows, %"
	    PRId64 " indexes rows: %s\n", ndocs, nidx, nfail == fail0 ?
	    "nothing left behind" : "FAILED");
	/* -0 and 0 are one value. */
	expect_mut(0, "db/insert",
	    "{'table':'uniq','doc':{'email':'z.a','org':2,'num':-0}}", NULL);
	expect_mut(TV_CONFLICT, "db/insert",
	    "{'table':'uniq','doc':{'email':'z.b','org':2,'num':0}}", NULL);
	expect_mut(0, "db/insert",
	    "{'table':'uniq','doc':{'email':'z.c','org':2,'num':0.5}}", NULL);
	/* A document may keep or change its own values. */
	expect_mut(0, "db/patch",
	    "{'table':'uniq','id':'%','set':{'email':'x.a','extra':1}}", a);
	expect_mut(0, "db/replace",
	    "{'table':'uniq','id':'%','doc':{'email':'x.a','org':1,'num':1}}",
	    a);
	expect_mut(0, "db/patch",
	    "{'table':'uniq','id':'%','set':{'email':'x.c'}}", a);
	expect_mut(0, "db/patch",
	    "{'table':'uniq','id':'%','set':{'email':'x.a'}}", b);
	check_field("uniq", b, "email", "\"x.a\"");
	/* In a batch each op sees the ops before it; all or nothing. */
	expect_mut(0, "db/batch", "{'ops':["
	    "{'op':'patch','table':'uniq','id':'%','set':{'email':'q'}},"
	    "{'op':'insert','table':'uniq','doc':{'email':'x.c'}}]}", a);
	expect_mut(TV_CONFLICT, "db/batch", "{'ops':["
	    "{'op':'patch','table':'uniq','id':'%','set':{'email':'r'}},"
	    "{'op':'insert','table':'uniq','doc':{'email':'x.a'}}]}", a);
	check_field("uniq", a, "email", "\"q\"");
	expect_mut3(0, "db/batch", "{'ops':["
	    "{'op':'patch','table':'uniq','id':'%','set':{'email':'t'}},"
	    "{'op':'patch','table':'uniq','id':'^','set':{'email':'q'}},"
	    "{'op':'patch','table':'uniq','id':'%','set':{'email':'x.a'}}]}",
	    b, a, NULL);
	check_field("uniq", b, "email", "\"x.a\"");
	/* A delete frees its values. */
	expect_mut(0, "db/delete", "{'table':'uniq','id':'%'}", b);
	expect_mut(0, "db/insert", "{'table':'uniq','doc':{'email':'x.a'}}",
	    NULL);
	/* A unique index cannot be built over duplicates. */
	expect_mut(0, "db/insert", "{'table':'uniq2','doc':{'k':1}}", NULL);
	expect_mut(0, "db/insert", "{'table':'uniq2','doc':{'k':2}}", NULL);
	expect_mut(0, "db/insert", "{'table':'uniq2','doc':{'k':1.0}}",
	    NULL);
	buf_init(&before);
	buf_init(&after);
	dump_db(&before);
	rc = create_index("uniq2", "by_k", kf, 1, 1);
	dump_db(&after);
	CHECK(rc == TV_CONFLICT, "unique index over duplicates: got %d (%s)",
	    rc, E.err.message);
	CHECK(before.len == after.len && memcmp(before.data, after.data,
	    before.len) == 0, "failed unique index build left rows behind");
	t = catalog_table(E.st->catalog, "uniq2");
	CHECK(t != NULL && catalog_index(t, "by_k") == NULL, "failed unique "
	    "index is in the catalog");
	check_catalog("failed index build");
	CHECK(create_index("uniq2", "by_k", kf, 1, 0) == 0, "non-unique "
	    "index over duplicates: %s", E.err.message);
	buf_free(&before);
	buf_free(&after);
}

/* Test 6 */
static void
test_batches(void)
{
	static const struct {
		const char	*op;
		int		 code;
	} tails[] = {
		{ "{'op':'patch','table':'bt',"
		    "'id':'00000000000000000000000000','set':{'x':9}}",
		    TV_NOT_FOUND },
		{ "{'op':'insert','table':'bt','doc':{'_x':1}}",
		    TV_VALIDATION },
		{ "{'op':'patch','table':'bt','id':'&','set':{'x':9}}",
		    TV_NOT_FOUND },
		{ "{'op':'replace','table':'nosuch','id':'%','doc':{}}",
		    TV_NOT_FOUND },
		{ "{'op':'upsert','table':'bt','doc':{}}", TV_VALIDATION },
		{ "{'op':'insert','table':'bt','doc':{'x':1},'id':'%'}",
		    TV_VALIDATION },
	};
	static const char *const head = "{'ops':["
	    "{'op':'insert','table':'bt','doc':{'x':4}},"
	    "{'op':'patch','table':'bt','id':'%','set':{'x':5},"
	    "'unset':['y']},"
	    "{'op':'replace','table':'bt2','id':'^','doc':{'y':2}},"
	    "{'op':'delete','table':'bt','id':'&'},"
	    "{'op':'insert','table':'btnew','doc':{'z':1}}";
	char		 d1[STORE_ID_LEN + 1], d2[STORE_ID_LEN + 1];
	char		 e1[STORE_ID_LEN + 1], text[TEXT_MAX];
	cJSON		*v;
	enum json_err	 jerr;
	long		 p, q;
	size_t		 i;
	int		 fail0 = nfail;

	insert_id("{'table':'bt','doc':{'x':1,'y':1}}", d1);
	insert_id("{'table':'bt','doc':{'x':2}}", d2);
	insert_id("{'table':'bt2','doc':{'y':1}}", e1);
	for (i = 0; i < nitems(tails); i++) {
		snprintf(text, sizeof(text), "%s,%s]}", head, tails[i].op);
		expect_mut3(tails[i].code, "db/batch", text, d1, e1, d2);
		CHECK(strncmp(E.err.message, "ops[5]", 6) == 0, "batch error "
		    "does not name ops[5]: %s", E.err.message);
		CHECK(catalog_table(E.st->catalog, "btnew") == NULL, "a failed "
		    "batch left its new table in the catalog");
	}
	/* A failing op in the middle, on the model's tables. */
	p = pick_doc(T_ALPHA, 1);
	q = pick_doc(T_BETA, 1);
	if (p != -1 && q != -1)
		expect_mut3(TV_NOT_FOUND, "db/batch", "{'ops':["
		    "{'op':'patch','table':'alpha','id':'%','set':{'n':77}},"
		    "{'op':'delete','table':'beta','id':'^'},"
		    "{'op':'delete','table':'beta','id':'^'},"
		    "{'op':'insert','table':'gamma','doc':{'n':1}}]}",
		    M.docs[p].id, M.docs[q].id, NULL);
	/* The same batch without its failing op commits all of it. */
	snprintf(text, sizeof(text), "%s]}", head);
	if (expect_mut3(0, "db/batch", text, d1, e1, d2) == 0) {
		v = json_parse(E.value.data, E.value.len, 2, &jerr);
		CHECK(cJSON_GetArraySize(v) == 5 &&
		    cJSON_IsString(cJSON_GetArrayItem(v, 0)) &&
		    cJSON_IsNull(cJSON_GetArrayItem(v, 1)) &&
		    cJSON_IsNull(cJSON_GetArrayItem(v, 2)) &&
		    cJSON_IsNull(cJSON_GetArrayItem(v, 3)) &&
		    cJSON_IsString(cJSON_GetArrayItem(v, 4)), "batch returned "
		    "%s", E.value.data);
		cJSON_Delete(v);
	}
	check_field("bt", d1, "x", "5");
	check_field("bt", d1, "y", "(missing)");
	check_field("bt2", e1, "y", "2");
	check_field("bt", d2, "x", "(no document)");
	CHECK(catalog_table(E.st->catalog, "btnew") != NULL, "batch did not "
	    "create its table");
	printf("store: batches: %zu failing batches: %s\n", nitems(tails) + 1,
	    nfail == fail0 ? "nothing left behind, the same batch without "
	    "its failing op commits whole" : "FAILED");
}

/* Test 7 */

struct bad {
	const char	*path;
	const char	*args;	/* ' for ", % for an id of table val */
	int		 code;
};

static const struct bad bad_mutations[] = {
	{ "db/insert", "{'table':'val','doc':{'_x':1}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'_id':'%'}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'_creationTime':1}}",
	    TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'a':{'_b':1}}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'a':[{'_b':1}]}}",
	    TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'a-b':1}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'':1}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'1a':1}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'a b':1}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'\\u00e9':1}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{'a':{'b c':1}}}",
	    TV_VALIDATION },
	{ "db/insert", "{'table':'1val','doc':{}}", TV_VALIDATION },
	{ "db/insert", "{'table':'_val','doc':{}}", TV_VALIDATION },
	{ "db/insert", "{'table':'','doc':{}}", TV_VALIDATION },
	{ "db/insert", "{'table':'v-al','doc':{}}", TV_VALIDATION },
	{ "db/insert", "{'table':5,'doc':{}}", TV_VALIDATION },
	{ "db/insert", "{'doc':{}}", TV_VALIDATION },
	{ "db/insert", "{'table':'val'}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':[1]}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':'x'}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':null}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{},'id':'%'}", TV_VALIDATION },
	{ "db/insert", "{'table':'val','doc':{},'Table':'val'}",
	    TV_VALIDATION },
	{ "db/insert", "[]", TV_VALIDATION },
	{ "db/insert", "'x'", TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','set':{'_id':'x'}}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','set':{'_creationTime':1}}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','set':[1]}", TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','unset':'a'}", TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','unset':['_id']}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','unset':[1]}", TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','set':{'a':1},'unset':['a']}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'%','doc':{}}", TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'abc'}", TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':5}", TV_VALIDATION },
	{ "db/patch", "{'table':'val'}", TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'0000000000000000000000000u'}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'0000000000000000000000000A'}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'000000000000000000000000000'}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'0000000000000000000000000'}",
	    TV_VALIDATION },
	{ "db/patch", "{'table':'val','id':'00000000000000000000000000'}",
	    TV_NOT_FOUND },
	{ "db/patch", "{'table':'nosuch','id':'%'}", TV_NOT_FOUND },
	{ "db/patch", "{'table':'alpha','id':'%','set':{'n':1}}",
	    TV_NOT_FOUND },
	{ "db/replace", "{'table':'val','id':'%','doc':{'_creationTime':5}}",
	    TV_VALIDATION },
	{ "db/replace", "{'table':'val','id':'%','doc':{'_id':'%'}}",
	    TV_VALIDATION },
	{ "db/replace", "{'table':'val','id':'%','set':{}}", TV_VALIDATION },
	{ "db/replace", "{'table':'val','id':'%'}", TV_VALIDATION },
	{ "db/replace", "{'table':'val','id':'%','doc':[]}", TV_VALIDATION },
	{ "db/replace", "{'table':'val','id':'00000000000000000000000000',"
	    "'doc':{}}", TV_NOT_FOUND },
	{ "db/delete", "{'table':'val','id':'%','doc':{}}", TV_VALIDATION },
	{ "db/delete", "{'table':'val','id':'bad'}", TV_VALIDATION },
	{ "db/delete", "{'table':'val','id':'00000000000000000000000000'}",
	    TV_NOT_FOUND },
	{ "db/delete", "{'table':'gamma','id':'%'}", TV_NOT_FOUND },
	{ "db/batch", "{}", TV_VALIDATION },
	{ "db/batch", "{'ops':[]}", TV_VALIDATION },
	{ "db/batch", "{'ops':{}}", TV_VALIDATION },
	{ "db/batch", "{'ops':[1]}", TV_VALIDATION },
	{ "db/batch", "{'ops':[{'table':'val','doc':{}}]}", TV_VALIDATION },
	{ "db/batch", "{'ops':[{'op':5,'table':'val','doc':{}}]}",
	    TV_VALIDATION },
	{ "db/batch", "{'ops':[{'op':'upsert','table':'val','doc':{}}]}",
	    TV_VALIDATION },
	{ "db/batch", "{'ops':[{'op':'batch','ops':[]}]}", TV_VALIDATION },
	{ "db/batch", "{'ops':[{'op':'insert','table':'val','doc':{}}],"
	    "'x':1}", TV_VALIDATION },
	{ "db/batch", "{'ops':[{'op':'insert','table':'val','doc':{}},"
	    "{'op':'insert','table':'val','doc':{'_a':1}}]}", TV_VALIDATION },
	{ "db/upsert", "{'table':'val','doc':{}}", TV_NOT_FOUND },
	{ "db/get", "{'table':'val','id':'%'}", TV_NOT_FOUND },
	{ "", "{}", TV_NOT_FOUND },
};

static const struct bad bad_queries[] = {
	{ "db/get", "{'table':'val'}", TV_VALIDATION },
	{ "db/get", "{'table':'val','id':'abc'}", TV_VALIDATION },
	{ "db/get", "{'table':'val','id':5}", TV_VALIDATION },
	{ "db/get", "{'table':'val','id':'%','x':1}", TV_VALIDATION },
	{ "db/get", "{'table':'1val','id':'%'}", TV_VALIDATION },
	{ "db/get", "[]", TV_VALIDATION },
	{ "db/query", "{}", TV_VALIDATION },
	{ "db/query", "{'table':'val','limit':0}", TV_VALIDATION },
	{ "db/query", "{'table':'val','limit':1.5}", TV_VALIDATION },
	{ "db/query", "{'table':'val','limit':'1'}", TV_VALIDATION },
	{ "db/query", "{'table':'val','limit':-1}", TV_VALIDATION },
	{ "db/query", "{'table':'val','order':'up'}", TV_VALIDATION },
	{ "db/query", "{'table':'val','order':1}", TV_VALIDATION },
	{ "db/query", "{'table':'val','index':5}", TV_VALIDATION },
	{ "db/query", "{'table':'val','index':'nosuch'}", TV_NOT_FOUND },
	{ "db/query", "{'table':'val','x':1}", TV_VALIDATION },
	{ "db/query", "{'table':'val','range':{}}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','eq']]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','like',1]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[[1,'eq',1]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['b','eq',1]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','gt',1],['a','gte',2]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','lt',1],['a','lte',2]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','gt',1],['b','eq',1]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','gt',1],['b','lt',1]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','eq',1],['a','eq',1]]}", TV_VALIDATION },
	{ "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','eq',1],['b','eq',1],['_creationTime','eq',1],"
	    "['_id','eq','x'],['_id','eq','x']]}", TV_VALIDATION },
	{ "db/nosuch", "{}", TV_NOT_FOUND },
	{ "db/insert", "{'table':'val','doc':{}}", TV_NOT_FOUND },
};

/* A document of depth objects, {'a':{'a':...}}, the innermost leaf. */
static cJSON *
nested(int depth, int arrays, cJSON *leaf)
{
	cJSON	*v = leaf, *o;
	int	 i;

	for (i = 1; i < depth; i++) {
		if (arrays) {
			o = cJSON_CreateArray();
			cJSON_AddItemToArray(o, v);
		} else {
			o = cJSON_CreateObject();
			cJSON_AddItemToObject(o, "a", v);
		}
		v = o;
	}
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "a", v);
	return o;
}

static cJSON *
insert_args(const char *table, cJSON *doc)
{
	cJSON	*a = cJSON_CreateObject();

	cJSON_AddStringToObject(a, "table", table);
	cJSON_AddItemToObject(a, "doc", doc);
	return a;
}

static char *
big_string(size_t len)
{
	char	*s = xmalloc(len + 1);

	memset(s, 'x', len);
	s[len] = '\0';
	return s;
}

/*
 * Bytes left for the string of {"s": ...} when the document is stored at
 * ts, so that it is exactly max_document_bytes.
 */
static size_t
doc_room(int64_t ts)
{
	struct buf	 b;
	cJSON		*user, *doc;
	size_t		 len;

	buf_init(&b);
	user = cJSON_CreateObject();
	cJSON_AddStringToObject(user, "s", "");
	doc = model_doc("00000000000000000000000000", (double)ts / 1000.0,
	    user, NULL, NULL);
	json_print(&b, doc);
	len = b.len;
	cJSON_Delete(doc);
	cJSON_Delete(user);
	buf_free(&b);
	return (size_t)E.conf.max_document_bytes - len;
}

/* Documents nested too deep, too large, numbers not finite, keys too big. */
static void
test_limits(const char *vid)
{
	cJSON		*args, *doc;
	char		*s;
	int64_t		 ts, maxd = E.conf.max_document_depth;
	size_t		 room, i;

	/* Depth: objects and arrays, in a doc and in a patch's set. */
	args = insert_args("val", nested((int)maxd - 1, 0,
	    cJSON_CreateNumber(1)));
	expect_mutj(0, next_ts(), "db/insert", args, "objects nested to "
	    "max_document_depth - 1");
	cJSON_Delete(args);
	args = insert_args("val", nested((int)maxd - 1, 1,
	    cJSON_CreateString("x")));
	expect_mutj(0, next_ts(), "db/insert", args, "arrays nested to "
	    "max_document_depth - 1");
	cJSON_Delete(args);
	args = insert_args("val", nested((int)maxd + 1, 0,
	    cJSON_CreateNumber(1)));
	expect_mutj(TV_VALIDATION, next_ts(), "db/insert", args, "objects "
	    "nested past max_document_depth");
	cJSON_Delete(args);
	args = insert_args("val", nested((int)maxd + 1, 1,
	    cJSON_CreateNumber(1)));
	expect_mutj(TV_VALIDATION, next_ts(), "db/insert", args, "arrays "
	    "nested past max_document_depth");
	cJSON_Delete(args);
	args = targs("{'table':'val','id':'%'}", vid, NULL, NULL);
	cJSON_AddItemToObject(args, "set", nested((int)maxd + 1, 0,
	    cJSON_CreateNull()));
	expect_mutj(TV_VALIDATION, next_ts(), "db/patch", args, "set nested "
	    "past max_document_depth");
	cJSON_Delete(args);
	args = targs("{'table':'val','id':'%'}", vid, NULL, NULL);
	cJSON_AddItemToObject(args, "doc", nested((int)maxd + 1, 1,
	    cJSON_CreateNull()));
	expect_mutj(TV_VALIDATION, next_ts(), "db/replace", args, "doc "
	    "nested past max_document_depth");
	cJSON_Delete(args);

	/* Numbers that JSON cannot hold. */
	doc = cJSON_CreateObject();
	cJSON_AddItemToObject(doc, "n", cJSON_CreateNumber(INFINITY));
	args = insert_args("val", doc);
	expect_mutj(TV_VALIDATION, next_ts(), "db/insert", args, "infinity");
	cJSON_Delete(args);
	doc = cJSON_CreateObject();
	cJSON_AddItemToObject(doc, "n", cJSON_CreateNumber(NAN));
	args = insert_args("val", doc);
	expect_mutj(TV_VALIDATION, next_ts(), "db/insert", args, "NaN");
	cJSON_Delete(args);

	/* An indexed value whose key is over KEY_MAX_BYTES. */
	s = big_string(KEY_BIG);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "a", s);
	free(s);
	args = insert_args("ranges", doc);
	expect_mutj(TV_VALIDATION, next_ts(), "db/insert", args, "an indexed "
	    "string over KEY_MAX_BYTES");
	cJSON_Delete(args);

	/* Batches: one op over max_batch_ops, then exactly max_batch_ops. */
	args = cJSON_CreateObject();
	doc = cJSON_AddArrayToObject(args, "ops");
	for (i = 0; i <= (size_t)E.conf.max_batch_ops; i++)
		cJSON_AddItemToArray(doc, targs("{'op':'insert','table':'val',"
		    "'doc':{'i':1}}", NULL, NULL, NULL));
	expect_mutj(TV_TOO_LARGE, next_ts(), "db/batch", args, "max_batch_ops "
	    "+ 1 ops");
	cJSON_DeleteItemFromArray(doc, 0);
	expect_mutj(0, next_ts(), "db/batch", args, "max_batch_ops ops");
	cJSON_Delete(args);

	/*
	 * Size: the stored document (system fields included) one byte over
	 * max_document_bytes, then of exactly max_document_bytes.
	 */
	ts = next_ts();
	room = doc_room(ts);
	s = big_string(room + 1);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "s", s);
	args = insert_args("val", doc);
	expect_mutj(TV_TOO_LARGE, ts, "db/insert", args, "a document of "
	    "max_document_bytes + 1");
	cJSON_Delete(args);
	args = targs("{'table':'val','id':'%'}", vid, NULL, NULL);
	doc = cJSON_AddObjectToObject(args, "set");
	cJSON_AddStringToObject(doc, "s", s);
	expect_mutj(TV_TOO_LARGE, next_ts(), "db/patch", args, "a patch to "
	    "over max_document_bytes");
	cJSON_Delete(args);
	args = targs("{'table':'val','id':'%'}", vid, NULL, NULL);
	doc = cJSON_AddObjectToObject(args, "doc");
	cJSON_AddStringToObject(doc, "s", s);
	expect_mutj(TV_TOO_LARGE, next_ts(), "db/replace", args, "a "
	    "replace by over max_document_bytes");
	cJSON_Delete(args);
	free(s);
	ts = next_ts();
	s = big_string(doc_room(ts));
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "s", s);
	args = insert_args("val", doc);
	expect_mutj(0, ts, "db/insert", args, "a document of exactly "
	    "max_document_bytes");
	cJSON_Delete(args);
	free(s);
}

static void
test_validation(void)
{
	char	 vid[STORE_ID_LEN + 1], name[STORE_NAME_MAX + 2];
	char	 text[TEXT_MAX];
	size_t	 i;
	long	 n0 = E.nrefused, q0 = E.nqrefused;
	int	 catdep = 0, fail0 = nfail;

	insert_id("{'table':'val','doc':{'a':1}}", vid);
	for (i = 0; i < nitems(bad_mutations); i++)
		expect_mut(bad_mutations[i].code, bad_mutations[i].path,
		    bad_mutations[i].args, vid);
	/* Names of STORE_NAME_MAX characters pass; one more does not. */
	memset(name, 'n', sizeof(name));
	name[STORE_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "{'table':'val','doc':{'%s':1}}", name);
	expect_mut(0, "db/insert", text, NULL);
	snprintf(text, sizeof(text), "{'table':'%s','doc':{}}", name);
	expect_mut(0, "db/insert", text, NULL);
	name[STORE_NAME_MAX] = 'n';
	name[STORE_NAME_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "{'table':'val','doc':{'%s':1}}", name);
	expect_mut(TV_VALIDATION, "db/insert", text, NULL);
	snprintf(text, sizeof(text), "{'table':'%s','doc':{}}", name);
	expect_mut(TV_VALIDATION, "db/insert", text, NULL);
	snprintf(text, sizeof(text), "{'table':'val','id':'%%','unset':"
	    "['%s']}", name);
	expect_mut(TV_VALIDATION, "db/patch", text, vid);
	/* Valid odd cases. */
	expect_mut(0, "db/patch", "{'table':'val','id':'%'}", vid);
	expect_mut(0, "db/patch", "{'table':'val','id':'%','set':{},"
	    "'unset':['nosuch']}", vid);
	expect_mut(0, "db/insert", "{'table':'val','doc':{'a_1':{'B2':"
	    "[{'c':null}]}}}", NULL);
	test_limits(vid);
	printf("store: validation: %ld bad mutations: %s\n", E.nrefused - n0,
	    nfail == fail0 ? "refused with their codes, nothing written" :
	    "FAILED");
	fail0 = nfail;

	for (i = 0; i < nitems(bad_queries); i++)
		expect_read(bad_queries[i].code, bad_queries[i].path,
		    bad_queries[i].args, vid, SCAN_CURRENT, MAX_ROWS, NULL,
		    NULL);
	expect_read(0, "db/query", "{'table':'nosuch'}", NULL, SCAN_CURRENT,
	    MAX_ROWS, "[]", &catdep);
	CHECK(catdep, "query of a missing table has no catalog dependency");
	catdep = 0;
	expect_read(0, "db/get", "{'table':'nosuch','id':'%'}", vid,
	    SCAN_CURRENT, MAX_ROWS, "null", &catdep);
	CHECK(catdep, "get in a missing table has no catalog dependency");
	catdep = 0;
	expect_read(TV_NOT_FOUND, "db/query", "{'table':'val','index':"
	    "'by_nothing'}", NULL, SCAN_CURRENT, MAX_ROWS, NULL, &catdep);
	CHECK(catdep, "query of a missing index has no catalog dependency");
	expect_read(TV_TOO_LARGE, "db/query", "{'table':'val'}", NULL,
	    SCAN_CURRENT, SMALL_ROWS, NULL, NULL);
	expect_read(TV_TOO_LARGE, "db/query", "{'table':'val'}", NULL,
	    E.max_ts, SMALL_ROWS, NULL, NULL);
	expect_read(0, "db/query", "{'table':'val','limit':5}", NULL,
	    SCAN_CURRENT, SMALL_ROWS, NULL, NULL);
	expect_read(TV_VALIDATION, "db/query", "{'table':'val','limit':6}",
	    NULL, SCAN_CURRENT, SMALL_ROWS, NULL, NULL);
	expect_read(0, "db/query", "{'table':'ranges','index':'by_ab','range':"
	    "[['a','eq',1],['b','eq',1],['_creationTime','eq',1],"
	    "['_id','eq','x']]}", NULL, SCAN_CURRENT, MAX_ROWS, "[]", NULL);
	if (alpha_index_ts > 0) {
		expect_read(TV_OUT_OF_RETENTION, "db/query", "{'table':'alpha',"
		    "'index':'by_group'}", NULL, alpha_index_ts - 1, MAX_ROWS,
		    NULL, NULL);
		expect_read(0, "db/query", "{'table':'alpha','index':"
		    "'by_group','limit':1}", NULL, alpha_index_ts, MAX_ROWS,
		    NULL, NULL);
	}
	printf("store: validation: %ld bad queries: %s\n", E.nqrefused - q0,
	    nfail == fail0 ? "refused with their codes" : "FAILED");
}

/* Close and reopen the file; a read-only connection reads the same. */
static void
test_reopen(void)
{
	struct store	*ro;
	struct tv_error	 err;
	struct buf	 a, b;
	cJSON		*args;
	char		 msg[256];
	int64_t		 v = 0, ts = 0;

	close_engine();
	open_engine();
	CHECK(store_global_get_i64(E.st, GLOBAL_MAX_TS, &v) == 0 &&
	    v == E.max_ts, "after reopen max_ts is %" PRId64 ", want %"
	    PRId64, v, E.max_ts);
	check_catalog("after reopen");
	check_current_vs_log("after reopen");
	check_model_current();
	check_snapshots(REOPEN_EVERY);

	ro = store_open(E.path, STORE_RO, NULL, msg, sizeof(msg));
	CHECK(ro != NULL, "read-only open: %s", msg);
	if (ro == NULL)
		return;
	args = targs("{'table':'alpha','index':'by_group','order':'desc'}",
	    NULL, NULL, NULL);
	buf_init(&a);
	buf_init(&b);
	CHECK(read_q("db/query", args, SCAN_CURRENT, MAX_ROWS, &a, NULL,
	    &err) == 0, "db/query: %s", err.message);
	CHECK(store_begin_read(ro, &ts) == 0 && ts == E.max_ts, "read-only "
	    "connection sees max_ts %" PRId64 ", want %" PRId64, ts,
	    E.max_ts);
	CHECK(udf_run_query(ro, "db/query", args, SCAN_CURRENT, MAX_ROWS, &b,
	    NULL, &err) == 0, "read-only db/query: %s", err.message);
	store_end_read(ro);
	CHECK(a.len > 2 && a.len == b.len && memcmp(a.data, b.data, a.len) ==
	    0, "read-only connection reads another result");
	store_close(ro);
	buf_free(&a);
	buf_free(&b);
	cJSON_Delete(args);
}

/*
 * The file as format 1 wrote it: the log WITHOUT ROWID, a copy of each
 * current value in current_documents.
 */
static const char *to_format1 =
    "BEGIN;"
    "CREATE TABLE documents_f1(id TEXT NOT NULL, ts INTEGER NOT NULL,"
    " table_id INTEGER NOT NULL, json_value TEXT, deleted INTEGER NOT NULL,"
    " prev_ts INTEGER NOT NULL, PRIMARY KEY(id, ts)) WITHOUT ROWID;"
    "INSERT INTO documents_f1 SELECT id, ts, table_id, json_value, deleted,"
    " prev_ts FROM documents;"
    "CREATE TABLE current_documents_f1(id TEXT PRIMARY KEY,"
    " table_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " json_value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO current_documents_f1 SELECT c.id, c.table_id, c.ts,"
    " d.json_value FROM current_documents c, documents d"
    " WHERE d.seq = c.seq;"
    "DROP TABLE current_documents;"
    "DROP TABLE documents;"
    "ALTER TABLE documents_f1 RENAME TO documents;"
    "ALTER TABLE current_documents_f1 RENAME TO current_documents;"
    "CREATE INDEX documents_by_ts ON documents(ts);"
    "DROP INDEX indexes_removed;"
    "CREATE TABLE indexes_f1(index_id INTEGER NOT NULL, key BLOB NOT NULL,"
    " ts INTEGER NOT NULL, deleted INTEGER NOT NULL,"
    " table_id INTEGER NOT NULL, document_id TEXT NOT NULL,"
    " PRIMARY KEY(index_id, key, ts)) WITHOUT ROWID;"
    "INSERT INTO indexes_f1 SELECT index_id, key, ts, deleted, table_id,"
    " CAST(substr(key, -28, 26) AS TEXT) FROM indexes;"
    "CREATE TABLE current_indexes_f1(index_id INTEGER NOT NULL,"
    " key BLOB NOT NULL, document_id TEXT NOT NULL,"
    " PRIMARY KEY(index_id, key)) WITHOUT ROWID;"
    "INSERT INTO current_indexes_f1 SELECT index_id, key,"
    " CAST(substr(key, -28, 26) AS TEXT) FROM current_indexes;"
    "DROP TABLE indexes;"
    "DROP TABLE current_indexes;"
    "ALTER TABLE indexes_f1 RENAME TO indexes;"
    "ALTER TABLE current_indexes_f1 RENAME TO current_indexes;"
    "CREATE INDEX indexes_by_ts ON indexes(ts);"
    "UPDATE globals SET json_value = '1' WHERE key = 'schema_version';"
    "COMMIT;";

/* One integer from the raw connection; -1 on any failure. */
static int64_t
raw_i64(sqlite3 *db, const char *q)
{
	sqlite3_stmt	*s;
	int64_t		 n = -1;

	if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/*
 * A file of format 1 opens converted, with every revision and current
 * document of the model; one whose current document lacks its log row is
 * refused and left as it was.
 */
static void
test_migrate(void)
{
	static const char *lose =
	    "CREATE TABLE saved AS SELECT d.* FROM documents d"
	    " JOIN current_documents c ON d.id = c.id AND d.ts = c.ts"
	    " ORDER BY d.id LIMIT 1;"
	    "DELETE FROM documents WHERE (id, ts) IN"
	    " (SELECT id, ts FROM saved);";
	static const char *restore =
	    "INSERT INTO documents SELECT * FROM saved; DROP TABLE saved;";
	sqlite3		*db;
	char		 msg[256], want1[64];
	int64_t		 ncur, nrevs, v = 0;
	struct store	*st;
	int		 fail0 = nfail;

	ncur = count_rows("current_documents");
	nrevs = count_rows("documents");
	close_engine();
	if (sqlite3_open(E.path, &db) != SQLITE_OK)
		die("sqlite3_open", E.path);
	if (sqlite3_exec(db, to_format1, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, lose, NULL, NULL, NULL) != SQLITE_OK)
		die("back to format 1", sqlite3_errmsg(db));

	msg[0] = '\0';
	st = store_open(E.path, STORE_RW, NULL, msg, sizeof(msg));
	CHECK(st == NULL && strstr(msg, "format 1") != NULL, "format 1 with "
	    "a current document missing from the log: refused (%s)", msg);
	store_close(st);
	CHECK(raw_i64(db, "SELECT json_value FROM globals"
	    " WHERE key = 'schema_version'") == 1 &&
	    raw_i64(db, "SELECT count(*) FROM current_documents") == ncur &&
	    raw_i64(db, "SELECT count(*) FROM documents") == nrevs - 1 &&
	    raw_i64(db, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name LIKE '%_v1'") == 0, "the refused file is left as "
	    "it was");
	/* A reader (a gateway) does not convert: it says what it found. */
	msg[0] = '\0';
	st = store_open(E.path, STORE_RO, NULL, msg, sizeof(msg));
	snprintf(want1, sizeof(want1), "in format 1; this program reads "
	    "format %d", STORE_SCHEMA_VERSION);
	CHECK(st == NULL && strstr(msg, want1) != NULL, "read-only open of a format 1 file: refused "
	    "(%s)", msg);
	store_close(st);
	if (sqlite3_exec(db, restore, NULL, NULL, NULL) != SQLITE_OK)
		die("restore", sqlite3_errmsg(db));
	sqlite3_close(db);

	open_engine();
	CHECK(store_global_get_i64(E.st, GLOBAL_SCHEMA_VERSION, &v) == 0 &&
	    v == STORE_SCHEMA_VERSION, "converted to format %" PRId64, v);
	CHECK(count_rows("current_documents") == ncur &&
	    count_rows("documents") == nrevs, "conversion kept %" PRId64
	    " current documents and %" PRId64 " revisions", ncur, nrevs);
	check_catalog("after conversion");
	check_current_vs_log("after conversion");
	check_model_current();
	check_snapshots(REOPEN_EVERY);
	printf("store: format 1 file: %s\n", nfail == fail0 ?
	    "refused while its log lacks a current revision, then converted "
	    "whole" : "FAILED");
}

/*
 * A format 2 file (no table_counts) gets each table's count when writerd
 * opens it.
 */
static void
test_migrate_v2(void)
{
	static const char *to_format2 =
	    "DROP TABLE table_counts;"
	    "UPDATE globals SET json_value = '2' WHERE key = 'schema_version';";
	sqlite3		*db;
	int64_t		 v = 0;

	close_engine();
	if (sqlite3_open(E.path, &db) != SQLITE_OK)
		die("sqlite3_open", E.path);
	if (sqlite3_exec(db, to_format2, NULL, NULL, NULL) != SQLITE_OK)
		die("back to format 2", sqlite3_errmsg(db));
	sqlite3_close(db);
	open_engine();
	CHECK(store_global_get_i64(E.st, "schema_version", &v) == 0 &&
	    v == STORE_SCHEMA_VERSION, "format 2 converted to %" PRId64, v);
	check_current_vs_log("after format 2");
	printf("store: format 2 file: each table's count taken once\n");
}

static void
setup(void)
{
	strlcpy_tv(E.dir, "/tmp/test_store.XXXXXX", sizeof(E.dir));
	if (mkdtemp(E.dir) == NULL)
		die("mkdtemp", E.dir);
	snprintf(E.path, sizeof(E.path), "%s/tinyvex.db", E.dir);
	config_defaults(&E.conf);
	buf_init(&E.value);
	E.ts = TS_START;
	open_engine();
	parse_pool(&M.data, range_data, nitems(range_data));
	parse_pool(&M.between, range_between, nitems(range_between));
}

static void
cleanup(void)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char	 p[192];
	size_t	 i;

	close_engine();
	for (i = 0; i < nitems(suffix); i++) {
		snprintf(p, sizeof(p), "%s%s", E.path, suffix[i]);
		unlink(p);
	}
	rmdir(E.dir);
	config_free(&E.conf);
	buf_free(&E.value);
	free(E.commits);
	model_free();
}

/* Test 1's writes: the random run over alpha, beta and gamma. */
static int
run_random(void)
{
	static char *const	 group_n[] = { "group", "n" };
	static char *const	 code[] = { "code" };
	static char *const	 s_field[] = { "s" };
	static const int	 tabs[] = {
		T_ALPHA, T_ALPHA, T_ALPHA, T_ALPHA, T_ALPHA,
		T_BETA, T_BETA, T_BETA, T_GAMMA, T_GAMMA,
	};
	size_t			 i, nrevs = 0;
	int			 rc;

	CHECK(create_index("beta", "by_s", s_field, 1, 0) == 0, "create "
	    "beta.by_s: %s", E.err.message);
	for (i = 0; i < RUN_MUTATIONS; i++) {
		if (i == RUN_INDEX_AT) {
			rc = create_index("alpha", "by_group", group_n, 2, 0);
			CHECK(rc == 0, "create alpha.by_group: %s",
			    E.err.message);
			alpha_index_ts = rc == 0 ? E.max_ts : 0;
			rc = create_index("alpha", "by_code", code, 1, 1);
			CHECK(rc == 0, "create alpha.by_code: %s",
			    E.err.message);
			M.unique_code[T_ALPHA] = rc == 0;
		}
		if (random_mutation(tabs, nitems(tabs), 0) == -1)
			return -1;
	}
	for (i = 0; i < M.n; i++)
		nrevs += M.docs[i].nrevs;
	printf("store: random run: %ld mutations (%ld batches), %ld "
	    "committed; refused as the model predicted: %ld validation, %ld "
	    "not found, %ld conflict; %zu documents, %zu revisions\n",
	    E.nmut, E.nbatch, E.nok, E.byerr[0], E.byerr[1], E.byerr[2],
	    M.n, nrevs);
	return 0;
}

/* readset_equal: the same intervals in the same order, nothing else. */
static void
test_readset_equal(void)
{
	struct readset	 a, b;

	readset_init(&a);
	readset_init(&b);
	CHECK(readset_equal(&a, &b), "empty read sets differ");
	readset_add(&a, 3, "k", 1, "k\0", 2, 0);
	CHECK(!readset_equal(&a, &b), "a read set equals an empty one");
	readset_add(&b, 3, "k", 1, "k\0", 2, 0);
	CHECK(readset_equal(&a, &b), "equal read sets differ");
	b.catalog_dep = 1;
	CHECK(!readset_equal(&a, &b), "catalog_dep not compared");
	b.catalog_dep = 0;
	readset_add(&a, 3, "a", 1, NULL, 0, 1);
	readset_add(&b, 3, "a", 1, "b", 1, 0);
	CHECK(!readset_equal(&a, &b), "an unbounded interval equals a "
	    "bounded one");
	readset_free(&b);
	readset_add(&b, 3, "k", 1, "k\0", 2, 0);
	readset_add(&b, 4, "a", 1, NULL, 0, 1);
	CHECK(!readset_equal(&a, &b), "index ids not compared");
	readset_free(&b);
	readset_add(&b, 3, "k", 1, "k", 1, 0);
	readset_add(&b, 3, "a", 1, NULL, 0, 1);
	CHECK(!readset_equal(&a, &b), "upper bounds not compared");
	readset_free(&b);
	readset_add(&b, 3, "k", 1, "k\0", 2, 0);
	readset_add(&b, 3, "ab", 2, NULL, 0, 1);
	CHECK(!readset_equal(&a, &b), "lower bounds not compared");
	readset_free(&b);
	readset_add(&b, 3, "k", 1, "k\0", 2, 0);
	readset_add(&b, 3, "a", 1, NULL, 0, 1);
	CHECK(readset_equal(&a, &b), "equal read sets of two intervals "
	    "differ");
	readset_free(&a);
	readset_free(&b);
}

/* store_valid_id: 26 characters of 0-9 and a-z without i, l, o, u. */
static void
test_valid_id(void)
{
	static const char	 bad[] = "ilouILOUA/:`{ -";
	char			 id[STORE_ID_LEN + 2];
	size_t			 i;

	memset(id, 0, sizeof(id));
	memcpy(id, "0123456789abcdefghjkmnpqrs", STORE_ID_LEN);
	CHECK(store_valid_id(id), "%s is refused", id);
	memcpy(id, "tvwxyz0000000000000000zzzz", STORE_ID_LEN);
	CHECK(store_valid_id(id), "%s is refused", id);
	for (i = 0; i < sizeof(bad) - 1; i++) {
		id[7] = bad[i];
		CHECK(!store_valid_id(id), "an id with '%c' is taken", bad[i]);
	}
	id[7] = '0';
	id[STORE_ID_LEN] = '0';
	CHECK(!store_valid_id(id), "an id of %d characters is taken",
	    STORE_ID_LEN + 1);
	id[STORE_ID_LEN] = '\0';
	id[STORE_ID_LEN - 1] = '\0';
	CHECK(!store_valid_id(id), "an id of %d characters is taken",
	    STORE_ID_LEN - 1);
	CHECK(!store_valid_id(""), "the empty id is taken");
}

int
main(void)
{
	log_init("test_store", 1, 0);
	setup();
	test_valid_id();
	test_readset_equal();
	if (run_random() == 0) {
		check_snapshots(1);
		check_current_vs_log("after the random run");
		check_model_current();
		test_ranges();
		check_current_vs_log("after the range run");
		check_model_current();
		test_unique();
		test_batches();
		test_validation();
		check_current_vs_log("at the end");
		check_model_current();
		test_reopen();
		test_migrate();
		test_migrate_v2();
	}
	printf("store: %ld queries, %ld checks, %d failures\n", E.nqueries,
	    nchecks, nfail);
	cleanup();
	return nfail == 0 ? 0 : 1;
}
