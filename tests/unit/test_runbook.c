/* Unit tests for user/runbook.c: loading and validation, binding, template expansion.
 *
 * Fixtures are written to a private mkdtemp directory that the group teardown removes. The shell
 * expansion tests run the expanded command with /bin/sh to prove that hostile values reach the
 * command as one argument and never run.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runbook.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		if (!strstr((hay), (needle))) {                                                    \
			print_error("\"%s\"\n  does not contain \"%s\"\n", (hay), (needle));       \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

#define assert_not_contains(hay, needle)                                                           \
	do {                                                                                       \
		if (strstr((hay), (needle))) {                                                     \
			print_error("\"%s\"\n  contains \"%s\"\n", (hay), (needle));               \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_runbook.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Returns a malloc'd path of a new file under tmpdir holding data. */
static char *write_fixture(const char *name, const char *data, size_t len)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* ---- a complete valid runbook ---- */

static const char full_yaml[] =
    "# demo runbook\n"						      /* 1 */
    "name: restart-service\n"					      /* 2 */
    "description: Restart the demo web service\n"		      /* 3 */
    "timeout: 600\n"						      /* 4 */
    "params:\n"							      /* 5 */
    "  service: {default: demo-web}\n"				      /* 6 */
    "  token:   {required: true, secret: true}\n"		      /* 7 */
    "  count:   {type: int, default: 3, description: \"how many\"}\n" /* 8 */
    "  mode:    {type: enum, values: [fast, slow], default: fast}\n"  /* 9 */
    "  host:    {type: string, pattern: \"[a-z0-9.-]+\"}\n"	      /* 10 */
    "  verbose: {type: bool, default: \"YES\"}\n"		      /* 11 */
    "  conf:    {type: path, default: /etc/demo.conf}\n"	      /* 12 */
    "  pin:     {type: int, secret: true}\n"			      /* 13 */
    "  key:     {secret: true, pattern: \"[a-f0-9]+\"}\n"	      /* 14 */
    "  either:  {pattern: \"a|b\"}\n"				      /* 15 */
    "  empty:   {}\n"						      /* 16 */
    "  nothing:\n"						      /* 17 */
    "steps:\n"							      /* 18 */
    "  - name: stop\n"						      /* 19 */
    "    description: Stop it\n"				      /* 20 */
    "    run: scripts/demo-service stop {{service}}\n"		      /* 21 */
    "    timeout: 30\n"						      /* 22 */
    "    retries: 2\n"						      /* 23 */
    "    retry_delay: 1.5\n"					      /* 24 */
    "    on_failure: rollback\n"				      /* 25 */
    "  - name: start\n"						      /* 26 */
    "    argv: [scripts/demo-service, start, \"{{ service }}\", \"--count={{count}}\"]\n"
    "    cwd: \"{{runbook_dir}}\"\n" /* 28 */
    "    env: {API_TOKEN: \"{{token}}\", MODE: \"{{mode}}\", EMPTY: }\n"
    "    run_as: nobody\n"				       /* 30 */
    "    on_failure: continue\n"			       /* 31 */
    "rollback:\n"					       /* 32 */
    "  - name: restore\n"				       /* 33 */
    "    run: echo \"restoring {{service}} for {{run_id}}\"\n" /* 34 */
    "    retry_delay: 0\n"				       /* 35 */
    "    on_failure: continue\n";			       /* 36 */

struct full {
	char *path;
	struct runbook rb;
};

