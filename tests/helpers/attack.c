/* attack: what a root step does to blind or fool runseal, for the self-protection tests.
 *
 * Run as a step in argv mode, so that the parent is the runseal runner. Each command prints
 * what happened as "NAME: ok" (the attack worked) or "NAME: ERRNO" (it was refused), and
 * exits 0 either way; the tests decide what is acceptable.
 *
 *   attack untrack MARKER        delete our pid from runseal's tracked map, then open MARKER
 *   attack retarget STEP MARKER  rewrite our entry to step STEP, then open MARKER
 *   attack progdelete MARKER     the same with a BPF program of our own (the map is frozen only
 *                                to bpf() calls), then open MARKER a second later
 *   attack progretarget STEP MARKER  likewise, rewriting our entry
 *   attack progmove RUN STEP MARKER  likewise, moving our entry to run number RUN (the
 *                                daemon's: $RUNSEAL_ATTACK_OWNER is its pid, whose maps
 *                                are searched instead of the parent's)
 *   attack detachlinks MARKER    BPF_LINK_DETACH every BPF link of the runner, then open MARKER
 *   attack consumer MARKER MS    move the ring's consumer position for MS ms while opening
 *   attack killcollector SECS    SIGKILL the runner, then sleep SECS (and open /etc/hostname)
 *   attack killboth SECS [MS]    SIGKILL runseal's guard, MS ms later (100) the runner, then
 *                                sleep SECS
 *   attack ptrace PID            PTRACE_PEEKDATA on PID (not attached: refused, no effect)
 *   attack vmwrite PID           process_vm_writev of nothing into PID
 *   attack getfd PID FD          pidfd_getfd of PID's FD
 *   attack kill PID SIG          kill(PID, SIG)
 *   attack tgkill PID SIG        tgkill(PID, PID, SIG)
 *   attack tkill PID SIG         tkill(PID, SIG)
 *   attack vmread PID            process_vm_readv of nothing from PID
 *   attack pidfdsig PID SIG      pidfd_send_signal(pidfd of PID, SIG)
 *   attack memfd NAME            memfd_create(NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING)
 *   attack perf                  perf_event_open of a software clock on ourselves
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

static void report(const char *what, int rc)
{
	printf("%s: %s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
}

static void touch(const char *path)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd >= 0)
		close(fd);
}

/* The id of the runner's map of this type (and name, when given), from its fdinfo. */
static int runner_map(int type, const char *name)
{
	char dir[64], path[512], link[64], line[128];
	pid_t runner =
	    getenv("RUNSEAL_ATTACK_OWNER") ? atoi(getenv("RUNSEAL_ATTACK_OWNER")) : getppid();
	struct dirent *de;
	DIR *d;
	int found = -1;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", runner);
	d = opendir(dir);
	while (d && (de = readdir(d)) && found < 0) {
		ssize_t n;
		int t = -1, id = -1;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "anon_inode:bpf-map"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", runner, de->d_name);
		f = fopen(path, "re");
		while (f && fgets(line, sizeof(line), f)) {
			sscanf(line, "map_type: %d", &t);
			sscanf(line, "map_id: %d", &id);
		}
		if (f)
			fclose(f);
		if (t != type)
			continue;
		if (name) {
			struct bpf_map_info info = {0};
			uint32_t len = sizeof(info);
			int fd = bpf_map_get_fd_by_id((uint32_t)id);

			if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0 ||
			    strcmp(info.name, name))
				id = -1;
			if (fd >= 0)
				close(fd);
		}
		found = id;
	}
	if (d)
		closedir(d);
	return found;
}

static int tracked_fd(void)
{
	int id = runner_map(BPF_MAP_TYPE_HASH, "tracked");
	int fd = id < 0 ? -1 : bpf_map_get_fd_by_id((uint32_t)id);

	if (fd < 0)
		fprintf(stderr, "attack: cannot find the runner's tracked map\n");
	return fd;
}

static int do_untrack(char **argv)
{
	uint32_t key = (uint32_t)getpid();
	int fd = tracked_fd();

	if (fd < 0)
		return 2;
	report("untrack", bpf_map_delete_elem(fd, &key));
	touch(argv[0]);
	return 0;
}

static int do_retarget(char **argv)
{
	uint32_t key = (uint32_t)getpid();
	uint32_t val[2] = {1, (uint32_t)atoi(argv[0])};
	int fd = tracked_fd();

	if (fd < 0)
		return 2;
	report("retarget", bpf_map_update_elem(fd, &key, val, BPF_ANY));
	touch(argv[1]);
	return 0;
}

