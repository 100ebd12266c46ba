/* Unit tests for user/verify.c: small sealed logs are built here, entry by entry, with real
 * keys (keys_generate with 4 short epochs), then tampered with the way an attacker with
 * write access would, and the verifier must name exactly the expected problem. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "json.h"
#include "keys.h"
#include "logfmt.h"
#include "logread.h"
#include "util.h"
#include "verify.h"

#define MAXL 256
#define SEC  1000000000ull

/* ---- a log builder ------------------------------------------------------------------------ */

struct tl {
	char base[64], keys[96], log[96];
	unsigned char host[16], root[32];
	char host_hex[33], root_id[65];
	struct epoch_schedule s;
	unsigned char seed0[32];
	uint64_t t0, tns;
	char *line[MAXL]; /* without '\n' */
	unsigned seg[MAXL];
	size_t n;
	uint64_t seq;
	unsigned char last[32];
	unsigned cur;
};

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *p = xasprintf("%s/%s", path, de->d_name);

		rm_rf(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

/* The directory of the log being built, removed by the teardown even when an assertion
 * failed half-way through a test. */
static char live_base[64];

static int teardown(void **state)
{
	(void)state;
	if (live_base[0])
		rm_rf(live_base);
	live_base[0] = '\0';
	return 0;
}

static void make_keys(const char *dir, uint64_t t0)
{
	char err[KEYS_ERRLEN], rid[65], hid[33];

	if (keys_generate(dir, t0, 3600, 4, 60, 5, getuid(), rid, hid, err, sizeof(err)) < 0)
		fail_msg("keys_generate: %s", err);
}

static void tl_init(struct tl *t)
{
	char path[160], err[KEYS_ERRLEN], buf[128];
	uint64_t e = 0;
	int fd;
	ssize_t r;

	memset(t, 0, sizeof(*t));
	snprintf(t->base, sizeof(t->base), "/tmp/test_verify.XXXXXX");
	assert_non_null(mkdtemp(t->base));
	snprintf(live_base, sizeof(live_base), "%s", t->base);
	snprintf(t->keys, sizeof(t->keys), "%s/keys", t->base);
	snprintf(t->log, sizeof(t->log), "%s/log", t->base);
	assert_int_equal(mkdir(t->log, 0700), 0);
	t->t0 = (uint64_t)time(NULL) - 100;
	make_keys(t->keys, t->t0);
	snprintf(path, sizeof(path), "%s/root.pub", t->keys);
	assert_int_equal(keys_load_root_pub(path, t->host, t->root, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/epochs.pub", t->keys);
	assert_int_equal(keys_load_schedule(path, t->root, &t->s, err, sizeof(err)), 0);
	hex(t->host, 16, t->host_hex);
	key_id(t->root, t->root_id);
	/* epoch.key: "<16 digits> <64 hex>\n", epoch 0 right after keygen. */
	snprintf(path, sizeof(path), "%s/epoch.key", t->keys);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	r = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(r, 82);
	for (int i = 0; i < 16; i++)
		e = e * 10 + (uint64_t)(buf[i] - '0');
	assert_int_equal(e, 0);
	assert_int_equal(unhex(buf + 17, 64, t->seed0, 32), 0);
	t->tns = (t->t0 + 10) * SEC;
}

static void tl_free(struct tl *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->line[i]);
	keys_free_schedule(&t->s);
	rm_rf(t->base);
	live_base[0] = '\0';
}

static void __attribute__((format(printf, 2, 3))) add(struct tl *t, const char *fmt, ...)
{
	char prev[65], *body, *line;
	va_list ap;

	va_start(ap, fmt);
	assert_true(vasprintf(&body, fmt, ap) >= 0);
	va_end(ap);
	hex(t->last, 32, prev);
	line =
	    xasprintf("{\"seq\":%llu,\"prev\":\"%s\",%s}", (unsigned long long)t->seq, prev, body);
	free(body);
	entry_hash(line, strlen(line), t->last);
	assert_true(t->n < MAXL);
	t->line[t->n] = line;
	t->seg[t->n++] = t->cur;
	t->seq++;
	t->tns += 1000000; /* 1 ms per entry */
}

static const char *now_str(struct tl *t, char buf[TIME_LEN])
{
	fmt_time(t->tns, buf);
	return buf;
}

static void tl_open(struct tl *t, unsigned n)
{
	char tb[TIME_LEN];

	t->cur = n;
	if (t->seq == 0)
		add(t,
		    "\"kind\":\"genesis\",\"time\":\"%s\",\"format\":\"runseal-log/1\",\"host_id\":"
		    "\"%s\",\"hostname\":\"test\",\"root_key\":\"%s\",\"t0\":%llu,"
		    "\"epoch_seconds\":3600,\"epochs\":4,\"max_interval\":60,\"late_slack\":5",
		    now_str(t, tb), t->host_hex, t->root_id, (unsigned long long)t->t0);
	add(t,
	    "\"kind\":\"segment\",\"time\":\"%s\",\"segment\":%u,\"host_id\":\"%s\",\"worm\":"
	    "\"append-only\",\"fsync\":\"boundary\"",
	    now_str(t, tb), n, t->host_hex);
}

static void tl_rec(struct tl *t, const char *path)
{
	char tb[TIME_LEN];

	add(t,
	    "\"kind\":\"open\",\"time\":\"%s\",\"run\":\"0190aaaa-0000-7000-8000-000000000001\","
	    "\"step\":\"s1\",\"pid\":100,\"ppid\":1,\"tid\":100,\"uid\":0,\"euid\":0,\"gid\":0,"
	    "\"comm\":\"cat\",\"syscall\":\"openat\",\"path\":\"%s\",\"path_arg\":\"%s\","
	    "\"flags\":[\"read\",\"cloexec\"],\"fd\":3,\"ret\":3",
	    now_str(t, tb), path, path);
}

static void seed_of(const struct tl *t, uint64_t e, unsigned char seed[32])
{
	memcpy(seed, t->seed0, 32);
	for (uint64_t i = 0; i < e; i++)
		epoch_seed_next(seed, seed);
}

/* Seals the current segment with epoch e's key at time tns. */
static void tl_seal_at(struct tl *t, uint64_t e, uint64_t tns)
{
	unsigned char seed[32], pub[32], sig[64], msg[SEAL_MSG_MAX];
	char tb[TIME_LEN], lh[65], kh[65], sh[129];
	uint64_t first = UINT64_MAX, count;
	size_t ml;

	for (size_t i = 0; i < t->n; i++)
		if (t->seg[i] == t->cur) {
			unsigned char p[32];

			assert_true(entry_prefix(t->line[i], strlen(t->line[i]), &first, p) > 0);
			break;
		}
	count = t->seq - first;
	t->tns = tns;
	fmt_time(tns, tb);
	seed_of(t, e, seed);
	assert_int_equal(ed25519_public(seed, pub), 0);
	hex(t->last, 32, lh);
	hex(pub, 32, kh);
	/* Signed: the whole line up to its sig field. */
	char prev[65], *unsigned_line;

	hex(t->last, 32, prev);
	unsigned_line = xasprintf(
	    "{\"seq\":%llu,\"prev\":\"%s\",\"kind\":\"seal\",\"time\":\"%s\",\"segment\":%u,"
	    "\"first_seq\":%llu,\"count\":%llu,\"last_hash\":\"%s\",\"reason\":\"run_end\","
	    "\"epoch\":%llu,\"epoch_key\":\"%s\"",
	    (unsigned long long)t->seq, prev, tb, t->cur, (unsigned long long)first,
	    (unsigned long long)count, lh, (unsigned long long)e, kh);
	ml = seal_message(msg, t->host, unsigned_line, strlen(unsigned_line));
	assert_true(ml > 0);
	assert_int_equal(ed25519_sign(seed, msg, ml, sig), 0);
	free(unsigned_line);
	hex(sig, 64, sh);
	add(t,
	    "\"kind\":\"seal\",\"time\":\"%s\",\"segment\":%u,\"first_seq\":%llu,\"count\":%llu,"
	    "\"last_hash\":\"%s\",\"reason\":\"run_end\",\"epoch\":%llu,\"epoch_key\":\"%s\","
	    "\"sig\":\"%s\"",
	    tb, t->cur, (unsigned long long)first, (unsigned long long)count, lh,
	    (unsigned long long)e, kh, sh);
}

static void tl_seal(struct tl *t)
{
	tl_seal_at(t, 0, t->tns + 1000000);
}

static bool is_seal(const char *l)
{
	return strstr(l, "\"kind\":\"seal\"") != NULL;
}

static void put_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static char *seg_path(const char *dir, unsigned n, bool z)
{
	return xasprintf("%s/seg-%016u.log%s", dir, n, z ? ".z" : "");
}

/* Writes segments 1..max of t into dir (sealed ones compressed, the others plain) and HEAD
 * (the last seal line) when head. */
static void tl_write(struct tl *t, const char *dir, unsigned max, bool head)
{
	const char *headline = NULL;

	mkdir(dir, 0700);
	for (unsigned n = 1; n <= max; n++) {
		struct jbuf b = {0};
		bool sealed = false;

		for (size_t i = 0; i < t->n; i++) {
			if (t->seg[i] != n)
				continue;
			jb_raw(&b, t->line[i], strlen(t->line[i]));
			jb_putc(&b, '\n');
			sealed = is_seal(t->line[i]);
			if (sealed)
				headline = t->line[i];
		}
		if (!b.len)
			continue;
		char *p = seg_path(dir, n, sealed);

		if (sealed) {
			unsigned char *z;
			size_t zl;

			assert_int_equal(z_deflate(b.p, b.len, &z, &zl), 0);
			put_file(p, z, zl);
			free(z);
		} else {
			put_file(p, b.p, b.len);
		}
		free(p);
		jb_free(&b);
	}
	if (head && headline) {
		char *p = xasprintf("%s/HEAD", dir), *h = xasprintf("%s\n", headline);

		put_file(p, h, strlen(h));
		free(p);
		free(h);
	}
}

/* The standard log: three sealed segments, seq 0-19.
 *   seg 1: genesis 0, segment 1, records 2-5, seal 6
 *   seg 2: segment 7, records 8-12, seal 13
 *   seg 3: segment 14, records 15-18, seal 19 */
static void tl_standard(struct tl *t, unsigned nseg)
{
	char p[64];
	unsigned k = 0;

	for (unsigned n = 1; n <= nseg; n++) {
		tl_open(t, n);
		for (unsigned i = 0; i < (n == 2 ? 5u : 4u); i++) {
			snprintf(p, sizeof(p), "/etc/file-%u", k++);
			tl_rec(t, p);
		}
		tl_seal(t);
	}
}

/* ---- tampering on disk ---------------------------------------------------------------------- */

static void seg_load(const char *dir, unsigned n, char **buf, size_t *len, bool *z)
{
	char err[512], *p = seg_path(dir, n, true);

	*z = access(p, F_OK) == 0;
	if (!*z) {
		free(p);
		p = seg_path(dir, n, false);
	}
	if (segment_read(p, buf, len, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	free(p);
}

static void seg_store(const char *dir, unsigned n, const char *buf, size_t len, bool z)
{
	char *p = seg_path(dir, n, z);

	if (z) {
		unsigned char *zb;
		size_t zl;

		assert_int_equal(z_deflate(buf, len, &zb, &zl), 0);
		put_file(p, zb, zl);
		free(zb);
	} else {
		put_file(p, buf, len);
	}
	free(p);
}

/* Offset of the line holding seq in buf, and its length with the '\n'. */
static size_t find_seq(const char *buf, size_t len, uint64_t seq, size_t *llen)
{
	size_t off = 0;

	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (buf + off)) + 1 : len - off;
		unsigned char p[32];
		uint64_t s;

		if (entry_prefix(buf + off, l, &s, p) > 0 && s == seq) {
			*llen = l;
			return off;
		}
		off += l;
	}
	fail_msg("seq %llu not found", (unsigned long long)seq);
	return 0;
}

/* ---- running the verifier ------------------------------------------------------------------- */

struct prob {
	char level[16], kind[32], file[256], run[64], message[1024];
	uint64_t seq, off;
};

static struct prob probs[2048];
static size_t nprobs, nnotes;
static struct verify_summary sum;
static char *out_text;

/* The verifier's problems, as it hands them over. */
static void take_problem(void *ctx, const struct verify_problem *p)
{
	struct prob *q = &probs[nprobs];

	(void)ctx;
	assert_non_null(p->kind);
	assert_non_null(p->file);
	assert_non_null(p->message);
	if (p->level == VERIFY_NOTE) {
		nnotes++;
		return;
	}
	assert_true(p->level == VERIFY_ERROR || p->level == VERIFY_WARNING);
	snprintf(q->level, sizeof(q->level), "%s", p->level == VERIFY_ERROR ? "error" : "warning");
	snprintf(q->kind, sizeof(q->kind), "%s", p->kind);
	snprintf(q->file, sizeof(q->file), "%s", p->file);
	snprintf(q->run, sizeof(q->run), "%s", p->run ? p->run : "");
	snprintf(q->message, sizeof(q->message), "%s", p->message);
	q->seq = p->seq;
	q->off = p->offset;
	if (nprobs < 2047)
		nprobs++;
}

/* Runs f with stdout captured into out_text. */
static int capture(int (*f)(void *), void *arg)
{
	char tmpl[] = "/tmp/test_verify.out.XXXXXX";
	int fd = mkstemp(tmpl), saved, rc;
	char *buf, err[256];
	size_t len;

	assert_true(fd >= 0);
	fflush(stdout);
	saved = dup(1);
	dup2(fd, 1);
	close(fd);
	rc = f(arg);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	assert_int_equal(segment_read(tmpl, &buf, &len, err, sizeof(err)), 0);
	unlink(tmpl);
	free(out_text);
	out_text = buf;
	return rc;
}

static int call_verify(void *o)
{
	return verify_log(o, &sum);
}

/* Runs verify_log with the problems collected into probs; the rules never print. */
static int run_opts(struct verify_opts *o, verify_entry_fn fn, void *ctx)
{
	int rc;

	nprobs = nnotes = 0;
	o->problem = take_problem;
	o->entry = fn;
	o->ctx = ctx;
	rc = capture(call_verify, o);
	assert_int_equal(strlen(out_text), 0);
	assert_int_equal(rc == 2, sum.err[0] != '\0');
	return rc;
}

struct cmd {
	int (*fn)(int argc, char **argv);
	int argc;
	char **argv;
};

static int call_cmd(void *arg)
{
	struct cmd *c = arg;

	return c->fn(c->argc, c->argv);
}

/* A command's output, from a fresh argv (getopt permutes it). */
#define RUN_CMD(fn_, ...)                                                                          \
	({                                                                                         \
		char *a_[] = {__VA_ARGS__, NULL};                                                  \
		struct cmd c_ = {fn_, (int)(sizeof(a_) / sizeof(a_[0])) - 1, a_};                  \
		capture(call_cmd, &c_);                                                            \
	})

/* Whether a problem's message holds s. */
static bool said(const char *s)
{
	for (size_t i = 0; i < nprobs; i++)
		if (strstr(probs[i].message, s))
			return true;
	return false;
}

static int run(struct tl *t, const char *pub)
{
	struct verify_opts o = {.log_dir = t->log, .key_dir = t->keys, .pub = pub};

	return run_opts(&o, NULL, NULL);
}

static size_t count_errors(void)
{
	size_t n = 0;

	for (size_t i = 0; i < nprobs; i++)
		n += !strcmp(probs[i].level, "error");
	return n;
}

static void dump(void)
{
	for (size_t i = 0; i < nprobs; i++)
		print_message("  %s %s %s seq %lld off %lld\n", probs[i].level, probs[i].kind,
			      probs[i].file, (long long)probs[i].seq, (long long)probs[i].off);
}

static const struct prob *find(const char *kind)
{
	for (size_t i = 0; i < nprobs; i++)
		if (!strcmp(probs[i].kind, kind))
			return &probs[i];
	return NULL;
}

/* Exactly one error, of kind, in a file ending with file, at seq (UINT64_MAX: any). */
static const struct prob *expect_one(int rc, const char *kind, const char *file, uint64_t seq)
{
	const struct prob *p = find(kind);
	size_t fl = strlen(file);

	if (rc != 1 || count_errors() != 1 || !p || strcmp(p->level, "error") ||
	    strlen(p->file) < fl || strcmp(p->file + strlen(p->file) - fl, file) ||
	    (seq != UINT64_MAX && p->seq != seq)) {
		print_message("rc %d, wanted one %s in %s seq %lld; got:\n", rc, kind, file,
			      (long long)seq);
		dump();
		fail();
	}
	return p;
}

#define SEG1 "seg-0000000000000001.log.z"
#define SEG2 "seg-0000000000000002.log.z"
#define SEG3 "seg-0000000000000003.log.z"

/* ---- tests ------------------------------------------------------------------------------------
 */

struct seen {
	struct tl *t;
	uint64_t next;
	bool bad;
};

static int collect(void *ctx, const char *line, size_t len, uint64_t seq,
		   const unsigned char hash[32])
{
	struct seen *s = ctx;
	unsigned char h[32];

	entry_hash(line, len, h);
	if (seq != s->next || memcmp(h, hash, 32) || seq >= s->t->n ||
	    strlen(s->t->line[seq]) != len || memcmp(s->t->line[seq], line, len))
		s->bad = true;
	s->next++;
	return 0;
}

static void test_good(void **state)
{
	struct tl t;
	struct seen s = {&t, 0, false};
	struct verify_opts o;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys};
	assert_int_equal(run_opts(&o, collect, &s), 0);
	assert_int_equal(count_errors(), 0);
	assert_false(s.bad);
	assert_int_equal(s.next, 20);
	/* The summary: counts, the seq range delivered, the keys it was checked with. */
	assert_int_equal(sum.entries, 20);
	assert_int_equal(sum.segments, 3);
	assert_int_equal(sum.seals, 3);
	assert_true(sum.have_seal);
	assert_int_equal(sum.last_seal_seq, 19);
	assert_true(sum.any);
	assert_int_equal(sum.first_seq, 0);
	assert_int_equal(sum.last_seq, 19);
	assert_int_equal(sum.errors, 0);
	assert_int_equal(sum.warnings, nprobs);
	assert_int_equal(strlen(sum.root_key), 64);
	assert_int_equal(sum.nepoch_keys, 1); /* the three seals of one epoch */
	assert_int_equal(strlen(sum.epoch_keys[0]), 64);
	/* The command's text summary. */
	assert_int_equal(RUN_CMD(verify_cmd, "verify", t.log, "--key-dir", t.keys), 0);
	assert_non_null(strstr(out_text, "ok: 20 entries, 3 segments, 3 seals, last seal seq 19"));
	/* With --strict the (worm) warnings of a test directory fail it; -q prints nothing. */
	o.strict = true;
	assert_int_equal(run_opts(&o, NULL, NULL), 1);
	assert_int_equal(sum.errors, nprobs);
	assert_int_equal(
	    RUN_CMD(verify_cmd, "verify", t.log, "--key-dir", t.keys, "--strict", "-q"), 1);
	assert_int_equal(strlen(out_text), 0);
	tl_free(&t);
}

static void test_unsealed_tail(void **state)
{
	struct tl t;
	struct seen s = {&t, 0, false};
	struct verify_opts o;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_open(&t, 4);
	tl_rec(&t, "/etc/active");
	tl_write(&t, t.log, 4, true);
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys};
	assert_int_equal(run_opts(&o, collect, &s), 0);
	assert_int_equal(count_errors(), 0);
	assert_non_null(find("unsealed_tail"));
	assert_int_equal(s.next, 22); /* the chained, unsealed entries too */
	assert_false(s.bad);
	tl_free(&t);
}

