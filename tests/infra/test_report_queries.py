"""The report queries (queries/report/*.kql, run by scripts/report.sh), executed: their `let` lines are
replaced as the script replaces them, and they run on DuckDB (duckdb-kql) over tables made from
telemetry the real handler sent, rebased in time into a day of two devices' heartbeats with gaps, an
outage each device reported (one of them twice), a change of public address, and noise: rows the
Functions host logs and heartbeats the handler refused. The expected numbers are worked out by hand
in the comments. Last, scripts/report.sh itself runs against an `az` stand-in that answers each query
by executing it on the same tables, so the script's own substitution and parsing are checked too."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from alert_sim import Dataset
from appinsights import at, every_minute, host_request_row
from conftest import QUERIES, REPO

REPORT_QUERIES = QUERIES / "report"
SCRIPT = REPO / "scripts" / "report.sh"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DEV_A_OLD_IP, DEV_A_NEW_IP, DEV_B_IP = "203.0.113.7", "203.0.113.99", "198.51.100.20"

# The `let` lines scripts/report.sh replaces, per query file.
PARAMETERS = {
    "report-devices.kql": ("since", "only_device"),
    "report-outages.kql": ("since", "silence", "only_device"),
    "report-ip-changes.kql": ("since", "only_device"),
    # The evidence report's (scripts/report.sh --month/--from/--to; tests/infra/test_report_period.py).
    **{f"report-period-{n}.kql": ("since", "until", "silence", "only_device") for n in ("devices", "outages", "gaps", "ip-changes", "quality")},
}
DEFAULTS = {"since": "ago(7d)", "silence": "5m", "only_device": '""'}


def query_text(name: str, **values: str) -> str:
    """The query with its `let NAME = ...;` lines replaced, as scripts/report.sh does."""
    text = (REPORT_QUERIES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text, n = re.subn(rf"^let {key} = .*;$", lambda _: f"let {key} = {value};", text, flags=re.M)
        assert n == 1, f"{name}: `let {key} = ...;` occurs {n} times"
    return text


def kql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# (id of the tables, schema variant) -> (the tables, kept so their id stays unique; their Dataset)
_LOADED: dict[tuple[int, str], tuple[object, Dataset]] = {}


def run(name: str, tables, now=T0, success_type="bool", **values: str):
    """The query's rows over these tables; a table set is loaded into DuckDB once per schema variant."""
    key = (id(tables), success_type)
    if key not in _LOADED:
        _LOADED[key] = (tables, Dataset(tables, success_type))
    return _LOADED[key][1].query(query_text(name, **values), now)


# -- the simulated day ------------------------------------------------------------------------------
#
# T0 = 2026-11-25 12:00 UTC. Heartbeats every minute at :30 from T0-24h+30s (12:00:30 the day
# before) to T0-30s (11:59:30), except:
#   dev-a  silent from 05:59:30 to 09:00:30 (no agent report: a gap of 3h01m = 10860 s), and from
#          09:59:30 to 10:08:30, which is the outage it reported (10:00:00-10:07:30, isp), twice;
#          its public address changes at 10:08:30 from 203.0.113.7 to 203.0.113.99.
#   dev-b  silent from 08:00:30 to 08:07:30 (a 7-minute gap, no report) and reports a dns outage
#          11:00:00-11:02:00 while its heartbeats carry on (the agent saw DNS fail, not the cloud).
# Noise: every minute of dev-a's long gap, a row the Functions host logs (name Ping, success true, no
# emitter) and a refused heartbeat (as the handler logged it).


def clock(hh: int, mm: int, ss: int = 0) -> datetime:
    """A time of the simulated day: today (T0's date) up to T0, else the day before."""
    when = T0.replace(hour=hh, minute=mm, second=ss)
    return when if when <= T0 else when - timedelta(days=1)


