/*
 * The files of static_dir, served read-only at "/" with GET and HEAD so
 * that a web app and the socket it talks to share one origin.  http.c has
 * already checked the method and the Host (as for /sync); here the path
 * is decoded (static_path_decode, pure and fuzzed), the file is opened
 * one component at a time beneath the directory's descriptor with
 * O_NOFOLLOW (so neither "..", nor a symbolic link, nor an absolute path
 * can lead out of it), and the answer is written: 200 with Content-Type,
 * Content-Length and ETag, 304 when If-None-Match matches, 301 to add the
 * '/' of a directory, 404 for anything missing or refused (no listing,
 * no hidden files, nothing but regular files), 403 for a file over
 * static_max_file_bytes.  Every answer closes the connection.
 *
 * A body is read into the connection's output buffer in pieces of
 * STATIC_CHUNK_BYTES, never beyond STATIC_FILL_BYTES (nor the
 * connection's output_soft_limit) unsent; the write callback refills it
 * once the client has taken all but STATIC_CHUNK_BYTES, so a large file
 * costs a bounded buffer and the event loop a short read per turn.  A
 * client that takes nothing for STATIC_WRITE_TIMEOUT is dropped.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "gatewayd.h"
#include "log.h"
#include "static.h"

#define STATIC_CHUNK_BYTES	(64 * 1024)	/* one read of a file */
#define STATIC_FILL_BYTES	(256 * 1024)	/* unsent bytes at most */
#define STATIC_WRITE_TIMEOUT	30		/* seconds without progress */

/* A file on its way to one client. */
struct static_xfer {
	TAILQ_ENTRY(static_xfer) entry;
	struct gateway		*gw;
	struct bufferevent	*bev;
	int			 fd;		/* the file; -1 once read */
	off_t			 off;		/* next byte to read */
	off_t			 end;		/* its size when opened */
};

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A byte no file name beneath static_dir may hold. */
static int
bad_byte(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '\\';
}

int
static_path_decode(const char *path, char *out, size_t outlen)
{
	size_t		 i, n, o = 0, depth = 0, comp = 0;
	int		 hi, lo;
	unsigned char	 c;

	if (outlen < STATIC_PATH_BUFLEN || path[0] != '/')
		return -1;
	n = strnlen(path, STATIC_MAX_PATH + 1);
	if (n > STATIC_MAX_PATH)
		return -1;
	for (i = 1; i <= n; i++) {
		c = (unsigned char)path[i];
		if (i == n || c == '/') {
			/* The end of a component (comp bytes long). */
			if (comp == 0) {
				if (i == n)
					break;	/* trailing '/': the index */
				return -1;	/* "//" */
			}
			if (++depth > STATIC_MAX_DEPTH)
				return -1;
			if (i == n) {
				out[o] = '\0';
				return 0;
			}
			out[o++] = '/';
			comp = 0;
			continue;
		}
		if (c == '?' || c == '#')
			return -1;
		if (c == '%') {
			if (n - i < 3)
				return -1;
			hi = hexval((unsigned char)path[i + 1]);
			lo = hexval((unsigned char)path[i + 2]);
			if (hi == -1 || lo == -1)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c == '/')
				return -1;
			i += 2;
		}
		if (bad_byte(c) || (comp == 0 && c == '.'))
			return -1;
		out[o++] = (char)c;
		comp++;
	}
	/* "/" or a path ending in '/': that directory's index. */
	if (++depth > STATIC_MAX_DEPTH)
		return -1;
	memcpy(out + o, STATIC_INDEX, sizeof(STATIC_INDEX));
	return 0;
}

