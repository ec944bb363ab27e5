"""The four Secrets Manager rotation steps for the two-user application secret.

The invariant (README, "Rotation"): at every moment, for each user, the AWSCURRENT or the AWSPENDING
password logs in; after any single fault, once it clears, AWSCURRENT logs in again for both users
without anyone acting (this function's own handling, or the credentials check within 15 minutes).

* Every step is idempotent for a given ClientRequestToken.
* Usernames are checked against the configured role names on every step, and in the database before any
  ``ALTER ROLE`` (never the master, an ``rds_*`` role or a privileged role).
* The database is changed under the credentials advisory lock (bootstrap and credentials check take it too).
* The endpoint is never taken from AWSPENDING: every step connects to the configured endpoint
  (``DB_HOST``/``DB_PORT``) or, without one, to AWSCURRENT's, which the bootstrap keeps current. When
  AWSPENDING's copy went stale during the rotation, finishSecret writes the moved endpoint into a new
  AWSCURRENT version right after moving the label.
* finishSecret moves AWSCURRENT only after proving, under the lock, that both pending passwords log in
  and ``app_user`` has USAGE on the schemas (setting them again first if a bootstrap or restore undid them).
* A failure after the database may hold the pending passwords gives each user its AWSCURRENT password
  back, user by user, tolerating connection errors; when where AWSCURRENT points is unknown (Secrets
  Manager failing), it changes nothing and leaves the repair to the credentials check.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger
from pg8000.native import identifier

from contract.secret import AppSecret, utc_timestamp
from lambdas.common.credentials import (
    MasterSession,
    clear_pending_label,
    current_version_or_none,
    login_works,
    prove_login,
    require_usage,
    restore_each,
)
from lambdas.common.db import ConnectionFactory, Endpoint
from lambdas.common.environment import ConfiguredEndpoint
from lambdas.common.master import Sleep, connect_as_master
from lambdas.common.role_guard import RoleNames, check_roles_in_database, check_usernames
from lambdas.common.roles import grant_schema_privileges, set_role_password, transaction
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING, SecretStore

logger = Logger(child=True)
PasswordSource = Callable[[], str]


class Step(StrEnum):
    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"


class RotationError(RuntimeError):
    """The rotation request is invalid or a step could not complete. Never carries secret values."""


@dataclass(frozen=True, kw_only=True)
class RotationDeps:
    """Collaborators of the rotation steps (real AWS/PostgreSQL in Lambda, moto/local server in tests)."""

    store: SecretStore
    connect: ConnectionFactory
    new_password: PasswordSource
    master_secret_id: str
    schemas: tuple[str, ...]
    roles: RoleNames = field(default_factory=RoleNames)
    endpoint: ConfiguredEndpoint | None = None
    sleep: Sleep = time.sleep

    def master_session(self, endpoint: Endpoint) -> MasterSession:
        return MasterSession(
            partial(
                connect_as_master, self.store, self.master_secret_id, self.connect, endpoint, sleep=self.sleep
            )
        )


def check_request(store: SecretStore, secret_id: str, token: str) -> bool:
    """Validate like AWS's rotation templates; ``False`` means the token is already AWSCURRENT."""
    metadata = store.describe(secret_id)
    if not metadata.rotation_enabled:
        raise RotationError(f"secret {secret_id} does not have rotation enabled")
    stages = metadata.version_stages.get(token)
    if stages is None:
        raise RotationError(f"secret version {token} has no stage for rotation of secret {secret_id}")
    if AWSCURRENT in stages:
        return False
    if AWSPENDING not in stages:
        raise RotationError(
            f"secret version {token} is not set as AWSPENDING for rotation of secret {secret_id}"
        )
    return True


def current_secret(deps: RotationDeps, secret_id: str, *, require_passwords: bool = True) -> AppSecret:
    current = AppSecret.parse(
        deps.store.get_string(secret_id, stage=AWSCURRENT), require_passwords=require_passwords
    )
    check_usernames(current, deps.roles, what="AWSCURRENT")
    return current


