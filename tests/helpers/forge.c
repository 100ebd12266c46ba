/* forge: play the attacker who has root on the host after a compromise, for the
 * forward-security test. It edits one entry of a sealed log, re-chains every entry after it
 * and re-signs every seal with the only signing key the host still holds: the current
 * epoch's. The verifier must still reject the result.
 *
 * Usage: forge [--fake-crash] LOGDIR KEYDIR SEQ OLD NEW
 *   replaces the first OLD by NEW in entry SEQ.
 * --fake-crash: instead of re-signing the old seals (which the epoch and lateness rules
 * catch), strips them: every entry from SEQ's segment on goes, re-chained, into that
 * segment left unsealed as if crashed, and a new segment "recovers" it with a recovery
 * entry and one seal made now with the current key.
 * The log's files must be writable (the test clears their inode flags first, as an attacker
 * would). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "keys.h"
#include "logfmt.h"
#include "util.h"

struct seg {
	char name[64];
	struct jbuf out;
};

static int cmp(const void *a, const void *b)
{
	return strcmp(((const struct seg *)a)->name, ((const struct seg *)b)->name);
}

static size_t list(const char *dir, struct seg **segs)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		err(2, "%s", dir);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "seg-", 4)) {
			*segs = xrealloc(*segs, (n + 1) * sizeof(**segs));
			memset(&(*segs)[n], 0, sizeof(**segs));
			snprintf((*segs)[n++].name, 64, "%s", de->d_name);
		}
	closedir(d);
	qsort(*segs, n, sizeof(**segs), cmp);
	return n;
}

/* A seal re-signed now, with the current epoch key, over the forged chain. */
static void reseal(struct jbuf *o, const char *line, size_t len, uint64_t seq,
		   const unsigned char last[32], struct epoch_signer *sg,
		   const struct epoch_schedule *s)
{
	uint64_t segment, first, count;
	unsigned char msg[SEAL_MSG_MAX], sig[64], pub[32];
	char t[TIME_LEN], lh[65], ph[65], sh[129], reason[32];
	size_t mlen;

	if (entry_get_u64(line, len, "segment", &segment) ||
	    entry_get_u64(line, len, "first_seq", &first) ||
	    entry_get_u64(line, len, "count", &count) ||
	    entry_get_str(line, len, "reason", reason, sizeof(reason)))
		errx(2, "seal %llu: unreadable", (unsigned long long)seq);
	fmt_time(now_ns(CLOCK_REALTIME), t);
	signer_public(sg, pub);
	hex(last, 32, lh);
	hex(pub, 32, ph);
	char *l = xasprintf(
	    "{\"seq\":%llu,\"prev\":\"%s\",\"kind\":\"seal\",\"time\":\"%s\","
	    "\"segment\":%llu,\"first_seq\":%llu,\"count\":%llu,\"last_hash\":\"%s\","
	    "\"reason\":\"%s\",\"epoch\":%llu,\"epoch_key\":\"%s\"",
	    (unsigned long long)seq, lh, t, (unsigned long long)segment, (unsigned long long)first,
	    (unsigned long long)count, lh, reason, (unsigned long long)sg->epoch, ph);
	mlen = seal_message(msg, s->host_id, l, strlen(l));
	if (!mlen || signer_sign(sg, msg, mlen, sig) < 0)
		errx(2, "cannot sign");
	hex(sig, 64, sh);
	jb_raw(o, l, strlen(l));
	jb_raw(o, ",\"sig\":\"", 8);
	jb_raw(o, sh, 128);
	jb_raw(o, "\"}", 2);
	free(l);
}

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, n) != (ssize_t)n || close(fd) < 0)
		err(2, "%s", path);
}

/* Appends line (no '\n') to o re-chained: seq and prev replaced, the body kept. */
static void rechain(struct jbuf *o, const char *body, size_t blen, uint64_t seq,
		    unsigned char last[32])
{
	char h[65], *l;

	hex(last, 32, h);
	l = xasprintf("{\"seq\":%llu,\"prev\":\"%s\",%.*s", (unsigned long long)seq, h, (int)blen,
		      body);
	entry_hash(l, strlen(l), last);
	jb_raw(o, l, strlen(l));
	jb_putc(o, '\n');
	free(l);
}

