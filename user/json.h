/* json: a growable buffer and the one JSON string escaper every output goes through.
 *
 * Strings are bytes from the kernel or from users: valid UTF-8 passes through, control
 * characters are escaped, and each byte of invalid UTF-8 becomes a lone low surrogate
 * \udc80-\udcff (Python's "surrogateescape"), so nothing is dropped and the original bytes
 * can be recovered exactly. */
#ifndef RUNSEAL_JSON_H
#define RUNSEAL_JSON_H

#include <stddef.h>
#include <stdint.h>

struct jbuf {
	char *p;
	size_t len, cap;
};

void jb_free(struct jbuf *b);
void jb_raw(struct jbuf *b, const char *s, size_t n);
void jb_putc(struct jbuf *b, char c);
void jb_str(struct jbuf *b, const char *s, size_t n); /* quoted and escaped */
void jb_i64(struct jbuf *b, int64_t v);
void jb_u64(struct jbuf *b, uint64_t v);
/* Length of the valid UTF-8 sequence at s[0..n), 0 when the bytes there are not one. */
size_t utf8_len(const unsigned char *s, size_t n);

#endif
