#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logfmt.h"
#include "schema.h"
#include "sealer.h"
#include "util.h"

#define SEG_FMT "seg-%016llu.log"

/* ---- files ---------------------------------------------------------------------------- */

int worm_set(int fd, unsigned flag)
{
	int flags = 0;

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		return -1;
	flags &= ~(FS_APPEND_FL | FS_IMMUTABLE_FL);
	flags |= (int)flag;
	return ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

/* Writes a whole file under a temporary name, fsyncs it and renames it into place, so a
 * reader sees the old content or the new, never a part. */
static int replace_file(int dirfd, const char *name, const void *data, size_t len, int *keepfd)
{
	char tmp[300];
	int fd;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0 || fsync(dirfd) < 0) {
		int e = errno;

		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	if (keepfd)
		*keepfd = fd;
	else
		close(fd);
	return 0;
}

/* Creates path and its missing parents, each 0700: they hold evidence too. */
static int mkdirs(const char *path)
{
	char p[PATH_MAX];

	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -1;
		*c = '/';
	}
	return mkdir(p, 0700);
}

/* The log directory holds evidence: its owner's alone (root's on a host). */
static int open_dir(const char *path, bool create, uid_t owner, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (create && mkdirs(path) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create the log directory: %s", path,
			 strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != owner || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "%s: a log directory must be owned by uid %u with mode 0700 (it is %04o, "
			 "uid %u)",
			 path, (unsigned)owner, (unsigned)(st.st_mode & 07777),
			 (unsigned)st.st_uid);
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- entries -------------------------------------------------------------------------- */

int sealer_flush(struct sealer *s)
{
	if (s->failed)
		return -1;
	if (!s->out.len)
		return 0;
	if (write_all(s->fd, s->out.p, s->out.len) < 0) {
		s->failed = true;
		return -1;
	}
	s->out.len = 0;
	return 0;
}

/* Builds in s->line the canonical prefix, then the body's fields (body is a JSON object, or
 * one still open, for a seal that is signed before its last field). */
static void chain_line(struct sealer *s, const char *body, size_t blen)
{
	char prev[65];

	hex(s->last, 32, prev);
	s->line.len = 0;
	jb_raw(&s->line, "{\"seq\":", 7);
	jb_u64(&s->line, s->seq);
	jb_raw(&s->line, ",\"prev\":\"", 9);
	jb_raw(&s->line, prev, 64);
	jb_raw(&s->line, "\",", 2);
	jb_raw(&s->line, body + 1, blen - 1);
}

/* Hashes the entry built in s->line into the chain and batches it. Entries are written by
 * sealer_flush: at every boundary, seal and collector wake-up, so a crash loses no more
 * than the events not yet read from the kernel would be lost anyway. */
static int commit_line(struct sealer *s)
{
	entry_hash(s->line.p, s->line.len, s->last);
	jb_putc(&s->line, '\n');
	jb_raw(&s->out, s->line.p, s->line.len);
	s->seq++;
	s->seg_bytes += s->line.len;
	if (s->o.fsync_record || s->out.len >= (1u << 20))
		if (sealer_flush(s) < 0 || (s->o.fsync_record && fdatasync(s->fd) < 0)) {
			s->failed = true;
			return -1;
		}
	return 0;
}

static int put_entry(struct sealer *s, const char *body, size_t blen)
{
	if (s->failed)
		return -1;
	chain_line(s, body, blen);
	return commit_line(s);
}

static void field_str(struct jbuf *b, const char *k, const char *v)
{
	jb_putc(b, ',');
	jb_str(b, k, strlen(k));
	jb_putc(b, ':');
	jb_str(b, v, strlen(v));
}

static void field_u64(struct jbuf *b, const char *k, uint64_t v)
{
	jb_putc(b, ',');
	jb_str(b, k, strlen(k));
	jb_putc(b, ':');
	jb_u64(b, v);
}

enum { SAY_NOTICE, SAY_WARNING, SAY_ERRNO /* a warning, with strerror(errno) as warn(3) */ };

/* What the sealer has to say goes to the caller's callback (sealer_opts.notice), never to
 * stderr itself. */
static void __attribute__((format(printf, 3, 4)))
say(const struct sealer *s, int how, const char *fmt, ...)
{
	char msg[1024];
	int e = errno;
	size_t n;
	va_list ap;

	if (!s->o.notice)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (how == SAY_ERRNO)
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(e));
	s->o.notice(s->o.notice_ctx, how == SAY_NOTICE ? SEALER_NOTICE : SEALER_WARNING, msg);
	errno = e;
}

