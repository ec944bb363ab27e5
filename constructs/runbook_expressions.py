"""The JSONata expressions of the migration runbook (constructs/migration_runbook.py), as plain Python.

No aws_cdk import: each expression is a bare JSONata string (or a function of the configuration that
returns one), so unit tests evaluate them with a JSONata engine without a synth. The state machine
wraps them in `{% ... %}` with `jsonata()`.

Variables the runbook assigns and these expressions read: `$action`, `$revision`, `$snapshotId`,
`$snapshotCreated`, `$otherExecutions`, `$database` (status, backupRetentionDays, latestRestorableTime),
`$snapshotStatus`, `$exitCode`, `$stoppedReason`, `$countsBefore`, `$counts`, `$comparison`,
`$failure` (error, cause); for the records (issue 13, item 7): `$requestedBy`, `$revisionsBefore`,
`$revisionsAfter`, `$maintenance` (requested, on, note), `$migrationStarted`, `$snapshotAvailableAt`,
`$migrationStartedAt`, `$migrationEndedAt`, `$evidenceKey`, `$evidence` (written, error),
`$appliedRecord` (written, parameter | reason), `$appliedCheck` (parameter, record).

Step Functions refuses a bare `$` (the context value) at the top of an expression, and moto anywhere:
iterations use `$map`/`$filter` with a named lambda parameter instead.
"""

from __future__ import annotations

import json
from typing import Any

from contract.revision import (
    EXACT_REVISION_RULE,
    REVISION_RULE,
    jsonata_exact_revision_check,
    jsonata_revision_check,
)

SNAPSHOT_PREFIX = "pre-migration-"


def jsonata(expression: str) -> str:
    """A JSONata expression as a States Language field value."""
    return "{% " + expression + " %}"


def failure(error: str, cause_expression: str, summary_expression: str | None = None) -> dict[str, Any]:
    """The `$failure` assignment of every failure path: a fixed error name, the cause (the execution's own
    cause: history only) and the summary the evidence record and the notice carry (default: the cause, for
    the runbook's own texts; never a service's raw cause)."""
    summary = cause_expression if summary_expression is None else summary_expression
    return {"failure": {"error": error, "cause": jsonata(cause_expression), "summary": jsonata(summary)}}


# --- input and plan -------------------------------------------------------------------------------
INPUT_ACTION = "$states.input.action"
INPUT_REVISION = "$states.input.revision"
INPUT_REQUESTED_BY = "$states.input.requestedBy"
INPUT_MAINTENANCE = "$states.input.maintenance"
# `requestedBy` (optional): the caller's ARN as `ops` read it from STS GetCallerIdentity. It is what the
# caller *states*; the authenticated identity is CloudTrail's StartExecution event of the execution.
REQUESTED_BY_PATTERN = r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[A-Za-z0-9+=,.@_\/-]{1,900}$"
REQUESTED_BY_CHARACTERS = r"[A-Za-z0-9+=,.@_:\/-]"
VALID_REQUESTED_BY = (
    f'($not($exists({INPUT_REQUESTED_BY})) or ($type({INPUT_REQUESTED_BY}) = "string" '
    f"and $length({INPUT_REQUESTED_BY}) <= 1000 "
    f'and $length($replace({INPUT_REQUESTED_BY}, /{REQUESTED_BY_CHARACTERS}/, "")) = 0 '
    f"and $contains({INPUT_REQUESTED_BY}, /{REQUESTED_BY_PATTERN}/)))"
)
VALID_MAINTENANCE = f'($not($exists({INPUT_MAINTENANCE})) or $type({INPUT_MAINTENANCE}) = "boolean")'


def valid_input(*, exact_revision: bool) -> str:
    """The input check: action, revision (the exact-id rule where `exact_revision`), requestedBy, maintenance."""
    revision_check = (jsonata_exact_revision_check if exact_revision else jsonata_revision_check)(
        INPUT_REVISION
    )
    return (
        f'$states.input.action in ["upgrade", "downgrade"] and {revision_check} and {VALID_REQUESTED_BY} '
        f"and {VALID_MAINTENANCE}"
    )


def invalid_input_cause(*, exact_revision: bool) -> str:
    rule = EXACT_REVISION_RULE if exact_revision else REVISION_RULE
    return (
        f'input must be {{"action": "upgrade" | "downgrade", "revision": "<{rule}>", '
        '"requestedBy": "<optional: the caller\'s IAM/STS ARN>", "maintenance": <optional: true | false>}'
    )


