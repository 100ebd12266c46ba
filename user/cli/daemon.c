#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "daemon/client.h"
#include "daemon/config.h"
#include "daemon/server.h"
#include "engine/engine.h"
#include "util.h"

#define EXIT_RUNSEAL  125 /* runseal itself failed: the command did not run */
#define TRIGGERS_MAX  16
#define ARGV_SENT_MAX 8192 /* bytes of argv in a step request, half a frame */

/* ---- runseal daemon ----------------------------------------------------------------------- */

static const char usage_daemon[] =
    "usage: runseal daemon [--config FILE] [--socket PATH] [--group NAME] [--log-dir DIR]\n"
    "                      [--key-dir DIR] [OPTIONS]\n"
    "\n"
    "Runs in the foreground as the host's sidecar: loads the BPF programs once, listens on\n"
    "the socket, and traces and seals into one chain every run that clients (runseal exec,\n"
    "runseal-sh, begin/end, the Ansible callback) open. Logs to stderr. SIGHUP re-reads the\n"
    "config file (group, socket mode, limits; socket and directories at restart); SIGTERM\n"
    "seals the open segment and records which runs were open.\n"
    "\n"
    "options (each also a key of the config file, with '_' for '-'):\n"
    "      --config FILE          config file (default " CONF_DEFAULT ", may be missing)\n"
    "      --socket PATH          listen here (default " CONF_SOCKET_DEFAULT ")\n"
    "      --group NAME           who besides root may open runs (default " CONF_GROUP_DEFAULT ")\n"
    "      --socket-mode MODE     of the socket, owned root:GROUP (default 0660)\n"
    "      --log-dir DIR          sealed log (default /var/lib/runseal/log)\n"
    "      --key-dir DIR          signing keys (default /etc/runseal/keys, made on first use)\n"
    "      --replica DIR          copy each sealed segment here too (repeatable)\n"
    "      --checkpoint SECONDS   seal at least this often (default: the keys' interval)\n"
    "      --ringbuf-size BYTES   kernel ring buffer, a power of two (default 16777216)\n"
    "      --max-clients N        connections at once (default 1024)\n"
    "      --client-timeout S     for half a message or unread replies (default 10)\n"
    "  -h, --help                 show this help\n"
    "\n"
    "The protocol is in docs/PROTOCOL.md; scripts/runseal.service runs this under systemd.\n";

static const struct option daemon_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"socket", required_argument, NULL, 0},
    {"group", required_argument, NULL, 0},
    {"socket-mode", required_argument, NULL, 0},
    {"log-dir", required_argument, NULL, 0},
    {"key-dir", required_argument, NULL, 0},
    {"replica", required_argument, NULL, 0},
    {"checkpoint", required_argument, NULL, 0},
    {"ringbuf-size", required_argument, NULL, 0},
    {"max-clients", required_argument, NULL, 0},
    {"client-timeout", required_argument, NULL, 0},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* The engine's warnings, to stderr (the journal under systemd). */
static void say_warning(void *ctx, const char *msg)
{
	(void)ctx;
	warnx("%s", msg);
}

