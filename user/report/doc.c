#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/doc.h"
#include "util.h"

struct d_sec *d_section(struct doc *d, const char *id, const char *title, int level)
{
	struct d_sec *s;

	d->sec = xrealloc(d->sec, (d->nsec + 1) * sizeof(*d->sec));
	s = d->sec[d->nsec++] = xmalloc(sizeof(*s));
	*s = (struct d_sec){.id = xstrdup(id), .title = xstrdup(title), .level = level, .step = -1};
	return s;
}

void d_text(struct d_sec *s, const char *fmt, ...)
{
	va_list ap;
	char *t;

	va_start(ap, fmt);
	if (vasprintf(&t, fmt, ap) < 0)
		err(1, "vasprintf");
	va_end(ap);
	free(s->text);
	s->text = t;
}

void d_field(struct d_sec *s, const char *key, const char *v, size_t n)
{
	struct d_field *f;

	s->f = xrealloc(s->f, (s->nf + 1) * sizeof(*s->f));
	f = &s->f[s->nf++];
	f->key = xstrdup(key);
	f->val.s = xmalloc(n + 1);
	if (n)
		memcpy(f->val.s, v, n);
	f->val.s[n] = '\0';
	f->val.n = n;
}

void d_fieldf(struct d_sec *s, const char *key, const char *fmt, ...)
{
	va_list ap;
	char *t;

	va_start(ap, fmt);
	if (vasprintf(&t, fmt, ap) < 0)
		err(1, "vasprintf");
	va_end(ap);
	d_field(s, key, t, strlen(t));
	free(t);
}

struct d_table *d_table(struct d_sec *s, const char *caption, const char *const *cols)
{
	struct d_table *t;

	s->t = xrealloc(s->t, (s->nt + 1) * sizeof(*s->t));
	t = s->t[s->nt++] = xmalloc(sizeof(*t));
	*t = (struct d_table){.caption = xstrdup(caption)};
	while (cols[t->ncol])
		t->ncol++;
	t->col = xcalloc(t->ncol, sizeof(*t->col));
	for (size_t i = 0; i < t->ncol; i++)
		t->col[i] = xstrdup(cols[i]);
	return t;
}

void d_row(struct d_table *t, int depth, ...)
{
	va_list ap;

	t->cell = xrealloc(t->cell, (t->nrow + 1) * t->ncol * sizeof(*t->cell));
	t->depth = xrealloc(t->depth, (t->nrow + 1) * sizeof(*t->depth));
	t->depth[t->nrow] = depth;
	va_start(ap, depth);
	for (size_t i = 0; i < t->ncol; i++) {
		const char *p = va_arg(ap, const char *);
		size_t n = va_arg(ap, size_t);
		struct d_str *c = &t->cell[t->nrow * t->ncol + i];

		if (!p)
			n = 0;
		c->s = xmalloc(n + 1);
		if (n)
			memcpy(c->s, p, n);
		c->s[n] = '\0';
		c->n = n;
	}
	va_end(ap);
	t->nrow++;
}

void doc_free(struct doc *d)
{
	for (size_t i = 0; i < d->nsec; i++) {
		struct d_sec *s = d->sec[i];

		for (size_t k = 0; k < s->nf; k++) {
			free(s->f[k].key);
			free(s->f[k].val.s);
		}
		for (size_t k = 0; k < s->nt; k++) {
			struct d_table *t = s->t[k];

			for (size_t c = 0; c < t->nrow * t->ncol; c++)
				free(t->cell[c].s);
			for (size_t c = 0; c < t->ncol; c++)
				free(t->col[c]);
			free(t->col);
			free(t->cell);
			free(t->depth);
			free(t->caption);
			free(t);
		}
		free(s->f);
		free(s->t);
		free(s->id);
		free(s->title);
		free(s->text);
		free(s);
	}
	free(d->sec);
	free(d->title);
	free(d->verified);
	*d = (struct doc){0};
}

int doc_render(const struct doc *d, const char *fmt, struct jbuf *out)
{
	if (!strcmp(fmt, "md"))
		render_md(d, out);
	else if (!strcmp(fmt, "html"))
		render_html(d, out);
	else if (!strcmp(fmt, "json"))
		render_json(d, out);
	else
		return -1;
	return 0;
}