# The runbook of an environment without the exact-id rule (kept for the tests of the plain grammar).
VALID_INPUT = valid_input(exact_revision=False)
INVALID_INPUT_CAUSE = invalid_input_cause(exact_revision=False)
REQUESTED_BY = f"$exists({INPUT_REQUESTED_BY}) ? {INPUT_REQUESTED_BY} : null"
MAINTENANCE_PLAN = (
    f"{INPUT_MAINTENANCE} = true ? "
    '{"requested": true, "on": false, "note": "requested; not set yet"} : '
    '{"requested": false, "on": false, "note": "not requested"}'
)
# `pre-migration-<yyyy-mm-dd-hhmmss>-<execution name>`: the execution name is unique per state machine
# (90 days), so two executions in the same second get different snapshots. The name lower-cased, runs
# of anything but [a-z0-9] as one '-', no leading/trailing '-': RDS's identifier rules (letters, digits,
# single hyphens, starts with a letter, at most 255; here at most 14 + 17 + 1 + 80 characters).
SNAPSHOT_ID = (
    "($name := $replace($replace($lowercase($states.context.Execution.Name), /[^a-z0-9]+/, '-'), /^-+|-+$/, ''); "
    f"'{SNAPSHOT_PREFIX}' & $fromMillis($toMillis($states.context.Execution.StartTime), "
    "'[Y0001]-[M01]-[D01]-[H01][m01][s01]') & ($name = '' ? '' : '-' & $name))"
)


def evidence_key(environment_name: str) -> str:
    """`migrations/<env>/<YYYY>/<MM>/<execution name>.json` (UTC start time)."""
    return (
        f"'migrations/{environment_name}/' & $fromMillis($toMillis($states.context.Execution.StartTime), "
        "'[Y0001]/[M01]') & '/' & $states.context.Execution.Name & '.json'"
    )


# --- one execution at a time ----------------------------------------------------------------------
OWN_STATE_MACHINE = "$states.context.StateMachine.Id"
# The other RUNNING executions of this state machine (always an array).
OTHER_EXECUTIONS = "[$states.result.Executions[ExecutionArn != $states.context.Execution.Id].ExecutionArn]"
ANOTHER_EXECUTION_RUNNING = "$count($otherExecutions) > 0"
ANOTHER_EXECUTION_RUNNING_CAUSE = (
    "'another execution of this runbook is running (' & $join($otherExecutions, ', ') & '); "
    "nothing was changed: start again once it has ended'"
)

# --- failure path ---------------------------------------------------------------------------------
FAILURE_ERROR = "$failure.error"
FAILURE_CAUSE = "$failure.cause"
FAILURE_SUMMARY = "$failure.summary"
# The cause of a caught error: `<error name>: <cause>`. It becomes the execution's cause (history only: the
# history already holds it in the failed state's event).
CAUGHT_ERROR_CAUSE = "$states.errorOutput.Error & ': ' & $states.errorOutput.Cause"
# What the evidence record (Object Lock, six years) and the notice say about a caught error: its name (only
# the characters an error name has) and a fixed text. The service's cause is never copied there: for an
# ECS `.sync` failure it is DescribeTasks JSON with the container overrides (the validation SQL and the
# task-token environment variable); a runner's or another service's text may hold anything.
CAUGHT_ERROR_SUMMARY = (
    "$replace($substring($string($states.errorOutput.Error), 0, 128), /[^A-Za-z0-9._-]/, '') & "
    "' in state ' & $states.context.State.Name & ': the cause is not copied here; read it in the execution "
    "history (the failed event of this state) or the log of the task'"
)


def rollback_instructions(environment_name: str) -> str:
    """Plain text for the failure notice: how to roll back in this environment."""
    return (
        f"Rollback: if the migration ran and is reversible, run `python -m ops rollback --env {environment_name} "
        "--revision -1` (this runbook, action downgrade). If data integrity is compromised, restore the "
        "snapshot (or PITR to just before the start time) to a new instance, point the application at it "
        "and re-run the last good revision. README: Running a migration."
    )


