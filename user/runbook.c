/* runbook: load and validate a runbook YAML file, bind params, expand templates.
 *
 * A runbook is refused as a whole before anything runs: every error names "file:line". Templates
 * are checked at load time against the declared params, so a typo never reaches a shell.
 */
#define _GNU_SOURCE
#include "runbook.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#define RB_MAX_FILE  (1024 * 1024)
#define RB_NAME_MAX  64
#define RB_MAX_NEST  64
#define RB_MAX_DEPTH 16 /* YAML nesting: runbooks need 5 */
#define RB_STR_(x)   #x
#define RB_STR(x)    RB_STR_(x)
#define RB_ESCLEN    96
#define RB_USER_MAX  32

static const char *const builtin_params[] = {"runbook_dir", "run_id", NULL};

/* ---- strings ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_putn(struct sbuf *s, const char *p, size_t n)
{
	if (!s || s->oom)
		return;
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 64;
		char *np;

		while (cap < s->len + n + 1)
			cap *= 2;
		np = realloc(s->p, cap);
		if (!np) {
			s->oom = true;
			return;
		}
		s->p = np;
		s->cap = cap;
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static void sb_puts(struct sbuf *s, const char *p)
{
	sb_putn(s, p, strlen(p));
}

static char *sb_finish(struct sbuf *s)
{
	if (s->oom) {
		free(s->p);
		return NULL;
	}
	return s->p ? s->p : strdup("");
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Messages quote names and values from untrusted files and command lines: escape anything that
 * could confuse a terminal or a log parser, and cut long strings. */
static const char *esc(char dst[RB_ESCLEN], const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (o + 8 >= RB_ESCLEN) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
	return dst;
}

/* The compound literal lives until the end of the enclosing block: long enough for a message. */
#define ESC(s) esc((char[RB_ESCLEN]){0}, (s))

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static bool is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool valid_pname(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > RB_NAME_MAX || !is_alpha_(s[0]))
		return false;
	for (i = 1; i < n; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]))
			return false;
	return true;
}

static bool valid_envname(const char *s)
{
	return *s && valid_pname(s, 1) &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
		   strlen(s);
}

static bool valid_ident(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return false;
	return true;
}

/* ---- param values ---- */

static int compile_pattern(const char *pattern, regex_t *re, char *why, size_t whylen)
{
	size_t n = strlen(pattern) + 5;
	char *full = malloc(n);
	int rc;

	if (!full) {
		seterr(why, whylen, "out of memory");
		return -1;
	}
	/* Anchored as a group so that alternations cannot escape the anchors. */
	snprintf(full, n, "^(%s)$", pattern);
	rc = regcomp(re, full, REG_EXTENDED | REG_NOSUB);
	free(full);
	if (rc) {
		char msg[128];

		regerror(rc, re, msg, sizeof(msg));
		seterr(why, whylen, "invalid pattern: %s", msg);
		return -1;
	}
	return 0;
}

static bool valid_int(const char *v)
{
	const char *d = (*v == '+' || *v == '-') ? v + 1 : v;
	char *end;

	if (!*d || strspn(d, "0123456789") != strlen(d))
		return false;
	errno = 0;
	(void)strtoll(v, &end, 10);
	return errno != ERANGE && !*end;
}

static bool valid_path(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return false;
	return true;
}

static int check_enum(const struct rb_param *p, const char *v, char *why, size_t whylen)
{
	struct sbuf s = {0};
	size_t i;

	for (i = 0; i < p->nvalues; i++)
		if (!strcmp(v, p->values[i]))
			return 0;
	for (i = 0; i < p->nvalues; i++) {
		sb_puts(&s, i ? ", " : "");
		sb_puts(&s, ESC(p->values[i]));
	}
	seterr(why, whylen, "is not one of: %s", s.p ? s.p : "");
	free(s.p);
	return -1;
}

static int check_pattern(const struct rb_param *p, const char *v, char *why, size_t whylen)
{
	regex_t re;
	int rc;

	if (!p->pattern)
		return 0;
	if (compile_pattern(p->pattern, &re, why, whylen))
		return -1;
	rc = regexec(&re, v, 0, NULL, 0);
	regfree(&re);
	if (rc) {
		seterr(why, whylen, "does not match pattern");
		return -1;
	}
	return 0;
}

/* Checks v against p's type, values and pattern. On success *norm is a malloc'd normalized copy;
 * on failure why says what is wrong without repeating the value. */
