#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/model.h"

char *m_join(const struct lr_ent *e, const char *key, const char *sep)
{
	int a = lr_get(e, key);
	struct jbuf b = {0};

	if (a < 0 || e->tok[a].type != J_ARR)
		return NULL;
	jb_raw(&b, "", 0);
	for (unsigned i = 0; i < e->tok[a].count; i++) {
		int t = json_at(e->tok, a, i);

		if (i)
			jb_raw(&b, sep, strlen(sep));
		if (t >= 0)
			json_unstr(&e->tok[t], &b);
	}
	return b.p;
}

char *m_argv(const struct lr_ent *e)
{
	static const char safe[] = "@%+=:,./-_";
	int a = lr_get(e, "argv");
	struct jbuf b = {0}, w = {0};

	if (a < 0 || e->tok[a].type != J_ARR)
		return NULL;
	jb_raw(&b, "", 0);
	for (unsigned i = 0; i < e->tok[a].count; i++) {
		bool plain;

		w.len = 0;
		jb_raw(&w, "", 0);
		json_unstr(&e->tok[json_at(e->tok, a, i)], &w);
		plain = w.len > 0;
		for (size_t k = 0; k < w.len && plain; k++) {
			unsigned char c = (unsigned char)w.p[k];

			plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9') || (c && strchr(safe, c));
		}
		if (i)
			jb_putc(&b, ' ');
		if (plain) {
			jb_raw(&b, w.p, w.len);
			continue;
		}
		jb_putc(&b, '\'');
		for (size_t k = 0; k < w.len; k++) {
			if (w.p[k] == '\'')
				jb_raw(&b, "'\\''", 4);
			else
				jb_putc(&b, w.p[k]);
		}
		jb_putc(&b, '\'');
	}
	jb_free(&w);
	return b.p;
}

unsigned m_open_flags(const struct lr_ent *e)
{
	int a = lr_get(e, "flags");
	unsigned f = 0;
	int64_t ret = 0;

	for (unsigned i = 0; a >= 0 && e->tok[a].type == J_ARR && i < e->tok[a].count; i++) {
		const struct jtok *t = &e->tok[json_at(e->tok, a, i)];

		if (t->n == 4 && !memcmp(t->s, "read", 4))
			f |= F_READ;
		else if (t->n == 5 && !memcmp(t->s, "write", 5))
			f |= F_WRITE;
		else if (t->n == 6 && !memcmp(t->s, "create", 6))
			f |= F_CREATE;
		else if (t->n == 8 && !memcmp(t->s, "truncate", 8))
			f |= F_TRUNC;
	}
	if (!lr_int(e, "ret", &ret) && ret < 0)
		f |= F_FAIL;
	return f;
}

bool m_file_change(const struct lr_ent *e)
{
	return rec_schema[e->kind].flags & RK_FILE_CHANGE;
}

bool m_failed(const struct lr_ent *e)
{
	int64_t ret;
	int t;

	if (lr_int(e, "ret", &ret) || ret >= 0)
		return false;
	/* A non-blocking connect under way: its outcome is not a failure of the call. */
	t = lr_get(e, "error");
	return !(e->kind == REC_CONNECT && t >= 0 && e->tok[t].n == 11 &&
		 !memcmp(e->tok[t].s, "EINPROGRESS", 11));
}

char *m_dest(const struct lr_ent *e)
{
	char *addr = lr_str(e, "addr", NULL), *s;
	int64_t port = -1;

	if (!addr) {
		s = lr_str(e, "path", NULL);
		return s ? s : xstrdup("?");
	}
	lr_int(e, "port", &port);
	s = strchr(addr, ':') ? xasprintf("[%s]:%lld", addr, (long long)port)
			      : xasprintf("%s:%lld", addr, (long long)port);
	free(addr);
	return s;
}

static void push(const struct lr_ent ***v, size_t *n, const struct lr_ent *e)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = e;
}

