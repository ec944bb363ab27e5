"""Data stack: everything stateful. Termination-protected; every resource in it is RETAIN or SNAPSHOT.

The database CMK, the PostgreSQL instance with its parameter and subnet groups and log groups,
the RDS-managed master secret's rotation schedule, the application credentials with their periodic
check, the daily snapshot plan, the migration evidence bucket (Object Lock) and its access log bucket.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager

from assets.lambda_bundle import RUNTIME as LAMBDA_RUNTIME
from assets.lambda_bundle import python_lambda_code
from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.application_credentials import ApplicationCredentials, SecretReplica
from constructs.backup import CopyDestination, DailySnapshotPlan
from constructs.credentials_check import CredentialsCheck
from constructs.database import PostgresDatabase
from constructs.encryption import EncryptionKey, KeyUsers
from constructs.evidence_bucket import EvidenceBucket
from constructs.master_secret_rotation import MasterSecretRotationSchedule
from constructs.network import DatabaseNetwork
from stacks.disaster_recovery_stack import dr_key_alias, dr_vault_arn


class DataStack(cdk.Stack):
    """Exposes `key`, `database`, `credentials`, `app_secret`, `credentials_check`, `daily_snapshot`,
    `migration_evidence`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        network: DatabaseNetwork,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        self.key = EncryptionKey(
            self,
            "DatabaseKey",
            alias=f"alias/revenuepilot/{config.name}/database",
            description=f"RevenuePilot {config.name}: database storage, snapshots, secrets, logs, alerts",
            users=KeyUsers(
                # s3: the migration evidence bucket (SSE-KMS with this key).
                via_services=("rds", "secretsmanager", "backup", "s3"),
                snapshot_copy_accounts=config.database.snapshot_copy_account_ids,
                cloudwatch_logs=True,
                # RDS events, CloudWatch alarms and EventBridge rules publish to the alert topic.
                publishing_services=(
                    "events.rds.amazonaws.com",
                    "cloudwatch.amazonaws.com",
                    "events.amazonaws.com",
                ),
            ),
        ).key
        self.database = PostgresDatabase(
            self,
            "Database",
            config=config.database,
            vpc=network.vpc,
            database_subnets=network.database_subnets,
            encryption_key=self.key,
        )
        self.daily_snapshot = DailySnapshotPlan(
            self,
            "DailySnapshot",
            instance=self.database.instance,
            encryption_key=self.key,
            start_time_utc=config.database.daily_snapshot_start,
            retention_days=config.database.daily_snapshot_retention_days,
            # Issue 15: vault lock, and a copy of every snapshot in the DR region.
            recovery=config.recovery,
            copy_to=CopyDestination(
                vault_arn=dr_vault_arn(config, partition=self.partition),
                retention_days=config.recovery.dr_copy_retention_days,
            ),
        )
        # RDS rotates the master password itself; only its schedule is ours (decision 0008).
        MasterSecretRotationSchedule(
            self,
            "MasterSecretRotation",
            master_secret_arn=self.database.master_secret_arn,
            rotation_days=config.database.master_secret_rotation_days,
            network=network,
            encryption_key=self.key,
            log_retention_days=config.database.log_retention_days,
        )
        self.credentials = ApplicationCredentials(
            self,
            "ApplicationCredentials",
            config=config.database,
            network=network,
            database=self.database,
            encryption_key=self.key,
            bootstrap_code=python_lambda_code(function_package="db_bootstrap", region=self.region),
            rotation_code=python_lambda_code(function_package="secret_rotation", region=self.region),
            lambda_runtime=LAMBDA_RUNTIME,
            # A regional failover needs the application credentials in the DR region, and the DR restore
            # tests log in with them (decision 0010): a replica under the DR CMK.
            replica=SecretReplica(region=config.recovery.dr_region, key_alias=dr_key_alias(config)),
        )
        self.app_secret: secretsmanager.ISecret = self.credentials.secret
        # Issue 13: the runbook's evidence records (Object Lock); the Migration stack writes by name.
        self.migration_evidence = EvidenceBucket(
            self,
            "MigrationEvidence",
            environment_name=config.name,
            encryption_key=self.key,
            retention_mode=config.migration.evidence_retention_mode,
            retention_days=config.migration.evidence_retention_days,
        )
        self.credentials_check = CredentialsCheck(
            self,
            "CredentialsCheck",
            config=config.database,
            network=network,
            database=self.database,
            app_secret=self.app_secret,
            encryption_key=self.key,
            code=python_lambda_code(function_package="credentials_check", region=self.region),
            runtime=LAMBDA_RUNTIME,
        )

        cdk.CfnOutput(
            self,
            "EndpointAddress",
            value=self.database.endpoint_address,
            description="PostgreSQL endpoint (TLS only, verify-full against rds-ca-rsa2048-g1)",
        )
        cdk.CfnOutput(self, "EndpointPort", value=self.database.endpoint_port, description="PostgreSQL port")
        cdk.CfnOutput(
            self,
            "MasterSecretArn",
            value=self.database.master_secret_arn,
            description="RDS-managed master credentials (read only by the credential Lambdas)",
        )
        cdk.CfnOutput(
            self,
            "ApplicationSecretArn",
            value=self.app_secret.secret_arn,
            description="Application secret (migration and app_user credentials): DATABASE_SECRET_ARN",
        )
        cdk.CfnOutput(
            self,
            "DatabaseSecurityGroupId",
            value=self.database.security_group.security_group_id,
            description="Grant consumers 5432 on this group from their own stack",
        )
        cdk.CfnOutput(
            self,
            "CredentialsCheckFunctionName",
            value=self.credentials_check.function.function_name,
            description="Invoke to prove both application logins now (the post-deploy smoke check does)",
        )
