"""The runbook's records, executed (issue 13, item 7): the evidence object per execution, staging's
applied-revision record and production's check of it, maintenance mode.

Same harness as test_runbook_execution.py (moto executing the synthesized definitions, the ECS tasks
played by the double), with moto's S3 (an Object Lock bucket with a default retention, so a PUT
without an integrity checksum would be refused) and SSM.

What this cannot prove: moto's interpreter ignores a task's `Credentials`, so production's read of
staging's record runs in one account here (both runbooks are deployed into the same moto account);
the role ARN in production's definition, the reader role's trust (only production's runbook role)
and its GetParameter-only policy are template tests (tests/test_infrastructure/test_runbook_records_template.py).
Nor: IAM on the roles, KMS, S3 Object Lock COMPLIANCE semantics, AWS's own JSONata engine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.stepfunctions import (
    HEAD_REVISION,
    REVISION_BEFORE,
    Runbook,
    TaskOutcome,
    TaskRun,
    default_player,
)

COUNTS = {"encounters": 12, "finalized_notes": 7, "recent_suggestions": 3}
# PHI-like values planted where a careless runbook could pick them up (the input, the instance's tags).
PLANTED = "Jane Roe DOB 1970-01-01 MRN 889977"
MAINTENANCE = "/revenuepilot/staging/maintenance-mode"
APPLIED = "/revenuepilot/staging/migration/applied"
EXACT = "ae1027a6acf0"


def _only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def _plant(runbook: Runbook) -> None:
    runbook.create_instance()
    arn = runbook.client("rds").describe_db_instances()["DBInstances"][0]["DBInstanceArn"]
    runbook.client("rds").add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "note", "Value": PLANTED}])


def _record(runbook: Runbook, execution: dict[str, Any]) -> dict[str, Any]:
    env = runbook.stage_id.lower()
    key = f"migrations/{env}/{execution['startDate']:%Y/%m}/{execution['name']}.json"
    records = runbook.evidence()
    assert list(records) == [key]
    body = json.dumps(records[key])
    assert PLANTED not in body and "MRN" not in body
    return records[key]


def _notice(runbook: Runbook) -> dict[str, Any]:
    message: dict[str, Any] = _only(runbook.notifications())["message"]
    assert PLANTED not in json.dumps(message)
    return message


def _maintenance_at_migration(seen: list[Any], runbook: Runbook, player: Any) -> Any:
    """`player`, recording the maintenance flag's state when the migration task runs."""

    def play(run: TaskRun) -> Any:
        if run.action in ("upgrade", "downgrade"):
            seen.append(runbook.parameters().get(MAINTENANCE, {}).get("state"))
        return player(run)

    return play


def _failing_validation(which: int) -> Any:
    validations: list[TaskRun] = []

    def play(run: TaskRun) -> TaskOutcome:
        if run.action != "validate":
            return TaskOutcome()
        validations.append(run)
        if len(validations) == which:
            return TaskOutcome(
                exit_code=1, failure=("ValidationFailed", "validation query 'x' failed: SQLSTATE 42P01")
            )
        return TaskOutcome(counts=COUNTS, revisions=[REVISION_BEFORE])

    return play


