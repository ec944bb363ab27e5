"""Fixtures for the Lambda tests: one TLS PostgreSQL cluster per session, moto for Secrets Manager.

Each test gets its own database and its own role names (roles are cluster-wide), so tests are isolated
without a new cluster per test.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

import boto3
import pg8000.native
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from contract.names import (
    APP_SCHEMAS_ENV_VAR,
    APP_USER_ROLE_NAME_ENV_VAR,
    CA_BUNDLE_ENV_VAR,
    MASTER_SECRET_ARN_ENV_VAR,
    MIGRATION_ROLE_NAME_ENV_VAR,
)
from lambdas.common.clients import secretsmanager_client
from lambdas.common.db import ConnectionFactory, Endpoint, tls_connection_factory
from lambdas.common.passwords import generate_password
from lambdas.common.role_guard import RoleNames
from lambdas.common.secret_store import SecretStore
from lambdas.common.tls import build_ssl_context
from lambdas.credentials_check.check import CheckDeps
from lambdas.secret_rotation.rotation import RotationDeps
from tests.support.aws import use_fake_aws_credentials
from tests.support.moto_rotation import (
    enable_rotation,
    keep_default_version_with_awscurrent,
    stage_pending_version,
)
from tests.support.postgres import (
    PostgresServer,
    RdsLikeDatabase,
    find_binaries,
    require_binaries,
    running_server,
)

REGION = "us-east-1"
SERVICE_NAME = "revenuepilot-db-test"
# Lambda sets the environment before importing the handler; the handler modules create their Powertools
# Logger at import, so the service name has to be in place before the test modules import them.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
_counter = itertools.count(1)
_servers_used: list[str] = []


def pytest_report_header(config: pytest.Config) -> str:
    """Which PostgreSQL the Lambda tests run against (production: RDS PostgreSQL 17).

    pytest asks only the conftests it loads at startup, so this shows for ``pytest tests/test_lambdas``;
    ``pytest_terminal_summary`` below reports the server actually used in every case.
    """
    try:
        binaries = find_binaries()
    except Exception as exc:  # the fixtures report it properly; the header must not break collection
        return f"postgresql: unusable ({exc})"
    return f"postgresql: {binaries.describe() if binaries else 'not found'}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for description in dict.fromkeys(_servers_used):
        terminalreporter.write_line(f"Lambda tests ran against {description}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with running_server(require_binaries(), tls=True) as server:
        _servers_used.append(server.binaries.describe())
        yield server


@pytest.fixture(scope="session")
def plaintext_server() -> Iterator[PostgresServer]:
    with running_server(require_binaries(), tls=False) as server:
        yield server


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_aws_credentials(monkeypatch, region=REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    keep_default_version_with_awscurrent(monkeypatch)
    with mock_aws():
        secretsmanager_client.cache_clear()
        yield boto3.client("secretsmanager", region_name=REGION)
    secretsmanager_client.cache_clear()


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="db-test",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:db-test",
        aws_request_id="00000000-0000-0000-0000-000000000000",
    )


@dataclass
class Deployment:
    """What the CDK stack would have created for one test: a database, a master and an app secret."""

    server: PostgresServer
    database: RdsLikeDatabase
    client: Any
    master_secret_arn: str
    app_secret_arn: str
    migration_role: str
    app_role: str

    @property
    def store(self) -> SecretStore:
        return SecretStore(self.client)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(host="localhost", port=self.server.port, database=self.database.name)

    def connection_factory(self) -> ConnectionFactory:
        return tls_connection_factory(build_ssl_context(self.server.ca_cert))

    def roles(self) -> RoleNames:
        return RoleNames(migration=self.migration_role, app_user=self.app_role)

    def rotation_deps(self, **overrides: Any) -> RotationDeps:
        """What the rotation handler wires in, with this test's roles; ``overrides`` swap collaborators."""
        values: dict[str, Any] = {
            "store": self.store,
            "connect": self.connection_factory(),
            "new_password": partial(generate_password, self.client),
            "master_secret_id": self.master_secret_arn,
            "schemas": ("public",),
            "roles": self.roles(),
            "sleep": lambda _seconds: None,
        }
        values.update(overrides)
        return RotationDeps(**values)

    def check_deps(self, **overrides: Any) -> CheckDeps:
        """What the credentials-check handler wires in, with this test's roles."""
        values: dict[str, Any] = {
            "store": self.store,
            "connect": self.connection_factory(),
            "app_secret_id": self.app_secret_arn,
            "master_secret_id": self.master_secret_arn,
            "schemas": ("public",),
            "roles": self.roles(),
            "sleep": lambda _seconds: None,
        }
        values.update(overrides)
        return CheckDeps(**values)

    def bootstrap_event(self, request_type: str = "Create", **extra: Any) -> dict[str, Any]:
        properties = {
            "ServiceToken": f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:provider",
            "MasterSecretArn": self.master_secret_arn,
            "AppSecretArn": self.app_secret_arn,
            **extra,
        }
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ResourceProperties": properties,
            "StackId": "stack",
            "RequestId": "request",
            "LogicalResourceId": "DbBootstrap",
            "ResourceType": "Custom::DbBootstrap",
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = "db-bootstrap-existing"
        return event

    def connect_as(self, username: str, password: str) -> Any:
        return self.server.connect(username, password, database=self.database.name, host="localhost")

    def can_login(self, username: str, password: str) -> bool:
        try:
            self.connect_as(username, password).close()
        except pg8000.native.DatabaseError as exc:
            if exc.args and isinstance(exc.args[0], dict) and exc.args[0].get("C") == "28P01":
                return False
            raise
        return True

    def admin(self) -> Any:
        return self.server.admin(self.database.name)

    def current(self) -> dict[str, Any]:
        return json.loads(self.store.get_string(self.app_secret_arn))

    def stages(self) -> dict[str, list[str]]:
        return self.store.describe(self.app_secret_arn).version_stages

    def enable_rotation(self) -> None:
        enable_rotation(self.app_secret_arn, region=REGION)

    def begin_rotation(self) -> str:
        return stage_pending_version(self.app_secret_arn, region=REGION)

    def rotation_event(self, token: str, step: str) -> dict[str, Any]:
        return {"SecretId": self.app_secret_arn, "ClientRequestToken": token, "Step": step}


