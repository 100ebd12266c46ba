/* escape: one escaper per output format. Every string from the log is hostile: file names
 * and argv are bytes a runbook's process chose. Each escaper shows them literally: bytes
 * that are not printable valid UTF-8 (control characters, terminal escapes, newlines that
 * would forge a line, invalid UTF-8) become a visible \xNN; nothing is dropped. */
#ifndef RUNSEAL_ESCAPE_H
#define RUNSEAL_ESCAPE_H

#include <stddef.h>

#include "json.h"

/* For a terminal: also escapes backslash (so \xNN is unambiguous) and C1 controls. */
void esc_term(struct jbuf *b, const char *s, size_t n);
/* For HTML text and attribute values (quoted with "). */
void esc_html(struct jbuf *b, const char *s, size_t n);
/* For Markdown text, also inside a table cell: every character Markdown or inline HTML
 * would interpret is backslash-escaped or an entity. */
void esc_md(struct jbuf *b, const char *s, size_t n);

#endif