static int check_value(const struct rb_param *p, const char *v, char **norm, char *why,
		       size_t whylen)
{
	bool bv;

	*norm = NULL;
	if (p->type == RB_INT && !valid_int(v)) {
		seterr(why, whylen, "is not an integer");
		return -1;
	}
	if (p->type == RB_BOOL && !parse_bool(v, &bv)) {
		seterr(why, whylen, "is not a boolean (true/false/yes/no/1/0)");
		return -1;
	}
	if (p->type == RB_PATH && !valid_path(v)) {
		seterr(why, whylen, "is not a valid path (empty or control characters)");
		return -1;
	}
	if (p->type == RB_ENUM && check_enum(p, v, why, whylen))
		return -1;
	if (p->type == RB_BOOL)
		v = bv ? "true" : "false";
	if (check_pattern(p, v, why, whylen))
		return -1;
	*norm = strdup(v);
	if (!*norm) {
		seterr(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- templates ---- */

enum qstate { Q_LIT, Q_OUT, Q_DQ, Q_SQ, Q_BQ };

struct qframe {
	enum qstate q;
	unsigned parens;
};

typedef int (*ref_fn)(void *ctx, const char *name, enum qstate q, struct sbuf *out, char *msg,
		      size_t msglen);

/* Parses the reference starting at t ("{{"), returns the bytes consumed or -1. */
static long parse_ref(const char *t, char name[RB_NAME_MAX + 1], char *msg, size_t msglen)
{
	const char *end = strstr(t + 2, "}}");
	const char *a = t + 2, *b = end;
	if (!end) {
		seterr(msg, msglen, "unterminated \"{{\" (missing \"}}\")");
		return -1;
	}
	while (a < b && (*a == ' ' || *a == '\t'))
		a++;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	if (!valid_pname(a, (size_t)(b - a))) {
		char *inner = strndup(t, (size_t)(end + 2 - t));
		seterr(msg, msglen, "invalid param reference \"%s\"", inner ? ESC(inner) : "");
		free(inner);
		return -1;
	}
	memcpy(name, a, (size_t)(b - a));
	name[b - a] = '\0';
	return end + 2 - t;
}

static int qpush(struct qframe *st, int *depth, enum qstate q, char *msg, size_t msglen)
{
	if (*depth + 1 >= RB_MAX_NEST) {
		seterr(msg, msglen, "shell quoting nested too deeply");
		return -1;
	}
	st[++*depth] = (struct qframe){q, 0};
	return 1;
}

/* Code context (outside quotes or inside backquotes): quotes open, "(" and ")" balance so that
 * the ")" closing a "$(" is recognized. Returns bytes consumed, 0 if not handled here. */
static int shell_code(struct qframe *st, int *depth, const char *t, char *msg, size_t msglen)
{
	struct qframe *f = &st[*depth];

	switch (*t) {
	case '\\':
		return t[1] ? 2 : 1;
	case '\'':
		return qpush(st, depth, Q_SQ, msg, msglen);
	case '"':
		return qpush(st, depth, Q_DQ, msg, msglen);
	case '(':
		f->parens++;
		return 1;
	case ')':
		if (f->parens)
			f->parens--;
		else if (*depth > 0 && f->q == Q_OUT)
			(*depth)--;
		return 1;
	}
	return 0;
}

/* Advances the shell quoting state over the token at t; returns bytes consumed or -1. */
static int shell_advance(struct qframe *st, int *depth, const char *t, char *msg, size_t msglen)
{
	enum qstate q = st[*depth].q;

	if (q == Q_SQ) {
		if (*t == '\'')
			(*depth)--;
		return 1;
	}
	if (q == Q_DQ) {
		/* POSIX: inside double quotes a backslash only escapes these. */
		if (*t == '\\' && t[1] && strchr("$`\"\\\n", t[1]))
			return 2;
		if (*t == '"') {
			(*depth)--;
			return 1;
		}
	} else {
		int n = shell_code(st, depth, t, msg, msglen);

		if (n)
			return n;
	}
	if (*t == '`' && q == Q_BQ) {
		(*depth)--;
		return 1;
	}
	if (*t == '`')
		return qpush(st, depth, Q_BQ, msg, msglen);
	if (*t == '$' && t[1] == '(')
		return qpush(st, depth, Q_OUT, msg, msglen) < 0 ? -1 : 2;
	return 1;
}

static int scan_template(const char *t, bool shell, ref_fn fn, void *ctx, struct sbuf *out,
			 char *msg, size_t msglen)
{
	struct qframe st[RB_MAX_NEST] = {{Q_OUT, 0}};
	char name[RB_NAME_MAX + 1];
	int depth = 0;
	long n;

	while (*t) {
		if (t[0] == '{' && t[1] == '{') {
			n = parse_ref(t, name, msg, msglen);
			if (n < 0 || fn(ctx, name, shell ? st[depth].q : Q_LIT, out, msg, msglen))
				return -1;
		} else {
			n = shell ? shell_advance(st, &depth, t, msg, msglen) : 1;
			if (n < 0)
				return -1;
			sb_putn(out, t, (size_t)n);
		}
		t += n;
	}
	return 0;
}

static int sq_error(const char *name, char *msg, size_t msglen)
{
	seterr(msg, msglen,
	       "{{%s}} is inside single quotes and cannot be substituted safely; "
	       "use double quotes or no quotes",
	       name);
	return -1;
}

static int ref_expand(void *ctx, const char *name, enum qstate q, struct sbuf *out, char *msg,
		      size_t msglen)
{
	const char *v = rb_binding_get(ctx, name);

	if (!v) {
		seterr(msg, msglen, "unknown param \"%s\"", name);
		return -1;
	}
	if (q == Q_SQ)
		return sq_error(name, msg, msglen);
	if (q == Q_LIT) {
		sb_puts(out, v);
		return 0;
	}
	/* The value stays in the environment: the shell never parses it, and the quotes keep it
	 * from being split or globbed. */
	sb_puts(out, q == Q_DQ ? "${RUNSEAL_PARAM_" : "\"${RUNSEAL_PARAM_");
	sb_puts(out, name);
	sb_puts(out, q == Q_DQ ? "}" : "}\"");
	return 0;
}

static char *expand(const char *tmpl, bool shell, const struct rb_binding *b, char *err,
		    size_t errlen)
{
	struct sbuf out = {0};
	char *s;

	if (scan_template(tmpl, shell, ref_expand, (void *)b, &out, err, errlen)) {
		free(out.p);
		return NULL;
	}
	s = sb_finish(&out);
	if (!s)
		seterr(err, errlen, "out of memory");
	return s;
}

char *rb_expand_shell(const char *tmpl, const struct rb_binding *b, char *err, size_t errlen)
{
	return expand(tmpl, true, b, err, errlen);
}

char *rb_expand_literal(const char *tmpl, const struct rb_binding *b, char *err, size_t errlen)
{
	return expand(tmpl, false, b, err, errlen);
}

/* ---- loading: file and YAML ---- */

struct lctx {
	const char *path;
	yaml_document_t *doc;
	struct runbook *rb;
	char *err;
	size_t errlen;
};

static int lerr(struct lctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lerr(struct lctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[RB_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	seterr(c->err, c->errlen, "%s:%zu: %s", c->path, n ? n->start_mark.line + 1 : 1, msg);
	return -1;
}

static int read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = 0;

	*len = 0;
	*buf = malloc(RB_MAX_FILE + 1);
	if (fd < 0 || !*buf) {
		seterr(err, errlen, "%s: cannot read: %s", path, strerror(fd < 0 ? errno : ENOMEM));
		goto fail;
	}
	/* Read one byte past the limit to tell "exactly 1 MiB" from "larger". */
	while (*len <= RB_MAX_FILE && (r = read(fd, *buf + *len, RB_MAX_FILE + 1 - *len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			goto fail;
		}
		*len += (size_t)r;
	}
	if (*len > RB_MAX_FILE) {
		seterr(err, errlen, "%s: file is larger than 1 MiB", path);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(*buf);
	*buf = NULL;
	return -1;
}

static int yaml_fail(const char *path, const yaml_parser_t *p, const unsigned char *buf, size_t len,
		     char *err, size_t errlen)
{
	const char *problem = p->problem ? p->problem : "parse error";
	size_t line = p->problem_mark.line + 1;

	if (p->error == YAML_MEMORY_ERROR)
		problem = "out of memory";
	if (p->error == YAML_READER_ERROR) {
		/* Reader errors (bad encoding) carry a byte offset, not a mark. */
		line = 1;
		for (size_t i = 0; i < len && i < p->problem_offset; i++)
			line += buf[i] == '\n';
	}
	if (p->context)
		seterr(err, errlen, "%s:%zu: invalid YAML: %s (%s at line %zu)", path, line,
		       problem, p->context, p->context_mark.line + 1);
	else
		seterr(err, errlen, "%s:%zu: invalid YAML: %s", path, line, problem);
	return -1;
}

/* ---- loading: node helpers ---- */

static yaml_node_t *node(struct lctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};

	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       in_list(sval(n), nulls);
}

/* Returns the scalar's text, or NULL with an error set. */
static const char *scalar(struct lctx *c, const yaml_node_t *n, const char *pfx, const char *key)
{
	if (n->type != YAML_SCALAR_NODE) {
		lerr(c, n, "%s\"%s\" must be a scalar", pfx, key);
		return NULL;
	}
	if (strlen(sval(n)) != n->data.scalar.length) {
		lerr(c, n, "%s\"%s\" contains a NUL byte", pfx, key);
		return NULL;
	}
	return sval(n);
}

static int dup_scalar(struct lctx *c, const yaml_node_t *n, const char *pfx, const char *key,
		      char **out)
{
	const char *v = scalar(c, n, pfx, key);

	if (!v)
		return -1;
	*out = strdup(v);
	return *out ? 0 : lerr(c, n, "out of memory");
}

static int check_key(struct lctx *c, yaml_node_pair_t *p, yaml_node_pair_t *first,
		     const char *const *allowed, const char *pfx)
{
	yaml_node_t *k = node(c, p->key);

	if (k->type != YAML_SCALAR_NODE)
		return lerr(c, k, "%smapping keys must be scalars", pfx);
	if (!scalar(c, k, pfx, "key"))
		return -1;
	if (allowed && !in_list(sval(k), allowed))
		return lerr(c, k, "%sunknown key \"%s\"", pfx, ESC(sval(k)));
	for (; first < p; first++) {
		const yaml_node_t *o = node(c, first->key);

		if (o->type == YAML_SCALAR_NODE && !strcmp(sval(o), sval(k)))
			return lerr(c, k, "%sduplicate key \"%s\" (first at line %zu)", pfx,
				    ESC(sval(k)), o->start_mark.line + 1);
	}
	return 0;
}

/* Every mapping goes through here: keys must be scalars, known (if allowed is given), unique. */
static int check_map(struct lctx *c, yaml_node_t *map, const char *const *allowed, const char *pfx)
{
	yaml_node_pair_t *p;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
		if (check_key(c, p, map->data.mapping.pairs.start, allowed, pfx))
			return -1;
	return 0;
}

static yaml_node_t *map_get(struct lctx *c, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node(c, p->key);

		if (k->type == YAML_SCALAR_NODE && !strcmp(sval(k), key))
			return node(c, p->value);
	}
	return NULL;
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t map_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static int get_seconds(struct lctx *c, const yaml_node_t *n, const char *pfx, const char *key,
		       bool zero_ok, double *out)
{
	const char *v = scalar(c, n, pfx, key);
	char *end;

	if (!v)
		return -1;
	/* strtod alone would take "inf", "nan" and hex. */
	if (!*v || strspn(v, "0123456789.eE+-") != strlen(v))
		goto bad;
	errno = 0;
	*out = strtod(v, &end);
	if (*end || errno == ERANGE || !isfinite(*out) || *out < 0 || (!zero_ok && *out == 0))
		goto bad;
	if (*out > RB_TIMEOUT_MAX)
		return lerr(c, n, "%s\"%s\" must be at most %d seconds (365 days), got \"%s\"", pfx,
			    key, RB_TIMEOUT_MAX, ESC(v));
	return 0;
bad:
	return lerr(c, n, "%s\"%s\" must be a number of seconds %s, got \"%s\"", pfx, key,
		    zero_ok ? ">= 0" : "> 0", ESC(v));
}

static int get_bool(struct lctx *c, const yaml_node_t *n, const char *pfx, const char *key,
		    bool *out)
{
	const char *v = scalar(c, n, pfx, key);

	if (!v)
		return -1;
	if (!parse_bool(v, out))
		return lerr(c, n, "%s\"%s\" must be true or false, got \"%s\"", pfx, key, ESC(v));
	return 0;
}

static bool is_builtin(const char *name)
{
	return in_list(name, builtin_params);
}

static const struct rb_param *find_param(const struct runbook *rb, const char *name)
{
	size_t i;

	for (i = 0; i < rb->nparams; i++)
		if (!strcmp(rb->params[i].name, name))
			return &rb->params[i];
	return NULL;
}

static int ref_check(void *ctx, const char *name, enum qstate q, struct sbuf *out, char *msg,
		     size_t msglen)
{
	(void)out;
	if (!is_builtin(name) && !find_param(ctx, name)) {
		seterr(msg, msglen, "unknown param \"%s\" (not declared under params)", name);
		return -1;
	}
	return q == Q_SQ ? sq_error(name, msg, msglen) : 0;
}

static int check_tmpl(struct lctx *c, const yaml_node_t *n, const char *pfx, const char *key,
		      const char *t, bool shell)
{
	char msg[RB_ERRLEN];

	if (scan_template(t, shell, ref_check, c->rb, NULL, msg, sizeof(msg)))
		return lerr(c, n, "%s%s: %s", pfx, key, msg);
	return 0;
}

/* A template field: a scalar whose {{refs}} must all be known. */
static int get_tmpl(struct lctx *c, const yaml_node_t *n, const char *pfx, const char *key,
		    bool shell, char **out)
{
	if (dup_scalar(c, n, pfx, key, out))
		return -1;
	return check_tmpl(c, n, pfx, key, *out, shell);
}

/* ---- loading: params ---- */

static const char *const param_keys[] = {"type",   "default", "required",    "secret",
					 "values", "pattern", "description", NULL};

static int param_type(struct lctx *c, const yaml_node_t *n, const char *pfx, struct rb_param *p)
{
	static const char *const names[] = {"string", "int", "bool", "path", "enum", NULL};
	const char *v = scalar(c, n, pfx, "type");
	int i;

	if (!v)
		return -1;
	for (i = 0; names[i]; i++) {
		if (!strcmp(v, names[i])) {
			p->type = (enum rb_ptype)i;
			return 0;
		}
	}
	return lerr(c, n, "%sunknown type \"%s\" (string, int, bool, path or enum)", pfx, ESC(v));
}

static int param_values(struct lctx *c, yaml_node_t *n, const char *pfx, struct rb_param *p)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE || !seq_len(n))
		return lerr(c, n, "%s\"values\" must be a non-empty list", pfx);
	p->values = calloc(seq_len(n), sizeof(*p->values));
	if (!p->values)
		return lerr(c, n, "out of memory");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
		if (dup_scalar(c, node(c, *it), pfx, "values", &p->values[p->nvalues++]))
			return -1;
	return 0;
}

static int param_pattern(struct lctx *c, const yaml_node_t *n, const char *pfx, struct rb_param *p)
{
	char why[RB_ERRLEN];
	regex_t re;

	if (dup_scalar(c, n, pfx, "pattern", &p->pattern))
		return -1;
	if (compile_pattern(p->pattern, &re, why, sizeof(why)))
		return lerr(c, n, "%s%s", pfx, why);
	regfree(&re);
	return 0;
}

static int param_default(struct lctx *c, const yaml_node_t *n, const char *pfx, struct rb_param *p)
{
	char why[RB_ERRLEN];
	const char *v = scalar(c, n, pfx, "default");

	if (!v)
		return -1;
	if (is_null(n))
		return lerr(c, n, "%s\"default\" is null; quote it or leave it out", pfx);
	if (check_value(p, v, &p->def, why, sizeof(why))) {
		if (p->secret)
			return lerr(c, n, "%sdefault %s", pfx, why);
		return lerr(c, n, "%sdefault \"%s\" %s", pfx, ESC(v), why);
	}
	return 0;
}

static int param_spec(struct lctx *c, yaml_node_t *spec, const char *pfx, struct rb_param *p)
{
	yaml_node_t *n;

	if (check_map(c, spec, param_keys, pfx))
		return -1;
	if ((n = map_get(c, spec, "type")) && param_type(c, n, pfx, p))
		return -1;
	if ((n = map_get(c, spec, "required")) && get_bool(c, n, pfx, "required", &p->required))
		return -1;
	if ((n = map_get(c, spec, "secret")) && get_bool(c, n, pfx, "secret", &p->secret))
		return -1;
	if ((n = map_get(c, spec, "description")) &&
	    dup_scalar(c, n, pfx, "description", &p->description))
		return -1;
	n = map_get(c, spec, "values");
	if (n && p->type != RB_ENUM)
		return lerr(c, n, "%s\"values\" is only allowed with type enum", pfx);
	if (!n && p->type == RB_ENUM)
		return lerr(c, spec, "%stype enum needs a non-empty \"values\" list", pfx);
	if (n && param_values(c, n, pfx, p))
		return -1;
	if ((n = map_get(c, spec, "pattern")) && param_pattern(c, n, pfx, p))
		return -1;
	n = map_get(c, spec, "default");
	if (n && p->required)
		return lerr(c, n, "%sa required param cannot have a default", pfx);
	return n ? param_default(c, n, pfx, p) : 0;
}

static int load_param(struct lctx *c, yaml_node_pair_t *pair, struct rb_param *p)
{
	yaml_node_t *k = node(c, pair->key), *spec = node(c, pair->value);
	char pfx[RB_ESCLEN + 16];
	const char *name = sval(k);

	p->line = (int)k->start_mark.line + 1;
	if (!valid_pname(name, strlen(name)))
		return lerr(c, k, "param \"%s\": invalid name (want [A-Za-z_][A-Za-z0-9_]{0,63})",
			    ESC(name));
	if (is_builtin(name))
		return lerr(c, k, "param \"%s\": is a builtin and cannot be declared", name);
	p->name = strdup(name);
	if (!p->name)
		return lerr(c, k, "out of memory");
	snprintf(pfx, sizeof(pfx), "param \"%s\": ", name);
	if (is_null(spec))
		return 0;
	if (spec->type != YAML_MAPPING_NODE)
		return lerr(c, spec, "%sspec must be a mapping", pfx);
	return param_spec(c, spec, pfx, p);
}

static int load_params(struct lctx *c, yaml_node_t *n)
{
	struct runbook *rb = c->rb;
	yaml_node_pair_t *pair;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return lerr(c, n, "\"params\" must be a mapping");
	if (check_map(c, n, NULL, "params: "))
		return -1;
	rb->params = calloc(map_len(n) + 1, sizeof(*rb->params));
	if (!rb->params)
		return lerr(c, n, "out of memory");
	for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++)
		if (load_param(c, pair, &rb->params[rb->nparams++]))
			return -1;
	return 0;
}

/* ---- loading: steps ---- */

static const char *const step_keys[] = {"name",	   "description", "run",	"argv",
					"cwd",	   "env",	  "run_as",	"timeout",
					"retries", "retry_delay", "on_failure", NULL};

static const struct rb_step *find_step(const struct runbook *rb, const char *name)
{
	size_t i;

	/* The step being loaded is counted but has no name yet. */
	for (i = 0; i < rb->nsteps; i++)
		if (rb->steps[i].name && !strcmp(rb->steps[i].name, name))
			return &rb->steps[i];
	for (i = 0; i < rb->nrollback; i++)
		if (rb->rollback[i].name && !strcmp(rb->rollback[i].name, name))
			return &rb->rollback[i];
	return NULL;
}

static int step_name(struct lctx *c, yaml_node_t *map, const char *list, size_t idx,
		     struct rb_step *s)
{
	yaml_node_t *n = map_get(c, map, "name");
	const struct rb_step *first;
	const char *v;

	if (!n)
		return lerr(c, map, "%s[%zu]: missing \"name\"", list, idx);
	v = scalar(c, n, "step: ", "name");
	if (!v)
		return -1;
	if (!valid_ident(v, RB_NAME_MAX))
		return lerr(c, n, "step \"%s\": invalid name (want [A-Za-z0-9._-], 1 to %d chars)",
			    ESC(v), RB_NAME_MAX);
	first = find_step(c->rb, v);
	if (first)
		return lerr(c, n, "step \"%s\": duplicate step name (first defined at line %d)", v,
			    first->line);
	s->name = strdup(v);
	return s->name ? 0 : lerr(c, n, "out of memory");
}

static int step_argv(struct lctx *c, yaml_node_t *n, const char *pfx, struct rb_step *s)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE || !seq_len(n))
		return lerr(c, n, "%s\"argv\" must be a non-empty list", pfx);
	s->argv = calloc(seq_len(n) + 1, sizeof(*s->argv));
	if (!s->argv)
		return lerr(c, n, "out of memory");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
		if (get_tmpl(c, node(c, *it), pfx, "argv", false, &s->argv[s->argc++]))
			return -1;
	if (!s->argv[0][0])
		return lerr(c, n, "%s\"argv\" has an empty program name", pfx);
	return 0;
}

