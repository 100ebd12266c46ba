#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/diff.h"
#include "report/normalize.h"
#include "report/report.h"
#include "util.h"

#define COUNT_MIN_CHANGE 20   /* and half again or half less: a "large" change of counts */
#define DURATION_MIN_MS	 1000 /* and twice as long or half as long */

/* S_DIGEST is compared apart: "normalised path\x1fsha256" of each exec whose digest is
 * known. */
enum set_kind { S_EXEC, S_WRITE, S_NET, S_DIGEST, S_KINDS };
static const char *const set_name[S_KINDS] = {"executable", "file written", "network destination",
					      "executable digest"};

/* The normalised things one step (all its attempts) did, sorted and unique. */
struct set {
	char **v;   /* normalised: what is compared */
	char **raw; /* the first path seen with that normal form: what is shown */
	size_t n;
	size_t *slot; /* open addressing over v: index + 1, 0 free */
	size_t cap;
};

static size_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		h = (h ^ *c) * 1099511628211ull;
	return (size_t)h;
}

/* Where v is in the set's index, or the free slot where it would go. */
static size_t *slot_of(const struct set *s, const char *v)
{
	size_t i = str_hash(v) & (s->cap - 1);

	while (s->slot[i] && strcmp(s->v[s->slot[i] - 1], v))
		i = (i + 1) & (s->cap - 1);
	return &s->slot[i];
}

static void set_grow(struct set *s)
{
	free(s->slot);
	s->cap = s->cap ? s->cap * 2 : 64;
	s->slot = xcalloc(s->cap, sizeof(*s->slot));
	for (size_t i = 0; i < s->n; i++)
		*slot_of(s, s->v[i]) = i + 1;
}

struct step_sets {
	const char *name;
	struct set s[S_KINDS];
	unsigned long nexec, nopen, nconn;
	int64_t duration_ms;
	const char *status;
};

/* Adds raw (taking it) under key (taking its bytes). */
static void set_put(struct set *s, struct jbuf b, char *raw)
{
	size_t *slot;

	if (2 * (s->n + 1) > s->cap)
		set_grow(s);
	slot = slot_of(s, b.p);
	if (*slot) {
		free(raw);
		jb_free(&b);
		return;
	}
	*slot = s->n + 1;
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->raw = xrealloc(s->raw, (s->n + 1) * sizeof(*s->raw));
	s->v[s->n] = b.p;
	s->raw[s->n++] = raw;
}

/* Adds raw (taking it) under its normal form, or under itself when norm is false. */
static void set_add(struct set *s, char *raw, bool norm)
{
	struct jbuf b = {0};

	if (!raw)
		raw = xstrdup("?");
	if (norm)
		norm_text(&b, raw, strlen(raw));
	else
		jb_raw(&b, raw, strlen(raw));
	set_put(s, b, raw);
}

/* An exec with its file's digest, when it is known: the same path running another file
 * in the other run is an anomaly that the path alone does not show. */
static void add_digest(struct set *s, const struct lr_ent *e)
{
	char *path = lr_str(e, "path", NULL), *d = lr_str(e, "sha256", NULL);
	struct jbuf b = {0};

	if (path && d && strlen(d) == 64) {
		norm_text(&b, path, strlen(path));
		jb_putc(&b, 0x1f);
		jb_raw(&b, d, 64);
		set_put(s, b, xasprintf("%s: sha256 %s", path, d));
	}
	free(path);
	free(d);
}

/* m_dest into a static buffer, for one use in an expression. */
static const char *m_dest_tmp(const struct lr_ent *e)
{
	static char buf[512];
	char *d = m_dest(e);

	snprintf(buf, sizeof(buf), "%s", d);
	free(d);
	return buf;
}

