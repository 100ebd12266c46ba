#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "cli/cmds.h"
#include "cli/common.h"
#include "keys.h"
#include "logfmt.h"
#include "report/report.h"
#include "verify.h"

#define EV_FILES_MAX 4096

static const char usage[] =
    "usage: runseal evidence [LOGDIR] RUN -o BUNDLE.tar.gz [--pub FILE] [--key-dir DIR]\n"
    "\n"
    "Verifies the log (default " LOG_DIR_DEFAULT ") and writes an evidence bundle\n"
    "for RUN: the sealed segments that hold its records, ANCHOR (the seal of the\n"
    "segment before them, from which the hash chain is checked), HEAD at the seal\n"
    "that covers the run's last record, the public keys (root.pub, epochs.pub), the run's\n"
    "report as report.md, report.html and report.json, and a README for the\n"
    "receiver. `runseal verify BUNDLE.tar.gz` checks it offline on any machine, and\n"
    "`runseal report` and `runseal replay` read it like a log directory.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE   the bundle to write (required)\n" CLI_LOG_HELP
    "  -h, --help          show this help\n"
    "\n"
    "exit status: 0 written, 1 the log has problems (nothing written), 2 usage or I/O\n";

struct files {
	struct bundle_file f[EV_FILES_MAX];
	size_t n;
};

static void add(struct files *fs, const char *name, char *data, size_t len)
{
	fs->f[fs->n++] = (struct bundle_file){.name = xstrdup(name), .data = data, .len = len};
}

static char *xmemdup(const char *p, size_t n)
{
	char *d = xmalloc(n + 1);

	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static int slurp(const char *path, char **data, size_t *len)
{
	struct jbuf b = {0};
	char buf[65536];
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	jb_raw(&b, "", 0);
	while ((k = read(fd, buf, sizeof(buf))) > 0)
		jb_raw(&b, buf, (size_t)k);
	close(fd);
	if (k < 0) {
		jb_free(&b);
		return -1;
	}
	*data = b.p;
	*len = b.len;
	return 0;
}

static int seg_num(const char *name, uint64_t *n)
{
	char tail[8] = "";

	if (strlen(name) < 20 || strncmp(name, "seg-", 4) ||
	    sscanf(name + 4, "%16" SCNu64 "%7s", n, tail) != 2)
		return -1;
	return strcmp(tail, ".log") && strcmp(tail, ".log.z") ? -1 : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct bundle_file *)a)->name, ((const struct bundle_file *)b)->name);
}

/* The last line of a segment when it is its seal: the HEAD a log ending there has. */
static char *seal_line_of(const char *path, size_t *len)
{
	char *buf, err[256], *line = NULL;
	size_t n;

	if (segment_read(path, &buf, &n, err, sizeof(err)) < 0)
		return NULL;
	if (n && buf[n - 1] == '\n') {
		size_t s;

		for (s = n - 1; s > 0 && buf[s - 1] != '\n'; s--)
			;
		if (memmem(buf + s, n - s, "\"kind\":\"seal\"", 13)) {
			*len = n - s;
			line = xmalloc(*len + 1);
			memcpy(line, buf + s, *len);
		}
	}
	free(buf);
	return line;
}

/* The seal line of segment n (compressed or not), or NULL: a crashed segment has none. */
static char *seal_of(const char *log, uint64_t n, size_t *len)
{
	char *p = xasprintf("%s/seg-%016" PRIu64 ".log.z", log, n), *l = seal_line_of(p, len);

	free(p);
	if (l)
		return l;
	p = xasprintf("%s/seg-%016" PRIu64 ".log", log, n);
	l = seal_line_of(p, len);
	free(p);
	return l;
}

/* The run's first segment, moved back over crashed segments (no seal to start from: the
 * chain goes through their recovery), and ANCHOR, the seal before it (none from 1). */
static uint64_t first_segment(struct files *fs, const char *log, uint64_t first)
{
	char *a = NULL;
	size_t len = 0;

	while (first > 1 && !(a = seal_of(log, first - 1, &len)))
		first--;
	if (a)
		add(fs, "log/ANCHOR", a, len);
	return first > 1 ? first : 1;
}

