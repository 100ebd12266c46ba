#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include "bundle.h"
#include "json.h"
#include "util.h"

#define BUNDLE_MAX	 (1ull << 30) /* unpacked bytes: a bound against a gzip bomb */
#define BUNDLE_FILES_MAX 100000

/* zlib's gzip header at level 9 with no name and mtime 0, as bundle_build writes it: any
 * other header means the file was changed (gzip's CRC does not cover its header). */
static const unsigned char rs_gz_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3};

static la_ssize_t to_jbuf(struct archive *a, void *ctx, const void *buf, size_t n)
{
	(void)a;
	jb_raw(ctx, buf, n);
	return (la_ssize_t)n;
}

static int gzip(const char *in, size_t n, char **out, size_t *outlen, char *err, size_t errlen)
{
	z_stream z = {0};
	uLong cap;
	int rc;

	if (deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
		snprintf(err, errlen, "deflateInit2 failed");
		return -1;
	}
	cap = deflateBound(&z, (uLong)n) + 32;
	*out = xmalloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)*out;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	*outlen = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		snprintf(err, errlen, "deflate failed");
		free(*out);
		return -1;
	}
	return 0;
}

int bundle_tar(const struct bundle_file *f, size_t n, char **out, size_t *outlen, char *err,
	       size_t errlen)
{
	struct archive *a = archive_write_new();
	struct jbuf tar = {0};
	int rc = -1;

	jb_raw(&tar, "", 0);
	archive_write_set_format_ustar(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open(a, &tar, NULL, to_jbuf, NULL) != ARCHIVE_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, f[i].name);
		archive_entry_set_size(e, (la_int64_t)f[i].len);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0444);
		archive_entry_set_uname(e, "root");
		archive_entry_set_gname(e, "root");
		if (archive_write_header(a, e) != ARCHIVE_OK ||
		    archive_write_data(a, f[i].data, f[i].len) != (la_ssize_t)f[i].len) {
			archive_entry_free(e);
			goto out;
		}
		archive_entry_free(e);
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		goto out;
	rc = 0;
	*out = tar.p;
	*outlen = tar.len;
	tar.p = NULL;
out:
	if (rc)
		snprintf(err, errlen, "tar: %s", archive_error_string(a));
	archive_write_free(a);
	jb_free(&tar);
	return rc;
}

int bundle_build(const struct bundle_file *f, size_t n, char **out, size_t *outlen, char *err,
		 size_t errlen)
{
	char *tar;
	size_t len;
	int rc;

	if (bundle_tar(f, n, &tar, &len, err, errlen) < 0)
		return -1;
	rc = gzip(tar, len, out, outlen, err, errlen);
	free(tar);
	return rc;
}

/* The whole file, checked to be exactly one gzip member as bundle_build writes it. */
static int gunzip_file(const char *path, struct jbuf *tar, char *err, size_t errlen)
{
	struct jbuf gz = {0};
	unsigned char buf[65536];
	z_stream z = {0};
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	jb_raw(&gz, "", 0);
	while ((k = read(fd, buf, sizeof(buf))) > 0 && gz.len < BUNDLE_MAX)
		jb_raw(&gz, (char *)buf, (size_t)k);
	close(fd);
	if (gz.len < sizeof(rs_gz_header) || memcmp(gz.p, rs_gz_header, sizeof(rs_gz_header))) {
		snprintf(err, errlen,
			 "%s: not an evidence bundle: the gzip header is not runseal's "
			 "(changed, or not made by runseal evidence)",
			 path);
		jb_free(&gz);
		return -1;
	}
	inflateInit2(&z, 31);
	z.next_in = (Bytef *)gz.p;
	z.avail_in = (uInt)gz.len;
	jb_raw(tar, "", 0);
	do {
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		rc = inflate(&z, Z_NO_FLUSH);
		jb_raw(tar, (char *)buf, sizeof(buf) - z.avail_out);
	} while (rc == Z_OK && tar->len < BUNDLE_MAX);
	inflateEnd(&z);
	if (rc != Z_STREAM_END || z.avail_in) {
		snprintf(err, errlen, "%s: damaged evidence bundle: %s", path,
			 rc != Z_STREAM_END ? (z.msg ? z.msg : "truncated or too large")
					    : "bytes after the end of the gzip stream");
		jb_free(&gz);
		return -1;
	}
	jb_free(&gz);
	return 0;
}

