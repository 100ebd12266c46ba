/* bundle: evidence bundles, one .tar.gz holding the sealed segments that cover a run (and
 * ANCHOR, the seal before them, from which the verifier checks the chain),
 * the public keys, the run's reports and a README. Written and read with libarchive (tar)
 * and zlib (gzip, with a fixed header so that no byte of the file goes unchecked). */
#ifndef RUNSEAL_BUNDLE_H
#define RUNSEAL_BUNDLE_H

#include <stddef.h>

struct bundle_file {
	const char *name; /* path inside the bundle */
	const char *data;
	size_t len;
};

/* The tar.gz bytes of files, in the order given; deterministic (mtime 0, root-owned). */
int bundle_build(const struct bundle_file *f, size_t n, char **out, size_t *outlen, char *err,
		 size_t errlen);
/* The tar bytes alone (what bundle_build compresses), and a bundle file's tar bytes after
 * checking that it is exactly one gzip member as bundle_build writes it. */
int bundle_tar(const struct bundle_file *f, size_t n, char **out, size_t *outlen, char *err,
	       size_t errlen);
int bundle_gunzip(const char *path, char **tar, size_t *len, char *err, size_t errlen);
/* Unpacks a bundle into a fresh temporary directory (its path in dir), refusing paths that
 * leave it, links and anything but regular files and directories. */
int bundle_unpack(const char *path, char *dir, size_t dirlen, char *err, size_t errlen);
/* The bundle's files in memory (for the comparison verify makes); freed by bundle_files_free. */
int bundle_read(const char *path, struct bundle_file **f, size_t *n, char *err, size_t errlen);
void bundle_files_free(struct bundle_file *f, size_t n);
/* Removes an unpacked bundle's directory. */
void bundle_remove(const char *dir);

#endif