/* A socket filter that deletes (step < 0) or rewrites our entry in map fd, run once. */
static int run_map_prog(int fd, int run, int step)
{
	int32_t pid = getpid();
	struct bpf_insn del[] = {
	    {.code = BPF_LD | BPF_DW | BPF_IMM,
	     .dst_reg = 1,
	     .src_reg = BPF_PSEUDO_MAP_FD,
	     .imm = fd},
	    {0},
	    {.code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = 10, .off = -4, .imm = pid},
	    {.code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = 10, .off = -16, .imm = run},
	    {.code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = 10, .off = -12, .imm = step},
	    {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 2, .src_reg = 10},
	    {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = -4},
	    {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 3, .src_reg = 10},
	    {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 3, .imm = -16},
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 4, .imm = 0},
	    {.code = BPF_JMP | BPF_CALL,
	     .imm = step < 0 ? BPF_FUNC_map_delete_elem : BPF_FUNC_map_update_elem},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	char pkt[64] = {0};
	struct bpf_test_run_opts opts = {
	    .sz = sizeof(opts), .data_in = pkt, .data_size_in = sizeof(pkt)};
	int prog = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, NULL, "GPL", del,
				 sizeof(del) / sizeof(*del), NULL);

	if (prog < 0)
		return -1;
	if (bpf_prog_test_run_opts(prog, &opts) < 0)
		return -1;
	/* The helper's result: 0 when the entry was deleted or written. */
	errno = (int)-(int32_t)opts.retval;
	return opts.retval ? -1 : 0;
}

static int do_progdelete(char **argv)
{
	int fd = tracked_fd();

	if (fd < 0)
		return 2;
	report("progdelete", run_map_prog(fd, 1, -1));
	sleep(2);
	touch(argv[0]);
	return 0;
}

static int do_progretarget(char **argv)
{
	int fd = tracked_fd();

	if (fd < 0)
		return 2;
	report("progretarget", run_map_prog(fd, 1, atoi(argv[0])));
	sleep(2);
	touch(argv[1]);
	return 0;
}

static int do_progmove(char **argv)
{
	int fd = tracked_fd();

	if (fd < 0)
		return 2;
	report("progmove", run_map_prog(fd, atoi(argv[0]), atoi(argv[1])));
	sleep(2);
	touch(argv[2]);
	return 0;
}

/* Detaching runseal's programs would blind it: tries every link the runner holds. */
static int do_detachlinks(char **argv)
{
	char dir[64], path[512], link[64], line[128];
	int tried = 0, detached = 0, last_errno = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", getppid());
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		int id = -1, fd;
		ssize_t n;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "anon_inode:bpf_link"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", getppid(), de->d_name);
		f = fopen(path, "re");
		while (f && fgets(line, sizeof(line), f))
			sscanf(line, "link_id: %d", &id);
		if (f)
			fclose(f);
		fd = id < 0 ? -1 : bpf_link_get_fd_by_id((uint32_t)id);
		if (fd < 0)
			continue;
		tried++;
		if (bpf_link_detach(fd) == 0)
			detached++;
		else
			last_errno = errno;
		close(fd);
	}
	if (d)
		closedir(d);
	errno = last_errno;
	printf("detachlinks: %d of %d detached%s%s\n", detached, tried, last_errno ? ", " : "",
	       last_errno ? strerrorname_np(last_errno) : "");
	touch(argv[0]);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A child keeps producing records while we set the consumer to the producer position, so
 * that the collector finds it moved past records it never read. */
static int do_consumer(char **argv)
{
	long page = sysconf(_SC_PAGESIZE);
	int id = runner_map(BPF_MAP_TYPE_RINGBUF, NULL);
	int fd = id < 0 ? -1 : bpf_map_get_fd_by_id((uint32_t)id);
	uint64_t end = mono_ms() + (uint64_t)atoi(argv[1]), moves = 0;
	volatile uint64_t *cons, *prod;
	pid_t child;

	if (fd < 0) {
		fprintf(stderr, "attack: cannot find the runner's ring buffer\n");
		return 2;
	}
	cons = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	prod = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, page);
	if (cons == MAP_FAILED || prod == MAP_FAILED) {
		report("consumer", -1);
		return 0;
	}
	child = fork();
	if (child == 0) {
		while (mono_ms() < end)
			touch(argv[0]);
		_exit(0);
	}
	while (mono_ms() < end) {
		uint64_t p = __atomic_load_n(prod, __ATOMIC_ACQUIRE);

		if (*cons != p) {
			__atomic_store_n(cons, p, __ATOMIC_RELEASE);
			moves++;
		}
	}
	waitpid(child, NULL, 0);
	printf("consumer: ok (%llu moves)\n", (unsigned long long)moves);
	return 0;
}

