"""Alarms on the periodic credentials check (constructs/credentials_check.py), to the alert topic.

Creates, each with alarm and OK actions on the topic:

- `CredentialsCheckFailed`: the check published `CredentialsCheckFailed` >= 1 in one interval: a
  login with AWSCURRENT fails and the check could not repair it. The check publishes 0 or 1 on every
  run, but a run can land in the neighbouring period (schedule jitter), so a missing datapoint is not
  a failure here; a silent check is the next alarm's, which tolerates one empty period.
- `CredentialsCheckNotRunning`: fewer than one invocation of the function in each of two consecutive
  intervals, missing data breaching: a check that stopped running (rule disabled, function deleted or
  throttled) alarms instead of looking healthy.

The function's `Errors` alarm comes with the other functions' (`DatabaseAlarms(functions=...)`).

Also adds a row to `dashboard` (when given): the check's failures, repairs and invocations.

Exposes `alarms` (by construct id).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.audit_alerts import alarm_to_topic
from constructs.credentials_check import CredentialsCheck


class CredentialsCheckAlarms(Construct):
    """`CredentialsCheckFailed` and `CredentialsCheckNotRunning`, both to `topic`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        check: CredentialsCheck,
        topic: sns.ITopic,
        dashboard: cloudwatch.Dashboard | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        period = cdk.Duration.minutes(check.interval_minutes)
        self.alarms: dict[str, cloudwatch.Alarm] = {
            "CredentialsCheckFailed": cloudwatch.Alarm(
                self,
                "CredentialsCheckFailed",
                metric=check.metric_failed(period),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=(
                    f"{check.secret_name}: a login with AWSCURRENT failed and the credentials check could not "
                    "repair it (README: Rotation, when a fault lasts)"
                ),
            ),
            "CredentialsCheckNotRunning": cloudwatch.Alarm(
                self,
                "CredentialsCheckNotRunning",
                metric=check.function.metric_invocations(period=period, statistic="Sum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=2,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
                alarm_description=(
                    f"{check.secret_name}: the credentials check has not run for two intervals of "
                    f"{check.interval_minutes} minutes"
                ),
            ),
        }
        for alarm in self.alarms.values():
            alarm_to_topic(alarm, topic)
        if dashboard is not None:
            dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Credentials check: failed and repaired",
                    left=[check.metric_failed(period), check.metric_repaired(period)],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="Credentials check: runs",
                    left=[check.function.metric_invocations(period=period, statistic="Sum")],
                    width=12,
                ),
            )
