#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/doc.h"
#include "report/escape.h"
#include "util.h"

#define TREE_ROWS_MAX 300

/* No external asset: the page works offline and from an e-mail attachment. */
static const char style[] =
    "<style>\n"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;"
    "max-width:1200px;padding:0 1.5em 3em;color:#1d1d1f;background:#fff}\n"
    "h1{font-size:1.6em;margin:1em 0 .3em}h2{border-bottom:2px solid #ddd;margin-top:2em}"
    "h3{margin-top:1.5em}\n"
    "table{border-collapse:collapse;width:100%;margin:.5em 0 1.2em;table-layout:auto}\n"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;"
    "overflow-wrap:break-word;white-space:pre-wrap}\n"
    "th{background:#f2f2f4}tr:nth-child(even) td{background:#fafafa}\n"
    "dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}"
    "dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere;white-space:pre-wrap}\n"
    ".caption{font-weight:600;margin-top:1em}.ok{color:#1a7f37}.bad{color:#c62828}\n"
    "nav{columns:3;font-size:.9em}svg{max-width:100%;height:auto;display:block}\n"
    "svg text{font:11px monospace}.note{color:#555}\n"
    "@media print{nav{display:none}body{max-width:none;font-size:10pt}"
    "h2,h3{break-after:avoid}tr,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}\n"
    "</style>\n";

static void lit(struct jbuf *b, const char *s)
{
	jb_raw(b, s, strlen(s));
}

static void esc(struct jbuf *b, const char *s)
{
	esc_html(b, s, strlen(s));
}

static void litf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void litf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	char t[512];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	jb_raw(b, t, n < 0 ? 0 : (size_t)n >= sizeof(t) ? sizeof(t) - 1 : (size_t)n);
}

static const char *status_colour(const char *st)
{
	if (!strcmp(st, "ok"))
		return "#2e7d32";
	if (!strcmp(st, "running"))
		return "#9e9e9e";
	if (!strcmp(st, "timeout"))
		return "#ef6c00";
	return "#c62828";
}

/* The steps on one time axis, as bars from start to end. */
static void timeline(struct jbuf *b, const struct m_run *m)
{
	uint64_t t0 = m->start_ns, t1 = m->end_ns;
	const int left = 200, width = 760, row = 22;

	for (size_t i = 0; i < m->nstep; i++) {
		const struct m_step *s = &m->steps[i];
		uint64_t e = s->end ? s->end->time_ns : s->start->time_ns;

		if (!t0 || s->start->time_ns < t0)
			t0 = s->start->time_ns;
		if (e > t1)
			t1 = e;
	}
	if (t1 <= t0)
		t1 = t0 + 1;
	litf(b,
	     "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"step timeline\" "
	     "viewBox=\"0 0 %d %zu\" width=\"%d\">\n",
	     left + width + 10, m->nstep * (size_t)row + 30, left + width + 10);
	for (size_t i = 0; i < m->nstep; i++) {
		const struct m_step *s = &m->steps[i];
		uint64_t a = s->start->time_ns, e = s->end ? s->end->time_ns : a;
		double x = left + (double)(a - t0) * width / (double)(t1 - t0);
		double w = (double)(e - a) * width / (double)(t1 - t0);
		int y = 10 + (int)i * row;

		litf(b, "<text x=\"4\" y=\"%d\">%lld. ", y + 14, (long long)s->seq);
		esc(b, s->name);
		lit(b, "</text>");
		litf(b,
		     "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"16\" rx=\"3\" "
		     "fill=\"%s\"><title>",
		     x, y, w < 2 ? 2 : w, status_colour(s->status));
		esc(b, s->name);
		lit(b, ": ");
		esc(b, s->status);
		litf(b, ", %lld ms</title></rect>\n", (long long)s->duration_ms);
	}
	litf(b,
	     "<text x=\"%d\" y=\"%zu\">0 s</text><text x=\"%d\" y=\"%zu\" "
	     "text-anchor=\"end\">%.2f s</text>\n",
	     left, m->nstep * (size_t)row + 26, left + width, m->nstep * (size_t)row + 26,
	     (double)(t1 - t0) / 1e9);
	lit(b, "</svg>\n");
}

static char *proc_label(const struct m_proc *p)
{
	char *name = NULL, *comm = NULL, *s;
	int64_t code = -1;

	for (size_t i = 0; i < p->nev; i++) {
		if (p->ev[i]->kind == REC_EXEC && !m_failed(p->ev[i])) {
			free(name);
			name = lr_str(p->ev[i], "path", NULL);
		}
		if (!comm)
			comm = lr_str(p->ev[i], "comm", NULL);
	}
	if (p->exit)
		lr_int(p->exit, "exit_code", &code);
	s = xasprintf("%lld %s%s", (long long)p->pid,
		      name   ? name
		      : comm ? comm
			     : "(forked)",
		      p->exit ? "" : " (no exit seen)");
	if (p->exit && code >= 0) {
		char *t = xasprintf("%s exit %lld", s, (long long)code);

		free(s);
		s = t;
	}
	free(name);
	free(comm);
	return s;
}

struct tree {
	struct jbuf *b;
	const struct m_step *s;
	int rows;
	int *y; /* per process: the row it was drawn at, -1 not yet */
};

