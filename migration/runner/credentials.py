"""The `migration` role's credentials, read from the application secret and kept in memory.

Nothing here logs or formats a secret value: errors name the missing or malformed field only.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from urllib.parse import quote

from contract.names import MIGRATION_ROLE
from contract.secret import DatabaseLogin, parse_app_secret

TLS_MODE = "verify-full"


def parse_migration_login(secret_string: str) -> DatabaseLogin:
    """The `migration` login from the application secret JSON (contract.secret's parser)."""
    return parse_app_secret(secret_string).login(MIGRATION_ROLE)


def database_url(credentials: DatabaseLogin, *, scheme: str = "postgresql") -> str:
    """`scheme://user:password@host:port/database?sslmode=verify-full`, user and password URL-encoded."""
    user = quote(credentials.username, safe="")
    password = quote(credentials.password, safe="")
    database = quote(credentials.database, safe="")
    host = f"[{credentials.host}]" if ":" in credentials.host else credentials.host
    return f"{scheme}://{user}:{password}@{host}:{credentials.port}/{database}?sslmode={TLS_MODE}"


def secret_fragments(credentials: DatabaseLogin) -> tuple[str, ...]:
    """Strings that must never appear in anything the runner prints (raw and URL-encoded password)."""
    return tuple({credentials.password, quote(credentials.password, safe="")})


def child_environment(
    base: dict[str, str],
    credentials: DatabaseLogin,
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
