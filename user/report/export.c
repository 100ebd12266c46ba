#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/export.h"
#include "report/model.h"
#include "util.h"

#define OCSF_VERSION "1.1.0"

static void key(struct jbuf *b, const char *k)
{
	if (b->len && b->p[b->len - 1] != '{' && b->p[b->len - 1] != '[')
		jb_putc(b, ',');
	jb_str(b, k, strlen(k));
	jb_putc(b, ':');
}

static void kstr(struct jbuf *b, const char *k, const char *v)
{
	key(b, k);
	jb_str(b, v ? v : "", v ? strlen(v) : 0);
}

static void kint(struct jbuf *b, const char *k, int64_t v)
{
	key(b, k);
	jb_i64(b, v);
}

/* A member of e copied as it is (already valid JSON), under another name. */
static void kcopy(struct jbuf *b, const char *k, const struct lr_ent *e, const char *from)
{
	int t = lr_get(e, from);

	if (t < 0)
		return;
	key(b, k);
	if (e->tok[t].type == J_STR) {
		jb_putc(b, '"');
		jb_raw(b, e->tok[t].s, e->tok[t].n);
		jb_putc(b, '"');
	} else {
		jb_raw(b, e->tok[t].s, e->tok[t].n);
	}
}

static void kopen(struct jbuf *b, const char *k)
{
	key(b, k);
	jb_putc(b, '{');
}

static void kclose(struct jbuf *b)
{
	jb_putc(b, '}');
}

static const char *basename_of(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;

	return s ? s + 1 : p;
}

static void ocsf_process(struct jbuf *b, const struct lr_ent *e, bool with_file)
{
	char *path = lr_str(e, "path", NULL);

	kint(b, "pid", e->pid);
	kcopy(b, "name", e, "comm");
	if (with_file && path) {
		char *argv = m_argv(e);

		kstr(b, "cmd_line", argv);
		free(argv);
		kopen(b, "file");
		kstr(b, "path", path);
		kstr(b, "name", basename_of(path));
		kint(b, "type_id", 1);
		if (lr_get(e, "sha256") >= 0 && e->tok[lr_get(e, "sha256")].type == J_STR) {
			/* OCSF Fingerprint: algorithm_id 3 is SHA-256 */
			key(b, "hashes");
			jb_raw(b, "[{", 2);
			kint(b, "algorithm_id", 3);
			kstr(b, "algorithm", "SHA-256");
			kcopy(b, "value", e, "sha256");
			jb_raw(b, "}]", 2);
		}
		kclose(b);
	}
	kopen(b, "user");
	kcopy(b, "uid", e, "uid");
	kclose(b);
	kopen(b, "parent_process");
	kint(b, "pid", e->ppid);
	kclose(b);
	free(path);
}

static void ocsf_common(struct jbuf *b, const struct lr_ent *e, int cls, int cat, int act,
			const struct export_ctx *c)
{
	kint(b, "class_uid", cls);
	kint(b, "category_uid", cat);
	kint(b, "activity_id", act);
	kint(b, "type_uid", (int64_t)cls * 100 + act);
	kint(b, "severity_id", 1);
	kint(b, "time", (int64_t)(e->time_ns / 1000000));
	kint(b, "status_id", m_failed(e) ? 2 : 1);
	kstr(b, "status", m_failed(e) ? "Failure" : "Success");
	kopen(b, "metadata");
	kstr(b, "version", OCSF_VERSION);
	kopen(b, "product");
	kstr(b, "name", "runseal");
	kstr(b, "vendor_name", "runseal");
	kstr(b, "version", RUNSEAL_VERSION);
	kclose(b);
	{
		char uid[96];

		snprintf(uid, sizeof(uid), "%s-%llu", e->run, (unsigned long long)e->seq);
		kstr(b, "uid", uid);
	}
	kclose(b);
	kopen(b, "device");
	kstr(b, "hostname", c->host);
	kint(b, "type_id", 0);
	kclose(b);
	kopen(b, "actor");
	kopen(b, "process");
	ocsf_process(b, e, false);
	kclose(b);
	kclose(b);
}

