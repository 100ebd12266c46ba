/* Unit tests of the sealer: chain, seals and their signatures, segment files, head,
 * replicas and crash recovery, on a real filesystem in a temporary directory (as root). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "logfmt.h"
#include "sealer.h"
#include "util.h"

struct fx {
	char tmp[64], keys[128], log[128], rep[128];
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char e[KEYS_ERRLEN];

	strcpy(f->tmp, "/tmp/runseal-sealer-XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->keys, sizeof(f->keys), "%s/keys", f->tmp);
	snprintf(f->log, sizeof(f->log), "%s/log", f->tmp);
	snprintf(f->rep, sizeof(f->rep), "%s/rep", f->tmp);
	assert_int_equal(keys_generate(f->keys, (uint64_t)time(NULL) - 10, 3600, 4, 60, 5, getuid(),
				       NULL, NULL, e, sizeof(e)),
			 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "chattr -R -i -a %s 2>/dev/null; rm -rf %s", f->tmp, f->tmp);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void open_sealer(struct fx *f, struct sealer *s, bool replica)
{
	/* The sealer keeps the replica list: it must outlive this call. */
	static const char *reps[1];
	struct sealer_opts o = {.log_dir = f->log, .key_dir = f->keys, .owner = getuid()};
	char e[1024];

	reps[0] = f->rep;
	if (replica) {
		o.replicas = reps;
		o.nreplicas = 1;
	}
	if (sealer_open(s, &o, e, sizeof(e)) < 0)
		fail_msg("sealer_open: %s", e);
}

static void append(struct sealer *s, enum rec_kind kind, const char *json)
{
	struct rec_view v = {.kind = kind, .step = -1};
	char *line = xasprintf("%s\n", json);

	v.line = line;
	v.len = strlen(line);
	assert_int_equal(sealer_sink(s, &v), 0);
	free(line);
}

static char *slurp(const char *path, size_t *len)
{
	char *buf, e[256];

	if (segment_read(path, &buf, len, e, sizeof(e)) < 0)
		fail_msg("%s", e);
	return buf;
}

static char *seg_path(const struct fx *f, const char *dir, unsigned n, const char *ext)
{
	return xasprintf("%s/seg-%016u.log%s", dir ? dir : f->log, n, ext);
}

/* Walks a segment: checks seq and prev links from (seq0, prev0), returns the entry count
 * and leaves the last entry's hash and line in last/lastline. */
static size_t walk(const char *buf, size_t len, uint64_t seq0, unsigned char last[32],
		   char *lastline, size_t cap)
{
	size_t n = 0;

	for (const char *p = buf; p < buf + len;) {
		const char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		unsigned char prev[32];
		uint64_t seq;

		assert_non_null(nl);
		assert_true(entry_prefix(p, (size_t)(nl - p), &seq, prev) > 0);
		assert_int_equal(seq, seq0 + n);
		assert_memory_equal(prev, last, 32);
		entry_hash(p, (size_t)(nl - p), last);
		snprintf(lastline, cap, "%.*s", (int)(nl - p), p);
		n++;
		p = nl + 1;
	}
	return n;
}

static unsigned flags_of(const char *path)
{
	int fd = open(path, O_RDONLY), fl = 0;

	assert_true(fd >= 0);
	assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &fl), 0);
	close(fd);
	return (unsigned)fl;
}

/* Only CAP_LINUX_IMMUTABLE may set the flags: as another user the sealer records `worm:
 * unavailable` instead (the integration tests check the flags of real runs). */
static void assert_worm(const char *path, unsigned flag)
{
	if (geteuid() == 0)
		assert_true(flags_of(path) & flag);
}

