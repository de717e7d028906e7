/*
 * Figures and their output.  A scenario adds figures (a name, a unit, a
 * value, optionally its baseline and its aim), process rows (CPU and
 * memory over a measured window) and notes.  The JSON file holds all of
 * it with the machine and the command; the table prints each figure with
 * its baseline, the ratio value/baseline and whether its aim was met.
 */
#include <sys/utsname.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "bench.h"
#include "json.h"
#include "log.h"

struct figure *
res_fig(struct result *r, const char *name, const char *unit, double value)
{
	struct figure	*f;

	if (r->nfig >= BENCH_MAX_FIGURES)
		fatalx("%s: too many figures", r->key);
	f = &r->fig[r->nfig++];
	memset(f, 0, sizeof(*f));
	strlcpy_tv(f->name, name, sizeof(f->name));
	strlcpy_tv(f->unit, unit, sizeof(f->unit));
	f->value = value;
	return f;
}

void
fig_baseline(struct figure *f, double v)
{
	f->has_baseline = 1;
	f->baseline = v;
}

void
fig_aim(struct figure *f, int met, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(f->aim_text, sizeof(f->aim_text), fmt, ap);
	va_end(ap);
	f->aim = met ? AIM_MET : AIM_MISSED;
}

void
res_procs(struct result *r, const char *phase, const struct pmon *m, int n)
{
	struct proc_fig	*p;
	int		 i;

	for (i = 0; i < n && r->nprocs < BENCH_MAX_PROCS; i++) {
		p = &r->procs[r->nprocs++];
		memset(p, 0, sizeof(*p));
		strlcpy_tv(p->phase, phase, sizeof(p->phase));
		strlcpy_tv(p->name, m[i].name, sizeof(p->name));
		p->secs = (double)(m[i].b.at_us - m[i].a.at_us) / 1e6;
		p->cpu_s = pmon_cpu_s(&m[i]);
		p->cpu_pct = pmon_cpu_pct(&m[i]);
		p->user_s = m[i].b.user_s - m[i].a.user_s;
		p->sys_s = m[i].b.sys_s - m[i].a.sys_s;
		p->rss_mb = (double)m[i].b.rss_kb / 1024.0;
		p->anon_mb = (double)m[i].b.anon_kb / 1024.0;
		p->hwm_mb = (double)m[i].b.hwm_kb / 1024.0;
		if (strcmp(m[i].name, "generator") == 0 &&
		    p->cpu_pct >= BENCH_GEN_BOUND_PCT)
			res_note(r, "%s: the load generator used %.0f%% of a "
			    "core: figures of this phase are limited by the "
			    "generator, not by the server", phase, p->cpu_pct);
	}
}

void
res_note(struct result *r, const char *fmt, ...)
{
	va_list	 ap;

	if (r->nnotes >= BENCH_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(r->notes[r->nnotes++], BENCH_NOTE_LEN, fmt, ap);
	va_end(ap);
}

void
res_fail(struct result *r, const char *fmt, ...)
{
	va_list	 ap;

	r->failed = 1;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", r->key, r->error);
}

/* Name a figure the scenario must produce. */
void
res_expect(struct result *r, const char *fmt, ...)
{
	va_list	 ap;

	if (r->nexpect >= BENCH_MAX_EXPECT)
		return;
	va_start(ap, fmt);
	vsnprintf(r->expect[r->nexpect++], sizeof(r->expect[0]), fmt, ap);
	va_end(ap);
}

/* 1 when the scenario ran and produced every figure it must. */
int
res_complete(const struct result *r)
{
	int	 i, j;

	if (r->failed)
		return 0;
	for (i = 0; i < r->nexpect; i++) {
		for (j = 0; j < r->nfig; j++)
			if (strcmp(r->fig[j].name, r->expect[i]) == 0 &&
			    isfinite(r->fig[j].value))
				break;
		if (j == r->nfig) {
			log_warnx("%s: no figure \"%s\"", r->key,
			    r->expect[i]);
			return 0;
		}
	}
	return 1;
}

static void
jstr(struct buf *b, const char *s)
{
	json_print_string(b, s, strlen(s));
}

static void
jnum(struct buf *b, double v)
{
	char	 tmp[64];

	if (!isfinite(v)) {
		buf_adds(b, "null");
		return;
	}
	if (v == (double)(int64_t)v && fabs(v) < 9e15)
		buf_add_i64(b, (int64_t)v);
	else {
		snprintf(tmp, sizeof(tmp), "%.6g", v);
		buf_adds(b, tmp);
	}
}

static void
jkey(struct buf *b, const char *k)
{
	jstr(b, k);
	buf_addc(b, ':');
}

static void
machine(struct buf *b)
{
	struct utsname	 u;
	char		 line[512], model[256] = "unknown", *p;
	FILE		*f;
	long		 mem_kb = 0;

	if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "model name", 10) == 0 &&
			    (p = strchr(line, ':')) != NULL) {
				p += 2;
				p[strcspn(p, "\n")] = '\0';
				strlcpy_tv(model, p, sizeof(model));
				break;
			}
		fclose(f);
	}
	if ((f = fopen("/proc/meminfo", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "MemTotal:", 9) == 0)
				mem_kb = strtol(line + 9, NULL, 10);
		fclose(f);
	}
	uname(&u);
	buf_adds(b, "{");
	jkey(b, "cpu");
	jstr(b, model);
	buf_addc(b, ',');
	jkey(b, "cores");
	jnum(b, (double)sysconf(_SC_NPROCESSORS_ONLN));
	buf_addc(b, ',');
	jkey(b, "memory_mb");
	jnum(b, (double)(mem_kb / 1024));
	buf_addc(b, ',');
	jkey(b, "kernel");
	snprintf(line, sizeof(line), "%s %s %s", u.sysname, u.release,
	    u.machine);
	jstr(b, line);
	buf_addc(b, ',');
	jkey(b, "sqlite");
	jstr(b, sqlite3_libversion());
	buf_addc(b, ',');
	jkey(b, "libevent");
	jstr(b, event_get_version());
	buf_addc(b, '}');
}

