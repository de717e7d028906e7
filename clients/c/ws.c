/*
 * The WebSocket client: the upgrade request, a strict reading of its
 * answer (status 101, the Sec-WebSocket-Accept for our key, the
 * tinyvex.v1 subprotocol, a head of at most TVX_MAX_HEAD bytes), then
 * wslay in client mode over two evbuffers.  Nothing here touches a
 * socket: the caller moves bytes between the evbuffers and the network
 * (or, in the tests and the fuzz harness, a script), so framing is tested
 * by feeding bytes.
 *
 * wslay does framing, masking, fragmentation, control frames, UTF-8 and
 * close codes; its maximum message length is max_message (a larger
 * message closes with 1009).  A binary message closes with 1003.
 */
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "tvx_int.h"

#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_PROTOCOL	"tinyvex.v1"

struct tvx_ws {
	wslay_event_context_ptr	 wslay;
	struct evbuffer		*in;	/* bytes from the server */
	struct evbuffer		*out;	/* bytes for the server */
	tvx_ws_text_cb		*on_text;
	void			*arg;
	const char		*why;	/* set when the connection is over */
};

void
tvx_ws_key(char key[25])
{
	unsigned char	 raw[16];

	arc4random_buf(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	key[24] = '\0';
}

int
tvx_ws_request(struct evbuffer *out, const char *host, const char *path,
    const char *key, const char *token)
{
	if (evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Protocol: " WS_PROTOCOL "\r\n"
	    "User-Agent: libtinyvex/" TVX_VERSION "\r\n",
	    path, host, key) < 0)
		return -1;
	if (token != NULL &&
	    evbuffer_add_printf(out, "Authorization: Bearer %s\r\n", token) < 0)
		return -1;
	return evbuffer_add(out, "\r\n", 2);
}

/* The value of header name in head (lines after the first), or NULL. */
static char *
header(char *head, const char *name, char *val, size_t vlen)
{
	char	*line, *next, *colon, *v, *e;
	size_t	 n = strlen(name);

	line = strstr(head, "\r\n");
	while (line != NULL) {
		line += 2;
		if ((next = strstr(line, "\r\n")) == NULL)
			break;
		colon = memchr(line, ':', (size_t)(next - line));
		if (colon != NULL && (size_t)(colon - line) == n &&
		    strncasecmp(line, name, n) == 0) {
			v = colon + 1;
			while (v < next && (*v == ' ' || *v == '\t'))
				v++;
			e = next;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t)(e - v) >= vlen)
				return NULL;
			memcpy(val, v, (size_t)(e - v));
			val[e - v] = '\0';
			return val;
		}
		line = next;
	}
	return NULL;
}

