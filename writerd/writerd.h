/*
 * writerd: the single writer.  One process owns the database read-write,
 * runs every mutation in order in group commits, and tells every gateway
 * what each commit changed.  This header is the map of the program: the
 * per-process context, then the functions of each file.
 */
#ifndef TINYVEX_WRITERD_H
#define TINYVEX_WRITERD_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdint.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "config.h"
#include "errors.h"
#include "htab.h"
#include "ipc.h"
#include "listen.h"
#include "proto/ctl.h"
#include "proto/ipc.h"
#include "store.h"
#include "util.h"
#include "validate.h"
#include "wctx.h"

#define WRITERD_HELLO_TIMEOUT	5		/* seconds for HELLO */
#define WRITERD_MAX_PENDING_GW	4096	/* queued mutations per gateway */

struct gwlink;

/* One mutation waiting for, or in, a group commit. */
struct mutation {
	TAILQ_ENTRY(mutation)	 entry;
	uint32_t		 gw_id;		/* its gateway: notify_gw_find */
	uint32_t		 seq;		/* the gateway's request number */
	char			*session_id;
	char			*request_key;	/* "s:…" / "i:…", NULL none */
	char			*udf_path;
	char			*args;		/* JSON text, as received */
	size_t			 argslen;
	/* Outcome, filled in by the group commit. */
	int64_t			 ts;
	struct tv_error		 err;		/* code 0: success */
	struct buf		 value;		/* JSON text of the value */
	struct buf		 notice;	/* IPC_COMMIT frame, if any */
};
TAILQ_HEAD(mutationq, mutation);

/* A connected gateway. */
struct gwlink {
	TAILQ_ENTRY(gwlink)	 entry;
	struct writerd		*wd;
	struct bufferevent	*bev;
	uint32_t		 id;		/* local number, never 0 */
	struct hentry		 hent;		/* in wd->gw_tab, by id */
	char			 name[IPC_MAX_ID_LEN + 1]; /* its gateway_id */
	pid_t			 pid;
	int			 ready;		/* HELLO received */
	int			 pending;	/* its mutations queued */
	struct event		*hello_timer;
	char			*stats;		/* last IPC_GW_STATS JSON */
	int64_t			 stats_at;	/* mono_us of that */
};
TAILQ_HEAD(gwlinkq, gwlink);

/* An admin client on control.sock. */
struct ctlconn {
	TAILQ_ENTRY(ctlconn)	 entry;
	struct writerd		*wd;
	struct bufferevent	*bev;
	uid_t			 uid;
	uint32_t		 id;		/* local number, never 0 */
	struct hentry		 hent;		/* in wd->ctl_tab, by id */
};
TAILQ_HEAD(ctlconnq, ctlconn);

/* Counters for status and stats. */
struct writer_stats {
	int64_t		 started_us;	/* now_us at start */
	uint64_t	 commits;	/* group commits */
	uint64_t	 mutations;	/* mutations run (ok or failed) */
	uint64_t	 mutations_ok;
	uint64_t	 replays;	/* idempotent replays */
	uint64_t	 group_max;	/* largest group */
	uint64_t	 gateways_dropped;
	uint64_t	 bad_frames;
	uint64_t	 gc_runs;	/* GC runs finished */
	uint64_t	 gc_deleted;	/* rows deleted by GC */
	uint64_t	 gc_steps;	/* GC steps, every run */
	int64_t		 gc_max_step_us;	/* longest GC step */
	int64_t		 gc_last_us;	/* now_us of the last GC run's end */
	uint64_t	 checkpoints;
	uint64_t	 checkpoints_truncated;	/* the WAL started over */
	int64_t		 wal_peak_bytes;	/* largest -wal seen by the timer */
	int64_t		 checkpoint_max_us;	/* longest checkpoint */
	/* For mutations per second: a one-second window. */
	uint64_t	 rate_base;
	int64_t		 rate_at;
	double		 rate;
};

