#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "keys.h"
#include "logfmt.h"
#include "logread.h"
#include "verify.h"

/* A segment as verified: the chain link before its first entry and its last entry's hash,
 * from which lr_select() reads it again. */
struct lr_seg {
	uint64_t n, first_seq, last_seq;
	unsigned char prev[32], last[32];
};

/* A verified line waiting in a stream's queue: its bytes are in the reader's arena. */
struct lr_raw {
	size_t off, len;
	uint64_t seq;
	unsigned char hash[32];
};

struct logread {
	struct lr_verify v;
	struct lr_ent **ents; /* kept, in log order */
	size_t n, cap, pos;
	lr_keep_fn keep;
	void *ctx;
	struct lr_seg *segs;
	size_t nsegs;
	struct lr_ent **notes;
	size_t nnotes;
	/* the selection lr_next() reads on: ranges, and the next segment to look at */
	struct lr_range *rg;
	size_t nrg, next_seg;
	bool selected;
	char err[PATH_MAX + 128];
	/* lr_stream: the verification walked a segment at a time, the segment's verified
	 * lines queued raw (arena, q) and parsed one by one as lr_next() gives them */
	struct verify_walk *vw;
	struct verify_opts vo;
	struct verify_summary sum;
	char pub[PATH_MAX];
	struct jbuf arena;
	struct lr_raw *q;
	size_t qn, qcap, qpos;
	struct lr_ent *cur; /* the entry lr_next() gave last, freed at the next call */
	bool bundle;
	char tmp[PATH_MAX]; /* the unpacked bundle, removed on close */
	char log_dir[PATH_MAX], key_dir[PATH_MAX];
	struct jtok *scratch; /* json_scan's tokens before they are copied to an entry */
	unsigned scratch_n;
};

/* ---- entries ---------------------------------------------------------------------------- */

int lr_get(const struct lr_ent *e, const char *key)
{
	return e->ntok > 0 ? json_get(e->tok, 0, key) : -1;
}