static int do_killcollector(char **argv)
{
	/* An attacker goes on once its output pipe is gone: SIGPIPE must not end it first. */
	signal(SIGPIPE, SIG_IGN);
	report("killcollector", kill(getppid(), SIGKILL));
	for (int i = 0; i < atoi(argv[0]) * 10; i++) {
		touch("/etc/hostname");
		usleep(100000);
	}
	return 0;
}

/* The guard is the runner's child named runseal-guard. */
static pid_t find_guard(void)
{
	char path[64], comm[32];
	pid_t runner = getppid(), found = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	while (d && (de = readdir(d)) && !found) {
		int pid = atoi(de->d_name), ppid = 0;
		FILE *f;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (f && fscanf(f, "%*d (%31[^)]) %*c %d", comm, &ppid) == 2 && ppid == runner &&
		    !strcmp(comm, "runseal-guard"))
			found = pid;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

static int do_killboth(char **argv)
{
	pid_t g = find_guard();

	report("killguard", g ? kill(g, SIGKILL) : (errno = ESRCH, -1));
	usleep(argv[1] ? (useconds_t)atoi(argv[1]) * 1000 : 100000);
	return do_killcollector(argv);
}

static int pidfd_of(const char *pid)
{
	return (int)syscall(SYS_pidfd_open, atoi(pid), 0);
}

static int do_ptrace(char **argv)
{
	errno = 0;
	long r = ptrace(PTRACE_PEEKDATA, atoi(argv[0]), NULL, NULL);
	report("ptrace", r == -1 && errno ? -1 : 0);
	return 0;
}

static int do_vmwrite(char **argv)
{
	report("vmwrite", (int)process_vm_writev(atoi(argv[0]), NULL, 0, NULL, 0, 0));
	return 0;
}

static int do_getfd(char **argv)
{
	int pfd = pidfd_of(argv[0]);

	report("getfd", pfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pfd, atoi(argv[1]), 0));
	return 0;
}

static int do_kill(char **argv)
{
	report("kill", kill(atoi(argv[0]), atoi(argv[1])));
	return 0;
}

static int do_tgkill(char **argv)
{
	report("tgkill", (int)syscall(SYS_tgkill, atoi(argv[0]), atoi(argv[0]), atoi(argv[1])));
	return 0;
}

static int do_tkill(char **argv)
{
	report("tkill", (int)syscall(SYS_tkill, atoi(argv[0]), atoi(argv[1])));
	return 0;
}

static int do_vmread(char **argv)
{
	report("vmread", (int)process_vm_readv(atoi(argv[0]), NULL, 0, NULL, 0, 0));
	return 0;
}

static int do_pidfdsig(char **argv)
{
	int pfd = pidfd_of(argv[0]);

	report("pidfdsig",
	       pfd < 0 ? -1 : (int)syscall(SYS_pidfd_send_signal, pfd, atoi(argv[1]), NULL, 0));
	return 0;
}

static int do_memfd(char **argv)
{
	report("memfd", memfd_create(argv[0], MFD_CLOEXEC | MFD_ALLOW_SEALING));
	return 0;
}

static int do_perf(char **argv)
{
	struct perf_event_attr a = {
	    .type = PERF_TYPE_SOFTWARE, .size = sizeof(a), .config = PERF_COUNT_SW_CPU_CLOCK};

	(void)argv;
	report("perf", (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
	return 0;
}

static const struct {
	const char *name;
	int nargs;
	int (*fn)(char **argv);
} cmds[] = {
    {"untrack", 1, do_untrack},
    {"retarget", 2, do_retarget},
    {"progdelete", 1, do_progdelete},
    {"progretarget", 2, do_progretarget},
    {"progmove", 3, do_progmove},
    {"detachlinks", 1, do_detachlinks},
    {"consumer", 2, do_consumer},
    {"killcollector", 1, do_killcollector},
    {"killboth", 1, do_killboth},
    {"ptrace", 1, do_ptrace},
    {"vmwrite", 1, do_vmwrite},
    {"getfd", 2, do_getfd},
    {"kill", 2, do_kill},
    {"tgkill", 2, do_tgkill},
    {"tkill", 2, do_tkill},
    {"vmread", 1, do_vmread},
    {"pidfdsig", 2, do_pidfdsig},
    {"memfd", 1, do_memfd},
    {"perf", 0, do_perf},
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	for (size_t i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(*cmds); i++)
		if (!strcmp(argv[1], cmds[i].name)) {
			if (argc - 2 < cmds[i].nargs) {
				fprintf(stderr, "attack %s: needs %d arguments\n", cmds[i].name,
					cmds[i].nargs);
				return 2;
			}
			return cmds[i].fn(argv + 2);
		}
	fprintf(stderr, "usage: attack COMMAND ARGS... (see tests/helpers/attack.c)\n");
	return 2;
}
