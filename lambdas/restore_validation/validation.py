"""Validating a restored database and recording the result (plain functions; the handler wires them).

A restore test (AWS Backup restore testing, or `python -m ops restore`) is only proof when something
reads the restored data: `validate_restored_database` logs in over verify-full TLS, runs the
configured validation queries in a READ ONLY transaction and checks that the expected roles exist.
`process_restore_job` turns an AWS Backup restore job into that validation, the verdict AWS Backup
records (`PutRestoreValidationResult`), the recovery metrics and an evidence record.

Nothing here logs or returns a password: connection errors are sanitised by `lambdas.common.db`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from contract.query_errors import failure_message
from contract.secret import Credentials, SecretFormatError, parse_app_secret, parse_master_secret
from lambdas.common.db import ConnectionFactory, DatabaseConnectionError, Endpoint
from lambdas.common.secret_store import SecretStore

METRIC_NAMESPACE = "RevenuePilot/Recovery"
# The restored data's passwords are those of the snapshot's day. The master secret rotates every
# database.master_secret_rotation_days (7 by default, RDS-managed) and the application secret every 90 or
# 120 days, while a restore test picks a snapshot up to 7 days old: when the secret rotated since, the
# snapshot knows the AWSPREVIOUS password.
LOGIN_STAGES = ("AWSCURRENT", "AWSPREVIOUS")
MASTER_STAGES = LOGIN_STAGES
EVIDENCE_KIND = "restore-test-evidence"

# Reads one login from a secret's text; raises SecretFormatError (which names fields, never values).
LoginParser = Callable[[str], Credentials]


def application_role_login(role: str) -> LoginParser:
    """The login of `role` (e.g. `migration`) from the application secret (the DR validation, decision 0010)."""

    def parse(text: str) -> Credentials:
        return parse_app_secret(text).credentials(role)

    return parse


@dataclass(frozen=True, kw_only=True)
class ValidationOutcome:
    passed: bool
    message: str
    query_results: dict[str, int] = field(default_factory=dict)
    missing_roles: tuple[str, ...] = ()


def _login_candidates(store: SecretStore, secret_id: str, parse: LoginParser) -> list[tuple[str, str, str]]:
    """(stage, username, password) for each stage of the secret that parses."""
    candidates = []
    for stage in LOGIN_STAGES:
        version = store.find_version(secret_id, stage=stage)
        if version is None:
            continue
        try:
            credentials = parse(version.secret_string)
            candidates.append((stage, credentials.username, credentials.require_password()))
        except SecretFormatError:
            continue
    return candidates


def connect_restored(
    store: SecretStore,
    secret_id: str,
    connect: ConnectionFactory,
    endpoint: Endpoint,
    *,
    login: LoginParser = parse_master_secret,
) -> Any:
    """Log in to the restored instance: AWSCURRENT, else AWSPREVIOUS on a wrong password.

    `login` reads the credentials from the secret: the master secret's by default; the DR validation reads
    `migration`'s from the application secret's replica (`application_role_login`).
    """
    refusal: DatabaseConnectionError | None = None
    for _stage, username, password in _login_candidates(store, secret_id, login):
        try:
            return connect(endpoint, username=username, password=password)
        except DatabaseConnectionError as error:
            if not error.is_authentication_failure:
                raise
            refusal = refusal or error
    if refusal is not None:
        raise refusal
    raise DatabaseConnectionError(f"the secret {secret_id} has no usable version")


def validate_restored_database(
    connection: Any, *, queries: Sequence[tuple[str, str]], expected_roles: Sequence[str]
) -> ValidationOutcome:
    """Run each query read-only (one integer each) and check the roles exist. Never raises for SQL errors."""
    results: dict[str, int] = {}
    try:
        connection.run("START TRANSACTION READ ONLY")
        for name, sql in queries:
            rows = connection.run(sql)
            if not rows or len(rows[0]) != 1 or not isinstance(rows[0][0], int):
                connection.run("ROLLBACK")
                return ValidationOutcome(
                    passed=False, message=f"query {name} did not return one integer", query_results=results
                )
            results[name] = int(rows[0][0])
        present = {row[0] for row in connection.run("SELECT rolname FROM pg_roles")}
        connection.run("ROLLBACK")
    except Exception as exc:  # a failed query is a failed validation, reported with its SQLSTATE only
        failed = next((name for name, _ in queries if name not in results), "roles")
        with suppress(Exception):  # the connection may already be unusable; the verdict stands
            connection.run("ROLLBACK")
        # Never the server's message: it quotes values (patient data), and this text becomes AWS Backup's
        # validation message, the evidence log line and the alert e-mail.
        return ValidationOutcome(passed=False, message=failure_message(failed, exc), query_results=results)
    missing = tuple(role for role in expected_roles if role not in present)
    if missing:
        return ValidationOutcome(
            passed=False,
            message=f"roles missing: {', '.join(missing)}",
            query_results=results,
            missing_roles=missing,
        )
    return ValidationOutcome(
        passed=True,
        message=f"{len(results)} queries and {len(expected_roles)} roles verified",
        query_results=results,
    )


@dataclass(frozen=True, kw_only=True)
class RestoreJob:
    """What a restore test's evidence needs from `DescribeRestoreJob`."""

    job_id: str
    recovery_point_arn: str
    created_resource_arn: str
    created: datetime
    completed: datetime
    recovery_point_created: datetime
    restore_testing_plan_arn: str | None

    @classmethod
    def from_api(cls, job: Mapping[str, Any]) -> RestoreJob:
        return cls(
            job_id=job["RestoreJobId"],
            recovery_point_arn=job["RecoveryPointArn"],
            created_resource_arn=job.get("CreatedResourceArn", ""),
            created=job["CreationDate"],
            completed=job["CompletionDate"],
            recovery_point_created=job["RecoveryPointCreationDate"],
            restore_testing_plan_arn=(job.get("CreatedBy") or {}).get("RestoreTestingPlanArn"),
        )

    @property
    def restore_seconds(self) -> float:
        """Recovery time: from the job's start until the restored instance was available."""
        return (self.completed - self.created).total_seconds()

    @property
    def recovery_point_age_seconds(self) -> float:
        """Recovery point: how old the restored data was when the restore began."""
        return (self.created - self.recovery_point_created).total_seconds()


