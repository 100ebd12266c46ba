/* Unit tests for user/json.c */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Escapes in[0..n) into a fresh buffer and checks the exact output bytes. */
static void check_n(const char *in, size_t n, const char *want)
{
	struct jbuf b = {0};

	jb_str(&b, in, n);
	assert_non_null(b.p);
	assert_int_equal(b.p[b.len], '\0');
	assert_string_equal(b.p, want);
	assert_int_equal(b.len, strlen(want));
	jb_free(&b);
}

#define CHECK(lit, want) check_n(lit, sizeof(lit) - 1, want)

static void test_empty(void **state)
{
	(void)state;
	check_n("", 0, "\"\"");
	/* n counts, not the NUL: a non-empty pointer with n = 0 is still empty. */
	check_n("abc", 0, "\"\"");
}

static void test_ascii(void **state)
{
	(void)state;
	CHECK("hello, world", "\"hello, world\"");
	CHECK(" !#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~",
	      "\" !#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~\"");
	/* Only n bytes are read. */
	check_n("abcdef", 3, "\"abc\"");
}

static void test_quotes_backslashes(void **state)
{
	(void)state;
	CHECK("\"", "\"\\\"\"");
	CHECK("\\", "\"\\\\\"");
	CHECK("say \"hi\"", "\"say \\\"hi\\\"\"");
	CHECK("C:\\dir\\f", "\"C:\\\\dir\\\\f\"");
	CHECK("\\\"\\\"", "\"\\\\\\\"\\\\\\\"\"");
}