def test_a_successful_execution_leaves_a_complete_record_and_clears_maintenance(runbook: Runbook) -> None:
    _plant(runbook)
    seen: list[Any] = []
    execution = runbook.run(
        {
            "action": "upgrade",
            "revision": EXACT,
            "requestedBy": "arn:aws:sts::111111111111:assumed-role/Operator/jane.operator",
            "maintenance": True,
            "note": PLANTED,
        },
        _maintenance_at_migration(seen, runbook, default_player(COUNTS)),
    )

    assert execution["status"] == "SUCCEEDED", execution
    entered = runbook.states_entered(execution["executionArn"])
    assert entered.index("SetMaintenanceMode") < entered.index("CreateSnapshot")
    assert entered[-6:] == [
        "RecordAppliedRevision", "CheckRevisionLeft", "CheckMaintenanceAfterSuccess", "ClearMaintenanceMode", "WriteSuccessEvidence",
        "NotifySuccess",
    ]  # fmt: skip
    assert seen == ["on"]  # the application was in maintenance while Alembic ran
    record = _record(runbook, execution)
    assert record["environment"] == "staging" and record["action"] == "upgrade"
    assert record["requestedRevision"] == EXACT
    assert record["alembicRevision"] == {"before": [REVISION_BEFORE], "after": [EXACT]}
    assert record["snapshotId"] == _only(runbook.snapshots())["DBSnapshotIdentifier"]
    assert record["validation"]["before"] == record["validation"]["after"] == COUNTS
    assert record["validation"]["comparison"]["encounters"] == {
        "before": 12,
        "after": 12,
        "allowedDecreasePercent": 0,
    }
    assert (
        record["operator"]["requestedBy"] == "arn:aws:sts::111111111111:assumed-role/Operator/jane.operator"
    )
    assert "StartExecution event" in record["operator"]["authenticatedIdentity"]
    timings = record["timings"]
    assert all(
        timings[k] for k in ("started", "snapshotAvailable", "migrationStarted", "migrationEnded", "ended")
    )
    assert (
        timings["snapshotAvailable"]
        <= timings["migrationStarted"]
        <= timings["migrationEnded"]
        <= timings["ended"]
    )
    assert record["result"] == {"outcome": "succeeded"}
    assert record["maintenanceMode"]["on"] is False
    # Staging records the applied revision (what production checks); maintenance is off again.
    parameters = runbook.parameters()
    assert parameters[f"{APPLIED}/{EXACT}"]["action"] == "upgrade"
    assert parameters[f"{APPLIED}/{EXACT}"]["state"] == "applied"
    assert parameters[f"{APPLIED}/{EXACT}"]["execution"] == execution["executionArn"]
    assert parameters[MAINTENANCE]["state"] == "off"
    notice = _notice(runbook)
    assert notice["evidence"]["s3Uri"].endswith(f"/{execution['name']}.json")
    assert notice["maintenanceMode"] == "cleared (off) after the migration succeeded"


def _drop_after_migration() -> Any:
    validations: list[TaskRun] = []

    def play(run: TaskRun) -> TaskOutcome:
        if run.action != "validate":
            return TaskOutcome()
        validations.append(run)
        counts = COUNTS if len(validations) == 1 else COUNTS | {"finalized_notes": 6}
        return TaskOutcome(
            counts=counts, revisions=[REVISION_BEFORE if len(validations) == 1 else HEAD_REVISION]
        )

    return play


FAILURES = {
    # name: (input changes, backup retention, player, error, maintenance flag at the end, what the notice says)
    "pre-check": ({}, 3, lambda: default_player(COUNTS), "BackupRetentionTooShort", None, "not requested"),
    "validation-before": (
        {"maintenance": True}, 14, lambda: _failing_validation(1), "ValidationFailed", "off", "cleared",
    ),
    "migration-non-zero": (
        {"maintenance": True}, 14, lambda: default_player(COUNTS, migration_exit_code=1), "MigrationFailed", "on",
        "ON: left on because the migration had started",
    ),
    "counts-dropped": ({}, 14, _drop_after_migration, "CountsDropped", None, "not requested"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FAILURES))