static void tree_node(struct tree *t, size_t i, int depth)
{
	const struct m_step *s = t->s;
	int y, x = 8 + depth * 16;
	char *label;

	if (t->rows >= TREE_ROWS_MAX || t->y[i] >= 0)
		return;
	y = 14 + t->rows++ * 18;
	t->y[i] = y;
	if (s->procs[i].parent != SIZE_MAX && t->y[s->procs[i].parent] >= 0)
		litf(t->b, "<path d=\"M%d %d V%d H%d\" fill=\"none\" stroke=\"#888\"/>", x - 12,
		     t->y[s->procs[i].parent] + 4, y - 4, x - 4);
	label = proc_label(&s->procs[i]);
	litf(t->b, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">", x,
	     y - 4, s->procs[i].exit ? "#1565c0" : "#ef6c00", x + 8, y);
	esc(t->b, label);
	lit(t->b, "</text>\n");
	free(label);
	for (size_t c = 0; c < s->nproc; c++)
		if (s->procs[c].parent == i && c != i)
			tree_node(t, c, depth + 1);
}

static void proc_tree(struct jbuf *b, const struct m_step *s)
{
	struct tree t = {.b = b, .s = s, .y = xmalloc((s->nproc + 1) * sizeof(int))};
	size_t rows = s->nproc < TREE_ROWS_MAX ? s->nproc : TREE_ROWS_MAX;

	for (size_t i = 0; i < s->nproc; i++)
		t.y[i] = -1;
	litf(b,
	     "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"process tree\" "
	     "viewBox=\"0 0 1000 %zu\" width=\"1000\">\n",
	     rows * 18 + 10);
	for (size_t i = 0; i < s->nproc; i++)
		if (s->procs[i].parent == SIZE_MAX)
			tree_node(&t, i, 0);
	for (size_t i = 0; i < s->nproc; i++) /* a cycle from pid reuse: draw what is left */
		tree_node(&t, i, 0);
	lit(b, "</svg>\n");
	if (s->nproc > TREE_ROWS_MAX)
		litf(b,
		     "<p class=\"note\">%zu processes; the first %d are drawn, the table below "
		     "has them all.</p>\n",
		     s->nproc, TREE_ROWS_MAX);
	free(t.y);
}

static void table(struct jbuf *b, const struct d_table *t)
{
	if (t->caption[0]) {
		lit(b, "<div class=\"caption\">");
		esc(b, t->caption);
		lit(b, "</div>\n");
	}
	if (!t->nrow) {
		lit(b, "<p class=\"note\">none</p>\n");
		return;
	}
	lit(b, "<table><thead><tr>");
	for (size_t c = 0; c < t->ncol; c++) {
		lit(b, "<th>");
		esc(b, t->col[c]);
		lit(b, "</th>");
	}
	lit(b, "</tr></thead><tbody>\n");
	for (size_t r = 0; r < t->nrow; r++) {
		lit(b, "<tr>");
		for (size_t c = 0; c < t->ncol; c++) {
			const struct d_str *s = &t->cell[r * t->ncol + c];

			if (c == 0 && t->depth[r])
				litf(b, "<td style=\"padding-left:%dem\">", t->depth[r]);
			else
				lit(b, "<td>");
			esc_html(b, s->s, s->n);
			lit(b, "</td>");
		}
		lit(b, "</tr>\n");
	}
	lit(b, "</tbody></table>\n");
}

static void section(struct jbuf *b, const struct doc *d, const struct d_sec *s)
{
	litf(b, "<section id=\"%s\"><h%d>", s->id, s->level);
	esc(b, s->title);
	litf(b, "</h%d>\n", s->level);
	if (s->text) {
		lit(b, "<p>");
		esc(b, s->text);
		lit(b, "</p>\n");
	}
	if (s->nf) {
		lit(b, "<dl>\n");
		for (size_t k = 0; k < s->nf; k++) {
			lit(b, "<dt>");
			esc(b, s->f[k].key);
			lit(b, "</dt><dd>");
			esc_html(b, s->f[k].val.s, s->f[k].val.n);
			lit(b, "</dd>\n");
		}
		lit(b, "</dl>\n");
	}
	if (!strcmp(s->id, "steps"))
		timeline(b, d->run);
	if (s->step >= 0 && (size_t)s->step < d->run->nstep && d->run->steps[s->step].nproc)
		proc_tree(b, &d->run->steps[s->step]);
	for (size_t k = 0; k < s->nt; k++)
		table(b, s->t[k]);
	lit(b, "</section>\n");
}

void render_html(const struct doc *d, struct jbuf *b)
{
	lit(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	       "style-src 'unsafe-inline'; img-src data:\">\n<title>");
	esc(b, d->title);
	lit(b, "</title>\n");
	lit(b, style);
	lit(b, "</head><body>\n<h1>");
	esc(b, d->title);
	litf(b, "</h1>\n<p class=\"%s\"><strong>", d->v->rc ? "bad" : "ok");
	lit(b, d->v->rc ? "The log did NOT verify" : "Verified");
	lit(b, "</strong>: ");
	if (d->verified)
		esc(b, d->verified);
	lit(b, "</p>\n<nav>");
	for (size_t i = 0; i < d->nsec; i++) {
		if (d->sec[i]->level != 2)
			continue;
		litf(b, "<a href=\"#%s\">", d->sec[i]->id);
		esc(b, d->sec[i]->title);
		lit(b, "</a><br>");
	}
	lit(b, "</nav>\n");
	for (size_t i = 0; i < d->nsec; i++)
		section(b, d, d->sec[i]);
	lit(b, "</body></html>\n");
}
