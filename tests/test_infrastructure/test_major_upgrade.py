"""A major upgrade is a config change: staging 17 -> 18 synthesizes an in-place upgrade of the same instance.

One extra synth of the Staging stage alone, with `engine_version="18"` and `upgrading_from_engine_version="17"`,
compared with the session's staging template the way `make diff` would. What this cannot prove: RDS's
own upgrade pre-checks (extensions, reg* types) and how long the upgrade takes; the runbook says how to
rehearse those on a production snapshot.
"""

from __future__ import annotations

from typing import Any

import pytest

from config.environments import STAGING
from tests.support.synth import modified, synthesize_app
from tools.replacement_guard import blocking_findings, compare_stack

ORIGINAL_PARAMETER_GROUP = "DatabaseParameterGroup2A921026"


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: Any) -> dict[str, Any]:
    config = modified(STAGING, database={"engine_version": "18", "upgrading_from_engine_version": "17"})
    return synthesize_app([config], tmp_path_factory.mktemp("upgrade")).template_json("Staging", "Data")


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def test_both_families_exist_from_one_definition_and_the_instance_moves_to_the_new(upgraded):
    groups = _of_type(upgraded, "AWS::RDS::DBParameterGroup")
    families = {group["Properties"]["Family"]: logical_id for logical_id, group in groups.items()}
    assert set(families) == {"postgres17", "postgres18"}
    assert families["postgres17"] == ORIGINAL_PARAMETER_GROUP, "the deployed group keeps its logical id"
    old, new = groups[families["postgres17"]], groups[families["postgres18"]]
    assert old["Properties"]["Parameters"] == new["Properties"]["Parameters"]
    assert old["DeletionPolicy"] == new["DeletionPolicy"] == "Retain"
    (instance,) = _of_type(upgraded, "AWS::RDS::DBInstance").values()
    properties = instance["Properties"]
    assert properties["EngineVersion"] == "18"
    assert properties["AllowMajorVersionUpgrade"] is True
    # The Ref is the ordering: CloudFormation creates the new group before it updates the instance.
    assert properties["DBParameterGroupName"] == {"Ref": families["postgres18"]}


def test_the_guard_reads_it_as_an_upgrade_of_the_same_instance(upgraded, synthesized_app):
    before = synthesized_app.template_json("Staging", "Data")
    findings = compare_stack("Staging", "Data", before, upgraded)
    assert blocking_findings(findings) == [], [f.message() for f in findings]
    upgrade = [f for f in findings if f.resource_type == "AWS::RDS::DBInstance"]
    assert len(upgrade) == 1 and "in-place major upgrade 17 -> 18 of the SAME instance" in upgrade[0].detail


def test_without_the_upgrade_field_the_change_is_refused_by_the_guard(synthesized_app):
    before = synthesized_app.template_json("Staging", "Data")
    after = {**before, "Resources": dict(before["Resources"])}
    (instance_id,) = _of_type(before, "AWS::RDS::DBInstance")
    instance = dict(after["Resources"][instance_id])
    instance["Properties"] = {**instance["Properties"], "EngineVersion": "18"}
    after["Resources"][instance_id] = instance
    findings = blocking_findings(compare_stack("Staging", "Data", before, after))
    assert [f.action for f in findings] == ["invalid"]
