/* decode: turn the kernel's raw numbers and bytes into the names records carry. Pure. */
#ifndef RUNSEAL_DECODE_H
#define RUNSEAL_DECODE_H

#include <stdbool.h>
#include <stddef.h>

/* Names of the bits of an open(2) flags word: "read", "write", "create", "exclusive",
 * "noctty", "truncate", "append", "nonblock", "dsync", "sync", "async", "direct",
 * "largefile", "directory", "nofollow", "noatime", "cloexec", "path", "tmpfile"; unknown
 * bits as "0x..." in buf. Returns the count written to names (at most max). */
size_t decode_open_flags(unsigned long flags, const char **names, size_t max, char *buf,
			 size_t buflen);

/* "ENOENT" for 2; "E<n>" written to buf for an unknown number. err is positive. */
const char *decode_errno(int err, char *buf, size_t buflen);

struct sockaddr_info {
	const char *family; /* "inet", "inet6", "unix", "unspec" or "other" */
	int family_num;
	char addr[64];		/* numeric address for inet/inet6 */
	int port;		/* -1 when not inet */
	char path[110 * 4 + 2]; /* unix path; abstract names start with '@'; bytes kept as is */
	size_t path_len;
	bool abstract;
};

/* Decodes a sockaddr copied from user space (len bytes). Returns 0, -1 if len is too short
 * for the family it names. */
int decode_sockaddr(const void *sa, size_t len, struct sockaddr_info *out);

/* Joins base (absolute) and rel, then removes "." and ".." lexically. rel absolute: base is
 * ignored. Returns malloc'd string. */
char *path_join(const char *base, const char *rel);

/* The kernel writes a resolved path as its components leaf first, each NUL-terminated
 * ("c\0b\0a\0" for /a/b/c). Returns the malloc'd absolute path ("/" for none). */
char *path_from_components(const char *buf, size_t len, unsigned ncomp);

/* ---- self-protection records (issue 8) ---- */

/* "BPF_MAP_UPDATE_ELEM" for bpf(2) command 2; NULL for a number this table does not know. */
const char *decode_bpf_cmd(unsigned long cmd);
/* "PTRACE_ATTACH" for 16; NULL when unknown. */
const char *decode_ptrace_request(unsigned long req);
/* "SIGKILL" for 9, "SIGRTMIN+3" (in buf) for real-time signals, "0" for the existence probe;
 * NULL when not a signal number. */
const char *decode_signal(unsigned long sig, char *buf, size_t buflen);
/* Names of memfd_create(2) flags: "cloexec", "allow_sealing", "hugetlb", "noexec_seal",
 * "exec"; unknown bits as "0x..." in buf. Returns the count written to names. */
size_t decode_memfd_flags(unsigned long flags, const char **names, size_t max, char *buf,
			  size_t buflen);

#endif
