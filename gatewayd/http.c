/*
 * The HTTP/1.1 side of the gateway: a bounded parser for the one request
 * head a connection sends before it becomes a WebSocket, the Host, Origin
 * and token rules that keep browsers on other sites out of a loopback
 * server, and the answers.  Nothing here touches a socket: bytes in,
 * bytes out.
 *
 * The parser is strict and stateless.  Each call parses the head again
 * from its first byte, looks at no more than HTTP_MAX_HEAD bytes, and
 * judges only what it has seen, so a head fed in any split gives MORE
 * until it is complete and then the same verdict as the whole.  A head
 * is refused (BAD, answered 400) for:
 *   - a request line other than "METHOD SP origin-form SP HTTP/1.1": a
 *     method that is not a token or is over 15 bytes, another version
 *     (HTTP/1.0, HTTP/2, lower case), absolute or asterisk form, a
 *     fragment, a byte outside RFC 3986 pchar, a malformed %XX, a path
 *     (the target without its query) over 511 bytes, blank lines before
 *     the request line;
 *   - any line not ended by CRLF: a bare LF, or a CR not followed by LF;
 *   - NUL, DEL or any other control byte, except HT inside a value;
 *   - a header line starting with SP or HT (obs-fold), a field name that
 *     is not a token, white space before the colon, no colon;
 *   - a second Host, Origin, Sec-WebSocket-Key, Sec-WebSocket-Version,
 *     Authorization, Content-Length or If-None-Match;
 *   - a body: Content-Length other than digits, or above zero, or any
 *     Transfer-Encoding;
 *   - an element of Upgrade that is not token or token/token, of
 *     Connection or Sec-WebSocket-Protocol that is not a token (empty
 *     list elements are skipped);
 *   - a value that does not fit its field of struct http_request (a Host
 *     over 255 bytes, a Sec-WebSocket-Version over 15, a bearer token
 *     over 255, ...); an If-None-Match over 255 bytes is kept as absent.
 * Bytes 0x80-0xff are allowed in values (obs-text) and left to the rule
 * that reads the value.  The head is TOOBIG (answered 431) when its blank
 * line does not end within the first HTTP_MAX_HEAD bytes, or when it has
 * more than HTTP_MAX_HEADERS header lines; a malformed line seen before
 * either limit is reached makes it BAD.  Bytes after the head are not
 * looked at.
 *
 * Authorization must be "Bearer" (any case), one or more SP and an RFC
 * 6750 b64token.  Any other Authorization value is recorded as has_bearer
 * set with an empty bearer, which no token matches: http_decide refuses
 * it with 403 whether or not a token is configured.
 *
 * http_decide answers, in this order: GET /healthz 200 with the policy's
 * body (403 when Host is missing or refused, as for /sync); another
 * method on /healthz or /sync 405 (Allow: GET); another path 404, or,
 * when the policy serves static files, 405 (Allow: GET, HEAD) for a
 * method other than GET and HEAD, 403 for a missing or refused Host, else
 * HTTP_STATIC with nothing written (static.c answers); on /sync, a
 * missing or refused Host 403; a refused Origin 403; an Authorization
 * that is malformed, or that does not match the configured token, 403
 * (without a configured token a well-formed bearer is ignored); no
 * "Upgrade: websocket" with "Connection: upgrade" 426; a
 * Sec-WebSocket-Version missing or other than exactly "13" 426; a missing
 * or malformed Sec-WebSocket-Key (canonical base64 of exactly 16 bytes)
 * 400; subprotocols offered without tinyvex.v1 (matched exactly) 400;
 * else 101.  Every 426 carries Upgrade: websocket, Sec-WebSocket-Version:
 * 13 and "upgrade" in Connection.  Extensions are never echoed.  Paths
 * are compared as sent, without percent-decoding (static.c decodes the
 * paths of files).
 *
 * Host: the host part (port stripped) must be 127.0.0.1, localhost (any
 * case, no trailing dot), [::1] (as written: other spellings of ::1 are
 * refused) or the listen host; a listen host of 0.0.0.0, :: or [::]
 * names no host.  A port must be 1-5 digits, at most 65535.  Origin:
 * "null" and anything that is not scheme://host[:port] exactly (no
 * userinfo, path, query or fragment; host of letters, digits, "-._~", or
 * an IPv6 literal in brackets) is refused; an http or https origin of a
 * loopback host as above is allowed; any other only if it equals an
 * allow-list entry, ignoring case.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define HTTP_WS_GUID	"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HTTP_WS_KEYLEN	24	/* base64 of the 16-byte nonce */