static int step_cmd(struct lctx *c, yaml_node_t *map, const char *pfx, struct rb_step *s)
{
	yaml_node_t *run = map_get(c, map, "run"), *argv = map_get(c, map, "argv");

	if (run && argv)
		return lerr(c, argv, "%shas both \"run\" and \"argv\"; use one", pfx);
	if (!run && !argv)
		return lerr(c, map, "%sneeds \"run\" or \"argv\"", pfx);
	if (argv)
		return step_argv(c, argv, pfx, s);
	if (get_tmpl(c, run, pfx, "run", true, &s->run))
		return -1;
	if (!s->run[strspn(s->run, " \t\n")])
		return lerr(c, run, "%s\"run\" is empty", pfx);
	return 0;
}

static int step_env_item(struct lctx *c, yaml_node_pair_t *pair, const char *pfx, struct rb_kv *kv)
{
	yaml_node_t *k = node(c, pair->key), *v = node(c, pair->value);

	if (!valid_envname(sval(k)))
		return lerr(c, k, "%senv: invalid variable name \"%s\"", pfx, ESC(sval(k)));
	/* RUNSEAL_* carries params and run identity to the step; a runbook must not spoof it. */
	if (!strncmp(sval(k), "RUNSEAL_", 8))
		return lerr(c, k, "%senv: \"%s\" is reserved for runseal", pfx, sval(k));
	kv->key = strdup(sval(k));
	if (!kv->key)
		return lerr(c, k, "out of memory");
	if (is_null(v)) {
		kv->value = strdup("");
		return kv->value ? 0 : lerr(c, v, "out of memory");
	}
	return get_tmpl(c, v, pfx, kv->key, false, &kv->value);
}

