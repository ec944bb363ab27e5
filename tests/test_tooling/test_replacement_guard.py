"""The replacement guard on small hand-written templates (no synth)."""

from __future__ import annotations

import copy

import pytest

from contract.names import RESTORE_CUTOVER_METADATA
from tools.replacement_guard import (
    REPLACEMENT_PROPERTIES,
    blocking_findings,
    compare_assemblies,
    compare_stack,
    parse_cdk_diff,
    report,
)

BASE = {
    "Resources": {
        "Key": {
            "Type": "AWS::KMS::Key",
            "Properties": {"EnableKeyRotation": True},
            "DeletionPolicy": "Retain",
        },
        "Params": {
            "Type": "AWS::RDS::DBParameterGroup",
            "Properties": {
                "Family": "postgres17",
                "Description": "TLS enforced",
                "Parameters": {"rds.force_ssl": "1", "log_statement": "ddl"},
            },
            "DeletionPolicy": "Retain",
        },
        "Subnets": {
            "Type": "AWS::RDS::DBSubnetGroup",
            "Properties": {"DBSubnetGroupDescription": "db", "SubnetIds": ["a", "b"]},
        },
        "Instance": {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {
                "Engine": "postgres",
                "EngineVersion": "17.9",
                "DBInstanceClass": "db.r7g.large",
                "StorageEncrypted": True,
                "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                "DBParameterGroupName": {"Ref": "Params"},
                "DBSubnetGroupName": {"Ref": "Subnets"},
                "Port": "5432",
            },
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
        },
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/aws/rds/x/postgresql"}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}},
    }
}


def changed(mutate):
    template = copy.deepcopy(BASE)
    mutate(template["Resources"])
    return template


def actions(findings):
    return {(f.logical_id, f.action) for f in findings}


def test_identical_templates_have_no_findings():
    assert compare_stack("Production", "Data", BASE, copy.deepcopy(BASE)) == []


def test_in_place_changes_pass():
    def mutate(resources):
        resources["Instance"]["Properties"]["DBInstanceClass"] = "db.r7g.xlarge"
        resources["Subnets"]["Properties"]["SubnetIds"] = ["a", "b", "c"]
        resources["Params"]["Properties"]["Parameters"]["log_statement"] = "mod"  # dynamic
        resources["Topic"]["Properties"]["TopicName"] = "renamed"  # not stateful

    assert compare_stack("Production", "Data", BASE, changed(mutate)) == []


@pytest.mark.parametrize(
    ("logical_id", "prop", "value"),
    [
        ("Instance", "StorageEncrypted", False),
        ("Instance", "Port", "5433"),
        ("Instance", "DBInstanceIdentifier", "revenuepilot-prod-2"),
        ("Params", "Family", "postgres18"),
        ("Params", "Description", "new words replace the group"),
        ("Logs", "LogGroupName", "/aws/rds/y/postgresql"),
        ("Key", "KeySpec", "RSA_2048"),
    ],
)
def test_replacement_forcing_property_is_blocking_and_named(logical_id, prop, value):
    def mutate(resources):
        resources[logical_id]["Properties"][prop] = value

    findings = compare_stack("Production", "Data", BASE, changed(mutate))
    replace = [f for f in findings if f.logical_id == logical_id and f.action == "replace"]
    assert len(replace) == 1 and replace[0].blocking
    message = replace[0].message()
    assert "Production/Data" in message and logical_id in message and prop in message
    assert str(BASE["Resources"][logical_id]["Type"]) in message


def test_removed_logical_id_is_a_deletion_with_rename_hint():
    def mutate(resources):
        resources["Key2"] = resources.pop("Key")
        resources["Instance"]["Properties"]["KmsKeyId"] = {"Fn::GetAtt": ["Key2", "Arn"]}

    findings = compare_stack("Staging", "Data", BASE, changed(mutate))
    assert ("Key", "delete") in actions(findings)
    assert ("Instance", "replace") in actions(findings)  # KmsKeyId now names another key
    assert "Key2" in next(f.detail for f in findings if f.action == "delete")


def test_type_change_is_a_replacement():
    def mutate(resources):
        resources["Logs"]["Type"] = "AWS::Logs::Destination"

    assert ("Logs", "replace") in actions(compare_stack("Staging", "Data", BASE, changed(mutate)))


