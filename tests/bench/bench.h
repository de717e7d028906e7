/*
 * tinyvex-bench: the load generator and driver of the benchmark scenarios.
 * It starts writerd and gatewayd from the build directory in a temporary
 * state directory per scenario, opens as many WebSocket connections as a
 * scenario needs (libevent and wslay, client side), speaks the wire
 * contract, timestamps what it sends and receives with the monotonic
 * clock, measures each scenario's baseline in the same run, samples the
 * CPU and memory of every process from /proc, and writes the figures as
 * JSON and as a table.  This header is the map of the program.
 */
#ifndef TINYVEX_BENCH_H
#define TINYVEX_BENCH_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <wslay/wslay.h>

#include "util.h"

#define BENCH_MAX_LIST		8	/* values of a list flag */
#define BENCH_MAX_FIGURES	96	/* figures of one scenario */
#define BENCH_MAX_PROCS		48	/* process rows of one scenario */
#define BENCH_MAX_NOTES		16
#define BENCH_NOTE_LEN		400
#define BENCH_MAX_EXPECT	32	/* figures a scenario must produce */
#define BENCH_GEN_BOUND_PCT	90.0	/* generator CPU that makes it the
					   bottleneck */
#define BENCH_READY_US		(20 * 1000000LL) /* daemons to come up */
#define BENCH_CALL_US		(10 * 1000000LL) /* a setup call's answer */
#define BENCH_OPEN_US		(30 * 1000000LL) /* a few connections */
#define BENCH_OPEN_INFLIGHT	128	/* handshakes in flight at once */
#define WSC_MAX_HEAD		4096	/* HTTP answer head */
#define WSC_MAX_MESSAGE		(64 * 1024 * 1024) /* largest message read */
#define CL_BATCH_OPS		500	/* ops in one setup db/batch */
#define DOC_ID_LEN		26	/* Tinyvex document ids */

/* Sizes of every scenario: flags set them; --tiny shrinks all. */
struct sizes {
	int	 write_conns;		/* closed-loop inserting connections */
	double	 write_secs;		/* measured window */
	int	 write_rows;		/* baseline rows */
	int	 fanout[BENCH_MAX_LIST];/* subscriber counts */
	int	 nfanout;
	double	 fanout_secs;		/* per subscriber count */
	int	 idle_conns;
	int	 inval[BENCH_MAX_LIST];	/* subscription counts */
	int	 ninval;
	int	 inval_commits;		/* commits measured per count */
	int	 stream_threads;
	int	 stream_clients;
	int	 stream_bytes;		/* final size of a streamed message */
	int	 stream_history;	/* earlier messages per thread */
	int	 cold_docs;		/* documents of the large database */
	int	 cold_runs;		/* starts measured per database */
	int	 action_calls;		/* sequential calls per round trip */
	int	 action_callers;	/* closed-loop action callers */
	int	 action_providers;
	double	 action_secs;		/* measured window */
	int	 storm_clients;		/* reconnecting clients */
};

struct result;

/* The process context: the only mutable global state of the program. */
struct bench {
	struct event_base	*base;
	struct event		*tick;		/* wakes bench_wait */
	const char		*build;		/* build directory */
	const char		*tmp;		/* where state dirs go */
	const char		*out;		/* JSON results file */
	const char		*command;	/* as given, for the record */
	const char		*only;		/* scenario keys, or NULL */
	const char		*perfdir;	/* profile daemons into, or NULL */
	int			 tiny;
	int			 keep;		/* keep state directories */
	struct sizes		 sz;
	char			 writerd[512], gatewayd[512], ctl[512];
	char			 bcast[512], sql[512];
	struct result		*cur;		/* scenario running */
	const char		*cl_features;	/* JSON list clients' connect
						   asks for, or NULL */
};

/* bench.c */
int	 bench_wait(struct bench *, int (*done)(void *), void *arg,
	    int64_t timeout_us);
void	 bench_sleep(struct bench *, int64_t us);

/* proc.c: CPU and memory of a process, from /proc */
struct pstat {
	int64_t		 at_us;		/* mono_us of the sample */
	uint64_t	 cpu_ns;	/* schedstat, every thread */
	double		 user_s;	/* utime */
	double		 sys_s;		/* stime */
	uint64_t	 rss_kb;	/* VmRSS */
	uint64_t	 anon_kb;	/* RssAnon */
	uint64_t	 hwm_kb;	/* VmHWM */
};

struct pmon {
	char		 name[32];
	pid_t		 pid;
	struct pstat	 a, b;		/* window start, end */
};

int	 proc_read(pid_t, struct pstat *);
void	 pmon_start(struct pmon *, const char *name, pid_t);
void	 pmon_stop(struct pmon *);
double	 pmon_cpu_s(const struct pmon *);
double	 pmon_cpu_pct(const struct pmon *);

/* hist.c: latency histograms in microseconds */
#define HIST_SUB	64		/* sub-buckets per power of two */
#define HIST_EXP	40		/* powers of two */

