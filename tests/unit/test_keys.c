/* Unit tests for user/keys.c. They run as root: the key files must be owned by uid 0.
 * Every test works in its own mkdtemp directory, removed by its teardown. */
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
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "util.h"

#define T0 1795811687ull /* 2026-11-27T20:34:47Z */
#define L  3600ull
#define N  48ull

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		if (!strstr((hay), (needle))) {                                                    \
			print_error("\"%s\"\n  does not contain \"%s\"\n", (hay), (needle));       \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

struct fix {
	char base[64];
	char dir[96];
	char root_id[65];
	char host_id[33];
	char err[KEYS_ERRLEN];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->base, "/tmp/test_keys.XXXXXX");
	if (!mkdtemp(f->base)) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/keys", f->base);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	int r = nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(f);
	return r;
}

static void gen(struct fix *f, uint64_t n)
{
	int r = keys_generate(f->dir, T0, L, n, 60, 5, getuid(), f->root_id, f->host_id, f->err,
			      sizeof(f->err));

	if (r != 0)
		print_error("keys_generate: %s\n", f->err);
	assert_int_equal(r, 0);
}

static char *path_of(const struct fix *f, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", f->dir, name) > 0);
	return p;
}

/* Reads a whole file; returns its length. */
static size_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap - 1);
	assert_true(n >= 0);
	close(fd);
	buf[n] = '\0';
	return (size_t)n;
}

static void spit(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void mode_is(const char *path, unsigned mode)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
	assert_int_equal(st.st_uid, getuid());
}

static void load_root(const struct fix *f, unsigned char host[16], unsigned char pub[32])
{
	char *p = path_of(f, "root.pub");
	char err[KEYS_ERRLEN];

	assert_int_equal(keys_load_root_pub(p, host, pub, err, sizeof(err)), 0);
	free(p);
}

static void load_sched(const struct fix *f, struct epoch_schedule *s)
{
	unsigned char host[16], pub[32];
	char *p = path_of(f, "epochs.pub");
	char err[KEYS_ERRLEN];

	load_root(f, host, pub);
	if (keys_load_schedule(p, pub, s, err, sizeof(err)) != 0) {
		print_error("keys_load_schedule: %s\n", err);
		fail();
	}
	assert_memory_equal(s->host_id, host, 16);
	free(p);
}

/* seed_0 as keygen left it in epoch.key. */
static void read_seed0(const struct fix *f, unsigned char seed[32])
{
	char *p = path_of(f, "epoch.key");
	char buf[128];

	assert_int_equal(slurp(p, buf, sizeof(buf)), 82);
	assert_memory_equal(buf, "0000000000000000 ", 17);
	assert_int_equal(unhex(buf + 17, 64, seed, 32), 0);
	free(p);
}

/* ---- keygen ---------------------------------------------------------------------------- */

static void test_keygen_files(void **state)
{
	struct fix *f = *state;
	static const char *const names[] = {"root.pub", "root.key", "epochs.pub", "epoch.key"};
	static const unsigned modes[] = {0444, 0400, 0444, 0600};
	unsigned char host[16], pub[32], seed[32], derived[32];
	char buf[512], want[160], id[65], *p;
	size_t len;

	assert_false(keys_exist(f->dir));
	gen(f, N);
	assert_true(keys_exist(f->dir));
	assert_int_equal(strlen(f->root_id), 64);
	assert_int_equal(strlen(f->host_id), 32);
	mode_is(f->dir, 0700);
	for (size_t i = 0; i < 4; i++) {
		p = path_of(f, names[i]);
		mode_is(p, modes[i]);
		free(p);
	}
	/* No temporary files left behind. */
	{
		DIR *d = opendir(f->dir);
		const struct dirent *de;
		int entries = 0;

		assert_non_null(d);
		while ((de = readdir(d)))
			entries += de->d_name[0] != '.';
		closedir(d);
		assert_int_equal(entries, 4);
	}

	/* root.pub parses back to the ids keygen reported. */
	load_root(f, host, pub);
	hex(host, 16, buf);
	assert_string_equal(buf, f->host_id);
	key_id(pub, id);
	assert_string_equal(id, f->root_id);
	p = path_of(f, "root.pub");
	len = slurp(p, buf, sizeof(buf));
	free(p);
	hex(pub, 32, id);
	snprintf(want, sizeof(want), "runseal-root-v1 %s %s\n", f->host_id, id);
	assert_int_equal(len, 114);
	assert_string_equal(buf, want);

	/* root.key holds the seed of that public key. */
	p = path_of(f, "root.key");
	len = slurp(p, buf, sizeof(buf));
	free(p);
	assert_int_equal(len, 118);
	snprintf(want, sizeof(want), "runseal-root-key-v1 %s ", f->host_id);
	assert_memory_equal(buf, want, 53);
	assert_int_equal(buf[117], '\n');
	assert_int_equal(unhex(buf + 53, 64, seed, 32), 0);
	assert_int_equal(ed25519_public(seed, derived), 0);
	assert_memory_equal(derived, pub, 32);

	/* epochs.pub header, as docs/FORMAT.md writes it. */
	p = path_of(f, "epochs.pub");
	slurp(p, buf, sizeof(buf));
	free(p);
	snprintf(want, sizeof(want), "runseal-epochs-v1 %s %s %llu 3600 48 60 5\n0 ", f->host_id,
		 f->root_id, T0);
	assert_memory_equal(buf, want, strlen(want));

	read_seed0(f, seed);
}