static void
sizes_json(struct buf *b, const struct sizes *z)
{
	int	 i;

	buf_printf(b, "{\"write_conns\":%d,\"write_secs\":", z->write_conns);
	jnum(b, z->write_secs);
	buf_printf(b, ",\"write_rows\":%d,\"fanout\":[", z->write_rows);
	for (i = 0; i < z->nfanout; i++)
		buf_printf(b, "%s%d", i > 0 ? "," : "", z->fanout[i]);
	buf_adds(b, "],\"fanout_secs\":");
	jnum(b, z->fanout_secs);
	buf_printf(b, ",\"idle_conns\":%d,\"inval\":[", z->idle_conns);
	for (i = 0; i < z->ninval; i++)
		buf_printf(b, "%s%d", i > 0 ? "," : "", z->inval[i]);
	buf_printf(b, "],\"inval_commits\":%d,\"stream_threads\":%d,"
	    "\"stream_clients\":%d,\"stream_bytes\":%d,"
	    "\"stream_history\":%d,\"cold_docs\":%d,\"cold_runs\":%d}",
	    z->inval_commits, z->stream_threads, z->stream_clients,
	    z->stream_bytes, z->stream_history, z->cold_docs, z->cold_runs);
}

static void
result_json(struct buf *b, const struct result *r)
{
	const struct figure	*f;
	const struct proc_fig	*p;
	int			 i;

	buf_adds(b, "{");
	jkey(b, "title");
	jstr(b, r->title);
	buf_adds(b, ",");
	jkey(b, "baseline");
	jstr(b, r->baseline_desc != NULL ? r->baseline_desc : "");
	buf_adds(b, ",");
	jkey(b, "complete");
	buf_adds(b, res_complete(r) ? "true" : "false");
	buf_adds(b, ",");
	jkey(b, "error");
	if (r->failed)
		jstr(b, r->error);
	else
		buf_adds(b, "null");
	buf_adds(b, ",");
	jkey(b, "seconds");
	jnum(b, r->secs);
	buf_adds(b, ",\"figures\":[");
	for (i = 0; i < r->nfig; i++) {
		f = &r->fig[i];
		buf_adds(b, i > 0 ? ",{" : "{");
		jkey(b, "name");
		jstr(b, f->name);
		buf_adds(b, ",");
		jkey(b, "unit");
		jstr(b, f->unit);
		buf_adds(b, ",");
		jkey(b, "value");
		jnum(b, f->value);
		if (f->has_baseline) {
			buf_adds(b, ",");
			jkey(b, "baseline");
			jnum(b, f->baseline);
			buf_adds(b, ",");
			jkey(b, "ratio");
			jnum(b, f->baseline != 0 ? f->value / f->baseline :
			    NAN);
		}
		if (f->aim != AIM_NONE) {
			buf_adds(b, ",");
			jkey(b, "aim");
			jstr(b, f->aim_text);
			buf_adds(b, ",");
			jkey(b, "aim_met");
			buf_adds(b, f->aim == AIM_MET ? "true" : "false");
		}
		buf_addc(b, '}');
	}
	buf_adds(b, "],\"processes\":[");
	for (i = 0; i < r->nprocs; i++) {
		p = &r->procs[i];
		buf_adds(b, i > 0 ? ",{" : "{");
		jkey(b, "phase");
		jstr(b, p->phase);
		buf_adds(b, ",");
		jkey(b, "process");
		jstr(b, p->name);
		buf_adds(b, ",\"seconds\":");
		jnum(b, p->secs);
		buf_adds(b, ",\"cpu_s\":");
		jnum(b, p->cpu_s);
		buf_adds(b, ",\"cpu_pct\":");
		jnum(b, p->cpu_pct);
		buf_adds(b, ",\"user_s\":");
		jnum(b, p->user_s);
		buf_adds(b, ",\"sys_s\":");
		jnum(b, p->sys_s);
		buf_adds(b, ",\"rss_mb\":");
		jnum(b, p->rss_mb);
		buf_adds(b, ",\"anon_mb\":");
		jnum(b, p->anon_mb);
		buf_adds(b, ",\"peak_rss_mb\":");
		jnum(b, p->hwm_mb);
		buf_addc(b, '}');
	}
	buf_adds(b, "],\"notes\":[");
	for (i = 0; i < r->nnotes; i++) {
		if (i > 0)
			buf_addc(b, ',');
		jstr(b, r->notes[i]);
	}
	buf_adds(b, "]}");
}

