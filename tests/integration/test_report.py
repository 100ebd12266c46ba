#!/usr/bin/env python3
"""Integration tests of what users get out of the sealed log: runs, report (md, json, html),
replay, diff, evidence bundles and export, on real traced runs (root, real BPF).

Each test runs real runbooks into a log of its own and reads it back only through runseal.
Prints one line per test and "report: N passed, M failed, K skipped" at the end.
"""
import json
import os
import random
import re
import shutil
import stat
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNSEAL = os.path.join(ROOT, "runseal")
ACTIONS = os.path.join(ROOT, "build", "actions")
DEMO = os.path.join(ROOT, "scripts", "demo-service")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Failure, check, run_all, skip, test  # noqa: E402
import schema_table  # noqa: E402

TMP = tempfile.mkdtemp(prefix="runseal-report-")
KEYS = os.path.join(TMP, "keys")
RUN_KINDS = {"run_start", "run_end", "step_start", "step_end", "loss"}
FILE_CHANGES = {"rename", "unlink", "chmod", "chown", "link", "symlink", "mkdir", "mknod",
                "truncate"}


def rs(args, timeout=180, env=None, cwd=None):
    p = subprocess.run([RUNSEAL] + args, capture_output=True, timeout=timeout, env=env, cwd=cwd)
    return (p.returncode, p.stdout.decode("utf-8", "surrogateescape"),
            p.stderr.decode("utf-8", "surrogateescape"))


def load(path):
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


def keygen():
    if not os.path.exists(os.path.join(KEYS, "root.pub")):
        rc, out, err = rs(["keygen", "--key-dir", KEYS])
        check(rc == 0, f"keygen rc {rc}: {err}")


def run(log, rb, params=(), tmp=None, want_rc=0):
    """Runs runbook file rb into log; returns (run id, records as --events wrote them)."""
    keygen()
    ev = os.path.join(tmp or TMP, f"ev-{random.getrandbits(32):08x}.jsonl")
    args = ["run", "-q", "--key-dir", KEYS, "--log-dir", log, "--events", ev, rb]
    for p in params:
        args += ["-p", p]
    rc, out, err = rs(args)
    check(rc == want_rc, f"run {rb}: rc {rc}: {err[-800:]}")
    recs = load(ev)
    return recs[0]["run"], recs


def read(log, cmd, *args, want=0):
    rc, out, err = rs([cmd, log, "--key-dir", KEYS] + list(args))
    check(rc == want, f"{cmd} {' '.join(args)}: rc {rc}: {err[-800:]}")
    return out


def check_schema(log, label):
    """Every entry of the log (records and the log's own entries, as sealed) has a kind of
    user/schema.c's table and only fields the table lists for it."""
    table = schema_table.load()
    out = read(log, "show", "--json")
    kinds = set()
    for line in out.splitlines():
        e = json.loads(line)
        kinds.add(e["kind"])
        bad = [k for k in schema_table.unknown_fields(e, table) if k != "hash"]
        check(not bad, f"{label}: {e['kind']} seq {e['seq']}: fields not in the schema: {bad}")
    check({"genesis", "segment", "seal", "run_start", "exec"} <= kinds,
          f"{label}: the log lacks kinds: {kinds}")
    return kinds