def test_every_failure_class_leaves_a_record_and_handles_maintenance(runbook: Runbook, case: str) -> None:
    changes, retention, make_player, error, flag, maintenance_note = FAILURES[case]
    runbook.create_instance(backup_retention_days=retention)
    execution = runbook.run(
        {"action": "upgrade", "revision": "head", "note": PLANTED, **changes}, make_player()
    )

    assert (execution["status"], execution["error"]) == ("FAILED", error)
    entered = runbook.states_entered(execution["executionArn"])
    cleared = ["ClearMaintenanceAfterFailure"] if flag == "off" else []
    assert entered[-4 - len(cleared) :] == [
        "CheckMaintenanceAfterFailure", *cleared, "WriteFailureEvidence", "NotifyFailure", "RunbookFailed",
    ]  # fmt: skip
    record = _record(runbook, execution)
    assert record["result"]["outcome"] == "failed" and record["result"]["error"] == error
    # The runbook's own cause; for a caught error or ECS's stopped reason, a fixed text (history only).
    assert record["result"]["cause"] == _notice_cause(runbook, execution)
    snapshots = runbook.snapshots()
    assert record["snapshotId"] == (snapshots[0]["DBSnapshotIdentifier"] if snapshots else None)
    assert record["operator"]["requestedBy"] is None
    parameters = runbook.parameters()
    assert not any(name.startswith(APPLIED) for name in parameters)  # a failure records nothing as applied
    assert parameters.get(MAINTENANCE, {}).get("state") == flag
    notice = _notice(runbook)
    assert notice["error"] == error and notice["cause"] == record["result"]["cause"]
    assert notice["evidence"]["s3Uri"].startswith(f"s3://{runbook.evidence_bucket}/migrations/staging/")
    assert notice["maintenanceMode"].startswith(maintenance_note)
    if flag == "on":
        assert "python -m ops maintenance --env staging --off" in notice["maintenanceMode"]


def _notice_cause(runbook: Runbook, execution: dict[str, Any]) -> str:
    """What the evidence record and the notice say: the execution's cause, except for a caught error (its name
    and a fixed text) and a non-zero migration (without ECS's stopped reason)."""
    cause = str(execution["cause"])
    if execution["error"] == "ValidationFailed":
        return "ValidationFailed in state ValidateBefore: the cause is not copied here; read it in the execution " \
            "history (the failed event of this state) or the log of the task"  # fmt: skip
    if execution["error"] == "MigrationFailed":
        return (
            cause.split(" (")[0] + "; the stopped reason is in the execution history and the log of the task"
        )
    return cause


TOKEN_LIKE = "AQCEAAAAKgAAAAMAAAAAAAAAAbGmVaUPJe8Jm+token+like+value=="
CAUGHT = {
    # name: (player, error): each plants PHI-like text and a token-like value where ECS or the runner puts its cause
    "migration-stopped-reason": (
        lambda: lambda run: TaskOutcome(
            exit_code=1 if run.action == "upgrade" else 0,
            counts=COUNTS if run.action == "validate" else None,
            revisions=[REVISION_BEFORE] if run.action == "validate" else None,
            stopped_reason=f"OutOfMemoryError: {PLANTED} SFN_TASK_TOKEN={TOKEN_LIKE}",
        ),
        "MigrationFailed",
    ),
    "validation-task-failure": (
        lambda: lambda run: TaskOutcome(
            exit_code=1,
            failure=("ValidationFailed", json.dumps({"overrides": {"environment": [
                {"name": "SFN_TASK_TOKEN", "value": TOKEN_LIKE}], "command": ["--query", f"x=SELECT '{PLANTED}'"]}})),
        ) if run.action == "validate" else TaskOutcome(),
        "ValidationFailed",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CAUGHT))
def test_a_services_raw_cause_stays_out_of_the_evidence_and_the_notice(runbook: Runbook, case: str) -> None:
    make_player, error = CAUGHT[case]
    runbook.create_instance()
    execution = runbook.run({"action": "upgrade", "revision": "head"}, make_player())

    assert (execution["status"], execution["error"]) == ("FAILED", error)
    assert PLANTED in execution["cause"]  # the history keeps the service's cause (it did already)
    record = _record(runbook, execution)  # asserts PLANTED is absent
    notice = _notice(runbook)  # asserts PLANTED is absent
    for text in (json.dumps(record), json.dumps(notice)):
        assert TOKEN_LIKE not in text and "SFN_TASK_TOKEN" not in text and "SELECT" not in text
    assert record["result"]["error"] == notice["error"] == error
    assert record["result"]["cause"] == notice["cause"] == _notice_cause(runbook, execution)


