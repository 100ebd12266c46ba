/* make-vector: writes the test vector of docs/FORMAT.md: a tiny sealed log, the public
 * files of its keys and expected.txt, the hash of every entry. Run once; the output is
 * committed, so any implementation of the format can check itself against it.
 *
 *   gcc -O2 -std=gnu11 -Iuser tests/vectors/make-vector.c user/keys.c user/logfmt.c \
 *       user/json.c user/util.c -o /tmp/make-vector -lcrypto -lz
 *   /tmp/make-vector tests/vectors           (as root: keygen wants a root-owned dir)
 *
 * Layout: OUT/root.pub, OUT/epochs.pub, OUT/log/{seg-*.log.z,HEAD}, OUT/expected.txt.
 * Times are fixed (t0 = 1795000000, 2 epochs of an hour), so the vector verifies forever;
 * the keys are random, made here and thrown away (the private ones are never written to
 * OUT). Segment 1 is sealed in epoch 0, segment 2 in epoch 1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "keys.h"
#include "logfmt.h"
#include "util.h"

#define T0  1795000000ull
#define SEC 1000000000ull

struct vec {
	struct epoch_schedule s;
	struct epoch_signer sg;
	char host_hex[33], root_id[65];
	uint64_t seq, first, ns;
	unsigned char last[32];
	unsigned segment;
	struct jbuf seg, expected;
	const char *out;
	char *head;
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

static void __attribute__((format(printf, 2, 3))) entry(struct vec *v, const char *fmt, ...)
{
	char prev[65], hx[65], *body, *line;
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		errx(1, "out of memory");
	va_end(ap);
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
		      "\"epochs\":%llu,\"max_interval\":%llu",
		      tm(v), LOG_FORMAT, v->host_hex, v->root_id, (unsigned long long)v->s.t0,
		      (unsigned long long)v->s.len, (unsigned long long)v->s.n,
		      (unsigned long long)v->s.max_interval);
	entry(v,
	      "\"kind\":\"segment\",\"time\":\"%s\",\"segment\":%u,\"host_id\":\"%s\","
	      "\"worm\":\"append-only\",\"fsync\":\"boundary\"",
	      tm(v), n, v->host_hex);
}

static void seal(struct vec *v, const char *reason)
{
	unsigned char msg[SEAL_MSG_MAX], sig[64], pub[32];
	char t[TIME_LEN], lh[65], kh[65], sh[129], e[KEYS_ERRLEN], name[64];
	uint64_t ep, count = v->seq - v->first;
	unsigned char *z;
	size_t zl, ml;

	fmt_time(v->ns, t);
	ep = epoch_of(&v->s, v->ns / SEC);
	if (ep == UINT64_MAX || (ep > v->sg.epoch && signer_advance(&v->sg, ep, e, sizeof(e)) < 0))
		errx(1, "epoch %llu: %s", (unsigned long long)ep, e);
	ml = seal_message(msg, v->s.host_id, v->segment, v->first, count, v->last, ep, t);
	if (signer_sign(&v->sg, msg, ml, sig) < 0)
		errx(1, "cannot sign");
	signer_public(&v->sg, pub);
	hex(v->last, 32, lh);
	hex(pub, 32, kh);
	hex(sig, 64, sh);
	entry(v,
	      "\"kind\":\"seal\",\"time\":\"%s\",\"segment\":%u,\"first_seq\":%llu,\"count\":%llu,"
	      "\"last_hash\":\"%s\",\"reason\":\"%s\",\"epoch\":%llu,\"epoch_key\":\"%s\","
	      "\"sig\":\"%s\"",
	      t, v->segment, (unsigned long long)v->first, (unsigned long long)count, lh, reason,
	      (unsigned long long)ep, kh, sh);
	/* HEAD: the seal line verbatim, with its newline. */
	const char *endl = v->seg.p + v->seg.len - 1, *start = endl;

	while (start > v->seg.p && start[-1] != '\n')
		start--;
	free(v->head);
	v->head = xmalloc((size_t)(endl - start) + 2);
	memcpy(v->head, start, (size_t)(endl - start) + 1);
	v->head[endl - start + 1] = '\0';
	if (z_deflate(v->seg.p, v->seg.len, &z, &zl) < 0)
		errx(1, "deflate");
	snprintf(name, sizeof(name), "log/seg-%016u.log.z", v->segment);
	put_file(v->out, name, z, zl);
	free(z);
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

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/make-vector.XXXXXX", keys[64], e[KEYS_ERRLEN], path[PATH_MAX];
	char rid[65], hid[33], logdir[PATH_MAX];
	unsigned char host[16], root[32];
	struct vec v = {0};

	if (argc != 2)
		errx(2, "usage: make-vector OUTDIR");
	v.out = argv[1];
	if (!mkdtemp(tmpl))
		err(1, "mkdtemp");
	snprintf(keys, sizeof(keys), "%s/keys", tmpl);
	if (keys_generate(keys, T0, 3600, 2, 60, getuid(), rid, hid, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	snprintf(path, sizeof(path), "%s/root.pub", keys);
	if (keys_load_root_pub(path, host, root, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	snprintf(path, sizeof(path), "%s/epochs.pub", keys);
	if (keys_load_schedule(path, root, &v.s, e, sizeof(e)) < 0 ||
	    signer_open(keys, getuid(), &v.sg, e, sizeof(e)) < 0)
		errx(1, "%s", e);
	snprintf(v.host_hex, sizeof(v.host_hex), "%s", hid);
	snprintf(v.root_id, sizeof(v.root_id), "%s", rid);
	snprintf(logdir, sizeof(logdir), "%s/log", v.out);
	mkdir(v.out, 0755);
	mkdir(logdir, 0755);
	copy_file(keys, v.out, "root.pub");
	copy_file(keys, v.out, "epochs.pub");
	const char *hdr = "# seq, then the entry's hash: SHA-256(0x00 || line without '\\n')\n";

	jb_raw(&v.expected, hdr, strlen(hdr));

	v.ns = (T0 + 100) * SEC + 1;
	open_segment(&v, 1);
	records(&v, "019a0000-0000-7000-8000-00000000abcd");
	v.ns += SEC / 2;
	seal(&v, "run_end");

	v.ns = (T0 + 3600 + 100) * SEC; /* epoch 1 */
	open_segment(&v, 2);
	records(&v, "019a0000-0000-7000-8000-00000000abce");
	entry(&v,
	      "\"kind\":\"loss\",\"time\":\"%s\",\"run\":\"019a0000-0000-7000-8000-00000000abce\","
	      "\"count\":2,\"kinds\":{\"exec\":0,\"fork\":0,\"exit\":0,\"open\":2,\"connect\":0,"
	      "\"malformed\":0}",
	      tm(&v));
	v.ns += SEC / 2;
	seal(&v, "shutdown");
	put_file(v.out, "log/HEAD", v.head, strlen(v.head));
	put_file(v.out, "expected.txt", v.expected.p, v.expected.len);

	signer_close(&v.sg);
	keys_free_schedule(&v.s);
	jb_free(&v.seg);
	jb_free(&v.expected);
	free(v.head);
	/* The private keys go: nothing but public material leaves this program. */
	static const char *const priv[] = {"root.key", "epoch.key", "root.pub", "epochs.pub"};
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", keys, priv[i]);
		unlink(path);
	}
	rmdir(keys);
	rmdir(tmpl);
	printf("wrote %s: root.pub, epochs.pub, log/, expected.txt (%llu entries)\n", v.out,
	       (unsigned long long)v.seq);
	return 0;
}