struct hist {
	uint64_t	 n[HIST_EXP * HIST_SUB];
	uint64_t	 count;
	int64_t		 max, min;
	double		 sum;
};

void	 hist_init(struct hist *);
void	 hist_add(struct hist *, int64_t us);
void	 hist_merge(struct hist *, const struct hist *);
int64_t	 hist_pct(const struct hist *, double pct);

/* report.c: figures, the JSON file and the table */
enum aim { AIM_NONE, AIM_MET, AIM_MISSED };

struct figure {
	char		 name[64];
	char		 unit[16];
	double		 value;
	int		 has_baseline;
	double		 baseline;
	char		 aim_text[96];
	enum aim	 aim;
};

struct proc_fig {
	char		 phase[40];
	char		 name[32];
	double		 cpu_s, cpu_pct, user_s, sys_s;
	double		 rss_mb, anon_mb, hwm_mb;
	double		 secs;
};

struct result {
	const char	*key;
	const char	*title;
	const char	*baseline_desc;
	struct figure	 fig[BENCH_MAX_FIGURES];
	int		 nfig;
	struct proc_fig	 procs[BENCH_MAX_PROCS];
	int		 nprocs;
	char		 notes[BENCH_MAX_NOTES][BENCH_NOTE_LEN];
	int		 nnotes;
	int		 failed;
	char		 error[BENCH_NOTE_LEN];
	double		 secs;
	char		 expect[BENCH_MAX_EXPECT][64]; /* figures it owes */
	int		 nexpect;
};

struct figure *res_fig(struct result *, const char *name, const char *unit,
	    double value);