#define HTTP_PORT_DIGITS 5	/* longest port in Host and Origin */
#define HTTP_PORT_MAX	65535

/* Duplicate-sensitive headers seen so far in one head. */
struct http_seen {
	int	 host;
	int	 origin;
	int	 ws_key;
	int	 ws_version;
	int	 authorization;
	int	 content_length;
	int	 if_none_match;
};

static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 9110 tchar. */
static int
is_tchar(unsigned char c)
{
	return is_alpha(c) || is_digit(c) ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 3986 unreserved. */
static int
is_unreserved(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' ||
	    c == '_' || c == '~';
}

/* RFC 3986 pchar, without pct-encoded. */
static int
is_pchar(unsigned char c)
{
	return is_unreserved(c) || c == ':' || c == '@' ||
	    (c != '\0' && strchr("!$&'()*+,;=", c) != NULL);
}

static int
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* 1 if the n bytes at s equal the string t, ignoring ASCII case. */
static int
ci_equal(const char *s, size_t n, const char *t)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (t[i] == '\0' || lower(s[i]) != lower(t[i]))
			return 0;
	return t[n] == '\0';
}

static int
is_token(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar(s[i]))
			return 0;
	return 1;
}

/*
 * Next element of a comma-separated list in [*cur, end), trimmed of OWS;
 * empty elements are skipped.  Returns 1 with the element in *elem and
 * *elen, 0 at the end of the list.
 */
static int
list_next(const char **cur, const char *end, const char **elem,
    size_t *elen)
{
	const char	*s = *cur, *e;

	for (;;) {
		while (s < end && is_ows(*s))
			s++;
		if (s == end) {
			*cur = s;
			return 0;
		}
		if (*s != ',')
			break;
		s++;
	}
	for (e = s; e < end && *e != ','; e++)
		;
	*cur = e;
	while (e > s && is_ows(e[-1]))
		e--;
	*elem = s;
	*elen = (size_t)(e - s);
	return 1;
}

