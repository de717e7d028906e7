/*
 * Result hashes and diffs (the "resume" and "diff" features of protocol
 * 1).  The first half is pure: the hash of a serialized result, and the
 * diff from one result to the next as QueryDiff's ops (and fields, for a
 * db/paginate result), with no gateway state, so it is unit-tested alone.
 * The second half is the glue: an execution computes its diff once when
 * its result changes (only while a connection that asked for diffs
 * watches it) and its hash once per version on demand, and each
 * connection is handed the modification that fits what it holds: the
 * value, the diff, or QueryUnchanged.
 *
 * Memory: an execution keeps, beside its value, the latest diff's text
 * (freed when the next result comes) and a 23-byte hash.  The previous
 * value is not kept parsed: the diff scans both texts for the documents'
 * spans and ids, and parses only the documents whose text changed.
 */
#include <sys/types.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gatewayd.h"
#include "json.h"
#include "log.h"

/* A result is nested two levels deeper than the documents it holds. */
#define DIFF_MAX_DEPTH		(JSON_MAX_DEPTH + 2)

/*
 * The hash of a result: SHA-256 of its JSON text as the gateway serializes
 * it, the first DIFF_HASH_BYTES bytes in unpadded base64url.  Equal results
 * are equal texts (documents are stored as text and read back byte for
 * byte), so every gateway, before and after a restart, agrees.
 */
