#!/usr/bin/env python3
"""Self-protection (issue 8), as root, with the real BPF programs: a root step attacks runseal
for real (tests/helpers/attack.c) and each attack is either refused (asserted) or recorded,
and the run is never `ok` where tampering happened. Also the records of syscalls that could
blind or fool runseal: bpf, ptrace, process_vm_writev, pidfd_getfd, signals to processes
outside the run, memfd_create, perf_event_open.

Prints one line per test and "selfprotect: N passed, M failed" at the end.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNSEAL = os.path.join(ROOT, "runseal")
ATTACK = os.path.join(ROOT, "build", "attack")

from harness import Failure, alive, cgroup2_root, check, pids_with, run_all, skip, test

TMP = tempfile.mkdtemp(prefix="runseal-selfprotect-")


def logdir(name):
    return os.path.join(TMP, name, "log"), os.path.join(TMP, name, "keys")


def run(tmp, steps, log="main", strict=False, timeout=60):
    """Runs a runbook of argv steps [(name, argv)]; returns (rc, records, stderr)."""
    os.makedirs(tmp, exist_ok=True)
    rb = os.path.join(tmp, "rb.yaml")
    with open(rb, "w") as f:
        f.write("name: selfprotect\nsteps:\n")
        for name, argv in steps:
            f.write(f"  - name: {name}\n    argv: {json.dumps(argv)}\n    on_failure: continue\n")
    ev = os.path.join(tmp, "ev.jsonl")
    if os.path.exists(ev):
        os.unlink(ev)
    log_dir, key_dir = logdir(log)
    os.makedirs(os.path.dirname(log_dir), exist_ok=True)
    args = [RUNSEAL, "run", "-q", "--log-dir", log_dir, "--key-dir", key_dir, "--events", ev]
    if strict:
        args.append("--strict")
    p = subprocess.run(args + [rb], capture_output=True, timeout=timeout)
    recs = []
    if os.path.exists(ev):
        with open(ev) as f:
            recs = [json.loads(line) for line in f]
    return p.returncode, recs, p.stderr.decode(errors="replace")


def verify(log="main", strict=False):
    log_dir, key_dir = logdir(log)
    args = [RUNSEAL, "verify", log_dir, "--key-dir", key_dir] + (["--strict"] if strict else [])
    p = subprocess.run(args, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def show(log="main"):
    log_dir, key_dir = logdir(log)
    p = subprocess.run([RUNSEAL, "show", log_dir, "--key-dir", key_dir], capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def of(recs, kind, step=None, **fields):
    return [r for r in recs if r["kind"] == kind and (step is None or r.get("step") == step)
            and all(r.get(k) == v for k, v in fields.items())]


def one(recs, kind, step=None, **fields):
    found = of(recs, kind, step, **fields)
    check(found, f"no {kind} record for step {step} with {fields}")
    return found[0]


def stdout_of(recs, step):
    return one(recs, "step_end", step)["stdout_tail"]


def run_end(recs):
    ends = of(recs, "run_end")
    check(ends, "no run_end record")
    return ends[-1]


# ---- attacks on runseal's maps ------------------------------------------------------------

@test
def deleting_own_pid_from_tracked_map_is_refused():
    tmp = os.path.join(TMP, "untrack")
    marker = os.path.join(tmp, "after-untrack")
    rc, recs, err = run(tmp, [("hide", [ATTACK, "untrack", marker])])
    check(rc == 0, f"rc {rc}: {err[-400:]}")
    check("untrack: EPERM" in stdout_of(recs, "hide"), stdout_of(recs, "hide"))
    # The attempt is recorded at entry, naming runseal's own map ...
    d = one(recs, "bpf", "hide", cmd="BPF_MAP_DELETE_ELEM", owner="runseal")
    check(isinstance(d.get("map_id"), int) and d["map_id"] > 0, f"map_id {d}")
    one(recs, "bpf", "hide", cmd="BPF_MAP_GET_FD_BY_ID", owner="runseal")
    # ... and the step stays traced: what it does afterwards is still there.
    check(os.path.exists(marker), "marker not created")
    one(recs, "open", "hide", path=marker)
    end = run_end(recs)
    check(end["status"] == "incomplete" and end["tamper_attempts"] >= 2, f"run_end {end}")


@test
def rewriting_own_entry_to_another_step_is_refused():
    tmp = os.path.join(TMP, "retarget")
    marker = os.path.join(tmp, "after-retarget")
    rc, recs, err = run(tmp, [("first", ["/bin/true"]),
                              ("liar", [ATTACK, "retarget", "1", marker])])
    check("retarget: EPERM" in stdout_of(recs, "liar"), stdout_of(recs, "liar"))
    one(recs, "bpf", "liar", cmd="BPF_MAP_UPDATE_ELEM", owner="runseal")
    one(recs, "open", "liar", path=marker)
    check(not of(recs, "open", "first", path=marker), "the open was attributed to step first")
    check(run_end(recs)["status"] == "incomplete", f"run_end {run_end(recs)}")


@test
def detaching_runseal_programs_is_refused_and_recorded():
    tmp = os.path.join(TMP, "detach")
    marker = os.path.join(tmp, "after-detach")
    rc, recs, err = run(tmp, [("blind", [ATTACK, "detachlinks", marker])])
    out = stdout_of(recs, "blind")
    check(out.startswith("detachlinks: 0 of "), f"a link was detached: {out}")
    tried = int(out.split()[3])
    # One link per program: sys_enter, sys_exit, exec, fork, exit, two route lookups and two
    # io_uring tracepoints.
    check(tried >= 9, f"the helper found only {tried} links of the runner: {out}")
    d = of(recs, "bpf", "blind", cmd="BPF_LINK_DETACH", owner="runseal")
    check(len(d) == tried and all(r["link_id"] > 0 for r in d), f"{len(d)} of {tried}: {d[:2]}")
    one(recs, "open", "blind", path=marker)
    check(run_end(recs)["status"] == "incomplete", f"run_end {run_end(recs)}")


@test
def bpf_program_deleting_own_entry_is_detected_and_undone():
    """bpf() cannot write the frozen map, a BPF program can: the collector's shadow of the
    map finds the change, records it and registers the process again."""
    tmp = os.path.join(TMP, "progdelete")
    marker = os.path.join(tmp, "after-progdelete")
    rc, recs, err = run(tmp, [("hide", [ATTACK, "progdelete", marker])])
    out = stdout_of(recs, "hide")
    check("progdelete: ok" in out, f"the program did not delete the entry: {out}")
    pid = one(recs, "step_start", "hide")["pid"]
    one(recs, "bpf", "hide", cmd="BPF_PROG_LOAD", prog_type=1)
    t = one(recs, "loss", reason="tamper", tracked="deleted", tracked_pid=pid)
    check(t["expected_step"] == "hide", f"loss {t}")
    one(recs, "open", "hide", path=marker)
    check(run_end(recs)["status"] == "incomplete", f"run_end {run_end(recs)}")


@test
def bpf_program_rewriting_own_entry_is_detected_and_undone():
    tmp = os.path.join(TMP, "progretarget")
    marker = os.path.join(tmp, "after-progretarget")
    rc, recs, err = run(tmp, [("first", ["/bin/true"]),
                              ("liar", [ATTACK, "progretarget", "1", marker])])
    check("progretarget: ok" in stdout_of(recs, "liar"), stdout_of(recs, "liar"))
    pid = one(recs, "step_start", "liar")["pid"]
    t = one(recs, "loss", reason="tamper", tracked="rewritten", tracked_pid=pid)
    check(t["expected_step"] == "liar" and t["found_step"] == "first", f"loss {t}")
    one(recs, "open", "liar", path=marker)
    check(not of(recs, "open", "first", path=marker), "the open was attributed to step first")
    check(run_end(recs)["status"] == "incomplete", f"run_end {run_end(recs)}")


@test
def moving_the_ring_consumer_position_is_detected():
    tmp = os.path.join(TMP, "consumer")
    marker = os.path.join(tmp, "flood")
    rc, recs, err = run(tmp, [("mover", [ATTACK, "consumer", marker, "500"])], strict=True)
    out = stdout_of(recs, "mover")
    check(out.startswith("consumer: ok"), out)
    loss = of(recs, "loss", reason="tamper")
    check(loss, f"no loss record with reason tamper ({out.strip()}; "
          f"{len(of(recs, 'open', 'mover', path=marker))} opens recorded)")
    check(loss[0]["count"] is None and loss[0]["bytes"] != 0, f"loss {loss[0]}")
    check(run_end(recs)["status"] == "incomplete", f"run_end {run_end(recs)}")
    check(rc == 3, f"--strict rc {rc}, want 3 (incomplete)")
    vrc, vout = verify()
    check("consumer position" in vout, vout[-600:])


# ---- killing the collector ------------------------------------------------------------------

def wait_gone(pids, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@test
def killed_collector_leaves_nothing_running_and_is_reported():
    tmp = os.path.join(TMP, "kill")
    rc, recs, err = run(tmp, [("killer", [ATTACK, "killcollector", "37"])], log="kill")
    check(rc == -signal.SIGKILL, f"runseal rc {rc}, want killed: {err[-300:]}")
    run_id = one(recs, "run_start")["run"]
    step_pid = one(recs, "step_start", "killer")["pid"]
    # The guard killed the step at once: it does not go on untraced.
    left = wait_gone([step_pid] + pids_with("killcollector\x0037"), 3)
    check(not left, f"step processes still running after runseal was killed: {left}")
    vrc, vout = verify(log="kill")
    check(vrc == 0 and f"interrupted: " in vout and run_id in vout, vout[-800:])
    vrc, vout = verify(log="kill", strict=True)
    check(vrc == 1 and "interrupted" in vout, f"--strict rc {vrc}: {vout[-400:]}")
    src, sout = show(log="kill")
    check(f"interrupted  run {run_id}" in sout, sout[-400:])
    # The next start records the interruption, with what the guard killed.
    rc, recs2, err = run(tmp, [("next", ["/bin/true"])], log="kill")
    check(rc == 0, f"next run rc {rc}: {err[-300:]}")
    ir = one(recs2, "run_interrupted", interrupted_run=run_id)
    check(str(step_pid) in ir["killed_by_guard"], f"run_interrupted {ir}")
    # The killer is named: by the guard, from the ring the runner did not read, or (when
    # the runner read it before dying) in the run's own records.
    killer = [a for a in ir["aimed_at_runseal"] if a["pid"] == step_pid and
              a["syscall"] == "kill" and a["signal"] == "SIGKILL" and a["step_seq"] == 1]
    check(killer or of(recs, "signal", "killer", signal="SIGKILL", target="runseal"),
          f"the kill is nowhere: {ir}")
    check(ir["unread_events"] >= len(ir["aimed_at_runseal"]), f"run_interrupted {ir}")
    vrc, vout = verify(log="kill")
    check("recorded the interruption" in vout, vout[-600:])
    st = os.stat(logdir("kill")[0])
    state = f"/run/runseal/live/{st.st_dev:x}-{st.st_ino:x}"
    check(not os.path.exists(state), f"{state} left behind")


@test
def killed_collector_and_guard_stop_the_run_in_the_kernel():
    """Guard and runner killed back to back: nothing is left to read the ring, so the pinned
    programs kill each process of the run at its next recorded syscall, one that left the
    run's cgroup included; the next start reads what they left and removes the pins."""
    tmp = os.path.join(TMP, "killboth")
    marks = os.path.join(tmp, "marks")
    os.makedirs(marks, exist_ok=True)
    cg = cgroup2_root()
    if not cg:
        skip("no cgroup2 mount")
    escapee = (f"echo $$ > {cg}/cgroup.procs; i=0; "
               f"while :; do i=$((i+1)); : > {marks}/$i; sleep 0.05; done # escapee-41")
    rc, recs, err = run(tmp, [("killer", ["/bin/sh", "-c", f"/bin/sh -c '{escapee}' & sleep 0.5; "
                                          f"exec {ATTACK} killboth 41 0"])], log="killboth")
    check(rc == -signal.SIGKILL, f"runseal rc {rc}: {err[-300:]}")
    run_id = one(recs, "run_start")["run"]
    pins = f"/sys/fs/bpf/runseal/{run_id}"
    try:
        check(os.path.isdir(pins), f"no pins in {pins}")
        left = wait_gone(pids_with("escapee-41") + pids_with("killboth\x0041"), 2)
        check(not left, f"still running with runner and guard gone: {left}")
        n = len(os.listdir(marks))
        time.sleep(0.3)
        check(n > 0 and len(os.listdir(marks)) == n, f"marks went on: {n} then "
              f"{len(os.listdir(marks))}")
        rc, recs2, err = run(tmp, [("next", ["/bin/true"])], log="killboth")
        check(not os.path.exists(pins), f"{pins} left behind by the next start")
    finally:
        for p in pids_with("escapee-41") + pids_with("killboth\x0041"):
            os.kill(p, signal.SIGKILL)
        # Pins left by a failure would keep the programs attached after the suite.
        if os.path.isdir(pins):
            for f in os.listdir(pins):
                os.unlink(os.path.join(pins, f))
            os.rmdir(pins)
    ir = one(recs2, "run_interrupted", interrupted_run=run_id)
    check(not os.path.exists(ir["cgroup"]), f"cgroup {ir['cgroup']} left behind")
    # The runner replaces a dead guard within a second: with no time between the kills,
    # that seldom happens; if it did, the new guard killed the step.
    if not ir["killed_by_guard"]:
        check(len(ir["sigkilled_unread"]) >= 2 and ir["unread_events"] > 0,
              f"run_interrupted {ir}")
        check(any(a["comm"] == "attack" and a["signal"] == "SIGKILL"
                  for a in ir["aimed_at_runseal"]), f"the killer is not named: {ir}")


