#define _GNU_SOURCE
#include "guard.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "runseal.h"

/* The state directory of one log: named by the log directory's device and inode, so that
 * runs on different logs never see each other's state. */
static int state_dir(const char *log_dir, char *out, size_t len)
{
	struct stat st;

	if (!log_dir || stat(log_dir, &st) < 0)
		return -1;
	snprintf(out, len, GUARD_STATE_DIR "/%" PRIx64 "-%" PRIx64, (uint64_t)st.st_dev,
		 (uint64_t)st.st_ino);
	return 0;
}

/* With the pid, the start time names one process even after pid reuse. */
static unsigned long long start_time(pid_t pid)
{
	unsigned long long t = 0;

	proc_stat(pid, NULL, &t);
	return t;
}

static void append_line(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, line, strlen(line)) < 0) {
		/* Nothing to do: the next start still kills and records what is left. */
	}
	close(fd);
}

static void cgroup_kill(const char *cg)
{
	char path[PATH_MAX + 16];
	int fd;

	if (!cg[0])
		return;
	snprintf(path, sizeof(path), "%s/cgroup.kill", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0) {
		/* The tracked map still names the processes. */
	}
	close(fd);
}

/* Runs in the guard: the runner is gone, so nothing records these processes any more. The
 * guard holds the BPF links, so the tracked map stays current until it exits. */
static void guard_kill_all(struct collector *c, const char *cg_run, const char *live)
{
	pid_t pids[1024], done[GUARD_KILLED_MAX];
	uint32_t steps[1024];
	size_t ndone = 0;

	for (int round = 0; round < 100; round++) {
		size_t n = collector_tracked(c, pids, steps, 1024);

		/* After the first pass, which names them: the cgroup also has what is not
		 * tracked (a step's process that could not be registered). */
		if (round == 1)
			cgroup_kill(cg_run);
		if (!n && round)
			break;
		for (size_t i = 0; i < n; i++) {
			char line[64];
			bool seen = false;

			kill(pids[i], SIGKILL);
			for (size_t k = 0; k < ndone && !seen; k++)
				seen = done[k] == pids[i];
			if (seen || ndone == GUARD_KILLED_MAX)
				continue;
			done[ndone++] = pids[i];
			snprintf(line, sizeof(line), "killed %d %u\n", pids[i], steps[i]);
			if (live[0])
				append_line(live, line);
		}
		usleep(10000);
	}
}

struct salvage {
	const char *live;
	pid_t runner;
	unsigned long unread, aimed;
};

/* A syscall aimed at the runner, from the ring: its killer's most likely. */
static bool aimed_at(const void *data, size_t size, pid_t runner, struct aimed *a)
{
	const struct rs_guard *e = data;

	if (size < sizeof(*e) || e->h.kind != RS_GUARD || !(e->tflags & RS_T_PID) ||
	    e->target != runner)
		return false;
	/* The state file is line-based: the comm keeps only what cannot break a line. */
	for (size_t i = 0; i < RS_COMM_LEN + 1; i++) {
		unsigned char ch = i < RS_COMM_LEN ? (unsigned char)e->h.comm[i] : 0;

		a->comm[i] = !ch ? 0 : ch > 0x20 && ch < 0x7f ? (char)ch : '?';
		if (!ch)
			break;
	}
	a->comm[RS_COMM_LEN] = '\0';
	if (!a->comm[0])
		snprintf(a->comm, sizeof(a->comm), "?");
	a->pid = e->h.pid;
	a->step = e->h.step;
	a->sys = e->sys;
	a->arg = e->arg[0];
	return true;
}

/* One event the runner never read: counted, and noted when it aimed at the runner. */
static int salvage_one(void *ctx, void *data, size_t size)
{
	struct salvage *sv = ctx;
	struct aimed a;
	char line[128];

	sv->unread++;
	if (sv->aimed >= 16 || !aimed_at(data, size, sv->runner, &a))
		return 0;
	snprintf(line, sizeof(line), "aimed %d %u %u %llu %s\n", a.pid, a.step, a.sys, a.arg,
		 a.comm);
	append_line(sv->live, line);
	sv->aimed++;
	return 0;
}

