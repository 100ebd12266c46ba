#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "json.h"
#include "logfmt.h"
#include "util.h"

/* Nesting allowed inside an entry: records nest two levels (run_start.params, loss.kinds,
 * exec.argv); 32 leaves room and keeps a hostile line from costing more than a bitmap. */
#define JSON_DEPTH_MAX 32

/* ---- hashing ------------------------------------------------------------------------- */

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Fetched once: EVP_sha256() looks the algorithm up (a lock, a hash table) on every call,
 * which costs more than hashing a typical entry. Kept for the process's life. */
static const EVP_MD *md_sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256 ? sha256 : EVP_sha256();
}

void entry_hash(const char *line, size_t len, unsigned char out[32])
{
	/* Most entries fit on the stack: one buffer, one one-shot digest call. Longer ones
	 * (step_end tails) take the incremental path instead of a heap copy. */
	unsigned char buf[4096];

	if (len < sizeof(buf)) {
		buf[0] = 0x00;
		memcpy(buf + 1, line, len);
		if (!EVP_Digest(buf, len + 1, out, NULL, md_sha256(), NULL))
			errx(2, "SHA-256 failed");
		return;
	}
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	static const unsigned char zero;

	if (!c || !EVP_DigestInit_ex(c, md_sha256(), NULL) || !EVP_DigestUpdate(c, &zero, 1) ||
	    !EVP_DigestUpdate(c, line, len) || !EVP_DigestFinal_ex(c, out, NULL))
		errx(2, "SHA-256 failed");
	EVP_MD_CTX_free(c);
}

/* ---- the canonical prefix -------------------------------------------------------------- */

/* Digit value + 1, 0 for anything else: a table, as every entry's prev goes through it.
 * Uppercase is not canonical (it would give one entry two spellings). */
static const unsigned char hexv[256] = {
    ['0'] = 1, ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

long entry_prefix(const char *line, size_t len, uint64_t *seq, unsigned char prev[32])
{
	static const char head[] = "{\"seq\":", mid[] = ",\"prev\":\"";
	const unsigned char *s = (const unsigned char *)line;
	size_t i = sizeof(head) - 1, start;
	uint64_t v = 0;

	if (len < sizeof(head) - 1 || memcmp(line, head, sizeof(head) - 1))
		return -1;
	start = i;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		unsigned d = s[i] - '0';

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		i++;
	}
	/* One spelling per number: "0", or no leading zero. */
	if (i == start || (s[start] == '0' && i - start > 1))
		return -1;
	if (len - i < sizeof(mid) - 1 + 64 + 2 || memcmp(line + i, mid, sizeof(mid) - 1))
		return -1;
	i += sizeof(mid) - 1;
	for (size_t k = 0; k < 32; k++) {
		unsigned hi = hexv[s[i + 2 * k]], lo = hexv[s[i + 2 * k + 1]];

		if (!hi || !lo)
			return -1;
		prev[k] = (unsigned char)((hi - 1) << 4 | (lo - 1));
	}
	i += 64;
	if (s[i] != '"' || s[i + 1] != ',')
		return -1;
	*seq = v;
	return (long)(i + 2);
}

/* ---- a bounded JSON scanner --------------------------------------------------------------
 *
 * Hand-written rather than a library because the verifier runs it on hostile bytes and must
 * know exactly what it accepts: RFC 8259 values, strictly UTF-8 strings, at most
 * JSON_DEPTH_MAX levels tracked in a bitmap (no recursion), never a byte past len, and
 * nothing at all around the top-level object (a log line has exactly one spelling). */

static int hex4(const unsigned char *s, unsigned *v)
{
	unsigned r = 0;

	for (int i = 0; i < 4; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
			d = (s[i] | 0x20) - 'a' + 10;
		else
			return -1;
		r = r << 4 | (unsigned)d;
	}
	*v = r;
	return 0;
}

/* Decoded output of a string: bytes go to out while they fit; *n counts all of them. */
struct sout {
	char *p;
	size_t cap, n;
	bool nul;   /* a decoded NUL: no C string can hold it */
	uint64_t h; /* FNV-1a of all the decoded bytes (set h to the offset basis first) */
};

#define FNV_BASIS 0xcbf29ce484222325ull

