#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "collector.h"
#include "engine.h"
#include "json.h"
#include "keys.h"
#include "logfmt.h"
#include "record.h"
#include "redact.h"
#include "sealer.h"
#include "util.h"

struct estep {
	char *name;
	bool open;
	uint64_t start; /* CLOCK_MONOTONIC ns */
	uint32_t attached;
};

/* A slot of the run table: slot = run number % ENGINE_RUNS_MAX, so an event's run is found
 * in one step. A closed run keeps its slot (late events of its processes still get its id)
 * until a new run needs it. */
struct erun {
	uint32_t no; /* 0: never used */
	bool open;
	bool detached;
	bool abandoned;			/* its client left: ends once its processes have */
	bool records;			/* its client writes its records (ENGINE_RECORDS) */
	char **sec_names, **sec_values; /* its secret params (engine_secret) */
	size_t nsec;
	size_t killed; /* processes killed when its runner went (records runs) */
	bool started;  /* its run_start is in the log */
	char id[ENGINE_ID_LEN];
	uid_t owner;
	uint64_t start, lost_at_start, tamper_at_start, events;
	struct estep *steps; /* by seq, [0] unused */
	uint32_t nsteps;
};

struct engine {
	struct engine_opts o;
	struct redactor red;
	struct stream s;
	struct collector col;
	struct sealer seal;
	bool col_open, seal_open, log_failed;
	struct erun runs[ENGINE_RUNS_MAX];
	uint32_t next_no;
	uint64_t runs_open, runs_total;
	uint64_t start;
	uint64_t last_seal_ns;
	uint64_t rate[60]; /* events counted at each of the last 60 ticks */
	unsigned ticks;
	struct jtok *tok; /* for checking the records clients write */
	pid_t *st_pid;	  /* the kernel's table, read for the state (engine_save_state) */
	uint32_t *st_run, *st_step;
	uint64_t state_events; /* events counted at the last save */
	struct jbuf line, stamped;
};

#define RECORD_TOKENS 16384

static const char *const codes[] = {"",
				    "internal",
				    "no_such_run",
				    "not_owner",
				    "limit",
				    "already_traced",
				    "process_gone",
				    "bad_request",
				    "out_of_order"};

const char *engine_code(int rc)
{
	return rc < 0 && -rc < (int)(sizeof(codes) / sizeof(codes[0])) ? codes[-rc] : "internal";
}

static uint64_t mono(void)
{
	return now_ns(CLOCK_MONOTONIC);
}

static uint64_t real(void)
{
	return now_ns(CLOCK_REALTIME);
}

static int seterr(char *err, size_t errlen, int rc, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg);
	return rc;
}

/* ---- the run table ---------------------------------------------------------------------- */

static const char *names(void *ctx, uint32_t run, uint32_t step, const char **step_name)
{
	struct engine *e = ctx;
	struct erun *r = &e->runs[run % ENGINE_RUNS_MAX];

	if (r->no != run || !run) {
		*step_name = "?";
		return "?";
	}
	r->events++;
	*step_name = step < r->nsteps && r->steps[step].name ? r->steps[step].name : "?";
	return r->id;
}

static struct erun *find(struct engine *e, const char *id)
{
	for (size_t i = 0; i < ENGINE_RUNS_MAX; i++)
		if (e->runs[i].open && !strcmp(e->runs[i].id, id))
			return &e->runs[i];
	return NULL;
}

/* The run, open and the peer's (root may act on any). */
static int lookup(struct engine *e, const char *id, const struct engine_peer *p, struct erun **out,
		  char *err, size_t errlen)
{
	*out = find(e, id);
	if (!*out)
		return seterr(err, errlen, ENGINE_ENORUN, "no open run \"%.64s\"", id);
	if (p && p->uid != 0 && p->uid != (*out)->owner)
		return seterr(err, errlen, ENGINE_EOWNER, "run %s belongs to another user", id);
	return 0;
}

/* A run whose client writes its own records (runseal run through the daemon). */
static int lookup_recording(struct engine *e, const char *id, const struct engine_peer *p,
			    struct erun **out, char *err, size_t errlen)
{
	int rc = lookup(e, id, p, out, err, errlen);

	if (rc)
		return rc;
	if (!(*out)->records)
		return seterr(err, errlen, ENGINE_EORDER,
			      "run %s was not opened with \"records\": true", id);
	return 0;
}

static struct estep *open_step(struct erun *r, uint32_t seq, char *err, size_t errlen)
{
	if (seq == 0 || seq >= r->nsteps || !r->steps[seq].open) {
		snprintf(err, errlen, "run %s has no open step %u", r->id, seq);
		return NULL;
	}
	return &r->steps[seq];
}

static void wipe_secrets(struct erun *r)
{
	for (size_t i = 0; i < r->nsec; i++) {
		explicit_bzero(r->sec_values[i], strlen(r->sec_values[i]));
		free(r->sec_values[i]);
		free(r->sec_names[i]);
	}
	free(r->sec_values);
	free(r->sec_names);
	r->sec_values = r->sec_names = NULL;
	r->nsec = 0;
}

static void free_run(struct erun *r)
{
	wipe_secrets(r);
	for (uint32_t i = 0; i < r->nsteps; i++)
		free(r->steps[i].name);
	free(r->steps);
	memset(r, 0, sizeof(*r));
}

/* The one redactor holds the secrets of every open run (redacting one run's secret in
 * another's records too is harmless); a run's go when it closes. */
static void rebuild_redactor(struct engine *e)
{
	redact_free(&e->red);
	redact_init(&e->red);
	for (size_t i = 0; i < ENGINE_RUNS_MAX; i++)
		for (size_t k = 0; e->runs[i].open && k < e->runs[i].nsec; k++)
			if (redact_add_secret(&e->red, e->runs[i].sec_names[k],
					      e->runs[i].sec_values[k]) < 0)
				errx(2, "out of memory"); /* as xmalloc */
}

static void run_closed(struct engine *e, struct erun *r)
{
	r->open = false;
	e->runs_open--;
	if (r->nsec) {
		wipe_secrets(r);
		rebuild_redactor(e);
	}
	/* A crash now must not bring the run back. */
	engine_save_state(e);
}

/* ---- records ---------------------------------------------------------------------------- */

