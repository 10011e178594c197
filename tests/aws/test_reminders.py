"""Reminders while a device stays silent (docs/aws.md "Alarms and emails", docs/platform.md §17).

- The template: ``ReminderMinutes`` 0 creates none of the reminder resources; any other allowed
  value creates the function (same code as the heartbeat one, reminder role), its role, log group,
  schedule and the permission for that schedule only.
- End to end: the template's silence alarm, evaluated by the CloudWatch simulation
  (tests/aws/cloudwatch.py) over the embedded-metric lines the real ``lambda`` binary printed for a
  device silent 40 minutes, goes to ALARM and back to OK; at simulated schedule ticks the real
  binary in its reminder role (one process behind the Runtime API stand-in) reads the simulated
  alarm states from the DescribeAlarms stand-in (tests/aws/sns_standin.py, signatures checked by
  botocore) and publishes reminders exactly at the ticks expected, none after OK.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from cfn import TemplateError, expanded_resources, load, load_text
from cloudwatch import ALARM, OK, AlarmSim, MetricStore, parse_emf
from conftest import TEMPLATE, SnsStandIn
from test_alarms import GIVEN, KEY, lambda_binary, silence_alarms

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ispmon-alerts"
KEY_ID, SECRET, TOKEN = "AKIDREMINDERS001", "reminders/test+secret=0123456789", "IQoJRemindersSessionToken//=="
REMINDER_TYPES = {
    "AWS::Lambda::Function",
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::Events::Rule",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
}


def reminder_resources(resources: dict) -> dict:
    return {name: res for name, res in resources.items() if name.startswith("Reminder")}


def test_reminder_minutes_zero_creates_nothing():
    """0: no reminder resource at all, and the topic policy names no reminder role."""
    resources = expanded_resources(load(TEMPLATE), {**GIVEN, "ReminderMinutes": "0"})
    assert reminder_resources(resources) == {}
    sids = [s["Sid"] for s in resources["TopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]]
    assert sids == ["AlarmsPublish", "FunctionPublish"]
    assert "<ReminderRole.Arn>" not in json.dumps(resources)


def test_reminder_resources_by_default():
    """The default (15): the function from the same zip in its reminder role, least privilege,
    a rate(15 minutes) schedule, and only that rule may invoke it."""
    resources = expanded_resources(load(TEMPLATE), GIVEN)
    mine = reminder_resources(resources)
    assert {r["Type"] for r in mine.values()} == REMINDER_TYPES
    fn = mine["ReminderFunction"]["Properties"]
    heartbeat = resources["Function"]["Properties"]
    assert fn["Code"] == heartbeat["Code"] and fn["Runtime"] == heartbeat["Runtime"] == "provided.al2023"
    assert fn["MemorySize"] == 128 and fn["Timeout"] <= 10
    env = fn["Environment"]["Variables"]
    assert env == {
        "ISP_MONITOR_ROLE": "reminders",
        "ISP_MONITOR_SNS_TOPIC_ARN": "<ref:Topic>",
        "ISP_MONITOR_ALARM_PREFIX": "ispmon-silent-",
        "ISP_MONITOR_REMINDER_MINUTES": "15",
        "ISP_MONITOR_SILENCE_MINUTES": "5",
    }
    assert "ISP_MONITOR_ROLE" not in heartbeat["Environment"]["Variables"]
    assert not any(r["Type"] == "AWS::Lambda::Url" and r["Properties"]["TargetFunctionArn"] == "<ReminderFunction.Arn>" for r in resources.values())
    rule = mine["ReminderSchedule"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(15 minutes)" and rule["State"] == "ENABLED"
    assert rule["Targets"] == [{"Id": "reminders", "Arn": "<ReminderFunction.Arn>"}]
    permission = mine["ReminderInvokePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == "<ReminderSchedule.Arn>"
    statements = mine["ReminderRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"]): s["Resource"] for s in statements}
    assert actions == {
        ("logs:CreateLogStream", "logs:PutLogEvents"): "<ReminderLogGroup.Arn>",
        "cloudwatch:DescribeAlarms": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*",
        "sns:Publish": "<ref:Topic>",
    }
    sids = [s["Sid"] for s in resources["TopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]]
    assert sids == ["AlarmsPublish", "FunctionPublish", "RemindersPublish"]
    five = expanded_resources(load(TEMPLATE), {**GIVEN, "ReminderMinutes": "5"})
    assert five["ReminderSchedule"]["Properties"]["ScheduleExpression"] == "rate(5 minutes)"


def test_reminder_minutes_outside_the_allowed_values_is_refused():
    for bad in ("7", "-5", "120"):
        with pytest.raises(TemplateError, match="ReminderMinutes"):
            expanded_resources(load(TEMPLATE), {**GIVEN, "ReminderMinutes": bad})


def test_a_condition_that_is_wrong_shows():
    """The check can fail: a template whose reminder resources ignore the condition creates them
    at 0, and the test above would see it."""
    text = TEMPLATE.read_text(encoding="utf-8").replace("    Condition: RemindersOn\n", "")
    resources = expanded_resources(load_text(text), {**GIVEN, "ReminderMinutes": "0"})
    assert reminder_resources(resources) != {}


# --- end to end ----------------------------------------------------------------------------------

R = 5  # ReminderMinutes in the scenario, to keep it short
SILENT_FROM, SILENT_TO, MINUTES = 20, 60, 80
T0 = (int(time.time()) // 60) * 60 - 3 * 3600
TICK_PHASE = 37  # seconds after the minute: the schedule runs at its own times


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def attic_lines() -> list[str]:
    """The real binary's EMF lines for attic, which sends every minute but 20-59, placed at their
    scripted times."""
    from lambda_runtime import RuntimeApi, url_event

    beats = [T0 + 60 * i + 5 for i in range(MINUTES) if not SILENT_FROM <= i < SILENT_TO]
    with RuntimeApi(lambda_binary(), {"ISP_MONITOR_FUNCTION_KEY": KEY}) as api:
        for _ in beats:
            assert api.invoke(url_event(json.dumps({"device": "attic"}), key=KEY))["statusCode"] == 200
        lines = [l for l in api.lines_now() if '"_aws"' in l]
    assert len(lines) == len(beats)
    out = []
    for at, line in zip(beats, lines):
        doc = json.loads(line)
        doc["_aws"]["Timestamp"] = int(at * 1000)
        out.append(json.dumps(doc))
    return out


def botocore_describe_alarms() -> dict[str, str]:
    """The form fields botocore's Query serializer makes of DescribeAlarms with our filters."""
    import botocore.session
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model("cloudwatch")
    params = {"AlarmNamePrefix": "ispmon-silent-", "StateValue": "ALARM", "AlarmTypes": ["MetricAlarm"], "MaxRecords": 100}
    body = create_serializer("query").serialize_to_request(params, model.operation_model("DescribeAlarms"))["body"]
    return {k: str(v) for k, v in body.items()}


