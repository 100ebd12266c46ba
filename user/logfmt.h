/* logfmt: the sealed log's entry syntax (docs/FORMAT.md), shared by the sealer and the
 * verifier. Pure and bounded: safe on arbitrary bytes, which is what a tampered log is. */
#ifndef RUNSEAL_LOGFMT_H
#define RUNSEAL_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_FORMAT	"runseal-log/1"
#define LOG_SEGMENT_MAX (256u << 20) /* bytes of one segment, uncompressed */
#define LOG_LINE_MAX	(1u << 20)

/* h = SHA-256(0x00 || line), line without its '\n'. */
void entry_hash(const char *line, size_t len, unsigned char out[32]);

/* Parses the fixed prefix {"seq":N,"prev":"<64 hex>", and returns the offset of the next
 * field, or -1 when the line does not start exactly so. */
long entry_prefix(const char *line, size_t len, uint64_t *seq, unsigned char prev[32]);

/* Top-level fields of an entry (nested objects and arrays are skipped, escapes decoded).
 * Return 0, or -1 when the key is absent, the value has another type, or the line is not a
 * well-formed JSON object. */
int entry_get_str(const char *line, size_t len, const char *key, char *out, size_t outlen);
int entry_get_u64(const char *line, size_t len, const char *key, uint64_t *v);
int entry_get_bool(const char *line, size_t len, const char *key, bool *v);
/* Checks that the line is one well-formed JSON object (depth-bounded). */
bool entry_is_json(const char *line, size_t len);

/* "2026-11-27T20:34:47.123456789Z" to Unix nanoseconds; -1 when malformed. */
int parse_time(const char *s, size_t len, uint64_t *ns);

/* zlib (RFC 1950) whole-buffer helpers; inflate refuses to grow past max. */
int z_deflate(const char *in, size_t len, unsigned char **out, size_t *outlen);
int z_inflate(const unsigned char *in, size_t len, size_t max, char **out, size_t *outlen);

/* Reads a segment file (decompressing a .z one) into a malloc'd buffer of at most
 * LOG_SEGMENT_MAX bytes. */
int segment_read(const char *path, char **buf, size_t *len, char *err, size_t errlen);

#endif
