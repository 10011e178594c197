"""The alert rules, executed: the query text and rule settings main.bicep deploys run over tables made
from telemetry the real handler sent (rows rebased in time to simulate heartbeats and evaluations),
and the per-device outcome is checked: silent fires, active does not, devices are independent, rows the
Functions host logs or refused heartbeats never count, outages are reported once each."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from alert_sim import Rule, evaluate, run_query, simulate
from appinsights import at, every_minute, host_request_row, ingested_late
from conftest import DOCS, rule_deployed, template, workbook_queries

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def tables(requests=(), events=()):
    return {"requests": list(requests), "customEvents": list(events)}


def heartbeats(row, start, end, step=MIN):
    return every_minute(row, start, end, step)


def silence_rule(**params):
    return Rule.from_template(template(**params), "silenceAlert")


# -- silence rule: one evaluation ------------------------------------------------------------------


@pytest.mark.parametrize("silence_minutes", [5, 12])
def test_silent_device_breaches_at_exactly_silence_minutes(captured_rows, silence_minutes):
    """While another device's heartbeats keep arriving, a device whose last heartbeat is
    silenceMinutes old breaches; one minute younger does not."""
    rule = silence_rule(silenceMinutes=silence_minutes)
    last = T0 - silence_minutes * MIN
    a = heartbeats(captured_rows["dev-a"], T0 - 60 * MIN, last)
    b = heartbeats(captured_rows["dev-b"], T0 - 60 * MIN, T0)
    assert evaluate(rule, tables(a + b), T0)[("dev-a",)] == (float(silence_minutes), True)
    b_until_then = [r for r in b if r["timestamp"] <= T0 - MIN]
    assert evaluate(rule, tables(a + b_until_then), T0 - MIN)[("dev-a",)] == (float(silence_minutes - 1), False)


@pytest.mark.parametrize("silence_minutes", [2, 5])
def test_a_lone_silent_device_breaches_6_minutes_later(captured_rows, silence_minutes):
    """With nothing else arriving, the last 6 minutes are not counted (they may be ingestion delay):
    a lone device breaches silenceMinutes + 6 minutes after its last heartbeat, not before."""
    rule = silence_rule(silenceMinutes=silence_minutes)
    last = T0 - (silence_minutes + 6) * MIN
    data = tables(heartbeats(captured_rows["dev-a"], T0 - 60 * MIN, last))
    assert evaluate(rule, data, T0) == {("dev-a",): (float(silence_minutes), True)}
    assert evaluate(rule, data, T0 - MIN) == {("dev-a",): (float(silence_minutes - 1), False)}


def test_active_device_has_a_non_breaching_row(captured_rows):
    """An active device is listed (so a recovered device resolves explicitly) and does not breach."""
    rule = silence_rule()
    data = tables(heartbeats(captured_rows["dev-b"], T0 - 60 * MIN, T0 - MIN))
    assert evaluate(rule, data, T0) == {("dev-b",): (0.0, False)}


@pytest.mark.parametrize("success_type", ["bool", "string"])
def test_two_devices_are_independent(captured_rows, success_type):
    """Each device is its own dimension value: one silent, one active, then the other way round."""
    rule = silence_rule()
    a_silent = heartbeats(captured_rows["dev-a"], T0 - 60 * MIN, T0 - 20 * MIN)
    b_active = heartbeats(captured_rows["dev-b"], T0 - 60 * MIN, T0)
    result = evaluate(rule, tables(a_silent + b_active), T0, success_type)
    assert result == {("dev-a",): (20.0, True), ("dev-b",): (0.0, False)}

    a_back = a_silent + heartbeats(captured_rows["dev-a"], T0 - 2 * MIN, T0)
    b_silent = heartbeats(captured_rows["dev-b"], T0 - 60 * MIN, T0 - 9 * MIN)
    result = evaluate(rule, tables(a_back + b_silent), T0, success_type)
    assert result == {("dev-a",): (0.0, False), ("dev-b",): (9.0, True)}


def test_host_logged_rows_are_not_heartbeats(captured_rows):
    """The Functions host logs its own `Ping` row per invocation (no emitter): a silent device stays
    silent however many of those arrive, and they never show up as a device."""
    rule = silence_rule()
    a_silent = heartbeats(captured_rows["dev-a"], T0 - 60 * MIN, T0 - 30 * MIN)
    host = [host_request_row(captured_rows["dev-a"], T0 - m * MIN) for m in range(0, 60)]
    assert all(r["name"] == "Ping" and r["success"] is True for r in host)
    assert evaluate(rule, tables(a_silent + host), T0) == {("dev-a",): (30.0, True)}
    assert evaluate(rule, tables(host), T0) == {}


def test_refused_heartbeats_are_not_heartbeats(captured_rows):
    """Heartbeats the handler refused (success false, as the real handler logged them) do not count."""
    rule = silence_rule()
    refused = captured_rows["refused"]
    assert refused and all(r["customDimensions"]["emitter"] == "isp-monitor-handler" for r in refused)
    a_silent = heartbeats(captured_rows["dev-a"], T0 - 60 * MIN, T0 - 10 * MIN)
    noise = [at(refused[m % len(refused)], T0 - m * MIN) for m in range(0, 10)]
    assert evaluate(rule, tables(a_silent + noise), T0) == {("dev-a",): (10.0, True)}


def test_the_query_time_range_is_what_lets_a_silent_device_be_seen(captured_rows):
    """With only windowSize of data a silent device has no rows at all, so it could never fire: the
    rule's overrideQueryTimeRange is what makes silence visible. Past that lookback a device drops out
    (documented in docs/alerts.md)."""
    rule = silence_rule()
    data = tables(heartbeats(captured_rows["dev-a"], T0 - 120 * MIN, T0 - 30 * MIN))
    assert evaluate(rule, data, T0) == {("dev-a",): (24.0, True)}  # alone: 30 minutes, less the 6 of the guard
    window_only = Rule(**{**rule.__dict__, "query_range": rule.frequency})
    assert evaluate(window_only, data, T0) == {}
    gone = tables(heartbeats(captured_rows["dev-a"], T0 - 3 * 24 * 60 * MIN, T0 - 2 * 24 * 60 * MIN - 5 * MIN, 15 * MIN))
    assert evaluate(rule, gone, T0) == {}


# -- silence rule: over time -----------------------------------------------------------------------


@pytest.mark.parametrize("frequency", [1, 5, 10, 15])
def test_silence_alert_fires_once_and_resolves_once_per_device(captured_rows, frequency):
    """Over a 40-minute outage of dev-a (dev-b and the host carry on), the stateful rule sends one
    Fired and one Resolved for dev-a, nothing for dev-b, within the delays docs/alerts.md states."""
    silence = 5
    rule = silence_rule(silenceMinutes=silence, silenceEvaluationMinutes=frequency)
    last, back = T0, T0 + 40 * MIN
    a = heartbeats(captured_rows["dev-a"], T0 - 90 * MIN, last) + heartbeats(captured_rows["dev-a"], back, T0 + 120 * MIN)
    b = heartbeats(captured_rows["dev-b"], T0 - 90 * MIN, T0 + 120 * MIN)
    host = [host_request_row(captured_rows["dev-a"], T0 + m * MIN) for m in range(-90, 120)]
    start = T0 - 30 * MIN + timedelta(seconds=20)  # evaluations off the minute, as Azure's are
    sent = simulate(rule, tables(a + b + host), start, T0 + 115 * MIN)

    assert [(n.kind, n.dimensions) for n in sent] == [("Fired", ("dev-a",)), ("Resolved", ("dev-a",))]
    fired, resolved = sent
    assert timedelta(minutes=silence) <= fired.at - last <= timedelta(minutes=silence + frequency)
    assert fired.value >= silence
    lag = resolved.at - back
    assert (rule.resolve_after - 1) * rule.frequency <= lag <= rule.resolve_after * rule.frequency


def test_reminders_repeat_while_silent_and_stop_when_back(captured_rows):
    """The stateless reminder rule notifies every reminderMinutes while a device stays silent, starts
    one interval after the silence alert, stops when heartbeats return, and never for an active device."""
    silence, reminder = 5, 15
    t = template(silenceMinutes=silence, reminderMinutes=reminder)
    rule = Rule.from_template(t, "reminderAlert")
    assert rule_deployed(t, "reminderAlert") and not rule.auto_mitigate
    last, back = T0, T0 + 70 * MIN
    a = heartbeats(captured_rows["dev-a"], T0 - 90 * MIN, last) + heartbeats(captured_rows["dev-a"], back, T0 + 150 * MIN)
    b = heartbeats(captured_rows["dev-b"], T0 - 90 * MIN, T0 + 150 * MIN)
    sent = simulate(rule, tables(a + b), T0 + timedelta(seconds=20), T0 + 150 * MIN)

    assert {n.dimensions for n in sent} == {("dev-a",)}
    times = [n.at for n in sent]
    assert len(times) >= 3
    assert all(later - earlier == timedelta(minutes=reminder) for earlier, later in zip(times, times[1:]))
    assert times[0] - last >= timedelta(minutes=silence + reminder)
    assert times[-1] < back
    assert not rule_deployed(template(reminderMinutes=0), "reminderAlert")


# -- outage report ---------------------------------------------------------------------------------


@pytest.mark.parametrize("report_minutes", [15, 30])
def test_outage_report_notifies_once_per_outage_with_its_details(captured_rows, report_minutes):
    """Each reported outage produces one notification whose dimensions carry device, start, end,
    duration and cause as the agent sent them; an agent's resend of the same outage is not reported again."""
    rule = Rule.from_template(template(outageReportMinutes=report_minutes), "outageReportAlert")
    assert not rule.auto_mitigate and rule.time_aggregation == "Count"
    assert rule.dimensions == ["device", "start_utc", "end_utc", "duration_minutes", "cause", "cause_code"]
    a, b = captured_rows["outage-a"], captured_rows["outage-b"]
    events = [at(a, T0 + 3 * MIN), at(b, T0 + 4 * MIN), at(a, T0 + (report_minutes + 5) * MIN)]  # resend of a
    data = tables(heartbeats(captured_rows["dev-a"], T0 - 30 * MIN, T0 + 90 * MIN), events)
    sent = simulate(rule, data, T0 + timedelta(seconds=20), T0 + 3 * report_minutes * MIN)

    expected = {
        ("dev-a", "2026-11-25T10:00:00Z", "2026-11-25T10:07:30Z", 7.5, "your internet provider (DNS and internet targets unreachable)", "isp"),
        ("dev-b", "2026-11-25T11:00:00Z", "2026-11-25T11:02:00Z", 2.0, "name resolution (internet targets answered, the endpoint's name did not resolve)", "dns"),
    }
    assert sorted(n.dimensions for n in sent) == sorted(expected)
    assert {n.kind for n in sent} == {"Notified"}
    assert all(n.at - T0 <= timedelta(minutes=report_minutes + 1) for n in sent)


