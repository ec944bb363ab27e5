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
from contract.names import LOGIN_ROLE_ENV_VAR, LOGIN_SECRET_ID_ENV_VAR, MASTER_SECRET_ARN_ENV_VAR
from lambdas.common.db import DatabaseConnectionError, tls_connection_factory
from lambdas.common.secret_store import SecretStore
from lambdas.common.tls import build_ssl_context
from lambdas.restore_validation.validation import (
    METRIC_NAMESPACE,
    ValidationOutcome,
    application_role_login,
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
    assert outcome.message == "validation query 'finalized_notes' failed: SQLSTATE 42P01, undefined table"
    assert outcome.query_results == {"encounters": 2}


PLANTED = "Jane Roe DOB 1970-01-01 MRN 889977"


def test_a_query_failing_on_a_patient_value_reports_no_value(restored):
    """PostgreSQL quotes the value it could not convert; the outcome (AWS Backup's validation message, the
    evidence line, the alert e-mail) carries only the query's name, the SQLSTATE and a fixed text."""
    admin = restored.admin()
    admin.run("INSERT INTO notes VALUES (2, :value)", value=PLANTED)
    admin.close()
    queries = (("status_as_number", "SELECT SUM(status::int) FROM notes WHERE id = 2"),)
    outcome = _validate(restored, queries=queries)
    assert not outcome.passed
    assert outcome.message == (
        "validation query 'status_as_number' failed: SQLSTATE 22P02, "
        "data exception (a value could not be converted or was out of range)"
    )
    assert "Jane" not in repr(outcome) and "889977" not in repr(outcome)


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


# --- The DR region's validation (decision 0010): `migration` from the application secret's replica ---------
#
# Secrets Manager's replication is moto's here (it copies each new version and its stages to the replica);
# that AWS propagates rotations to a replica is the Secrets Manager documentation's word, not proven here.
# Neither is AWS Backup's restore-testing selection of cross-Region copies: nothing but an account can run it.

DR_REGION = "us-west-2"


@pytest.fixture
def dr_restored(restored):
    """The restored data as the DR copy brings it: `migration` can log in with the password of the snapshot's
    day, and the application secret (both passwords) is replicated to the DR region."""
    migration_password = "migration-password-of-the-snapshot-day-1"
    admin = restored.admin()
    try:
        admin.run(f"ALTER ROLE {restored.migration_role} LOGIN PASSWORD '{migration_password}'")
        admin.run(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {restored.migration_role}")
    finally:
        admin.close()
    secret = {
        "host": "revenuepilot-production.primary.example",  # the primary's endpoint: never used in the DR
        "port": restored.server.port,
        "database": restored.database.name,
        "migration": {"username": restored.migration_role, "password": migration_password},
        "app_user": {"username": restored.app_role, "password": "app-user-password-2"},
    }
    name = f"revenuepilot/dr-test/database-{restored.database.name}"
    restored.client.create_secret(
        Name=name, SecretString=json.dumps(secret), AddReplicaRegions=[{"Region": DR_REGION}]
    )
    replica = SecretStore(boto3.client("secretsmanager", region_name=DR_REGION))
    return restored, replica, name, secret


def _validate_dr(restored, replica, name, *, connect=None):
    connection = connect_restored(
        replica,
        name,
        connect or restored.connection_factory(),
        restored.endpoint,
        login=application_role_login("migration"),
    )
    try:
        return validate_restored_database(
            connection,
            queries=DEFAULT_VALIDATION_QUERIES,
            expected_roles=(restored.migration_role, restored.app_role),
        )
    finally:
        connection.close()


def test_the_dr_validation_logs_in_as_migration_with_the_replica_and_runs_the_queries(dr_restored):
    restored, replica, name, _ = dr_restored
    outcome = _validate_dr(restored, replica, name)
    assert outcome.passed, outcome.message
    assert outcome.query_results == {"encounters": 2, "finalized_notes": 1, "recent_suggestions": 0}


def test_after_a_rotation_the_dr_validation_logs_in_with_the_previous_password(dr_restored):
    # Rotated in the primary region after the snapshot: the replica's AWSCURRENT is newer than the copy.
    restored, replica, name, secret = dr_restored
    rotated = {**secret, "migration": {**secret["migration"], "password": "rotated-after-the-snapshot-2"}}
    restored.client.put_secret_value(SecretId=name, SecretString=json.dumps(rotated))
    assert "AWSPREVIOUS" in str(replica.describe(name).version_stages)
    assert _validate_dr(restored, replica, name).passed


def test_the_dr_validation_reads_no_password_less_secret_and_names_it(restored):
    # The template CloudFormation writes (no passwords yet) is not a login: a failed test, no traceback.
    with pytest.raises(DatabaseConnectionError, match="has no usable version"):
        connect_restored(
            restored.store,
            restored.app_secret_arn,
            restored.connection_factory(),
            restored.endpoint,
            login=application_role_login("migration"),
        )


def test_the_dr_validation_refuses_a_certificate_from_another_ca(dr_restored, tmp_path):
    restored, replica, name, _ = dr_restored
    other = tls_connection_factory(build_ssl_context(make_tls_files(tmp_path / "other").ca_cert))
    with pytest.raises(DatabaseConnectionError) as raised:
        _validate_dr(restored, replica, name, connect=other)
    assert "certificate" in str(raised.value).lower()


def test_a_dr_restore_job_is_recorded_without_any_password(dr_restored, capfd):
    restored, replica, name, secret = dr_restored
    backup = FakeBackup(
        {"job-1": _job(CreatedResourceArn=f"arn:aws:rds:{DR_REGION}:1:db:awsbackup-copy-test")}
    )
    records: list[dict[str, Any]] = []
    evidence, metrics = _process(
        restored, backup, validate=lambda endpoint: _validate_dr(restored, replica, name), records=records
    )
    assert evidence is not None and evidence["validation"]["passed"] is True
    assert metrics["RestoreTestFailed"] == 0.0
    print(json.dumps(records, default=str))  # what the handler logs
    out, err = capfd.readouterr()
    for password in (secret["migration"]["password"], secret["app_user"]["password"]):
        assert password not in out + err + json.dumps(evidence, default=str)


def test_the_handler_logs_in_with_the_master_secret_or_the_replicated_application_secret():
    from lambdas.restore_validation.handler import login_secret

    master_id, master_login = login_secret({MASTER_SECRET_ARN_ENV_VAR: "arn:master"})
    assert master_id == "arn:master"
    assert master_login('{"username": "rp_admin", "password": "x"}').username == "rp_admin"
    dr_id, dr_login = login_secret(
        {LOGIN_SECRET_ID_ENV_VAR: "revenuepilot/prod/database", LOGIN_ROLE_ENV_VAR: "migration"}
    )
    assert dr_id == "revenuepilot/prod/database"
    text = json.dumps(
        {
            "host": "h",
            "port": 5432,
            "database": "d",
            "migration": {"username": "migration", "password": "m"},
            "app_user": {"username": "app_user", "password": "a"},
        }
    )
    assert dr_login(text).username == "migration"
