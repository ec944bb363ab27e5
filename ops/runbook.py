"""Start the migration runbook state machine and follow it state by state.

Plain functions over boto3 clients (Step Functions, RDS, STS) passed in by the caller. Nothing
here prints secrets: the runbook's input and output hold a revision, a snapshot id and row counts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from config.schema import EnvironmentConfig
from contract.names import (
    EVIDENCE_PREFIX,
    applied_revision_path,
    evidence_bucket_name,
    maintenance_parameter_name,
    state_machine_name,
)
from contract.revision import check_exact_revision, check_revision

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class RunbookError(RuntimeError):
    """The runbook could not be started or followed."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    environment: EnvironmentConfig
    action: str
    revision: str
    maintenance: bool = False
    # The caller's ARN from STS GetCallerIdentity: what the evidence record states as the operator (the
    # authenticated identity is CloudTrail's StartExecution event).
    requested_by: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("upgrade", "downgrade"):
            raise ValueError(f"action {self.action!r} is not upgrade or downgrade")
        check_revision(self.revision)
        if self.environment.migration.requires_exact_revision:
            # The runbook refuses anything else here too; saying so before starting is kinder.
            check_exact_revision(self.revision)

    @property
    def state_machine_arn(self) -> str:
        name = state_machine_name(self.environment.name)
        partition = "aws-cn" if self.environment.region.startswith("cn-") else "aws"
        return (
            f"arn:{partition}:states:{self.environment.region}:{self.environment.account}:stateMachine:{name}"
        )

    @property
    def execution_input(self) -> dict[str, Any]:
        document: dict[str, Any] = {"action": self.action, "revision": self.revision}
        if self.maintenance:
            document["maintenance"] = True
        if self.requested_by is not None:
            document["requestedBy"] = self.requested_by
        return document

    def describe(self) -> list[str]:
        env = self.environment
        return [
            f"environment:   {env.name} (account {env.account}, {env.region})",
            f"state machine: {self.state_machine_arn}",
            f"input:         {json.dumps(self.execution_input)} (+ requestedBy: your ARN from STS)",
            "steps:",
            *(f"  {number}. {step}" for number, step in enumerate(self._steps(), start=1)),
        ]

    def _steps(self) -> list[str]:
        """What the runbook will do for this input, in the order of its states."""
        env = self.environment
        migration = env.migration
        first = migration.require_applied_in
        maintenance = maintenance_parameter_name(env.name)
        return [
            *(
                [f"refuse the revision unless {first}'s runbook recorded it as applied (exact id)"]
                if first
                else []
            ),
            "refuse to run while another execution of the runbook is running",
            f"pre-checks on {env.database.instance_identifier}: status available, backup retention >= "
            f"{migration.minimum_backup_retention_days} days, latest restorable time <= "
            f"{migration.max_restore_lag_minutes} minutes old",
            *([f"maintenance mode on ({maintenance}), before the snapshot"] if self.maintenance else []),
            "manual snapshot pre-migration-<yyyy-mm-dd-hhmmss>-<execution name> (UTC start time), wait until available",
            "validation row counts and alembic current before; then the ECS task: "
            f"alembic -c {migration.alembic_config_path} {self.action} {self.revision}",
            "validation row counts and alembic current after: "
            + ", ".join(name for name, _ in migration.validation_queries),
            *(
                [
                    f"record the revision now applied under {applied_revision_path(env.name)}/ (read by {', '.join(migration.applied_record_reader_accounts)})"
                ]
                if migration.applied_record_reader_accounts
                else []
            ),
            "maintenance mode off after success (or a failure before the migration started)"
            if self.maintenance
            else "(maintenance mode not requested)",
            f"evidence record s3://{evidence_bucket(env)}/{EVIDENCE_PREFIX}/{env.name}/<YYYY>/<MM>/<execution>.json",
            "notify the operations topic (success, or failure with the snapshot id and rollback steps)",
        ]


def evidence_bucket(environment: EnvironmentConfig) -> str:
    return evidence_bucket_name(environment.name, environment.account, environment.region)


def evidence_uri(environment: EnvironmentConfig, execution_arn: str, started: datetime) -> str:
    """Where the runbook writes this execution's evidence record (if it could)."""
    name = execution_arn.rsplit(":", 1)[-1]
    return (
        f"s3://{evidence_bucket(environment)}/{EVIDENCE_PREFIX}/{environment.name}/"
        f"{started.astimezone(UTC):%Y/%m}/{name}.json"
    )