def test_an_evidence_record_that_cannot_be_written_does_not_swallow_the_notice(runbook: Runbook) -> None:
    runbook.create_instance()
    s3 = runbook.client("s3")
    runbook.clear_evidence()
    s3.delete_bucket(Bucket=runbook.evidence_bucket)
    try:
        execution = runbook.run(
            {"action": "upgrade", "revision": "head"}, default_player(COUNTS, migration_exit_code=1)
        )
    finally:
        s3.create_bucket(Bucket=runbook.evidence_bucket, ObjectLockEnabledForBucket=True)
    assert execution["error"] == "MigrationFailed"
    notice = _notice(runbook)
    assert notice["error"] == "MigrationFailed"
    assert notice["evidence"].startswith("NOT WRITTEN (S3.NoSuchBucketException)")


def test_production_refuses_a_revision_staging_has_not_recorded(production_runbook: Runbook) -> None:
    production_runbook.create_instance()
    execution = production_runbook.run({"action": "upgrade", "revision": EXACT}, default_player(COUNTS))

    assert (execution["status"], execution["error"]) == ("FAILED", "RevisionNotAppliedInStaging")
    assert f"no record {APPLIED}/{EXACT}" in execution["cause"]
    assert production_runbook.states_entered(execution["executionArn"]) == [
        "ValidateInput", "PlanMigration", "CheckRevisionAppliedFirst", "RevisionNotApplied",
        "CheckMaintenanceAfterFailure", "WriteFailureEvidence", "NotifyFailure", "RunbookFailed",
    ]  # fmt: skip
    assert production_runbook.snapshots() == [] and production_runbook.task_runs == []
    assert _record(production_runbook, execution)["result"]["error"] == "RevisionNotAppliedInStaging"
    notice = _notice(production_runbook)
    assert notice["error"] == "RevisionNotAppliedInStaging"
    assert "python -m ops migrate --env staging --revision ae1027a6acf0" in notice["cause"]


@pytest.mark.parametrize("revision", ["head", "heads", "base", "-1", "+1", "branch@head", EXACT[:8]])
def test_production_refuses_symbolic_relative_and_prefix_revisions(
    production_runbook: Runbook, revision: str
) -> None:
    production_runbook.create_instance()
    execution = production_runbook.run({"action": "downgrade", "revision": revision}, default_player(COUNTS))

    assert (execution["error"], production_runbook.task_runs) == ("InvalidInput", [])
    assert "full Alembic revision id" in execution["cause"]
    assert production_runbook.states_entered(execution["executionArn"]) == ["ValidateInput", "InvalidInput"]


def test_production_accepts_a_revision_staging_has_applied(
    runbook: Runbook, production_runbook: Runbook
) -> None:
    runbook.create_instance()
    staging = runbook.run({"action": "upgrade", "revision": EXACT}, default_player(COUNTS))
    assert staging["status"] == "SUCCEEDED"
    runbook.notifications()  # staging's notice: another queue, read and dropped

    production_runbook.create_instance()
    execution = production_runbook.run({"action": "upgrade", "revision": EXACT}, default_player(COUNTS))

    assert execution["status"] == "SUCCEEDED", execution
    entered = production_runbook.states_entered(execution["executionArn"])
    assert entered[:5] == [
        "ValidateInput",
        "PlanMigration",
        "CheckRevisionAppliedFirst",
        "CheckAppliedState",
        "ListRunningExecutions",
    ]
    assert "RecordAppliedRevision" not in entered  # nobody reads production's records
    record = _record(production_runbook, execution)
    check = record["appliedCheck"]
    assert check["parameter"] == f"{APPLIED}/{EXACT}"
    assert (check["state"], check["action"], check["version"]) == ("applied", "upgrade", 1)
    assert check["lastModified"] and set(check) == {"parameter", "version", "lastModified", "state", "action"}
    assert record["appliedRecord"] == {
        "written": False,
        "reason": "this environment keeps no applied-revision records",
    }
    assert _notice(production_runbook)["outcome"] == "succeeded"


