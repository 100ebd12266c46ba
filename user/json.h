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

/* The one JSON scanner: bounded (token count given by the caller, nesting at most
 * JSON_DEPTH_MAX), no allocation, for lines read back from a log, which may be hostile.
 * Tokens are in document order; an object's children alternate key, value. Each token's
 * `next` is the index just past it and all its descendants, so siblings are skipped in O(1). */
#define JSON_DEPTH_MAX 32
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jtok {
	const char *s;	/* strings: between the quotes, still escaped; others: the text */
	unsigned n;	/* bytes at s (a log line is at most LOG_LINE_MAX) */
	unsigned next;	/* index past this token's subtree */
	unsigned count; /* children of an array, members of an object */
	enum jtype type;
};
/* Scans exactly one value filling s[0..n) (surrounding blanks allowed). Returns the number
 * of tokens, -1 when the text is not JSON, -2 when it needs more than max tokens or is
 * nested deeper than JSON_DEPTH_MAX. */
int json_scan(const char *s, size_t n, struct jtok *t, unsigned max);
/* The value of member key of object token obj, or -1. */
int json_get(const struct jtok *t, int obj, const char *key);
/* The i-th element of array token arr, or -1. */
int json_at(const struct jtok *t, int arr, unsigned i);
/* Appends a string token's bytes, unescaped; \udc80-\udcff become the raw bytes they
 * stand for (the encoder's surrogateescape), so hostile bytes come back exactly. -1 when
 * the token is not a string or an escape is malformed. */
int json_unstr(const struct jtok *t, struct jbuf *out);
/* An integer token (no fraction or exponent) into v; -1 otherwise. */
int json_int(const struct jtok *t, int64_t *v);
/* True for a token that is the literal word (true, false, null). */
int json_is(const struct jtok *t, const char *word);

#endif
