"""Shipping the database's log groups to the central logging account.

Creates one subscription filter (all events) per log group to a CloudWatch Logs destination,
usually in another account. The destination's access policy must admit this account; no IAM
role is needed here (roles are only for Kinesis and Firehose in the same account).

Exposes `subscription_filters` (by log group key).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_logs as logs

from constructs import Construct


class CentralLogShipping(Construct):
    """Subscribes each log group of `log_groups` to `destination_arn`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_groups: Mapping[str, logs.ILogGroup],
        destination_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.subscription_filters: dict[str, logs.CfnSubscriptionFilter] = {
            # Keys are the database's log export names (code constants), so the ids are stable.
            key: logs.CfnSubscriptionFilter(
                self,
                f"{key.capitalize()}Logs",
                log_group_name=log_group.log_group_name,
                destination_arn=destination_arn,
                # Everything: the central account decides what to keep.
                filter_pattern="",
            )
            for key, log_group in log_groups.items()
        }