@pytest.fixture(scope="module")
def day(captured_rows):
    requests = captured_rows["all"]["requests"]
    a_old, a_new = [r for r in requests if r["success"] and r["customDimensions"]["device"] == "dev-a"][:2]
    assert (a_old["customDimensions"]["client_ip"], a_new["customDimensions"]["client_ip"]) == (DEV_A_OLD_IP, DEV_A_NEW_IP)
    b = captured_rows["dev-b"]
    first, last = T0 - 24 * HOUR + 30 * SEC, T0 - 30 * SEC
    a = (
        every_minute(a_old, first, clock(5, 59, 30))
        + every_minute(a_old, clock(9, 0, 30), clock(9, 59, 30))
        + every_minute(a_new, clock(10, 8, 30), last)
    )
    b_rows = every_minute(b, first, clock(8, 0, 30)) + every_minute(b, clock(8, 7, 30), last)
    noise = []
    for minute in range(0, 181):
        when = clock(6, 0) + minute * MIN
        noise.append(host_request_row(a_old, when))
        noise += [at(r, when) for r in captured_rows["refused"]]
    outage_a, outage_b = captured_rows["outage-a"], captured_rows["outage-b"]
    events = [at(outage_a, clock(10, 8, 31)), at(outage_a, clock(10, 20)), at(outage_b, clock(11, 5))]  # a resent
    return {
        "tables": {"requests": a + b_rows + noise, "customEvents": events},
        "a": a,
        "b": b_rows,
    }


# -- the let lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_each_parameter_line_occurs_exactly_once(name):
    """report.sh replaces whole `let` lines; each must be there exactly once, or a replacement would
    silently do nothing (or twice). The files hold no other parameter."""
    text = (REPORT_QUERIES / name).read_text(encoding="utf-8")
    for key in PARAMETERS[name]:
        assert len(re.findall(rf"^let {key} = .*;$", text, re.M)) == 1, key
    assert sorted(p.name for p in REPORT_QUERIES.glob("*.kql")) == sorted(PARAMETERS)


# -- devices ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("success_type", ["bool", "string"])
def test_devices_uptime_heartbeats_last_heartbeat_and_address(day, success_type):
    """Over the last 24 hours (288 five-minute slots from 12:00 yesterday):
    dev-a misses the 36 slots 06:00-08:55 and the slot 10:00 (10:05 holds 10:08:30): 251/288 = 87.15 %;
    its heartbeats: 1440 minutes less 180 (06:00:30-08:59:30) less 8 (10:00:30-10:07:30) = 1252.
    dev-b misses no slot (08:00:30 and 08:07:30 fall in 08:00 and 08:05): 100 %, 1440 - 6 = 1434.
    The host's rows (no device) and the refused heartbeats (device "unknown") are no device."""
    rows = run("report-devices.kql", day["tables"], success_type=success_type, since="ago(24h)")
    assert [(r["device"], r["uptime_pct"], r["heartbeats"], r["public_ip"]) for r in rows] == [
        ("dev-a", 87.15, 1252, DEV_A_NEW_IP),
        ("dev-b", 100.0, 1434, DEV_B_IP),
    ]
    assert len(day["a"]) == 1252 and len(day["b"]) == 1434
    assert {r["last_heartbeat"] for r in rows} == {(T0 - 30 * SEC).replace(tzinfo=None)}


@pytest.mark.parametrize(
    "since, expected",
    [
        # A week: dev-a's first heartbeat in it is 12:00:30 yesterday, so the same 288 slots count.
        ("ago(7d)", 87.15),
        # From 00:00 today: 144 slots, 36 + 1 missing: 107/144.
        ("datetime(2026-11-25T00:00:00Z)", 74.31),
        # From 00:02: slots count from the period start, not from the slot (00:00) that holds the first
        # heartbeat (00:02:30): 143.6 slots, 107 of them hold heartbeats: 74.51 %.
        ("datetime(2026-11-25T00:02:00Z)", 74.51),
        # The last 2 hours: the first heartbeat is 10:08:30, slots 10:05-11:55 all hold one.
        ("ago(2h)", 100.0),
    ],
)
def test_devices_uptime_follows_the_period(day, since, expected):
    rows = run("report-devices.kql", day["tables"], since=since)
    assert {r["device"]: r["uptime_pct"] for r in rows}["dev-a"] == expected


def test_devices_filter(day):
    rows = run("report-devices.kql", day["tables"], since="ago(24h)", only_device=kql_string("dev-b"))
    assert [r["device"] for r in rows] == ["dev-b"]
    assert run("report-devices.kql", day["tables"], only_device=kql_string('no "such" \\ device')) == []


# -- outages ----------------------------------------------------------------------------------------


def outages(day, now=T0, **values):
    rows = run("report-outages.kql", day["tables"], now=now, **{"since": "ago(24h)", **values})
    return [
        (r["device"], r["start_utc"], r["end_utc"], r["duration_s"], r["cause"], r["source"], r["outage_id"])
        for r in rows
    ]


def naive(when):
    return when.replace(tzinfo=None) if when else None


