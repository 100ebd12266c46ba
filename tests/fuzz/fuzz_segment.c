/* libFuzzer target: arbitrary bytes as a log segment, through the whole verifier and every
 * entry getter. Built by `make fuzz`:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iuser -Ibpf tests/fuzz/fuzz_segment.c \
 *     user/logfmt.c user/verify.c user/keys.c user/util.c user/json.c \
 *     -o build/fuzz_segment -lcrypto -lz
 *   build/fuzz_segment -max_total_time=60 tests/fuzz/corpus
 *
 * The first input byte picks the layout: plain segment 1, compressed segment 1, or segment 1
 * plus the rest as an active segment 2; the rest is the segment's content. One key set is
 * made at start-up (4 epochs) and verified against, so genesis and seal paths are reached
 * when the corpus holds real entries. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "logfmt.h"
#include "util.h"
#include "verify.h"

static char base[] = "/tmp/fuzz_segment.XXXXXX";
static char keydir[64], logdir[64];

static void clean_log(void)
{
	DIR *d = opendir(logdir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char p[512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", logdir, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static void cleanup(void)
{
	static const char *const k[] = {"root.pub", "root.key", "epochs.pub", "epoch.key"};
	char p[128];

	clean_log();
	rmdir(logdir);
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", keydir, k[i]);
		unlink(p);
	}
	rmdir(keydir);
	rmdir(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[KEYS_ERRLEN], rid[65], hid[33];

	(void)argc;
	(void)argv;
	if (!mkdtemp(base))
		abort();
	snprintf(keydir, sizeof(keydir), "%s/keys", base);
	snprintf(logdir, sizeof(logdir), "%s/log", base);
	if (mkdir(logdir, 0700) < 0 ||
	    keys_generate(keydir, (uint64_t)time(NULL) - 100, 3600, 4, 60, 5, getuid(), rid, hid,
			  err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_segment: set-up failed: %s\n", err);
		abort();
	}
	atexit(cleanup);
	return 0;
}

static void put(const char *name, const void *p, size_t n)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", logdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (n && write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

/* Every getter on every line, for the sanitizers: nothing may read past a line. */
static void getters(const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (buf + off)) : len - off;
		/* An exact-size copy, so ASan sees any read past the line. */
		char *line = malloc(l + 1), s[64];
		unsigned char prev[32];
		uint64_t u;
		bool b;

		memcpy(line, buf + off, l);
		entry_prefix(line, l, &u, prev);
		entry_is_json(line, l);
		entry_get_str(line, l, "kind", s, sizeof(s));
		entry_get_str(line, l, "time", s, sizeof(s));
		if (!entry_get_str(line, l, "time", s, sizeof(s)))
			parse_time(s, strlen(s), &u);
		parse_time(line, l < 30 ? l : 30, &u);
		entry_get_u64(line, l, "seq", &u);
		entry_get_bool(line, l, "sealed", &b);
		free(line);
		off += l + 1;
	}
}

/* Every problem is formatted and handed over, as the commands take them. */
static void take_problem(void *ctx, const struct verify_problem *p)
{
	(void)ctx;
	if (!p->kind || !p->file || !p->message)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verify_opts o = {.log_dir = logdir, .key_dir = keydir, .problem = take_problem};
	const char *body = (const char *)data + 1;
	size_t n = size ? size - 1 : 0;

	if (!size || size > (1u << 20))
		return 0;
	clean_log();
	getters(body, n);
	switch (data[0] % 3) {
	case 0:
		put("seg-0000000000000001.log", body, n);
		break;
	case 1: {
		unsigned char *z;
		size_t zl;

		if (z_deflate(body, n, &z, &zl) == 0) {
			put("seg-0000000000000001.log.z", z, zl);
			free(z);
		}
		/* The raw bytes as a .z too: the inflater's own input. */
		put("seg-0000000000000002.log.z", body, n);
		break;
	}
	default: {
		/* Split at the first blank line: segment 1, then the rest as segment 2 and as
		 * HEAD (HEAD parsing on hostile bytes). */
		const char *cut = memmem(body, n, "\n\n", 2);
		size_t a = cut ? (size_t)(cut - body) + 1 : n;

		put("seg-0000000000000001.log", body, a);
		put("seg-0000000000000002.log", body + a, n - a);
		put("HEAD", body + a, n - a);
		break;
	}
	}
	verify_log(&o, NULL);
	return 0;
}
