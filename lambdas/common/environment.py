"""Names of the Lambda environment variables and typed readers for them (read in handlers, never at import).

The CDK constructs set these where the functions are created; the handlers read them here. (Moves to the
shared contract once it exists.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

APP_SECRET_ARN_ENV_VAR = "APP_SECRET_ARN"  # noqa: S105 - a variable name, not a password
MASTER_SECRET_ARN_ENV_VAR = "MASTER_SECRET_ARN"  # noqa: S105 - a variable name, not a password
APP_SCHEMAS_ENV_VAR = "APP_SCHEMAS"
METRIC_NAMESPACE_ENV_VAR = "METRIC_NAMESPACE"
SERVICE_NAME_ENV_VAR = "POWERTOOLS_SERVICE_NAME"
# Optional: the instance endpoint as CloudFormation knows it (follows a replaced/restored instance).
DB_HOST_ENV_VAR = "DB_HOST"
DB_PORT_ENV_VAR = "DB_PORT"
# Optional: the role names, when they are not the contract's ``migration`` / ``app_user``.
MIGRATION_ROLE_ENV_VAR = "MIGRATION_ROLE_NAME"
APP_USER_ROLE_ENV_VAR = "APP_USER_ROLE_NAME"

DEFAULT_METRIC_NAMESPACE = "RevenuePilot/Database"


class ConfigurationError(RuntimeError):
    """A required environment variable is missing or malformed."""


def required(name: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def optional(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return value or None


@dataclass(frozen=True, kw_only=True)
class ConfiguredEndpoint:
    """Where the instance is, according to the function's configuration (CloudFormation keeps it current)."""

    host: str
    port: int


def configured_endpoint(environ: Mapping[str, str] | None = None) -> ConfiguredEndpoint | None:
    host = optional(DB_HOST_ENV_VAR, environ)
    port = optional(DB_PORT_ENV_VAR, environ)
    if host is None:
        return None
    if port is None:
        return ConfiguredEndpoint(host=host, port=5432)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"environment variable {DB_PORT_ENV_VAR} is not a port number")
    return ConfiguredEndpoint(host=host, port=int(port))
