"""user/schema.c's table read from the source, so that tests can hold the records of real
runs to it: {kind: set of top-level fields}. The table's strings are C literals, possibly
split over lines and built from the macros defined at the top of the file."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUFFIXES = ("_detached", "_outside_root", "_truncated")


def _strings(expr, macros):
    """The words of a C string expression: literals and macro names, concatenated."""
    out = []
    for lit, name in re.findall(r'"((?:[^"\\]|\\.)*)"|\b([A-Z_]+)\b', expr):
        out.append(lit if not name else macros.get(name, ""))
    return "".join(out)


def load():
    src = open(os.path.join(ROOT, "user", "schema.c")).read()
    macros = {}
    for name, expr in re.findall(r'^#define ([A-Z_]+)\s+(".*")$', src, re.M):
        macros[name] = _strings(expr, macros)
    scopes = {m[0]: m[1].split() for m in
              re.findall(r'\[(SCOPE_[A-Z]+)\] = "([^"]*)"', src)}
    table = {}
    for scope_name, name, scope, body in re.findall(
            r'\[(REC_[A-Z_]+)\] = \{"([a-z_]+)", (SCOPE_[A-Z]+), [^,]+,(.*?)\},\n', src, re.S):
        table[name] = set(scopes[scope]) | set(_strings(body, macros).split())
    return table


def unknown_fields(record, table):
    """The top-level keys of a record (a dict) that its kind's schema does not list."""
    fields = table.get(record.get("kind"))
    if fields is None:
        return ["kind " + repr(record.get("kind"))]
    bad = []
    for k in record:
        base = k
        for s in SUFFIXES:
            if base.endswith(s) and base[:-len(s)] in fields:
                base = base[:-len(s)]
        if base not in fields and k not in ("seq", "prev"):
            bad.append(k)
    return bad
