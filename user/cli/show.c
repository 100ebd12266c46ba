/* runseal show: the verified entries of a log, one line each, read through logread. */
#define _GNU_SOURCE
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "json.h"
#include "keys.h"
#include "logread.h"
#include "report/escape.h"
#include "util.h"
#include "verify.h"

static const char usage_show[] =
    "usage: runseal show [LOGDIR] [--run ID] [--json] [--pub FILE] [--key-dir DIR]\n"
    "\n"
    "Verifies the log in LOGDIR (default " LOG_DIR_DEFAULT ") as `runseal\n"
    "verify` does, then prints its entries, one line each: TIME  STEP  KIND  summary.\n"
    "\n"
    "options:\n"
    "      --run ID        only the records of run ID (no log entries)\n"
    "      --json          entries as JSON Lines, each starting with its seq and its\n"
    "                      own hash: {\"seq\":N,\"hash\":\"...\",...}\n"
    "      --pub FILE      root.pub to trust (default KEYDIR/root.pub)\n"
    "      --key-dir DIR   where epochs.pub is (default " KEYS_DIR_DEFAULT ")\n"
    "  -h, --help          show this help\n"
    "\n"
    "Only verified entries are printed, in log order: those whose chain and segment\n"
    "seal check out, and the chained entries of a segment not sealed yet. When the\n"
    "log has a problem, the entries before it are printed, a note goes to stderr and\n"
    "the exit status is 1; `runseal verify` lists the problems.\n"
    "\n"
    "exit status: 0 verified, 1 problems found, 2 usage error, unreadable log or keys\n";

enum { OPT_RUN = 256, OPT_JSON, OPT_PUB, OPT_KEYDIR };

/* A run_start, and whether its run_end was shown. */
struct show_run {
	char id[48]; /* as struct lr_ent's run */
	bool ended;
};

struct show {
	const char *run;
	bool json;
	struct jbuf b;
	struct jbuf tmp;
	bool broken; /* stdout failed: the rest is not written */
	struct show_run *runs;
	size_t nruns, capruns;
};

static struct show_run *show_find_run(struct show *sh, const char *id)
{
	for (size_t i = sh->nruns; i-- > 0;)
		if (!strcmp(sh->runs[i].id, id))
			return &sh->runs[i];
	return NULL;
}

static void show_note_run(struct show *sh, const struct lr_ent *e)
{
	struct show_run *r;

	if (e->kind == REC_RUN_START) {
		if (sh->nruns == sh->capruns) {
			sh->capruns = sh->capruns ? sh->capruns * 2 : 64;
			sh->runs = xrealloc(sh->runs, sh->capruns * sizeof(*sh->runs));
		}
		r = &sh->runs[sh->nruns++];
		memset(r, 0, sizeof(*r));
		/* Printed later as is: only the characters of a run id pass. */
		for (size_t i = 0; i < sizeof(r->id) - 1 && i < sizeof(e->run) && e->run[i]; i++)
			r->id[i] =
			    isalnum((unsigned char)e->run[i]) || e->run[i] == '-' ? e->run[i] : '?';
	} else if (e->kind == REC_RUN_END && (r = show_find_run(sh, e->run))) {
		r->ended = true;
	}
}

/* After the entries: a run without its run_end is said to be interrupted. */
static void show_interrupted(struct show *sh)
{
	for (size_t i = 0; i < sh->nruns; i++) {
		if (sh->runs[i].ended)
			continue;
		if (sh->json)
			printf("{\"kind\":\"interrupted\",\"run\":\"%s\"}\n", sh->runs[i].id);
		else
			printf(
			    "-  -  interrupted  run %s never reached run_end (runseal was killed, "
			    "or the run is still going)\n",
			    sh->runs[i].id);
	}
}

/* A string token, decoded and escaped for the terminal. */
static void put_tokstr(struct show *sh, const struct jtok *t)
{
	sh->tmp.len = 0;
	if (json_unstr(t, &sh->tmp) == 0)
		esc_term(&sh->b, sh->tmp.p, sh->tmp.len);
}

/* A field as text: strings decoded and escaped, arrays of strings joined by sep, other
 * values as written. */
static bool put_field(struct show *sh, const struct lr_ent *e, const char *key, const char *sep)
{
	int t = lr_get(e, key);

	if (t < 0)
		return false;
	if (e->tok[t].type == J_STR) {
		put_tokstr(sh, &e->tok[t]);
	} else if (e->tok[t].type == J_ARR) {
		for (unsigned i = 0; i < e->tok[t].count; i++) {
			int x = json_at(e->tok, t, i);

			if (x < 0 || e->tok[x].type != J_STR)
				break;
			if (i)
				jb_raw(&sh->b, sep, strlen(sep));
			put_tokstr(sh, &e->tok[x]);
		}
	} else {
		jb_raw(&sh->b, e->tok[t].s, e->tok[t].n);
	}
	return true;
}

