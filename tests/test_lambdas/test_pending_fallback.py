"""contract.auth.connect_with_pending_fallback against a real TLS PostgreSQL and moto's Secrets Manager.

The master login of the Lambdas (lambdas.common.master), with the master secret in every state a
rotation can leave it in.
"""

from __future__ import annotations

import json

import pg8000.native
import pytest
from pg8000.native import identifier, literal

from contract.auth import (
    AWSCURRENT,
    AWSPENDING,
    connect_with_pending_fallback,
    is_wrong_password,
    sqlstate_of,
)
from contract.secret import Credentials, SecretFormatError, parse_master_secret
from lambdas.common.db import DatabaseConnectionError, Endpoint
from lambdas.common.master import connect_as_master

pytestmark = pytest.mark.postgres

LEAKY = "Leaky-Value-That-Must-Not-Appear"


class Recorder:
    """The fallback's collaborators over one deployment: which stages were read, what was warned."""

    def __init__(self, deployment, *, database: str | None = None):
        self.deployment = deployment
        self.database = database or deployment.database.name
        self.fetched: list[str] = []
        self.logins: list[str] = []
        self.warnings: list[str] = []

    def fetch(self, stage):
        self.fetched.append(stage)
        return self.deployment.store.find_version(self.deployment.master_secret_arn, stage=stage)

    def connect(self, credentials: Credentials):
        self.logins.append(credentials.username)
        server = self.deployment.server
        return server.connect(
            credentials.username, credentials.require_password(), database=self.database, host="localhost"
        )

    def run(self):
        return connect_with_pending_fallback(
            self.connect, self.fetch, parse_master_secret, warn=self.warnings.append
        )


def _master(deployment) -> dict[str, str]:
    return json.loads(deployment.store.get_string(deployment.master_secret_arn))


def _stage_pending(deployment, text: str) -> str:
    response = deployment.client.put_secret_value(
        SecretId=deployment.master_secret_arn, SecretString=text, VersionStages=[AWSPENDING]
    )
    return response["VersionId"]


def _set_server_password(deployment, password: str) -> None:
    admin = deployment.server.admin()
    try:
        admin.run("SET log_statement = 'none'")
        admin.run(f"ALTER ROLE {identifier(deployment.database.master_user)} PASSWORD {literal(password)}")
    finally:
        admin.close()


@pytest.fixture
def master(deployment):
    """The deployment; the shared master role's password is restored afterwards."""
    original = _master(deployment)["password"]
    yield deployment
    _set_server_password(deployment, original)


def test_current_logs_in_and_pending_is_never_read(master):
    recorder = Recorder(master)
    connected = recorder.run()
    try:
        assert connected.value.run("SELECT current_user") == [[master.database.master_user]]
    finally:
        connected.value.close()
    assert (connected.stage, recorder.fetched, recorder.warnings) == (AWSCURRENT, [AWSCURRENT], [])


def test_wrong_current_password_then_pending_logs_in(master):
    new_password = LEAKY + "-new"
    _stage_pending(master, json.dumps({**_master(master), "password": new_password}))
    _set_server_password(master, new_password)  # setSecret done, finishSecret not yet

    recorder = Recorder(master)
    connected = recorder.run()
    connected.value.close()
    assert connected.stage == AWSPENDING and connected.login.password == new_password
    assert recorder.fetched == [AWSCURRENT, AWSPENDING] and len(recorder.logins) == 2

    # The Lambdas' own entry point takes the same path.
    connection = connect_as_master(
        master.store, master.master_secret_arn, master.connection_factory(), master.endpoint
    )
    connection.close()


def test_a_malformed_pending_version_is_skipped_by_name_and_the_servers_refusal_raised(master):
    version_id = _stage_pending(master, json.dumps({"username": master.database.master_user, "pass": LEAKY}))
    _set_server_password(master, LEAKY + "-elsewhere")

    recorder = Recorder(master)
    with pytest.raises(pg8000.native.DatabaseError) as raised:
        recorder.run()
    assert is_wrong_password(raised.value)
    assert len(recorder.warnings) == 1
    assert f"AWSPENDING version {version_id}" in recorder.warnings[0]
    assert "'password'" in recorder.warnings[0]
    assert LEAKY not in recorder.warnings[0] and LEAKY not in str(raised.value)


def test_a_malformed_current_version_is_skipped_and_pending_used(master):
    good = _master(master)
    current_id = master.client.put_secret_value(
        SecretId=master.master_secret_arn, SecretString=json.dumps({"username": good["username"], "p": LEAKY})
    )["VersionId"]
    _stage_pending(master, json.dumps(good))

    recorder = Recorder(master)
    connected = recorder.run()
    connected.value.close()
    assert connected.stage == AWSPENDING
    assert recorder.warnings == [
        f"skipping AWSCURRENT version {current_id} of the secret: "
        "field 'password' is missing or not a non-empty string"
    ]


def test_only_malformed_versions_raise_the_format_error(master):
    master.client.put_secret_value(SecretId=master.master_secret_arn, SecretString=LEAKY)
    recorder = Recorder(master)
    with pytest.raises(SecretFormatError, match="not JSON") as raised:
        recorder.run()
    assert LEAKY not in str(raised.value) and LEAKY not in "".join(recorder.warnings)
    assert recorder.logins == []


def test_errors_other_than_a_wrong_password_are_not_retried(master):
    _stage_pending(master, json.dumps(_master(master)))
    recorder = Recorder(master, database="no_such_database")
    with pytest.raises(pg8000.native.DatabaseError) as raised:
        recorder.run()
    assert sqlstate_of(raised.value) == "3D000"
    assert recorder.fetched == [AWSCURRENT] and len(recorder.logins) == 1

    # Through the Lambdas' sanitising connection factory too: an unreachable port is not retried.
    calls = []
    factory = master.connection_factory()

    def unreachable(endpoint: Endpoint, *, username: str, password: str):
        calls.append(username)
        return factory(Endpoint(host="localhost", port=1, database=endpoint.database),
                       username=username, password=password)  # fmt: skip

    with pytest.raises(DatabaseConnectionError) as refused:
        connect_as_master(master.store, master.master_secret_arn, unreachable, master.endpoint)
    assert not refused.value.is_authentication_failure and len(calls) == 1
