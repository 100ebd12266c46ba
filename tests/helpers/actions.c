/* actions: perform exact syscalls for the integration tests.
 *
 * The capture tests need processes that do one precise, known thing (a relative open through a
 * directory fd, a double fork, an exec from a non-leader thread, ...) so that the log can be
 * compared with what really happened. Shell commands add execs and opens of their own, so each
 * action is done here directly.
 *
 * Usage: actions CMD ARGS...   (run without arguments for the list)
 * Exit 0 when the action did what was asked, including an expected failure such as ENOENT;
 * 2 on bad usage; 1 (3 for missingexec) with a message on anything unexpected.
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -O2 -pthread -o actions actions.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ARG_LEN 100 /* bytes of each longargv argument, without the NUL */

static const char *prog = "actions";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s CMD ARGS...\n"
		"  longargv N MARK        exec /bin/true with N arguments of %d bytes\n"
		"  openrel DIR NAME       chdir DIR, open NAME (relative)\n"
		"  opendirfd DIR NAME     openat(dirfd of DIR, NAME)\n"
		"  openfail DIR NAME      chdir DIR, open NAME expecting ENOENT\n"
		"  openfaildirfd DIR NAME openat(dirfd of DIR, NAME) expecting ENOENT\n"
		"  create PATH            create/truncate PATH (0640), write \"x\"\n"
		"  openat2 DIR NAME       openat2 with RESOLVE_BENEATH\n"
		"  connect HOST PORT      blocking TCP connect to an IP literal\n"
		"  connectnb HOST PORT    non-blocking TCP connect, poll up to 1 s\n"
		"  connectunix PATH       AF_UNIX connect; @name is abstract\n"
		"  daemon PATH DELAY_MS   double fork + setsid; grandchild creates PATH later\n"
		"  thread PATH            a second thread creates PATH\n"
		"  threadexec             a non-leader thread execs /bin/true\n"
		"  sleep SECONDS          sleep, with a child sleeping too\n"
		"  missingexec            exec a missing binary, then a non-executable file\n"
		"  script PATH            write a #!/bin/sh script at PATH and exec it\n"
		"  rename DIR NAME        chdir DIR, write .NAME.tmp, rename(2) it over NAME\n"
		"  renameat2 DIR OLD NEW  create OLD, renameat2(dirfd, RENAME_NOREPLACE) to NEW\n"
		"  unlink DIR NAME        create NAME, unlinkat(dirfd, NAME); mkdir+rmdir NAME.d\n"
		"  chmod PATH MODE        chmod(2) PATH to octal MODE, then fchmod back to 0600\n"
		"  chown PATH UID GID     chown(2), then fchown(2) to the same ids\n"
		"  link OLD NEW           link(2) then symlink(2) NEW.sym -> OLD\n"
		"  tmpfile DIR NAME       O_TMPFILE in DIR, then linkat(AT_EMPTY_PATH) as NAME\n"
		"  tmpfileproc DIR NAME   O_TMPFILE in DIR, then linkat(/proc/self/fd/N) as NAME\n"
		"  truncate PATH LEN      truncate(2) PATH to LEN bytes\n"
		"  mkdirs DIR             mkdir DIR/newdir, mkdirat newdir2, mknod DIR/fifo,\n"
		"                         mknodat null2 (char 1:3)\n"
		"  mount DIR              tmpfs on DIR/a, open_tree clone, move_mount to DIR/b,\n"
		"                         umount2 both\n"
		"  connectrace HOST P1 P2 OUT  connects to HOST:P1 while a thread flips the\n"
		"                         sockaddr's port to P2, until each port was reached 20\n"
		"                         times and the buffer differed after 10 calls (at most\n"
		"                         5000); writes each port reached to OUT\n"
		"  udp HOST P1 P2 P3      5 sendto to P1, 3 sendmsg to P2, sendmmsg to P3 and P1\n"
		"  fastopen HOST PORT     TCP Fast Open: sendto(MSG_FASTOPEN) to HOST:PORT\n"
		"  udpserve               bind UDP on 127.0.0.1; receive 2 datagrams (recvfrom)\n"
		"                         from one sender, 1 (recvmsg) from another\n"
		"  mmsg HOST PORT N       one sendmmsg of N datagrams to PORT, PORT+1, ...\n"
		"  udp6 PORT              one sendto to [::1]:PORT\n"
		"  connectdup HOST P1 P2  connect fresh sockets to P1 while a thread dup2()s a\n"
		"                         socket connected to P2 onto their fd; prints how often\n"
		"                         the fd was swapped under a successful connect\n"
		"  udprace HOST P1 P2 N   N children each sendto one datagram (its pid) from a\n"
		"                         shared sockaddr a thread flips between P1 and P2\n"
		"  listen                 listen on 127.0.0.1, connect to it, accept; prints\n"
		"                         \"listen PORT\" and \"client PORT\"\n"
		"  memfdexec              copy /bin/true into a memfd and execveat it\n"
		"  detached DIR           tmpfs on DIR/m with a file f, open_tree clone, openat f\n"
		"                         through the detached clone; umount\n"
		"  chrootopen DIR         chroot into DIR/jail, open DIR/beyond-jail through\n"
		"                         an fd kept from before\n"
		"  int80 PATH             getpid, then open(PATH) through int $0x80 (32-bit)\n"
		"  uring DIR NAME HOST PORT UDPPORT  through an io_uring: openat(dirfd of DIR,\n"
		"                         NAME), connect to HOST:PORT, sendmsg to HOST:UDPPORT\n"
		"  byhandle PATH          name_to_handle_at PATH, then open_by_handle_at it\n"
		"  getfd PID FD...        pidfd_open PID, pidfd_getfd each FD, print fstat's\n"
		"                         inode of each\n"
		"  privdrop               capset (drop CAP_NET_RAW), setresgid/setresuid 65534,\n"
		"                         setuid(0) expecting EPERM\n",
		prog, ARG_LEN);
	exit(2);
}

static void fail(const char *what, const char *obj)
{
	fprintf(stderr, "%s: %s %s: %s\n", prog, what, obj, strerror(errno));
	exit(1);
}

