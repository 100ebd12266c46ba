#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "util.h"

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		err(2, "out of memory");
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		err(2, "out of memory");
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		err(2, "out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		err(2, "out of memory");
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		err(2, "out of memory");
	va_end(ap);
	return s;
}

uint64_t now_ns(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Called for every record: the date part is formatted once per second, the nanoseconds by
 * hand. */
void fmt_time(uint64_t ns, char buf[TIME_LEN])
{
	static __thread time_t last = -1;
	static __thread char prefix[24];
	time_t sec = (time_t)(ns / 1000000000ull);
	unsigned frac = (unsigned)(ns % 1000000000ull);

	if (sec != last) {
		struct tm tm;
		char t[64];

		gmtime_r(&sec, &tm);
		snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		memcpy(prefix, t, 20);
		last = sec;
	}
	memcpy(buf, prefix, 20);
	for (int i = 28; i >= 20; i--) {
		buf[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	buf[29] = 'Z';
	buf[30] = '\0';
}

void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int uuid7(char out[UUID_LEN])
{
	unsigned char u[16];
	uint64_t ms = now_ns(CLOCK_REALTIME) / 1000000;

	if (getrandom(u, sizeof(u), 0) != sizeof(u))
		return -1;
	for (int i = 0; i < 6; i++)
		u[i] = (unsigned char)(ms >> (40 - 8 * i));
	u[6] = (u[6] & 0x0f) | 0x70;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, UUID_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
	return 0;
}

size_t cgroup_pids(const char *cg, pid_t *pids, size_t max)
{
	char path[PATH_MAX + 16];
	size_t n = 0;
	long p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	f = fopen(path, "re");
	while (f && n < max && fscanf(f, "%ld", &p) == 1)
		pids[n++] = (pid_t)p;
	if (f)
		fclose(f);
	return n;
}

int proc_stat(pid_t pid, pid_t *ppid, unsigned long long *start)
{
	char path[64], buf[1024];
	unsigned long long t = 0;
	int pp = 0;
	ssize_t n;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* After the comm (which may hold anything, ')' too): state is field 3. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2,
			 "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			 "%*d %*d %*d %llu",
			 &pp, &t) != 2)
		return -1;
	if (ppid)
		*ppid = pp;
	if (start)
		*start = t;
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}