static void test_modified(void **state)
{
	struct tl t;
	char *buf, *p;
	size_t len, ll, off;
	bool z;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	seg_load(t.log, 2, &buf, &len, &z);
	off = find_seq(buf, len, 10, &ll);
	p = memmem(buf + off, ll, "file-", 5);
	assert_non_null(p);
	p[4] = 'X';
	seg_store(t.log, 2, buf, len, z);
	const struct prob *pr = expect_one(run(&t, NULL), "modified", SEG2, 10);
	assert_int_equal(pr->off, off);
	/* The last record before a seal: same answer. */
	p[4] = '-';
	off = find_seq(buf, len, 12, &ll);
	p = memmem(buf + off, ll, "file-", 5);
	p[4] = 'X';
	seg_store(t.log, 2, buf, len, z);
	expect_one(run(&t, NULL), "modified", SEG2, 12);
	free(buf);
	tl_free(&t);
}

static void test_modified_prev(void **state)
{
	struct tl t;
	char *buf;
	size_t len, ll, off;
	bool z;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	/* Only the prev field of entry 10 is changed: reported at 10, not at 9. */
	seg_load(t.log, 2, &buf, &len, &z);
	off = find_seq(buf, len, 10, &ll);
	char *c = buf + off + strlen("{\"seq\":10,\"prev\":\"");

	*c = *c == '0' ? '1' : '0';
	seg_store(t.log, 2, buf, len, z);
	expect_one(run(&t, NULL), "modified", SEG2, 10);
	free(buf);
	tl_free(&t);
}

