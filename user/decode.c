/* decode: turn the kernel's raw numbers and bytes into the names records carry. Pure. */
#define _GNU_SOURCE
#include "decode.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* glibc defines O_LARGEFILE as 0 on 64-bit targets, yet raw syscall words (32-bit callers,
 * runtimes that bypass libc) can carry the kernel's bit. */
#define KERNEL_O_LARGEFILE 0100000UL

struct flag_name {
	unsigned long bits;
	unsigned long unless; /* composite flag that, when fully set, is reported instead */
	const char *name;
};

/* Output order after the access mode. O_SYNC and O_TMPFILE contain the O_DSYNC and
 * O_DIRECTORY bits: the composite name alone is reported when all of its bits are set. */
static const struct flag_name open_bits[] = {
    {O_CREAT, 0, "create"},
    {O_EXCL, 0, "exclusive"},
    {O_NOCTTY, 0, "noctty"},
    {O_TRUNC, 0, "truncate"},
    {O_APPEND, 0, "append"},
    {O_NONBLOCK, 0, "nonblock"},
    {O_DSYNC, O_SYNC, "dsync"},
    {O_SYNC, 0, "sync"},
    {O_ASYNC, 0, "async"},
    {O_DIRECT, 0, "direct"},
    {KERNEL_O_LARGEFILE, 0, "largefile"},
    {O_DIRECTORY, O_TMPFILE, "directory"},
    {O_NOFOLLOW, 0, "nofollow"},
    {O_NOATIME, 0, "noatime"},
    {O_CLOEXEC, 0, "cloexec"},
    {O_TMPFILE, 0, "tmpfile"},
};

static void push_name(const char **names, size_t *n, size_t max, const char *name)
{
	if (*n < max)
		names[(*n)++] = name;
}

static bool all_set(unsigned long flags, unsigned long bits)
{
	return bits && (flags & bits) == bits;
}

/* Returns the access-mode bits it accounted for. */
static unsigned long decode_access(unsigned long flags, const char **names, size_t *n, size_t max)
{
	/* The kernel ignores the access mode of an O_PATH open: it grants neither. */
	if (flags & O_PATH) {
		push_name(names, n, max, "path");
		return O_PATH | O_ACCMODE;
	}
	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		push_name(names, n, max, "read");
		break;
	case O_WRONLY:
		push_name(names, n, max, "write");
		break;
	case O_RDWR:
		push_name(names, n, max, "read");
		push_name(names, n, max, "write");
		break;
	default:
		return 0; /* 3 is not a real mode: left for the hex entry */
	}
	return O_ACCMODE;
}

size_t decode_open_flags(unsigned long flags, const char **names, size_t max, char *buf,
			 size_t buflen)
{
	unsigned long known;
	size_t n = 0;

	if (!names)
		max = 0;
	known = decode_access(flags, names, &n, max);
	for (size_t i = 0; i < sizeof(open_bits) / sizeof(open_bits[0]); i++) {
		const struct flag_name *f = &open_bits[i];

		known |= f->bits;
		if (all_set(flags, f->bits) && !all_set(flags, f->unless))
			push_name(names, &n, max, f->name);
	}
	if ((flags & ~known) && n < max && buf && buflen) {
		snprintf(buf, buflen, "%#lx", flags & ~known);
		names[n++] = buf;
	}
	return n;
}

const char *decode_errno(int err, char *buf, size_t buflen)
{
	const char *name = err > 0 ? strerrorname_np(err) : NULL;

	if (name)
		return name;
	if (!buf || !buflen)
		return "E?";
	snprintf(buf, buflen, "E%d", err);
	return buf;
}

static int decode_inet(const struct sockaddr_storage *ss, size_t len, struct sockaddr_info *out)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

	if (len < offsetof(struct sockaddr_in, sin_addr) + sizeof(in->sin_addr))
		return -1;
	out->family = "inet";
	out->port = ntohs(in->sin_port);
	inet_ntop(AF_INET, &in->sin_addr, out->addr, sizeof(out->addr));
	return 0;
}

static int decode_inet6(const struct sockaddr_storage *ss, size_t len, struct sockaddr_info *out)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	if (len < offsetof(struct sockaddr_in6, sin6_addr) + sizeof(in6->sin6_addr))
		return -1;
	out->family = "inet6";
	out->port = ntohs(in6->sin6_port);
	inet_ntop(AF_INET6, &in6->sin6_addr, out->addr, sizeof(out->addr));
	return 0;
}

static void decode_unix(const struct sockaddr_storage *ss, size_t len, struct sockaddr_info *out)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
	size_t plen = len - offsetof(struct sockaddr_un, sun_path);

	out->family = "unix";
	if (plen > sizeof(un->sun_path))
		plen = sizeof(un->sun_path);
	if (plen && un->sun_path[0] == '\0') {
		/* Abstract names are exactly len bytes long; NULs in them are significant. */
		out->abstract = true;
		out->path[0] = '@';
		memcpy(out->path + 1, un->sun_path + 1, plen - 1);
		out->path_len = plen;
	} else {
		out->path_len = strnlen(un->sun_path, plen);
		memcpy(out->path, un->sun_path, out->path_len);
	}
	out->path[out->path_len] = '\0';
}

