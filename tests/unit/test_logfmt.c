/* Unit tests for user/logfmt.c: the entry prefix, the JSON scanner, time stamps, zlib and
 * segment files. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "json.h"
#include "logfmt.h"
#include "util.h"

#define S(lit) lit, sizeof(lit) - 1

static const char H64[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static long prefix_of(const char *line, uint64_t *seq, unsigned char prev[32])
{
	return entry_prefix(line, strlen(line), seq, prev);
}

static void test_prefix_accept(void **state)
{
	unsigned char prev[32];
	uint64_t seq = 7;
	char line[256];
	long p;

	(void)state;
	snprintf(line, sizeof(line), "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"x\"}", H64);
	p = prefix_of(line, &seq, prev);
	assert_int_equal(p, (long)strlen("{\"seq\":0,\"prev\":\"") + 64 + 2);
	assert_int_equal(line[p], '"');
	assert_int_equal(seq, 0);
	assert_int_equal(prev[0], 0x00);
	assert_int_equal(prev[1], 0x11);
	assert_int_equal(prev[31], 0xff);

	snprintf(line, sizeof(line), "{\"seq\":18446744073709551615,\"prev\":\"%s\",\"a\":1}", H64);
	assert_true(prefix_of(line, &seq, prev) > 0);
	assert_true(seq == UINT64_MAX);

	snprintf(line, sizeof(line), "{\"seq\":1234567,\"prev\":\"%s\",", H64);
	assert_int_equal(prefix_of(line, &seq, prev), (long)strlen(line));
	assert_int_equal(seq, 1234567);
}

static void test_prefix_reject(void **state)
{
	static const char *const bad[] = {
	    "{\"seq\":01,\"prev\":\"%s\",\"a\":1}",		      /* leading zero */
	    "{\"seq\":00,\"prev\":\"%s\",\"a\":1}",		      /* leading zero */
	    "{\"seq\":-1,\"prev\":\"%s\",\"a\":1}",		      /* sign */
	    "{\"seq\":+1,\"prev\":\"%s\",\"a\":1}",		      /* sign */
	    "{\"seq\":,\"prev\":\"%s\",\"a\":1}",		      /* no digits */
	    "{\"seq\":1.0,\"prev\":\"%s\",\"a\":1}",		      /* fraction */
	    "{\"seq\": 1,\"prev\":\"%s\",\"a\":1}",		      /* space */
	    "{ \"seq\":1,\"prev\":\"%s\",\"a\":1}",		      /* space */
	    "{\"seq\":1, \"prev\":\"%s\",\"a\":1}",		      /* space */
	    "{\"prev\":\"%s\",\"seq\":1,\"a\":1}",		      /* order */
	    "{\"seq\":\"1\",\"prev\":\"%s\",\"a\":1}",		      /* string */
	    "{\"seq\":1,\"prev\":\"%s\"}",			      /* no comma after prev */
	    "{\"seq\":1,\"prev\":\"%s\" ,\"a\":1}",		      /* space */
	    "{\"seq\":18446744073709551616,\"prev\":\"%s\",\"a\":1}", /* overflow */
	    "{\"seq\":99999999999999999999,\"prev\":\"%s\",\"a\":1}", /* overflow */
	    "{\"Seq\":1,\"prev\":\"%s\",\"a\":1}",		      /* case */
	};
	unsigned char prev[32];
	uint64_t seq;
	char line[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), bad[i], H64);
		if (prefix_of(line, &seq, prev) >= 0)
			fail_msg("accepted: %s", line);
	}
	/* prev: uppercase, short, long, non-hex */
	assert_true(prefix_of("{\"seq\":1,\"prev\":\"00112233445566778899AABBCCDDEEFF00112233445566"
			      "778899aabbccddeeff\",\"a\":1}",
			      &seq, prev) < 0);
	assert_true(prefix_of("{\"seq\":1,\"prev\":\"0011\",\"a\":1}", &seq, prev) < 0);
	assert_true(prefix_of("{\"seq\":1,\"prev\":\"00112233445566778899aabbccddeeff00112233445566"
			      "778899aabbccddeeff00\",\"a\":1}",
			      &seq, prev) < 0);
	assert_true(prefix_of("{\"seq\":1,\"prev\":\"g0112233445566778899aabbccddeeff00112233445566"
			      "778899aabbccddeeff\",\"a\":1}",
			      &seq, prev) < 0);
	/* Every cut of a valid prefix is refused, reading nothing past len. */
	snprintf(line, sizeof(line), "{\"seq\":12,\"prev\":\"%s\",\"a\":1}", H64);
	size_t full = strlen("{\"seq\":12,\"prev\":\"") + 64 + 2;
	for (size_t n = 0; n < full; n++) {
		char *copy = malloc(n ? n : 1);

		memcpy(copy, line, n);
		assert_true(entry_prefix(copy, n, &seq, prev) < 0);
		free(copy);
	}
	assert_true(entry_prefix(line, 0, &seq, prev) < 0);
}

