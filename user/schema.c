#include <string.h>

#include "schema.h"

/* Fields shared by several kinds. */
#define RESULT	  " ret error"
#define VIA_URING " via user_data sq_thread"
#define TARGET	  " target_pid target target_step"
#define PEER	  " family addr port addr_source addr_arg path abstract family_num sock_type"

const char *const rec_scope_fields[SCOPE_PROC + 1] = {
    [SCOPE_LOG] = "kind time",
    [SCOPE_RUN] = "kind time run",
    [SCOPE_STEP] = "kind time run step pid ppid tid uid",
    [SCOPE_PROC] = "kind time run step pid ppid tid uid euid gid comm",
};

const struct rec_schema rec_schema[REC_KIND_MAX] = {
    [REC_RUN_START] = {"run_start", SCOPE_RUN, 0,
		       "runbook runbook_name runbook_sha256 params host kernel runseal_version "
		       "uid euid gid pid sudo_uid runseal_pid cgroup env trigger source client "
		       "detached given_by"},
    [REC_RUN_END] = {"run_end", SCOPE_RUN, 0,
		     "status steps events lost duration_ms runseal_cpu_ms runseal_maxrss_kb "
		     "interrupted error tamper_attempts guard_restarts lingering_policy lingered "
		     "lingering_killed lingering killed closed_by_uid "
		     "closed_by_gid closed_by_pid"},
    [REC_STEP_START] = {"step_start", SCOPE_STEP, 0,
			"step_seq attempt mode argv argv_truncated cwd run_as timeout_ms env "
			"gid"},
    [REC_STEP_END] = {"step_end", SCOPE_STEP, 0,
		      "step_seq attempt status exit_code signal duration_ms error "
		      "stdout_sha256 stdout_bytes stdout_tail stderr_sha256 stderr_bytes "
		      "stderr_tail lingering processes closed_by_uid closed_by_gid "
		      "closed_by_pid gid"},
    [REC_EXEC] = {"exec", SCOPE_PROC, 0,
		  "filename path sha256 argv argc argv_bytes argv_truncated cwd" RESULT},
    [REC_FORK] = {"fork", SCOPE_PROC, 0, "child_pid"},
    [REC_EXIT] = {"exit", SCOPE_PROC, 0, "exit_code signal core_dumped"},
    [REC_OPEN] = {"open", SCOPE_PROC, 0,
		  "syscall path path_arg flags mode dirfd fd" RESULT VIA_URING},
    [REC_CONNECT] = {"connect", SCOPE_PROC, RK_NET, "fd" PEER RESULT VIA_URING},
    [REC_LOSS] = {"loss", SCOPE_RUN, 0,
		  "count kinds reason detail bytes moves tracked tracked_pid expected_step "
		  "found_step found_run"},
    [REC_BPF] = {"bpf", SCOPE_PROC, RK_GUARD,
		 "cmd cmd_num map_id prog_id link_id id owner prog_type map_type path "
		 "tracepoint name attr_size"},
    [REC_PERF_EVENT_OPEN] = {"perf_event_open", SCOPE_PROC, RK_GUARD,
			     "type config cpu flags" TARGET},
    [REC_PTRACE] = {"ptrace", SCOPE_PROC, RK_GUARD, "request request_num" TARGET},
    [REC_PROCESS_VM] = {"process_vm", SCOPE_PROC, RK_GUARD, "syscall" TARGET},
    [REC_PIDFD_GETFD] = {"pidfd_getfd", SCOPE_PROC, RK_GUARD,
			 "pidfd target_pid target_in_run target target_fd fd" PEER
			 " local_addr local_port" RESULT},
    [REC_SIGNAL] = {"signal", SCOPE_PROC, RK_GUARD,
		    "syscall signal signal_num" TARGET " target_tid pidfd"},
    [REC_MODULE_LOAD] = {"module_load", SCOPE_PROC, RK_GUARD, "syscall len fd params"},
    [REC_MEMFD_CREATE] = {"memfd_create", SCOPE_PROC, RK_GUARD, "name flags"},
    [REC_RUN_INTERRUPTED] = {"run_interrupted", SCOPE_RUN, 0,
			     "interrupted_run runseal_pid cgroup killed_by_guard killed_now "
			     "sigkilled_unread unread_events aimed_at_runseal"},
    [REC_RENAME] = {"rename", SCOPE_PROC, RK_FILE_CHANGE,
		    "syscall old_path old_path_arg path path_arg flags" RESULT VIA_URING},
    [REC_UNLINK] = {"unlink", SCOPE_PROC, RK_FILE_CHANGE,
		    "syscall path path_arg dir flags" RESULT VIA_URING},
    [REC_CHMOD] = {"chmod", SCOPE_PROC, RK_FILE_CHANGE,
		   "syscall path path_arg fd mode setuid setgid flags" RESULT},
    [REC_CHOWN] = {"chown", SCOPE_PROC, RK_FILE_CHANGE,
		   "syscall path path_arg fd owner group flags" RESULT},
    [REC_LINK] = {"link", SCOPE_PROC, RK_FILE_CHANGE,
		  "syscall old_path old_path_arg path path_arg flags" RESULT VIA_URING},
    [REC_SYMLINK] = {"symlink", SCOPE_PROC, RK_FILE_CHANGE,
		     "syscall target path path_arg" RESULT VIA_URING},
    [REC_TRUNCATE] = {"truncate", SCOPE_PROC, RK_FILE_CHANGE,
		      "syscall path path_arg fd length" RESULT},
    [REC_MOUNT] = {"mount", SCOPE_PROC, 0,
		   "syscall source path path_arg fstype old_path old_path_arg flags fd" RESULT},
    [REC_UMOUNT] = {"umount", SCOPE_PROC, 0, "syscall path path_arg flags" RESULT},
    [REC_CRED] = {"cred", SCOPE_PROC, 0,
		  "syscall req_uid req_gid req_ruid req_euid req_suid req_rgid req_egid "
		  "req_sgid req_fsuid req_fsgid req_cap_effective req_cap_permitted "
		  "req_cap_inheritable new_uid new_euid new_suid new_fsuid new_gid new_egid "
		  "new_sgid new_fsgid cap_effective cap_permitted cap_inheritable" RESULT},
    [REC_LISTEN] = {"listen", SCOPE_PROC, RK_NET, "via fd family addr port sock_type" RESULT},
    [REC_ACCEPT] = {"accept", SCOPE_PROC, RK_NET,
		    "fd via family addr port local_addr local_port new_fd sock_type" RESULT
		    " user_data sq_thread"},
    [REC_COMPAT_SYSCALL] = {"compat_syscall", SCOPE_PROC, 0, "abi nr name first path_arg args"},
    [REC_IO_URING_RESULT] = {"io_uring_result", SCOPE_PROC, 0,
			     "op user_data fd family addr port" RESULT},
    [REC_MKDIR] = {"mkdir", SCOPE_PROC, RK_FILE_CHANGE,
		   "syscall path path_arg mode setuid setgid" RESULT VIA_URING},
    [REC_MKNOD] = {"mknod", SCOPE_PROC, RK_FILE_CHANGE,
		   "syscall path path_arg type mode setuid setgid dev" RESULT},
    [REC_XATTR] = {"xattr", SCOPE_PROC, RK_FILE_CHANGE,
		   "syscall path path_arg fd name size flags" RESULT},
    [REC_UTIMES] = {"utimes", SCOPE_PROC, RK_FILE_CHANGE,
		    "syscall path path_arg fd times flags" RESULT},
    [REC_CHROOT] = {"chroot", SCOPE_PROC, 0, "syscall path path_arg put_old put_old_arg" RESULT},
    [REC_NAMESPACE] = {"namespace", SCOPE_PROC, 0, "syscall flags fd ns_inode nstype" RESULT},
    [REC_ATTACH] = {"attach", SCOPE_STEP, 0, "step_seq gid comm exe cwd"},
    [REC_REFUSED] = {"refused", SCOPE_RUN, 0, "op reason asked uid gid pid comm exe cwd"},
    [REC_DAEMON] = {"daemon", SCOPE_RUN, 0, "event detail runseal_pid runseal_version open_runs"},
    [REC_GAP] = {"gap", SCOPE_RUN, 0,
		 "from to reason reregistered born_untraced gone not_reregistered"},
    [REC_READ] = {"read", SCOPE_RUN, 0, "command log all_runs runs uid gid pid comm exe cwd"},
    [REC_GENESIS] = {"genesis", SCOPE_LOG, 0,
		     "format host_id hostname root_key t0 epoch_seconds epochs max_interval "
		     "late_slack"},
    [REC_SEGMENT] = {"segment", SCOPE_LOG, 0, "segment host_id worm fsync"},
    [REC_SEAL] = {"seal", SCOPE_LOG, 0,
		  "segment first_seq count last_hash reason epoch epoch_key sig"},
    [REC_RECOVERY] = {"recovery", SCOPE_LOG, 0,
		      "file segment valid_bytes torn_bytes last_seq sealed"},
    [REC_OTHER] = {"other", SCOPE_LOG, 0, ""},
};

