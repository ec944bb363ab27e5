"""The defects of issue 11, each reproduced and now refused or repaired (real TLS PostgreSQL, moto).

Also what the suite must catch if it regressed: setSecret re-granting ``migration``, testSecret proving
``app_user``, the Lambdas' connection factory checking the server's host name.
"""

from __future__ import annotations

import json
import socket

import pytest

from lambdas.common.credentials import ProofError
from lambdas.common.db import DatabaseConnectionError
from lambdas.common.role_guard import ForbiddenRoleError, RoleNames
from lambdas.common.roles import set_role_password
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING
from lambdas.db_bootstrap.handler import on_event
from lambdas.secret_rotation import rotation
from lambdas.secret_rotation.handler import lambda_handler
from lambdas.secret_rotation.rotation import rotate, set_secret
from tests.support.faults import KilledConnections, RefusedHosts, ThrottledSecretsManager

pytestmark = pytest.mark.postgres
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture
def bootstrapped(deployment, lambda_context):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    deployment.enable_rotation()
    return deployment


def _run(deployment, lambda_context, token, *steps):
    for step in steps:
        lambda_handler(deployment.rotation_event(token, step), lambda_context)


def _pending(deployment, token):
    return json.loads(
        deployment.store.get_string(deployment.app_secret_arn, stage=AWSPENDING, version_id=token)
    )


def _current_logs_in(deployment):
    current = deployment.current()
    return {
        user: deployment.can_login(current[user]["username"], current[user]["password"])
        for user in ("migration", "app_user")
    }


def _admin_run(deployment, *statements):
    admin = deployment.admin()
    try:
        admin.run("SET log_statement = 'none'")
        for statement in statements:
            admin.run(statement)
    finally:
        admin.close()


# -- defect 1: a deploy between setSecret and finishSecret ------------------------------------------------
def test_bootstrap_update_between_set_and_finish_does_not_lock_anyone_out(bootstrapped, lambda_context):
    deployment = bootstrapped
    token = deployment.begin_rotation()
    _run(deployment, lambda_context, token, "createSecret", "setSecret", "testSecret")
    pending = _pending(deployment, token)

    on_event(deployment.bootstrap_event("Update"), lambda_context)  # a deploy, rotation in flight
    # The bootstrap left the in-flight pending passwords in place.
    assert deployment.can_login(deployment.app_role, pending["app_user"]["password"])

    _run(deployment, lambda_context, token, "finishSecret")
    assert deployment.current() == pending
    assert _current_logs_in(deployment) == {"migration": True, "app_user": True}


def test_throttled_finish_then_a_deploy_then_the_retry(bootstrapped, lambda_context):
    deployment = bootstrapped
    token = deployment.begin_rotation()
    _run(deployment, lambda_context, token, "createSecret", "setSecret", "testSecret")
    throttled = ThrottledSecretsManager(deployment.client, ["update_secret_version_stage"])
    with pytest.raises(Exception, match="ThrottlingException"):
        rotate(
            "finishSecret",
            deployment.app_secret_arn,
            token,
            deployment.rotation_deps(store=_store(throttled)),
        )
    # AWSCURRENT did not move, so its passwords were given back at once.
    assert _current_logs_in(deployment) == {"migration": True, "app_user": True}

    on_event(deployment.bootstrap_event("Update"), lambda_context)
    _run(deployment, lambda_context, token, "finishSecret")  # Secrets Manager's retry

    assert deployment.stages()[token] == [AWSCURRENT]
    assert _current_logs_in(deployment) == {"migration": True, "app_user": True}


def test_finish_secret_does_not_move_awscurrent_without_proof(bootstrapped):
    deployment = bootstrapped
    token = deployment.begin_rotation()
    deps = deployment.rotation_deps()
    for step in STEPS[:3]:
        rotate(step, deployment.app_secret_arn, token, deps)
    before = deployment.stages()

    def app_user_cannot_log_in(endpoint, *, username, password):
        if username == deployment.app_role:
            raise DatabaseConnectionError("cannot connect: password authentication failed", sqlstate="28P01")
        return deployment.connection_factory()(endpoint, username=username, password=password)

    with pytest.raises(ProofError, match=deployment.app_role):
        rotate(
            "finishSecret",
            deployment.app_secret_arn,
            token,
            deployment.rotation_deps(connect=app_user_cannot_log_in),
        )
    assert deployment.stages() == before  # AWSCURRENT is where it was


# -- defect 2: AWSCURRENT left dead after a fault ---------------------------------------------------------
def test_failed_test_step_restores_each_user_despite_a_dropped_connection(bootstrapped):
    deployment = bootstrapped
    current = deployment.current()
    token = deployment.begin_rotation()
    for step in STEPS[:2]:
        rotate(step, deployment.app_secret_arn, token, deployment.rotation_deps())
    _admin_run(  # testSecret's probe fails for real: migration no longer owns public
        deployment,
        f"ALTER SCHEMA public OWNER TO {deployment.database.master_user}",
        f"REVOKE ALL ON SCHEMA public FROM {deployment.migration_role}",
    )
    killer = KilledConnections(
        deployment.connection_factory(),
        admin=deployment.admin,
        master_user=deployment.database.master_user,
        trigger="alter",
    )
    with pytest.raises(Exception, match="42501"):
        rotation.test_secret(deployment.rotation_deps(connect=killer), deployment.app_secret_arn, token)
    assert killer.fired  # the restore lost its connection after the first user's ALTER ROLE ...
    assert deployment.can_login(deployment.migration_role, current["migration"]["password"])
    assert deployment.can_login(deployment.app_role, current["app_user"]["password"])  # ... and went on


