#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keys.h"
#include "util.h"

/* The loader's bound, and generate's too, so that every schedule made here also loads. It
 * also keeps an epoch within the 16 digits of epoch.key. */
#define EPOCHS_MAX     1000000ull
#define EPOCH_KEY_LEN  82
#define ROOT_PUB_LEN   114 /* "runseal-root-v1 " + 32 + ' ' + 64 + '\n' */
#define ROOT_KEY_LEN   118 /* "runseal-root-key-v1 " + 32 + ' ' + 64 + '\n' */
#define SCHED_LINE_MAX 320 /* the longest valid line is about 240 bytes */

static const char seed_label[] = "runseal-epoch-seed-v1";
static const char *const key_files[] = {"root.key", "root.pub", "epochs.pub", "epoch.key"};

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- Pure helpers ---------------------------------------------------------------------- */

static void sha256(const void *in, size_t n, unsigned char out[32])
{
	/* Only an OpenSSL that cannot load SHA-256 fails here; going on would sign with a
	 * garbage seed, so stop like xmalloc does. */
	if (EVP_Digest(in, n, out, NULL, EVP_sha256(), NULL) != 1)
		errx(2, "OpenSSL cannot compute SHA-256; check the OpenSSL installation");
}

void key_id(const unsigned char pub[32], char out[65])
{
	unsigned char h[32];

	sha256(pub, 32, h);
	hex(h, 32, out);
}

void epoch_seed_next(const unsigned char seed[32], unsigned char next[32])
{
	unsigned char buf[sizeof(seed_label) - 1 + 32];

	memcpy(buf, seed_label, sizeof(seed_label) - 1);
	memcpy(buf + sizeof(seed_label) - 1, seed, 32);
	sha256(buf, sizeof(buf), next); /* buf is a copy, so next may alias seed */
	OPENSSL_cleanse(buf, sizeof(buf));
}

static int pkey_sign(EVP_PKEY *pk, const unsigned char *msg, size_t len, unsigned char sig[64])
{
	/* Some OpenSSL paths reject a NULL message even when its length is 0. */
	static const unsigned char empty[1];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = 64;
	int ok;

	if (!ctx)
		return -1;
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	     EVP_DigestSign(ctx, sig, &siglen, len ? msg : empty, len) == 1 && siglen == 64;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int ed25519_public(const unsigned char seed[32], unsigned char pub[32])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	size_t len = 32;
	int ok;

	if (!pk)
		return -1;
	ok = EVP_PKEY_get_raw_public_key(pk, pub, &len) == 1 && len == 32;
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

int ed25519_sign(const unsigned char seed[32], const unsigned char *msg, size_t len,
		 unsigned char sig[64])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	int r;

	if (!pk)
		return -1;
	r = pkey_sign(pk, msg, len, sig);
	EVP_PKEY_free(pk);
	return r;
}