def pending_secret(deps: RotationDeps, secret_id: str, token: str) -> AppSecret:
    pending = AppSecret.parse(deps.store.get_string(secret_id, stage=AWSPENDING, version_id=token))
    check_usernames(pending, deps.roles, what=f"AWSPENDING version {token}")
    return pending


def target_endpoint(deps: RotationDeps, current: AppSecret) -> Endpoint:
    """Where the instance is now: the configured endpoint, else AWSCURRENT's (never AWSPENDING's)."""
    if deps.endpoint is not None:
        return Endpoint(host=deps.endpoint.host, port=deps.endpoint.port, database=current.database)
    return Endpoint(host=current.host, port=current.port, database=current.database)


def create_secret(deps: RotationDeps, secret_id: str, token: str) -> None:
    """Store new passwords for both users as AWSPENDING under ``token``, unless already there."""
    # Usernames and database come from AWSCURRENT; its passwords may be absent (pre-bootstrap).
    current = current_secret(deps, secret_id, require_passwords=False)
    if deps.store.find_string(secret_id, stage=AWSPENDING, version_id=token) is not None:
        logger.info("createSecret: pending version already exists", extra={"version_id": token})
        return
    endpoint = target_endpoint(deps, current)
    pending = replace(current, host=endpoint.host, port=endpoint.port).with_passwords(
        migration=deps.new_password(), app_user=deps.new_password(), rotated_at=utc_timestamp()
    )
    deps.store.put_string(secret_id, pending.serialize(), stages=[AWSPENDING], token=token)
    logger.info("createSecret: stored pending version", extra={"version_id": token})


def _set_pending(
    session: MasterSession, deps: RotationDeps, endpoint: Endpoint, pending: AppSecret
) -> list[str]:
    """Under the lock: give each user its pending password (unless it works) and re-grant privileges."""
    session.connection()  # take the lock before looking at the database
    stale = [user for user in pending.users if not login_works(deps.connect, endpoint, user)]

    def apply(conn: Any) -> None:
        check_roles_in_database(conn, [user.username for user in pending.users])
        with transaction(conn):
            for user in stale:
                set_role_password(conn, user.username, user.require_password())
            grant_schema_privileges(
                conn,
                database=pending.database,
                schemas=deps.schemas,
                migration_role=pending.migration.username,
                app_role=pending.app_user.username,
            )

    session.run(apply)
    return [user.username for user in stale]


def set_secret(deps: RotationDeps, secret_id: str, token: str) -> None:
    """Give each user its AWSPENDING password (unless it already works); re-grant the schema privileges."""
    current = current_secret(deps, secret_id, require_passwords=False)
    pending = pending_secret(deps, secret_id, token)
    endpoint = target_endpoint(deps, current)
    with deps.master_session(endpoint) as session:
        changed = _set_pending(session, deps, endpoint, pending)
    logger.info(
        "setSecret: passwords set and privileges re-granted",
        extra={"version_id": token, "changed_users": changed},
    )