static void test_keygen_refuses(void **state)
{
	struct fix *f = *state;
	char before[256], after[256], *p;

	gen(f, 4);
	p = path_of(f, "root.pub");
	slurp(p, before, sizeof(before));
	assert_int_equal(
	    keys_generate(f->dir, T0, L, 4, 60, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_contains(f->err, "keys already exist in");
	assert_contains(f->err, f->dir);
	slurp(p, after, sizeof(after));
	assert_string_equal(before, after);
	free(p);

	/* Only one of the files is enough to refuse. */
	p = path_of(f, "root.pub");
	assert_int_equal(unlink(p), 0);
	free(p);
	p = path_of(f, "root.key");
	assert_int_equal(unlink(p), 0);
	free(p);
	p = path_of(f, "epochs.pub");
	assert_int_equal(unlink(p), 0);
	free(p);
	assert_int_equal(
	    keys_generate(f->dir, T0, L, 4, 60, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_contains(f->err, "keys already exist");
	assert_contains(f->err, "epoch.key");
	p = path_of(f, "epoch.key");
	assert_int_equal(unlink(p), 0);
	free(p);

	/* A directory others can enter. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(
	    keys_generate(f->dir, T0, L, 4, 60, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_contains(f->err, "chmod 0700");
	assert_contains(f->err, f->dir);
	assert_int_equal(chmod(f->dir, 0700), 0);

	/* Not the owner's (root's on a host; the integration tests chown for real). */
	assert_int_equal(keys_generate(f->dir, T0, L, 4, 60, 5, getuid() + 1, NULL, NULL, f->err,
				       sizeof(f->err)),
			 -1);
	assert_contains(f->err, "not uid");
	assert_contains(f->err, f->dir);

	/* Insane numbers. */
	assert_int_equal(
	    keys_generate(f->dir, T0, 0, 4, 60, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_contains(f->err, "epoch length is 0");
	assert_int_equal(
	    keys_generate(f->dir, T0, L, 0, 60, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_int_equal(keys_generate(f->dir, T0, L, 1000001, 60, 5, getuid(), NULL, NULL, f->err,
				       sizeof(f->err)),
			 -1);
	assert_int_equal(keys_generate(f->dir, UINT64_MAX - 10, L, 4, 60, 5, getuid(), NULL, NULL,
				       f->err, sizeof(f->err)),
			 -1);
	assert_contains(f->err, "overflows");
	assert_int_equal(
	    keys_generate(f->dir, T0, L, 4, 0, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	/* The slack reaching the epoch: keygen --epoch-seconds 2 --max-interval 1 with the
	 * default slack, or max_interval + slack up to an epoch. */
	assert_int_equal(
	    keys_generate(f->dir, T0, 2, 4, 1, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_contains(f->err, "not shorter than an epoch");
	assert_int_equal(
	    keys_generate(f->dir, T0, 10, 4, 5, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_int_equal(
	    keys_generate(f->dir, T0, 10, 4, 1, 10, getuid(), NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_false(keys_exist(f->dir));

	/* Parent missing. */
	p = xasprintf("%s/no/such", f->base);
	assert_int_equal(
	    keys_generate(p, T0, L, 4, 60, 5, getuid(), NULL, NULL, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, p);
	free(p);

	/* The directory now passes again. */
	gen(f, 2);
}

static void test_keygen_speed(void **state)
{
	struct fix *f = *state;
	struct epoch_schedule s;
	struct timespec a, b;
	const char *pre = getenv("LD_PRELOAD");
	double secs;

	/* Valgrind runs the code some 50 times slower, which says nothing about its speed. */
	if (pre && strstr(pre, "vgpreload"))
		skip();
	clock_gettime(CLOCK_MONOTONIC, &a);
	gen(f, KEYS_EPOCHS);
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	print_message("keygen of %d epochs: %.3f s\n", KEYS_EPOCHS, secs);
	assert_true(secs < 2.0);
	load_sched(f, &s);
	assert_int_equal(s.n, KEYS_EPOCHS);
	assert_true(epoch_cert_ok(&s, 0));
	assert_true(epoch_cert_ok(&s, KEYS_EPOCHS - 1));
	keys_free_schedule(&s);
}

/* ---- root.pub and epochs.pub ---------------------------------------------------------- */

static void test_root_pub_strict(void **state)
{
	struct fix *f = *state;
	unsigned char host[16], pub[32];
	char good[256], bad[300], *p, *q;
	size_t len;

	gen(f, 2);
	p = path_of(f, "root.pub");
	len = slurp(p, good, sizeof(good));
	q = xasprintf("%s/copy.pub", f->base);

	spit(q, good, len);
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), 0);

	memcpy(bad, good, len);
	bad[20] = 'A'; /* uppercase hex */
	spit(q, bad, len);
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, q);

	spit(q, good, len - 1); /* no newline */
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), -1);

	memcpy(bad, good, len);
	memcpy(bad + len, "x\n", 2); /* a second line */
	spit(q, bad, len + 2);
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), -1);

	memcpy(bad, good, len);
	bad[7] = 'X'; /* the prefix */
	spit(q, bad, len);
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), -1);

	memcpy(bad, good, len);
	bad[48] = '\t';
	spit(q, bad, len);
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), -1);

	memset(bad, 'a', 299);
	spit(q, bad, 299);
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), -1);

	unlink(q);
	assert_int_equal(keys_load_root_pub(q, host, pub, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, q);
	free(p);
	free(q);
}

static void test_schedule_certs(void **state)
{
	struct fix *f = *state;
	struct epoch_schedule s;
	unsigned char host[16], root[32];

	gen(f, N);
	load_sched(f, &s);
	load_root(f, host, root);
	assert_memory_equal(s.root_pub, root, 32);
	assert_int_equal(s.t0, T0);
	assert_int_equal(s.len, L);
	assert_int_equal(s.n, N);
	assert_int_equal(s.max_interval, 60);
	assert_int_equal(s.late_slack, 5);
	for (uint64_t e = 0; e < N; e++)
		assert_true(epoch_cert_ok(&s, e));
	assert_false(epoch_cert_ok(&s, N));
	assert_false(epoch_cert_ok(&s, UINT64_MAX));

	/* The certificate covers the host, the times and the key. */
	s.host_id[0] ^= 1;
	assert_false(epoch_cert_ok(&s, 3));
	s.host_id[0] ^= 1;
	s.t0++;
	assert_false(epoch_cert_ok(&s, 3));
	s.t0--;
	s.max_interval++;
	assert_false(epoch_cert_ok(&s, 3));
	s.max_interval--;
	s.late_slack++;
	assert_false(epoch_cert_ok(&s, 3));
	s.late_slack--;
	s.pub[3][31] ^= 0x80;
	assert_false(epoch_cert_ok(&s, 3));
	s.pub[3][31] ^= 0x80;
	s.cert[3][0] ^= 1;
	assert_false(epoch_cert_ok(&s, 3));
	s.cert[3][0] ^= 1;
	/* Swapping two epochs' keys and certificates does not fool the check either. */
	memcpy(s.pub[3], s.pub[4], 32);
	memcpy(s.cert[3], s.cert[4], 64);
	assert_false(epoch_cert_ok(&s, 3));
	keys_free_schedule(&s);
	assert_null(s.pub);
	assert_null(s.cert);
}

/* Replaces the first occurrence of from by to in a copy of epochs.pub, loads it, and returns
 * the loader's result; err gets the error. */
static int load_edited(struct fix *f, const char *from, const char *to, struct epoch_schedule *s)
{
	unsigned char host[16], root[32];
	char *path = path_of(f, "epochs.pub"), *copy = xasprintf("%s/edited.pub", f->base);
	size_t cap = 1 << 16, len, fl = strlen(from), tl = strlen(to);
	char *buf = xmalloc(cap), *out = xmalloc(cap + tl), *at;
	int r;

	len = slurp(path, buf, cap);
	at = memmem(buf, len, from, fl);
	assert_non_null(at);
	memcpy(out, buf, (size_t)(at - buf));
	memcpy(out + (at - buf), to, tl);
	memcpy(out + (at - buf) + tl, at + fl, len - (size_t)(at - buf) - fl);
	spit(copy, out, len - fl + tl);
	load_root(f, host, root);
	r = keys_load_schedule(copy, root, s, f->err, sizeof(f->err));
	if (r == 0) {
		assert_non_null(s->pub);
	} else {
		assert_null(s->pub);
		assert_contains(f->err, copy);
	}
	free(path);
	free(copy);
	free(buf);
	free(out);
	return r;
}

static void test_schedule_tampered(void **state)
{
	struct fix *f = *state;
	struct epoch_schedule s;
	char hdr[200], line[300], *p, *tail;

	gen(f, N);
	snprintf(hdr, sizeof(hdr), "runseal-epochs-v1 %s %s %llu 3600 48 60 5\n", f->host_id,
		 f->root_id, T0);
	load_sched(f, &s);
	/* The line of epoch 5, to edit. */
	{
		char pubhex[65], certhex[129];

		hex(s.pub[5], 32, pubhex);
		hex(s.cert[5], 64, certhex);
		snprintf(line, sizeof(line), "\n5 %s %s\n", pubhex, certhex);
	}
	keys_free_schedule(&s);

	/* A flipped certificate or key loads, but its epoch fails the check. */
	{
		char edit[300];

		strcpy(edit, line);
		/* A digit of the certificate ("\n5 " + 64 hex + ' ' come first). */
		edit[3 + 64 + 1 + 10] = edit[3 + 64 + 1 + 10] == '0' ? '1' : '0';
		assert_int_equal(load_edited(f, line, edit, &s), 0);
		assert_true(epoch_cert_ok(&s, 4));
		assert_false(epoch_cert_ok(&s, 5));
		keys_free_schedule(&s);

		strcpy(edit, line);
		edit[3 + 20] = edit[3 + 20] == '0' ? '1' : '0';
		assert_int_equal(load_edited(f, line, edit, &s), 0);
		assert_false(epoch_cert_ok(&s, 5));
		assert_true(epoch_cert_ok(&s, 6));
		keys_free_schedule(&s);
	}

	/* A header with another t0 loads, but then no certificate matches. */
	p = xasprintf("%llu 3600", T0 + 1);
	tail = xasprintf("%llu 3600", T0);
	assert_int_equal(load_edited(f, tail, p, &s), 0);
	assert_false(epoch_cert_ok(&s, 0));
	keys_free_schedule(&s);
	free(p);
	free(tail);

	/* Header errors, each naming line 1. */
	{
		static const struct {
			const char *from, *to, *want;
		} cases[] = {
		    {"runseal-epochs-v1", "runseal-epochs-v2", ":1:"},
		    {" 3600 48 60 5\n", " 0 48 60 5\n", "epoch length is 0"},
		    {" 3600 48 60 5\n", " 3600 0 60 5\n", "number of epochs is 0"},
		    {" 3600 48 60 5\n", " 3600 1000001 60 5\n", "more than 1000000"},
		    {" 3600 48 60 5\n", " 3600 47 60 5\n", ":49: more than the 47 epochs"},
		    {" 3600 48 60 5\n", " 3600 49 60 5\n", ":50: line missing"},
		    {" 3600 48 60 5\n", " 3600 048 60 5\n", ":1:"},
		    {" 3600 48 60 5\n", " 3600 +48 60 5\n", ":1:"},
		    {" 3600 48 60 5\n", " 3600  48 60 5\n", ":1:"},
		    {" 3600 48 60 5\n", " 3600 48 60 5 \n", ":1:"},
		    {" 3600 48 60 5\n", " 3600 48 5\n", ":1:"},
		    {" 3600 48 60 5\n", " 3600 48 0 5\n", "max_interval is 0"},
		    {" 3600 48 60 5\n", " 3600 48 18446744073709551616 5\n", ":1:"},
		    {" 3600 48 60 5\n", " 18446744073709551615 48 60 5\n", "overflows"},
		    {" 3600 48 60 5\n", " 3600 48 60\n", ":1:"},
		    {" 3600 48 60 5\n", " 3600 48 60 3540\n", "not shorter than an epoch"},
		    {" 3600 48 60 5\n", " 3600 48 3600 0\n", "not shorter than an epoch"},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (load_edited(f, cases[i].from, cases[i].to, &s) == 0) {
				print_error("case %zu loaded\n", i);
				fail();
			}
			assert_contains(f->err, cases[i].want);
		}
	}
	/* Another host id or root key id in the header. */
	p = xasprintf(" %s ", f->host_id);
	tail = xstrdup(p);
	tail[1] = tail[1] == 'f' ? '0' : 'f';
	assert_int_equal(load_edited(f, p, tail, &s), 0);
	assert_false(epoch_cert_ok(&s, 0)); /* the certificates name the host */
	keys_free_schedule(&s);
	free(p);
	free(tail);
	p = xasprintf(" %s ", f->root_id);
	tail = xstrdup(p);
	tail[1] = tail[1] == 'f' ? '0' : 'f';
	assert_int_equal(load_edited(f, p, tail, &s), -1);
	assert_contains(f->err, ":1: schedule of root key");
	free(p);
	free(tail);

	/* Epoch line errors name their line (epoch e is line e + 2). */
	{
		char edit[300], big[400], *nl;

		strcpy(edit, line);
		edit[1] = '6'; /* out of order */
		assert_int_equal(load_edited(f, line, edit, &s), -1);
		assert_contains(f->err, ":7: epoch 6 where epoch 5 belongs");

		strcpy(edit, line);
		edit[10] = 'A';
		assert_int_equal(load_edited(f, line, edit, &s), -1);
		assert_contains(f->err, ":7: not an epoch line");

		strcpy(edit, line);
		edit[3 + 64] = '\t';
		assert_int_equal(load_edited(f, line, edit, &s), -1);
		assert_contains(f->err, ":7:");

		strcpy(edit, line);
		nl = edit + strlen(edit) - 1;
		strcpy(nl, "0\n"); /* 129 hex */
		assert_int_equal(load_edited(f, line, edit, &s), -1);
		assert_contains(f->err, ":7:");

		strcpy(edit, line);
		edit[1] = '0';
		memmove(edit + 2, edit + 1, strlen(edit + 1) + 1); /* "05" */
		assert_int_equal(load_edited(f, line, edit, &s), -1);
		assert_contains(f->err, ":7:");

		assert_int_equal(load_edited(f, line, "\n5 00\n", &s), -1);
		assert_contains(f->err, ":7:");

		memset(big, 'a', sizeof(big) - 1);
		big[0] = '\n';
		big[sizeof(big) - 2] = '\n';
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(load_edited(f, line, big, &s), -1);
		assert_contains(f->err, ":7: line too long");
	}

	/* The last line without its newline, or with something after it. */
	load_sched(f, &s);
	{
		char pubhex[65], certhex[129], last[300], edit[300];

		hex(s.pub[N - 1], 32, pubhex);
		hex(s.cert[N - 1], 64, certhex);
		snprintf(last, sizeof(last), "%s\n", certhex);
		keys_free_schedule(&s);
		strcpy(edit, certhex);
		assert_int_equal(load_edited(f, last, edit, &s), -1);
		assert_contains(f->err, ":49: line has no final newline");
		snprintf(edit, sizeof(edit), "%s\n\n", certhex);
		assert_int_equal(load_edited(f, last, edit, &s), -1);
		assert_contains(f->err, ":50: more than the 48 epochs");
	}

	/* A NUL inside a line. */
	{
		char *path = path_of(f, "epochs.pub"), *copy = xasprintf("%s/nul.pub", f->base);
		char *buf = xmalloc(1 << 16);
		unsigned char host[16], root[32];
		size_t len = slurp(path, buf, 1 << 16);

		buf[strlen(hdr) + 3] = '\0';
		spit(copy, buf, len);
		load_root(f, host, root);
		assert_int_equal(keys_load_schedule(copy, root, &s, f->err, sizeof(f->err)), -1);
		assert_contains(f->err, ":2: line contains a NUL");
		unlink(copy);
		assert_int_equal(keys_load_schedule(copy, root, &s, f->err, sizeof(f->err)), -1);
		assert_contains(f->err, "not found");
		/* An empty file. */
		spit(copy, "", 0);
		assert_int_equal(keys_load_schedule(copy, root, &s, f->err, sizeof(f->err)), -1);
		assert_contains(f->err, ":1: line missing");
		/* Another root key. */
		root[0] ^= 1;
		assert_int_equal(keys_load_schedule(path, root, &s, f->err, sizeof(f->err)), -1);
		assert_contains(f->err, ":1: schedule of root key");
		free(path);
		free(copy);
		free(buf);
	}
}

static void test_epoch_of(void **state)
{
	struct epoch_schedule s = {.t0 = T0, .len = L, .n = N, .max_interval = 60};

	(void)state;
	assert_int_equal(epoch_of(&s, 0), UINT64_MAX);
	assert_int_equal(epoch_of(&s, T0 - 1), UINT64_MAX);
	assert_int_equal(epoch_of(&s, T0), 0);
	assert_int_equal(epoch_of(&s, T0 + L - 1), 0);
	assert_int_equal(epoch_of(&s, T0 + L), 1);
	assert_int_equal(epoch_of(&s, T0 + 7 * L + 5), 7);
	assert_int_equal(epoch_of(&s, T0 + N * L - 1), N - 1);
	assert_int_equal(epoch_of(&s, T0 + N * L), UINT64_MAX);
	assert_int_equal(epoch_of(&s, UINT64_MAX), UINT64_MAX);
	s.t0 = 0;
	s.len = 1;
	s.n = 1;
	assert_int_equal(epoch_of(&s, 0), 0);
	assert_int_equal(epoch_of(&s, 1), UINT64_MAX);
}

/* ---- The signer ----------------------------------------------------------------------- */

static void test_signer_open_refuses(void **state)
{
	struct fix *f = *state;
	struct epoch_signer sg;
	char *key, *real, good[128];
	size_t len;

	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "no keys (run `runseal keygen`)");
	assert_int_equal(sg.fd, -1);
	gen(f, 4);
	key = path_of(f, "epoch.key");
	real = xasprintf("%s/real.key", f->base);
	len = slurp(key, good, sizeof(good));

	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), 0);
	assert_true(sg.fd >= 0);
	assert_int_equal(sg.epoch, 0);
	signer_close(&sg);
	assert_int_equal(sg.fd, -1);

	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "epoch.key: mode 0644 lets others read it; chmod 0600 it");
	assert_contains(f->err, f->dir);
	assert_int_equal(sg.fd, -1);
	assert_int_equal(chmod(key, 0440), 0);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_int_equal(chmod(key, 0600), 0);

	assert_int_equal(signer_open(f->dir, getuid() + 1, &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "not uid");

	/* A symbolic link to a good file. */
	assert_int_equal(rename(key, real), 0);
	assert_int_equal(symlink(real, key), 0);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "symbolic link");
	assert_int_equal(unlink(key), 0);
	assert_int_equal(rename(real, key), 0);

	/* Sizes 83 and 81. */
	spit(key, good, len);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), 0);
	signer_close(&sg);
	good[len] = '\n';
	spit(key, good, len + 1);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "83 bytes, not 82");
	spit(key, good, len - 1);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "81 bytes");

	/* Right size, wrong content. */
	good[20] = 'A';
	spit(key, good, len);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "damaged");
	good[20] = '0';
	good[3] = 'x';
	spit(key, good, len);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	good[3] = '0';
	good[81] = ' ';
	spit(key, good, len);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	good[81] = '\n';

	/* A directory. */
	assert_int_equal(unlink(key), 0);
	assert_int_equal(mkdir(key, 0700), 0);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_int_equal(rmdir(key), 0);

	/* The directory itself. */
	spit(key, good, len);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(chmod(f->dir, 0750), 0);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "chmod 0700");
	assert_int_equal(chmod(f->dir, 0700), 0);
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), 0);
	signer_close(&sg);
	free(key);
	free(real);
}

