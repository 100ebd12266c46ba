#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "trigger.h"
#include "util.h"

#define CMDLINE_MAX 4096

bool trigger_arg_ok(const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg)
		return false;
	for (const char *c = arg; c < eq; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
			return false;
	return true;
}

static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len);
	close(fd);
	return n;
}

/* /proc/self/loginuid and sessionid: 4294967295 means unset (no login session). */
static void audit_id(struct stream *s, const char *key, const char *path)
{
	char buf[32];
	ssize_t n = read_small(path, buf, sizeof(buf) - 1);
	char *end;
	unsigned long long v;

	if (n <= 0) {
		rec_null(s, key);
		return;
	}
	buf[n] = '\0';
	v = strtoull(buf, &end, 10);
	if (end == buf || v == 4294967295ull)
		rec_null(s, key);
	else
		rec_int(s, key, (int64_t)v);
}

static void env_str(struct stream *s, const char *key, const char *var)
{
	const char *v = getenv(var);

	if (v)
		rec_str(s, key, v);
	else
		rec_null(s, key);
}

/* The controlling terminal, from tty_nr in /proc/self/stat, named when one of the standard
 * descriptors is it. */
static void tty(struct stream *s)
{
	char buf[1024];
	ssize_t n = read_small("/proc/self/stat", buf, sizeof(buf) - 1);
	int nr = 0;

	if (n > 0) {
		const char *p;

		buf[n] = '\0';
		p = strrchr(buf, ')');
		/* After "pid (comm)": state ppid pgrp session tty_nr */
		if (!p || sscanf(p + 1, " %*c %*d %*d %*d %d", &nr) != 1)
			nr = 0;
	}
	if (!nr) {
		rec_null(s, "tty");
		return;
	}
	for (int fd = 0; fd < 3; fd++) {
		char *name = ttyname(fd);

		if (name) {
			rec_str(s, "tty", name);
			return;
		}
	}
	snprintf(buf, sizeof(buf), "dev %u:%u", major((dev_t)nr), minor((dev_t)nr));
	rec_str(s, "tty", buf);
}

static int64_t ppid_of(int64_t pid)
{
	char path[64], buf[1024], *p;
	int ppid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	n = read_small(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

static void one_process(struct stream *s, int64_t pid)
{
	char path[64], exe[4096], cmd[CMDLINE_MAX];
	ssize_t n;

	rec_open(s, NULL, '{');
	rec_int(s, "pid", pid);
	snprintf(path, sizeof(path), "/proc/%lld/exe", (long long)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n >= 0) {
		exe[n] = '\0';
		rec_str(s, "exe", exe);
	} else {
		rec_null(s, "exe"); /* a kernel thread, or another user's process */
	}
	snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
	n = read_small(path, cmd, sizeof(cmd));
	rec_open(s, "argv", '[');
	for (ssize_t i = 0; n > 0 && i < n;) {
		size_t l = strnlen(cmd + i, (size_t)(n - i));

		rec_item(s, cmd + i, l, i + (ssize_t)l >= n && n == (ssize_t)sizeof(cmd));
		i += (ssize_t)l + 1;
	}
	rec_close(s, ']');
	rec_close(s, '}');
}

/* runseal's parent first, then its parent, up to PID 1 (or where /proc stops). */
static void ancestry(struct stream *s)
{
	int64_t pid = getppid();

	rec_open(s, "ancestry", '[');
	for (int d = 0; pid > 0 && d < TRIGGER_DEPTH_MAX; d++) {
		one_process(s, pid);
		if (pid == 1)
			break;
		pid = ppid_of(pid);
	}
	rec_close(s, ']');
}

void rec_trigger(struct stream *s, const char *const *given, size_t ngiven)
{
	rec_open(s, "trigger", '{');
	rec_open(s, "given", '{');
	for (size_t i = 0; i < ngiven; i++) {
		const char *eq = strchr(given[i], '=');
		char *name = xasprintf("%.*s", (int)(eq - given[i]), given[i]);

		rec_str(s, name, eq + 1);
		free(name);
	}
	rec_close(s, '}');
	audit_id(s, "loginuid", "/proc/self/loginuid");
	audit_id(s, "sessionid", "/proc/self/sessionid");
	env_str(s, "sudo_user", "SUDO_USER");
	env_str(s, "sudo_uid", "SUDO_UID");
	tty(s);
	env_str(s, "ssh_connection", "SSH_CONNECTION");
	ancestry(s);
	rec_close(s, '}');
}
