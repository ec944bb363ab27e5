"""Lambda entry point (``lambdas.db_bootstrap.handler.on_event``): wiring only, logic in ``bootstrap``."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.common.clients import connect_verified, secretsmanager_client
from lambdas.common.log_safety import quiet_sdk_loggers
from lambdas.common.passwords import generate_password
from lambdas.common.role_guard import RoleNames
from lambdas.common.secret_store import SecretStore
from lambdas.db_bootstrap.bootstrap import handle_event

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    quiet_sdk_loggers()
    request_type = event.get("RequestType")
    logger.info("database bootstrap request", extra={"request_type": request_type})
    client = secretsmanager_client()
    result = handle_event(
        event,
        store=SecretStore(client),
        connect=connect_verified,
        new_password=partial(generate_password, client),
        roles=RoleNames.from_environment(),
    )
    logger.info("database bootstrap done", extra={"request_type": request_type})
    return result
