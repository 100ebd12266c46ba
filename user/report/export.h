/* export: verified records as one JSON object per line for a SIEM: OCSF 1.1 events (Process
 * Activity 1007 for exec, fork and exit; File System Activity 1001 for open; Network
 * Activity 4001 for connect), Elastic Common Schema documents, or the log's own entries
 * (jsonl). Strings come from the log, already redacted before sealing, and are escaped by
 * the one JSON encoder. */
#ifndef RUNSEAL_EXPORT_H
#define RUNSEAL_EXPORT_H

#include <stdbool.h>

#include "json.h"
#include "logread.h"

enum export_fmt { EXPORT_OCSF, EXPORT_ECS, EXPORT_JSONL };

/* What every event carries from the log's context. */
struct export_ctx {
	char host[256]; /* from genesis or run_start */
};

/* Appends e's line(s) in format f; false when the format has nothing for e's kind (OCSF and
 * ECS carry kernel events and run/step records; log entries only in jsonl). */
bool export_entry(struct jbuf *b, const struct lr_ent *e, enum export_fmt f, struct export_ctx *c);

#endif
