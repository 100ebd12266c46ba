/* digest: the SHA-256 of the file an exec ran, for exec records ("where known").
 *
 * The collector reads it when it handles the exec event, milliseconds after the exec:
 * through /proc/PID/exe while the process still runs that file (the very inode it
 * executed, even when it was deleted since or is a memfd), else from the path the kernel
 * resolved. A cache on (device, inode, size, mtime, ctime) makes repeated execs of one
 * binary cost an open and an fstat; a file replaced or rewritten has a new key. */
#ifndef RUNSEAL_DIGEST_H
#define RUNSEAL_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "record.h"

/* Larger files are not hashed (it would stall the collector): their digest is unknown. */
#define DIGEST_MAX (256u << 20)

/* The SHA-256, as 64 hex digits, of the file process pid executed from path (NULL when the
 * path is no name the collector can open: a memfd, a deleted file, a walk that was cut
 * short). 0, or -1 when it cannot be known: the process has gone and path names no
 * regular file, or the file is larger than DIGEST_MAX. Not thread-safe: the collector's
 * thread only. */
int exe_digest(pid_t pid, const char *path, char hex[65]);

/* Adds "sha256" (the digest, or null when not known) to the exec record being built, for
 * the exe path components the kernel walked (comp, len, depth as in bpf/runseal.h). */
void rec_exe_digest(struct stream *s, uint32_t pid, const char *comp, size_t len, unsigned depth);

#endif
