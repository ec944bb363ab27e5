"""The JSONata expressions of the migration runbook (constructs/migration_runbook.py), as plain Python.

No aws_cdk import: each expression is a bare JSONata string (or a function of the configuration that
returns one), so unit tests evaluate them with a JSONata engine without a synth. The state machine
wraps them in `{% ... %}` with `jsonata()`.

Variables the runbook assigns and these expressions read: `$action`, `$revision`, `$snapshotId`,
`$snapshotCreated`, `$database` (status, backupRetentionDays, latestRestorableTime), `$snapshotStatus`,
`$exitCode`, `$stoppedReason`, `$counts`, `$failure` (error, cause).
"""

from __future__ import annotations

import json
from typing import Any

SNAPSHOT_PREFIX = "pre-migration-"


def jsonata(expression: str) -> str:
    """A JSONata expression as a States Language field value."""
    return "{% " + expression + " %}"


def failure(error: str, cause_expression: str) -> dict[str, Any]:
    """The `$failure` assignment of every failure path: a fixed error name and a cause expression."""
    return {"failure": {"error": error, "cause": jsonata(cause_expression)}}


# --- input and plan -------------------------------------------------------------------------------
INPUT_ACTION = "$states.input.action"
INPUT_REVISION = "$states.input.revision"
VALID_INPUT = (
    '$states.input.action in ["upgrade", "downgrade"] and $type($states.input.revision) = "string" '
    "and $length($states.input.revision) >= 1 and $length($states.input.revision) <= 64"
)
# `pre-migration-<yyyy-mm-dd-hhmm>` of the execution's start time (UTC).
SNAPSHOT_ID = (
    f"'{SNAPSHOT_PREFIX}' & $fromMillis($toMillis($states.context.Execution.StartTime), "
    "'[Y0001]-[M01]-[D01]-[H01][m01]')"
)

# --- failure path ---------------------------------------------------------------------------------
FAILURE_ERROR = "$failure.error"
FAILURE_CAUSE = "$failure.cause"
# The cause of a caught error: `<error name>: <cause>`.
CAUGHT_ERROR_CAUSE = "$states.errorOutput.Error & ': ' & $states.errorOutput.Cause"


def rollback_instructions(environment_name: str) -> str:
    """Plain text for the failure notice: how to roll back in this environment."""
    return (
        f"Rollback: if the migration ran and is reversible, run `python -m ops rollback --env {environment_name} "
        "--revision -1` (this runbook, action downgrade). If data integrity is compromised, restore the "
        "snapshot (or PITR to just before the start time) to a new instance, point the application at it "
        "and re-run the last good revision. README: Running a migration."
    )


def failure_notice(environment_name: str) -> str:
    """The failure notification's JSON text: what failed, the snapshot (if any) and how to roll back."""
    return (
        "$string({"
        f'"environment": "{environment_name}", "outcome": "failed", '
        '"action": $action, "revision": $revision, '
        '"snapshotId": $snapshotCreated ? $snapshotId : "none (failed before the snapshot)", '
        '"error": $failure.error, "cause": $substring($failure.cause, 0, 4000), '
        '"startedAt": $states.context.Execution.StartTime, '
        '"execution": $states.context.Execution.Id, '
        f'"rollback": {json.dumps(rollback_instructions(environment_name))}'
        "}, true)"
    )


# --- pre-checks -----------------------------------------------------------------------------------
DATABASE_STATUS = (
    "$exists($states.result.DbInstances[0].DbInstanceStatus) ? $states.result.DbInstances[0].DbInstanceStatus "
    ': "unknown"'
)
DATABASE_BACKUP_RETENTION_DAYS = (
    "$exists($states.result.DbInstances[0].BackupRetentionPeriod) ? "
    "$states.result.DbInstances[0].BackupRetentionPeriod : 0"
)
DATABASE_LATEST_RESTORABLE_TIME = (
    "$exists($states.result.DbInstances[0].LatestRestorableTime) ? "
    "$states.result.DbInstances[0].LatestRestorableTime : null"
)
# Milliseconds between the latest restorable time (epoch seconds or ms, or an ISO timestamp) and now.
RESTORE_LAG_MS = (
    "($t := $database.latestRestorableTime; "
    '$ms := $type($t) = "number" ? ($t < 100000000000 ? $t * 1000 : $t) : $toMillis($t); '
    "$toMillis($states.context.State.EnteredTime) - $ms)"
)
DATABASE_NOT_AVAILABLE = '$database.status != "available"'


