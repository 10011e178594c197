#!/usr/bin/env python3
"""Log events for the aws stand-in's Logs Insights (tests/scripts/stubs/logs_insights.py), printed
by the real ``lambda`` binary run behind the loopback Runtime API stand-in (tests/aws/lambda_runtime.py).

The scenario is the one the Azure report tests' answers describe (tests/scripts/stubs/app-insights/
report-period-*.json): den-pc sends every four minutes from 2026-10-31 to 2026-12-01 at :30 (a quarter of the lines of the
Azure scenario's every minute, the same gaps), but is
silent 2026-11-03 09:59:40-12:05:20 (an ISP outage it reports, 10:00-12:05), 2026-11-10
07:59:50-08:30:40 (LAN, 08:00-08:30), 2026-11-15 01:00:00-01:10:00 (nothing reported) and
2026-11-20 00:00:10-09:00:30 (the agent off, 00:00-09:00); its address changes from 203.0.113.7 to
203.0.113.99 at 2026-11-03 12:05:20. On 2026-11-03 it also sends every minute at :30 with
connection quality (QUALITY_DAY), figures whose daily sums and means are those of the Azure answer
(tests/scripts/stubs/app-insights/report-period-quality.json); no other heartbeat carries quality.
Each kind of heartbeat (address, the outages it carries, its quality) is sent to the binary for
real; the line it printed is checked and placed at each scripted time (the binary stamps lines
with the real clock, as tests/aws/test_alarms.py does).

Usage: aws_log_events.py LAMBDA_BINARY OUT_FILE   (one {"timestamp": ms, "message": line} a line)
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aws"))
from lambda_runtime import RuntimeApi, url_event  # noqa: E402

KEY = "k3y-for-the-report-scenario-0123456789abcdef"
OUTAGES = {
    "a1": ("2026-11-03T10:00:00Z", "2026-11-03T12:05:00Z", "isp", "0/3 internet targets reached, gateway reached"),
    "b2": ("2026-11-10T08:00:00Z", "2026-11-10T08:30:00Z", "lan", '0/3 internet targets reached, gateway unreachable, "router" down'),
    "c3": ("2026-11-20T00:00:00Z", "2026-11-20T09:00:00Z", "agent_offline", "the agent was not running"),
}
GAPS = [  # (last heartbeat before, first after, the outage that heartbeat reports)
    ("2026-11-03T09:59:40Z", "2026-11-03T12:05:20Z", "a1"),
    ("2026-11-10T07:59:50Z", "2026-11-10T08:30:40Z", "b2"),
    ("2026-11-15T01:00:00Z", "2026-11-15T01:10:00Z", None),
    ("2026-11-20T00:00:10Z", "2026-11-20T09:00:30Z", "c3"),
]
CHANGE = "2026-11-03T12:05:20Z"
QUALITY_DAY = "2026-11-03"
# The Azure answer's row for that day: samples, probes, lost, mean p50, mean p95, worst p95, mean DNS.
QUALITY_SUMS = (1315, 5260, 52, 12.25, 40.5, 210.0, 20.0)


def t(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def schedule() -> list[tuple[float, str | None]]:
    start = datetime(2026, 10, 31, 0, 0, 30, tzinfo=timezone.utc).timestamp()
    end = datetime(2026, 12, 1, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    beats: dict[float, str | None] = {}
    at = start
    while at < end:
        if not any(t(a) < at < t(b) for a, b, _ in GAPS):
            beats[at] = None
        at += 240
    for a, b, report in GAPS:
        beats[t(a)] = None
        beats[t(b)] = report
    beats[start + 0.2] = beats.pop(start)  # the first heartbeat as in the Azure answer (.2 s)
    return sorted(beats.items())


def quality_times() -> list[float]:
    """Every minute at :30 of QUALITY_DAY outside its gap."""
    day = t(QUALITY_DAY + "T00:00:30Z")
    return [at for at in (day + 60 * i for i in range(1440)) if not any(t(a) <= at <= t(b) for a, b, _ in GAPS)]


def qualities(n: int) -> list[tuple]:
    """n quality figures (probes, lost, p50, p95, dns) summing to QUALITY_SUMS, of few kinds (each
    kind is one invocation of the binary); every value a multiple of 0.25, so each sum is exact.
    Six intervals lost every attempt (no round trips, no DNS), fourteen half of them."""
    out: list[tuple] = []
    rest = 0
    for i in range(n):
        if i < 3:  # the worst p95, and two that balance the mean
            out.append((4, 0, 12.25, (40.25, 210.0, 197.75)[i], 20.0))
        elif i % 219 == 100:
            out.append((4, 4, None, None, None))
        elif i % 90 == 45 and i < 1260:
            out.append((4, 2, 12.25, 40.25, 20.0))
        else:
            out.append(((4, 0, 10.0, 40.25, 12.5), (4, 0, 14.5, 40.25, 27.5))[rest % 2])
            rest += 1
    rtt = [q for q in out if q[2] is not None]
    dns = [q[4] for q in out if q[4] is not None]
    sums = (len(out), sum(q[0] for q in out), sum(q[1] for q in out), sum(q[2] for q in rtt) / len(rtt),
            sum(q[3] for q in rtt) / len(rtt), max(q[3] for q in rtt), sum(dns) / len(dns))
    assert sums == QUALITY_SUMS, sums
    return out


def main(binary: str, out: str) -> int:
    beats = {at: (report, None) for at, report in schedule()}
    times = quality_times()
    for at, quality in zip(times, qualities(len(times))):
        assert beats.get(at, (None,))[0] is None, at
        beats[at] = (None, quality)
    timeline = [(at, *kind) for at, kind in sorted(beats.items())]
    kinds: dict[tuple, list[dict]] = {}
    with RuntimeApi(Path(binary), {"ISP_MONITOR_FUNCTION_KEY": KEY}) as api:
        sent: list[tuple] = []
        for at, report, quality in timeline:
            ip = "203.0.113.99" if at >= t(CHANGE) else "203.0.113.7"
            if (ip, report, quality) in sent:
                continue
            body: dict = {"device": "den-pc", "seq": 1, "agent_version": "0.4.0"}
            if report:
                s, e, cause, detail = OUTAGES[report]
                body["outages"] = [{"id": report, "start": s, "end": e, "cause": cause, "detail": detail}]
            if quality:
                body["quality"] = dict(zip(("probes", "lost", "rtt_p50_ms", "rtt_p95_ms", "dns_ms"), quality))
            answer = api.invoke(url_event(json.dumps(body), key=KEY, source_ip=ip))
            assert answer.get("statusCode") == 200, answer
            sent.append((ip, report, quality))
        # Each answer comes after its lines (src/handler/aws/lines.rs), so they are in order: a
        # heartbeat line starts each invocation's lines.
        groups: list[list[dict]] = []
        for line in api.lines_now(settle=0.05):
            if line.startswith("{"):
                doc = json.loads(line)
                if doc["event"] == "heartbeat":
                    groups.append([])
                groups[-1].append(doc)
        assert len(groups) == len(sent), (len(groups), len(sent))
        for (ip, report, quality), lines in zip(sent, groups):
            assert [x["event"] for x in lines] == ["heartbeat"] + (["outage"] if report else []), lines
            assert lines[0]["client_ip"] == ip and lines[0]["Device"] == "den-pc"
            assert ("quality_probes" in lines[0]) == (quality is not None), lines[0]
            assert all(x["request_id"] == lines[0]["request_id"] for x in lines), lines
            kinds[(ip, report, quality)] = lines
    with open(out, "w", encoding="utf-8") as f:
        for at, report, quality in timeline:
            ip = "203.0.113.99" if at >= t(CHANGE) else "203.0.113.7"
            for doc in kinds[(ip, report, quality)]:
                doc = dict(doc)
                if "_aws" in doc:
                    doc["_aws"] = dict(doc["_aws"], Timestamp=int(at * 1000))
                f.write(json.dumps({"timestamp": int(at * 1000), "message": json.dumps(doc, separators=(",", ":"))}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
