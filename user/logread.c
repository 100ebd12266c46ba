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

struct logread {
	struct lr_verify v;
	struct lr_ent **ents;
	size_t n, cap, pos;
	lr_keep_fn keep;
	void *ctx;
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
		unsigned char prev[32];
		uint64_t s;
		long off = entry_prefix(e->line, len, &s, prev);

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

static int on_entry(void *ctx, const char *line, size_t len, uint64_t seq,
		    const unsigned char hash[32])
{
	struct logread *r = ctx;
	struct lr_ent *e = ent_parse(r, line, len, seq, hash);

	if (!e)
		return 0;
	if (e->kind == REC_SEAL)
		add_seal(&r->v, e);
	if (r->keep && !r->keep(r->ctx, e)) {
		ent_free(e);
		return 0;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->ents = xrealloc(r->ents, r->cap * sizeof(*r->ents));
	}
	r->ents[r->n++] = e;
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

static int run_verify(struct logread *r, struct verify_opts *vo, char *err, size_t errlen)
{
	struct verify_summary sum;

	vo->problem = on_problem;
	vo->entry = on_entry;
	vo->ctx = r;
	r->v.rc = verify_log(vo, &sum);
	if (r->v.rc == 2) {
		snprintf(err, errlen, "%s", *sum.err ? sum.err : "the log could not be verified");
		return -1;
	}
	r->v.entries = sum.entries;
	r->v.segments = sum.segments;
	r->v.seals = sum.seals;
	r->v.errors = sum.errors;
	r->v.warnings = sum.warnings;
	r->v.any = sum.any;
	r->v.first_seq = sum.first_seq;
	r->v.last_seq = sum.last_seq;
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

int lr_open(struct logread **out, const struct lr_opts *o, char *err, size_t errlen)
{
	struct logread *r = xcalloc(1, sizeof(*r));
	struct verify_opts vo = {0};
	char pub[PATH_MAX];
	struct stat st;

	*out = NULL;
	r->keep = o->keep;
	r->ctx = o->ctx;
	if (stat(o->path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		free(r);
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		if (bundle_unpack(o->path, r->tmp, sizeof(r->tmp), err, errlen) < 0) {
			lr_close(r);
			return -1;
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
		return -1;
	}
	vo.log_dir = r->log_dir;
	vo.key_dir = r->key_dir;
	vo.pub = o->pub;
	if (run_verify(r, &vo, err, errlen) < 0) {
		lr_close(r);
		return -1;
	}
	if (r->bundle)
		bundle_result(r, o->pub);
	*out = r;
	return 0;
}

const struct lr_verify *lr_result(const struct logread *r)
{
	return &r->v;
}

const struct lr_ent *lr_next(struct logread *r)
{
	return r->pos < r->n ? r->ents[r->pos++] : NULL;
}

void lr_rewind(struct logread *r)
{
	r->pos = 0;
}

int lr_seek_run(struct logread *r, const char *run)
{
	size_t first = SIZE_MAX;

	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->ents[i]->run, run))
			continue;
		if (r->ents[i]->kind == REC_RUN_START) {
			r->pos = i;
			return 0;
		}
		if (first == SIZE_MAX)
			first = i;
	}
	if (first == SIZE_MAX)
		return -1;
	r->pos = first;
	return 0;
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
	for (size_t i = 0; i < r->n; i++)
		ent_free(r->ents[i]);
	free(r->ents);
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

bool lr_keep_run(void *run_id, const struct lr_ent *e)
{
	return e->kind == REC_RECOVERY || e->kind == REC_RUN_INTERRUPTED ||
	       !strcmp(e->run, (const char *)run_id);
}
