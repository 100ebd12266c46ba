#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "config.h"

#define REPLY_TIMEOUT_MS 30000

const char *rsc_socket(const char *path)
{
	if (path)
		return path;
	if (getenv("RUNSEAL_SOCKET") && *getenv("RUNSEAL_SOCKET"))
		return getenv("RUNSEAL_SOCKET");
	return CONF_SOCKET_DEFAULT;
}

static int fail(struct rs_client *c, const char *code, const char *fmt, const char *arg)
{
	snprintf(c->code, sizeof(c->code), "%s", code);
	snprintf(c->err, sizeof(c->err), fmt, arg);
	return -1;
}

void rsc_begin(struct rs_client *c, const char *op)
{
	c->req.len = 0;
	c->start = pe_begin(&c->req);
	pe_str(&c->req, "op", op);
}

static int send_all(struct rs_client *c)
{
	for (size_t off = 0; off < c->req.len;) {
		ssize_t n = send(c->fd, c->req.p + off, c->req.len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(c, "io", "cannot send to the daemon: %s", strerror(errno));
		off += (size_t)n;
	}
	return 0;
}

static int recv_n(struct rs_client *c, unsigned char *p, size_t n)
{
	for (size_t off = 0; off < n;) {
		struct pollfd pf = {c->fd, POLLIN, 0};
		ssize_t r;

		if (poll(&pf, 1, REPLY_TIMEOUT_MS) == 0)
			return fail(c, "io", "%s", "the daemon did not answer in 30 s");
		r = recv(c->fd, p + off, n - off, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return fail(c, "io", "%s", "the daemon closed the connection");
		off += (size_t)r;
	}
	return 0;
}

int rsc_call(struct rs_client *c)
{
	unsigned char hdr[4], *body;
	const struct proto_val *ok, *v;
	char perr[PROTO_ERRLEN];
	long f;
	int rc;

	if (pe_end(&c->req, c->start) < 0)
		return fail(c, "too_large", "%s", "request larger than a frame (16 KiB)");
	if (send_all(c) < 0 || recv_n(c, hdr, 4) < 0)
		return -1;
	f = proto_frame(hdr, 4 + PROTO_FRAME_MAX);
	if (f <= 0)
		return fail(c, "io", "%s", "the daemon sent a bad frame");
	body = malloc((size_t)f - 4);
	if (!body)
		return fail(c, "io", "%s", "out of memory");
	rc = recv_n(c, body, (size_t)f - 4);
	if (rc == 0 && proto_parse((char *)body, (size_t)f - 4, &c->reply, perr, sizeof(perr)) < 0)
		rc = fail(c, "io", "the daemon's reply: %s", perr);
	free(body);
	if (rc < 0)
		return -1;
	ok = proto_get(&c->reply, "ok");
	if (ok && ok->t == PV_BOOL && ok->b)
		return 0;
	v = proto_get(&c->reply, "error");
	snprintf(c->code, sizeof(c->code), "%s", v && v->t == PV_STR ? v->s : "error");
	v = proto_get(&c->reply, "message");
	snprintf(c->err, sizeof(c->err), "%s", v && v->t == PV_STR ? v->s : "refused");
	return -1;
}

int rsc_open(struct rs_client *c, const char *path, const char *client)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	memset(c, 0, sizeof(*c));
	path = rsc_socket(path);
	if (strlen(path) >= sizeof(a.sun_path))
		return fail(c, "io", "socket path %s is too long", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		char m[400];

		snprintf(m, sizeof(m), "no runseal daemon at %s (%s): start `runseal daemon`", path,
			 strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return fail(c, "no_daemon", "%s", m);
	}
	rsc_begin(c, "hello");
	pe_str(&c->req, "client", client);
	return rsc_call(c);
}

const char *rsc_str(const struct rs_client *c, const char *key)
{
	const struct proto_val *v = proto_get(&c->reply, key);

	return v && v->t == PV_STR ? v->s : NULL;
}

long long rsc_int(const struct rs_client *c, const char *key, long long dflt)
{
	const struct proto_val *v = proto_get(&c->reply, key);

	return v && v->t == PV_INT ? (long long)v->i : dflt;
}

bool rsc_bool(const struct rs_client *c, const char *key)
{
	const struct proto_val *v = proto_get(&c->reply, key);

	return v && v->t == PV_BOOL && v->b;
}

void rsc_close(struct rs_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	jb_free(&c->req);
}