OUTAGE_A_ID = "0b7e3c1e-5d7a-4c1b-9a59-3f5b7a0c2d11"
OUTAGE_B_ID = "5f0c9a52-1e4b-4d7e-8c3a-7b2e6f9d0a44"
GAP_A = ("dev-a", naive(clock(5, 59, 30)), naive(clock(9, 0, 30)), 10860, "unknown", "gap", "")
AGENT_A = ("dev-a", naive(clock(10, 0)), naive(clock(10, 7, 30)), 450, "isp", "agent", OUTAGE_A_ID)
GAP_B = ("dev-b", naive(clock(8, 0, 30)), naive(clock(8, 7, 30)), 420, "unknown", "gap", "")
AGENT_B = ("dev-b", naive(clock(11, 0)), naive(clock(11, 2)), 120, "dns", "agent", OUTAGE_B_ID)


@pytest.mark.parametrize("success_type", ["bool", "string"])
def test_outages_agent_reports_once_gaps_once(day, success_type):
    """Each outage once: dev-a's report arrived twice and is listed once; its 9-minute silence around
    that outage is the same outage and is not listed again as a gap; the 3-hour silence nobody
    reported is a gap (cause unknown); dev-b's 7-minute silence is a gap (> 5 minutes); dev-b's DNS
    outage is listed although its heartbeats carried on. Host rows and refused heartbeats fill no gap."""
    run_rows = run("report-outages.kql", day["tables"], success_type=success_type, since="ago(24h)")
    assert [(r["device"], r["source"]) for r in run_rows] == [("dev-a", "gap"), ("dev-a", "agent"), ("dev-b", "gap"), ("dev-b", "agent")]
    assert outages(day) == [GAP_A, AGENT_A, GAP_B, AGENT_B]


def test_outages_silence_threshold(day):
    """dev-b's 7-minute gap is an outage with a 5-minute threshold, not with a 10-minute one."""
    assert outages(day, silence="10m") == [GAP_A, AGENT_A, AGENT_B]


def test_outages_period_and_filter(day):
    """The last 2 hours hold dev-a's reported outage (ended 10:07:30) and dev-b's, not the gaps
    before them; the device filter keeps one device's outages."""
    assert outages(day, since="ago(2h)") == [AGENT_A, AGENT_B]
    assert outages(day, only_device=kql_string("dev-b")) == [GAP_B, AGENT_B]


def test_outages_a_device_silent_now_is_an_ongoing_outage(day):
    """Looked at 30 minutes after both devices' last heartbeat (11:59:30): each is an outage still
    going on, with no end and 30m30s so far."""
    later = T0 + 30 * MIN
    ongoing = [o for o in outages(day, now=later) if o[2] is None]
    assert ongoing == [
        ("dev-a", naive(T0 - 30 * SEC), None, 1830, "unknown", "gap", ""),
        ("dev-b", naive(T0 - 30 * SEC), None, 1830, "unknown", "gap", ""),
    ]


def test_outages_a_reported_outage_covers_an_ongoing_silence(day, captured_rows):
    """A silence that overlaps a reported outage is that outage, even while it goes on."""
    report = at(captured_rows["outage-a"], T0 + 31 * MIN)
    report["customDimensions"] = {**report["customDimensions"], "outage_id": "x", "start": "2026-11-25T12:00:00Z", "end": "2026-11-25T12:20:00Z"}
    tables = {**day["tables"], "customEvents": day["tables"]["customEvents"] + [report]}
    rows = run("report-outages.kql", tables, now=T0 + 32 * MIN, since="ago(1h)")
    assert [(r["device"], r["source"], r["end_utc"] is None) for r in rows] == [("dev-a", "agent", False), ("dev-b", "gap", True)]


# -- public IP changes ------------------------------------------------------------------------------


def test_ip_changes(day):
    """dev-a changed address once, at 10:08:30; dev-b never did. In the last 2 hours there is no
    change: the first heartbeat in the period already has the new address."""
    rows = run("report-ip-changes.kql", day["tables"], since="ago(24h)")
    assert [(r["device"], r["changed_utc"], r["previous_ip"], r["public_ip"]) for r in rows] == [
        ("dev-a", naive(clock(10, 8, 30)), DEV_A_OLD_IP, DEV_A_NEW_IP)
    ]
    assert run("report-ip-changes.kql", day["tables"], since="ago(2h)") == []
    assert run("report-ip-changes.kql", day["tables"], since="ago(24h)", only_device=kql_string("dev-b")) == []


