/* The daemon's commands: `runseal daemon`, and its clients exec, begin, end and status. */
#ifndef RUNSEAL_DAEMON_CLI_H
#define RUNSEAL_DAEMON_CLI_H

int daemon_cmd(int argc, char **argv);
int exec_cmd(int argc, char **argv);
int begin_cmd(int argc, char **argv);
int end_cmd(int argc, char **argv);
int status_cmd(int argc, char **argv);

#endif
