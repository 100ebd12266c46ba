/* replay: a run step by step, for a terminal: each step's command, start, duration and
 * status, then what its process tree did in log (time) order, each record indented under
 * its process; or the same selection as JSON Lines. */
#ifndef RUNSEAL_REPLAY_H
#define RUNSEAL_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "report/model.h"

struct replay_opts {
	const char *step;  /* a step name or its number; NULL: all */
	int64_t pid;	   /* this process and its descendants; -1: all */
	uint64_t kinds;	   /* bit per enum rec_kind; 0: all */
	uint64_t since_ns; /* absolute times; 0: no bound */
	uint64_t until_ns;
	bool json, colour;
};

/* One line (or JSON object) at a time, through emit: it returns non-zero to stop (a closed
 * pipe), and gets the record's time so a caller can pace the output. */
typedef int (*replay_emit)(void *ctx, const char *text, size_t len, uint64_t time_ns);

int replay_run(const struct m_run *m, const struct replay_opts *o, replay_emit emit, void *ctx);
/* Kind names (comma separated) to the kinds bit set; -1 names an unknown kind in bad. */
int replay_kinds(const char *list, uint64_t *kinds, char *bad, size_t badlen);

#endif