static int emit(struct engine *e)
{
	if (rec_end(&e->s) < 0)
		e->log_failed = true;
	return e->log_failed ? ENGINE_EFAIL : 0;
}

static void rec_peer(struct stream *s, const char *prefix, const struct engine_peer *p)
{
	char k[32];

	snprintf(k, sizeof(k), "%suid", prefix);
	rec_int(s, k, p->uid);
	snprintf(k, sizeof(k), "%sgid", prefix);
	rec_int(s, k, p->gid);
	snprintf(k, sizeof(k), "%spid", prefix);
	rec_int(s, k, p->pid);
}

/* What the kernel says of a process (for attach records): read after it was pinned. */
static void rec_proc(struct stream *s, pid_t pid)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, 64) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0)
		rec_strn(s, "comm", buf, buf[n - 1] == '\n' ? (size_t)n - 1 : (size_t)n, false);
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, buf, sizeof(buf));
	if (n > 0)
		rec_strn(s, "exe", buf, (size_t)n, false);
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	n = readlink(path, buf, sizeof(buf));
	if (n > 0)
		rec_strn(s, "cwd", buf, (size_t)n, false);
}

static int run_start_record(struct engine *e, struct erun *r, const char *runbook,
			    const char *client, const struct engine_kv *trig, size_t ntrig,
			    const struct engine_peer *p)
{
	struct stream *s = &e->s;
	struct utsname u;
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	uname(&u);
	rec_begin(s, REC_RUN_START, real(), r->id, -1);
	rec_null(s, "runbook");
	rec_str(s, "runbook_name", runbook);
	rec_str(s, "source", "daemon");
	rec_str(s, "client", client);
	rec_bool(s, "detached", r->detached);
	/* As runseal run writes it (docs/RECORDS.md), with what the client gave under "given":
	 * the rest of a runner's trigger describes the runner's own process tree. */
	rec_open(s, "trigger", '{');
	rec_open(s, "given", '{');
	for (size_t i = 0; i < ntrig; i++)
		rec_str(s, trig[i].key, trig[i].value);
	rec_close(s, '}');
	rec_close(s, '}');
	rec_str(s, "host", host);
	rec_str(s, "kernel", u.release);
	rec_str(s, "runseal_version", RUNSEAL_VERSION);
	rec_peer(s, "", p);
	rec_int(s, "runseal_pid", getpid());
	return emit(e);
}

static int step_end_record(struct engine *e, struct erun *r, uint32_t seq, const char *status,
			   int exit_code, int sig, const struct engine_peer *p)
{
	struct stream *s = &e->s;
	struct estep *st = &r->steps[seq];

	rec_begin(s, REC_STEP_END, real(), r->id, (int)seq);
	rec_str(s, "step", st->name);
	rec_int(s, "step_seq", seq);
	rec_int(s, "attempt", 1);
	rec_str(s, "status", status);
	if (exit_code >= 0)
		rec_int(s, "exit_code", exit_code);
	else
		rec_null(s, "exit_code");
	if (sig > 0)
		rec_int(s, "signal", sig);
	rec_int(s, "duration_ms", (int64_t)((mono() - st->start) / 1000000));
	rec_int(s, "processes", st->attached);
	if (p)
		rec_peer(s, "closed_by_", p);
	st->open = false;
	return emit(e);
}

static int run_end_record(struct engine *e, struct erun *r, const char *status, size_t lingering,
			  const struct engine_peer *p)
{
	struct stream *s = &e->s;
	uint32_t steps = 0;

	for (uint32_t i = 1; i < r->nsteps; i++)
		if (r->steps[i].open && step_end_record(e, r, i, "abandoned", -1, 0, NULL) < 0)
			return ENGINE_EFAIL;
	if (!strcmp(status, "ok") && e->col.lost != r->lost_at_start)
		status = "incomplete";
	steps = r->nsteps ? r->nsteps - 1 : 0;
	rec_begin(s, REC_RUN_END, real(), r->id, -1);
	rec_str(s, "status", status);
	rec_int(s, "steps", steps);
	rec_int(s, "events", (int64_t)r->events);
	rec_int(s, "lost", (int64_t)(e->col.lost - r->lost_at_start));
	rec_int(s, "duration_ms", (int64_t)((mono() - r->start) / 1000000));
	rec_int(s, "lingering", (int64_t)lingering);
	if (r->killed)
		rec_int(s, "killed", (int64_t)r->killed);
	if (p)
		rec_peer(s, "closed_by_", p);
	return emit(e);
}

/* A runbook's runner enforces its steps' timeouts and stops them when the run fails; with
 * the runner gone nobody would, so the daemon does what the runner's guard does alone:
 * the run's processes are killed (they are traced to the end, their exits recorded). */
static void kill_orphans(struct engine *e, struct erun *r)
{
	pid_t pids[256];
	uint32_t steps[256];
	size_t n = collector_run_tracked(&e->col, r->no, pids, steps, 256);

	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], SIGKILL) == 0)
			r->killed++;
}

/* ---- life ------------------------------------------------------------------------------- */

int engine_open(struct engine **out, const struct engine_opts *o, char *err, size_t errlen)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	struct sealer_opts so = {
	    .log_dir = o->log_dir,
	    .key_dir = o->key_dir,
	    .replicas = o->replicas,
	    .nreplicas = o->nreplicas,
	    .fsync_record = o->fsync_record,
	    .checkpoint_s = o->checkpoint_s,
	    .notice = o->log_notice,
	};

	e->o = *o;
	e->start = mono();
	e->tok = xcalloc(RECORD_TOKENS, sizeof(*e->tok));
	e->st_pid = xcalloc(ENGINE_STATE_ALL, sizeof(*e->st_pid));
	e->st_run = xcalloc(ENGINE_STATE_ALL, sizeof(*e->st_run));
	e->st_step = xcalloc(ENGINE_STATE_ALL, sizeof(*e->st_step));
	e->next_no = 1;
	redact_init(&e->red);
	stream_init(&e->s, &e->red);
	if (sealer_open(&e->seal, &so, err, errlen) < 0) {
		engine_close(e);
		return ENGINE_EFAIL;
	}
	e->seal_open = true;
	stream_add_sink(&e->s, (struct sink){sealer_sink, &e->seal, o->log_dir});
	if (collector_open(&e->col, &e->s, o->ringbuf_bytes, 0) < 0) {
		snprintf(err, errlen, "cannot load the BPF programs (see the messages above)");
		engine_close(e);
		return ENGINE_EFAIL;
	}
	e->col_open = true;
	collector_set_names(&e->col, names, e);
	collector_set_warn(&e->col, o->warn, o->warn_ctx);
	/* libbpf reads the CPU count from a file once and keeps it: now, while descriptors
	 * are free, not when a thousand clients hold them. */
	libbpf_num_possible_cpus();
	*out = e;
	return 0;
}