static void sets_of_step(struct step_sets *ss, const struct m_step *st)
{
	for (size_t p = 0; p < st->nproc; p++)
		for (size_t k = 0; k < st->procs[p].nev; k++) {
			const struct lr_ent *e = st->procs[p].ev[k];

			if (e->kind == REC_EXEC && !m_failed(e)) {
				set_add(&ss->s[S_EXEC], lr_str(e, "path", NULL), true);
				add_digest(&ss->s[S_DIGEST], e);
			} else if (e->kind == REC_OPEN && !m_failed(e) &&
				   (m_open_flags(e) & (F_WRITE | F_CREATE | F_TRUNC)))
				set_add(&ss->s[S_WRITE], lr_str(e, "path", NULL), true);
			else if (m_file_change(e) && !m_failed(e) && e->kind != REC_UNLINK)
				set_add(&ss->s[S_WRITE], lr_str(e, "path", NULL), true);
			else if (e->kind == REC_CONNECT) /* addresses and ports as they are */
				set_add(&ss->s[S_NET], m_dest(e), lr_get(e, "addr") < 0);
			else if (e->kind == REC_LISTEN && !m_failed(e))
				set_add(&ss->s[S_NET], xasprintf("listen %s", m_dest_tmp(e)),
					false);
		}
	ss->nexec += st->nexec;
	ss->nopen += st->nread + st->nwrite;
	ss->nconn += st->nconn;
	if (st->duration_ms > 0)
		ss->duration_ms += st->duration_ms;
	ss->status = st->status;
}

/* One entry per step name, attempts (retries) merged. */
static struct step_sets *sets_of(const struct m_run *m, size_t *n)
{
	struct step_sets *v = xcalloc(m->nstep + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; i < m->nstep; i++) {
		size_t k = 0;

		while (k < *n && strcmp(v[k].name, m->steps[i].name))
			k++;
		if (k == *n)
			v[(*n)++].name = m->steps[i].name;
		sets_of_step(&v[k], &m->steps[i]);
	}
	return v;
}

static void sets_free(struct step_sets *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < S_KINDS; k++) {
			for (size_t j = 0; j < v[i].s[k].n; j++) {
				free(v[i].s[k].v[j]);
				free(v[i].s[k].raw[j]);
			}
			free(v[i].s[k].v);
			free(v[i].s[k].raw);
			free(v[i].s[k].slot);
		}
	free(v);
}

static void item(struct diff *d, const char *step, const char *what, const char *detail,
		 const char *key, int side)
{
	d->it = xrealloc(d->it, (d->n + 1) * sizeof(*d->it));
	d->it[d->n++] = (struct diff_item){.step = xstrdup(step),
					   .what = xstrdup(what),
					   .detail = xstrdup(detail),
					   .key = xstrdup(key ? key : detail),
					   .side = side};
}

static bool in_set(const struct set *s, const char *v)
{
	return s->n && *slot_of(s, v);
}

static bool large(unsigned long a, unsigned long b)
{
	unsigned long lo = a < b ? a : b, hi = a < b ? b : a;

	return hi - lo >= COUNT_MIN_CHANGE && hi * 2 > lo * 3;
}

static void counts(struct diff *d, const struct step_sets *x, const struct step_sets *y)
{
	static const char *const what[] = {"execs", "opens", "connections"};
	unsigned long a[] = {x->nexec, x->nopen, x->nconn}, b[] = {y->nexec, y->nopen, y->nconn};
	char t[128];

	for (int i = 0; i < 3; i++)
		if (large(a[i], b[i])) {
			snprintf(t, sizeof(t), "%s: %lu -> %lu", what[i], a[i], b[i]);
			item(d, x->name, "count", t, NULL, 0);
		}
	if (x->duration_ms >= 0 && y->duration_ms >= 0 &&
	    llabs(y->duration_ms - x->duration_ms) >= DURATION_MIN_MS &&
	    (y->duration_ms > 2 * x->duration_ms || x->duration_ms > 2 * y->duration_ms)) {
		snprintf(t, sizeof(t), "%lld ms -> %lld ms", (long long)x->duration_ms,
			 (long long)y->duration_ms);
		item(d, x->name, "duration", t, NULL, 0);
	}
	if (strcmp(x->status, y->status)) {
		snprintf(t, sizeof(t), "status %s -> %s", x->status, y->status);
		item(d, x->name, "step status", t, NULL, strcmp(y->status, "ok") ? 1 : 0);
	}
}

/* The digests x's step ran from normalised path p (p ending at its 0x1f), joined. */
static char *digests_for(const struct set *x, const char *p, size_t n)
{
	struct jbuf b = {0};

	for (size_t i = 0; i < x->n; i++)
		if (!strncmp(x->v[i], p, n + 1)) {
			if (b.len)
				jb_raw(&b, ", ", 2);
			jb_raw(&b, x->v[i] + n + 1, strlen(x->v[i] + n + 1));
		}
	return b.p;
}

/* Paths both runs executed, where B ran a file A never did under that path (a binary
 * replaced between the runs); paths whose digest A does not know are not compared. */
