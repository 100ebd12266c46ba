/* Unit tests for user/digest.c: which file is hashed (the process's own or the one at the
 * path), the cache, and what cannot be known. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "digest.h"
#include "logfmt.h"
#include "util.h"

static char dir[] = "/tmp/test_digest.XXXXXX";

static void sha_of(const char *data, size_t n, char out[65])
{
	unsigned char md[32];

	assert_int_equal(EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL), 1);
	hex(md, 32, out);
}

static void put(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

/* A pid that is no process: a child already reaped. */
static pid_t gone_pid(void)
{
	pid_t p = fork();

	if (!p)
		_exit(0);
	assert_true(p > 0);
	waitpid(p, NULL, 0);
	return p;
}

static void test_path_when_gone(void **state)
{
	char p[64], q[80], want[65], got[65];
	pid_t gone = gone_pid();

	(void)state;
	snprintf(p, sizeof(p), "%s/tool", dir);
	put(p, "first version\n");
	sha_of("first version\n", 14, want);
	assert_int_equal(exe_digest(gone, p, got), 0);
	assert_string_equal(got, want);
	/* Rewritten in place, same size, within the second: not taken from the cache. */
	put(p, "other version\n");
	sha_of("other version\n", 14, want);
	assert_int_equal(exe_digest(gone, p, got), 0);
	assert_string_equal(got, want);
	/* Once the cache holds it (changed more than a second ago), a rewrite in place and a
	 * replacement by rename (a new inode) each give the new digest. */
	sleep(2);
	assert_int_equal(exe_digest(gone, p, got), 0);
	assert_string_equal(got, want);
	put(p, "third version\n");
	sha_of("third version\n", 14, want);
	assert_int_equal(exe_digest(gone, p, got), 0);
	assert_string_equal(got, want);
	snprintf(q, sizeof(q), "%s/tool.new", dir);
	put(q, "fourth version\n");
	assert_int_equal(rename(q, p), 0);
	sha_of("fourth version\n", 15, want);
	assert_int_equal(exe_digest(gone, p, got), 0);
	assert_string_equal(got, want);
	/* Nothing to read: no such file, a directory, no path and no process. */
	snprintf(q, sizeof(q), "%s/missing", dir);
	assert_int_equal(exe_digest(gone, q, got), -1);
	assert_int_equal(exe_digest(gone, dir, got), -1);
	assert_int_equal(exe_digest(gone, NULL, got), -1);
	unlink(p);
}

static void test_process_own_file(void **state)
{
	char self[PATH_MAX], want[65], got[65], p[64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *buf;
	size_t len;
	char err[256];

	(void)state;
	assert_true(n > 0);
	self[n] = '\0';
	assert_int_equal(segment_read(self, &buf, &len, err, sizeof(err)), 0);
	sha_of(buf, len, want);
	free(buf);
	/* The path names the file this process runs: read through /proc/PID/exe. */
	assert_int_equal(exe_digest(getpid(), self, got), 0);
	assert_string_equal(got, want);
	/* The path names another file (the process ran another exec since): that file. */
	snprintf(p, sizeof(p), "%s/other", dir);
	put(p, "not this program\n");
	sha_of("not this program\n", 17, want);
	assert_int_equal(exe_digest(getpid(), p, got), 0);
	assert_string_equal(got, want);
	/* No path, and the process's file still has a name: not known (it could be a later
	 * exec's file). */
	assert_int_equal(exe_digest(getpid(), NULL, got), -1);
	unlink(p);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_when_gone),
	    cmocka_unit_test(test_process_own_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