static int full_setup(void **state)
{
	struct full *f = calloc(1, sizeof(*f));
	char err[RB_ERRLEN] = "";

	if (!f)
		return -1;
	f->path = write_fixture("full.yaml", full_yaml, sizeof(full_yaml) - 1);
	if (runbook_load(f->path, &f->rb, err, sizeof(err))) {
		print_error("load: %s\n", err);
		free(f->path);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int full_teardown(void **state)
{
	struct full *f = *state;

	runbook_free(&f->rb);
	free(f->path);
	free(f);
	return 0;
}

static const struct rb_param *param(const struct runbook *rb, const char *name)
{
	for (size_t i = 0; i < rb->nparams; i++)
		if (!strcmp(rb->params[i].name, name))
			return &rb->params[i];
	fail_msg("no param %s", name);
	return NULL;
}

static void test_full_params(void **state)
{
	const struct runbook *rb = &((struct full *)*state)->rb;
	const struct rb_param *p;

	assert_string_equal(rb->name, "restart-service");
	assert_string_equal(rb->description, "Restart the demo web service");
	assert_int_equal(rb->nparams, 12);
	assert_string_equal(rb->params[0].name, "service");
	p = param(rb, "service");
	assert_int_equal(p->type, RB_STRING);
	assert_string_equal(p->def, "demo-web");
	assert_false(p->required);
	assert_int_equal(p->line, 6);
	p = param(rb, "token");
	assert_true(p->required);
	assert_true(p->secret);
	assert_null(p->def);
	p = param(rb, "count");
	assert_int_equal(p->type, RB_INT);
	assert_string_equal(p->def, "3");
	assert_string_equal(p->description, "how many");
	p = param(rb, "mode");
	assert_int_equal(p->type, RB_ENUM);
	assert_int_equal(p->nvalues, 2);
	assert_string_equal(p->values[0], "fast");
	assert_string_equal(p->values[1], "slow");
	assert_string_equal(p->def, "fast");
	p = param(rb, "host");
	assert_string_equal(p->pattern, "[a-z0-9.-]+");
	assert_null(p->def);
	assert_string_equal(param(rb, "verbose")->def, "true");
	assert_int_equal(param(rb, "conf")->type, RB_PATH);
	assert_null(param(rb, "empty")->def);
	assert_null(param(rb, "nothing")->def);
	assert_int_equal(param(rb, "nothing")->line, 17);
}

static void test_full_steps(void **state)
{
	const struct runbook *rb = &((struct full *)*state)->rb;
	const struct rb_step *s = &rb->steps[0];

	assert_int_equal(rb->nsteps, 2);
	assert_string_equal(s->name, "stop");
	assert_string_equal(s->description, "Stop it");
	assert_string_equal(s->run, "scripts/demo-service stop {{service}}");
	assert_null(s->argv);
	assert_true(s->timeout == 30.0);
	assert_int_equal(s->retries, 2);
	assert_true(s->retry_delay == 1.5);
	assert_int_equal(s->on_failure, RB_ROLLBACK);
	assert_int_equal(s->line, 19);

	s = &rb->steps[1];
	assert_string_equal(s->name, "start");
	assert_null(s->run);
	assert_int_equal(s->argc, 4);
	assert_string_equal(s->argv[0], "scripts/demo-service");
	assert_string_equal(s->argv[2], "{{ service }}");
	assert_string_equal(s->argv[3], "--count={{count}}");
	assert_string_equal(s->cwd, "{{runbook_dir}}");
	assert_int_equal(s->nenv, 3);
	assert_string_equal(s->env[0].key, "API_TOKEN");
	assert_string_equal(s->env[0].value, "{{token}}");
	assert_string_equal(s->env[1].key, "MODE");
	assert_string_equal(s->env[2].key, "EMPTY");
	assert_string_equal(s->env[2].value, "");
	assert_string_equal(s->run_as, "nobody");
	assert_true(s->timeout == 600.0); /* runbook default */
	assert_int_equal(s->retries, 0);
	assert_true(s->retry_delay == 1.0);
	assert_int_equal(s->on_failure, RB_CONTINUE);
	assert_int_equal(s->line, 26);
}

static void test_full_rollback_identity(void **state)
{
	struct full *f = *state;
	const struct runbook *rb = &f->rb;
	char cmd[256], hex[65], line[256];
	char *dir = realpath(tmpdir, NULL);
	FILE *p;

	assert_int_equal(rb->nrollback, 1);
	assert_string_equal(rb->rollback[0].name, "restore");
	assert_true(rb->rollback[0].retry_delay == 0.0);
	assert_int_equal(rb->rollback[0].on_failure, RB_CONTINUE);
	assert_int_equal(rb->rollback[0].line, 33);
	assert_string_equal(rb->path, f->path);
	assert_non_null(dir);
	assert_string_equal(rb->dir, dir);
	free(dir);

	/* The digest is checked against an independent implementation. */
	snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -r '%s'", f->path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", rb->sha256[i]);
	assert_int_equal(strncmp(line, hex, 64), 0);
}

/* ---- validation errors: one test per case ---- */

struct ecase {
	const char *name;
	const char *yaml;
	int line;
	const char *want;
};

#define STEP1 "steps:\n  - name: s\n    run: x\n"
/* A runbook whose step option is on line 5. */
#define OPT(o) "name: a\nsteps:\n  - name: s\n    run: x\n    " o "\n"
/* A runbook whose param spec is on line 3. */
#define PARAM(p) "name: a\nparams:\n  " p "\n" STEP1
/* A runbook with params service and token whose step command is on line 7. */
#define CMD(c) "name: a\nparams:\n  service: {}\n  token: {}\nsteps:\n  - name: s\n    " c "\n"

static const struct ecase ecases[] = {
    {"yaml_tab", "name: a\nsteps:\n\t- name: s\n", 3, "invalid YAML"},
    {"yaml_unclosed_flow", "name: a\nsteps: [\n  {name: s, run: x}\n", 4, "invalid YAML"},
    {"yaml_bad_utf8", "name: a\xff\n" STEP1, 1, "invalid YAML"},
    {"multiple_documents", "name: a\n" STEP1 "---\nname: b\n", 5, "one YAML document"},
    {"empty_file", "", 1, "empty runbook"},
    {"only_comment", "# nothing\n", 1, "empty runbook"},
    {"top_list", "- a\n- b\n", 1, "top level must be a mapping"},
    {"top_scalar", "\n\njust text\n", 3, "top level must be a mapping"},
    {"unknown_top_key", "name: a\ntiemout: 3\n" STEP1, 2, "unknown key \"tiemout\""},
    {"unknown_step_key",
     "name: a\nsteps:\n  - name: stop\n    run: x\n\n  - name: start\n    tiemout: 3\n"
     "    run: y\n",
     7, "step \"start\": unknown key \"tiemout\""},
    {"unknown_param_key", PARAM("svc: {defualt: x}"), 3, "param \"svc\": unknown key \"defualt\""},
    {"unknown_key_escaped", "name: a\n\"bad\\x1b[31m\": 1\n" STEP1, 2,
     "unknown key \"bad\\x1b[31m\""},
    {"missing_name", STEP1, 1, "missing \"name\""},
    {"missing_steps", "name: a\ndescription: d\n", 1, "missing \"steps\""},
    {"empty_steps", "name: a\nsteps: []\n", 2, "\"steps\" must not be empty"},
    {"null_steps", "name: a\nsteps:\n", 2, "\"steps\" must be a list"},
    {"steps_mapping", "name: a\nsteps: {x: 1}\n", 2, "\"steps\" must be a list"},
    {"step_scalar", "name: a\nsteps:\n  - echo hi\n", 3, "steps[0] must be a mapping"},
    {"step_no_name", "name: a\nsteps:\n  - name: s\n    run: x\n  - run: y\n", 5,
     "steps[1]: missing \"name\""},
    {"step_no_command", "name: a\nsteps:\n  - name: s\n    cwd: /\n", 3,
     "step \"s\": needs \"run\" or \"argv\""},
    {"step_run_and_argv", OPT("argv: [x]"), 5, "step \"s\": has both \"run\" and \"argv\""},
    {"step_run_empty", "name: a\nsteps:\n  - name: s\n    run: \"  \"\n", 4, "\"run\" is empty"},
    {"argv_empty", "name: a\nsteps:\n  - name: s\n    argv: []\n", 4,
     "\"argv\" must be a non-empty"},
    {"argv_empty_program", "name: a\nsteps:\n  - name: s\n    argv: [\"\", x]\n", 4,
     "empty program name"},
    {"argv_nested", "name: a\nsteps:\n  - name: s\n    argv: [x, [y]]\n", 4,
     "\"argv\" must be a scalar"},
    {"dup_step",
     "name: a\nsteps:\n  - name: s\n    run: x\n  - name: t\n    run: y\n"
     "  - name: s\n    run: z\n",
     7, "step \"s\": duplicate step name (first defined at line 3)"},
    {"dup_step_rollback", "name: a\n" STEP1 "rollback:\n  - name: s\n    run: y\n", 6,
     "step \"s\": duplicate step name (first defined at line 3)"},
    {"step_name_chars", "name: a\nsteps:\n  - name: a b\n    run: x\n", 3,
     "step \"a b\": invalid name"},
    {"step_name_long",
     "name: a\nsteps:\n  - name: "
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n    run: x\n",
     3, "invalid name"},
    {"runbook_name_chars", "name: a/b\n" STEP1, 1, "invalid runbook name \"a/b\""},
    {"timeout_text", OPT("timeout: abc"), 5, "\"timeout\" must be a number"},
    {"timeout_negative", OPT("timeout: -1"), 5, "\"timeout\" must be a number"},
    {"timeout_zero", OPT("timeout: 0"), 5, "\"timeout\" must be a number of seconds > 0"},
    {"timeout_inf", OPT("timeout: .inf"), 5, "\"timeout\""},
    {"timeout_inf_word", OPT("timeout: inf"), 5, "\"timeout\""},
    {"timeout_nan", OPT("timeout: nan"), 5, "\"timeout\""},
    {"timeout_overflow", OPT("timeout: 1e999"), 5, "\"timeout\""},
    {"timeout_hex", OPT("timeout: 0x10"), 5, "\"timeout\""},
    {"timeout_null", OPT("timeout:"), 5, "\"timeout\""},
    {"timeout_list", OPT("timeout: [1]"), 5, "\"timeout\" must be a scalar"},
    {"top_timeout_negative", "name: a\ntimeout: -5\n" STEP1, 2, "\"timeout\" must be a number"},
    {"retries_negative", OPT("retries: -1"), 5, "\"retries\" must be an integer >= 0"},
    {"retries_fraction", OPT("retries: 1.5"), 5, "\"retries\""},
    {"retries_text", OPT("retries: x"), 5, "\"retries\""},
    {"retries_huge", OPT("retries: 99999999999"), 5, "\"retries\""},
    {"retry_delay_negative", OPT("retry_delay: -0.5"), 5, "\"retry_delay\" must be a number"},
    {"retry_delay_inf", OPT("retry_delay: inf"), 5, "\"retry_delay\""},
    {"on_failure_bad", OPT("on_failure: explode"), 5, "\"on_failure\" must be abort"},
    {"on_failure_rollback_in_rollback",
     "name: a\n" STEP1 "rollback:\n  - name: r\n    run: x\n    on_failure: rollback\n", 8,
     "step \"r\": \"on_failure\" must be abort or continue (in rollback)"},
    {"run_as_bad", OPT("run_as: \"bad user\""), 5, "invalid user name"},
    {"run_as_unknown", OPT("run_as: no-such-user-rs"), 5,
     "step \"s\": \"run_as\": no user \"no-such-user-rs\" on this host"},
    {"timeout_too_long", OPT("timeout: 2e16"), 5,
     "step \"s\": \"timeout\" must be at most 31536000 seconds (365 days), got \"2e16\""},
    {"retry_delay_too_long", OPT("retry_delay: 31536001"), 5, "\"retry_delay\" must be at most"},
    {"top_timeout_too_long", "name: a\ntimeout: 1e10\n" STEP1, 2, "\"timeout\" must be at most"},
    {"runbook_name_too_long",
     "name: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" STEP1, 1,
     "invalid runbook name \"xxxx"},
    {"tag_custom", "name: a\ndescription: !vault abc\n" STEP1, 2, "YAML tags are not supported"},
    {"tag_standard", "name: !!str a\n" STEP1, 1, "YAML tags are not supported"},
    {"tag_on_mapping", "name: a\nparams: !p {}\n" STEP1, 2, "YAML tags are not supported"},
    {"tag_on_sequence", "name: a\nsteps: !s\n  - name: s\n    run: x\n", 2,
     "YAML tags are not supported"},
    {"alias_bomb",
     "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nname: a\n" STEP1,
     2, "aliases are not supported"},
    {"nested_17", "name: a\ndescription: [[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]\n" STEP1, 2,
     "nested deeper than 16 levels"},
    {"two_documents", "name: a\n" STEP1 "---\nname: b\n", 5, "only one YAML document"},
    {"env_not_mapping", OPT("env: [A]"), 5, "\"env\" must be a mapping"},
    {"env_bad_name", OPT("env: {1BAD: x}"), 5, "env: invalid variable name \"1BAD\""},
    {"env_dash_name", OPT("env: {A-B: x}"), 5, "invalid variable name \"A-B\""},
    {"env_reserved", OPT("env: {RUNSEAL_PARAM_x: y}"), 5, "reserved"},
    {"env_dup", OPT("env:\n      A: x\n      A: y"), 7, "duplicate key \"A\" (first at line 6)"},
    {"ref_unknown_run", CMD("run: echo {{nope}}"), 7, "unknown param \"nope\""},
    {"ref_unknown_argv", CMD("argv: [echo, \"{{nope}}\"]"), 7, "argv: unknown param \"nope\""},
    {"ref_unknown_cwd", OPT("cwd: \"{{nope}}\""), 5, "cwd: unknown param \"nope\""},
    {"ref_unknown_env", OPT("env:\n      X: \"a{{nope}}\""), 6, "X: unknown param \"nope\""},
    {"ref_unterminated", CMD("run: echo {{service"), 7, "unterminated \"{{\""},
    {"ref_bad_name_digit", CMD("run: echo {{1abc}}"), 7, "invalid param reference \"{{1abc}}\""},
    {"ref_bad_name_dash", CMD("argv: [\"{{a-b}}\"]"), 7, "invalid param reference"},
    {"ref_empty", CMD("run: echo {{ }}"), 7, "invalid param reference"},
    {"ref_single_quoted", CMD("run: echo 'x {{service}}'"), 7,
     "{{service}} is inside single quotes"},
    {"ref_single_quoted_in_subst", CMD("run: echo \"$(echo '{{token}}')\""), 7,
     "{{token}} is inside single quotes"},
    {"param_bad_name", PARAM("1x: {}"), 3, "param \"1x\": invalid name"},
    {"param_builtin_dir", PARAM("runbook_dir: {}"), 3, "param \"runbook_dir\": is a builtin"},
    {"param_builtin_run_id", PARAM("run_id: {}"), 3, "param \"run_id\": is a builtin"},
    {"param_not_mapping", PARAM("p: 3"), 3, "param \"p\": spec must be a mapping"},
    {"params_not_mapping", "name: a\nparams: [a]\n" STEP1, 2, "\"params\" must be a mapping"},
    {"param_dup", "name: a\nparams:\n  a: {}\n  a: {}\n" STEP1, 4,
     "duplicate key \"a\" (first at line 3)"},
    {"param_bad_type", PARAM("p: {type: float}"), 3, "param \"p\": unknown type \"float\""},
    {"param_required_not_bool", PARAM("p: {required: maybe}"), 3,
     "\"required\" must be true or false"},
    {"param_required_default", PARAM("p: {required: true, default: x}"), 3,
     "param \"p\": a required param cannot have a default"},
    {"param_enum_no_values", PARAM("m: {type: enum}"), 3, "param \"m\": type enum needs"},
    {"param_enum_empty_values", PARAM("m: {type: enum, values: []}"), 3,
     "\"values\" must be a non-empty list"},
    {"param_values_not_enum", PARAM("m: {values: [a]}"), 3,
     "\"values\" is only allowed with type enum"},
    {"param_values_nested", PARAM("m: {type: enum, values: [a, {b: c}]}"), 3,
     "\"values\" must be a scalar"},
    {"param_bad_regex", PARAM("h: {pattern: \"(\"}"), 3, "param \"h\": invalid pattern"},
    {"param_default_int", PARAM("n: {type: int, default: abc}"), 3,
     "param \"n\": default \"abc\" is not an integer"},
    {"param_default_bool", PARAM("n: {type: bool, default: maybe}"), 3, "is not a boolean"},
    {"param_default_enum", PARAM("m: {type: enum, values: [a, b], default: c}"), 3,
     "default \"c\" is not one of: a, b"},
    {"param_default_pattern", PARAM("h: {pattern: \"[a-z]+\", default: ABC}"), 3,
     "default \"ABC\" does not match pattern"},
    {"param_default_path", PARAM("f: {type: path, default: \"\"}"), 3, "is not a valid path"},
    {"param_default_null", PARAM("f: {default: ~}"), 3, "\"default\" is null"},
    {"param_default_list", PARAM("f: {default: [a]}"), 3, "\"default\" must be a scalar"},
    {"name_not_scalar", "name: [a]\n" STEP1, 1, "\"name\" must be a scalar"},
    {"run_not_scalar", "name: a\nsteps:\n  - name: s\n    run: {a: b}\n", 4,
     "\"run\" must be a scalar"},
    {"key_not_scalar", "name: a\n[x]: 1\n" STEP1, 2, "mapping keys must be scalars"},
    {"alias", "name: &n a\ndescription: *n\n" STEP1, 2, "aliases are not supported"},
    {"dup_top_key", "name: a\nname: b\n" STEP1, 2, "duplicate key \"name\" (first at line 1)"},
    {"dup_step_key", OPT("run: y"), 5, "step \"s\": duplicate key \"run\" (first at line 4)"},
    {"nul_byte", "name: \"a\\0b\"\n" STEP1, 1, "contains a NUL byte"},
};

static void test_error_case(void **state)
{
	const struct ecase *c = *state;
	char name[128], prefix[192], err[RB_ERRLEN] = "";
	struct runbook rb;
	char *path;
	int r;

	snprintf(name, sizeof(name), "%s.yaml", c->name);
	path = write_fixture(name, c->yaml, strlen(c->yaml));
	r = runbook_load(path, &rb, err, sizeof(err));
	if (r == 0)
		runbook_free(&rb);
	assert_int_equal(r, -1);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, c->line);
	if (strncmp(err, prefix, strlen(prefix)))
		fail_msg("\"%s\" does not start with \"%s\"", err, prefix);
	assert_contains(err, c->want);
	assert_null(rb.name); /* nothing partial is left */
	assert_int_equal(rb.nsteps, 0);
	free(path);
}