int daemon_cmd(int argc, char **argv)
{
	struct daemon_conf flags, conf;
	const char *file = NULL, *replicas[CONF_REPLICAS_MAX];
	char err[1024];
	struct engine *e;
	int c, li, rc;

	conf_defaults(&flags);
	while ((c = getopt_long(argc, argv, "h", daemon_opts, &li)) != -1) {
		if (c == 'h') {
			fputs(usage_daemon, stdout);
			return 0;
		}
		if (c == 'c') {
			file = optarg;
		} else if (c != 0 ||
			   conf_set(&flags, daemon_opts[li].name, optarg, err, sizeof(err)) < 0) {
			if (c == 0)
				fprintf(stderr, "runseal daemon: --%s\n", err);
			else
				fputs(usage_daemon, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(usage_daemon, stderr);
		return 2;
	}
	conf_defaults(&conf);
	if (conf_load(&conf, file ? file : CONF_DEFAULT, !file, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal daemon: %s\n", err);
		return 2;
	}
	conf_merge(&conf, &flags);
	for (size_t i = 0; i < conf.nreplicas; i++)
		replicas[i] = conf.replicas[i];
	struct engine_opts eo = {
	    .log_dir = conf.log_dir,
	    .key_dir = conf.key_dir,
	    .replicas = replicas,
	    .nreplicas = conf.nreplicas,
	    .ringbuf_bytes = conf.ringbuf_bytes,
	    .checkpoint_s = conf.checkpoint_s,
	    .warn = say_warning,
	    .log_notice = cli_notice,
	};
	if (geteuid() != 0) {
		fputs("runseal daemon: needs root (it loads BPF programs and writes the sealed "
		      "log)\n",
		      stderr);
		return 2;
	}
	if (engine_open(&e, &eo, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal daemon: %s\n", err);
		return 2;
	}
	rc = server_run(e, &conf, file ? file : CONF_DEFAULT, &flags, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "runseal daemon: %s\n", err);
	else
		fputs("runseal daemon: stopped; the log is sealed\n", stderr);
	engine_close(e);
	return rc < 0 ? 1 : 0;
}

/* ---- clients ------------------------------------------------------------------------------- */

static int client_fail(const char *cmd, const struct rs_client *c, int rc)
{
	fprintf(stderr, "runseal %s: %s (%s)\n", cmd, c->err, c->code);
	return rc;
}

static int add_trigger(const char *cmd, char **kv, size_t *n, char *arg)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg || *n == TRIGGERS_MAX) {
		fprintf(stderr, "runseal %s: --trigger %s: expected KEY=VALUE (at most %d)\n", cmd,
			arg, TRIGGERS_MAX);
		return -1;
	}
	kv[(*n)++] = arg;
	return 0;
}

static void put_triggers(struct rs_client *c, char **kv, size_t n)
{
	pe_obj(&c->req, "trigger");
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(kv[i], '=');

		*eq = '\0';
		pe_str(&c->req, kv[i], eq + 1);
		*eq = '=';
	}
	pe_obj_end(&c->req);
}

static const char usage_exec[] =
    "usage: runseal exec [--runbook NAME] [--step NAME] [--run ID [--step-seq N]]\n"
    "                    [--trigger KEY=VALUE]... [--socket PATH] -- COMMAND [ARG]...\n"
    "\n"
    "Runs COMMAND with it and all its descendants traced by the runseal daemon and\n"
    "attributed to a step: of a new run named NAME (default \"exec\"), or of the open run\n"
    "ID (from runseal begin). With --step-seq, the command joins that open step instead of\n"
    "opening its own. The exit status is COMMAND's; 125 when runseal could not put it under\n"
    "trace (then it does not run), 126/127 when it cannot be executed or found.\n"
    "The socket is --socket, else $RUNSEAL_SOCKET, else " CONF_SOCKET_DEFAULT ".\n";

struct exec_args {
	const char *runbook, *step, *run, *socket;
	long step_seq;
	char *trig[TRIGGERS_MAX];
	size_t ntrig;
	char **cmd;
};

static int exec_parse(int argc, char **argv, struct exec_args *a)
{
	static const struct option opts[] = {
	    {"runbook", required_argument, NULL, 'b'}, {"step", required_argument, NULL, 's'},
	    {"run", required_argument, NULL, 'r'},     {"step-seq", required_argument, NULL, 'n'},
	    {"trigger", required_argument, NULL, 't'}, {"socket", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},	       {0},
	};
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	a->runbook = "exec";
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			a->runbook = optarg;
			break;
		case 's':
			a->step = optarg;
			break;
		case 'r':
			a->run = optarg;
			break;
		case 'n':
			a->step_seq = strtol(optarg, &end, 10);
			if (*end || a->step_seq < 1) {
				fprintf(stderr,
					"runseal exec: --step-seq %s: expected a step "
					"number from 1\n",
					optarg);
				return 2;
			}
			break;
		case 't':
			if (add_trigger("exec", a->trig, &a->ntrig, optarg) < 0)
				return 2;
			break;
		case 'S':
			a->socket = optarg;
			break;
		case 'h':
			fputs(usage_exec, stdout);
			return 0;
		default:
			fputs(usage_exec, stderr);
			return 2;
		}
	}
	if (optind >= argc || (a->step_seq && !a->run)) {
		fputs(a->step_seq ? "runseal exec: --step-seq needs --run\n" : usage_exec, stderr);
		return 2;
	}
	a->cmd = argv + optind;
	if (!a->step) {
		/* dirname/basename may modify their argument. */
		static char name[256];

		snprintf(name, sizeof(name), "%s", a->cmd[0]);
		a->step = basename(name);
	}
	return -1;
}

