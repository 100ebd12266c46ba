/* runseal: run operational runbooks and prove what they did. Command-line entry point. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "runner.h"
#include "trigger.h"
#include "util.h"
#include "verify.h"
#include "cli/cmds.h"
#include "cli/common.h"

static const char usage_main[] =
    "usage: runseal COMMAND [OPTIONS]\n"
    "\n"
    "Run operational runbooks, record with eBPF every exec, file open and connect their\n"
    "processes make, attributed to the step that caused it, and seal the records into a\n"
    "signed, hash-chained, forward-secure log.\n"
    "\n"
    "commands:\n"
    "  run RUNBOOK      run a runbook's steps, record and seal what they did (root)\n"
    "  keygen           create the host's signing keys (root key, epoch keys)\n"
    "  keys tick        erase the epoch key of an ended epoch (for cron or a timer)\n"
    "  verify [LOGDIR]  check a sealed log and its replicas: complete and unaltered?\n"
    "  show [LOGDIR]    print the records of a log after verifying them\n"
    "  runs [LOGDIR]    list the runs of a log: trigger, runbook, status, losses\n"
    "  report RUN       a run's report for reviewers and auditors (md, html, json)\n"
    "  replay RUN       a run step by step: commands, then the process trees\n"
    "  diff RUN_A RUN_B what one run of a runbook did and the other did not\n"
    "  evidence RUN     a bundle (.tar.gz) that verifies offline, with its reports\n"
    "  export           records as OCSF, ECS or JSON Lines for a SIEM\n"
    "  daemon           the host's sidecar: traces and seals every run clients open (root)\n"
    "  exec -- COMMAND  run COMMAND traced by the daemon, as a step of a run\n"
    "  begin NAME       open a run in the daemon for several exec calls; prints its id\n"
    "  end RUN          close a run opened by begin\n"
    "  status           the daemon's state: runs, events/s, losses, last seal, free space\n"
    "  version          print the version\n"
    "  help [COMMAND]   show this help, or a command's (also COMMAND --help)\n"
    "\n"
    "exit status of run: 0 ok, 1 a step failed, 2 usage or set-up error (nothing ran),\n"
    "3 events lost (--strict); of verify and show: 0 intact, 1 problems, 2 usage or I/O;\n"
    "of diff: 0 same, 1 differs. Commands that read a log also read an evidence bundle.\n";

static const char usage_run[] =
    "usage: runseal run [OPTIONS] RUNBOOK\n"
    "\n"
    "Runs RUNBOOK's steps in order. Each step's process tree (children, daemons that\n"
    "double-fork, threads) is traced in the kernel and put in its own cgroup; its exec,\n"
    "fork, exit, open and connect become records attributed to the step, sealed into\n"
    "the log as they happen.\n"
    "\n"
    "options:\n"
    "  -p, --param NAME=VALUE      set a runbook param (repeatable)\n"
    "  -P, --param-file NAME=FILE  read a param from FILE (keeps secrets out of the\n"
    "                              process list); one trailing newline dropped\n"
    "  -e, --events FILE           also write every record as JSON Lines (mode 0600);\n"
    "                              '-' for stdout (step output then goes to stderr)\n"
    "      --strict                exit 3 when events were lost (run 'incomplete')\n"
    "      --lingering leave|kill|wait  processes the steps left running at the end:\n"
    "                              listed and left (default), killed, or traced until\n"
    "                              they exit\n"
    "      --redact-env LIST       env-name substrings whose values are redacted\n"
    "                              (default SECRET,TOKEN,PASSWORD,PASSWD,KEY,CREDENTIAL)\n"
    "      --ringbuf-size N[K|M]   kernel ring buffer, a power of two from 4K (16M)\n"
    "  -q, --quiet                 no progress lines, even on a terminal\n"
    "      --trigger NAME=VALUE    what started this run (a ticket, an alert, a CI job\n"
    "                              URL), recorded in run_start's trigger with the login\n"
    "                              uid, session, sudo user, tty, SSH_CONNECTION and the\n"
    "                              invoker's process ancestry (repeatable)\n"
    "  -h, --help                  show this help\n"
    "tracer:\n"
    "      --daemon                through the runseal daemon (fail when none answers)\n"
    "      --no-daemon             runseal's own tracer and log, even when a daemon runs\n"
    "      --socket PATH           the daemon's socket (default $RUNSEAL_SOCKET, else\n"
    "                              /run/runseal/runseal.sock)\n"
    "  Without either, run uses the daemon when one answers on the socket and no option\n"
    "  below (nor --events, --ringbuf-size) is given; otherwise its own tracer and log.\n"
    "sealed log (runseal's own):\n"
    "      --log-dir DIR           log directory (default " LOG_DIR_DEFAULT ")\n"
    "      --key-dir DIR           signing keys (default " KEYS_DIR_DEFAULT ", made on first use)\n"
    "      --replica DIR           copy each sealed segment and the head here too\n"
    "      --fsync boundary|record fsync at step/run boundaries and seals (default),\n"
    "                              or after every record\n"
    "      --checkpoint SECONDS    seal at least this often (default and maximum: the\n"
    "                              keys' max interval, 60 s)\n"
    "      --on-log-error fail|continue  stop the steps when the log cannot be\n"
    "                              written (default), or go on without it\n"
    "      --no-seal               no sealed log: records go to --events only\n"
    "\n"
    "Secret params never appear in records: every string is redacted to [REDACTED:name]\n"
    "before it is written. A run with lost events ends 'incomplete'.\n"
    "\n"
    "example:\n"
    "  runseal run runbooks/restart-service.yaml -p service=demo-web --events -\n";

/* A value read from a file, so secrets need not be on the command line. */
static char *param_from_file(const char *arg)
{
	const char *eq = strchr(arg, '=');
	char buf[65536];
	size_t n;
	FILE *f;

	if (!eq || eq == arg)
		errx(2, "--param-file %s: expected NAME=FILE", arg);
	f = fopen(eq + 1, "re");
	if (!f)
		err(2, "--param-file %.*s: %s", (int)(eq - arg), arg, eq + 1);
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f) || !feof(f))
		errx(2, "--param-file %s: unreadable or larger than 64 KiB", eq + 1);
	fclose(f);
	if (n && buf[n - 1] == '\n')
		n--;
	if (memchr(buf, '\0', n))
		errx(2, "--param-file %s: value contains a NUL byte", eq + 1);
	return xasprintf("%.*s=%.*s", (int)(eq - arg), arg, (int)n, buf);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"param", required_argument, NULL, 'p'},
	    {"param-file", required_argument, NULL, 'P'},
	    {"events", required_argument, NULL, 'e'},
	    {"strict", no_argument, NULL, 's'},
	    {"redact-env", required_argument, NULL, 'r'},
	    {"ringbuf-size", required_argument, NULL, 'b'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {"log-dir", required_argument, NULL, 'L'},
	    {"key-dir", required_argument, NULL, 'K'},
	    {"replica", required_argument, NULL, 'R'},
	    {"fsync", required_argument, NULL, 'F'},
	    {"checkpoint", required_argument, NULL, 'C'},
	    {"on-log-error", required_argument, NULL, 'O'},
	    {"no-seal", no_argument, NULL, 'N'},
	    {"bpf-floor", no_argument, NULL, 'Z'},
	    {"trigger", required_argument, NULL, 'T'},
	    {"daemon", no_argument, NULL, 'D'},
	    {"no-daemon", no_argument, NULL, 'E'},
	    {"socket", required_argument, NULL, 'S'},
	    {"lingering", required_argument, NULL, 'G'},
	    {0},
	};
	/* Options of the embedded engine's own log and tracer: not the daemon's to take. */
	static const char engine_only[] = "ebLKRFCONZ";
	const char *engine_opt = NULL;
	struct run_opts o = {
	    .log_dir = LOG_DIR_DEFAULT, .key_dir = KEYS_DIR_DEFAULT, .log_notice = cli_notice};
	const char **replicas = NULL, **triggers = NULL;
	char *end;
	unsigned long long sz;
	int c, rc;

	while ((c = getopt_long(argc, argv, "p:P:e:qh", opts, NULL)) != -1) {
		for (const struct option *op = opts; op->name && c > 0 && strchr(engine_only, c);
		     op++)
			if (op->val == c && !engine_opt)
				engine_opt = op->name;
		switch (c) {
		case 'p':
		case 'P':
			if (c == 'p' && !strchr(optarg, '='))
				errx(2, "--param %s: expected NAME=VALUE", optarg);
			o.params = xrealloc(o.params, (o.nparams + 1) * sizeof(char *));
			o.params[o.nparams++] =
			    c == 'p' ? xstrdup(optarg) : param_from_file(optarg);
			break;
		case 'e':
			o.events = optarg;
			break;
		case 's':
			o.strict = true;
			break;
		case 'G':
			if (!strcmp(optarg, "leave"))
				o.lingering = LINGER_LEAVE;
			else if (!strcmp(optarg, "kill"))
				o.lingering = LINGER_KILL;
			else if (!strcmp(optarg, "wait"))
				o.lingering = LINGER_WAIT;
			else
				errx(2, "--lingering %s: expected leave, kill or wait", optarg);
			break;
		case 'r':
			o.redact_env = optarg;
			break;
		case 'b':
			errno = 0;
			sz = strtoull(optarg, &end, 10);
			if (*end == 'K' || *end == 'k')
				sz <<= 10, end++;
			else if (*end == 'M' || *end == 'm')
				sz <<= 20, end++;
			if (errno || *end || sz < 4096 || sz > (1ull << 30) || (sz & (sz - 1)))
				errx(2,
				     "--ringbuf-size %s: expected a power of two from 4K to 1024M",
				     optarg);
			o.ringbuf_bytes = (size_t)sz;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'L':
			o.log_dir = optarg;
			break;
		case 'K':
			o.key_dir = optarg;
			break;
		case 'R':
			replicas = xrealloc(replicas, (o.nreplicas + 1) * sizeof(char *));
			replicas[o.nreplicas++] = optarg;
			o.replicas = replicas;
			break;
		case 'F':
			if (strcmp(optarg, "boundary") && strcmp(optarg, "record"))
				errx(2, "--fsync %s: expected boundary or record", optarg);
			o.fsync_record = !strcmp(optarg, "record");
			break;
		case 'C':
			errno = 0;
			sz = strtoull(optarg, &end, 10);
			if (errno || *end || !sz || sz > 86400)
				errx(2, "--checkpoint %s: expected seconds from 1 to 86400",
				     optarg);
			o.checkpoint_s = (unsigned)sz;
			break;
		case 'O':
			if (strcmp(optarg, "fail") && strcmp(optarg, "continue"))
				errx(2, "--on-log-error %s: expected fail or continue", optarg);
			o.log_keep_going = !strcmp(optarg, "continue");
			break;
		case 'N':
			o.no_seal = true;
			break;
		case 'T':
			if (!trigger_arg_ok(optarg))
				errx(2,
				     "--trigger %s: expected NAME=VALUE (NAME of letters, digits, "
				     "_ - .)",
				     optarg);
			triggers = xrealloc(triggers, (o.ntriggers + 1) * sizeof(char *));
			triggers[o.ntriggers++] = optarg;
			o.triggers = triggers;
			break;
		case 'Z': /* benchmark only, undocumented: see scripts/bench */
			o.bpf_floor = true;
			break;
		case 'D':
			o.tracer = RUN_DAEMON;
			break;
		case 'E':
			o.tracer = RUN_EMBEDDED;
			break;
		case 'S':
			o.socket = optarg;
			break;
		case 'h':
			fputs(usage_run, stdout);
			return 0;
		default:
			fputs(usage_run, stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage_run, stderr);
		return 2;
	}
	o.runbook = argv[optind];
	if (engine_opt && o.tracer == RUN_DAEMON)
		errx(2,
		     "--daemon: --%s is an option of runseal's own log and tracer; the daemon's "
		     "are its own (see runseal daemon --help)",
		     engine_opt);
	/* An explicit log or capture option asks for runseal's own engine. */
	if (engine_opt)
		o.tracer = RUN_EMBEDDED;
	rc = runner_run(&o);
	for (size_t i = 0; i < o.nparams; i++) {
		explicit_bzero(o.params[i], strlen(o.params[i]));
		free(o.params[i]);
	}
	free(o.params);
	free(replicas);
	free(triggers);
	return rc;
}

