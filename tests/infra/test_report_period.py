"""The evidence report (scripts/report.sh --month/--from/--to --format, heartbeat-agent report).

1. The five period queries (queries/report/report-period-*.kql) executed by duckdb-kql over the
   simulated day of test_report_queries.py: gaps (including those an agent report overlaps, which
   the report matches), first and last heartbeats, IP changes ("unknown" left out), daily quality.
2. The month with three outages, from both witnesses: a real agent runs against the real handler
   (loopback, through a switch that cuts the connection) while the handler's telemetry goes to the
   ingestion stand-in. An ISP outage (the gateway answers, no internet target does), the agent
   killed during it and restarted two seconds later (agent offline), then a LAN outage (the
   gateway does not answer either). The local report comes from the agent's own history
   (`heartbeat-agent report`); the cloud report from the captured telemetry through an az stand-in
   that executes the queries (scripts/report.sh). Same numbers. CSV parsed back; JSON schema pinned.
3. The HTML rendered by headless Debian Chromium: a PNG that is not blank (the ISP's red is on it)
   and a DOM dump holding the expected rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from alert_sim import Dataset
from appinsights import at, rows_from_envelopes
from capture import IKEY, LOOPBACK, IngestionStandIn, free_port, make_tls_files, wait_ready
from conftest import REPO, handler_binary
from test_report_queries import AZ_STAND_IN, DEV_A_NEW_IP, DEV_A_OLD_IP, clock, day, naive, query_text  # noqa: F401 (day: a fixture)

AGENT = Path(os.environ.get("ISP_MONITOR_TEST_AGENT", REPO / "target" / "debug" / "heartbeat-agent"))
SCRIPT = REPO / "scripts" / "report.sh"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


_LOADED: dict[int, tuple[object, Dataset]] = {}


def run(name, tables, now=T0, **values):
    """The query's rows over these tables (loaded into DuckDB once per table set)."""
    values = {"since": "ago(24h)", "until": "now()", "silence": "5m", "only_device": '""', **values}
    if id(tables) not in _LOADED:
        _LOADED[id(tables)] = (tables, Dataset(tables))
    return _LOADED[id(tables)][1].query(query_text(name, **values), now)


# -- 1. the period queries --------------------------------------------------------------------------


def test_period_gaps_keep_the_gaps_a_report_explains(day):
    """Every silence longer than 5 minutes, also dev-a's 9-minute one around its reported outage (the
    report matches it: witness both); a day either side is read, so a period starting inside a gap
    still gets the whole gap."""
    rows = [(r["device"], r["start_utc"], r["end_utc"]) for r in run("report-period-gaps.kql", day["tables"])]
    assert rows == [
        ("dev-a", naive(clock(5, 59, 30)), naive(clock(9, 0, 30))),
        ("dev-a", naive(clock(9, 59, 30)), naive(clock(10, 8, 30))),
        ("dev-b", naive(clock(8, 0, 30)), naive(clock(8, 7, 30))),
    ]
    inside = run("report-period-gaps.kql", day["tables"], since="datetime(2026-11-25T07:00:00Z)", until="datetime(2026-11-25T08:03:00Z)")
    assert [(r["device"], r["start_utc"]) for r in inside] == [("dev-a", naive(clock(5, 59, 30))), ("dev-b", naive(clock(8, 0, 30)))]


def test_period_devices_outages_and_ip_changes(day):
    devices = run("report-period-devices.kql", day["tables"], since="datetime(2026-11-25T00:00:00Z)")
    assert [(d["device"], d["first_seen"], d["last_seen"]) for d in devices] == [
        ("dev-a", naive(T0 - timedelta(hours=24) + timedelta(seconds=30)), naive(T0 - timedelta(seconds=30))),
        ("dev-b", naive(T0 - timedelta(hours=24) + timedelta(seconds=30)), naive(T0 - timedelta(seconds=30))),
    ]
    outages = run("report-period-outages.kql", day["tables"])
    assert [(o["device"], o["cause"], o["start_utc"]) for o in outages] == [
        ("dev-a", "isp", naive(clock(10, 0))),
        ("dev-b", "dns", naive(clock(11, 0))),
    ]
    assert run("report-period-outages.kql", day["tables"], until="datetime(2026-11-25T10:00:00Z)") == []
    changes = run("report-period-ip-changes.kql", day["tables"])
    assert [(c["device"], c["previous_ip"], c["public_ip"]) for c in changes] == [("dev-a", DEV_A_OLD_IP, DEV_A_NEW_IP)]


