/* engine: what the daemon owns for its whole life: one collector with a table of runs keyed
 * by the run number the kernel stamps on each event, one sealer, the seal timer. Runs and
 * steps open and close through it and every change is a record in the one stream; the
 * daemon (user/daemon/) speaks to clients and calls these. Nothing here prints (except the
 * collector's and sealer's own warnings) or exits. */
#ifndef RUNSEAL_ENGINE_H
#define RUNSEAL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sealer.h"

#define ENGINE_ID_LEN	    40
#define ENGINE_RUNS_MAX	    1024  /* open runs at once; closed ones stay named until reused */
#define ENGINE_RUNS_PER_UID 256	  /* open runs of one user other than root */
#define ENGINE_STEPS_MAX    65536 /* steps of one run */
#define ENGINE_ERRLEN	    256

struct engine;

struct engine_opts {
	const char *log_dir;
	const char *key_dir;
	const char *const *replicas;
	size_t nreplicas;
	size_t ringbuf_bytes;
	unsigned checkpoint_s;
	bool fsync_record;
	void (*warn)(void *ctx, const char *msg); /* the collector's warnings (NULL: none) */
	void *warn_ctx;
	sealer_notice_fn log_notice; /* what the sealer has to say; NULL: dropped */
};

/* Who asked: from SO_PEERCRED, never from the client's word. */
struct engine_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int pidfd; /* pins pid: -1 when the kernel gave none */
};

struct engine_kv {
	const char *key, *value;
};

struct engine_status {
	uint64_t uptime_s;
	uint64_t runs_open, runs_total;
	uint64_t events, lost;
	uint64_t events_per_s; /* over the last minute */
	uint64_t last_seal_ns; /* CLOCK_REALTIME, 0 before the first */
	uint64_t segment, seq;
	uint64_t log_free_bytes, log_size_bytes;
	size_t nreplicas;
	size_t replicas_in_sync; /* whose HEAD is the log's */
	bool log_failed;
};
/* "in sync", "behind" or "unreachable": a replica's HEAD against the log's. */
const char *engine_replica_state(const struct engine *e, size_t i);

/* Errors: each function returns 0 or one of these, with err saying what. */
enum {
	ENGINE_ALREADY = 1,   /* not an error: nothing to do */
	ENGINE_EFAIL = -1,    /* the log cannot be written, or a system call failed */
	ENGINE_ENORUN = -2,   /* no open run with that id, or no such open step */
	ENGINE_EOWNER = -3,   /* the run belongs to another user */
	ENGINE_ELIMIT = -4,   /* too many runs or steps */
	ENGINE_ETRACKED = -5, /* the process is traced already (by a run) */
	ENGINE_EGONE = -6,    /* the process exited before it was registered */
	ENGINE_EBAD = -7,     /* a record that is not one of the run's own, or malformed */
	ENGINE_EORDER = -8,   /* a record out of its place (a step before run_start) */
};

/* engine_run_open's flags. */
#define ENGINE_DETACHED	  1u	     /* stays open when its client leaves */
#define ENGINE_RECORDS	  2u	     /* the client writes the run's own records (runseal run) */
#define ENGINE_RECORD_MAX (1u << 20) /* bytes of one record a client writes */

/* What the daemon saw of a run so far, for the records its client writes. */
struct engine_run_stats {
	uint64_t events, lost, tamper_attempts;
	size_t ntracked; /* live processes of the run in the kernel's table */
	pid_t pids[256];
	uint32_t steps[256];
};
const char *engine_code(int rc); /* "no_such_run", ... for the protocol */

int engine_open(struct engine **out, const struct engine_opts *o, char *err, size_t errlen);
/* Polls readable when events wait in the kernel ring. */
int engine_fd(const struct engine *e);
/* Turns waiting events into records and writes them to the log. */
int engine_poll(struct engine *e);
/* About once a second: checkpoint seals, the event rate. */
int engine_tick(struct engine *e);

int engine_run_open(struct engine *e, const char *runbook, const char *client,
		    const struct engine_kv *trigger, size_t ntrigger, unsigned flags,
		    const struct engine_peer *p, char id[ENGINE_ID_LEN], char *err, size_t errlen);