static int step_env(struct lctx *c, yaml_node_t *n, const char *pfx, struct rb_step *s)
{
	yaml_node_pair_t *pair;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return lerr(c, n, "%s\"env\" must be a mapping", pfx);
	if (check_map(c, n, NULL, pfx))
		return -1;
	s->env = calloc(map_len(n) + 1, sizeof(*s->env));
	if (!s->env)
		return lerr(c, n, "out of memory");
	for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++)
		if (step_env_item(c, pair, pfx, &s->env[s->nenv++]))
			return -1;
	return 0;
}

static int step_run_as(struct lctx *c, const yaml_node_t *n, const char *pfx, struct rb_step *s)
{

	if (dup_scalar(c, n, pfx, "run_as", &s->run_as))
		return -1;
	if (!valid_ident(s->run_as, RB_USER_MAX) || s->run_as[0] == '-')
		return lerr(c, n, "%s\"run_as\": invalid user name \"%s\"", pfx, ESC(s->run_as));
	/* Found now, not when the step starts after others have already changed things. */
	if (!getpwnam(s->run_as))
		return lerr(c, n, "%s\"run_as\": no user \"%s\" on this host", pfx, s->run_as);
	return 0;
}

static int step_retries(struct lctx *c, const yaml_node_t *n, const char *pfx, struct rb_step *s)
{
	const char *v = scalar(c, n, pfx, "retries");
	unsigned long long r;

	if (!v)
		return -1;
	errno = 0;
	r = strtoull(v, NULL, 10);
	if (!*v || strspn(v, "0123456789") != strlen(v) || errno == ERANGE || r > UINT_MAX)
		return lerr(c, n, "%s\"retries\" must be an integer >= 0, got \"%s\"", pfx, ESC(v));
	s->retries = (unsigned)r;
	return 0;
}

