"""The application's database runtime contract, published without credentials.

Creates one SSM String parameter per setting of the ops guide's "Runtime database environment
variables" table under `/revenuepilot/<env>/database/runtime/<NAME>` (plus the application secret's
ARN and name, from which the task builds DATABASE_URL, and the name of the maintenance-mode flag the
migration runbook sets), and ONE managed policy that lets a role
read exactly those parameters, the maintenance-mode flag, the application secret, and decrypt it through Secrets Manager.

Secure defaults: no secret value is ever a parameter (String parameters are plaintext); the
policy names every parameter ARN and the path itself, no wildcard; KMS use is limited to
`kms:ViaService` Secrets Manager of the region.

Exposes `path`, `parameters` (NAME -> parameter), `read_policy` and `parameter_arns`.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm

from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.secret_access import secret_read_statements
from contract.names import maintenance_parameter_name

SECRET_ARN_PARAMETER = "DATABASE_SECRET_ARN"  # noqa: S105 - a parameter name, not a secret
SECRET_NAME_PARAMETER = "DATABASE_SECRET_NAME"  # noqa: S105 - a parameter name, not a secret
# The NAME of the maintenance-mode flag (issue 13): the runbook and `ops maintenance` write the flag itself,
# CloudFormation never does (a deploy would reset it). Absent flag = off.
MAINTENANCE_PARAMETER = "MAINTENANCE_MODE_PARAMETER"
# NAME -> construct id (PascalCase literals: renaming one replaces the parameter).
CONSTRUCT_IDS: dict[str, str] = {
    "PGSSLMODE": "PgSslMode",
    "PGSSLROOTCERT": "PgSslRootCert",
    "PGCONNECT_TIMEOUT": "PgConnectTimeout",
    "DB_POOL_SIZE_WEB": "DbPoolSizeWeb",
    "DB_POOL_SIZE_WORKER": "DbPoolSizeWorker",
    "DB_MAX_OVERFLOW": "DbMaxOverflow",
    "DB_POOL_RECYCLE_SECONDS": "DbPoolRecycleSeconds",
    "DB_STATEMENT_TIMEOUT_MS": "DbStatementTimeoutMs",
    "DB_HEALTHCHECK_TIMEOUT_MS": "DbHealthcheckTimeoutMs",
    SECRET_ARN_PARAMETER: "DatabaseSecretArn",
    SECRET_NAME_PARAMETER: "DatabaseSecretName",
    MAINTENANCE_PARAMETER: "MaintenanceModeParameter",
}


def runtime_path(config: EnvironmentConfig) -> str:
    """`/revenuepilot/<env>/database/runtime`: every parameter of the contract lives directly under it."""
    return f"/revenuepilot/{config.name}/database/runtime"


def runtime_values(config: EnvironmentConfig) -> dict[str, str]:
    """The non-secret values by NAME (the secret's ARN is added at synth, it is a deploy-time value)."""
    runtime = config.runtime
    return {
        "PGSSLMODE": runtime.pgsslmode,
        "PGSSLROOTCERT": runtime.pgsslrootcert,
        "PGCONNECT_TIMEOUT": str(runtime.connect_timeout_seconds),
        "DB_POOL_SIZE_WEB": str(runtime.web_pool_size),
        "DB_POOL_SIZE_WORKER": str(runtime.worker_pool_size),
        "DB_MAX_OVERFLOW": str(runtime.max_overflow),
        "DB_POOL_RECYCLE_SECONDS": str(runtime.pool_recycle_seconds),
        "DB_STATEMENT_TIMEOUT_MS": str(runtime.statement_timeout_ms),
        "DB_HEALTHCHECK_TIMEOUT_MS": str(runtime.healthcheck_timeout_ms),
        SECRET_NAME_PARAMETER: config.database.application_secret_name,
        MAINTENANCE_PARAMETER: maintenance_parameter_name(config.name),
    }


class RuntimeContract(Construct):
    """SSM parameters of the runtime contract and the one policy that reads them and the app secret."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        app_secret: secretsmanager.ISecret,
        encryption_key: kms.IKey,
        readers: Sequence[iam.IRole] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.path = runtime_path(config)
        values = {**runtime_values(config), SECRET_ARN_PARAMETER: app_secret.secret_arn}
        self.parameters: dict[str, ssm.StringParameter] = {
            name: ssm.StringParameter(
                self,
                CONSTRUCT_IDS[name],
                parameter_name=f"{self.path}/{name}",
                string_value=values[name],
                description=f"RevenuePilot {config.name} database runtime setting {name} (not a secret)",
                tier=ssm.ParameterTier.STANDARD,
            )
            for name in CONSTRUCT_IDS
        }

        def parameter_arn(name: str) -> str:
            # Built from the literal name (not the parameter's Ref) so the policy reads as what it grants.
            return stack.format_arn(
                service="ssm",
                resource="parameter",
                resource_name=name.lstrip("/"),
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            )

        # GetParametersByPath is authorized on the path; GetParameter(s) on each parameter. The application
        # also reads the maintenance-mode flag the contract names (absent = off).
        self.parameter_arns = [
            parameter_arn(self.path),
            *(parameter_arn(f"{self.path}/{name}") for name in CONSTRUCT_IDS),
            parameter_arn(maintenance_parameter_name(config.name)),
        ]
        self.read_policy = iam.ManagedPolicy(
            self,
            "ReadPolicy",
            description=f"RevenuePilot {config.name} application tasks: read the database runtime contract "
            "and the application secret",
            statements=[
                iam.PolicyStatement(
                    actions=["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                    resources=self.parameter_arns,
                ),
                *secret_read_statements(app_secret, encryption_key),
            ],
            roles=list(readers),
        )