static long parse_num(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "%s: invalid %s '%s': expected an integer %ld-%ld\n", prog, what, s,
			min, max);
		exit(2);
	}
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int do_longargv(int argc, char **argv)
{
	long n, i;
	char **av;

	if (argc != 2)
		usage();
	n = parse_num(argv[0], "argument count", 0, 100000);
	if (strlen(argv[1]) + 24 > ARG_LEN) {
		fprintf(stderr, "%s: MARK '%s' is too long: at most %d bytes\n", prog, argv[1],
			ARG_LEN - 24);
		return 2;
	}
	av = calloc(n + 2, sizeof(*av));
	if (!av)
		fail("allocating", "argv");
	av[0] = "/bin/true";
	for (i = 0; i < n; i++) {
		int len;

		av[i + 1] = malloc(ARG_LEN + 1);
		if (!av[i + 1])
			fail("allocating", "argv");
		len = snprintf(av[i + 1], ARG_LEN + 1, "%s-%ld-", argv[1], i);
		memset(av[i + 1] + len, 'x', ARG_LEN - len);
		av[i + 1][ARG_LEN] = '\0';
	}
	execv(av[0], av);
	fail("execv", av[0]);
	return 1;
}

static int open_dir(const char *dir)
{
	int dfd = open(dir, O_DIRECTORY | O_RDONLY);

	if (dfd < 0)
		fail("open directory", dir);
	return dfd;
}

static int do_openrel(int argc, char **argv)
{
	int fd;

	if (argc != 2)
		usage();
	if (chdir(argv[0]) < 0)
		fail("chdir", argv[0]);
	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		fail("open", argv[1]);
	printf("%d\n", fd);
	close(fd);
	return 0;
}

static int do_opendirfd(int argc, char **argv)
{
	int dfd, fd;

	if (argc != 2)
		usage();
	dfd = open_dir(argv[0]);
	fd = openat(dfd, argv[1], O_RDONLY);
	if (fd < 0)
		fail("openat", argv[1]);
	printf("%d\n", fd);
	close(fd);
	close(dfd);
	return 0;
}

/* An open that must fail with ENOENT: success or any other error is a test failure. */
static int expect_enoent(int fd, const char *name)
{
	if (fd >= 0) {
		fprintf(stderr, "%s: open %s succeeded but was expected to fail with ENOENT\n",
			prog, name);
		close(fd);
		return 1;
	}
	if (errno != ENOENT)
		fail("open (expected ENOENT)", name);
	printf("ENOENT\n");
	return 0;
}

static int do_openfail(int argc, char **argv)
{
	if (argc != 2)
		usage();
	if (chdir(argv[0]) < 0)
		fail("chdir", argv[0]);
	return expect_enoent(open(argv[1], O_RDONLY), argv[1]);
}

static int do_openfaildirfd(int argc, char **argv)
{
	int dfd, ret;

	if (argc != 2)
		usage();
	dfd = open_dir(argv[0]);
	ret = expect_enoent(openat(dfd, argv[1], O_RDONLY), argv[1]);
	close(dfd);
	return ret;
}

static int do_create(int argc, char **argv)
{
	int fd;

	if (argc != 1)
		usage();
	fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		fail("create", argv[0]);
	if (write(fd, "x", 1) != 1)
		fail("write", argv[0]);
	if (close(fd) < 0)
		fail("close", argv[0]);
	return 0;
}

static int do_openat2(int argc, char **argv)
{
	struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH};
	int dfd, fd;

	if (argc != 2)
		usage();
	dfd = open_dir(argv[0]);
	fd = syscall(SYS_openat2, dfd, argv[1], &how, sizeof(how));
	if (fd < 0)
		fail("openat2", argv[1]);
	printf("%d\n", fd);
	close(fd);
	close(dfd);
	return 0;
}

/* Only IP literals: a name lookup would add opens and connects of its own to the trace. */
static struct addrinfo *resolve(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);

	if (rc) {
		fprintf(stderr, "%s: address %s port %s: %s (an IPv4/IPv6 literal is needed)\n",
			prog, host, port, gai_strerror(rc));
		exit(2);
	}
	return ai;
}

static int do_connect(int argc, char **argv)
{
	struct addrinfo *ai;
	int fd;

	if (argc != 2)
		usage();
	ai = resolve(argv[0], argv[1]);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket for", argv[0]);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		printf("connected\n");
	else if (errno == ECONNREFUSED)
		printf("refused\n");
	else
		fail("connect to", argv[0]);
	close(fd);
	freeaddrinfo(ai);
	return 0;
}

static int do_connectnb(int argc, char **argv)
{
	struct addrinfo *ai;
	struct pollfd pfd;
	int fd, err = 0;
	socklen_t len = sizeof(err);

	if (argc != 2)
		usage();
	ai = resolve(argv[0], argv[1]);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket for", argv[0]);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		printf("connected\n");
		goto out;
	}
	if (errno == ECONNREFUSED) {
		printf("refused\n");
		goto out;
	}
	if (errno != EINPROGRESS)
		fail("non-blocking connect to", argv[0]);
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, 1000) < 0)
		fail("poll connect to", argv[0]);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		fail("getsockopt SO_ERROR for", argv[0]);
	if (!pfd.revents)
		printf("in progress\n");
	else if (err == 0)
		printf("connected\n");
	else if (err == ECONNREFUSED)
		printf("refused\n");
	else {
		errno = err;
		fail("non-blocking connect to", argv[0]);
	}
out:
	close(fd);
	freeaddrinfo(ai);
	return 0;
}