/* Retries and rollbacks give a name more than one step: events go to the latest. */
static struct m_step *step_named(struct m_run *m, const char *name)
{
	for (size_t i = m->nstep; name && i-- > 0;)
		if (!strcmp(m->steps[i].name, name))
			return &m->steps[i];
	return NULL;
}

static size_t proc_find(const struct m_step *s, int64_t pid)
{
	for (size_t i = s->nproc; i-- > 0;)
		if (s->procs[i].pid == pid)
			return i;
	return SIZE_MAX;
}

static size_t proc_add(struct m_step *s, int64_t pid, int64_t ppid, uint64_t t)
{
	size_t i = proc_find(s, pid);

	if (i != SIZE_MAX)
		return i;
	s->procs = xrealloc(s->procs, (s->nproc + 1) * sizeof(*s->procs));
	s->procs[s->nproc] =
	    (struct m_proc){.pid = pid, .ppid = ppid, .parent = proc_find(s, ppid), .t0 = t};
	return s->nproc++;
}

static void step_start(struct m_run *m, const struct lr_ent *e)
{
	struct m_step *s;

	m->steps = xrealloc(m->steps, (m->nstep + 1) * sizeof(*m->steps));
	s = &m->steps[m->nstep++];
	*s = (struct m_step){.start = e, .exit_code = -1, .duration_ms = -1};
	s->name = xstrdup(e->step ? e->step : "?");
	if (lr_int(e, "step_seq", &s->seq))
		s->seq = (int64_t)m->nstep;
	if (lr_int(e, "attempt", &s->attempt))
		s->attempt = 1;
	s->argv = m_argv(e);
	s->status = xstrdup("running");
}

static void step_end(struct m_step *s, const struct lr_ent *e)
{
	s->end = e;
	free(s->status);
	s->status = lr_str(e, "status", NULL);
	if (!s->status)
		s->status = xstrdup("?");
	if (lr_int(e, "exit_code", &s->exit_code))
		s->exit_code = -1;
	if (lr_int(e, "duration_ms", &s->duration_ms))
		s->duration_ms = -1;
	s->error = lr_str(e, "error", NULL);
}

static void count(struct m_step *s, const struct lr_ent *e)
{
	unsigned f;

	switch (e->kind) {
	case REC_EXEC:
		s->nexec++;
		break;
	case REC_OPEN:
		f = m_open_flags(e);
		if (f & (F_WRITE | F_CREATE | F_TRUNC))
			s->nwrite++;
		else
			s->nread++;
		break;
	case REC_CONNECT:
	case REC_LISTEN:
	case REC_ACCEPT:
		s->nconn++;
		break;
	case REC_FORK:
	case REC_EXIT:
		break;
	default:
		if (m_file_change(e))
			s->nwrite++;
		else
			s->nother++;
	}
	if (m_failed(e))
		s->nfail++;
}

/* A kernel record: into its process, under its step. */
static void kernel_rec(struct m_run *m, const struct lr_ent *e)
{
	struct m_step *s = step_named(m, e->step);
	size_t p;
	int64_t child;

	if (!s || e->pid < 0) {
		push(&m->orphan, &m->norphan, e);
		return;
	}
	p = proc_add(s, e->pid, e->ppid, e->time_ns);
	push(&s->procs[p].ev, &s->procs[p].nev, e);
	if (e->kind == REC_FORK && !lr_int(e, "child_pid", &child))
		proc_add(s, child, e->pid, e->time_ns);
	else if (e->kind == REC_EXIT)
		s->procs[p].exit = e;
	count(s, e);
}

static void take(struct m_run *m, const struct lr_ent *e)
{
	struct m_step *s;

	switch (e->kind) {
	case REC_RUN_START:
		m->start = e;
		m->start_ns = e->time_ns;
		break;
	case REC_RUN_END:
		m->end = e;
		m->end_ns = e->time_ns;
		break;
	case REC_STEP_START:
		step_start(m, e);
		if (e->pid >= 0)
			proc_add(&m->steps[m->nstep - 1], e->pid, e->ppid, e->time_ns);
		break;
	case REC_STEP_END:
		s = step_named(m, e->step);
		if (s)
			step_end(s, e);
		break;
	case REC_LOSS:
		push(&m->loss, &m->nloss, e);
		break;
	case REC_RECOVERY:
		push(&m->recov, &m->nrecov, e);
		break;
	default:
		kernel_rec(m, e);
	}
}

