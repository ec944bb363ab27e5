"""The runbook's JSONata expressions, evaluated with a JSONata engine: no synth, no AWS."""

from __future__ import annotations

import json
from typing import Any

import jsonata
import pytest

from constructs import runbook_expressions as expr

STARTED = "2026-12-03T07:58:28.123Z"
ENTERED = "2026-12-03T08:10:00.000Z"


def evaluate(expression: str, **variables: Any) -> Any:
    """`expression` with `$states` (input, context) and the runbook's variables bound."""
    compiled = jsonata.Jsonata(expression)
    states = {
        "input": variables.pop("input", {}),
        "result": variables.pop("result", {}),
        "context": {
            "Execution": {
                "StartTime": STARTED,
                "Id": "arn:aws:states:...:execution:rb:run-1",
                "Name": "run-1",
            },
            "State": {"EnteredTime": ENTERED},
        },
    }
    compiled.assign("states", states)
    for name, value in variables.items():
        compiled.assign(name, value)
    return compiled.evaluate(None)


def test_the_snapshot_is_named_after_the_execution_start_minute_utc():
    assert evaluate(expr.SNAPSHOT_ID) == "pre-migration-2026-12-03-0758"


@pytest.mark.parametrize(
    ("runbook_input", "valid"),
    [
        ({"action": "upgrade", "revision": "head"}, True),
        ({"action": "downgrade", "revision": "-1"}, True),
        ({"action": "drop", "revision": "head"}, False),
        ({"action": "upgrade", "revision": ""}, False),
        ({"action": "upgrade", "revision": "r" * 65}, False),
        ({"action": "upgrade", "revision": 42}, False),
    ],
)
def test_input_validation(runbook_input, valid):
    assert evaluate(expr.VALID_INPUT, input=runbook_input) is valid


@pytest.mark.parametrize(
    ("latest_restorable_time", "stale"),
    [
        ("2026-12-03T08:05:00.000Z", False),  # 5 minutes old
        ("2026-12-03T07:50:00.000Z", True),  # 20 minutes old
        (None, True),  # no point-in-time recovery at all
        (1796284800, False),  # epoch seconds (2026-12-03T08:00:00Z): 10 minutes old
        (1796284800000, False),  # the same in milliseconds
    ],
)
def test_point_in_time_recovery_must_be_recent(latest_restorable_time, stale):
    database = {
        "status": "available",
        "backupRetentionDays": 14,
        "latestRestorableTime": latest_restorable_time,
    }
    assert evaluate(expr.point_in_time_recovery_stale(15), database=database) is stale


def test_backup_retention_precheck_and_its_cause():
    database = {"status": "available", "backupRetentionDays": 3, "latestRestorableTime": None}
    assert evaluate(expr.backup_retention_too_short(7), database=database) is True
    assert evaluate(expr.backup_retention_too_short_cause(7), database=database) == (
        "automated backups are kept 3 days; at least 7 are required"
    )


def test_describe_database_defaults_when_fields_are_missing():
    assert evaluate(expr.DATABASE_STATUS, result={"DbInstances": [{}]}) == "unknown"
    assert evaluate(expr.DATABASE_BACKUP_RETENTION_DAYS, result={"DbInstances": [{}]}) == 0
    assert evaluate(expr.DATABASE_STATUS, result={"DbInstances": [{"DbInstanceStatus": "backing-up"}]}) == (
        "backing-up"
    )


def test_a_failed_migration_names_the_command_status_and_stop_reason():
    cause = evaluate(
        expr.MIGRATION_FAILED_CAUSE, action="upgrade", revision="abc123", exitCode=1, stoppedReason="OOM"
    )
    assert cause == "alembic upgrade abc123 exited with status 1 (OOM)"
    assert evaluate(
        expr.MIGRATION_FAILED_CAUSE, action="upgrade", revision="abc123", exitCode=2, stoppedReason=""
    ) == ("alembic upgrade abc123 exited with status 2")


def test_the_failure_notice_is_json_with_rollback_instructions():
    notice = evaluate(
        expr.failure_notice("staging"),
        action="upgrade",
        revision="abc123",
        snapshotCreated=False,
        snapshotId="pre-migration-2026-12-03-0758",
        failure={"error": "DatabaseNotAvailable", "cause": "instance x is stopped, not available"},
    )
    body = json.loads(notice)
    assert body["outcome"] == "failed"
    assert body["snapshotId"] == "none (failed before the snapshot)"
    assert body["error"] == "DatabaseNotAvailable"
    assert body["rollback"] == expr.rollback_instructions("staging")
    assert "--env staging" in body["rollback"]


def test_the_success_summary_reports_counts_and_duration():
    summary = evaluate(
        expr.success_summary("production"),
        action="upgrade",
        revision="abc123",
        snapshotId="pre-migration-2026-12-03-0758",
        counts={"encounters": 12},
    )
    assert summary["outcome"] == "succeeded"
    assert summary["validation"] == {"encounters": 12}
    assert summary["durationSeconds"] == 692  # 07:58:28.123 -> 08:10:00.000
    assert (
        json.loads(
            evaluate(
                expr.success_notice("production"), action="upgrade", revision="r", snapshotId="s", counts=None
            )
        )["environment"]
        == "production"
    )


def test_jsonata_wraps_an_expression_for_the_states_language():
    assert expr.jsonata("$action") == "{% $action %}"
    assert expr.failure("E", "'x'") == {"failure": {"error": "E", "cause": "{% 'x' %}"}}