static int fake_crash(char **argv, struct epoch_schedule *sched, struct epoch_signer *sg)
{
	unsigned char last[32] = {0}, prev[32];
	uint64_t target = strtoull(argv[2], NULL, 10), seq = 0, n = 0, crashed = 0;
	struct seg *segs = NULL;
	struct jbuf crash = {0}, rec = {0};
	char e[KEYS_ERRLEN], path[4096], host[33], crash_name[64] = "";
	size_t nsegs = list(argv[0], &segs);

	hex(sched->host_id, 16, host);
	for (size_t i = 0; i < nsegs; i++) {
		char *buf;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", argv[0], segs[i].name);
		if (segment_read(path, &buf, &len, e, sizeof(e)) < 0)
			errx(2, "%s", e);
		for (char *p = buf; p < buf + len;) {
			char *nl = memchr(p, '\n', (size_t)(buf + len - p)), kind[16] = "";
			size_t l = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
			long body = entry_prefix(p, l, &seq, prev);

			if (body < 0)
				errx(2, "%s: bad entry", segs[i].name);
			entry_get_str(p, l, "kind", kind, sizeof(kind));
			if (seq == target && !crash_name[0]) {
				crashed = i + 1;
				sscanf(segs[i].name, "seg-%16" SCNu64, &n);
				snprintf(crash_name, sizeof(crash_name), "seg-%016" PRIu64 ".log",
					 n);
				/* The segment's start so far (up to SEQ) goes in too. */
				crash = segs[i].out;
				memset(&segs[i].out, 0, sizeof(segs[i].out));
				seq = target;
			}
			if (!crashed) {
				entry_hash(p, l, last);
				jb_raw(&segs[i].out, p, l);
				jb_putc(&segs[i].out, '\n');
			} else if (strcmp(kind, "seal") && strcmp(kind, "recovery") &&
				   (strcmp(kind, "segment") || (size_t)crashed == i + 1)) {
				char *rest = strndup(p + body, l - (size_t)body);
				char *hit = seq == target ? strstr(rest, argv[3]) : NULL;
				struct jbuf b = {0};

				if (seq == target && !hit)
					errx(2, "entry %llu has no \"%s\"", (unsigned long long)seq,
					     argv[3]);
				if (hit) {
					jb_raw(&b, rest, (size_t)(hit - rest));
					jb_raw(&b, argv[4], strlen(argv[4]));
					jb_raw(&b, hit + strlen(argv[3]),
					       strlen(hit + strlen(argv[3])));
				} else {
					jb_raw(&b, rest, strlen(rest));
				}
				/* Seqs run on without the stripped seals and segment entries. */
				rechain(&crash, b.p, b.len, 0, last);
				jb_free(&b);
				free(rest);
			}
			p = nl ? nl + 1 : buf + len;
		}
		free(buf);
	}
	if (!crashed)
		errx(2, "no entry %llu", (unsigned long long)target);
	/* Renumber the crashed segment's entries from its first seq. */
	{
		struct jbuf fixed = {0};
		uint64_t s0 = 0, k = 0;
		bool first = true;

		memset(last, 0, 32);
		for (char *p = crash.p; p < crash.p + crash.len;) {
			char *nl = memchr(p, '\n', (size_t)(crash.p + crash.len - p));
			long body = entry_prefix(p, (size_t)(nl - p), &seq, prev);

			if (first) {
				s0 = seq;
				memcpy(last, prev, 32);
				first = false;
			}
			rechain(&fixed, p + body, (size_t)(nl - p) - (size_t)body, s0 + k++, last);
			p = nl + 1;
		}
		jb_free(&crash);
		crash = fixed;
		seq = s0 + k;
	}
	for (size_t i = crashed - 1; i < nsegs; i++) {
		snprintf(path, sizeof(path), "%s/%s", argv[0], segs[i].name);
		if (unlink(path) < 0)
			err(2, "%s", path);
	}
	for (size_t i = 0; i + 1 < crashed; i++)
		jb_free(&segs[i].out);
	snprintf(path, sizeof(path), "%s/%s", argv[0], crash_name);
	write_file(path, crash.p, crash.len);
	/* The "recovery": a segment entry, a recovery entry naming the fake crash, a seal. */
	{
		char t[TIME_LEN], *b;
		uint64_t first = seq, last_seq = seq - 1;

		fmt_time(now_ns(CLOCK_REALTIME), t);
		b = xasprintf("\"kind\":\"segment\",\"time\":\"%s\",\"segment\":%llu,\"host_id\":"
			      "\"%s\",\"worm\":\"append-only\",\"fsync\":\"boundary\"}",
			      t, (unsigned long long)(n + 1), host);
		rechain(&rec, b, strlen(b), seq++, last);
		free(b);
		b = xasprintf("\"kind\":\"recovery\",\"time\":\"%s\",\"file\":\"%s\",\"segment\":"
			      "%llu,\"valid_bytes\":%zu,\"torn_bytes\":0,\"last_seq\":%llu,"
			      "\"sealed\":false}",
			      t, crash_name, (unsigned long long)n, crash.len,
			      (unsigned long long)last_seq);
		rechain(&rec, b, strlen(b), seq++, last);
		free(b);
		char seal[2048];
		struct jbuf sl = {0};

		snprintf(seal, sizeof(seal),
			 "{\"seq\":%llu,\"prev\":\"x\",\"kind\":\"seal\",\"segment\":%llu,"
			 "\"first_seq\":%llu,\"count\":2,\"reason\":\"run_end\"}",
			 (unsigned long long)seq, (unsigned long long)(n + 1),
			 (unsigned long long)first);
		reseal(&sl, seal, strlen(seal), seq, last, sg, sched);
		entry_hash(sl.p, sl.len, last);
		jb_raw(&rec, sl.p, sl.len);
		jb_putc(&rec, '\n');
		snprintf(path, sizeof(path), "%s/HEAD", argv[0]);
		jb_putc(&sl, '\n');
		write_file(path, sl.p, sl.len);
		jb_free(&sl);
	}
	{
		unsigned char *z;
		size_t zl;

		if (z_deflate(rec.p, rec.len, &z, &zl) < 0)
			errx(2, "deflate");
		snprintf(path, sizeof(path), "%s/seg-%016llu.log.z", argv[0],
			 (unsigned long long)(n + 1));
		write_file(path, z, zl);
		free(z);
	}
	printf("fake crash of %s from entry %llu, recovered and sealed with epoch %llu\n",
	       crash_name, (unsigned long long)target, (unsigned long long)sg->epoch);
	jb_free(&crash);
	jb_free(&rec);
	free(segs);
	return 0;
}

