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
    following = argv[0] in ("migrate", "rollback")
    status = main(
        [*argv, *(["--poll-seconds", "0.05"] if following else [])],
        clients=lambda name: boto3.client(name, region_name=STAGING.region),
        out=out,
    )
    return status, out.getvalue()


def _entered(output: str) -> list[str]:
    return re.findall(r"^\S+  -> (\w+)$", output, flags=re.MULTILINE)


def test_ops_migrate_runs_the_runbook_to_a_finished_execution(runbook: Runbook) -> None:
    runbook.create_instance()
    with runbook.playing_in_background(default_player(COUNTS)):
        status, output = _ops("migrate", "--env", "staging", "--revision", "head", "--maintenance")

    assert status == 0, output
    assert output.startswith(f"started arn:aws:states:{STAGING.region}:{STAGING.account}:execution:")
    entered = _entered(output)
    assert entered.index("SetMaintenanceMode") < entered.index("CreateSnapshot")
    assert entered[-12:] == [
        "RunUpgrade", "CheckMigrationExitCode", "ValidateData", "CompareCounts", "CheckCounts", "CheckRevisionAfter",
        "RecordAppliedRevision", "CheckRevisionLeft", "CheckMaintenanceAfterSuccess", "ClearMaintenanceMode", "WriteSuccessEvidence",
        "NotifySuccess",
    ]  # fmt: skip
    snapshot = runbook.snapshots()[0]["DBSnapshotIdentifier"]
    assert f"snapshot:   {snapshot} (available, " in output
    assert 'before:     {"encounters": 12, "finalized_notes": 7, "recent_suggestions": 3}' in output
    assert 'validation: {"encounters": 12, "finalized_notes": 7, "recent_suggestions": 3}' in output
    assert "SUCCEEDED: upgrade to head" in output
    assert [run.action for run in runbook.task_runs] == ["validate", "upgrade", "validate"]
    assert runbook.notifications()[0]["message"]["outcome"] == "succeeded"
    # ops put the caller (moto's STS identity) and the flag into the input; the record says who asked.
    (record,) = runbook.evidence().values()
    assert record["operator"]["requestedBy"] == boto3.client("sts").get_caller_identity()["Arn"]
    assert record["maintenanceMode"]["requested"] is True
    assert f"evidence:   s3://{runbook.evidence_bucket}/migrations/staging/" in output
    assert runbook.parameters()["/revenuepilot/staging/maintenance-mode"]["state"] == "off"


def test_ops_maintenance_sets_and_clears_the_flag(runbook: Runbook) -> None:
    assert _ops("maintenance", "--env", "staging", "--on")[0] == 0
    flag = runbook.parameters()["/revenuepilot/staging/maintenance-mode"]
    assert flag["state"] == "on" and "python -m ops maintenance" in flag["execution"]
    status, output = _ops("maintenance", "--env", "staging", "--off")
    assert status == 0 and "maintenance mode off in staging" in output
    assert runbook.parameters()["/revenuepilot/staging/maintenance-mode"]["state"] == "off"


def test_ops_refuses_a_symbolic_revision_for_production_before_calling_aws() -> None:
    out = StringIO()

    def no_aws(name: str) -> None:
        raise AssertionError(f"called {name}")

    status = main(["migrate", "--env", "production", "--revision", "head"], clients=no_aws, out=out)
    assert status == 2
    assert "production" in out.getvalue() and "full Alembic revision id" in out.getvalue()


def test_ops_rollback_reports_the_failure_snapshot_and_rollback_steps(runbook: Runbook) -> None:
    runbook.create_instance()
    player = default_player(COUNTS)
    with runbook.playing_in_background(
        lambda run: TaskOutcome(exit_code=3) if run.action == "downgrade" else player(run)
    ):
        status, output = _ops("rollback", "--env", "staging")

    assert status == 1, output
    assert _entered(output)[-6:] == [
        "CheckMigrationExitCode",
        "MigrationExitedNonZero",
        "CheckMaintenanceAfterFailure",
        "WriteFailureEvidence",
        "NotifyFailure",
        "RunbookFailed",
    ]
    assert "FAILED: MigrationFailed: alembic downgrade -1 exited with status 3" in output
    snapshot = runbook.snapshots()[0]["DBSnapshotIdentifier"]
    assert f"restore snapshot {snapshot} (available, " in output
    assert [run.command[-2:] for run in runbook.task_runs][1:] == [["downgrade", "-1"]]
    assert f"evidence:   s3://{runbook.evidence_bucket}/migrations/staging/" in output
