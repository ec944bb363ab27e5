"""The client helper for application owners: zero failed logins across a rotation (real PostgreSQL, moto)."""

from __future__ import annotations

import pg8000.native
import pytest

from contract.auth import is_wrong_password, sqlstate_of
from dbclient.rotation_aware import RotationAwareCredentials
from lambdas.db_bootstrap.handler import on_event
from lambdas.secret_rotation.handler import lambda_handler

pytestmark = pytest.mark.postgres


@pytest.fixture
def bootstrapped(deployment, lambda_context):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    deployment.enable_rotation()
    return deployment


def _login(deployment):
    def login(username, password):
        return deployment.connect_as(username, password)

    return login


def _check(deployment, credentials):
    connection = credentials.connect(_login(deployment))
    try:
        assert connection.run("SELECT current_user") == [[deployment.app_role]]
    finally:
        connection.close()


def test_logins_succeed_before_during_and_after_a_rotation(bootstrapped, lambda_context):
    deployment = bootstrapped
    # The application's role name is per test; the secret's user key stays "app_user".
    credentials = RotationAwareCredentials(deployment.client, deployment.app_secret_arn, user="app_user")
    _check(deployment, credentials)

    token = deployment.begin_rotation()
    for step in ("createSecret", "setSecret"):
        lambda_handler(deployment.rotation_event(token, step), lambda_context)
    # The window the README warns about: the server has the new password, AWSCURRENT still the old one.
    old_password = deployment.current()["app_user"]["password"]
    assert not deployment.can_login(deployment.app_role, old_password)
    _check(deployment, credentials)  # served by AWSPENDING

    for step in ("testSecret", "finishSecret"):
        lambda_handler(deployment.rotation_event(token, step), lambda_context)
    _check(deployment, credentials)  # cached old password fails once, AWSCURRENT is re-read
    assert credentials.current()[1] == deployment.current()["app_user"]["password"]


def test_a_wrong_password_everywhere_still_raises_the_servers_error(bootstrapped):
    deployment = bootstrapped
    credentials = RotationAwareCredentials(deployment.client, deployment.app_secret_arn, user="app_user")

    def always_wrong(username, _password):
        return deployment.connect_as(username, "definitely-not-it")

    with pytest.raises(pg8000.native.DatabaseError) as raised:
        credentials.connect(always_wrong)
    assert is_wrong_password(raised.value)
    assert deployment.current()["app_user"]["password"] not in str(raised.value)


def test_other_errors_are_not_retried(bootstrapped):
    deployment = bootstrapped
    credentials = RotationAwareCredentials(deployment.client, deployment.app_secret_arn, user="app_user")
    calls = []

    def unreachable(username, password):
        calls.append(username)
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(ConnectionRefusedError):
        credentials.connect(unreachable)
    assert len(calls) == 1


def test_sqlstate_of_common_drivers():
    class PsycopgError(Exception):
        sqlstate = "28P01"

    assert sqlstate_of(PsycopgError()) == "28P01"
    assert sqlstate_of(Exception({"C": "28P01", "M": "password authentication failed"})) == "28P01"
    assert sqlstate_of(Exception("plain")) is None
