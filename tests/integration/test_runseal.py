#!/usr/bin/env python3
"""Integration tests of `runseal run`, as root, with the real BPF programs.

Each test runs real processes (tests/helpers/actions does exact syscalls) and asserts the
records that users rely on. Prints one line per test and "N passed, M failed" at the end.
"""
import json
import os
import re
import select
import shutil
import signal
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
KERNEL_KINDS = {"exec", "fork", "exit", "open", "connect", "rename", "unlink", "chmod", "chown",
                "link", "symlink", "truncate", "mount", "umount", "cred", "listen", "accept",
                "compat_syscall", "pidfd_getfd", "io_uring_result", "mkdir", "mknod", "xattr",
                "utimes", "chroot", "namespace"}
STEP_KINDS = {"step_start", "step_end"} | KERNEL_KINDS

from harness import Failure, check, pids_with, run_all, test


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
    disk = {}
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
    s4b = socket.socket(socket.AF_INET)
    s4b.bind(("127.0.0.1", 0))
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::1", 0))
    su = socket.socket(socket.AF_UNIX)
    su.bind(os.path.join(tmp, "sock"))
    sa = socket.socket(socket.AF_UNIX)
    abstract = f"runseal-test-{os.getpid()}"
    sa.bind("\0" + abstract)
    for s in (s4, s4b, s6, su, sa):
        s.listen(64)
        s.settimeout(0.2)
        socks.append(s)
    udp = []
    for _ in range(6):  # three for the run, one for the load outside it, two for the race
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.setblocking(False)
        udp.append(u)
    u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u6.bind(("::1", 0))
    u6.setblocking(False)
    udp.append(u6)
    Capture.udp = udp
    Capture.udp_outside = udp[3].getsockname()[1]
    closed = socket.socket(socket.AF_INET)
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                ready, _, _ = select.select(socks, [], [], 0.2)
            except (OSError, ValueError):  # closed under us at the end
                return
            for s in ready:
                try:
                    c, _ = s.accept()
                    c.close()
                except (socket.timeout, OSError):
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return dict(port=s4.getsockname()[1], port2=s4b.getsockname()[1],
                port6=s6.getsockname()[1], closed_port=closed_port,
                udp1=udp[0].getsockname()[1], udp2=udp[1].getsockname()[1],
                udp3=udp[2].getsockname()[1], udp4=udp[4].getsockname()[1],
                udp5=udp[5].getsockname()[1], udp6=udp[6].getsockname()[1],
                abstract=abstract), stop, socks


def outside_load(odir, stop, info):
    """Does the same things as the run, outside it, until told to stop."""
    cmds = [["openrel", odir, "sub/rel-target.txt"], ["openfail", odir, "outside-missing"],
            ["create", os.path.join(odir, "outside-created.txt")],
            ["connect", "127.0.0.1", str(info["port"])], ["longargv", "3", "OUTSIDEMARK"],
            ["rename", os.path.join(odir, "sub"), "outside-renamed"],
            ["unlink", os.path.join(odir, "sub"), "outside-doomed"],
            ["chmod", os.path.join(odir, "chmod-target"), "4755"],
            ["tmpfile", os.path.join(odir, "sub"), "outside-tmpfile"],
            ["mount", os.path.join(odir, "mnt")],
            ["int80", os.path.join(odir, "sub/rel-target.txt")],
            ["byhandle", os.path.join(odir, "sub/rel-target.txt")],
            ["getfd", str(os.getpid()), str(Capture.outside_fd)],
            ["uring", odir, "sub/rel-target.txt", "127.0.0.1", str(info["port"]),
             str(Capture.udp_outside)],
            ["chown", os.path.join(odir, "chmod-target"), "4242", "4343"],
            ["link", os.path.join(odir, "link-src"), os.path.join(odir, "outside-link")],
            ["truncate", os.path.join(odir, "chmod-target"), "0"],
            ["listen"], ["privdrop"], ["fastopen", "127.0.0.1", str(info["port"])],
            ["udpserve"], ["mmsg", "127.0.0.1", "1", "12"],
            ["xattr", os.path.join(odir, "outside-xattr")],
            ["utimes", os.path.join(odir, "outside-xattr")], ["chroot", odir], ["unshare"],
            ["memfdexec"],
            ["udp", "127.0.0.1"] + [str(Capture.udp[3].getsockname()[1])] * 3]
    n = 0
    while not stop.is_set():
        n += 1
        for c in cmds:
            if c[0] == "link":
                for p in (c[2], c[2] + ".sym"):
                    if os.path.lexists(p):
                        os.unlink(p)
            if c[0] in ("tmpfile", "mount"):  # names and mount points must be new each time
                c = c[:1] + [x.replace("outside-tmpfile", f"outside-tmpfile{n}") for x in c[1:]]
                if c[0] == "mount":
                    c = [c[0], os.path.join(odir, f"mnt{n}")]
                    os.makedirs(c[1], exist_ok=True)
            subprocess.run([ACTIONS] + c, capture_output=True)