static const char NESTED[] =
    "{\"seq\":3,\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
    "\"kind\":\"exec\",\"time\":\"2026-11-27T20:34:47.123456789Z\",\"pid\":42,"
    "\"argv\":[\"a\",\"b\\\"c\",[1,{\"kind\":\"nested\"}]],\"env\":{\"path\":\"x\",\"n\":[]},"
    "\"path\":\"/tmp/\\u00e9\\udcff\\ud83d\\ude00\\n\\t\\/\\\\\",\"ok\":true,\"bad\":false,"
    "\"null\":null,\"neg\":-5,\"frac\":1.5e3,\"big\":18446744073709551615,"
    "\"over\":18446744073709551616,\"after\":\"end\"}";

static void test_getters(void **state)
{
	const size_t n = sizeof(NESTED) - 1;
	char out[64];
	uint64_t v;
	bool b;

	(void)state;
	assert_true(entry_is_json(NESTED, n));
	assert_int_equal(entry_get_str(NESTED, n, "kind", out, sizeof(out)), 0);
	assert_string_equal(out, "exec"); /* the top level one, not the nested "kind" */
	assert_int_equal(entry_get_str(NESTED, n, "after", out, sizeof(out)), 0);
	assert_string_equal(out, "end");
	assert_int_equal(entry_get_str(NESTED, n, "path", out, sizeof(out)), 0);
	/* é as UTF-8, \udcff as the raw byte 0xff, a pair as U+1F600, then the escapes */
	assert_memory_equal(out, "/tmp/\xc3\xa9\xff\xf0\x9f\x98\x80\n\t/\\", 16);
	assert_int_equal(strlen(out), 16);
	assert_int_equal(entry_get_u64(NESTED, n, "pid", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(entry_get_u64(NESTED, n, "big", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(entry_get_u64(NESTED, n, "seq", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(entry_get_bool(NESTED, n, "ok", &b), 0);
	assert_true(b);
	assert_int_equal(entry_get_bool(NESTED, n, "bad", &b), 0);
	assert_false(b);
	/* absent, other types, out of range */
	assert_int_equal(entry_get_str(NESTED, n, "nope", out, sizeof(out)), -1);
	assert_int_equal(entry_get_str(NESTED, n, "pid", out, sizeof(out)), -1);
	assert_int_equal(entry_get_str(NESTED, n, "argv", out, sizeof(out)), -1);
	assert_int_equal(entry_get_str(NESTED, n, "env", out, sizeof(out)), -1);
	assert_int_equal(entry_get_str(NESTED, n, "null", out, sizeof(out)), -1);
	assert_int_equal(entry_get_u64(NESTED, n, "neg", &v), -1);
	assert_int_equal(entry_get_u64(NESTED, n, "frac", &v), -1);
	assert_int_equal(entry_get_u64(NESTED, n, "over", &v), -1);
	assert_int_equal(entry_get_u64(NESTED, n, "kind", &v), -1);
	assert_int_equal(entry_get_bool(NESTED, n, "null", &b), -1);
	assert_int_equal(entry_get_bool(NESTED, n, "pid", &b), -1);
	/* A value that does not fit is refused, not cut. */
	assert_int_equal(entry_get_str(NESTED, n, "after", out, 3), -1);
	assert_int_equal(entry_get_str(NESTED, n, "after", out, 4), 0);
	/* A cut line is not an object: every getter fails. */
	assert_int_equal(entry_get_str(NESTED, n - 1, "kind", out, sizeof(out)), -1);
	assert_false(entry_is_json(NESTED, n - 1));
}

static void test_getters_edge(void **state)
{
	char out[16];
	uint64_t v;

	(void)state;
	/* Repeated key: ambiguous, refused. */
	assert_int_equal(entry_get_u64(S("{\"a\":1,\"a\":2}"), "a", &v), -1);
	assert_int_equal(entry_get_u64(S("{\"a\":1,\"b\":{\"a\":2}}"), "a", &v), 0);
	assert_int_equal(v, 1);
	/* Escaped key names match their decoded form. */
	assert_int_equal(entry_get_u64(S("{\"\\u0061\":5}"), "a", &v), 0);
	assert_int_equal(v, 5);
	/* A decoded NUL cannot be a C string. */
	assert_int_equal(entry_get_str(S("{\"a\":\"x\\u0000y\"}"), "a", out, sizeof(out)), -1);
	/* Lone surrogates other than dc80-dcff become U+FFFD. */
	assert_int_equal(entry_get_str(S("{\"a\":\"\\ud800\"}"), "a", out, sizeof(out)), 0);
	assert_string_equal(out, "\xef\xbf\xbd");
	assert_int_equal(entry_get_str(S("{\"a\":\"\\udc80\\udcff\"}"), "a", out, sizeof(out)), 0);
	assert_string_equal(out, "\x80\xff");
	/* Whitespace between tokens is JSON. */
	assert_int_equal(entry_get_u64(S("{ \"a\" : 7 , \"b\" : [ 1 , 2 ] }"), "a", &v), 0);
	assert_int_equal(v, 7);
	assert_true(entry_is_json(S("{}")));
	assert_int_equal(entry_get_u64(S("{}"), "a", &v), -1);
}

static void test_is_json_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "}",
	    "[]",
	    "\"a\"",
	    "{\"a\":1",
	    "{\"a\":1}}",
	    "{\"a\":1} ",
	    " {\"a\":1}",
	    "{\"a\":1}x",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\":1,}",
	    "{,\"a\":1}",
	    "{\"a\" 1}",
	    "{a:1}",
	    "{'a':1}",
	    "{\"a\":\"unterminated}",
	    "{\"a\":\"bad escape \\x41\"}",
	    "{\"a\":\"bad \\u12\"}",
	    "{\"a\":\"bad \\u12g4\"}",
	    "{\"a\":\"trailing backslash\\",
	    "{\"a\":\"ctl \x01\"}",
	    "{\"a\":\"tab \t\"}",
	    "{\"a\":\"bad utf8 \xff\"}",
	    "{\"a\":\"overlong \xc0\xaf\"}",
	    "{\"a\":\"surrogate \xed\xa0\x80\"}",
	    "{\"a\":\"cut \xe2\x82\"}",
	    "{\"a\":01}",
	    "{\"a\":1.}",
	    "{\"a\":.5}",
	    "{\"a\":1e}",
	    "{\"a\":-}",
	    "{\"a\":+1}",
	    "{\"a\":0x10}",
	    "{\"a\":tru}",
	    "{\"a\":nul}",
	    "{\"a\":True}",
	    "{\"a\":[1,]}",
	    "{\"a\":[1 2]}",
	    "{\"a\":[}",
	    "{\"a\":{\"b\"}}",
	    "{\"a\":{\"b\":1,}}",
	    "{\"a\":NaN}",
	    "{\"a\":1}\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (entry_is_json(bad[i], strlen(bad[i])))
			fail_msg("accepted: %s", bad[i]);
	/* An embedded NUL byte inside a string is a control character. */
	assert_false(entry_is_json(S("{\"a\":\"x\0y\"}")));
	assert_true(entry_is_json(S("{\"a\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}")));
	assert_true(entry_is_json(S("{\"a\":[1,-0.5e+10,true,false,null,\"s\",{},[]]}")));
}

/* Nesting bombs: 31 inner levels pass, 32 do not (the object itself is one), 1000 and a
 * million fail without recursion. */
static void test_depth(void **state)
{
	const size_t deep = 1000000;
	char *b = malloc(2 * deep + 16);
	size_t n;

	(void)state;
	for (size_t depth = 30; depth <= 32; depth++) {
		n = 0;
		b[n++] = '{';
		memcpy(b + n, "\"a\":", 4);
		n += 4;
		for (size_t i = 0; i < depth; i++)
			b[n++] = '[';
		for (size_t i = 0; i < depth; i++)
			b[n++] = ']';
		b[n++] = '}';
		assert_int_equal(entry_is_json(b, n), depth < 32);
	}
	for (size_t depth = 1000; depth <= deep; depth *= 1000) {
		n = 0;
		b[n++] = '{';
		memcpy(b + n, "\"a\":", 4);
		n += 4;
		for (size_t i = 0; i < depth; i++)
			b[n++] = '[';
		for (size_t i = 0; i < depth; i++)
			b[n++] = ']';
		b[n++] = '}';
		assert_false(entry_is_json(b, n));
		/* unclosed */
		assert_false(entry_is_json(b, 5 + depth));
	}
	/* Objects nest the same way. */
	n = 0;
	b[n++] = '{';
	for (size_t i = 0; i < 1000; i++) {
		memcpy(b + n, "\"a\":{", 5);
		n += 5;
	}
	for (size_t i = 0; i < 1001; i++)
		b[n++] = '}';
	assert_false(entry_is_json(b, n));
	free(b);
}

static void test_hash(void **state)
{
	/* h = SHA-256(0x00 || line): compare with an independent computation. */
	static const char line[] = "{\"seq\":0,\"prev\":\"x\"}";
	unsigned char want[32], got[32], buf[64];
	char *big = malloc(10000);

	(void)state;
	buf[0] = 0;
	memcpy(buf + 1, line, sizeof(line) - 1);
	EVP_Digest(buf, sizeof(line), want, NULL, EVP_sha256(), NULL);
	entry_hash(line, sizeof(line) - 1, got);
	assert_memory_equal(want, got, 32);
	/* The long-line path agrees with the short one's definition. */
	memset(big, 'a', 10000);
	big[0] = 0;
	EVP_Digest(big, 10000, want, NULL, EVP_sha256(), NULL);
	entry_hash(big + 1, 9999, got);
	assert_memory_equal(want, got, 32);
	/* Empty line: SHA-256 of the single byte 0x00. */
	entry_hash("", 0, got);
	EVP_Digest("\0", 1, want, NULL, EVP_sha256(), NULL);
	assert_memory_equal(want, got, 32);
	free(big);
}

static void test_parse_time(void **state)
{
	static const char *const bad[] = {
	    "2026-11-27T20:34:47.123456789",   "2026-11-27T20:34:47.12345678Z",
	    "2026-11-27 20:34:47.123456789Z",  "2026-11-27T20:34:47,123456789Z",
	    "2026-13-27T20:34:47.123456789Z",  "2026-00-27T20:34:47.123456789Z",
	    "2026-11-31T20:34:47.123456789Z",  "2026-02-29T20:34:47.123456789Z",
	    "2026-11-27T24:00:00.000000000Z",  "2026-11-27T20:60:47.123456789Z",
	    "2026-11-27T20:34:60.123456789Z",  "1969-12-31T23:59:59.999999999Z",
	    "2026-11-27t20:34:47.123456789Z",  "2026-11-27T20:34:47.123456789z",
	    "2026-11-27T20:34:4a.123456789Z",  "+026-11-27T20:34:47.123456789Z",
	    "2026-11-27T20:34:47.123456789Z ", "9999-12-31T23:59:59.999999999Z",
	    "2026-11-00T20:34:47.123456789Z",
	};
	uint64_t ns;

	(void)state;
	assert_int_equal(parse_time(S("1970-01-01T00:00:00.000000000Z"), &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(parse_time(S("2026-11-27T20:34:47.123456789Z"), &ns), 0);
	assert_true(ns == 1795811687123456789ull);
	assert_int_equal(parse_time(S("2024-02-29T00:00:00.000000001Z"), &ns), 0);
	assert_true(ns == 1709164800000000001ull);
	assert_int_equal(parse_time(S("2000-02-29T12:00:00.500000000Z"), &ns), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_time(bad[i], strlen(bad[i]), &ns) == 0)
			fail_msg("accepted: %s", bad[i]);
	/* Round trip with the writer over a range of instants. */
	for (uint64_t t = 0; t < 4000000000ull; t += 12345677ull) {
		char buf[TIME_LEN];
		uint64_t in = t * 1000000000ull + t % 1000000000ull;

		fmt_time(in, buf);
		assert_int_equal(parse_time(buf, strlen(buf), &ns), 0);
		assert_true(ns == in);
	}
}

static void test_zlib(void **state)
{
	size_t n = 300000, zl, ol;
	char *in = malloc(n), *out;
	unsigned char *z;

	(void)state;
	for (size_t i = 0; i < n; i++)
		in[i] = (char)("{\"seq\":1,}\n"[i % 11] ^ (i % 7 == 0 ? (char)(i >> 3) : 0));
	assert_int_equal(z_deflate(in, n, &z, &zl), 0);
	assert_true(zl < n);
	assert_int_equal(z_inflate(z, zl, n, &out, &ol), 0);
	assert_int_equal(ol, n);
	assert_memory_equal(in, out, n);
	free(out);
	/* One byte under the size: refused. */
	assert_int_equal(z_inflate(z, zl, n - 1, &out, &ol), -1);
	/* Cut streams, trailing bytes, garbage. */
	assert_int_equal(z_inflate(z, zl - 1, n, &out, &ol), -1);
	assert_int_equal(z_inflate(z, zl / 2, n, &out, &ol), -1);
	assert_int_equal(z_inflate(z, 0, n, &out, &ol), -1);
	unsigned char *z2 = malloc(zl + 1);

	memcpy(z2, z, zl);
	z2[zl] = 0;
	assert_int_equal(z_inflate(z2, zl + 1, n, &out, &ol), -1);
	z2[zl / 2] ^= 0x55;
	assert_int_equal(z_inflate(z2, zl, n, &out, &ol), -1);
	assert_int_equal(z_inflate((const unsigned char *)"garbage", 7, n, &out, &ol), -1);
	free(z2);
	free(z);
	/* Empty input round trip. */
	assert_int_equal(z_deflate("", 0, &z, &zl), 0);
	assert_int_equal(z_inflate(z, zl, 10, &out, &ol), 0);
	assert_int_equal(ol, 0);
	free(out);
	/* ... even with a bound of 0. */
	assert_int_equal(z_inflate(z, zl, 0, &out, &ol), 0);
	assert_int_equal(ol, 0);
	free(out);
	free(z);
	free(in);
}

/* 64 MiB of zeros deflate to well under 1 MiB: inflating with a 1 MiB bound must stop there. */
static void test_zip_bomb(void **state)
{
	size_t n = 64u << 20, zl, ol = 0;
	char *zeros = calloc(1, n), *out = NULL;
	unsigned char *z;

	(void)state;
	assert_int_equal(z_deflate(zeros, n, &z, &zl), 0);
	free(zeros);
	assert_true(zl < n / 100);
	assert_int_equal(z_inflate(z, zl, 1u << 20, &out, &ol), -1);
	assert_null(out);
	free(z);
}

static void test_segment_read(void **state)
{
	char dir[] = "/tmp/test_logfmt.XXXXXX", path[256], link[256], zpath[256], *buf, err[512];
	size_t len, zl;
	unsigned char *z;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "line one\nline two\n", 18), 18);
	close(fd);
	assert_int_equal(segment_read(path, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 18);
	assert_memory_equal(buf, "line one\nline two\n", 18);
	/* The .z form reads back as the same bytes. */
	assert_int_equal(z_deflate(buf, len, &z, &zl), 0);
	free(buf);
	snprintf(zpath, sizeof(zpath), "%s/seg-0000000000000001.log.z", dir);
	fd = open(zpath, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(write(fd, z, zl), (ssize_t)zl);
	close(fd);
	free(z);
	assert_int_equal(segment_read(zpath, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 18);
	assert_memory_equal(buf, "line one\nline two\n", 18);
	free(buf);
	/* A .z that is not zlib fails with the file named. */
	fd = open(zpath, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "plain", 5), 5);
	close(fd);
	assert_int_equal(segment_read(zpath, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, zpath));
	/* Symlinks, directories, FIFOs and missing files are refused. */
	snprintf(link, sizeof(link), "%s/link.log", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(segment_read(link, &buf, &len, err, sizeof(err)), -1);
	assert_int_equal(segment_read(dir, &buf, &len, err, sizeof(err)), -1);
	snprintf(link, sizeof(link), "%s/fifo.log", dir);
	assert_int_equal(mkfifo(link, 0600), 0);
	assert_int_equal(segment_read(link, &buf, &len, err, sizeof(err)), -1);
	unlink(link);
	snprintf(link, sizeof(link), "%s/missing.log", dir);
	assert_int_equal(segment_read(link, &buf, &len, err, sizeof(err)), -1);
	/* Over the size limit (sparse, so it costs nothing). */
	fd = open(path, O_WRONLY);
	assert_int_equal(ftruncate(fd, (off_t)LOG_SEGMENT_MAX + 1), 0);
	close(fd);
	assert_int_equal(segment_read(path, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "limit"));
	unlink(path);
	unlink(zpath);
	snprintf(link, sizeof(link), "%s/link.log", dir);
	unlink(link);
	assert_int_equal(rmdir(dir), 0);
}

/* One key, one value: a repeated top-level key (in any spelling) makes a line malformed,
 * a key repeated in nested objects does not. */
static void test_duplicate_keys(void **state)
{
	(void)state;
	assert_true(entry_is_json(S("{\"a\":1,\"b\":2,\"c\":{\"a\":1,\"a\":2}}")));
	assert_false(entry_is_json(S("{\"a\":1,\"b\":2,\"a\":3}")));
	assert_false(entry_is_json(S("{\"kind\":\"exec\",\"\\u006bind\":\"seal\"}")));
	assert_true(entry_is_json(S("{\"kind\":1,\"kinds\":2,\"kin\":3}")));
	/* Many keys: found in n log n, not n squared. */
	{
		struct jbuf b = {0};

		jb_putc(&b, '{');
		for (int i = 0; i < 20000; i++) {
			char k[32];

			jb_raw(&b, k,
			       (size_t)snprintf(k, sizeof(k), "%s\"k%d\":1", i ? "," : "", i));
		}
		jb_putc(&b, '}');
		assert_true(entry_is_json(b.p, b.len));
		jb_raw(&b, "", 0);
		b.len--;
		jb_raw(&b, ",\"k777\":2}", 11);
		assert_false(entry_is_json(b.p, b.len));
		jb_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_accept),
	    cmocka_unit_test(test_prefix_reject),
	    cmocka_unit_test(test_getters),
	    cmocka_unit_test(test_getters_edge),
	    cmocka_unit_test(test_is_json_malformed),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_hash),
	    cmocka_unit_test(test_parse_time),
	    cmocka_unit_test(test_zlib),
	    cmocka_unit_test(test_zip_bomb),
	    cmocka_unit_test(test_segment_read),
	    cmocka_unit_test(test_duplicate_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
