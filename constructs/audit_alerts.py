"""Alerts on sensitive API calls against the database, its key and its secrets (ops guide: audit).

Each audit rule is defined once (`AuditRule`) and rendered one of two ways:

- with the account's CloudTrail log group: a metric filter on it and an alarm on the metric
  (`CloudTrailAuditAlarms`);
- without one: an EventBridge rule on the same CloudTrail management events
  (`EventBridgeAuditRules`). EventBridge only sees these events when a trail is logging in the
  account and region.

Rotation failures of Secrets Manager are service events, not API calls, and always take an
EventBridge rule (`RotationFailureRule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs

from constructs import Construct

AUDIT_METRIC_NAMESPACE = "RevenuePilot/Audit"
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
# A request parameter that must be present, whatever its value.
PRESENT: tuple[str, ...] = ()
# The name every RDS-managed master secret (ManageMasterUserPassword) gets: `rds!db-<uuid>`.
RDS_MANAGED_SECRET_NAME_PREFIX = "rds!db-"  # noqa: S105 - a name prefix, not a secret


@dataclass(frozen=True)
class Prefix:
    """A request parameter value that matches every string starting with `value`."""

    value: str


@dataclass(frozen=True, kw_only=True)
class WatchedSecret:
    """A secret the tampering rule matches, as callers name it: by ARN, and by name where known.

    Both are plain values (a literal, or one cross-stack reference as is): never derive a name from
    an ARN token, which CDK renders as Fn::Select/Fn::Split over the reference, a position
    CloudFormation does not document for Fn::GetStackOutput. A name the config does not know
    (RDS names its managed master secret) is matched by `name_prefix`.
    """

    arn: str
    name: str | None = None
    name_prefix: str | None = None

    def identifiers(self) -> tuple[str | Prefix, ...]:
        names = () if self.name is None else (self.name,)
        prefixes = () if self.name_prefix is None else (Prefix(self.name_prefix),)
        return (self.arn, *names, *prefixes)


@dataclass(frozen=True, kw_only=True)
class ApiCallMatch:
    """API calls by name, optionally narrowed by request parameters.

    `request_parameters` pairs a parameter with the values (or `Prefix`es) that match, or with PRESENT.
    """

    event_names: tuple[str, ...]
    request_parameters: tuple[tuple[str, tuple[str | Prefix, ...]], ...] = ()
    # Typed tests of request parameters (booleans, numbers, lists), ANDed with the above.
    parameter_tests: tuple[ParameterTest, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ParameterTest:
    """A request parameter that CloudTrail records as a JSON boolean, number or list.

    Exactly one of: `boolean` (the parameter is that boolean), `below` (a number less than it),
    `listed` (a non-empty list is present: the metric filter tests its first element).
    """

    parameter: str
    boolean: bool | None = None
    below: int | None = None
    listed: bool = False

    def __post_init__(self) -> None:
        given = [self.boolean is not None, self.below is not None, self.listed]
        if given.count(True) != 1:
            raise ValueError(f"{self.parameter}: give exactly one of boolean, below, listed")

    def filter_pattern(self) -> logs.JsonPattern:
        path = f"$.requestParameters.{self.parameter}"
        if self.boolean is not None:
            return logs.FilterPattern.boolean_value(path, self.boolean)
        if self.below is not None:
            return logs.FilterPattern.number_value(path, "<", self.below)
        return logs.FilterPattern.exists(f"{path}[0]")

    def event_filter(self) -> list[Any]:
        if self.boolean is not None:
            return [self.boolean]
        if self.below is not None:
            return [{"numeric": ["<", self.below]}]
        return [{"exists": True}]


@dataclass(frozen=True, kw_only=True)
class AuditRule:
    """One alert: calls to one AWS service that match any of `matches`."""

    construct_id: str
    description: str
    event_source: str  # e.g. "rds.amazonaws.com"
    matches: tuple[ApiCallMatch, ...]

    @property
    def events_source(self) -> str:
        """The EventBridge `source` of the service's events, e.g. "aws.rds"."""
        return "aws." + self.event_source.split(".", 1)[0]

    def filter_pattern(self) -> logs.IFilterPattern:
        """The CloudWatch Logs metric filter pattern for CloudTrail records."""

        def match_pattern(match: ApiCallMatch) -> logs.JsonPattern:
            names = logs.FilterPattern.any(
                *(logs.FilterPattern.string_value("$.eventName", "=", name) for name in match.event_names)
            )
            parameters = [
                logs.FilterPattern.exists(f"$.requestParameters.{parameter}")
                if values == PRESENT
                else logs.FilterPattern.any(
                    *(
                        logs.FilterPattern.string_value(
                            f"$.requestParameters.{parameter}", "=", _filter_value(value)
                        )
                        for value in values
                    )
                )
                for parameter, values in match.request_parameters
            ]
            parameters += [test.filter_pattern() for test in match.parameter_tests]
            return logs.FilterPattern.all(names, *parameters) if parameters else names

        return logs.FilterPattern.all(
            logs.FilterPattern.string_value("$.eventSource", "=", self.event_source),
            logs.FilterPattern.any(*(match_pattern(match) for match in self.matches)),
        )

    def event_pattern(self) -> events.EventPattern:
        """The EventBridge pattern for the same CloudTrail management events."""

        def match_detail(match: ApiCallMatch) -> dict[str, Any]:
            detail: dict[str, Any] = {"eventName": list(match.event_names)}
            if match.request_parameters:
                detail["requestParameters"] = {
                    parameter: [{"exists": True}] if values == PRESENT else [_event_value(v) for v in values]
                    for parameter, values in match.request_parameters
                }
            if match.parameter_tests:
                detail.setdefault("requestParameters", {}).update(
                    {test.parameter: test.event_filter() for test in match.parameter_tests}
                )
            return detail

        details = [match_detail(match) for match in self.matches]
        detail: dict[str, Any] = {"eventSource": [self.event_source]}
        if len(details) == 1:
            detail.update(details[0])
        else:
            detail["$or"] = details
        return events.EventPattern(
            source=[self.events_source], detail_type=[CLOUDTRAIL_DETAIL_TYPE], detail=detail
        )


