"""Migration stack: the migration task and the runbook state machine that drives it.

Stateless: everything here can be deleted and recreated. The database, its key and the
application secret come from the Data stack; the operations topic from the Monitoring stack.
Grants are made here, on the consumer side (security group ingress, secret read, key use).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from assets.migration_image import stage_build_context
from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.database import PostgresDatabase
from constructs.migration_runbook import MigrationRunbook
from constructs.migration_task import MigrationTask
from constructs.network import DatabaseNetwork
from contract.names import state_machine_name


class MigrationStack(cdk.Stack):
    """Composes `MigrationTask` and `MigrationRunbook`. Exposes `task`, `runbook`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        network: DatabaseNetwork,
        database: PostgresDatabase,
        app_secret: secretsmanager.ISecret,
        encryption_key: kms.IKey,
        notification_topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        runbook_arn = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name(config.name),
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self.task = MigrationTask(
            self,
            "MigrationTask",
            config=config.migration,
            environment_name=config.name,
            vpc=network.vpc,
            subnets=network.application_subnets,
            database=database,
            app_secret=app_secret,
            encryption_key=encryption_key,
            region=config.region,
            account=config.account,
            state_machine_arn=runbook_arn,
            build_context=stage_build_context(config.region),
        )
        self.runbook = MigrationRunbook(
            self,
            "Runbook",
            config=config.migration,
            environment_name=config.name,
            instance_identifier=config.database.instance_identifier,
            task=self.task,
            notification_topic=notification_topic,
            encryption_key=encryption_key,
            log_retention_days=config.migration.log_retention_days,
        )
        cdk.CfnOutput(
            self,
            "RunbookStateMachineArn",
            value=self.runbook.state_machine.state_machine_arn,
            description="Start with `python -m ops migrate --env <env> --revision <rev>`",
        )
        cdk.CfnOutput(self, "MigrationLogGroupName", value=self.task.log_group.log_group_name)