def test_ip_changes_back_and_forth_in_any_row_order(day, captured_rows):
    """An address that changes and changes back is two changes, whatever order the rows are stored in."""
    requests = [r for r in captured_rows["all"]["requests"] if r["success"] and r["customDimensions"]["device"] == "dev-a"]
    old, new = requests[0], requests[1]
    rows = [at(old, T0 - 30 * MIN), at(new, T0 - 20 * MIN), at(old, T0 - 10 * MIN), at(old, T0 - 5 * MIN)]
    result = run("report-ip-changes.kql", {"requests": list(reversed(rows)), "customEvents": []})
    assert [(r["previous_ip"], r["public_ip"], r["changed_utc"]) for r in result] == [
        (DEV_A_OLD_IP, DEV_A_NEW_IP, naive(T0 - 20 * MIN)),
        (DEV_A_NEW_IP, DEV_A_OLD_IP, naive(T0 - 10 * MIN)),
    ]


# -- scripts/report.sh against an az stand-in that executes the queries -----------------------------

AZ_STAND_IN = """#!{python}
# az stand-in for the report.sh test: hands its arguments to the test's loopback answering service
# ($AZ_STAND_IN_URL) and prints what it answers, with its exit code.
import json, os, sys, urllib.request
request = urllib.request.Request(os.environ["AZ_STAND_IN_URL"], data=json.dumps(sys.argv[1:]).encode())
with urllib.request.urlopen(request, timeout=60) as response:
    answer = json.load(response)
sys.stdout.write(answer["stdout"])
sys.stderr.write(answer["stderr"])
sys.exit(answer["code"])
"""


def az_answer(args: list[str], tables) -> tuple[str, str, int]:
    """What the az stand-in answers: the calls report.sh makes, with each analytics query executed by
    duckdb-kql over `tables` at T0 and printed in the Application Insights query API's shape."""

    def opt(name):
        return args[args.index(name) + 1] if name in args else None

    command = " ".join(a for a in args[:4] if not a.startswith("-"))
    if command.startswith("extension show"):
        return json.dumps({"name": opt("-n"), "version": "1.2.3"}), "", 0
    if command.startswith("account show"):
        return json.dumps({"id": "00000000-0000-0000-0000-000000000000", "name": "Stand-in", "state": "Enabled"}), "", 0
    if command.startswith("resource list"):
        return json.dumps([{"name": "ispmon-appi-test", "type": "Microsoft.Insights/components", "resourceGroup": opt("-g")}]), "", 0
    if command.startswith("monitor app-insights query"):
        key = (id(tables), "bool")
        if key not in _LOADED:
            _LOADED[key] = (tables, Dataset(tables))
        rows = _LOADED[key][1].query(opt("--analytics-query"), T0)
        names = list(rows[0]) if rows else []

        def kind(column):
            values = [r[column] for r in rows if r[column] is not None]
            return {bool: "bool", int: "long", float: "real", datetime: "datetime"}.get(type(values[0]) if values else str, "string")

        def cell(value):
            return value.isoformat() + "Z" if isinstance(value, datetime) else value

        table = {"name": "PrimaryResult", "columns": [{"name": n, "type": kind(n)} for n in names],
                 "rows": [[cell(r[n]) for n in names] for r in rows]}
        return json.dumps({"tables": [table]}), "", 0
    return "", "ERROR: the stand-in does not know: " + " ".join(args) + "\n", 2


@pytest.fixture(scope="module")
def report(day, tmp_path_factory):
    """Runs scripts/report.sh with the az stand-in first on PATH; returns (run, calls)."""
    if not shutil.which("jq"):
        pytest.fail("jq is not installed: report.sh needs it (tests/install-tools.sh installs it)")
    work = tmp_path_factory.mktemp("report")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(AZ_STAND_IN.format(python=sys.executable), encoding="utf-8")
    az.chmod(az.stat().st_mode | stat.S_IXUSR)
    (work / ".env").write_text("AZURE_RESOURCE_GROUP=rg-test\nSILENCE_MINUTES=5\nHEARTBEAT_KEY=do-not-show-me\n", encoding="utf-8")
    calls: list[list[str]] = []

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            args = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(args)
            stdout, stderr, code = az_answer(args, day["tables"])
            body = json.dumps({"stdout": stdout, "stderr": stderr, "code": code}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def run_report(*args: str) -> subprocess.CompletedProcess:
        calls.clear()
        env = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "ISP_MONITOR_ENV_FILE": str(work / ".env"),
            "AZ_STAND_IN_URL": f"http://127.0.0.1:{server.server_address[1]}/",
            "LANG": "C.UTF-8",
        }
        result = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    yield run_report, lambda: list(calls)
    server.shutdown()
    server.server_close()


