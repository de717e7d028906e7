/*
 * The tinyvex command: what its files share.  One context struct for the
 * process (struct cli); each command is a function that sets up its
 * requests on the client context and lets tvx_run carry them out.
 */
#ifndef TVX_CLI_H
#define TVX_CLI_H

#include <stdint.h>

#include "tinyvex.h"
#include "tvx_int.h"

#define CLI_DEFAULT_URL	"ws://127.0.0.1:7878/sync"

struct cli {
	struct tvx_ctx	*ctx;
	const char	*url;
	int		 compact;	/* -j, or stdout not a terminal */
	int		 status;	/* exit status */
	int		 ever_connected;
	int		 keep_going;	/* survive a first connect failure */
	void		*cmd;		/* the command's own state */
	void		 (*cmd_free)(struct cli *);	/* frees it */
};

/* tinyvex.c */
void	 cli_usage(void) __attribute__((noreturn));
void	 cli_print_value(struct cli *, const char *json);
void	 cli_print_error(const struct tvx_error *);
void	 cli_error_json(struct tvx_buf *, const struct tvx_error *);
void	 cli_done(struct cli *, int status);
void	 cli_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));

/* cmd_provide.c */
int	 cmd_provide(struct cli *, int, char **);

/* cmd_export.c */
int	 cmd_export(struct cli *, int, char **);
int	 cmd_import(struct cli *, int, char **);
int	 prep_import(struct cli *, int, char **, struct tvx_config *);

#endif