def probe_pending(deps: RotationDeps, endpoint: Endpoint, pending: AppSecret) -> None:
    """Both pending credentials log in over TLS and can do their job (migration: DDL; app_user: USAGE)."""
    migration = deps.connect(
        endpoint, username=pending.migration.username, password=pending.migration.require_password()
    )
    try:
        probe = f"rotation_probe_{secrets.token_hex(6)}"
        migration.run("BEGIN")
        try:
            for schema in deps.schemas:
                table = f"{identifier(schema)}.{identifier(probe)}"
                migration.run(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
                migration.run(f"INSERT INTO {table} (id) VALUES (1)")  # noqa: S608 - quoted identifiers
                migration.run(f"DROP TABLE {table}")
        finally:
            with suppress(Exception):  # nothing to keep: the probe only proves DDL works
                migration.run("ROLLBACK")
    finally:
        migration.close()

    app = deps.connect(
        endpoint, username=pending.app_user.username, password=pending.app_user.require_password()
    )
    try:
        app.run("SELECT 1")
        require_usage(app, pending.app_user.username, deps.schemas)
    finally:
        app.close()


def test_secret(deps: RotationDeps, secret_id: str, token: str) -> None:
    """Both pending credentials work; on any failure AWSCURRENT's passwords go back, then re-raise."""
    try:
        current = current_secret(deps, secret_id, require_passwords=False)
        pending = pending_secret(deps, secret_id, token)
        endpoint = target_endpoint(deps, current)
        probe_pending(deps, endpoint, pending)
    except Exception:
        restore_current_passwords(deps, secret_id, token)
        raise
    logger.info("testSecret: pending credentials verified", extra={"version_id": token})


def restore_current_passwords(deps: RotationDeps, secret_id: str, token: str) -> None:
    """Give each user its AWSCURRENT password back (best effort, each user on its own); never raises."""
    try:
        current = current_secret(deps, secret_id)
        endpoint = target_endpoint(deps, current)
        with deps.master_session(endpoint) as session:
            result = restore_each(session, deps.connect, endpoint, current)
    except Exception as exc:
        logger.error(
            "rotation failed and AWSCURRENT could not be restored; the credentials check will repair it",
            extra={"version_id": token, "reason": type(exc).__name__},
        )
        return
    log = logger.info if result.complete else logger.error
    log(
        "rotation failed: AWSCURRENT passwords restored in the database",
        extra={
            "version_id": token,
            "restored_users": result.restored,
            "failed_users": sorted(result.failed),
        },
    )


def finish_secret(deps: RotationDeps, secret_id: str, token: str) -> None:
    """Prove the pending credentials (completing setSecret if needed), then move AWSCURRENT to ``token``."""
    metadata = deps.store.describe(secret_id)
    previous = metadata.version_with_stage(AWSCURRENT)
    if previous == token:
        clear_pending_label(deps.store, secret_id, token)
        return
    current = current_secret(deps, secret_id, require_passwords=False)
    pending = pending_secret(deps, secret_id, token)
    endpoint = target_endpoint(deps, current)
    try:
        with deps.master_session(endpoint) as session:
            changed = _set_pending(session, deps, endpoint, pending)
            if changed:
                logger.warning(
                    "finishSecret: pending passwords had been undone; set again",
                    extra={"version_id": token, "changed_users": changed},
                )
            prove_login(deps.connect, endpoint, pending, deps.schemas)
            deps.store.move_stage(secret_id, AWSCURRENT, to_version=token, from_version=previous)
    except Exception:
        where = current_version_or_none(deps.store, secret_id)
        if where != token:
            if where is not None:  # AWSCURRENT known not to have moved: it must log in again
                restore_current_passwords(deps, secret_id, token)
            raise
        # The move went through although its response did not reach us: the rotation is done.
    logger.info(
        "finishSecret: AWSCURRENT moved", extra={"version_id": token, "previous_version_id": previous}
    )
    clear_pending_label(deps.store, secret_id, token)
    follow_endpoint(deps, secret_id, pending, endpoint)


def follow_endpoint(deps: RotationDeps, secret_id: str, pending: AppSecret, endpoint: Endpoint) -> None:
    """AWSPENDING was copied before the endpoint moved: write the moved endpoint into a new AWSCURRENT."""
    if (pending.host, pending.port) == (endpoint.host, endpoint.port):
        return
    moved = replace(pending, host=endpoint.host, port=endpoint.port)
    deps.store.put_string(secret_id, moved.serialize(), stages=[AWSCURRENT])
    logger.info("finishSecret: endpoint updated to follow the instance")


def rotate(step: str, secret_id: str, token: str, deps: RotationDeps) -> None:
    """Validate the request and run one step."""
    try:
        which = Step(step)
    except ValueError:
        raise RotationError(f"invalid rotation step {step!r}") from None
    if not check_request(deps.store, secret_id, token):
        logger.info("version is already AWSCURRENT", extra={"version_id": token, "step": which.value})
        if which is Step.FINISH:
            finish_secret(deps, secret_id, token)  # only clears a leftover AWSPENDING label
        return
    if which is Step.CREATE:
        create_secret(deps, secret_id, token)
    elif which is Step.SET:
        set_secret(deps, secret_id, token)
    elif which is Step.TEST:
        test_secret(deps, secret_id, token)
    else:
        finish_secret(deps, secret_id, token)
