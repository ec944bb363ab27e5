"""Opening verified-TLS pg8000 connections without ever putting a password into an error message."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Protocol

import pg8000.native

from contract.auth import WRONG_PASSWORD_SQLSTATES, sqlstate_of

DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    host: str
    port: int
    database: str


class DatabaseConnectionError(RuntimeError):
    """A connection could not be opened. ``sqlstate`` is set when the server answered with an error."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    @property
    def is_authentication_failure(self) -> bool:
        return self.sqlstate in WRONG_PASSWORD_SQLSTATES


class ConnectionFactory(Protocol):
    def __call__(self, endpoint: Endpoint, *, username: str, password: str) -> pg8000.native.Connection: ...


def connect(
    endpoint: Endpoint,
    *,
    username: str,
    password: str,
    ssl_context: ssl.SSLContext,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    application_name: str = "revenuepilot-db-lambda",
) -> pg8000.native.Connection:
    """Open a connection over verified TLS; failures raise ``DatabaseConnectionError`` (no password in it)."""
    if not isinstance(ssl_context, ssl.SSLContext) or ssl_context.verify_mode != ssl.CERT_REQUIRED:
        # pg8000 treats ssl_context=None as "try TLS, do not verify, fall back to plaintext": never allowed.
        raise ValueError("a verifying ssl.SSLContext is required")
    try:
        return pg8000.native.Connection(
            username,
            host=endpoint.host,
            port=endpoint.port,
            database=endpoint.database,
            password=password,
            ssl_context=ssl_context,
            timeout=timeout,
            application_name=application_name,
        )
    except Exception as exc:  # every failure is re-raised, sanitised
        raise DatabaseConnectionError(
            f"cannot connect to {endpoint.host}:{endpoint.port}/{endpoint.database} as {username}: "
            f"{describe_error(exc, secrets=(password,))}",
            sqlstate=sqlstate_of(exc),
        ) from None


def tls_connection_factory(
    ssl_context: ssl.SSLContext, *, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> ConnectionFactory:
    def factory(endpoint: Endpoint, *, username: str, password: str) -> pg8000.native.Connection:
        return connect(
            endpoint, username=username, password=password, ssl_context=ssl_context, timeout=timeout
        )

    return factory


def describe_error(exc: BaseException, *, secrets: tuple[str, ...] = ()) -> str:
    """A one-line description: the server's SQLSTATE and message, or the exception type and text.

    Any of ``secrets`` found in the text is redacted (belt and braces: pg8000 does not echo passwords).
    """
    if isinstance(exc, pg8000.native.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        fields = exc.args[0]
        text = f"{fields.get('C', '?')} {fields.get('M', '')}".strip()
    else:
        cause = exc.__cause__
        text = f"{type(exc).__name__}: {exc}"
        if cause is not None:
            text += f" ({type(cause).__name__}: {cause})"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
