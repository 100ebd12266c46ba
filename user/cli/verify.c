/* runseal verify: argument handling and output of the verifier's problems and result. */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "json.h"
#include "keys.h"
#include "report/escape.h"
#include "util.h"
#include "verify.h"

/* A log with thousands of broken lines is one problem many times: the list stays readable. */
#define PROBLEMS_LISTED 1000

struct vout {
	bool json, quiet;
	unsigned long listed;
	struct jbuf b;
};

static void put_json_problem(struct jbuf *b, const struct verify_problem *p)
{
	jb_raw(b, "{\"level\":", 9);
	if (p->level == VERIFY_ERROR)
		jb_str(b, "error", 5);
	else
		jb_str(b, "warning", 7);
	jb_raw(b, ",\"kind\":", 8);
	jb_str(b, p->kind, strlen(p->kind));
	jb_raw(b, ",\"file\":", 8);
	if (*p->file)
		jb_str(b, p->file, strlen(p->file));
	else
		jb_raw(b, "null", 4);
	jb_raw(b, ",\"offset\":", 10);
	if (p->offset != VERIFY_NONE)
		jb_u64(b, p->offset);
	else
		jb_raw(b, "null", 4);
	jb_raw(b, ",\"seq\":", 7);
	if (p->seq != VERIFY_NONE)
		jb_u64(b, p->seq);
	else
		jb_raw(b, "null", 4);
	jb_raw(b, ",\"message\":", 11);
	jb_str(b, p->message, strlen(p->message));
	jb_raw(b, "}\n", 2);
}

/* LEVEL: KIND: FILE offset N seq S: MESSAGE, with the hostile parts escaped. */
static void put_text_problem(struct jbuf *b, const struct verify_problem *p)
{
	jb_raw(b, p->level == VERIFY_ERROR ? "error: " : "warning: ",
	       p->level == VERIFY_ERROR ? 7 : 9);
	jb_raw(b, p->kind, strlen(p->kind));
	jb_raw(b, ": ", 2);
	if (*p->file) {
		char t[64];

		esc_term(b, p->file, strlen(p->file));
		if (p->offset != VERIFY_NONE)
			jb_raw(b, t, (size_t)snprintf(t, sizeof(t), " offset %" PRIu64, p->offset));
		if (p->seq != VERIFY_NONE)
			jb_raw(b, t, (size_t)snprintf(t, sizeof(t), " seq %" PRIu64, p->seq));
		jb_raw(b, ": ", 2);
	}
	esc_term(b, p->message, strlen(p->message));
	jb_putc(b, '\n');
}

static void put_problem(void *ctx, const struct verify_problem *p)
{
	struct vout *o = ctx;

	if (p->level == VERIFY_NOTE) {
		o->b.len = 0;
		esc_term(&o->b, p->message, strlen(p->message));
		fprintf(stderr, "runseal: warning: %.*s\n", (int)o->b.len, o->b.p);
		return;
	}
	if (o->listed > PROBLEMS_LISTED)
		return;
	if (o->listed++ == PROBLEMS_LISTED) {
		if (o->json)
			printf(
			    "{\"level\":\"note\",\"kind\":\"limit\",\"file\":null,\"offset\":null,"
			    "\"seq\":null,\"message\":\"only the first %d problems are listed\"}\n",
			    PROBLEMS_LISTED);
		else
			printf("note: only the first %d problems are listed\n", PROBLEMS_LISTED);
		return;
	}
	o->b.len = 0;
	if (o->json)
		put_json_problem(&o->b, p);
	else
		put_text_problem(&o->b, p);
	fwrite(o->b.p, 1, o->b.len, stdout);
}

static void put_summary(const struct vout *o, const struct verify_summary *s, int rc)
{
	if (o->json) {
		printf("{\"result\":\"%s\",\"errors\":%lu,\"warnings\":%lu,\"entries\":"
		       "%" PRIu64 ",\"segments\":%" PRIu64 ",\"seals\":%" PRIu64,
		       rc ? "failed" : "ok", s->errors, s->warnings, s->entries, s->segments,
		       s->seals);
		if (s->have_seal)
			printf(",\"last_seal_seq\":%" PRIu64 ",\"last_seal_time\":\"%s\"",
			       s->last_seal_seq, s->last_seal_time);
		if (s->anchored)
			printf(",\"anchor_seq\":%" PRIu64 ",\"anchor_segment\":%" PRIu64,
			       s->anchor_seq, s->anchor_segment);
		printf("}\n");
	} else if (rc) {
		printf("FAILED: %lu errors, %lu warnings\n", s->errors, s->warnings);
	} else {
		printf("ok: %" PRIu64 " entries, %" PRIu64 " segments, %" PRIu64 " seals",
		       s->entries, s->segments, s->seals);
		if (s->have_seal)
			printf(", last seal seq %" PRIu64 " at %s", s->last_seal_seq,
			       s->last_seal_time);
		if (s->warnings)
			printf(" (%lu warnings)", s->warnings);
		if (s->anchored)
			printf(", from the ANCHOR seal of segment %" PRIu64 " (seq %" PRIu64 ")",
			       s->anchor_segment, s->anchor_seq);
		putchar('\n');
	}
	fflush(stdout);
}