static int do_connectunix(int argc, char **argv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *path;
	size_t n;
	socklen_t alen;
	int fd;

	if (argc != 1)
		usage();
	path = argv[0];
	n = strlen(path);
	if (n >= sizeof(sun.sun_path)) {
		fprintf(stderr, "%s: unix socket path '%s' is longer than %zu bytes\n", prog, path,
			sizeof(sun.sun_path) - 1);
		return 2;
	}
	if (path[0] == '@') {
		/* Abstract: leading NUL, then the name; its length is exact, no trailing NUL. */
		memcpy(sun.sun_path + 1, path + 1, n - 1);
		alen = offsetof(struct sockaddr_un, sun_path) + n;
	} else {
		memcpy(sun.sun_path, path, n);
		alen = offsetof(struct sockaddr_un, sun_path) + n + 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket for", path);
	if (connect(fd, (struct sockaddr *)&sun, alen) == 0)
		printf("connected\n");
	else if (errno == ECONNREFUSED)
		printf("refused\n");
	else if (errno == ENOENT)
		printf("ENOENT\n");
	else
		fail("connect to unix socket", path);
	close(fd);
	return 0;
}

/* The classic escape: the grandchild is reparented away from the run before it does anything,
 * in a new session, with no stdio shared with its ancestors. */
static int do_daemon(int argc, char **argv)
{
	long delay;
	pid_t pid;
	int status, fd;
	char buf[32];

	if (argc != 2)
		usage();
	delay = parse_num(argv[1], "delay in ms", 0, 3600000);
	pid = fork();
	if (pid < 0)
		fail("fork", "first child");
	if (pid > 0) {
		if (waitpid(pid, &status, 0) < 0)
			fail("waitpid", "first child");
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "%s: daemon: first child failed (status 0x%x)\n", prog,
				status);
			return 1;
		}
		return 0;
	}
	if (setsid() < 0)
		fail("setsid", "in first child");
	pid = fork();
	if (pid < 0)
		fail("fork", "grandchild");
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		_exit(1);
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	sleep_ms(delay);
	fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		_exit(1);
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, strlen(buf)) < 0)
		_exit(1);
	close(fd);
	_exit(0);
}

static void *thread_create(void *arg)
{
	const char *path = arg;
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	if (fd < 0)
		fail("open from thread", path);
	close(fd);
	return NULL;
}

static int do_thread(int argc, char **argv)
{
	pthread_t t;
	int rc;

	if (argc != 1)
		usage();
	rc = pthread_create(&t, NULL, thread_create, argv[0]);
	if (rc) {
		errno = rc;
		fail("pthread_create", "for thread");
	}
	pthread_join(t, NULL);
	return 0;
}

static void *thread_exec(void *arg)
{
	char *av[] = {"/bin/true", "threadexec-marker", NULL};

	(void)arg;
	execv(av[0], av);
	fail("execv from thread", av[0]);
	return NULL;
}

static int do_threadexec(int argc, char **argv)
{
	pthread_t t;
	int rc;

	(void)argv;
	if (argc != 0)
		usage();
	rc = pthread_create(&t, NULL, thread_exec, NULL);
	if (rc) {
		errno = rc;
		fail("pthread_create", "for threadexec");
	}
	/* Not reached when the exec succeeds: it replaces the whole process. */
	pthread_join(t, NULL);
	return 1;
}

static int do_sleep(int argc, char **argv)
{
	long secs;
	pid_t pid;

	if (argc != 1)
		usage();
	secs = parse_num(argv[0], "seconds", 0, 86400);
	/* A child sleeping as long: a timeout that kills only the step's pid leaves it behind. */
	pid = fork();
	if (pid < 0)
		fail("fork", "sleeping child");
	sleep_ms(secs * 1000);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return 0;
}

static int do_missingexec(int argc, char **argv)
{
	char *missing[] = {"/nonexistent/runseal-missing-binary", NULL};
	char tmpl[] = "/tmp/runseal-noexec-XXXXXX";
	char *noexec[] = {tmpl, NULL};
	int fd, err;

	(void)argv;
	if (argc != 0)
		usage();
	execv(missing[0], missing);
	if (errno != ENOENT) {
		fprintf(stderr, "%s: execv %s: expected ENOENT, got %s\n", prog, missing[0],
			strerror(errno));
		return 3;
	}
	printf("%s: ENOENT\n", missing[0]);

	fd = mkstemp(tmpl);
	if (fd < 0)
		fail("mkstemp", tmpl);
	if (write(fd, "#!/bin/sh\nexit 0\n", 17) != 17 || fchmod(fd, 0644) < 0)
		fail("writing", tmpl);
	close(fd);
	execv(tmpl, noexec);
	err = errno;
	unlink(tmpl);
	if (err != EACCES) {
		fprintf(stderr, "%s: execv %s: expected EACCES, got %s\n", prog, tmpl,
			strerror(err));
		return 3;
	}
	printf("%s: EACCES\n", tmpl);
	return 0;
}

static int do_script(int argc, char **argv)
{
	static const char body[] = "#!/bin/sh\nexit 0\n";
	char *av[] = {argv[0], NULL};
	int fd;

	if (argc != 1)
		usage();
	fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0)
		fail("create script", argv[0]);
	if (write(fd, body, sizeof(body) - 1) != (ssize_t)(sizeof(body) - 1))
		fail("write script", argv[0]);
	/* The mode given to open is filtered by the umask; the script must be executable. */
	if (fchmod(fd, 0755) < 0)
		fail("chmod script", argv[0]);
	/* Closed before the exec: an fd open for writing makes execve fail with ETXTBSY. */
	if (close(fd) < 0)
		fail("close script", argv[0]);
	execv(av[0], av);
	fail("execv script", argv[0]);
	return 1;
}

/* ---- file and privilege changes (issue 8) -------------------------------------------------- */

static void write_file_at(int dfd, const char *name, const char *body)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		fail("create", name);
	if (write(fd, body, strlen(body)) != (ssize_t)strlen(body) || close(fd) < 0)
		fail("write", name);
}

/* How Ansible's copy module, dpkg and editors write a file: a temporary, then rename. */
static int do_rename(int argc, char **argv)
{
	char tmp[512];

	if (argc != 2)
		usage();
	if (chdir(argv[0]) < 0)
		fail("chdir", argv[0]);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", argv[1]);
	write_file_at(AT_FDCWD, tmp, "renamed-content\n");
	if (syscall(SYS_rename, tmp, argv[1]) < 0)
		fail("rename", tmp);
	return 0;
}