static void test_forward_security(void **state)
{
	struct fix *f = *state;
	struct epoch_schedule s;
	struct epoch_signer sg;
	unsigned char seed[32], old[32], pub[32], host[16], root[32], last_hash[32];
	unsigned char msg[SEAL_MSG_MAX], sig3[64], sig4[64];
	const char time30[] = "2026-11-27T23:34:47.123456789Z";
	char disk[128], oldhex[65], newhex[65], *key;
	size_t mlen;

	gen(f, N);
	load_sched(f, &s);
	load_root(f, host, root);
	read_seed0(f, seed);
	key = path_of(f, "epoch.key");
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), 0);
	signer_public(&sg, pub);
	assert_memory_equal(pub, s.pub[0], 32);

	/* Several epochs in one step. */
	assert_int_equal(signer_advance(&sg, 3, f->err, sizeof(f->err)), 0);
	for (int i = 0; i < 3; i++)
		epoch_seed_next(seed, seed);
	assert_int_equal(sg.epoch, 3);
	assert_memory_equal(sg.seed, seed, 32);
	signer_public(&sg, pub);
	assert_memory_equal(pub, s.pub[3], 32);
	assert_int_equal(signer_advance(&sg, 3, f->err, sizeof(f->err)), 0);

	/* A seal at epoch 3. */
	memset(last_hash, 0xab, 32);
	mlen = seal_message(msg, host, time30, 30);
	assert_int_equal(signer_sign(&sg, msg, mlen, sig3), 0);
	assert_true(ed25519_verify(s.pub[3], msg, mlen, sig3));

	/* Epoch 4: the disk holds seed_4 and nothing of seed_3. */
	memcpy(old, seed, 32);
	hex(old, 32, oldhex);
	assert_int_equal(signer_advance(&sg, 4, f->err, sizeof(f->err)), 0);
	epoch_seed_next(seed, seed);
	hex(seed, 32, newhex);
	assert_int_equal(slurp(key, disk, sizeof(disk)), 82);
	assert_null(memmem(disk, 82, oldhex, 64));
	assert_null(memmem(disk, 82, old, 32));
	assert_non_null(memmem(disk, 82, newhex, 64));
	assert_memory_equal(disk, "0000000000000004 ", 17);
	assert_int_equal(disk[81], '\n');
	assert_memory_not_equal(sg.seed, old, 32);
	assert_memory_equal(sg.seed, seed, 32);
	mode_is(key, 0600);

	/* No way back. */
	assert_int_equal(signer_advance(&sg, 3, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "epoch key for epoch 3 was erased (the key is at epoch 4); "
				"cannot sign for epoch 3");
	assert_contains(f->err, key); /* the message names the file */
	assert_int_equal(sg.epoch, 4);
	assert_int_equal(signer_advance(&sg, 1000000, f->err, sizeof(f->err)), -1);
	assert_int_equal(sg.epoch, 4);

	/* What epoch 4's key signs does not pass for epoch 3, while the old seal still does. */
	assert_int_equal(signer_sign(&sg, msg, mlen, sig4), 0);
	assert_false(ed25519_verify(s.pub[3], msg, mlen, sig4));
	assert_true(ed25519_verify(s.pub[4], msg, mlen, sig4));
	assert_true(ed25519_verify(s.pub[3], msg, mlen, sig3));
	assert_true(epoch_cert_ok(&s, 3));

	/* Reopening resumes at epoch 4. */
	signer_close(&sg);
	{
		static const unsigned char zero[32];

		assert_memory_equal(sg.seed, zero, 32);
		assert_int_equal(sg.fd, -1);
	}
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), 0);
	assert_int_equal(sg.epoch, 4);
	assert_memory_equal(sg.seed, seed, 32);
	assert_int_equal(signer_advance(&sg, N - 1, f->err, sizeof(f->err)), 0);
	signer_public(&sg, pub);
	assert_memory_equal(pub, s.pub[N - 1], 32);
	signer_close(&sg);
	keys_free_schedule(&s);
	free(key);
}

