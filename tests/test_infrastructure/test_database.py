"""The ops guide's provisioning requirements, asserted on both environments' Data stacks."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Match

from config.validation import daily_window_minutes, weekly_window_minutes, windows_overlap
from constructs.database import LOG_EXPORTS

# Requirements (ops guide, README "What gets deployed"), not values read back from the config:
BACKUP_RETENTION_DAYS = 14  # ops guide: at least 7, 14 preferred
ENHANCED_MONITORING_SECONDS = {"staging": 5, "production": 1}  # ops guide: 1-5 s granularity
SLOW_STATEMENT_MS = 500
IDLE_SESSION_TIMEOUT_MS = 3_600_000  # README: application pools recycle before this (3600 s)
ENGINE_MAJOR_VERSION = "17"  # the engine version production runs
LOG_RETENTION_DAYS = {"staging": 365, "production": 2192}  # HIPAA: >= 1 year; production 6 years
MASTER_ROTATION = "rate(7 days)"  # decision 0008: RDS's default for the managed master secret


def _instance(env):
    (instance,) = env.resources("Data", "AWS::RDS::DBInstance").values()
    return instance


def _key_ref(env):
    (logical_id,) = env.resources("Data", "AWS::KMS::Key")
    return logical_id


def test_customer_managed_key_rotates_and_is_retained(env):
    env["Data"].has_resource(
        "AWS::KMS::Key",
        {
            "Properties": {"EnableKeyRotation": True},
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )
    env["Data"].has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": f"alias/revenuepilot/{env.config.name}/database"}
    )


def test_key_policy_lets_rds_logs_and_alarm_publishers_use_the_key_in_this_account_only(env):
    (key,) = env.resources("Data", "AWS::KMS::Key").values()
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Sid" in s}
    assert set(statements) == {
        "AccountAdministersKeyThroughIam",
        "DenyGrantsExceptForAwsServices",
        "AccountPrincipalsUseKeyThroughServices",
        "CloudWatchLogsEncryptsAccountLogGroups",
        "ServicesPublishToEncryptedTopics",
        # Production only: staging copies production snapshots (ops refresh-staging).
        *(["OtherAccountsCopySharedSnapshotsThroughRds"] if env.config.name == "production" else []),
    }
    deny_grants = statements["DenyGrantsExceptForAwsServices"]
    assert (deny_grants["Effect"], deny_grants["Action"], deny_grants["Principal"]) == (
        "Deny",
        "kms:CreateGrant",
        {"AWS": "*"},
    )
    assert deny_grants["Condition"] == {
        "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
    }
    via = statements["AccountPrincipalsUseKeyThroughServices"]["Condition"]["StringEquals"]
    assert via["kms:CallerAccount"] == env.config.account
    assert f"rds.{env.config.region}.amazonaws.com" in via["kms:ViaService"]
    assert f"secretsmanager.{env.config.region}.amazonaws.com" in via["kms:ViaService"]
    logs = statements["CloudWatchLogsEncryptsAccountLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{env.config.region}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].endswith(
        f"{env.config.account}:log-group:*"
    )
    # CDK adds one unnamed statement: Secrets Manager may use the key for the secrets it encrypts.
    unnamed = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Sid" not in s]
    assert [s["Condition"]["StringEquals"]["kms:ViaService"] for s in unnamed] == [
        f"secretsmanager.{env.config.region}.amazonaws.com"
    ]
    publishers = statements["ServicesPublishToEncryptedTopics"]
    assert sorted(publishers["Principal"]["Service"]) == [
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
        "events.rds.amazonaws.com",
    ]
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": env.config.account}}


def test_instance_is_multi_az_encrypted_private_postgres_on_the_configured_version(env):
    db = env.config.database
    env["Data"].has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "EngineVersion": db.engine_version,
            "DBInstanceIdentifier": db.instance_identifier,
            "DBInstanceClass": f"db.{db.instance_class}",
            "MultiAZ": True,
            "StorageEncrypted": True,
            "KmsKeyId": {"Fn::GetAtt": [_key_ref(env), "Arn"]},
            "PubliclyAccessible": False,
            "Port": "5432",
            "CACertificateIdentifier": "rds-ca-rsa2048-g1",
            "EnableIAMDatabaseAuthentication": True,
            "StorageType": "gp3",
            "AllocatedStorage": str(db.allocated_storage_gib),
            "MaxAllocatedStorage": db.max_allocated_storage_gib,
            "AutoMinorVersionUpgrade": True,
            "DBName": db.database_name,
        },
    )
    assert _instance(env)["Properties"]["EngineVersion"] == ENGINE_MAJOR_VERSION


def test_the_template_owns_the_major_version_and_aws_the_minor(env):
    """Why an auto-upgraded instance does not make the next deploy fail.

    The template states "17" and never a minor. RDS applies minor upgrades in the maintenance window
    (AutoMinorVersionUpgrade); the template's EngineVersion does not change with them, so a later deploy
    that updates the instance sends no EngineVersion, and CloudFormation never asks RDS for a downgrade.
    Even when EngineVersion is sent (e.g. the first deploy of this change, from "17.9"), ModifyDBInstance
    with a major version only "updates the DB instance to the default minor version if the current minor
    version is lower" and otherwise leaves it: never a downgrade. AllowMajorVersionUpgrade stays off, so
    a major change can only come from an explicit engine_version change (staging first, see config).
    """
    properties = _instance(env)["Properties"]
    assert properties["EngineVersion"].isdigit(), "a minor pinned in the template drifts behind the instance"
    assert properties["AutoMinorVersionUpgrade"] is True
    assert properties.get("AllowMajorVersionUpgrade") in (None, False)


def test_lifecycle_support_and_database_insights_are_explicit(env):
    properties = _instance(env)["Properties"]
    expected = {
        "staging": ("open-source-rds-extended-support-disabled", "standard", 7),
        "production": ("open-source-rds-extended-support", "advanced", 465),
    }[env.config.name]
    assert (
        properties["EngineLifecycleSupport"],
        properties["DatabaseInsightsMode"],
        properties["PerformanceInsightsRetentionPeriod"],
    ) == expected
    assert properties["EnablePerformanceInsights"] is True
    assert properties["PerformanceInsightsKMSKeyId"] == {"Fn::GetAtt": [_key_ref(env), "Arn"]}


def test_instance_is_protected_from_deletion_and_snapshotted_on_removal(env):
    instance = _instance(env)
    assert instance["Properties"]["DeletionProtection"] is True
    assert instance["DeletionPolicy"] == "Snapshot"
    assert instance["UpdateReplacePolicy"] == "Snapshot"
    assert instance["Properties"]["DeleteAutomatedBackups"] is False


def test_automated_backups_keep_at_least_seven_days_with_tags_and_a_window_outside_maintenance(env):
    props = _instance(env)["Properties"]
    assert props["BackupRetentionPeriod"] == BACKUP_RETENTION_DAYS
    assert props["CopyTagsToSnapshot"] is True
    assert props["PreferredBackupWindow"] == env.config.database.backup_window
    assert props["PreferredMaintenanceWindow"] == env.config.database.maintenance_window
    # The windows as deployed (not as configured) do not overlap: a backup never meets a restart.
    backup = daily_window_minutes(props["PreferredBackupWindow"], "backup")
    maintenance = weekly_window_minutes(props["PreferredMaintenanceWindow"], "maintenance")
    assert not windows_overlap(backup, maintenance)


def test_staging_is_patched_before_production(environments):
    from config.validation import WEEKDAYS

    def day(env_name):
        return WEEKDAYS.index(environments[env_name].config.database.maintenance_window[:3])

    assert day("staging") < day("production")


def test_performance_insights_is_encrypted_with_the_cmk(env):
    env["Data"].has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "EnablePerformanceInsights": True,
            "PerformanceInsightsKMSKeyId": {"Fn::GetAtt": [_key_ref(env), "Arn"]},
            "PerformanceInsightsRetentionPeriod": env.config.database.performance_insights_retention_days,
        },
    )


def test_enhanced_monitoring_samples_every_one_to_five_seconds(env):
    props = _instance(env)["Properties"]
    assert props["MonitoringInterval"] == ENHANCED_MONITORING_SECONDS[env.config.name]
    assert "MonitoringRoleArn" in props


def test_postgresql_and_upgrade_logs_are_exported_into_encrypted_retained_log_groups(env):
    db = env.config.database
    assert _instance(env)["Properties"]["EnableCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert "slowquery" not in LOG_EXPORTS  # RDS for PostgreSQL has no such export (that is MySQL)
    for export in LOG_EXPORTS:
        env["Data"].has_resource(
            "AWS::Logs::LogGroup",
            {
                "Properties": {
                    "LogGroupName": f"/aws/rds/instance/{db.instance_identifier}/{export}",
                    "RetentionInDays": LOG_RETENTION_DAYS[env.config.name],
                    "KmsKeyId": {"Fn::GetAtt": [_key_ref(env), "Arn"]},
                },
                "DeletionPolicy": "Retain",
            },
        )
    # The instance waits for its log groups, so RDS never creates them unencrypted without retention.
    depends_on = _instance(env)["DependsOn"]
    assert len([d for d in depends_on if "LogsLogGroup" in d]) == len(LOG_EXPORTS)


def test_parameter_group_enforces_tls_and_keeps_phi_and_passwords_out_of_logs(env):
    env["Data"].has_resource(
        "AWS::RDS::DBParameterGroup",
        {
            "Properties": {
                "Family": f"postgres{ENGINE_MAJOR_VERSION}",
                "Parameters": Match.object_like(
                    {
                        "rds.force_ssl": "1",
                        "ssl_min_protocol_version": "TLSv1.2",
                        "password_encryption": "scram-sha-256",
                        "log_min_duration_statement": str(SLOW_STATEMENT_MS),
                        "log_statement": "ddl",
                        "log_parameter_max_length": "0",
                        "log_parameter_max_length_on_error": "0",
                        "log_min_error_statement": "panic",
                        "idle_session_timeout": str(IDLE_SESSION_TIMEOUT_MS),
                    }
                ),
            },
            "DeletionPolicy": "Retain",
        },
    )
    (group_id,) = env.resources("Data", "AWS::RDS::DBParameterGroup")
    assert _instance(env)["Properties"]["DBParameterGroupName"] == {"Ref": group_id}


def test_database_has_its_own_subnet_group_in_the_isolated_subnets(env):
    (group_id, group) = next(iter(env.resources("Data", "AWS::RDS::DBSubnetGroup").items()))
    assert group["DeletionPolicy"] == "Retain"
    assert len(group["Properties"]["SubnetIds"]) == env.config.network.max_azs
    assert all("DatabaseSubnet" in str(subnet) for subnet in group["Properties"]["SubnetIds"])
    assert _instance(env)["Properties"]["DBSubnetGroupName"] == {"Ref": group_id}


def test_master_password_is_managed_by_rds_under_the_cmk(env):
    props = _instance(env)["Properties"]
    assert props["MasterUsername"] == env.config.database.master_username != "postgres"
    assert props["ManageMasterUserPassword"] is True
    assert props["MasterUserSecret"] == {"KmsKeyId": {"Fn::GetAtt": [_key_ref(env), "Arn"]}}
    # No password of ours anywhere: not in the instance, not in a CloudFormation-owned secret.
    assert "MasterUserPassword" not in props
    generated = [
        logical_id
        for logical_id, secret in env.resources("Data", "AWS::SecretsManager::Secret").items()
        if "GenerateSecretString" in secret["Properties"]
    ]
    assert generated == []
    assert env.resources("Data", "AWS::SecretsManager::SecretTargetAttachment") == {}


def test_no_hosted_rotation_and_no_secrets_manager_transform_in_any_template(env):
    for stack_id, template in env.raw.items():
        assert "Transform" not in template, stack_id
        assert "HostedRotationLambda" not in json.dumps(template), stack_id
        assert "AWS::Serverless" not in json.dumps(template), stack_id
    # The one rotation schedule left is the application secret's, with our own function.
    (schedule,) = env.resources("Data", "AWS::SecretsManager::RotationSchedule").values()
    assert schedule["Properties"]["RotationLambdaARN"]["Fn::GetAtt"][0].startswith(
        "ApplicationCredentialsRotationFunction"
    )


def test_master_secret_rotation_schedule_comes_from_config(env):
    (resource,) = env.resources("Data", "Custom::MasterSecretRotationSchedule").values()
    for event in ("Create", "Update"):
        call = json.loads(_join_with_placeholders(resource["Properties"][event]))
        assert call["service"] == "SecretsManager" and call["action"] == "rotateSecret"
        assert call["parameters"] == {
            "SecretId": "<DatabaseInstanceAA8A5FDE.MasterUserSecret.SecretArn>",
            "RotationRules": {"ScheduleExpression": MASTER_ROTATION, "Duration": "2h"},
            # Never rotate during a deploy: only the schedule is set.
            "RotateImmediately": False,
        }
    assert "Delete" not in resource["Properties"]
    # Its role may set the schedule of the master secret and nothing else in Secrets Manager.
    (function_id, function) = next(
        (k, v)
        for k, v in env.resources("Data", "AWS::Lambda::Function").items()
        if k.startswith("AWS679f53fac")
    )
    assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": [function_id, "Arn"]}
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert role_id.startswith("MasterSecretRotationRole")
    (policy_ref,) = env.raw["Data"]["Resources"][role_id]["Properties"]["ManagedPolicyArns"]
    policy = env.raw["Data"]["Resources"][policy_ref["Ref"]]
    secrets_statements = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("secretsmanager:") for a in _as_list(s["Action"]))
    ]
    assert secrets_statements == [
        {
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:RotateSecret"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "MasterUserSecret.SecretArn"]},
        }
    ]
    # In the Operations subnets, HTTPS to the interface endpoints only, one execution at a time.
    props = function["Properties"]
    assert all("OperationsSubnet" in str(s) for s in props["VpcConfig"]["SubnetIds"])
    assert props["ReservedConcurrentExecutions"] == 1
    (group_ref,) = props["VpcConfig"]["SecurityGroupIds"]
    group = env.raw["Data"]["Resources"][group_ref["Fn::GetAtt"][0]]
    (egress,) = group["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert "EndpointsSecurityGroup" in json.dumps(egress["DestinationSecurityGroupId"])


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _join_with_placeholders(value):
    """An `Fn::Join` of strings and `Fn::GetAtt`s, with each GetAtt written as `<Id.Attribute>`."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(p if isinstance(p, str) else "<{}.{}>".format(*p["Fn::GetAtt"]) for p in parts)


