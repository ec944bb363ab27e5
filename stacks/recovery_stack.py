"""Recovery stack (issue 15): proving that backups restore. Stateless; not termination-protected.

AWS Backup alerts to the alert topic, and the restore testing plan with its validation function,
metrics, alarms and evidence (constructs/restore_testing.py).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from assets.lambda_bundle import RUNTIME as LAMBDA_RUNTIME
from assets.lambda_bundle import python_lambda_code
from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.backup_alerts import BackupAlertRules
from constructs.database import PostgresDatabase
from constructs.network import DatabaseNetwork
from constructs.restore_testing import RestoreTesting, primary_restore_tests


class RecoveryStack(cdk.Stack):
    """Exposes `backup_alerts`, `restore_testing`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        topic: sns.ITopic,
        network: DatabaseNetwork,
        database: PostgresDatabase,
        vault: backup.IBackupVault,
        encryption_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.backup_alerts = BackupAlertRules(self, "BackupAlerts", topic=topic)
        self.restore_testing = RestoreTesting(
            self,
            "RestoreTesting",
            config=config,
            tests=primary_restore_tests(config, database=database, vault=vault, key=encryption_key),
            network=network,
            database=database,
            encryption_key=encryption_key,
            topic=topic,
            code=python_lambda_code(function_package="restore_validation", region=self.region),
            runtime=LAMBDA_RUNTIME,
        )
        cdk.CfnOutput(
            self,
            "RestoreValidationFunctionName",
            value=self.restore_testing.validation.function.function_name,
            description="python -m ops restore invokes it to validate a restored instance from inside the VPC",
        )
