/* verify: the rules of a sealed log (and its replicas) against docs/FORMAT.md. Everything
 * is checked from public material: root.pub and epochs.pub. It never prints: problems and
 * notes go to a callback the caller chose, the result to a summary. */
#ifndef RUNSEAL_VERIFY_H
#define RUNSEAL_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define LOG_DIR_DEFAULT "/var/lib/runseal/log"
/* offset or seq of a problem that has none */
#define VERIFY_NONE UINT64_MAX

enum verify_level {
	VERIFY_ERROR,
	VERIFY_WARNING,
	/* Not about the log, and not counted: about the key directory (a stale epoch.key). */
	VERIFY_NOTE,
};

/* One problem; the strings live for the call only. */
struct verify_problem {
	enum verify_level level;
	const char *kind; /* docs/FORMAT.md's kinds: modified, deleted, ..., worm, interrupted */
	const char *file; /* "" when none; a replica's files are prefixed by "DIR/" */
	uint64_t offset, seq;
	const char *run; /* the run of an "interrupted" problem, else NULL */
	const char *message;
};

typedef void (*verify_problem_fn)(void *ctx, const struct verify_problem *p);

/* One verified entry (chain and seal checked), in log order; non-zero stops delivery. */
typedef int (*verify_entry_fn)(void *ctx, const char *line, size_t len, uint64_t seq,
			       const unsigned char hash[32]);

struct verify_opts {
	const char *log_dir;
	const char *pub;     /* root.pub; default <key_dir>/root.pub */
	const char *key_dir; /* where epochs.pub is; default KEYS_DIR_DEFAULT */
	const char *const *replicas;
	size_t nreplicas;
	bool strict; /* warnings count as errors */
	/* Accept a log that starts after a trusted link: a file ANCHOR in the directory holding
	 * the seal line of the segment before its first one (docs/FORMAT.md, "Anchored
	 * logs"), as an evidence bundle trimmed to a run has. */
	bool allow_anchor;
	verify_problem_fn problem; /* NULL: problems are only counted */
	verify_entry_fn entry;	   /* NULL: entries are not delivered */
	void *ctx;		   /* for both */
};

#define VERIFY_KEYS_MAX 64

struct verify_summary {
	unsigned long errors, warnings;
	uint64_t entries, segments, seals;
	bool have_seal; /* the log's last seal: */
	uint64_t last_seal_seq;
	char last_seal_time[TIME_LEN];
	bool any; /* entries were delivered: first_seq..last_seq */
	uint64_t first_seq, last_seq;
	char root_key[65]; /* key id of the root.pub trusted, when it loaded */
	char host_id[33];
	/* The key ids of the epoch keys whose seals verified (the first VERIFY_KEYS_MAX). */
	char epoch_keys[VERIFY_KEYS_MAX][65];
	size_t nepoch_keys;
	bool anchored; /* checked from an ANCHOR seal: anchor_seq, of segment anchor_segment */
	uint64_t anchor_seq, anchor_segment;
	char err[512]; /* why, when verify_log returned 2 */
};

/* Verifies. Returns 0 when everything agrees, 1 when problems were found (or warnings with
 * strict), 2 when the log or the keys cannot be read (the reason in sum->err). sum may be
 * NULL. */
int verify_log(const struct verify_opts *o, struct verify_summary *sum);

/* The same, a segment at a time, for a reader that pulls: verify_begin loads the keys and
 * lists the log (-1 when that failed: verify_end then returns 2); each verify_step checks
 * the next segment of the log and hands its verified entries to o->entry before it
 * returns, 1 while there was one, 0 after the last; verify_end checks what only the whole
 * log tells (HEAD, the replicas, runs that never ended), fills sum, frees the walk and
 * returns what verify_log returns. o and sum must outlive the walk. */
struct verify_walk;
int verify_begin(struct verify_walk **vw, const struct verify_opts *o, struct verify_summary *sum);
int verify_step(struct verify_walk *vw);
int verify_end(struct verify_walk *vw);
/* Frees a walk that is not finished (a reader that stopped early). */
void verify_abort(struct verify_walk *vw);

#endif