/* The recoveries that concern the run: written while it ran, or, for a run without
 * run_end (runseal or the host died), the first one after its last record: the next start
 * recovering the segment the run was being written to. */
static void recoveries(struct m_run *m, uint64_t last_seq)
{
	size_t k = 0;

	for (size_t i = 0; i < m->nrecov; i++) {
		const struct lr_ent *c = m->recov[i];
		bool keep = m->end ? c->seq > (m->start ? m->start->seq : 0) && c->seq < m->end->seq
				   : c->seq > last_seq && !k;

		if (keep)
			m->recov[k++] = c;
	}
	m->nrecov = k;
}

/* The log's recoveries, and what the next start found of this run (run_interrupted:
 * another run's record about this one, or about another). */
static void notes(struct m_run *m, const struct logread *r, const char *id)
{
	size_t n;
	const struct lr_ent *const *note = lr_notes(r, &n);

	for (size_t i = 0; i < n; i++) {
		const struct lr_ent *e = note[i];
		char *of;

		if (e->kind == REC_RECOVERY) {
			take(m, e);
			continue;
		}
		if (e->kind != REC_RUN_INTERRUPTED)
			continue;
		of = lr_str(e, "interrupted_run", NULL);
		if (of && !strcmp(of, id))
			m->found = e;
		free(of);
	}
}

int model_build(struct m_run *m, struct logread *r, const char *id, char *err, size_t errlen)
{
	const struct lr_ent *e;
	size_t seen = 0;
	uint64_t last_seq = 0;

	*m = (struct m_run){0};
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->events = m->lost = -1;
	/* Nothing before the run's first record concerns it. */
	if (lr_seek_run(r, id) < 0)
		lr_rewind(r);
	while ((e = lr_next(r))) {
		/* the log's notes, below, whatever the selection held */
		if (e->kind == REC_RECOVERY || e->kind == REC_RUN_INTERRUPTED || strcmp(e->run, id))
			continue;
		seen++;
		last_seq = e->seq;
		take(m, e);
	}
	if (lr_error(r) || !seen) {
		if (lr_error(r))
			snprintf(err, errlen, "%s", lr_error(r));
		else
			snprintf(err, errlen, "run %s: no verified record of it in the log", id);
		model_free(m);
		return -1;
	}
	notes(m, r, id);
	recoveries(m, last_seq);
	if (m->end) {
		m->status = lr_str(m->end, "status", NULL);
		lr_int(m->end, "events", &m->events);
		lr_int(m->end, "lost", &m->lost);
		m->interrupted = lr_get(m->end, "interrupted") >= 0 &&
				 !json_is(&m->end->tok[lr_get(m->end, "interrupted")], "null") &&
				 !json_is(&m->end->tok[lr_get(m->end, "interrupted")], "false");
	} else {
		m->interrupted = true;
	}
	if (!m->status)
		m->status = xstrdup(m->end ? "?" : "interrupted");
	if (!m->start_ns && m->nstep)
		m->start_ns = m->steps[0].start->time_ns;
	return 0;
}

void model_free(struct m_run *m)
{
	for (size_t i = 0; i < m->nstep; i++) {
		struct m_step *s = &m->steps[i];

		for (size_t p = 0; p < s->nproc; p++)
			free(s->procs[p].ev);
		free(s->procs);
		free(s->name);
		free(s->status);
		free(s->argv);
		free(s->error);
	}
	free(m->steps);
	free(m->loss);
	free(m->recov);
	free(m->orphan);
	free(m->status);
	*m = (struct m_run){0};
}
