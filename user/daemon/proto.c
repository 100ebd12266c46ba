#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

const char *const proto_op_names[] = {
    [OP_HELLO] = "hello",   [OP_BEGIN] = "begin",	[OP_STEP] = "step",
    [OP_ATTACH] = "attach", [OP_STEP_END] = "step_end", [OP_END] = "end",
    [OP_STATUS] = "status", [OP_RECORD] = "record",	[OP_STATS] = "stats",
    [OP_READ] = "read",	    [OP_SECRET] = "secret",	NULL,
};

long proto_frame(const unsigned char *buf, size_t len)
{
	uint32_t n;

	if (len < 4)
		return 0;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	if (n == 0 || n > PROTO_FRAME_MAX)
		return -1;
	return len - 4 >= n ? (long)n + 4 : 0;
}

/* ---- decoding ------------------------------------------------------------------------- */

struct parser {
	const char *p, *end, *start;
	char *out; /* next free byte of m->text */
	struct proto_msg *m;
	char *err;
	size_t errlen;
};

static int fail(struct parser *ps, const char *what)
{
	snprintf(ps->err, ps->errlen, "%s at byte %zu", what, (size_t)(ps->p - ps->start));
	return -1;
}

static void ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex4(struct parser *ps, unsigned *u)
{
	*u = 0;
	if (ps->end - ps->p < 4)
		return fail(ps, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		int h = hexval(*ps->p++);

		if (h < 0)
			return fail(ps, "bad \\u escape");
		*u = *u << 4 | (unsigned)h;
	}
	return 0;
}

static void put_utf8(struct parser *ps, unsigned u)
{
	if (u < 0x80) {
		*ps->out++ = (char)u;
	} else if (u < 0x800) {
		*ps->out++ = (char)(0xc0 | u >> 6);
		*ps->out++ = (char)(0x80 | (u & 0x3f));
	} else if (u < 0x10000) {
		*ps->out++ = (char)(0xe0 | u >> 12);
		*ps->out++ = (char)(0x80 | ((u >> 6) & 0x3f));
		*ps->out++ = (char)(0x80 | (u & 0x3f));
	} else {
		*ps->out++ = (char)(0xf0 | u >> 18);
		*ps->out++ = (char)(0x80 | ((u >> 12) & 0x3f));
		*ps->out++ = (char)(0x80 | ((u >> 6) & 0x3f));
		*ps->out++ = (char)(0x80 | (u & 0x3f));
	}
}

/* An escape; \u0000 and other lone surrogates are refused: names become C strings and records. */
static int escape(struct parser *ps)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned u, lo;

	if (ps->p >= ps->end)
		return fail(ps, "unterminated string");
	if (*ps->p != 'u') {
		const char *k = strchr(from, *ps->p);

		if (!k || !*ps->p)
			return fail(ps, "bad escape");
		*ps->out++ = to[k - from];
		ps->p++;
		return 0;
	}
	ps->p++;
	if (hex4(ps, &u) < 0)
		return -1;
	if (u == 0)
		return fail(ps, "NUL in a string");
	/* json.c writes a byte of invalid UTF-8 as \udc80-\udcff: take it back. */
	if (u >= 0xdc80 && u <= 0xdcff) {
		*ps->out++ = (char)(u & 0xff);
		return 0;
	}
	if (u >= 0xdc00 && u <= 0xdfff)
		return fail(ps, "lone low surrogate");
	if (u >= 0xd800 && u <= 0xdbff) {
		if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
			return fail(ps, "lone high surrogate");
		ps->p += 2;
		if (hex4(ps, &lo) < 0)
			return -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return fail(ps, "lone high surrogate");
		u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
	}
	put_utf8(ps, u);
	return 0;
}

/* Unescaped text never outgrows its escaped form, so m->text (as large as a frame) holds all
 * strings of a message. */