void	 fig_baseline(struct figure *, double);
void	 fig_aim(struct figure *, int met, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	 res_procs(struct result *, const char *phase, const struct pmon *,
	    int n);
void	 res_note(struct result *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	 res_fail(struct result *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	 res_expect(struct result *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 res_complete(const struct result *);
int	 report_json(struct bench *, struct result *, int n);
void	 report_table(FILE *, struct result *, int n);

/* wsc.c: a WebSocket client connection (libevent + wslay) */
enum wsc_state {
	WSC_CONNECTING,		/* TCP connect in progress */
	WSC_HANDSHAKE,		/* upgrade sent, waiting for 101 */
	WSC_OPEN,		/* messages flow */
	WSC_CLOSED		/* gone: err says why */
};

struct wsc;

struct wsc_ops {
	void	(*on_open)(struct wsc *, void *arg);
	/* A text message; t is mono_us when its bytes were read. */
	void	(*on_msg)(struct wsc *, void *arg, const char *, size_t,
		    int64_t t);
	/* Refused, dropped or closed; never called from wsc_free. */
	void	(*on_close)(struct wsc *, void *arg);
};

struct wsc {
	struct bench		*b;
	int			 fd;
	struct event		*rev, *wev;
	wslay_event_context_ptr	 ctx;
	enum wsc_state		 state;
	const struct wsc_ops	*ops;
	void			*arg;
	const char		*subproto;	/* offered, or NULL */
	char			 key[32];	/* Sec-WebSocket-Key */
	char			*head;		/* answer head so far */
	size_t			 headlen;
	unsigned char		*pre;		/* bytes after the head */
	size_t			 prelen, preoff;
	int			 in_recv;	/* inside wslay_event_recv */
	int64_t			 t_read;	/* mono_us of the last read */
	uint64_t		 rng;		/* masking keys */
	uint64_t		 bytes_in, msgs_in, bytes_out, msgs_out;
	int			 err;		/* errno, or -1: protocol */
	int			 index;		/* the owner's number */
};

struct wsc *wsc_open(struct bench *, int port, const char *subproto,
	    const struct wsc_ops *, void *arg);
int	 wsc_send(struct wsc *, const char *, size_t);
void	 wsc_free(struct wsc *);

/* client.c: JSON-RPC over a wsc, as the wire contract has it */
struct cl;

/* An answer: is_error set for an error object; t_sent of the call. */
typedef void	(*cl_done_fn)(struct cl *, void *arg, const char *msg,
		    size_t len, int is_error, int64_t t_sent);
/* A tinyvex/transition notification. */
typedef void	(*cl_trans_fn)(struct cl *, void *arg, const char *msg,
		    size_t len, int64_t t);

struct cl_pending {
	uint64_t	 id;
	cl_done_fn	 fn;
	void		*arg;
	int64_t		 t_sent;
};

struct cl {
	TAILQ_ENTRY(cl)		 entry;
	struct bench		*b;
	struct wsc		*ws;
	int			 port;
	int			 index;		/* the caller's number */
	uint64_t		 next_id;
	struct cl_pending	*pend;
	size_t			 npend, cappend;
	cl_trans_fn		 on_trans;
	cl_trans_fn		 on_request;	/* tinyvex/runAction, if set */
	void			*arg;
	int			 opened;	/* WebSocket open */
	int			 connected;	/* tinyvex/connect answered */
	int			 closed;
	int			 no_connect;	/* open only */
	uint64_t		 qs;		/* query-set version sent */
	uint64_t		 transitions, answers, errors;
	uint64_t		 trans_bytes;
	void			*user;		/* scenario state */
	char			 last_error[160];
};
TAILQ_HEAD(clq, cl);

struct cl *cl_open(struct bench *, int port, cl_trans_fn, void *arg);
int	 cl_connect(struct cl *);
struct cl *cl_open_wait(struct bench *, int port, cl_trans_fn, void *arg,
	    int64_t timeout_us);
int	 cl_wait_subscribed(struct cl **, int n, int64_t timeout_us);
int	 cl_open_many(struct bench *, int port, struct cl **out, int n,
	    int do_connect, cl_trans_fn, void *arg, int64_t timeout_us);
void	 cl_free(struct cl *);
int	 cl_call(struct cl *, const char *method, const char *params,
	    size_t len, cl_done_fn, void *arg);
cJSON	*cl_call_wait(struct cl *, const char *method, const char *params,
	    int64_t timeout_us);
int	 cl_subscribe(struct cl *, const uint32_t *qids, char *const *udfs,
	    char *const *args, int n, cl_done_fn, void *arg);
int	 cl_subscribe_known(struct cl *, const uint32_t *qids,
	    char *const *udfs, char *const *args, char *const *known, int n,
	    cl_done_fn, void *arg);
int	 cl_insert_many(struct cl *, const char *table, int n,
	    void (*gen)(struct buf *, int, void *), void *arg,
	    char (*ids)[DOC_ID_LEN + 1], int64_t timeout_us);
int	 cl_wait_answers(struct cl **, int n, int64_t timeout_us);
int64_t	 json_find_int(const char *msg, size_t len, const char *key,
	    size_t from, size_t *next);

/* stack.c: writerd + gatewayd in a temporary state directory */
struct stack {
	char		 dir[512];
	int		 port;
	pid_t		 writer, gateway;
	int64_t		 t_spawn;	/* mono_us writerd was spawned */
};

int	 stack_init(struct bench *, struct stack *, const char *conf_extra,
	    const char *schema);
int	 stack_spawn(struct bench *, struct stack *);
int	 stack_ready(struct bench *, struct stack *, int64_t timeout_us);
int	 stack_start(struct bench *, struct stack *, const char *conf_extra,
	    const char *schema);
void	 stack_stop(struct stack *);
void	 stack_remove(struct bench *, struct stack *);
cJSON	*stack_health(struct stack *);
double	 json_num(const cJSON *, const char *k1, const char *k2);
cJSON	*stack_ctl(struct bench *, struct stack *, const char *a1,
	    const char *a2, const char *a3);
int	 free_port(void);
pid_t	 spawn(const char *path, char *const argv[], const char *logpath);
int	 reap(pid_t, int timeout_ms, double *cpu_s, uint64_t *maxrss_kb);
cJSON	*run_json(char *const argv[], double *secs, double *cpu_s,
	    uint64_t *maxrss_kb);
void	 rm_tree(const char *);
int64_t	 file_size(const char *);
int	 perf_start(struct bench *, const char *tag, pid_t, pid_t *perf);
void	 perf_stop(struct bench *, const char *tag, pid_t perf);

/* docgen.c: the documents the scenarios write */
#define DOC_BODY_TARGET	200		/* bytes of a user document */
void	 doc_user(struct buf *, uint64_t n);

/* probe.c: what one gateway connection is made of */
void	 probe_connection(struct result *);

/* bcast.c is a program of its own; its commands: */
#define BCAST_SUB	'S'	/* S t1,t2,...: follow topics */
#define BCAST_PUB	'P'	/* P topic payload: to every follower */
#define BCAST_ONE	'Q'	/* Q topic payload: to the first, ack A */
#define BCAST_ECHO	'E'	/* E payload: back to the sender */
#define BCAST_ACK	'A'
#define BCAST_MAX_TOPICS 1024

/* Scenarios: sc_*.c */
int	 sc_write(struct bench *, struct result *);
int	 sc_fanout(struct bench *, struct result *);
int	 sc_idle(struct bench *, struct result *);
int	 sc_inval(struct bench *, struct result *);
int	 sc_stream(struct bench *, struct result *);
int	 sc_cold(struct bench *, struct result *);
int	 sc_action(struct bench *, struct result *);
int	 sc_storm(struct bench *, struct result *);

/* Shared by scenarios: a broadcaster process and its clients. */
int	 bcast_start(struct bench *, int *port, pid_t *pid);
void	 bcast_stop(pid_t);
void	 transition_like(struct buf *, const char *value_json);
struct wsc *bc_open(struct bench *, int port, const struct wsc_ops *,
	    void *arg);
int	 bc_open_many(struct bench *, int port, struct wsc **out, int n,
	    const struct wsc_ops *, void *arg, int64_t timeout_us);
int	 bc_wait_msgs(struct bench *, struct wsc **, int n, uint64_t count,
	    int64_t timeout_us);

#endif
