"""DR stack (issue 15): the environment's vault in the DR region. Stateful: termination-protected, RETAIN.

Deployed to `config.recovery.dr_region` in the environment's account as `<Stage>-DisasterRecovery`,
before the Data stack (whose backup plan copies into it).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.disaster_recovery_vault import DisasterRecoveryVault


def dr_vault_name(config: EnvironmentConfig) -> str:
    """The DR vault's fixed name: the primary region's backup plan builds its ARN from it."""
    return f"revenuepilot-{config.name}-dr"


def dr_key_alias(config: EnvironmentConfig) -> str:
    """The DR CMK's alias: the primary region's Data stack names it for the application secret's replica."""
    return f"alias/revenuepilot/{config.name}/database-dr"


def dr_vault_arn(config: EnvironmentConfig, *, partition: str) -> str:
    return (
        f"arn:{partition}:backup:{config.recovery.dr_region}:{config.account}:"
        f"backup-vault:{dr_vault_name(config)}"
    )


class DisasterRecoveryStack(cdk.Stack):
    """Exposes `vault` (the `DisasterRecoveryVault`)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        self.vault = DisasterRecoveryVault(
            self,
            "DisasterRecoveryVault",
            vault_name=dr_vault_name(config),
            key_alias=dr_key_alias(config),
            description=f"RevenuePilot {config.name}: DR copies of the database snapshots",
            recovery=config.recovery,
        )
        cdk.CfnOutput(
            self, "VaultArn", value=self.vault.vault.backup_vault_arn, description="DR backup vault"
        )
