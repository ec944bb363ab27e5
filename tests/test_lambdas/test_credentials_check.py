"""The periodic credentials check: detects, repairs the known half-finished states, publishes EMF metrics."""

from __future__ import annotations

import json

import pytest

from lambdas.common.roles import set_role_password
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING
from lambdas.credentials_check.check import run_check
from lambdas.credentials_check.handler import lambda_handler as check_handler
from lambdas.credentials_check.metrics import emf_document, secret_name
from lambdas.db_bootstrap.handler import on_event
from lambdas.secret_rotation.rotation import rotate

pytestmark = pytest.mark.postgres


@pytest.fixture
def bootstrapped(deployment, lambda_context, monkeypatch):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    deployment.enable_rotation()
    monkeypatch.setenv("APP_SECRET_ARN", deployment.app_secret_arn)
    monkeypatch.setenv("METRIC_NAMESPACE", "RevenuePilot/Database")
    return deployment


def _set_passwords(deployment, password_by_role):
    admin = deployment.admin()
    try:
        admin.run("SET log_statement = 'none'")
        for role, password in password_by_role.items():
            set_role_password(admin, role, password)
    finally:
        admin.close()


def _current_works(deployment):
    current = deployment.current()
    return all(
        deployment.can_login(current[u]["username"], current[u]["password"])
        for u in ("migration", "app_user")
    )


def _emf_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_healthy_secret_publishes_zero_and_changes_nothing(bootstrapped, lambda_context, capfd):
    stages = bootstrapped.stages()
    summary = check_handler({}, lambda_context)
    assert summary == {"healthy": True, "repaired": [], "problems": []}
    assert bootstrapped.stages() == stages
    (metrics,) = _emf_lines(capfd.readouterr().out)
    assert metrics["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "RevenuePilot/Database",
            "Dimensions": [["Secret"]],
            "Metrics": [
                {"Name": "CredentialsCheckFailed", "Unit": "Count"},
                {"Name": "CredentialsRepaired", "Unit": "Count"},
            ],
        }
    ]
    assert metrics["Secret"] == secret_name(bootstrapped.app_secret_arn)
    assert metrics["Secret"].startswith("revenuepilot/test/database-")
    assert (metrics["CredentialsCheckFailed"], metrics["CredentialsRepaired"]) == (0, 0)


def test_awscurrent_not_in_the_database_and_no_rotation_is_restored(bootstrapped, lambda_context, capfd):
    deployment = bootstrapped
    _set_passwords(deployment, {deployment.app_role: "Lost-password-0123456789-abcdefghijkl"})
    assert not _current_works(deployment)

    summary = check_handler({}, lambda_context)

    assert summary["healthy"] and summary["repaired"] == [f"restored {deployment.app_role}"]
    assert _current_works(deployment)
    (metrics,) = _emf_lines(capfd.readouterr().out)
    assert (metrics["CredentialsCheckFailed"], metrics["CredentialsRepaired"]) == (0, 1)


def test_pending_passwords_in_the_database_complete_the_rotation(bootstrapped):
    deployment = bootstrapped
    token = deployment.begin_rotation()
    deps = deployment.rotation_deps()
    for step in ("createSecret", "setSecret"):
        rotate(step, deployment.app_secret_arn, token, deps)
    pending = json.loads(
        deployment.store.get_string(deployment.app_secret_arn, stage=AWSPENDING, version_id=token)
    )
    # Half of it was undone (say, by hand): the rotation is still completed for both users.
    _set_passwords(deployment, {deployment.migration_role: deployment.current()["migration"]["password"]})

    report = run_check(deployment.check_deps())

    assert report.healthy and report.repaired == [f"completed rotation {token}"]
    assert deployment.stages()[token] == [AWSCURRENT]
    assert deployment.current() == pending
    assert _current_works(deployment)