def last_change(sim: AlarmSim) -> float:
    """When the simulated alarm's state value last changed (its StateTransitionedTimestamp)."""
    changed, previous = T0, None
    for when, state in sim.history:
        if state != previous:
            changed, previous = when, state
    return changed


def test_reminders_at_the_expected_ticks_and_none_after_ok(attic_lines, tmp_path):
    resources = expanded_resources(load(TEMPLATE), {**GIVEN, "ReminderMinutes": str(R)})
    env = dict(resources["ReminderFunction"]["Properties"]["Environment"]["Variables"])
    alarm = silence_alarms(resources)["Silentattic"]
    sim = AlarmSim(alarm, MetricStore([s for line in attic_lines for s in parse_emf(line)]), alarm.evaluation_periods + 2)
    alarms_file = tmp_path / "alarms.json"
    alarms_file.write_text("[]")
    standin = SnsStandIn("--access-key", KEY_ID, "--secret", SECRET, "--token", TOKEN, "--region", "eu-west-1",
                         "--topic", TOPIC, "--alarms", str(alarms_file))  # fmt: skip
    env.update({
        "ISP_MONITOR_SNS_TOPIC_ARN": TOPIC,
        "ISP_MONITOR_SNS_ENDPOINT": f"http://127.0.0.1:{standin.port}/",
        "ISP_MONITOR_CLOUDWATCH_ENDPOINT": f"http://127.0.0.1:{standin.port}/",
        "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
    })  # fmt: skip
    from lambda_runtime import RuntimeApi

    ticks = [T0 + 60 * m + TICK_PHASE for m in range(10, MINUTES, R)]
    sent_at: list[float] = []
    try:
        with RuntimeApi(lambda_binary(), env) as api:
            evaluated = T0 + 10 * 60
            for tick in ticks:
                sim.run(evaluated, tick)  # CloudWatch's evaluations up to this tick
                evaluated = tick
                state, transitioned = sim.state, last_change(sim)
                alarms_file.write_text(json.dumps([
                    {"name": alarm.name, "device": "attic", "state": state, "transitioned": iso(transitioned), "updated": iso(tick - 30)},
                    {"name": "ispmon-silent-office", "device": "office", "state": "OK", "transitioned": iso(T0), "updated": iso(T0)},
                ]))  # fmt: skip
                seen = len(standin.records)
                event = {"version": "0", "id": f"tick-{tick}", "detail-type": "Scheduled Event", "source": "aws.events",
                         "account": "123456789012", "time": iso(tick).replace(".000", ""), "region": "eu-west-1",
                         "resources": ["arn:aws:events:eu-west-1:123456789012:rule/ispmon-reminders"], "detail": {}}  # fmt: skip
                answer = api.invoke(event)
                time.sleep(0.05)
                published = [r for r in standin.records[seen:] if r["params"].get("Action") == "Publish"]
                assert all(r["verified"] for r in standin.records[seen:])
                # The binary's DescribeAlarms is the request botocore itself would build.
                described = [r["params"] for r in standin.records[seen:] if r["params"].get("Action") == "DescribeAlarms"]
                assert described == [botocore_describe_alarms()], described
                assert answer["reminded"] == ["attic"] * len(published)
                sent_at += [tick] * len(published)
                for r in published:
                    assert r["params"]["Subject"].startswith("ISP Monitor: attic is still silent ("), r
    finally:
        standin.close()
    notes = [(n.time, n.new) for n in sim.notifications]
    assert [new for _, new in notes] == [OK, ALARM, OK], notes
    fired, resolved = notes[1][0], notes[2][0]
    expected = [t for t in ticks if fired + R * 60 <= t < resolved]
    assert sent_at == expected, (sent_at, expected, notes)
    assert expected, "the scenario reaches at least one reminder"
    assert R * 60 <= sent_at[0] - fired < 2 * R * 60, "the first reminder comes one to two intervals after the ALARM email"
    assert all(b - a == R * 60 for a, b in zip(sent_at, sent_at[1:])), "one reminder per interval"
    assert not [t for t in sent_at if t >= resolved], "none after OK"


