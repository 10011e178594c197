"""Application Insights as the queries see it: the `requests` and `customEvents` schemas, and the
mapping from the exporter's envelopes (what the handler really sends) to rows of those tables.

The schemas are the classic Application Insights tables an alert rule scoped to the component queries
(Microsoft's "Application Insights table structure" / "migrate to workspace-based" column lists).
One column is ambiguous in Microsoft's own documentation: `requests.success` is listed as `bool` in the
table reference and as `string` in the migration table, so the semantic check runs under both.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

# Columns shared by every classic Application Insights table.
_COMMON = [
    ("timestamp", "datetime"),
    ("itemType", "string"),
    ("customDimensions", "dynamic"),
    ("customMeasurements", "dynamic"),
    ("operation_Name", "string"),
    ("operation_Id", "string"),
    ("operation_ParentId", "string"),
    ("operation_SyntheticSource", "string"),
    ("session_Id", "string"),
    ("user_Id", "string"),
    ("user_AuthenticatedId", "string"),
    ("user_AccountId", "string"),
    ("application_Version", "string"),
    ("client_Type", "string"),
    ("client_Model", "string"),
    ("client_OS", "string"),
    ("client_IP", "string"),
    ("client_City", "string"),
    ("client_StateOrProvince", "string"),
    ("client_CountryOrRegion", "string"),
    ("client_Browser", "string"),
    ("cloud_RoleName", "string"),
    ("cloud_RoleInstance", "string"),
    ("appId", "string"),
    ("appName", "string"),
    ("iKey", "string"),
    ("sdkVersion", "string"),
    ("itemId", "string"),
    ("itemCount", "int"),
]

REQUESTS = [
    ("timestamp", "datetime"),
    ("id", "string"),
    ("source", "string"),
    ("name", "string"),
    ("url", "string"),
    ("success", "bool"),
    ("resultCode", "string"),
    ("duration", "real"),
    ("performanceBucket", "string"),
] + [c for c in _COMMON if c[0] != "timestamp"]

CUSTOM_EVENTS = [("timestamp", "datetime"), ("name", "string")] + [c for c in _COMMON if c[0] != "timestamp"]

TABLES = {"requests": REQUESTS, "customEvents": CUSTOM_EVENTS}

# When each row was ingested: Kusto keeps it in a hidden column that only `ingestion_time()` reads.
# The DuckDB tables carry it under the same name (alert_sim maps `ingestion_time()` to it); a row's
# "$IngestionTime" key sets it, and without one the row is ingested at its timestamp.
INGESTION_TIME = "$IngestionTime"


def kusto_schema(columns: list[tuple[str, str]], **override: str) -> str:
    """`(name:type, ...)` as Kusto.Language's TableSymbol takes it."""
    return "(" + ", ".join(f"{n}:{override.get(n, t)}" for n, t in columns) + ")"


def kusto_tables(success_type: str = "bool") -> dict[str, str]:
    return {
        "requests": kusto_schema(REQUESTS, success=success_type),
        "customEvents": kusto_schema(CUSTOM_EVENTS),
    }


_DUCK = {"datetime": "TIMESTAMP", "string": "VARCHAR", "bool": "BOOLEAN", "real": "DOUBLE", "int": "INTEGER", "dynamic": "JSON"}


# -- envelopes -> rows ------------------------------------------------------------------------------