int engine_fd(const struct engine *e)
{
	return collector_fd((struct collector *)&e->col);
}

int engine_poll(struct engine *e)
{
	if (collector_drain(&e->col, false) < 0)
		e->log_failed = true;
	if (sealer_flush(&e->seal) < 0)
		e->log_failed = true;
	return e->log_failed ? ENGINE_EFAIL : 0;
}

/* A run whose client left ends when the last of its processes has. */
static int reap_abandoned(struct engine *e)
{
	for (size_t i = 0; i < ENGINE_RUNS_MAX; i++) {
		struct erun *r = &e->runs[i];

		if (!r->open || !r->abandoned || collector_run_pids(&e->col, r->no, false))
			continue;
		collector_drain(&e->col, true);
		run_closed(e, r);
		if (run_end_record(e, r, "abandoned", 0, NULL) < 0)
			return ENGINE_EFAIL;
	}
	return 0;
}

int engine_tick(struct engine *e)
{
	e->rate[e->ticks++ % 60] = e->col.events;
	if (reap_abandoned(e) < 0 || sealer_tick(&e->seal) < 0)
		e->log_failed = true;
	/* For a restart after a crash as well: at most a second old (forks and exits change
	 * it between the saves that changes of the run table make at once). */
	if (e->col.events != e->state_events)
		engine_save_state(e);
	return e->log_failed ? ENGINE_EFAIL : 0;
}

int engine_run_open(struct engine *e, const char *runbook, const char *client,
		    const struct engine_kv *trigger, size_t ntrigger, unsigned flags,
		    const struct engine_peer *p, char id[ENGINE_ID_LEN], char *err, size_t errlen)
{
	struct erun *r;
	uint32_t tries = 0, mine = 0;

	/* One user cannot take every slot from the others. */
	for (size_t i = 0; p->uid != 0 && i < ENGINE_RUNS_MAX; i++)
		mine += e->runs[i].open && e->runs[i].owner == p->uid;
	if (mine >= ENGINE_RUNS_PER_UID)
		return seterr(err, errlen, ENGINE_ELIMIT, "%s",
			      "this user has 256 runs open already: end some first");
	/* The next number whose slot holds no open run. */
	while (e->runs[e->next_no % ENGINE_RUNS_MAX].open || !e->next_no) {
		e->next_no++;
		if (++tries > ENGINE_RUNS_MAX)
			return seterr(err, errlen, ENGINE_ELIMIT, "%s",
				      "too many open runs (1024): end some first");
	}
	r = &e->runs[e->next_no % ENGINE_RUNS_MAX];
	free_run(r);
	if (uuid7(r->id) < 0)
		return seterr(err, errlen, ENGINE_EFAIL, "%s", "getrandom failed");
	r->no = e->next_no++;
	r->open = true;
	r->detached = flags & ENGINE_DETACHED;
	r->records = flags & ENGINE_RECORDS;
	r->owner = p->uid;
	r->start = mono();
	r->lost_at_start = e->col.lost;
	r->tamper_at_start = e->col.tamper_attempts;
	r->nsteps = 1;
	r->steps = xcalloc(1, sizeof(*r->steps));
	e->runs_open++;
	e->runs_total++;
	memcpy(id, r->id, ENGINE_ID_LEN);
	/* Its client writes the run_start (engine_record). */
	if (r->records)
		return 0;
	r->started = true;
	if (run_start_record(e, r, runbook, client, trigger, ntrigger, p) < 0) {
		/* No run_start in the log: the run never opened. */
		run_closed(e, r);
		return seterr(err, errlen, ENGINE_EFAIL, "%s", "the log cannot be written");
	}
	engine_save_state(e);
	return 0;
}

int engine_step_open(struct engine *e, const char *run, const char *name, const char *const *argv,
		     size_t argc, bool argv_truncated, const struct engine_peer *p, uint32_t *seq,
		     char *err, size_t errlen)
{
	struct stream *s = &e->s;
	struct erun *r;
	int rc = lookup(e, run, p, &r, err, errlen);

	if (rc)
		return rc;
	if (r->records)
		return seterr(err, errlen, ENGINE_EORDER,
			      "run %s writes its own records: its steps open with step_start", run);
	if (r->nsteps >= ENGINE_STEPS_MAX)
		return seterr(err, errlen, ENGINE_ELIMIT, "run %s has too many steps", run);
	r->steps = xrealloc(r->steps, (r->nsteps + 1) * sizeof(*r->steps));
	*seq = r->nsteps++;
	r->steps[*seq] = (struct estep){.name = xstrdup(name), .open = true, .start = mono()};
	rec_begin(s, REC_STEP_START, real(), r->id, (int)*seq);
	rec_str(s, "step", name);
	rec_int(s, "step_seq", *seq);
	rec_int(s, "attempt", 1);
	rec_str(s, "mode", "exec");
	/* The client's word for what it will run; the exec records say what really ran. */
	rec_open(s, "argv", '[');
	for (size_t i = 0; i < argc; i++)
		rec_item(s, argv[i], strlen(argv[i]), false);
	rec_close(s, ']');
	rec_bool(s, "argv_truncated", argv_truncated);
	rec_peer(s, "", p);
	if (emit(e) < 0)
		return seterr(err, errlen, ENGINE_EFAIL, "%s", "the log cannot be written");
	engine_save_state(e);
	return 0;
}

/* The pid of a pidfd is ours while the process lives (a zombie's pid is not reused either). */
static bool still_alive(const struct engine_peer *p)
{
	return p->pidfd < 0 || syscall(SYS_pidfd_send_signal, p->pidfd, 0, NULL, 0) == 0;
}

