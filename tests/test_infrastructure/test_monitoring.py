"""Alerting and audit (issue 4): the Monitoring stack of both environments, its optional features
in one small extra synth. The alerting configuration rules are tests/test_config/test_alerting_config.py.

moto's CloudWatch Logs does not evaluate JSON filter patterns (it treats any pattern starting
with `{` as matching everything), so the CloudTrail filter patterns are pinned as exact strings.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from config.aws_limits import CLOUDWATCH_RETENTION_DAYS
from config.environments import PRODUCTION, STAGING
from config.schema import DatabaseAlarmThresholds, SlackChannelConfig

TOPIC = "AlertsTopicCF7C81C9"
KEY_ID_OUTPUT = "PublishOutputRefDatabaseKey7998E78F07142177"
KEY_ARN_OUTPUT = "PublishOutputFnGetAttDatabaseKey7998E78FArnA3520947"
INSTANCE_OUTPUT = "PublishOutputRefDatabaseInstanceAA8A5FDE96074C11"
PARAMETER_GROUP_OUTPUT = "PublishOutputRefDatabaseParameterGroup2A9210268AF3E880"
# The RDS-managed master secret (`MasterUserSecret.SecretArn`), exported by the Data stack.
SECRET_ARN_OUTPUT = "PublishOutputFnGetAttDatabaseInstanceAA8A5FDEMasterUserSecretSecretArnC6E752AD"

DATABASE_ALARMS = {
    "CpuUtilization": ("CPUUtilization", "GreaterThanThreshold"),
    "FreeableMemory": ("FreeableMemory", "LessThanThreshold"),
    "DatabaseConnections": ("DatabaseConnections", "GreaterThanThreshold"),
    "ReadLatency": ("ReadLatency", "GreaterThanThreshold"),
    "WriteLatency": ("WriteLatency", "GreaterThanThreshold"),
    "DiskQueueDepth": ("DiskQueueDepth", "GreaterThanThreshold"),
    "SwapUsage": ("SwapUsage", "GreaterThanThreshold"),
}
CREDENTIALS_CHECK_ALARMS = ("CredentialsCheckFailed", "CredentialsCheckNotRunning")
AUDIT_RULES = (
    "ParameterGroupChanges",
    "SnapshotSharing",
    "RdsDeletions",
    "DatabaseKeyTampering",
    "DatabaseSecretTampering",
    # Issue 16 (tests/test_infrastructure/test_audit_evidence_alerts.py)
    "DeletionProtectionDisabled",
    "BackupRetentionLowered",
    "DatabaseMadePublic",
    "DatabaseSecurityGroupsChanged",
    "SubnetGroupChanges",
    "ParameterGroupFamilyChanges",
    "SecretReaderRoleChanges",
    "SecretReaderPolicyChanges",
)
# MaximumUsedTransactionIds, and EbsByteBalance for both environments' burstable-EBS classes.
EXHAUSTION_ALARMS = 2
STATIC_FILTER_PATTERNS = {
    "ParameterGroupChanges": (
        '{ ($.eventSource = "rds.amazonaws.com") && ((($.eventName = "ModifyDBParameterGroup") || '
        '($.eventName = "ResetDBParameterGroup") || ($.eventName = "CreateDBParameterGroup") || '
        '($.eventName = "DeleteDBParameterGroup")) || (($.eventName = "ModifyDBInstance") && '
        '($.requestParameters.dBParameterGroupName = "*"))) }'
    ),
    "SnapshotSharing": (
        '{ ($.eventSource = "rds.amazonaws.com") && ((($.eventName = "ModifyDBSnapshotAttribute") || '
        '($.eventName = "ModifyDBClusterSnapshotAttribute")) && ($.requestParameters.attributeName = "restore")) }'
    ),
    "RdsDeletions": (
        '{ ($.eventSource = "rds.amazonaws.com") && (($.eventName = "DeleteDBInstance") || '
        '($.eventName = "DeleteDBSnapshot") || ($.eventName = "DeleteDBSubnetGroup") || '
        '($.eventName = "DeleteEventSubscription")) }'
    ),
}


def _output(value: Any) -> str:
    """The Data stack output a cross-stack value reads."""
    return value["Fn::GetStackOutput"]["OutputName"]


def _by_id_prefix(env, resource_type: str, prefix: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in env.resources("Monitoring", resource_type).items()
        if logical_id.startswith(prefix)
    }


def _one(env, resource_type: str, prefix: str) -> dict[str, Any]:
    (resource,) = _by_id_prefix(env, resource_type, prefix).values()
    return resource["Properties"]


# --- Topic -----------------------------------------------------------------------------------


def test_topic_is_encrypted_with_the_database_key_and_tls_only(env):
    (topic,) = env.resources("Monitoring", "AWS::SNS::Topic").values()
    assert _output(topic["Properties"]["KmsMasterKeyId"]) == KEY_ARN_OUTPUT
    (policy,) = env.resources("Monitoring", "AWS::SNS::TopicPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"AllowPublishThroughSSLOnly", "AwsServicesOfThisAccountPublishAlerts"}
    assert statements["AllowPublishThroughSSLOnly"]["Effect"] == "Deny"
    assert statements["AllowPublishThroughSSLOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    publishers = statements["AwsServicesOfThisAccountPublishAlerts"]
    assert sorted(publishers["Principal"]["Service"]) == [
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
        "events.rds.amazonaws.com",
    ]
    assert publishers["Action"] == "sns:Publish"
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": env.config.account}}


def test_email_subscriptions_come_from_config(env):
    subscriptions = env.resources("Monitoring", "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(
        env.config.alerting.email_addresses
    )
    for subscription in subscriptions:
        assert subscription["Properties"]["Protocol"] == "email"
        assert subscription["Properties"]["TopicArn"] == {"Ref": TOPIC}


def test_no_slack_channel_unless_configured(env):
    assert env.config.alerting.slack is None
    assert env.resources("Monitoring", "AWS::Chatbot::SlackChannelConfiguration") == {}


# --- RDS event subscriptions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "source_type", "config_field", "source_output"),
    [
        ("RdsEventsInstanceEvents", "db-instance", "instance_event_categories", INSTANCE_OUTPUT),
        (
            "RdsEventsParameterGroupEvents",
            "db-parameter-group",
            "parameter_group_event_categories",
            PARAMETER_GROUP_OUTPUT,
        ),
        ("RdsEventsSecurityGroupEvents", "db-security-group", "security_group_event_categories", None),
        ("RdsEventsSnapshotEvents", "db-snapshot", "snapshot_event_categories", None),
    ],
)
def test_rds_event_subscription(env, prefix, source_type, config_field, source_output):
    properties = _one(env, "AWS::RDS::EventSubscription", prefix)
    assert properties["SourceType"] == source_type
    assert properties["EventCategories"] == list(getattr(env.config.alerting, config_field))
    assert properties["SnsTopicArn"] == {"Ref": TOPIC}
    assert properties["Enabled"] is True
    if source_output is None:
        # Not scopable: every DB security group / snapshot of the account and region.
        assert "SourceIds" not in properties
    else:
        assert [_output(source_id) for source_id in properties["SourceIds"]] == [source_output]


def test_exactly_four_event_subscriptions(env):
    assert len(env.resources("Monitoring", "AWS::RDS::EventSubscription")) == 4


# --- Audit: CloudTrail metric filters (production) -------------------------------------------------


@pytest.fixture
def production(environments):
    return environments["production"]


@pytest.fixture
def staging(environments):
    return environments["staging"]


@pytest.mark.parametrize("rule", sorted(STATIC_FILTER_PATTERNS))
def test_static_filter_patterns_are_pinned(production, rule):
    properties = _one(production, "AWS::Logs::MetricFilter", f"CloudTrailAudit{rule}Filter")
    assert properties["FilterPattern"] == STATIC_FILTER_PATTERNS[rule]


def _joined(pattern: Any) -> str:
    """A Fn::Join'd pattern with each cross-stack value replaced by <output name>."""
    return "".join(part if isinstance(part, str) else f"<{_output(part)}>" for part in pattern["Fn::Join"][1])


