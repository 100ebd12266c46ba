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
struct ring_buffer;

struct collector {
	struct runseal_bpf *skel;
	struct ring_buffer *rb;
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
};

#define COLLECTOR_RINGBUF_DEFAULT (16u << 20)

/* Mounts tracefs when missing, loads and attaches the programs. Returns 0, or -1 after
 * printing why (not root, no BTF, verifier refusal...). With floor, every program returns
 * at once: the benchmark's measure of what the attached tracepoints alone cost. */
int collector_open(struct collector *c, struct stream *out, size_t ringbuf_bytes, bool floor);
void collector_close(struct collector *c);
void collector_set_run(struct collector *c, const char *run_id);
void collector_set_step(struct collector *c, uint32_t seq, const char *name);
/* Marks pid as part of step seq of the current run; its descendants inherit the mark. */
int collector_track(struct collector *c, pid_t pid, uint32_t seq);
/* A descriptor that polls readable when events wait. */
int collector_fd(struct collector *c);
/* Turns every waiting event into records and reports new kernel drops as a loss record
 * (at most every 100 ms, and always when final).
 * Returns 0, or -1 when the stream failed. */
int collector_drain(struct collector *c, bool final);

#endif
