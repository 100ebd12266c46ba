/* Unit tests for user/decode.c */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/bpf.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "decode.h"

#define MAXN 24

/* Decodes flags and compares with the NULL-terminated list of expected names. */
static void check_flags(unsigned long flags, const char *const *want)
{
	const char *names[MAXN];
	char buf[32];
	size_t n = decode_open_flags(flags, names, MAXN, buf, sizeof(buf)), i;

	for (i = 0; want[i]; i++) {
		assert_true(i < n);
		assert_string_equal(names[i], want[i]);
	}
	assert_int_equal(n, i);
}

#define FLAGS(f, ...) check_flags((f), (const char *const[]){__VA_ARGS__, NULL})

static void test_flags_access(void **state)
{
	(void)state;
	FLAGS(O_RDONLY, "read");
	FLAGS(O_WRONLY | O_CREAT | O_TRUNC, "write", "create", "truncate");
	FLAGS(O_RDWR | O_APPEND, "read", "write", "append");
	FLAGS(O_RDONLY | O_DIRECTORY | O_CLOEXEC, "read", "directory", "cloexec");
	FLAGS(O_PATH, "path");
	FLAGS(O_PATH | O_WRONLY | O_NOFOLLOW, "path", "nofollow");
}

static void test_flags_composites(void **state)
{
	(void)state;
	FLAGS(O_TMPFILE | O_RDWR, "read", "write", "tmpfile");
	FLAGS(O_WRONLY | O_SYNC, "write", "sync");
	FLAGS(O_WRONLY | O_DSYNC, "write", "dsync");
	FLAGS(O_RDONLY | O_NONBLOCK | O_NOCTTY | O_EXCL | O_CREAT, "read", "create", "exclusive",
	      "noctty", "nonblock");
	FLAGS(O_RDONLY | O_DIRECT | 0100000 | O_NOATIME | O_ASYNC, "read", "async", "direct",
	      "largefile", "noatime");
}

static void test_flags_unknown(void **state)
{
	(void)state;
	FLAGS(O_RDONLY | 0x40000000UL, "read", "0x40000000");
	FLAGS(O_ACCMODE, "0x3");
	FLAGS(O_RDWR | O_CREAT | 0x80000000UL, "read", "write", "create", "0x80000000");
}

static void test_flags_max(void **state)
{
	const char *names[4] = {"guard", "guard", "guard", "guard"};
	char buf[32] = "";

	(void)state;
	assert_int_equal(decode_open_flags(O_RDWR | O_CREAT | O_TRUNC | 0x40000000UL, names, 2, buf,
					   sizeof(buf)),
			 2);
	assert_string_equal(names[0], "read");
	assert_string_equal(names[1], "write");
	assert_string_equal(names[2], "guard");
	assert_string_equal(buf, "");
	assert_int_equal(decode_open_flags(O_RDWR, names, 0, buf, sizeof(buf)), 0);
	assert_string_equal(names[0], "read");
	/* No room for the hex entry: it is dropped, the count stays honest. */
	assert_int_equal(decode_open_flags(O_RDONLY | 0x40000000UL, names, 4, NULL, 0), 1);
}

static void test_errno(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(decode_errno(ENOENT, buf, sizeof(buf)), "ENOENT");
	assert_string_equal(decode_errno(EACCES, buf, sizeof(buf)), "EACCES");
	assert_string_equal(decode_errno(EPERM, buf, sizeof(buf)), "EPERM");
	assert_string_equal(decode_errno(ECONNREFUSED, buf, sizeof(buf)), "ECONNREFUSED");
	assert_string_equal(decode_errno(EINPROGRESS, buf, sizeof(buf)), "EINPROGRESS");
	assert_string_equal(decode_errno(ENAMETOOLONG, buf, sizeof(buf)), "ENAMETOOLONG");
	assert_string_equal(decode_errno(EAGAIN, buf, sizeof(buf)), "EAGAIN");
	assert_string_equal(decode_errno(E2BIG, buf, sizeof(buf)), "E2BIG");
	assert_string_equal(decode_errno(ETXTBSY, buf, sizeof(buf)), "ETXTBSY");
	assert_string_equal(decode_errno(133, buf, sizeof(buf)), "EHWPOISON");
	assert_string_equal(decode_errno(4095, buf, sizeof(buf)), "E4095");
	assert_string_equal(decode_errno(0, buf, sizeof(buf)), "E0");
}

static void test_errno_table(void **state)
{
	char buf[16], num[16];

	(void)state;
	/* Linux leaves 41 and 58 unassigned; every other number up to 133 has a name. */
	for (int e = 1; e <= 133; e++) {
		const char *name = decode_errno(e, buf, sizeof(buf));

		snprintf(num, sizeof(num), "E%d", e);
		assert_true(name[0] == 'E');
		if (e == 41 || e == 58)
			assert_string_equal(name, num);
		else
			assert_string_not_equal(name, num);
	}
}