char *lr_tokstr(const struct lr_ent *e, int tok, size_t *len)
{
	struct jbuf b = {0};

	if (tok < 0 || e->tok[tok].type != J_STR || json_unstr(&e->tok[tok], &b)) {
		jb_free(&b);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

char *lr_str(const struct lr_ent *e, const char *key, size_t *len)
{
	return lr_tokstr(e, lr_get(e, key), len);
}

int lr_int(const struct lr_ent *e, const char *key, int64_t *v)
{
	int t = lr_get(e, key);

	return t < 0 ? -1 : json_int(&e->tok[t], v);
}

bool lr_true(const struct lr_ent *e, const char *key)
{
	int t = lr_get(e, key);

	return t >= 0 && json_is(&e->tok[t], "true");
}

static void ent_free(struct lr_ent *e)
{
	if (!e)
		return;
	free(e->step);
	free(e->line);
	free(e->tok);
	free(e);
}

static void copy_str(const struct lr_ent *e, const char *key, char *out, size_t outlen)
{
	size_t n;
	char *s = lr_str(e, key, &n);

	out[0] = '\0';
	if (s && n < outlen && !memchr(s, '\0', n))
		memcpy(out, s, n + 1);
	free(s);
}

/* Parses a verified line into its typed view; NULL when it is not an object runseal
 * could have written (the chain verified it, so this means a newer format). */
static struct lr_ent *ent_parse(struct logread *r, const char *line, size_t len, uint64_t seq,
				const unsigned char hash[32])
{
	struct lr_ent *e = xcalloc(1, sizeof(*e));
	unsigned max = (unsigned)(len / 2 + 8); /* a token takes two bytes at least */

	e->line = xmalloc(len + 1);
	memcpy(e->line, line, len);
	e->line[len] = '\0';
	e->len = len;
	e->seq = seq;
	memcpy(e->hash, hash, 32);
	{
		uint64_t s;
		long off = entry_prefix(e->line, len, &s, e->prev);

		e->body = off > 0 ? (size_t)off : 1;
	}
	/* Scanned into the reader's scratch space, sized for the worst case; a kept entry
	 * takes only the tokens its line needed. */
	if (max > r->scratch_n) {
		r->scratch = xrealloc(r->scratch, max * sizeof(*r->scratch));
		r->scratch_n = max;
	}
	e->ntok = json_scan(e->line, len, r->scratch, max);
	if (e->ntok <= 0 || r->scratch[0].type != J_OBJ) {
		ent_free(e);
		return NULL;
	}
	e->tok = xmalloc((size_t)e->ntok * sizeof(*e->tok));
	memcpy(e->tok, r->scratch, (size_t)e->ntok * sizeof(*e->tok));
	copy_str(e, RF_KIND, e->kind_name, sizeof(e->kind_name));
	e->kind = rec_kind_of(e->kind_name, strlen(e->kind_name));
	copy_str(e, RF_TIME, e->time, sizeof(e->time));
	if (parse_time(e->time, strlen(e->time), &e->time_ns))
		e->time_ns = 0;
	copy_str(e, RF_RUN, e->run, sizeof(e->run));
	e->step = lr_str(e, RF_STEP, NULL);
	if (lr_int(e, RF_PID, &e->pid))
		e->pid = -1;
	if (lr_int(e, RF_PPID, &e->ppid))
		e->ppid = -1;
	return e;
}

/* ---- verification result ------------------------------------------------------------------ */

static void add_seal(struct lr_verify *v, const struct lr_ent *e)
{
	struct lr_seal s = {.seq = e->seq};
	int64_t x;
	unsigned char raw[32];

	if (!lr_int(e, "segment", &x))
		s.segment = (uint64_t)x;
	if (!lr_int(e, "first_seq", &x))
		s.first_seq = (uint64_t)x;
	if (!lr_int(e, "epoch", &x))
		s.epoch = (uint64_t)x;
	copy_str(e, "epoch_key", s.epoch_key, sizeof(s.epoch_key));
	copy_str(e, "reason", s.reason, sizeof(s.reason));
	snprintf(s.time, sizeof(s.time), "%s", e->time);
	if (strlen(s.epoch_key) == 64 && !unhex(s.epoch_key, 64, raw, 32))
		key_id(raw, s.key_id);
	v->seal = xrealloc(v->seal, (v->nseal + 1) * sizeof(*v->seal));
	v->seal[v->nseal++] = s;
}

const struct lr_seal *lr_seal_for(const struct lr_verify *v, uint64_t seq)
{
	for (size_t i = 0; i < v->nseal; i++)
		if (v->seal[i].seq >= seq && v->seal[i].first_seq <= seq)
			return &v->seal[i];
	return NULL;
}

static void push_ent(struct logread *r, struct lr_ent *e)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->ents = xrealloc(r->ents, r->cap * sizeof(*r->ents));
	}
	r->ents[r->n++] = e;
}

/* Segment 1 starts with genesis and then its segment entry, every other with its segment
 * entry: a new segment number starts a new trusted link. */
static void index_entry(struct logread *r, const struct lr_ent *e)
{
	struct lr_seg *sg = r->nsegs ? &r->segs[r->nsegs - 1] : NULL;
	int64_t n = 0;

	if (e->kind == REC_GENESIS)
		n = 1;
	else if (e->kind == REC_SEGMENT && lr_int(e, "segment", &n))
		n = 0;
	if ((n > 0 && (!sg || sg->n != (uint64_t)n)) || !sg) {
		r->segs = xrealloc(r->segs, (r->nsegs + 1) * sizeof(*r->segs));
		sg = &r->segs[r->nsegs++];
		*sg = (struct lr_seg){.n = (uint64_t)(n > 0 ? n : 0), .first_seq = e->seq};
		/* verify checked it: the link to the log's entry before, or to an anchored
		 * log's ANCHOR seal */
		memcpy(sg->prev, e->prev, 32);
	}
	sg->last_seq = e->seq;
	memcpy(sg->last, e->hash, 32);
}

