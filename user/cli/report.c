#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "report/diff.h"
#include "report/report.h"
#include "verify.h"

static const char usage[] =
    "usage: runseal report [LOGDIR|BUNDLE] RUN [--format md|html|json] [-o FILE]\n"
    "                      [--baseline RUN] [--pub FILE] [--key-dir DIR]\n"
    "\n"
    "Verifies the log in LOGDIR (default " LOG_DIR_DEFAULT ", or an evidence\n"
    "bundle) and writes the report of RUN (an id, a unique prefix of 4 characters\n"
    "or more, or `last`): the run's trigger and runbook, the verification result\n"
    "with the key ids and seals that cover it, every step with its process tree,\n"
    "the files written, network destinations, executables, privilege changes,\n"
    "failed operations, losses, interruptions and crash recoveries, and what they\n"
    "show for PCI DSS 10.2/10.3, NIST 800-53 AU-9/AU-10 and SOC 2 CC8.1.\n"
    "\n"
    "options:\n"
    "  -f, --format FMT    md (default), html (one self-contained file) or json\n"
    "  -o, --output FILE   write there instead of stdout\n"
    "      --baseline RUN  add what RUN (an earlier run of the runbook) did not do\n" CLI_LOG_HELP
    "  -h, --help          show this help\n"
    "\n"
    "exit status: 0 written from a verified log, 1 written but the log has problems\n"
    "(the report says so), 2 usage error, unreadable log or unknown run\n";

/* --baseline RUN: read with the run itself. */
static int pick_baseline(struct cli_run *cr, void *ctx)
{
	return cli_pick_other(cr, ctx, "--baseline: ");
}

int report_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},	{"output", required_argument, NULL, 'o'},
	    {"baseline", required_argument, NULL, 'b'}, CLI_LOG_OPTIONS,
	    {"help", no_argument, NULL, 'h'},		{0}};
	struct cli_log l = {.cmd = "report"};
	const char *fmt = "md", *out = NULL, *base = NULL;
	struct cli_run cr;
	struct jbuf b = {0};
	struct doc d;
	struct diff df = {0};
	int c, rc, stop;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "f:o:h", opts, usage, &l, &stop)) != -1) {
		if (c == 'f') {
			fmt = optarg;
		} else if (c == 'o') {
			out = optarg;
		} else if (c == 'b') {
			base = optarg;
		}
	}
	if (stop >= 0)
		return stop;
	if (argc - optind < 1 || argc - optind > 2 ||
	    (strcmp(fmt, "md") && strcmp(fmt, "html") && strcmp(fmt, "json"))) {
		fprintf(stderr, "%s%s",
			argc - optind < 1 || argc - optind > 2
			    ? ""
			    : "runseal: --format must be md, html or json\n",
			usage);
		return 2;
	}
	if (argc - optind == 2)
		l.path = argv[optind++];
	rc = cli_open_runs(&cr, &l, argv[optind], base ? pick_baseline : NULL, (void *)base);
	if (rc)
		return rc;
	report_build(&d, &cr.m, lr_result(cr.r));
	if (base) {
		diff_runs(&df, &cr.other[0], &cr.m);
		diff_section(&d, &df, &cr.other[0], &cr.m);
	}
	doc_render(&d, fmt, &b);
	rc = cli_write(out, b.p, b.len) ? 2 : lr_result(cr.r)->rc ? 1 : 0;
	cli_note_verify(lr_result(cr.r), l.path ? l.path : LOG_DIR_DEFAULT);
	jb_free(&b);
	doc_free(&d);
	diff_free(&df);
	cli_close_run(&cr);
	return rc;
}