static void test_deleted(void **state)
{
	struct tl t;
	char *buf;
	size_t len, ll, off;
	bool z;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	seg_load(t.log, 2, &buf, &len, &z);
	off = find_seq(buf, len, 10, &ll);
	memmove(buf + off, buf + off + ll, len - off - ll);
	seg_store(t.log, 2, buf, len - ll, z);
	expect_one(run(&t, NULL), "deleted", SEG2, 10);
	free(buf);
	tl_free(&t);
}

static void test_inserted(void **state)
{
	struct tl t;
	char *buf, *nb, ph[65], *extra;
	unsigned char h[32];
	size_t len, ll, off, pl, poff;
	bool z;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	seg_load(t.log, 2, &buf, &len, &z);
	/* A plausible extra seq 10 linked to 9, before the real 10. */
	poff = find_seq(buf, len, 9, &pl);
	entry_hash(buf + poff, pl - 1, h);
	hex(h, 32, ph);
	extra = xasprintf("{\"seq\":10,\"prev\":\"%s\",\"kind\":\"exec\",\"time\":"
			  "\"2026-01-01T00:00:00.000000000Z\",\"argv\":[\"rm\",\"-rf\",\"/\"]}\n",
			  ph);
	off = find_seq(buf, len, 10, &ll);
	nb = xmalloc(len + strlen(extra));
	memcpy(nb, buf, off);
	memcpy(nb + off, extra, strlen(extra));
	memcpy(nb + off + strlen(extra), buf + off, len - off);
	seg_store(t.log, 2, nb, len + strlen(extra), z);
	const struct prob *p = expect_one(run(&t, NULL), "inserted", SEG2, 10);
	assert_int_equal(p->off, off); /* the extra one, not the real one after it */
	free(nb);
	free(extra);
	free(buf);
	tl_free(&t);
}

