/*
 * Tests of the upgrade head parser and the HTTP policy: a table of request
 * heads with the verdict, status and headers each must get, every head fed
 * in every split, the size and header-count limits at and one past their
 * bound, the Host, Origin, token and Sec-WebSocket-Accept rules on
 * their own, and the hand-over of other paths to static_dir with
 * If-None-Match kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"
#include "util.h"

#define RL	"GET /sync HTTP/1.1\r\n"
#define H_HOST	"Host: 127.0.0.1:7878\r\n"
#define H_UPG	"Upgrade: websocket\r\n"
#define H_CONN	"Connection: Upgrade\r\n"
#define H_KEY	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define H_VER	"Sec-WebSocket-Version: 13\r\n"
#define WS	H_UPG H_CONN H_KEY H_VER
#define ACCEPT	"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
#define PROTO	"\r\nSec-WebSocket-Protocol: tinyvex.v1\r\n"
#define TOKEN	"s3cr3t-T0ken"

#define DONE	HTTP_PARSE_DONE
#define MORE	HTTP_PARSE_MORE
#define BAD	HTTP_PARSE_BAD
#define TOOBIG	HTTP_PARSE_TOOBIG

#define MAX_SPLIT_ALL	1024	/* heads up to this size get every chunk size */

static char *allow[] = { "https://app.example.com", "tauri://localhost" };

static const struct http_policy policies[] = {
	/* 0: the default: loopback, no token */
	{ "127.0.0.1", allow, nitems(allow), NULL, "{\"ok\":true}" },
	/* 1: a token */
	{ "127.0.0.1", allow, nitems(allow), TOKEN, "{\"ok\":true}" },
	/* 2: a LAN listen address, no allow-list */
	{ "192.168.1.20", NULL, 0, NULL, NULL },
	/* 3: a wildcard listen address */
	{ "0.0.0.0", NULL, 0, NULL, NULL },
	/* 4: a bare IPv6 listen address */
	{ "fe80::1", NULL, 0, NULL, NULL },
};

struct hcase {
	const char	*name;
	int		 policy;	/* index in policies */
	const char	*head;
	size_t		 len;
	enum http_parse	 parse;		/* expected parser verdict */
	int		 status;	/* expected status when DONE */
	int		 token_ok;	/* expected *token_ok; -1 any */
	const char	*want[2];	/* substrings of the response */
	const char	*unwant;	/* must not be in the response */
};

#define R(name, pol, head, parse, status, tok, w1, w2, nw)		\
	{ name, pol, head, sizeof(head) - 1, parse, status, tok,	\
	    { w1, w2 }, nw }