def drain_udp(u):
    n = 0
    while True:
        try:
            u.recv(64)
            n += 1
        except BlockingIOError:
            return n


def disk_state(d):
    """What the file-change steps left on disk, taken before the directory is removed."""
    st = {}
    for name in ("sub/renamed.conf", "sub/ra2-new", "sub/ra2-old", "sub/doomed", "sub/doomed.d",
                 "chmod-target", "chown-target", "link-src", "link-new", "link-new.sym",
                 "sub/from-tmpfile", "sub/from-tmpfile-proc", "trunc-target", "mk/newdir",
                 "mk/newdir2", "mk/fifo", "mk/null2", "u-dir2", "u-sym", "u-link", "xattr-target"):
        p = os.path.join(d, name)
        st[name] = os.lstat(p) if os.path.lexists(p) else None
    st["link-new.sym -> "] = os.readlink(os.path.join(d, "link-new.sym")) \
        if st["link-new.sym"] else None
    with open(os.path.join(d, "sub/renamed.conf")) as f:
        st["renamed.conf content"] = f.read()
    with open(os.path.join(d, "race.out")) as f:
        st["race ports"] = [int(x) for x in f.read().split()]
    with open("/proc/self/mountinfo") as f:
        st["mounts left"] = [l for l in f if d + "/mnt" in l or d + "/det" in l]
    return st


def capture_run():
    if Capture.recs is not None:
        return
    tmp = tempfile.mkdtemp(prefix="runseal-cap-")
    Capture.dir = os.path.realpath(tmp)
    for d in ("sub", "outside/sub"):
        os.makedirs(os.path.join(tmp, d))
    for d in ("mnt", "outside/mnt", "det", "chr/jail", "mk"):
        os.makedirs(os.path.join(tmp, d))
    for f in ("sub/rel-target.txt", "sub/dirfd-target.txt", "outside/sub/rel-target.txt",
              "chmod-target", "chown-target", "link-src", "outside/link-src",
              "outside/chmod-target", "chr/beyond-jail"):
        open(os.path.join(tmp, f), "w").close()
    with open(os.path.join(tmp, "trunc-target"), "w") as f:
        f.write("0123456789")
    Capture.outside_dir = os.path.join(Capture.dir, "outside")
    info, stop, socks = listeners(tmp)
    # What a step steals with pidfd_getfd: descriptors of this test process, outside the run.
    victim_file = open(os.path.join(tmp, "victim-secret"), "w")
    victim_sock = socket.create_connection(("127.0.0.1", info["port"]))
    info.update(victim_pid=os.getpid(), victim_file_fd=victim_file.fileno(),
                victim_sock_fd=victim_sock.fileno())
    Capture.victim = (os.fstat(victim_file.fileno()).st_ino, victim_sock.getsockname()[1])
    outside_victim = open(os.path.join(Capture.outside_dir, "outside-victim"), "w")
    Capture.outside_fd = outside_victim.fileno()
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
        Capture.disk = disk_state(Capture.dir)
        Capture.info = info
        Capture.race_got = {}
        for u in Capture.udp[4:6]:
            port = u.getsockname()[1]
            while True:
                try:
                    Capture.race_got[int(u.recv(64))] = port
                except BlockingIOError:
                    break
        Capture.udp_got = [drain_udp(u) for u in Capture.udp]
    finally:
        ostop.set()
        ot.join()
        stop.set()
        for s in socks + Capture.udp:
            s.close()
        victim_file.close()
        outside_victim.close()
        victim_sock.close()
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
        if r["kind"] in KERNEL_KINDS:
            for k in ("ppid", "tid", "euid", "gid", "comm"):
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
        elif r["kind"] in KERNEL_KINDS - {"exit"} and r["step"] != "daemon":
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
def connect_destination_survives_a_racing_thread():
    """A second thread flips the sockaddr's port during each connect: the record must name
    the port the socket really reached (getpeername), never the one left in memory."""
    recs = cap()
    end = one(recs, "step_end", "connect-race")
    check(end["status"] == "ok", f"step failed: {end.get('stderr_tail')}")
    reached = Capture.disk["race ports"]
    got = [r for r in of(recs, "connect", "connect-race") if r["family"] == "inet"]
    n = len(reached)
    check(n and len(got) == n, f"{n} connects, {len(got)} records")
    wrong = [(r["port"], p) for r, p in zip(got, reached) if r["port"] != p]
    check(not wrong, f"{len(wrong)} of {n} records name the wrong port: {wrong[:5]}")
    check(all(r["addr_source"] == "socket" and r["ret"] == 0 for r in got), "not from the socket")
    ports = {Capture.info["port"], Capture.info["port2"]}
    check(set(reached) == ports, f"the race never hit: ports reached {set(reached)}")
    # Where memory and socket disagreed the caller's copy is kept, and only there.
    raced = [r for r in got if "addr_arg" in r]
    check(raced, "no connect saw its sockaddr rewritten: the test did not race")
    check(all(r["addr_arg"] != f"127.0.0.1:{r['port']}" for r in raced), f"{raced[:3]}")