static void test_seed_chain(void **state)
{
	struct fix *f = *state;
	struct epoch_schedule s;
	unsigned char seed[32], pub[32];

	gen(f, N);
	load_sched(f, &s);
	read_seed0(f, seed);
	for (uint64_t k = 0; k < N; k++) {
		assert_int_equal(ed25519_public(seed, pub), 0);
		assert_memory_equal(pub, s.pub[k], 32);
		epoch_seed_next(seed, seed);
	}
	/* The epochs have distinct keys. */
	assert_memory_not_equal(s.pub[0], s.pub[1], 32);
	keys_free_schedule(&s);
}

/* ---- Pure helpers ---------------------------------------------------------------------- */

static void test_seed_next_vector(void **state)
{
	unsigned char seed[32], next[32], want[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)(i + 1);
	/* printf 'runseal-epoch-seed-v1' followed by bytes 01..20 | sha256sum */
	assert_int_equal(
	    unhex("edd065f3bd9e2de603e365abd095daa165f593ac12cb524f1847920f54801d30", 64, want, 32),
	    0);
	epoch_seed_next(seed, next);
	assert_memory_equal(next, want, 32);
	epoch_seed_next(seed, seed); /* in place */
	assert_memory_equal(seed, want, 32);
}

static void test_rfc8032_vector1(void **state)
{
	unsigned char sk[32], pk[32], sig[64], want_pk[32], want_sig[64];
	char id[65];

	(void)state;
	assert_int_equal(
	    unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", 64, sk, 32),
	    0);
	assert_int_equal(unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
			       64, want_pk, 32),
			 0);
	assert_int_equal(unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
			       "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
			       128, want_sig, 64),
			 0);
	assert_int_equal(ed25519_public(sk, pk), 0);
	assert_memory_equal(pk, want_pk, 32);
	assert_int_equal(ed25519_sign(sk, NULL, 0, sig), 0);
	assert_memory_equal(sig, want_sig, 64);
	assert_true(ed25519_verify(pk, (const unsigned char *)"", 0, sig));
	assert_false(ed25519_verify(pk, (const unsigned char *)"x", 1, sig));
	/* The key id is SHA-256 of the raw key (per sha256sum). */
	key_id(pk, id);
	assert_string_equal(id, "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9");
}

