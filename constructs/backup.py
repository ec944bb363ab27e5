"""A daily AWS Backup snapshot of the instance, outside the maintenance window, copied to a DR region.

Automated RDS backups (PITR) are configured on the instance itself; this plan adds the ops
guide's daily snapshot, kept in a CMK-encrypted vault whose recovery points cannot be deleted
by anyone but the retention rule: an access policy denies deletion and AWS Backup Vault Lock
(`vault_lock_configuration`) enforces the retention range (governance or compliance mode).

The selection role (`backup_role`) may take and copy backups and nothing else: it carries
`AWSBackupServiceRolePolicyForBackup` only, never `...ForRestores` (which allows
`rds:DeleteDBInstance` on `*`). Restores have their own roles (constructs/restore_testing.py,
`ops restore`). AWS Backup runs a plan's copy actions with the selection's role; there is no
per-copy-action role, so the copy permission lives on the backup role.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds

from config.recovery import RecoveryConfig
from constructs import Construct
from constructs.compliance import acknowledge


def vault_lock_configuration(recovery: RecoveryConfig) -> backup.LockConfiguration:
    """Governance mode is a lock without a grace period; compliance mode is one with it (AWS Backup)."""
    changeable = recovery.vault_lock_changeable_for_days
    return backup.LockConfiguration(
        min_retention=cdk.Duration.days(recovery.vault_lock_min_retention_days),
        max_retention=cdk.Duration.days(recovery.vault_lock_max_retention_days),
        changeable_for=None if changeable is None else cdk.Duration.days(changeable),
    )


@dataclass(frozen=True, kw_only=True)
class CopyDestination:
    """A vault in the DR region, addressed by ARN (a cross-region reference CloudFormation cannot resolve)."""

    vault_arn: str
    retention_days: int


class DailySnapshotPlan(Construct):
    """Vault (locked) + plan (daily, copied to `copy_to`) + selection. Exposes `vault`, `plan`, `backup_role`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance: rds.IDatabaseInstance,
        encryption_key: kms.IKey,
        start_time_utc: str,
        retention_days: int,
        recovery: RecoveryConfig,
        copy_to: CopyDestination | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        hour, minute = start_time_utc.split(":")
        self.vault = backup.BackupVault(
            self,
            "Vault",
            encryption_key=encryption_key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            block_recovery_point_deletion=True,
            lock_configuration=vault_lock_configuration(recovery),
        )
        copy_actions = []
        if copy_to is not None:
            copy_actions.append(
                backup.BackupPlanCopyActionProps(
                    destination_backup_vault=backup.BackupVault.from_backup_vault_arn(
                        self, "DisasterRecoveryVault", copy_to.vault_arn
                    ),
                    delete_after=cdk.Duration.days(copy_to.retention_days),
                )
            )
        self.plan = backup.BackupPlan(self, "Plan", backup_vault=self.vault)
        self.plan.add_rule(
            backup.BackupPlanRule(
                rule_name="DailySnapshot",
                schedule_expression=events.Schedule.cron(hour=str(int(hour)), minute=str(int(minute))),
                start_window=cdk.Duration.hours(1),
                completion_window=cdk.Duration.hours(4),
                delete_after=cdk.Duration.days(retention_days),
                copy_actions=copy_actions,
            )
        )
        self.backup_role = iam.Role(
            self,
            "SelectionRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup takes and copies snapshots of the database instance (no restores)",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSBackupServiceRolePolicyForBackup"
                ),
            ],
        )
        acknowledge(
            self.backup_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForBackup]",
            "AWS Backup's own backup policy (no restore or delete-instance rights); AWS keeps it in step with "
            "what snapshots and copies need, and the selection limits it to this one instance.",
        )
        self.plan.add_selection(
            "Instance",
            resources=[backup.BackupResource.from_rds_database_instance(instance)],
            role=self.backup_role,
            allow_restores=False,
        )