# -- workbook queries over the same rows -----------------------------------------------------------


def workbook(name):
    return workbook_queries(template())[f"main.bicep:workbook:{name}"]


def test_workbook_public_ip_shows_the_change(captured_rows):
    """The public-IP panel lists dev-a's two addresses (from customDimensions.client_ip; the client_IP
    column is masked) in the order they were used."""
    rows = captured_rows["all"]["requests"]
    a_rows = [r for r in rows if r["customDimensions"]["device"] == "dev-a" and r["success"]]
    data = tables([at(a_rows[0], T0 - 60 * MIN), at(a_rows[0], T0 - 50 * MIN), at(a_rows[1], T0 - 10 * MIN)])
    result = run_query(workbook("public-ip"), data, T0)
    assert [(r["device"], r["public_ip"], r["heartbeats"]) for r in result] == [
        ("dev-a", "203.0.113.7", 2),
        ("dev-a", "203.0.113.99", 1),
    ]


def test_workbook_outages_deduplicates_resends(captured_rows):
    a, b = captured_rows["outage-a"], captured_rows["outage-b"]
    data = tables(events=[at(a, T0 - 60 * MIN), at(a, T0 - 30 * MIN), at(b, T0 - 20 * MIN)])
    result = run_query(workbook("outages"), data, T0)
    assert [(r["device"], r["duration_minutes"], r["cause"]) for r in result] == [("dev-b", 2.0, "dns"), ("dev-a", 7.5, "isp")]