/* Opens what the command runs under: a run (unless given) and a step (unless joined). */
static int exec_open(struct rs_client *c, struct exec_args *a, char *run, long *seq)
{
	if (rsc_open(c, a->socket, "runseal-exec " RUNSEAL_VERSION) < 0)
		return -1;
	if (!a->run) {
		rsc_begin(c, "begin");
		pe_str(&c->req, "runbook", a->runbook);
		pe_str(&c->req, "client", "runseal-exec " RUNSEAL_VERSION);
		put_triggers(c, a->trig, a->ntrig);
		if (rsc_call(c) < 0)
			return -1;
		snprintf(run, ENGINE_ID_LEN, "%s", rsc_str(c, "run"));
	} else {
		snprintf(run, ENGINE_ID_LEN, "%s", a->run);
	}
	if (a->step_seq) {
		*seq = a->step_seq;
		return 0;
	}
	rsc_begin(c, "step");
	pe_str(&c->req, "run", run);
	pe_str(&c->req, "name", a->step);
	/* The argv is the client's word, for the step_start record: a long one is cut to fit
	 * a frame (the exec records carry the real one). */
	size_t n = 0, bytes = 0;
	while (a->cmd[n] && bytes + strlen(a->cmd[n]) < ARGV_SENT_MAX && n < 200)
		bytes += strlen(a->cmd[n++]) + 8;
	pe_strs(&c->req, "argv", (const char *const *)a->cmd, n);
	if (a->cmd[n])
		pe_bool(&c->req, "argv_truncated", true);
	if (rsc_call(c) < 0)
		return -1;
	*seq = rsc_int(c, "step", -1);
	return 0;
}

/* In the child: its own connection, so the daemon learns its pid from the kernel; the
 * reply comes once it is traced, and only then does it become the command. */
