/*
 * Fuzz the upgrade head parser and the HTTP policy: any bytes are parsed;
 * a complete head must end in CRLFCRLF within the limit, parse the same
 * when cut at its end and be incomplete one byte short; the answer to it
 * must be a well-formed response head.  The Host and Origin rules also
 * get the raw bytes as a string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

static char	*fuzz_origins[] = { "https://app.example.com",
    "tauri://localhost" };

static const struct http_policy fuzz_policy = {
	"::1", fuzz_origins, nitems(fuzz_origins), "s3cr3t-T0ken",
	"{\"ok\":true}"
};

static void
check_answer(const struct buf *out, int upgrade)
{
	const char	*end;

	if (out->len < strlen("HTTP/1.1 ") ||
	    memcmp(out->data, "HTTP/1.1 ", strlen("HTTP/1.1 ")) != 0)
		abort();
	if ((end = strstr(out->data, "\r\n\r\n")) == NULL)
		abort();
	if (upgrade && (size_t)(end - out->data) + 4 != out->len)
		abort();
	if (strstr(out->data, "Sec-WebSocket-Extensions") != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request	 req, req2;
	struct buf		 out;
	enum http_parse		 r;
	enum http_verdict	 v;
	const char		*p = (const char *)data;
	size_t			 hl = 0, hl2 = 0;
	char			*s;
	int			 tok;

	r = http_parse_head(p, size, &req, &hl);
	buf_init(&out);
	switch (r) {
	case HTTP_PARSE_DONE:
		if (hl < 4 || hl > size || hl > HTTP_MAX_HEAD ||
		    memcmp(p + hl - 4, "\r\n\r\n", 4) != 0)
			abort();
		if (http_parse_head(p, hl, &req2, &hl2) != HTTP_PARSE_DONE ||
		    hl2 != hl || memcmp(&req, &req2, sizeof(req)) != 0)
			abort();
		if (http_parse_head(p, hl - 1, &req2, &hl2) != HTTP_PARSE_MORE)
			abort();
		tok = -1;
		v = http_decide(&req, &fuzz_policy, &out, &tok);
		if (tok != 0 && tok != 1)
			abort();
		check_answer(&out, v == HTTP_UPGRADE);
		break;
	case HTTP_PARSE_MORE:
		if (size >= HTTP_MAX_HEAD)
			abort();
		break;
	case HTTP_PARSE_BAD:
		http_error(&out, 400, NULL);
		check_answer(&out, 0);
		break;
	case HTTP_PARSE_TOOBIG:
		http_error(&out, 431, NULL);
		check_answer(&out, 0);
		break;
	default:
		abort();
	}
	buf_free(&out);

	s = xstrndup(p, size);
	(void)http_host_allowed(s, s);
	(void)http_host_allowed(s, "fe80::1");
	(void)http_origin_allowed(s, fuzz_origins, nitems(fuzz_origins));
	(void)http_token_equal(s, fuzz_policy.token);
	free(s);
	return 0;
}
