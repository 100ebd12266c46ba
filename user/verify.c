#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>

#include "json.h"
#include "keys.h"
#include "logfmt.h"
#include "schema.h"
#include "util.h"
#include "verify.h"

/*
 * The verifier walks every entry once, in log order, keeping O(1) state per entry: the
 * running chain, a small ring of recent entries (to tell a swap from a deletion or an
 * insertion), and per-segment counters that the seal is checked against. Ordinary records
 * are only parsed up to their time stamp; log entries (genesis, segment, seal, recovery)
 * and loss records are parsed in full.
 *
 * Classification heuristics (one edit should give one problem):
 * - E.prev != hash(P), P the entry of seq-1: P's bytes changed ("modified" at P). When the
 *   entry after E does not link to E either, E itself changed (its prev field): reported
 *   at E instead.
 * - seq jumps forward from the expected S to T: if the entry links to the entry of S-1 its
 *   seq field was edited ("modified"); if one of S..T-1 appears within the next 16 lines
 *   the entries were swapped ("reordered"); else S..T-1 are "deleted".
 * - seq below the expected one: a seq already seen is "inserted" (reported at whichever of
 *   the two copies the following entry does not link to); one reported missing before
 *   (or skipped by a swap) is "reordered".
 * - a problem already explained in a segment (deleted, inserted...) silences the seal's
 *   count and first_seq checks of that segment, which must then disagree.
 */

#define RING	  64
#define LOOKAHEAD 16
#define GAPS_MAX  256
#define NOSEQ	  VERIFY_NONE
#define NOOFF	  ((size_t)-1)

enum kind { K_RECORD, K_GENESIS, K_SEGMENT, K_SEAL, K_RECOVERY, K_LOSS, K_BAD };

struct seg {
	uint64_t n;
	bool z;
	char name[32];
};

/* A recent entry: where it is and what it hashes to. */
struct recent {
	uint64_t seq;
	unsigned char hash[32];
	size_t seg, off;
};

/* seqs reported missing (or skipped by a swap) that may still turn up. */
struct gap {
	uint64_t lo, hi;
	bool swap;
};

/* An unsealed segment that a following recovery entry must name. */
struct crash {
	size_t seg;
	uint64_t valid, torn, last_seq;
	bool named;
	uint64_t max_time, max_seq; /* its newest entry, for the seal that covers it */
	size_t max_off;
};

/* An entry waiting for its segment's seal before it is handed to the caller. */
struct pend {
	size_t off, len;
	uint64_t seq;
	unsigned char hash[32];
};

struct ver {
	const struct verify_opts *o;
	unsigned char host[16], root[32];
	char host_hex[33], root_id[65];
	struct epoch_schedule s;
	bool have_sched;
	char sched_err[KEYS_ERRLEN];
	unsigned char *cert; /* per epoch: 0 unchecked, 1 good, 2 bad */
	bool keys_bad;	     /* wrong key or host: signatures mean nothing */
	unsigned long errors, warnings;
	verify_entry_fn fn;
	void *ctx;
	struct verify_summary *sum;
	bool deliver; /* false after the first error: fn gets a verified prefix */
};

/* A run_start, and whether its run_end (or a later run's run_interrupted) was seen. */
struct run_seen {
	char id[64], by[64];
	size_t seg, off;
	uint64_t seq;
	bool ended;
};

struct walk {
	struct ver *v;
	const char *dir, *label; /* label: "" for the log, "DIR/" for a replica */
	bool primary;
	struct seg *segs;
	size_t nsegs, cur;
	char *buf;
	size_t len;

	/* chain */
	uint64_t expect; /* the number of the next segment */
	bool started, resync, after_malformed, after_crash;
	uint64_t gap_seg; /* replica: a missing segment a recovery entry may explain, or 0 */
	size_t gap_at;
	bool missing_before; /* a missing segment was reported just before this one */
	uint64_t max_seq;
	struct recent ring[RING];
	size_t ring_n, ring_pos;
	struct gap gaps[GAPS_MAX];
	size_t ngaps;
	struct {
		bool on;
		struct recent from; /* whose hash broke */
		struct recent to;   /* the entry whose prev did not match */
	} brk;
	size_t last_loc_seg[4], last_loc_off[4];
	const char *prob_run; /* the run the next problem is about, or NULL */
	unsigned last_loc_i;

	/* current segment */
	size_t seg_entries, seg_valid;
	uint64_t seg_first_seq, seg_last_seq;
	bool seg_sealed, seg_error, seg_after_seal, seg_worm_unavail;
	uint64_t seg_min_time, seg_min_seq;
	size_t seg_min_off;
	uint64_t seg_max_time, seg_max_seq; /* the newest entry of the segment */
	size_t seg_max_off;
	/* The seal cadence: the first entry more than max_interval + late_slack after the
	 * last seal before the segment (or the genesis), which only a seal in time excuses. */
	uint64_t cad_base;
	bool cad_on, cad_hit;
	uint64_t cad_time, cad_seq;
	size_t cad_off;
	struct pend *pend;
	size_t npend, cappend;

	/* log */
	bool have_genesis, have_seal, have_prev_seal, truncated;
	uint64_t entries, seals, segments, last_epoch;
	uint64_t last_seal_seq, last_seal_ns, genesis_ns;
	char last_seal_time[TIME_LEN];
	char *seal_line; /* the last seal line, with its '\n' */
	size_t seal_len, seal_cap;
	unsigned char prev_seal_hash[32]; /* hash of the seal line before it */
	struct crash *crash;
	size_t ncrash;
	size_t torn_tail;

	/* inode flags, reported once per directory */
	unsigned long worm_unavail, not_immutable, not_append;
	size_t first_unavail, first_noimm, first_noapp;
	bool flags_unsupported;

	/* runs, for the ones that never ended (issue 8) */
	struct run_seen *runs;
	size_t nruns, capruns;

	/* HEAD */
	char *head;
	size_t head_len;
	bool have_head;
	uint64_t head_seq;
	bool head_parsed;
};

/* ---- problems ------------------------------------------------------------------------ */

static bool same_loc_recent(struct walk *w, size_t seg, size_t off)
{
	for (unsigned i = 0; i < 4; i++)
		if (w->last_loc_off[i] == off && w->last_loc_seg[i] == seg && off != NOOFF)
			return true;
	return false;
}

/* One problem. seg indexes w->segs (or SIZE_MAX with name as the file), off is NOOFF and
 * seq NOSEQ when they do not apply. */
