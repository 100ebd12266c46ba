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

from harness import Failure, check, run_all, skip, test


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
def tamper_newest_segment_and_head_deleted():
    def edit(env):
        os.unlink(os.path.join(env.log, segments(env.log)[-1]))
        os.unlink(os.path.join(env.log, "HEAD"))
        return {"file": "HEAD"}
    tamper_case(edit, {"head_missing"})


@test
def tamper_head_seq_forged():
    """A HEAD claiming a later seal than the log has is a forgery (its signature covers its
    seq), not a sign of truncation."""
    def edit(env):
        path = os.path.join(env.log, "HEAD")
        head = open(path, "rb").read()
        s = seq_of(head)
        open(path, "wb").write(head.replace(b'{"seq":%d,' % s, b'{"seq":%d,' % (s + 5), 1))
        return {"file": "HEAD", "seq": {s + 5}}
    tamper_case(edit, {"bad_signature"})


@test
def seal_reason_edited():
    def edit(env):
        seg = segments(env.log)[0]
        edit_lines(os.path.join(env.log, seg),
                   lambda ls: [l.replace(b'"reason":"run_end"', b'"reason":"size"')
                               if b'"kind":"seal"' in l else l for l in ls])
        return {"file": seg}
    tamper_case(edit, {"bad_signature"})


@test
def verify_says_when_it_cannot_see_a_rollback():
    env = Env()
    try:
        two_runs(env)
        rc, out, err = rs(["verify", env.log, "--key-dir", env.keys])
        check(rc == 0 and "no replica was given" in out and "rollback" in out,
              f"rc {rc}: {out}")
        rc, out, err = rs(["verify", env.log, "--key-dir", env.keys, "--strict"])
        check(rc == 1 and "error: no_replica" in out, f"--strict without a replica: rc {rc} {out}")
    finally:
        env.close()


