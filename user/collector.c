#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "decode.h"
#include "digest.h"
#include "runseal.h"
#include "runseal.skel.h"
#include "util.h"

_Static_assert(RS_KIND_MAX <= sizeof(((struct collector *)0)->drops) / sizeof(uint64_t),
	       "collector.drops has a slot per event kind");

static const char *const syscall_names[] = {"openat", "openat2", "open", "creat",
					    "open_by_handle_at"};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static const char *step_name(const struct collector *c, uint32_t seq)
{
	return seq < c->nsteps && c->steps[seq] ? c->steps[seq] : "?";
}

static void begin_proc(struct collector *c, enum rec_kind kind, const struct rs_hdr *h)
{
	struct stream *s = c->out;
	const char *run = c->run_id, *step = NULL;

	if (c->names)
		run = c->names(c->names_ctx, h->run, h->step, &step);
	else
		step = step_name(c, h->step);
	rec_begin(s, kind, h->ts + c->boot_to_real, run, (int)h->step);
	rec_str(s, "step", step);
	rec_int(s, "pid", h->pid);
	rec_int(s, "ppid", h->ppid);
	rec_int(s, "tid", h->tid);
	rec_int(s, "uid", h->uid);
	rec_int(s, "euid", h->euid);
	rec_int(s, "gid", h->gid);
	rec_strn(s, "comm", h->comm, strnlen(h->comm, RS_COMM_LEN), false);
}

static void put_result(struct stream *s, int64_t ret)
{
	rec_int(s, "ret", ret);
	if (ret < 0) {
		char buf[16];

		rec_str(s, "error", decode_errno((int)-ret, buf, sizeof(buf)));
	}
}

/* A path the kernel walked (components leaf first, depth as RS_DEPTH_* in runseal.h),
 * joined with name when it is the directory name was relative to. A walk that ended
 * outside the namespace or the process root is written relative to where it ended
 * ("memfd:x (deleted)"), with KEY_detached: it is no path the process could open. One
 * that never passed the process's root keeps its host path, with KEY_detached and
 * KEY_outside_root. */
static void put_walked(struct stream *s, const char *key, const char *p, size_t len, unsigned depth,
		       const char *name, bool say_truncated)
{
	bool trunc = depth == RS_DEPTH_TRUNC, detached = !trunc && depth & RS_DEPTH_DETACHED;
	char *path = path_from_components(p, len, trunc ? 0xffff : depth & RS_DEPTH_COUNT);
	char k[48];

	if (name) {
		char *joined = path ? path_join(path, name) : NULL;

		free(path);
		path = joined;
	} else if (path && !trunc && depth & RS_DEPTH_DELETED) {
		char *del = NULL;

		if (asprintf(&del, "%s (deleted)", path) < 0)
			del = NULL;
		free(path);
		path = del;
	}
	if (!path)
		err(2, "out of memory");
	rec_str(s, key, detached ? path + 1 : path);
	if (trunc && say_truncated) {
		snprintf(k, sizeof(k), "%s_truncated", key);
		rec_bool(s, k, true);
	}
	if (detached || (!trunc && depth & RS_DEPTH_OUTSIDE)) {
		snprintf(k, sizeof(k), "%s_detached", key);
		rec_bool(s, k, true);
	}
	if (!trunc && depth & RS_DEPTH_OUTSIDE) {
		snprintf(k, sizeof(k), "%s_outside_root", key);
		rec_bool(s, k, true);
	}
	free(path);
}

static void put_components(struct stream *s, const char *key, const char *p, size_t len,
			   unsigned depth)
{
	put_walked(s, key, p, len, depth, NULL, false);
}

/* argv arrives as NUL-separated strings; a cut last one is passed on as truncated so that
 * redaction also hides a secret's beginning. */
static void put_argv(struct stream *s, const char *a, size_t len, bool trunc)
{
	rec_open(s, "argv", '[');
	for (size_t i = 0; i < len;) {
		const char *end = memchr(a + i, '\0', len - i);
		size_t n = end ? (size_t)(end - (a + i)) : len - i;

		rec_item(s, a + i, n, !end && trunc);
		i += n + 1;
	}
	rec_close(s, ']');
}

/* ---- the tracked map's shadow (issue 8) ----------------------------------------------- */

/* Open addressing on the pid, 0 marking a free slot; at most half full. */
static size_t sh_slot(const struct collector *c, uint32_t pid)
{
	size_t i = (pid * 2654435761u) & (c->sh_cap - 1);

	while (c->sh_pid[i] && c->sh_pid[i] != pid)
		i = (i + 1) & (c->sh_cap - 1);
	return i;
}

static uint64_t mark(uint32_t run, uint32_t step)
{
	return (uint64_t)run << 32 | step;
}

static void sh_put(struct collector *c, uint32_t pid, uint64_t m)
{
	size_t i;

	if (!pid)
		return;
	if ((c->sh_n + 1) * 2 > c->sh_cap) {
		uint32_t *op = c->sh_pid;
		uint64_t *om = c->sh_mark;
		size_t ocap = c->sh_cap;

		c->sh_cap = ocap ? ocap * 2 : 256;
		c->sh_pid = xcalloc(c->sh_cap, sizeof(uint32_t));
		c->sh_mark = xcalloc(c->sh_cap, sizeof(uint64_t));
		free(c->sh_seen);
		c->sh_seen = xcalloc(c->sh_cap, sizeof(uint32_t));
		c->sh_n = 0;
		for (size_t k = 0; k < ocap; k++)
			if (op[k])
				sh_put(c, op[k], om[k]);
		free(op);
		free(om);
	}
	i = sh_slot(c, pid);
	if (!c->sh_pid[i])
		c->sh_n++;
	c->sh_pid[i] = pid;
	c->sh_mark[i] = m;
}

/* Returns the slot of pid, or SIZE_MAX. */
static size_t sh_find(const struct collector *c, uint32_t pid)
{
	size_t i;

	if (!c->sh_cap || !pid)
		return SIZE_MAX;
	i = sh_slot(c, pid);
	return c->sh_pid[i] ? i : SIZE_MAX;
}

/* Deletion with backward shift: no tombstones, lookups stay short. */
static void sh_del(struct collector *c, uint32_t pid)
{
	size_t i = sh_find(c, pid), j;

	if (i == SIZE_MAX)
		return;
	c->sh_pid[i] = 0;
	c->sh_n--;
	for (j = (i + 1) & (c->sh_cap - 1); c->sh_pid[j]; j = (j + 1) & (c->sh_cap - 1)) {
		uint32_t p = c->sh_pid[j];
		uint64_t m = c->sh_mark[j];

		c->sh_pid[j] = 0;
		c->sh_n--;
		sh_put(c, p, m);
	}
}

enum track_change { TC_NONE, TC_ADDED, TC_REWRITTEN, TC_DELETED };