int engine_attach(struct engine *e, const char *run, uint32_t seq, const struct engine_peer *p,
		  char *err, size_t errlen)
{
	struct stream *s = &e->s;
	struct estep *st;
	struct erun *r;
	uint32_t trun, tseq;
	int rc = lookup(e, run, p, &r, err, errlen);

	if (rc)
		return rc;
	if (!(st = open_step(r, seq, err, errlen)))
		return ENGINE_ENORUN;
	if (!still_alive(p))
		return seterr(err, errlen, ENGINE_EGONE, "%s", "the process exited");
	if (collector_run_of(&e->col, p->pid, &trun, &tseq) == 0) {
		if (trun == r->no && tseq == seq)
			return ENGINE_ALREADY;
		return seterr(err, errlen, ENGINE_ETRACKED, "%s",
			      "the process is traced already, as part of another run or step");
	}
	/* The record first, so that it precedes every event of the process. */
	rec_begin(s, REC_ATTACH, real(), r->id, (int)seq);
	rec_str(s, "step", st->name);
	rec_int(s, "step_seq", seq);
	rec_peer(s, "", p);
	rec_proc(s, p->pid);
	if (emit(e) < 0)
		return seterr(err, errlen, ENGINE_EFAIL, "%s", "the log cannot be written");
	if (collector_track_run(&e->col, p->pid, r->no, seq) < 0) {
		int e2 = errno;

		if (e2 == EEXIST)
			return seterr(err, errlen, ENGINE_ETRACKED, "%s",
				      "the process is traced already, as part of a run");
		/* A full table (E2BIG) must be seen in the log, not only by the client. */
		seterr(err, errlen, ENGINE_EFAIL, "cannot track the process: %s", strerror(e2));
		engine_refused(e, "attach", err, r->id, p);
		return ENGINE_EFAIL;
	}
	/* The pid was the peer's when it connected; if the peer died since, the pid may now
	 * be someone else's: then take the registration back. */
	if (!still_alive(p)) {
		collector_drop_pid(&e->col, p->pid);
		return seterr(err, errlen, ENGINE_EGONE, "%s", "the process exited");
	}
	st->attached++;
	/* A crash now must bring the process back (the tick would be up to a second late). */
	engine_save_state(e);
	return 0;
}

int engine_step_close(struct engine *e, const char *run, uint32_t seq, const char *status,
		      int exit_code, int signal, const struct engine_peer *p, char *err,
		      size_t errlen)
{
	struct erun *r;
	int rc = lookup(e, run, p, &r, err, errlen);

	if (rc)
		return rc;
	if (r->records && p)
		return seterr(err, errlen, ENGINE_EORDER,
			      "run %s writes its own records: its steps end with step_end", run);
	if (!open_step(r, seq, err, errlen))
		return ENGINE_ENORUN;
	/* What the step's processes did comes before its end. */
	collector_drain(&e->col, true);
	if (!status)
		status = exit_code == 0 && signal == 0 ? "ok" : "failed";
	if (step_end_record(e, r, seq, status, exit_code, signal, p) < 0)
		return seterr(err, errlen, ENGINE_EFAIL, "%s", "the log cannot be written");
	return 0;
}

int engine_run_close(struct engine *e, const char *run, const char *status,
		     const struct engine_peer *p, char *err, size_t errlen)
{
	struct erun *r;
	size_t lingering;
	int rc = lookup(e, run, p, &r, err, errlen);

	if (rc)
		return rc;
	if (r->records && p)
		return seterr(err, errlen, ENGINE_EORDER,
			      "run %s writes its own records: it ends with run_end", run);
	if (!p && r->records && !r->started) {
		/* Its client left before its first record: nothing of it is in the log. */
		run_closed(e, r);
		return 0;
	}
	if (!p) {
		/* Its client left: the run stays until its processes end. */
		r->abandoned = true;
		for (uint32_t i = 1; i < r->nsteps; i++)
			if (r->steps[i].open &&
			    step_end_record(e, r, i, "abandoned", -1, 0, NULL) < 0)
				return ENGINE_EFAIL;
		if (r->records)
			kill_orphans(e, r);
		return reap_abandoned(e);
	}
	collector_drain(&e->col, true);
	/* A run's processes are forgotten when it ends: what they do next is no longer its. */
	lingering = collector_run_pids(&e->col, r->no, true);
	run_closed(e, r);
	if (run_end_record(e, r, status ? status : "ok", lingering, p) < 0 ||
	    sealer_seal(&e->seal, "run_end") < 0) {
		e->log_failed = true;
		return seterr(err, errlen, ENGINE_EFAIL, "%s", "the log cannot be written");
	}
	e->last_seal_ns = real();
	return 0;
}

/* ---- records a client writes (runseal run) ----------------------------------------------- */

/* A string member of the record as bytes in e->line, or NULL. */
static const char *member_str(struct engine *e, const char *key)
{
	int i = json_get(e->tok, 0, key);

	e->line.len = 0;
	if (i < 0 || json_unstr(&e->tok[i], &e->line) < 0)
		return NULL;
	jb_putc(&e->line, '\0');
	return e->line.p;
}

static int64_t member_int(struct engine *e, const char *key)
{
	int i = json_get(e->tok, 0, key);
	int64_t v;

	return i >= 0 && json_int(&e->tok[i], &v) == 0 ? v : -1;
}

static bool first_key_is(const struct jtok *t, unsigned at, const char *key)
{
	return t[0].count > at / 2 && t[at].type == J_STR && t[at].n == strlen(key) &&
	       !memcmp(t[at].s, key, t[at].n);
}

/* The line is one JSON object shaped as rec_begin makes them, of one of the four kinds a
 * runner writes, for this run; the chain's own fields are the sealer's to add. */