def test_key_tampering_filter_pattern_is_pinned(production):
    properties = _one(production, "AWS::Logs::MetricFilter", "CloudTrailAuditDatabaseKeyTamperingFilter")
    assert _joined(properties["FilterPattern"]) == (
        '{ ($.eventSource = "kms.amazonaws.com") && ((($.eventName = "DisableKey") || '
        '($.eventName = "ScheduleKeyDeletion") || ($.eventName = "PutKeyPolicy")) && '
        f'(($.requestParameters.keyId = "<{KEY_ID_OUTPUT}>") || '
        f'($.requestParameters.keyId = "<{KEY_ARN_OUTPUT}>"))) }}'
    )


def test_secret_tampering_filter_pattern_is_pinned(production):
    properties = _one(production, "AWS::Logs::MetricFilter", "CloudTrailAuditDatabaseSecretTamperingFilter")
    parts = properties["FilterPattern"]["Fn::Join"][1]
    assert parts[0] == (
        '{ ($.eventSource = "secretsmanager.amazonaws.com") && ((($.eventName = "DeleteSecret") || '
        '($.eventName = "PutResourcePolicy") || ($.eventName = "CancelRotateSecret") || '
        '($.eventName = "RemoveRegionsFromReplication")) && '
        '(($.requestParameters.secretId = "'
    )
    # Master: by ARN and by the RDS-managed name prefix; application: by ARN and its configured name.
    # Plain values only: no name parsed out of a cross-stack ARN (Fn::Split over Fn::GetStackOutput).
    assert _output(parts[1]) == SECRET_ARN_OUTPUT
    assert (
        parts[2] == '") || ($.requestParameters.secretId = "rds!db-*") || ($.requestParameters.secretId = "'
    )
    assert "ApplicationCredentialsSecret" in _output(parts[3])
    assert parts[4] == '") || ($.requestParameters.secretId = "revenuepilot/prod/database"))) }'
    assert len(parts) == 5


