#!/usr/bin/env python3
"""Integration tests of `runseal run`, as root, with the real BPF programs.

Each test runs real processes (tests/helpers/actions does exact syscalls) and asserts the
records that users rely on. Prints one line per test and "N passed, M failed" at the end.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNSEAL = os.environ.get("RUNSEAL", os.path.join(ROOT, "runseal"))  # make check-sanitize
ACTIONS = os.path.join(ROOT, "build", "actions")
DEMO = os.path.join(ROOT, "scripts", "demo-service")
HERE = os.path.dirname(os.path.abspath(__file__))
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
STEP_KINDS = {"step_start", "step_end", "exec", "fork", "exit", "open", "connect"}

from harness import Failure, check, run_all, test


SEAL_TMP = tempfile.mkdtemp(prefix="runseal-itest-log-")


def runseal(args, timeout=120, env=None):
    """Runs runseal; returns (rc, stdout, stderr). Runs seal into a log of the test's own."""
    if args[:1] == ["run"]:
        args = ["run", "--log-dir", os.path.join(SEAL_TMP, "log"), "--key-dir",
                os.path.join(SEAL_TMP, "keys")] + args[1:]
    p = subprocess.run([RUNSEAL] + args, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), p.stderr.decode(
        "utf-8", "surrogateescape")


def load(path):
    recs = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise Failure(f"{path}:{n}: not JSON: {e}: {line[:200]!r}")
    return recs


def run_runbook(tmp, yaml_text, params=(), extra=(), name="rb.yaml"):
    rb = os.path.join(tmp, name)
    with open(rb, "w") as f:
        f.write(yaml_text)
    ev = os.path.join(tmp, name + ".jsonl")
    args = ["run", "-q", "--events", ev, rb] + list(extra)
    for p in params:
        args += ["-p", p]
    rc, out, err = runseal(args)
    recs = load(ev) if os.path.exists(ev) else []
    return rc, out, err, recs


def of(recs, kind, step=None, **fields):
    return [r for r in recs if r["kind"] == kind and (step is None or r.get("step") == step)
            and all(r.get(k) == v for k, v in fields.items())]


def one(recs, kind, step=None, **fields):
    found = of(recs, kind, step, **fields)
    check(found, f"no {kind} record for step {step} with {fields}")
    return found[0]


# ---- the capture run: started once, checked by many tests -----------------------------------

class Capture:
    recs = None
    rc = None
    dir = None
    outside_dir = None
    err = ""


def listeners(tmp):
    """Loopback TCP (v4 and v6) and unix listeners that accept and close, in a thread."""
    socks = []
    s4 = socket.socket(socket.AF_INET)
    s4.bind(("127.0.0.1", 0))
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::1", 0))
    su = socket.socket(socket.AF_UNIX)
    su.bind(os.path.join(tmp, "sock"))
    sa = socket.socket(socket.AF_UNIX)
    abstract = f"runseal-test-{os.getpid()}"
    sa.bind("\0" + abstract)
    for s in (s4, s6, su, sa):
        s.listen(64)
        s.settimeout(0.2)
        socks.append(s)
    closed = socket.socket(socket.AF_INET)
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            for s in socks:
                try:
                    c, _ = s.accept()
                    c.close()
                except (socket.timeout, OSError):
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return dict(port=s4.getsockname()[1], port6=s6.getsockname()[1], closed_port=closed_port,
                abstract=abstract), stop, socks


def outside_load(odir, stop, info):
    """Does the same things as the run, outside it, until told to stop."""
    cmds = [["openrel", odir, "sub/rel-target.txt"], ["openfail", odir, "outside-missing"],
            ["create", os.path.join(odir, "outside-created.txt")],
            ["connect", "127.0.0.1", str(info["port"])], ["longargv", "3", "OUTSIDEMARK"]]
    while not stop.is_set():
        for c in cmds:
            subprocess.run([ACTIONS] + c, capture_output=True)


