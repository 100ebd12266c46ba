#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/runs.h"
#include "util.h"

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* A cell for d_row: the string and its length ("" for NULL). */
#define S(x) (x), slen(x)

char *proc_exe(const struct m_proc *p)
{
	char *name = NULL;

	for (size_t i = 0; i < p->nev; i++)
		if (p->ev[i]->kind == REC_EXEC && !m_failed(p->ev[i])) {
			free(name);
			name = lr_str(p->ev[i], "path", NULL);
		}
	return name;
}

static char *str_or(const struct lr_ent *e, const char *key, const char *dflt)
{
	char *s = e ? lr_str(e, key, NULL) : NULL;

	return s ? s : xstrdup(dflt);
}

/* A member shown as written in the log (numbers, null, nested JSON), strings decoded. */
static char *raw_or(const struct lr_ent *e, const char *key, const char *dflt)
{
	int t = e ? lr_get(e, key) : -1;
	const struct jtok *k;

	if (t < 0)
		return xstrdup(dflt);
	k = &e->tok[t];
	if (k->type == J_STR)
		return lr_tokstr(e, t, NULL);
	return xasprintf("%.*s", (int)k->n, k->s);
}

/* An exec's sha256: the digest, "not known" (null: the file could not be read) or "not
 * recorded" (a log older than the field). */
static char *exe_digest_of(const struct lr_ent *e)
{
	char *d = lr_str(e, "sha256", NULL);

	if (d)
		return d;
	return xstrdup(lr_get(e, "sha256") < 0 ? "not recorded" : "not known");
}

static void fmt_ms(char *b, size_t n, int64_t ms)
{
	if (ms < 0)
		snprintf(b, n, "?");
	else if (ms < 10000)
		snprintf(b, n, "%lld ms", (long long)ms);
	else
		snprintf(b, n, "%.1f s", (double)ms / 1000);
}

static void seal_range(const struct m_run *m, const struct lr_verify *v, uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	if (m->start)
		*lo = m->start->seq;
	for (size_t i = 0; i < m->nstep; i++) {
		if (m->steps[i].start->seq < *lo)
			*lo = m->steps[i].start->seq;
	}
	*hi = m->end ? m->end->seq : *lo;
	for (size_t i = 0; i < m->nstep; i++)
		for (size_t p = 0; p < m->steps[i].nproc; p++)
			for (size_t k = 0; k < m->steps[i].procs[p].nev; k++)
				if (m->steps[i].procs[p].ev[k]->seq > *hi)
					*hi = m->steps[i].procs[p].ev[k]->seq;
	(void)v;
}

/* The seals that cover seq lo..hi and the epoch keys that signed them. */
static void seals_of(const struct lr_verify *v, uint64_t lo, uint64_t hi, struct jbuf *seals,
		     struct jbuf *keys, bool *unsealed)
{
	const struct lr_seal *last = NULL;

	jb_raw(seals, "", 0);
	jb_raw(keys, "", 0);
	*unsealed = !lr_seal_for(v, hi);
	for (size_t i = 0; i < v->nseal; i++) {
		const struct lr_seal *s = &v->seal[i];
		char t[256];

		if (s->seq < lo || s->first_seq > hi)
			continue;
		jb_raw(seals, t,
		       (size_t)snprintf(t, sizeof(t),
					"%sseal seq %" PRIu64 " (segment %" PRIu64 ", seq %" PRIu64
					"-%" PRIu64 ", epoch %" PRIu64 ", %s)",
					seals->len ? "; " : "", s->seq, s->segment, s->first_seq,
					s->seq, s->epoch, s->time));
		if (!last || strcmp(last->key_id, s->key_id))
			jb_raw(keys, t,
			       (size_t)snprintf(t, sizeof(t), "%sepoch %" PRIu64 " key id %s",
						keys->len ? "; " : "", s->epoch, s->key_id));
		last = s;
	}
}

char *verify_line(const struct m_run *m, const struct lr_verify *v)
{
	uint64_t lo, hi;
	struct jbuf seals = {0}, keys = {0};
	bool unsealed;
	char *s;

	seal_range(m, v, &lo, &hi);
	seals_of(v, lo, hi, &seals, &keys, &unsealed);
	s = xasprintf("%s: log of %" PRIu64 " entries (seq %" PRIu64 "-%" PRIu64
		      "), %lu errors, %lu warnings; run records seq %" PRIu64 "-%" PRIu64
		      " %s; root key id %s; %s",
		      v->rc == 0 ? "verified" : "NOT VERIFIED", v->entries, v->first_seq,
		      v->last_seq, v->errors, v->warnings, lo, hi,
		      unsealed ? "(the last ones not sealed yet)" : "sealed", v->root_key,
		      keys.len ? keys.p : "no seal");
	jb_free(&seals);
	jb_free(&keys);
	return s;
}

/* ---- header -------------------------------------------------------------------------------- */

static void params(struct d_sec *s, const struct lr_ent *e)
{
	int p = e ? lr_get(e, "params") : -1;

	if (p < 0 || e->tok[p].type != J_OBJ)
		return;
	for (unsigned i = (unsigned)p + 1, k = 0; k < e->tok[p].count; k++) {
		char *key = lr_tokstr(e, (int)i, NULL);
		int vt = (int)e->tok[i].next;
		char *val = lr_tokstr(e, vt, NULL);
		char *label = xasprintf("param %s", key ? key : "?");

		d_field(s, label, S(val ? val : "(not a string)"));
		free(label);
		free(key);
		free(val);
		i = e->tok[vt].next;
	}
}

/* The members of object tok as "PREFIX NAME" fields (strings decoded, others as written;
 * nested objects and arrays left to their own tables). */
