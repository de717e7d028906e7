/*
 * The error codes and kinds of the wire contract (JSON-RPC error objects),
 * shared by the gateway, which sends them, and writerd, whose mutation
 * outcomes carry them over IPC.
 */
#ifndef TINYVEX_ERRORS_H
#define TINYVEX_ERRORS_H

enum tv_code {
	TV_OK			= 0,
	TV_PARSE_ERROR		= -32700,
	TV_INVALID_REQUEST	= -32600,
	TV_METHOD_NOT_FOUND	= -32601,
	TV_INVALID_PARAMS	= -32602,
	TV_INTERNAL		= -32603,
	TV_NOT_CONNECTED	= -32001,
	TV_BASE_VERSION		= -32002,
	TV_VALIDATION		= -32003,
	TV_NOT_FOUND		= -32004,
	TV_CONFLICT		= -32005,
	TV_TOO_LARGE		= -32006,
	TV_OVERLOADED		= -32007,
	TV_UNAVAILABLE		= -32008,
	TV_UNAUTHORIZED		= -32009,
	TV_OUT_OF_RETENTION	= -32010,
	TV_ACTION_FAILED	= -32011,
};

#define TV_ERRMSG_MAX	256	/* longest error message */
#define TV_ERRDATA_MAX	1280	/* longest extra data, JSON text */

/*
 * An error as it travels: code, a message for people, and what error.data
 * carries besides "kind": a reason, and members given as the text of a
 * JSON object ({"path":"meta.tags[2]"} of a ValidationError that writerd
 * sends over IPC), or "" for none.
 */
struct tv_error {
	int		 code;			/* enum tv_code */
	char		 message[TV_ERRMSG_MAX];
	const char	*reason;	/* data.reason: a static string, or NULL */
	char		 data[TV_ERRDATA_MAX];	/* JSON object text, or "" */
};

static inline const char *
tv_kind(int code)
{
	switch (code) {
	case TV_PARSE_ERROR:		return "ParseError";
	case TV_INVALID_REQUEST:	return "InvalidRequest";
	case TV_METHOD_NOT_FOUND:	return "MethodNotFound";
	case TV_INVALID_PARAMS:		return "InvalidParams";
	case TV_NOT_CONNECTED:		return "NotConnected";
	case TV_BASE_VERSION:		return "BaseVersionMismatch";
	case TV_VALIDATION:		return "ValidationError";
	case TV_NOT_FOUND:		return "NotFound";
	case TV_CONFLICT:		return "Conflict";
	case TV_TOO_LARGE:		return "TooLarge";
	case TV_OVERLOADED:		return "Overloaded";
	case TV_UNAVAILABLE:		return "Unavailable";
	case TV_UNAUTHORIZED:		return "Unauthorized";
	case TV_OUT_OF_RETENTION:	return "OutOfRetention";
	case TV_ACTION_FAILED:		return "ActionFailed";
	default:			return "InternalError";
	}
}

/* 1 for the codes a mutation outcome may carry over IPC. */
static inline int
tv_code_is_outcome(int code)
{
	return code == TV_VALIDATION || code == TV_NOT_FOUND ||
	    code == TV_CONFLICT || code == TV_TOO_LARGE ||
	    code == TV_OVERLOADED || code == TV_INTERNAL ||
	    code == TV_UNAVAILABLE;
}

#endif
