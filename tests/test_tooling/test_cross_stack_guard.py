"""The replacement guard across stacks, on the real synthesized templates with one change applied in memory.

A change to a producer stack's template is made here the way a code change would make it (the
property CloudFormation would see); no extra synth. What this cannot prove: CloudFormation's own
ordering of a real deploy, and replacement rules newer than the pinned CLI's resource specification.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tools.assembly import stack_artifacts
from tools.cross_stack_guard import consumers, cross_stack_findings, replacement_properties
from tools.replacement_guard import blocking_findings, report


@pytest.fixture(scope="module")
def staging(synthesized_app: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    artifacts = {
        n: a for n, a in stack_artifacts(synthesized_app.directory).items() if n.startswith("Staging/")
    }
    return {n: a.template() for n, a in artifacts.items()}, {n: a.stack_name for n, a in artifacts.items()}


def _changed(
    templates: dict[str, dict[str, Any]], stack: str, resource_type: str, edit: Any
) -> dict[str, Any]:
    changed = copy.deepcopy(templates)
    matches = [r for r in changed[stack]["Resources"].values() if r["Type"] == resource_type]
    edit(matches)
    return changed


def test_an_unchanged_app_has_no_cross_stack_finding(staging: Any) -> None:
    templates, names = staging
    assert cross_stack_findings(templates, copy.deepcopy(templates), names) == []


def test_the_spec_knows_what_replaces_a_security_group() -> None:
    assert replacement_properties("AWS::EC2::SecurityGroup")["GroupDescription"] == "yes"
    assert replacement_properties("AWS::EC2::VPC")["CidrBlock"] == "yes"


def test_replacing_the_database_security_group_blocks_naming_its_consumers(staging: Any) -> None:
    templates, names = staging

    def describe_differently(groups: list[dict[str, Any]]) -> None:
        database_group = next(g for g in groups if "5432 from granted" in g["Properties"]["GroupDescription"])
        database_group["Properties"]["GroupDescription"] = "PostgreSQL (reworded)"

    new = _changed(templates, "Staging/Data", "AWS::EC2::SecurityGroup", describe_differently)
    failing = blocking_findings(cross_stack_findings(templates, new, names))
    assert failing, "a replaced security group that other stacks use must fail the guard"
    assert {f.logical_id for f in failing} == {"DatabaseSecurityGroup5C91FDCB"}
    detail = " ".join(f.detail for f in failing)
    assert "Staging/ApplicationAccess" in detail and "Staging/Migration" in detail
    text, passed = report(failing)
    assert not passed and "GroupDescription" in text


def test_a_new_vpc_cidr_blocks(staging: Any) -> None:
    templates, names = staging

    def new_cidr(vpcs: list[dict[str, Any]]) -> None:
        vpcs[0]["Properties"]["CidrBlock"] = "10.99.0.0/16"

    new = _changed(templates, "Staging/Network", "AWS::EC2::VPC", new_cidr)
    failing = blocking_findings(cross_stack_findings(templates, new, names))
    blocked_types = {f.resource_type for f in failing}
    assert "AWS::EC2::VPC" in blocked_types
    # Subnets and security groups name the VPC in a replacing property: they are replaced with it.
    assert "AWS::EC2::Subnet" in blocked_types


def test_a_replaced_subnet_blocks(staging: Any) -> None:
    templates, names = staging

    def new_subnet_cidr(subnets: list[dict[str, Any]]) -> None:
        database_subnet = next(s for s in subnets if s["Properties"]["CidrBlock"].endswith(".0/24"))
        database_subnet["Properties"]["CidrBlock"] = "10.41.250.0/24"

    new = _changed(templates, "Staging/Network", "AWS::EC2::Subnet", new_subnet_cidr)
    failing = blocking_findings(cross_stack_findings(templates, new, names))
    assert [f.resource_type for f in failing] == ["AWS::EC2::Subnet"]


def test_a_changed_value_without_replacement_is_a_warning_naming_consumers() -> None:
    producer: dict[str, Any] = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}},
                "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}}}  # fmt: skip
    changed = copy.deepcopy(producer)
    changed["Outputs"]["TopicArn"]["Value"] = {"Fn::GetAtt": ["Topic", "TopicArn"]}
    consumer: dict[str, Any] = {"Resources": {"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmActions": [
        {"Fn::GetStackOutput": {"StackName": "Staging-Data", "OutputName": "TopicArn"}}]}}}}  # fmt: skip
    names = {"Staging/Data": "Staging-Data", "Staging/Monitoring": "Staging-Monitoring"}
    findings = cross_stack_findings(
        {"Staging/Data": producer, "Staging/Monitoring": consumer},
        {"Staging/Data": changed, "Staging/Monitoring": consumer},
        names,
    )
    assert [(f.action, f.logical_id) for f in findings] == [("warning", "TopicArn")]
    assert "Staging/Monitoring must be redeployed" in findings[0].detail.replace("consumer(s) ", "")
    assert consumers({"Staging/Monitoring": consumer}) == {
        ("Staging-Data", "TopicArn"): ["Staging/Monitoring"]
    }
