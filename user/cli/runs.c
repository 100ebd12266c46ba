#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "report/escape.h"
#include "verify.h"

static const char usage[] =
    "usage: runseal runs [LOGDIR] [--json] [--pub FILE] [--key-dir DIR]\n"
    "\n"
    "Verifies the log in LOGDIR (default " LOG_DIR_DEFAULT ") and lists its runs,\n"
    "one line each, newest last: id, [trigger] (the --trigger pairs, or sudo's user,\n"
    "the SSH client, the program that started runseal), runbook, start, duration,\n"
    "status, steps, events, losses and whether it was interrupted, then the\n"
    "verification result.\n"
    "\n"
    "options:\n"
    "      --json          one JSON object per run, then one for the verification\n" CLI_LOG_HELP
    "  -h, --help          show this help\n"
    "\n"
    "exit status: 0 verified, 1 the log has problems, 2 usage error or unreadable log\n";

static void text_line(struct jbuf *b, const struct run_sum *s)
{
	char t[160];
	const char *name = s->runbook_name ? s->runbook_name : "?";

	jb_raw(b, s->id, strlen(s->id));
	jb_raw(b, "  [", 3);
	esc_term(b, s->trigger ? s->trigger : "trigger not recorded",
		 strlen(s->trigger ? s->trigger : "trigger not recorded"));
	jb_raw(b, "]  ", 3);
	esc_term(b, name, strlen(name));
	snprintf(t, sizeof(t), "  %s  %6.1fs  %-10s  %lu steps  %lld events  %lld lost%s\n",
		 s->start[0] ? s->start : "?", s->duration_ms >= 0 ? s->duration_ms / 1000.0 : 0,
		 s->status ? s->status : (s->ended ? "?" : "running"), s->steps,
		 (long long)s->events, (long long)s->lost,
		 s->interrupted ? (s->ended ? "  interrupted" : "  interrupted (no run_end)") : "");
	jb_raw(b, t, strlen(t));
}

static void key(struct jbuf *b, const char *k)
{
	jb_putc(b, b->p && b->len && b->p[b->len - 1] != '{' ? ',' : ' ');
	if (b->p[b->len - 1] == ' ')
		b->len--;
	jb_str(b, k, strlen(k));
	jb_putc(b, ':');
}

static void json_line(struct jbuf *b, const struct run_sum *s)
{
	jb_putc(b, '{');
	key(b, "run");
	jb_str(b, s->id, strlen(s->id));
	key(b, "trigger");
	if (s->trigger)
		jb_str(b, s->trigger, strlen(s->trigger));
	else
		jb_raw(b, "null", 4);
	key(b, "runbook");
	jb_str(b, s->runbook ? s->runbook : "", s->runbook ? strlen(s->runbook) : 0);
	key(b, "runbook_name");
	jb_str(b, s->runbook_name ? s->runbook_name : "",
	       s->runbook_name ? strlen(s->runbook_name) : 0);
	key(b, "start");
	jb_str(b, s->start, strlen(s->start));
	key(b, "duration_ms");
	jb_i64(b, s->duration_ms);
	key(b, "status");
	jb_str(b, s->status ? s->status : "running", strlen(s->status ? s->status : "running"));
	key(b, "steps");
	jb_u64(b, s->steps);
	key(b, "events");
	jb_i64(b, s->events);
	key(b, "lost");
	jb_i64(b, s->lost);
	key(b, "loss_records");
	jb_u64(b, s->losses);
	key(b, "interrupted");
	jb_raw(b, s->interrupted ? "true" : "false", s->interrupted ? 4 : 5);
	key(b, "ended");
	jb_raw(b, s->ended ? "true" : "false", s->ended ? 4 : 5);
	key(b, "first_seq");
	jb_u64(b, s->first_seq);
	key(b, "last_seq");
	jb_u64(b, s->last_seq);
	jb_raw(b, "}\n", 2);
}

static void verify_summary(struct jbuf *b, const struct lr_verify *v, bool json)
{
	char t[512];

	if (json)
		snprintf(
		    t, sizeof(t),
		    "{\"verification\":\"%s\",\"errors\":%lu,\"warnings\":%lu,\"entries\":%" PRIu64
		    ",\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64
		    ",\"seals\":%zu,\"root_key\":\"%s\"}\n",
		    v->rc ? "failed" : "ok", v->errors, v->warnings, v->entries, v->first_seq,
		    v->last_seq, v->nseal, v->root_key);
	else
		snprintf(t, sizeof(t),
			 "%s: %" PRIu64 " entries (seq %" PRIu64 "-%" PRIu64
			 "), %zu seals, %lu errors, %lu warnings, root key id %s\n",
			 v->rc ? "NOT VERIFIED" : "verified", v->entries, v->first_seq, v->last_seq,
			 v->nseal, v->errors, v->warnings, v->root_key);
	jb_raw(b, t, strlen(t));
}

int runs_cmd(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     CLI_LOG_OPTIONS,
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct cli_log l = {0};
	struct run_list runs;
	struct lr_opts o;
	struct jbuf b = {0};
	bool json = false;
	char err[1024];
	int c, rc, stop;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "h", opts, usage, &l, &stop)) != -1) {
		if (c == 'j') {
			json = true;
		}
	}
	if (stop >= 0)
		return stop;
	if (argc - optind > 1) {
		fputs(usage, stderr);
		return 2;
	}
	o = (struct lr_opts){.path = optind < argc ? argv[optind] : LOG_DIR_DEFAULT,
			     .pub = l.pub,
			     .key_dir = l.key_dir};
	if (runs_collect(&runs, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return 2;
	}
	jb_raw(&b, "", 0);
	for (size_t i = 0; i < runs.n; i++)
		(json ? json_line : text_line)(&b, &runs.r[i]);
	verify_summary(&b, lr_result(runs.reader), json);
	rc = cli_write(NULL, b.p, b.len) ? 2 : lr_result(runs.reader)->rc ? 1 : 0;
	cli_note_verify(lr_result(runs.reader), o.path);
	jb_free(&b);
	runs_free(&runs);
	return rc;
}
