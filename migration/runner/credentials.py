"""The `migration` role's credentials, read from the application secret and kept in memory.

Nothing here logs or formats a secret value: errors name the missing or malformed field only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

TLS_MODE = "verify-full"


class SecretFormatError(ValueError):
    """The application secret lacks a field or has one of the wrong type (values never included)."""


class SecretsManagerClient(Protocol):
    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class MigrationCredentials:
    host: str
    port: int
    database: str
    username: str
    password: str = field(repr=False)

    def __str__(self) -> str:  # never the password
        return f"{self.username}@{self.host}:{self.port}/{self.database}"


def parse_app_secret(secret_string: str) -> MigrationCredentials:
    """The `migration` login from the application secret JSON (host, port, database, migration{...})."""
    try:
        document = json.loads(secret_string)
    except json.JSONDecodeError:
        raise SecretFormatError("the application secret is not JSON") from None
    if not isinstance(document, dict):
        raise SecretFormatError("the application secret is not a JSON object")
    migration = document.get("migration")
    if not isinstance(migration, dict):
        raise SecretFormatError("the application secret has no 'migration' object")
    strings = {
        "host": document.get("host"),
        "database": document.get("database"),
        "migration.username": migration.get("username"),
        "migration.password": migration.get("password"),
    }
    for name, value in strings.items():
        if not isinstance(value, str) or not value:
            raise SecretFormatError(f"the application secret has no non-empty string '{name}'")
    port = document.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise SecretFormatError("the application secret has no valid 'port'")
    return MigrationCredentials(
        host=str(strings["host"]),
        port=port,
        database=str(strings["database"]),
        username=str(strings["migration.username"]),
        password=str(strings["migration.password"]),
    )


def fetch_credentials(
    client: SecretsManagerClient, secret_id: str, *, stage: str = "AWSCURRENT"
) -> MigrationCredentials:
    """GetSecretValue (AWSCURRENT by default) with the task role, parsed; the response is not kept."""
    response = client.get_secret_value(SecretId=secret_id, VersionStage=stage)
    secret_string = response.get("SecretString")
    if not isinstance(secret_string, str):
        raise SecretFormatError("the application secret has no SecretString")
    return parse_app_secret(secret_string)


_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_host(host: str) -> str:
    """`host` if it is a DNS name or an IP address (an RDS endpoint is one); never URL syntax.

    A host like `h/db?sslmode=disable&x=` would otherwise end the URL's authority early and put its
    own `sslmode` into DATABASE_URL's query (libpq takes the first one: a plaintext connection).
    """
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise SecretFormatError("the application secret's 'host' is not a DNS name or an IP address")
    return host


def database_url(credentials: MigrationCredentials, *, scheme: str = "postgresql") -> str:
    """`scheme://user:password@host:port/database?sslmode=verify-full`, every part checked or URL-encoded.

    The host must be a DNS name or an IP address (check_host) and is percent-encoded all the same;
    user, password and database are percent-encoded with no safe characters, the port is an int,
    and the query is ours alone: nothing from the secret can add or override a URL parameter.
    """
    if not re.fullmatch(r"[a-z][a-z0-9+]*", scheme):
        raise ValueError(f"URL scheme {scheme!r} is not a SQLAlchemy dialect[+driver] name")
    host = check_host(credentials.host)
    host = f"[{host}]" if ":" in host else quote(host, safe="")
    user = quote(credentials.username, safe="")
    password = quote(credentials.password, safe="")
    database = quote(credentials.database, safe="")
    port = int(credentials.port)
    return f"{scheme}://{user}:{password}@{host}:{port}/{database}?sslmode={TLS_MODE}"


def secret_fragments(credentials: MigrationCredentials) -> tuple[str, ...]:
    """Strings that must never appear in anything the runner prints (raw and URL-encoded password)."""
    return tuple({credentials.password, quote(credentials.password, safe="")})


def child_environment(
    base: dict[str, str],
    credentials: MigrationCredentials,
    *,
    ca_bundle: Path,
    connect_timeout: int,
    scheme: str,
    runner_paths: tuple[str, ...] = (),
) -> dict[str, str]:
    """The environment for the Alembic process: the base one plus DATABASE_URL and libpq's TLS settings.

    `runner_paths` (where the runner's own dependencies live) are removed from PYTHONPATH so the
    backend's Alembic sees only the backend's packages.
    """
    env = dict(base)
    env.pop("DATABASE_URL", None)
    if runner_paths and "PYTHONPATH" in env:
        kept = [p for p in env["PYTHONPATH"].split(os.pathsep) if p and p not in runner_paths]
        if kept:
            env["PYTHONPATH"] = os.pathsep.join(kept)
        else:
            del env["PYTHONPATH"]
    env.update(
        {
            "DATABASE_URL": database_url(credentials, scheme=scheme),
            "PGSSLMODE": TLS_MODE,
            "PGSSLROOTCERT": str(ca_bundle),
            "PGCONNECT_TIMEOUT": str(connect_timeout),
        }
    )
    return env


def verify_full_context(ca_bundle: Path) -> ssl.SSLContext:
    """libpq `verify-full` for the runner's own connections: chain to the RDS CA and hostname, TLS >= 1.2."""
    pem = ca_bundle.read_text(encoding="ascii")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ssl.SSLError(f"CA bundle {ca_bundle} contains no PEM certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.load_verify_locations(cadata=pem)
    return context