bool ed25519_verify(const unsigned char pub[32], const unsigned char *msg, size_t len,
		    const unsigned char sig[64])
{
	static const unsigned char empty[1];
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *ctx;
	bool ok;

	if (!pk)
		return false;
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	     EVP_DigestVerify(ctx, sig, 64, len ? msg : empty, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
	return p + 8;
}

static unsigned char *put(unsigned char *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

size_t seal_message(unsigned char out[SEAL_MSG_MAX], const unsigned char host_id[16],
		    const char *line, size_t len)
{
	/* sizeof includes the NUL, which is the 0x00 separator of the format. */
	static const char label[] = "runseal-seal-v2";
	unsigned char *p = out;

	if (len > SEAL_LINE_MAX)
		return 0;
	p = put(p, label, sizeof(label));
	p = put(p, host_id, 16);
	p = put(p, line, len);
	return (size_t)(p - out);
}

int seal_split(const char *line, size_t len, size_t *signed_len, unsigned char sig[64])
{
	static const char pre[] = ",\"sig\":\"";
	const size_t tail = sizeof(pre) - 1 + 128 + 2;
	const char *t;

	if (len < tail || len > SEAL_LINE_MAX + tail)
		return -1;
	t = line + len - tail;
	if (memcmp(t, pre, sizeof(pre) - 1) || memcmp(line + len - 2, "\"}", 2) ||
	    unhex(t + sizeof(pre) - 1, 128, sig, 64))
		return -1;
	*signed_len = len - tail;
	return 0;
}

size_t cert_message(unsigned char out[CERT_MSG_MAX], const unsigned char host_id[16], uint64_t e,
		    uint64_t not_before, uint64_t not_after, uint64_t max_interval,
		    uint64_t late_slack, const unsigned char pub[32])
{
	static const char label[] = "runseal-epoch-v1";
	unsigned char *p = out;

	p = put(p, label, sizeof(label));
	p = put(p, host_id, 16);
	p = put_u64(p, e);
	p = put_u64(p, not_before);
	p = put_u64(p, not_after);
	p = put_u64(p, max_interval);
	p = put_u64(p, late_slack);
	p = put(p, pub, 32);
	return (size_t)(p - out);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int unhex(const char *s, size_t slen, unsigned char *out, size_t n)
{
	if (slen != 2 * n)
		return -1;
	/* Validate everything first so that a bad string leaves out untouched. */
	for (size_t i = 0; i < slen; i++)
		if (hexval(s[i]) < 0)
			return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	return 0;
}

/* Strict decimal: digits only, no sign, no leading zero, no overflow. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Splits a line at single spaces into exactly n non-empty fields. */
static int split(const char *line, size_t len, const char **f, size_t *fl, size_t n)
{
	size_t k = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (k == n || i == start)
			return -1;
		f[k] = line + start;
		fl[k++] = i - start;
		start = i + 1;
	}
	return k == n ? 0 : -1;
}

static bool field_is(const char *f, size_t fl, const char *s)
{
	return fl == strlen(s) && memcmp(f, s, fl) == 0;
}

/* The numbers of a schedule, shared by keygen and the loader so that they agree. */
static const char *schedule_problem(uint64_t t0, uint64_t len, uint64_t n, uint64_t max_interval,
				    uint64_t late_slack)
{
	if (len == 0)
		return "epoch length is 0";
	if (n == 0)
		return "number of epochs is 0";
	if (n > EPOCHS_MAX)
		return "more than 1000000 epochs";
	if (max_interval == 0)
		return "max_interval is 0";
	/* A record may be sealed up to max_interval + late_slack after its time: were that
	 * an epoch or more, a key of epoch e could seal records of all of epoch e-1, and a
	 * compromise would reach back a whole epoch. */
	if (late_slack >= len || max_interval >= len - late_slack)
		return "max_interval + late_slack is not shorter than an epoch (a record could "
		       "be sealed by the key of a later epoch than the next)";
	if (len > UINT64_MAX / n || t0 > UINT64_MAX - len * n)
		return "the last epoch ends after the year 584 billion (t0 + N*L overflows)";
	return NULL;
}

bool epoch_cert_ok(const struct epoch_schedule *s, uint64_t e)
{
	unsigned char msg[CERT_MSG_MAX];
	size_t n;

	if (!s->pub || !s->cert || e >= s->n)
		return false;
	n = cert_message(msg, s->host_id, e, s->t0 + e * s->len, s->t0 + (e + 1) * s->len,
			 s->max_interval, s->late_slack, s->pub[e]);
	return ed25519_verify(s->root_pub, msg, n, s->cert[e]);
}

uint64_t epoch_of(const struct epoch_schedule *s, uint64_t t)
{
	uint64_t e;

	if (t < s->t0 || s->len == 0)
		return UINT64_MAX;
	e = (t - s->t0) / s->len;
	return e < s->n ? e : UINT64_MAX;
}

/* ---- Files --------------------------------------------------------------------------- */

/* A write buffer so that a million schedule lines do not cost a million syscalls. */
struct outbuf {
	int fd;
	size_t n;
	int failed;
	char buf[65536];
};

static void out_write(struct outbuf *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->n + n > sizeof(o->buf)) {
		if (write_all(o->fd, o->buf, o->n) < 0) {
			o->failed = 1;
			return;
		}
		o->n = 0;
	}
	memcpy(o->buf + o->n, s, n);
	o->n += n;
}

static int out_flush(struct outbuf *o)
{
	if (!o->failed && o->n && write_all(o->fd, o->buf, o->n) < 0)
		o->failed = 1;
	o->n = 0;
	return o->failed ? -1 : 0;
}

struct gen {
	unsigned char host_id[16];
	char host_hex[33];
	char root_id[65];
	uint64_t t0, len, n, max_interval, late_slack;
	unsigned char (*pub)[32];
	unsigned char (*cert)[64];
	const char *text; /* the content of a small file */
	size_t textlen;
};

static int emit_text(int fd, const struct gen *g)
{
	return write_all(fd, g->text, g->textlen);
}

static int emit_schedule(int fd, const struct gen *g)
{
	struct outbuf *o = xcalloc(1, sizeof(*o));
	char line[SCHED_LINE_MAX], pubhex[65], certhex[129];
	int n, r;

	o->fd = fd;
	n = snprintf(line, sizeof(line),
		     "runseal-epochs-v1 %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		     " %" PRIu64 "\n",
		     g->host_hex, g->root_id, g->t0, g->len, g->n, g->max_interval, g->late_slack);
	out_write(o, line, (size_t)n);
	for (uint64_t e = 0; e < g->n; e++) {
		hex(g->pub[e], 32, pubhex);
		hex(g->cert[e], 64, certhex);
		n = snprintf(line, sizeof(line), "%" PRIu64 " %s %s\n", e, pubhex, certhex);
		out_write(o, line, (size_t)n);
	}
	r = out_flush(o);
	free(o);
	return r;
}

/* Gives name its content atomically: readers see either no file or the whole of it, and a
 * crash never leaves a half-written key under its real name. */
static int write_atomic(int dirfd, const char *dir, const char *name, mode_t mode,
			int (*emit)(int, const struct gen *), const struct gen *g, char *err,
			size_t errlen)
{
	char tmp[64];
	int fd, r;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	/* A leftover of an interrupted keygen; the directory is root's alone, so removing it
	 * races with nobody but another keygen, which NOREPLACE below catches. */
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return fail(err, errlen, "%s/%s: cannot create: %s; check that %s is writable", dir,
			    tmp, strerror(errno), dir);
	/* The umask may have removed bits of the mode docs/FORMAT.md requires. */
	if (fchmod(fd, mode) < 0 || emit(fd, g) < 0 || fsync(fd) < 0) {
		r = fail(err, errlen, "%s/%s: cannot write: %s; check the disk and retry", dir, tmp,
			 strerror(errno));
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (close(fd) < 0) {
		r = fail(err, errlen, "%s/%s: cannot write: %s; check the disk and retry", dir, tmp,
			 strerror(errno));
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	/* NOREPLACE so that two keygens running at once cannot overwrite each other's keys;
	 * file systems without it get the plain rename (the existence check came first). */
	r = renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE);
	if (r < 0 && (errno == EINVAL || errno == ENOSYS))
		r = renameat(dirfd, tmp, dirfd, name);
	if (r < 0) {
		r = fail(err, errlen, "%s/%s: cannot rename to %s: %s; %s", dir, tmp, name,
			 strerror(errno),
			 errno == EEXIST ? "another keygen ran at the same time" : "retry");
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (fsync(dirfd) < 0)
		return fail(err, errlen, "%s: cannot fsync the directory: %s; check the disk", dir,
			    strerror(errno));
	return 0;
}

/* The key directory must be its owner's alone (root's on a host): anyone else who can enter
 * it could read a seed or swap a file. */
static int check_dir(int dirfd, const char *dir, uid_t owner, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(dirfd, &st) < 0)
		return fail(err, errlen, "%s: %s", dir, strerror(errno));
	if (st.st_uid != owner)
		return fail(err, errlen, "%s: owned by uid %u, not uid %u; chown %u %s", dir,
			    (unsigned)st.st_uid, (unsigned)owner, (unsigned)owner, dir);
	if (st.st_mode & 077)
		return fail(err, errlen, "%s: mode %04o lets others into it; chmod 0700 %s", dir,
			    (unsigned)(st.st_mode & 07777), dir);
	return 0;
}

static int open_dir(const char *dir, char *err, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return fail(err, errlen, "%s: no keys (run `runseal keygen`)", dir);
	if (fd < 0)
		return fail(err, errlen, "%s: cannot open the key directory: %s", dir,
			    strerror(errno));
	return fd;
}

static void format_epoch_key(char buf[EPOCH_KEY_LEN + 1], uint64_t epoch,
			     const unsigned char seed[32])
{
	char seedhex[65];

	hex(seed, 32, seedhex);
	snprintf(buf, EPOCH_KEY_LEN + 1, "%016" PRIu64 " %s\n", epoch, seedhex);
	OPENSSL_cleanse(seedhex, sizeof(seedhex));
}

struct part {
	const struct gen *g;
	const unsigned char *root_seed, *seed0;
	uint64_t from, to;
	int r;
	pthread_t tid;
};

/* Computes the keys of epochs [from, to) from seed_0 and has the root key certify them. */
static void *make_part(void *arg)
{
	struct part *w = arg;
	const struct gen *g = w->g;
	EVP_PKEY *root = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, w->root_seed, 32);
	unsigned char seed[32], msg[CERT_MSG_MAX];

	w->r = root ? 0 : -1;
	memcpy(seed, w->seed0, 32);
	for (uint64_t e = 0; e < w->from; e++)
		epoch_seed_next(seed, seed);
	for (uint64_t e = w->from; e < w->to && w->r == 0; e++) {
		size_t n;

		if (ed25519_public(seed, g->pub[e]) < 0) {
			w->r = -1;
			break;
		}
		n = cert_message(msg, g->host_id, e, g->t0 + e * g->len, g->t0 + (e + 1) * g->len,
				 g->max_interval, g->late_slack, g->pub[e]);
		w->r = pkey_sign(root, msg, n, g->cert[e]);
		epoch_seed_next(seed, seed);
	}
	OPENSSL_cleanse(seed, sizeof(seed));
	EVP_PKEY_free(root); /* OpenSSL clears the private key it held */
	return NULL;
}

/* Two scalar multiplications per epoch make a year of epochs about a second of one slow
 * core, so the epochs are shared among the CPUs. Each part hashes its way from seed_0 to
 * its first seed, which costs microseconds. */
static int make_schedule(struct gen *g, const unsigned char root_seed[32],
			 const unsigned char seed0[32])
{
	struct part w[8];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t nw = cpus < 1 ? 1 : cpus > 8 ? 8 : (uint64_t)cpus;
	bool started[8] = {false};
	int r = 0;

	memset(w, 0, sizeof(w));
	if (nw > g->n / 256)
		nw = g->n / 256 ? g->n / 256 : 1;
	for (uint64_t i = 0; i < nw; i++)
		w[i] = (struct part){.g = g,
				     .root_seed = root_seed,
				     .seed0 = seed0,
				     .from = g->n * i / nw,
				     .to = g->n * (i + 1) / nw};
	for (uint64_t i = 1; i < nw; i++)
		started[i] = pthread_create(&w[i].tid, NULL, make_part, &w[i]) == 0;
	make_part(&w[0]);
	for (uint64_t i = 1; i < nw; i++) {
		if (started[i])
			pthread_join(w[i].tid, NULL);
		else
			make_part(&w[i]); /* no thread: do it here, only slower */
		r |= w[i].r;
	}
	return r | w[0].r;
}

int keys_generate(const char *dir, uint64_t t0, uint64_t epoch_seconds, uint64_t epochs,
		  uint64_t max_interval, uint64_t late_slack, uid_t owner, char root_id[65],
		  char host_id[33], char *err, size_t errlen)
{
	unsigned char root_seed[32], seed0[32], root_pub[32];
	char seedhex[65], text[160];
	const char *problem = schedule_problem(t0, epoch_seconds, epochs, max_interval, late_slack);
	struct gen g = {.t0 = t0,
			.len = epoch_seconds,
			.n = epochs,
			.max_interval = max_interval,
			.late_slack = late_slack};
	bool done[4] = {false};
	int dirfd = -1, r = -1;
	size_t i;

	if (problem)
		return fail(err, errlen, "%s: cannot make keys: %s; pick other numbers", dir,
			    problem);
	if (mkdir(dir, 0700) == 0) {
		dirfd = open_dir(dir, err, errlen);
		/* The umask may have removed bits; 0700 is what the format asks. */
		if (dirfd >= 0 && fchmod(dirfd, 0700) < 0) {
			fail(err, errlen, "%s: cannot chmod 0700: %s", dir, strerror(errno));
			close(dirfd);
			return -1;
		}
	} else if (errno == EEXIST) {
		dirfd = open_dir(dir, err, errlen);
	} else {
		return fail(err, errlen,
			    "%s: cannot create the key directory: %s; create its parent or pick "
			    "another directory",
			    dir, strerror(errno));
	}
	if (dirfd < 0)
		return -1;
	if (check_dir(dirfd, dir, owner, err, errlen) < 0)
		goto out_dir;
	for (i = 0; i < 4; i++) {
		struct stat st;

		if (fstatat(dirfd, key_files[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			fail(err, errlen,
			     "keys already exist in %s (%s); move them away first to make new "
			     "ones",
			     dir, key_files[i]);
			goto out_dir;
		}
		if (errno != ENOENT) {
			fail(err, errlen, "%s/%s: cannot check: %s; run as root", dir, key_files[i],
			     strerror(errno));
			goto out_dir;
		}
	}

	if (RAND_bytes(g.host_id, 16) != 1 || RAND_bytes(root_seed, 32) != 1 ||
	    RAND_bytes(seed0, 32) != 1) {
		fail(err, errlen,
		     "%s: no randomness from OpenSSL (RAND_bytes); check the system "
		     "entropy source and retry",
		     dir);
		goto out_secrets;
	}
	if (ed25519_public(root_seed, root_pub) < 0)
		goto out_crypto;
	hex(g.host_id, 16, g.host_hex);
	key_id(root_pub, g.root_id);
	g.pub = xcalloc(epochs, 32);
	g.cert = xcalloc(epochs, 64);
	if (make_schedule(&g, root_seed, seed0) < 0)
		goto out_crypto;

	/* epoch.key last: keys_exist() is only true once the set is complete. */
	hex(root_seed, 32, seedhex);
	g.textlen = (size_t)snprintf(text, sizeof(text), "runseal-root-key-v1 %s %s\n", g.host_hex,
				     seedhex);
	g.text = text;
	if (write_atomic(dirfd, dir, "root.key", 0400, emit_text, &g, err, errlen) < 0)
		goto out_files;
	done[0] = true;
	hex(root_pub, 32, seedhex);
	g.textlen =
	    (size_t)snprintf(text, sizeof(text), "runseal-root-v1 %s %s\n", g.host_hex, seedhex);
	if (write_atomic(dirfd, dir, "root.pub", 0444, emit_text, &g, err, errlen) < 0)
		goto out_files;
	done[1] = true;
	if (write_atomic(dirfd, dir, "epochs.pub", 0444, emit_schedule, &g, err, errlen) < 0)
		goto out_files;
	done[2] = true;
	format_epoch_key(text, 0, seed0);
	g.textlen = EPOCH_KEY_LEN;
	if (write_atomic(dirfd, dir, "epoch.key", 0600, emit_text, &g, err, errlen) < 0)
		goto out_files;
	done[3] = true;
	if (root_id)
		memcpy(root_id, g.root_id, 65);
	if (host_id)
		memcpy(host_id, g.host_hex, 33);
	r = 0;
	goto out_secrets;

out_crypto:
	fail(err, errlen,
	     "%s: OpenSSL failed to make an Ed25519 key or signature; check the "
	     "OpenSSL installation (3.0 or later)",
	     dir);
	goto out_secrets;
out_files:
	/* A partial set would make the next keygen refuse and signer_open fail; these files
	 * are ours (no replace), so take them back. */
	for (i = 0; i < 4; i++)
		if (done[i])
			unlinkat(dirfd, key_files[i], 0);
	fsync(dirfd);
out_secrets:
	OPENSSL_cleanse(root_seed, sizeof(root_seed));
	OPENSSL_cleanse(seed0, sizeof(seed0));
	OPENSSL_cleanse(seedhex, sizeof(seedhex));
	OPENSSL_cleanse(text, sizeof(text));
	free(g.pub);
	free(g.cert);
out_dir:
	close(dirfd);
	return r;
}

bool keys_exist(const char *dir)
{
	static const char *const pub_set[] = {"root.pub", "epochs.pub", "epoch.key"};
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok = dirfd >= 0;

	for (size_t i = 0; ok && i < 3; i++) {
		struct stat st;

		ok = fstatat(dirfd, pub_set[i], &st, 0) == 0 && S_ISREG(st.st_mode);
	}
	if (dirfd >= 0)
		close(dirfd);
	return ok;
}

/* Reads a whole small file; more than cap - 1 bytes is an error. */
static int read_small(const char *path, char *buf, size_t cap, size_t *len, char *err,
		      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd < 0 && errno == ENOENT)
		return fail(err, errlen,
			    "%s: not found (run `runseal keygen`, or give the right "
			    "file)",
			    path);
	if (fd < 0)
		return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			close(fd);
			return fail(err, errlen,
				    "%s: too long for a runseal key file; give the "
				    "root.pub made by `runseal keygen`",
				    path);
		}
	}
	close(fd);
	*len = n;
	return 0;
}