static void test_chain_seal_and_signature(void **state)
{
	struct fx *f = *state;
	struct sealer s;
	unsigned char last[32] = {0}, msg[SEAL_MSG_MAX], sig[64], pub[32], lh[32];
	char line[4096], t[64], hx[200], hid[33];
	struct epoch_schedule sched = {0};
	unsigned char host[16], root[32];
	uint64_t seg, first, count, epoch;
	size_t len, n;
	char e[KEYS_ERRLEN], *path, *buf;

	open_sealer(f, &s, false);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r1\"}");
	append(&s, REC_EXEC, "{\"kind\":\"exec\",\"time\":\"x\",\"run\":\"r1\",\"argv\":[\"a\"]}");
	append(&s, REC_RUN_END, "{\"kind\":\"run_end\",\"time\":\"x\",\"run\":\"r1\"}");
	assert_int_equal(sealer_seal(&s, "run_end"), 0);
	sealer_close(&s);

	path = seg_path(f, NULL, 1, ".z");
	buf = slurp(path, &len);
	n = walk(buf, len, 0, last, line, sizeof(line));
	/* genesis, segment, 3 records, seal */
	assert_int_equal(n, 6);
	assert_non_null(strstr(buf, "\"kind\":\"genesis\""));
	assert_worm(path, FS_IMMUTABLE_FL);
	free(path);
	path = seg_path(f, NULL, 1, "");
	assert_int_equal(access(path, F_OK), -1);
	free(path);

	/* The seal verifies against the certified epoch key. */
	snprintf(hx, sizeof(hx), "%s/root.pub", f->keys);
	assert_int_equal(keys_load_root_pub(hx, host, root, e, sizeof(e)), 0);
	snprintf(hx, sizeof(hx), "%s/epochs.pub", f->keys);
	assert_int_equal(keys_load_schedule(hx, root, &sched, e, sizeof(e)), 0);
	assert_int_equal(entry_get_u64(line, strlen(line), "segment", &seg), 0);
	assert_int_equal(entry_get_u64(line, strlen(line), "first_seq", &first), 0);
	assert_int_equal(entry_get_u64(line, strlen(line), "count", &count), 0);
	assert_int_equal(entry_get_u64(line, strlen(line), "epoch", &epoch), 0);
	assert_int_equal(seg, 1);
	assert_int_equal(first, 0);
	assert_int_equal(count, 5);
	assert_int_equal(entry_get_str(line, strlen(line), "time", t, sizeof(t)), 0);
	assert_int_equal(entry_get_str(line, strlen(line), "last_hash", hx, sizeof(hx)), 0);
	assert_int_equal(unhex(hx, strlen(hx), lh, 32), 0);
	assert_int_equal(entry_get_str(line, strlen(line), "epoch_key", hx, sizeof(hx)), 0);
	assert_int_equal(unhex(hx, strlen(hx), pub, 32), 0);
	assert_memory_equal(pub, sched.pub[epoch], 32);
	assert_true(epoch_cert_ok(&sched, epoch));
	assert_int_equal(entry_get_str(line, strlen(line), "sig", hx, sizeof(hx)), 0);
	assert_int_equal(unhex(hx, strlen(hx), sig, 64), 0);
	hex(sched.host_id, 16, hid);
	/* It covers the whole line before its sig field. */
	assert_int_equal(seal_split(line, strlen(line), &len, sig), 0);
	len = seal_message(msg, sched.host_id, line, len);
	assert_true(len > 0);
	assert_true(ed25519_verify(pub, msg, len, sig));
	msg[20] ^= 1;
	assert_false(ed25519_verify(pub, msg, len, sig));

	/* HEAD is the seal line. */
	snprintf(hx, sizeof(hx), "%s/HEAD", f->log);
	free(buf);
	buf = slurp(hx, &len);
	assert_int_equal(len, strlen(line) + 1);
	assert_memory_equal(buf, line, strlen(line));
	free(buf);
	keys_free_schedule(&sched);
}

static void test_reopen_continues_chain_and_replicates(void **state)
{
	struct fx *f = *state;
	struct sealer s;
	unsigned char last[32] = {0};
	char line[4096], *p1, *p2, *b1, *b2, *path;
	size_t l1, l2, n1;

	open_sealer(f, &s, true);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r1\"}");
	assert_int_equal(sealer_seal(&s, "run_end"), 0);
	sealer_close(&s);
	open_sealer(f, &s, true);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r2\"}");
	assert_int_equal(sealer_seal(&s, "run_end"), 0);
	sealer_close(&s);

	p1 = seg_path(f, NULL, 1, ".z");
	p2 = seg_path(f, NULL, 2, ".z");
	b1 = slurp(p1, &l1);
	b2 = slurp(p2, &l2);
	n1 = walk(b1, l1, 0, last, line, sizeof(line));
	/* Segment 2 links to segment 1's seal and its seq follows on. */
	walk(b2, l2, n1, last, line, sizeof(line));
	assert_non_null(strstr(b2, "\"kind\":\"segment\""));
	free(b1);
	free(b2);

	/* The replica has byte-identical segments and the same HEAD. */
	for (unsigned n = 1; n <= 2; n++) {
		char *a = seg_path(f, NULL, n, ".z"), *b = seg_path(f, f->rep, n, ".z");
		struct stat sa, sb;

		assert_int_equal(stat(a, &sa), 0);
		assert_int_equal(stat(b, &sb), 0);
		assert_int_equal(sa.st_size, sb.st_size);
		assert_worm(b, FS_IMMUTABLE_FL);
		free(a);
		free(b);
	}
	path = xasprintf("%s/HEAD", f->rep);
	b1 = slurp(path, &l1);
	free(path);
	path = xasprintf("%s/HEAD", f->log);
	b2 = slurp(path, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	assert_memory_equal(b1, line, strlen(line));
	free(path);
	free(b1);
	free(b2);
	free(p1);
	free(p2);
}