/* How the map's entry for pid differs from the shadow now. */
static enum track_change track_diff(struct collector *c, uint32_t pid, uint64_t *found)
{
	struct rs_track t;
	size_t i = sh_find(c, pid);
	bool in_map = bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.tracked), &pid, &t) == 0;

	*found = in_map ? mark(t.run, t.step) : 0;
	if (in_map && i == SIZE_MAX)
		return TC_ADDED;
	if (in_map && *found != c->sh_mark[i])
		return TC_REWRITTEN;
	/* An entry goes with its process's exit event; a live process must keep it. Once fork
	 * or exit events were dropped the shadow cannot tell (the pid may be reused). */
	if (!in_map && i != SIZE_MAX && !c->drops[RS_FORK] && !c->drops[RS_EXIT] &&
	    (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return TC_DELETED;
	return TC_NONE;
}

/* The run id and step name of a mark, for a record (the daemon's run table, or ours). */
static const char *mark_names(const struct collector *c, uint64_t m, const char **step)
{
	if (c->names)
		return c->names(c->names_ctx, (uint32_t)(m >> 32), (uint32_t)m, step);
	*step = step_name(c, (uint32_t)m);
	return c->run_id;
}

/* Records a change made to the map outside runseal's programs, and undoes it. The record
 * belongs to the run the process was registered with (to the one it was moved to, for a
 * process added from nowhere). */
static int track_tampered(struct collector *c, uint32_t pid, enum track_change tc, uint64_t found)
{
	static const char *const what[] = {"", "added", "rewritten", "deleted"};
	size_t i = sh_find(c, pid);
	uint64_t want = i == SIZE_MAX ? 0 : c->sh_mark[i];
	const char *want_run, *want_step, *found_run, *found_step;
	struct stream *s = c->out;

	c->tampered++;
	if (tc != TC_DELETED)
		prctl(RS_MARK_UNTRACK, (unsigned long)pid, 0UL, 0UL, 0UL);
	if (tc != TC_ADDED)
		prctl(RS_MARK_TRACK, (unsigned long)pid, (unsigned long)(want >> 32),
		      (unsigned long)(uint32_t)want, 0UL);
	want_run = mark_names(c, want, &want_step);
	found_run = mark_names(c, found, &found_step);
	rec_begin(s, REC_LOSS, now_ns(CLOCK_REALTIME), tc == TC_ADDED ? found_run : want_run, -1);
	rec_str(s, "reason", "tamper");
	rec_null(s, "count");
	rec_str(s, "tracked", what[tc]);
	rec_int(s, "tracked_pid", pid);
	if (tc != TC_ADDED)
		rec_str(s, "expected_step", want_step);
	if (tc != TC_DELETED)
		rec_str(s, "found_step", found_step);
	/* Moved to another run: which one (the daemon's runs only; ours is always run 1). */
	if (tc == TC_REWRITTEN && (found >> 32) != (want >> 32))
		rec_str(s, "found_run", found_run);
	rec_str(s, "detail",
		"the kernel's tracked map was changed outside runseal (by a BPF "
		"program): records of this process may be missing or misattributed "
		"until the change was found and undone");
	return rec_end(s);
}

static int on_exec(struct collector *c, const struct rs_exec *e, size_t size)
{
	struct stream *s = c->out;
	size_t need = sizeof(*e) + e->filename_len + e->argv_len + e->cwd_len + e->exe_len;
	const char *d = e->data;
	bool trunc = e->h.flags & RS_F_ARGV_TRUNC;

	if (size < sizeof(*e) || need > size)
		return -1;
	begin_proc(c, REC_EXEC, &e->h);
	rec_strn(s, "filename", d, e->filename_len, e->h.flags & RS_F_NAME_TRUNC);
	if (e->exe_len)
		put_components(s, "path", d + e->filename_len + e->argv_len + e->cwd_len,
			       e->exe_len, e->exe_depth);
	else if (e->ret == 0)
		rec_null(s, "path"); /* the kernel walk found no name at all */
	if (e->ret == 0)
		rec_exe_digest(s, e->h.pid, d + e->filename_len + e->argv_len + e->cwd_len,
			       e->exe_len, e->exe_len ? e->exe_depth : RS_DEPTH_TRUNC);
	put_argv(s, d + e->filename_len, e->argv_len, trunc);
	rec_int(s, "argc", e->argc);
	rec_int(s, "argv_bytes", e->argv_total);
	rec_bool(s, "argv_truncated", trunc);
	put_components(s, "cwd", d + e->filename_len + e->argv_len, e->cwd_len, e->cwd_depth);
	put_result(s, e->ret);
	return rec_end(s);
}

static int on_fork(struct collector *c, const struct rs_fork *e, size_t size)
{
	if (size < sizeof(*e))
		return -1;
	sh_put(c, e->child_pid, mark(e->h.run, e->h.step));
	begin_proc(c, REC_FORK, &e->h);
	rec_int(c->out, "child_pid", e->child_pid);
	return rec_end(c->out);
}

static int on_exit_ev(struct collector *c, const struct rs_exit *e, size_t size)
{
	struct stream *s = c->out;

	if (size < sizeof(*e))
		return -1;
	sh_del(c, e->h.pid);
	begin_proc(c, REC_EXIT, &e->h);
	if (e->code & 0x7f) {
		rec_null(s, "exit_code");
		rec_int(s, "signal", e->code & 0x7f);
		rec_bool(s, "core_dumped", e->code & 0x80);
	} else {
		rec_int(s, "exit_code", (e->code >> 8) & 0xff);
		rec_null(s, "signal");
	}
	return rec_end(s);
}

static void put_open_path(struct stream *s, const struct rs_open *e)
{
	const char *name = e->data, *res = e->data + e->name_len;
	char *base = NULL, *path = NULL, *arg = strndup(name, e->name_len);

	if (!arg)
		err(2, "out of memory");
	if (e->h.flags & RS_F_RESOLVED && e->res_len) {
		put_walked(s, "path", res, e->res_len, e->res_depth, NULL, true);
	} else if (e->h.flags & RS_F_BASE && e->res_len && e->name_len && name[0] != '/') {
		put_walked(s, "path", res, e->res_len, e->res_depth, arg, true);
	} else {
		path = e->name_len ? path_join("/", arg) : NULL;
		rec_str(s, "path", path);
	}
	free(arg);
	free(base);
	free(path);
}

static int on_open(struct collector *c, const struct rs_open *e, size_t size)
{
	struct stream *s = c->out;
	const char *names[24];
	char extra[24];
	size_t n;

	if (size < sizeof(*e) || sizeof(*e) + e->name_len + e->res_len > size)
		return -1;
	begin_proc(c, REC_OPEN, &e->h);
	rec_str(s, "syscall",
		e->syscall < sizeof(syscall_names) / sizeof(*syscall_names)
		    ? syscall_names[e->syscall]
		    : "?");
	put_open_path(s, e);
	if (e->syscall != 4) /* open_by_handle_at names no path */
		rec_strn(s, "path_arg", e->data, e->name_len, e->h.flags & RS_F_NAME_TRUNC);
	n = decode_open_flags(e->flags, names, 24, extra, sizeof(extra));
	rec_open(s, "flags", '[');
	for (size_t i = 0; i < n; i++)
		rec_item(s, names[i], strlen(names[i]), false);
	rec_close(s, ']');
	/* The mode only means something when the call may create the file. */
	if (e->flags & (O_CREAT | __O_TMPFILE)) {
		char mode[16];

		snprintf(mode, sizeof(mode), "%04o", e->mode & 07777);
		rec_str(s, "mode", mode);
	}
	if (e->dfd != -100)
		rec_int(s, "dirfd", e->dfd);
	if (e->ret >= 0)
		rec_int(s, "fd", e->ret);
	put_result(s, e->ret);
	return rec_end(s);
}

/* For destinations the kernel holds no copy of. */
static const struct rs_endpoint no_endpoint;

/* An address the kernel holds, in the form decode_sockaddr gives ("inet", "1.2.3.4", 80). */
static bool endpoint_info(const struct rs_endpoint *ep, struct sockaddr_info *out)
{
	memset(out, 0, sizeof(*out));
	out->port = -1;
	if (ep->family != AF_INET && ep->family != AF_INET6)
		return false;
	out->family = ep->family == AF_INET ? "inet" : "inet6";
	out->family_num = ep->family;
	out->port = ep->port;
	inet_ntop(ep->family, ep->addr, out->addr, sizeof(out->addr));
	return true;
}

static void put_inet(struct stream *s, const char *key, const struct sockaddr_info *a)
{
	char buf[96];

	snprintf(buf, sizeof(buf), strchr(a->addr, ':') ? "[%s]:%d" : "%s:%d", a->addr, a->port);
	rec_str(s, key, buf);
}

/* inet destinations come from the socket after the call (a second thread can rewrite the
 * sockaddr while the kernel reads it); the caller's copy is kept as addr_arg when it says
 * something else. A socket the failed call left without a destination falls back to it. */
static void put_inet_dest(struct stream *s, const struct sockaddr_info *arg, bool arg_ok,
			  const struct rs_endpoint *peer, const char *source)
{
	struct sockaddr_info k;
	bool from_sock = endpoint_info(peer, &k) && k.port > 0;
	const struct sockaddr_info *a = from_sock ? &k : arg;

	rec_str(s, "family", a->family);
	rec_str(s, "addr", a->addr);
	rec_int(s, "port", a->port);
	rec_str(s, "addr_source", from_sock ? source : "argument");
	if (from_sock && arg_ok && (strcmp(arg->addr, k.addr) || arg->port != k.port))
		put_inet(s, "addr_arg", arg);
}

/* The destination of a connect or a send: inet from the kernel where it holds one (peer,
 * named by source), others as the caller passed them. */
static void put_dest(struct stream *s, const uint8_t *sa, size_t addrlen,
		     const struct rs_endpoint *peer, const char *source)
{
	size_t len = addrlen < RS_SOCKADDR_MAX ? addrlen : RS_SOCKADDR_MAX;
	struct sockaddr_info a;
	bool ok = decode_sockaddr(sa, len, &a) == 0;

	if (ok && a.port >= 0) {
		put_inet_dest(s, &a, true, peer, source);
	} else if (!ok) {
		rec_str(s, "family", "other");
		rec_int(s, "family_num", a.family_num);
	} else {
		rec_str(s, "family", a.family);
		if (!strcmp(a.family, "unix")) {
			rec_strn(s, "path", a.path, a.path_len, false);
			rec_bool(s, "abstract", a.abstract);
		} else if (!strcmp(a.family, "other")) {
			rec_int(s, "family_num", a.family_num);
		}
	}
}

static int on_connect(struct collector *c, const struct rs_connect *e, size_t size)
{
	struct stream *s = c->out;

	if (size < sizeof(*e))
		return -1;
	begin_proc(c, REC_CONNECT, &e->h);
	rec_int(s, "fd", e->fd);
	rec_str(s, "via", "connect");
	put_dest(s, e->sockaddr, e->addrlen, &e->peer, "socket");
	put_result(s, e->ret);
	return rec_end(s);
}

/* ==== capture coverage (issue 8): file changes, privilege changes, network ============== */

/* What each file-change syscall's arguments mean in its record; the BPF side packs the same
 * arguments into the event (see the FSOP lines in runseal.bpf.c). */
struct fsop_info {
	const char *syscall;
	enum rec_kind kind;
	const char *key[2]; /* record field of path slot 0 and 1 */
	const char *num[2]; /* "mode", "owner", "group", "length", or NULL */
	bool has_flags;
	const char *str_key; /* the raw string's field, "fstype" when NULL */
};

static const struct fsop_info fsop_infos[RS_OP_FSOP_MAX] = {
    [RS_OP_RENAME] = {"rename", REC_RENAME, {"old_path", "path"}, {0}, false},
    [RS_OP_RENAMEAT] = {"renameat", REC_RENAME, {"old_path", "path"}, {0}, false},
    [RS_OP_RENAMEAT2] = {"renameat2", REC_RENAME, {"old_path", "path"}, {0}, true},
    [RS_OP_UNLINK] = {"unlink", REC_UNLINK, {NULL, "path"}, {0}, false},
    [RS_OP_UNLINKAT] = {"unlinkat", REC_UNLINK, {NULL, "path"}, {0}, true},
    [RS_OP_RMDIR] = {"rmdir", REC_UNLINK, {NULL, "path"}, {0}, false},
    [RS_OP_CHMOD] = {"chmod", REC_CHMOD, {"path", NULL}, {"mode", NULL}, false},
    [RS_OP_FCHMOD] = {"fchmod", REC_CHMOD, {"path", NULL}, {"mode", NULL}, false},
    [RS_OP_FCHMODAT] = {"fchmodat", REC_CHMOD, {"path", NULL}, {"mode", NULL}, false},
    [RS_OP_FCHMODAT2] = {"fchmodat2", REC_CHMOD, {"path", NULL}, {"mode", NULL}, true},
    [RS_OP_CHOWN] = {"chown", REC_CHOWN, {"path", NULL}, {"owner", "group"}, false},
    [RS_OP_FCHOWN] = {"fchown", REC_CHOWN, {"path", NULL}, {"owner", "group"}, false},
    [RS_OP_FCHOWNAT] = {"fchownat", REC_CHOWN, {"path", NULL}, {"owner", "group"}, true},
    [RS_OP_LCHOWN] = {"lchown", REC_CHOWN, {"path", NULL}, {"owner", "group"}, false},
    [RS_OP_LINK] = {"link", REC_LINK, {"old_path", "path"}, {0}, false},
    [RS_OP_LINKAT] = {"linkat", REC_LINK, {"old_path", "path"}, {0}, true},
    [RS_OP_SYMLINK] = {"symlink", REC_SYMLINK, {"target", "path"}, {0}, false},
    [RS_OP_SYMLINKAT] = {"symlinkat", REC_SYMLINK, {"target", "path"}, {0}, false},
    [RS_OP_TRUNCATE] = {"truncate", REC_TRUNCATE, {"path", NULL}, {"length", NULL}, false},
    [RS_OP_FTRUNCATE] = {"ftruncate", REC_TRUNCATE, {"path", NULL}, {"length", NULL}, false},
    [RS_OP_MOUNT] = {"mount", REC_MOUNT, {"source", "path"}, {0}, true},
    [RS_OP_UMOUNT] = {"umount2", REC_UMOUNT, {NULL, "path"}, {0}, true},
    [RS_OP_MOVE_MOUNT] = {"move_mount", REC_MOUNT, {"old_path", "path"}, {0}, true},
    [RS_OP_OPEN_TREE] = {"open_tree", REC_MOUNT, {NULL, "path"}, {0}, true},
    [RS_OP_MKDIR] = {"mkdir", REC_MKDIR, {"path", NULL}, {"mode", NULL}, false},
    [RS_OP_MKDIRAT] = {"mkdirat", REC_MKDIR, {"path", NULL}, {"mode", NULL}, false},
    [RS_OP_MKNOD] = {"mknod", REC_MKNOD, {"path", NULL}, {"mode", "dev"}, false},
    [RS_OP_MKNODAT] = {"mknodat", REC_MKNOD, {"path", NULL}, {"mode", "dev"}, false},
    [RS_OP_SETXATTR] = {"setxattr", REC_XATTR, {"path", NULL}, {"size", NULL}, true, "name"},
    [RS_OP_LSETXATTR] = {"lsetxattr", REC_XATTR, {"path", NULL}, {"size", NULL}, true, "name"},
    [RS_OP_FSETXATTR] = {"fsetxattr", REC_XATTR, {"path", NULL}, {"size", NULL}, true, "name"},
    [RS_OP_REMOVEXATTR] = {"removexattr", REC_XATTR, {"path", NULL}, {0}, false, "name"},
    [RS_OP_LREMOVEXATTR] = {"lremovexattr", REC_XATTR, {"path", NULL}, {0}, false, "name"},
    [RS_OP_FREMOVEXATTR] = {"fremovexattr", REC_XATTR, {"path", NULL}, {0}, false, "name"},
    [RS_OP_UTIMENSAT] = {"utimensat", REC_UTIMES, {"path", NULL}, {"times", NULL}, true},
    [RS_OP_FUTIMESAT] = {"futimesat", REC_UTIMES, {"path", NULL}, {"times", NULL}, false},
    [RS_OP_UTIMES] = {"utimes", REC_UTIMES, {"path", NULL}, {"times", NULL}, false},
    [RS_OP_UTIME] = {"utime", REC_UTIMES, {"path", NULL}, {"times", NULL}, false},
    [RS_OP_CHROOT] = {"chroot", REC_CHROOT, {"path", NULL}, {0}, false},
    [RS_OP_PIVOT_ROOT] = {"pivot_root", REC_CHROOT, {"path", "put_old"}, {0}, false},
    [RS_OP_UNSHARE] = {"unshare", REC_NAMESPACE, {NULL, NULL}, {0}, false},
    [RS_OP_SETNS] = {"setns", REC_NAMESPACE, {NULL, NULL}, {"ns_inode", NULL}, false},
};

/* CLONE_NEW* bits (linux/sched.h), by the names /proc/PID/ns uses. */
static const struct {
	uint64_t bit;
	const char *name;
} ns_bits[] = {
    {0x00020000, "mnt"},  {0x02000000, "cgroup"}, {0x04000000, "uts"}, {0x08000000, "ipc"},
    {0x10000000, "user"}, {0x20000000, "pid"},	  {0x40000000, "net"}, {0x00000080, "time"},
};

/* unshare's flags: the namespaces by name; other bits (CLONE_FILES, CLONE_FS...) in hex. */
static void put_ns_flags(struct stream *s, uint64_t v)
{
	rec_open(s, "flags", '[');
	for (size_t i = 0; i < sizeof(ns_bits) / sizeof(*ns_bits); i++)
		if (v & ns_bits[i].bit) {
			rec_item(s, ns_bits[i].name, strlen(ns_bits[i].name), false);
			v &= ~ns_bits[i].bit;
		}
	if (v) {
		char bits[24];
		int n = snprintf(bits, sizeof(bits), "0x%llx", (unsigned long long)v);

		rec_item(s, bits, (size_t)n, false);
	}
	rec_close(s, ']');
}

/* setns's nstype: one namespace's name, or null for 0 (any). */
static void put_nstype(struct stream *s, uint64_t v)
{
	for (size_t i = 0; i < sizeof(ns_bits) / sizeof(*ns_bits); i++)
		if (v == ns_bits[i].bit) {
			rec_str(s, "nstype", ns_bits[i].name);
			return;
		}
	if (v)
		rec_int(s, "nstype", (int64_t)v);
	else
		rec_null(s, "nstype");
}

/* Field names of a slot: "path", "path_arg", "path_truncated", "path_detached". */
static void put_fs_slot(struct stream *s, const char *key, const struct rs_pslot *ps,
			const char *name, const char *base, bool raw)
{
	char *arg, *path = NULL;

	if (!(ps->flags & RS_PS_PRESENT))
		return;
	if (raw) {
		rec_strn(s, key, name, ps->name_len, ps->flags & RS_PS_TRUNC);
		return;
	}
	arg = strndup(name, ps->name_len);
	if (!arg)
		err(2, "out of memory");
	if (ps->flags & RS_PS_FD && !ps->name_len) {
		put_walked(s, key, base, ps->base_len, ps->base_depth, NULL, true);
	} else if (ps->name_len && name[0] != '/' && ps->flags & RS_PS_BASE) {
		put_walked(s, key, base, ps->base_len, ps->base_depth, arg, true);
	} else {
		path = ps->name_len ? path_join(NULL, arg) : NULL;
		rec_str(s, key, path);
	}
	if (!(ps->flags & RS_PS_FD) || ps->name_len) {
		char k[32];

		snprintf(k, sizeof(k), "%s_arg", key);
		rec_strn(s, k, name, ps->name_len, ps->flags & RS_PS_TRUNC);
	}
	free(arg);
	free(path);
}

static void put_fs_num(struct stream *s, const char *key, uint64_t v)
{
	if (!key)
		return;
	if (!strcmp(key, "dev")) {
		char dev[32];

		snprintf(dev, sizeof(dev), "%u:%u", major((dev_t)v), minor((dev_t)v));
		rec_str(s, "dev", dev);
	} else if (!strcmp(key, "mode")) {
		char mode[16];

		snprintf(mode, sizeof(mode), "%04o", (unsigned)(v & 07777));
		rec_str(s, "mode", mode);
		rec_bool(s, "setuid", v & S_ISUID);
		rec_bool(s, "setgid", v & S_ISGID);
	} else if (!strcmp(key, "length") || !strcmp(key, "size") || !strcmp(key, "ns_inode")) {
		rec_int(s, key, (int64_t)v);
	} else if (!strcmp(key, "times")) {
		/* No times: set to now, as touch does; given times can date a file back. */
		rec_str(s, key, v ? "given" : "now");
	} else if ((uint32_t)v == UINT32_MAX) {
		rec_null(s, key); /* -1: left unchanged */
	} else {
		rec_int(s, key, (uint32_t)v);
	}
}

static const char *node_type(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFCHR:
		return "char";
	case S_IFBLK:
		return "block";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	default:
		return "file"; /* 0 or S_IFREG */
	}
}

