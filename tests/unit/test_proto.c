/* Unit tests for user/daemon/proto.c (the socket protocol) and user/daemon/config.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/proto.h"

static struct proto_msg m;
static char err[PROTO_ERRLEN];

static int parse(const char *s)
{
	return proto_parse(s, strlen(s), &m, err, sizeof(err));
}

/* Parses s as a request; returns the error code, or NULL when it is a good request. */
static const char *request(const char *s, struct proto_req *r)
{
	const char *code = NULL;

	if (parse(s) < 0)
		return "bad_json";
	return proto_request(&m, r, &code, err, sizeof(err)) < 0 ? code : NULL;
}

static void test_frame(void **state)
{
	unsigned char b[8] = {0, 0, 0, 2, '{', '}', 'x', 'y'};
	unsigned char big[4] = {0, 0, 0x40, 0x01}; /* 16385 */
	unsigned char zero[4] = {0};

	(void)state;
	assert_int_equal(proto_frame(b, 3), 0);
	assert_int_equal(proto_frame(b, 5), 0); /* half a message: wait for more */
	assert_int_equal(proto_frame(b, 6), 6);
	assert_int_equal(proto_frame(b, 8), 6);
	assert_int_equal(proto_frame(big, 4), -1);
	assert_int_equal(proto_frame(zero, 4), -1);
}

static void test_hello(void **state)
{
	struct proto_req r;

	(void)state;
	assert_null(request("{\"v\":1,\"op\":\"hello\",\"id\":7,\"client\":\"t\"}", &r));
	assert_int_equal(r.op, OP_HELLO);
	assert_int_equal(r.id, 7);
	assert_string_equal(r.client, "t");
}

/* The ops runseal run and the log's readers use. */
static void test_record_read_stats_fields(void **state)
{
	struct proto_req r;

	(void)state;
	assert_null(request("{\"v\":1,\"op\":\"begin\",\"runbook\":\"x\",\"records\":true}", &r));
	assert_true(r.records);
	assert_null(request("{\"v\":1,\"op\":\"record\",\"run\":\"r1\",\"data\":\"{\\\"k\\\":1}\","
			    "\"more\":true}",
			    &r));
	assert_int_equal(r.op, OP_RECORD);
	assert_string_equal(r.data, "{\"k\":1}");
	assert_int_equal(r.ndata, 7);
	assert_true(r.more);
	assert_string_equal(request("{\"v\":1,\"op\":\"record\",\"run\":\"r1\"}", &r),
			    "bad_request");
	assert_string_equal(err, "field \"data\" is required");
	assert_string_equal(request("{\"v\":1,\"op\":\"stats\"}", &r), "bad_request");
	assert_string_equal(err, "field \"run\" is required");
	assert_null(request("{\"v\":1,\"op\":\"read\",\"command\":\"show\",\"log\":\"/l\","
			    "\"runs\":[\"a\",\"b\"]}",
			    &r));
	assert_int_equal(r.op, OP_READ);
	assert_string_equal(r.command, "show");
	assert_string_equal(r.log, "/l");
	assert_int_equal(r.runs->count, 2);
	assert_string_equal(request("{\"v\":1,\"op\":\"read\"}", &r), "bad_request");
	assert_string_equal(err, "field \"command\" is required");
	assert_string_equal(
	    request("{\"v\":1,\"op\":\"read\",\"command\":\"show\",\"runs\":[1]}", &r),
	    "bad_request");
	assert_string_equal(err, "field \"runs\" must hold strings only");
}

static void test_begin_fields(void **state)
{
	struct proto_req r;
	const struct proto_item *it;

	(void)state;
	assert_null(request(" { \"v\" : 1 , \"op\":\"begin\",\"runbook\":\"deploy\","
			    "\"trigger\":{\"tool\":\"ansible\",\"play\":\"web\"},"
			    "\"detached\":true}\n",
			    &r));
	assert_int_equal(r.op, OP_BEGIN);
	assert_string_equal(r.runbook, "deploy");
	assert_true(r.detached);
	assert_non_null(r.trigger);
	assert_int_equal(r.trigger->count, 2);
	it = &m.items[r.trigger->first + 1];
	assert_string_equal(it->key, "play");
	assert_string_equal(it->v.s, "web");
}

