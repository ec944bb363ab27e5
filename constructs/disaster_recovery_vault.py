"""The vault in the DR region that receives a copy of every daily snapshot.

A CMK of its own in that region (KMS keys are regional; AWS Backup re-encrypts the copy with the
destination vault's key), a fixed vault name (the primary region's backup plan addresses it by ARN:
CloudFormation cannot reference across regions), the same deletion-blocking access policy and Vault
Lock as the primary vault. The key also encrypts the application secret's replica in this region
(decision 0010), addressed by its alias from the primary region. Exposes `key`, `vault`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_kms as kms

from config.recovery import RecoveryConfig
from constructs import Construct
from constructs.backup import vault_lock_configuration
from constructs.encryption import EncryptionKey, KeyUsers


class DisasterRecoveryVault(Construct):
    """A CMK (rotation, RETAIN) and a locked vault named `vault_name`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vault_name: str,
        key_alias: str,
        description: str,
        recovery: RecoveryConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key: kms.IKey = EncryptionKey(
            self,
            "Key",
            alias=key_alias,
            description=description,
            # AWS Backup writes the copies; RDS stores the copied snapshots and restores from them; Secrets
            # Manager keeps the application secret's replica under it (decision 0010).
            users=KeyUsers(via_services=("rds", "backup", "secretsmanager")),
        ).key
        self.vault = backup.BackupVault(
            self,
            "Vault",
            backup_vault_name=vault_name,
            encryption_key=self.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            block_recovery_point_deletion=True,
            lock_configuration=vault_lock_configuration(recovery),
        )