/* Returns the error of loading data as a runbook (which must fail), timing the load. */
static void load_fails(const char *name, const char *data, size_t len, char *err, double *secs)
{
	struct timespec t0, t1;
	struct runbook rb;
	char *path = write_fixture(name, data, len);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(runbook_load(path, &rb, err, RB_ERRLEN), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	free(path);
}

/* 100k levels took libyaml over a minute (its scanner is quadratic in depth): refused at
 * the 17th level, at once. */
static void test_deep_nesting_refused_fast(void **state)
{
	const size_t depth = 100000;
	static const char head[] = "name: a\nsteps: ";
	size_t len = sizeof(head) - 1 + 2 * depth + 1;
	char *y = malloc(len), err[RB_ERRLEN] = "";
	double secs;

	(void)state;
	assert_non_null(y);
	memcpy(y, head, sizeof(head) - 1);
	memset(y + sizeof(head) - 1, '[', depth);
	memset(y + sizeof(head) - 1 + depth, ']', depth);
	y[len - 1] = '\n';
	load_fails("deep.yaml", y, len, err, &secs);
	assert_contains(err, "deep.yaml:2: nested deeper than 16 levels");
	assert_true(secs < 1.0);
	/* Block style nests as deep through indentation. */
	char *b = y;
	size_t o = (size_t)sprintf(b, "name: a\nsteps:\n");
	for (int i = 0; i < 200; i++)
		o += (size_t)sprintf(b + o, "%*s-\n", i, "");
	load_fails("deep-block.yaml", b, o, err, &secs);
	assert_contains(err, "nested deeper than 16 levels");
	free(y);
}

/* Names are bounded (64 characters): a 1 MB name is refused, not carried into every record. */
static void test_huge_name_refused(void **state)
{
	const size_t n = 1000000;
	static const char tail[] = "\n" STEP1;
	char *y = malloc(6 + n + sizeof(tail)), err[RB_ERRLEN] = "";
	double secs;

	(void)state;
	assert_non_null(y);
	memcpy(y, "name: ", 6);
	memset(y + 6, 'n', n);
	memcpy(y + 6 + n, tail, sizeof(tail));
	load_fails("huge-name.yaml", y, strlen(y), err, &secs);
	assert_contains(err, "huge-name.yaml:1: invalid runbook name \"nnnn");
	assert_contains(err, "1 to 64 chars");
	assert_true(strlen(err) < 400);
	free(y);
}

static void test_secret_default_not_in_error(void **state)
{
	static const char y[] = PARAM("k: {secret: true, pattern: \"[0-9]+\", default: hunter2}");
	char err[RB_ERRLEN] = "", *path;
	struct runbook rb;

	(void)state;
	path = write_fixture("secret_default.yaml", y, sizeof(y) - 1);
	assert_int_equal(runbook_load(path, &rb, err, sizeof(err)), -1);
	assert_contains(err, ":3: param \"k\": default does not match pattern");
	assert_not_contains(err, "hunter2");
	free(path);
}

static void test_file_errors(void **state)
{
	char err[RB_ERRLEN] = "", *path;
	struct runbook rb;

	(void)state;
	assert_true(asprintf(&path, "%s/does-not-exist.yaml", tmpdir) > 0);
	assert_int_equal(runbook_load(path, &rb, err, sizeof(err)), -1);
	assert_contains(err, path);
	assert_contains(err, strerror(ENOENT));
	free(path);

	assert_int_equal(runbook_load(tmpdir, &rb, err, sizeof(err)), -1);
	assert_contains(err, strerror(EISDIR));
}

/* A file of exactly 1 MiB is accepted, one byte more is refused before parsing. */
static void test_file_size_limit(void **state)
{
	const size_t max = 1024 * 1024;
	static const char head[] = "name: big\nsteps:\n  - name: s\n    run: x\n";
	char err[RB_ERRLEN] = "", *buf = malloc(max + 1), *path;
	struct runbook rb;

	(void)state;
	assert_non_null(buf);
	memset(buf, '#', max + 1);
	memcpy(buf, head, sizeof(head) - 1);
	buf[max - 1] = '\n';
	path = write_fixture("exact.yaml", buf, max);
	assert_int_equal(runbook_load(path, &rb, err, sizeof(err)), 0);
	assert_string_equal(rb.name, "big");
	runbook_free(&rb);
	free(path);

	buf[max] = '\n';
	path = write_fixture("big.yaml", buf, max + 1);
	assert_int_equal(runbook_load(path, &rb, err, sizeof(err)), -1);
	assert_contains(err, path);
	assert_contains(err, "larger than 1 MiB");
	free(path);
	free(buf);
}

/* ---- binding ---- */

static int bind(void **state, struct rb_binding *b, char *err, size_t n, ...)
{
	const struct runbook *rb = &((struct full *)*state)->rb;
	char *kv[16];
	size_t nkv = 0;
	va_list ap;

	va_start(ap, n);
	for (char *s; (s = va_arg(ap, char *));)
		kv[nkv++] = s;
	va_end(ap);
	err[0] = '\0';
	return runbook_bind(rb, kv, nkv, b, err, n);
}

#define BIND(b, err, ...) bind(state, (b), (err), sizeof(err), __VA_ARGS__, (const char *)NULL)

static void test_bind_defaults(void **state)
{
	const struct runbook *rb = &((struct full *)*state)->rb;
	char err[RB_ERRLEN];
	struct rb_binding b;

	assert_int_equal(BIND(&b, err, "token=t0k=en", "verbose=No"), 0);
	assert_int_equal(b.n, rb->nparams + 2);
	assert_string_equal(rb_binding_get(&b, "service"), "demo-web");
	assert_string_equal(rb_binding_get(&b, "token"), "t0k=en"); /* split at the first '=' */
	assert_string_equal(rb_binding_get(&b, "count"), "3");
	assert_string_equal(rb_binding_get(&b, "mode"), "fast");
	assert_string_equal(rb_binding_get(&b, "verbose"), "false");
	assert_string_equal(rb_binding_get(&b, "host"), "");
	assert_string_equal(rb_binding_get(&b, "empty"), "");
	assert_string_equal(rb_binding_get(&b, "runbook_dir"), rb->dir);
	assert_string_equal(rb_binding_get(&b, "run_id"), "");
	assert_null(rb_binding_get(&b, "nope"));
	for (size_t i = 0; i < b.n; i++)
		assert_int_equal(b.secret[i], !strcmp(b.names[i], "token") ||
						  !strcmp(b.names[i], "pin") ||
						  !strcmp(b.names[i], "key"));

	assert_int_equal(rb_binding_set(&b, "run_id", "20240101-abc"), 0);
	assert_string_equal(rb_binding_get(&b, "run_id"), "20240101-abc");
	assert_int_equal(rb_binding_set(&b, "extra", "x"), 0);
	assert_string_equal(rb_binding_get(&b, "extra"), "x");
	assert_int_equal(b.n, rb->nparams + 3);
	rb_binding_free(&b);
	assert_int_equal(b.n, 0);
}

static void test_bind_values_ok(void **state)
{
	char err[RB_ERRLEN];
	struct rb_binding b;

	assert_int_equal(BIND(&b, err, "token=", "service=", "count=-9223372036854775808",
			      "mode=slow", "host=web-1.example", "verbose=YES", "conf=/a b/c",
			      "pin=+42", "key=00ff", "either=b"),
			 0);
	assert_string_equal(rb_binding_get(&b, "token"), "");
	assert_string_equal(rb_binding_get(&b, "service"), "");
	assert_string_equal(rb_binding_get(&b, "count"), "-9223372036854775808");
	assert_string_equal(rb_binding_get(&b, "mode"), "slow");
	assert_string_equal(rb_binding_get(&b, "host"), "web-1.example");
	assert_string_equal(rb_binding_get(&b, "verbose"), "true");
	assert_string_equal(rb_binding_get(&b, "conf"), "/a b/c");
	assert_string_equal(rb_binding_get(&b, "pin"), "+42");
	rb_binding_free(&b);

	assert_int_equal(BIND(&b, err, "token=x", "verbose=1"), 0);
	assert_string_equal(rb_binding_get(&b, "verbose"), "true");
	rb_binding_free(&b);
	assert_int_equal(BIND(&b, err, "token=x", "verbose=0"), 0);
	assert_string_equal(rb_binding_get(&b, "verbose"), "false");
	rb_binding_free(&b);
	assert_int_equal(BIND(&b, err, "token=x", "verbose=tRuE"), 0);
	assert_string_equal(rb_binding_get(&b, "verbose"), "true");
	rb_binding_free(&b);
}

struct bcase {
	const char *kv;
	const char *want;
};

static void test_bind_errors(void **state)
{
	static const struct bcase cases[] = {
	    {"count=4.2", "param \"count\": value \"4.2\" is not an integer"},
	    {"count=", "param \"count\": value \"\" is not an integer"},
	    {"count=12a", "is not an integer"},
	    {"count= 12", "is not an integer"},
	    {"count=9223372036854775808", "is not an integer"},
	    {"count=-", "is not an integer"},
	    {"verbose=maybe", "param \"verbose\": value \"maybe\" is not a boolean"},
	    {"verbose=", "is not a boolean"},
	    {"conf=", "param \"conf\": value \"\" is not a valid path"},
	    {"conf=a\nb", "value \"a\\x0ab\" is not a valid path"},
	    {"conf=a\x7f", "is not a valid path"},
	    {"mode=medium", "param \"mode\": value \"medium\" is not one of: fast, slow"},
	    {"host=UPPER", "param \"host\": value \"UPPER\" does not match pattern"},
	    {"host=a b", "does not match pattern"},
	    {"host=", "does not match pattern"},
	    {"either=ab", "param \"either\": value \"ab\" does not match pattern"},
	    {"either=xa", "does not match pattern"},
	    {"nope=1", "unknown param \"nope\""},
	    {"no\x1b[0mpe=1", "unknown param \"no\\x1b[0mpe\""},
	    {"=1", "unknown param \"\""},
	    {"service", "param argument 2: expected name=value"},
	    {"run_id=abc", "param \"run_id\" is set by runseal"},
	    {"runbook_dir=/", "param \"runbook_dir\" is set by runseal"},
	    {"token=again", "param \"token\" given twice"},
	};
	char err[RB_ERRLEN];
	struct rb_binding b;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (BIND(&b, err, "token=x", cases[i].kv) != -1)
			fail_msg("case %zu (%s) was accepted", i, cases[i].kv);
		assert_contains(err, cases[i].want);
		assert_null(b.names);
		assert_int_equal(b.n, 0);
	}
}

