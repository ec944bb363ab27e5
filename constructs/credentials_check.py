"""The periodic credentials check of the application secret (`lambdas/credentials_check`).

Creates a `DatabaseClientFunction` (Operations subnets, verify-full TLS against the RDS CA bundle in
its asset, CMK-encrypted log group, one customer-managed policy) that proves both AWSCURRENT logins
(`migration`, `app_user`), repairs the known half-finished rotation states, and publishes
`CredentialsCheckFailed` / `CredentialsRepaired` (namespace `METRIC_NAMESPACE`, dimension `Secret` =
the application secret's name) as embedded metric format log lines, so it needs no CloudWatch API
permission. An EventBridge rule runs it every `credentials_check_interval_minutes`.

It never overlaps itself: reserved concurrency 1, and neither EventBridge nor Lambda's asynchronous
invocation retries it (an event older than one interval is dropped, the next run is due). It can
meet a rotation in flight (a different function): the handler changes anything only under the
credentials advisory lock that the rotation steps and the bootstrap take too, on state re-read under
that lock, so it never races them.

Permissions: on the application secret what the rotation function has (Describe, Get, Put,
UpdateSecretVersionStage), GetSecretValue on the RDS-managed master secret, the database key only
through Secrets Manager. No GetRandomPassword: a repair completes or undoes a rotation, it never
invents passwords.

Exposes `function`, `role`, `policy` (the role's one customer-managed policy, watched by the IAM-change
alerts with the other secret readers), `rule`, `metric_namespace`, `secret_name`, `interval_minutes`, `metric_failed()`,
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
from contract.compliance import HIPAA_SECURITY, NIST_800_53_R5
from contract.names import (
    APP_SCHEMAS_ENV_VAR,
    APP_SECRET_ARN_ENV_VAR,
    CREDENTIALS_CHECK_FAILED_METRIC,
    CREDENTIALS_METRIC_NAMESPACE,
    CREDENTIALS_REPAIRED_METRIC,
    CREDENTIALS_SECRET_DIMENSION,
    DB_HOST_ENV_VAR,
    DB_PORT_ENV_VAR,
    MASTER_SECRET_ARN_ENV_VAR,
    METRIC_NAMESPACE_ENV_VAR,
    SERVICE_NAME_ENV_VAR,
)

SERVICE_NAME = "credentials-check"
TIMEOUT_MINUTES = 2


def endpoint_environment(database: PostgresDatabase) -> dict[str, str]:
    """`DB_HOST`/`DB_PORT` from the instance: the endpoint always follows the instance, never a secret."""
    return {DB_HOST_ENV_VAR: database.endpoint_address, DB_PORT_ENV_VAR: database.endpoint_port}


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
        self.metric_namespace = CREDENTIALS_METRIC_NAMESPACE
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
                APP_SECRET_ARN_ENV_VAR: app_secret.secret_arn,
                MASTER_SECRET_ARN_ENV_VAR: database.master_secret_arn,
                APP_SCHEMAS_ENV_VAR: ",".join(config.application_schemas),
                METRIC_NAMESPACE_ENV_VAR: CREDENTIALS_METRIC_NAMESPACE,
                SERVICE_NAME_ENV_VAR: SERVICE_NAME,
                **endpoint_environment(database),
            },
            timeout_minutes=TIMEOUT_MINUTES,
            reserved_concurrency=1,
        )
        self.function: lambda_.IFunction = check.function
        self.role: iam.IRole = check.role
        self.policy: iam.ManagedPolicy = check.policy
        reason = (
            "A failed scheduled check is never replayed: the next run is due within one interval, and a failure "
            "raises the CredentialsCheckFailed or Errors alarm, a missing run the NotRunning alarm."
        )
        for pack in (HIPAA_SECURITY, NIST_800_53_R5):
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
        return self._metric(CREDENTIALS_CHECK_FAILED_METRIC, period)

    def metric_repaired(self, period: cdk.Duration) -> cloudwatch.Metric:
        """Half-finished rotations the check completed or undid (Sum per period)."""
        return self._metric(CREDENTIALS_REPAIRED_METRIC, period)

    def _metric(self, name: str, period: cdk.Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.metric_namespace,
            metric_name=name,
            dimensions_map={CREDENTIALS_SECRET_DIMENSION: self.secret_name},
            statistic="Sum",
            period=period,
        )
