/*
 * Messages between writerd and its gateways over writer.sock.  Framing and
 * the typed readers/builders are in common/ipc.h; this file lists every
 * message and its fields, in order.  A field list is a msgpack array; a
 * receiver rejects a message with a different number of fields or a field
 * of another type, and drops the link.
 *
 * No message carries SQL or a file path: a gateway names functions and
 * passes JSON arguments, and writerd decides everything else.
 */
#ifndef TINYVEX_PROTO_IPC_H
#define TINYVEX_PROTO_IPC_H

#define IPC_VERSION		1

/* Limits on what a gateway may send (writerd enforces them). */
#define IPC_MAX_GW_FRAME	(2 * 1024 * 1024)	/* one frame up */
#define IPC_MAX_ID_LEN		128	/* gateway id, session id, request id */
#define IPC_MAX_UDF_LEN		128	/* udfPath */
#define IPC_MAX_STATS_BYTES	(64 * 1024)	/* IPC_GW_STATS text */
/* Limits on what writerd sends: larger frames are refused by gateways. */
#define IPC_MAX_WR_FRAME	(16 * 1024 * 1024)
#define IPC_MAX_RESULT_MESSAGE	65536	/* IPC_RESULT message */
#define IPC_MAX_DOC_ID_LEN	64	/* document id of a write */
#define IPC_MAX_WRITE_KEYS	1024	/* index keys of one write */
#define IPC_MAX_KEY_BYTES	65536	/* one index key of a write */
/* A commit notice whose write set would pass this is sent without it. */
#define IPC_MAX_WRITESET_BYTES	(4 * 1024 * 1024)
/* Providers and actions (IPC_PROVIDE .. IPC_ACTION_DONE). */
#define IPC_MAX_FUNCTIONS	64	/* names in one PROVIDE or UNPROVIDE */
#define IPC_MAX_CONCURRENCY	1024	/* a provider's concurrency */
#define IPC_MAX_ACTION_TEXT	(IPC_MAX_GW_FRAME - 4096) /* args, value, data */
#define IPC_MAX_ACTION_MESSAGE	1024	/* a provider's error message */

enum ipc_type {
	/*
	 * gateway → writer, first message.
	 *   u32 version      IPC_VERSION
	 *   str gateway_id   (≤ IPC_MAX_ID_LEN)
	 *   u64 pid
	 */
	IPC_HELLO = 1,

	/*
	 * writer → gateway, answer to HELLO.
	 *   u32 version
	 *   i64 max_ts       newest committed ts
	 *   i64 catalog_version
	 */
	IPC_WELCOME = 2,

	/*
	 * gateway → writer: run one mutation.  seq is the gateway's request
	 * number, echoed in IPC_RESULT.
	 *   str session_id   (≤ IPC_MAX_ID_LEN; "" without idempotency)
	 *   nil | str | i64 request_id   (str ≤ IPC_MAX_ID_LEN)
	 *   str udf_path     (≤ IPC_MAX_UDF_LEN)
	 *   str args         JSON text of the args object
	 */
	IPC_MUTATE = 3,

	/*
	 * writer → gateway: the outcome of IPC_MUTATE number seq.  Sent after
	 * the IPC_COMMIT of its ts.
	 *   i64 ts           commit ts (also for a replayed outcome); 0 when
	 *                    the mutation failed without a recorded outcome
	 *   i64 code         0, or an enum tv_code
	 *   str message      "" on success (≤ IPC_MAX_RESULT_MESSAGE)
	 *   str value        JSON text of the value on success; on failure
	 *                    the error's data members as a JSON object
	 *                    ({"path": ...} of a ValidationError), or ""
	 */
	IPC_RESULT = 4,

	/*
	 * writer → gateway: one committed mutation.  Notices come in ts
	 * order and each names the ts before it, so a gateway can see a gap.
	 *   i64 ts
	 *   i64 prev_ts      the newest ts committed before this one
	 *   i64 catalog_version
	 *   nil | array writes   nil: too large, read the log instead
	 *     each write: array of 3
	 *       i64 table_id
	 *       str document id  (≤ IPC_MAX_DOC_ID_LEN)
	 *       array keys: for every index of the table (≤
	 *                   IPC_MAX_WRITE_KEYS), array of 3
	 *         i64 index_id
	 *         nil | bin old key  (nil: the document was not in it;
	 *                             ≤ IPC_MAX_KEY_BYTES)
	 *         nil | bin new key  (nil: the document left it)
	 */
	IPC_COMMIT = 5,

