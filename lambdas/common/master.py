"""Log in as the RDS master user, also while the master secret itself is being rotated.

The master secret is rotated by AWS's single-user rotation: between its setSecret and finishSecret
the database already has the AWSPENDING password while AWSCURRENT still holds the old one. A
bootstrap or application-secret rotation that lands in that window retries with AWSPENDING
(`contract.auth.connect_with_pending_fallback`).
"""

from __future__ import annotations

import logging
from typing import Any

from contract.auth import connect_with_pending_fallback
from contract.secret import Credentials, parse_master_secret
from lambdas.common.db import ConnectionFactory, Endpoint
from lambdas.common.secret_store import SecretStore

logger = logging.getLogger(__name__)


def connect_as_master(
    store: SecretStore, master_secret_id: str, connect: ConnectionFactory, endpoint: Endpoint
) -> Any:
    def login(credentials: Credentials) -> Any:
        return connect(endpoint, username=credentials.username, password=credentials.require_password())

    return connect_with_pending_fallback(
        login,
        lambda stage: store.find_version(master_secret_id, stage=stage),
        parse_master_secret,
        warn=logger.warning,
    ).value
