/* runs: one summary per run of a log, newest last, and finding a run by id. */
#ifndef RUNSEAL_RUNS_H
#define RUNSEAL_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include "logread.h"

struct run_sum {
	char id[48];
	char *runbook, *runbook_name, *status;
	char *trigger; /* who or what started it, in short (NULL: not recorded) */
	char start[TIME_LEN];
	uint64_t start_ns, end_ns;
	int64_t duration_ms, events, lost; /* -1 unknown */
	unsigned long steps, records, losses;
	bool interrupted, ended;
	uint64_t first_seq, last_seq;
};

struct run_list {
	struct run_sum *r;
	size_t n;
	struct logread *reader;
};

/* A run_start's trigger in short: the --trigger pairs, then "sudo USER", "ssh CLIENT", or
 * else "via PROGRAM" (what started runseal); NULL when the record has no trigger. */
char *run_trigger(const struct lr_ent *run_start);
/* Verifies the log at o->path (o->keep is ignored) and summarises its runs. */
int runs_collect(struct run_list *l, const struct lr_opts *o, char *err, size_t errlen);
void runs_free(struct run_list *l);
/* A run by full id, unique prefix, or "last"; NULL with a message otherwise. */
const struct run_sum *runs_find(const struct run_list *l, const char *arg, char *err,
				size_t errlen);
/* Runs of the same runbook as r that ended before it, newest first, at most max. */
size_t runs_before(const struct run_list *l, const struct run_sum *r, const struct run_sum **out,
		   size_t max);

#endif