static void __attribute__((format(printf, 8, 9)))
problem(struct walk *w, bool error, const char *kind, size_t seg, const char *name, size_t off,
	uint64_t seq, const char *fmt, ...)
{
	struct ver *v = w->v;
	const struct verify_opts *o = v->o;
	char msg[1024], file[PATH_MAX + 64];
	va_list ap;

	/* One location, one chain problem: a broken link at an entry already reported (a bad
	 * signature, an insertion) is a later symptom of the same edit. */
	if (seg != SIZE_MAX && off != NOOFF) {
		if ((!strcmp(kind, "modified") || !strcmp(kind, "inserted") ||
		     !strcmp(kind, "deleted") || !strcmp(kind, "reordered")) &&
		    same_loc_recent(w, seg, off))
			return;
		w->last_loc_seg[w->last_loc_i] = seg;
		w->last_loc_off[w->last_loc_i] = off;
		w->last_loc_i = (w->last_loc_i + 1) % 4;
	}
	if (!error && o->strict)
		error = true;
	if (error) {
		v->errors++;
		v->deliver = false;
		if (seg != SIZE_MAX && seg == w->cur)
			w->seg_error = true;
	} else {
		v->warnings++;
	}
	if (!strcmp(kind, "truncated"))
		w->truncated = true;
	if (!o->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (seg != SIZE_MAX)
		name = w->segs[seg].name;
	snprintf(file, sizeof(file), "%s%s", name && *name ? w->label : "", name ? name : "");
	o->problem(o->ctx, &(struct verify_problem){.level = error ? VERIFY_ERROR : VERIFY_WARNING,
						    .kind = kind,
						    .file = file,
						    .offset = off == NOOFF ? VERIFY_NONE : off,
						    .seq = seq,
						    .run = w->prob_run,
						    .message = msg});
}

/* ---- chain helpers ------------------------------------------------------------------------ */

static const struct recent *ring_find(const struct walk *w, uint64_t seq)
{
	/* Newest first: in a healthy log the entry of seq-1 is the last one pushed. */
	for (size_t k = 0; k < w->ring_n; k++) {
		const struct recent *r = &w->ring[(w->ring_pos + RING - 1 - k) % RING];

		if (r->seq == seq)
			return r;
	}
	return NULL;
}

static void ring_push(struct walk *w, const struct recent *r)
{
	w->ring[w->ring_pos] = *r;
	w->ring_pos = (w->ring_pos + 1) % RING;
	if (w->ring_n < RING)
		w->ring_n++;
}

static void gap_add(struct walk *w, uint64_t lo, uint64_t hi, bool swap)
{
	if (w->ngaps == GAPS_MAX) {
		memmove(w->gaps, w->gaps + 1, (GAPS_MAX - 1) * sizeof(w->gaps[0]));
		w->ngaps--;
	}
	w->gaps[w->ngaps++] = (struct gap){lo, hi, swap};
}

/* Takes seq out of the gaps; returns the gap kind (1 swap, 2 deleted) or 0. */
static int gap_take(struct walk *w, uint64_t seq)
{
	for (size_t i = 0; i < w->ngaps; i++) {
		struct gap *g = &w->gaps[i];
		int kind;

		if (seq < g->lo || seq > g->hi)
			continue;
		kind = g->swap ? 1 : 2;
		if (g->lo == g->hi) {
			memmove(g, g + 1, (w->ngaps - i - 1) * sizeof(*g));
			w->ngaps--;
		} else if (seq == g->lo) {
			g->lo++;
		} else if (seq == g->hi) {
			g->hi--;
		} else {
			uint64_t hi = g->hi;

			g->hi = seq - 1;
			gap_add(w, seq + 1, hi, kind == 1);
		}
		return kind;
	}
	return 0;
}

/* The seq and prev of the line after the one at [off, off+len), if it is in this buffer. */
static bool next_prefix(const struct walk *w, size_t off, size_t len, uint64_t *seq,
			unsigned char prev[32])
{
	size_t start = off + len + 1;
	const char *nl;

	if (start >= w->len)
		return false;
	nl = memchr(w->buf + start, '\n', w->len - start);
	if (!nl)
		return false;
	return entry_prefix(w->buf + start, (size_t)(nl - (w->buf + start)), seq, prev) >= 0;
}

/* Whether a seq in [lo, hi) appears within the next LOOKAHEAD lines. */
static bool seq_ahead(const struct walk *w, size_t off, size_t len, uint64_t lo, uint64_t hi)
{
	size_t start = off + len + 1;

	for (int k = 0; k < LOOKAHEAD && start < w->len; k++) {
		const char *nl = memchr(w->buf + start, '\n', w->len - start);
		size_t l = nl ? (size_t)(nl - (w->buf + start)) : w->len - start;
		unsigned char prev[32];
		uint64_t s;

		if (entry_prefix(w->buf + start, l, &s, prev) >= 0 && s >= lo && s < hi)
			return true;
		start += l + 1;
	}
	return false;
}

static void flush_break(struct walk *w)
{
	if (!w->brk.on)
		return;
	w->brk.on = false;
	problem(w, true, "modified", w->brk.from.seg, NULL, w->brk.from.off, w->brk.from.seq,
		"the entry's hash does not match the prev of the entry after it (seq %" PRIu64
		"): its content was changed",
		w->brk.to.seq);
}

/* E's prev is not the hash of P (the entry of seq-1). Which one changed is known one entry
 * later: see the heuristics at the top. */
static void link_break(struct walk *w, const struct recent *p, const struct recent *e)
{
	if (w->brk.on && w->brk.to.seq == p->seq && w->brk.to.off == p->off &&
	    w->brk.to.seg == p->seg) {
		/* P's prev broke and now P's hash too: P's own prev field was rewritten. */
		w->brk.on = false;
		problem(
		    w, true, "modified", p->seg, NULL, p->off, p->seq,
		    "neither this entry's prev nor its hash links to its neighbours: its content "
		    "was changed");
		return;
	}
	flush_break(w);
	w->brk.on = true;
	w->brk.from = *p;
	w->brk.to = *e;
}

/* ---- keys --------------------------------------------------------------------------------- */

static bool cert_ok(struct ver *v, uint64_t e)
{
	if (!v->cert)
		v->cert = xcalloc(v->s.n, 1);
	if (!v->cert[e])
		v->cert[e] = epoch_cert_ok(&v->s, e) ? 1 : 2;
	return v->cert[e] == 1;
}

/* ---- entries ------------------------------------------------------------------------------- */

/* The kinds with rules of their own; every other kind is a record. */
static enum kind rule_of(enum rec_kind k)
{
	switch (k) {
	case REC_GENESIS:
		return K_GENESIS;
	case REC_SEGMENT:
		return K_SEGMENT;
	case REC_SEAL:
		return K_SEAL;
	case REC_RECOVERY:
		return K_RECOVERY;
	case REC_LOSS:
		return K_LOSS;
	default:
		return K_RECORD;
	}
}

/* The kind and time of an entry. Records written by runseal start with "kind" and "time"
 * right after the prefix; that fast path avoids a full parse per record. Anything else (an
 * escaped kind, another order) goes through the full, strict parser. */
static enum kind classify(const char *l, size_t len, size_t p, char time[TIME_LEN])
{
	static const char k[] = "\"kind\":\"", t[] = "\",\"time\":\"";
	char kind[32];

	if (len - p > sizeof(k) - 1 && !memcmp(l + p, k, sizeof(k) - 1)) {
		const char *name = l + p + sizeof(k) - 1, *q = name;
		size_t n = 0;

		while (q < l + len && *q != '"' && *q != '\\' && n < sizeof(kind) - 1)
			q++, n++;
		if (q < l + len && *q == '"' && (size_t)(l + len - q) > sizeof(t) - 2 + 31 &&
		    !memcmp(q, t, sizeof(t) - 1) && q[sizeof(t) - 1 + 30] == '"') {
			memcpy(kind, name, n);
			kind[n] = '\0';
			memcpy(time, q + sizeof(t) - 1, 30);
			time[30] = '\0';
			if (rule_of(rec_kind_of(kind, n)) == K_RECORD)
				return K_RECORD;
		}
	}
	if (entry_get_str(l, len, RF_KIND, kind, sizeof(kind)) ||
	    entry_get_str(l, len, RF_TIME, time, TIME_LEN))
		return K_BAD;
	return rule_of(rec_kind_of(kind, strlen(kind)));
}

static void check_genesis(struct walk *w, const char *l, size_t len, size_t off, uint64_t seq)
{
	struct ver *v = w->v;
	char format[32], host[64], root[80];
	uint64_t t0, el, n, mi, ls;

	if (seq != 0 || w->cur != 0 || w->seg_entries != 0) {
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"a genesis entry is only the first entry of segment 1");
		return;
	}
	w->have_genesis = true;
	if (entry_get_str(l, len, "format", format, sizeof(format)) ||
	    entry_get_str(l, len, "host_id", host, sizeof(host)) ||
	    entry_get_str(l, len, "root_key", root, sizeof(root)) ||
	    entry_get_u64(l, len, "t0", &t0) || entry_get_u64(l, len, "epoch_seconds", &el) ||
	    entry_get_u64(l, len, "epochs", &n) || entry_get_u64(l, len, "max_interval", &mi) ||
	    entry_get_u64(l, len, "late_slack", &ls)) {
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"genesis entry without its fields");
		return;
	}
	if (strcmp(format, LOG_FORMAT))
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"log format \"%s\", this verifier reads \"%s\"", format, LOG_FORMAT);
	if (strcmp(root, v->root_id)) {
		problem(w, true, "wrong_key", w->cur, NULL, off, seq,
			"the log was made for root key %s; the given root.pub is key %s", root,
			v->root_id);
		v->keys_bad = true;
	}
	if (strcmp(host, v->host_hex)) {
		problem(w, true, "wrong_host", w->cur, NULL, off, seq,
			"the log was made by host %s; the given root.pub is host %s", host,
			v->host_hex);
		v->keys_bad = true;
	}
	if (!v->keys_bad && v->have_sched &&
	    (t0 != v->s.t0 || el != v->s.len || n != v->s.n || mi != v->s.max_interval ||
	     ls != v->s.late_slack)) {
		problem(w, true, "wrong_key", w->cur, NULL, off, seq,
			"epochs.pub (t0 %" PRIu64 ", %" PRIu64 " x %" PRIu64
			" s) is not the schedule "
			"of this log (t0 %" PRIu64 ", %" PRIu64 " x %" PRIu64 " s)",
			v->s.t0, v->s.n, v->s.len, t0, n, el);
		v->keys_bad = true;
	}
}