def write_runbook(tmp, text, name="rb.yaml"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def dest(r):
    if "addr" in r:
        return (f"[{r['addr']}]:{r['port']}" if ":" in r["addr"]
                else f"{r['addr']}:{r['port']}")
    return r.get("path", "?")


# ---- reports and replay of the example runbooks --------------------------------------------

def sections_of(report):
    """Step name -> the report's tables of that step's sections (retries merged)."""
    by = {}
    steps = next(s for s in report["sections"] if s["id"] == "steps")
    names = [row["step"] for row in steps["tables"][0]["rows"]]
    details = [s for s in report["sections"] if s["id"].startswith("step-")]
    check(len(details) == len(names), f"{len(details)} step sections, {len(names)} steps")
    for name, sec in zip(names, details):
        check(name in sec["title"], f"section {sec['title']!r} is not step {name!r}")
        t = by.setdefault(name, {})
        for tab in sec["tables"]:
            t.setdefault(tab["caption"], []).extend(tab["rows"])
    return by


SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")


def shell_words(argv):
    """argv as the reports show it: a line a shell splits back into the same words."""
    out = []
    for w in argv:
        if w and all(c in SAFE for c in w):
            out.append(w)
        else:
            out.append("'" + w.replace("'", "'\\''") + "'")
    return " ".join(out)


def check_report_has_everything(recs, report, label):
    by = sections_of(report)
    counted = {"exec": 0, "open": 0, "connect": 0, "changes": 0, "listen/accept": 0}
    for r in recs:
        if r["kind"] not in {"exec", "open", "connect", "listen", "accept"} | FILE_CHANGES:
            continue
        tabs = by.get(r["step"])
        check(tabs is not None, f"{label}: step {r['step']} missing from the report")
        if r["kind"] == "exec":
            want = r["path"] if r.get("ret", 0) == 0 else r["filename"]
            rows = [x for x in tabs["execs"] if x["time"] == r["time"]
                    and x["pid"] == str(r["pid"]) and x["executable"] == want
                    and x["argv"] == shell_words(r["argv"])]
        elif r["kind"] == "open":
            rows = [x for x in tabs["files opened"] if x["time"] == r["time"]
                    and x["pid"] == str(r["pid"]) and x["path"] == r["path"]
                    and (("FAILED" in x["access"]) == (r["ret"] < 0))
                    and (("write" in x["access"]) == ("write" in r["flags"]))
                    and (("create" in x["access"]) == ("create" in r["flags"]))]
        elif r["kind"] in FILE_CHANGES:
            rows = [x for x in tabs["file changes"] if x["time"] == r["time"]
                    and x["pid"] == str(r["pid"]) and x["kind"] == r["kind"]
                    and x["path"] == r.get("path", "")]
        else:
            shown = {"listen": "listening on ", "accept": "inbound from "}.get(r["kind"], "")
            rows = [x for x in tabs["connections"] if x["time"] == r["time"]
                    and x["pid"] == str(r["pid"]) and x["destination"] == shown + dest(r)]
        check(rows, f"{label}: {r['kind']} of pid {r['pid']} at {r['time']} "
                    f"({r.get('path') or r.get('filename') or dest(r)}) not under step "
                    f"{r['step']}")
        counted[r["kind"] if r["kind"] in counted else
                "changes" if r["kind"] in FILE_CHANGES else "listen/accept"] += 1
    check(counted["exec"] > 0 and counted["open"] > 0, f"{label}: nothing checked {counted}")
    return counted


def check_replay(recs, log, run_id, label):
    out = read(log, "replay", run_id, "--json")
    lines = [json.loads(x) for x in out.splitlines()]
    check(lines[-1].get("verified") is True, f"{label}: replay --json not verified: {lines[-1]}")
    got = {(x["kind"], x["time"], x["pid"], x.get("step")) for x in lines[:-1]}
    want = {(r["kind"], r["time"], r["pid"], r.get("step")) for r in recs
            if r["kind"] not in RUN_KINDS}
    check(want == got, f"{label}: replay differs: missing {list(want - got)[:3]}, "
                       f"extra {list(got - want)[:3]}")
    # The text replay: each exec under its step's header, in log order.
    text = read(log, "replay", run_id)
    check(text.startswith("verified: "), f"{label}: replay does not state verification")
    step, seen, outcome = None, {}, {}
    for line in text.splitlines():
        if line.startswith("== step "):
            step = line.split()[3]
        elif " exec " in line:
            seen.setdefault(step, []).append(line.split(" exec ", 1)[1].split("  ")[0])
            if "  -> " in line:
                outcome[int(line.split()[1])] = line.rsplit("  -> ", 1)[1]
    for r in recs:
        if r["kind"] == "exec" and r.get("ret", 0) == 0:
            check(r["path"] in seen.get(r["step"], []),
                  f"{label}: replay shows no exec {r['path']} under step {r['step']}")
    # Each program's outcome is on its exec line, as its exit record says.
    exits = {r["pid"]: r for r in recs if r["kind"] == "exit"}
    for pid, shown in outcome.items():
        x = exits.get(pid)
        want = ("no exit seen" if x is None else f"exit {x['exit_code']}"
                if x["exit_code"] is not None else f"signal {x['signal']}")
        check(shown == want, f"{label}: pid {pid} shown '{shown}', its exit record: {want}")
    check(outcome, f"{label}: no exec line shows its outcome")


@test
def example_runbooks_report_and_replay():
    tmp = tempfile.mkdtemp(prefix="rs-ex-", dir=TMP)
    log = os.path.join(tmp, "log")
    port = free_port()
    subprocess.run([DEMO, "start", "rs-report", "--port", str(port)], check=True,
                   capture_output=True)
    try:
        for rb, params in (("restart-service.yaml", ["service=rs-report"]),
                           ("rotate-credential.yaml", ["service=rs-report"]),
                           ("deploy-patch.yaml", [f"target={tmp}/app"])):
            run_id, recs = run(log, os.path.join(ROOT, "runbooks", rb), params, tmp)
            report = json.loads(read(log, "report", run_id, "--format", "json"))
            check(report["verified"] is True and report["run"] == run_id,
                  f"{rb}: report header {report['run']} verified={report['verified']}")
            n = check_report_has_everything(recs, report, rb)
            if rb != "deploy-patch.yaml":
                check(n["connect"] > 0, f"{rb}: no connection checked")
            check_replay(recs, log, run_id, rb)
            md = read(log, "report", run_id)
            for want in ("## Verification", "verified: no errors", "## Controls",
                         "PCI DSS 10.2", "NIST 800-53 AU-9", "SOC 2 CC8.1",
                         "## Files written or created", "## Network destinations"):
                check(want in md, f"{rb}: markdown report lacks {want!r}")
        runs = [json.loads(x) for x in read(log, "runs", "--json").splitlines()]
        check([r["runbook_name"] for r in runs[:-1]] ==
              ["restart-service", "rotate-credential", "deploy-patch"],
              f"runs: {[r.get('runbook_name') for r in runs]}")
        check(all(r["status"] == "ok" and not r["interrupted"] for r in runs[:-1]),
              f"runs: {runs}")
        check(runs[-1]["verification"] == "ok", f"runs: {runs[-1]}")
        check_schema(log, "example runbooks")
    finally:
        subprocess.run([DEMO, "stop", "rs-report"], capture_output=True)
        shutil.rmtree("/tmp/runseal-demo/rs-report", ignore_errors=True)


@test
def secret_param_never_in_report():
    tmp = tempfile.mkdtemp(prefix="rs-sec-", dir=TMP)
    log = os.path.join(tmp, "log")
    secret = "s3cr3t-%08x" % random.getrandbits(32)
    rb = write_runbook(tmp, f"""name: secret-demo
params:
  token: {{secret: true}}
steps:
  - name: use
    run: "{ACTIONS} create {tmp}/{{{{token}}}}.txt; echo {{{{token}}}}"
""")
    run_id, recs = run(log, rb, [f"token={secret}"], tmp)
    for fmt in ("md", "json", "html"):
        out = read(log, "report", run_id, "--format", fmt)
        check(secret not in out, f"the secret is in the {fmt} report")
        check("REDACTED" in out, f"no redaction shown in the {fmt} report")
    for fmt in ("ocsf", "ecs", "jsonl"):
        out = read(log, "export", "--format", fmt)
        check(out and secret not in out, f"the secret is in the {fmt} export")


@test
def renamed_into_place_and_privilege_records():
    """Files written as Ansible, dpkg and editors write them (a temporary name, then rename),
    a set-id mode and a deletion: the reviewer sections show them when they are captured."""
    tmp = tempfile.mkdtemp(prefix="rs-ren-", dir=TMP)
    log = os.path.join(tmp, "log")
    rb = write_runbook(tmp, f"""name: rename
steps:
  - name: install
    run: |
      mkdir {tmp}/etc
      printf 'x\\n' > {tmp}/app.conf.tmp
      mv {tmp}/app.conf.tmp {tmp}/app.conf
      chmod 4755 {tmp}/app.conf
      rm -f {tmp}/app.conf
""")
    run_id, recs = run(log, rb, (), tmp)
    kinds = {r["kind"] for r in recs}
    check_schema(log, "file changes")
    if "rename" not in kinds:
        skip("this build does not capture rename records yet (docs/RECORDS.md)")
    rep = json.loads(read(log, "report", run_id, "--format", "json"))
    sec = {s["id"]: s for s in rep["sections"]}
    rows = sec["files-written"]["tables"][0]["rows"]
    check(any(r["path"] == f"{tmp}/app.conf" and
              r["access"] == f"renamed into place from {tmp}/app.conf.tmp" for r in rows),
          f"the rename into place is not listed: {rows}")
    if "chmod" in kinds:
        check(any(r["path"] == f"{tmp}/app.conf" and "SETUID" in r["access"] for r in rows),
              f"chmod 4755 not shown: {rows}")
        priv = sec["privilege"]["tables"][0]["rows"]
        check(any(r["what"] == "set-id bit set on a file" for r in priv), f"privilege: {priv}")
    if "mkdir" in kinds:
        check(any(r["path"] == f"{tmp}/etc" and r["access"].startswith("directory created")
                  for r in rows), f"mkdir is not shown: {rows}")
    if "unlink" in kinds:
        check(any(r["path"] == f"{tmp}/app.conf" and r["access"] == "deleted" for r in rows),
              f"the deletion is not shown: {rows}")
    text = read(log, "replay", run_id)
    check(f"rename {tmp}/app.conf <- {tmp}/app.conf.tmp" in text, "replay shows no rename")
    ocsf = [json.loads(x) for x in read(log, "export", "--run", run_id, "--format",
                                        "ocsf").splitlines()]
    ren = [e for e in ocsf if e["class_uid"] == 1001 and e["activity_id"] == 5]
    check(ren and ren[0]["file_result"]["path"] == f"{tmp}/app.conf" and
          ren[0]["file"]["path"] == f"{tmp}/app.conf.tmp", f"OCSF rename: {ren[:1]}")


@test
def actions_against_runseal_and_others_listed():
    tmp = tempfile.mkdtemp(prefix="rs-guard-", dir=TMP)
    log = os.path.join(tmp, "log")
    attack = os.path.join(ROOT, "build", "attack")
    if not os.path.exists(attack):
        skip("build/attack is not built (self-protection is not in this tree)")
    outside = subprocess.Popen(["sleep", "30"])
    try:
        rb = write_runbook(tmp, f"""name: guard
steps:
  - name: probe
    argv: ["{attack}", "kill", "{outside.pid}", "0"]
  - name: memfd
    argv: ["{attack}", "memfd", "x<b>y"]
""")
        run_id, recs = run(log, rb, (), tmp)
    finally:
        outside.kill()
        outside.wait()
    kinds = {r["kind"] for r in recs}
    if "signal" not in kinds:
        skip("this build does not record signals (self-protection records)")
    rep = json.loads(read(log, "report", run_id, "--format", "json"))
    sec = {s["id"]: s for s in rep["sections"]}
    rows = sec["tampering"]["tables"][0]["rows"]
    check(any(r["kind"] == "signal" and r["target"] == f"outside pid {outside.pid}" and
              r["step"] == "probe" for r in rows), f"the signal is not listed: {rows}")
    check(any(r["kind"] == "memfd_create" and "name x<b>y" in r["detail"] and
              r["step"] == "memfd" for r in rows), f"memfd_create is not listed: {rows}")
    glance = sec["summary"]["fields"]
    check(glance["actions against runseal or other processes"] == str(len(rows)), f"{glance}")
    html = read(log, "report", run_id, "--format", "html")
    check("x&lt;b&gt;y" in html and "x<b>y" not in html, "the memfd name is not escaped")
    rp = json.loads(read(log, "replay", run_id, "--json", "--kind", "signal").splitlines()[0])
    check(rp["kind"] == "signal" and rp["target_pid"] == outside.pid, f"replay: {rp}")


# ---- hostile strings in a real browser ------------------------------------------------------

# A file name cannot hold '/': its script is an event handler; argv carries a <script>.
HOSTILE = (b"x<script>document.title='PWNED0'<svg onload=\"document.title='PWNED'\">\n\"q'"
           b"<img src=x onerror=\"document.title='PWNED2'\">\xff\xfe.txt")
SCRIPT = "<script>document.title='PWNED3'</script>"


@test
def html_report_hostile_names_in_chromium():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        skip("chromium is not installed (scripts/install-deps installs it)")
    tmp = tempfile.mkdtemp(prefix="rs-html-", dir=TMP)
    log = os.path.join(tmp, "log")
    name = os.path.join(tmp.encode(), HOSTILE)
    # The step makes the hostile name itself (printf octal escapes: YAML cannot hold \xff).
    octal = "".join(f"\\{b:03o}" for b in HOSTILE)
    rb = write_runbook(tmp, f"""name: hostile
steps:
  - name: hostile
    run: |
      n=$(printf '{octal}')
      {ACTIONS} create "{tmp}/$n"
      /usr/bin/true "{SCRIPT}" "$n"
""")
    run_id, recs = run(log, rb, (), tmp)
    opens = [r for r in recs if r["kind"] == "open" and
             r["path"].encode("utf-8", "surrogateescape") == name]
    check(opens, "the hostile file's open is not recorded")
    html = os.path.join(tmp, "report.html")
    read(log, "report", run_id, "--format", "html", "-o", html)
    with open(html, "rb") as f:
        page = f.read()
    low = page.lower()
    for tag in (b"<script", b"<img", b"<link", b"<iframe", b"<object", b"<embed", b"url("):
        check(tag not in low, f"the page has {tag!r}: an element or an external asset")
    check(not re.search(rb"""(src|href|action)\s*=\s*["']?\s*(https?:|//|file:)|@import""", low),
          "the page loads something from elsewhere")
    prof = os.path.join(tmp, "chromium-profile")
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={prof}",
            "--allow-file-access-from-files"]
    p = subprocess.run(base + ["--dump-dom", f"file://{html}"], capture_output=True,
                       timeout=120)
    dom = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0 and "</html>" in dom, f"chromium rc {p.returncode}: "
                                                    f"{p.stderr[-400:]!r}")
    check("PWNED" not in dom.split("<title>")[1].split("</title>")[0],
          "a hostile script changed document.title")
    low = dom.lower()
    check("<script" not in low and "<img" not in low and "<svg onload" not in low,
          "a hostile element is in the DOM")
    # Shown literally: the escaped text with the newline and bytes made visible.
    want = ("x&lt;script&gt;document.title='PWNED0'&lt;svg onload=\"document.title='PWNED'\"&gt;"
            "\\x0a\"q'&lt;img src=x "
            "onerror=\"document.title='PWNED2'\"&gt;\\xff\\xfe.txt")
    shown = dom.replace("&quot;", '"').replace("&#39;", "'")
    check(want in shown, "the hostile name is not shown literally")
    check("'&lt;script&gt;document.title='\\''PWNED3'\\''&lt;/script&gt;'" in shown,
          "the hostile argv is not shown literally (shell-quoted)")
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    shot = os.path.join(ROOT, "build", "report-hostile.png")
    p = subprocess.run(base + [f"--screenshot={shot}", "--window-size=1280,2400",
                               f"file://{html}"], capture_output=True, timeout=120)
    check(p.returncode == 0 and os.path.getsize(shot) > 10000, f"no screenshot: {p.stderr[-300:]!r}")
    # And on paper, through the print stylesheet.
    pdf = os.path.join(ROOT, "build", "report-hostile.pdf")
    p = subprocess.run(base + [f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                               f"file://{html}"], capture_output=True, timeout=120)
    check(p.returncode == 0 and open(pdf, "rb").read(5) == b"%PDF-", f"no PDF: {p.stderr[-300:]!r}")
    # The terminal replay escapes the same bytes.
    text = read(log, "replay", run_id, "--kind", "open")
    check("\\x0a" in text and "\\xff\\xfe" in text and "\n\"q'" not in text,
          "replay does not escape the hostile name")