/* gc.c: garbage collection, one short step per event-loop turn. */
enum gc_phase {
	GC_IDLE,		/* no run in progress */
	GC_DOCUMENTS,		/* document revisions up to the floor */
	GC_INDEXES,		/* index entry revisions up to the floor */
	GC_IDEMPOTENCY,		/* expired idempotency records */
	GC_VACUUM,		/* freed pages back to the file system */
	GC_NPHASES
};

#define GC_NSTMT		8	/* prepared statements of gc.c */
#define GC_MAX_WAITERS		CTL_MAX_CLIENTS	/* tinyvexctl gc waiting */
#define GC_STEP_BUCKETS		6	/* step duration histogram */

/*
 * A tinyvexctl gc waiting for the end of the run, by the id of its
 * connection: one that has gone is not found when the answer is due.
 */
struct gc_waiter {
	uint32_t	 ctl_id;	/* 0: slot free */
	uint32_t	 seq;		/* its request's number */
};

/* The run in progress (phase GC_IDLE: none) and its figures. */
struct gc_state {
	enum gc_phase	 phase;
	struct event	*ev;		/* the next step, after polling I/O */
	sqlite3_stmt	*stmt[GC_NSTMT];
	int64_t		 floor;		/* this run's retention floor */
	int		 floor_saved;	/* floor written to globals */
	int64_t		 idem_before;	/* records older than this expire */
	/* Cursor: the last revision or entry examined, in (ts, ...) order. */
	int64_t		 doc_ts;
	struct buf	 doc_id;
	int64_t		 idx_ts;
	int64_t		 idx_index;
	struct buf	 idx_key;
	int		 vacuum_pages;	/* pages per vacuum step, adapted */
	struct gc_waiter waiters[GC_MAX_WAITERS];
	/* This run's figures. */
	int64_t		 started_us;	/* mono_us at the start */
	uint64_t	 deleted_docs;
	uint64_t	 deleted_idx;
	uint64_t	 deleted_idem;
	int64_t		 pages_freed;
	uint64_t	 steps;
	int64_t		 step_total_us;
	int64_t		 max_step_us;	/* wall clock: the loop stood still */
	int64_t		 max_step_cpu_us;	/* of it, this thread on a CPU */
	uint64_t	 step_hist[GC_STEP_BUCKETS];	/* see gc.c */
	uint64_t	 phase_steps[GC_NPHASES];
	int64_t		 phase_us[GC_NPHASES];	/* time in each phase */
	int64_t		 phase_max_us[GC_NPHASES];	/* its longest step */
	char		 last_error[128];	/* why the last run failed */
	/* Checkpoints when the WAL passes journal_size_limit. */
	struct event	*ckpt_ev;	/* run one after this commit */
	int64_t		 ckpt_busy_us;	/* mono_us of the last busy one */
	int64_t		 frame_bytes;	/* bytes of a WAL frame */
};

/* registry.c: providers and action calls, by id (see there). */
#define REG_HASH_SIZE		1024	/* buckets of the call table */

/* A provider connection on some gateway. */
struct provider {
	TAILQ_ENTRY(provider)	 entry;
	uint32_t		 gw_id;		/* its gateway's link id */
	uint64_t		 id;		/* that gateway's number for it */
	char			*names[IPC_MAX_FUNCTIONS]; /* served */
	size_t			 nnames;
	int			 concurrency;	/* calls at once */
	int			 inflight;	/* calls sent, not over */
	uint64_t		 sent;		/* calls sent, ever */
	uint64_t		 completed, failed, timed_out;
};
TAILQ_HEAD(providerq, provider);

/* An action call, queued or running on a provider. */
struct acall {
	TAILQ_ENTRY(acall)	 entry;		/* every call, oldest first */
	TAILQ_ENTRY(acall)	 qentry;	/* the queue, while queued */
	struct acall		*hnext;		/* hash chain by id */
	uint64_t		 id;		/* writerd's call id */
	uint32_t		 caller_gw;	/* the caller's gateway link */
	uint32_t		 caller_seq;	/* that gateway's call number */
	uint32_t		 prov_gw;	/* running there; 0: queued */
	uint64_t		 prov_id;	/* on that provider */
	int			 queued;
	int64_t			 deadline;	/* mono_us: action_timeout */
	char			*session_id;	/* the caller's */
	char			*udf_path;
	char			*args;		/* JSON text */
	size_t			 argslen;
};
TAILQ_HEAD(acallq, acall);

