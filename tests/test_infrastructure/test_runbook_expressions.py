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


def test_the_snapshot_is_named_after_the_execution_start_second_utc_and_its_name():
    assert evaluate(expr.SNAPSHOT_ID) == "pre-migration-2026-12-03-075828-run-1"


@pytest.mark.parametrize(
    ("runbook_input", "valid"),
    [
        ({"action": "upgrade", "revision": "head"}, True),
        ({"action": "downgrade", "revision": "-1"}, True),
        ({"action": "drop", "revision": "head"}, False),
        ({"action": "upgrade", "revision": ""}, False),
        ({"action": "upgrade", "revision": "r" * 65}, False),
        ({"action": "upgrade", "revision": 42}, False),
        ({"action": "upgrade", "revision": "--help"}, False),
        ({"action": "upgrade", "revision": "-h"}, False),
        ({"action": "upgrade", "revision": "ae1027a6acf"}, True),
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


BUCKET = "revenuepilot-staging-evidence-111111111111-us-east-1"
RECORDS = {
    "revisionsBefore": None,
    "maintenance": {"requested": False, "on": False, "note": "not requested"},
    "evidence": {"written": True},
    "evidenceKey": "migrations/staging/2026/12/run-1.json",
}


def test_the_failure_notice_is_json_with_rollback_instructions():
    notice = evaluate(
        expr.failure_notice("staging", evidence_bucket=BUCKET, region="us-east-1", exact_revision=False),
        action="upgrade",
        revision="abc123",
        snapshotCreated=False,
        snapshotId="pre-migration-2026-12-03-0758",
        failure={"error": "DatabaseNotAvailable", "cause": "instance x is stopped, not available"},
        **RECORDS,
    )
    body = json.loads(notice)
    assert body["outcome"] == "failed"
    assert body["snapshotId"] == "none (failed before the snapshot)"
    assert body["error"] == "DatabaseNotAvailable"
    assert body["rollback"] == expr.rollback_instructions("staging")
    assert "--env staging" in body["rollback"]
    assert body["evidence"] == {
        "s3Uri": f"s3://{BUCKET}/migrations/staging/2026/12/run-1.json",
        "console": f"https://console.aws.amazon.com/s3/object/{BUCKET}?region=us-east-1&bucketType=general"
        "&prefix=migrations%2Fstaging%2F2026%2F12%2Frun-1.json",
    }
    assert body["maintenanceMode"] == "not requested"


def test_the_failure_notice_says_when_the_evidence_was_not_written_and_maintenance_stays_on():
    body = json.loads(
        evaluate(
            expr.failure_notice(
                "production", evidence_bucket=BUCKET, region="us-east-1", exact_revision=True
            ),
            action="upgrade",
            revision="0123456789ab",
            snapshotCreated=True,
            snapshotId="pre-migration-x",
            failure={"error": "MigrationFailed", "cause": "alembic upgrade exited with status 1"},
            **(
                RECORDS
                | {
                    "evidence": {"written": False, "error": "S3.AccessDeniedException"},
                    "maintenance": {"requested": True, "on": True, "owned": True, "note": "ON since ..."},
                    "revisionsBefore": ["ba9876543210"],
                }
            ),
        )
    )
    assert body["evidence"].startswith("NOT WRITTEN (S3.AccessDeniedException)")
    assert "python -m ops maintenance --env production --off" in body["maintenanceMode"]
    assert body["revisionBefore"] == ["ba9876543210"]
    assert "--revision <revisionBefore" in body["rollback"] and "-1" not in body["rollback"]


def test_the_evidence_key_is_per_environment_month_and_execution():
    assert evaluate(expr.evidence_key("production")) == "migrations/production/2026/12/run-1.json"


@pytest.mark.parametrize(
    ("requested_by", "valid"),
    [
        (None, True),
        ("arn:aws:sts::222222222222:assumed-role/Operator/jane.doe@example.com", True),
        ("arn:aws:iam::222222222222:user/ops", True),
        ("arn:aws:sts::222222222222:assumed-role/Operator/x\n", False),
        ("jane", False),
        ("arn:aws:s3:::bucket", False),
        (12, False),
        ("arn:aws:iam::222222222222:user/" + "x" * 1000, False),
    ],
)
def test_requested_by_must_be_an_iam_or_sts_arn(requested_by: object, valid: bool) -> None:
    execution_input: dict[str, object] = {"action": "upgrade", "revision": "head"}
    if requested_by is not None:
        execution_input["requestedBy"] = requested_by
    assert evaluate(expr.valid_input(exact_revision=False), input=execution_input) is valid


@pytest.mark.parametrize(
    ("revision", "plain", "exact"),
    [
        ("head", True, False),
        ("-1", True, False),
        ("base", True, False),
        ("branch@head", True, False),
        ("ae1027a6", True, False),  # a prefix: production looks records up by the full id
        ("ae1027a6acf0", True, True),
        ("0123456789abcdef0123456789abcdef01234567", True, True),
    ],
)
def test_the_exact_revision_rule_is_stricter(revision: str, plain: bool, exact: bool) -> None:
    execution_input = {"action": "upgrade", "revision": revision}
    assert evaluate(expr.valid_input(exact_revision=False), input=execution_input) is plain
    assert evaluate(expr.valid_input(exact_revision=True), input=execution_input) is exact


def test_maintenance_must_be_a_boolean() -> None:
    base = {"action": "upgrade", "revision": "head"}
    assert evaluate(expr.valid_input(exact_revision=False), input=base | {"maintenance": True}) is True
    assert evaluate(expr.valid_input(exact_revision=False), input=base | {"maintenance": "yes"}) is False


def test_the_success_summary_reports_counts_and_duration():
    summary = evaluate(
        expr.success_summary("production", evidence_bucket=BUCKET, region="us-east-1"),
        action="upgrade",
        revision="abc123",
        snapshotId="pre-migration-2026-12-03-0758",
        counts={"encounters": 12},
        **RECORDS,
    )
    assert summary["outcome"] == "succeeded"
    assert summary["validation"] == {"encounters": 12}
    assert summary["durationSeconds"] == 692  # 07:58:28.123 -> 08:10:00.000
    assert (
        json.loads(
            evaluate(
                expr.success_notice("production", evidence_bucket=BUCKET, region="us-east-1"),
                action="upgrade",
                revision="r",
                snapshotId="s",
                counts=None,
                **RECORDS,
            )
        )["environment"]
        == "production"
    )


def test_jsonata_wraps_an_expression_for_the_states_language():
    assert expr.jsonata("$action") == "{% $action %}"
    assert expr.failure("E", "'x'") == {
        "failure": {"error": "E", "cause": "{% 'x' %}", "summary": "{% 'x' %}"}
    }
    assert expr.failure("E", "'x'", "'y'")["failure"]["summary"] == "{% 'y' %}"


def test_other_running_executions_exclude_this_one():
    executions = {"Executions": [{"ExecutionArn": "arn:aws:states:...:execution:rb:run-1"}]}
    assert evaluate(expr.OTHER_EXECUTIONS, result=executions) == []
    executions["Executions"].append({"ExecutionArn": "arn:other"})
    assert evaluate(expr.OTHER_EXECUTIONS, result=executions) == ["arn:other"]
    assert evaluate(expr.ANOTHER_EXECUTION_RUNNING, otherExecutions=["arn:other"]) is True
    assert evaluate(expr.ANOTHER_EXECUTION_RUNNING, otherExecutions=[]) is False


@pytest.mark.parametrize(
    ("after", "dropped"),
    [
        ({"encounters": 100, "notes": 50}, False),
        ({"encounters": 101, "notes": 51}, False),
        ({"encounters": 99, "notes": 50}, True),  # no decrease allowed
        ({"encounters": 100, "notes": 45}, False),  # 10 % allowed
        ({"encounters": 100, "notes": 44}, True),
    ],
)
def test_counts_comparison_with_per_query_tolerance(after, dropped):
    before = {"encounters": 100, "notes": 50}
    comparison = evaluate(
        expr.counts_comparison({"encounters": 0, "notes": 10}), countsBefore=before, counts=after
    )
    assert comparison["notes"] == {"before": 50, "after": after["notes"], "allowedDecreasePercent": 10}
    assert evaluate(expr.COUNTS_DROPPED, comparison=comparison) is dropped
    if dropped:
        assert evaluate(expr.COUNTS_DROPPED_CAUSE, comparison=comparison).startswith(
            "validation counts dropped beyond their tolerance: "
        )
