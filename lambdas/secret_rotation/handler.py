"""Lambda entry point ``lambdas.secret_rotation.handler.lambda_handler``: wiring only, logic in ``rotation``.

Environment (names in ``contract.names``):
* ``MASTER_SECRET_ARN`` (required): the RDS-managed master secret (``username``/``password``).
* ``APP_SCHEMAS`` (optional, comma-separated, default ``public``): schemas ``migration`` owns.
* ``DB_HOST`` / ``DB_PORT`` (optional): the instance endpoint; without them AWSCURRENT's is used.
* ``MIGRATION_ROLE_NAME`` / ``APP_USER_ROLE_NAME`` (optional): role names other than migration/app_user.
* ``PGSSLROOTCERT`` (optional): CA bundle path; defaults to the bundle shipped with the function.
* ``POWERTOOLS_SERVICE_NAME``: Powertools logger service name.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from contract.names import APP_SCHEMAS_ENV_VAR, MASTER_SECRET_ARN_ENV_VAR
from lambdas.common.clients import connect_verified, secretsmanager_client
from lambdas.common.config import parse_schema_list
from lambdas.common.environment import configured_endpoint, required
from lambdas.common.log_safety import quiet_sdk_loggers
from lambdas.common.passwords import generate_password
from lambdas.common.role_guard import RoleNames
from lambdas.common.secret_store import SecretStore
from lambdas.secret_rotation.rotation import RotationDeps, rotate

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> None:
    quiet_sdk_loggers()
    secret_id = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]
    logger.append_keys(secret_id=secret_id, version_id=token, step=step)
    master_secret_id = required(MASTER_SECRET_ARN_ENV_VAR)
    client = secretsmanager_client()
    deps = RotationDeps(
        store=SecretStore(client),
        connect=connect_verified,
        new_password=partial(generate_password, client),
        master_secret_id=master_secret_id,
        schemas=parse_schema_list(os.environ.get(APP_SCHEMAS_ENV_VAR)),
        roles=RoleNames.from_environment(),
        endpoint=configured_endpoint(),
    )
    logger.info("rotation step starting")
    rotate(step, secret_id, token, deps)
    logger.info("rotation step done")
