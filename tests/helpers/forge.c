/* forge: play the attacker who has root on the host after a compromise, for the
 * forward-security test. It edits one entry of a sealed log, re-chains every entry after it
 * and re-signs every seal with the only signing key the host still holds: the current
 * epoch's. The verifier must still reject the result.
 *
 * Usage: forge LOGDIR KEYDIR SEQ OLD NEW   (replace the first OLD by NEW in entry SEQ)
 * The log's files must be writable (the test clears their inode flags first, as an attacker
 * would). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
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
	mlen = seal_message(msg, s->host_id, segment, first, count, last, sg->epoch, t);
	if (signer_sign(sg, msg, mlen, sig) < 0)
		errx(2, "cannot sign");
	signer_public(sg, pub);
	hex(last, 32, lh);
	hex(pub, 32, ph);
	hex(sig, 64, sh);
	char *l = xasprintf(
	    "{\"seq\":%llu,\"prev\":\"%s\",\"kind\":\"seal\",\"time\":\"%s\","
	    "\"segment\":%llu,\"first_seq\":%llu,\"count\":%llu,\"last_hash\":\"%s\","
	    "\"reason\":\"%s\",\"epoch\":%llu,\"epoch_key\":\"%s\",\"sig\":\"%s\"}",
	    (unsigned long long)seq, lh, t, (unsigned long long)segment, (unsigned long long)first,
	    (unsigned long long)count, lh, reason, (unsigned long long)sg->epoch, ph, sh);
	jb_raw(o, l, strlen(l));
	free(l);
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

	if (argc != 6)
		errx(2, "usage: forge LOGDIR KEYDIR SEQ OLD NEW");
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
