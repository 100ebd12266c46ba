/* client: the other end of the daemon's socket, for exec, begin, end and status. Blocking,
 * one request at a time; errors are returned as "code: message" in c->err. */
#ifndef RUNSEAL_CLIENT_H
#define RUNSEAL_CLIENT_H

#include "json.h"
#include "proto.h"

struct rs_client {
	int fd;
	struct jbuf req;
	size_t start; /* of the request frame in req */
	struct proto_msg reply;
	char code[32];
	char err[PROTO_ERRLEN + 64];
};

/* The socket: path if given, else $RUNSEAL_SOCKET, else the default. */
const char *rsc_socket(const char *path);
/* Connects and says hello. Returns 0, or -1 with c->err. */
int rsc_open(struct rs_client *c, const char *path, const char *client);
/* Starts a request frame with its op; add fields with pe_*, then rsc_call. */
void rsc_begin(struct rs_client *c, const char *op);
/* Sends the request and reads its reply into c->reply. Returns 0 when the reply is ok. */
int rsc_call(struct rs_client *c);
const char *rsc_str(const struct rs_client *c, const char *key);
long long rsc_int(const struct rs_client *c, const char *key, long long dflt);
bool rsc_bool(const struct rs_client *c, const char *key);
void rsc_close(struct rs_client *c);

#endif
