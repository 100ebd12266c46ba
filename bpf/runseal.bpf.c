// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Kernel side of runseal: record exec, fork, exit, open and connect of tracked processes.
 *
 * A process is tracked when its tgid is in the `tracked` map: the runner puts a step's first
 * process there before it execs, and fork inheritance carries the entry to every descendant.
 * For every other process on the host a program returns after one hash lookup, or before
 * any for a syscall it does not record.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "runseal.h"

/* The syscall dispatch reads x86-64 registers and numbers (syscall_64.tbl, and i386 ones
 * for compat); another architecture needs its own tables, not silently wrong records. */
#ifndef __TARGET_ARCH_x86
#error "runseal's BPF programs support x86-64 only"
#endif

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
	struct socket *sock; /* behind fd at entry: the call holds it, whatever fd becomes */
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

/* The runner's tgid: the only process whose RS_MARK_TRACK calls register a pid. The tracked
 * map is frozen once loaded, so no bpf() caller, root steps included, can write it. */
const volatile __u32 runner_tgid = 0;
/* Set by `runseal run`, which pins the links: when its runner and its guard are both killed,
 * the programs stay attached and stop the run's processes instead of letting them go on
 * unseen (docs/SECURITY.md). */
const volatile bool fail_closed = false;

/* Slot 0 is nonzero once the runner has exited. A map, frozen like the others: a global
 * variable would be mapped writable into user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} runner_gone SEC(".maps");

#define SIGKILL 9

/* A tracked process whose runner is gone: nothing reads what it does any more. It is killed
 * at its next recorded syscall, exec or fork; a syscall already entered still completes, and
 * its event still goes to the ring, which the next start reads. */
static __always_inline void stop_orphan(void)
{
	u32 zero = 0, *gone;

	if (!fail_closed)
		return;
	gone = bpf_map_lookup_elem(&runner_gone, &zero);
	if (gone && *gone)
		bpf_send_signal(SIGKILL);
}

