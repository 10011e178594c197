"""The degraded-connection and public-IP-change rules, and the outage email's cause in words, executed:
the query text and rule settings main.bicep deploys run (duckdb-kql, alert_sim) over rows made from
telemetry the real handler sent for heartbeats with connection quality, from changing addresses and
with every outage cause, rebased in time to simulate a device over hours. Each property is also run
against a deliberately broken variant of the query, which must fail it: the tests can fail."""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import capture as capture_module
import pytest
from alert_sim import Rule, evaluate, simulate
from appinsights import at, ingested_late, rows_from_envelopes
from conftest import REPO, handler_binary, template

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
OFF_MINUTE = timedelta(seconds=20)  # Azure's evaluations are not on the minute

# Interface B (docs/alerts.md "Outage report"): every email, report and notification uses these words.
CAUSE_WORDS = {
    "isp": "your internet provider (DNS and internet targets unreachable)",
    "dns": "name resolution (internet targets answered, the endpoint's name did not resolve)",
    "lan": "your local network (the router did not answer)",
    "cloud": "the monitoring endpoint (the internet worked, the endpoint did not)",
    "config": "the agent's configuration (the endpoint refused its key)",
    "agent_offline": "the agent was not running (nobody observed: not counted against the ISP)",
    "unknown": "undetermined (the probes gave no consistent answer)",
}

# -- what the real handler is sent --------------------------------------------------------------------
# Quality objects (interface A) at and around the defaults degradedLossPct = 5, degradedRttP95Ms = 200.
QUALITY = {
    "good": {"probes": 10, "lost": 0, "rtt_p50_ms": 12.0, "rtt_p95_ms": 20.0, "dns_ms": 4.0},
    # Exactly at both limits: not above them, so not degraded.
    "at-limits": {"probes": 20, "lost": 1, "rtt_p50_ms": 150.0, "rtt_p95_ms": 200.0, "dns_ms": 9.0},
    "lossy": {"probes": 20, "lost": 2, "rtt_p50_ms": 12.0, "rtt_p95_ms": 20.0, "dns_ms": 4.0},  # 10 %
    "slow": {"probes": 10, "lost": 0, "rtt_p50_ms": 120.0, "rtt_p95_ms": 200.5, "dns_ms": 4.0},
    "all-lost": {"probes": 10, "lost": 10, "rtt_p50_ms": None, "rtt_p95_ms": None, "dns_ms": None},
}
IP_OLD, IP_NEW = "203.0.113.50", "198.51.100.60"


def _beat(note: str, **extra: Any) -> dict[str, Any]:
    return {"device": "dev-q", "note": note, "agent_version": "0.2.0", "seq": 1, "rtt_ms": 10, **extra}


