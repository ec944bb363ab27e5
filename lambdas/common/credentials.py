"""Building blocks shared by the bootstrap, the rotation and the credentials check.

* ``login_works``: does a credential log in (only an authentication failure means no);
* ``prove_login``: both users log in and ``app_user`` has USAGE on every schema;
* ``MasterSession``: a lazily opened master connection that holds the credentials lock and is reopened
  (and re-locked) once after a connection error, so one dropped connection does not stop a repair;
* ``restore_each``: give each user its AWSCURRENT password back, one user at a time, tolerating errors.

Nothing here logs or formats a password.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pg8000.native

from contract.secret import AppSecret, Credentials, SecretFormatError
from lambdas.common.db import (
    ConnectionFactory,
    DatabaseConnectionError,
    Endpoint,
    describe_error,
    sqlstate_of,
)
from lambdas.common.master import CREDENTIALS_LOCK_KEY, LOCK_TIMEOUT_MS
from lambdas.common.role_guard import RoleNames, check_roles_in_database, check_usernames
from lambdas.common.roles import set_role_password
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING, SecretStore

T = TypeVar("T")


class ProofError(RuntimeError):
    """Credentials did not prove they work (the message names users and schemas, never passwords)."""


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused connection (worth one retry on a fresh connection), not a SQL or auth error."""
    if isinstance(exc, DatabaseConnectionError):
        return not exc.is_authentication_failure
    if isinstance(exc, pg8000.native.InterfaceError | OSError):
        return True
    code = sqlstate_of(exc)
    return code is not None and (code.startswith("08") or code in ("57P01", "57P02", "57P03"))


def login_works(connect: ConnectionFactory, endpoint: Endpoint, user: Credentials) -> bool:
    """Whether ``user`` logs in. Only an authentication failure means ``False``: other errors propagate."""
    try:
        conn = connect(endpoint, username=user.username, password=user.require_password())
    except DatabaseConnectionError as exc:
        if exc.is_authentication_failure:
            return False
        raise
    conn.close()
    return True


def prove_login(
    connect: ConnectionFactory, endpoint: Endpoint, secret: AppSecret, schemas: Sequence[str]
) -> None:
    """Both users log in; ``app_user`` has USAGE on every schema. Raises ``ProofError`` otherwise."""
    for user in secret.users:
        try:
            conn = connect(endpoint, username=user.username, password=user.require_password())
        except DatabaseConnectionError as exc:
            if exc.is_authentication_failure:
                raise ProofError(f"{user.username} does not log in with this version's password") from None
            raise
        try:
            conn.run("SELECT 1")
            if user is secret.app_user:
                require_usage(conn, user.username, schemas)
        finally:
            conn.close()


def require_usage(conn: Any, username: str, schemas: Sequence[str]) -> None:
    for schema in schemas:
        rows = conn.run("SELECT has_schema_privilege(:schema, 'USAGE')", schema=schema)
        if not rows or rows[0][0] is not True:
            raise ProofError(f"{username} has no USAGE on schema {schema}")


