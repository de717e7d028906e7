/*
 * Tests of the pure parts of static_dir (gatewayd/static.c): a table of
 * request paths, friendly and hostile, with the relative path each must
 * decode to or its refusal; the limits at and one past their bound;
 * every accepted path checked to stay beneath the directory; the content
 * type by extension; entity tags and If-None-Match.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "static.h"
#include "util.h"

/* NULL: refused. */
static const struct {
	const char	*path;
	const char	*want;
} cases[] = {
	{ "/", "index.html" },
	{ "/index.html", "index.html" },
	{ "/app.js", "app.js" },
	{ "/a/b/c.css", "a/b/c.css" },
	{ "/docs/", "docs/index.html" },
	{ "/a%20b.txt", "a b.txt" },
	{ "/%41%42c", "ABc" },
	{ "/caf%C3%A9.html", "caf\xc3\xa9.html" },
	{ "/x.y.z", "x.y.z" },
	{ "/a..b", "a..b" },
	{ "/a./b.", "a./b." },
	{ "/~user", "~user" },
	{ "/%7euser", "~user" },
	{ "/a%2Eb", "a.b" },
	/* Traversal, raw and encoded in every case and mixture. */
	{ "/..", NULL },
	{ "/../", NULL },
	{ "/../etc/passwd", NULL },
	{ "/a/../../etc/passwd", NULL },
	{ "/a/..", NULL },
	{ "/a/../b", NULL },
	{ "/.", NULL },
	{ "/./", NULL },
	{ "/./index.html", NULL },
	{ "/a/./b", NULL },
	{ "/%2e%2e/etc/passwd", NULL },
	{ "/%2E%2E/etc/passwd", NULL },
	{ "/%2e./etc/passwd", NULL },
	{ "/.%2e/etc/passwd", NULL },
	{ "/%2e", NULL },
	{ "/a/%2e%2e/%2e%2e/etc/passwd", NULL },
	{ "/%252e%252e/etc/passwd", "%2e%2e/etc/passwd" },
	{ "/..%2fetc%2fpasswd", NULL },
	{ "/%2e%2e%2fetc%2fpasswd", NULL },
	{ "/a%2fb", NULL },
	{ "/a%2Fb", NULL },
	{ "/...", NULL },
	{ "/..../etc", NULL },
	/* Hidden files. */
	{ "/.git/config", NULL },
	{ "/.env", NULL },
	{ "/a/.htpasswd", NULL },
	{ "/%2egit/config", NULL },
	/* Backslashes, raw and encoded. */
	{ "/..\\..\\etc\\passwd", NULL },
	{ "/a\\b", NULL },
	{ "/%5c..%5cetc%5cpasswd", NULL },
	{ "/%5C", NULL },
	{ "/..%5c..%5cwin.ini", NULL },
	/* NUL and control bytes, raw and encoded. */
	{ "/index.html%00.png", NULL },
	{ "/%00", NULL },
	{ "/a%0a", NULL },
	{ "/a%0d%0aSet-Cookie:x", NULL },
	{ "/a%09b", NULL },
	{ "/a%7f", NULL },
	{ "/a\tb", NULL },
	{ "/a\x7f", NULL },
	/* Absolute and empty components. */
	{ "//etc/passwd", NULL },
	{ "/a//b", NULL },
	{ "///", NULL },
	{ "/%2fetc/passwd", NULL },
	{ "", NULL },
	{ "etc/passwd", NULL },
	{ "index.html", NULL },
	{ "\\etc\\passwd", NULL },
	{ "C:\\windows", NULL },
	{ "/C:\\windows", NULL },
	/* Malformed escapes. */
	{ "/%", NULL },
	{ "/%2", NULL },
	{ "/%zz", NULL },
	{ "/%2g", NULL },
	{ "/a%", NULL },
	{ "/%%32%65", NULL },
	/* What the query or a fragment would be. */
	{ "/a?b", NULL },
	{ "/a#b", NULL },
};