def test_the_standin_answers_what_botocore_parses(tmp_path):
    """The stand-in's DescribeAlarms answer is read by botocore's own Query-protocol parser with
    CloudWatch's service model (what AWS's SDK expects), and its paging and filters hold; an answer
    botocore cannot read as DescribeAlarmsResult is refused by it (the check can fail)."""
    import argparse

    import botocore.session
    from botocore.parsers import ResponseParserError, create_parser
    from sns_standin import describe_alarms

    alarms = tmp_path / "alarms.json"
    alarms.write_text(json.dumps([
        {"name": "ispmon-silent-attic", "device": "attic & loft", "state": "ALARM", "transitioned": "2026-12-01T10:00:00.000Z", "updated": "2026-12-01T10:20:00.000Z"},
        {"name": "ispmon-silent-den", "device": "den", "state": "ALARM", "transitioned": "2026-12-01T10:05:00.000Z"},
        {"name": "ispmon-silent-office", "device": "office", "state": "OK", "transitioned": "2026-12-01T09:00:00.000Z"},
        {"name": "other-alarm", "device": "x", "state": "ALARM", "transitioned": "2026-12-01T09:00:00.000Z"},
    ]))  # fmt: skip
    args = argparse.Namespace(alarms=str(alarms), page_size=1, region="eu-west-1")
    model = botocore.session.get_session().get_service_model("cloudwatch")
    shape = model.operation_model("DescribeAlarms").output_shape
    parser = create_parser("query")
    base = {"Action": "DescribeAlarms", "Version": "2010-08-01", "AlarmNamePrefix": "ispmon-silent-", "StateValue": "ALARM", "MaxRecords": "100"}

    def page(params):
        status, xml = describe_alarms(params, args)
        assert status == 200, xml
        return parser.parse({"body": xml, "headers": {}, "status_code": 200}, shape)

    first = page(base)
    assert [a["AlarmName"] for a in first["MetricAlarms"]] == ["ispmon-silent-attic"]
    attic = first["MetricAlarms"][0]
    assert attic["Dimensions"] == [{"Name": "Device", "Value": "attic & loft"}]
    assert attic["StateTransitionedTimestamp"].isoformat() == "2026-12-01T10:00:00+00:00"
    assert attic["StateUpdatedTimestamp"].isoformat() == "2026-12-01T10:20:00+00:00"
    second = page({**base, "NextToken": first["NextToken"]})
    assert [a["AlarmName"] for a in second["MetricAlarms"]] == ["ispmon-silent-den"]
    assert "NextToken" not in second
    status, xml = describe_alarms({**base, "NextToken": "made-up"}, args)
    assert status == 400 and b"InvalidNextToken" in xml
    with pytest.raises(ResponseParserError):
        parser.parse({"body": b"this is not XML <<<", "headers": {}, "status_code": 200}, shape)
