/* runbook: parse and validate a runbook YAML file, bind params, expand templates.
 *
 * Everything here is pure (no BPF, no root): a runbook is refused before anything runs,
 * with "file:line: message", when it is malformed.
 */
#ifndef RUNSEAL_RUNBOOK_H
#define RUNSEAL_RUNBOOK_H

#include <stdbool.h>
#include <stddef.h>

#define RB_ERRLEN 512
/* Longest timeout or retry_delay, in seconds (a year): milliseconds and nanoseconds of it fit
 * the timers' 64-bit counts. */
#define RB_TIMEOUT_MAX 31536000

enum rb_ptype { RB_STRING, RB_INT, RB_BOOL, RB_PATH, RB_ENUM };
enum rb_onfail { RB_ABORT, RB_CONTINUE, RB_ROLLBACK };

struct rb_param {
	char *name;
	char *description;
	enum rb_ptype type;
	char *def; /* default value, NULL if none */
	bool required;
	bool secret;
	char **values; /* enum values */
	size_t nvalues;
	char *pattern; /* POSIX ERE, must match the whole value */
	int line;
};

struct rb_kv {
	char *key;
	char *value; /* template */
};

struct rb_step {
	char *name;
	char *description;
	char *run;   /* shell template (sh -c), or NULL */
	char **argv; /* argv templates, or NULL; exactly one of run/argv is set */
	size_t argc;
	char *cwd; /* template or NULL */
	struct rb_kv *env;
	size_t nenv;
	char *run_as;	/* user name or NULL */
	double timeout; /* seconds, 0 = none */
	unsigned retries;
	double retry_delay; /* seconds */
	enum rb_onfail on_failure;
	int line;
};

struct runbook {
	char *path;
	char *dir; /* absolute directory of the runbook file: builtin param runbook_dir */
	char *name;
	char *description;
	unsigned char sha256[32]; /* of the file bytes as read */
	struct rb_param *params;
	size_t nparams;
	struct rb_step *steps;
	size_t nsteps;
	struct rb_step *rollback;
	size_t nrollback;
};

/* Values bound to every declared param (and the builtins), checked against type and pattern. */
struct rb_binding {
	char **names;
	char **values;
	bool *secret;
	size_t n;
};

int runbook_load(const char *path, struct runbook *rb, char *err, size_t errlen);
void runbook_free(struct runbook *rb);

/* kv: "name=value" strings from the command line. Unknown names, missing required params and
 * values that fail their type, enum or pattern are errors naming the param. */
int runbook_bind(const struct runbook *rb, char *const *kv, size_t nkv, struct rb_binding *b,
		 char *err, size_t errlen);
void rb_binding_free(struct rb_binding *b);
const char *rb_binding_get(const struct rb_binding *b, const char *name);
/* Sets (or adds, not secret) a binding after runbook_bind: the runner sets run_id this way.
 * Returns 0, or -1 when out of memory. */
int rb_binding_set(struct rb_binding *b, const char *name, const char *value);

/* Shell template: each {{name}} becomes a quoted reference to $RUNSEAL_PARAM_name, so that a
 * value is never parsed as shell syntax. Literal template (argv item, env value, cwd): each
 * {{name}} is replaced by the value itself. Both return malloc'd strings, NULL with err. */
char *rb_expand_shell(const char *tmpl, const struct rb_binding *b, char *err, size_t errlen);
char *rb_expand_literal(const char *tmpl, const struct rb_binding *b, char *err, size_t errlen);

#endif
