"""Azure Monitor log search alert rules, emulated over DuckDB with duckdb-kql.

A rule is read from main.bicep (query text, time range, aggregation, dimensions, operator, threshold,
frequency, auto-mitigation) and evaluated the way Azure Monitor documents it:
- the query sees only rows inside its time range (overrideQueryTimeRange, else windowSize), ending at
  the evaluation time, and `now()` / `ago()` are that evaluation time;
- the result rows are grouped by the dimension columns, the measure (metricMeasureColumn, or the row
  count for `Count`) is aggregated per group and compared with the threshold;
- a row is visible only once it has been ingested (its ingestion time, "$IngestionTime", is at or
  before the evaluation time), and `ingestion_time()` returns that time, as Kusto's does;
- a stateful rule (autoMitigate) fires once per dimension value and resolves once, after the rule has
  evaluated healthy for ruleResolveConfiguration.timeToResolve (ceil(timeToResolve / frequency)
  evaluations) or, without one, for Azure's default: 10 evaluations at a 1-minute frequency, 3 otherwise;
  a stateless one notifies on every evaluation whose condition holds.
What this cannot show is Azure's own scheduling and processing latency: docs/alerts.md adds those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb_kql
from appinsights import INGESTION_TIME, TABLES, load_tables
from bicep_eval import Template, iso_minutes
from duckdb_kql.translate import functions as _kql_functions

# duckdb-kql has no ingestion_time(); Kusto's reads the row's hidden ingestion-time column, so ours
# reads the column of that name the tables carry (appinsights.load_tables). Like Kusto's, it only
# works where the table's rows are in scope (not after a project that drops the column).
_kql_functions.SCALAR_FUNCTIONS.setdefault(
    "ingestion_time", _kql_functions._f("ingestion_time", "template", f'"{INGESTION_TIME}"', (0,))
)

OPERATORS = {
    "GreaterThan": lambda v, t: v > t,
    "GreaterThanOrEqual": lambda v, t: v >= t,
    "LessThan": lambda v, t: v < t,
    "LessThanOrEqual": lambda v, t: v <= t,
    "Equals": lambda v, t: v == t,
}


@dataclass
class Rule:
    symbol: str
    query: str
    time_aggregation: str
    metric_column: str | None
    dimensions: list[str]
    operator: str
    threshold: float
    frequency: timedelta
    query_range: timedelta
    auto_mitigate: bool
    time_to_resolve: timedelta | None = None

    @classmethod
    def from_template(cls, t: Template, symbol: str) -> "Rule":
        from conftest import rule_properties  # the rule as deployed, through infra/alerts.bicep

        props = rule_properties(t, symbol)
        (criterion,) = props["criteria"]["allOf"]
        for dimension in criterion.get("dimensions", []):
            assert dimension["operator"] == "Include" and dimension["values"] == ["*"], dimension
        window = iso_minutes(props["windowSize"])
        query_range = iso_minutes(props["overrideQueryTimeRange"]) if props.get("overrideQueryTimeRange") else window
        return cls(
            symbol=symbol,
            query=criterion["query"],
            time_aggregation=criterion["timeAggregation"],
            metric_column=criterion.get("metricMeasureColumn"),
            dimensions=[d["name"] for d in criterion.get("dimensions", [])],
            operator=criterion["operator"],
            threshold=criterion["threshold"],
            frequency=timedelta(minutes=iso_minutes(props["evaluationFrequency"])),
            query_range=timedelta(minutes=query_range),
            auto_mitigate=bool(props["autoMitigate"]),
            time_to_resolve=_time_to_resolve(props),
        )

    @property
    def resolve_after(self) -> int:
        """Evaluations with the condition false before a stateful alert resolves."""
        if self.time_to_resolve is not None:
            return max(1, -(-self.time_to_resolve // self.frequency))
        return 10 if self.frequency == timedelta(minutes=1) else 3


def _time_to_resolve(props: dict[str, Any]) -> timedelta | None:
    config = props.get("ruleResolveConfiguration")
    if not config:
        return None
    assert config["autoResolved"] is True, config
    return timedelta(minutes=iso_minutes(config["timeToResolve"]))


class Dataset:
    """The simulated telemetry, loaded into DuckDB once; each evaluation sees it through views
    `requests` / `customEvents` limited to the rule's time range."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]], success_type: str = "bool") -> None:
        self.con = duckdb_kql.connect()
        load_tables(self.con, tables, success_type, prefix="all_")

    def query(self, query: str, now: datetime, span: timedelta | None = None) -> list[dict[str, Any]]:
        high = now.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
        for table in TABLES:
            # Not yet ingested: not there.
            where = f""" WHERE "{INGESTION_TIME}" <= TIMESTAMP '{high}'"""
            if span is not None:
                low = (now - span).astimezone(timezone.utc).replace(tzinfo=None).isoformat()
                where += f" AND timestamp > TIMESTAMP '{low}' AND timestamp <= TIMESTAMP '{high}'"
            self.con.execute(f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM "all_{table}"{where}')
        relation = duckdb_kql.query(self.con, query, query_now=now)
        columns = relation.columns
        return [dict(zip(columns, row)) for row in relation.fetchall()]

    def close(self) -> None:
        self.con.close()


def run_query(query: str, tables: dict[str, list[dict[str, Any]]], now: datetime, success_type: str = "bool") -> list[dict[str, Any]]:
    """The query over all the given rows (a workbook panel has no rule time range)."""
    data = Dataset(tables, success_type)
    try:
        return data.query(query, now)
    finally:
        data.close()


def evaluate(rule: Rule, tables: "dict[str, list[dict[str, Any]]] | Dataset", now: datetime, success_type: str = "bool") -> dict[tuple, tuple[float, bool]]:
    """{dimension values: (aggregated measure, condition holds)} for one evaluation at `now`."""
    data = tables if isinstance(tables, Dataset) else Dataset(tables, success_type)
    try:
        rows = data.query(rule.query, now, rule.query_range)
    finally:
        if data is not tables:
            data.close()
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        missing = [d for d in rule.dimensions if d not in row]
        assert not missing, f"{rule.symbol}: query returns no column {missing} for its dimensions"
        groups.setdefault(tuple(row[d] for d in rule.dimensions), []).append(row)
    out = {}
    for key, members in groups.items():
        if rule.time_aggregation == "Count":
            value = float(len(members))
        else:
            assert rule.metric_column in members[0], f"{rule.symbol}: no measure column {rule.metric_column}"
            values = [float(m[rule.metric_column]) for m in members]
            value = {
                "Maximum": max,
                "Minimum": min,
                "Average": lambda v: sum(v) / len(v),
                "Total": sum,
            }[rule.time_aggregation](values)
        out[key] = (value, OPERATORS[rule.operator](value, rule.threshold))
    return out


@dataclass
class Notification:
    at: datetime
    dimensions: tuple
    kind: str  # "Fired", "Resolved" (stateful) or "Notified" (stateless)
    value: float | None


def simulate(rule: Rule, tables: dict[str, list[dict[str, Any]]], start: datetime, end: datetime) -> list[Notification]:
    """Evaluates the rule every `frequency` from `start` to `end` and returns what it would send."""
    notifications: list[Notification] = []
    firing: dict[tuple, int] = {}  # dimension values -> consecutive evaluations with the condition false
    data = Dataset(tables)
    now = start
    while now <= end:
        result = evaluate(rule, data, now)
        breaching = {k for k, (_, holds) in result.items() if holds}
        if rule.auto_mitigate:
            for key in sorted(breaching - set(firing)):
                notifications.append(Notification(now, key, "Fired", result[key][0]))
            for key in list(firing):
                if key in breaching:
                    firing[key] = 0
                    continue
                firing[key] += 1
                if firing[key] >= rule.resolve_after:
                    notifications.append(Notification(now, key, "Resolved", result.get(key, (None,))[0]))
                    del firing[key]
            for key in breaching:
                firing.setdefault(key, 0)
        else:
            for key in sorted(breaching):
                notifications.append(Notification(now, key, "Notified", result[key][0]))
        now += rule.frequency
    data.close()
    return notifications
