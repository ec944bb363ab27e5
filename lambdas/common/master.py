"""Log in as the RDS master user, also while RDS rotates the master password.

The master secret is RDS-managed (``ManageMasterUserPassword``): it holds only ``username`` and
``password``; where to connect comes from the caller (application secret or the function's configured
endpoint). RDS changes the database password and the secret's value close together but not atomically,
so a login refused as a wrong password is retried after a short wait with a *fresh* read of the secret.
Each attempt is the contract's one AWSPENDING fallback (``contract.auth.connect_with_pending_fallback``:
AWSCURRENT, then AWSPENDING when there is one, malformed versions skipped). Nothing is cached.

``CREDENTIALS_LOCK_KEY`` is the PostgreSQL advisory lock with which the functions that change the
application roles' passwords (bootstrap, rotation steps, credentials check) serialise, so a decision taken
on a state read under the lock still holds when it is acted on (``credentials.MasterSession`` takes it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from contract.auth import connect_with_pending_fallback, is_wrong_password
from contract.secret import Credentials, parse_master_secret
from lambdas.common.db import ConnectionFactory, Endpoint
from lambdas.common.secret_store import AWSCURRENT, SecretStore

logger = logging.getLogger(__name__)

# Waits before the 2nd and 3rd fresh reads: RDS updates the secret within seconds of the password.
MASTER_RETRY_DELAYS_SECONDS: tuple[float, ...] = (2.0, 5.0)
# One 63-bit key for "someone is changing the application roles' passwords" (any stable constant works).
CREDENTIALS_LOCK_KEY = 0x5250_4352_4544_53  # "RPCREDS"
LOCK_TIMEOUT_MS = 30_000

Sleep = Callable[[float], None]


def read_master(store: SecretStore, master_secret_id: str) -> Credentials:
    return parse_master_secret(store.get_string(master_secret_id, stage=AWSCURRENT))


def connect_as_master(
    store: SecretStore,
    master_secret_id: str,
    connect: ConnectionFactory,
    endpoint: Endpoint,
    *,
    sleep: Sleep = time.sleep,
    delays: Sequence[float] = MASTER_RETRY_DELAYS_SECONDS,
) -> Any:
    """A master connection; when the password is refused, re-read the secret (after ``delays``) and retry."""

    def login(credentials: Credentials) -> Any:
        return connect(endpoint, username=credentials.username, password=credentials.require_password())

    for delay in (*delays, None):
        try:
            return connect_with_pending_fallback(
                login,
                lambda stage: store.find_version(master_secret_id, stage=stage),
                parse_master_secret,
                warn=logger.warning,
            ).value
        except Exception as error:
            if delay is None or not is_wrong_password(error):
                raise
        logger.warning("master password refused; reading the master secret again", extra={"wait_s": delay})
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