static int step_on_failure(struct lctx *c, const yaml_node_t *n, const char *pfx, bool rollback,
			   struct rb_step *s)
{
	static const char *const names[] = {"abort", "continue", "rollback", NULL};
	const char *v = scalar(c, n, pfx, "on_failure");
	int i;

	if (!v)
		return -1;
	for (i = 0; names[i]; i++)
		if (!strcmp(v, names[i]))
			break;
	if (!names[i] || (rollback && i == RB_ROLLBACK))
		return lerr(c, n, "%s\"on_failure\" must be %s, got \"%s\"", pfx,
			    rollback ? "abort or continue (in rollback)"
				     : "abort, continue or rollback",
			    ESC(v));
	s->on_failure = (enum rb_onfail)i;
	return 0;
}

static int step_opts(struct lctx *c, yaml_node_t *map, const char *pfx, bool rollback,
		     struct rb_step *s)
{
	yaml_node_t *n;

	if ((n = map_get(c, map, "description")) && !is_null(n) &&
	    dup_scalar(c, n, pfx, "description", &s->description))
		return -1;
	if ((n = map_get(c, map, "cwd")) && get_tmpl(c, n, pfx, "cwd", false, &s->cwd))
		return -1;
	if ((n = map_get(c, map, "env")) && step_env(c, n, pfx, s))
		return -1;
	if ((n = map_get(c, map, "run_as")) && step_run_as(c, n, pfx, s))
		return -1;
	if ((n = map_get(c, map, "timeout")) &&
	    get_seconds(c, n, pfx, "timeout", false, &s->timeout))
		return -1;
	if ((n = map_get(c, map, "retries")) && step_retries(c, n, pfx, s))
		return -1;
	if ((n = map_get(c, map, "retry_delay")) &&
	    get_seconds(c, n, pfx, "retry_delay", true, &s->retry_delay))
		return -1;
	if ((n = map_get(c, map, "on_failure")) && step_on_failure(c, n, pfx, rollback, s))
		return -1;
	return 0;
}

