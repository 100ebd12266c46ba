#define _GNU_SOURCE
#include <string.h>

#include "report/doc.h"
#include "report/escape.h"

static void lit(struct jbuf *b, const char *s)
{
	jb_raw(b, s, strlen(s));
}

static void esc(struct jbuf *b, const char *s)
{
	esc_md(b, s, strlen(s));
}

static void table(struct jbuf *b, const struct d_table *t)
{
	if (t->caption[0]) {
		lit(b, "**");
		esc(b, t->caption);
		lit(b, "**\n\n");
	}
	if (!t->nrow) {
		lit(b, "none\n\n");
		return;
	}
	for (size_t c = 0; c < t->ncol; c++) {
		lit(b, "| ");
		esc(b, t->col[c]);
		lit(b, " ");
	}
	lit(b, "|\n");
	for (size_t c = 0; c < t->ncol; c++)
		lit(b, "|---");
	lit(b, "|\n");
	for (size_t r = 0; r < t->nrow; r++) {
		for (size_t c = 0; c < t->ncol; c++) {
			const struct d_str *s = &t->cell[r * t->ncol + c];

			lit(b, "| ");
			if (c == 0 && t->depth[r] > 0) {
				for (int d = 1; d < t->depth[r]; d++)
					lit(b, "&nbsp;&nbsp;");
				lit(b, "└ ");
			}
			esc_md(b, s->s, s->n);
			lit(b, " ");
		}
		lit(b, "|\n");
	}
	lit(b, "\n");
}

void render_md(const struct doc *d, struct jbuf *b)
{
	lit(b, "# ");
	esc(b, d->title);
	lit(b, "\n\n");
	if (d->verified) {
		lit(b, "> ");
		esc(b, d->verified);
		lit(b, "\n\n");
	}
	for (size_t i = 0; i < d->nsec; i++) {
		const struct d_sec *s = d->sec[i];

		lit(b, s->level == 2 ? "## " : "### ");
		esc(b, s->title);
		lit(b, "\n\n");
		if (s->text) {
			esc(b, s->text);
			lit(b, "\n\n");
		}
		for (size_t k = 0; k < s->nf; k++) {
			lit(b, "- **");
			esc(b, s->f[k].key);
			lit(b, "**: ");
			esc_md(b, s->f[k].val.s, s->f[k].val.n);
			lit(b, "\n");
		}
		if (s->nf)
			lit(b, "\n");
		for (size_t k = 0; k < s->nt; k++)
			table(b, s->t[k]);
	}
}