def capture_run():
    if Capture.recs is not None:
        return
    tmp = tempfile.mkdtemp(prefix="runseal-cap-")
    Capture.dir = os.path.realpath(tmp)
    for d in ("sub", "outside/sub"):
        os.makedirs(os.path.join(tmp, d))
    for f in ("sub/rel-target.txt", "sub/dirfd-target.txt", "outside/sub/rel-target.txt"):
        open(os.path.join(tmp, f), "w").close()
    Capture.outside_dir = os.path.join(Capture.dir, "outside")
    info, stop, socks = listeners(tmp)
    ostop = threading.Event()
    ot = threading.Thread(target=outside_load, args=(Capture.outside_dir, ostop, info))
    ot.start()
    try:
        ev = os.path.join(tmp, "events.jsonl")
        args = ["run", "-q", "--events", ev, os.path.join(HERE, "capture.yaml"),
                "-p", f"actions={ACTIONS}", "-p", f"dir={Capture.dir}"]
        for k, v in info.items():
            args += ["-p", f"{k}={v}"]
        Capture.rc, _, Capture.err = runseal(args)
        Capture.recs = load(ev)
    finally:
        ostop.set()
        ot.join()
        stop.set()
        for s in socks:
            s.close()
        shutil.rmtree(tmp, ignore_errors=True)


def cap():
    capture_run()
    return Capture.recs


@test
def capture_run_shape():
    recs = cap()
    check(recs[0]["kind"] == "run_start", "first record is not run_start")
    check(recs[-1]["kind"] == "run_end", "last record is not run_end")
    # The timeout step fails (on_failure: continue), so the run as a whole failed.
    check(recs[-1]["status"] == "failed", f"run_end status {recs[-1]['status']}")
    check(Capture.rc == 1, f"exit status {Capture.rc}, stderr {Capture.err[-500:]}")
    check(recs[-1]["lost"] == 0, "events were lost")
    run = recs[0]["run"]
    for r in recs:
        check(r["run"] == run, f"record of another run: {r}")
        check(TIME_RE.match(r["time"]), f"bad time {r['time']}")
        if r["kind"] in STEP_KINDS:
            for k in ("step", "pid", "uid"):
                check(k in r, f"{r['kind']} record without {k}")
        if r["kind"] in {"exec", "fork", "exit", "open", "connect"}:
            for k in ("ppid", "tid"):
                check(k in r, f"{r['kind']} record without {k}")


@test
def events_stay_inside_their_step():
    recs = cap()
    open_step, seen = None, set()
    for r in recs:
        if r["kind"] == "step_start":
            open_step = r["step"]
        elif r["kind"] == "step_end":
            seen.add(r["step"])
            open_step = None
        elif r["kind"] in {"exec", "open", "connect", "fork"} and r["step"] != "daemon":
            check(r["step"] == open_step, f"{r['kind']} of step {r['step']} outside it: {r}")


@test
def long_argv_is_cut_and_flagged():
    e = one(cap(), "exec", "longargv", filename="/bin/true")
    check(e["argv_truncated"] is True, "argv_truncated is not true")
    check(e["argc"] == 61, f"argc {e['argc']}")
    check(e["argv_bytes"] > 6000, f"argv_bytes {e['argv_bytes']}")
    kept = sum(len(a.encode()) + 1 for a in e["argv"])
    check(4000 <= kept <= 4097, f"{kept} argv bytes kept")
    check(e["argv"][1].startswith("LONGMARK-0-"), f"argv[1] {e['argv'][1][:20]}")
    check(e["ret"] == 0 and e["cwd"], "exec without ret 0 or cwd")


@test
def open_relative_path():
    o = one(cap(), "open", "openrel", path_arg="sub/rel-target.txt")
    check(o["path"] == f"{Capture.dir}/sub/rel-target.txt", f"path {o['path']}")
    check(o["ret"] >= 0 and o["fd"] == o["ret"], "not a success")
    check(o["flags"] == ["read"], f"flags {o['flags']}")


@test
def open_through_dirfd():
    o = one(cap(), "open", "opendirfd", path_arg="dirfd-target.txt")
    check(o["path"] == f"{Capture.dir}/sub/dirfd-target.txt", f"path {o['path']}")
    check(o["dirfd"] >= 0, "no dirfd")


@test
def failed_open_resolved_from_cwd():
    o = one(cap(), "open", "openfail", path_arg="missing-rel.txt")
    check(o["ret"] == -2 and o["error"] == "ENOENT", f"ret {o['ret']} {o.get('error')}")
    check(o["path"] == f"{Capture.dir}/missing-rel.txt", f"path {o['path']}")