static int on_fsop(struct collector *c, const struct rs_fsop *e, size_t size)
{
	struct stream *s = c->out;
	const struct fsop_info *fi;
	const char *p[2], *b[2], *str;
	size_t need = sizeof(*e);

	if (size < sizeof(*e) || e->op == 0 || e->op >= RS_OP_FSOP_MAX)
		return -1;
	fi = &fsop_infos[e->op];
	for (int i = 0; i < 2; i++) {
		p[i] = e->data + need - sizeof(*e);
		b[i] = p[i] + e->slot[i].name_len;
		need += (size_t)e->slot[i].name_len + e->slot[i].base_len;
	}
	str = e->data + need - sizeof(*e);
	need += e->str_len;
	if (need > size)
		return -1;
	begin_proc(c, fi->kind, &e->h);
	rec_str(s, "syscall", fi->syscall);
	for (int i = 0; i < 2; i++)
		if (fi->key[i])
			put_fs_slot(s, fi->key[i], &e->slot[i], p[i], b[i],
				    !strcmp(fi->key[i], "target") || !strcmp(fi->key[i], "source"));
	if (e->str_len)
		rec_strn(s, fi->str_key ? fi->str_key : "fstype", str, e->str_len, false);
	if (e->op == RS_OP_UNSHARE)
		put_ns_flags(s, e->aflags);
	if (e->op == RS_OP_SETNS)
		put_nstype(s, e->aflags);
	if (e->op == RS_OP_MKNOD || e->op == RS_OP_MKNODAT)
		rec_str(s, "type", node_type((unsigned)e->num[0]));
	put_fs_num(s, fi->num[0], e->num[0]);
	put_fs_num(s, fi->num[1], e->num[1]);
	if (e->op == RS_OP_RMDIR || (e->op == RS_OP_UNLINKAT && e->aflags & AT_REMOVEDIR))
		rec_bool(s, "dir", true);
	if (fi->has_flags)
		rec_int(s, "flags", (int64_t)e->aflags);
	if (e->fd >= 0)
		rec_int(s, "fd", e->fd);
	if (e->op == RS_OP_OPEN_TREE && e->ret >= 0)
		rec_int(s, "fd", e->ret);
	if (e->uring) { /* its result comes as an io_uring_result record */
		rec_str(s, "via", "io_uring");
		rec_int(s, "user_data", (int64_t)e->user_data);
		rec_null(s, "ret");
		return rec_end(s);
	}
	put_result(s, e->ret);
	return rec_end(s);
}