def execution_name(action: str, now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"{action}-{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def check_account(sts: Any, environment: EnvironmentConfig) -> str:
    """The caller's ARN, once the credentials are known to be for the environment's account."""
    identity = sts.get_caller_identity()
    account = identity["Account"]
    if account != environment.account:
        raise RunbookError(
            f"your credentials are for account {account}, but {environment.name} is account {environment.account}"
        )
    return str(identity.get("Arn", ""))


def set_maintenance(ssm: Any, environment: EnvironmentConfig, *, on: bool, requested_by: str) -> str:
    """Set the maintenance-mode flag by hand (`python -m ops maintenance`); returns the parameter name."""
    name = maintenance_parameter_name(environment.name)
    value = {
        "state": "on" if on else "off",
        "execution": f"manual: python -m ops maintenance by {requested_by}",
        "since": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    ssm.put_parameter(Name=name, Value=json.dumps(value), Type="String", Overwrite=True)
    return name


def start(stepfunctions: Any, plan: Plan, *, name: str | None = None) -> str:
    response = stepfunctions.start_execution(
        stateMachineArn=plan.state_machine_arn,
        name=name or execution_name(plan.action),
        input=json.dumps(plan.execution_input),
    )
    return str(response["executionArn"])


def state_transitions(events: list[dict[str, Any]]) -> Iterator[str]:
    """One line per state entered or exited, and per execution-level outcome."""
    for event in events:
        kind = event["type"]
        when = event["timestamp"]
        stamp = when.strftime("%H:%M:%S") if isinstance(when, datetime) else str(when)
        if kind.endswith("StateEntered"):
            yield f"{stamp}  -> {event['stateEnteredEventDetails']['name']}"
        elif kind.endswith("StateExited"):
            yield f"{stamp}  <- {event['stateExitedEventDetails']['name']}"
        elif kind in ("TaskFailed", "TaskTimedOut"):
            details = event.get("taskFailedEventDetails") or event.get("taskTimedOutEventDetails") or {}
            yield f"{stamp}  !! {details.get('error', kind)}"


def follow(
    stepfunctions: Any,
    execution_arn: str,
    *,
    out: TextIO,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    max_polls: int | None = None,
) -> dict[str, Any]:
    """Print state transitions as they happen; return DescribeExecution once the execution has ended."""
    seen = 0
    polls = 0
    while True:
        # Status first, history second: once the status is terminal, the history read after it is complete.
        execution: dict[str, Any] = stepfunctions.describe_execution(executionArn=execution_arn)
        events: list[dict[str, Any]] = []
        paginator = stepfunctions.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn, reverseOrder=False):
            events.extend(page["events"])
        for line in state_transitions(events[seen:]):
            print(line, file=out, flush=True)
        seen = len(events)
        if execution["status"] in TERMINAL:
            return execution
        polls += 1
        if max_polls is not None and polls >= max_polls:
            raise RunbookError(f"gave up following {execution_arn} after {polls} polls; it is still running")
        sleep(poll_seconds)


def failure_details(stepfunctions: Any, execution_arn: str) -> dict[str, Any]:
    """The error and cause of a failed execution (the Fail state carries the runbook's own)."""
    execution = stepfunctions.describe_execution(executionArn=execution_arn)
    return {"error": execution.get("error", ""), "cause": execution.get("cause", "")}


def snapshot_summary(rds: Any, snapshot_id: str) -> str:
    try:
        snapshots = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return f"{snapshot_id} (could not describe it: {code})"
    if not snapshots:
        return f"{snapshot_id} (not found)"
    snapshot = snapshots[0]
    created = snapshot.get("SnapshotCreateTime")
    created_text = created.isoformat() if isinstance(created, datetime) else "creation time unknown"
    return f"{snapshot_id} ({snapshot.get('Status', 'unknown')}, {created_text})"


def rollback_hint(
    environment: EnvironmentConfig, snapshot: str | None, started: datetime | None
) -> list[str]:
    point = started.isoformat() if isinstance(started, datetime) else "the execution's start time"
    return [
        "Rollback:",
        f"  reversible migration: python -m ops rollback --env {environment.name} --revision "
        + (
            "<the full revision id before (evidence record: alembicRevision.before)>"
            if environment.migration.requires_exact_revision
            else "-1"
        ),
        f"  data compromised:     restore snapshot {snapshot or '(none was taken)'} or PITR of "
        f"{environment.database.instance_identifier} to just before {point} into a new instance,",
        "                        point the application at it, re-run the last good revision (README: Running a migration)",
    ]
