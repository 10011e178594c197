"""One email per accepted outage report, its cause in words: the real ``lambda`` binary (behind
the Runtime API stand-in) publishing to the loopback SNS stand-in, which checks each request's
signature with botocore's SigV4 signer."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone

import pytest
from conftest import SnsStandIn
from test_alarms import KEY, lambda_binary

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ispmon-alerts"
KEY_ID, SECRET, TOKEN = "AKIDOUTAGETEST01", "outage/test+secret=0123456789", "IQoJOutageTestSessionToken//=="


@pytest.fixture(scope="module")
def sns():
    standin = SnsStandIn("--access-key", KEY_ID, "--secret", SECRET, "--token", TOKEN, "--region", "eu-west-1", "--topic", TOPIC)
    yield standin
    standin.close()


def run(sns, beats: list[dict], secret: str = SECRET) -> tuple[list[dict], list[str], list[dict]]:
    """Sends each heartbeat body; returns the answers, the binary's stdout and stderr lines and the
    stand-in's records of this run."""
    from lambda_runtime import RuntimeApi, url_event

    seen = len(sns.records)
    env = {
        "ISP_MONITOR_FUNCTION_KEY": KEY,
        "ISP_MONITOR_SNS_TOPIC_ARN": TOPIC,
        "ISP_MONITOR_SNS_ENDPOINT": f"http://127.0.0.1:{sns.port}/",
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": TOKEN,
    }
    with RuntimeApi(lambda_binary(), env) as api:
        answers = [api.invoke(url_event(json.dumps(b), key=KEY)) for b in beats]
        lines = api.lines_now() + api.errors
    return answers, lines, sns.records[seen:]


def outage(oid: str, cause: str, minutes: int) -> dict:
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=2)
    start = end - timedelta(minutes=minutes)
    return {"id": oid, "start": start.isoformat().replace("+00:00", "Z"), "end": end.isoformat().replace("+00:00", "Z"), "cause": cause, "detail": "probes: 0/3 targets"}


def test_one_signed_email_per_outage_with_its_cause(sns):
    answers, lines, records = run(
        sns,
        [
            {"device": "attic"},
            {"device": "attic", "outages": [outage("o-isp-1", "isp", 15)]},
            {"device": "office", "outages": [outage("o-lan-1", "lan", 3), outage("o-off-1", "agent_offline", 60)]},
        ],
    )
    assert [a["statusCode"] for a in answers] == [200, 200, 200]
    assert len(records) == 3, records
    assert all(r["verified"] for r in records), records
    first = records[0]["params"]
    assert first["Subject"] == "ISP Monitor: attic was offline for 15 min 0 s"
    assert "Cause: your internet provider (DNS and internet targets unreachable).\n" in first["Message"]
    assert "downtime: yes." in first["Message"] and "Outage id: o-isp-1" in first["Message"]
    causes = [r["params"]["Message"].split("Cause: ")[1].split(".\n")[0] for r in records[1:]]
    assert causes == [
        "your local network (the router did not answer)",
        "the agent was not running (nobody observed: not counted against the ISP)",
    ]
    assert all("not the ISP's doing" in r["params"]["Message"] for r in records[1:])
    assert not any('"notify_failed"' in line for line in lines)


def test_a_refused_publish_is_logged_without_secrets_and_the_heartbeat_still_counts(sns):
    """The stand-in can fail: with a wrong secret the signature is refused; the heartbeat is still
    accepted, the failure is logged, and no line shows the secret, the token or the key id."""
    answers, lines, records = run(sns, [{"device": "attic", "outages": [outage("o-bad-1", "dns", 4)]}], secret="wrong/secret+value=000000")
    assert answers[0]["statusCode"] == 200
    assert len(records) == 1 and records[0]["verified"] is False
    assert any("notify_failed" in line for line in lines), lines
    text = "\n".join(lines)
    for secret in ("wrong/secret+value=000000", TOKEN, KEY_ID, KEY):
        assert secret not in text