static bool is_note(const struct lr_ent *e)
{
	return e->kind == REC_RECOVERY || e->kind == REC_RUN_INTERRUPTED || e->kind == REC_GENESIS;
}

/* What the reader notes of every verified entry (segment links, seals, the log's notes);
 * then whether the caller keeps it. false: e was freed. */
static bool take(struct logread *r, struct lr_ent *e)
{
	index_entry(r, e);
	if (e->kind == REC_SEAL)
		add_seal(&r->v, e);
	if (is_note(e)) {
		r->notes = xrealloc(r->notes, (r->nnotes + 1) * sizeof(*r->notes));
		r->notes[r->nnotes++] = ent_parse(r, e->line, e->len, e->seq, e->hash);
	}
	if (r->keep && !r->keep(r->ctx, e)) {
		ent_free(e);
		return false;
	}
	return true;
}

/* An entry that is no object runseal writes, but chained: its link still counts. */
static void take_unparsed(struct logread *r, uint64_t seq, const unsigned char hash[32])
{
	if (r->nsegs) {
		r->segs[r->nsegs - 1].last_seq = seq;
		memcpy(r->segs[r->nsegs - 1].last, hash, 32);
	}
}

static int on_entry(void *ctx, const char *line, size_t len, uint64_t seq,
		    const unsigned char hash[32])
{
	struct logread *r = ctx;
	struct lr_ent *e = ent_parse(r, line, len, seq, hash);

	if (!e) {
		take_unparsed(r, seq, hash);
		return 0;
	}
	if (!take(r, e))
		return 0;
	push_ent(r, e);
	return 0;
}

/* A stream's verified line, queued as it is: parsed when lr_next() comes to it. */
static int on_stream_entry(void *ctx, const char *line, size_t len, uint64_t seq,
			   const unsigned char hash[32])
{
	struct logread *r = ctx;

	if (r->qn == r->qcap) {
		r->qcap = r->qcap ? r->qcap * 2 : 1024;
		r->q = xrealloc(r->q, r->qcap * sizeof(*r->q));
	}
	r->q[r->qn] = (struct lr_raw){.off = r->arena.len, .len = len, .seq = seq};
	memcpy(r->q[r->qn++].hash, hash, 32);
	jb_raw(&r->arena, line, len);
	return 0;
}

#define PROBLEMS_KEPT 1000

/* The verifier's problems, kept for the outputs to state (the first PROBLEMS_KEPT: a log
 * of garbage is one problem many times). Notes about the key directory are not about the
 * log. */
static void on_problem(void *ctx, const struct verify_problem *vp)
{
	struct logread *r = ctx;
	struct lr_problem *p;

	if (vp->level == VERIFY_NOTE || r->v.nprob >= PROBLEMS_KEPT)
		return;
	r->v.prob = xrealloc(r->v.prob, (r->v.nprob + 1) * sizeof(*r->v.prob));
	p = &r->v.prob[r->v.nprob++];
	p->level = xstrdup(vp->level == VERIFY_ERROR ? "error" : "warning");
	p->kind = xstrdup(vp->kind);
	p->file = *vp->file ? xstrdup(vp->file) : NULL;
	p->message = xstrdup(vp->message);
	p->seq = vp->seq == VERIFY_NONE ? -1 : (int64_t)vp->seq;
}

static void bundle_result(struct logread *r, const char *pub);

/* The verification's outcome (rc as verify_log returns it) into the reader's result;
 * -1 with the reason in err when the log could not be verified. */
static int verified(struct logread *r, int rc, char *err, size_t errlen)
{
	const struct verify_summary *sum = &r->sum;

	r->v.rc = rc;
	if (rc == 2) {
		snprintf(err, errlen, "%s", *sum->err ? sum->err : "the log could not be verified");
		return -1;
	}
	r->v.entries = sum->entries;
	r->v.segments = sum->segments;
	r->v.seals = sum->seals;
	r->v.errors = sum->errors;
	r->v.warnings = sum->warnings;
	r->v.any = sum->any;
	r->v.first_seq = sum->first_seq;
	r->v.last_seq = sum->last_seq;
	if (r->bundle)
		bundle_result(r, r->pub[0] ? r->pub : NULL);
	return 0;
}