static void test_bind_missing_required(void **state)
{
	const struct runbook *rb = &((struct full *)*state)->rb;
	struct runbook copy = *rb;
	struct rb_param params[16];
	char err[RB_ERRLEN];
	struct rb_binding b;

	assert_int_equal(BIND(&b, err, "service=x"), -1);
	assert_contains(err, "missing required param \"token\"");

	/* Two missing params are listed together. */
	assert_true(rb->nparams <= ARRAY_SIZE(params));
	memcpy(params, rb->params, rb->nparams * sizeof(*params));
	params[0].required = true;
	params[0].def = NULL;
	copy.params = params;
	assert_int_equal(runbook_bind(&copy, NULL, 0, &b, err, sizeof(err)), -1);
	assert_contains(err, "missing required params \"service\", \"token\"");
}

static void test_bind_secret_not_in_errors(void **state)
{
	static const char *const bad[] = {"key=S3CRET-zz", "pin=S3CRET-zz"};
	char err[RB_ERRLEN];
	struct rb_binding b;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(BIND(&b, err, "token=x", bad[i]), -1);
		assert_contains(err, i ? "param \"pin\": value is not an integer"
				       : "param \"key\": value does not match pattern");
		assert_not_contains(err, "S3CRET");
	}
	assert_int_equal(BIND(&b, err, "token=S3CRET-zz", "token=S3CRET-yy"), -1);
	assert_not_contains(err, "S3CRET");
	assert_int_equal(BIND(&b, err, "token=x", "S3CRET-zz"), -1);
	assert_not_contains(err, "S3CRET");
}

