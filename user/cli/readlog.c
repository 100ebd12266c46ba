/* Reading the log is recorded by the daemon (cli_note_read in cli/common.h). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common.h"
#include "daemon/client.h"

void cli_note_read(const char *cmd, const char *path, const char *const *runs, size_t n)
{
	struct rs_client c;
	char client[64];

	snprintf(client, sizeof(client), "runseal-%s " RUNSEAL_VERSION, cmd);
	if (rsc_open(&c, NULL, client) == 0) {
		char abs[PATH_MAX];

		rsc_begin(&c, "read");
		pe_str(&c.req, "command", cmd);
		pe_str(&c.req, "log", realpath(path, abs) ? abs : path);
		pe_strs(&c.req, "runs", runs, n);
		if (rsc_call(&c) == 0) {
			rsc_close(&c);
			return;
		}
	}
	if (!strcmp(c.code, "denied"))
		fprintf(stderr, "runseal %s: note: the daemon refused to record this read: %s\n",
			cmd, c.err);
	else
		fprintf(stderr, "runseal %s: note: this read is not recorded (%s)\n", cmd, c.err);
	rsc_close(&c);
}