/* Copy a value into a field of size sz; -1 if it does not fit. */
static int
store(char *dst, size_t sz, const char *v, size_t n)
{
	if (n >= sz)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

/*
 * Find the end of the line starting at off in the first n bytes.  Returns
 * HTTP_PARSE_DONE with *eol at its CR, HTTP_PARSE_MORE when the bytes seen
 * are fine but the CRLF has not arrived, HTTP_PARSE_BAD for a bare CR or
 * LF or a control byte other than HT.
 */
static enum http_parse
line_end(const char *p, size_t off, size_t n, size_t *eol)
{
	size_t		 i;
	unsigned char	 c;

	for (i = off; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '\r') {
			if (i + 1 == n)
				return HTTP_PARSE_MORE;
			if (p[i + 1] != '\n')
				return HTTP_PARSE_BAD;
			*eol = i;
			return HTTP_PARSE_DONE;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_PARSE_BAD;
	}
	return HTTP_PARSE_MORE;
}

/* "METHOD SP origin-form SP HTTP/1.1"; 0 or -1. */
static int
parse_request_line(const char *s, size_t n, struct http_request *req)
{
	const char	*end = s + n, *m, *t, *q;

	for (m = s; m < end && *m != ' '; m++)
		;
	if (!is_token(s, (size_t)(m - s)) ||
	    store(req->method, sizeof(req->method), s, (size_t)(m - s)) == -1)
		return -1;
	if (m == end)
		return -1;
	t = m + 1;
	if (t == end || *t != '/')
		return -1;
	for (q = NULL, m = t; m < end && *m != ' '; m++) {
		if (*m == '?') {
			if (q == NULL)
				q = m;
		} else if (*m == '%') {
			if (end - m < 3 || !is_hex(m[1]) || !is_hex(m[2]))
				return -1;
			m += 2;
		} else if (*m != '/' && !is_pchar(*m))
			return -1;
	}
	if (q == NULL)
		q = m;
	if (store(req->path, sizeof(req->path), t, (size_t)(q - t)) == -1)
		return -1;
	if (m == end)
		return -1;
	m++;
	if ((size_t)(end - m) != strlen("HTTP/1.1") ||
	    memcmp(m, "HTTP/1.1", strlen("HTTP/1.1")) != 0)
		return -1;
	return 0;
}

/* Upgrade: a list of protocol = token ["/" token]. */
static int
parse_upgrade(const char *v, size_t n, struct http_request *req)
{
	const char	*cur = v, *e, *slash;
	size_t		 elen;

	while (list_next(&cur, v + n, &e, &elen)) {
		slash = memchr(e, '/', elen);
		if (slash == NULL) {
			if (!is_token(e, elen))
				return -1;
		} else if (!is_token(e, (size_t)(slash - e)) ||
		    !is_token(slash + 1, elen - (size_t)(slash - e) - 1))
			return -1;
		if (ci_equal(e, elen, "websocket"))
			req->upgrade_websocket = 1;
	}
	return 0;
}

/* Connection: a list of tokens. */
static int
parse_connection(const char *v, size_t n, struct http_request *req)
{
	const char	*cur = v, *e;
	size_t		 elen;

	while (list_next(&cur, v + n, &e, &elen)) {
		if (!is_token(e, elen))
			return -1;
		if (ci_equal(e, elen, "upgrade"))
			req->connection_upgrade = 1;
	}
	return 0;
}

/* Sec-WebSocket-Protocol: a list of tokens, subprotocols match exactly. */
static int
parse_protocols(const char *v, size_t n, struct http_request *req)
{
	const char	*cur = v, *e;
	size_t		 elen;

	req->offered_protocols = 1;
	while (list_next(&cur, v + n, &e, &elen)) {
		if (!is_token(e, elen))
			return -1;
		if (elen == strlen(HTTP_SUBPROTOCOL) &&
		    memcmp(e, HTTP_SUBPROTOCOL, elen) == 0)
			req->offered_tinyvex = 1;
	}
	return 0;
}

/*
 * Authorization: "Bearer" 1*SP b64token.  A well-formed token is kept; any
 * other value leaves an empty bearer, which never matches.  -1 only for a
 * token too long for its field.
 */
static int
parse_authorization(const char *v, size_t n, struct http_request *req)
{
	const char	*tok;
	size_t		 i, tlen;

	req->has_bearer = 1;
	req->bearer[0] = '\0';
	if (n < 7 || !ci_equal(v, 6, "bearer") || v[6] != ' ')
		return 0;
	for (i = 6; i < n && v[i] == ' '; i++)
		;
	tok = v + i;
	tlen = n - i;
	for (i = 0; i < tlen; i++)
		if (!is_alpha(tok[i]) && !is_digit(tok[i]) &&
		    (tok[i] == '\0' || strchr("-._~+/", tok[i]) == NULL))
			break;
	if (i == 0)
		return 0;
	while (i < tlen && tok[i] == '=')
		i++;
	if (i != tlen)
		return 0;
	return store(req->bearer, sizeof(req->bearer), tok, tlen);
}

/* Content-Length: digits, and zero. */
static int
parse_content_length(const char *v, size_t n)
{
	size_t	 i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++)
		if (v[i] != '0')
			return -1;
	return 0;
}

/* One header line (without its CRLF); 0 or -1. */
static int
parse_header(const char *s, size_t n, struct http_request *req,
    struct http_seen *seen)
{
	const char	*end = s + n, *colon, *v;
	size_t		 nlen, vlen;

	for (colon = s; colon < end && *colon != ':'; colon++)
		;
	nlen = (size_t)(colon - s);
	if (colon == end || !is_token(s, nlen))
		return -1;
	for (v = colon + 1; v < end && is_ows(*v); v++)
		;
	while (end > v && is_ows(end[-1]))
		end--;
	vlen = (size_t)(end - v);