	/*
	 * gateway → writer, every few seconds: figures for tinyvexctl stats.
	 *   str stats        JSON object text (≤ IPC_MAX_STATS_BYTES)
	 */
	IPC_GW_STATS = 6,

	/*
	 * writer → gateway: log verbosity changed (tinyvexctl log).
	 *   u32 verbose
	 */
	IPC_SET_LOG = 7,

	/*
	 * gateway → writer: one of its connections serves these functions
	 * (added to what it served already).  seq is echoed in
	 * IPC_PROVIDED.  A name is an exact udfPath or a prefix ending in
	 * "/" and "*"; "db/" names are refused.
	 *   u64 provider     the gateway's number for the connection
	 *   u32 concurrency  1..IPC_MAX_CONCURRENCY calls at once
	 *   array functions  1..IPC_MAX_FUNCTIONS of
	 *     str name       (1..IPC_MAX_UDF_LEN, no NUL)
	 */
	IPC_PROVIDE = 8,

	/*
	 * writer → gateway: IPC_PROVIDE number seq is registered (code 0)
	 * or refused.
	 *   i64 code         0, or an enum tv_code
	 *   str message      "" on success
	 */
	IPC_PROVIDED = 9,

	/*
	 * gateway → writer: the provider no longer serves these names
	 * (calls already sent still finish).
	 *   u64 provider
	 *   array functions  0..IPC_MAX_FUNCTIONS of str name, as above
	 */
	IPC_UNPROVIDE = 10,

	/*
	 * gateway → writer: the provider's connection is gone; every call
	 * in flight on it fails Unavailable, outcome unknown.
	 *   u64 provider
	 */
	IPC_PROVIDER_GONE = 11,

	/*
	 * gateway → writer: a client calls an action.  seq is the gateway's
	 * call number, echoed in IPC_ACTION_DONE and named by
	 * IPC_ACTION_CANCEL.
	 *   str session_id   (≤ IPC_MAX_ID_LEN)
	 *   str udf_path     (1..IPC_MAX_UDF_LEN, no NUL)
	 *   str args         JSON text of the args object
	 *                    (≤ IPC_MAX_ACTION_TEXT)
	 */
	IPC_ACTION = 12,

	/*
	 * gateway → writer: the caller of action call number `call` left;
	 * nothing will read the answer.
	 *   u32 call         the seq of its IPC_ACTION
	 */
	IPC_ACTION_CANCEL = 13,

	/*
	 * writer → gateway: run a call on one of its providers.
	 *   u64 call         writerd's number for the call
	 *   u64 provider
	 *   str session_id   the caller's
	 *   str udf_path
	 *   str args         JSON text
	 */
	IPC_RUN = 14,

	/*
	 * writer → gateway: the call is over for writerd (timed out, or its
	 * caller left): tell the provider, forget the call.
	 *   u64 call
	 */
	IPC_RUN_CANCEL = 15,

	/*
	 * gateway → writer: the provider answered call `call`.
	 *   u64 call
	 *   i64 code         0, TV_ACTION_FAILED or TV_TOO_LARGE
	 *   i64 ts           highest ts sent to the provider's connection
	 *   str message      the provider's error message, "" on success
	 *                    (≤ IPC_MAX_ACTION_MESSAGE)
	 *   str text         JSON text: the value on success, else the
	 *                    error's data, "" without one
	 *                    (≤ IPC_MAX_ACTION_TEXT)
	 */
	IPC_RUN_DONE = 16,

	/*
	 * writer → gateway: the outcome of IPC_ACTION number seq.  Fields
	 * as IPC_RUN_DONE without the call; code may also be NotFound,
	 * Overloaded or Unavailable (outcome unknown once the call was
	 * sent to a provider).
	 *   i64 code
	 *   i64 ts
	 *   str message
	 *   str text
	 */
	IPC_ACTION_DONE = 17,
};

#endif
