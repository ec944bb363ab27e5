"""PLACEHOLDER so the infrastructure branch synthesizes; the creds-logic branch replaces this file.

Entry point ``lambdas.credentials_check.handler.lambda_handler``. Environment (set in
constructs/credentials_check.py): ``APP_SECRET_ARN``, ``MASTER_SECRET_ARN``, ``APP_SCHEMAS``,
``METRIC_NAMESPACE``, ``POWERTOOLS_SERVICE_NAME``,
``DB_HOST``, ``DB_PORT``.
"""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    raise NotImplementedError("placeholder: the credentials check comes from the creds-logic branch")