static void exec_child(struct exec_args *a, const char *run, long seq)
{
	struct rs_client c;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	if (rsc_open(&c, a->socket, "runseal-exec " RUNSEAL_VERSION) < 0)
		_exit(client_fail("exec", &c, EXIT_RUNSEAL));
	rsc_begin(&c, "attach");
	pe_str(&c.req, "run", run);
	pe_int(&c.req, "step", seq);
	if (rsc_call(&c) < 0)
		_exit(client_fail("exec", &c, EXIT_RUNSEAL));
	rsc_close(&c);
	/* A shell the command starts through runseal-sh (cron's SHELL=, inherited) joins this
	 * very step instead of being refused as a traced process leaving its run. */
	char num[24];
	snprintf(num, sizeof(num), "%ld", seq);
	setenv("RUNSEAL_RUN_ID", run, 1);
	setenv("RUNSEAL_RUN", run, 1);
	setenv("RUNSEAL_STEP_SEQ", num, 1);
	execvp(a->cmd[0], a->cmd);
	fprintf(stderr, "runseal exec: %s: %s\n", a->cmd[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static volatile pid_t exec_pid;

static void forward(int sig)
{
	if (exec_pid > 0)
		kill(exec_pid, sig);
}

static int wait_child(pid_t pid)
{
	struct sigaction sa = {.sa_handler = forward};
	int st;

	exec_pid = pid;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A terminal's ^C reaches the command itself; we wait for it to act on it. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

int exec_cmd(int argc, char **argv)
{
	struct exec_args a;
	struct rs_client c;
	char run[ENGINE_ID_LEN];
	long seq;
	pid_t pid;
	int st, rc = exec_parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (exec_open(&c, &a, run, &seq) < 0) {
		rc = client_fail("exec", &c, EXIT_RUNSEAL);
		rsc_close(&c);
		return rc;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("runseal exec: fork");
		return EXIT_RUNSEAL;
	}
	if (pid == 0) {
		close(c.fd);
		exec_child(&a, run, seq);
	}
	st = wait_child(pid);
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (!a.step_seq) {
		rsc_begin(&c, "step_end");
		pe_str(&c.req, "run", run);
		pe_int(&c.req, "step", seq);
		if (WIFEXITED(st)) {
			pe_int(&c.req, "exit_code", WEXITSTATUS(st));
		} else {
			pe_int(&c.req, "signal", WTERMSIG(st));
			pe_str(&c.req, "status", "failed");
		}
		if (rsc_call(&c) < 0)
			client_fail("exec", &c, 0);
	}
	if (!a.run) {
		rsc_begin(&c, "end");
		pe_str(&c.req, "run", run);
		pe_str(&c.req, "status", rc == 0 ? "ok" : "failed");
		if (rsc_call(&c) < 0)
			client_fail("exec", &c, 0);
	}
	rsc_close(&c);
	return rc;
}

static const char usage_begin[] =
    "usage: runseal begin [--trigger KEY=VALUE]... [--socket PATH] NAME\n"
    "\n"
    "Opens a run named NAME in the daemon and prints its id, for several `runseal exec\n"
    "--run ID` calls (an Ansible play, a CI job) and a closing `runseal end ID`.\n";

int begin_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"trigger", required_argument, NULL, 't'},
	    {"socket", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	char *trig[TRIGGERS_MAX];
	size_t ntrig = 0;
	const char *sock = NULL;
	struct rs_client c;
	int o, rc = 0;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 't' && add_trigger("begin", trig, &ntrig, optarg) == 0)
			continue;
		if (o == 'S') {
			sock = optarg;
			continue;
		}
		fputs(usage_begin, o == 'h' ? stdout : stderr);
		return o == 'h' ? 0 : 2;
	}
	if (optind != argc - 1) {
		fputs(usage_begin, stderr);
		return 2;
	}
	if (rsc_open(&c, sock, "runseal-begin " RUNSEAL_VERSION) == 0) {
		rsc_begin(&c, "begin");
		pe_str(&c.req, "runbook", argv[optind]);
		pe_str(&c.req, "client", "runseal-begin " RUNSEAL_VERSION);
		pe_bool(&c.req, "detached", true);
		put_triggers(&c, trig, ntrig);
		rc = rsc_call(&c);
	} else {
		rc = -1;
	}
	if (rc < 0)
		rc = client_fail("begin", &c, 1);
	else
		puts(rsc_str(&c, "run"));
	rsc_close(&c);
	return rc;
}

static const char usage_end[] =
    "usage: runseal end [--status ok|failed|timeout|interrupted|abandoned] [--socket PATH] RUN\n"
    "\n"
    "Closes the run RUN (from runseal begin): its open steps end as abandoned, its processes\n"
    "are no longer traced, and the log is sealed.\n";

int end_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"status", required_argument, NULL, 's'},
	    {"socket", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *sock = NULL, *status = "ok";
	struct rs_client c;
	int o, rc = 0;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 's' || o == 'S') {
			*(o == 's' ? &status : &sock) = optarg;
			continue;
		}
		fputs(usage_end, o == 'h' ? stdout : stderr);
		return o == 'h' ? 0 : 2;
	}
	if (optind != argc - 1) {
		fputs(usage_end, stderr);
		return 2;
	}
	if (rsc_open(&c, sock, "runseal-end " RUNSEAL_VERSION) == 0) {
		rsc_begin(&c, "end");
		pe_str(&c.req, "run", argv[optind]);
		pe_str(&c.req, "status", status);
		rc = rsc_call(&c);
	} else {
		rc = -1;
	}
	if (rc < 0)
		rc = client_fail("end", &c, 1);
	rsc_close(&c);
	return rc;
}

