// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Kernel side of runseal: record exec, fork, exit, open and connect of tracked processes.
 *
 * A process is tracked when its tgid is in the `tracked` map: the runner puts a step's first
 * process there before it execs, and fork inheritance carries the entry to every descendant.
 * For every other process on the host each program costs one hash lookup and returns.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "runseal.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AT_FDCWD -100
#define NAME_CAP 256 /* a dentry name is at most 255 bytes */
#define MAX_ARGS 128 /* argv pointers walked for a failed exec */
#define O_WRONLY 01
#define O_CREAT	 0100
#define O_TRUNC	 01000

/* Masks v in asm: the verifier needs the bound on the very register a helper gets, and the
 * compiler drops a C mask it can prove redundant after a clamp. */
#define BOUND(v, mask) asm volatile("%[x] &= " #mask : [x] "+r"(v))

/* Lets the benchmark measure the bare cost of the attached tracepoints. */
const volatile bool floor_only = false;
/* The collector is woken once this much waits, not for every event: a wake-up is an IPI.
 * It also polls every few milliseconds, so a quiet ring is read soon all the same. */
const volatile __u64 wake_bytes = 65536;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, struct rs_track);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RS_KIND_MAX);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

/* Events are built here, then copied to the ring buffer at their real size. */
#define SCRATCH_SIZE (sizeof(struct rs_exec) + RS_DATA_SIZE)
/* A power of two above SCRATCH_SIZE, to bound sizes for the verifier. */
#define SCRATCH_MASK 0x7fff
struct scratch {
	u8 raw[SCRATCH_MASK + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

#define EXEC_BASE __builtin_offsetof(struct rs_exec, data)
#define OPEN_BASE __builtin_offsetof(struct rs_open, data)

/* Syscall arguments saved at entry, keyed by pid_tgid, read back at exit. */
struct open_args {
	const char *name;
	u64 flags;
	u32 mode;
	s32 dfd;
	u16 sys;
};

struct conn_args {
	const void *addr;
	s32 fd;
	u32 addrlen;
};

struct exec_args {
	const char *filename;
	const char *const *argv;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct open_args);
} open_args SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct conn_args);
} conn_args SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct exec_args);
} exec_args SEC(".maps");

static __always_inline struct rs_track *current_track(void)
{
	u32 tgid;

	if (floor_only)
		return NULL;
	tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&tracked, &tgid);
}

static __always_inline void *get_scratch(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void fill_hdr(struct rs_hdr *h, u32 kind, const struct rs_track *t)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u64 id = bpf_get_current_pid_tgid();

	h->ts = bpf_ktime_get_boot_ns();
	h->kind = kind;
	h->pid = id >> 32;
	h->tid = (u32)id;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = BPF_CORE_READ(task, cred, uid.val);
	h->euid = BPF_CORE_READ(task, cred, euid.val);
	h->gid = BPF_CORE_READ(task, cred, gid.val);
	h->run = t->run;
	h->step = t->step;
	h->flags = 0;
	h->pad = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline void count_drop(u32 kind)
{
	u64 *n = bpf_map_lookup_elem(&drops, &kind);

	if (n)
		*n += 1;
}

static __always_inline void submit(void *ev, u64 size, u32 kind)
{
	if (size > SCRATCH_SIZE)
		size = SCRATCH_SIZE;
	BOUND(size, 0x7fff);
	((struct rs_hdr *)ev)->size = size;
	/* Wake once, when this event makes the backlog cross the threshold: past it the
	 * collector is awake or polls soon, and a wake-up per event is an IPI per event. */
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = avail < wake_bytes && avail + size >= wake_bytes ? BPF_RB_FORCE_WAKEUP
								       : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, ev, size, flags))
		count_drop(kind);
}

/* State of a path walk, carried across bpf_loop iterations: one loop body is verified once,
 * where an unrolled walk would exceed the verifier's budget. */
struct walk {
	struct dentry *d;
	struct mount *m;
	u32 pos; /* absolute offset in the scratch buffer */
	u16 n;
	bool done;
};

