/* runner: execute a runbook's steps in order, each as a traced process tree in its own
 * cgroup, and write run_start, step_start, step_end and run_end records around the events
 * the collector attributes to each step. */
#ifndef RUNSEAL_RUNNER_H
#define RUNSEAL_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

#include "sealer.h"

/* What happens at the end of a run to the processes its steps left running. */
enum lingering {
	LINGER_LEAVE, /* listed in run_end; they go on, untraced once runseal exits */
	LINGER_KILL,  /* killed, their exits recorded */
	LINGER_WAIT,  /* traced until they exit: the run ends after them */
};

struct run_opts {
	const char *runbook;
	char **params; /* "name=value" */
	size_t nparams;
	const char *events;	/* JSON Lines file, "-" for stdout, NULL for none */
	const char *redact_env; /* env name patterns, NULL for the defaults */
	size_t ringbuf_bytes;
	bool strict;  /* a run with losses exits non-zero */
	bool no_seal; /* no sealed log: --events only (tests, dry runs) */
	const char *log_dir;
	const char *key_dir;
	const char *const *replicas;
	size_t nreplicas;
	bool fsync_record;
	bool log_keep_going; /* --on-log-error=continue */
	unsigned checkpoint_s;
	bool bpf_floor; /* benchmark: programs attached but returning at once */
	bool quiet;
	const char *const *triggers; /* --trigger NAME=VALUE, into run_start's trigger */
	size_t ntriggers;
	enum { RUN_AUTO, RUN_EMBEDDED, RUN_DAEMON } tracer; /* who traces and seals */
	const char *socket;				    /* the daemon's, NULL for the default */
	sealer_notice_fn log_notice; /* what the sealer has to say; NULL: dropped */
	enum lingering lingering;    /* the run's processes still alive after its last step */
};

/* Exit status of `runseal run`. */
enum {
	RUN_OK = 0,
	RUN_FAILED = 1,	    /* a step failed or timed out */
	RUN_USAGE = 2,	    /* bad runbook, params or set-up: nothing ran */
	RUN_INCOMPLETE = 3, /* with --strict: events were lost */
	RUN_INTERRUPTED = 130,
};

int runner_run(const struct run_opts *o);

#endif
