#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/common.h"
#include "verify.h"

bool cli_log_opt(struct cli_log *l, int c, const char *arg)
{
	if (c == OPT_C_PUB)
		l->pub = arg;
	else if (c == OPT_C_KEYDIR)
		l->key_dir = arg;
	else
		return false;
	return true;
}

static struct lr_opts opts_of(const struct cli_log *l)
{
	return (struct lr_opts){
	    .path = l->path ? l->path : LOG_DIR_DEFAULT, .pub = l->pub, .key_dir = l->key_dir};
}

int cli_open_other(struct cli_run *cr, const struct cli_run *first, const struct cli_log *l,
		   const struct run_sum *sum)
{
	struct lr_opts o = opts_of(l);
	char err[1024];

	*cr = (struct cli_run){.sum = sum};
	(void)first;
	o.keep = lr_keep_run;
	o.ctx = (void *)sum->id;
	if (lr_open(&cr->r, &o, err, sizeof(err)) < 0 ||
	    model_build(&cr->m, cr->r, sum->id, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		lr_close(cr->r);
		cr->r = NULL;
		return 2;
	}
	return 0;
}

int cli_open_run(struct cli_run *cr, const struct cli_log *l, const char *arg)
{
	struct lr_opts o = opts_of(l);
	struct run_list runs;
	const struct run_sum *sum;
	char err[1024];
	int rc;

	*cr = (struct cli_run){0};
	/* A closed pipe (| head) is a write error, so an unpacked bundle is still removed. */
	signal(SIGPIPE, SIG_IGN);
	if (runs_collect(&runs, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return 2;
	}
	sum = runs_find(&runs, arg, err, sizeof(err));
	if (!sum) {
		fprintf(stderr, "runseal: %s: %s\n", o.path, err);
		cli_note_verify(lr_result(runs.reader), o.path);
		runs_free(&runs);
		return 2;
	}
	rc = cli_open_other(cr, NULL, l, sum);
	cr->runs = runs;
	cr->sum = sum;
	return rc;
}

void cli_close_run(struct cli_run *cr)
{
	if (cr->r)
		model_free(&cr->m);
	lr_close(cr->r);
	runs_free(&cr->runs);
	*cr = (struct cli_run){0};
}

int cli_write(const char *path, const char *data, size_t len)
{
	char *tmp;
	int fd;

	if (!path || !strcmp(path, "-")) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout)) {
			fprintf(stderr, "runseal: stdout: %s\n", strerror(errno));
			return -1;
		}
		return 0;
	}
	tmp = xasprintf("%s.tmpXXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0 || fchmod(fd, 0644) < 0 || write(fd, data, len) != (ssize_t)len ||
	    fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "runseal: %s: %s\n", fd < 0 ? path : tmp, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

void cli_note_verify(const struct lr_verify *v, const char *path)
{
	if (v->rc)
		fprintf(stderr,
			"runseal: %s did NOT verify (%lu errors): only records before the first "
			"problem are used; `runseal verify` lists the problems\n",
			path, v->errors);
}
