/* record: the one stream every record passes through, in order.
 *
 * A record is built field by field and encoded as one line of JSON, with every string
 * redacted and escaped here, so no sink can see a secret or an unescaped byte. The line is
 * then handed to each sink in the order they were added (the sealer first, once it exists),
 * with the step and kind for sinks that count. */
#ifndef RUNSEAL_RECORD_H
#define RUNSEAL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "redact.h"
#include "schema.h"

struct rec_view {
	enum rec_kind kind;
	int step;	  /* step sequence number in the run, -1 for run-scoped records */
	const char *line; /* JSON object and '\n' */
	size_t len;
};

struct sink {
	/* Returns 0, or -1 with errno set: the stream then stops with an error. */
	int (*write)(void *ctx, const struct rec_view *v);
	void *ctx;
	const char *name;
};

#define STREAM_MAX_SINKS 8

struct stream {
	struct sink sinks[STREAM_MAX_SINKS];
	size_t nsinks;
	const struct redactor *redactor;
	struct jbuf buf;
	enum rec_kind kind;
	int step;
	bool first; /* no field written yet at this nesting level */
	int failed; /* errno of the first sink failure */
	const char *failed_sink;
	uint64_t count[REC_KIND_MAX];
};

void stream_init(struct stream *s, const struct redactor *r);
void stream_free(struct stream *s);
void stream_add_sink(struct stream *s, struct sink k);

/* Every record starts with kind, time and run; step-scoped ones pass step >= 0 and then add
 * the step's name and the process fields themselves. */
void rec_begin(struct stream *s, enum rec_kind kind, uint64_t realtime_ns, const char *run,
	       int step);
void rec_str(struct stream *s, const char *key, const char *v);
void rec_strn(struct stream *s, const char *key, const char *v, size_t n, bool truncated);
void rec_int(struct stream *s, const char *key, int64_t v);
void rec_bool(struct stream *s, const char *key, bool v);
void rec_null(struct stream *s, const char *key);
void rec_open(struct stream *s, const char *key, char bracket); /* '{' or '[' */
void rec_close(struct stream *s, char bracket);
void rec_item(struct stream *s, const char *v, size_t n, bool truncated); /* in an array */
/* Returns 0, or -1 when a sink failed (this record or an earlier one). */
int rec_end(struct stream *s);

/* A sink that writes JSON Lines to a file descriptor. */
int sink_fd_write(void *ctx, const struct rec_view *v);

#endif