const char *rec_kind_name(enum rec_kind k)
{
	return (unsigned)k < REC_KIND_MAX ? rec_schema[k].name : rec_schema[REC_OTHER].name;
}

enum rec_kind rec_kind_of(const char *name, size_t n)
{
	for (int k = 0; k < REC_OTHER; k++)
		if (strlen(rec_schema[k].name) == n && !memcmp(rec_schema[k].name, name, n))
			return (enum rec_kind)k;
	return REC_OTHER;
}

/* Whether the space-separated list holds the word. */
static bool listed(const char *list, const char *w, size_t n)
{
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, " ");

		if (len == n && !memcmp(p, w, n))
			return true;
		p += len;
		p += strspn(p, " ");
	}
	return false;
}

bool rec_field_known(enum rec_kind k, const char *field, size_t n)
{
	static const char *const suffix[] = {"_detached", "_outside_root", "_truncated"};
	const struct rec_schema *s;

	if ((unsigned)k >= REC_KIND_MAX)
		return false;
	s = &rec_schema[k];
	if (listed(rec_scope_fields[s->scope], field, n) || listed(s->fields, field, n))
		return true;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(*suffix); i++) {
		size_t sl = strlen(suffix[i]);

		if (n > sl && !memcmp(field + n - sl, suffix[i], sl))
			return rec_field_known(k, field, n - sl);
	}
	return false;
}
