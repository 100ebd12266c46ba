#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "proto.h"
#include "server.h"
#include "util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define OUT_MAX	       65536 /* replies a client may leave unread before it is dropped */
#define CLIENT_RUNS    64    /* runs and steps one connection may hold open */
#define CLIENT_STEPS   256
#define GROUPS_MAX     256
#define REFUSALS_PER_S 10 /* recorded one by one; more are counted */
#define POLL_MS	       10 /* longest an event waits in the ring while runs are open */

struct ostep {
	char run[ENGINE_ID_LEN];
	uint32_t seq;
};

struct client {
	struct client *next, *prev;
	int fd;
	struct engine_peer peer;
	bool member, hello, attached, dead;
	unsigned char *in;
	size_t inlen;
	struct jbuf out;
	size_t outoff;
	bool want_out;
	uint64_t partial_since, unread_since;  /* CLOCK_MONOTONIC ns, 0 when not */
	char runs[CLIENT_RUNS][ENGINE_ID_LEN]; /* runs that end when this connection does */
	size_t nruns;
	struct ostep steps[CLIENT_STEPS]; /* steps abandoned when this connection ends */
	size_t nsteps;
	struct jbuf rec; /* a record arriving in pieces (op record) */
	struct jbuf sec; /* a secret arriving in pieces (op secret) */
};

struct server {
	struct engine *e;
	struct daemon_conf *conf;
	const struct daemon_conf *flags;
	const char *conf_file;
	gid_t gid;
	int epfd, lfd, sigfd, tickfd;
	struct client *clients;
	unsigned nclients;
	unsigned refusals, suppressed; /* this second */
	bool stop, paused;
	unsigned fd_cap; /* clients the descriptor limit leaves room for */
	struct proto_msg msg;
	char *err;
	size_t errlen;
};

/* epoll tags for what is not a client (clients are tagged with their pointer). */
static char TAG_LISTEN, TAG_SIG, TAG_TICK, TAG_ENGINE;

static uint64_t mono(void)
{
	return now_ns(CLOCK_MONOTONIC);
}

