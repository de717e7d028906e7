/*
 * The HTTP/1.1 side of the gateway: a bounded parser for one request head,
 * the Host/Origin/token policy of the wire contract, and the answers
 * (101 upgrade, 200 /healthz, 400, 403, 404, 405, 426, 431), or the
 * hand-over of a GET or HEAD of another path to static.c.  Pure
 * functions over bytes, so they can be tested and fuzzed without sockets.
 */
#ifndef TINYVEX_HTTP_H
#define TINYVEX_HTTP_H

#include <stddef.h>

#include "util.h"

#define HTTP_MAX_HEAD		8192	/* request head limit; over it: 431 */
#define HTTP_MAX_HEADERS	64	/* header lines limit; over it: 431 */
#define HTTP_SUBPROTOCOL	"tinyvex.v1"

/* What the parser keeps of a request head. */
struct http_request {
	char	 method[16];
	char	 path[512];		/* request target without the query */
	int	 has_host;
	char	 host[256];		/* Host value as sent */
	int	 has_origin;
	char	 origin[512];		/* Origin value as sent */
	int	 upgrade_websocket;	/* Upgrade has token "websocket" */
	int	 connection_upgrade;	/* Connection has token "upgrade" */
	int	 has_ws_version;
	char	 ws_version[16];	/* Sec-WebSocket-Version as sent */
	int	 has_ws_key;
	char	 ws_key[64];		/* Sec-WebSocket-Key as sent, trimmed */
	int	 offered_protocols;	/* Sec-WebSocket-Protocol present */
	int	 offered_tinyvex;	/* ... and lists HTTP_SUBPROTOCOL */
	int	 has_bearer;
	char	 bearer[256];		/* token of Authorization: Bearer */
	int	 has_if_none_match;	/* If-None-Match, when it fits */
	char	 if_none_match[256];	/* ... its value */
};

/*
 * Parse the head at the start of p.  Returns HTTP_PARSE_DONE with *headlen
 * set to the head's length (through the blank line), HTTP_PARSE_MORE when
 * the head is incomplete and still under HTTP_MAX_HEAD, HTTP_PARSE_BAD for
 * a malformed head (answer 400), HTTP_PARSE_TOOBIG when the head is over
 * HTTP_MAX_HEAD or HTTP_MAX_HEADERS (answer 431).
 */
enum http_parse {
	HTTP_PARSE_DONE,
	HTTP_PARSE_MORE,
	HTTP_PARSE_BAD,
	HTTP_PARSE_TOOBIG,
};
enum http_parse http_parse_head(const char *p, size_t len,
	    struct http_request *, size_t *headlen);

/* The gateway's rules for the upgrade. */
struct http_policy {
	const char	 *listen_host;	/* configured listen address host */
	char *const	 *origins;	/* extra allowed origins, exact match */
	size_t		  norigins;
	const char	 *token;	/* required token, or NULL */
	const char	 *health_body;	/* JSON body for GET /healthz */
	int		  static_files;	/* static_dir serves other paths */
};

/* What to do with a parsed request. */
enum http_verdict {
	HTTP_UPGRADE,		/* answer written is the 101; go WebSocket */
	HTTP_ANSWERED,		/* answer written; close after flushing */
	HTTP_STATIC,		/* nothing written: serve a static file */
};

/*
 * Decide on a parsed request and append the whole response to out.  The
 * token, when the policy has one, is checked here only if the request
 * carries an Authorization header; *token_ok is set to 1 when it matched,
 * 0 otherwise (a connection without it must present the token in
 * tinyvex/connect).
 */
enum http_verdict http_decide(const struct http_request *,
	    const struct http_policy *, struct buf *out, int *token_ok);

/* Append a complete non-upgrade response (with Connection: close). */
void	 http_error(struct buf *out, int status, const char *body);

/* Host and Origin rules; 1 allowed, 0 refused. */
int	 http_host_allowed(const char *host, const char *listen_host);
int	 http_origin_allowed(const char *origin, char *const *origins,
	    size_t norigins);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 chars. */
void	 http_accept_key(const char *key, char out[29]);

/* Constant-time comparison of two NUL-terminated strings; 1 if equal. */
int	 http_token_equal(const char *, const char *);

#endif