@test
def killed_guard_is_replaced():
    tmp = os.path.join(TMP, "guardkill")
    rc, recs, err = run(tmp, [("killer", [ATTACK, "killboth", "43", "2500"])], log="guardkill")
    check(rc == -signal.SIGKILL, f"runseal rc {rc}: {err[-300:]}")
    check("died: started another" in err, f"no new guard: {err[-400:]}")
    step_pid = one(recs, "step_start", "killer")["pid"]
    run_id = one(recs, "run_start")["run"]
    # The guard's kill was recorded and read while the runner still ran.
    one(recs, "signal", "killer", signal="SIGKILL", target="runseal")
    left = wait_gone([step_pid] + pids_with("killboth\x0043"), 3)
    check(not left, f"the new guard did not kill the step: {left}")
    rc, recs2, err = run(tmp, [("next", ["/bin/true"])], log="guardkill")
    ir = one(recs2, "run_interrupted", interrupted_run=run_id)
    check(str(step_pid) in ir["killed_by_guard"], f"run_interrupted {ir}")


# ---- records of syscalls aimed at runseal or outside the run --------------------------------

@test
def syscalls_aimed_at_runseal_are_recorded():
    tmp = os.path.join(TMP, "aimed")
    os.makedirs(tmp, exist_ok=True)
    # The step's main process is the runner's child: its parent is runseal.
    script = os.path.join(tmp, "aim.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nR=$(awk '{{print $4}}' /proc/$$/stat)\n"
                f"{ATTACK} ptrace $R\n{ATTACK} vmwrite $R\n{ATTACK} vmread $R\n{ATTACK} getfd $R 0\n"
                f"{ATTACK} kill $R 0\n")
    os.chmod(script, 0o755)
    rc, recs, err = run(tmp, [("aim", [script])])
    pid = one(recs, "run_start")["runseal_pid"]
    p = one(recs, "ptrace", "aim", request="PTRACE_PEEKDATA", target_pid=pid)
    check(p["target"] == "runseal", f"ptrace {p}")
    v = one(recs, "process_vm", "aim", syscall="process_vm_writev", target_pid=pid)
    check(v["target"] == "runseal", f"process_vm {v}")
    one(recs, "process_vm", "aim", syscall="process_vm_readv", target_pid=pid, target="runseal")
    g = one(recs, "pidfd_getfd", "aim", target_pid=pid, target_fd=0)
    check(g["target"] == "runseal", f"pidfd_getfd {g}")
    k = one(recs, "signal", "aim", syscall="kill", signal="0", target_pid=pid)
    check(k["target"] == "runseal", f"kill {k}")
    end = run_end(recs)
    check(end["status"] == "incomplete" and end["tamper_attempts"] >= 4, f"run_end {end}")


