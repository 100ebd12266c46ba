#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "collector.h"
#include "daemon/client.h"
#include "decode.h"
#include "guard.h"
#include "progress.h"
#include "record.h"
#include "redact.h"
#include "runbook.h"
#include "runner.h"
#include "runseal.h"
#include "sealer.h"
#include "util.h"
#include "trigger.h"

#define TAIL_SHOW	4096
#define TAIL_KEEP	8192 /* more than shown, so a secret cut by the window is still redacted */
#define OUTPUT_GRACE_MS 1000
#define POLL_MS		10 /* longest an event waits in the ring when no batch wakes us */
#define STEP_PATH	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum { TAG_RB = 1, TAG_SIG, TAG_OUT, TAG_ERR, TAG_PID, TAG_TIMER, TAG_GRACE, TAG_TICK };

struct capture {
	EVP_MD_CTX *md;
	char ring[TAIL_KEEP];
	uint64_t total;
	bool eof;
};

/* Why a child could not reach its exec: written to a close-on-exec pipe. */
struct child_err {
	int stage;
	int err;
};

enum { STAGE_CGROUP = 1, STAGE_CWD, STAGE_USER, STAGE_EXEC, STAGE_TRACE };
static const char *const stage_names[] = {"", "cgroup", "chdir", "run_as", "exec", "trace"};

struct attempt {
	pid_t pid;
	int pidfd, timerfd, gracefd, errpipe, go;
	uid_t uid;
	int outfd[2];
	struct capture cap[2];
	bool exited, timed_out;
	int status;
	struct child_err cerr;
	uint64_t start;
	char cgroup[PATH_MAX];
};

struct user {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
	char home[PATH_MAX];
	char name[64];
};

struct run {
	const struct run_opts *o;
	struct runbook rb;
	struct rb_binding b;
	struct redactor red;
	struct stream s;
	struct collector col;
	struct guard guard; /* kills the steps if the runner is killed (issue 8) */
	struct progress prog;
	struct sealer seal;
	bool sealing;
	int tickfd; /* once a second: checkpoint seals */
	char id[40];
	char cg_mnt[PATH_MAX];	/* cgroup v2 mount point, "" without one */
	char cg_home[PATH_MAX]; /* the cgroup runseal was started in */
	char cg_run[PATH_MAX];
	int epfd, sigfd, events_fd, passout;
	int devnull; /* opened here: an open in the child would be recorded as the step's */
	char **env;  /* base environment of every step */
	size_t nenv;
	uint32_t seq;
	uint64_t start;
	bool interrupted, log_failed, any_failed;
	size_t steps_run;
	size_t linger_n, linger_killed; /* --lingering: alive after the last step, killed */
	char error[256];		/* the failure that stopped the run, for its run_end */
	/* Through the daemon (docs/DAEMON.md): it traces and seals, the run sends its own
	 * records and its steps attach themselves. */
	bool via_daemon;
	struct rs_client dc;
	const char *socket;
	/* What the tracer saw, from the embedded collector or the daemon (seen()). */
	uint64_t events, lost, tamper;
	bool incomplete;
	pid_t tpids[256];
	uint32_t tsteps[256];
	size_t ntracked;
};

/* ---- small helpers ------------------------------------------------------------------- */

static uint64_t mono(void)
{
	return now_ns(CLOCK_MONOTONIC);
}

static uint64_t real(void)
{
	return now_ns(CLOCK_REALTIME);
}

/* A failure of the machinery (not of a step) stops the run; the first one is what run_end
 * says, and the caller goes on to end the run cleanly: seal, cgroups, records. */
static void run_fail(struct run *r, int e, const char *what)
{
	if (!r->error[0] && e)
		snprintf(r->error, sizeof(r->error), "%s: %s", what, strerror(e));
	else if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "%s", what);
}

static bool run_stopped(const struct run *r)
{
	return r->interrupted || r->log_failed || r->error[0];
}

/* ---- the tracer: embedded, or the daemon's ------------------------------------------ */

/* The collector's warnings, as runseal run says everything else: on stderr. */
static void say_warning(void *ctx, const char *msg)
{
	const struct run *r = ctx;

	warnx("run %s: %s", r->id, msg);
}

static int drain(struct run *r, bool final)
{
	/* The daemon drains its ring itself before each step_end and run_end it writes. */
	return r->via_daemon ? 0 : collector_drain(&r->col, final);
}

/* Refreshes events, losses and the live traced processes of the run. */
static void seen(struct run *r)
{
	if (!r->via_daemon) {
		r->events = r->col.events;
		r->lost = r->col.lost;
		r->tamper = r->col.tamper_attempts;
		r->incomplete = collector_incomplete(&r->col);
		r->ntracked = collector_tracked(&r->col, r->tpids, r->tsteps, 256);
		return;
	}
	rsc_begin(&r->dc, "stats");
	pe_str(&r->dc.req, "run", r->id);
	if (rsc_call(&r->dc) < 0) {
		run_fail(r, 0, "the daemon's stats");
		return;
	}
	r->events = (uint64_t)rsc_int(&r->dc, "events", 0);
	r->lost = (uint64_t)rsc_int(&r->dc, "lost", 0);
	r->tamper = (uint64_t)rsc_int(&r->dc, "tamper_attempts", 0);
	r->incomplete = r->lost || r->tamper;
	r->ntracked = 0;
	const struct proto_val *t = proto_get(&r->dc.reply, "tracked");
	for (size_t i = 0; t && t->t == PV_OBJ && i < t->count && i < 256; i++) {
		const struct proto_item *it = &r->dc.reply.items[t->first + i];

		r->tpids[r->ntracked] = (pid_t)atoi(it->key);
		r->tsteps[r->ntracked++] = (uint32_t)strtoul(it->v.s, NULL, 10);
	}
}

/* Sends data as op's "data" in pieces that fit a frame (escaped, a piece at most doubles;
 * a secret's bytes may take six each), cut at UTF-8 boundaries; 0 once all are answered. */
static int send_pieces(struct run *r, const char *op, const char *name, const char *data, size_t n)
{
	size_t off = 0, max = name ? 2000 : 6000;

	do {
		size_t k = n - off > max ? max : n - off;

		while (off + k < n && k && ((unsigned char)data[off + k] & 0xC0) == 0x80)
			k--;
		rsc_begin(&r->dc, op);
		pe_str(&r->dc.req, "run", r->id);
		if (name)
			pe_str(&r->dc.req, "name", name);
		pe_strn(&r->dc.req, "data", data + off, k);
		pe_bool(&r->dc.req, "more", off + k < n);
		if (rsc_call(&r->dc) < 0)
			return -1;
		off += k;
	} while (off < n);
	return 0;
}

/* The daemon sink: each record goes to the daemon; it is in the log before the reply. */
static int daemon_sink(void *ctx, const struct rec_view *v)
{
	struct run *r = ctx;

	if (send_pieces(r, "record", NULL, v->line, v->len - 1) < 0) {
		warnx("the daemon refused a %s record: %s: %s", rec_kind_name(v->kind), r->dc.code,
		      r->dc.err);
		errno = EIO;
		return -1;
	}
	return 0;
}