void
diff_hash(const char *value, size_t len, char out[DIFF_HASH_LEN + 1])
{
	static const char	 b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;
	uint32_t		 v;
	size_t			 i, o = 0;

	if (EVP_Digest(value, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < DIFF_HASH_BYTES)
		fatalx("%s: SHA-256 failed", __func__);
	for (i = 0; i < DIFF_HASH_BYTES; i += 3) {
		v = (uint32_t)md[i] << 16;
		if (i + 1 < DIFF_HASH_BYTES)
			v |= (uint32_t)md[i + 1] << 8;
		if (i + 2 < DIFF_HASH_BYTES)
			v |= md[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		if (i + 1 < DIFF_HASH_BYTES)
			out[o++] = b64[(v >> 6) & 63];
		if (i + 2 < DIFF_HASH_BYTES)
			out[o++] = b64[v & 63];
	}
	assert(o == DIFF_HASH_LEN);
	out[o] = '\0';
}

/*
 * Scanning.  A result is the gateway's own JSON text: documents as stored,
 * joined.  The diff walks it without building a tree, to find each
 * document's span and its _id; only the documents whose text changed are
 * parsed.  The scanner still fails closed: anything it does not follow
 * makes the result one no diff expresses.
 */
struct span {
	const char	*p;
	size_t		 len;
};

static const char *
skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': past the closing quote, or NULL. */
static const char *
skip_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* p at the start of a value: past its end, or NULL. */
static const char *
skip_value(const char *p, const char *e)
{
	int	 depth = 0;

	if (p >= e)
		return NULL;
	if (*p == '"')
		return skip_string(p, e);
	if (*p != '{' && *p != '[') {
		while (p < e && *p != ',' && *p != ']' && *p != '}' &&
		    *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
			p++;
		return p;
	}
	for (; p < e; p++) {
		if (*p == '"') {
			if ((p = skip_string(p, e)) == NULL)
				return NULL;
			p--;
		} else if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
	}
	return NULL;
}

/*
 * The members of the object at span v, one call each: *pos starts at 0;
 * returns 1 with the key token (quotes included) and the value, 0 at the
 * end, -1 when it is no object.
 */
static int
next_member(struct span v, size_t *pos, struct span *key, struct span *val)
{
	const char	*e = v.p + v.len, *p = v.p + *pos, *q;

	if (*pos == 0) {
		p = skip_ws(v.p, e);
		if (p >= e || *p != '{')
			return -1;
		p++;
	}
	p = skip_ws(p, e);
	if (p < e && *p == ',')
		p = skip_ws(p + 1, e);
	if (p < e && *p == '}')
		return 0;
	if (p >= e || *p != '"' || (q = skip_string(p, e)) == NULL)
		return -1;
	key->p = p;
	key->len = (size_t)(q - p);
	p = skip_ws(q, e);
	if (p >= e || *p != ':')
		return -1;
	p = skip_ws(p + 1, e);
	if ((q = skip_value(p, e)) == NULL)
		return -1;
	val->p = p;
	val->len = (size_t)(q - p);
	*pos = (size_t)(q - v.p);
	return 1;
}

static int
span_eq(struct span a, struct span b)
{
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static int
span_is(struct span a, const char *token)
{
	return a.len == strlen(token) && memcmp(a.p, token, a.len) == 0;
}

/* The member named by token (quotes included) of object v. */
static int
member(struct span v, const char *token, struct span *val)
{
	struct span	 k;
	size_t		 pos = 0;
	int		 r;

	while ((r = next_member(v, &pos, &k, val)) == 1)
		if (span_is(k, token))
			return 1;
	return r;
}

/* One element of a document array, with its _id. */
struct delem {
	struct span	 doc;		/* its text */
	struct span	 id;		/* the _id token, quotes included */
	size_t		 pos;		/* index in its array */
	ssize_t		 match;		/* index in the other array, -1 none */
	int		 keep;		/* stays in place (old side) */
};

static int
delem_cmp(const void *a, const void *b)
{
	const struct delem *const	*x = a, *const *y = b;
	size_t				 n = (*x)->id.len < (*y)->id.len ?
					    (*x)->id.len : (*y)->id.len;
	int				 c = memcmp((*x)->id.p, (*y)->id.p, n);

	if (c != 0)
		return c;
	return (*x)->id.len < (*y)->id.len ? -1 : (*x)->id.len > (*y)->id.len;
}

/*
 * The elements of the array of documents at span arr, and their pointers
 * sorted by _id.  -1 when it is no array, an element is no object with a
 * string _id, or two share one.
 */
static int
delems(struct span arr, struct delem **out, struct delem ***sorted,
    size_t *n)
{
	struct delem	*e = NULL, **s = NULL;
	struct span	 id;
	const char	*p = arr.p, *end = arr.p + arr.len, *q;
	size_t		 cnt = 0, cap = 0, i;

	p = skip_ws(p, end);
	if (p >= end || *p != '[')
		return -1;
	p = skip_ws(p + 1, end);
	while (p < end && *p != ']') {
		if ((q = skip_value(p, end)) == NULL)
			goto fail;
		if (cnt == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			e = xreallocarray(e, cap, sizeof(*e));
		}
		memset(&e[cnt], 0, sizeof(e[cnt]));
		e[cnt].doc.p = p;
		e[cnt].doc.len = (size_t)(q - p);
		if (member(e[cnt].doc, "\"_id\"", &id) != 1 || id.len < 2 ||
		    id.p[0] != '"')
			goto fail;
		e[cnt].id = id;
		e[cnt].pos = cnt;
		e[cnt].match = -1;
		cnt++;
		p = skip_ws(q, end);
		if (p < end && *p == ',')
			p = skip_ws(p + 1, end);
	}
	if (p >= end)
		goto fail;
	s = xcalloc(cnt + 1, sizeof(*s));
	for (i = 0; i < cnt; i++)
		s[i] = &e[i];
	qsort(s, cnt, sizeof(*s), delem_cmp);
	for (i = 1; i < cnt; i++)
		if (span_eq(s[i - 1]->id, s[i]->id))
			goto fail;
	*out = e;
	*sorted = s;
	*n = cnt;
	return 0;
fail:
	free(e);
	free(s);
	return -1;
}

static struct delem *
delem_find(struct delem **sorted, size_t n, const struct delem *key)
{
	size_t	 lo = 0, hi = n, mid;
	int	 c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = delem_cmp(&key, &sorted[mid])) == 0)
			return sorted[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Separator before the next item of a JSON list being written. */
static void
sep(struct buf *b, int *n)
{
	if ((*n)++ > 0)
		buf_addc(b, ',');
}

/*
 * The update op that turns document o into n, top-level fields only:
 * set, unset, and append for a string field whose new value starts with
 * its old one.  Writes nothing and returns 0 when they are equal, 1 when
 * it wrote the op, -1 when a text is no object; with id NULL the op has
 * no id (db/get).
 */
static int
diff_doc(struct buf *ops, int *nops, struct span ot, struct span nt,
    const struct span *id)
{
	struct buf	 set, unset, app, a, b;
	cJSON		*o, *n;
	const cJSON	*f, *of;
	enum json_err	 jerr;
	size_t		 ol;
	int		 nset = 0, nunset = 0, napp = 0, rc = 0;

	o = json_parse(ot.p, ot.len, DIFF_MAX_DEPTH, &jerr);
	n = json_parse(nt.p, nt.len, DIFF_MAX_DEPTH, &jerr);
	if (!cJSON_IsObject(o) || !cJSON_IsObject(n)) {
		cJSON_Delete(o);
		cJSON_Delete(n);
		return -1;
	}
	buf_init(&set);
	buf_init(&unset);
	buf_init(&app);
	buf_init(&a);
	buf_init(&b);
	cJSON_ArrayForEach(f, n) {
		of = json_get(o, f->string);
		if (of != NULL && cJSON_IsString(f) && cJSON_IsString(of)) {
			ol = strlen(of->valuestring);
			if (strcmp(f->valuestring, of->valuestring) == 0)
				continue;
			if (strncmp(f->valuestring, of->valuestring, ol) == 0) {
				sep(&app, &napp);
				json_print_string(&app, f->string,
				    strlen(f->string));
				buf_addc(&app, ':');
				json_print_string(&app, f->valuestring + ol,
				    strlen(f->valuestring + ol));
				continue;
			}
		} else if (of != NULL) {
			buf_reset(&a);
			buf_reset(&b);
			json_print(&a, f);
			json_print(&b, of);
			if (a.len == b.len && memcmp(a.data, b.data,
			    a.len) == 0)
				continue;
		}
		sep(&set, &nset);
		json_print_string(&set, f->string, strlen(f->string));
		buf_addc(&set, ':');
		json_print(&set, f);
	}
	cJSON_ArrayForEach(of, o) {
		if (json_get(n, of->string) != NULL)
			continue;
		sep(&unset, &nunset);
		json_print_string(&unset, of->string, strlen(of->string));
	}
	if (nset + nunset + napp > 0) {
		rc = 1;
		sep(ops, nops);
		buf_adds(ops, "{\"op\":\"update\"");
		if (id != NULL) {
			buf_adds(ops, ",\"id\":");
			buf_add(ops, id->p, id->len);
		}
		if (nset > 0) {
			buf_adds(ops, ",\"set\":{");
			buf_add(ops, set.data, set.len);
			buf_addc(ops, '}');
		}
		if (nunset > 0) {
			buf_adds(ops, ",\"unset\":[");
			buf_add(ops, unset.data, unset.len);
			buf_addc(ops, ']');
		}
		if (napp > 0) {
			buf_adds(ops, ",\"append\":{");
			buf_add(ops, app.data, app.len);
			buf_addc(ops, '}');
		}
		buf_addc(ops, '}');
	}
	buf_free(&set);
	buf_free(&unset);
	buf_free(&app);
	buf_free(&a);
	buf_free(&b);
	cJSON_Delete(o);
	cJSON_Delete(n);
	return rc;
}

/*
 * The old elements that stay in place: the longest run of matched ones
 * whose new positions increase (patience sorting, O(n log n)).  Every
 * other matched element moved and becomes a remove and an insert.
 */
static void
mark_kept(struct delem *oe, size_t on)
{
	size_t	*tail, *prev, len = 0, lo, hi, mid, i, k;

	tail = xcalloc(on + 1, sizeof(*tail));	/* index into oe */
	prev = xcalloc(on + 1, sizeof(*prev));
	for (i = 0; i < on; i++) {
		if (oe[i].match < 0)
			continue;
		lo = 0;
		hi = len;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (oe[tail[mid]].match < oe[i].match)
				lo = mid + 1;
			else
				hi = mid;
		}
		prev[i] = lo > 0 ? tail[lo - 1] : SIZE_MAX;
		tail[lo] = i;
		if (lo == len)
			len++;
	}
	for (k = len > 0 ? tail[len - 1] : SIZE_MAX; k != SIZE_MAX;
	    k = prev[k])
		oe[k].keep = 1;
	free(tail);
	free(prev);
}

/*
 * The ops that turn the document array o into n; -1 when ids do not
 * allow.  A document whose text did not change is not parsed.
 */
static int
diff_array(struct buf *ops, struct span o, struct span n)
{
	struct delem	*oe = NULL, *ne = NULL, *m;
	struct delem	**os = NULL, **ns = NULL;
	size_t		 on, nn, i;
	int		 nops = 0, rc = -1;

	if (delems(o, &oe, &os, &on) == -1 || delems(n, &ne, &ns, &nn) == -1)
		goto done;
	for (i = 0; i < on; i++) {
		if ((m = delem_find(ns, nn, &oe[i])) == NULL)
			continue;
		oe[i].match = (ssize_t)m->pos;
		m->match = (ssize_t)i;
	}
	mark_kept(oe, on);
	buf_addc(ops, '[');
	/* Gone or moved: removed first, in old order. */
	for (i = 0; i < on; i++) {
		if (oe[i].keep)
			continue;
		sep(ops, &nops);
		buf_adds(ops, "{\"op\":\"remove\",\"id\":");
		buf_add(ops, oe[i].id.p, oe[i].id.len);
		buf_addc(ops, '}');
	}
	/*
	 * Then, walking the new order, every document not kept is inserted
	 * at its final index: the prefix before it is already in place.
	 */
	for (i = 0; i < nn; i++) {
		if (ne[i].match >= 0 && oe[ne[i].match].keep)
			continue;
		sep(ops, &nops);
		buf_adds(ops, "{\"op\":\"insert\",\"at\":");
		buf_add_u64(ops, i);
		buf_adds(ops, ",\"doc\":");
		buf_add(ops, ne[i].doc.p, ne[i].doc.len);
		buf_addc(ops, '}');
	}
	/* The kept documents whose text changed. */
	for (i = 0; i < nn; i++) {
		if (ne[i].match < 0 || !oe[ne[i].match].keep ||
		    span_eq(oe[ne[i].match].doc, ne[i].doc))
			continue;
		if (diff_doc(ops, &nops, oe[ne[i].match].doc, ne[i].doc,
		    &ne[i].id) == -1)
			goto done;
	}
	buf_addc(ops, ']');
	rc = 0;
done:
	free(oe);
	free(ne);
	free(os);
	free(ns);
	return rc;
}

/* The member of object v whose key token is key. */
static int
member_span(struct span v, struct span key, struct span *val)
{
	struct span	 k;
	size_t		 pos = 0;
	int		 r;

	while ((r = next_member(v, &pos, &k, val)) == 1)
		if (span_eq(k, key))
			return 1;
	return r;
}

/*
 * The members of paginate result n other than page that differ from o, as
 * the fields object; -1 when o has a member n lacks (fields cannot drop).
 */
static int
diff_fields(struct buf *out, struct span o, struct span n)
{
	struct span	 k, v, ov;
	size_t		 pos = 0;
	int		 nf = 0, r;

	while ((r = next_member(o, &pos, &k, &ov)) == 1)
		if (member_span(n, k, &v) != 1)
			return -1;
	if (r == -1)
		return -1;
	pos = 0;
	while ((r = next_member(n, &pos, &k, &v)) == 1) {
		if (span_is(k, "\"page\""))
			continue;
		if (member_span(o, k, &ov) == 1 && span_eq(ov, v))
			continue;
		buf_adds(out, nf++ == 0 ? ",\"fields\":{" : ",");
		buf_add(out, k.p, k.len);
		buf_addc(out, ':');
		buf_add(out, v.p, v.len);
	}
	if (nf > 0)
		buf_addc(out, '}');
	return r;
}

/*
 * The diff from result old to result new, as the members of a QueryDiff
 * after its queryId: "ops":[...] and, for a db/paginate result whose other
 * members changed, ,"fields":{...}.  0 with out filled (appended to), or
 * -1 when no diff can express the change (a change to or from null, a
 * change of shape, documents without unique ids); out is then unchanged.
 * An array of documents is a db/query result; an object with an _id a
 * db/get result; an object without one whose page is an array a
 * db/paginate result.
 */
int
diff_results(const char *old, size_t oldlen, const char *new, size_t newlen,
    struct buf *out)
{
	struct span	 o = { old, oldlen }, n = { new, newlen }, op, np, id;
	const char	*ob = skip_ws(old, old + oldlen);
	const char	*nb = skip_ws(new, new + newlen);
	size_t		 start = out->len;
	int		 oi, ni, nops = 0, rc = -1;

	if (ob >= old + oldlen || nb >= new + newlen)
		goto done;
	buf_adds(out, "\"ops\":");
	if (*ob == '[' && *nb == '[')
		rc = diff_array(out, o, n);
	else if (*ob == '{' && *nb == '{') {
		oi = member(o, "\"_id\"", &id);
		ni = member(n, "\"_id\"", &id);
		if (oi == 1 && ni == 1) {
			buf_addc(out, '[');
			if (diff_doc(out, &nops, o, n, NULL) != -1) {
				buf_addc(out, ']');
				rc = 0;
			}
		} else if (oi == 0 && ni == 0 &&
		    member(o, "\"page\"", &op) == 1 &&
		    member(n, "\"page\"", &np) == 1 &&
		    op.p[0] == '[' && np.p[0] == '[' &&
		    (rc = diff_array(out, op, np)) == 0)
			rc = diff_fields(out, o, n);
	}
done:
	if (rc == -1) {
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
	}
	return rc;
}

/*
 * ex's result just changed to version ex->version; old is the value it
 * replaced (NULL when there was none: a first run, or a failure).  Keep the
 * diff from old when a watching connection asked for diffs and the diff is
 * smaller than the value; drop the previous diff in any case.
 */
void
diff_exec_changed(struct exec *ex, const char *old, size_t oldlen)
{
	struct buf	 d;
	size_t		 i;

	free(ex->diff);
	ex->diff = NULL;
	ex->difflen = 0;
	if (old == NULL || !ex->ok || ex->value == NULL)
		return;
	for (i = 0; i < ex->nwatchers; i++)
		if (ex->watchers[i]->features & GW_FEAT_DIFF)
			break;
	if (i == ex->nwatchers)
		return;
	buf_init(&d);
	if (diff_results(old, oldlen, ex->value, ex->valuelen, &d) == 0 &&
	    d.len < ex->valuelen)
		ex->diff = buf_steal(&d, &ex->difflen);
	buf_free(&d);
}

/* The hash of ex's current value, computed once per version. */
static const char *
exec_hash(struct exec *ex)
{
	if (ex->rhash_version != ex->version) {
		diff_hash(ex->value, ex->valuelen, ex->rhash);
		ex->rhash_version = ex->version;
	}
	return ex->rhash;
}

/*
 * Write the modification that brings sub's client to ex's current value
 * (which ex->ok says exists): QueryUnchanged when it is the first result
 * and the client already holds it (knownHash), QueryDiff when the client
 * holds the previous version and asked for diffs, else QueryUpdated; with
 * the hash when the client asked for "resume".
 */
void
diff_add_result(struct buf *p, const struct session *s, const struct sub *sub)
{
	struct exec	*ex = sub->ex;
	const char	*h = NULL;

	assert(ex->ok);
	if (s->features & GW_FEAT_RESUME)
		h = exec_hash(ex);
	if (h != NULL && sub->sent_version == 0 && sub->known_hash[0] != '\0' &&
	    strcmp(sub->known_hash, h) == 0) {
		buf_adds(p, "{\"type\":\"QueryUnchanged\",\"queryId\":");
		buf_add_u64(p, sub->query_id);
	} else if ((s->features & GW_FEAT_DIFF) && ex->diff != NULL &&
	    sub->sent_version != 0 && sub->sent_version + 1 == ex->version) {
		buf_adds(p, "{\"type\":\"QueryDiff\",\"queryId\":");
		buf_add_u64(p, sub->query_id);
		buf_addc(p, ',');
		buf_add(p, ex->diff, ex->difflen);
	} else {
		buf_adds(p, "{\"type\":\"QueryUpdated\",\"queryId\":");
		buf_add_u64(p, sub->query_id);
		buf_adds(p, ",\"value\":");
		buf_add(p, ex->value, ex->valuelen);
	}
	if (h != NULL) {
		buf_adds(p, ",\"hash\":\"");
		buf_adds(p, h);
		buf_addc(p, '"');
	}
	buf_addc(p, '}');
}