static int load_step(struct lctx *c, yaml_node_t *map, const char *list, size_t idx, double timeout,
		     struct rb_step *s)
{
	char pfx[RB_NAME_MAX + 16];

	s->line = (int)map->start_mark.line + 1;
	s->timeout = timeout;
	s->retry_delay = 1;
	s->on_failure = RB_ABORT;
	if (map->type != YAML_MAPPING_NODE)
		return lerr(c, map, "%s[%zu] must be a mapping", list, idx);
	if (step_name(c, map, list, idx, s))
		return -1;
	snprintf(pfx, sizeof(pfx), "step \"%s\": ", s->name);
	if (check_map(c, map, step_keys, pfx) || step_cmd(c, map, pfx, s))
		return -1;
	return step_opts(c, map, pfx, !strcmp(list, "rollback"), s);
}

static int load_steps(struct lctx *c, yaml_node_t *n, const char *list, double timeout,
		      struct rb_step **steps, size_t *nsteps)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE)
		return lerr(c, n, "\"%s\" must be a list of steps", list);
	*steps = calloc(seq_len(n) + 1, sizeof(**steps));
	if (!*steps)
		return lerr(c, n, "out of memory");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		(*nsteps)++;
		if (load_step(c, node(c, *it), list, *nsteps - 1, timeout, &(*steps)[*nsteps - 1]))
			return -1;
	}
	return 0;
}

/* ---- loading: top level ---- */

static const char *const top_keys[] = {"name",	"description", "timeout", "params",
				       "steps", "rollback",    NULL};

static int load_header(struct lctx *c, yaml_node_t *root, double *timeout)
{
	struct runbook *rb = c->rb;
	yaml_node_t *n = map_get(c, root, "name");

	if (!n)
		return lerr(c, root, "missing \"name\"");
	if (dup_scalar(c, n, "", "name", &rb->name))
		return -1;
	if (!valid_ident(rb->name, RB_NAME_MAX))
		return lerr(c, n,
			    "invalid runbook name \"%s\" (want [A-Za-z0-9._-], 1 to %d chars)",
			    ESC(rb->name), RB_NAME_MAX);
	n = map_get(c, root, "description");
	if (n && !is_null(n) && dup_scalar(c, n, "", "description", &rb->description))
		return -1;
	n = map_get(c, root, "timeout");
	return n ? get_seconds(c, n, "", "timeout", false, timeout) : 0;
}

static int load_doc(struct lctx *c)
{
	yaml_node_t *root = yaml_document_get_root_node(c->doc), *n;
	struct runbook *rb = c->rb;
	double timeout = 0;

	if (!root)
		return lerr(c, NULL, "empty runbook");
	if (root->type != YAML_MAPPING_NODE)
		return lerr(c, root, "top level must be a mapping");
	if (check_map(c, root, top_keys, "") || load_header(c, root, &timeout))
		return -1;
	if ((n = map_get(c, root, "params")) && load_params(c, n))
		return -1;
	n = map_get(c, root, "steps");
	if (!n)
		return lerr(c, root, "missing \"steps\"");
	if (load_steps(c, n, "steps", timeout, &rb->steps, &rb->nsteps))
		return -1;
	if (!rb->nsteps)
		return lerr(c, n, "\"steps\" must not be empty");
	n = map_get(c, root, "rollback");
	if (n && !is_null(n) &&
	    load_steps(c, n, "rollback", timeout, &rb->rollback, &rb->nrollback))
		return -1;
	return 0;
}

/* The document is built from one pass over the event stream, which is also where what the
 * document API would hide is refused: aliases (no alias bombs), tags (a `!vault` would be
 * silently read as a string), more than one document, and nesting deeper than any runbook
 * needs (libyaml's scanner slows down quadratically with depth). */
struct builder {
	struct lctx *c;
	yaml_document_t *doc;
	int stack[RB_MAX_DEPTH]; /* open sequences and mappings */
	int key[RB_MAX_DEPTH];	 /* a mapping's key waiting for its value, 0 when none */
	int depth, docs;
};

static int bfail(struct builder *b, const yaml_event_t *ev, const char *what)
{
	seterr(b->c->err, b->c->errlen, "%s:%zu: %s", b->c->path, ev->start_mark.line + 1, what);
	return -1;
}

static const yaml_char_t *event_tag(const yaml_event_t *ev)
{
	if (ev->type == YAML_SCALAR_EVENT)
		return ev->data.scalar.tag;
	if (ev->type == YAML_SEQUENCE_START_EVENT)
		return ev->data.sequence_start.tag;
	if (ev->type == YAML_MAPPING_START_EVENT)
		return ev->data.mapping_start.tag;
	return NULL;
}