static int string(struct parser *ps, const char **s, size_t *n)
{
	char *o = ps->out;

	if (ps->p >= ps->end || *ps->p != '"')
		return fail(ps, "expected a string");
	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		size_t l;

		if (c < 0x20)
			return fail(ps, "control character in a string");
		if (c == '\\') {
			ps->p++;
			if (escape(ps) < 0)
				return -1;
			continue;
		}
		l = utf8_len((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
		if (!l)
			return fail(ps, "invalid UTF-8 in a string");
		memcpy(ps->out, ps->p, l);
		ps->out += l;
		ps->p += l;
	}
	if (ps->p >= ps->end)
		return fail(ps, "unterminated string");
	ps->p++;
	*ps->out++ = '\0';
	*s = o;
	*n = (size_t)(ps->out - o - 1);
	return 0;
}

static int number(struct parser *ps, int64_t *v)
{
	bool neg = false;
	uint64_t u = 0;
	const char *s;

	if (ps->p < ps->end && *ps->p == '-')
		neg = true, ps->p++;
	s = ps->p;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		if (u > (UINT64_C(1) << 53))
			return fail(ps, "integer out of range");
		u = u * 10 + (uint64_t)(*ps->p++ - '0');
	}
	if (ps->p == s || (ps->p - s > 1 && *s == '0'))
		return fail(ps, "bad number");
	if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
		return fail(ps, "only integers are used");
	*v = neg ? -(int64_t)u : (int64_t)u;
	return 0;
}

static int word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n))
		return fail(ps, "unexpected token");
	ps->p += n;
	return 0;
}

static int value(struct parser *ps, struct proto_val *v, int depth);

static struct proto_item *new_item(struct parser *ps, bool top)
{
	struct proto_msg *m = ps->m;

	if (top) {
		if (m->nfields == PROTO_FIELDS_MAX)
			return fail(ps, "too many fields"), NULL;
		return &m->fields[m->nfields++];
	}
	if (m->nitems == PROTO_ITEMS_MAX)
		return fail(ps, "too many items"), NULL;
	return &m->items[m->nitems++];
}

/* Members of the top level go to fields; of nested containers (depth 1, scalars only) to
 * items, contiguous per container since nested containers cannot nest again. */
static int container(struct parser *ps, struct proto_val *v, int depth, bool obj)
{
	char close = obj ? '}' : ']';

	v->t = obj ? PV_OBJ : PV_ARR;
	v->first = (uint16_t)ps->m->nitems;
	ps->p++;
	ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		struct proto_item *it = new_item(ps, depth == 0);
		size_t kn;

		if (!it)
			return -1;
		it->key = NULL;
		ws(ps);
		if (obj) {
			if (string(ps, &it->key, &kn) < 0)
				return -1;
			ws(ps);
			if (ps->p >= ps->end || *ps->p++ != ':')
				return fail(ps, "expected ':'");
		}
		if (value(ps, &it->v, depth + 1) < 0)
			return -1;
		if (depth > 0)
			v->count++;
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		return fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int value(struct parser *ps, struct proto_val *v, int depth)
{
	memset(v, 0, sizeof(*v));
	ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "expected a value");
	switch (*ps->p) {
	case '"':
		v->t = PV_STR;
		return string(ps, &v->s, &v->n);
	case '{':
	case '[':
		if (depth > 1)
			return fail(ps, "nested too deep");
		return container(ps, v, depth, *ps->p == '{');
	case 't':
		v->t = PV_BOOL;
		v->b = true;
		return word(ps, "true");
	case 'f':
		v->t = PV_BOOL;
		return word(ps, "false");
	case 'n':
		v->t = PV_NULL;
		return word(ps, "null");
	default:
		v->t = PV_INT;
		return number(ps, &v->i);
	}
}

int proto_parse(const char *json, size_t n, struct proto_msg *m, char *err, size_t errlen)
{
	struct parser ps = {json, json + n, json, m->text, m, err, errlen};
	struct proto_val top;

	m->nfields = m->nitems = 0;
	if (n > PROTO_FRAME_MAX)
		return fail(&ps, "message too large");
	ws(&ps);
	if (ps.p >= ps.end || *ps.p != '{')
		return fail(&ps, "expected a JSON object");
	if (container(&ps, &top, 0, true) < 0)
		return -1;
	ws(&ps);
	if (ps.p != ps.end)
		return fail(&ps, "trailing bytes after the object");
	/* A repeated key would let two readers of one message see different values. */
	for (size_t i = 0; i < m->nfields; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m->fields[i].key, m->fields[j].key)) {
				snprintf(err, errlen, "field \"%s\" given twice", m->fields[i].key);
				return -1;
			}
	return 0;
}

const struct proto_val *proto_get(const struct proto_msg *m, const char *key)
{
	for (size_t i = 0; i < m->nfields; i++)
		if (!strcmp(m->fields[i].key, key))
			return &m->fields[i].v;
	return NULL;
}

/* ---- requests ------------------------------------------------------------------------- */

static const char *type_names[] = {"null",     "a boolean", "an integer",
				   "a string", "an array",  "an object"};