static void members(struct d_sec *s, const struct lr_ent *e, int tok, const char *prefix)
{
	for (unsigned i = (unsigned)tok + 1, k = 0; k < e->tok[tok].count; k++) {
		char *key = lr_tokstr(e, (int)i, NULL);
		int vt = (int)e->tok[i].next;
		char *label = xasprintf("%s %s", prefix, key ? key : "?");
		enum jtype ty = e->tok[vt].type;
		char *val = ty == J_STR	   ? lr_tokstr(e, vt, NULL)
			    : ty == J_NULL ? xstrdup("none")
					   : xasprintf("%.*s", (int)e->tok[vt].n, e->tok[vt].s);

		if (ty != J_OBJ && ty != J_ARR)
			d_field(s, label, S(val));
		free(label);
		free(key);
		free(val);
		i = e->tok[vt].next;
	}
}

static void trigger(struct d_sec *s, const struct lr_ent *e)
{
	int t = e ? lr_get(e, "trigger") : -1;
	int g = t >= 0 ? json_get(e->tok, t, "given") : -1;

	if (t < 0 || e->tok[t].type != J_OBJ) {
		d_field(s, "trigger", S("not recorded (a runseal before triggers were recorded)"));
		return;
	}
	if (g >= 0 && e->tok[g].type == J_OBJ && e->tok[g].count)
		members(s, e, g, "trigger");
	else
		d_field(s, "trigger", S("no --trigger given"));
	members(s, e, t, "invoker");
}

static void ancestry(struct doc *d, struct d_sec *s, const struct lr_ent *e)
{
	int t = e ? lr_get(e, "trigger") : -1;
	int a = t >= 0 ? json_get(e->tok, t, "ancestry") : -1;
	static const char *const cols[] = {"pid", "executable", "argv", NULL};
	struct d_table *tb;

	(void)d;
	if (a < 0 || e->tok[a].type != J_ARR)
		return;
	tb = d_table(s, "invoker ancestry (runseal's parent first, up to PID 1)", cols);
	for (unsigned i = 0; i < e->tok[a].count; i++) {
		int o = json_at(e->tok, a, i), pt = json_get(e->tok, o, "pid");
		int xt = json_get(e->tok, o, "exe"), at = json_get(e->tok, o, "argv");
		struct jbuf argv = {0};
		char *exe = lr_tokstr(e, xt, NULL);
		char pid[24] = "?";

		if (pt >= 0)
			snprintf(pid, sizeof(pid), "%.*s", (int)e->tok[pt].n, e->tok[pt].s);
		jb_raw(&argv, "", 0);
		for (unsigned k = 0; at >= 0 && k < e->tok[at].count; k++) {
			if (k)
				jb_putc(&argv, ' ');
			json_unstr(&e->tok[json_at(e->tok, at, k)], &argv);
		}
		d_row(tb, 0, S(pid), S(exe), argv.p, argv.len);
		free(exe);
		jb_free(&argv);
	}
}

static void header(struct doc *d, const struct m_run *m)
{
	struct d_sec *s = d_section(d, "run", "Run", 2);
	const struct lr_ent *st = m->start;
	static const char *const keys[][2] = {
	    {"runbook", "runbook_name"},
	    {"runbook path", "runbook"},
	    {"runbook SHA-256", "runbook_sha256"},
	    {"host", "host"},
	    {"kernel", "kernel"},
	    {"runseal version", "runseal_version"},
	    {"invoking uid", "uid"},
	    {"invoking euid", "euid"},
	    {"sudo uid", "sudo_uid"},
	    {"cgroup", "cgroup"},
	};
	char t[TIME_LEN], dur[32], *v;

	trigger(s, st);
	d_field(s, "run id", S(m->id));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!st || lr_get(st, keys[i][1]) < 0)
			continue;
		v = raw_or(st, keys[i][1], "");
		d_field(s, keys[i][0], S(v));
		free(v);
	}
	params(s, st);
	fmt_time(m->start_ns, t);
	d_field(s, "start", S(st ? st->time : t));
	d_field(s, "end", S(m->end ? m->end->time : "none: the run has no run_end record"));
	fmt_ms(dur, sizeof(dur),
	       m->end && m->start ? (int64_t)(m->end_ns - m->start_ns) / 1000000 : -1);
	d_field(s, "duration", S(dur));
	d_field(s, "result", S(m->status));
	if (m->end) {
		v = raw_or(m->end, "error", "");
		if (*v)
			d_field(s, "error", S(v));
		free(v);
	}
	d_fieldf(s, "events", "%lld kernel events, %lld lost", (long long)m->events,
		 (long long)m->lost);
	d_field(s, "interrupted", S(m->interrupted ? "yes" : "no"));
	ancestry(d, s, st);
}