/* Hangs a finished node under the open container, as an item, a key or a value. */
static int attach(struct builder *b, int id)
{
	int top, ok = 1;

	if (!b->depth)
		return 0; /* the root: node 1 */
	top = b->stack[b->depth - 1];
	if (node(b->c, top)->type == YAML_SEQUENCE_NODE)
		ok = yaml_document_append_sequence_item(b->doc, top, id);
	else if (!b->key[b->depth - 1])
		b->key[b->depth - 1] = id;
	else {
		ok = yaml_document_append_mapping_pair(b->doc, top, b->key[b->depth - 1], id);
		b->key[b->depth - 1] = 0;
	}
	return ok ? 0 : -1;
}

static int add_node(struct builder *b, const yaml_event_t *ev)
{
	yaml_node_t *n;
	int id;

	if (ev->type == YAML_SCALAR_EVENT)
		id = yaml_document_add_scalar(b->doc, NULL, ev->data.scalar.value,
					      (int)ev->data.scalar.length, ev->data.scalar.style);
	else if (ev->type == YAML_SEQUENCE_START_EVENT)
		id = yaml_document_add_sequence(b->doc, NULL, ev->data.sequence_start.style);
	else
		id = yaml_document_add_mapping(b->doc, NULL, ev->data.mapping_start.style);
	if (!id || attach(b, id) < 0)
		return bfail(b, ev, "out of memory");
	/* Error messages name lines: keep the parser's marks on the node. */
	n = node(b->c, id);
	n->start_mark = ev->start_mark;
	n->end_mark = ev->end_mark;
	if (ev->type != YAML_SCALAR_EVENT) {
		if (b->depth == RB_MAX_DEPTH)
			return bfail(b, ev, "nested deeper than " RB_STR(RB_MAX_DEPTH) " levels");
		b->key[b->depth] = 0;
		b->stack[b->depth++] = id;
	}
	return 0;
}

static int build_event(struct builder *b, const yaml_event_t *ev)
{
	const yaml_char_t *tag = event_tag(ev);

	if (tag)
		return bfail(b, ev, "YAML tags are not supported");
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return bfail(b, ev, "aliases are not supported");
	case YAML_DOCUMENT_START_EVENT:
		return ++b->docs > 1 ? bfail(b, ev, "only one YAML document is allowed") : 0;
	case YAML_SCALAR_EVENT:
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return add_node(b, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		b->depth--;
		return 0;
	default:
		return 0;
	}
}

/* Builds the document from the events; 0, or -1 with the error set. */
static int build_doc(struct lctx *c, yaml_parser_t *p, const unsigned char *buf, size_t len)
{
	struct builder b = {.c = c, .doc = c->doc};
	yaml_event_type_t type;
	yaml_event_t ev;
	int r = 0;

	do {
		if (!yaml_parser_parse(p, &ev))
			return yaml_fail(c->path, p, buf, len, c->err, c->errlen);
		type = ev.type;
		r = build_event(&b, &ev);
		yaml_event_delete(&ev);
	} while (!r && type != YAML_STREAM_END_EVENT);
	return r;
}

static int parse_yaml(struct lctx *c, const unsigned char *buf, size_t len)
{
	yaml_parser_t p;
	yaml_document_t doc;
	int r;

	if (!yaml_parser_initialize(&p))
		return lerr(c, NULL, "out of memory");
	if (!yaml_document_initialize(&doc, NULL, NULL, NULL, 1, 1)) {
		yaml_parser_delete(&p);
		return lerr(c, NULL, "out of memory");
	}
	yaml_parser_set_input_string(&p, buf, len);
	c->doc = &doc;
	r = build_doc(c, &p, buf, len);
	if (!r)
		r = load_doc(c);
	c->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return r;
}

static int set_identity(struct runbook *rb, const char *path, const unsigned char *buf, size_t len,
			char *err, size_t errlen)
{
	char *abs;

	rb->path = strdup(path);
	abs = realpath(path, NULL);
	if (!abs) {
		seterr(err, errlen, "%s: cannot resolve path: %s", path, strerror(errno));
		return -1;
	}
	rb->dir = strdup(dirname(abs));
	free(abs);
	if (!rb->path || !rb->dir || !EVP_Digest(buf, len, rb->sha256, NULL, EVP_sha256(), NULL)) {
		seterr(err, errlen, "%s: out of memory", path);
		return -1;
	}
	return 0;
}

int runbook_load(const char *path, struct runbook *rb, char *err, size_t errlen)
{
	struct lctx c = {.path = path, .rb = rb, .err = err, .errlen = errlen};
	unsigned char *buf;
	size_t len;
	int r;

	memset(rb, 0, sizeof(*rb));
	if (read_file(path, &buf, &len, err, errlen))
		return -1;
	r = set_identity(rb, path, buf, len, err, errlen);
	if (!r)
		r = parse_yaml(&c, buf, len);
	free(buf);
	if (r)
		runbook_free(rb);
	return r;
}

static void free_step(struct rb_step *s)
{
	size_t i;

	free(s->name);
	free(s->description);
	free(s->run);
	for (i = 0; i < s->argc; i++)
		free(s->argv[i]);
	free(s->argv);
	free(s->cwd);
	for (i = 0; i < s->nenv; i++) {
		free(s->env[i].key);
		free(s->env[i].value);
	}
	free(s->env);
	free(s->run_as);
}

static void free_param(struct rb_param *p)
{
	size_t i;

	free(p->name);
	free(p->description);
	free(p->def);
	for (i = 0; i < p->nvalues; i++)
		free(p->values[i]);
	free(p->values);
	free(p->pattern);
}

