"""The synthesized staging runbook, executed by moto's Step Functions interpreter, scenario by scenario.

The definition is the one in the session's cloud assembly (no extra synth); RDS, ECS, SNS and Step
Functions are moto's; the ECS tasks are played by a test double (tests/support/stepfunctions.py)
that sets the container's exit code or answers the validate run's task token. Each scenario
asserts the states entered, the snapshot (created and tagged, or not) and the notification.

What this cannot prove: IAM on the state machine role, TimeoutSeconds and heartbeats, AWS's own
JSONata engine (jsonata-python evaluates here), the exact error names and causes AWS reports for
service errors, the timestamp formats of the context object and of service responses, and ECS
`.sync` behaviour beyond "the task stopped with this exit code".
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.environments import STAGING
from tests.support.stepfunctions import (
    HEAD_REVISION,
    REVISION_BEFORE,
    Runbook,
    TaskOutcome,
    TaskRun,
    default_player,
)

COUNTS = {"encounters": 12, "finalized_notes": 7, "recent_suggestions": 3}
PRE_CHECKS = [
    "ValidateInput", "PlanMigration", "ListRunningExecutions", "CheckNoOtherExecution", "DescribeDatabase", "CheckPreconditions",
]  # fmt: skip
SNAPSHOT = [
    "MaintenanceRequested", "CreateSnapshot", "TagSnapshot", "WaitForSnapshot", "DescribeSnapshot", "CheckSnapshot",
]  # fmt: skip
FAILED = ["CheckMaintenanceAfterFailure", "WriteFailureEvidence", "NotifyFailure", "RunbookFailed"]
SUCCEEDED = [
    "CheckCounts", "CheckRevisionAfter", "RecordAppliedRevision", "CheckRevisionLeft", "CheckMaintenanceAfterSuccess",
    "WriteSuccessEvidence", "NotifySuccess",
]  # fmt: skip


def _only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def _assert_tagged_snapshot(runbook: Runbook, execution: dict[str, Any], action: str, revision: str) -> str:
    snapshot = _only(runbook.snapshots())
    assert snapshot["DBSnapshotIdentifier"].startswith("pre-migration-")
    assert snapshot["Status"] == "available"
    assert snapshot["Tags"] == {
        "revenuepilot:environment": "staging",  # copied from the instance (CopyTagsToSnapshot)
        "revenuepilot:purpose": "pre-migration",
        "revenuepilot:migration-action": action,
        "revenuepilot:migration-revision": revision,
        "revenuepilot:execution": execution["name"],
    }
    return str(snapshot["DBSnapshotIdentifier"])


def _succeeded(action: str) -> list[str]:
    """The success path; a downgrade also marks the revision it left as rolled back (staging's record)."""
    if action != "downgrade":
        return SUCCEEDED
    left = SUCCEEDED.index("CheckRevisionLeft") + 1
    return [*SUCCEEDED[:left], "RecordRolledBackRevision", *SUCCEEDED[left:]]


def _failure_notice(runbook: Runbook, error: str) -> dict[str, Any]:
    notice = _only(runbook.notifications())
    assert notice["subject"] == "RevenuePilot staging: database migration FAILED"
    message: dict[str, Any] = notice["message"]
    assert message["outcome"] == "failed"
    assert message["error"] == error
    assert "python -m ops rollback --env staging --revision -1" in message["rollback"]
    return message


def _migration_commands(runbook: Runbook) -> list[list[str]]:
    return [run.command[run.command.index(run.action) :] for run in runbook.task_runs]


@pytest.mark.parametrize(
    ("action", "revision", "task_state"),
    [("upgrade", "head", "RunUpgrade"), ("downgrade", "-1", "RunDowngrade")],
)
def test_migration_succeeds(runbook: Runbook, action: str, revision: str, task_state: str) -> None:
    runbook.create_instance()
    execution = runbook.run({"action": action, "revision": revision}, default_player(COUNTS))

    assert execution["status"] == "SUCCEEDED", execution
    arn = execution["executionArn"]
    assert runbook.states_entered(arn) == [
        *PRE_CHECKS, *SNAPSHOT, "ValidateBefore", "UpgradeOrDowngrade", task_state, "CheckMigrationExitCode",
        "ValidateData", "CompareCounts", *_succeeded(action),
    ]  # fmt: skip
    snapshot_id = _assert_tagged_snapshot(runbook, execution, action, revision)
    commands = _migration_commands(runbook)
    assert [commands[0][0], commands[1], commands[2][0]] == ["validate", [action, revision], "validate"]
    notice = _only(runbook.notifications())
    assert notice["subject"] == "RevenuePilot staging: database migration succeeded"
    key = f"migrations/staging/{execution['startDate']:%Y/%m}/{execution['name']}.json"
    bucket = runbook.evidence_bucket
    assert notice["message"] | {"durationSeconds": 0} == {
        "environment": "staging", "outcome": "succeeded", "action": action, "revision": revision,
        "snapshotId": snapshot_id, "validation": COUNTS, "validationBefore": COUNTS, "durationSeconds": 0,
        "execution": arn, "alembicRevision": {"before": [REVISION_BEFORE], "after": [HEAD_REVISION]},
        "maintenanceMode": "not requested",
        "appliedRecord": {"written": True, "parameter": f"/revenuepilot/staging/migration/applied/{HEAD_REVISION}"}
        | ({"rolledBack": f"/revenuepilot/staging/migration/applied/{REVISION_BEFORE}"} if action == "downgrade" else {}),
        "evidence": {
            "s3Uri": f"s3://{bucket}/{key}",
            "console": f"https://console.aws.amazon.com/s3/object/{bucket}?region=us-east-1&bucketType=general"
            f"&prefix={key.replace('/', '%2F')}",
        },
    }  # fmt: skip
    assert list(runbook.evidence()) == [key]
    assert runbook.recorder.waits == [("WaitForSnapshot", 30)]


def test_alembic_exit_status_fails_the_runbook_after_the_snapshot(runbook: Runbook) -> None:
    runbook.create_instance()
    execution = runbook.run(
        {"action": "upgrade", "revision": "ae1027a6acf"},
        lambda run: TaskOutcome(exit_code=1) if run.action == "upgrade" else TaskOutcome(counts=COUNTS),
    )

    assert execution["status"] == "FAILED"
    assert execution["error"] == "MigrationFailed"
    assert execution["cause"].startswith("alembic upgrade ae1027a6acf exited with status 1")
    assert runbook.states_entered(execution["executionArn"]) == [
        *PRE_CHECKS, *SNAPSHOT, "ValidateBefore", "UpgradeOrDowngrade", "RunUpgrade", "CheckMigrationExitCode",
        "MigrationExitedNonZero", *FAILED,
    ]  # fmt: skip
    snapshot_id = _assert_tagged_snapshot(runbook, execution, "upgrade", "ae1027a6acf")
    assert [run.action for run in runbook.task_runs] == [
        "validate",
        "upgrade",
    ]  # none after a failed migration
    assert _failure_notice(runbook, "MigrationFailed")["snapshotId"] == snapshot_id


def test_failed_validation_reports_the_runners_cause(runbook: Runbook) -> None:
    runbook.create_instance()
    cause = "validation query 'encounters' failed: SQLSTATE 42P01 (undefined_table)"
    validate_runs: list[TaskRun] = []

    def fail_second_validation(run: TaskRun) -> TaskOutcome:
        if run.action != "validate":
            return TaskOutcome()
        validate_runs.append(run)
        if len(validate_runs) == 1:
            return TaskOutcome(counts=COUNTS)
        return TaskOutcome(exit_code=1, failure=("ValidationFailed", cause))

    execution = runbook.run({"action": "upgrade", "revision": "head"}, fail_second_validation)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ValidationFailed"
    assert execution["cause"] == f"ValidationFailed: {cause}"
    assert runbook.states_entered(execution["executionArn"])[-6:] == [
        "CheckMigrationExitCode",
        "ValidateData",
        *FAILED,
    ]
    snapshot_id = _assert_tagged_snapshot(runbook, execution, "upgrade", "head")
    message = _failure_notice(runbook, "ValidationFailed")
    assert message["snapshotId"] == snapshot_id
    # The notice names the error, not the runner's text (that is in the execution history: the cause above).
    assert message["cause"].startswith("ValidationFailed in state ValidateData: the cause is not copied here")
    assert cause not in json.dumps(message)


@pytest.mark.parametrize(
    ("setup", "error", "cause_part"),
    [
        (
            {"backup_retention_days": 3},
            "BackupRetentionTooShort",
            "automated backups are kept 3 days; at least 7",
        ),
        ({"restore_lag_minutes": 60}, "PointInTimeRecoveryStale", "is older than 15 minutes"),
        ({"missing": True}, "DescribeDatabaseFailed", "DbInstanceNotFound"),
    ],
    ids=["backup-retention-too-short", "pitr-stale", "instance-missing"],
)
def test_pre_checks_stop_before_anything_changes(
    runbook: Runbook, setup: dict[str, Any], error: str, cause_part: str
) -> None:
    if not setup.get("missing"):
        runbook.create_instance(backup_retention_days=setup.get("backup_retention_days", 14))
    if "restore_lag_minutes" in setup:
        runbook.rds_controls.latest_restorable_time = datetime.now(UTC) - timedelta(
            minutes=setup["restore_lag_minutes"]
        )
    execution = runbook.run({"action": "upgrade", "revision": "head"}, default_player(COUNTS))

    assert execution["status"] == "FAILED"
    assert execution["error"] == error
    assert cause_part in execution["cause"]
    entered = runbook.states_entered(execution["executionArn"])
    assert entered[: len(PRE_CHECKS) - 1] == PRE_CHECKS[:-1]
    assert entered[-len(FAILED) :] == FAILED
    assert "CreateSnapshot" not in entered
    assert runbook.snapshots() == [] if not setup.get("missing") else True
    assert runbook.task_runs == []
    message = _failure_notice(runbook, error)
    assert message["snapshotId"] == "none (failed before the snapshot)"
    assert cause_part in message["cause"]


def test_snapshot_still_creating_is_polled_until_available(runbook: Runbook) -> None:
    runbook.create_instance()
    runbook.rds_controls.snapshot_creating_polls = 3
    execution = runbook.run({"action": "upgrade", "revision": "head"}, default_player(COUNTS))

    assert execution["status"] == "SUCCEEDED"
    entered = runbook.states_entered(execution["executionArn"])
    assert entered.count("WaitForSnapshot") == 4
    assert entered.count("DescribeSnapshot") == 4
    first_task = entered.index("RunUpgrade")
    assert entered[first_task - 3 : first_task] == ["CheckSnapshot", "ValidateBefore", "UpgradeOrDowngrade"]
    assert runbook.recorder.waits == [("WaitForSnapshot", 30)] * 4
    _assert_tagged_snapshot(runbook, execution, "upgrade", "head")
    assert _only(runbook.notifications())["message"]["outcome"] == "succeeded"


@pytest.mark.parametrize(
    "execution_input",
    [
        {"action": "drop", "revision": "head"},
        {"action": "upgrade", "revision": ""},
        {"action": "upgrade"},
        {"action": "upgrade", "revision": 7},
        {"action": "upgrade", "revision": "--help"},
        {"action": "upgrade", "revision": "-h"},
        {"action": "downgrade", "revision": "--sql"},
        {"action": "upgrade", "revision": "head\n"},
        {"action": "upgrade", "revision": 'head" --x "'},
    ],
    ids=[
        "unknown-action",
        "empty-revision",
        "no-revision",
        "number-revision",
        "--help",
        "-h",
        "--sql",
        "newline",
        "quote",
    ],
)
def test_invalid_input_fails_before_any_call(runbook: Runbook, execution_input: dict[str, Any]) -> None:
    runbook.create_instance()
    execution = runbook.run(execution_input, default_player(COUNTS))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidInput"
    assert runbook.states_entered(execution["executionArn"]) == ["ValidateInput", "InvalidInput"]
    assert runbook.snapshots() == []
    assert runbook.task_runs == []
    assert runbook.notifications() == []  # nothing happened: the operator sees the error at once


def _task_runs_of(runbook: Runbook, action: str) -> list[TaskRun]:
    return [run for run in runbook.task_runs if run.action == action]


def test_every_task_gets_the_same_secret_and_config_arguments(runbook: Runbook) -> None:
    runbook.create_instance()
    runbook.run({"action": "upgrade", "revision": "head"}, default_player(COUNTS))
    upgrade, validations = _only(_task_runs_of(runbook, "upgrade")), _task_runs_of(runbook, "validate")
    prefix = ["--alembic-config", STAGING.migration.alembic_config_path]
    assert len(validations) == 2 and validations[0].command == validations[1].command
    validate = validations[0]
    for run in (upgrade, validate):
        assert run.command[0] == "--secret-id"
        assert run.command[2:4] == prefix
    assert "SFN_TASK_TOKEN" in validate.environment
    assert upgrade.environment == {}


def test_second_execution_in_the_same_second_gets_its_own_snapshot(runbook: Runbook) -> None:
    runbook.create_instance()
    runbook.rds_controls.execution_start_time = datetime(2026, 12, 3, 8, 30, 15, 250000, tzinfo=UTC)
    first = runbook.run({"action": "upgrade", "revision": "head"}, default_player(COUNTS), name="upgrade-A")
    second = runbook.run({"action": "downgrade", "revision": "-1"}, default_player(COUNTS), name="Rollback_B")

    assert (first["status"], second["status"]) == ("SUCCEEDED", "SUCCEEDED"), second
    assert first["startDate"] == second["startDate"]
    snapshots = {s["DBSnapshotIdentifier"]: s["Tags"]["revenuepilot:execution"] for s in runbook.snapshots()}
    assert snapshots == {
        "pre-migration-2026-12-03-083015-upgrade-a": "upgrade-A",
        "pre-migration-2026-12-03-083015-rollback-b": "Rollback_B",
    }
    notices = runbook.notifications()
    assert [n["message"]["snapshotId"] for n in notices] == list(snapshots)


def test_snapshot_id_follows_rds_identifier_rules_for_any_execution_name(runbook: Runbook) -> None:
    runbook.create_instance()
    name = "--Weird..name__" + "x" * 65  # 80 characters, Step Functions' maximum
    execution = runbook.run({"action": "upgrade", "revision": "head"}, default_player(COUNTS), name=name)

    assert execution["status"] == "SUCCEEDED"
    snapshot_id = _only(runbook.snapshots())["DBSnapshotIdentifier"]
    assert snapshot_id.startswith("pre-migration-") and snapshot_id.endswith("-weird-name-" + "x" * 65)
    assert len(snapshot_id) <= 255
    assert "--" not in snapshot_id and re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", snapshot_id)


def test_second_execution_while_one_is_running_is_refused(runbook: Runbook) -> None:
    runbook.create_instance()
    held: list[TaskRun] = []

    def hold_first_migration(run: TaskRun) -> TaskOutcome | None:
        if run.action == "upgrade" and not held:
            held.append(run)
        return None if run in held else default_player(COUNTS)(run)

    first = runbook.start({"action": "upgrade", "revision": "head"}, name="first")
    runbook.drive(first, hold_first_migration, until=lambda: bool(held))
    second = runbook.run({"action": "downgrade", "revision": "-1"}, hold_first_migration, name="second")

    assert second["status"] == "FAILED"
    assert second["error"] == "ExecutionAlreadyRunning"
    assert first in second["cause"]
    assert runbook.states_entered(second["executionArn"]) == [
        "ValidateInput", "PlanMigration", "ListRunningExecutions", "CheckNoOtherExecution", "AnotherExecutionRunning", *FAILED,
    ]  # fmt: skip
    message = _failure_notice(runbook, "ExecutionAlreadyRunning")
    assert message["snapshotId"] == "none (failed before the snapshot)"
    assert len(runbook.snapshots()) == 1  # the first execution's only
    assert [run.action for run in runbook.task_runs] == ["validate", "upgrade"]

    held.clear()  # the first migration finishes; its execution goes on undisturbed
    assert runbook.drive(first, default_player(COUNTS))["status"] == "SUCCEEDED"
    assert [run.action for run in runbook.task_runs] == ["validate", "upgrade", "validate"]


def test_option_like_revision_never_reaches_alembic(runbook: Runbook) -> None:
    """Two lines of defence: the runbook's input check stops it before any task, and the runner's
    own command line (the double parses with it) refuses it too; before either, `--help` exited 0
    and the runbook reported "migration succeeded" with nothing migrated."""
    from tests.support.stepfunctions import runner_arguments_exit_code

    base = ["--secret-id", "arn", "--alembic-config", "alembic.ini"]
    assert runner_arguments_exit_code([*base, "upgrade", "--help"]) == 2  # refused before Alembic runs
    runbook.create_instance()
    execution = runbook.run({"action": "upgrade", "revision": "--help"}, default_player(COUNTS))
    assert execution["error"] == "InvalidInput"
    assert runbook.task_runs == []


def _counts_player(before: dict[str, int], after: dict[str, int]) -> Any:
    seen: list[TaskRun] = []

    def play(run: TaskRun) -> TaskOutcome:
        if run.action != "validate":
            return TaskOutcome()
        seen.append(run)
        return TaskOutcome(counts=before if len(seen) == 1 else after)

    return play


def test_counts_that_dropped_fail_the_runbook_after_the_migration(runbook: Runbook) -> None:
    runbook.create_instance()
    after = COUNTS | {"finalized_notes": 6}
    execution = runbook.run({"action": "upgrade", "revision": "head"}, _counts_player(COUNTS, after))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "CountsDropped"
    assert execution["cause"].startswith(
        "validation counts dropped beyond their tolerance: finalized_notes 7 -> 6."
    )
    assert runbook.states_entered(execution["executionArn"])[-8:] == [
        "ValidateData", "CompareCounts", "CheckCounts", "CountsDropped", *FAILED,
    ]  # fmt: skip
    snapshot_id = _assert_tagged_snapshot(runbook, execution, "upgrade", "head")
    assert _failure_notice(runbook, "CountsDropped")["snapshotId"] == snapshot_id


def test_counts_that_grew_or_held_pass(runbook: Runbook) -> None:
    runbook.create_instance()
    after = COUNTS | {"encounters": 13}
    execution = runbook.run({"action": "upgrade", "revision": "head"}, _counts_player(COUNTS, after))

    assert execution["status"] == "SUCCEEDED"
    message = _only(runbook.notifications())["message"]
    assert (message["validationBefore"], message["validation"]) == (COUNTS, after)