int keys_load_root_pub(const char *path, unsigned char host_id[16], unsigned char pub[32],
		       char *err, size_t errlen)
{
	static const char prefix[] = "runseal-root-v1 ";
	char buf[256];
	size_t len = 0;

	if (read_small(path, buf, sizeof(buf), &len, err, errlen) < 0)
		return -1;
	if (len != ROOT_PUB_LEN || memcmp(buf, prefix, sizeof(prefix) - 1) != 0 || buf[48] != ' ' ||
	    buf[ROOT_PUB_LEN - 1] != '\n' || unhex(buf + 16, 32, host_id, 16) ||
	    unhex(buf + 49, 64, pub, 32))
		return fail(err, errlen,
			    "%s: not a runseal root public key (want one line `runseal-root-v1 "
			    "<32 hex> <64 hex>`); copy root.pub again from the key directory",
			    path);
	return 0;
}

enum { LINE_EOF, LINE_OK, LINE_LONG, LINE_NUL, LINE_UNTERMINATED, LINE_IOERR };

/* One '\n'-terminated line, without the '\n', of at most cap - 1 bytes: a bound so that a
 * hostile file cannot make us allocate, and no NUL so that string functions see it all. */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	int c;

	while ((c = getc_unlocked(f)) != EOF) {
		if (c == '\n') {
			buf[n] = '\0';
			*len = n;
			return LINE_OK;
		}
		if (c == '\0')
			return LINE_NUL;
		if (n + 1 >= cap)
			return LINE_LONG;
		buf[n++] = (char)c;
	}
	if (ferror(f))
		return LINE_IOERR;
	return n ? LINE_UNTERMINATED : LINE_EOF;
}

