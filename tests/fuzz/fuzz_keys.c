/* libFuzzer target: arbitrary bytes as the key files a host reads, through their loaders.
 * Built and run by `make fuzz`. The first byte picks the file:
 *   0: root.pub alone;
 *   1: root.pub, a NUL byte, epochs.pub: the schedule is loaded against that root key and
 *      every certificate (up to 256) checked, so real key sets as seeds reach the end;
 *   2: epoch.key, opened as the signer (in a 0700 directory of the fuzzing user, as the
 *      owner check wants) and advanced by one epoch, which rewrites it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

static char dir[] = "/tmp/fuzz_keys.XXXXXX";
static char file[64];

static void cleanup(void)
{
	static const char *const names[] = {"root.pub", "epochs.pub", "epoch.key"};
	char p[128];

	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir) || chmod(dir, 0700) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

static const char *put(const char *name, const uint8_t *p, size_t n)
{
	int fd;

	snprintf(file, sizeof(file), "%s/%s", dir, name);
	unlink(file);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
		abort();
	close(fd);
	return file;
}

static void schedule(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, '\0', n);
	unsigned char host[16], root[32];
	struct epoch_schedule s = {0};
	char err[KEYS_ERRLEN];

	if (!nul)
		return;
	put("root.pub", p, (size_t)(nul - p));
	if (keys_load_root_pub(file, host, root, err, sizeof(err)) < 0)
		return;
	put("epochs.pub", nul + 1, n - (size_t)(nul - p) - 1);
	if (keys_load_schedule(file, root, &s, err, sizeof(err)) == 0) {
		for (uint64_t e = 0; e < s.n && e < 256; e++)
			epoch_cert_ok(&s, e);
		epoch_of(&s, s.t0 + s.len * s.n / 2);
		epoch_of(&s, UINT64_MAX);
	}
	keys_free_schedule(&s);
}

static void signer(const uint8_t *p, size_t n)
{
	struct epoch_signer sg = {.fd = -1};
	unsigned char sig[64];
	char err[KEYS_ERRLEN];

	put("epoch.key", p, n);
	if (signer_open(dir, getuid(), &sg, err, sizeof(err)) < 0)
		return;
	signer_sign(&sg, (const unsigned char *)"msg", 3, sig);
	if (sg.epoch < UINT64_MAX - 1)
		signer_advance(&sg, sg.epoch + 1, err, sizeof(err));
	signer_close(&sg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char host[16], root[32];
	char err[KEYS_ERRLEN];

	if (!size || size > (1u << 20))
		return 0;
	switch (data[0] % 3) {
	case 0:
		put("root.pub", data + 1, size - 1);
		keys_load_root_pub(file, host, root, err, sizeof(err));
		break;
	case 1:
		schedule(data + 1, size - 1);
		break;
	default:
		signer(data + 1, size - 1);
		break;
	}
	return 0;
}
