#!/usr/bin/env python3
"""Integration tests of `runseal daemon`, as root: a real daemon on its own socket, log and
key directories in a temporary directory, real clients (runseal exec, runseal-sh,
begin/end, the Ansible callback plugin, raw sockets for bad clients), and the records read
back with `runseal show --json` from the sealed log. Prints one line per test and
"daemon: N passed, M failed, K skipped".
"""
import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from harness import check, run_all, skip, test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNSEAL = os.environ.get("RUNSEAL") or os.path.join(ROOT, "runseal")  # make check-sanitize
RUNSEAL_SH = os.path.join(ROOT, "scripts", "runseal-sh")
UNIT = os.path.join(ROOT, "scripts", "runseal.service")
PLUGIN_DIR = os.path.join(ROOT, "scripts", "ansible")
GROUP = "staff"  # Debian's; nobody is not in it
NOBODY = 65534
# The unit's CapabilityBoundingSet, as setpriv spells it.
UNIT_CAPS = "-all,+bpf,+perfmon,+chown"
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602


def unflag_tree(top):
    """Clears the append-only flags the sealer set, so the directory can be removed."""
    for d, dirs, files in os.walk(top):
        for name in files + dirs:
            path = os.path.join(d, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", 0))
            except OSError:
                pass
            os.close(fd)


class Daemon:
    """A runseal daemon of its own in a fresh temporary directory."""

    def __init__(self, extra=(), prefix=(), tmp=None, conf=""):
        self.tmp = tmp or tempfile.mkdtemp(prefix="runseal-daemon-")
        os.chmod(self.tmp, 0o755)  # the socket's directory: others may reach the socket
        self.sock = os.path.join(self.tmp, "rs.sock")
        self.log = os.path.join(self.tmp, "log")
        self.keys = os.path.join(self.tmp, "keys")
        self.conf = os.path.join(self.tmp, "runseal.conf")
        if not os.path.exists(self.conf) or conf:
            with open(self.conf, "w") as f:
                f.write(conf or f"group = {GROUP}\nclient_timeout = 2\n")
        self.errf = open(os.path.join(self.tmp, "daemon.err"), "ab")
        self.p = subprocess.Popen(
            list(prefix) + [RUNSEAL, "daemon", "--config", self.conf, "--socket", self.sock,
                            "--log-dir", self.log, "--key-dir", self.keys] + list(extra),
            stdout=self.errf, stderr=self.errf)
        self.env = dict(os.environ, RUNSEAL_SOCKET=self.sock, RUNSEAL=RUNSEAL)
        deadline = time.monotonic() + 30
        try:
            while not self.listening():
                check(self.p.poll() is None,
                      f"daemon exited {self.p.returncode}: {self.stderr()}")
                check(time.monotonic() < deadline, "daemon not listening after 30 s")
                time.sleep(0.05)
        except Exception:
            self.close()  # the test never gets a daemon to close
            raise

    def listening(self):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.sock)
            s.close()
            return True
        except OSError:
            return False

    def stderr(self):
        with open(os.path.join(self.tmp, "daemon.err"), "rb") as f:
            return f.read().decode(errors="replace")

    def rs(self, args, user=None, groups=None, timeout=60, input=None):
        cmd = [RUNSEAL] + args
        return run(as_user(cmd, user, groups), self.env, timeout, input)

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.errf.close()
        return self.p.returncode

    def records(self):
        p = subprocess.run([RUNSEAL, "show", self.log, "--key-dir", self.keys, "--json"],
                           capture_output=True, timeout=120)
        check(p.returncode == 0, f"show rc {p.returncode}: {p.stderr.decode()[-2000:]}")
        return [json.loads(line) for line in p.stdout.decode().splitlines() if line]

    def verify(self):
        p = subprocess.run([RUNSEAL, "verify", self.log, "--key-dir", self.keys],
                           capture_output=True, timeout=120)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    def close(self):
        self.stop(signal.SIGKILL)
        try:  # the run table a daemon killed with runs open leaves for its restart
            st = os.stat(self.log)
            os.unlink(f"/run/runseal/daemon/{st.st_dev:x}-{st.st_ino:x}")
        except OSError:
            pass
        unflag_tree(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)


def as_user(cmd, user, groups):
    """cmd as uid user (with exactly these supplementary groups), or as root."""
    if user is None:
        return cmd
    g = ["--clear-groups"] if not groups else ["--groups", ",".join(str(x) for x in groups)]
    return ["setpriv", "--reuid", str(user), "--regid", str(user)] + g + cmd


def run(cmd, env, timeout=60, input=None):
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, input=input)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def group_gid():
    import grp
    return grp.getgrnam(GROUP).gr_gid


def by_kind(recs, kind, run=None):
    return [r for r in recs if r.get("kind") == kind and (run is None or r.get("run") == run)]


def runs_named(recs, name):
    return [r["run"] for r in by_kind(recs, "run_start") if r.get("runbook_name") == name]


def execs_with(recs, marker):
    """exec records whose argv mentions marker (the shell's and the command's)."""
    return [r for r in by_kind(recs, "exec") if any(marker in a for a in r.get("argv", []))]


def one_run(recs, name):
    ids = runs_named(recs, name)
    check(len(ids) == 1, f"runs named {name}: {ids}")
    return ids[0]


# ---- the protocol, spoken by hand ---------------------------------------------------------

def frame(obj):
    b = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack(">I", len(b)) + b


def recv_frame(s, timeout=10):
    s.settimeout(timeout)
    hdr = b""
    while len(hdr) < 4:
        c = s.recv(4 - len(hdr))
        if not c:
            return None
        hdr += c
    (n,) = struct.unpack(">I", hdr)
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c:
            return None
        body += c
    return json.loads(body)


def call(s, **fields):
    s.sendall(frame(dict(v=1, **fields)))
    return recv_frame(s)


def connect(d):
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    return s


def closed_by_peer(s, timeout=10):
    """True when the daemon closed the connection (after any replies it sent)."""
    s.settimeout(timeout)
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def still_serving(d):
    rc, out, err = d.rs(["exec", "--runbook", "alive", "--", "true"])
    check(rc == 0, f"exec while under attack: rc {rc}: {err}")
    rc, out, err = d.rs(["status", "--json"])
    check(rc == 0, f"status rc {rc}: {err}")
    return json.loads(out)


# ---- tests ---------------------------------------------------------------------------------

@test
def exec_traces_and_exit_status_is_the_commands():
    d = Daemon()
    try:
        rc, out, err = d.rs(["exec", "--runbook", "one", "--step", "greet", "--",
                             "sh", "-c", "cat /etc/hostname >/dev/null; echo hi; exit 7"])
        check(rc == 7, f"rc {rc} (want the command's 7): {err}")
        check(out == "hi\n", f"stdout {out!r}")
        rc, _, err = d.rs(["exec", "--", "sh", "-c", "kill -TERM $$"])
        check(rc == 128 + 15, f"killed command: rc {rc}")
        rc, _, err = d.rs(["exec", "--", "/nonexistent/cmd"])
        check(rc == 127, f"missing command: rc {rc}: {err}")
        # An argv larger than a frame: the step says it was cut, the command gets it whole.
        big = ["x" * 1000] * 40
        rc, out, err = d.rs(["exec", "--runbook", "big", "--", "sh", "-c",
                             'echo $#', "sh"] + big)
        check(rc == 0 and out.strip() == "40", f"long argv: rc {rc} {out!r} {err}")
        d.stop()
        recs = d.records()
        run = one_run(recs, "one")
        start = by_kind(recs, "run_start", run)[0]
        check(start["uid"] == 0 and start["source"] == "daemon", f"run_start {start}")
        steps = by_kind(recs, "step_start", run)
        check([s["step"] for s in steps] == ["greet"], f"steps {steps}")
        att = by_kind(recs, "attach", run)
        check(len(att) == 1 and att[0]["step"] == "greet", f"attach {att}")
        cats = [r for r in by_kind(recs, "exec", run) if r.get("filename") == "/usr/bin/cat"
                or r.get("path") == "/usr/bin/cat"]
        check(cats and all(r["step"] == "greet" for r in cats), f"cat exec {cats}")
        opens = [r for r in by_kind(recs, "open", run) if r.get("path") == "/etc/hostname"]
        check(opens, "the open of /etc/hostname was not recorded")
        end = by_kind(recs, "step_end", run)
        check(len(end) == 1 and end[0]["exit_code"] == 7 and end[0]["status"] == "failed",
              f"step_end {end}")
        rend = by_kind(recs, "run_end", run)
        check(len(rend) == 1 and rend[0]["status"] == "failed" and rend[0]["events"] > 0,
              f"run_end {rend}")
        big_step = by_kind(recs, "step_start", one_run(recs, "big"))[0]
        check(big_step["argv_truncated"] and len(big_step["argv"]) < 44,
              f"long argv step_start {big_step['argv_truncated']} {len(big_step['argv'])}")
        check(d.verify()[0] == 0, "verify failed: " + d.verify()[1])
    finally:
        d.close()


