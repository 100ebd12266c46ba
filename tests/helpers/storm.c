/* storm: the benchmark workloads, in C so they are the same everywhere.
 *
 *   storm exec N                      fork and exec /bin/true N times
 *   storm open N DIR                  open and close files in DIR N times: a tenth fail
 *                                     with ENOENT, a fifth go through a directory fd
 *   storm connect N PORT CLOSED_PORT  N TCP connects to 127.0.0.1: nine in ten to PORT,
 *                                     where storm listens itself, the rest to CLOSED_PORT
 *   storm openrate RATE SECONDS DIR   open and close one file RATE times a second
 *
 * Prints one JSON line: {"workload","ops","errors","wall_s","user_s","sys_s"} with the CPU
 * time of storm and its children; openrate adds "achieved_rate". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NFILES 16

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static void report(const char *w, long ops, long errors, double wall, double rate)
{
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	printf("{\"workload\":\"%s\",\"ops\":%ld,\"errors\":%ld,\"wall_s\":%.6f,\"user_s\":%.6f,"
	       "\"sys_s\":%.6f",
	       w, ops, errors, wall, tv(self.ru_utime) + tv(kids.ru_utime),
	       tv(self.ru_stime) + tv(kids.ru_stime));
	if (rate >= 0)
		printf(",\"achieved_rate\":%.1f", rate);
	printf("}\n");
}

static long num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0)
		errx(2, "%s: expected a positive number, got \"%s\"", what, s);
	return v;
}

static void storm_exec(long n)
{
	long errors = 0;
	double t0 = now();

	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		int st;

		if (p < 0)
			err(1, "fork");
		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			errors++;
	}
	report("exec", n, errors, now() - t0, -1);
}

static void make_files(const char *dir)
{
	char path[4096];

	mkdir(dir, 0700);
	for (int i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/storm-%02d", dir, i);
		int fd = open(path, O_WRONLY | O_CREAT, 0600);
		if (fd < 0)
			err(1, "%s", path);
		close(fd);
	}
}

static void storm_open(long n, const char *dir)
{
	char path[NFILES][4096], name[NFILES][32], missing[4096];
	int dfd;
	long errors = 0;
	double t0;

	make_files(dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		err(1, "%s", dir);
	for (int i = 0; i < NFILES; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/storm-%02d", dir, i);
		snprintf(name[i], sizeof(name[i]), "storm-%02d", i);
	}
	snprintf(missing, sizeof(missing), "%s/storm-missing", dir);
	t0 = now();
	for (long i = 0; i < n; i++) {
		int fd, k = (int)(i % NFILES);

		if (i % 10 == 9)
			fd = open(missing, O_RDONLY);
		else if (i % 5 == 0)
			fd = openat(dfd, name[k], O_RDONLY);
		else
			fd = open(path[k], O_RDONLY);
		if (fd < 0)
			errors++;
		else
			close(fd);
	}
	report("open", n, errors, now() - t0, -1);
	close(dfd);
}

static void *acceptor(void *arg)
{
	int ls = *(int *)arg;

	for (;;) {
		int c = accept(ls, NULL, NULL);

		if (c >= 0)
			close(c);
	}
	return NULL;
}

static void storm_connect(long n, long port, long closed)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	long errors = 0;
	pthread_t t;
	double t0;

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_port = htons((uint16_t)port);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4096) < 0)
		err(1, "listen on 127.0.0.1:%ld", port);
	pthread_create(&t, NULL, acceptor, &ls);
	t0 = now();
	for (long i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (s < 0)
			err(1, "socket");
		/* Without SO_LINGER 0 the client ports pile up in TIME_WAIT. */
		struct linger l = {1, 0};
		setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		a.sin_port = htons((uint16_t)(i % 10 == 9 ? closed : port));
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
			errors++;
		close(s);
	}
	report("connect", n, errors, now() - t0, -1);
}

static void storm_openrate(long rate, long seconds, const char *dir)
{
	char path[4096];
	long ops = 0, errors = 0, total = rate * seconds;
	double t0;

	make_files(dir);
	snprintf(path, sizeof(path), "%s/storm-00", dir);
	t0 = now();
	/* Paced in slices of a millisecond: bursts no larger than a real service's. */
	while (ops < total) {
		long due = (long)((now() - t0) * (double)rate) + rate / 1000 + 1;

		if (due > total)
			due = total;
		if (ops >= due) {
			/* Ahead of the pace: yield the CPU (the collector shares the machine). */
			struct timespec ts = {0, 200000};

			nanosleep(&ts, NULL);
			continue;
		}
		while (ops < due) {
			int fd = open(path, O_RDONLY);

			if (fd < 0)
				errors++;
			else
				close(fd);
			ops++;
		}
		if (now() - t0 > (double)seconds * 3)
			break; /* cannot keep up: stop, and say what was achieved */
	}
	double wall = now() - t0;
	report("openrate", ops, errors, wall, (double)ops / wall);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "exec"))
		storm_exec(num(argv[2], "N"));
	else if (argc == 4 && !strcmp(argv[1], "open"))
		storm_open(num(argv[2], "N"), argv[3]);
	else if (argc == 5 && !strcmp(argv[1], "connect"))
		storm_connect(num(argv[2], "N"), num(argv[3], "PORT"), num(argv[4], "CLOSED_PORT"));
	else if (argc == 5 && !strcmp(argv[1], "openrate"))
		storm_openrate(num(argv[2], "RATE"), num(argv[3], "SECONDS"), argv[4]);
	else
		errx(2, "usage: storm exec N | open N DIR | connect N PORT CLOSED_PORT | "
			"openrate RATE SECONDS DIR");
	return 0;
}