int
report_json(struct bench *bn, struct result *r, int n)
{
	struct buf	 b;
	char		 when[64], tmp[1024];
	time_t		 t = time(NULL);
	FILE		*f;
	int		 i, rc = 0;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	buf_init(&b);
	buf_adds(&b, "{\"format\":1,");
	jkey(&b, "date");
	jstr(&b, when);
	buf_adds(&b, ",");
	jkey(&b, "command");
	jstr(&b, bn->command);
	buf_adds(&b, ",");
	jkey(&b, "tiny");
	buf_adds(&b, bn->tiny ? "true" : "false");
	buf_adds(&b, ",\"machine\":");
	machine(&b);
	buf_adds(&b, ",\"sizes\":");
	sizes_json(&b, &bn->sz);
	buf_adds(&b, ",\"scenarios\":{");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(&b, ',');
		jkey(&b, r[i].key);
		result_json(&b, &r[i]);
	}
	buf_adds(&b, "}}\n");
	snprintf(tmp, sizeof(tmp), "%s.tmp", bn->out);
	if ((f = fopen(tmp, "w")) == NULL ||
	    fwrite(b.data, 1, b.len, f) != b.len || fclose(f) == EOF ||
	    rename(tmp, bn->out) == -1) {
		log_warn("cannot write %s", bn->out);
		rc = -1;
	}
	buf_free(&b);
	return rc;
}

static void
fmt_num(char *out, size_t len, double v)
{
	if (!isfinite(v))
		snprintf(out, len, "-");
	else if (v == (double)(int64_t)v && fabs(v) < 1e12)
		snprintf(out, len, "%lld", (long long)v);
	else if (fabs(v) >= 100)
		snprintf(out, len, "%.0f", v);
	else if (fabs(v) >= 1)
		snprintf(out, len, "%.2f", v);
	else
		snprintf(out, len, "%.3g", v);
}

void
report_table(FILE *out, struct result *r, int n)
{
	const struct figure	*f;
	const struct proc_fig	*p;
	char			 v[32], bl[32], ra[32];
	int			 i, j;

	for (i = 0; i < n; i++) {
		fprintf(out, "\n== %s: %s%s\n", r[i].key, r[i].title,
		    r[i].failed ? "  [FAILED]" : "");
		if (r[i].failed)
			fprintf(out, "   error: %s\n", r[i].error);
		if (r[i].baseline_desc != NULL)
			fprintf(out, "   baseline: %s\n", r[i].baseline_desc);
		fprintf(out, "   %-40s %12s %-8s %12s %8s  %s\n", "figure",
		    "value", "unit", "baseline", "ratio", "aim");
		for (j = 0; j < r[i].nfig; j++) {
			f = &r[i].fig[j];
			fmt_num(v, sizeof(v), f->value);
			if (f->has_baseline) {
				fmt_num(bl, sizeof(bl), f->baseline);
				fmt_num(ra, sizeof(ra), f->baseline != 0 ?
				    f->value / f->baseline : NAN);
			} else {
				snprintf(bl, sizeof(bl), "-");
				snprintf(ra, sizeof(ra), "-");
			}
			fprintf(out, "   %-40s %12s %-8s %12s %8s  %s%s\n",
			    f->name, v, f->unit, bl, ra, f->aim == AIM_NONE ?
			    "" : f->aim == AIM_MET ? "met: " : "MISSED: ",
			    f->aim_text);
		}
		if (r[i].nprocs > 0)
			fprintf(out, "   %-28s %-20s %7s %7s %9s %9s\n",
			    "process (window)", "", "cpu s", "cpu %",
			    "rss MiB", "peak MiB");
		for (j = 0; j < r[i].nprocs; j++) {
			p = &r[i].procs[j];
			fprintf(out, "   %-28s %-20s %7.2f %7.1f %9.1f %9.1f\n",
			    p->phase, p->name, p->cpu_s, p->cpu_pct, p->rss_mb,
			    p->hwm_mb);
		}
		for (j = 0; j < r[i].nnotes; j++)
			fprintf(out, "   note: %s\n", r[i].notes[j]);
	}
}
