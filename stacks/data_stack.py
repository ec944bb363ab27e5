"""Data stack: everything stateful. Termination-protected; every resource in it is RETAIN or SNAPSHOT.

The database CMK, the PostgreSQL instance with its parameter and subnet groups and log groups,
the master credentials, the daily snapshot plan.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager

from assets.lambda_bundle import RUNTIME as LAMBDA_RUNTIME
from assets.lambda_bundle import python_lambda_code
from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.application_credentials import ApplicationCredentials
from constructs.backup import CopyDestination, DailySnapshotPlan
from constructs.database import PostgresDatabase
from constructs.encryption import EncryptionKey, KeyUsers
from constructs.network import DatabaseNetwork
from contract.names import PASSWORD_EXCLUDED_CHARACTERS
from stacks.disaster_recovery_stack import dr_vault_arn

# The master password is rotated by AWS's single-user rotation application, often: only the
# bootstrap and rotation Lambdas ever use it.
MASTER_ROTATION_DAYS = 30


class DataStack(cdk.Stack):
    """Exposes `key`, `database`, `daily_snapshot`."""

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
                via_services=("rds", "secretsmanager", "backup"),
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
        self._rotate_master_secret(network)
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
        )
        self.app_secret: secretsmanager.ISecret = self.credentials.secret

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
            value=self.database.master_secret.secret_arn,
            description="Master credentials (used only by the bootstrap and rotation Lambdas)",
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

    def _rotate_master_secret(self, network: DatabaseNetwork) -> None:
        """AWS's hosted single-user rotation for the master secret, in the Operations subnets."""
        security_group = self.database.client_security_group(
            self,
            "MasterRotationSecurityGroup",
            vpc=network.vpc,
            description="Master secret rotation: PostgreSQL and AWS API endpoints only",
            rule_id="DatabaseIngressFromMasterRotation",
        )
        network.allow_https_to_endpoints(
            security_group, purpose="Secrets Manager through its interface endpoint"
        )
        self.database.master_secret.add_rotation_schedule(
            "MasterRotation",
            automatically_after=cdk.Duration.days(MASTER_ROTATION_DAYS),
            # Not at creation: the bootstrap logs in as master right then (it also copes with a
            # rotation in progress, but there is no reason to race it).
            rotate_immediately_on_update=False,
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                function_name=None,
                vpc=network.vpc,
                vpc_subnets=network.operations_subnets,
                security_groups=[security_group],
                exclude_characters=PASSWORD_EXCLUDED_CHARACTERS,
            ),
        )
