#!/usr/bin/env python3
"""Integration tests of the sealed log, as root, on logs made by real traced runs.

Tampering is done the way an attacker with root would: clear the inode flags, edit the
files with ordinary operations. Prints one line per test and "N passed, M failed".
"""
import fcntl
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNSEAL = os.environ.get("RUNSEAL", os.path.join(ROOT, "runseal"))  # make check-sanitize
FORGE = os.path.join(ROOT, "build", "forge")
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_APPEND_FL = 0x20
FS_IMMUTABLE_FL = 0x10

from harness import Failure, check, run_all, test


def rs(args, timeout=120):
    p = subprocess.run([RUNSEAL] + args, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


RUNBOOK = """name: sealtest
steps:
  - name: one
    run: cat /etc/hostname; echo first
  - name: two
    argv: [/bin/ls, /]
"""


class Env:
    """A key dir, a log dir and a runbook in a fresh temporary directory."""

    def __init__(self, keygen_args=()):
        self.tmp = tempfile.mkdtemp(prefix="runseal-seal-")
        self.keys = os.path.join(self.tmp, "keys")
        self.log = os.path.join(self.tmp, "log")
        self.rb = os.path.join(self.tmp, "rb.yaml")
        with open(self.rb, "w") as f:
            f.write(RUNBOOK)
        rc, out, err = rs(["keygen", "--key-dir", self.keys] + list(keygen_args))
        check(rc == 0, f"keygen rc {rc}: {err}")

    def run(self, extra=(), rb=None):
        return rs(["run", "-q", "--key-dir", self.keys, "--log-dir", self.log] + list(extra) +
                  [rb or self.rb])

    def verify(self, *extra, log=None):
        rc, out, err = rs(["verify", log or self.log, "--key-dir", self.keys, "--json"] +
                          list(extra))
        problems = []
        for line in out.splitlines():
            if line.startswith("{"):
                problems.append(json.loads(line))
        return rc, problems, out + err

    def close(self):
        unflag_tree(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)


def getflags(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]
    finally:
        os.close(fd)


def unflag(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]
        flags &= ~(FS_APPEND_FL | FS_IMMUTABLE_FL)
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags))
    finally:
        os.close(fd)


def unflag_tree(top):
    for d, _, files in os.walk(top):
        for f in files:
            try:
                unflag(os.path.join(d, f))
            except OSError:
                pass


def segments(log):
    return sorted(f for f in os.listdir(log) if f.startswith("seg-"))


def read_seg(path):
    data = open(path, "rb").read()
    return zlib.decompress(data) if path.endswith(".z") else data


def write_seg(path, data):
    unflag(path)
    with open(path, "wb") as f:
        f.write(zlib.compress(data) if path.endswith(".z") else data)


def edit_lines(path, fn):
    lines = read_seg(path).split(b"\n")[:-1]
    lines = fn(lines)
    write_seg(path, b"".join(l + b"\n" for l in lines))


def seq_of(line):
    return int(re.match(rb'\{"seq":(\d+)', line).group(1))


def kinds(problems, level="error"):
    return {p["kind"] for p in problems if p.get("level") == level}


def two_runs(env):
    for _ in range(2):
        rc, out, err = env.run()
        check(rc == 0, f"run rc {rc}: {err[-400:]}")


# ---- tests -------------------------------------------------------------------------------

@test
def untouched_log_verifies_and_shows():
    env = Env()
    try:
        ev = os.path.join(env.tmp, "ev.jsonl")
        rc, out, err = env.run(["--events", ev])
        check(rc == 0, f"run rc {rc}: {err}")
        rc, out, err = env.run()
        check(rc == 0, f"second run rc {rc}: {err}")
        rc, problems, text = env.verify()
        check(rc == 0, f"verify rc {rc}: {text[-800:]}")
        check(not kinds(problems), f"problems on an untouched log: {problems}")
        rc, out, err = rs(["show", env.log, "--key-dir", env.keys, "--json"])
        check(rc == 0, f"show rc {rc}: {err}")
        shown = [json.loads(l) for l in out.splitlines()]
        events = [json.loads(l) for l in open(ev)]
        run1 = [r for r in shown if r.get("run") == events[0]["run"]]
        check([r["kind"] for r in run1] == [r["kind"] for r in events],
              "show does not give back the records of --events")
        check(all("seq" in r and re.fullmatch("[0-9a-f]{64}", r["hash"]) for r in shown),
              "show records without seq and hash")
        rc, out, err = rs(["show", env.log, "--key-dir", env.keys, "--run", events[0]["run"]])
        check(rc == 0 and "exec" in out, f"text show rc {rc}")
    finally:
        env.close()