@test
def concurrent_runs_attributed_exactly():
    """exec, runseal-sh, begin/exec --run/end and a non-root group member, all at once."""
    d = Daemon()
    try:
        gid = group_gid()
        rc, run_be, err = d.rs(["begin", "--trigger", "job=nightly", "multi"])
        check(rc == 0, f"begin rc {rc}: {err}")
        run_be = run_be.strip()
        jobs = []
        for i in range(3):
            jobs.append((f"exec{i}", [RUNSEAL, "exec", "--runbook", f"exec{i}", "--step",
                                      "s", "--", "sh", "-c",
                                      f"sleep 0.3; ls / >/dev/null; echo MARK_exec{i}"], None))
        jobs.append(("shim", [RUNSEAL_SH, "--runbook", "shim", "-c",
                              "sleep 0.2; echo MARK_shim | cat"], None))
        for i in range(2):
            jobs.append((f"multi{i}", [RUNSEAL, "exec", "--run", run_be, "--step",
                                       f"part{i}", "--", "sh", "-c",
                                       f"sleep 0.2; echo MARK_multi{i}"], None))
        jobs.append(("member", as_user([RUNSEAL, "exec", "--runbook", "member", "--",
                                        "sh", "-c", "sleep 0.2; echo MARK_member"],
                                       NOBODY, [gid]), None))
        procs = [(name, subprocess.Popen(cmd, env=d.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)) for name, cmd, _ in jobs]
        for name, p in procs:
            out, err = p.communicate(timeout=60)
            check(p.returncode == 0, f"{name}: rc {p.returncode}: {err.decode()}")
            check(f"MARK_{name}" in out.decode(), f"{name}: stdout {out!r}")
        rc, _, err = d.rs(["end", "--status", "ok", run_be])
        check(rc == 0, f"end rc {rc}: {err}")
        d.stop()
        recs = d.records()
        runs = {name: one_run(recs, name) for name in
                ["exec0", "exec1", "exec2", "shim", "member"]}
        runs["multi0"] = runs["multi1"] = run_be
        check(len(set(runs.values())) == 6, f"run ids not distinct: {runs}")
        for name, run in runs.items():
            ex = execs_with(recs, f"MARK_{name}")
            check(ex, f"{name}: no exec record of its command")
            check(all(r["run"] == run for r in ex), f"{name}: exec attributed to another run")
        for i in range(2):
            ex = execs_with(recs, f"MARK_multi{i}")
            check(all(r["step"] == f"part{i}" for r in ex), f"multi{i}: step {ex}")
        # Every event of a run belongs to one of its steps, by name.
        for run in set(runs.values()):
            names = {s["step"] for s in by_kind(recs, "step_start", run)}
            for r in recs:
                if r.get("run") == run and r["kind"] in ("exec", "fork", "exit", "open"):
                    check(r["step"] in names, f"event of run {run} in unknown step {r}")
        member = by_kind(recs, "run_start", runs["member"])[0]
        check(member["uid"] == NOBODY and member["gid"] == NOBODY, f"member run_start {member}")
        att = by_kind(recs, "attach", runs["member"])[0]
        check(att["uid"] == NOBODY, f"member attach {att}")
        shim = by_kind(recs, "run_start", runs["shim"])[0]
        check(shim["trigger"]["given"].get("tool") == "runseal-sh", f"shim trigger {shim}")
        be = by_kind(recs, "run_start", run_be)[0]
        check(be["trigger"] == {"given": {"job": "nightly"}} and be["detached"], f"begin {be}")
        end = by_kind(recs, "run_end", run_be)
        check(len(end) == 1 and end[0]["status"] == "ok" and end[0]["steps"] == 2,
              f"run_end {end}")
        check(d.verify()[0] == 0, "verify: " + d.verify()[1])
    finally:
        d.close()


@test
def non_member_refused_and_recorded():
    # 0666: the socket's mode alone would let nobody in; the daemon's own check does not.
    d = Daemon(["--socket-mode", "0666"])
    try:
        marker = os.path.join(d.tmp, "ran")
        rc, out, err = d.rs(["begin", "sneaky"], user=NOBODY)
        check(rc == 1 and "denied" in err and "recorded" in err, f"begin: rc {rc}: {err}")
        rc, out, err = d.rs(["exec", "--runbook", "sneaky2", "--", "touch", marker],
                            user=NOBODY)
        check(rc == 125 and "denied" in err, f"exec: rc {rc}: {err}")
        check(not os.path.exists(marker), "the refused command ran anyway")
        rc, out, err = d.rs(["status"], user=NOBODY)
        check(rc == 1 and "denied" in err, f"status: rc {rc}: {err}")
        # With the default mode the kernel refuses the connection itself.
        os.chmod(d.sock, 0o660)
        rc, out, err = d.rs(["begin", "x"], user=NOBODY)
        check(rc == 1 and "Permission denied" in err, f"0660: rc {rc}: {err}")
        d.stop()
        recs = d.records()
        ref = by_kind(recs, "refused")
        check(len(ref) == 3, f"refused records: {ref}")
        check(all(r["uid"] == NOBODY and r["gid"] == NOBODY and r["pid"] > 0 for r in ref),
              f"refused identity {ref}")
        check([r["op"] for r in ref] == ["begin", "begin", "status"], f"ops {ref}")
        check(ref[0]["asked"] == "sneaky" and ref[1]["asked"] == "sneaky2", f"asked {ref}")
        check(not by_kind(recs, "run_start"), "a refused run was opened")
    finally:
        d.close()


@test
def traced_process_cannot_move_to_another_run():
    """A step's process that calls runseal exec itself would leave its run: refused."""
    d = Daemon()
    try:
        rc, out, err = d.rs(["exec", "--runbook", "outer", "--", "sh", "-c",
                             f"{RUNSEAL} exec --runbook inner -- echo escaped; echo rc=$?"])
        check(rc == 0, f"outer rc {rc}: {err}")
        check("escaped" not in out and "rc=125" in out, f"inner ran: {out!r} {err}")
        check("already_traced" in err, f"inner error: {err}")
        d.stop()
        recs = d.records()
        ref = [r for r in by_kind(recs, "refused") if r["op"] == "attach"]
        check(len(ref) == 1 and ref[0]["reason"] == "process traced already", f"{ref}")
        outer = one_run(recs, "outer")
        inner = one_run(recs, "inner")
        check(not [r for r in recs if r.get("run") == inner and r["kind"] == "exec"],
              "events attributed to the inner run")
        check(by_kind(recs, "run_end", inner)[0]["status"] == "failed", "inner run status")
        check(execs_with(recs, "exec --runbook inner")[0]["run"] == outer, "outer attribution")
    finally:
        d.close()


@test
def client_gone_mid_step_leaves_processes_traced_and_step_abandoned():
    d = Daemon()
    try:
        p = subprocess.Popen([RUNSEAL, "exec", "--runbook", "orphan", "--", "sh", "-c",
                              "sleep 1.5; cat /etc/hostname > /dev/null; echo MARK_late"],
                             env=d.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.7)
        p.kill()  # the client, not its command
        p.wait()
        deadline = time.monotonic() + 20
        while True:
            st = json.loads(d.rs(["status", "--json"])[1])
            if st["runs_open"] == 0:
                break
            check(time.monotonic() < deadline, f"orphan run still open: {st}")
            time.sleep(0.3)
        d.stop()
        recs = d.records()
        run = one_run(recs, "orphan")
        check(execs_with(recs, "MARK_late")[0]["run"] == run, "late exec not attributed")
        cats = [r for r in by_kind(recs, "exec", run) if r.get("path") == "/usr/bin/cat"]
        check(cats, "cat after the client died was not traced")
        se = by_kind(recs, "step_end", run)
        check(len(se) == 1 and se[0]["status"] == "abandoned", f"step_end {se}")
        re_ = by_kind(recs, "run_end", run)
        check(len(re_) == 1 and re_[0]["status"] == "abandoned", f"run_end {re_}")
        # The run ends after the last exit of its processes.
        last_exit = max(r["time"] for r in by_kind(recs, "exit", run))
        check(re_[0]["time"] > last_exit, "run_end before its processes exited")
    finally:
        d.close()


