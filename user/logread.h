/* logread: the one reader of a sealed log, for reports, replay, diff, evidence and export.
 *
 * It reads only what verified. lr_open() verifies the log (a directory, or an evidence
 * bundle) once, with verify_log(): every rule, every seal's signature. The entries verify
 * delivers then stream through the caller's keep filter (runs, show and export look at
 * each and keep none), and the reader notes, per segment, the chain link before its first
 * verified entry and the hash of its last one: the trusted links.
 *
 * lr_stream() is the same verification pulled one segment at a time, for readers that
 * write as they read (show, export).
 *
 * lr_select() then makes the reader a pull iterator over only the segments that hold the
 * seqs asked for (the records of one run, or a few): lr_next() reads them one at a time,
 * from the trusted link before each, and checks that every line chains to the next and that
 * the last one hashes to what verify accepted, so no byte that changed after verification
 * is given out (a segment compressed in between is read from its .z). Memory grows with the
 * entries kept, not with the log. Each entry is parsed once, by the one JSON scanner, into
 * a typed view. The result of the verification (problems, key ids, seals and seq range)
 * travels with the entries, so that every output can state it. */
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
	unsigned char prev[32]; /* its prev field: verified to be the hash before it */
	enum rec_kind kind;	/* REC_OTHER for a kind this version does not know */
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

/* Verifies, and streams the verified entries through o->keep. Returns 0 with *out set
 * (look at lr_result() for the verification: a log with problems still gives the entries
 * before the first one), or -1 with a message in err when nothing could be verified (no
 * such directory, unreadable keys). The entries o->keep kept are what lr_next() gives until
 * lr_select() is called. */
int lr_open(struct logread **out, const struct lr_opts *o, char *err, size_t errlen);
/* The same, pulled: nothing is verified yet; each lr_next() gives the next verified entry
 * that o->keep keeps, the verification walking one segment further when the ones before
 * are used up (memory: one segment's lines and one parsed entry). The entry stays valid
 * until the next lr_next(). lr_result() is final once lr_next() gave NULL (lr_error():
 * the log could not be verified after all); lr_select() works after that. */
int lr_stream(struct logread **out, const struct lr_opts *o, char *err, size_t errlen);
const struct lr_verify *lr_result(const struct logread *r);

/* A seq range, both ends included. */
struct lr_range {
	uint64_t first, last;
};

/* Drops the entries kept so far and makes lr_next() read again the segments holding seqs
 * of the ranges (n of them), from their trusted links, keeping what keep selects (NULL:
 * every entry in the ranges). Nothing is read before lr_next() asks. */
void lr_select(struct logread *r, const struct lr_range *rg, size_t n, lr_keep_fn keep, void *ctx);
/* The next kept entry in log order, reading the next selected segment when the kept ones
 * are used up; NULL at the end, or on an error (lr_error()). An entry stays valid until
 * lr_select() or lr_close(). */
const struct lr_ent *lr_next(struct logread *r);
/* Why the last lr_next() gave NULL before the end (a segment that changed or went after it
 * was verified), or NULL. */
const char *lr_error(const struct logread *r);
/* Positions the iterator at the run_start of run id (or its first entry), reading on as
 * far as needed; -1 if it is not among the entries selected. */
int lr_seek_run(struct logread *r, const char *run);
/* Back to the first entry kept (segments already read are not read again). */
void lr_rewind(struct logread *r);
/* The log's recovery, run_interrupted and genesis entries, in log order, kept from the
 * verification whatever was selected: few (one per crash or killed run), and they concern
 * runs they are far from in the log. Valid until lr_close(). */
const struct lr_ent *const *lr_notes(const struct logread *r, size_t *n);
/* The number of the segment that holds verified entry seq, or 0. */
uint64_t lr_segment_of(const struct logread *r, uint64_t seq);
/* Whether the path is an evidence bundle rather than a log directory, and where its
 * unpacked log and keys are (valid while r is open). */
bool lr_is_bundle(const struct logread *r);
const char *lr_log_dir(const struct logread *r);
const char *lr_key_dir(const struct logread *r);
void lr_close(struct logread *r);

#endif
