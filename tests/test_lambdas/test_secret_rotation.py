"""The four-step rotation against moto (version stages) and a real TLS-only PostgreSQL."""

from __future__ import annotations

import json

import pg8000.native
import pytest

from lambdas.common.db import DatabaseConnectionError
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING
from lambdas.db_bootstrap.handler import on_event
from lambdas.secret_rotation.handler import lambda_handler
from lambdas.secret_rotation.rotation import RotationError, set_secret

pytestmark = pytest.mark.postgres
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture
def bootstrapped(deployment, lambda_context):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    deployment.enable_rotation()
    return deployment


def _rotate(deployment, lambda_context, token=None):
    token = token or deployment.begin_rotation()
    for step in STEPS:
        assert lambda_handler(deployment.rotation_event(token, step), lambda_context) is None
    return token


def _passwords(secret):
    return secret["migration"]["password"], secret["app_user"]["password"]


def _assert_only_current_logs_in(deployment, old, new):
    for role, old_pw, new_pw in zip((deployment.migration_role, deployment.app_role), old, new, strict=True):
        assert not deployment.can_login(role, old_pw)
        assert deployment.can_login(role, new_pw)


def _assert_privileges_intact(deployment, secret):
    migration_pw, app_pw = _passwords(secret)
    migration = deployment.connect_as(deployment.migration_role, migration_pw)
    app = deployment.connect_as(deployment.app_role, app_pw)
    table = f"t_{len(deployment.stages())}"
    try:
        migration.run(f"CREATE TABLE public.{table} (id serial PRIMARY KEY)")
        app.run(f"INSERT INTO public.{table} DEFAULT VALUES")
        assert app.run(f"SELECT count(*) FROM public.{table}") == [[1]]  # noqa: S608 - test-chosen name
        for statement in (f"DROP TABLE public.{table}", "CREATE TABLE public.nope (id int)"):
            with pytest.raises(pg8000.native.DatabaseError) as excinfo:
                app.run(statement)
            assert excinfo.value.args[0]["C"] == "42501"
    finally:
        migration.close()
        app.close()


def test_full_rotation_of_both_users(bootstrapped, lambda_context):
    before = bootstrapped.current()

    token = _rotate(bootstrapped, lambda_context)

    after = bootstrapped.current()
    assert after["rotatedAt"] >= before["rotatedAt"]
    assert {k: v for k, v in after.items() if k not in ("migration", "app_user", "rotatedAt")} == {
        k: v for k, v in before.items() if k not in ("migration", "app_user", "rotatedAt")
    }
    assert set(_passwords(after)).isdisjoint(_passwords(before))
    stages = bootstrapped.stages()
    assert stages[token] == [AWSCURRENT]
    assert not any(AWSPENDING in labels for labels in stages.values())
    _assert_only_current_logs_in(bootstrapped, _passwords(before), _passwords(after))
    _assert_privileges_intact(bootstrapped, after)


def test_each_step_can_be_rerun_with_the_same_token(bootstrapped, lambda_context):
    before = bootstrapped.current()
    token = bootstrapped.begin_rotation()
    pending = None
    for step in STEPS:
        for _ in range(2):
            lambda_handler(bootstrapped.rotation_event(token, step), lambda_context)
            if step == "createSecret":
                value = bootstrapped.store.get_string(
                    bootstrapped.app_secret_arn, stage=AWSPENDING, version_id=token
                )
                assert pending in (None, value)  # the second run keeps the first pending value
                pending = value
    # A late retry of any step after completion is a no-op.
    for step in STEPS:
        lambda_handler(bootstrapped.rotation_event(token, step), lambda_context)

    after = bootstrapped.current()
    assert json.loads(pending or "{}") == after
    assert bootstrapped.stages()[token] == [AWSCURRENT]
    _assert_only_current_logs_in(bootstrapped, _passwords(before), _passwords(after))


def test_second_rotation(bootstrapped, lambda_context):
    first = bootstrapped.current()
    _rotate(bootstrapped, lambda_context)
    second = bootstrapped.current()
    token = _rotate(bootstrapped, lambda_context)
    third = bootstrapped.current()

    assert bootstrapped.stages()[token] == [AWSCURRENT]
    assert len({_passwords(s) for s in (first, second, third)}) == 3
    _assert_only_current_logs_in(bootstrapped, _passwords(second), _passwords(third))
    _assert_privileges_intact(bootstrapped, third)


def test_database_down_during_set_secret_then_recovery(bootstrapped, lambda_context):
    current = bootstrapped.current()
    token = bootstrapped.begin_rotation()
    lambda_handler(bootstrapped.rotation_event(token, "createSecret"), lambda_context)
    pending = json.loads(
        bootstrapped.store.get_string(bootstrapped.app_secret_arn, stage=AWSPENDING, version_id=token)
    )

    bootstrapped.server.stop()
    try:
        with pytest.raises(DatabaseConnectionError) as excinfo:
            lambda_handler(bootstrapped.rotation_event(token, "setSecret"), lambda_context)
    finally:
        bootstrapped.server.start()
    message = str(excinfo.value)
    assert "cannot connect" in message
    assert not any(pw in message for pw in _passwords(current) + _passwords(pending))

    # No lockout: AWSCURRENT still matches the database.
    assert bootstrapped.current() == current
    for role, password in zip(
        (bootstrapped.migration_role, bootstrapped.app_role), _passwords(current), strict=True
    ):
        assert bootstrapped.can_login(role, password)

    for step in STEPS[1:]:
        lambda_handler(bootstrapped.rotation_event(token, step), lambda_context)
    assert bootstrapped.current() == pending
    _assert_only_current_logs_in(bootstrapped, _passwords(current), _passwords(pending))