static void put_byte(struct sout *o, unsigned char c)
{
	if (!o)
		return;
	o->h = (o->h ^ c) * 0x100000001b3ull;
	if (c == 0)
		o->nul = true;
	if (o->n < o->cap)
		o->p[o->n] = (char)c;
	o->n++;
}

static void put_cp(struct sout *o, unsigned cp)
{
	if (cp < 0x80) {
		put_byte(o, (unsigned char)cp);
	} else if (cp < 0x800) {
		put_byte(o, (unsigned char)(0xc0 | cp >> 6));
		put_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		put_byte(o, (unsigned char)(0xe0 | cp >> 12));
		put_byte(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		put_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
	} else {
		put_byte(o, (unsigned char)(0xf0 | cp >> 18));
		put_byte(o, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
		put_byte(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		put_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
	}
}

/* The string starting at s[i] == '"'. Returns the index after its closing quote, or -1.
 * Decodes into o when not NULL: \udc80-\udcff alone are the raw bytes 0x80-0xff
 * (docs/RECORDS.md), a surrogate pair is its code point, any other lone surrogate U+FFFD. */
static long scan_string(const unsigned char *s, size_t len, size_t i, struct sout *o)
{
	i++;
	while (i < len) {
		unsigned char c = s[i];

		if (c == '"')
			return (long)(i + 1);
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			size_t l = utf8_len(s + i, len - i);

			if (!l)
				return -1;
			for (size_t k = 0; k < l; k++)
				put_byte(o, s[i + k]);
			i += l;
			continue;
		}
		if (c != '\\') {
			put_byte(o, c);
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		c = s[i + 1];
		i += 2;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			put_byte(o, c);
			break;
		case 'b':
			put_byte(o, '\b');
			break;
		case 'f':
			put_byte(o, '\f');
			break;
		case 'n':
			put_byte(o, '\n');
			break;
		case 'r':
			put_byte(o, '\r');
			break;
		case 't':
			put_byte(o, '\t');
			break;
		case 'u': {
			unsigned u, u2;

			if (len - i < 4 || hex4(s + i, &u))
				return -1;
			i += 4;
			if (u >= 0xd800 && u <= 0xdbff && len - i >= 6 && s[i] == '\\' &&
			    s[i + 1] == 'u' && !hex4(s + i + 2, &u2) && u2 >= 0xdc00 &&
			    u2 <= 0xdfff) {
				put_cp(o, 0x10000 + ((u - 0xd800) << 10) + (u2 - 0xdc00));
				i += 6;
			} else if (u >= 0xdc80 && u <= 0xdcff) {
				put_byte(o, (unsigned char)(u - 0xdc00));
			} else if (u >= 0xd800 && u <= 0xdfff) {
				put_cp(o, 0xfffd);
			} else {
				put_cp(o, u);
			}
			break;
		}
		default:
			return -1;
		}
	}
	return -1;
}

/* A number per RFC 8259. Returns the index after it, or -1. */
static long scan_number(const unsigned char *s, size_t len, size_t i)
{
	if (i < len && s[i] == '-')
		i++;
	if (i >= len)
		return -1;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return -1;
	}
	if (i < len && s[i] == '.') {
		size_t d = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return -1;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t d;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		d = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return -1;
	}
	return (long)i;
}

static size_t skip_ws(const unsigned char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

static long scan_literal(const unsigned char *s, size_t len, size_t i, const char *lit)
{
	size_t n = strlen(lit);

	if (len - i < n || memcmp(s + i, lit, n))
		return -1;
	return (long)(i + n);
}

/* A member's key and its colon at s[i]; returns the index after the colon, or -1. */
static long scan_key(const unsigned char *s, size_t len, size_t i)
{
	long r;

	if (i >= len || s[i] != '"')
		return -1;
	r = scan_string(s, len, i, NULL);
	if (r < 0)
		return -1;
	i = skip_ws(s, len, (size_t)r);
	if (i >= len || s[i] != ':')
		return -1;
	return (long)(i + 1);
}

/* One value at s[i] (after whitespace), containers included, without recursion: the
 * nesting is a bitmap of open containers (1 = object). Returns the index after it, or -1. */
static long scan_value(const unsigned char *s, size_t len, size_t i)
{
	/* The top-level object is the first level. */
	const int max_depth = JSON_DEPTH_MAX - 1;
	uint64_t stack = 0;
	int depth = 0;
	long r;

	for (;;) {
		i = skip_ws(s, len, i);
		if (i >= len)
			return -1;
		/* Here a value is expected. */
		if (s[i] == '{' || s[i] == '[') {
			bool obj = s[i] == '{';

			if (depth >= max_depth)
				return -1;
			stack = stack << 1 | obj;
			depth++;
			i = skip_ws(s, len, i + 1);
			if (i < len && s[i] == (obj ? '}' : ']')) {
				stack >>= 1;
				depth--;
				i++;
				goto after_value;
			}
			if (obj && (r = scan_key(s, len, i)) < 0)
				return -1;
			if (obj)
				i = (size_t)r;
			continue;
		}
		if (s[i] == '"')
			r = scan_string(s, len, i, NULL);
		else if (s[i] == 't')
			r = scan_literal(s, len, i, "true");
		else if (s[i] == 'f')
			r = scan_literal(s, len, i, "false");
		else if (s[i] == 'n')
			r = scan_literal(s, len, i, "null");
		else
			r = scan_number(s, len, i);
		if (r < 0)
			return -1;
		i = (size_t)r;
	after_value:
		/* Close as many containers as end here, then expect a separator. */
		for (;;) {
			if (!depth)
				return (long)i;
			i = skip_ws(s, len, i);
			if (i >= len)
				return -1;
			bool obj = stack & 1;

			if (s[i] == (obj ? '}' : ']')) {
				stack >>= 1;
				depth--;
				i++;
				continue;
			}
			if (s[i] != ',')
				return -1;
			i = skip_ws(s, len, i + 1);
			if (obj && (r = scan_key(s, len, i)) < 0)
				return -1;
			if (obj)
				i = (size_t)r;
			break;
		}
	}
}

/* A top-level key: the hash of its decoded bytes and where it starts. */
struct keyref {
	uint64_t h;
	size_t at;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;

	return x->h < y->h ? -1 : x->h > y->h;
}

static bool same_key(const unsigned char *s, size_t len, size_t a, size_t b)
{
	char *pa = xmalloc(len), *pb = xmalloc(len);
	struct sout oa = {.p = pa, .cap = len}, ob = {.p = pb, .cap = len};
	bool same;

	scan_string(s, len, a, &oa);
	scan_string(s, len, b, &ob);
	same = oa.n == ob.n && !memcmp(pa, pb, oa.n);
	free(pa);
	free(pb);
	return same;
}

/* Whether two top-level keys decode to the same string ("kind" and "\u006bind" too). */
static bool has_duplicate(const unsigned char *s, size_t len, struct keyref *k, size_t n)
{
	/* A record has about twenty keys: insertion sort, qsort for hostile lines. */
	if (n > 64) {
		qsort(k, n, sizeof(*k), keyref_cmp);
	} else {
		for (size_t i = 1; i < n; i++) {
			struct keyref x = k[i];
			size_t j = i;

			for (; j > 0 && k[j - 1].h > x.h; j--)
				k[j] = k[j - 1];
			k[j] = x;
		}
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && k[j - 1].h == k[i].h; j--)
			if (same_key(s, len, k[j - 1].at, k[i].at))
				return true;
	return false;
}

/* Walks the top-level object of line and finds key's value span. Returns 0 when the line
 * is one well-formed object and key occurs exactly once, with [*vs, *ve) its value; 1 when
 * well-formed without key; -1 otherwise. A repeated key is an error: two readers could
 * take different ones. With no key, every top-level key must be unique (entry_is_json). */
static int find_key(const char *line, size_t len, const char *key, size_t *vs, size_t *ve)
{
	const unsigned char *s = (const unsigned char *)line;
	size_t klen = key ? strlen(key) : 0, i, nk = 0, capk = 0;
	char kbuf[64];
	bool found = false;
	struct keyref kst[64], *keys = kst;
	int ret = -1;

	if (!len || s[0] != '{' || s[len - 1] != '}')
		return -1;
	i = skip_ws(s, len, 1);
	if (i < len && s[i] == '}')
		return i + 1 == len ? 1 : -1;
	for (;;) {
		struct sout o = {.p = kbuf, .cap = sizeof(kbuf), .h = FNV_BASIS};
		size_t a;
		long r;

		if (i >= len || s[i] != '"')
			goto out;
		r = scan_string(s, len, i, &o);
		if (r < 0)
			goto out;
		if (!key) {
			if (nk == 64 && keys == kst) {
				capk = 256;
				keys = xmalloc(capk * sizeof(*keys));
				memcpy(keys, kst, sizeof(kst));
			} else if (nk == capk && keys != kst) {
				capk *= 2;
				keys = xrealloc(keys, capk * sizeof(*keys));
			}
			keys[nk++] = (struct keyref){o.h, i};
		}
		i = skip_ws(s, len, (size_t)r);
		if (i >= len || s[i] != ':')
			goto out;
		a = skip_ws(s, len, i + 1);
		r = scan_value(s, len, a);
		if (r < 0)
			goto out;
		if (key && o.n == klen && klen <= sizeof(kbuf) && !memcmp(kbuf, key, klen)) {
			if (found)
				goto out;
			found = true;
			*vs = a;
			*ve = (size_t)r;
		}
		i = skip_ws(s, len, (size_t)r);
		if (i >= len)
			goto out;
		if (s[i] == '}') {
			if (i + 1 == len && !(!key && has_duplicate(s, len, keys, nk)))
				ret = found ? 0 : 1;
			goto out;
		}
		if (s[i] != ',')
			goto out;
		i = skip_ws(s, len, i + 1);
	}
out:
	if (keys != kst)
		free(keys);
	return ret;
}

bool entry_is_json(const char *line, size_t len)
{
	size_t vs, ve;

	return find_key(line, len, NULL, &vs, &ve) == 1;
}

int entry_get_str(const char *line, size_t len, const char *key, char *out, size_t outlen)
{
	struct sout o = {.p = out, .cap = outlen};
	size_t vs, ve;

	if (find_key(line, len, key, &vs, &ve) || line[vs] != '"' || !outlen)
		return -1;
	scan_string((const unsigned char *)line, len, vs, &o);
	/* Callers use C strings: one that does not fit, or holds a NUL, is refused, not cut. */
	if (o.nul || o.n >= outlen)
		return -1;
	out[o.n] = '\0';
	return 0;
}

int entry_get_u64(const char *line, size_t len, const char *key, uint64_t *v)
{
	size_t vs, ve;
	uint64_t r = 0;

	if (find_key(line, len, key, &vs, &ve))
		return -1;
	/* A plain non-negative integer: no sign, fraction or exponent; no overflow. */
	for (size_t i = vs; i < ve; i++) {
		unsigned d;

		if (line[i] < '0' || line[i] > '9')
			return -1;
		d = (unsigned)(line[i] - '0');
		if (r > (UINT64_MAX - d) / 10)
			return -1;
		r = r * 10 + d;
	}
	*v = r;
	return 0;
}

int entry_get_bool(const char *line, size_t len, const char *key, bool *v)
{
	size_t vs, ve;

	if (find_key(line, len, key, &vs, &ve))
		return -1;
	if (ve - vs == 4 && !memcmp(line + vs, "true", 4))
		*v = true;
	else if (ve - vs == 5 && !memcmp(line + vs, "false", 5))
		*v = false;
	else
		return -1;
	return 0;
}

/* ---- time stamps ------------------------------------------------------------------------ */

static int digits(const char *s, int n, unsigned *v)
{
	unsigned r = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		r = r * 10 + (unsigned)(s[i] - '0');
	}
	*v = r;
	return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil): no timegm, so no dependence on TZ or the C library's range. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

int parse_time(const char *s, size_t len, uint64_t *ns)
{
	static const unsigned char mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, sec, frac;
	uint64_t secs;
	int64_t days;

	/* Exactly the form fmt_time writes: one spelling per instant. */
	if (len != 30 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != '.' || s[29] != 'Z')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec) ||
	    digits(s + 20, 9, &frac))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return -1;
	unsigned dim =
	    mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 1 : 0);
	if (d > dim)
		return -1;
	days = days_from_civil(y, mo, d);
	secs = (uint64_t)days * 86400 + h * 3600u + mi * 60u + sec;
	/* uint64 nanoseconds end in 2554. */
	if (secs > (UINT64_MAX - frac) / 1000000000ull)
		return -1;
	*ns = secs * 1000000000ull + frac;
	return 0;
}