def test_workbook_uptime_and_round_trip_time(captured_rows):
    """Uptime: dev-b heartbeats throughout the last day, dev-a misses 3 hours of it. Round-trip time
    comes from the agents' rtt_ms."""
    day = 24 * 60 * MIN
    b = heartbeats(captured_rows["dev-b"], T0 - day + 5 * MIN, T0, 5 * MIN)
    a = heartbeats(captured_rows["dev-a"], T0 - day + 5 * MIN, T0 - 6 * 60 * MIN, 5 * MIN)
    a += heartbeats(captured_rows["dev-a"], T0 - 3 * 60 * MIN + 5 * MIN, T0, 5 * MIN)
    uptime = {r["device"]: r["uptime_24h_pct"] for r in run_query(workbook("uptime"), tables(a + b), T0)}
    assert uptime["dev-b"] == 100.0
    assert 85.0 <= uptime["dev-a"] <= 88.0  # 3 of 24 hours missing

    rtt = run_query(workbook("round-trip-time"), tables(a[-1:] + b[-1:]), T0)
    assert {(r["device"], r["avg_rtt_ms"]) for r in rtt} == {("dev-a", 12.0), ("dev-b", 15.0)}


# -- late ingestion --------------------------------------------------------------------------------
# Azure warns that log search alerts detect missing data poorly because data is ingested with a
# delay (docs/platform.md §7). These tests delay the ingestion of the rows (they become visible, and
# ingestion_time() says so, only `delay` after their timestamp) whatever the device does.