struct registry {
	struct providerq	 providers;
	struct acallq		 calls;		/* every call, oldest first */
	struct acallq		 queue;		/* waiting, oldest first */
	size_t			 ncalls, nqueued;
	struct acall		*hash[REG_HASH_SIZE];
	uint64_t		 next_call;
	uint64_t		 gen;		/* bumped when providers go */
	struct event		*timer;		/* the oldest call's deadline */
	/* Figures, since the start. */
	uint64_t		 received, completed, failed, timed_out;
	uint64_t		 lost, cancelled, not_found, overloaded;
};

/* The process context: the only mutable global state of writerd. */
struct writerd {
	struct config		 conf;
	char			*statedir;
	char			*dbpath;
	char			*schema_path;	/* -s FILE, or NULL */
	struct schema		*schema;	/* the running schema, or NULL */
	char			*conf_path;	/* -f FILE, or NULL */
	struct store		*st;
	struct event_base	*base;
	struct listen_sock	*gw_listener;	/* writer.sock */
	struct listen_sock	*ctl_listener;	/* control.sock */
	struct event		*commit_ev;	/* run a group commit */
	struct event		*sig_ev[4];
	struct event		*timer_ev;	/* checkpoint, GC, rates */
	struct gwlinkq		 gateways;
	struct htab		 gw_tab;	/* gateways by id */
	struct ctlconnq		 ctlconns;
	struct htab		 ctl_tab;	/* control clients by id */
	size_t			 nctl;
	struct mutationq	 queue;		/* waiting for a group */
	struct mutationq	 group;		/* the group being answered */
	struct wctx		 wctx;		/* write context, reused */
	sqlite3_stmt		*idem_get;	/* idempotency record lookup */
	sqlite3_stmt		*idem_put;	/* idempotency record insert */
	sqlite3_stmt		*sp[3];		/* savepoint begin/release/undo */
	uint32_t		 next_gw_id;
	uint32_t		 next_ctl_id;
	int64_t			 max_ts;	/* newest committed ts */
	int64_t			 catalog_version;
	int			 catalog_stale;	/* reload before the next group */
	uid_t			 gw_uid;	/* uid gateways must have */
	gid_t			 gw_gid;
	int			 stopping;
	int64_t			 last_checkpoint_us;
	int64_t			 last_gc_us;
	struct gc_state		 gc;		/* gc.c */
	struct registry		 reg;		/* registry.c */
	struct writer_stats	 stats;
};

/* writerd.c */
void	 writerd_stop(struct writerd *);

/* wdinit.c */
void	 writerd_init(struct writerd *);
int	 writerd_setup(struct writerd *, const char *dir);
int	 writerd_open(struct writerd *, char *err, size_t errlen);
int	 writerd_listen(struct writerd *);
void	 writerd_close(struct writerd *);
void	 writerd_free(struct writerd *);

/* notify.c */
int	 notify_listen(struct writerd *, const char *path);
void	 notify_close_all(struct writerd *);
void	 notify_broadcast(struct writerd *, const struct buf *frame);
void	 notify_result(struct writerd *, struct mutation *);
void	 notify_set_log(struct writerd *, int verbose);
void	 mutation_free(struct mutation *);
struct gwlink *notify_gw_find(struct writerd *, uint32_t id);
int	 notify_send(struct writerd *, uint32_t gw_id, const struct buf *);

/* registry.c */
void	 registry_init(struct writerd *);
void	 registry_free(struct writerd *);
int	 registry_frame(struct writerd *, uint32_t gw_id,
	    const struct ipc_hdr *, const unsigned char *, size_t);
void	 registry_gw_gone(struct writerd *, uint32_t gw_id);
void	 registry_stats(struct writerd *, cJSON *);

