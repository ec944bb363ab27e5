"""Defect 5 of issue 11: a malformed AWSPENDING value no longer breaks the client helper."""

from __future__ import annotations

import json
import logging

import pg8000.native
import pytest

from contract.auth import is_wrong_password
from dbclient.rotation_aware import RotationAwareCredentials
from lambdas.db_bootstrap.handler import on_event
from lambdas.secret_rotation.handler import lambda_handler

pytestmark = pytest.mark.postgres
LEAKY = "Leaky-value-that-must-never-be-printed-0123"


@pytest.fixture
def bootstrapped(deployment, lambda_context):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    deployment.enable_rotation()
    return deployment


def test_malformed_pending_is_skipped_by_version_and_the_servers_refusal_raised(bootstrapped, caplog):
    deployment = bootstrapped
    credentials = RotationAwareCredentials(deployment.client, deployment.app_secret_arn, user="app_user")
    credentials.current()  # cached
    token = deployment.begin_rotation()
    deployment.client.put_secret_value(
        SecretId=deployment.app_secret_arn,
        ClientRequestToken=token,
        SecretString='{"app_user": {"username": "x", "password": "' + LEAKY + '"',  # truncated JSON
        VersionStages=["AWSPENDING"],
    )

    def refused(username, _password):
        return deployment.connect_as(username, "wrong-" + LEAKY)

    with caplog.at_level(logging.WARNING), pytest.raises(pg8000.native.DatabaseError) as raised:
        credentials.connect(refused)
    assert is_wrong_password(raised.value)  # the server's refusal, not a JSONDecodeError
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"AWSPENDING version {token}" in message for message in warnings)
    assert all(LEAKY not in message for message in warnings)


def test_malformed_pending_does_not_hide_a_good_current(bootstrapped, lambda_context):
    """A rotation finished: the cached password is stale, AWSCURRENT logs in, AWSPENDING is garbage."""
    deployment = bootstrapped
    credentials = RotationAwareCredentials(deployment.client, deployment.app_secret_arn, user="app_user")
    credentials.current()
    token = deployment.begin_rotation()
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        lambda_handler(deployment.rotation_event(token, step), lambda_context)
    garbage = deployment.begin_rotation()
    deployment.client.put_secret_value(
        SecretId=deployment.app_secret_arn,
        ClientRequestToken=garbage,
        SecretString=json.dumps({"not": "the secret's shape"}),
        VersionStages=["AWSPENDING"],
    )

    connection = credentials.connect(lambda username, password: deployment.connect_as(username, password))
    try:
        assert connection.run("SELECT current_user") == [[deployment.app_role]]
    finally:
        connection.close()