# -- defect 3: usernames in the secret are trusted --------------------------------------------------------
def _forge_pending(deployment, token, field, username):
    forged = json.loads(json.dumps(deployment.current()))
    forged[field] = {"username": username, "password": "Forged-password-0123456789-abcdefghij"}
    deployment.client.put_secret_value(
        SecretId=deployment.app_secret_arn,
        ClientRequestToken=token,
        SecretString=json.dumps(forged),
        VersionStages=[AWSPENDING],
    )


def _snapshot_roles(deployment):
    admin = deployment.admin()
    try:
        return admin.run("SELECT rolname, rolpassword FROM pg_authid ORDER BY rolname")
    finally:
        admin.close()


@pytest.mark.parametrize("forged", ["master", "nonexistent", "rds_superuser"])
@pytest.mark.parametrize("field", ["migration", "app_user"])
def test_forged_username_in_pending_is_refused_with_nothing_changed(
    bootstrapped, lambda_context, field, forged
):
    deployment = bootstrapped
    username = {"master": deployment.database.master_user, "nonexistent": "ghost_role"}.get(forged, forged)
    token = deployment.begin_rotation()
    _forge_pending(deployment, token, field, username)
    roles_before, stages_before = _snapshot_roles(deployment), deployment.stages()

    for step in ("setSecret", "testSecret", "finishSecret"):
        with pytest.raises(ForbiddenRoleError, match="configured role"):
            lambda_handler(deployment.rotation_event(token, step), lambda_context)

    assert _snapshot_roles(deployment) == roles_before
    assert deployment.stages() == stages_before
    assert deployment.can_login(deployment.database.master_user, deployment.database.master_password)


@pytest.mark.parametrize("forged", ["master", "nonexistent", "rds_superuser"])
def test_forged_username_in_current_is_refused_by_every_function(bootstrapped, lambda_context, forged):
    deployment = bootstrapped
    username = {"master": deployment.database.master_user, "nonexistent": "ghost_role"}.get(forged, forged)
    forged_secret = deployment.current()
    forged_secret["app_user"]["username"] = username
    deployment.client.put_secret_value(
        SecretId=deployment.app_secret_arn, SecretString=json.dumps(forged_secret)
    )
    roles_before, stages_before = _snapshot_roles(deployment), deployment.stages()

    token = deployment.begin_rotation()
    with pytest.raises(ForbiddenRoleError):
        lambda_handler(deployment.rotation_event(token, "createSecret"), lambda_context)
    with pytest.raises(ForbiddenRoleError):
        on_event(deployment.bootstrap_event("Update"), lambda_context)
    from lambdas.credentials_check.check import run_check

    report = run_check(deployment.check_deps())
    assert not report.healthy and not report.repaired

    assert _snapshot_roles(deployment) == roles_before
    stages_after = deployment.stages()
    stages_after.pop(token)  # the empty version RotateSecret staged
    assert stages_after == stages_before


@pytest.mark.parametrize("attribute", ["SUPERUSER", "rds_superuser", "missing"])
def test_configured_role_that_is_privileged_or_missing_is_refused_in_the_database(bootstrapped, attribute):
    """Name checks pass (the secret names the configured roles); the database check refuses."""
    deployment = bootstrapped
    if attribute == "SUPERUSER":
        _admin_run(deployment, f"ALTER ROLE {deployment.app_role} SUPERUSER")
    elif attribute == "rds_superuser":
        _admin_run(deployment, f"GRANT rds_superuser TO {deployment.app_role}")
    else:
        _admin_run(deployment, f"DROP OWNED BY {deployment.app_role}", f"DROP ROLE {deployment.app_role}")
    try:
        token = deployment.begin_rotation()
        deps = deployment.rotation_deps()
        rotate("createSecret", deployment.app_secret_arn, token, deps)
        roles_before = _snapshot_roles(deployment)
        with pytest.raises(ForbiddenRoleError, match=deployment.app_role):
            set_secret(deps, deployment.app_secret_arn, token)
        assert _snapshot_roles(deployment) == roles_before
    finally:
        if attribute == "SUPERUSER":
            _admin_run(deployment, f"ALTER ROLE {deployment.app_role} NOSUPERUSER")


def test_configured_role_names_cannot_be_reserved():
    for name in ("rds_superuser", "rdsadmin", "pg_read_all_data"):
        with pytest.raises(ForbiddenRoleError, match="reserved"):
            RoleNames(app_user=name)
    with pytest.raises(ForbiddenRoleError, match="differ"):
        RoleNames(migration="same", app_user="same")