SENT: list[tuple[str, dict[str, Any] | bytes, dict[str, str]]] = [
    *[(f"quality-{name}", _beat(f"quality-{name}", quality=q), {"X-Forwarded-For": f"{IP_OLD}:50100"}) for name, q in QUALITY.items()],
    ("no-quality", _beat("no-quality"), {"X-Forwarded-For": f"{IP_OLD}:50101"}),
    ("ip-old", _beat("ip-old"), {"X-Forwarded-For": f"{IP_OLD}:50102"}),
    ("ip-new", _beat("ip-new"), {"X-Forwarded-For": f"{IP_NEW}:50103"}),
    ("ip-unknown", _beat("ip-unknown"), {}),  # no front-end header: the handler records `unknown`
    ("outages", _beat("outages", outages=[
        {"id": str(uuid.UUID(int=i + 1)), "start": "2026-11-25T09:00:00Z", "end": "2026-11-25T09:04:00Z", "cause": cause}
        for i, cause in enumerate(CAUSE_WORDS)
    ]), {"X-Forwarded-For": f"{IP_OLD}:50104"}),
]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The rows Application Insights would hold for SENT, as the real handler reported them."""
    binary = handler_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist: build it first with `cargo build --bin handler` (tests/infra/run.sh does)")
    with mock.patch.object(capture_module, "REQUESTS_SENT", SENT):
        captured = capture_module.capture(binary, tmp_path_factory.mktemp("quality-capture"))
    assert [(label, status) for label, status, _ in captured.responses] == [(label, 200) for label, _, _ in SENT], captured.responses
    tables = rows_from_envelopes(captured.envelopes)
    out: dict[str, Any] = {"events": tables["customEvents"]}
    for row in tables["requests"]:
        if row["success"] and row["customDimensions"].get("device") == "dev-q":
            out[row["customDimensions"]["note"]] = row
    missing = [label for label, body, _ in SENT if isinstance(body, dict) and body["note"] not in out]
    assert not missing, f"the handler sent no accepted heartbeat row for {missing}"
    return out


def test_the_handler_recorded_what_the_rules_read(rows):
    """The captured rows carry the dimensions the queries read: quality (interface A) only where the
    heartbeat had it, the handler-seen address, `unknown` without a front-end header, and the causes."""
    dims = {note: rows[note]["customDimensions"] for note in ("quality-lossy", "quality-all-lost", "no-quality", "ip-new", "ip-unknown")}
    assert float(dims["quality-lossy"]["quality_loss_pct"]) == 10.0
    assert float(dims["quality-all-lost"]["quality_loss_pct"]) == 100.0
    assert str(dims["quality-all-lost"].get("quality_rtt_p95_ms", "")) == ""
    assert "quality_probes" not in dims["no-quality"]
    assert dims["ip-new"]["client_ip"] == IP_NEW and dims["ip-unknown"]["client_ip"] == "unknown"
    assert sorted(e["customDimensions"]["cause"] for e in rows["events"]) == sorted(CAUSE_WORDS)


# -- helpers ------------------------------------------------------------------------------------------


def tables(requests=(), events=()):
    return {"requests": list(requests), "customEvents": list(events)}


def timeline(rows: dict[str, Any], pattern: str, start: datetime = T0, device: str = "dev-q", step: timedelta = MIN) -> list[dict[str, Any]]:
    """One heartbeat per character, `step` apart: g good, a at the limits, l lossy, s slow, x all
    lost, n no quality; the captured row of that kind, rebased (and renamed to `device`)."""
    kinds = {"g": "quality-good", "a": "quality-at-limits", "l": "quality-lossy", "s": "quality-slow", "x": "quality-all-lost", "n": "no-quality"}
    out = []
    for i, ch in enumerate(pattern):
        row = at(rows[kinds[ch]], start + i * step)
        row["customDimensions"] = {**row["customDimensions"], "device": device}
        out.append(row)
    return out


def degraded_rule(**params) -> Rule:
    return Rule.from_template(template(**params), "degradedAlert")


def ip_rule(**params) -> Rule:
    return Rule.from_template(template(**params), "ipChangeAlert")


def variant(rule: Rule, old: str, new: str) -> Rule:
    """The rule with a broken query: `old` (which must occur exactly once) replaced by `new`."""
    assert rule.query.count(old) == 1, f"{old!r} is not in the {rule.symbol} query exactly once"
    return Rule(**{**rule.__dict__, "query": rule.query.replace(old, new)})


def kinds(sent) -> list[tuple[str, tuple]]:
    return [(n.kind, n.dimensions) for n in sent]


# -- degraded: the rule as deployed -------------------------------------------------------------------


def test_degraded_rule_is_stateful_per_device_with_its_thresholds():
    rule = degraded_rule()
    assert rule.auto_mitigate and rule.dimensions == ["device"]
    assert (rule.time_aggregation, rule.metric_column, rule.operator, rule.threshold) == ("Maximum", "degraded", "GreaterThanOrEqual", 1)
    assert rule.frequency == 15 * MIN and rule.resolve_after == 2
    for line in ("let loss_limit = 5.0;", "let rtt_limit = 200.0;", "let of_last = 10;", "let at_least = 5;"):
        assert line in rule.query
    other = degraded_rule(degradedLossPct=20, degradedRttP95Ms=350, degradedOfLast=6, degradedAtLeast=9)
    for line in ("let loss_limit = 20.0;", "let rtt_limit = 350.0;", "let of_last = 6;", "let at_least = 6;"):
        assert line in other.query, line
    assert other.threshold == 1


def test_each_template_line_occurs_once_in_the_file():
    """main.bicep's replace() of a line that is not there would silently keep the default."""
    text = (REPO / "queries" / "degraded-alert.kql").read_text(encoding="utf-8")
    for line in ("let loss_limit = 5.0;", "let rtt_limit = 200.0;", "let of_last = 10;", "let at_least = 5;"):
        assert text.count(line) == 1, line


