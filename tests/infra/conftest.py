"""Shared fixtures for the infrastructure tests: the parsed template, every KQL query the project
ships (files, deployed rule and workbook text, docs), the Kusto.Language verdicts on them, and the
telemetry captured from the real handler binary."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from appinsights import kusto_tables, rows_from_envelopes  # noqa: E402
from bicep_eval import Deployed, Template  # noqa: E402
from capture import Capture, capture  # noqa: E402

REPO = HERE.parent.parent
MAIN_BICEP = REPO / "main.bicep"
# main.bicep and its local modules: every one is parsed, checked and evaluated.
BICEP_FILES = [MAIN_BICEP, *sorted((REPO / "infra").glob("*.bicep"))]
QUERIES = REPO / "queries"
DOCS = REPO / "docs"
# Parameter values for a deployment: alertEmail is the only required one.
REQUIRED = {"alertEmail": "owner@example.com"}

COUNTING_RULE = (
    'where name == "Ping" and tostring(customDimensions.emitter) == "isp-monitor-handler" and success == true'
)
SCHEDULED_QUERY_RULE = "Microsoft.Insights/scheduledQueryRules"
KUSTO_BLOCK = re.compile(r"```(?:kusto|kql)\n(.*?)```", re.S)


_PARSED: dict[str, Template] = {}


def template(**params: Any) -> Template:
    """main.bicep evaluated for these parameter values (parsed once per session)."""
    if "main" not in _PARSED:
        _PARSED["main"] = Template.load(MAIN_BICEP, **REQUIRED)
    return _PARSED["main"].with_params(**{**REQUIRED, **params})


def query_files() -> list[Path]:
    return sorted(QUERIES.glob("*.kql"))


def report_query_files() -> list[Path]:
    """The queries scripts/report.sh runs (not deployed by main.bicep)."""
    return sorted((QUERIES / "report").glob("*.kql"))


# The alert rules by what they are (the middle of their resource name '<prefix>-<what>-<suffix>').
RULES = {"silenceAlert": "device-silent", "reminderAlert": "device-still-silent", "outageReportAlert": "outage-report",
         "degradedAlert": "degraded", "ipChangeAlert": "ip-change"}


def deployed_of_type(t: Template, resource_type: str) -> list[Deployed]:
    return [d for d in t.deployment() if d.type == resource_type]


def deployed_rules(t: Template) -> dict[str, Deployed]:
    """The deployed alert rules (modules followed, loops expanded) by the middle of their name."""
    out = {}
    for d in deployed_of_type(t, SCHEDULED_QUERY_RULE):
        name = d.get("name")
        match = re.fullmatch(r"[a-z0-9-]+?-([a-z-]+)-u{13}", name)
        assert match, f"rule name {name!r} is not <prefix>-<what>-<suffix>"
        assert match.group(1) not in out, f"two rules named {match.group(1)}"
        out[match.group(1)] = d
    return out


def rule_deployed(t: Template, key: str) -> bool:
    return RULES[key] in deployed_rules(t)


def rule_properties(t: Template, key: str) -> dict[str, Any]:
    """The evaluated properties of a deployed rule (silenceAlert, reminderAlert, outageReportAlert)."""
    rules = deployed_rules(t)
    assert RULES[key] in rules, f"{key} is not deployed; deployed: {sorted(rules)}"
    return rules[RULES[key]].value()["properties"]


def deployed_rule_queries(t: Template) -> dict[str, str]:
    out = {}
    for what, d in deployed_rules(t).items():
        for i, criterion in enumerate(d.value()["properties"]["criteria"]["allOf"]):
            out[f"{d.where}({what})[{i}]"] = criterion["query"]
    return out


def workbook_content(t: Template) -> dict[str, Any]:
    """The workbook as deployed: its serializedData, parsed."""
    (workbook,) = deployed_of_type(t, "Microsoft.Insights/workbooks")
    return json.loads(workbook.get("properties", "serializedData"))


def workbook_queries(t: Template) -> dict[str, str]:
    content = workbook_content(t)
    return {
        f"main.bicep:workbook:{item['name']}": item["content"]["query"]
        for item in content["items"]
        if item["type"] == 3
    }


def docs_queries() -> dict[str, str]:
    out = {}
    for doc in sorted(DOCS.glob("*.md")):
        for i, match in enumerate(KUSTO_BLOCK.finditer(doc.read_text(encoding="utf-8"))):
            out[f"docs/{doc.name}#{i + 1}"] = match.group(1)
    return out


def all_queries() -> dict[str, str]:
    """Every KQL text the project ships, by where it comes from."""
    queries = {f"queries/{p.name}": p.read_text(encoding="utf-8") for p in query_files()}
    queries.update({f"queries/report/{p.name}": p.read_text(encoding="utf-8") for p in report_query_files()})
    for variant in ({}, {"outageReportMinutes": 60, "silenceEvaluationMinutes": 1, "reminderMinutes": 5,
                    "degradedLossPct": 12, "degradedRttP95Ms": 350, "degradedOfLast": 4, "degradedAtLeast": 9}):
        t = template(**variant)
        suffix = "" if not variant else " (non-default parameters)"
        queries.update({k + suffix: v for k, v in deployed_rule_queries(t).items()})
        queries.update({k + suffix: v for k, v in workbook_queries(t).items()})
    queries.update(docs_queries())
    return queries


# Deliberately broken queries, checked in the same run: they prove the checker is not vacuous.
BROKEN_QUERIES = {
    "broken:unknown-column": ('requests | where nme == "Ping"', "KS142"),
    "broken:unknown-function": ("requests | extend x = tostrin(customDimensions.device)", "KS211"),
    "broken:type-error": ('requests | where success == "a" + 1', "KS106"),
    "broken:unknown-table": ("request | take 1", "KS204"),
    "broken:column-of-another-table": ("customEvents | project resultCode", "KS142"),
}


def run_kusto_check(queries: dict[str, str], variants: tuple[str, ...] = ("bool",)) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Kusto.Language's errors for each query against the Application Insights tables, per variant of
    the schema (the type of `requests.success`): {variant: {query id: [error, ...]}}."""
    payload = json.dumps(
        {
            "schemas": {v: kusto_tables(v) for v in variants},
            "queries": [{"id": k, "text": v} for k, v in queries.items()],
        }
    )
    result = subprocess.run(
        ["node", str(HERE / "kusto" / "check.js")],
        input=payload, capture_output=True, text=True, cwd=HERE, timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kusto/check.js failed ({result.returncode}): {result.stderr}")
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def main_template() -> Template:
    return template()


@pytest.fixture(scope="session")
def kusto_verdicts() -> dict[str, dict[str, list[dict[str, Any]]]]:
    queries = {**all_queries(), **{k: text for k, (text, _) in BROKEN_QUERIES.items()}}
    return run_kusto_check(queries, ("bool", "string"))


def handler_binary() -> Path:
    return Path(os.environ.get("ISP_MONITOR_HANDLER", REPO / "target" / "debug" / "handler"))


@pytest.fixture(scope="session")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    binary = handler_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist: build it first with `cargo build --bin handler` (tests/infra/run.sh does)")
    return capture(binary, tmp_path_factory.mktemp("capture"))


@pytest.fixture(scope="session")
def captured_rows(captured: Capture) -> dict[str, Any]:
    """The captured envelopes as Application Insights rows, picked out by what they are."""
    tables = rows_from_envelopes(captured.envelopes)
    requests, events = tables["requests"], tables["customEvents"]

    def one(rows: list[dict[str, Any]], what: str, **match: Any) -> dict[str, Any]:
        found = [r for r in rows if all(r.get(k) == v or r["customDimensions"].get(k) == v for k, v in match.items())]
        assert found, f"the handler sent no {what}; it sent: {json.dumps(captured.envelopes)[:2000]}"
        return found[0]

    return {
        "dev-a": one(requests, "accepted heartbeat of dev-a", device="dev-a", success=True),
        "dev-b": one(requests, "accepted heartbeat of dev-b", device="dev-b", success=True),
        "refused": [r for r in requests if r["success"] is False],
        "outage-a": one(events, "Outage event of dev-a", name="Outage", device="dev-a"),
        "outage-b": one(events, "Outage event of dev-b", name="Outage", device="dev-b"),
        # dev-q's heartbeats carrying connection quality (quality_* dimensions, docs/telemetry.md).
        "quality-good": one(requests, "dev-q's good quality", device="dev-q", note="good", success=True),
        "quality-degraded": one(requests, "dev-q's degraded quality", device="dev-q", note="degraded", success=True),
        "quality-lost": one(requests, "dev-q's all-lost quality", device="dev-q", note="lost", success=True),
        "all": tables,
    }
