#define _GNU_SOURCE
#include <string.h>

#include "report/doc.h"

static void key(struct jbuf *b, const char *k)
{
	jb_str(b, k, strlen(k));
	jb_putc(b, ':');
}

static void str(struct jbuf *b, const char *s)
{
	jb_str(b, s, strlen(s));
}

static void table(struct jbuf *b, const struct d_table *t)
{
	jb_putc(b, '{');
	key(b, "caption");
	str(b, t->caption);
	jb_putc(b, ',');
	key(b, "columns");
	jb_putc(b, '[');
	for (size_t c = 0; c < t->ncol; c++) {
		if (c)
			jb_putc(b, ',');
		str(b, t->col[c]);
	}
	jb_raw(b, "],", 2);
	key(b, "rows");
	jb_putc(b, '[');
	for (size_t r = 0; r < t->nrow; r++) {
		jb_raw(b, r ? ",{" : "{", r ? 2 : 1);
		key(b, "depth");
		jb_i64(b, t->depth[r]);
		for (size_t c = 0; c < t->ncol; c++) {
			jb_putc(b, ',');
			key(b, t->col[c]);
			jb_str(b, t->cell[r * t->ncol + c].s, t->cell[r * t->ncol + c].n);
		}
		jb_putc(b, '}');
	}
	jb_raw(b, "]}", 2);
}

static void section(struct jbuf *b, const struct d_sec *s)
{
	jb_putc(b, '{');
	key(b, "id");
	str(b, s->id);
	jb_putc(b, ',');
	key(b, "title");
	str(b, s->title);
	jb_putc(b, ',');
	key(b, "text");
	if (s->text)
		str(b, s->text);
	else
		jb_raw(b, "null", 4);
	jb_putc(b, ',');
	key(b, "fields");
	jb_putc(b, '{');
	for (size_t k = 0; k < s->nf; k++) {
		if (k)
			jb_putc(b, ',');
		key(b, s->f[k].key);
		jb_str(b, s->f[k].val.s, s->f[k].val.n);
	}
	jb_raw(b, "},", 2);
	key(b, "tables");
	jb_putc(b, '[');
	for (size_t k = 0; k < s->nt; k++) {
		if (k)
			jb_putc(b, ',');
		table(b, s->t[k]);
	}
	jb_raw(b, "]}", 2);
}

void render_json(const struct doc *d, struct jbuf *b)
{
	jb_putc(b, '{');
	key(b, "format");
	str(b, "runseal-report/1");
	jb_putc(b, ',');
	key(b, "title");
	str(b, d->title);
	jb_putc(b, ',');
	key(b, "run");
	str(b, d->run->id);
	jb_putc(b, ',');
	key(b, "verified");
	jb_raw(b, d->v->rc == 0 ? "true" : "false", d->v->rc == 0 ? 4 : 5);
	jb_putc(b, ',');
	key(b, "verification");
	jb_putc(b, '{');
	key(b, "summary");
	str(b, d->verified ? d->verified : "");
	jb_putc(b, ',');
	key(b, "errors");
	jb_u64(b, d->v->errors);
	jb_putc(b, ',');
	key(b, "warnings");
	jb_u64(b, d->v->warnings);
	jb_putc(b, ',');
	key(b, "root_key");
	str(b, d->v->root_key);
	jb_putc(b, ',');
	key(b, "log_first_seq");
	jb_u64(b, d->v->first_seq);
	jb_putc(b, ',');
	key(b, "log_last_seq");
	jb_u64(b, d->v->last_seq);
	jb_putc(b, '}');
	jb_putc(b, ',');
	key(b, "sections");
	jb_putc(b, '[');
	for (size_t i = 0; i < d->nsec; i++) {
		if (i)
			jb_putc(b, ',');
		section(b, d->sec[i]);
	}
	jb_raw(b, "]}\n", 3);
}
