/* make-vector: writes the test vectors of docs/FORMAT.md: a tiny sealed log with the public
 * files of its keys and expected.txt (the hash of every entry), and one small log per rule
 * of the format under cases/, each with the verdict `runseal verify` must give. Run once;
 * the output is committed, so any implementation of the format can check itself against
 * it (tests/unit/test_verify.c does, for runseal).
 *
 *   gcc -O2 -std=gnu11 -Iuser tests/vectors/make-vector.c user/keys.c user/logfmt.c \
 *       user/json.c user/util.c -o /tmp/make-vector -lcrypto -lz
 *   /tmp/make-vector tests/vectors           (as root: keygen wants a root-owned dir)
 *
 * Layout: OUT/root.pub, OUT/epochs.pub, OUT/log/{seg-*.log.z,HEAD}, OUT/expected.txt, and
 * OUT/cases/NAME/{log/,expect[,root.pub,epochs.pub]}. Times are fixed (t0 = 1795000000, 2
 * epochs of an hour, max_interval 60, late_slack 5), so the vectors verify forever; the
 * keys are random, made here and thrown away (no private key is written to OUT). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "json.h"
#include "keys.h"
#include "logfmt.h"
#include "util.h"

#define T0  1795000000ull
#define SEC 1000000000ull

struct vec {
	struct epoch_schedule s;
	unsigned char seed0[32];
	char host_hex[33], root_id[65];
	uint64_t seq, first, ns;
	unsigned char last[32];
	unsigned segment;
	struct jbuf seg, expected;
	const char *out;
	char logdir[PATH_MAX];
	char *head, *prev_head;
	/* A hook to change an entry's body before it is chained (a case's tampering that
	 * the writer itself did, so chain and seals are right around it). */
	const char *edit_from, *edit_to;
	uint64_t edit_seq;
};

static void put_file(const char *dir, const char *name, const void *p, size_t n)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, p, n) != (ssize_t)n || close(fd) < 0)
		err(1, "%s", path);
	free(path);
}

