/* Unit tests for user/record.c */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "record.h"

/* 2026-11-27T20:34:47Z per `date -u -d @1795811687`. */
#define T_NS   1795811687123456789ull
#define T_TEXT "2026-11-27T20:34:47.123456789Z"

/* --- A tiny JSON validator: one object, then '\n', nothing else. ----------------------- */

static const char *j_value(const char *p);

static const char *j_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static const char *j_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!p[i] || !strchr("0123456789abcdefABCDEF", p[i]))
						return NULL;
				p += 5;
				continue;
			}
			if (!*p || !strchr("\"\\/bfnrt", *p))
				return NULL;
		}
		p++;
	}
	return p + 1;
}

static const char *j_number(const char *p)
{
	const char *b;

	if (*p == '-')
		p++;
	b = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == b || (*b == '0' && p - b > 1))
		return NULL;
	return p;
}

static const char *j_container(const char *p, char open, char close, bool keyed)
{
	if (*p++ != open)
		return NULL;
	p = j_ws(p);
	if (*p == close)
		return p + 1;
	for (;;) {
		p = j_ws(p);
		if (keyed) {
			p = j_string(p);
			if (!p)
				return NULL;
			p = j_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = j_value(j_ws(p));
		if (!p)
			return NULL;
		p = j_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *j_value(const char *p)
{
	switch (*p) {
	case '{':
		return j_container(p, '{', '}', true);
	case '[':
		return j_container(p, '[', ']', false);
	case '"':
		return j_string(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	default:
		return j_number(p);
	}
}

static bool valid_line(const char *line, size_t len)
{
	const char *e;

	if (len < 3 || strlen(line) != len || line[0] != '{' || line[len - 1] != '\n')
		return false;
	e = j_container(line, '{', '}', true);
	return e && e == line + len - 1;
}

static bool valid_str(const char *line)
{
	return valid_line(line, strlen(line));
}

/* --- A capturing sink. ------------------------------------------------------------------ */

struct order {
	char log[64];
	size_t n;
};

struct capture {
	char id;	     /* written to the shared order log on each call */
	struct order *order; /* may be NULL */
	int calls;
	int fail_on; /* 1-based call that fails with fail_errno, 0 for never */
	int fail_errno;
	char *lines; /* every line received, concatenated */
	size_t len;
	char last[4096]; /* the last line if it fits, NUL-terminated */
	enum rec_kind last_kind;
	int last_step;
};

static int capture_write(void *ctx, const struct rec_view *v)
{
	struct capture *c = ctx;

	c->calls++;
	if (c->order && c->order->n < sizeof(c->order->log) - 1)
		c->order->log[c->order->n++] = c->id;
	if (c->fail_on && c->calls >= c->fail_on) {
		errno = c->fail_errno;
		return -1;
	}
	c->last_kind = v->kind;
	c->last_step = v->step;
	c->lines = realloc(c->lines, c->len + v->len + 1);
	assert_non_null(c->lines);
	memcpy(c->lines + c->len, v->line, v->len);
	c->lines[c->len + v->len] = '\0';
	/* The view must be exactly one valid JSON object followed by '\n'. */
	if (!valid_line(c->lines + c->len, v->len))
		fail_msg("invalid JSON line: %s", c->lines + c->len);
	c->last[0] = '\0';
	if (v->len < sizeof(c->last))
		memcpy(c->last, v->line, v->len + 1);
	c->len += v->len;
	return 0;
}

static struct sink capture_sink(struct capture *c, const char *name)
{
	return (struct sink){.write = capture_write, .ctx = c, .name = name};
}

struct fixture {
	struct redactor r;
	struct stream s;
	struct capture c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	redact_init(&f->r);
	if (redact_add_secret(&f->r, "pw", "hunter2") < 0)
		return -1;
	stream_init(&f->s, &f->r);
	stream_add_sink(&f->s, capture_sink(&f->c, "capture"));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stream_free(&f->s);
	redact_free(&f->r);
	free(f->c.lines);
	free(f);
	return 0;
}

/* --- Tests ------------------------------------------------------------------------------ */

static void test_begin_fields(void **state)
{
	struct fixture *f = *state;

	rec_begin(&f->s, REC_EXEC, T_NS, "run-1", 3);
	assert_int_equal(rec_end(&f->s), 0);
	assert_string_equal(f->c.last,
			    "{\"kind\":\"exec\",\"time\":\"" T_TEXT "\",\"run\":\"run-1\"}\n");
	assert_int_equal(f->c.last_kind, REC_EXEC);
	assert_int_equal(f->c.last_step, 3);
	assert_int_equal(f->c.calls, 1);
}

static void test_time_format(void **state)
{
	static const struct {
		uint64_t ns;
		const char *want;
	} cases[] = {
	    {T_NS, T_TEXT},
	    {0, "1970-01-01T00:00:00.000000000Z"},
	    {5, "1970-01-01T00:00:00.000000005Z"},
	    {999999999, "1970-01-01T00:00:00.999999999Z"},
	    {1000000000, "1970-01-01T00:00:01.000000000Z"},
	    /* `date -u -d @1709251199` = 2024-02-29T23:59:59Z (leap day). */
	    {1709251199000000001ull, "2024-02-29T23:59:59.000000001Z"},
	    /* `date -u -d @4102444800` = 2100-01-01T00:00:00Z. */
	    {4102444800123000000ull, "2100-01-01T00:00:00.123000000Z"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[128];

		rec_begin(&f->s, REC_RUN_START, cases[i].ns, "r", -1);
		assert_int_equal(rec_end(&f->s), 0);
		snprintf(want, sizeof(want),
			 "{\"kind\":\"run_start\",\"time\":\"%s\",\"run\":\"r\"}\n", cases[i].want);
		assert_string_equal(f->c.last, want);
	}

	/* Shape check: YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ. */
	const char *t = strstr(f->c.last, "\"time\":\"") + 8;
	const char *shape = "dddd-dd-ddTdd:dd:dd.dddddddddZ\"";
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == 'd')
			assert_true(t[i] >= '0' && t[i] <= '9');
		else
			assert_int_equal(t[i], shape[i]);
	}
}

static void test_every_kind_name(void **state)
{
	static const char *const names[REC_GENESIS] = {
	    "run_start",
	    "run_end",
	    "step_start",
	    "step_end",
	    "exec",
	    "fork",
	    "exit",
	    "open",
	    "connect",
	    "loss",
	    /* issue 8, self-protection: */
	    "bpf",
	    "perf_event_open",
	    "ptrace",
	    "process_vm",
	    "pidfd_getfd",
	    "signal",
	    "module_load",
	    "memfd_create",
	    "run_interrupted",
	    /* capture coverage (issue 8) */
	    "rename",
	    "unlink",
	    "chmod",
	    "chown",
	    "link",
	    "symlink",
	    "truncate",
	    "mount",
	    "umount",
	    "cred",
	    "listen",
	    "accept",
	    "compat_syscall",
	    "io_uring_result",
	    "mkdir",
	    "mknod",
	    "xattr",
	    "utimes",
	    "chroot",
	    "namespace",
	    /* the daemon: */
	    "attach",
	    "refused",
	    "daemon",
	    "gap",
	    "read",
	};
	struct fixture *f = *state;

	for (int k = 0; k < REC_GENESIS; k++) {
		char want[64];

		assert_string_equal(rec_kind_name((enum rec_kind)k), names[k]);
		rec_begin(&f->s, (enum rec_kind)k, T_NS, "r", -1);
		assert_int_equal(rec_end(&f->s), 0);
		snprintf(want, sizeof(want), "{\"kind\":\"%s\",", names[k]);
		assert_true(strncmp(f->c.last, want, strlen(want)) == 0);
		assert_int_equal(f->c.last_kind, k);
		assert_int_equal(f->c.last_step, -1);
	}
}

static void test_scalars(void **state)
{
	struct fixture *f = *state;

	rec_begin(&f->s, REC_EXIT, T_NS, NULL, 0);
	rec_int(&f->s, "pid", 1234);
	rec_int(&f->s, "min", INT64_MIN);
	rec_int(&f->s, "max", INT64_MAX);
	rec_bool(&f->s, "t", true);
	rec_bool(&f->s, "f", false);
	rec_null(&f->s, "n");
	rec_str(&f->s, "s", NULL);
	rec_str(&f->s, "e", "");
	rec_str(&f->s, "q", "a\"b\\c\nd\x01\xff");
	assert_int_equal(rec_end(&f->s), 0);
	assert_string_equal(f->c.last, "{\"kind\":\"exit\",\"time\":\"" T_TEXT "\",\"run\":null,"
				       "\"pid\":1234,\"min\":-9223372036854775808,"
				       "\"max\":9223372036854775807,\"t\":true,\"f\":false,"
				       "\"n\":null,\"s\":null,\"e\":\"\","
				       "\"q\":\"a\\\"b\\\\c\\nd\\u0001\\udcff\"}\n");
}

static void test_nested(void **state)
{
	struct fixture *f = *state;

	rec_begin(&f->s, REC_EXEC, T_NS, "r", 1);
	rec_open(&f->s, "empty_a", '[');
	rec_close(&f->s, ']');
	rec_open(&f->s, "empty_o", '{');
	rec_close(&f->s, '}');
	rec_open(&f->s, "argv", '[');
	rec_item(&f->s, "ls", 2, false);
	rec_item(&f->s, "-l\0x", 4, false);
	rec_item(&f->s, "", 0, false);
	rec_close(&f->s, ']');
	rec_open(&f->s, "proc", '{');
	rec_int(&f->s, "pid", 7);
	rec_open(&f->s, "env", '[');
	rec_open(&f->s, NULL, '{');
	rec_str(&f->s, "k", "A");
	rec_str(&f->s, "v", "1");
	rec_close(&f->s, '}');
	rec_open(&f->s, NULL, '{');
	rec_close(&f->s, '}');
	rec_open(&f->s, NULL, '[');
	rec_item(&f->s, "x", 1, false);
	rec_close(&f->s, ']');
	rec_close(&f->s, ']');
	rec_bool(&f->s, "ok", true);
	rec_close(&f->s, '}');
	rec_int(&f->s, "after", 1);
	assert_int_equal(rec_end(&f->s), 0);
	assert_string_equal(f->c.last,
			    "{\"kind\":\"exec\",\"time\":\"" T_TEXT "\",\"run\":\"r\","
			    "\"empty_a\":[],\"empty_o\":{},\"argv\":[\"ls\",\"-l\\u0000x\",\"\"],"
			    "\"proc\":{\"pid\":7,\"env\":[{\"k\":\"A\",\"v\":\"1\"},{},[\"x\"]],"
			    "\"ok\":true},\"after\":1}\n");
	assert_true(valid_str(f->c.last));
}

static void test_validator_rejects(void **state)
{
	(void)state;
	/* The checker used on every captured line must be able to say no. */
	assert_false(valid_str("{\"a\":1,}\n"));
	assert_false(valid_str("{\"a\":1}"));
	assert_false(valid_str("{\"a\":[1,]}\n"));
	assert_false(valid_str("{\"a\" 1}\n"));
	assert_false(valid_str("{\"a\":\"x\ny\"}\n"));
	assert_false(valid_str("{\"a\":{}}}\n"));
	assert_false(valid_str("{,\"a\":1}\n"));
	assert_true(valid_str("{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\"}\n"));
}

static void test_buffer_reset_between_records(void **state)
{
	struct fixture *f = *state;

	rec_begin(&f->s, REC_FORK, T_NS, "r", 2);
	rec_str(&f->s, "big",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(rec_end(&f->s), 0);
	rec_begin(&f->s, REC_FORK, T_NS, "r", 2);
	rec_int(&f->s, "child", 9);
	assert_int_equal(rec_end(&f->s), 0);
	assert_string_equal(f->c.last, "{\"kind\":\"fork\",\"time\":\"" T_TEXT "\",\"run\":\"r\","
				       "\"child\":9}\n");
	assert_int_equal(f->c.calls, 2);
}

/* The secret must not survive in any form: raw, or split by escaping. */
static void assert_no_secret(const char *line)
{
	if (strstr(line, "hunter2") || strstr(line, "hunter") || strstr(line, "unter2"))
		fail_msg("secret leaked: %s", line);
}

static void test_redaction(void **state)
{
	struct fixture *f = *state;

	rec_begin(&f->s, REC_EXEC, T_NS, "r", 0);
	rec_str(&f->s, "cmd", "echo hunter2");
	assert_int_equal(rec_end(&f->s), 0);
	assert_no_secret(f->c.last);
	assert_non_null(strstr(f->c.last, ",\"cmd\":\"echo [REDACTED:pw]\"}"));

	rec_begin(&f->s, REC_EXEC, T_NS, "r", 0);
	rec_str(&f->s, "a", "hunter2");
	rec_strn(&f->s, "b", "xhunter2hunter2y", 16, false);
	rec_strn(&f->s, "c", "hunter2 and more", 7, false);
	rec_open(&f->s, "argv", '[');
	rec_item(&f->s, "--password=hunter2", 18, false);
	rec_item(&f->s, "hunter2\n", 8, false);
	rec_item(&f->s, "plain", 5, false);
	rec_close(&f->s, ']');
	assert_int_equal(rec_end(&f->s), 0);
	assert_no_secret(f->c.last);
	assert_string_equal(f->c.last,
			    "{\"kind\":\"exec\",\"time\":\"" T_TEXT "\",\"run\":\"r\","
			    "\"a\":\"[REDACTED:pw]\",\"b\":\"x[REDACTED:pw][REDACTED:pw]y\","
			    "\"c\":\"[REDACTED:pw]\",\"argv\":[\"--password=[REDACTED:pw]\","
			    "\"[REDACTED:pw]\\n\",\"plain\"]}\n");

	/* The run id is a value too. */
	rec_begin(&f->s, REC_RUN_END, T_NS, "run-hunter2", -1);
	assert_int_equal(rec_end(&f->s), 0);
	assert_no_secret(f->c.last);
	assert_non_null(strstr(f->c.last, "\"run\":\"run-[REDACTED:pw]\""));
}

static void test_redaction_keys_not_redacted(void **state)
{
	struct fixture *f = *state;

	rec_begin(&f->s, REC_EXEC, T_NS, "r", 0);
	rec_str(&f->s, "hunter2", "hunter2");
	assert_int_equal(rec_end(&f->s), 0);
	assert_non_null(strstr(f->c.last, ",\"hunter2\":\"[REDACTED:pw]\"}"));
}

static void test_redaction_truncated_tail(void **state)
{
	struct fixture *f = *state;

	rec_begin(&f->s, REC_EXEC, T_NS, "r", 0);
	rec_strn(&f->s, "t", "...hun", 6, true);
	rec_strn(&f->s, "u", "...hun", 6, false);
	rec_open(&f->s, "argv", '[');
	rec_item(&f->s, "x=hunte", 7, true);
	rec_item(&f->s, "x=hu", 4, true); /* shorter than 3 bytes: left alone */
	rec_close(&f->s, ']');
	assert_int_equal(rec_end(&f->s), 0);
	assert_string_equal(f->c.last, "{\"kind\":\"exec\",\"time\":\"" T_TEXT "\",\"run\":\"r\","
				       "\"t\":\"...[REDACTED:pw]\",\"u\":\"...hun\","
				       "\"argv\":[\"x=[REDACTED:pw]\",\"x=hu\"]}\n");
}

/* Redaction happens on the raw bytes, before escaping. */
static void test_redaction_before_escaping(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(redact_add_secret(&f->r, "q", "a\"b\\c\n\xff"), 0);
	rec_begin(&f->s, REC_EXEC, T_NS, "r", 0);
	rec_str(&f->s, "v", "<a\"b\\c\n\xff>");
	assert_int_equal(rec_end(&f->s), 0);
	assert_string_equal(f->c.last, "{\"kind\":\"exec\",\"time\":\"" T_TEXT "\",\"run\":\"r\","
				       "\"v\":\"<[REDACTED:q]>\"}\n");
}

static void test_no_redactor(void **state)
{
	struct stream s;
	struct capture c = {0};

	(void)state;
	stream_init(&s, NULL);
	stream_add_sink(&s, capture_sink(&c, "c"));
	rec_begin(&s, REC_EXEC, T_NS, "r", 0);
	rec_str(&s, "v", "hunter2");
	assert_int_equal(rec_end(&s), 0);
	assert_non_null(strstr(c.last, "\"v\":\"hunter2\""));
	stream_free(&s);
	free(c.lines);
}

static void test_multiple_sinks(void **state)
{
	struct order order = {0};
	struct capture a = {.id = 'a', .order = &order};
	struct capture b = {.id = 'b', .order = &order};
	struct capture c = {.id = 'c', .order = &order};
	struct stream s;

	(void)state;
	stream_init(&s, NULL);
	stream_add_sink(&s, capture_sink(&a, "a"));
	stream_add_sink(&s, capture_sink(&b, "b"));
	stream_add_sink(&s, capture_sink(&c, "c"));
	for (int i = 0; i < 3; i++) {
		rec_begin(&s, REC_OPEN, T_NS, "r", i);
		rec_int(&s, "i", i);
		assert_int_equal(rec_end(&s), 0);
	}
	assert_string_equal(order.log, "abcabcabc");
	assert_int_equal(a.calls, 3);
	assert_int_equal(b.calls, 3);
	assert_int_equal(c.calls, 3);
	assert_string_equal(a.lines, b.lines);
	assert_string_equal(a.lines, c.lines);
	assert_string_equal(a.lines,
			    "{\"kind\":\"open\",\"time\":\"" T_TEXT "\",\"run\":\"r\",\"i\":0}\n"
			    "{\"kind\":\"open\",\"time\":\"" T_TEXT "\",\"run\":\"r\",\"i\":1}\n"
			    "{\"kind\":\"open\",\"time\":\"" T_TEXT "\",\"run\":\"r\",\"i\":2}\n");
	assert_int_equal(c.last_step, 2);
	assert_int_equal(s.failed, 0);
	assert_null(s.failed_sink);
	stream_free(&s);
	free(a.lines);
	free(b.lines);
	free(c.lines);
}

static void test_sink_failure_sticks(void **state)
{
	struct order order = {0};
	struct capture a = {.id = 'a', .order = &order};
	struct capture b = {.id = 'b', .order = &order, .fail_on = 2, .fail_errno = ENOSPC};
	struct capture c = {.id = 'c', .order = &order};
	struct stream s;

	(void)state;
	stream_init(&s, NULL);
	stream_add_sink(&s, capture_sink(&a, "first"));
	stream_add_sink(&s, capture_sink(&b, "disk"));
	stream_add_sink(&s, capture_sink(&c, "last"));

	rec_begin(&s, REC_STEP_START, T_NS, "r", 0);
	assert_int_equal(rec_end(&s), 0);
	assert_string_equal(order.log, "abc");
	assert_int_equal(s.failed, 0);

	rec_begin(&s, REC_EXEC, T_NS, "r", 0);
	errno = 0;
	assert_int_equal(rec_end(&s), -1);
	assert_int_equal(s.failed, ENOSPC);
	assert_non_null(s.failed_sink);
	assert_string_equal(s.failed_sink, "disk");
	assert_string_equal(order.log, "abcab"); /* c was not called */

	for (int i = 0; i < 3; i++) {
		rec_begin(&s, REC_EXIT, T_NS, "r", 0);
		rec_int(&s, "status", 0);
		assert_int_equal(rec_end(&s), -1);
	}
	assert_int_equal(s.failed, ENOSPC);
	assert_string_equal(s.failed_sink, "disk");
	/* No sink is called after the failure, not even the ones before it. */
	assert_string_equal(order.log, "abcab");
	assert_int_equal(a.calls, 2);
	assert_int_equal(b.calls, 2);
	assert_int_equal(c.calls, 1);
	stream_free(&s);
	free(a.lines);
	free(b.lines);
	free(c.lines);
}

static int fail_no_errno(void *ctx, const struct rec_view *v)
{
	(void)ctx;
	(void)v;
	errno = 0;
	return -1;
}

static void test_sink_failure_without_errno(void **state)
{
	struct stream s;

	(void)state;
	stream_init(&s, NULL);
	stream_add_sink(&s, (struct sink){.write = fail_no_errno, .name = "quiet"});
	rec_begin(&s, REC_EXEC, T_NS, "r", 0);
	assert_int_equal(rec_end(&s), -1);
	assert_int_not_equal(s.failed, 0); /* still recorded as failed */
	assert_string_equal(s.failed_sink, "quiet");
	rec_begin(&s, REC_EXEC, T_NS, "r", 0);
	assert_int_equal(rec_end(&s), -1);
	stream_free(&s);
}

static void test_counts(void **state)
{
	struct fixture *f = *state;
	static const enum rec_kind seq[] = {REC_RUN_START, REC_STEP_START, REC_EXEC,
					    REC_EXEC,	   REC_FORK,	   REC_EXEC,
					    REC_OPEN,	   REC_STEP_END,   REC_RUN_END};
	uint64_t want[REC_KIND_MAX] = {0};

	for (int k = 0; k < REC_KIND_MAX; k++)
		assert_int_equal(f->s.count[k], 0);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		rec_begin(&f->s, seq[i], T_NS, "r", 0);
		assert_int_equal(rec_end(&f->s), 0);
		want[seq[i]]++;
		for (int k = 0; k < REC_KIND_MAX; k++)
			assert_int_equal(f->s.count[k], want[k]);
	}
	assert_int_equal(f->s.count[REC_EXEC], 3);
	assert_int_equal(f->s.count[REC_LOSS], 0);
}

static void test_sink_fd_pipe(void **state)
{
	struct fixture *f = *state;
	int fds[2];
	char got[256];
	ssize_t n;
	const char *want =
	    "{\"kind\":\"loss\",\"time\":\"" T_TEXT "\",\"run\":\"r\",\"lost\":12}\n";

	assert_int_equal(pipe(fds), 0);
	stream_add_sink(&f->s, (struct sink){.write = sink_fd_write, .ctx = &fds[1], .name = "fd"});
	rec_begin(&f->s, REC_LOSS, T_NS, "r", -1);
	rec_int(&f->s, "lost", 12);
	assert_int_equal(rec_end(&f->s), 0);
	close(fds[1]);
	n = read(fds[0], got, sizeof(got) - 1);
	assert_int_equal(n, strlen(want));
	got[n] = '\0';
	assert_string_equal(got, want);
	assert_int_equal(read(fds[0], got, sizeof(got)), 0); /* exactly the line, nothing more */
	close(fds[0]);
}

static void test_sink_fd_large(void **state)
{
	struct fixture *f = *state;
	const size_t vn = 300 * 1024;
	char *v = malloc(vn), *got = malloc(vn + 256);
	int fd = memfd_create("rec", 0);
	size_t off = 0;
	ssize_t n;

	assert_non_null(v);
	assert_non_null(got);
	assert_true(fd >= 0);
	memset(v, 'z', vn);
	stream_add_sink(&f->s, (struct sink){.write = sink_fd_write, .ctx = &fd, .name = "fd"});
	rec_begin(&f->s, REC_EXEC, T_NS, "r", 0);
	rec_strn(&f->s, "v", v, vn, false);
	assert_int_equal(rec_end(&f->s), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	while ((n = read(fd, got + off, vn + 256 - off)) > 0)
		off += (size_t)n;
	assert_int_equal(off, f->s.buf.len);
	assert_memory_equal(got, f->s.buf.p, off);
	assert_int_equal(got[off - 1], '\n');
	close(fd);
	free(v);
	free(got);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	static const struct itimerval off;
	int saved = errno;

	(void)sig;
	/* Bounded, so a slow run (valgrind) cannot be interrupted forever. */
	if (++alarms >= 20)
		setitimer(ITIMER_REAL, &off, NULL);
	errno = saved;
}

/* Short and interrupted writes: a slow reader on a pipe and a timer signal without
 * SA_RESTART make write() return early; the whole line must still arrive exactly once. */
static void test_sink_fd_partial_writes(void **state)
{
	const size_t len = 1 << 20;
	struct rec_view v = {.kind = REC_EXEC, .step = 0};
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	struct itimerval it = {.it_interval = {0, 1000}, .it_value = {0, 1000}}, off = {0};
	char *line = malloc(len), *got = malloc(len + 1);
	int fds[2], out = memfd_create("out", 0), status;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	(void)state;
	assert_non_null(line);
	assert_non_null(got);
	assert_true(out >= 0);
	for (size_t i = 0; i < len - 1; i++)
		line[i] = (char)('a' + i % 26);
	line[len - 1] = '\n';
	v.line = line;
	v.len = len;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char b[4096];

		close(fds[1]);
		while ((r = read(fds[0], b, sizeof(b))) > 0) {
			if (write(out, b, (size_t)r) != r)
				_exit(1);
			usleep(50);
		}
		free(line); /* so valgrind's leak check passes in the child too */
		free(got);
		_exit(r < 0);
	}
	close(fds[0]);
	alarms = 0;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_int_equal(sink_fd_write(&fds[1], &v), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	close(fds[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(alarms > 0);
	assert_int_equal(lseek(out, 0, SEEK_SET), 0);
	while (n <= len && (r = read(out, got + n, len + 1 - n)) > 0)
		n += (size_t)r;
	assert_int_equal(n, len);
	assert_memory_equal(got, line, len);
	close(out);
	free(line);
	free(got);
}

static void test_sink_fd_errors(void **state)
{
	static const char line[] = "{\"kind\":\"exec\"}\n";
	struct rec_view v = {.kind = REC_EXEC, .step = 0, .line = line, .len = sizeof(line) - 1};
	int fds[2], rd;

	(void)state;
	/* A closed descriptor. */
	assert_int_equal(pipe(fds), 0);
	close(fds[0]);
	close(fds[1]);
	errno = 0;
	assert_int_equal(sink_fd_write(&fds[1], &v), -1);
	assert_int_equal(errno, EBADF);

	/* A descriptor open only for reading. */
	rd = open("/dev/null", O_RDONLY);
	assert_true(rd >= 0);
	errno = 0;
	assert_int_equal(sink_fd_write(&rd, &v), -1);
	assert_int_equal(errno, EBADF);
	close(rd);
}

static void test_sink_fd_failure_stops_stream(void **state)
{
	struct fixture *f = *state;
	int rd = open("/dev/null", O_RDONLY);
	struct capture after = {0};

	assert_true(rd >= 0);
	stream_add_sink(&f->s, (struct sink){.write = sink_fd_write, .ctx = &rd, .name = "ro"});
	stream_add_sink(&f->s, capture_sink(&after, "after"));
	rec_begin(&f->s, REC_EXEC, T_NS, "r", 0);
	assert_int_equal(rec_end(&f->s), -1);
	assert_int_equal(f->s.failed, EBADF);
	assert_string_equal(f->s.failed_sink, "ro");
	assert_int_equal(f->c.calls, 1); /* the fixture's sink comes first */
	assert_int_equal(after.calls, 0);
	close(rd);
	free(after.lines);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_begin_fields),
	    T(test_time_format),
	    T(test_every_kind_name),
	    T(test_scalars),
	    T(test_nested),
	    cmocka_unit_test(test_validator_rejects),
	    T(test_buffer_reset_between_records),
	    T(test_redaction),
	    T(test_redaction_keys_not_redacted),
	    T(test_redaction_truncated_tail),
	    T(test_redaction_before_escaping),
	    cmocka_unit_test(test_no_redactor),
	    cmocka_unit_test(test_multiple_sinks),
	    cmocka_unit_test(test_sink_failure_sticks),
	    cmocka_unit_test(test_sink_failure_without_errno),
	    T(test_counts),
	    T(test_sink_fd_pipe),
	    T(test_sink_fd_large),
	    cmocka_unit_test(test_sink_fd_partial_writes),
	    cmocka_unit_test(test_sink_fd_errors),
	    T(test_sink_fd_failure_stops_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