@test
def udp_destinations_once_per_process():
    step_ok("udp")
    check(Capture.udp_got[:3] == [6, 3, 2], f"datagrams received {Capture.udp_got}")
    check(Capture.udp_got[3] > 0, "the load outside the run sent nothing")
    info = Capture.info
    got = [(r["via"], r["port"]) for r in of(cap(), "connect", "udp")]
    check(got == [("sendto", info["udp1"]), ("sendmsg", info["udp2"]),
                  ("sendmmsg", info["udp3"])], f"records {got}")
    for r in of(cap(), "connect", "udp"):
        check(r["addr"] == "127.0.0.1" and r["sock_type"] == "dgram" and r["ret"] == 5 or
              r["via"] == "sendmmsg", f"{r}")
        # sendto and sendmsg: the destination the kernel routed; sendmmsg: the caller's
        check(r["addr_source"] == ("argument" if r["via"] == "sendmmsg" else "route"), f"{r}")
    check(not [r for r in cap() if r.get("port") == Capture.udp_outside],
          "a record of the outside load")


@test
def udp_destination_survives_a_racing_thread():
    """200 processes each send one datagram (their pid) from a sockaddr a thread keeps
    flipping: each record must name the port its own datagram reached."""
    step_ok("udprace")
    got = Capture.race_got
    recs = of(cap(), "connect", "udprace", via="sendto")
    check(len(got) == 200 and len(recs) == 200, f"{len(got)} datagrams, {len(recs)} records")
    wrong = [(r["pid"], r["port"], got.get(r["pid"])) for r in recs if r["port"] != got.get(r["pid"])]
    check(not wrong, f"{len(wrong)} of 200 records name the wrong port: {wrong[:5]}")
    check(all(r["addr_source"] == "route" for r in recs), "not from the route lookup")
    check(set(got.values()) == {Capture.info["udp4"], Capture.info["udp5"]},
          f"the race never hit: ports {set(got.values())}")


@test
def udp6_destination_from_the_route():
    step_ok("udp6")
    check(Capture.udp_got[6] == 1, f"datagrams received {Capture.udp_got}")
    r = one(cap(), "connect", "udp6", via="sendto")
    check(r["family"] == "inet6" and r["addr"] == "::1" and r["port"] == Capture.info["udp6"],
          f"{r}")
    check(r["addr_source"] == "route" and r["ret"] == 6, f"{r}")


@test
def tcp_fast_open_is_a_connect():
    step_ok("fastopen")
    c = one(cap(), "connect", "fastopen", via="fastopen")
    check(c["port"] == Capture.info["port"] and c["addr"] == "127.0.0.1", f"{c}")
    check(c["addr_source"] == "socket" and c["ret"] == 3, f"{c}")


@test
def listener_and_inbound_peer():
    step_ok("listen")
    out = dict(l.split() for l in one(cap(), "step_end", "listen")["stdout_tail"].splitlines())
    lst = one(cap(), "listen", "listen")
    check(lst["port"] == int(out["listen"]) and lst["addr"] == "127.0.0.1", f"{lst} {out}")
    check(lst["ret"] == 0 and lst["sock_type"] == "stream", f"{lst}")
    a = one(cap(), "accept", "listen", via="accept4")
    check(a["port"] == int(out["client"]) and a["addr"] == "127.0.0.1", f"{a} {out}")
    check(a["local_port"] == int(out["listen"]) and a["new_fd"] >= 0, f"{a}")


@test
def udp_listener_and_its_senders_once_each():
    """A UDP server has no listen or accept: its bind is its listener, and the sender of
    what it receives is its inbound peer, once per sender however many datagrams."""
    step_ok("udpserve")
    out = dict(l.split() for l in one(cap(), "step_end", "udpserve")["stdout_tail"].splitlines())
    lst = of(cap(), "listen", "udpserve")
    check(sorted(r["port"] for r in lst) == sorted(int(out[k]) for k in ("bound", "a", "b")) and
          all(r["via"] == "bind" and r["sock_type"] == "dgram" and r["ret"] == 0 and
              r["addr"] == "127.0.0.1" for r in lst), f"{lst} {out}")
    got = [(r["via"], r["port"], r["local_port"]) for r in of(cap(), "accept", "udpserve")]
    check(got == [("recvfrom", int(out["a"]), int(out["bound"])),
                  ("recvmsg", int(out["b"]), int(out["bound"]))], f"{got} {out}")