static void check_segment(struct walk *w, const char *l, size_t len, size_t off, uint64_t seq)
{
	const struct seg *sg = &w->segs[w->cur];
	char host[64], worm[32], fs[32];
	uint64_t n;

	if (w->seg_entries != (sg->n == 1 ? 1u : 0u)) {
		if (!w->seg_error)
			problem(w, true, "malformed", w->cur, NULL, off, seq,
				"a segment entry in the middle of a segment");
		return;
	}
	if (entry_get_u64(l, len, "segment", &n) ||
	    entry_get_str(l, len, "host_id", host, sizeof(host)) ||
	    entry_get_str(l, len, "worm", worm, sizeof(worm)) ||
	    entry_get_str(l, len, "fsync", fs, sizeof(fs))) {
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"segment entry without its fields");
		return;
	}
	if (n != sg->n)
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"the file holds segment %" PRIu64 " (renamed?)", n);
	if (strcmp(host, w->v->host_hex) && !w->v->keys_bad)
		problem(w, true, "wrong_host", w->cur, NULL, off, seq,
			"segment written by host %s, the log is host %s", host, w->v->host_hex);
	if (!strcmp(worm, "unavailable")) {
		w->seg_worm_unavail = true;
		if (!w->worm_unavail++)
			w->first_unavail = w->cur;
	}
}

static void check_recovery(struct walk *w, const char *l, size_t len, size_t off, uint64_t seq)
{
	char file[64];
	uint64_t n, valid, torn, last;
	bool sealed;
	size_t i;

	if (entry_get_str(l, len, "file", file, sizeof(file)) ||
	    entry_get_u64(l, len, "segment", &n) || entry_get_u64(l, len, "valid_bytes", &valid) ||
	    entry_get_u64(l, len, "torn_bytes", &torn) ||
	    entry_get_u64(l, len, "last_seq", &last) || entry_get_bool(l, len, "sealed", &sealed)) {
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"recovery entry without its fields");
		return;
	}
	/* Its one place: right after the segment entry of the segment after the crash. */
	if (w->seg_entries != 1) {
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"a recovery entry is only the second entry of a segment, after its "
			"segment entry");
		return;
	}
	{
		char want[32];

		snprintf(want, sizeof(want), "seg-%016" PRIu64 ".log", n);
		if (strcmp(want, file)) {
			problem(w, true, "malformed", w->cur, NULL, off, seq,
				"recovery of %s says segment %" PRIu64 ", not that file's number",
				file, n);
			return;
		}
	}
	for (i = 0; i < w->ncrash; i++)
		if (!strcmp(w->segs[w->crash[i].seg].name, file))
			break;
	if (i == w->ncrash && w->gap_seg) {
		char name[32];

		snprintf(name, sizeof(name), "seg-%016" PRIu64 ".log", w->gap_seg);
		if (!strcmp(name, file)) {
			/* Only sealed segments are copied to replicas: a crashed one is on the
			 * log alone, and verified there. */
			w->gap_seg = 0;
			problem(w, false, "missing_segment", w->gap_at, NULL, NOOFF, NOSEQ,
				"%s (crashed, recovered in this segment) is not in the replica: "
				"only sealed segments are copied",
				name);
			return;
		}
	}
	if (i == w->ncrash && w->missing_before)
		return; /* it names a missing segment: reported already */
	if (i == w->ncrash) {
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"recovery names %s, which is not an unsealed segment just before", file);
		return;
	}
	struct crash *c = &w->crash[i];

	c->named = true;
	problem(w, false, "recovery", w->cur, NULL, off, seq,
		"%s was recovered after a crash: %" PRIu64 " valid bytes, %" PRIu64
		" torn bytes (entries after seq %" PRIu64 " lost)",
		file, valid, torn, last);
	if (c->valid < valid || c->last_seq != last)
		problem(w, true, "truncated", c->seg, NULL, c->valid, c->last_seq,
			"the recovery entry says %" PRIu64 " valid bytes up to seq %" PRIu64
			", the file has %" PRIu64 " up to seq %" PRIu64,
			valid, last, c->valid, c->last_seq);
	else if (c->valid > valid || c->torn != torn)
		problem(w, true, "modified", c->seg, NULL, valid, last,
			"the recovery entry says %" PRIu64 " valid and %" PRIu64
			" torn bytes, the file has %" PRIu64 " and %" PRIu64,
			valid, torn, c->valid, c->torn);
}

static void deliver(struct walk *w)
{
	struct ver *v = w->v;

	for (size_t i = 0; i < w->npend && v->deliver && v->fn; i++) {
		const struct pend *p = &w->pend[i];

		if (!v->sum->any)
			v->sum->first_seq = p->seq;
		v->sum->any = true;
		v->sum->last_seq = p->seq;
		if (v->fn(v->ctx, w->buf + p->off, p->len, p->seq, p->hash))
			v->fn = NULL; /* the reader is done (a closed pipe) */
	}
	w->npend = 0;
}

/* An epoch key whose seal verified, once, for the summary. */
static void note_key(struct verify_summary *sum, const unsigned char key[32])
{
	char id[65];

	key_id(key, id);
	for (size_t i = 0; i < sum->nepoch_keys; i++)
		if (!strcmp(sum->epoch_keys[i], id))
			return;
	if (sum->nepoch_keys < VERIFY_KEYS_MAX)
		memcpy(sum->epoch_keys[sum->nepoch_keys++], id, sizeof(id));
}

/* The seal's signature over everything in the line but the signature itself. */
static bool seal_sig_ok(const struct ver *v, const char *l, size_t len, const unsigned char key[32])
{
	unsigned char msg[SEAL_MSG_MAX], sig[64];
	size_t signed_len, ml;

	if (seal_split(l, len, &signed_len, sig) < 0)
		return false;
	ml = seal_message(msg, v->s.host_id, l, signed_len);
	return ml && ed25519_verify(key, msg, ml, sig);
}

static uint64_t late_limit_ns(const struct ver *v)
{
	return (v->s.max_interval + v->s.late_slack) * 1000000000ull;
}

/* Forward security: a record may wait max_interval (+ late_slack) for its seal, no more,
 * and is not dated after it. A forger holding only a later epoch's key must seal old
 * records late. Covers the segment's own entries and those of crashed segments just
 * before it, which this seal covers through the recovery entry. (An entry found inserted
 * or changed here is already reported.) */
static void check_lateness(struct walk *w, const char *time, uint64_t tns)
{
	const struct ver *v = w->v;
	uint64_t limit = late_limit_ns(v), slack = v->s.late_slack * 1000000000ull;
	char t[TIME_LEN];

	if (w->seg_entries && !w->seg_error && tns > w->seg_min_time &&
	    tns - w->seg_min_time > limit) {
		fmt_time(w->seg_min_time, t);
		problem(w, true, "late_record", w->cur, NULL, w->seg_min_off, w->seg_min_seq,
			"entry of %s sealed at %s, %" PRIu64 " s later (at most %" PRIu64
			" s): re-sealed after the fact, as a forger with a later key must",
			t, time, (uint64_t)((tns - w->seg_min_time) / 1000000000ull),
			v->s.max_interval + v->s.late_slack);
	}
	if (w->seg_entries && !w->seg_error && w->seg_max_time > tns + slack) {
		fmt_time(w->seg_max_time, t);
		problem(w, true, "future_record", w->cur, NULL, w->seg_max_off, w->seg_max_seq,
			"entry dated %s, after the seal that covers it (%s, late_slack %" PRIu64
			" s): written after the fact",
			t, time, v->s.late_slack);
	}
	for (size_t i = 0; i < w->ncrash; i++) {
		const struct crash *c = &w->crash[i];

		if (c->max_time <= tns + slack)
			continue;
		fmt_time(c->max_time, t);
		problem(w, true, "future_record", c->seg, NULL, c->max_off, c->max_seq,
			"entry dated %s, after the seal that covers it (%s, in %s)", t, time,
			w->segs[w->cur].name);
	}
}