# -- degraded: one evaluation -------------------------------------------------------------------------

# The query's definition of a degraded heartbeat, broken three ways.
AT_LIMIT_COUNTS = ("loss_pct > loss_limit", "loss_pct >= loss_limit")
NO_RTT = ("loss_pct > loss_limit or (isnotnull(rtt_p95_ms) and rtt_p95_ms > rtt_limit)", "loss_pct > loss_limit")
NO_QUALITY_COUNTS = ("| where isnotempty(tostring(customDimensions.quality_probes))\n", "")


@pytest.mark.parametrize("broken", [None, AT_LIMIT_COUNTS], ids=["as-deployed", "broken:at-limit-counts"])
def test_at_the_limits_is_not_degraded(rows, broken):
    """Loss exactly 5 % and p95 exactly 200 ms in every heartbeat are not above the limits."""
    rule = degraded_rule() if broken is None else variant(degraded_rule(), *broken)
    result = evaluate(rule, tables(timeline(rows, "a" * 30)), T0 + 30 * MIN)
    if broken is None:
        assert result == {("dev-q",): (0.0, False)}
    else:
        assert result[("dev-q",)][1] is True


@pytest.mark.parametrize("kind", ["l", "s", "x"], ids=["loss", "p95", "all-lost"])
@pytest.mark.parametrize("broken", [None, NO_RTT], ids=["as-deployed", "broken:no-p95"])
def test_loss_or_p95_alone_degrades(rows, kind, broken):
    """Loss above the limit, p95 above the limit (loss 0), or every attempt lost (no p95 at all):
    M of the last N breach, M - 1 do not."""
    rule = degraded_rule() if broken is None else variant(degraded_rule(), *broken)
    five = evaluate(rule, tables(timeline(rows, "g" * 20 + kind * 5)), T0 + 26 * MIN)
    four = evaluate(rule, tables(timeline(rows, "g" * 20 + kind * 4 + "g")), T0 + 26 * MIN)
    if broken is not None and kind == "s":
        assert five[("dev-q",)][1] is False  # the broken variant misses a slow connection
        return
    assert five == {("dev-q",): (1.0, True)}
    assert four == {("dev-q",): (0.0, False)}


@pytest.mark.parametrize("broken", [None, NO_QUALITY_COUNTS], ids=["as-deployed", "broken:no-quality-counts"])
def test_heartbeats_without_quality_are_not_counted(rows, broken):
    """An agent that sends no quality is neither healthy nor degraded: between its measured
    heartbeats, which are all lossy, they do not dilute the count."""
    rule = degraded_rule() if broken is None else variant(degraded_rule(), *broken)
    result = evaluate(rule, tables(timeline(rows, "lnn" * 12)), T0 + 40 * MIN)
    assert result[("dev-q",)][1] is (broken is None)


def test_fewer_than_n_measured_heartbeats_give_no_row(rows):
    """A device needs N measured heartbeats before the rule judges it."""
    assert evaluate(degraded_rule(), tables(timeline(rows, "x" * 9)), T0 + 10 * MIN) == {}
    assert evaluate(degraded_rule(), tables(timeline(rows, "x" * 10)), T0 + 10 * MIN) == {("dev-q",): (1.0, True)}


def test_two_devices_are_independent(rows):
    data = tables(timeline(rows, "g" * 10 + "l" * 10, device="dev-1") + timeline(rows, "l" * 10 + "g" * 20, device="dev-2"))
    assert evaluate(degraded_rule(), data, T0 + 30 * MIN) == {("dev-1",): (1.0, True), ("dev-2",): (0.0, False)}


def test_thresholds_follow_the_parameters(rows):
    """10 % loss is degraded at the default 5 % and not at 20 %; 3 of 4 breach with N = 4, M = 3."""
    data = tables(timeline(rows, "g" * 10 + "l" * 3 + "g"))
    assert evaluate(degraded_rule(degradedOfLast=4, degradedAtLeast=3), data, T0 + 15 * MIN)[("dev-q",)] == (1.0, True)
    assert evaluate(degraded_rule(degradedOfLast=4, degradedAtLeast=3, degradedLossPct=20), data, T0 + 15 * MIN)[("dev-q",)] == (0.0, False)


