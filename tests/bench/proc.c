/*
 * CPU and memory of a process, read from /proc: CPU time to the
 * nanosecond from every thread's schedstat, the user/system split from
 * stat (clock ticks), and VmRSS, RssAnon and VmHWM from status.  A pmon
 * takes one sample at the start of a measured window and one at its end.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static uint64_t
schedstat_ns(pid_t pid)
{
	char		 path[64], line[128];
	DIR		*d;
	struct dirent	*de;
	FILE		*f;
	uint64_t	 ns, total = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat",
		    (int)pid, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(line, sizeof(line), f) != NULL &&
		    sscanf(line, "%" SCNu64, &ns) == 1)
			total += ns;
		fclose(f);
	}
	closedir(d);
	return total;
}

int
proc_read(pid_t pid, struct pstat *ps)
{
	char		 path[64], line[1024], *p;
	FILE		*f;
	unsigned long	 ut = 0, st = 0;
	long		 hz = sysconf(_SC_CLK_TCK);
	int		 i;

	memset(ps, 0, sizeof(*ps));
	ps->at_us = mono_us();
	if (pid == 0)
		pid = getpid();
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	/* Fields after the command name, which may hold spaces. */
	if ((p = strrchr(line, ')')) == NULL)
		return -1;
	p += 2;
	/* state is field 3; utime and stime are fields 14 and 15. */
	for (i = 3; i < 14 && p != NULL; i++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p == NULL || sscanf(p, "%lu %lu", &ut, &st) != 2)
		return -1;
	ps->user_s = (double)ut / (double)hz;
	ps->sys_s = (double)st / (double)hz;
	ps->cpu_ns = schedstat_ns(pid);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			ps->rss_kb = strtoull(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			ps->anon_kb = strtoull(line + 8, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			ps->hwm_kb = strtoull(line + 6, NULL, 10);
	}
	fclose(f);
	return 0;
}

void
pmon_start(struct pmon *m, const char *name, pid_t pid)
{
	memset(m, 0, sizeof(*m));
	strlcpy_tv(m->name, name, sizeof(m->name));
	m->pid = pid;
	proc_read(pid, &m->a);
	m->b = m->a;
}

void
pmon_stop(struct pmon *m)
{
	proc_read(m->pid, &m->b);
}

double
pmon_cpu_s(const struct pmon *m)
{
	if (m->b.cpu_ns > 0 || m->a.cpu_ns > 0)
		return (double)(m->b.cpu_ns - m->a.cpu_ns) / 1e9;
	return (m->b.user_s + m->b.sys_s) - (m->a.user_s + m->a.sys_s);
}

/* Percent of one core over the window. */
double
pmon_cpu_pct(const struct pmon *m)
{
	int64_t	 wall = m->b.at_us - m->a.at_us;

	if (wall <= 0)
		return 0;
	return 100.0 * pmon_cpu_s(m) / ((double)wall / 1e6);
}