static long walk_one(u64 i, void *ctx)
{
	struct walk *w = ctx;
	struct scratch *s = get_scratch();
	struct dentry *d = w->d, *root, *parent;
	struct mount *m = w->m;
	u32 pos = w->pos;

	if (!s)
		return 1;
	root = BPF_CORE_READ(m, mnt.mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	if (d == root || d == parent) {
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);

		if (mp == m || !mp) {
			w->done = true;
			return 1;
		}
		w->d = BPF_CORE_READ(m, mnt_mountpoint);
		w->m = mp;
		return 0;
	}
	if (pos > SCRATCH_SIZE - NAME_CAP)
		return 1;
	long len = bpf_probe_read_kernel_str(&s->raw[pos], NAME_CAP, BPF_CORE_READ(d, d_name.name));
	if (len <= 0)
		return 1;
	w->pos = pos + len;
	w->n++;
	w->d = parent;
	return 0;
}

/* Writes the components of dentry d on mount vm at data[off..], data starting at byte base of
 * the scratch buffer, leaf first, crossing mount points up to the global root. Returns the new
 * offset; *depth counts the components, 0xffff when the walk stopped before the root. */
static __always_inline u32 put_path(u32 base, u32 off, struct dentry *d, struct vfsmount *vm,
				    u16 *depth)
{
	struct walk w = {.d = d, .m = container_of(vm, struct mount, mnt)};

	w.pos = base + off;
	bpf_loop(RS_DEPTH_MAX * 2, walk_one, &w, 0);
	*depth = w.done ? w.n : 0xffff;
	return w.pos - base;
}

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline u32 put_file_path(u32 base, u32 off, struct file *f, u16 *depth)
{
	if (!f) {
		*depth = 0;
		return off;
	}
	return put_path(base, off, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt),
			depth);
}

static __always_inline u32 put_cwd(u32 base, u32 off, struct task_struct *task, u16 *depth)
{
	return put_path(base, off, BPF_CORE_READ(task, fs, pwd.dentry),
			BPF_CORE_READ(task, fs, pwd.mnt), depth);
}

/* Length of a string read by bpf_probe_read_*_str without its NUL; flags a full buffer. */
static __always_inline u32 str_len(long n, u32 cap, u32 *flags, u32 flag)
{
	if (n <= 0)
		return 0;
	if ((u32)n >= cap)
		*flags |= flag;
	return (u32)n - 1;
}

/* ---- exec ---------------------------------------------------------------------------- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct rs_track *t = current_track();
	struct rs_exec *e;
	u32 off, len;
	u16 depth;

	if (!t || !(e = get_scratch()))
		return 0;
	fill_hdr(&e->h, RS_EXEC, t);
	e->ret = 0;
	e->argc = BPF_CORE_READ(bprm, argc);

	long n = bpf_probe_read_kernel_str(e->data, RS_NAME_MAX, BPF_CORE_READ(bprm, filename));
	off = str_len(n, RS_NAME_MAX, &e->h.flags, RS_F_NAME_TRUNC);
	e->filename_len = off;

	unsigned long start = BPF_CORE_READ(p, mm, arg_start);
	unsigned long end = BPF_CORE_READ(p, mm, arg_end);
	len = end > start ? end - start : 0;
	e->argv_total = len;
	if (len > RS_ARGV_MAX) {
		len = RS_ARGV_MAX;
		e->h.flags |= RS_F_ARGV_TRUNC;
	}
	BOUND(len, 0x1fff);
	if (off > RS_NAME_MAX)
		return 0;
	if (len && bpf_probe_read_user(&e->data[off], len, (void *)start))
		len = 0;
	e->argv_len = len;
	off += len;

	u32 cwd0 = off;
	off = put_cwd(EXEC_BASE, off, p, &depth);
	e->cwd_len = off - cwd0;
	e->cwd_depth = depth;
	if (depth == 0xffff)
		e->h.flags |= RS_F_CWD_TRUNC;

	u32 exe0 = off;
	off = put_file_path(EXEC_BASE, off, BPF_CORE_READ(bprm, file), &depth);
	e->exe_len = off - exe0;
	e->exe_depth = depth;
	if (depth == 0xffff)
		e->h.flags |= RS_F_PATH_TRUNC;
	submit(e, sizeof(*e) + off, RS_EXEC);
	return 0;
}

static __always_inline int exec_enter(const char *filename, const char *const *argv)
{
	u64 id = bpf_get_current_pid_tgid();
	struct exec_args a = {.filename = filename, .argv = argv};

	if (!current_track())
		return 0;
	bpf_map_update_elem(&exec_args, &id, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int on_execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int on_execveat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

struct argv_walk {
	const char *const *argv;
	u32 pos;  /* absolute offset in the scratch buffer */
	u32 left; /* bytes still allowed */
	u32 argc;
	bool trunc;
};