static void test_step_argv(void **state)
{
	struct proto_req r;

	(void)state;
	assert_null(request("{\"v\":1,\"op\":\"step\",\"run\":\"R\",\"name\":\"s\","
			    "\"argv\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\\n\"]}",
			    &r));
	assert_int_equal(r.argv->count, 3);
	assert_string_equal(m.items[r.argv->first + 2].v.s, "echo \"hi\"\n");
	assert_false(r.argv_truncated);
	assert_null(request("{\"v\":1,\"op\":\"step\",\"run\":\"R\",\"name\":\"s\","
			    "\"argv\":[],\"argv_truncated\":true}",
			    &r));
	assert_true(r.argv_truncated);
	assert_string_equal(request("{\"v\":1,\"op\":\"step\",\"run\":\"R\",\"name\":\"s\","
				    "\"argv_truncated\":1}",
				    &r),
			    "bad_request");
}

static void test_required_and_types(void **state)
{
	struct proto_req r;

	(void)state;
	assert_string_equal(request("{\"v\":1,\"op\":\"begin\"}", &r), "bad_request");
	assert_string_equal(err, "field \"runbook\" is required");
	assert_string_equal(request("{\"v\":1,\"op\":\"begin\",\"runbook\":5}", &r), "bad_request");
	assert_string_equal(err, "field \"runbook\" must be a string");
	assert_string_equal(request("{\"v\":1,\"op\":\"attach\",\"run\":\"R\"}", &r),
			    "bad_request");
	assert_string_equal(err, "field \"step\" is required");
	assert_string_equal(request("{\"v\":1,\"op\":\"attach\",\"run\":\"R\",\"step\":0}", &r),
			    "bad_request");
	assert_string_equal(request("{\"v\":1,\"op\":\"step\",\"run\":\"R\",\"name\":\"\"}", &r),
			    "bad_request");
	assert_string_equal(request("{\"v\":1,\"op\":\"step\",\"run\":\"R\",\"name\":\"n\","
				    "\"argv\":[\"a\",1]}",
				    &r),
			    "bad_request");
	assert_string_equal(err, "field \"argv\" must hold strings only");
}

static void test_version_and_op(void **state)
{
	struct proto_req r;

	(void)state;
	assert_string_equal(request("{\"v\":2,\"op\":\"hello\"}", &r), "bad_version");
	assert_string_equal(request("{\"op\":\"hello\"}", &r), "bad_request");
	assert_string_equal(request("{\"v\":1,\"op\":\"rm -rf\"}", &r), "unknown_op");
	assert_string_equal(request("{\"v\":1,\"op\":3}", &r), "bad_request");
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{",
	    "{\"v\":1,}",
	    "{\"v\":1}x",
	    "{\"v\":1.5}",
	    "{\"v\":01}",
	    "{\"v\":99999999999999999999}",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\\ud800\"}",
	    "{\"a\":\"\\q\"}",
	    "{\"a\":\"\x01\"}",
	    "{\"a\":\"\xc3\"}",
	    "{\"a\":[[\"deep\"]]}",
	    "{\"a\":{\"b\":{}}}",
	    "{\"v\":1,\"v\":2}",
	    "{\"a\":tru}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i]), -1);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(parse("{\"v\":1,\"v\":2}"), -1);
	assert_string_equal(err, "field \"v\" given twice");
}

static void test_bounds(void **state)
{
	char buf[PROTO_FRAME_MAX + 64];
	size_t n = 0;

	(void)state;
	n += (size_t)sprintf(buf, "{");
	for (int i = 0; i < PROTO_FIELDS_MAX + 1; i++)
		n += (size_t)sprintf(buf + n, "%s\"k%d\":1", i ? "," : "", i);
	sprintf(buf + n, "}");
	assert_int_equal(parse(buf), -1);
	assert_non_null(strstr(err, "too many fields"));
	n = (size_t)sprintf(buf, "{\"a\":[");
	for (int i = 0; i < PROTO_ITEMS_MAX + 1; i++)
		n += (size_t)sprintf(buf + n, "%s\"x\"", i ? "," : "");
	sprintf(buf + n, "]}");
	assert_int_equal(parse(buf), -1);
	assert_non_null(strstr(err, "too many items"));
	memset(buf, ' ', sizeof(buf));
	assert_int_equal(proto_parse(buf, PROTO_FRAME_MAX + 1, &m, err, sizeof(err)), -1);
}