static void test_sign_verify(void **state)
{
	unsigned char seed[32], pub[32], sig[64], msg[100];

	(void)state;
	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)(i + 1);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i * 7);
	assert_int_equal(ed25519_public(seed, pub), 0);
	assert_int_equal(ed25519_sign(seed, msg, sizeof(msg), sig), 0);
	assert_true(ed25519_verify(pub, msg, sizeof(msg), sig));
	/* Ed25519 is deterministic. */
	{
		unsigned char again[64];

		assert_int_equal(ed25519_sign(seed, msg, sizeof(msg), again), 0);
		assert_memory_equal(sig, again, 64);
	}
	for (size_t bit = 0; bit < 8 * sizeof(msg); bit += 37) {
		msg[bit / 8] ^= (unsigned char)(1 << (bit % 8));
		assert_false(ed25519_verify(pub, msg, sizeof(msg), sig));
		msg[bit / 8] ^= (unsigned char)(1 << (bit % 8));
	}
	for (size_t bit = 0; bit < 512; bit += 13) {
		sig[bit / 8] ^= (unsigned char)(1 << (bit % 8));
		assert_false(ed25519_verify(pub, msg, sizeof(msg), sig));
		sig[bit / 8] ^= (unsigned char)(1 << (bit % 8));
	}
	for (size_t bit = 0; bit < 256; bit += 11) {
		pub[bit / 8] ^= (unsigned char)(1 << (bit % 8));
		assert_false(ed25519_verify(pub, msg, sizeof(msg), sig));
		pub[bit / 8] ^= (unsigned char)(1 << (bit % 8));
	}
	assert_false(ed25519_verify(pub, msg, sizeof(msg) - 1, sig));
	assert_true(ed25519_verify(pub, msg, sizeof(msg), sig));
}