const char *
static_content_type(const char *name)
{
	static const struct {
		const char	*ext;
		const char	*type;
	} types[] = {
		{ "html", "text/html; charset=utf-8" },
		{ "htm", "text/html; charset=utf-8" },
		{ "css", "text/css; charset=utf-8" },
		{ "js", "text/javascript; charset=utf-8" },
		{ "mjs", "text/javascript; charset=utf-8" },
		{ "json", "application/json" },
		{ "map", "application/json" },
		{ "webmanifest", "application/manifest+json" },
		{ "txt", "text/plain; charset=utf-8" },
		{ "md", "text/markdown; charset=utf-8" },
		{ "xml", "application/xml" },
		{ "svg", "image/svg+xml" },
		{ "png", "image/png" },
		{ "jpg", "image/jpeg" },
		{ "jpeg", "image/jpeg" },
		{ "gif", "image/gif" },
		{ "webp", "image/webp" },
		{ "avif", "image/avif" },
		{ "ico", "image/x-icon" },
		{ "wasm", "application/wasm" },
		{ "woff", "font/woff" },
		{ "woff2", "font/woff2" },
		{ "ttf", "font/ttf" },
		{ "otf", "font/otf" },
		{ "pdf", "application/pdf" },
		{ "mp4", "video/mp4" },
		{ "webm", "video/webm" },
		{ "mp3", "audio/mpeg" },
		{ "ogg", "audio/ogg" },
		{ "wav", "audio/wav" },
	};
	const char	*base, *dot;
	size_t		 i;

	base = strrchr(name, '/');
	base = base != NULL ? base + 1 : name;
	if ((dot = strrchr(base, '.')) != NULL)
		for (i = 0; i < nitems(types); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

void
static_etag(const struct stat *st, char out[STATIC_ETAG_BUFLEN])
{
	snprintf(out, STATIC_ETAG_BUFLEN, "\"%llx-%llx-%llx\"",
	    (unsigned long long)st->st_ino, (unsigned long long)st->st_size,
	    (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
	    (unsigned long long)st->st_mtim.tv_nsec);
}

int
static_etag_match(const char *inm, const char *etag)
{
	const char	*p = inm, *q;
	size_t		 len = strlen(etag);

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"')
			return 0;
		if ((q = strchr(p + 1, '"')) == NULL)
			return 0;
		if ((size_t)(q + 1 - p) == len && memcmp(p, etag, len) == 0)
			return 1;
		p = q + 1;
	}
}

/*
 * Open rel beneath the directory dirfd, one component at a time, never
 * following a symbolic link.  0 with *fd a regular file open for reading
 * and *st its status; 1 when rel names a directory; -1 when it names
 * nothing that may be served (errno set).
 */
static int
open_beneath(int dirfd, const char *rel, int *fd, struct stat *st)
{
	char		 comp[STATIC_PATH_BUFLEN];
	const char	*p = rel, *slash;
	int		 cur = dirfd, next, saved;
	size_t		 len;
	struct stat	 pst;

	*fd = -1;
	for (;;) {
		slash = strchr(p, '/');
		len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		memcpy(comp, p, len);
		comp[len] = '\0';
		if (slash == NULL)
			break;
		next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		saved = errno;
		if (cur != dirfd)
			close(cur);
		if (next == -1) {
			errno = saved;
			return -1;
		}
		cur = next;
		p = slash + 1;
	}
	/* The last one: look before opening (a FIFO must not block). */
	if ((next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(next, &pst) == -1)
		goto fail;
	if (S_ISDIR(pst.st_mode)) {
		close(next);
		if (cur != dirfd)
			close(cur);
		return 1;
	}
	if (!S_ISREG(pst.st_mode)) {
		errno = ENOENT;
		goto fail;
	}
	close(next);
	next = -1;
	if ((*fd = openat(cur, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC)) == -1 || fstat(*fd, st) == -1)
		goto fail;
	/* Replaced between the two opens: not what was looked at. */
	if (!S_ISREG(st->st_mode) || st->st_ino != pst.st_ino ||
	    st->st_dev != pst.st_dev) {
		errno = ENOENT;
		goto fail;
	}
	if (cur != dirfd)
		close(cur);
	return 0;
fail:
	saved = errno;
	if (next != -1)
		close(next);
	if (*fd != -1)
		close(*fd);
	*fd = -1;
	if (cur != dirfd)
		close(cur);
	errno = saved;
	return -1;
}

static void
xfer_free(struct static_xfer *x)
{
	TAILQ_REMOVE(&x->gw->static_xfers, x, entry);
	x->gw->nstatic--;
	if (x->fd != -1)
		close(x->fd);
	bufferevent_free(x->bev);
	free(x);
}

/* Read more of the file into the output buffer; -1 when it failed. */
static int
xfer_fill(struct static_xfer *x)
{
	struct evbuffer		*out = bufferevent_get_output(x->bev);
	struct evbuffer_iovec	 v;
	size_t			 limit, want, have;
	ssize_t			 n;

	limit = STATIC_FILL_BYTES;
	if (limit > x->gw->conf.output_soft_limit)
		limit = x->gw->conf.output_soft_limit;
	while (x->fd != -1 && (have = evbuffer_get_length(out)) < limit) {
		want = limit - have;
		if (want > STATIC_CHUNK_BYTES)
			want = STATIC_CHUNK_BYTES;
		if ((off_t)want > x->end - x->off)
			want = (size_t)(x->end - x->off);
		if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1)
			return -1;
		n = pread(x->fd, v.iov_base, want, x->off);
		if (n <= 0) {
			/* Shorter than its Content-Length: cut it off. */
			log_warnx("static_dir: read: %s", n == 0 ?
			    "file shrank" : strerror(errno));
			return -1;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(out, &v, 1);
		x->off += n;
		if (x->off == x->end) {
			close(x->fd);
			x->fd = -1;
			/* Called back once everything is out. */
			bufferevent_setwatermark(x->bev, EV_WRITE, 0, 0);
		}
	}
	return 0;
}

static void
xfer_written(struct bufferevent *bev, void *arg)
{
	struct static_xfer	*x = arg;

	if (x->fd == -1) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			xfer_free(x);
		return;
	}
	if (xfer_fill(x) == -1)
		xfer_free(x);
}

static void
xfer_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	xfer_free(arg);
}

void
static_serve(struct gateway *gw, struct bufferevent *bev,
    const struct http_request *req)
{
	struct static_xfer	*x;
	struct timeval		 tv = { STATIC_WRITE_TIMEOUT, 0 };
	struct stat		 st;
	struct buf		 out;
	char			 rel[STATIC_PATH_BUFLEN];
	char			 etag[STATIC_ETAG_BUFLEN];
	int			 fd = -1, rc, head;

	head = strcmp(req->method, "HEAD") == 0;
	x = xcalloc(1, sizeof(*x));
	x->gw = gw;
	x->bev = bev;
	x->fd = -1;
	TAILQ_INSERT_TAIL(&gw->static_xfers, x, entry);
	gw->nstatic++;
	bufferevent_setcb(bev, NULL, xfer_written, xfer_event, x);
	bufferevent_disable(bev, EV_READ);
	bufferevent_set_timeouts(bev, NULL, &tv);
	buf_init(&out);
	if (gw->static_fd == -1 || static_path_decode(req->path, rel,
	    sizeof(rel)) == -1 ||
	    (rc = open_beneath(gw->static_fd, rel, &fd, &st)) == -1) {
		http_error(&out, 404, NULL);
		goto send;
	}
	if (rc == 1) {
		/* A directory named without its '/': where its index is. */
		buf_printf(&out, "HTTP/1.1 301 Moved Permanently\r\n"
		    "Location: %s/\r\nConnection: close\r\n"
		    "Content-Length: 0\r\n\r\n", req->path);
		goto send;
	}
	if ((uint64_t)st.st_size > gw->conf.static_max_file_bytes) {
		log_info("static_dir: %s: %lld bytes, over "
		    "static_max_file_bytes", rel, (long long)st.st_size);
		http_error(&out, 403, "{\"error\":\"forbidden\",\"message\":"
		    "\"file over static_max_file_bytes\"}");
		goto send;
	}
	static_etag(&st, etag);
	if (req->has_if_none_match &&
	    static_etag_match(req->if_none_match, etag)) {
		buf_printf(&out, "HTTP/1.1 304 Not Modified\r\nETag: %s\r\n"
		    "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
		    etag);
		goto send;
	}
	buf_printf(&out, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
	    "Content-Length: %lld\r\nETag: %s\r\nCache-Control: no-cache\r\n"
	    "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
	    static_content_type(rel), (long long)st.st_size, etag);
	if (!head && st.st_size > 0) {
		x->fd = fd;
		fd = -1;
		x->end = st.st_size;
		bufferevent_setwatermark(bev, EV_WRITE, STATIC_CHUNK_BYTES, 0);
	}
send:
	if (fd != -1)
		close(fd);
	bufferevent_write(bev, out.data, out.len);
	buf_free(&out);
	if (x->fd != -1 && xfer_fill(x) == -1) {
		xfer_free(x);
		return;
	}
	bufferevent_enable(bev, EV_WRITE);
}

int
static_open(struct gateway *gw)
{
	gw->static_fd = -1;
	if (gw->conf.static_dir == NULL)
		return 0;
	if ((gw->static_fd = open(gw->conf.static_dir, O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		log_warn("static_dir %s", gw->conf.static_dir);
		return -1;
	}
	log_info("serving the files of %s at /", gw->conf.static_dir);
	return 0;
}

void
static_close(struct gateway *gw)
{
	while (!TAILQ_EMPTY(&gw->static_xfers))
		xfer_free(TAILQ_FIRST(&gw->static_xfers));
	if (gw->static_fd != -1)
		close(gw->static_fd);
	gw->static_fd = -1;
}
