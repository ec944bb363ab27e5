"""EventBridge rules that send AWS Backup trouble to the alert topic (issue 15, item 4).

- job failures: backup, copy and restore jobs (restore tests run as restore jobs) that end FAILED,
  ABORTED or EXPIRED (backup), and restore tests whose validation failed;
- changes to what protects the backups: backup plans and selections, vault access policies, Vault
  Lock, vault and recovery-point deletion, restore testing plans. These come from CloudTrail
  ("AWS API Call via CloudTrail"), which EventBridge receives only while a trail logs in the
  account and region (README: Alerts).

Not narrowed to our vaults or plans: each environment has an account of its own. Exposes `rules`
(construct id -> rule).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.audit_alerts import AlertTopicTarget

# detail-type -> (the detail field holding the job's state, the states that are a failure). AWS Backup
# reports `state` for backup and copy jobs and `status` for restore jobs, as its API does.
JOB_FAILURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Backup Job State Change": ("state", ("FAILED", "ABORTED", "EXPIRED")),
    "Copy Job State Change": ("state", ("FAILED", "ABORTED")),
    "Restore Job State Change": ("status", ("FAILED", "ABORTED")),
}
# API calls that weaken or change backup protection.
PROTECTION_CHANGES = (
    "CreateBackupPlan",
    "UpdateBackupPlan",
    "DeleteBackupPlan",
    "CreateBackupSelection",
    "DeleteBackupSelection",
    "PutBackupVaultAccessPolicy",
    "DeleteBackupVaultAccessPolicy",
    "PutBackupVaultLockConfiguration",
    "DeleteBackupVaultLockConfiguration",
    "DeleteBackupVault",
    "DeleteRecoveryPoint",
    "UpdateRecoveryPointLifecycle",
    "DisassociateRecoveryPoint",
    "UpdateRestoreTestingPlan",
    "DeleteRestoreTestingPlan",
    "UpdateRestoreTestingSelection",
    "DeleteRestoreTestingSelection",
)


def _rule_specs() -> dict[str, tuple[str, dict[str, Any]]]:
    """Construct id -> (description, event pattern as CloudFormation sees it)."""
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        f"{detail_type.split()[0]}JobFailures": (
            f"AWS Backup: {detail_type.split()[0].lower()} job failed or was aborted",
            {"source": ["aws.backup"], "detail-type": [detail_type], "detail": {field: list(states)}},
        )
        for detail_type, (field, states) in JOB_FAILURES.items()
    }
    specs["RestoreTestValidationFailures"] = (
        "AWS Backup: a restore test's validation failed",
        {
            "source": ["aws.backup"],
            "detail-type": ["Restore Job State Change"],
            "detail": {"validationStatus": ["FAILED", "TIMED_OUT"]},
        },
    )
    specs["BackupProtectionChanges"] = (
        "AWS Backup: plans, selections, vault policies, vault lock or recovery points changed",
        {
            "source": ["aws.backup"],
            "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {"eventSource": ["backup.amazonaws.com"], "eventName": list(PROTECTION_CHANGES)},
        },
    )
    return specs


class BackupAlertRules(Construct):
    """One rule per spec, each publishing the matched event to `topic` as is."""

    def __init__(self, scope: Construct, construct_id: str, *, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        for rule_id, (description, pattern) in _rule_specs().items():
            self.rules[rule_id] = events.Rule(
                self,
                rule_id,
                description=description,
                event_pattern=events.EventPattern(
                    source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
                ),
                targets=[AlertTopicTarget(topic)],
            )