static void begin_body(struct jbuf *b, enum rec_kind kind, char time[TIME_LEN])
{
	const char *name = rec_kind_name(kind);

	b->len = 0;
	jb_putc(b, '{');
	jb_str(b, RF_KIND, strlen(RF_KIND));
	jb_putc(b, ':');
	jb_str(b, name, strlen(name));
	fmt_time(now_ns(CLOCK_REALTIME), time);
	field_str(b, RF_TIME, time);
}

static int put_body(struct sealer *s, struct jbuf *b)
{
	int r;

	jb_putc(b, '}');
	r = put_entry(s, b->p, b->len);
	jb_free(b);
	return r;
}

static int put_genesis(struct sealer *s)
{
	struct jbuf b = {0};
	char t[TIME_LEN], host[256] = "", root[65];

	gethostname(host, sizeof(host) - 1);
	key_id(s->sched.root_pub, root);
	begin_body(&b, REC_GENESIS, t);
	field_str(&b, "format", LOG_FORMAT);
	field_str(&b, "host_id", s->host_hex);
	field_str(&b, "hostname", host);
	field_str(&b, "root_key", root);
	field_u64(&b, "t0", s->sched.t0);
	field_u64(&b, "epoch_seconds", s->sched.len);
	field_u64(&b, "epochs", s->sched.n);
	field_u64(&b, "max_interval", s->sched.max_interval);
	field_u64(&b, "late_slack", s->sched.late_slack);
	return put_body(s, &b);
}

/* A segment whose header could not be written (a full disk) holds none of the log's
 * entries, only a part of its own header: it goes, so that the log stays as the last
 * writer left it and the next run, once there is space, carries on from there. */
static int abandon_segment(struct sealer *s, const char *name)
{
	int e = errno;

	worm_set(s->fd, 0);
	close(s->fd);
	s->fd = -1;
	unlinkat(s->dirfd, name, 0);
	fsync(s->dirfd);
	s->failed = true;
	errno = e;
	return -1;
}

static int open_segment_entries(struct sealer *s)
{
	struct jbuf b = {0};
	char name[64], t[TIME_LEN];
	static bool warned;

	snprintf(name, sizeof(name), SEG_FMT, (unsigned long long)s->segment);
	s->fd = openat(s->dirfd, name,
		       O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0) {
		s->failed = true;
		return -1;
	}
	s->worm = worm_set(s->fd, FS_APPEND_FL) == 0;
	if (!s->worm && !warned) {
		say(s, SAY_ERRNO,
		    "%s: the filesystem refuses the append-only flag; segments are not write-once "
		    "(recorded as worm: unavailable)",
		    s->o.log_dir);
		warned = true;
	}
	s->first_seq = s->seq;
	s->seg_bytes = 0;
	s->last_seal = now_ns(CLOCK_MONOTONIC);
	if (s->seq == 0 && put_genesis(s) < 0)
		return -1;
	begin_body(&b, REC_SEGMENT, t);
	field_u64(&b, "segment", s->segment);
	field_str(&b, "host_id", s->host_hex);
	field_str(&b, "worm", s->worm ? "append-only" : "unavailable");
	field_str(&b, "fsync", s->o.fsync_record ? "record" : "boundary");
	if (put_body(s, &b) < 0)
		return -1;
	if (s->pending_recovery) {
		begin_body(&b, REC_RECOVERY, t);
		jb_raw(&b, s->recovery, strlen(s->recovery));
		if (put_body(s, &b) < 0)
			return -1;
		s->pending_recovery = false;
	}
	if (sealer_flush(s) < 0 || fsync(s->fd) < 0 || fsync(s->dirfd) < 0) {
		s->failed = true;
		return -1;
	}
	return 0;
}

static int open_segment(struct sealer *s)
{
	char name[64];

	snprintf(name, sizeof(name), SEG_FMT, (unsigned long long)s->segment);
	if (open_segment_entries(s) < 0)
		return s->fd >= 0 ? abandon_segment(s, name) : -1;
	return 0;
}

/* ---- sealing -------------------------------------------------------------------------- */