static int trust(struct logread *r, const char *pub, char *err, size_t errlen)
{
	unsigned char host[16], root[32];

	snprintf(r->v.pub_path, sizeof(r->v.pub_path), "%s", pub);
	if (keys_load_root_pub(pub, host, root, err, errlen) < 0)
		return -1;
	key_id(root, r->v.root_key);
	hex(host, 16, r->v.host_id);
	return 0;
}

/* Files unpacked from a bundle cannot carry the log's write-once inode flags (the segment
 * entries record what the host had): those warnings say nothing about the evidence, and
 * would make the same bundle verify differently on filesystems with and without flags. */
static void bundle_result(struct logread *r, const char *pub)
{
	size_t k = 0;

	for (size_t i = 0; i < r->v.nprob; i++) {
		struct lr_problem *p = &r->v.prob[i];

		if (p->kind && !strcmp(p->kind, "worm") && p->level &&
		    !strcmp(p->level, "warning")) {
			r->v.warnings--;
			free(p->level);
			free(p->kind);
			free(p->file);
			free(p->message);
			continue;
		}
		r->v.prob[k++] = *p;
	}
	r->v.nprob = k;
	if (!pub)
		snprintf(r->v.pub_path, sizeof(r->v.pub_path), "keys/root.pub in the bundle");
}

/* The log (a directory, or a bundle unpacked) and the keys to trust: a reader ready to
 * verify. NULL with a message in err. */
static struct logread *prepare(const struct lr_opts *o, char *err, size_t errlen)
{
	struct logread *r = xcalloc(1, sizeof(*r));
	char pub[PATH_MAX];
	struct stat st;

