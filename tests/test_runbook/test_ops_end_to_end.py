"""`python -m ops migrate|rollback --env staging` against the locally executing runbook, to the end.

The CLI is unchanged (its `main`, with boto3 clients that moto serves); the synthesized state
machine runs in moto's interpreter and the ECS tasks are played by the test double in a thread.
"""

from __future__ import annotations

import re
from io import StringIO

import boto3

from config.environments import STAGING
from ops.cli import main
from tests.support.stepfunctions import Runbook, TaskOutcome, default_player

COUNTS = {"encounters": 12, "finalized_notes": 7, "recent_suggestions": 3}


def _ops(*argv: str) -> tuple[int, str]:
    out = StringIO()
    status = main(
        [*argv, "--poll-seconds", "0.05"],
        clients=lambda name: boto3.client(name, region_name=STAGING.region),
        out=out,
    )
    return status, out.getvalue()


def _entered(output: str) -> list[str]:
    return re.findall(r"^\S+  -> (\w+)$", output, flags=re.MULTILINE)


def test_ops_migrate_runs_the_runbook_to_a_finished_execution(runbook: Runbook) -> None:
    runbook.create_instance()
    with runbook.playing_in_background(default_player(COUNTS)):
        status, output = _ops("migrate", "--env", "staging", "--revision", "head")

    assert status == 0, output
    assert output.startswith(f"started arn:aws:states:{STAGING.region}:{STAGING.account}:execution:")
    assert _entered(output)[-6:] == [
        "RunUpgrade", "CheckMigrationExitCode", "ValidateData", "CompareCounts", "CheckCounts", "NotifySuccess",
    ]  # fmt: skip
    snapshot = runbook.snapshots()[0]["DBSnapshotIdentifier"]
    assert f"snapshot:   {snapshot} (available, " in output
    assert 'before:     {"encounters": 12, "finalized_notes": 7, "recent_suggestions": 3}' in output
    assert 'validation: {"encounters": 12, "finalized_notes": 7, "recent_suggestions": 3}' in output
    assert "SUCCEEDED: upgrade to head" in output
    assert [run.action for run in runbook.task_runs] == ["validate", "upgrade", "validate"]
    assert runbook.notifications()[0]["message"]["outcome"] == "succeeded"


def test_ops_rollback_reports_the_failure_snapshot_and_rollback_steps(runbook: Runbook) -> None:
    runbook.create_instance()
    player = default_player(COUNTS)
    with runbook.playing_in_background(
        lambda run: TaskOutcome(exit_code=3) if run.action == "downgrade" else player(run)
    ):
        status, output = _ops("rollback", "--env", "staging")

    assert status == 1, output
    assert _entered(output)[-4:] == [
        "CheckMigrationExitCode",
        "MigrationExitedNonZero",
        "NotifyFailure",
        "RunbookFailed",
    ]
    assert "FAILED: MigrationFailed: alembic downgrade -1 exited with status 3" in output
    snapshot = runbook.snapshots()[0]["DBSnapshotIdentifier"]
    assert f"restore snapshot {snapshot} (available, " in output
    assert [run.command[-2:] for run in runbook.task_runs][1:] == [["downgrade", "-1"]]