@test
def xattr_times_root_and_namespace_changes():
    """Changes the classic calls do not show: extended attributes (file capabilities live
    there), timestamps set back (a way to hide a change), a new root, new namespaces."""
    target = f"{Capture.dir}/xattr-target"
    for st in ("xattr", "utimes", "chroot", "unshare"):
        step_ok(st)
    got = [(r["syscall"], r["path"], r["name"], r["ret"]) for r in of(cap(), "xattr", "xattr")]
    check(got == [("setxattr", target, "user.runseal", 0), ("fsetxattr", target, "user.fd", 0),
                  ("removexattr", target, "user.runseal", 0),
                  ("fremovexattr", target, "user.fd", 0)], f"{got}")
    f = one(cap(), "xattr", "xattr", syscall="fsetxattr")
    check(f["size"] == 2 and f["flags"] == 1 and f["fd"] >= 0 and "path_arg" not in f, f"{f}")
    got = [(r["syscall"], r["path"], r["times"]) for r in of(cap(), "utimes", "utimes")]
    check(got == [("utimensat", target, "now"), ("utimensat", target, "given"),
                  ("utimensat", target, "given")], f"{got}")
    check(Capture.disk["xattr-target"].st_mtime == 1000000000, "the times were not set back")
    c = one(cap(), "chroot", "chroot", syscall="chroot")
    check(c["path"] == f"{Capture.dir}/sub" and c["ret"] == 0, f"{c}")
    p = one(cap(), "chroot", "chroot", syscall="pivot_root")
    check((p["path"], p["put_old"], p["error"]) ==
          ("/nonexistent-new-root", "/nonexistent-old", "ENOENT"), f"{p}")
    u = one(cap(), "namespace", "unshare", syscall="unshare")
    check(u["flags"] == ["uts"] and u["ret"] == 0 and u["pid"] != one(
        cap(), "step_start", "unshare")["pid"], f"{u}")
    s = one(cap(), "namespace", "unshare", syscall="setns")
    check(s["nstype"] == "uts" and s["ret"] == 0 and
          s["ns_inode"] == os.stat("/proc/self/ns/uts").st_ino, f"{s}")


@test
def sendmmsg_every_destination():
    step_ok("mmsg")
    got = sorted(r["port"] for r in of(cap(), "connect", "mmsg", via="sendmmsg"))
    check(got == list(range(1, 13)), f"sendmmsg destinations recorded: {got}")


@test
def connect_names_the_socket_connected_not_the_fd_swapped_in():
    """A thread dup2()s a socket connected elsewhere onto the fd while connect runs: the
    record names the socket the kernel connected."""
    step_ok("connect-dup")
    out = one(cap(), "step_end", "connect-dup")["stdout_tail"].split()
    ok, swapped = int(out[1]), int(out[3])
    check(swapped > 0, f"the fd was never swapped under a connect: {out}")
    recs = [r for r in of(cap(), "connect", "connect-dup") if r["fd"] == 100 and r["ret"] == 0]
    check(len(recs) == ok, f"{len(recs)} records of {ok} successful connects")
    wrong = [r for r in recs if r["port"] != Capture.info["port"]]
    check(not wrong, f"{len(wrong)} records name the swapped-in socket: {wrong[:2]}")


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
        blob = json.dumps(list(r.values()))  # values: a key may say "outside" (path_outside_root)
        check("outside" not in blob and "OUTSIDEMARK" not in blob,
              f"record of a process outside the run: {blob[:300]}")


# ---- file and privilege changes (issue 8) ---------------------------------------------------

def step_ok(step):
    end = one(cap(), "step_end", step)
    check(end["status"] == "ok", f"step {step} {end['status']}: {end.get('stderr_tail')}")


@test
def rename_over_a_file_names_both_paths():
    step_ok("rename")
    d = Capture.disk
    check(d["renamed.conf content"] == "renamed-content\n", "rename did not happen on disk")
    r = one(cap(), "rename", "rename", syscall="rename")
    check(r["old_path"] == f"{Capture.dir}/sub/.renamed.conf.tmp", f"old_path {r['old_path']}")
    check(r["path"] == f"{Capture.dir}/sub/renamed.conf", f"path {r['path']}")
    check(r["path_arg"] == "renamed.conf" and r["old_path_arg"] == ".renamed.conf.tmp", f"{r}")
    check(r["ret"] == 0 and "error" not in r, f"{r}")