# ---- diff -----------------------------------------------------------------------------------

DIFF_RB = """name: diff-demo
params:
  mode: {{default: routine}}
  port: {{}}
  port2: {{}}
steps:
  - name: prepare
    run: "mkdir -p {d}/work && echo hi > {d}/work/routine.txt"
  - name: work
    run: |
      set -eu
      t=$(mktemp {d}/work/tmp.XXXXXXXXXX)
      echo data > "$t"
      cat {d}/work/routine.txt > /dev/null
      {a} connect 127.0.0.1 {{{{port}}}}
      if [ "{{{{mode}}}}" = extra ]; then
        /usr/bin/true
        {a} create {d}/work/extra.txt
        {a} connect 127.0.0.1 {{{{port2}}}}
      fi
      rm -f "$t"
"""


class DiffLog:
    runs = None


def diff_log():
    if DiffLog.runs:
        return DiffLog.runs
    tmp = tempfile.mkdtemp(prefix="rs-diff-", dir=TMP)
    log = os.path.join(tmp, "log")
    l1, l2 = listener(), listener()
    try:
        p1, p2 = l1.getsockname()[1], l2.getsockname()[1]
        rb = write_runbook(tmp, DIFF_RB.format(d=tmp, a=ACTIONS))
        ids = []
        for mode in ("routine", "routine", "routine", "extra"):
            rid, _ = run(log, rb, [f"mode={mode}", f"port={p1}", f"port2={p2}"], tmp)
            ids.append(rid)
    finally:
        l1.close()
        l2.close()
    DiffLog.runs = (log, ids, tmp, p2)
    return DiffLog.runs


