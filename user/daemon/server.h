/* server: the daemon's socket and event loop. Every connection's peer is who the kernel says
 * (SO_PEERCRED, SO_PEERGROUPS, SO_PEERPIDFD); only root and members of the configured group
 * may act, and every refusal is recorded. Clients are bounded in number, buffer and time:
 * none can crash or stall the others. docs/PROTOCOL.md describes the protocol. */
#ifndef RUNSEAL_SERVER_H
#define RUNSEAL_SERVER_H

#include <stddef.h>

#include "config.h"

struct engine;

/* Runs until SIGTERM or SIGINT. conf_file (may be NULL) is re-read on SIGHUP, with flags
 * applied over it again. Returns 0 after a clean stop, or -1 with err. */
int server_run(struct engine *e, struct daemon_conf *conf, const char *conf_file,
	       const struct daemon_conf *flags, char *err, size_t errlen);

#endif