static void check_seal(struct walk *w, const char *l, size_t len, size_t off, uint64_t seq,
		       const unsigned char prev[32], const char *time, uint64_t tns)
{
	struct ver *v = w->v;
	const struct seg *sg = &w->segs[w->cur];
	uint64_t n, first, count, e;
	unsigned char last[32], key[32], sig[64];
	char lh[80], kh[80], sh[160], reason[32];

	w->seg_sealed = true;
	if (entry_get_u64(l, len, "segment", &n) || entry_get_u64(l, len, "first_seq", &first) ||
	    entry_get_u64(l, len, "count", &count) ||
	    entry_get_str(l, len, "last_hash", lh, sizeof(lh)) ||
	    entry_get_str(l, len, "reason", reason, sizeof(reason)) ||
	    entry_get_u64(l, len, "epoch", &e) ||
	    entry_get_str(l, len, "epoch_key", kh, sizeof(kh)) ||
	    entry_get_str(l, len, "sig", sh, sizeof(sh)) || unhex(lh, strlen(lh), last, 32) ||
	    unhex(kh, strlen(kh), key, 32) || unhex(sh, strlen(sh), sig, 64)) {
		problem(w, true, "malformed", w->cur, NULL, off, seq, "seal without its fields");
		return;
	}
	if (seal_split(l, len, &(size_t){0}, sig) < 0) {
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"the seal does not end in its \"sig\" field, or is longer than %d bytes",
			SEAL_LINE_MAX);
		return;
	}
	/* The sealed fields against the entries; a problem already found in this segment
	 * explains a disagreement here. */
	if (!w->seg_error) {
		if (memcmp(last, prev, 32))
			problem(w, true, "modified", w->cur, NULL, off, seq,
				"the seal's last_hash is not its prev");
		else if (n != sg->n)
			problem(w, true, "modified", w->cur, NULL, off, seq,
				"the seal is for segment %" PRIu64 ", found in %s", n, sg->name);
		else if (first != w->seg_first_seq || count != w->seg_entries ||
			 seq != first + count)
			problem(w, true, "modified", w->cur, NULL, off, seq,
				"the seal covers seq %" PRIu64 " and %" PRIu64
				" entries; the segment has seq %" PRIu64 " and %zu entries",
				first, count, w->seg_first_seq, w->seg_entries);
	}
	if (v->have_sched && !v->keys_bad) {
		uint64_t sec = tns / 1000000000ull, te;

		if (e >= v->s.n) {
			problem(w, true, "epoch", w->cur, NULL, off, seq,
				"epoch %" PRIu64 " is not in the schedule (%" PRIu64 " epochs)", e,
				v->s.n);
		} else if (memcmp(key, v->s.pub[e], 32)) {
			problem(w, true, "epoch", w->cur, NULL, off, seq,
				"the seal's key is not the certified key of epoch %" PRIu64, e);
		} else if (!cert_ok(v, e)) {
			problem(w, true, "epoch", w->cur, NULL, off, seq,
				"the root certificate of epoch %" PRIu64 " does not verify", e);
		} else {
			bool sig_ok = seal_sig_ok(v, l, len, key);

			te = epoch_of(&v->s, sec);
			if (!sig_ok)
				problem(w, true, "bad_signature", w->cur, NULL, off, seq,
					"the seal's signature does not verify");
			else if (te != e)
				problem(w, true, "epoch", w->cur, NULL, off, seq,
					"sealed at %s, outside epoch %" PRIu64 " [%" PRIu64
					", %" PRIu64 ")",
					time, e, v->s.t0 + e * v->s.len,
					v->s.t0 + (e + 1) * v->s.len);
			else if (w->have_seal && e < w->last_epoch)
				problem(w, true, "epoch", w->cur, NULL, off, seq,
					"epoch %" PRIu64 " after epoch %" PRIu64
					": an expired (erased) epoch key used later",
					e, w->last_epoch);
			if (sig_ok)
				note_key(v->sum, key); /* a key the log was checked with */
		}
		check_lateness(w, time, tns);
	}
	if (!w->have_seal || e > w->last_epoch)
		w->last_epoch = e;
	if (w->have_seal) {
		entry_hash(w->seal_line, w->seal_len - 1, w->prev_seal_hash);
		w->have_prev_seal = true;
	}
	w->have_seal = true;
	w->seals++;
	w->last_seal_seq = seq;
	w->last_seal_ns = tns;
	snprintf(w->last_seal_time, sizeof(w->last_seal_time), "%s", time);
	if (len + 1 > w->seal_cap) {
		w->seal_cap = len + 1;
		w->seal_line = xrealloc(w->seal_line, w->seal_cap);
	}
	memcpy(w->seal_line, l, len);
	w->seal_line[len] = '\n';
	w->seal_len = len + 1;
}

/* The seq/prev rules for one entry; sets *eff to the seq the entry takes in the chain and
 * returns false when the entry is an extra copy to be left out of it. */
static bool check_chain(struct walk *w, size_t off, size_t len, uint64_t seq,
			const unsigned char prev[32], const struct recent *me, uint64_t *eff)
{
	static const unsigned char zero[32];
	uint64_t expect = w->started ? w->max_seq + 1 : 0;
	const struct recent *p = seq ? ring_find(w, seq - 1) : NULL;
	const struct recent *e1 = expect ? ring_find(w, expect - 1) : NULL;
	bool link_bad = seq ? (p && memcmp(prev, p->hash, 32)) : memcmp(prev, zero, 32) != 0;
	/* It links to the entry before the expected one: only its seq field is off. */
	bool links_expected =
	    expect ? (e1 && !memcmp(prev, e1->hash, 32)) : !memcmp(prev, zero, 32);

	*eff = seq;
	if (w->after_malformed) {
		/* The malformed line took a seq: the one after it is not a deletion. */
		w->after_malformed = false;
		if (seq == expect + 1) {
			flush_break(w);
			return true;
		}
	}
	if (w->after_crash) {
		/* The first entry after a crashed segment: entries lost at its end are the
		 * recovery entry's to explain (checked there), not a deletion. */
		w->after_crash = false;
		if (seq > expect) {
			flush_break(w);
			return true;
		}
	}
	if (w->resync) {
		/* After a missing or unreadable segment: take the chain as it comes. */
		w->resync = false;
		w->brk.on = false;
		return true;
	}
	if (seq == expect) {
		if (link_bad && p)
			link_break(w, p, me);
		else if (link_bad)
			problem(w, true, "modified", w->cur, NULL, off, seq,
				"the first entry's prev is not zero");
		else
			flush_break(w);
		return true;
	}
	flush_break(w);
	if (seq == NOSEQ || links_expected) {
		problem(w, true, "modified", w->cur, NULL, off, seq,
			"the seq field says %" PRIu64 ", the chain says %" PRIu64, seq, expect);
		*eff = expect;
		return true;
	}
	if (seq > expect) {
		if (seq_ahead(w, off, len, expect, seq)) {
			problem(w, true, "reordered", w->cur, NULL, off, seq,
				"seq %" PRIu64 " comes before seq %" PRIu64 " (entries swapped)",
				seq, expect);
			gap_add(w, expect, seq - 1, true);
		} else {
			problem(w, true, "deleted", w->cur, NULL, off, expect,
				"entries %" PRIu64 "-%" PRIu64 " are missing before seq %" PRIu64,
				expect, seq - 1, seq);
			gap_add(w, expect, seq - 1, false);
		}
		if (link_bad && p)
			link_break(w, p, me);
		return true;
	}
	switch (gap_take(w, seq)) {
	case 1:
		/* The other half of a swap reported at its partner. */
		if (link_bad && p)
			link_break(w, p, me);
		return true;
	case 2:
		problem(w, true, "reordered", w->cur, NULL, off, seq,
			"seq %" PRIu64 ", reported missing, appears after seq %" PRIu64 " (moved)",
			seq, w->max_seq);
		return true;
	default:
		break;
	}
	/* seq seen before: one of the two copies is extra. The entry after this one tells
	 * which: if it links here, the earlier copy was the insertion. */
	const struct recent *x = ring_find(w, seq);
	unsigned char nprev[32];
	uint64_t nseq;

	if (x && next_prefix(w, off, len, &nseq, nprev) && !memcmp(nprev, me->hash, 32)) {
		if (w->brk.on && w->brk.to.seq == x->seq && w->brk.to.off == x->off)
			w->brk.on = false;
		problem(w, true, "inserted", x->seg, NULL, x->off, seq,
			"an extra entry with seq %" PRIu64 " (another follows it)", seq);
		return true;
	}
	problem(w, true, "inserted", w->cur, NULL, off, seq,
		"an extra entry: seq %" PRIu64 " was already seen (the log is at %" PRIu64 ")", seq,
		w->max_seq);
	return false;
}

/* ---- runs that never ended (issue 8) ------------------------------------------------ */

static struct run_seen *run_find(struct walk *w, const char *id)
{
	for (size_t i = w->nruns; i-- > 0;)
		if (!strcmp(w->runs[i].id, id))
			return &w->runs[i];
	return NULL;
}

/* Notes run_start, run_end and run_interrupted (only these kinds start with "run_"). */
static void runs_note(struct walk *w, const char *l, size_t len, size_t off, uint64_t seq)
{
	char kind[32], id[64], old[64];
	struct run_seen *r;
	enum rec_kind k;

	if (entry_get_str(l, len, RF_KIND, kind, sizeof(kind)) ||
	    entry_get_str(l, len, RF_RUN, id, sizeof(id)))
		return;
	k = rec_kind_of(kind, strlen(kind));
	if (k == REC_RUN_START) {
		if (w->nruns == w->capruns) {
			w->capruns = w->capruns ? w->capruns * 2 : 64;
			w->runs = xrealloc(w->runs, w->capruns * sizeof(*w->runs));
		}
		r = &w->runs[w->nruns++];
		memset(r, 0, sizeof(*r));
		snprintf(r->id, sizeof(r->id), "%s", id);
		r->seg = w->cur;
		r->off = off;
		r->seq = seq;
	} else if (k == REC_RUN_END && (r = run_find(w, id))) {
		r->ended = true;
	} else if (k == REC_RUN_INTERRUPTED &&
		   !entry_get_str(l, len, "interrupted_run", old, sizeof(old)) &&
		   (r = run_find(w, old))) {
		snprintf(r->by, sizeof(r->by), "%s", id);
	}
}