@test
def diff_routine_runs_show_nothing():
    log, ids, tmp, p2 = diff_log()
    out = read(log, "diff", ids[1], ids[2], want=0)
    check(out.startswith("0 difference(s)"), f"routine runs differ:\n{out}")
    out = read(log, "diff", ids[2], "--baseline-runs", "2", want=0)
    check(out.startswith("0 difference(s)"), f"baseline: routine run differs:\n{out}")


@test
def diff_extra_command_file_port():
    log, ids, tmp, p2 = diff_log()
    out = read(log, "diff", ids[2], ids[3], "--json", want=1)
    items = [json.loads(x) for x in out.splitlines()]
    summary, items = items[-1], items[:-1]
    want = [{"step": "work", "what": "executable", "detail": "/usr/bin/true", "side": "b"},
            {"step": "work", "what": "file written", "detail": f"{tmp}/work/extra.txt",
             "side": "b"},
            {"step": "work", "what": "network destination", "detail": f"127.0.0.1:{p2}",
             "side": "b"}]
    check(sorted(items, key=str) == sorted(want, key=str),
          f"diff is not exactly the three extras: {items}")
    check(summary["differences"] == 3, f"summary {summary}")
    out = read(log, "diff", ids[3], "--baseline-runs", "3", "--json", want=1)
    items = [json.loads(x) for x in out.splitlines()][:-1]
    check(sorted(items, key=str) == sorted(want, key=str), f"--baseline-runs: {items}")
    rep = json.loads(read(log, "report", ids[3], "--format", "json", "--baseline", ids[2]))
    base = next(s for s in rep["sections"] if s["id"] == "baseline")
    rows = base["tables"][0]["rows"]
    check(sorted(r["detail"] for r in rows) ==
          sorted(["/usr/bin/true", f"{tmp}/work/extra.txt", f"127.0.0.1:{p2}"]),
          f"report --baseline: {rows}")


@test
def exec_digests_in_report_and_diff():
    """Each exec carries the SHA-256 of the file it ran, shown in the reports; the same path
    running another file in a later run is an anomaly in diff."""
    import hashlib
    tmp = tempfile.mkdtemp(prefix="rs-dig-", dir=TMP)
    log = os.path.join(tmp, "log")
    tool = os.path.join(tmp, "tool")
    shutil.copy("/bin/true", tool)
    rb = write_runbook(tmp, f"""name: digests
steps:
  - name: run-tool
    run: "{tool}; {tool} again; /bin/echo done"
""")

    def sha(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    first = sha(tool)
    ids = []
    for i in range(3):
        if i == 2:  # replaced as installers do: a new file renamed over the old one
            shutil.copy("/bin/false", tool + ".new")
            os.rename(tool + ".new", tool)
        rid, recs = run(log, rb, (), tmp)
        ids.append(rid)
        execs = [r for r in recs if r["kind"] == "exec" and r.get("path") == tool]
        check(len(execs) == 2 and all(r["sha256"] == sha(tool) for r in execs),
              f"run {i}: exec records of the tool: {execs}, file sha256 {sha(tool)}")
        echo = [r for r in recs if r["kind"] == "exec" and r.get("path") == "/usr/bin/echo"]
        check(echo and echo[0]["sha256"] == sha("/usr/bin/echo"), f"echo: {echo}")
    second = sha(tool)
    check(first != second, "the replacement has the same digest")
    rep = json.loads(read(log, "report", ids[2], "--format", "json"))
    rows = next(s for s in rep["sections"] if s["id"] == "executables")["tables"][0]["rows"]
    mine = [r for r in rows if r["path"] == tool]
    check(len(mine) == 1 and mine[0]["sha256"] == second and mine[0]["times"] == "2",
          f"report executables: {rows}")
    for fmt in ("md", "html"):
        out = read(log, "report", ids[2], "--format", fmt)
        check(second in out and first not in out, f"{fmt} report: digest of {tool}")
    ocsf = [json.loads(x) for x in read(log, "export", "--run", ids[2], "--format",
                                        "ocsf").splitlines()]
    launch = [e["process"]["file"] for e in ocsf if e["class_uid"] == 1007 and
              e["activity_id"] == 1 and e["process"].get("file", {}).get("path") == tool]
    check(len(launch) == 2 and all(f["hashes"] == [{"algorithm_id": 3, "algorithm": "SHA-256",
                                                     "value": second}] for f in launch),
          f"OCSF launches of the tool: {launch}")
    ecs = [json.loads(x) for x in read(log, "export", "--run", ids[2], "--format",
                                       "ecs").splitlines()]
    check(any(d.get("process", {}).get("executable") == tool and
              d["process"].get("hash") == {"sha256": second} for d in ecs),
          "ECS: no process.hash.sha256 for the tool")
    out = read(log, "diff", ids[0], ids[1], "--json")
    check(json.loads(out.splitlines()[-1])["differences"] == 0, f"routine diff: {out}")
    out = read(log, "diff", ids[1], ids[2], "--json", want=1)
    items = [json.loads(x) for x in out.splitlines()][:-1]
    want = [{"step": "run-tool", "what": "executable digest",
             "detail": f"{tool}: sha256 {second} (the other run: sha256 {first})",
             "side": "b"}]
    check(items == want, f"diff of the replaced tool: {items}")
    out = read(log, "diff", ids[2], "--baseline-runs", "2", "--json", want=1)
    check([json.loads(x) for x in out.splitlines()][:-1] == want, f"--baseline-runs: {out}")


# ---- replay filters, pacing and colour ---------------------------------------------------

def segment_opens(log, cmd, *args):
    """How often each segment file of log was opened (successfully) by a read command."""
    trace = os.path.join(TMP, f"strace-{random.getrandbits(32):08x}")
    p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", trace,
                        RUNSEAL, cmd, log, "--key-dir", KEYS] + list(args),
                       capture_output=True, timeout=120)
    check(p.returncode in (0, 1), f"{cmd}: rc {p.returncode}: {p.stderr[-500:]}")
    opens = {}
    with open(trace) as f:
        for line in f:
            m = re.search(r'"[^"]*/(seg-\d{16})\.log(?:\.z)?".* = (-?\d+)', line)
            if m and int(m.group(2)) >= 0:
                opens[m.group(1)] = opens.get(m.group(1), 0) + 1
    os.unlink(trace)
    return opens


def segments_of(log, runs):
    """The segments that hold records of the runs (from the seals' seq ranges)."""
    seals = [json.loads(x) for x in read(log, "show", "--json").splitlines()]
    seals = [e for e in seals if e["kind"] == "seal"]
    want = set()
    for r in runs:
        for e in seals:
            if e["first_seq"] <= r["last_seq"] and e["seq"] >= r["first_seq"]:
                want.add("seg-%016d" % e["segment"])
    return want


