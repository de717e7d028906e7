/*
 * Logging in the OpenBSD daemon style: to syslog, or to stderr when the
 * daemon runs with -d.  log_warn appends strerror(errno); fatal and fatalx
 * log and exit(1).
 */
#ifndef TINYVEX_LOG_H
#define TINYVEX_LOG_H

#include <stdarg.h>

void	log_init(const char *procname, int to_stderr, int verbose);
void	log_setverbose(int verbose);
int	log_getverbose(void);
void	log_reopen(void);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2),
	    noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2),
	    noreturn));

#endif