static int copy_to_replica(struct sealer *s, const char *dir, const char *zname,
			   const unsigned char *z, size_t zlen, const char *head, size_t hlen)
{
	char err[512];
	int dfd = open_dir(dir, true, s->o.owner, err, sizeof(err)), fd = -1;
	unsigned char *back = NULL;
	int r = -1;

	if (dfd < 0) {
		say(s, SAY_WARNING, "replica: %s", err);
		return -1;
	}
	/* A sealed segment is immutable there too: an existing copy must be identical. */
	if (replace_file(dfd, zname, z, zlen, &fd) < 0) {
		say(s, SAY_ERRNO, "replica %s: cannot write %s", dir, zname);
		goto out;
	}
	close(fd);
	fd = openat(dfd, zname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	back = xmalloc(zlen + 1);
	if (fd < 0 || pread(fd, back, zlen + 1, 0) != (ssize_t)zlen || memcmp(back, z, zlen)) {
		say(s, SAY_WARNING, "replica %s: the copy of %s does not read back identical", dir,
		    zname);
		goto out;
	}
	if (worm_set(fd, FS_IMMUTABLE_FL) < 0 && s->worm)
		say(s, SAY_ERRNO, "replica %s: cannot make %s immutable", dir, zname);
	if (head && replace_file(dfd, "HEAD", head, hlen, NULL) < 0) {
		say(s, SAY_ERRNO, "replica %s: cannot write HEAD", dir);
		goto out;
	}
	r = 0;
out:
	free(back);
	if (fd >= 0)
		close(fd);
	close(dfd);
	return r;
}

/* The seal is already in the plain segment; this turns it into its sealed, compressed,
 * immutable form and publishes the head. A crash anywhere here leaves either the plain
 * segment (finished again on the next start) or the complete .z. */
static int compress_segment(struct sealer *s, uint64_t n, const char *head, size_t hlen)
{
	char name[64], zname[64], err[256];
	unsigned char *z = NULL;
	size_t len = 0, zlen = 0;
	char *plain = NULL;
	int zfd = -1, pfd, r = -1;

	snprintf(name, sizeof(name), SEG_FMT, (unsigned long long)n);
	snprintf(zname, sizeof(zname), SEG_FMT ".z", (unsigned long long)n);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", s->o.log_dir, name);
	if (segment_read(path, &plain, &len, err, sizeof(err)) < 0) {
		say(s, SAY_WARNING, "%s", err);
		return -1;
	}
	if (z_deflate(plain, len, &z, &zlen) < 0 ||
	    replace_file(s->dirfd, zname, z, zlen, &zfd) < 0)
		goto out;
	if (worm_set(zfd, FS_IMMUTABLE_FL) < 0 && s->worm)
		say(s, SAY_ERRNO, "%s/%s: cannot set the immutable flag", s->o.log_dir, zname);
	pfd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (pfd >= 0) {
		worm_set(pfd, 0);
		close(pfd);
	}
	if (unlinkat(s->dirfd, name, 0) < 0 || fsync(s->dirfd) < 0)
		goto out;
	if (head && replace_file(s->dirfd, "HEAD", head, hlen, NULL) < 0)
		goto out;
	for (size_t i = 0; head && i < s->o.nreplicas; i++)
		copy_to_replica(s, s->o.replicas[i], zname, z, zlen, head, hlen);
	r = 0;
out:
	if (r < 0)
		say(s, SAY_ERRNO, "%s: cannot seal %s", s->o.log_dir, name);
	if (zfd >= 0)
		close(zfd);
	free(plain);
	free(z);
	return r;
}

int sealer_seal(struct sealer *s, const char *reason)
{
	unsigned char msg[SEAL_MSG_MAX], sig[64], pub[32];
	char t[TIME_LEN], hx[129], err[KEYS_ERRLEN];
	struct jbuf b = {0};
	uint64_t e, count, n = s->segment;
	size_t mlen;

	if (s->failed)
		return -1;
	if (s->fd < 0) {
		if ((strcmp(reason, "heartbeat") && strcmp(reason, "start")) || open_segment(s) < 0)
			return s->failed ? -1 : 0;
	}
	begin_body(&b, REC_SEAL, t);
	e = epoch_of(&s->sched, now_ns(CLOCK_REALTIME) / 1000000000ull);
	if (e == UINT64_MAX) {
		say(s, SAY_WARNING,
		    "%s: no epoch key covers the current time (keys expired, or the clock is "
		    "before "
		    "keygen): run `runseal keygen` for new keys",
		    s->o.key_dir);
		goto fail;
	}
	if (e > s->sg.epoch && signer_advance(&s->sg, e, err, sizeof(err)) < 0) {
		say(s, SAY_WARNING, "%s", err);
		goto fail;
	}
	if (e < s->sg.epoch) {
		say(s, SAY_WARNING,
		    "the clock is in epoch %llu but epoch key %llu is already in use: not sealing",
		    (unsigned long long)e, (unsigned long long)s->sg.epoch);
		goto fail;
	}
	count = s->seq - s->first_seq;
	signer_public(&s->sg, pub);
	field_u64(&b, "segment", n);
	field_u64(&b, "first_seq", s->first_seq);
	field_u64(&b, "count", count);
	hex(s->last, 32, hx);
	field_str(&b, "last_hash", hx);
	field_str(&b, "reason", reason);
	field_u64(&b, "epoch", e);
	hex(pub, 32, hx);
	field_str(&b, "epoch_key", hx);
	/* The signature covers the whole entry before it: seq, prev and every field. */
	chain_line(s, b.p, b.len);
	jb_free(&b);
	mlen = seal_message(msg, s->sched.host_id, s->line.p, s->line.len);
	if (!mlen || signer_sign(&s->sg, msg, mlen, sig) < 0)
		goto fail;
	hex(sig, 64, hx);
	field_str(&s->line, "sig", hx);
	jb_putc(&s->line, '}');
	if (commit_line(s) < 0 || sealer_flush(s) < 0 || fsync(s->fd) < 0)
		goto fail;
	worm_set(s->fd, 0);
	close(s->fd);
	s->fd = -1;
	s->segment++;
	s->last_seal = now_ns(CLOCK_MONOTONIC);
	return compress_segment(s, n, s->line.p, s->line.len) < 0 ? (s->failed = true, -1) : 0;
fail:
	jb_free(&b);
	s->failed = true;
	return -1;
}

int sealer_tick(struct sealer *s)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	if (s->failed || now - s->last_seal < s->o.checkpoint_s * 1000000000ull)
		return 0;
	/* An idle log still seals, so a reader knows how fresh its newest seal must be. */
	return sealer_seal(s, s->fd >= 0 ? "checkpoint" : "heartbeat");
}

