"""Typed readers for the Lambda environment variables named in ``contract.names`` (read in handlers, never
at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from contract.names import DB_HOST_ENV_VAR, DB_PORT_ENV_VAR


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
