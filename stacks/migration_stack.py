"""Migration stack: the migration task and the runbook state machine that drives it.

Stateless: everything here can be deleted and recreated. The database, its key and the
application secret come from the Data stack; the operations topic from the Monitoring stack.
Grants are made here, on the consumer side (security group ingress, secret read, key use).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from assets.migration_image import stage_build_context
from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.applied_revision_reader import AppliedRevisionReader
from constructs.audit_alerts import add_audit_alerts, role_policy_rules
from constructs.database import PostgresDatabase
from constructs.migration_runbook import AppliedCheck, MigrationRunbook
from constructs.migration_task import MigrationTask
from constructs.network import DatabaseNetwork
from contract.names import (
    applied_reader_role_name,
    evidence_bucket_name,
    runbook_role_name,
    state_machine_name,
)


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
        environments: Sequence[EnvironmentConfig] = (),
        **kwargs: Any,
    ) -> None:
        """`environments`: every configured environment, for the applied-revision check and its readers."""
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
        applied_check, reader_role_arns = _applied_revisions(config, environments, partition=self.partition)
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
            evidence_bucket_name=evidence_bucket_name(config.name, config.account, config.region),
            applied_check=applied_check,
            records_applied_revisions=bool(reader_role_arns),
        )
        if reader_role_arns:
            AppliedRevisionReader(
                self, "AppliedRevisionReader", environment_name=config.name, reader_role_arns=reader_role_arns
            )
        # The Monitoring stack cannot name this role (this stack depends on its topic): watch it here.
        add_audit_alerts(
            self,
            "Audit",
            cloudtrail_log_group_name=config.alerting.cloudtrail_log_group_name,
            rules=role_policy_rules(
                name="MigrationSecretReader",
                subject="the migration task role (reads the application secret)",
                roles=[self.task.task_role],
                policies=[self.task.secret_read_policy],
            ),
            topic=notification_topic,
        )
        cdk.CfnOutput(
            self,
            "RunbookStateMachineArn",
            value=self.runbook.state_machine.state_machine_arn,
            description="Start with `python -m ops migrate --env <env> --revision <rev>`",
        )
        cdk.CfnOutput(self, "MigrationLogGroupName", value=self.task.log_group.log_group_name)


def _applied_revisions(
    config: EnvironmentConfig, environments: Sequence[EnvironmentConfig], *, partition: str
) -> tuple[AppliedCheck | None, list[str]]:
    """This runbook's check of another environment's record, and the runbook roles that read this one's."""

    def role_arn(account: str, name: str) -> str:
        return f"arn:{partition}:iam::{account}:role/{name}"

    by_name = {environment.name: environment for environment in environments}
    check = None
    first_name = config.migration.require_applied_in
    if first_name is not None:
        first = by_name.get(first_name)
        if first is None:
            raise ValueError(
                f"{config.name}.migration.require_applied_in names {first_name!r}, which is not synthesized "
                "with it: the applied-revision check needs that environment's account"
            )
        check = AppliedCheck(
            environment_name=first.name,
            reader_role_arn=role_arn(first.account, applied_reader_role_name(first.name)),
        )
    readers = [
        role_arn(other.account, runbook_role_name(other.name))
        for other in environments
        if other.migration.require_applied_in == config.name
        and other.account in config.migration.applied_record_reader_accounts
    ]
    return check, readers
