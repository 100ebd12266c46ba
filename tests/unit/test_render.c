/* Unit tests for the report escapers (user/report/escape.c) and path normalisation
 * (user/report/normalize.c): what keeps hostile names from breaking an output, and what
 * makes two routine runs compare equal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "report/escape.h"
#include "report/normalize.h"

typedef void (*esc_fn)(struct jbuf *b, const char *s, size_t n);

static void check(esc_fn f, const char *in, size_t n, const char *want)
{
	struct jbuf b = {0};

	jb_raw(&b, "", 0);
	f(&b, in, n);
	assert_string_equal(b.p, want);
	jb_free(&b);
}

#define CHECK(f, lit, want) check(f, lit, sizeof(lit) - 1, want)

static void test_html(void **state)
{
	(void)state;
	CHECK(esc_html, "<script>alert(\"x\")</script>",
	      "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
	CHECK(esc_html, "a&b 'q'", "a&amp;b &#39;q&#39;");
	/* Newlines, NUL, DEL and invalid UTF-8 become visible \xNN; valid UTF-8 stays. */
	CHECK(esc_html, "l1\nl2\0\x7f", "l1\\x0al2\\x00\\x7f");
	CHECK(esc_html, "caf\xc3\xa9 \xff\xfe", "caf\xc3\xa9 \\xff\\xfe");
	/* A C1 control (U+009B, the one-byte CSI) is escaped as its bytes. */
	CHECK(esc_html, "\xc2\x9b", "\\xc2\\x9b");
	/* Overlong '<' is not valid UTF-8: it cannot slip through as a tag. */
	CHECK(esc_html, "\xc0\xbc", "\\xc0\\xbc");
}

static void test_term(void **state)
{
	(void)state;
	CHECK(esc_term, "\033[31mred\033[0m", "\\x1b[31mred\\x1b[0m");
	CHECK(esc_term, "a\\b", "a\\\\b");
	CHECK(esc_term, "fake\nline\r", "fake\\x0aline\\x0d");
	CHECK(esc_term, "\xe2\x82\xac ok", "\xe2\x82\xac ok");
	CHECK(esc_term, "\xed\xa0\x80", "\\xed\\xa0\\x80"); /* a surrogate is not UTF-8 */
}

static void test_md(void **state)
{
	(void)state;
	CHECK(esc_md, "a|b", "a\\|b");
	CHECK(esc_md, "*x* _y_ `z` [l](u)", "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u)");
	CHECK(esc_md, "<img src=x>", "&lt;img src=x&gt;");
	CHECK(esc_md, "\\", "\\\\");
	CHECK(esc_md, "two\nlines", "two\\x0alines");
	CHECK(esc_md, "/usr/bin/dash", "/usr/bin/dash");
}

static void norm(const char *in, const char *want)
{
	struct jbuf b = {0};

	norm_text(&b, in, strlen(in));
	assert_string_equal(b.p, want);
	jb_free(&b);
}

static void test_normalize(void **state)
{
	(void)state;
	norm("/usr/bin/dash", "/usr/bin/dash");
	norm("/proc/12345/status", "/proc/#/status");
	norm("/var/log/app-2026-12-01T21:01:23.log", "/var/log/app-#-#-#T#:#:#.log");
	norm("/sys/fs/cgroup/unified/runseal/01a23369-87c3-7aa5-9627-2fb7ccaa4064/cgroup.procs",
	     "/sys/fs/cgroup/unified/runseal/<id>/cgroup.procs");
	norm("/tmp/tmp.Xa81kQz0Lm/out", "/tmp/tmp.<tmp>/out");
	norm("/tmp/runseal-demo/demo-web/pid.tmp.4242", "/tmp/runseal-demo/demo-web/pid.tmp.#");
	norm("/var/cache/deadbeef00112233", "/var/cache/<hex>");
	/* Words are kept: only generated parts change. */
	norm("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt");
	norm("/usr/bin/python3.11", "/usr/bin/python#.#");
	/* Two routine runs, two different temporary names, one normal form. */
	{
		struct jbuf a = {0}, b = {0};
		const char *x = "/tmp/runseal-itest-abc123/step.Qx81Zt",
			   *y = "/tmp/runseal-itest-zz9k2m/step.8HhaP0";

		norm_text(&a, x, strlen(x));
		norm_text(&b, y, strlen(y));
		assert_string_equal(a.p, b.p);
		jb_free(&a);
		jb_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_html),
	    cmocka_unit_test(test_term),
	    cmocka_unit_test(test_md),
	    cmocka_unit_test(test_normalize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