@test
def bad_clients_do_not_stop_the_daemon():
    d = Daemon()
    socks = []
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old[1], old[1]))
        # Garbage: a frame that is not JSON gets an error and the connection stays usable.
        s = connect(d)
        s.sendall(frame(b"\x00\xffnot json at all"))
        r = recv_frame(s)
        check(r and r["ok"] is False and r["error"] == "bad_json", f"garbage reply {r}")
        r = call(s, op="hello")
        check(r["ok"], f"hello after garbage {r}")
        r = call(s, op="attach")
        check(r["error"] == "bad_request" and "run" in r["message"], f"attach no run {r}")
        r = call(s, op="step_end", run="nope", step=1, id=5)
        check(r["error"] == "no_such_run" and r["id"] == 5, f"unknown run {r}")
        r = call(s, op="begin", runbook="ooo")
        run = r["run"]
        r = call(s, op="step_end", run=run, step=1)
        check(r["error"] == "no_such_run", f"step_end before step {r}")
        r = call(s, op="step", run=run, name="s")
        check(r["ok"] and r["step"] == 1, f"step {r}")
        r = call(s, op="attach", run=run, step=1)
        check(r["ok"] and r["pid"] == os.getpid(), f"attach {r}")
        r = call(s, op="attach", run=run, step=1)
        check(r["error"] == "out_of_order", f"second attach {r}")
        check(call(s, op="end", run=run)["ok"], "end")
        r = call(s, op="end", run=run)
        check(r["error"] == "no_such_run", f"end twice {r}")
        r = call(s, op="step_end", run=run, step=1, status="weird")
        check(r["error"] == "bad_request", f"bad status {r}")
        s.close()
        # Out of order: a request before hello.
        s = connect(d)
        r = call(s, op="begin", runbook="x")
        check(r["error"] == "out_of_order", f"begin before hello {r}")
        s.close()
        # Oversized: a length above the limit cannot be resynchronised: error, then closed.
        s = connect(d)
        s.sendall(struct.pack(">I", 1 << 30) + b"{")
        r = recv_frame(s)
        check(r and r["error"] == "bad_frame", f"oversized reply {r}")
        check(closed_by_peer(s), "oversized client not disconnected")
        s.close()
        # Random bytes as the length too.
        s = connect(d)
        s.sendall(os.urandom(3000))
        closed_by_peer(s, 5)
        s.close()
        # Half a message: dropped after client_timeout (2 s), with a reason.
        half = connect(d)
        half.sendall(frame({"v": 1, "op": "hello"})[:9])
        # A client that never reads: requests pour in, replies pile up, it is dropped.
        greedy = connect(d)
        greedy.setblocking(False)
        req = frame({"v": 1, "op": "hello", "client": "x" * 200}) * 50
        sent = 0
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end:
            try:
                sent += greedy.send(req)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
        check(sent > 65536, f"greedy client sent only {sent} bytes")
        # 1000 connections at once, each said hello and then idle.
        for _ in range(1000):
            c = socket.socket(socket.AF_UNIX)
            c.setblocking(True)
            c.connect(d.sock)
            socks.append(c)
        st = still_serving(d)
        check(st["clients"] >= 1000, f"the daemon holds {st['clients']} clients, not 1000+")
        r = recv_frame(half, 10)
        check(r and r["error"] == "timeout", f"half message reply {r}")
        check(closed_by_peer(half), "half-message client not disconnected")
        half.close()
        try:
            greedy.setblocking(True)
            check(closed_by_peer(greedy, 10), "greedy client still connected")
        except OSError:
            pass
        greedy.close()
        for c in socks:
            c.close()
        socks.clear()
        time.sleep(0.5)
        st = still_serving(d)
        check(st["clients"] <= 2, f"connections not cleaned up: {st['clients']}")
        check(d.p.poll() is None, "daemon died")
        d.stop()
        check(d.verify()[0] == 0, "verify: " + d.verify()[1])
    finally:
        for c in socks:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
        d.close()


def chaos_client(d, seed, n, errors):
    """n random requests, valid and not, on one connection; every one must be answered."""
    import random
    rnd = random.Random(seed)
    ops = ["hello", "begin", "step", "step_end", "end", "status", "bogus", 7, None]
    runs = ["nope"]
    s = connect(d)
    try:
        call(s, op="hello")
        for i in range(n):
            m = {"v": rnd.choice([1, 1, 1, 2, "1"]), "id": i}
            op = rnd.choice(ops)
            if op is not None:
                m["op"] = op
            for k in rnd.sample(["runbook", "run", "name", "step", "status", "exit_code",
                                 "signal", "argv", "trigger", "detached", "x"],
                                rnd.randint(0, 6)):
                m[k] = rnd.choice([
                    rnd.choice(runs), "r" * rnd.randint(0, 300), rnd.randint(-2, 70000),
                    True, None, ["a", "b"], {"tool": "chaos"}, [1, [2]], {"a": {"b": 1}},
                    "ok", "failed", "\udc80\u00e9"])
            body = json.dumps(m).encode()
            if rnd.random() < 0.05:
                body = body[:rnd.randint(0, len(body))] + b"}"
            s.sendall(frame(body))
            r = recv_frame(s)
            if r is None:
                errors.append(f"seed {seed}: no reply to {body[:200]!r}")
                return
            if r.get("ok") and "run" in r:
                runs.append(r["run"])
    except Exception as e:
        errors.append(f"seed {seed}: {type(e).__name__}: {e}")
    finally:
        s.close()


