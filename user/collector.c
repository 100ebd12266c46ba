#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "decode.h"
#include "runseal.h"
#include "runseal.skel.h"
#include "util.h"

#define TRACEFS "/sys/kernel/tracing"

static const char *const syscall_names[] = {"openat", "openat2", "open", "creat"};

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

static void put_components(struct stream *s, const char *key, const char *p, size_t len,
			   unsigned depth)
{
	char *path = path_from_components(p, len, depth == 0xffff ? 0xffff : depth);

	rec_str(s, key, path);
	free(path);
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

static void sh_put(struct collector *c, uint32_t pid, uint32_t step)
{
	size_t i;

	if (!pid)
		return;
	if ((c->sh_n + 1) * 2 > c->sh_cap) {
		uint32_t *op = c->sh_pid, *os = c->sh_step;
		size_t ocap = c->sh_cap;

		c->sh_cap = ocap ? ocap * 2 : 256;
		c->sh_pid = xcalloc(c->sh_cap, sizeof(uint32_t));
		c->sh_step = xcalloc(c->sh_cap, sizeof(uint32_t));
		free(c->sh_seen);
		c->sh_seen = xcalloc(c->sh_cap, sizeof(uint32_t));
		c->sh_n = 0;
		for (size_t k = 0; k < ocap; k++)
			if (op[k])
				sh_put(c, op[k], os[k]);
		free(op);
		free(os);
	}
	i = sh_slot(c, pid);
	if (!c->sh_pid[i])
		c->sh_n++;
	c->sh_pid[i] = pid;
	c->sh_step[i] = step;
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
		uint32_t p = c->sh_pid[j], st = c->sh_step[j];

		c->sh_pid[j] = 0;
		c->sh_n--;
		sh_put(c, p, st);
	}
}

enum track_change { TC_NONE, TC_ADDED, TC_REWRITTEN, TC_DELETED };