# -- degraded: over time -------------------------------------------------------------------------------

# No hysteresis: the degraded state left as soon as fewer than M of the last N are degraded.
NO_HYSTERESIS = ("cleared = min(iff(in_window == 0, position, 100000))", "cleared = min(iff(in_window < at_least, position, 100000))")
# The count over every measured heartbeat of the lookback instead of a window of N.
NO_WINDOW = ("| where timestamp >= window_start and timestamp <= window_end\n", "")


@pytest.mark.parametrize("broken", [None, NO_WINDOW], ids=["as-deployed", "broken:no-window"])
def test_degraded_fires_once_and_resolves_once(rows, broken):
    """20 minutes good, 40 lossy, 70 good: one Fired once M of the last N are lossy
    (by the next evaluation), one Resolved once N heartbeats in a row were good and the rule has
    evaluated healthy twice (timeToResolve, 30 minutes)."""
    rule = degraded_rule() if broken is None else variant(degraded_rule(), *broken)
    start = T0 - 20 * MIN
    data = tables(timeline(rows, "g" * 20 + "l" * 40 + "g" * 70, start))
    sent = simulate(rule, data, start + OFF_MINUTE, start + 130 * MIN)
    if broken is not None:
        assert kinds(sent) == [("Fired", ("dev-q",))]  # never resolves: the test below can tell
        return
    assert kinds(sent) == [("Fired", ("dev-q",)), ("Resolved", ("dev-q",))]
    fired, resolved = sent
    fifth_lossy = T0 + 4 * MIN
    assert fifth_lossy < fired.at <= fifth_lossy + rule.frequency
    back = T0 + 40 * MIN  # first good heartbeat
    tenth_good = back + 9 * MIN
    assert tenth_good + rule.frequency < resolved.at <= tenth_good + 3 * rule.frequency


# Hovering at the loss limit: heartbeats just above it (l) and exactly at it (a), at random half and
# half, and in a period of 11 with 5 above (so the last 10 hold 4 or 5 of them, by turns).
_RNG = random.Random(4)  # a fixed draw, so the test is the same on every run
HOVER = {"random": "".join(_RNG.choice("la") for _ in range(120)), "periodic": ("lalalalalaa" * 11)[:120]}


@pytest.mark.parametrize("hover", sorted(HOVER))
@pytest.mark.parametrize("broken", [None, NO_HYSTERESIS], ids=["as-deployed", "broken:no-hysteresis"])
def test_no_flapping_at_the_threshold(rows, broken, hover):
    """Two hours of a connection hovering at the loss limit, with as many degraded heartbeats in the
    last N as M or one fewer: one Fired and, once it is good again, one Resolved. Without the
    hysteresis the same heartbeats flap."""
    rule = degraded_rule() if broken is None else variant(degraded_rule(), *broken)
    data = tables(timeline(rows, "g" * 30 + HOVER[hover] + "g" * 60, T0))
    sent = simulate(rule, data, T0 + OFF_MINUTE, T0 + 210 * MIN)
    if broken is None:
        assert kinds(sent) == [("Fired", ("dev-q",)), ("Resolved", ("dev-q",))]
        assert sent[1].at > T0 + 150 * MIN  # only after the hovering ended
    else:
        assert len(sent) > 2, kinds(sent)


# Judged by the heartbeats of the last N minutes before now() instead of the last N heartbeats.
AGAINST_NOW = ("| where isnotempty(tostring(customDimensions.quality_probes))\n",
               "| where isnotempty(tostring(customDimensions.quality_probes))\n| where timestamp > ago(10m)\n")


