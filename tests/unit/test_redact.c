/* Unit tests for user/redact.c */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "redact.h"

/* Redacts a NUL-terminated s and checks the result, NULL meaning "nothing matched". */
static void check(const struct redactor *r, const char *s, bool truncated, const char *want)
{
	size_t outlen = 12345;
	char *got = redact(r, s, strlen(s), truncated, &outlen);

	if (!want) {
		assert_null(got);
		assert_int_equal(outlen, 12345);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(outlen, strlen(want));
	free(got);
}

static int setup(void **state)
{
	struct redactor *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	redact_init(r);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	redact_free(*state);
	free(*state);
	return 0;
}

static void test_no_secrets(void **state)
{
	struct redactor *r = *state;

	check(r, "hunter2 everywhere", false, NULL);
	check(r, "hunter2 everywhere", true, NULL);
	check(r, "", false, NULL);
}

static void test_empty_secret_ignored(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_add_secret(r, "empty", ""), 0);
	assert_int_equal(r->n, 0);
	assert_int_equal(redact_add_secret(r, "null", NULL), -1);
	assert_int_equal(r->n, 0);
}

static void test_single(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_add_secret(r, "pw", "hunter2"), 0);
	check(r, "login --password hunter2 --user bob", false,
	      "login --password [REDACTED:pw] --user bob");
	check(r, "nothing to see", false, NULL);
	check(r, "hunter", false, NULL);
}

static void test_start_end_whole_adjacent(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_add_secret(r, "t", "abc"), 0);
	check(r, "abc-x", false, "[REDACTED:t]-x");
	check(r, "x-abc", false, "x-[REDACTED:t]");
	check(r, "abc", false, "[REDACTED:t]");
	check(r, "abcabcabc", false, "[REDACTED:t][REDACTED:t][REDACTED:t]");
	check(r, "abcab", false, "[REDACTED:t]ab");
}

static void test_multiple(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_add_secret(r, "user_pw", "s3cr3t"), 0);
	assert_int_equal(redact_add_secret(r, "api_token", "tok_ABCDEF"), 0);
	check(r, "curl -u admin:s3cr3t -H 'X: tok_ABCDEF' s3cr3t", false,
	      "curl -u admin:[REDACTED:user_pw] -H 'X: [REDACTED:api_token]' "
	      "[REDACTED:user_pw]");
}

static void test_longest_wins(void **state)
{
	struct redactor *r = *state;

	/* Added short first so that insertion order cannot be what decides. */
	assert_int_equal(redact_add_secret(r, "short", "pass"), 0);
	assert_int_equal(redact_add_secret(r, "long", "password1"), 0);
	check(r, "x=password1;y=pass", false, "x=[REDACTED:long];y=[REDACTED:short]");
	check(r, "password", false, "[REDACTED:short]word");
}

static void test_overlap_consumed(void **state)
{
	struct redactor *r = *state;

	/* "bcd" starts inside the span of "abcde" and is consumed by it. */
	assert_int_equal(redact_add_secret(r, "inner", "bcd"), 0);
	assert_int_equal(redact_add_secret(r, "outer", "abcde"), 0);
	check(r, "-abcde-bcd-", false, "-[REDACTED:outer]-[REDACTED:inner]-");
}

static void test_overlap_never_leaks(void **state)
{
	struct redactor *r = *state;

	/* "cdefgh" overlaps the end of "abcd": its tail must not survive. */
	assert_int_equal(redact_add_secret(r, "a", "abcd"), 0);
	assert_int_equal(redact_add_secret(r, "b", "cdefgh"), 0);
	check(r, "<abcdefgh>", false, "<[REDACTED:b]>");
	check(r, "<abcd>", false, "<[REDACTED:a]>");
}

static void test_binary(void **state)
{
	struct redactor *r = *state;
	static const char s[] = "a\0b\xff\x01k3y\0z";
	static const char want[] = "a\0b[REDACTED:bin]\0z";
	size_t outlen = 0;
	char *got;

	assert_int_equal(redact_add_secret(r, "bin", "\xff\x01k3y"), 0);
	got = redact(r, s, sizeof(s) - 1, false, &outlen);
	assert_non_null(got);
	assert_int_equal(outlen, sizeof(want) - 1);
	assert_memory_equal(got, want, outlen);
	free(got);
	/* The secret cut by a length limit is not a match. */
	assert_null(redact(r, s, 6, false, &outlen));
}

static void test_truncated_tail(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_add_secret(r, "key", "SUPERSECRET"), 0);
	check(r, "echo SUPERSEC", true, "echo [REDACTED:key]");
	check(r, "echo SUP", true, "echo [REDACTED:key]");
	check(r, "echo SU", true, NULL);
	check(r, "echo SUPERSEC", false, NULL);
	check(r, "SUPERSECRET SUPER", true, "[REDACTED:key] [REDACTED:key]");
	check(r, "SUPERSECRETSUP", true, "[REDACTED:key][REDACTED:key]");
}

static void test_truncated_tail_longest(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_add_secret(r, "a", "xyzzy"), 0);
	assert_int_equal(redact_add_secret(r, "b", "qxyz123"), 0);
	/* "qxyz" (prefix of b) is a longer tail than "xyz" (prefix of a). */
	check(r, "run qxyz", true, "run [REDACTED:b]");
}