static const char *const cred_syscalls[RS_CR_MAX] = {
    [RS_CR_SETUID] = "setuid",	   [RS_CR_SETGID] = "setgid",	    [RS_CR_SETREUID] = "setreuid",
    [RS_CR_SETREGID] = "setregid", [RS_CR_SETRESUID] = "setresuid", [RS_CR_SETRESGID] = "setresgid",
    [RS_CR_SETFSUID] = "setfsuid", [RS_CR_SETFSGID] = "setfsgid",   [RS_CR_CAPSET] = "capset",
};

/* Names of the ids each call asks for, in argument order. */
static const char *const cred_args[RS_CR_MAX][3] = {
    [RS_CR_SETUID] = {"req_uid"},
    [RS_CR_SETGID] = {"req_gid"},
    [RS_CR_SETREUID] = {"req_ruid", "req_euid"},
    [RS_CR_SETREGID] = {"req_rgid", "req_egid"},
    [RS_CR_SETRESUID] = {"req_ruid", "req_euid", "req_suid"},
    [RS_CR_SETRESGID] = {"req_rgid", "req_egid", "req_sgid"},
    [RS_CR_SETFSUID] = {"req_fsuid"},
    [RS_CR_SETFSGID] = {"req_fsgid"},
};

static void put_caps(struct stream *s, const char *key, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%016llx", (unsigned long long)v);
	rec_str(s, key, buf);
}

static int on_cred(struct collector *c, const struct rs_cred *e, size_t size)
{
	static const char *const uk[4] = {"new_uid", "new_euid", "new_suid", "new_fsuid"};
	static const char *const gk[4] = {"new_gid", "new_egid", "new_sgid", "new_fsgid"};
	struct stream *s = c->out;

	if (size < sizeof(*e) || e->op == 0 || e->op >= RS_CR_MAX)
		return -1;
	begin_proc(c, REC_CRED, &e->h);
	rec_str(s, "syscall", cred_syscalls[e->op]);
	for (unsigned i = 0; i < 3 && i < e->nargs; i++)
		put_fs_num(s, cred_args[e->op][i], e->arg[i]);
	if (e->op == RS_CR_CAPSET) {
		put_caps(s, "req_cap_effective", e->cap_req[0]);
		put_caps(s, "req_cap_permitted", e->cap_req[1]);
		put_caps(s, "req_cap_inheritable", e->cap_req[2]);
	}
	for (int i = 0; i < 4; i++)
		rec_int(s, uk[i], e->uid[i]);
	for (int i = 0; i < 4; i++)
		rec_int(s, gk[i], e->gid[i]);
	put_caps(s, "cap_effective", e->cap_now[0]);
	put_caps(s, "cap_permitted", e->cap_now[1]);
	put_caps(s, "cap_inheritable", e->cap_now[2]);
	/* setfsuid and setfsgid return the previous id, never an error. */
	if (e->op == RS_CR_SETFSUID || e->op == RS_CR_SETFSGID)
		rec_int(s, "ret", e->ret);
	else
		put_result(s, e->ret);
	return rec_end(s);
}

static const char *const net_via[RS_NET_MAX] = {
    [RS_NET_CONNECT] = "connect",   [RS_NET_SENDTO] = "sendto",	    [RS_NET_SENDMSG] = "sendmsg",
    [RS_NET_SENDMMSG] = "sendmmsg", [RS_NET_FASTOPEN] = "fastopen", [RS_NET_LISTEN] = "listen",
    [RS_NET_ACCEPT] = "accept",	    [RS_NET_ACCEPT4] = "accept4",   [RS_NET_BIND] = "bind",
    [RS_NET_RECVFROM] = "recvfrom", [RS_NET_RECVMSG] = "recvmsg",
};

static const char *sock_type_name(unsigned type)
{
	switch (type) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_RAW:
		return "raw";
	case SOCK_SEQPACKET:
		return "seqpacket";
	default:
		return "other";
	}
}

static void put_endpoint(struct stream *s, const char *addr_key, const char *port_key,
			 const struct rs_endpoint *ep)
{
	struct sockaddr_info a;

	if (!endpoint_info(ep, &a))
		return;
	rec_str(s, addr_key, a.addr);
	rec_int(s, port_key, a.port);
}

static int on_net(struct collector *c, const struct rs_net *e, size_t size)
{
	struct stream *s = c->out;
	struct sockaddr_info a;

	if (size < sizeof(*e) || e->op == 0 || e->op >= RS_NET_MAX)
		return -1;
	if (e->op == RS_NET_LISTEN || e->op == RS_NET_BIND) {
		/* A datagram socket's bind is how a step opens a listener for UDP. */
		begin_proc(c, REC_LISTEN, &e->h);
		rec_int(s, "fd", e->fd);
		rec_str(s, "via", net_via[e->op]);
		rec_str(s, "family", endpoint_info(&e->local, &a) ? a.family : "other");
		put_endpoint(s, "addr", "port", &e->local);
	} else if (e->op == RS_NET_ACCEPT || e->op == RS_NET_ACCEPT4 || e->op == RS_NET_RECVFROM ||
		   e->op == RS_NET_RECVMSG) {
		bool accept = e->op == RS_NET_ACCEPT || e->op == RS_NET_ACCEPT4;

		begin_proc(c, REC_ACCEPT, &e->h);
		rec_int(s, "fd", e->fd);
		rec_str(s, "via", net_via[e->op]);
		rec_str(s, "family", endpoint_info(&e->remote, &a) ? a.family : "other");
		put_endpoint(s, "addr", "port", &e->remote);
		put_endpoint(s, "local_addr", "local_port", &e->local);
		if (accept)
			rec_int(s, "new_fd", e->ret);
	} else {
		begin_proc(c, REC_CONNECT, &e->h);
		rec_int(s, "fd", e->fd);
		rec_str(s, "via", net_via[e->op]);
		/* A Fast Open send leaves its destination in the socket; a datagram's was seen
		 * where the kernel routed it (sendmmsg's: the caller's copies). */
		put_dest(s, e->sockaddr, e->addrlen,
			 e->op == RS_NET_SENDMMSG ? &no_endpoint : &e->remote,
			 e->op == RS_NET_FASTOPEN ? "socket" : "route");
	}
	rec_str(s, "sock_type", sock_type_name(e->sk_type));
	put_result(s, e->ret);
	return rec_end(s);
}

/* i386 names of the calls that matter most (arch/x86/entry/syscalls/syscall_32.tbl). */
static const struct {
	unsigned nr;
	const char *name;
} ia32_names[] = {
    {1, "exit"},	 {2, "fork"},	    {3, "read"},
    {4, "write"},	 {5, "open"},	    {6, "close"},
    {8, "creat"},	 {9, "link"},	    {10, "unlink"},
    {11, "execve"},	 {15, "chmod"},	    {20, "getpid"},
    {21, "mount"},	 {23, "setuid"},    {26, "ptrace"},
    {37, "kill"},	 {38, "rename"},    {40, "rmdir"},
    {52, "umount2"},	 {83, "symlink"},   {92, "truncate"},
    {102, "socketcall"}, {120, "clone"},    {182, "chown"},
    {190, "vfork"},	 {213, "setuid32"}, {252, "exit_group"},
    {295, "openat"},	 {301, "unlinkat"}, {302, "renameat"},
    {303, "linkat"},	 {322, "execveat"}, {353, "renameat2"},
    {357, "bpf"},	 {359, "socket"},   {362, "connect"},
    {369, "sendto"},	 {370, "sendmsg"},  {426, "io_uring_enter"},
    {437, "openat2"},
};

static int on_compat(struct collector *c, const struct rs_compat *e, size_t size)
{
	struct stream *s = c->out;
	bool x32 = e->nr & 0x40000000;

	if (size < sizeof(*e) || sizeof(*e) + e->path_len > size)
		return -1;
	begin_proc(c, REC_COMPAT_SYSCALL, &e->h);
	rec_str(s, "abi", x32 ? "x32" : "ia32");
	rec_int(s, "nr", x32 ? e->nr & ~0x40000000u : e->nr);
	for (size_t i = 0; !x32 && i < sizeof(ia32_names) / sizeof(ia32_names[0]); i++)
		if (ia32_names[i].nr == e->nr)
			rec_str(s, "name", ia32_names[i].name);
	rec_bool(s, "first", e->first);
	if (e->path_len)
		rec_strn(s, "path_arg", e->data, e->path_len, e->path_len >= RS_NAME_MAX - 1);
	rec_open(s, "args", '[');
	for (int i = 0; i < 6; i++) {
		char buf[24];
		int n = snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)e->args[i]);

		rec_item(s, buf, (size_t)n, false);
	}
	rec_close(s, ']');
	return rec_end(s);
}

static void put_flag_names(struct stream *s, uint64_t flags)
{
	const char *names[24];
	char extra[24];
	size_t n = decode_open_flags(flags, names, 24, extra, sizeof(extra));

	rec_open(s, "flags", '[');
	for (size_t i = 0; i < n; i++)
		rec_item(s, names[i], strlen(names[i]), false);
	rec_close(s, ']');
}