int
tvx_ws_response(struct evbuffer *in, const char *key, const char **why,
    int *status)
{
	struct evbuffer_ptr	 p;
	char			*head = NULL, val[256], accept[64];
	unsigned char		 md[EVP_MAX_MD_SIZE], src[64];
	unsigned int		 mdlen;
	size_t			 hlen;
	int			 rc = -1;

	*status = 0;
	p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (p.pos == -1) {
		if (evbuffer_get_length(in) > TVX_MAX_HEAD) {
			*why = "upgrade answer head too large";
			return -1;
		}
		return 0;
	}
	hlen = (size_t)p.pos + 4;
	if (hlen > TVX_MAX_HEAD) {
		*why = "upgrade answer head too large";
		return -1;
	}
	if ((head = malloc(hlen + 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	evbuffer_remove(in, head, hlen);
	head[hlen] = '\0';
	if (memchr(head, '\0', hlen) != NULL ||
	    strncmp(head, "HTTP/1.1 ", 9) != 0 || hlen < 12) {
		*why = "malformed upgrade answer";
		goto out;
	}
	*status = atoi(head + 9);
	if (*status != 101) {
		*why = "upgrade refused";
		goto out;
	}
	if (header(head, "Upgrade", val, sizeof(val)) == NULL ||
	    strcasecmp(val, "websocket") != 0) {
		*why = "upgrade answer without Upgrade: websocket";
		goto out;
	}
	if (header(head, "Sec-WebSocket-Protocol", val, sizeof(val)) == NULL ||
	    strcmp(val, WS_PROTOCOL) != 0) {
		*why = "upgrade answer without the tinyvex.v1 subprotocol";
		goto out;
	}
	if (strlen(key) + sizeof(WS_GUID) > sizeof(src)) {
		*why = "bad key";
		goto out;
	}
	memcpy(src, key, strlen(key));
	memcpy(src + strlen(key), WS_GUID, sizeof(WS_GUID) - 1);
	if (!EVP_Digest(src, strlen(key) + sizeof(WS_GUID) - 1, md, &mdlen,
	    EVP_sha1(), NULL)) {
		*why = "SHA-1 failed";
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)accept, md, (int)mdlen);
	if (header(head, "Sec-WebSocket-Accept", val, sizeof(val)) == NULL ||
	    strcmp(val, accept) != 0) {
		*why = "upgrade answer with a wrong Sec-WebSocket-Accept";
		goto out;
	}
	rc = 1;
out:
	free(head);
	return rc;
}

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *data, size_t len, int flags,
    void *arg)
{
	struct tvx_ws	*ws = arg;
	int		 n;

	(void)flags;
	n = evbuffer_remove(ws->in, data, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct tvx_ws	*ws = arg;

	(void)flags;
	if (evbuffer_get_length(ws->out) >= TVX_OUT_HIGH) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (evbuffer_add(ws->out, data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int
genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *arg)
{
	(void)ctx;
	(void)arg;
	arc4random_buf(buf, len);
	return 0;
}

static void
msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct tvx_ws	*ws = arg;

	if (ws->why != NULL)
		return;
	switch (m->opcode) {
	case WSLAY_TEXT_FRAME:
		ws->on_text(ws->arg, (const char *)m->msg, m->msg_length);
		break;
	case WSLAY_BINARY_FRAME:
		ws->why = "binary message from the server";
		wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
		    NULL, 0);
		wslay_event_shutdown_read(ctx);
		break;
	case WSLAY_CONNECTION_CLOSE:
		ws->why = "the server closed the connection";
		break;
	default:
		break;
	}
}

struct tvx_ws *
tvx_ws_new(struct evbuffer *in, struct evbuffer *out, size_t max_message,
    tvx_ws_text_cb *on_text, void *arg)
{
	struct wslay_event_callbacks	 cb = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.genmask_callback = genmask_cb,
		.on_msg_recv_callback = msg_cb,
	};
	struct tvx_ws			*ws;

	if ((ws = calloc(1, sizeof(*ws))) == NULL)
		return NULL;
	ws->in = in;
	ws->out = out;
	ws->on_text = on_text;
	ws->arg = arg;
	if (wslay_event_context_client_init(&ws->wslay, &cb, ws) != 0) {
		free(ws);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(ws->wslay, max_message);
	return ws;
}

void
tvx_ws_free(struct tvx_ws *ws)
{
	if (ws == NULL)
		return;
	wslay_event_context_free(ws->wslay);
	free(ws);
}

int
tvx_ws_proceed(struct tvx_ws *ws, const char **why)
{
	size_t	 before;

	for (;;) {
		before = evbuffer_get_length(ws->in) +
		    evbuffer_get_length(ws->out);
		if (ws->why == NULL && wslay_event_want_read(ws->wslay) &&
		    evbuffer_get_length(ws->in) > 0 &&
		    wslay_event_recv(ws->wslay) != 0)
			ws->why = "WebSocket protocol error from the server";
		if (wslay_event_want_write(ws->wslay) &&
		    wslay_event_send(ws->wslay) != 0 && ws->why == NULL)
			ws->why = "WebSocket send failed";
		if (before == evbuffer_get_length(ws->in) +
		    evbuffer_get_length(ws->out))
			break;
	}
	if (ws->why == NULL && !wslay_event_get_read_enabled(ws->wslay))
		ws->why = "WebSocket closed (a message over max_message, "
		    "or a protocol error)";
	*why = ws->why;
	return ws->why != NULL ? -1 : 0;
}

int
tvx_ws_send(struct tvx_ws *ws, const char *text, size_t len)
{
	struct wslay_event_msg	 m = {
		.opcode = WSLAY_TEXT_FRAME,
		.msg = (const uint8_t *)text,
		.msg_length = len,
	};

	if (ws->why != NULL)
		return -1;
	return wslay_event_queue_msg(ws->wslay, &m) == 0 ? 0 : -1;
}

size_t
tvx_ws_queued(struct tvx_ws *ws)
{
	return wslay_event_get_queued_msg_length(ws->wslay) +
	    evbuffer_get_length(ws->out);
}
