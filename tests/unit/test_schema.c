/* Unit tests for user/schema.c: kind names both ways, field lookups, and that the docs name
 * every kind and field of the table (so the table and docs/RECORDS.md, docs/FORMAT.md cannot
 * drift apart silently). Run from the top of the tree, as `make unit` does. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_names_round_trip(void **state)
{
	(void)state;
	for (int k = 0; k < REC_OTHER; k++) {
		const char *n = rec_kind_name((enum rec_kind)k);

		assert_non_null(n);
		assert_int_equal(rec_kind_of(n, strlen(n)), k);
		for (int j = 0; j < k; j++)
			assert_string_not_equal(n, rec_schema[j].name);
	}
	assert_int_equal(rec_kind_of(S("exec")), REC_EXEC);
	assert_int_equal(rec_kind_of(S("seal")), REC_SEAL);
	/* a prefix, a longer name, another case, an empty name, "other" itself */
	assert_int_equal(rec_kind_of(S("exe")), REC_OTHER);
	assert_int_equal(rec_kind_of(S("execve")), REC_OTHER);
	assert_int_equal(rec_kind_of(S("EXEC")), REC_OTHER);
	assert_int_equal(rec_kind_of(S("")), REC_OTHER);
	assert_int_equal(rec_kind_of(S("other")), REC_OTHER);
	assert_string_equal(rec_kind_name(REC_KIND_MAX), "other");
}

static void test_fields(void **state)
{
	(void)state;
	/* the scope's fields, the kind's own, a path's suffixes */
	assert_true(rec_field_known(REC_EXEC, S("kind")));
	assert_true(rec_field_known(REC_EXEC, S("comm")));
	assert_true(rec_field_known(REC_EXEC, S("argv")));
	assert_true(rec_field_known(REC_EXEC, S("path_detached")));
	assert_true(rec_field_known(REC_OPEN, S("path_outside_root")));
	assert_true(rec_field_known(REC_RENAME, S("old_path_truncated")));
	assert_true(rec_field_known(REC_SEAL, S("epoch_key")));
	/* another kind's field, another scope's, a part of a name, a suffix on nothing */
	assert_false(rec_field_known(REC_FORK, S("argv")));
	assert_false(rec_field_known(REC_RUN_START, S("comm")));
	assert_false(rec_field_known(REC_SEAL, S("run")));
	assert_false(rec_field_known(REC_EXEC, S("arg")));
	assert_false(rec_field_known(REC_EXEC, S("_detached")));
	assert_false(rec_field_known(REC_EXEC, S("nothing_detached")));
	assert_false(rec_field_known(REC_OTHER, S("anything")));
	assert_false(rec_field_known(REC_KIND_MAX, S("kind")));
	assert_true(rec_schema[REC_RENAME].flags & RK_FILE_CHANGE);
	assert_false(rec_schema[REC_OPEN].flags & RK_FILE_CHANGE);
	assert_true(rec_schema[REC_CONNECT].flags & RK_NET);
	assert_true(rec_schema[REC_BPF].flags & RK_GUARD);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *p = NULL;
	size_t n = 0;

	assert_non_null(f);
	assert_int_equal(getdelim(&p, &n, '\0', f) > 0, 1);
	fclose(f);
	return p;
}

/* Whether the docs show word in backquotes: alone, as a field path's start or as `word: value`. */
static bool documented(const char *docs, const char *w, size_t n)
{
	for (const char *p = docs; (p = strchr(p, '`')); p++)
		if (!strncmp(p + 1, w, n) &&
		    (p[1 + n] == '`' || p[1 + n] == '.' || p[1 + n] == ':'))
			return true;
	return false;
}

static void test_docs_name_everything(void **state)
{
	char *rec = slurp("docs/RECORDS.md"), *fmt = slurp("docs/FORMAT.md");
	char *docs;

	(void)state;
	assert_true(asprintf(&docs, "%s\n%s", rec, fmt) > 0);
	for (int k = 0; k < REC_OTHER; k++) {
		const struct rec_schema *s = &rec_schema[k];
		const char *lists[2] = {rec_scope_fields[s->scope], s->fields};

		if (!documented(docs, s->name, strlen(s->name)))
			fail_msg("kind %s is not in docs/RECORDS.md or docs/FORMAT.md", s->name);
		for (int i = 0; i < 2; i++) {
			for (const char *p = lists[i]; *p;) {
				size_t len = strcspn(p, " ");

				if (!documented(docs, p, len))
					fail_msg("%s: field %.*s is not documented", s->name,
						 (int)len, p);
				p += len;
				p += strspn(p, " ");
			}
		}
	}
	free(docs);
	free(rec);
	free(fmt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_round_trip),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_docs_name_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