static void test_sockaddr_inet(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
	struct sockaddr_info info;

	(void)state;
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	assert_int_equal(decode_sockaddr(&in, sizeof(in), &info), 0);
	assert_string_equal(info.family, "inet");
	assert_int_equal(info.family_num, AF_INET);
	assert_string_equal(info.addr, "127.0.0.1");
	assert_int_equal(info.port, 8080);
	assert_int_equal(decode_sockaddr(&in, 8, &info), 0);
	assert_int_equal(decode_sockaddr(&in, 7, &info), -1);
	assert_string_equal(info.family, "other");
	assert_int_equal(info.family_num, AF_INET);
}

static void test_sockaddr_inet6(void **state)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	struct sockaddr_info info;

	(void)state;
	in6.sin6_addr = in6addr_loopback;
	assert_int_equal(decode_sockaddr(&in6, sizeof(in6), &info), 0);
	assert_string_equal(info.family, "inet6");
	assert_string_equal(info.addr, "::1");
	assert_int_equal(info.port, 443);
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr);
	assert_int_equal(decode_sockaddr(&in6, sizeof(in6), &info), 0);
	assert_string_equal(info.addr, "::ffff:10.0.0.1");
	assert_int_equal(decode_sockaddr(&in6, 23, &info), -1);
}

static void test_sockaddr_unix(void **state)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_info info;
	size_t base = offsetof(struct sockaddr_un, sun_path);

	(void)state;
	strcpy(un.sun_path, "/run/docker.sock");
	assert_int_equal(decode_sockaddr(&un, sizeof(un), &info), 0);
	assert_string_equal(info.family, "unix");
	assert_string_equal(info.path, "/run/docker.sock");
	assert_int_equal(info.path_len, strlen("/run/docker.sock"));
	assert_false(info.abstract);
	assert_int_equal(info.port, -1);
	/* Not NUL-terminated within len: the path ends at len. */
	assert_int_equal(decode_sockaddr(&un, base + 4, &info), 0);
	assert_string_equal(info.path, "/run");
	assert_int_equal(info.path_len, 4);
}

static void test_sockaddr_abstract(void **state)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_info info;
	size_t base = offsetof(struct sockaddr_un, sun_path);

	(void)state;
	memcpy(un.sun_path, "\0foo\0bar", 8);
	assert_int_equal(decode_sockaddr(&un, base + 4, &info), 0);
	assert_true(info.abstract);
	assert_int_equal(info.path_len, 4);
	assert_memory_equal(info.path, "@foo", 5);
	/* NULs inside an abstract name are part of it. */
	assert_int_equal(decode_sockaddr(&un, base + 8, &info), 0);
	assert_int_equal(info.path_len, 8);
	assert_memory_equal(info.path, "@foo\0bar", 8);
}

static void test_sockaddr_unnamed_short_other(void **state)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_storage ss = {.ss_family = AF_NETLINK};
	struct sockaddr_info info;

	(void)state;
	assert_int_equal(decode_sockaddr(&un, sizeof(sa_family_t), &info), 0);
	assert_string_equal(info.family, "unix");
	assert_string_equal(info.path, "");
	assert_int_equal(info.path_len, 0);
	assert_false(info.abstract);
	assert_int_equal(decode_sockaddr(&un, 1, &info), -1);
	assert_int_equal(decode_sockaddr(&un, 0, &info), -1);
	assert_int_equal(decode_sockaddr(&ss, sizeof(ss), &info), 0);
	assert_string_equal(info.family, "other");
	assert_int_equal(info.family_num, AF_NETLINK);
	ss.ss_family = AF_UNSPEC;
	assert_int_equal(decode_sockaddr(&ss, sizeof(ss), &info), 0);
	assert_string_equal(info.family, "unspec");
}