	if (ci_equal(s, nlen, "host")) {
		if (seen->host++)
			return -1;
		req->has_host = 1;
		return store(req->host, sizeof(req->host), v, vlen);
	}
	if (ci_equal(s, nlen, "origin")) {
		if (seen->origin++)
			return -1;
		req->has_origin = 1;
		return store(req->origin, sizeof(req->origin), v, vlen);
	}
	if (ci_equal(s, nlen, "upgrade"))
		return parse_upgrade(v, vlen, req);
	if (ci_equal(s, nlen, "connection"))
		return parse_connection(v, vlen, req);
	if (ci_equal(s, nlen, "sec-websocket-version")) {
		if (seen->ws_version++)
			return -1;
		req->has_ws_version = 1;
		return store(req->ws_version, sizeof(req->ws_version), v,
		    vlen);
	}
	if (ci_equal(s, nlen, "sec-websocket-key")) {
		if (seen->ws_key++)
			return -1;
		req->has_ws_key = 1;
		return store(req->ws_key, sizeof(req->ws_key), v, vlen);
	}
	if (ci_equal(s, nlen, "sec-websocket-protocol"))
		return parse_protocols(v, vlen, req);
	if (ci_equal(s, nlen, "authorization")) {
		if (seen->authorization++)
			return -1;
		return parse_authorization(v, vlen, req);
	}
	if (ci_equal(s, nlen, "content-length")) {
		if (seen->content_length++)
			return -1;
		return parse_content_length(v, vlen);
	}
	if (ci_equal(s, nlen, "if-none-match")) {
		if (seen->if_none_match++)
			return -1;
		/* Too long to keep: as if absent (the file is sent). */
		req->has_if_none_match = store(req->if_none_match,
		    sizeof(req->if_none_match), v, vlen) == 0;
		return 0;
	}
	if (ci_equal(s, nlen, "transfer-encoding"))
		return -1;
	return 0;
}

enum http_parse
http_parse_head(const char *p, size_t len, struct http_request *req,
    size_t *headlen)
{
	struct http_seen	 seen;
	enum http_parse		 r;
	size_t			 n, off, eol, nheaders;

	assert(p != NULL || len == 0);
	memset(req, 0, sizeof(*req));
	memset(&seen, 0, sizeof(seen));
	n = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	nheaders = 0;
	for (off = 0;; off = eol + 2) {
		if ((r = line_end(p, off, n, &eol)) == HTTP_PARSE_BAD)
			return HTTP_PARSE_BAD;
		if (r == HTTP_PARSE_MORE)
			return len >= HTTP_MAX_HEAD ? HTTP_PARSE_TOOBIG :
			    HTTP_PARSE_MORE;
		if (off == 0) {
			if (parse_request_line(p, eol, req) == -1)
				return HTTP_PARSE_BAD;
			continue;
		}
		if (eol == off)
			break;
		if (++nheaders > HTTP_MAX_HEADERS)
			return HTTP_PARSE_TOOBIG;
		if (is_ows(p[off]) ||
		    parse_header(p + off, eol - off, req, &seen) == -1)
			return HTTP_PARSE_BAD;
	}
	*headlen = eol + 2;
	return HTTP_PARSE_DONE;
}

/*
 * Check an optional ":port" at s: nothing, or a colon and 1-5 digits up
 * to HTTP_PORT_MAX, then the end of the string.  0 or -1.
 */
static int
check_port(const char *s)
{
	size_t		 i;
	unsigned long	 v = 0;

	if (*s == '\0')
		return 0;
	if (*s++ != ':')
		return -1;
	for (i = 0; is_digit(s[i]); i++) {
		if (i == HTTP_PORT_DIGITS)
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || s[i] != '\0' || v > HTTP_PORT_MAX)
		return -1;
	return 0;
}

/*
 * Split "host[:port]" (an IPv6 host in brackets), which must run to the
 * end of the string.  Returns 0 with *hlen the length of the host part
 * (brackets included), -1 when it is malformed.
 */
static int
split_hostport(const char *s, size_t *hlen)
{
	size_t	 i;

	if (s[0] == '[') {
		for (i = 1; is_hex(s[i]) || s[i] == ':' || s[i] == '.'; i++)
			;
		if (i == 1 || s[i] != ']')
			return -1;
		i++;
	} else {
		for (i = 0; is_unreserved(s[i]); i++)
			;
		if (i == 0)
			return -1;
	}
	if (check_port(s + i) == -1)
		return -1;
	*hlen = i;
	return 0;
}

static int
is_loopback_host(const char *h, size_t n)
{
	return ci_equal(h, n, "localhost") || ci_equal(h, n, "127.0.0.1") ||
	    ci_equal(h, n, "[::1]");
}

/* Does the host part h (n bytes) name the configured listen host? */
static int
is_listen_host(const char *h, size_t n, const char *listen)
{
	size_t	 ln;

	if (listen == NULL || listen[0] == '\0' ||
	    strcmp(listen, "0.0.0.0") == 0 || strcmp(listen, "::") == 0 ||
	    strcmp(listen, "[::]") == 0)
		return 0;
	if (listen[0] != '[' && strchr(listen, ':') != NULL) {
		/* A bare IPv6 address: compare inside the brackets. */
		ln = strlen(listen);
		return n == ln + 2 && h[0] == '[' && h[n - 1] == ']' &&
		    ci_equal(h + 1, ln, listen);
	}
	return ci_equal(h, n, listen);
}