static void test_short_escapes(void **state)
{
	(void)state;
	CHECK("\n", "\"\\n\"");
	CHECK("\t", "\"\\t\"");
	CHECK("\r", "\"\\r\"");
	CHECK("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
	CHECK("\r\n", "\"\\r\\n\"");
}

static void test_control_chars(void **state)
{
	(void)state;
	CHECK("\x01", "\"\\u0001\"");
	CHECK("\x1f", "\"\\u001f\"");
	CHECK("\x7f", "\"\\u007f\"");
	CHECK("\x08\x0c\x0b", "\"\\u0008\\u000c\\u000b\"");
	CHECK("a\x1b[0mb", "\"a\\u001b[0mb\"");
}

static void test_embedded_nul(void **state)
{
	(void)state;
	check_n("\0", 1, "\"\\u0000\"");
	check_n("a\0b", 3, "\"a\\u0000b\"");
	check_n("\0\0", 2, "\"\\u0000\\u0000\"");
	check_n("x\0", 2, "\"x\\u0000\"");
}

static void test_valid_utf8(void **state)
{
	(void)state;
	CHECK("\xc3\xa9", "\"\xc3\xa9\"");		   /* U+00E9, 2 bytes */
	CHECK("\xc2\x80", "\"\xc2\x80\"");		   /* U+0080, smallest 2-byte */
	CHECK("\xdf\xbf", "\"\xdf\xbf\"");		   /* U+07FF, largest 2-byte */
	CHECK("\xe0\xa0\x80", "\"\xe0\xa0\x80\"");	   /* U+0800, smallest 3-byte */
	CHECK("\xe2\x82\xac", "\"\xe2\x82\xac\"");	   /* U+20AC, euro sign */
	CHECK("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");	   /* U+D7FF, just below surrogates */
	CHECK("\xee\x80\x80", "\"\xee\x80\x80\"");	   /* U+E000, just above surrogates */
	CHECK("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");	   /* U+FFFF */
	CHECK("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""); /* U+10000, smallest 4-byte */
	CHECK("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
	CHECK("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF, largest */
	CHECK("a\xc3\xa9\"\xe2\x82\xac\n", "\"a\xc3\xa9\\\"\xe2\x82\xac\\n\"");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	/* Lone continuation bytes and bytes that never occur in UTF-8. */
	CHECK("\x80", "\"\\udc80\"");
	CHECK("\xbf", "\"\\udcbf\"");
	CHECK("\xff", "\"\\udcff\"");
	CHECK("\xfe", "\"\\udcfe\"");
	CHECK("\xf5\x80\x80\x80", "\"\\udcf5\\udc80\\udc80\\udc80\"");
	CHECK("a\x80z", "\"a\\udc80z\"");
	/* Truncated sequences, at the end and before another character. */
	CHECK("\xe2\x82", "\"\\udce2\\udc82\"");
	CHECK("ab\xe2\x82", "\"ab\\udce2\\udc82\"");
	CHECK("\xe2\x82x", "\"\\udce2\\udc82x\"");
	CHECK("\xf0\x9f\x98", "\"\\udcf0\\udc9f\\udc98\"");
	CHECK("\xc3", "\"\\udcc3\"");
	CHECK("\xc3(", "\"\\udcc3(\"");
	/* A lead byte followed by another lead byte: the second one starts afresh. */
	CHECK("\xc3\xc3\xa9", "\"\\udcc3\xc3\xa9\"");
	/* Overlongs. */
	CHECK("\xc0\xaf", "\"\\udcc0\\udcaf\"");
	CHECK("\xc1\xbf", "\"\\udcc1\\udcbf\"");
	CHECK("\xe0\x80\xaf", "\"\\udce0\\udc80\\udcaf\"");
	CHECK("\xe0\x9f\xbf", "\"\\udce0\\udc9f\\udcbf\"");
	CHECK("\xf0\x80\x80\xaf", "\"\\udcf0\\udc80\\udc80\\udcaf\"");
	CHECK("\xf0\x8f\xbf\xbf", "\"\\udcf0\\udc8f\\udcbf\\udcbf\"");
	/* UTF-16 surrogates encoded in UTF-8 (CESU-8). */
	CHECK("\xed\xa0\x80", "\"\\udced\\udca0\\udc80\"");
	CHECK("\xed\xbf\xbf", "\"\\udced\\udcbf\\udcbf\"");
	/* Past U+10FFFF. */
	CHECK("\xf4\x90\x80\x80", "\"\\udcf4\\udc90\\udc80\\udc80\"");
	/* Bad continuation in the last position. */
	CHECK("\xe2\x82\x41", "\"\\udce2\\udc82A\"");
	CHECK("\xf0\x9f\x98\x41", "\"\\udcf0\\udc9f\\udc98A\"");
}

static void test_appends(void **state)
{
	struct jbuf b = {0};

	(void)state;
	jb_raw(&b, "{\"k\":", 5);
	jb_str(&b, "v\n", 2);
	jb_putc(&b, ',');
	jb_str(&b, "", 0);
	jb_putc(&b, '}');
	assert_string_equal(b.p, "{\"k\":\"v\\n\",\"\"}");
	assert_int_equal(b.len, 14);
	jb_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_long_string(void **state)
{
	const size_t n = 100 * 1024;
	/* Each unit: ASCII, a quote, a 2-byte char, a bad byte, a control char. */
	static const char unit_in[] = "a\"\xc3\xa9\x80\x01";
	static const char unit_out[] = "a\\\"\xc3\xa9\\udc80\\u0001";
	const size_t ui = sizeof(unit_in) - 1, uo = sizeof(unit_out) - 1;
	char *in = malloc(n), *want = malloc(n / ui * uo + 3);
	struct jbuf b = {0};
	size_t wl = 0;

	(void)state;
	assert_non_null(in);
	assert_non_null(want);

	/* Plain ASCII. */
	for (size_t i = 0; i < n; i++)
		in[i] = (char)('a' + i % 26);
	jb_str(&b, in, n);
	assert_int_equal(b.len, n + 2);
	assert_int_equal(b.p[0], '"');
	assert_memory_equal(b.p + 1, in, n);
	assert_int_equal(b.p[n + 1], '"');
	assert_int_equal(b.p[n + 2], '\0');
	assert_true(b.cap >= b.len + 1);
	jb_free(&b);

	/* Mixed content that grows while escaping. */
	want[wl++] = '"';
	for (size_t i = 0; i + ui <= n; i += ui) {
		memcpy(in + i, unit_in, ui);
		memcpy(want + wl, unit_out, uo);
		wl += uo;
	}
	want[wl++] = '"';
	want[wl] = '\0';
	jb_str(&b, in, n / ui * ui);
	assert_int_equal(b.len, wl);
	assert_memory_equal(b.p, want, wl);
	assert_int_equal(b.p[b.len], '\0');
	jb_free(&b);
	free(in);
	free(want);
}

static void check_i64(int64_t v, const char *want)
{
	struct jbuf b = {0};

	jb_i64(&b, v);
	assert_string_equal(b.p, want);
	assert_int_equal(b.len, strlen(want));
	jb_free(&b);
}

static void check_u64(uint64_t v, const char *want)
{
	struct jbuf b = {0};

	jb_u64(&b, v);
	assert_string_equal(b.p, want);
	assert_int_equal(b.len, strlen(want));
	jb_free(&b);
}

static void test_integers(void **state)
{
	(void)state;
	check_i64(0, "0");
	check_i64(-1, "-1");
	check_i64(42, "42");
	check_i64(INT64_MAX, "9223372036854775807");
	check_i64(INT64_MIN, "-9223372036854775808");
	check_u64(0, "0");
	check_u64(UINT64_MAX, "18446744073709551615");
	check_u64((uint64_t)INT64_MAX + 1, "9223372036854775808");
}

/* --- Property test -------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64*: fixed seed, same sequence everywhere. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

static uint32_t random_scalar(void)
{
	static const uint32_t edges[] = {0x80,	 0x7ff,	 0x800,	  0xd7ff,   0xe000,
					 0xfffd, 0xffff, 0x10000, 0x10ffff, 0x1f600};

	switch (rng() % 4) {
	case 0:
		return edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return 0x80 + (uint32_t)(rng() % (0x800 - 0x80));
	case 2: {
		uint32_t cp = 0x800 + (uint32_t)(rng() % (0x10000 - 0x800));
		return cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp;
	}
	default:
		return 0x10000 + (uint32_t)(rng() % (0x110000 - 0x10000));
	}
}

/* Random bytes of length len, mixing uniform bytes, ASCII, escapes and UTF-8 sequences
 * (valid, and valid ones cut short) so every branch of the escaper gets exercised. With
 * valid_only, only valid UTF-8 is produced. */
static void random_bytes(unsigned char *s, size_t len, bool valid_only)
{
	size_t i = 0;

	while (i < len) {
		unsigned char t[4];
		size_t tl;
		uint64_t k = rng() % (valid_only ? 3 : 6);

		if (k == 0) {
			s[i++] = (unsigned char)(valid_only ? rng() % 0x80 : rng() % 256);
			continue;
		}
		if (k == 1) {
			static const char special[] = "\"\\\n\t\r\x01\x1f\x7f az";
			s[i++] = (unsigned char)special[rng() % (sizeof(special) - 1)];
			continue;
		}
		if (k == 3) {
			s[i++] = (unsigned char)(0x80 + rng() % 0x80);
			continue;
		}
		if (k == 4) {
			static const unsigned char bad[] = {0xc0, 0xc1, 0xe0, 0xed,
							    0xf0, 0xf4, 0xf5};
			s[i++] = bad[rng() % sizeof(bad)];
			continue;
		}
		tl = put_utf8(t, random_scalar());
		if (k == 5 && tl > 1)
			tl = 1 + (size_t)(rng() % (tl - 1)); /* truncated */
		if (tl > len - i) {
			if (valid_only) {
				s[i++] = 'x';
				continue;
			}
			tl = len - i;
		}
		memcpy(s + i, t, tl);
		i += tl;
	}
}

/* Length of the strictly valid UTF-8 scalar at s (independent of json.c), 0 if none. */
static size_t valid_utf8_at(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
		return 0; /* overlong */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0;
	if (cp > 0x10ffff)
		return 0;
	return len;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the JSON string j[0..jl) into out, checking on the way that it is well formed:
 * quoted, no raw control bytes or unescaped quotes, valid UTF-8 outside escapes, and only
 * the escapes jb_str may produce. Returns the decoded length, or -1 with *why set. Counts
 * the \udcXX escapes in *nsurrogates. */
static long decode_json_string(const char *j, size_t jl, unsigned char *out, const char **why,
			       size_t *nsurrogates)
{
	const unsigned char *s = (const unsigned char *)j;
	size_t o = 0, i = 1;

	*nsurrogates = 0;
	if (jl < 2 || s[0] != '"' || s[jl - 1] != '"') {
		*why = "not quoted";
		return -1;
	}
	jl--;
	while (i < jl) {
		unsigned char c = s[i];

		if (c < 0x20) {
			*why = "raw control byte";
			return -1;
		}
		if (c == '"') {
			*why = "unescaped quote";
			return -1;
		}
		if (c != '\\') {
			size_t l = valid_utf8_at(s + i, jl - i);

			if (!l) {
				*why = "invalid UTF-8 in output";
				return -1;
			}
			memcpy(out + o, s + i, l);
			o += l;
			i += l;
			continue;
		}
		if (i + 1 >= jl) {
			*why = "dangling backslash";
			return -1;
		}
		switch (s[i + 1]) {
		case '"':
			out[o++] = '"';
			i += 2;
			continue;
		case '\\':
			out[o++] = '\\';
			i += 2;
			continue;
		case 'n':
			out[o++] = '\n';
			i += 2;
			continue;
		case 't':
			out[o++] = '\t';
			i += 2;
			continue;
		case 'r':
			out[o++] = '\r';
			i += 2;
			continue;
		case 'u':
			break;
		default:
			*why = "unknown escape";
			return -1;
		}
		if (i + 6 > jl) {
			*why = "short \\u escape";
			return -1;
		}
		unsigned v = 0;
		for (size_t k = 2; k < 6; k++) {
			int h = hexval((char)s[i + k]);

			if (h < 0) {
				*why = "bad hex digit";
				return -1;
			}
			v = v << 4 | (unsigned)h;
		}
		if (v >= 0xdc80 && v <= 0xdcff) {
			out[o++] = (unsigned char)(v - 0xdc00);
			(*nsurrogates)++;
		} else if (v < 0x20 || v == 0x7f) {
			out[o++] = (unsigned char)v;
		} else {
			*why = "unexpected \\u escape";
			return -1;
		}
		i += 6;
	}
	return (long)o;
}

static void roundtrip(const unsigned char *in, size_t n, bool expect_no_surrogates)
{
	struct jbuf b = {0};
	unsigned char out[64 * 6 + 2];
	const char *why = NULL;
	size_t nsur;
	long got;

	jb_str(&b, (const char *)in, n);
	assert_int_equal(strlen(b.p), b.len); /* no raw NUL in the output */
	got = decode_json_string(b.p, b.len, out, &why, &nsur);
	if (got < 0 || (size_t)got != n || memcmp(out, in, n) != 0 ||
	    (expect_no_surrogates && nsur)) {
		print_error("input (%zu bytes):", n);
		for (size_t i = 0; i < n; i++)
			print_error(" %02x", in[i]);
		print_error("\noutput: %s\nproblem: %s\n", b.p,
			    got < 0 ? why
			    : (size_t)got != n || memcmp(out, in, n)
				? "bytes differ"
				: "surrogate escape in valid UTF-8");
		jb_free(&b);
		fail();
	}
	jb_free(&b);
}

static void test_decoder_sanity(void **state)
{
	unsigned char out[16];
	const char *why = NULL;
	size_t nsur;

	(void)state;
	/* The checker must reject what jb_str must never produce. */
	assert_int_equal(decode_json_string("\"a\nb\"", 5, out, &why, &nsur), -1);
	assert_int_equal(decode_json_string("\"a\"b\"", 5, out, &why, &nsur), -1);
	assert_int_equal(decode_json_string("\"\x80\"", 3, out, &why, &nsur), -1);
	assert_int_equal(decode_json_string("\"\xed\xa0\x80\"", 5, out, &why, &nsur), -1);
	assert_int_equal(decode_json_string("\"\xc0\xaf\"", 4, out, &why, &nsur), -1);
	assert_int_equal(decode_json_string("\"\\u0041\"", 8, out, &why, &nsur), -1);
	assert_int_equal(decode_json_string("\"\\x\"", 4, out, &why, &nsur), -1);
	assert_int_equal(decode_json_string("\"\\udc80\\u0000\\\\\"", 16, out, &why, &nsur), 3);
	assert_memory_equal(out, "\x80\0\\", 3);
	assert_int_equal(nsur, 1);
}

static void test_property_roundtrip(void **state)
{
	unsigned char in[64];

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ull;
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = (size_t)(rng() % 65);

		random_bytes(in, n, false);
		roundtrip(in, n, false);
	}
	/* Uniformly random bytes too. */
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = (size_t)(rng() % 65);

		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)rng();
		roundtrip(in, n, false);
	}
}

static void test_property_valid_utf8_untouched(void **state)
{
	unsigned char in[64];

	(void)state;
	rng_state = 0x243f6a8885a308d3ull;
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = (size_t)(rng() % 65);

		random_bytes(in, n, true);
		roundtrip(in, n, true);
	}
}

/* ---- the scanner ---- */

static int scan(const char *s, struct jtok *t, unsigned max)
{
	return json_scan(s, strlen(s), t, max);
}

static void test_scan_object(void **state)
{
	struct jtok t[32];
	const char *s = "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{\"d\":-7}}";
	int64_t v;
	int n = scan(s, t, 32), b, c;

	(void)state;
	assert_int_equal(n, 12);
	assert_int_equal(t[0].type, J_OBJ);
	assert_int_equal(t[0].count, 3);
	assert_int_equal(t[0].n, strlen(s));
	assert_int_equal(json_int(&t[json_get(t, 0, "a")], &v), 0);
	assert_int_equal(v, 1);
	b = json_get(t, 0, "b");
	assert_int_equal(t[b].type, J_ARR);
	assert_int_equal(t[b].count, 3);
	assert_true(json_is(&t[json_at(t, b, 0)], "true"));
	assert_true(json_is(&t[json_at(t, b, 1)], "null"));
	assert_int_equal(t[json_at(t, b, 2)].type, J_STR);
	assert_int_equal(json_at(t, b, 3), -1);
	c = json_get(t, 0, "c");
	assert_int_equal(json_int(&t[json_get(t, c, "d")], &v), 0);
	assert_int_equal(v, -7);
	assert_int_equal(json_get(t, 0, "zz"), -1);
	/* A key is only found at its own level. */
	assert_int_equal(json_get(t, 0, "d"), -1);
	/* The span of a container is its whole text. */
	assert_memory_equal(t[b].s, "[true,null,\"x\"]", t[b].n);
}

static void test_scan_malformed(void **state)
{
	static const char *const bad[] = {
	    "",		  "{",	  "}",		"{\"a\"}",	 "{\"a\":}",
	    "{\"a\":1,}", "[1,]", "[1 2]",	"{a:1}",	 "\"unterminated",
	    "tru",	  "nul",  "{\"a\":1}x", "\"tab\there\"", "{\"a\":1}}",
	    "[\"\\\"]",
	};
	struct jtok t[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(scan(bad[i], t, 16), -1);
}

static void test_scan_limits(void **state)
{
	struct jtok t[64];
	char deep[200];

	(void)state;
	/* Too many tokens for the caller's array, and nesting past the bound: -2. */
	assert_int_equal(scan("[1,2,3,4,5,6,7,8]", t, 4), -2);
	memset(deep, '[', JSON_DEPTH_MAX + 1);
	memset(deep + JSON_DEPTH_MAX + 1, ']', JSON_DEPTH_MAX + 1);
	deep[2 * (JSON_DEPTH_MAX + 1)] = '\0';
	assert_int_equal(scan(deep, t, 64), -2);
	deep[JSON_DEPTH_MAX] = '\0';
	memset(deep, '[', JSON_DEPTH_MAX / 2);
	memset(deep + JSON_DEPTH_MAX / 2, ']', JSON_DEPTH_MAX / 2);
	assert_true(scan(deep, t, 64) > 0);
}

/* What the encoder writes, the scanner gives back byte for byte (invalid UTF-8 too). */
static void test_scan_roundtrip(void **state)
{
	unsigned char in[80];
	struct jtok t[4];

	(void)state;
	rng_state = 0x13198a2e03707344ull;
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = (size_t)(rng() % 80);
		struct jbuf enc = {0}, dec = {0};

		random_bytes(in, n, false);
		jb_str(&enc, (const char *)in, n);
		assert_int_equal(json_scan(enc.p, enc.len, t, 4), 1);
		assert_int_equal(json_unstr(&t[0], &dec), 0);
		assert_int_equal(dec.len, n);
		if (n)
			assert_memory_equal(dec.p, in, n);
		jb_free(&enc);
		jb_free(&dec);
	}
}

static void test_scan_escapes(void **state)
{
	struct jtok t[4];
	struct jbuf b = {0};
	const char *s = "\"a\\u00e9\\ud83d\\ude00\\n\\/\\udcff\"";

	(void)state;
	assert_int_equal(scan(s, t, 4), 1);
	assert_int_equal(json_unstr(&t[0], &b), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.p, "a\xc3\xa9\xf0\x9f\x98\x80\n/\xff", 10);
	jb_free(&b);
	assert_int_equal(scan("\"\\u12\"", t, 4), 1);
	assert_int_equal(json_unstr(&t[0], &b), -1);
	jb_free(&b);
	assert_int_equal(scan("\"\\q\"", t, 4), 1);
	assert_int_equal(json_unstr(&t[0], &b), -1);
	jb_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_ascii),
	    cmocka_unit_test(test_quotes_backslashes),
	    cmocka_unit_test(test_short_escapes),
	    cmocka_unit_test(test_control_chars),
	    cmocka_unit_test(test_embedded_nul),
	    cmocka_unit_test(test_valid_utf8),
	    cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_appends),
	    cmocka_unit_test(test_long_string),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_decoder_sanity),
	    cmocka_unit_test(test_property_roundtrip),
	    cmocka_unit_test(test_property_valid_utf8_untouched),
	    cmocka_unit_test(test_scan_object),
	    cmocka_unit_test(test_scan_malformed),
	    cmocka_unit_test(test_scan_limits),
	    cmocka_unit_test(test_scan_roundtrip),
	    cmocka_unit_test(test_scan_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
