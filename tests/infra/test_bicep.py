"""main.bicep without a Bicep CLI: its syntax (tree-sitter-bicep and pycep, the parser checkov uses),
checkov's security checks (a parsing error is a failure; every finding fixed or suppressed inline
with a reason), and the properties that decide whether the alerts work, read from the parsed template."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tree_sitter_bicep
from bicep_eval import Reference, Template, iso_minutes, parse
from conftest import (BICEP_FILES, HERE, MAIN_BICEP, deployed_of_type, deployed_rule_queries, deployed_rules,
                      rule_deployed, rule_properties, template, workbook_content)
from tree_sitter import Language, Parser


def syntax_errors(source: bytes) -> list[str]:
    tree = Parser(Language(tree_sitter_bicep.language())).parse(source)
    errors = []

    def walk(node):
        if node.is_error or node.is_missing:
            errors.append(f"line {node.start_point[0] + 1}: {'missing ' if node.is_missing else ''}{node.type}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return errors


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_bicep_syntax_tree_sitter(path):
    """tree-sitter-bicep parses main.bicep and every module with no error node."""
    assert syntax_errors(path.read_bytes()) == []


def test_tree_sitter_catches_a_syntax_error():
    """The syntax check is not vacuous."""
    assert syntax_errors(b"param x string =\nresource a 'Microsoft.Web/sites@2024-04-01' = {\n  name:\n}\n")


def test_bicep_parses_with_pycep(main_template):
    """pycep (the parser checkov uses) reads the whole template and its modules: the deployment holds
    every resource, the rules one per object of alertRules."""
    types = [d.type for d in main_template.deployment()]
    for expected in ("Microsoft.OperationalInsights/workspaces", "Microsoft.Insights/components",
                     "Microsoft.Storage/storageAccounts", "Microsoft.Web/serverfarms", "Microsoft.Web/sites",
                     "Microsoft.Insights/actionGroups", "Microsoft.Insights/workbooks"):
        assert types.count(expected) == 1, expected
    assert set(deployed_rules(main_template)) == {"device-silent", "device-still-silent", "outage-report", "degraded", "ip-change"}


# -- checkov ---------------------------------------------------------------------------------------


def run_checkov(*paths: Path) -> subprocess.CompletedProcess[str]:
    checkov = Path(sys.executable).parent / "checkov"
    env = {
        **os.environ,
        # Offline: no policy download, no version check, no platform calls.
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "LOG_LEVEL": "WARNING",
    }
    command = [str(checkov), "--framework", "bicep", "-f", *map(str, paths), "--skip-download", "--compact", "--output", "cli"]
    # Belt and braces: run it in a network namespace of its own where one can be made (root, util-linux).
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "--net", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=paths[0].parent, timeout=300)


@pytest.fixture(scope="module")
def checkov_main():
    return run_checkov(*BICEP_FILES)


def counts(output: str) -> dict[str, int]:
    match = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)(?:, Parsing errors: (\d+))?", output)
    assert match, f"no checkov summary in its output:\n{output[-3000:]}"
    passed, failed, skipped, parsing = (int(g) if g else 0 for g in match.groups())
    return {"passed": passed, "failed": failed, "skipped": skipped, "parsing": parsing}


def test_checkov_parses_and_passes(checkov_main):
    """checkov reads main.bicep (it exits 0 when it cannot, so parsing errors are counted here) and
    every check passes or is suppressed inline."""
    result = counts(checkov_main.stdout)
    assert result["parsing"] == 0, checkov_main.stdout[-3000:]
    assert result["passed"] > 0, checkov_main.stdout[-3000:]
    assert result["failed"] == 0 and checkov_main.returncode == 0, checkov_main.stdout[-5000:]
    # Every file with a storage account or a function app was scanned (checkov names each file it checked).
    for path in BICEP_FILES:
        if re.search(r"Microsoft\.(Storage/storageAccounts|Web/sites)@", path.read_text(encoding="utf-8")):
            assert f"File: /{path.relative_to(MAIN_BICEP.parent)}:" in checkov_main.stdout, path.name


def test_every_checkov_suppression_gives_a_reason():
    text = "".join(p.read_text(encoding="utf-8") for p in BICEP_FILES)
    skips = re.findall(r"checkov:skip=([A-Z0-9_]+)(.*)", text)
    assert skips
    for check, rest in skips:
        assert re.match(r":\s*\S.{20,}", rest), f"{check} is suppressed without a reason"


def test_checkov_counts_a_parse_failure(tmp_path):
    """A template checkov cannot parse shows up as a parsing error (which the test above fails on)."""
    broken = tmp_path / "broken.bicep"
    broken.write_text("resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'x'\n  properties: {\n")
    assert counts(run_checkov(broken).stdout)["parsing"] == 1


# -- parameters ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_parameter_and_output_is_described(path):
    t = Template(path=path, parsed=parse(path))
    assert t.parsed["outputs"], f"{path.name} has no output"
    for name in t.parsed["parameters"]:
        description = t.decorators(name).get("description", "")
        assert re.match(r"(Required|Optional)\. \S", description), f"{path.name} param {name}: {description!r}"
    for name, output in t.parsed["outputs"].items():
        assert any(d["type"] == "description" for d in output["decorators"]), f"{path.name} output {name}"


def test_limits_on_parameters(main_template):
    d = main_template.decorators
    assert d("silenceMinutes")["min_value"] >= 2 and main_template.param("silenceMinutes") == 5
    assert set(d("silenceEvaluationMinutes")["allowed"]) == {1, 5, 10, 15}
    assert 0 in d("reminderMinutes")["allowed"]
    assert d("namePrefix")["max_length"] <= 10 and d("namePrefix")["min_length"] >= 2
    assert "secure" in d("alertWebhookUrl")
    assert d("alertEmail")["max_length"] == 64  # an action group's email receiver limit
    assert "secure" in d("currentPackageUrl") and main_template.param("currentPackageUrl") == ""


def test_outputs(main_template):
    """The outputs deploy.sh and the docs rely on, as evaluated through the modules."""
    outputs = main_template.outputs()
    assert set(outputs) == {"functionAppName", "heartbeatUrl", "appInsightsName", "workspaceName", "workbookId",
                            "alertRuleNames", "hostingPlan"}
    assert outputs["heartbeatUrl"] == "https://<app.properties.defaultHostName>/api/ping"
    assert outputs["functionAppName"] == "ispmon-uuuuuuuuuuuuu" and outputs["hostingPlan"] == "consumption"
    assert outputs["appInsightsName"] == "ispmon-appi-uuuuuuuuuuuuu" and outputs["workspaceName"] == "ispmon-log-uuuuuuuuuuuuu"
    assert outputs["workbookId"] == Reference("workbook.id")


# -- the alert rules -------------------------------------------------------------------------------


def rule(t: Template, symbol: str) -> dict:
    return rule_properties(t, symbol)


def criterion(props: dict) -> dict:
    (only,) = props["criteria"]["allOf"]
    return only


@pytest.mark.parametrize("frequency", [1, 5, 10, 15])
def test_silence_rule_is_stateful_per_device_without_mute(frequency):
    props = rule(template(silenceEvaluationMinutes=frequency), "silenceAlert")
    c = criterion(props)
    assert props["autoMitigate"] is True
    assert "muteActionsDuration" not in props
    assert c["dimensions"] == [{"name": "device", "operator": "Include", "values": ["*"]}]
    assert c["timeAggregation"] == "Maximum" and c["metricMeasureColumn"] == "minutes_silent"
    assert c["operator"] == "GreaterThanOrEqual" and c["threshold"] == 5
    assert iso_minutes(props["evaluationFrequency"]) == frequency
    assert iso_minutes(props["windowSize"]) == frequency


@pytest.mark.parametrize("symbol", ["silenceAlert", "reminderAlert", "outageReportAlert"])
def test_query_time_range_covers_the_lookback(main_template, symbol):
    """Each rule's query looks back with ago(2d); the rule must let it see that far (the default
    range is only windowSize), and Azure allows at most 2 days."""
    props = rule(main_template, symbol)
    lookbacks = [int(n) * {"d": 1440, "h": 60, "m": 1}[u] for n, u in re.findall(r"ago\((\d+)([dhm])\)", criterion(props)["query"])]
    assert lookbacks
    span = iso_minutes(props["overrideQueryTimeRange"])
    assert max(lookbacks) <= span <= 2 * 1440
    assert span >= iso_minutes(props["windowSize"])


def test_reminder_rule_is_stateless_and_optional():
    props = rule(template(reminderMinutes=10, silenceMinutes=7), "reminderAlert")
    c = criterion(props)
    assert props["autoMitigate"] is False
    assert c["threshold"] == 17 and iso_minutes(props["evaluationFrequency"]) == 10
    assert c["dimensions"][0]["name"] == "device"
    assert not rule_deployed(template(reminderMinutes=0), "reminderAlert")
    assert [n.split("-", 1)[1] for n in template(reminderMinutes=0).output("alertRuleNames")] == [
        "device-silent-uuuuuuuuuuuuu", "outage-report-uuuuuuuuuuuuu", "degraded-uuuuuuuuuuuuu", "ip-change-uuuuuuuuuuuuu"]


def test_outage_rule_window_follows_its_frequency():
    """The outage query's window line is replaced with the rule's frequency as a timespan literal, so
    each evaluation reports exactly the outages first ingested since the previous one."""
    for minutes in (5, 15, 60):
        props = rule(template(outageReportMinutes=minutes), "outageReportAlert")
        query = criterion(props)["query"]
        assert f"| where first_ingested > ago({minutes}m)" in query
        assert query.count("first_ingested > ago(") == 1
        assert iso_minutes(props["evaluationFrequency"]) == minutes
        assert props["autoMitigate"] is False
    assert (HERE.parent.parent / "queries" / "outage-report.kql").read_text().count(template().eval("outageWindowLine")) == 1


# Log search alert queries accept ago() with timespan literals only, and a rule run every minute may
# not use search, union, take or ingestion_time() (docs/platform.md §7).
TIMESPAN_LITERAL = re.compile(r"^\s*\d+(\.\d+)?\s*(d|h|m|s|ms|microseconds?|ticks?|days?|hours?|minutes?|seconds?|milliseconds?)\s*$")
ONE_MINUTE_FORBIDDEN = re.compile(r"\b(search|union|take|limit)\b|\bingestion_time\s*\(")


def kql_code(text: str) -> str:
    """The query without its comments and string literals (so words in them are not code)."""
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'', '""', text)


def non_literal_agos(text: str) -> list[str]:
    code, found, pos = kql_code(text), [], 0
    while (start := code.find("ago(", pos)) != -1:
        if start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
            pos = start + 4
            continue
        depth, i = 1, start + 4
        while i < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        argument = code[start + 4 : i - 1]
        if not TIMESPAN_LITERAL.match(argument):
            found.append(f"ago({argument})")
        pos = i
    return found


VARIANTS = [{}, {"outageReportMinutes": 5, "silenceEvaluationMinutes": 1, "reminderMinutes": 5},
            {"outageReportMinutes": 60, "silenceEvaluationMinutes": 15, "reminderMinutes": 60, "silenceMinutes": 2}]


@pytest.mark.parametrize("variant", VARIANTS, ids=["defaults", "fast", "slow"])
def test_deployed_queries_use_ago_with_literals_only(variant):
    """Every query main.bicep deploys in an alert rule, as evaluated, calls ago() with a timespan
    literal only; a rule that can run every minute uses none of what such a rule may not."""
    t = template(**variant)
    queries = deployed_rule_queries(t)
    assert len(queries) == 5  # silence, reminder, outage report, degraded, IP change
    for where, text in queries.items():
        assert "ago(" in text
        assert non_literal_agos(text) == [], where
    for what, d in deployed_rules(t).items():
        props = d.value()["properties"]
        if iso_minutes(props["evaluationFrequency"]) == 1:
            assert not ONE_MINUTE_FORBIDDEN.search(kql_code(criterion(props)["query"])), what


def test_the_ago_scan_catches_a_non_literal():
    """The scan fails on what Azure would refuse (the old `ago(window)` among them) and is not fooled
    by comments or strings."""
    assert non_literal_agos("let window = 15m;\nT | where t > ago(window)") == ["ago(window)"]
    assert non_literal_agos("T | where t > ago(2 * 1d) and u > ago( 1.5h )") == ["ago(2 * 1d)"]
    assert non_literal_agos("T | where t > ago(totimespan(x))") == ["ago(totimespan(x))"]
    assert non_literal_agos('// ago(window)\nT | where s == "ago(x)" | where t > ago(2d)') == []
    assert ONE_MINUTE_FORBIDDEN.search(kql_code("T | take 1"))
    assert ONE_MINUTE_FORBIDDEN.search(kql_code("T | extend i = ingestion_time()"))
    assert not ONE_MINUTE_FORBIDDEN.search(kql_code('T // take\n| where x == "union"'))


@pytest.mark.parametrize("frequency,minutes", [(1, 10), (5, 10), (10, 10), (15, 15)])
def test_silence_rule_chooses_its_time_to_resolve(frequency, minutes):
    """Resolved comes after a chosen time (ruleResolveConfiguration, API 2023-12-01), not Azure's default."""
    props = rule(template(silenceEvaluationMinutes=frequency), "silenceAlert")
    assert props["ruleResolveConfiguration"]["autoResolved"] is True
    assert iso_minutes(props["ruleResolveConfiguration"]["timeToResolve"]) == minutes
    assert "ruleResolveConfiguration" not in rule(template(), "reminderAlert")