static __always_inline struct rs_track *current_track(void)
{
	struct rs_track *t;
	u32 tgid;

	if (floor_only)
		return NULL;
	tgid = bpf_get_current_pid_tgid() >> 32;
	t = bpf_map_lookup_elem(&tracked, &tgid);
	if (t)
		stop_orphan();
	return t;
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
	/* issue 8: where the walk should end, and whether it passed there */
	bool saw_root;
	bool pseudo;
	struct mount *ns_root;
	struct dentry *root_d;
	struct vfsmount *root_m;
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
	if (d == w->root_d && &m->mnt == w->root_m)
		w->saw_root = true;
	root = BPF_CORE_READ(m, mnt.mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	if (d == parent && d != root) {
		/* A pseudo file's own dentry (memfd, O_TMPFILE-less anon files): its name is
		 * all there is, on a mount no namespace holds. */
		if (pos > SCRATCH_SIZE - NAME_CAP)
			return 1;
		long len = bpf_probe_read_kernel_str(&s->raw[pos], NAME_CAP,
						     BPF_CORE_READ(d, d_name.name));
		if (len <= 0)
			return 1;
		w->pos = pos + len;
		w->n++;
		w->pseudo = true;
		w->done = true;
		return 1;
	}
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
 * offset; *depth counts the components and flags the walk's end (RS_DEPTH_* in runseal.h). */
static __always_inline u32 put_path(u32 base, u32 off, struct dentry *d, struct vfsmount *vm,
				    u16 *depth)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct walk w = {.d = d, .m = container_of(vm, struct mount, mnt)};

	w.pos = base + off;
	w.ns_root = BPF_CORE_READ(task, nsproxy, mnt_ns, root);
	w.root_d = BPF_CORE_READ(task, fs, root.dentry);
	w.root_m = BPF_CORE_READ(task, fs, root.mnt);
	bpf_loop(RS_DEPTH_MAX * 2, walk_one, &w, 0);
	if (!w.done) {
		*depth = RS_DEPTH_TRUNC;
		return w.pos - base;
	}
	*depth = w.n;
	/* Ended at a mount outside the namespace (open_tree, fsmount, memfd's internal one),
	 * or never passed the process's root (an fd from outside its chroot). */
	if (w.m != w.ns_root)
		*depth |= RS_DEPTH_DETACHED;
	else if (!w.saw_root)
		*depth |= RS_DEPTH_OUTSIDE;
	/* What the kernel calls deleted: unhashed, or a pseudo file with no link (memfd). */
	if (w.pseudo ? BPF_CORE_READ(d, d_inode, __i_nlink) == 0
		     : !BPF_CORE_READ(d, d_hash.pprev) && d != BPF_CORE_READ(d, d_parent))
		*depth |= RS_DEPTH_DELETED;
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

/* Argument N of a 64-bit syscall, from the registers the raw sys_enter tracepoint passes:
 * the x86-64 convention is rdi, rsi, rdx, r10, r8, r9. */
static __always_inline u64 sys_arg(const struct pt_regs *regs, int n)
{
	switch (n) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	case 2:
		return regs->dx;
	case 3:
		return regs->r10;
	case 4:
		return regs->r8;
	default:
		return regs->r9;
	}
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

static __always_inline int sys_execve_enter(const struct pt_regs *regs)
{
	return exec_enter((const char *)sys_arg(regs, 0), (const char *const *)sys_arg(regs, 1));
}

static __always_inline int sys_execveat_enter(const struct pt_regs *regs)
{
	return exec_enter((const char *)sys_arg(regs, 1), (const char *const *)sys_arg(regs, 2));
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
static __always_inline int exec_exit(long ret)
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
	if (ret >= 0 || !(e = get_scratch()))
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, RS_EXEC, t);
	e->ret = ret;
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
	stop_orphan();
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
	if (fail_closed && tgid == runner_tgid && !BPF_CORE_READ(p, signal, live.counter)) {
		u32 zero = 0, one = 1;

		bpf_map_update_elem(&runner_gone, &zero, &one, BPF_ANY);
	}
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

static __always_inline int sys_openat_enter(const struct pt_regs *regs)
{
	return open_enter(0, sys_arg(regs, 0), (const char *)sys_arg(regs, 1), sys_arg(regs, 2),
			  sys_arg(regs, 3));
}

static __always_inline int sys_openat2_enter(const struct pt_regs *regs)
{
	struct open_how how = {};

	if (!current_track())
		return 0;
	bpf_probe_read_user(&how, sizeof(how), (void *)sys_arg(regs, 2));
	return open_enter(1, sys_arg(regs, 0), (const char *)sys_arg(regs, 1), how.flags, how.mode);
}

static __always_inline int sys_open_enter(const struct pt_regs *regs)
{
	return open_enter(2, AT_FDCWD, (const char *)sys_arg(regs, 0), sys_arg(regs, 1),
			  sys_arg(regs, 2));
}

static __always_inline int sys_creat_enter(const struct pt_regs *regs)
{
	return open_enter(3, AT_FDCWD, (const char *)sys_arg(regs, 0), O_CREAT | O_WRONLY | O_TRUNC,
			  sys_arg(regs, 1));
}

/* The name is read again at exit, when the syscall has faulted it in. A success is resolved
 * from the opened file's dentries; a failure gets its base directory (cwd or dirfd), which
 * the collector joins with the name. */
static __always_inline int open_exit(long ret)
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
	e->ret = ret;
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
	if (ret >= 0) {
		e->h.flags |= RS_F_RESOLVED;
		off = put_file_path(OPEN_BASE, off, fd_file(task, ret), &depth);
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

/* ---- sockets as the kernel holds them (issue 8) ---------------------------------------- */

#define S_IFMT	 0170000
#define S_IFSOCK 0140000
#define AF_INET	 2
#define AF_INET6 10

/* The socket behind fd, or NULL when fd is not a socket. */
static __always_inline struct socket *fd_socket(struct task_struct *task, int fd)
{
	struct file *f = fd_file(task, fd);

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	return BPF_CORE_READ(f, private_data);
}

/* The peer (remote) or the local address of an inet socket; family 0 for anything else. */
static __always_inline void sock_endpoint(struct sock *sk, bool remote, struct rs_endpoint *ep)
{
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	__builtin_memset(ep, 0, sizeof(*ep));
	if (family == AF_INET) {
		ep->family = family;
		if (remote) {
			bpf_core_read(ep->addr, 4, &sk->__sk_common.skc_daddr);
			ep->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		} else {
			bpf_core_read(ep->addr, 4, &sk->__sk_common.skc_rcv_saddr);
			ep->port = BPF_CORE_READ(sk, __sk_common.skc_num);
		}
	} else if (family == AF_INET6) {
		ep->family = family;
		if (remote) {
			bpf_core_read(ep->addr, 16, &sk->__sk_common.skc_v6_daddr);
			ep->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		} else {
			bpf_core_read(ep->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
			ep->port = BPF_CORE_READ(sk, __sk_common.skc_num);
		}
	}
}

/* ---- connect ------------------------------------------------------------------------- */

static __always_inline int sys_connect_enter(const struct pt_regs *regs)
{
	u64 id = bpf_get_current_pid_tgid();
	struct conn_args a = {.fd = sys_arg(regs, 0),
			      .addr = (const void *)sys_arg(regs, 1),
			      .addrlen = sys_arg(regs, 2)};

	if (!current_track())
		return 0;
	a.sock = fd_socket((struct task_struct *)bpf_get_current_task(), a.fd);
	bpf_map_update_elem(&conn_args, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline int connect_exit(long ret)
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
	e->ret = ret;
	e->fd = a->fd;
	e->addrlen = a->addrlen;
	e->pad = 0;
	len = a->addrlen;
	if (len > RS_SOCKADDR_MAX)
		len = RS_SOCKADDR_MAX;
	__builtin_memset(e->sockaddr, 0, RS_SOCKADDR_MAX);
	if (len && bpf_probe_read_user(e->sockaddr, len, a->addr))
		e->addrlen = 0;
	/* The user buffer can be rewritten by another thread during the call; the socket's
	 * own destination cannot. The socket is the one taken at entry: another thread can
	 * dup2 a different one onto the fd while the call runs. */
	struct socket *sock = a->sock;
	if (sock)
		sock_endpoint(BPF_CORE_READ(sock, sk), true, &e->peer);
	else
		__builtin_memset(&e->peer, 0, sizeof(e->peer));
	submit(e, sizeof(*e), RS_CONNECT);
out:
	bpf_map_delete_elem(&conn_args, &id);
	return 0;
}

/* ---- self-protection (issue 8) ------------------------------------------------------- */

static __always_inline int sys_prctl_enter(const struct pt_regs *regs)
{
	u64 opt = sys_arg(regs, 0);
	u32 pid;

	if (opt != RS_MARK_TRACK && opt != RS_MARK_UNTRACK)
		return 0;
	if (bpf_get_current_pid_tgid() >> 32 != runner_tgid)
		return 0;
	pid = sys_arg(regs, 1);
	if (opt == RS_MARK_UNTRACK) {
		bpf_map_delete_elem(&tracked, &pid);
		return 0;
	}
	/* A tracked process keeps its step: registration never moves one. */
	struct rs_track t = {.run = sys_arg(regs, 2), .step = sys_arg(regs, 3)};
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

static __always_inline int sys_bpf_enter(const struct pt_regs *regs)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_BPF, t)))
		return 0;
	e->arg[0] = sys_arg(regs, 0);
	e->arg[1] = sys_arg(regs, 2);
	guard_bpf_attr(e, sys_arg(regs, 0), (const u8 *)sys_arg(regs, 1), sys_arg(regs, 2));
	guard_submit(e);
	return 0;
}

static __always_inline int sys_perf_event_open_enter(const struct pt_regs *regs)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;
	struct {
		u32 type, size;
		u64 config;
	} attr = {};

	if (!t || !(e = guard_begin(RS_G_PERF_EVENT_OPEN, t)))
		return 0;
	bpf_probe_read_user(&attr, sizeof(attr), (void *)sys_arg(regs, 0));
	e->arg[0] = attr.type;
	e->arg[1] = attr.config;
	e->arg[2] = sys_arg(regs, 2); /* cpu */
	e->arg[3] = sys_arg(regs, 4); /* flags */
	guard_target(e, sys_arg(regs, 1));
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

static __always_inline int sys_ptrace_enter(const struct pt_regs *regs)
{
	return guard_pid(RS_G_PTRACE, sys_arg(regs, 1), sys_arg(regs, 0), sys_arg(regs, 2),
			 sys_arg(regs, 3));
}

static __always_inline int sys_process_vm_writev_enter(const struct pt_regs *regs)
{
	return guard_pid(RS_G_PROCESS_VM_WRITEV, sys_arg(regs, 0), sys_arg(regs, 4), 0, 0);
}

static __always_inline int sys_process_vm_readv_enter(const struct pt_regs *regs)
{
	return guard_pid(RS_G_PROCESS_VM_READV, sys_arg(regs, 0), sys_arg(regs, 4), 0, 0);
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

static __always_inline int sys_kill_enter(const struct pt_regs *regs)
{
	return guard_signal(RS_G_KILL, (s32)sys_arg(regs, 0), sys_arg(regs, 1), 0);
}

static __always_inline int sys_tgkill_enter(const struct pt_regs *regs)
{
	s32 tgid = sys_arg(regs, 0);

	return guard_signal(RS_G_TGKILL, tgid > 0 ? tgid : -1, sys_arg(regs, 2), sys_arg(regs, 1));
}

static __always_inline int sys_tkill_enter(const struct pt_regs *regs)
{
	s32 tid = sys_arg(regs, 0);

	return guard_signal(RS_G_TKILL, tid > 0 ? tid : -1, sys_arg(regs, 1), 0);
}

static __always_inline int sys_pidfd_send_signal_enter(const struct pt_regs *regs)
{
	s32 pid;

	if (!current_track())
		return 0;
	pid = pidfd_pid(sys_arg(regs, 0));
	return guard_signal(RS_G_PIDFD_SEND_SIGNAL, pid > 0 ? pid : -1, sys_arg(regs, 1),
			    sys_arg(regs, 0));
}

/* Kernels built without module support have no module tracepoints: the collector does not
 * load these two there (the syscalls fail with ENOSYS). */
static __always_inline int sys_init_module_enter(const struct pt_regs *regs)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_INIT_MODULE, t)))
		return 0;
	e->arg[0] = sys_arg(regs, 1); /* len */
	guard_name(e, (const void *)sys_arg(regs, 2));
	guard_submit(e);
	return 0;
}

static __always_inline int sys_finit_module_enter(const struct pt_regs *regs)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_FINIT_MODULE, t)))
		return 0;
	e->arg[0] = sys_arg(regs, 0); /* fd */
	e->arg[1] = sys_arg(regs, 2); /* flags */
	guard_name(e, (const void *)sys_arg(regs, 1));
	guard_submit(e);
	return 0;
}

static __always_inline int sys_memfd_create_enter(const struct pt_regs *regs)
{
	struct rs_track *t = current_track();
	struct rs_guard *e;

	if (!t || !(e = guard_begin(RS_G_MEMFD_CREATE, t)))
		return 0;
	e->arg[0] = sys_arg(regs, 1); /* flags */
	guard_name(e, (const void *)sys_arg(regs, 0));
	guard_submit(e);
	return 0;
}

/* ==== capture coverage (issue 8): file changes, privilege changes, network ============== */

/* Every syscall below saves its raw arguments at entry and is built into an event at exit.
 * The op tells the exit which event; for file changes a descriptor packed into the saved
 * entry tells which argument is which, so one exit function serves them all. */