static void test_reordered(void **state)
{
	struct tl t;
	char *buf, *nb;
	size_t len, l10, l11, o10, o11;
	bool z;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	seg_load(t.log, 2, &buf, &len, &z);
	o10 = find_seq(buf, len, 10, &l10);
	o11 = find_seq(buf, len, 11, &l11);
	assert_int_equal(o11, o10 + l10);
	nb = xmalloc(len);
	memcpy(nb, buf, len);
	memcpy(nb + o10, buf + o11, l11);
	memcpy(nb + o10 + l11, buf + o10, l10);
	seg_store(t.log, 2, nb, len, z);
	expect_one(run(&t, NULL), "reordered", SEG2, 11);
	free(nb);
	free(buf);
	tl_free(&t);
}

static void test_truncated(void **state)
{
	struct tl t;
	char *buf;
	size_t len, ll, off;
	bool z;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	seg_load(t.log, 3, &buf, &len, &z);
	off = find_seq(buf, len, 19, &ll);
	/* The seal cut in the middle. */
	seg_store(t.log, 3, buf, off + ll / 2, z);
	expect_one(run(&t, NULL), "truncated", SEG3, UINT64_MAX);
	/* The seal removed whole. */
	seg_store(t.log, 3, buf, off, z);
	expect_one(run(&t, NULL), "truncated", SEG3, UINT64_MAX);
	/* The last segment deleted, HEAD left: the log ends before HEAD. */
	char *p = seg_path(t.log, 3, true);

	unlink(p);
	free(p);
	expect_one(run(&t, NULL), "truncated", "", 19);
	free(buf);
	tl_free(&t);
}

static void test_missing_segment(void **state)
{
	struct tl t;
	char *p;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	p = seg_path(t.log, 2, true);
	unlink(p);
	free(p);
	expect_one(run(&t, NULL), "missing_segment", SEG3, UINT64_MAX);
	p = seg_path(t.log, 1, true);
	unlink(p);
	free(p);
	assert_int_equal(run(&t, NULL), 1);
	assert_non_null(find("missing_segment"));
	tl_free(&t);
}

static void test_wrong_pub(void **state)
{
	struct tl t;
	char *other, *pub;
	struct verify_opts o;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	other = xasprintf("%s/other", t.base);
	make_keys(other, t.t0);
	pub = xasprintf("%s/root.pub", other);
	/* Another root.pub with this log's epochs.pub... */
	assert_int_equal(run(&t, pub), 1);
	assert_int_equal(count_errors(), 2);
	assert_non_null(find("wrong_key"));
	assert_non_null(find("wrong_host"));
	/* ... or a whole other key set. */
	o = (struct verify_opts){.log_dir = t.log, .key_dir = other, .pub = pub};
	assert_int_equal(run_opts(&o, NULL, NULL), 1);
	assert_int_equal(count_errors(), 2);
	assert_non_null(find("wrong_key"));
	assert_non_null(find("wrong_host"));
	free(pub);
	free(other);
	tl_free(&t);
}

/* A seal re-signed (after a forgery) with a later epoch's key: everything agrees
 * cryptographically, but the records are older than any seal of that epoch allows. */
static void test_forward_security(void **state)
{
	struct tl t;
	char p[32];

	(void)state;
	tl_init(&t);
	tl_standard(&t, 2);
	tl_open(&t, 3);
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "/etc/forged-%d", i);
		tl_rec(&t, p);
	}
	tl_seal_at(&t, 1, (t.t0 + 3600 + 10) * SEC);
	tl_write(&t, t.log, 3, true);
	expect_one(run(&t, NULL), "late_record", SEG3, 14);
	tl_free(&t);
}

static void test_epoch_rules(void **state)
{
	struct tl t;

	(void)state;
	/* Epochs going backwards: segment 2 sealed in epoch 1, segment 3 in epoch 0. */
	tl_init(&t);
	tl_standard(&t, 1);
	t.tns = (t.t0 + 3600 + 5) * SEC;
	tl_open(&t, 2);
	tl_rec(&t, "/a");
	tl_seal_at(&t, 1, t.tns + SEC);
	t.tns = (t.t0 + 20) * SEC;
	tl_open(&t, 3);
	tl_rec(&t, "/b");
	tl_seal(&t);
	tl_write(&t, t.log, 3, true);
	expect_one(run(&t, NULL), "epoch", SEG3, t.seq - 1);
	tl_free(&t);

	/* A seal time outside its epoch (epoch 0's key used in epoch 1's time). */
	tl_init(&t);
	tl_standard(&t, 1);
	t.tns = (t.t0 + 3600 + 5) * SEC;
	tl_open(&t, 2);
	tl_rec(&t, "/a");
	tl_seal_at(&t, 0, t.tns + SEC);
	tl_write(&t, t.log, 2, true);
	expect_one(run(&t, NULL), "epoch", SEG2, t.seq - 1);
	tl_free(&t);
}

static void test_bad_signature(void **state)
{
	struct tl t;
	char *buf, *p;
	size_t len, ll, off;
	bool z;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	seg_load(t.log, 2, &buf, &len, &z);
	off = find_seq(buf, len, 13, &ll);
	p = memmem(buf + off, ll, "\"sig\":\"", 7);
	p[7] = p[7] == 'a' ? 'b' : 'a';
	seg_store(t.log, 2, buf, len, z);
	expect_one(run(&t, NULL), "bad_signature", SEG2, 13);
	free(buf);
	tl_free(&t);
}

/* The signature covers every field of the seal: a reason (or seq, kind...) edited is a bad
 * signature, not a silent change. */
static void test_seal_fields_signed(void **state)
{
	static const char *const edits[][2] = {
	    {"\"reason\":\"run_end\"", "\"reason\":\"size\""},
	    {"\"kind\":\"seal\",", "\"kind\":\"seal\",\"x\":1,"},
	};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct tl t;
		char *buf, *p, *nb;
		size_t len, ll, off, fl = strlen(edits[i][0]), tl = strlen(edits[i][1]);
		bool z;

		tl_init(&t);
		tl_standard(&t, 3);
		tl_write(&t, t.log, 3, true);
		seg_load(t.log, 2, &buf, &len, &z);
		off = find_seq(buf, len, 13, &ll);
		p = memmem(buf + off, ll, edits[i][0], fl);
		assert_non_null(p);
		nb = xmalloc(len + tl);
		memcpy(nb, buf, (size_t)(p - buf));
		memcpy(nb + (p - buf), edits[i][1], tl);
		memcpy(nb + (p - buf) + tl, p + fl, len - (size_t)(p - buf) - fl);
		seg_store(t.log, 2, nb, len - fl + tl, z);
		expect_one(run(&t, NULL), "bad_signature", SEG2, 13);
		free(nb);
		free(buf);
		tl_free(&t);
	}
}