static void verification(struct doc *d, const struct m_run *m, const struct lr_verify *v)
{
	struct d_sec *s = d_section(d, "verification", "Verification", 2);
	static const char *const cols[] = {"level", "kind", "file", "seq", "message", NULL};
	struct jbuf seals = {0}, keys = {0};
	uint64_t lo, hi;
	bool unsealed;
	struct d_table *t;

	seal_range(m, v, &lo, &hi);
	seals_of(v, lo, hi, &seals, &keys, &unsealed);
	d_text(s, "Every record in this report was read through the verifier: only entries whose "
		  "hash chain and segment seal checked out are shown.");
	d_field(s, "result",
		S(v->rc == 0 ? "verified: no errors"
			     : "NOT VERIFIED: the log has errors, "
			       "records after the first one are left out"));
	d_fieldf(s, "errors, warnings", "%lu, %lu", v->errors, v->warnings);
	d_fieldf(s, "log",
		 "%" PRIu64 " entries in %" PRIu64 " segments, %" PRIu64
		 " seals; verified entries seq %" PRIu64 "-%" PRIu64,
		 v->entries, v->segments, v->seals, v->first_seq, v->last_seq);
	d_fieldf(s, "this run's records", "seq %" PRIu64 "-%" PRIu64 "%s", lo, hi,
		 unsealed ? " (the last ones not sealed yet: a run in progress or a crash)" : "");
	d_field(s, "sealed by", seals.p, seals.len);
	d_field(s, "root key id", S(v->root_key));
	d_field(s, "root key file", S(v->pub_path));
	d_field(s, "host id", S(v->host_id));
	d_field(s, "epoch keys", keys.p, keys.len);
	t = d_table(s, "problems", cols);
	for (size_t i = 0; i < v->nprob; i++) {
		const struct lr_problem *p = &v->prob[i];
		char seq[24] = "";

		if (p->seq >= 0)
			snprintf(seq, sizeof(seq), "%lld", (long long)p->seq);
		d_row(t, 0, S(p->level), S(p->kind), S(p->file), S(seq), S(p->message));
	}
	jb_free(&seals);
	jb_free(&keys);
}

/* ---- steps -------------------------------------------------------------------------------- */

static void steps_table(struct doc *d, const struct m_run *m)
{
	struct d_sec *s = d_section(d, "steps", "Steps", 2);
	static const char *const cols[] = {
	    "#",	   "step",	"attempt", "status",	    "exit",
	    "duration",	   "processes", "execs",   "files written", "files read",
	    "connections", "failures",	NULL};
	struct d_table *t = d_table(s, "", cols);

	for (size_t i = 0; i < m->nstep; i++) {
		const struct m_step *st = &m->steps[i];
		char n[8][24];

		snprintf(n[0], 24, "%lld", (long long)st->seq);
		snprintf(n[1], 24, "%lld", (long long)st->attempt);
		snprintf(n[2], 24, "%lld", (long long)st->exit_code);
		fmt_ms(n[3], 24, st->duration_ms);
		snprintf(n[4], 24, "%zu", st->nproc);
		snprintf(n[5], 24, "%lu", st->nexec);
		snprintf(n[6], 24, "%lu", st->nwrite);
		snprintf(n[7], 24, "%lu", st->nread);
		char c[2][24];

		snprintf(c[0], 24, "%lu", st->nconn);
		snprintf(c[1], 24, "%lu", st->nfail);
		d_row(t, 0, S(n[0]), S(st->name), S(n[1]), S(st->status),
		      S(st->exit_code >= 0 ? n[2] : ""), S(n[3]), S(n[4]), S(n[5]), S(n[6]),
		      S(n[7]), S(c[0]), S(c[1]));
	}
}

static char *access_of(unsigned f)
{
	struct jbuf b = {0};

	jb_raw(&b, "", 0);
	if (f & F_READ)
		jb_raw(&b, "read ", 5);
	if (f & F_WRITE)
		jb_raw(&b, "write ", 6);
	if (f & F_CREATE)
		jb_raw(&b, "create ", 7);
	if (f & F_TRUNC)
		jb_raw(&b, "truncate ", 9);
	if (f & F_FAIL)
		jb_raw(&b, "FAILED ", 7);
	if (b.len)
		b.p[--b.len] = '\0';
	return b.p;
}

/* A record's outcome: "ok" or its errno name. */
static char *result_of(const struct lr_ent *e)
{
	if (!m_failed(e) && lr_get(e, "error") >= 0)
		return str_or(e, "error", "ok"); /* EINPROGRESS: under way, not failed */
	return m_failed(e) ? str_or(e, "error", "failed") : xstrdup("ok");
}

struct walkp {
	const struct m_step *st;
	bool *done;
	struct d_table *procs;
};

static void proc_rows(struct walkp *w, size_t i, int depth)
{
	const struct m_proc *p = &w->st->procs[i];
	char pid[24], ppid[24], code[32] = "";
	char *exe, *argv = NULL;
	int64_t c;

	if (w->done[i])
		return;
	w->done[i] = true;
	snprintf(pid, sizeof(pid), "%lld", (long long)p->pid);
	snprintf(ppid, sizeof(ppid), "%lld", (long long)p->ppid);
	exe = proc_exe(p);
	for (size_t k = 0; k < p->nev; k++)
		if (p->ev[k]->kind == REC_EXEC && !m_failed(p->ev[k])) {
			free(argv);
			argv = m_argv(p->ev[k]);
		}
	if (p->exit && !lr_int(p->exit, "exit_code", &c))
		snprintf(code, sizeof(code), "%lld", (long long)c);
	else if (p->exit && !lr_int(p->exit, "signal", &c))
		snprintf(code, sizeof(code), "signal %lld", (long long)c);
	else if (!p->exit)
		snprintf(code, sizeof(code), "no exit seen");
	d_row(w->procs, depth, S(pid), S(ppid), S(exe ? exe : "(no exec: a fork)"), S(argv),
	      S(code));
	free(exe);
	free(argv);
	for (size_t k = 0; k < w->st->nproc; k++)
		if (w->st->procs[k].parent == i)
			proc_rows(w, k, depth + 1);
}

