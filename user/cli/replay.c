#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "logfmt.h"
#include "report/replay.h"
#include "report/report.h"
#include "verify.h"

#define FOLLOW_GAP_MAX_NS 5000000000ull /* a long quiet spell is shortened to this */

static const char usage[] =
    "usage: runseal replay [LOGDIR|BUNDLE] RUN [--step NAME|N] [--pid PID] [--kind K,...]\n"
    "                      [--since T] [--until T] [--follow[=SPEED]] [--json]\n"
    "\n"
    "Verifies the log (default " LOG_DIR_DEFAULT ") and replays RUN (an id, a\n"
    "unique prefix, or `last`) step by step: each step's command, start, duration and\n"
    "status, then what its processes did in time order, indented by process tree:\n"
    "execs with argv, files opened (r/w/c/t: read, write, create, truncate) and\n"
    "connections, failures with their error.\n"
    "\n"
    "options:\n"
    "      --step S        only step S (its name or its number)\n"
    "      --pid PID       only process PID and its descendants\n"
    "      --kind K,...    only these kinds (exec, open, connect, fork, exit, ...)\n"
    "      --since T, --until T\n"
    "                      only records in this window: RFC 3339 times, or seconds\n"
    "                      from the run's start (e.g. 1.5)\n"
    "      --follow[=SPEED]\n"
    "                      pace the output as it happened, SPEED times faster (1)\n"
    "      --json          the selected records as JSON Lines (seq, hash, depth and\n"
    "                      the record), then the verification result\n" CLI_LOG_HELP
    "  -h, --help          show this help\n"
    "\n"
    "Colour on a terminal only; NO_COLOR turns it off. Strings from the log are shown\n"
    "with control characters and invalid UTF-8 as \\xNN.\n"
    "\n"
    "exit status: 0 verified, 1 the log has problems, 2 usage error, unknown run or step\n";

struct pace {
	double speed;
	uint64_t last;
};

static int emit(void *ctx, const char *text, size_t len, uint64_t t)
{
	struct pace *p = ctx;

	if (p->speed > 0 && p->last && t > p->last) {
		uint64_t gap = (uint64_t)((double)(t - p->last) / p->speed);
		struct timespec ts;

		if (gap > FOLLOW_GAP_MAX_NS)
			gap = FOLLOW_GAP_MAX_NS;
		ts.tv_sec = (time_t)(gap / 1000000000ull);
		ts.tv_nsec = (long)(gap % 1000000000ull);
		nanosleep(&ts, NULL);
	}
	if (t)
		p->last = t;
	if (fwrite(text, 1, len, stdout) != len)
		return 1;
	return p->speed > 0 ? fflush(stdout) : 0;
}

/* RFC 3339, or seconds after the run's start. */
static int when(const char *s, uint64_t start, uint64_t *ns)
{
	char *end;
	double sec;

	if (!parse_time(s, strlen(s), ns))
		return 0;
	errno = 0;
	sec = strtod(s, &end);
	if (errno || *end || end == s || sec < 0)
		return -1;
	*ns = start + (uint64_t)(sec * 1e9);
	return 0;
}

struct args {
	struct cli_log l;
	struct replay_opts o;
	const char *since, *until, *kinds, *run;
	double speed;
};

static int parse(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"step", required_argument, NULL, 's'},  {"pid", required_argument, NULL, 'p'},
	    {"kind", required_argument, NULL, 'k'},  {"since", required_argument, NULL, 'S'},
	    {"until", required_argument, NULL, 'U'}, {"follow", optional_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},	     CLI_LOG_OPTIONS,
	    {"help", no_argument, NULL, 'h'},	     {0}};
	const char *nc = getenv("NO_COLOR");
	char *end;
	int c;

	a->o.pid = -1;
	a->o.colour = isatty(1) && !(nc && *nc);
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (cli_log_opt(&a->l, c, optarg))
			continue;
		switch (c) {
		case 's':
			a->o.step = optarg;
			break;
		case 'p':
			a->o.pid = strtoll(optarg, &end, 10);
			if (*end || a->o.pid < 0) {
				fprintf(stderr, "runseal: --pid %s: not a process id\n", optarg);
				return 2;
			}
			break;
		case 'k':
			a->kinds = optarg;
			break;
		case 'S':
			a->since = optarg;
			break;
		case 'U':
			a->until = optarg;
			break;
		case 'f':
			a->speed = optarg ? strtod(optarg, &end) : 1;
			if (a->speed <= 0 || (optarg && *end)) {
				fprintf(stderr,
					"runseal: --follow=%s: SPEED is a positive number\n",
					optarg);
				return 2;
			}
			break;
		case 'j':
			a->o.json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (argc - optind < 1 || argc - optind > 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (argc - optind == 2)
		a->l.path = argv[optind++];
	a->run = argv[optind];
	return 0;
}

static int windows(struct args *a, const struct m_run *m)
{
	char bad[64];

	if (a->kinds && replay_kinds(a->kinds, &a->o.kinds, bad, sizeof(bad)) < 0) {
		fprintf(stderr, "runseal: --kind: unknown kind %s\n", bad);
		return 2;
	}
	if (a->since && when(a->since, m->start_ns, &a->o.since_ns) < 0) {
		fprintf(stderr, "runseal: --since %s: not a time (RFC 3339 or seconds)\n",
			a->since);
		return 2;
	}
	if (a->until && when(a->until, m->start_ns, &a->o.until_ns) < 0) {
		fprintf(stderr, "runseal: --until %s: not a time (RFC 3339 or seconds)\n",
			a->until);
		return 2;
	}
	return 0;
}

int replay_cmd(int argc, char **argv)
{
	struct args a = {.l.cmd = "replay"};
	struct cli_run cr;
	struct pace p = {0};
	char *vl;
	int rc = parse(&a, argc, argv);

	if (rc)
		return rc == 1 ? 0 : rc;
	rc = cli_open_run(&cr, &a.l, a.run);
	if (rc)
		return rc;
	rc = windows(&a, &cr.m);
	if (rc) {
		cli_close_run(&cr);
		return rc;
	}
	p.speed = a.speed;
	vl = verify_line(&cr.m, lr_result(cr.r));
	if (!a.o.json)
		printf("%s\n", vl);
	if (replay_run(&cr.m, &a.o, emit, &p) < 0) {
		fprintf(stderr, "runseal: run %s has no step %s\n", cr.m.id, a.o.step);
		rc = 2;
	} else if (a.o.json) {
		struct jbuf b = {0};

		jb_raw(&b, "{\"verification\":", 16);
		jb_str(&b, vl, strlen(vl));
		jb_raw(&b, ",\"verified\":", 12);
		jb_raw(&b, lr_result(cr.r)->rc ? "false}\n" : "true}\n",
		       lr_result(cr.r)->rc ? 7 : 6);
		fwrite(b.p, 1, b.len, stdout);
		jb_free(&b);
	}
	free(vl);
	if (fflush(stdout) && !rc)
		rc = 2;
	if (!rc)
		rc = lr_result(cr.r)->rc ? 1 : 0;
	cli_note_verify(lr_result(cr.r), a.l.path ? a.l.path : LOG_DIR_DEFAULT);
	cli_close_run(&cr);
	return rc;
}
