"""Log in to PostgreSQL with credentials from the application secret, across password rotations.

During a rotation the database password changes in the rotation's `setSecret` step, but the
secret's AWSCURRENT label moves only in `finishSecret`, after `testSecret` has proved the new
password. In between, AWSCURRENT holds a password the server no longer accepts (SQLSTATE 28P01)
and the new one is the AWSPENDING version. A client that re-reads AWSCURRENT and then tries
AWSPENDING on 28P01 never fails a login because of a rotation.

Usage (any driver; pg8000 shown)::

    credentials = RotationAwareCredentials(boto3.client("secretsmanager"), SECRET_ID, user="app_user")
    conn = credentials.connect(lambda username, password: pg8000.native.Connection(
        username, password=password, host=..., database=..., ssl_context=verified_tls_context))

Never logs or returns passwords.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

# SQLSTATE invalid_password; PostgreSQL also returns it for an unknown user.
INVALID_PASSWORD_SQLSTATE = "28P01"  # noqa: S105 - an error code, not a password
T = TypeVar("T")


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error: pg8000 (args[0]['C']), psycopg (`sqlstate`), asyncpg (`sqlstate`)."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(code, str):
        return code
    if error.args and isinstance(error.args[0], dict):
        value = error.args[0].get("C")
        return value if isinstance(value, str) else None
    return None


def is_invalid_password(error: BaseException) -> bool:
    return sqlstate(error) == INVALID_PASSWORD_SQLSTATE


class RotationAwareCredentials:
    """Caches one user's password from the secret and refreshes it when the server rejects it."""

    def __init__(self, secretsmanager: Any, secret_id: str, *, user: str) -> None:
        self._client = secretsmanager
        self._secret_id = secret_id
        self._user = user
        self._lock = threading.Lock()
        self._cached: tuple[str, str] | None = None  # (username, password) of AWSCURRENT

    def _read(self, stage: str) -> tuple[str, str] | None:
        try:
            response = self._client.get_secret_value(SecretId=self._secret_id, VersionStage=stage)
        except self._client.exceptions.ResourceNotFoundException:
            return None  # no AWSPENDING version: no rotation in progress
        entry = json.loads(response["SecretString"])[self._user]
        password = entry.get("password")
        return (entry["username"], password) if password else None

    def current(self) -> tuple[str, str]:
        with self._lock:
            if self._cached is None:
                self._cached = self._read("AWSCURRENT")
                if self._cached is None:
                    raise RuntimeError(f"secret {self._secret_id} has no password for {self._user} yet")
            return self._cached

    def connect(self, login: Callable[[str, str], T]) -> T:
        """`login(username, password)` with the cached password; on 28P01 retry with fresh AWSCURRENT, then AWSPENDING."""
        username, password = self.current()
        try:
            return login(username, password)
        except Exception as error:
            if not is_invalid_password(error):
                raise
            first_error = error
        tried = {password}
        for stage in ("AWSCURRENT", "AWSPENDING"):
            candidate = self._read(stage)
            if candidate is None or candidate[1] in tried:
                continue
            tried.add(candidate[1])
            try:
                connection = login(*candidate)
            except Exception as error:
                if is_invalid_password(error):
                    continue
                raise
            if stage == "AWSCURRENT":
                with self._lock:
                    self._cached = candidate
            return connection
        # Raise the original error: it carries the server's message, never a password.
        raise first_error