@test
def files_modes_and_worm_flags():
    env = Env()
    try:
        check(oct(os.stat(env.keys).st_mode & 0o777) == "0o700", "key dir not 0700")
        for f, mode in (("root.pub", 0o444), ("root.key", 0o400), ("epochs.pub", 0o444),
                        ("epoch.key", 0o600)):
            check(os.stat(os.path.join(env.keys, f)).st_mode & 0o777 == mode, f"{f} mode")
        two_runs(env)
        check(oct(os.stat(env.log).st_mode & 0o777) == "0o700", "log dir not 0700")
        segs = segments(env.log)
        check(len(segs) >= 2 and all(s.endswith(".log.z") for s in segs), f"segments {segs}")
        for s in segs:
            check(getflags(os.path.join(env.log, s)) & FS_IMMUTABLE_FL, f"{s} not immutable")
            check(os.stat(os.path.join(env.log, s)).st_mode & 0o077 == 0, f"{s} readable by others")
        first = read_seg(os.path.join(env.log, segs[0])).split(b"\n")[0]
        check(b'"kind":"genesis"' in first and first.startswith(b'{"seq":0,"prev":"' + b"0" * 64),
              f"first entry is not the genesis: {first[:120]}")
    finally:
        env.close()


@test
def keys_created_on_first_use():
    tmp = tempfile.mkdtemp(prefix="runseal-firstuse-")
    try:
        rb = os.path.join(tmp, "rb.yaml")
        open(rb, "w").write(RUNBOOK)
        keys, log = os.path.join(tmp, "k"), os.path.join(tmp, "l")
        rc, out, err = rs(["run", "-q", "--key-dir", keys, "--log-dir", log, rb])
        check(rc == 0, f"rc {rc}: {err}")
        check("created signing keys" in err, f"not said: {err!r}")
        rc, out, err = rs(["verify", log, "--key-dir", keys])
        check(rc == 0, f"verify rc {rc}: {out}{err}")
    finally:
        unflag_tree(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def tamper_case(edit, expect, *verify_args):
    env = Env()
    try:
        two_runs(env)
        unflag_tree(env.log)
        info = edit(env)
        rc, problems, text = env.verify(*verify_args)
        check(rc == 1, f"verify rc {rc} after tampering: {text[-600:]}")
        found = kinds(problems)
        check(expect & found, f"expected {expect}, got {found}: {text[-600:]}")
        if info:
            hits = [p for p in problems if p.get("kind") in expect]
            if "file" in info:
                check(any(p.get("file", "").endswith(info["file"]) for p in hits),
                      f"not reported in {info['file']}: {hits}")
            if "seq" in info:
                check(any(p.get("seq") in info["seq"] for p in hits),
                      f"not reported at seq {info['seq']}: {hits}")
    finally:
        env.close()


def middle_record(env):
    seg = segments(env.log)[0]
    lines = read_seg(os.path.join(env.log, seg)).split(b"\n")[:-1]
    i = next(i for i, l in enumerate(lines) if b'"kind":"open"' in l)
    return seg, lines, i


@test
def tamper_modified():
    def edit(env):
        seg, lines, i = middle_record(env)
        s = seq_of(lines[i])
        edit_lines(os.path.join(env.log, seg),
                   lambda ls: [l.replace(b'"kind":"open"', b'"kind":"opeN"', 1) if seq_of(l) == s
                               else l for l in ls])
        return {"file": seg, "seq": {s}}
    tamper_case(edit, {"modified"})


@test
def tamper_deleted():
    def edit(env):
        seg, lines, i = middle_record(env)
        s = seq_of(lines[i])
        edit_lines(os.path.join(env.log, seg), lambda ls: [l for l in ls if seq_of(l) != s])
        return {"file": seg, "seq": {s, s + 1}}
    tamper_case(edit, {"deleted"})


@test
def tamper_inserted():
    def edit(env):
        seg, lines, i = middle_record(env)
        edit_lines(os.path.join(env.log, seg), lambda ls: ls[:i + 1] + [ls[i]] + ls[i + 1:])
        return {"file": seg}
    tamper_case(edit, {"inserted"})


@test
def tamper_reordered():
    def edit(env):
        seg, lines, i = middle_record(env)
        edit_lines(os.path.join(env.log, seg),
                   lambda ls: ls[:i] + [ls[i + 1], ls[i]] + ls[i + 2:])
        return {"file": seg}
    tamper_case(edit, {"reordered"})


@test
def tamper_truncated():
    def edit(env):
        seg = segments(env.log)[-1]
        edit_lines(os.path.join(env.log, seg), lambda ls: ls[:len(ls) // 2])
        return {"file": seg}
    tamper_case(edit, {"truncated"})


@test
def tamper_missing_segment():
    def edit(env):
        rs_ = env.run()  # a third segment, so the deleted one is in the middle
        check(rs_[0] == 0, "third run failed")
        unflag_tree(env.log)
        seg = segments(env.log)[1]
        os.unlink(os.path.join(env.log, seg))
        return None
    tamper_case(edit, {"missing_segment"})


@test
def rebuilt_log_with_other_keys():
    """An attacker rebuilds the log from scratch with keys of their own: the auditor's
    root.pub rejects it."""
    env = Env()
    other = Env()
    try:
        two_runs(env)
        two_runs(other)
        rc, problems, text = env.verify("--pub", os.path.join(env.keys, "root.pub"),
                                        log=other.log)
        check(rc == 1 and kinds(problems) & {"wrong_key", "wrong_host"},
              f"rc {rc}: {text[-600:]}")
    finally:
        env.close()
        other.close()


@test
def replicas_get_every_segment_and_the_head():
    env = Env()
    try:
        r1, r2 = os.path.join(env.tmp, "r1"), os.path.join(env.tmp, "r2")
        for _ in range(2):
            rc, out, err = env.run(["--replica", r1, "--replica", r2])
            check(rc == 0, f"rc {rc}: {err}")
        for r in (r1, r2):
            check(segments(r) == segments(env.log), f"{r}: {segments(r)}")
            check(open(os.path.join(r, "HEAD"), "rb").read() ==
                  open(os.path.join(env.log, "HEAD"), "rb").read(), f"{r}: HEAD differs")
        rc, problems, text = env.verify("--replica", r1, "--replica", r2)
        check(rc == 0, f"verify with replicas rc {rc}: {text[-600:]}")
        # Deleting the newest segment and rolling HEAD back in the primary is seen from a replica.
        unflag_tree(env.log)
        segs = segments(env.log)
        os.unlink(os.path.join(env.log, segs[-1]))
        last_seal = read_seg(os.path.join(env.log, segs[-2])).split(b"\n")[-2]
        open(os.path.join(env.log, "HEAD"), "wb").write(last_seal + b"\n")
        rc, problems, text = env.verify("--replica", r1)
        check(rc == 1 and kinds(problems) & {"rollback", "head_mismatch", "truncated"},
              f"rc {rc}: {text[-600:]}")
    finally:
        env.close()


@test
def forward_security_old_records_cannot_be_reforged():
    """With everything the host holds after its epoch changed (epoch.key, the public files;
    root.key moved offline), an attacker edits a record sealed in an earlier epoch, re-chains
    and re-signs every seal with the current key: verify rejects it."""
    env = Env(["--epoch-seconds", "2", "--epochs", "10000", "--max-interval", "1"])
    try:
        os.unlink(os.path.join(env.keys, "root.key"))
        rc, out, err = env.run()
        check(rc == 0, f"run rc {rc}: {err}")
        seed_before = open(os.path.join(env.keys, "epoch.key")).read().split()[1]
        time.sleep(7.5)  # past the seal window of every record of that run
        rc, out, err = env.run()
        check(rc == 0, f"second run rc {rc}: {err}")
        key_now = open(os.path.join(env.keys, "epoch.key")).read()
        check(seed_before not in key_now, "the old epoch's seed is still on disk")
        rc, problems, text = env.verify()
        check(rc == 0, f"verify before forging rc {rc}: {text[-400:]}")
        seg = segments(env.log)[0]
        lines = read_seg(os.path.join(env.log, seg)).split(b"\n")[:-1]
        target = next(seq_of(l) for l in lines if b'"kind":"exec"' in l)
        unflag_tree(env.tmp)
        p = subprocess.run([FORGE, env.log, env.keys, str(target), '"kind":"exec"',
                            '"kind":"exec","forged":true'], capture_output=True)
        check(p.returncode == 0, f"forge failed: {p.stderr.decode()}")
        rc, problems, text = env.verify()
        check(rc == 1, f"forged log verified: {text[-600:]}")
        check(kinds(problems) & {"late_record", "epoch"}, f"not caught as such: {kinds(problems)}")
    finally:
        env.close()


@test
def crash_recovery_keeps_every_record():
    env = Env()
    try:
        rb = os.path.join(env.tmp, "slow.yaml")
        open(rb, "w").write("name: slow\nsteps:\n  - name: before\n    run: echo before-crash\n"
                            "  - name: long\n    run: sleep 30\n")
        p = subprocess.Popen([RUNSEAL, "run", "-q", "--key-dir", env.keys, "--log-dir", env.log,
                              rb], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.5)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        subprocess.run(["pkill", "-9", "-f", "sleep 30"], capture_output=True)
        segs = segments(env.log)
        check(segs and segs[-1].endswith(".log"), f"no open segment after the crash: {segs}")
        crashed = read_seg(os.path.join(env.log, segs[-1]))
        rc, out, err = env.run()
        check(rc == 0, f"run after crash rc {rc}: {err}")
        check("recovered" in err, f"recovery not said: {err!r}")
        rc, problems, text = env.verify()
        check(rc == 0, f"verify after recovery rc {rc}: {text[-600:]}")
        check("recovery" in kinds(problems, "warning"), f"no recovery warning: {text[-600:]}")
        rc, problems, text = env.verify("--strict")
        check(rc == 1, "a recovery is not an error with --strict")
        rc, out, err = rs(["show", env.log, "--key-dir", env.keys, "--json"])
        shown = out
        for line in crashed.split(b"\n")[:-1]:
            s = seq_of(line)
            check(f'{{"seq":{s},' in shown, f"record {s} from before the crash is lost")
        check("before-crash" in shown, "the step before the crash is not in the log")
    finally:
        env.close()


@test
def bad_keys_and_foreign_logs_refused():
    env = Env()
    other = Env()
    try:
        two_runs(other)
        rc, out, err = env.run(["--log-dir", other.log])  # later --log-dir wins
        check(rc == 2 and "host" in err, f"foreign log: rc {rc} {err!r}")
        os.chmod(os.path.join(env.keys, "epoch.key"), 0o644)
        before = sorted(os.listdir(env.tmp))
        rc, out, err = env.run()
        check(rc == 2 and "epoch.key" in err, f"loose key mode: rc {rc} {err!r}")
        check(not os.path.exists(env.log) or not segments(env.log), "something was written")
        os.chmod(os.path.join(env.keys, "epoch.key"), 0o600)
        # On a host the keys and the log are root's alone.
        for path in (os.path.join(env.keys, "epoch.key"), env.keys):
            os.chown(path, 65534, 0)
            rc, out, err = env.run()
            check(rc == 2 and "not uid 0" in err and path in err,
                  f"{path} owned by nobody: rc {rc} {err!r}")
            os.chown(path, 0, 0)
        os.makedirs(env.log, mode=0o700, exist_ok=True)
        os.chown(env.log, 65534, 0)
        rc, out, err = env.run()
        check(rc == 2 and "owned by uid 0" in err and env.log in err,
              f"log dir owned by nobody: rc {rc} {err!r}")
        os.chown(env.log, 0, 0)
        os.unlink(os.path.join(env.keys, "epochs.pub"))
        rc, out, err = rs(["verify", other.log, "--key-dir", env.keys])
        check(rc == 2, f"verify without keys rc {rc}")
    finally:
        env.close()
        other.close()


@test
def disk_full_fails_closed_and_stays_verifiable():
    env = Env()
    mnt = os.path.join(env.tmp, "small")
    os.makedirs(mnt)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k,mode=0700", "tmpfs", mnt],
                       check=True)
        log = os.path.join(mnt, "log")
        rb = os.path.join(env.tmp, "big.yaml")
        open(rb, "w").write("name: big\nsteps:\n  - name: flood\n    run: for i in $(seq 400); "
                            "do cat /etc/hostname >/dev/null; done\n  - name: after\n"
                            "    run: echo should-not-run\n")
        rc, out, err = rs(["run", "-q", "--key-dir", env.keys, "--log-dir", log, rb])
        check(rc == 1, f"rc {rc} on a full disk: {err[-300:]}")
        check("No space" in err or "cannot" in err, f"no reason given: {err!r}")
        check("should-not-run" not in out, "the run went on after the log failed")
        rc, problems, text = env.verify(log=log)
        bad = kinds(problems) - {"truncated", "unsealed_tail"}
        check(not bad, f"what was written does not verify: {text[-600:]}")
        # With --on-log-error=continue the steps go on, and say the log is not kept.
        log2 = os.path.join(mnt, "log2")
        rc, out, err = rs(["run", "-q", "--key-dir", env.keys, "--log-dir", log2,
                           "--on-log-error", "continue", rb])
        check(rc == 0 and "should-not-run" in out, f"continue: rc {rc} {err[-300:]}")
        check("going on without it" in err, f"continue: not said: {err[-300:]}")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
        env.close()


def main():
    return run_all("seal", "inode flags, BPF, key ownership", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