SIX = timedelta(minutes=6)

# The silence query as it was before the guard: silence measured against now(). Kept here only to
# show that the late-ingestion tests below can fail.
UNGUARDED_SILENCE_QUERY = """requests
| where timestamp > ago(2d)
| where name == "Ping" and tostring(customDimensions.emitter) == "isp-monitor-handler" and success == true
| extend device = tostring(customDimensions.device)
| summarize last_heartbeat = max(timestamp) by device
| extend minutes_silent = round((now() - last_heartbeat) / 1m, 1)
| project device, minutes_silent
"""


def test_the_stand_in_hides_rows_until_ingested_and_returns_their_ingestion_time(captured_rows):
    """duckdb-kql has no ingestion_time(); the stand-in's returns each row's ingestion time, and a
    row not yet ingested is not there at all."""
    a = captured_rows["outage-a"]
    data = tables(events=[at(a, T0 - 10 * MIN, ingested=T0 - 2 * MIN)])
    query = "customEvents | extend i = ingestion_time() | project timestamp, i"
    assert run_query(query, data, T0) == [{"timestamp": (T0 - 10 * MIN).replace(tzinfo=None), "i": (T0 - 2 * MIN).replace(tzinfo=None)}]
    assert run_query(query, data, T0 - 3 * MIN) == []


@pytest.mark.parametrize("report_minutes", [5, 15])
def test_outage_ingested_after_its_window_is_reported_once(captured_rows, report_minutes):
    """An outage event stamped inside one evaluation window but ingested only after that window was
    evaluated is still reported, exactly once, by the evaluation that follows its ingestion."""
    rule = Rule.from_template(template(outageReportMinutes=report_minutes), "outageReportAlert")
    a = captured_rows["outage-a"]
    late = at(a, T0 + 3 * MIN, ingested=T0 + (report_minutes + 9) * MIN)
    sent = simulate(rule, tables(events=[late]), T0 + timedelta(seconds=20), T0 + 4 * report_minutes * MIN)
    assert [n.dimensions[0] for n in sent] == ["dev-a"]
    assert T0 + (report_minutes + 9) * MIN <= sent[0].at <= T0 + (2 * report_minutes + 10) * MIN


def test_an_outage_report_keyed_on_timestamp_would_miss_it(captured_rows):
    """The same late outage with the window on timestamp instead of ingestion_time() is never
    reported: the simulation can tell the two apart."""
    rule = Rule.from_template(template(outageReportMinutes=15), "outageReportAlert")
    assert "min(ingestion_time())" in rule.query
    by_timestamp = Rule(**{**rule.__dict__, "query": rule.query.replace("min(ingestion_time())", "min(timestamp)")})
    late = at(captured_rows["outage-a"], T0 + 3 * MIN, ingested=T0 + 24 * MIN)
    assert simulate(by_timestamp, tables(events=[late]), T0 + timedelta(seconds=20), T0 + 60 * MIN) == []


def lone_device_with_a_delay(captured_rows, delay_from, delay_until, delay):
    rows = heartbeats(captured_rows["dev-a"], T0 - 90 * MIN, T0 + 90 * MIN)
    return tables(ingested_late(rows, delay_from, delay_until, delay))