static int do_renameat2(int argc, char **argv)
{
	int dfd;

	if (argc != 3)
		usage();
	dfd = open_dir(argv[0]);
	write_file_at(dfd, argv[1], "renameat2\n");
	if (syscall(SYS_renameat2, dfd, argv[1], dfd, argv[2], 1 /* RENAME_NOREPLACE */) < 0)
		fail("renameat2", argv[1]);
	close(dfd);
	return 0;
}

static int do_unlink(int argc, char **argv)
{
	char d[512];
	int dfd;

	if (argc != 2)
		usage();
	dfd = open_dir(argv[0]);
	write_file_at(dfd, argv[1], "x");
	if (unlinkat(dfd, argv[1], 0) < 0)
		fail("unlinkat", argv[1]);
	snprintf(d, sizeof(d), "%s/%s.d", argv[0], argv[1]);
	if (mkdir(d, 0700) < 0)
		fail("mkdir", d);
	if (syscall(SYS_rmdir, d) < 0)
		fail("rmdir", d);
	close(dfd);
	return 0;
}

static int do_chmod(int argc, char **argv)
{
	long mode;
	int fd;

	if (argc != 2)
		usage();
	mode = strtol(argv[1], NULL, 8);
	if (syscall(SYS_chmod, argv[0], (mode_t)mode) < 0)
		fail("chmod", argv[0]);
	fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, 0600) < 0 || fchmod(fd, (mode_t)mode) < 0)
		fail("fchmod", argv[0]);
	close(fd);
	return 0;
}

static int do_chown(int argc, char **argv)
{
	uid_t uid;
	gid_t gid;
	int fd;

	if (argc != 3)
		usage();
	uid = (uid_t)parse_num(argv[1], "uid", 0, 65535);
	gid = (gid_t)parse_num(argv[2], "gid", 0, 65535);
	if (syscall(SYS_chown, argv[0], uid, gid) < 0)
		fail("chown", argv[0]);
	fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fchown(fd, uid, gid) < 0)
		fail("fchown", argv[0]);
	close(fd);
	return 0;
}

static int do_link(int argc, char **argv)
{
	char sym[512];

	if (argc != 2)
		usage();
	if (syscall(SYS_link, argv[0], argv[1]) < 0)
		fail("link", argv[1]);
	snprintf(sym, sizeof(sym), "%s.sym", argv[1]);
	if (syscall(SYS_symlink, argv[0], sym) < 0)
		fail("symlink", sym);
	return 0;
}

/* A file with no name until linkat gives it one: opens alone would never show its path. */
static int do_tmpfile(int argc, char **argv)
{
	int dfd, fd;

	if (argc != 2)
		usage();
	fd = open(argv[0], O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		fail("open O_TMPFILE in", argv[0]);
	if (write(fd, "tmpfile\n", 8) != 8)
		fail("write", "tmpfile");
	dfd = open_dir(argv[0]);
	if (linkat(fd, "", dfd, argv[1], AT_EMPTY_PATH) < 0)
		fail("linkat AT_EMPTY_PATH", argv[1]);
	close(fd);
	close(dfd);
	return 0;
}

/* The other way to name it, the one linkat(2) documents for callers without
 * CAP_DAC_READ_SEARCH: through /proc/self/fd. */
static int do_tmpfileproc(int argc, char **argv)
{
	char proc[64], dest[512];
	int fd;

	if (argc != 2)
		usage();
	fd = open(argv[0], O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		fail("open O_TMPFILE in", argv[0]);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(dest, sizeof(dest), "%s/%s", argv[0], argv[1]);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, dest, AT_SYMLINK_FOLLOW) < 0)
		fail("linkat /proc/self/fd", dest);
	printf("%s\n", proc);
	close(fd);
	return 0;
}

static int do_truncate(int argc, char **argv)
{
	if (argc != 2)
		usage();
	if (truncate(argv[0], parse_num(argv[1], "length", 0, 1 << 30)) < 0)
		fail("truncate", argv[0]);
	return 0;
}

