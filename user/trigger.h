/* trigger: who and what started a run, from the kernel and the process tree rather than
 * only from flags: the audit login uid and session (which survive sudo), sudo's variables,
 * the invoker's ancestry up to PID 1 (cron, sshd, a CI runner, Ansible...), the
 * controlling terminal, SSH_CONNECTION, and the caller's own --trigger NAME=VALUE pairs.
 * Written as the "trigger" object of run_start (docs/RECORDS.md). */
#ifndef RUNSEAL_TRIGGER_H
#define RUNSEAL_TRIGGER_H

#include <stdbool.h>
#include <stddef.h>

#include "record.h"

#define TRIGGER_DEPTH_MAX 64

/* Checks one --trigger argument: NAME=VALUE, NAME of letters, digits, '_', '-', '.'. */
bool trigger_arg_ok(const char *arg);
/* Adds "trigger":{...} to the record being built; given are NAME=VALUE strings. */
void rec_trigger(struct stream *s, const char *const *given, size_t ngiven);

#endif