@test
def second_writer_refused_before_anything_runs():
    env = Env()
    try:
        rb = os.path.join(env.tmp, "slow.yaml")
        open(rb, "w").write("name: slow\nsteps:\n  - name: long\n    run: sleep 4\n")
        first = subprocess.Popen([RUNSEAL, "run", "-q", "--key-dir", env.keys, "--log-dir",
                                  env.log, rb], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        time.sleep(1.5)
        marker = os.path.join(env.tmp, "ran")
        rb2 = os.path.join(env.tmp, "second.yaml")
        open(rb2, "w").write(f"name: second\nsteps:\n  - name: touch\n    run: touch {marker}\n")
        before = segments(env.log)
        rc, out, err = env.run(rb=rb2)
        check(rc == 2 and f"log in use by pid {first.pid}" in err,
              f"second writer: rc {rc} {err[-300:]}")
        check(not os.path.exists(marker), "the second run's step ran")
        check(segments(env.log) == before, "the second writer touched the log")
        _, ferr = first.communicate(timeout=30)
        check(first.returncode == 0, f"first run rc {first.returncode}: {ferr[-300:]}")
        rc, out, err = env.run(rb=rb2)
        check(rc == 0 and os.path.exists(marker), f"after the first ended: rc {rc} {err[-300:]}")
        rc, problems, text = env.verify()
        check(rc == 0 and "recovery" not in kinds(problems, "warning"),
              f"verify: {text[-500:]}")
    finally:
        env.close()


@test
def crash_between_seal_and_compression_completes_the_replicas():
    """A crash after a seal but before its segment was compressed (or before the replica got
    it) must not leave the replica without that segment for good: the next run copies it."""
    env = Env()
    try:
        rep = os.path.join(env.tmp, "rep")
        for _ in range(2):
            rc, out, err = env.run(["--replica", rep])
            check(rc == 0, f"run rc {rc}: {err[-300:]}")
        unflag_tree(env.tmp)
        newest = segments(env.log)[-1]
        prev_seal = read_seg(os.path.join(env.log, segments(env.log)[-2])).split(b"\n")[-2] + b"\n"
        # The state of a crash right after the seal's fsync: the plain sealed .log, HEAD and
        # the replica one seal behind.
        plain = read_seg(os.path.join(env.log, newest))
        open(os.path.join(env.log, newest[:-2]), "wb").write(plain)
        os.unlink(os.path.join(env.log, newest))
        os.unlink(os.path.join(rep, newest))
        for d in (env.log, rep):
            open(os.path.join(d, "HEAD"), "wb").write(prev_seal)
        rc, out, err = env.run(["--replica", rep])
        check(rc == 0, f"run after the crash rc {rc}: {err[-300:]}")
        check(os.path.exists(os.path.join(rep, newest)), f"replica still lacks {newest}")
        check(open(os.path.join(rep, "HEAD"), "rb").read() ==
              open(os.path.join(env.log, "HEAD"), "rb").read(), "replica HEAD differs")
        rc, problems, text = env.verify("--replica", rep)
        check(rc == 0, f"verify with the replica: {text[-600:]}")
        # A crash after the .z and HEAD, before the replica's copy.
        unflag_tree(env.tmp)
        newest = segments(env.log)[-1]
        os.unlink(os.path.join(rep, newest))
        prev_seal = read_seg(os.path.join(rep, segments(rep)[-1])).split(b"\n")[-2] + b"\n"
        open(os.path.join(rep, "HEAD"), "wb").write(prev_seal)
        rc, out, err = env.run(["--replica", rep])
        check(rc == 0 and os.path.exists(os.path.join(rep, newest)),
              f"replica not completed: rc {rc} {err[-300:]}")
        rc, problems, text = env.verify("--replica", rep)
        check(rc == 0, f"verify with the replica: {text[-600:]}")
    finally:
        env.close()


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
    env = Env(["--epoch-seconds", "4", "--epochs", "10000", "--max-interval", "1",
               "--late-slack", "2"])
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
        # A run on the still full disk fails closed and leaves the log as it was...
        small = os.path.join(env.tmp, "small.yaml")
        open(small, "w").write("name: small\nsteps:\n  - name: one\n    run: echo small-ran\n")
        before = {f: os.path.getsize(os.path.join(log, f)) for f in segments(log)}
        rc, out, err = rs(["run", "-q", "--key-dir", env.keys, "--log-dir", log, small])
        check(rc == 2 and "small-ran" not in out, f"run on a full disk: rc {rc} {err[-300:]}")
        after = {f: os.path.getsize(os.path.join(log, f)) for f in segments(log)}
        check(after == before, f"the failed run left {after}, was {before}")
        # ... and once space is freed the next run works and the log verifies.
        subprocess.run(["mount", "-o", "remount,size=16m", mnt], check=True)
        rc, out, err = rs(["run", "-q", "--key-dir", env.keys, "--log-dir", log, small])
        check(rc == 0 and "small-ran" in out, f"run after freeing space: rc {rc} {err[-300:]}")
        rc, problems, text = env.verify(log=log)
        check(rc == 0 and "recovery" in kinds(problems, "warning"),
              f"verify after freeing space: {text[-600:]}")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
        env.close()


@test
def keys_tick_erases_an_ended_epoch_without_a_run():
    """The key of an ended epoch goes when its epoch ends, not at the next seal: `keys tick`
    (the timer's command) erases it; verify on the host warns while it is still there."""
    env = Env(["--epoch-seconds", "3", "--epochs", "1000", "--max-interval", "1",
               "--late-slack", "1"])
    try:
        two_runs(env)
        key = os.path.join(env.keys, "epoch.key")
        before = open(key).read()
        hdr = open(os.path.join(env.keys, "epochs.pub")).readline().split()
        t0, length = int(hdr[3]), int(hdr[4])
        rc, out, err = rs(["keys", "tick", "--key-dir", env.keys])
        # The runs may have taken longer than an epoch on a loaded machine: then the tick
        # must erase, else it must do nothing.
        behind = (int(time.time()) - t0) // length > int(before.split()[0])
        check(rc == 0 and (out == "" or (behind and "erased the seeds" in out)),
              f"tick within the epoch: rc {rc} {out!r} {err!r}")
        before = open(key).read()
        time.sleep(6.5)  # two epochs end, and nothing runs
        rc, problems, text = env.verify()
        check(rc == 0 and "epoch.key is at epoch" in text and "keys tick" in text,
              f"verify does not warn of the stale key: {text[-500:]}")
        rc, out, err = rs(["keys", "tick", "--key-dir", env.keys])
        check(rc == 0 and "erased the seeds of epochs" in out, f"tick rc {rc}: {out!r} {err!r}")
        after = open(key).read()
        check(before.split()[1] not in after, "the old seed is still in epoch.key")
        check(int(after.split()[0]) > int(before.split()[0]), f"epoch did not move: {after[:16]}")
        check(os.stat(key).st_mode & 0o777 == 0o600 and len(after) == 82, "epoch.key damaged")
        rc, problems, text = env.verify()
        check(rc == 0 and "epoch.key is at epoch" not in text, f"after tick: {text[-400:]}")
        # A run finding the key behind the clock erases it first and says so.
        time.sleep(3.5)
        rc, out, err = env.run()
        check(rc == 0 and "stayed on disk" in err, f"run with a stale key: rc {rc} {err[-400:]}")
        rc, problems, text = env.verify()
        check(rc == 0, f"verify after the run: {text[-400:]}")
        rc, out, err = rs(["keys", "frob", "--key-dir", env.keys])
        check(rc == 2 and "usage" in err, f"bad subcommand rc {rc}")
    finally:
        env.close()


def slow_run_killed(env, after=2.5):
    rb = os.path.join(env.tmp, "slow.yaml")
    open(rb, "w").write("name: slow\nsteps:\n  - name: before\n    run: echo before-crash\n"
                        "  - name: long\n    run: while :; do cat /etc/hostname >/dev/null; "
                        "sleep 0.1; done; sleep 31\n")
    p = subprocess.Popen([RUNSEAL, "run", "-q", "--key-dir", env.keys, "--log-dir", env.log,
                          rb], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(after)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    subprocess.run(["pkill", "-9", "-f", "sleep 0.1; done; sleep 31"], capture_output=True)


@test
def fake_crash_of_the_newest_segment_needs_a_replica():
    """Stripping the seal of the newest segment only passes the cadence (its records were
    sealed in time once): the log alone cannot show it, and verify says so; a replica's
    HEAD does show it."""
    env = Env()
    try:
        rep = os.path.join(env.tmp, "rep")
        for _ in range(2):
            rc, out, err = env.run(["--replica", rep])
            check(rc == 0, f"run rc {rc}: {err[-300:]}")
        newest = segments(env.log)[-1]
        lines = read_seg(os.path.join(env.log, newest)).split(b"\n")[:-1]
        target = next(seq_of(l) for l in lines if b'"kind":"exec"' in l)
        unflag_tree(env.tmp)
        p = subprocess.run([FORGE, "--fake-crash", env.log, env.keys, str(target),
                            '"kind":"exec"', '"kind":"exec","forged":true'],
                           capture_output=True)
        check(p.returncode == 0, f"forge failed: {p.stderr.decode()}")
        rc, problems, text = env.verify()
        check(rc == 0 and "no_replica" in kinds(problems, "warning"),
              f"alone: rc {rc}, {text[-500:]}")
        rc, problems, text = env.verify("--replica", rep)
        check(rc == 1 and kinds(problems) & {"rollback", "head_mismatch", "missing_segment"},
              f"with the replica: rc {rc}, {text[-600:]}")
    finally:
        env.close()


@test
def keys_tick_units_install_and_verify():
    """`make install` ships the keys tick timer and its cron line pointing at the installed
    binary, under PREFIX; systemd accepts the units."""
    dest = tempfile.mkdtemp(prefix="runseal-install-")
    try:
        p = subprocess.run(["make", "-s", "-C", ROOT, "install-keys-tick", f"DESTDIR={dest}",
                            "PREFIX=/opt/rs"], capture_output=True, timeout=60)
        check(p.returncode == 0, f"make install-keys-tick: {p.stderr.decode()[-300:]}")
        unit = os.path.join(dest, "opt/rs/lib/systemd/system/runseal-keys-tick.service")
        cron = open(os.path.join(dest, "opt/rs/share/runseal/runseal-keys-tick.cron")).read()
        check("root /opt/rs/bin/runseal keys tick" in cron, f"cron line: {cron!r}")
        check("ExecStart=/opt/rs/bin/runseal keys tick" in open(unit).read(), "unit ExecStart")
        if not shutil.which("systemd-analyze"):
            skip("systemd-analyze is not installed")
        # Pointed at the built binary, since /opt/rs does not exist here.
        text = open(unit).read().replace("/opt/rs/bin/runseal", RUNSEAL)
        open(unit, "w").write(text)
        timer = os.path.join(dest, "opt/rs/lib/systemd/system/runseal-keys-tick.timer")
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", unit, timer],
                           capture_output=True, timeout=60)
        check(p.returncode == 0, f"systemd-analyze verify: {p.stderr.decode()[-400:]}")
    finally:
        shutil.rmtree(dest, ignore_errors=True)


@test
def fake_crash_forgery_fails_and_a_genuine_crash_passes():
    """The seal cadence binds crashed segments: a genuine crash long after the last run
    verifies; sealed records edited, stripped of their seals and passed off as a crash
    "recovered" with the current key do not."""
    env = Env(["--epoch-seconds", "30", "--epochs", "1000", "--max-interval", "1",
               "--late-slack", "2"])
    try:
        os.unlink(os.path.join(env.keys, "root.key"))
        rc, out, err = env.run()
        check(rc == 0, f"run rc {rc}: {err}")
        time.sleep(4)  # longer than max_interval + late_slack since the last seal
        slow_run_killed(env)
        rc, out, err = env.run()
        check(rc == 0 and "recovered" in err, f"run after the crash rc {rc}: {err[-300:]}")
        rc, problems, text = env.verify()
        check(rc == 0 and "recovery" in kinds(problems, "warning"),
              f"a genuine crash does not verify: {text[-600:]}")
        # The forgery: the first run's exec edited, everything after it stripped of seals.
        seg = segments(env.log)[0]
        lines = read_seg(os.path.join(env.log, seg)).split(b"\n")[:-1]
        target = next(seq_of(l) for l in lines if b'"kind":"exec"' in l)
        unflag_tree(env.tmp)
        p = subprocess.run([FORGE, "--fake-crash", env.log, env.keys, str(target),
                            '"kind":"exec"', '"kind":"exec","forged":true'],
                           capture_output=True)
        check(p.returncode == 0, f"forge failed: {p.stderr.decode()}")
        rc, problems, text = env.verify()
        check(rc == 1, f"the fake crash verified: {text[-600:]}")
        late = [p for p in problems if p.get("kind") == "late_record" and p["level"] == "error"]
        check(late and late[0]["file"] == seg.replace(".z", "") and late[0]["seq"] is not None,
              f"not reported as late_record in {seg}: {text[-600:]}")
    finally:
        env.close()


def main():
    return run_all("seal", "inode flags, BPF, key ownership", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