static int record_kind(struct engine *e, const struct erun *r, const char *line, size_t n,
		       enum rec_kind *kind, char *err, size_t errlen)
{
	static const enum rec_kind own[] = {REC_RUN_START, REC_STEP_START, REC_STEP_END,
					    REC_RUN_END};
	const char *k;
	uint64_t ns;
	int nt;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20)
			return seterr(err, errlen, ENGINE_EBAD, "%s",
				      "the record holds a control byte (one line, no newline)");
	/* The sealer splices the body after '{', and run_start's given_by before '}'. */
	if (n < 2 || line[0] != '{' || line[n - 1] != '}')
		return seterr(err, errlen, ENGINE_EBAD, "%s",
			      "the record must be one JSON object, from { to }, no blanks around");
	nt = json_scan(line, n, e->tok, RECORD_TOKENS);
	if (nt < 1 || e->tok[0].type != J_OBJ || !entry_is_json(line, n))
		return seterr(err, errlen, ENGINE_EBAD, "%s", "the record is not one JSON object");
	if (!first_key_is(e->tok, 1, "kind") || json_get(e->tok, 0, "seq") >= 0 ||
	    json_get(e->tok, 0, "prev") >= 0 || json_get(e->tok, 0, "sig") >= 0)
		return seterr(err, errlen, ENGINE_EBAD, "%s",
			      "the record must start with \"kind\" and hold no seq, prev or sig");
	if (!first_key_is(e->tok, 3, "time") || !first_key_is(e->tok, 5, "run") ||
	    e->tok[4].type != J_STR || e->tok[4].n != 30 || !(k = member_str(e, "time")) ||
	    strlen(k) != 30 || parse_time(k, 30, &ns) < 0)
		return seterr(err, errlen, ENGINE_EBAD, "%s",
			      "the record must start with kind, time (RFC 3339, ns, UTC) and run");
	if (!(k = member_str(e, "run")) || strcmp(k, r->id))
		return seterr(err, errlen, ENGINE_EBAD, "the record's \"run\" is not %s", r->id);
	k = member_str(e, "kind");
	for (size_t i = 0; k && i < sizeof(own) / sizeof(own[0]); i++)
		if (!strcmp(k, rec_kind_name(own[i]))) {
			*kind = own[i];
			return 0;
		}
	return seterr(err, errlen, ENGINE_EBAD, "%s",
		      "a client writes run_start, step_start, step_end and run_end only");
}

/* Straight to the sinks: the line is whole already (rec_* would build a new one). */
static int put_line(struct engine *e, enum rec_kind kind, int step, const char *line, size_t n)
{
	struct rec_view v;

	e->line.len = 0;
	jb_raw(&e->line, line, n);
	jb_putc(&e->line, '\n');
	v = (struct rec_view){kind, step, e->line.p, e->line.len};
	for (size_t i = 0; i < e->s.nsinks && !e->log_failed; i++)
		if (e->s.sinks[i].write(e->s.sinks[i].ctx, &v) < 0)
			e->log_failed = true;
	e->s.count[kind]++;
	return e->log_failed ? ENGINE_EFAIL : 0;
}

/* run_start, with who gave it as the kernel says (the record's own uid fields are the
 * client's word). */
static int put_run_start(struct engine *e, struct erun *r, const char *line, size_t n,
			 const struct engine_peer *p)
{
	char by[128], *buf;
	int len = snprintf(by, sizeof(by), ",\"given_by\":{\"uid\":%u,\"gid\":%u,\"pid\":%d}}",
			   (unsigned)p->uid, (unsigned)p->gid, (int)p->pid);
	int rc;

	buf = xmalloc(n + (size_t)len);
	memcpy(buf, line, n - 1); /* without its closing brace */
	memcpy(buf + n - 1, by, (size_t)len);
	rc = put_line(e, REC_RUN_START, -1, buf, n - 1 + (size_t)len);
	free(buf);
	if (rc == 0)
		r->started = true;
	return rc;
}

static int put_step_start(struct engine *e, struct erun *r, int64_t seq, const char *line, size_t n,
			  char *err, size_t errlen)
{
	const char *name = member_str(e, "step");

	if (!name || !*name)
		return seterr(err, errlen, ENGINE_EBAD, "%s", "step_start has no \"step\" name");
	if (seq != (int64_t)r->nsteps) {
		snprintf(err, errlen, "the next step of run %s is number %u", r->id, r->nsteps);
		return ENGINE_EORDER;
	}
	if (r->nsteps >= ENGINE_STEPS_MAX)
		return seterr(err, errlen, ENGINE_ELIMIT, "run %s has too many steps", r->id);
	r->steps = xrealloc(r->steps, (r->nsteps + 1) * sizeof(*r->steps));
	r->steps[r->nsteps++] =
	    (struct estep){.name = xstrdup(name), .open = true, .start = mono()};
	return put_line(e, REC_STEP_START, (int)seq, line, n);
}

static int put_run_end(struct engine *e, struct erun *r, const char *line, size_t n)
{
	collector_drain(&e->col, true);
	for (uint32_t i = 1; i < r->nsteps; i++)
		if (r->steps[i].open && step_end_record(e, r, i, "abandoned", -1, 0, NULL) < 0)
			return ENGINE_EFAIL;
	collector_run_pids(&e->col, r->no, true);
	run_closed(e, r);
	if (put_line(e, REC_RUN_END, -1, line, n) < 0 || sealer_seal(&e->seal, "run_end") < 0) {
		e->log_failed = true;
		return ENGINE_EFAIL;
	}
	e->last_seal_ns = real();
	return 0;
}

int engine_record(struct engine *e, const char *run, const char *line, size_t n,
		  const struct engine_peer *p, struct engine_written *w, char *err, size_t errlen)
{
	enum rec_kind kind = REC_RUN_START;
	struct erun *r;
	int64_t seq;
	int rc = lookup_recording(e, run, p, &r, err, errlen);

	if (rc)
		return rc;
	if ((rc = record_kind(e, r, line, n, &kind, err, errlen)))
		return rc;
	/* The time is the daemon's: when it wrote the record, in the chain's order. */
	{
		size_t at = (size_t)(e->tok[4].s - line);
		char t[TIME_LEN];

		e->stamped.len = 0;
		jb_raw(&e->stamped, line, n);
		fmt_time(real(), t);
		memcpy(e->stamped.p + at, t, 30);
		line = e->stamped.p;
	}
	if ((kind == REC_RUN_START) == r->started)
		return seterr(err, errlen, ENGINE_EORDER, "%s",
			      r->started ? "run_start was written already"
					 : "run_start must come first");
	seq = member_int(e, "step_seq");
	*w = (struct engine_written){kind == REC_STEP_START, kind == REC_STEP_END,
				     kind == REC_RUN_END, seq > 0 ? (uint32_t)seq : 0};
	switch (kind) {
	case REC_RUN_START:
		rc = put_run_start(e, r, line, n, p);
		break;
	case REC_STEP_START:
		rc = put_step_start(e, r, seq, line, n, err, errlen);
		break;
	case REC_STEP_END:
		if (seq < 1 || !open_step(r, (uint32_t)seq, err, errlen))
			return seterr(err, errlen, ENGINE_ENORUN, "run %s has no such open step",
				      run);
		/* What the step's processes did comes before its end. */
		collector_drain(&e->col, true);
		r->steps[seq].open = false;
		rc = put_line(e, REC_STEP_END, (int)seq, line, n);
		break;
	default:
		rc = put_run_end(e, r, line, n);
		break;
	}
	if (rc == ENGINE_EFAIL)
		return seterr(err, errlen, ENGINE_EFAIL, "%s", "the log cannot be written");
	if (rc == 0 && (kind == REC_RUN_START || kind == REC_STEP_START))
		engine_save_state(e);
	return rc;
}

