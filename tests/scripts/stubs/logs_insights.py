#!/usr/bin/env python3
"""A tiny CloudWatch Logs Insights interpreter for the aws stand-in (tests/scripts/stubs/aws).

It runs the subset of the query language scripts/report.sh uses (docs/platform.md §16) over log
events recorded from the real ``lambda`` binary, so the report's numbers come from executing the
queries, not from canned answers:

  commands  ``fields a, b``  ``filter COND``  ``stats AGG [as n], ... by KEY [as n], ...``
            ``sort F asc|desc``  ``limit N``, separated by ``|``; ``#`` starts a comment
  COND      ``f = "text"``, ``f != "text"``, ``f = 12``, ``ispresent(f)``, joined by ``and``
  AGG       ``count(*)``, ``count(f)`` (events where f exists), ``sum(f)``, ``avg(f)``, ``min(f)``,
            ``max(f)``: sum, avg, min and max over the events that have f (an event without it
            adds nothing, as "the values in the specified field" says); a group where no event
            has f gets no value for it
  KEY       a field, or ``bin(N m|h|d)`` (of @timestamp)

Anything else is a MalformedQueryException, as the service refuses a query it cannot parse.
JSON messages have their top-level keys discovered as fields; @timestamp and bin() come back as
``YYYY-MM-DD HH:MM:SS.mmm`` (UTC) and every value as a string, as GetQueryResults returns them.

Usage: logs_insights.py check QUERY_FILE            exit 2 with the reason when malformed
       logs_insights.py run QUERY_FILE EVENTS START END LIMIT   the GetQueryResults "results"
       logs_insights.py respond STATE_FILE EVENTS STATUS
           the whole GetQueryResults answer for the query kept in STATE_FILE (start, end, limit,
           polls; its text beside it, .query): Running while polls are left (each call uses one)
           or STATUS is Running, STATUS when it is not Complete, else the results
EVENTS holds one JSON object per line: {"timestamp": <ms>, "message": "<the line>"}.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import sys
import time

UNITS = {"m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


class Malformed(Exception):
    pass


def split_commands(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    out, cur, quote = [], "", None
    for ch in "\n".join(lines):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "|":
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    if any(not c for c in out):
        raise Malformed("an empty command between two '|'")
    return out


FIELD = r"@?[A-Za-z_][A-Za-z0-9_.]*"
COND = re.compile(rf"^(?:ispresent\(({FIELD})\)|({FIELD})\s*(=|!=)\s*(\"[^\"]*\"|-?[0-9]+(?:\.[0-9]+)?))$")
AGG = re.compile(rf"^(count|sum|avg|min|max)\((\*|{FIELD})\)(?:\s+as\s+({FIELD}))?$")
KEY = re.compile(rf"^(?:bin\(([0-9]+)\s*([a-z]+)\)|({FIELD}))(?:\s+as\s+({FIELD}))?$")


def parse(text: str) -> list[tuple]:
    plan = []
    for command in split_commands(text):
        word, _, rest = command.partition(" ")
        rest = " ".join(rest.split())
        if word == "fields":
            names = [f.strip() for f in rest.split(",")]
            if not all(re.fullmatch(FIELD, n) for n in names):
                raise Malformed(f"fields: {rest}")
            plan.append(("fields", names))
        elif word == "filter":
            conds = []
            for part in rest.split(" and "):
                m = COND.match(part.strip())
                if not m:
                    raise Malformed(f"filter: {part}")
                if m.group(1):
                    conds.append(("present", m.group(1), None))
                else:
                    value = m.group(4)
                    value = value[1:-1] if value.startswith('"') else float(value)
                    conds.append((m.group(3), m.group(2), value))
            plan.append(("filter", conds))
        elif word == "stats":
            aggs_text, sep, keys_text = rest.partition(" by ")
            aggs, keys = [], []
            for part in aggs_text.split(","):
                m = AGG.match(part.strip())
                if not m or (m.group(2) == "*" and m.group(1) != "count"):
                    raise Malformed(f"stats: {part}")
                aggs.append((m.group(1), m.group(2), m.group(3) or f"{m.group(1)}({m.group(2)})"))
            for part in keys_text.split(",") if sep else []:
                m = KEY.match(part.strip())
                if not m or (m.group(2) and m.group(2) not in UNITS):
                    raise Malformed(f"stats by: {part}")
                if m.group(1):
                    width = int(m.group(1)) * UNITS[m.group(2)]
                    keys.append(("bin", width, m.group(4) or f"bin({m.group(1)}{m.group(2)})"))
                else:
                    keys.append(("field", m.group(3), m.group(4) or m.group(3)))
            plan.append(("stats", aggs, keys))
        elif word == "sort":
            m = re.fullmatch(rf"({FIELD})(?:\s+(asc|desc))?", rest)
            if not m:
                raise Malformed(f"sort: {rest}")
            plan.append(("sort", m.group(1), m.group(2) == "desc"))
        elif word == "limit":
            if not re.fullmatch(r"[0-9]+", rest) or not 0 < int(rest) <= 10000:
                raise Malformed(f"limit: {rest}")
            plan.append(("limit", int(rest)))
        else:
            raise Malformed(f"unknown command '{word}'")
    return plan


def stamp(ms: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) + f".{int(ms % 1000):03d}"


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def matches(row: dict, conds) -> bool:
    for op, name, value in conds:
        have = row.get(name)
        if op == "present":
            ok = have is not None
        elif isinstance(value, float):
            ok = number(have) == value
        else:
            ok = have is not None and str(have) == value
        if (op == "!=") == ok:
            return False
    return True


def discovered(path: str) -> dict[str, bytes]:
    """The events' discovered fields as columns (None where an event has none), each marshalled
    on its own so that a query decodes only the fields it reads; kept beside the file so the many
    queries of a test run parse it once."""
    cache = path + ".marshal"
    try:
        if os.path.getmtime(cache) >= os.path.getmtime(path):
            with open(cache, "rb") as f:
                return marshal.load(f)
    except (OSError, ValueError, EOFError):
        pass
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            event = json.loads(line)
            row = {"@timestamp": event["timestamp"]}
            try:
                doc = json.loads(event["message"])
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                row.update({k: v for k, v in doc.items() if not k.startswith("@") and not isinstance(v, (dict, list))})
            docs.append(row)
    names = sorted({k for d in docs for k in d})
    # Repeated values interned: marshal then writes each once (small cache, fast load).
    columns = {k: marshal.dumps([sys.intern(v) if isinstance(v, str) else v for v in (d.get(k) for d in docs)]) for k in names}
    tmp = f"{cache}.{os.getpid()}"
    with open(tmp, "wb") as f:
        marshal.dump(columns, f)
    os.replace(tmp, cache)
    return columns


def referenced(plan) -> set[str] | None:
    """The fields a query reads (None: it shows every field, so all are needed)."""
    names = {"@timestamp"}
    shaped = False
    for step in plan:
        if step[0] == "fields":
            names.update(step[1])
            shaped = True
        elif step[0] == "filter":
            names.update(name for _op, name, _v in step[1])
        elif step[0] == "stats":
            names.update(field for _fn, field, _n in step[1])
            names.update(what for kind, what, _n in step[2] if kind == "field")
            shaped = True
        elif step[0] == "sort":
            names.add(step[1])
    return names if shaped else None


def run(plan, columns: dict[str, bytes], start_ms, end_ms, limit) -> list[dict]:
    wanted = referenced(plan)
    names = [k for k in columns if wanted is None or k in wanted]
    events = {k: marshal.loads(columns[k]) for k in set(names) | {"@timestamp"}}
    stamps = events["@timestamp"]
    rows = []
    for i, at in enumerate(stamps):
        if start_ms <= at <= end_ms:
            rows.append({k: events[k][i] for k in names if events[k][i] is not None})
    times = {"@timestamp"}
    for step in plan:
        if step[0] == "fields":
            rows = [{k: r[k] for k in step[1] if k in r} for r in rows]
        elif step[0] == "filter":
            rows = [r for r in rows if matches(r, step[1])]
        elif step[0] == "stats":
            _, aggs, keys = step
            groups: dict = {}
            for r in rows:
                key = []
                for kind, what, _name in keys:
                    key.append(r["@timestamp"] // (what * 1000) * what * 1000 if kind == "bin" else r.get(what))
                groups.setdefault(tuple(key), []).append(r)
            out = []
            for key, members in groups.items():
                o = {}
                for (kind, _what, name), value in zip(keys, key):
                    if value is not None:
                        o[name] = value
                    if kind == "bin":
                        times.add(name)
                for fn, field, name in aggs:
                    vals = [m[field] for m in members if field != "*" and m.get(field) is not None]
                    if fn == "count":
                        o[name] = len(members) if field == "*" else len(vals)
                    elif vals:
                        nums = [number(v) for v in vals] if field not in times else vals
                        nums = [n for n in nums if n is not None]
                        if nums:
                            o[name] = {"sum": sum, "avg": lambda n: sum(n) / len(n), "min": min, "max": max}[fn](nums)
                            if field in times:
                                times.add(name)
                out.append(o)
            rows = out
        elif step[0] == "sort":
            _, name, desc = step
            rows.sort(key=lambda r: (r.get(name) is None, number(r.get(name)) if number(r.get(name)) is not None else str(r.get(name))), reverse=desc)
        elif step[0] == "limit":
            rows = rows[: step[1]]
    rows = rows[:limit]

    def text(name, v):
        if name in times:
            return stamp(v)
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return v if isinstance(v, str) else json.dumps(v)

    return [[{"field": k, "value": text(k, v)} for k, v in r.items()] for r in rows]


def respond(state_file: str, events_file: str, status: str) -> int:
    with open(state_file, encoding="utf-8") as f:
        state = json.load(f)
    results: list = []
    if state["polls"] > 0 or status == "Running":
        state["polls"] -= 1
        with open(state_file, "w", encoding="utf-8") as f:
            json.dump(state, f)
        status = "Running"
    elif status == "Complete":
        with open(state_file[: -len(".json")] + ".query", encoding="utf-8") as f:
            plan = parse(f.read())
        results = run(plan, discovered(events_file), int(state["start"]) * 1000, int(state["end"]) * 1000 + 999, int(state["limit"]))
    n = float(len(results))
    sys.stdout.write(json.dumps({"results": results, "statistics": {"recordsMatched": n, "recordsScanned": n, "bytesScanned": 0.0}, "status": status}))
    return 0


def main(argv: list[str]) -> int:
    if argv[1] == "respond":
        return respond(argv[2], argv[3], argv[4])
    try:
        plan = parse(open(argv[2], encoding="utf-8").read())
    except Malformed as err:
        print(err, file=sys.stderr)
        return 2
    if argv[1] == "check":
        return 0
    events = discovered(argv[3])
    results = run(plan, events, int(argv[4]) * 1000, int(argv[5]) * 1000 + 999, int(argv[6]))
    sys.stdout.write(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