def sent_queries(calls) -> list[str]:
    return [c[c.index("--analytics-query") + 1] for c in calls() if c[:3] == ["monitor", "app-insights", "query"]]


def test_report_json_matches_the_queries(report):
    """report.sh --json: the rows the three queries give, as named objects, with the period."""
    run_report, calls = report
    out = json.loads(run_report("--since", "24h", "--json").stdout)
    assert (out["period"], out["silence_minutes"], out["device"]) == ("24h", 5, None)
    assert [(d["device"], d["uptime_pct"], d["heartbeats"], d["last_heartbeat"], d["public_ip"]) for d in out["devices"]] == [
        ("dev-a", 87.15, 1252, "2026-11-25T11:59:30Z", DEV_A_NEW_IP),
        ("dev-b", 100.0, 1434, "2026-11-25T11:59:30Z", DEV_B_IP),
    ]
    assert [(o["device"], o["start_utc"], o["end_utc"], o["duration_s"], o["cause"], o["source"]) for o in out["outages"]] == [
        ("dev-a", "2026-11-25T05:59:30Z", "2026-11-25T09:00:30Z", 10860, "unknown", "gap"),
        ("dev-a", "2026-11-25T10:00:00Z", "2026-11-25T10:07:30Z", 450, "isp", "agent"),
        ("dev-b", "2026-11-25T08:00:30Z", "2026-11-25T08:07:30Z", 420, "unknown", "gap"),
        ("dev-b", "2026-11-25T11:00:00Z", "2026-11-25T11:02:00Z", 120, "dns", "agent"),
    ]
    assert out["ip_changes"] == [
        {"device": "dev-a", "changed_utc": "2026-11-25T10:08:30Z", "previous_ip": DEV_A_OLD_IP, "public_ip": DEV_A_NEW_IP}
    ]
    queries = [c for c in calls() if c[:3] == ["monitor", "app-insights", "query"]]
    assert len(queries) == 3
    for c in queries:
        assert c[c.index("--apps") + 1] == "ispmon-appi-test" and c[c.index("-g") + 1] == "rg-test"
        assert c[c.index("--offset") + 1] == "25h"
    sent = sent_queries(calls)
    assert all("let since = ago(24h);" in q and 'let only_device = "";' in q for q in sent)
    assert ["let silence = 5m;" in q for q in sent] == [False, True, False]
    assert all("do-not-show-me" not in " ".join(c) for c in calls())


def test_report_tables(report):
    """The default output: three readable tables, durations as 3h01m / 7m30s, times in UTC."""
    run_report, _ = report
    out = run_report("--since", "24h").stdout
    lines = [re.sub(r" +", " ", line) for line in out.splitlines()]
    assert lines[0].startswith("ISP Monitor report since ") and lines[0].endswith(" UTC") and "(24h)" in lines[0]
    assert "dev-a 87.15% 1252 2026-11-25 11:59:30 203.0.113.99" in lines
    assert "dev-b 100% 1434 2026-11-25 11:59:30 198.51.100.20" in lines
    assert "dev-a 2026-11-25 05:59:30 2026-11-25 09:00:30 3h01m unknown gap" in lines
    assert "dev-a 2026-11-25 10:00:00 2026-11-25 10:07:30 7m30s isp agent" in lines
    assert "dev-b 2026-11-25 08:00:30 2026-11-25 08:07:30 7m00s unknown gap" in lines
    assert "dev-a 2026-11-25 10:08:30 203.0.113.7 203.0.113.99" in lines
    assert "do-not-show-me" not in out


def test_report_device_filter_and_a_name_that_needs_quoting(report):
    """--device reaches the queries as a KQL string: one device's rows only; a name with quotes and a
    backslash is a valid query that simply matches nothing."""
    run_report, calls = report
    out = json.loads(run_report("--since", "24h", "--device", "dev-b", "--json").stdout)
    assert {d["device"] for d in out["devices"] + out["outages"]} == {"dev-b"} and out["ip_changes"] == []
    odd = 'o\'brien "x" \\ y'
    out = json.loads(run_report("--device", odd, "--json").stdout)
    assert (out["devices"], out["outages"], out["ip_changes"], out["device"]) == ([], [], [], odd)
    assert all('let only_device = "o\'brien \\"x\\" \\\\ y";' in q for q in sent_queries(calls))
