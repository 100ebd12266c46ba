#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "report/export.h"
#include "verify.h"

static const char usage[] =
    "usage: runseal export [LOGDIR|BUNDLE] [--run RUN] --format ocsf|ecs|jsonl\n"
    "                      [--since SEQ] [--pub FILE] [--key-dir DIR]\n"
    "\n"
    "Verifies the log (default " LOG_DIR_DEFAULT ") and writes its records as one\n"
    "JSON object per line, for a SIEM: OCSF 1.1 events (Process Activity 1007 for\n"
    "exec, fork and exit, File System Activity 1001 for open, Network Activity 4001\n"
    "for connect), Elastic Common Schema documents, or the log's own entries with\n"
    "their seq and hash (jsonl). Every event names its run, step, seq and hash.\n"
    "\n"
    "options:\n"
    "      --format FMT    ocsf, ecs or jsonl\n"
    "      --run RUN       only this run's records (id, prefix or `last`)\n"
    "      --since SEQ     only entries after seq SEQ: a shipper resumes at the last\n"
    "                      seq it sent\n" CLI_LOG_HELP "  -h, --help          show this help\n"
    "\n"
    "Only verified entries are written; when the log has a problem, the entries\n"
    "before it are, a note goes to stderr and the exit status is 1.\n"
    "\n"
    "exit status: 0 verified, 1 the log has problems, 2 usage error or unreadable log\n";

struct ex {
	enum export_fmt fmt;
	const char *run; /* id, or NULL for every run */
	char id[48];
	uint64_t since;
	bool has_since;
	FILE *out; /* stdout, which logread redirects while it verifies */
	struct export_ctx c;
	struct jbuf b;
	bool broken;
};

/* Writes one entry (or takes the genesis's host name): nothing is kept. */
static bool each(void *ctx, const struct lr_ent *e)
{
	struct ex *x = ctx;

	if (x->broken)
		return false;
	if ((x->run && strcmp(e->run, x->run)) || (x->has_since && e->seq <= x->since)) {
		if (e->kind == REC_GENESIS) /* its host name still counts */
			export_entry(&x->b, e, EXPORT_ECS, &x->c);
		x->b.len = 0;
		return false;
	}
	x->b.len = 0;
	if (export_entry(&x->b, e, x->fmt, &x->c) &&
	    fwrite(x->b.p, 1, x->b.len, x->out) != x->b.len)
		x->broken = true;
	return false;
}

/* --run: the log verified once while its runs are listed, then the run's segments read
 * again from the links that verification trusted. */
static int export_run(struct ex *x, const struct lr_opts *o, const char *arg, struct logread **r)
{
	struct run_list runs;
	const struct run_sum *s;
	const struct lr_ent *const *note, *e;
	char err[1024];
	size_t n;

	if (runs_collect(&runs, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return -1;
	}
	s = runs_find(&runs, arg, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "runseal: %s\n", err);
		runs_free(&runs);
		return -1;
	}
	snprintf(x->id, sizeof(x->id), "%s", s->id);
	x->run = x->id;
	cli_note_read("export", o->path, (const char *const[]){x->id}, 1);
	note = lr_notes(runs.reader, &n);
	for (size_t i = 0; i < n; i++)
		if (note[i]->kind == REC_GENESIS) /* its host name counts */
			each(x, note[i]);
	lr_select(runs.reader, &(struct lr_range){s->first_seq, s->last_seq}, 1, NULL, NULL);
	while ((e = lr_next(runs.reader)))
		each(x, e);
	*r = runs.reader;
	runs.reader = NULL;
	runs_free(&runs);
	if (lr_error(*r)) {
		fprintf(stderr, "runseal: %s\n", lr_error(*r));
		lr_close(*r);
		return -1;
	}
	return 0;
}

/* The whole log, pulled as it verifies: nothing is kept, however long the log. */
static int export_all(struct ex *x, const struct lr_opts *o, struct logread **r)
{
	const struct lr_ent *e;
	char err[1024];

	if (lr_stream(r, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return -1;
	}
	while (!x->broken && (e = lr_next(*r)))
		each(x, e);
	if (lr_error(*r)) {
		fprintf(stderr, "runseal: %s\n", lr_error(*r));
		lr_close(*r);
		return -1;
	}
	return 0;
}

int export_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'}, {"run", required_argument, NULL, 'r'},
	    {"since", required_argument, NULL, 's'},  CLI_LOG_OPTIONS,
	    {"help", no_argument, NULL, 'h'},	      {0}};
	struct cli_log l = {.path = LOG_DIR_DEFAULT};
	struct ex x = {.fmt = -1};
	const char *fmt = NULL, *run = NULL;
	struct lr_opts o;
	struct logread *r;
	char *end;
	int c, rc, fd, stop;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "f:h", opts, usage, &l, &stop)) != -1) {
		if (c == 'f') {
			fmt = optarg;
		} else if (c == 'r') {
			run = optarg;
		} else if (c == 's') {
			errno = 0;
			x.since = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg || *optarg == '-') {
				fprintf(stderr, "runseal: --since %s: not a seq\n", optarg);
				return 2;
			}
			x.has_since = true;
		}
	}
	if (stop >= 0)
		return stop;
	if (fmt)
		x.fmt = !strcmp(fmt, "ocsf")	? EXPORT_OCSF
			: !strcmp(fmt, "ecs")	? EXPORT_ECS
			: !strcmp(fmt, "jsonl") ? EXPORT_JSONL
						: (enum export_fmt) - 1;
	if ((int)x.fmt < 0 || argc - optind > 1) {
		fprintf(stderr, "%s%s",
			(int)x.fmt < 0 ? "runseal: --format ocsf, ecs or jsonl\n" : "", usage);
		return 2;
	}
	if (optind < argc)
		l.path = argv[optind];
	signal(SIGPIPE, SIG_IGN); /* a closed pipe ends the export as an error, cleanly */
	fd = dup(1);
	x.out = fd < 0 ? NULL : fdopen(fd, "w");
	if (!x.out) {
		fprintf(stderr, "runseal: stdout: %s\n", strerror(errno));
		return 2;
	}
	o = (struct lr_opts){.path = l.path, .pub = l.pub, .key_dir = l.key_dir};
	jb_raw(&x.b, "", 0);
	if (!run)
		cli_note_read("export", l.path, NULL, 0);
	if (run ? export_run(&x, &o, run, &r) < 0 : export_all(&x, &o, &r) < 0) {
		fclose(x.out);
		jb_free(&x.b);
		return 2;
	}
	rc = fclose(x.out) || x.broken ? 2 : lr_result(r)->rc ? 1 : 0;
	cli_note_verify(lr_result(r), l.path);
	lr_close(r);
	jb_free(&x.b);
	return rc;
}