@test
def report_and_diff_verify_the_log_once():
    """The log is verified once (every segment read once); then only the segments holding
    the runs' records are read again, from the links that verification trusted."""
    if not shutil.which("strace"):
        skip("strace is not installed")
    log, ids, _, _ = diff_log()
    runs = {r["run"]: r for r in
            (json.loads(x) for x in read(log, "runs", "--json").splitlines()) if "run" in r}
    every = {f[:20] for f in os.listdir(log) if f.startswith("seg-")}
    check(len(every) >= 4, f"{len(every)} segments: a run per segment expected")
    once = segment_opens(log, "verify")  # what one verification opens (data, then flags)
    check(set(once) == every, f"verify opened {once}")
    for cmd, args, chosen in (("report", [ids[1]], [ids[1]]),
                              ("diff", [ids[0], ids[3]], [ids[0], ids[3]]),
                              ("replay", [ids[2]], [ids[2]])):
        opens = segment_opens(log, cmd, *args)
        again = segments_of(log, [runs[i] for i in chosen])
        check(again and again < every, f"{cmd}: segments of the runs: {again}")
        want = {seg: once[seg] + (seg in again) for seg in every}
        check(opens == want, f"{cmd}: segment opens {opens}, expected {want}")


def replay_json(log, run_id, *args):
    lines = [json.loads(x) for x in read(log, "replay", run_id, "--json", *args).splitlines()]
    check(lines and "verification" in lines[-1], "replay --json without its verification")
    return lines[:-1]


