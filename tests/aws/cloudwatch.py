"""CloudWatch, simulated for what our alarms depend on (docs/platform.md §12 has the sources):

- **Embedded metric format**: a log line that is a JSON object with ``_aws.Timestamp`` (epoch ms)
  and ``_aws.CloudWatchMetrics`` (Namespace, Dimensions: lists of root member names, Metrics: Name
  and Unit) becomes one sample per metric and dimension set, its value the root member of the
  metric's name (a number or a list of numbers), its dimensions the named root members (strings).
  A line that breaks these rules raises ``EmfError`` (CloudWatch would extract nothing from it).
- **Datapoints**: a metric alarm sees one datapoint per period (aligned to the period from the
  epoch): the statistic of the samples whose timestamp falls in it, or *missing* when there are
  none. A sample is visible only from its ``visible_at`` time on (ingestion latency).
- **Evaluation** (CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing data"):
  each evaluation retrieves the datapoints of an *evaluation range* of ``R`` periods, more than
  EvaluationPeriods ``N`` (the guide's example: 5 for ``N`` = 3; the exact number is not
  published, so it is a parameter here). Then
    - with at least ``N`` existing datapoints, the most recent ``N`` existing ones are evaluated
      and missing ones are not needed;
    - with none, the state follows TreatMissingData: missing → INSUFFICIENT_DATA, ignore → kept,
      breaching → ALARM, notBreaching → OK;
    - with some, breaching/notBreaching fill the missing ones (as few as possible, real ones are
      all kept) up to ``N``; ``ignore`` and ``missing`` evaluate the real ones alone, as the guide's
      two tables show (a non-breaching one gives OK; otherwise ignore keeps the state, missing
      gives ALARM when the oldest datapoint of the range is breaching, else INSUFFICIENT_DATA).
  ``DatapointsToAlarm`` ``M`` or more breaching of the ``N`` gives ALARM, fewer OK.
- **Actions** run on a change of state only (AlarmActions into ALARM, OKActions into OK,
  InsufficientDataActions into INSUFFICIENT_DATA); a new alarm starts in INSUFFICIENT_DATA. SNS
  actions are not repeated while the state holds.
What this cannot show: CloudWatch's own evaluation schedule and the EMF extraction latency
(both parameters here); docs/aws.md adds them to the delays.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from cfn import Unsupported

ALARM, OK, INSUFFICIENT = "ALARM", "OK", "INSUFFICIENT_DATA"
KEEP = "keep"

OPERATORS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
TREATMENTS = ("breaching", "notBreaching", "ignore", "missing")
STATISTICS = ("Sum", "SampleCount", "Average", "Minimum", "Maximum")


class EmfError(ValueError):
    """A line CloudWatch would not extract metrics from."""


@dataclass(frozen=True)
class Sample:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp: float  # seconds since the epoch
    value: float
    unit: str | None
    visible_at: float


def parse_emf(line: str, visible_after: float = 0.0) -> list[Sample]:
    """The samples one EMF log line carries (see the module doc), visible ``visible_after``
    seconds after their timestamp."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as e:
        raise EmfError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise EmfError("not a JSON object")
    meta = doc.get("_aws")
    if not isinstance(meta, dict):
        raise EmfError("no _aws object")
    ts = meta.get("Timestamp")
    if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
        raise EmfError("_aws.Timestamp must be a positive integer of milliseconds")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        raise EmfError("_aws.CloudWatchMetrics must be a non-empty list")
    samples = []
    for d in directives:
        if not isinstance(d, dict):
            raise EmfError("a metric directive must be an object")
        ns = d.get("Namespace")
        if not isinstance(ns, str) or not 1 <= len(ns) <= 1024:
            raise EmfError("Namespace must be a string of 1-1024 characters")
        dim_sets = d.get("Dimensions")
        if not isinstance(dim_sets, list):
            raise EmfError("Dimensions must be a list of dimension sets")
        metrics = d.get("Metrics")
        if not isinstance(metrics, list) or not 1 <= len(metrics) <= 100:
            raise EmfError("Metrics must be a list of 1-100 metric definitions")
        resolved_sets = []
        for dim_set in dim_sets:
            if not isinstance(dim_set, list) or len(dim_set) > 30:
                raise EmfError("a dimension set must be a list of at most 30 names")
            dims = []
            for name in dim_set:
                value = doc.get(name) if isinstance(name, str) else None
                if not isinstance(value, str) or not value:
                    raise EmfError(f"dimension {name!r} must name a non-empty string member")
                dims.append((name, value))
            resolved_sets.append(tuple(sorted(dims)))
        for m in metrics:
            if not isinstance(m, dict) or not isinstance(m.get("Name"), str):
                raise EmfError("a metric definition needs a Name")
            raw = doc.get(m["Name"])
            values = raw if isinstance(raw, list) else [raw]
            if raw is None or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
            ):
                raise EmfError(f"metric {m['Name']} must name a number or a list of numbers")
            for dims in resolved_sets or [()]:
                for v in values:
                    samples.append(
                        Sample(ns, m["Name"], dims, ts / 1000, float(v), m.get("Unit"), ts / 1000 + visible_after)
                    )
    return samples


class MetricStore:
    def __init__(self, samples: Iterable[Sample] = ()) -> None:
        self._by_key: dict[tuple, list[Sample]] = defaultdict(list)
        for s in samples:
            self.add(s)

    def add(self, sample: Sample) -> None:
        self._by_key[(sample.namespace, sample.metric, sample.dimensions)].append(sample)

    def datapoint(self, key: tuple, statistic: str, start: float, end: float, now: float) -> float | None:
        values = [s.value for s in self._by_key.get(key, ()) if start <= s.timestamp < end and s.visible_at <= now]
        if not values:
            return None
        return {
            "Sum": sum,
            "SampleCount": len,
            "Average": lambda v: sum(v) / len(v),
            "Minimum": min,
            "Maximum": max,
        }[statistic](values)


