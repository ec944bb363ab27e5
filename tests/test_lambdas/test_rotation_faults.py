"""The invariant under faults: each rotation step x each single fault, real TLS PostgreSQL and moto.

Invariant (README, "Rotation"): at every moment, for each user, the AWSCURRENT or the AWSPENDING password
logs in; once a fault clears, the credentials check (every 15 minutes) leaves AWSCURRENT working for both
users without anyone acting, and reports ``CredentialsCheckFailed=1`` while it cannot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.common.roles import set_role_password
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING, SecretStore
from lambdas.credentials_check.check import run_check
from lambdas.db_bootstrap.handler import on_event
from lambdas.secret_rotation.rotation import RotationDeps, rotate
from tests.support.faults import KilledConnections, RefusedHosts, ThrottledSecretsManager

pytestmark = pytest.mark.postgres
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
USERS = ("migration", "app_user")
# The Secrets Manager call each step depends on most, throttled for the whole step.
THROTTLED_CALL = {
    "createSecret": "put_secret_value",
    "setSecret": "get_secret_value",
    "testSecret": "get_secret_value",
    "finishSecret": "update_secret_version_stage",
}
FAULTS = (
    "database-stopped",
    "connection-killed",
    "secretsmanager-throttled",
    "bootstrap-update-interleaved",
    "master-password-changed",
    "endpoint-moved",
)


@pytest.fixture
def bootstrapped(deployment, lambda_context):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    deployment.enable_rotation()
    return deployment


# -- what the invariant means, observed from outside ------------------------------------------------------
def versions(deployment) -> dict[str, dict[str, Any]]:
    """Stage -> secret value, for AWSCURRENT and (when it has a value) AWSPENDING."""
    found = {AWSCURRENT: deployment.current()}
    pending = deployment.store.find_string(deployment.app_secret_arn, stage=AWSPENDING)
    if pending is not None:
        found[AWSPENDING] = json.loads(pending)
    return found


def logs_in(deployment, secret: dict[str, Any], user: str) -> bool:
    return deployment.can_login(secret[user]["username"], secret[user]["password"])


def assert_invariant(deployment) -> None:
    labelled = versions(deployment)
    for user in USERS:
        assert any(logs_in(deployment, secret, user) for secret in labelled.values()), (
            f"neither AWSCURRENT nor AWSPENDING logs in for {user}"
        )


def current_works(deployment) -> bool:
    current = deployment.current()
    return all(logs_in(deployment, current, user) for user in USERS)


def assert_settled(deployment, *, host: str) -> None:
    """AWSCURRENT works for both, at the instance's endpoint, no rotation left half-done, privileges intact."""
    current = deployment.current()
    assert current_works(deployment)
    assert (current["host"], current["port"]) == (host, deployment.server.port)
    assert not any(AWSPENDING in labels for labels in deployment.stages().values())
    migration = deployment.connect_as(current["migration"]["username"], current["migration"]["password"])
    app = deployment.connect_as(current["app_user"]["username"], current["app_user"]["password"])
    try:
        migration.run("CREATE TABLE public.after_faults (id serial PRIMARY KEY)")
        app.run("INSERT INTO public.after_faults DEFAULT VALUES")
        assert app.run("SELECT count(*) FROM public.after_faults") == [[1]]
    finally:
        migration.close()
        app.close()


# -- the faults ------------------------------------------------------------------------------------------
@dataclass
class FaultRun:
    """The collaborators the steps run with while (and after) a fault is in place."""

    deployment: Any
    lambda_context: Any
    connect: Any = None
    client: Any = None
    host: str = "localhost"
    sleeps: list[float] = field(default_factory=list)
    sleep_hook: Any = None

    def __post_init__(self) -> None:
        self.connect = self.connect or self.deployment.connection_factory()
        self.client = self.client or self.deployment.client

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.sleep_hook is not None:
            self.sleep_hook()

    def rotation_deps(self) -> RotationDeps:
        return self.deployment.rotation_deps(
            connect=self.connect, store=SecretStore(self.client), sleep=self._sleep
        )

    def check(self):
        return run_check(self.deployment.check_deps(connect=self.connect, sleep=self._sleep))