@test
def random_requests_are_all_answered_and_memory_stays_bounded():
    d = Daemon()
    try:
        errors = []
        threads = [threading.Thread(target=chaos_client, args=(d, seed, 400, errors))
                   for seed in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        check(not errors, "; ".join(errors[:5]))
        st = still_serving(d)
        with open(f"/proc/{d.p.pid}/status") as f:
            hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM")][0]
        check(hwm < 256 * 1024, f"daemon peak memory {hwm} kB")
        check(st["runs_open"] == 0 or st["runs_open"] < 400, f"status {st}")
        d.stop()
        rc, out = d.verify()
        check(rc == 0, f"verify after the chaos: {out[-800:]}")
    finally:
        d.close()


@test
def connection_limit_answers_busy():
    d = Daemon(["--max-clients", "5"])
    socks = []
    try:
        for _ in range(5):
            socks.append(connect(d))
            check(call(socks[-1], op="hello")["ok"], "hello")
        extra = connect(d)
        r = recv_frame(extra)
        check(r and r["error"] == "busy", f"sixth client: {r}")
        extra.close()
        socks.pop().close()
        time.sleep(0.3)
        rc, out, err = d.rs(["status"])
        check(rc == 0 and "runs:" in out, f"status after a slot freed: {rc} {err}")
    finally:
        for s in socks:
            s.close()
        d.close()


@test
def descriptor_limit_bounds_clients_and_the_daemon_serves_on():
    # 160 descriptors in all: the BPF programs, maps and the log take about 70 to 110.
    d = Daemon(prefix=["prlimit", "--nofile=160:160", "--"])
    socks = []
    try:
        check("at most" in d.stderr() and "descriptor limit (160)" in d.stderr(),
              f"no warning about the limit: {d.stderr()}")
        busy = 0
        for _ in range(80):
            s = connect(d)
            socks.append(s)
            try:
                s.sendall(frame({"v": 1, "op": "hello"}))
            except (BrokenPipeError, ConnectionResetError):
                pass  # told busy and closed already: the reply is still there to read
        for s in socks:
            try:
                r = recv_frame(s, 10)
            except (ConnectionResetError, socket.timeout):
                r = None
            busy += bool(r and r.get("error") == "busy")
        check(busy > 20, f"only {busy} of 80 clients were told the daemon is busy")
        check(d.p.poll() is None, f"daemon died: {d.stderr()}")
        for s in socks:
            s.close()
        socks.clear()
        time.sleep(0.5)
        rc, out, err = d.rs(["exec", "--runbook", "after", "--", "cat", "/etc/hostname"])
        check(rc == 0, f"exec after the crowd: {rc} {err}")
        d.stop()
        recs = d.records()
        check(execs_with(recs, "/etc/hostname")[0]["run"] == one_run(recs, "after"), "traced")
        check(d.verify()[0] == 0, "verify: " + d.verify()[1])
    finally:
        for s in socks:
            s.close()
        d.close()


@test
def sigterm_seals_records_open_runs_and_restart_continues_the_chain():
    d = Daemon()
    try:
        rc, run, err = d.rs(["begin", "long"])
        run = run.strip()
        check(rc == 0, f"begin: {err}")
        check(d.rs(["exec", "--run", run, "--", "true"])[0] == 0, "exec before restart")
        check(d.stop() == 0, f"daemon exit status after SIGTERM: {d.stderr()}")
        check(not os.path.exists(d.sock), "socket left behind")
        recs = d.records()
        stop = [r for r in by_kind(recs, "daemon") if r["event"] == "stop"]
        check(len(stop) == 1 and stop[0]["open_runs"] == [run], f"stop record {stop}")
        entries = [r for r in recs if "seq" in r]  # show may add notes without a seq
        check(entries[-1]["kind"] == "seal" and entries[-1]["reason"] == "shutdown",
              f"last entry {entries[-1]}")
        d2 = Daemon(tmp=d.tmp)
        rc, out, err = d2.rs(["exec", "--runbook", "after", "--", "true"])
        check(rc == 0, f"exec after restart: {err}")
        # The run open at the stop is back (its processes, none here, re-registered).
        rc, out, err = d2.rs(["end", run])
        check(rc == 0, f"end of the run left open by the old daemon: {rc} {err}")
        d2.stop()
        rc, out = d.verify()
        check(rc == 0, f"chain across the restart does not verify: {out}")
        recs = d2.records()
        starts = [r for r in by_kind(recs, "daemon") if r["event"] == "start"]
        check(len(starts) == 2, f"daemon start records {starts}")
        check(one_run(recs, "after"), "run after restart")
        gap = by_kind(recs, "gap", run)
        check(len(gap) == 1 and gap[0]["reregistered"] == {}, f"gap record {gap}")
        check([r["status"] for r in by_kind(recs, "run_end", run)] == ["ok"], "run_end")
    finally:
        d.close()


def restart_mid_step(sig):
    d = Daemon()
    d2 = None
    try:
        rc, run, err = d.rs(["begin", "restart-me"])
        run = run.strip()
        check(rc == 0, f"begin: {err}")
        marks = os.path.join(d.tmp, "marks")
        os.mkdir(marks)
        # A long step that keeps opening files, one name per tick, through the restart.
        script = (f"i=0; while [ $i -lt 50 ]; do i=$((i+1)); : > {marks}/tick-$i; "
                  "cat /etc/hostname >/dev/null; sleep 0.1; done")
        p = subprocess.Popen([RUNSEAL, "exec", "--run", run, "--step", "loop", "--", "sh",
                              "-c", script], env=d.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(marks, "tick-5")):
            check(time.monotonic() < deadline and p.poll() is None, "the step did not start")
            time.sleep(0.05)
        rc = d.stop(sig)
        check(rc == 0 if sig == signal.SIGTERM else rc == -sig, f"stop: {rc} {d.stderr()}")
        d2 = Daemon(tmp=d.tmp)
        check(p.poll() is None, "the step ended before the restart completed")
        p.wait(60)
        rc, out, err = d2.rs(["end", run])
        check(rc == 0, f"end after the restart: {rc} {err}")
        d2.stop()
        recs = d2.records()
        gap = by_kind(recs, "gap", run)
        check(len(gap) == 1, f"gap records {gap}")
        gap = gap[0]
        check(gap["from"] < gap["to"] and "restarted" in gap["reason"], f"gap {gap}")
        sh = by_kind(recs, "attach", run)[0]["pid"]
        check(gap["reregistered"].get(str(sh)) == "loop", f"sh {sh} not re-registered: {gap}")
        ticks = {}
        for r in by_kind(recs, "open", run):
            if "/tick-" in (r.get("path") or ""):
                ticks[int(r["path"].rsplit("-", 1)[1])] = r
        check(all(r["step"] == "loop" for r in ticks.values()), "ticks attributed to loop")
        after = [n for n, r in ticks.items() if r["time"] > gap["to"]]
        check(1 in ticks and 50 in ticks and after, f"ticks recorded {sorted(ticks)}")
        # What the step did between stop and start is the gap: no tick of it is recorded.
        # (After a crash the gap starts at the last state saved, up to a second before.)
        inside = [n for n, r in ticks.items() if gap["from"] < r["time"] < gap["to"]]
        check(not inside or sig == signal.SIGKILL, f"ticks dated inside the gap {inside}")
        sleeps = [r for r in by_kind(recs, "exec", run) if r.get("filename") == "/usr/bin/sleep"
                  and r["time"] > gap["to"]]
        check(sleeps and all(r["step"] == "loop" for r in sleeps), "children after the restart")
        rc, out = d.verify()
        check(rc == 0, f"chain across the restart does not verify: {out}")
    finally:
        if d2:
            d2.close()
        d.close()


@test
def restart_mid_step_reregisters_the_steps_processes():
    restart_mid_step(signal.SIGTERM)


@test
def crash_mid_step_reregisters_the_steps_processes():
    """Restart=on-failure: the state is at most a second old, the torn segment is
    recovered, and the run goes on being traced."""
    restart_mid_step(signal.SIGKILL)


@test
def state_of_another_log_is_not_taken():
    """The state is named after the log directory's inode, which a new directory can
    reuse: a state that names another log is ignored."""
    a = Daemon()
    b = None
    try:
        run = a.rs(["begin", "elsewhere"])[1].strip()
        time.sleep(1.5)  # a tick saves the state
        st = os.stat(a.log)
        state = f"/run/runseal/daemon/{st.st_dev:x}-{st.st_ino:x}"
        check(os.path.exists(state), f"no state at {state}")
        with open(state) as f:
            saved = f.read()
        a.stop(signal.SIGKILL)
        b = Daemon()
        b.stop()
        st = os.stat(b.log)
        other = f"/run/runseal/daemon/{st.st_dev:x}-{st.st_ino:x}"
        with open(other, "w") as f:
            f.write(saved)
        b = Daemon(tmp=b.tmp)
        rc, out, err = b.rs(["end", run])
        check(rc == 1 and "no_such_run" in err, f"a run of another log resumed: {rc} {err}")
        b.stop()
        check(not by_kind(b.records(), "gap"), "a gap record for another log's run")
        check(not os.path.exists(other), "the foreign state was left")
    finally:
        if b:
            b.close()
        a.close()


@test
def sighup_reloads_the_group():
    d = Daemon()
    try:
        gid = group_gid()
        rc, out, err = d.rs(["exec", "--", "true"], user=NOBODY, groups=[gid])
        check(rc == 0, f"member before reload: {rc} {err}")
        # A run goes on through the reloads: none of its events may be lost.
        busy = subprocess.Popen([RUNSEAL, "exec", "--runbook", "through", "--", "sh", "-c",
                                 "for i in $(seq 40); do cat /etc/hostname; sleep 0.02; "
                                 "done >/dev/null"], env=d.env)
        with open(d.conf, "w") as f:
            f.write("group = root\nclient_timeout = 2\nsocket_mode = 0666\n")
        for _ in range(3):
            d.p.send_signal(signal.SIGHUP)
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while "reloaded" not in d.stderr():
            check(time.monotonic() < deadline, f"no reload: {d.stderr()}")
            time.sleep(0.1)
        check(busy.wait(60) == 0, "the run through the reloads failed")
        check(os.stat(d.sock).st_mode & 0o777 == 0o666, "socket mode not reloaded")
        rc, out, err = d.rs(["exec", "--", "true"], user=NOBODY, groups=[gid])
        check(rc == 125 and "denied" in err, f"after reload: {rc} {err}")
        # A broken file leaves the settings as they were.
        with open(d.conf, "w") as f:
            f.write("group = \nbogus line\n")
        d.p.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "settings unchanged" not in d.stderr():
            check(time.monotonic() < deadline, f"bad reload not reported: {d.stderr()}")
            time.sleep(0.1)
        check(d.rs(["status"])[0] == 0, "daemon gone after a bad reload")
        d.stop()
        recs = d.records()
        notes = [r["event"] for r in by_kind(recs, "daemon")]
        check(notes == ["start"] + ["reload"] * 3 + ["reload_failed", "stop"],
              f"daemon records {notes}")
        run = one_run(recs, "through")
        cats = [r for r in by_kind(recs, "exec", run) if r.get("path") == "/usr/bin/cat"]
        check(len(cats) == 40, f"{len(cats)} of 40 execs recorded through the reloads")
        check(by_kind(recs, "run_end", run)[0]["status"] == "ok", "run status")
    finally:
        d.close()


@test
def status_reports_the_daemon():
    # The shipped example configuration, with a group that exists here.
    with open(os.path.join(ROOT, "scripts", "runseal.conf")) as f:
        conf = f.read().replace("group = runseal", f"group = {GROUP}")
    tmp = tempfile.mkdtemp(prefix="runseal-daemon-")
    rep_ok, rep_bad = os.path.join(tmp, "rep1"), os.path.join(tmp, "nonexistent", "rep2")
    d = Daemon(["--replica", rep_ok, "--replica", rep_bad], conf=conf, tmp=tmp)
    try:
        check(d.rs(["exec", "--", "ls", "/"])[0] == 0, "exec")
        rc, out, err = d.rs(["status", "--json"])
        check(rc == 0, f"status rc {rc}: {err}")
        st = json.loads(out)
        for k in ["uptime_s", "runs_open", "events", "events_per_s", "lost", "last_seal",
                  "segment", "log_free_bytes", "log_size_bytes", "replicas"]:
            check(k in st, f"status lacks {k}: {st}")
        check(st["events"] > 0 and st["runs_total"] == 1 and st["last_seal"], f"status {st}")
        check(0 < st["log_free_bytes"] <= st["log_size_bytes"], f"free space {st}")
        check(st["replicas"] == 2 and st["replicas_in_sync"] == 2, f"replicas {st}")
        # A replica that falls behind (its HEAD is not the log's) is told apart.
        with open(os.path.join(rep_bad, "HEAD"), "ab") as f:
            f.write(b"x")
        st = json.loads(d.rs(["status", "--json"])[1])
        check(st["replica_state"] == [f"{rep_ok}: in sync", f"{rep_bad}: behind"],
              f"replica state {st['replica_state']}")
        rc, out, err = d.rs(["status"])
        check(rc == 0 and "free space:" in out and "last seal" in out and
              "1 in sync" in out and f"{rep_bad}: behind" in out, f"status text {out}")
        d.stop()
        rc, out, err = run([RUNSEAL, "status", "--socket", d.sock], os.environ)
        check(rc == 1 and "no runseal daemon" in err, f"status without daemon: {rc} {err}")
    finally:
        d.close()


@test
def runseal_sh_for_cron_github_and_rundeck():
    d = Daemon()
    try:
        script = os.path.join(d.tmp, "step.sh")
        with open(script, "w") as f:
            f.write("echo MARK_gh\nfalse\necho never\n")
        env = dict(d.env, GITHUB_ACTIONS="true", GITHUB_WORKFLOW="ci", GITHUB_JOB="build",
                   GITHUB_RUN_ID="42", GITHUB_REPOSITORY="o/r", GITHUB_SHA="abc",
                   GITHUB_ACTOR="me")
        rc, out, err = run([RUNSEAL_SH, script], env)
        check(rc == 1 and "MARK_gh" in out and "never" not in out, f"gh: {rc} {out} {err}")
        env = dict(d.env, RD_JOB_EXECID="7", RD_JOB_NAME="restart", RD_JOB_PROJECT="ops",
                   RD_JOB_USERNAME="admin")
        rc, out, err = run([RUNSEAL_SH, "-c", "echo MARK_rd"], env)
        check(rc == 0 and "MARK_rd" in out, f"rundeck: {rc} {err}")
        # cron: SHELL=runseal-sh and `$SHELL -c CMD`, names from the crontab's variables.
        env = dict(d.env, RUNSEAL_RUNBOOK="backup")
        rc, out, err = run([RUNSEAL_SH, "-c", "echo MARK_cron 'with spaces' \"$0\"", "arg0"],
                           env)
        check(rc == 0 and "MARK_cron with spaces arg0" in out, f"cron: {rc} {out} {err}")
        rc, out, err = run(["sh", RUNSEAL_SH, "-c"], d.env)
        check(rc == 125 and "needs a COMMAND" in err, f"no command: {rc} {err}")
        # The command's own $SHELL -c (cron's SHELL= is inherited) joins the same step.
        env = dict(d.env, RUNSEAL_RUNBOOK="nested", SHELL=RUNSEAL_SH)
        rc, out, err = run([RUNSEAL_SH, "-c", '"$SHELL" -c "echo MARK_inner"'], env)
        check(rc == 0 and "MARK_inner" in out, f"nested runseal-sh: {rc} {out} {err}")
        d.stop()
        recs = d.records()
        gh = by_kind(recs, "run_start", one_run(recs, "ci"))[0]
        check(gh["trigger"]["given"] == {"tool": "github-actions", "run_id": "42",
                                         "repository": "o/r", "sha": "abc", "actor": "me"},
              f"gh trigger {gh['trigger']}")
        check(by_kind(recs, "step_start", gh["run"])[0]["step"] == "build", "gh step name")
        check(by_kind(recs, "step_end", gh["run"])[0]["exit_code"] == 1, "gh exit code")
        rd = by_kind(recs, "run_start", one_run(recs, "restart"))[0]
        check(rd["trigger"]["given"]["tool"] == "rundeck" and
              rd["trigger"]["given"]["execution"] == "7", f"{rd}")
        nested = one_run(recs, "nested")
        inner = [r for r in execs_with(recs, "MARK_inner") if r.get("comm") == "sh"]
        check(inner and all(r["run"] == nested for r in inner), f"nested attribution {inner}")
        check(len(by_kind(recs, "step_start", nested)) == 1, "the nested shell opened a step")
        check(not [r for r in by_kind(recs, "refused")], "the nested shell was refused")
        cron = one_run(recs, "backup")
        check(by_kind(recs, "step_start", cron)[0]["step"] == "echo", "cron step name")
        check(execs_with(recs, "MARK_cron")[0]["run"] == cron, "cron attribution")
    finally:
        d.close()


PLAYBOOK = """
- name: web play
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_shell_executable: {sh}
  tasks:
    - name: first task
      shell: echo MARK_task1 && cat /etc/hostname
    - name: second task
      command: ls /
    - name: failing task
      shell: exit 3
      ignore_errors: true
"""


def ansible_playbook_run(d):
    pb = os.path.join(d.tmp, "play.yml")
    with open(pb, "w") as f:
        f.write(PLAYBOOK.format(sh=RUNSEAL_SH))
    env = dict(d.env, ANSIBLE_CALLBACK_PLUGINS=PLUGIN_DIR, ANSIBLE_CALLBACKS_ENABLED="runseal",
               ANSIBLE_LOCAL_TEMP=os.path.join(d.tmp, "ansible-local"),
               ANSIBLE_REMOTE_TEMP=os.path.join(d.tmp, "ansible-remote"),
               ANSIBLE_HOME=os.path.join(d.tmp, "ansible-home"),
               ANSIBLE_NOCOLOR="1", PATH=os.path.dirname(RUNSEAL) + ":" + os.environ["PATH"])
    rc, out, err = run(["ansible-playbook", "-i", "localhost,", pb], env, timeout=300)
    check(rc == 0, f"ansible-playbook rc {rc}: {out[-3000:]} {err[-2000:]}")
    check("WARNING]: runseal" not in out + err, f"plugin warned: {out} {err}")


class FakeTask:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


def fake_ansible_run(d):
    """Ansible's callback API as the plugin sees it, with the commands run as Ansible's
    local connection would: through runseal-sh, in the environment of the main process."""
    sys.path.insert(0, PLUGIN_DIR)
    import runseal as plugin
    old = dict(os.environ)
    os.environ["RUNSEAL_SOCKET"] = d.sock
    try:
        cb = plugin.CallbackModule()
        cb.v2_playbook_on_start(type("PB", (), {"_file_name": "play.yml"})())
        cb.v2_playbook_on_play_start(FakeTask("web play"))
        for name, cmd, ok in [("first task", "echo MARK_task1 && cat /etc/hostname", True),
                              ("second task", "ls /", True), ("failing task", "exit 3", False)]:
            cb.v2_playbook_on_task_start(FakeTask(name), False)
            p = subprocess.run([RUNSEAL_SH, "-c", cmd], env=dict(os.environ, RUNSEAL=RUNSEAL),
                               capture_output=True)
            check((p.returncode == 0) == ok, f"{name}: rc {p.returncode} {p.stderr}")
            if ok:
                cb.v2_runner_on_ok(None)
            else:
                cb.v2_runner_on_failed(None, ignore_errors=True)
        cb.v2_playbook_on_stats(None)
        check(not cb.disabled, "plugin disabled itself")
    finally:
        os.environ.clear()
        os.environ.update(old)


@test
def ansible_callback_a_run_per_play_a_step_per_task():
    d = Daemon()
    try:
        # RUNSEAL_TEST_FAKE_ANSIBLE=1 exercises the fallback where ansible is installed.
        real = (shutil.which("ansible-playbook") is not None and
                not os.environ.get("RUNSEAL_TEST_FAKE_ANSIBLE"))
        if real:
            ansible_playbook_run(d)
        else:
            fake_ansible_run(d)
        d.stop()
        recs = d.records()
        run = one_run(recs, "web play")
        start = by_kind(recs, "run_start", run)[0]
        check(start["trigger"]["given"]["tool"] == "ansible", f"trigger {start['trigger']}")
        steps = [s["step"] for s in by_kind(recs, "step_start", run)]
        check(steps == ["first task", "second task", "failing task"], f"steps {steps}")
        ends = {s["step"]: s["status"] for s in by_kind(recs, "step_end", run)}
        check(ends == {"first task": "ok", "second task": "ok", "failing task": "failed"},
              f"step ends {ends}")
        m = execs_with(recs, "MARK_task1")
        check(m and all(r["run"] == run and r["step"] == "first task" for r in m),
              f"task 1 command attribution {m}")
        ls = [r for r in by_kind(recs, "exec", run) if r.get("path") == "/usr/bin/ls"]
        check(ls and all(r["step"] == "second task" for r in ls), f"ls attribution {ls}")
        check(by_kind(recs, "run_end", run)[0]["status"] == "ok", "play status")
        if not real:
            skip("ansible-playbook is not installed: the plugin ran against a fake "
                 "callback API (its records checked as above)")
    finally:
        d.close()


@test
def runs_belong_to_their_owner():
    d = Daemon()
    try:
        gid = group_gid()
        rc, roots, err = d.rs(["begin", "roots"])
        roots = roots.strip()
        rc, out, err = d.rs(["end", roots], user=NOBODY, groups=[gid])
        check(rc == 1 and "not_owner" in err, f"member ends root's run: {rc} {err}")
        rc, out, err = d.rs(["exec", "--run", roots, "--", "true"], user=NOBODY, groups=[gid])
        check(rc == 125 and "not_owner" in err, f"member joins root's run: {rc} {err}")
        rc, mine, err = d.rs(["begin", "members"], user=NOBODY, groups=[gid])
        mine = mine.strip()
        check(rc == 0, f"member begin: {err}")
        check(d.rs(["exec", "--run", mine, "--", "true"])[0] == 0, "root joins any run")
        check(d.rs(["end", mine], user=NOBODY, groups=[gid])[0] == 0, "member ends its run")
        check(d.rs(["end", roots])[0] == 0, "root ends its run")
        # One user cannot take every run slot: 256 open runs each, root aside.
        flood = ("import json,socket,struct,sys\n"
                 "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                 "def call(**m):\n"
                 "    b=json.dumps(dict(v=1,**m)).encode(); s.sendall(struct.pack('>I',len(b))+b)\n"
                 "    n=struct.unpack('>I',s.recv(4,socket.MSG_WAITALL))[0]\n"
                 "    return json.loads(s.recv(n,socket.MSG_WAITALL))\n"
                 "call(op='hello')\n"
                 "r=[call(op='begin',runbook='f',detached=True) for i in range(257)]\n"
                 "print(sum(x['ok'] for x in r), r[-1].get('error'))\n")
        rc, out, err = run(as_user(["python3", "-c", flood, d.sock], NOBODY, [gid]), d.env)
        check(rc == 0 and out.split() == ["256", "limit"], f"per-user limit: {out} {err}")
        check(d.rs(["exec", "--", "true"])[0] == 0, "root still opens runs")
        d.stop()
        recs = d.records()
        end = by_kind(recs, "run_end", mine)[0]
        check(end["closed_by_uid"] == NOBODY, f"run_end closer {end}")
    finally:
        d.close()


@test
def full_log_disk_fails_closed_and_the_daemon_stays_up():
    tmp = tempfile.mkdtemp(prefix="runseal-daemon-")
    mnt = os.path.join(tmp, "small")
    os.makedirs(mnt)
    d = None
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k,mode=0700", "tmpfs", mnt],
                       check=True)
        d = Daemon(["--log-dir", os.path.join(mnt, "log")], tmp=tmp)
        d.log = os.path.join(mnt, "log")
        rc, out, err = d.rs(["exec", "--", "sh", "-c",
                             "for i in $(seq 600); do cat /etc/hostname; done >/dev/null"],
                            timeout=120)
        deadline = time.monotonic() + 20
        while True:
            st = json.loads(d.rs(["status", "--json"])[1])
            if st["log_failed"]:
                break
            check(time.monotonic() < deadline, f"the full log was not noticed: {st}")
            d.rs(["exec", "--", "ls", "/"])
        marker = os.path.join(tmp, "ran")
        rc, out, err = d.rs(["exec", "--", "touch", marker])
        check(rc == 125 and "log" in err, f"exec with a failed log: rc {rc}: {err}")
        check(not os.path.exists(marker), "a command ran with no log to record it")
        check("cannot write the log" in d.stderr(), f"not said: {d.stderr()[-500:]}")
        check(d.p.poll() is None, "daemon died")
        d.stop()
        rc, out = d.verify()
        bad = [l for l in out.splitlines() if l.startswith("error:") and
               "truncated" not in l and "unsealed" not in l]
        check(not bad, f"what was written does not verify: {out[-800:]}")
    finally:
        if d:
            d.stop(signal.SIGKILL)
        subprocess.run(["umount", mnt], capture_output=True)
        if d:
            d.close()
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@test
def unit_file_verifies():
    if not shutil.which("systemd-analyze"):
        skip("systemd-analyze is not installed")
    tmp = tempfile.mkdtemp(prefix="runseal-unit-")
    try:
        with open(UNIT) as f:
            text = f.read()
        check("/usr/local/bin/runseal daemon" in text, "unit ExecStart")
        unit = os.path.join(tmp, "runseal.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/local/bin/runseal", RUNSEAL))
        p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode()
        check(p.returncode == 0 and not out.strip(), f"systemd-analyze verify: {out}")
        for line in ["CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_CHOWN", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                     "ProtectKernelTunables=yes", "UMask=0077", "Restart=on-failure",
                     "SystemCallFilter=@system-service bpf perf_event_open"]:
            check(line in text.splitlines(), f"unit lacks {line}")
        check("CAP_LINUX_IMMUTABLE" not in text.split("CapabilityBoundingSet=")[1].split("\n")[0],
              "the daemon must not be able to clear append-only flags")
    finally:
        shutil.rmtree(tmp)