@pytest.mark.parametrize("broken", [None, AGAINST_NOW], ids=["as-deployed", "broken:against-now"])
def test_late_ingestion_neither_raises_nor_clears(rows, broken):
    """Rows ingested 20 minutes late for an hour (every row alike), while the connection is lossy for
    half an hour: one Fired and one Resolved, each evaluation judging the heartbeats it has. Judged
    against now(), the same rows look healthy while they are late, and the alert flaps."""
    rule = degraded_rule() if broken is None else variant(degraded_rule(), *broken)
    start = T0 - 20 * MIN
    delay = timedelta(minutes=20)
    beats = ingested_late(timeline(rows, "g" * 20 + "l" * 40 + "g" * 70, start), T0, T0 + 60 * MIN, delay)
    sent = simulate(rule, tables(beats), start + OFF_MINUTE, start + 130 * MIN)
    if broken is None:
        assert kinds(sent) == [("Fired", ("dev-q",)), ("Resolved", ("dev-q",))]
    else:
        assert kinds(sent) != [("Fired", ("dev-q",)), ("Resolved", ("dev-q",))]


# -- public IP change ---------------------------------------------------------------------------------


def addresses(rows: dict[str, Any], pattern: str, start: datetime = T0, device: str = "dev-q", step: timedelta = MIN) -> list[dict[str, Any]]:
    """One heartbeat per character: o from IP_OLD, N from IP_NEW, u with an unknown address."""
    kinds_ = {"o": "ip-old", "N": "ip-new", "u": "ip-unknown"}
    out = []
    for i, ch in enumerate(pattern):
        row = at(rows[kinds_[ch]], start + i * step)
        row["customDimensions"] = {**row["customDimensions"], "device": device}
        out.append(row)
    return out


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_ip_rule_is_stateless_with_the_change_as_dimensions():
    rule = ip_rule()
    assert not rule.auto_mitigate and rule.time_aggregation == "Count" and (rule.operator, rule.threshold) == ("GreaterThan", 0)
    assert rule.dimensions == ["device", "old_ip", "new_ip", "changed_at"]
    assert rule.frequency == 15 * MIN and "> ago(15m)" in rule.query


def test_one_notification_per_change_with_old_new_and_time(rows):
    """20 minutes from one address, half an hour from another, then back: two notifications, each with
    the old and the new address and the time of the first heartbeat from the new one. The device's
    first address is not a change. Another device's own changes are its own."""
    data = tables(addresses(rows, "o" * 20 + "N" * 30 + "o" * 30) + addresses(rows, "N" * 25 + "o" * 55, device="dev-2"))
    sent = simulate(ip_rule(), data, T0 + OFF_MINUTE, T0 + 90 * MIN)
    assert sorted(kinds(sent)) == sorted([
        ("Notified", ("dev-q", IP_OLD, IP_NEW, stamp(T0 + 20 * MIN))),
        ("Notified", ("dev-q", IP_NEW, IP_OLD, stamp(T0 + 50 * MIN))),
        ("Notified", ("dev-2", IP_NEW, IP_OLD, stamp(T0 + 25 * MIN))),
    ])
    for n in sent:
        changed = datetime.strptime(n.dimensions[3], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc)
        assert changed < n.at <= changed + ip_rule().frequency


UNKNOWN_COUNTS = ('| where isnotempty(ip) and ip != "unknown"\n', "| where isnotempty(ip)\n")


@pytest.mark.parametrize("broken", [None, UNKNOWN_COUNTS], ids=["as-deployed", "broken:unknown-counts"])
def test_unknown_is_ignored(rows, broken):
    """Heartbeats whose address the handler could not tell (`unknown`) neither make a change nor
    hide one: o u u o is no change, o u N is one change o -> N."""
    rule = ip_rule() if broken is None else variant(ip_rule(), *broken)
    same = simulate(rule, tables(addresses(rows, "o" * 15 + "u" * 10 + "o" * 15)), T0 + OFF_MINUTE, T0 + 50 * MIN)
    other = simulate(rule, tables(addresses(rows, "o" * 15 + "u" * 10 + "N" * 15)), T0 + OFF_MINUTE, T0 + 50 * MIN)
    if broken is None:
        assert same == []
        assert kinds(other) == [("Notified", ("dev-q", IP_OLD, IP_NEW, stamp(T0 + 25 * MIN)))]
    else:
        assert same != [] and len(other) == 2


# The change keyed on when each heartbeat was sent instead of when it was ingested.
BY_TIMESTAMP = ("ingested = ingestion_time()", "ingested = timestamp")
# A run's last ingestion instead of its first: the same change is seen again in every window.
BY_LAST_INGESTION = ("first_ingested = min(ingested)", "first_ingested = max(ingested)")


