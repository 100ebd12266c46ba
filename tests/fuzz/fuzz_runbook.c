/* libFuzzer target: arbitrary bytes as a runbook and its command-line params, through the
 * loader, the binder and both template expanders. Built and run by `make fuzz`.
 *
 * The input is the YAML, then optionally a NUL byte and "name=value" params, one a line: the
 * loader sees only the YAML (a file, as `runseal run` reads it); a runbook that loads is bound
 * to the params, and every template of every step is expanded with the binding. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runbook.h"

static char path[] = "/tmp/fuzz_runbook.XXXXXX";

static void cleanup(void)
{
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd = mkstemp(path);

	(void)argc;
	(void)argv;
	if (fd < 0)
		abort();
	close(fd);
	atexit(cleanup);
	return 0;
}

static size_t split_params(char *p, size_t n, char **kv, size_t max)
{
	size_t k = 0;

	while (n && k < max) {
		char *nl = memchr(p, '\n', n);
		size_t l = nl ? (size_t)(nl - p) : n;

		p[l] = '\0';
		if (memchr(p, '=', l))
			kv[k++] = p;
		p += l + (nl != NULL);
		n -= l + (nl != NULL);
	}
	return k;
}

static void expand_all(const struct rb_step *st, size_t n, const struct rb_binding *b)
{
	char err[RB_ERRLEN];

	for (size_t i = 0; i < n; i++) {
		free(st[i].run ? rb_expand_shell(st[i].run, b, err, sizeof(err)) : NULL);
		for (size_t a = 0; a < st[i].argc; a++)
			free(rb_expand_literal(st[i].argv[a], b, err, sizeof(err)));
		free(st[i].cwd ? rb_expand_literal(st[i].cwd, b, err, sizeof(err)) : NULL);
		for (size_t e = 0; e < st[i].nenv; e++)
			free(rb_expand_literal(st[i].env[e].value, b, err, sizeof(err)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t ylen = nul ? (size_t)(nul - data) : size, plen = nul ? size - ylen - 1 : 0;
	char err[RB_ERRLEN], *params = malloc(plen + 1);
	struct rb_binding b;
	struct runbook rb;
	FILE *f = fopen(path, "w");

	if (!f || !params || fwrite(data, 1, ylen, f) != ylen)
		abort();
	fclose(f);
	memcpy(params, data + ylen + (nul != NULL), plen);
	if (runbook_load(path, &rb, err, sizeof(err)) == 0) {
		char *kv[16];
		size_t nkv = split_params(params, plen, kv, 16);

		if (runbook_bind(&rb, kv, nkv, &b, err, sizeof(err)) == 0) {
			rb_binding_set(&b, "run_id", "01a2336f-55f4-7b62-bbf6-7b3e8fa2ab57");
			expand_all(rb.steps, rb.nsteps, &b);
			expand_all(rb.rollback, rb.nrollback, &b);
			rb_binding_free(&b);
		}
		runbook_free(&rb);
	}
	free(params);
	return 0;
}
