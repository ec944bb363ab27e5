"""The restore-test validation against the project's TLS PostgreSQL (a stand-in for the restored instance).

AWS Backup's restore-job calls (DescribeRestoreJob, PutRestoreValidationResult, ListRestoreJobs) are
not implemented by moto 5.2: a recording fake stands in for them. CloudWatch (metrics) and Secrets
Manager (the master secret) are moto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from config.schema import DEFAULT_VALIDATION_QUERIES
from lambdas.common.db import DatabaseConnectionError, tls_connection_factory
from lambdas.common.tls import build_ssl_context
from lambdas.restore_validation.validation import (
    METRIC_NAMESPACE,
    ValidationOutcome,
    connect_restored,
    process_restore_job,
    publish_freshness,
    validate_restored_database,
)
from tests.support.postgres import make_tls_files

PLAN_ARN = "arn:aws:backup:us-east-1:123456789012:restore-testing-plan:revenuepilot_staging_restore_test-abc"
CREATED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


class FakeBackup:
    """DescribeRestoreJob / PutRestoreValidationResult / ListRestoreJobs, recording every call."""

    def __init__(self, jobs: dict[str, dict[str, Any]]) -> None:
        self.jobs = jobs
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_restore_job(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeRestoreJob", kwargs))
        return self.jobs[kwargs["RestoreJobId"]]

    def put_restore_validation_result(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("PutRestoreValidationResult", kwargs))
        return {}

    def list_restore_jobs(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("ListRestoreJobs", kwargs))
        return {"RestoreJobs": list(self.jobs.values())}


class FakeRds:
    def __init__(self, host: str, port: int, database: str) -> None:
        self.instance = {"Endpoint": {"Address": host, "Port": port}, "DBName": database}
        self.calls: list[dict[str, Any]] = []

    def describe_db_instances(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"DBInstances": [self.instance]}


def _job(job_id: str = "job-1", plan_arn: str = PLAN_ARN, **extra: Any) -> dict[str, Any]:
    return {
        "RestoreJobId": job_id,
        "RecoveryPointArn": "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-xyz",
        "CreatedResourceArn": "arn:aws:rds:us-east-1:123456789012:db:awsbackup-restore-test-1",
        "CreationDate": CREATED,
        "CompletionDate": CREATED + timedelta(minutes=25),
        "RecoveryPointCreationDate": CREATED - timedelta(hours=2),
        "CreatedBy": {"RestoreTestingPlanArn": plan_arn},
        "Status": "COMPLETED",
        **extra,
    }


@pytest.fixture
def restored(deployment):
    """The deployment's database with the application's tables and roles, as a restore would bring them."""
    admin = deployment.admin()
    try:
        for role in (deployment.migration_role, deployment.app_role):
            admin.run(f"CREATE ROLE {role} NOLOGIN")
    finally:
        admin.close()
    # The tables belong to the master user here (on RDS to `migration`, which the master is a member of).
    admin = deployment.connect_as(deployment.database.master_user, deployment.database.master_password)
    try:
        admin.run("CREATE TABLE encounters (id int)")
        admin.run("CREATE TABLE notes (id int, status text)")
        admin.run("CREATE TABLE suggestions (id int, created_at timestamptz DEFAULT now())")
        admin.run("INSERT INTO encounters VALUES (1), (2)")
        admin.run("INSERT INTO notes VALUES (1, 'finalized')")
    finally:
        admin.close()
    return deployment


def _validate(deployment, *, roles=None, queries=DEFAULT_VALIDATION_QUERIES):
    roles = roles or (deployment.migration_role, deployment.app_role)
    connection = connect_restored(
        deployment.store, deployment.master_secret_arn, deployment.connection_factory(), deployment.endpoint
    )
    try:
        return validate_restored_database(connection, queries=queries, expected_roles=roles)
    finally:
        connection.close()


def test_a_good_restore_passes_with_its_counts(restored):
    outcome = _validate(restored)
    assert outcome.passed, outcome.message
    assert outcome.query_results == {"encounters": 2, "finalized_notes": 1, "recent_suggestions": 0}


def test_a_failing_query_fails_the_test_naming_the_query(restored):
    admin = restored.admin()
    admin.run("DROP TABLE notes")
    admin.close()
    outcome = _validate(restored)
    assert not outcome.passed
    assert outcome.message.startswith("query finalized_notes failed: 42P01")
    assert outcome.query_results == {"encounters": 2}


def test_a_missing_role_fails_the_test(restored):
    outcome = _validate(restored, roles=(restored.migration_role, "reporting_user"))
    assert not outcome.passed
    assert outcome.missing_roles == ("reporting_user",)


def test_queries_run_read_only(restored):
    writing = (
        ("sneaky", "WITH w AS (INSERT INTO encounters VALUES (3) RETURNING 1) SELECT COUNT(*) FROM w"),
    )
    outcome = _validate(restored, queries=writing)
    assert not outcome.passed
    assert "25006" in outcome.message  # read_only_sql_transaction
    admin = restored.admin()
    assert admin.run("SELECT COUNT(*) FROM encounters") == [[2]]
    admin.close()


def test_a_certificate_from_another_ca_is_refused(restored, tmp_path):
    other_ca = make_tls_files(tmp_path / "other").ca_cert
    connect = tls_connection_factory(build_ssl_context(other_ca))
    with pytest.raises(DatabaseConnectionError) as raised:
        connect_restored(restored.store, restored.master_secret_arn, connect, restored.endpoint)
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value) or "certificate" in str(raised.value).lower()


def test_the_previous_master_password_logs_in_to_an_older_snapshot(restored):
    # The master secret rotated after the snapshot: AWSCURRENT is new, the restored data knows AWSPREVIOUS.
    secret = json.loads(restored.store.get_string(restored.master_secret_arn))
    restored.client.put_secret_value(
        SecretId=restored.master_secret_arn,
        SecretString=json.dumps({**secret, "password": "rotated-later-1"}),
    )
    assert _validate(restored).passed


def _process(deployment, backup, *, validate, records):
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        evidence = process_restore_job(
            "job-1",
            environment="staging",
            restore_testing_plan_arn=PLAN_ARN,
            backup=backup,
            rds=FakeRds("localhost", deployment.server.port, deployment.database.name),
            cloudwatch=cloudwatch,
            validate=validate,
            record=records.append,
            now=lambda: CREATED + timedelta(hours=1),
        )
        metrics = {
            m["MetricName"]: cloudwatch.get_metric_statistics(
                Namespace=METRIC_NAMESPACE,
                MetricName=m["MetricName"],
                Dimensions=[{"Name": "Environment", "Value": "staging"}],
                StartTime=datetime.now(UTC) - timedelta(hours=1),
                EndTime=datetime.now(UTC) + timedelta(hours=1),
                Period=3600,
                Statistics=["Maximum"],
            )["Datapoints"][0]["Maximum"]
            for m in cloudwatch.list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"]
        }
    return evidence, metrics


def test_a_restore_job_is_validated_reported_measured_and_recorded(restored, capfd):
    backup = FakeBackup({"job-1": _job()})
    records: list[dict[str, Any]] = []

    def validate(endpoint):
        connection = connect_restored(
            restored.store, restored.master_secret_arn, restored.connection_factory(), endpoint
        )
        try:
            return validate_restored_database(
                connection,
                queries=DEFAULT_VALIDATION_QUERIES,
                expected_roles=(restored.migration_role, restored.app_role),
            )
        finally:
            connection.close()

    evidence, metrics = _process(restored, backup, validate=validate, records=records)
    assert ("PutRestoreValidationResult", {
        "RestoreJobId": "job-1", "ValidationStatus": "SUCCESSFUL",
        "ValidationStatusMessage": "3 queries and 2 roles verified",
    }) in backup.calls  # fmt: skip
    assert metrics == {
        "RestoreTimeSeconds": 1500.0,
        "RecoveryPointAgeSeconds": 7200.0,
        "RestoreTestFailed": 0.0,
    }
    assert records == [evidence]
    assert evidence["evidence"] == "restore-test-evidence"
    assert evidence["recovery_point_arn"].endswith("job-xyz")
    assert evidence["validation"]["passed"] is True
    print(json.dumps(records, default=str))  # what the handler logs
    out, err = capfd.readouterr()
    assert restored.database.master_password not in out + err + json.dumps(records, default=str)


def test_a_refused_connection_is_a_failed_test_without_secrets(restored, tmp_path, capfd):
    backup = FakeBackup({"job-1": _job()})
    other = build_ssl_context(make_tls_files(tmp_path / "other").ca_cert)
    records: list[dict[str, Any]] = []

    def validate(endpoint):
        connect_restored(restored.store, restored.master_secret_arn, tls_connection_factory(other), endpoint)
        return ValidationOutcome(passed=True, message="unreachable")

    evidence, metrics = _process(restored, backup, validate=validate, records=records)
    (put,) = [kwargs for name, kwargs in backup.calls if name == "PutRestoreValidationResult"]
    assert put["ValidationStatus"] == "FAILED"
    assert metrics["RestoreTestFailed"] == 1.0
    print(json.dumps(records, default=str))
    out, err = capfd.readouterr()
    assert restored.database.master_password not in out + err + json.dumps(evidence, default=str)


def test_restore_jobs_of_other_plans_are_ignored(restored):
    backup = FakeBackup(
        {"job-1": _job(plan_arn="arn:aws:backup:us-east-1:123456789012:restore-testing-plan:other")}
    )
    records: list[dict[str, Any]] = []
    evidence, metrics = _process(restored, backup, validate=lambda endpoint: None, records=records)
    assert evidence is None and records == [] and metrics == {}
    assert [name for name, _ in backup.calls] == ["DescribeRestoreJob"]


def test_freshness_is_the_age_of_the_newest_successful_test():
    backup = FakeBackup(
        {
            "old": _job("old", ValidationStatus="SUCCESSFUL"),
            "new-failed": _job(
                "new-failed", ValidationStatus="FAILED", CompletionDate=CREATED + timedelta(days=6)
            ),
        }
    )
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        age = publish_freshness(
            backup,
            cloudwatch,
            environment="staging",
            restore_testing_plan_arn=PLAN_ARN,
            now=CREATED + timedelta(days=8, minutes=25),
        )
        (metric,) = cloudwatch.list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"]
    assert age == 8 * 86_400
    assert metric["MetricName"] == "SecondsSinceLastSuccessfulRestoreTest"
    assert backup.calls == [
        ("ListRestoreJobs", {"ByRestoreTestingPlanArn": PLAN_ARN, "ByStatus": "COMPLETED"})
    ]


def test_no_successful_test_publishes_nothing_so_the_alarm_breaches():
    backup = FakeBackup({"failed": _job("failed", ValidationStatus="FAILED")})
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        age = publish_freshness(
            backup, cloudwatch, environment="staging", restore_testing_plan_arn=PLAN_ARN, now=CREATED
        )
        assert cloudwatch.list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"] == []
    assert age is None


def test_a_drill_validates_the_named_instance_and_records_evidence(restored, capfd):
    from lambdas.restore_validation.validation import validate_instance

    rds = FakeRds("localhost", restored.server.port, restored.database.name)
    records: list[dict[str, Any]] = []
    evidence = validate_instance(
        "revenuepilot-staging-restored-202612030910",
        environment="staging",
        rds=rds,
        validate=lambda endpoint: _validate(restored),
        record=records.append,
        now=lambda: CREATED,
    )
    assert rds.calls == [{"DBInstanceIdentifier": "revenuepilot-staging-restored-202612030910"}]
    assert evidence["evidence"] == "restore-drill-evidence" and evidence["passed"] is True
    assert records == [evidence]
    print(json.dumps(records))
    out, err = capfd.readouterr()
    assert restored.database.master_password not in out + err
