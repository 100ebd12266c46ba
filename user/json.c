#define _GNU_SOURCE
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "util.h"

void jb_free(struct jbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static void reserve(struct jbuf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void jb_raw(struct jbuf *b, const char *s, size_t n)
{
	reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void jb_putc(struct jbuf *b, char c)
{
	jb_raw(b, &c, 1);
}

/* Integers are in every record: formatted by hand, printf is a measurable cost there. */
void jb_u64(struct jbuf *b, uint64_t v)
{
	char t[24];
	int i = sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jb_raw(b, t + i, sizeof(t) - (size_t)i);
}

void jb_i64(struct jbuf *b, int64_t v)
{
	if (v < 0) {
		jb_putc(b, '-');
		jb_u64(b, (uint64_t)0 - (uint64_t)v);
		return;
	}
	jb_u64(b, (uint64_t)v);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or values
 * past U+10FFFF), 0 if the bytes there are not one. */
size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

void jb_str(struct jbuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	char t[8];

	reserve(b, n + 2);
	b->p[b->len++] = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t l;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			size_t j = i + 1;
			while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\')
				j++;
			jb_raw(b, str + i, j - i);
			i = j;
			continue;
		}
		switch (c) {
		case '"':
			jb_raw(b, "\\\"", 2);
			break;
		case '\\':
			jb_raw(b, "\\\\", 2);
			break;
		case '\n':
			jb_raw(b, "\\n", 2);
			break;
		case '\t':
			jb_raw(b, "\\t", 2);
			break;
		case '\r':
			jb_raw(b, "\\r", 2);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				jb_raw(b, t, (size_t)snprintf(t, sizeof(t), "\\u%04x", c));
				break;
			}
			l = utf8_len(s + i, n - i);
			if (l) {
				jb_raw(b, str + i, l);
				i += l;
				continue;
			}
			jb_raw(b, t, (size_t)snprintf(t, sizeof(t), "\\udc%02x", c));
		}
		i++;
	}
	jb_putc(b, '"');
}

/* ---- the scanner ------------------------------------------------------------------------ */

struct scan {
	const char *s;
	size_t n, i;
	struct jtok *t;
	unsigned max, nt;
	int err; /* -1 syntax, -2 limits */
};

static void blanks(struct scan *c)
{
	while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
			       c->s[c->i] == '\r'))
		c->i++;
}

static int new_tok(struct scan *c, enum jtype type)
{
	if (c->nt == c->max) {
		c->err = -2;
		return -1;
	}
	c->t[c->nt] = (struct jtok){.type = type, .s = c->s + c->i};
	return (int)c->nt++;
}

static void scan_string(struct scan *c)
{
	int k = new_tok(c, J_STR);
	size_t st = ++c->i;

	if (k < 0)
		return;
	while (c->i < c->n && c->s[c->i] != '"') {
		unsigned char ch = (unsigned char)c->s[c->i];

		if (ch < 0x20) {
			c->err = -1;
			return;
		}
		c->i += ch == '\\' ? 2 : 1;
	}
	if (c->i >= c->n) {
		c->err = -1;
		return;
	}
	c->t[k].s = c->s + st;
	c->t[k].n = (unsigned)(c->i - st);
	c->t[k].next = c->nt;
	c->i++;
}

static void scan_atom(struct scan *c)
{
	static const char num[] = "0123456789+-.eE";
	size_t st = c->i;
	enum jtype type = J_NUM;
	int k;

	if (c->s[st] == 't' || c->s[st] == 'f')
		type = J_BOOL;
	else if (c->s[st] == 'n')
		type = J_NULL;
	else if (!strchr(num, c->s[st]) || !c->s[st]) {
		c->err = -1;
		return;
	}
	while (c->i < c->n && c->s[c->i] &&
	       (type == J_NUM ? strchr(num, c->s[c->i]) != NULL
			      : (c->s[c->i] >= 'a' && c->s[c->i] <= 'z')))
		c->i++;
	k = new_tok(c, type);
	if (k < 0)
		return;
	c->t[k].s = c->s + st;
	c->t[k].n = (unsigned)(c->i - st);
	c->t[k].next = c->nt;
	if ((type == J_BOOL && !json_is(&c->t[k], "true") && !json_is(&c->t[k], "false")) ||
	    (type == J_NULL && !json_is(&c->t[k], "null")))
		c->err = -1;
}

static void scan_value(struct scan *c, int depth);

/* An array or an object: the opening bracket is at c->i. */
static void scan_container(struct scan *c, int depth)
{
	bool obj = c->s[c->i] == '{';
	char close = obj ? '}' : ']';
	int k = new_tok(c, obj ? J_OBJ : J_ARR);

	if (k < 0)
		return;
	if (depth >= JSON_DEPTH_MAX) {
		c->err = -2;
		return;
	}
	c->i++;
	blanks(c);
	if (c->i < c->n && c->s[c->i] == close) {
		c->i++;
		c->t[k].next = c->nt;
		c->t[k].n = (unsigned)(c->s + c->i - c->t[k].s);
		return;
	}
	while (!c->err) {
		blanks(c);
		if (obj) {
			if (c->i >= c->n || c->s[c->i] != '"') {
				c->err = -1;
				return;
			}
			scan_string(c);
			blanks(c);
			if (c->err || c->i >= c->n || c->s[c->i] != ':') {
				c->err = c->err ? c->err : -1;
				return;
			}
			c->i++;
		}
		scan_value(c, depth + 1);
		c->t[k].count++;
		blanks(c);
		if (c->err || c->i >= c->n) {
			c->err = c->err ? c->err : -1;
			return;
		}
		if (c->s[c->i] == close) {
			c->i++;
			c->t[k].next = c->nt;
			c->t[k].n = (unsigned)(c->s + c->i - c->t[k].s);
			return;
		}
		if (c->s[c->i] != ',') {
			c->err = -1;
			return;
		}
		c->i++;
	}
}