static void put_lit(struct show *sh, const char *s)
{
	jb_raw(&sh->b, s, strlen(s));
}

/* Self-protection records: what was asked, and of whom. */
static void summary_guard(struct show *sh, const struct lr_ent *e, size_t m)
{
	static const char *const keys[][2] = {
	    {"cmd", ""},      {"request", ""},	      {"syscall", ""},	    {"signal", ""},
	    {"name", ""},     {"map_id", "map "},     {"prog_id", "prog "}, {"link_id", "link "},
	    {"owner", "of "}, {"target_pid", "pid "}, {"target", "of "}};

	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		size_t m0 = sh->b.len;

		if (m0 > m)
			put_lit(sh, " ");
		put_lit(sh, keys[i][1]);
		if (!put_field(sh, e, keys[i][0], ""))
			sh->b.len = m0;
	}
}

static void summary_log(struct show *sh, const struct lr_ent *e)
{
	if (e->kind == REC_GENESIS) {
		put_lit(sh, "host ");
		put_field(sh, e, "hostname", "");
		put_lit(sh, " ");
		put_field(sh, e, "host_id", "");
	} else if (e->kind == REC_SEGMENT) {
		put_lit(sh, "segment ");
		put_field(sh, e, "segment", "");
	} else if (e->kind == REC_SEAL) {
		put_lit(sh, "segment ");
		put_field(sh, e, "segment", "");
		put_lit(sh, " sealed (");
		put_field(sh, e, "reason", "");
		put_lit(sh, ") epoch ");
		put_field(sh, e, "epoch", "");
	} else if (e->kind == REC_RECOVERY) {
		put_field(sh, e, "file", "");
		put_lit(sh, " recovered: ");
		put_field(sh, e, "valid_bytes", "");
		put_lit(sh, " valid, ");
		put_field(sh, e, "torn_bytes", "");
		put_lit(sh, " torn bytes");
	}
}

static void summary_run(struct show *sh, const struct lr_ent *e)
{
	switch (e->kind) {
	case REC_STEP_END:
	case REC_RUN_END:
		put_field(sh, e, "status", "");
		if (e->kind == REC_STEP_END) {
			put_lit(sh, " exit_code ");
			put_field(sh, e, "exit_code", "");
		}
		break;
	case REC_RUN_START:
		put_field(sh, e, "runbook_name", "");
		put_lit(sh, " ");
		put_field(sh, e, "runbook", "");
		break;
	case REC_LOSS:
		put_field(sh, e, "count", "");
		put_lit(sh, " events lost");
		if (lr_get(e, "reason") >= 0) {
			put_lit(sh, " (");
			put_field(sh, e, "reason", "");
			put_lit(sh, ")");
		}
		break;
	case REC_RUN_INTERRUPTED:
		put_lit(sh, "run ");
		put_field(sh, e, "interrupted_run", "");
		put_lit(sh, " was interrupted");
		break;
	default:
		summary_log(sh, e);
	}
}

/* One line's summary of an entry: what a reader scanning the log needs of its kind. */
static void summary(struct show *sh, const struct lr_ent *e)
{
	size_t m = sh->b.len;
	int t;

	switch (e->kind) {
	case REC_EXEC:
	case REC_STEP_START:
		put_field(sh, e, "argv", " ");
		break;
	case REC_OPEN:
		put_field(sh, e, "path", "");
		put_lit(sh, " [");
		put_field(sh, e, "flags", ",");
		put_lit(sh, "]");
		if (lr_get(e, "fd") >= 0) {
			put_lit(sh, " fd ");
			put_field(sh, e, "fd", "");
		}
		break;
	case REC_CONNECT:
		if (!put_field(sh, e, "addr", "")) {
			put_field(sh, e, "path", "");
		} else {
			put_lit(sh, ":");
			put_field(sh, e, "port", "");
		}
		break;
	case REC_FORK:
		put_lit(sh, "child ");
		put_field(sh, e, "child_pid", "");
		break;
	case REC_EXIT:
		put_lit(sh, "exit_code ");
		put_field(sh, e, "exit_code", "");
		break;
	case REC_BPF:
	case REC_PTRACE:
	case REC_SIGNAL:
	case REC_PROCESS_VM:
	case REC_PIDFD_GETFD:
	case REC_PERF_EVENT_OPEN:
	case REC_MEMFD_CREATE:
	case REC_MODULE_LOAD:
		summary_guard(sh, e, m);
		break;
	default:
		summary_run(sh, e);
	}
	/* Failures of kernel events: the errno name. */
	if (e->kind != REC_STEP_END && e->kind != REC_RUN_END && (t = lr_get(e, "error")) >= 0 &&
	    e->tok[t].type == J_STR) {
		put_lit(sh, sh->b.len > m ? " = " : "= ");
		put_tokstr(sh, &e->tok[t]);
	}
}