/* commit.c */
void	 commit_schedule(struct writerd *);
void	 commit_run(struct writerd *);
int	 commit_open(struct writerd *);
void	 commit_close(struct writerd *);
typedef int	(*commit_fn)(struct writerd *, void *arg, struct tv_error *);
int	 commit_catalog(struct writerd *, commit_fn, void *arg,
	    struct tv_error *);

/* mutate.c: the built-in mutations, run inside a savepoint */
struct wctx;
int	 mutate_run(struct wctx *, const char *udf_path, const cJSON *args,
	    struct buf *value, struct tv_error *);

/* schema.c */
#define SCHEMA_MAX_BYTES	(1024 * 1024)	/* schema file size */

/* One index of the schema file. */
struct schema_index {
	char		 name[STORE_NAME_MAX + 1];
	char		*fields[STORE_MAX_INDEX_FIELDS];
	size_t		 nfields;
	int		 unique;
};

struct schema_table {
	char			 name[STORE_NAME_MAX + 1];
	struct schema_index	*indexes;
	size_t			 nindexes;
	struct vtype		*valid;		/* validator; NULL none */
};

struct schema {
	struct schema_table	*tables;
	size_t			 ntables;
};

struct schema	*schema_parse(const char *text, size_t len,
		    struct tv_error *);
void		 schema_free(struct schema *);
int		 schema_apply_file(struct writerd *, const char *path,
		    struct tv_error *);
/*
 * Check a document about to be stored in table against the validator of
 * the running schema sc (NULL, or a table without one: nothing to check).
 * 0, or -1 with err a ValidationError with data.path (validate.h).
 */
int		 schema_validate(const struct schema *, const char *table,
		    const cJSON *doc, struct tv_error *);

/* ipcmsg.c: decoders of what gateways and tinyvexctl send */
#define CTLMSG_MAX_COMMAND	63	/* bytes of a control command name */

/* IPC_HELLO.  Strings point into the body, not NUL-terminated. */
struct hello {
	uint32_t	 version;	/* as sent, not checked */
	const char	*name;		/* gateway_id */
	size_t		 namelen;
	uint64_t	 pid;
};

/* IPC_MUTATE.  Strings point into the body, not NUL-terminated. */
struct mutate_req {
	const char	*session_id;	/* "" without idempotency */
	size_t		 session_idlen;
	int		 has_request_id;	/* 0: nil */
	const char	*request_id;	/* a string request id, else NULL */
	size_t		 request_idlen;
	int64_t		 request_num;	/* an integer request id */
	const char	*udf_path;
	size_t		 udf_pathlen;
	const char	*args;		/* JSON text, as received */
	size_t		 argslen;
};

/* CTL_REQUEST.  Strings point into the body, not NUL-terminated. */
struct ctl_request {
	uint32_t	 version;	/* as sent, not checked */
	const char	*command;
	size_t		 commandlen;
	const char	*argv[CTL_MAX_ARGS];
	size_t		 arglen[CTL_MAX_ARGS];
	size_t		 argc;
};

int	 ipcmsg_hello(const unsigned char *, size_t, struct hello *);
int	 ipcmsg_mutate(const unsigned char *, size_t, struct mutate_req *);
int	 ctlmsg_request(const unsigned char *, size_t, struct ctl_request *);

/* control.c */
int	 control_listen(struct writerd *, const char *path);
void	 control_close_all(struct writerd *);
void	 control_answer(struct ctlconn *, uint32_t seq, int ok,
	    const char *json);
struct ctlconn *control_conn(struct writerd *, uint32_t id);

/* gc.c */
int	 gc_init(struct writerd *);
void	 gc_free(struct writerd *);
int	 gc_start(struct writerd *, int64_t keep_us, uint32_t ctl_id,
	    uint32_t seq, char *err, size_t errlen);
void	 gc_abort(struct writerd *, const char *why);
void	 gc_stats(struct writerd *, cJSON *);
int	 gc_checkpoint(struct writerd *, int wait_ms, int *nlog, int *nckpt);

#endif