/* ---- expansion ---- */

static int bind_setup(void **state)
{
	struct full *f;
	char *kv[] = {"token=tok", "host=web.example"};
	struct rb_binding *b;
	char err[RB_ERRLEN];

	if (full_setup(state))
		return -1;
	f = *state;
	b = malloc(sizeof(*b));
	if (!b || runbook_bind(&f->rb, kv, ARRAY_SIZE(kv), b, err, sizeof(err))) {
		print_error("bind: %s\n", err);
		free(b);
		return -1;
	}
	runbook_free(&f->rb);
	free(f->path);
	free(f);
	*state = b;
	return 0;
}

static int bind_teardown(void **state)
{
	rb_binding_free(*state);
	free(*state);
	return 0;
}

static void expect_expand(const struct rb_binding *b, bool shell, const char *tmpl,
			  const char *want)
{
	char err[RB_ERRLEN] = "";
	char *s = shell ? rb_expand_shell(tmpl, b, err, sizeof(err))
			: rb_expand_literal(tmpl, b, err, sizeof(err));

	if (!s)
		fail_msg("expanding \"%s\": %s", tmpl, err);
	assert_string_equal(s, want);
	free(s);
}

static void expect_expand_err(const struct rb_binding *b, bool shell, const char *tmpl,
			      const char *want)
{
	char err[RB_ERRLEN] = "";
	char *s = shell ? rb_expand_shell(tmpl, b, err, sizeof(err))
			: rb_expand_literal(tmpl, b, err, sizeof(err));

	if (s)
		fail_msg("expanding \"%s\" gave \"%s\"", tmpl, s);
	assert_contains(err, want);
}