def _filter_value(value: str | Prefix) -> str:
    """A metric filter value: a prefix ends in the `*` wildcard."""
    return f"{value.value}*" if isinstance(value, Prefix) else value


def _event_value(value: str | Prefix) -> Any:
    """An EventBridge pattern value: a prefix is a `prefix` matcher."""
    return {"prefix": value.value} if isinstance(value, Prefix) else value


def audit_rules(*, encryption_key: kms.IKey, secrets: Sequence[WatchedSecret]) -> list[AuditRule]:
    """The audited API calls: parameter changes, snapshot sharing and deletions of RDS resources
    in the account, and tampering with this environment's database key and secrets."""
    rules = [*_rds_audit_rules(), _key_tampering_rule(encryption_key)]
    if secrets:
        rules.append(_secret_tampering_rule(secrets))
    return rules


def _rds_audit_rules() -> list[AuditRule]:
    """RDS changes anywhere in the account: parameter groups, snapshot sharing, deletions."""
    return [
        AuditRule(
            construct_id="ParameterGroupChanges",
            description="A DB parameter group was created, changed, reset or deleted, or an instance was moved to another one",
            event_source="rds.amazonaws.com",
            matches=(
                ApiCallMatch(
                    event_names=(
                        "ModifyDBParameterGroup",
                        "ResetDBParameterGroup",
                        "CreateDBParameterGroup",
                        "DeleteDBParameterGroup",
                    )
                ),
                ApiCallMatch(
                    event_names=("ModifyDBInstance",),
                    request_parameters=(("dBParameterGroupName", PRESENT),),
                ),
            ),
        ),
        AuditRule(
            construct_id="SnapshotSharing",
            description="Who may restore a DB (cluster) snapshot was changed: shared, unshared or made public",
            event_source="rds.amazonaws.com",
            # CopyDBSnapshot always creates the copy in the caller's account: a copy into another
            # account is that account's call after we share the snapshot, which this rule catches.
            matches=(
                ApiCallMatch(
                    event_names=("ModifyDBSnapshotAttribute", "ModifyDBClusterSnapshotAttribute"),
                    request_parameters=(("attributeName", ("restore",)),),
                ),
            ),
        ),
        AuditRule(
            construct_id="RdsDeletions",
            description="A DB instance, DB snapshot, DB subnet group or RDS event subscription was deleted",
            event_source="rds.amazonaws.com",
            matches=(
                ApiCallMatch(
                    event_names=(
                        "DeleteDBInstance",
                        "DeleteDBSnapshot",
                        "DeleteDBSubnetGroup",
                        "DeleteEventSubscription",
                    )
                ),
            ),
        ),
    ]


def _key_tampering_rule(encryption_key: kms.IKey) -> AuditRule:
    return AuditRule(
        construct_id="DatabaseKeyTampering",
        description="The database CMK was disabled, scheduled for deletion or given a new key policy",
        event_source="kms.amazonaws.com",
        # These three APIs take the key id or the key ARN (never an alias).
        matches=(
            ApiCallMatch(
                event_names=("DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy"),
                request_parameters=(("keyId", (encryption_key.key_id, encryption_key.key_arn)),),
            ),
        ),
    )


