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

/* Value of the tracked map (key: tgid). */
struct rs_track {
	__u32 run;
	__u32 step;
};

#endif
