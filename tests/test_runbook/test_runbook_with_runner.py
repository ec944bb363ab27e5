"""The runbook's validate runs played by the real runner (`python -m migration.runner validate`)
against a TLS PostgreSQL: the runner reads the application secret from moto's Secrets Manager
(the ARN the synthesized command carries), counts over verified TLS and answers the task token
itself; the state machine compares the counts from before and after the (played) migration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from io import StringIO

import pytest
from pg8000.native import identifier, literal

from tests.support.postgres import PostgresServer, quiet_session, require_binaries, running_server
from tests.support.stepfunctions import Runbook, TaskOutcome, TaskRun, runner_arguments_exit_code

pytestmark = pytest.mark.postgres

ROLE, DATABASE, PASSWORD = "migration", "revenuepilot", "p@ss:w/rd%?#&"
SCHEMA = [
    "CREATE TABLE encounters (id serial PRIMARY KEY)",
    "CREATE TABLE notes (id serial PRIMARY KEY, status text NOT NULL)",
    "CREATE TABLE suggestions (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())",
    "INSERT INTO encounters SELECT FROM generate_series(1, 5)",
    "INSERT INTO notes (status) VALUES ('finalized'), ('finalized'), ('draft')",
    "INSERT INTO suggestions DEFAULT VALUES",
]


@pytest.fixture(scope="module")
def database() -> Iterator[PostgresServer]:
    with running_server(require_binaries(), tls=True) as server:
        admin = server.admin()
        try:
            quiet_session(admin)
            admin.run(f"CREATE ROLE {identifier(ROLE)} LOGIN PASSWORD {literal(PASSWORD)}")
            admin.run(f"CREATE DATABASE {identifier(DATABASE)} OWNER {identifier(ROLE)} TEMPLATE template0")
        finally:
            admin.close()
        owner = server.connect(ROLE, PASSWORD, database=DATABASE)
        try:
            for statement in SCHEMA:
                owner.run(statement)
        finally:
            owner.close()
        yield server


class RealRunner:
    """Validate runs go through the runner's `main` with the task's own command and token."""

    def __init__(self, runbook: Runbook, server: PostgresServer, *, migration: str | None = None) -> None:
        self.runbook, self.server, self.migration = runbook, server, migration
        self.outputs: list[str] = []

    def __call__(self, run: TaskRun) -> TaskOutcome:
        from migration.runner.cli import main

        if run.action != "validate":
            if self.migration:  # what the played migration does to the data
                owner = self.server.connect(ROLE, PASSWORD, database=DATABASE)
                try:
                    owner.run(self.migration)
                finally:
                    owner.close()
            return TaskOutcome(exit_code=runner_arguments_exit_code(run.command) or 0)
        out = StringIO()
        saved = {name: os.environ.get(name) for name in ("SFN_TASK_TOKEN", "PGSSLROOTCERT")}
        os.environ.update({**run.environment, "PGSSLROOTCERT": str(self.server.ca_cert)})
        try:
            status = main(
                run.command,
                secretsmanager=self.runbook.client("secretsmanager"),
                stepfunctions=self.runbook.client("stepfunctions"),
                out=out,
            )
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self.outputs.append(out.getvalue())
        return TaskOutcome(exit_code=status)  # the runner has answered the token itself


@pytest.fixture
def runbook_on_postgres(runbook: Runbook, database: PostgresServer) -> Runbook:
    runbook.create_instance()
    secret_id = runbook.client("secretsmanager").list_secrets()["SecretList"][0]["ARN"]
    secret = {
        "host": "localhost",
        "port": database.port,
        "database": DATABASE,
        "migration": {"username": ROLE, "password": PASSWORD},
        "app_user": {"username": "app_user", "password": "unused-here"},
        "rotatedAt": "2025-01-01T00:00:00Z",
    }
    runbook.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(secret))
    return runbook


def test_real_runner_reports_counts_before_and_after(
    runbook_on_postgres: Runbook, database: PostgresServer
) -> None:
    runner = RealRunner(runbook_on_postgres, database, migration="INSERT INTO encounters DEFAULT VALUES")
    execution = runbook_on_postgres.run({"action": "upgrade", "revision": "head"}, runner)

    assert execution["status"] == "SUCCEEDED", (execution, runner.outputs)
    output = json.loads(execution["output"])
    assert output["validationBefore"] == {"encounters": 5, "finalized_notes": 2, "recent_suggestions": 1}
    assert output["validation"] == {"encounters": 6, "finalized_notes": 2, "recent_suggestions": 1}
    assert PASSWORD not in "".join(runner.outputs)


def test_real_counts_that_dropped_fail_the_runbook(
    runbook_on_postgres: Runbook, database: PostgresServer
) -> None:
    runner = RealRunner(
        runbook_on_postgres, database, migration="UPDATE notes SET status = 'archived' WHERE id = 1"
    )
    execution = runbook_on_postgres.run({"action": "upgrade", "revision": "head"}, runner)

    assert execution["status"] == "FAILED", runner.outputs
    assert execution["error"] == "CountsDropped"
    assert "finalized_notes 2 -> 1" in execution["cause"]
    notice = runbook_on_postgres.notifications()[-1]["message"]
    assert notice["error"] == "CountsDropped" and notice["snapshotId"].startswith("pre-migration-")
