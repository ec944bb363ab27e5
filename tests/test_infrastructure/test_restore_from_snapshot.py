"""Staging can be rebuilt from a production snapshot (ops guide: stage upgrades on a restored snapshot).

A small extra synth of the Staging stage alone, with the snapshot option set.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from config.environments import STAGING
from tests.conftest import app_context

SNAPSHOT = "arn:aws:rds:us-east-1:222222222222:snapshot:pre-upgrade-2026-11-20"


@pytest.fixture(scope="module")
def restored_data_template(tmp_path_factory):
    import aws_cdk as cdk

    from stacks.application import add_compliance_checks
    from stacks.environment_stage import DatabaseEnvironment

    config = dataclasses.replace(
        STAGING, database=dataclasses.replace(STAGING.database, restore_from_snapshot_identifier=SNAPSHOT)
    )
    outdir = tmp_path_factory.mktemp("restore")
    app = cdk.App(context=app_context(), outdir=str(outdir))
    stage = DatabaseEnvironment(app, "Staging", config=config)
    add_compliance_checks(app)
    try:
        app.synth()
        validation_error = None
    except RuntimeError as error:
        validation_error = str(error)
    stack = stage.data_stack
    template = json.loads((outdir / f"assembly-Staging/{stack.artifact_id}.template.json").read_text())
    report = json.loads((outdir / "validation-report.json").read_text())
    return template, (validation_error, report)


def test_instance_is_restored_from_the_snapshot_with_the_same_safety_settings(restored_data_template):
    template, _ = restored_data_template
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
    template, _ = restored_data_template
    (instance,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::RDS::DBInstance"]
    props = instance["Properties"]
    # RDS replaces the snapshot's master password with a managed one, in a new secret under our CMK.
    assert props["ManageMasterUserPassword"] is True
    assert props["MasterUserSecret"] == {"KmsKeyId": {"Fn::GetAtt": ["DatabaseKey7998E78F", "Arn"]}}
    assert "MasterUserPassword" not in props
    secrets = [r for r in template["Resources"].values() if r["Type"] == "AWS::SecretsManager::Secret"]
    assert [s for s in secrets if "GenerateSecretString" in s["Properties"]] == []


def test_restored_configuration_passes_the_compliance_gate(restored_data_template):
    _, (validation_error, report) = restored_data_template
    findings = [
        f"{v['ruleName']} at {c['constructPath']}"
        for r in report["pluginReports"]
        if r["conclusion"] != "success"
        for v in r.get("violations", [])
        for c in v["violatingConstructs"]
    ]
    assert validation_error is None and findings == []