/* Bytes of invalid UTF-8 travel as \udc80-\udcff (json.c) and come back as themselves. */
static void test_surrogateescape_round_trip(void **state)
{
	struct jbuf b = {0};
	const char raw[] = "a\xff\xc3(z\xc3\xa9";
	size_t s;

	(void)state;
	s = pe_begin(&b);
	pe_str(&b, "op", "hello");
	pe_str(&b, "name", raw);
	assert_int_equal(pe_end(&b, s), 0);
	assert_int_equal(proto_frame((unsigned char *)b.p, b.len), (long)b.len);
	assert_int_equal(proto_parse(b.p + 4, b.len - 4, &m, err, sizeof(err)), 0);
	assert_string_equal(proto_get(&m, "name")->s, raw);
	assert_int_equal(proto_get(&m, "v")->i, PROTO_VERSION);
	jb_free(&b);
}

static void test_encode_limits(void **state)
{
	struct jbuf b = {0};
	char *big = malloc(PROTO_FRAME_MAX + 1);
	size_t s;

	(void)state;
	memset(big, 'x', PROTO_FRAME_MAX);
	big[PROTO_FRAME_MAX] = '\0';
	s = pe_begin(&b);
	pe_str(&b, "x", big);
	assert_int_equal(pe_end(&b, s), -1);
	assert_int_equal(b.len, 0); /* nothing half-made is left to send */
	assert_int_equal(pe_error(&b, 3, "denied", "no"), 0);
	assert_int_equal(proto_parse(b.p + 4, b.len - 4, &m, err, sizeof(err)), 0);
	assert_false(proto_get(&m, "ok")->b);
	assert_string_equal(proto_get(&m, "error")->s, "denied");
	assert_int_equal(proto_get(&m, "id")->i, 3);
	free(big);
	jb_free(&b);
}

static void test_config(void **state)
{
	struct daemon_conf c, fl;
	char e[512], path[] = "/tmp/test_proto_conf.XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "# runseal.conf\n"
			    "group = ops\n"
			    "socket_mode = 0600   # owner only\n"
			    "log_dir=/srv/log\n"
			    "replica = /mnt/a\n"
			    "\n"
			    "client_timeout = 5\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	conf_defaults(&c);
	assert_int_equal(conf_load(&c, path, false, e, sizeof(e)), 0);
	assert_string_equal(c.group, "ops");
	assert_int_equal(c.socket_mode, 0600);
	assert_string_equal(c.log_dir, "/srv/log");
	assert_int_equal(c.nreplicas, 1);
	assert_string_equal(c.socket, CONF_SOCKET_DEFAULT);
	/* Flags win, also over a file read later. */
	conf_defaults(&fl);
	assert_int_equal(conf_set(&fl, "group", "wheel", e, sizeof(e)), 0);
	assert_int_equal(conf_set(&fl, "client-timeout", "2", e, sizeof(e)), 0);
	conf_merge(&c, &fl);
	assert_string_equal(c.group, "wheel");
	assert_int_equal(c.client_timeout_s, 2);
	assert_string_equal(c.log_dir, "/srv/log");
	assert_int_equal(conf_set(&fl, "colour", "red", e, sizeof(e)), -1);
	assert_string_equal(e, "unknown option \"colour\"");
	assert_int_equal(conf_set(&fl, "socket_mode", "0777", e, sizeof(e)), -1);
	assert_int_equal(conf_set(&fl, "log_dir", "relative", e, sizeof(e)), -1);
	assert_int_equal(conf_set(&fl, "ringbuf_size", "5000", e, sizeof(e)), -1);
	/* A bad line names the file and line. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "group = x\nnonsense\n", 19), 19);
	close(fd);
	assert_int_equal(conf_load(&c, path, false, e, sizeof(e)), -1);
	assert_non_null(strstr(e, ":2: expected \"key = value\""));
	unlink(path);
	assert_int_equal(conf_load(&c, path, true, e, sizeof(e)), 0);
	assert_int_equal(conf_load(&c, path, false, e, sizeof(e)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame),
	    cmocka_unit_test(test_hello),
	    cmocka_unit_test(test_begin_fields),
	    cmocka_unit_test(test_record_read_stats_fields),
	    cmocka_unit_test(test_step_argv),
	    cmocka_unit_test(test_required_and_types),
	    cmocka_unit_test(test_version_and_op),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_surrogateescape_round_trip),
	    cmocka_unit_test(test_encode_limits),
	    cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