/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl, a stable ABI). */
#define NR_open		     2
#define NR_connect	     42
#define NR_accept	     43
#define NR_sendto	     44
#define NR_recvfrom	     45
#define NR_sendmsg	     46
#define NR_recvmsg	     47
#define NR_bind		     49
#define NR_listen	     50
#define NR_execve	     59
#define NR_kill		     62
#define NR_truncate	     76
#define NR_ftruncate	     77
#define NR_mkdir	     83
#define NR_mknod	     133
#define NR_mkdirat	     258
#define NR_mknodat	     259
#define NR_rename	     82
#define NR_rmdir	     84
#define NR_creat	     85
#define NR_link		     86
#define NR_unlink	     87
#define NR_symlink	     88
#define NR_chmod	     90
#define NR_fchmod	     91
#define NR_chown	     92
#define NR_fchown	     93
#define NR_lchown	     94
#define NR_ptrace	     101
#define NR_setuid	     105
#define NR_setgid	     106
#define NR_setreuid	     113
#define NR_setregid	     114
#define NR_setresuid	     117
#define NR_setresgid	     119
#define NR_setfsuid	     122
#define NR_setfsgid	     123
#define NR_capset	     126
#define NR_prctl	     157
#define NR_mount	     165
#define NR_umount2	     166
#define NR_init_module	     175
#define NR_tkill	     200
#define NR_tgkill	     234
#define NR_openat	     257
#define NR_fchownat	     260
#define NR_unlinkat	     263
#define NR_renameat	     264
#define NR_linkat	     265
#define NR_symlinkat	     266
#define NR_fchmodat	     268
#define NR_accept4	     288
#define NR_perf_event_open   298
#define NR_sendmmsg	     307
#define NR_process_vm_readv  310
#define NR_process_vm_writev 311
#define NR_finit_module	     313
#define NR_renameat2	     316
#define NR_memfd_create	     319
#define NR_bpf		     321
#define NR_execveat	     322
#define NR_pidfd_send_signal 424
#define NR_open_tree	     428
#define NR_move_mount	     429
#define NR_openat2	     437
#define NR_fchmodat2	     452

struct sys_args {
	u64 a[6];
	u64 desc;
	u32 op; /* event kind << 16 | op */
	u32 nr; /* the syscall, checked at exit: a thread that died in a call leaves its entry */
	struct rs_endpoint route; /* a datagram's destination as the kernel routed it */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct sys_args);
} sys_args SEC(".maps");

#define NA 0xf /* no such argument */
/* Argument indexes of a file change, a nibble each: dirfd and name of path slots 0 and 1, the
 * fd, two numbers, the flags, and a raw string (not a path: mount's fstype). */
#define DESC(d0, n0, d1, n1, fd, x0, x1, fl, str)                                                  \
	((u64)(d0) | (u64)(n0) << 4 | (u64)(d1) << 8 | (u64)(n1) << 12 | (u64)(fd) << 16 |         \
	 (u64)(x0) << 20 | (u64)(x1) << 24 | (u64)(fl) << 28 | (u64)(str) << 32)
#define NIB(d, i) (((d) >> ((i)*4)) & 0xf)
/* Slot 0 holds a string that is not resolved (symlink's target, mount's source). */
#define DESC_RAW0 (1ull << 36)

#define KIND_OP(kind, op) ((u32)(kind) << 16 | (op))

static __always_inline int save_args(const struct pt_regs *regs, u32 op, u64 desc)
{
	u64 id;
	struct sys_args a = {.desc = desc, .op = op, .nr = regs->orig_ax};

	if (!current_track())
		return 0;
	id = bpf_get_current_pid_tgid();
	/* The x86-64 syscall convention: rdi, rsi, rdx, r10, r8, r9. */
	a.a[0] = regs->di;
	a.a[1] = regs->si;
	a.a[2] = regs->dx;
	a.a[3] = regs->r10;
	a.a[4] = regs->r8;
	a.a[5] = regs->r9;
	bpf_map_update_elem(&sys_args, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline u64 arg_of(const struct sys_args *a, u32 i)
{
	if (i >= 6)
		return 0;
	BOUND(i, 7); /* 6 and 7 land on desc and op: still inside the value */
	return a->a[i];
}

/* Saved arguments of this thread's syscall, or NULL: untracked, not saved (filtered at
 * entry, when optional), or evicted (then counted as lost). */
static __always_inline struct sys_args *saved_args(u32 kind, long nr, struct rs_track **t,
						   bool optional)
{
	u64 id = bpf_get_current_pid_tgid();
	struct sys_args *a;

	*t = current_track();
	if (!*t)
		return NULL;
	a = bpf_map_lookup_elem(&sys_args, &id);
	/* Keeps the compiler from merging the NULL test with the kind test into a shape the
	 * verifier cannot follow. */
	asm volatile("" : "+r"(a));
	if (a && a->op >> 16 == kind && a->nr == nr)
		return a;
	if (!optional)
		count_drop(kind);
	return NULL;
}

static __always_inline void drop_args(void)
{
	u64 id = bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&sys_args, &id);
}

/* ---- file changes ------------------------------------------------------------------------ */

#define FSOP_BASE __builtin_offsetof(struct rs_fsop, data)
#define FSOP_ROOM (SCRATCH_SIZE - FSOP_BASE - RS_NAME_MAX - 1)

/* Base of a path slot: the file itself (fd argument, or an empty name with a dirfd: AT_EMPTY_PATH),
 * else the directory a relative name starts from (the dirfd or cwd). */
static __always_inline u32 put_slot_base(struct rs_pslot *ps, u32 off, struct task_struct *task,
					 s32 dfd, bool empty)
{
	u32 b0 = off;
	u16 depth = 0;

	if (empty && dfd != AT_FDCWD) {
		ps->flags |= RS_PS_FD;
		off = put_file_path(FSOP_BASE, off, fd_file(task, dfd), &depth);
	} else if (dfd == AT_FDCWD) {
		ps->flags |= RS_PS_BASE;
		off = put_cwd(FSOP_BASE, off, task, &depth);
	} else {
		ps->flags |= RS_PS_BASE;
		off = put_file_path(FSOP_BASE, off, fd_file(task, dfd), &depth);
	}
	ps->base_len = off - b0;
	ps->base_depth = depth;
	return off;
}

/* A path slot from its name (in user memory, or a kernel copy) and the dirfd it is
 * relative to. */
static __always_inline u32 put_slot_name(struct rs_fsop *e, u32 i, u32 off, s32 dfd,
					 const char *name, bool raw, bool kernel,
					 struct task_struct *task)
{
	struct rs_pslot *ps = &e->slot[i & 1];
	u32 len = 0;
	char first = 0;
	long n;

	ps->flags = RS_PS_PRESENT;
	if (off > FSOP_ROOM)
		return off;
	if (kernel)
		n = bpf_probe_read_kernel_str(&e->data[off], RS_NAME_MAX, name);
	else
		n = bpf_probe_read_user_str(&e->data[off], RS_NAME_MAX, name);
	if (n >= RS_NAME_MAX)
		ps->flags |= RS_PS_TRUNC;
	len = n > 0 ? n - 1 : 0;
	if (len)
		first = e->data[off];
	ps->name_len = len;
	off += len;
	if (raw || first == '/')
		return off;
	return put_slot_base(ps, off, task, dfd, !len);
}

static __always_inline u32 put_slot(struct rs_fsop *e, u32 i, u32 off, const struct sys_args *a,
				    u32 dfd_i, u32 name_i, bool raw, struct task_struct *task)
{
	if (name_i >= 6)
		return off;
	return put_slot_name(e, i, off, dfd_i < 6 ? (s32)arg_of(a, dfd_i) : AT_FDCWD,
			     (const char *)arg_of(a, name_i), raw, false, task);
}

static __always_inline int fsop_exit(long nr, long ret)
{
	struct task_struct *task;
	struct rs_track *t;
	struct sys_args *a = saved_args(RS_FSOP, nr, &t, false);
	struct rs_fsop *e;
	u32 off = 0, fd_i;
	u64 d;

	if (!a)
		return 0;
	e = get_scratch();
	if (!e)
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	d = a->desc;
	fill_hdr(&e->h, RS_FSOP, t);
	e->ret = ret;
	e->op = a->op & 0xffff;
	e->num[0] = arg_of(a, NIB(d, 5));
	e->num[1] = arg_of(a, NIB(d, 6));
	e->aflags = arg_of(a, NIB(d, 7));
	e->fd = -1;
	e->str_len = 0;
	e->user_data = 0;
	e->uring = 0;
	e->pad = 0;
	__builtin_memset(e->slot, 0, sizeof(e->slot));
	fd_i = NIB(d, 4);
	if (fd_i < 6) {
		e->fd = arg_of(a, fd_i);
		e->slot[0].flags = RS_PS_PRESENT;
		off = put_slot_base(&e->slot[0], off, task, e->fd, true);
	} else {
		off = put_slot(e, 0, off, a, NIB(d, 0), NIB(d, 1), d & DESC_RAW0, task);
	}
	off = put_slot(e, 1, off, a, NIB(d, 2), NIB(d, 3), false, task);
	if (NIB(d, 8) < 6 && off <= FSOP_ROOM) {
		long n = bpf_probe_read_user_str(&e->data[off], RS_FSOP_STR_MAX,
						 (void *)arg_of(a, NIB(d, 8)));
		e->str_len = n > 0 ? n - 1 : 0;
		off += e->str_len;
	}
	submit(e, sizeof(*e) + off, RS_FSOP);
out:
	drop_args();
	return 0;
}

/* ---- privilege changes ------------------------------------------------------------------- */

static __always_inline int cred_exit(long nr, long ret)
{
	struct task_struct *task;
	const struct cred *cr;
	struct rs_track *t;
	struct sys_args *a = saved_args(RS_CRED, nr, &t, false);
	struct rs_cred *e;

	if (!a)
		return 0;
	e = get_scratch();
	if (!e)
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, RS_CRED, t);
	e->ret = ret;
	e->op = a->op & 0xffff;
	e->nargs = a->desc;
	for (int i = 0; i < 3; i++)
		e->arg[i] = a->a[i];
	/* What the process holds now is what counts: the arguments only say what was asked. */
	cr = BPF_CORE_READ(task, cred);
	e->uid[0] = BPF_CORE_READ(cr, uid.val);
	e->uid[1] = BPF_CORE_READ(cr, euid.val);
	e->uid[2] = BPF_CORE_READ(cr, suid.val);
	e->uid[3] = BPF_CORE_READ(cr, fsuid.val);
	e->gid[0] = BPF_CORE_READ(cr, gid.val);
	e->gid[1] = BPF_CORE_READ(cr, egid.val);
	e->gid[2] = BPF_CORE_READ(cr, sgid.val);
	e->gid[3] = BPF_CORE_READ(cr, fsgid.val);
	e->cap_now[0] = BPF_CORE_READ(cr, cap_effective.val);
	e->cap_now[1] = BPF_CORE_READ(cr, cap_permitted.val);
	e->cap_now[2] = BPF_CORE_READ(cr, cap_inheritable.val);
	__builtin_memset(e->cap_req, 0, sizeof(e->cap_req));
	if (e->op == RS_CR_CAPSET) {
		/* struct __user_cap_data_struct[2]: effective, permitted, inheritable (u32 each) */
		u32 data[6] = {};

		bpf_probe_read_user(data, sizeof(data), (void *)a->a[1]);
		for (int i = 0; i < 3; i++)
			e->cap_req[i] = data[i] | (u64)data[i + 3] << 32;
	}
	submit(e, sizeof(*e), RS_CRED);
out:
	drop_args();
	return 0;
}