static bool is_log_entry(const struct lr_ent *e)
{
	return e->kind == REC_GENESIS || e->kind == REC_SEGMENT || e->kind == REC_SEAL ||
	       e->kind == REC_RECOVERY;
}

/* Called by the reader on each verified entry, in order: printed at once and not kept, so
 * that show of a whole log holds one entry at a time. */
static bool show_entry(void *ctx, const struct lr_ent *e)
{
	struct show *sh = ctx;

	if (sh->broken ||
	    (sh->run && (is_log_entry(e) || lr_get(e, "run") < 0 || strcmp(e->run, sh->run))))
		return false;
	if (e->kind == REC_RUN_START || e->kind == REC_RUN_END)
		show_note_run(sh, e);
	sh->b.len = 0;
	if (sh->json) {
		char pre[128], hx[65];

		hex(e->hash, 32, hx);
		jb_raw(&sh->b, pre,
		       (size_t)snprintf(pre, sizeof(pre), "{\"seq\":%" PRIu64 ",\"hash\":\"%s\",",
					e->seq, hx));
		jb_raw(&sh->b, e->line + e->body, e->len - e->body);
	} else {
		put_field(sh, e, "time", "");
		put_lit(sh, "  ");
		if (!put_field(sh, e, "step", ""))
			put_lit(sh, "-");
		put_lit(sh, "  ");
		esc_term(&sh->b, e->kind_name, strlen(e->kind_name));
		put_lit(sh, "  ");
		summary(sh, e);
	}
	jb_putc(&sh->b, '\n');
	if (fwrite(sh->b.p, 1, sh->b.len, stdout) != sh->b.len)
		sh->broken = true;
	return false;
}

int show_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"run", required_argument, NULL, OPT_RUN},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"pub", required_argument, NULL, OPT_PUB},
	    {"key-dir", required_argument, NULL, OPT_KEYDIR},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct show sh = {0};
	struct lr_opts lo = {.path = LOG_DIR_DEFAULT};
	struct logread *r;
	char err[1024];
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_RUN:
			sh.run = optarg;
			break;
		case OPT_JSON:
			sh.json = true;
			break;
		case OPT_PUB:
			lo.pub = optarg;
			break;
		case OPT_KEYDIR:
			lo.key_dir = optarg;
			break;
		case 'h':
			fputs(usage_show, stdout);
			return 0;
		default:
			fputs(usage_show, stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		fputs(usage_show, stderr);
		return 2;
	}
	if (optind < argc)
		lo.path = argv[optind];
	/* --run as given (a prefix, too): show reads every entry and keeps the run's. */
	cli_note_read("show", lo.path, (const char *const[]){sh.run}, sh.run ? 1 : 0);
	/* Pulled as it verifies: one segment in memory, however long the log. */
	if (lr_stream(&r, &lo, err, sizeof(err)) < 0) {
		r = NULL;
	} else {
		const struct lr_ent *e;

		while (!sh.broken && (e = lr_next(r)))
			show_entry(&sh, e);
		if (lr_error(r))
			snprintf(err, sizeof(err), "%s", lr_error(r));
	}
	if (!r || lr_error(r)) {
		sh.tmp.len = 0;
		esc_term(&sh.tmp, err, strlen(err));
		fprintf(stderr, "runseal: %.*s\n", (int)sh.tmp.len, sh.tmp.p);
		rc = 2;
	} else {
		rc = lr_result(r)->rc;
		if (!sh.broken)
			show_interrupted(&sh);
	}
	lr_close(r);
	fflush(stdout);
	free(sh.runs);
	jb_free(&sh.b);
	jb_free(&sh.tmp);
	if (rc == 1)
		fprintf(
		    stderr,
		    "runseal: %s did not verify: only the entries before the first problem were "
		    "shown; `runseal verify` lists the problems\n",
		    lo.path);
	return rc;
}