static long argv_one(u64 i, void *ctx)
{
	struct argv_walk *w = ctx;
	struct scratch *s = get_scratch();
	const char *const *argv = w->argv;
	const char *arg = NULL;
	u32 pos = w->pos, left = w->left;

	if (!s || bpf_probe_read_user(&arg, sizeof(arg), &argv[i & (MAX_ARGS - 1)]) || !arg)
		return 1;
	if (!left || left > RS_ARGV_MAX || pos > SCRATCH_SIZE - RS_ARGV_MAX) {
		w->trunc = true;
		return 1;
	}
	long n = bpf_probe_read_user_str(&s->raw[pos], left, arg);
	if (n <= 0)
		return 1;
	w->pos = pos + n;
	w->left = left - n;
	w->argc++;
	if (w->left == 0)
		w->trunc = true;
	return 0;
}

/* Copies up to MAX_ARGS strings of a user argv array into data[off..] (data at byte base); returns
 * bytes used. */
static __always_inline u32 put_user_argv(u32 base, u32 off, const char *const *argv, u32 *argc,
					 u32 *flags)
{
	struct argv_walk w = {.argv = argv, .left = RS_ARGV_MAX};

	w.pos = base + off;
	if (bpf_loop(MAX_ARGS, argv_one, &w, 0) == MAX_ARGS)
		w.trunc = true;
	if (w.trunc)
		*flags |= RS_F_ARGV_TRUNC;
	*argc = w.argc;
	return w.pos - base - off;
}

/* A successful exec is recorded by sched_process_exec from the new image; here only the
 * failures, whose arguments are still in the old, intact address space. */
static __always_inline int exec_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;
	struct exec_args *a;
	struct rs_track *t = current_track();
	struct rs_exec *e;
	u32 off;
	u16 depth;

	if (!t)
		return 0;
	a = bpf_map_lookup_elem(&exec_args, &id);
	if (!a)
		return 0;
	if (ctx->ret >= 0 || !(e = get_scratch()))
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, RS_EXEC, t);
	e->ret = ctx->ret;
	long n = bpf_probe_read_user_str(e->data, RS_NAME_MAX, a->filename);
	off = str_len(n, RS_NAME_MAX, &e->h.flags, RS_F_NAME_TRUNC);
	e->filename_len = off;
	if (off > RS_NAME_MAX)
		goto out;
	e->argv_len = put_user_argv(EXEC_BASE, off, a->argv, &e->argc, &e->h.flags);
	e->argv_total = e->argv_len;
	off += e->argv_len;
	u32 cwd0 = off;
	off = put_cwd(EXEC_BASE, off, task, &depth);
	e->cwd_len = off - cwd0;
	e->cwd_depth = depth;
	if (depth == 0xffff)
		e->h.flags |= RS_F_CWD_TRUNC;
	e->exe_len = 0;
	e->exe_depth = 0;
	submit(e, sizeof(*e) + off, RS_EXEC);
out:
	bpf_map_delete_elem(&exec_args, &id);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int on_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int on_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx);
}