static int do_mount(int argc, char **argv)
{
	char a[512], b[512];
	int tfd;

	if (argc != 1)
		usage();
	snprintf(a, sizeof(a), "%s/a", argv[0]);
	snprintf(b, sizeof(b), "%s/b", argv[0]);
	if (mkdir(a, 0700) < 0 || mkdir(b, 0700) < 0)
		fail("mkdir under", argv[0]);
	if (mount("runseal-test", a, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") < 0)
		fail("mount tmpfs on", a);
	tfd = syscall(SYS_open_tree, AT_FDCWD, a, 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
	if (tfd < 0)
		fail("open_tree", a);
	if (syscall(SYS_move_mount, tfd, "", AT_FDCWD, b, 0x4 /* MOVE_MOUNT_F_EMPTY_PATH */) < 0)
		fail("move_mount to", b);
	close(tfd);
	if (umount2(b, 0) < 0)
		fail("umount2", b);
	if (umount2(a, 0) < 0)
		fail("umount2", a);
	return 0;
}

static int do_privdrop(int argc, char **argv)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	(void)argv;
	if (argc != 0)
		usage();
	if (syscall(SYS_capget, &hdr, data) < 0)
		fail("capget", "self");
	data[0].effective &= ~(1u << 13); /* CAP_NET_RAW */
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail("capset", "self");
	if (syscall(SYS_setresgid, 65534, 65534, 65534) < 0)
		fail("setresgid", "65534");
	if (syscall(SYS_setresuid, 65534, 65534, 65534) < 0)
		fail("setresuid", "65534");
	if (syscall(SYS_setuid, 0) == 0 || errno != EPERM) {
		fprintf(stderr, "%s: setuid(0) after dropping root did not fail with EPERM\n",
			prog);
		return 1;
	}
	printf("dropped\n");
	return 0;
}

/* ---- connect against a thread rewriting its sockaddr (issue 8) ------------------------------ */

struct race {
	struct sockaddr_in sa;
	uint16_t p1, p2;
	volatile int stop;
};

static void *flip_port(void *arg)
{
	struct race *r = arg;

	/* Each port holds for a while, so that both the kernel's copy at entry and a copy
	 * read back at exit can see either. */
	while (!r->stop) {
		__atomic_store_n(&r->sa.sin_port, r->p2, __ATOMIC_RELAXED);
		for (volatile int i = 0; i < 3000; i++)
			;
		__atomic_store_n(&r->sa.sin_port, r->p1, __ATOMIC_RELAXED);
		for (volatile int i = 0; i < 3000; i++)
			;
	}
	return NULL;
}

static int do_connectrace(int argc, char **argv)
{
	struct race r = {.sa = {.sin_family = AF_INET}};
	struct sockaddr_in peer;
	socklen_t plen;
	pthread_t t;
	long hits1 = 0, hits2 = 0, lies = 0, i;
	FILE *out;

	if (argc != 4)
		usage();
	if (inet_pton(AF_INET, argv[0], &r.sa.sin_addr) != 1) {
		fprintf(stderr, "%s: '%s' is not an IPv4 literal\n", prog, argv[0]);
		return 2;
	}
	r.p1 = htons((uint16_t)parse_num(argv[1], "port", 1, 65535));
	r.p2 = htons((uint16_t)parse_num(argv[2], "port", 1, 65535));
	out = fopen(argv[3], "w");
	if (!out)
		fail("create", argv[3]);
	r.sa.sin_port = r.p1;
	if ((errno = pthread_create(&t, NULL, flip_port, &r)))
		fail("pthread_create", "for connectrace");
	/* Until the race has really been run both ways, and the buffer has been seen to say
	 * another port than the one reached right after the call (what a tracer reading it
	 * at exit would see) a few times: the racer may start late. */
	for (i = 0; i < 5000 && (hits1 < 20 || hits2 < 20 || lies < 10); i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			fail("socket for", argv[0]);
		if (connect(fd, (struct sockaddr *)&r.sa, sizeof(r.sa)) < 0)
			fail("connect to", argv[0]);
		plen = sizeof(peer);
		uint16_t after = __atomic_load_n(&r.sa.sin_port, __ATOMIC_RELAXED);

		if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
			fail("getpeername", argv[0]);
		if (after != peer.sin_port)
			lies++;
		if (peer.sin_port == r.p1)
			hits1++;
		else
			hits2++;
		fprintf(out, "%d\n", ntohs(peer.sin_port));
		close(fd);
	}
	r.stop = 1;
	pthread_join(t, NULL);
	if (fclose(out) != 0)
		fail("write", argv[3]);
	printf("%ld connects\n", i);
	return 0;
}

/* ---- network without connect (issue 8) ------------------------------------------------------ */

static struct sockaddr_in inet_addr_port(const char *host, const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "%s: '%s' is not an IPv4 literal\n", prog, host);
		exit(2);
	}
	sa.sin_port = htons((uint16_t)parse_num(port, "port", 1, 65535));
	return sa;
}

static int do_udp(int argc, char **argv)
{
	struct sockaddr_in d1, d2, d3;
	struct iovec iov = {.iov_base = "dgram", .iov_len = 5};
	struct msghdr m = {
	    .msg_name = &d2, .msg_namelen = sizeof(d2), .msg_iov = &iov, .msg_iovlen = 1};
	struct mmsghdr mm[2];
	int fd, i;

	if (argc != 4)
		usage();
	d1 = inet_addr_port(argv[0], argv[1]);
	d2 = inet_addr_port(argv[0], argv[2]);
	d3 = inet_addr_port(argv[0], argv[3]);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket for", argv[0]);
	for (i = 0; i < 5; i++)
		if (sendto(fd, "dgram", 5, 0, (struct sockaddr *)&d1, sizeof(d1)) != 5)
			fail("sendto", argv[1]);
	for (i = 0; i < 3; i++)
		if (sendmsg(fd, &m, 0) != 5)
			fail("sendmsg", argv[2]);
	memset(mm, 0, sizeof(mm));
	mm[0].msg_hdr = (struct msghdr){
	    .msg_name = &d3, .msg_namelen = sizeof(d3), .msg_iov = &iov, .msg_iovlen = 1};
	mm[1].msg_hdr = (struct msghdr){
	    .msg_name = &d1, .msg_namelen = sizeof(d1), .msg_iov = &iov, .msg_iovlen = 1};
	if (sendmmsg(fd, mm, 2, 0) != 2)
		fail("sendmmsg", argv[3]);
	close(fd);
	printf("sent\n");
	return 0;
}

static int do_fastopen(int argc, char **argv)
{
	struct sockaddr_in sa;
	int fd;

	if (argc != 2)
		usage();
	sa = inet_addr_port(argv[0], argv[1]);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket for", argv[0]);
	if (sendto(fd, "tfo", 3, MSG_FASTOPEN, (struct sockaddr *)&sa, sizeof(sa)) != 3)
		fail("sendto MSG_FASTOPEN to", argv[0]);
	close(fd);
	printf("sent\n");
	return 0;
}

static int udp_socket(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	*sa = (struct sockaddr_in){.sin_family = AF_INET};
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)sa, &len) < 0)
		fail("bind UDP on", "127.0.0.1");
	return fd;
}

static int do_udpserve(int argc, char **argv)
{
	struct sockaddr_in srv, a, b, from;
	socklen_t len;
	char buf[16];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr m = {.msg_name = &from, .msg_iov = &iov, .msg_iovlen = 1};
	int s, ca, cb;

	(void)argv;
	if (argc != 0)
		usage();
	s = udp_socket(&srv);
	ca = udp_socket(&a);
	cb = udp_socket(&b);
	printf("bound %d\na %d\nb %d\n", ntohs(srv.sin_port), ntohs(a.sin_port), ntohs(b.sin_port));
	for (int i = 0; i < 2; i++) {
		if (sendto(ca, "a", 1, 0, (struct sockaddr *)&srv, sizeof(srv)) != 1)
			fail("sendto", "server");
		len = sizeof(from);
		if (recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len) != 1)
			fail("recvfrom", "a");
	}
	if (sendto(cb, "b", 1, 0, (struct sockaddr *)&srv, sizeof(srv)) != 1)
		fail("sendto", "server");
	m.msg_namelen = sizeof(from);
	if (recvmsg(s, &m, 0) != 1)
		fail("recvmsg", "b");
	close(s);
	close(ca);
	close(cb);
	return 0;
}

