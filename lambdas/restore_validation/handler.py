"""Lambda entry point (``lambdas.restore_validation.handler.on_event``): wiring only, logic in ``validation``.

Three events: `{"validate_instance": "<id>"}` from `python -m ops restore`; AWS Backup's "Restore Job State Change" (status COMPLETED) validates the restored
instance; the daily schedule (``{"check": "freshness"}``) publishes how long ago a test last passed.
Credentials: the master secret (MASTER_SECRET_ARN, primary region) or, in the DR region, LOGIN_ROLE's login
from the application secret's replica (LOGIN_SECRET_ID; decision 0010), AWSCURRENT then AWSPREVIOUS.
The event is never logged; the evidence record is (one JSON line in the function's CMK-encrypted,
retained log group).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from contract.names import LOGIN_ROLE_ENV_VAR, LOGIN_SECRET_ID_ENV_VAR, MASTER_SECRET_ARN_ENV_VAR
from contract.secret import parse_master_secret
from lambdas.common.clients import connect_verified, secretsmanager_client
from lambdas.common.db import Endpoint
from lambdas.common.log_safety import quiet_sdk_loggers
from lambdas.common.secret_store import SecretStore
from lambdas.restore_validation.validation import (
    LoginParser,
    ValidationOutcome,
    application_role_login,
    connect_restored,
    process_restore_job,
    publish_freshness,
    validate_instance,
    validate_restored_database,
)

logger = Logger()


@cache
def _client(name: str) -> Any:
    return boto3.client(name)


def _settings() -> dict[str, Any]:
    return {
        "environment": os.environ["ENVIRONMENT_NAME"],
        "plan_arn": os.environ["RESTORE_TESTING_PLAN_ARN"],
        "queries": [tuple(pair) for pair in json.loads(os.environ["VALIDATION_QUERIES"])],
        "roles": json.loads(os.environ["EXPECTED_ROLES"]),
    }


def login_secret(environ: Mapping[str, str]) -> tuple[str, LoginParser]:
    """Which secret the validation logs in with: the master secret (primary region), or the application
    secret's replica as LOGIN_ROLE (DR region, decision 0010)."""
    if MASTER_SECRET_ARN_ENV_VAR in environ:
        return environ[MASTER_SECRET_ARN_ENV_VAR], parse_master_secret
    return environ[LOGIN_SECRET_ID_ENV_VAR], application_role_login(environ[LOGIN_ROLE_ENV_VAR])


@logger.inject_lambda_context(log_event=False)
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    quiet_sdk_loggers()
    settings = _settings()
    now = datetime.now(UTC)
    if event.get("check") == "freshness":
        age = publish_freshness(
            _client("backup"),
            _client("cloudwatch"),
            environment=settings["environment"],
            restore_testing_plan_arn=settings["plan_arn"],
            now=now,
        )
        logger.info("restore test freshness", extra={"seconds_since_last_successful_test": age})
        return {"seconds_since_last_successful_test": age}

    store = SecretStore(secretsmanager_client())
    secret_id, login = login_secret(os.environ)

    def validate(endpoint: Endpoint) -> ValidationOutcome:
        connection = connect_restored(store, secret_id, connect_verified, endpoint, login=login)
        try:
            return validate_restored_database(
                connection, queries=settings["queries"], expected_roles=settings["roles"]
            )
        finally:
            connection.close()

    if "validate_instance" in event:  # python -m ops restore
        return validate_instance(
            str(event["validate_instance"]),
            environment=settings["environment"],
            rds=_client("rds"),
            validate=validate,
            record=lambda record: logger.info("restore drill evidence", extra=record),
        )
    detail = event.get("detail") or {}
    evidence = process_restore_job(
        str(detail.get("restoreJobId", "")),
        environment=settings["environment"],
        restore_testing_plan_arn=settings["plan_arn"],
        backup=_client("backup"),
        rds=_client("rds"),
        cloudwatch=_client("cloudwatch"),
        validate=validate,
        record=lambda record: logger.info("restore test evidence", extra=record),
    )
    if evidence is None:
        logger.info("restore job is not one of this environment's restore tests")
    return evidence
