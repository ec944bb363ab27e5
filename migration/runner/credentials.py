"""The `migration` role's credentials, read from the application secret and kept in memory.

Nothing here logs or formats a secret value: errors name the missing or malformed field only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from pathlib import Path
from urllib.parse import quote

from contract.names import MIGRATION_ROLE
from contract.secret import DatabaseLogin, SecretFormatError, parse_app_secret

TLS_MODE = "verify-full"


def parse_migration_login(secret_string: str) -> DatabaseLogin:
    """The `migration` login from the application secret JSON (contract.secret's parser)."""
    return parse_app_secret(secret_string).login(MIGRATION_ROLE)


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


def database_url(credentials: DatabaseLogin, *, scheme: str = "postgresql") -> str:
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