/* The seal cadence binds unsealed segments: entries of a crashed segment more than
 * max_interval + late_slack after the last seal before it are a sealed segment passed off
 * as a crash. Entries dated after the seal that covers them are an error too. */
static void test_crash_cadence(void **state)
{
	struct tl t;
	size_t valid = 0;
	char tb[TIME_LEN];

	(void)state;
	tl_init(&t);
	tl_standard(&t, 1); /* sealed at about t0 + 10 s */
	tl_open(&t, 2);
	tl_rec(&t, "/in-time");
	t.tns += 66 * SEC; /* 60 + 5, and a second more */
	tl_rec(&t, "/too-late");
	for (size_t i = 0; i < t.n; i++)
		if (t.seg[i] == 2)
			valid += strlen(t.line[i]) + 1;
	t.tns += 100 * SEC;
	tl_open(&t, 3);
	add(&t,
	    "\"kind\":\"recovery\",\"time\":\"%s\",\"file\":\"seg-0000000000000002.log\","
	    "\"segment\":2,\"valid_bytes\":%zu,\"torn_bytes\":0,\"last_seq\":9,\"sealed\":false",
	    now_str(&t, tb), valid);
	tl_seal(&t);
	tl_write(&t, t.log, 3, true);
	expect_one(run(&t, NULL), "late_record", "seg-0000000000000002.log", 9);
	tl_free(&t);

	/* The unsealed tail is held to it as well. */
	tl_init(&t);
	tl_standard(&t, 1);
	tl_open(&t, 2);
	t.tns += 70 * SEC;
	tl_rec(&t, "/tail");
	tl_write(&t, t.log, 2, true);
	expect_one(run(&t, NULL), "late_record", "seg-0000000000000002.log", 8);
	tl_free(&t);

	/* A record ten years ahead of its seal. */
	tl_init(&t);
	tl_standard(&t, 1);
	tl_open(&t, 2);
	{
		uint64_t now = t.tns;

		t.tns += 315360000ull * SEC;
		tl_rec(&t, "/future");
		t.tns = now;
	}
	tl_rec(&t, "/now");
	tl_seal(&t);
	tl_write(&t, t.log, 2, true);
	expect_one(run(&t, NULL), "future_record", SEG2, 8);
	tl_free(&t);
}

static void test_head(void **state)
{
	struct tl t;
	char *rep, *p, *h, *p2;
	const char *reps[1];
	struct verify_opts o;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	rep = xasprintf("%s/replica", t.base);
	reps[0] = rep;
	o = (struct verify_opts){
	    .log_dir = t.log, .key_dir = t.keys, .replicas = reps, .nreplicas = 1};
	/* A replica that missed the last seal: HEADs differ. */
	tl_write(&t, t.log, 3, true);
	tl_write(&t, rep, 2, true);
	expect_one(run_opts(&o, NULL, NULL), "head_mismatch", "replica/HEAD", 13);
	/* The log rolled back to segment 2 (HEAD rewritten to match); the replica is ahead. */
	rm_rf(rep);
	rm_rf(t.log);
	tl_write(&t, rep, 3, true);
	tl_write(&t, t.log, 2, true);
	assert_int_equal(run(&t, NULL), 0); /* alone, the log looks fine */
	expect_one(run_opts(&o, NULL, NULL), "rollback", "replica/HEAD", 19);
	/* HEAD one seal behind: a crash between seal and HEAD write, a warning. */
	rm_rf(t.log);
	tl_write(&t, t.log, 3, false);
	p = xasprintf("%s/HEAD", t.log);
	h = xasprintf("%s\n", t.line[13]);
	put_file(p, h, strlen(h));
	assert_int_equal(run(&t, NULL), 0);
	assert_non_null(find("head_stale"));
	/* HEAD of another seal than the last two: an error. */
	free(h);
	h = xasprintf("%s\n", t.line[6]);
	put_file(p, h, strlen(h));
	expect_one(run(&t, NULL), "head_mismatch", "HEAD", 6);
	/* A HEAD made up with a higher seq: a forgery, not a truncated log. */
	free(h);
	h = xasprintf("%s\n", t.line[19]);
	memcpy(h, "{\"seq\":29", 9);
	put_file(p, h, strlen(h));
	expect_one(run(&t, NULL), "bad_signature", "HEAD", 29);
	/* The real HEAD of a longer log, the newest segment deleted: truncated. */
	rm_rf(t.log);
	tl_write(&t, t.log, 3, true);
	p2 = seg_path(t.log, 3, true);
	unlink(p2);
	free(p2);
	expect_one(run(&t, NULL), "truncated", SEG2, 19);
	/* ... and with HEAD deleted too: HEAD is missing, an error. */
	unlink(p);
	expect_one(run(&t, NULL), "head_missing", "HEAD", UINT64_MAX);
	/* Without a replica, verify says it could not see a rollback; --strict fails. */
	rm_rf(t.log);
	tl_write(&t, t.log, 3, true);
	assert_int_equal(run(&t, NULL), 0);
	assert_non_null(find("no_replica"));
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys, .strict = true};
	assert_int_equal(run_opts(&o, NULL, NULL), 1); /* (the worm warnings fail too) */
	assert_non_null(find("no_replica"));
	assert_string_equal(find("no_replica")->level, "error");
	free(h);
	free(p);
	free(rep);
	tl_free(&t);
}

static void test_recovery(void **state)
{
	struct tl t;
	size_t valid = 0;
	char *p;
	int fd;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 1);
	tl_open(&t, 2);
	tl_rec(&t, "/crashed-1");
	tl_rec(&t, "/crashed-2");
	for (size_t i = 0; i < t.n; i++)
		if (t.seg[i] == 2)
			valid += strlen(t.line[i]) + 1;
	tl_open(&t, 3);
	char tb[TIME_LEN];

	add(&t,
	    "\"kind\":\"recovery\",\"time\":\"%s\",\"file\":\"seg-0000000000000002.log\","
	    "\"segment\":2,\"valid_bytes\":%zu,\"torn_bytes\":7,\"last_seq\":9,\"sealed\":false",
	    now_str(&t, tb), valid);
	tl_rec(&t, "/after");
	tl_seal(&t);
	tl_write(&t, t.log, 3, true);
	p = seg_path(t.log, 2, false);
	fd = open(p, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "{\"seq\":", 7), 7);
	close(fd);
	assert_int_equal(run(&t, NULL), 0);
	assert_non_null(find("recovery"));
	assert_int_equal(count_errors(), 0);
	/* A replica has only the sealed segments: the crashed one is explained, a warning. */
	char *rep = xasprintf("%s/replica", t.base), *rp;
	const char *reps[1] = {rep};
	struct verify_opts o = {
	    .log_dir = t.log, .key_dir = t.keys, .replicas = reps, .nreplicas = 1};

	tl_write(&t, rep, 3, true);
	rp = seg_path(rep, 2, false);
	unlink(rp);
	free(rp);
	assert_int_equal(run_opts(&o, NULL, NULL), 0);
	assert_non_null(find("missing_segment"));
	assert_int_equal(count_errors(), 0);
	/* ... but a sealed one missing there is an error. */
	rp = seg_path(rep, 1, true);
	unlink(rp);
	free(rp);
	expect_one(run_opts(&o, NULL, NULL), "missing_segment", "replica/" SEG3, UINT64_MAX);
	free(rep);
	/* The crashed segment cut further after the recovery: truncated. */
	assert_int_equal(truncate(p, (off_t)valid - 5), 0);
	expect_one(run(&t, NULL), "truncated", "seg-0000000000000002.log", UINT64_MAX);
	free(p);
	tl_free(&t);

	/* An unsealed segment that no recovery names: truncated. */
	tl_init(&t);
	tl_standard(&t, 1);
	tl_open(&t, 2);
	tl_rec(&t, "/x");
	tl_open(&t, 3);
	tl_rec(&t, "/y");
	tl_seal(&t);
	tl_write(&t, t.log, 3, true);
	expect_one(run(&t, NULL), "truncated", "seg-0000000000000002.log", UINT64_MAX);
	tl_free(&t);
}