@test
def daemon_under_the_units_capability_set_traces():
    d = Daemon(prefix=["setpriv", f"--bounding-set={UNIT_CAPS}", "--inh-caps=-all"])
    try:
        with open(f"/proc/{d.p.pid}/status") as f:
            caps = [line for line in f if line.startswith("CapEff")][0].split()[1]
        # CAP_CHOWN (0), CAP_PERFMON (38), CAP_BPF (39) and nothing else.
        check(int(caps, 16) == (1 << 0) | (1 << 38) | (1 << 39), f"CapEff {caps}")
        rc, out, err = d.rs(["exec", "--runbook", "capped", "--", "cat", "/etc/hostname"])
        check(rc == 0, f"exec: {rc} {err}")
        check(oct(os.stat(d.sock).st_mode & 0o777) == "0o660" and
              os.stat(d.sock).st_gid == group_gid(), "socket owner and mode")
        d.stop()
        recs = d.records()
        run = one_run(recs, "capped")
        cats = [r for r in by_kind(recs, "exec", run) if r.get("path") == "/usr/bin/cat"]
        check(cats, "no exec record under the unit's capabilities")
        check(d.verify()[0] == 0, "verify")
    finally:
        d.close()


# ---- runseal run through the daemon --------------------------------------------------------

BOTH_WAYS = """\
name: both-ways
params:
  token:
    secret: true
steps:
  - name: write
    run: "echo hello {{token}}; cat /etc/hostname > /dev/null; echo oops >&2"
  - name: secret-in-argv
    argv: ["/bin/sh", "-c", "sh -c 'true $0' {{token}}"]
  - name: as-nobody
    run_as: nobody
    argv: ["/usr/bin/id", "-u"]
  - name: slow
    timeout: 0.5
    on_failure: continue
    run: "sleep 5"
  - name: fails
    run: "exit 3"
    on_failure: continue
"""
# Fields that differ between any two runs: times, process and run ids, sequence numbers, and
# what runseal itself cost; given_by is the daemon's own (who gave the run its records).
VARYING = {"time", "run", "seq", "hash", "pid", "ppid", "tid", "child_pid", "runseal_pid",
           "duration_ms", "runseal_cpu_ms", "runseal_maxrss_kb", "given_by"}


