/*
 * tinyvex export FILE.zip [TABLE ...] and tinyvex import FILE.zip |
 * FILE.jsonl --table TABLE (DESIGN §13, §14).
 *
 * Export writes a consistent snapshot: it takes the ts of its first read
 * (db/tables, or the first table's first page) and reads every page of
 * every table with tinyvex/query at that ts, while writes go on.  Each
 * table becomes TABLE/documents.jsonl, one document a line, _id and
 * _creationTime renamed tinyvexId and tinyvexCreationTime (Convex and
 * Tinyvex assign their own).  Pages walk the by_creation_time index
 * (_creationTime, then _id): after a full page, first the rest of the
 * documents with the last page's _creationTime (eq, then _id gt), then
 * those after it (gt), so documents sharing a _creationTime (one
 * db/batch) are neither skipped nor repeated.
 *
 * Import reads such files (or one .jsonl for --table) and inserts in
 * db/batch chunks of at most IMPORT_BATCH_OPS documents and
 * IMPORT_BATCH_BYTES bytes, IMPORT_WINDOW chunks in flight.  The
 * sessionId is derived from the file's SHA-256, and each chunk's
 * requestId from its ordinal and content, so a rerun of the same file
 * (within the server's idempotency window) gets the recorded outcome of
 * every chunk already applied and adds nothing twice.  tinyvexId,
 * tinyvexCreationTime, _id and _creationTime are dropped from imported
 * documents: the server assigns new ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zip.h>

#include "cli.h"

#define EXPORT_PAGE		1000	/* documents per page read */
#define IMPORT_BATCH_OPS	100	/* documents per db/batch */
#define IMPORT_BATCH_BYTES	(256 * 1024)	/* args bytes per db/batch */
#define IMPORT_WINDOW		4	/* db/batch calls in flight */
#define IMPORT_MAX_LINE		(16 * 1024 * 1024)	/* one document line */
#define MAX_TABLES		4096	/* tables in one export */
#define TABLE_NAME_MAX		64

enum page_phase {
	PAGE_FIRST,	/* from the start of the index */
	PAGE_SAME,	/* _creationTime eq last, _id gt last */
	PAGE_AFTER,	/* _creationTime gt last */
};

struct export {
	struct cli	*cli;
	zip_t		*zip;
	char		**tables;
	int		 ntables;
	int		 cur;		/* table being read */
	int		 named;		/* tables from the command line */
	int64_t		 ts;		/* the snapshot's ts; 0 before */
	FILE		*tmp;		/* the current table's lines */
	int64_t		 count;		/* its documents so far */
	enum page_phase	 phase;
	double		 last_ct;	/* last document's _creationTime */
	char		*last_id;	/* and _id */
	struct tvx_buf	 summary;	/* "table":count,... */
};

static void	export_page(struct export *);

