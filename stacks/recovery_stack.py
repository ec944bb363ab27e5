"""Recovery stack (issue 15): proving that backups restore. Stateless; not termination-protected.

AWS Backup alerts to the alert topic, and the restore testing plan with its validation function,
metrics, alarms and evidence (constructs/restore_testing.py).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns

from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.backup_alerts import BackupAlertRules


class RecoveryStack(cdk.Stack):
    """Exposes `backup_alerts`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.backup_alerts = BackupAlertRules(self, "BackupAlerts", topic=topic)
