"""Fault injection around the real PostgreSQL and moto, for the credential Lambdas' fault tests.

Wrappers, not sleeps: each one turns one real call into the failure it models, once or while active.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.db import ConnectionFactory, DatabaseConnectionError, Endpoint


class KilledConnections:
    """A connection factory whose connections get their server process terminated once.

    ``trigger="alter"``: right after the first ``ALTER ROLE`` (it has run; in a transaction it is then
    rolled back, in autocommit it stays). ``trigger="first-statement"``: just before the first statement
    of the first connection that is not the master's (the statement then fails).
    """

    def __init__(
        self, inner: ConnectionFactory, *, admin: Callable[[], Any], master_user: str, trigger: str
    ) -> None:
        self._inner = inner
        self._admin = admin
        self._master_user = master_user
        self._trigger = trigger
        self.fired = False

    def __call__(self, endpoint: Endpoint, *, username: str, password: str) -> Any:
        conn = self._inner(endpoint, username=username, password=password)
        return _KillableConnection(conn, self, is_master=username == self._master_user)

    def kill(self, conn: Any) -> None:
        self.fired = True
        pid = conn.run("SELECT pg_backend_pid()")[0][0]
        admin = self._admin()
        try:
            admin.run("SELECT pg_terminate_backend(:pid, 5000)", pid=pid)
        finally:
            admin.close()

    def before(self, conn: _KillableConnection, sql: str) -> None:
        if not self.fired and self._trigger == "first-statement" and not conn.is_master:
            self.kill(conn.inner)

    def after(self, conn: _KillableConnection, sql: str) -> None:
        if not self.fired and self._trigger == "alter" and sql.lstrip().upper().startswith("ALTER ROLE"):
            self.kill(conn.inner)


class _KillableConnection:
    def __init__(self, inner: Any, owner: KilledConnections, *, is_master: bool) -> None:
        self.inner = inner
        self._owner = owner
        self.is_master = is_master

    def run(self, sql: str, **params: Any) -> Any:
        self._owner.before(self, sql)
        result = self.inner.run(sql, **params)
        self._owner.after(self, sql)
        return result

    def close(self) -> None:
        self.inner.close()


class RefusedHosts:
    """A connection factory for which some host names no longer answer (an endpoint that moved away)."""

    def __init__(self, inner: ConnectionFactory, refused: Iterable[str]) -> None:
        self._inner = inner
        self.refused = set(refused)

    def __call__(self, endpoint: Endpoint, *, username: str, password: str) -> Any:
        if endpoint.host in self.refused:
            raise DatabaseConnectionError(
                f"cannot connect to {endpoint.host}:{endpoint.port}: connection refused"
            )
        return self._inner(endpoint, username=username, password=password)


class ThrottledSecretsManager:
    """A boto3 Secrets Manager client whose ``operations`` fail with ThrottlingException while active."""

    def __init__(self, client: Any, operations: Iterable[str]) -> None:
        self._client = client
        self.operations = set(operations)
        self.active = True
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self.operations:
            return attribute

        def throttled(*args: Any, **kwargs: Any) -> Any:
            if self.active:
                self.failures += 1
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, name
                )
            return attribute(*args, **kwargs)

        return throttled