_DURATION = re.compile(r"^(?:(\d+)\.)?(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def duration_ms(text: str) -> float:
    """Application Insights durations are `[d.]hh:mm:ss[.fffffff]`."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not an Application Insights duration: {text!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return (total + float(f"0.{fraction or 0}")) * 1000.0


def parse_time(text: str) -> datetime:
    text = text.rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _common_row(envelope: dict[str, Any], item_type: str, base: dict[str, Any]) -> dict[str, Any]:
    tags = envelope.get("tags", {})
    return {
        "timestamp": parse_time(envelope["time"]),
        "itemType": item_type,
        "customDimensions": dict(base.get("properties") or {}),
        "customMeasurements": dict(base.get("measurements") or {}),
        "operation_Name": tags.get("ai.operation.name", ""),
        "operation_Id": tags.get("ai.operation.id", ""),
        "operation_ParentId": tags.get("ai.operation.parentId", ""),
        "operation_SyntheticSource": tags.get("ai.operation.syntheticSource", ""),
        "session_Id": tags.get("ai.session.id", ""),
        "user_Id": tags.get("ai.user.id", ""),
        "user_AuthenticatedId": tags.get("ai.user.authUserId", ""),
        "user_AccountId": tags.get("ai.user.accountId", ""),
        "application_Version": tags.get("ai.application.ver", ""),
        "client_Type": "PC",
        "client_Model": tags.get("ai.device.model", ""),
        "client_OS": tags.get("ai.device.osVersion", ""),
        # Application Insights masks the client address unless the component opts out
        # (DisableIpMasking), so the queries must not depend on it: emulate the default.
        "client_IP": "0.0.0.0" if tags.get("ai.location.ip") else "",
        "client_City": "",
        "client_StateOrProvince": "",
        "client_CountryOrRegion": "",
        "client_Browser": "",
        "cloud_RoleName": tags.get("ai.cloud.role", ""),
        "cloud_RoleInstance": tags.get("ai.cloud.roleInstance", ""),
        "appId": "00000000-0000-0000-0000-000000000001",
        "appName": "ispmon-appi",
        "iKey": envelope.get("iKey", ""),
        "sdkVersion": tags.get("ai.internal.sdkVersion", ""),
        "itemId": str(uuid.uuid4()),
        "itemCount": 1,
    }


def request_row(envelope: dict[str, Any]) -> dict[str, Any]:
    base = envelope["data"]["baseData"]
    row = _common_row(envelope, "request", base)
    row.update(
        {
            "id": base.get("id", ""),
            "source": base.get("source", ""),
            "name": base["name"],
            "url": base.get("url", ""),
            "success": bool(base["success"]),
            "resultCode": str(base.get("responseCode", "")),
            "duration": duration_ms(base["duration"]) if base.get("duration") else 0.0,
            "performanceBucket": "<250ms",
        }
    )
    return row


def event_row(envelope: dict[str, Any]) -> dict[str, Any]:
    base = envelope["data"]["baseData"]
    row = _common_row(envelope, "customEvent", base)
    row["name"] = base["name"]
    return row


REQUEST_ENVELOPE = "Microsoft.ApplicationInsights.Request"
EVENT_ENVELOPE = "Microsoft.ApplicationInsights.Event"


def rows_from_envelopes(envelopes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {"requests": [], "customEvents": []}
    for envelope in envelopes:
        if envelope.get("name") == REQUEST_ENVELOPE:
            tables["requests"].append(request_row(envelope))
        elif envelope.get("name") == EVENT_ENVELOPE:
            tables["customEvents"].append(event_row(envelope))
    return tables


def host_request_row(template: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A row as the Functions host itself logs one per invocation: also named `Ping` and successful,
    but written by the host, which knows nothing of the device and sets no `emitter`."""
    row = dict(template)
    row.update(
        {
            "timestamp": at,
            "id": str(uuid.uuid4()),
            "source": "",
            "customDimensions": {
                "FullName": "Functions.Ping",
                "LogLevel": "Information",
                "Category": "Host.Results",
                "InvocationId": str(uuid.uuid4()),
                "TriggerReason": "This function was programmatically called via the host APIs.",
                "OperationName": "Ping",
                "HostInstanceId": str(uuid.uuid4()),
                "ProcessId": "42",
            },
            "sdkVersion": "azurefunctions: 4.1041.200.25008",
            "itemId": str(uuid.uuid4()),
        }
    )
    return row


def at(row: dict[str, Any], when: datetime, ingested: datetime | None = None) -> dict[str, Any]:
    """The same captured row, rebased to another time (a simulated heartbeat at `when`), ingested
    at `ingested` (default: at once)."""
    copy = dict(row)
    copy["timestamp"] = when
    copy["itemId"] = str(uuid.uuid4())
    copy[INGESTION_TIME] = ingested if ingested is not None else when
    return copy


def ingested_late(rows: list[dict[str, Any]], start: datetime, end: datetime, delay: timedelta) -> list[dict[str, Any]]:
    """The rows, with those whose timestamp is in [start, end) ingested `delay` after it (an
    ingestion delay on Azure's side, whatever the device does)."""
    out = []
    for row in rows:
        copy = dict(row)
        if start <= row["timestamp"] < end:
            copy[INGESTION_TIME] = row["timestamp"] + delay
        out.append(copy)
    return out


def every_minute(row: dict[str, Any], start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)) -> list[dict[str, Any]]:
    """The captured row repeated every `step` from `start` up to and including `end`."""
    rows, when = [], start
    while when <= end:
        rows.append(at(row, when))
        when += step
    return rows


# -- DuckDB -----------------------------------------------------------------------------------------


def load_tables(con: Any, tables: dict[str, list[dict[str, Any]]], success_type: str = "bool", prefix: str = "") -> None:
    """(Re)creates `requests` and `customEvents` (named with `prefix`) in DuckDB with the Application
    Insights columns. Rows go through one newline-delimited JSON file per table: DuckDB's executemany
    is row-at-a-time and far too slow for the simulated timelines."""
    import tempfile

    for table, columns in TABLES.items():
        name = f"{prefix}{table}"
        columns = columns + [(INGESTION_TIME, "datetime")]
        types = {n: _DUCK["string" if (table == "requests" and n == "success" and success_type == "string") else t] for n, t in columns}
        con.execute(f'DROP VIEW IF EXISTS "{name}"')
        con.execute(f'DROP TABLE IF EXISTS "{name}"')
        con.execute(f'CREATE TABLE "{name}" (' + ", ".join(f'"{n}" {types[n]}' for n, _ in columns) + ")")
        rows = tables.get(table, [])
        if not rows:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".ndjson", encoding="utf-8", delete=False) as f:
            for row in rows:
                record = {}
                for column, kind in columns:
                    value = row.get(column)
                    if column == INGESTION_TIME and value is None:
                        value = row["timestamp"]
                    if kind == "datetime":
                        value = value.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
                    elif kind == "dynamic":
                        value = value if value is not None else {}
                    elif column == "success" and success_type == "string":
                        value = "True" if value else "False"
                    record[column] = value
                f.write(json.dumps(record) + "\n")
            path = f.name
        try:
            spec = "{" + ", ".join(f"'{n}': '{types[n]}'" for n, _ in columns) + "}"
            con.execute(
                f'INSERT INTO "{name}" SELECT * FROM read_json(?, format = \'newline_delimited\', columns = {spec})',
                [path],
            )
        finally:
            import os

            os.unlink(path)