static int ep_add(struct server *sv, int fd, void *tag, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = tag};

	return epoll_ctl(sv->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* ---- the listening socket ------------------------------------------------------------- */

static int resolve_group(struct server *sv)
{
	struct group *g = getgrnam(sv->conf->group);

	if (!g) {
		snprintf(sv->err, sv->errlen,
			 "group \"%s\" does not exist (create it, or set --group)",
			 sv->conf->group);
		return -1;
	}
	sv->gid = g->gr_gid;
	return 0;
}

/* A socket file left by a daemon that died is removed; one a live daemon answers on is not. */
static int clear_stale(struct server *sv, const struct sockaddr_un *a)
{
	struct stat st;
	int fd;

	if (lstat(a->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(sv->err, sv->errlen, "%s exists and is not a socket", a->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)a, sizeof(*a)) == 0) {
		close(fd);
		snprintf(sv->err, sv->errlen, "another daemon listens on %s", a->sun_path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return unlink(a->sun_path);
}

static int set_socket_mode(struct server *sv)
{
	if (chown(sv->conf->socket, 0, sv->gid) < 0 ||
	    chmod(sv->conf->socket, sv->conf->socket_mode) < 0) {
		snprintf(sv->err, sv->errlen, "%s: %s", sv->conf->socket, strerror(errno));
		return -1;
	}
	return 0;
}

static int listen_socket(struct server *sv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char dir[sizeof(a.sun_path)], *slash;
	mode_t old;
	int rc;

	if (strlen(sv->conf->socket) >= sizeof(a.sun_path)) {
		snprintf(sv->err, sv->errlen, "socket path %s is too long", sv->conf->socket);
		return -1;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sv->conf->socket);
	snprintf(dir, sizeof(dir), "%s", a.sun_path);
	if ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(sv->err, sv->errlen, "%s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (clear_stale(sv, &a) < 0) {
		if (!*sv->err)
			snprintf(sv->err, sv->errlen, "%s: %s", a.sun_path, strerror(errno));
		return -1;
	}
	sv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sv->lfd < 0)
		return -1;
	/* Born owner-only: nobody connects before the group and mode are set. */
	old = umask(0177);
	rc = bind(sv->lfd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0 || listen(sv->lfd, 512) < 0) {
		snprintf(sv->err, sv->errlen, "%s: %s", a.sun_path, strerror(errno));
		return -1;
	}
	return set_socket_mode(sv);
}

/* ---- clients ------------------------------------------------------------------------- */

static bool is_member(struct server *sv, int fd, const struct ucred *cr)
{
	gid_t groups[GROUPS_MAX];
	socklen_t len = sizeof(groups);

	if (cr->uid == 0 || cr->gid == sv->gid)
		return true;
	/* The groups the peer had when it connected, as the kernel saw them. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == sv->gid)
			return true;
	return false;
}

static void send_frame_now(struct client *c);

static void busy(int fd)
{
	struct jbuf b = {0};
	ssize_t n;

	pe_error(&b, -1, "busy", "too many connections: try again later");
	n = write(fd, b.p, b.len);
	(void)n;
	jb_free(&b);
	close(fd);
}

static void accept_one(struct server *sv, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct client *c;

	if (sv->nclients >= sv->conf->max_clients || sv->nclients >= sv->fd_cap ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		busy(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->peer = (struct engine_peer){cr.uid, cr.gid, cr.pid, -1};
	len = sizeof(c->peer.pidfd);
	/* A pidfd pins the peer: its pid cannot be someone else's while we act on it. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &c->peer.pidfd, &len) < 0)
		c->peer.pidfd = (int)syscall(SYS_pidfd_open, cr.pid, 0);
	c->member = is_member(sv, fd, &cr);
	if (ep_add(sv, fd, c, EPOLLIN | EPOLLRDHUP) < 0) {
		if (c->peer.pidfd >= 0)
			close(c->peer.pidfd);
		free(c);
		close(fd);
		return;
	}
	c->next = sv->clients;
	if (sv->clients)
		sv->clients->prev = c;
	sv->clients = c;
	sv->nclients++;
}

/* Out of descriptors, a waiting connection cannot be accepted, and the listening socket
 * would wake the loop forever: stop listening until a client goes. */
static void pause_listening(struct server *sv, bool pause)
{
	if (pause == sv->paused)
		return;
	sv->paused = pause;
	if (pause) {
		epoll_ctl(sv->epfd, EPOLL_CTL_DEL, sv->lfd, NULL);
		warnx("out of file descriptors: not accepting connections until a client leaves");
	} else {
		ep_add(sv, sv->lfd, &TAG_LISTEN, EPOLLIN);
	}
}

static void on_listen(struct server *sv)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(sv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				pause_listening(sv, true);
			return;
		}
		accept_one(sv, fd);
	}
}

/* What a connection held open ends with it: its steps as abandoned, its runs once their
 * processes are gone (their processes stay traced until then). */
static void client_gone(struct server *sv, struct client *c)
{
	char err[ENGINE_ERRLEN];

	for (size_t i = 0; i < c->nsteps; i++)
		engine_step_close(sv->e, c->steps[i].run, c->steps[i].seq, "abandoned", -1, 0, NULL,
				  err, sizeof(err));
	for (size_t i = 0; i < c->nruns; i++)
		engine_run_close(sv->e, c->runs[i], NULL, NULL, err, sizeof(err));
}

static void client_free(struct server *sv, struct client *c)
{
	client_gone(sv, c);
	epoll_ctl(sv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->peer.pidfd >= 0)
		close(c->peer.pidfd);
	if (c->prev)
		c->prev->next = c->next;
	else
		sv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sv->nclients--;
	pause_listening(sv, false);
	free(c->in);
	jb_free(&c->out);
	jb_free(&c->rec);
	if (c->sec.p)
		explicit_bzero(c->sec.p, c->sec.cap);
	jb_free(&c->sec);
	free(c);
}

static void want_out(struct server *sv, struct client *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u),
				 .data.ptr = c};

	if (c->want_out != on && epoll_ctl(sv->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = on;
}

static void send_frame_now(struct client *c)
{
	while (c->outoff < c->out.len) {
		ssize_t n = send(c->fd, c->out.p + c->outoff, c->out.len - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				c->dead = true;
			break;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->out.len)
		c->out.len = c->outoff = 0;
}

static void flush_client(struct server *sv, struct client *c)
{
	send_frame_now(c);
	if (c->out.len - c->outoff > OUT_MAX)
		c->dead = true; /* it does not read its replies */
	if (c->out.len) {
		if (!c->unread_since)
			c->unread_since = mono();
	} else {
		c->unread_since = 0;
	}
	want_out(sv, c, c->out.len != 0);
}

static void reply_error(struct client *c, int64_t id, const char *code, const char *msg)
{
	pe_error(&c->out, id, code, msg);
}

/* ---- requests ------------------------------------------------------------------------ */

static bool refuse(struct server *sv, struct client *c, const struct proto_req *r, const char *what)
{
	char msg[256];

	if (sv->refusals++ < REFUSALS_PER_S) {
		engine_refused(sv->e, proto_op_names[r->op], "not root and not in the group", what,
			       &c->peer);
		warnx("refused %s from uid %u gid %u pid %d: not root and not in group %s",
		      proto_op_names[r->op], (unsigned)c->peer.uid, (unsigned)c->peer.gid,
		      (int)c->peer.pid, sv->conf->group);
	} else {
		sv->suppressed++;
	}
	snprintf(msg, sizeof(msg),
		 "uid %u is neither root nor a member of group \"%s\": refused, and recorded",
		 (unsigned)c->peer.uid, sv->conf->group);
	reply_error(c, r->id, "denied", msg);
	return false;
}

static size_t start_ok(struct client *c, const struct proto_req *r)
{
	size_t s = pe_begin(&c->out);

	pe_bool(&c->out, "ok", true);
	if (r->id >= 0)
		pe_int(&c->out, "id", r->id);
	return s;
}

static void on_hello(struct server *sv, struct client *c, const struct proto_req *r)
{
	size_t s = start_ok(c, r);

	(void)sv;
	c->hello = true;
	pe_str(&c->out, "server", "runseal " RUNSEAL_VERSION);
	pe_int(&c->out, "version", PROTO_VERSION);
	pe_int(&c->out, "uid", c->peer.uid);
	pe_int(&c->out, "gid", c->peer.gid);
	pe_int(&c->out, "pid", c->peer.pid);
	pe_bool(&c->out, "member", c->member);
	pe_end(&c->out, s);
}

static void engine_failed(struct client *c, const struct proto_req *r, int rc, const char *err)
{
	reply_error(c, r->id, engine_code(rc), err);
}

static void on_begin(struct server *sv, struct client *c, const struct proto_req *r)
{
	struct engine_kv kv[PROTO_ITEMS_MAX];
	size_t n = 0;
	char id[ENGINE_ID_LEN], err[ENGINE_ERRLEN];
	int rc;

	/* A run's own records are the client's word: only root's is taken. */
	if (r->records && c->peer.uid != 0) {
		reply_error(c, r->id, "denied", "only root may write a run's records");
		return;
	}
	if (r->records && r->detached) {
		reply_error(c, r->id, "bad_request", "a run with records is not detached");
		return;
	}
	if (!r->detached && c->nruns == CLIENT_RUNS) {
		reply_error(c, r->id, "limit", "this connection holds too many runs open");
		return;
	}
	for (size_t i = 0; r->trigger && i < r->trigger->count; i++) {
		const struct proto_item *it = &r->msg->items[r->trigger->first + i];

		kv[n++] = (struct engine_kv){it->key, it->v.s};
	}
	rc = engine_run_open(sv->e, r->runbook, r->client, kv, n,
			     (r->detached ? ENGINE_DETACHED : 0u) |
				 (r->records ? ENGINE_RECORDS : 0u),
			     &c->peer, id, err, sizeof(err));
	if (rc) {
		engine_failed(c, r, rc, err);
		return;
	}
	if (!r->detached)
		memcpy(c->runs[c->nruns++], id, ENGINE_ID_LEN);
	size_t s = start_ok(c, r);
	pe_str(&c->out, "run", id);
	pe_end(&c->out, s);
}

static void on_step(struct server *sv, struct client *c, const struct proto_req *r)
{
	const char *argv[PROTO_ITEMS_MAX];
	size_t argc = 0;
	char err[ENGINE_ERRLEN];
	uint32_t seq;
	int rc;

	if (c->nsteps == CLIENT_STEPS) {
		reply_error(c, r->id, "limit", "this connection holds too many steps open");
		return;
	}
	for (size_t i = 0; r->argv && i < r->argv->count; i++)
		argv[argc++] = r->msg->items[r->argv->first + i].v.s;
	rc = engine_step_open(sv->e, r->run, r->name, argv, argc, r->argv_truncated, &c->peer, &seq,
			      err, sizeof(err));
	if (rc) {
		engine_failed(c, r, rc, err);
		return;
	}
	snprintf(c->steps[c->nsteps].run, ENGINE_ID_LEN, "%s", r->run);
	c->steps[c->nsteps++].seq = seq;
	size_t s = start_ok(c, r);
	pe_str(&c->out, "run", r->run);
	pe_int(&c->out, "step", seq);
	pe_end(&c->out, s);
}

static void on_attach(struct server *sv, struct client *c, const struct proto_req *r)
{
	char err[ENGINE_ERRLEN];
	int rc;

	/* The connection stands for the one process that made it. */
	if (c->attached) {
		reply_error(c, r->id, "out_of_order",
			    "this connection's process is attached already");
		return;
	}
	rc = engine_attach(sv->e, r->run, (uint32_t)r->step, &c->peer, err, sizeof(err));
	if (rc == ENGINE_ETRACKED) {
		engine_refused(sv->e, "attach", "process traced already", r->run, &c->peer);
		engine_failed(c, r, rc, err);
		return;
	}
	if (rc < 0) {
		engine_failed(c, r, rc, err);
		return;
	}
	c->attached = true;
	size_t s = start_ok(c, r);
	pe_int(&c->out, "pid", c->peer.pid);
	pe_bool(&c->out, "already", rc == ENGINE_ALREADY);
	pe_end(&c->out, s);
}

static void forget_step(struct client *c, const char *run, uint32_t seq)
{
	for (size_t i = 0; i < c->nsteps; i++)
		if (c->steps[i].seq == seq && !strcmp(c->steps[i].run, run)) {
			c->steps[i] = c->steps[--c->nsteps];
			return;
		}
}

static void forget_run(struct client *c, const char *run)
{
	for (size_t i = 0; i < c->nruns; i++)
		if (!strcmp(c->runs[i], run)) {
			memcpy(c->runs[i], c->runs[--c->nruns], ENGINE_ID_LEN);
			break;
		}
	for (size_t i = 0; i < c->nsteps;)
		if (!strcmp(c->steps[i].run, run))
			c->steps[i] = c->steps[--c->nsteps];
		else
			i++;
}

static bool status_ok(const char *s)
{
	static const char *const ok[] = {"ok",		"failed",    "timeout",
					 "interrupted", "abandoned", "skipped"};

	for (size_t i = 0; s && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(s, ok[i]))
			return true;
	return !s;
}

static void on_step_end(struct server *sv, struct client *c, const struct proto_req *r)
{
	char err[ENGINE_ERRLEN];
	int rc = engine_step_close(sv->e, r->run, (uint32_t)r->step, r->status, (int)r->exit_code,
				   (int)r->signal, &c->peer, err, sizeof(err));

	if (rc) {
		engine_failed(c, r, rc, err);
		return;
	}
	forget_step(c, r->run, (uint32_t)r->step);
	pe_end(&c->out, start_ok(c, r));
}

static void on_end(struct server *sv, struct client *c, const struct proto_req *r)
{
	char err[ENGINE_ERRLEN];
	int rc = engine_run_close(sv->e, r->run, r->status, &c->peer, err, sizeof(err));

	if (rc) {
		engine_failed(c, r, rc, err);
		return;
	}
	forget_run(c, r->run);
	pe_end(&c->out, start_ok(c, r));
}

/* The connection's bookkeeping follows the records: a step opened by step_start ends as
 * abandoned if the connection goes first, and the run with it. */
static void follow_record(struct client *c, const char *run, const struct engine_written *w)
{
	if (w->step_opened && c->nsteps < CLIENT_STEPS) {
		snprintf(c->steps[c->nsteps].run, ENGINE_ID_LEN, "%s", run);
		c->steps[c->nsteps++].seq = w->step;
	} else if (w->step_closed) {
		forget_step(c, run, w->step);
	} else if (w->run_closed) {
		forget_run(c, run);
	}
}

static void on_record(struct server *sv, struct client *c, const struct proto_req *r)
{
	struct engine_written w;
	char err[ENGINE_ERRLEN];
	int rc;

	if (c->peer.uid != 0) {
		reply_error(c, r->id, "denied", "only root may write a run's records");
		return;
	}
	if (c->rec.len + r->ndata > ENGINE_RECORD_MAX) {
		c->rec.len = 0;
		reply_error(c, r->id, "limit", "a record may be at most 1 MiB");
		return;
	}
	jb_raw(&c->rec, r->data, r->ndata);
	if (r->more) {
		pe_end(&c->out, start_ok(c, r));
		return;
	}
	jb_putc(&c->rec, '\0');
	rc = engine_record(sv->e, r->run, c->rec.p, c->rec.len - 1, &c->peer, &w, err, sizeof(err));
	if (rc == 0)
		follow_record(c, r->run, &w);
	c->rec.len = 0;
	if (rc) {
		engine_failed(c, r, rc, err);
		return;
	}
	pe_end(&c->out, start_ok(c, r));
}

/* Kept in memory while the run is open, to redact its processes' events; never written. */
static void on_secret(struct server *sv, struct client *c, const struct proto_req *r)
{
	char err[ENGINE_ERRLEN];
	int rc;

	if (c->peer.uid != 0) {
		reply_error(c, r->id, "denied", "only root may give a run's secrets");
		return;
	}
	if (c->sec.len + r->ndata > ENGINE_SECRET_MAX) {
		explicit_bzero(c->sec.p, c->sec.len);
		c->sec.len = 0;
		reply_error(c, r->id, "limit", "a secret may be at most 64 KiB");
		return;
	}
	jb_raw(&c->sec, r->data, r->ndata);
	if (r->more) {
		pe_end(&c->out, start_ok(c, r));
		return;
	}
	jb_putc(&c->sec, '\0');
	rc = engine_secret(sv->e, r->run, r->name, c->sec.p, &c->peer, err, sizeof(err));
	explicit_bzero(c->sec.p, c->sec.len);
	c->sec.len = 0;
	if (rc) {
		engine_failed(c, r, rc, err);
		return;
	}
	pe_end(&c->out, start_ok(c, r));
}

static void on_stats(struct server *sv, struct client *c, const struct proto_req *r)
{
	struct engine_run_stats st;
	char err[ENGINE_ERRLEN], keys[256][16], vals[256][16];
	int rc = engine_run_stats(sv->e, r->run, &c->peer, &st, err, sizeof(err));
	size_t s;

	if (rc) {
		engine_failed(c, r, rc, err);
		return;
	}
	s = start_ok(c, r);
	pe_int(&c->out, "events", (int64_t)st.events);
	pe_int(&c->out, "lost", (int64_t)st.lost);
	pe_int(&c->out, "tamper_attempts", (int64_t)st.tamper_attempts);
	/* pid: step number, of the run's processes still alive and traced */
	pe_obj(&c->out, "tracked");
	for (size_t i = 0; i < st.ntracked; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%d", (int)st.pids[i]);
		snprintf(vals[i], sizeof(vals[i]), "%u", st.steps[i]);
		pe_str(&c->out, keys[i], vals[i]);
	}
	pe_obj_end(&c->out);
	pe_end(&c->out, s);
}

static void on_status(struct server *sv, struct client *c, const struct proto_req *r)
{
	struct engine_status st;
	size_t s;

	engine_status(sv->e, &st);
	s = start_ok(c, r);
	pe_str(&c->out, "server", "runseal " RUNSEAL_VERSION);
	pe_int(&c->out, "pid", getpid());
	pe_int(&c->out, "uptime_s", (int64_t)st.uptime_s);
	pe_int(&c->out, "runs_open", (int64_t)st.runs_open);
	pe_int(&c->out, "runs_total", (int64_t)st.runs_total);
	pe_int(&c->out, "clients", sv->nclients);
	pe_int(&c->out, "events", (int64_t)st.events);
	pe_int(&c->out, "events_per_s", (int64_t)st.events_per_s);
	pe_int(&c->out, "lost", (int64_t)st.lost);
	if (st.last_seal_ns) {
		char t[TIME_LEN];

		fmt_time(st.last_seal_ns, t);
		pe_str(&c->out, "last_seal", t);
	} else {
		pe_str(&c->out, "last_seal", NULL);
	}
	pe_int(&c->out, "segment", (int64_t)st.segment);
	pe_int(&c->out, "seq", (int64_t)st.seq);
	pe_str(&c->out, "log_dir", sv->conf->log_dir);
	pe_int(&c->out, "log_free_bytes", (int64_t)st.log_free_bytes);
	pe_int(&c->out, "log_size_bytes", (int64_t)st.log_size_bytes);
	pe_int(&c->out, "replicas", (int64_t)st.nreplicas);
	pe_int(&c->out, "replicas_in_sync", (int64_t)st.replicas_in_sync);
	char lines[CONF_REPLICAS_MAX][300];
	const char *state[CONF_REPLICAS_MAX];
	for (size_t i = 0; i < sv->conf->nreplicas; i++) {
		snprintf(lines[i], sizeof(lines[i]), "%s: %s", sv->conf->replicas[i],
			 engine_replica_state(sv->e, i));
		state[i] = lines[i];
	}
	pe_strs(&c->out, "replica_state", state, sv->conf->nreplicas);
	pe_bool(&c->out, "log_failed", st.log_failed);
	pe_end(&c->out, s);
}

static void on_read(struct server *sv, struct client *c, const struct proto_req *r)
{
	const char *runs[PROTO_ITEMS_MAX];
	size_t n = 0;

	for (size_t i = 0; r->runs && i < r->runs->count; i++)
		runs[n++] = r->msg->items[r->runs->first + i].v.s;
	if (engine_read(sv->e, r->command, r->log, runs, n, &c->peer) < 0) {
		reply_error(c, r->id, "internal", "the log cannot be written");
		return;
	}
	pe_end(&c->out, start_ok(c, r));
}

static void dispatch(struct server *sv, struct client *c, const struct proto_req *r)
{
	if (r->op != OP_HELLO && !c->hello) {
		reply_error(c, r->id, "out_of_order", "send hello first");
		return;
	}
	if (r->op != OP_HELLO && !c->member) {
		refuse(sv, c, r, r->runbook ? r->runbook : r->run ? r->run : r->log);
		return;
	}
	if (r->status && !status_ok(r->status)) {
		reply_error(
		    c, r->id, "bad_request",
		    "status must be ok, failed, timeout, interrupted, abandoned or skipped");
		return;
	}
	switch (r->op) {
	case OP_HELLO:
		on_hello(sv, c, r);
		break;
	case OP_BEGIN:
		on_begin(sv, c, r);
		break;
	case OP_STEP:
		on_step(sv, c, r);
		break;
	case OP_ATTACH:
		on_attach(sv, c, r);
		break;
	case OP_STEP_END:
		on_step_end(sv, c, r);
		break;
	case OP_END:
		on_end(sv, c, r);
		break;
	case OP_STATUS:
		on_status(sv, c, r);
		break;
	case OP_RECORD:
		on_record(sv, c, r);
		break;
	case OP_STATS:
		on_stats(sv, c, r);
		break;
	case OP_READ:
		on_read(sv, c, r);
		break;
	case OP_SECRET:
		on_secret(sv, c, r);
		break;
	}
}

static void handle_frame(struct server *sv, struct client *c, const unsigned char *p, size_t n)
{
	struct proto_req r;
	const char *code;
	char err[PROTO_ERRLEN];

	if (proto_parse((const char *)p, n, &sv->msg, err, sizeof(err)) < 0) {
		reply_error(c, -1, "bad_json", err);
		return;
	}
	if (proto_request(&sv->msg, &r, &code, err, sizeof(err)) < 0) {
		reply_error(c, r.id, code, err);
		return;
	}
	dispatch(sv, c, &r);
}

static void on_readable(struct server *sv, struct client *c)
{
	size_t cap = PROTO_FRAME_MAX + 4, off = 0;
	ssize_t n;
	long f;

	if (!c->in)
		c->in = xmalloc(cap);
	n = recv(c->fd, c->in + c->inlen, cap - c->inlen, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		c->dead = true;
		return;
	}
	if (n < 0)
		return;
	c->inlen += (size_t)n;
	while ((f = proto_frame(c->in + off, c->inlen - off)) > 0) {
		handle_frame(sv, c, c->in + off + 4, (size_t)f - 4);
		off += (size_t)f;
	}
	if (f < 0) {
		/* A bad length leaves nothing to resynchronise on. */
		reply_error(c, -1, "bad_frame", "frame length must be 1 to 16384");
		send_frame_now(c);
		c->dead = true;
		return;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	c->partial_since = c->inlen ? (c->partial_since ? c->partial_since : mono()) : 0;
	flush_client(sv, c);
}

/* Half a message, or replies left unread, for longer than the timeout: dropped. */
static void expire(struct server *sv)
{
	uint64_t limit = (uint64_t)sv->conf->client_timeout_s * 1000000000ull, now = mono();

	for (struct client *c = sv->clients, *next; c; c = next) {
		next = c->next;
		if (c->partial_since && now - c->partial_since > limit) {
			reply_error(c, -1, "timeout", "incomplete message: connection closed");
			send_frame_now(c);
			c->dead = true;
		}
		if (c->unread_since && now - c->unread_since > limit)
			c->dead = true;
		if (c->dead)
			client_free(sv, c);
	}
}

/* ---- signals and the loop ---------------------------------------------------------------- */

static void reload(struct server *sv)
{
	struct daemon_conf c;
	char err[512], detail[600];

	conf_defaults(&c);
	if (sv->conf_file && conf_load(&c, sv->conf_file, true, err, sizeof(err)) < 0) {
		warnx("reload: %s (settings unchanged)", err);
		engine_note(sv->e, "reload_failed", err);
		return;
	}
	conf_merge(&c, sv->flags);
	if (strcmp(c.log_dir, sv->conf->log_dir) || strcmp(c.key_dir, sv->conf->key_dir) ||
	    strcmp(c.socket, sv->conf->socket) || c.nreplicas != sv->conf->nreplicas ||
	    memcmp(c.replicas, sv->conf->replicas, sizeof(c.replicas)) ||
	    c.checkpoint_s != sv->conf->checkpoint_s || c.ringbuf_bytes != sv->conf->ringbuf_bytes)
		warnx("reload: socket, log_dir, key_dir, replica, checkpoint and ringbuf_size "
		      "changes take effect at the next start");
	/* What the engine was opened with stays, so that status tells the truth. */
	memcpy(c.replicas, sv->conf->replicas, sizeof(c.replicas));
	c.nreplicas = sv->conf->nreplicas;
	c.checkpoint_s = sv->conf->checkpoint_s;
	c.ringbuf_bytes = sv->conf->ringbuf_bytes;
	snprintf(c.socket, sizeof(c.socket), "%s", sv->conf->socket);
	snprintf(c.log_dir, sizeof(c.log_dir), "%s", sv->conf->log_dir);
	snprintf(c.key_dir, sizeof(c.key_dir), "%s", sv->conf->key_dir);
	struct daemon_conf old = *sv->conf;
	*sv->conf = c;
	if (resolve_group(sv) < 0 || set_socket_mode(sv) < 0) {
		warnx("reload: %s (settings unchanged)", sv->err);
		*sv->conf = old;
		resolve_group(sv);
		set_socket_mode(sv);
		sv->err[0] = '\0';
		return;
	}
	snprintf(detail, sizeof(detail),
		 "group=%s socket_mode=%04o max_clients=%u client_timeout=%u", c.group,
		 c.socket_mode, c.max_clients, c.client_timeout_s);
	warnx("reloaded: %s", detail);
	engine_note(sv->e, "reload", detail);
}

static void on_signal(struct server *sv)
{
	struct signalfd_siginfo si;

	if (read(sv->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP)
		reload(sv);
	else
		sv->stop = true;
}

static void on_tick(struct server *sv)
{
	uint64_t n;

	if (read(sv->tickfd, &n, sizeof(n)) < 0)
		return;
	if (sv->suppressed) {
		char msg[96];

		snprintf(msg, sizeof(msg),
			 "%u more refusals in one second, not recorded one by one", sv->suppressed);
		engine_refused(sv->e, "*", msg, NULL, NULL);
	}
	sv->refusals = sv->suppressed = 0;
	if (engine_tick(sv->e) < 0)
		warnx("cannot seal the log in %s", sv->conf->log_dir);
	expire(sv);
}

/* Clients are limited to what the descriptor limit leaves after those in use now and a
 * reserve for the log, so that a full house of clients never starves the sealer. */
static void fd_room(struct server *sv)
{
	struct rlimit rl;
	long used = 0, room;
	DIR *d = opendir("/proc/self/fd");

	while (d && readdir(d))
		used++;
	if (d)
		closedir(d);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		rl.rlim_cur = 1 << 20;
	room = ((long)rl.rlim_cur - used - 16) / 2;
	sv->fd_cap = room < 1 ? 1 : (unsigned)room;
	if (sv->fd_cap < sv->conf->max_clients)
		warnx("at most %u clients at once: the descriptor limit (%lu) leaves no room for "
		      "%u",
		      sv->fd_cap, (unsigned long)rl.rlim_cur, sv->conf->max_clients);
}

static int setup(struct server *sv)
{
	struct itimerspec second = {.it_interval = {1, 0}, .it_value = {1, 0}};
	struct rlimit rl;
	sigset_t mask;

	/* A thousand clients need two thousand descriptors (socket and pidfd). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fd_room(sv);
	if (resolve_group(sv) < 0 || listen_socket(sv) < 0)
		return -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sv->sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	sv->tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	sv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sv->sigfd < 0 || sv->tickfd < 0 || sv->epfd < 0 ||
	    timerfd_settime(sv->tickfd, 0, &second, NULL) < 0 ||
	    ep_add(sv, sv->lfd, &TAG_LISTEN, EPOLLIN) < 0 ||
	    ep_add(sv, sv->sigfd, &TAG_SIG, EPOLLIN) < 0 ||
	    ep_add(sv, sv->tickfd, &TAG_TICK, EPOLLIN) < 0 ||
	    ep_add(sv, engine_fd(sv->e), &TAG_ENGINE, EPOLLIN) < 0) {
		snprintf(sv->err, sv->errlen, "event loop set-up: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void on_client(struct server *sv, struct client *c, uint32_t events)
{
	if (events & EPOLLIN)
		on_readable(sv, c);
	if (events & EPOLLOUT)
		flush_client(sv, c);
	/* A peer that shut its side but still reads gets its replies first. */
	if ((events & (EPOLLHUP | EPOLLERR)) || ((events & EPOLLRDHUP) && !(events & EPOLLIN)))
		c->dead = true;
	if (c->dead)
		client_free(sv, c);
}

static void loop(struct server *sv)
{
	struct epoll_event evs[64];
	bool failed = false;

	while (!sv->stop) {
		int n = epoll_wait(sv->epfd, evs, 64, engine_runs_open(sv->e) ? POLL_MS : 250);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			void *t = evs[i].data.ptr;

			if (t == &TAG_LISTEN)
				on_listen(sv);
			else if (t == &TAG_SIG)
				on_signal(sv);
			else if (t == &TAG_TICK)
				on_tick(sv);
			else if (t != &TAG_ENGINE)
				on_client(sv, t, evs[i].events);
		}
		/* The kernel wakes us only for a full batch; a quiet ring is read here. */
		if (engine_poll(sv->e) < 0 && !failed) {
			failed = true;
			warnx("cannot write the log in %s", sv->conf->log_dir);
		}
	}
}

/* Runs left open by the daemon before this one: their processes traced again. */
static void resume(struct engine *e)
{
	size_t n = 0;

	if (engine_resume(e, &n) < 0)
		warnx("runs open at the last stop: the state could not be read or recorded");
	if (n)
		warnx("%zu runs open at the last stop resumed (a gap record in each)", n);
}

int server_run(struct engine *e, struct daemon_conf *conf, const char *conf_file,
	       const struct daemon_conf *flags, char *err, size_t errlen)
{
	struct server *sv = xcalloc(1, sizeof(*sv));
	int rc = 0;

	*sv = (struct server){.e = e,
			      .conf = conf,
			      .flags = flags,
			      .conf_file = conf_file,
			      .epfd = -1,
			      .lfd = -1,
			      .sigfd = -1,
			      .tickfd = -1,
			      .err = err,
			      .errlen = errlen};
	err[0] = '\0';
	if (setup(sv) < 0) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", conf->socket, strerror(errno));
		rc = -1;
	} else {
		char detail[600];

		snprintf(detail, sizeof(detail), "socket=%s group=%s", conf->socket, conf->group);
		engine_note(e, "start", detail);
		resume(e);
		warnx("listening on %s (group %s)", conf->socket, conf->group);
		loop(sv);
	}
	/* Runs left open stay open in the log: the stop record names them. */
	while (sv->clients) {
		sv->clients->nruns = sv->clients->nsteps = 0;
		client_free(sv, sv->clients);
	}
	if (rc == 0 && engine_shutdown(e) < 0) {
		snprintf(err, errlen, "cannot seal the log in %s at shutdown", conf->log_dir);
		rc = -1;
	}
	if (sv->lfd >= 0) {
		close(sv->lfd);
		unlink(conf->socket);
	}
	if (sv->epfd >= 0)
		close(sv->epfd);
	if (sv->sigfd >= 0)
		close(sv->sigfd);
	if (sv->tickfd >= 0)
		close(sv->tickfd);
	free(sv);
	return rc;
}