@test
def signals_outside_the_run_recorded_inside_not():
    tmp = os.path.join(TMP, "signals")
    victim = subprocess.Popen(["sleep", "30"])
    victim2 = subprocess.Popen(["sleep", "30"])
    probe = subprocess.Popen(["sleep", "30"])
    try:
        rc, recs, err = run(tmp, [
            ("killer", [ATTACK, "kill", str(victim.pid), "15"]),
            ("pidfd", [ATTACK, "pidfdsig", str(victim2.pid), "9"]),
            ("tg", [ATTACK, "tgkill", str(probe.pid), "0"]),
            ("t", [ATTACK, "tkill", str(probe.pid), "0"]),
            ("inside", ["/bin/sh", "-c", "sleep 5 & kill $!; wait"]),
        ])
        check(victim.wait(5) == -15 and victim2.wait(5) == -9, "the victims were not killed")
        tg = one(recs, "signal", "tg", syscall="tgkill", target_pid=probe.pid)
        check(tg["target_tid"] == probe.pid and tg["target"] == "outside", f"tgkill {tg}")
        one(recs, "signal", "t", syscall="tkill", target_pid=probe.pid, target="outside")
        k = one(recs, "signal", "killer", syscall="kill", target_pid=victim.pid)
        check(k["signal"] == "SIGTERM" and k["signal_num"] == 15 and k["target"] == "outside",
              f"kill {k}")
        p = one(recs, "signal", "pidfd", syscall="pidfd_send_signal", target_pid=victim2.pid)
        check(p["signal"] == "SIGKILL" and p["target"] == "outside", f"pidfd {p}")
        check(not of(recs, "signal", "inside"), f"in-run kill recorded: {of(recs, 'signal', 'inside')}")
        check(run_end(recs)["status"] == "ok", f"run_end {run_end(recs)}")
    finally:
        for v in (victim, victim2, probe):
            if v.poll() is None:
                v.kill()
                v.wait()


