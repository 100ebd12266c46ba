/* model: one run as reviewers think of it, built from verified entries only (logread):
 * run -> steps -> process trees (each process with its execs, files, connections in time
 * order), plus the run's losses, interruption and the log's crash recoveries. */
#ifndef RUNSEAL_MODEL_H
#define RUNSEAL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logread.h"

enum { F_READ = 1, F_WRITE = 2, F_CREATE = 4, F_FAIL = 8, F_TRUNC = 16 };

struct m_proc {
	int64_t pid, ppid;
	size_t parent;		  /* index in the step's procs, or SIZE_MAX for a root */
	uint64_t t0;		  /* first seen */
	const struct lr_ent **ev; /* its records in log order */
	size_t nev;
	const struct lr_ent *exit;
};

struct m_step {
	int64_t seq, attempt;
	char *name;
	const struct lr_ent *start, *end;
	char *status;			/* ok, failed, timeout; "running" without a step_end */
	int64_t exit_code, duration_ms; /* -1 when unknown */
	char *argv;			/* the step's command, joined by spaces */
	char *error;
	struct m_proc *procs;
	size_t nproc;
	unsigned long nexec, nread, nwrite, nconn, nfail, nother; /* nwrite: opens for
								     writing and file changes */
};

struct m_run {
	char id[48];
	const struct lr_ent *start, *end;
	struct m_step *steps;
	size_t nstep;
	const struct lr_ent **loss, **recov, **orphan;
	size_t nloss, nrecov, norphan;
	bool interrupted;	    /* no run_end, or run_end says a signal stopped it */
	const struct lr_ent *found; /* run_interrupted: what the next start found of it */
	char *status;
	uint64_t start_ns, end_ns;
	int64_t events, lost;
};

/* Builds the model of run id from the reader's entries (in log order). -1 with a message
 * when the reader holds no entry of that run. */
int model_build(struct m_run *m, struct logread *r, const char *id, char *err, size_t errlen);
void model_free(struct m_run *m);

/* Read, write, create, truncate, failed: of an open record. */
unsigned m_open_flags(const struct lr_ent *e);
/* An array-of-strings member joined by sep (raw bytes), or NULL when absent. */
char *m_join(const struct lr_ent *e, const char *key, const char *sep);
/* The argv member as one line a shell would split back into the same words: words with
 * anything but letters, digits and @%+=:,./-_ are single-quoted ('\'' for a quote). */
char *m_argv(const struct lr_ent *e);
/* "addr:port", "[addr]:port" or the unix path of a connect record. */
char *m_dest(const struct lr_ent *e);
/* A record that changes a file's name, content, mode or owner (schema's RK_FILE_CHANGE). */
bool m_file_change(const struct lr_ent *e);
/* The step's or process's kernel failure (negative ret): the errno name, or NULL. */
bool m_failed(const struct lr_ent *e);

#endif