int
http_host_allowed(const char *host, const char *listen_host)
{
	size_t	 hlen;

	if (host == NULL || split_hostport(host, &hlen) == -1)
		return 0;
	return is_loopback_host(host, hlen) ||
	    is_listen_host(host, hlen, listen_host);
}

int
http_origin_allowed(const char *origin, char *const *origins,
    size_t norigins)
{
	const char	*s;
	size_t		 slen, hlen, i;

	if (origin == NULL || strcmp(origin, "null") == 0)
		return 0;
	if (!is_alpha(origin[0]))
		return 0;
	for (s = origin + 1; is_alpha(*s) || is_digit(*s) || *s == '+' ||
	    *s == '-' || *s == '.'; s++)
		;
	slen = (size_t)(s - origin);
	if (strncmp(s, "://", 3) != 0)
		return 0;
	s += 3;
	if (split_hostport(s, &hlen) == -1)
		return 0;
	if ((ci_equal(origin, slen, "http") ||
	    ci_equal(origin, slen, "https")) && is_loopback_host(s, hlen))
		return 1;
	for (i = 0; i < norigins; i++)
		if (origins[i] != NULL &&
		    ci_equal(origin, strlen(origin), origins[i]))
			return 1;
	return 0;
}

void
http_accept_key(const char *key, char out[29])
{
	struct buf	 b;
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen;

	buf_init(&b);
	buf_adds(&b, key);
	buf_adds(&b, HTTP_WS_GUID);
	if (EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		fatalx("%s: SHA-1 failed", __func__);
	buf_free(&b);
	if (EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen) != 28)
		fatalx("%s: base64 failed", __func__);
	out[28] = '\0';
}

int
http_token_equal(const char *a, const char *b)
{
	size_t		 la, lb, i, n;
	unsigned char	 ca, cb, diff;

	la = strlen(a);
	lb = strlen(b);
	n = la > lb ? la : lb;
	diff = la != lb;
	for (i = 0; i < n; i++) {
		ca = i < la ? (unsigned char)a[i] : 0;
		cb = i < lb ? (unsigned char)b[i] : 0;
		diff |= ca ^ cb;
	}
	return diff == 0;
}

/* Is key the canonical base64 of exactly 16 bytes? */
static int
valid_ws_key(const char *key)
{
	static const char	 alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 i;

	if (strlen(key) != HTTP_WS_KEYLEN)
		return 0;
	for (i = 0; i < HTTP_WS_KEYLEN - 2; i++)
		if (key[i] == '\0' || strchr(alphabet, key[i]) == NULL)
			return 0;
	/* The last character carries 2 bits of data: the low 4 are zero. */
	if (strchr("AQgw", key[HTTP_WS_KEYLEN - 3]) == NULL)
		return 0;
	return key[HTTP_WS_KEYLEN - 2] == '=' && key[HTTP_WS_KEYLEN - 1] == '=';
}

static const char *
status_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

/* The body http_error sends when the caller gives none. */
static const char *
status_body(int status)
{
	switch (status) {
	case 200:
		return "{\"status\":\"ok\"}";
	case 400:
		return "{\"error\":\"bad_request\","
		    "\"message\":\"malformed request\"}";
	case 403:
		return "{\"error\":\"forbidden\","
		    "\"message\":\"request refused\"}";
	case 404:
		return "{\"error\":\"not_found\",\"message\":\"no such path\"}";
	case 405:
		return "{\"error\":\"method_not_allowed\","
		    "\"message\":\"only GET is allowed\"}";
	case 408:
		return "{\"error\":\"request_timeout\","
		    "\"message\":\"request head not received in time\"}";
	case 426:
		return "{\"error\":\"upgrade_required\","
		    "\"message\":\"a WebSocket upgrade, version 13, "
		    "is required\"}";
	case 431:
		return "{\"error\":\"request_header_fields_too_large\","
		    "\"message\":\"request head too large\"}";
	case 500:
		return "{\"error\":\"internal\","
		    "\"message\":\"internal error\"}";
	case 503:
		return "{\"error\":\"unavailable\","
		    "\"message\":\"service unavailable\"}";
	default:
		return "{\"error\":\"error\",\"message\":\"request failed\"}";
	}
}