def _secret_tampering_rule(secrets: Sequence[WatchedSecret]) -> AuditRule:
    return AuditRule(
        construct_id="DatabaseSecretTampering",
        description=(
            "A database secret was deleted, given a resource policy, had its rotation cancelled or its DR "
            "replica removed"
        ),
        event_source="secretsmanager.amazonaws.com",
        # Callers name a secret by ARN or by name; a partial ARN is not matched.
        matches=(
            ApiCallMatch(
                # RemoveRegionsFromReplication: the application secret's replica in the DR region is what a
                # regional failover and the DR restore tests log in with (decision 0010).
                event_names=(
                    "DeleteSecret",
                    "PutResourcePolicy",
                    "CancelRotateSecret",
                    "RemoveRegionsFromReplication",
                ),
                request_parameters=(
                    (
                        "secretId",
                        tuple(identifier for secret in secrets for identifier in secret.identifiers()),
                    ),
                ),
            ),
        ),
    )


def database_hardening_rules(*, backup_retention_days: int) -> list[AuditRule]:
    """Changes that weaken an RDS instance or move it, the alerts auditors ask for (issue 16).

    `ModifyDBInstance` calls of any instance in the account that disable deletion protection, set
    automated backup retention below `backup_retention_days` (the configured value: CloudTrail
    records only the new value, so "lowered" means "below what we configure"), make it publicly
    accessible or set its VPC security groups; changes of a DB subnet group or an instance's
    subnet group; engine upgrades that move the instance to another parameter group family.
    """
    rds_source = "rds.amazonaws.com"
    modify = ("ModifyDBInstance",)
    return [
        AuditRule(
            construct_id="DeletionProtectionDisabled",
            description="Deletion protection of a DB instance was turned off",
            event_source=rds_source,
            matches=(
                ApiCallMatch(
                    event_names=modify,
                    parameter_tests=(ParameterTest(parameter="deletionProtection", boolean=False),),
                ),
            ),
        ),
        AuditRule(
            construct_id="BackupRetentionLowered",
            description=f"Automated backup retention of a DB instance was set below {backup_retention_days} days",
            event_source=rds_source,
            matches=(
                ApiCallMatch(
                    event_names=modify,
                    parameter_tests=(
                        ParameterTest(parameter="backupRetentionPeriod", below=backup_retention_days),
                    ),
                ),
            ),
        ),
        AuditRule(
            construct_id="DatabaseMadePublic",
            description="A DB instance was made publicly accessible",
            event_source=rds_source,
            matches=(
                ApiCallMatch(
                    event_names=modify,
                    parameter_tests=(ParameterTest(parameter="publiclyAccessible", boolean=True),),
                ),
            ),
        ),
        AuditRule(
            construct_id="DatabaseSecurityGroupsChanged",
            description="The VPC security groups of a DB instance were set",
            event_source=rds_source,
            matches=(
                ApiCallMatch(
                    event_names=modify,
                    parameter_tests=(ParameterTest(parameter="vpcSecurityGroupIds", listed=True),),
                ),
            ),
        ),
        AuditRule(
            construct_id="SubnetGroupChanges",
            description="A DB subnet group was changed, or a DB instance was moved to another one",
            event_source=rds_source,
            matches=(
                ApiCallMatch(event_names=("ModifyDBSubnetGroup",)),
                ApiCallMatch(event_names=modify, request_parameters=(("dBSubnetGroupName", PRESENT),)),
            ),
        ),
        AuditRule(
            construct_id="ParameterGroupFamilyChanges",
            description="A DB instance's engine version (and with a major version, its parameter group "
            "family) is being changed, directly or through a blue/green deployment",
            event_source=rds_source,
            matches=(
                ApiCallMatch(event_names=modify, request_parameters=(("engineVersion", PRESENT),)),
                ApiCallMatch(
                    event_names=modify,
                    parameter_tests=(ParameterTest(parameter="allowMajorVersionUpgrade", boolean=True),),
                ),
                ApiCallMatch(event_names=("CreateBlueGreenDeployment", "SwitchoverBlueGreenDeployment")),
            ),
        ),
    ]


# Calls that change what a role may do: its inline and attached policies, boundary and trust policy.
ROLE_POLICY_EVENTS = (
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "UpdateAssumeRolePolicy",
)
# Calls that change a customer managed policy's effective document.
MANAGED_POLICY_EVENTS = ("CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy")


