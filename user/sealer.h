/* sealer: append every record to the host's hash-chained log, seal segments with the
 * current epoch key, compress them, set WORM flags and copy them to replicas.
 * docs/FORMAT.md is the format; this is its only writer. */
#ifndef RUNSEAL_SEALER_H
#define RUNSEAL_SEALER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"
#include "keys.h"
#include "record.h"

#define SEALER_SEGMENT_MAX  (16u << 20)
#define SEALER_CHECKPOINT_S 60
#define SEALER_LOCK	    "LOCK" /* in the log directory: one writer at a time */

enum sealer_level { SEALER_NOTICE, SEALER_WARNING };
/* A message for the user ("created signing keys in ...", "recovered after a crash: ...",
 * a replica that could not be written), without a trailing newline. */
typedef void (*sealer_notice_fn)(void *ctx, enum sealer_level level, const char *msg);

struct sealer_opts {
	const char *log_dir;
	const char *key_dir;
	const char *const *replicas;
	size_t nreplicas;
	bool fsync_record;	 /* fsync every entry, not only at boundaries */
	bool keep_going;	 /* --on-log-error=continue */
	uint64_t segment_max;	 /* bytes */
	uint64_t checkpoint_s;	 /* seal at least this often */
	uid_t owner;		 /* of the log, replica and key directories: root (0) on a host */
	sealer_notice_fn notice; /* NULL: messages are dropped */
	void *notice_ctx;
};

struct sealer {
	struct sealer_opts o;
	int dirfd;
	int lockfd;	    /* SEALER_LOCK, flock'ed while the log is open */
	int fd;		    /* active segment, -1 when none is open */
	uint64_t segment;   /* number of the active (or next) segment */
	uint64_t seq;	    /* seq of the next entry */
	uint64_t first_seq; /* of the active segment */
	uint64_t seg_bytes;
	uint64_t last_seal;	/* CLOCK_MONOTONIC ns of the last seal (or open) */
	uint64_t last_seal_rt;	/* CLOCK_REALTIME ns of the log's last seal, 0 unknown */
	unsigned char last[32]; /* hash of the last entry */
	struct epoch_schedule sched;
	struct epoch_signer sg;
	char host_hex[33];
	bool worm;	       /* inode flags work here */
	bool failed;	       /* a write failed: nothing more is written */
	bool pending_recovery; /* a crashed segment awaits its recovery entry */
	char recovery[512];    /* that entry's fields */
	struct jbuf line;
	struct jbuf out; /* entries not yet written */
};

/* Opens (creating keys on first use, saying so through o->notice) the log and recovers
 * from a crash. Returns 0, or -1 with err naming the file and the problem; nothing is
 * written then. */
int sealer_open(struct sealer *s, const struct sealer_opts *o, char *err, size_t errlen);
/* The stream sink: appends one record; fsyncs at step and run boundaries. */
int sealer_sink(void *ctx, const struct rec_view *v);
/* Seals the active segment (reason: run_end, size, checkpoint, heartbeat, shutdown, or
 * start: the seal sealer_open makes when the last one is old, see seal_at_start). */
int sealer_seal(struct sealer *s, const char *reason);
/* Writes the batched entries (no fsync). */
int sealer_flush(struct sealer *s);
/* Called about once a second: checkpoint or heartbeat seal when one is due. */
int sealer_tick(struct sealer *s);
void sealer_close(struct sealer *s);

/* Sets the append-only or immutable inode flag (0: clear both); -1 with errno when the
 * filesystem refuses. */
int worm_set(int fd, unsigned flag);

#endif