static void test_truncated_tail_merges_with_match(void **state)
{
	struct redactor *r = *state;

	/* The full match of "abc" runs into the cut-off "cdefgh": one marker covers both. */
	assert_int_equal(redact_add_secret(r, "a", "abc"), 0);
	assert_int_equal(redact_add_secret(r, "c", "cdefgh"), 0);
	check(r, "=abcdef", true, "=[REDACTED:c]");
}

static void test_many_secrets(void **state)
{
	struct redactor *r = *state;
	char name[16], value[16];

	/* More secrets than the stack cache holds. */
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		snprintf(value, sizeof(value), "val%02dx", i);
		assert_int_equal(redact_add_secret(r, name, value), 0);
	}
	check(r, "val39x val00x val07", false, "[REDACTED:n39] [REDACTED:n0] val07");
}

static void test_env_default(void **state)
{
	struct redactor *r = *state;

	assert_true(redact_env_name(r, "AWS_SECRET_ACCESS_KEY"));
	assert_true(redact_env_name(r, "GITHUB_TOKEN"));
	assert_true(redact_env_name(r, "DB_PASSWORD"));
	assert_true(redact_env_name(r, "db_passwd"));
	assert_true(redact_env_name(r, "Api_Key"));
	assert_true(redact_env_name(r, "GOOGLE_APPLICATION_CREDENTIALS"));
	assert_false(redact_env_name(r, "PATH"));
	assert_false(redact_env_name(r, "HOME"));
	assert_false(redact_env_name(r, ""));
}

static void test_env_custom(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_set_env_patterns(r, "vault,, PIN ,"), 0);
	assert_int_equal(r->npatterns, 2);
	assert_true(redact_env_name(r, "VAULT_ADDR"));
	assert_true(redact_env_name(r, "sim_pin"));
	assert_false(redact_env_name(r, "GITHUB_TOKEN"));

	assert_int_equal(redact_set_env_patterns(r, ""), 0);
	assert_int_equal(r->npatterns, 0);
	assert_false(redact_env_name(r, "GITHUB_TOKEN"));
}

#define PW "p@ss w/rd>>?"

/* Each common encoding of a secret is redacted as the secret itself. */
static void test_encodings(void **state)
{
	static const char *const enc[] = {
	    "7040737320772f72643e3e3f", /* hex */
	    "7040737320772F72643E3E3F", /* HEX */
	    "cEBzcyB3L3JkPj4/",		/* base64 */
	    "cEBzcyB3L3JkPj4_",		/* base64url */
	    "p%40ss%20w%2Frd%3E%3E%3F", /* encodeURIComponent */
	    "p%40ss%20w%2frd%3e%3e%3f", /* lower-case escapes */
	    "p%40ss%20w/rd%3E%3E%3F",	/* urllib.parse.quote */
	    "p%40ss+w%2Frd%3E%3E%3F",	/* form encoding */
	};
	struct redactor *r = *state;
	char in[128], want[128];

	assert_int_equal(redact_add_secret(r, "pw", PW), 0);
	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		snprintf(in, sizeof(in), "x=%s&y", enc[i]);
		check(r, in, false, "x=[REDACTED:pw]&y");
		/* A cut-off encoding at the end of a truncated string is hidden too. */
		snprintf(in, sizeof(in), "tail %.8s", enc[i]);
		check(r, in, true, "tail [REDACTED:pw]");
	}
	snprintf(want, sizeof(want), "Authorization: Basic [REDACTED:pw]");
	check(r, "Authorization: Basic cEBzcyB3L3JkPj4/", false, want);
}

/* Inside a longer base64 stream the secret starts at byte 0, 1 or 2 of a 3-byte group; the
 * characters that only its bits determine are redacted in each case, in both alphabets. */
static void test_base64_embedded(void **state)
{
	struct redactor *r = *state;
	const size_t len = strlen(PW);

	assert_int_equal(redact_add_secret(r, "pw", PW), 0);
	for (size_t k = 0; k < 3; k++)
		for (int url = 0; url < 2; url++) {
			unsigned char in[64];
			char b64[128], want[160];
			size_t n = k + len + 3, first = (8 * k + 5) / 6, last = 8 * (k + len) / 6;

			memcpy(in, "AB", k);
			memcpy(in + k, PW "xyz", len + 3);
			EVP_EncodeBlock((unsigned char *)b64, in, (int)n);
			for (char *c = b64; url && *c; c++)
				*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
			snprintf(want, sizeof(want), "%.*s[REDACTED:pw]%s", (int)first, b64,
				 b64 + last);
			check(r, b64, false, want);
		}
}

/* Encodings shorter than 6 characters would hide innocent text: a 2-byte secret's hex is
 * left alone (the secret itself is still redacted). */
static void test_short_encodings_skipped(void **state)
{
	struct redactor *r = *state;

	assert_int_equal(redact_add_secret(r, "s", "ab"), 0);
	check(r, "0x6162", false, NULL);
	check(r, "ab", false, "[REDACTED:s]");
	assert_int_equal(redact_add_secret(r, "t", "abc"), 0);
	check(r, "616263", false, "[REDACTED:t]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_secrets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_secret_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_single, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_end_whole_adjacent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multiple, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_longest_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlap_consumed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlap_never_leaks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_tail_longest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_tail_merges_with_match, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_secrets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_env_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_env_custom, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_encodings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_base64_embedded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_encodings_skipped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