@test
def failed_open_resolved_from_dirfd():
    o = one(cap(), "open", "openfaildirfd", path_arg="missing-dirfd.txt")
    check(o["error"] == "ENOENT", f"error {o.get('error')}")
    check(o["path"] == f"{Capture.dir}/sub/missing-dirfd.txt", f"path {o['path']}")


@test
def open_for_write_with_create():
    o = one(cap(), "open", "create", path=f"{Capture.dir}/created.txt")
    for f in ("write", "create", "truncate"):
        check(f in o["flags"], f"flag {f} missing from {o['flags']}")
    check("read" not in o["flags"], "write-only open shown as read")
    check(o["mode"] == "0640", f"mode {o.get('mode')}")


@test
def openat2_is_captured():
    o = one(cap(), "open", "openat2", syscall="openat2")
    check(o["path"] == f"{Capture.dir}/sub/dirfd-target.txt", f"path {o['path']}")


@test
def connect_to_listening_port():
    c = one(cap(), "connect", "connect-open", family="inet")
    check(c["addr"] == "127.0.0.1" and c["ret"] == 0, f"{c}")


@test
def connect_to_closed_port():
    c = one(cap(), "connect", "connect-closed", family="inet")
    check(c["ret"] == -111 and c["error"] == "ECONNREFUSED", f"{c}")


@test
def nonblocking_connect_in_progress():
    c = one(cap(), "connect", "connect-nb", family="inet")
    check(c["error"] == "EINPROGRESS" or c["ret"] == 0, f"{c}")


@test
def connect_inet6():
    c = one(cap(), "connect", "connect6", family="inet6")
    check(c["addr"] == "::1" and c["ret"] == 0, f"{c}")


@test
def connect_unix_path_and_abstract():
    c = one(cap(), "connect", "unix", family="unix")
    check(c["path"] == f"{Capture.dir}/sock" and not c["abstract"] and c["ret"] == 0, f"{c}")
    a = one(cap(), "connect", "unix-abstract", family="unix")
    check(a["abstract"] and a["path"] == f"@runseal-test-{os.getpid()}", f"{a}")
    check(a["ret"] == 0, f"{a}")


@test
def double_forked_daemon_stays_attributed():
    recs = cap()
    start = one(recs, "step_start", "daemon")
    o = one(recs, "open", path=f"{Capture.dir}/daemon-out.txt")
    check(o["step"] == "daemon", f"daemon's open attributed to {o['step']}")
    check(o["pid"] != start["pid"], "open made by the step's own process, not the daemon")
    # Its parent exited first: the record must come after the daemon step's main exit.
    forks = of(recs, "fork", "daemon")
    check(len(forks) >= 2, f"{len(forks)} fork records for the double fork")
    check(any(f["child_pid"] == o["pid"] for f in forks), "no fork record for the daemon")


@test
def thread_open_is_attributed():
    o = one(cap(), "open", "thread", path=f"{Capture.dir}/thread-out.txt")
    check(o["tid"] != o["pid"], "open not made from a second thread")


@test
def exec_from_non_leader_thread():
    e = [r for r in of(cap(), "exec", "threadexec") if "threadexec-marker" in r["argv"]]
    check(e, "no exec record of the thread's exec")
    check(e[0]["ret"] == 0 and e[0]["filename"] == "/bin/true", f"{e[0]}")


@test
def failed_execs_are_records():
    recs = of(cap(), "exec", "missingexec")
    miss = [r for r in recs if r["filename"] == "/nonexistent/runseal-missing-binary"]
    check(miss and miss[0]["ret"] == -2 and miss[0]["error"] == "ENOENT", f"{miss}")
    check(miss[0]["argv"][:1] == ["/nonexistent/runseal-missing-binary"], f"{miss[0]['argv']}")
    check(any(r.get("error") == "EACCES" for r in recs), "no EACCES exec record")


@test
def interpreted_script_exec():
    e = one(cap(), "exec", "script", filename=f"{Capture.dir}/script.sh")
    check(e["ret"] == 0 and e["path"] == "/usr/bin/dash" or e["path"].endswith("sh"),
          f"script exec resolved to {e.get('path')}")


