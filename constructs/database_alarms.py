"""Metric alarms and the dashboard of one environment's database.

Creates alarms (alarm and OK actions to the alert topic) on CPU, freeable memory, free storage
as a percentage of the configured allocated storage, connections against max_connections,
read/write latency, disk queue depth and swap, one `Errors` alarm per Lambda function, and a
CloudWatch dashboard with those metrics and Performance Insights' DB load.

Exposes `alarms` (by construct id) and `dashboard`.
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
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        period = cdk.Duration.seconds(thresholds.period_seconds)
        self._thresholds = thresholds
        self._topic = topic
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def rds_metric(name: str, statistic: str = "Average") -> cloudwatch.Metric:
            return instance.metric(name, statistic=statistic, period=period)

        free_storage_percent = cloudwatch.MathExpression(
            expression=f"100 * free / {allocated_storage_gib * GIB}",
            using_metrics={"free": rds_metric("FreeStorageSpace", "Minimum")},
            label="Free storage (% of allocated)",
            period=period,
        )
        # With storage autoscaling the allocation can grow: the percentage is of the configured
        # size, so after growth this works as an absolute floor of free bytes.
        database_metrics: list[tuple[str, cloudwatch.IMetric, float, cloudwatch.ComparisonOperator, str]] = [
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
                free_storage_percent,
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
        for alarm_id, metric, threshold, comparison, description in database_metrics:
            # A database that stops reporting is itself an alarm.
            self._alarm(
                alarm_id, metric, threshold, comparison, description, cloudwatch.TreatMissingData.BREACHING
            )
        for function_id, function in functions.items():
            self._alarm(
                f"{function_id}Errors",
                function.metric_errors(period=period, statistic="Sum"),
                thresholds.lambda_errors_max,
                cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                f"{function_id}: at least {thresholds.lambda_errors_max} errors",
                # A function that did not run has no errors.
                cloudwatch.TreatMissingData.NOT_BREACHING,
                evaluation_periods=1,
            )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=cdk.Duration.hours(24),
        )

        def graph(title: str, *metrics: cloudwatch.IMetric) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=list(metrics), width=8)

        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24)
        )
        self.dashboard.add_widgets(
            # Performance Insights publishes the DB load (average active sessions) to AWS/RDS.
            graph(
                "DB load (Performance Insights)",
                rds_metric("DBLoad"),
                rds_metric("DBLoadCPU"),
                rds_metric("DBLoadNonCPU"),
            ),
            graph("CPU utilization (%)", rds_metric("CPUUtilization")),
            graph("Connections", rds_metric("DatabaseConnections", "Maximum")),
        )
        self.dashboard.add_widgets(
            graph(
                "Freeable memory and swap (bytes)",
                rds_metric("FreeableMemory", "Minimum"),
                rds_metric("SwapUsage", "Maximum"),
            ),
            graph("Free storage (% of allocated)", free_storage_percent),
            graph("Read and write latency (s)", rds_metric("ReadLatency"), rds_metric("WriteLatency")),
        )
        self.dashboard.add_widgets(graph("Disk queue depth", rds_metric("DiskQueueDepth")))
        if functions:
            self.dashboard.add_widgets(
                graph(
                    "Lambda errors",
                    *(f.metric_errors(period=period, statistic="Sum") for f in functions.values()),
                )
            )

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
