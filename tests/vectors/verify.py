#!/usr/bin/env python3
"""An independent verifier of the runseal sealed log, written from docs/FORMAT.md alone (not
from user/verify.c), to show that the page is enough: it must give the verdict of every
case in tests/vectors/cases (and `ok` on tests/vectors/log).

    python3 tests/vectors/verify.py LOGDIR ROOT.PUB EPOCHS.PUB      prints the verdict
    python3 tests/vectors/verify.py --cases [DIR]                   checks every case

The verdict is `ok`, or `failed` and the sorted kinds of the errors (as the expect files
write it). Needs python3-cryptography for Ed25519.
"""
import calendar
import hashlib
import json
import os
import re
import sys
import zlib

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # the runner counts the check as skipped, with this reason
    print("skip: the independent verifier needs python3-cryptography (Ed25519)")
    print("vectors: 0 passed, 0 failed, 1 skipped")
    sys.exit(0)

LINE_MAX = 1 << 20
SEGMENT_MAX = 256 << 20
HEX = re.compile(rb"[0-9a-f]+\Z")
PREFIX = re.compile(rb'\{"seq":(0|[1-9][0-9]*),"prev":"([0-9a-f]{64})",')
TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{9})Z\Z")
SEG = re.compile(r"seg-(\d{16})\.log(\.z)?\Z")
SIG_TAIL = re.compile(rb',"sig":"([0-9a-f]{128})"\}\Z')


class Unusable(Exception):
    pass


def verify_sig(pub, msg, sig):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def u64(v):
    return v.to_bytes(8, "big")


def number(s):
    if not re.fullmatch(r"0|[1-9][0-9]*", s) or int(s) >= 1 << 64:
        raise ValueError(s)
    return int(s)


def hexbytes(s, n):
    if len(s) != 2 * n or not HEX.match(s.encode()):
        raise ValueError(s)
    return bytes.fromhex(s)


def parse_time(s):
    """Unix nanoseconds of the 30-byte time form, or None."""
    m = TIME.match(s) if isinstance(s, str) and len(s) == 30 else None
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    if y < 1970 or not 1 <= mo <= 12 or h > 23 or mi > 59 or sec > 59:
        return None
    if not 1 <= d <= calendar.monthrange(y, mo)[1]:
        return None
    return calendar.timegm((y, mo, d, h, mi, sec)) * 10**9 + int(m.group(7))


# ---- keys (FORMAT.md "Keys") ----------------------------------------------------------------

class Keys:
    def __init__(self, root_pub, epochs_pub):
        lines = open(root_pub, "rb").read().split(b"\n")
        f = lines[0].decode().split(" ")
        if len(lines) != 2 or lines[1] or len(f) != 3 or f[0] != "runseal-root-v1":
            raise Unusable("root.pub")
        self.host = hexbytes(f[1], 16)
        self.root = hexbytes(f[2], 32)
        self.root_id = hashlib.sha256(self.root).hexdigest()
        data = open(epochs_pub, "rb").read()
        if not data.endswith(b"\n"):
            raise Unusable("epochs.pub")
        lines = data[:-1].decode().split("\n")
        h = lines[0].split(" ")
        if len(h) != 8 or h[0] != "runseal-epochs-v1" or h[1] != self.host.hex() or \
                h[2] != self.root_id:
            raise Unusable("epochs.pub header")
        self.t0, self.L, self.N, self.mi, self.slack = (number(x) for x in h[3:])
        if not (self.L > 0 and 0 < self.N <= 1000000 and self.mi > 0 and
                self.t0 + self.N * self.L <= 2**64 - 1 and self.mi + self.slack < self.L):
            raise Unusable("schedule numbers")
        if len(lines) != self.N + 1:
            raise Unusable("epoch lines")
        self.pub, self.cert = [], []
        for e, line in enumerate(lines[1:]):
            f = line.split(" ")
            if len(f) != 3 or number(f[0]) != e:
                raise Unusable(f"epochs.pub line {e + 2}")
            self.pub.append(hexbytes(f[1], 32))
            self.cert.append(hexbytes(f[2], 64))
        self.cert_ok = {}

    def certified(self, e):
        """Only the certificates of epochs in use are checked."""
        if e not in self.cert_ok:
            msg = (b"runseal-epoch-v1\0" + self.host + u64(e) + u64(self.t0 + e * self.L) +
                   u64(self.t0 + (e + 1) * self.L) + u64(self.mi) + u64(self.slack) +
                   self.pub[e])
            self.cert_ok[e] = verify_sig(self.root, msg, self.cert[e])
        return self.cert_ok[e]

    def seal_problem(self, line, fields):
        """The kind of what is wrong with a seal's key or signature, or None."""
        e = fields.get("epoch")
        if not isinstance(e, int) or e >= self.N:
            return "epoch"
        try:
            key = hexbytes(fields.get("epoch_key", ""), 32)
        except (ValueError, AttributeError):
            return "malformed"
        if key != self.pub[e] or not self.certified(e):
            return "epoch"
        m = SIG_TAIL.search(line)
        signed = line[:m.start()] if m else b""
        if not m or len(signed) > 1024:
            return "malformed"
        if not verify_sig(key, b"runseal-seal-v2\0" + self.host + signed,
                          bytes.fromhex(m.group(1).decode())):
            return "bad_signature"
        return None