/* How the map's entry for pid differs from the shadow now. */
static enum track_change track_diff(struct collector *c, uint32_t pid, uint32_t *found)
{
	struct rs_track t;
	size_t i = sh_find(c, pid);
	bool in_map = bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.tracked), &pid, &t) == 0;

	*found = in_map ? t.step : 0;
	if (in_map && i == SIZE_MAX)
		return TC_ADDED;
	if (in_map && t.step != c->sh_step[i])
		return TC_REWRITTEN;
	/* An entry goes with its process's exit event; a live process must keep it. Once fork
	 * or exit events were dropped the shadow cannot tell (the pid may be reused). */
	if (!in_map && i != SIZE_MAX && !c->drops[RS_FORK] && !c->drops[RS_EXIT] &&
	    (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return TC_DELETED;
	return TC_NONE;
}

/* Records a change made to the map outside runseal's programs, and undoes it. */
static int track_tampered(struct collector *c, uint32_t pid, enum track_change tc, uint32_t found)
{
	static const char *const what[] = {"", "added", "rewritten", "deleted"};
	size_t i = sh_find(c, pid);
	uint32_t want = i == SIZE_MAX ? 0 : c->sh_step[i];
	struct stream *s = c->out;

	c->tampered++;
	if (tc != TC_DELETED)
		prctl(RS_MARK_UNTRACK, (unsigned long)pid, 0UL, 0UL, 0UL);
	if (tc != TC_ADDED)
		prctl(RS_MARK_TRACK, (unsigned long)pid, 1UL, (unsigned long)want, 0UL);
	rec_begin(s, REC_LOSS, now_ns(CLOCK_REALTIME), c->run_id, -1);
	rec_str(s, "reason", "tamper");
	rec_null(s, "count");
	rec_str(s, "tracked", what[tc]);
	rec_int(s, "tracked_pid", pid);
	if (tc != TC_ADDED)
		rec_str(s, "expected_step", step_name(c, want));
	if (tc != TC_DELETED)
		rec_str(s, "found_step", step_name(c, found));
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
	sh_put(c, e->child_pid, e->h.step);
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
	if (e->h.flags & RS_F_RESOLVED && e->res_len)
		path = path_from_components(res, e->res_len, e->res_depth);
	else if (name[0] == '/' || !e->name_len)
		path = e->name_len ? path_join("/", arg) : NULL;
	else if (e->h.flags & RS_F_BASE && e->res_len)
		path = path_join(base = path_from_components(res, e->res_len, e->res_depth), arg);
	rec_str(s, "path", path);
	if (e->res_depth == 0xffff)
		rec_bool(s, "path_truncated", true);
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
	rec_str(s, "syscall", syscall_names[e->syscall & 3]);
	put_open_path(s, e);
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

static int on_connect(struct collector *c, const struct rs_connect *e, size_t size)
{
	struct stream *s = c->out;
	struct sockaddr_info a;
	size_t len = e->addrlen < RS_SOCKADDR_MAX ? e->addrlen : RS_SOCKADDR_MAX;

	if (size < sizeof(*e))
		return -1;
	begin_proc(c, REC_CONNECT, &e->h);
	rec_int(s, "fd", e->fd);
	if (decode_sockaddr(e->sockaddr, len, &a) < 0) {
		rec_str(s, "family", "other");
		rec_int(s, "family_num", a.family_num);
	} else {
		rec_str(s, "family", a.family);
		if (a.port >= 0) {
			rec_str(s, "addr", a.addr);
			rec_int(s, "port", a.port);
		} else if (!strcmp(a.family, "unix")) {
			rec_strn(s, "path", a.path, a.path_len, false);
			rec_bool(s, "abstract", a.abstract);
		} else if (!strcmp(a.family, "other")) {
			rec_int(s, "family_num", a.family_num);
		}
	}
	put_result(s, e->ret);
	return rec_end(s);
}

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
    [RS_G_PIDFD_GETFD] = {REC_PIDFD_GETFD, "pidfd_getfd"},
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
	case RS_G_PIDFD_GETFD:
		put_target(c, e, true);
		rec_int(s, "target_fd", (int32_t)e->arg[0]);
		rec_int(s, "pidfd", (int32_t)e->arg[1]);
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

/* Programs for syscalls this kernel does not have (no module support: no module
 * tracepoints) are not loaded. */
static void skip_missing_tracepoints(struct collector *c)
{
	struct bpf_program *p;

	for (p = bpf_object__next_program(c->skel->obj, NULL); p;
	     p = bpf_object__next_program(c->skel->obj, p)) {
		const char *sec = bpf_program__section_name(p), *tp = "tracepoint/";
		char path[256];

		if (strncmp(sec, tp, strlen(tp)) || !strstr(sec, "_module"))
			continue;
		snprintf(path, sizeof(path), TRACEFS "/events/%s", sec + strlen(tp));
		if (access(path, F_OK) < 0)
			bpf_program__set_autoload(p, false);
	}
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
	int fd = bpf_map__fd(c->skel->maps.tracked);
	uint32_t key, next, *prev = NULL;
	struct rs_track t;
	size_t n = 0;

	while (n < max && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		/* Only processes still alive: an exit removes the entry, a pid never lingers. */
		if (bpf_map_lookup_elem(fd, &key, &t) == 0 && t.run == 1 &&
		    (kill((pid_t)key, 0) == 0 || errno == EPERM)) {
			pids[n] = (pid_t)key;
			steps[n++] = t.step;
		}
	}
	return n;
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
	case RS_GUARD:
		r = on_guard(c, data, size);
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
    [RS_EXEC] = "exec", [RS_FORK] = "fork",	  [RS_EXIT] = "exit",
    [RS_OPEN] = "open", [RS_CONNECT] = "connect", [RS_GUARD] = "guard",
};

_Static_assert(RS_KIND_MAX <= sizeof(((struct collector *)0)->drops) / sizeof(uint64_t),
	       "struct collector's drops[] needs a counter per event kind");

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

/* Compares the tracked map with its shadow. A difference may be a race with events not
 * read yet: those are read, and only what still differs is tampering. */
static int check_tracked(struct collector *c)
{
	int fd = bpf_map__fd(c->skel->maps.tracked);
	uint32_t key, next, *prev = NULL, cand[64], found;
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
	c->skel->rodata->runner_tgid = (uint32_t)getpid();
	c->own_pids[0] = getpid();
	skip_missing_tracepoints(c);
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

static void *detach(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* Each detach waits for an RCU grace period (70-80 ms here): done one after the other,
 * runseal would linger a second after every run. */
static void detach_all(struct runseal_bpf *skel)
{
	struct bpf_link **links = (struct bpf_link **)&skel->links;
	size_t n = sizeof(skel->links) / sizeof(*links);
	pthread_t t[64];
	bool started[64] = {false};

	for (size_t i = 0; i < n && i < 64; i++) {
		if (!links[i])
			continue;
		started[i] = pthread_create(&t[i], NULL, detach, links[i]) == 0;
		if (!started[i])
			bpf_link__destroy(links[i]);
		links[i] = NULL;
	}
	for (size_t i = 0; i < n && i < 64; i++)
		if (started[i])
			pthread_join(t[i], NULL);
}

void collector_close(struct collector *c)
{
	unmap_ring(c);
	if (c->skel)
		detach_all(c->skel);
	runseal_bpf__destroy(c->skel);
	for (size_t i = 0; i < c->nsteps; i++)
		free(c->steps[i]);
	free(c->steps);
	free(c->sh_pid);
	free(c->sh_step);
	free(c->sh_seen);
	c->sh_pid = c->sh_step = c->sh_seen = NULL;
	c->sh_cap = c->sh_n = 0;
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

/* The map is frozen: registration is a marker syscall that on_prctl_enter acts on, and
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
	sh_put(c, key, seq);
	return 0;
}

int collector_fd(struct collector *c)
{
	/* The ring's own descriptor polls readable while data waits. */
	return bpf_map__fd(c->skel->maps.events);
}