static void runs_report(struct walk *w)
{
	for (size_t i = 0; i < w->nruns; i++) {
		struct run_seen *r = &w->runs[i];

		if (r->ended)
			continue;
		w->prob_run = r->id;
		if (r->by[0])
			problem(w, false, "interrupted", r->seg, NULL, r->off, r->seq,
				"run %s interrupted: it never reached run_end (runseal was killed; "
				"run %s recorded the interruption)",
				r->id, r->by);
		else
			problem(w, false, "interrupted", r->seg, NULL, r->off, r->seq,
				"run %s interrupted: it never reached run_end (runseal was killed, "
				"or the run is still going)",
				r->id);
		w->prob_run = NULL;
	}
}

static void process_line(struct walk *w, size_t off, size_t len)
{
	struct ver *v = w->v;
	const char *l = w->buf + off;
	unsigned char prev[32];
	char time[TIME_LEN];
	struct recent me;
	uint64_t seq, eff, tns = 0;
	enum kind k;
	long p;

	if (w->seg_sealed && !w->seg_after_seal) {
		w->seg_after_seal = true;
		if (!w->seg_error)
			problem(w, true, "inserted", w->cur, NULL, off, NOSEQ,
				"entries after the segment's seal");
	}
	p = len <= LOG_LINE_MAX ? entry_prefix(l, len, &seq, prev) : -1;
	if (p < 0) {
		problem(w, true, "malformed", w->cur, NULL, off, NOSEQ,
			len > LOG_LINE_MAX ? "a line longer than 1 MiB"
					   : "not an entry: the line does not start with "
					     "{\"seq\":N,\"prev\":\"...\",");
		w->after_malformed = true;
		w->seg_entries++;
		return;
	}
	w->entries++;
	memset(&me, 0, sizeof(me));
	entry_hash(l, len, me.hash);
	me.seq = seq;
	me.seg = w->cur;
	me.off = off;
	if (!check_chain(w, off, len, seq, prev, &me, &eff)) {
		w->seg_entries++;
		return;
	}
	me.seq = eff;
	ring_push(w, &me);
	if (!w->started || eff > w->max_seq)
		w->max_seq = eff;
	w->started = true;

	k = classify(l, len, (size_t)p, time);
	if (k != K_BAD && parse_time(time, strlen(time), &tns) < 0)
		k = K_BAD;
	/* Every entry, records too: one JSON object, each top-level key once (two readers
	 * must not be able to take two different "kind"s from one line). */
	if (k != K_BAD && !entry_is_json(l, len))
		k = K_BAD;
	if (k == K_BAD)
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"not a well-formed entry (one JSON object with unique keys, a kind and a "
			"time)");
	/* Structure: genesis, then segment, first. */
	if (!w->seg_entries && !w->seg_error && k != K_BAD &&
	    k != (w->segs[w->cur].n == 1 ? K_GENESIS : K_SEGMENT))
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"the segment does not start with a %s entry",
			w->segs[w->cur].n == 1 ? "genesis" : "segment");
	if (w->segs[w->cur].n == 1 && w->seg_entries == 1 && !w->seg_error && k != K_BAD &&
	    k != K_SEGMENT)
		problem(w, true, "malformed", w->cur, NULL, off, seq,
			"segment 1 does not have a segment entry after the genesis");
	if (!w->seg_entries)
		w->seg_first_seq = eff;
	if (k != K_BAD && (tns < w->seg_min_time || !w->seg_min_time)) {
		w->seg_min_time = tns;
		w->seg_min_seq = eff;
		w->seg_min_off = off;
	}
	if (k != K_BAD && k != K_SEAL && tns > w->seg_max_time) {
		w->seg_max_time = tns;
		w->seg_max_seq = eff;
		w->seg_max_off = off;
	}
	if (k == K_GENESIS && !w->cad_on) {
		w->genesis_ns = w->cad_base = tns;
		w->cad_on = true;
	}
	if (k != K_BAD && k != K_SEAL && !w->cad_hit && w->cad_on && v->have_sched &&
	    tns > w->cad_base + late_limit_ns(v)) {
		w->cad_hit = true;
		w->cad_time = tns;
		w->cad_seq = eff;
		w->cad_off = off;
	}
	switch (k) {
	case K_GENESIS:
		check_genesis(w, l, len, off, seq);
		break;
	case K_SEGMENT:
		check_segment(w, l, len, off, seq);
		break;
	case K_RECOVERY:
		check_recovery(w, l, len, off, seq);
		break;
	case K_LOSS: {
		uint64_t count = 0;

		char reason[16] = "";

		entry_get_str(l, len, "reason", reason, sizeof(reason));
		entry_get_u64(l, len, "count", &count);
		if (!strcmp(reason, "tamper"))
			problem(w, false, "loss", w->cur, NULL, off, seq,
				"a process moved the ring buffer's consumer position: records were "
				"skipped unread and the record of this run is incomplete");
		else
			problem(w, false, "loss", w->cur, NULL, off, seq,
				"%" PRIu64
				" kernel events were lost: the record of this run is incomplete",
				count);
		break;
	}
	default:
		if (w->primary && len - (size_t)p > 12 && !memcmp(l + p, "\"kind\":\"run_", 12))
			runs_note(w, l, len, off, seq);
		break;
	}
	if (w->primary && v->fn && v->deliver) {
		if (w->npend == w->cappend) {
			w->cappend = w->cappend ? w->cappend * 2 : 1024;
			w->pend = xrealloc(w->pend, w->cappend * sizeof(*w->pend));
		}
		w->pend[w->npend++] = (struct pend){off, len, eff, {0}};
		memcpy(w->pend[w->npend - 1].hash, me.hash, 32);
	}
	if (k == K_SEAL) {
		/* A break that ends at this seal is settled now, before its segment counts
		 * as verified. */
		if (w->brk.on && w->brk.to.off == off && w->brk.to.seg == w->cur) {
			char lh[80];
			unsigned char last[32];

			/* Its last_hash still names P: the seal's prev field was edited, which
			 * check_seal reports at the seal. */
			if (!entry_get_str(l, len, "last_hash", lh, sizeof(lh)) &&
			    !unhex(lh, strlen(lh), last, 32) && !memcmp(last, w->brk.from.hash, 32))
				w->brk.on = false;
			else
				flush_break(w);
		}
		check_seal(w, l, len, off, seq, prev, time, tns);
		if (!w->seg_error && v->deliver)
			deliver(w);
		w->npend = 0;
		return;
	}
	w->seg_entries++;
	w->seg_last_seq = eff;
	w->seg_valid = off + len + 1;
}

/* ---- segments --------------------------------------------------------------------------- */

static void check_flags(struct walk *w, bool last)
{
	const struct seg *sg = &w->segs[w->cur];
	char path[PATH_MAX];
	unsigned flags = 0;
	int fd;

	if (w->flags_unsupported)
		return;
	snprintf(path, sizeof(path), "%s/%s", w->dir, sg->name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
		w->flags_unsupported = true;
		close(fd);
		return;
	}
	close(fd);
	/* The active segment is append-only; sealed and crashed ones are immutable; a
	 * sealed .log (crash before compression) has had its flag cleared. */
	if (w->seg_worm_unavail)
		return;
	if (sg->z || (!last && !w->seg_sealed)) {
		if (!(flags & FS_IMMUTABLE_FL) && !w->not_immutable++)
			w->first_noimm = w->cur;
	} else if (last && !w->seg_sealed) {
		if (!(flags & FS_APPEND_FL) && !w->not_append++)
			w->first_noapp = w->cur;
	}
}

/* An unsealed segment (crashed, or the tail) has no seal of its own to be late for: its
 * entries must lie within max_interval + late_slack of the last seal before them, as a
 * live writer's checkpoint seals guarantee (and runseal seals when it starts). A sealed
 * segment stripped of its seal to pass as crashed fails this, unless it was the newest
 * one, which only an independent copy of HEAD (a replica) tells. */
static void check_cadence(struct walk *w)
{
	char t[TIME_LEN], b[TIME_LEN];

	if (!w->cad_hit || w->seg_error || w->v->keys_bad)
		return;
	fmt_time(w->cad_time, t);
	fmt_time(w->cad_base, b);
	problem(w, true, "late_record", w->cur, NULL, w->cad_off, w->cad_seq,
		"entry of %s in an unsealed segment, %" PRIu64 " s after the last seal (or "
		"genesis) at %s (at most %" PRIu64
		" s without a seal): a sealed segment stripped of its seal, "
		"or sealed records presented as a crash",
		t, (uint64_t)((w->cad_time - w->cad_base) / 1000000000ull), b,
		w->v->s.max_interval + w->v->s.late_slack);
}