int decode_sockaddr(const void *sa, size_t len, struct sockaddr_info *out)
{
	struct sockaddr_storage ss; /* aligned copy: sa points into an event record */
	size_t n = len < sizeof(ss) ? len : sizeof(ss);

	memset(out, 0, sizeof(*out));
	out->family = "other";
	out->port = -1;
	if (!sa || len < sizeof(sa_family_t))
		return -1;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, n);
	out->family_num = ss.ss_family;
	switch (ss.ss_family) {
	case AF_UNSPEC:
		out->family = "unspec";
		return 0;
	case AF_INET:
		return decode_inet(&ss, n, out);
	case AF_INET6:
		return decode_inet6(&ss, n, out);
	case AF_UNIX:
		decode_unix(&ss, n, out);
		return 0;
	default:
		return 0;
	}
}

/* Appends one component to an absolute path kept without a trailing slash. */
static void push_component(char *out, size_t *olen, const char *c, size_t clen)
{
	if (clen == 0 || (clen == 1 && c[0] == '.'))
		return;
	if (clen == 2 && c[0] == '.' && c[1] == '.') {
		char *slash = memrchr(out, '/', *olen);

		*olen = slash && slash > out ? (size_t)(slash - out) : 1;
		return;
	}
	if (*olen > 1)
		out[(*olen)++] = '/';
	memcpy(out + *olen, c, clen);
	*olen += clen;
}

static char *normalize(const char *p)
{
	char *out = malloc(strlen(p) + 2);
	size_t olen = 1;

	if (!out)
		return NULL;
	out[0] = '/';
	while (*p) {
		size_t clen = strcspn(p, "/");

		push_component(out, &olen, p, clen);
		p += clen + (p[clen] == '/');
	}
	out[olen] = '\0';
	return out;
}

char *path_join(const char *base, const char *rel)
{
	size_t bl, rl;
	char *tmp, *res;

	if (!rel)
		rel = "";
	if (!base || rel[0] == '/')
		base = "";
	bl = strlen(base);
	rl = strlen(rel);
	tmp = malloc(bl + rl + 2);
	if (!tmp)
		return NULL;
	memcpy(tmp, base, bl);
	tmp[bl] = '/';
	memcpy(tmp + bl + 1, rel, rl + 1);
	res = normalize(tmp);
	free(tmp);
	return res;
}

/* Length of the component at off: up to its NUL, or to the end of a cut-short buffer. */
static size_t component_len(const char *buf, size_t len, size_t off)
{
	const char *nul = memchr(buf + off, '\0', len - off);

	return nul ? (size_t)(nul - (buf + off)) : len - off;
}

/* Empty and "/" components would only double the separators (a root dentry is named "/"). */
static bool skip_component(const char *c, size_t clen)
{
	return clen == 0 || (clen == 1 && c[0] == '/');
}

char *path_from_components(const char *buf, size_t len, unsigned ncomp)
{
	size_t total = 0, off = 0, pos;
	unsigned i;
	char *out;

	if (!buf)
		len = 0;
	for (i = 0; i < ncomp && off < len; i++) {
		size_t clen = component_len(buf, len, off);

		if (!skip_component(buf + off, clen))
			total += clen + 1;
		off += clen + 1;
	}
	out = malloc(total ? total + 1 : 2);
	if (!out)
		return NULL;
	strcpy(out, "/");
	/* Leaf first in buf, so fill the result from its end. */
	pos = total;
	out[total ? total : 1] = '\0';
	for (i = 0, off = 0; i < ncomp && off < len; i++) {
		size_t clen = component_len(buf, len, off);

		if (!skip_component(buf + off, clen)) {
			pos -= clen;
			memcpy(out + pos, buf + off, clen);
			out[--pos] = '/';
		}
		off += clen + 1;
	}
	return out;
}

/* ---- self-protection records (issue 8) ---------------------------------------------- */

