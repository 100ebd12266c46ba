/* libFuzzer target: arbitrary bytes as the HEAD file of a real sealed log, through the
 * verifier. Built and run by `make fuzz`.
 *
 * At start-up a key set and a log of two sealed runs are made with the real sealer. The
 * first input byte picks how the input becomes HEAD: 0 the rest as is; 1 the real HEAD with
 * the rest written over it from offset data[1]; 2 the real HEAD cut at data[1] (scaled to
 * its length) followed by the rest. Near-valid HEADs reach the checks past the parse. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "sealer.h"
#include "util.h"
#include "verify.h"

static char base[] = "/tmp/fuzz_head.XXXXXX";
static char keydir[64], logdir[64], headpath[80];
static char head[4096];
static size_t headlen;

static void unflag_and_remove(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *de;

	while (dp && (de = readdir(dp))) {
		char p[512];
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		fd = open(p, O_RDONLY);
		if (fd >= 0) {
			worm_set(fd, 0);
			close(fd);
		}
		unlink(p);
	}
	if (dp)
		closedir(dp);
	rmdir(d);
}

static void cleanup(void)
{
	unflag_and_remove(logdir);
	unflag_and_remove(keydir);
	rmdir(base);
}

/* A record of now: the verifier rejects records much older than their seal. */
static void append(struct sealer *s, const char *kind)
{
	struct rec_view v = {.kind = REC_RUN_START, .step = -1};
	char t[TIME_LEN], *line;

	fmt_time(now_ns(CLOCK_REALTIME), t);
	line = xasprintf("{\"kind\":\"%s\",\"time\":\"%s\"}\n", kind, t);

	v.line = line;
	v.len = strlen(line);
	if (sealer_sink(s, &v) < 0)
		abort();
	free(line);
}

/* Two runs, each sealed, so HEAD names the second seal. */
static void make_log(void)
{
	struct sealer_opts o = {.log_dir = logdir, .key_dir = keydir, .owner = getuid()};
	struct sealer s;
	char err[1024];
	FILE *f;

	if (sealer_open(&s, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_head: %s\n", err);
		abort();
	}
	for (int run = 0; run < 2; run++) {
		append(&s, "run_start");
		append(&s, "run_end");
		if (sealer_seal(&s, "run_end") < 0)
			abort();
	}
	sealer_close(&s);
	f = fopen(headpath, "r");
	if (!f)
		abort();
	headlen = fread(head, 1, sizeof(head), f);
	fclose(f);
}

/* FUZZ_HEAD_DEBUG: why the start-up log does not verify. */
static void say_problem(void *ctx, const struct verify_problem *p)
{
	(void)ctx;
	fprintf(stderr, "fuzz_head: %s: %s: %s\n", p->kind, p->file, p->message);
}

/* Every problem is formatted and handed over, as the commands take them. */
static void take_problem(void *ctx, const struct verify_problem *p)
{
	(void)ctx;
	if (!p->kind || !p->file || !p->message)
		__builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[KEYS_ERRLEN];

	(void)argc;
	(void)argv;
	if (!mkdtemp(base))
		abort();
	snprintf(keydir, sizeof(keydir), "%s/keys", base);
	snprintf(logdir, sizeof(logdir), "%s/log", base);
	snprintf(headpath, sizeof(headpath), "%s/HEAD", logdir);
	if (keys_generate(keydir, (uint64_t)time(NULL) - 100, 3600, 4, 60, 5, getuid(), NULL, NULL,
			  err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_head: set-up failed: %s\n", err);
		abort();
	}
	atexit(cleanup);
	make_log();
	/* The untouched log must verify, or the fuzzer would only ever see errors. */
	struct verify_opts o = {.log_dir = logdir,
				.key_dir = keydir,
				.problem = getenv("FUZZ_HEAD_DEBUG") ? say_problem : NULL};
	if (verify_log(&o, NULL) != 0) {
		fprintf(stderr, "fuzz_head: the log made at start-up does not verify\n");
		abort();
	}
	return 0;
}

static void put_head(const char *p1, size_t n1, const char *p2, size_t n2)
{
	int fd;

	unlink(headpath);
	fd = open(headpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || (n1 && write(fd, p1, n1) != (ssize_t)n1) ||
	    (n2 && write(fd, p2, n2) != (ssize_t)n2))
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verify_opts o = {.log_dir = logdir, .key_dir = keydir, .problem = take_problem};
	const char *rest = (const char *)data + 2;
	size_t n = size >= 2 ? size - 2 : 0, at;
	char buf[sizeof(head)];

	if (size < 2 || size > (1u << 16))
		return 0;
	switch (data[0] % 3) {
	case 0:
		put_head((const char *)data + 1, size - 1, NULL, 0);
		break;
	case 1:
		at = headlen ? data[1] % headlen : 0;
		memcpy(buf, head, headlen);
		memcpy(buf + at, rest, n < headlen - at ? n : headlen - at);
		put_head(buf, headlen, NULL, 0);
		break;
	default:
		at = headlen * data[1] / 255;
		put_head(head, at, rest, n);
		break;
	}
	verify_log(&o, NULL);
	return 0;
}