# ---- entries (FORMAT.md "Entries") ----------------------------------------------------------

class Pairs(list):
    pass


def no_constants(name):
    raise ValueError(name)


def parse_entry(line):
    """The top-level fields of one entry, or None when it is not one JSON object with unique
    top-level keys, nesting at most 32 deep, a string kind and a valid time."""
    try:
        obj = json.loads(line.decode("utf-8", "surrogateescape"), object_pairs_hook=Pairs,
                         parse_constant=no_constants)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, Pairs) or depth(obj) > 32:
        return None
    keys = [k for k, _ in obj]
    if len(set(keys)) != len(keys):
        return None
    f = {k: plain(v) for k, v in obj}
    if not isinstance(f.get("kind"), str) or parse_time(f.get("time")) is None:
        return None
    return f


def plain(v):
    return dict(v) if isinstance(v, Pairs) else v


def depth(v):
    if isinstance(v, Pairs):
        return 1 + max((depth(x) for _, x in v), default=0)
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    return 0


def entry_hash(line):
    return hashlib.sha256(b"\0" + line).digest()


# ---- the walk (FORMAT.md "Verifying") --------------------------------------------------------

class Walk:
    def __init__(self, keys, d, anchored=False):
        self.k, self.dir, self.anchored = keys, d, anchored
        self.errors, self.warnings = set(), set()
        self.prev, self.expect = b"\0" * 32, 0
        self.resync = self.after_malformed = False
        self.crashes = []       # unsealed segments awaiting their recovery entry
        self.last_seal = None   # (seq, line, time)
        self.prev_seal = None
        self.genesis_time = None
        self.keys_bad = False
        self.last_epoch = None

    def err(self, kind):
        self.errors.add(kind)

    def segments(self):
        found = {}
        for name in os.listdir(self.dir):
            m = SEG.match(name)
            if name in ("HEAD", "LOCK") or (self.anchored and name == "ANCHOR"):
                continue
            if not m or int(m.group(1)) == 0:
                self.warnings.add("unexpected")
                continue
            n = int(m.group(1))
            if n in found:
                self.warnings.add("unexpected")  # .log beside its .log.z: the .z counts
            if m.group(2) or n not in found:
                found[n] = name
        return [(n, found[n]) for n in sorted(found)]

    def read(self, name):
        data = open(os.path.join(self.dir, name), "rb").read()
        if name.endswith(".z"):
            d = zlib.decompressobj()
            out = d.decompress(data, SEGMENT_MAX + 1)
            if not d.eof or d.unused_data or d.unconsumed_tail or len(out) > SEGMENT_MAX:
                return None
            return out
        return data if len(data) <= SEGMENT_MAX else None

    def anchor(self):
        """FORMAT.md "Anchored logs": the seal the log starts after, checked as a seal; the
        first segment it allows, 1 without one."""
        path = os.path.join(self.dir, "ANCHOR")
        if not self.anchored or not os.path.exists(path):
            return 1
        data = open(path, "rb").read()
        m = PREFIX.match(data)
        f = parse_entry(data[:-1]) if m and data.endswith(b"\n") and \
            b"\n" not in data[:-1] else None
        line = data[:-1]
        try:
            seq, n = int(m.group(1)), f["segment"]
            ok = (f["kind"] == "seal" and isinstance(n, int) and n > 0 and
                  f["first_seq"] + f["count"] == seq and
                  hexbytes(f["last_hash"], 32) == bytes.fromhex(m.group(2).decode()))
        except (AttributeError, KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            self.err("malformed")
            self.resync = True
            return 1
        t, k, e = parse_time(f["time"]), self.k, f.get("epoch")
        if k.seal_problem(line, f) or not isinstance(e, int) or \
                not k.t0 * 10**9 + e * k.L * 10**9 <= t < k.t0 * 10**9 + (e + 1) * k.L * 10**9:
            self.err("bad_signature")
            self.resync = True
            return n + 1
        self.prev, self.expect = entry_hash(line), seq + 1
        self.last_seal, self.last_epoch = (seq, line, t), e
        return n + 1

    def run(self):
        segs = self.segments()
        expect_n = self.anchor()
        if not segs:
            self.err("missing_segment")
        for i, (n, name) in enumerate(segs):
            if n < expect_n:
                self.err("malformed")  # not after the ANCHOR seal
                self.resync = True
            elif n != expect_n:
                self.err("missing_segment")
                self.resync = True
                self.crashes = []
            self.segment(n, name, i + 1 == len(segs))
            expect_n = n + 1
        if self.crashes:
            self.err("truncated")
        self.head()
        return self

    def segment(self, n, name, last):
        data = self.read(name)
        if data is None:
            self.err("malformed")
            self.resync = True
            self.crashes = []
            return
        z = name.endswith(".z")
        parts = data.split(b"\n")
        torn = parts.pop()
        # The cadence's base: the last seal before this segment, or the genesis.
        base = self.last_seal[2] if self.last_seal else self.genesis_time
        s = {"n": n, "entries": 0, "sealed": False, "error": False, "min": None, "max": None,
             "cad_hit": False, "valid": 0, "last_seq": self.expect - 1, "base": base}
        after_crash = bool(self.crashes)
        pending = self.crashes
        self.crashes = []
        off = 0
        for line in parts:
            self.entry(s, line, pending, after_crash)
            after_crash = False
            off += len(line) + 1
            if not s["sealed"]:
                s["valid"] = off
        for c in pending:
            if not c["named"]:
                self.err("truncated")
        if torn:
            if s["sealed"]:
                self.err("malformed")
            elif z:
                self.err("truncated")
        if not s["sealed"]:
            if s["cad_hit"] and not s["error"] and not self.keys_bad:
                self.err("late_record")
            if z:
                if not s["error"]:
                    self.err("truncated")
            elif not last:
                self.crashes.append({"name": name, "n": n, "valid": s["valid"],
                                     "torn": len(data) - s["valid"], "last_seq": s["last_seq"],
                                     "max": s["max"], "named": False})
            else:
                self.warnings.add("unsealed_tail")

    def chain(self, s, seq, prev, after_crash):
        ok = True
        if self.resync:
            self.resync = False
        elif self.after_malformed and seq == self.expect + 1:
            pass  # the malformed line took a seq and is not in the chain
        elif after_crash and seq > self.expect:
            pass  # entries lost at the crash are the recovery entry's to explain
        elif seq != self.expect or prev != self.prev:
            self.err("modified" if seq == self.expect else
                     "deleted" if seq > self.expect else "inserted")
            s["error"] = True
            ok = False
        self.after_malformed = False
        return ok

    def entry(self, s, line, pending, after_crash):
        k = self.k
        if s["sealed"]:
            if not s["error"]:
                self.err("inserted")
            s["error"] = True
        m = PREFIX.match(line) if len(line) <= LINE_MAX else None
        if not m:
            self.err("malformed")
            s["error"] = True
            self.after_malformed = True  # it takes a seq, expect + 1 comes next
            s["entries"] += 1
            return
        seq, prev = int(m.group(1)), bytes.fromhex(m.group(2).decode())
        self.chain(s, seq, prev, after_crash)
        self.prev, self.expect = entry_hash(line), seq + 1
        f = parse_entry(line)
        if f is None:
            self.err("malformed")
            s["error"] = True
            s["entries"] += 1
            return
        kind, t = f["kind"], parse_time(f["time"])
        first_kind = "genesis" if s["n"] == 1 else "segment"
        if s["entries"] == 0 and kind != first_kind and not s["error"]:
            self.err("malformed")
        if s["n"] == 1 and s["entries"] == 1 and kind != "segment" and not s["error"]:
            self.err("malformed")
        if kind == "seal":
            self.seal(s, line, f, seq, prev, t, pending)
            return
        s["min"] = t if s["min"] is None else min(s["min"], t)
        s["max"] = t if s["max"] is None else max(s["max"], t)
        if kind == "genesis":
            self.genesis(s, f, seq)
            if self.genesis_time is None:
                self.genesis_time = t
            if s["base"] is None:
                s["base"] = t
        elif kind == "segment":
            self.segment_entry(s, f)
        elif kind == "recovery":
            self.recovery(s, f, pending)
        elif kind == "loss":
            self.warnings.add("loss")
        if s["base"] is not None and t > s["base"] + (k.mi + k.slack) * 10**9:
            s["cad_hit"] = True
        s["entries"] += 1
        s["last_seq"] = seq

    def genesis(self, s, f, seq):
        k = self.k
        if seq != 0 or s["n"] != 1 or s["entries"] != 0:
            self.err("malformed")
            return
        need = ("format", "host_id", "root_key", "t0", "epoch_seconds", "epochs",
                "max_interval", "late_slack")
        if any(x not in f for x in need):
            self.err("malformed")
            return
        if f["format"] != "runseal-log/1":
            self.err("malformed")
        if f["root_key"] != k.root_id:
            self.err("wrong_key")
            self.keys_bad = True
        if f["host_id"] != k.host.hex():
            self.err("wrong_host")
            self.keys_bad = True
        if not self.keys_bad and (f["t0"], f["epoch_seconds"], f["epochs"], f["max_interval"],
                                  f["late_slack"]) != (k.t0, k.L, k.N, k.mi, k.slack):
            self.err("wrong_key")
            self.keys_bad = True

    def segment_entry(self, s, f):
        if s["entries"] != (1 if s["n"] == 1 else 0):
            if not s["error"]:
                self.err("malformed")
            return
        if f.get("segment") != s["n"]:
            self.err("malformed")
        if f.get("host_id") != self.k.host.hex() and not self.keys_bad:
            self.err("wrong_host")

    def recovery(self, s, f, pending):
        if s["entries"] != 1:
            self.err("malformed")
            return
        c = next((c for c in pending if c["name"] == f.get("file")), None)
        if c is None or f.get("segment") != c["n"]:
            self.err("malformed")
            return
        c["named"] = True
        self.warnings.add("recovery")
        if c["valid"] < f.get("valid_bytes", -1) or c["last_seq"] != f.get("last_seq"):
            self.err("truncated")
        elif c["valid"] > f.get("valid_bytes", -1) or c["torn"] != f.get("torn_bytes"):
            self.err("modified")

    def seal(self, s, line, f, seq, prev, t, pending):
        k = self.k
        s["sealed"] = True
        try:
            last = hexbytes(f["last_hash"], 32)
            first, count, e = f["first_seq"], f["count"], f["epoch"]
        except (KeyError, ValueError, TypeError):
            self.err("malformed")
            return
        if not s["error"]:
            if last != prev or f.get("segment") != s["n"] or \
                    first + count != seq or count != s["entries"]:
                self.err("modified")
        if not self.keys_bad:
            p = k.seal_problem(line, f)
            if p:
                self.err(p)
            elif not k.t0 * 10**9 + e * k.L * 10**9 <= t < k.t0 * 10**9 + (e + 1) * k.L * 10**9:
                self.err("epoch")
            elif self.last_epoch is not None and e < self.last_epoch:
                self.err("epoch")
            limit, slack = (k.mi + k.slack) * 10**9, k.slack * 10**9
            if s["entries"] and not s["error"]:
                if t - s["min"] > limit:
                    self.err("late_record")
                if s["max"] > t + slack:
                    self.err("future_record")
            for c in pending:
                if c["max"] is not None and c["max"] > t + slack:
                    self.err("future_record")
        self.last_epoch = e if self.last_epoch is None else max(e, self.last_epoch)
        self.prev_seal = self.last_seal
        self.last_seal = (seq, line, t)

    def head(self):
        path = os.path.join(self.dir, "HEAD")
        if not os.path.exists(path):
            if self.last_seal:
                self.err("head_missing")
            return
        data = open(path, "rb").read()
        m = PREFIX.match(data)
        if not data.endswith(b"\n") or b"\n" in data[:-1] or not m:
            self.err("head_mismatch")
            return
        line, hseq = data[:-1], int(m.group(1))
        if self.last_seal and line == self.last_seal[1]:
            return
        f = parse_entry(line)
        if not self.keys_bad and (f is None or self.k.seal_problem(line, f)):
            self.err("bad_signature")
            return
        if not self.last_seal or hseq > self.last_seal[0]:
            self.err("truncated")
        elif self.prev_seal and line == self.prev_seal[1]:
            self.warnings.add("head_stale")
        else:
            self.err("head_mismatch")


def verdict(log, root_pub, epochs_pub, anchored=False):
    try:
        keys = Keys(root_pub, epochs_pub)
    except (Unusable, ValueError, OSError):
        return "unusable"
    w = Walk(keys, log, anchored).run()
    return "ok" if not w.errors else "failed " + " ".join(sorted(w.errors))


def check_cases(top):
    bad = n = 0
    for name in sorted(os.listdir(os.path.join(top, "cases"))):
        d = os.path.join(top, "cases", name)
        kd = d if os.path.exists(os.path.join(d, "epochs.pub")) else top
        want = [l for l in open(os.path.join(d, "expect")).read().splitlines()
                if not l.startswith("#")][-1]
        got = verdict(os.path.join(d, "log"), os.path.join(kd, "root.pub"),
                      os.path.join(kd, "epochs.pub"), os.path.exists(os.path.join(d, "anchored")))
        n += 1
        if got != want:
            bad += 1
            print(f"FAIL {name}: expected {want!r}, this verifier says {got!r}")
        else:
            print(f"ok   {name}: {got}")
    got = verdict(os.path.join(top, "log"), os.path.join(top, "root.pub"),
                  os.path.join(top, "epochs.pub"))
    n += 1
    if got != "ok":
        bad += 1
        print(f"FAIL log: {got}")
    print(f"vectors: {n - bad} passed, {bad} failed, 0 skipped")
    return 1 if bad else 0


def main(argv):
    if argv[1:2] == ["--cases"]:
        return check_cases(argv[2] if len(argv) > 2 else os.path.dirname(os.path.abspath(__file__)))
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    v = verdict(*argv[1:])
    print(v)
    return 0 if v == "ok" else 2 if v == "unusable" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