/* What a file change did, in words: "renamed into place from OLD", "mode 4755 (setuid)". */
static char *change_detail(const struct lr_ent *e)
{
	char *a = NULL, *b = NULL, *s;

	switch (e->kind) {
	case REC_RENAME:
		a = lr_str(e, "old_path", NULL);
		s = xasprintf("renamed into place from %s", a ? a : "?");
		break;
	case REC_LINK:
		a = lr_str(e, "old_path", NULL);
		s = xasprintf("linked from %s", a ? a : "?");
		break;
	case REC_SYMLINK:
		a = lr_str(e, "target", NULL);
		s = xasprintf("symlink to %s", a ? a : "?");
		break;
	case REC_UNLINK:
		s = xstrdup(lr_true(e, "dir") ? "directory removed" : "deleted");
		break;
	case REC_MKDIR:
		a = raw_or(e, "mode", "?");
		s = xasprintf("directory created, mode %s", a);
		break;
	case REC_MKNOD:
		a = raw_or(e, "type", "?");
		s = xasprintf("%s node created", a);
		break;
	case REC_CHMOD:
		a = raw_or(e, "mode", "?");
		s = xasprintf("mode %s%s%s", a, lr_true(e, "setuid") ? " (SETUID)" : "",
			      lr_true(e, "setgid") ? " (SETGID)" : "");
		break;
	case REC_CHOWN:
		a = raw_or(e, "owner", "null");
		b = raw_or(e, "group", "null");
		s = xasprintf("owner %s, group %s", a, b);
		break;
	case REC_TRUNCATE:
		a = raw_or(e, "length", "?");
		s = xasprintf("truncated to %s bytes", a);
		break;
	default:
		s = xstrdup(e->kind_name);
	}
	free(a);
	free(b);
	return s;
}

/* listen and accept: where, as a destination cell. */
static char *net_cell(const struct lr_ent *e)
{
	char *d = m_dest(e), *s;

	if (e->kind == REC_LISTEN)
		s = xasprintf("listening on %s", d);
	else if (e->kind == REC_ACCEPT)
		s = xasprintf("inbound from %s", d);
	else
		return d;
	free(d);
	return s;
}

static void step_events(struct d_sec *s, const struct m_step *st)
{
	static const char *const fc[] = {"time", "pid", "access", "path", "result", NULL};
	static const char *const cc[] = {"time", "pid", "destination", "family", "result", NULL};
	static const char *const xc[] = {"time", "pid", "executable", "argv", "result", NULL};
	static const char *const oc[] = {"time", "pid", "kind", "record", NULL};
	static const char *const gc[] = {"time", "pid", "kind", "path", "change", "result", NULL};
	struct d_table *x = d_table(s, "execs", xc);
	struct d_table *f = d_table(s, "files opened", fc);
	struct d_table *g = d_table(s, "file changes", gc);
	struct d_table *c = d_table(s, "connections", cc);
	struct d_table *o = d_table(s, "other records", oc);

	for (size_t p = 0; p < st->nproc; p++) {
		const struct m_proc *pr = &st->procs[p];
		char pid[24];

		snprintf(pid, sizeof(pid), "%lld", (long long)pr->pid);
		for (size_t k = 0; k < pr->nev; k++) {
			const struct lr_ent *e = pr->ev[k];
			char *a = NULL, *b = NULL, *r = result_of(e);

			if (e->kind == REC_EXEC) {
				a = lr_str(e, m_failed(e) ? "filename" : "path", NULL);
				b = m_argv(e);
				d_row(x, 0, S(e->time), S(pid), S(a), S(b), S(r));
			} else if (e->kind == REC_OPEN) {
				a = access_of(m_open_flags(e));
				b = lr_str(e, "path", NULL);
				d_row(f, 0, S(e->time), S(pid), S(a), S(b), S(r));
			} else if (e->kind == REC_CONNECT || e->kind == REC_LISTEN ||
				   e->kind == REC_ACCEPT) {
				a = net_cell(e);
				b = lr_str(e, "family", NULL);
				d_row(c, 0, S(e->time), S(pid), S(a), S(b), S(r));
			} else if (m_file_change(e)) {
				a = lr_str(e, "path", NULL);
				b = change_detail(e);
				d_row(g, 0, S(e->time), S(pid), S(e->kind_name), S(a), S(b), S(r));
			} else if (e->kind != REC_FORK && e->kind != REC_EXIT) {
				d_row(o, 0, S(e->time), S(pid), S(e->kind_name), e->line, e->len);
			}
			free(a);
			free(b);
			free(r);
		}
	}
}

static void step_detail(struct doc *d, const struct m_run *m, size_t i)
{
	const struct m_step *st = &m->steps[i];
	static const char *const pc[] = {"process", "ppid", "executable", "argv", "exit", NULL};
	char id[32], *title, dur[32];
	struct d_sec *s;
	struct walkp w = {.st = st};
	static const char *const extra[] = {
	    "run_as",	   "cwd",	    "timeout_ms",   "stdout_sha256", "stdout_bytes",
	    "stdout_tail", "stderr_sha256", "stderr_bytes", "stderr_tail",   "lingering"};

	snprintf(id, sizeof(id), "step-%zu", i + 1);
	title = xasprintf("Step %lld: %s%s", (long long)st->seq, st->name,
			  st->attempt > 1 ? " (retry)" : "");
	s = d_section(d, id, title, 3);
	s->step = (int)i;
	free(title);
	d_field(s, "command", S(st->argv));
	d_field(s, "status", S(st->status));
	fmt_ms(dur, sizeof(dur), st->duration_ms);
	d_fieldf(s, "start, duration", "%s, %s", st->start->time, dur);
	if (st->exit_code >= 0)
		d_fieldf(s, "exit code", "%lld", (long long)st->exit_code);
	if (st->error)
		d_field(s, "error", S(st->error));
	for (size_t k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
		const struct lr_ent *e = lr_get(st->start, extra[k]) >= 0 ? st->start : st->end;
		char *v;

		if (!e || lr_get(e, extra[k]) < 0 || json_is(&e->tok[lr_get(e, extra[k])], "null"))
			continue;
		v = raw_or(e, extra[k], "");
		d_field(s, extra[k], S(v));
		free(v);
	}
	w.procs = d_table(s, "process tree", pc);
	w.done = xcalloc(st->nproc + 1, sizeof(bool));
	for (size_t p = 0; p < st->nproc; p++)
		if (st->procs[p].parent == SIZE_MAX)
			proc_rows(&w, p, 0);
	for (size_t p = 0; p < st->nproc; p++)
		proc_rows(&w, p, 0);
	free(w.done);
	step_events(s, st);
}