def test_a_rotation_that_cannot_complete_is_restored_instead(bootstrapped):
    deployment = bootstrapped
    token = deployment.begin_rotation()
    deps = deployment.rotation_deps()
    for step in ("createSecret", "setSecret"):
        rotate(step, deployment.app_secret_arn, token, deps)
    admin = deployment.admin()
    try:  # app_user can no longer use the schema: the pending version cannot be proven
        for statement in (
            f"REVOKE USAGE ON SCHEMA public FROM {deployment.app_role}",
            "REVOKE USAGE ON SCHEMA public FROM PUBLIC",
        ):
            admin.run(statement)
    finally:
        admin.close()

    report = run_check(deployment.check_deps())

    assert report.healthy
    assert sorted(report.repaired) == sorted(
        [f"restored {deployment.migration_role}", f"restored {deployment.app_role}"]
    )
    assert AWSPENDING in deployment.stages()[token]  # left for Secrets Manager's retry
    assert _current_works(deployment)


def test_endpoint_drift_is_repaired_when_the_endpoint_is_configured(
    bootstrapped, lambda_context, monkeypatch
):
    deployment = bootstrapped
    before = deployment.current()
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(deployment.server.port))

    summary = check_handler({}, lambda_context)

    assert summary["healthy"] and summary["repaired"] == ["endpoint"]
    after = deployment.current()
    assert after["host"] == "127.0.0.1"
    assert {k: v for k, v in after.items() if k != "host"} == {k: v for k, v in before.items() if k != "host"}


def test_leftover_pending_label_on_the_current_version_is_removed(bootstrapped):
    deployment = bootstrapped
    current_version = next(v for v, s in deployment.stages().items() if AWSCURRENT in s)
    deployment.client.update_secret_version_stage(
        SecretId=deployment.app_secret_arn, VersionStage=AWSPENDING, MoveToVersionId=current_version
    )
    report = run_check(deployment.check_deps())
    assert report.healthy and report.repaired == ["leftover AWSPENDING label"]
    assert deployment.stages()[current_version] == [AWSCURRENT]


def test_unreachable_database_reports_failure_without_secrets(bootstrapped, lambda_context, capfd):
    deployment = bootstrapped
    passwords = [deployment.current()[u]["password"] for u in ("migration", "app_user")]
    deployment.server.stop()
    try:
        summary = check_handler({}, lambda_context)
    finally:
        deployment.server.start()
    assert not summary["healthy"] and summary["problems"]
    output = capfd.readouterr()
    (metrics,) = _emf_lines(output.out)
    assert metrics["CredentialsCheckFailed"] == 1
    for text in (output.out, output.err, json.dumps(summary)):
        for password in [*passwords, deployment.database.master_password]:
            assert password not in text


def test_secret_name_and_emf_document():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:revenuepilot/prod/database-AbC123"
    assert secret_name(arn) == "revenuepilot/prod/database"
    assert secret_name("revenuepilot/prod/database") == "revenuepilot/prod/database"
    document = emf_document(
        namespace="N", secret_id=arn, values={"CredentialsCheckFailed": 1}, timestamp_ms=5
    )
    assert document == {
        "_aws": {
            "Timestamp": 5,
            "CloudWatchMetrics": [
                {
                    "Namespace": "N",
                    "Dimensions": [["Secret"]],
                    "Metrics": [{"Name": "CredentialsCheckFailed", "Unit": "Count"}],
                }
            ],
        },
        "Secret": "revenuepilot/prod/database",
        "CredentialsCheckFailed": 1,
    }


def test_secrets_manager_failing_reports_failure_and_changes_nothing(bootstrapped):
    from lambdas.common.secret_store import SecretStore
    from tests.support.faults import ThrottledSecretsManager

    deployment = bootstrapped
    stages = deployment.stages()
    throttled = ThrottledSecretsManager(deployment.client, ["get_secret_value", "describe_secret"])
    report = run_check(deployment.check_deps(store=SecretStore(throttled)))
    assert not report.healthy and not report.repaired
    assert report.metric_values == {"CredentialsCheckFailed": 1, "CredentialsRepaired": 0}
    assert any("ThrottlingException" in problem for problem in report.problems)
    assert deployment.stages() == stages