static const struct hcase cases[] = {
	/* Upgrades that succeed. */
	R("RFC 6455 sample", 0, RL H_HOST WS "\r\n", DONE, 101, 0,
	    ACCEPT, "\r\nUpgrade: websocket\r\n", "Sec-WebSocket-Protocol"),
	R("second accept vector", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n", DONE, 101,
	    0, "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n",
	    "\r\nConnection: Upgrade\r\n", NULL),
	R("subprotocol offered", 0, RL H_HOST WS
	    "Sec-WebSocket-Protocol: tinyvex.v1\r\n\r\n", DONE, 101, 0,
	    PROTO, ACCEPT, NULL),
	R("subprotocol in a list", 0, RL H_HOST WS
	    "Sec-WebSocket-Protocol: chat, tinyvex.v1\r\n\r\n", DONE, 101, 0,
	    PROTO, NULL, "chat"),
	R("subprotocol in a second header", 0, RL H_HOST WS
	    "Sec-WebSocket-Protocol: chat\r\n"
	    "Sec-WebSocket-Protocol: superchat,tinyvex.v1\r\n\r\n", DONE, 101,
	    0, PROTO, NULL, "chat"),
	R("extensions not echoed", 0, RL H_HOST WS
	    "Sec-WebSocket-Extensions: permessage-deflate; "
	    "client_max_window_bits\r\n\r\n", DONE, 101, 0, ACCEPT, NULL,
	    "Extensions"),
	R("Connection keep-alive, Upgrade", 0, RL H_HOST H_UPG
	    "Connection: keep-alive, Upgrade\r\n" H_KEY H_VER "\r\n", DONE,
	    101, 0, ACCEPT, NULL, NULL),
	R("names and tokens in any case", 0, RL "HOST: localhost\r\n"
	    "upgrade: WebSocket\r\nCONNECTION: UPGRADE\r\n"
	    "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "SEC-WEBSOCKET-VERSION: 13\r\n\r\n", DONE, 101, 0, ACCEPT, NULL,
	    NULL),
	R("Upgrade list", 0, RL H_HOST "Upgrade: h2c, websocket\r\n" H_CONN
	    H_KEY H_VER "\r\n", DONE, 101, 0, ACCEPT, NULL, NULL),
	R("empty list elements", 0, RL H_HOST "Upgrade: ,websocket,\r\n"
	    "Connection: , ,upgrade\r\n" H_KEY H_VER "\r\n", DONE, 101, 0,
	    ACCEPT, NULL, NULL),
	R("OWS around values", 0, RL "Host:\t127.0.0.1 \r\n"
	    "Upgrade:websocket\r\nConnection:   Upgrade\t\r\n"
	    "Sec-WebSocket-Key:dGhlIHNhbXBsZSBub25jZQ==  \r\n"
	    "Sec-WebSocket-Version: \t13 \r\n\r\n", DONE, 101, 0, ACCEPT, NULL,
	    NULL),
	R("HT inside a value", 0, RL H_HOST WS "X-A: a\tb\r\n\r\n", DONE, 101,
	    0, ACCEPT, NULL, NULL),
	R("obs-text in an unread value", 0, RL H_HOST WS
	    "User-Agent: caf\xc3\xa9\r\n\r\n", DONE, 101, 0, ACCEPT, NULL,
	    NULL),
	R("query stripped", 0, "GET /sync?v=1&x=%2F HTTP/1.1\r\n" H_HOST WS
	    "\r\n", DONE, 101, 0, ACCEPT, NULL, NULL),
	R("empty query", 0, "GET /sync? HTTP/1.1\r\n" H_HOST WS "\r\n", DONE,
	    101, 0, ACCEPT, NULL, NULL),
	R("Content-Length: 0", 0, RL H_HOST WS "Content-Length: 0\r\n\r\n",
	    DONE, 101, 0, ACCEPT, NULL, NULL),
	R("empty value of an unread header", 0, RL H_HOST WS "X-Empty:\r\n"
	    "\r\n", DONE, 101, 0, ACCEPT, NULL, NULL),

	/* /healthz and other paths. */
	R("healthz", 0, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
	    DONE, 200, 0, "\r\n\r\n{\"ok\":true}",
	    "Content-Type: application/json\r\n", NULL),
	R("healthz with a query", 0, "GET /healthz?x HTTP/1.1\r\n" H_HOST
	    "\r\n", DONE, 200, 0, "{\"ok\":true}", "Content-Length: 11\r\n",
	    NULL),
	R("healthz default body", 2, "GET /healthz HTTP/1.1\r\n" H_HOST "\r\n",
	    DONE, 200, 0, "\"status\":\"ok\"", NULL, NULL),
	R("healthz without Host", 0, "GET /healthz HTTP/1.1\r\n\r\n", DONE,
	    403, 0, "Host not allowed", NULL, "{\"ok\""),
	R("healthz from a rebinding name", 0, "GET /healthz HTTP/1.1\r\n"
	    "Host: evil.example\r\n\r\n", DONE, 403, 0, "Host not allowed",
	    NULL, "{\"ok\""),
	R("healthz POST", 0, "POST /healthz HTTP/1.1\r\n" H_HOST "\r\n",
	    DONE, 405, 0, "\r\nAllow: GET\r\n", NULL, "{\"ok\""),
	R("unknown path", 0, "GET /foo HTTP/1.1\r\n" H_HOST WS "\r\n", DONE,
	    404, 0, "\"error\":\"not_found\"", NULL, "Accept"),
	R("/sync/ is another path", 0, "GET /sync/ HTTP/1.1\r\n" H_HOST WS
	    "\r\n", DONE, 404, 0, NULL, NULL, NULL),
	R("/Sync is another path", 0, "GET /Sync HTTP/1.1\r\n" H_HOST WS
	    "\r\n", DONE, 404, 0, NULL, NULL, NULL),
	R("no percent-decoding", 0, "GET /%73ync HTTP/1.1\r\n" H_HOST WS
	    "\r\n", DONE, 404, 0, NULL, NULL, NULL),
	R("//sync", 0, "GET //sync HTTP/1.1\r\n" H_HOST WS "\r\n", DONE, 404,
	    0, NULL, NULL, NULL),
	R("POST /sync", 0, "POST /sync HTTP/1.1\r\n" H_HOST WS
	    "Content-Length: 0\r\n\r\n", DONE, 405, 0, "\r\nAllow: GET\r\n",
	    "method_not_allowed", NULL),
	R("HEAD /sync", 0, "HEAD /sync HTTP/1.1\r\n" H_HOST WS "\r\n", DONE,
	    405, 0, "\r\nAllow: GET\r\n", NULL, NULL),
	R("lower-case method", 0, "get /sync HTTP/1.1\r\n" H_HOST WS "\r\n",
	    DONE, 405, 0, NULL, NULL, NULL),
	R("15-byte method", 0, "ABCDEFGHIJKLMNO /sync HTTP/1.1\r\n" H_HOST
	    "\r\n", DONE, 405, 0, NULL, NULL, NULL),

	/* Upgrade required. */
	R("plain GET /sync", 0, RL H_HOST "\r\n", DONE, 426, 0,
	    "\r\nSec-WebSocket-Version: 13\r\n", "\r\nUpgrade: websocket\r\n",
	    "Accept"),
	R("no Upgrade", 0, RL H_HOST H_CONN H_KEY H_VER "\r\n", DONE, 426, 0,
	    "\r\nSec-WebSocket-Version: 13\r\n", "\r\nUpgrade: websocket\r\n",
	    NULL),
	R("no Connection: upgrade", 0, RL H_HOST H_UPG
	    "Connection: keep-alive\r\n" H_KEY H_VER "\r\n", DONE, 426, 0,
	    "\r\nSec-WebSocket-Version: 13\r\n", NULL, NULL),
	R("Upgrade: websocket/13", 0, RL H_HOST "Upgrade: websocket/13\r\n"
	    H_CONN H_KEY H_VER "\r\n", DONE, 426, 0, NULL, NULL, NULL),
	R("Upgrade: websockets", 0, RL H_HOST "Upgrade: websockets\r\n"
	    H_CONN H_KEY H_VER "\r\n", DONE, 426, 0, NULL, NULL, NULL),
	R("version 8", 0, RL H_HOST H_UPG H_CONN H_KEY
	    "Sec-WebSocket-Version: 8\r\n\r\n", DONE, 426, 0,
	    "\r\nSec-WebSocket-Version: 13\r\n", NULL, NULL),
	R("version missing", 0, RL H_HOST H_UPG H_CONN H_KEY "\r\n", DONE,
	    426, 0, "\r\nSec-WebSocket-Version: 13\r\n", NULL, NULL),
	R("version list", 0, RL H_HOST H_UPG H_CONN H_KEY
	    "Sec-WebSocket-Version: 13, 8\r\n\r\n", DONE, 426, 0, NULL, NULL,
	    NULL),
	R("version 013", 0, RL H_HOST H_UPG H_CONN H_KEY
	    "Sec-WebSocket-Version: 013\r\n\r\n", DONE, 426, 0, NULL, NULL,
	    NULL),

	/* Key and subprotocol refused. */
	R("key missing", 0, RL H_HOST H_UPG H_CONN H_VER "\r\n", DONE, 400, 0,
	    "Sec-WebSocket-Key", NULL, "Accept"),
	R("key of 10 bytes", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n\r\n", DONE, 400, 0, NULL,
	    NULL, NULL),
	R("key not canonical", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n\r\n", DONE, 400,
	    0, NULL, NULL, NULL),
	R("key with a bad byte", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n\r\n", DONE, 400,
	    0, NULL, NULL, NULL),
	R("key in the URL alphabet", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA_A==\r\n\r\n", DONE, 400,
	    0, NULL, NULL, NULL),
	R("key of 25 bytes", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==A\r\n\r\n", DONE, 400,
	    0, NULL, NULL, NULL),
	R("key without padding", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n\r\n", DONE, 400, 0,
	    NULL, NULL, NULL),
	R("empty key", 0, RL H_HOST H_UPG H_CONN H_VER
	    "Sec-WebSocket-Key:\r\n\r\n", DONE, 400, 0, NULL, NULL, NULL),
	R("other subprotocol only", 0, RL H_HOST WS
	    "Sec-WebSocket-Protocol: chat\r\n\r\n", DONE, 400, 0,
	    "tinyvex.v1 not offered", NULL, "Accept"),
	R("subprotocol case differs", 0, RL H_HOST WS
	    "Sec-WebSocket-Protocol: Tinyvex.V1\r\n\r\n", DONE, 400, 0, NULL,
	    NULL, NULL),
	R("empty subprotocol header", 0, RL H_HOST WS
	    "Sec-WebSocket-Protocol:\r\n\r\n", DONE, 400, 0, NULL, NULL, NULL),

	/* Host. */
	R("Host missing", 0, RL WS "\r\n", DONE, 403, 0, "Host not allowed",
	    NULL, "Accept"),
	R("Host evil.com", 0, RL "Host: evil.com\r\n" WS "\r\n", DONE, 403, 0,
	    "Host not allowed", NULL, NULL),
	R("Host localhost:7878", 0, RL "Host: localhost:7878\r\n" WS "\r\n",
	    DONE, 101, 0, ACCEPT, NULL, NULL),
	R("Host LOCALHOST", 0, RL "Host: LOCALHOST\r\n" WS "\r\n", DONE, 101,
	    0, ACCEPT, NULL, NULL),
	R("Host localhost.", 0, RL "Host: localhost.\r\n" WS "\r\n", DONE,
	    403, 0, NULL, NULL, NULL),
	R("Host [::1]:7878", 0, RL "Host: [::1]:7878\r\n" WS "\r\n", DONE,
	    101, 0, ACCEPT, NULL, NULL),
	R("Host rebinding name 127.0.0.1.nip.io", 0, RL
	    "Host: 127.0.0.1.nip.io:7878\r\n" WS "\r\n", DONE, 403, 0, NULL,
	    NULL, NULL),
	R("Host rebinding name localhost.evil.com", 0, RL
	    "Host: localhost.evil.com\r\n" WS "\r\n", DONE, 403, 0, NULL, NULL,
	    NULL),
	R("Host port not digits", 0, RL "Host: 127.0.0.1:abc\r\n" WS "\r\n",
	    DONE, 403, 0, NULL, NULL, NULL),
	R("Host empty", 0, RL "Host:\r\n" WS "\r\n", DONE, 403, 0, NULL, NULL,
	    NULL),
	R("Host is the listen address", 2, RL "Host: 192.168.1.20:7878\r\n" WS
	    "\r\n", DONE, 101, 0, ACCEPT, NULL, NULL),
	R("Host is another LAN address", 2, RL "Host: 192.168.1.21:7878\r\n"
	    WS "\r\n", DONE, 403, 0, NULL, NULL, NULL),
	R("Host 0.0.0.0 on a wildcard listener", 3, RL "Host: 0.0.0.0:7878\r\n"
	    WS "\r\n", DONE, 403, 0, NULL, NULL, NULL),
	R("Host of a bare IPv6 listen address", 4, RL "Host: [fe80::1]:7878\r\n"
	    WS "\r\n", DONE, 101, 0, ACCEPT, NULL, NULL),

	/* Origin. */
	R("Origin http://localhost:3000", 0, RL H_HOST
	    "Origin: http://localhost:3000\r\n" WS "\r\n", DONE, 101, 0,
	    ACCEPT, NULL, NULL),
	R("Origin https://127.0.0.1", 0, RL H_HOST
	    "Origin: https://127.0.0.1\r\n" WS "\r\n", DONE, 101, 0, ACCEPT,
	    NULL, NULL),
	R("Origin http://[::1]:8080", 0, RL H_HOST
	    "Origin: http://[::1]:8080\r\n" WS "\r\n", DONE, 101, 0, ACCEPT,
	    NULL, NULL),
	R("Origin null", 0, RL H_HOST "Origin: null\r\n" WS "\r\n", DONE, 403,
	    0, "Origin not allowed", NULL, "Accept"),
	R("Origin cross-site", 0, RL H_HOST "Origin: https://evil.com\r\n" WS
	    "\r\n", DONE, 403, 0, "Origin not allowed", NULL, NULL),
	R("Origin localhost.evil.com", 0, RL H_HOST
	    "Origin: http://localhost.evil.com\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("Origin 127.0.0.1.nip.io", 0, RL H_HOST
	    "Origin: http://127.0.0.1.nip.io\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("Origin with a fragment trick", 0, RL H_HOST
	    "Origin: http://evil.com#@localhost\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("Origin with userinfo", 0, RL H_HOST
	    "Origin: http://a@localhost\r\n" WS "\r\n", DONE, 403, 0, NULL,
	    NULL, NULL),
	R("Origin with a path", 0, RL H_HOST "Origin: http://localhost/\r\n"
	    WS "\r\n", DONE, 403, 0, NULL, NULL, NULL),
	R("Origin on the allow-list", 0, RL H_HOST
	    "Origin: https://app.example.com\r\n" WS "\r\n", DONE, 101, 0,
	    ACCEPT, NULL, NULL),
	R("Origin on the allow-list, other case", 0, RL H_HOST
	    "Origin: HTTPS://App.Example.COM\r\n" WS "\r\n", DONE, 101, 0,
	    ACCEPT, NULL, NULL),
	R("Origin allow-list needs an exact match", 0, RL H_HOST
	    "Origin: https://app.example.com:443\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("Origin custom scheme on the allow-list", 0, RL H_HOST
	    "Origin: tauri://localhost\r\n" WS "\r\n", DONE, 101, 0, ACCEPT,
	    NULL, NULL),
	R("Origin ws://localhost", 0, RL H_HOST "Origin: ws://localhost\r\n"
	    WS "\r\n", DONE, 403, 0, NULL, NULL, NULL),
	R("Origin empty", 0, RL H_HOST "Origin:\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("Origin allow-listed elsewhere only", 2, RL
	    "Host: 192.168.1.20\r\nOrigin: https://app.example.com\r\n" WS
	    "\r\n", DONE, 403, 0, NULL, NULL, NULL),

	/* Token. */
	R("bearer matches", 1, RL H_HOST "Authorization: Bearer " TOKEN
	    "\r\n" WS "\r\n", DONE, 101, 1, ACCEPT, NULL, TOKEN),
	R("bearer scheme in lower case", 1, RL H_HOST
	    "authorization: bearer " TOKEN "\r\n" WS "\r\n", DONE, 101, 1,
	    ACCEPT, NULL, NULL),
	R("bearer after two spaces", 1, RL H_HOST
	    "Authorization: Bearer  " TOKEN "\r\n" WS "\r\n", DONE, 101, 1,
	    ACCEPT, NULL, NULL),
	R("no Authorization with a token set", 1, RL H_HOST WS "\r\n", DONE,
	    101, 0, ACCEPT, NULL, NULL),
	R("wrong bearer", 1, RL H_HOST "Authorization: Bearer nope\r\n" WS
	    "\r\n", DONE, 403, 0, "token refused", NULL, "Accept"),
	R("bearer is a prefix of the token", 1, RL H_HOST
	    "Authorization: Bearer s3cr3t-T0ke\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("bearer extends the token", 1, RL H_HOST
	    "Authorization: Bearer " TOKEN "x\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("bearer with trailing words", 1, RL H_HOST
	    "Authorization: Bearer " TOKEN " extra\r\n" WS "\r\n", DONE, 403,
	    0, NULL, NULL, NULL),
	R("Bearer without a token", 1, RL H_HOST "Authorization: Bearer\r\n"
	    WS "\r\n", DONE, 403, 0, NULL, NULL, NULL),
	R("Basic credentials", 1, RL H_HOST
	    "Authorization: Basic dXNlcjpwYXNz\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("bearer ignored without a token", 0, RL H_HOST
	    "Authorization: Bearer whatever\r\n" WS "\r\n", DONE, 101, 0,
	    ACCEPT, NULL, NULL),
	R("Basic refused without a token", 0, RL H_HOST
	    "Authorization: Basic dXNlcjpwYXNz\r\n" WS "\r\n", DONE, 403, 0,
	    NULL, NULL, NULL),
	R("bearer with padding", 0, RL H_HOST
	    "Authorization: Bearer abc/+.~_-==\r\n" WS "\r\n", DONE, 101, 0,
	    ACCEPT, NULL, NULL),
	R("bearer of padding only", 0, RL H_HOST
	    "Authorization: Bearer ==\r\n" WS "\r\n", DONE, 403, 0, NULL,
	    NULL, NULL),
	R("bearer with a quote", 0, RL H_HOST
	    "Authorization: Bearer \"abc\"\r\n" WS "\r\n", DONE, 403, 0, NULL,
	    NULL, NULL),
	R("good token, refused Host", 1, RL "Host: evil.com\r\n"
	    "Authorization: Bearer " TOKEN "\r\n" WS "\r\n", DONE, 403, 0,
	    "Host not allowed", NULL, NULL),

	/* Malformed request lines. */
	R("HTTP/1.0", 0, "GET /sync HTTP/1.0\r\n" H_HOST WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("HTTP/2.0", 0, "GET /sync HTTP/2.0\r\n" H_HOST WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("http/1.1 in lower case", 0, "GET /sync http/1.1\r\n" H_HOST WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("absolute form", 0, "GET http://localhost/sync HTTP/1.1\r\n" H_HOST
	    WS "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("asterisk form", 0, "OPTIONS * HTTP/1.1\r\n" H_HOST "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("two spaces", 0, "GET  /sync HTTP/1.1\r\n" H_HOST WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("no version", 0, "GET /sync\r\n" H_HOST WS "\r\n", BAD, 0, -1, NULL,
	    NULL, NULL),
	R("space after the version", 0, "GET /sync HTTP/1.1 \r\n" H_HOST WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("HT in the request line", 0, "GET\t/sync HTTP/1.1\r\n" H_HOST WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("fragment in the target", 0, "GET /sync#x HTTP/1.1\r\n" H_HOST WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("bad percent-encoding", 0, "GET /sy%zc HTTP/1.1\r\n" H_HOST WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("truncated percent-encoding", 0, "GET /sync% HTTP/1.1\r\n" H_HOST WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("non-ASCII in the target", 0, "GET /s\xc3\xbfnc HTTP/1.1\r\n" H_HOST
	    WS "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("blank line before the request", 0, "\r\n" RL H_HOST WS "\r\n", BAD,
	    0, -1, NULL, NULL, NULL),
	R("16-byte method", 0, "ABCDEFGHIJKLMNOP /sync HTTP/1.1\r\n" H_HOST
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("method not a token", 0, "G@T /sync HTTP/1.1\r\n" H_HOST "\r\n", BAD,
	    0, -1, NULL, NULL, NULL),
	R("NUL in the request line", 0, "GET /sy\0nc HTTP/1.1\r\n" H_HOST WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),

	/* Malformed line endings and bytes. */
	R("bare LF everywhere", 0, "GET /sync HTTP/1.1\nHost: localhost\n\n",
	    BAD, 0, -1, NULL, NULL, NULL),
	R("bare LF in one header", 0, RL H_HOST "X-A: b\n" WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("bare LF as the blank line", 0, RL H_HOST WS "\n", BAD, 0, -1, NULL,
	    NULL, NULL),
	R("bare CR in a value", 0, RL H_HOST "X-A: b\rc\r\n" WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("NUL in a value", 0, RL H_HOST "X-A: b\0c\r\n" WS "\r\n", BAD, 0, -1,
	    NULL, NULL, NULL),
	R("control byte in a value", 0, RL H_HOST "X-A: b\x01\r\n" WS "\r\n",
	    BAD, 0, -1, NULL, NULL, NULL),
	R("DEL in a value", 0, RL H_HOST "X-A: b\x7f\r\n" WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("ESC in a name", 0, RL H_HOST "X-\x1b: b\r\n" WS "\r\n", BAD, 0, -1,
	    NULL, NULL, NULL),

	/* Malformed header lines. */
	R("obs-fold", 0, RL H_HOST "X-A: a\r\n b\r\n" WS "\r\n", BAD, 0, -1,
	    NULL, NULL, NULL),
	R("obs-fold with HT", 0, RL H_HOST "X-A: a\r\n\tb\r\n" WS "\r\n", BAD,
	    0, -1, NULL, NULL, NULL),
	R("first header indented", 0, RL " Host: localhost\r\n" WS "\r\n", BAD,
	    0, -1, NULL, NULL, NULL),
	R("space before the colon", 0, RL "Host : localhost\r\n" WS "\r\n",
	    BAD, 0, -1, NULL, NULL, NULL),
	R("no colon", 0, RL H_HOST "Xlocalhost\r\n" WS "\r\n", BAD, 0, -1, NULL,
	    NULL, NULL),
	R("empty name", 0, RL H_HOST ": x\r\n" WS "\r\n", BAD, 0, -1, NULL,
	    NULL, NULL),
	R("name not a token", 0, RL H_HOST "X(A): b\r\n" WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("non-ASCII name", 0, RL H_HOST "X-\xc3\xa9: b\r\n" WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("duplicate Host", 0, RL H_HOST H_HOST WS "\r\n", BAD, 0, -1, NULL,
	    NULL, NULL),
	R("duplicate Host, other case", 0, RL H_HOST "host: evil.com\r\n" WS
	    "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("duplicate key", 0, RL H_HOST WS H_KEY "\r\n", BAD, 0, -1, NULL, NULL,
	    NULL),
	R("duplicate version", 0, RL H_HOST WS H_VER "\r\n", BAD, 0, -1, NULL,
	    NULL, NULL),
	R("duplicate Origin", 0, RL H_HOST "Origin: http://localhost\r\n"
	    "Origin: http://localhost\r\n" WS "\r\n", BAD, 0, -1, NULL, NULL,
	    NULL),
	R("duplicate Authorization", 1, RL H_HOST "Authorization: Bearer "
	    TOKEN "\r\nAuthorization: Bearer " TOKEN "\r\n" WS "\r\n", BAD, 0,
	    -1, NULL, NULL, NULL),
	R("Content-Length: 5", 0, RL H_HOST WS "Content-Length: 5\r\n\r\n",
	    BAD, 0, -1, NULL, NULL, NULL),
	R("Content-Length not digits", 0, RL H_HOST WS
	    "Content-Length: +0\r\n\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("Content-Length empty", 0, RL H_HOST WS "Content-Length:\r\n\r\n",
	    BAD, 0, -1, NULL, NULL, NULL),
	R("Content-Length twice", 0, RL H_HOST WS "Content-Length: 0\r\n"
	    "Content-Length: 0\r\n\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("Transfer-Encoding", 0, RL H_HOST WS
	    "Transfer-Encoding: chunked\r\n\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("Connection element not a token", 0, RL H_HOST H_UPG
	    "Connection: Upgrade, (x)\r\n" H_KEY H_VER "\r\n", BAD, 0, -1,
	    NULL, NULL, NULL),
	R("Upgrade element with a space", 0, RL H_HOST "Upgrade: web socket\r\n"
	    H_CONN H_KEY H_VER "\r\n", BAD, 0, -1, NULL, NULL, NULL),
	R("Upgrade element with two slashes", 0, RL H_HOST
	    "Upgrade: a/b/c\r\n" H_CONN H_KEY H_VER "\r\n", BAD, 0, -1, NULL,
	    NULL, NULL),
	R("subprotocol element with a space", 0, RL H_HOST WS
	    "Sec-WebSocket-Protocol: tinyvex.v1 chat\r\n\r\n", BAD, 0, -1,
	    NULL, NULL, NULL),
	R("version over its field", 0, RL H_HOST H_UPG H_CONN H_KEY
	    "Sec-WebSocket-Version: 1313131313131313\r\n\r\n", BAD, 0, -1,
	    NULL, NULL, NULL),

	/* Incomplete heads. */
	R("nothing yet", 0, "", MORE, 0, -1, NULL, NULL, NULL),
	R("request line only", 0, RL, MORE, 0, -1, NULL, NULL, NULL),
	R("no blank line", 0, RL H_HOST WS, MORE, 0, -1, NULL, NULL, NULL),
	R("half a CRLF", 0, RL H_HOST WS "\r", MORE, 0, -1, NULL, NULL, NULL),
};

static const char *
parse_name(enum http_parse r)
{
	switch (r) {
	case HTTP_PARSE_DONE:
		return "DONE";
	case HTTP_PARSE_MORE:
		return "MORE";
	case HTTP_PARSE_BAD:
		return "BAD";
	case HTTP_PARSE_TOOBIG:
		return "TOOBIG";
	}
	return "?";
}

/* Parse a copy of exactly n bytes, so a read past them is caught. */
static enum http_parse
parse_copy(const char *p, size_t n, struct http_request *req, size_t *hl)
{
	enum http_parse	 r;
	char		*c;

	c = xmalloc(n);
	if (n > 0)
		memcpy(c, p, n);
	r = http_parse_head(c, n, req, hl);
	free(c);
	return r;
}

/*
 * Feed the head c bytes at a time.  Before the last byte the parser must
 * say MORE, or for a head that ends BAD or TOOBIG, that verdict early and
 * then stay with it; at the end, the verdict and request of the whole.
 */
static void
feed_chunks(const char *name, const char *p, size_t len, size_t c,
    enum http_parse want, const struct http_request *ref, size_t refhl)
{
	struct http_request	 req;
	enum http_parse		 r;
	size_t			 n, hl;
	char			 what[128];

	for (n = 0;;) {
		n = len - n < c ? len : n + c;
		hl = 0;
		r = parse_copy(p, n, &req, &hl);
		if (n < len && r == MORE)
			continue;
		if (n < len && want != DONE && want != MORE && r == want)
			return;
		if (n < len) {
			snprintf(what, sizeof(what), "chunks of %zu: %s after "
			    "%zu of %zu bytes", c, parse_name(r), n, len);
			check(0, what, name);
			return;
		}
		snprintf(what, sizeof(what), "chunks of %zu: %s at the end, "
		    "want %s", c, parse_name(r), parse_name(want));
		check(r == want, what, name);
		if (r == DONE && want == DONE) {
			snprintf(what, sizeof(what), "chunks of %zu: same "
			    "request and length", c);
			check(hl == refhl &&
			    memcmp(&req, ref, sizeof(req)) == 0, what, name);
		}
		return;
	}
}

static void
split_all(const char *name, const char *p, size_t len, enum http_parse want,
    const struct http_request *ref, size_t refhl)
{
	static const size_t	 some[] = { 1, 2, 7, 100, 1000, 4096 };
	size_t			 c, i;

	if (len == 0)
		return;
	if (len <= MAX_SPLIT_ALL) {
		for (c = 1; c <= len; c++)
			feed_chunks(name, p, len, c, want, ref, refhl);
		return;
	}
	for (i = 0; i < nitems(some); i++)
		feed_chunks(name, p, len, some[i], want, ref, refhl);
	feed_chunks(name, p, len, len, want, ref, refhl);
}

/*
 * Check the shape every answer must have: a status line with the expected
 * code, CRLF line ends, a head ended by CRLFCRLF, and for any answer but
 * 101 a JSON body of its Content-Length and Connection: close.
 */
static void
check_response(const char *name, const struct buf *out, int status)
{
	const char	*end, *cl, *s;
	char		 want[32];
	size_t		 headlen, i;
	int		 crlf = 1;

	snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
	check(out->len > strlen(want) &&
	    strncmp(out->data, want, strlen(want)) == 0, want, name);
	if ((end = strstr(out->data, "\r\n\r\n")) == NULL) {
		check(0, "response head ends with CRLFCRLF", name);
		return;
	}
	headlen = (size_t)(end - out->data) + 4;
	for (i = 0; i < headlen; i++)
		if (out->data[i] == '\n' &&
		    (i == 0 || out->data[i - 1] != '\r'))
			crlf = 0;
	check(crlf, "every line of the answer ends with CRLF", name);
	check(strstr(out->data, "Sec-WebSocket-Extensions") == NULL,
	    "no Sec-WebSocket-Extensions", name);
	if (status == 101) {
		check(headlen == out->len, "nothing after the 101 head", name);
		check(strstr(out->data, "\r\nUpgrade: websocket\r\n") != NULL &&
		    strstr(out->data, "\r\nConnection: Upgrade\r\n") != NULL,
		    "101 has Upgrade and Connection", name);
		return;
	}
	cl = strstr(out->data, "\r\nContent-Length: ");
	check(cl != NULL && cl < end && (size_t)strtoul(cl + 18, NULL, 10) ==
	    out->len - headlen, "Content-Length is the body's length", name);
	s = strstr(out->data, "\r\nConnection: ");
	check(s != NULL && s < end && strstr(s, "close\r\n") != NULL &&
	    strstr(s, "close\r\n") < end, "Connection: close", name);
	check(strstr(out->data, "\r\nContent-Type: application/json\r\n") !=
	    NULL, "Content-Type: application/json", name);
	check(out->len > headlen && out->data[headlen] == '{' &&
	    out->data[out->len - 1] == '}', "a JSON object body", name);
	if (status != 200)
		check(strstr(end, "\"error\":\"") != NULL, "an error name",
		    name);
}

static void
run_case(const char *name, const struct http_policy *pol, const char *head,
    size_t len, enum http_parse parse, int status, int token_ok,
    const char *const *want, size_t nwant, const char *unwant)
{
	struct http_request	 req;
	struct buf		 out;
	enum http_verdict	 v;
	enum http_parse		 r;
	size_t			 hl = 0, i;
	int			 tok = -1;
	char			 what[160];

	r = parse_copy(head, len, &req, &hl);
	printf("%-44s %-6s", name, parse_name(r));
	snprintf(what, sizeof(what), "parse gives %s, want %s", parse_name(r),
	    parse_name(parse));
	check(r == parse, what, name);
	split_all(name, head, len, parse, &req, hl);
	if (r != DONE || parse != DONE) {
		printf("\n");
		return;
	}
	check(hl == len, "head length is the whole head", name);

	/* Bytes after the head are not the parser's business. */
	{
		static const char	 tail[] = "\x81\x85garbage\r\n\0\r\n";
		struct http_request	 req2;
		size_t			 hl2 = 0;
		char			*more;

		more = xmalloc(len + sizeof(tail));
		memcpy(more, head, len);
		memcpy(more + len, tail, sizeof(tail));
		r = http_parse_head(more, len + sizeof(tail), &req2, &hl2);
		check(r == DONE && hl2 == len &&
		    memcmp(&req, &req2, sizeof(req)) == 0,
		    "same result with bytes after the head", name);
		free(more);
	}

	buf_init(&out);
	v = http_decide(&req, pol, &out, &tok);
	printf(" %.*s\n", (int)(strchr(out.data, '\r') - out.data), out.data);
	check_response(name, &out, status);
	check((v == HTTP_UPGRADE) == (status == 101),
	    "verdict UPGRADE exactly for 101", name);
	if (token_ok != -1) {
		snprintf(what, sizeof(what), "token_ok %d, want %d", tok,
		    token_ok);
		check(tok == token_ok, what, name);
	}
	for (i = 0; i < nwant; i++) {
		if (want[i] == NULL)
			continue;
		snprintf(what, sizeof(what), "answer has \"%s\"", want[i]);
		check(strstr(out.data, want[i]) != NULL, what, name);
	}
	if (unwant != NULL) {
		snprintf(what, sizeof(what), "answer lacks \"%s\"", unwant);
		check(strstr(out.data, unwant) == NULL, what, name);
	}
	buf_free(&out);
}

static void
test_table(void)
{
	size_t	 i;

	printf("== request heads (%zu) ==\n", nitems(cases));
	for (i = 0; i < nitems(cases); i++)
		run_case(cases[i].name, &policies[cases[i].policy],
		    cases[i].head, cases[i].len, cases[i].parse,
		    cases[i].status, cases[i].token_ok, cases[i].want,
		    nitems(cases[i].want), cases[i].unwant);
}

/* A valid upgrade head padded with one X-Pad header to total bytes. */
static char *
padded_head(size_t total)
{
	static const char	 base[] = RL H_HOST WS;
	struct buf		 b;
	size_t			 pad;

	pad = total - (sizeof(base) - 1) - strlen("X-Pad: \r\n\r\n");
	buf_init(&b);
	buf_adds(&b, base);
	buf_adds(&b, "X-Pad: ");
	while (pad-- > 0)
		buf_addc(&b, 'a');
	buf_adds(&b, "\r\n\r\n");
	if (b.len != total) {
		fprintf(stderr, "padded_head: %zu != %zu\n", b.len, total);
		exit(1);
	}
	return buf_steal(&b, NULL);
}

/* A valid upgrade head with n header lines in all. */
static char *
counted_head(size_t n)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b);
	buf_adds(&b, RL H_HOST WS);
	for (i = 5; i < n; i++)
		buf_printf(&b, "X-H%zu: v\r\n", i);
	buf_adds(&b, "\r\n");
	return buf_steal(&b, NULL);
}

/* A request for a path of n bytes. */
static char *
path_head(size_t n)
{
	struct buf	 b;

	buf_init(&b);
	buf_adds(&b, "GET /");
	while (--n > 0)
		buf_addc(&b, 'p');
	buf_adds(&b, "?q=1 HTTP/1.1\r\n" H_HOST WS "\r\n");
	return buf_steal(&b, NULL);
}

static char *
long_host_head(size_t n)
{
	struct buf	 b;

	buf_init(&b);
	buf_adds(&b, RL "Host: ");
	while (n-- > 0)
		buf_addc(&b, 'h');
	buf_adds(&b, "\r\n" WS "\r\n");
	return buf_steal(&b, NULL);
}

static void
test_limits(void)
{
	const struct http_policy	*pol = &policies[0];
	const char			*hit = ACCEPT;
	char				*h;

	printf("== limits ==\n");
	h = padded_head(HTTP_MAX_HEAD);
	run_case("head of exactly HTTP_MAX_HEAD bytes", pol, h, strlen(h),
	    DONE, 101, 0, &hit, 1, NULL);
	free(h);
	h = padded_head(HTTP_MAX_HEAD + 1);
	run_case("head one byte over HTTP_MAX_HEAD", pol, h, strlen(h),
	    TOOBIG, 0, -1, NULL, 0, NULL);
	free(h);
	h = padded_head(HTTP_MAX_HEAD * 3);
	run_case("head three times HTTP_MAX_HEAD", pol, h, strlen(h), TOOBIG,
	    0, -1, NULL, 0, NULL);
	/* A NUL seen before the limit is still malformed. */
	h[100] = '\0';
	run_case("NUL early in an over-long head", pol, h,
	    HTTP_MAX_HEAD * 3, BAD, 0, -1, NULL, 0, NULL);
	free(h);

	h = counted_head(HTTP_MAX_HEADERS);
	run_case("HTTP_MAX_HEADERS header lines", pol, h, strlen(h), DONE,
	    101, 0, &hit, 1, NULL);
	free(h);
	h = counted_head(HTTP_MAX_HEADERS + 1);
	run_case("one header line over HTTP_MAX_HEADERS", pol, h, strlen(h),
	    TOOBIG, 0, -1, NULL, 0, NULL);
	free(h);

	h = path_head(sizeof(((struct http_request *)0)->path) - 1);
	run_case("path that fills its field", pol, h, strlen(h), DONE, 404,
	    0, NULL, 0, NULL);
	free(h);
	h = path_head(sizeof(((struct http_request *)0)->path));
	run_case("path one byte over its field", pol, h, strlen(h), BAD, 0,
	    -1, NULL, 0, NULL);
	free(h);
	h = path_head(HTTP_MAX_HEAD + 100);
	run_case("path over the head limit", pol, h, strlen(h), TOOBIG, 0, -1,
	    NULL, 0, NULL);
	free(h);

	h = long_host_head(sizeof(((struct http_request *)0)->host) - 1);
	run_case("Host that fills its field", pol, h, strlen(h), DONE, 403, 0,
	    NULL, 0, NULL);
	free(h);
	h = long_host_head(sizeof(((struct http_request *)0)->host));
	run_case("Host one byte over its field", pol, h, strlen(h), BAD, 0,
	    -1, NULL, 0, NULL);
	free(h);
}

static void
test_request_fields(void)
{
	static const char	 head[] = "GET /sync?a=b HTTP/1.1\r\n"
	    "Host: [::1]:7878\r\nOrigin: http://localhost:5173\r\n"
	    "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
	    "Sec-WebSocket-Key:  dGhlIHNhbXBsZSBub25jZQ== \r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Protocol: chat, tinyvex.v1\r\n"
	    "Authorization: Bearer abc.def\r\n\r\n";
	struct http_request	 req;
	size_t			 hl;
	const char		*n = "fields";

	printf("== parsed fields ==\n");
	check(http_parse_head(head, sizeof(head) - 1, &req, &hl) == DONE,
	    "parses", n);
	check(strcmp(req.method, "GET") == 0, "method", n);
	check(strcmp(req.path, "/sync") == 0, "path without the query", n);
	check(req.has_host && strcmp(req.host, "[::1]:7878") == 0, "host", n);
	check(req.has_origin && strcmp(req.origin, "http://localhost:5173") ==
	    0, "origin", n);
	check(req.upgrade_websocket && req.connection_upgrade,
	    "upgrade and connection", n);
	check(req.has_ws_key && strcmp(req.ws_key,
	    "dGhlIHNhbXBsZSBub25jZQ==") == 0, "key trimmed", n);
	check(req.has_ws_version && strcmp(req.ws_version, "13") == 0,
	    "version", n);
	check(req.offered_protocols && req.offered_tinyvex, "protocols", n);
	check(req.has_bearer && strcmp(req.bearer, "abc.def") == 0, "bearer",
	    n);
	check(http_parse_head(RL "\r\n", strlen(RL "\r\n"), &req, &hl) ==
	    DONE && !req.has_host && !req.has_origin && !req.has_bearer &&
	    !req.offered_protocols && !req.upgrade_websocket,
	    "absent headers leave their flags clear", n);
	printf("fields checked\n");
}

static void
test_host(void)
{
	static const struct {
		const char	*host;
		const char	*listen;
		int		 ok;
	} t[] = {
		{ "127.0.0.1", "127.0.0.1", 1 },
		{ "127.0.0.1:7878", NULL, 1 },
		{ "localhost", NULL, 1 },
		{ "LocalHost:80", NULL, 1 },
		{ "localhost:0", NULL, 1 },
		{ "localhost:65535", NULL, 1 },
		{ "localhost:00080", NULL, 1 },
		{ "localhost:000080", NULL, 0 },
		{ "[::1]", NULL, 1 },
		{ "[::1]:7878", NULL, 1 },
		{ "localhost.", NULL, 0 },
		{ "localhost.:7878", NULL, 0 },
		{ "::1", NULL, 0 },
		{ "::1", "::1", 0 },
		{ "[::1", NULL, 0 },
		{ "[::1]7878", NULL, 0 },
		{ "[]", NULL, 0 },
		{ "[0:0:0:0:0:0:0:1]", NULL, 0 },
		{ "[::ffff:127.0.0.1]", NULL, 0 },
		{ "127.0.0.1:", NULL, 0 },
		{ "127.0.0.1:123456", NULL, 0 },
		{ "127.0.0.1:65536", NULL, 0 },
		{ "127.0.0.1:+80", NULL, 0 },
		{ "127.0.0.1:80:80", NULL, 0 },
		{ "127.0.0.1:8a", NULL, 0 },
		{ "127.0.0.1 ", NULL, 0 },
		{ "", NULL, 0 },
		{ NULL, "127.0.0.1", 0 },
		{ "evil.com", "127.0.0.1", 0 },
		{ "localhost.evil.com", NULL, 0 },
		{ "127.0.0.1.nip.io", NULL, 0 },
		{ "127.1", NULL, 0 },
		{ "2130706433", NULL, 0 },
		{ "0x7f000001", NULL, 0 },
		{ "user@localhost", NULL, 0 },
		{ "localhost/x", NULL, 0 },
		{ "local host", NULL, 0 },
		{ "localhost%2e", NULL, 0 },
		{ "0.0.0.0", "0.0.0.0", 0 },
		{ "0.0.0.0", NULL, 0 },
		{ "[::]", "::", 0 },
		{ "[::]", "[::]", 0 },
		{ "", "", 0 },
		{ "192.168.1.20:7878", "192.168.1.20", 1 },
		{ "192.168.1.20", "192.168.1.20", 1 },
		{ "192.168.1.21", "192.168.1.20", 0 },
		{ "192.168.1.2", "192.168.1.20", 0 },
		{ "[fe80::1]:7878", "fe80::1", 1 },
		{ "[FE80::1]", "fe80::1", 1 },
		{ "[fe80::1]", "[fe80::1]", 1 },
		{ "fe80::1", "fe80::1", 0 },
		{ "[fe80::1]", "fe80::2", 0 },
		{ "myhost.lan:7878", "MyHost.lan", 1 },
		{ "myhost.lan.", "myhost.lan", 0 },
	};
	size_t	 i;
	int	 got;
	char	 what[160];

	printf("== Host rule (%zu) ==\n", nitems(t));
	for (i = 0; i < nitems(t); i++) {
		got = http_host_allowed(t[i].host, t[i].listen);
		snprintf(what, sizeof(what), "Host \"%s\" listen \"%s\": %d, "
		    "want %d", t[i].host ? t[i].host : "(null)",
		    t[i].listen ? t[i].listen : "(null)", got, t[i].ok);
		check(got == t[i].ok, what, "host");
	}
	printf("Host rule checked\n");
}

static void
test_origin(void)
{
	static char	*list[] = { "https://app.example.com",
	    "tauri://localhost", NULL, "http://[fd00::5]:8080", "null" };
	static const struct {
		const char	*origin;
		int		 ok;
	} t[] = {
		{ "http://localhost", 1 },
		{ "http://localhost:3000", 1 },
		{ "https://localhost", 1 },
		{ "HTTP://LOCALHOST", 1 },
		{ "HtTpS://LocalHost:65535", 1 },
		{ "http://127.0.0.1:8080", 1 },
		{ "http://[::1]", 1 },
		{ "https://[::1]:443", 1 },
		{ "null", 0 },
		{ "NULL", 0 },
		{ "", 0 },
		{ NULL, 0 },
		{ "http://localhost.", 0 },
		{ "http://localhost.evil.com", 0 },
		{ "http://127.0.0.1.nip.io", 0 },
		{ "http://evil.com#@localhost", 0 },
		{ "http://a@localhost", 0 },
		{ "http://localhost@evil.com", 0 },
		{ "http://localhost/", 0 },
		{ "http://localhost/path", 0 },
		{ "http://localhost?x", 0 },
		{ "http://localhost#x", 0 },
		{ "http://localhost:", 0 },
		{ "http://localhost:99999", 0 },
		{ "http://localhost:123456", 0 },
		{ "http://localhost:80x", 0 },
		{ "ws://localhost", 0 },
		{ "file://localhost", 0 },
		{ "httpx://localhost", 0 },
		{ "http:/localhost", 0 },
		{ "http//localhost", 0 },
		{ "http:localhost", 0 },
		{ "localhost", 0 },
		{ "http://", 0 },
		{ "http://:80", 0 },
		{ "://localhost", 0 },
		{ "http://[::1", 0 },
		{ "http://[0::1]", 0 },
		{ "http://%6cocalhost", 0 },
		{ " http://localhost", 0 },
		{ "http://localhost ", 0 },
		{ "http://local\thost", 0 },
		{ "http://0.0.0.0", 0 },
		{ "https://evil.com", 0 },
		{ "https://app.example.com", 1 },
		{ "https://APP.example.com", 1 },
		{ "http://app.example.com", 0 },
		{ "https://app.example.com:443", 0 },
		{ "https://app.example.com/", 0 },
		{ "https://app.example.com.evil.com", 0 },
		{ "https://sub.app.example.com", 0 },
		{ "tauri://localhost", 1 },
		{ "tauri://localhost:1", 0 },
		{ "http://[fd00::5]:8080", 1 },
		{ "http://[FD00::5]:8080", 1 },
		{ "http://[fd00::5]", 0 },
	};
	size_t	 i;
	int	 got;
	char	 what[160];

	printf("== Origin rule (%zu) ==\n", nitems(t));
	for (i = 0; i < nitems(t); i++) {
		got = http_origin_allowed(t[i].origin, list, nitems(list));
		snprintf(what, sizeof(what), "Origin \"%s\": %d, want %d",
		    t[i].origin ? t[i].origin : "(null)", got, t[i].ok);
		check(got == t[i].ok, what, "origin");
	}
	check(http_origin_allowed("https://app.example.com", NULL, 0) == 0,
	    "no allow-list", "origin");
	check(http_origin_allowed("http://localhost", NULL, 0) == 1,
	    "loopback without an allow-list", "origin");
	printf("Origin rule checked\n");
}

static void
test_token_equal(void)
{
	static const struct {
		const char	*a, *b;
		int		 eq;
	} t[] = {
		{ "", "", 1 },
		{ "a", "a", 1 },
		{ TOKEN, TOKEN, 1 },
		{ TOKEN, "s3cr3t-T0keN", 0 },
		{ TOKEN, "s3cr3t-T0ke", 0 },
		{ "s3cr3t-T0ke", TOKEN, 0 },
		{ TOKEN, "", 0 },
		{ "", TOKEN, 0 },
		{ "abc", "abd", 0 },
		{ "\x80", "\x81", 0 },
	};
	size_t	 i;
	char	 what[128];

	printf("== token comparison (%zu) ==\n", nitems(t));
	for (i = 0; i < nitems(t); i++) {
		snprintf(what, sizeof(what), "\"%s\" vs \"%s\"", t[i].a,
		    t[i].b);
		check(http_token_equal(t[i].a, t[i].b) == t[i].eq, what,
		    "token");
	}
}

static void
test_accept_and_errors(void)
{
	static const int	 codes[] = { 400, 403, 404, 405, 408, 426, 431,
	    500, 503 };
	struct buf		 out;
	char			 acc[29];
	size_t			 i;
	char			 name[32];

	printf("== accept key and error answers ==\n");
	memset(acc, 'x', sizeof(acc));
	http_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
	check(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
	    "RFC 6455 sample accept", "accept");
	http_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", acc);
	check(strcmp(acc, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0,
	    "second accept vector", "accept");

	for (i = 0; i < nitems(codes); i++) {
		snprintf(name, sizeof(name), "http_error %d", codes[i]);
		buf_init(&out);
		http_error(&out, codes[i], NULL);
		check_response(name, &out, codes[i]);
		if (codes[i] == 405)
			check(strstr(out.data, "\r\nAllow: GET\r\n") != NULL,
			    "Allow: GET", name);
		if (codes[i] == 426)
			check(strstr(out.data,
			    "\r\nSec-WebSocket-Version: 13\r\n") != NULL,
			    "Sec-WebSocket-Version: 13", name);
		buf_free(&out);
	}
	buf_init(&out);
	http_error(&out, 431, NULL);
	check(strncmp(out.data, "HTTP/1.1 431 Request Header Fields Too Large"
	    "\r\n", 46) == 0, "431 status line", "http_error 431");
	buf_reset(&out);
	http_error(&out, 403, "{\"error\":\"forbidden\",\"message\":\"x\"}");
	check(strstr(out.data, "\r\nContent-Length: 35\r\n\r\n"
	    "{\"error\":\"forbidden\",\"message\":\"x\"}") != NULL,
	    "a given body with its length", "http_error 403");
	buf_free(&out);
}

/* The hand-over to static.c, and If-None-Match. */
static void
test_static_policy(void)
{
	static const struct {
		const char		*head;
		int			 static_files;
		enum http_verdict	 verdict;
		int			 status;	/* 0: nothing written */
		const char		*want;
	} t[] = {
		{ "GET /index.html HTTP/1.1\r\n" H_HOST "\r\n", 1,
		    HTTP_STATIC, 0, NULL },
		{ "HEAD /a/b.js HTTP/1.1\r\n" H_HOST "\r\n", 1, HTTP_STATIC,
		    0, NULL },
		{ "GET / HTTP/1.1\r\nHost: localhost\r\n"
		    "Origin: https://evil.example\r\n\r\n", 1, HTTP_STATIC, 0,
		    NULL },
		{ "POST /index.html HTTP/1.1\r\n" H_HOST "\r\n", 1,
		    HTTP_ANSWERED, 405, "\r\nAllow: GET, HEAD\r\n" },
		{ "GET /index.html HTTP/1.1\r\nHost: evil.test\r\n\r\n", 1,
		    HTTP_ANSWERED, 403, "Host not allowed" },
		{ "GET /index.html HTTP/1.1\r\n\r\n", 1, HTTP_ANSWERED, 403,
		    "Host not allowed" },
		{ "GET /healthz HTTP/1.1\r\n" H_HOST "\r\n", 1, HTTP_ANSWERED,
		    200, NULL },
		{ "HEAD /sync HTTP/1.1\r\n" H_HOST "\r\n", 1, HTTP_ANSWERED,
		    405, "\r\nAllow: GET\r\n" },
		{ "GET /sync HTTP/1.1\r\n" H_HOST "\r\n", 1, HTTP_ANSWERED,
		    426, NULL },
		{ "GET /index.html HTTP/1.1\r\n" H_HOST "\r\n", 0,
		    HTTP_ANSWERED, 404, NULL },
	};
	struct http_policy	 pol = policies[0];
	struct http_request	 req;
	struct buf		 out;
	char			 head[512], want[16];
	size_t			 i, hl;
	int			 tok;

	printf("== static_dir hand-over (%zu) ==\n", nitems(t));
	buf_init(&out);
	for (i = 0; i < nitems(t); i++) {
		pol.static_files = t[i].static_files;
		buf_reset(&out);
		if (http_parse_head(t[i].head, strlen(t[i].head), &req, &hl) !=
		    DONE) {
			check(0, "parses", t[i].head);
			continue;
		}
		check(http_decide(&req, &pol, &out, &tok) == t[i].verdict,
		    "verdict", t[i].head);
		if (t[i].status == 0) {
			check(out.len == 0, "nothing written", t[i].head);
			continue;
		}
		snprintf(want, sizeof(want), "HTTP/1.1 %d ", t[i].status);
		check(out.len > 0 && strncmp(out.data, want, strlen(want)) == 0,
		    want, t[i].head);
		if (t[i].want != NULL)
			check(strstr(out.data, t[i].want) != NULL, t[i].want,
			    t[i].head);
	}
	buf_free(&out);

	snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n" H_HOST
	    "If-None-Match: W/\"a\", \"b\"\r\n\r\n");
	check(http_parse_head(head, strlen(head), &req, &hl) == DONE &&
	    req.has_if_none_match &&
	    strcmp(req.if_none_match, "W/\"a\", \"b\"") == 0,
	    "If-None-Match kept", "if-none-match");
	snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n" H_HOST
	    "If-None-Match: \"%0300d\"\r\n\r\n", 0);
	check(http_parse_head(head, strlen(head), &req, &hl) == DONE &&
	    !req.has_if_none_match, "an If-None-Match too long: as if absent",
	    "if-none-match");
	snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n" H_HOST
	    "If-None-Match: \"a\"\r\nIf-None-Match: \"b\"\r\n\r\n");
	check(http_parse_head(head, strlen(head), &req, &hl) == BAD,
	    "a second If-None-Match: 400", "if-none-match");
}

int
main(void)
{
	test_table();
	test_limits();
	test_request_fields();
	test_host();
	test_origin();
	test_token_equal();
	test_accept_and_errors();
	test_static_policy();
	printf("%ld checks, %d failed\n", nchecks, nfail);
	return nfail == 0 ? 0 : 1;
}