static void check_join(const char *base, const char *rel, const char *want)
{
	char *got = path_join(base, rel);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_path_join(void **state)
{
	(void)state;
	check_join("/home/op", "notes.txt", "/home/op/notes.txt");
	check_join("/home/op", "./a/./b", "/home/op/a/b");
	check_join("/home/op", "../etc/passwd", "/home/etc/passwd");
	check_join("/home/op", "../../../../etc", "/etc");
	check_join("/", "..", "/");
	check_join("/home/op", "/etc//ssh/./sshd_config", "/etc/ssh/sshd_config");
	check_join("/home//op/", "a//b/", "/home/op/a/b");
	check_join("/home/op", "", "/home/op");
	check_join("/", "", "/");
	check_join("/a/b", "c/..", "/a/b");
	check_join("/a/b", "...", "/a/b/...");
	check_join("/a/b", "..x/.y", "/a/b/..x/.y");
}

static void check_comps(const char *buf, size_t len, unsigned ncomp, const char *want)
{
	char *got = path_from_components(buf, len, ncomp);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_path_from_components(void **state)
{
	(void)state;
	check_comps("c\0b\0a\0", 6, 3, "/a/b/c");
	check_comps("passwd\0etc\0", 11, 2, "/etc/passwd");
	check_comps("", 0, 0, "/");
	check_comps("x\0", 2, 0, "/");
	check_comps("tmp\0", 4, 1, "/tmp");
	/* Last component cut short, then ncomp larger than what is present. */
	check_comps("c\0b\0abc", 7, 3, "/abc/b/c");
	check_comps("c\0b\0", 4, 9, "/b/c");
	/* Only the first ncomp components count. */
	check_comps("c\0b\0a\0", 6, 2, "/b/c");
	check_comps(NULL, 0, 3, "/");
	/* A root dentry named "/" or an empty name must not double the separator. */
	check_comps("c\0\0b\0/\0", 7, 4, "/b/c");
}

/* ---- self-protection decoders (issue 8): checked against the system headers ---------- */

static void test_bpf_cmd(void **state)
{
	(void)state;
	assert_string_equal(decode_bpf_cmd(BPF_MAP_CREATE), "BPF_MAP_CREATE");
	assert_string_equal(decode_bpf_cmd(BPF_MAP_UPDATE_ELEM), "BPF_MAP_UPDATE_ELEM");
	assert_string_equal(decode_bpf_cmd(BPF_MAP_GET_FD_BY_ID), "BPF_MAP_GET_FD_BY_ID");
	assert_string_equal(decode_bpf_cmd(BPF_MAP_FREEZE), "BPF_MAP_FREEZE");
	assert_string_equal(decode_bpf_cmd(BPF_LINK_DETACH), "BPF_LINK_DETACH");
	assert_string_equal(decode_bpf_cmd(BPF_PROG_BIND_MAP), "BPF_PROG_BIND_MAP");
	assert_null(decode_bpf_cmd(1000));
}

static void test_ptrace_request(void **state)
{
	(void)state;
	assert_string_equal(decode_ptrace_request(PTRACE_ATTACH), "PTRACE_ATTACH");
	assert_string_equal(decode_ptrace_request(PTRACE_POKEDATA), "PTRACE_POKEDATA");
	assert_string_equal(decode_ptrace_request(PTRACE_SEIZE), "PTRACE_SEIZE");
	assert_string_equal(decode_ptrace_request(PTRACE_TRACEME), "PTRACE_TRACEME");
	assert_null(decode_ptrace_request(0x7777));
}

static void test_signal(void **state)
{
	char buf[24];

	(void)state;
	assert_string_equal(decode_signal(SIGKILL, buf, sizeof(buf)), "SIGKILL");
	assert_string_equal(decode_signal(SIGTERM, buf, sizeof(buf)), "SIGTERM");
	assert_string_equal(decode_signal(SIGSTOP, buf, sizeof(buf)), "SIGSTOP");
	assert_string_equal(decode_signal(SIGSYS, buf, sizeof(buf)), "SIGSYS");
	assert_string_equal(decode_signal(0, buf, sizeof(buf)), "0");
	assert_string_equal(decode_signal(35, buf, sizeof(buf)), "SIGRTMIN+3");
	assert_null(decode_signal(65, buf, sizeof(buf)));
}

static void test_memfd_flags(void **state)
{
	const char *n[8];
	char buf[24];

	(void)state;
	assert_int_equal(
	    decode_memfd_flags(MFD_CLOEXEC | MFD_ALLOW_SEALING, n, 8, buf, sizeof(buf)), 2);
	assert_string_equal(n[0], "cloexec");
	assert_string_equal(n[1], "allow_sealing");
	assert_int_equal(decode_memfd_flags(MFD_HUGETLB | (21u << 26), n, 8, buf, sizeof(buf)), 2);
	assert_string_equal(n[0], "hugetlb");
	assert_string_equal(n[1], "0x54000000");
	assert_int_equal(decode_memfd_flags(0, n, 8, buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flags_access),
	    cmocka_unit_test(test_flags_composites),
	    cmocka_unit_test(test_flags_unknown),
	    cmocka_unit_test(test_flags_max),
	    cmocka_unit_test(test_errno),
	    cmocka_unit_test(test_errno_table),
	    cmocka_unit_test(test_sockaddr_inet),
	    cmocka_unit_test(test_sockaddr_inet6),
	    cmocka_unit_test(test_sockaddr_unix),
	    cmocka_unit_test(test_sockaddr_abstract),
	    cmocka_unit_test(test_sockaddr_unnamed_short_other),
	    cmocka_unit_test(test_path_join),
	    cmocka_unit_test(test_path_from_components),
	    cmocka_unit_test(test_bpf_cmd),
	    cmocka_unit_test(test_ptrace_request),
	    cmocka_unit_test(test_signal),
	    cmocka_unit_test(test_memfd_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
