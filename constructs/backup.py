"""A daily AWS Backup snapshot of the instance, outside the maintenance window.

Automated RDS backups (PITR) are configured on the instance itself; this plan adds the ops
guide's daily snapshot, kept in a CMK-encrypted vault whose recovery points cannot be deleted
by anyone but the retention rule.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds

from constructs import Construct
from constructs.compliance import acknowledge


class DailySnapshotPlan(Construct):
    """Vault + plan + selection. Exposes `vault` and `plan`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance: rds.IDatabaseInstance,
        encryption_key: kms.IKey,
        start_time_utc: str,
        retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        hour, minute = start_time_utc.split(":")
        self.vault = backup.BackupVault(
            self,
            "Vault",
            encryption_key=encryption_key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            block_recovery_point_deletion=True,
        )
        self.plan = backup.BackupPlan(self, "Plan", backup_vault=self.vault)
        self.plan.add_rule(
            backup.BackupPlanRule(
                rule_name="DailySnapshot",
                schedule_expression=events.Schedule.cron(hour=str(int(hour)), minute=str(int(minute))),
                start_window=cdk.Duration.hours(1),
                completion_window=cdk.Duration.hours(4),
                delete_after=cdk.Duration.days(retention_days),
            )
        )
        role = iam.Role(
            self,
            "SelectionRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup takes and restores snapshots of the database instance",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSBackupServiceRolePolicyForBackup"
                ),
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSBackupServiceRolePolicyForRestores"
                ),
            ],
        )
        for policy in ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"):
            acknowledge(
                role,
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}]",
                "AWS Backup's own service-role policy; AWS keeps it in step with what the service needs, and "
                "the selection limits it to this one instance.",
            )
        self.plan.add_selection(
            "Instance",
            resources=[backup.BackupResource.from_rds_database_instance(instance)],
            role=role,
            allow_restores=False,
        )