static void unmapped(struct jbuf *b, const struct lr_ent *e)
{
	char h[65];

	hex(e->hash, 32, h);
	kopen(b, "unmapped");
	kstr(b, "run", e->run);
	kstr(b, "step", e->step);
	kint(b, "seq", (int64_t)e->seq);
	kstr(b, "hash", h);
	kcopy(b, "error", e, "error");
	kclose(b);
}

/* File System Activity's activity_id for a file change (OCSF 1.1). */
static int fs_activity(enum rec_kind k)
{
	switch (k) {
	case REC_RENAME:
		return 5;
	case REC_UNLINK:
		return 4;
	case REC_CHMOD:
	case REC_CHOWN:
		return 7; /* Set Security */
	case REC_LINK:
	case REC_SYMLINK:
	case REC_MKDIR:
	case REC_MKNOD:
		return 1;
	case REC_MOUNT:
		return 12;
	case REC_UMOUNT:
		return 13;
	default:
		return 3; /* Update: truncate */
	}
}

static void ocsf_file(struct jbuf *b, const struct lr_ent *e, const char *k, const char *from)
{
	char *p = lr_str(e, from, NULL);

	kopen(b, k);
	kstr(b, "path", p);
	kstr(b, "name", basename_of(p));
	kint(b, "type_id", 1);
	kclose(b);
	free(p);
}

static bool ocsf(struct jbuf *b, const struct lr_ent *e, const struct export_ctx *c)
{
	unsigned f;

	jb_putc(b, '{');
	switch (e->kind) {
	case REC_EXEC:
	case REC_FORK:
	case REC_EXIT:
		ocsf_common(b, e, 1007, 1, e->kind == REC_EXIT ? 2 : 1, c);
		kopen(b, "process");
		if (e->kind == REC_FORK) {
			int64_t child = -1;

			lr_int(e, "child_pid", &child);
			kint(b, "pid", child);
			kopen(b, "parent_process");
			kint(b, "pid", e->pid);
			kclose(b);
		} else {
			ocsf_process(b, e, e->kind == REC_EXEC);
		}
		kclose(b);
		kcopy(b, "exit_code", e, "exit_code");
		break;
	case REC_OPEN:
		f = m_open_flags(e);
		/* 1 Create, 2 Read, 3 Update */
		ocsf_common(b, e, 1001, 1,
			    (f & F_CREATE)		? 1
			    : (f & (F_WRITE | F_TRUNC)) ? 3
							: 2,
			    c);
		ocsf_file(b, e, "file", "path");
		break;
	case REC_RENAME:
	case REC_UNLINK:
	case REC_CHMOD:
	case REC_CHOWN:
	case REC_LINK:
	case REC_SYMLINK:
	case REC_MKDIR:
	case REC_MKNOD:
	case REC_TRUNCATE:
	case REC_MOUNT:
	case REC_UMOUNT:
		ocsf_common(b, e, 1001, 1, fs_activity(e->kind), c);
		/* A rename or link: the file it was, and the name it has now. */
		if (lr_get(e, "old_path") >= 0) {
			ocsf_file(b, e, "file", "old_path");
			ocsf_file(b, e, "file_result", "path");
		} else {
			ocsf_file(b, e, "file", "path");
		}
		break;
	case REC_CRED:
		ocsf_common(b, e, 1007, 1, 5, c); /* Set User ID */
		kopen(b, "process");
		ocsf_process(b, e, false);
		kclose(b);
		break;
	case REC_LISTEN:
	case REC_ACCEPT:
		ocsf_common(b, e, 4001, 4, 1, c); /* Open */
		kopen(b, "dst_endpoint");
		kcopy(b, "ip", e, e->kind == REC_ACCEPT ? "local_addr" : "addr");
		kcopy(b, "port", e, e->kind == REC_ACCEPT ? "local_port" : "port");
		kclose(b);
		kopen(b, "src_endpoint");
		if (e->kind == REC_ACCEPT) {
			kcopy(b, "ip", e, "addr");
			kcopy(b, "port", e, "port");
		} else {
			kstr(b, "hostname", c->host);
		}
		kclose(b);
		kopen(b, "connection_info");
		kint(b, "direction_id", e->kind == REC_ACCEPT ? 1 : 0);
		kclose(b);
		break;
	case REC_CONNECT:
		ocsf_common(b, e, 4001, 4, m_failed(e) ? 4 : 1, c);
		kopen(b, "dst_endpoint");
		kcopy(b, "ip", e, "addr");
		kcopy(b, "port", e, "port");
		kcopy(b, "path", e, "path");
		kclose(b);
		kopen(b, "src_endpoint");
		kstr(b, "hostname", c->host);
		kclose(b);
		kopen(b, "connection_info");
		kcopy(b, "protocol_name", e, "family");
		kint(b, "direction_id", 2);
		kclose(b);
		break;
	default:
		b->len--;
		return false;
	}
	unmapped(b, e);
	jb_raw(b, "}\n", 2);
	return true;
}

