"""The collaborators both Lambda handlers wire in: a Secrets Manager client and verified TLS connections."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3

from lambdas.common.db import Endpoint, connect
from lambdas.common.tls import build_ssl_context


@cache
def secretsmanager_client() -> Any:
    """One client per execution environment, default configuration (so AWS_ENDPOINT_URL/region env apply)."""
    return boto3.client("secretsmanager")


def connect_verified(endpoint: Endpoint, *, username: str, password: str) -> Any:
    """A TLS connection verified against the RDS CA bundle (PGSSLROOTCERT overrides it).

    The TLS context is built per connection (cheap), so a Delete that never connects never needs
    the CA bundle.
    """
    return connect(endpoint, username=username, password=password, ssl_context=build_ssl_context())