/* An accepted path may not name anything outside the directory. */
static void
check_beneath(const char *out, const char *name)
{
	const char	*p = out, *slash;
	size_t		 len, depth = 0;

	check(out[0] != '\0' && out[0] != '/', "relative, not empty", name);
	for (;;) {
		slash = strchr(p, '/');
		len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		check(len > 0, "no empty component", name);
		check(p[0] != '.', "no component starts with '.'", name);
		depth++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	check(depth <= STATIC_MAX_DEPTH, "within STATIC_MAX_DEPTH", name);
	for (p = out; *p != '\0'; p++)
		check((unsigned char)*p >= 0x20 && *p != 0x7f && *p != '\\',
		    "no control byte or backslash", name);
}

static void
test_table(void)
{
	char	 out[STATIC_PATH_BUFLEN];
	size_t	 i;
	int	 rc;

	for (i = 0; i < nitems(cases); i++) {
		memset(out, 'X', sizeof(out));
		rc = static_path_decode(cases[i].path, out, sizeof(out));
		if (cases[i].want == NULL) {
			check(rc == -1, "refused", cases[i].path);
			continue;
		}
		check(rc == 0, "accepted", cases[i].path);
		if (rc != 0)
			continue;
		check(strcmp(out, cases[i].want) == 0, "decoded as expected",
		    cases[i].path);
		check_beneath(out, cases[i].path);
	}
}

static void
test_limits(void)
{
	char	 path[STATIC_MAX_PATH + 8], out[STATIC_PATH_BUFLEN];
	size_t	 i;

	/* STATIC_MAX_PATH bytes: accepted; one more: refused. */
	path[0] = '/';
	memset(path + 1, 'a', STATIC_MAX_PATH - 1);
	path[STATIC_MAX_PATH] = '\0';
	check(static_path_decode(path, out, sizeof(out)) == 0 &&
	    strlen(out) == STATIC_MAX_PATH - 1, "path at the limit", "limits");
	path[STATIC_MAX_PATH - 1] = '/';
	check(static_path_decode(path, out, sizeof(out)) == 0 &&
	    strlen(out) == STATIC_MAX_PATH - 1 + strlen(STATIC_INDEX),
	    "path at the limit ending in '/': its index", "limits");
	path[STATIC_MAX_PATH] = 'a';
	path[STATIC_MAX_PATH + 1] = '\0';
	check(static_path_decode(path, out, sizeof(out)) == -1,
	    "path one over the limit", "limits");
	/* STATIC_MAX_DEPTH components: accepted; one more: refused. */
	for (i = 0; i < STATIC_MAX_DEPTH; i++)
		memcpy(path + 2 * i, "/a", 2);
	path[2 * STATIC_MAX_DEPTH] = '\0';
	check(static_path_decode(path, out, sizeof(out)) == 0,
	    "components at the limit", "limits");
	memcpy(path + 2 * STATIC_MAX_DEPTH, "/", 2);
	check(static_path_decode(path, out, sizeof(out)) == -1,
	    "a directory at the limit: its index is one over", "limits");
	memcpy(path + 2 * STATIC_MAX_DEPTH + 1, "a", 2);
	check(static_path_decode(path, out, sizeof(out)) == -1,
	    "components one over the limit", "limits");
	check(static_path_decode("/a", out, STATIC_PATH_BUFLEN - 1) == -1,
	    "an output buffer too small", "limits");
	/* Every single byte, raw and encoded, in a component. */
	for (i = 1; i < 256; i++) {
		char	 raw[8], enc[8];
		int	 bad = i < 0x20 || i == 0x7f || i == '\\' || i == '/' ||
			    i == '.' || i == '?' || i == '#' || i == '%';

		snprintf(raw, sizeof(raw), "/%c", (int)i);
		snprintf(enc, sizeof(enc), "/%%%02X", (unsigned)i);
		if (i != '/')
			check((static_path_decode(raw, out, sizeof(out)) ==
			    -1) == bad, "a raw byte", raw);
		bad = i < 0x20 || i == 0x7f || i == '\\' || i == '/' ||
		    i == '.';
		check((static_path_decode(enc, out, sizeof(out)) == -1) ==
		    bad, "an encoded byte", enc);
	}
}

static void
test_types(void)
{
	static const struct {
		const char	*name, *type;
	} t[] = {
		{ "index.html", "text/html; charset=utf-8" },
		{ "a/INDEX.HTM", "text/html; charset=utf-8" },
		{ "app.js", "text/javascript; charset=utf-8" },
		{ "m.mjs", "text/javascript; charset=utf-8" },
		{ "s.css", "text/css; charset=utf-8" },
		{ "d.json", "application/json" },
		{ "i.svg", "image/svg+xml" },
		{ "p.PNG", "image/png" },
		{ "w.wasm", "application/wasm" },
		{ "f.woff2", "font/woff2" },
		{ "noext", "application/octet-stream" },
		{ "dir.html/file", "application/octet-stream" },
		{ "x.unknown", "application/octet-stream" },
		{ "trailing.", "application/octet-stream" },
	};
	size_t	 i;

	for (i = 0; i < nitems(t); i++)
		check(strcmp(static_content_type(t[i].name), t[i].type) == 0,
		    t[i].type, t[i].name);
}

static void
test_etag(void)
{
	struct stat	 st;
	char		 a[STATIC_ETAG_BUFLEN], b[STATIC_ETAG_BUFLEN];

	memset(&st, 0, sizeof(st));
	st.st_ino = 0x1234;
	st.st_size = 99;
	st.st_mtim.tv_sec = 1700000000;
	st.st_mtim.tv_nsec = 5;
	static_etag(&st, a);
	check(a[0] == '"' && a[strlen(a) - 1] == '"' && strchr(a + 1, '"') ==
	    a + strlen(a) - 1, "quoted once", "etag");
	st.st_mtim.tv_nsec = 6;
	static_etag(&st, b);
	check(strcmp(a, b) != 0, "a new mtime, a new tag", "etag");
	st.st_mtim.tv_nsec = 5;
	st.st_size = 100;
	static_etag(&st, b);
	check(strcmp(a, b) != 0, "a new size, a new tag", "etag");
	st.st_size = (off_t)0x7fffffffffffffffLL;
	st.st_ino = (ino_t)-1;
	st.st_mtim.tv_sec = 0x7fffffff;
	st.st_mtim.tv_nsec = 999999999;
	static_etag(&st, b);
	check(strlen(b) < STATIC_ETAG_BUFLEN - 1, "the largest fits", "etag");

	check(static_etag_match("\"abc\"", "\"abc\""), "equal", "inm");
	check(static_etag_match("W/\"abc\"", "\"abc\""), "weak equal", "inm");
	check(static_etag_match("\"x\", \"abc\"", "\"abc\""), "in a list",
	    "inm");
	check(static_etag_match("*", "\"abc\""), "*", "inm");
	check(!static_etag_match("\"abcd\"", "\"abc\""), "longer", "inm");
	check(!static_etag_match("\"ab\"", "\"abc\""), "shorter", "inm");
	check(!static_etag_match("abc", "\"abc\""), "unquoted", "inm");
	check(!static_etag_match("\"abc", "\"abc\""), "unterminated", "inm");
	check(!static_etag_match("", "\"abc\""), "empty", "inm");
	check(!static_etag_match(",,, ", "\"abc\""), "only commas", "inm");
}

int
main(void)
{
	test_table();
	test_limits();
	test_types();
	test_etag();
	printf("%ld checks, %d failed\n", nchecks, nfail);
	return nfail == 0 ? 0 : 1;
}