def test_period_ip_changes_ignore_unknown_addresses(day):
    requests = [r for r in day["tables"]["requests"] if r["customDimensions"].get("device") == "dev-a" and r["success"]][:3]
    unknown = dict(requests[1], customDimensions={**requests[1]["customDimensions"], "client_ip": "unknown"})
    rows = [at(requests[0], T0 - timedelta(minutes=3)), at(unknown, T0 - timedelta(minutes=2)), at(requests[0], T0 - timedelta(minutes=1))]
    assert run("report-period-ip-changes.kql", {"requests": rows, "customEvents": []}) == []


def test_period_quality_sums_per_day(day):
    """Two heartbeats with quality on one day, one on the next (one with every attempt lost: null
    round trips), and heartbeats without quality: per device and day, the sums and means."""
    base = next(r for r in day["tables"]["requests"] if r["customDimensions"].get("device") == "dev-b" and r["success"])

    def with_quality(when, probes, lost, p50, p95, dns):
        dims = {**base["customDimensions"], "quality_probes": str(probes), "quality_lost": str(lost),
                "quality_rtt_p50_ms": "" if p50 is None else str(p50), "quality_rtt_p95_ms": "" if p95 is None else str(p95),
                "quality_dns_ms": "" if dns is None else str(dns)}
        return at(dict(base, customDimensions=dims), when)

    rows = [
        with_quality(T0 - timedelta(hours=13), 4, 0, 10, 20, 5),
        with_quality(T0 - timedelta(hours=12, minutes=30), 4, 4, None, None, 7),
        with_quality(T0 - timedelta(hours=1), 4, 1, 30, 90.5, None),
        at(base, T0 - timedelta(minutes=5)),
    ]
    result = run("report-period-quality.kql", {"requests": rows, "customEvents": []})
    # A mean over no value is NaN or null depending on the engine; report.sh makes both null.
    none = lambda v: None if v is None or v != v else v  # noqa: E731
    got = [(r["day"], r["samples"], r["probes"], r["lost"], r["rtt_p50_ms"], r["rtt_p95_ms"], r["rtt_p95_max_ms"], none(r["dns_ms"])) for r in result]
    assert got == [
        (datetime(2026, 11, 24), 2, 8, 4, 10.0, 20.0, 20.0, 6.0),
        (datetime(2026, 11, 25), 1, 4, 1, 30.0, 90.5, 90.5, None),
    ]


# -- 2. the month with three outages, from both witnesses -------------------------------------------