static void process_segment(struct walk *w, size_t i)
{
	const struct seg *sg = &w->segs[i];
	bool last = i + 1 == w->nsegs;
	char path[PATH_MAX], err[PATH_MAX + 128];
	size_t off = 0, ncrash_before = w->ncrash;

	w->cur = i;
	w->segments++;
	snprintf(path, sizeof(path), "%s/%s", w->dir, sg->name);
	if (segment_read(path, &w->buf, &w->len, err, sizeof(err)) < 0) {
		/* err begins with the path, which is in the problem already. */
		const char *why = strncmp(err, path, strlen(path)) ? err : err + strlen(path) + 2;

		problem(w, true, "malformed", i, NULL, NOOFF, NOSEQ, "unreadable: %s", why);
		w->resync = true;
		w->ncrash = 0;
		return;
	}
	w->seg_entries = w->seg_valid = 0;
	w->seg_sealed = w->seg_error = w->seg_after_seal = w->seg_worm_unavail = false;
	w->seg_min_time = w->seg_max_time = 0;
	w->cad_hit = false;
	/* The base of the cadence: the last seal so far, or the genesis (segment 1). */
	w->cad_on = w->have_seal || w->genesis_ns;
	w->cad_base = w->have_seal ? w->last_seal_ns : w->genesis_ns;
	w->npend = 0;
	w->after_crash = w->ncrash > 0;
	while (off < w->len) {
		const char *nl = memchr(w->buf + off, '\n', w->len - off);

		if (!nl)
			break;
		process_line(w, off, (size_t)(nl - (w->buf + off)));
		off = (size_t)(nl - w->buf) + 1;
	}
	if (off < w->len) {
		/* A line without its '\n': a torn write in an unsealed segment, a cut anywhere
		 * else. */
		if (w->seg_sealed)
			problem(w, true, "malformed", i, NULL, off, NOSEQ,
				"%zu bytes after the seal", w->len - off);
		else if (sg->z)
			problem(w, true, "truncated", i, NULL, off, NOSEQ,
				"the sealed segment ends in %zu bytes without a newline (cut)",
				w->len - off);
	}
	check_flags(w, last);
	/* Crashed segments before this one must have been named by a recovery here. */
	for (size_t c = 0; c < ncrash_before; c++)
		if (!w->crash[c].named)
			problem(w, true, "truncated", w->crash[c].seg, NULL, w->crash[c].valid,
				NOSEQ,
				"the segment ends without a seal and no recovery entry names it "
				"(entries or the seal were cut off)");
	if (w->crash)
		memmove(w->crash, w->crash + ncrash_before,
			(w->ncrash - ncrash_before) * sizeof(*w->crash));
	w->ncrash -= ncrash_before;
	if (!w->seg_sealed && !sg->z)
		check_cadence(w);
	if (!w->seg_sealed) {
		if (sg->z) {
			if (!w->seg_error)
				problem(w, true, "truncated", i, NULL, w->len, NOSEQ,
					"the sealed segment does not end with a seal");
		} else if (!last) {
			w->crash = xrealloc(w->crash, (w->ncrash + 1) * sizeof(*w->crash));
			w->crash[w->ncrash++] =
			    (struct crash){i, w->seg_valid, w->len - w->seg_valid,
					   /* torn in its first line: the chain's end before it */
					   w->seg_entries ? w->seg_last_seq : w->max_seq, false,
					   w->seg_max_time, w->seg_max_seq, w->seg_max_off};
		} else {
			w->torn_tail = w->len - off;
			/* Entries that chain, not yet sealed: a run in progress. */
			if (!w->seg_error && w->v->deliver)
				deliver(w);
		}
	}
	if (!w->seg_sealed && !sg->z && !last && !w->seg_error && w->v->deliver)
		deliver(w);
	free(w->buf);
	w->buf = NULL;
	w->len = 0;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return (int)x->z - (int)y->z;
}

/* seg-<16 digits>.log or .log.z, n from 1. */
static bool seg_name(const char *s, uint64_t *n, bool *z)
{
	uint64_t v = 0;
	size_t len = strlen(s);

	if ((len != 24 && len != 26) || strncmp(s, "seg-", 4) || strncmp(s + 20, ".log", 4))
		return false;
	if (len == 26 && strcmp(s + 24, ".z"))
		return false;
	for (int i = 4; i < 20; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*n = v;
	*z = len == 26;
	return v != 0;
}

static int list_dir(struct walk *w)
{
	DIR *d = opendir(w->dir);
	struct dirent *de;
	size_t cap = 0, k = 0;

	if (!d) {
		snprintf(w->v->sum->err, sizeof(w->v->sum->err), "%s: %s", w->dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		uint64_t n;
		bool z;

		/* LOCK: the writer's lock file (docs/FORMAT.md), no evidence. */
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "HEAD") || !strcmp(de->d_name, "LOCK") ||
		    (w->primary && w->v->o->allow_anchor && !strcmp(de->d_name, "ANCHOR")))
			continue;
		if (!seg_name(de->d_name, &n, &z)) {
			problem(w, false, "unexpected", SIZE_MAX, de->d_name, NOOFF, NOSEQ,
				"unexpected file in the log directory (ignored)");
			continue;
		}
		if (w->nsegs == cap) {
			cap = cap ? cap * 2 : 64;
			w->segs = xrealloc(w->segs, cap * sizeof(*w->segs));
		}
		w->segs[w->nsegs] = (struct seg){n, z, ""};
		snprintf(w->segs[w->nsegs].name, sizeof(w->segs[0].name), "%s", de->d_name);
		w->nsegs++;
	}
	closedir(d);
	qsort(w->segs, w->nsegs, sizeof(*w->segs), seg_cmp);
	/* Both forms of one segment: a crash between the .z's rename and the .log's removal;
	 * the .z is the complete one. */
	for (size_t i = 0; i < w->nsegs; i++) {
		if (k && w->segs[k - 1].n == w->segs[i].n) {
			problem(w, false, "unexpected", SIZE_MAX, w->segs[k - 1].name, NOOFF, NOSEQ,
				"both the .log and the .log.z of segment %" PRIu64
				" exist (a crash while sealing?): the .z is verified",
				w->segs[i].n);
			w->segs[k - 1] = w->segs[i];
			continue;
		}
		w->segs[k++] = w->segs[i];
	}
	w->nsegs = k;
	return 0;
}

static void read_head(struct walk *w)
{
	char path[PATH_MAX], err[PATH_MAX + 128];
	unsigned char prev[32];

	snprintf(path, sizeof(path), "%s/HEAD", w->dir);
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return;
	w->have_head = true;
	if (segment_read(path, &w->head, &w->head_len, err, sizeof(err)) < 0) {
		w->head = NULL;
		w->head_len = 0;
		return;
	}
	w->head_parsed = w->head_len > 1 && w->head[w->head_len - 1] == '\n' &&
			 !memchr(w->head, '\n', w->head_len - 1) &&
			 entry_prefix(w->head, w->head_len - 1, &w->head_seq, prev) >= 0;
}

/* Whether HEAD is a seal signed by the certified key of its epoch: HEAD is the one copy of
 * the newest seal that may outlive its segment, so a made-up one must not pass for it. */
static bool head_signed(const struct walk *w)
{
	struct ver *v = w->v;
	const char *l = w->head;
	size_t len = w->head_len - 1;
	char kh[80];
	unsigned char key[32];
	uint64_t e;

	if (!v->have_sched || v->keys_bad)
		return true; /* nothing to check it with; reported elsewhere */
	if (entry_get_u64(l, len, "epoch", &e) ||
	    entry_get_str(l, len, "epoch_key", kh, sizeof(kh)) || unhex(kh, strlen(kh), key, 32))
		return false;
	return e < v->s.n && !memcmp(key, v->s.pub[e], 32) && cert_ok(v, e) &&
	       seal_sig_ok(v, l, len, key);
}

