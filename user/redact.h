/* redact: keep secret param values and secret-looking environment values out of every record.
 * The log is immutable, so this happens before anything is written. */
#ifndef RUNSEAL_REDACT_H
#define RUNSEAL_REDACT_H

#include <stdbool.h>
#include <stddef.h>

struct redactor {
	char **names;  /* param name of each secret */
	char **values; /* the secrets and their encodings */
	size_t *lens;
	size_t n;
	char **env_patterns; /* case-insensitive substrings of env var names */
	size_t npatterns;
};

#define REDACT_DEFAULT_ENV_PATTERNS "SECRET,TOKEN,PASSWORD,PASSWD,KEY,CREDENTIAL"

void redact_init(struct redactor *r); /* with the default env patterns */
void redact_free(struct redactor *r);
/* Adds value and its encodings (hex, base64 and base64url at the three byte offsets, URL
 * encodings: docs/RECORDS.md lists them), each redacted as "[REDACTED:name]". */
int redact_add_secret(struct redactor *r, const char *name, const char *value);
int redact_set_env_patterns(struct redactor *r, const char *csv);
bool redact_env_name(const struct redactor *r, const char *name);

/* Returns a malloc'd copy of s[0..len) with every occurrence of a secret value replaced by
 * "[REDACTED:name]" (the longest secret wins where two overlap) and *outlen set, or NULL when
 * nothing matched (the caller then uses s as is). With truncated, s was cut by a length
 * limit: a tail of s that is a prefix (3 bytes or more) of a secret is redacted too. */
char *redact(const struct redactor *r, const char *s, size_t len, bool truncated, size_t *outlen);

#endif