int engine_secret(struct engine *e, const char *run, const char *name, const char *value,
		  const struct engine_peer *p, char *err, size_t errlen)
{
	struct erun *r;
	int rc = lookup_recording(e, run, p, &r, err, errlen);

	if (rc)
		return rc;
	if (r->nsec == ENGINE_SECRETS_MAX)
		return seterr(err, errlen, ENGINE_ELIMIT, "run %s has 64 secrets already", run);
	if (!*value)
		return 0; /* nothing to hide */
	r->sec_names = xrealloc(r->sec_names, (r->nsec + 1) * sizeof(char *));
	r->sec_values = xrealloc(r->sec_values, (r->nsec + 1) * sizeof(char *));
	r->sec_names[r->nsec] = xstrdup(name);
	r->sec_values[r->nsec++] = xstrdup(value);
	if (redact_add_secret(&e->red, name, value) < 0)
		errx(2, "out of memory"); /* as xmalloc */
	return 0;
}

int engine_run_stats(struct engine *e, const char *run, const struct engine_peer *p,
		     struct engine_run_stats *st, char *err, size_t errlen)
{
	struct erun *r;
	int rc = lookup(e, run, p, &r, err, errlen);

	if (rc)
		return rc;
	if (collector_drain(&e->col, true) < 0)
		e->log_failed = true;
	memset(st, 0, sizeof(*st));
	st->events = r->events;
	st->lost = e->col.lost - r->lost_at_start;
	st->tamper_attempts = r->tamper_at_start <= e->col.tamper_attempts
				  ? e->col.tamper_attempts - r->tamper_at_start
				  : 0;
	st->ntracked = collector_run_tracked(&e->col, r->no, st->pids, st->steps, 256);
	return 0;
}

int engine_refused(struct engine *e, const char *op, const char *reason, const char *what,
		   const struct engine_peer *p)
{
	struct stream *s = &e->s;

	rec_begin(s, REC_REFUSED, real(), NULL, -1);
	rec_str(s, "op", op);
	rec_str(s, "reason", reason);
	rec_str(s, "asked", what);
	if (p) {
		rec_peer(s, "", p);
		rec_proc(s, p->pid);
	}
	return emit(e);
}

int engine_read(struct engine *e, const char *command, const char *log, const char *const *runs,
		size_t nruns, const struct engine_peer *p)
{
	struct stream *s = &e->s;

	rec_begin(s, REC_READ, real(), NULL, -1);
	rec_str(s, "command", command);
	rec_str(s, "log", log);
	rec_bool(s, "all_runs", nruns == 0);
	rec_open(s, "runs", '[');
	for (size_t i = 0; i < nruns; i++)
		rec_item(s, runs[i], strlen(runs[i]), false);
	rec_close(s, ']');
	rec_peer(s, "", p);
	rec_proc(s, p->pid);
	return emit(e);
}

int engine_note(struct engine *e, const char *event, const char *detail)
{
	struct stream *s = &e->s;
	const char *ids[ENGINE_RUNS_MAX];
	size_t n = engine_open_runs(e, ids, ENGINE_RUNS_MAX);

	rec_begin(s, REC_DAEMON, real(), NULL, -1);
	rec_str(s, "event", event);
	rec_str(s, "detail", detail);
	rec_int(s, "runseal_pid", getpid());
	rec_str(s, "runseal_version", RUNSEAL_VERSION);
	rec_open(s, "open_runs", '[');
	for (size_t i = 0; i < n; i++)
		rec_item(s, ids[i], strlen(ids[i]), false);
	rec_close(s, ']');
	return emit(e);
}

uint64_t engine_runs_open(const struct engine *e)
{
	return e->runs_open;
}

size_t engine_open_runs(struct engine *e, const char **ids, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ENGINE_RUNS_MAX && n < max; i++)
		if (e->runs[i].open)
			ids[n++] = e->runs[i].id;
	return n;
}

static ssize_t read_head(const char *dir, char *buf, size_t n)
{
	char path[4200];
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "%s/HEAD", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	r = read(fd, buf, n);
	close(fd);
	return r;
}

/* The sealer copies HEAD to each replica after every seal: the same bytes mean the replica
 * has every sealed segment. */
const char *engine_replica_state(const struct engine *e, size_t i)
{
	char a[4096], b[4096];
	ssize_t na = read_head(e->o.log_dir, a, sizeof(a));
	ssize_t nb = i < e->o.nreplicas ? read_head(e->o.replicas[i], b, sizeof(b)) : -1;

	if (nb < 0)
		return "unreachable";
	return na == nb && !memcmp(a, b, (size_t)na) ? "in sync" : "behind";
}

/* Over the last minute of ticks (fewer after the start). */
static uint64_t events_per_s(const struct engine *e)
{
	uint64_t span = e->ticks > 60 ? 60 : (uint64_t)e->ticks;

	if (span < 2)
		return 0;
	return (e->rate[(e->ticks - 1) % 60] - e->rate[(e->ticks - span) % 60]) / (span - 1);
}

void engine_status(struct engine *e, struct engine_status *st)
{
	struct statvfs fs;

	memset(st, 0, sizeof(*st));
	st->uptime_s = (mono() - e->start) / 1000000000ull;
	st->runs_open = e->runs_open;
	st->runs_total = e->runs_total;
	st->events = e->col.events;
	st->lost = e->col.lost;
	st->events_per_s = events_per_s(e);
	st->last_seal_ns = e->last_seal_ns;
	st->segment = e->seal.segment;
	st->seq = e->seal.seq;
	if (statvfs(e->o.log_dir, &fs) == 0) {
		st->log_free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
		st->log_size_bytes = (uint64_t)fs.f_blocks * fs.f_frsize;
	}
	st->nreplicas = e->o.nreplicas;
	for (size_t i = 0; i < e->o.nreplicas; i++)
		st->replicas_in_sync += !strcmp(engine_replica_state(e, i), "in sync");
	st->log_failed = e->log_failed || e->seal.failed;
}

