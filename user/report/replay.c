#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/escape.h"
#include "report/replay.h"
#include "report/report.h"
#include "util.h"

#define C_BOLD	 "\033[1m"
#define C_RED	 "\033[31m"
#define C_GREEN	 "\033[32m"
#define C_YELLOW "\033[33m"
#define C_CYAN	 "\033[36m"
#define C_DIM	 "\033[2m"
#define C_OFF	 "\033[0m"

struct rp {
	const struct replay_opts *o;
	replay_emit emit;
	void *ctx;
	struct jbuf b;
	int stop;
};

static void lit(struct jbuf *b, const char *s)
{
	jb_raw(b, s, strlen(s));
}

static void col(struct rp *r, const char *c)
{
	if (r->o->colour)
		lit(&r->b, c);
}

static void term(struct jbuf *b, const char *s)
{
	if (s)
		esc_term(b, s, strlen(s));
}

static void flush(struct rp *r, uint64_t t)
{
	if (!r->stop && r->b.len)
		r->stop = r->emit(r->ctx, r->b.p, r->b.len, t);
	r->b.len = 0;
}

int replay_kinds(const char *list, uint64_t *kinds, char *bad, size_t badlen)
{
	char *dup = xstrdup(list), *save = NULL;

	*kinds = 0;
	for (char *k = strtok_r(dup, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		enum rec_kind i = rec_kind_of(k, strlen(k));

		if (i == REC_OTHER) {
			snprintf(bad, badlen, "%s", k);
			free(dup);
			return -1;
		}
		*kinds |= 1ull << i;
	}
	free(dup);
	return 0;
}

static int depth_of(const struct m_step *s, size_t p)
{
	int d = 0;

	for (size_t i = s->procs[p].parent; i != SIZE_MAX && d < 64; i = s->procs[i].parent)
		d++;
	return d;
}

static bool under(const struct m_step *s, size_t p, int64_t pid)
{
	for (size_t i = p, d = 0; i != SIZE_MAX && d < 64; i = s->procs[i].parent, d++)
		if (s->procs[i].pid == pid)
			return true;
	return false;
}

static void describe(struct rp *r, const struct lr_ent *e)
{
	char *a = NULL, *b = NULL, t[64];
	int64_t v;
	bool fail = m_failed(e);

	switch (e->kind) {
	case REC_EXEC:
		col(r, fail ? C_RED : C_GREEN);
		lit(&r->b, "exec ");
		a = lr_str(e, fail ? "filename" : "path", NULL);
		term(&r->b, a);
		col(r, C_OFF);
		b = m_argv(e);
		lit(&r->b, "  ");
		term(&r->b, b);
		break;
	case REC_OPEN: {
		unsigned f = m_open_flags(e);

		col(r, fail ? C_RED : (f & (F_WRITE | F_CREATE | F_TRUNC)) ? C_YELLOW : C_DIM);
		snprintf(t, sizeof(t), "open %s%s%s%s ", f & F_READ ? "r" : "-",
			 f & F_WRITE ? "w" : "-", f & F_CREATE ? "c" : "-",
			 f & F_TRUNC ? "t" : "-");
		lit(&r->b, t);
		a = lr_str(e, "path", NULL);
		term(&r->b, a);
		col(r, C_OFF);
		break;
	}
	case REC_CONNECT:
		col(r, fail ? C_RED : C_CYAN);
		lit(&r->b, "connect ");
		a = m_dest(e);
		term(&r->b, a);
		col(r, C_OFF);
		break;
	case REC_FORK:
		lit(&r->b, "fork ");
		if (!lr_int(e, "child_pid", &v)) {
			snprintf(t, sizeof(t), "%lld", (long long)v);
			lit(&r->b, t);
		}
		break;
	case REC_EXIT:
		if (!lr_int(e, "exit_code", &v))
			snprintf(t, sizeof(t), "exit %lld", (long long)v);
		else if (!lr_int(e, "signal", &v))
			snprintf(t, sizeof(t), "killed by signal %lld", (long long)v);
		else
			snprintf(t, sizeof(t), "exit");
		lit(&r->b, t);
		break;
	case REC_LISTEN:
	case REC_ACCEPT:
		col(r, fail ? C_RED : C_CYAN);
		lit(&r->b, e->kind == REC_LISTEN ? "listen " : "accept from ");
		a = m_dest(e);
		term(&r->b, a);
		col(r, C_OFF);
		break;
	default:
		if (m_file_change(e)) {
			col(r, fail ? C_RED : C_YELLOW);
			term(&r->b, e->kind_name);
			lit(&r->b, " ");
			a = lr_str(e, "path", NULL);
			term(&r->b, a);
			b = lr_str(e, "old_path", NULL);
			if (b) {
				lit(&r->b, " <- ");
				term(&r->b, b);
			}
			col(r, C_OFF);
			break;
		}
		term(&r->b, e->kind_name);
		lit(&r->b, " ");
		esc_term(&r->b, e->line, e->len);
	}
	if (!fail && e->kind == REC_CONNECT && lr_get(e, "error") >= 0)
		lit(&r->b, " (in progress: non-blocking)");
	if (fail && e->kind != REC_EXIT) {
		char *er = lr_str(e, "error", NULL);

		col(r, C_RED);
		lit(&r->b, " = ");
		term(&r->b, er ? er : "failed");
		col(r, C_OFF);
		free(er);
	}
	free(a);
	free(b);
}

static bool selected(const struct rp *r, const struct m_step *s, size_t p, const struct lr_ent *e)
{
	const struct replay_opts *o = r->o;

	if (o->kinds && !(o->kinds & (1ull << e->kind)))
		return false;
	if (o->pid >= 0 && !under(s, p, o->pid))
		return false;
	if (o->since_ns && e->time_ns < o->since_ns)
		return false;
	return !o->until_ns || e->time_ns <= o->until_ns;
}

static void json_event(struct rp *r, const struct lr_ent *e, int depth)
{
	char pre[160], hx[65];

	hex(e->hash, 32, hx);
	jb_raw(&r->b, pre,
	       (size_t)snprintf(pre, sizeof(pre),
				"{\"seq\":%" PRIu64 ",\"hash\":\"%s\",\"depth\":%d,", e->seq, hx,
				depth));
	jb_raw(&r->b, e->line + e->body, e->len - e->body);
	jb_putc(&r->b, '\n');
}

/* After a process's last exec, how that program ended: "-> exit 0", "-> signal 9". */
static void exec_outcome(struct rp *r, const struct lr_ent *e, const struct m_proc *p)
{
	char t[64];
	int64_t v;

	if (!p || e->kind != REC_EXEC || m_failed(e))
		return;
	for (size_t i = 0; i < p->nev; i++)
		if (p->ev[i]->kind == REC_EXEC && !m_failed(p->ev[i]) && p->ev[i]->seq > e->seq)
			return; /* a later exec replaced this program */
	if (!p->exit)
		snprintf(t, sizeof(t), "  -> no exit seen");
	else if (!lr_int(p->exit, "exit_code", &v))
		snprintf(t, sizeof(t), "  -> exit %lld", (long long)v);
	else if (!lr_int(p->exit, "signal", &v))
		snprintf(t, sizeof(t), "  -> signal %lld", (long long)v);
	else
		return;
	col(r, C_DIM);
	lit(&r->b, t);
	col(r, C_OFF);
}

static void text_event(struct rp *r, const struct lr_ent *e, int depth, const struct m_proc *p)
{
	char t[64];

	col(r, C_DIM);
	jb_raw(&r->b, e->time + 11, strlen(e->time) > 26 ? 15 : strlen(e->time) - 11);
	col(r, C_OFF);
	snprintf(t, sizeof(t), " %7lld ", (long long)e->pid);
	lit(&r->b, t);
	for (int d = 0; d < depth && d < 24; d++)
		lit(&r->b, "  ");
	describe(r, e);
	exec_outcome(r, e, p);
	jb_putc(&r->b, '\n');
}

/* The records of a step's processes merged back into log order. */
static int by_seq(const void *a, const void *b)
{
	const struct lr_ent *x = *(const struct lr_ent *const *)a;
	const struct lr_ent *y = *(const struct lr_ent *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void step_header(struct rp *r, const struct m_step *s)
{
	char t[160], d[32];

	if (s->duration_ms >= 0)
		snprintf(d, sizeof(d), "%lld ms", (long long)s->duration_ms);
	else
		snprintf(d, sizeof(d), "no end");
	col(r, C_BOLD);
	snprintf(t, sizeof(t), "== step %lld ", (long long)s->seq);
	lit(&r->b, t);
	term(&r->b, s->name);
	col(r, C_OFF);
	lit(&r->b, "  ");
	col(r, strcmp(s->status, "ok") ? C_RED : C_GREEN);
	term(&r->b, s->status);
	col(r, C_OFF);
	snprintf(t, sizeof(t), "%s%lld, %s, started ", s->exit_code >= 0 ? ", exit " : "",
		 (long long)s->exit_code, d);
	if (s->exit_code < 0)
		snprintf(t, sizeof(t), ", %s, started ", d);
	lit(&r->b, t);
	lit(&r->b, s->start->time);
	if (s->attempt > 1) {
		snprintf(t, sizeof(t), " (attempt %lld)", (long long)s->attempt);
		lit(&r->b, t);
	}
	lit(&r->b, "\n   $ ");
	term(&r->b, s->argv);
	if (s->error) {
		col(r, C_RED);
		lit(&r->b, "\n   error: ");
		term(&r->b, s->error);
		col(r, C_OFF);
	}
	jb_putc(&r->b, '\n');
}

static bool step_wanted(const struct replay_opts *o, const struct m_step *s)
{
	char n[24];

	if (!o->step)
		return true;
	snprintf(n, sizeof(n), "%lld", (long long)s->seq);
	return !strcmp(o->step, s->name) || !strcmp(o->step, n);
}

static void replay_step(struct rp *r, const struct m_step *s)
{
	size_t n = 0, k = 0;
	const struct lr_ent **ev;
	int *dep;

	for (size_t p = 0; p < s->nproc; p++)
		n += s->procs[p].nev;
	ev = xcalloc(n + 1, sizeof(*ev));
	dep = xcalloc(n + 1, sizeof(*dep));
	for (size_t p = 0; p < s->nproc; p++)
		for (size_t i = 0; i < s->procs[p].nev; i++)
			if (selected(r, s, p, s->procs[p].ev[i]))
				ev[k++] = s->procs[p].ev[i];
	qsort(ev, k, sizeof(*ev), by_seq);
	if (!r->o->json) {
		step_header(r, s);
		flush(r, s->start->time_ns);
	}
	for (size_t i = 0; i < k && !r->stop; i++) {
		const struct m_proc *pr = NULL;

		for (size_t p = s->nproc; p-- > 0;)
			if (s->procs[p].pid == ev[i]->pid) {
				dep[i] = depth_of(s, p);
				pr = &s->procs[p];
				break;
			}
		if (r->o->json)
			json_event(r, ev[i], dep[i]);
		else
			text_event(r, ev[i], dep[i], pr);
		flush(r, ev[i]->time_ns);
	}
	free(ev);
	free(dep);
}

int replay_run(const struct m_run *m, const struct replay_opts *o, replay_emit emit, void *ctx)
{
	struct rp r = {.o = o, .emit = emit, .ctx = ctx};
	size_t shown = 0;

	jb_raw(&r.b, "", 0);
	for (size_t i = 0; i < m->nstep && !r.stop; i++)
		if (step_wanted(o, &m->steps[i])) {
			replay_step(&r, &m->steps[i]);
			shown++;
		}
	if (!o->json && !r.stop) {
		char t[160];

		for (size_t i = 0; i < m->nloss; i++) {
			col(&r, C_RED);
			snprintf(t, sizeof(t), "!! events lost at %s\n", m->loss[i]->time);
			lit(&r.b, t);
			col(&r, C_OFF);
		}
		snprintf(t, sizeof(t), "== run %s%s\n", m->status,
			 m->interrupted ? (m->end ? ", interrupted" : ", interrupted (no run_end)")
					: "");
		col(&r, strcmp(m->status, "ok") ? C_RED : C_GREEN);
		lit(&r.b, t);
		col(&r, C_OFF);
		flush(&r, m->end_ns);
	}
	jb_free(&r.b);
	return o->step && !shown ? -1 : 0;
}