def test_every_rule_notifies_the_action_group(main_template):
    for what, d in deployed_rules(main_template).items():
        props = d.value()["properties"]
        assert props["actions"]["actionGroups"] == [Reference("actionGroup.id")], what
        assert props["scopes"] == [Reference("appInsights.id")], what
        assert 1 <= len(props["criteria"]["allOf"][0]["dimensions"]) <= 6  # Azure's limit
        for dimension in props["criteria"]["allOf"][0]["dimensions"]:
            assert dimension["operator"] == "Include" and dimension["values"] == ["*"]


def test_the_outage_rule_counts_rows_and_has_every_dimension(main_template):
    """A null measureColumn / timeToResolve leaves the property out (the row count; a stateless rule)."""
    c = criterion(rule(main_template, "outageReportAlert"))
    assert "metricMeasureColumn" not in c and c["timeAggregation"] == "Count"
    assert [d["name"] for d in c["dimensions"]] == ["device", "start_utc", "end_utc", "duration_minutes", "cause", "cause_code"]


# -- the action group and the function app ---------------------------------------------------------


@pytest.mark.parametrize("prefix", ["ab", "ispmon", "a-long-nam"])
def test_action_group_short_name_fits(prefix):
    t = template(namePrefix=prefix)
    (group,) = (d.value() for d in deployed_of_type(t, "Microsoft.Insights/actionGroups"))
    assert group["location"] == "global"
    assert 1 <= len(group["properties"]["groupShortName"]) <= 12