static void test_expand_shell(void **state)
{
	const struct rb_binding *b = *state;

	expect_expand(b, true, "stop {{service}}", "stop \"${RUNSEAL_PARAM_service}\"");
	expect_expand(b, true, "stop {{ service\t}}", "stop \"${RUNSEAL_PARAM_service}\"");
	expect_expand(b, true, "echo \"x={{service}}!\"", "echo \"x=${RUNSEAL_PARAM_service}!\"");
	expect_expand(b, true, "a{{service}}{{count}}b",
		      "a\"${RUNSEAL_PARAM_service}\"\"${RUNSEAL_PARAM_count}\"b");
	expect_expand(b, true, "echo 'lit' {{run_id}} 'lit'",
		      "echo 'lit' \"${RUNSEAL_PARAM_run_id}\" 'lit'");
	expect_expand(b, true, "echo \"'\" {{service}}", "echo \"'\" \"${RUNSEAL_PARAM_service}\"");
	expect_expand(b, true, "echo \\' {{service}}", "echo \\' \"${RUNSEAL_PARAM_service}\"");
	expect_expand(b, true, "echo \"\\\"{{service}}\"", "echo \"\\\"${RUNSEAL_PARAM_service}\"");
	expect_expand(b, true, "echo \"$(echo {{service}})\"",
		      "echo \"$(echo \"${RUNSEAL_PARAM_service}\")\"");
	expect_expand(
	    b, true, "(cd /; echo {{service}}) && echo \"{{service}}\"",
	    "(cd /; echo \"${RUNSEAL_PARAM_service}\") && echo \"${RUNSEAL_PARAM_service}\"");
	expect_expand(b, true, "no refs at all", "no refs at all");
	expect_expand(b, true, "", "");

	expect_expand_err(b, true, "echo '{{service}}'", "{{service}} is inside single quotes");
	expect_expand_err(b, true, "echo \"a\" 'b {{token}} c'", "inside single quotes");
	expect_expand_err(b, true, "echo {{nope}}", "unknown param \"nope\"");
	expect_expand_err(b, true, "echo {{service", "unterminated");
	expect_expand_err(b, true, "echo {{ser vice}}", "invalid param reference");
}