@test
def replay_filters_follow_and_colour():
    log, ids, tmp, p2 = diff_log()
    rid = ids[3]
    every = replay_json(log, rid)
    work = replay_json(log, rid, "--step", "work")
    check(work and all(x["step"] == "work" for x in work), "--step work")
    check(replay_json(log, rid, "--step", "2") == work, "--step by number")
    execs = replay_json(log, rid, "--kind", "exec,connect")
    check(execs and all(x["kind"] in ("exec", "connect") for x in execs), "--kind")
    check(len(execs) == len([x for x in every if x["kind"] in ("exec", "connect")]), "--kind")
    # --pid: a process and its descendants (the step's shell and everything under it).
    sh = next(x for x in work if x["kind"] == "exec" and x["depth"] == 0)
    sub = replay_json(log, rid, "--pid", str(sh["pid"]))
    check({x["seq"] for x in sub} == {x["seq"] for x in work}, "--pid of the step's shell")
    leaf = next(x for x in work if x["kind"] == "exec" and x["path"] == "/usr/bin/true")
    only = replay_json(log, rid, "--pid", str(leaf["pid"]))
    check(only and all(x["pid"] == leaf["pid"] for x in only), "--pid of a leaf")
    # --since/--until: a window in RFC 3339, and seconds from the start.
    mid = every[len(every) // 2]["time"]
    after = replay_json(log, rid, "--since", mid)
    before = replay_json(log, rid, "--until", mid)
    check(after and before and all(x["time"] >= mid for x in after) and
          all(x["time"] <= mid for x in before), "--since/--until")
    check(replay_json(log, rid, "--since", "0") == every, "--since 0 (seconds)")
    check(replay_json(log, rid, "--until", "0") == [], "--until 0")
    rc, out, err = rs(["replay", log, rid, "--key-dir", KEYS, "--kind", "nope"])
    check(rc == 2 and "unknown kind nope" in err, f"--kind nope: {rc} {err}")
    rc, out, err = rs(["replay", log, rid, "--key-dir", KEYS, "--step", "nope"])
    check(rc == 2 and "no step nope" in err, f"--step nope: {rc} {err}")
    # --follow paces by the records' times: at speed 1 it takes about the run's span.
    import time
    t0 = time.monotonic()
    read(log, "replay", rid, "--follow")
    slow = time.monotonic() - t0
    t0 = time.monotonic()
    read(log, "replay", rid)
    fast = time.monotonic() - t0
    span = (dt(every[-1]["time"]) - dt(every[0]["time"]))
    check(slow >= fast + span * 0.8, f"--follow took {slow:.2f}s, plain {fast:.2f}s, "
                                      f"span {span:.2f}s")
    # Colour only on a terminal, and never with NO_COLOR.
    import pty
    for no_color, want in ((None, True), ("1", False)):
        master, slave = pty.openpty()
        env = dict(os.environ)
        env.pop("NO_COLOR", None)
        if no_color:
            env["NO_COLOR"] = no_color
        p = subprocess.Popen([RUNSEAL, "replay", log, rid, "--key-dir", KEYS, "--kind",
                              "exec"], stdout=slave, stderr=subprocess.DEVNULL, env=env)
        os.close(slave)
        data = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        p.wait(timeout=30)
        os.close(master)
        check((b"\x1b[" in data) == want, f"NO_COLOR={no_color}: colour {not want}")
    check("\x1b" not in read(log, "replay", rid), "colour into a pipe")


def dt(t):
    import datetime
    return datetime.datetime.strptime(t[:26], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


# ---- evidence bundles -----------------------------------------------------------------------

@test
def evidence_bundle_verifies_alone_and_detects_any_change():
    log, ids, tmp, p2 = diff_log()
    bundle = os.path.join(tmp, "bundle.tar.gz")
    rc, out, err = rs(["evidence", log, ids[3], "--key-dir", KEYS, "-o", bundle])
    check(rc == 0, f"evidence rc {rc}: {err}")
    names = subprocess.run(["tar", "tzf", bundle], capture_output=True, text=True,
                           check=True).stdout.split()
    for n in ("keys/root.pub", "keys/epochs.pub", "log/HEAD", "report.md", "report.html",
              "report.json", "README.txt"):
        check(n in names, f"bundle lacks {n}: {names}")
    # Elsewhere: another directory, no access to the log or the key directory.
    away = tempfile.mkdtemp(prefix="rs-away-", dir=TMP)
    copy = os.path.join(away, "b.tar.gz")
    shutil.copy(bundle, copy)
    rc, out, err = rs(["verify", "b.tar.gz"], cwd=away)
    check(rc == 0 and "bundle verified" in err, f"bundle verify rc {rc}: {out} {err}")
    rc, out, err = rs(["verify", "b.tar.gz", "--pub", os.path.join(KEYS, "root.pub")], cwd=away)
    check(rc == 0, f"bundle verify with --pub rc {rc}: {out} {err}")
    rep = json.loads(rs(["report", copy, ids[3], "--format", "json"])[1])
    check(rep["verified"] is True and rep["run"] == ids[3], "report from the bundle")
    rc, out, err = rs(["replay", copy, ids[3], "--kind", "exec"])
    check(rc == 0 and "/usr/bin/true" in out, f"replay from the bundle rc {rc}: {err}")
    data = open(bundle, "rb").read()
    rnd = random.Random(7)
    positions = sorted({0, 3, 4, 8, 9, 12, len(data) // 2, len(data) - 8, len(data) - 1} |
                       set(rnd.sample(range(len(data)), 40)))
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 1 << rnd.randrange(8)
        with open(copy, "wb") as f:
            f.write(bad)
        rc, out, err = rs(["verify", "b.tar.gz", "-q"], cwd=away)
        check(rc != 0, f"a changed byte at offset {pos} of {len(data)} went undetected")
    with open(copy, "wb") as f:
        f.write(data + b"\0")
    check(rs(["verify", "b.tar.gz", "-q"], cwd=away)[0] != 0, "an appended byte went undetected")
    check(not [d for d in os.listdir(os.environ.get("TMPDIR", "/tmp"))
               if d.startswith("runseal-bundle.") and
               os.path.getmtime(os.path.join("/tmp", d)) > os.path.getmtime(bundle)],
          "unpacked bundles left behind")


def last_line(log, seg):
    """The last line of a segment file of log (its seal when it is sealed)."""
    import zlib
    path = os.path.join(log, seg + ".log.z")
    data = (zlib.decompress(open(path, "rb").read()) if os.path.exists(path)
            else open(os.path.join(log, seg + ".log"), "rb").read())
    return data.splitlines(keepends=True)[-1]


@test
def evidence_bundle_trimmed_to_its_run():
    """A bundle holds only the segments of its run, and ANCHOR: the seal before them, from
    which the chain is checked. Any other seal there, a changed one, or none, fails."""
    log, ids, tmp, _ = diff_log()
    runs = {r["run"]: r for r in
            (json.loads(x) for x in read(log, "runs", "--json").splitlines()) if "run" in r}
    bundle = os.path.join(tmp, "trimmed.tar.gz")
    rc, out, err = rs(["evidence", log, ids[2], "--key-dir", KEYS, "-o", bundle])
    check(rc == 0, f"evidence rc {rc}: {err}")
    names = subprocess.run(["tar", "tzf", bundle], capture_output=True, text=True,
                           check=True).stdout.split()
    segs = sorted(n[4:24] for n in names if n.startswith("log/seg-"))
    want = sorted(segments_of(log, [runs[ids[2]]]))
    check(segs == want and "seg-0000000000000001" not in segs,
          f"bundle segments {segs}, the run's {want}")
    check("log/ANCHOR" in names, f"no ANCHOR: {names}")
    away = tempfile.mkdtemp(prefix="rs-trim-", dir=TMP)
    subprocess.run(["tar", "xzf", bundle, "-C", away], check=True)
    before = "seg-%016d" % (int(segs[0][4:]) - 1)
    anchor = open(os.path.join(away, "log", "ANCHOR"), "rb").read()
    check(anchor == last_line(log, before) and b'"kind":"seal"' in anchor,
          f"ANCHOR is not the seal of {before}: {anchor[:200]}")
    shutil.copy(bundle, os.path.join(away, "b.tar.gz"))
    rc, out, err = rs(["verify", "b.tar.gz"], cwd=away)
    check(rc == 0 and "from the ANCHOR seal" in out, f"bundle verify rc {rc}: {out} {err}")
    d = os.path.join(away, "log")
    keys = ["--key-dir", os.path.join(away, "keys")]

    def verify_dir(*extra):
        return rs(["verify", d, "--anchored"] + keys + list(extra))

    rc, out, err = verify_dir()
    check(rc == 0, f"the unpacked log with --anchored: rc {rc}: {out}")
    rc, out, err = rs(["verify", d] + keys)
    check(rc == 1 and "missing_segment" in out, f"without --anchored: rc {rc}: {out}")
    earlier = last_line(log, "seg-%016d" % (int(segs[0][4:]) - 2))
    i = anchor.index(b'"sig":"') + 7
    flipped = anchor[:i] + (b"1" if anchor[i:i + 1] == b"0" else b"0") + anchor[i + 1:]
    for label, content in (("an earlier genuine seal", earlier),
                           ("a changed signature", flipped),
                           ("another reason", anchor.replace(b'"reason":"run_end"',
                                                             b'"reason":"size"'))):
        check(content != anchor, f"{label}: the same ANCHOR")
        with open(os.path.join(d, "ANCHOR"), "wb") as f:
            f.write(content)
        rc, out, err = verify_dir()
        check(rc == 1, f"ANCHOR with {label} verified: {out}")
    os.unlink(os.path.join(d, "ANCHOR"))
    rc, out, err = verify_dir()
    check(rc == 1, f"a trimmed log without ANCHOR verified: {out}")


# ---- export ---------------------------------------------------------------------------------

def has_path(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return False
        obj = obj[part]
    return True


@test
def export_ocsf_required_fields_and_resume():
    log, ids, tmp, p2 = diff_log()
    with open(os.path.join(HERE, "ocsf-required.json")) as f:
        schema = json.load(f)
    out = read(log, "export", "--run", ids[3], "--format", "ocsf")
    events = [json.loads(x) for x in out.splitlines()]
    classes = {}
    for e in events:
        cls = str(e.get("class_uid"))
        check(cls in ("1007", "1001", "4001"), f"unexpected class {cls}")
        for p in schema["base"] + schema[cls]:
            check(has_path(e, p), f"class {cls} event lacks {p}: {e}")
        check(e["category_uid"] == schema["category"][cls], f"category of {cls}: {e}")
        check(e["type_uid"] == e["class_uid"] * 100 + e["activity_id"], f"type_uid: {e}")
        check(e["unmapped"]["run"] == ids[3], f"another run's event: {e}")
        classes[cls] = classes.get(cls, 0) + 1
    check(set(classes) == {"1007", "1001", "4001"}, f"classes exported: {classes}")
    nets = [e for e in events if e["class_uid"] == 4001]
    check(any(e["dst_endpoint"].get("port") == p2 for e in nets), "the extra port is missing")
    ecs = [json.loads(x) for x in read(log, "export", "--run", ids[3], "--format",
                                       "ecs").splitlines()]
    check(all("@timestamp" in d and "event" in d for d in ecs) and
          any(d.get("destination", {}).get("port") == p2 for d in ecs), "ECS export")
    # A shipper resumes after the last seq it sent: nothing is repeated, nothing lost.
    allj = [json.loads(x) for x in read(log, "export", "--format", "jsonl").splitlines()]
    seqs = [x["seq"] for x in allj]
    check(seqs == list(range(seqs[0], seqs[-1] + 1)), "jsonl export has gaps")
    check(all(b["prev"] == a["hash"] for a, b in zip(allj, allj[1:])),
          "jsonl: a prev is not the hash of the entry before it")
    mid = seqs[len(seqs) // 2]
    rest = [json.loads(x)["seq"] for x in
            read(log, "export", "--format", "jsonl", "--since", str(mid)).splitlines()]
    check(rest == [s for s in seqs if s > mid], "--since does not resume exactly")


# ---- a tampered log is said so --------------------------------------------------------------

@test
def tampered_log_is_stated_everywhere():
    import zlib
    tmp = tempfile.mkdtemp(prefix="rs-tamper-", dir=TMP)
    log = os.path.join(tmp, "log")
    rb = write_runbook(tmp, f"name: t\nsteps:\n  - name: one\n    run: {ACTIONS} create {tmp}/f\n")
    first, _ = run(log, rb, (), tmp)
    second, _ = run(log, rb, (), tmp)
    segs = sorted(f for f in os.listdir(log) if f.startswith("seg-"))
    last = os.path.join(log, segs[-1])
    subprocess.run(["chattr", "-i", "-a", last], capture_output=True)
    data = zlib.decompress(open(last, "rb").read())
    check(second.encode() in data and first.encode() not in data,
          "each run should be sealed in its own segment")
    with open(last, "wb") as f:
        f.write(zlib.compress(data.replace(b'"kind":"open"', b'"kind":"opeN"', 1)))
    rep = json.loads(read(log, "report", first, "--format", "json", want=1))
    check(rep["verified"] is False, "a report from a tampered log says verified")
    ver = next(s for s in rep["sections"] if s["id"] == "verification")
    check(ver["fields"]["result"].startswith("NOT VERIFIED"), f"result: {ver['fields']}")
    probs = ver["tables"][0]["rows"]
    check(any(p["kind"] == "modified" and p["file"] == segs[-1] for p in probs),
          f"the problem is not listed: {probs}")
    md = read(log, "report", first, want=1)
    check("NOT VERIFIED" in md, "the markdown report does not say NOT VERIFIED")
    html = read(log, "report", first, "--format", "html", want=1)
    check("did NOT verify" in html, "the HTML report does not say it did not verify")
    # The run in the changed segment has no verified record left: nothing is shown of it.
    rc, out, err = rs(["report", log, second, "--key-dir", KEYS])
    check(rc == 2 and "not in the log" in err, f"report of the tampered run: rc {rc} {err}")
    text = read(log, "runs", want=1)
    check(second not in text and "NOT VERIFIED" in text, f"runs: {text}")
    check(rs(["diff", log, first, first, "--key-dir", KEYS])[0] == 2, "diff of a bad log")
    rc, out, err = rs(["evidence", log, first, "--key-dir", KEYS, "-o", f"{tmp}/b.tar.gz"])
    check(rc == 1 and not os.path.exists(f"{tmp}/b.tar.gz"), f"evidence of a bad log: {rc}")
    out = read(log, "replay", first, want=1)
    check(out.startswith("NOT VERIFIED"), f"replay: {out[:100]}")
    out = read(log, "export", "--format", "jsonl", want=1)
    check(second not in out and first in out, "export of a tampered log")


# ---- the trigger ----------------------------------------------------------------------------

@test
def trigger_recorded_and_shown_first():
    tmp = tempfile.mkdtemp(prefix="rs-trig-", dir=TMP)
    log = os.path.join(tmp, "log")
    keygen()
    rb = write_runbook(tmp, "name: trig\nsteps:\n  - name: one\n    run: /bin/true\n")
    ev = os.path.join(tmp, "ev.jsonl")
    env = dict(os.environ, SUDO_USER="alice", SUDO_UID="1000",
               SSH_CONNECTION="192.0.2.7 50022 192.0.2.1 22")
    rc, out, err = rs(["run", "-q", "--key-dir", KEYS, "--log-dir", log, "--events", ev,
                       "--trigger", "ticket=INC-4711", "--trigger", "ci.job=https://ci/j/9",
                       rb], env=env)
    check(rc == 0, f"run rc {rc}: {err}")
    t = load(ev)[0]["trigger"]
    check(t["given"] == {"ticket": "INC-4711", "ci.job": "https://ci/j/9"}, f"given {t}")
    check(t["sudo_user"] == "alice" and t["sudo_uid"] == "1000", f"sudo {t}")
    check(t["ssh_connection"] == "192.0.2.7 50022 192.0.2.1 22", f"ssh {t}")
    with open("/proc/self/loginuid") as f:
        luid = int(f.read())
    check(t["loginuid"] == (None if luid == 4294967295 else luid), f"loginuid {t['loginuid']}")
    anc = t["ancestry"]
    check(anc[0]["pid"] == os.getpid() and
          anc[0]["exe"] == os.path.realpath(f"/proc/{os.getpid()}/exe") and
          any("test_report.py" in a for a in anc[0]["argv"]),
          f"the first ancestor is not this test: {anc[0]}")
    check(anc[-1]["pid"] == 1, f"ancestry does not reach PID 1: {[a['pid'] for a in anc]}")
    pids = [a["pid"] for a in anc]
    check(len(set(pids)) == len(pids), f"ancestry repeats: {pids}")
    md = read(log, "report", "last")
    run_sec = md.split("## Run", 1)[1]
    check(run_sec.lstrip().startswith("- **trigger ticket**: INC-4711"),
          f"the report does not start with the trigger: {run_sec[:200]}")
    check("invoker sudo\\_user**: alice" in md, "sudo user not in the report")
    line = read(log, "runs").splitlines()[0]
    check("[ticket=INC-4711, ci.job=https://ci/j/9, sudo alice, ssh 192.0.2.7" in line,
          f"runs line: {line}")
    rc, out, err = rs(["run", "--trigger", "no-equals-sign", rb])
    check(rc == 2 and "--trigger no-equals-sign" in err, f"bad --trigger: rc {rc} {err}")


# ---- runs: an interrupted run ---------------------------------------------------------------

@test
def runs_shows_interrupted_run():
    tmp = tempfile.mkdtemp(prefix="rs-int-", dir=TMP)
    log = os.path.join(tmp, "log")
    keygen()
    rb = write_runbook(tmp, "name: slow\nsteps:\n  - name: wait\n    run: sleep 30\n")
    p = subprocess.Popen([RUNSEAL, "run", "-q", "--key-dir", KEYS, "--log-dir", log, rb],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=3)
        raise Failure("the slow run ended early")
    except subprocess.TimeoutExpired:
        p.send_signal(2)  # SIGINT: runseal records the interruption
        p.wait(timeout=30)
    runs = [json.loads(x) for x in read(log, "runs", "--json").splitlines()]
    check(runs[0]["interrupted"] is True, f"not shown interrupted: {runs[0]}")
    text = read(log, "runs")
    check("interrupted" in text.splitlines()[0], f"runs text: {text}")


@test
def output_onto_a_device_or_a_pipe_writes_into_it():
    """-o names a device or a fifo: the report goes into it, and it stays what it was (an
    output written beside and renamed over it would replace /dev/null with a file)."""
    import threading
    tmp = tempfile.mkdtemp(prefix="rs-out-", dir=TMP)
    log = os.path.join(tmp, "log")
    rb = write_runbook(tmp, "name: out\nsteps:\n  - name: one\n    run: /bin/true\n")
    run_id, _ = run(log, rb, (), tmp)
    # A null device of the test's own: a failure must not break the machine's /dev/null.
    null = os.path.join(tmp, "null")
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    read(log, "report", run_id, "--format", "md", "-o", null)
    st = os.stat(null)
    check(stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3,
          f"the null device was replaced: {st}")
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    got = []
    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    t.start()
    read(log, "report", run_id, "--format", "json", "-o", fifo)
    t.join(10)
    check(got and json.loads(got[0])["run"] == run_id,
          f"the fifo got {got[:1]!r:.200}")
    check(stat.S_ISFIFO(os.stat(fifo).st_mode), "the fifo was replaced")
    check(not [f for f in os.listdir(tmp) if ".tmp" in f], f"left behind: {os.listdir(tmp)}")


@test
def killed_run_shows_no_run_end_and_its_recovery():
    import time
    tmp = tempfile.mkdtemp(prefix="rs-kill-", dir=TMP)
    log = os.path.join(tmp, "log")
    keygen()
    rb = write_runbook(tmp, "name: slow\nsteps:\n  - name: wait\n    run: exec sleep 30\n")
    ev = os.path.join(tmp, "ev.jsonl")
    p = subprocess.Popen([RUNSEAL, "run", "-q", "--key-dir", KEYS, "--log-dir", log,
                          "--events", ev, rb], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    step_pid = None
    try:
        for _ in range(100):
            recs = load(ev) if os.path.exists(ev) else []
            starts = [r for r in recs if r["kind"] == "step_start"]
            if starts:
                step_pid = starts[0]["pid"]
                break
            import time
            time.sleep(0.05)
        check(step_pid, "the step did not start")
        p.kill()  # SIGKILL: no run_end, the segment is left unsealed
        p.wait(timeout=30)
        # The guard kills the step; killed here first, it would find nothing to name.
        for _ in range(60):
            if not os.path.exists(f"/proc/{step_pid}"):
                break
            time.sleep(0.05)
    finally:
        if p.poll() is None:
            p.kill()
        if step_pid:
            try:
                os.kill(step_pid, 9)
            except ProcessLookupError:
                pass
    killed = load(ev)[0]["run"]
    nxt = write_runbook(tmp, "name: next\nsteps:\n  - name: one\n    run: /bin/true\n",
                        "next.yaml")
    # The killed run's guard may hold the log a moment longer, while it cleans up.
    import time
    for _ in range(40):
        rc, out, err = rs(["run", "-q", "--key-dir", KEYS, "--log-dir", log, nxt])
        if "log in use" not in err:
            break
        time.sleep(0.25)
    check(rc == 0, f"the next run: rc {rc}: {err[-400:]}")
    runs = [json.loads(x) for x in read(log, "runs", "--json").splitlines()]
    k = next(r for r in runs if r.get("run") == killed)
    check(k["interrupted"] and not k["ended"], f"killed run: {k}")
    check("interrupted (no run_end)" in read(log, "runs").splitlines()[0], "runs text")
    rep = json.loads(read(log, "report", killed, "--format", "json"))
    sec = {s["id"]: s for s in rep["sections"]}
    rec = sec["recoveries"]["tables"][0]["rows"]
    check(len(rec) == 1 and rec[0]["crashed segment"].startswith("seg-"),
          f"the recovery of the killed run's segment: {rec}")
    intr = sec["interruptions"]["tables"][0]["rows"]
    check(any("no run_end" in r["what"] for r in intr), f"interruptions: {intr}")
    check(any("no step_end" in r["detail"] for r in intr), f"interruptions: {intr}")
    found = [r for r in intr if r["what"].startswith("the next start")]
    if any(r.get("kind") == "run_interrupted" for r in load(ev)) or found or \
            "run_interrupted" in read(log, "export", "--format", "jsonl"):
        check(found, f"the next start's run_interrupted is not in the report: {intr}")
        got = {r["what"].rsplit(": ", 1)[1]: r["detail"] for r in found}
        check(str(step_pid) in got.get("killed_by_guard", "") or
              str(step_pid) in got.get("killed_now", ""),
              f"the next start's findings do not name the killed step {step_pid}: {got}")
    nxt = json.loads(read(log, "report", "last", "--format", "json"))
    rec = next(s for s in nxt["sections"] if s["id"] == "recoveries")["tables"][0]["rows"]
    check(rec == [], f"the next run's report claims the recovery: {rec}")


@test
def evidence_of_a_run_after_a_crash():
    """A run whose segment follows a crashed one: the bundle takes the crashed segment too
    (its recovery entry carries the chain) and anchors at the seal before it."""
    import time
    tmp = tempfile.mkdtemp(prefix="rs-evcrash-", dir=TMP)
    log = os.path.join(tmp, "log")
    ok = write_runbook(tmp, "name: ok\nsteps:\n  - name: one\n    run: /bin/true\n", "ok.yaml")
    run(log, ok, (), tmp)
    slow = write_runbook(tmp, "name: slow\nsteps:\n  - name: wait\n    run: exec sleep 30\n")
    ev = os.path.join(tmp, "ev.jsonl")
    p = subprocess.Popen([RUNSEAL, "run", "-q", "--key-dir", KEYS, "--log-dir", log,
                          "--events", ev, slow], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    step_pid = None
    try:
        for _ in range(100):
            starts = [r for r in (load(ev) if os.path.exists(ev) else [])
                      if r["kind"] == "step_start"]
            if starts:
                step_pid = starts[0]["pid"]
                break
            time.sleep(0.05)
        check(step_pid, "the step did not start")
        p.kill()
        p.wait(timeout=30)
    finally:
        if step_pid:
            try:
                os.kill(step_pid, 9)
            except ProcessLookupError:
                pass
    for _ in range(40):
        rc, out, err = rs(["run", "-q", "--key-dir", KEYS, "--log-dir", log, ok])
        if "log in use" not in err:
            break
        time.sleep(0.25)
    check(rc == 0, f"the run after the crash: rc {rc}: {err[-400:]}")
    killed = load(ev)[0]["run"]
    # seg 1: the first run, sealed; seg 2: the killed run, crashed; seg 3: the next start's
    # recovery and seal; seg 4: the last run.
    for run_id, want, anchored_at in ((killed, [2, 3, 4], 1), ("last", [4], 3)):
        bundle = os.path.join(tmp, f"b-{anchored_at}.tar.gz")
        rc, out, err = rs(["evidence", log, run_id, "--key-dir", KEYS, "-o", bundle])
        check(rc == 0, f"evidence {run_id} rc {rc}: {err}")
        names = subprocess.run(["tar", "tzf", bundle], capture_output=True, text=True,
                               check=True).stdout.split()
        segs = sorted(int(n[8:24]) for n in names if n.startswith("log/seg-"))
        check(segs == want and "log/ANCHOR" in names, f"bundle of {run_id}: {names}")
        away = tempfile.mkdtemp(prefix="rs-evcrash-away-", dir=TMP)
        shutil.copy(bundle, os.path.join(away, "b.tar.gz"))
        rc, out, err = rs(["verify", "b.tar.gz"], cwd=away)
        check(rc == 0 and f"from the ANCHOR seal of segment {anchored_at} " in out,
              f"bundle of {run_id}: verify rc {rc}: {out} {err}")
        rep = json.loads(rs(["report", os.path.join(away, "b.tar.gz"), run_id, "--format",
                             "json"])[1])
        check(rep["verified"] is True, f"report from the bundle of {run_id}")


def main():
    try:
        return run_all("report", "they load BPF programs", sys.argv[1:])
    finally:
        subprocess.run(["chattr", "-R", "-i", "-a", TMP], capture_output=True)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
