"""Stack layout: stable names, termination protection, pinned logical ids of stateful resources."""

from __future__ import annotations

import pytest

# Renaming a construct id changes these, and CloudFormation then REPLACES the resource: a new,
# empty database or a new key. If a refactor trips this test, restore the ids; don't update them.
PINNED_STATEFUL_LOGICAL_IDS = {
    "Data": {
        "DatabaseKey7998E78F": "AWS::KMS::Key",
        "DatabaseParameterGroup2A921026": "AWS::RDS::DBParameterGroup",
        "DatabaseSubnetGroup7D60F180": "AWS::RDS::DBSubnetGroup",
        "DatabasePostgresqlLogsLogGroup4C47DBB8": "AWS::Logs::LogGroup",
        "DatabaseUpgradeLogsLogGroupC520E1F1": "AWS::Logs::LogGroup",
        "DatabaseInstanceAA8A5FDE": "AWS::RDS::DBInstance",
        "DailySnapshotVault30DFD8F3": "AWS::Backup::BackupVault",
        # The migration evidence (Object Lock: a replaced bucket could not take the old records along).
        "MigrationEvidenceBucket5005091C": "AWS::S3::Bucket",
        "MigrationEvidenceAccessLogs174BA186": "AWS::S3::Bucket",
    },
    "Network": {
        "FlowLogKey162F5411": "AWS::KMS::Key",
        "NetworkVpc7FB7348F": "AWS::EC2::VPC",
    },
}
# The CloudFormation-owned master secret before RDS managed the master password (decision 0008). Its
# removal from the template orphans it (DeletionPolicy Retain) on the switch-over deploy; it must never
# come back under these ids, or CloudFormation would "create" a secret that still exists.
RETIRED_MASTER_SECRET_LOGICAL_IDS = {
    "staging": "StagingDataDatabaseInstanceSecret581AA06781393b1af1ad9f15943eb2d308d1fba5",
    "production": "ProductionDataDatabaseInstanceSecretD441023E81393b1af1ad9f15943eb2d308d1fba5",
}


@pytest.mark.parametrize("stack_id", sorted(PINNED_STATEFUL_LOGICAL_IDS))
def test_stateful_logical_ids_are_pinned(env, stack_id):
    resources = env.raw[stack_id]["Resources"]
    for logical_id, resource_type in PINNED_STATEFUL_LOGICAL_IDS[stack_id].items():
        assert logical_id in resources, f"{stack_id}: {logical_id} would be replaced"
        assert resources[logical_id]["Type"] == resource_type


def test_retired_master_secret_is_not_in_the_template_and_rds_manages_the_password(env):
    resources = env.raw["Data"]["Resources"]
    assert RETIRED_MASTER_SECRET_LOGICAL_IDS[env.config.name] not in resources
    assert resources["DatabaseInstanceAA8A5FDE"]["Properties"]["ManageMasterUserPassword"] is True


@pytest.mark.parametrize(
    ("stack_id", "protected"), [("Network", True), ("Data", True), ("ApplicationAccess", False)]
)
def test_stateful_stacks_have_termination_protection(synthesized_app, env, stack_id, protected):
    manifest = synthesized_app.stack_manifest(env.config.stage_id, stack_id)
    assert manifest["properties"].get("terminationProtection", False) is protected
    assert manifest["properties"]["stackName"] == f"{env.config.stage_id}-{stack_id}"


def test_stacks_deploy_to_the_configured_account_and_region(synthesized_app, env):
    manifest = synthesized_app.stack_manifest(env.config.stage_id, "Data")
    assert manifest["environment"] == f"aws://{env.config.account}/{env.config.region}"


def test_no_stateful_resource_can_be_deleted_with_its_stack(env):
    stateful = {
        "AWS::KMS::Key",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBSubnetGroup",
        "AWS::RDS::DBParameterGroup",
        "AWS::Logs::LogGroup",
        "AWS::SecretsManager::Secret",
        "AWS::Backup::BackupVault",
        "AWS::S3::Bucket",
    }
    for stack_id, template in env.raw.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] in stateful:
                assert resource.get("DeletionPolicy") in ("Retain", "Snapshot"), f"{stack_id}/{logical_id}"


def test_every_log_group_is_encrypted_retained_and_kept_six_years_in_production(env):
    minimum = 2192 if env.config.name == "production" else 365
    groups = [
        (stack_id, logical_id, resource)
        for stack_id, template in env.raw.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Logs::LogGroup"
    ]
    assert len(groups) >= 8
    for stack_id, logical_id, resource in groups:
        props = resource["Properties"]
        assert props["RetentionInDays"] >= minimum, f"{stack_id}/{logical_id}"
        assert "KmsKeyId" in props, f"{stack_id}/{logical_id}"
        assert resource["DeletionPolicy"] == "Retain", f"{stack_id}/{logical_id}"