def test_daily_snapshot_runs_outside_the_maintenance_window_into_an_encrypted_locked_vault(env):
    db = env.config.database
    hour, minute = (int(part) for part in db.daily_snapshot_start.split(":"))
    env["Data"].has_resource(
        "AWS::Backup::BackupVault",
        {
            "Properties": {"EncryptionKeyArn": {"Fn::GetAtt": [_key_ref(env), "Arn"]}},
            "DeletionPolicy": "Retain",
        },
    )
    env["Data"].has_resource_properties(
        "AWS::Backup::BackupPlan",
        {
            "BackupPlan": {
                "BackupPlanRule": [
                    Match.object_like(
                        {
                            "ScheduleExpression": f"cron({minute} {hour} * * ? *)",
                            "Lifecycle": {"DeleteAfterDays": db.daily_snapshot_retention_days},
                        }
                    )
                ],
                "BackupPlanName": Match.any_value(),
            }
        },
    )
    # As deployed: the snapshot's start window lies outside the maintenance and backup windows.
    (plan,) = env.resources("Data", "AWS::Backup::BackupPlan").values()
    (rule,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    cron = re.fullmatch(r"cron\((\d+) (\d+) \* \* \? \*\)", rule["ScheduleExpression"])
    assert cron, rule["ScheduleExpression"]
    start = int(cron[2]) * 60 + int(cron[1])
    end = start + rule["StartWindowMinutes"]
    snapshot_window = daily_window_minutes(
        f"{start // 60:02d}:{start % 60:02d}-{end // 60 % 24:02d}:{end % 60:02d}", ""
    )
    instance = _instance(env)["Properties"]
    assert not windows_overlap(
        snapshot_window, weekly_window_minutes(instance["PreferredMaintenanceWindow"], "")
    )
    backup_window = daily_window_minutes(instance["PreferredBackupWindow"], "")
    assert not (snapshot_window[0] < backup_window[1] and backup_window[0] < snapshot_window[1])
    (instance_id,) = env.resources("Data", "AWS::RDS::DBInstance")
    (selection,) = env.resources("Data", "AWS::Backup::BackupSelection").values()
    assert instance_id in str(selection["Properties"]["BackupSelection"]["Resources"])


def test_database_security_group_has_no_rules_of_its_own_and_no_egress(env):
    (group_id, group) = next(
        (logical_id, resource)
        for logical_id, resource in env.resources("Data", "AWS::EC2::SecurityGroup").items()
        if logical_id.startswith("DatabaseSecurityGroup")
    )
    assert "SecurityGroupIngress" not in group["Properties"]
    # CDK's marker for "no egress at all": a rule that matches no traffic.
    assert group["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "255.255.255.255/32",
            "Description": "Disallow all traffic",
            "FromPort": 252,
            "IpProtocol": "icmp",
            "ToPort": 86,
        }
    ]
    assert _instance(env)["Properties"]["VPCSecurityGroups"] == [{"Fn::GetAtt": [group_id, "GroupId"]}]