@pytest.fixture
def deployment(pg_server: PostgresServer, secretsmanager: Any, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    n = next(_counter)
    database = pg_server.create_rds_like_database(f"revenuepilot_{n}")
    master_arn = secretsmanager.create_secret(
        Name=f"rds-master-{n}",
        SecretString=json.dumps({"username": database.master_user, "password": database.master_password}),
    )["ARN"]
    migration_role, app_role = f"migration_{n}", f"app_user_{n}"
    template = {  # what CloudFormation creates: no passwords yet
        "host": "localhost",
        "port": pg_server.port,
        "database": database.name,
        "migration": {"username": migration_role},
        "app_user": {"username": app_role},
    }
    app_arn = secretsmanager.create_secret(
        Name=f"revenuepilot/test/database-{n}", SecretString=json.dumps(template)
    )["ARN"]
    monkeypatch.setenv(CA_BUNDLE_ENV_VAR, str(pg_server.ca_cert))
    monkeypatch.setenv(MASTER_SECRET_ARN_ENV_VAR, master_arn)
    monkeypatch.setenv(APP_SCHEMAS_ENV_VAR, "public")
    # Roles are cluster-wide, so each test has its own names: configure the Lambdas with them.
    monkeypatch.setenv(MIGRATION_ROLE_NAME_ENV_VAR, migration_role)
    monkeypatch.setenv(APP_USER_ROLE_NAME_ENV_VAR, app_role)
    return Deployment(
        server=pg_server,
        database=database,
        client=secretsmanager,
        master_secret_arn=master_arn,
        app_secret_arn=app_arn,
        migration_role=migration_role,
        app_role=app_role,
    )