/* ---- surviving a restart ---------------------------------------------------------------- */

/* The run table as it was at the last tick or the stop, in /run (gone at a reboot, when no
 * process of a run survives either), named after the log directory like the guard's state:
 *   runseal-daemon-state 1 REALTIME_NS SEQ HOST_ID LOG_DIR
 *   run ID OWNER DETACHED RECORDS START_MONO EVENTS NSTEPS NSECRETS
 *   step SEQ OPEN HEXNAME
 *   pid PID STARTTIME STEP
 * The kernel's table of traced processes dies with the daemon's programs; what was in it
 * is written here, with each process's start time, so that no reused pid is taken. The
 * first line names the log (its host id, its path, the chain's length then): a state left
 * by a daemon of another log whose directory had the same inode is not taken. */
static int state_path(const struct engine *e, char *out, size_t n)
{
	struct stat st;

	if (stat(e->o.log_dir, &st) < 0)
		return -1;
	snprintf(out, n, ENGINE_STATE_DIR "/%llx-%llx", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	return 0;
}

static void save_run(FILE *f, struct engine *e, const struct erun *r, size_t n)
{
	char name[2 * ENGINE_NAME_MAX + 1];
	size_t mine = 0;

	fprintf(f, "run %s %u %d %d %llu %llu %u %zu\n", r->id, (unsigned)r->owner, r->detached,
		r->records, (unsigned long long)r->start, (unsigned long long)r->events, r->nsteps,
		r->nsec);
	for (uint32_t i = 1; i < r->nsteps; i++) {
		size_t len = strlen(r->steps[i].name);

		len = len > ENGINE_NAME_MAX ? ENGINE_NAME_MAX : len;
		hex((const unsigned char *)r->steps[i].name, len, name);
		fprintf(f, "step %u %d %s\n", i, r->steps[i].open, name);
	}
	for (size_t i = 0; i < n && mine < ENGINE_STATE_PIDS; i++) {
		unsigned long long t;

		if (e->st_run[i] == r->no && proc_stat(e->st_pid[i], NULL, &t) == 0) {
			fprintf(f, "pid %d %llu %u\n", (int)e->st_pid[i], t, e->st_step[i]);
			mine++;
		}
	}
}

int engine_save_state(struct engine *e)
{
	char path[128], tmp[160];
	size_t n;
	FILE *f;

	if (state_path(e, path, sizeof(path)) < 0)
		return -1;
	if (!e->runs_open) {
		unlink(path);
		return 0;
	}
	/* The seq saved is then on disk: a crash after this leaves a chain at least as long
	 * (the state names the chain's length, and a shorter chain is another log's). */
	if (sealer_flush(&e->seal) < 0)
		e->log_failed = true;
	mkdir("/run/runseal", 0700);
	mkdir(ENGINE_STATE_DIR, 0700);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "we")))
		return -1;
	fprintf(f, "runseal-daemon-state 1 %llu %llu %s %s\n", (unsigned long long)real(),
		(unsigned long long)e->seal.seq, e->seal.host_hex, e->o.log_dir);
	/* One walk of the kernel's table for all runs. */
	n = collector_tracked_all(&e->col, e->st_pid, e->st_run, e->st_step, ENGINE_STATE_ALL);
	for (size_t i = 0; i < ENGINE_RUNS_MAX; i++)
		if (e->runs[i].open && e->runs[i].started)
			save_run(f, e, &e->runs[i], n);
	e->state_events = e->col.events;
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A run of the state file, back in the table under a new number (the kernel's table is
 * new), its client gone: it ends as abandoned once its processes have, unless detached. */
static struct erun *resume_run(struct engine *e, const char *id, unsigned owner, int detached,
			       int records, unsigned long long start, unsigned long long events)
{
	struct erun *r;
	uint32_t tries = 0;

	while (e->runs[e->next_no % ENGINE_RUNS_MAX].open || !e->next_no)
		if (e->next_no++, ++tries > ENGINE_RUNS_MAX)
			return NULL;
	r = &e->runs[e->next_no % ENGINE_RUNS_MAX];
	free_run(r);
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->no = e->next_no++;
	r->open = r->started = true;
	r->detached = detached;
	r->records = records;
	r->abandoned = !detached;
	r->owner = owner;
	r->start = start;
	r->events = events;
	r->lost_at_start = e->col.lost;
	r->tamper_at_start = e->col.tamper_attempts;
	r->nsteps = 1;
	r->steps = xcalloc(1, sizeof(*r->steps));
	e->runs_open++;
	e->runs_total++;
	return r;
}

static void resume_step(struct erun *r, uint32_t seq, int open, const char *hexname)
{
	unsigned char name[ENGINE_NAME_MAX + 1] = "";
	size_t n = strlen(hexname) / 2;

	if (seq != r->nsteps || seq >= ENGINE_STEPS_MAX || n > ENGINE_NAME_MAX ||
	    unhex(hexname, strlen(hexname), name, n) < 0)
		return;
	name[n] = '\0';
	r->steps = xrealloc(r->steps, (r->nsteps + 1) * sizeof(*r->steps));
	r->steps[r->nsteps++] =
	    (struct estep){.name = xstrdup((char *)name), .open = open, .start = mono()};
}

struct resumed {
	struct erun *run;
	bool secrets; /* the run had secrets: they are not kept, so its processes are not taken */
	pid_t pids[ENGINE_STATE_PIDS]; /* re-registered */
	uint32_t steps[ENGINE_STATE_PIDS];
	size_t n, gone, born;
};

/* A process of the state, if it is still the same one (same start time). */
static void resume_pid(struct engine *e, struct resumed *rs, pid_t pid, unsigned long long t,
		       uint32_t seq)
{
	unsigned long long now;

	if (rs->secrets || rs->n == ENGINE_STATE_PIDS || proc_stat(pid, NULL, &now) < 0 ||
	    now != t || collector_track_run(&e->col, pid, rs->run->no, seq) < 0) {
		rs->gone++;
		return;
	}
	rs->pids[rs->n] = pid;
	rs->steps[rs->n++] = seq;
}