/* The answer; allow is the Allow header's value of a 405. */
static void
answer(struct buf *out, int status, const char *allow, const char *body)
{
	assert(status >= 200 && status <= 599);
	if (body == NULL)
		body = status_body(status);
	buf_printf(out, "HTTP/1.1 %d %s\r\n", status, status_reason(status));
	if (status == 405)
		buf_printf(out, "Allow: %s\r\n", allow);
	if (status == 426)
		buf_adds(out, "Upgrade: websocket\r\n"
		    "Sec-WebSocket-Version: 13\r\n"
		    "Connection: upgrade, close\r\n");
	else
		buf_adds(out, "Connection: close\r\n");
	buf_printf(out, "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n", strlen(body));
	buf_adds(out, body);
}

void
http_error(struct buf *out, int status, const char *body)
{
	answer(out, status, "GET", body);
}

enum http_verdict
http_decide(const struct http_request *req, const struct http_policy *pol,
    struct buf *out, int *token_ok)
{
	char	 accept[29];

	assert(token_ok != NULL);
	*token_ok = 0;
	if (strcmp(req->path, "/healthz") == 0 &&
	    strcmp(req->method, "GET") == 0) {
		/* The body holds figures: no DNS-rebinding page may read it. */
		if (!req->has_host ||
		    !http_host_allowed(req->host, pol->listen_host))
			http_error(out, 403, "{\"error\":\"forbidden\","
			    "\"message\":\"Host not allowed\"}");
		else
			http_error(out, 200, pol->health_body);
		return HTTP_ANSWERED;
	}
	if (strcmp(req->path, "/healthz") != 0 &&
	    strcmp(req->path, "/sync") != 0) {
		if (!pol->static_files)
			http_error(out, 404, NULL);
		else if (strcmp(req->method, "GET") != 0 &&
		    strcmp(req->method, "HEAD") != 0)
			answer(out, 405, "GET, HEAD", NULL);
		else if (!req->has_host ||
		    !http_host_allowed(req->host, pol->listen_host))
			http_error(out, 403, "{\"error\":\"forbidden\","
			    "\"message\":\"Host not allowed\"}");
		else
			return HTTP_STATIC;
		return HTTP_ANSWERED;
	}
	if (strcmp(req->method, "GET") != 0) {
		http_error(out, 405, NULL);
		return HTTP_ANSWERED;
	}
	if (!req->has_host || !http_host_allowed(req->host, pol->listen_host)) {
		http_error(out, 403, "{\"error\":\"forbidden\","
		    "\"message\":\"Host not allowed\"}");
		return HTTP_ANSWERED;
	}
	if (req->has_origin && !http_origin_allowed(req->origin, pol->origins,
	    pol->norigins)) {
		http_error(out, 403, "{\"error\":\"forbidden\","
		    "\"message\":\"Origin not allowed\"}");
		return HTTP_ANSWERED;
	}
	if (req->has_bearer) {
		if (req->bearer[0] == '\0' || (pol->token != NULL &&
		    !http_token_equal(req->bearer, pol->token))) {
			http_error(out, 403, "{\"error\":\"forbidden\","
			    "\"message\":\"token refused\"}");
			return HTTP_ANSWERED;
		}
		*token_ok = pol->token != NULL;
	}
	if (!req->upgrade_websocket || !req->connection_upgrade ||
	    !req->has_ws_version || strcmp(req->ws_version, "13") != 0) {
		http_error(out, 426, NULL);
		return HTTP_ANSWERED;
	}
	if (!req->has_ws_key || !valid_ws_key(req->ws_key)) {
		http_error(out, 400, "{\"error\":\"bad_request\","
		    "\"message\":\"missing or malformed Sec-WebSocket-Key\"}");
		return HTTP_ANSWERED;
	}
	if (req->offered_protocols && !req->offered_tinyvex) {
		http_error(out, 400, "{\"error\":\"bad_request\","
		    "\"message\":\"subprotocol " HTTP_SUBPROTOCOL
		    " not offered\"}");
		return HTTP_ANSWERED;
	}
	http_accept_key(req->ws_key, accept);
	buf_printf(out, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n", accept);
	if (req->offered_tinyvex)
		buf_adds(out, "Sec-WebSocket-Protocol: " HTTP_SUBPROTOCOL
		    "\r\n");
	buf_adds(out, "\r\n");
	return HTTP_UPGRADE;
}