class Switch:
    """A loopback TCP listener that forwards to `target` while up, and is gone (connections refused,
    open ones cut) while down: the internet connection the test pulls. With no target it accepts and
    closes: a gateway that answers."""

    def __init__(self, target: int | None = None) -> None:
        self.port = free_port()
        self.target = target
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(32)
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener:
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            client.settimeout(None)
            if self.target is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection((LOOPBACK, self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class Agent:
    """The real heartbeat-agent as a daemon, its stdout lines collected."""

    def __init__(self, args: list[str], state_dir: Path) -> None:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(state_dir), "HEARTBEAT_STATE_DIR": str(state_dir)}
        self.process = subprocess.Popen([str(AGENT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, words: str, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(words in line for line in self.lines) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"no {count} line(s) with {words!r} within {timeout}s:\n" + "\n".join(self.lines))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=20)


def sleep_until(when: datetime) -> None:
    time.sleep(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()))


def whole_second(after: datetime) -> datetime:
    return after.replace(microsecond=0) + timedelta(seconds=1)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """Runs the three outages; returns the period, the agent's state directory and the telemetry."""
    if not AGENT.is_file():
        pytest.fail(f"{AGENT} does not exist: build it first with `cargo build --bin heartbeat-agent`")
    work = tmp_path_factory.mktemp("month")
    state = work / "state"
    ca, cert, key = make_tls_files(work)
    with IngestionStandIn(cert, key) as ingestion:
        port = free_port()
        env = {
            "PATH": "/usr/bin:/bin", "HOME": str(work), "FUNCTIONS_CUSTOMHANDLER_PORT": str(port),
            "APPLICATIONINSIGHTS_CONNECTION_STRING": f"InstrumentationKey={IKEY};IngestionEndpoint=https://{LOOPBACK}:{ingestion.port}/",
            "SSL_CERT_FILE": str(ca), "WEBSITE_SITE_NAME": "ispmon-test", "RUST_LOG": "warn",
        }
        handler = subprocess.Popen([str(handler_binary())], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        agents: list[Agent] = []
        try:
            wait_ready(port, handler, time.monotonic() + 30)
            internet, gateway = Switch(port), Switch()
            args = ["--daemon", "--url", f"http://{LOOPBACK}:{internet.port}/api/ping", "--device", "month-pc",
                    "--interval", "1", "--probe-interval", "1", "--timeout", "2",
                    "--gateway", f"{LOOPBACK}:{gateway.port}", "--probe-targets", f"{LOOPBACK}:{free_port()}"]
            agents.append(Agent(args, state))
            agents[-1].wait_for("ok status=200", 2)
            start = whole_second(datetime.now(timezone.utc))
            sleep_until(start + timedelta(seconds=1))
            # The ISP's outage: no internet target answers, the gateway does. The agent is killed in
            # the middle of it (a power cut) and comes back two seconds later.
            internet.down()
            agents[-1].wait_for("outage started cause=isp")
            time.sleep(1.5)
            agents[-1].stop(signal.SIGKILL)
            time.sleep(2)
            internet.up()
            agents.append(Agent(args, state))
            agents[-1].wait_for("reported=2", 1)
            agents[-1].wait_for("ok status=200", 3)
            # The local network's outage: the gateway does not answer either.
            internet.down()
            gateway.down()
            agents[-1].wait_for("outage started cause=lan")
            time.sleep(1.5)
            gateway.up()
            internet.up()
            agents[-1].wait_for("back after")
            agents[-1].wait_for("ok status=200", 6)
            end = whole_second(datetime.now(timezone.utc))
            sleep_until(end + timedelta(seconds=1))
            agents[-1].stop()
            lines = [line for agent in agents for line in agent.lines]
        finally:
            for agent in agents:
                if agent.process.poll() is None:
                    agent.process.kill()
                    agent.process.wait()
            handler.send_signal(signal.SIGTERM)
            try:
                handler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                handler.kill()
                handler.wait()
        envelopes = list(ingestion.envelopes)
    return {"from": start, "to": end, "state": state, "tables": rows_from_envelopes(envelopes), "work": work, "lines": lines}


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_report(month, fmt: str) -> str:
    result = subprocess.run(
        [str(AGENT), "report", "--from", iso(month["from"]), "--to", iso(month["to"]), "--format", fmt, "--state-dir", str(month["state"])],
        capture_output=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return result.stdout.decode("utf-8")


@pytest.fixture(scope="module")
def cloud_report(month):
    """scripts/report.sh with an az stand-in that executes each query (duckdb-kql) over the captured
    telemetry at the current time; returns a function of the format."""
    if not shutil.which("jq"):
        pytest.fail("jq is not installed: report.sh needs it (tests/install-tools.sh installs it)")
    work = month["work"] / "cloud"
    (work / "bin").mkdir(parents=True)
    az = work / "bin" / "az"
    az.write_text(AZ_STAND_IN.format(python=sys.executable), encoding="utf-8")
    az.chmod(az.stat().st_mode | stat.S_IXUSR)
    (work / ".env").write_text("AZURE_RESOURCE_GROUP=rg-test\nSILENCE_MINUTES=1\nHEARTBEAT_KEY=do-not-show-me\n", encoding="utf-8")
    data = Dataset(month["tables"])
    queries: list[str] = []

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            args = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            out, code = "", 0
            if args[:2] == ["extension", "show"]:
                out = json.dumps({"name": "application-insights"})
            elif args[:2] == ["account", "show"]:
                out = json.dumps({"id": "0", "state": "Enabled"})
            elif args[:3] == ["monitor", "app-insights", "query"]:
                query = args[args.index("--analytics-query") + 1]
                queries.append(query)
                rows = data.query(query, datetime.now(timezone.utc))
                names = list(rows[0]) if rows else []
                cell = lambda v: v.isoformat() + "Z" if isinstance(v, datetime) else v  # noqa: E731
                out = json.dumps({"tables": [{"name": "PrimaryResult", "columns": [{"name": n, "type": "dynamic"} for n in names],
                                               "rows": [[cell(r[n]) for n in names] for r in rows]}]})
            else:
                code = 2
            body = json.dumps({"stdout": out, "stderr": "" if code == 0 else f"ERROR: {args}\n", "code": code}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer((LOOPBACK, 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    done: dict[str, str] = {}

    def report(fmt: str) -> str:
        """report.sh's output in this format (run once per format: each run executes five queries)."""
        if fmt in done:
            return done[fmt]
        env = {"PATH": f"{work / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8",
               "ISP_MONITOR_ENV_FILE": str(work / ".env"), "AZ_STAND_IN_URL": f"http://{LOOPBACK}:{server.server_address[1]}/",
               "AZURE_APPINSIGHTS_NAME": "ispmon-appi-test", "ISP_MONITOR_AGENT_BIN": str(AGENT)}
        result = subprocess.run(["bash", str(SCRIPT), "--from", iso(month["from"]), "--to", iso(month["to"]), "--format", fmt],
                                env=env, capture_output=True, timeout=120)
        # Bytes, decoded here: text mode would turn the CSV's CRLF into LF.
        stdout, stderr = result.stdout.decode("utf-8"), result.stderr.decode("utf-8", "replace")
        assert result.returncode == 0, f"{stdout}\n{stderr}"
        assert "do-not-show-me" not in stdout + stderr
        done[fmt] = stdout
        return stdout

    yield report
    server.shutdown()
    server.server_close()


NUMBERS = ("observed_from", "observed_to", "period_s", "observed_s", "uptime_pct", "isp_downtime_s", "isp_outages",
           "longest_isp_outage_s", "outages_total", "downtime_s", "longest_outage_s", "not_isp")


def test_the_month_gives_the_same_numbers_from_both_witnesses(month, cloud_report):
    local = json.loads(local_report(month, "json"))
    cloud = json.loads(cloud_report("json"))
    assert (local["source"], cloud["source"]) == ("agent", "azure")
    [mine], [theirs] = local["devices"], cloud["devices"]
    assert mine["device"] == theirs["device"] == "month-pc"
    assert {k: mine[k] for k in NUMBERS} == {k: theirs[k] for k in NUMBERS}
    row = lambda o: (o["start"], o["end"], o["duration_s"], o["cause"])  # noqa: E731
    assert [row(o) for o in mine["outages"]] == [row(o) for o in theirs["outages"]]
    # The three outages, each of its own kind, in order; only the ISP's counts against the ISP.
    assert [o["cause"] for o in mine["outages"]] == ["isp", "agent_offline", "lan"], month["lines"]
    assert mine["isp_outages"] == 1 and mine["outages_total"] == 3
    isp, offline, lan = mine["outages"]
    assert mine["isp_downtime_s"] == isp["duration_s"] >= 1
    assert mine["not_isp"]["agent_offline_s"] == offline["duration_s"] >= 2
    assert mine["not_isp"]["lan_s"] == lan["duration_s"] >= 1
    assert mine["observed_s"] == mine["period_s"] - offline["duration_s"]
    expected = round(100 * (mine["observed_s"] - isp["duration_s"]) / mine["observed_s"], 2)
    assert mine["uptime_pct"] == expected < 100
    # The cloud saw no silence longer than its 1-minute threshold: every row is the agent's report.
    assert {o["witness"] for o in theirs["outages"]} == {"agent"}


def test_the_table_and_csv_agree_with_the_json(month, cloud_report):
    """CSV parsed back (RFC 4180, CRLF): the summary and outage records carry the JSON's numbers."""
    report = json.loads(cloud_report("json"))
    device = report["devices"][0]
    text = cloud_report("csv")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    summary = [r for r in rows if r["record"] == "summary"]
    assert len(summary) == 1 and float(summary[0]["uptime_pct"]) == device["uptime_pct"]
    assert int(summary[0]["isp_downtime_s"]) == device["isp_downtime_s"]
    outages = [(r["cause"], int(r["duration_s"]), r["counts_against_isp"], r["witness"]) for r in rows if r["record"] == "outage"]
    assert outages == [(o["cause"], o["duration_s"], "yes" if o["isps"] else "no", o["witness"]) for o in device["outages"]]
    assert outages[0][2] == "yes" and outages[1][2] == outages[2][2] == "no"
    assert len([r for r in rows if r["record"] == "day"]) == len(device["days"])
    assert local_report(month, "csv").splitlines()[0] == text.splitlines()[0]
    table = local_report(month, "table")
    assert f"Uptime (ISP):   {device['uptime_pct']}%" in table
    assert "your internet provider (DNS and internet targets unreachable)" in table


# The report's JSON schema, version 1: these fields, with these types. Adding a field is fine within a
# version (add it here); renaming or removing one needs version 2.
SCHEMA_V1 = {
    "report": {"schema": str, "version": int, "source": str, "from": str, "to": str, "generated_at": str,
               "silence_minutes": (int, type(None)), "devices": list, "notes": list},
    "device": {"device": str, "observed_from": str, "observed_to": str, "period_s": int, "observed_s": int,
               "uptime_pct": (float, int, type(None)), "isp_downtime_s": int, "isp_outages": int, "longest_isp_outage_s": int,
               "outages_total": int, "downtime_s": int, "longest_outage_s": int, "not_isp": dict, "outages": list,
               "ip_changes": list, "days": list},
    "not_isp": {"lan_s": int, "agent_offline_s": int, "cloud_side_s": int, "undetermined_s": int},
    "outage": {"start": str, "end": str, "ongoing": bool, "clipped": bool, "duration_s": int, "cause": str,
               "cause_in_words": str, "isps": bool, "witness": str, "id": str, "detail": str},
    "day": {"date": str, "observed_s": int, "uptime_pct": (float, int, type(None)), "isp_downtime_s": int, "quality": (dict, type(None))},
}


def check_shape(value: dict, kind: str) -> None:
    expected = SCHEMA_V1[kind]
    assert sorted(value) == sorted(expected), f"{kind}: {sorted(value)}"
    for key, types in expected.items():
        assert isinstance(value[key], types), f"{kind}.{key} is {value[key]!r}"


def test_json_schema_is_stable(month, cloud_report):
    for text in (local_report(month, "json"), cloud_report("json")):
        report = json.loads(text)
        assert (report["schema"], report["version"]) == ("isp-monitor-report", 1)
        check_shape(report, "report")
        for device in report["devices"]:
            check_shape(device, "device")
            check_shape(device["not_isp"], "not_isp")
            for outage in device["outages"]:
                check_shape(outage, "outage")
                assert outage["witness"] in ("agent", "cloud", "both")
            for day_row in device["days"]:
                check_shape(day_row, "day")


def test_schema_check_can_fail():
    """The shape check is not vacuous: a renamed field and a wrong type are caught."""
    good = {"lan_s": 1, "agent_offline_s": 2, "cloud_side_s": 0, "undetermined_s": 0}
    check_shape(good, "not_isp")
    with pytest.raises(AssertionError):
        check_shape({**{k: v for k, v in good.items() if k != "lan_s"}, "lan": 1}, "not_isp")
    with pytest.raises(AssertionError):
        check_shape({**good, "lan_s": "1"}, "not_isp")


# -- 3. the HTML in headless Chromium ---------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decodes an 8-bit RGB or RGBA PNG (what Chromium writes) into rows of pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6), f"unexpected PNG depth {depth} colour type {color}"
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, bpp, rows


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed: run tests/install-tools.sh (Debian package chromium)")
    return path


def headless(chromium, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


def test_html_renders_in_chromium(month, cloud_report, chromium, tmp_path):
    """The cloud report's page, loaded from a file by headless Chromium: its DOM holds one row per
    outage with the cause in words, and the screenshot is not blank: it shows the ISP's red."""
    page = tmp_path / "report.html"
    page.write_text(cloud_report("html"), encoding="utf-8")
    dom = headless(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('<tr class="outage') == 3
    assert '<tr class="outage isprow" data-cause="isp" data-witness="agent">' in dom.stdout
    assert 'data-cause="lan"' in dom.stdout and 'data-cause="agent_offline"' in dom.stdout
    assert "your internet provider (DNS and internet targets unreachable)" in dom.stdout
    assert '<section class="device" data-device="month-pc">' in dom.stdout
    shot = tmp_path / "report.png"
    result = headless(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1240,1754", "--hide-scrollbars", page.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    width, bpp, rows = png_pixels(shot.read_bytes())
    colours, red = set(), 0
    for line in rows[::4]:
        for x in range(0, width * bpp, bpp * 4):
            r, g, b = line[x], line[x + 1], line[x + 2]
            colours.add((r, g, b))
            red += r > 150 and g < 90 and b < 90
    assert len(colours) > 20, f"a blank page: {len(colours)} colours"
    assert red > 0, "no outage of the ISP's red on the page"


def test_png_check_can_fail(chromium, tmp_path):
    """A blank page gives one colour and no red: the checks above would fail on it."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    shot = tmp_path / "blank.png"
    result = headless(chromium, tmp_path, f"--screenshot={shot}", "--window-size=400,300", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    _, _, rows = png_pixels(shot.read_bytes())
    assert len({bytes(line) for line in rows}) == 1