static int want(const struct proto_msg *m, const char *key, enum proto_type t, bool required,
		const struct proto_val **out, char *err, size_t errlen)
{
	const struct proto_val *v = proto_get(m, key);

	*out = NULL;
	if (!v || v->t == PV_NULL) {
		if (required) {
			snprintf(err, errlen, "field \"%s\" is required", key);
			return -1;
		}
		return 0;
	}
	if (v->t != t) {
		snprintf(err, errlen, "field \"%s\" must be %s", key, type_names[t]);
		return -1;
	}
	*out = v;
	return 0;
}

static int name_field(const struct proto_msg *m, const char *key, bool required, const char **out,
		      char *err, size_t errlen)
{
	const struct proto_val *v;

	*out = NULL;
	if (want(m, key, PV_STR, required, &v, err, errlen) < 0)
		return -1;
	if (!v)
		return 0;
	if (v->n == 0 || v->n > PROTO_NAME_MAX) {
		snprintf(err, errlen, "field \"%s\" must be 1 to %d bytes", key, PROTO_NAME_MAX);
		return -1;
	}
	*out = v->s;
	return 0;
}

static int int_field(const struct proto_msg *m, const char *key, bool required, int64_t min,
		     int64_t max, int64_t *out, char *err, size_t errlen)
{
	const struct proto_val *v;

	if (want(m, key, PV_INT, required, &v, err, errlen) < 0)
		return -1;
	if (!v)
		return 0;
	if (v->i < min || v->i > max) {
		snprintf(err, errlen, "field \"%s\" must be from %lld to %lld", key, (long long)min,
			 (long long)max);
		return -1;
	}
	*out = v->i;
	return 0;
}

/* Arrays and objects of a request hold strings only. */
static int strings_field(const struct proto_msg *m, const char *key, enum proto_type t,
			 const struct proto_val **out, char *err, size_t errlen)
{
	if (want(m, key, t, false, out, err, errlen) < 0)
		return -1;
	for (size_t i = 0; *out && i < (*out)->count; i++)
		if (m->items[(*out)->first + i].v.t != PV_STR) {
			snprintf(err, errlen, "field \"%s\" must hold strings only", key);
			return -1;
		}
	return 0;
}

static int op_of(const struct proto_msg *m, struct proto_req *r, char *err, size_t errlen)
{
	const struct proto_val *v;

	if (want(m, "op", PV_STR, true, &v, err, errlen) < 0)
		return -1;
	for (int i = OP_HELLO; proto_op_names[i]; i++)
		if (!strcmp(v->s, proto_op_names[i])) {
			r->op = (enum proto_op)i;
			return 0;
		}
	snprintf(err, errlen, "unknown op \"%.64s\"", v->s);
	return -1;
}

static int op_fields(const struct proto_msg *m, struct proto_req *r, char *err, size_t errlen)
{
	const struct proto_val *v, *t, *rec, *more, *data, *log;
	bool needs_run = r->op == OP_STEP || r->op == OP_ATTACH || r->op == OP_STEP_END ||
			 r->op == OP_END || r->op == OP_RECORD || r->op == OP_STATS ||
			 r->op == OP_SECRET;
	bool needs_step = r->op == OP_ATTACH || r->op == OP_STEP_END;

	if (name_field(m, "client", false, &r->client, err, errlen) < 0 ||
	    name_field(m, "runbook", r->op == OP_BEGIN, &r->runbook, err, errlen) < 0 ||
	    name_field(m, "run", needs_run, &r->run, err, errlen) < 0 ||
	    name_field(m, "name", r->op == OP_STEP || r->op == OP_SECRET, &r->name, err, errlen) <
		0 ||
	    name_field(m, "status", false, &r->status, err, errlen) < 0 ||
	    int_field(m, "step", needs_step, 1, UINT32_MAX, &r->step, err, errlen) < 0 ||
	    int_field(m, "exit_code", false, 0, 255, &r->exit_code, err, errlen) < 0 ||
	    int_field(m, "signal", false, 1, 64, &r->signal, err, errlen) < 0 ||
	    strings_field(m, "argv", PV_ARR, &r->argv, err, errlen) < 0 ||
	    strings_field(m, "trigger", PV_OBJ, &r->trigger, err, errlen) < 0 ||
	    want(m, "detached", PV_BOOL, false, &v, err, errlen) < 0 ||
	    want(m, "argv_truncated", PV_BOOL, false, &t, err, errlen) < 0 ||
	    want(m, "records", PV_BOOL, false, &rec, err, errlen) < 0 ||
	    want(m, "more", PV_BOOL, false, &more, err, errlen) < 0 ||
	    want(m, "data", PV_STR, r->op == OP_RECORD || r->op == OP_SECRET, &data, err, errlen) <
		0 ||
	    name_field(m, "command", r->op == OP_READ, &r->command, err, errlen) < 0 ||
	    want(m, "log", PV_STR, false, &log, err, errlen) < 0 ||
	    strings_field(m, "runs", PV_ARR, &r->runs, err, errlen) < 0)
		return -1;
	if (log && (log->n == 0 || log->n > 4096)) {
		snprintf(err, errlen, "%s", "field \"log\" must be 1 to 4096 bytes");
		return -1;
	}
	r->log = log ? log->s : NULL;
	r->detached = v && v->b;
	r->argv_truncated = t && t->b;
	r->records = rec && rec->b;
	r->more = more && more->b;
	r->data = data ? data->s : NULL;
	r->ndata = data ? data->n : 0;

	return 0;
}