/* enum bpf_cmd of linux/bpf.h, in order. */
static const char *const bpf_cmds[] = {
    "BPF_MAP_CREATE",	     "BPF_MAP_LOOKUP_ELEM",
    "BPF_MAP_UPDATE_ELEM",   "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_GET_NEXT_KEY",  "BPF_PROG_LOAD",
    "BPF_OBJ_PIN",	     "BPF_OBJ_GET",
    "BPF_PROG_ATTACH",	     "BPF_PROG_DETACH",
    "BPF_PROG_TEST_RUN",     "BPF_PROG_GET_NEXT_ID",
    "BPF_MAP_GET_NEXT_ID",   "BPF_PROG_GET_FD_BY_ID",
    "BPF_MAP_GET_FD_BY_ID",  "BPF_OBJ_GET_INFO_BY_FD",
    "BPF_PROG_QUERY",	     "BPF_RAW_TRACEPOINT_OPEN",
    "BPF_BTF_LOAD",	     "BPF_BTF_GET_FD_BY_ID",
    "BPF_TASK_FD_QUERY",     "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
    "BPF_MAP_FREEZE",	     "BPF_BTF_GET_NEXT_ID",
    "BPF_MAP_LOOKUP_BATCH",  "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
    "BPF_MAP_UPDATE_BATCH",  "BPF_MAP_DELETE_BATCH",
    "BPF_LINK_CREATE",	     "BPF_LINK_UPDATE",
    "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID",
    "BPF_ENABLE_STATS",	     "BPF_ITER_CREATE",
    "BPF_LINK_DETACH",	     "BPF_PROG_BIND_MAP",
    "BPF_TOKEN_CREATE",
};

const char *decode_bpf_cmd(unsigned long cmd)
{
	return cmd < sizeof(bpf_cmds) / sizeof(*bpf_cmds) ? bpf_cmds[cmd] : NULL;
}

static const struct {
	unsigned long req;
	const char *name;
} ptrace_reqs[] = {
    {0, "PTRACE_TRACEME"},
    {1, "PTRACE_PEEKTEXT"},
    {2, "PTRACE_PEEKDATA"},
    {3, "PTRACE_PEEKUSER"},
    {4, "PTRACE_POKETEXT"},
    {5, "PTRACE_POKEDATA"},
    {6, "PTRACE_POKEUSER"},
    {7, "PTRACE_CONT"},
    {8, "PTRACE_KILL"},
    {9, "PTRACE_SINGLESTEP"},
    {12, "PTRACE_GETREGS"},
    {13, "PTRACE_SETREGS"},
    {14, "PTRACE_GETFPREGS"},
    {15, "PTRACE_SETFPREGS"},
    {16, "PTRACE_ATTACH"},
    {17, "PTRACE_DETACH"},
    {24, "PTRACE_SYSCALL"},
    {0x4200, "PTRACE_SETOPTIONS"},
    {0x4201, "PTRACE_GETEVENTMSG"},
    {0x4202, "PTRACE_GETSIGINFO"},
    {0x4203, "PTRACE_SETSIGINFO"},
    {0x4204, "PTRACE_GETREGSET"},
    {0x4205, "PTRACE_SETREGSET"},
    {0x4206, "PTRACE_SEIZE"},
    {0x4207, "PTRACE_INTERRUPT"},
    {0x4208, "PTRACE_LISTEN"},
    {0x4209, "PTRACE_PEEKSIGINFO"},
};

const char *decode_ptrace_request(unsigned long req)
{
	for (size_t i = 0; i < sizeof(ptrace_reqs) / sizeof(*ptrace_reqs); i++)
		if (ptrace_reqs[i].req == req)
			return ptrace_reqs[i].name;
	return NULL;
}

/* Linux x86/arm numbering (the asm-generic one). */
static const char *const signames[32] = {
    "0",	 "SIGHUP",  "SIGINT",	 "SIGQUIT", "SIGILL",	"SIGTRAP", "SIGABRT", "SIGBUS",
    "SIGFPE",	 "SIGKILL", "SIGUSR1",	 "SIGSEGV", "SIGUSR2",	"SIGPIPE", "SIGALRM", "SIGTERM",
    "SIGSTKFLT", "SIGCHLD", "SIGCONT",	 "SIGSTOP", "SIGTSTP",	"SIGTTIN", "SIGTTOU", "SIGURG",
    "SIGXCPU",	 "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",   "SIGPWR",  "SIGSYS",
};

const char *decode_signal(unsigned long sig, char *buf, size_t buflen)
{
	if (sig < 32)
		return signames[sig];
	if (sig > 64)
		return NULL;
	snprintf(buf, buflen, "SIGRTMIN+%lu", sig - 32);
	return buf;
}

size_t decode_memfd_flags(unsigned long flags, const char **names, size_t max, char *buf,
			  size_t buflen)
{
	static const struct {
		unsigned long bit;
		const char *name;
	} bits[] = {{0x1, "cloexec"},
		    {0x2, "allow_sealing"},
		    {0x4, "hugetlb"},
		    {0x8, "noexec_seal"},
		    {0x10, "exec"}};
	unsigned long known = 0;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bits) / sizeof(*bits); i++) {
		known |= bits[i].bit;
		if (flags & bits[i].bit && n < max)
			names[n++] = bits[i].name;
	}
	/* Bits above the known ones: MFD_HUGE_* size selectors, or unknown. */
	if (flags & ~known && n < max) {
		snprintf(buf, buflen, "0x%lx", flags & ~known);
		names[n++] = buf;
	}
	return n;
}