/* HEAD against the log's own last seal. */
static void check_head(struct walk *w)
{
	unsigned char h[32];

	read_head(w);
	if (!w->have_head) {
		if (w->have_seal)
			problem(w, true, "head_missing", SIZE_MAX, "HEAD", NOOFF, NOSEQ,
				"HEAD is missing but the log has seals (last seq %" PRIu64
				"): deleted, maybe with the newest segments; restore it from a "
				"replica",
				w->last_seal_seq);
		return;
	}
	if (!w->head_parsed) {
		problem(w, true, "head_mismatch", SIZE_MAX, "HEAD", NOOFF, NOSEQ,
			"HEAD is not one seal line");
		return;
	}
	if ((w->head_len != w->seal_len || memcmp(w->head, w->seal_line, w->seal_len)) &&
	    !head_signed(w)) {
		problem(w, true, "bad_signature", SIZE_MAX, "HEAD", NOOFF, w->head_seq,
			"HEAD (seq %" PRIu64 ") is not a seal signed by the certified key of its "
			"epoch: it was made up or edited",
			w->head_seq);
		return;
	}
	if (!w->have_seal || w->head_seq > w->last_seal_seq) {
		if (!w->truncated)
			problem(w, true, "truncated", SIZE_MAX,
				w->nsegs ? w->segs[w->nsegs - 1].name : "HEAD", NOOFF, w->head_seq,
				"HEAD names a seal at seq %" PRIu64
				" but the log's last seal is %s",
				w->head_seq, w->have_seal ? "earlier" : "missing");
		return;
	}
	if (w->head_len == w->seal_len && !memcmp(w->head, w->seal_line, w->seal_len))
		return;
	entry_hash(w->head, w->head_len - 1, h);
	if (w->have_prev_seal && w->head_seq < w->last_seal_seq &&
	    !memcmp(h, w->prev_seal_hash, 32))
		problem(w, false, "head_stale", SIZE_MAX, "HEAD", NOOFF, w->head_seq,
			"HEAD is the previous seal; the log was sealed again at seq %" PRIu64
			" (a crash before HEAD was written)",
			w->last_seal_seq);
	else
		problem(w, true, "head_mismatch", SIZE_MAX, "HEAD", NOOFF, w->head_seq,
			"HEAD (seq %" PRIu64 ") is not the log's last seal (seq %" PRIu64 ")",
			w->head_seq, w->last_seal_seq);
}

static void walk_free(struct walk *w)
{
	free(w->runs);
	free(w->segs);
	free(w->buf);
	free(w->pend);
	free(w->seal_line);
	free(w->crash);
	free(w->head);
}

/* Verifies one directory; -1 when it cannot be read at all. */
/* The seal an anchored log starts after (docs/FORMAT.md, "Anchored logs"): checked as a
 * seal, signature and certificate, it stands for everything before it. Returns the first
 * segment number the directory must hold, or 1 when there is no ANCHOR. */
static uint64_t read_anchor(struct walk *w)
{
	struct ver *v = w->v;
	char path[PATH_MAX], err[PATH_MAX + 128], *l = NULL, time[TIME_LEN], kh[80], lh[80];
	unsigned char prev[32], key[32], last[32];
	uint64_t seq, n, first, count, e, tns;
	size_t len = 0;
	long p;
	struct recent me = {.seg = SIZE_MAX, .off = NOOFF};

	snprintf(path, sizeof(path), "%s/ANCHOR", w->dir);
	if (!w->primary || !v->o->allow_anchor || access(path, F_OK) < 0)
		return 1;
	if (segment_read(path, &l, &len, err, sizeof(err)) < 0 || !len || l[len - 1] != '\n' ||
	    memchr(l, '\n', len - 1) || (p = entry_prefix(l, len - 1, &seq, prev)) < 0 ||
	    classify(l, len - 1, (size_t)p, time) != K_SEAL ||
	    parse_time(time, strlen(time), &tns) < 0 || !entry_is_json(l, len - 1) ||
	    entry_get_u64(l, len - 1, "segment", &n) ||
	    entry_get_u64(l, len - 1, "first_seq", &first) ||
	    entry_get_u64(l, len - 1, "count", &count) || entry_get_u64(l, len - 1, "epoch", &e) ||
	    entry_get_str(l, len - 1, "last_hash", lh, sizeof(lh)) ||
	    entry_get_str(l, len - 1, "epoch_key", kh, sizeof(kh)) ||
	    unhex(lh, strlen(lh), last, 32) || unhex(kh, strlen(kh), key, 32) ||
	    seq != first + count || memcmp(last, prev, 32) || !n) {
		problem(w, true, "malformed", SIZE_MAX, "ANCHOR", NOOFF, NOSEQ,
			"ANCHOR is not one seal line");
		free(l);
		w->resync = true; /* what follows is checked as after a missing segment */
		return 1;
	}
	len--;
	if (v->have_sched && !v->keys_bad &&
	    (e >= v->s.n || memcmp(key, v->s.pub[e], 32) || !cert_ok(v, e) ||
	     !seal_sig_ok(v, l, len, key) || epoch_of(&v->s, tns / 1000000000ull) != e)) {
		problem(w, true, "bad_signature", SIZE_MAX, "ANCHOR", NOOFF, seq,
			"ANCHOR (seq %" PRIu64 ") is not a seal signed in its epoch by the "
			"certified key of that epoch: it cannot be trusted",
			seq);
		free(l);
		w->resync = true; /* what follows is checked as after a missing segment */
		return n + 1;
	}
	note_key(v->sum, key);
	/* The chain goes on from the anchor as from any seal. */
	entry_hash(l, len, me.hash);
	me.seq = seq;
	ring_push(w, &me);
	w->started = true;
	w->max_seq = seq;
	w->have_genesis = true;
	w->have_seal = true;
	w->last_epoch = e;
	w->last_seal_seq = seq;
	w->last_seal_ns = tns;
	snprintf(w->last_seal_time, sizeof(w->last_seal_time), "%s", time);
	w->seal_line = xrealloc(w->seal_line, len + 1);
	memcpy(w->seal_line, l, len + 1);
	w->seal_len = w->seal_cap = len + 1;
	v->sum->anchored = true;
	v->sum->anchor_seq = seq;
	v->sum->anchor_segment = n;
	free(l);
	return n + 1;
}

/* Lists the directory and reads its ANCHOR: the walk of its segments can begin. */
static int walk_start(struct walk *w)
{
	if (list_dir(w) < 0)
		return -1;
	w->expect = read_anchor(w);
	if (!w->nsegs)
		problem(w, true, "missing_segment", SIZE_MAX, "seg-0000000000000001.log.z", NOOFF,
			0, "the log has no segments");
	return 0;
}

/* Checks segment i (in order), after the segment numbers before it. */
static void walk_segment(struct walk *w, size_t i)
{
	uint64_t n = w->segs[i].n;

	w->missing_before = false;
	if (w->gap_seg) {
		problem(w, true, "missing_segment", w->gap_at, NULL, NOOFF, NOSEQ,
			"seg-%016" PRIu64 " (.log or .log.z) is missing before this one",
			w->gap_seg);
		w->gap_seg = 0;
	}
	if (n == w->expect + 1 && !w->primary) {
		/* Decided by the recovery entry of this segment, if it has one. */
		w->gap_seg = w->expect;
		w->gap_at = i;
		w->resync = true;
		w->ncrash = 0;
	} else if (n < w->expect) {
		problem(w, true, "malformed", i, NULL, NOOFF, NOSEQ,
			"the segment is not after the ANCHOR seal (of segment %" PRIu64 ")",
			w->expect - 1);
		w->resync = true;
	} else if (n != w->expect) {
		problem(w, true, "missing_segment", i, NULL, NOOFF, NOSEQ,
			"seg-%016" PRIu64 " to seg-%016" PRIu64
			" (.log or .log.z) are missing before this one",
			w->expect, n - 1);
		w->resync = true;
		w->ncrash = 0;
		w->missing_before = true;
	}
	process_segment(w, i);
	w->expect = n + 1;
}

/* What only the whole directory tells: missing segments at the end, crashes no recovery
 * named, the unsealed tail, inode flags, runs that never ended, HEAD. */
static void walk_finish(struct walk *w)
{
	flush_break(w);
	if (w->gap_seg)
		problem(w, true, "missing_segment", w->gap_at, NULL, NOOFF, NOSEQ,
			"seg-%016" PRIu64 " (.log or .log.z) is missing before this one",
			w->gap_seg);
	for (size_t c = 0; c < w->ncrash; c++)
		problem(w, true, "truncated", w->crash[c].seg, NULL, w->crash[c].valid, NOSEQ,
			"the segment ends without a seal and no recovery entry names it");
	if (w->nsegs && !w->segs[w->nsegs - 1].z && w->started && !w->seg_sealed) {
		size_t last = w->nsegs - 1;

		w->cur = SIZE_MAX;
		problem(w, false, "unsealed_tail", last, NULL, NOOFF, NOSEQ,
			"the last segment is not sealed yet (a run in progress, or a crash "
			"not yet recovered)%s",
			w->torn_tail ? "; it ends in a torn line" : "");
	}
	w->cur = SIZE_MAX;
	if (w->worm_unavail)
		problem(w, false, "worm", w->first_unavail, NULL, NOOFF, NOSEQ,
			"%lu segment(s) written without the append-only flag (worm: unavailable)",
			w->worm_unavail);
	if (w->not_immutable)
		problem(w, false, "worm", w->first_noimm, NULL, NOOFF, NOSEQ,
			"%lu sealed or crashed segment(s) without the immutable inode flag",
			w->not_immutable);
	if (w->not_append)
		problem(w, false, "worm", w->first_noapp, NULL, NOOFF, NOSEQ,
			"the active segment does not have the append-only inode flag");
	if (w->flags_unsupported)
		problem(w, false, "worm", SIZE_MAX, "", NOOFF, NOSEQ,
			"the filesystem of %s does not report inode flags: segments are not "
			"write-once",
			w->dir);
	if (w->primary)
		runs_report(w);
	check_head(w);
}