int sealer_sink(void *ctx, const struct rec_view *v)
{
	struct sealer *s = ctx;

	if (s->failed)
		goto failed;
	if (s->fd < 0 && open_segment(s) < 0)
		goto failed;
	/* The record line ends in '\n', which is not part of the entry. */
	if (put_entry(s, v->line, v->len - 1) < 0)
		goto failed;
	if ((v->kind == REC_RUN_START || v->kind == REC_RUN_END || v->kind == REC_STEP_START ||
	     v->kind == REC_STEP_END) &&
	    (sealer_flush(s) < 0 || fdatasync(s->fd) < 0)) {
		s->failed = true;
		goto failed;
	}
	if (s->seg_bytes >= s->o.segment_max && sealer_seal(s, "size") < 0)
		goto failed;
	return 0;
failed:
	if (s->o.keep_going) {
		static bool warned;

		if (!warned)
			say(s, SAY_ERRNO,
			    "%s: cannot write the log; going on without it "
			    "(--on-log-error=continue)",
			    s->o.log_dir);
		warned = true;
		return 0;
	}
	if (!errno)
		errno = EIO;
	return -1;
}

/* ---- opening and recovery ------------------------------------------------------------ */

struct scan {
	uint64_t max;  /* highest segment number seen, 0 for none */
	bool plain, z; /* forms present for max */
	bool has1;
};

static void scan_dir(int dirfd, struct scan *sc)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	memset(sc, 0, sizeof(*sc));
	/* The dup shares dirfd's offset, which an earlier scan left at the end. */
	if (d)
		rewinddir(d);
	while (d && (de = readdir(d))) {
		unsigned long long n;
		char tail[8] = "";

		if (strlen(de->d_name) < 24 ||
		    sscanf(de->d_name, "seg-%16llu.log%3s", &n, tail) < 1)
			continue;
		if (strlen(de->d_name) != (tail[0] ? 26u : 24u) || (tail[0] && strcmp(tail, ".z")))
			continue;
		if (n == 1)
			sc->has1 = true;
		if (n > sc->max) {
			sc->max = n;
			sc->plain = sc->z = false;
		}
		if (n == sc->max)
			*(tail[0] ? &sc->z : &sc->plain) = true;
	}
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
}

