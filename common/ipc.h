/*
 * IPC framing and the msgpack message layer, used on writer.sock (writerd
 * and its gateways) and control.sock (writerd and tinyvexctl).
 *
 * A frame is a fixed 16-byte header, four uint32 in network order:
 *   len    the whole frame, header included, IPC_HDR_LEN..max
 *   type   the message type (proto/ipc.h, proto/ctl.h)
 *   seq    a request number chosen by the sender, echoed in the answer
 *   flags  reserved, must be 0
 * followed by exactly one msgpack array, the body.  The array's elements
 * are the message's fields, in the order proto/ipc.h lists them.
 *
 * Building uses msgpack-c's packer.  Reading does not unpack: a reader is
 * a cursor over the body that checks every type, length and count against
 * the bytes left before it returns anything, and allocates nothing.  Every
 * getter returns 0, or -1 on any mismatch (wrong type, value out of range,
 * truncated), after which the reader stays failed: every later call
 * returns -1 too, so a parser may check once at ipc_end.
 */
#ifndef TINYVEX_IPC_H
#define TINYVEX_IPC_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "util.h"

#define IPC_HDR_LEN		16
#define IPC_MAX_FRAME		(16 * 1024 * 1024)	/* absolute ceiling */
#define IPC_MAX_DEPTH		16	/* nesting ipc_skip accepts */

struct ipc_hdr {
	uint32_t	 len;		/* frame length, header included */
	uint32_t	 type;
	uint32_t	 seq;
	uint32_t	 flags;
};

/*
 * Look at the start of a receive buffer.  Returns 0 when fewer than a
 * header's or frame's bytes are there yet, the frame length (> 0) when a
 * whole frame is there (*hdr filled in), or -1 when the header is invalid:
 * len < IPC_HDR_LEN, len > maxlen, or flags != 0.
 */
long	 ipc_frame_peek(const unsigned char *p, size_t avail, size_t maxlen,
	    struct ipc_hdr *hdr);

struct evbuffer;

/*
 * The next whole frame at the start of a receive evbuffer, made
 * contiguous: returns 1 with *hdr and *frame (header included; valid until
 * the caller drains hdr->len bytes), 0 when no whole frame is there yet,
 * -1 when the header is invalid (as ipc_frame_peek says).  The length is
 * checked from the header alone, before anything is pulled up.
 */
int	 ipc_evbuffer_frame(struct evbuffer *in, size_t maxlen,
	    struct ipc_hdr *hdr, const unsigned char **frame);

/* A message under construction. */
struct ipc_msg {
	struct buf	 frame;		/* header placeholder, then the body */
	msgpack_packer	 pk;		/* writes into frame */
	uint32_t	 type, seq;
};

/*
 * Start a message whose body array has nfields fields.  The add functions
 * append one msgpack object each; ipc_add_array / ipc_add_map start a
 * container whose n elements (2n objects for a map) the caller adds next.
 * ipc_msg_finish fills in the header and returns the frame (owned by msg
 * until ipc_msg_free).
 */
void	 ipc_msg_init(struct ipc_msg *, uint32_t type, uint32_t seq,
	    uint32_t nfields);
void	 ipc_add_u64(struct ipc_msg *, uint64_t);
void	 ipc_add_i64(struct ipc_msg *, int64_t);
void	 ipc_add_bool(struct ipc_msg *, int);
void	 ipc_add_nil(struct ipc_msg *);
void	 ipc_add_str(struct ipc_msg *, const char *, size_t);
void	 ipc_add_cstr(struct ipc_msg *, const char *);
void	 ipc_add_bin(struct ipc_msg *, const void *, size_t);
void	 ipc_add_array(struct ipc_msg *, uint32_t n);
void	 ipc_add_map(struct ipc_msg *, uint32_t n);
void	 ipc_add_double(struct ipc_msg *, double);
const struct buf *ipc_msg_finish(struct ipc_msg *);
void	 ipc_msg_free(struct ipc_msg *);

/* msgpack object kinds, as ipc_peek_kind reports them. */
enum ipc_kind {
	IPC_K_NONE = 0,		/* no object left, or reader failed */
	IPC_K_NIL,
	IPC_K_BOOL,
	IPC_K_UINT,		/* positive integer */
	IPC_K_INT,		/* negative integer */
	IPC_K_FLOAT,
	IPC_K_STR,
	IPC_K_BIN,
	IPC_K_ARRAY,
	IPC_K_MAP,
	IPC_K_EXT,
};

struct ipc_reader {
	const unsigned char	*p;	/* body */
	size_t			 len;	/* body length */
	size_t			 off;	/* cursor */
	int			 failed;
};

/*
 * Start reading a body: it must begin with an array header declaring
 * exactly nfields elements.  Returns 0 or -1.
 */
int	 ipc_reader_init(struct ipc_reader *, const unsigned char *body,
	    size_t len, uint32_t nfields);
enum ipc_kind ipc_peek_kind(struct ipc_reader *);
int	 ipc_get_u64(struct ipc_reader *, uint64_t *);
int	 ipc_get_u32(struct ipc_reader *, uint32_t *);
int	 ipc_get_i64(struct ipc_reader *, int64_t *);	/* any integer that fits */
int	 ipc_get_bool(struct ipc_reader *, int *);
int	 ipc_get_nil(struct ipc_reader *);
int	 ipc_get_double(struct ipc_reader *, double *);
/* Strings and bins point into the body (no copy, not NUL-terminated). */
int	 ipc_get_str(struct ipc_reader *, const char **, size_t *, size_t max);
int	 ipc_get_bin(struct ipc_reader *, const void **, size_t *, size_t max);
/* A string or nil: nil gives *s = NULL, *len = 0. */
int	 ipc_get_str_or_nil(struct ipc_reader *, const char **, size_t *,
	    size_t max);
/*
 * A container header; *n is checked against max and against the bytes
 * left (every element takes at least one byte), before the caller loops.
 */
int	 ipc_get_array(struct ipc_reader *, uint32_t *n, uint32_t max);
int	 ipc_get_map(struct ipc_reader *, uint32_t *n, uint32_t max);
/* Skip one whole object of any kind, nesting at most IPC_MAX_DEPTH. */
int	 ipc_skip(struct ipc_reader *);
/* 0 when the reader has not failed and every byte was consumed. */
int	 ipc_end(struct ipc_reader *);

#endif