/* ---- zlib ----------------------------------------------------------------------------- */

int z_deflate(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	uLongf n = compressBound((uLong)len);
	unsigned char *p;

	if ((size_t)(uLong)len != len)
		return -1;
	p = xmalloc(n);
	if (compress2(p, &n, (const Bytef *)in, (uLong)len, Z_BEST_SPEED) != Z_OK) {
		free(p);
		return -1;
	}
	*out = p;
	*outlen = n;
	return 0;
}

int z_inflate(const unsigned char *in, size_t len, size_t max, char **out, size_t *outlen)
{
	z_stream z;
	size_t cap, done = 0;
	char *p;
	int r = Z_DATA_ERROR;

	if (!len || (size_t)(uInt)len != len || max >= SIZE_MAX / 2)
		return -1;
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return -1;
	/* Grows as the output does, never past max + 1 bytes (+ the NUL): a stream that
	 * inflates beyond max (a zip bomb) fails after at most that much memory. */
	cap = len < max / 4 ? len * 4 : max;
	if (cap < 4096)
		cap = max < 4096 ? max + 1 : 4096;
	p = xmalloc(cap + 2);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	for (;;) {
		if (done == cap) {
			if (cap > max)
				break; /* produced max + 1 bytes: too big */
			cap = cap > max / 2 ? max + 1 : cap * 2;
			if (cap < done + 1)
				cap = max + 1;
			p = xrealloc(p, cap + 2);
		}
		size_t room = cap - done;

		z.next_out = (Bytef *)p + done;
		z.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		r = inflate(&z, Z_NO_FLUSH);
		done += (room > UINT_MAX ? UINT_MAX : room) - z.avail_out;
		if (r == Z_STREAM_END)
			break;
		if (r != Z_OK && r != Z_BUF_ERROR)
			break;
		/* No progress with output room left: the input ended mid-stream. */
		if (r == Z_BUF_ERROR && z.avail_out)
			break;
	}
	inflateEnd(&z);
	/* Whole stream, nothing after it, within the bound. */
	if (r != Z_STREAM_END || z.avail_in || done > max) {
		free(p);
		return -1;
	}
	p[done] = '\0';
	*out = p;
	*outlen = done;
	return 0;
}

