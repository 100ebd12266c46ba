/* cli/cmds: the commands that read the sealed log back, one file each, and the daemon's
 * (cli/daemon.c). */
#ifndef RUNSEAL_CLI_CMDS_H
#define RUNSEAL_CLI_CMDS_H

/* `runseal verify` of a log directory (cli/verify.c) and `runseal show` (cli/show.c). */
int verify_cmd(int argc, char **argv);
int show_cmd(int argc, char **argv);
int runs_cmd(int argc, char **argv);
int report_cmd(int argc, char **argv);
int replay_cmd(int argc, char **argv);
int diff_cmd(int argc, char **argv);
int evidence_cmd(int argc, char **argv);
int export_cmd(int argc, char **argv);
/* `runseal verify` of an evidence bundle; other arguments go to verify_cmd. */
int verify_any_cmd(int argc, char **argv);
/* `runseal daemon`, and its clients exec, begin, end and status (cli/daemon.c). */
int daemon_cmd(int argc, char **argv);
int exec_cmd(int argc, char **argv);
int begin_cmd(int argc, char **argv);
int end_cmd(int argc, char **argv);
int status_cmd(int argc, char **argv);

#endif