/* An io_uring submission is recorded as what it asks for (an open, a connect, a send, an
 * accept) with via "io_uring"; its result comes later, in the ring, and is not known. */
static const struct {
	unsigned op;
	const char *name;
} uring_ops[] = {{35, "renameat"}, {36, "unlinkat"}, {37, "mkdirat"}, {38, "symlinkat"},
		 {39, "linkat"},   {18, "openat"},   {28, "openat2"}, {16, "connect"},
		 {26, "send"},	   {9, "sendmsg"},   {47, "send_zc"}, {48, "sendmsg_zc"},
		 {13, "accept"}};

/* A request's completion: its result, paired to the submission by user_data. */
static int on_uring_result(struct collector *c, const struct rs_uring *e)
{
	struct stream *s = c->out;
	const char *op = "?";

	for (size_t i = 0; i < sizeof(uring_ops) / sizeof(uring_ops[0]); i++)
		if (uring_ops[i].op == e->opcode)
			op = uring_ops[i].name;
	begin_proc(c, REC_IO_URING_RESULT, &e->h);
	rec_str(s, "op", op);
	rec_int(s, "user_data", (int64_t)e->user_data);
	rec_int(s, "fd", e->fd);
	if (e->peer.family) {
		struct sockaddr_info a;

		rec_str(s, "family", endpoint_info(&e->peer, &a) ? a.family : "other");
		put_endpoint(s, "addr", "port", &e->peer);
	}
	put_result(s, e->res);
	return rec_end(s);
}

static int on_uring(struct collector *c, const struct rs_uring *e, size_t size)
{
	struct stream *s = c->out;
	bool open = e->opcode == 18 /* OPENAT */ || e->opcode == 28 /* OPENAT2 */;

	if (size < sizeof(*e) || sizeof(*e) + e->name_len + e->res_len > size)
		return -1;
	if (e->completion)
		return on_uring_result(c, e);
	if (open) {
		char *arg = strndup(e->data, e->name_len);

		if (!arg)
			err(2, "out of memory");
		begin_proc(c, REC_OPEN, &e->h);
		rec_str(s, "syscall", e->opcode == 18 ? "openat" : "openat2");
		rec_str(s, "via", "io_uring");
		if (e->res_len && e->name_len && arg[0] != '/') {
			put_walked(s, "path", e->data + e->name_len, e->res_len, e->res_depth, arg,
				   true);
		} else {
			char *path = e->name_len ? path_join("/", arg) : NULL;

			rec_str(s, "path", path);
			free(path);
		}
		rec_strn(s, "path_arg", e->data, e->name_len, e->name_len >= RS_NAME_MAX - 1);
		free(arg);
		put_flag_names(s, e->oflags);
		if (e->oflags & (O_CREAT | __O_TMPFILE)) {
			char mode[16];

			snprintf(mode, sizeof(mode), "%04o", e->mode & 07777);
			rec_str(s, "mode", mode);
		}
		if (e->fd != -100)
			rec_int(s, "dirfd", e->fd);
	} else if (e->opcode == 13 /* ACCEPT */) {
		begin_proc(c, REC_ACCEPT, &e->h);
		rec_int(s, "fd", e->fd);
		rec_str(s, "via", "io_uring");
	} else {
		static const struct {
			unsigned op;
			const char *via;
		} vias[] = {{16, "io_uring_connect"},
			    {26, "io_uring_send"},
			    {9, "io_uring_sendmsg"},
			    {47, "io_uring_send_zc"},
			    {48, "io_uring_sendmsg_zc"}};
		const char *via = "io_uring";

		for (size_t i = 0; i < sizeof(vias) / sizeof(vias[0]); i++)
			if (vias[i].op == e->opcode)
				via = vias[i].via;
		begin_proc(c, REC_CONNECT, &e->h);
		rec_int(s, "fd", e->fd);
		rec_str(s, "via", via);
		put_dest(s, e->sockaddr, e->addrlen, &no_endpoint, "argument");
	}
	rec_int(s, "user_data", (int64_t)e->user_data);
	rec_bool(s, "sq_thread", e->sq_thread);
	rec_null(s, "ret");
	return rec_end(s);
}

/* A descriptor copied out of another process: whose, and what it is. */
static bool own_pid(const struct collector *c, pid_t pid);

static int on_getfd(struct collector *c, const struct rs_getfd *e, size_t size)
{
	struct stream *s = c->out;
	struct sockaddr_info a;

	if (size < sizeof(*e) || sizeof(*e) + e->res_len > size)
		return -1;
	begin_proc(c, REC_PIDFD_GETFD, &e->h);
	rec_int(s, "pidfd", e->pidfd);
	if (e->target_pid)
		rec_int(s, "target_pid", e->target_pid);
	else
		rec_null(s, "target_pid");
	rec_bool(s, "target_in_run", e->target_tracked);
	/* Taking a descriptor out of runseal (its ring buffer, its maps) is tampering; the
	 * record is made before the caller returns to use the copy. */
	if (e->target_pid && own_pid(c, e->target_pid)) {
		rec_str(s, "target", "runseal");
		c->tamper_attempts++;
	}
	rec_int(s, "target_fd", e->target_fd);
	if (e->ret >= 0)
		rec_int(s, "fd", e->ret);
	if (e->sk_type) {
		rec_str(s, "sock_type", sock_type_name(e->sk_type));
		if (endpoint_info(&e->remote, &a) || endpoint_info(&e->local, &a)) {
			rec_str(s, "family", a.family);
			put_endpoint(s, "addr", "port", &e->remote);
			put_endpoint(s, "local_addr", "local_port", &e->local);
		}
	} else if (e->res_len) {
		put_walked(s, "path", e->data, e->res_len, e->res_depth, NULL, true);
	}
	put_result(s, e->ret);
	return rec_end(s);
}

/* ==== end of capture coverage (issue 8) ================================================== */

/* ---- self-protection (issue 8) ------------------------------------------------------- */

enum { OWN_MAP, OWN_PROG, OWN_LINK };

static bool own_id(const struct collector *c, int type, uint32_t id)
{
	for (size_t i = 0; i < c->nown[type]; i++)
		if (c->own_ids[type][i] == id)
			return true;
	return false;
}

static bool own_pid(const struct collector *c, pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < sizeof(c->own_pids) / sizeof(*c->own_pids); i++)
		if (c->own_pids[i] == pid)
			return true;
	return false;
}

/* Whose process a syscall aims at: runseal's own, one of the run's, or another. */
static void put_target(struct collector *c, const struct rs_guard *e, bool pidfd)
{
	struct stream *s = c->out;
	const char *whose;

	if (!(e->tflags & RS_T_PID))
		return;
	rec_int(s, "target_pid", e->target);
	if (pidfd && e->target <= 0)
		whose = "unknown";
	else if (e->target == -1)
		whose = "all";
	else if (e->target < -1)
		whose = "group";
	else if (e->target == 0)
		whose = "self";
	else if (own_pid(c, e->target)) {
		whose = "runseal";
		c->tamper_attempts++;
	} else if (e->tflags & RS_T_TRACKED && e->target_run == e->h.run)
		whose = "run";
	else
		whose = "outside";
	rec_str(s, "target", whose);
	if (!strcmp(whose, "run"))
		rec_str(s, "target_step", step_name(c, e->target_step));
}

static void put_guard_name(struct stream *s, const char *key, const struct rs_guard *e)
{
	if (e->name_len)
		rec_strn(s, key, e->data, e->name_len, e->h.flags & RS_F_NAME_TRUNC);
}

static void put_bpf(struct collector *c, const struct rs_guard *e)
{
	static const char *const id_keys[] = {"", "map_id", "prog_id", "link_id"};
	struct stream *s = c->out;
	uint64_t cmd = e->arg[0];
	int type = -1;

	rec_str(s, "cmd", decode_bpf_cmd(cmd));
	rec_int(s, "cmd_num", (int64_t)cmd);
	if (e->obj_type >= RS_OBJ_MAP && e->obj_type <= RS_OBJ_LINK) {
		type = (int)e->obj_type - RS_OBJ_MAP;
		rec_int(s, id_keys[e->obj_type], e->obj_id);
	} else if (e->obj_type == RS_OBJ_ID) {
		/* An id passed as is: the object kind follows from the command. */
		type = cmd == BPF_MAP_GET_FD_BY_ID    ? OWN_MAP
		       : cmd == BPF_PROG_GET_FD_BY_ID ? OWN_PROG
		       : cmd == BPF_LINK_GET_FD_BY_ID ? OWN_LINK
						      : -1;
		rec_int(s, type >= 0 ? id_keys[type + 1] : "id", e->obj_id);
	}
	if (type >= 0 && own_id(c, type, e->obj_id)) {
		rec_str(s, "owner", "runseal");
		c->tamper_attempts++;
	} else if (type >= 0) {
		rec_str(s, "owner", "other");
	}
	if (cmd == BPF_PROG_LOAD)
		rec_int(s, "prog_type", (int64_t)e->arg[2]);
	else if (cmd == BPF_MAP_CREATE)
		rec_int(s, "map_type", (int64_t)e->arg[2]);
	put_guard_name(s,
		       cmd == BPF_OBJ_PIN || cmd == BPF_OBJ_GET ? "path"
		       : cmd == BPF_RAW_TRACEPOINT_OPEN		? "tracepoint"
								: "name",
		       e);
	rec_int(s, "attr_size", (int64_t)e->arg[1]);
}

