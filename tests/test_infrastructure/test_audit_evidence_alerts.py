"""The alerts auditors ask for (issue 16), in both renderings of constructs/audit_alerts.py.

Staging (EventBridge): each rule's synthesized pattern is evaluated against CloudTrail events with
moto's EventBridge pattern matcher (`moto.events.models.EventPattern`): a call that must alert and
one that must not (a negative case each). Cross-stack values in a pattern (role names, policy ARNs)
are replaced by placeholder strings that the test events then carry.

Production (CloudTrail metric filters): nothing here evaluates CloudWatch Logs filter patterns
(moto treats any `{...}` pattern as matching everything), so the patterns are pinned as exact
strings, and the longest pattern is checked against CloudWatch Logs' 1024-character limit with
every cross-stack value at its longest possible length.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from config.aws_limits import has_burstable_ebs

HARDENING_RULES = (
    "DeletionProtectionDisabled",
    "BackupRetentionLowered",
    "DatabaseMadePublic",
    "DatabaseSecurityGroupsChanged",
    "SubnetGroupChanges",
    "ParameterGroupFamilyChanges",
)
_MODIFY = ("rds", "ModifyDBInstance")
# rule -> (matching calls, non-matching calls): (service, event name, request parameters)
CASES: dict[str, tuple[list[tuple[str, str, dict[str, Any]]], list[tuple[str, str, dict[str, Any]]]]] = {
    "DeletionProtectionDisabled": (
        [(*_MODIFY, {"dBInstanceIdentifier": "db", "deletionProtection": False})],
        [(*_MODIFY, {"deletionProtection": True}), (*_MODIFY, {"dBInstanceClass": "db.r7g.xlarge"})],
    ),
    "BackupRetentionLowered": (
        [(*_MODIFY, {"backupRetentionPeriod": 7}), (*_MODIFY, {"backupRetentionPeriod": 0})],
        [(*_MODIFY, {"backupRetentionPeriod": 14}), (*_MODIFY, {"backupRetentionPeriod": 35})],
    ),
    "DatabaseMadePublic": (
        [(*_MODIFY, {"publiclyAccessible": True})],
        [
            (*_MODIFY, {"publiclyAccessible": False}),
            ("rds", "CreateDBInstance", {"publiclyAccessible": False}),
        ],
    ),
    "DatabaseSecurityGroupsChanged": (
        [(*_MODIFY, {"vpcSecurityGroupIds": ["sg-0123456789abcdef0"]})],
        [(*_MODIFY, {"multiAZ": True}), ("ec2", "AuthorizeSecurityGroupIngress", {"groupId": "sg-1"})],
    ),
    "SubnetGroupChanges": (
        [
            ("rds", "ModifyDBSubnetGroup", {"dBSubnetGroupName": "x"}),
            (*_MODIFY, {"dBSubnetGroupName": "other"}),
        ],
        [("rds", "DescribeDBSubnetGroups", {}), (*_MODIFY, {"deletionProtection": True})],
    ),
    "ParameterGroupFamilyChanges": (
        [
            (*_MODIFY, {"engineVersion": "18.1", "allowMajorVersionUpgrade": True}),
            (*_MODIFY, {"engineVersion": "17.10"}),
            ("rds", "CreateBlueGreenDeployment", {"targetEngineVersion": "18.1"}),
        ],
        [(*_MODIFY, {"allowMajorVersionUpgrade": False}), (*_MODIFY, {"autoMinorVersionUpgrade": True})],
    ),
}
ROLE = "<role>"
POLICY = "<policy>"


def _event(service: str, name: str, parameters: dict[str, Any]) -> Any:  # moto types it EventMessageType
    return {
        "version": "0",
        "source": f"aws.{service}",
        "detail-type": "AWS API Call via CloudTrail",
        "account": "111111111111",
        "region": "us-east-1",
        "detail": {
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "requestParameters": parameters,
        },
    }


def _placeholders(pattern: Any, value: str) -> Any:
    """`pattern` with every CloudFormation value (Ref, Fn::GetStackOutput...) in a list replaced by `value`."""
    if isinstance(pattern, dict):
        return {key: _placeholders(inner, value) for key, inner in pattern.items()}
    if isinstance(pattern, list):
        return [
            value
            if isinstance(item, dict) and next(iter(item)).startswith(("Ref", "Fn::"))
            else _placeholders(item, value)
            for item in pattern
        ]
    return pattern


def _one(env, stack: str, resource_type: str, logical_prefix: str) -> dict[str, Any]:
    found = [
        resource["Properties"]
        for logical_id, resource in env.resources(stack, resource_type).items()
        if logical_id[:-8] == logical_prefix
    ]
    assert len(found) == 1, (logical_prefix, sorted(env.resources(stack, resource_type)))
    return found[0]


def _matcher(staging, stack: str, rule: str, placeholder: str = ROLE) -> EventPattern:
    pattern = _one(staging, stack, "AWS::Events::Rule", f"EventBridgeAudit{rule}")["EventPattern"]
    return EventPattern.load(json.dumps(_placeholders(pattern, placeholder)))


@pytest.fixture
def staging(environments):
    return environments["staging"]


@pytest.fixture
def production(environments):
    return environments["production"]


@pytest.mark.parametrize("rule", HARDENING_RULES)
def test_hardening_rule_matches_what_weakens_the_database_and_nothing_else(staging, rule):
    matcher = _matcher(staging, "Monitoring", rule)
    positives, negatives = CASES[rule]
    for call in positives:
        assert matcher.matches_event(_event(*call)), call
    for call in negatives:
        assert not matcher.matches_event(_event(*call)), call


def test_backup_retention_threshold_is_the_configured_retention(staging, production):
    for env in (staging, production):
        days = env.config.database.backup_retention_days
        if env is staging:
            pattern = _one(env, "Monitoring", "AWS::Events::Rule", "EventBridgeAuditBackupRetentionLowered")[
                "EventPattern"
            ]
            assert pattern["detail"]["requestParameters"] == {
                "backupRetentionPeriod": [{"numeric": ["<", days]}]
            }
        else:
            filter_pattern = _one(
                env, "Monitoring", "AWS::Logs::MetricFilter", "CloudTrailAuditBackupRetentionLoweredFilter"
            )
            assert f"($.requestParameters.backupRetentionPeriod < {days})" in filter_pattern["FilterPattern"]


@pytest.mark.parametrize(
    ("stack", "name"), [("Monitoring", "SecretReader"), ("Migration", "MigrationSecretReader")]
)
def test_iam_changes_on_secret_readers_match_only_those_roles_and_policies(staging, stack, name):
    roles = _matcher(staging, stack, f"{name}RoleChanges", ROLE)
    for event_name in (
        "AttachRolePolicy",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "DetachRolePolicy",
        "UpdateAssumeRolePolicy",
    ):
        assert roles.matches_event(
            _event(
                "iam",
                event_name,
                {"roleName": ROLE, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            )
        )
    assert not roles.matches_event(_event("iam", "AttachRolePolicy", {"roleName": "SomeOtherRole"}))
    assert not roles.matches_event(_event("iam", "GetRole", {"roleName": ROLE}))
    policies = _matcher(staging, stack, f"{name}PolicyChanges", POLICY)
    assert policies.matches_event(
        _event("iam", "CreatePolicyVersion", {"policyArn": POLICY, "setAsDefault": True})
    )
    assert not policies.matches_event(
        _event("iam", "CreatePolicyVersion", {"policyArn": "arn:aws:iam::1:policy/x"})
    )


def test_secret_reader_roles_are_the_ones_that_can_read_the_secret(staging):
    pattern = _one(staging, "Monitoring", "AWS::Events::Rule", "EventBridgeAuditSecretReaderRoleChanges")[
        "EventPattern"
    ]
    names = json.dumps(pattern["detail"]["requestParameters"]["roleName"])
    for role in (
        "ApplicationCredentialsBootstrapRole",
        "ApplicationCredentialsRotationRole",
        "CredentialsCheckRole",
        "TaskRole",
    ):
        assert role in names
    migration = _one(
        staging, "Migration", "AWS::Events::Rule", "EventBridgeAuditMigrationSecretReaderRoleChanges"
    )
    assert migration["EventPattern"]["detail"]["requestParameters"]["roleName"] == [
        {"Ref": "MigrationTaskTaskRole9CC4695E"}
    ]


PINNED_FILTERS = {
    "DeletionProtectionDisabled": '{ ($.eventSource = "rds.amazonaws.com") && (($.eventName = "ModifyDBInstance") && '
    "($.requestParameters.deletionProtection IS FALSE)) }",
    "BackupRetentionLowered": '{ ($.eventSource = "rds.amazonaws.com") && (($.eventName = "ModifyDBInstance") && '
    "($.requestParameters.backupRetentionPeriod < 14)) }",
    "DatabaseMadePublic": '{ ($.eventSource = "rds.amazonaws.com") && (($.eventName = "ModifyDBInstance") && '
    "($.requestParameters.publiclyAccessible IS TRUE)) }",
    "DatabaseSecurityGroupsChanged": '{ ($.eventSource = "rds.amazonaws.com") && (($.eventName = "ModifyDBInstance") && '
    '($.requestParameters.vpcSecurityGroupIds[0] = "*")) }',
    "SubnetGroupChanges": '{ ($.eventSource = "rds.amazonaws.com") && (($.eventName = "ModifyDBSubnetGroup") || '
    '(($.eventName = "ModifyDBInstance") && ($.requestParameters.dBSubnetGroupName = "*"))) }',
    "ParameterGroupFamilyChanges": '{ ($.eventSource = "rds.amazonaws.com") && ((($.eventName = "ModifyDBInstance") && '
    '($.requestParameters.engineVersion = "*")) || (($.eventName = "ModifyDBInstance") && '
    '($.requestParameters.allowMajorVersionUpgrade IS TRUE)) || (($.eventName = "CreateBlueGreenDeployment") || '
    '($.eventName = "SwitchoverBlueGreenDeployment"))) }',
}


@pytest.mark.parametrize("rule", HARDENING_RULES)
def test_hardening_metric_filter_patterns_are_pinned(production, rule):
    assert production.config.database.backup_retention_days == 14
    properties = _one(production, "Monitoring", "AWS::Logs::MetricFilter", f"CloudTrailAudit{rule}Filter")
    assert properties["FilterPattern"] == PINNED_FILTERS[rule]
    alarm = _one(production, "Monitoring", "AWS::CloudWatch::Alarm", f"CloudTrailAudit{rule}Alarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("RevenuePilot/Audit", rule, 1)


# Longest possible values: IAM role names are at most 64 characters, managed policy ARNs carry a name of
# at most 128; a value is bounded by the field it fills (the literal text before it names the field).
_LONGEST_ROLE_NAME = 64
_LONGEST_POLICY_ARN = len("arn:aws-us-gov:iam::123456789012:policy/") + 128


def _longest_value(preceding_text: str) -> int:
    if preceding_text.endswith('$.requestParameters.roleName = "'):
        return _LONGEST_ROLE_NAME
    return _LONGEST_POLICY_ARN


@pytest.mark.parametrize("stack", ["Monitoring", "Migration"])
def test_every_filter_pattern_fits_cloudwatch_logs_limit(production, stack):
    for logical_id, resource in production.resources(stack, "AWS::Logs::MetricFilter").items():
        pattern = resource["Properties"]["FilterPattern"]
        if isinstance(pattern, str):
            assert len(pattern) <= 1024, logical_id
            continue
        parts = pattern["Fn::Join"][1]
        longest = sum(
            len(part) if isinstance(part, str) else _longest_value(str(parts[index - 1]))
            for index, part in enumerate(parts)
        )
        assert longest <= 1024, (logical_id, longest)


def test_a_role_name_value_is_bounded_by_the_role_name_limit():
    assert _longest_value('... && (($.requestParameters.roleName = "') == 64
    assert _longest_value('... && (($.requestParameters.policyArn = "') == _LONGEST_POLICY_ARN


def test_iam_role_filter_pattern_is_pinned(production):
    properties = _one(
        production,
        "Migration",
        "AWS::Logs::MetricFilter",
        "CloudTrailAuditMigrationSecretReaderRoleChangesFilter",
    )
    parts = properties["FilterPattern"]["Fn::Join"][1]
    assert parts == [
        '{ ($.eventSource = "iam.amazonaws.com") && ((($.eventName = "AttachRolePolicy") || '
        '($.eventName = "DetachRolePolicy") || ($.eventName = "PutRolePolicy") || ($.eventName = "DeleteRolePolicy") || '
        '($.eventName = "PutRolePermissionsBoundary") || ($.eventName = "DeleteRolePermissionsBoundary") || '
        '($.eventName = "UpdateAssumeRolePolicy")) && ($.requestParameters.roleName = "',
        {"Ref": "MigrationTaskTaskRole9CC4695E"},
        '")) }',
    ]


@pytest.mark.parametrize("alarm_id", ["MaximumUsedTransactionIds", "EbsByteBalance"])
def test_exhaustion_alarms(env, alarm_id):
    thresholds = env.config.alerting.thresholds
    alarms = {
        k[:-8]: v["Properties"] for k, v in env.resources("Monitoring", "AWS::CloudWatch::Alarm").items()
    }
    assert has_burstable_ebs(
        env.config.database.instance_class
    )  # t4g.large, r7g.large: "up to" EBS bandwidth
    alarm = alarms[f"ExhaustionAlarms{alarm_id}"]
    metric, statistic, comparison, threshold = {
        "MaximumUsedTransactionIds": (
            "MaximumUsedTransactionIDs",
            "Maximum",
            "GreaterThanThreshold",
            thresholds.maximum_used_transaction_ids_max,
        ),
        "EbsByteBalance": (
            "EBSByteBalance%",
            "Minimum",
            "LessThanThreshold",
            thresholds.ebs_byte_balance_min_percent,
        ),
    }[alarm_id]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/RDS", metric, statistic)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (comparison, threshold)
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Dimensions"][0]["Name"] == "DBInstanceIdentifier"


@pytest.mark.parametrize(
    ("instance_class", "burstable"),
    [("t4g.large", True), ("t3.2xlarge", True), ("r7g.large", True), ("r7g.4xlarge", True), ("r7g.8xlarge", False),
     ("r5.2xlarge", True), ("r5.4xlarge", False), ("x2g.large", False), ("r7g.huge", False)],
)  # fmt: skip
def test_burstable_ebs_table(instance_class, burstable):
    assert has_burstable_ebs(instance_class) is burstable