@test
def timeout_kills_the_whole_tree():
    recs = cap()
    end = one(recs, "step_end", "timeout")
    check(end["status"] == "timeout", f"status {end['status']}")
    check(end["duration_ms"] < 10000, f"took {end['duration_ms']} ms")
    killed = [r for r in of(recs, "exit", "timeout") if r["signal"] == 9]
    check(len(killed) >= 2, f"{len(killed)} processes killed, expected the step and its child")
    check(one(recs, "step_end", "after-timeout")["status"] == "ok", "run did not continue")


@test
def exit_records_carry_codes():
    e = of(cap(), "exit", "openrel")
    check(e and e[-1]["exit_code"] == 0 and e[-1]["signal"] is None, f"{e}")


@test
def nothing_from_outside_the_run():
    recs = cap()
    for r in recs:
        blob = json.dumps(r)
        check("outside" not in blob and "OUTSIDEMARK" not in blob,
              f"record of a process outside the run: {blob[:300]}")


# ---- other runs ----------------------------------------------------------------------------

SECRET = "hunter2-Sup3r-s3cret"


@test
def secrets_never_reach_a_record():
    tmp = tempfile.mkdtemp(prefix="runseal-sec-")
    try:
        pf = os.path.join(tmp, "token")
        with open(pf, "w") as f:
            f.write(SECRET + "\n")
        rb = f"""name: secrets
params:
  token: {{required: true, secret: true}}
steps:
  - name: leak-everywhere
    run: echo "out {{{{token}}}}"; echo "err {{{{token}}}}" >&2; /bin/echo "{{{{token}}}}"; cat "{tmp}/{{{{token}}}}" 2>/dev/null; true
    env: {{API_TOKEN: "{{{{token}}}}", PLAIN: "x{{{{token}}}}y", MY_PASSWORD: hidden-by-name}}
  - name: argv-leak
    argv: [/bin/echo, "--token={{{{token}}}}"]
"""
        with open(os.path.join(tmp, "rb.yaml"), "w") as f:
            f.write(rb)
        ev = os.path.join(tmp, "ev.jsonl")
        rc, out, err = runseal(["run", "-q", "--events", ev, "-P", f"token={pf}",
                                os.path.join(tmp, "rb.yaml")])
        check(rc == 0, f"rc {rc}: {err[-400:]}")
        text = open(ev).read()
        check(SECRET not in text, "secret value in the events file")
        check("[REDACTED:token]" in text, "no redaction marker")
        check("hidden-by-name" not in text, "env value matching a secret name pattern logged")
        recs = load(ev)
        end = one(recs, "step_end", "leak-everywhere")
        check(end["stdout_tail"].startswith("out [REDACTED:token]"), end["stdout_tail"])
        check(oct(os.stat(ev).st_mode & 0o777) == "0o600", "events file not 0600")
        ex = one(recs, "exec", "argv-leak", filename="/bin/echo")
        check(ex["argv"][1] == "--token=[REDACTED:token]", f"{ex['argv']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


ENC_SECRET = "p@ss w/rd>>?-Sup3r"


def secret_encodings(v):
    """The forms of v a step may print: alone, and the base64 characters only v's bits fix
    when it starts at byte 1 or 2 of a longer stream."""
    import base64
    import urllib.parse as up
    b = v.encode()
    forms = {base64.b64encode(b).decode(), base64.urlsafe_b64encode(b).decode(),
             b.hex(), b.hex().upper(), up.quote(v), up.quote(v, safe=""), up.quote_plus(v),
             re.sub("%..", lambda m: m.group(0).lower(), up.quote(v, safe=""))}
    for k in (1, 2):
        e = base64.b64encode(b"A" * k + b + b"xyz").decode()
        forms.add(e[(8 * k + 5) // 6:8 * (k + len(b)) // 6])
    return {f.rstrip("=") for f in forms}


def sealed_texts():
    """Every entry of the shared sealed log, JSON-decoded and re-encoded without escapes."""
    import zlib
    log = os.path.join(SEAL_TMP, "log")
    for f in sorted(os.listdir(log)):
        if not f.startswith("seg-"):
            continue
        data = open(os.path.join(log, f), "rb").read()
        if f.endswith(".z"):
            data = zlib.decompress(data)
        for line in data.splitlines():
            yield json.dumps(json.loads(line), ensure_ascii=False)


@test
def secret_encodings_never_reach_a_record():
    """A step prints the secret as base64 (alone and inside longer streams), base64url, hex
    in both cases and URL-encoded, on stdout and stderr and in an argv: no record has any."""
    import base64
    tmp = tempfile.mkdtemp(prefix="runseal-enc-")
    try:
        pf = os.path.join(tmp, "token")
        with open(pf, "w") as f:
            f.write(ENC_SECRET + "\n")
        b64 = base64.b64encode(ENC_SECRET.encode()).decode()
        rb = f"""name: encodings
params:
  token: {{required: true, secret: true}}
steps:
  - name: encode
    run: |
      t="{{{{token}}}}"
      for out in 1 2; do
        {{
          printf '%s' "$t" | base64 -w0; echo
          printf '%s' "$t" | basenc --base64url -w0; echo
          printf '%s' "$t" | od -An -tx1 | tr -d ' \\n'; echo
          printf '%s' "$t" | od -An -tx1 | tr -d ' \\n' | tr a-f A-F; echo
          for p in A AA; do printf '%s%s%s' "$p" "$t" xyz | base64 -w0; echo; done
          /usr/bin/python3 -c 'import re, sys, urllib.parse as u; t = sys.argv[1]; print(u.quote(t), u.quote(t, safe=""), u.quote_plus(t), re.sub("%..", lambda m: m.group(0).lower(), u.quote(t, safe="")))' "$t"
        }} >&$out
      done
  - name: argv
    argv: [/bin/echo, "Authorization: Basic {b64}"]
"""
        with open(os.path.join(tmp, "rb.yaml"), "w") as f:
            f.write(rb)
        ev = os.path.join(tmp, "ev.jsonl")
        rc, out, err = runseal(["run", "-q", "--events", ev, "-P", f"token={pf}",
                                os.path.join(tmp, "rb.yaml")])
        check(rc == 0, f"rc {rc}: {err[-400:]}")
        recs = load(ev)
        end = one(recs, "step_end", "encode")
        check(end["stdout_bytes"] > 200 and end["stderr_bytes"] > 200, "the step printed little")
        check(end["stdout_tail"].count("[REDACTED:token]") >= 8, end["stdout_tail"])
        texts = [json.dumps(r, ensure_ascii=False) for r in recs]
        sealed = list(sealed_texts())
        check(any("[REDACTED:token]" in t and "stdout_tail" in t for t in sealed),
              "the sealed log has no redacted tail of this run")
        for form in secret_encodings(ENC_SECRET) | {ENC_SECRET}:
            for where, ts in (("--events", texts), ("the sealed log", sealed)):
                leaked = [t for t in ts if form in t]
                check(not leaked, f"{form!r} in {where}: {leaked[:1]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def invalid_runbook_refused_before_anything_runs():
    tmp = tempfile.mkdtemp(prefix="runseal-bad-")
    try:
        marker = os.path.join(tmp, "ran")
        rc, out, err, recs = run_runbook(tmp, f"""name: bad
steps:
  - name: a
    run: touch {marker}
  - name: b
    run: true
    tiemout: 3
""")
        check(rc == 2, f"rc {rc}")
        check(re.search(r"rb\.yaml:7: .*tiemout", err), f"stderr {err!r}")
        check(not os.path.exists(marker), "a step ran")
        check(not recs, "records written for a refused runbook")
        rc, out, err, recs = run_runbook(tmp, "name: p\nparams:\n  n: {type: int}\n"
                                         "steps:\n  - name: a\n    run: true\n",
                                         params=["n=12x"])
        check(rc == 2 and 'param "n"' in err, f"rc {rc} {err!r}")
        rc, out, err = runseal(["run", "-q", os.path.join(tmp, "missing.yaml")])
        check(rc == 2 and "missing.yaml" in err, f"rc {rc} {err!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def hostile_runbooks_refused_fast():
    """Each refused at load with file:line, in well under a second, before any step runs."""
    tmp = tempfile.mkdtemp(prefix="runseal-hostile-")
    try:
        marker = os.path.join(tmp, "ran")
        first = f"  - name: first\n    run: touch {marker}\n"
        cases = {
            "timeout": ("name: t\nsteps:\n" + first + "  - name: b\n    run: true\n"
                        "    timeout: 2e16\n", 7, "must be at most 31536000 seconds"),
            "deep": ("name: d\nsteps:\n" + first + "  - name: b\n    run: true\n    env: " +
                     "[" * 100000 + "]" * 100000 + "\n", 7, "nested deeper than 16 levels"),
            "aliases": ("a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a]\n"
                        "name: a\nsteps:\n" + first, 2, "aliases are not supported"),
            "name": ("name: " + "n" * 1000000 + "\nsteps:\n" + first, 1,
                     "invalid runbook name"),
            "tag": ("name: t\nsteps:\n" + first + "  - name: b\n    run: !vault true\n", 6,
                    "YAML tags are not supported"),
            "run_as": ("name: u\nsteps:\n" + first + "  - name: b\n    run: true\n"
                       "    run_as: no-such-user-rs\n", 7, "no user \"no-such-user-rs\""),
        }
        for name, (yaml_text, line, want) in cases.items():
            start = time.monotonic()
            rc, out, err, recs = run_runbook(tmp, yaml_text, name=f"{name}.yaml")
            secs = time.monotonic() - start
            check(rc == 2, f"{name}: rc {rc}: {err[-300:]}")
            check(f"{name}.yaml:{line}: " in err and want in err, f"{name}: {err[-300:]!r}")
            check(len(err) < 1000, f"{name}: {len(err)} bytes of error")
            check(secs < 2, f"{name}: refused after {secs:.1f} s")
            check(not os.path.exists(marker), f"{name}: a step ran")
            check(not recs, f"{name}: records written")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def rollback_runs_after_a_failure():
    tmp = tempfile.mkdtemp(prefix="runseal-rb-")
    try:
        rc, out, err, recs = run_runbook(tmp, """name: rb
steps:
  - name: ok1
    run: "true"
  - name: breaks
    run: exit 7
    on_failure: rollback
  - name: never
    run: "true"
rollback:
  - name: undo
    run: echo undone
""")
        check(rc == 1, f"rc {rc}")
        steps = [r["step"] for r in recs if r["kind"] == "step_end"]
        check(steps == ["ok1", "breaks", "undo"], f"steps {steps}")
        check(one(recs, "step_end", "breaks")["exit_code"] == 7, "exit code not 7")
        check(recs[-1]["status"] == "failed", "run not failed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def retries_until_success():
    tmp = tempfile.mkdtemp(prefix="runseal-retry-")
    try:
        rc, out, err, recs = run_runbook(tmp, f"""name: retry
steps:
  - name: flaky
    run: n=$(cat {tmp}/n 2>/dev/null || echo 0); echo $((n+1)) > {tmp}/n; [ $n -ge 2 ]
    retries: 3
    retry_delay: 0.1
""")
        check(rc == 0, f"rc {rc} {err}")
        ends = of(recs, "step_end", "flaky")
        check([e["attempt"] for e in ends] == [1, 2, 3], f"{[e['attempt'] for e in ends]}")
        check([e["status"] for e in ends] == ["failed", "failed", "ok"], "statuses")
        check(recs[-1]["status"] == "ok", "run not ok")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def overload_is_recorded_as_loss():
    tmp = tempfile.mkdtemp(prefix="runseal-loss-")
    try:
        storm = f"""name: storm
steps:
  - name: storm
    run: |
      python3 -c 'import os
      for i in range(30000): os.close(os.open("/etc/hostname", os.O_RDONLY))'
"""
        rc, out, err, recs = run_runbook(tmp, storm, extra=["--ringbuf-size", "4096"])
        loss = of(recs, "loss")
        check(loss, "no loss record with a 4 KiB ring buffer")
        total = sum(r["count"] for r in loss)
        check(total == sum(sum(r["kinds"].values()) for r in loss), "kinds do not add up")
        check(recs[-1]["status"] == "incomplete" and recs[-1]["lost"] == total, f"{recs[-1]}")
        check(rc == 0, f"rc {rc} without --strict")
        rc, out, err, recs = run_runbook(tmp, storm, extra=["--ringbuf-size", "4096", "--strict"])
        check(rc == 3, f"rc {rc} with --strict")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def events_to_stdout_stay_clean():
    tmp = tempfile.mkdtemp(prefix="runseal-out-")
    try:
        rb = os.path.join(tmp, "rb.yaml")
        with open(rb, "w") as f:
            f.write("name: o\nsteps:\n  - name: talk\n    run: echo chatter\n")
        rc, out, err = runseal(["run", "--events", "-", rb])
        check(rc == 0, f"rc {rc}")
        kinds = [json.loads(line)["kind"] for line in out.splitlines()]
        check(kinds[0] == "run_start" and kinds[-1] == "run_end", f"{kinds}")
        check("chatter" in err, "step output not passed through to stderr")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def run_as_drops_privileges():
    tmp = tempfile.mkdtemp(prefix="runseal-user-")
    try:
        rc, out, err, recs = run_runbook(tmp, """name: u
steps:
  - name: as-nobody
    run_as: nobody
    argv: [/usr/bin/id, -u]
""")
        check(rc == 0, f"rc {rc} {err}")
        e = one(recs, "exec", "as-nobody", filename="/usr/bin/id")
        check(e["uid"] == 65534 and e["euid"] == 65534, f"uid {e['uid']}")
        check(one(recs, "step_end", "as-nobody")["stdout_tail"] == "65534\n", "id output")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def hostile_file_names_stay_valid_json():
    tmp = tempfile.mkdtemp(prefix="runseal-names-")
    try:
        bad = os.path.join(tmp.encode(), b'q"\\\n\x01\xff\xfe-\xe2\x82')
        with open(bad, "wb"):
            pass
        rb = f"""name: n
steps:
  - name: hostile
    run: for f in {tmp}/q*; do cat "$f"; done
"""
        rc, out, err, recs = run_runbook(tmp, rb)
        check(rc == 0, f"rc {rc} {err}")
        opens = [r for r in of(recs, "open", "hostile") if r["path"].startswith(tmp + "/q")]
        check(opens, "no open record of the hostile name")
        raw = opens[0]["path"].encode("utf-8", "surrogateescape")
        check(raw == bad, f"bytes not recovered: {raw!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def example_runbooks_run_clean():
    for rb, params in (("restart-service.yaml", ["service=rs-itest"]),
                       ("rotate-credential.yaml", ["service=rs-itest"]),
                       ("deploy-patch.yaml", [])):
        tmp = tempfile.mkdtemp(prefix="runseal-ex-")
        try:
            # Steps get a clean environment, so the service's state is in the default
            # place; a free port keeps it clear of a demo the user may have running.
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            subprocess.run([DEMO, "start", "rs-itest", "--port", str(port)], check=True,
                           capture_output=True)
            ev = os.path.join(tmp, "ev.jsonl")
            args = ["run", "-q", "--events", ev, os.path.join(ROOT, "runbooks", rb)]
            for p in params:
                args += ["-p", p]
            rc, out, err = runseal(args)
            recs = load(ev)
            check(rc == 0 and recs[-1]["status"] == "ok", f"{rb}: rc {rc} {err[-600:]}")
            check(of(recs, "exec"), f"{rb}: no exec records")
        finally:
            subprocess.run([DEMO, "stop", "rs-itest"], capture_output=True)
            shutil.rmtree("/tmp/runseal-demo/rs-itest", ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)


@test
def all_runs_sealed_and_verified():
    """Every run of the tests above sealed into one log: it must verify as a whole."""
    rc = subprocess.run([RUNSEAL, "verify", os.path.join(SEAL_TMP, "log"), "--key-dir",
                         os.path.join(SEAL_TMP, "keys"), "-q"]).returncode
    check(rc == 0, f"verify rc {rc}")


def main():
    try:
        return run_all("integration", "they load BPF programs", sys.argv[1:])
    finally:
        subprocess.run(["chattr", "-R", "-i", "-a", SEAL_TMP], capture_output=True)
        shutil.rmtree(SEAL_TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