static void put_signal(struct collector *c, const struct rs_guard *e, const char *sys)
{
	struct stream *s = c->out;
	char buf[24];

	rec_str(s, "syscall", sys);
	rec_str(s, "signal", decode_signal(e->arg[0], buf, sizeof(buf)));
	rec_int(s, "signal_num", (int64_t)e->arg[0]);
	put_target(c, e, e->sys == RS_G_PIDFD_SEND_SIGNAL);
	if (e->sys == RS_G_TGKILL)
		rec_int(s, "target_tid", (int64_t)e->arg[1]);
	else if (e->sys == RS_G_PIDFD_SEND_SIGNAL)
		rec_int(s, "pidfd", (int64_t)(int32_t)e->arg[1]);
}

static void put_memfd(struct collector *c, const struct rs_guard *e)
{
	struct stream *s = c->out;
	const char *names[8];
	char extra[24];
	size_t n = decode_memfd_flags(e->arg[0], names, 8, extra, sizeof(extra));

	put_guard_name(s, "name", e);
	rec_open(s, "flags", '[');
	for (size_t i = 0; i < n; i++)
		rec_item(s, names[i], strlen(names[i]), false);
	rec_close(s, ']');
}

static const struct {
	enum rec_kind kind;
	const char *sys;
} guard_kinds[RS_G_MAX] = {
    [RS_G_BPF] = {REC_BPF, "bpf"},
    [RS_G_PERF_EVENT_OPEN] = {REC_PERF_EVENT_OPEN, "perf_event_open"},
    [RS_G_PTRACE] = {REC_PTRACE, "ptrace"},
    [RS_G_PROCESS_VM_WRITEV] = {REC_PROCESS_VM, "process_vm_writev"},
    [RS_G_PROCESS_VM_READV] = {REC_PROCESS_VM, "process_vm_readv"},
    [RS_G_PIDFD_SEND_SIGNAL] = {REC_SIGNAL, "pidfd_send_signal"},
    [RS_G_KILL] = {REC_SIGNAL, "kill"},
    [RS_G_TGKILL] = {REC_SIGNAL, "tgkill"},
    [RS_G_TKILL] = {REC_SIGNAL, "tkill"},
    [RS_G_INIT_MODULE] = {REC_MODULE_LOAD, "init_module"},
    [RS_G_FINIT_MODULE] = {REC_MODULE_LOAD, "finit_module"},
    [RS_G_MEMFD_CREATE] = {REC_MEMFD_CREATE, "memfd_create"},
};

/* A syscall that could blind or fool runseal, recorded at its entry: no result yet. */
static int on_guard(struct collector *c, const struct rs_guard *e, size_t size)
{
	struct stream *s = c->out;
	const char *req;

	if (size < sizeof(*e) || sizeof(*e) + e->name_len > size || !e->sys || e->sys >= RS_G_MAX)
		return -1;
	begin_proc(c, guard_kinds[e->sys].kind, &e->h);
	switch (e->sys) {
	case RS_G_BPF:
		put_bpf(c, e);
		break;
	case RS_G_PERF_EVENT_OPEN:
		rec_int(s, "type", (int64_t)e->arg[0]);
		rec_int(s, "config", (int64_t)e->arg[1]);
		rec_int(s, "cpu", (int32_t)e->arg[2]);
		rec_int(s, "flags", (int64_t)e->arg[3]);
		put_target(c, e, false);
		break;
	case RS_G_PTRACE:
		req = decode_ptrace_request(e->arg[0]);
		rec_str(s, "request", req);
		rec_int(s, "request_num", (int64_t)e->arg[0]);
		if (e->arg[0] != 0) /* PTRACE_TRACEME names no target */
			put_target(c, e, false);
		break;
	case RS_G_PROCESS_VM_WRITEV:
	case RS_G_PROCESS_VM_READV:
		rec_str(s, "syscall", guard_kinds[e->sys].sys);
		put_target(c, e, false);
		break;
	case RS_G_INIT_MODULE:
	case RS_G_FINIT_MODULE:
		rec_str(s, "syscall", guard_kinds[e->sys].sys);
		if (e->sys == RS_G_FINIT_MODULE)
			rec_int(s, "fd", (int32_t)e->arg[0]);
		else
			rec_int(s, "len", (int64_t)e->arg[0]);
		put_guard_name(s, "params", e);
		break;
	case RS_G_MEMFD_CREATE:
		put_memfd(c, e);
		break;
	default:
		put_signal(c, e, guard_kinds[e->sys].sys);
		break;
	}
	return rec_end(s);
}

/* Someone else moved the ring buffer's consumer position (the consumer page is writable
 * to anyone who maps the ring): the records in between were never seen. */
/* One loss record per 100 ms at most for consumer moves: an attacker moving it in a loop
 * must not flood the log. */
static int tamper_flush(struct collector *c, bool final)
{
	struct stream *s = c->out;
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	if (!c->tamper_moves || (!final && now - c->last_tamper_rec < 100000000ull))
		return 0;
	c->last_tamper_rec = now;
	rec_begin(s, REC_LOSS, now_ns(CLOCK_REALTIME), c->run_id, -1);
	rec_str(s, "reason", "tamper");
	rec_null(s, "count");
	rec_int(s, "bytes", c->tamper_bytes);
	rec_int(s, "moves", (int64_t)c->tamper_moves);
	rec_str(s, "detail",
		c->tamper_bytes >= 0 ? "the ring buffer's consumer position was moved forward "
				       "by another process: records were skipped unread"
				     : "the ring buffer's consumer position was moved back by "
				       "another process: records may be read twice");
	c->tamper_bytes = 0;
	c->tamper_moves = 0;
	return rec_end(s);
}

static void tampered_consumer(struct collector *c, uint64_t found)
{
	c->tamper_bytes += (int64_t)(found - c->rb_pos);
	c->tamper_moves++;
	c->tampered++;
}

/* The consumer position must be the one we stored last; another is put back: reading goes
 * on from where the collector is, whatever the producer overwrote meanwhile. */
static int check_consumer(struct collector *c)
{
	uint64_t pos = __atomic_load_n(c->rb_cons, __ATOMIC_ACQUIRE);

	if (pos == c->rb_pos)
		return 0;
	tampered_consumer(c, pos);
	__atomic_store_n(c->rb_cons, c->rb_pos, __ATOMIC_RELEASE);
	return tamper_flush(c, false);
}

#define RB_BUSY	   (1u << 31)
#define RB_DISCARD (1u << 30)
#define RB_HDR	   8

static int handle(void *ctx, void *data, size_t size);

/* Advances the consumer over one record, only over the value we stored: a compare-and-swap
 * that fails means another process wrote the position since. */
static void rb_advance(struct collector *c, uint64_t next)
{
	uint64_t expect = c->rb_pos;

	if (!__atomic_compare_exchange_n(c->rb_cons, &expect, next, false, __ATOMIC_RELEASE,
					 __ATOMIC_RELAXED)) {
		tampered_consumer(c, expect);
		__atomic_store_n(c->rb_cons, next, __ATOMIC_RELEASE);
	}
	c->rb_pos = next;
}

/* Every record the producer has committed, in order, as libbpf's ring_buffer__consume
 * reads them. Returns -1 when the stream failed. */
static int rb_consume(struct collector *c)
{
	uint64_t prod;

	if (check_consumer(c) < 0)
		return -1;
	while (c->rb_pos < (prod = __atomic_load_n(c->rb_prod, __ATOMIC_ACQUIRE))) {
		const uint8_t *rec = c->rb_data + (c->rb_pos & c->rb_mask);
		uint32_t len = __atomic_load_n((const uint32_t *)rec, __ATOMIC_ACQUIRE), size;

		if (len & RB_BUSY)
			break;
		size = len & ~(RB_BUSY | RB_DISCARD);
		/* A length no record can have: the position is not at a record (someone moved
		 * it); what is left of this ring cannot be trusted, so skip to the producer. */
		if (size > c->rb_mask + 1 - RB_HDR) {
			rb_advance(c, prod);
			c->malformed++;
			break;
		}
		if (!(len & RB_DISCARD) && handle(c, (void *)(rec + RB_HDR), size) < 0) {
			rb_advance(c, c->rb_pos + ((size + RB_HDR + 7) & ~7ull));
			return -1;
		}
		rb_advance(c, c->rb_pos + ((size + RB_HDR + 7) & ~7ull));
	}
	return tamper_flush(c, false);
}

/* Every map the programs trust is frozen: bpf() can no longer write it, from any process
 * (the programs still can). The ring buffer cannot be, and .rodata already is. */
static int freeze_maps(struct collector *c)
{
	struct bpf_map *m;

	for (m = bpf_object__next_map(c->skel->obj, NULL); m;
	     m = bpf_object__next_map(c->skel->obj, m)) {
		/* libbpf froze the read-only ones (.rodata) itself. */
		if (bpf_map__type(m) == BPF_MAP_TYPE_RINGBUF ||
		    bpf_map__map_flags(m) & BPF_F_RDONLY_PROG)
			continue;
		if (bpf_map_freeze(bpf_map__fd(m)) < 0) {
			warn("cannot freeze BPF map %s", bpf_map__name(m));
			return -1;
		}
	}
	return 0;
}

static void add_own(struct collector *c, int type, int fd)
{
	struct bpf_map_info mi = {0};
	struct bpf_prog_info pi = {0};
	struct bpf_link_info li = {0};
	uint32_t len = type == OWN_MAP ? sizeof(mi) : type == OWN_PROG ? sizeof(pi) : sizeof(li);
	uint32_t id = 0;

	if (fd < 0 || c->nown[type] >= 128)
		return;
	if (type == OWN_MAP && !bpf_obj_get_info_by_fd(fd, &mi, &len))
		id = mi.id;
	else if (type == OWN_PROG && !bpf_obj_get_info_by_fd(fd, &pi, &len))
		id = pi.id;
	else if (type == OWN_LINK && !bpf_obj_get_info_by_fd(fd, &li, &len))
		id = li.id;
	if (id)
		c->own_ids[type][c->nown[type]++] = id;
}