static int line_problem(const char *path, uint64_t lineno, int r, char *err, size_t errlen)
{
	static const char *const what[] = {
	    [LINE_EOF] = "missing (the file ends early)",
	    [LINE_LONG] = "too long",
	    [LINE_NUL] = "contains a NUL byte",
	    [LINE_UNTERMINATED] = "has no final newline",
	    [LINE_IOERR] = "cannot be read",
	};

	return fail(err, errlen, "%s:%" PRIu64 ": line %s; use the epochs.pub made by keygen", path,
		    lineno, what[r]);
}

static int parse_header(const char *path, const char *line, size_t len,
			const unsigned char root_pub[32], struct epoch_schedule *s, char *err,
			size_t errlen)
{
	const char *f[8];
	size_t fl[8];
	char want_id[65];
	const char *problem;

	if (split(line, len, f, fl, 8) < 0 || !field_is(f[0], fl[0], "runseal-epochs-v1") ||
	    unhex(f[1], fl[1], s->host_id, 16) || parse_u64(f[3], fl[3], &s->t0) ||
	    parse_u64(f[4], fl[4], &s->len) || parse_u64(f[5], fl[5], &s->n) ||
	    parse_u64(f[6], fl[6], &s->max_interval) || parse_u64(f[7], fl[7], &s->late_slack))
		return fail(err, errlen,
			    "%s:1: not a runseal epoch schedule header (want `runseal-epochs-v1 "
			    "<host id> <root key id> <t0> <L> <N> <max_interval> <late_slack>`); "
			    "use the "
			    "epochs.pub made by keygen",
			    path);
	key_id(root_pub, want_id);
	if (!field_is(f[2], fl[2], want_id))
		return fail(err, errlen,
			    "%s:1: schedule of root key %.*s, but the root key is %s; use the "
			    "epochs.pub made with this root.pub",
			    path, (int)(fl[2] > 64 ? 64 : fl[2]), f[2], want_id);
	problem = schedule_problem(s->t0, s->len, s->n, s->max_interval, s->late_slack);
	if (problem)
		return fail(err, errlen,
			    "%s:1: bad schedule: %s; use the epochs.pub made by keygen", path,
			    problem);
	return 0;
}