int bundle_gunzip(const char *path, char **tar, size_t *len, char *err, size_t errlen)
{
	struct jbuf b = {0};

	if (gunzip_file(path, &b, err, errlen) < 0) {
		jb_free(&b);
		return -1;
	}
	*tar = b.p;
	*len = b.len;
	return 0;
}

static bool safe_name(const char *p)
{
	if (!*p || *p == '/' || strlen(p) > 200)
		return false;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == '\\')
			return false;
	return strcmp(p, "..") && strncmp(p, "../", 3) && !strstr(p, "/../") &&
	       !(strlen(p) >= 3 && !strcmp(p + strlen(p) - 3, "/.."));
}

int bundle_read(const char *path, struct bundle_file **f, size_t *n, char *err, size_t errlen)
{
	struct jbuf tar = {0};
	struct archive *a;
	struct archive_entry *e;
	int rc = 0, r;

	*f = NULL;
	*n = 0;
	if (gunzip_file(path, &tar, err, errlen) < 0) {
		jb_free(&tar);
		return -1;
	}
	a = archive_read_new();
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, tar.p, tar.len) != ARCHIVE_OK) {
		snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
		rc = -1;
	}
	while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		la_int64_t size = archive_entry_size(e);
		struct bundle_file *b;
		char *data;

		if (archive_entry_filetype(e) != AE_IFREG || !name || !safe_name(name) ||
		    size < 0 || (uint64_t)size > BUNDLE_MAX || *n >= BUNDLE_FILES_MAX) {
			snprintf(err, errlen,
				 "%s: refused member %s (only plain files with relative "
				 "names inside the bundle)",
				 path, name ? name : "?");
			rc = -1;
			break;
		}
		data = xmalloc((size_t)size + 1);
		if (archive_read_data(a, data, (size_t)size) != size) {
			snprintf(err, errlen, "%s: %s: %s", path, name, archive_error_string(a));
			free(data);
			rc = -1;
			break;
		}
		*f = xrealloc(*f, (*n + 1) * sizeof(**f));
		b = &(*f)[(*n)++];
		b->name = xstrdup(name);
		b->data = data;
		b->len = (size_t)size;
	}
	if (!rc && r != ARCHIVE_EOF) {
		snprintf(err, errlen, "%s: damaged tar: %s", path, archive_error_string(a));
		rc = -1;
	}
	archive_read_free(a);
	jb_free(&tar);
	if (rc) {
		bundle_files_free(*f, *n);
		*f = NULL;
		*n = 0;
	}
	return rc;
}

void bundle_files_free(struct bundle_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)f[i].name);
		free((char *)f[i].data);
	}
	free(f);
}

static int mkparents(char *p)
{
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			*s = '/';
			return -1;
		}
		*s = '/';
	}
	return 0;
}

int bundle_unpack(const char *path, char *dir, size_t dirlen, char *err, size_t errlen)
{
	struct bundle_file *f;
	size_t n;
	const char *tmp = getenv("TMPDIR");

	if (bundle_read(path, &f, &n, err, errlen) < 0)
		return -1;
	snprintf(dir, dirlen, "%s/runseal-bundle.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		snprintf(err, errlen, "mkdtemp %s: %s", dir, strerror(errno));
		bundle_files_free(f, n);
		dir[0] = '\0';
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", dir, f[i].name);
		int fd =
		    mkparents(p) < 0 ? -1 : open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd < 0 || write(fd, f[i].data, f[i].len) != (ssize_t)f[i].len ||
		    close(fd) < 0) {
			snprintf(err, errlen, "%s: %s", p, strerror(errno));
			free(p);
			bundle_files_free(f, n);
			bundle_remove(dir);
			dir[0] = '\0';
			return -1;
		}
		free(p);
	}
	bundle_files_free(f, n);
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void bundle_remove(const char *dir)
{
	if (dir && *dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