/* ---- fork and exit ------------------------------------------------------------------- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct rs_track *t;
	struct rs_fork *e;
	u32 ptgid, cpid;

	if (floor_only)
		return 0;
	/* Threads share their process's entry; only a new process needs one. */
	cpid = child->pid;
	if (cpid != child->tgid)
		return 0;
	ptgid = parent->tgid;
	t = bpf_map_lookup_elem(&tracked, &ptgid);
	if (!t)
		return 0;
	/* A child that cannot be tracked would vanish from the record: count it as lost. */
	if (bpf_map_update_elem(&tracked, &cpid, t, BPF_ANY))
		count_drop(RS_FORK);
	e = get_scratch();
	if (!e)
		return 0;
	fill_hdr(&e->h, RS_FORK, t);
	e->child_pid = cpid;
	e->pad = 0;
	submit(e, sizeof(*e), RS_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	struct rs_track *t;
	struct rs_exit *e;
	u32 tgid;

	if (floor_only)
		return 0;
	tgid = p->tgid;
	t = bpf_map_lookup_elem(&tracked, &tgid);
	if (!t)
		return 0;
	/* The process ends with its last thread: signal->live reached zero before this hook. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	e = get_scratch();
	if (e) {
		fill_hdr(&e->h, RS_EXIT, t);
		e->code = p->exit_code;
		e->pad = 0;
		submit(e, sizeof(*e), RS_EXIT);
	}
	bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

/* ---- open ---------------------------------------------------------------------------- */

static __always_inline int open_enter(u16 sys, s32 dfd, const char *name, u64 flags, u32 mode)
{
	u64 id = bpf_get_current_pid_tgid();
	struct open_args a = {.name = name, .flags = flags, .mode = mode, .dfd = dfd, .sys = sys};

	if (!current_track())
		return 0;
	bpf_map_update_elem(&open_args, &id, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(0, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int on_openat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	if (!current_track())
		return 0;
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return open_enter(1, ctx->args[0], (const char *)ctx->args[1], how.flags, how.mode);
}

SEC("tracepoint/syscalls/sys_enter_open")
int on_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(2, AT_FDCWD, (const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int on_creat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(3, AT_FDCWD, (const char *)ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC,
			  ctx->args[1]);
}

/* The name is read again at exit, when the syscall has faulted it in. A success is resolved
 * from the opened file's dentries; a failure gets its base directory (cwd or dirfd), which
 * the collector joins with the name. */
static __always_inline int open_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;
	struct open_args *a;
	struct rs_track *t = current_track();
	struct rs_open *e;
	u32 off, res0;
	u16 depth = 0;

	if (!t)
		return 0;
	a = bpf_map_lookup_elem(&open_args, &id);
	if (!a) {
		/* Tracked processes always pass the entry first: its saved arguments were
		 * evicted, so this open is lost. */
		count_drop(RS_OPEN);
		return 0;
	}
	e = get_scratch();
	if (!e)
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, RS_OPEN, t);
	e->ret = ctx->ret;
	e->flags = a->flags;
	e->mode = a->mode;
	e->dfd = a->dfd;
	e->syscall = a->sys;
	long n = bpf_probe_read_user_str(e->data, RS_NAME_MAX, a->name);
	off = str_len(n, RS_NAME_MAX, &e->h.flags, RS_F_NAME_TRUNC);
	e->name_len = off;
	if (off > RS_NAME_MAX)
		goto out;
	res0 = off;
	if (ctx->ret >= 0) {
		e->h.flags |= RS_F_RESOLVED;
		off = put_file_path(OPEN_BASE, off, fd_file(task, ctx->ret), &depth);
	} else if (e->data[0] != '/') {
		e->h.flags |= RS_F_BASE;
		if (a->dfd == AT_FDCWD)
			off = put_cwd(OPEN_BASE, off, task, &depth);
		else
			off = put_file_path(OPEN_BASE, off, fd_file(task, a->dfd), &depth);
	}
	e->res_len = off - res0;
	e->res_depth = depth;
	if (depth == 0xffff)
		e->h.flags |= RS_F_PATH_TRUNC;
	submit(e, sizeof(*e) + off, RS_OPEN);
out:
	bpf_map_delete_elem(&open_args, &id);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int on_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int on_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_open")
int on_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int on_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx);
}

/* ---- connect ------------------------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_connect")
int on_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct conn_args a = {
	    .fd = ctx->args[0], .addr = (const void *)ctx->args[1], .addrlen = ctx->args[2]};

	if (!current_track())
		return 0;
	bpf_map_update_elem(&conn_args, &id, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int on_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct rs_track *t = current_track();
	struct conn_args *a;
	struct rs_connect *e;
	u32 len;

	if (!t)
		return 0;
	a = bpf_map_lookup_elem(&conn_args, &id);
	if (!a) {
		count_drop(RS_CONNECT);
		return 0;
	}
	e = get_scratch();
	if (!e)
		goto out;
	fill_hdr(&e->h, RS_CONNECT, t);
	e->ret = ctx->ret;
	e->fd = a->fd;
	e->addrlen = a->addrlen;
	e->pad = 0;
	len = a->addrlen;
	if (len > RS_SOCKADDR_MAX)
		len = RS_SOCKADDR_MAX;
	__builtin_memset(e->sockaddr, 0, RS_SOCKADDR_MAX);
	if (len && bpf_probe_read_user(e->sockaddr, len, a->addr))
		e->addrlen = 0;
	submit(e, sizeof(*e), RS_CONNECT);
out:
	bpf_map_delete_elem(&conn_args, &id);
	return 0;
}

/* ---- self-protection (issue 8) ------------------------------------------------------- */

/* The runner's tgid: the only process whose RS_MARK_TRACK calls register a pid. The tracked
 * map is frozen once loaded, so no bpf() caller, root steps included, can write it. */
const volatile __u32 runner_tgid = 0;

SEC("tracepoint/syscalls/sys_enter_prctl")
int on_prctl_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 opt = ctx->args[0];
	u32 pid;

	if (opt != RS_MARK_TRACK && opt != RS_MARK_UNTRACK)
		return 0;
	if (bpf_get_current_pid_tgid() >> 32 != runner_tgid)
		return 0;
	pid = ctx->args[1];
	if (opt == RS_MARK_UNTRACK) {
		bpf_map_delete_elem(&tracked, &pid);
		return 0;
	}
	/* A tracked process keeps its step: registration never moves one. */
	struct rs_track t = {.run = ctx->args[2], .step = ctx->args[3]};
	bpf_map_update_elem(&tracked, &pid, &t, BPF_NOEXIST);
	return 0;
}