/* Segments first..last (to the end when last is 0), HEAD, and the public keys. */
static int log_files(struct files *fs, const char *log, const char *keys, const char *pub,
		     uint64_t from, uint64_t last)
{
	DIR *d = opendir(log);
	struct dirent *de;
	size_t first = fs->n;
	char *data, *p;
	size_t len;
	uint64_t n;

	if (!d) {
		fprintf(stderr, "runseal: %s: %s\n", log, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) && fs->n < EV_FILES_MAX - 8) {
		if (seg_num(de->d_name, &n) < 0 || (last && n > last) || n < from)
			continue;
		p = xasprintf("%s/%s", log, de->d_name);
		if (slurp(p, &data, &len) < 0) {
			fprintf(stderr, "runseal: %s: %s\n", p, strerror(errno));
			free(p);
			closedir(d);
			return -1;
		}
		free(p);
		p = xasprintf("log/%s", de->d_name);
		add(fs, p, data, len);
		free(p);
	}
	closedir(d);
	qsort(fs->f + first, fs->n - first, sizeof(fs->f[0]), by_name);
	if (fs->n > first) {
		p = xasprintf("%s/%s", log, fs->f[fs->n - 1].name + 4);
		data = seal_line_of(p, &len);
		free(p);
		if (data)
			add(fs, "log/HEAD", data, len);
	}
	p = pub ? xstrdup(pub) : xasprintf("%s/root.pub", keys);
	if (slurp(p, &data, &len) < 0) {
		fprintf(stderr, "runseal: %s: %s\n", p, strerror(errno));
		free(p);
		return -1;
	}
	free(p);
	add(fs, "keys/root.pub", data, len);
	p = xasprintf("%s/epochs.pub", keys);
	if (slurp(p, &data, &len) < 0) {
		fprintf(stderr, "runseal: %s: %s\n", p, strerror(errno));
		free(p);
		return -1;
	}
	free(p);
	add(fs, "keys/epochs.pub", data, len);
	return 0;
}

static void files_free(struct files *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free((char *)fs->f[i].name);
		free((char *)fs->f[i].data);
	}
	fs->n = 0;
}

static void sha256_hex(const char *d, size_t n, char out[65])
{
	unsigned char h[32];
	unsigned int hl = 32;

	EVP_Digest(d, n, h, &hl, EVP_sha256(), NULL);
	hex(h, 32, out);
}

/* The reports of run, made from the bundle itself (as a receiver will make them), and the
 * README; appended to fs. Deterministic, so that verify can make them again and compare. */
static int finish(struct files *fs, const char *bundle, const char *run)
{
	static const char *const fmt[] = {"md", "html", "json"};
	struct cli_log l = {.path = bundle};
	struct cli_run cr;
	struct doc d;
	struct jbuf rd = {0};
	char *vl, h[65];

	if (cli_open_run(&cr, &l, run))
		return -1;
	report_build(&d, &cr.m, lr_result(cr.r));
	for (int i = 0; i < 3; i++) {
		struct jbuf b = {0};
		char *name = xasprintf("report.%s", fmt[i]);

		doc_render(&d, fmt[i], &b);
		add(fs, name, b.p, b.len);
		free(name);
	}
	vl = verify_line(&cr.m, lr_result(cr.r));
	jb_raw(&rd, "", 0);
	{
		char *t = xasprintf(
		    "runseal evidence bundle\n"
		    "=======================\n\n"
		    "run: %s\nrunbook: %s\nmade by: runseal %s\n"
		    "root key id: %s\n\n"
		    "What is here\n"
		    "- log/: the sealed log segments that hold the run's records (and a\n"
		    "  crashed segment just before them, if any); log/ANCHOR, when they do not\n"
		    "  start at the log's genesis, is the signed seal of the segment before\n"
		    "  them, from which the hash chain is checked; log/HEAD is the seal that\n"
		    "  covers the run's last record.\n"
		    "- keys/root.pub, keys/epochs.pub: the host's public keys (no secret).\n"
		    "- report.md, report.html, report.json: the run's report, made from this\n"
		    "  bundle's verified log.\n\n"
		    "How to check it (offline, on any machine with runseal)\n"
		    "  runseal verify BUNDLE.tar.gz --pub YOUR-COPY-OF-root.pub\n"
		    "checks every entry's hash chain, every seal's Ed25519 signature by its\n"
		    "certified epoch key, that no record was sealed late, HEAD, and that the\n"
		    "reports and this README are exactly what the verified log gives. Without\n"
		    "--pub it trusts keys/root.pub from the bundle: then compare the root key id\n"
		    "above with the one the host published, or anyone could have made the bundle.\n"
		    "The format is documented in runseal's docs/FORMAT.md.\n\n"
		    "Verification when the bundle was made\n%s\n\nFiles (SHA-256)\n",
		    run, cr.sum->runbook_name ? cr.sum->runbook_name : "?", RUNSEAL_VERSION,
		    lr_result(cr.r)->root_key, vl);
		jb_raw(&rd, t, strlen(t));
		free(t);
	}
	for (size_t i = 0; i < fs->n; i++) {
		sha256_hex(fs->f[i].data, fs->f[i].len, h);
		jb_raw(&rd, h, 64);
		jb_raw(&rd, "  ", 2);
		jb_raw(&rd, fs->f[i].name, strlen(fs->f[i].name));
		jb_putc(&rd, '\n');
	}
	add(fs, "README.txt", rd.p, rd.len);
	free(vl);
	doc_free(&d);
	cli_close_run(&cr);
	return 0;
}

