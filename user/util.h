/* util: allocation that cannot fail silently, time stamps, hex. */
#ifndef RUNSEAL_UTIL_H
#define RUNSEAL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <err.h>
#include <sys/types.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

uint64_t now_ns(int clock);
/* Writes all of buf, through EINTR and short writes: 0, or -1 with errno set. */
int write_all(int fd, const void *buf, size_t len);
/* RFC 3339 UTC with nanoseconds: 2026-11-27T20:34:47.123456789Z (31 bytes + NUL). */
#define TIME_LEN 32
void fmt_time(uint64_t realtime_ns, char buf[TIME_LEN]);
void hex(const unsigned char *in, size_t n, char *out); /* out: 2n + 1 bytes */

/* A UUIDv7 (time-ordered, so run ids sort by start time), 36 characters and NUL. Returns
 * -1 when the kernel has no randomness to give. */
#define UUID_LEN 37
int uuid7(char out[UUID_LEN]);
/* The pids in cgroup cg (its cgroup.procs), at most max; 0 when it cannot be read. */
size_t cgroup_pids(const char *cg, pid_t *pids, size_t max);
/* Fields 4 (ppid) and 22 (starttime, clock ticks after boot) of /proc/PID/stat: with the
 * pid, the start time names one process even after pid reuse. Either may be NULL.
 * Returns 0, or -1 when the process is gone. */
int proc_stat(pid_t pid, pid_t *ppid, unsigned long long *start);

#endif