/* Walks the whole, chained entries at the start of buf. Returns the byte count they take
 * and sets *last_seq, last and *last_kind_seal; *n counts them. */
static size_t valid_prefix(const char *buf, size_t len, uint64_t *last_seq, unsigned char last[32],
			   bool *sealed, uint64_t *n)
{
	size_t off = 0;
	uint64_t seq, expect = 0;
	unsigned char prev[32], h[32];
	char kind[16];

	*n = 0;
	*sealed = false;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t l;

		if (!nl)
			break;
		l = (size_t)(nl - (buf + off));
		if (entry_prefix(buf + off, l, &seq, prev) < 0 ||
		    (*n && (seq != expect || memcmp(prev, h, 32))))
			break;
		entry_hash(buf + off, l, h);
		*sealed = entry_get_str(buf + off, l, RF_KIND, kind, sizeof(kind)) == 0 &&
			  rec_kind_of(kind, strlen(kind)) == REC_SEAL;
		expect = seq + 1;
		*last_seq = seq;
		memcpy(last, h, 32);
		(*n)++;
		off += l + 1;
	}
	return off;
}

static int read_segment(struct sealer *s, uint64_t n, bool z, char **buf, size_t *len, char *err,
			size_t errlen)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/" SEG_FMT "%s", s->o.log_dir, (unsigned long long)n,
		 z ? ".z" : "");
	return segment_read(path, buf, len, err, errlen);
}

/* A log made on another host must not be continued with this host's keys. */
static int check_host(struct sealer *s, bool z1, char *err, size_t errlen)
{
	char *buf = NULL, host[64];
	size_t len;
	const char *nl;
	int r = -1;

	if (read_segment(s, 1, z1, &buf, &len, err, errlen) < 0)
		return -1;
	nl = memchr(buf, '\n', len);
	if (!nl || entry_get_str(buf, (size_t)(nl - buf), "host_id", host, sizeof(host)) < 0)
		snprintf(err, errlen, "%s/" SEG_FMT ": no genesis entry: not a runseal log",
			 s->o.log_dir, 1ull);
	else if (strcmp(host, s->host_hex))
		snprintf(err, errlen,
			 "%s: the log was made by host %s, these keys are host %s: use another "
			 "--log-dir or the keys of that host",
			 s->o.log_dir, host, s->host_hex);
	else
		r = 0;
	free(buf);
	return r;
}

/* The time of the last line of buf (a seal), 0 when it has none. */
static uint64_t last_time(const char *buf, size_t len)
{
	char t[TIME_LEN];
	size_t start = len ? len - 1 : 0;
	uint64_t ns = 0;

	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (len && entry_get_str(buf + start, len - 1 - start, "time", t, sizeof(t)) == 0 &&
	    parse_time(t, strlen(t), &ns) < 0)
		ns = 0;
	return ns;
}

/* Whether dirfd's file name holds exactly data. */
static bool same_file(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *back = xmalloc(len + 1);
	bool same =
	    fd >= 0 && pread(fd, back, len + 1, 0) == (ssize_t)len && !memcmp(back, data, len);

	if (fd >= 0)
		close(fd);
	free(back);
	return same;
}

/* The newest sealed segment n in its .z form, with seal its seal line (with '\n'): the log's
 * HEAD and every replica's copy and HEAD are made to match it. */