def comparable(recs, run):
    """The run's records without what varies, and its events as a multiset per step: the
    exits of a killed tree come in either order."""
    mine = [r for r in recs if r.get("run") == run and r["kind"] != "attach"]
    pids = sorted({r[k] for r in mine for k in ("pid", "ppid", "child_pid", "runseal_pid")
                   if isinstance(r.get(k), int)}, reverse=True)

    def norm(v):
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items() if k not in VARYING and
                    not (k.isdigit() and int(k) in pids)}
        if isinstance(v, list):
            return [norm(x) for x in v if not (isinstance(x, str) and x.isdigit() and
                                               int(x) in pids)]
        if isinstance(v, str):
            v = v.replace(run, "RUN")
            for p in pids:
                v = v.replace(f"/{p}/", "/PID/")
        return v

    frame_kinds = ("run_start", "step_start", "step_end", "run_end")
    frame = [norm(r) for r in mine if r["kind"] in frame_kinds]
    events = {}
    for r in mine:
        if r["kind"] not in frame_kinds:
            events.setdefault(r.get("step_seq", r.get("step")), []).append(
                json.dumps(norm(r), sort_keys=True))
    return frame, {k: sorted(v) for k, v in events.items()}


@test
def run_through_the_daemon_writes_the_records_run_writes_alone():
    d = Daemon()
    try:
        rb = os.path.join(d.tmp, "both.yaml")
        with open(rb, "w") as f:
            f.write(BOTH_WAYS)
        elog = os.path.join(d.tmp, "embedded-log")
        rc_e, out_e, err_e = d.rs(["run", "--no-daemon", "-q", "--log-dir", elog, "--key-dir",
                                   d.keys, "-p", "token=s3cr3tvalue", rb])
        rc_d, out_d, err_d = d.rs(["run", "--daemon", "-q", "-p", "token=s3cr3tvalue", rb])
        check(rc_e == 1 and rc_d == rc_e, f"exit status embedded {rc_e} daemon {rc_d}: {err_d}")
        check(out_d == out_e and "hello s3cr3tvalue" in out_d, f"stdout {out_e!r} {out_d!r}")
        d.stop()
        drecs = d.records()
        p = subprocess.run([RUNSEAL, "show", elog, "--key-dir", d.keys, "--json"],
                           capture_output=True, timeout=120)
        check(p.returncode == 0, f"show embedded: {p.stderr.decode()}")
        erecs = [json.loads(line) for line in p.stdout.decode().splitlines() if line]
        for top in (d.log, elog):
            for dirpath, _, files in os.walk(top):
                for name in files:
                    with open(os.path.join(dirpath, name), "rb") as f:
                        check(b"s3cr3tvalue" not in f.read(), f"secret in {name}")
        drun, erun = one_run(drecs, "both-ways"), one_run(erecs, "both-ways")
        dstart = by_kind(drecs, "run_start", drun)[0]
        check(dstart["given_by"]["uid"] == 0 and dstart["params"]["token"] ==
              "[REDACTED:token]", f"daemon run_start {dstart}")
        dframe, devents = comparable(drecs, drun)
        eframe, eevents = comparable(erecs, erun)
        check(len(dframe) == len(eframe) == 12, f"frames {len(dframe)} {len(eframe)}")
        # The secret is in the argv of the step's processes: the daemon redacts their
        # events with the secret the runner gave it, as runseal run alone does.
        for recs in (drecs, erecs):
            check("s3cr3tvalue" not in json.dumps(recs), "the secret is in the records")
        inner = [r for r in by_kind(drecs, "exec", drun) if r["step"] == "secret-in-argv"
                 and r["argv"][:2] == ["sh", "-c"]]
        check(inner and inner[0]["argv"][3] == "[REDACTED:token]", f"inner sh {inner}")
        for a, b in zip(eframe, dframe):
            diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
            check(not diff, f"{a['kind']} differs (embedded, daemon): {diff}")
        check(devents.keys() == eevents.keys(), f"steps {devents.keys()} {eevents.keys()}")
        for step in eevents:
            check(devents[step] == eevents[step],
                  f"events of step {step} differ: "
                  f"{set(eevents[step]) ^ set(devents[step])}")
        ends = {s["step"]: s for s in by_kind(drecs, "step_end", drun)}
        check(ends["slow"]["status"] == "timeout" and ends["fails"]["exit_code"] == 3,
              f"step ends {ends}")
        nobody = [r for r in by_kind(drecs, "exec", drun) if r["step"] == "as-nobody"]
        check(nobody and nobody[0]["uid"] == NOBODY, f"run_as exec {nobody}")
        check(len(by_kind(drecs, "attach", drun)) == 5, "one attach per step")
        check(d.verify()[0] == 0, "verify failed: " + d.verify()[1])
    finally:
        d.close()