/* A crash leaves an unsealed segment with a torn last line: the next open keeps it byte
 * for byte, freezes it, and continues the chain with a recovery entry. */
static void test_crash_recovery(void **state)
{
	struct fx *f = *state;
	struct sealer s;
	unsigned char last[32] = {0};
	char line[4096], *path, *buf, *before;
	size_t len, blen, n;
	int fd;

	open_sealer(f, &s, false);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r1\"}");
	append(&s, REC_STEP_START, "{\"kind\":\"step_start\",\"time\":\"x\",\"run\":\"r1\"}");
	/* Simulated crash: no seal, no close; a half-written entry at the end. */
	path = seg_path(f, NULL, 1, "");
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"seq\":4,\"prev\":\"ab", 20), 20);
	close(fd);
	assert_worm(path, FS_APPEND_FL);
	s.fd = -1; /* the process is gone: nothing more from this sealer */
	sealer_close(&s);
	before = slurp(path, &blen);

	open_sealer(f, &s, false);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r2\"}");
	assert_int_equal(sealer_seal(&s, "run_end"), 0);
	sealer_close(&s);

	buf = slurp(path, &len);
	assert_int_equal(len, blen);
	assert_memory_equal(buf, before, len);
	assert_worm(path, FS_IMMUTABLE_FL);
	n = walk(buf, len - 20, 0, last, line, sizeof(line));
	assert_int_equal(n, 4);
	free(buf);
	free(path);
	path = seg_path(f, NULL, 2, ".z");
	buf = slurp(path, &len);
	walk(buf, len, n, last, line, sizeof(line));
	assert_non_null(strstr(buf, "\"kind\":\"recovery\""));
	assert_non_null(strstr(buf, "\"torn_bytes\":20"));
	assert_non_null(strstr(buf, "\"last_seq\":3"));
	free(buf);
	free(before);
	free(path);
}

static void test_heartbeat_and_foreign_host(void **state)
{
	struct fx *f = *state;
	struct sealer s;
	struct sealer_opts o = {.log_dir = f->log, .owner = getuid()};
	char e[1024], other[160], *path;

	open_sealer(f, &s, false);
	/* Idle: a heartbeat still seals (a segment with nothing but its header). */
	assert_int_equal(sealer_seal(&s, "heartbeat"), 0);
	sealer_close(&s);
	path = seg_path(f, NULL, 1, ".z");
	assert_int_equal(access(path, F_OK), 0);
	free(path);

	/* Another host's keys refuse to continue this log and write nothing. */
	snprintf(other, sizeof(other), "%s/other", f->tmp);
	assert_int_equal(keys_generate(other, (uint64_t)time(NULL) - 10, 3600, 4, 60, 5, getuid(),
				       NULL, NULL, e, sizeof(e)),
			 0);
	o.key_dir = other;
	assert_int_equal(sealer_open(&s, &o, e, sizeof(e)), -1);
	assert_non_null(strstr(e, "host"));
	path = seg_path(f, NULL, 2, "");
	assert_int_equal(access(path, F_OK), -1);
	free(path);
}

/* One writer per log directory: a second sealer is refused, naming the holder, before it
 * reads or writes anything; the lock goes with the first. */
static void test_single_writer(void **state)
{
	struct fx *f = *state;
	struct sealer a, b;
	struct sealer_opts o = {.log_dir = f->log, .key_dir = f->keys, .owner = getuid()};
	char e[1024], want[64], *path;

	open_sealer(f, &a, false);
	append(&a, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r1\"}");
	assert_int_equal(sealer_flush(&a), 0);
	assert_int_equal(sealer_open(&b, &o, e, sizeof(e)), -1);
	snprintf(want, sizeof(want), "log in use by pid %ld", (long)getpid());
	assert_non_null(strstr(e, want));
	/* The first writer's open segment was left alone: no recovery, no seal. */
	path = seg_path(f, NULL, 2, ".z");
	assert_int_equal(access(path, F_OK), -1);
	free(path);
	assert_int_equal(sealer_seal(&a, "run_end"), 0);
	sealer_close(&a);
	open_sealer(f, &b, false);
	sealer_close(&b);
}

/* An empty segment file (a crash or a full disk right after its creation) holds nothing of
 * the log: the next open removes it and carries on from the segment before. A header that
 * cannot be written leaves no file behind. */