/* One record of a run opened with ENGINE_RECORDS, as its client (runseal run) built it:
 * run_start first, then step_start, step_end, and run_end, which closes the run and seals.
 * The line is checked (one JSON object, kind, time and run first, the run's id, the step
 * numbers in order) and written as given, with the kernel's word for who gave it added to
 * run_start. The step's events come between its step_start and step_end as for any run. */
struct engine_written {
	bool step_opened, step_closed, run_closed;
	uint32_t step;
};
int engine_record(struct engine *e, const char *run, const char *line, size_t n,
		  const struct engine_peer *p, struct engine_written *w, char *err, size_t errlen);
/* A secret param of a run opened with ENGINE_RECORDS: every string of every record is
 * redacted of it (as runseal run alone does) while the run is open; it is wiped when the
 * run ends and never written anywhere, the state kept for a restart included. */
#define ENGINE_SECRETS_MAX 64	       /* of one run */
#define ENGINE_SECRET_MAX  (64u << 10) /* bytes of one */
int engine_secret(struct engine *e, const char *run, const char *name, const char *value,
		  const struct engine_peer *p, char *err, size_t errlen);
/* Drains the ring, then says what the run's processes did so far. */
int engine_run_stats(struct engine *e, const char *run, const struct engine_peer *p,
		     struct engine_run_stats *st, char *err, size_t errlen);
int engine_step_open(struct engine *e, const char *run, const char *name, const char *const *argv,
		     size_t argc, bool argv_truncated, const struct engine_peer *p, uint32_t *seq,
		     char *err, size_t errlen);
/* Puts the peer's own process (p->pid, pinned by p->pidfd) under the step: it and all its
 * descendants are traced from now on. Returns ENGINE_ALREADY when it is traced as part of
 * this very step already (a traced command that calls runseal exec for its own step again,
 * as Ansible's modules do through runseal-sh); ENGINE_ETRACKED when it is traced as part of
 * anything else: it may not move itself. */
int engine_attach(struct engine *e, const char *run, uint32_t seq, const struct engine_peer *p,
		  char *err, size_t errlen);
/* exit_code -1 and signal 0 when unknown; status "ok", "failed" or "abandoned". */
int engine_step_close(struct engine *e, const char *run, uint32_t seq, const char *status,
		      int exit_code, int signal, const struct engine_peer *p, char *err,
		      size_t errlen);
/* Closes the run's open steps as abandoned, writes run_end, seals. */
int engine_run_close(struct engine *e, const char *run, const char *status,
		     const struct engine_peer *p, char *err, size_t errlen);
/* A refused request, recorded: op, why, what was asked for (may be NULL), and who (NULL
 * for a count of refusals not recorded one by one). */
int engine_refused(struct engine *e, const char *op, const char *reason, const char *what,
		   const struct engine_peer *p);
/* A read of a log (PCI DSS 10.2.1.3: access to audit trails is itself logged): which
 * command read which log and runs (none: all of it), and who, as the kernel says. */
int engine_read(struct engine *e, const char *command, const char *log, const char *const *runs,
		size_t nruns, const struct engine_peer *p);
/* A daemon life event (start, reload, stop) with one detail string (may be NULL). */
int engine_note(struct engine *e, const char *event, const char *detail);
void engine_status(struct engine *e, struct engine_status *st);
uint64_t engine_runs_open(const struct engine *e);
/* Ids of open runs, for the stop record; returns how many were written to ids. */
size_t engine_open_runs(struct engine *e, const char **ids, size_t max);
/* The run table and the live traced processes of each run, for a restart; written at each
 * tick while runs are open, and at the stop. Returns 0, or -1 when it cannot be written. */
#define ENGINE_STATE_DIR  "/run/runseal/daemon"
#define ENGINE_STATE_PIDS 1024 /* processes of one run carried over a restart */
#define ENGINE_STATE_ALL  4096 /* of all runs together */
#define ENGINE_NAME_MAX	  256  /* bytes of a step name kept over a restart */
int engine_save_state(struct engine *e);
/* At start: the runs open at the last stop (or crash) back in the table, their processes
 * still alive (same pid and start time) and those they forked meanwhile re-registered,
 * and a gap record in each run saying from when to when nothing was traced. */
int engine_resume(struct engine *e, size_t *resumed);
/* Records the stop with the runs still open, drains and seals. */
int engine_shutdown(struct engine *e);
void engine_close(struct engine *e);

#endif