def change_master_password(deployment, password: str) -> None:
    admin = deployment.admin()
    try:
        admin.run("SET log_statement = 'none'")
        set_role_password(admin, deployment.database.master_user, password)
    finally:
        admin.close()


@contextmanager
def fault_during(run: FaultRun, fault: str, step: str) -> Iterator[None]:
    """Put ``fault`` in place for the step run inside the block; clear it on the way out."""
    deployment = run.deployment
    if fault == "database-stopped":
        deployment.server.stop()
        try:
            report = run.check()  # meanwhile, the check alarms
            assert report.metric_values["CredentialsCheckFailed"] == 1
            yield
        finally:
            deployment.server.start()
    elif fault == "connection-killed":
        saved = run.connect
        run.connect = KilledConnections(
            saved,
            admin=deployment.admin,
            master_user=deployment.database.master_user,
            trigger="alter" if step == "setSecret" else "first-statement",
        )
        try:
            yield
        finally:
            run.connect = saved
    elif fault == "secretsmanager-throttled":
        saved = run.client
        run.client = ThrottledSecretsManager(saved, [THROTTLED_CALL[step]])
        try:
            yield
        finally:
            run.client = saved
    elif fault == "bootstrap-update-interleaved":
        yield
        on_event(deployment.bootstrap_event("Update"), run.lambda_context)  # a deploy, right after the step
    elif fault == "master-password-changed":
        # RDS rotates the master: the database has the new password first, the secret a moment later.
        new_password = "Rds-managed-" + deployment.database.master_password[::-1]
        change_master_password(deployment, new_password)

        def rds_updates_the_secret() -> None:
            deployment.client.put_secret_value(
                SecretId=deployment.master_secret_arn,
                SecretString=json.dumps(
                    {"username": deployment.database.master_user, "password": new_password}
                ),
            )

        run.sleep_hook = rds_updates_the_secret
        yield
    elif fault == "endpoint-moved":
        yield
        # A deploy replaced the endpoint name; the old one no longer answers.
        on_event(
            deployment.bootstrap_event("Update", Endpoint="127.0.0.1", Port=str(deployment.server.port)),
            run.lambda_context,
        )
        run.connect = RefusedHosts(run.connect, ["localhost"])
        run.host = "127.0.0.1"
    else:  # pragma: no cover - a typo in FAULTS
        raise AssertionError(fault)


@pytest.fixture
def restore_master_password(deployment):
    yield
    change_master_password(deployment, deployment.database.master_password)  # shared by the session


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", STEPS)
def test_single_fault_at_each_step(bootstrapped, lambda_context, restore_master_password, step, fault):
    deployment = bootstrapped
    run = FaultRun(deployment, lambda_context)
    token = deployment.begin_rotation()
    for earlier in STEPS[: STEPS.index(step)]:
        rotate(earlier, deployment.app_secret_arn, token, run.rotation_deps())
        assert_invariant(deployment)

    # Whether the step fails depends on the fault; the state it leaves is what counts.
    with fault_during(run, fault, step), suppress(Exception):
        rotate(step, deployment.app_secret_arn, token, run.rotation_deps())
    assert_invariant(deployment)

    # The fault has cleared; the next scheduled check runs.
    broken = not current_works(deployment)
    report = run.check()
    assert report.healthy, report.problems
    assert report.metric_values == {"CredentialsCheckFailed": 0, "CredentialsRepaired": int(broken)}
    assert current_works(deployment)
    assert_invariant(deployment)

    # Secrets Manager retries the rotation (same token while it is still pending).
    stages = deployment.stages().get(token, [])
    if AWSCURRENT not in stages:
        token = token if AWSPENDING in stages else deployment.begin_rotation()
        for each in STEPS:
            rotate(each, deployment.app_secret_arn, token, run.rotation_deps())
            assert_invariant(deployment)
    assert_settled(deployment, host=run.host)
    again = run.check()
    assert again.healthy and not again.repaired
    if fault == "master-password-changed" and step in ("setSecret", "finishSecret"):
        assert run.sleeps, "the master login should have waited for a fresh read of the secret"