static void test_seal_message_bytes(void **state)
{
	unsigned char host[16], out[SEAL_MSG_MAX + 1], sig[64];
	static const char line[] =
	    "{\"seq\":7,\"prev\":\"ab\",\"kind\":\"seal\",\"reason\":\"size\"";
	static const unsigned char want_head[] = {'r', 'u', 'n', 's', 'e', 'a', 'l', '-',
						  's', 'e', 'a', 'l', '-', 'v', '2', 0x00};
	char *full, big[SEAL_LINE_MAX + 2];
	size_t n, signed_len;

	(void)state;
	for (int i = 0; i < 16; i++)
		host[i] = (unsigned char)(0x10 + i);
	memset(out, 0xee, sizeof(out));
	/* label, 0x00, host id, then the line's bytes as they are. */
	n = seal_message(out, host, line, strlen(line));
	assert_int_equal(n, 16 + 16 + strlen(line));
	assert_memory_equal(out, want_head, 16);
	assert_memory_equal(out + 16, host, 16);
	assert_memory_equal(out + 32, line, strlen(line));
	assert_int_equal(out[n], 0xee); /* nothing past the end */
	memset(big, 'x', sizeof(big));
	assert_int_equal(seal_message(out, host, big, SEAL_LINE_MAX + 1), 0);
	assert_int_equal(seal_message(out, host, big, SEAL_LINE_MAX), 32 + SEAL_LINE_MAX);

	/* seal_split: the signature is the exact last field, 128 lowercase hex. */
	full = xasprintf("%s,\"sig\":\"%0128d\"}", line, 0);
	full[strlen(full) - 3] = 'f';
	assert_int_equal(seal_split(full, strlen(full), &signed_len, sig), 0);
	assert_int_equal(signed_len, strlen(line));
	assert_int_equal(sig[63], 0x0f);
	full[strlen(full) - 3] = 'F';
	assert_int_equal(seal_split(full, strlen(full), &signed_len, sig), -1);
	full[strlen(full) - 3] = 'f';
	assert_int_equal(seal_split(full, strlen(full) - 1, &signed_len, sig), -1);
	full[strlen(line) + 2] = 'S'; /* ,"Sig": */
	assert_int_equal(seal_split(full, strlen(full), &signed_len, sig), -1);
	assert_int_equal(seal_split("{}", 2, &signed_len, sig), -1);
	free(full);
}

