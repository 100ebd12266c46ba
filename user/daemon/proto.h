/* proto: the daemon's socket protocol (docs/PROTOCOL.md), encoded and decoded without I/O.
 *
 * A frame is a 4-byte big-endian length and that many bytes of one JSON object. The decoder
 * takes only what the protocol uses (strings, integers, booleans, null, an array of strings,
 * an object of strings) and is bounded everywhere: frame size, fields, string and array
 * lengths, nesting depth. It never allocates: strings are unescaped into the message. */
#ifndef RUNSEAL_PROTO_H
#define RUNSEAL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define PROTO_VERSION	 1
#define PROTO_FRAME_MAX	 16384 /* bytes of JSON in one frame */
#define PROTO_FIELDS_MAX 32    /* top-level fields of a message */
#define PROTO_ITEMS_MAX	 256   /* items of all arrays and objects of a message together */
#define PROTO_NAME_MAX	 256   /* bytes of a run, runbook or step name */
#define PROTO_ERRLEN	 160

enum proto_type { PV_NULL, PV_BOOL, PV_INT, PV_STR, PV_ARR, PV_OBJ };

struct proto_val {
	enum proto_type t;
	const char *s; /* PV_STR: NUL-terminated, n bytes, no NUL inside */
	size_t n;
	int64_t i;
	bool b;
	uint16_t first, count; /* PV_ARR, PV_OBJ: items[first .. first+count) */
};

struct proto_item {
	const char *key; /* NULL in an array */
	struct proto_val v;
};

struct proto_msg {
	char text[PROTO_FRAME_MAX + 1]; /* the unescaped strings live here */
	struct proto_item fields[PROTO_FIELDS_MAX];
	size_t nfields;
	struct proto_item items[PROTO_ITEMS_MAX];
	size_t nitems;
};

enum proto_op {
	OP_HELLO = 1,
	OP_BEGIN,
	OP_STEP,
	OP_ATTACH,
	OP_STEP_END,
	OP_END,
	OP_STATUS,
	OP_RECORD, /* runseal run: a piece of one of the run's own records */
	OP_STATS,  /* runseal run: what the daemon saw of a run so far */
	OP_READ,   /* a reader of the log (show, report...): who read which runs */
	OP_SECRET, /* runseal run: a secret param, for redacting its run's events */
};

/* A request with its fields checked: types, lengths, which are required for its op. */
struct proto_req {
	enum proto_op op;
	int64_t id; /* echoed in the reply, -1 when absent */
	const char *client;
	const char *runbook;
	const char *run;
	const char *name;
	const char *status;
	bool detached;
	bool argv_truncated; /* the client sent only the first items of a long argv */
	bool records;	     /* begin: the client writes the run's own records */
	bool more;	     /* record: more pieces of this record follow */
	const char *data;    /* record: a piece of a record line */
	size_t ndata;
	const char *command;		 /* read: the command that read the log */
	const char *log;		 /* read: the log (or bundle) it read */
	const struct proto_val *runs;	 /* read: the runs it read (PV_ARR; none: all) */
	int64_t step;			 /* -1 when absent */
	int64_t exit_code;		 /* -1 when absent */
	int64_t signal;			 /* 0 when absent */
	const struct proto_val *argv;	 /* PV_ARR or NULL */
	const struct proto_val *trigger; /* PV_OBJ or NULL */
	const struct proto_msg *msg;	 /* where argv and trigger items are */
};

/* How much of buf a frame takes: 0 when more bytes are needed, 4 + length when one is
 * complete, -1 when the length is 0 or above PROTO_FRAME_MAX. */
long proto_frame(const unsigned char *buf, size_t len);
/* Parses one frame's JSON. Returns 0, or -1 with err saying what is wrong and where. */
int proto_parse(const char *json, size_t n, struct proto_msg *m, char *err, size_t errlen);
const struct proto_val *proto_get(const struct proto_msg *m, const char *key);
/* Checks a parsed message as a request. Returns 0, or -1 with err and code (bad_version,
 * unknown_op, bad_request). */
int proto_request(const struct proto_msg *m, struct proto_req *r, const char **code, char *err,
		  size_t errlen);
extern const char *const proto_op_names[];

/* Encoding: a frame is built in b with its length reserved, fields added, then closed. */
size_t pe_begin(struct jbuf *b); /* returns where the frame starts, for pe_end */
void pe_str(struct jbuf *b, const char *k, const char *v);
void pe_strn(struct jbuf *b, const char *k, const char *v, size_t n);
void pe_int(struct jbuf *b, const char *k, int64_t v);
void pe_bool(struct jbuf *b, const char *k, bool v);
void pe_strs(struct jbuf *b, const char *k, const char *const *v, size_t n);
/* Opens and closes a nested object of strings. */
void pe_obj(struct jbuf *b, const char *k);
void pe_obj_end(struct jbuf *b);
/* Fills in the length; returns -1 when the frame grew above PROTO_FRAME_MAX. */
int pe_end(struct jbuf *b, size_t start);
/* An error reply: {"v":1,"ok":false,"id":ID,"error":CODE,"message":MSG}. */
int pe_error(struct jbuf *b, int64_t id, const char *code, const char *msg);

#endif
