/*
 * The log API shared by every Tinyvex program.  Messages go to syslog(3)
 * unless the program runs in the foreground with -d, in which case they go
 * to stderr with a timestamp.  The state lives in one static struct: the
 * only process-wide mutable state of this module.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	const char	*procname;	/* name prefixed to every line */
	int		 to_stderr;	/* 1: stderr, 0: syslog */
	int		 verbose;	/* 0 brief, 1 verbose (debug lines) */
} logstate = { "tinyvex", 1, 0 };

void
log_init(const char *procname, int to_stderr, int verbose)
{
	logstate.procname = procname;
	logstate.to_stderr = to_stderr;
	logstate.verbose = verbose;
	if (!to_stderr)
		openlog(procname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

void
log_setverbose(int verbose)
{
	logstate.verbose = verbose;
}

int
log_getverbose(void)
{
	return logstate.verbose;
}

/* Reopen the syslog connection (after SIGHUP, or a syslogd restart). */
void
log_reopen(void)
{
	if (!logstate.to_stderr) {
		closelog();
		openlog(logstate.procname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

static void logit(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
vlog(int pri, const char *fmt, va_list ap)
{
	char		 tbuf[32];
	struct timespec	 now;
	struct tm	 tm;

	if (logstate.to_stderr) {
		clock_gettime(CLOCK_REALTIME, &now);
		localtime_r(&now.tv_sec, &tm);
		strftime(tbuf, sizeof(tbuf), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s[%d]: ", tbuf,
		    now.tv_nsec / 1000000, logstate.procname, (int)getpid());
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		fflush(stderr);
	} else
		vsyslog(pri, fmt, ap);
}

static void
vlog_errno(int pri, int saved, const char *fmt, va_list ap)
{
	char	 msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (saved != 0)
		logit(pri, "%s: %s", msg, strerror(saved));
	else
		logit(pri, "%s", msg);
}

static void
logit(int pri, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(pri, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	vlog_errno(LOG_ERR, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (!logstate.verbose)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	vlog_errno(LOG_CRIT, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}