static bool ecs(struct jbuf *b, const struct lr_ent *e, const struct export_ctx *c)
{
	static const char *const cat[REC_KIND_MAX] = {
	    [REC_EXEC] = "process",    [REC_FORK] = "process",	     [REC_EXIT] = "process",
	    [REC_OPEN] = "file",       [REC_CONNECT] = "network",    [REC_RUN_START] = "process",
	    [REC_RUN_END] = "process", [REC_STEP_START] = "process", [REC_STEP_END] = "process",
	    [REC_LOSS] = "host",       [REC_RENAME] = "file",	     [REC_UNLINK] = "file",
	    [REC_CHMOD] = "file",      [REC_CHOWN] = "file",	     [REC_LINK] = "file",
	    [REC_SYMLINK] = "file",    [REC_MKDIR] = "file",	     [REC_MKNOD] = "file",
	    [REC_TRUNCATE] = "file",   [REC_MOUNT] = "file",	     [REC_UMOUNT] = "file",
	    [REC_CRED] = "iam",	       [REC_LISTEN] = "network",     [REC_ACCEPT] = "network"};
	static const char *const type[REC_KIND_MAX] = {
	    [REC_EXEC] = "start",	[REC_FORK] = "start",	      [REC_EXIT] = "end",
	    [REC_OPEN] = "access",	[REC_CONNECT] = "connection", [REC_RUN_START] = "start",
	    [REC_RUN_END] = "end",	[REC_STEP_START] = "start",   [REC_STEP_END] = "end",
	    [REC_LOSS] = "info",	[REC_RENAME] = "change",      [REC_UNLINK] = "deletion",
	    [REC_CHMOD] = "change",	[REC_CHOWN] = "change",	      [REC_LINK] = "creation",
	    [REC_SYMLINK] = "creation", [REC_MKDIR] = "creation",     [REC_MKNOD] = "creation",
	    [REC_TRUNCATE] = "change",	[REC_MOUNT] = "change",	      [REC_UMOUNT] = "change",
	    [REC_CRED] = "change",	[REC_LISTEN] = "start",	      [REC_ACCEPT] = "connection"};
	char h[65];

	if (!cat[e->kind])
		return false;
	jb_putc(b, '{');
	kstr(b, "@timestamp", e->time);
	kopen(b, "ecs");
	kstr(b, "version", "8.11.0");
	kclose(b);
	kopen(b, "event");
	kstr(b, "kind", "event");
	key(b, "category");
	jb_putc(b, '[');
	jb_str(b, cat[e->kind], strlen(cat[e->kind]));
	jb_putc(b, ']');
	key(b, "type");
	jb_putc(b, '[');
	jb_str(b, type[e->kind], strlen(type[e->kind]));
	if (e->kind == REC_OPEN && (m_open_flags(e) & F_CREATE))
		jb_raw(b, ",\"creation\"", 11);
	else if (e->kind == REC_OPEN && (m_open_flags(e) & (F_WRITE | F_TRUNC)))
		jb_raw(b, ",\"change\"", 9);
	jb_putc(b, ']');
	kstr(b, "action", e->kind_name);
	kstr(b, "outcome", m_failed(e) ? "failure" : "success");
	kint(b, "sequence", (int64_t)e->seq);
	kstr(b, "provider", "runseal");
	kclose(b);
	kopen(b, "host");
	kstr(b, "name", c->host);
	kclose(b);
	if (e->pid >= 0) {
		kopen(b, "process");
		kint(b, "pid", e->pid);
		kcopy(b, "name", e, "comm");
		kcopy(b, "executable", e, "path");
		if (e->kind == REC_EXEC) {
			kcopy(b, "args", e, "argv");
			kcopy(b, "working_directory", e, "cwd");
			if (lr_get(e, "sha256") >= 0 && e->tok[lr_get(e, "sha256")].type == J_STR) {
				kopen(b, "hash");
				kcopy(b, "sha256", e, "sha256");
				kclose(b);
			}
		}
		kcopy(b, "exit_code", e, "exit_code");
		kopen(b, "parent");
		kint(b, "pid", e->ppid);
		kclose(b);
		kclose(b);
		kopen(b, "user");
		kcopy(b, "id", e, "uid");
		kclose(b);
	}
	if (e->kind == REC_OPEN || (cat[e->kind] && !strcmp(cat[e->kind], "file"))) {
		char *s;

		kopen(b, "file");
		kcopy(b, "path", e, "path");
		s = lr_str(e, "path", NULL);
		kstr(b, "name", basename_of(s));
		free(s);
		kclose(b);
	} else if (e->kind == REC_CONNECT) {
		kopen(b, "destination");
		kcopy(b, "ip", e, "addr");
		kcopy(b, "port", e, "port");
		kcopy(b, "address", e, lr_get(e, "addr") >= 0 ? "addr" : "path");
		kclose(b);
	}
	if (m_failed(e)) {
		kopen(b, "error");
		kcopy(b, "code", e, "error");
		kclose(b);
	}
	hex(e->hash, 32, h);
	kopen(b, "runseal");
	kstr(b, "run", e->run);
	kstr(b, "step", e->step);
	kstr(b, "hash", h);
	kclose(b);
	jb_raw(b, "}\n", 2);
	return true;
}

