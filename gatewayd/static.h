/*
 * Files of static_dir served read-only at "/" (tinyvex.conf(5)): the pure
 * parts, testable and fuzzable without sockets or files.  The request
 * path is decoded into a path beneath the directory that can never name
 * anything outside it; the content type comes from the file name's
 * extension; the entity tag from the file's identity, size and time.
 */
#ifndef TINYVEX_STATIC_H
#define TINYVEX_STATIC_H

#include <sys/stat.h>

#include <stddef.h>

#define STATIC_MAX_PATH		511	/* request path bytes, as sent */
#define STATIC_MAX_DEPTH	16	/* components of a decoded path */
#define STATIC_INDEX		"index.html"
/* A decoded path: at most the request path plus STATIC_INDEX. */
#define STATIC_PATH_BUFLEN	(STATIC_MAX_PATH + sizeof(STATIC_INDEX))
#define STATIC_ETAG_BUFLEN	64	/* a quoted entity tag and its NUL */

/*
 * Decode the request path path (origin-form, without the query) into
 * out, the path of a file relative to the directory: its components
 * joined by single '/', never empty, never starting with '/'.  A path
 * that ends in '/' (and "/" itself) names that directory's STATIC_INDEX.
 * Returns 0, or -1 when the path is refused: not starting with '/',
 * over STATIC_MAX_PATH bytes or STATIC_MAX_DEPTH components, a malformed
 * %XX, an empty component ("//"), a component that starts with '.'
 * (".", "..", hidden files), a byte (raw or decoded) that is NUL, a
 * control byte, DEL, '\\', or a decoded '/', and a raw '?' or '#'.
 * outlen must be at least STATIC_PATH_BUFLEN.
 */
int		 static_path_decode(const char *path, char *out,
		    size_t outlen);

/* The Content-Type for a file name, from its extension (any case). */
const char	*static_content_type(const char *name);

/* The entity tag of a file: "inode-size-mtime" in hex, quoted. */
void		 static_etag(const struct stat *, char out[STATIC_ETAG_BUFLEN]);

/*
 * 1 when an If-None-Match value (a list of entity tags, weak or strong,
 * or "*") matches etag by the weak comparison of RFC 9110, else 0.
 */
int		 static_etag_match(const char *if_none_match,
		    const char *etag);

#endif