@test
def run_picks_the_daemon_when_one_answers():
    d = Daemon()
    try:
        rb = os.path.join(d.tmp, "auto.yaml")
        with open(rb, "w") as f:
            f.write("name: auto\nsteps:\n  - name: one\n    run: \"true\"\n")
        rc, out, err = d.rs(["run", "-q", rb])  # RUNSEAL_SOCKET names the daemon
        check(rc == 0, f"auto run: {rc} {err}")
        # --lingering kill through the daemon: what the step left running is killed, its
        # exits recorded by the daemon.
        with open(rb, "w") as f:
            f.write("name: linger\nsteps:\n  - name: bg\n"
                    "    run: \"(sleep 30) >/dev/null 2>&1 &\"\n")
        rc, out, err = d.rs(["run", "-q", "--lingering", "kill", rb])
        check(rc == 0, f"--lingering kill through the daemon: {rc} {err}")
        with open(rb, "w") as f:
            f.write("name: auto\nsteps:\n  - name: one\n    run: \"true\"\n")
        rc, out, err = d.rs(["run", "--daemon", "--log-dir", "/tmp/x", rb])
        check(rc == 2 and "--log-dir" in err, f"--daemon with --log-dir: {rc} {err}")
        rc, out, err = d.rs(["run", "--daemon", "--socket", os.path.join(d.tmp, "none"), rb])
        check(rc == 2 and "no runseal daemon" in err, f"--daemon, none: {rc} {err}")
        # A runner killed mid-step: the daemon closes its step and run as abandoned.
        with open(rb, "w") as f:
            f.write("name: killed\nsteps:\n  - name: long\n    run: \"sleep 30\"\n")
        p = subprocess.Popen([RUNSEAL, "run", "-q", rb], env=d.env)
        time.sleep(1.5)
        p.kill()
        p.wait()
        deadline = time.monotonic() + 10
        while json.loads(d.rs(["status", "--json"])[1])["runs_open"] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        d.stop()
        recs = d.records()
        one_run(recs, "auto")
        linger = one_run(recs, "linger")
        lend = by_kind(recs, "run_end", linger)[0]
        check(lend["lingering_policy"] == "kill" and lend["lingering_killed"] >= 1 and
              lend["lingering"] == {}, f"linger run_end {lend}")
        check([r for r in by_kind(recs, "exit", linger) if r["comm"] == "sleep" and
               r["signal"] == 9], "the lingering sleep's exit")
        killed = one_run(recs, "killed")
        for st in by_kind(recs, "step_start", killed):  # the step's own process group
            try:
                os.killpg(st["pid"], signal.SIGKILL)
            except OSError:
                pass
        check(by_kind(recs, "step_end", killed)[0]["status"] == "abandoned",
              f"killed runner's step {by_kind(recs, 'step_end', killed)}")
        # Nobody enforces the runbook with its runner gone: the daemon kills the step, as
        # the runner's guard does on the embedded path, and traces it to its exit.
        rend = by_kind(recs, "run_end", killed)
        check(len(rend) == 1 and rend[0]["status"] == "abandoned" and rend[0]["killed"] >= 1,
              f"killed runner's run_end {rend}")
        sleeps = [r for r in by_kind(recs, "exit", killed) if r["comm"] == "sleep"]
        check(sleeps and sleeps[0]["signal"] == 9, f"the step's sleep was not killed {sleeps}")
        check(d.verify()[0] == 0, "verify failed: " + d.verify()[1])
    finally:
        d.close()