def test_every_audit_rule_has_a_filter_and_an_alarm_on_its_metric(production):
    filters = production.resources("Monitoring", "AWS::Logs::MetricFilter")
    assert len(filters) == len(AUDIT_RULES)
    for rule in AUDIT_RULES:
        properties = _one(production, "AWS::Logs::MetricFilter", f"CloudTrailAudit{rule}Filter")
        assert properties["LogGroupName"] == PRODUCTION.alerting.cloudtrail_log_group_name
        assert properties["MetricTransformations"] == [
            {"MetricName": rule, "MetricNamespace": "RevenuePilot/Audit", "MetricValue": "1"}
        ]
        alarm = _one(production, "AWS::CloudWatch::Alarm", f"CloudTrailAudit{rule}Alarm")
        assert (alarm["Namespace"], alarm["MetricName"]) == ("RevenuePilot/Audit", rule)
        assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1 and alarm["EvaluationPeriods"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_production_has_no_eventbridge_audit_rules(production):
    rules = production.resources("Monitoring", "AWS::Events::Rule")
    assert [logical_id for logical_id in rules if not logical_id.startswith("SecretRotationFailures")] == []


# --- Audit: EventBridge fallback (staging) ---------------------------------------------------------


def _rule_pattern(env, rule: str) -> dict[str, Any]:
    return _one(env, "AWS::Events::Rule", f"EventBridgeAudit{rule}")["EventPattern"]


def _cloudtrail_pattern(source: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"source": [source], "detail-type": ["AWS API Call via CloudTrail"], "detail": detail}


def test_staging_audits_through_eventbridge(staging):
    assert STAGING.alerting.cloudtrail_log_group_name is None
    assert staging.resources("Monitoring", "AWS::Logs::MetricFilter") == {}
    rules = _by_id_prefix(staging, "AWS::Events::Rule", "EventBridgeAudit")
    assert len(rules) == len(AUDIT_RULES)
    for rule in rules.values():
        assert rule["Properties"]["State"] == "ENABLED"
        assert rule["Properties"]["Targets"] == [{"Arn": {"Ref": TOPIC}, "Id": "Target0"}]


def test_eventbridge_parameter_group_changes_pattern(staging):
    assert _rule_pattern(staging, "ParameterGroupChanges") == _cloudtrail_pattern(
        "aws.rds",
        {
            "eventSource": ["rds.amazonaws.com"],
            "$or": [
                {
                    "eventName": [
                        "ModifyDBParameterGroup",
                        "ResetDBParameterGroup",
                        "CreateDBParameterGroup",
                        "DeleteDBParameterGroup",
                    ]
                },
                {
                    "eventName": ["ModifyDBInstance"],
                    "requestParameters": {"dBParameterGroupName": [{"exists": True}]},
                },
            ],
        },
    )


def test_eventbridge_snapshot_sharing_and_deletion_patterns(staging):
    assert _rule_pattern(staging, "SnapshotSharing") == _cloudtrail_pattern(
        "aws.rds",
        {
            "eventSource": ["rds.amazonaws.com"],
            "eventName": ["ModifyDBSnapshotAttribute", "ModifyDBClusterSnapshotAttribute"],
            "requestParameters": {"attributeName": ["restore"]},
        },
    )
    assert _rule_pattern(staging, "RdsDeletions") == _cloudtrail_pattern(
        "aws.rds",
        {
            "eventSource": ["rds.amazonaws.com"],
            "eventName": [
                "DeleteDBInstance",
                "DeleteDBSnapshot",
                "DeleteDBSubnetGroup",
                "DeleteEventSubscription",
            ],
        },
    )


def test_eventbridge_key_and_secret_patterns_name_our_key_and_secret(staging):
    key = _rule_pattern(staging, "DatabaseKeyTampering")
    assert key["source"] == ["aws.kms"] and key["detail-type"] == ["AWS API Call via CloudTrail"]
    assert key["detail"]["eventSource"] == ["kms.amazonaws.com"]
    assert key["detail"]["eventName"] == ["DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy"]
    assert [_output(v) for v in key["detail"]["requestParameters"]["keyId"]] == [
        KEY_ID_OUTPUT,
        KEY_ARN_OUTPUT,
    ]

    secret = _rule_pattern(staging, "DatabaseSecretTampering")
    assert secret["source"] == ["aws.secretsmanager"]
    assert secret["detail"]["eventSource"] == ["secretsmanager.amazonaws.com"]
    assert secret["detail"]["eventName"] == [
        "DeleteSecret",
        "PutResourcePolicy",
        "CancelRotateSecret",
        "RemoveRegionsFromReplication",
    ]
    arn, prefix, app_arn, app_name = secret["detail"]["requestParameters"]["secretId"]
    assert _output(arn) == SECRET_ARN_OUTPUT
    assert prefix == {"prefix": "rds!db-"}
    assert "ApplicationCredentialsSecret" in _output(app_arn)
    assert app_name == STAGING.database.application_secret_name


def test_rotation_failures_alert_in_both_paths(env):
    properties = _one(env, "AWS::Events::Rule", "SecretRotationFailuresRule")
    assert properties["EventPattern"] == {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {"eventSource": ["secretsmanager.amazonaws.com"], "eventName": ["RotationFailed"]},
    }
    assert properties["Targets"] == [{"Arn": {"Ref": TOPIC}, "Id": "Target0"}]


def test_eventbridge_targets_grant_nothing_beyond_the_explicit_policies(env):
    # No unconditioned events.amazonaws.com statement on the key (test_database pins the key policy).
    assert env.resources("Monitoring", "AWS::IAM::Role") == {}
    assert env.resources("Monitoring", "AWS::IAM::Policy") == {}


# --- Metric alarms and dashboard ------------------------------------------------------------------


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(env):
    alarms = env.resources("Monitoring", "AWS::CloudWatch::Alarm")
    lambda_error_alarms = {
        k
        for k in alarms
        if k.startswith(
            (
                "DatabaseAlarmsBootstrapFunction",
                "DatabaseAlarmsRotationFunction",
                "DatabaseAlarmsCredentialsCheckFunction",
            )
        )
    }
    assert len(lambda_error_alarms) == 3, sorted(alarms)
    expected = (
        len(DATABASE_ALARMS)
        + 1
        + EXHAUSTION_ALARMS
        + len(lambda_error_alarms)
        + len(CREDENTIALS_CHECK_ALARMS)
        + (len(AUDIT_RULES) if env.config.alerting.cloudtrail_log_group_name else 0)
    )
    assert len(alarms) == expected
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": TOPIC}], logical_id
        assert alarm["Properties"]["OKActions"] == [{"Ref": TOPIC}], logical_id


@pytest.mark.parametrize("alarm_id", sorted(DATABASE_ALARMS))
def test_database_metric_alarm(env, alarm_id):
    metric_name, comparison = DATABASE_ALARMS[alarm_id]
    properties = _one(env, "AWS::CloudWatch::Alarm", f"DatabaseAlarms{alarm_id}")
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/RDS", metric_name)
    assert properties["ComparisonOperator"] == comparison
    assert [_output(d["Value"]) for d in properties["Dimensions"]] == [INSTANCE_OUTPUT]
    assert properties["Dimensions"][0]["Name"] == "DBInstanceIdentifier"
    assert properties["Period"] == 300
    assert properties["EvaluationPeriods"] == 3
    assert properties["TreatMissingData"] == "breaching"
    # The thresholds the README's alert table documents (the defaults of DatabaseAlarmThresholds).
    expected_threshold = {
        "CpuUtilization": 80,
        "FreeableMemory": 512 * 1024**2,
        "DatabaseConnections": {"staging": 721, "production": 1442}[env.config.name],  # 80 % of max
        "ReadLatency": 0.02,
        "WriteLatency": 0.02,
        "DiskQueueDepth": 10,
        "SwapUsage": 256 * 1024**2,
    }[alarm_id]
    assert properties["Threshold"] == expected_threshold


def test_connection_alarm_uses_rds_default_max_connections(env):
    properties = _one(env, "AWS::CloudWatch::Alarm", "DatabaseAlarmsDatabaseConnections")
    # LEAST(DBInstanceClassMemory / 9531392, 5000): t4g.large (8 GiB) 901, r7g.large (16 GiB) 1802.
    assert {"staging": 901, "production": 1802}[env.config.name] == env.config.max_connections
    assert properties["Threshold"] == {"staging": 721, "production": 1442}[env.config.name]


def test_free_storage_alarm_is_a_percentage_of_allocated_storage(env):
    properties = _one(env, "AWS::CloudWatch::Alarm", "DatabaseAlarmsFreeStorageSpace")
    expression, metric = properties["Metrics"]
    allocated_bytes = env.config.database.allocated_storage_gib * 1024**3
    assert expression["Expression"] == f"100 * free / {allocated_bytes}"
    assert expression["ReturnData"] is True
    assert metric["Id"] == "free"
    assert metric["MetricStat"]["Metric"]["MetricName"] == "FreeStorageSpace"
    assert metric["ReturnData"] is False
    assert properties["ComparisonOperator"] == "LessThanThreshold"
    assert properties["Threshold"] == 15  # percent (README, Alerts)


def test_dashboard_shows_the_alarmed_metrics_and_performance_insights_load(env):
    (dashboard,) = env.resources("Monitoring", "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"revenuepilot-{env.config.name}-database"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "DBLoad",
        "DBLoadCPU",
        "DBLoadNonCPU",
        "CPUUtilization",
        "FreeableMemory",
        "FreeStorageSpace",
        "DatabaseConnections",
        "ReadLatency",
        "WriteLatency",
        "DiskQueueDepth",
        "SwapUsage",
    ):
        assert f'\\"{metric}\\"' in body, metric
    assert INSTANCE_OUTPUT in body


def test_no_log_shipping_by_default(env):
    assert env.config.alerting.central_log_destination_arn is None
    assert env.resources("Monitoring", "AWS::Logs::SubscriptionFilter") == {}


# --- Every log group of every stack ---------------------------------------------------------------


def test_every_log_group_is_encrypted_retained_and_kept_long_enough(env):
    log_groups = [
        (stack_id, logical_id, resource)
        for stack_id in env.raw
        for logical_id, resource in env.resources(stack_id, "AWS::Logs::LogGroup").items()
    ]
    assert log_groups
    for stack_id, logical_id, resource in log_groups:
        properties = resource["Properties"]
        assert "KmsKeyId" in properties, f"{stack_id}/{logical_id}"
        assert properties["RetentionInDays"] in CLOUDWATCH_RETENTION_DAYS, f"{stack_id}/{logical_id}"
        assert properties["RetentionInDays"] >= 365, f"{stack_id}/{logical_id}"
        assert resource["DeletionPolicy"] == "Retain", f"{stack_id}/{logical_id}"


# --- Optional features: one small synth with Slack, log shipping and a Lambda --------------------

DESTINATION_ARN = "arn:aws:logs:us-east-1:333333333333:destination:central-logs"


@pytest.fixture(scope="module")
def optional_features(tmp_path_factory):
    """A stack with the Slack channel, log shipping and a function's error alarm, under cdk-nag.

    The channel's own properties are asserted in test_slack_alerts.py; here it only has to pass the gate.
    """
    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_rds as rds
    from aws_cdk.assertions import Template

    from constructs.alerting import AlertTopic
    from constructs.database_alarms import DatabaseAlarms
    from constructs.log_group import EncryptedLogGroup
    from constructs.log_shipping import CentralLogShipping
    from stacks.cdk_app import add_compliance_checks
    from tests.support.synth import synthesize_under_gate

    outdir = tmp_path_factory.mktemp("optional-features")
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Optional", env=cdk.Environment(account="111111111111", region="us-east-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    alerts = AlertTopic(
        stack,
        "Alerts",
        display_name="probe",
        encryption_key=key,
        email_addresses=(),
        slack=SlackChannelConfig(workspace_id="T01ABCDEF23", channel_id="C04ABCDEF56"),
        slack_channel_name="revenuepilot-probe-alerts",
    )
    log_groups = {
        name: EncryptedLogGroup(
            stack, f"{name.capitalize()}Logs", retention_days=365, encryption_key=key
        ).log_group
        for name in ("postgresql", "upgrade")
    }
    CentralLogShipping(stack, "CentralLogShipping", log_groups=log_groups, destination_arn=DESTINATION_ARN)
    DatabaseAlarms(
        stack,
        "DatabaseAlarms",
        instance=rds.DatabaseInstance.from_database_instance_attributes(
            stack,
            "Instance",
            instance_identifier="probe-db",
            instance_endpoint_address="probe-db.example",
            port=5432,
            security_groups=[],
        ),
        allocated_storage_gib=50,
        max_connections=100,
        thresholds=DatabaseAlarmThresholds(),
        functions={
            "SecretRotation": lambda_.Function.from_function_attributes(
                stack,
                "Rotation",
                function_arn="arn:aws:lambda:us-east-1:111111111111:function:probe-rotation",
                same_environment=True,
            )
        },
        topic=alerts.topic,
    )
    add_compliance_checks(app)
    validation_error = synthesize_under_gate(app)
    return Template.from_stack(stack), validation_error


def test_optional_features_pass_the_compliance_gate(optional_features):
    _, validation_error = optional_features
    assert validation_error is None, validation_error


def test_each_database_log_group_is_shipped_to_the_central_destination(optional_features):
    template, _ = optional_features
    filters = template.find_resources("AWS::Logs::SubscriptionFilter")
    assert len(filters) == 2
    for subscription_filter in filters.values():
        assert subscription_filter["Properties"]["DestinationArn"] == DESTINATION_ARN
        assert subscription_filter["Properties"]["FilterPattern"] == ""
        assert "RoleArn" not in subscription_filter["Properties"]


def test_each_function_gets_an_errors_alarm(optional_features):
    template, _ = optional_features
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": "probe-rotation"}],
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": Match.string_like_regexp("AlertsTopic")}],
            "OKActions": [{"Ref": Match.string_like_regexp("AlertsTopic")}],
        },
    )
