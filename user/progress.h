/* progress: one line per step on the terminal (status, duration, event counts); silent when
 * stdout is not a terminal. It counts records as a sink of the stream. */
#ifndef RUNSEAL_PROGRESS_H
#define RUNSEAL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "record.h"

struct progress {
	FILE *out; /* NULL: quiet */
	uint64_t counts[REC_KIND_MAX];
};

int progress_sink(void *ctx, const struct rec_view *v);
void progress_step_start(struct progress *p, const char *name, unsigned attempt);
void progress_step_end(struct progress *p, const char *name, const char *status,
		       uint64_t duration_ms);
void progress_run_end(struct progress *p, const char *run_id, const char *status, size_t steps,
		      uint64_t events, uint64_t lost);

#endif