static void test_cert_message_bytes(void **state)
{
	unsigned char host[16], pub[32], out[CERT_MSG_MAX];
	static const unsigned char want[] = {
	    'r', 'u', 'n', 's', 'e', 'a', 'l', '-', 'e', 'p', 'o', 'c', 'h', '-', 'v', '1', 0x00,
	    /* host_id: 16 x 0x5a */
	    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
	    0x5a, 0x5a,
	    /* e = 2 */
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	    /* not_before = 1795811687 + 7200 = 1795818887 = 0x6b0a0587 */
	    0x00, 0x00, 0x00, 0x00, 0x6b, 0x0a, 0x05, 0x87,
	    /* not_after = 1795822487 = 0x6b0a1397 */
	    0x00, 0x00, 0x00, 0x00, 0x6b, 0x0a, 0x13, 0x97,
	    /* max_interval = 60 */
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c,
	    /* late_slack = 5 */
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05};
	size_t n;

	(void)state;
	memset(host, 0x5a, 16);
	for (int i = 0; i < 32; i++)
		pub[i] = (unsigned char)(255 - i);
	memset(out, 0xee, sizeof(out));
	n = cert_message(out, host, 2, T0 + 2 * L, T0 + 3 * L, 60, 5, pub);
	assert_int_equal(n, 16 + 1 + 16 + 5 * 8 + 32);
	assert_int_equal(n, 105);
	assert_int_equal(sizeof(want), 73);
	assert_memory_equal(out, want, sizeof(want));
	assert_memory_equal(out + 73, pub, 32);
	assert_int_equal(out[105], 0xee);
}

