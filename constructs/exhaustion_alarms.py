"""Alarms on finite database resources that run out slowly and then all at once.

- `MaximumUsedTransactionIds`: the age of the oldest unfrozen transaction ID. PostgreSQL refuses
  writes before it reaches 2^31 (transaction ID wraparound); the alarm leaves time to vacuum.
- `EbsByteBalance` (only for instance classes with burstable EBS bandwidth): the remaining
  percentage of the EBS throughput burst bucket; when it is empty, storage I/O drops to the baseline.

Both notify the alert topic on ALARM and OK. Exposes `alarms` (by construct id).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns

from config.schema import DatabaseAlarmThresholds
from constructs import Construct
from constructs.audit_alerts import alarm_to_topic


class ExhaustionAlarms(Construct):
    """Transaction ID wraparound and (with `burstable_ebs`) EBS byte balance alarms on one instance."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance: rds.IDatabaseInstance,
        thresholds: DatabaseAlarmThresholds,
        burstable_ebs: bool,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        period = cdk.Duration.seconds(thresholds.period_seconds)
        self.alarms: dict[str, cloudwatch.Alarm] = {
            "MaximumUsedTransactionIds": instance.metric(
                "MaximumUsedTransactionIDs", statistic="Maximum", period=period
            ).create_alarm(
                self,
                "MaximumUsedTransactionIds",
                alarm_description=(
                    f"Transaction IDs used above {thresholds.maximum_used_transaction_ids_max:,}: "
                    "vacuum (freeze) before wraparound stops writes"
                ),
                threshold=thresholds.maximum_used_transaction_ids_max,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=thresholds.evaluation_periods,
                # Like the other database metrics: a database that stops reporting is an alarm.
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
        }
        if burstable_ebs:
            self.alarms["EbsByteBalance"] = instance.metric(
                "EBSByteBalance%", statistic="Minimum", period=period
            ).create_alarm(
                self,
                "EbsByteBalance",
                alarm_description=(
                    f"EBS byte balance below {thresholds.ebs_byte_balance_min_percent}%: storage throughput "
                    "is about to fall back to the instance class's baseline"
                ),
                threshold=thresholds.ebs_byte_balance_min_percent,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=thresholds.evaluation_periods,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
        for alarm in self.alarms.values():
            alarm_to_topic(alarm, topic)
