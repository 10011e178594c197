"""Connection quality in the telemetry captured from the real handler (interface A): dev-q's
heartbeats carry the `quality_*` customDimensions docs/telemetry.md lists, rows without quality have
none of them, and the quality query shown in docs/telemetry.md runs over the captured rows."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from alert_sim import run_query
from appinsights import at
from capture import QUALITY_DEGRADED, QUALITY_GOOD
from conftest import DOCS

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
KEYS = ("quality_probes", "quality_lost", "quality_loss_pct", "quality_rtt_p50_ms", "quality_rtt_p95_ms", "quality_dns_ms")


def quality_dims(row):
    return {k: row["customDimensions"][k] for k in KEYS if k in row["customDimensions"]}


def test_captured_quality_dimensions(captured_rows):
    assert quality_dims(captured_rows["quality-good"]) == {
        "quality_probes": "9", "quality_lost": "0", "quality_loss_pct": "0",
        "quality_rtt_p50_ms": "12.5", "quality_rtt_p95_ms": "20.25", "quality_dns_ms": "3.5",
    }
    assert quality_dims(captured_rows["quality-degraded"]) == {
        "quality_probes": "9", "quality_lost": "3", "quality_loss_pct": "33.33",
        "quality_rtt_p50_ms": "180", "quality_rtt_p95_ms": "450.5", "quality_dns_ms": "25",
    }
    # Every attempt lost: the times are empty, not zero (a zero would read as a perfect line).
    assert quality_dims(captured_rows["quality-lost"]) == {
        "quality_probes": "9", "quality_lost": "9", "quality_loss_pct": "100",
        "quality_rtt_p50_ms": "", "quality_rtt_p95_ms": "", "quality_dns_ms": "",
    }
    # Older agents' heartbeats and refused ones carry no quality keys at all.
    for row in [captured_rows["dev-a"], captured_rows["dev-b"], *captured_rows["refused"]]:
        assert quality_dims(row) == {}, row["customDimensions"]
    refused_q = [r for r in captured_rows["refused"] if r["customDimensions"]["device"] == "dev-q"]
    assert [r["customDimensions"]["error"] for r in refused_q] == [
        "`quality.lost` is 4; it cannot exceed `quality.probes` (3)"
    ]


def docs_quality_query() -> str:
    text = (DOCS / "telemetry.md").read_text(encoding="utf-8")
    section = text.split("## Connection quality", 1)[1]
    return re.search(r"```kusto\n(.*?)```", section, re.S).group(1)


def test_the_docs_quality_query_summarizes_the_captured_rows(captured_rows):
    """The query docs/telemetry.md shows, run by the KQL engine over dev-q's captured rows (two good
    intervals, one degraded, one all lost) and an older agent's rows that must not count."""
    q = captured_rows
    rows = [
        at(q["quality-good"], T0 - 40 * MIN), at(q["quality-good"], T0 - 30 * MIN),
        at(q["quality-degraded"], T0 - 20 * MIN), at(q["quality-lost"], T0 - 10 * MIN),
        at(q["dev-a"], T0 - 5 * MIN), *[at(r, T0 - 3 * MIN) for r in q["refused"]],
    ]
    result = run_query(docs_quality_query(), {"requests": rows, "customEvents": []}, T0)
    assert len(result) == 1, result
    row = result[0]
    assert row["device"] == "dev-q"
    assert row["heartbeats"] == 4
    assert row["probes"] == 36 and row["lost"] == 12
    assert abs(row["loss_pct"] - 100 * 12 / 36) < 0.01
    # The all-lost interval has no p95: the worst measured one is the degraded interval's.
    assert row["worst_rtt_p95_ms"] == QUALITY_DEGRADED["rtt_p95_ms"]
    assert row["best_rtt_p50_ms"] == QUALITY_GOOD["rtt_p50_ms"]
