#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "decode.h"
#include "digest.h"
#include "runseal.h"
#include "util.h"

#define CACHE_SLOTS 1024 /* a power of two; a collision replaces the older entry */

struct slot {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char hex[65];
};

/* One per process: the collector's (see digest.h). */
static struct slot cache[CACHE_SLOTS];

static struct slot *slot_of(const struct stat *st)
{
	uint64_t h = ((uint64_t)st->st_dev * 0x9e3779b97f4a7c15ull) ^ (uint64_t)st->st_ino;

	return &cache[(h ^ (h >> 29)) & (CACHE_SLOTS - 1)];
}

static bool same_file(const struct slot *c, const struct stat *st)
{
	return c->hex[0] && c->dev == st->st_dev && c->ino == st->st_ino &&
	       c->size == st->st_size && c->mtime.tv_sec == st->st_mtim.tv_sec &&
	       c->mtime.tv_nsec == st->st_mtim.tv_nsec && c->ctime.tv_sec == st->st_ctim.tv_sec &&
	       c->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static int hash_fd(int fd, char hex_out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[1 << 16], md[32];
	off_t off = 0;
	ssize_t n;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	while (ok && (n = pread(fd, buf, sizeof(buf), off)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		ok = n > 0 && EVP_DigestUpdate(ctx, buf, (size_t)n) == 1;
		off += n > 0 ? n : 0;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (ok)
		hex(md, 32, hex_out);
	return ok ? 0 : -1;
}

/* The file to hash: the process's own while it runs the file path names (or path names
 * none, and the file it runs has no name left either), else the one at path. */
static int pick_fd(pid_t pid, const char *path, struct stat *st)
{
	char proc[32];
	struct stat ps, fs;
	int pfd;

	snprintf(proc, sizeof(proc), "/proc/%d/exe", (int)pid);
	pfd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (pfd >= 0 && fstat(pfd, &ps) < 0) {
		close(pfd);
		pfd = -1;
	}
	if (path && stat(path, &fs) == 0) {
		if (pfd >= 0 && ps.st_dev == fs.st_dev && ps.st_ino == fs.st_ino) {
			*st = ps;
			return pfd;
		}
		int fd;

		if (pfd >= 0)
			close(pfd);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
		if (fd >= 0 && fstat(fd, st) < 0) {
			close(fd);
			fd = -1;
		}
		return fd;
	}
	/* No name to check against: only a file that has none left either (it was deleted,
	 * or is a memfd) can be the one exec ran, and not a later exec's. */
	if (pfd >= 0 && ps.st_nlink == 0) {
		*st = ps;
		return pfd;
	}
	if (pfd >= 0)
		close(pfd);
	return -1;
}

int exe_digest(pid_t pid, const char *path, char hex_out[65])
{
	struct stat st;
	struct slot *c;
	int fd = pick_fd(pid, path, &st), rc = -1;

	if (fd < 0)
		return -1;
	c = slot_of(&st);
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size <= DIGEST_MAX) {
		if (same_file(c, &st)) {
			memcpy(hex_out, c->hex, 65);
			rc = 0;
		} else if (hash_fd(fd, hex_out) == 0) {
			rc = 0;
			/* Timestamps tick coarsely: a file changed within the last second could
			 * change again, same size, with the same times (git's "racy" case). */
			if (time(NULL) > st.st_ctim.tv_sec + 1) {
				*c = (struct slot){st.st_dev,  st.st_ino,  st.st_size,
						   st.st_mtim, st.st_ctim, ""};
				memcpy(c->hex, hex_out, 65);
			}
		}
	}
	close(fd);
	return rc;
}

void rec_exe_digest(struct stream *s, uint32_t pid, const char *comp, size_t len, unsigned depth)
{
	char hx[65], *path = NULL;

	/* A name the kernel walked in full, that still names the file: one to open (a path
	 * outside the process's root is a host path, which the collector can open too). */
	if (depth != RS_DEPTH_TRUNC && !(depth & (RS_DEPTH_DETACHED | RS_DEPTH_DELETED)))
		path = path_from_components(comp, len, depth & RS_DEPTH_COUNT);
	if (exe_digest((pid_t)pid, path, hx) == 0)
		rec_str(s, "sha256", hx);
	else
		rec_null(s, "sha256");
	free(path);
}