def evidence_record(
    *, environment: str, job: RestoreJob, outcome: ValidationOutcome, now: datetime
) -> dict[str, Any]:
    """The audit record of one restore test (HIPAA 164.308(a)(7)(ii)(D)): date, point, time, outcome."""
    return {
        "evidence": EVIDENCE_KIND,
        "environment": environment,
        "recorded_at": now.astimezone(UTC).isoformat(),
        "restore_job_id": job.job_id,
        "restore_testing_plan_arn": job.restore_testing_plan_arn,
        "recovery_point_arn": job.recovery_point_arn,
        "recovery_point_created_at": job.recovery_point_created.astimezone(UTC).isoformat(),
        "restored_resource_arn": job.created_resource_arn,
        "restore_seconds": job.restore_seconds,
        "recovery_point_age_seconds": job.recovery_point_age_seconds,
        "validation": asdict(outcome),
    }


def put_recovery_metrics(
    cloudwatch: Any, *, environment: str, job: RestoreJob, outcome: ValidationOutcome
) -> None:
    dimensions = [{"Name": "Environment", "Value": environment}]
    cloudwatch.put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[
            {
                "MetricName": "RestoreTimeSeconds",
                "Dimensions": dimensions,
                "Value": job.restore_seconds,
                "Unit": "Seconds",
            },
            {
                "MetricName": "RecoveryPointAgeSeconds",
                "Dimensions": dimensions,
                "Value": job.recovery_point_age_seconds,
                "Unit": "Seconds",
            },
            {
                "MetricName": "RestoreTestFailed",
                "Dimensions": dimensions,
                "Value": 0.0 if outcome.passed else 1.0,
                "Unit": "Count",
            },
        ],
    )