/* ---- what reviewers ask for ---------------------------------------------------------------- */

typedef void (*each_fn)(void *ctx, const struct m_step *st, const struct m_proc *p,
			const struct lr_ent *e);

static void each(const struct m_run *m, each_fn fn, void *ctx)
{
	for (size_t i = 0; i < m->nstep; i++)
		for (size_t p = 0; p < m->steps[i].nproc; p++)
			for (size_t k = 0; k < m->steps[i].procs[p].nev; k++)
				fn(ctx, &m->steps[i], &m->steps[i].procs[p],
				   m->steps[i].procs[p].ev[k]);
}

/* Rows keyed by their first cells: a repeat adds to the count column instead. */
struct agg {
	struct d_table *t;
	size_t keycols, countcol;
	unsigned long *count;
	size_t *slot; /* open addressing over the key cells: row + 1, 0 free */
	size_t cap;
};

/* FNV-1a over the key cells, each ended by a 0x1f the cells cannot hold unescaped. */
static uint64_t key_hash(const char *const *cells, size_t k)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < k; i++) {
		for (const unsigned char *c = (const unsigned char *)cells[i]; *c; c++)
			h = (h ^ *c) * 1099511628211ull;
		h = (h ^ 0x1f) * 1099511628211ull;
	}
	return h;
}

static bool row_is(const struct agg *a, size_t r, const char *const *cells)
{
	for (size_t k = 0; k < a->keycols; k++)
		if (strcmp(a->t->cell[r * a->t->ncol + k].s, cells[k]))
			return false;
	return true;
}

/* The slot of cells' key: its row + 1 there, or 0 (free, where it would go). */
static size_t *slot_of(const struct agg *a, const char *const *cells)
{
	size_t i = (size_t)key_hash(cells, a->keycols) & (a->cap - 1);

	while (a->slot[i] && !row_is(a, a->slot[i] - 1, cells))
		i = (i + 1) & (a->cap - 1);
	return &a->slot[i];
}

static void agg_grow(struct agg *a)
{
	size_t nc = a->t->ncol;
	const char *cells[6];

	free(a->slot);
	a->cap = a->cap ? a->cap * 2 : 64;
	a->slot = xcalloc(a->cap, sizeof(*a->slot));
	for (size_t r = 0; r < a->t->nrow; r++) {
		for (size_t k = 0; k < a->keycols; k++)
			cells[k] = a->t->cell[r * nc + k].s;
		*slot_of(a, cells) = r + 1;
	}
}

/* Rows keyed by their first cells: a repeat adds to the count column instead; counts are
 * written by agg_finish. Linear in the records, however many distinct rows. */
static void agg_row(struct agg *a, const char *const *cells)
{
	size_t nc = a->t->ncol, *slot;
	const char *c[6] = {0};

	if (2 * (a->t->nrow + 1) > a->cap)
		agg_grow(a);
	slot = slot_of(a, cells);
	if (*slot) {
		a->count[*slot - 1]++;
		return;
	}
	a->count = xrealloc(a->count, (a->t->nrow + 1) * sizeof(*a->count));
	a->count[a->t->nrow] = 1;
	*slot = a->t->nrow + 1;
	/* Tables here have up to 6 columns. */
	for (size_t i = 0; i < nc && i < 6; i++)
		c[i] = i == a->countcol ? "" : cells[i];
	d_row(a->t, 0, S(c[0]), S(c[1]), S(c[2]), S(c[3]), S(c[4]), S(c[5]));
}

static void agg_finish(struct agg *a)
{
	for (size_t r = 0; r < a->t->nrow; r++) {
		struct d_str *c = &a->t->cell[r * a->t->ncol + a->countcol];
		char n[24];

		snprintf(n, sizeof(n), "%lu", a->count[r]);
		free(c->s);
		c->s = xstrdup(n);
		c->n = strlen(n);
	}
	free(a->count);
	free(a->slot);
	a->count = NULL;
	a->slot = NULL;
}

struct rev {
	struct agg files, net, exe, fail, priv, other, guard;
};

static bool self_protection(enum rec_kind k)
{
	return rec_schema[k].flags & RK_GUARD;
}

/* What a self-protection record asked for, in a few words. */
static char *guard_detail(const struct lr_ent *e)
{
	static const char *const keys[] = {"cmd",  "request", "signal", "syscall",  "name",
					   "path", "type",    "owner",	"target_fd"};
	struct jbuf b = {0};

	jb_raw(&b, "", 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int t = lr_get(e, keys[i]);
		char *v;

		if (t < 0 || json_is(&e->tok[t], "null"))
			continue;
		v = raw_or(e, keys[i], "");
		if (b.len)
			jb_raw(&b, ", ", 2);
		jb_raw(&b, keys[i], strlen(keys[i]));
		jb_putc(&b, ' ');
		jb_raw(&b, v, strlen(v));
		free(v);
	}
	return b.p;
}

/* Whom: "runseal", "run step NAME", "outside pid N"... */
static char *guard_target(const struct lr_ent *e)
{
	char *t = raw_or(e, "target", ""), *pid = raw_or(e, "target_pid", ""), *s;

	s = *t ? xasprintf("%s%s%s", t, *pid ? " pid " : "", pid) : xstrdup("-");
	free(t);
	free(pid);
	return s;
}

