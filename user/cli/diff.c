#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "report/diff.h"
#include "report/escape.h"
#include "report/report.h"
#include "verify.h"

#define BASELINES_MAX CLI_OTHERS_MAX

static const char usage[] =
    "usage: runseal diff [LOGDIR] RUN_A RUN_B [--json] [--pub FILE] [--key-dir DIR]\n"
    "       runseal diff [LOGDIR] RUN --baseline-runs N [--json]\n"
    "\n"
    "Verifies the log (default " LOG_DIR_DEFAULT ") and compares two runs of the\n"
    "same runbook step by step: executables run, files written and network\n"
    "destinations found in one run only, steps missing or with another status, and\n"
    "large changes of counts or duration. Generated parts of paths (temporary names,\n"
    "pids, run ids, numbers) are normalised, so two routine runs show nothing.\n"
    "With --baseline-runs N, RUN is compared with the N runs of its runbook before it\n"
    "and only what none of them did is shown.\n"
    "\n"
    "options:\n"
    "      --baseline-runs N  compare with the last N earlier runs of the runbook\n"
    "      --json          one JSON object per difference, then a summary\n" CLI_LOG_HELP
    "  -h, --help          show this help\n"
    "\n"
    "Lines: STEP: + WHAT DETAIL (only in B), - (only in A), ~ (changed).\n"
    "\n"
    "exit status: 0 no difference, 1 differences, 2 usage error, unknown run or a log\n"
    "that does not verify\n";

static void print(const struct diff *d, bool json, const char *a, const char *b, const char *vl)
{
	struct jbuf o = {0};

	jb_raw(&o, "", 0);
	for (size_t i = 0; i < d->n; i++) {
		const struct diff_item *x = &d->it[i];

		if (json) {
			jb_raw(&o, "{\"step\":", 8);
			jb_str(&o, x->step, strlen(x->step));
			jb_raw(&o, ",\"what\":", 8);
			jb_str(&o, x->what, strlen(x->what));
			jb_raw(&o, ",\"detail\":", 10);
			jb_str(&o, x->detail, strlen(x->detail));
			jb_raw(&o, ",\"side\":", 8);
			jb_str(&o,
			       x->side > 0   ? "b"
			       : x->side < 0 ? "a"
					     : "changed",
			       x->side > 0   ? 1
			       : x->side < 0 ? 1
					     : 7);
			jb_raw(&o, "}\n", 2);
			continue;
		}
		esc_term(&o, x->step, strlen(x->step));
		jb_raw(&o, x->side > 0 ? ": + " : x->side < 0 ? ": - " : ": ~ ", 4);
		jb_raw(&o, x->what, strlen(x->what));
		jb_putc(&o, ' ');
		esc_term(&o, x->detail, strlen(x->detail));
		jb_putc(&o, '\n');
	}
	if (json) {
		jb_raw(&o, "{\"a\":", 5);
		jb_str(&o, a, strlen(a));
		jb_raw(&o, ",\"b\":", 5);
		jb_str(&o, b, strlen(b));
		jb_raw(&o, ",\"differences\":", 15);
		jb_u64(&o, d->n);
		jb_raw(&o, ",\"verification\":", 16);
		jb_str(&o, vl, strlen(vl));
		jb_raw(&o, "}\n", 2);
	} else {
		char t[200];

		snprintf(t, sizeof(t), "%zu difference(s) between %s (A) and %s (B)\n", d->n, a, b);
		jb_raw(&o, t, strlen(t));
		jb_raw(&o, vl, strlen(vl));
		jb_putc(&o, '\n');
	}
	cli_write(NULL, o.p, o.len);
	jb_free(&o);
}

struct pick {
	long nbase;    /* --baseline-runs N, or 0 */
	const char *a; /* RUN_A otherwise */
};

/* The run(s) B is compared with, read in the same pass as B. */
static int pick_others(struct cli_run *cr, void *ctx)
{
	const struct pick *p = ctx;

	if (p->nbase) {
		cr->nother = runs_before(&cr->runs, cr->sum, cr->osum, (size_t)p->nbase);
		if (!cr->nother) {
			fprintf(stderr,
				"runseal: run %s: no earlier run of its runbook to compare with\n",
				cr->sum->id);
			return 2;
		}
		return 0;
	}
	return cli_pick_other(cr, p->a, "");
}

int diff_cmd(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"baseline-runs", required_argument, NULL, 'n'},
					     CLI_LOG_OPTIONS,
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct cli_log l = {.cmd = "diff"};
	struct cli_run b;
	struct pick p = {0};
	struct diff d = {0};
	bool json = false;
	long nbase = 0;
	int c, rc, want, stop;
	char *end;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "h", opts, usage, &l, &stop)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'n') {
			nbase = strtol(optarg, &end, 10);
			if (*end || nbase < 1 || nbase > BASELINES_MAX) {
				fprintf(stderr,
					"runseal: --baseline-runs %s: a number from 1 to %d\n",
					optarg, BASELINES_MAX);
				return 2;
			}
		}
	}
	if (stop >= 0)
		return stop;
	want = nbase ? 1 : 2;
	if (argc - optind < want || argc - optind > want + 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (argc - optind == want + 1)
		l.path = argv[optind++];
	p.nbase = nbase;
	p.a = nbase ? NULL : argv[optind];
	rc = cli_open_runs(&b, &l, argv[argc - 1], pick_others, &p);
	if (rc)
		return rc;
	if (lr_result(b.r)->rc) {
		cli_note_verify(lr_result(b.r), l.path ? l.path : LOG_DIR_DEFAULT);
		cli_close_run(&b);
		return 2;
	}
	if (nbase) {
		const struct m_run *bm[CLI_OTHERS_MAX];

		for (size_t i = 0; i < b.nother; i++)
			bm[i] = &b.other[i];
		diff_baselines(&d, bm, b.nother, &b.m);
	} else {
		diff_runs(&d, &b.other[0], &b.m);
	}
	{
		char *vl = verify_line(&b.m, lr_result(b.r));

		print(&d, json, nbase ? "baseline runs" : b.other[0].id, b.m.id, vl);
		free(vl);
		rc = d.n ? 1 : 0;
	}
	diff_free(&d);
	cli_close_run(&b);
	return rc;
}