def process_restore_job(
    restore_job_id: str,
    *,
    environment: str,
    restore_testing_plan_arn: str,
    backup: Any,
    rds: Any,
    cloudwatch: Any,
    validate: Callable[[Endpoint], ValidationOutcome],
    record: Callable[[dict[str, Any]], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any] | None:
    """Validate one completed restore job of our plan; None for jobs that are not ours (or not RDS)."""
    job = RestoreJob.from_api(backup.describe_restore_job(RestoreJobId=restore_job_id))
    if job.restore_testing_plan_arn != restore_testing_plan_arn or ":db:" not in job.created_resource_arn:
        return None
    identifier = job.created_resource_arn.rsplit(":", 1)[1]
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    endpoint = Endpoint(
        host=instance["Endpoint"]["Address"],
        port=int(instance["Endpoint"]["Port"]),
        database=instance.get("DBName") or "postgres",
    )
    try:
        outcome = validate(endpoint)
    except DatabaseConnectionError as error:  # includes a refused certificate: a failed test
        outcome = ValidationOutcome(passed=False, message=str(error))
    backup.put_restore_validation_result(
        RestoreJobId=job.job_id,
        ValidationStatus="SUCCESSFUL" if outcome.passed else "FAILED",
        ValidationStatusMessage=outcome.message[:1000],
    )
    put_recovery_metrics(cloudwatch, environment=environment, job=job, outcome=outcome)
    evidence = evidence_record(environment=environment, job=job, outcome=outcome, now=now())
    record(evidence)
    return evidence


def seconds_since_last_successful_test(
    backup: Any, *, restore_testing_plan_arn: str, now: datetime
) -> float | None:
    """Age of the newest restore job of the plan whose validation succeeded; None when there is none."""
    latest: datetime | None = None
    paginator_args: dict[str, Any] = {
        "ByRestoreTestingPlanArn": restore_testing_plan_arn,
        "ByStatus": "COMPLETED",
    }
    while True:
        page = backup.list_restore_jobs(**paginator_args)
        for job in page.get("RestoreJobs", []):
            if job.get("ValidationStatus") == "SUCCESSFUL" and job.get("CompletionDate"):
                latest = max(latest or job["CompletionDate"], job["CompletionDate"])
        if not page.get("NextToken"):
            break
        paginator_args["NextToken"] = page["NextToken"]
    return None if latest is None else (now - latest).total_seconds()


def publish_freshness(
    backup: Any, cloudwatch: Any, *, environment: str, restore_testing_plan_arn: str, now: datetime
) -> float | None:
    """Publish SecondsSinceLastSuccessfulRestoreTest (nothing when no test ever passed: the alarm treats
    missing data as breaching)."""
    age = seconds_since_last_successful_test(
        backup, restore_testing_plan_arn=restore_testing_plan_arn, now=now
    )
    if age is not None:
        cloudwatch.put_metric_data(
            Namespace=METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": "SecondsSinceLastSuccessfulRestoreTest",
                    "Dimensions": [{"Name": "Environment", "Value": environment}],
                    "Value": age,
                    "Unit": "Seconds",
                }
            ],
        )
    return age


def validate_instance(
    identifier: str,
    *,
    environment: str,
    rds: Any,
    validate: Callable[[Endpoint], ValidationOutcome],
    record: Callable[[dict[str, Any]], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """A restore drill (`python -m ops restore`): validate instance `identifier`, record the evidence."""
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    endpoint = Endpoint(
        host=instance["Endpoint"]["Address"],
        port=int(instance["Endpoint"]["Port"]),
        database=instance.get("DBName") or "postgres",
    )
    try:
        outcome = validate(endpoint)
    except DatabaseConnectionError as error:
        outcome = ValidationOutcome(passed=False, message=str(error))
    evidence = {
        "evidence": "restore-drill-evidence",
        "environment": environment,
        "recorded_at": now().astimezone(UTC).isoformat(),
        "restored_instance": identifier,
        **asdict(outcome),
    }
    record(evidence)
    return evidence