@test
def memfd_and_perf_event_open_recorded():
    tmp = os.path.join(TMP, "memfd")
    rc, recs, err = run(tmp, [("mem", [ATTACK, "memfd", "stage2"]), ("perf", [ATTACK, "perf"])])
    check(rc == 0, f"rc {rc}: {err[-300:]}")
    check("memfd: ok" in stdout_of(recs, "mem"), stdout_of(recs, "mem"))
    m = one(recs, "memfd_create", "mem", name="stage2")
    check(m["flags"] == ["cloexec", "allow_sealing"], f"memfd {m}")
    check("perf: ok" in stdout_of(recs, "perf"), stdout_of(recs, "perf"))
    p = one(recs, "perf_event_open", "perf", type=1, config=0, target_pid=0)
    check(p["target"] == "self" and p["cpu"] == -1, f"perf {p}")
    check(run_end(recs)["status"] == "ok", f"run_end {run_end(recs)}")


@test
def bpf_calls_on_other_objects_named_with_ids():
    tmp = os.path.join(TMP, "bpfother")
    script = os.path.join(tmp, "b.sh")
    os.makedirs(tmp, exist_ok=True)
    with open(script, "w") as f:
        f.write("#!/bin/sh\nbpftool map create /sys/fs/bpf/rs-selfprotect-$$ type hash key 4 "
                "value 4 entries 4 name rsprobe 2>/dev/null; rm -f /sys/fs/bpf/rs-selfprotect-$$\n")
    os.chmod(script, 0o755)
    if not shutil.which("bpftool") or not os.path.isdir("/sys/fs/bpf"):
        return
    rc, recs, err = run(tmp, [("maker", [script])])
    c = of(recs, "bpf", "maker", cmd="BPF_MAP_CREATE")
    check(c and any(r.get("name") == "rsprobe" and r.get("map_type") == 1 for r in c),
          f"map create records {c}")
    check(run_end(recs)["tamper_attempts"] == 0, f"run_end {run_end(recs)}")


