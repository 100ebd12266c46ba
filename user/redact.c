/* redact: keep secret param values and secret-looking environment values out of records.
 *
 * Matching rule: scan left to right; at the earliest position where any secret matches, the
 * longest secret there starts a redacted span. A later secret match that starts inside the
 * span is consumed; if it runs past the span's end the span is widened to cover it (so no
 * byte of any secret survives) and the longer secret names the marker.
 */
#define _GNU_SOURCE
#include "redact.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define MARK_OPEN  "[REDACTED:"
#define TAIL_MIN   3 /* shorter tails are too likely to be innocent text */
#define POS_NONE   SIZE_MAX
#define POS_UNSET  (SIZE_MAX - 1)
#define STACK_NEXT 16

/* redact() returning NULL means "use s as is": failing open would leak the secret, so an
 * allocation failure while redacting must stop the process instead. */
static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fputs("runseal: out of memory while redacting secrets; aborting\n", stderr);
		abort();
	}
	return q;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int strv_push(char ***v, size_t *n, const char *s, size_t len)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	*v = nv;
	nv[*n] = strndup(s, len);
	if (!nv[*n])
		return -1;
	(*n)++;
	return 0;
}

/* Splits csv into trimmed, non-empty items; all or nothing. */
static int parse_csv(const char *csv, char ***out, size_t *nout)
{
	char **v = NULL;
	size_t n = 0;

	while (*csv) {
		size_t span = strcspn(csv, ",");
		const char *b = csv, *e = csv + span;

		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (e > b && strv_push(&v, &n, b, (size_t)(e - b)) < 0) {
			free_strv(v, n);
			return -1;
		}
		csv += span + (csv[span] == ',');
	}
	*out = v;
	*nout = n;
	return 0;
}

void redact_init(struct redactor *r)
{
	memset(r, 0, sizeof(*r));
	if (redact_set_env_patterns(r, REDACT_DEFAULT_ENV_PATTERNS) < 0) {
		fputs("runseal: out of memory setting up secret redaction; aborting\n", stderr);
		abort();
	}
}

void redact_free(struct redactor *r)
{
	if (!r)
		return;
	free_strv(r->names, r->n);
	/* The values are the secrets themselves: do not leave them in freed memory. */
	for (size_t i = 0; i < r->n; i++)
		if (r->values[i])
			explicit_bzero(r->values[i], r->lens[i]);
	free_strv(r->values, r->n);
	free(r->lens);
	free_strv(r->env_patterns, r->npatterns);
	memset(r, 0, sizeof(*r));
}

