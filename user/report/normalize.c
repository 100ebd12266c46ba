#define _GNU_SOURCE
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "report/normalize.h"

static bool is_uuid(const char *s, size_t n)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (n < 36 || (n > 36 && isalnum((unsigned char)s[36])))
		return false;
	for (size_t i = 0; i < 36; i++)
		if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* One run of letters and digits. */
static void word(struct jbuf *b, const char *w, size_t n, bool tmp_context)
{
	size_t digits = 0, hexd = 0, upper = 0, lower = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w[i];

		digits += isdigit(c) != 0;
		hexd += isxdigit(c) && !isupper(c);
		upper += isupper(c) != 0;
		lower += islower(c) != 0;
	}
	if (digits == n) {
		jb_putc(b, '#');
	} else if (n >= 8 && hexd == n && digits) {
		jb_raw(b, "<hex>", 5);
	} else if (tmp_context && n >= 6 && ((digits && digits < n) || (upper && lower))) {
		jb_raw(b, "<tmp>", 5);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (!isdigit((unsigned char)w[i])) {
				jb_putc(b, w[i]);
				continue;
			}
			jb_putc(b, '#');
			while (i + 1 < n && isdigit((unsigned char)w[i + 1]))
				i++;
		}
	}
}

void norm_text(struct jbuf *b, const char *s, size_t n)
{
	bool tmp = memmem(s, n, "tmp", 3) != NULL;

	jb_raw(b, "", 0);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		if (is_uuid(s + i, n - i) && (i == 0 || !isalnum((unsigned char)s[i - 1]))) {
			jb_raw(b, "<id>", 4);
			i += 36;
			continue;
		}
		while (j < n && isalnum((unsigned char)s[j]))
			j++;
		if (j == i) {
			jb_putc(b, s[i++]);
			continue;
		}
		/* The random part of a temporary name follows a separator, not a directory. */
		word(b, s + i, j - i, tmp && i > 0 && strchr("._-", s[i - 1]));
		i = j;
	}
}
