"""The CloudWatch dashboard of one environment's database.

One row with the state of every alarm, then the instance's metrics (Performance Insights' DB load,
CPU, connections, memory and swap, free storage, latency, disk queue depth) and, when there are any,
the Lambda functions' errors. Default range: the last 24 hours.

The dashboard *is* the construct (a `cloudwatch.Dashboard`), so it keeps the construct path, and
therefore the logical id, it had when the alarms construct created it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds

from constructs import Construct
from constructs.database_alarms import free_storage_percent


class DatabaseDashboard(cloudwatch.Dashboard):
    """`revenuepilot-<env>-database`: alarm states and the metrics behind them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        instance: rds.IDatabaseInstance,
        allocated_storage_gib: int,
        period_seconds: int,
        alarms: Sequence[cloudwatch.IAlarm],
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(
            scope, construct_id, dashboard_name=dashboard_name, default_interval=cdk.Duration.hours(24)
        )
        period = cdk.Duration.seconds(period_seconds)

        def metric(name: str, statistic: str = "Average") -> cloudwatch.Metric:
            return instance.metric(name, statistic=statistic, period=period)

        self.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24))
        self.add_widgets(
            # Performance Insights publishes the DB load (average active sessions) to AWS/RDS.
            _graph(
                "DB load (Performance Insights)",
                metric("DBLoad"),
                metric("DBLoadCPU"),
                metric("DBLoadNonCPU"),
            ),
            _graph("CPU utilization (%)", metric("CPUUtilization")),
            _graph("Connections", metric("DatabaseConnections", "Maximum")),
        )
        self.add_widgets(
            _graph(
                "Freeable memory and swap (bytes)",
                metric("FreeableMemory", "Minimum"),
                metric("SwapUsage", "Maximum"),
            ),
            _graph(
                "Free storage (% of allocated)",
                free_storage_percent(instance, allocated_storage_gib=allocated_storage_gib, period=period),
            ),
            _graph("Read and write latency (s)", metric("ReadLatency"), metric("WriteLatency")),
        )
        self.add_widgets(_graph("Disk queue depth", metric("DiskQueueDepth")))
        if functions:
            self.add_widgets(
                _graph(
                    "Lambda errors",
                    *(f.metric_errors(period=period, statistic="Sum") for f in functions.values()),
                )
            )


def _graph(title: str, *metrics: cloudwatch.IMetric) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=list(metrics), width=8)