static void test_io_errors(void **state)
{
	struct tl t;
	struct verify_opts o;
	char *p;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 1);
	tl_write(&t, t.log, 1, true);
	o = (struct verify_opts){.log_dir = "/nonexistent/log", .key_dir = t.keys};
	assert_int_equal(run_opts(&o, NULL, NULL), 2);
	assert_non_null(strstr(sum.err, "/nonexistent/log"));
	o = (struct verify_opts){.log_dir = t.log, .key_dir = "/nonexistent/keys"};
	assert_int_equal(run_opts(&o, NULL, NULL), 2);
	assert_non_null(strstr(sum.err, "/nonexistent/keys"));
	p = xasprintf("%s/epochs.pub", t.keys);
	unlink(p);
	free(p);
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys};
	assert_int_equal(run_opts(&o, NULL, NULL), 2);
	assert_non_null(strstr(sum.err, "epochs.pub"));
	tl_free(&t);
}

/* Hostile file names and garbage: escaped output, a bounded problem list. */
static void test_hostile(void **state)
{
	struct tl t;
	struct verify_opts o;
	struct jbuf b = {0};
	char *p;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 1);
	tl_write(&t, t.log, 1, true);
	p = xasprintf("%s/evil\x1b[31m\nerror: fake", t.log);
	put_file(p, "x", 1);
	free(p);
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys};
	assert_int_equal(run_opts(&o, NULL, NULL), 0);
	/* The rules give the name as it is; the command escapes it. */
	assert_non_null(find("unexpected"));
	assert_string_equal(find("unexpected")->file, "evil\x1b[31m\nerror: fake");
	assert_int_equal(RUN_CMD(verify_cmd, "verify", t.log, "--key-dir", t.keys), 0);
	assert_null(strchr(out_text, '\x1b'));
	assert_non_null(strstr(out_text, "evil\\x1b[31m\\x0aerror: fake"));
	/* 3000 garbage lines in a second segment: every one to the callback, the first 1000
	 * listed by the command. */
	for (int i = 0; i < 3000; i++)
		jb_raw(&b, "garbage\n", 8);
	p = seg_path(t.log, 2, false);
	put_file(p, b.p, b.len);
	free(p);
	jb_free(&b);
	assert_int_equal(run_opts(&o, NULL, NULL), 1);
	assert_true(sum.errors >= 3000);
	assert_true(nprobs > 2000);
	assert_int_equal(RUN_CMD(verify_cmd, "verify", t.log, "--key-dir", t.keys, "--json"), 1);
	{
		size_t lines = 0;

		for (const char *c = out_text; *c; c++)
			lines += *c == '\n';
		assert_int_equal(lines, 1000 + 1 + 1); /* problems, the limit note, the summary */
	}
	assert_non_null(strstr(out_text, "\"kind\":\"limit\""));
	tl_free(&t);
}

