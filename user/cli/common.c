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

int cli_getopt(int argc, char **argv, const char *sopts, const struct option *lopts,
	       const char *usage, struct cli_log *l, int *stop)
{
	int c;

	*stop = -1;
	while ((c = getopt_long(argc, argv, sopts, lopts, NULL)) != -1) {
		if (cli_log_opt(l, c, optarg))
			continue;
		if (c != 'h' && c != '?' && c != ':')
			return c;
		fputs(usage, c == 'h' ? stdout : stderr);
		*stop = c == 'h' ? 0 : 2;
		return -1;
	}
	return -1;
}

static struct lr_opts opts_of(const struct cli_log *l)
{
	return (struct lr_opts){
	    .path = l->path ? l->path : LOG_DIR_DEFAULT, .pub = l->pub, .key_dir = l->key_dir};
}

/* Keeps the records of the runs being read (the log's notes come with the reader). */
static bool keep_chosen(void *ctx, const struct lr_ent *e)
{
	const struct cli_run *cr = ctx;

	if (!strcmp(e->run, cr->sum->id))
		return true;
	for (size_t i = 0; i < cr->nother; i++)
		if (!strcmp(e->run, cr->osum[i]->id))
			return true;
	return false;
}

/* The records of the chosen runs, from the segments that hold them: the log was verified
 * once already, while the runs were listed. */
static int read_chosen(struct cli_run *cr)
{
	struct lr_range rg[CLI_OTHERS_MAX + 1];
	char err[1024];
	size_t i = 0;

	rg[0] = (struct lr_range){cr->sum->first_seq, cr->sum->last_seq};
	for (size_t k = 0; k < cr->nother; k++)
		rg[k + 1] = (struct lr_range){cr->osum[k]->first_seq, cr->osum[k]->last_seq};
	cr->r = cr->runs.reader;
	lr_select(cr->r, rg, cr->nother + 1, keep_chosen, cr);
	if (model_build(&cr->m, cr->r, cr->sum->id, err, sizeof(err)) < 0)
		goto fail;
	for (; i < cr->nother; i++)
		if (model_build(&cr->other[i], cr->r, cr->osum[i]->id, err, sizeof(err)) < 0)
			goto fail;
	return 0;
fail:
	fprintf(stderr, "runseal: %s\n", err);
	model_free(&cr->m); /* zeroed by a model_build that failed */
	while (i-- > 0)
		model_free(&cr->other[i]);
	cr->nother = 0;
	cr->r = NULL;
	return 2;
}

int cli_open_runs(struct cli_run *cr, const struct cli_log *l, const char *arg, cli_others_fn pick,
		  void *ctx)
{
	struct lr_opts o = opts_of(l);
	char err[1024];
	int rc;

	*cr = (struct cli_run){0};
	/* A closed pipe (| head) is a write error, so an unpacked bundle is still removed. */
	signal(SIGPIPE, SIG_IGN);
	if (runs_collect(&cr->runs, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return 2;
	}
	cr->sum = runs_find(&cr->runs, arg, err, sizeof(err));
	if (!cr->sum) {
		fprintf(stderr, "runseal: %s: %s\n", o.path, err);
		cli_note_verify(lr_result(cr->runs.reader), o.path);
		runs_free(&cr->runs);
		return 2;
	}
	rc = pick ? pick(cr, ctx) : 0;
	if (!rc && l->cmd) {
		const char *ids[CLI_OTHERS_MAX + 1] = {cr->sum->id};

		for (size_t i = 0; i < cr->nother; i++)
			ids[i + 1] = cr->osum[i]->id;
		cli_note_read(l->cmd, o.path, ids, cr->nother + 1);
	}
	if (!rc)
		rc = read_chosen(cr);
	if (rc)
		runs_free(&cr->runs);
	return rc;
}

int cli_open_run(struct cli_run *cr, const struct cli_log *l, const char *arg)
{
	return cli_open_runs(cr, l, arg, NULL, NULL);
}

void cli_close_run(struct cli_run *cr)
{
	if (cr->r) {
		model_free(&cr->m);
		for (size_t i = 0; i < cr->nother; i++)
			model_free(&cr->other[i]);
	}
	runs_free(&cr->runs); /* and the reader, cr->r */
	*cr = (struct cli_run){0};
}

int cli_pick_other(struct cli_run *cr, const char *arg, const char *what)
{
	char err[512];

	cr->osum[0] = runs_find(&cr->runs, arg, err, sizeof(err));
	if (!cr->osum[0]) {
		fprintf(stderr, "runseal: %s%s\n", what, err);
		return 2;
	}
	cr->nother = 1;
	return 0;
}

int cli_write(const char *path, const char *data, size_t len)
{
	char *tmp;
	int fd;

	if (!path || !strcmp(path, "-")) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout)) {
			if (errno != EPIPE) /* a reader that had enough (| head) is no error */
				fprintf(stderr, "runseal: stdout: %s\n", strerror(errno));
			return -1;
		}
		return 0;
	}
	/* A device or a pipe (-o /dev/null, -o /dev/stdout, a fifo) is written into: renamed
	 * over, it would be replaced by a regular file. */
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write_all(fd, data, len) < 0 || close(fd) < 0) {
			fprintf(stderr, "runseal: %s: %s\n", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	tmp = xasprintf("%s.tmpXXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, data, len) != (ssize_t)len ||
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

void cli_notice(void *ctx, enum sealer_level level, const char *msg)
{
	(void)ctx;
	(void)level; /* both read "runseal: ...", as before */
	fprintf(stderr, "runseal: %s\n", msg);
}