static void test_empty_segment(void **state)
{
	struct fx *f = *state;
	struct sealer s;
	char *path;
	int fd;

	open_sealer(f, &s, false);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r1\"}");
	assert_int_equal(sealer_seal(&s, "run_end"), 0);
	sealer_close(&s);
	path = seg_path(f, NULL, 2, "");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	open_sealer(f, &s, false);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r2\"}");
	assert_int_equal(sealer_seal(&s, "run_end"), 0);
	sealer_close(&s);
	assert_int_equal(access(path, F_OK), -1);
	free(path);
	path = seg_path(f, NULL, 2, ".z");
	assert_int_equal(access(path, F_OK), 0);
	free(path);

	/* Torn in its first line: kept as it is and recovered, the chain going on from the
	 * seal before it. */
	char *buf;
	size_t len;

	path = seg_path(f, NULL, 3, "");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(write(fd, "{\"seq\":", 7), 7);
	close(fd);
	open_sealer(f, &s, false);
	sealer_close(&s);
	buf = slurp(path, &len);
	assert_int_equal(len, 7);
	assert_worm(path, FS_IMMUTABLE_FL);
	free(buf);
	free(path);
	path = seg_path(f, NULL, 4, ".z");
	buf = slurp(path, &len);
	assert_non_null(strstr(buf, "\"valid_bytes\":0,\"torn_bytes\":7"));
	free(buf);
	free(path);
}

/* A crash between a seal and its copies: the next open completes HEAD and the replica. */
static void test_replica_completed_after_crash(void **state)
{
	struct fx *f = *state;
	struct sealer s;
	char *rz, *rhead, *lhead, *a, *b;
	size_t la, lb;

	open_sealer(f, &s, true);
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r1\"}");
	assert_int_equal(sealer_seal(&s, "run_end"), 0);
	sealer_close(&s);
	rz = seg_path(f, f->rep, 1, ".z");
	rhead = xasprintf("%s/HEAD", f->rep);
	lhead = xasprintf("%s/HEAD", f->log);
	a = xasprintf("chattr -R -i %s 2>/dev/null; true", f->tmp);
	assert_int_equal(system(a), 0);
	free(a);
	assert_int_equal(unlink(rz), 0);
	assert_int_equal(unlink(rhead), 0);
	assert_int_equal(unlink(lhead), 0);
	open_sealer(f, &s, true);
	sealer_close(&s);
	assert_int_equal(access(rz, F_OK), 0);
	a = slurp(rhead, &la);
	b = slurp(lhead, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	assert_non_null(strstr(a, "\"kind\":\"seal\""));
	free(a);
	free(b);
	free(rz);
	free(rhead);
	free(lhead);
}

/* What the sealer has to say goes to the caller's callback, never to stderr. */
struct said {
	int n, notices, warnings;
	char last[1024];
};

static void on_notice(void *ctx, enum sealer_level level, const char *msg)
{
	struct said *w = ctx;

	w->n++;
	if (level == SEALER_NOTICE)
		w->notices++;
	else
		w->warnings++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

static void test_notices_to_callback(void **state)
{
	struct fx *f = *state;
	struct said w = {0};
	struct sealer s;
	char keys[160], e[1024], tmpl[] = "/tmp/runseal-sealer-err.XXXXXX", *out;
	struct sealer_opts o = {.log_dir = f->log, .key_dir = keys, .owner = getuid()};
	int fd = mkstemp(tmpl), saved = dup(2);
	size_t len;

	snprintf(keys, sizeof(keys), "%s/newkeys", f->tmp);
	o.notice = on_notice;
	o.notice_ctx = &w;
	assert_true(fd >= 0 && saved >= 0);
	dup2(fd, 2);
	/* First use: keys are made, and that is a notice. */
	assert_int_equal(sealer_open(&s, &o, e, sizeof(e)), 0);
	assert_int_equal(w.notices, 1);
	assert_int_equal(strncmp(w.last, "created signing keys in ", 24), 0);
	assert_non_null(strstr(w.last, keys));
	assert_null(strchr(w.last, '\n'));
	append(&s, REC_RUN_START, "{\"kind\":\"run_start\",\"time\":\"x\",\"run\":\"r1\"}");
	sealer_flush(&s);
	/* A crash (no seal, no close), then the next open: a warning about the recovery. */
	close(s.fd);
	s.fd = -1;
	sealer_close(&s);
	assert_int_equal(sealer_open(&s, &o, e, sizeof(e)), 0);
	assert_int_equal(w.notices, 1);
	assert_true(w.warnings >= 1);
	assert_non_null(strstr(w.last, "recovered after a crash"));
	sealer_close(&s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	out = slurp(tmpl, &len);
	assert_int_equal(len, 0); /* nothing on stderr */
	free(out);
	unlink(tmpl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_chain_seal_and_signature, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_continues_chain_and_replicates, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_crash_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notices_to_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_and_foreign_host, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_single_writer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_segment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replica_completed_after_crash, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