/* ---- network beyond connect ---------------------------------------------------------------- */

#define MSG_FASTOPEN 0x20000000
#define SOCK_STREAM  1
#define MMSG_MAX     1024 /* sendmmsg entries looked at: the kernel's UIO_MAXIOV */

/* Destinations already recorded, per process: a datagram stream to one peer is one record,
 * not one per datagram. Eviction only repeats a record, it never hides one. */
struct dest_key {
	u32 tgid;
	u32 len;
	u8 sa[RS_SOCKADDR_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dest_key);
	__type(value, u8);
} dests SEC(".maps");

struct net_call {
	struct rs_track *t;
	s64 ret;
	u32 op;
	s32 fd;
	u32 msg_flags;
	const void *sa; /* caller's sockaddr, or NULL */
	u32 salen;
	bool dedupe;
	bool peer_from_sa; /* the peer is sa, the sender the kernel wrote back (recvfrom) */
	const struct rs_endpoint *route; /* the kernel's destination, when it routed one */
};

/* Builds one rs_net event; with dedupe, only for a destination new to the process. */
static __always_inline void net_emit(const struct net_call *c)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct socket *sock = fd_socket(
	    task, c->op == RS_NET_ACCEPT || c->op == RS_NET_ACCEPT4 ? (s32)c->ret : c->fd);
	struct rs_net *e = get_scratch();
	struct sock *sk;
	u32 len = c->salen;

	if (!e || !sock)
		return;
	sk = BPF_CORE_READ(sock, sk);
	if (len > RS_SOCKADDR_MAX)
		len = RS_SOCKADDR_MAX;
	__builtin_memset(e->sockaddr, 0, RS_SOCKADDR_MAX);
	e->addrlen = 0;
	BOUND(len, 0x7f);
	if (c->sa && len && bpf_probe_read_user(e->sockaddr, len, c->sa) == 0)
		e->addrlen = c->salen;
	/* inet peers keyed the same however they were learned: the one the kernel routed,
	 * else the sockaddr; others by their bytes. */
	struct rs_endpoint ep = {};
	u16 fam = *(u16 *)e->sockaddr;

	if (c->route && c->route->family) {
		ep = *c->route;
	} else if (fam == AF_INET) {
		ep.family = fam;
		ep.port = bpf_ntohs(*(u16 *)&e->sockaddr[2]);
		__builtin_memcpy(ep.addr, &e->sockaddr[4], 4);
	} else if (fam == AF_INET6) {
		ep.family = fam;
		ep.port = bpf_ntohs(*(u16 *)&e->sockaddr[2]);
		__builtin_memcpy(ep.addr, &e->sockaddr[8], 16);
	}
	/* Local traffic of the host's own services (netlink, unix) is no network peer. */
	if (c->peer_from_sa && !ep.family)
		return;
	/* A stream socket's bind is its listen's business. */
	if (c->op == RS_NET_BIND && BPF_CORE_READ(sock, type) == SOCK_STREAM)
		return;
	if (c->dedupe) {
		struct dest_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .len = len};
		u8 one = 1;

		if (ep.family) {
			key.len = 0xffffffff;
			__builtin_memcpy(key.sa, &ep, sizeof(ep));
		} else {
			__builtin_memcpy(key.sa, e->sockaddr, RS_SOCKADDR_MAX);
		}
		if (bpf_map_lookup_elem(&dests, &key))
			return;
		bpf_map_update_elem(&dests, &key, &one, BPF_ANY);
	}
	fill_hdr(&e->h, RS_NET, c->t);
	e->ret = c->ret;
	e->op = c->op;
	e->fd = c->fd;
	e->sk_type = BPF_CORE_READ(sock, type);
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->msg_flags = c->msg_flags;
	e->pad = 0;
	sock_endpoint(sk, false, &e->local);
	if ((c->route && c->route->family) || c->peer_from_sa)
		e->remote = ep;
	else
		sock_endpoint(sk, true, &e->remote);
	submit(e, sizeof(*e), RS_NET);
}

/* A datagram's destination is copied into the kernel and routed during the call; the
 * route lookup is where a kernel copy can be seen (the caller's buffer can change under a
 * second thread before runseal reads it at exit). One lookup for every other route lookup
 * on the host. */
static __always_inline struct sys_args *routing_send(void)
{
	u64 id = bpf_get_current_pid_tgid();
	struct sys_args *a;
	u32 op;

	if (floor_only)
		return NULL;
	a = bpf_map_lookup_elem(&sys_args, &id);
	if (!a || a->op >> 16 != RS_NET)
		return NULL;
	op = a->op & 0xffff;
	/* The first lookup is the send's own: a packet received in a softirq during the call
	 * may route too, later. */
	if ((op != RS_NET_SENDTO && op != RS_NET_SENDMSG) || a->route.family)
		return NULL;
	return a;
}

