/* config: the daemon's settings, from /etc/runseal/runseal.conf and flags (flags win, also
 * after a SIGHUP reload). The file is "key = value" lines; '#' starts a comment. */
#ifndef RUNSEAL_CONFIG_H
#define RUNSEAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CONF_DEFAULT	    "/etc/runseal/runseal.conf"
#define CONF_SOCKET_DEFAULT "/run/runseal/runseal.sock"
#define CONF_GROUP_DEFAULT  "runseal"
#define CONF_REPLICAS_MAX   8

struct daemon_conf {
	char socket[256];
	char group[64];
	char log_dir[256];
	char key_dir[256];
	char replicas[CONF_REPLICAS_MAX][256];
	size_t nreplicas;
	unsigned socket_mode;	   /* 0660 */
	unsigned max_clients;	   /* connections at once */
	unsigned client_timeout_s; /* for half a message, or replies left unread */
	unsigned checkpoint_s;
	unsigned long ringbuf_bytes;
	bool set[16]; /* which options were given (by flags: they win over the file) */
};

enum {
	CF_SOCKET,
	CF_GROUP,
	CF_LOG_DIR,
	CF_KEY_DIR,
	CF_REPLICA,
	CF_SOCKET_MODE,
	CF_MAX_CLIENTS,
	CF_CLIENT_TIMEOUT,
	CF_CHECKPOINT,
	CF_RINGBUF,
	CF_NOPTS,
};
extern const char *const conf_keys[CF_NOPTS];

void conf_defaults(struct daemon_conf *c);
/* Sets one option by its key (file or flag spelling, '-' or '_'). Returns 0, or -1 with err. */
int conf_set(struct daemon_conf *c, const char *key, const char *value, char *err, size_t errlen);
/* Reads a file of options; a missing file is fine only when missing_ok. */
int conf_load(struct daemon_conf *c, const char *path, bool missing_ok, char *err, size_t errlen);
/* Options set in flags replace those of base. */
void conf_merge(struct daemon_conf *base, const struct daemon_conf *flags);

#endif
