#define _GNU_SOURCE
#include <string.h>

#include "progress.h"

int progress_sink(void *ctx, const struct rec_view *v)
{
	struct progress *p = ctx;

	if (v->kind == REC_STEP_START)
		memset(p->counts, 0, sizeof(p->counts));
	p->counts[v->kind]++;
	return 0;
}

void progress_step_start(struct progress *p, const char *name, unsigned attempt)
{
	if (!p->out)
		return;
	if (attempt > 1)
		fprintf(p->out, "[ .. ] %s (attempt %u)\n", name, attempt);
	else
		fprintf(p->out, "[ .. ] %s\n", name);
	fflush(p->out);
}

/* Step names are restricted to [A-Za-z0-9._-] by the runbook parser: safe to print. */
void progress_step_end(struct progress *p, const char *name, const char *status,
		       uint64_t duration_ms)
{
	if (!p->out)
		return;
	fprintf(
	    p->out, "[%-4.4s] %-24s %6llu.%03llus  exec %llu  open %llu  connect %llu  fork %llu\n",
	    strcmp(status, "ok") == 0 ? " ok" : status, name,
	    (unsigned long long)(duration_ms / 1000), (unsigned long long)(duration_ms % 1000),
	    (unsigned long long)p->counts[REC_EXEC], (unsigned long long)p->counts[REC_OPEN],
	    (unsigned long long)p->counts[REC_CONNECT], (unsigned long long)p->counts[REC_FORK]);
	fflush(p->out);
}

void progress_run_end(struct progress *p, const char *run_id, const char *status, size_t steps,
		      uint64_t events, uint64_t lost)
{
	if (!p->out)
		return;
	fprintf(p->out, "run %s %s: %zu step%s, %llu events, %llu lost\n", run_id, status, steps,
		steps == 1 ? "" : "s", (unsigned long long)events, (unsigned long long)lost);
	fflush(p->out);
}