/* Output route lookups say they come from the loopback device; input ones name the
 * device the packet came in on. */
#define LOOPBACK_IFINDEX 1

SEC("tp_btf/fib_table_lookup")
int BPF_PROG(on_fib_lookup, u32 tb_id, const struct flowi4 *flp, const struct fib_nh_common *nhc,
	     int err)
{
	struct sys_args *a = routing_send();

	if (!a || BPF_CORE_READ(flp, __fl_common.flowic_iif) != LOOPBACK_IFINDEX)
		return 0;
	a->route.family = AF_INET;
	bpf_core_read(a->route.addr, 4, &flp->daddr);
	a->route.port = bpf_ntohs(BPF_CORE_READ(flp, uli.ports.dport));
	return 0;
}

SEC("tp_btf/fib6_table_lookup")
int BPF_PROG(on_fib6_lookup, const struct net *net, const struct fib6_result *res,
	     struct fib6_table *table, const struct flowi6 *flp)
{
	struct sys_args *a = routing_send();

	if (!a || BPF_CORE_READ(flp, __fl_common.flowic_iif) != LOOPBACK_IFINDEX)
		return 0;
	a->route.family = AF_INET6;
	bpf_core_read(a->route.addr, 16, &flp->daddr);
	a->route.port = bpf_ntohs(BPF_CORE_READ(flp, uli.ports.dport));
	return 0;
}

/* sendto and sendmsg without an address go to the connected peer, which connect recorded:
 * only those with an address, or with MSG_FASTOPEN (a connect in disguise), are saved. */
static __always_inline int net_enter(const struct pt_regs *regs, u32 op)
{
	struct user_msghdr m;

	if (!current_track())
		return 0;
	if (op == RS_NET_SENDTO && !regs->r8 && !(regs->r10 & MSG_FASTOPEN))
		return 0;
	if (op == RS_NET_SENDMSG && (bpf_probe_read_user(&m, sizeof(m), (void *)regs->si) ||
				     (!m.msg_name && !(regs->dx & MSG_FASTOPEN))))
		return 0;
	/* A receive says who sent only when asked to (a server's unconnected socket). */
	if (op == RS_NET_RECVFROM && (!regs->r8 || !regs->r9))
		return 0;
	if (op == RS_NET_RECVMSG &&
	    (bpf_probe_read_user(&m, sizeof(m), (void *)regs->si) || !m.msg_name))
		return 0;
	return save_args(regs, KIND_OP(RS_NET, op), 0);
}

struct mmsg_walk {
	struct net_call c;
	const struct mmsghdr *vec;
	u32 n;
};

static long mmsg_one(u64 i, void *ctx)
{
	struct mmsg_walk *w = ctx;
	struct user_msghdr m;

	if (i >= w->n)
		return 1;
	if (bpf_probe_read_user(&m, sizeof(m), &w->vec[i & (MMSG_MAX - 1)].msg_hdr))
		return 1;
	if (m.msg_name) {
		w->c.sa = m.msg_name;
		w->c.salen = m.msg_namelen;
		net_emit(&w->c);
	}
	return 0;
}

/* optional: sends without an address were not saved (net_enter). */
static __always_inline int net_exit(long nr, long ret, bool optional)
{
	struct rs_track *t;
	struct sys_args *a = saved_args(RS_NET, nr, &t, optional);
	struct net_call c = {};
	u32 op;

	if (!a)
		return 0;
	op = a->op & 0xffff;
	c.t = t;
	c.ret = ret;
	c.op = op;
	c.fd = a->a[0];
	switch (op) {
	case RS_NET_SENDTO:
		c.msg_flags = a->a[3];
		c.sa = (const void *)a->a[4];
		c.salen = a->a[5];
		break;
	case RS_NET_SENDMSG: {
		struct user_msghdr m = {};

		bpf_probe_read_user(&m, sizeof(m), (void *)a->a[1]);
		c.msg_flags = a->a[2];
		c.sa = m.msg_name;
		c.salen = m.msg_namelen;
		break;
	}
	case RS_NET_SENDMMSG: {
		struct mmsg_walk w = {.c = c, .vec = (const void *)a->a[1]};

		w.c.msg_flags = a->a[3];
		w.c.dedupe = true;
		/* The entries sent, or for a failure the first one, whose address it was. */
		w.n = ret > 0 ? ret : 1;
		if (w.n > a->a[2])
			w.n = a->a[2];
		if (w.n > MMSG_MAX)
			w.n = MMSG_MAX;
		bpf_loop(MMSG_MAX, mmsg_one, &w, 0);
		goto out;
	}
	case RS_NET_ACCEPT:
	case RS_NET_ACCEPT4:
		if (ret < 0) /* a non-blocking server polls with EAGAIN all day */
			goto out;
		break;
	case RS_NET_BIND:
		c.sa = (const void *)a->a[1];
		c.salen = a->a[2];
		break;
	case RS_NET_RECVFROM: {
		u32 salen = 0;

		if (ret < 0)
			goto out;
		bpf_probe_read_user(&salen, sizeof(salen), (void *)a->a[5]);
		c.sa = (const void *)a->a[4];
		c.salen = salen;
		c.dedupe = c.peer_from_sa = true;
		break;
	}
	case RS_NET_RECVMSG: {
		struct user_msghdr m = {};

		if (ret < 0)
			goto out;
		bpf_probe_read_user(&m, sizeof(m), (void *)a->a[1]);
		c.sa = m.msg_name;
		c.salen = m.msg_namelen; /* the kernel wrote back the sender's length */
		c.dedupe = c.peer_from_sa = true;
		break;
	}
	}
	if (op == RS_NET_SENDTO || op == RS_NET_SENDMSG) {
		/* A Fast Open send connects: the socket then holds its destination. */
		if (c.msg_flags & MSG_FASTOPEN) {
			c.op = RS_NET_FASTOPEN;
		} else {
			c.dedupe = true;
			c.route = &a->route;
		}
	}
	net_emit(&c);
out:
	drop_args();
	return 0;
}

/* ---- 32-bit and x32 syscalls ------------------------------------------------------------ */

#define TS_COMPAT   0x0002     /* thread_info.status: in a 32-bit syscall */
#define X32_SYSCALL 0x40000000 /* __X32_SYSCALL_BIT */

struct compat_key {
	u32 tgid;
	u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct compat_key);
	__type(value, u8);
} compat_seen SEC(".maps");

/* A compat syscall carries a number from another table: it must never reach the 64-bit
 * switches below. One field read, no map lookup, for the 64-bit syscalls of the host. */
static __always_inline bool in_compat(long id)
{
	return (bpf_get_current_task_btf()->thread_info.status & TS_COMPAT) || (id & X32_SYSCALL);
}

/* Which argument of an i386 syscall is a path (syscall_32.tbl), or -1. */
static __always_inline int ia32_path_arg(long nr)
{
	switch (nr) {
	case 5:	  /* open */
	case 8:	  /* creat */
	case 9:	  /* link */
	case 10:  /* unlink */
	case 11:  /* execve */
	case 15:  /* chmod */
	case 38:  /* rename */
	case 40:  /* rmdir */
	case 92:  /* truncate */
	case 182: /* chown */
	case 212: /* chown32 */
		return 0;
	case 21:  /* mount: the target */
	case 83:  /* symlink: the new name */
	case 295: /* openat */
	case 301: /* unlinkat */
	case 302: /* renameat */
	case 303: /* linkat */
	case 306: /* fchmodat */
	case 322: /* execveat */
	case 353: /* renameat2 */
	case 437: /* openat2 */
		return 1;
	default:
		return -1;
	}
}

