/* cli/common: what the commands that read a log share: the log and key options, finding
 * the run, reading it through logread, and writing an output file. */
#ifndef RUNSEAL_CLI_COMMON_H
#define RUNSEAL_CLI_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "logread.h"
#include "sealer.h"
#include "report/model.h"
#include "report/runs.h"

enum { OPT_C_PUB = 300, OPT_C_KEYDIR };

#define CLI_LOG_OPTIONS                                                                            \
	{"pub", required_argument, NULL, OPT_C_PUB},                                               \
	{                                                                                          \
		"key-dir", required_argument, NULL, OPT_C_KEYDIR                                   \
	}

#define CLI_LOG_HELP                                                                               \
	"      --pub FILE      root.pub to trust (default KEYDIR/root.pub; a bundle's own)\n"      \
	"      --key-dir DIR   where root.pub and epochs.pub are (default /etc/runseal)\n"

struct cli_log {
	const char *path, *pub, *key_dir;
	const char *cmd; /* the command reading, for the daemon's read record (NULL: none) */
};

/* Takes --pub/--key-dir; returns true when c was one of them. */
bool cli_log_opt(struct cli_log *l, int c, const char *arg);

/* getopt_long for a command that reads a log: takes --pub/--key-dir into l itself and
 * returns the command's own options one by one, then -1. At -1 *stop is -1 when the
 * options are all read, 0 after -h (usage on stdout) and 2 after a bad option (usage on
 * stderr): the command returns *stop then. The caller resets optind before the first call. */
int cli_getopt(int argc, char **argv, const char *sopts, const struct option *lopts,
	       const char *usage, struct cli_log *l, int *stop);

#define CLI_OTHERS_MAX 100

/* One run, read and modelled, and the other runs a command compares it with. */
struct cli_run {
	struct run_list runs;
	const struct run_sum *sum;
	struct logread *r;
	struct m_run m;
	const struct run_sum *osum[CLI_OTHERS_MAX];
	struct m_run other[CLI_OTHERS_MAX];
	size_t nother;
};

/* Picks the other runs to read with run sum (into cr->osum, cr->nother); returns 0, or 2
 * after printing why not. */
typedef int (*cli_others_fn)(struct cli_run *cr, void *ctx);

/* Verifies the log, finds run arg and builds its model; prints the error and returns 2.
 * The log is verified once, while its runs are listed; then only the segments that hold
 * the records of the run and of the others (which pick, NULL: none, chose from that list)
 * are read again, from the links that verification trusted. */
int cli_open_run(struct cli_run *cr, const struct cli_log *l, const char *arg);
int cli_open_runs(struct cli_run *cr, const struct cli_log *l, const char *arg, cli_others_fn pick,
		  void *ctx);
void cli_close_run(struct cli_run *cr);
/* A cli_others_fn's common case: run arg is the one other run; on an unknown run prints
 * "runseal: WHAT<why>" and returns 2. */
int cli_pick_other(struct cli_run *cr, const char *arg, const char *what);
/* Writes data to path ("-" or NULL: stdout) through a temporary file and rename, mode 0600:
 * a report or bundle holds what the root-only log holds. */
int cli_write(const char *path, const char *data, size_t len);
/* Reading the log is itself evidence (PCI DSS 10.2.1.3): when a daemon answers on the
 * socket, it records that cmd read these runs of the log at path (none: all of it), and
 * who did, as the kernel says (SO_PEERCRED). When none answers, or it refuses, a note on
 * stderr says the read is not recorded; the command goes on either way. */
void cli_note_read(const char *cmd, const char *path, const char *const *runs, size_t n);
/* Prints what the sealer has to say (keys created, a crash recovered, a replica that
 * failed) on stderr, as "runseal: MESSAGE": the sealer_notice_fn of the commands that
 * write the log. */
void cli_notice(void *ctx, enum sealer_level level, const char *msg);
/* A note on stderr when the log did not verify (outputs still state it themselves). */
void cli_note_verify(const struct lr_verify *v, const char *path);

#endif
