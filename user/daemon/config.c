#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "verify.h"

const char *const conf_keys[CF_NOPTS] = {
    [CF_SOCKET] = "socket",	      [CF_GROUP] = "group",
    [CF_LOG_DIR] = "log_dir",	      [CF_KEY_DIR] = "key_dir",
    [CF_REPLICA] = "replica",	      [CF_SOCKET_MODE] = "socket_mode",
    [CF_MAX_CLIENTS] = "max_clients", [CF_CLIENT_TIMEOUT] = "client_timeout",
    [CF_CHECKPOINT] = "checkpoint",   [CF_RINGBUF] = "ringbuf_size",
};

void conf_defaults(struct daemon_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->socket, sizeof(c->socket), "%s", CONF_SOCKET_DEFAULT);
	snprintf(c->group, sizeof(c->group), "%s", CONF_GROUP_DEFAULT);
	snprintf(c->log_dir, sizeof(c->log_dir), "%s", LOG_DIR_DEFAULT);
	snprintf(c->key_dir, sizeof(c->key_dir), "%s", KEYS_DIR_DEFAULT);
	c->socket_mode = 0660;
	c->max_clients = 1024;
	c->client_timeout_s = 10;
}

static int number(const char *v, unsigned long min, unsigned long max, int base, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(v, &end, base);
	return errno || end == v || *end || *out < min || *out > max || v[0] == '-' ? -1 : 0;
}

static int path(char *dst, size_t n, const char *key, const char *v, char *err, size_t errlen)
{
	if (v[0] != '/' || strlen(v) >= n) {
		snprintf(err, errlen, "%s %s: expected an absolute path shorter than %zu bytes",
			 key, v, n);
		return -1;
	}
	snprintf(dst, n, "%s", v);
	return 0;
}

static int key_index(const char *key)
{
	char k[32];

	if (strlen(key) >= sizeof(k))
		return -1;
	for (size_t i = 0; (k[i] = key[i] == '-' ? '_' : key[i]); i++)
		;
	for (int i = 0; i < CF_NOPTS; i++)
		if (!strcmp(k, conf_keys[i]))
			return i;
	return -1;
}

static int set_number(struct daemon_conf *c, int i, const char *v, char *err, size_t errlen)
{
	static const struct {
		unsigned long min, max;
		int base;
		const char *what;
	} r[CF_NOPTS] = {
	    [CF_SOCKET_MODE] = {0600, 0666, 8, "an octal mode from 0600 to 0666"},
	    [CF_MAX_CLIENTS] = {1, 65536, 10, "connections from 1 to 65536"},
	    [CF_CLIENT_TIMEOUT] = {1, 3600, 10, "seconds from 1 to 3600"},
	    [CF_CHECKPOINT] = {1, 86400, 10, "seconds from 1 to 86400"},
	    [CF_RINGBUF] = {4096, 1ul << 30, 10, "bytes: a power of two from 4096"},
	};
	unsigned long n;

	if (number(v, r[i].min, r[i].max, r[i].base, &n) < 0 ||
	    (i == CF_RINGBUF && (n & (n - 1)))) {
		snprintf(err, errlen, "%s %s: expected %s", conf_keys[i], v, r[i].what);
		return -1;
	}
	if (i == CF_SOCKET_MODE)
		c->socket_mode = (unsigned)n;
	else if (i == CF_MAX_CLIENTS)
		c->max_clients = (unsigned)n;
	else if (i == CF_CLIENT_TIMEOUT)
		c->client_timeout_s = (unsigned)n;
	else if (i == CF_CHECKPOINT)
		c->checkpoint_s = (unsigned)n;
	else
		c->ringbuf_bytes = n;
	return 0;
}

int conf_set(struct daemon_conf *c, const char *key, const char *v, char *err, size_t errlen)
{
	int i = key_index(key);

	if (i < 0) {
		snprintf(err, errlen, "unknown option \"%s\"", key);
		return -1;
	}
	c->set[i] = true;
	switch (i) {
	case CF_SOCKET:
		return path(c->socket, sizeof(c->socket), key, v, err, errlen);
	case CF_LOG_DIR:
		return path(c->log_dir, sizeof(c->log_dir), key, v, err, errlen);
	case CF_KEY_DIR:
		return path(c->key_dir, sizeof(c->key_dir), key, v, err, errlen);
	case CF_REPLICA:
		if (c->nreplicas == CONF_REPLICAS_MAX) {
			snprintf(err, errlen, "replica %s: at most %d replicas", v,
				 CONF_REPLICAS_MAX);
			return -1;
		}
		return path(c->replicas[c->nreplicas++], sizeof(c->replicas[0]), key, v, err,
			    errlen);
	case CF_GROUP:
		if (!*v || strlen(v) >= sizeof(c->group) || strpbrk(v, " \t:/")) {
			snprintf(err, errlen, "group \"%s\": expected a group name", v);
			return -1;
		}
		snprintf(c->group, sizeof(c->group), "%s", v);
		return 0;
	default:
		return set_number(c, i, v, err, errlen);
	}
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int conf_load(struct daemon_conf *c, const char *file, bool missing_ok, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");
	char line[1024], e[256];
	unsigned no = 0;
	int rc = 0;

	if (!f) {
		if (errno == ENOENT && missing_ok)
			return 0;
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *s = line, *eq;

		no++;
		if (strchr(s, '#'))
			*strchr(s, '#') = '\0';
		s = trim(s);
		if (!*s)
			continue;
		if (!(eq = strchr(s, '='))) {
			snprintf(err, errlen, "%s:%u: expected \"key = value\"", file, no);
			rc = -1;
			break;
		}
		*eq = '\0';
		if (conf_set(c, trim(s), trim(eq + 1), e, sizeof(e)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", file, no, e);
			rc = -1;
		}
	}
	fclose(f);
	return rc;
}

void conf_merge(struct daemon_conf *base, const struct daemon_conf *fl)
{
	struct daemon_conf b = *base;

	if (fl->set[CF_SOCKET])
		memcpy(b.socket, fl->socket, sizeof(b.socket));
	if (fl->set[CF_GROUP])
		memcpy(b.group, fl->group, sizeof(b.group));
	if (fl->set[CF_LOG_DIR])
		memcpy(b.log_dir, fl->log_dir, sizeof(b.log_dir));
	if (fl->set[CF_KEY_DIR])
		memcpy(b.key_dir, fl->key_dir, sizeof(b.key_dir));
	if (fl->set[CF_REPLICA]) {
		memcpy(b.replicas, fl->replicas, sizeof(b.replicas));
		b.nreplicas = fl->nreplicas;
	}
	if (fl->set[CF_SOCKET_MODE])
		b.socket_mode = fl->socket_mode;
	if (fl->set[CF_MAX_CLIENTS])
		b.max_clients = fl->max_clients;
	if (fl->set[CF_CLIENT_TIMEOUT])
		b.client_timeout_s = fl->client_timeout_s;
	if (fl->set[CF_CHECKPOINT])
		b.checkpoint_s = fl->checkpoint_s;
	if (fl->set[CF_RINGBUF])
		b.ringbuf_bytes = fl->ringbuf_bytes;
	for (int i = 0; i < CF_NOPTS; i++)
		b.set[i] = base->set[i] || fl->set[i];
	*base = b;
}
