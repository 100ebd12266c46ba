/* Events shared by the BPF programs (runseal.bpf.c) and the collector (user/collector.c).
 *
 * Every event starts with struct rs_hdr; variable-length strings follow the fixed part in
 * data[], at offsets and lengths the fixed part gives, so an event costs the ring buffer only
 * the bytes it uses.
 */
#ifndef RUNSEAL_BPF_H
#define RUNSEAL_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define RS_COMM_LEN	16
#define RS_ARGV_MAX	4096 /* argv bytes kept per exec; more is flagged, never cut silently */
#define RS_NAME_MAX	4096 /* a path as passed to a syscall */
#define RS_DEPTH_MAX	48   /* path components walked in the kernel before flagging truncation */
#define RS_DATA_SIZE	16384
#define RS_SOCKADDR_MAX 112

/* A resolved path's depth (cwd_depth, exe_depth, res_depth, base_depth): the component
 * count, RS_DEPTH_TRUNC when the walk stopped short, else with these bits: */
#define RS_DEPTH_TRUNC	  0xffff
#define RS_DEPTH_OUTSIDE  0x8000 /* never passed the process's root (outside its chroot) */
#define RS_DEPTH_DETACHED 0x4000 /* ended at a mount outside the process's mount namespace */
#define RS_DEPTH_DELETED  0x2000 /* the file has no name left (unlinked, memfd, O_TMPFILE) */
#define RS_DEPTH_COUNT	  0x1fff

enum rs_kind {
	RS_EXEC = 1,
	RS_FORK,
	RS_EXIT,
	RS_OPEN,
	RS_CONNECT,
	/* issue 8, self-protection: */
	RS_GUARD, /* struct rs_guard: a syscall that could blind or fool runseal, at entry */
	/* capture coverage (issue 8): file and privilege changes, network beyond connect */
	RS_FSOP,
	RS_CRED,
	RS_NET,
	RS_COMPAT,
	RS_URING,
	RS_GETFD,
	RS_KIND_MAX,
};

/* rs_hdr.flags */
#define RS_F_ARGV_TRUNC 0x1 /* argv longer than RS_ARGV_MAX or more args than walked */
#define RS_F_PATH_TRUNC 0x2 /* resolved path deeper than RS_DEPTH_MAX */
#define RS_F_CWD_TRUNC	0x4
#define RS_F_NAME_TRUNC 0x8  /* path as passed longer than RS_NAME_MAX */
#define RS_F_RESOLVED	0x10 /* resolved path comes from the opened file itself */
#define RS_F_BASE	0x20 /* resolved part is a base directory (cwd or dirfd) to join */

struct rs_hdr {
	__u64 ts; /* CLOCK_BOOTTIME ns */
	__u32 kind;
	__u32 size; /* whole event, header included */
	__u32 pid;  /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 run; /* run and step the process was registered with */
	__u32 step;
	__u32 flags;
	__u32 pad;
	char comm[RS_COMM_LEN];
};

/* data[]: filename (len filename_len, no NUL), then argv (args NUL-separated, argv_len bytes),
 * then cwd components (leaf first, each NUL-terminated, cwd_len bytes). */
struct rs_exec {
	struct rs_hdr h;
	__s32 ret;
	__u32 argc;	  /* as the kernel counted, even when not all were kept */
	__u32 argv_total; /* argv bytes in the process, kept or not */
	__u16 filename_len;
	__u16 argv_len;
	__u16 cwd_len;
	__u16 cwd_depth;
	__u16 exe_len; /* exe components follow cwd */
	__u16 exe_depth;
	char data[];
};

struct rs_fork {
	struct rs_hdr h;
	__u32 child_pid;
	__u32 pad;
};

struct rs_exit {
	struct rs_hdr h;
	__u32 code; /* task->exit_code: status << 8 | signal */
	__u32 pad;
};

/* A socket endpoint as the kernel holds it (family AF_INET or AF_INET6; 0 when unknown). */
struct rs_endpoint {
	__u16 family;
	__u16 port; /* host order */
	__u8 addr[16];
};

/* data[]: path as passed (name_len), then the resolved path components (res_len). */
struct rs_open {
	struct rs_hdr h;
	__s64 ret;
	__u64 flags;
	__u32 mode;
	__s32 dfd;
	__u16 name_len;
	__u16 res_len;
	__u16 res_depth;
	__u16 syscall; /* 0 openat, 1 openat2, 2 open, 3 creat, 4 open_by_handle_at */
	char data[];
};

struct rs_connect {
	struct rs_hdr h;
	__s32 ret;
	__s32 fd;
	__u32 addrlen; /* as passed; sockaddr holds min(addrlen, RS_SOCKADDR_MAX) bytes */
	__u32 pad;
	__u8 sockaddr[RS_SOCKADDR_MAX];
	/* issue 8: the destination the socket holds after the call (family 0: none), which a
	 * second thread cannot rewrite the way it can rewrite the sockaddr in user memory. */
	struct rs_endpoint peer;
};

