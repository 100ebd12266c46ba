/* collector: load the BPF programs, decode their events, attribute them to the run and step,
 * count losses, and turn it all into records on the stream. */
#ifndef RUNSEAL_COLLECTOR_H
#define RUNSEAL_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "record.h"

struct runseal_bpf;

/* Many runs at once (the daemon): names the run and step of an event from the numbers the
 * kernel stamped on it. Without it, every event belongs to run_id and steps[]. */
typedef const char *(*collector_names_fn)(void *ctx, uint32_t run, uint32_t step,
					  const char **step_name);
/* Warnings (a malformed event, counted as lost) go to the caller, which says them. */
typedef void (*collector_warn_fn)(void *ctx, const char *msg);

struct collector {
	struct runseal_bpf *skel;
	struct stream *out;
	int64_t boot_to_real; /* add to CLOCK_BOOTTIME to get CLOCK_REALTIME */
	const char *run_id;
	char **steps; /* step names by step sequence number */
	size_t nsteps;
	uint64_t drops[32]; /* kernel drop counters already reported, by event kind */
	uint64_t lost;	    /* events lost in all */
	uint64_t malformed, malformed_seen; /* events the collector could not decode */
	uint64_t events;
	uint64_t last_drop_check; /* CLOCK_MONOTONIC ns */
	/* Self-protection (issue 8). */
	uint32_t own_ids[3][128]; /* ids of runseal's maps, programs and links */
	size_t nown[3];
	pid_t own_pids[8]; /* runseal's own processes: the runner and its guards */
	/* The ring buffer, read by the collector itself rather than libbpf: it owns the
	 * consumer position and sees any write to it that is not its own (issue 8). */
	volatile uint64_t *rb_cons;	  /* consumer position page (the one writable page) */
	const volatile uint64_t *rb_prod; /* producer position page, then the data twice */
	const uint8_t *rb_data;
	uint64_t rb_mask;
	uint64_t rb_pos;      /* the consumer position we set last */
	uint64_t tampered;    /* consumer moves we did not make */
	int64_t tamper_bytes; /* consumer moves not yet in a loss record */
	uint64_t tamper_moves, last_tamper_rec;
	uint64_t tamper_attempts; /* syscalls of the run's processes aimed at runseal itself */
	/* What the tracked map must hold, from registrations, forks and exits: a BPF program
	 * of a step's own can still write the frozen map, so it is compared now and then.
	 * sh_mark is the run and step together (run << 32 | step): with many runs (the
	 * daemon), an entry moved to another run with the same step number is a change too. */
	uint32_t *sh_pid, *sh_seen;
	uint64_t *sh_mark;
	size_t sh_cap, sh_n;
	uint32_t sh_gen;
	uint64_t last_track_check; /* CLOCK_MONOTONIC ns */
	collector_names_fn names;
	void *names_ctx;
	collector_warn_fn warn;
	void *warn_ctx;
};

#define COLLECTOR_RINGBUF_DEFAULT (16u << 20)

/* collector_open flags. FLOOR: every program returns at once, the benchmark's measure of
 * what the attached tracepoints alone cost. FAIL_CLOSED: once the runner has exited, the
 * programs kill each tracked process at its next recorded syscall, exec or fork (for pinned
 * programs, which outlive the runner). */
#define COLLECTOR_FLOOR	      1u
#define COLLECTOR_FAIL_CLOSED 2u

/* Loads and attaches the programs. Returns 0, or -1 after printing why (not root, no BTF,
 * verifier refusal...). */
int collector_open(struct collector *c, struct stream *out, size_t ringbuf_bytes, unsigned flags);
void collector_close(struct collector *c);
/* Pins the links, the tracked map and the ring in dir (made, on bpffs), so that the programs
 * outlive the runner and its guard. Returns the number of links, or -1 with err set (then
 * nothing stays pinned). */
int collector_pin(struct collector *c, const char *dir, char *err, size_t errlen);
/* Removes the pins in dir and dir: the programs detach once no process holds them. */
void collector_unpin(const char *dir);
/* A dead runner's pins in dir: kills and lists up to max processes still in its tracked map
 * (only when all nlinks links are still pinned: then the exit program kept the map current,
 * and no pid is stale), passes each unread event of the ring to fn, and removes the pins.
 * Returns how many processes, or -1 when dir holds no pins. */
int collector_reap(const char *dir, int nlinks, pid_t *pids, uint32_t *steps, size_t max,
		   int (*fn)(void *ctx, void *data, size_t size), void *ctx);
void collector_set_run(struct collector *c, const char *run_id);
void collector_set_step(struct collector *c, uint32_t seq, const char *name);
/* Marks pid as part of step seq of the current run; its descendants inherit the mark. */
int collector_track(struct collector *c, pid_t pid, uint32_t seq);
/* Forgets pid (it will not be traced any more); 0, or -1 when it was not tracked. */
int collector_untrack(struct collector *c, pid_t pid);
/* Lists up to max live processes of the current run from the kernel's tracked map, with
 * their step sequence numbers; returns how many. */
size_t collector_tracked(struct collector *c, pid_t *pids, uint32_t *steps, size_t max);
/* The same for any run number (the daemon's runs). */
size_t collector_run_tracked(struct collector *c, uint32_t run, pid_t *pids, uint32_t *steps,
			     size_t max);
/* Every entry of the kernel's table (one walk, no liveness check): pid, run, step. */
size_t collector_tracked_all(struct collector *c, pid_t *pids, uint32_t *runs, uint32_t *steps,
			     size_t max);
/* Names another process of runseal's own (the guard), for the target of signals. */
void collector_set_own_pid(struct collector *c, pid_t pid);
/* The run must not be called complete: events were lost or the ring was tampered with. */
bool collector_incomplete(const struct collector *c);
/* The ring buffer map's descriptor, for a consumer of its own (the guard's salvage). */
int collector_events_fd(struct collector *c);
/* "kill", "ptrace"... for an rs_guard.sys number; NULL when unknown. */
const char *collector_guard_sys_name(unsigned sys);
/* Where warnings go (default: nowhere; what they say is also in the loss records). */
void collector_set_warn(struct collector *c, collector_warn_fn fn, void *ctx);
/* The run table of the daemon (user/engine/engine.c): names by run number. */
void collector_set_names(struct collector *c, collector_names_fn fn, void *ctx);
/* Marks pid as part of step seq of run number run. Returns 0, or -1 with errno (EEXIST when
 * pid is tracked already: a traced process may not move itself to another run). */
int collector_track_run(struct collector *c, pid_t pid, uint32_t run, uint32_t seq);
/* The run and step pid is tracked under: 0, or -1 when it is not tracked. */
int collector_run_of(struct collector *c, pid_t pid, uint32_t *run, uint32_t *seq);
/* Stops tracking pid (its registration could not be confirmed). */
int collector_drop_pid(struct collector *c, pid_t pid);
/* Processes of run still tracked; with forget, they are no longer tracked. */
size_t collector_run_pids(struct collector *c, uint32_t run, bool forget);
/* A descriptor that polls readable when events wait. */
int collector_fd(struct collector *c);
/* Turns every waiting event into records and reports new kernel drops as a loss record
 * (at most every 100 ms, and always when final).
 * Returns 0, or -1 when the stream failed. */
int collector_drain(struct collector *c, bool final);

#endif
