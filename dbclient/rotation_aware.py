"""Log in to PostgreSQL with credentials from the application secret, across password rotations.

During a rotation the database password changes in the rotation's `setSecret` step, but the
secret's AWSCURRENT label moves only in `finishSecret`, after `testSecret` has proved the new
password. In between, AWSCURRENT holds a password the server no longer accepts (a SQLSTATE of
contract.auth.WRONG_PASSWORD_SQLSTATES) and the new one is the AWSPENDING version. A client that
re-reads AWSCURRENT and then tries AWSPENDING on such a refusal never fails a login because of a
rotation. Needs the `contract` package next to `dbclient`.

Usage (any driver; pg8000 shown)::

    credentials = RotationAwareCredentials(boto3.client("secretsmanager"), SECRET_ID, user="app_user")
    conn = credentials.connect(lambda username, password: pg8000.native.Connection(
        username, password=password, host=..., database=..., ssl_context=verified_tls_context))

Never logs or returns passwords.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from contract.auth import (
    AWSCURRENT,
    Rejected,
    SecretVersion,
    connect_with_pending_fallback,
    find_secret_version,
    is_wrong_password,
)
from contract.secret import Credentials, SecretFormatError, parse_app_secret

T = TypeVar("T")
logger = logging.getLogger(__name__)


class RotationAwareCredentials:
    """Caches one user's password from the secret and refreshes it when the server rejects it."""

    def __init__(self, secretsmanager: Any, secret_id: str, *, user: str) -> None:
        self._client = secretsmanager
        self._secret_id = secret_id
        self._user = user
        self._lock = threading.Lock()
        self._cached: Credentials | None = None  # AWSCURRENT's login

    def _fetch(self, stage: str) -> SecretVersion | None:
        return find_secret_version(self._client, self._secret_id, stage)

    def _parse(self, text: str) -> Credentials:
        credentials = parse_app_secret(text, require_passwords=False).credentials(self._user)
        credentials.require_password()
        return credentials

    def current(self) -> tuple[str, str]:
        with self._lock:
            if self._cached is None:
                version = self._fetch(AWSCURRENT)
                try:
                    self._cached = self._parse(version.secret_string) if version else None
                except SecretFormatError:
                    self._cached = None
                if self._cached is None or not self._cached.password:
                    raise RuntimeError(f"secret {self._secret_id} has no password for {self._user} yet")
            return (self._cached.username, self._cached.password or "")

    def connect(self, login: Callable[[str, str], T]) -> T:
        """`login(username, password)` with the cached password; when the server refuses it, with a fresh
        AWSCURRENT, then AWSPENDING (contract.auth.connect_with_pending_fallback)."""
        username, password = self.current()
        try:
            return login(username, password)
        except Exception as error:
            if not is_wrong_password(error):
                raise
            rejected = Rejected(login=Credentials(username=username, password=password), error=error)
        connected = connect_with_pending_fallback(
            lambda credentials: login(credentials.username, credentials.require_password()),
            self._fetch,
            self._parse,
            rejected=rejected,
            warn=logger.warning,
        )
        if connected.stage == AWSCURRENT:
            with self._lock:
                self._cached = connected.login
        return connected.value
