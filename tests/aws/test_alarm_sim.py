"""The alarm simulation against CloudWatch's documented behaviour, and proof it can fail."""

from __future__ import annotations

import json

import pytest
from cloudwatch import ALARM, INSUFFICIENT, OK, AlarmSim, EmfError, MetricAlarm, MetricStore, parse_emf

# CloudWatch User Guide, "How the alarm state is evaluated when data is missing": 5 datapoints
# retrieved (oldest first); 0 not breaching, X breaching, - missing; the state for each treatment.
KEEP = "keep"
TABLE_3_OF_3 = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT, KEEP, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - - - X", INSUFFICIENT, KEEP, ALARM, OK),
    ("X - - - -", ALARM, KEEP, ALARM, OK),
]
TABLE_2_OF_3 = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - - X", INSUFFICIENT, KEEP, ALARM, OK),
]
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


def alarm(m: int, n: int, treat: str) -> MetricAlarm:
    return MetricAlarm.from_properties(
        {
            "AlarmName": "t", "Namespace": "T", "MetricName": "m", "Statistic": "Maximum",
            "Period": 300, "EvaluationPeriods": n, "DatapointsToAlarm": m, "Threshold": 3,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": treat,
        }
    )  # fmt: skip


def points(row: str) -> list[float | None]:
    return [{"0": 0.0, "X": 5.0, "-": None}[c] for c in row.split()]


def mismatches(decide) -> list[str]:
    """Every cell of both documented tables that ``decide(alarm, points, state)`` gets wrong."""
    wrong = []
    for (m, n), table in (((3, 3), TABLE_3_OF_3), ((2, 3), TABLE_2_OF_3)):
        for row, *expected in table:
            for treat, want in zip(TREATMENTS, expected):
                for before in (OK, ALARM):
                    got = decide(alarm(m, n, treat), points(row), before)
                    if got != (before if want == KEEP else want):
                        wrong.append(f"{m}/{n} {row} {treat} from {before}: {got}, documented {want}")
    return wrong


def test_evaluation_matches_both_documented_tables():
    """Every cell of the guide's two tables, from either previous state."""
    assert mismatches(lambda a, p, s: a.decide(p, s)) == []


def naive(a: MetricAlarm, pts, state):
    """The reading the guide warns against: the last N slots, missing ones filled, real older
    datapoints ignored."""
    last = pts[-a.evaluation_periods :]
    fill = {"breaching": True, "notBreaching": False}.get(a.treat_missing, False)
    flags = [fill if p is None else a.breaching(p) for p in last]
    return ALARM if sum(flags) >= a.datapoints_to_alarm else OK


def test_the_table_check_catches_a_wrong_evaluation():
    """The check can fail: the naive evaluation disagrees with the guide in several cells."""
    assert len(mismatches(naive)) >= 5


def emf(ts_ms: int, device: str, value=1) -> str:
    return json.dumps(
        {
            "_aws": {"Timestamp": ts_ms, "CloudWatchMetrics": [
                {"Namespace": "ISPMonitor", "Dimensions": [["Device"]], "Metrics": [{"Name": "Heartbeat", "Unit": "Count"}]}
            ]},
            "Device": device, "Heartbeat": value,
        }
    )  # fmt: skip


def test_emf_line_becomes_one_sample_per_metric():
    (s,) = parse_emf(emf(1_700_000_000_123, "attic"), visible_after=30)
    assert (s.namespace, s.metric, s.dimensions, s.value, s.unit) == ("ISPMonitor", "Heartbeat", (("Device", "attic"),), 1.0, "Count")
    assert s.timestamp == 1_700_000_000.123 and s.visible_at == s.timestamp + 30


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: d["_aws"].pop("Timestamp"), "Timestamp"),
        (lambda d: d["_aws"].update(Timestamp="1700000000000"), "Timestamp"),
        (lambda d: d.pop("Device"), "dimension"),
        (lambda d: d.update(Device=7), "dimension"),
        (lambda d: d.update(Heartbeat="1"), "metric"),
        (lambda d: d.pop("Heartbeat"), "metric"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].pop("Namespace"), "Namespace"),
    ],
)
def test_emf_lines_that_cloudwatch_would_not_extract_are_refused(mutate, reason):
    doc = json.loads(emf(1_700_000_000_000, "attic"))
    mutate(doc)
    with pytest.raises(EmfError, match=reason):
        parse_emf(json.dumps(doc))


def test_notifications_only_on_change_of_state():
    """A device silent for an hour gives one ALARM notification, not one per evaluation."""
    a = MetricAlarm.from_properties(
        {
            "AlarmName": "silent", "Namespace": "ISPMonitor", "MetricName": "Heartbeat",
            "Dimensions": [{"Name": "Device", "Value": "attic"}], "Statistic": "Sum", "Period": 60,
            "EvaluationPeriods": 5, "DatapointsToAlarm": 5, "Threshold": 1,
            "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
            "AlarmActions": ["topic"], "OKActions": ["topic"],
        }
    )  # fmt: skip
    t0 = 1_800_000_000
    store = MetricStore(s for i in range(10) for s in parse_emf(emf((t0 + 60 * i) * 1000, "attic")))
    sim = AlarmSim(a, store)
    sent = sim.run(t0, t0 + 3600)
    assert [(n.old, n.new) for n in sent] == [(INSUFFICIENT, OK), (OK, ALARM)]
    assert all(state == ALARM for t, state in sim.history if t > t0 + 1200)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"TreatMissingData": "sometimes"}, ValueError),
        ({"DatapointsToAlarm": 9}, ValueError),
        ({"Period": 45}, ValueError),
        ({"Metrics": []}, Exception),
        ({"Statistic": "p99"}, Exception),
    ],
)
def test_alarm_definitions_outside_the_model_are_refused(change, error):
    props = {
        "AlarmName": "a", "Namespace": "N", "MetricName": "m", "Statistic": "Sum", "Period": 60,
        "EvaluationPeriods": 5, "Threshold": 1, "ComparisonOperator": "LessThanThreshold",
    }  # fmt: skip
    props.update(change)
    with pytest.raises(error):
        MetricAlarm.from_properties(props)