static void complete_copies(struct sealer *s, uint64_t n, const char *seal, size_t slen)
{
	char zname[64], err[512];
	unsigned char *z = NULL;
	size_t zlen = 0;
	struct stat st;
	int fd;

	if (!same_file(s->dirfd, "HEAD", seal, slen) &&
	    replace_file(s->dirfd, "HEAD", seal, slen, NULL) < 0)
		say(s, SAY_ERRNO, "%s: cannot write HEAD", s->o.log_dir);
	snprintf(zname, sizeof(zname), SEG_FMT ".z", (unsigned long long)n);
	fd = openat(s->dirfd, zname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > LOG_SEGMENT_MAX) {
		if (fd >= 0)
			close(fd);
		return;
	}
	z = xmalloc((size_t)st.st_size);
	zlen = pread(fd, z, (size_t)st.st_size, 0) == st.st_size ? (size_t)st.st_size : 0;
	close(fd);
	for (size_t i = 0; zlen && i < s->o.nreplicas; i++) {
		int dfd = open_dir(s->o.replicas[i], true, s->o.owner, err, sizeof(err));

		if (dfd < 0) {
			say(s, SAY_WARNING, "replica: %s", err);
			continue;
		}
		if (!same_file(dfd, zname, z, zlen)) {
			say(s, SAY_WARNING, "replica %s: %s missing after a crash; copying it",
			    s->o.replicas[i], zname);
			copy_to_replica(s, s->o.replicas[i], zname, z, zlen, seal, slen);
		} else if (!same_file(dfd, "HEAD", seal, slen) &&
			   replace_file(dfd, "HEAD", seal, slen, NULL) < 0) {
			say(s, SAY_ERRNO, "replica %s: cannot write HEAD", s->o.replicas[i]);
		}
		close(dfd);
	}
	free(z);
}

/* A crashed segment without one whole entry (torn in its first line) continues the chain
 * of sealed segment n: its last entry (the seal) is the one the recovery links to. */
static int chain_from_sealed(struct sealer *s, uint64_t n, uint64_t *last_seq)
{
	char *buf = NULL, e[256];
	size_t len, valid;
	uint64_t count;
	bool sealed;

	if (n == 0 || read_segment(s, n, true, &buf, &len, e, sizeof(e)) < 0)
		return -1;
	valid = valid_prefix(buf, len, last_seq, s->last, &sealed, &count);
	free(buf);
	return count && sealed && valid == len ? 0 : -1;
}

static int recover(struct sealer *s, const struct scan *sc, char *err, size_t errlen)
{
	uint64_t n = sc->max, last_seq = 0, count;
	char name[64], *buf = NULL;
	size_t len, valid;
	bool sealed;
	int fd;

	snprintf(name, sizeof(name), SEG_FMT, (unsigned long long)n);
	if (sc->z) {
		/* The compressed form is complete (it is renamed into place only after its
		 * fsync): the plain one is a leftover of a crash before its removal. */
		if (sc->plain) {
			fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0) {
				worm_set(fd, 0);
				close(fd);
			}
			unlinkat(s->dirfd, name, 0);
		}
		if (read_segment(s, n, true, &buf, &len, err, errlen) < 0)
			return -1;
		valid = valid_prefix(buf, len, &last_seq, s->last, &sealed, &count);
		s->last_seal_rt = last_time(buf, len);
		if (!count || !sealed || valid != len) {
			free(buf);
			snprintf(err, errlen,
				 "%s/%s.z: the last sealed segment does not end in a seal: "
				 "run `runseal verify`",
				 s->o.log_dir, name);
			return -1;
		}
		s->seq = last_seq + 1;
		s->segment = n + 1;
		/* A crash after the rename of the .z may have come before HEAD or a replica
		 * got it: finish those copies. */
		size_t ls = len - 1;

		while (ls > 0 && buf[ls - 1] != '\n')
			ls--;
		complete_copies(s, n, buf + ls, len - ls);
		free(buf);
		return 0;
	}
	if (read_segment(s, n, false, &buf, &len, err, errlen) < 0)
		return -1;
	valid = valid_prefix(buf, len, &last_seq, s->last, &sealed, &count);
	if (!count && chain_from_sealed(s, n - 1, &last_seq) < 0) {
		free(buf);
		snprintf(err, errlen,
			 "%s/%s: no whole entry in the unsealed segment, and the segment before "
			 "it is not sealed: run `runseal verify`; move the file away to start a "
			 "new segment",
			 s->o.log_dir, name);
		return -1;
	}
	s->seq = last_seq + 1;
	s->segment = n + 1;
	if (sealed && valid == len) {
		/* Crashed after its seal, before compression: finish the job, HEAD and the
		 * replicas' copies included. */
		size_t ls = len - 1;
		int r;

		s->last_seal_rt = last_time(buf, len);
		while (ls > 0 && buf[ls - 1] != '\n')
			ls--;
		r = compress_segment(s, n, buf + ls, len - ls);
		free(buf);
		return r;
	}
	/* The crashed segment is kept as it is, never rewritten, and frozen; the next segment
	 * continues the chain from its last whole entry and says what was found. */
	fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		worm_set(fd, FS_IMMUTABLE_FL);
		close(fd);
	}
	/* Replicas get the crashed segment as it is, so their chain has no gap either. */
	for (size_t i = 0; i < s->o.nreplicas; i++)
		copy_to_replica(s, s->o.replicas[i], name, (unsigned char *)buf, len, NULL, 0);
	free(buf);
	snprintf(s->recovery, sizeof(s->recovery),
		 ",\"file\":\"%s\",\"segment\":%llu,\"valid_bytes\":%zu,\"torn_bytes\":%zu,"
		 "\"last_seq\":%llu,\"sealed\":false",
		 name, (unsigned long long)n, valid, len - valid, (unsigned long long)last_seq);
	s->pending_recovery = true;
	say(s, SAY_WARNING,
	    "%s/%s: recovered after a crash: %zu bytes of whole entries, %zu torn bytes after "
	    "them; the chain continues in the next segment",
	    s->o.log_dir, name, valid, len - valid);
	return 0;
}