static void learn_host(const struct lr_ent *e, struct export_ctx *c)
{
	char *h = NULL;

	if (e->kind == REC_GENESIS)
		h = lr_str(e, "hostname", NULL);
	else if (e->kind == REC_RUN_START)
		h = lr_str(e, "host", NULL);
	if (h && !memchr(h, '\0', strlen(h)))
		snprintf(c->host, sizeof(c->host), "%s", h);
	free(h);
}

bool export_entry(struct jbuf *b, const struct lr_ent *e, enum export_fmt f, struct export_ctx *c)
{
	learn_host(e, c);
	if (f == EXPORT_JSONL) {
		char pre[160], h[65];

		hex(e->hash, 32, h);
		jb_raw(b, pre,
		       (size_t)snprintf(pre, sizeof(pre), "{\"seq\":%llu,\"hash\":\"%s\",",
					(unsigned long long)e->seq, h));
		/* The entry as sealed with its hash after seq: a SIEM dedupes on seq and can
		 * check each prev against the hash before it. */
		{
			const char *prev = memmem(e->line, e->body, ",\"prev\":", 8);
			const char *from = prev ? prev + 1 : e->line + e->body;

			jb_raw(b, from, (size_t)(e->line + e->len - from));
		}
		jb_putc(b, '\n');
		return true;
	}
	return f == EXPORT_OCSF ? ocsf(b, e, c) : ecs(b, e, c);
}
