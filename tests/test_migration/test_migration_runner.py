"""The runner against a real TLS PostgreSQL, with a tiny Alembic project and moto's Secrets Manager."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from contract.secret import DatabaseLogin, SecretFormatError
from migration.runner.alembic_command import RevisionError, alembic_argv, redact
from migration.runner.credentials import child_environment, database_url, parse_migration_login
from migration.runner.validation import parse_query
from tests.test_migration.conftest import SPECIAL_PASSWORD, MigrationTarget

pytestmark = pytest.mark.postgres
CREDENTIALS = DatabaseLogin(host="db.example", port=5432, database="revenuepilot", username="migration",
                                   password=SPECIAL_PASSWORD)  # fmt: skip


def _assert_no_secret(
    output: str, capfd: pytest.CaptureFixture[str], password: str = SPECIAL_PASSWORD
) -> None:
    """Neither the runner's output stream nor this process's real stdout/stderr (file descriptors 1
    and 2, where a child process or a stray handler would write) show the password or the URL."""
    real = capfd.readouterr()
    for where, text in (("output", output), ("stdout", real.out), ("stderr", real.err)):
        assert password not in text, where
        assert quote(password, safe="") not in text, where
        assert "DATABASE_URL" not in text, where


def test_upgrade_current_downgrade(target: MigrationTarget, capfd: pytest.CaptureFixture[str]) -> None:
    outputs = []
    status, output = target.run("upgrade", "head")
    outputs.append(output)
    assert status == 0, output
    assert "Running upgrade  -> 0001" in output and "Running upgrade 0001 -> 0002" in output
    assert target.admin_run("SELECT version_num FROM alembic_version") == [["0002"]]
    owner = target.admin_run("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'")
    assert owner == [[target.role]]  # Alembic connected as the migration role

    status, output = target.run("current")
    outputs.append(output)
    assert status == 0 and "0002 (head)" in output

    status, output = target.run("downgrade", "-1")
    assert status == 0, output
    assert target.admin_run("SELECT version_num FROM alembic_version") == [["0001"]]
    outputs.append(output)
    _assert_no_secret("\n".join(outputs), capfd)


def test_alembic_failure_status_is_the_exit_status(
    target: MigrationTarget, capfd: pytest.CaptureFixture[str]
) -> None:
    status, output = target.run("upgrade", "ffff")
    assert status != 0
    assert "alembic upgrade exited with status" in output
    _assert_no_secret(output, capfd)


def test_wrong_ca_is_refused(
    target: MigrationTarget, foreign_ca: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    status, output = target.run("upgrade", "head", ca_bundle=foreign_ca)
    assert status != 0
    assert "certificate verify failed" in output
    assert target.admin_run("SELECT count(*) FROM pg_tables WHERE tablename = 'alembic_version'") == [[0]]
    status, output = target.run("validate", ca_bundle=foreign_ca)
    assert status == 1
    _assert_no_secret(output, capfd)


def test_validate_counts_in_a_read_only_transaction(
    target: MigrationTarget, capfd: pytest.CaptureFixture[str]
) -> None:
    assert target.run("upgrade", "head")[0] == 0
    target.admin_run("INSERT INTO encounters DEFAULT VALUES; INSERT INTO encounters DEFAULT VALUES")
    target.admin_run(
        "INSERT INTO notes (status) VALUES ('finalized'), ('draft'), ('finalized'), ('finalized')"
    )
    target.admin_run("INSERT INTO suggestions (created_at) VALUES (now()), (now() - interval '3 days')")
    status, output = target.run("validate")
    assert status == 0, output
    report = json.loads(output.strip().splitlines()[-1])
    assert report["validation"] == {"encounters": 2, "finalized_notes": 3, "recent_suggestions": 1}
    assert report["revisions"] == ["0002"]  # `alembic current`, read in the same transaction

    status, output = target.run(
        "validate", "--query", "sneaky=SELECT count(*) FROM (SELECT nextval('notes_id_seq')) s"
    )
    assert status == 1 and "SQLSTATE 25006, read-only transaction" in output
    _assert_no_secret(output, capfd)


def test_validate_reports_the_alembic_revision_before_and_after(target: MigrationTarget) -> None:
    """The evidence record's revisions: none before the first migration, then what `alembic current` says;
    a value in alembic_version that is not a revision id is never reported (it fails the run instead)."""
    status, output = target.run("validate", "--query", "one=SELECT 1")
    assert status == 0, output
    assert json.loads(output.strip().splitlines()[-1]) == {"revisions": [], "validation": {"one": 1}}
    assert target.run("upgrade", "0001")[0] == 0
    status, output = target.run("validate", "--query", "one=SELECT 1")
    assert json.loads(output.strip().splitlines()[-1])["revisions"] == ["0001"]
    _, current = target.run("current")
    assert "0001" in current  # the same answer as `alembic current`
    planted = "Jane Roe DOB 1970-01-01"
    target.admin_run(f"UPDATE alembic_version SET version_num = '{planted[:32]}'")  # noqa: S608 - a constant
    status, output = target.run("validate", "--query", "one=SELECT 1")
    assert status == 1
    assert "not a revision id" in output and "Jane" not in output


def test_validate_reports_to_the_task_token(target: MigrationTarget) -> None:
    class FakeStepFunctions:  # moto cannot hand out a task token without running an ECS task
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, str]]] = []

        def send_task_success(self, **kwargs: str) -> None:
            self.calls.append(("success", kwargs))

        def send_task_failure(self, **kwargs: str) -> None:
            self.calls.append(("failure", kwargs))

    assert target.run("upgrade", "head")[0] == 0
    sfn = FakeStepFunctions()
    status, _ = target.run("validate", "--task-token", "token-1", stepfunctions=sfn)
    assert status == 0
    assert sfn.calls == [
        (
            "success",
            {
                "taskToken": "token-1",
                "output": json.dumps(
                    {
                        "counts": {"encounters": 0, "finalized_notes": 0, "recent_suggestions": 0},
                        "revisions": ["0002"],
                    }
                ),
            },
        )
    ]
    status, _ = target.run("validate", "--query", "missing=SELECT count(*) FROM nowhere", "--task-token", "token-2",
                           stepfunctions=sfn)  # fmt: skip
    assert status == 1 and sfn.calls[-1][0] == "failure"
    assert (
        "SQLSTATE 42P01, undefined table" in sfn.calls[-1][1]["cause"]
        and SPECIAL_PASSWORD not in sfn.calls[-1][1]["cause"]
    )


def test_missing_secret_is_reported_without_values(
    target: MigrationTarget, capfd: pytest.CaptureFixture[str]
) -> None:
    target.secret_arn = target.secret_arn + "-gone"
    status, output = target.run("current")
    assert status == 1 and "ResourceNotFoundException" in output
    _assert_no_secret(output, capfd)


def test_database_url_encodes_the_password_and_requires_verify_full() -> None:
    url = database_url(CREDENTIALS, scheme="postgresql+psycopg")
    assert (
        url
        == "postgresql+psycopg://migration:p%40ss%3Aw%2Frd%25%3F%23%26@db.example:5432/revenuepilot?sslmode=verify-full"
    )
    from sqlalchemy.engine import make_url

    assert make_url(url).password == SPECIAL_PASSWORD
    assert SPECIAL_PASSWORD not in repr(CREDENTIALS) and SPECIAL_PASSWORD not in str(CREDENTIALS)


def test_child_environment_sets_tls_and_drops_runner_paths() -> None:
    env = child_environment(
        {"PATH": "/usr/bin", "PYTHONPATH": "/opt/rp-migration:/opt/rp-migration/lib:/app", "DATABASE_URL": "old"},
        CREDENTIALS, ca_bundle=Path("/etc/ca.pem"), connect_timeout=7, scheme="postgresql",
        runner_paths=("/opt/rp-migration", "/opt/rp-migration/lib"),
    )  # fmt: skip
    assert env["PGSSLMODE"] == "verify-full" and env["PGSSLROOTCERT"] == "/etc/ca.pem"
    assert env["PGCONNECT_TIMEOUT"] == "7" and env["PYTHONPATH"] == "/app"
    assert env["DATABASE_URL"].startswith("postgresql://migration:") and env["PATH"] == "/usr/bin"


@pytest.mark.parametrize(
    ("secret", "field"),
    [
        ("not json", "not JSON"),
        (json.dumps({"host": "h", "port": 5432, "database": "d"}), "'migration'"),
        (
            json.dumps(
                {
                    "host": "h",
                    "port": "x",
                    "database": "d",
                    "migration": {"username": "m", "password": "s3cr3t"},
                }
            ),
            "'port'",
        ),
        (
            json.dumps({"host": "h", "port": 5432, "database": "d", "migration": {"username": "m"}}),
            "migration.password",
        ),
    ],
)
def test_malformed_secrets_name_the_field_not_the_value(secret: str, field: str) -> None:
    with pytest.raises(SecretFormatError, match=field) as error:
        parse_migration_login(secret)
    assert "s3cr3t" not in str(error.value)


def test_arguments_are_checked() -> None:
    assert alembic_argv("py", "a.ini", "downgrade", "-1")[-2:] == ["downgrade", "-1"]
    assert alembic_argv("py", "a.ini", "current", None)[-1] == "current"
    with pytest.raises(RevisionError):
        alembic_argv("py", "a.ini", "upgrade", "head; rm -rf /")
    with pytest.raises(ValueError, match="one SELECT"):
        parse_query("x=DELETE FROM notes")
    assert redact("pw=p@ss and p%40ss", ("p@ss", "p%40ss")) == "pw=*** and ***"


def test_runner_defaults_match_the_configured_defaults() -> None:
    from config.schema import DEFAULT_VALIDATION_QUERIES, MigrationConfig
    from migration.runner.validation import DEFAULT_QUERIES

    assert DEFAULT_QUERIES == DEFAULT_VALIDATION_QUERIES
    assert MigrationConfig().alembic_config_path == "backend/alembic/alembic.ini"


def test_a_rotation_in_progress_uses_the_pending_password(
    target: MigrationTarget, capfd: pytest.CaptureFixture[str]
) -> None:
    """Between setSecret and finishSecret AWSCURRENT no longer logs in; the runner takes AWSPENDING."""
    from pg8000.native import identifier, literal

    secret = json.loads(target.secretsmanager.get_secret_value(SecretId=target.secret_arn)["SecretString"])
    pending_password = "Pending-" + SPECIAL_PASSWORD
    secret["migration"]["password"] = pending_password
    target.secretsmanager.put_secret_value(
        SecretId=target.secret_arn, SecretString=json.dumps(secret), VersionStages=["AWSPENDING"]
    )
    target.admin_run("SET log_statement = 'none'; SET log_min_duration_statement = -1; ALTER ROLE " + identifier(target.role)
                     + " PASSWORD " + literal(pending_password))  # fmt: skip

    status, output = target.run("upgrade", "head")
    assert status == 0, output
    assert target.admin_run("SELECT version_num FROM alembic_version") == [["0002"]]
    _assert_no_secret(output, capfd, password=pending_password)
