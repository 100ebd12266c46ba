#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "decode.h"
#include "runseal.h"
#include "runseal.skel.h"
#include "util.h"

_Static_assert(RS_KIND_MAX <= sizeof(((struct collector *)0)->drops) / sizeof(uint64_t),
	       "collector.drops has a slot per event kind");

#define TRACEFS "/sys/kernel/tracing"

static const char *const syscall_names[] = {"openat", "openat2", "open", "creat",
					    "open_by_handle_at"};

/* libbpf attaches tracepoints through tracefs, which these hosts may leave unmounted. */
static int ensure_tracefs(void)
{
	if (access(TRACEFS "/events", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return 0;
	mkdir(TRACEFS, 0700);
	if (mount("tracefs", TRACEFS, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		warn("cannot mount tracefs at " TRACEFS " (needed to attach tracepoints)");
		return -1;
	}
	return 0;
}

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

	rec_begin(s, kind, h->ts + c->boot_to_real, c->run_id, (int)h->step);
	rec_str(s, "step", step_name(c, h->step));
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
	begin_proc(c, REC_FORK, &e->h);
	rec_int(c->out, "child_pid", e->child_pid);
	return rec_end(c->out);
}

static int on_exit_ev(struct collector *c, const struct rs_exit *e, size_t size)
{
	struct stream *s = c->out;

	if (size < sizeof(*e))
		return -1;
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
};

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
	} else if (!strcmp(key, "length")) {
		rec_int(s, key, (int64_t)v);
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
		rec_strn(s, "fstype", str, e->str_len, false);
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
    [RS_NET_ACCEPT] = "accept",	    [RS_NET_ACCEPT4] = "accept4",
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
	if (e->op == RS_NET_LISTEN) {
		begin_proc(c, REC_LISTEN, &e->h);
		rec_int(s, "fd", e->fd);
		rec_str(s, "family", endpoint_info(&e->local, &a) ? a.family : "other");
		put_endpoint(s, "addr", "port", &e->local);
	} else if (e->op == RS_NET_ACCEPT || e->op == RS_NET_ACCEPT4) {
		begin_proc(c, REC_ACCEPT, &e->h);
		rec_int(s, "fd", e->fd);
		rec_str(s, "via", net_via[e->op]);
		rec_str(s, "family", endpoint_info(&e->remote, &a) ? a.family : "other");
		put_endpoint(s, "addr", "port", &e->remote);
		put_endpoint(s, "local_addr", "local_port", &e->local);
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

static int handle(void *ctx, void *data, size_t size)
{
	struct collector *c = ctx;
	const struct rs_hdr *h = data;
	int r = -1;

	if (size < sizeof(*h) || h->size > size) {
		warnx("collector: malformed event of %zu bytes counted as lost", size);
		c->malformed++;
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
	if (r < 0 && !c->out->failed) {
		warnx("collector: malformed event (kind %u, %zu bytes) counted as lost", h->kind,
		      size);
		c->malformed++;
	}
	/* A failed stream stops the drain; the runner then fails closed. */
	return c->out->failed ? -1 : 0;
}

static const char *const kind_names[RS_KIND_MAX] = {
    [RS_EXEC] = "exec",	     [RS_FORK] = "fork",	 [RS_EXIT] = "exit",
    [RS_OPEN] = "open",	     [RS_CONNECT] = "connect",	 [RS_FSOP] = "file_change",
    [RS_CRED] = "cred",	     [RS_NET] = "net",		 [RS_COMPAT] = "compat",
    [RS_URING] = "io_uring", [RS_GETFD] = "pidfd_getfd",
};

/* Ring-buffer reservations that failed in the kernel, per kind, summed over CPUs. */
static int check_drops(struct collector *c)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(c->skel->maps.drops);
	uint64_t now[RS_KIND_MAX] = {0}, total = 0;
	uint64_t *vals = xcalloc((size_t)ncpu, sizeof(uint64_t));
	struct stream *s = c->out;

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

int collector_drain(struct collector *c, bool final)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	if (ring_buffer__consume(c->rb) < 0 && c->out->failed)
		return -1;
	/* Under overload one loss record per interval, not one per wake-up. */
	if (final || now - c->last_drop_check >= 100000000ull) {
		c->last_drop_check = now;
		if (check_drops(c) < 0)
			return -1;
	}
	return c->out->failed ? -1 : 0;
}

int collector_open(struct collector *c, struct stream *out, size_t ringbuf_bytes, bool floor)
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
	if (ensure_tracefs() < 0)
		return -1;
	c->skel = runseal_bpf__open();
	if (!c->skel) {
		warn("cannot open the BPF programs");
		return -1;
	}
	if (ringbuf_bytes)
		bpf_map__set_max_entries(c->skel->maps.events, (uint32_t)ringbuf_bytes);
	c->skel->rodata->floor_only = floor;
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
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), handle, c, NULL);
	if (!c->rb) {
		warn("cannot open the BPF ring buffer");
		collector_close(c);
		return -1;
	}
	return 0;
}

struct detach_pool {
	struct bpf_link **links;
	size_t n;
	size_t next; /* taken with __atomic_fetch_add */
};

static void *detach_worker(void *arg)
{
	struct detach_pool *p = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED)) < p->n) {
		bpf_link__destroy(p->links[i]);
		p->links[i] = NULL;
	}
	return NULL;
}

/* Each detach waits for an RCU grace period (70-80 ms here): done one after the other,
 * runseal would linger seconds after every run, so a pool of threads shares them out. */
static void detach_all(struct runseal_bpf *skel)
{
	struct detach_pool p = {.links = (struct bpf_link **)&skel->links,
				.n = sizeof(skel->links) / sizeof(struct bpf_link *)};
	pthread_t t[32];
	size_t started = 0;

	while (started < 32 && started < p.n &&
	       pthread_create(&t[started], NULL, detach_worker, &p) == 0)
		started++;
	detach_worker(&p); /* also the fallback when no thread could start */
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

void collector_close(struct collector *c)
{
	ring_buffer__free(c->rb);
	if (c->skel)
		detach_all(c->skel);
	runseal_bpf__destroy(c->skel);
	for (size_t i = 0; i < c->nsteps; i++)
		free(c->steps[i]);
	free(c->steps);
	c->rb = NULL;
	c->skel = NULL;
	c->steps = NULL;
	c->nsteps = 0;
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

int collector_track(struct collector *c, pid_t pid, uint32_t seq)
{
	struct rs_track t = {.run = 1, .step = seq};
	uint32_t key = (uint32_t)pid;

	return bpf_map_update_elem(bpf_map__fd(c->skel->maps.tracked), &key, &t, BPF_ANY);
}

int collector_fd(struct collector *c)
{
	return ring_buffer__epoll_fd(c->rb);
}