static int do_mmsg(int argc, char **argv)
{
	struct mmsghdr *mm;
	struct sockaddr_in *to;
	struct iovec iov = {.iov_base = "m", .iov_len = 1};
	int fd, n;

	if (argc != 3 || (n = atoi(argv[2])) <= 0 || n > 1024)
		usage();
	mm = calloc(n, sizeof(*mm));
	to = calloc(n, sizeof(*to));
	if (!mm || !to)
		fail("calloc", "mmsg");
	for (int i = 0; i < n; i++) {
		char port[16];

		snprintf(port, sizeof(port), "%d", atoi(argv[1]) + i);
		to[i] = inet_addr_port(argv[0], port);
		mm[i].msg_hdr = (struct msghdr){.msg_name = &to[i],
						.msg_namelen = sizeof(to[i]),
						.msg_iov = &iov,
						.msg_iovlen = 1};
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendmmsg(fd, mm, n, 0) != n)
		fail("sendmmsg to", argv[0]);
	close(fd);
	free(mm);
	free(to);
	printf("sent %d\n", n);
	return 0;
}

static int do_listen(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET}, cl;
	socklen_t len = sizeof(sa);
	int lfd, cfd, afd;

	(void)argv;
	if (argc != 0)
		usage();
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		fail("listen on", "127.0.0.1");
	printf("listen %d\n", ntohs(sa.sin_port));
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail("connect to own listener", "127.0.0.1");
	len = sizeof(cl);
	if (getsockname(cfd, (struct sockaddr *)&cl, &len) < 0)
		fail("getsockname", "client");
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (afd < 0)
		fail("accept4", "127.0.0.1");
	printf("client %d\n", ntohs(cl.sin_port));
	close(afd);
	close(cfd);
	close(lfd);
	return 0;
}

/* ---- names that are no path (issue 8) -------------------------------------------------------- */

static int do_memfdexec(int argc, char **argv)
{
	char *av[] = {"memfd-true", "memfd-marker", NULL};
	char buf[65536];
	int in, fd;
	ssize_t n;

	(void)argv;
	if (argc != 0)
		usage();
	fd = memfd_create("runseal-memfd", 0);
	if (fd < 0)
		fail("memfd_create", "runseal-memfd");
	in = open("/bin/true", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		fail("open", "/bin/true");
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd, buf, n) != n)
			fail("write", "memfd");
	close(in);
	syscall(SYS_execveat, fd, "", av, environ, AT_EMPTY_PATH);
	fail("execveat", "memfd");
	return 1;
}

static int do_detached(int argc, char **argv)
{
	char m[512];
	int tfd, fd;

	if (argc != 1)
		usage();
	snprintf(m, sizeof(m), "%s/m", argv[0]);
	if (mkdir(m, 0700) < 0)
		fail("mkdir", m);
	if (mount("runseal-detached", m, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") < 0)
		fail("mount tmpfs on", m);
	write_file_at(AT_FDCWD, strcat(strcpy((char[600]){0}, m), "/f"), "f\n");
	tfd = syscall(SYS_open_tree, AT_FDCWD, m, 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
	if (tfd < 0)
		fail("open_tree", m);
	fd = openat(tfd, "f", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("openat through the detached tree", "f");
	close(fd);
	close(tfd);
	if (umount2(m, 0) < 0)
		fail("umount2", m);
	return 0;
}

static int do_chrootopen(int argc, char **argv)
{
	char jail[512];
	int dfd, fd;

	if (argc != 1)
		usage();
	snprintf(jail, sizeof(jail), "%s/jail", argv[0]);
	dfd = open_dir(argv[0]);
	if (chroot(jail) < 0)
		fail("chroot", jail);
	fd = openat(dfd, "beyond-jail", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("openat from outside the root", "beyond-jail");
	close(fd);
	close(dfd);
	return 0;
}

/* ---- 32-bit syscalls from a 64-bit process (issue 8) ----------------------------------------- */

static long int80(long nr, long a, long b, long c)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

/* int $0x80 truncates pointers to 32 bits: the path must live below 4 GiB. */
static int do_int80(int argc, char **argv)
{
	char *low;
	long pid, fd;

	if (argc != 1)
		usage();
	low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1,
		   0);
	if (low == MAP_FAILED)
		fail("mmap MAP_32BIT for", argv[0]);
	snprintf(low, 4096, "%s", argv[0]);
	pid = int80(20 /* getpid */, 0, 0, 0);
	if (pid != getpid()) {
		fprintf(stderr, "%s: int $0x80 getpid returned %ld, not %d\n", prog, pid, getpid());
		return 1;
	}
	fd = int80(5 /* open */, (long)low, O_RDONLY, 0);
	if (fd < 0) {
		errno = (int)-fd;
		fail("int $0x80 open", argv[0]);
	}
	printf("fd %ld\n", fd);
	close((int)fd);
	return 0;
}

/* ---- io_uring (issue 8), with raw syscalls: no liburing here ----------------------------------
 */

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static void ring_init(struct ring *r)
{
	struct io_uring_params p;
	size_t sqsz, cqsz;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = (int)syscall(SYS_io_uring_setup, 4, &p);
	if (r->fd < 0)
		fail("io_uring_setup", "4 entries");
	sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP && cqsz > sqsz)
		sqsz = cqsz;
	sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		  IORING_OFF_SQ_RING);
	cq = (p.features & IORING_FEAT_SINGLE_MMAP)
		 ? sq
		 : mmap(NULL, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
			IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		fail("mmap", "io_uring rings");
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
}

/* Submits one request and waits for its completion; returns its result. */
static int ring_run(struct ring *r, const struct io_uring_sqe *sqe)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	int res;

	r->sqes[idx] = *sqe;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		fail("io_uring_enter", "one request");
	head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/* mkdirat, renameat, symlinkat, linkat, unlinkat through the ring, in the directory dfd,
 * user_data 11..15; exits with a message if one fails. */
static void uring_fs(struct ring *r, int dfd, const char *existing)
{
	struct io_uring_sqe sqe[5];
	int i;

	memset(sqe, 0, sizeof(sqe));
	sqe[0].opcode = IORING_OP_MKDIRAT;
	sqe[0].fd = dfd;
	sqe[0].addr = (unsigned long)"u-dir";
	sqe[0].len = 0700;
	sqe[1].opcode = IORING_OP_RENAMEAT;
	sqe[1].fd = dfd;
	sqe[1].addr = (unsigned long)"u-dir";
	sqe[1].len = (unsigned)dfd;
	sqe[1].addr2 = (unsigned long)"u-dir2";
	sqe[2].opcode = IORING_OP_SYMLINKAT;
	sqe[2].fd = dfd;
	sqe[2].addr = (unsigned long)"u-target";
	sqe[2].addr2 = (unsigned long)"u-sym";
	sqe[3].opcode = IORING_OP_LINKAT;
	sqe[3].fd = dfd;
	sqe[3].addr = (unsigned long)existing;
	sqe[3].len = (unsigned)dfd;
	sqe[3].addr2 = (unsigned long)"u-link";
	sqe[4].opcode = IORING_OP_UNLINKAT;
	sqe[4].fd = dfd;
	sqe[4].addr = (unsigned long)"u-link";
	for (i = 0; i < 5; i++) {
		int res;

		sqe[i].user_data = 11 + i;
		res = ring_run(r, &sqe[i]);
		if (res < 0) {
			errno = -res;
			fail("io_uring file change, request", i == 0 ? "mkdirat" : "rename/link");
		}
	}
}

/* An accept through the ring (user_data 4) of a connection of its own to its own
 * listener on 127.0.0.1; prints the new descriptor and the client's port. */
static void uring_accept(struct ring *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET}, cl;
	socklen_t len = sizeof(sa);
	struct io_uring_sqe sqe;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), cfd, afd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		fail("listen on", "127.0.0.1");
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	len = sizeof(cl);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(cfd, (struct sockaddr *)&cl, &len) < 0)
		fail("connect to own listener", "127.0.0.1");
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_ACCEPT;
	sqe.fd = lfd;
	sqe.accept_flags = SOCK_CLOEXEC;
	sqe.user_data = 4;
	afd = ring_run(r, &sqe);
	if (afd < 0) {
		errno = -afd;
		fail("io_uring accept on", "127.0.0.1");
	}
	printf("accept %d client %d\n", afd, ntohs(cl.sin_port));
	close(afd);
	close(cfd);
	close(lfd);
}