def database_not_available_cause(instance_identifier: str) -> str:
    return "'instance " + instance_identifier + " is ' & $database.status & ', not available'"


def backup_retention_too_short(minimum_days: int) -> str:
    return f"$database.backupRetentionDays < {minimum_days}"


def backup_retention_too_short_cause(minimum_days: int) -> str:
    return (
        f"'automated backups are kept ' & $string($database.backupRetentionDays) & ' days; at least "
        f"{minimum_days} are required'"
    )


def point_in_time_recovery_stale(max_lag_minutes: int) -> str:
    return f"$database.latestRestorableTime = null or {RESTORE_LAG_MS} > {max_lag_minutes * 60 * 1000}"


def point_in_time_recovery_stale_cause(max_lag_minutes: int) -> str:
    return (
        "'latest restorable time ' & $string($database.latestRestorableTime) & ' is older than "
        f"{max_lag_minutes} minutes: automated backups are not healthy'"
    )


# --- snapshot -------------------------------------------------------------------------------------
SNAPSHOT_ID_VARIABLE = "$snapshotId"
SNAPSHOT_STATUS = (
    '$exists($states.result.DbSnapshots[0].Status) ? $states.result.DbSnapshots[0].Status : "unknown"'
)
SNAPSHOT_AVAILABLE = '$snapshotStatus = "available"'
SNAPSHOT_CREATING = '$snapshotStatus = "creating"'
SNAPSHOT_FAILED_CAUSE = "'snapshot ' & $snapshotId & ' is ' & $string($snapshotStatus) & ', not available'"


def snapshot_arn(snapshot_arn_prefix: str) -> str:
    """The snapshot's ARN: `snapshot_arn_prefix` (`arn:...:snapshot:`) followed by `$snapshotId`."""
    return f"'{snapshot_arn_prefix}' & $snapshotId"


# --- migration and validation ---------------------------------------------------------------------
ACTION = "$action"
REVISION = "$revision"
DOWNGRADE_REQUESTED = '$action = "downgrade"'
MIGRATION_EXIT_CODE = (
    "$exists($states.result.Containers[0].ExitCode) ? $states.result.Containers[0].ExitCode : -1"
)
MIGRATION_STOPPED_REASON = '$exists($states.result.StoppedReason) ? $states.result.StoppedReason : ""'
MIGRATION_SUCCEEDED = "$exitCode = 0"
MIGRATION_FAILED_CAUSE = (
    "'alembic ' & $action & ' ' & $revision & ' exited with status ' & $string($exitCode) & "
    "($stoppedReason != '' ? ' (' & $stoppedReason & ')' : '')"
)
TASK_TOKEN = "$states.context.Task.Token"  # noqa: S105 (the callback token of the run, not a secret)
VALIDATION_COUNTS = "$states.result.counts"
EXECUTION_NAME = "$states.context.Execution.Name"


# --- success --------------------------------------------------------------------------------------
def success_summary(environment_name: str) -> str:
    """The runbook's output on success: what ran, the snapshot, the validation counts and the duration."""
    return (
        "{"
        f'"environment": "{environment_name}", "outcome": "succeeded", '
        '"action": $action, "revision": $revision, "snapshotId": $snapshotId, "validation": $counts, '
        '"durationSeconds": $round(($toMillis($states.context.State.EnteredTime) - '
        "$toMillis($states.context.Execution.StartTime)) / 1000), "
        '"execution": $states.context.Execution.Id'
        "}"
    )


def success_notice(environment_name: str) -> str:
    """The success notification's JSON text (the summary, pretty-printed)."""
    return f"$string({success_summary(environment_name)}, true)"