/* Processes born while no one traced: descendants of a re-registered process, found by
 * their parents in /proc, registered under their ancestor's step. */
static void resume_children(struct engine *e, struct resumed *rs, size_t nrs)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name), p = pid;
		uint32_t run, seq;

		if (pid <= 0 || collector_run_of(&e->col, pid, &run, &seq) == 0)
			continue;
		for (int depth = 0; depth < 64 && p > 1 && proc_stat(p, &p, NULL) == 0; depth++)
			if (collector_run_of(&e->col, p, &run, &seq) == 0) {
				for (size_t i = 0; i < nrs; i++)
					if (rs[i].run->no == run && rs[i].n < ENGINE_STATE_PIDS &&
					    collector_track_run(&e->col, pid, run, seq) == 0) {
						rs[i].pids[rs[i].n] = pid;
						rs[i].steps[rs[i].n++] = seq;
						rs[i].born++;
					}
				break;
			}
	}
	if (d)
		closedir(d);
}

static int gap_record(struct engine *e, const struct resumed *rs, uint64_t from, uint64_t to)
{
	struct stream *s = &e->s;
	char t[TIME_LEN];

	rec_begin(s, REC_GAP, real(), rs->run->id, -1);
	fmt_time(from, t);
	rec_str(s, "from", t);
	fmt_time(to, t);
	rec_str(s, "to", t);
	rec_str(s, "reason",
		"daemon restarted: what the run's processes did in between was not "
		"traced");
	rec_open(s, "reregistered", '{');
	for (size_t i = 0; i < rs->n; i++) {
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", (int)rs->pids[i]);
		rec_str(s, pid, rs->run->steps[rs->steps[i]].name);
	}
	rec_close(s, '}');
	rec_int(s, "born_untraced", (int64_t)rs->born);
	rec_int(s, "gone", (int64_t)rs->gone);
	if (rs->secrets)
		rec_str(s, "not_reregistered",
			"the run's secret params are not kept over a restart: its processes' "
			"events could not be redacted, so they are not traced");
	return emit(e);
}

static void resume_line(struct engine *e, const char *line, struct resumed *rs, size_t *nrs)
{
	char id[ENGINE_ID_LEN], name[2 * ENGINE_NAME_MAX + 2];
	unsigned owner, seq, nsteps, nsec;
	unsigned long long start, events, t;
	int det, recs, open, pid;
	struct resumed *cur = *nrs ? &rs[*nrs - 1] : NULL;

	if (sscanf(line, "run %39s %u %d %d %llu %llu %u %u", id, &owner, &det, &recs, &start,
		   &events, &nsteps, &nsec) == 8 &&
	    *nrs < ENGINE_RUNS_MAX && !find(e, id)) {
		memset(&rs[*nrs], 0, sizeof(rs[*nrs]));
		rs[*nrs].secrets = nsec > 0;
		if ((rs[*nrs].run = resume_run(e, id, owner, det, recs, start, events)))
			(*nrs)++;
	} else if (cur && sscanf(line, "step %u %d %513s", &seq, &open, name) == 3) {
		resume_step(cur->run, seq, open, name);
	} else if (cur && sscanf(line, "pid %d %llu %u", &pid, &t, &seq) == 3 &&
		   seq < cur->run->nsteps) {
		resume_pid(e, cur, pid, t, seq);
	}
}

/* The state's log is this one: same host id and path, and a chain no shorter. */
static bool state_is_ours(const struct engine *e, char *line, unsigned long long *from)
{
	unsigned long long seq;
	char host[40];
	int at = 0;

	line[strcspn(line, "\n")] = '\0';
	return sscanf(line, "runseal-daemon-state 1 %llu %llu %39s %n", from, &seq, host, &at) ==
		   3 &&
	       at > 0 && !strcmp(host, e->seal.host_hex) && !strcmp(line + at, e->o.log_dir) &&
	       seq <= e->seal.seq;
}

int engine_resume(struct engine *e, size_t *resumed)
{
	struct resumed *rs;
	char path[128], line[1024];
	unsigned long long from = 0;
	/* Before the first process is traced again: what it does from now on is recorded. */
	uint64_t to = real();
	size_t nrs = 0;
	FILE *f;
	int rc = 0;

	*resumed = 0;
	if (state_path(e, path, sizeof(path)) < 0 || !(f = fopen(path, "re")))
		return 0;
	if (!fgets(line, sizeof(line), f) || !state_is_ours(e, line, &from)) {
		fclose(f);
		unlink(path);
		return 0;
	}
	rs = xcalloc(ENGINE_RUNS_MAX, sizeof(*rs)); /* pages touched only as runs are read */
	while (fgets(line, sizeof(line), f))
		resume_line(e, line, rs, &nrs);
	fclose(f);
	resume_children(e, rs, nrs);
	for (size_t i = 0; i < nrs; i++)
		if (gap_record(e, &rs[i], from, to) < 0)
			rc = ENGINE_EFAIL;
	*resumed = nrs;
	free(rs);
	/* Runs whose processes all ended in the gap end now, as abandoned. */
	return rc ? rc : reap_abandoned(e);
}

int engine_shutdown(struct engine *e)
{
	collector_drain(&e->col, true);
	/* Before the programs go: the tracked processes are read from the kernel's table. */
	engine_save_state(e);
	if (engine_note(e, "stop",
			"stopped by a signal: open runs stay open in the log, and a restart "
			"re-registers their processes (a gap record says what was not traced)") <
		0 ||
	    sealer_seal(&e->seal, "shutdown") < 0)
		return ENGINE_EFAIL;
	return 0;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	if (e->col_open)
		collector_close(&e->col);
	if (e->seal_open)
		sealer_close(&e->seal);
	for (size_t i = 0; i < ENGINE_RUNS_MAX; i++)
		free_run(&e->runs[i]);
	stream_free(&e->s);
	redact_free(&e->red);
	free(e->tok);
	free(e->st_pid);
	free(e->st_run);
	free(e->st_step);
	jb_free(&e->line);
	jb_free(&e->stamped);
	free(e);
}