@test
def renameat2_through_dirfd():
    step_ok("renameat2")
    check(Capture.disk["sub/ra2-new"] and not Capture.disk["sub/ra2-old"], "not renamed on disk")
    r = one(cap(), "rename", "renameat2", syscall="renameat2")
    check(r["old_path"] == f"{Capture.dir}/sub/ra2-old", f"old_path {r['old_path']}")
    check(r["path"] == f"{Capture.dir}/sub/ra2-new", f"path {r['path']}")
    check(r["flags"] == 1 and r["ret"] == 0, f"{r}")


@test
def unlink_and_rmdir_are_records():
    step_ok("unlink")
    check(not Capture.disk["sub/doomed"] and not Capture.disk["sub/doomed.d"], "still on disk")
    u = one(cap(), "unlink", "unlink", syscall="unlinkat")
    check(u["path"] == f"{Capture.dir}/sub/doomed" and u["ret"] == 0, f"{u}")
    r = one(cap(), "unlink", "unlink", syscall="rmdir")
    check(r["path"] == f"{Capture.dir}/sub/doomed.d" and r["dir"] is True, f"{r}")


@test
def chmod_flags_setuid():
    step_ok("chmod")
    st = Capture.disk["chmod-target"]
    check(st.st_mode & 0o7777 == 0o4755, f"mode on disk {oct(st.st_mode)}")
    c = one(cap(), "chmod", "chmod", syscall="chmod")
    check(c["path"] == f"{Capture.dir}/chmod-target", f"path {c['path']}")
    check(c["mode"] == "4755" and c["setuid"] is True and c["setgid"] is False, f"{c}")
    f = [r for r in of(cap(), "chmod", "chmod", syscall="fchmod")]
    check([r["mode"] for r in f] == ["0600", "4755"], f"fchmod records {f}")
    check(all(r["path"] == f"{Capture.dir}/chmod-target" and r["fd"] >= 0 for r in f), f"{f}")


@test
def chown_records_owner_and_group():
    step_ok("chown")
    st = Capture.disk["chown-target"]
    check((st.st_uid, st.st_gid) == (4242, 4343), f"owner on disk {st.st_uid}:{st.st_gid}")
    for sc in ("chown", "fchown"):
        c = one(cap(), "chown", "chown", syscall=sc)
        check(c["path"] == f"{Capture.dir}/chown-target", f"{sc} path {c['path']}")
        check(c["owner"] == 4242 and c["group"] == 4343 and c["ret"] == 0, f"{c}")


@test
def link_and_symlink():
    step_ok("link")
    check(Capture.disk["link-new"] and
          Capture.disk["link-new"].st_ino == Capture.disk["link-src"].st_ino, "no hard link")
    check(Capture.disk["link-new.sym -> "] == f"{Capture.dir}/link-src", "no symlink on disk")
    ln = one(cap(), "link", "link", syscall="link")
    check(ln["old_path"] == f"{Capture.dir}/link-src" and ln["path"] == f"{Capture.dir}/link-new",
          f"{ln}")
    sl = one(cap(), "symlink", "link", syscall="symlink")
    check(sl["target"] == f"{Capture.dir}/link-src", f"target {sl['target']}")
    check(sl["path"] == f"{Capture.dir}/link-new.sym", f"path {sl['path']}")


@test
def tmpfile_gets_its_name_from_linkat():
    step_ok("tmpfile")
    check(Capture.disk["sub/from-tmpfile"], "linkat did not name the file on disk")
    ln = one(cap(), "link", "tmpfile", syscall="linkat")
    check(ln["path"] == f"{Capture.dir}/sub/from-tmpfile", f"path {ln['path']}")
    # The unnamed file is shown as the kernel names it: "#<inode>" in the directory.
    check(ln["old_path"].startswith(f"{Capture.dir}/sub/#"), f"old_path {ln['old_path']}")
    check(ln["flags"] == 0x1000 and ln["ret"] == 0, f"{ln}")
    o = [r for r in of(cap(), "open", "tmpfile") if "tmpfile" in r["flags"]]
    check(o, "no open record with the tmpfile flag")


@test
def tmpfile_named_through_proc_self_fd():
    step_ok("tmpfileproc")
    check(Capture.disk["sub/from-tmpfile-proc"], "linkat did not name the file on disk")
    proc = one(cap(), "step_end", "tmpfileproc")["stdout_tail"].strip()
    ln = one(cap(), "link", "tmpfileproc", syscall="linkat")
    check(ln["path"] == f"{Capture.dir}/sub/from-tmpfile-proc", f"path {ln['path']}")
    check(ln["old_path"] == proc and ln["flags"] == 0x400 and ln["ret"] == 0, f"{ln}")


