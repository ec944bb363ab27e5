"""Metric alarms of one environment's database.

Creates alarms (alarm and OK actions to the alert topic) on CPU, freeable memory, free storage
as a percentage of the configured allocated storage, connections against max_connections,
read/write latency, disk queue depth and swap, and one `Errors` alarm per Lambda function.
The dashboard that shows them is constructs/database_dashboard.py.

Exposes `alarms` (by construct id).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns

from config.schema import DatabaseAlarmThresholds
from constructs import Construct
from constructs.audit_alerts import alarm_to_topic

MIB = 1024**2
GIB = 1024**3
_ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
_BELOW = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD


def free_storage_percent(
    instance: rds.IDatabaseInstance, *, allocated_storage_gib: int, period: cdk.Duration
) -> cloudwatch.MathExpression:
    """Free storage as a percentage of the configured allocation.

    With storage autoscaling the allocation can grow: the percentage is of the configured size,
    so after growth this works as an absolute floor of free bytes.
    """
    return cloudwatch.MathExpression(
        expression=f"100 * free / {allocated_storage_gib * GIB}",
        using_metrics={"free": instance.metric("FreeStorageSpace", statistic="Minimum", period=period)},
        label="Free storage (% of allocated)",
        period=period,
    )


AlarmSpec = tuple[str, cloudwatch.IMetric, float, cloudwatch.ComparisonOperator, str]


class DatabaseAlarms(Construct):
    """Alarms on the instance's CloudWatch metrics and on each function's errors."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance: rds.IDatabaseInstance,
        allocated_storage_gib: int,
        max_connections: int,
        thresholds: DatabaseAlarmThresholds,
        functions: Mapping[str, lambda_.IFunction],
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._instance = instance
        self._period = cdk.Duration.seconds(thresholds.period_seconds)
        self._thresholds = thresholds
        self._topic = topic
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        specs = self._database_alarm_specs(
            allocated_storage_gib=allocated_storage_gib, max_connections=max_connections
        )
        for alarm_id, metric, threshold, comparison, description in specs:
            # A database that stops reporting is itself an alarm.
            self._alarm(
                alarm_id, metric, threshold, comparison, description, cloudwatch.TreatMissingData.BREACHING
            )
        for function_id, function in functions.items():
            self._alarm(
                f"{function_id}Errors",
                function.metric_errors(period=self._period, statistic="Sum"),
                thresholds.lambda_errors_max,
                cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                f"{function_id}: at least {thresholds.lambda_errors_max} errors",
                # A function that did not run has no errors.
                cloudwatch.TreatMissingData.NOT_BREACHING,
                evaluation_periods=1,
            )

    def _metric(self, name: str, statistic: str = "Average") -> cloudwatch.Metric:
        return self._instance.metric(name, statistic=statistic, period=self._period)

    def _database_alarm_specs(self, *, allocated_storage_gib: int, max_connections: int) -> list[AlarmSpec]:
        """(alarm id, metric, threshold, comparison, description) of each instance alarm."""
        thresholds = self._thresholds
        rds_metric = self._metric
        return [
            (
                "CpuUtilization",
                rds_metric("CPUUtilization"),
                thresholds.cpu_utilization_percent,
                _ABOVE,
                f"CPU above {thresholds.cpu_utilization_percent}%",
            ),
            (
                "FreeableMemory",
                rds_metric("FreeableMemory", "Minimum"),
                thresholds.freeable_memory_min_mib * MIB,
                _BELOW,
                f"Freeable memory below {thresholds.freeable_memory_min_mib} MiB",
            ),
            (
                "FreeStorageSpace",
                free_storage_percent(
                    self._instance, allocated_storage_gib=allocated_storage_gib, period=self._period
                ),
                thresholds.free_storage_min_percent,
                _BELOW,
                f"Free storage below {thresholds.free_storage_min_percent}% of {allocated_storage_gib} GiB",
            ),
            (
                "DatabaseConnections",
                rds_metric("DatabaseConnections", "Maximum"),
                round(max_connections * thresholds.database_connections_percent / 100),
                _ABOVE,
                f"Connections above {thresholds.database_connections_percent}% of max_connections "
                f"({max_connections})",
            ),
            (
                "ReadLatency",
                rds_metric("ReadLatency"),
                thresholds.read_latency_max_seconds,
                _ABOVE,
                f"Read latency above {thresholds.read_latency_max_seconds} s",
            ),
            (
                "WriteLatency",
                rds_metric("WriteLatency"),
                thresholds.write_latency_max_seconds,
                _ABOVE,
                f"Write latency above {thresholds.write_latency_max_seconds} s",
            ),
            (
                "DiskQueueDepth",
                rds_metric("DiskQueueDepth"),
                thresholds.disk_queue_depth_max,
                _ABOVE,
                f"Disk queue depth above {thresholds.disk_queue_depth_max}",
            ),
            (
                "SwapUsage",
                rds_metric("SwapUsage", "Maximum"),
                thresholds.swap_usage_max_mib * MIB,
                _ABOVE,
                f"Swap usage above {thresholds.swap_usage_max_mib} MiB",
            ),
        ]

    def _alarm(
        self,
        alarm_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        treat_missing_data: cloudwatch.TreatMissingData,
        evaluation_periods: int | None = None,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            alarm_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods or self._thresholds.evaluation_periods,
            alarm_description=description,
            treat_missing_data=treat_missing_data,
        )
        alarm_to_topic(alarm, self._topic)
        self.alarms[alarm_id] = alarm
