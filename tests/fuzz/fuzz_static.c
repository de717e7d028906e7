/*
 * Fuzz target for the request path decoder of static_dir
 * (gatewayd/static.c) and the If-None-Match matcher.  The input, as a
 * NUL-terminated string, is decoded; the checks: an accepted path is
 * relative, not empty, shorter than STATIC_PATH_BUFLEN, of at most
 * STATIC_MAX_DEPTH components, none empty and none starting with '.'
 * (so never "." or ".."), and holds no NUL, control byte, DEL or
 * backslash; a path of more than STATIC_MAX_PATH bytes is refused; and
 * the decoder writes nothing past the buffer it is given (an exact-size
 * heap buffer, so AddressSanitizer sees it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "static.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_beneath(const char *out)
{
	const char	*p = out, *slash;
	size_t		 len, depth = 0;

	need(out[0] != '\0' && out[0] != '/');
	need(strlen(out) < STATIC_PATH_BUFLEN);
	for (p = out; *p != '\0'; p++)
		need((unsigned char)*p >= 0x20 && *p != 0x7f && *p != '\\');
	for (p = out;; p = slash + 1) {
		slash = strchr(p, '/');
		len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		need(len > 0 && p[0] != '.');
		depth++;
		if (slash == NULL)
			break;
	}
	need(depth <= STATIC_MAX_DEPTH);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*path, *out;

	if ((path = malloc(size + 1)) == NULL)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';
	if ((out = malloc(STATIC_PATH_BUFLEN)) == NULL) {
		free(path);
		return 0;
	}
	if (static_path_decode(path, out, STATIC_PATH_BUFLEN) == 0) {
		need(strlen(path) <= STATIC_MAX_PATH);
		check_beneath(out);
	}
	(void)static_etag_match(path, "\"1f-2a-3b\"");
	free(out);
	free(path);
	return 0;
}
