/* doc: a report as content (sections of fields and tables of raw strings), built once from
 * the run model and rendered by render_md, render_html and render_json. Strings are kept
 * as the log's bytes: each renderer escapes them with its format's one escaper. */
#ifndef RUNSEAL_DOC_H
#define RUNSEAL_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"
#include "report/model.h"

struct d_str {
	char *s;
	size_t n;
};

struct d_table {
	char *caption;
	size_t ncol, nrow;
	char **col;
	struct d_str *cell; /* nrow * ncol */
	int *depth;	    /* per row: indentation of a tree, 0 otherwise */
};

struct d_field {
	char *key;
	struct d_str val;
};

struct d_sec {
	char *id, *title;
	int level;  /* 2 or 3 */
	char *text; /* a sentence of ours (not from the log), or NULL */
	struct d_field *f;
	size_t nf;
	struct d_table **t; /* each allocated alone: pointers to them stay valid */
	size_t nt;
	int step; /* index of the step a section describes, or -1 */
};

struct doc {
	char *title;
	struct d_sec **sec;
	size_t nsec;
	const struct m_run *run;   /* for the drawings */
	const struct lr_verify *v; /* the verification result every output states */
	char *verified;		   /* it in one line (verify_line), or NULL */
};

struct d_sec *d_section(struct doc *d, const char *id, const char *title, int level);
void d_text(struct d_sec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void d_field(struct d_sec *s, const char *key, const char *v, size_t n);
void d_fieldf(struct d_sec *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct d_table *d_table(struct d_sec *s, const char *caption, const char *const *cols);
/* Adds a row; cells are (pointer, length) pairs, ncol of them; a NULL pointer is "". */
void d_row(struct d_table *t, int depth, ...);
void doc_free(struct doc *d);

void render_md(const struct doc *d, struct jbuf *out);
void render_html(const struct doc *d, struct jbuf *out);
void render_json(const struct doc *d, struct jbuf *out);
/* fmt: md, html or json; -1 for another. */
int doc_render(const struct doc *d, const char *fmt, struct jbuf *out);

#endif