def test_replacement_cascades_through_references():
    """Naming the subnet group replaces it; the instance's DBSubnetGroupName (a Ref to it, textually
    unchanged) then names a new group, which replaces the instance too."""

    def mutate(resources):
        resources["Subnets"]["Properties"]["DBSubnetGroupName"] = "explicit-name"

    findings = compare_stack("Production", "Data", BASE, changed(mutate))
    assert actions(findings) == {("Subnets", "replace"), ("Instance", "replace")}
    cascade = next(f for f in findings if f.logical_id == "Instance")
    assert "DBSubnetGroupName refers to Subnets" in cascade.detail


@pytest.mark.parametrize(
    ("parameter", "blocking"),
    [("shared_preload_libraries", True), ("some_new_param", True), ("rds.force_ssl", False)],
)
def test_parameter_changes_flag_static_and_unknown_parameters(parameter, blocking):
    def mutate(resources):
        resources["Params"]["Properties"]["Parameters"][parameter] = "0"

    findings = compare_stack("Production", "Data", BASE, changed(mutate))
    assert bool(blocking_findings(findings)) is blocking
    if blocking:
        assert findings[0].action == "reboot" and parameter in findings[0].detail


def test_weakened_deletion_policy_is_blocking():
    def mutate(resources):
        del resources["Instance"]["DeletionPolicy"]

    findings = compare_stack("Production", "Data", BASE, changed(mutate))
    assert actions(findings) == {("Instance", "unprotect")}


def test_a_well_formed_major_upgrade_is_an_in_place_upgrade_warning():
    def mutate(resources):
        resources["Params18"] = copy.deepcopy(resources["Params"])
        resources["Params18"]["Properties"]["Family"] = "postgres18"
        resources["Instance"]["Properties"]["EngineVersion"] = "18"
        resources["Instance"]["Properties"]["AllowMajorVersionUpgrade"] = True
        resources["Instance"]["Properties"]["DBParameterGroupName"] = {"Ref": "Params18"}

    findings = compare_stack("Production", "Data", BASE, changed(mutate))
    assert actions(findings) == {("Instance", "warning")}
    assert blocking_findings(findings) == []
    (finding,) = findings
    assert (
        "SAME instance" in finding.detail
        and "creates parameter group Params18 (postgres18) first" in finding.detail
    )


@pytest.mark.parametrize("missing", ["AllowMajorVersionUpgrade", "new family"])
def test_a_major_change_that_rds_would_refuse_is_blocking(missing):
    def mutate(resources):
        resources["Instance"]["Properties"]["EngineVersion"] = "18"
        if missing != "AllowMajorVersionUpgrade":
            resources["Instance"]["Properties"]["AllowMajorVersionUpgrade"] = True

    findings = compare_stack("Production", "Data", BASE, changed(mutate))
    assert actions(findings) == {("Instance", "invalid")}
    assert blocking_findings(findings) and "postgres18" in findings[0].detail


def test_new_and_removed_stacks():
    findings = compare_assemblies({"Staging/Data": BASE}, {"Staging/Migration": BASE})
    assert {f.stack for f in findings} == {"Data"}  # the new stack has nothing to endanger
    assert all(f.action == "warning" for f in findings)


def test_allow_list_accepts_a_named_replacement():
    def mutate(resources):
        resources["Instance"]["Properties"]["DBSnapshotIdentifier"] = "arn:aws:rds:snapshot:prod"

    findings = compare_stack("Staging", "Data", BASE, changed(mutate))
    text, passed = report(findings)
    assert not passed and "REPLACEMENT GUARD FAILED" in text and "DBSnapshotIdentifier" in text
    text, passed = report(findings, allowed=["Staging/Data/Instance"])
    assert passed and "(allowed)" in text


def test_table_covers_every_stateful_type():
    assert set(REPLACEMENT_PROPERTIES) == {
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBSubnetGroup",
        "AWS::RDS::DBParameterGroup",
        "AWS::KMS::Key",
        "AWS::SecretsManager::Secret",
        "AWS::Logs::LogGroup",
        "AWS::Backup::BackupVault",
    }


CDK_DIFF_OUTPUT = """
Stack Staging/Data (Staging-Data)
Resources
[-] AWS::KMS::Key OldKeyABC123 destroy
[~] AWS::RDS::DBParameterGroup Data/Database/ParameterGroup DatabaseParameterGroup2A921026
 └─ [~] Parameters
     └─ [-] Removed: .shared_preload_libraries
[~] AWS::RDS::DBInstance Data/Database/Instance DatabaseInstanceAA8A5FDE replace
 └─ [~] Port (requires replacement)
     ├─ [-] 5433
     └─ [+] 5432
[~] AWS::SNS::Topic Monitoring/Topic TopicBFC7AF6E replace
 └─ [~] TopicName (requires replacement)
"""