static void test_expand_literal(void **state)
{
	const struct rb_binding *b = *state;

	expect_expand(b, false, "{{service}}-{{ count }}", "demo-web-3");
	expect_expand(b, false, "'{{service}}'", "'demo-web'");
	expect_expand(b, false, "--token={{token}}", "--token=tok");
	expect_expand(b, false, "{{host}}", "web.example");
	expect_expand(b, false, "x{{empty}}y", "xy");
	expect_expand(b, false, "plain", "plain");
	expect_expand_err(b, false, "{{nope}}", "unknown param \"nope\"");
	expect_expand_err(b, false, "{{service}", "unterminated");
	expect_expand_err(b, false, "{{-x}}", "invalid param reference");
}

static void test_expand_literal_verbatim(void **state)
{
	char *kv[] = {"x=$(id) `id` ';\"\n{{service}}"};
	struct rb_binding b = {0};
	char err[RB_ERRLEN], *s;

	(void)state;
	b.names = (char *[]){"x", "service"};
	b.values = (char *[]){"unused", "svc"};
	b.secret = (bool[]){false, false};
	b.n = 2;
	b.values[0] = strchr(kv[0], '=') + 1;
	s = rb_expand_literal("<{{x}}>", &b, err, sizeof(err));
	assert_non_null(s);
	assert_string_equal(s, "<$(id) `id` ';\"\n{{service}}>"); /* values are not re-expanded */
	free(s);
}

