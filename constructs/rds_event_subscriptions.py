"""RDS event notifications of one environment, delivered to its alert topic.

Creates one `AWS::RDS::EventSubscription` per source type: the instance and the parameter group
are scoped to this environment's resources; DB security groups (EC2-Classic, none exist in a
VPC) and snapshots cannot be scoped usefully: without source ids a subscription covers every
such source of the account and region, which for snapshots includes AWS Backup's and manual ones.

Exposes `subscriptions` (source type -> the CloudFormation resource).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns

from constructs import Construct


class RdsEventSubscriptions(Construct):
    """Instance, parameter group, security group and snapshot events to `topic`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        instance: rds.IDatabaseInstance,
        parameter_group: rds.IParameterGroup,
        instance_event_categories: Sequence[str],
        parameter_group_event_categories: Sequence[str],
        security_group_event_categories: Sequence[str],
        snapshot_event_categories: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        parameter_group_name = parameter_group.db_parameter_group_ref.db_parameter_group_name
        self.subscriptions: dict[str, rds.CfnEventSubscription] = {
            "db-instance": self._subscribe(
                "InstanceEvents",
                topic,
                "db-instance",
                instance_event_categories,
                [instance.instance_identifier],
            ),
            "db-parameter-group": self._subscribe(
                "ParameterGroupEvents",
                topic,
                "db-parameter-group",
                parameter_group_event_categories,
                [parameter_group_name],
            ),
            # No source ids: DB security groups are EC2-Classic; ours is a VPC security group,
            # so this only reports on legacy groups should any appear in the account.
            "db-security-group": self._subscribe(
                "SecurityGroupEvents", topic, "db-security-group", security_group_event_categories, None
            ),
            # No source ids: snapshot names are chosen at creation (AWS Backup, operators), so
            # this covers every DB snapshot of the account and region.
            "db-snapshot": self._subscribe(
                "SnapshotEvents", topic, "db-snapshot", snapshot_event_categories, None
            ),
        }

    def _subscribe(
        self,
        construct_id: str,
        topic: sns.ITopic,
        source_type: str,
        categories: Sequence[str],
        source_ids: list[str] | None,
    ) -> rds.CfnEventSubscription:
        return rds.CfnEventSubscription(
            self,
            construct_id,
            sns_topic_arn=topic.topic_arn,
            source_type=source_type,
            event_categories=list(categories),
            source_ids=source_ids,
            enabled=True,
        )