def test_cdk_diff_output_is_a_second_signal():
    findings = parse_cdk_diff("Staging", "Data", CDK_DIFF_OUTPUT)
    assert [(f.logical_id, f.action, f.source) for f in findings] == [
        ("OldKeyABC123", "delete", "cdk diff"),
        ("DatabaseInstanceAA8A5FDE", "replace", "cdk diff"),
    ]
    assert "Port (requires replacement)" in findings[1].detail


def test_loading_pgaudit_is_one_reboot_that_a_pr_allows_by_name():
    """Issue 16: the parameter group gains pgAudit. Its settings are dynamic; loading the library
    (`shared_preload_libraries`, static) puts an existing instance into pending-reboot, so the guard
    blocks exactly that one change until the PR names it in ALLOW_REPLACE (README: pgAudit)."""
    from config.environments import PRODUCTION
    from config.parameter_group import PGAUDIT_SETTINGS, parameter_group_settings

    settings = parameter_group_settings(PRODUCTION.database)
    before = {name: value for name, value in settings.items() if name not in PGAUDIT_SETTINGS}

    def with_parameters(parameters):
        def mutate(resources):
            resources["Params"]["Properties"]["Parameters"] = dict(parameters)

        return changed(mutate)

    findings = compare_stack("Production", "Data", with_parameters(before), with_parameters(settings))
    assert [(f.action, f.detail.split(" ")[0]) for f in findings] == [
        ("reboot", "Parameters.shared_preload_libraries")
    ]
    assert "static" in findings[0].detail
    text, passed = report(findings, allowed=["Production/Data/Params"])
    assert passed and "(allowed)" in text
    assert not report(findings)[1]


def _cut_over(snapshot: str, ticket: str):
    """BASE after an approved cutover from `snapshot` (decision 0007): identifier and approval stay."""

    def mutate(resources):
        resources["Instance"]["Properties"]["DBSnapshotIdentifier"] = snapshot
        resources["Instance"]["Metadata"] = {
            RESTORE_CUTOVER_METADATA: {"SnapshotIdentifier": snapshot, "ChangeTicket": ticket}
        }

    return changed(mutate)


@pytest.mark.parametrize(
    "replace",
    [
        pytest.param(lambda r: r["Instance"]["Properties"].update(Port="5433"), id="own-property"),
        pytest.param(lambda r: r["Key"]["Properties"].update(KeySpec="RSA_2048"), id="cascade"),
        pytest.param(lambda r: r.update(Instance2=r.pop("Instance")), id="new-logical-id"),
    ],
)
def test_replacing_an_instance_that_keeps_its_cutover_snapshot_is_refused_whatever_is_allowed(replace):
    """After a cutover the identifier stays (decision 0007): any later replacement would restore the old
    snapshot again and lose every write since. No ALLOW_REPLACE accepts that."""
    base = _cut_over("prod-restored-cutover", "CHG-1234")
    new = copy.deepcopy(base)
    replace(new["Resources"])
    findings = compare_stack("Production", "Data", base, new)
    (refused,) = [f for f in findings if f.action == "refuse"]
    assert refused.resource_type == "AWS::RDS::DBInstance"
    assert "'prod-restored-cutover'" in refused.detail and "LOST" in refused.detail
    assert "fresh snapshot" in refused.detail and "new approved cutover" in refused.detail
    allowed = [f.key for f in findings]
    text, passed = report(findings, allowed=allowed)
    assert not passed and refused.message() in text
    assert blocking_findings(findings, allowed) == [refused]


def test_a_new_approved_cutover_stays_an_allowable_replacement():
    base = _cut_over("prod-restored-cutover", "CHG-1234")
    new = _cut_over("prod-restored-2-cutover", "CHG-2345")
    findings = compare_stack("Production", "Data", base, new)
    assert actions(findings) == {("Instance", "replace")}
    assert report(findings, allowed=["Production/Data/Instance"])[1]


def test_an_instance_without_a_restore_source_is_replaced_as_before():
    findings = compare_stack(
        "Production", "Data", BASE, changed(lambda r: r["Instance"]["Properties"].update(Port="5433"))
    )
    assert actions(findings) == {("Instance", "replace")}
    assert report(findings, allowed=["Production/Data/Instance"])[1]