static int parse_epoch_line(const char *path, uint64_t e, const char *line, size_t len,
			    struct epoch_schedule *s, char *err, size_t errlen)
{
	const char *f[3];
	size_t fl[3];
	uint64_t got;

	if (split(line, len, f, fl, 3) < 0 || parse_u64(f[0], fl[0], &got) ||
	    unhex(f[1], fl[1], s->pub[e], 32) || unhex(f[2], fl[2], s->cert[e], 64))
		return fail(err, errlen,
			    "%s:%" PRIu64 ": not an epoch line (want `<epoch> <64 hex> <128 "
			    "hex>`); use the epochs.pub made by keygen",
			    path, e + 2);
	if (got != e)
		return fail(err, errlen,
			    "%s:%" PRIu64 ": epoch %" PRIu64 " where epoch %" PRIu64
			    " belongs; use the epochs.pub made by keygen",
			    path, e + 2, got, e);
	return 0;
}

int keys_load_schedule(const char *path, const unsigned char root_pub[32], struct epoch_schedule *s,
		       char *err, size_t errlen)
{
	char line[SCHED_LINE_MAX];
	size_t len = 0;
	FILE *f;
	int r;

	memset(s, 0, sizeof(*s));
	memcpy(s->root_pub, root_pub, 32);
	f = fopen(path, "re");
	if (!f && errno == ENOENT)
		return fail(err, errlen,
			    "%s: not found (run `runseal keygen`, or give the key "
			    "directory that holds epochs.pub)",
			    path);
	if (!f)
		return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	r = read_line(f, line, sizeof(line), &len);
	if (r != LINE_OK) {
		line_problem(path, 1, r, err, errlen);
		goto bad;
	}
	if (parse_header(path, line, len, root_pub, s, err, errlen) < 0)
		goto bad;
	s->pub = xcalloc(s->n, 32);
	s->cert = xcalloc(s->n, 64);
	for (uint64_t e = 0; e < s->n; e++) {
		r = read_line(f, line, sizeof(line), &len);
		if (r != LINE_OK) {
			line_problem(path, e + 2, r, err, errlen);
			goto bad;
		}
		if (parse_epoch_line(path, e, line, len, s, err, errlen) < 0)
			goto bad;
	}
	r = read_line(f, line, sizeof(line), &len);
	if (r != LINE_EOF) {
		fail(err, errlen,
		     "%s:%" PRIu64 ": more than the %" PRIu64 " epochs of the header; use the "
		     "epochs.pub made by keygen",
		     path, s->n + 2, s->n);
		goto bad;
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	keys_free_schedule(s);
	return -1;
}

void keys_free_schedule(struct epoch_schedule *s)
{
	free(s->pub);
	free(s->cert);
	memset(s, 0, sizeof(*s));
}

/* ---- The host's signer ----------------------------------------------------------------- */

static int parse_epoch_key(const char *buf, uint64_t *epoch, unsigned char seed[32])
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(buf[i] - '0');
	}
	if (buf[16] != ' ' || buf[EPOCH_KEY_LEN - 1] != '\n' || unhex(buf + 17, 64, seed, 32))
		return -1;
	*epoch = v;
	return 0;
}