class MasterSession:
    """A master connection holding the credentials advisory lock, opened on first use.

    ``run(action)`` calls ``action(conn)``; after a connection error it opens (and locks) a new
    connection and calls ``action`` once more, so ``action`` must be idempotent (all of ours are).
    """

    def __init__(self, open_master: Callable[[], Any], *, lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> None:
        self._open = open_master
        self._lock_timeout_ms = lock_timeout_ms
        self._conn: Any = None

    def connection(self) -> Any:
        if self._conn is None:
            conn = self._open()
            try:
                conn.run(f"SET lock_timeout = {int(self._lock_timeout_ms)}")
                conn.run("SELECT pg_advisory_lock(:key)", key=CREDENTIALS_LOCK_KEY)
            except BaseException:
                _close_quietly(conn)
                raise
            self._conn = conn
        return self._conn

    def run(self, action: Callable[[Any], T]) -> T:
        try:
            return action(self.connection())
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self.discard()
        return action(self.connection())

    def discard(self) -> None:
        if self._conn is not None:
            _close_quietly(self._conn)
            self._conn = None

    def close(self) -> None:
        """Closing the session releases its advisory lock."""
        self.discard()

    def __enter__(self) -> MasterSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _close_quietly(conn: Any) -> None:
    with suppress(Exception):  # the connection is gone either way
        conn.close()


@dataclass
class RestoreResult:
    restored: list[str] = field(default_factory=list)
    already_working: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # username -> sanitised reason

    @property
    def complete(self) -> bool:
        return not self.failed


def set_password_if_stale(
    session: MasterSession, connect: ConnectionFactory, endpoint: Endpoint, user: Credentials
) -> bool:
    """Give ``user`` its password in this credential unless it already logs in; ``True`` if changed."""
    if login_works(connect, endpoint, user):
        return False

    def change(conn: Any) -> None:
        check_roles_in_database(conn, [user.username])
        set_role_password(conn, user.username, user.require_password())

    session.run(change)
    return True


def restore_each(
    session: MasterSession, connect: ConnectionFactory, endpoint: Endpoint, secret: AppSecret
) -> RestoreResult:
    """Each user independently gets ``secret``'s password back (when it does not log in already).

    A failure for one user (connection lost, role refused) is recorded and the next user is still
    handled; the caller decides what to report.
    """
    result = RestoreResult()
    for user in secret.users:
        try:
            if set_password_if_stale(session, connect, endpoint, user):
                result.restored.append(user.username)
            else:
                result.already_working.append(user.username)
        except Exception as exc:
            session.discard()
            result.failed[user.username] = describe_error(exc, secrets=_passwords(secret))
    return result


def _passwords(secret: AppSecret) -> tuple[str, ...]:
    return tuple(p for p in (secret.migration.password, secret.app_user.password) if p)


@dataclass(frozen=True, kw_only=True)
class InFlight:
    version_id: str
    secret: AppSecret


def in_flight_rotation(store: SecretStore, secret_id: str, roles: RoleNames) -> InFlight | None:
    """The AWSPENDING version of a rotation in flight (distinct from AWSCURRENT, with passwords), if any."""
    metadata = store.describe(secret_id)
    pending_version = metadata.version_with_stage(AWSPENDING)
    if pending_version is None or pending_version == metadata.version_with_stage(AWSCURRENT):
        return None
    text = store.find_string(secret_id, stage=AWSPENDING, version_id=pending_version)
    if text is None:
        return None  # RotateSecret staged the version; createSecret has not stored passwords yet
    try:
        pending = AppSecret.parse(text)
        check_usernames(pending, roles, what=f"AWSPENDING version {pending_version}")
    except (SecretFormatError, PermissionError):
        return None  # not a usable rotation: never keep (or set) its passwords
    return InFlight(version_id=pending_version, secret=pending)


def in_flight_pending(store: SecretStore, secret_id: str, roles: RoleNames) -> AppSecret | None:
    """The AWSPENDING secret of a rotation in flight, if any (see ``in_flight_rotation``)."""
    found = in_flight_rotation(store, secret_id, roles)
    return found.secret if found else None


def move_current(store: SecretStore, secret_id: str, *, to_version: str, from_version: str | None) -> None:
    """Move AWSCURRENT to ``to_version`` and take AWSPENDING off it (the end of a rotation)."""
    store.move_stage(secret_id, AWSCURRENT, to_version=to_version, from_version=from_version)
    clear_pending_label(store, secret_id, to_version)


def clear_pending_label(store: SecretStore, secret_id: str, version_id: str) -> bool:
    """Take AWSPENDING off ``version_id`` if it is there; ``True`` when a label was removed."""
    if AWSPENDING not in store.describe(secret_id).version_stages.get(version_id, []):
        return False
    store.move_stage(secret_id, AWSPENDING, to_version=None, from_version=version_id)
    return True


def current_version_or_none(store: SecretStore, secret_id: str) -> str | None:
    """Which version is AWSCURRENT, or ``None`` when Secrets Manager cannot tell us right now."""
    try:
        return store.describe(secret_id).version_with_stage(AWSCURRENT)
    except Exception:
        return None