int proto_request(const struct proto_msg *m, struct proto_req *r, const char **code, char *err,
		  size_t errlen)
{
	const struct proto_val *v;

	memset(r, 0, sizeof(*r));
	r->id = r->step = r->exit_code = -1;
	r->msg = m;
	*code = "bad_request";
	if (int_field(m, "id", false, 0, INT32_MAX, &r->id, err, errlen) < 0)
		return -1;
	if (want(m, "v", PV_INT, true, &v, err, errlen) < 0)
		return -1;
	if (v->i != PROTO_VERSION) {
		*code = "bad_version";
		snprintf(err, errlen, "protocol version %lld is not spoken here (only %d)",
			 (long long)v->i, PROTO_VERSION);
		return -1;
	}
	if (op_of(m, r, err, errlen) < 0) {
		*code = proto_get(m, "op") && proto_get(m, "op")->t == PV_STR ? "unknown_op"
									      : "bad_request";
		return -1;
	}
	return op_fields(m, r, err, errlen);
}

/* ---- encoding ------------------------------------------------------------------------- */

static void comma(struct jbuf *b)
{
	char last = b->p[b->len - 1];

	if (last != '{' && last != '[')
		jb_putc(b, ',');
}

static void key(struct jbuf *b, const char *k)
{
	comma(b);
	jb_str(b, k, strlen(k));
	jb_putc(b, ':');
}

size_t pe_begin(struct jbuf *b)
{
	size_t start = b->len;

	jb_raw(b, "\0\0\0\0{", 5);
	pe_int(b, "v", PROTO_VERSION);
	return start;
}

void pe_str(struct jbuf *b, const char *k, const char *v)
{
	key(b, k);
	if (v)
		jb_str(b, v, strlen(v));
	else
		jb_raw(b, "null", 4);
}

void pe_strn(struct jbuf *b, const char *k, const char *v, size_t n)
{
	key(b, k);
	jb_str(b, v, n);
}

void pe_int(struct jbuf *b, const char *k, int64_t v)
{
	key(b, k);
	jb_i64(b, v);
}

void pe_bool(struct jbuf *b, const char *k, bool v)
{
	key(b, k);
	jb_raw(b, v ? "true" : "false", v ? 4 : 5);
}

void pe_strs(struct jbuf *b, const char *k, const char *const *v, size_t n)
{
	key(b, k);
	jb_putc(b, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			jb_putc(b, ',');
		jb_str(b, v[i], strlen(v[i]));
	}
	jb_putc(b, ']');
}

void pe_obj(struct jbuf *b, const char *k)
{
	key(b, k);
	jb_putc(b, '{');
}

void pe_obj_end(struct jbuf *b)
{
	jb_putc(b, '}');
}

int pe_end(struct jbuf *b, size_t start)
{
	size_t n;

	jb_putc(b, '}');
	n = b->len - start - 4;
	if (n > PROTO_FRAME_MAX) {
		b->len = start;
		return -1;
	}
	b->p[start] = (char)(n >> 24);
	b->p[start + 1] = (char)(n >> 16);
	b->p[start + 2] = (char)(n >> 8);
	b->p[start + 3] = (char)n;
	return 0;
}

int pe_error(struct jbuf *b, int64_t id, const char *code, const char *msg)
{
	size_t start = pe_begin(b);

	pe_bool(b, "ok", false);
	if (id >= 0)
		pe_int(b, "id", id);
	pe_str(b, "error", code);
	pe_str(b, "message", msg);
	return pe_end(b, start);
}
