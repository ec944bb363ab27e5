"""Lambda entry point (``lambdas.db_bootstrap.handler.on_event``): wiring only, logic in ``bootstrap``."""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from lambdas.common.db import Endpoint, connect
from lambdas.common.log_safety import quiet_sdk_loggers
from lambdas.common.passwords import generate_password
from lambdas.common.secret_store import SecretStore
from lambdas.common.tls import build_ssl_context
from lambdas.db_bootstrap.bootstrap import handle_event

logger = Logger()


@cache
def _secretsmanager() -> Any:
    return boto3.client("secretsmanager")


def _connect(endpoint: Endpoint, *, username: str, password: str) -> Any:
    # The TLS context is built per connection (cheap), so Delete never depends on the CA bundle.
    return connect(endpoint, username=username, password=password, ssl_context=build_ssl_context())


@logger.inject_lambda_context(log_event=False)
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    quiet_sdk_loggers()
    request_type = event.get("RequestType")
    logger.info("database bootstrap request", extra={"request_type": request_type})
    client = _secretsmanager()
    result = handle_event(
        event,
        store=SecretStore(client),
        connect=_connect,
        new_password=partial(generate_password, client),
    )
    logger.info("database bootstrap done", extra={"request_type": request_type})
    return result