/* The daemon redacts the run's events with the same secrets as the records runseal run
 * writes itself (a step's process may put a secret in its argv). */
static int send_secrets(struct run *r)
{
	for (size_t i = 0; i < r->b.n; i++)
		if (r->b.secret[i] && send_pieces(r, "secret", r->b.names[i], r->b.values[i],
						  strlen(r->b.values[i])) < 0) {
			fprintf(stderr, "runseal: the daemon at %s refused secret %s: %s: %s\n",
				r->socket, r->b.names[i], r->dc.code, r->dc.err);
			return -1;
		}
	return 0;
}

/* Whether this run goes through the daemon: forced by --daemon or --no-daemon, else when
 * one answers on the socket. Opens the daemon's run and takes its id. */
static int choose_tracer(struct run *r)
{
	const struct run_opts *o = r->o;

	r->socket = rsc_socket(o->socket);
	if (o->tracer == RUN_EMBEDDED || (o->tracer == RUN_AUTO && geteuid() != 0))
		return uuid7(r->id) < 0 ? -1 : 0;
	if (rsc_open(&r->dc, r->socket, "runseal-run " RUNSEAL_VERSION) < 0) {
		if (o->tracer == RUN_DAEMON) {
			fprintf(stderr, "runseal: --daemon: %s\n", r->dc.err);
			return -1;
		}
		rsc_close(&r->dc);
		return uuid7(r->id) < 0 ? -1 : 0;
	}
	rsc_begin(&r->dc, "begin");
	pe_str(&r->dc.req, "runbook", r->rb.name);
	pe_str(&r->dc.req, "client", "runseal-run " RUNSEAL_VERSION);
	pe_bool(&r->dc.req, "records", true);
	if (rsc_call(&r->dc) < 0 || !rsc_str(&r->dc, "run") ||
	    strlen(rsc_str(&r->dc, "run")) >= sizeof(r->id)) {
		fprintf(stderr, "runseal: the daemon at %s refused the run: %s: %s\n", r->socket,
			r->dc.code, r->dc.err);
		rsc_close(&r->dc);
		return -1;
	}
	snprintf(r->id, sizeof(r->id), "%s", rsc_str(&r->dc, "run"));
	r->via_daemon = true;
	return send_secrets(r);
}

/* In a step's child, before its exec: the child attaches itself, so that the daemon
 * learns its pid from the kernel, not from us. */
static int attach_self(const char *socket, const char *run, uint32_t seq)
{
	struct rs_client c;
	int rc = rsc_open(&c, socket, "runseal-run " RUNSEAL_VERSION);

	if (rc == 0) {
		rsc_begin(&c, "attach");
		pe_str(&c.req, "run", run);
		pe_int(&c.req, "step", seq);
		rc = rsc_call(&c);
	}
	rsc_close(&c);
	if (rc < 0)
		errno = strcmp(c.code, "no_daemon") ? EPERM : ECONNREFUSED;
	return rc;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static int ep_add(struct run *r, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

	return epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void ep_del(struct run *r, int fd)
{
	if (fd >= 0)
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Timeouts are validated by the runbook loader; the clamp keeps the conversion defined. */
static uint64_t timeout_ms(double timeout)
{
	return timeout < RB_TIMEOUT_MAX ? (uint64_t)(timeout * 1000) : RB_TIMEOUT_MAX * 1000ull;
}

static int arm_timer(int fd, uint64_t ms)
{
	struct itimerspec it = {
	    .it_value = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000}};

	if (!ms)
		it.it_value.tv_nsec = 1;
	return timerfd_settime(fd, 0, &it, NULL);
}

/* ---- cgroups ------------------------------------------------------------------------- */

/* Finds the cgroup v2 mount (the unified hierarchy on hybrid hosts) and our own cgroup. */
static void cgroup_init(struct run *r)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], *rel = NULL;
	size_t n = 0;

	r->cg_mnt[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], *sep = strstr(line, " - cgroup2 ");

		if (sep && sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			snprintf(r->cg_mnt, sizeof(r->cg_mnt), "%s", mnt);
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	while (f && getline(&rel, &n, f) > 0)
		if (!strncmp(rel, "0::", 3)) {
			rel[strcspn(rel, "\n")] = '\0';
			snprintf(r->cg_home, sizeof(r->cg_home), "%s%s", r->cg_mnt, rel + 3);
		}
	free(rel);
	if (f)
		fclose(f);
	if (!r->cg_mnt[0])
		return;
	snprintf(r->cg_run, sizeof(r->cg_run), "%s/runseal", r->cg_mnt);
	mkdir(r->cg_run, 0755);
	snprintf(r->cg_run, sizeof(r->cg_run), "%s/runseal/%s", r->cg_mnt, r->id);
	if (mkdir(r->cg_run, 0755) < 0) {
		warn("cgroup %s (steps run without their own cgroup)", r->cg_run);
		r->cg_mnt[0] = r->cg_run[0] = '\0';
	}
}

/* Kills a step's whole tree: cgroup.kill reaches processes that left the process group. */
static void kill_tree(struct attempt *a)
{
	if (a->cgroup[0]) {
		char path[PATH_MAX + 16];
		pid_t pids[1024];

		snprintf(path, sizeof(path), "%s/cgroup.kill", a->cgroup);
		if (write_file(path, "1") < 0) {
			size_t n = cgroup_pids(a->cgroup, pids, 1024);
			for (size_t i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
		}
	}
	kill(-a->pid, SIGKILL);
}

/* Processes that outlive the run (a service a step started) go back to where runseal was
 * started, so that no cgroup of ours is left behind holding them. */
static void cgroup_release(struct run *r, const char *cg)
{
	char path[PATH_MAX + 16], pid[16];
	pid_t pids[1024];
	size_t n = cgroup_pids(cg, pids, 1024);

	snprintf(path, sizeof(path), "%s/cgroup.procs", r->cg_home);
	for (size_t i = 0; i < n; i++) {
		snprintf(pid, sizeof(pid), "%d", pids[i]);
		if (write_file(path, pid) < 0)
			warn("cannot move lingering process %d out of %s", pids[i], cg);
	}
	if (rmdir(cg) < 0 && errno != ENOENT)
		warn("cannot remove cgroup %s", cg);
}

/* ---- environment --------------------------------------------------------------------- */

static void env_add(char ***env, size_t *n, const char *k, const char *v)
{
	*env = xrealloc(*env, (*n + 2) * sizeof(**env));
	(*env)[(*n)++] = xasprintf("%s=%s", k, v);
	(*env)[*n] = NULL;
}

/* Environments hold RUNSEAL_PARAM_* values, secrets among them. */
static void env_free(char **env, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		explicit_bzero(env[i], strlen(env[i]));
		free(env[i]);
	}
	free(env);
}

/* Steps get a small, recorded environment, not whatever the invoker had. */
static void base_env(struct run *r)
{
	static const char *const keep[] = {"HOME", "LANG", "LC_ALL", "TZ",
					   "TERM", "USER", "LOGNAME"};

	env_add(&r->env, &r->nenv, "PATH", STEP_PATH);
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (getenv(keep[i]))
			env_add(&r->env, &r->nenv, keep[i], getenv(keep[i]));
	env_add(&r->env, &r->nenv, "RUNSEAL_RUN_ID", r->id);
	for (size_t i = 0; i < r->b.n; i++) {
		char *k = xasprintf("RUNSEAL_PARAM_%s", r->b.names[i]);

		env_add(&r->env, &r->nenv, k, r->b.values[i]);
		free(k);
	}
}

static void rec_env(struct run *r, const char *key, char *const *env, size_t n)
{
	rec_open(&r->s, key, '{');
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(env[i], '=');
		char *k = strndup(env[i], (size_t)(eq - env[i]));

		if (!k)
			err(2, "out of memory");
		if (redact_env_name(&r->red, k))
			rec_str(&r->s, k, "[REDACTED:env]");
		else
			rec_str(&r->s, k, eq + 1);
		free(k);
	}
	rec_close(&r->s, '}');
}