@test
def mkdir_and_mknod():
    import stat
    step_ok("mkdirs")
    d = Capture.disk
    check(stat.S_ISDIR(d["mk/newdir"].st_mode) and stat.S_ISFIFO(d["mk/fifo"].st_mode) and
          stat.S_ISCHR(d["mk/null2"].st_mode), "not made on disk")
    m = one(cap(), "mkdir", "mkdirs", syscall="mkdir")
    check(m["path"] == f"{Capture.dir}/mk/newdir" and m["mode"] == "0750", f"{m}")
    m2 = one(cap(), "mkdir", "mkdirs", syscall="mkdirat")
    check(m2["path"] == f"{Capture.dir}/mk/newdir2" and m2["mode"] == "0700", f"{m2}")
    f = one(cap(), "mknod", "mkdirs", syscall="mknod")
    check(f["path"] == f"{Capture.dir}/mk/fifo" and f["type"] == "fifo", f"{f}")
    n = one(cap(), "mknod", "mkdirs", syscall="mknodat")
    check(n["type"] == "char" and n["dev"] == "1:3" and n["ret"] == 0, f"{n}")


@test
def truncate_records_length():
    step_ok("truncate")
    check(Capture.disk["trunc-target"].st_size == 3, "not truncated on disk")
    t = one(cap(), "truncate", "truncate", syscall="truncate")
    check(t["path"] == f"{Capture.dir}/trunc-target" and t["length"] == 3, f"{t}")


@test
def mounts_are_records():
    step_ok("mount")
    check(not Capture.disk["mounts left"], f"mounts left: {Capture.disk['mounts left']}")
    m = one(cap(), "mount", "mount", syscall="mount")
    check(m["path"] == f"{Capture.dir}/mnt/a" and m["fstype"] == "tmpfs", f"{m}")
    check(m["source"] == "runseal-test" and m["ret"] == 0, f"{m}")
    t = one(cap(), "mount", "mount", syscall="open_tree")
    check(t["path"] == f"{Capture.dir}/mnt/a" and t["fd"] >= 0, f"{t}")
    mv = one(cap(), "mount", "mount", syscall="move_mount")
    check(mv["path"] == f"{Capture.dir}/mnt/b" and mv["ret"] == 0, f"{mv}")
    um = of(cap(), "umount", "mount", syscall="umount2")
    check(sorted(u["path"] for u in um) == [f"{Capture.dir}/mnt/a", f"{Capture.dir}/mnt/b"],
          f"{um}")


@test
def memfd_exec_carries_the_kernels_name():
    e = [r for r in of(cap(), "exec", "memfdexec") if "memfd-marker" in r["argv"]]
    check(e, "no exec record of the memfd")
    check(e[0]["ret"] == 0 and e[0]["path"] == "memfd:runseal-memfd (deleted)", f"{e[0]}")
    check(e[0]["path_detached"] is True, f"{e[0]}")


@test
def open_through_a_detached_tree_says_so():
    step_ok("detached")
    o = one(cap(), "open", "detached", path_arg="f", flags=["read", "cloexec"])
    check(o["path"] == "f" and o["path_detached"] is True and o["ret"] >= 0, f"{o}")
    check("path_outside_root" not in o, f"{o}")


@test
def open_outside_the_chroot_says_so():
    step_ok("chrootopen")
    o = one(cap(), "open", "chrootopen", path_arg="beyond-jail")
    check(o["path"] == f"{Capture.dir}/chr/beyond-jail", f"{o}")
    check(o["path_detached"] is True and o["path_outside_root"] is True, f"{o}")
    plain = one(cap(), "open", "openrel", path_arg="sub/rel-target.txt")
    check("path_detached" not in plain, f"{plain}")


@test
def compat_syscalls_are_seen():
    """int $0x80 from a 64-bit process: syscalls:* never fire for it; each 32-bit syscall
    number the process uses is one record, the first flagged."""
    step_ok("int80")
    end = one(cap(), "step_end", "int80")
    check(end["stdout_tail"].startswith("fd "), f"open through int 0x80 failed: {end}")
    recs = of(cap(), "compat_syscall", "int80")
    check([(r["nr"], r["name"], r["first"]) for r in recs] ==
          [(20, "getpid", True), (5, "open", False)], f"{recs}")
    check(all(r["abi"] == "ia32" and len(r["args"]) == 6 for r in recs), f"{recs}")
    check(int(recs[1]["args"][1], 16) == 0, f"open flags {recs[1]['args']}")
    check(recs[1]["path_arg"] == f"{Capture.dir}/sub/rel-target.txt", f"{recs[1]}")
    check("path_arg" not in recs[0], f"{recs[0]}")


