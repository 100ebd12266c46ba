/* diff: what one run did that another run of the same runbook did not, step by step:
 * executables, files written, network destinations, steps missing or failing, and large
 * changes of counts or duration. Paths are normalised (normalize.h) so that routine runs
 * compare equal; network destinations are compared as they are. */
#ifndef RUNSEAL_DIFF_H
#define RUNSEAL_DIFF_H

#include "report/doc.h"
#include "report/model.h"

struct diff_item {
	char *step;
	char *what;   /* "executable", "file written", "network destination", "step", ... */
	char *detail; /* as the run had it */
	char *key;    /* what was compared: the normalised path */
	int side;     /* +1: only in the second run (B), -1: only in the first (A), 0: changed */
};

struct diff {
	struct diff_item *it;
	size_t n;
};

void diff_runs(struct diff *d, const struct m_run *a, const struct m_run *b);
/* What b did that none of the base runs did (items on b's side found in every diff). */
void diff_baselines(struct diff *d, const struct m_run *const *base, size_t nbase,
		    const struct m_run *b);
void diff_section(struct doc *doc, const struct diff *d, const struct m_run *a,
		  const struct m_run *b);
void diff_free(struct diff *d);

#endif