/* Ids of runseal's own maps, programs and links, to say whose a bpf() call names. */
static void collect_own_ids(struct collector *c)
{
	struct bpf_link **links = (struct bpf_link **)&c->skel->links;
	struct bpf_program *p;
	struct bpf_map *m;

	for (m = bpf_object__next_map(c->skel->obj, NULL); m;
	     m = bpf_object__next_map(c->skel->obj, m))
		add_own(c, OWN_MAP, bpf_map__fd(m));
	for (p = bpf_object__next_program(c->skel->obj, NULL); p;
	     p = bpf_object__next_program(c->skel->obj, p))
		add_own(c, OWN_PROG, bpf_program__fd(p));
	for (size_t i = 0; i < sizeof(c->skel->links) / sizeof(*links); i++)
		if (links[i])
			add_own(c, OWN_LINK, bpf_link__fd(links[i]));
}

/* Maps the ring as libbpf does: the consumer page read-write, then the producer page and
 * the data area, which the kernel maps twice in a row so a record never wraps. */
static int map_ring(struct collector *c)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = bpf_map__max_entries(c->skel->maps.events);
	int fd = bpf_map__fd(c->skel->maps.events);
	void *cons = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	void *prod = cons == MAP_FAILED
			 ? MAP_FAILED
			 : mmap(NULL, page + 2 * size, PROT_READ, MAP_SHARED, fd, (off_t)page);

	if (prod == MAP_FAILED) {
		warn("cannot map the BPF ring buffer");
		if (cons != MAP_FAILED)
			munmap(cons, page);
		return -1;
	}
	c->rb_cons = cons;
	c->rb_prod = prod;
	c->rb_data = (const uint8_t *)prod + page;
	c->rb_mask = size - 1;
	c->rb_pos = *c->rb_cons;
	return 0;
}

static void unmap_ring(struct collector *c)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (c->rb_cons)
		munmap((void *)c->rb_cons, page);
	if (c->rb_prod)
		munmap((void *)c->rb_prod, page + 2 * (c->rb_mask + 1));
	c->rb_cons = NULL;
	c->rb_prod = NULL;
	c->rb_data = NULL;
}

int collector_untrack(struct collector *c, pid_t pid)
{
	uint32_t key = (uint32_t)pid;
	struct rs_track t;

	prctl(RS_MARK_UNTRACK, (unsigned long)pid, 0, 0, 0);
	sh_del(c, key);
	return bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.tracked), &key, &t) == 0 ? -1 : 0;
}

size_t collector_tracked(struct collector *c, pid_t *pids, uint32_t *steps, size_t max)
{
	return collector_run_tracked(c, 1, pids, steps, max);
}

/* The tracked map's entries: all of them (runs set), or the live processes of one run. */
static size_t walk_tracked(struct collector *c, const uint32_t *run, pid_t *pids, uint32_t *runs,
			   uint32_t *steps, size_t max)
{
	int fd = bpf_map__fd(c->skel->maps.tracked);
	uint32_t key, next, *prev = NULL;
	struct rs_track t;
	size_t n = 0;

	while (n < max && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &t) < 0)
			continue;
		/* Only processes still alive: an exit removes the entry, a pid never lingers. */
		if (run && (t.run != *run || (kill((pid_t)key, 0) < 0 && errno != EPERM)))
			continue;
		pids[n] = (pid_t)key;
		if (runs)
			runs[n] = t.run;
		steps[n++] = t.step;
	}
	return n;
}

size_t collector_run_tracked(struct collector *c, uint32_t run, pid_t *pids, uint32_t *steps,
			     size_t max)
{
	return walk_tracked(c, &run, pids, NULL, steps, max);
}

size_t collector_tracked_all(struct collector *c, pid_t *pids, uint32_t *runs, uint32_t *steps,
			     size_t max)
{
	return walk_tracked(c, NULL, pids, runs, steps, max);
}

int collector_events_fd(struct collector *c)
{
	return bpf_map__fd(c->skel->maps.events);
}

const char *collector_guard_sys_name(unsigned sys)
{
	return sys && sys < RS_G_MAX ? guard_kinds[sys].sys : NULL;
}

void collector_set_own_pid(struct collector *c, pid_t pid)
{
	/* Every guard the run had stays runseal's own: records of a dead one may still wait. */
	for (size_t i = 1; i < sizeof(c->own_pids) / sizeof(*c->own_pids); i++)
		if (!c->own_pids[i]) {
			c->own_pids[i] = pid;
			return;
		}
	c->own_pids[sizeof(c->own_pids) / sizeof(*c->own_pids) - 1] = pid;
}

bool collector_incomplete(const struct collector *c)
{
	/* A step that reached for runseal's own maps, programs or process may have changed
	 * what it records in ways no counter shows (a BPF program of its own can write a
	 * frozen map): the record cannot be vouched for as complete. */
	return c->lost || c->tampered || c->tamper_attempts;
}

/* To the caller's callback (none: counted only; the loss record says it either way). */
static void warn_malformed(struct collector *c, int kind, size_t size)
{
	char msg[128];

	c->malformed++;
	if (!c->warn)
		return;
	if (kind < 0)
		snprintf(msg, sizeof(msg), "malformed event of %zu bytes counted as lost", size);
	else
		snprintf(msg, sizeof(msg), "malformed event (kind %d, %zu bytes) counted as lost",
			 kind, size);
	c->warn(c->warn_ctx, msg);
}

static int handle(void *ctx, void *data, size_t size)
{
	struct collector *c = ctx;
	const struct rs_hdr *h = data;
	int r = -1;

	if (size < sizeof(*h) || h->size > size) {
		warn_malformed(c, -1, size);
		return 0;
	}
	size = h->size;
	c->events++;
	switch (h->kind) {
	case RS_EXEC:
		r = on_exec(c, data, size);
		break;
	case RS_FORK:
		r = on_fork(c, data, size);
		break;
	case RS_EXIT:
		r = on_exit_ev(c, data, size);
		break;
	case RS_OPEN:
		r = on_open(c, data, size);
		break;
	case RS_CONNECT:
		r = on_connect(c, data, size);
		break;
	case RS_GUARD:
		r = on_guard(c, data, size);
		break;
	case RS_FSOP:
		r = on_fsop(c, data, size);
		break;
	case RS_CRED:
		r = on_cred(c, data, size);
		break;
	case RS_NET:
		r = on_net(c, data, size);
		break;
	case RS_COMPAT:
		r = on_compat(c, data, size);
		break;
	case RS_URING:
		r = on_uring(c, data, size);
		break;
	case RS_GETFD:
		r = on_getfd(c, data, size);
		break;
	}
	if (r < 0 && !c->out->failed)
		warn_malformed(c, (int)h->kind, size);
	/* A failed stream stops the drain; the runner then fails closed. */
	return c->out->failed ? -1 : 0;
}

static const char *const kind_names[RS_KIND_MAX] = {
    [RS_EXEC] = "exec",	       [RS_FORK] = "fork",	 [RS_EXIT] = "exit",
    [RS_OPEN] = "open",	       [RS_CONNECT] = "connect", [RS_GUARD] = "guard",
    [RS_FSOP] = "file_change", [RS_CRED] = "cred",	 [RS_NET] = "net",
    [RS_COMPAT] = "compat",    [RS_URING] = "io_uring",	 [RS_GETFD] = "pidfd_getfd",
};

_Static_assert(RS_KIND_MAX <= sizeof(((struct collector *)0)->drops) / sizeof(uint64_t),
	       "struct collector's drops[] needs a counter per event kind");

/* Ring-buffer reservations that failed in the kernel, per kind, summed over CPUs. */
static int check_drops(struct collector *c)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(c->skel->maps.drops);
	uint64_t now[RS_KIND_MAX] = {0}, total = 0;
	uint64_t *vals;
	struct stream *s = c->out;

	if (ncpu < 1) /* out of descriptors: counted next time */
		return 0;
	vals = xcalloc((size_t)ncpu, sizeof(uint64_t));

	for (uint32_t k = 1; k < RS_KIND_MAX; k++) {
		if (bpf_map_lookup_elem(fd, &k, vals) == 0)
			for (int i = 0; i < ncpu; i++)
				now[k] += vals[i];
		total += now[k] - c->drops[k];
	}
	free(vals);
	total += c->malformed - c->malformed_seen;
	if (!total)
		return 0;
	c->lost += total;
	rec_begin(s, REC_LOSS, now_ns(CLOCK_REALTIME), c->run_id, -1);
	rec_int(s, "count", (int64_t)total);
	rec_open(s, "kinds", '{');
	for (uint32_t k = 1; k < RS_KIND_MAX; k++) {
		if (now[k] != c->drops[k])
			rec_int(s, kind_names[k], (int64_t)(now[k] - c->drops[k]));
		c->drops[k] = now[k];
	}
	if (c->malformed != c->malformed_seen)
		rec_int(s, "malformed", (int64_t)(c->malformed - c->malformed_seen));
	c->malformed_seen = c->malformed;
	rec_close(s, '}');
	return rec_end(s);
}

/* Compares the tracked map with its shadow. A difference may be a race with events not
 * read yet: those are read, and only what still differs is tampering. */
static int check_tracked(struct collector *c)
{
	int fd = bpf_map__fd(c->skel->maps.tracked);
	uint32_t key, next, *prev = NULL, cand[64];
	uint64_t found;
	size_t ncand = 0;

	c->sh_gen++;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		size_t i = sh_find(c, next);

		key = next;
		prev = &key;
		if (i != SIZE_MAX)
			c->sh_seen[i] = c->sh_gen;
		if (ncand < 64 && track_diff(c, key, &found) != TC_NONE)
			cand[ncand++] = key;
	}
	for (size_t i = 0; i < c->sh_cap && ncand < 64; i++)
		if (c->sh_pid[i] && c->sh_seen[i] != c->sh_gen &&
		    track_diff(c, c->sh_pid[i], &found) != TC_NONE)
			cand[ncand++] = c->sh_pid[i];
	if (!ncand)
		return 0;
	if (rb_consume(c) < 0)
		return -1;
	for (size_t k = 0; k < ncand; k++) {
		enum track_change tc = track_diff(c, cand[k], &found);

		if (tc != TC_NONE && track_tampered(c, cand[k], tc, found) < 0)
			return -1;
	}
	return 0;
}