static __always_inline int compat_enter(const struct pt_regs *regs, long id)
{
	struct rs_track *t = current_track();
	struct compat_key k, first;
	struct rs_compat *e;
	u8 one = 1;

	if (!t)
		return 0;
	k.tgid = bpf_get_current_pid_tgid() >> 32;
	k.nr = id;
	int path_i = id & X32_SYSCALL ? -1 : ia32_path_arg(id);
	if (path_i < 0 && bpf_map_lookup_elem(&compat_seen, &k))
		return 0;
	bpf_map_update_elem(&compat_seen, &k, &one, BPF_ANY);
	/* (tgid, ~0) marks that the process has made one at all. */
	first.tgid = k.tgid;
	first.nr = ~0u;
	e = get_scratch();
	if (!e)
		return 0;
	fill_hdr(&e->h, RS_COMPAT, t);
	e->nr = id;
	e->first = bpf_map_lookup_elem(&compat_seen, &first) == NULL;
	if (e->first)
		bpf_map_update_elem(&compat_seen, &first, &one, BPF_ANY);
	/* The i386 convention: ebx, ecx, edx, esi, edi, ebp; x32 uses the 64-bit one. */
	if (id & X32_SYSCALL) {
		e->args[0] = regs->di;
		e->args[1] = regs->si;
		e->args[2] = regs->dx;
		e->args[3] = regs->r10;
		e->args[4] = regs->r8;
		e->args[5] = regs->r9;
	} else {
		e->args[0] = (u32)regs->bx;
		e->args[1] = (u32)regs->cx;
		e->args[2] = (u32)regs->dx;
		e->args[3] = (u32)regs->si;
		e->args[4] = (u32)regs->di;
		e->args[5] = (u32)regs->bp;
	}
	e->path_len = 0;
	if (path_i >= 0) {
		long n = bpf_probe_read_user_str(e->data, RS_NAME_MAX, (void *)e->args[path_i & 1]);

		e->path_len = n > 0 ? n - 1 : 0;
	}
	submit(e, sizeof(*e) + e->path_len, RS_COMPAT);
	return 0;
}

/* ---- io_uring --------------------------------------------------------------------------- */

#define URING_BASE __builtin_offsetof(struct rs_uring, data)

/* Requests of tracked processes in flight, by the kernel's request pointer. A request is
 * reused once freed, so a completion must also match what was submitted. */
struct uring_req {
	struct rs_track t;
	u64 user_data;
	u32 tgid;
	u32 opcode;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct uring_req);
} uring_reqs SEC(".maps");

static __always_inline void uring_remember(struct io_kiocb *req, u8 op, const struct rs_track *t)
{
	u64 key = (u64)req;
	struct uring_req v = {.t = *t,
			      .user_data = BPF_CORE_READ(req, cqe.user_data),
			      .tgid = bpf_get_current_pid_tgid() >> 32,
			      .opcode = op};

	bpf_map_update_elem(&uring_reqs, &key, &v, BPF_ANY);
}

#define URING_FSOP_BASE __builtin_offsetof(struct rs_fsop, data)

/* io_uring's file changes, as the file-change records of the syscalls they stand for,
 * from the names the kernel copied when it prepared the request. */
static __always_inline int uring_fsop(struct io_kiocb *req, u8 op, const struct rs_track *t)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct rs_fsop *e = get_scratch();
	u32 off = 0;

	if (!e)
		return 0;
	fill_hdr(&e->h, RS_FSOP, t);
	__builtin_memset((u8 *)e + sizeof(e->h), 0, sizeof(*e) - sizeof(e->h));
	e->fd = -1;
	e->uring = 1;
	e->user_data = BPF_CORE_READ(req, cqe.user_data);
	if (op == IORING_OP_RENAMEAT || op == IORING_OP_LINKAT || op == IORING_OP_SYMLINKAT) {
		/* io_rename and io_link share this layout */
		struct io_rename *r = (struct io_rename *)req;
		bool sym = op == IORING_OP_SYMLINKAT;

		e->op = op == IORING_OP_RENAMEAT ? RS_OP_RENAMEAT2
			: sym			 ? RS_OP_SYMLINKAT
						 : RS_OP_LINKAT;
		e->aflags = BPF_CORE_READ(r, flags);
		off = put_slot_name(e, 0, off, BPF_CORE_READ(r, old_dfd),
				    BPF_CORE_READ(r, oldpath, name), sym, true, task);
		off = put_slot_name(e, 1, off, BPF_CORE_READ(r, new_dfd),
				    BPF_CORE_READ(r, newpath, name), false, true, task);
	} else if (op == IORING_OP_UNLINKAT) {
		struct io_unlink *u = (struct io_unlink *)req;

		e->op = RS_OP_UNLINKAT;
		e->aflags = BPF_CORE_READ(u, flags);
		off = put_slot_name(e, 1, off, BPF_CORE_READ(u, dfd),
				    BPF_CORE_READ(u, filename, name), false, true, task);
	} else {
		struct io_mkdir *m = (struct io_mkdir *)req;

		e->op = RS_OP_MKDIRAT;
		e->num[0] = BPF_CORE_READ(m, mode);
		off = put_slot_name(e, 0, off, BPF_CORE_READ(m, dfd),
				    BPF_CORE_READ(m, filename, name), false, true, task);
	}
	submit(e, sizeof(*e) + off, RS_FSOP);
	return 0;
}

/* Submission is the moment to look: the request is prepared (path and address copied into
 * the kernel), and it runs in the submitter's thread or its ring's polling thread, both in
 * the submitting process. */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(on_uring_submit, struct io_kiocb *req)
{
	struct rs_track *t = current_track();
	struct task_struct *task;
	struct rs_uring *e;
	u8 op;
	u32 off = 0;
	u16 depth = 0;

	if (!t)
		return 0;
	op = BPF_CORE_READ(req, opcode);
	if (op >= IORING_OP_RENAMEAT && op <= IORING_OP_LINKAT) {
		uring_remember(req, op, t);
		return uring_fsop(req, op, t);
	}
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2 && op != IORING_OP_CONNECT &&
	    op != IORING_OP_SEND && op != IORING_OP_SENDMSG && op != IORING_OP_SEND_ZC &&
	    op != IORING_OP_SENDMSG_ZC && op != IORING_OP_ACCEPT)
		return 0;
	e = get_scratch();
	if (!e)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, RS_URING, t);
	e->opcode = op;
	e->sq_thread = !!(BPF_CORE_READ(task, flags) & 0x10 /* PF_IO_WORKER */);
	e->user_data = BPF_CORE_READ(req, cqe.user_data);
	e->fd = BPF_CORE_READ(req, cqe.fd);
	e->oflags = 0;
	e->mode = 0;
	e->name_len = 0;
	e->res_len = 0;
	e->res_depth = 0;
	e->addrlen = 0;
	e->completion = 0;
	e->pad = 0;
	e->res = 0;
	e->pad2 = 0;
	__builtin_memset(&e->peer, 0, sizeof(e->peer));
	__builtin_memset(e->sockaddr, 0, RS_SOCKADDR_MAX);
	if (op == IORING_OP_OPENAT || op == IORING_OP_OPENAT2) {
		struct io_open *o = (struct io_open *)req;
		long n = bpf_probe_read_kernel_str(e->data, RS_NAME_MAX,
						   BPF_CORE_READ(o, filename, name));

		e->fd = BPF_CORE_READ(o, dfd);
		e->oflags = BPF_CORE_READ(o, how.flags);
		e->mode = BPF_CORE_READ(o, how.mode);
		off = n > 0 ? n - 1 : 0;
		e->name_len = off;
		if (off && off < RS_NAME_MAX && e->data[0] != '/') {
			if (e->fd == AT_FDCWD)
				off = put_cwd(URING_BASE, off, task, &depth);
			else
				off = put_file_path(URING_BASE, off, fd_file(task, e->fd), &depth);
			e->res_len = off - e->name_len;
			e->res_depth = depth;
		}
	} else if (op == IORING_OP_CONNECT) {
		/* This kernel copies a connect's address only when it issues the request, after
		 * this point (the request's async buffer still holds an earlier request's
		 * bytes): the request's own pointer into the submitter's memory, then. */
		struct io_connect *cn = (struct io_connect *)req;
		int len = BPF_CORE_READ(cn, addr_len);

		if (len > RS_SOCKADDR_MAX)
			len = RS_SOCKADDR_MAX;
		BOUND(len, 0x7f);
		if (len > 0 && !bpf_probe_read_user(e->sockaddr, len, BPF_CORE_READ(cn, addr)))
			e->addrlen = len;
	} else if (op != IORING_OP_ACCEPT) {
		/* sends: the destination the kernel copied when it prepared the request */
		struct io_async_msghdr *m = BPF_CORE_READ(req, async_data);
		int len = 0;

		if (m && BPF_CORE_READ(m, msg.msg_name))
			len = BPF_CORE_READ(m, msg.msg_namelen);
		if (len <= 0)
			return 0; /* a send on a connected socket: connect recorded the peer */
		if (len > RS_SOCKADDR_MAX)
			len = RS_SOCKADDR_MAX;
		BOUND(len, 0x7f);
		if (len > 0 && !bpf_probe_read_kernel(e->sockaddr, len, &m->addr))
			e->addrlen = len;
	}
	/* The completion may run in another thread of the process (an io-wq worker): it
	 * finds the run and step by the request. */
	uring_remember(req, op, t);
	submit(e, sizeof(*e) + off, RS_URING);
	return 0;
}