def test_action_group_receivers():
    t = template()
    (props,) = (d.value()["properties"] for d in deployed_of_type(t, "Microsoft.Insights/actionGroups"))
    assert props["emailReceivers"] == [{"name": "owner-email", "emailAddress": "owner@example.com", "useCommonAlertSchema": True}]
    assert props["smsReceivers"] == [] and props["webhookReceivers"] == []
    t = template(smsPhoneNumber="5551234", smsCountryCode="1", alertWebhookUrl="https://hooks.example/x")
    (props,) = (d.value()["properties"] for d in deployed_of_type(t, "Microsoft.Insights/actionGroups"))
    assert props["smsReceivers"][0]["phoneNumber"] == "5551234"
    assert props["webhookReceivers"][0]["serviceUri"] == "https://hooks.example/x"


def one(t: Template, resource_type: str) -> dict:
    """The one deployed resource of that type, evaluated as Resource Manager receives it."""
    (found,) = (d.value() for d in deployed_of_type(t, resource_type))
    return found


def app_settings(t: Template) -> dict:
    return {s["name"]: s["value"] for s in one(t, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]}


def test_function_app_settings_for_linux_consumption(main_template):
    app = one(main_template, "Microsoft.Web/sites")
    props = app["properties"]
    assert app["kind"] == "functionapp,linux" and app["identity"] == {"type": "SystemAssigned"}
    assert props["httpsOnly"] is True and props["reserved"] is True
    site = props["siteConfig"]
    assert site["linuxFxVersion"] == "" and site["ftpsState"] == "Disabled" and site["minTlsVersion"] == "1.2"
    settings = app_settings(main_template)
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "custom" and settings["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    assert {"AzureWebJobsStorage", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE",
            "APPLICATIONINSIGHTS_CONNECTION_STRING"} <= set(settings)
    # Key-based storage, as Y1 requires: the account key is in both connection strings.
    for name in ("AzureWebJobsStorage", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"):
        assert settings[name] == ("DefaultEndpointsProtocol=https;AccountName=ispmonuuuuuuuuuuuuu;EndpointSuffix=core.windows.net;"
                                  "AccountKey=<storage.listKeys().keys.0.value>")
    assert settings["WEBSITE_CONTENTSHARE"] == "ispmon-uuuuuuuuuuuuu"
    # The component's connection string, read in the hosting module from the existing component.
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == Reference("appInsights.properties.ConnectionString")
    plan = one(main_template, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "Y1", "tier": "Dynamic"} and plan["properties"]["reserved"] is True
    assert one(main_template, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")["properties"] == {"allow": False}


def test_storage_defaults_and_name():
    t = template()
    st = one(t, "Microsoft.Storage/storageAccounts")
    assert st["properties"]["minimumTlsVersion"] == "TLS1_2" and st["properties"]["supportsHttpsTrafficOnly"] is True
    assert st["properties"]["allowBlobPublicAccess"] is False
    # The name: lower-cased prefix without hyphens + uniqueString (13 characters), cut to 24.
    assert t.parsed["variables"]["storageName"]["value"] == {
        "function": {"type": "take", "parameters": {"original_value": "${replace(toLower(namePrefix), '-', '')}${suffix}", "number_to_take": 24}}
    }
    assert st["name"] == "ispmonuuuuuuuuuuuuu"
    assert one(template(namePrefix="a-long-nam"), "Microsoft.Storage/storageAccounts")["name"] == "alongnamuuuuuuuuuuuuu"


def test_app_insights_is_workspace_based_with_key_auth(main_template):
    appi = one(main_template, "Microsoft.Insights/components")["properties"]
    assert appi["WorkspaceResourceId"] == Reference("workspace.id")
    assert appi["DisableLocalAuth"] is False  # the exporter authenticates with the instrumentation key
    assert one(main_template, "Microsoft.OperationalInsights/workspaces")["properties"]["retentionInDays"] == 30
    assert one(template(retentionInDays=90), "Microsoft.OperationalInsights/workspaces")["properties"]["retentionInDays"] == 90


def test_workbook_has_every_panel(main_template):
    content = workbook_content(main_template)
    assert [i["name"] for i in content["items"]] == ["intro", "devices-now", "heartbeat-timeline", "outages", "uptime",
                                                      "round-trip-time", "public-ip"]
    assert content["items"][0]["type"] == 1 and content["items"][0]["content"]["json"].startswith("## ISP Monitor")
    for item in content["items"][1:]:
        assert item["type"] == 3 and item["content"]["version"] == "KqlItem/1.0" and item["content"]["query"]
        assert item["content"]["resourceType"] == "microsoft.insights/components"
    (wb,) = (d.value() for d in deployed_of_type(main_template, "Microsoft.Insights/workbooks"))
    assert wb["kind"] == "shared"
    # Lower-cased, so the portal links the workbook to the component (docs/platform.md §7).
    assert wb["properties"]["sourceId"] == Reference("appInsights.id", lower=True)


def test_a_template_run_keeps_the_package_it_is_given():
    """A template deployment replaces every app setting: with currentPackageUrl (deploy.sh passes the
    current value back) WEBSITE_RUN_FROM_PACKAGE stays, with that value; without it (first run) the
    template writes none, and the zip deployment adds it."""
    url = "https://st.blob.core.windows.net/c/p.zip?sig=abc"
    names = [s["name"] for s in one(template(currentPackageUrl=url), "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]]
    assert names.count("WEBSITE_RUN_FROM_PACKAGE") == 1
    assert app_settings(template(currentPackageUrl=url))["WEBSITE_RUN_FROM_PACKAGE"] == url
    assert "WEBSITE_RUN_FROM_PACKAGE" not in app_settings(template())


# -- degraded and public-IP-change rules (issue 15) -------------------------------------------------


@pytest.mark.parametrize("key,switch", [("degradedAlert", "degradedAlertEnabled"), ("ipChangeAlert", "ipChangeAlertEnabled")])
def test_quality_rules_follow_their_off_switch(key, switch):
    """On by default; false keeps the rule deployed but disabled (an incremental redeployment never
    deletes a rule, so only `enabled: false` turns an existing one off). The other rules stay on."""
    assert rule(template(), key)["enabled"] is True
    off = template(**{switch: False})
    assert rule_deployed(off, key) and rule(off, key)["enabled"] is False
    for other in ("silenceAlert", "outageReportAlert", "degradedAlert", "ipChangeAlert"):
        if other != key:
            assert rule(off, other)["enabled"] is True, other


def test_quality_rules_as_deployed():
    """Degraded: stateful per device, Maximum of degraded (0/1, the query's hysteresis) >= 1, resolved
    after 30 minutes healthy, M above N counted as N, its thresholds in the query and in the description. IP change: stateless, one row (Count) per change
    with its old and new address and time as dimensions. Both every 15 minutes."""
    t = template(degradedLossPct=12, degradedRttP95Ms=300, degradedOfLast=8, degradedAtLeast=20)
    props = rule(t, "degradedAlert")
    c = criterion(props)
    assert props["autoMitigate"] is True and iso_minutes(props["ruleResolveConfiguration"]["timeToResolve"]) == 30
    assert (c["timeAggregation"], c["metricMeasureColumn"], c["operator"], c["threshold"]) == ("Maximum", "degraded", "GreaterThanOrEqual", 1)
    assert [d["name"] for d in c["dimensions"]] == ["device"]
    for line in ("let loss_limit = 12.0;", "let rtt_limit = 300.0;", "let of_last = 8;", "let at_least = 8;"):
        assert line in c["query"], line
    assert "12% loss" in props["description"] and "300 ms" in props["description"] and "8 of its last 8" in props["description"]
    d = template().decorators
    assert d("degradedOfLast")["min_value"] == 1 and d("degradedAtLeast")["min_value"] == 1
    assert d("degradedLossPct")["max_value"] <= 99

    props = rule(template(), "ipChangeAlert")
    c = criterion(props)
    assert props["autoMitigate"] is False and "ruleResolveConfiguration" not in props
    assert "metricMeasureColumn" not in c and c["timeAggregation"] == "Count" and (c["operator"], c["threshold"]) == ("GreaterThan", 0)
    assert [d["name"] for d in c["dimensions"]] == ["device", "old_ip", "new_ip", "changed_at"]
    for key in ("degradedAlert", "ipChangeAlert"):
        assert iso_minutes(rule(template(), key)["evaluationFrequency"]) == 15
        assert len(criterion(rule(template(), key))["dimensions"]) <= 6  # Azure's limit per rule