static __always_inline struct rs_guard *guard_begin(u32 sys, const struct rs_track *t)
{
	struct rs_guard *e = get_scratch();

	if (!e)
		return NULL;
	fill_hdr(&e->h, RS_GUARD, t);
	e->sys = sys;
	e->tflags = 0;
	e->target = 0;
	e->target_run = 0;
	e->target_step = 0;
	e->obj_type = RS_OBJ_NONE;
	e->obj_id = 0;
	e->name_len = 0;
	e->pad = 0;
	e->arg[0] = e->arg[1] = e->arg[2] = e->arg[3] = 0;
	return e;
}

static __always_inline void guard_name(struct rs_guard *e, const void *uptr)
{
	long n = bpf_probe_read_user_str(e->data, RS_GUARD_NAME_MAX, uptr);

	e->name_len = str_len(n, RS_GUARD_NAME_MAX, &e->h.flags, RS_F_NAME_TRUNC);
}

static __always_inline void guard_submit(struct rs_guard *e)
{
	submit(e, sizeof(*e) + (e->name_len & (RS_GUARD_NAME_MAX - 1)), RS_GUARD);
}

static __always_inline void guard_target(struct rs_guard *e, s32 pid)
{
	u32 key = pid;
	struct rs_track *t;

	e->tflags |= RS_T_PID;
	e->target = pid;
	if (pid <= 0 || !(t = bpf_map_lookup_elem(&tracked, &key)))
		return;
	e->tflags |= RS_T_TRACKED;
	e->target_run = t->run;
	e->target_step = t->step;
}

/* The pid a pidfd refers to (its struct pid, numbers[0]: the initial namespace). pidfs
 * (6.9 on) keeps the struct pid in the inode; the older anonymous-inode pidfd, whose inode
 * is shared, in the file. */
static __always_inline s32 pidfd_pid(int fd)
{
	struct file *f = fd_file((struct task_struct *)bpf_get_current_task(), fd);
	struct pid *p;

	if (!f)
		return -1;
	p = BPF_CORE_READ(f, f_inode, i_private);
	if (!p)
		p = BPF_CORE_READ(f, private_data);
	if (!p)
		return -1;
	return BPF_CORE_READ(p, numbers[0].nr);
}

/* The map, program or link behind a bpf() fd: those are anonymous-inode files named
 * "bpf-map", "bpf-prog", and "bpf_link" when created or "bpf-link" when got by id. */
static __always_inline void guard_bpf_fd(struct rs_guard *e, int fd)
{
	struct file *f = fd_file((struct task_struct *)bpf_get_current_task(), fd);
	char n[8] = {};
	void *priv;

	if (!f)
		return;
	bpf_probe_read_kernel_str(n, sizeof(n), BPF_CORE_READ(f, f_path.dentry, d_name.name));
	if (n[0] != 'b' || n[1] != 'p' || n[2] != 'f')
		return;
	priv = BPF_CORE_READ(f, private_data);
	if (n[3] == '-' && n[4] == 'm') {
		e->obj_type = RS_OBJ_MAP;
		e->obj_id = BPF_CORE_READ((struct bpf_map *)priv, id);
	} else if (n[3] == '-' && n[4] == 'p') {
		e->obj_type = RS_OBJ_PROG;
		e->obj_id = BPF_CORE_READ((struct bpf_prog *)priv, aux, id);
	} else if ((n[3] == '_' || n[3] == '-') && n[4] == 'l') {
		e->obj_type = RS_OBJ_LINK;
		e->obj_id = BPF_CORE_READ((struct bpf_link *)priv, id);
	}
}

