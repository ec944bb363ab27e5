"""Log in as the RDS master user, also while RDS rotates the master password.

The master secret is RDS-managed (``ManageMasterUserPassword``): it holds only ``username`` and
``password``; where to connect comes from the caller (application secret or the function's configured
endpoint). RDS changes the database password and the secret's AWSCURRENT value close together but not
atomically, so a login that fails with an authentication error is retried with a *fresh* read of
AWSCURRENT after a short wait (and with AWSPENDING, when one exists and differs, for a self-managed
rotation). Nothing is cached between calls.

``CREDENTIALS_LOCK_KEY`` is the PostgreSQL advisory lock with which the functions that change the
application roles' passwords (bootstrap, rotation steps, credentials check) serialise, so a decision taken
on a state read under the lock still holds when it is acted on (``credentials.MasterSession`` takes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from lambdas.common.app_secret import Credentials, parse_master_secret
from lambdas.common.db import ConnectionFactory, DatabaseConnectionError, Endpoint
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING, SecretStore

# Waits before the 2nd and 3rd fresh reads: RDS updates the secret within seconds of the password.
MASTER_RETRY_DELAYS_SECONDS: tuple[float, ...] = (2.0, 5.0)
# One 63-bit key for "someone is changing the application roles' passwords" (any stable constant works).
CREDENTIALS_LOCK_KEY = 0x5250_4352_4544_53  # "RPCREDS"
LOCK_TIMEOUT_MS = 30_000

Sleep = Callable[[float], None]


def read_master(store: SecretStore, master_secret_id: str) -> Credentials:
    return parse_master_secret(store.get_string(master_secret_id, stage=AWSCURRENT))


def master_username(store: SecretStore, master_secret_id: str) -> str:
    return read_master(store, master_secret_id).username


def _candidates(store: SecretStore, master_secret_id: str, tried: set[str]) -> list[Credentials]:
    current = read_master(store, master_secret_id)
    found = [current]
    pending_text = store.find_string(master_secret_id, stage=AWSPENDING)
    if pending_text is not None:
        found.append(parse_master_secret(pending_text))
    return [c for c in found if c.password not in tried]


def connect_as_master(
    store: SecretStore,
    master_secret_id: str,
    connect: ConnectionFactory,
    endpoint: Endpoint,
    *,
    sleep: Sleep = time.sleep,
    delays: Sequence[float] = MASTER_RETRY_DELAYS_SECONDS,
) -> Any:
    """A master connection; on an authentication failure re-read the secret (after ``delays``) and retry."""
    tried: set[str] = set()
    last_error: DatabaseConnectionError | None = None
    for attempt in range(len(delays) + 1):
        if attempt:
            sleep(delays[attempt - 1])
        for candidate in _candidates(store, master_secret_id, tried):
            password = candidate.require_password()
            tried.add(password)
            try:
                return connect(endpoint, username=candidate.username, password=password)
            except DatabaseConnectionError as error:
                if not error.is_authentication_failure:
                    raise
                last_error = error
    if last_error is None:  # every read returned a password already tried
        raise DatabaseConnectionError(
            f"cannot connect to {endpoint.host}:{endpoint.port} as the master user: "
            "no new master password appeared in the secret",
            sqlstate="28P01",
        )
    raise last_error