/* Runs cmd with sh -c in dir, with RUNSEAL_PARAM_x=value as the only param; returns its status. */
static int run_sh(const char *dir, const char *cmd, const char *value)
{
	char *envp[3] = {NULL, "PATH=/usr/bin:/bin", NULL};
	int status;
	pid_t pid;

	assert_true(asprintf(&envp[0], "RUNSEAL_PARAM_x=%s", value) > 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (chdir(dir) == 0)
			execve("/bin/sh", (char *[]){"sh", "-c", (char *)cmd, NULL}, envp);
		_exit(127);
	}
	free(envp[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static char *slurp(const char *dir, const char *name)
{
	char path[256], *buf = calloc(1, 4096);
	ssize_t n;
	int fd;

	assert_non_null(buf);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("%s missing", path);
	n = read(fd, buf, 4095);
	close(fd);
	assert_true(n >= 0);
	return buf;
}

/* Everything in dir must be one of the files the commands were meant to write. */
static void assert_no_side_effects(const char *dir)
{
	static const char *const ok[] = {".", "..", "out", "argc", "globfile", "canary"};
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t i;

	assert_non_null(d);
	while ((de = readdir(d))) {
		for (i = 0; i < ARRAY_SIZE(ok) && strcmp(de->d_name, ok[i]); i++)
			;
		if (i == ARRAY_SIZE(ok))
			fail_msg("unexpected file %s/%s", dir, de->d_name);
	}
	closedir(d);
	assert_int_equal(access(dir, F_OK), 0);
}

static void touch(const char *dir, const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static const char *const hostile[] = {
    "$(touch pwned1)",
    "; touch pwned2",
    "`touch pwned3`",
    "'\"",
    "x' ; touch pwned4 ; '",
    "\"; touch pwned5; \"",
    "; rm -rf canary globfile",
    "a\nb\tc",
    "*",
    "$HOME ${IFS} $1 $0",
    "  lead and trail  ",
    "",
    "\\",
    "-n",
    "}}{{x}}",
    "$((1+1))",
    "\n$(touch pwned6)\n",
    "a\\\"; touch pwned7 #",
};

struct shape {
	const char *tmpl;   /* writes the value to "out" */
	const char *before; /* expected text around the value */
	const char *after;
	bool subst; /* through command substitution: trailing newlines are lost */
};

static const struct shape shapes[] = {
    {"set -- {{x}}; printf '%s' \"$#\" > argc; printf '%s' \"$1\" > out", "", "", false},
    {"printf '%s' {{x}} > out", "", "", false},
    {"printf '%s' \"<{{x}}>\" > out", "<", ">", false},
    {"printf '%s' pre{{x}}'post' > out", "pre", "post", false},
    {"printf '%s' {{x}}{{x}} > out", NULL, NULL, false},
    {"v=$(printf '%s' {{x}}); printf '%s' \"$v\" > out", "", "", true},
    {"printf '%s' \"$(printf '%s' \"{{x}}\")\" > out", "", "", true},
    {"v=`printf '%s' {{x}}`; printf '%s' \"$v\" > out", "", "", true},
    {"if [ -n {{x}} ]; then :; fi; printf '%s' {{x}} > out", "", "", false},
};

static char *expected_output(const struct shape *sh, const char *v)
{
	char *want;
	size_t n;

	if (sh->before)
		assert_true(asprintf(&want, "%s%s%s", sh->before, v, sh->after) >= 0);
	else
		assert_true(asprintf(&want, "%s%s", v, v) >= 0);
	n = strlen(want);
	while (sh->subst && n && want[n - 1] == '\n')
		want[--n] = '\0';
	return want;
}

static void run_shape(const struct rb_binding *b, const struct shape *sh, const char *v, int idx)
{
	char dir[256], err[RB_ERRLEN], *cmd, *out, *want;

	snprintf(dir, sizeof(dir), "%s/sh-%d", tmpdir, idx);
	assert_int_equal(mkdir(dir, 0700), 0);
	touch(dir, "globfile");
	touch(dir, "canary");
	cmd = rb_expand_shell(sh->tmpl, b, err, sizeof(err));
	if (!cmd)
		fail_msg("%s: %s", sh->tmpl, err);
	if (run_sh(dir, cmd, v) != 0)
		fail_msg("sh -c '%s' failed for value #%d", cmd, idx);
	out = slurp(dir, "out");
	want = expected_output(sh, v);
	assert_string_equal(out, want);
	free(out);
	if (strstr(sh->tmpl, "argc")) {
		out = slurp(dir, "argc");
		assert_string_equal(out, "1");
		free(out);
	}
	assert_no_side_effects(dir);
	assert_int_equal(access(strcat(dir, "/canary"), F_OK), 0);
	free(want);
	free(cmd);
}

static void test_shell_injection(void **state)
{
	struct rb_binding b = {0};
	int idx = 0;

	(void)state;
	b.names = (char *[]){"x"};
	b.values = (char *[]){"unused"};
	b.secret = (bool[]){false};
	b.n = 1;
	for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
		for (size_t v = 0; v < ARRAY_SIZE(hostile); v++)
			run_shape(&b, &shapes[s], hostile[v], idx++);
}

/* The harness itself must notice an injection: naive literal substitution is caught. */
static void test_shell_injection_detected(void **state)
{
	struct rb_binding b = {0};
	char dir[256], err[RB_ERRLEN], *cmd;

	(void)state;
	b.names = (char *[]){"x"};
	b.values = (char *[]){"$(touch pwned)"};
	b.secret = (bool[]){false};
	b.n = 1;
	snprintf(dir, sizeof(dir), "%s/naive", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	cmd = rb_expand_literal("printf '%s' {{x}} > out", &b, err, sizeof(err));
	assert_non_null(cmd);
	assert_int_equal(run_sh(dir, cmd, ""), 0);
	free(cmd);
	strcat(dir, "/pwned");
	assert_int_equal(access(dir, F_OK), 0);
}

/* The builtin runbook_dir and the load-time checks agree with expansion. */
static void test_load_then_expand(void **state)
{
	static const char y[] =
	    "name: a\nparams:\n  svc: {}\nsteps:\n"
	    "  - name: s\n    run: echo \"{{svc}}\" {{runbook_dir}} {{run_id}}\n"
	    "    cwd: \"{{runbook_dir}}/sub\"\n";
	char err[RB_ERRLEN] = "", *path, *s;
	struct runbook rb;
	struct rb_binding b;
	char *kv[] = {"svc=web"};

	(void)state;
	path = write_fixture("expand.yaml", y, sizeof(y) - 1);
	assert_int_equal(runbook_load(path, &rb, err, sizeof(err)), 0);
	assert_int_equal(runbook_bind(&rb, kv, 1, &b, err, sizeof(err)), 0);
	s = rb_expand_literal(rb.steps[0].cwd, &b, err, sizeof(err));
	assert_non_null(s);
	assert_true(!strncmp(s, rb.dir, strlen(rb.dir)) && !strcmp(s + strlen(rb.dir), "/sub"));
	free(s);
	s = rb_expand_shell(rb.steps[0].run, &b, err, sizeof(err));
	assert_string_equal(s, "echo \"${RUNSEAL_PARAM_svc}\" \"${RUNSEAL_PARAM_runbook_dir}\" "
			       "\"${RUNSEAL_PARAM_run_id}\"");
	free(s);
	rb_binding_free(&b);
	runbook_free(&rb);
	free(path);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test_setup_teardown(test_full_params, full_setup, full_teardown),
	    cmocka_unit_test_setup_teardown(test_full_steps, full_setup, full_teardown),
	    cmocka_unit_test_setup_teardown(test_full_rollback_identity, full_setup, full_teardown),
	    cmocka_unit_test(test_secret_default_not_in_error),
	    cmocka_unit_test(test_deep_nesting_refused_fast),
	    cmocka_unit_test(test_huge_name_refused),
	    cmocka_unit_test(test_file_errors),
	    cmocka_unit_test(test_file_size_limit),
	    cmocka_unit_test_setup_teardown(test_bind_defaults, full_setup, full_teardown),
	    cmocka_unit_test_setup_teardown(test_bind_values_ok, full_setup, full_teardown),
	    cmocka_unit_test_setup_teardown(test_bind_errors, full_setup, full_teardown),
	    cmocka_unit_test_setup_teardown(test_bind_missing_required, full_setup, full_teardown),
	    cmocka_unit_test_setup_teardown(test_bind_secret_not_in_errors, full_setup,
					    full_teardown),
	    cmocka_unit_test_setup_teardown(test_expand_shell, bind_setup, bind_teardown),
	    cmocka_unit_test_setup_teardown(test_expand_literal, bind_setup, bind_teardown),
	    cmocka_unit_test(test_expand_literal_verbatim),
	    cmocka_unit_test(test_shell_injection),
	    cmocka_unit_test(test_shell_injection_detected),
	    cmocka_unit_test(test_load_then_expand),
	};
	struct CMUnitTest tests[ARRAY_SIZE(fixed) + ARRAY_SIZE(ecases)];
	size_t n = 0;

	memcpy(tests, fixed, sizeof(fixed));
	n = ARRAY_SIZE(fixed);
	for (size_t i = 0; i < ARRAY_SIZE(ecases); i++, n++) {
		tests[n] = (struct CMUnitTest){.name = ecases[i].name,
					       .test_func = test_error_case,
					       .initial_state = (void *)&ecases[i]};
	}
	return _cmocka_run_group_tests("runbook", tests, n, group_setup, group_teardown);
}