/* Which attribute of a bpf() command names its object: an fd at a byte offset, an id at
 * offset 0, a path pointer at offset 0, or a name inside the attribute. */
static __always_inline void guard_bpf_attr(struct rs_guard *e, u32 cmd, const u8 *uattr, u64 size)
{
	u32 w[12] = {};
	int fdoff = -1;

	/* An attribute shorter than w may end at the end of a page: then only its size. */
	if (bpf_probe_read_user(w, sizeof(w), uattr)) {
		u32 n = size < sizeof(w) ? size : sizeof(w);

		BOUND(n, 0x3f);
		if (n && n <= sizeof(w))
			bpf_probe_read_user(w, n, uattr);
	}
	switch (cmd) {
	case BPF_MAP_LOOKUP_ELEM:
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_GET_NEXT_KEY:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
	case BPF_MAP_FREEZE:
	case BPF_OBJ_GET_INFO_BY_FD:
	case BPF_LINK_CREATE:
	case BPF_LINK_UPDATE:
	case BPF_LINK_DETACH:
	case BPF_PROG_TEST_RUN:
	case BPF_PROG_BIND_MAP:
	case BPF_ITER_CREATE:
		fdoff = 0;
		break;
	case BPF_MAP_LOOKUP_BATCH:
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
	case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
		fdoff = 9; /* batch.map_fd, after four u64 and count */
		break;
	case BPF_PROG_ATTACH:
	case BPF_PROG_DETACH:
		fdoff = 1; /* attach_bpf_fd */
		break;
	case BPF_OBJ_PIN:
		fdoff = 2; /* bpf_fd, after the pathname pointer */
		guard_name(e, (const void *)((u64)w[0] | (u64)w[1] << 32));
		break;
	case BPF_OBJ_GET:
	case BPF_RAW_TRACEPOINT_OPEN:
		guard_name(e, (const void *)((u64)w[0] | (u64)w[1] << 32));
		break;
	case BPF_MAP_GET_FD_BY_ID:
	case BPF_PROG_GET_FD_BY_ID:
	case BPF_LINK_GET_FD_BY_ID:
	case BPF_BTF_GET_FD_BY_ID:
	case BPF_MAP_GET_NEXT_ID:
	case BPF_PROG_GET_NEXT_ID:
	case BPF_LINK_GET_NEXT_ID:
	case BPF_BTF_GET_NEXT_ID:
		e->obj_type = RS_OBJ_ID;
		e->obj_id = w[0];
		break;
	case BPF_PROG_LOAD:
		e->arg[2] = w[0]; /* prog_type */
		guard_name(e, uattr + 48);
		break;
	case BPF_MAP_CREATE:
		e->arg[2] = w[0]; /* map_type */
		guard_name(e, uattr + 28);
		break;
	}
	if (fdoff >= 0 && fdoff < 12)
		guard_bpf_fd(e, (int)w[fdoff]);
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int on_bpf_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_BPF, t)))
		return 0;
	e->arg[0] = ctx->args[0];
	e->arg[1] = ctx->args[2];
	guard_bpf_attr(e, ctx->args[0], (const u8 *)ctx->args[1], ctx->args[2]);
	guard_submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_perf_event_open")
int on_perf_event_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;
	struct {
		u32 type, size;
		u64 config;
	} attr = {};

	if (!t || !(e = guard_begin(RS_G_PERF_EVENT_OPEN, t)))
		return 0;
	bpf_probe_read_user(&attr, sizeof(attr), (void *)ctx->args[0]);
	e->arg[0] = attr.type;
	e->arg[1] = attr.config;
	e->arg[2] = ctx->args[2]; /* cpu */
	e->arg[3] = ctx->args[4]; /* flags */
	guard_target(e, ctx->args[1]);
	guard_submit(e);
	return 0;
}