@dataclass
class MetricAlarm:
    name: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    operator: str
    treat_missing: str
    actions_enabled: bool = True
    alarm_actions: list[str] = field(default_factory=list)
    ok_actions: list[str] = field(default_factory=list)
    insufficient_actions: list[str] = field(default_factory=list)

    KNOWN = {
        "AlarmName", "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "Period",
        "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
        "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions",
    }  # fmt: skip

    @classmethod
    def from_properties(cls, props: dict[str, Any]) -> "MetricAlarm":
        """A static-threshold alarm on one metric, from resolved CloudFormation properties;
        anything else (metric math, percentiles, units, anomaly bands) is ``Unsupported``."""
        unknown = set(props) - cls.KNOWN
        if unknown:
            raise Unsupported(f"alarm properties {sorted(unknown)}")
        statistic = props.get("Statistic")
        if statistic not in STATISTICS:
            raise Unsupported(f"statistic {statistic!r}")
        operator = props["ComparisonOperator"]
        if operator not in OPERATORS:
            raise Unsupported(f"operator {operator}")
        period = int(props["Period"])
        n = int(props["EvaluationPeriods"])
        m = int(props.get("DatapointsToAlarm", n))
        treat = props.get("TreatMissingData", "missing")
        if treat not in TREATMENTS:
            raise ValueError(f"TreatMissingData {treat!r} is not one of {TREATMENTS}")
        if period not in (10, 20, 30) and period % 60:
            raise ValueError(f"Period {period} must be 10, 20, 30 or a multiple of 60")
        if period < 3600 and period * n > 86400:
            raise ValueError("Period x EvaluationPeriods may not exceed one day below an hour's period")
        if not 1 <= m <= n:
            raise ValueError(f"DatapointsToAlarm {m} must be between 1 and EvaluationPeriods {n}")
        dims = tuple(sorted((d["Name"], d["Value"]) for d in props.get("Dimensions", [])))
        return cls(
            name=props["AlarmName"],
            namespace=props["Namespace"],
            metric=props["MetricName"],
            dimensions=dims,
            statistic=statistic,
            period=period,
            evaluation_periods=n,
            datapoints_to_alarm=m,
            threshold=float(props["Threshold"]),
            operator=operator,
            treat_missing=treat,
            actions_enabled=props.get("ActionsEnabled", True) in (True, "true", "True"),
            alarm_actions=list(props.get("AlarmActions", [])),
            ok_actions=list(props.get("OKActions", [])),
            insufficient_actions=list(props.get("InsufficientDataActions", [])),
        )

    def breaching(self, value: float) -> bool:
        return OPERATORS[self.operator](value, self.threshold)

    def decide(self, points: list[float | None], state: str) -> str:
        """The new state from the evaluation range's datapoints (oldest first, None = missing)."""
        n, m = self.evaluation_periods, self.datapoints_to_alarm
        existing = [p for p in points if p is not None]
        if len(existing) >= n:
            evaluated = [self.breaching(p) for p in existing[-n:]]
        elif not existing:
            return {"missing": INSUFFICIENT, "ignore": state, "breaching": ALARM, "notBreaching": OK}[self.treat_missing]
        elif self.treat_missing in ("breaching", "notBreaching"):
            fill = self.treat_missing == "breaching"
            evaluated = [self.breaching(p) for p in existing] + [fill] * (n - len(existing))
        else:
            real = [self.breaching(p) for p in existing]
            if sum(real) >= m:
                return ALARM
            if not all(real):
                return OK
            if self.treat_missing == "ignore":
                return state
            return ALARM if points[0] is not None else INSUFFICIENT
        return ALARM if sum(evaluated) >= m else OK


@dataclass
class Notification:
    time: float
    alarm: str
    old: str
    new: str
    actions: list[str]


class AlarmSim:
    """One alarm over a metric store, evaluated at chosen times."""

    def __init__(self, alarm: MetricAlarm, store: MetricStore, evaluation_range: int | None = None) -> None:
        self.alarm = alarm
        self.store = store
        self.range = evaluation_range if evaluation_range is not None else alarm.evaluation_periods + 2
        if self.range < alarm.evaluation_periods:
            raise ValueError("the evaluation range is at least EvaluationPeriods")
        self.state = INSUFFICIENT
        self.notifications: list[Notification] = []
        self.history: list[tuple[float, str]] = []

    def points(self, now: float) -> list[float | None]:
        a = self.alarm
        last_end = math.floor(now / a.period) * a.period
        key = (a.namespace, a.metric, a.dimensions)
        starts = [last_end - (self.range - i) * a.period for i in range(self.range)]
        return [self.store.datapoint(key, a.statistic, s, s + a.period, now) for s in starts]

    def evaluate(self, now: float) -> str:
        new = self.alarm.decide(self.points(now), self.state)
        if new != self.state:
            actions = {ALARM: self.alarm.alarm_actions, OK: self.alarm.ok_actions, INSUFFICIENT: self.alarm.insufficient_actions}[new]
            if self.alarm.actions_enabled and actions:
                self.notifications.append(Notification(now, self.alarm.name, self.state, new, list(actions)))
            self.state = new
        self.history.append((now, self.state))
        return self.state

    def run(self, start: float, end: float, every: float = 60.0, offset: float = 10.0) -> list[Notification]:
        """Evaluates every ``every`` seconds from the first minute boundary after ``start`` plus
        ``offset`` up to ``end``; returns the notifications sent."""
        t = math.floor(start / every) * every + every + offset
        while t <= end:
            self.evaluate(t)
            t += every
        return self.notifications