static int do_uring(int argc, char **argv)
{
	struct ring r;
	struct io_uring_sqe sqe;
	struct sockaddr_in tcp, udp;
	struct iovec iov = {.iov_base = "uring", .iov_len = 5};
	struct msghdr m = {
	    .msg_name = &udp, .msg_namelen = sizeof(udp), .msg_iov = &iov, .msg_iovlen = 1};
	int dfd, sfd, ufd, fd, rc, sent;

	if (argc != 5)
		usage();
	tcp = inet_addr_port(argv[2], argv[3]);
	udp = inet_addr_port(argv[2], argv[4]);
	ring_init(&r);
	dfd = open_dir(argv[0]);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_OPENAT;
	sqe.fd = dfd;
	sqe.addr = (unsigned long)argv[1];
	sqe.open_flags = O_RDONLY | O_CLOEXEC;
	sqe.user_data = 1;
	fd = ring_run(&r, &sqe);
	if (fd < 0) {
		errno = -fd;
		fail("io_uring openat", argv[1]);
	}
	sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_CONNECT;
	sqe.fd = sfd;
	sqe.addr = (unsigned long)&tcp;
	sqe.off = sizeof(tcp);
	sqe.user_data = 2;
	rc = ring_run(&r, &sqe);
	if (rc < 0) {
		errno = -rc;
		fail("io_uring connect to", argv[3]);
	}
	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_SENDMSG;
	sqe.fd = ufd;
	sqe.addr = (unsigned long)&m;
	sqe.user_data = 3;
	sent = ring_run(&r, &sqe);
	if (sent != 5) {
		errno = sent < 0 ? -sent : EIO;
		fail("io_uring sendmsg to", argv[4]);
	}
	printf("open %d connect %d sent %d\n", fd, rc, sent);
	uring_accept(&r);
	uring_fs(&r, dfd, argv[1]);
	close(fd);
	close(sfd);
	close(ufd);
	close(dfd);
	close(r.fd);
	return 0;
}

/* ---- opens without a path, and descriptors taken from another process (issue 8) -------------- */

static int do_byhandle(int argc, char **argv)
{
	struct {
		struct file_handle fh;
		// cppcheck-suppress unusedStructMember ; room for the handle's bytes
		unsigned char buf[MAX_HANDLE_SZ];
	} h;
	char dir[512], *slash;
	int mount_id, mfd, fd;

	if (argc != 1)
		usage();
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, argv[0], &h.fh, &mount_id, 0) < 0)
		fail("name_to_handle_at", argv[0]);
	snprintf(dir, sizeof(dir), "%s", argv[0]);
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	mfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		fail("open mount directory", dir);
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("open_by_handle_at", argv[0]);
	printf("fd %d\n", fd);
	close(fd);
	close(mfd);
	return 0;
}

static int do_getfd(int argc, char **argv)
{
	int pidfd, i;

	if (argc < 2)
		usage();
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)parse_num(argv[0], "pid", 1, 1 << 22), 0);
	if (pidfd < 0)
		fail("pidfd_open", argv[0]);
	for (i = 1; i < argc; i++) {
		int fd = (int)syscall(SYS_pidfd_getfd, pidfd,
				      (int)parse_num(argv[i], "fd", 0, 1 << 20), 0);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0)
			fail("pidfd_getfd", argv[i]);
		printf("%s %lu\n", argv[i], (unsigned long)st.st_ino);
		close(fd);
	}
	close(pidfd);
	return 0;
}