static void rev_one(void *ctx, const struct m_step *st, const struct m_proc *p,
		    const struct lr_ent *e)
{
	struct rev *r = ctx;
	char pid[24];
	char *a = NULL, *b = NULL, *c = NULL;
	int64_t uid = -1, euid = -1;

	snprintf(pid, sizeof(pid), "%lld", (long long)p->pid);
	if (e->kind == REC_OPEN && !m_failed(e) &&
	    (m_open_flags(e) & (F_WRITE | F_CREATE | F_TRUNC))) {
		a = lr_str(e, "path", NULL);
		b = access_of(m_open_flags(e));
		agg_row(&r->files, (const char *const[]){a ? a : "?", st->name, b, ""});
	} else if (m_file_change(e) && !m_failed(e)) {
		a = lr_str(e, "path", NULL);
		b = change_detail(e);
		agg_row(&r->files, (const char *const[]){a ? a : "?", st->name, b, ""});
		if (e->kind == REC_CHMOD && (lr_true(e, "setuid") || lr_true(e, "setgid")))
			agg_row(&r->priv, (const char *const[]){"set-id bit set on a file",
								st->name, a ? a : "?", ""});
	} else if (e->kind == REC_CONNECT || e->kind == REC_LISTEN || e->kind == REC_ACCEPT) {
		a = net_cell(e);
		b = result_of(e);
		agg_row(&r->net, (const char *const[]){a, st->name, b, ""});
	} else if (e->kind == REC_CRED && !m_failed(e)) {
		char *sc = raw_or(e, "syscall", "cred"), *nu = raw_or(e, "new_uid", "?");
		char *ne = raw_or(e, "new_euid", "?"), *ce = raw_or(e, "cap_effective", "?");

		c = xasprintf("%s: now uid %s, euid %s, effective caps %s", sc, nu, ne, ce);
		agg_row(&r->priv, (const char *const[]){"credentials changed", st->name, c, ""});
		free(sc);
		free(nu);
		free(ne);
		free(ce);
	} else if ((e->kind == REC_MOUNT || e->kind == REC_UMOUNT) && !m_failed(e)) {
		char *src = raw_or(e, "source", ""), *fs = raw_or(e, "fstype", "");

		a = lr_str(e, "path", NULL);
		c = xasprintf("%s %s%s%s%s%s", e->kind_name, a ? a : "?", *src ? " from " : "", src,
			      *fs ? " type " : "", fs);
		agg_row(&r->priv, (const char *const[]){"mount table changed", st->name, c, ""});
		free(src);
		free(fs);
	} else if (e->kind == REC_EXEC && !m_failed(e)) {
		a = lr_str(e, "path", NULL);
		b = m_argv(e);
		c = exe_digest_of(e);
		agg_row(&r->exe, (const char *const[]){a ? a : "?", st->name, c, "", b});
		free(c);
		c = NULL;
		if (!lr_int(e, "uid", &uid) && !lr_int(e, "euid", &euid) && uid != euid) {
			c = xasprintf("exec with uid %lld, euid %lld (set-user-id program)",
				      (long long)uid, (long long)euid);
			agg_row(&r->priv, (const char *const[]){c, st->name, a ? a : "?", ""});
		}
	} else if (self_protection(e->kind)) {
		a = guard_target(e);
		b = guard_detail(e);
		agg_row(&r->guard, (const char *const[]){e->kind_name, a, b, st->name, ""});
		if (e->kind == REC_MODULE_LOAD)
			agg_row(&r->priv,
				(const char *const[]){"kernel module loaded", st->name, b, ""});
	} else if (e->kind == REC_OTHER || e->kind == REC_COMPAT_SYSCALL) {
		agg_row(&r->other, (const char *const[]){e->kind_name, st->name, ""});
	}
	if (m_failed(e) && e->kind != REC_OPEN) {
		free(a);
		a = e->kind == REC_CONNECT
			? m_dest(e)
			: lr_str(e, e->kind == REC_EXEC ? "filename" : "path", NULL);
		free(b);
		b = result_of(e);
		agg_row(&r->fail, (const char *const[]){e->kind_name, a ? a : "", b, st->name, ""});
	} else if (m_failed(e)) {
		free(a);
		a = lr_str(e, "path", NULL);
		free(b);
		b = result_of(e);
		/* Failed opens are mostly searches (libraries, locales): grouped, counted. */
		agg_row(&r->fail, (const char *const[]){"open", a ? a : "", b, st->name, ""});
	}
	free(a);
	free(b);
	free(c);
}

static struct agg mk_agg(struct doc *d, const char *id, const char *title, const char *text,
			 const char *const *cols, size_t keycols, size_t countcol)
{
	struct d_sec *s = d_section(d, id, title, 2);

	d_text(s, "%s", text);
	return (struct agg){.t = d_table(s, "", cols), .keycols = keycols, .countcol = countcol};
}