/* ---- records around steps ------------------------------------------------------------ */

static int emit(struct run *r)
{
	if (rec_end(&r->s) < 0 && !r->log_failed) {
		r->log_failed = true;
		warnx("cannot write records to %s: %s; stopping the run", r->s.failed_sink,
		      strerror(r->s.failed));
	}
	return r->log_failed ? -1 : 0;
}

static void run_start_record(struct run *r)
{
	struct stream *s = &r->s;
	struct utsname u;
	char host[256] = "", sha[65];

	gethostname(host, sizeof(host) - 1);
	uname(&u);
	hex(r->rb.sha256, 32, sha);
	rec_begin(s, REC_RUN_START, real(), r->id, -1);
	rec_str(s, "runbook", r->rb.path);
	rec_str(s, "runbook_name", r->rb.name);
	rec_str(s, "runbook_sha256", sha);
	rec_open(s, "params", '{');
	for (size_t i = 0; i < r->b.n; i++) {
		char *red = xasprintf("[REDACTED:%s]", r->b.names[i]);

		rec_str(s, r->b.names[i], r->b.secret[i] ? red : r->b.values[i]);
		free(red);
	}
	rec_close(s, '}');
	rec_str(s, "host", host);
	rec_str(s, "kernel", u.release);
	rec_str(s, "runseal_version", RUNSEAL_VERSION);
	rec_int(s, "uid", getuid());
	rec_int(s, "euid", geteuid());
	if (getenv("SUDO_UID"))
		rec_str(s, "sudo_uid", getenv("SUDO_UID"));
	rec_int(s, "runseal_pid", getpid());
	rec_str(s, "cgroup", r->cg_run[0] ? r->cg_run : NULL);
	rec_env(r, "env", r->env, r->nenv);
	rec_trigger(s, r->o->triggers, r->o->ntriggers);
	emit(r);
}

static void tail_of(const struct capture *c, char *out, size_t *len)
{
	size_t n = c->total < TAIL_KEEP ? (size_t)c->total : TAIL_KEEP;
	size_t start = (size_t)((c->total - n) % TAIL_KEEP);

	for (size_t i = 0; i < n; i++)
		out[i] = c->ring[(start + i) % TAIL_KEEP];
	*len = n;
}

/* The tail is redacted over more bytes than it shows, then cut, so a secret that straddles
 * the window's start is hidden as well. */
static void rec_output(struct run *r, const char *name, struct capture *c)
{
	unsigned char md[32];
	char key[32], sha[65], buf[TAIL_KEEP], *red;
	size_t n, rn;
	unsigned mdlen = 0;

	EVP_DigestFinal_ex(c->md, md, &mdlen);
	hex(md, 32, sha);
	snprintf(key, sizeof(key), "%s_sha256", name);
	rec_str(&r->s, key, sha);
	snprintf(key, sizeof(key), "%s_bytes", name);
	rec_int(&r->s, key, (int64_t)c->total);
	tail_of(c, buf, &n);
	red = redact(&r->red, buf, n, true, &rn);
	const char *t = red ? red : buf;
	size_t tn = red ? rn : n;
	snprintf(key, sizeof(key), "%s_tail", name);
	rec_strn(&r->s, key, tn > TAIL_SHOW ? t + tn - TAIL_SHOW : t,
		 tn > TAIL_SHOW ? TAIL_SHOW : tn, true);
	free(red);
}

/* ---- one attempt of one step ---------------------------------------------------------- */

static int resolve_user(const char *name, struct user *u)
{
	struct passwd *pw = getpwnam(name);

	if (!pw)
		return -1;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->ngroups = 64;
	if (getgrouplist(name, pw->pw_gid, u->groups, &u->ngroups) < 0)
		u->ngroups = 0;
	snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
	snprintf(u->name, sizeof(u->name), "%s", name);
	return 0;
}

