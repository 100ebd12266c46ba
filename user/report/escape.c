#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "report/escape.h"

static void put_x(struct jbuf *b, unsigned char c)
{
	char t[8];

	jb_raw(b, t, (size_t)snprintf(t, sizeof(t), "\\x%02x", c));
}

/* Walks s: calls one for each printable character (ASCII or a valid UTF-8 sequence that
 * is not a C1 control), put_x for the rest. */
static void walk(struct jbuf *b, const char *s, size_t n,
		 void (*one)(struct jbuf *b, const char *c, size_t len))
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t l = u[i] < 0x80 ? 1 : utf8_len(u + i, n - i);

		if ((l == 1 && (u[i] < 0x20 || u[i] == 0x7f)) || l == 0 ||
		    (l == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0)) {
			put_x(b, u[i]);
			i++;
			continue;
		}
		one(b, s + i, l);
		i += l;
	}
}

static void term_one(struct jbuf *b, const char *c, size_t len)
{
	if (*c == '\\')
		jb_raw(b, "\\\\", 2);
	else
		jb_raw(b, c, len);
}

void esc_term(struct jbuf *b, const char *s, size_t n)
{
	walk(b, s, n, term_one);
}

static void html_one(struct jbuf *b, const char *c, size_t len)
{
	switch (*c) {
	case '&':
		jb_raw(b, "&amp;", 5);
		break;
	case '<':
		jb_raw(b, "&lt;", 4);
		break;
	case '>':
		jb_raw(b, "&gt;", 4);
		break;
	case '"':
		jb_raw(b, "&quot;", 6);
		break;
	case '\'':
		jb_raw(b, "&#39;", 5);
		break;
	default:
		jb_raw(b, c, len);
	}
}

void esc_html(struct jbuf *b, const char *s, size_t n)
{
	walk(b, s, n, html_one);
}

static void md_one(struct jbuf *b, const char *c, size_t len)
{
	if (*c == '<')
		jb_raw(b, "&lt;", 4);
	else if (*c == '>')
		jb_raw(b, "&gt;", 4);
	else if (*c == '&')
		jb_raw(b, "&amp;", 5);
	else if (len == 1 && strchr("\\`*_{}[]|~", *c)) {
		jb_putc(b, '\\');
		jb_putc(b, *c);
	} else
		jb_raw(b, c, len);
}

void esc_md(struct jbuf *b, const char *s, size_t n)
{
	walk(b, s, n, md_one);
}