def test_partial_set_secret_is_completed_on_retry(bootstrapped, lambda_context):
    """One user already has the pending password (e.g. crash mid-way): the retry fixes the other."""
    token = bootstrapped.begin_rotation()
    lambda_handler(bootstrapped.rotation_event(token, "createSecret"), lambda_context)
    pending = json.loads(
        bootstrapped.store.get_string(bootstrapped.app_secret_arn, stage=AWSPENDING, version_id=token)
    )
    admin = bootstrapped.admin()
    try:
        from lambdas.common.roles import set_role_password

        set_role_password(admin, bootstrapped.migration_role, pending["migration"]["password"])
    finally:
        admin.close()

    set_secret(bootstrapped.rotation_deps(), bootstrapped.app_secret_arn, token)
    for step in ("testSecret", "finishSecret"):
        lambda_handler(bootstrapped.rotation_event(token, step), lambda_context)
    assert bootstrapped.can_login(bootstrapped.app_role, pending["app_user"]["password"])
    assert bootstrapped.can_login(bootstrapped.migration_role, pending["migration"]["password"])


def test_failed_test_step_gives_the_current_passwords_back(bootstrapped, lambda_context):
    """setSecret changed the database, testSecret fails: AWSCURRENT must keep working (no lockout)."""
    current = bootstrapped.current()
    token = bootstrapped.begin_rotation()
    for step in ("createSecret", "setSecret"):
        lambda_handler(bootstrapped.rotation_event(token, step), lambda_context)
    assert not bootstrapped.can_login(bootstrapped.app_role, current["app_user"]["password"])
    # A real failure of the probe: migration can no longer create tables in public.
    admin = bootstrapped.admin()
    try:
        admin.run(f"ALTER SCHEMA public OWNER TO {bootstrapped.database.master_user}")
        admin.run(f"REVOKE ALL ON SCHEMA public FROM {bootstrapped.migration_role}")
    finally:
        admin.close()

    with pytest.raises(pg8000.native.DatabaseError) as excinfo:
        lambda_handler(bootstrapped.rotation_event(token, "testSecret"), lambda_context)
    assert excinfo.value.args[0]["C"] == "42501"

    assert bootstrapped.current() == current
    for role, password in zip(
        (bootstrapped.migration_role, bootstrapped.app_role), _passwords(current), strict=True
    ):
        assert bootstrapped.can_login(role, password)


def test_master_secret_mid_rotation_falls_back_to_its_pending_password(bootstrapped, lambda_context):
    """The master's own rotation is between setSecret and finishSecret: AWSCURRENT no longer logs in."""
    store = bootstrapped.store
    master = json.loads(store.get_string(bootstrapped.master_secret_arn))
    new_master = {**master, "password": "Mast3r-pending-" + "x" * 20}
    bootstrapped.client.put_secret_value(
        SecretId=bootstrapped.master_secret_arn,
        SecretString=json.dumps(new_master),
        VersionStages=[AWSPENDING],
    )
    from lambdas.common.roles import set_role_password

    def set_master_password(password):
        admin = bootstrapped.admin()
        try:
            set_role_password(admin, master["username"], password)
        finally:
            admin.close()

    set_master_password(new_master["password"])
    try:
        before = bootstrapped.current()
        _rotate(bootstrapped, lambda_context)
        on_event(bootstrapped.bootstrap_event("Update"), lambda_context)
        _assert_only_current_logs_in(bootstrapped, _passwords(before), _passwords(bootstrapped.current()))
    finally:
        set_master_password(master["password"])  # the master role is shared by the session's databases


def test_rejects_invalid_requests(deployment, lambda_context):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    token = deployment.begin_rotation()
    with pytest.raises(RotationError, match="rotation enabled"):
        lambda_handler(deployment.rotation_event(token, "createSecret"), lambda_context)
    deployment.enable_rotation()
    with pytest.raises(RotationError, match="no stage"):
        lambda_handler(deployment.rotation_event("not-a-version", "createSecret"), lambda_context)
    previous = next(v for v, labels in deployment.stages().items() if labels == ["AWSPREVIOUS"])
    with pytest.raises(RotationError, match="not set as AWSPENDING"):
        lambda_handler(deployment.rotation_event(previous, "setSecret"), lambda_context)
    with pytest.raises(RotationError, match="invalid rotation step"):
        lambda_handler(deployment.rotation_event(token, "bogusSecret"), lambda_context)
    current = next(v for v, labels in deployment.stages().items() if AWSCURRENT in labels)
    assert lambda_handler(deployment.rotation_event(current, "setSecret"), lambda_context) is None


def test_requires_master_secret_env(bootstrapped, lambda_context, monkeypatch):
    monkeypatch.delenv("MASTER_SECRET_ARN")
    token = bootstrapped.begin_rotation()
    with pytest.raises(RuntimeError, match="MASTER_SECRET_ARN"):
        lambda_handler(bootstrapped.rotation_event(token, "createSecret"), lambda_context)