static void child_fail(int fd, int stage)
{
	struct child_err e = {stage, errno};

	if (write(fd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(stage == STAGE_EXEC ? 127 : 126);
}

/* Runs in the forked child: wait until the parent has registered us with the tracer, so the
 * step's first exec is already captured, then become the step. */
struct link {
	const char *socket, *run; /* NULL: the embedded tracer registered us already */
	uint32_t seq;
};

static void child(int go, int errfd, int devnull, int out, int errout, const char *cwd,
		  const struct user *u, char **argv, char **envp, const struct link *l)
{
	extern char **environ;
	sigset_t none;
	char c;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(errout, 2) < 0)
		child_fail(errfd, STAGE_EXEC);
	if (read(go, &c, 1) != 1)
		_exit(126);
	/* Fail closed: a step the daemon does not trace does not run. */
	if (l->socket && attach_self(l->socket, l->run, l->seq) < 0)
		child_fail(errfd, STAGE_TRACE);
	if (cwd && chdir(cwd) < 0)
		child_fail(errfd, STAGE_CWD);
	if (u && (setgroups((size_t)u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 ||
		  setuid(u->uid) < 0))
		child_fail(errfd, STAGE_USER);
	syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
	/* execvp searches the step's PATH, not ours. */
	environ = envp;
	execvp(argv[0], argv);
	child_fail(errfd, STAGE_EXEC);
}

struct prepared {
	char **argv;
	char **env; /* base env plus the step's own */
	size_t nenv, nstep_env;
	char *cwd;
	struct user user;
	bool has_user;
	char error[RB_ERRLEN];
};

static void prepared_free(struct prepared *p)
{
	for (size_t i = 0; p->argv && p->argv[i]; i++)
		free(p->argv[i]);
	free(p->argv);
	env_free(p->env, p->nenv);
	free(p->cwd);
	memset(p, 0, sizeof(*p));
}

static int prepare(struct run *r, const struct rb_step *st, const char *stepname,
		   struct prepared *p)
{
	memset(p, 0, sizeof(*p));
	if (st->run) {
		char *cmd = rb_expand_shell(st->run, &r->b, p->error, sizeof(p->error));

		if (!cmd)
			return -1;
		p->argv = xcalloc(4, sizeof(char *));
		p->argv[0] = xstrdup("/bin/sh");
		p->argv[1] = xstrdup("-c");
		p->argv[2] = cmd;
	} else {
		p->argv = xcalloc(st->argc + 1, sizeof(char *));
		for (size_t i = 0; i < st->argc; i++)
			if (!(p->argv[i] = rb_expand_literal(st->argv[i], &r->b, p->error,
							     sizeof(p->error))))
				return -1;
	}
	if (st->cwd && !(p->cwd = rb_expand_literal(st->cwd, &r->b, p->error, sizeof(p->error))))
		return -1;
	if (st->run_as) {
		if (resolve_user(st->run_as, &p->user) < 0) {
			snprintf(p->error, sizeof(p->error), "run_as: unknown user \"%s\"",
				 st->run_as);
			return -1;
		}
		p->has_user = true;
	}
	for (size_t i = 0; i < r->nenv; i++) {
		const char *e = r->env[i];

		if (p->has_user && (!strncmp(e, "HOME=", 5) || !strncmp(e, "USER=", 5) ||
				    !strncmp(e, "LOGNAME=", 8)))
			continue;
		p->env = xrealloc(p->env, (p->nenv + 2) * sizeof(char *));
		p->env[p->nenv++] = xstrdup(e);
		p->env[p->nenv] = NULL;
	}
	if (p->has_user) {
		env_add(&p->env, &p->nenv, "HOME", p->user.home);
		env_add(&p->env, &p->nenv, "USER", p->user.name);
		env_add(&p->env, &p->nenv, "LOGNAME", p->user.name);
	}
	env_add(&p->env, &p->nenv, "RUNSEAL_STEP", stepname);
	size_t first = p->nenv;
	for (size_t i = 0; i < st->nenv; i++) {
		char *v = rb_expand_literal(st->env[i].value, &r->b, p->error, sizeof(p->error));

		if (!v)
			return -1;
		env_add(&p->env, &p->nenv, st->env[i].key, v);
		free(v);
	}
	p->nstep_env = p->nenv - first;
	return 0;
}

/* Step records carry the step's main process, the one the runner forked. */
static void rec_step_proc(struct run *r, const char *name, const struct attempt *a)
{
	rec_str(&r->s, "step", name);
	if (a->pid > 0) {
		rec_int(&r->s, "pid", a->pid);
		rec_int(&r->s, "ppid", getpid());
		rec_int(&r->s, "tid", a->pid);
	} else {
		rec_null(&r->s, "pid");
	}
	rec_int(&r->s, "uid", a->uid);
}

static void step_start_record(struct run *r, const struct rb_step *st, unsigned attempt,
			      const struct prepared *p, const struct attempt *a)
{
	struct stream *s = &r->s;

	rec_begin(s, REC_STEP_START, real(), r->id, (int)r->seq);
	rec_step_proc(r, st->name, a);
	rec_int(s, "step_seq", r->seq);
	rec_int(s, "attempt", attempt);
	rec_str(s, "mode", st->run ? "shell" : "argv");
	rec_open(s, "argv", '[');
	for (size_t i = 0; p->argv && p->argv[i]; i++)
		rec_item(s, p->argv[i], strlen(p->argv[i]), false);
	rec_close(s, ']');
	rec_str(s, "cwd", p->cwd);
	rec_str(s, "run_as", st->run_as);
	if (st->timeout > 0)
		rec_int(s, "timeout_ms", (int64_t)timeout_ms(st->timeout));
	rec_env(r, "env", p->env ? p->env + p->nenv - p->nstep_env : NULL, p->nstep_env);
	emit(r);
}

static void close_pipes(int (*fds)[2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < 2; j++)
			close_fd(&fds[i][j]);
}

/* The go, error, stdout and stderr pipes of a child; fails closed with none left open. */
static int open_pipes(int (*fds)[2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		fds[i][0] = fds[i][1] = -1;
	for (size_t i = 0; i < n; i++)
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			int e = errno;

			close_pipes(fds, n);
			errno = e;
			return -1;
		}
	return 0;
}

/* Returns -1 with error set when the step could not be started; run->error is set too when
 * the cause stops the whole run (no pipe, no fork). */
static int spawn(struct run *r, struct attempt *a, const struct prepared *p, const char *name,
		 char *error, size_t errlen)
{
	int fds[4][2], *go = fds[0], *ep = fds[1], *out = fds[2], *errp = fds[3];

	if (open_pipes(fds, 4) < 0) {
		run_fail(r, errno, "pipe");
		snprintf(error, errlen, "%s", r->error);
		return -1;
	}
	if (r->cg_run[0]) {
		snprintf(a->cgroup, sizeof(a->cgroup), "%s/%u-%s", r->cg_run, r->seq, name);
		if (mkdir(a->cgroup, 0755) < 0) {
			warn("cgroup %s", a->cgroup);
			a->cgroup[0] = '\0';
		}
	}
	fflush(NULL);
	a->pid = fork();
	if (a->pid < 0) {
		run_fail(r, errno, "fork");
		snprintf(error, errlen, "%s", r->error);
		close_pipes(fds, 4);
		if (a->cgroup[0])
			rmdir(a->cgroup);
		a->cgroup[0] = '\0';
		return -1;
	}
	if (a->pid == 0) {
		close(go[1]);
		close(ep[0]);
		struct link l = {r->via_daemon ? r->socket : NULL, r->id, r->seq};

		child(go[0], ep[1], r->devnull, out[1], errp[1], p->cwd,
		      p->has_user ? &p->user : NULL, p->argv, p->env, &l);
	}
	close(go[0]);
	close(ep[1]);
	close(out[1]);
	close(errp[1]);
	a->errpipe = ep[0];
	a->outfd[0] = out[0];
	a->outfd[1] = errp[0];
	if (a->cgroup[0]) {
		char path[PATH_MAX + 16], pid[16];

		snprintf(path, sizeof(path), "%s/cgroup.procs", a->cgroup);
		snprintf(pid, sizeof(pid), "%d", a->pid);
		if (write_file(path, pid) < 0)
			warn("cannot move step %s into %s", name, a->cgroup);
	}
	if (!r->via_daemon && collector_track(&r->col, a->pid, r->seq) < 0) {
		snprintf(error, errlen, "cannot register the step with the tracer: %s",
			 strerror(errno));
		kill(a->pid, SIGKILL);
		close(go[1]);
		waitpid(a->pid, &a->status, 0);
		return -1;
	}
	a->go = go[1];
	/* Without a pidfd (valgrind, old kernels, no fd left) the loop polls waitpid instead. */
	a->pidfd = (int)syscall(SYS_pidfd_open, a->pid, 0);
	return 0;
}

static void pump(struct run *r, struct attempt *a, int which)
{
	char buf[65536];
	ssize_t n = read(a->outfd[which], buf, sizeof(buf));
	struct capture *c = &a->cap[which];

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		c->eof = true;
		ep_del(r, a->outfd[which]);
		return;
	}
	EVP_DigestUpdate(c->md, buf, (size_t)n);
	for (ssize_t i = 0; i < n; i++)
		c->ring[(c->total + (uint64_t)i) % TAIL_KEEP] = buf[i];
	c->total += (uint64_t)n;
	/* The user sees what the step prints, as it prints it. */
	int fd = which == 0 ? r->passout : 2;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));
		if (w <= 0)
			break;
		off += w;
	}
}