def exact_rollback_instructions(environment_name: str) -> str:
    """Plain text for the failure notice where only exact revision ids are accepted (production)."""
    return (
        f"Rollback: if the migration ran and is reversible, run `python -m ops rollback --env {environment_name} "
        "--revision <revisionBefore, the full id above>` (this runbook, action downgrade; the revision must be "
        "recorded as applied in staging, which it is if staging ran it before). If data integrity is "
        "compromised, restore the snapshot (or PITR to just before the start time) to a new instance, point "
        "the application at it and re-run the last good revision. README: Running a migration."
    )


def maintenance_after_failure(environment_name: str) -> str:
    """What the failure notice says about maintenance mode."""
    return (
        "($maintenance.on and $maintenance.owned = true) ? 'ON: left on because the migration had started; "
        "check the database, then clear it "
        f"with `python -m ops maintenance --env {environment_name} --off`' : $maintenance.note"
    )


def failure_notice(environment_name: str, *, evidence_bucket: str, region: str, exact_revision: bool) -> str:
    """The failure notification's JSON text: what failed, the snapshot (if any), the evidence record, maintenance
    mode and how to roll back."""
    rollback = exact_rollback_instructions if exact_revision else rollback_instructions
    return (
        "$string({"
        f'"environment": "{environment_name}", "outcome": "failed", '
        '"action": $action, "revision": $revision, '
        '"snapshotId": $snapshotCreated ? $snapshotId : "none (failed before the snapshot)", '
        '"error": $failure.error, "cause": $substring($failure.summary, 0, 4000), '
        '"revisionBefore": $revisionsBefore, '
        '"startedAt": $states.context.Execution.StartTime, '
        '"execution": $states.context.Execution.Id, '
        f'"maintenanceMode": {maintenance_after_failure(environment_name)}, '
        f'"evidence": {evidence_link(evidence_bucket, region)}, '
        f'"rollback": {json.dumps(rollback(environment_name))}'
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
# The snapshot wait loop ends at this deadline (epoch ms, from the execution's start; PlanMigration assigns
# it): well below the execution timeout's 180 minutes for snapshot and checks, so a snapshot stuck in
# "creating" ends in SnapshotTimedOut with evidence and a notice, not in a silent TIMED_OUT.
SNAPSHOT_DEADLINE_MINUTES = 120
SNAPSHOT_DEADLINE = (
    f"$toMillis($states.context.Execution.StartTime) + {SNAPSHOT_DEADLINE_MINUTES * 60 * 1000}"
)
SNAPSHOT_TIMED_OUT = "$toMillis($states.context.State.EnteredTime) > $snapshotDeadline"
SNAPSHOT_TIMED_OUT_CAUSE = (
    "'snapshot ' & $snapshotId & ' is still ' & $string($snapshotStatus) & ' "
    f"{SNAPSHOT_DEADLINE_MINUTES} minutes after the start; the migration did not start. Check the snapshot "
    "in RDS, then start again'"
)
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
# The evidence record's and notice's version: ECS's stopped reason is the service's text (history only).
MIGRATION_FAILED_SUMMARY = (
    "'alembic ' & $action & ' ' & $revision & ' exited with status ' & $string($exitCode) & "
    "'; the stopped reason is in the execution history and the log of the task'"
)
NOW = "$now()"
MIGRATION_FAILED_CAUSE = (
    "'alembic ' & $action & ' ' & $revision & ' exited with status ' & $string($exitCode) & "
    "($stoppedReason != '' ? ' (' & $stoppedReason & ')' : '')"
)
TASK_TOKEN = "$states.context.Task.Token"  # noqa: S105 (the callback token of the run, not a secret)
VALIDATION_COUNTS = "$states.result.counts"
# `alembic current` as the runner read it (a list; absent from an older runner: null).
VALIDATION_REVISIONS = "$exists($states.result.revisions) ? $states.result.revisions : null"
SNAPSHOT_AVAILABLE_AT = '$states.result.DbSnapshots[0].Status = "available" ? $now() : null'


def counts_comparison(tolerance_percent: dict[str, float]) -> str:
    """`{query: {before, after, allowedDecreasePercent}}` from `$countsBefore`, `$counts` and the tolerances."""
    return (
        f"($tolerance := {json.dumps(tolerance_percent, sort_keys=True)}; "
        "$merge($map($keys($counts), function($q) { {$q: {"
        '"before": $lookup($countsBefore, $q), "after": $lookup($counts, $q), '
        '"allowedDecreasePercent": $lookup($tolerance, $q)} } })))'
    )


# The names of the queries whose count dropped by more than their tolerance (always an array).
DROPPED_COUNTS = (
    "[$filter($keys($comparison), function($q) { ($c := $lookup($comparison, $q); "
    "$c.after < $c.before * (1 - $c.allowedDecreasePercent / 100)) })]"
)
COUNTS_DROPPED = f"$count({DROPPED_COUNTS}) > 0"
COUNTS_DROPPED_CAUSE = (
    f"'validation counts dropped beyond their tolerance: ' & $join($map({DROPPED_COUNTS}, function($q) {{ "
    "$q & ' ' & $string($lookup($comparison, $q).before) & ' -> ' & $string($lookup($comparison, $q).after)"
    " }), ', ') & '. The migration itself completed; check the data before rolling back'"
)
EXECUTION_NAME = "$states.context.Execution.Name"


# --- records: applied revisions, maintenance mode, evidence ----------------------------------------
# The single revision the database reports after the migration (null with none or several heads).
REVISION_AFTER = "$count($revisionsAfter) = 1 ? $revisionsAfter[0] : null"
HAS_ONE_REVISION_AFTER = "$count($revisionsAfter) = 1"


def applied_record_name(path: str) -> str:
    """`<path>/<full revision id after>`: the applied-revision record of this execution."""
    return f"'{path}/' & $revisionsAfter[0]"


# The record's `state` is what production checks: "applied" here, "rolled-back" once a downgrade left it.
APPLIED_RECORD_VALUE = (
    '$string({"state": "applied", "execution": $states.context.Execution.Id, "action": $action, '
    '"requestedRevision": $revision, "appliedAt": $now()})'
)
# A downgrade that left exactly one revision (the one it came from; `alembic current` names only heads, so
# revisions between it and the target are not known here and keep their records: README, Running a migration).
LEFT_ONE_REVISION = (
    '$action = "downgrade" and $count($revisionsBefore) = 1 and '
    "$count($filter($revisionsAfter, function($r) { $r = $revisionsBefore[0] })) = 0"
)


def rolled_back_record_name(path: str) -> str:
    """`<path>/<the revision the downgrade came from>`: overwritten with state "rolled-back"."""
    return f"'{path}/' & $revisionsBefore[0]"


ROLLED_BACK_RECORD_VALUE = (
    '$string({"state": "rolled-back", "execution": $states.context.Execution.Id, "action": "downgrade", '
    '"requestedRevision": $revision, "rolledBackAt": $now()})'
)


def rolled_back_record_written(path: str) -> str:
    return f'$merge([$appliedRecord, {{"rolledBack": {rolled_back_record_name(path)}}}])'


ROLLED_BACK_RECORD_NOT_WRITTEN = (
    '$merge([$appliedRecord, {"rolledBack": "NOT WRITTEN (" & $states.errorOutput.Error & "): production would '
    'still accept the revision this downgrade left; overwrite its record by hand"}])'
)


def applied_record_written(path: str) -> str:
    return f'{{"written": true, "parameter": {applied_record_name(path)}}}'


APPLIED_RECORD_NOT_WRITTEN = (
    '{"written": false, "reason": "PutParameter failed: " & $states.errorOutput.Error & ". Run the runbook '
    'again with the same revision (a no-op migration) to record it"}'
)
APPLIED_RECORD_INITIAL = (
    '{"written": false, "reason": "not recorded: only a successful execution whose database reports exactly one '
    'revision records it"}'
)
APPLIED_RECORD_NOT_KEPT = '{"written": false, "reason": "this environment keeps no applied-revision records"}'


def applied_check_name(path: str) -> str:
    """The record production looks up: `<staging path>/<requested revision>`."""
    return f"'{path}/' & $revision"


# The other environment's record, parsed ($parse: Step Functions' function) and reduced to validated fields:
# the value was written in another account and may hold anything, so it never reaches the evidence, a notice,
# a variable or a state's output. Only a flat JSON object of plain strings that starts with a known state (as
# the runbook writes it) is parsed at all, so $parse cannot fail; anything else is state "invalid" (refused).
APPLIED_STATES = ["applied", "rolled-back"]
APPLIED_ACTIONS = ["upgrade", "downgrade"]
# `\x5c`: no backslash in a string value (a JSON escape); spelled so because a literal `\\` in a JSONata regex
# class ends the tokenizer's regular expression early.
APPLIED_RECORD_SHAPE = (
    r'^\{\s*"state"\s*:\s*"(applied|rolled-back)"(\s*,\s*"[A-Za-z]+"\s*:\s*("[^"\x5c]*"|null))*\s*\}$'
)


def applied_check_found(path: str) -> str:
    return (
        f'($p := $states.result.Parameter; $v := ($type($p.Value) = "string" and '
        f"$contains($p.Value, /{APPLIED_RECORD_SHAPE}/)) ? $parse($p.Value) : null; "
        '$s := $type($v) = "object" ? $lookup($v, "state") : null; '
        '$a := $type($v) = "object" ? $lookup($v, "action") : null; '
        "$d := $p.LastModifiedDate; "
        f'{{"parameter": {applied_check_name(path)}, '
        '"version": $type($p.Version) = "number" ? $p.Version : null, '
        '"lastModified": ($type($d) = "number" or ($type($d) = "string" and $contains($d, /^[0-9][0-9T:.+ Z-]{9,39}$/))) '
        "? $d : null, "
        f'"state": ($type($s) = "string" and $s in {json.dumps(APPLIED_STATES)}) ? $s : "invalid", '
        f'"action": ($type($a) = "string" and $a in {json.dumps(APPLIED_ACTIONS)}) ? $a : null}})'
    )


APPLIED_CHECK_UNREADABLE = '{"parameter": null, "state": "unreadable"}'
APPLIED_CHECK_PASSED = '$appliedCheck.state = "applied"'
APPLIED_CHECK_ROLLED_BACK = '$appliedCheck.state = "rolled-back"'


def revision_rolled_back_cause(first_environment: str, path: str) -> str:
    return (
        f"'revision ' & $revision & ' was rolled back in {first_environment} (record {path}/' & $revision & "
        f"' says rolled-back). Apply it in {first_environment} again through the runbook first'"
    )


def applied_record_invalid_cause(first_environment: str, path: str) -> str:
    return (
        f"'the record {path}/' & $revision & ' in {first_environment} is not a valid applied-revision record "
        f'(its value is not JSON with state "applied"). Apply the revision in {first_environment} through '
        "the runbook again to rewrite it'"
    )


def revision_not_applied_cause(first_environment: str, path: str) -> str:
    return (
        f"'revision ' & $revision & ' has not been applied in {first_environment}: no record {path}/' & $revision & "
        f"'. Apply it in {first_environment} through the runbook first (python -m ops migrate --env "
        f"{first_environment} --revision ' & $revision & ')'"
    )


# Only what this execution set is cleared: a flag that was already on (an operator's, `ops maintenance --on`,
# or another change's) stays on. `owned` is absent (false) unless SetMaintenanceMode set it.
MAINTENANCE_TO_CLEAR_AFTER_FAILURE = (
    "$maintenance.on and $maintenance.owned = true and $not($migrationStarted)"
)
MAINTENANCE_ON = "$maintenance.on and $maintenance.owned = true"
# ReadMaintenanceMode: the flag is on already (the value the runbook and `ops maintenance` write). Absent
# (ParameterNotFound) or anything else: off, so this execution sets it.
MAINTENANCE_ALREADY_ON = (
    '$type($states.result.Parameter.Value) = "string" and '
    r'$contains($states.result.Parameter.Value, /"state"\s*:\s*"on"/)'
)
MAINTENANCE_WAS_ON = "$maintenanceWasOn = true"
MAINTENANCE_LEFT_AS_IT_WAS = (
    '{"requested": true, "on": true, "owned": false, "note": "already ON before this execution (set by an '
    'operator or another change): not set and not cleared by this execution; whoever set it clears it"}'
)
MAINTENANCE_REQUESTED = "$maintenance.requested"


def maintenance_value(state: str) -> str:
    """The maintenance-mode parameter's JSON value."""
    return f'$string({{"state": "{state}", "execution": $states.context.Execution.Id, "since": $now()}})'


MAINTENANCE_SET = '{"requested": true, "on": true, "owned": true, "note": "ON since " & $now()}'
MAINTENANCE_CLEARED_AFTER_FAILURE = (
    '{"requested": true, "on": false, "note": "cleared (off): the migration had not started"}'
)
MAINTENANCE_CLEARED = (
    '{"requested": true, "on": false, "note": "cleared (off) after the migration succeeded"}'
)


def maintenance_not_cleared(environment_name: str) -> str:
    return (
        '{"requested": true, "on": true, "note": "ON: clearing it failed (" & $states.errorOutput.Error & '
        f'"); clear it with `python -m ops maintenance --env {environment_name} --off`"}}'
    )


EVIDENCE_WRITTEN = '{"written": true}'
EVIDENCE_NOT_WRITTEN = '{"written": false, "error": $states.errorOutput.Error}'
AUTHENTICATED_IDENTITY = (
    "'CloudTrail: the StartExecution event of ' & $states.context.Execution.Id & ' (userIdentity) is the "
    "authenticated caller; requestedBy is what the caller stated'"
)


def evidence_record(environment_name: str, *, outcome: str) -> str:
    """The evidence object: no PHI, no secret; the cause is the runbook's already-sanitised one.

    An object, not `$string(...)`: Step Functions serialises an object Body to JSON (a string Body may be
    JSON-encoded once more, as moto does).
    """
    result = (
        '{"outcome": "succeeded"}'
        if outcome == "succeeded"
        else '{"outcome": "failed", "error": $failure.error, "cause": $substring($failure.summary, 0, 4000)}'
    )
    return (
        "{"
        '"schema": "revenuepilot/migration-evidence/1", '
        f'"environment": "{environment_name}", '
        '"execution": {"arn": $states.context.Execution.Id, "name": $states.context.Execution.Name}, '
        '"action": $action, "requestedRevision": $revision, '
        '"alembicRevision": {"before": $revisionsBefore, "after": $revisionsAfter}, '
        '"snapshotId": $snapshotCreated ? $snapshotId : null, '
        '"validation": {"before": $countsBefore, "after": $counts, "comparison": $comparison}, '
        f'"operator": {{"requestedBy": $requestedBy, "authenticatedIdentity": {AUTHENTICATED_IDENTITY}}}, '
        '"timings": {"started": $states.context.Execution.StartTime, "snapshotAvailable": $snapshotAvailableAt, '
        '"migrationStarted": $migrationStartedAt, "migrationEnded": $migrationEndedAt, "ended": $now()}, '
        '"maintenanceMode": $maintenance, "appliedCheck": $appliedCheck, "appliedRecord": $appliedRecord, '
        f'"result": {result}'
        "}"
    )


def evidence_link(bucket: str, region: str) -> str:
    """The notification's link to the record: s3:// URI and console URL, or why it is missing."""
    return (
        f"$evidence.written ? {{\"s3Uri\": 's3://{bucket}/' & $evidenceKey, "
        f"\"console\": 'https://console.aws.amazon.com/s3/object/{bucket}?region={region}&bucketType=general&prefix=' "
        "& $encodeUrlComponent($evidenceKey)} : "
        "'NOT WRITTEN (' & $string($evidence.error) & '): the execution history and this notice are the record; "
        "tell the change record'"
    )


# --- success --------------------------------------------------------------------------------------
def success_summary(environment_name: str, *, evidence_bucket: str, region: str) -> str:
    """The runbook's output on success: what ran, the snapshot, the validation counts and the duration."""
    return (
        "{"
        f'"environment": "{environment_name}", "outcome": "succeeded", '
        '"action": $action, "revision": $revision, "snapshotId": $snapshotId, "validation": $counts, '
        '"validationBefore": $countsBefore, "durationSeconds": $round(($toMillis($states.context.State.EnteredTime) - '
        "$toMillis($states.context.Execution.StartTime)) / 1000), "
        '"alembicRevision": {"before": $revisionsBefore, "after": $revisionsAfter}, '
        '"maintenanceMode": $maintenance.note, "appliedRecord": $appliedRecord, '
        f'"evidence": {evidence_link(evidence_bucket, region)}, '
        '"execution": $states.context.Execution.Id'
        "}"
    )


def success_notice(environment_name: str, *, evidence_bucket: str, region: str) -> str:
    """The success notification's JSON text (the summary, pretty-printed)."""
    return (
        f"$string({success_summary(environment_name, evidence_bucket=evidence_bucket, region=region)}, true)"
    )