static int
table_name_ok(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > TABLE_NAME_MAX ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return 0;
	for (i = 1; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static void
export_fail(struct export *ex, const char *what)
{
	if (what != NULL)
		cli_warnx("export: %s", what);
	if (ex->zip != NULL) {
		zip_discard(ex->zip);
		ex->zip = NULL;
	}
	cli_done(ex->cli, 1);
}

static void
export_finish(struct export *ex)
{
	struct tvx_buf	 b = { 0 };

	if (zip_close(ex->zip) == -1) {
		cli_warnx("export: %s", zip_strerror(ex->zip));
		export_fail(ex, NULL);
		return;
	}
	ex->zip = NULL;
	tvx_buf_adds(&b, "{\"ts\":");
	tvx_buf_i64(&b, ex->ts);
	tvx_buf_adds(&b, ",\"tables\":{");
	if (ex->summary.data != NULL)
		tvx_buf_adds(&b, ex->summary.data);
	tvx_buf_adds(&b, "}}");
	cli_print_value(ex->cli, b.data);
	tvx_buf_free(&b);
	cli_done(ex->cli, 0);
}

/* The current table is read: hand its file to the zip. */
static int
export_table_done(struct export *ex)
{
	zip_source_t	*src;
	char		 name[TABLE_NAME_MAX + 32];
	const char	*t = ex->tables[ex->cur];

	if (fflush(ex->tmp) == EOF || ferror(ex->tmp)) {
		export_fail(ex, "cannot write a temporary file");
		return -1;
	}
	rewind(ex->tmp);
	snprintf(name, sizeof(name), "%s/documents.jsonl", t);
	if ((src = zip_source_filep(ex->zip, ex->tmp, 0, -1)) == NULL ||
	    zip_file_add(ex->zip, name, src, ZIP_FL_ENC_UTF_8) < 0) {
		if (src != NULL)
			zip_source_free(src);
		else
			fclose(ex->tmp);
		ex->tmp = NULL;
		export_fail(ex, zip_strerror(ex->zip));
		return -1;
	}
	ex->tmp = NULL;
	if (ex->summary.len > 0)
		tvx_buf_addc(&ex->summary, ',');
	tvx_json_string(&ex->summary, t, strlen(t));
	tvx_buf_addc(&ex->summary, ':');
	tvx_buf_i64(&ex->summary, ex->count);
	return 0;
}

/* One document, renamed, as a line. */
static int
export_doc(struct export *ex, const cJSON *doc)
{
	struct tvx_buf	 b = { 0 };
	const cJSON	*m;
	const char	*name;
	int		 rc = 0;

	tvx_buf_addc(&b, '{');
	cJSON_ArrayForEach(m, doc) {
		name = m->string;
		if (strcmp(name, "_id") == 0)
			name = "tinyvexId";
		else if (strcmp(name, "_creationTime") == 0)
			name = "tinyvexCreationTime";
		if (m != doc->child)
			tvx_buf_addc(&b, ',');
		tvx_json_string(&b, name, strlen(name));
		tvx_buf_addc(&b, ':');
		tvx_json_print(&b, m);
	}
	tvx_buf_adds(&b, "}\n");
	if (b.failed || fwrite(b.data, 1, b.len, ex->tmp) != b.len)
		rc = -1;
	tvx_buf_free(&b);
	return rc;
}

static void
on_page(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct export	*ex = arg;
	const cJSON	*doc, *ct, *id;
	const char	*why;
	cJSON		*v;
	int		 n = 0;

	(void)ctx;
	(void)ts;
	if (err != NULL) {
		cli_print_error(err);
		export_fail(ex, NULL);
		return;
	}
	if ((v = tvx_json_parse(value, strlen(value), TVX_JSON_DEPTH,
	    &why)) == NULL || !cJSON_IsArray(v)) {
		cJSON_Delete(v);
		export_fail(ex, "a page is not an array");
		return;
	}
	cJSON_ArrayForEach(doc, v) {
		ct = tvx_json_get(doc, "_creationTime");
		id = tvx_json_get(doc, "_id");
		if (!cJSON_IsNumber(ct) || !cJSON_IsString(id) ||
		    export_doc(ex, doc) == -1) {
			cJSON_Delete(v);
			export_fail(ex, "a document cannot be written");
			return;
		}
		ex->last_ct = ct->valuedouble;
		free(ex->last_id);
		if ((ex->last_id = strdup(id->valuestring)) == NULL) {
			cJSON_Delete(v);
			export_fail(ex, "out of memory");
			return;
		}
		n++;
	}
	cJSON_Delete(v);
	ex->count += n;
	if (n == EXPORT_PAGE)
		ex->phase = PAGE_SAME;
	else if (ex->phase == PAGE_SAME)
		ex->phase = PAGE_AFTER;
	else {
		/* This table is done. */
		if (export_table_done(ex) == -1)
			return;
		if (++ex->cur == ex->ntables) {
			export_finish(ex);
			return;
		}
		ex->phase = PAGE_FIRST;
		ex->count = 0;
	}
	export_page(ex);
}

static void
export_page(struct export *ex)
{
	struct tvx_buf	 a = { 0 };
	const char	*t = ex->tables[ex->cur];

	if (ex->tmp == NULL && (ex->tmp = tmpfile()) == NULL) {
		export_fail(ex, strerror(errno));
		return;
	}
	tvx_buf_adds(&a, "{\"table\":");
	tvx_json_string(&a, t, strlen(t));
	tvx_buf_adds(&a, ",\"index\":\"by_creation_time\",\"limit\":");
	tvx_buf_i64(&a, EXPORT_PAGE);
	if (ex->phase != PAGE_FIRST) {
		tvx_buf_adds(&a, ",\"range\":[[\"_creationTime\",");
		tvx_buf_adds(&a, ex->phase == PAGE_SAME ? "\"eq\"," :
		    "\"gt\",");
		tvx_json_number(&a, ex->last_ct);
		tvx_buf_addc(&a, ']');
		if (ex->phase == PAGE_SAME) {
			tvx_buf_adds(&a, ",[\"_id\",\"gt\",");
			tvx_json_string(&a, ex->last_id, strlen(ex->last_id));
			tvx_buf_addc(&a, ']');
		}
		tvx_buf_addc(&a, ']');
	}
	tvx_buf_addc(&a, '}');
	if (a.failed || tvx_query(ex->cli->ctx, "db/query", a.data, ex->ts,
	    on_page, ex) == -1)
		export_fail(ex, "out of memory");
	tvx_buf_free(&a);
}

static void
on_first(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct export	*ex = arg;

	(void)ctx;
	(void)value;
	if (err != NULL) {
		cli_print_error(err);
		export_fail(ex, NULL);
		return;
	}
	ex->ts = ts;
	export_page(ex);
}

static void
on_tables(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct export	*ex = arg;
	const cJSON	*t, *name;
	struct tvx_buf	 a = { 0 };
	const char	*why;
	cJSON		*v;

	if (err != NULL) {
		if (ex->named && err->code == TVX_ERR_NOT_FOUND) {
			/* No db/tables here: the first read sets the ts. */
			tvx_buf_adds(&a, "{\"table\":");
			tvx_json_string(&a, ex->tables[0],
			    strlen(ex->tables[0]));
			tvx_buf_adds(&a, ",\"limit\":1}");
			if (a.failed || tvx_query(ctx, "db/query", a.data, -1,
			    on_first, ex) == -1)
				export_fail(ex, "out of memory");
			tvx_buf_free(&a);
			return;
		}
		cli_print_error(err);
		if (err->code == TVX_ERR_NOT_FOUND)
			cli_warnx("export: this server has no db/tables; name "
			    "the tables: tinyvex export FILE.zip TABLE ...");
		export_fail(ex, NULL);
		return;
	}
	ex->ts = ts;
	if (!ex->named) {
		if ((v = tvx_json_parse(value, strlen(value), TVX_JSON_DEPTH,
		    &why)) == NULL || !cJSON_IsArray(v) ||
		    cJSON_GetArraySize(v) > MAX_TABLES ||
		    (ex->tables = calloc((size_t)cJSON_GetArraySize(v) + 1,
		    sizeof(char *))) == NULL) {
			cJSON_Delete(v);
			export_fail(ex, "db/tables answered no list of tables");
			return;
		}
		cJSON_ArrayForEach(t, v) {
			name = tvx_json_get(t, "name");
			if (!cJSON_IsString(name) || !table_name_ok(
			    name->valuestring, strlen(name->valuestring)) ||
			    (ex->tables[ex->ntables++] =
			    strdup(name->valuestring)) == NULL) {
				cJSON_Delete(v);
				export_fail(ex, "bad table name from "
				    "db/tables");
				return;
			}
		}
		cJSON_Delete(v);
	}
	if (ex->ntables == 0) {
		export_finish(ex);
		return;
	}
	export_page(ex);
}

static void
export_free(struct cli *cli)
{
	struct export	*ex = cli->cmd;
	int		 i;

	if (ex->zip != NULL)
		zip_discard(ex->zip);
	if (ex->tmp != NULL)
		fclose(ex->tmp);
	if (!ex->named && ex->tables != NULL) {
		for (i = 0; i < ex->ntables; i++)
			free(ex->tables[i]);
		free(ex->tables);
	}
	free(ex->last_id);
	tvx_buf_free(&ex->summary);
	free(ex);
	cli->cmd = NULL;
}

int
cmd_export(struct cli *cli, int argc, char **argv)
{
	struct export	*ex;
	int		 i, zerr;

	if (argc < 2)
		cli_usage();
	for (i = 2; i < argc; i++)
		if (!table_name_ok(argv[i], strlen(argv[i])))
			cli_usage();
	if ((ex = calloc(1, sizeof(*ex))) == NULL)
		return -1;
	ex->cli = cli;
	cli->cmd = ex;
	cli->cmd_free = export_free;
	if (argc > 2) {
		ex->named = 1;
		ex->tables = argv + 2;
		ex->ntables = argc - 2;
	}
	if ((ex->zip = zip_open(argv[1], ZIP_CREATE | ZIP_TRUNCATE,
	    &zerr)) == NULL) {
		zip_error_t	 ze;

		zip_error_init_with_code(&ze, zerr);
		cli_warnx("export: %s: %s", argv[1], zip_error_strerror(&ze));
		zip_error_fini(&ze);
		errno = 0;
		return -1;
	}
	return tvx_query(cli->ctx, "db/tables", "{}", -1, on_tables, ex);
}

/* ---- import ---- */

struct import {
	struct cli	*cli;
	const char	*path;
	const char	*only;		/* --table */
	int		 is_zip;
	zip_t		*zip;
	zip_int64_t	 nentries;
	zip_int64_t	 entry;		/* next entry to look at */
	zip_file_t	*zf;		/* entry being read */
	FILE		*fp;		/* the .jsonl being read */
	char		 table[TABLE_NAME_MAX + 1];	/* of the source */
	char		 rbuf[65536];
	size_t		 rlen;
	size_t		 rpos;
	int		 done;		/* no more lines */
	uint64_t	 ordinal;	/* chunks built */
	int		 inflight;
	int64_t		 documents;
	int		 failed;
	char		 session[80];
};

struct chunk {
	struct import	*imp;
	int		 n;		/* documents in it */
};

static void	import_fill(struct import *);

static int
sha256_hex(const void *p, size_t n, char *hex, size_t hexlen)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, i;

	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL))
		return -1;
	for (i = 0; i < mdlen && 2 * i + 2 < hexlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Open the next zip entry named TABLE/documents.jsonl; 0 when none. */
static int
next_entry(struct import *imp)
{
	const char	*name, *slash;

	while (imp->entry < imp->nentries) {
		name = zip_get_name(imp->zip, imp->entry++, ZIP_FL_ENC_GUESS);
		if (name == NULL || (slash = strchr(name, '/')) == NULL ||
		    strcmp(slash, "/documents.jsonl") != 0 ||
		    !table_name_ok(name, (size_t)(slash - name)))
			continue;
		memcpy(imp->table, name, (size_t)(slash - name));
		imp->table[slash - name] = '\0';
		if (imp->only != NULL && strcmp(imp->only, imp->table) != 0)
			continue;
		if ((imp->zf = zip_fopen_index(imp->zip, imp->entry - 1, 0)) ==
		    NULL) {
			cli_warnx("import: %s: %s", name,
			    zip_strerror(imp->zip));
			return -1;
		}
		return 1;
	}
	return 0;
}

/* Refill rbuf from the current source; 0 at the end of all of them. */
static int
refill(struct import *imp)
{
	zip_int64_t	 n;
	int		 rc;

	for (;;) {
		if (imp->is_zip) {
			if (imp->zf == NULL) {
				if ((rc = next_entry(imp)) <= 0)
					return rc;
			}
			n = zip_fread(imp->zf, imp->rbuf, sizeof(imp->rbuf));
			if (n < 0) {
				cli_warnx("import: %s", zip_file_strerror(
				    imp->zf));
				return -1;
			}
			if (n == 0) {
				zip_fclose(imp->zf);
				imp->zf = NULL;
				/* A line never spans two entries. */
				return 2;
			}
		} else {
			n = (zip_int64_t)fread(imp->rbuf, 1, sizeof(imp->rbuf),
			    imp->fp);
			if (n == 0)
				return ferror(imp->fp) ? -1 : 0;
		}
		imp->rlen = (size_t)n;
		imp->rpos = 0;
		return 1;
	}
}

/* The next line into line (without its newline); 0 at the end. */
static int
read_line(struct import *imp, struct tvx_buf *line, char *table)
{
	char	*nl;
	size_t	 take;
	int	 rc;

	line->len = 0;
	for (;;) {
		if (imp->rpos == imp->rlen) {
			rc = refill(imp);
			if (rc == -1)
				return -1;
			if (rc == 0 || rc == 2) {
				if (line->len > 0)
					break;
				if (rc == 0)
					return 0;
				continue;
			}
		}
		nl = memchr(imp->rbuf + imp->rpos, '\n', imp->rlen - imp->rpos);
		take = nl ? (size_t)(nl - (imp->rbuf + imp->rpos)) :
		    imp->rlen - imp->rpos;
		if (line->len + take > IMPORT_MAX_LINE) {
			cli_warnx("import: a line longer than %d bytes",
			    IMPORT_MAX_LINE);
			return -1;
		}
		tvx_buf_add(line, imp->rbuf + imp->rpos, take);
		imp->rpos += take;
		if (nl != NULL) {
			imp->rpos++;
			break;
		}
	}
	strcpy(table, imp->is_zip ? imp->table : imp->only);
	return line->failed ? -1 : 1;
}

static void
on_chunk(struct tvx_ctx *ctx, void *arg, const char *value, int64_t ts,
    const struct tvx_error *err)
{
	struct chunk	*c = arg;
	struct import	*imp = c->imp;
	struct tvx_buf	 b = { 0 };

	(void)ctx;
	(void)value;
	(void)ts;
	imp->inflight--;
	if (err != NULL) {
		cli_print_error(err);
		imp->failed = 1;
	} else
		imp->documents += c->n;
	free(c);
	if (imp->failed) {
		if (imp->inflight == 0)
			cli_done(imp->cli, 1);
		return;
	}
	import_fill(imp);
	if (imp->done && imp->inflight == 0 && !imp->failed) {
		tvx_buf_adds(&b, "{\"documents\":");
		tvx_buf_i64(&b, imp->documents);
		tvx_buf_adds(&b, ",\"batches\":");
		tvx_buf_i64(&b, (int64_t)imp->ordinal);
		tvx_buf_addc(&b, '}');
		cli_print_value(imp->cli, b.data);
		tvx_buf_free(&b);
		cli_done(imp->cli, 0);
	}
}

/* One op: the document without the ids of its old home. */
static int
add_op(struct tvx_buf *ops, const char *table, const cJSON *doc)
{
	const cJSON	*m;
	int		 first = 1;

	tvx_buf_adds(ops, ops->len > 0 ? "," : "");
	tvx_buf_adds(ops, "{\"op\":\"insert\",\"table\":");
	tvx_json_string(ops, table, strlen(table));
	tvx_buf_adds(ops, ",\"doc\":{");
	cJSON_ArrayForEach(m, doc) {
		if (strcmp(m->string, "tinyvexId") == 0 ||
		    strcmp(m->string, "tinyvexCreationTime") == 0 ||
		    strcmp(m->string, "_id") == 0 ||
		    strcmp(m->string, "_creationTime") == 0)
			continue;
		if (!first)
			tvx_buf_addc(ops, ',');
		first = 0;
		tvx_json_string(ops, m->string, strlen(m->string));
		tvx_buf_addc(ops, ':');
		tvx_json_print(ops, m);
	}
	tvx_buf_adds(ops, "}}");
	return ops->failed ? -1 : 0;
}

/* Send chunks until the window is full or the input ends. */
static void
import_fill(struct import *imp)
{
	struct tvx_buf	 line = { 0 }, ops = { 0 }, args = { 0 };
	struct chunk	*c;
	const char	*why;
	char		 table[TABLE_NAME_MAX + 1], hex[65], rid[96], pre[32];
	cJSON		*doc;
	int		 n, rc;

	while (!imp->done && !imp->failed && imp->inflight < IMPORT_WINDOW) {
		ops.len = 0;
		n = 0;
		while (n < IMPORT_BATCH_OPS && ops.len < IMPORT_BATCH_BYTES) {
			if ((rc = read_line(imp, &line, table)) == -1) {
				imp->failed = 1;
				goto out;
			}
			if (rc == 0) {
				imp->done = 1;
				break;
			}
			if (strspn(line.data, " \t\r") == line.len)
				continue;
			doc = tvx_json_parse(line.data, line.len,
			    TVX_JSON_DEPTH, &why);
			if (doc == NULL || !cJSON_IsObject(doc)) {
				cli_warnx("import: a line is not a JSON "
				    "object (%s)", why ? why : "not an object");
				cJSON_Delete(doc);
				imp->failed = 1;
				goto out;
			}
			rc = add_op(&ops, table, doc);
			cJSON_Delete(doc);
			if (rc == -1) {
				imp->failed = 1;
				goto out;
			}
			n++;
		}
		if (n == 0)
			break;
		args.len = 0;
		tvx_buf_adds(&args, "{\"ops\":[");
		tvx_buf_add(&args, ops.data, ops.len);
		tvx_buf_adds(&args, "]}");
		/* The requestId: this chunk's ordinal and content. */
		snprintf(pre, sizeof(pre), "%llu\n",
		    (unsigned long long)imp->ordinal);
		line.len = 0;
		tvx_buf_adds(&line, pre);
		tvx_buf_add(&line, args.data, args.len);
		if (args.failed || line.failed ||
		    sha256_hex(line.data, line.len, hex, sizeof(hex)) == -1 ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			imp->failed = 1;
			goto out;
		}
		hex[32] = '\0';
		snprintf(rid, sizeof(rid), "\"import-%s\"", hex);
		c->imp = imp;
		c->n = n;
		if (tvx_mutation_id(imp->cli->ctx, "db/batch", args.data, rid,
		    on_chunk, c) == -1) {
			free(c);
			imp->failed = 1;
			goto out;
		}
		imp->ordinal++;
		imp->inflight++;
	}
out:
	tvx_buf_free(&line);
	tvx_buf_free(&ops);
	tvx_buf_free(&args);
	if (imp->failed && imp->inflight == 0)
		cli_done(imp->cli, 1);
}

static int
import_args(struct import *imp, int argc, char **argv)
{
	size_t	 n;

	if (argc == 4 && strcmp(argv[2], "--table") == 0)
		imp->only = argv[3];
	else if (argc != 2)
		return -1;
	imp->path = argv[1];
	n = strlen(imp->path);
	if (n > 4 && strcmp(imp->path + n - 4, ".zip") == 0)
		imp->is_zip = 1;
	else if (!(n > 6 && strcmp(imp->path + n - 6, ".jsonl") == 0) ||
	    imp->only == NULL)
		return -1;
	if (imp->only != NULL && !table_name_ok(imp->only, strlen(imp->only)))
		return -1;
	return 0;
}

static void
import_free(struct cli *cli)
{
	struct import	*imp = cli->cmd;

	if (imp->zf != NULL)
		zip_fclose(imp->zf);
	if (imp->zip != NULL)
		zip_discard(imp->zip);
	if (imp->fp != NULL)
		fclose(imp->fp);
	free(imp);
	cli->cmd = NULL;
}

/* Before the context: the sessionId from the file's SHA-256. */
int
prep_import(struct cli *cli, int argc, char **argv, struct tvx_config *cf)
{
	struct import	*imp;
	EVP_MD_CTX	*md;
	unsigned char	 d[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int	 dlen, i;
	size_t		 n;
	FILE		*fp;
	int		 zerr;

	if ((imp = calloc(1, sizeof(*imp))) == NULL)
		return -1;
	if (import_args(imp, argc, argv) == -1)
		cli_usage();
	imp->cli = cli;
	cli->cmd = imp;
	cli->cmd_free = import_free;
	if ((fp = fopen(imp->path, "rb")) == NULL) {
		cli_warnx("import: %s: %s", imp->path, strerror(errno));
		return -1;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		fclose(fp);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		EVP_DigestUpdate(md, buf, n);
	if (ferror(fp) || !EVP_DigestFinal_ex(md, d, &dlen)) {
		cli_warnx("import: %s: cannot read", imp->path);
		EVP_MD_CTX_free(md);
		fclose(fp);
		return -1;
	}
	EVP_MD_CTX_free(md);
	strcpy(imp->session, "import-");
	for (i = 0; i < 16; i++)
		snprintf(imp->session + 7 + 2 * i, 3, "%02x", d[i]);
	if (imp->is_zip) {
		fclose(fp);
		if ((imp->zip = zip_open(imp->path, ZIP_RDONLY, &zerr)) ==
		    NULL) {
			cli_warnx("import: %s: not a zip file", imp->path);
			return -1;
		}
		imp->nentries = zip_get_num_entries(imp->zip, 0);
	} else {
		rewind(fp);
		imp->fp = fp;
	}
	cf->session_id = imp->session;
	return 0;
}

int
cmd_import(struct cli *cli, int argc, char **argv)
{
	struct import	*imp = cli->cmd;

	(void)argc;
	(void)argv;
	import_fill(imp);
	if (imp->failed)
		return -1;
	if (imp->done && imp->inflight == 0) {
		cli_print_value(cli, "{\"documents\":0,\"batches\":0}");
		cli_done(cli, 0);
	}
	return 0;
}