/* Writes the stage bundle (log and keys) to a temporary file for finish() to read. */
static char *stage(const struct files *fs)
{
	char *gz, err[256],
	    *path =
		xasprintf("%s/runseal-stage.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	size_t len;
	int fd = mkstemp(path);

	if (fd < 0 || bundle_build(fs->f, fs->n, &gz, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s: %s\n", path, fd < 0 ? strerror(errno) : err);
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		free(path);
		return NULL;
	}
	if (write(fd, gz, len) != (ssize_t)len) {
		fprintf(stderr, "runseal: %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		free(gz);
		free(path);
		return NULL;
	}
	close(fd);
	free(gz);
	return path;
}

static int make_bundle(struct files *fs, const char *run, char **gz, size_t *len)
{
	char *sp = stage(fs), err[256];
	int rc;

	if (!sp)
		return -1;
	rc = finish(fs, sp, run);
	unlink(sp);
	free(sp);
	if (rc)
		return -1;
	if (bundle_build(fs->f, fs->n, gz, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "runseal: %s\n", err);
		return -1;
	}
	return 0;
}

int evidence_cmd(int argc, char **argv)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
					     CLI_LOG_OPTIONS,
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	static struct files fs;
	struct cli_log l = {.cmd = "evidence"};
	struct cli_run cr;
	const char *out = NULL;
	const struct lr_seal *s;
	uint64_t last = 0, from;
	char *gz = NULL;
	size_t len;
	int c, rc, stop;

	optind = 0;
	while ((c = cli_getopt(argc, argv, "o:h", opts, usage, &l, &stop)) != -1) {
		if (c == 'o') {
			out = optarg;
		}
	}
	if (stop >= 0)
		return stop;
	if (!out || argc - optind < 1 || argc - optind > 2) {
		fprintf(stderr, "%s%s", out ? "" : "runseal: evidence needs -o BUNDLE.tar.gz\n",
			usage);
		return 2;
	}
	if (argc - optind == 2)
		l.path = argv[optind++];
	rc = cli_open_run(&cr, &l, argv[optind]);
	if (rc)
		return rc;
	if (lr_result(cr.r)->rc) {
		cli_note_verify(lr_result(cr.r), l.path ? l.path : LOG_DIR_DEFAULT);
		fprintf(stderr, "runseal: no bundle is made from a log that does not verify\n");
		cli_close_run(&cr);
		return 1;
	}
	s = lr_seal_for(lr_result(cr.r), cr.sum->last_seq);
	if (s)
		last = s->segment;
	from = first_segment(&fs, lr_log_dir(cr.r), lr_segment_of(cr.r, cr.sum->first_seq));
	rc = log_files(&fs, lr_log_dir(cr.r), lr_key_dir(cr.r), l.pub, from, last) ||
		     make_bundle(&fs, cr.sum->id, &gz, &len) || cli_write(out, gz, len)
		 ? 2
		 : 0;
	if (!rc)
		fprintf(stderr,
			"runseal: evidence for run %s written to %s (%zu files, %zu bytes)\n",
			cr.sum->id, out, fs.n, len);
	free(gz);
	files_free(&fs);
	cli_close_run(&cr);
	return rc;
}

/* ---- runseal verify BUNDLE ---------------------------------------------------------------- */

static char *readme_run(const struct bundle_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *p, *e;

		if (strcmp(f[i].name, "README.txt"))
			continue;
		p = memmem(f[i].data, f[i].len, "\nrun: ", 6);
		if (!p)
			return NULL;
		p += 6;
		e = memchr(p, '\n', (size_t)(f[i].data + f[i].len - p));
		return e && e - p < 48 ? xasprintf("%.*s", (int)(e - p), p) : NULL;
	}
	return NULL;
}

/* The reports and README must be what the bundle's verified log gives, and nothing else
 * may be in it: the bundle is made again from its own log and keys and compared. */
static int same_as_remade(const char *path, const struct bundle_file *f, size_t n, bool quiet)
{
	static struct files fs;
	char *run = readme_run(f, n), *tar = NULL, *mine = NULL, err[512];
	size_t tl, ml;
	int rc = 1;

	if (!run) {
		fprintf(stderr, "runseal: %s: no README.txt naming the run\n", path);
		return 1;
	}
	for (size_t i = 0; i < n && fs.n < EV_FILES_MAX - 8; i++)
		if (!strncmp(f[i].name, "log/", 4) || !strncmp(f[i].name, "keys/", 5))
			add(&fs, f[i].name, xmemdup(f[i].data, f[i].len), f[i].len);
	if (finish(&fs, path, run) == 0 && bundle_gunzip(path, &tar, &tl, err, sizeof(err)) == 0 &&
	    bundle_tar(fs.f, fs.n, &mine, &ml, err, sizeof(err)) == 0) {
		rc = tl != ml || memcmp(tar, mine, tl);
		if (rc && !quiet)
			fprintf(
			    stderr,
			    "runseal: %s: the reports, README or file list differ from what its "
			    "verified log gives (changed after it was made, or made by another "
			    "runseal version than %s)\n",
			    path, RUNSEAL_VERSION);
	}
	free(tar);
	free(mine);
	free(run);
	files_free(&fs);
	return rc;
}

int verify_any_cmd(int argc, char **argv)
{
	struct bundle_file *f;
	size_t n;
	char dir[PATH_MAX], err[1024], *path = NULL;
	char **args;
	int pos = -1, rc, k = 0;
	bool keydir = false, quiet = false;
	struct stat st;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--key-dir") || !strncmp(argv[i], "--key-dir=", 10))
			keydir = true;
		if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			quiet = true;
		if (argv[i][0] != '-' && pos < 0 && stat(argv[i], &st) == 0 &&
		    S_ISREG(st.st_mode) &&
		    (i == 1 || argv[i - 1][0] != '-' || strchr(argv[i - 1], '=') ||
		     !strcmp(argv[i - 1], "--json") || !strcmp(argv[i - 1], "--strict") ||
		     !strcmp(argv[i - 1], "-q")))
			pos = i;
	}
	if (pos < 0)
		return verify_cmd(argc, argv);
	path = argv[pos];
	if (bundle_read(path, &f, &n, err, sizeof(err)) < 0 ||
	    bundle_unpack(path, dir, sizeof(dir), err, sizeof(err)) < 0) {
		if (!quiet)
			fprintf(stderr, "runseal: %s\n", err);
		bundle_files_free(f, n);
		return 1;
	}
	args = xcalloc((size_t)argc + 5, sizeof(*args));
	for (int i = 0; i < argc; i++)
		args[k++] = i == pos ? xasprintf("%s/log", dir) : xstrdup(argv[i]);
	args[k++] = xstrdup("--anchored"); /* a bundle is trimmed to its run */
	if (!keydir) {
		args[k++] = xstrdup("--key-dir");
		args[k++] = xasprintf("%s/keys", dir);
	}
	rc = verify_cmd(k, args);
	for (int i = 0; i < k; i++)
		free(args[i]);
	free(args);
	fflush(stdout);
	if (rc != 2 && same_as_remade(path, f, n, quiet))
		rc = 1;
	else if (rc == 0 && !quiet)
		fprintf(stderr,
			"runseal: %s: bundle verified: its log, HEAD, reports and README agree "
			"(a worm warning is expected: files from a tar cannot carry the host's "
			"write-once flags; the segment entries record what it had)\n",
			path);
	bundle_remove(dir);
	bundle_files_free(f, n);
	return rc;
}