/* ---- self-protection (issue 8) ---------------------------------------------------- */

/* The tracked map is frozen (read-only to every bpf() caller, runseal included): the runner
 * registers a pid with prctl(RS_MARK_TRACK, pid, run, step), which on_prctl_enter turns into
 * a map update when the caller is the runner process. The option number is unused by the
 * kernel, so the call itself fails with EINVAL and has no effect. */
#define RS_MARK_TRACK	0x52534c01 /* "RSL" 1 */
#define RS_MARK_UNTRACK 0x52534c02

/* rs_guard.sys */
enum rs_guard_sys {
	RS_G_BPF = 1,
	RS_G_PERF_EVENT_OPEN,
	RS_G_PTRACE,
	RS_G_PROCESS_VM_WRITEV,
	RS_G_PROCESS_VM_READV,
	RS_G_PIDFD_SEND_SIGNAL,
	RS_G_KILL,
	RS_G_TGKILL,
	RS_G_TKILL,
	RS_G_INIT_MODULE,
	RS_G_FINIT_MODULE,
	RS_G_MEMFD_CREATE,
	RS_G_MAX,
};

/* rs_guard.obj_type: the BPF object a bpf() command names */
enum rs_obj { RS_OBJ_NONE, RS_OBJ_MAP, RS_OBJ_PROG, RS_OBJ_LINK, RS_OBJ_ID };

/* rs_guard.flags-like target classes */
#define RS_T_PID     0x1 /* target holds a pid */
#define RS_T_TRACKED 0x2 /* the target was in the tracked map at entry */

/* data[]: a string argument (memfd name, bpf pin path or program name, module params). */
struct rs_guard {
	struct rs_hdr h;
	__u32 sys;
	__u32 tflags;	  /* RS_T_* */
	__s32 target;	  /* pid aimed at (pidfds resolved) */
	__u32 target_run; /* tracked entry of the target, when RS_T_TRACKED */
	__u32 target_step;
	__u32 obj_type; /* enum rs_obj */
	__u32 obj_id;	/* id of that map, program or link; RS_OBJ_ID: an id passed as is */
	__u16 name_len;
	__u16 pad;
	__u64 arg[4]; /* raw arguments, meaning per syscall (docs/RECORDS.md) */
	char data[];
};
#define RS_GUARD_NAME_MAX 256

/* Value of the tracked map (key: tgid). */
struct rs_track {
	__u32 run;
	__u32 step;
};

/* ---- capture coverage (issue 8): file changes, privilege changes, network ---------------- */

/* rs_fsop.op: which syscall. The BPF side and the collector share one table of what each
 * argument means (fsop_desc in runseal.bpf.c, fsop_info in collector.c). */
enum rs_fsop_op {
	RS_OP_RENAME = 1,
	RS_OP_RENAMEAT,
	RS_OP_RENAMEAT2,
	RS_OP_UNLINK,
	RS_OP_UNLINKAT,
	RS_OP_RMDIR,
	RS_OP_CHMOD,
	RS_OP_FCHMOD,
	RS_OP_FCHMODAT,
	RS_OP_FCHMODAT2,
	RS_OP_CHOWN,
	RS_OP_FCHOWN,
	RS_OP_FCHOWNAT,
	RS_OP_LCHOWN,
	RS_OP_LINK,
	RS_OP_LINKAT,
	RS_OP_SYMLINK,
	RS_OP_SYMLINKAT,
	RS_OP_TRUNCATE,
	RS_OP_FTRUNCATE,
	RS_OP_MOUNT,
	RS_OP_UMOUNT,
	RS_OP_MOVE_MOUNT,
	RS_OP_OPEN_TREE,
	RS_OP_MKDIR,
	RS_OP_MKDIRAT,
	RS_OP_MKNOD,
	RS_OP_MKNODAT,
	RS_OP_FSOP_MAX,
};

/* A path argument: the name as passed, then the base it is relative to (cwd, the dirfd, or
 * with an empty name the dirfd's own file) as components leaf first. */
struct rs_pslot {
	__u16 name_len;
	__u16 base_len;
	__u16 base_depth; /* 0xffff: walk cut short */
	__u8 flags;	  /* RS_PS_* */
	__u8 pad;
};
#define RS_PS_PRESENT 0x1
#define RS_PS_BASE    0x2 /* base is a directory to join the name to */
#define RS_PS_FD      0x4 /* base is the file itself (fd argument, or empty name with a dirfd) */
#define RS_PS_TRUNC   0x8 /* name longer than RS_NAME_MAX */

#define RS_FSOP_STR_MAX 64 /* mount's fstype */

