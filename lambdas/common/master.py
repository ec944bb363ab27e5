"""Log in as the RDS master user, also while the master secret itself is being rotated.

The master secret is rotated by AWS's single-user rotation: between its setSecret and finishSecret
the database already has the AWSPENDING password while AWSCURRENT still holds the old one. A
bootstrap or application-secret rotation that lands in that window retries with AWSPENDING.
"""

from __future__ import annotations

from typing import Any

from lambdas.common.app_secret import parse_master_secret
from lambdas.common.db import ConnectionFactory, DatabaseConnectionError, Endpoint
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING, SecretStore


def connect_as_master(
    store: SecretStore, master_secret_id: str, connect: ConnectionFactory, endpoint: Endpoint
) -> Any:
    current = parse_master_secret(store.get_string(master_secret_id, stage=AWSCURRENT))
    try:
        return connect(endpoint, username=current.username, password=current.require_password())
    except DatabaseConnectionError as error:
        if not error.is_authentication_failure:
            raise
        pending_text = store.find_string(master_secret_id, stage=AWSPENDING)
        if pending_text is None:
            raise
        pending = parse_master_secret(pending_text)
        if pending.password == current.password:
            raise
        return connect(endpoint, username=pending.username, password=pending.require_password())