/* A syscall aimed at one pid: ptrace, process_vm_writev/readv. */
static __always_inline int guard_pid(u32 sys, s32 pid, u64 a0, u64 a1, u64 a2)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(sys, t)))
		return 0;
	e->arg[0] = a0;
	e->arg[1] = a1;
	e->arg[2] = a2;
	guard_target(e, pid);
	guard_submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ptrace")
int on_ptrace_enter(struct trace_event_raw_sys_enter *ctx)
{
	return guard_pid(RS_G_PTRACE, ctx->args[1], ctx->args[0], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_process_vm_writev")
int on_process_vm_writev_enter(struct trace_event_raw_sys_enter *ctx)
{
	return guard_pid(RS_G_PROCESS_VM_WRITEV, ctx->args[0], ctx->args[4], 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_process_vm_readv")
int on_process_vm_readv_enter(struct trace_event_raw_sys_enter *ctx)
{
	return guard_pid(RS_G_PROCESS_VM_READV, ctx->args[0], ctx->args[4], 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_pidfd_getfd")
int on_pidfd_getfd_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!current_track())
		return 0;
	return guard_pid(RS_G_PIDFD_GETFD, pidfd_pid(ctx->args[0]), ctx->args[1], ctx->args[0],
			 ctx->args[2]);
}

/* A signal is recorded when it may reach a process outside the run: signals within the
 * step's own process group and to tracked processes are the run's own business. */
static __always_inline int guard_signal(u32 sys, s64 pid, u64 sig, u64 a1)
{
	struct task_struct *task;
	struct rs_track *t = current_track(), *tt;
	struct rs_guard *e;
	u32 key;

	if (!t || pid == 0)
		return 0;
	if (pid < -1) {
		task = (struct task_struct *)bpf_get_current_task();
		if (-pid == BPF_CORE_READ(task, signal, pids[PIDTYPE_PGID], numbers[0].nr))
			return 0;
	} else if (pid > 0) {
		key = pid;
		tt = bpf_map_lookup_elem(&tracked, &key);
		if (tt && tt->run == t->run)
			return 0;
	}
	if (!(e = guard_begin(sys, t)))
		return 0;
	e->arg[0] = sig;
	e->arg[1] = a1;
	guard_target(e, pid);
	guard_submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int on_kill_enter(struct trace_event_raw_sys_enter *ctx)
{
	return guard_signal(RS_G_KILL, (s32)ctx->args[0], ctx->args[1], 0);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int on_tgkill_enter(struct trace_event_raw_sys_enter *ctx)
{
	s32 tgid = ctx->args[0];

	return guard_signal(RS_G_TGKILL, tgid > 0 ? tgid : -1, ctx->args[2], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int on_tkill_enter(struct trace_event_raw_sys_enter *ctx)
{
	s32 tid = ctx->args[0];

	return guard_signal(RS_G_TKILL, tid > 0 ? tid : -1, ctx->args[1], 0);
}

SEC("tracepoint/syscalls/sys_enter_pidfd_send_signal")
int on_pidfd_send_signal_enter(struct trace_event_raw_sys_enter *ctx)
{
	s32 pid;

	if (!current_track())
		return 0;
	pid = pidfd_pid(ctx->args[0]);
	return guard_signal(RS_G_PIDFD_SEND_SIGNAL, pid > 0 ? pid : -1, ctx->args[1], ctx->args[0]);
}

/* Kernels built without module support have no module tracepoints: the collector does not
 * load these two there (the syscalls fail with ENOSYS). */
SEC("tracepoint/syscalls/sys_enter_init_module")
int on_init_module_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_INIT_MODULE, t)))
		return 0;
	e->arg[0] = ctx->args[1]; /* len */
	guard_name(e, (const void *)ctx->args[2]);
	guard_submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_finit_module")
int on_finit_module_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_FINIT_MODULE, t)))
		return 0;
	e->arg[0] = ctx->args[0]; /* fd */
	e->arg[1] = ctx->args[2]; /* flags */
	guard_name(e, (const void *)ctx->args[1]);
	guard_submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_memfd_create")
int on_memfd_create_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_MEMFD_CREATE, t)))
		return 0;
	e->arg[0] = ctx->args[1]; /* flags */
	guard_name(e, (const void *)ctx->args[0]);
	guard_submit(e);
	return 0;
}