/* data[]: slot 0 (name, base), slot 1 (name, base), then str (str_len). */
struct rs_fsop {
	struct rs_hdr h;
	__s64 ret;
	__u64 num[2]; /* mode, owner and group, length: which, by op */
	__u64 aflags; /* the syscall's flags argument */
	__s32 fd;     /* fd argument, -1 if none */
	__u16 op;
	__u16 str_len;
	struct rs_pslot slot[2];
	__u64 user_data; /* io_uring: the request's tag */
	__u32 uring;	 /* 1: an io_uring request at submission (no result yet) */
	__u32 pad;
	char data[];
};

enum rs_cred_op {
	RS_CR_SETUID = 1,
	RS_CR_SETGID,
	RS_CR_SETREUID,
	RS_CR_SETREGID,
	RS_CR_SETRESUID,
	RS_CR_SETRESGID,
	RS_CR_SETFSUID,
	RS_CR_SETFSGID,
	RS_CR_CAPSET,
	RS_CR_MAX,
};

/* A privilege change: the ids asked for, and the credentials the kernel holds after the call. */
struct rs_cred {
	struct rs_hdr h;
	__s64 ret;
	__u32 op;
	__u32 nargs;
	__u32 arg[3]; /* requested ids, (u32)-1 = unchanged */
	__u32 uid[4]; /* after: real, effective, saved, fs */
	__u32 gid[4];
	__u64 cap_req[3]; /* capset: effective, permitted, inheritable asked for (low 64 bits) */
	__u64 cap_now[3]; /* after: effective, permitted, inheritable */
};

enum rs_net_op {
	RS_NET_CONNECT = 1, /* reserved: connect keeps its own event */
	RS_NET_SENDTO,
	RS_NET_SENDMSG,
	RS_NET_SENDMMSG,
	RS_NET_FASTOPEN,
	RS_NET_LISTEN,
	RS_NET_ACCEPT,
	RS_NET_ACCEPT4,
	RS_NET_BIND,	 /* a datagram or raw socket's: a stream socket's listen records it */
	RS_NET_RECVFROM, /* the sender of a datagram, once per sender per process */
	RS_NET_RECVMSG,
	RS_NET_MAX,
};

/* Network activity other than connect: a destination, a listener, an inbound peer. */
struct rs_net {
	struct rs_hdr h;
	__s64 ret;
	__u32 op;
	__s32 fd;
	__u16 sk_type; /* SOCK_STREAM, SOCK_DGRAM... of the socket behind fd */
	__u16 protocol;
	__u32 msg_flags;
	struct rs_endpoint local;
	struct rs_endpoint remote; /* from the kernel's socket */
	__u32 addrlen;		   /* of the user sockaddr below, 0 when none */
	__u32 pad;
	__u8 sockaddr[RS_SOCKADDR_MAX]; /* destination as the caller passed it */
};

/* A 32-bit (int $0x80, sysenter) or x32 syscall of a tracked process: the syscalls:*
 * tracepoints never see them. Each syscall number a process uses this way is recorded
 * once, with the arguments of its first use; those that name a path, every time, with the
 * path as passed in data[] (path_len bytes). */
struct rs_compat {
	struct rs_hdr h;
	__u32 nr;    /* in the 32-bit table (ia32), or with the x32 bit */
	__u32 first; /* the process's first such syscall */
	__u64 args[6];
	__u16 path_len;
	__u16 pad[3];
	char data[];
};

/* An io_uring request a tracked process submitted (opcode as in enum io_uring_op), read
 * from the kernel's prepared request: the path and address are the kernel's copies.
 * data[]: the path (name_len), then its base directory's components (res_len), for opens. */
struct rs_uring {
	struct rs_hdr h;
	__u64 user_data;
	__u64 oflags; /* open flags */
	__u32 mode;
	__s32 fd; /* the request's fd: dirfd for opens, the socket for connect and sends */
	__u8 opcode;
	__u8 sq_thread; /* submitted by the ring's polling thread */
	__u16 name_len;
	__u16 res_len;
	__u16 res_depth;
	__u32 addrlen;	  /* of sockaddr, 0 when none */
	__u16 completion; /* 1: a completion: opcode, user_data, fd and res are what it says */
	__u16 pad;
	__s32 res; /* a completion's result */
	__u32 pad2;
	struct rs_endpoint peer; /* an accept's completion: the new socket's peer */
	__u8 sockaddr[RS_SOCKADDR_MAX];
	char data[];
};

/* pidfd_getfd: a descriptor copied out of another process, and what it points to.
 * data[]: the file's resolved path components (res_len). */
struct rs_getfd {
	struct rs_hdr h;
	__s64 ret; /* the new descriptor in the caller */
	__s32 pidfd;
	__s32 target_fd;
	__u32 target_pid;		  /* 0 when the pidfd could not be read */
	__u32 target_tracked;		  /* the target is a process of a run */
	struct rs_endpoint local, remote; /* when the file is an inet socket */
	__u16 res_len;
	__u16 res_depth;
	__u16 sk_type; /* 0 when not a socket */
	__u16 pad;
	char data[];
};

#endif