@pytest.mark.parametrize("silence_minutes", [2, 5])
@pytest.mark.parametrize("frequency", [1, 5, 10, 15])
def test_a_six_minute_ingestion_delay_raises_no_silence_alert(captured_rows, frequency, silence_minutes):
    """One device heartbeating every minute while Azure ingests its rows 6 minutes late for a
    quarter of an hour: neither the silence rule nor the reminder sends anything, whatever the frequency and
    however low silenceMinutes is set."""
    data = lone_device_with_a_delay(captured_rows, T0, T0 + 15 * MIN, SIX)
    # From just before the delay until well after it has caught up.
    start, end = T0 - 2 * MIN + timedelta(seconds=20), T0 + 30 * MIN
    rule = silence_rule(silenceMinutes=silence_minutes, silenceEvaluationMinutes=frequency)
    assert simulate(rule, data, start, end) == []
    reminder = Rule.from_template(template(silenceMinutes=silence_minutes, reminderMinutes=5), "reminderAlert")
    assert simulate(reminder, data, start, end) == []


def test_without_the_guard_the_same_delay_cries_wolf(captured_rows):
    """The same delay with silence measured against now() fires (and resolves) for a device that never
    stopped: the test above can fail."""
    rule = silence_rule(silenceEvaluationMinutes=1)
    unguarded = Rule(**{**rule.__dict__, "query": UNGUARDED_SILENCE_QUERY})
    data = lone_device_with_a_delay(captured_rows, T0, T0 + 15 * MIN, SIX)
    sent = simulate(unguarded, data, T0 - 2 * MIN + timedelta(seconds=20), T0 + 30 * MIN)
    assert [n.kind for n in sent] == ["Fired", "Resolved"]


# The delays docs/alerts.md states, read from its table: {frequency: {column: (expected, worst)}}.
DELAY_ROW = re.compile(r"^\| \**(\d+) minutes?(?: \(default\))?\** \| ≈ (\d+) / (\d+) min \| ≈ (\d+) / (\d+) min \| ≈ (\d+) / (\d+) min \|", re.M)


def documented_delays():
    text = (DOCS / "alerts.md").read_text(encoding="utf-8")
    rows = {int(m[0]): {"alone": (int(m[1]), int(m[2])), "others": (int(m[3]), int(m[4])), "resolved": (int(m[5]), int(m[6]))}
            for m in DELAY_ROW.findall(text)}
    assert set(rows) == {1, 5, 10, 15}, f"docs/alerts.md delay table not found or incomplete: {rows}"
    return rows


@pytest.mark.parametrize("frequency", [1, 5, 10, 15])
@pytest.mark.parametrize("others", [False, True], ids=["alone", "with-another-device"])
def test_a_real_silence_fires_and_resolves_within_the_documented_delay(captured_rows, frequency, others):
    """A real 40-minute silence of dev-a (alone, or with dev-b still sending) fires once and resolves
    once, within the worst delays docs/alerts.md states for that frequency (defaults otherwise), and
    not before the silence is silenceMinutes old."""
    silence = 5
    rule = silence_rule(silenceMinutes=silence, silenceEvaluationMinutes=frequency)
    last, back = T0, T0 + 40 * MIN
    rows = heartbeats(captured_rows["dev-a"], T0 - 90 * MIN, last) + heartbeats(captured_rows["dev-a"], back, T0 + 120 * MIN)
    if others:
        rows += heartbeats(captured_rows["dev-b"], T0 - 90 * MIN, T0 + 120 * MIN)
    # From one interval before the last heartbeat to a few intervals after the latest Resolved allowed.
    start = T0 - rule.frequency + timedelta(seconds=20)
    sent = simulate(rule, tables(rows), start, back + (rule.resolve_after + 2) * rule.frequency)
    assert [(n.kind, n.dimensions) for n in sent] == [("Fired", ("dev-a",)), ("Resolved", ("dev-a",))]
    fired, resolved = sent
    documented = documented_delays()[frequency]
    assert timedelta(minutes=silence) <= fired.at - last <= timedelta(minutes=documented["others" if others else "alone"][1])
    assert resolved.at - back <= timedelta(minutes=documented["resolved"][1])
    # The chosen time to resolve, not Azure's default, decides when Resolved comes.
    assert (rule.resolve_after - 1) * rule.frequency <= resolved.at - back <= rule.resolve_after * rule.frequency
