#!/usr/bin/env python3
"""Fault tests of `runseal run`, as root, with the real BPF programs: the machinery fails for
real in the middle of a run (no process can be forked, no descriptor opened) and the run must
still end with a run_end saying what failed, a sealed log that verifies, and no cgroup left.
Prints one line per test and "faults: N passed, M failed".
"""
import json
import os
import signal
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNSEAL = os.environ.get("RUNSEAL", os.path.join(ROOT, "runseal"))
PLAIN_RUNSEAL = os.path.join(ROOT, "runseal")  # valgrind cannot run an ASan build

from harness import Failure, cgroup2_root, check, run_all, test


def rs(args, timeout=120):
    p = subprocess.run([RUNSEAL] + args, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def load(path):
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


def wait_for(cond, what, timeout=30):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(0.02)


class Env:
    """Keys, a log and a runbook whose first step waits on a fifo, in a temporary directory:
    while it waits the test breaks something, then lets it go."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="runseal-fault-")
        self.keys = os.path.join(self.tmp, "keys")
        self.log = os.path.join(self.tmp, "log")
        self.events = os.path.join(self.tmp, "ev.jsonl")
        self.flag = os.path.join(self.tmp, "waiting")
        self.fifo = os.path.join(self.tmp, "go")
        os.mkfifo(self.fifo)
        self.rb = os.path.join(self.tmp, "rb.yaml")
        # The first step forks nothing once it waits: the pids limit must hit runseal only.
        with open(self.rb, "w") as f:
            f.write(f"""name: fault
steps:
  - name: first
    run: touch {self.flag}; read x < {self.fifo}
  - name: second
    run: echo second-ran
  - name: third
    run: echo third-ran
""")
        rc, out, err = rs(["keygen", "--key-dir", self.keys])
        check(rc == 0, f"keygen rc {rc}: {err}")

    def start(self, preexec_fn=None, env=None):
        self.p = subprocess.Popen([RUNSEAL, "run", "-q", "--key-dir", self.keys, "--log-dir",
                                   self.log, "--events", self.events, self.rb],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  preexec_fn=preexec_fn, env=env)
        wait_for(lambda: os.path.exists(self.flag) or self.p.poll() is not None,
                 "the first step")
        check(self.p.poll() is None, "runseal ended before its first step waited")

    def release(self):
        with open(self.fifo, "w") as f:
            f.write("go\n")
        err = self.p.communicate(timeout=60)[1].decode(errors="replace")
        return self.p.returncode, err

    def close(self):
        if getattr(self, "p", None) and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        subprocess.run(["chattr", "-R", "-i", "-a", self.tmp], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_ended_cleanly(env, rc, err, error_re):
    """The run stopped at step "second" with error_re, said so, sealed, and left no cgroup."""
    check(rc == 1, f"rc {rc}: {err[-600:]}")
    check(re.search(r"stopped: " + error_re, err), f"stderr does not say it: {err[-600:]}")
    recs = load(env.events)
    kinds = [r["kind"] for r in recs]
    check(kinds[-1] == "run_end", f"last record is {kinds[-1]}")
    end = recs[-1]
    check(end["status"] == "failed", f"run_end status {end['status']}")
    check(re.match(error_re, end.get("error", "")), f"run_end error {end.get('error')!r}")
    second = [r for r in recs if r["kind"] == "step_end" and r.get("step") == "second"]
    check(second and re.match(error_re, second[0].get("error", "")),
          f"step_end of the failed step: {second}")
    check(not [r for r in recs if r.get("step") == "third"], "a step ran after the failure")
    first = [r for r in recs if r["kind"] == "step_end" and r.get("step") == "first"]
    check(first and first[0]["status"] == "ok", f"first step: {first}")
    cg = recs[0].get("cgroup")
    check(cg is None or not os.path.exists(cg), f"run cgroup {cg} left behind")
    check(sorted(os.listdir(env.log))[-1].endswith(".z"), f"last segment not sealed: "
          f"{sorted(os.listdir(env.log))}")
    rc, out, verr = rs(["verify", env.log, "--key-dir", env.keys])
    check(rc == 0, f"verify rc {rc}: {(out + verr)[-600:]}")
    rc, out, verr = rs(["show", env.log, "--key-dir", env.keys, "--json"])
    check(rc == 0 and re.search(r'"kind":"run_end".*"error":"' + error_re, out),
          f"sealed log has no run_end with the error: rc {rc}")


def pids_cgroup(name):
    """A fresh cgroup with the pids controller (v1 or v2); returns (dir, procs file)."""
    v1 = "/sys/fs/cgroup/pids"
    if os.path.ismount(v1):
        top = v1
    else:
        top = cgroup2_root()
        check(top and "pids" in open(os.path.join(top, "cgroup.subtree_control")).read(),
              "no cgroup with the pids controller to limit forks")
    d = os.path.join(top, name)
    os.mkdir(d)
    return d


@test
def fork_failure_ends_the_run_cleanly():
    """Root is exempt from RLIMIT_NPROC; a pids cgroup makes runseal's own fork fail."""
    env = Env()
    cg = pids_cgroup(f"runseal-fault-{os.getpid()}")
    try:
        procs = os.path.join(cg, "cgroup.procs")
        # Under make check-sanitize: LeakSanitizer needs a thread of its own at exit, which
        # the pids limit forbids.
        senv = dict(os.environ)
        if "ASAN_OPTIONS" in senv:
            senv["ASAN_OPTIONS"] += ":detect_leaks=0"
        env.start(lambda: open(procs, "w").write(str(os.getpid())), senv)
        tasks = len(os.listdir(f"/proc/{env.p.pid}/task"))
        with open(os.path.join(cg, "pids.max"), "w") as f:
            f.write(str(tasks))
        rc, err = env.release()
        check_ended_cleanly(env, rc, err, r"fork: Resource temporarily unavailable")
    finally:
        env.close()
        os.rmdir(cg)


@test
def descriptor_exhaustion_ends_the_run_cleanly():
    """No descriptor above the ones open while the first step runs: the next step's pipes
    (or, with holes lower down, its timers) cannot be made."""
    env = Env()
    try:
        env.start()
        top = max(int(fd) for fd in os.listdir(f"/proc/{env.p.pid}/fd"))
        hard = resource.prlimit(env.p.pid, resource.RLIMIT_NOFILE)[1]
        resource.prlimit(env.p.pid, resource.RLIMIT_NOFILE, (top + 1, hard))
        rc, err = env.release()
        check_ended_cleanly(env, rc, err, r"(pipe|timerfd_create): Too many open files")
    finally:
        env.close()


@test
def whole_run_under_valgrind():
    """valgrind does not know pidfd_open: runseal falls back to polling waitpid, so a whole
    run (BPF, steps, a timeout, exit codes, sealing) is checked for memory errors and leaks."""
    env = Env()
    try:
        check(shutil.which("valgrind"), "valgrind is not installed (scripts/install-deps)")
        rb = os.path.join(env.tmp, "vg.yaml")
        with open(rb, "w") as f:
            f.write("""name: vg
steps:
  - name: ok
    run: echo hello; cat /etc/hostname
  - name: slow
    argv: [/bin/sleep, "37"]  # not 30: other suites pkill "sleep 30"
    timeout: 1
    on_failure: continue
  - name: three
    run: exit 3
    on_failure: continue
""")
        vlog = os.path.join(env.tmp, "valgrind.log")
        start = time.monotonic()
        p = subprocess.run(["valgrind", "-q", f"--log-file={vlog}", "--error-exitcode=99",
                            "--leak-check=full", "--errors-for-leak-kinds=definite",
                            f"--suppressions={ROOT}/tests/valgrind.supp", PLAIN_RUNSEAL, "run",
                            "-q", "--key-dir", env.keys, "--log-dir", env.log, "--events",
                            env.events, rb], capture_output=True, timeout=300)
        report = open(vlog).read()
        check(p.returncode == 1, f"rc {p.returncode} (99: valgrind errors): {report[-2000:]}"
              f"{p.stderr.decode(errors='replace')[-600:]}")
        recs = load(env.events)
        ends = {r["step"]: r for r in recs if r["kind"] == "step_end"}
        check(ends["ok"]["status"] == "ok" and ends["ok"]["stdout_tail"].startswith("hello"),
              f"{ends['ok']}")
        check(ends["slow"]["status"] == "timeout" and ends["slow"]["duration_ms"] < 10000,
              f"{ends['slow']}")
        check(ends["three"]["status"] == "failed" and ends["three"]["exit_code"] == 3,
              f"{ends['three']}")
        check(recs[-1]["kind"] == "run_end" and recs[-1]["status"] == "failed", f"{recs[-1]}")
        rc, out, verr = rs(["verify", env.log, "--key-dir", env.keys])
        check(rc == 0, f"verify rc {rc}: {(out + verr)[-600:]}")
        check(time.monotonic() - start < 240, "too slow")
    finally:
        env.close()


def sealed_entries(log):
    """seq -> line of every entry a seal covers: each seal ends its segment, so these are the
    entries of every segment whose last line is a seal."""
    import zlib
    out = {}
    for f in sorted(os.listdir(log)):
        if not f.startswith("seg-"):
            continue
        data = open(os.path.join(log, f), "rb").read()
        if f.endswith(".z"):
            data = zlib.decompress(data)
        lines = data.split(b"\n")[:-1]
        if lines and b'"kind":"seal"' in lines[-1]:
            for line in lines:
                out[int(re.match(rb'\{"seq":(\d+)', line).group(1))] = line
    return out


def remove_run_cgroups(log, keys):
    """The empty cgroups of killed runs (their steps end by themselves), so none is left on
    the machine whatever the next start cleans up."""
    rc, out, err = rs(["show", log, "--key-dir", keys, "--json"])
    for line in out.splitlines():
        if '"kind":"run_start"' not in line:
            continue
        cg = json.loads(line).get("cgroup")
        if cg and os.path.isdir(cg):
            for sub in os.listdir(cg):
                if os.path.isdir(os.path.join(cg, sub)):
                    try:
                        os.rmdir(os.path.join(cg, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(cg)
            except OSError:
                pass


@test
def kill9_at_random_moments_loses_no_sealed_record():
    """runseal killed with SIGKILL at random moments of a busy run (exec storms, checkpoint
    seals every second, a replica), then started again: every entry a seal covered before a
    kill is still there byte for byte, no step process of a killed run keeps running, and
    after recovery the log and its replica verify, the replica holds every sealed entry and
    no cgroup of a killed run is left."""
    import random
    env = Env()
    seed = int(os.environ.get("RUNSEAL_FAULT_SEED") or time.time_ns() % 1000000)
    rnd = random.Random(seed)
    seed_note = f"(RUNSEAL_FAULT_SEED={seed} replays the kill times)"
    rep = os.path.join(env.tmp, "replica")
    rb = os.path.join(env.tmp, "busy.yaml")
    # The storm would outlive a dead runseal by minutes: its guard must kill it. The marker
    # is in the shell's argv, so its processes can be found.
    marker = f"RSFAULT{seed}x{os.getpid()}"
    with open(rb, "w") as f:
        f.write(f"""name: busy
params:
  rounds:
    type: int
    default: 20000
steps:
  - name: quick
    run: echo start
  - name: storm
    run: |
      # {marker}
      n=0
      while [ $n -lt {{{{rounds}}}} ]; do
        for i in 1 2 3 4 5 6 7 8; do cat /etc/hostname > /dev/null; done
        n=$((n + 1))
      done
""")

    def survivors():
        found = []
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(d))
            except (OSError, ValueError):
                pass
        return found
    args = [RUNSEAL, "run", "-q", "--key-dir", env.keys, "--log-dir", env.log, "--replica",
            rep, "--checkpoint", "1", rb]
    before = {}
    try:
        for i in range(8):
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rnd.uniform(0.2, 4.0))
            p.kill()
            err = p.communicate(timeout=60)[1].decode(errors="replace")
            check(p.returncode in (-9, 0), f"kill {i}: rc {p.returncode}: {err[-400:]}")
            deadline = time.monotonic() + 10
            while survivors() and time.monotonic() < deadline:
                time.sleep(0.1)
            check(not survivors(), f"after kill {i}: step processes {survivors()} of the "
                  f"killed run still run {seed_note}")
            now = sealed_entries(env.log)
            lost = [s for s, line in before.items() if now.get(s) != line]
            check(not lost, f"after kill {i}: sealed entries lost or changed: {lost[:5]} "
                  f"{seed_note}")
            before = now
        p = subprocess.run(args + ["-p", "rounds=100"], capture_output=True, timeout=120)
        check(p.returncode == 0, f"run after the kills: rc {p.returncode}: "
              f"{p.stderr.decode(errors='replace')[-600:]}")
        after = sealed_entries(env.log)
        lost = [s for s, line in before.items() if after.get(s) != line]
        check(not lost, f"sealed entries lost by recovery: {lost[:5]} {seed_note}")
        check(len(after) > len(before), "the last run sealed nothing")
        rc, out, err = rs(["verify", env.log, "--key-dir", env.keys, "--replica", rep])
        check(rc == 0, f"verify with the replica rc {rc}: {(out + err)[-800:]} {seed_note}")
        # Recovery completed the replica's copies: it holds every sealed entry, byte for byte.
        replica = sealed_entries(rep)
        check(replica == after, f"the replica differs from the log: {len(replica)} sealed "
              f"entries, the log {len(after)} {seed_note}")
        # Each start removed the cgroups of the run killed before it.
        rc, out, err = rs(["show", env.log, "--key-dir", env.keys, "--json"])
        left = [json.loads(l).get("cgroup") for l in out.splitlines()
                if '"kind":"run_start"' in l]
        left = [cg for cg in left if cg and os.path.isdir(cg)]
        check(not left, f"cgroups of killed runs left: {left} {seed_note}")
    finally:
        for pid in survivors():
            os.kill(pid, signal.SIGKILL)
        if os.path.isdir(env.log):
            remove_run_cgroups(env.log, env.keys)
        env.close()


def main():
    return run_all("faults", "they load BPF programs and make cgroups", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
