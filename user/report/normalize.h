/* normalize: the generated parts of paths and names, so that two routine runs of a
 * runbook compare equal: run ids and other UUIDs, numbers (pids, timestamps, counters),
 * long hex strings, and the random part of temporary names (mktemp's XXXXXX). */
#ifndef RUNSEAL_NORMALIZE_H
#define RUNSEAL_NORMALIZE_H

#include <stddef.h>

#include "json.h"

/* Appends the normalised form of s[0..n): UUIDs become <id>, hex runs of 8 or more <hex>,
 * digit runs #, a random-looking run of 6+ letters and digits after '.', '-' or '_' in a
 * name under a temporary directory (or starting "tmp") becomes <tmp>. */
void norm_text(struct jbuf *b, const char *s, size_t n);

#endif