static void digests(struct diff *d, const struct step_sets *x, const struct step_sets *y)
{
	const struct set *a = &x->s[S_DIGEST], *b = &y->s[S_DIGEST];

	for (size_t v = 0; v < b->n; v++) {
		size_t n = strcspn(b->v[v], "\x1f");
		char *was;

		if (in_set(a, b->v[v]))
			continue;
		was = digests_for(a, b->v[v], n);
		if (was) {
			char *t = xasprintf("%s (the other run: sha256 %s)", b->raw[v], was);
			item(d, y->name, set_name[S_DIGEST], t, b->v[v], 1);
			free(t);
		}
		free(was);
	}
}

void diff_runs(struct diff *d, const struct m_run *a, const struct m_run *b)
{
	size_t na, nb;
	struct step_sets *sa = sets_of(a, &na), *sb = sets_of(b, &nb);

	*d = (struct diff){0};
	for (size_t i = 0; i < nb; i++) {
		size_t j = 0;

		while (j < na && strcmp(sa[j].name, sb[i].name))
			j++;
		if (j == na) {
			item(d, sb[i].name, "step", "only in B", NULL, 1);
			continue;
		}
		for (int k = 0; k < S_DIGEST; k++) {
			for (size_t v = 0; v < sb[i].s[k].n; v++)
				if (!in_set(&sa[j].s[k], sb[i].s[k].v[v]))
					item(d, sb[i].name, set_name[k], sb[i].s[k].raw[v],
					     sb[i].s[k].v[v], 1);
			for (size_t v = 0; v < sa[j].s[k].n; v++)
				if (!in_set(&sb[i].s[k], sa[j].s[k].v[v]))
					item(d, sa[j].name, set_name[k], sa[j].s[k].raw[v],
					     sa[j].s[k].v[v], -1);
		}
		digests(d, &sa[j], &sb[i]);
		counts(d, &sa[j], &sb[i]);
	}
	for (size_t j = 0; j < na; j++) {
		size_t i = 0;

		while (i < nb && strcmp(sa[j].name, sb[i].name))
			i++;
		if (i == nb)
			item(d, sa[j].name, "step", "only in A (missing in B)", NULL, -1);
	}
	sets_free(sa, na);
	sets_free(sb, nb);
}

static bool has_item(const struct diff *d, const struct diff_item *x)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->it[i].side == x->side && !strcmp(d->it[i].step, x->step) &&
		    !strcmp(d->it[i].what, x->what) && !strcmp(d->it[i].key, x->key))
			return true;
	return false;
}

void diff_baselines(struct diff *d, const struct m_run *const *base, size_t nbase,
		    const struct m_run *b)
{
	struct diff *each = xcalloc(nbase + 1, sizeof(*each));

	*d = (struct diff){0};
	for (size_t i = 0; i < nbase; i++)
		diff_runs(&each[i], base[i], b);
	for (size_t k = 0; nbase && k < each[0].n; k++) {
		const struct diff_item *x = &each[0].it[k];
		bool all = x->side > 0;

		for (size_t i = 1; all && i < nbase; i++)
			all = has_item(&each[i], x);
		if (all)
			item(d, x->step, x->what, x->detail, x->key, x->side);
	}
	for (size_t i = 0; i < nbase; i++)
		diff_free(&each[i]);
	free(each);
}

void diff_section(struct doc *doc, const struct diff *d, const struct m_run *a,
		  const struct m_run *b)
{
	struct d_sec *s = d_section(doc, "baseline", "Anomalies against the baseline", 2);
	struct d_table *t =
	    d_table(s, "", (const char *const[]){"step", "what", "detail", "side", NULL});

	d_text(s,
	       "Compared with run %s (paths normalised: temporary names, pids, ids and "
	       "numbers). %zu difference(s).",
	       a->id, d->n);
	(void)b;
	for (size_t i = 0; i < d->n; i++) {
		const struct diff_item *x = &d->it[i];
		const char *side = x->side > 0	 ? "only in this run"
				   : x->side < 0 ? "only in the baseline"
						 : "changed";

		d_row(t, 0, x->step, strlen(x->step), x->what, strlen(x->what), x->detail,
		      strlen(x->detail), side, strlen(side));
	}
}

void diff_free(struct diff *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->it[i].step);
		free(d->it[i].what);
		free(d->it[i].detail);
		free(d->it[i].key);
	}
	free(d->it);
	*d = (struct diff){0};
}
