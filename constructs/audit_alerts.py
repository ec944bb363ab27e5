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
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs

from constructs import Construct

AUDIT_METRIC_NAMESPACE = "RevenuePilot/Audit"
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
# A request parameter that must be present, whatever its value.
PRESENT: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ApiCallMatch:
    """API calls by name, optionally narrowed by request parameters.

    `request_parameters` pairs a parameter with the values that match, or with PRESENT. A value that
    ends in `*` matches by prefix (a metric filter wildcard; EventBridge `prefix`).
    """

    event_names: tuple[str, ...]
    request_parameters: tuple[tuple[str, tuple[str, ...]], ...] = ()


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
                        logs.FilterPattern.string_value(f"$.requestParameters.{parameter}", "=", value)
                        for value in values
                    )
                )
                for parameter, values in match.request_parameters
            ]
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


def _event_value(value: str) -> str | dict[str, str]:
    """An EventBridge pattern value: a trailing `*` (a metric filter wildcard) becomes a prefix match."""
    if not cdk.Token.is_unresolved(value) and value.endswith("*"):
        return {"prefix": value[:-1]}
    return value


def audit_rules(
    *,
    encryption_key: kms.IKey,
    secrets: Sequence[secretsmanager.ISecret],
    secret_identifiers: Sequence[str] = (),
) -> list[AuditRule]:
    """The audited API calls: parameter changes, snapshot sharing and deletions of RDS resources
    in the account, and tampering with this environment's database key and secrets.

    `secrets` are matched by ARN and by name; `secret_identifiers` are matched as given (e.g. the
    RDS-managed master secret: its ARN, and `rds!db-*` because its name is chosen by RDS)."""
    rules = [*_rds_audit_rules(), _key_tampering_rule(encryption_key)]
    if secrets or secret_identifiers:
        rules.append(_secret_tampering_rule(secrets, secret_identifiers))
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


def _secret_tampering_rule(
    secrets: Sequence[secretsmanager.ISecret], secret_identifiers: Sequence[str]
) -> AuditRule:
    return AuditRule(
        construct_id="DatabaseSecretTampering",
        description="A database secret was deleted, given a resource policy or had its rotation cancelled",
        event_source="secretsmanager.amazonaws.com",
        # Callers name a secret by ARN or by name; a partial ARN is not matched.
        matches=(
            ApiCallMatch(
                event_names=("DeleteSecret", "PutResourcePolicy", "CancelRotateSecret"),
                request_parameters=(
                    (
                        "secretId",
                        (
                            *secret_identifiers,
                            *(
                                identifier
                                for secret in secrets
                                for identifier in (secret.secret_arn, secret.secret_name)
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


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
