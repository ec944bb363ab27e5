"""A TLS PostgreSQL per session and, per test, a database owned by a `migration` role whose password
is full of URL-special characters, plus the application secret in moto's Secrets Manager."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pg8000.native import identifier, literal

from tests.support.aws import use_fake_aws_credentials
from tests.support.postgres import (
    PostgresServer,
    make_tls_files,
    quiet_session,
    require_binaries,
    running_server,
)

REGION = "us-east-1"
ALEMBIC_INI = Path(__file__).resolve().parent / "alembic_project" / "alembic.ini"
SPECIAL_PASSWORD = "p@ss:w/rd%?#&"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with running_server(require_binaries(), tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the server's certificate."""
    return make_tls_files(tmp_path_factory.mktemp("foreign-ca")).ca_cert


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_aws_credentials(monkeypatch, region=REGION)


@dataclass
class MigrationTarget:
    server: PostgresServer
    database: str
    role: str
    password: str
    secret_arn: str
    secretsmanager: Any

    def run(
        self, *arguments: str, ca_bundle: Path | None = None, stepfunctions: Any = None
    ) -> tuple[int, str]:
        from migration.runner.cli import main

        out = StringIO()
        status = main(
            [
                "--secret-id", self.secret_arn,
                "--alembic-config", str(ALEMBIC_INI),
                "--ca-bundle", str(ca_bundle or self.server.ca_cert),
                "--connect-timeout", "5",
                "--url-scheme", "postgresql+psycopg",
                "--python", sys.executable,
                *arguments,
            ],
            secretsmanager=self.secretsmanager,
            stepfunctions=stepfunctions,
            out=out,
        )  # fmt: skip
        return status, out.getvalue()

    def admin_run(self, sql: str) -> Any:
        connection = self.server.admin(self.database)
        try:
            return connection.run(sql)
        finally:
            connection.close()


@pytest.fixture
def target(pg_server: PostgresServer) -> Iterator[MigrationTarget]:
    n = next(_counter)
    role, database = f"migration_{n}", f"revenuepilot_migration_{n}"
    admin = pg_server.admin()
    try:
        quiet_session(admin)
        admin.run(f"CREATE ROLE {identifier(role)} LOGIN PASSWORD {literal(SPECIAL_PASSWORD)}")
        admin.run(f"CREATE DATABASE {identifier(database)} OWNER {identifier(role)} TEMPLATE template0")
    finally:
        admin.close()
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        secret = {
            "host": "localhost",
            "port": pg_server.port,
            "database": database,
            "migration": {"username": role, "password": SPECIAL_PASSWORD},
            "app_user": {"username": f"app_{n}", "password": "unused-here"},
            "rotatedAt": "2025-01-01T00:00:00Z",
        }
        arn = client.create_secret(Name=f"revenuepilot/test/database-{n}", SecretString=json.dumps(secret))[
            "ARN"
        ]
        yield MigrationTarget(
            server=pg_server, database=database, role=role, password=SPECIAL_PASSWORD, secret_arn=arn,
            secretsmanager=client,
        )  # fmt: skip