static void copy_file(const char *from, const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", from, name), *buf, e[512];
	size_t len;

	if (segment_read(path, &buf, &len, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	put_file(dir, name, buf, len);
	free(buf);
	free(path);
}

static char *replace(const char *s, const char *from, const char *to)
{
	const char *hit = strstr(s, from);

	if (!hit)
		errx(1, "make-vector: no \"%s\" to edit in %s", from, s);
	return xasprintf("%.*s%s%s", (int)(hit - s), s, to, hit + strlen(from));
}

static void __attribute__((format(printf, 2, 3))) entry(struct vec *v, const char *fmt, ...)
{
	char prev[65], hx[65], *body, *line;
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		errx(1, "out of memory");
	va_end(ap);
	if (v->edit_from && v->seq == v->edit_seq) {
		char *b = replace(body, v->edit_from, v->edit_to);

		free(body);
		body = b;
	}
	hex(v->last, 32, prev);
	line =
	    xasprintf("{\"seq\":%llu,\"prev\":\"%s\",%s}", (unsigned long long)v->seq, prev, body);
	entry_hash(line, strlen(line), v->last);
	jb_raw(&v->seg, line, strlen(line));
	jb_putc(&v->seg, '\n');
	hex(v->last, 32, hx);
	char t[128];

	n = snprintf(t, sizeof(t), "%llu %s\n", (unsigned long long)v->seq, hx);
	jb_raw(&v->expected, t, (size_t)n);
	free(body);
	free(line);
	v->seq++;
	v->ns += 1000000; /* 1 ms apart */
}

static const char *tm(struct vec *v)
{
	static char b[TIME_LEN];

	fmt_time(v->ns, b);
	return b;
}

static void open_segment(struct vec *v, unsigned n)
{
	v->segment = n;
	v->first = v->seq;
	v->seg.len = 0;
	if (v->seq == 0)
		entry(v,
		      "\"kind\":\"genesis\",\"time\":\"%s\",\"format\":\"%s\",\"host_id\":\"%s\","
		      "\"hostname\":\"vector\",\"root_key\":\"%s\",\"t0\":%llu,\"epoch_seconds\":%"
		      "llu,"
		      "\"epochs\":%llu,\"max_interval\":%llu,\"late_slack\":%llu",
		      tm(v), LOG_FORMAT, v->host_hex, v->root_id, (unsigned long long)v->s.t0,
		      (unsigned long long)v->s.len, (unsigned long long)v->s.n,
		      (unsigned long long)v->s.max_interval, (unsigned long long)v->s.late_slack);
	entry(v,
	      "\"kind\":\"segment\",\"time\":\"%s\",\"segment\":%u,\"host_id\":\"%s\","
	      "\"worm\":\"append-only\",\"fsync\":\"boundary\"",
	      tm(v), n, v->host_hex);
}

/* The last line of the segment buffer, with its newline. */
static char *last_line(const struct vec *v)
{
	const char *endl = v->seg.p + v->seg.len - 1, *start = endl;

	while (start > v->seg.p && start[-1] != '\n')
		start--;
	return xasprintf("%.*s", (int)(endl - start + 1), start);
}

static void write_seg(struct vec *v, bool z, const char *extra, size_t elen)
{
	char name[64];
	unsigned char *zb;
	size_t zl;

	snprintf(name, sizeof(name), "seg-%016u.log%s", v->segment, z ? ".z" : "");
	if (!z) {
		struct jbuf b = {0};

		jb_raw(&b, v->seg.p, v->seg.len);
		jb_raw(&b, extra, elen);
		put_file(v->logdir, name, b.p, b.len);
		jb_free(&b);
		return;
	}
	if (z_deflate(v->seg.p, v->seg.len, &zb, &zl) < 0)
		errx(1, "deflate");
	put_file(v->logdir, name, zb, zl);
	free(zb);
}

static void seal(struct vec *v, const char *reason)
{
	unsigned char msg[SEAL_MSG_MAX], sig[64], pub[32], seed[32];
	char t[TIME_LEN], lh[65], kh[65], sh[129];
	uint64_t ep, count = v->seq - v->first;
	size_t ml;

	fmt_time(v->ns, t);
	ep = epoch_of(&v->s, v->ns / SEC);
	if (ep == UINT64_MAX)
		errx(1, "no epoch at %s", t);
	memcpy(seed, v->seed0, 32);
	for (uint64_t i = 0; i < ep; i++)
		epoch_seed_next(seed, seed);
	if (ed25519_public(seed, pub) < 0)
		errx(1, "ed25519");
	hex(v->last, 32, lh);
	hex(pub, 32, kh);
	/* The signature covers the line up to its sig field: prefix and every other field. */
	char *body = xasprintf(
	    "\"kind\":\"seal\",\"time\":\"%s\",\"segment\":%u,\"first_seq\":%llu,\"count\":%llu,"
	    "\"last_hash\":\"%s\",\"reason\":\"%s\",\"epoch\":%llu,\"epoch_key\":\"%s\"",
	    t, v->segment, (unsigned long long)v->first, (unsigned long long)count, lh, reason,
	    (unsigned long long)ep, kh);
	char *unsigned_line =
	    xasprintf("{\"seq\":%llu,\"prev\":\"%s\",%s", (unsigned long long)v->seq, lh, body);

	ml = seal_message(msg, v->s.host_id, unsigned_line, strlen(unsigned_line));
	if (!ml || ed25519_sign(seed, msg, ml, sig) < 0)
		errx(1, "cannot sign");
	hex(sig, 64, sh);
	entry(v, "%s,\"sig\":\"%s\"", body, sh);
	free(body);
	free(unsigned_line);
	free(v->prev_head);
	v->prev_head = v->head;
	v->head = last_line(v); /* HEAD: the seal line verbatim, with its newline */
	write_seg(v, true, "", 0);
}

static void records(struct vec *v, const char *run)
{
	const char *common =
	    "\"step\":\"restart\",\"pid\":4242,\"ppid\":4241,\"tid\":4242,\"uid\":0";

	entry(v,
	      "\"kind\":\"step_start\",\"time\":\"%s\",\"run\":\"%s\",%s,\"step_seq\":1,"
	      "\"attempt\":1,\"mode\":\"argv\",\"argv\":[\"systemctl\",\"restart\",\"demo\"],"
	      "\"cwd\":null,\"run_as\":null,\"env\":{}",
	      tm(v), run, common);
	/* A path with an escaped quote, a non-ASCII character and a raw byte (\udcff). */
	entry(
	    v,
	    "\"kind\":\"exec\",\"time\":\"%s\",\"run\":\"%s\",%s,\"euid\":0,\"gid\":0,"
	    "\"comm\":\"systemctl\",\"filename\":\"/usr/bin/systemctl\",\"path\":"
	    "\"/usr/bin/systemctl\",\"argv\":[\"systemctl\",\"restart\",\"d\\\"\\u00e9mo\\udcff\"],"
	    "\"argc\":3,\"argv_bytes\":31,\"argv_truncated\":false,\"cwd\":\"/\",\"ret\":0",
	    tm(v), run, common);
	entry(v,
	      "\"kind\":\"open\",\"time\":\"%s\",\"run\":\"%s\",%s,\"euid\":0,\"gid\":0,"
	      "\"comm\":\"systemctl\",\"syscall\":\"openat\",\"path\":\"/etc/demo.conf\","
	      "\"path_arg\":\"demo.conf\",\"flags\":[\"read\",\"cloexec\"],\"fd\":3,\"ret\":3",
	      tm(v), run, common);
	entry(v,
	      "\"kind\":\"connect\",\"time\":\"%s\",\"run\":\"%s\",%s,\"euid\":0,\"gid\":0,"
	      "\"comm\":\"systemctl\",\"fd\":4,\"family\":\"inet\",\"addr\":\"127.0.0.1\","
	      "\"port\":8080,\"ret\":-111,\"error\":\"ECONNREFUSED\"",
	      tm(v), run, common);
	entry(v,
	      "\"kind\":\"step_end\",\"time\":\"%s\",\"run\":\"%s\",%s,\"step_seq\":1,"
	      "\"attempt\":1,\"status\":\"ok\",\"exit_code\":0,\"duration_ms\":12",
	      tm(v), run, common);
}

static const char run1[] = "019a0000-0000-7000-8000-00000000abcd";
static const char run2[] = "019a0000-0000-7000-8000-00000000abce";

/* A fresh log in dir: nothing chained yet, the clock at its start. */
static void begin_log(struct vec *v, const char *dir)
{
	snprintf(v->logdir, sizeof(v->logdir), "%s", dir);
	mkdir(dir, 0755);
	v->seq = 0;
	memset(v->last, 0, 32);
	v->expected.len = 0;
	free(v->head);
	free(v->prev_head);
	v->head = v->prev_head = NULL;
	v->ns = (T0 + 100) * SEC + 1;
}

static void write_head(struct vec *v, const char *line)
{
	put_file(v->logdir, "HEAD", line, strlen(line));
}

/* The log of OUT/log: segment 1 sealed in epoch 0, segment 2 (with a loss) in epoch 1. */
static void standard(struct vec *v, const char *dir)
{
	begin_log(v, dir);
	open_segment(v, 1);
	records(v, run1);
	v->ns += SEC / 2;
	seal(v, "run_end");

	v->ns = (T0 + 3600 + 100) * SEC; /* epoch 1 */
	open_segment(v, 2);
	records(v, run2);
	entry(v,
	      "\"kind\":\"loss\",\"time\":\"%s\",\"run\":\"%s\","
	      "\"count\":2,\"kinds\":{\"exec\":0,\"fork\":0,\"exit\":0,\"open\":2,\"connect\":0,"
	      "\"malformed\":0}",
	      tm(v), run2);
	v->ns += SEC / 2;
	seal(v, "shutdown");
	write_head(v, v->head);
}

/* ---- cases ----------------------------------------------------------------------------- */

struct vcase {
	const char *name, *expect, *why;
	void (*make)(struct vec *v, const char *dir);
};

/* Segment 1 sealed; segment 2 crashed (torn tail of `torn` bytes); segment 3 starts with
 * the recovery entry written by `recovery` and is sealed. */
static void crash_log(struct vec *v, const char *dir, const char *torn, const char *rec_fmt,
		      uint64_t gap_ns)
{
	uint64_t valid, last_seq;

	begin_log(v, dir);
	open_segment(v, 1);
	records(v, run1);
	v->ns += SEC / 2;
	seal(v, "run_end");
	v->ns += gap_ns;
	open_segment(v, 2);
	records(v, run2);
	valid = v->seg.len;
	last_seq = v->seq - 1;
	write_seg(v, false, torn, strlen(torn));
	v->ns += 300 * SEC;
	open_segment(v, 3);
	entry(v, rec_fmt, tm(v), (unsigned long long)valid, strlen(torn),
	      (unsigned long long)last_seq);
	v->ns += SEC / 2;
	seal(v, "start");
	write_head(v, v->head);
}

static const char rec_ok[] =
    "\"kind\":\"recovery\",\"time\":\"%s\",\"file\":\"seg-0000000000000002.log\","
    "\"segment\":2,\"valid_bytes\":%llu,\"torn_bytes\":%zu,\"last_seq\":%llu,\"sealed\":false";

static void c_recovery(struct vec *v, const char *dir)
{
	crash_log(v, dir, "{\"seq\":1", rec_ok, 10 * SEC);
}

static void c_recovery_wrong_segment(struct vec *v, const char *dir)
{
	static const char rec[] =
	    "\"kind\":\"recovery\",\"time\":\"%s\",\"file\":\"seg-0000000000000002.log\","
	    "\"segment\":5,\"valid_bytes\":%llu,\"torn_bytes\":%zu,\"last_seq\":%llu,"
	    "\"sealed\":false";

	crash_log(v, dir, "", rec, 10 * SEC);
}

/* The recovery entry must come right after the segment entry; here a record is first. */
static void c_recovery_misplaced(struct vec *v, const char *dir)
{
	uint64_t valid, last_seq;

	begin_log(v, dir);
	open_segment(v, 1);
	records(v, run1);
	v->ns += SEC / 2;
	seal(v, "run_end");
	open_segment(v, 2);
	records(v, run2);
	valid = v->seg.len;
	last_seq = v->seq - 1;
	write_seg(v, false, "", 0);
	open_segment(v, 3);
	entry(v,
	      "\"kind\":\"loss\",\"time\":\"%s\",\"run\":\"%s\",\"count\":1,\"kinds\":{\"exec\":1}",
	      tm(v), run2);
	entry(v, rec_ok, tm(v), (unsigned long long)valid, (size_t)0, (unsigned long long)last_seq);
	seal(v, "start");
	write_head(v, v->head);
}

/* A crashed segment whose entries start 70 s after the last seal: sealed records passed
 * off as a crash (the seal cadence allows 60 + 5 s). */
static void c_fake_crash(struct vec *v, const char *dir)
{
	crash_log(v, dir, "", rec_ok, 70 * SEC);
}

static void c_head_stale(struct vec *v, const char *dir)
{
	standard(v, dir);
	write_head(v, v->prev_head);
}

static void c_head_older(struct vec *v, const char *dir)
{
	standard(v, dir);
	/* Three seals, HEAD at the first: not a crash before HEAD's update. */
	char *first = xstrdup(v->prev_head);

	v->ns += 10 * SEC;
	open_segment(v, 3);
	records(v, run2);
	seal(v, "run_end");
	write_head(v, first);
	free(first);
}

static void c_head_missing(struct vec *v, const char *dir)
{
	char *p;

	standard(v, dir);
	p = xasprintf("%s/HEAD", dir);
	unlink(p);
	free(p);
}

static void c_head_forged_seq(struct vec *v, const char *dir)
{
	char *h;

	standard(v, dir);
	h = replace(v->head, "{\"seq\":15,", "{\"seq\":25,");
	write_head(v, h);
	free(h);
}

static void c_head_truncated(struct vec *v, const char *dir)
{
	char *p;

	standard(v, dir);
	p = xasprintf("%s/seg-0000000000000002.log.z", dir);
	unlink(p);
	free(p);
}

static void c_late_record(struct vec *v, const char *dir)
{
	begin_log(v, dir);
	open_segment(v, 1);
	records(v, run1);
	v->ns += 66 * SEC; /* the first entry waited 66 s for this seal */
	seal(v, "run_end");
	write_head(v, v->head);
}

static void c_future_record(struct vec *v, const char *dir)
{
	begin_log(v, dir);
	open_segment(v, 1);
	records(v, run1);
	v->ns += 10 * SEC; /* dated 10 s after the seal made at its own time below */
	entry(v, "\"kind\":\"exit\",\"time\":\"%s\",\"run\":\"%s\",\"pid\":4242,\"exit_code\":0",
	      tm(v), run1);
	v->ns -= 10 * SEC;
	seal(v, "run_end");
	write_head(v, v->head);
}

static void c_zlib_trailing(struct vec *v, const char *dir)
{
	char *p;
	FILE *f;

	standard(v, dir);
	p = xasprintf("%s/seg-0000000000000002.log.z", dir);
	f = fopen(p, "ab");
	if (!f || fputc(0, f) == EOF || fclose(f))
		err(1, "%s", p);
	free(p);
}

/* Tamperings made before chaining, so hashes and seals are right around them. */
static void edited(struct vec *v, const char *dir, uint64_t seq, const char *from, const char *to)
{
	v->edit_seq = seq;
	v->edit_from = from;
	v->edit_to = to;
	standard(v, dir);
	v->edit_from = v->edit_to = NULL;
}

static void c_duplicate_key(struct vec *v, const char *dir)
{
	edited(v, dir, 4, "\"path\":\"/etc/demo.conf\",",
	       "\"path\":\"/etc/demo.conf\",\"path\":\"/x\",");
}

static void c_duplicate_kind(struct vec *v, const char *dir)
{
	edited(v, dir, 4, "\"ret\":3", "\"ret\":3,\"kind\":\"seal\"");
}

static void c_not_json(struct vec *v, const char *dir)
{
	edited(v, dir, 4, "\"ret\":3", "\"ret\":3,}");
}

static void c_line_too_long(struct vec *v, const char *dir)
{
	char *big = xmalloc(LOG_LINE_MAX + 64);

	memcpy(big, "\"path_arg\":\"", 12);
	memset(big + 12, 'a', LOG_LINE_MAX);
	memcpy(big + 12 + LOG_LINE_MAX, "\"", 2);
	edited(v, dir, 4, "\"path_arg\":\"demo.conf\"", big);
	free(big);
}

static void c_hex_upper(struct vec *v, const char *dir)
{
	char *p, *buf, e[256];
	size_t len;

	standard(v, dir);
	/* Segment 1 rewritten with entry 3's prev in uppercase, re-chained after it. */
	p = xasprintf("%s/seg-0000000000000001.log.z", dir);
	if (segment_read(p, &buf, &len, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	char *l3 = strstr(buf, "{\"seq\":3,\"prev\":\"");

	for (char *c = l3 + 17; c < l3 + 17 + 64; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	unsigned char *z;
	size_t zl;

	if (z_deflate(buf, len, &z, &zl) < 0)
		errx(1, "deflate");
	unlink(p);
	put_file(dir, "seg-0000000000000001.log.z", z, zl);
	free(z);
	free(buf);
	free(p);
}

static void c_seal_reason(struct vec *v, const char *dir)
{
	char *p, *buf, e[256], *l;
	unsigned char *z;
	size_t len, zl;

	standard(v, dir);
	p = xasprintf("%s/seg-0000000000000002.log.z", dir);
	if (segment_read(p, &buf, &len, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	l = strstr(buf, "\"reason\":\"shutdown\"");
	memcpy(l, "\"reason\":\"run_end\" ", 19); /* same length, space after the field */
	memmove(l + 18, l + 19, len - (size_t)(l + 19 - buf));
	len--;
	if (z_deflate(buf, len, &z, &zl) < 0)
		errx(1, "deflate");
	put_file(dir, "seg-0000000000000002.log.z", z, zl);
	free(z);
	free(buf);
	free(p);
}

static void c_compress_tmp(struct vec *v, const char *dir)
{
	standard(v, dir);
	put_file(dir, ".seg-0000000000000002.log.z.tmp", "x", 1);
}

static void c_leftover_log(struct vec *v, const char *dir)
{
	standard(v, dir);
	/* A crash after the .z's rename, before the .log's removal: the same bytes twice. */
	write_seg(v, false, "", 0);
}

static void c_wrong_host_segment(struct vec *v, const char *dir)
{
	char other[64];

	snprintf(other, sizeof(other), "\"host_id\":\"%.31s%c\"", v->host_hex,
		 v->host_hex[31] == '0' ? '1' : '0');
	char *from = xasprintf("\"host_id\":\"%s\"", v->host_hex);

	edited(v, dir, 8, from, other);
	free(from);
}

static void c_wrong_root_genesis(struct vec *v, const char *dir)
{
	char *from = xasprintf("\"root_key\":\"%s\"", v->root_id);

	edited(v, dir, 0, from,
	       "\"root_key\":\"0000000000000000000000000000000000000000000000000000000000000000\"");
	free(from);
}

/* The certificate of an epoch: broken for epoch 1, which segment 2's seal uses (an error),
 * or for an epoch no seal uses (no error: only the certificates used are checked). */
static void bad_cert(struct vec *v, const char *dir, bool used)
{
	char *p = xasprintf("%s/epochs.pub", v->out), *buf, e[256], *case_dir;
	size_t len;

	if (segment_read(p, &buf, &len, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	/* Line 3 is epoch 1; its certificate ends the line. */
	char *l = strchr(strchr(buf, '\n') + 1, '\n') + 1, *nl = strchr(l, '\n');

	nl[-1] = nl[-1] == '0' ? '1' : '0';
	case_dir = xasprintf("%.*s", (int)(strrchr(dir, '/') - dir), dir);
	put_file(case_dir, "epochs.pub", buf, len);
	copy_file(v->out, case_dir, "root.pub");
	if (used) {
		standard(v, dir);
	} else {
		/* Only epoch 0 is used: segment 2 sealed in epoch 0 too. */
		begin_log(v, dir);
		open_segment(v, 1);
		records(v, run1);
		seal(v, "run_end");
		open_segment(v, 2);
		records(v, run2);
		seal(v, "run_end");
		write_head(v, v->head);
	}
	free(case_dir);
	free(buf);
	free(p);
}

/* An anchored log, as an evidence bundle holds it: segment 1 gone, ANCHOR its seal. */
static void c_anchored(struct vec *v, const char *dir)
{
	char *p;

	standard(v, dir);
	put_file(dir, "ANCHOR", v->prev_head, strlen(v->prev_head));
	p = xasprintf("%s/seg-%016u.log.z", dir, 1u);
	unlink(p);
	free(p);
}

/* The same with one hex digit of the ANCHOR seal's signature changed. */
static void c_anchor_forged(struct vec *v, const char *dir)
{
	char *a, *s;

	c_anchored(v, dir);
	a = xstrdup(v->prev_head);
	s = strstr(a, "\"sig\":\"") + 7;
	*s = *s == '0' ? '1' : '0';
	put_file(dir, "ANCHOR", a, strlen(a));
	free(a);
}

static void c_bad_cert_used(struct vec *v, const char *dir)
{
	bad_cert(v, dir, true);
}

static void c_bad_cert_unused(struct vec *v, const char *dir)
{
	bad_cert(v, dir, false);
}

static const struct vcase cases[] = {
    {"recovery", "ok", "a crash recovered: entries of the crashed segment verify", c_recovery},
    {"recovery-wrong-segment", "failed malformed truncated",
     "recovery.segment is not the crashed segment's", c_recovery_wrong_segment},
    {"recovery-misplaced", "failed malformed truncated",
     "the recovery entry is not right after segment", c_recovery_misplaced},
    {"fake-crash", "failed late_record", "a crashed segment 70 s after the last seal",
     c_fake_crash},
    {"head-stale", "ok", "HEAD is the seal before the last one", c_head_stale},
    {"head-older", "failed head_mismatch", "HEAD two seals behind", c_head_older},
    {"head-missing", "failed head_missing", "a log with seals and no HEAD", c_head_missing},
    {"head-forged-seq", "failed bad_signature", "HEAD's seq edited", c_head_forged_seq},
    {"head-truncated", "failed truncated", "the newest segment deleted, HEAD kept",
     c_head_truncated},
    {"late-record", "failed late_record", "an entry 66 s older than its seal", c_late_record},
    {"future-record", "failed future_record", "an entry 10 s after its seal", c_future_record},
    {"zlib-trailing", "failed malformed truncated", "a byte after the zlib stream",
     c_zlib_trailing},
    {"duplicate-key", "failed malformed", "a record with two \"path\" keys", c_duplicate_key},
    {"duplicate-kind", "failed malformed", "a record with a second \"kind\"", c_duplicate_kind},
    {"not-json", "failed malformed", "a record that is not JSON", c_not_json},
    {"line-too-long", "failed malformed", "a record longer than 1 MiB", c_line_too_long},
    {"hex-upper", "failed malformed", "a prev in uppercase hex", c_hex_upper},
    {"seal-reason-edited", "failed bad_signature head_mismatch", "a seal's reason changed",
     c_seal_reason},
    {"compress-tmp", "ok", "a leftover temporary compression file", c_compress_tmp},
    {"leftover-log", "ok", "a .log beside its .log.z", c_leftover_log},
    {"wrong-host-segment", "failed wrong_host", "a segment entry of another host",
     c_wrong_host_segment},
    {"wrong-root-genesis", "failed wrong_key", "a genesis naming another root key",
     c_wrong_root_genesis},
    {"bad-cert-used", "failed epoch", "the certificate of an epoch a seal uses is broken",
     c_bad_cert_used},
    {"bad-cert-unused", "ok", "the certificate of an unused epoch is broken", c_bad_cert_unused},
    {"anchored", "ok", "segment 1 gone, ANCHOR its seal (--anchored)", c_anchored},
    {"anchor-forged", "failed bad_signature", "an ANCHOR whose signature was changed (--anchored)",
     c_anchor_forged},
};

static void make_cases(struct vec *v)
{
	char *dir = xasprintf("%s/cases", v->out);

	mkdir(dir, 0755);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *cdir = xasprintf("%s/%s", dir, cases[i].name), *ldir, *text;

		mkdir(cdir, 0755);
		ldir = xasprintf("%s/log", cdir);
		cases[i].make(v, ldir);
		text = xasprintf("# %s\n# the verdict of runseal verify: ok, or failed and the "
				 "kinds of its errors\n%s\n",
				 cases[i].why, cases[i].expect);
		put_file(cdir, "expect", text, strlen(text));
		/* verified with --anchored: the case directory says so with a file */
		if (!strncmp(cases[i].name, "anchor", 6))
			put_file(cdir, "anchored", "", 0);
		free(text);
		free(ldir);
		free(cdir);
	}
	free(dir);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/make-vector.XXXXXX", keys[64], e[KEYS_ERRLEN], path[PATH_MAX];
	char rid[65], hid[33], logdir[PATH_MAX], buf[128];
	unsigned char host[16], root[32];
	struct vec v = {0};
	int fd;

	if (argc != 2)
		errx(2, "usage: make-vector OUTDIR");
	v.out = argv[1];
	if (!mkdtemp(tmpl))
		err(1, "mkdtemp");
	snprintf(keys, sizeof(keys), "%s/keys", tmpl);
	if (keys_generate(keys, T0, 3600, 2, 60, 5, getuid(), rid, hid, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	snprintf(path, sizeof(path), "%s/root.pub", keys);
	if (keys_load_root_pub(path, host, root, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	snprintf(path, sizeof(path), "%s/epochs.pub", keys);
	if (keys_load_schedule(path, root, &v.s, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	snprintf(path, sizeof(path), "%s/epoch.key", keys);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, 82) != 82 || unhex(buf + 17, 64, v.seed0, 32) < 0)
		errx(1, "%s: unreadable", path);
	close(fd);
	snprintf(v.host_hex, sizeof(v.host_hex), "%s", hid);
	snprintf(v.root_id, sizeof(v.root_id), "%s", rid);
	snprintf(logdir, sizeof(logdir), "%s/log", v.out);
	mkdir(v.out, 0755);
	copy_file(keys, v.out, "root.pub");
	copy_file(keys, v.out, "epochs.pub");
	const char *hdr = "# seq, then the entry's hash: SHA-256(0x00 || line without '\\n')\n";

	standard(&v, logdir);
	put_file(v.out, "expected.txt", hdr, strlen(hdr));
	{
		char *p = xasprintf("%s/expected.txt", v.out);
		FILE *f = fopen(p, "a");

		if (!f || fwrite(v.expected.p, 1, v.expected.len, f) != v.expected.len || fclose(f))
			err(1, "%s", p);
		free(p);
	}
	uint64_t n = v.seq;

	make_cases(&v);
	keys_free_schedule(&v.s);
	jb_free(&v.seg);
	jb_free(&v.expected);
	free(v.head);
	free(v.prev_head);
	OPENSSL_cleanse(v.seed0, sizeof(v.seed0));
	/* The private keys go: nothing but public material leaves this program. */
	static const char *const priv[] = {"root.key", "epoch.key", "root.pub", "epochs.pub"};
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", keys, priv[i]);
		unlink(path);
	}
	rmdir(keys);
	rmdir(tmpl);
	printf("wrote %s: root.pub, epochs.pub, log/, expected.txt (%llu entries), %zu cases\n",
	       v.out, (unsigned long long)n, sizeof(cases) / sizeof(cases[0]));
	return 0;
}