# -- defect 4: the endpoint goes back in time -------------------------------------------------------------
def test_rotation_never_restores_a_stale_host(bootstrapped, lambda_context, monkeypatch):
    deployment = bootstrapped
    token = deployment.begin_rotation()
    _run(deployment, lambda_context, token, "createSecret")
    pending = _pending(deployment, token)
    assert pending["host"] == "localhost"

    # The instance moved; CloudFormation updated the function's configured endpoint.
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(deployment.server.port))
    _run(deployment, lambda_context, token, "setSecret", "testSecret", "finishSecret")

    current = deployment.current()
    assert current["host"] == "127.0.0.1"
    assert (current["migration"], current["app_user"]) == (pending["migration"], pending["app_user"])
    assert deployment.stages()[token] == ["AWSPREVIOUS"]  # superseded by the same passwords at the new host


def test_rotation_survives_the_old_host_disappearing(bootstrapped, lambda_context):
    deployment = bootstrapped
    token = deployment.begin_rotation()
    deps = deployment.rotation_deps()
    rotate("createSecret", deployment.app_secret_arn, token, deps)
    on_event(
        deployment.bootstrap_event("Update", Endpoint="127.0.0.1", Port=str(deployment.server.port)),
        lambda_context,
    )
    gone = deployment.rotation_deps(connect=RefusedHosts(deployment.connection_factory(), ["localhost"]))
    for step in STEPS[1:]:
        rotate(step, deployment.app_secret_arn, token, gone)
    assert deployment.current()["host"] == "127.0.0.1"
    assert _current_logs_in(deployment) == {"migration": True, "app_user": True}


# -- what the suite must catch if it regressed ------------------------------------------------------------
def test_set_secret_re_grants_drifted_privileges(bootstrapped, lambda_context):
    deployment = bootstrapped
    _admin_run(
        deployment,
        f"ALTER SCHEMA public OWNER TO {deployment.database.master_user}",
        f"REVOKE ALL ON SCHEMA public FROM {deployment.migration_role}",
        f"REVOKE USAGE ON SCHEMA public FROM {deployment.app_role}",
        "REVOKE USAGE ON SCHEMA public FROM PUBLIC",  # else app_user keeps USAGE through PUBLIC
    )
    token = deployment.begin_rotation()
    _run(deployment, lambda_context, token, "createSecret", "setSecret")

    admin = deployment.admin()
    try:
        owner = admin.run("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'")
        usage = admin.run("SELECT has_schema_privilege(:r, 'public', 'USAGE')", r=deployment.app_role)
    finally:
        admin.close()
    assert owner == [[deployment.migration_role]]
    assert usage == [[True]]


@pytest.mark.parametrize("break_it", ["pending-login", "usage"])
def test_test_secret_proves_app_user(bootstrapped, lambda_context, break_it):
    deployment = bootstrapped
    current = deployment.current()
    token = deployment.begin_rotation()
    _run(deployment, lambda_context, token, "createSecret", "setSecret")
    if break_it == "pending-login":
        admin = deployment.admin()
        try:
            admin.run("SET log_statement = 'none'")
            set_role_password(admin, deployment.app_role, "Something-else-entirely-0123456789")
        finally:
            admin.close()
    else:
        _admin_run(
            deployment,
            f"REVOKE USAGE ON SCHEMA public FROM {deployment.app_role}",
            "REVOKE USAGE ON SCHEMA public FROM PUBLIC",
        )

    with pytest.raises((ProofError, DatabaseConnectionError), match=deployment.app_role):
        lambda_handler(deployment.rotation_event(token, "testSecret"), lambda_context)
    assert deployment.can_login(deployment.app_role, current["app_user"]["password"])  # restored


def test_handler_connections_check_the_host_name(bootstrapped, lambda_context, monkeypatch):
    """The certificate names localhost/127.0.0.1: the same server under another name must be refused."""
    deployment = bootstrapped
    original = socket.create_connection

    def to_loopback(address, *args, **kwargs):
        return original(("127.0.0.1", address[1]), *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", to_loopback)
    monkeypatch.setenv("DB_HOST", "db.example.com")
    monkeypatch.setenv("DB_PORT", str(deployment.server.port))
    token = deployment.begin_rotation()
    _run(deployment, lambda_context, token, "createSecret")
    with pytest.raises(DatabaseConnectionError, match=r"(?i)hostname mismatch"):
        lambda_handler(deployment.rotation_event(token, "setSecret"), lambda_context)

    from lambdas.credentials_check.handler import lambda_handler as check_handler

    monkeypatch.setenv("APP_SECRET_ARN", deployment.app_secret_arn)
    summary = check_handler({}, lambda_context)
    assert not summary["healthy"]
    assert any("hostname mismatch" in problem.lower() for problem in summary["problems"])

    event = deployment.bootstrap_event("Update", Endpoint="db.example.com", Port=str(deployment.server.port))
    with pytest.raises(DatabaseConnectionError, match=r"(?i)hostname mismatch"):
        on_event(event, lambda_context)


def _store(client):
    from lambdas.common.secret_store import SecretStore

    return SecretStore(client)