void runbook_free(struct runbook *rb)
{
	size_t i;

	if (!rb)
		return;
	for (i = 0; i < rb->nparams; i++)
		free_param(&rb->params[i]);
	for (i = 0; i < rb->nsteps; i++)
		free_step(&rb->steps[i]);
	for (i = 0; i < rb->nrollback; i++)
		free_step(&rb->rollback[i]);
	free(rb->params);
	free(rb->steps);
	free(rb->rollback);
	free(rb->path);
	free(rb->dir);
	free(rb->name);
	free(rb->description);
	memset(rb, 0, sizeof(*rb));
}

/* ---- binding ---- */

static int bind_one(const struct runbook *rb, const char *item, size_t idx, struct rb_binding *b,
		    char *err, size_t errlen)
{
	const char *eq = strchr(item, '=');
	const struct rb_param *p;
	char name[RB_NAME_MAX + 1], why[RB_ERRLEN];
	size_t n, i;

	/* The item may be a mistyped secret: never echo it. */
	if (!eq) {
		seterr(err, errlen, "param argument %zu: expected name=value", idx + 1);
		return -1;
	}
	n = (size_t)(eq - item);
	if (n > RB_NAME_MAX)
		n = RB_NAME_MAX;
	memcpy(name, item, n);
	name[n] = '\0';
	if (is_builtin(name)) {
		seterr(err, errlen, "param \"%s\" is set by runseal and cannot be given", name);
		return -1;
	}
	p = (size_t)(eq - item) <= RB_NAME_MAX ? find_param(rb, name) : NULL;
	if (!p) {
		seterr(err, errlen, "unknown param \"%s\"", ESC(name));
		return -1;
	}
	i = (size_t)(p - rb->params);
	if (b->values[i]) {
		seterr(err, errlen, "param \"%s\" given twice", name);
		return -1;
	}
	if (!check_value(p, eq + 1, &b->values[i], why, sizeof(why)))
		return 0;
	if (p->secret)
		seterr(err, errlen, "param \"%s\": value %s", name, why);
	else
		seterr(err, errlen, "param \"%s\": value \"%s\" %s", name, ESC(eq + 1), why);
	return -1;
}

static int bind_missing(const struct runbook *rb, struct rb_binding *b, char *err, size_t errlen)
{
	struct sbuf missing = {0};
	size_t i, count = 0;

	for (i = 0; i < rb->nparams; i++) {
		if (b->values[i])
			continue;
		if (rb->params[i].required) {
			sb_puts(&missing, count++ ? ", \"" : "\"");
			sb_puts(&missing, rb->params[i].name);
			sb_puts(&missing, "\"");
			continue;
		}
		b->values[i] = strdup(rb->params[i].def ? rb->params[i].def : "");
		if (!b->values[i])
			missing.oom = true;
	}
	if (count)
		seterr(err, errlen, "missing required param%s %s", count > 1 ? "s" : "",
		       missing.oom ? "(out of memory)" : missing.p);
	else if (missing.oom)
		seterr(err, errlen, "out of memory");
	free(missing.p);
	return count || missing.oom ? -1 : 0;
}

static int bind_alloc(const struct runbook *rb, struct rb_binding *b)
{
	size_t i, n = rb->nparams;

	b->names = calloc(n + 2, sizeof(*b->names));
	b->values = calloc(n + 2, sizeof(*b->values));
	b->secret = calloc(n + 2, sizeof(*b->secret));
	if (!b->names || !b->values || !b->secret)
		return -1;
	b->n = n + 2;
	for (i = 0; i < n; i++) {
		b->names[i] = strdup(rb->params[i].name);
		b->secret[i] = rb->params[i].secret;
		if (!b->names[i])
			return -1;
	}
	b->names[n] = strdup("runbook_dir");
	b->values[n] = strdup(rb->dir ? rb->dir : "");
	b->names[n + 1] = strdup("run_id");
	b->values[n + 1] = strdup("");
	return b->names[n] && b->values[n] && b->names[n + 1] && b->values[n + 1] ? 0 : -1;
}

int runbook_bind(const struct runbook *rb, char *const *kv, size_t nkv, struct rb_binding *b,
		 char *err, size_t errlen)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	if (bind_alloc(rb, b)) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < nkv; i++)
		if (bind_one(rb, kv[i], i, b, err, errlen))
			goto fail;
	if (bind_missing(rb, b, err, errlen))
		goto fail;
	return 0;
fail:
	rb_binding_free(b);
	return -1;
}

void rb_binding_free(struct rb_binding *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->n; i++) {
		free(b->names[i]);
		if (b->values[i] && b->secret[i])
			explicit_bzero(b->values[i], strlen(b->values[i]));
		free(b->values[i]);
	}
	free(b->names);
	free(b->values);
	free(b->secret);
	memset(b, 0, sizeof(*b));
}

const char *rb_binding_get(const struct rb_binding *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (!strcmp(b->names[i], name))
			return b->values[i];
	return NULL;
}

static int binding_grow(struct rb_binding *b)
{
	char **names = realloc(b->names, (b->n + 1) * sizeof(*names)), **values;
	bool *secret;

	if (!names)
		return -1;
	b->names = names;
	values = realloc(b->values, (b->n + 1) * sizeof(*values));
	if (!values)
		return -1;
	b->values = values;
	secret = realloc(b->secret, (b->n + 1) * sizeof(*secret));
	if (!secret)
		return -1;
	b->secret = secret;
	b->names[b->n] = NULL;
	b->values[b->n] = NULL;
	b->secret[b->n] = false;
	return 0;
}

int rb_binding_set(struct rb_binding *b, const char *name, const char *value)
{
	char *v = strdup(value);
	size_t i;

	if (!v)
		return -1;
	for (i = 0; i < b->n; i++) {
		if (!strcmp(b->names[i], name)) {
			if (b->values[i] && b->secret[i])
				explicit_bzero(b->values[i], strlen(b->values[i]));
			free(b->values[i]);
			b->values[i] = v;
			return 0;
		}
	}
	if (binding_grow(b)) {
		free(v);
		return -1;
	}
	b->names[b->n] = strdup(name);
	if (!b->names[b->n]) {
		free(v);
		return -1;
	}
	b->values[b->n++] = v;
	return 0;
}