static void reviewers(struct doc *d, const struct m_run *m)
{
	struct rev r;

	r.files = mk_agg(d, "files-written", "Files written or created",
			 "Every file opened for writing, created or truncated, and every file "
			 "renamed into place, linked, deleted, or given a new mode or owner, by "
			 "step.",
			 (const char *const[]){"path", "step", "access", "times", NULL}, 3, 3);
	r.net = mk_agg(d, "network", "Network destinations",
		       "Every destination the run's processes connected or sent to, every "
		       "listener they opened and every peer they accepted, with the result.",
		       (const char *const[]){"destination", "step", "result", "times", NULL}, 3, 3);
	r.exe = mk_agg(
	    d, "executables", "Executables",
	    "Every program executed (path resolved in the kernel), with the SHA-256 of the "
	    "file it ran, read when the exec was recorded (\"not known\": it could not be "
	    "read; \"not recorded\": a log of a runseal that did not record digests). A "
	    "path with two digests was changed during the run.",
	    (const char *const[]){"path", "step", "sha256", "times", "argv (first)", NULL}, 3, 3);
	r.priv = mk_agg(d, "privilege", "Privilege changes",
			"Execs whose effective uid differs from the real one, credential changes "
			"(set*id, capset), set-id bits set on files, mounts, and steps run as "
			"another user.",
			(const char *const[]){"what", "step", "detail", "times", NULL}, 3, 3);
	r.fail =
	    mk_agg(d, "failures", "Failed operations",
		   "Every exec, open and connect that failed, grouped by target and error.",
		   (const char *const[]){"kind", "target", "error", "step", "times", NULL}, 4, 4);
	r.guard =
	    mk_agg(d, "tampering", "Actions against runseal and other processes",
		   "bpf, perf_event_open, ptrace, process_vm, pidfd_getfd, signals that may "
		   "reach a process outside the run, module loads and memfd_create, recorded "
		   "before the call could take effect; the target says whom they aimed at.",
		   (const char *const[]){"kind", "target", "detail", "step", "times", NULL}, 4, 4);
	r.other = mk_agg(d, "other-records", "Other records",
			 "Record kinds this report does not break down further.",
			 (const char *const[]){"kind", "step", "times", NULL}, 2, 2);
	for (size_t i = 0; i < m->nstep; i++) {
		char *v = lr_str(m->steps[i].start, "run_as", NULL);

		if (v)
			agg_row(&r.priv, (const char *const[]){"step runs as another user",
							       m->steps[i].name, v, ""});
		free(v);
	}
	each(m, rev_one, &r);
	agg_finish(&r.files);
	agg_finish(&r.net);
	agg_finish(&r.exe);
	agg_finish(&r.priv);
	agg_finish(&r.fail);
	agg_finish(&r.other);
	agg_finish(&r.guard);
}

static void incidents(struct doc *d, const struct m_run *m, const struct lr_verify *v)
{
	struct d_sec *s = d_section(d, "losses", "Losses", 2);
	struct d_table *t =
	    d_table(s, "", (const char *const[]){"time", "step", "lost", "by kind", NULL});

	d_text(s, m->lost > 0 || m->nloss ? "Events were lost: this run's record is INCOMPLETE."
					  : "No event was lost.");
	for (size_t i = 0; i < m->nloss; i++) {
		char *c = raw_or(m->loss[i], "count", "?"), *k = raw_or(m->loss[i], "kinds", "");

		d_row(t, 0, S(m->loss[i]->time), S(m->loss[i]->step), S(c), S(k));
		free(c);
		free(k);
	}
	s = d_section(d, "interruptions", "Interruptions", 2);
	t = d_table(s, "", (const char *const[]){"what", "detail", NULL});
	if (!m->end)
		d_row(t, 0, S("the run has no run_end record"),
		      S(v->rc ? "the log did not verify: the records after its first problem are "
				"left out, and runseal may also have been killed"
			      : "runseal was killed or the host crashed; the records up to the "
				"last verified entry are shown"));
	else if (m->interrupted)
		d_row(t, 0, S("the run was interrupted by a signal"), S(m->status));
	for (size_t i = 0; i < m->nstep; i++)
		if (!m->steps[i].end ||
		    (m->steps[i].error && !strcmp(m->steps[i].error, "interrupted")))
			d_row(t, 0, S(m->steps[i].name),
			      S(m->steps[i].end ? "interrupted" : "no step_end record"));
	if (m->found) {
		static const char *const keys[] = {"killed_by_guard", "killed_now", "unread_events",
						   "aimed_at_runseal"};

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			char *val = raw_or(m->found, keys[i], ""), *w;

			w = xasprintf("the next start (run %s, %s): %s", m->found->run,
				      m->found->time, keys[i]);
			d_row(t, 0, S(w), S(val));
			free(val);
			free(w);
		}
	}
	d_text(s, t->nrow ? "The run did not finish normally." : "None.");
	s = d_section(d, "recoveries", "Crash recoveries", 2);
	t = d_table(
	    s, "",
	    (const char *const[]){"time", "crashed segment", "valid bytes", "torn bytes", NULL});
	d_text(s, "Segments recovered after a crash of runseal or the host while this run was "
		  "recorded.");
	for (size_t i = 0; i < m->nrecov; i++) {
		char *f = raw_or(m->recov[i], "file", "");
		char *vb = raw_or(m->recov[i], "valid_bytes", "");
		char *tb = raw_or(m->recov[i], "torn_bytes", "");

		d_row(t, 0, S(m->recov[i]->time), S(f), S(vb), S(tb));
		free(f);
		free(vb);
		free(tb);
	}
}

/* PCI DSS v4.0, NIST SP 800-53 rev. 5, SOC 2 (2017 TSC): what each asks, what the run's
 * verified records show. */