/* The result of a request recorded at submission: one lookup for every other ring on
 * the host. */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(on_uring_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
	u64 key = (u64)req;
	struct uring_req *v, vc;
	struct rs_uring *e;

	if (floor_only)
		return 0;
	v = bpf_map_lookup_elem(&uring_reqs, &key);
	if (!v)
		return 0;
	vc = *v;
	bpf_map_delete_elem(&uring_reqs, &key);
	if (vc.tgid != bpf_get_current_pid_tgid() >> 32 ||
	    vc.opcode != BPF_CORE_READ((struct io_kiocb *)req, opcode) ||
	    vc.user_data != BPF_CORE_READ(cqe, user_data))
		return 0; /* a later request reusing the memory of one recorded */
	e = get_scratch();
	if (!e)
		return 0;
	fill_hdr(&e->h, RS_URING, &vc.t);
	__builtin_memset((u8 *)e + sizeof(e->h), 0, sizeof(*e) - sizeof(e->h));
	e->completion = 1;
	e->opcode = BPF_CORE_READ((struct io_kiocb *)req, opcode);
	e->fd = BPF_CORE_READ((struct io_kiocb *)req, cqe.fd);
	e->user_data = BPF_CORE_READ(cqe, user_data);
	e->res = BPF_CORE_READ(cqe, res);
	/* The peer is known once accepted: the new descriptor is in the submitter's table,
	 * which its io-wq workers share (a fixed-file accept's res is no descriptor). */
	if (e->opcode == IORING_OP_ACCEPT && e->res >= 0 &&
	    !BPF_CORE_READ((struct io_accept *)req, file_slot)) {
		struct socket *sock =
		    fd_socket((struct task_struct *)bpf_get_current_task(), e->res);

		if (sock)
			sock_endpoint(BPF_CORE_READ(sock, sk), true, &e->peer);
	}
	submit(e, sizeof(*e), RS_URING);
	return 0;
}

/* ---- open_by_handle_at and pidfd_getfd --------------------------------------------------- */

#define NR_open_by_handle_at 304
#define NR_pidfd_getfd	     438

/* open_by_handle_at opens a file by its handle, no path involved: an open record resolved
 * from the new descriptor, or, for a failure, without a path. */
static __always_inline int handle_exit(long nr, long ret)
{
	struct task_struct *task;
	struct rs_track *t;
	struct sys_args *a = saved_args(RS_OPEN, nr, &t, false);
	struct rs_open *e;
	u32 off = 0;
	u16 depth = 0;

	if (!a)
		return 0;
	e = get_scratch();
	if (!e)
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, RS_OPEN, t);
	e->ret = ret;
	e->flags = a->a[2];
	e->mode = 0;
	e->dfd = a->a[0];
	e->syscall = 4;
	e->name_len = 0;
	if (ret >= 0) {
		e->h.flags |= RS_F_RESOLVED;
		off = put_file_path(OPEN_BASE, 0, fd_file(task, ret), &depth);
	}
	e->res_len = off;
	e->res_depth = depth;
	if (depth == 0xffff)
		e->h.flags |= RS_F_PATH_TRUNC;
	submit(e, sizeof(*e) + off, RS_OPEN);
out:
	drop_args();
	return 0;
}

#define GETFD_BASE __builtin_offsetof(struct rs_getfd, data)

static __always_inline int getfd_exit(long nr, long ret)
{
	struct task_struct *task;
	struct rs_track *t;
	struct sys_args *a = saved_args(RS_GETFD, nr, &t, false);
	struct rs_getfd *e;
	struct file *pf;
	u32 off = 0;
	u16 depth = 0;

	if (!a)
		return 0;
	e = get_scratch();
	if (!e)
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, RS_GETFD, t);
	e->ret = ret;
	e->pidfd = a->a[0];
	e->target_fd = a->a[1];
	e->target_pid = 0;
	e->target_tracked = 0;
	e->sk_type = 0;
	e->pad = 0;
	__builtin_memset(&e->local, 0, sizeof(e->local));
	__builtin_memset(&e->remote, 0, sizeof(e->remote));
	/* A pidfd's inode holds its struct pid (pidfs; before it, the file did). */
	pf = ret >= 0 ? fd_file(task, e->pidfd) : NULL; /* only a success proves it a pidfd */
	if (pf) {
		struct pid *pid = BPF_CORE_READ(pf, f_inode, i_private);

		if (!pid)
			pid = BPF_CORE_READ(pf, private_data);
		u32 tp = BPF_CORE_READ(pid, numbers[0].nr);

		e->target_pid = tp;
		e->target_tracked = bpf_map_lookup_elem(&tracked, &tp) != NULL;
	}
	if (ret >= 0) {
		struct socket *sock = fd_socket(task, ret);

		off = put_file_path(GETFD_BASE, 0, fd_file(task, ret), &depth);
		if (sock) {
			struct sock *sk = BPF_CORE_READ(sock, sk);

			e->sk_type = BPF_CORE_READ(sock, type);
			sock_endpoint(sk, false, &e->local);
			sock_endpoint(sk, true, &e->remote);
		}
	}
	e->res_len = off;
	e->res_depth = depth;
	submit(e, sizeof(*e) + off, RS_GETFD);
out:
	drop_args();
	return 0;
}

/* ---- one entry and one exit for all of the above ------------------------------------------ */

/* Every syscall runseal records is taken here, from the raw sys_enter/sys_exit tracepoints,
 * and none from the syscalls:* tracepoints. Each tracer on a syscall tracepoint costs every
 * syscall of the host: the two together (the perf syscall hook beside a raw one, each called
 * through the tracepoint's probe list) made an untraced open storm 1.55x its baseline here,
 * either one alone 1.20x; and every perf syscall tracepoint waits out an RCU grace period,
 * serialized, when it is detached. The switch on the number comes first, so a process pays
 * no map lookup for a syscall runseal does not record, and one for a syscall it does. */
SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	/* Registration works in the floor too: its runs must start. */
	if (id == NR_prctl)
		return in_compat(id) ? 0 : sys_prctl_enter(regs);
	if (floor_only)
		return 0;
	if (in_compat(id))
		return compat_enter(regs, id);
	switch (id) {
	case NR_execve:
		return sys_execve_enter(regs);
	case NR_execveat:
		return sys_execveat_enter(regs);
	case NR_openat:
		return sys_openat_enter(regs);
	case NR_openat2:
		return sys_openat2_enter(regs);
	case NR_open:
		return sys_open_enter(regs);
	case NR_creat:
		return sys_creat_enter(regs);
	case NR_connect:
		return sys_connect_enter(regs);
	case NR_bpf:
		return sys_bpf_enter(regs);
	case NR_perf_event_open:
		return sys_perf_event_open_enter(regs);
	case NR_ptrace:
		return sys_ptrace_enter(regs);
	case NR_process_vm_writev:
		return sys_process_vm_writev_enter(regs);
	case NR_process_vm_readv:
		return sys_process_vm_readv_enter(regs);
	case NR_kill:
		return sys_kill_enter(regs);
	case NR_tgkill:
		return sys_tgkill_enter(regs);
	case NR_tkill:
		return sys_tkill_enter(regs);
	case NR_pidfd_send_signal:
		return sys_pidfd_send_signal_enter(regs);
	case NR_init_module:
		return sys_init_module_enter(regs);
	case NR_finit_module:
		return sys_finit_module_enter(regs);
	case NR_memfd_create:
		return sys_memfd_create_enter(regs);
	/*                                   dirfd0 name0 dirfd1 name1 fd num0 num1 flags str */
	case NR_rename:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_RENAME),
				 DESC(NA, 0, NA, 1, NA, NA, NA, NA, NA));
	case NR_renameat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_RENAMEAT),
				 DESC(0, 1, 2, 3, NA, NA, NA, NA, NA));
	case NR_renameat2:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_RENAMEAT2),
				 DESC(0, 1, 2, 3, NA, NA, NA, 4, NA));
	case NR_unlink:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_UNLINK),
				 DESC(NA, NA, NA, 0, NA, NA, NA, NA, NA));
	case NR_unlinkat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_UNLINKAT),
				 DESC(NA, NA, 0, 1, NA, NA, NA, 2, NA));
	case NR_rmdir:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_RMDIR),
				 DESC(NA, NA, NA, 0, NA, NA, NA, NA, NA));
	case NR_chmod:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_CHMOD),
				 DESC(NA, 0, NA, NA, NA, 1, NA, NA, NA));
	case NR_fchmod:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_FCHMOD),
				 DESC(NA, NA, NA, NA, 0, 1, NA, NA, NA));
	case NR_fchmodat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_FCHMODAT),
				 DESC(0, 1, NA, NA, NA, 2, NA, NA, NA));
	case NR_fchmodat2:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_FCHMODAT2),
				 DESC(0, 1, NA, NA, NA, 2, NA, 3, NA));
	case NR_chown:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_CHOWN),
				 DESC(NA, 0, NA, NA, NA, 1, 2, NA, NA));
	case NR_fchown:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_FCHOWN),
				 DESC(NA, NA, NA, NA, 0, 1, 2, NA, NA));
	case NR_fchownat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_FCHOWNAT),
				 DESC(0, 1, NA, NA, NA, 2, 3, 4, NA));
	case NR_lchown:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_LCHOWN),
				 DESC(NA, 0, NA, NA, NA, 1, 2, NA, NA));
	case NR_link:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_LINK),
				 DESC(NA, 0, NA, 1, NA, NA, NA, NA, NA));
	case NR_linkat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_LINKAT),
				 DESC(0, 1, 2, 3, NA, NA, NA, 4, NA));
	case NR_symlink:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_SYMLINK),
				 DESC(NA, 0, NA, 1, NA, NA, NA, NA, NA) | DESC_RAW0);
	case NR_symlinkat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_SYMLINKAT),
				 DESC(NA, 0, 1, 2, NA, NA, NA, NA, NA) | DESC_RAW0);
	case NR_truncate:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_TRUNCATE),
				 DESC(NA, 0, NA, NA, NA, 1, NA, NA, NA));
	case NR_ftruncate:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_FTRUNCATE),
				 DESC(NA, NA, NA, NA, 0, 1, NA, NA, NA));
	case NR_mount:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_MOUNT),
				 DESC(NA, 0, NA, 1, NA, NA, NA, 3, 2) | DESC_RAW0);
	case NR_umount2:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_UMOUNT),
				 DESC(NA, NA, NA, 0, NA, NA, NA, 1, NA));
	case NR_move_mount:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_MOVE_MOUNT),
				 DESC(0, 1, 2, 3, NA, NA, NA, 4, NA));
	case NR_open_tree:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_OPEN_TREE),
				 DESC(NA, NA, 0, 1, NA, NA, NA, 2, NA));
	case NR_mkdir:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_MKDIR),
				 DESC(NA, 0, NA, NA, NA, 1, NA, NA, NA));
	case NR_mkdirat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_MKDIRAT),
				 DESC(0, 1, NA, NA, NA, 2, NA, NA, NA));
	case NR_mknod:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_MKNOD),
				 DESC(NA, 0, NA, NA, NA, 1, 2, NA, NA));
	case NR_mknodat:
		return save_args(regs, KIND_OP(RS_FSOP, RS_OP_MKNODAT),
				 DESC(0, 1, NA, NA, NA, 2, 3, NA, NA));
	case NR_setuid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETUID), 1);
	case NR_setgid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETGID), 1);
	case NR_setreuid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETREUID), 2);
	case NR_setregid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETREGID), 2);
	case NR_setresuid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETRESUID), 3);
	case NR_setresgid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETRESGID), 3);
	case NR_setfsuid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETFSUID), 1);
	case NR_setfsgid:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_SETFSGID), 1);
	case NR_capset:
		return save_args(regs, KIND_OP(RS_CRED, RS_CR_CAPSET), 0);
	case NR_sendto:
		return net_enter(regs, RS_NET_SENDTO);
	case NR_sendmsg:
		return net_enter(regs, RS_NET_SENDMSG);
	case NR_sendmmsg:
		return net_enter(regs, RS_NET_SENDMMSG);
	case NR_listen:
		return net_enter(regs, RS_NET_LISTEN);
	case NR_bind:
		return net_enter(regs, RS_NET_BIND);
	case NR_recvfrom:
		return net_enter(regs, RS_NET_RECVFROM);
	case NR_recvmsg:
		return net_enter(regs, RS_NET_RECVMSG);
	case NR_accept:
		return net_enter(regs, RS_NET_ACCEPT);
	case NR_accept4:
		return net_enter(regs, RS_NET_ACCEPT4);
	case NR_open_by_handle_at:
		return save_args(regs, KIND_OP(RS_OPEN, 4), 0);
	case NR_pidfd_getfd:
		return save_args(regs, KIND_OP(RS_GETFD, 0), 0);
	default:
		return 0;
	}
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	if (floor_only || in_compat(regs->orig_ax))
		return 0;
	switch (regs->orig_ax) {
	case NR_execve:
	case NR_execveat:
		return exec_exit(ret);
	case NR_openat:
	case NR_openat2:
	case NR_open:
	case NR_creat:
		return open_exit(ret);
	case NR_connect:
		return connect_exit(ret);
	case NR_rename:
	case NR_renameat:
	case NR_renameat2:
	case NR_unlink:
	case NR_unlinkat:
	case NR_rmdir:
	case NR_chmod:
	case NR_fchmod:
	case NR_fchmodat:
	case NR_fchmodat2:
	case NR_chown:
	case NR_fchown:
	case NR_fchownat:
	case NR_lchown:
	case NR_link:
	case NR_linkat:
	case NR_symlink:
	case NR_symlinkat:
	case NR_truncate:
	case NR_ftruncate:
	case NR_mount:
	case NR_umount2:
	case NR_move_mount:
	case NR_mkdir:
	case NR_mkdirat:
	case NR_mknod:
	case NR_mknodat:
	case NR_open_tree:
		return fsop_exit(regs->orig_ax, ret);
	case NR_setuid:
	case NR_setgid:
	case NR_setreuid:
	case NR_setregid:
	case NR_setresuid:
	case NR_setresgid:
	case NR_setfsuid:
	case NR_setfsgid:
	case NR_capset:
		return cred_exit(regs->orig_ax, ret);
	case NR_sendto:
	case NR_sendmsg:
	case NR_recvfrom:
	case NR_recvmsg:
		return net_exit(regs->orig_ax, ret, true);
	case NR_sendmmsg:
	case NR_listen:
	case NR_bind:
	case NR_accept:
	case NR_accept4:
		return net_exit(regs->orig_ax, ret, false);
	case NR_open_by_handle_at:
		return handle_exit(regs->orig_ax, ret);
	case NR_pidfd_getfd:
		return getfd_exit(regs->orig_ax, ret);
	default:
		return 0;
	}
}
