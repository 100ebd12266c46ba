/* verify: check a sealed log (and its replicas) against docs/FORMAT.md, and read it back
 * (show). Everything is checked from public material: root.pub and epochs.pub. */
#ifndef RUNSEAL_VERIFY_H
#define RUNSEAL_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_DIR_DEFAULT "/var/lib/runseal/log"

struct verify_opts {
	const char *log_dir;
	const char *pub;     /* root.pub; default <key_dir>/root.pub */
	const char *key_dir; /* where epochs.pub is; default KEYS_DIR_DEFAULT */
	const char *const *replicas;
	size_t nreplicas;
	bool json;   /* problems as JSON Lines */
	bool strict; /* warnings count as errors */
	bool quiet;  /* no output, only the result */
};

/* One verified entry, for show. */
typedef int (*verify_entry_fn)(void *ctx, const char *line, size_t len, uint64_t seq,
			       const unsigned char hash[32]);

/* Verifies; prints problems (and a summary) to stdout unless quiet; calls fn for each
 * entry that verified (in order) when fn is not NULL. Returns 0 when everything agrees, 1
 * when problems were found (or warnings with strict), 2 on usage or I/O errors. */
int verify_log(const struct verify_opts *o, verify_entry_fn fn, void *ctx);

/* `runseal verify` and `runseal show` argument handling and output. */
int verify_cmd(int argc, char **argv);
int show_cmd(int argc, char **argv);

#endif
