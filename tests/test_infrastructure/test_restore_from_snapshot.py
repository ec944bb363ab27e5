"""Staging can be rebuilt from a production snapshot (ops guide: stage upgrades on a restored snapshot).

A small extra synth of the Staging stage alone, with the snapshot option set.
"""

from __future__ import annotations

import pytest

from config.environments import STAGING
from config.schema import PHI_LOG_RETENTION_DAYS
from tests.support.synth import modified, synthesize_app

SNAPSHOT = "arn:aws:rds:us-east-1:222222222222:snapshot:pre-upgrade-2026-11-20"


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
    # Restored from production, staging holds patient data: it keeps every log as long as production.
    config = modified(
        STAGING,
        database={"restore_from_snapshot_identifier": SNAPSHOT, "log_retention_days": PHI_LOG_RETENTION_DAYS},
        network={"flow_log_retention_days": PHI_LOG_RETENTION_DAYS},
        migration={"log_retention_days": PHI_LOG_RETENTION_DAYS},
    )
    return synthesize_app([config], tmp_path_factory.mktemp("restore"))


@pytest.fixture(scope="module")
def restored_data_template(restored):
    return restored.template_json("Staging", "Data")


def test_instance_is_restored_from_the_snapshot_with_the_same_safety_settings(restored_data_template):
    template = restored_data_template
    (instance,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::RDS::DBInstance"]
    props = instance["Properties"]
    assert props["DBSnapshotIdentifier"] == SNAPSHOT
    # The snapshot brings its database and its encryption (copied re-encrypted with this CMK first).
    assert not {"DBName", "StorageEncrypted", "KmsKeyId"} & set(props)
    for key, value in {
        "MultiAZ": True,
        "PubliclyAccessible": False,
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "DeletionProtection": True,
        "EnableCloudwatchLogsExports": ["postgresql", "upgrade"],
    }.items():
        assert props[key] == value, key
    assert instance["DeletionPolicy"] == "Snapshot"


def test_restored_instance_gets_a_new_rds_managed_master_secret_under_the_cmk(restored_data_template):
    template = restored_data_template
    (instance,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::RDS::DBInstance"]
    props = instance["Properties"]
    # RDS replaces the snapshot's master password with a managed one, in a new secret under our CMK.
    assert props["ManageMasterUserPassword"] is True
    assert props["MasterUserSecret"] == {"KmsKeyId": {"Fn::GetAtt": ["DatabaseKey7998E78F", "Arn"]}}
    assert "MasterUserPassword" not in props
    secrets = [r for r in template["Resources"].values() if r["Type"] == "AWS::SecretsManager::Secret"]
    assert [s for s in secrets if "GenerateSecretString" in s["Properties"]] == []


def test_restored_configuration_passes_the_compliance_gate(restored):
    assert restored.validation_error is None, restored.validation_error
    assert restored.findings() == []


def test_restored_staging_keeps_every_log_group_as_long_as_production(restored):
    for stack in ("Network", "Data", "Migration"):
        template = restored.template_json("Staging", stack)
        retentions = {
            logical_id: resource["Properties"].get("RetentionInDays")
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Logs::LogGroup"
        }
        assert retentions, stack
        assert all(days == PHI_LOG_RETENTION_DAYS for days in retentions.values()), (stack, retentions)