static int do_mkdirs(int argc, char **argv)
{
	char p[512];
	int dfd;

	if (argc != 1)
		usage();
	dfd = open_dir(argv[0]);
	snprintf(p, sizeof(p), "%s/newdir", argv[0]);
	if (syscall(SYS_mkdir, p, 0750) < 0)
		fail("mkdir", p);
	if (mkdirat(dfd, "newdir2", 0700) < 0)
		fail("mkdirat", "newdir2");
	snprintf(p, sizeof(p), "%s/fifo", argv[0]);
	if (syscall(SYS_mknod, p, S_IFIFO | 0600, 0) < 0)
		fail("mknod", p);
	if (mknodat(dfd, "null2", S_IFCHR | 0600, makedev(1, 3)) < 0)
		fail("mknodat", "null2");
	close(dfd);
	return 0;
}

/* Each datagram from its own process: one destination record per process, so every
 * record can be checked against the port its datagram reached. */
static int do_udprace(int argc, char **argv)
{
	struct race *r;
	pthread_t t;
	long n, i;

	if (argc != 4)
		usage();
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		fail("mmap", "shared sockaddr");
	r->sa = inet_addr_port(argv[0], argv[1]);
	r->p1 = r->sa.sin_port;
	r->p2 = inet_addr_port(argv[0], argv[2]).sin_port;
	r->stop = 0;
	n = parse_num(argv[3], "count", 1, 10000);
	if ((errno = pthread_create(&t, NULL, flip_port, r)))
		fail("pthread_create", "for udprace");
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			fail("fork", "udprace child");
		if (pid == 0) {
			char msg[16];
			int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			int len = snprintf(msg, sizeof(msg), "%d", (int)getpid());

			if (fd < 0 || sendto(fd, msg, len, 0, (struct sockaddr *)&r->sa,
					     sizeof(r->sa)) != len)
				_exit(1);
			_exit(0);
		}
		if (waitpid(pid, NULL, 0) < 0)
			fail("waitpid", "udprace child");
	}
	r->stop = 1;
	pthread_join(t, NULL);
	return 0;
}

static int do_udp6(int argc, char **argv)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd;

	if (argc != 1)
		usage();
	sa.sin6_port = htons((uint16_t)parse_num(argv[0], "port", 1, 65535));
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, "dgram6", 6, 0, (struct sockaddr *)&sa, sizeof(sa)) != 6)
		fail("sendto", "[::1]");
	close(fd);
	return 0;
}

struct dupper {
	int target, other;
	volatile int stop;
};

static void *dup_loop(void *arg)
{
	struct dupper *d = arg;

	while (!d->stop) {
		dup2(d->other, d->target);
		for (volatile int i = 0; i < 2000; i++)
			;
	}
	return NULL;
}

/* The fd a connect names can be pointed at another socket while the call runs: the record
 * must still name the socket the kernel connected. */
static int do_connectdup(int argc, char **argv)
{
	struct sockaddr_in p1, p2;
	struct dupper d;
	struct stat other_st, st;
	pthread_t t;
	long i, swapped = 0, ok = 0;

	if (argc != 3)
		usage();
	p1 = inet_addr_port(argv[0], argv[1]);
	p2 = inet_addr_port(argv[0], argv[2]);
	d.other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d.other < 0 || connect(d.other, (struct sockaddr *)&p2, sizeof(p2)) < 0 ||
	    fstat(d.other, &other_st) < 0)
		fail("connect to", argv[2]);
	d.target = 100;
	d.stop = 0;
	if (dup2(d.other, d.target) < 0)
		fail("dup2", "target fd");
	if ((errno = pthread_create(&t, NULL, dup_loop, &d)))
		fail("pthread_create", "for connectdup");
	for (i = 0; i < 3000 && swapped < 5; i++) {
		int a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (a < 0 || dup2(a, d.target) < 0)
			fail("socket for", argv[1]);
		close(a);
		if (connect(d.target, (struct sockaddr *)&p1, sizeof(p1)) == 0) {
			ok++;
			if (fstat(d.target, &st) == 0 && st.st_ino == other_st.st_ino)
				swapped++;
		}
	}
	d.stop = 1;
	pthread_join(t, NULL);
	printf("ok %ld swapped %ld\n", ok, swapped);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
    {"longargv", do_longargv},
    {"openrel", do_openrel},
    {"opendirfd", do_opendirfd},
    {"openfail", do_openfail},
    {"openfaildirfd", do_openfaildirfd},
    {"create", do_create},
    {"openat2", do_openat2},
    {"connect", do_connect},
    {"connectnb", do_connectnb},
    {"connectunix", do_connectunix},
    {"daemon", do_daemon},
    {"thread", do_thread},
    {"threadexec", do_threadexec},
    {"sleep", do_sleep},
    {"missingexec", do_missingexec},
    {"script", do_script},
    {"rename", do_rename},
    {"renameat2", do_renameat2},
    {"unlink", do_unlink},
    {"chmod", do_chmod},
    {"chown", do_chown},
    {"link", do_link},
    {"tmpfile", do_tmpfile},
    {"tmpfileproc", do_tmpfileproc},
    {"mkdirs", do_mkdirs},
    {"truncate", do_truncate},
    {"mount", do_mount},
    {"privdrop", do_privdrop},
    {"connectrace", do_connectrace},
    {"udp", do_udp},
    {"udpserve", do_udpserve},
    {"mmsg", do_mmsg},
    {"fastopen", do_fastopen},
    {"udprace", do_udprace},
    {"udp6", do_udp6},
    {"connectdup", do_connectdup},
    {"listen", do_listen},
    {"memfdexec", do_memfdexec},
    {"detached", do_detached},
    {"chrootopen", do_chrootopen},
    {"int80", do_int80},
    {"uring", do_uring},
    {"byhandle", do_byhandle},
    {"getfd", do_getfd},
};

int main(int argc, char **argv)
{
	size_t i;

	/* Output is read by tests through pipes: make it appear before an exec replaces us. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2)
		usage();
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 2, argv + 2);
	}
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
	usage();
	return 2;
}