def test_production_refuses_a_revision_staging_rolled_back(
    runbook: Runbook, production_runbook: Runbook
) -> None:
    runbook.create_instance()
    assert (
        runbook.run({"action": "upgrade", "revision": EXACT}, default_player(COUNTS))["status"] == "SUCCEEDED"
    )
    down = runbook.run(
        {"action": "downgrade", "revision": REVISION_BEFORE}, default_player(COUNTS, revision=EXACT)
    )
    assert down["status"] == "SUCCEEDED", down
    assert runbook.states_entered(down["executionArn"])[-6:-3] == [
        "RecordAppliedRevision", "CheckRevisionLeft", "RecordRolledBackRevision",
    ]  # fmt: skip
    parameters = runbook.parameters()
    assert parameters[f"{APPLIED}/{EXACT}"]["state"] == "rolled-back"
    assert parameters[f"{APPLIED}/{REVISION_BEFORE}"]["state"] == "applied"
    runbook.notifications()

    production_runbook.create_instance()
    execution = production_runbook.run({"action": "upgrade", "revision": EXACT}, default_player(COUNTS))

    assert (execution["status"], execution["error"]) == ("FAILED", "RevisionRolledBackInStaging")
    assert production_runbook.task_runs == [] and production_runbook.snapshots() == []
    assert _record(production_runbook, execution)["appliedCheck"]["state"] == "rolled-back"
    assert _notice(production_runbook)["error"] == "RevisionRolledBackInStaging"


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"state": "applied", "execution": PLANTED, "action": "upgrade"}),  # applied: passes
        json.dumps({"state": PLANTED, "action": PLANTED}),  # not a known state: refused
        PLANTED,  # not JSON: refused (fail closed)
        json.dumps([PLANTED]),
    ],
)
def test_production_keeps_only_validated_fields_of_the_staging_record(
    production_runbook: Runbook, value: str
) -> None:
    """The record was written in staging's account and may hold anything: production checks its state and
    keeps name, version, date and the enum fields, never the value (evidence, notice, variables, outputs)."""
    production_runbook.client("ssm").put_parameter(
        Name=f"{APPLIED}/{EXACT}", Value=value, Type="String", Overwrite=True
    )
    try:
        production_runbook.create_instance()
        execution = production_runbook.run({"action": "upgrade", "revision": EXACT}, default_player(COUNTS))
        applied = value.startswith('{"state": "applied"')
        assert execution["status"] == ("SUCCEEDED" if applied else "FAILED"), execution
        if not applied:
            assert execution["error"] == "RevisionNotAppliedInStaging"
            assert production_runbook.task_runs == []
        record = _record(production_runbook, execution)  # asserts PLANTED is absent
        assert record["appliedCheck"]["state"] in ("applied", "invalid", "unreadable")
        _notice(production_runbook)  # asserts PLANTED is absent
        assert PLANTED not in json.dumps(execution, default=str)
        # The execution history: only the GetParameter response itself (TaskSucceeded of the read, which
        # Step Functions always records) holds the value; no state input/output, variable or failure does.
        events = production_runbook.history(execution["executionArn"])
        holding = [e["type"] for e in events if PLANTED in json.dumps(e, default=str)]
        assert holding in ([], ["TaskSucceeded"]), holding
    finally:
        production_runbook.client("ssm").delete_parameter(Name=f"{APPLIED}/{EXACT}")