int collector_drain(struct collector *c, bool final)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	if (rb_consume(c) < 0 && c->out->failed)
		return -1;
	/* Under overload one loss record per interval, not one per wake-up. */
	if (final || now - c->last_drop_check >= 100000000ull) {
		c->last_drop_check = now;
		if (check_drops(c) < 0)
			return -1;
	}
	if (final || now - c->last_track_check >= 500000000ull) {
		c->last_track_check = now;
		if (check_tracked(c) < 0)
			return -1;
	}
	if (tamper_flush(c, final) < 0)
		return -1;
	return c->out->failed ? -1 : 0;
}

int collector_open(struct collector *c, struct stream *out, size_t ringbuf_bytes, unsigned flags)
{
	memset(c, 0, sizeof(*c));
	c->out = out;
	c->boot_to_real = (int64_t)now_ns(CLOCK_REALTIME) - (int64_t)now_ns(CLOCK_BOOTTIME);
	libbpf_set_print(libbpf_print);
	if (geteuid() != 0) {
		warnx("tracing needs root (CAP_BPF and CAP_PERFMON or CAP_SYS_ADMIN)");
		return -1;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		warn("kernel BTF /sys/kernel/btf/vmlinux is not readable (a kernel with "
		     "CONFIG_DEBUG_INFO_BTF is needed)");
		return -1;
	}
	c->skel = runseal_bpf__open();
	if (!c->skel) {
		warn("cannot open the BPF programs");
		return -1;
	}
	if (ringbuf_bytes)
		bpf_map__set_max_entries(c->skel->maps.events, (uint32_t)ringbuf_bytes);
	c->skel->rodata->floor_only = flags & COLLECTOR_FLOOR;
	c->skel->rodata->fail_closed = flags & COLLECTOR_FAIL_CLOSED;
	c->skel->rodata->runner_tgid = (uint32_t)getpid();
	c->own_pids[0] = getpid();
	/* An eighth of the ring: wake-ups stay rare, and there is room while the collector
	 * gets scheduled. */
	c->skel->rodata->wake_bytes =
	    (ringbuf_bytes ? ringbuf_bytes : COLLECTOR_RINGBUF_DEFAULT) / 8;
	if (c->skel->rodata->wake_bytes > 262144)
		c->skel->rodata->wake_bytes = 262144;
	if (runseal_bpf__load(c->skel) || runseal_bpf__attach(c->skel)) {
		warnx("cannot load or attach the BPF programs (see the messages above)");
		collector_close(c);
		return -1;
	}
	if (freeze_maps(c) < 0) {
		collector_close(c);
		return -1;
	}
	collect_own_ids(c);
	if (map_ring(c) < 0) {
		collector_close(c);
		return -1;
	}
	return 0;
}

void collector_close(struct collector *c)
{
	unmap_ring(c);
	runseal_bpf__destroy(c->skel);
	for (size_t i = 0; i < c->nsteps; i++)
		free(c->steps[i]);
	free(c->steps);
	free(c->sh_pid);
	free(c->sh_mark);
	free(c->sh_seen);
	c->sh_pid = c->sh_seen = NULL;
	c->sh_mark = NULL;
	c->sh_cap = c->sh_n = 0;
	c->skel = NULL;
	c->steps = NULL;
	c->nsteps = 0;
}

int collector_pin(struct collector *c, const char *dir, char *err, size_t errlen)
{
	struct bpf_link **links = (struct bpf_link **)&c->skel->links;
	char path[PATH_MAX];
	int n = 0;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(c->skel->links) / sizeof(*links); i++) {
		if (!links[i])
			continue;
		snprintf(path, sizeof(path), "%s/link-%d", dir, n);
		if (bpf_link__pin(links[i], path))
			goto fail;
		n++;
	}
	snprintf(path, sizeof(path), "%s/tracked", dir);
	if (bpf_map__pin(c->skel->maps.tracked, path))
		goto fail;
	snprintf(path, sizeof(path), "%s/events", dir);
	if (bpf_map__pin(c->skel->maps.events, path))
		goto fail;
	return n;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	collector_unpin(dir);
	return -1;
}

void collector_unpin(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* The pinned tracked map's live processes, killed: the exit program of the pinned links
 * removed every process that ended, so no pid in it names an unrelated process. */
static int reap_tracked(int fd, pid_t *pids, uint32_t *steps, size_t max)
{
	uint32_t key, next, *prev = NULL;
	struct rs_track t;
	int n = 0;

	while ((size_t)n < max && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &t) == 0 && kill((pid_t)key, SIGKILL) == 0) {
			pids[n] = (pid_t)key;
			steps[n++] = t.step;
		}
	}
	return n;
}

int collector_reap(const char *dir, int nlinks, pid_t *pids, uint32_t *steps, size_t max,
		   int (*fn)(void *ctx, void *data, size_t size), void *ctx)
{
	char path[PATH_MAX];
	int present = 0, n = 0, tfd, efd;

	for (int i = 0; i < nlinks; i++) {
		snprintf(path, sizeof(path), "%s/link-%d", dir, i);
		present += access(path, F_OK) == 0;
	}
	snprintf(path, sizeof(path), "%s/tracked", dir);
	tfd = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/events", dir);
	efd = bpf_obj_get(path);
	if (tfd < 0 && efd < 0 && !present) {
		collector_unpin(dir);
		return -1;
	}
	if (tfd >= 0 && present == nlinks)
		n = reap_tracked(tfd, pids, steps, max);
	if (efd >= 0) {
		struct ring_buffer *rb = ring_buffer__new(efd, fn, ctx, NULL);

		if (rb) {
			ring_buffer__consume(rb);
			ring_buffer__free(rb);
		}
		close(efd);
	}
	if (tfd >= 0)
		close(tfd);
	collector_unpin(dir);
	return n;
}

void collector_set_run(struct collector *c, const char *run_id)
{
	c->run_id = run_id;
}

void collector_set_step(struct collector *c, uint32_t seq, const char *name)
{
	if (seq >= c->nsteps) {
		c->steps = xrealloc(c->steps, (seq + 1) * sizeof(*c->steps));
		memset(c->steps + c->nsteps, 0, (seq + 1 - c->nsteps) * sizeof(*c->steps));
		c->nsteps = seq + 1;
	}
	free(c->steps[seq]);
	c->steps[seq] = xstrdup(name);
}

/* The map is frozen: registration is a marker syscall that sys_prctl_enter acts on, and
 * the entry is then read back to check it took. */
int collector_track(struct collector *c, pid_t pid, uint32_t seq)
{
	struct rs_track t = {0};
	uint32_t key = (uint32_t)pid;

	prctl(RS_MARK_TRACK, (unsigned long)pid, 1UL, (unsigned long)seq, 0UL);
	if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.tracked), &key, &t) < 0)
		return -1;
	if (t.run != 1 || t.step != seq) {
		errno = EEXIST;
		return -1;
	}
	sh_put(c, key, mark(1, seq));
	return 0;
}

int collector_fd(struct collector *c)
{
	/* The ring's own descriptor polls readable while data waits. */
	return bpf_map__fd(c->skel->maps.events);
}

/* ---- the daemon's many runs ----------------------------------------------------------- */

void collector_set_warn(struct collector *c, collector_warn_fn fn, void *ctx)
{
	c->warn = fn;
	c->warn_ctx = ctx;
}

void collector_set_names(struct collector *c, collector_names_fn fn, void *ctx)
{
	c->names = fn;
	c->names_ctx = ctx;
}

/* Where the tracked map is frozen (RS_MARK_TRACK, issue 8), registration is the marker
 * syscall collector_track uses, read back; until then, a map update. */
int collector_track_run(struct collector *c, pid_t pid, uint32_t run, uint32_t seq)
{
	uint32_t key = (uint32_t)pid;
#ifdef RS_MARK_TRACK
	struct rs_track t = {0};

	prctl(RS_MARK_TRACK, (unsigned long)pid, (unsigned long)run, (unsigned long)seq, 0UL);
	if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.tracked), &key, &t) < 0)
		return -1;
	if (t.run != run || t.step != seq) {
		errno = EEXIST;
		return -1;
	}
	sh_put(c, key, mark(run, seq));
	return 0;
#else
	struct rs_track t = {.run = run, .step = seq};

	return bpf_map_update_elem(bpf_map__fd(c->skel->maps.tracked), &key, &t, BPF_NOEXIST);
#endif
}

int collector_run_of(struct collector *c, pid_t pid, uint32_t *run, uint32_t *seq)
{
	struct rs_track t;
	uint32_t key = (uint32_t)pid;

	if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.tracked), &key, &t) < 0)
		return -1;
	*run = t.run;
	*seq = t.step;
	return 0;
}

int collector_drop_pid(struct collector *c, pid_t pid)
{
#ifdef RS_MARK_UNTRACK
	return collector_untrack(c, pid);
#else
	uint32_t key = (uint32_t)pid;

	return bpf_map_delete_elem(bpf_map__fd(c->skel->maps.tracked), &key);
#endif
}

size_t collector_run_pids(struct collector *c, uint32_t run, bool forget)
{
	int fd = bpf_map__fd(c->skel->maps.tracked);
	uint32_t key, next, *prev = NULL, *found = NULL;
	struct rs_track t;
	size_t n = 0;

	/* Deleting while walking would restart the walk: collect first. */
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &t) < 0 || t.run != run)
			continue;
		found = xrealloc(found, (n + 1) * sizeof(*found));
		found[n++] = key;
	}
	for (size_t i = 0; forget && i < n; i++)
		collector_drop_pid(c, (pid_t)found[i]);
	free(found);
	return n;
}
