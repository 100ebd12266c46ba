#define _GNU_SOURCE
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

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
