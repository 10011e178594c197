"""Every KQL query the project ships — the files in queries/, the text main.bicep deploys in its alert
rules and workbook, and the blocks in docs/ — is analyzed by Microsoft's Kusto.Language against the
Application Insights `requests` / `customEvents` schema, and follows the counting rule."""

from __future__ import annotations

import re

import pytest
from conftest import BROKEN_QUERIES, COUNTING_RULE, DOCS, all_queries, query_files, report_query_files

QUERIES = all_queries()


@pytest.mark.parametrize("success_type", ["bool", "string"])
@pytest.mark.parametrize("query_id", sorted(QUERIES))
def test_query_has_no_kusto_errors(kusto_verdicts, query_id, success_type):
    """Kusto.Language finds no unknown table, column or function and no type error (whichever type
    `requests.success` really has: Microsoft documents both)."""
    errors = kusto_verdicts[success_type][query_id]
    assert errors == [], "\n".join(f"{query_id}:{e['line']}: {e['code']} {e['message']}" for e in errors)


@pytest.mark.parametrize("broken_id", sorted(BROKEN_QUERIES))
def test_checker_reports_errors(kusto_verdicts, broken_id):
    """The checker is not vacuous: a deliberately broken query is reported, with the expected code."""
    code = BROKEN_QUERIES[broken_id][1]
    errors = kusto_verdicts["bool"][broken_id]
    assert code in [e["code"] for e in errors], errors


def test_every_query_file_is_deployed(main_template):
    """No orphan query: every queries/*.kql is loaded by main.bicep."""
    bicep = (main_template.path).read_text(encoding="utf-8")
    for path in query_files():
        assert f"loadTextContent('queries/{path.name}')" in bicep, f"main.bicep does not load {path.name}"


@pytest.mark.parametrize("query_id", sorted(q for q in QUERIES if re.search(r"^\s*requests\b", QUERIES[q], re.M)))
def test_heartbeat_queries_use_the_counting_rule(query_id):
    """A heartbeat is counted only by the rule docs/telemetry.md sets: name, emitter marker, success."""
    assert COUNTING_RULE in QUERIES[query_id]


@pytest.mark.parametrize("query_id", sorted(q for q in QUERIES if re.search(r"^\s*customEvents\b", QUERIES[q], re.M)))
def test_outage_queries_read_only_our_outage_events(query_id):
    """Outage queries read only the handler's `Outage` events and deduplicate resends by outage_id."""
    text = QUERIES[query_id]
    assert 'where name == "Outage" and tostring(customDimensions.emitter) == "isp-monitor-handler"' in text
    assert "by outage_id" in text


@pytest.mark.parametrize("path", query_files() + report_query_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_docs_show_each_query_verbatim(path):
    """docs/queries.md shows the exact text that is deployed (or run by scripts/report.sh) and tested."""
    docs = (DOCS / "queries.md").read_text(encoding="utf-8")
    assert f"```kusto\n{path.read_text(encoding='utf-8')}```" in docs, f"docs/queries.md lacks the current {path.name}"
