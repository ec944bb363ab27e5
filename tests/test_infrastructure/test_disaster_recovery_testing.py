"""Restore tests of the DR copies (issue 15, item 2; decision 0010): `<Stage>-DisasterRecoveryTesting`.

Production tests its DR copies (quarterly); staging does not (`recovery.dr_restore_test_schedule` None),
so its stage has no such stack. Both replicate the application secret to the DR region.

What these templates cannot prove (only an account can): that AWS Backup's restore testing selects the
cross-Region copies in the DR vault with ProtectedResourceArns ["*"] and IncludeVaults [the DR vault]; that
a copy restores with the DR vault's key and a default parameter group in the DR region; that Secrets
Manager propagates each rotation of the primary application secret to the replica (its documentation says
so); the interface endpoints' DNS and the restore role's sufficiency.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template
from moto.events.models import EventPattern

from config.environments import PRODUCTION, STAGING
from contract.names import LOGIN_ROLE_ENV_VAR, LOGIN_SECRET_ID_ENV_VAR, MASTER_SECRET_ARN_ENV_VAR
from stacks.disaster_recovery_stack import dr_key_alias

STACK = "DisasterRecoveryTesting"


@pytest.fixture(scope="module")
def dr_testing(synthesized_app) -> dict[str, Any]:
    return synthesized_app.template_json(PRODUCTION.stage_id, STACK)


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def _validation_function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (item,) = [
        (k, f)
        for k, f in _resources(template, "AWS::Lambda::Function").items()
        if f["Properties"].get("Handler", "").startswith("lambdas.restore_validation")
    ]
    return item


def test_only_environments_with_a_dr_schedule_get_the_stack_in_the_dr_region(synthesized_app):
    assert STAGING.recovery.dr_restore_test_schedule is None
    with pytest.raises(KeyError):
        synthesized_app.stack_manifest(STAGING.stage_id, STACK)
    manifest = synthesized_app.stack_manifest(PRODUCTION.stage_id, STACK)
    assert manifest["environment"] == f"aws://{PRODUCTION.account}/{PRODUCTION.recovery.dr_region}"
    assert not manifest["properties"].get("terminationProtection")
    dependencies = " ".join(manifest.get("dependencies", []))
    assert "DisasterRecovery" in dependencies and "Data" in dependencies


def test_the_dr_network_is_isolated_in_two_zones_with_flow_logs(dr_testing):
    template = Template.from_json(dr_testing)
    for absent in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP"):
        template.resource_count_is(absent, 0)
    routes = _resources(dr_testing, "AWS::EC2::Route")
    assert all("DestinationCidrBlock" not in r["Properties"] for r in routes.values()), routes
    subnets = _resources(dr_testing, "AWS::EC2::Subnet").values()
    assert len(subnets) == 4
    assert {s["Properties"]["AvailabilityZone"] for s in subnets} == set(
        PRODUCTION.recovery.dr_availability_zones or ()
    )
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets)
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": PRODUCTION.recovery.dr_network_cidr})
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )


def test_the_validation_function_reaches_only_the_endpoints_it_calls(dr_testing):
    endpoints = _resources(dr_testing, "AWS::EC2::VPCEndpoint").values()
    services = sorted(
        json.dumps(e["Properties"]["ServiceName"]).split(".")[-1].strip('"]}') for e in endpoints
    )
    assert services == ["backup", "monitoring", "rds", "secretsmanager"], services
    assert all(e["Properties"]["PrivateDnsEnabled"] is True for e in endpoints)
    groups = _resources(dr_testing, "AWS::EC2::SecurityGroup")
    (endpoint_group,) = [
        g for g in groups.values() if "HTTPS from inside the VPC only" in g["Properties"]["GroupDescription"]
    ]
    (ingress,) = endpoint_group["Properties"]["SecurityGroupIngress"]
    assert (ingress["CidrIp"], ingress["FromPort"], ingress["ToPort"]) == (
        PRODUCTION.recovery.dr_network_cidr,
        443,
        443,
    )


def test_copies_of_the_dr_vault_are_restored_small_private_single_az_into_the_dr_network(dr_testing):
    recovery = PRODUCTION.recovery
    (plan,) = _resources(dr_testing, "AWS::Backup::RestoreTestingPlan").values()
    props = plan["Properties"]
    assert props["RestoreTestingPlanName"] == "revenuepilot_production_dr_restore_test"
    assert props["ScheduleExpression"] == recovery.dr_restore_test_schedule
    selection = props["RecoveryPointSelection"]
    # Only the DR vault (the DR stack's output, same region): its copies are all the plan can pick.
    (vault,) = selection["IncludeVaults"]
    assert "Fn::GetStackOutput" in json.dumps(vault) and "DisasterRecoveryVault" in json.dumps(vault)
    assert selection["RecoveryPointTypes"] == ["SNAPSHOT"]
    (selection_resource,) = _resources(dr_testing, "AWS::Backup::RestoreTestingSelection").values()
    chosen = selection_resource["Properties"]
    assert chosen["ProtectedResourceArns"] == ["*"]
    assert chosen["ProtectedResourceType"] == "RDS"
    overrides = chosen["RestoreMetadataOverrides"]
    subnet_group_id = overrides["dbSubnetGroupName"]["Ref"]
    assert dr_testing["Resources"][subnet_group_id]["Type"] == "AWS::RDS::DBSubnetGroup"
    assert "RestoredInstanceSecurityGroup" in json.dumps(overrides["vpcSecurityGroupIds"])
    assert overrides["dbInstanceClass"] == f"db.{recovery.dr_restore_test_instance_class}"
    assert (overrides["multiAZ"], overrides["publiclyAccessible"]) == ("false", "false")


def test_restored_instances_admit_only_the_validation_function(dr_testing):
    ingress = _resources(dr_testing, "AWS::EC2::SecurityGroupIngress").values()
    into_restored = [
        r for r in ingress if "RestoredInstanceSecurityGroup" in json.dumps(r["Properties"]["GroupId"])
    ]
    (rule,) = into_restored
    assert (rule["Properties"]["FromPort"], rule["Properties"]["ToPort"]) == (5432, 5432)
    assert "Validation" in json.dumps(rule["Properties"]["SourceSecurityGroupId"])


def test_the_dr_validation_logs_in_as_migration_with_the_replicated_application_secret(dr_testing):
    function_id, function = _validation_function(dr_testing)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables[LOGIN_SECRET_ID_ENV_VAR] == PRODUCTION.database.application_secret_name
    assert variables[LOGIN_ROLE_ENV_VAR] == "migration"
    assert MASTER_SECRET_ARN_ENV_VAR not in variables
    assert "PASSWORD" not in json.dumps(variables).upper()
    assert function["Properties"]["VpcConfig"]["SubnetIds"]
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in _resources(dr_testing, "AWS::IAM::ManagedPolicy").values()
        if "secretsmanager:GetSecretValue" in json.dumps(p["Properties"]["PolicyDocument"])
    ]
    (statements,) = policies
    read = next(s for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"]))
    region, account = PRODUCTION.recovery.dr_region, PRODUCTION.account
    assert read["Resource"] == (
        f"arn:aws:secretsmanager:{region}:{account}:secret:{PRODUCTION.database.application_secret_name}-??????"
    )
    decrypt = next(s for s in statements if s["Action"] == "kms:Decrypt")
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
    }
    assert "DisasterRecoveryVaultKey" in json.dumps(decrypt["Resource"])  # the DR vault's key
    assert function_id


def test_missing_or_failed_dr_restore_tests_alarm_to_a_topic_in_the_dr_region(dr_testing):
    template = Template.from_json(dr_testing)
    days = PRODUCTION.recovery.dr_restore_test_max_interval_days
    (topic_id,) = _resources(dr_testing, "AWS::SNS::Topic")
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "RevenuePilot/Recovery",
            "MetricName": "SecondsSinceLastSuccessfulRestoreTest",
            "Threshold": days * 86_400,
            "TreatMissingData": "breaching",
            "AlarmActions": [{"Ref": topic_id}],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "RestoreTestFailed", "AlarmActions": [{"Ref": topic_id}]},
    )
    for address in PRODUCTION.alerting.email_addresses:
        template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": address})
    assert "KmsMasterKeyId" in dr_testing["Resources"][topic_id]["Properties"]


def test_the_dr_evidence_is_encrypted_and_kept_like_the_audit_logs(dr_testing):
    groups = _resources(dr_testing, "AWS::Logs::LogGroup").values()
    assert len(groups) == 2  # the validation function's evidence, the flow logs
    for group in groups:
        assert group["Properties"]["RetentionInDays"] == PRODUCTION.database.log_retention_days
        assert "KmsKeyId" in group["Properties"]
        assert group["DeletionPolicy"] == "Retain"


def test_the_application_secret_is_replicated_to_the_dr_region_under_the_dr_key(env):
    config = env.config
    secrets = env.resources("Data", "AWS::SecretsManager::Secret").values()
    (secret,) = [s for s in secrets if s["Properties"].get("Name") == config.database.application_secret_name]
    assert secret["Properties"]["ReplicaRegions"] == [
        {"Region": config.recovery.dr_region, "KmsKeyId": dr_key_alias(config)}
    ]
    # The DR key lets Secrets Manager (in its region) keep the replica.
    (key,) = env.resources("DisasterRecovery", "AWS::KMS::Key").values()
    via = next(
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AccountPrincipalsUseKeyThroughServices"
    )
    assert (
        f"secretsmanager.{config.recovery.dr_region}.amazonaws.com"
        in via["Condition"]["StringEquals"]["kms:ViaService"]
    )


def _backup_event(detail_type: str, detail: dict[str, Any]) -> Any:  # moto types it EventMessageType
    return {
        "version": "0",
        "source": "aws.backup",
        "detail-type": detail_type,
        "account": PRODUCTION.account,
        "region": PRODUCTION.recovery.dr_region,
        "detail": detail,
    }


_RESTORE = "Restore Job State Change"
_CLOUDTRAIL = "AWS API Call via CloudTrail"
# DR-region rule (construct id) -> (events that must alert, events that must not). EventBridge rules are
# regional: without these, a DR restore test that fails reaches nobody (the Recovery stack's rules are in
# the primary region).
DR_BACKUP_ALERT_CASES: dict[str, tuple[list[Any], list[Any]]] = {
    "RestoreJobFailures": (
        [
            _backup_event(_RESTORE, {"status": "FAILED", "resourceType": "RDS"}),
            _backup_event(_RESTORE, {"status": "ABORTED", "resourceType": "RDS"}),
        ],
        [
            _backup_event(_RESTORE, {"status": "COMPLETED", "resourceType": "RDS"}),
            _backup_event("Copy Job State Change", {"status": "FAILED"}),
        ],
    ),
    "RestoreTestValidationFailures": (
        [
            _backup_event(_RESTORE, {"status": "COMPLETED", "validationStatus": "FAILED"}),
            _backup_event(_RESTORE, {"status": "COMPLETED", "validationStatus": "TIMED_OUT"}),
        ],
        [_backup_event(_RESTORE, {"status": "COMPLETED", "validationStatus": "SUCCESSFUL"})],
    ),
    "BackupProtectionChanges": (
        [
            _backup_event(_CLOUDTRAIL, {"eventSource": "backup.amazonaws.com", "eventName": name})
            for name in (
                "DeleteRecoveryPoint",
                "DeleteBackupVaultLockConfiguration",
                "UpdateRestoreTestingPlan",
                "DeleteRestoreTestingSelection",
            )
        ],
        [
            _backup_event(
                _CLOUDTRAIL, {"eventSource": "backup.amazonaws.com", "eventName": "ListRecoveryPoints"}
            ),
            _backup_event(
                _CLOUDTRAIL, {"eventSource": "backup.amazonaws.com", "eventName": "StartRestoreJob"}
            ),
        ],
    ),
}


@pytest.mark.parametrize("rule_id", sorted(DR_BACKUP_ALERT_CASES))
def test_dr_restore_failures_and_dr_vault_changes_alert_the_dr_topic(dr_testing, rule_id):
    (topic_id,) = _resources(dr_testing, "AWS::SNS::Topic")
    rules = [
        r["Properties"]
        for logical_id, r in _resources(dr_testing, "AWS::Events::Rule").items()
        if logical_id[:-8] == f"BackupAlerts{rule_id}"
    ]
    assert len(rules) == 1, sorted(_resources(dr_testing, "AWS::Events::Rule"))
    (rule,) = rules
    assert rule["State"] == "ENABLED"
    assert rule["Targets"] == [{"Arn": {"Ref": topic_id}, "Id": "Target0"}]
    matcher = EventPattern.load(json.dumps(rule["EventPattern"]))
    positives, negatives = DR_BACKUP_ALERT_CASES[rule_id]
    for event in positives:
        assert matcher.matches_event(event), event
    for event in negatives:
        assert not matcher.matches_event(event), event


def test_the_dr_restore_role_uses_the_dr_key_only_through_rds_in_the_dr_region(dr_testing):
    """The copies in the DR vault are under the DR vault's key (KMS keys are regional): a restore role naming
    the primary key, or RDS in the primary region, would fail every DR restore test."""
    (role,) = [
        r["Properties"]
        for r in _resources(dr_testing, "AWS::IAM::Role").values()
        if "backup.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    (policy_ref,) = role["ManagedPolicyArns"]
    policy = dr_testing["Resources"][policy_ref["Ref"]]["Properties"]
    statements = policy["PolicyDocument"]["Statement"]
    (use,) = [s for s in statements if "kms:Decrypt" in json.dumps(s["Action"])]
    assert use["Condition"] == {
        "StringEquals": {"kms:ViaService": f"rds.{PRODUCTION.recovery.dr_region}.amazonaws.com"}
    }
    for statement in [s for s in statements if json.dumps(s["Action"]).count("kms:")]:
        assert "DisasterRecoveryVaultKey" in json.dumps(statement["Resource"]), (
            statement
        )  # the DR vault's key
        assert "LogKey" not in json.dumps(statement["Resource"]), statement
