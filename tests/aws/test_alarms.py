"""The template's own silence alarms (read from aws/template.yaml, Fn::ForEach expanded by
tests/aws/cfn.py) evaluated by the CloudWatch simulation (tests/aws/cloudwatch.py) over the
embedded-metric lines the real ``lambda`` binary printed for a scripted hour of heartbeats, run
behind a loopback Lambda Runtime API stand-in.

The hour: ``attic`` sends every minute but is silent from minute 20 to 35; ``office`` sends every
minute with up to ±25 s of jitter (so some minutes hold no heartbeat and some two); ``spare`` is
listed but never sends. Each heartbeat is sent for real and the line the binary printed for it is
checked (device, and a timestamp taken while it was being handled), then placed at its scripted
time: the binary stamps lines with the real clock, and the scripted hour takes a second to run.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from cfn import expanded_resources, load, load_text
from cloudwatch import ALARM, INSUFFICIENT, OK, AlarmSim, MetricAlarm, MetricStore, Sample, parse_emf
from conftest import REPO, TEMPLATE

KEY = "k3y-for-the-alarm-simulation-0123456789abcdef"
DEVICES = "attic,office,spare"
GIVEN = {
    "DeviceNames": DEVICES,
    "AlertEmail": "me@example.com",
    "FunctionKey": KEY,
    "CodeS3Bucket": "bucket",
    "CodeS3Key": "lambda.zip",
}
SILENT_FROM, SILENT_TO, MINUTES = 20, 35, 60
# Whole minutes, two hours back, so no scripted time is in the future.
T0 = (int(time.time()) // 60) * 60 - 7200
# The alarms exist from minute 10 (both devices have sent for a while) to the hour's end.
EVALUATED = (T0 + 10 * 60, T0 + MINUTES * 60)


def lambda_binary() -> Path:
    path = Path(os.environ.get("ISP_MONITOR_LAMBDA") or REPO / "target" / "debug" / "lambda")
    if not path.exists():
        pytest.fail(f"{path} is missing: tests/aws/run.sh builds it (cargo build --bin lambda)")
    return path


def schedule() -> list[tuple[float, str]]:
    rng = random.Random(16)
    beats = [(T0 + 60 * i + 5, "attic") for i in range(MINUTES) if not SILENT_FROM <= i < SILENT_TO]
    beats += [(T0 + 60 * i + 30 + rng.uniform(-25, 25), "office") for i in range(MINUTES)]
    return sorted(beats)


@pytest.fixture(scope="module")
def emitted() -> list[tuple[float, str]]:
    """(scripted time, the binary's EMF line) for every heartbeat of the hour."""
    from lambda_runtime import RuntimeApi, url_event

    beats = schedule()
    windows = []
    with RuntimeApi(lambda_binary(), {"ISP_MONITOR_FUNCTION_KEY": KEY}) as api:
        for seq, (_, device) in enumerate(beats):
            before = time.time()
            answer = api.invoke(url_event(json.dumps({"device": device, "seq": seq}), key=KEY))
            windows.append((before, time.time()))
            assert answer.get("statusCode") == 200, answer
        lines = api.lines_now()
    docs = [line for line in lines if line.startswith("{") and '"_aws"' in line]
    assert len(docs) == len(beats), f"{len(docs)} EMF lines for {len(beats)} heartbeats:\n" + "\n".join(lines[:5])
    out = []
    for (at, device), (before, after), line in zip(beats, windows, docs):
        doc = json.loads(line)
        assert doc["Device"] == device and doc["event"] == "heartbeat"
        assert before - 1 <= doc["_aws"]["Timestamp"] / 1000 <= after + 1, "the line's timestamp is its handling time"
        doc["_aws"]["Timestamp"] = int(at * 1000)
        out.append((at, json.dumps(doc)))
    return out


def silence_alarms(resources: dict) -> dict[str, MetricAlarm]:
    return {
        name: MetricAlarm.from_properties(res["Properties"])
        for name, res in resources.items()
        if res["Type"] == "AWS::CloudWatch::Alarm"
    }


def samples(emitted, latency: float) -> list[Sample]:
    return [s for _, line in emitted for s in parse_emf(line, visible_after=latency)]


def problems(resources: dict, emitted, evaluation_range_extra: int, latency: float) -> list[str]:
    """What is wrong with these alarms over the hour, against the promises in docs/aws.md:
    silent → one ALARM, back → one OK, a live device never alarms, a never-seen device alarms."""
    alarms = silence_alarms(resources)
    found = []
    by_device = {}
    for name, alarm in alarms.items():
        device = dict(alarm.dimensions).get("Device", "?")
        sim = AlarmSim(alarm, MetricStore(samples(emitted, latency)), alarm.evaluation_periods + evaluation_range_extra)
        sim.run(*EVALUATED)
        by_device[device] = (alarm, [(n.time, n.old, n.new, n.actions) for n in sim.notifications])
    if sorted(by_device) != sorted(DEVICES.split(",")):
        return [f"alarms for {sorted(by_device)}"]
    alarm, attic = by_device["attic"]
    n, r = alarm.evaluation_periods, alarm.evaluation_periods + evaluation_range_extra
    if [(o, w) for _, o, w, _ in attic] != [(INSUFFICIENT, OK), (OK, ALARM), (ALARM, OK)]:
        found.append(f"attic: {[(o, w) for _, o, w, _ in attic]}")
    else:
        fired, resolved = attic[1][0], attic[2][0]
        silent_since = T0 + SILENT_FROM * 60
        if not silent_since + n * 60 <= fired <= silent_since + r * 60 + latency + 120:
            found.append(f"attic fired {fired - silent_since:.0f} s after its silence began")
        back = T0 + SILENT_TO * 60 + 5
        if not back < resolved <= back + 60 + latency + 70:
            found.append(f"attic resolved {resolved - back:.0f} s after it came back")
    office = by_device["office"][1]
    if [(o, w) for _, o, w, _ in office] != [(INSUFFICIENT, OK)]:
        found.append(f"office: {[(o, w) for _, o, w, _ in office]}")
    spare = by_device["spare"][1]
    if [(o, w) for _, o, w, _ in spare] != [(INSUFFICIENT, ALARM)]:
        found.append(f"spare: {[(o, w) for _, o, w, _ in spare]}")
    for device, (_, sent) in by_device.items():
        if any(actions != ["<ref:Topic>"] for *_, actions in sent):
            found.append(f"{device}: notifications not to the topic: {sent}")
    return found


@pytest.mark.parametrize("extra", [0, 2, 4], ids=lambda e: f"range=N+{e}")
@pytest.mark.parametrize("latency", [0, 150], ids=lambda s: f"latency={s}s")
def test_template_alarms_over_the_binarys_metrics(emitted, extra, latency):
    """Silent attic: one ALARM, then one OK when it is back; jittery office: never alarms; spare
    (never sent): ALARM at once; every notification to the topic. For evaluation ranges of N to
    N+4 periods and metrics visible at once or 150 s late (neither is published)."""
    resources = expanded_resources(load(TEMPLATE), GIVEN)
    assert problems(resources, emitted, extra, latency) == []


MUTATIONS = {
    "missing data not breaching": ("TreatMissingData: breaching", "TreatMissingData: notBreaching"),
    "lower-case dimension name": ("            - Name: Device\n", "            - Name: device\n"),
    "alarm on one late datapoint": ("DatapointsToAlarm: !Ref SilenceMinutes", "DatapointsToAlarm: 1"),
    "no OK action": ("          OKActions:\n            - !Ref Topic\n", ""),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_scenario_catches_broken_alarms(emitted, mutation):
    """The check can fail: each broken copy of the template breaks at least one promise."""
    old, new = MUTATIONS[mutation]
    text = TEMPLATE.read_text(encoding="utf-8")
    assert old in text
    resources = expanded_resources(load_text(text.replace(old, new, 1)), GIVEN)
    assert problems(resources, emitted, 2, 0) != []


def test_delays_for_the_docs(emitted):
    """Prints the detection and resolution delays and the line size docs/aws.md quotes (not a
    check of them)."""
    sizes = [len(line.encode()) for _, line in emitted]
    print(f"EMF heartbeat line: {sum(sizes) / len(sizes):.0f} bytes on average")
    resources = expanded_resources(load(TEMPLATE), GIVEN)
    alarm = silence_alarms(resources)["Silentattic"]
    for extra in (0, 2):
        for latency in (0, 150):
            sim = AlarmSim(alarm, MetricStore(samples(emitted, latency)), alarm.evaluation_periods + extra)
            sent = sim.run(*EVALUATED)
            fired = sent[1].time - (T0 + SILENT_FROM * 60 - 55)
            resolved = sent[2].time - (T0 + SILENT_TO * 60 + 5)
            print(f"range N+{extra}, latency {latency}s: ALARM {fired / 60:.1f} min after the last heartbeat, OK {resolved / 60:.1f} min after the first one back")
