/* logread: the one reader of a sealed log, for reports, replay, diff, evidence and export.
 *
 * It reads only what verified: the log (a directory, or an evidence bundle) is checked by
 * verify_log(), and only the entries it delivers (chain and seal checked) are kept. Each is
 * parsed once, by the one JSON scanner, into a typed view. The result of the verification
 * (problems, key ids, seals and seq range) travels with the entries, so that every output
 * can state it.
 *
 * verify_log() pushes entries through a callback over the whole log; this reader turns that
 * into a pull iterator by keeping the entries the caller's filter selects (for one run: its
 * records, a few hundred bytes each, and nothing else), so memory grows with the selected
 * run, not with the log. */
#ifndef RUNSEAL_LOGREAD_H
#define RUNSEAL_LOGREAD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "schema.h"
#include "util.h"

/* One verified entry. Strings are decoded bytes (hostile: escape them when printing). */
struct lr_ent {
	uint64_t seq;
	unsigned char hash[32];
	enum rec_kind kind; /* REC_OTHER for a kind this version does not know */
	char kind_name[32];
	uint64_t time_ns;
	char time[TIME_LEN];
	char run[48]; /* "" for log entries */
	char *step;   /* NULL for run-scoped and log entries */
	int64_t pid, ppid;
	char *line; /* the entry as sealed, without '\n' */
	size_t len;
	size_t body; /* offset of the fields after the seq/prev prefix ("kind":...) */
	struct jtok *tok;
	int ntok;
};

/* Field access on the parsed entry: a top-level member's token, or -1. */
int lr_get(const struct lr_ent *e, const char *key);
/* A string member (or the string token tok) decoded into a fresh NUL-terminated buffer
 * (it may hold NULs: *len says); NULL when absent or not a string. */
char *lr_str(const struct lr_ent *e, const char *key, size_t *len);
char *lr_tokstr(const struct lr_ent *e, int tok, size_t *len);
/* An integer member; -1 when absent, null or not an integer. */
int lr_int(const struct lr_ent *e, const char *key, int64_t *v);
/* True when member key is the literal true. */
bool lr_true(const struct lr_ent *e, const char *key);

struct lr_seal {
	uint64_t seq, segment, first_seq, epoch;
	char epoch_key[65]; /* the epoch public key as sealed (64 hex) */
	char key_id[65];    /* its key id: SHA-256 of the raw key */
	char time[TIME_LEN];
	char reason[16];
};

struct lr_problem {
	char *level, *kind, *file, *message;
	int64_t seq; /* -1 when none */
};

struct lr_verify {
	int rc; /* 0 verified, 1 problems found, 2 could not be verified */
	unsigned long errors, warnings;
	uint64_t entries, segments, seals;
	char root_key[65]; /* key id of the root.pub trusted */
	char host_id[33];
	char pub_path[PATH_MAX];
	struct lr_seal *seal; /* every verified seal, in log order */
	size_t nseal;
	struct lr_problem *prob;
	size_t nprob;
	bool any; /* entries were delivered: first_seq..last_seq */
	uint64_t first_seq, last_seq;
};

/* The seal that covers seq (the first verified seal at or after it), or NULL: not sealed. */
const struct lr_seal *lr_seal_for(const struct lr_verify *v, uint64_t seq);

/* Decides whether an entry is kept; the entry is the reader's (copy what outlives it). */
typedef bool (*lr_keep_fn)(void *ctx, const struct lr_ent *e);

struct lr_opts {
	const char *path;    /* log directory or evidence bundle (.tar.gz) */
	const char *pub;     /* root.pub to trust; default KEYDIR/root.pub */
	const char *key_dir; /* default KEYS_DIR_DEFAULT, or the bundle's keys */
	lr_keep_fn keep;     /* NULL: keep every entry */
	void *ctx;
};

struct logread;

/* Verifies and reads. Returns 0 with *out set (look at lr_result() for the verification:
 * a log with problems still gives the entries before the first one), or -1 with a message
 * in err when nothing could be verified (no such directory, unreadable keys). */
int lr_open(struct logread **out, const struct lr_opts *o, char *err, size_t errlen);
const struct lr_verify *lr_result(const struct logread *r);
/* The next kept entry in log order, or NULL at the end. */
const struct lr_ent *lr_next(struct logread *r);
/* Positions the iterator at the run_start of run id (or its first entry); -1 if absent. */
int lr_seek_run(struct logread *r, const char *run);
void lr_rewind(struct logread *r);
/* Whether the path is an evidence bundle rather than a log directory, and where its
 * unpacked log and keys are (valid while r is open). */
bool lr_is_bundle(const struct logread *r);
const char *lr_log_dir(const struct logread *r);
const char *lr_key_dir(const struct logread *r);
void lr_close(struct logread *r);

/* Keep filters: the entries of one run (and the log's recovery and run_interrupted entries,
 * which other runs write about it). */
bool lr_keep_run(void *run_id, const struct lr_ent *e);

#endif