static void controls(struct doc *d, const struct m_run *m, const struct lr_verify *v)
{
	struct d_sec *s = d_section(d, "controls", "Controls", 2);
	struct d_table *t = d_table(
	    s, "",
	    (const char *const[]){"control", "asks for", "what this run's records show", NULL});
	unsigned long ex = 0, fw = 0, cn = 0, fl = 0;
	char *uid = m->start ? raw_or(m->start, "uid", "?") : xstrdup("?");
	char *rb = m->start ? raw_or(m->start, "runbook_sha256", "?") : xstrdup("?");
	char *name = m->start ? raw_or(m->start, "runbook_name", "?") : xstrdup("?");
	char *trig = m->start ? run_trigger(m->start) : NULL;
	char *row[5];
	const char *ok = v->rc == 0 ? "verified" : "DID NOT VERIFY";

	for (size_t i = 0; i < m->nstep; i++) {
		ex += m->steps[i].nexec;
		fw += m->steps[i].nwrite;
		cn += m->steps[i].nconn;
		fl += m->steps[i].nfail;
	}
	d_text(s, "The evidence above, mapped to the controls auditors cite. Every statement "
		  "is about this run's verified records only.");
	row[0] = xasprintf(
	    "%lu executions, %lu file writes and changes, %lu network operations, %lu failed "
	    "operations, each with its time, user (uid, euid), process, outcome and target; "
	    "started by uid %s (%s); %s",
	    ex, fw, cn, fl, uid, trig ? trig : "trigger not recorded",
	    m->lost > 0 || m->nloss ? "EVENTS WERE LOST: the record is incomplete"
				    : "no event lost");
	d_row(t, 0, S("PCI DSS 10.2"),
	      S("audit logs record user and administrator actions, each with user, event type, "
		"date and time, success or failure, origination and affected resource "
		"(10.2.1, 10.2.2)"),
	      S(row[0]));
	row[1] = xasprintf("records sealed as they happened into hash-chained segments signed "
			   "by Ed25519 epoch keys, written append-only then immutable; the log "
			   "%s (%lu errors, %lu warnings): any change, deletion, insertion or "
			   "reordering is detected by runseal verify",
			   ok, v->errors, v->warnings);
	d_row(t, 0, S("PCI DSS 10.3"),
	      S("audit logs are protected from destruction and unauthorized modification, and "
		"changes to them are detected (10.3.2, 10.3.4)"),
	      S(row[1]));
	row[2] = xasprintf("seals %s with public keys only (root key %s); write-once inode "
			   "flags checked; only the host's sealer writes the log",
			   ok, v->root_key);
	d_row(t, 0, S("NIST 800-53 AU-9"),
	      S("protection of audit information from unauthorized access, modification and "
		"deletion"),
	      S(row[2]));
	row[3] = xasprintf("every action is bound to run %s and its trigger (%s) and signed by "
			   "forward-secure epoch keys: a host compromised later cannot re-sign "
			   "these records",
			   m->id, trig ? trig : "not recorded");
	d_row(t, 0, S("NIST 800-53 AU-10"),
	      S("non-repudiation: irrefutable evidence of who performed an action"), S(row[3]));
	row[4] = xasprintf("the change was runbook %s (SHA-256 %s) with the params above, "
			   "%zu step attempts with their commands and outcomes, result %s; "
			   "trigger: %s",
			   name, rb, m->nstep, m->status, trig ? trig : "not recorded");
	d_row(t, 0, S("SOC 2 CC8.1"),
	      S("changes to infrastructure and software are authorized, designed, tested, "
		"approved and implemented"),
	      S(row[4]));
	for (int i = 0; i < 5; i++)
		free(row[i]);
	free(uid);
	free(rb);
	free(name);
	free(trig);
}

static size_t rows_of(const struct doc *d, const char *id)
{
	for (size_t i = 0; i < d->nsec; i++)
		if (!strcmp(d->sec[i]->id, id) && d->sec[i]->nt)
			return d->sec[i]->t[0]->nrow;
	return 0;
}

/* The reviewer's first look, from the sections already built; placed after Run. */
static void at_a_glance(struct doc *d, const struct m_run *m)
{
	struct d_sec *s = d_section(d, "summary", "At a glance", 2);
	unsigned long ok = 0, ex = 0, fail = 0;

	for (size_t i = 0; i < m->nstep; i++) {
		ok += !strcmp(m->steps[i].status, "ok");
		ex += m->steps[i].nexec;
		fail += m->steps[i].nfail;
	}
	d_fieldf(s, "result", "%s%s", m->status,
		 m->interrupted ? (m->end ? ", interrupted" : ", interrupted (no run_end)") : "");
	d_fieldf(s, "steps", "%zu attempts, %lu ok", m->nstep, ok);
	d_fieldf(s, "programs", "%lu executions (%zu program and step pairs)", ex,
		 rows_of(d, "executables"));
	d_fieldf(s, "files written or changed", "%zu", rows_of(d, "files-written"));
	d_fieldf(s, "network destinations", "%zu", rows_of(d, "network"));
	d_fieldf(s, "privilege changes", "%zu", rows_of(d, "privilege"));
	d_fieldf(s, "actions against runseal or other processes", "%zu", rows_of(d, "tampering"));
	d_fieldf(s, "failed operations", "%lu (%zu distinct)", fail, rows_of(d, "failures"));
	d_fieldf(s, "events lost", "%lld%s", (long long)(m->lost > 0 ? m->lost : 0),
		 m->lost > 0 || m->nloss ? ": the record is INCOMPLETE" : "");
	d_fieldf(s, "crash recoveries", "%zu", m->nrecov);
	/* After Run (and its trigger): the sections before it are fixed, so move it there. */
	memmove(&d->sec[2], &d->sec[1], (d->nsec - 2) * sizeof(*d->sec));
	d->sec[1] = s;
}

void report_build(struct doc *d, const struct m_run *m, const struct lr_verify *v)
{
	char *name = m->start ? lr_str(m->start, "runbook_name", NULL) : NULL;

	*d = (struct doc){.run = m, .v = v, .verified = verify_line(m, v)};
	d->title = xasprintf("runseal report: %s, run %s", name ? name : "?", m->id);
	free(name);
	header(d, m);
	verification(d, m, v);
	steps_table(d, m);
	for (size_t i = 0; i < m->nstep; i++)
		step_detail(d, m, i);
	reviewers(d, m);
	incidents(d, m, v);
	controls(d, m, v);
	at_a_glance(d, m);
}
