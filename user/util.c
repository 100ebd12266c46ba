#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