@test
def records_of_a_run_are_checked_by_the_daemon():
    d = Daemon()
    try:
        s = connect(d)
        call(s, op="hello")
        run = call(s, op="begin", runbook="hand", records=True)["run"]
        t = "2026-12-01T23:57:33.288043803Z"
        r = call(s, op="record", run=run, data='{"kind":"step_start","time":"%s","run":"%s",'
                 '"step":"a","step_seq":1}' % (t, run))
        check(r["error"] == "out_of_order", f"step before run_start: {r}")
        r = call(s, op="record", run=run, data='{"kind":"run_start","time":"%s","run":"other"}' % t)
        check(r["error"] == "bad_request", f"another run's id: {r}")
        r = call(s, op="record", run=run, data='{"kind":"exec","time":"%s","run":"%s"}' % (t, run))
        check(r["error"] == "bad_request", f"an event kind: {r}")
        r = call(s, op="record", run=run, data='{"seq":1,"kind":"run_start"}')
        check(r["error"] == "bad_request", f"chain fields: {r}")
        r = call(s, op="record", run=run, data='{"kind":"run_start",\n"time":"x"}')
        check(r["error"] == "bad_request", f"a newline: {r}")
        r = call(s, op="record", run=run,
                 data='{"kind":"run_start","time":"%s","run":"%s"} ' % (t, run))
        check(r["error"] == "bad_request", f"a blank after the object: {r}")
        r = call(s, op="record", run=run, data='{"kind":"run_start","time":"x","run":"%s"}' % run)
        check(r["error"] == "bad_request", f"a bad time: {r}")
        r = call(s, op="record", run=run, data='{"kind":"run_start",'
                 '"time":"2026-12-01T23:57:33.288043803Z",', more=True)
        check(r["ok"], f"first piece: {r}")
        r = call(s, op="record", run=run, data='"run":"%s","runbook_name":"hand"}' % run)
        check(r["ok"], f"last piece: {r}")
        r = call(s, op="step", run=run, name="x")
        check(r["error"] == "out_of_order", f"step op on a records run: {r}")
        r = call(s, op="stats", run=run)
        check(r["ok"] and r["events"] == 0 and r["tracked"] == {}, f"stats {r}")
        s.close()
        # A group member who is not root may not write records.
        p = subprocess.run(as_user([sys.executable, "-c", (
            "import socket,struct,json,sys\n"
            "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
            "def call(**m):\n"
            " b=json.dumps(dict(v=1,**m)).encode();s.sendall(struct.pack('>I',len(b))+b)\n"
            " n=struct.unpack('>I',s.recv(4))[0];return json.loads(s.recv(n))\n"
            "call(op='hello')\n"
            "print(call(op='begin',runbook='x',records=True)['error'])\n"), d.sock],
            NOBODY, [group_gid()]), capture_output=True, timeout=30)
        check(p.stdout.decode().strip() == "denied", f"non-root records: {p.stdout} {p.stderr}")
        d.stop()
        recs = d.records()
        start = by_kind(recs, "run_start", run)
        check(len(start) == 1 and start[0]["given_by"]["uid"] == 0, f"run_start {start}")
        end = by_kind(recs, "run_end", run)
        check(len(end) == 1 and end[0]["status"] == "abandoned", f"client left: {end}")
        check(d.verify()[0] == 0, "verify failed: " + d.verify()[1])
    finally:
        d.close()


@test
def reading_the_log_is_recorded_with_the_readers_identity():
    d = Daemon()
    try:
        check(d.rs(["exec", "--runbook", "readme", "--", "true"])[0] == 0, "exec")
        recs = d.records()
        run = one_run(recs, "readme")
        logs = ["--key-dir", d.keys]
        bundle = os.path.join(d.tmp, "ev.tar.gz")
        for args in (["show", d.log, "--run", run] + logs,
                     ["report", d.log, run, "-o", os.path.join(d.tmp, "r.md")] + logs,
                     ["replay", d.log, run] + logs,
                     ["export", d.log, "--run", run, "--format", "jsonl"] + logs,
                     ["evidence", d.log, run, "-o", bundle] + logs):
            rc, out, err = d.rs(args)
            check(rc == 0, f"{args[0]}: rc {rc}: {err[-500:]}")
            check("not recorded" not in err, f"{args[0]} with a daemon: {err}")
        # A member who is not root: the daemon records the uid the kernel gives, whatever
        # the log's file modes then let the reader see.
        d.rs(["show", d.log, "--run", run] + logs, user=NOBODY, groups=[group_gid()])
        # Someone the socket keeps out is told the read is not recorded.
        rc, out, err = d.rs(["show", d.log, "--run", run] + logs, user=NOBODY)
        check("not recorded" in err, f"outsider's show: {rc} {err}")
        d.stop()
        reads = by_kind(d.records(), "read")
        cmds = [(r["command"], r["uid"]) for r in reads if r["runs"] == [run]]
        want = [("show", 0), ("report", 0), ("replay", 0), ("export", 0), ("evidence", 0),
                ("show", NOBODY)]
        check(cmds == want, f"read records {cmds}")
        for r in reads:
            check(r["log"] == os.path.realpath(d.log) and r["comm"] == "runseal" and
                  r["pid"] > 0 and r["all_runs"] is False, f"read record {r}")
        # Without a daemon the commands still work, and say that the read is not recorded.
        rc, out, err = d.rs(["show", d.log] + logs)
        check(rc == 0 and "not recorded" in err and "no runseal daemon" in err,
              f"show without a daemon: {rc} {err[-300:]}")
        check(d.verify()[0] == 0, "verify failed: " + d.verify()[1])
    finally:
        d.close()


@test
def entry_moved_to_another_run_is_detected_and_undone():
    """A BPF program of a step's own can write the frozen tracked map: moving its entry to
    another run with the same step number must be seen (the shadow is run-aware)."""
    attack = os.path.join(ROOT, "build", "attack")
    if not os.path.exists(attack):
        skip("build/attack is missing (make tests)")
    d = Daemon()
    try:
        ra = d.rs(["begin", "victim"])[1].strip()  # run number 1 of this daemon
        rb = d.rs(["begin", "liar"])[1].strip()    # run number 2
        check(d.rs(["exec", "--run", ra, "--step", "one", "--", "true"])[0] == 0, "exec A")
        marker = os.path.join(d.tmp, "after-move")
        env = dict(d.env, RUNSEAL_ATTACK_OWNER=str(d.p.pid))
        p = subprocess.run([RUNSEAL, "exec", "--run", rb, "--step", "one", "--", attack,
                            "progmove", "1", "1", marker], env=env, capture_output=True,
                           timeout=60)
        check(b"progmove: ok" in p.stdout, f"the program did not move the entry: {p.stdout} "
              f"{p.stderr}")
        for run in (ra, rb):
            check(d.rs(["end", run])[0] == 0, "end")
        d.stop()
        recs = d.records()
        pid = by_kind(recs, "attach", rb)[0]["pid"]
        t = [r for r in by_kind(recs, "loss") if r.get("reason") == "tamper" and
             r.get("tracked_pid") == pid]
        check(len(t) == 1 and t[0]["tracked"] == "rewritten" and t[0]["run"] == rb and
              t[0]["found_run"] == ra and t[0]["expected_step"] == "one", f"loss {t}")
        opens = [r for r in by_kind(recs, "open") if r.get("path") == marker]
        check(opens and all(r["run"] == rb for r in opens), f"marker open {opens}")
        check(d.verify()[0] == 0, "verify failed: " + d.verify()[1])
    finally:
        d.close()


@test
def usage_errors_are_clear():
    rc, out, err = run([RUNSEAL, "daemon", "--group", "no such group!"], os.environ)
    check(rc == 2 and "group" in err, f"bad group flag: {rc} {err}")
    rc, out, err = run([RUNSEAL, "daemon", "--config", "/nonexistent/runseal.conf"], os.environ)
    check(rc == 2 and "/nonexistent/runseal.conf" in err, f"missing config: {rc} {err}")
    rc, out, err = run([RUNSEAL, "exec"], os.environ)
    check(rc == 2 and "usage" in err, f"exec without command: {rc} {err}")
    rc, out, err = run([RUNSEAL, "exec", "--step-seq", "2", "--", "true"], os.environ)
    check(rc == 2 and "--run" in err, f"step-seq alone: {rc} {err}")
    tmp = tempfile.mkdtemp(prefix="runseal-daemon-")
    try:
        rc, out, err = run([RUNSEAL, "exec", "--socket", os.path.join(tmp, "none"), "--",
                            "true"], os.environ)
        check(rc == 125 and "no runseal daemon" in err, f"no daemon: {rc} {err}")
        rc, out, err = run([RUNSEAL, "daemon", "--socket", os.path.join(tmp, "s"),
                            "--group", "nonexistentgroup", "--log-dir",
                            os.path.join(tmp, "log"), "--key-dir", os.path.join(tmp, "k")],
                           os.environ)
        check(rc == 1 and "nonexistentgroup" in err and "does not exist" in err,
              f"unknown group: {rc} {err}")
    finally:
        unflag_tree(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    # A second daemon on a live socket refuses to start.
    d = Daemon()
    try:
        rc, out, err = run([RUNSEAL, "daemon", "--config", d.conf, "--socket", d.sock,
                            "--log-dir", os.path.join(d.tmp, "log2"), "--key-dir", d.keys],
                           os.environ, timeout=30)
        check(rc == 1 and "another daemon listens" in err, f"second daemon: {rc} {err}")
        check(d.rs(["status"])[0] == 0, "first daemon disturbed")
    finally:
        d.close()


def main():
    return run_all("daemon", "BPF, setpriv, other users", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