int signer_open(const char *dir, uid_t owner, struct epoch_signer *sg, char *err, size_t errlen)
{
	char buf[EPOCH_KEY_LEN + 1];
	struct stat st;
	int dirfd, fd;
	ssize_t n;

	memset(sg, 0, sizeof(*sg));
	sg->fd = -1;
	dirfd = open_dir(dir, err, errlen);
	if (dirfd < 0)
		return -1;
	if (check_dir(dirfd, dir, owner, err, errlen) < 0) {
		close(dirfd);
		return -1;
	}
	/* NOFOLLOW: a link could point the overwrite at any file; NONBLOCK and NOCTTY: a FIFO
	 * or device put there must not hang or take over the terminal before fstat sees it. */
	fd = openat(dirfd, "epoch.key", O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	close(dirfd);
	if (fd < 0 && errno == ENOENT)
		return fail(err, errlen, "%s: no keys (run `runseal keygen`)", dir);
	if (fd < 0 && errno == ELOOP)
		return fail(err, errlen,
			    "%s/epoch.key: is a symbolic link; put the real file there (mode "
			    "0600, owned by root)",
			    dir);
	if (fd < 0)
		return fail(err, errlen, "%s/epoch.key: cannot open for writing: %s; run as root",
			    dir, strerror(errno));
	if (fstat(fd, &st) < 0) {
		fail(err, errlen, "%s/epoch.key: %s", dir, strerror(errno));
		goto bad;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(err, errlen,
		     "%s/epoch.key: not a regular file; put the epoch.key made by "
		     "keygen there",
		     dir);
		goto bad;
	}
	if (st.st_uid != owner) {
		fail(err, errlen, "%s/epoch.key: owned by uid %u, not uid %u; chown %u it", dir,
		     (unsigned)st.st_uid, (unsigned)owner, (unsigned)owner);
		goto bad;
	}
	if (st.st_mode & 077) {
		fail(err, errlen, "%s/epoch.key: mode %04o lets others read it; chmod 0600 it", dir,
		     (unsigned)(st.st_mode & 07777));
		goto bad;
	}
	if (st.st_size != EPOCH_KEY_LEN) {
		fail(err, errlen,
		     "%s/epoch.key: %lld bytes, not %d; it is damaged: restore it or run "
		     "`runseal keygen` for new keys",
		     dir, (long long)st.st_size, EPOCH_KEY_LEN);
		goto bad;
	}
	n = pread(fd, buf, EPOCH_KEY_LEN, 0);
	if (n != EPOCH_KEY_LEN || parse_epoch_key(buf, &sg->epoch, sg->seed) < 0) {
		fail(err, errlen,
		     "%s/epoch.key: not `<16 digits> <64 hex>`; it is damaged: restore it or run "
		     "`runseal keygen` for new keys",
		     dir);
		goto bad;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	sg->fd = fd;
	return 0;
bad:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(sg->seed, sizeof(sg->seed));
	sg->epoch = 0;
	close(fd);
	return -1;
}

/* The file behind fd, for messages: the signer keeps no path, and the key directory is
 * not always the default one. */
static void fd_path(int fd, char *out, size_t n)
{
	char link[64];
	ssize_t len;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, out, n - 1);
	if (len <= 0)
		snprintf(out, n, "epoch.key");
	else
		out[len] = '\0';
}

int signer_advance(struct epoch_signer *sg, uint64_t e, char *err, size_t errlen)
{
	unsigned char next[32];
	char buf[EPOCH_KEY_LEN + 1], path[256];
	int r = 0;

	fd_path(sg->fd, path, sizeof(path));
	if (e < sg->epoch)
		return fail(err, errlen,
			    "%s: epoch key for epoch %" PRIu64
			    " was erased (the key is at epoch %" PRIu64
			    "); cannot sign for epoch %" PRIu64 " (is the clock set back?)",
			    path, e, sg->epoch, e);
	if (e == sg->epoch)
		return 0;
	/* Also bounds the loop: a clock far in the future must not spin for ever. */
	if (e >= EPOCHS_MAX)
		return fail(err, errlen,
			    "%s: epoch %" PRIu64 " is beyond any schedule; check the clock, or run "
			    "`runseal keygen` for new keys",
			    path, e);
	/* Seeds between the two epochs never reached the disk, so the disk needs one write:
	 * it replaces the old seed, and a crash leaves either the old or the new one. */
	memcpy(next, sg->seed, 32);
	for (uint64_t i = sg->epoch; i < e; i++)
		epoch_seed_next(next, next);
	format_epoch_key(buf, e, next);
	/* Overwrite in place rather than write-and-rename: a rename would leave the old seed
	 * in the old file's freed blocks, readable from the raw disk later, while pwrite at
	 * offset 0 makes the file system rewrite those very bytes (on ext4 and XFS; a
	 * copy-on-write file system or an SSD's remapping may still keep old copies, which
	 * no program can prevent). 82 bytes in one sector are written whole in practice. */
	errno = 0;
	if (pwrite(sg->fd, buf, EPOCH_KEY_LEN, 0) != EPOCH_KEY_LEN || fdatasync(sg->fd) < 0)
		r = fail(err, errlen,
			 "%s: cannot overwrite the seed of epoch %" PRIu64 ": %s; check the disk "
			 "(the old seed is still in use)",
			 path, sg->epoch, strerror(errno ? errno : EIO));
	if (r == 0) {
		OPENSSL_cleanse(sg->seed, sizeof(sg->seed));
		memcpy(sg->seed, next, 32);
		sg->epoch = e;
	}
	OPENSSL_cleanse(next, sizeof(next));
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

int signer_sign(const struct epoch_signer *sg, const unsigned char *msg, size_t len,
		unsigned char sig[64])
{
	return ed25519_sign(sg->seed, msg, len, sig);
}

void signer_public(const struct epoch_signer *sg, unsigned char pub[32])
{
	if (ed25519_public(sg->seed, pub) < 0)
		memset(pub, 0, 32);
}

void signer_close(struct epoch_signer *sg)
{
	OPENSSL_cleanse(sg->seed, sizeof(sg->seed));
	if (sg->fd >= 0)
		close(sg->fd);
	sg->fd = -1;
	sg->epoch = 0;
}

/* ---- Erasing ended epochs without a run ------------------------------------------------ */

int keys_key_epoch(const char *dir, uint64_t *epoch, char *err, size_t errlen)
{
	char path[4096], buf[17];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/epoch.key", dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	/* Only the epoch number: the seed after it is none of the reader's business. */
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	*epoch = 0;
	if (n != (ssize_t)sizeof(buf) || buf[16] != ' ')
		return fail(err, errlen, "%s: not `<16 digits> <64 hex>`", path);
	for (int i = 0; i < 16; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return fail(err, errlen, "%s: not `<16 digits> <64 hex>`", path);
		*epoch = *epoch * 10 + (uint64_t)(buf[i] - '0');
	}
	return 0;
}

uint64_t keys_epoch_due(const struct epoch_schedule *s, uint64_t now)
{
	uint64_t e;

	if (now < s->t0 || s->len == 0)
		return 0;
	e = (now - s->t0) / s->len;
	/* After the last epoch every key is spent: epoch n has no certificate, so moving
	 * there erases the last real seed. */
	return e > s->n ? s->n : e;
}

int keys_tick(const char *dir, uid_t owner, uint64_t now, uint64_t *from, uint64_t *to, char *err,
	      size_t errlen)
{
	struct epoch_schedule s;
	struct epoch_signer sg;
	unsigned char host[16], root[32];
	char path[4096];
	uint64_t due;
	int r;

	snprintf(path, sizeof(path), "%s/root.pub", dir);
	if (keys_load_root_pub(path, host, root, err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/epochs.pub", dir);
	if (keys_load_schedule(path, root, &s, err, errlen) < 0)
		return -1;
	if (signer_open(dir, owner, &sg, err, errlen) < 0) {
		keys_free_schedule(&s);
		return -1;
	}
	due = keys_epoch_due(&s, now);
	*from = *to = sg.epoch;
	r = due > sg.epoch ? signer_advance(&sg, due, err, errlen) : 0;
	if (r == 0)
		*to = sg.epoch;
	signer_close(&sg);
	keys_free_schedule(&s);
	return r;
}