/* A key behind the clock means seeds of ended epochs sat on disk since the last run: erase
 * them before anything else, and say so, since the timer that should have is missing. */
static int erase_ended(struct sealer *s, char *err, size_t errlen)
{
	uint64_t due = keys_epoch_due(&s->sched, (uint64_t)time(NULL)), was = s->sg.epoch;

	if (due <= was)
		return 0;
	if (signer_advance(&s->sg, due, err, errlen) < 0)
		return -1;
	say(s, SAY_WARNING,
	    "%s/epoch.key was still at epoch %llu, the clock is in epoch %llu: the keys of "
	    "ended epochs stayed on disk until now (erased); install the runseal-keys-tick "
	    "timer or cron line (`make install`) so they are erased when their epoch ends",
	    s->o.key_dir, (unsigned long long)was, (unsigned long long)due);
	return 0;
}

/* A crash (or a full disk, before abandon_segment) between creating a segment and writing
 * its first byte leaves an empty file: nothing of the log is in it, so it goes, and the
 * segment before it is the one to recover or continue. */
static int drop_empty_tail(struct sealer *s, struct scan *sc, char *err, size_t errlen)
{
	char name[64];
	struct stat st;

	while (sc->max && sc->plain && !sc->z) {
		snprintf(name, sizeof(name), SEG_FMT, (unsigned long long)sc->max);
		if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_size != 0)
			return 0;
		int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

		if (fd >= 0) {
			worm_set(fd, 0);
			close(fd);
		}
		if (unlinkat(s->dirfd, name, 0) < 0) {
			snprintf(err, errlen, "%s/%s: cannot remove the empty segment: %s",
				 s->o.log_dir, name, strerror(errno));
			return -1;
		}
		fsync(s->dirfd);
		scan_dir(s->dirfd, sc);
	}
	return 0;
}

