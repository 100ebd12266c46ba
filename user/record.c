#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "util.h"

void stream_init(struct stream *s, const struct redactor *r)
{
	memset(s, 0, sizeof(*s));
	s->redactor = r;
}

void stream_free(struct stream *s)
{
	jb_free(&s->buf);
}

void stream_add_sink(struct stream *s, struct sink k)
{
	if (s->nsinks == STREAM_MAX_SINKS)
		errx(2, "internal error: too many record sinks");
	s->sinks[s->nsinks++] = k;
}

static void key(struct stream *s, const char *k)
{
	if (!s->first)
		jb_putc(&s->buf, ',');
	s->first = false;
	if (k) {
		jb_str(&s->buf, k, strlen(k));
		jb_putc(&s->buf, ':');
	}
}

/* The single place where a string value enters a record: redact, then escape. */
static void value(struct stream *s, const char *v, size_t n, bool truncated)
{
	size_t rn;
	char *r = s->redactor ? redact(s->redactor, v, n, truncated, &rn) : NULL;

	if (r) {
		jb_str(&s->buf, r, rn);
		free(r);
	} else {
		jb_str(&s->buf, v, n);
	}
}

void rec_begin(struct stream *s, enum rec_kind kind, uint64_t realtime_ns, const char *run,
	       int step)
{
	char t[TIME_LEN];

	s->buf.len = 0;
	s->kind = kind;
	s->step = step;
	s->first = true;
	jb_putc(&s->buf, '{');
	rec_str(s, RF_KIND, rec_kind_name(kind));
	fmt_time(realtime_ns, t);
	rec_str(s, RF_TIME, t);
	rec_str(s, RF_RUN, run);
}

void rec_strn(struct stream *s, const char *k, const char *v, size_t n, bool truncated)
{
	key(s, k);
	value(s, v, n, truncated);
}

void rec_str(struct stream *s, const char *k, const char *v)
{
	if (!v) {
		rec_null(s, k);
		return;
	}
	rec_strn(s, k, v, strlen(v), false);
}

void rec_int(struct stream *s, const char *k, int64_t v)
{
	key(s, k);
	jb_i64(&s->buf, v);
}

void rec_bool(struct stream *s, const char *k, bool v)
{
	key(s, k);
	jb_raw(&s->buf, v ? "true" : "false", v ? 4 : 5);
}

void rec_null(struct stream *s, const char *k)
{
	key(s, k);
	jb_raw(&s->buf, "null", 4);
}

void rec_open(struct stream *s, const char *k, char bracket)
{
	key(s, k);
	jb_putc(&s->buf, bracket);
	s->first = true;
}

void rec_close(struct stream *s, char bracket)
{
	jb_putc(&s->buf, bracket);
	s->first = false;
}

void rec_item(struct stream *s, const char *v, size_t n, bool truncated)
{
	key(s, NULL);
	value(s, v, n, truncated);
}

int rec_end(struct stream *s)
{
	struct rec_view v;

	jb_raw(&s->buf, "}\n", 2);
	v.kind = s->kind;
	v.step = s->step;
	v.line = s->buf.p;
	v.len = s->buf.len;
	if (s->failed)
		return -1;
	s->count[s->kind]++;
	for (size_t i = 0; i < s->nsinks; i++) {
		if (s->sinks[i].write(s->sinks[i].ctx, &v) < 0) {
			s->failed = errno ? errno : EIO;
			s->failed_sink = s->sinks[i].name;
			return -1;
		}
	}
	return 0;
}

int sink_fd_write(void *ctx, const struct rec_view *v)
{
	return write_all(*(int *)ctx, v->line, v->len);
}