/* ---- segment files ---------------------------------------------------------------------- */

static int seg_fail(char *err, size_t errlen, const char *path, const char *what, int e)
{
	if (e)
		snprintf(err, errlen, "%s: %s: %s", path, what, strerror(e));
	else
		snprintf(err, errlen, "%s: %s", path, what);
	return -1;
}

int segment_read(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	size_t plen = strlen(path), n = 0, cap, max;
	bool z = plen > 2 && !strcmp(path + plen - 2, ".z");
	struct stat st;
	char *p;
	int fd;

	/* NOFOLLOW: a planted link must not make the verifier read another file; NONBLOCK and
	 * NOCTTY: a FIFO or device under a segment's name must not hang it before fstat. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return seg_fail(err, errlen, path, "cannot open", errno);
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return seg_fail(err, errlen, path, "cannot stat", e);
	}
	/* A sealed segment compresses at least a little; allow deflate's worst case anyway. */
	max = z ? compressBound(LOG_SEGMENT_MAX) : LOG_SEGMENT_MAX;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		return seg_fail(err, errlen, path,
				S_ISREG(st.st_mode) ? "larger than the segment limit"
						    : "not a regular file",
				0);
	}
	cap = (size_t)st.st_size + 1;
	p = xmalloc(cap + 1);
	/* Read to the end, not st_size: the active segment may grow meanwhile; the bound
	 * holds either way. */
	for (;;) {
		ssize_t r;

		if (n == cap) {
			if (cap > max) {
				free(p);
				close(fd);
				return seg_fail(err, errlen, path, "larger than the segment limit",
						0);
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			p = xrealloc(p, cap + 1);
		}
		r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(p);
			close(fd);
			return seg_fail(err, errlen, path, "cannot read", e);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > max) {
		free(p);
		return seg_fail(err, errlen, path, "larger than the segment limit", 0);
	}
	if (z) {
		char *plain;
		size_t plen2;

		if (z_inflate((unsigned char *)p, n, LOG_SEGMENT_MAX, &plain, &plen2) < 0) {
			free(p);
			return seg_fail(err, errlen, path,
					"not a complete zlib stream of at most 256 MiB", 0);
		}
		free(p);
		*buf = plain;
		*len = plen2;
		return 0;
	}
	p[n] = '\0';
	*buf = p;
	*len = n;
	return 0;
}
