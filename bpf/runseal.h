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

enum rs_kind {
	RS_EXEC = 1,
	RS_FORK,
	RS_EXIT,
	RS_OPEN,
	RS_CONNECT,
	/* issue 8, self-protection: */
	RS_GUARD, /* struct rs_guard: a syscall that could blind or fool runseal, at entry */
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
	__u16 syscall; /* 0 openat, 1 openat2, 2 open, 3 creat */
	char data[];
};

struct rs_connect {
	struct rs_hdr h;
	__s32 ret;
	__s32 fd;
	__u32 addrlen; /* as passed; sockaddr holds min(addrlen, RS_SOCKADDR_MAX) bytes */
	__u32 pad;
	__u8 sockaddr[RS_SOCKADDR_MAX];
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
	RS_G_PIDFD_GETFD,
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

#endif
