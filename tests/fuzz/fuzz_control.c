/*
 * Fuzz target for the control request decoder (ctlmsg_request in
 * writerd/ipcmsg.c), which control.c uses for every request read from
 * control.sock.  The input is the byte stream of one admin connection:
 * frames are cut from it the way control.c reads them (header bounds,
 * CTL_MAX_FRAME, ipc_frame_peek), and the body of each is decoded.  The
 * walk stops where control.c would close the connection.  Checked: a
 * refused body leaves the output zeroed; an accepted one has its command
 * and args inside the body, within CTLMSG_MAX_COMMAND, CTL_MAX_ARGS and
 * CTL_MAX_ARG_LEN, without NUL bytes; rebuilt with the message builder
 * it decodes to the same request; and no body with an extra byte, or cut
 * short by one, decodes at all.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/ctl.h"
#include "writerd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
all_zero(const void *p, size_t n)
{
	const unsigned char	*c = p;
	size_t			 i;

	for (i = 0; i < n; i++)
		if (c[i] != 0)
			return 0;
	return 1;
}

static int
same(const struct ctl_request *a, const struct ctl_request *b)
{
	size_t	 i;

	if (a->version != b->version || a->commandlen != b->commandlen ||
	    memcmp(a->command, b->command, a->commandlen) != 0 ||
	    a->argc != b->argc)
		return 0;
	for (i = 0; i < a->argc; i++)
		if (a->arglen[i] != b->arglen[i] ||
		    memcmp(a->argv[i], b->argv[i], a->arglen[i]) != 0)
			return 0;
	return 1;
}

static void
check(const unsigned char *body, size_t len, const struct ctl_request *q)
{
	struct ctl_request	 again;
	struct ipc_msg		 m;
	const struct buf	*f;
	unsigned char		*longer;
	size_t			 i;

	in_body(body, len, q->command, q->commandlen);
	need(q->commandlen <= CTLMSG_MAX_COMMAND &&
	    memchr(q->command, '\0', q->commandlen) == NULL);
	need(q->argc <= CTL_MAX_ARGS);
	for (i = 0; i < q->argc; i++) {
		in_body(body, len, q->argv[i], q->arglen[i]);
		need(q->arglen[i] <= CTL_MAX_ARG_LEN &&
		    memchr(q->argv[i], '\0', q->arglen[i]) == NULL);
	}
	for (; i < CTL_MAX_ARGS; i++)
		need(q->argv[i] == NULL && q->arglen[i] == 0);

	/* One byte more or less is not a request. */
	need(ctlmsg_request(body, len - 1, &again) == -1);
	longer = malloc(len + 1);
	need(longer != NULL);
	memcpy(longer, body, len);
	longer[len] = 0xc0;	/* msgpack nil */
	need(ctlmsg_request(longer, len + 1, &again) == -1);
	free(longer);

	ipc_msg_init(&m, CTL_REQUEST, 0, 3);
	ipc_add_u64(&m, q->version);
	ipc_add_str(&m, q->command, q->commandlen);
	ipc_add_array(&m, (uint32_t)q->argc);
	for (i = 0; i < q->argc; i++)
		ipc_add_str(&m, q->argv[i], q->arglen[i]);
	f = ipc_msg_finish(&m);
	need(ctlmsg_request((const unsigned char *)f->data + IPC_HDR_LEN,
	    f->len - IPC_HDR_LEN, &again) == 0 && same(q, &again));
	ipc_msg_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request	 q;
	struct ipc_hdr		 h;
	unsigned char		*body;
	size_t			 off = 0, len, blen;

	while (size - off >= IPC_HDR_LEN) {
		len = (size_t)data[off] << 24 | (size_t)data[off + 1] << 16 |
		    (size_t)data[off + 2] << 8 | data[off + 3];
		if (len < IPC_HDR_LEN || len > CTL_MAX_FRAME ||
		    size - off < len)
			break;
		if (ipc_frame_peek(data + off, len, CTL_MAX_FRAME, &h) <= 0)
			break;
		need(h.len == len);
		/* An exact copy, so that a read past the body is caught. */
		blen = len - IPC_HDR_LEN;
		body = malloc(blen == 0 ? 1 : blen);
		need(body != NULL);
		memcpy(body, data + off + IPC_HDR_LEN, blen);
		if (ctlmsg_request(body, blen, &q) == 0)
			check(body, blen, &q);
		else {
			need(all_zero(&q, sizeof(q)));
			free(body);
			break;	/* control.c closes the connection */
		}
		free(body);
		if (h.type != CTL_REQUEST)
			break;
		off += len;
	}
	return 0;
}