static void test_show(void **state)
{
	struct tl t;
	char *argv[8], *out, hx[65];
	unsigned char h[32];
	int saved, fd, rc, argc;
	char tmpl[] = "/tmp/test_verify.show.XXXXXX", err[256];
	size_t len;

	(void)state;
	tl_init(&t);
	tl_open(&t, 1);
	tl_rec(&t, "/tmp/\\u001b]0;pwned\\u0007"); /* as the record stream escapes it */
	tl_rec(&t, "/etc/passwd");
	tl_rec(&t, "/tmp/caf\xc3\xa9\\udcff"); /* UTF-8, and the byte 0xff as encoded */
	tl_seal(&t);
	tl_write(&t, t.log, 1, true);
#define ARGS(...)                                                                                  \
	do {                                                                                       \
		char *a_[] = {"show", t.log, "--key-dir", t.keys, __VA_ARGS__ NULL};               \
		memcpy(argv, a_, sizeof(a_));                                                      \
		argc = (int)(sizeof(a_) / sizeof(a_[0])) - 1;                                      \
	} while (0)
	fd = mkstemp(tmpl);
	fflush(stdout);
	saved = dup(1);
	dup2(fd, 1);
	close(fd);
	/* getopt permutes argv: a fresh one per call. */
	ARGS("--json", );
	rc = show_cmd(argc, argv);
	fflush(stdout);
	ARGS("--run", "0190aaaa-0000-7000-8000-000000000001", );
	rc |= show_cmd(argc, argv);
	fflush(stdout);
	ARGS();
	rc |= show_cmd(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	assert_int_equal(rc, 0);
	assert_int_equal(segment_read(tmpl, &out, &len, err, sizeof(err)), 0);
	unlink(tmpl);
	/* JSON: 6 entries with their own hash; --run: the 3 records; text: 6 lines. */
	entry_hash(t.line[0], strlen(t.line[0]), h);
	hex(h, 32, hx);
	char *first = xasprintf("{\"seq\":0,\"hash\":\"%s\",\"kind\":\"genesis\"", hx);

	assert_memory_equal(out, first, strlen(first));
	free(first);
	size_t lines = 0;

	for (size_t i = 0; i < len; i++)
		lines += out[i] == '\n';
	assert_int_equal(lines, 6 + 3 + 6);
	assert_null(memchr(out, '\x1b', len));
	assert_non_null(strstr(out, "/tmp/\\x1b]0;pwned\\x07 [read,cloexec] fd 3"));
	/* The one terminal escaper: printable UTF-8 as is, an invalid byte as \xNN. */
	assert_non_null(strstr(out, "  s1  open  /tmp/caf\xc3\xa9\\xff [read,cloexec] fd 3\n"));
	free(out);
	tl_free(&t);
}

/* tests/vectors: the committed log verifies and every entry hashes as expected.txt says. */
struct vexp {
	char hashes[64][65];
	size_t n, seen;
	bool bad;
};

static int vcheck(void *ctx, const char *line, size_t len, uint64_t seq,
		  const unsigned char hash[32])
{
	struct vexp *x = ctx;
	char hx[65];

	(void)line;
	(void)len;
	hex(hash, 32, hx);
	if (seq != x->seen || seq >= x->n || strcmp(hx, x->hashes[seq]))
		x->bad = true;
	x->seen++;
	return 0;
}

static void test_vector(void **state)
{
	struct vexp x = {0};
	struct verify_opts o = {.log_dir = "tests/vectors/log",
				.key_dir = "tests/vectors",
				.pub = "tests/vectors/root.pub",
				.entry = vcheck,
				.ctx = &x};
	char line[256];
	FILE *f = fopen("tests/vectors/expected.txt", "re");

	(void)state;
	if (!f)
		skip(); /* not run from the repository's top directory */
	while (fgets(line, sizeof(line), f)) {
		unsigned long long seq;

		if (line[0] == '#')
			continue;
		assert_int_equal(sscanf(line, "%llu %64s", &seq, x.hashes[x.n]), 2);
		assert_int_equal(seq, x.n);
		x.n++;
	}
	fclose(f);
	assert_true(x.n > 0);
	assert_int_equal(verify_log(&o, NULL), 0);
	assert_false(x.bad);
	assert_int_equal(x.seen, x.n);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The verdict as tests/vectors/cases/NAME/expect writes it: ok, or failed and the sorted
 * kinds of the errors. */
static void verdict(int rc, char *out, size_t cap)
{
	const char *k[64] = {0};
	size_t n = 0;

	for (size_t i = 0; i < nprobs; i++) {
		bool seen = false;

		if (strcmp(probs[i].level, "error"))
			continue;
		for (size_t j = 0; j < n; j++)
			seen |= !strcmp(k[j], probs[i].kind);
		if (!seen && n < 64)
			k[n++] = probs[i].kind;
	}
	qsort(k, n, sizeof(k[0]), str_cmp);
	snprintf(out, cap, "%s", rc == 0 ? "ok" : rc == 1 ? "failed" : "unusable");
	for (size_t j = 0; j < n; j++) {
		strncat(out, " ", cap - strlen(out) - 1);
		strncat(out, k[j], cap - strlen(out) - 1);
	}
}

/* Every case of tests/vectors/cases gets the verdict its expect file states: the cases of
 * docs/FORMAT.md on which an independent verifier must agree with this one. */
static void test_vector_cases(void **state)
{
	DIR *d = opendir("tests/vectors/cases");
	struct dirent *de;
	unsigned n = 0, bad = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d))) {
		char kd[512], pub[600], log[600], exp[600], want[256] = "", got[512], line[256];
		struct verify_opts o = {0};
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(kd, sizeof(kd), "tests/vectors/cases/%s", de->d_name);
		snprintf(pub, sizeof(pub), "%s/epochs.pub", kd);
		if (access(pub, F_OK) < 0)
			snprintf(kd, sizeof(kd), "tests/vectors");
		snprintf(pub, sizeof(pub), "%s/root.pub", kd);
		snprintf(log, sizeof(log), "tests/vectors/cases/%s/log", de->d_name);
		snprintf(exp, sizeof(exp), "tests/vectors/cases/%s/expect", de->d_name);
		f = fopen(exp, "re");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			if (line[0] != '#')
				snprintf(want, sizeof(want), "%.*s", (int)strcspn(line, "\n"),
					 line);
		fclose(f);
		o.log_dir = log;
		o.key_dir = kd;
		o.pub = pub;
		snprintf(exp, sizeof(exp), "tests/vectors/cases/%s/anchored", de->d_name);
		o.allow_anchor = access(exp, F_OK) == 0;
		verdict(run_opts(&o, NULL, NULL), got, sizeof(got));
		if (strcmp(got, want)) {
			print_message("case %s: expected \"%s\", verify says \"%s\"\n", de->d_name,
				      want, got);
			dump();
			bad++;
		}
		n++;
	}
	closedir(d);
	print_message("%u vector cases\n", n);
	assert_true(n >= 20);
	assert_int_equal(bad, 0);
}

/* ---- runs that never ended (issue 8) ------------------------------------------------ */

static void tl_run(struct tl *t, const char *kind, const char *run, const char *extra)
{
	char tb[TIME_LEN];

	add(t, "\"kind\":\"%s\",\"time\":\"%s\",\"run\":\"%s\"%s", kind, now_str(t, tb), run,
	    extra);
}

#define RUN_A "0190aaaa-0000-7000-8000-00000000000a"
#define RUN_B "0190aaaa-0000-7000-8000-00000000000b"

static void test_interrupted(void **state)
{
	struct tl t;
	struct verify_opts o;
	const struct prob *p;

	(void)state;
	tl_init(&t);
	tl_open(&t, 1);
	tl_run(&t, "run_start", RUN_A, "");
	tl_rec(&t, "/etc/a");
	tl_run(&t, "run_start", RUN_B, "");
	tl_run(&t, "run_interrupted", RUN_B, ",\"interrupted_run\":\"" RUN_A "\"");
	tl_run(&t, "run_end", RUN_B, ",\"status\":\"ok\"");
	tl_seal(&t);
	tl_write(&t, t.log, 1, true);
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys};
	assert_int_equal(run_opts(&o, NULL, NULL), 0);
	p = find("interrupted");
	assert_non_null(p);
	assert_string_equal(p->level, "warning");
	assert_int_equal(p->seq, 2); /* at A's run_start */
	assert_string_equal(p->run, RUN_A);
	assert_non_null(strstr(p->message, RUN_A " interrupted"));
	assert_non_null(strstr(p->message, "run " RUN_B " recorded the interruption"));
	assert_false(said(RUN_B " interrupted"));
	o.strict = true;
	assert_int_equal(run_opts(&o, NULL, NULL), 1);
	p = find("interrupted");
	assert_non_null(p);
	assert_string_equal(p->level, "error");
	tl_free(&t);
}

/* An anchored log: segments 2-3 and ANCHOR, the seal of segment 1. */
static void test_anchored(void **state)
{
	struct tl t;
	struct seen s;
	struct verify_opts o;
	char *p, *a;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	p = seg_path(t.log, 1, true);
	assert_int_equal(unlink(p), 0);
	free(p);
	p = xasprintf("%s/ANCHOR", t.log);
	a = xasprintf("%s\n", t.line[6]);
	put_file(p, a, strlen(a));
	/* Accepted: the chain from the anchor, entries 7-19 delivered. */
	s = (struct seen){&t, 7, false};
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys, .allow_anchor = true};
	assert_int_equal(run_opts(&o, collect, &s), 0);
	assert_false(s.bad);
	assert_int_equal(s.next, 20);
	assert_true(sum.anchored);
	assert_int_equal(sum.anchor_seq, 6);
	assert_int_equal(sum.anchor_segment, 1);
	assert_int_equal(sum.first_seq, 7);
	/* Not asked for: segment 1 is missing. */
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys};
	assert_int_equal(run_opts(&o, NULL, NULL), 1);
	assert_false(sum.anchored);
	/* Another seal (segment 2's, in the log itself), or a record: refused. */
	free(a);
	a = xasprintf("%s\n", t.line[13]);
	put_file(p, a, strlen(a));
	o = (struct verify_opts){.log_dir = t.log, .key_dir = t.keys, .allow_anchor = true};
	assert_int_equal(run_opts(&o, NULL, NULL), 1);
	free(a);
	a = xasprintf("%s\n", t.line[5]);
	put_file(p, a, strlen(a));
	assert_int_equal(run_opts(&o, NULL, NULL), 1);
	assert_false(sum.anchored);
	free(a);
	free(p);
	tl_free(&t);
}