/* Verifies one directory; -1 when it cannot be read at all. */
static int walk_dir(struct walk *w)
{
	if (walk_start(w) < 0)
		return -1;
	for (size_t i = 0; i < w->nsegs; i++)
		walk_segment(w, i);
	walk_finish(w);
	return 0;
}

/* ---- verify_log ------------------------------------------------------------------------- */

/* On the host (the key directory holds epoch.key): a key behind the clock is a seed of an
 * ended epoch still on disk, which lets anyone with root re-sign that epoch's records. */
static void warn_stale_key(struct ver *v, const char *kd)
{
	char path[PATH_MAX], err[KEYS_ERRLEN], msg[PATH_MAX + 256];
	struct epoch_schedule s;
	uint64_t at, due;

	snprintf(path, sizeof(path), "%s/epoch.key", kd);
	if (!v->o->problem || access(path, F_OK) < 0 ||
	    keys_key_epoch(kd, &at, err, sizeof(err)) < 0)
		return;
	snprintf(path, sizeof(path), "%s/epochs.pub", kd);
	if (keys_load_schedule(path, v->root, &s, err, sizeof(err)) < 0)
		return;
	due = keys_epoch_due(&s, (uint64_t)time(NULL));
	keys_free_schedule(&s);
	if (due <= at)
		return;
	snprintf(msg, sizeof(msg),
		 "%s/epoch.key is at epoch %" PRIu64 " but the clock is in epoch %" PRIu64
		 ": the seeds of ended epochs are still on disk, so their records could be "
		 "re-signed; run `runseal keys tick` and install its timer (`make install`)",
		 kd, at, due);
	v->o->problem(v->o->ctx, &(struct verify_problem){.level = VERIFY_NOTE,
							  .kind = "stale_key",
							  .file = path,
							  .offset = VERIFY_NONE,
							  .seq = VERIFY_NONE,
							  .message = msg});
}

static int load_keys(struct ver *v)
{
	const struct verify_opts *o = v->o;
	const char *kd = o->key_dir ? o->key_dir : KEYS_DIR_DEFAULT;
	char path[PATH_MAX], err[KEYS_ERRLEN];

	if (o->pub)
		snprintf(path, sizeof(path), "%s", o->pub);
	else
		snprintf(path, sizeof(path), "%s/root.pub", kd);
	if (keys_load_root_pub(path, v->host, v->root, err, sizeof(err)) < 0) {
		snprintf(v->sum->err, sizeof(v->sum->err), "%s", err);
		return -1;
	}
	hex(v->host, 16, v->host_hex);
	key_id(v->root, v->root_id);
	snprintf(v->sum->root_key, sizeof(v->sum->root_key), "%s", v->root_id);
	snprintf(v->sum->host_id, sizeof(v->sum->host_id), "%s", v->host_hex);
	snprintf(path, sizeof(path), "%s/epochs.pub", kd);
	if (access(path, R_OK) < 0) {
		snprintf(v->sum->err, sizeof(v->sum->err),
			 "%s: %s (give --key-dir, the directory of epochs.pub)", path,
			 strerror(errno));
		return -1;
	}
	warn_stale_key(v, kd);
	/* A schedule that does not load against this root.pub may still be a wrong --pub:
	 * the genesis decides (wrong_key), else it is an unusable key directory (exit 2). */
	v->have_sched =
	    keys_load_schedule(path, v->root, &v->s, v->sched_err, sizeof(v->sched_err)) == 0;
	if (v->have_sched && memcmp(v->s.host_id, v->host, 16)) {
		snprintf(v->sched_err, sizeof(v->sched_err),
			 "%s: the schedule of another host than root.pub's", path);
		keys_free_schedule(&v->s);
		v->have_sched = false;
	}
	return 0;
}

struct verify_walk {
	struct ver v;
	struct walk w;
	struct verify_summary local;
	size_t next; /* the primary's next segment */
	int rc;	     /* 2 once the log cannot be verified */
	bool keys;   /* loaded: to be freed */
};

int verify_begin(struct verify_walk **out, const struct verify_opts *o, struct verify_summary *sum)
{
	struct verify_walk *vw = xcalloc(1, sizeof(*vw));

	*out = vw;
	if (!sum)
		sum = &vw->local;
	memset(sum, 0, sizeof(*sum));
	vw->v = (struct ver){.o = o, .fn = o->entry, .ctx = o->ctx, .deliver = true, .sum = sum};
	vw->w = (struct walk){.v = &vw->v,
			      .dir = o->log_dir ? o->log_dir : LOG_DIR_DEFAULT,
			      .label = "",
			      .primary = true,
			      .cur = SIZE_MAX};
	if (load_keys(&vw->v) < 0) {
		vw->rc = 2;
		return -1;
	}
	vw->keys = true;
	if (walk_start(&vw->w) < 0)
		vw->rc = 2;
	return vw->rc ? -1 : 0;
}

int verify_step(struct verify_walk *vw)
{
	if (vw->rc || vw->next >= vw->w.nsegs)
		return 0;
	walk_segment(&vw->w, vw->next++);
	return 1;
}

int verify_end(struct verify_walk *vw)
{
	struct ver *const v = &vw->v;
	const struct verify_opts *o = v->o;
	struct verify_summary *sum = v->sum;
	struct walk *reps = NULL;
	struct walk *const w = &vw->w;
	int rc = vw->rc;

	if (rc)
		goto out;
	while (verify_step(vw) > 0)
		;
	walk_finish(w);
	if (!v->have_sched && !v->keys_bad) {
		snprintf(v->sum->err, sizeof(v->sum->err), "%s", v->sched_err);
		rc = 2;
		goto out;
	}
	reps = xcalloc(o->nreplicas ? o->nreplicas : 1, sizeof(*reps));
	for (size_t i = 0; i < o->nreplicas; i++) {
		struct walk *r = &reps[i];
		char *label = xasprintf("%s/", o->replicas[i]);

		*r = (struct walk){.v = v, .dir = o->replicas[i], .label = label, .cur = SIZE_MAX};
		if (walk_dir(r) < 0) {
			free(label);
			rc = 2;
			goto out;
		}
		/* The replica's HEAD against the log's: ahead means the log lost seals. */
		if (r->have_head && r->head_parsed &&
		    (!w->have_seal || r->head_seq > w->last_seal_seq))
			problem(r, true, "rollback", SIZE_MAX, "HEAD", NOOFF, r->head_seq,
				"the replica's HEAD is at seq %" PRIu64
				", the log's last seal at %s: "
				"the log was rolled back or truncated",
				r->head_seq, w->have_seal ? "an earlier seq" : "none");
		else if (r->have_head != w->have_head ||
			 (r->have_head && (r->head_len != w->head_len ||
					   (r->head_len && memcmp(r->head, w->head, r->head_len)))))
			problem(r, true, "head_mismatch", SIZE_MAX, "HEAD", NOOFF,
				r->head_parsed ? r->head_seq : NOSEQ,
				"the replica's HEAD differs from the log's HEAD");
		free(label);
		r->label = "";
	}
	/* A log alone cannot show that its newest segments went together with HEAD: say so,
	 * rather than let "ok" claim it. */
	if (!o->nreplicas && w->have_seal)
		problem(w, false, "no_replica", SIZE_MAX, "HEAD", NOOFF, NOSEQ,
			"no replica was given: HEAD has no independent copy, so the deletion of "
			"the newest segments together with HEAD (a rollback) cannot be detected; "
			"verify with --replica DIR (--strict requires one)");
	if (v->errors)
		rc = 1;
	sum->errors = v->errors;
	sum->warnings = v->warnings;
	sum->entries = w->entries;
	sum->segments = w->segments;
	sum->seals = w->seals;
	sum->have_seal = w->have_seal;
	sum->last_seal_seq = w->last_seal_seq;
	snprintf(sum->last_seal_time, sizeof(sum->last_seal_time), "%s", w->last_seal_time);
out:
	for (size_t i = 0; reps && i < o->nreplicas; i++)
		walk_free(&reps[i]);
	free(reps);
	walk_free(w);
	free(v->cert);
	if (vw->keys)
		keys_free_schedule(&v->s);
	free(vw);
	return rc;
}

void verify_abort(struct verify_walk *vw)
{
	if (!vw)
		return;
	walk_free(&vw->w);
	free(vw->v.cert);
	if (vw->keys)
		keys_free_schedule(&vw->v.s);
	free(vw);
}

int verify_log(const struct verify_opts *o, struct verify_summary *sum)
{
	struct verify_walk *vw;

	verify_begin(&vw, o, sum);
	return verify_end(vw);
}
