/* libFuzzer target: arbitrary bytes as what a client sends the daemon, through the framer,
 * the JSON decoder and the request checker, exactly as user/daemon/server.c uses them.
 * Built and run by `make fuzz-proto` (seed corpus tests/fuzz/proto-corpus). Checks beyond
 * "no crash": every decoded string is NUL-terminated at its length and within the message,
 * and a reply encoded from decoded fields decodes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static struct proto_msg msg, back;

static void check_strings(const struct proto_msg *m)
{
	for (size_t i = 0; i < m->nfields; i++) {
		const struct proto_val *v = &m->fields[i].v;

		if (v->t == PV_STR && (v->s < m->text || v->s + v->n > m->text + sizeof(m->text) ||
				       v->s[v->n] != '\0'))
			abort();
		if ((v->t == PV_ARR || v->t == PV_OBJ) && v->first + v->count > m->nitems)
			abort();
	}
}

/* A reply made of what was decoded must be a frame the decoder takes back. */
static void round_trip(const struct proto_req *r)
{
	struct jbuf b = {0};
	size_t s = pe_begin(&b);

	pe_bool(&b, "ok", true);
	pe_str(&b, "run", r->run);
	pe_str(&b, "name", r->name);
	pe_str(&b, "runbook", r->runbook);
	pe_int(&b, "step", r->step);
	if (pe_end(&b, s) == 0) {
		char err[PROTO_ERRLEN];
		long f = proto_frame((const unsigned char *)b.p, b.len);
		if (f != (long)b.len || proto_parse(b.p + 4, b.len - 4, &back, err, sizeof(err)))
			abort();
	}
	jb_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[PROTO_ERRLEN];
	struct proto_req r;
	const char *code;
	size_t off = 0;
	long f;

	/* As the server reads a stream: frames back to back, stopping at a bad length. */
	while ((f = proto_frame(data + off, size - off)) > 0) {
		if (proto_parse((const char *)data + off + 4, (size_t)f - 4, &msg, err,
				sizeof(err)) == 0) {
			check_strings(&msg);
			if (proto_request(&msg, &r, &code, err, sizeof(err)) == 0)
				round_trip(&r);
		}
		off += (size_t)f;
	}
	/* The JSON decoder alone, on the raw bytes too. */
	if (size <= PROTO_FRAME_MAX &&
	    proto_parse((const char *)data, size, &msg, err, sizeof(err)) == 0)
		check_strings(&msg);
	return 0;
}