def test_a_snapshot_that_outlasts_its_deadline_fails_with_a_record_and_clears_maintenance(
    runbook: Runbook,
) -> None:
    """The wait loop is bounded: past the deadline (from the start) a snapshot still creating ends the runbook
    with SnapshotTimedOut, evidence and a notice, before the migration, instead of a silent TIMED_OUT."""
    from datetime import UTC, datetime, timedelta

    from constructs.runbook_expressions import SNAPSHOT_DEADLINE_MINUTES

    runbook.create_instance()
    runbook.rds_controls.snapshot_creating_polls = 10**6  # never available
    runbook.rds_controls.execution_start_time = datetime.now(UTC) - timedelta(
        minutes=SNAPSHOT_DEADLINE_MINUTES, seconds=5
    )
    execution = runbook.run(
        {"action": "upgrade", "revision": "head", "maintenance": True}, default_player(COUNTS)
    )

    assert (execution["status"], execution["error"]) == ("FAILED", "SnapshotTimedOut")
    assert f"still creating {SNAPSHOT_DEADLINE_MINUTES} minutes after the start" in execution["cause"]
    entered = runbook.states_entered(execution["executionArn"])
    assert entered[-7:] == [
        "CheckSnapshot", "SnapshotTimedOut", "CheckMaintenanceAfterFailure", "ClearMaintenanceAfterFailure",
        "WriteFailureEvidence", "NotifyFailure", "RunbookFailed",
    ]  # fmt: skip
    assert runbook.task_runs == []  # neither validation nor migration ran
    assert runbook.parameters()[MAINTENANCE]["state"] == "off"
    assert _record(runbook, execution)["result"]["error"] == "SnapshotTimedOut"
    notice = _notice(runbook)
    assert notice["error"] == "SnapshotTimedOut" and notice["snapshotId"].startswith("pre-migration-")
    assert notice["maintenanceMode"].startswith("cleared")


@pytest.mark.parametrize("outcome", ["succeeded", "failed-before-migration"])
def test_a_maintenance_flag_an_operator_set_before_is_left_on(runbook: Runbook, outcome: str) -> None:
    """The runbook clears only what it set: an operator's `ops maintenance --on` stays on, whatever happens."""
    operator = {
        "state": "on",
        "execution": "manual: python -m ops maintenance by jane",
        "since": "2026-12-03T07:00:00Z",
    }
    runbook.client("ssm").put_parameter(Name=MAINTENANCE, Value=json.dumps(operator), Type="String")
    runbook.create_instance(backup_retention_days=14)
    player = default_player(COUNTS) if outcome == "succeeded" else _failing_validation(1)
    execution = runbook.run({"action": "upgrade", "revision": "head", "maintenance": True}, player)

    assert execution["status"] == ("SUCCEEDED" if outcome == "succeeded" else "FAILED"), execution
    entered = runbook.states_entered(execution["executionArn"])
    assert "SetMaintenanceMode" not in entered and "MaintenanceAlreadyOn" in entered
    assert not {"ClearMaintenanceMode", "ClearMaintenanceAfterFailure"} & set(entered)
    assert runbook.parameters()[MAINTENANCE] == operator  # untouched
    note = _record(runbook, execution)["maintenanceMode"]["note"]
    assert note.startswith("already ON before this execution")
    assert _notice(runbook)["maintenanceMode"].startswith("already ON before this execution")


def test_an_absent_maintenance_flag_is_set_and_cleared_by_the_runbook(runbook: Runbook) -> None:
    runbook.create_instance()
    execution = runbook.run(
        {"action": "upgrade", "revision": "head", "maintenance": True}, default_player(COUNTS)
    )

    assert execution["status"] == "SUCCEEDED"
    entered = runbook.states_entered(execution["executionArn"])
    start = entered.index("ReadMaintenanceMode")
    assert entered[start : start + 2] == [
        "ReadMaintenanceMode",
        "SetMaintenanceMode",
    ]  # ParameterNotFound: off
    assert "ClearMaintenanceMode" in entered
    assert runbook.parameters()[MAINTENANCE]["state"] == "off"
