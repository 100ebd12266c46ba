/* guard: what stays behind when the runner is killed (issue 8, self-protection).
 *
 * A run is remembered in the host's runtime state (/run/runseal/live/, one directory per
 * log) from its start until it ends. A guard process, forked from the runner once the BPF
 * programs are loaded, holds their links and maps: when the runner dies without ending the
 * run (SIGKILL), the guard kills the run's cgroup and every process still in the kernel's
 * tracked map, and notes them in the run's state file. The next start of runseal on the same
 * log finds that file, kills what is still left, and records the interruption.
 *
 * The links are also pinned (GUARD_PIN_DIR/RUN): when the runner and the guard are both
 * killed, the programs stay attached and kill each of the run's processes at its next
 * recorded syscall (COLLECTOR_FAIL_CLOSED); the next start reaps the pins. */
#ifndef RUNSEAL_GUARD_H
#define RUNSEAL_GUARD_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "collector.h"

#define GUARD_STATE_DIR	 "/run/runseal/live"
#define GUARD_KILLED_MAX 256
#define GUARD_PIN_DIR	 "/sys/fs/bpf/runseal"

struct guard {
	pid_t pid; /* the guard process, 0 when none */
	int fd;	   /* write end of its pipe */
	unsigned restarts;
	int drop_fd; /* the log's lock: closed in the guard, so the lock dies with the runner */
	char live[PATH_MAX];
	char cg_run[PATH_MAX];
	char pins[PATH_MAX]; /* where the links are pinned, "" when they are not */
	int npins;
};

/* A run whose runner died before its run_end. */
struct crashed {
	char run_id[64];
	pid_t runner;
	char cgroup[PATH_MAX];
	char pins[PATH_MAX];
	int npins;
	pid_t killed[GUARD_KILLED_MAX]; /* by the guard, then by this recovery */
	unsigned steps[GUARD_KILLED_MAX];
	size_t nkilled;
	size_t nguard; /* the first nguard of killed were the guard's */
	/* Processes whose exit by SIGKILL is among the events left unread in the pinned ring:
	 * after the runner and the guard died, the programs' own kills. */
	pid_t stopped[GUARD_KILLED_MAX];
	size_t nstopped;
	/* Left unread in the ring when the runner died, as the guard found them: how many,
	 * and the syscalls among them aimed at the runner (its killer, most likely). */
	unsigned long unread;
	struct aimed {
		pid_t pid;
		unsigned step, sys;
		unsigned long long arg; /* the signal, the ptrace request... */
		char comm[17];
	} aimed[16];
	size_t naimed;
};

/* Pins the links and writes the run's state file (log_dir may be NULL: neither), and forks
 * the guard, which closes drop_fd (-1: none) so that the log's lock is not held past the
 * runner. Returns 0; 1 with err set (a sentence saying what follows) when the guard runs but
 * the state file could not be written or the links not pinned; -1 with err set when there
 * is no guard. */
int guard_start(struct guard *g, struct collector *c, const char *log_dir, const char *run_id,
		const char *cg_run, int drop_fd, char *err, size_t errlen);
/* A guard that died during the run (a step killed it) is replaced: returns 1 then, 0 when
 * it is alive, -1 with err set when no new one could be started. */
int guard_check(struct guard *g, struct collector *c, char *err, size_t errlen);
/* The run ended: the guard exits without killing anything, the pins and the state file go. */
void guard_stop(struct guard *g);

/* Finds the runs of log_dir whose runner is gone, kills what they left in their cgroups,
 * removes their state files and calls fn for each. Returns how many, or -1 with err set. */
int guard_recover(const char *log_dir, void (*fn)(void *ctx, const struct crashed *cr), void *ctx,
		  char *err, size_t errlen);

#endif
