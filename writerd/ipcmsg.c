/*
 * Decoding of the requests writerd receives from peers it does not trust:
 * IPC_HELLO and IPC_MUTATE from gateways on writer.sock, CTL_REQUEST from
 * tinyvexctl on control.sock.  Each decoder takes one frame body, checks
 * every field's type, length and count with the fail-closed readers of
 * ipc.c, and fills in a struct whose strings point into the body (not
 * NUL-terminated).  Nothing is allocated and nothing is acted on: the
 * callers in notify.c and control.c decide what a well-formed request
 * means.  A body that is short, long, mistyped, or holds a NUL byte in a
 * name is refused with -1.
 */
#include <string.h>

#include "proto/ctl.h"
#include "proto/ipc.h"
#include "writerd.h"

/* 1 when the n bytes at s hold a NUL byte. */
static int
has_nul(const char *s, size_t n)
{
	return n > 0 && memchr(s, '\0', n) != NULL;
}

/*
 * IPC_HELLO: version, gateway_id, pid.  The version is returned as sent;
 * the caller compares it with IPC_VERSION.  0 or -1.
 */
int
ipcmsg_hello(const unsigned char *body, size_t len, struct hello *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 3) == -1)
		return -1;
	ipc_get_u32(&r, &out->version);
	ipc_get_str(&r, &out->name, &out->namelen, IPC_MAX_ID_LEN);
	ipc_get_u64(&r, &out->pid);
	if (ipc_end(&r) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

/*
 * IPC_MUTATE: session_id, request_id (nil, a string or an integer that
 * fits int64), udf_path, args.  session_id, a string request_id and
 * udf_path hold no NUL byte.  0 or -1.
 */
int
ipcmsg_mutate(const unsigned char *body, size_t len, struct mutate_req *out)
{
	struct ipc_reader	 r;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 4) == -1)
		return -1;
	ipc_get_str(&r, &out->session_id, &out->session_idlen,
	    IPC_MAX_ID_LEN);
	switch (ipc_peek_kind(&r)) {
	case IPC_K_NIL:
		ipc_get_nil(&r);
		break;
	case IPC_K_STR:
		out->has_request_id = 1;
		ipc_get_str(&r, &out->request_id, &out->request_idlen,
		    IPC_MAX_ID_LEN);
		break;
	case IPC_K_UINT:
	case IPC_K_INT:
		out->has_request_id = 1;
		ipc_get_i64(&r, &out->request_num);
		break;
	default:
		goto fail;
	}
	ipc_get_str(&r, &out->udf_path, &out->udf_pathlen, IPC_MAX_UDF_LEN);
	ipc_get_str(&r, &out->args, &out->argslen, IPC_MAX_GW_FRAME);
	if (ipc_end(&r) == -1 ||
	    has_nul(out->session_id, out->session_idlen) ||
	    has_nul(out->udf_path, out->udf_pathlen) ||
	    (out->request_id != NULL &&
	    has_nul(out->request_id, out->request_idlen)))
		goto fail;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}

/*
 * CTL_REQUEST: version, command (at most CTLMSG_MAX_COMMAND bytes), and
 * at most CTL_MAX_ARGS args of at most CTL_MAX_ARG_LEN bytes each; the
 * command and the args hold no NUL byte.  The version is returned as
 * sent; the caller compares it with CTL_VERSION.  0 or -1.
 */
int
ctlmsg_request(const unsigned char *body, size_t len, struct ctl_request *out)
{
	struct ipc_reader	 r;
	uint32_t		 n, i;

	memset(out, 0, sizeof(*out));
	if (ipc_reader_init(&r, body, len, 3) == -1)
		return -1;
	ipc_get_u32(&r, &out->version);
	ipc_get_str(&r, &out->command, &out->commandlen, CTLMSG_MAX_COMMAND);
	if (ipc_get_array(&r, &n, CTL_MAX_ARGS) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (ipc_get_str(&r, &out->argv[i], &out->arglen[i],
		    CTL_MAX_ARG_LEN) == -1 ||
		    has_nul(out->argv[i], out->arglen[i]))
			goto fail;
	}
	out->argc = n;
	if (ipc_end(&r) == -1 || has_nul(out->command, out->commandlen))
		goto fail;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}
