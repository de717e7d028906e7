/*
 * The configuration file, tinyvex.conf(5): one "key value" per line, '#'
 * starts a comment, read by writerd and gatewayd.  Every setting has a
 * default that serves a desktop; each daemon uses the settings it needs
 * and ignores the others.
 */
#ifndef TINYVEX_CONFIG_H
#define TINYVEX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_ORIGINS	64
#define CONFIG_MAX_LINE		1024

struct config {
	/* gatewayd: access */
	char		*token_file;		/* token_file PATH; NULL none */
	char		*token;			/* its contents, trimmed */
	char		*origins[CONFIG_MAX_ORIGINS]; /* allow_origin ORIGIN */
	size_t		 norigins;
	int		 reuseport;		/* reuseport yes|no */
	/* gatewayd: files served at / */
	char		*static_dir;		/* static_dir PATH; NULL off */
	uint64_t	 static_max_file_bytes;	/* 64M: larger ones refused */
	/* gatewayd: protocol limits */
	uint64_t	 max_message_bytes;	/* 1M: a client frame/message */
	uint64_t	 chunk_bytes;		/* 512K: largest frame sent */
	int64_t		 max_queries;		/* 1024 per connection */
	int64_t		 max_connections;	/* 10000 per gateway */
	uint64_t	 output_soft_limit;	/* 8M unsent per connection */
	int64_t		 output_soft_grace_us;	/* 10s over the soft limit */
	uint64_t	 output_hard_limit;	/* 32M unsent: dropped at once */
	int64_t		 handshake_timeout_us;	/* 10s to send the head */
	int64_t		 ping_interval_us;	/* 5s between WebSocket pings */
	int64_t		 idle_timeout_us;	/* 120s of silence: close 1008 */
	int64_t		 connect_wait_us;	/* 5s for maxObservedTs */
	int64_t		 max_pending_mutations;	/* 1024 per connection */
	char		*provider_token;	/* provider_token TEXT; NULL none */
	/* both: queries and documents */
	int64_t		 query_max_rows;	/* 10000 rows a query returns */
	uint64_t	 max_args_bytes;	/* 1M of args JSON */
	uint64_t	 max_document_bytes;	/* 1M a document */
	int64_t		 max_document_depth;	/* 32 levels */
	int64_t		 max_batch_ops;		/* 1000 ops in db/batch */
	/* writerd */
	int		 synchronous_full;	/* synchronous normal|full */
	int64_t		 retention_us;		/* 1h of history */
	int64_t		 idempotency_window_us;	/* 24h */
	int64_t		 gc_interval_us;	/* 60s */
	int64_t		 gc_step_us;		/* 5ms per GC batch */
	int64_t		 max_group_mutations;	/* 512 per group commit */
	uint64_t	 gateway_output_limit;	/* 64M queued to a gateway */
	int64_t		 max_gateways;		/* 64 links */
	char		*gateway_user;		/* gateway_user NAME; NULL same */
	uint64_t	 journal_size_limit;	/* 64M */
	int64_t		 checkpoint_interval_us; /* 1s */
	int64_t		 action_timeout_us;	/* 300s for an action's answer */
	int64_t		 action_queue;		/* 1024 calls waiting */
};

/* Fill in every default. */
void	 config_defaults(struct config *);
/*
 * Read path over the defaults.  Returns 0, or -1 after writing a message
 * naming the file and line to err (errlen bytes) on an unknown key, a
 * malformed value or an unreadable file.  A token_file is read here too.
 */
int	 config_load(struct config *, const char *path, char *err,
	    size_t errlen);
/* Parse a configuration text (for tests and fuzzing); same contract. */
int	 config_parse(struct config *, const char *text, size_t len,
	    const char *name, char *err, size_t errlen);
void	 config_free(struct config *);

#endif