	r->keep = o->keep;
	r->ctx = o->ctx;
	if (stat(o->path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		free(r);
		return NULL;
	}
	if (S_ISREG(st.st_mode)) {
		if (bundle_unpack(o->path, r->tmp, sizeof(r->tmp), err, errlen) < 0) {
			lr_close(r);
			return NULL;
		}
		r->bundle = true;
		snprintf(r->log_dir, sizeof(r->log_dir), "%s/log", r->tmp);
		snprintf(r->key_dir, sizeof(r->key_dir), "%s/keys", r->tmp);
	} else {
		snprintf(r->log_dir, sizeof(r->log_dir), "%s", o->path);
		snprintf(r->key_dir, sizeof(r->key_dir), "%s",
			 o->key_dir ? o->key_dir : KEYS_DIR_DEFAULT);
	}
	if (o->key_dir && r->bundle)
		snprintf(r->key_dir, sizeof(r->key_dir), "%s", o->key_dir);
	snprintf(pub, sizeof(pub), "%s/root.pub", r->key_dir);
	if (trust(r, o->pub ? o->pub : pub, err, errlen) < 0) {
		lr_close(r);
		return NULL;
	}
	if (o->pub)
		snprintf(r->pub, sizeof(r->pub), "%s", o->pub);
	r->vo = (struct verify_opts){.log_dir = r->log_dir,
				     .key_dir = r->key_dir,
				     .pub = r->pub[0] ? r->pub : NULL,
				     /* trimmed to its run, from a trusted seal */
				     .allow_anchor = r->bundle,
				     .problem = on_problem,
				     .entry = on_entry,
				     .ctx = r};
	return r;
}

int lr_open(struct logread **out, const struct lr_opts *o, char *err, size_t errlen)
{
	struct logread *r = prepare(o, err, errlen);

	*out = NULL;
	if (!r)
		return -1;
	if (verified(r, verify_log(&r->vo, &r->sum), err, errlen) < 0) {
		lr_close(r);
		return -1;
	}
	*out = r;
	return 0;
}

int lr_stream(struct logread **out, const struct lr_opts *o, char *err, size_t errlen)
{
	struct logread *r = prepare(o, err, errlen);

	*out = NULL;
	if (!r)
		return -1;
	r->vo.entry = on_stream_entry;
	if (verify_begin(&r->vw, &r->vo, &r->sum) < 0) {
		verified(r, verify_end(r->vw), err, errlen);
		r->vw = NULL;
		lr_close(r);
		return -1;
	}
	*out = r;
	return 0;
}

/* A stream's next verified entry, parsed: the queue first, then the next segment the
 * verification walks; NULL at the end of the log (the result is then final). */
static const struct lr_ent *stream_next(struct logread *r)
{
	char e[512];

	ent_free(r->cur);
	r->cur = NULL;
	for (;;) {
		while (r->qpos >= r->qn) {
			r->qn = r->qpos = 0;
			r->arena.len = 0;
			if (!r->vw)
				return NULL;
			if (verify_step(r->vw) > 0)
				continue;
			if (verified(r, verify_end(r->vw), e, sizeof(e)) < 0)
				snprintf(r->err, sizeof(r->err), "%s", e);
			r->vw = NULL;
			return NULL;
		}
		const struct lr_raw *q = &r->q[r->qpos++];
		struct lr_ent *x = ent_parse(r, r->arena.p + q->off, q->len, q->seq, q->hash);

		if (!x) {
			take_unparsed(r, q->seq, q->hash);
			continue;
		}
		if (take(r, x))
			return r->cur = x;
	}
}
const struct lr_verify *lr_result(const struct logread *r)
{
	return &r->v;
}

static void drop_ents(struct logread *r, size_t from)
{
	for (size_t i = from; i < r->n; i++)
		ent_free(r->ents[i]);
	r->n = from;
}

void lr_select(struct logread *r, const struct lr_range *rg, size_t n, lr_keep_fn keep, void *ctx)
{
	drop_ents(r, 0);
	r->pos = 0;
	free(r->rg);
	r->rg = xmalloc((n ? n : 1) * sizeof(*rg));
	memcpy(r->rg, rg, n * sizeof(*rg));
	r->nrg = n;
	r->next_seg = 0;
	r->keep = keep;
	r->ctx = ctx;
	r->selected = true;
	r->err[0] = '\0';
}

static bool in_ranges(const struct logread *r, uint64_t first, uint64_t last)
{
	for (size_t i = 0; i < r->nrg; i++)
		if (first <= r->rg[i].last && last >= r->rg[i].first)
			return true;
	return false;
}

/* Walks a segment file from sg's trusted link to its verified last entry, keeping the
 * selected entries; 0 when every line chained and the last one hashed as verified, -1 (and
 * nothing kept) otherwise. */
static int walk_seg(struct logread *r, const struct lr_seg *sg, const char *buf, size_t len)
{
	unsigned char want[32], prev[32], h[32];
	uint64_t seq, expect = sg->first_seq;
	size_t off = 0, n0 = r->n;

	memcpy(want, sg->prev, 32);
	while (off < len) {
		const char *l = buf + off, *nl = memchr(l, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - l) : 0;

		if (!nl || entry_prefix(l, ll, &seq, prev) < 0 || seq != expect ||
		    memcmp(prev, want, 32))
			break;
		entry_hash(l, ll, h);
		if (seq == sg->last_seq && memcmp(h, sg->last, 32))
			break;
		if (in_ranges(r, seq, seq)) {
			struct lr_ent *e = ent_parse(r, l, ll, seq, h);

			if (e && (!r->keep || r->keep(r->ctx, e)))
				push_ent(r, e);
			else
				ent_free(e);
		}
		if (seq == sg->last_seq)
			return 0;
		memcpy(want, h, 32);
		expect++;
		off += ll + 1;
	}
	drop_ents(r, n0);
	return -1;
}

/* Reads the segment again: sealed segments are compressed once sealed, so it may have
 * become seg-N.log.z since it was verified as seg-N.log. */
static int read_seg(struct logread *r, const struct lr_seg *sg)
{
	static const char *const ext[] = {".log.z", ".log"};
	char path[PATH_MAX + 40], e[256];

	for (size_t i = 0; i < 2; i++) {
		char *buf;
		size_t len;
		int rc;

		snprintf(path, sizeof(path), "%s/seg-%016llu%s", r->log_dir,
			 (unsigned long long)sg->n, ext[i]);
		if (segment_read(path, &buf, &len, e, sizeof(e)) < 0)
			continue;
		rc = walk_seg(r, sg, buf, len);
		free(buf);
		if (!rc)
			return 0;
	}
	snprintf(r->err, sizeof(r->err),
		 "%s: segment %llu changed or went after it was verified (read the log again)",
		 r->log_dir, (unsigned long long)sg->n);
	return -1;
}

/* Reads the next selected segment: 1, 0 when there is none left, -1 on an error. */
static int read_next(struct logread *r)
{
	if (!r->selected || r->err[0])
		return r->err[0] ? -1 : 0;
	for (; r->next_seg < r->nsegs; r->next_seg++) {
		const struct lr_seg *sg = &r->segs[r->next_seg];

		if (!in_ranges(r, sg->first_seq, sg->last_seq))
			continue;
		r->next_seg++;
		return read_seg(r, sg) < 0 ? -1 : 1;
	}
	return 0;
}

const struct lr_ent *lr_next(struct logread *r)
{
	if (r->vw || r->cur)
		return stream_next(r);
	while (r->pos >= r->n)
		if (read_next(r) <= 0)
			return NULL;
	return r->ents[r->pos++];
}

const char *lr_error(const struct logread *r)
{
	return r->err[0] ? r->err : NULL;
}

void lr_rewind(struct logread *r)
{
	r->pos = 0;
}

int lr_seek_run(struct logread *r, const char *run)
{
	size_t first = SIZE_MAX, i = 0;

	for (;;) {
		for (; i < r->n; i++) {
			if (strcmp(r->ents[i]->run, run))
				continue;
			if (r->ents[i]->kind == REC_RUN_START) {
				r->pos = i;
				return 0;
			}
			if (first == SIZE_MAX)
				first = i;
		}
		if (read_next(r) <= 0)
			break;
	}
	if (first == SIZE_MAX)
		return -1;
	r->pos = first;
	return 0;
}

uint64_t lr_segment_of(const struct logread *r, uint64_t seq)
{
	for (size_t i = 0; i < r->nsegs; i++)
		if (r->segs[i].first_seq <= seq && seq <= r->segs[i].last_seq)
			return r->segs[i].n;
	return 0;
}

const struct lr_ent *const *lr_notes(const struct logread *r, size_t *n)
{
	*n = r->nnotes;
	return (const struct lr_ent *const *)r->notes;
}

bool lr_is_bundle(const struct logread *r)
{
	return r->bundle;
}

const char *lr_log_dir(const struct logread *r)
{
	return r->log_dir;
}

const char *lr_key_dir(const struct logread *r)
{
	return r->key_dir;
}

void lr_close(struct logread *r)
{
	if (!r)
		return;
	verify_abort(r->vw); /* a stream closed before its end */
	ent_free(r->cur);
	free(r->q);
	jb_free(&r->arena);
	drop_ents(r, 0);
	free(r->ents);
	for (size_t i = 0; i < r->nnotes; i++)
		ent_free(r->notes[i]);
	free(r->notes);
	free(r->segs);
	free(r->rg);
	for (size_t i = 0; i < r->v.nprob; i++) {
		free(r->v.prob[i].level);
		free(r->v.prob[i].kind);
		free(r->v.prob[i].file);
		free(r->v.prob[i].message);
	}
	free(r->v.prob);
	free(r->v.seal);
	free(r->scratch);
	if (r->bundle && r->tmp[0])
		bundle_remove(r->tmp);
	free(r);
}