@test
def io_uring_requests_are_seen():
    step_ok("uring")
    end = one(cap(), "step_end", "uring")
    check(end["stdout_tail"].startswith("open "), f"{end['stdout_tail']}")
    o = one(cap(), "open", "uring", via="io_uring")
    check(o["path"] == f"{Capture.dir}/sub/rel-target.txt" and o["path_arg"] == "sub/rel-target.txt",
          f"{o}")
    # io_uring forces O_LARGEFILE on every open
    check(o["syscall"] == "openat" and o["flags"] == ["read", "largefile", "cloexec"] and
          o["user_data"] == 1,
          f"{o}")
    c = one(cap(), "connect", "uring", via="io_uring_connect")
    check(c["addr"] == "127.0.0.1" and c["port"] == Capture.info["port"] and c["user_data"] == 2,
          f"{c}")
    u = one(cap(), "connect", "uring", via="io_uring_sendmsg")
    check(u["port"] == Capture.info["udp3"] and u["user_data"] == 3, f"{u}")
    res = {r["user_data"]: r for r in of(cap(), "io_uring_result", "uring")}
    lines = end["stdout_tail"].splitlines()
    fd, rc, sent = (int(x) for x in lines[0].split()[1::2])
    afd, client = (int(x) for x in lines[1].split()[1::2])
    check(sorted(res) == [1, 2, 3, 4, 11, 12, 13, 14, 15], f"results {res}")
    # An accept's peer is known once it completes: in its result.
    check((res[4]["op"], res[4]["ret"], res[4]["addr"], res[4]["port"]) ==
          ("accept", afd, "127.0.0.1", client), f"{res[4]}")
    check("addr" not in res[1] and "addr" not in res[2], f"{res[1]} {res[2]}")
    check(all(res[u]["ret"] == 0 for u in range(11, 16)), f"{res}")
    check((res[1]["op"], res[1]["ret"]) == ("openat", fd), f"{res[1]}")
    check((res[2]["op"], res[2]["ret"]) == ("connect", rc), f"{res[2]}")
    check((res[3]["op"], res[3]["ret"]) == ("sendmsg", sent), f"{res[3]}")
    # File changes through the ring: the records of the syscalls they stand for.
    d = Capture.disk
    check(d["u-dir2"] and d["u-sym"] and not d["u-link"], "ring file changes not on disk")
    fs = {r["user_data"]: r for r in cap() if r.get("step") == "uring" and r["kind"] in
          ("mkdir", "rename", "symlink", "link", "unlink")}
    want = {11: ("mkdir", "path", "u-dir"), 12: ("rename", "path", "u-dir2"),
            13: ("symlink", "path", "u-sym"), 14: ("link", "path", "u-link"),
            15: ("unlink", "path", "u-link")}
    for ud, (kind, key, name) in want.items():
        r = fs.get(ud)
        check(r and r["kind"] == kind and r[key] == f"{Capture.dir}/{name}", f"{ud}: {r}")
        check(r["via"] == "io_uring" and r["ret"] is None, f"{r}")
    check(fs[12]["old_path"] == f"{Capture.dir}/u-dir" and fs[13]["target"] == "u-target", f"{fs}")
    check(fs[14]["old_path"] == f"{Capture.dir}/sub/rel-target.txt", f"{fs[14]}")
    # The same syscalls were not made directly: only the ring saw them.
    check(not of(cap(), "open", "uring", path_arg="sub/rel-target.txt", via=None), "direct open")


@test
def open_by_handle_is_an_open():
    step_ok("byhandle")
    o = one(cap(), "open", "byhandle", syscall="open_by_handle_at")
    check(o["path"] == f"{Capture.dir}/sub/dirfd-target.txt" and o["fd"] >= 0, f"{o}")
    check("path_arg" not in o and o["dirfd"] >= 0, f"{o}")


@test
def pidfd_getfd_names_the_victim_and_what_was_taken():
    step_ok("getfd")
    info = Capture.info
    out = dict(l.split() for l in one(cap(), "step_end", "getfd")["stdout_tail"].splitlines())
    check(int(out[str(info["victim_file_fd"])]) == Capture.victim[0], f"not the file: {out}")
    recs = of(cap(), "pidfd_getfd", "getfd")
    check(len(recs) == 2, f"{recs}")
    f, s = recs
    for r in recs:
        check(r["target_pid"] == info["victim_pid"] and r["target_in_run"] is False, f"{r}")
        check(r["ret"] >= 0 and r["fd"] == r["ret"], f"{r}")
    check(f["target_fd"] == info["victim_file_fd"], f"{f}")
    check(f["path"] == f"{Capture.dir}/victim-secret", f"{f}")
    check(s["target_fd"] == info["victim_sock_fd"] and s["sock_type"] == "stream", f"{s}")
    check(s["addr"] == "127.0.0.1" and s["port"] == info["port"], f"{s}")
    check(s["local_port"] == Capture.victim[1], f"{s}")