static const char usage_status[] =
    "usage: runseal status [--json] [--socket PATH]\n"
    "\n"
    "The daemon's state: uptime, runs open, events per second, losses, the last seal and\n"
    "segment, free space on the log's filesystem. Exit status 1 when no daemon answers.\n";

/* A reply value back as JSON (arrays hold strings only). */
static void put_value(struct jbuf *b, const struct proto_msg *m, const struct proto_val *v)
{
	switch (v->t) {
	case PV_STR:
		jb_str(b, v->s, v->n);
		break;
	case PV_INT:
		jb_i64(b, v->i);
		break;
	case PV_BOOL:
		jb_raw(b, v->b ? "true" : "false", v->b ? 4 : 5);
		break;
	case PV_ARR:
		jb_putc(b, '[');
		for (size_t k = 0; k < v->count; k++) {
			if (k)
				jb_putc(b, ',');
			put_value(b, m, &m->items[v->first + k].v);
		}
		jb_putc(b, ']');
		break;
	default:
		jb_raw(b, "null", 4);
	}
}

static void status_json(const struct proto_msg *m)
{
	struct jbuf b = {0};

	jb_putc(&b, '{');
	for (size_t i = 0; i < m->nfields; i++) {
		if (!strcmp(m->fields[i].key, "v") || !strcmp(m->fields[i].key, "ok"))
			continue;
		if (b.len > 1)
			jb_putc(&b, ',');
		jb_str(&b, m->fields[i].key, strlen(m->fields[i].key));
		jb_putc(&b, ':');
		put_value(&b, m, &m->fields[i].v);
	}
	jb_raw(&b, "}\n", 2);
	fwrite(b.p, 1, b.len, stdout);
	jb_free(&b);
}

static void status_text(const struct rs_client *c)
{
	const char *seal = rsc_str(c, "last_seal");

	printf("daemon:      %s, pid %lld, up %lld s\n", rsc_str(c, "server"), rsc_int(c, "pid", 0),
	       rsc_int(c, "uptime_s", 0));
	printf("runs:        %lld open, %lld since start\n", rsc_int(c, "runs_open", 0),
	       rsc_int(c, "runs_total", 0));
	printf("events:      %lld (%lld/s over the last minute), %lld lost\n",
	       rsc_int(c, "events", 0), rsc_int(c, "events_per_s", 0), rsc_int(c, "lost", 0));
	printf("log:         %s, segment %lld, last seal %s%s\n", rsc_str(c, "log_dir"),
	       rsc_int(c, "segment", 0), seal ? seal : "none yet",
	       rsc_bool(c, "log_failed") ? ", WRITE FAILED" : "");
	printf("free space:  %lld MiB of %lld MiB\n", rsc_int(c, "log_free_bytes", 0) >> 20,
	       rsc_int(c, "log_size_bytes", 0) >> 20);
	printf("replicas:    %lld, %lld in sync\n", rsc_int(c, "replicas", 0),
	       rsc_int(c, "replicas_in_sync", 0));
	const struct proto_val *v = proto_get(&c->reply, "replica_state");
	for (size_t i = 0; v && v->t == PV_ARR && i < v->count; i++)
		printf("             %s\n", c->reply.items[v->first + i].v.s);
}

int status_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"socket", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *sock = NULL;
	bool json = false;
	struct rs_client c;
	int o, rc = 0;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 'j' || o == 'S') {
			if (o == 'j')
				json = true;
			else
				sock = optarg;
			continue;
		}
		fputs(usage_status, o == 'h' ? stdout : stderr);
		return o == 'h' ? 0 : 2;
	}
	if (optind != argc) {
		fputs(usage_status, stderr);
		return 2;
	}
	if (rsc_open(&c, sock, "runseal-status " RUNSEAL_VERSION) == 0) {
		rsc_begin(&c, "status");
		rc = rsc_call(&c);
	} else {
		rc = -1;
	}
	if (rc < 0)
		rc = client_fail("status", &c, 1);
	else if (json)
		status_json(&c.reply);
	else
		status_text(&c);
	rsc_close(&c);
	return rc;
}