def test_every_rule_into_the_database_is_tcp_5432_from_a_security_group(env):
    rules = [
        rule
        for stack_id in env.raw
        for rule in env.resources(stack_id, "AWS::EC2::SecurityGroupIngress").values()
        if "DatabaseSecurityGroup" in str(rule["Properties"]["GroupId"])
    ]
    assert rules, "the application tier must be granted access"
    for rule in rules:
        props = rule["Properties"]
        assert (props["IpProtocol"], props["FromPort"], props["ToPort"]) == ("tcp", 5432, 5432)
        assert "SourceSecurityGroupId" in props
        assert not {"CidrIp", "CidrIpv6", "SourcePrefixListId"} & set(props)


def test_application_tier_is_granted_from_its_own_stack(env):
    env["ApplicationAccess"].has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 5432,
            "ToPort": 5432,
            "SourceSecurityGroupId": {
                "Fn::GetAtt": [Match.string_like_regexp("^ApplicationSecurityGroup"), "GroupId"]
            },
        },
    )
    env["ApplicationAccess"].has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "ecs-tasks.amazonaws.com"}})]}
            )
        },
    )


def test_outputs_give_endpoint_port_secret_and_security_group(env):
    outputs = env.raw["Data"]["Outputs"]
    for name in ("EndpointAddress", "EndpointPort", "MasterSecretArn", "DatabaseSecurityGroupId"):
        assert name in outputs
    # The README lists it: operators need the application secret's ARN (DATABASE_SECRET_ARN).
    assert outputs["ApplicationSecretArn"]["Value"] == {"Ref": "ApplicationCredentialsSecret71772FF2"}
    assert "Value" in outputs["EndpointAddress"]


def test_key_policy_lets_staging_copy_through_rds_only(env):
    (key,) = env.resources("Data", "AWS::KMS::Key").values()
    statements = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "OtherAccountsCopySharedSnapshotsThroughRds"
    ]
    if env.config.name == "staging":
        assert statements == [], "nobody copies staging's snapshots"
        return
    (statement,) = statements
    assert sorted(statement["Action"]) == ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"]
    assert "arn:" in str(statement["Principal"]["AWS"]) and "111111111111:root" in str(
        statement["Principal"]["AWS"]
    )
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "rds.us-east-1.amazonaws.com"}}