@test
def process_leaving_its_cgroup_listed_from_tracked_map():
    tmp = os.path.join(TMP, "escape")
    cg_root = cgroup2_root()
    if not cg_root:
        skip("no cgroup2 mount")
    rc, recs, err = run(tmp, [("escape", ["/bin/sh", "-c",
                                          f"sleep 29 & echo $! > {cg_root}/cgroup.procs"])])
    try:
        end = run_end(recs)
        step_end = one(recs, "step_end", "escape")
        lingering = {int(p): s for p, s in end["lingering"].items()}
        sleeper = [p for p in pids_with("sleep\x0029") if p in lingering]
        check(sleeper and lingering[sleeper[0]] == "escape", f"run_end lingering {end}")
        check(str(sleeper[0]) in step_end["lingering"],
              f"step_end lingering {step_end['lingering']} misses the escaped {sleeper[0]}")
        with open(f"/proc/{sleeper[0]}/cgroup") as f:
            check("runseal" not in f.read(), "the sleeper did not leave the run's cgroup")
    finally:
        for p in pids_with("sleep\x0029"):
            os.kill(p, signal.SIGKILL)


@test
def all_logs_verify():
    for name in os.listdir(TMP):
        log_dir, _ = logdir(name)
        if os.path.isdir(log_dir):
            rc, out = verify(log=name)
            check(rc == 0, f"{name}: verify rc {rc}: {out[-600:]}")


def main():
    try:
        return run_all("selfprotect", "they load BPF programs", sys.argv[1:])
    finally:
        subprocess.run(["chattr", "-R", "-i", "-a", TMP], capture_output=True)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