static const char usage_verify[] =
    "usage: runseal verify [LOGDIR] [--pub FILE] [--key-dir DIR] [--replica DIR]...\n"
    "                      [--json] [--strict] [-q]\n"
    "\n"
    "Checks the sealed log in LOGDIR (default " LOG_DIR_DEFAULT ") with public\n"
    "keys only: the hash chain of every entry, every segment's seal, its epoch key\n"
    "and certificate, that no record was sealed late (forward security), and HEAD.\n"
    "\n"
    "options:\n"
    "      --pub FILE      root.pub to trust (default KEYDIR/root.pub); keep a copy\n"
    "                      off the host\n"
    "      --key-dir DIR   where epochs.pub is (default " KEYS_DIR_DEFAULT ")\n"
    "      --replica DIR   verify this replica too and compare HEADs (repeatable)\n"
    "      --json          problems and the summary as JSON Lines\n"
    "      --anchored      accept a log that starts after the seal in its ANCHOR\n"
    "                      file (an evidence bundle trimmed to its run); the chain\n"
    "                      is checked from that seal, which must verify\n"
    "      --strict        warnings (loss, recovery, worm, unsealed tail, no replica...)\n"
    "                      fail too\n"
    "  -q, --quiet         print nothing; the exit status tells\n"
    "  -h, --help          show this help\n"
    "\n"
    "A problem is one line, LEVEL: KIND: FILE offset N seq S: MESSAGE. Errors:\n"
    "modified, deleted, inserted, reordered, truncated, missing_segment, wrong_host,\n"
    "wrong_key, bad_signature, epoch, late_record, future_record, head_mismatch,\n"
    "head_missing, rollback, malformed. Warnings: loss, recovery, worm,\n"
    "unsealed_tail, head_stale, no_replica, unexpected.\n"
    "\n"
    "exit status: 0 verified, 1 problems found, 2 usage error, unreadable log or keys\n";

enum { OPT_PUB = 256, OPT_KEYDIR, OPT_REPLICA, OPT_JSON, OPT_STRICT, OPT_ANCHORED };

int verify_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pub", required_argument, NULL, OPT_PUB},
	    {"key-dir", required_argument, NULL, OPT_KEYDIR},
	    {"replica", required_argument, NULL, OPT_REPLICA},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"strict", no_argument, NULL, OPT_STRICT},
	    {"anchored", no_argument, NULL, OPT_ANCHORED},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct vout out = {0};
	struct verify_opts o = {.log_dir = LOG_DIR_DEFAULT,
				.key_dir = KEYS_DIR_DEFAULT,
				.problem = put_problem,
				.ctx = &out};
	struct verify_summary sum;
	const char **reps = NULL;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_PUB:
			o.pub = optarg;
			break;
		case OPT_KEYDIR:
			o.key_dir = optarg;
			break;
		case OPT_REPLICA:
			reps = xrealloc(reps, (o.nreplicas + 1) * sizeof(*reps));
			reps[o.nreplicas++] = optarg;
			break;
		case OPT_JSON:
			out.json = true;
			break;
		case OPT_STRICT:
			o.strict = true;
			break;
		case OPT_ANCHORED:
			o.allow_anchor = true;
			break;
		case 'q':
			out.quiet = true;
			break;
		case 'h':
			fputs(usage_verify, stdout);
			free(reps);
			return 0;
		default:
			fputs(usage_verify, stderr);
			free(reps);
			return 2;
		}
	}
	if (argc - optind > 1) {
		fputs(usage_verify, stderr);
		free(reps);
		return 2;
	}
	if (optind < argc)
		o.log_dir = argv[optind];
	o.replicas = reps;
	if (out.quiet)
		o.problem = NULL;
	rc = verify_log(&o, &sum);
	free(reps);
	jb_free(&out.b);
	if (out.quiet)
		return rc;
	if (rc == 2)
		fprintf(stderr, "runseal: %s\n", sum.err);
	else
		put_summary(&out, &sum, rc);
	return rc;
}
