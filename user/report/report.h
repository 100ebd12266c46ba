/* report: the content of a run's report (header, verification, steps, what reviewers ask
 * for, controls), as a doc that render_md/html/json print. */
#ifndef RUNSEAL_REPORT_H
#define RUNSEAL_REPORT_H

#include "report/doc.h"
#include "report/model.h"

void report_build(struct doc *d, const struct m_run *m, const struct lr_verify *v);
/* The verification result in one line (ok or FAILED, entries, seals covering the run's
 * records, key ids), for outputs that are not reports. */
char *verify_line(const struct m_run *m, const struct lr_verify *v);
/* The executable a process ran last (its exec's resolved path), or NULL. */
char *proc_exe(const struct m_proc *p);

#endif
