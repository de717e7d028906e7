/*
 * The messages of providers and actions on writer.sock (IPC_PROVIDE ..
 * IPC_ACTION_DONE in proto/ipc.h): one decoder and one builder per
 * message, shared by writerd and gatewayd, and the rules for function
 * names.  Decoders take one frame body, check every field's type, length,
 * count and range with the fail-closed readers of ipc.c, and fill in a
 * struct whose strings point into the body (not NUL-terminated).  They
 * allocate nothing and act on nothing; a refused body (-1) leaves the
 * struct zeroed.
 */
#ifndef TINYVEX_ACTMSG_H
#define TINYVEX_ACTMSG_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "proto/ipc.h"

/* What a function name is (actmsg_name_kind). */
enum act_name {
	ACT_NAME_BAD = 0,	/* not a name a provider may serve */
	ACT_NAME_RESERVED,	/* well-formed, but under "db/" */
	ACT_NAME_EXACT,		/* one udfPath */
	ACT_NAME_PREFIX,	/* "prefix/" then "*": every udfPath under it */
};

/*
 * The kind of the name at s (len bytes): 1..IPC_MAX_UDF_LEN printable
 * ASCII bytes without space; '*' only as the last byte, after a '/' that
 * follows at least one byte.
 */
enum act_name actmsg_name_kind(const char *s, size_t len);

/*
 * 1 when the served name (exact or prefix, as actmsg_name_kind says)
 * matches udfPath path; a prefix matches a path that is longer than it
 * without the '*'.
 */
int	 actmsg_name_match(const char *name, size_t namelen, const char *path,
	    size_t pathlen);

/* IPC_PROVIDE and IPC_UNPROVIDE (concurrency 0 for the latter). */
struct actmsg_names {
	uint64_t	 provider;
	uint32_t	 concurrency;
	uint32_t	 n;
	const char	*name[IPC_MAX_FUNCTIONS];
	size_t		 namelen[IPC_MAX_FUNCTIONS];
};

/* IPC_ACTION and IPC_RUN (call and provider 0 for the former). */
struct actmsg_call {
	uint64_t	 call;
	uint64_t	 provider;
	const char	*session_id;
	size_t		 session_idlen;
	const char	*udf_path;
	size_t		 udf_pathlen;
	const char	*args;
	size_t		 argslen;
};

/* IPC_RUN_DONE, IPC_ACTION_DONE (call 0) and IPC_PROVIDED (code, message). */
struct actmsg_outcome {
	uint64_t	 call;
	int64_t		 code;
	int64_t		 ts;
	const char	*message;
	size_t		 messagelen;
	const char	*text;
	size_t		 textlen;
};

/*
 * Decoders: 0, or -1 with the output zeroed.  Function names must be
 * ACT_NAME_EXACT, ACT_NAME_PREFIX or ACT_NAME_RESERVED (the receiver
 * refuses the last); PROVIDE needs 1..IPC_MAX_FUNCTIONS of them and a
 * concurrency in 1..IPC_MAX_CONCURRENCY.  RUN_DONE's code is 0,
 * TV_ACTION_FAILED or TV_TOO_LARGE; ACTION_DONE's also NotFound,
 * ValidationError, Overloaded or Unavailable; ts is never negative.
 * Every string but a function name (printable ASCII) is valid UTF-8, so
 * that what is passed on verbatim is valid JSON text in a text frame.
 */
int	 actmsg_provide(const unsigned char *, size_t, struct actmsg_names *);
int	 actmsg_unprovide(const unsigned char *, size_t,
	    struct actmsg_names *);
int	 actmsg_provided(const unsigned char *, size_t,
	    struct actmsg_outcome *);
int	 actmsg_id(const unsigned char *, size_t, uint64_t *);	/* GONE, RUN_CANCEL */
int	 actmsg_cancel(const unsigned char *, size_t, uint32_t *);
int	 actmsg_action(const unsigned char *, size_t, struct actmsg_call *);
int	 actmsg_run(const unsigned char *, size_t, struct actmsg_call *);
int	 actmsg_run_done(const unsigned char *, size_t,
	    struct actmsg_outcome *);
int	 actmsg_action_done(const unsigned char *, size_t,
	    struct actmsg_outcome *);

/*
 * Builders: each starts msg (ipc_msg_init) and adds every field; the
 * caller finishes and frees it.
 */
void	 actmsg_build_names(struct ipc_msg *, uint32_t type, uint32_t seq,
	    uint64_t provider, uint32_t concurrency, const char *const *names,
	    const size_t *namelens, uint32_t n);
void	 actmsg_build_provided(struct ipc_msg *, uint32_t seq, int64_t code,
	    const char *message);
void	 actmsg_build_id(struct ipc_msg *, uint32_t type, uint64_t id);
void	 actmsg_build_cancel(struct ipc_msg *, uint32_t call);
void	 actmsg_build_call(struct ipc_msg *, uint32_t type, uint32_t seq,
	    const struct actmsg_call *);
void	 actmsg_build_outcome(struct ipc_msg *, uint32_t type, uint32_t seq,
	    const struct actmsg_outcome *);

#endif
