"""Lambda entry point ``lambdas.credentials_check.handler.lambda_handler``: wiring only, logic in ``check``.

Environment (names in ``contract.names``):
* ``APP_SECRET_ARN``, ``MASTER_SECRET_ARN`` (required);
* ``APP_SCHEMAS`` (optional, comma-separated, default ``public``), as the rotation function;
* ``METRIC_NAMESPACE`` (optional, default ``RevenuePilot/Database``);
* ``DB_HOST`` / ``DB_PORT`` (optional): the instance endpoint, enables the endpoint-drift repair;
* ``MIGRATION_ROLE_NAME`` / ``APP_USER_ROLE_NAME`` (optional), ``PGSSLROOTCERT`` (optional);
* ``POWERTOOLS_SERVICE_NAME``.

Publishes ``CredentialsCheckFailed`` and ``CredentialsRepaired`` (0/1, dimension ``Secret`` = the
application secret's name) as an EMF line on stdout. Never logs the event or a secret value.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from contract.names import (
    APP_SCHEMAS_ENV_VAR,
    APP_SECRET_ARN_ENV_VAR,
    CREDENTIALS_METRIC_NAMESPACE,
    MASTER_SECRET_ARN_ENV_VAR,
    METRIC_NAMESPACE_ENV_VAR,
)
from lambdas.common.clients import connect_verified, secretsmanager_client
from lambdas.common.config import parse_schema_list
from lambdas.common.environment import configured_endpoint, optional, required
from lambdas.common.log_safety import quiet_sdk_loggers
from lambdas.common.role_guard import RoleNames
from lambdas.common.secret_store import SecretStore
from lambdas.credentials_check.check import CheckDeps, run_check
from lambdas.credentials_check.metrics import emf_line

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    quiet_sdk_loggers()
    app_secret_id = required(APP_SECRET_ARN_ENV_VAR)
    deps = CheckDeps(
        store=SecretStore(secretsmanager_client()),
        connect=connect_verified,
        app_secret_id=app_secret_id,
        master_secret_id=required(MASTER_SECRET_ARN_ENV_VAR),
        schemas=parse_schema_list(os.environ.get(APP_SCHEMAS_ENV_VAR)),
        roles=RoleNames.from_environment(),
        endpoint=configured_endpoint(),
    )
    report = run_check(deps)
    namespace = optional(METRIC_NAMESPACE_ENV_VAR) or CREDENTIALS_METRIC_NAMESPACE
    print(emf_line(namespace=namespace, secret_id=app_secret_id, values=report.metric_values), flush=True)
    summary = {"healthy": report.healthy, "repaired": report.repaired, "problems": report.problems}
    if report.healthy:
        logger.info("credentials check passed", extra=summary)
    else:
        logger.error("credentials check failed: AWSCURRENT does not work for every user", extra=summary)
    return summary