/* Reads what the runner left in the ring, its killer's record most likely among it. */
static void salvage(struct collector *c, pid_t runner, const char *live)
{
	struct salvage sv = {.live = live, .runner = runner};
	struct ring_buffer *rb;
	char line[64];

	if (!live[0])
		return;
	rb = ring_buffer__new(collector_events_fd(c), salvage_one, &sv, NULL);
	if (!rb)
		return;
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	snprintf(line, sizeof(line), "unread %lu\n", sv.unread);
	append_line(live, line);
}

static void guard_main(int rfd, pid_t runner, struct collector *c, const struct guard *g)
{
	char ch = 0;
	ssize_t n;

	prctl(PR_SET_NAME, "runseal-guard");
	/* Killed with the runner's terminal signals it would leave the steps behind: those stay
	 * blocked, as the runner had them. */
	while ((n = read(rfd, &ch, 1)) < 0 && errno == EINTR)
		;
	if (n == 1 && ch == 'd')
		_exit(0);
	salvage(c, runner, g->live);
	guard_kill_all(c, g->cg_run, g->live);
	/* All killed: the programs may go with this process. */
	if (g->pins[0])
		collector_unpin(g->pins);
	_exit(0);
}

static int write_state(struct guard *g, const char *log_dir, const char *run_id, const char *cg_run,
		       char *err, size_t errlen)
{
	char dir[PATH_MAX - 64], buf[3 * PATH_MAX];
	int fd;

	if (state_dir(log_dir, dir, sizeof(dir)) < 0)
		return 0;
	mkdir("/run/runseal", 0700);
	mkdir(GUARD_STATE_DIR, 0700);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(g->live, sizeof(g->live), "%s/%s", dir, run_id);
	fd = open(g->live, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", g->live, strerror(errno));
		g->live[0] = '\0';
		return -1;
	}
	snprintf(buf, sizeof(buf), "pid %d\nstart %llu\ncgroup %s\n", getpid(),
		 start_time(getpid()), cg_run);
	if (g->pins[0])
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "pins %d %s\n", g->npins,
			 g->pins);
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
		snprintf(err, errlen, "%s: %s", g->live, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int guard_fork(struct guard *g, struct collector *c, char *err, size_t errlen)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	g->pid = fork();
	if (g->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		g->pid = 0;
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (g->pid == 0) {
		close(p[1]);
		if (g->drop_fd >= 0)
			close(g->drop_fd);
		guard_main(p[0], getppid(), c, g);
	}
	close(p[0]);
	g->fd = p[1];
	return 0;
}

/* Without pins the programs die with the runner and its guard: a step that kills both goes
 * on unseen. */
static int guard_pin(struct guard *g, struct collector *c, const char *run_id, char *err,
		     size_t errlen)
{
	char e[PATH_MAX + 64];
	struct statfs fs;

	/* systemd mounts bpffs; hosts without it get one, as the BPF tools do it. */
	if ((statfs("/sys/fs/bpf", &fs) < 0 || fs.f_type != BPF_FS_MAGIC) &&
	    mount("bpf", "/sys/fs/bpf", "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0) {
		snprintf(e, sizeof(e), "mount bpffs at /sys/fs/bpf: %s", strerror(errno));
		goto fail;
	}
	if (mkdir(GUARD_PIN_DIR, 0700) < 0 && errno != EEXIST) {
		snprintf(e, sizeof(e), "%s: %s", GUARD_PIN_DIR, strerror(errno));
		goto fail;
	}
	snprintf(g->pins, sizeof(g->pins), GUARD_PIN_DIR "/%s", run_id);
	g->npins = collector_pin(c, g->pins, e, sizeof(e));
	if (g->npins >= 0)
		return 0;
fail:
	g->pins[0] = '\0';
	snprintf(err, errlen,
		 "cannot pin the BPF programs (%s): if runseal and its guard are both killed, "
		 "the steps go on untraced",
		 e);
	return 1;
}

int guard_start(struct guard *g, struct collector *c, const char *log_dir, const char *run_id,
		const char *cg_run, int drop_fd, char *err, size_t errlen)
{
	int rc;

	memset(g, 0, sizeof(*g));
	g->fd = -1;
	g->drop_fd = drop_fd;
	snprintf(g->cg_run, sizeof(g->cg_run), "%s", cg_run);
	rc = log_dir ? guard_pin(g, c, run_id, err, errlen) : 0;
	if (write_state(g, log_dir, run_id, cg_run, err, errlen) < 0) {
		/* Pins nobody would reap are worse than none. */
		if (g->pins[0])
			collector_unpin(g->pins);
		g->pins[0] = '\0';
		size_t n = strlen(err);
		snprintf(err + n, errlen - n,
			 ": if runseal is killed, the next start will not know "
			 "of run %s",
			 run_id);
		rc = 1;
	} else if (!g->live[0] && g->pins[0]) {
		collector_unpin(g->pins);
		g->pins[0] = '\0';
	}
	return guard_fork(g, c, err, errlen) < 0 ? -1 : rc;
}

int guard_check(struct guard *g, struct collector *c, char *err, size_t errlen)
{
	if (g->pid <= 0 || waitpid(g->pid, NULL, WNOHANG) != g->pid)
		return 0;
	close(g->fd);
	g->fd = -1;
	g->pid = 0;
	g->restarts++;
	return guard_fork(g, c, err, errlen) < 0 ? -1 : 1;
}

void guard_stop(struct guard *g)
{
	if (g->fd >= 0) {
		if (write(g->fd, "d", 1) != 1) {
			/* The guard then sees EOF and cleans up: the run is over anyway. */
		}
		close(g->fd);
		g->fd = -1;
	}
	if (g->pid > 0)
		waitpid(g->pid, NULL, 0);
	g->pid = 0;
	if (g->pins[0])
		collector_unpin(g->pins);
	g->pins[0] = '\0';
	if (g->live[0] && unlink(g->live) == 0) {
		char *slash = strrchr(g->live, '/');

		/* The log's directory goes with its last run (ENOTEMPTY otherwise). */
		*slash = '\0';
		rmdir(g->live);
	}
	g->live[0] = '\0';
}

/* ---- recovery at the next start ------------------------------------------------------ */

/* Kills and removes the run's cgroup and its step cgroups, noting the processes. */
static void recover_cgroup(struct crashed *cr)
{
	DIR *d = cr->cgroup[0] ? opendir(cr->cgroup) : NULL;
	struct dirent *de;
	char sub[PATH_MAX * 2];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", cr->cgroup, de->d_name);
		size_t first = cr->nkilled;
		cr->nkilled +=
		    cgroup_pids(sub, cr->killed + cr->nkilled, GUARD_KILLED_MAX - cr->nkilled);
		/* Step cgroups are named SEQ-NAME. */
		for (size_t i = first; i < cr->nkilled; i++)
			cr->steps[i] = (unsigned)atoi(de->d_name);
	}
	cgroup_kill(cr->cgroup);
	for (int i = 0; i < 100; i++) {
		pid_t left[1];

		rewinddir(d);
		size_t n = cgroup_pids(cr->cgroup, left, 1);
		while ((de = readdir(d)))
			if (de->d_type == DT_DIR && de->d_name[0] != '.') {
				snprintf(sub, sizeof(sub), "%s/%s", cr->cgroup, de->d_name);
				if (rmdir(sub) < 0)
					n++;
			}
		if (!n)
			break;
		usleep(10000);
	}
	closedir(d);
	rmdir(cr->cgroup);
}

/* An event in the pinned ring, written after the runner died: a syscall aimed at the
 * runner, or the exit of a process the programs killed. */
static int reap_one(void *ctx, void *data, size_t size)
{
	struct crashed *cr = ctx;
	const struct rs_exit *x = data;

	cr->unread++;
	if (cr->naimed < 16 && aimed_at(data, size, cr->runner, &cr->aimed[cr->naimed]))
		cr->naimed++;
	else if (size >= sizeof(*x) && x->h.kind == RS_EXIT && (x->code & 0x7f) == SIGKILL &&
		 cr->nstopped < GUARD_KILLED_MAX)
		cr->stopped[cr->nstopped++] = (pid_t)x->h.pid;
	return 0;
}

/* Runner and guard both died: the pinned programs killed the run's processes as they made
 * their next recorded syscall; what is still alive is killed now, and the pins go. */
static void recover_pins(struct crashed *cr)
{
	pid_t pids[GUARD_KILLED_MAX];
	uint32_t steps[GUARD_KILLED_MAX];
	int n;

	if (!cr->pins[0] || strncmp(cr->pins, GUARD_PIN_DIR "/", strlen(GUARD_PIN_DIR) + 1))
		return;
	n = collector_reap(cr->pins, cr->npins, pids, steps, GUARD_KILLED_MAX - cr->nkilled,
			   reap_one, cr);
	for (int i = 0; i < n; i++) {
		cr->steps[cr->nkilled] = steps[i];
		cr->killed[cr->nkilled++] = pids[i];
	}
}

static int read_state(const char *path, struct crashed *cr, unsigned long long *start)
{
	FILE *f = fopen(path, "re");
	char line[PATH_MAX + 32];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		int pid;
		unsigned step;

		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "pid ", 4))
			cr->runner = atoi(line + 4);
		else if (!strncmp(line, "start ", 6))
			*start = strtoull(line + 6, NULL, 10);
		else if (!strncmp(line, "cgroup ", 7))
			snprintf(cr->cgroup, sizeof(cr->cgroup), "%s", line + 7);
		else if (!strncmp(line, "pins ", 5)) {
			char *dir = strchr(line + 5, ' ');

			cr->npins = atoi(line + 5);
			if (dir)
				snprintf(cr->pins, sizeof(cr->pins), "%s", dir + 1);
		} else if (!strncmp(line, "unread ", 7))
			cr->unread = strtoul(line + 7, NULL, 10);
		else if (!strncmp(line, "aimed ", 6) && cr->naimed < 16) {
			struct aimed *a = &cr->aimed[cr->naimed];

			if (sscanf(line + 6, "%d %u %u %llu %16s", &a->pid, &a->step, &a->sys,
				   &a->arg, a->comm) == 5)
				cr->naimed++;
		} else if (sscanf(line, "killed %d %u", &pid, &step) == 2 &&
			   cr->nkilled < GUARD_KILLED_MAX) {
			cr->steps[cr->nkilled] = step;
			cr->killed[cr->nkilled++] = pid;
		}
	}
	fclose(f);
	cr->nguard = cr->nkilled;
	return 0;
}

int guard_recover(const char *log_dir, void (*fn)(void *ctx, const struct crashed *cr), void *ctx,
		  char *err, size_t errlen)
{
	char dir[PATH_MAX - 64], path[PATH_MAX];
	struct dirent *de;
	int count = 0;
	DIR *d;

	if (state_dir(log_dir, dir, sizeof(dir)) < 0 || !(d = opendir(dir)))
		return 0;
	while ((de = readdir(d))) {
		struct crashed *cr;
		unsigned long long start = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		cr = calloc(1, sizeof(*cr));
		if (!cr) {
			snprintf(err, errlen, "out of memory");
			closedir(d);
			return -1;
		}
		snprintf(cr->run_id, sizeof(cr->run_id), "%s", de->d_name);
		/* A runner still alive is a run in progress, not a crash. */
		if (read_state(path, cr, &start) < 0 ||
		    (cr->runner > 0 && start && start_time(cr->runner) == start)) {
			free(cr);
			continue;
		}
		recover_pins(cr);
		recover_cgroup(cr);
		fn(ctx, cr);
		unlink(path);
		free(cr);
		count++;
	}
	closedir(d);
	rmdir(dir);
	return count;
}