/* One pattern: the secret itself or one of its encodings, under the secret's name. */
static int add_pattern(struct redactor *r, const char *name, const char *value, size_t len)
{
	char **nv, **vv;
	size_t *lv;

	for (size_t i = 0; i < r->n; i++)
		if (r->lens[i] == len && !memcmp(r->values[i], value, len))
			return 0;
	/* Arrays may end up longer than n after a partial failure; that is harmless. */
	nv = realloc(r->names, (r->n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	r->names = nv;
	vv = realloc(r->values, (r->n + 1) * sizeof(*vv));
	if (!vv)
		return -1;
	r->values = vv;
	lv = realloc(r->lens, (r->n + 1) * sizeof(*lv));
	if (!lv)
		return -1;
	r->lens = lv;
	nv[r->n] = strdup(name ? name : "");
	vv[r->n] = strndup(value, len);
	if (!nv[r->n] || !vv[r->n]) {
		free(nv[r->n]);
		free(vv[r->n]);
		return -1;
	}
	lv[r->n] = len;
	r->n++;
	return 0;
}

/* Encodings shorter than this are too likely to occur in innocent text. */
#define ENC_MIN 6

/* Adds enc (a malloc'd encoding of a secret), then wipes and frees it. */
static int add_encoding(struct redactor *r, const char *name, char *enc, size_t len)
{
	int rc = len >= ENC_MIN ? add_pattern(r, name, enc, len) : 0;

	explicit_bzero(enc, len);
	free(enc);
	return rc;
}

static int add_hex(struct redactor *r, const char *name, const char *v, size_t len, bool upper)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *d = upper ? up : lo;
	char *h = xrealloc(NULL, 2 * len + 1);

	for (size_t i = 0; i < len; i++) {
		h[2 * i] = d[(unsigned char)v[i] >> 4];
		h[2 * i + 1] = d[(unsigned char)v[i] & 15];
	}
	return add_encoding(r, name, h, 2 * len);
}

/* The base64 characters that only the secret's bits determine, when it starts at byte k of
 * a 3-byte group of a longer stream: the first ceil(8k/6) characters carry bits of what comes
 * before it, and the last partial one bits of what follows. k = 0 also matches the secret
 * encoded alone. url: the base64url alphabet. */
static int add_base64(struct redactor *r, const char *name, const char *v, size_t len, size_t k,
		      bool url)
{
	size_t n = k + len, first = (8 * k + 5) / 6, last = 8 * n / 6;
	unsigned char *in = xrealloc(NULL, n);
	char *out = xrealloc(NULL, 4 * ((n + 2) / 3) + 1);

	memset(in, 0, k);
	memcpy(in + k, v, len);
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	explicit_bzero(in, n);
	free(in);
	for (size_t i = first; url && i < last; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	memmove(out, out + first, last - first);
	return add_encoding(r, name, out, last - first);
}

/* Percent-encoding of every byte outside RFC 3986's unreserved set; form: space as '+';
 * keep_slash: as Python's urllib.parse.quote does by default. */
static int add_url(struct redactor *r, const char *name, const char *v, size_t len, bool upper,
		   bool form, bool keep_slash)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *d = upper ? up : lo;
	char *u = xrealloc(NULL, 3 * len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (isalnum(c) || strchr("-._~", c) || (keep_slash && c == '/')) {
			u[o++] = (char)c;
		} else if (form && c == ' ') {
			u[o++] = '+';
		} else {
			u[o++] = '%';
			u[o++] = d[c >> 4];
			u[o++] = d[c & 15];
		}
	}
	return add_encoding(r, name, u, o);
}

static int add_encodings(struct redactor *r, const char *name, const char *v, size_t len)
{
	int rc = add_hex(r, name, v, len, false) | add_hex(r, name, v, len, true);

	for (size_t k = 0; k < 3; k++)
		rc |= add_base64(r, name, v, len, k, false) | add_base64(r, name, v, len, k, true);
	for (int m = 0; m < 8; m++)
		rc |= add_url(r, name, v, len, m & 1, m & 2, m & 4);
	return rc ? -1 : 0;
}

int redact_add_secret(struct redactor *r, const char *name, const char *value)
{
	size_t len;

	if (!r || !value)
		return -1;
	if (!*value)
		return 0;
	len = strlen(value);
	if (add_pattern(r, name, value, len) < 0 || add_encodings(r, name, value, len) < 0)
		return -1;
	return 0;
}

int redact_set_env_patterns(struct redactor *r, const char *csv)
{
	char **v = NULL;
	size_t n = 0;

	if (!r || !csv || parse_csv(csv, &v, &n) < 0)
		return -1;
	free_strv(r->env_patterns, r->npatterns);
	r->env_patterns = v;
	r->npatterns = n;
	return 0;
}

bool redact_env_name(const struct redactor *r, const char *name)
{
	if (!r || !name)
		return false;
	for (size_t i = 0; i < r->npatterns; i++)
		if (strcasestr(name, r->env_patterns[i]))
			return true;
	return false;
}

struct out {
	char *p;
	size_t len, cap;
};

static void out_put(struct out *o, const void *d, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 64;

		while (cap < o->len + n + 1)
			cap *= 2;
		o->p = xrealloc(o->p, cap);
		o->cap = cap;
	}
	memcpy(o->p + o->len, d, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_mark(struct out *o, const char *name)
{
	out_put(o, MARK_OPEN, strlen(MARK_OPEN));
	out_put(o, name, strlen(name));
	out_put(o, "]", 1);
}

struct scan {
	const struct redactor *r;
	const char *s;
	size_t len;
	size_t *next; /* earliest occurrence of each secret at or after the last query */
};

static size_t occurrence(const struct scan *sc, size_t k, size_t from, size_t lim)
{
	const char *p;

	if (from >= lim)
		return POS_NONE;
	p = memmem(sc->s + from, lim - from, sc->r->values[k], sc->r->lens[k]);
	return p ? (size_t)(p - sc->s) : POS_NONE;
}

/* Cached so that a string with many matches is not rescanned once per match per secret. */
static bool first_match(struct scan *sc, size_t from, size_t *start, size_t *k)
{
	size_t best = POS_NONE, bk = 0;

	for (size_t i = 0; i < sc->r->n; i++) {
		size_t *nx = &sc->next[i];

		if (*nx == POS_UNSET || (*nx != POS_NONE && *nx < from))
			*nx = occurrence(sc, i, from, sc->len);
		if (*nx < best ||
		    (*nx == best && *nx != POS_NONE && sc->r->lens[i] > sc->r->lens[bk])) {
			best = *nx;
			bk = i;
		}
	}
	*start = best;
	*k = bk;
	return best != POS_NONE;
}

/* Last start of secret k inside (start, end), POS_NONE if none: it reaches furthest right. */
static size_t last_inside(const struct scan *sc, size_t k, size_t start, size_t end)
{
	size_t lim = end - 1 + sc->r->lens[k], last = POS_NONE, q;

	if (lim > sc->len)
		lim = sc->len;
	for (q = occurrence(sc, k, start + 1, lim); q != POS_NONE;
	     q = occurrence(sc, k, q + 1, lim))
		last = q;
	return last;
}

static void widen_span(const struct scan *sc, size_t start, size_t *end, size_t *k)
{
	const size_t *lens = sc->r->lens;
	bool grown = true;

	while (grown) {
		grown = false;
		for (size_t i = 0; i < sc->r->n; i++) {
			size_t q = last_inside(sc, i, start, *end);

			if (q == POS_NONE || q + lens[i] <= *end)
				continue;
			*end = q + lens[i];
			if (lens[i] > lens[*k])
				*k = i;
			grown = true;
		}
	}
}

/* Start of the longest tail of s that is a proper prefix (TAIL_MIN bytes or more) of a
 * secret, or POS_NONE. */
static size_t tail_start(const struct redactor *r, const char *s, size_t len, size_t *tk)
{
	size_t best = POS_NONE;

	for (size_t k = 0; k < r->n; k++) {
		const char *v = r->values[k];
		size_t m = r->lens[k] - 1 < len ? r->lens[k] - 1 : len;

		for (; m >= TAIL_MIN && len - m <= best; m--) {
			if (s[len - m] != v[0] || memcmp(s + len - m, v, m) != 0)
				continue;
			if (len - m < best || r->lens[k] > r->lens[*tk]) {
				best = len - m;
				*tk = k;
			}
			break;
		}
	}
	return best;
}

static void scan_spans(struct scan *sc, struct out *o, size_t tail, size_t tk)
{
	const struct redactor *r = sc->r;
	size_t pos = 0, start, end, k;

	while (first_match(sc, pos, &start, &k) && start < tail) {
		end = start + r->lens[k];
		widen_span(sc, start, &end, &k);
		if (end > tail) {
			end = sc->len;
			if (r->lens[tk] > r->lens[k])
				k = tk;
			tail = POS_NONE;
		}
		out_put(o, sc->s + pos, start - pos);
		out_mark(o, r->names[k]);
		pos = end;
	}
	if (tail != POS_NONE) {
		out_put(o, sc->s + pos, tail - pos);
		out_mark(o, r->names[tk]);
		pos = sc->len;
	}
	if (o->p)
		out_put(o, sc->s + pos, sc->len - pos);
}

/* On the stack for the usual handful of secrets: redact() runs on every string. */
static size_t *next_cache(size_t *stack, size_t n)
{
	size_t *next = n > STACK_NEXT ? xrealloc(NULL, n * sizeof(*next)) : stack;

	for (size_t i = 0; i < n; i++)
		next[i] = POS_UNSET;
	return next;
}

char *redact(const struct redactor *r, const char *s, size_t len, bool truncated, size_t *outlen)
{
	size_t stack_next[STACK_NEXT], tail = POS_NONE, tk = 0;
	struct scan sc = {.r = r, .s = s, .len = len};
	struct out o = {0};

	if (!r || !r->n || !s)
		return NULL;
	if (truncated)
		tail = tail_start(r, s, len, &tk);
	sc.next = next_cache(stack_next, r->n);
	scan_spans(&sc, &o, tail, tk);
	if (sc.next != stack_next)
		free(sc.next);
	if (o.p && outlen)
		*outlen = o.len;
	return o.p;
}