/* A step may kill the guard: another takes its place, at most a second later (issue 8). */
static void check_guard(struct run *r)
{
	char e[256];
	pid_t old = r->guard.pid;
	int rc = guard_check(&r->guard, &r->col, e, sizeof(e));

	if (rc > 0) {
		collector_set_own_pid(&r->col, r->guard.pid);
		warnx("runseal's guard (pid %d) died: started another (pid %d)", old, r->guard.pid);
	} else if (rc < 0) {
		warnx(
		    "runseal's guard (pid %d) died and no other could be started (%s): if runseal "
		    "is killed, its steps go on untraced",
		    old, e);
	}
}

static void on_tick(struct run *r)
{
	uint64_t n;

	if (read(r->tickfd, &n, sizeof(n)) < 0)
		return;
	if (r->sealing && sealer_tick(&r->seal) < 0 && !r->log_failed && !r->o->log_keep_going) {
		r->log_failed = true;
		warnx("cannot seal the log in %s; stopping the run", r->o->log_dir);
	}
	check_guard(r);
}

static void on_signal(struct run *r, struct attempt *a)
{
	struct signalfd_siginfo si;

	if (read(r->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (!r->interrupted)
		warnx("signal %u: stopping the run", si.ssi_signo);
	r->interrupted = true;
	if (a && !a->exited)
		kill_tree(a);
}

/* Puts the attempt's output, exit and timers into the loop; -1 with run->error set. */
static int watch_attempt(struct run *r, struct attempt *a, double timeout)
{
	a->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	a->gracefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (a->timerfd < 0 || a->gracefd < 0) {
		run_fail(r, errno, "timerfd_create");
		return -1;
	}
	if (ep_add(r, a->outfd[0], TAG_OUT) < 0 || ep_add(r, a->outfd[1], TAG_ERR) < 0 ||
	    (a->pidfd >= 0 && ep_add(r, a->pidfd, TAG_PID) < 0) ||
	    ep_add(r, a->timerfd, TAG_TIMER) < 0 || ep_add(r, a->gracefd, TAG_GRACE) < 0) {
		run_fail(r, errno, "epoll_ctl");
		return -1;
	}
	if (timeout > 0 && arm_timer(a->timerfd, timeout_ms(timeout)) < 0) {
		run_fail(r, errno, "timerfd_settime");
		return -1;
	}
	return 0;
}

static void unwatch_attempt(struct run *r, struct attempt *a)
{
	int *fds[] = {&a->outfd[0], &a->outfd[1], &a->pidfd, &a->timerfd, &a->gracefd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		ep_del(r, *fds[i]);
		close_fd(fds[i]);
	}
	if (a->errpipe < 0 || read(a->errpipe, &a->cerr, sizeof(a->cerr)) != sizeof(a->cerr))
		a->cerr.stage = 0;
	close_fd(&a->errpipe);
}

/* The step's main process has exited (or not yet, with 0 from waitpid). */
static void check_exit(struct run *r, struct attempt *a, bool *grace_over)
{
	if (a->exited || waitpid(a->pid, &a->status, WNOHANG) != a->pid)
		return;
	a->exited = true;
	ep_del(r, a->pidfd);
	if (arm_timer(a->gracefd, OUTPUT_GRACE_MS) < 0)
		*grace_over = true;
}

/* When the loop itself fails, the step is not left running unwatched. */
static void reap(struct attempt *a)
{
	if (a->exited)
		return;
	kill_tree(a);
	if (waitpid(a->pid, &a->status, 0) == a->pid)
		a->exited = true;
}

static void on_event(struct run *r, struct attempt *a, uint32_t tag, bool *grace_over)
{
	switch (tag) {
	case TAG_RB:
		if (drain(r, false) < 0 && !r->log_failed)
			emit(r);
		if (r->sealing && sealer_flush(&r->seal) < 0 && !r->log_failed &&
		    !r->o->log_keep_going) {
			r->log_failed = true;
			warn("cannot write the log in %s; stopping the run", r->o->log_dir);
		}
		break;
	case TAG_SIG:
		on_signal(r, a);
		break;
	case TAG_OUT:
		pump(r, a, 0);
		break;
	case TAG_ERR:
		pump(r, a, 1);
		break;
	case TAG_TIMER:
		a->timed_out = true;
		kill_tree(a);
		ep_del(r, a->timerfd);
		break;
	case TAG_GRACE:
		*grace_over = true;
		break;
	case TAG_TICK:
		on_tick(r);
		break;
	case TAG_PID:
		check_exit(r, a, grace_over);
		break;
	}
}

/* Waits until the step's main process has exited and its output is closed (or a short grace
 * after the exit, for a daemon that kept them), draining events all the while. */
static void wait_attempt(struct run *r, struct attempt *a, double timeout)
{
	struct epoll_event evs[16];
	bool grace_over = false;

	if (watch_attempt(r, a, timeout) < 0) {
		reap(a);
		unwatch_attempt(r, a);
		return;
	}
	if (r->interrupted)
		kill_tree(a);
	while (!a->exited || (!grace_over && (!a->cap[0].eof || !a->cap[1].eof))) {
		int n = epoll_wait(r->epfd, evs, 16, POLL_MS);

		if (n < 0 && errno != EINTR) {
			run_fail(r, errno, "epoll_wait");
			reap(a);
			break;
		}
		/* The kernel wakes us only for a full batch; a quiet ring is read here. */
		if (n <= 0) {
			n = 1;
			evs[0].data.u32 = TAG_RB;
		}
		for (int i = 0; i < n; i++)
			on_event(r, a, evs[i].data.u32, &grace_over);
		if (a->pidfd < 0)
			check_exit(r, a, &grace_over);
		/* Fail closed: a step does not go on once its records cannot be written. */
		if (r->log_failed && !a->exited)
			kill_tree(a);
	}
	unwatch_attempt(r, a);
}

static const char *attempt_status(const struct attempt *a)
{
	if (a->timed_out)
		return "timeout";
	if (a->cerr.stage || !WIFEXITED(a->status) || WEXITSTATUS(a->status) != 0)
		return "failed";
	return "ok";
}

/* The step's processes in the kernel's tracked map that are not in its cgroup: a child can
 * move itself to another cgroup, not out of the map (issue 8). */
static size_t add_tracked_of_step(struct run *r, pid_t *pids, size_t n, size_t max)
{
	size_t have = n;

	seen(r);
	for (size_t i = 0; i < r->ntracked && n < max; i++) {
		bool dup = r->tsteps[i] != r->seq;

		for (size_t k = 0; k < have && !dup; k++)
			dup = pids[k] == r->tpids[i];
		if (!dup)
			pids[n++] = r->tpids[i];
	}
	return n;
}

static void step_end_record(struct run *r, const char *name, unsigned attempt, struct attempt *a,
			    const char *status, const char *error)
{
	struct stream *s = &r->s;
	pid_t pids[512];
	size_t n = a->cgroup[0] ? cgroup_pids(a->cgroup, pids, 256) : 0;
	char buf[RB_ERRLEN + 64];

	n = add_tracked_of_step(r, pids, n, 512);
	rec_begin(s, REC_STEP_END, real(), r->id, (int)r->seq);
	rec_step_proc(r, name, a);
	rec_int(s, "step_seq", r->seq);
	rec_int(s, "attempt", attempt);
	rec_str(s, "status", status);
	if (a->pid > 0 && WIFEXITED(a->status))
		rec_int(s, "exit_code", WEXITSTATUS(a->status));
	else if (a->pid > 0 && WIFSIGNALED(a->status))
		rec_int(s, "exit_code", 128 + WTERMSIG(a->status));
	else
		rec_null(s, "exit_code");
	if (a->pid > 0 && WIFSIGNALED(a->status))
		rec_int(s, "signal", WTERMSIG(a->status));
	rec_int(s, "duration_ms", (int64_t)((mono() - a->start) / 1000000));
	if (a->cerr.stage) {
		snprintf(buf, sizeof(buf), "%s: %s", stage_names[a->cerr.stage],
			 strerror(a->cerr.err));
		error = buf;
	}
	if (error)
		rec_str(s, "error", error);
	if (a->pid > 0) {
		rec_output(r, "stdout", &a->cap[0]);
		rec_output(r, "stderr", &a->cap[1]);
	}
	rec_open(s, "lingering", '[');
	for (size_t i = 0; i < n; i++) {
		char p[16];

		snprintf(p, sizeof(p), "%d", pids[i]);
		rec_item(s, p, strlen(p), false);
	}
	rec_close(s, ']');
	emit(r);
}

/* The step starts only now, after its step_start record, so that it comes first. */
static void release(struct attempt *a, const char *name)
{
	if (write(a->go, "g", 1) != 1)
		warn("cannot start step %s", name);
	close(a->go);
}

/* Runs one attempt; returns its status name ("ok", "failed", "timeout"). */
static const char *run_attempt(struct run *r, const struct rb_step *st, unsigned attempt)
{
	struct attempt a;
	struct prepared p;
	const char *status;
	char error[RB_ERRLEN] = "";

	memset(&a, 0, sizeof(a));
	a.pidfd = a.timerfd = a.gracefd = a.errpipe = a.go = a.outfd[0] = a.outfd[1] = -1;
	a.start = mono();
	r->seq++;
	collector_set_step(&r->col, r->seq, st->name);
	progress_step_start(&r->prog, st->name, attempt);
	a.uid = getuid();
	if (prepare(r, st, st->name, &p) < 0) {
		step_start_record(r, st, attempt, &p, &a);
		step_end_record(r, st->name, attempt, &a, "failed", p.error);
		progress_step_end(&r->prog, st->name, "failed", 0);
		warnx("step %s: %s", st->name, p.error);
		prepared_free(&p);
		return "failed";
	}
	for (int i = 0; i < 2; i++) {
		a.cap[i].md = EVP_MD_CTX_new();
		if (!a.cap[i].md || !EVP_DigestInit_ex(a.cap[i].md, EVP_sha256(), NULL))
			run_fail(r, 0, "SHA-256 unavailable (OpenSSL)");
	}
	if (p.has_user)
		a.uid = p.user.uid;
	if (r->error[0] || spawn(r, &a, &p, st->name, error, sizeof(error)) < 0) {
		step_start_record(r, st, attempt, &p, &a);
		status = "failed";
		a.pid = 0;
		if (!error[0])
			snprintf(error, sizeof(error), "%s", r->error);
		warnx("step %s: %s", st->name, error);
	} else {
		step_start_record(r, st, attempt, &p, &a);
		release(&a, st->name);
		wait_attempt(r, &a, st->timeout);
		status = attempt_status(&a);
		if (r->error[0])
			snprintf(error, sizeof(error), "%s", r->error);
		else if (r->interrupted)
			snprintf(error, sizeof(error), "interrupted");
	}
	/* Everything the step's processes did is in the ring buffer by now. */
	drain(r, true);
	step_end_record(r, st->name, attempt, &a, status, error[0] ? error : NULL);
	progress_step_end(&r->prog, st->name, status, (mono() - a.start) / 1000000);
	if (a.cgroup[0] && !cgroup_pids(a.cgroup, (pid_t[1]){0}, 1))
		rmdir(a.cgroup);
	for (int i = 0; i < 2; i++)
		EVP_MD_CTX_free(a.cap[i].md);
	prepared_free(&p);
	r->steps_run++;
	return status;
}

/* Sleeps between retries while still draining events and watching for signals. */
static void pause_ms(struct run *r, uint64_t ms)
{
	uint64_t end = mono() + ms * 1000000;
	struct epoll_event evs[8];

	while (!r->interrupted && mono() < end) {
		int n = epoll_wait(r->epfd, evs, 8, (int)((end - mono()) / 1000000) + 1);

		if (n < 0 && errno != EINTR) {
			run_fail(r, errno, "epoll_wait");
			return;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == TAG_RB)
				drain(r, false);
			else if (evs[i].data.u32 == TAG_SIG)
				on_signal(r, NULL);
			else if (evs[i].data.u32 == TAG_TICK)
				on_tick(r);
		}
	}
}

static bool run_step(struct run *r, const struct rb_step *st)
{
	for (unsigned attempt = 1; attempt <= st->retries + 1; attempt++) {
		if (!strcmp(run_attempt(r, st, attempt), "ok"))
			return true;
		if (run_stopped(r) || attempt > st->retries)
			break;
		pause_ms(r, (uint64_t)(st->retry_delay * 1000));
	}
	return false;
}

static void run_steps(struct run *r, const struct rb_step *steps, size_t n, bool rollback)
{
	for (size_t i = 0; i < n && !run_stopped(r); i++) {
		if (run_step(r, &steps[i]))
			continue;
		r->any_failed = true;
		if (steps[i].on_failure == RB_CONTINUE)
			continue;
		if (steps[i].on_failure == RB_ROLLBACK && !rollback && !run_stopped(r)) {
			run_steps(r, r->rb.rollback, r->rb.nrollback, true);
		}
		break;
	}
}

/* ---- self-protection (issue 8) ------------------------------------------------------- */

static void start_guard(struct run *r)
{
	char e[PATH_MAX + 128];
	int rc = guard_start(&r->guard, &r->col, r->sealing ? r->o->log_dir : NULL, r->id,
			     r->cg_run, r->sealing ? r->seal.lockfd : -1, e, sizeof(e));

	if (rc < 0)
		warnx("no guard for run %s (%s): if runseal is killed, its steps go on untraced",
		      r->id, e);
	else if (rc > 0)
		warnx("run %s: %s", r->id, e);
	if (rc >= 0)
		collector_set_own_pid(&r->col, r->guard.pid);
}

static void rec_pids(struct stream *s, const char *key, const pid_t *pids, size_t n)
{
	rec_open(s, key, '[');
	for (size_t i = 0; i < n; i++) {
		char p[16];

		snprintf(p, sizeof(p), "%d", pids[i]);
		rec_item(s, p, strlen(p), false);
	}
	rec_close(s, ']');
}

/* What the guard found unread in the ring: the syscalls aimed at the runner, its killer's
 * most likely among them (its record was made before the kill took effect). */
static void rec_aimed(struct stream *s, const struct crashed *cr)
{
	rec_int(s, "unread_events", (int64_t)cr->unread);
	rec_open(s, "aimed_at_runseal", '[');
	for (size_t i = 0; i < cr->naimed; i++) {
		const struct aimed *a = &cr->aimed[i];
		const char *sys = collector_guard_sys_name(a->sys);

		rec_open(s, NULL, '{');
		rec_int(s, "pid", a->pid);
		rec_int(s, "step_seq", a->step);
		rec_str(s, "comm", a->comm);
		rec_str(s, "syscall", sys);
		if (sys && (strstr(sys, "kill") || strstr(sys, "signal"))) {
			char buf[24];

			rec_str(s, "signal", decode_signal(a->arg, buf, sizeof(buf)));
		} else if (a->sys == RS_G_PTRACE) {
			rec_str(s, "request", decode_ptrace_request(a->arg));
		}
		rec_close(s, '}');
	}
	rec_close(s, ']');
}

/* A run of this log whose runner was killed: recorded in this run, the next in the chain. */
static void interrupted_record(void *ctx, const struct crashed *cr)
{
	struct run *r = ctx;
	struct stream *s = &r->s;

	rec_begin(s, REC_RUN_INTERRUPTED, real(), r->id, -1);
	rec_str(s, "interrupted_run", cr->run_id);
	rec_int(s, "runseal_pid", cr->runner);
	rec_str(s, "cgroup", cr->cgroup[0] ? cr->cgroup : NULL);
	rec_pids(s, "killed_by_guard", cr->killed, cr->nguard);
	rec_pids(s, "killed_now", cr->killed + cr->nguard, cr->nkilled - cr->nguard);
	rec_pids(s, "sigkilled_unread", cr->stopped, cr->nstopped);
	rec_aimed(s, cr);
	emit(r);
	warnx("run %s was interrupted (runseal pid %d killed before its end); recorded in run %s",
	      cr->run_id, cr->runner, r->id);
}

static void recover_crashed(struct run *r)
{
	char e[256];

	if (r->sealing && guard_recover(r->o->log_dir, interrupted_record, r, e, sizeof(e)) < 0)
		warnx("cannot look for interrupted runs: %s", e);
}

/* Tracked processes that outlive the run, from the kernel's map: a child can leave its
 * step's cgroup, not the map. Once runseal exits, nothing traces them. */
static void rec_tracked_left(struct run *r)
{
	struct stream *s = &r->s;

	rec_open(s, "lingering", '{');
	for (size_t i = 0; i < r->ntracked; i++) {
		char p[16];

		snprintf(p, sizeof(p), "%d", r->tpids[i]);
		rec_str(s, p, r->tsteps[i] < r->col.nsteps ? r->col.steps[r->tsteps[i]] : "?");
	}
	rec_close(s, '}');
}

/* The steps' processes still alive after the last step, as --lingering says: killed (their
 * exits recorded, within 2 s), or traced until they exit (an interruption kills them). */
static void end_lingering(struct run *r)
{
	uint64_t until = mono() + 2000000000ull;

	if (r->o->lingering == LINGER_LEAVE)
		return;
	seen(r);
	if (!r->ntracked)
		return;
	r->linger_n = r->ntracked;
	if (r->o->lingering == LINGER_WAIT)
		while (r->ntracked && !r->interrupted && !r->log_failed && !r->error[0]) {
			pause_ms(r, 100);
			seen(r);
		}
	/* The exit program keeps the map current while the programs are attached: no pid
	 * in it is stale. */
	for (size_t i = 0; i < r->ntracked; i++)
		kill(r->tpids[i], SIGKILL);
	r->linger_killed = r->ntracked;
	while (r->ntracked && mono() < until) {
		drain(r, false);
		usleep(20000);
		seen(r);
	}
	drain(r, false);
}

/* VmHWM, not ru_maxrss: the latter survives exec and may be the invoker's peak. */
static int64_t peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void run_end_record(struct run *r, const char *status)
{
	struct stream *s = &r->s;

	rec_begin(s, REC_RUN_END, real(), r->id, -1);
	rec_str(s, "status", status);
	rec_int(s, "steps", (int64_t)r->steps_run);
	rec_int(s, "events", (int64_t)r->events);
	rec_int(s, "lost", (int64_t)r->lost);
	rec_int(s, "duration_ms", (int64_t)((mono() - r->start) / 1000000));
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	/* What recording cost: runseal's own CPU and memory, its steps not included. */
	rec_int(s, "runseal_cpu_ms",
		(int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000);
	rec_int(s, "runseal_maxrss_kb", peak_rss_kb());
	if (r->interrupted)
		rec_bool(s, "interrupted", true);
	if (r->error[0])
		rec_str(s, "error", r->error);
	else if (r->log_failed)
		rec_str(s, "error", "log write failed");
	rec_int(s, "tamper_attempts", (int64_t)r->tamper);
	rec_int(s, "guard_restarts", r->guard.restarts);
	rec_str(s, "lingering_policy", (const char *[]){"leave", "kill", "wait"}[r->o->lingering]);
	if (r->o->lingering != LINGER_LEAVE) {
		rec_int(s, "lingered", (int64_t)r->linger_n);
		rec_int(s, "lingering_killed", (int64_t)r->linger_killed);
	}
	rec_tracked_left(r);
	emit(r);
}

/* ---- set-up -------------------------------------------------------------------------- */

static int setup_runbook(struct run *r)
{
	const struct run_opts *o = r->o;
	char e[RB_ERRLEN];

	if (runbook_load(o->runbook, &r->rb, e, sizeof(e)) < 0) {
		fprintf(stderr, "runseal: %s\n", e);
		return -1;
	}
	if (runbook_bind(&r->rb, o->params, o->nparams, &r->b, e, sizeof(e)) < 0) {
		fprintf(stderr, "runseal: %s: %s\n", o->runbook, e);
		return -1;
	}
	/* The runbook is checked first, so anyone can validate one; running it takes root. */
	if (geteuid() != 0) {
		fprintf(stderr,
			"runseal: run needs root: it loads BPF programs, creates cgroups and "
			"writes the sealed log (runbook %s is valid)\n",
			o->runbook);
		return -1;
	}
	if (choose_tracer(r) < 0)
		return -1;
	if (rb_binding_set(&r->b, "run_id", r->id) < 0) {
		fprintf(stderr, "runseal: %s: cannot bind run_id\n", o->runbook);
		return -1;
	}
	redact_init(&r->red);
	if (o->redact_env && redact_set_env_patterns(&r->red, o->redact_env) < 0)
		errx(2, "out of memory");
	for (size_t i = 0; i < r->b.n; i++)
		if (r->b.secret[i] && redact_add_secret(&r->red, r->b.names[i], r->b.values[i]) < 0)
			errx(2, "out of memory");
	return 0;
}

/* The loop's own descriptors, made before the log is touched: failing here writes nothing. */
static int setup_loop(struct run *r)
{
	struct itimerspec second = {.it_interval = {1, 0}, .it_value = {1, 0}};
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	r->sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	r->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (r->sigfd < 0 || r->epfd < 0 || r->tickfd < 0 || r->devnull < 0 ||
	    timerfd_settime(r->tickfd, 0, &second, NULL) < 0 || ep_add(r, r->sigfd, TAG_SIG) < 0 ||
	    ep_add(r, r->tickfd, TAG_TICK) < 0) {
		warn("cannot set up the event loop (signalfd, epoll, timerfd, /dev/null)");
		return -1;
	}
	return 0;
}

static int setup_sinks(struct run *r)
{
	const struct run_opts *o = r->o;

	stream_init(&r->s, &r->red);
	if (r->via_daemon) {
		stream_add_sink(&r->s, (struct sink){daemon_sink, r, r->socket});
	} else if (!o->no_seal) {
		struct sealer_opts so = {
		    .log_dir = o->log_dir,
		    .key_dir = o->key_dir,
		    .replicas = o->replicas,
		    .nreplicas = o->nreplicas,
		    .fsync_record = o->fsync_record,
		    .keep_going = o->log_keep_going,
		    .checkpoint_s = o->checkpoint_s,
		    .notice = o->log_notice,
		};
		char serr[1024];

		if (sealer_open(&r->seal, &so, serr, sizeof(serr)) < 0) {
			fprintf(stderr, "runseal: %s\n", serr);
			return -1;
		}
		r->sealing = true;
		/* First sink: a record reaches the log before anything else sees it. */
		stream_add_sink(&r->s, (struct sink){sealer_sink, &r->seal, o->log_dir});
	}
	r->passout = 1;
	if (o->events && !strcmp(o->events, "-")) {
		r->events_fd = 1;
		r->passout = 2; /* keep the JSON Lines on stdout clean */
	} else if (o->events) {
		r->events_fd = open(o->events, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (r->events_fd < 0) {
			warn("--events %s", o->events);
			return -1;
		}
	}
	if (r->events_fd >= 0)
		stream_add_sink(&r->s, (struct sink){sink_fd_write, &r->events_fd, "--events"});
	r->prog.out = !o->quiet && isatty(1) && r->passout == 1 ? stdout : NULL;
	stream_add_sink(&r->s, (struct sink){progress_sink, &r->prog, "progress"});
	return 0;
}

static int setup(struct run *r)
{
	if (setup_runbook(r) < 0 || setup_loop(r) < 0 || setup_sinks(r) < 0)
		return -1;
	if (r->via_daemon) {
		/* The daemon traces, seals and guards itself; a runner killed mid-step leaves
		 * its step traced and closed as abandoned (docs/DAEMON.md). */
		cgroup_init(r);
		base_env(r);
		return 0;
	}
	if (collector_open(&r->col, &r->s, r->o->ringbuf_bytes,
			   (r->o->bpf_floor ? COLLECTOR_FLOOR : 0) | COLLECTOR_FAIL_CLOSED) < 0)
		return -1;
	collector_set_run(&r->col, r->id);
	collector_set_warn(&r->col, say_warning, r);
	if (ep_add(r, collector_fd(&r->col), TAG_RB) < 0) {
		warn("epoll_ctl");
		return -1;
	}
	cgroup_init(r);
	start_guard(r);
	base_env(r);
	return 0;
}

/* Removes the run's cgroups; processes still in them go back to where runseal started. */
static void cgroups_release(struct run *r)
{
	char path[PATH_MAX + 64];

	if (!r->cg_run[0])
		return;
	for (uint32_t i = 1; i <= r->seq && i < r->col.nsteps; i++) {
		snprintf(path, sizeof(path), "%s/%u-%s", r->cg_run, i, r->col.steps[i]);
		if (access(path, F_OK) == 0)
			cgroup_release(r, path);
	}
	rmdir(r->cg_run);
}

/* Frees what setup made, however far it got. */
static void teardown(struct run *r)
{
	guard_stop(&r->guard);
	/* Readers see the end of the records now: detaching the tracepoints takes a while. */
	if (r->events_fd > 2)
		close(r->events_fd);
	else if (r->events_fd == 1)
		fflush(stdout);
	collector_close(&r->col);
	if (r->sealing)
		sealer_close(&r->seal);
	close_fd(&r->sigfd);
	close_fd(&r->epfd);
	close_fd(&r->tickfd);
	close_fd(&r->devnull);
	stream_free(&r->s);
	if (r->via_daemon)
		rsc_close(&r->dc);
	env_free(r->env, r->nenv);
	redact_free(&r->red);
	rb_binding_free(&r->b);
	runbook_free(&r->rb);
}

static int exit_status(const struct run *r)
{
	if (r->interrupted)
		return RUN_INTERRUPTED;
	if (r->log_failed || r->any_failed || r->error[0])
		return RUN_FAILED;
	if (r->incomplete && r->o->strict)
		return RUN_INCOMPLETE;
	return RUN_OK;
}

int runner_run(const struct run_opts *o)
{
	struct run r;
	const char *status;
	int rc;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.start = mono();
	r.sigfd = r.epfd = r.tickfd = r.devnull = r.events_fd = r.guard.fd = -1;
	if (setup(&r) < 0) {
		teardown(&r);
		return RUN_USAGE;
	}
	run_start_record(&r);
	recover_crashed(&r);
	if (!r.log_failed)
		run_steps(&r, r.rb.steps, r.rb.nsteps, false);
	end_lingering(&r);
	drain(&r, true);
	seen(&r);
	if (r.any_failed || run_stopped(&r))
		status = "failed";
	else if (r.incomplete)
		status = "incomplete";
	else
		status = "ok";
	run_end_record(&r, status);
	if (r.sealing && !r.log_failed && sealer_seal(&r.seal, "run_end") < 0) {
		warnx("cannot seal the log in %s", o->log_dir);
		r.log_failed = !o->log_keep_going;
	}
	progress_run_end(&r.prog, r.id, status, r.steps_run, r.events, r.lost);
	cgroups_release(&r);
	rc = exit_status(&r);
	if (r.error[0])
		warnx("run %s stopped: %s", r.id, r.error);
	if (r.lost)
		warnx("run %s: %llu events lost: the record is incomplete", r.id,
		      (unsigned long long)r.lost);
	teardown(&r);
	return rc;
}
