"""The small test runner both integration suites share: register tests with @test, fail
them with check(), skip one whose optional dependency is missing with skip(reason), and run
them with run_all(), which prints one line per test and "NAME: N passed, M failed, K skipped"
last (the line tests/run-all reads). Capture, sealing and verify tests never skip: what they
need, scripts/install-deps installs."""
import os
import sys
import time

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(Exception):
    pass


class Skipped(Exception):
    pass


def skip(reason):
    raise Skipped(reason)


def check(cond, msg):
    if not cond:
        raise Failure(msg)



def alive(pid):
    """True for a process that runs (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def cgroup2_root():
    """Where the cgroup v2 hierarchy is mounted (hybrid hosts too), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if " - cgroup2 " in line:
                return line.split()[4]
    return None


def pids_with(arg):
    """Live processes, this one aside, whose command line contains arg."""
    found = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if arg.encode() in f.read():
                    found.append(int(d))
        except OSError:
            pass
    return [p for p in found if p != os.getpid() and alive(p)]

def run_all(name, why_root, only=()):
    """Runs the registered tests (or those named in only); returns the exit status."""
    if os.geteuid() != 0:
        print(f"{name} tests need root ({why_root})")
        return 2
    passed = failed = skipped = 0
    for t in TESTS:
        if only and t.__name__ not in only:
            continue
        start = time.monotonic()
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__} ({time.monotonic() - start:.1f}s)")
        except Skipped as e:
            skipped += 1
            print(f"skip {t.__name__}: {e}")
        except Exception as e:  # a crash in a test is a failure of that test, not of the run
            failed += 1
            print(f"FAIL {t.__name__}: {type(e).__name__}: {e}")
        sys.stdout.flush()
    print(f"{name}: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0
