"""Issue 15 templates: least-privilege backup roles, vault lock, the DR copy and vault, backup alerts."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from constructs.backup_alerts import PROTECTION_CHANGES
from stacks.disaster_recovery_stack import dr_vault_name


def _roles_with_policy(env, stack_id, policy_name):
    return [
        logical_id
        for logical_id, role in env.resources(stack_id, "AWS::IAM::Role").items()
        if policy_name in json.dumps(role["Properties"].get("ManagedPolicyArns", []))
    ]


def test_no_role_carries_the_restore_service_policy(env):
    for stack_id in env.raw:
        assert _roles_with_policy(env, stack_id, "AWSBackupServiceRolePolicyForRestores") == [], stack_id


def test_the_selection_role_can_back_up_and_nothing_else(env):
    (selection,) = env.resources("Data", "AWS::Backup::BackupSelection").values()
    role_id = selection["Properties"]["BackupSelection"]["IamRoleArn"]["Fn::GetAtt"][0]
    role = env.raw["Data"]["Resources"][role_id]["Properties"]
    assert json.dumps(role["ManagedPolicyArns"]).count("arn:") == 1
    assert "AWSBackupServiceRolePolicyForBackup" in json.dumps(role["ManagedPolicyArns"])
    assert "Policies" not in role


def test_the_primary_vault_is_locked_as_configured(env):
    recovery = env.config.recovery
    lock = {
        "MinRetentionDays": recovery.vault_lock_min_retention_days,
        "MaxRetentionDays": recovery.vault_lock_max_retention_days,
    }
    if recovery.vault_lock_mode == "compliance":
        lock["ChangeableForDays"] = recovery.vault_lock_changeable_for_days
    (vault,) = env.resources("Data", "AWS::Backup::BackupVault").values()
    # Governance mode is a lock without a grace period: the key must be absent, not null.
    assert vault["Properties"]["LockConfiguration"] == lock
    assert vault["Properties"]["AccessPolicy"]["Statement"][0]["Effect"] == "Deny"


def test_the_daily_snapshot_is_copied_to_the_dr_vault(env):
    config = env.config
    (plan,) = env.resources("Data", "AWS::Backup::BackupPlan").values()
    (rule,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["CopyActions"] == [
        {
            "DestinationBackupVaultArn": f"arn:aws:backup:{config.recovery.dr_region}:{config.account}:"
            f"backup-vault:{dr_vault_name(config)}",
            "Lifecycle": {"DeleteAfterDays": config.recovery.dr_copy_retention_days},
        }
    ]


def test_the_dr_stack_deploys_to_the_dr_region_before_the_data_stack(synthesized_app, env):
    config = env.config
    manifest = synthesized_app.stack_manifest(config.stage_id, "DisasterRecovery")
    assert manifest["environment"] == f"aws://{config.account}/{config.recovery.dr_region}"
    assert manifest["properties"]["terminationProtection"] is True
    data = synthesized_app.stack_manifest(config.stage_id, "Data")
    assert any("DisasterRecovery" in dependency for dependency in data.get("dependencies", []))


def test_the_dr_vault_is_named_encrypted_locked_and_retained(env):
    config = env.config
    template = env["DisasterRecovery"]
    (vault_id, vault) = next(iter(env.resources("DisasterRecovery", "AWS::Backup::BackupVault").items()))
    assert vault["DeletionPolicy"] == "Retain"
    props = vault["Properties"]
    assert props["BackupVaultName"] == dr_vault_name(config)
    assert props["LockConfiguration"]["MinRetentionDays"] == config.recovery.vault_lock_min_retention_days
    assert ("ChangeableForDays" in props["LockConfiguration"]) == (
        config.recovery.vault_lock_mode == "compliance"
    )
    (key_id,) = env.resources("DisasterRecovery", "AWS::KMS::Key")
    assert props["EncryptionKeyArn"] == {"Fn::GetAtt": [key_id, "Arn"]}
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": f"alias/revenuepilot/{config.name}/database-dr"}
    )
    statements = template.to_json()["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    via = next(s for s in statements if s.get("Sid") == "AccountPrincipalsUseKeyThroughServices")
    assert sorted(via["Condition"]["StringEquals"]["kms:ViaService"]) == [
        f"backup.{config.recovery.dr_region}.amazonaws.com",
        f"rds.{config.recovery.dr_region}.amazonaws.com",
        # The application secret's replica (decision 0010).
        f"secretsmanager.{config.recovery.dr_region}.amazonaws.com",
    ]
    assert vault_id


def test_backup_job_failures_reach_the_alert_topic(env):
    template = env["Recovery"]
    for detail_type, field, states in (
        ("Backup Job State Change", "state", ["FAILED", "ABORTED", "EXPIRED"]),
        ("Copy Job State Change", "state", ["FAILED", "ABORTED"]),
        ("Restore Job State Change", "status", ["FAILED", "ABORTED"]),
    ):
        template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "EventPattern": {
                    "source": ["aws.backup"],
                    "detail-type": [detail_type],
                    "detail": {field: states},
                },
                "State": "ENABLED",
                "Targets": [Match.object_like({"Arn": Match.any_value()})],
            },
        )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": Match.object_like({"detail": {"validationStatus": ["FAILED", "TIMED_OUT"]}})},
    )


def test_changes_to_backup_protection_reach_the_alert_topic(env):
    rules = env.resources("Recovery", "AWS::Events::Rule").values()
    (rule,) = [r for r in rules if "eventSource" in json.dumps(r["Properties"].get("EventPattern", {}))]
    names = rule["Properties"]["EventPattern"]["detail"]["eventName"]
    for name in (
        "UpdateBackupPlan",
        "DeleteBackupPlan",
        "PutBackupVaultAccessPolicy",
        "DeleteBackupVaultAccessPolicy",
        "PutBackupVaultLockConfiguration",
        "DeleteBackupVaultLockConfiguration",
    ):
        assert name in names
    assert names == list(PROTECTION_CHANGES)
    topic_output = json.dumps(rule["Properties"]["Targets"])
    assert "Monitoring" in topic_output or "Alerts" in topic_output


def test_the_restore_testing_plan_tests_the_latest_snapshot_on_schedule(env):
    recovery = env.config.recovery
    (vault_id,) = env.resources("Data", "AWS::Backup::BackupVault")
    env["Recovery"].has_resource_properties(
        "AWS::Backup::RestoreTestingPlan",
        {
            "RestoreTestingPlanName": f"revenuepilot_{env.config.name}_restore_test",
            "ScheduleExpression": recovery.restore_test_schedule,
            "ScheduleExpressionTimezone": "Etc/UTC",
            "StartWindowHours": recovery.restore_test_start_window_hours,
            "RecoveryPointSelection": {
                "Algorithm": "LATEST_WITHIN_WINDOW",
                "IncludeVaults": [Match.any_value()],
                "RecoveryPointTypes": ["SNAPSHOT"],
                "SelectionWindowDays": 7,
            },
        },
    )
    (plan,) = env.resources("Recovery", "AWS::Backup::RestoreTestingPlan").values()
    assert vault_id in json.dumps(plan["Properties"]["RecoveryPointSelection"]["IncludeVaults"])


def test_the_restore_lands_in_the_database_network_small_private_and_single_az(env):
    recovery = env.config.recovery
    (selection,) = env.resources("Recovery", "AWS::Backup::RestoreTestingSelection").values()
    props = selection["Properties"]
    assert props["ProtectedResourceType"] == "RDS"
    assert "DatabaseInstance" in json.dumps(props["ProtectedResourceArns"])
    assert props["ValidationWindowHours"] == recovery.restore_test_validation_window_hours
    overrides = props["RestoreMetadataOverrides"]
    assert overrides["dbInstanceClass"] == f"db.{recovery.restore_test_instance_class}"
    assert overrides["multiAZ"] == "false"
    assert overrides["publiclyAccessible"] == "false"
    assert "DatabaseSubnetGroup" in json.dumps(overrides["dbSubnetGroupName"])
    assert "DatabaseSecurityGroup" in json.dumps(overrides["vpcSecurityGroupIds"])


def test_the_restore_role_restores_but_never_deletes(env):
    (selection,) = env.resources("Recovery", "AWS::Backup::RestoreTestingSelection").values()
    role_id = selection["Properties"]["IamRoleArn"]["Fn::GetAtt"][0]
    role = env.raw["Recovery"]["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "backup.amazonaws.com"
    }
    (policy_ref,) = role["ManagedPolicyArns"]
    policy = env.raw["Recovery"]["Resources"][policy_ref["Ref"]]["Properties"]["PolicyDocument"]
    actions = {
        a
        for s in policy["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "rds:RestoreDBInstanceFromDBSnapshot" in actions
    assert not any("Delete" in action or action.endswith("*") for action in actions), actions


def test_the_validation_function_runs_in_the_vpc_on_restore_completion_and_daily(env):
    template = env["Recovery"]
    functions = env.resources("Recovery", "AWS::Lambda::Function")
    (function_id, function) = next(
        (k, f)
        for k, f in functions.items()
        if f["Properties"].get("Handler", "").startswith("lambdas.restore_validation")
    )
    props = function["Properties"]
    assert props["VpcConfig"]["SubnetIds"]
    variables = props["Environment"]["Variables"]
    assert json.loads(variables["EXPECTED_ROLES"]) == list(env.config.recovery.expected_roles)
    assert [tuple(q) for q in json.loads(variables["VALIDATION_QUERIES"])] == list(
        env.config.migration.validation_queries
    )
    assert "MasterSecretArn" not in variables and "PASSWORD" not in json.dumps(variables).upper()
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.backup"],
                "detail-type": ["Restore Job State Change"],
                "detail": {"status": ["COMPLETED"], "resourceType": ["RDS"]},
            },
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [function_id, "Arn"]}})],
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 12 * * ? *)",
            "Targets": [
                Match.object_like({"Input": json.dumps({"check": "freshness"}, separators=(",", ":"))})
            ],
        },
    )


def test_the_evidence_log_group_is_encrypted_and_kept_like_the_audit_logs(env):
    groups = env.resources("Recovery", "AWS::Logs::LogGroup").values()
    (group,) = groups
    assert group["Properties"]["RetentionInDays"] == env.config.database.log_retention_days
    assert "KmsKeyId" in group["Properties"]
    assert group["DeletionPolicy"] == "Retain"


def test_failed_or_missing_restore_tests_raise_alarms(env):
    template = env["Recovery"]
    days = env.config.recovery.restore_test_max_interval_days
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "RevenuePilot/Recovery",
            "MetricName": "SecondsSinceLastSuccessfulRestoreTest",
            "Threshold": days * 86_400,
            "Period": 86_400,
            "TreatMissingData": "breaching",
            "AlarmActions": [Match.any_value()],
            "OKActions": [Match.any_value()],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "RevenuePilot/Recovery",
            "MetricName": "RestoreTestFailed",
            "Threshold": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [Match.any_value()],
        },
    )