@test
def privilege_changes_are_records():
    step_ok("privdrop")
    recs = of(cap(), "cred", "privdrop")
    cs = one(recs, "cred", "privdrop", syscall="capset")
    eff = int(cs["cap_effective"], 16)
    check(not eff & (1 << 13) and eff & (1 << 21), f"cap_effective {cs['cap_effective']}")
    check(int(cs["req_cap_effective"], 16) == eff, f"{cs}")
    g = one(recs, "cred", "privdrop", syscall="setresgid")
    check(g["req_rgid"] == 65534 and g["new_egid"] == 65534 and g["ret"] == 0, f"{g}")
    u = one(recs, "cred", "privdrop", syscall="setresuid")
    check(u["new_uid"] == u["new_euid"] == u["new_suid"] == 65534 and u["ret"] == 0, f"{u}")
    check(u["cap_effective"] == "0x0000000000000000", f"caps kept after setresuid: {u}")
    back = one(recs, "cred", "privdrop", syscall="setuid")
    check(back["req_uid"] == 0 and back["error"] == "EPERM" and back["new_uid"] == 65534,
          f"{back}")


@test
def every_record_from_a_run_process():
    """Kernel records only come from the steps' processes and their descendants: the load
    outside the run does everything the steps do, and none of it may appear."""
    recs = cap()
    pids = {r["pid"] for r in of(recs, "step_start") if r["pid"]}
    pids |= {r["child_pid"] for r in of(recs, "fork")}
    for r in recs:
        if r["kind"] in KERNEL_KINDS:
            check(r["pid"] in pids, f"record of a process outside the run: {r}")


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


def lingering_run(tmp, policy, script):
    rb = os.path.join(tmp, f"{policy}.yaml")
    ev = os.path.join(tmp, f"{policy}.jsonl")
    with open(rb, "w") as f:
        f.write(f"name: linger\nsteps:\n  - name: start\n    run: {json.dumps(script)}\n")
    t0 = time.monotonic()
    rc, out, err = runseal(["run", "-q", "--events", ev, "--lingering", policy, rb])
    check(rc == 0, f"--lingering {policy}: rc {rc} {err[-400:]}")
    recs = load(ev)
    return recs, recs[-1], time.monotonic() - t0


@test
def lingering_processes_killed_waited_for_or_left():
    """What a step leaves running is the run's: --lingering kill ends it (its exits
    recorded), wait traces it until it exits, leave (the default) lists it."""
    tmp = tempfile.mkdtemp(prefix="runseal-linger-")
    late = os.path.join(tmp, "late")
    rc, out, err = runseal(["run", "--lingering", "sometimes", "runbooks/deploy-patch.yaml"])
    check(rc == 2 and "--lingering sometimes: expected leave, kill or wait" in err, err)
    # Output redirected: a background process holding the step's stdout would delay its
    # step_end by the output grace (1 s).
    bg = "(sleep 2; touch %s; sleep 27) >/dev/null 2>&1 & # linger-%s"
    try:
        recs, end, _ = lingering_run(tmp, "kill", bg % (late, "kill"))
        check(end["lingering_policy"] == "kill" and end["lingering_killed"] >= 2 and
              end["lingering"] == {}, f"run_end {end}")
        killed = [r for r in of(recs, "exit", "start") if r["signal"] == 9]
        check(len(killed) == end["lingering_killed"], f"exits {of(recs, 'exit')}")
        time.sleep(2.5)
        check(not os.path.exists(late) and not pids_with("linger-kill"),
              "a killed process went on")
        recs, end, took = lingering_run(
            tmp, "wait", "(sleep 1; touch %s) >/dev/null 2>&1 & # linger-wait" % late)
        check(os.path.exists(late) and took >= 1, f"the run ended before its processes: {took}")
        check(end["lingering_policy"] == "wait" and end["lingered"] >= 1 and
              end["lingering_killed"] == 0 and end["lingering"] == {}, f"run_end {end}")
        touch = one(recs, "exec", "start", path="/usr/bin/touch")
        check(touch["time"] > one(recs, "step_end", "start")["time"], f"{touch}")
        recs, end, _ = lingering_run(tmp, "leave", bg % (late + "2", "leave"))
        left = pids_with("linger-leave")
        check(end["lingering_policy"] == "leave" and left and
              set(map(str, left)) <= set(end["lingering"]) and
              set(end["lingering"].values()) == {"start"}, f"run_end {end}, alive {left}")
    finally:
        for p in pids_with("linger-"):
            os.kill(p, signal.SIGKILL)
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