def role_policy_rules(
    *, name: str, subject: str, roles: Sequence[iam.IRole], policies: Sequence[iam.IManagedPolicy]
) -> list[AuditRule]:
    """IAM changes to `roles` (`<name>RoleChanges`, by role name) and to the customer managed `policies`
    attached to them (`<name>PolicyChanges`, by ARN). Two rules: one filter pattern with every role name
    and policy ARN could exceed CloudWatch Logs' 1024-character limit.

    IAM is a global service: CloudTrail records its calls in us-east-1 (a multi-region trail delivers
    them to its log group wherever that is), and EventBridge receives them only in us-east-1 (config
    refuses the EventBridge path in another region).
    """
    rules = [
        AuditRule(
            construct_id=f"{name}RoleChanges",
            description=f"The IAM policies or trust policy of {subject} were changed",
            event_source="iam.amazonaws.com",
            matches=(
                ApiCallMatch(
                    event_names=ROLE_POLICY_EVENTS,
                    request_parameters=(("roleName", tuple(role.role_name for role in roles)),),
                ),
            ),
        )
    ]
    if policies:
        rules.append(
            AuditRule(
                construct_id=f"{name}PolicyChanges",
                description=f"A managed policy attached to {subject} got a new version or was deleted",
                event_source="iam.amazonaws.com",
                matches=(
                    ApiCallMatch(
                        event_names=MANAGED_POLICY_EVENTS,
                        request_parameters=(("policyArn", tuple(p.managed_policy_arn for p in policies)),),
                    ),
                ),
            )
        )
    return rules


def add_audit_alerts(
    scope: Construct,
    construct_id: str,
    *,
    cloudtrail_log_group_name: str | None,
    rules: Sequence[AuditRule],
    topic: sns.ITopic,
) -> CloudTrailAuditAlarms | EventBridgeAuditRules:
    """`rules` as CloudTrail metric filters with alarms when the log group is given, else as EventBridge
    rules; `construct_id` is prefixed with `CloudTrail` or `EventBridge` (e.g. "Audit")."""
    if cloudtrail_log_group_name is not None:
        return CloudTrailAuditAlarms(
            scope,
            f"CloudTrail{construct_id}",
            cloudtrail_log_group_name=cloudtrail_log_group_name,
            rules=rules,
            topic=topic,
        )
    return EventBridgeAuditRules(scope, f"EventBridge{construct_id}", rules=rules, topic=topic)


@jsii.implements(events.IRuleTarget)
class AlertTopicTarget:
    """An EventBridge target that publishes the matched event to the alert topic, as is.

    Unlike `aws_events_targets.SnsTopic` it grants nothing: that one would add events.amazonaws.com
    to the database CMK's key policy in the Data stack without any condition. AlertTopic's topic
    policy and the key policy (DataStack) already admit EventBridge for this account only.
    """

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn)


def alarm_to_topic(alarm: cloudwatch.Alarm, topic: sns.ITopic) -> None:
    """Notify `topic` when `alarm` fires and when it recovers."""
    action = cloudwatch_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)


class CloudTrailAuditAlarms(Construct):
    """A metric filter on the CloudTrail log group and an alarm per audit rule.

    Exposes `metric_filters` and `alarms` (both by rule construct id).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cloudtrail_log_group_name: str,
        rules: Sequence[AuditRule],
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup.from_log_group_name(self, "CloudTrailLogGroup", cloudtrail_log_group_name)
        self.metric_filters: dict[str, logs.MetricFilter] = {}
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for rule in rules:
            metric_filter = logs.MetricFilter(
                self,
                f"{rule.construct_id}Filter",
                log_group=log_group,
                filter_pattern=rule.filter_pattern(),
                metric_namespace=AUDIT_METRIC_NAMESPACE,
                metric_name=rule.construct_id,
                metric_value="1",
            )
            alarm = metric_filter.metric(statistic="Sum", period=cdk.Duration.minutes(5)).create_alarm(
                self,
                f"{rule.construct_id}Alarm",
                alarm_description=rule.description,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # No matching call in a period publishes no data point: that is the normal state.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm_to_topic(alarm, topic)
            self.metric_filters[rule.construct_id] = metric_filter
            self.alarms[rule.construct_id] = alarm


class EventBridgeAuditRules(Construct):
    """An EventBridge rule per audit rule, targeting the alert topic. Exposes `rules`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, rules: Sequence[AuditRule], topic: sns.ITopic
    ) -> None:
        super().__init__(scope, construct_id)
        target = AlertTopicTarget(topic)
        self.rules: dict[str, events.Rule] = {
            rule.construct_id: events.Rule(
                self,
                rule.construct_id,
                description=rule.description,
                event_pattern=rule.event_pattern(),
                targets=[target],
            )
            for rule in rules
        }


class RotationFailureRule(Construct):
    """An EventBridge rule on Secrets Manager's `RotationFailed` events. Exposes `rule`.

    Not narrowed to our secrets: each environment has an account of its own, so any failed
    rotation in it concerns this database.
    """

    def __init__(self, scope: Construct, construct_id: str, *, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description="Secrets Manager could not rotate a secret of this account",
            event_pattern=events.EventPattern(
                source=["aws.secretsmanager"],
                detail_type=["AWS Service Event via CloudTrail"],
                detail={"eventSource": ["secretsmanager.amazonaws.com"], "eventName": ["RotationFailed"]},
            ),
            targets=[AlertTopicTarget(topic)],
        )