static void scan_value(struct scan *c, int depth)
{
	blanks(c);
	if (c->i >= c->n) {
		c->err = -1;
		return;
	}
	if (c->s[c->i] == '{' || c->s[c->i] == '[')
		scan_container(c, depth);
	else if (c->s[c->i] == '"')
		scan_string(c);
	else
		scan_atom(c);
}

int json_scan(const char *s, size_t n, struct jtok *t, unsigned max)
{
	struct scan c = {.s = s, .n = n, .t = t, .max = max};

	if (n > UINT32_MAX / 2)
		return -2;
	scan_value(&c, 0);
	blanks(&c);
	if (!c.err && c.i != n)
		c.err = -1;
	return c.err ? c.err : (int)c.nt;
}

static bool str_eq(const struct jtok *t, const char *key)
{
	struct jbuf b = {0};
	bool eq;

	/* Keys runseal writes have no escapes: compare directly, decode only when needed. */
	if (!memchr(t->s, '\\', t->n))
		return strlen(key) == t->n && !memcmp(t->s, key, t->n);
	eq = json_unstr(t, &b) == 0 && b.len == strlen(key) && !memcmp(b.p, key, b.len);
	jb_free(&b);
	return eq;
}

int json_get(const struct jtok *t, int obj, const char *key)
{
	unsigned i;

	if (obj < 0 || t[obj].type != J_OBJ)
		return -1;
	i = (unsigned)obj + 1;
	for (unsigned m = 0; m < t[obj].count; m++) {
		unsigned v = t[i].next;

		if (t[i].type == J_STR && str_eq(&t[i], key))
			return (int)v;
		i = t[v].next;
	}
	return -1;
}

int json_at(const struct jtok *t, int arr, unsigned idx)
{
	unsigned i;

	if (arr < 0 || t[arr].type != J_ARR || idx >= t[arr].count)
		return -1;
	i = (unsigned)arr + 1;
	while (idx--)
		i = t[i].next;
	return (int)i;
}

static int hex4(const char *s, unsigned *v)
{
	*v = 0;
	for (int k = 0; k < 4; k++) {
		char c = s[k];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

static void put_utf8(struct jbuf *b, unsigned cp)
{
	char u[4];

	if (cp < 0x80) {
		jb_putc(b, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		jb_raw(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		jb_raw(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		jb_raw(b, u, 4);
	}
}

/* One \u escape (and its low half when it is a high surrogate) at s[i]; returns the bytes
 * consumed after the backslash, or 0 when malformed. */
static size_t unescape_u(const char *s, size_t n, size_t i, struct jbuf *out)
{
	unsigned cp, lo;

	if (i + 5 > n || hex4(s + i + 1, &cp))
		return 0;
	if (cp >= 0xdc80 && cp <= 0xdcff) {
		jb_putc(out, (char)(cp - 0xdc00)); /* a raw byte, surrogate-escaped */
		return 5;
	}
	if (cp >= 0xd800 && cp <= 0xdbff && i + 11 <= n && s[i + 5] == '\\' && s[i + 6] == 'u' &&
	    !hex4(s + i + 7, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
		put_utf8(out, 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00));
		return 11;
	}
	put_utf8(out, cp);
	return 5;
}

int json_unstr(const struct jtok *t, struct jbuf *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

	if (t->type != J_STR)
		return -1;
	jb_raw(out, "", 0);
	for (size_t i = 0; i < t->n;) {
		size_t j = i;
		const char *e;

		while (j < t->n && t->s[j] != '\\')
			j++;
		jb_raw(out, t->s + i, j - i);
		if (j == t->n)
			break;
		if (j + 1 >= t->n)
			return -1;
		if (t->s[j + 1] == 'u') {
			size_t used = unescape_u(t->s, t->n, j + 1, out);

			if (!used)
				return -1;
			i = j + 1 + used;
			continue;
		}
		e = strchr(from, t->s[j + 1]);
		if (!e || !*e)
			return -1;
		jb_putc(out, to[e - from]);
		i = j + 2;
	}
	return 0;
}

int json_int(const struct jtok *t, int64_t *v)
{
	char tmp[24], *end;

	if (t->type != J_NUM || t->n == 0 || t->n >= sizeof(tmp) || memchr(t->s, '.', t->n) ||
	    memchr(t->s, 'e', t->n) || memchr(t->s, 'E', t->n))
		return -1;
	memcpy(tmp, t->s, t->n);
	tmp[t->n] = '\0';
	errno = 0;
	*v = strtoll(tmp, &end, 10);
	return errno || *end ? -1 : 0;
}

int json_is(const struct jtok *t, const char *word)
{
	return t->type != J_STR && t->n == strlen(word) && !memcmp(t->s, word, t->n);
}