/* ---- logread: one verification, then the selected segments from their trusted links ---- */

/* The seqs lr_next() gives, each checked against the line the log holds. */
static size_t reread(struct tl *t, struct logread *r, uint64_t *seqs, size_t max)
{
	const struct lr_ent *e;
	unsigned char h[32];
	size_t n = 0;

	while ((e = lr_next(r)) && n < max) {
		entry_hash(t->line[e->seq], strlen(t->line[e->seq]), h);
		assert_memory_equal(e->hash, h, 32);
		assert_int_equal(e->len, strlen(t->line[e->seq]));
		seqs[n++] = e->seq;
	}
	return n;
}

/* lr_stream: the same entries, pulled as the verification walks; the result at the end. */
static void test_logread_stream(void **state)
{
	struct tl t;
	struct logread *r;
	struct lr_opts o = {0};
	const struct lr_ent *e;
	char err[512];
	uint64_t s[32];
	size_t n = 0;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	o.path = t.log;
	o.key_dir = t.keys;
	assert_int_equal(lr_stream(&r, &o, err, sizeof(err)), 0);
	assert_int_equal(lr_result(r)->entries, 0); /* nothing verified yet */
	while ((e = lr_next(r))) {
		unsigned char h[32];

		entry_hash(t.line[e->seq], strlen(t.line[e->seq]), h);
		assert_memory_equal(e->hash, h, 32);
		s[n++] = e->seq;
	}
	assert_int_equal(n, 20);
	assert_int_equal(s[19], 19);
	assert_null(lr_error(r));
	assert_int_equal(lr_result(r)->rc, 0);
	assert_int_equal(lr_result(r)->entries, 20);
	assert_int_equal(lr_result(r)->nseal, 3);
	/* The segment links were noted on the way: a selection reads again. */
	lr_select(r, (struct lr_range[]){{8, 12}}, 1, NULL, NULL);
	assert_int_equal(reread(&t, r, s, 32), 5);
	lr_close(r);
	/* Closed half-way (a reader that had enough): nothing leaks (the sanitizer build). */
	assert_int_equal(lr_stream(&r, &o, err, sizeof(err)), 0);
	assert_non_null(lr_next(r));
	lr_close(r);
	/* No such log: the error at once. */
	o.path = "/nonexistent/log";
	assert_int_equal(lr_stream(&r, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/log"));
	tl_free(&t);
}

static void test_logread_reread(void **state)
{
	struct tl t;
	struct logread *r;
	struct lr_opts o = {0};
	char err[512], *p, *q, *plain, *bad;
	size_t len, n, pl;
	uint64_t s[32];
	unsigned char *z;
	bool isz;

	(void)state;
	tl_init(&t);
	tl_standard(&t, 3);
	tl_write(&t, t.log, 3, true);
	o.path = t.log;
	o.key_dir = t.keys;
	assert_int_equal(lr_open(&r, &o, err, sizeof(err)), 0);
	assert_int_equal(lr_result(r)->rc, 0);
	/* What the verification kept (everything: keep is NULL). */
	assert_int_equal(reread(&t, r, s, 32), 20);
	/* Seqs 8-12 only (segment 2), then 3 and 16-17 (segments 1 and 3, not 2). */
	lr_select(r, (struct lr_range[]){{8, 12}}, 1, NULL, NULL);
	assert_int_equal(reread(&t, r, s, 32), 5);
	assert_int_equal(s[0], 8);
	assert_int_equal(s[4], 12);
	lr_select(r, (struct lr_range[]){{3, 3}, {16, 17}}, 2, NULL, NULL);
	assert_int_equal(reread(&t, r, s, 32), 3);
	assert_int_equal(s[0], 3);
	assert_int_equal(s[1], 16);
	assert_int_equal(s[2], 17);
	assert_null(lr_error(r));
	/* Seeking reads on to the run's first record. */
	lr_select(r, (struct lr_range[]){{0, 19}}, 1, NULL, NULL);
	assert_int_equal(lr_seek_run(r, "0190aaaa-0000-7000-8000-000000000001"), 0);
	assert_int_equal(lr_next(r)->seq, 2);
	assert_int_equal(lr_seek_run(r, "0190aaaa-0000-7000-8000-00000000ffff"), -1);
	/* Segment 3 stored plain instead of compressed: the same bytes, still read. */
	seg_load(t.log, 3, &plain, &pl, &isz);
	assert_true(isz);
	p = seg_path(t.log, 3, true);
	q = seg_path(t.log, 3, false);
	assert_int_equal(unlink(p), 0);
	put_file(q, plain, pl);
	lr_select(r, (struct lr_range[]){{14, 19}}, 1, NULL, NULL);
	assert_int_equal(reread(&t, r, s, 32), 6);
	/* One byte of segment 2 changed after the verification: segment 1 is given, then the
	 * error, and nothing of segment 2. */
	free(plain);
	seg_load(t.log, 2, &plain, &pl, &isz);
	bad = strstr(plain, "/etc/file-6");
	assert_non_null(bad);
	bad[10] = 'X';
	free(p);
	p = seg_path(t.log, 2, true);
	assert_int_equal(z_deflate(plain, pl, &z, &len), 0);
	put_file(p, z, len);
	free(z);
	lr_select(r, (struct lr_range[]){{0, 19}}, 1, NULL, NULL);
	n = reread(&t, r, s, 32);
	assert_int_equal(n, 7);
	assert_int_equal(s[6], 6);
	assert_non_null(lr_error(r));
	assert_non_null(strstr(lr_error(r), "segment 2 changed"));
	free(plain);
	free(p);
	free(q);
	lr_close(r);
	tl_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_good, teardown),
	    cmocka_unit_test_teardown(test_unsealed_tail, teardown),
	    cmocka_unit_test_teardown(test_modified, teardown),
	    cmocka_unit_test_teardown(test_modified_prev, teardown),
	    cmocka_unit_test_teardown(test_deleted, teardown),
	    cmocka_unit_test_teardown(test_inserted, teardown),
	    cmocka_unit_test_teardown(test_reordered, teardown),
	    cmocka_unit_test_teardown(test_truncated, teardown),
	    cmocka_unit_test_teardown(test_missing_segment, teardown),
	    cmocka_unit_test_teardown(test_wrong_pub, teardown),
	    cmocka_unit_test_teardown(test_forward_security, teardown),
	    cmocka_unit_test_teardown(test_epoch_rules, teardown),
	    cmocka_unit_test_teardown(test_bad_signature, teardown),
	    cmocka_unit_test_teardown(test_seal_fields_signed, teardown),
	    cmocka_unit_test_teardown(test_crash_cadence, teardown),
	    cmocka_unit_test_teardown(test_head, teardown),
	    cmocka_unit_test(test_vector_cases),
	    cmocka_unit_test_teardown(test_recovery, teardown),
	    cmocka_unit_test_teardown(test_io_errors, teardown),
	    cmocka_unit_test_teardown(test_hostile, teardown),
	    cmocka_unit_test_teardown(test_show, teardown),
	    cmocka_unit_test_teardown(test_vector, teardown),
	    cmocka_unit_test_teardown(test_interrupted, teardown),
	    cmocka_unit_test_teardown(test_logread_reread, teardown),
	    cmocka_unit_test_teardown(test_logread_stream, teardown),
	    cmocka_unit_test_teardown(test_anchored, teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	free(out_text);
	return r;
}