@pytest.mark.parametrize("broken", [None, BY_TIMESTAMP, BY_LAST_INGESTION], ids=["as-deployed", "broken:by-timestamp", "broken:by-last-ingestion"])
def test_a_change_is_reported_once_despite_ingestion_delay(rows, broken):
    """The new address's rows are ingested 20 minutes late for half an hour (after the window that
    covers their timestamps was evaluated), and the first of them an hour late (later than the rows
    after it): the change is reported once, by the evaluation after it became visible; when the
    first row arrives later, it moves the run's start but not the moment the change became visible."""
    rule = ip_rule() if broken is None else variant(ip_rule(), *broken)
    beats = addresses(rows, "o" * 20 + "N" * 80)
    change = T0 + 20 * MIN
    beats = ingested_late(beats, change, change + 30 * MIN, timedelta(minutes=20))
    beats[20] = at(beats[20], change, ingested=change + 60 * MIN)
    sent = simulate(rule, tables(beats), T0 + OFF_MINUTE, T0 + 100 * MIN)
    if broken is BY_TIMESTAMP:
        assert sent == []  # visible only after the window on its timestamp had passed
        return
    if broken is BY_LAST_INGESTION:
        assert len(sent) > 1
        return
    # Reported when the second new-address heartbeat arrived, with the first one that had arrived.
    assert kinds(sent) == [("Notified", ("dev-q", IP_OLD, IP_NEW, stamp(change + MIN)))]
    assert change + 21 * MIN < sent[0].at <= change + 21 * MIN + rule.frequency


# -- outage email: the cause in words -----------------------------------------------------------------


def test_outage_notification_says_the_cause_in_words(rows):
    """One notification per reported outage whose `cause` dimension is the cause in interface B's
    words (the email shows dimensions) and `cause_code` the agent's code, for every cause."""
    rule = Rule.from_template(template(), "outageReportAlert")
    assert rule.dimensions[-2:] == ["cause", "cause_code"] and len(rule.dimensions) <= 6  # Azure's limit
    events = [at(e, T0 + 2 * MIN) for e in rows["events"]]
    sent = simulate(rule, tables(events=events), T0 + OFF_MINUTE, T0 + 20 * MIN)
    got = {n.dimensions[5]: n.dimensions[4] for n in sent}
    assert got == CAUSE_WORDS


def test_a_cause_the_query_does_not_know_reads_undetermined(rows):
    """A cause code newer than the query (a future agent) is not lost: it reads as undetermined."""
    event = at(rows["events"][0], T0 + 2 * MIN)
    event["customDimensions"] = {**event["customDimensions"], "cause": "solar_flare"}
    rule = Rule.from_template(template(), "outageReportAlert")
    (n,) = simulate(rule, tables(events=[event]), T0 + OFF_MINUTE, T0 + 20 * MIN)
    assert n.dimensions[4:] == (CAUSE_WORDS["unknown"], "solar_flare")


def test_the_words_are_the_ones_every_report_uses():
    """The words in outage-report.kql are interface B's; where Cause::in_words() exists
    (src/outage.rs), it says the same, so the email and the reports never disagree."""
    query = (REPO / "queries" / "outage-report.kql").read_text(encoding="utf-8")
    for code, words in CAUSE_WORDS.items():
        assert f'"{words}"' in query, code
    source = (REPO / "src" / "outage.rs").read_text(encoding="utf-8")
    if "fn in_words" not in source:
        print("src/outage.rs has no Cause::in_words() yet: compared with interface B only")
        return
    body = source[source.index("fn in_words"):]
    body = body[: body.index("\n    }\n")]
    found = set(re.findall(r'"((?:[^"\\]|\\.)*)"', body))
    assert set(CAUSE_WORDS.values()) <= found, sorted(set(CAUSE_WORDS.values()) - found)


def test_docs_show_the_email_wording():
    """docs/alerts.md lists the cause words the email carries."""
    docs = (Path(REPO) / "docs" / "alerts.md").read_text(encoding="utf-8")
    for code, words in CAUSE_WORDS.items():
        assert f"| `{code}` | {words} |" in docs, code