int main(int argc, char **argv)
{
	struct epoch_schedule sched = {0};
	struct epoch_signer sg;
	unsigned char host[16], root[32], last[32] = {0}, prev[32];
	char e[KEYS_ERRLEN], path[4096];
	struct seg *segs = NULL;
	size_t nsegs;
	uint64_t target;

	bool fake = argc > 1 && !strcmp(argv[1], "--fake-crash");

	if (fake) {
		argc--;
		argv++;
	}
	if (argc != 6)
		errx(2, "usage: forge [--fake-crash] LOGDIR KEYDIR SEQ OLD NEW");
	target = strtoull(argv[3], NULL, 10);
	snprintf(path, sizeof(path), "%s/root.pub", argv[2]);
	if (keys_load_root_pub(path, host, root, e, sizeof(e)) < 0)
		errx(2, "%s", e);
	snprintf(path, sizeof(path), "%s/epochs.pub", argv[2]);
	if (keys_load_schedule(path, root, &sched, e, sizeof(e)) < 0 ||
	    signer_open(argv[2], getuid(), &sg, e, sizeof(e)) < 0)
		errx(2, "%s", e);
	/* The attacker can always roll the current seed forward, never back. */
	uint64_t now_e = epoch_of(&sched, (uint64_t)time(NULL));
	if (now_e != UINT64_MAX && now_e > sg.epoch && signer_advance(&sg, now_e, e, sizeof(e)) < 0)
		errx(2, "%s", e);
	if (fake) {
		int r = fake_crash(argv + 1, &sched, &sg);

		signer_close(&sg);
		keys_free_schedule(&sched);
		return r;
	}
	nsegs = list(argv[1], &segs);
	for (size_t i = 0; i < nsegs; i++) {
		char *buf, *p;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", argv[1], segs[i].name);
		if (segment_read(path, &buf, &len, e, sizeof(e)) < 0)
			errx(2, "%s", e);
		for (p = buf; p < buf + len;) {
			char *nl = memchr(p, '\n', (size_t)(buf + len - p)), kind[16] = "";
			size_t l = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
			uint64_t seq;
			long body = entry_prefix(p, l, &seq, prev);
			struct jbuf line = {0};

			if (body < 0)
				errx(2, "%s: bad entry", segs[i].name);
			entry_get_str(p, l, "kind", kind, sizeof(kind));
			if (!strcmp(kind, "seal")) {
				reseal(&line, p, l, seq, last, &sg, &sched);
			} else {
				char pre[128], h[65];

				hex(last, 32, h);
				jb_raw(&line, pre,
				       (size_t)snprintf(pre, sizeof(pre),
							"{\"seq\":%llu,\"prev\":\"%s\",",
							(unsigned long long)seq, h));
				char *rest = strndup(p + body, l - (size_t)body);
				char *hit = seq == target ? strstr(rest, argv[4]) : NULL;
				if (seq == target && !hit)
					errx(2, "entry %llu has no \"%s\"", (unsigned long long)seq,
					     argv[4]);
				if (hit) {
					jb_raw(&line, rest, (size_t)(hit - rest));
					jb_raw(&line, argv[5], strlen(argv[5]));
					jb_raw(&line, hit + strlen(argv[4]),
					       strlen(hit + strlen(argv[4])));
				} else {
					jb_raw(&line, rest, strlen(rest));
				}
				free(rest);
			}
			entry_hash(line.p, line.len, last);
			jb_raw(&segs[i].out, line.p, line.len);
			jb_putc(&segs[i].out, '\n');
			if (!strcmp(kind, "seal") && i == nsegs - 1) {
				snprintf(path, sizeof(path), "%s/HEAD", argv[1]);
				FILE *f = fopen(path, "w");
				if (!f || fwrite(line.p, 1, line.len, f) != line.len ||
				    fputc('\n', f) == EOF || fclose(f))
					err(2, "%s", path);
			}
			jb_free(&line);
			p = nl ? nl + 1 : buf + len;
		}
		free(buf);
	}
	for (size_t i = 0; i < nsegs; i++) {
		unsigned char *z = NULL;
		size_t zlen = segs[i].out.len;
		const void *data = segs[i].out.p;
		bool compressed = strstr(segs[i].name, ".z") != NULL;

		if (compressed && z_deflate(segs[i].out.p, segs[i].out.len, &z, &zlen) < 0)
			errx(2, "deflate");
		if (compressed)
			data = z;
		snprintf(path, sizeof(path), "%s/%s", argv[1], segs[i].name);
		int fd = open(path, O_WRONLY | O_TRUNC);
		if (fd < 0 || write(fd, data, zlen) != (ssize_t)zlen || close(fd) < 0)
			err(2, "%s", path);
		free(z);
		jb_free(&segs[i].out);
	}
	printf("forged entry %llu, re-signed with epoch %llu\n", (unsigned long long)target,
	       (unsigned long long)sg.epoch);
	signer_close(&sg);
	keys_free_schedule(&sched);
	free(segs);
	return 0;
}