static int load_keys(struct sealer *s, char *err, size_t errlen)
{
	char path[PATH_MAX];
	unsigned char host[16], root[32];

	if (!keys_exist(s->o.key_dir)) {
		char rid[65], hid[33];

		if (keys_generate(s->o.key_dir, (uint64_t)time(NULL), KEYS_EPOCH_SECONDS,
				  KEYS_EPOCHS, KEYS_MAX_INTERVAL, KEYS_LATE_SLACK, s->o.owner, rid,
				  hid, err, errlen) < 0)
			return -1;
		say(s, SAY_NOTICE,
		    "created signing keys in %s (host %s, root key %s); keep a copy of "
		    "root.pub for verifying and move root.key offline",
		    s->o.key_dir, hid, rid);
	}
	snprintf(path, sizeof(path), "%s/root.pub", s->o.key_dir);
	if (keys_load_root_pub(path, host, root, err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/epochs.pub", s->o.key_dir);
	if (keys_load_schedule(path, root, &s->sched, err, errlen) < 0)
		return -1;
	hex(s->sched.host_id, 16, s->host_hex);
	if (signer_open(s->o.key_dir, s->o.owner, &s->sg, err, errlen) < 0)
		return -1;
	return erase_ended(s, err, errlen);
}

/* One writer per log: a second one would take the first one's open segment for a crash
 * and fork the chain. The lock (flock, so the kernel drops it when the holder dies, even by
 * kill -9) is taken before anything is read or written; the file says who holds it. */
static int lock_log(struct sealer *s, char *err, size_t errlen)
{
	char pid[32] = "";
	int n;

	s->lockfd = openat(s->dirfd, SEALER_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lockfd < 0) {
		snprintf(err, errlen, "%s/%s: cannot open the lock file: %s", s->o.log_dir,
			 SEALER_LOCK, strerror(errno));
		return -1;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		ssize_t r = pread(s->lockfd, pid, sizeof(pid) - 1, 0);

		pid[r > 0 ? r : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			snprintf(err, errlen,
				 "%s: log in use by pid %s (another `runseal run` writes it); wait "
				 "for it to end, or give another --log-dir",
				 s->o.log_dir, *pid ? pid : "(unknown)");
		else
			snprintf(err, errlen, "%s/%s: cannot lock: %s", s->o.log_dir, SEALER_LOCK,
				 strerror(e));
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* Who holds it is for the message above only: a failure here changes nothing. */
	if (ftruncate(s->lockfd, 0) == 0 && pwrite(s->lockfd, pid, (size_t)n, 0) == n)
		fdatasync(s->lockfd);
	return 0;
}

/* The verifier holds an unsealed (crashed) segment to the seal cadence: its entries lie
 * within max_interval + late_slack of the last seal before them. A writer starting long
 * after the last seal therefore seals first; one starting soon after keeps that seal's
 * rhythm, its first checkpoint coming when that seal is checkpoint_s old. */
static int seal_at_start(struct sealer *s)
{
	uint64_t now = now_ns(CLOCK_REALTIME), step = s->o.checkpoint_s * 1000000000ull;

	if (!s->pending_recovery && s->last_seal_rt && s->last_seal_rt <= now &&
	    now - s->last_seal_rt < step / 2) {
		s->last_seal -= now - s->last_seal_rt;
		return 0;
	}
	return sealer_seal(s, "start");
}

int sealer_open(struct sealer *s, const struct sealer_opts *o, char *err, size_t errlen)
{
	struct scan sc;

	memset(s, 0, sizeof(*s));
	s->o = *o;
	s->fd = -1;
	s->dirfd = -1;
	s->lockfd = -1;
	s->sg.fd = -1;
	s->segment = 1;
	if (!s->o.segment_max)
		s->o.segment_max = SEALER_SEGMENT_MAX;
	if (!s->o.checkpoint_s)
		s->o.checkpoint_s = SEALER_CHECKPOINT_S;
	s->dirfd = open_dir(o->log_dir, true, o->owner, err, errlen);
	if (s->dirfd < 0 || lock_log(s, err, errlen) < 0 || load_keys(s, err, errlen) < 0)
		goto fail;
	/* The verifier rejects records older than max_interval at their seal. */
	if (s->o.checkpoint_s > s->sched.max_interval)
		s->o.checkpoint_s = s->sched.max_interval;
	scan_dir(s->dirfd, &sc);
	if (drop_empty_tail(s, &sc, err, errlen) < 0)
		goto fail;
	if (sc.max && !sc.has1) {
		snprintf(err, errlen,
			 "%s: segment 1 (the genesis) is missing: run `runseal verify`",
			 o->log_dir);
		goto fail;
	}
	if (sc.max) {
		struct scan one = sc;

		if (sc.max != 1) {
			char p[PATH_MAX];

			snprintf(p, sizeof(p), "%s/" SEG_FMT ".z", o->log_dir, 1ull);
			one.z = access(p, F_OK) == 0;
		}
		if (check_host(s, one.z, err, errlen) < 0 || recover(s, &sc, err, errlen) < 0)
			goto fail;
	}
	s->last_seal = now_ns(CLOCK_MONOTONIC);
	if (sc.max && seal_at_start(s) < 0) {
		snprintf(err, errlen, "%s: cannot seal the log before the run: %s", o->log_dir,
			 strerror(errno ? errno : EIO));
		goto fail;
	}
	return 0;
fail:
	sealer_close(s);
	return -1;
}

/* An unsealed segment keeps its append-only flag: the next start recovers it. */
void sealer_close(struct sealer *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->lockfd >= 0)
		close(s->lockfd); /* releases the lock */
	if (s->sg.fd >= 0)
		signer_close(&s->sg);
	keys_free_schedule(&s->sched);
	jb_free(&s->line);
	jb_free(&s->out);
	s->fd = s->dirfd = s->lockfd = -1;
	s->sg.fd = -1;
}
