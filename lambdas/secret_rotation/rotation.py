"""The four Secrets Manager rotation steps for the two-user application secret.

Every step is idempotent for a given ClientRequestToken. The database is changed only in ``set_secret``,
and only to the AWSPENDING passwords; AWSCURRENT moves in ``finish_secret`` after ``test_secret`` proved the
new credentials, so a failure anywhere leaves the current credentials working (no lockout).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum

from aws_lambda_powertools import Logger
from pg8000.native import identifier

from contract.secret import AppSecret, Credentials, utc_timestamp
from lambdas.common.db import ConnectionFactory, DatabaseConnectionError, Endpoint
from lambdas.common.master import connect_as_master
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


def endpoint_of(secret: AppSecret) -> Endpoint:
    return Endpoint(host=secret.host, port=secret.port, database=secret.database)


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


def pending_secret(store: SecretStore, secret_id: str, token: str) -> AppSecret:
    return AppSecret.parse(store.get_string(secret_id, stage=AWSPENDING, version_id=token))


def create_secret(store: SecretStore, secret_id: str, token: str, new_password: PasswordSource) -> None:
    """Store new passwords for both users as AWSPENDING under ``token``, unless already there."""
    # Host, port, database and usernames come from AWSCURRENT; its passwords may be absent (pre-bootstrap).
    current = AppSecret.parse(store.get_string(secret_id, stage=AWSCURRENT), require_passwords=False)
    if store.find_string(secret_id, stage=AWSPENDING, version_id=token) is not None:
        logger.info("createSecret: pending version already exists", extra={"version_id": token})
        return
    pending = current.with_passwords(
        migration=new_password(), app_user=new_password(), rotated_at=utc_timestamp()
    )
    store.put_string(secret_id, pending.serialize(), stages=[AWSPENDING], token=token)
    logger.info("createSecret: stored pending version", extra={"version_id": token})


def password_works(connect: ConnectionFactory, endpoint: Endpoint, user: Credentials) -> bool:
    """Whether ``user`` can log in. Only an authentication failure means ``False``: other errors propagate."""
    try:
        conn = connect(endpoint, username=user.username, password=user.require_password())
    except DatabaseConnectionError as exc:
        if exc.is_authentication_failure:
            return False
        raise
    conn.close()
    return True


def set_secret(
    store: SecretStore,
    secret_id: str,
    token: str,
    *,
    master_secret_id: str,
    connect: ConnectionFactory,
    schemas: Sequence[str],
) -> None:
    """Give each user its AWSPENDING password (unless it already works); re-grant the schema privileges."""
    pending = pending_secret(store, secret_id, token)
    endpoint = endpoint_of(pending)
    stale = [user for user in pending.users if not password_works(connect, endpoint, user)]
    conn = connect_as_master(store, master_secret_id, connect, endpoint)
    try:
        with transaction(conn):
            for user in stale:
                set_role_password(conn, user.username, user.require_password())
            grant_schema_privileges(
                conn,
                database=pending.database,
                schemas=schemas,
                migration_role=pending.migration.username,
                app_role=pending.app_user.username,
            )
    finally:
        conn.close()
    logger.info(
        "setSecret: passwords set and privileges re-granted",
        extra={"version_id": token, "changed_users": [user.username for user in stale]},
    )


def test_secret(
    store: SecretStore, secret_id: str, token: str, *, connect: ConnectionFactory, schemas: Sequence[str]
) -> None:
    """Both pending credentials log in over TLS and can do their job."""
    pending = pending_secret(store, secret_id, token)
    endpoint = endpoint_of(pending)

    migration = connect(
        endpoint, username=pending.migration.username, password=pending.migration.require_password()
    )
    try:
        probe = f"rotation_probe_{secrets.token_hex(6)}"
        migration.run("BEGIN")
        try:
            for schema in schemas:
                table = f"{identifier(schema)}.{identifier(probe)}"
                migration.run(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
                migration.run(f"INSERT INTO {table} (id) VALUES (1)")  # noqa: S608 - quoted identifiers
                migration.run(f"DROP TABLE {table}")
        finally:
            with suppress(Exception):  # nothing to keep: the probe only proves DDL works
                migration.run("ROLLBACK")
    finally:
        migration.close()

    app = connect(endpoint, username=pending.app_user.username, password=pending.app_user.require_password())
    try:
        app.run("SELECT 1")
        for schema in schemas:
            rows = app.run("SELECT has_schema_privilege(:schema, 'USAGE')", schema=schema)
            if not rows or rows[0][0] is not True:
                raise RotationError(f"{pending.app_user.username} has no USAGE on schema {schema}")
    finally:
        app.close()
    logger.info("testSecret: pending credentials verified", extra={"version_id": token})


def restore_current_passwords(
    store: SecretStore, secret_id: str, *, master_secret_id: str, connect: ConnectionFactory
) -> list[str]:
    """Give the users their AWSCURRENT passwords back (after a failed testSecret); return who changed.

    setSecret already put the pending passwords into the database, but AWSCURRENT will not move:
    without this, every client reading AWSCURRENT would be locked out until a later rotation.
    """
    current = AppSecret.parse(store.get_string(secret_id, stage=AWSCURRENT))
    endpoint = endpoint_of(current)
    stale = [user for user in current.users if not password_works(connect, endpoint, user)]
    if stale:
        conn = connect_as_master(store, master_secret_id, connect, endpoint)
        try:
            with transaction(conn):
                for user in stale:
                    set_role_password(conn, user.username, user.require_password())
        finally:
            conn.close()
    return [user.username for user in stale]


def finish_secret(store: SecretStore, secret_id: str, token: str) -> None:
    """Move AWSCURRENT to ``token`` and take AWSPENDING off it, so no stale label blocks the next rotation."""
    metadata = store.describe(secret_id)
    current = metadata.version_with_stage(AWSCURRENT)
    if current != token:
        store.move_stage(secret_id, AWSCURRENT, to_version=token, from_version=current)
        logger.info(
            "finishSecret: AWSCURRENT moved", extra={"version_id": token, "previous_version_id": current}
        )
    if AWSPENDING in metadata.version_stages.get(token, []):
        store.move_stage(secret_id, AWSPENDING, to_version=None, from_version=token)


def rotate(step: str, secret_id: str, token: str, deps: RotationDeps) -> None:
    """Validate the request and run one step."""
    try:
        which = Step(step)
    except ValueError:
        raise RotationError(f"invalid rotation step {step!r}") from None
    if not check_request(deps.store, secret_id, token):
        logger.info("version is already AWSCURRENT", extra={"version_id": token, "step": which.value})
        if which is Step.FINISH:
            finish_secret(deps.store, secret_id, token)  # only clears a leftover AWSPENDING label
        return
    if which is Step.CREATE:
        create_secret(deps.store, secret_id, token, deps.new_password)
    elif which is Step.SET:
        set_secret(
            deps.store,
            secret_id,
            token,
            master_secret_id=deps.master_secret_id,
            connect=deps.connect,
            schemas=deps.schemas,
        )
    elif which is Step.TEST:
        try:
            test_secret(deps.store, secret_id, token, connect=deps.connect, schemas=deps.schemas)
        except Exception:
            restored = restore_current_passwords(
                deps.store, secret_id, master_secret_id=deps.master_secret_id, connect=deps.connect
            )
            logger.error(
                "testSecret failed: AWSCURRENT passwords restored in the database",
                extra={"version_id": token, "restored_users": restored},
            )
            raise
    else:
        finish_secret(deps.store, secret_id, token)