static void test_unhex(void **state)
{
	unsigned char out[4] = {9, 9, 9, 9};

	(void)state;
	assert_int_equal(unhex("", 0, out, 0), 0);
	assert_int_equal(unhex("00ff7a", 6, out, 3), 0);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0x7a);
	assert_int_equal(out[3], 9);
	memset(out, 9, sizeof(out));
	assert_int_equal(unhex("00FF", 4, out, 2), -1); /* lowercase only */
	assert_int_equal(unhex("0g", 2, out, 1), -1);
	assert_int_equal(unhex("0G", 2, out, 1), -1);
	assert_int_equal(unhex("0 ", 2, out, 1), -1);
	assert_int_equal(unhex("abc", 3, out, 1), -1);	/* odd */
	assert_int_equal(unhex("abc", 3, out, 2), -1);	/* odd */
	assert_int_equal(unhex("abcd", 4, out, 1), -1); /* too long */
	assert_int_equal(unhex("ab", 2, out, 2), -1);	/* too short */
	assert_int_equal(unhex("a\0", 2, out, 1), -1);
	assert_int_equal(unhex("/:", 2, out, 1), -1); /* around '0'..'9' */
	assert_int_equal(unhex("`g", 2, out, 1), -1); /* around 'a'..'f' */
	assert_int_equal(unhex("-1", 2, out, 1), -1);
	/* A failure leaves out untouched. */
	assert_int_equal(out[0], 9);
	assert_int_equal(out[1], 9);
}

/* keys tick: the seeds of ended epochs go, the current one stays, and past the end of the
 * schedule nothing usable is left. */
static void test_keys_tick(void **state)
{
	struct fix *f = *state;
	struct epoch_signer sg;
	char *key, before[128], after[128];
	uint64_t from, to, at;

	gen(f, 4);
	key = path_of(f, "epoch.key");
	slurp(key, before, sizeof(before));
	/* Before t0 and inside epoch 0: nothing to erase. */
	assert_int_equal(keys_tick(f->dir, getuid(), T0 - 100, &from, &to, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(
	    keys_tick(f->dir, getuid(), T0 + L - 1, &from, &to, f->err, sizeof(f->err)), 0);
	assert_true(from == 0 && to == 0);
	slurp(key, after, sizeof(after));
	assert_string_equal(before, after);
	/* Two epochs later: epoch.key is at epoch 2, and no earlier seed is left in it. */
	assert_int_equal(
	    keys_tick(f->dir, getuid(), T0 + 2 * L + 5, &from, &to, f->err, sizeof(f->err)), 0);
	assert_true(from == 0 && to == 2);
	assert_int_equal(keys_key_epoch(f->dir, &at, f->err, sizeof(f->err)), 0);
	assert_int_equal(at, 2);
	slurp(key, after, sizeof(after));
	assert_null(strstr(after, before + 17));
	assert_int_equal(signer_open(f->dir, getuid(), &sg, f->err, sizeof(f->err)), 0);
	assert_int_equal(sg.epoch, 2);
	signer_close(&sg);
	/* The clock going back erases nothing and restores nothing. */
	assert_int_equal(keys_tick(f->dir, getuid(), T0 + 5, &from, &to, f->err, sizeof(f->err)),
			 0);
	assert_true(from == 2 && to == 2);
	/* After the last epoch (4 epochs): the key moves to epoch 4, which certifies nothing. */
	assert_int_equal(
	    keys_tick(f->dir, getuid(), T0 + 100 * L, &from, &to, f->err, sizeof(f->err)), 0);
	assert_int_equal(to, 4);
	/* A damaged key directory is an error naming the file. */
	unlink(key);
	assert_int_equal(
	    keys_tick(f->dir, getuid(), T0 + 100 * L, &from, &to, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "keygen");
	assert_int_equal(keys_key_epoch(f->dir, &at, f->err, sizeof(f->err)), -1);
	assert_contains(f->err, "epoch.key");
	free(key);
}

static void test_epoch_due(void **state)
{
	struct epoch_schedule s = {.t0 = T0, .len = L, .n = 4};

	(void)state;
	assert_int_equal(keys_epoch_due(&s, 0), 0);
	assert_int_equal(keys_epoch_due(&s, T0), 0);
	assert_int_equal(keys_epoch_due(&s, T0 + L), 1);
	assert_int_equal(keys_epoch_due(&s, T0 + 4 * L - 1), 3);
	assert_int_equal(keys_epoch_due(&s, T0 + 4 * L), 4);
	assert_int_equal(keys_epoch_due(&s, UINT64_MAX), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_keygen_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keygen_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keygen_speed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_pub_strict, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schedule_certs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schedule_tampered, setup, teardown),
	    cmocka_unit_test(test_epoch_of),
	    cmocka_unit_test_setup_teardown(test_signer_open_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forward_security, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seed_chain, setup, teardown),
	    cmocka_unit_test(test_seed_next_vector),
	    cmocka_unit_test(test_rfc8032_vector1),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_seal_message_bytes),
	    cmocka_unit_test(test_cert_message_bytes),
	    cmocka_unit_test(test_unhex),
	    cmocka_unit_test_setup_teardown(test_keys_tick, setup, teardown),
	    cmocka_unit_test(test_epoch_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
