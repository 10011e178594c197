"""Our reading of the template (Fn::ForEach, parameters) against the CloudFormation reference's
documented examples and against cfn-lint's own, independent implementation of the transform."""

from __future__ import annotations

import pytest
from cfn import TemplateError, expand_foreach, expanded_resources, load, load_text
from conftest import TEMPLATE


def test_documented_example_one_resource_per_item():
    """The reference's first example: SNS topics named from a literal collection."""
    section = load_text(
        """
Fn::ForEach::Topics:
  - TopicName
  - [Success, Failure, Timeout, Unknown]
  - SnsTopic${TopicName}:
      Type: AWS::SNS::Topic
      Properties:
        TopicName: !Ref TopicName
        FifoTopic: true
"""
    )
    out = expand_foreach(section, {})
    assert list(out) == ["SnsTopicSuccess", "SnsTopicFailure", "SnsTopicTimeout", "SnsTopicUnknown"]
    assert out["SnsTopicTimeout"]["Properties"] == {"TopicName": "Timeout", "FifoTopic": True}


def test_documented_example_non_alphanumeric_items():
    """The reference's &{} example: CIDRs in logical ids lose their dots and slashes; ${} in a
    value keeps them."""
    section = load_text(
        """
Fn::ForEach::Subnets:
  - CIDR
  - [10.0.2.0/24, 10.0.3.0/24]
  - Subnet&{CIDR}:
      Type: AWS::EC2::Subnet
      Properties:
        CidrBlock: !Ref CIDR
        Tag: !Sub "net-${CIDR}"
"""
    )
    out = expand_foreach(section, {})
    assert list(out) == ["Subnet1002024", "Subnet1003024"]
    assert out["Subnet1003024"]["Properties"] == {"CidrBlock": "10.0.3.0/24", "Tag": {"Fn::Sub": "net-10.0.3.0/24"}}


def test_colliding_logical_ids_are_refused():
    """Two devices that differ only in punctuation would give one logical id twice."""
    with pytest.raises(TemplateError, match="duplicate logical id"):
        expanded_resources(load(TEMPLATE), {"DeviceNames": "my-pc,mypc", **REQUIRED})


REQUIRED = {
    "AlertEmail": "me@example.com",
    "FunctionKey": "k" * 40,
    "CodeS3Bucket": "bucket",
    "CodeS3Key": "lambda-abc.zip",
}


def test_template_expands_to_one_alarm_per_device():
    resources = expanded_resources(load(TEMPLATE), {"DeviceNames": "attic,dl-home,office.pc", **REQUIRED})
    alarms = {k: v for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(alarms) == ["Silentattic", "Silentdlhome", "Silentofficepc"]
    props = alarms["Silentdlhome"]["Properties"]
    assert props["AlarmName"] == "ispmon-silent-dl-home"
    assert props["Dimensions"] == [{"Name": "Device", "Value": "dl-home"}]
    assert props["EvaluationPeriods"] == "5" and props["AlarmActions"] == ["<ref:Topic>"]


@pytest.mark.parametrize(
    "given, message",
    [
        ({"SilenceMinutes": "1"}, "below"),
        ({"NamePrefix": "Bad_Prefix"}, "does not match"),
        ({"Architecture": "sparc"}, "is not one of"),
        ({"FunctionKey": "short"}, "shorter"),
    ],
)
def test_parameter_constraints_are_checked(given, message):
    with pytest.raises(TemplateError, match=message):
        expanded_resources(load(TEMPLATE), {"DeviceNames": "attic", **REQUIRED, **given})


def test_expansion_agrees_with_cfn_lint():
    """cfn-lint's AWS::LanguageExtensions transform (its own code) expands the template's loop to
    the same logical ids and alarm properties as ours, for the same device list."""
    from cfnlint.decode import decode_str
    from cfnlint.template import Template

    text = TEMPLATE.read_text(encoding="utf-8").replace(
        "    Type: CommaDelimitedList\n", "    Type: CommaDelimitedList\n    Default: attic,dl-home,office.pc\n", 1
    )
    decoded, matches = decode_str(text)
    assert not matches
    theirs = Template("template.yaml", decoded, ["eu-west-1"])
    assert not theirs.transform()
    their_alarms = {k: v for k, v in theirs.template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    ours = expand_foreach(load_text(text)["Resources"], {"DeviceNames": ["attic", "dl-home", "office.pc"]})
    our_alarms = {k: v for k, v in ours.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(their_alarms) == sorted(our_alarms) == ["Silentattic", "Silentdlhome", "Silentofficepc"]
    for name, alarm in our_alarms.items():
        assert _plain(their_alarms[name]) == _plain(alarm), name


def _plain(value):
    """cfn-lint's decoded nodes as plain dicts, lists and strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
