"""The periodic credentials check of the application secret (`lambdas/credentials_check`).

Creates a `DatabaseClientFunction` (Operations subnets, verify-full TLS against the RDS CA bundle in
its asset, CMK-encrypted log group, one customer-managed policy) that proves both AWSCURRENT logins
(`migration`, `app_user`), repairs the known half-finished rotation states, and publishes
`CredentialsCheckFailed` / `CredentialsRepaired` (namespace `METRIC_NAMESPACE`, dimension `Secret` =
the application secret's name) as embedded metric format log lines, so it needs no CloudWatch API
permission. An EventBridge rule runs it every `credentials_check_interval_minutes`.

It never overlaps itself: reserved concurrency 1, and neither EventBridge nor Lambda's asynchronous
invocation retries it (an event older than one interval is dropped, the next run is due). It can
meet a rotation in flight (a different function): the handler leaves an AWSPENDING younger than the
rotation function's timeout alone and only verifies, so it never races the rotation's own steps.

Permissions: on the application secret what the rotation function has (Describe, Get, Put,
UpdateSecretVersionStage), GetSecretValue on the RDS-managed master secret, the database key only
through Secrets Manager. No GetRandomPassword: a repair completes or undoes a rotation, it never
invents passwords.

Exposes `function`, `rule`, `metric_namespace`, `secret_name`, `interval_minutes`, `metric_failed()`,
`metric_repaired()`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager

from config.schema import DatabaseConfig
from constructs import Construct
from constructs.checkov import skip_checkov
from constructs.compliance import acknowledge
from constructs.database import PostgresDatabase
from constructs.database_client_function import DatabaseClientFunction
from constructs.network import DatabaseNetwork

METRIC_NAMESPACE = "RevenuePilot/Credentials"
FAILED_METRIC = "CredentialsCheckFailed"
REPAIRED_METRIC = "CredentialsRepaired"
SECRET_DIMENSION = "Secret"  # noqa: S105 - a dimension name
# The handler's environment (names shared with lambdas/credentials_check).
ENV_APP_SECRET_ARN = "APP_SECRET_ARN"  # noqa: S105 - variable names, not secrets
ENV_MASTER_SECRET_ARN = "MASTER_SECRET_ARN"  # noqa: S105
ENV_APP_SCHEMAS = "APP_SCHEMAS"
ENV_METRIC_NAMESPACE = "METRIC_NAMESPACE"
ENV_DB_HOST = "DB_HOST"
ENV_DB_PORT = "DB_PORT"
SERVICE_NAME = "credentials-check"
TIMEOUT_MINUTES = 2


def endpoint_environment(database: PostgresDatabase) -> dict[str, str]:
    """`DB_HOST`/`DB_PORT` from the instance: the endpoint always follows the instance, never a secret."""
    return {ENV_DB_HOST: database.endpoint_address, ENV_DB_PORT: database.endpoint_port}


class CredentialsCheck(Construct):
    """Every few minutes: both AWSCURRENT logins proven, half-finished rotations repaired, metrics out."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DatabaseConfig,
        network: DatabaseNetwork,
        database: PostgresDatabase,
        app_secret: secretsmanager.ISecret,
        encryption_key: kms.IKey,
        code: lambda_.Code,
        runtime: lambda_.Runtime,
    ) -> None:
        super().__init__(scope, construct_id)
        region = cdk.Stack.of(self).region
        self.metric_namespace = METRIC_NAMESPACE
        self.secret_name = config.application_secret_name
        self.interval_minutes = config.credentials_check_interval_minutes

        check = DatabaseClientFunction(
            self,
            "Check",
            code=code,
            runtime=runtime,
            handler="lambdas.credentials_check.handler.lambda_handler",
            description="Proves both application logins and repairs half-finished rotations",
            network=network,
            database=database,
            encryption_key=encryption_key,
            log_retention_days=config.log_retention_days,
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                    ],
                    resources=[app_secret.secret_arn],
                ),
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=[database.master_secret_arn]
                ),
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                ),
            ],
            environment={
                ENV_APP_SECRET_ARN: app_secret.secret_arn,
                ENV_MASTER_SECRET_ARN: database.master_secret_arn,
                ENV_APP_SCHEMAS: ",".join(config.application_schemas),
                ENV_METRIC_NAMESPACE: METRIC_NAMESPACE,
                # Powertools Metrics reads its namespace from here when the handler does not pass one.
                "POWERTOOLS_METRICS_NAMESPACE": METRIC_NAMESPACE,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                **endpoint_environment(database),
            },
            timeout_minutes=TIMEOUT_MINUTES,
            reserved_concurrency=1,
        )
        self.function: lambda_.IFunction = check.function
        reason = (
            "A failed scheduled check is never replayed: the next run is due within one interval, and a failure "
            "raises the CredentialsCheckFailed or Errors alarm, a missing run the NotRunning alarm."
        )
        for pack in ("HIPAA.Security", "NIST.800.53.R5"):
            acknowledge(check.function, f"{pack}-LambdaDLQ", reason)
        skip_checkov(check.function, "CKV_AWS_116", reason)
        interval = cdk.Duration.minutes(self.interval_minutes)
        # A run that cannot start now (throttled by the reserved concurrency: another run is still going)
        # is dropped rather than queued; the next scheduled run is due within one interval.
        check.function.configure_async_invoke(retry_attempts=0, max_event_age=interval)
        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"Runs the credentials check every {self.interval_minutes} minutes",
            schedule=events.Schedule.rate(interval),
            targets=[targets.LambdaFunction(check.function, retry_attempts=0, max_event_age=interval)],
        )

    def metric_failed(self, period: cdk.Duration) -> cloudwatch.Metric:
        """Checks that found a login failing and could not repair it (Sum per period)."""
        return self._metric(FAILED_METRIC, period)

    def metric_repaired(self, period: cdk.Duration) -> cloudwatch.Metric:
        """Half-finished rotations the check completed or undid (Sum per period)."""
        return self._metric(REPAIRED_METRIC, period)

    def _metric(self, name: str, period: cdk.Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.metric_namespace,
            metric_name=name,
            dimensions_map={SECRET_DIMENSION: self.secret_name},
            statistic="Sum",
            period=period,
        )
