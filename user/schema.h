/* schema: every kind of record (docs/RECORDS.md) and of log entry (docs/FORMAT.md) that
 * runseal writes, with the top-level fields each may carry, in one table. The writers take
 * kind names from it (record.c for records, sealer.c for the log's own entries); the
 * readers (verify.c, logread.c and report/ through it) map names back to kinds with it, so
 * a kind added here is known to both sides at once. */
#ifndef RUNSEAL_SCHEMA_H
#define RUNSEAL_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

/* The numbers are not written anywhere (records carry names): new kinds may go anywhere
 * before REC_OTHER. */
enum rec_kind {
	REC_RUN_START,
	REC_RUN_END,
	REC_STEP_START,
	REC_STEP_END,
	REC_EXEC,
	REC_FORK,
	REC_EXIT,
	REC_OPEN,
	REC_CONNECT,
	REC_LOSS,
	/* self-protection: recorded at entry, before the call takes effect */
	REC_BPF,
	REC_PERF_EVENT_OPEN,
	REC_PTRACE,
	REC_PROCESS_VM,
	REC_PIDFD_GETFD,
	REC_SIGNAL,
	REC_MODULE_LOAD,
	REC_MEMFD_CREATE,
	REC_RUN_INTERRUPTED, /* written by the next run about one that never ended */
	/* file and privilege changes, network beyond connect */
	REC_RENAME,
	REC_UNLINK,
	REC_CHMOD,
	REC_CHOWN,
	REC_LINK,
	REC_SYMLINK,
	REC_TRUNCATE,
	REC_MOUNT,
	REC_UMOUNT,
	REC_CRED,
	REC_LISTEN,
	REC_ACCEPT,
	REC_COMPAT_SYSCALL,
	REC_IO_URING_RESULT,
	REC_MKDIR,
	REC_MKNOD,
	REC_XATTR,
	REC_UTIMES,
	REC_CHROOT,
	REC_NAMESPACE,
	REC_ATTACH,  /* daemon: a process put under a run's step */
	REC_REFUSED, /* daemon: a request refused, and who asked */
	REC_DAEMON,  /* daemon: start, reload, stop */
	REC_GAP,     /* daemon: a run's time untraced (a restart), and what was re-registered */
	REC_READ,    /* daemon: who read which runs of a log (show, report, ...) */
	/* the log's own entries, written by the sealer */
	REC_GENESIS,
	REC_SEGMENT,
	REC_SEAL,
	REC_RECOVERY,
	REC_OTHER, /* a reader's name for a kind this version does not know */
	REC_KIND_MAX,
};
/* replay selects kinds by a 64-bit mask */
_Static_assert(REC_KIND_MAX <= 64, "at most 64 kinds");

enum rec_scope {
	SCOPE_LOG,  /* the log's own entries: kind, time, then their fields */
	SCOPE_RUN,  /* kind, time, run */
	SCOPE_STEP, /* kind, time, run, step, pid, ppid, tid, uid */
	SCOPE_PROC, /* a kernel event: the step fields, euid, gid, comm */
};

/* What readers group kinds by. */
enum {
	RK_FILE_CHANGE = 1, /* changes a file's name, content, mode or owner */
	RK_NET = 2,	    /* a connection made, offered or taken */
	RK_GUARD = 4,	    /* self-protection: may reach the capture or another process */
};

struct rec_schema {
	const char *name;
	enum rec_scope scope;
	unsigned flags; /* RK_* */
	/* The kind's own top-level fields, after its scope's, space-separated. A field KEY
	 * that is a path may come with KEY_detached, KEY_outside_root and KEY_truncated
	 * (docs/RECORDS.md, "Paths the kernel resolved"). */
	const char *fields;
};

extern const struct rec_schema rec_schema[REC_KIND_MAX];

/* The fields every record of a scope starts with, in this order. */
extern const char *const rec_scope_fields[SCOPE_PROC + 1];

/* Field names the writers and the readers both use. */
#define RF_KIND "kind"
#define RF_TIME "time"
#define RF_RUN	"run"
#define RF_STEP "step"
#define RF_PID	"pid"
#define RF_PPID "ppid"

const char *rec_kind_name(enum rec_kind k);
/* The kind named name (n bytes), or REC_OTHER. */
enum rec_kind rec_kind_of(const char *name, size_t n);
/* Whether a record of kind k may carry the top-level field (n bytes). */
bool rec_field_known(enum rec_kind k, const char *field, size_t n);

#endif