static const char usage_keygen[] =
    "usage: runseal keygen [--key-dir DIR] [--epoch-seconds N] [--epochs N]\n"
    "                      [--max-interval SECONDS] [--late-slack SECONDS]\n"
    "\n"
    "Creates the host's keys in DIR (default " KEYS_DIR_DEFAULT "): a root key pair that\n"
    "certifies one Ed25519 key per epoch (default 8760 epochs of 3600 s: a year), and the\n"
    "first epoch's seed. The host erases each epoch's key when the epoch ends, so records\n"
    "sealed before a compromise cannot be re-signed after it. Keep root.pub for verifying;\n"
    "move root.key offline. --max-interval bounds how long a record may wait for its seal\n"
    "(default 60 s), --late-slack how much longer a seal may take to be written (default\n"
    "5 s); both are signed into the schedule, and together they must be shorter than an\n"
    "epoch. Existing keys are never overwritten.\n";

static uint64_t num_arg(const char *opt, const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || !v || v > max)
		errx(2, "%s %s: expected a whole number from 1 to %llu", opt, s,
		     (unsigned long long)max);
	return v;
}

static int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key-dir", required_argument, NULL, 'K'},
	    {"epoch-seconds", required_argument, NULL, 'E'},
	    {"epochs", required_argument, NULL, 'N'},
	    {"max-interval", required_argument, NULL, 'M'},
	    {"late-slack", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *dir = KEYS_DIR_DEFAULT;
	uint64_t len = KEYS_EPOCH_SECONDS, n = KEYS_EPOCHS, maxi = KEYS_MAX_INTERVAL;
	uint64_t slack = KEYS_LATE_SLACK;
	char err[KEYS_ERRLEN], rid[65], hid[33];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'K':
			dir = optarg;
			break;
		case 'E':
			len = num_arg("--epoch-seconds", optarg, 31536000);
			break;
		case 'N':
			n = num_arg("--epochs", optarg, 1000000);
			break;
		case 'M':
			maxi = num_arg("--max-interval", optarg, 86400);
			break;
		case 'S':
			slack = num_arg("--late-slack", optarg, 3600);
			break;
		case 'h':
			fputs(usage_keygen, stdout);
			return 0;
		default:
			fputs(usage_keygen, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(usage_keygen, stderr);
		return 2;
	}
	if (keys_generate(dir, (uint64_t)time(NULL), len, n, maxi, slack, 0, rid, hid, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return 2;
	}
	printf("keys created in %s\nhost id:     %s\nroot key id: %s\n"
	       "keep %s/root.pub for verifying; move %s/root.key offline\n",
	       dir, hid, rid, dir, dir);
	return 0;
}

static const char usage_keys[] =
    "usage: runseal keys tick [--key-dir DIR]\n"
    "\n"
    "Erases from DIR (default " KEYS_DIR_DEFAULT ") the seed of every epoch that has\n"
    "ended, even when nothing runs: epoch.key is overwritten in place with the current\n"
    "epoch's seed. A run erases them too, but only when it runs; install the\n"
    "runseal-keys-tick timer (or its cron line) so that a compromise between runs finds\n"
    "no key of an ended epoch. Prints what it erased; nothing when there was nothing.\n";

static int cmd_keys(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key-dir", required_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *dir = KEYS_DIR_DEFAULT;
	char err[KEYS_ERRLEN];
	uint64_t from, to;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'K':
			dir = optarg;
			break;
		case 'h':
			fputs(usage_keys, stdout);
			return 0;
		default:
			fputs(usage_keys, stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || strcmp(argv[optind], "tick")) {
		fputs(usage_keys, stderr);
		return 2;
	}
	if (keys_tick(dir, 0, (uint64_t)time(NULL), &from, &to, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return 2;
	}
	if (to > from)
		printf("%s/epoch.key: erased the seeds of epochs %llu to %llu; now at epoch %llu\n",
		       dir, (unsigned long long)from, (unsigned long long)(to - 1),
		       (unsigned long long)to);
	return 0;
}

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
    /* One command a line. */
    /* clang-format off */
    {"run", cmd_run},
    {"keygen", cmd_keygen},
    {"keys", cmd_keys},
    {"verify", verify_any_cmd},
    {"show", show_cmd},
    {"runs", runs_cmd},
    {"report", report_cmd},
    {"replay", replay_cmd},
    {"diff", diff_cmd},
    {"evidence", evidence_cmd},
    {"export", export_cmd},
    /* the daemon and its clients (user/daemon/) */
    {"daemon", daemon_cmd},
    {"exec", exec_cmd},
    {"begin", begin_cmd},
    {"end", end_cmd},
    {"status", status_cmd},
    /* clang-format on */
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		fputs(usage_main, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    (!strcmp(argv[1], "help") && argc == 2)) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "help")) {
		/* `runseal help CMD` is `runseal CMD --help`. */
		char *h[] = {argv[2], "--help", NULL};

		if (!(c = find_command(argv[2]))) {
			fprintf(stderr, "runseal: unknown command \"%s\"\n", argv[2]);
			return 2;
		}
		return c->fn(2, h);
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		puts("runseal " RUNSEAL_VERSION);
		return 0;
	}
	if ((c = find_command(argv[1])))
		return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "runseal: unknown command \"%s\"\n\n%s", argv[1], usage_main);
	return 2;
}
