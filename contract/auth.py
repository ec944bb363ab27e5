"""Which login failures mean "wrong password", and the one AWSPENDING fallback.

During a rotation the database password changes in the rotation's `setSecret` step, but the
secret's AWSCURRENT label moves only in `finishSecret`, after `testSecret` has proved the new
password. In between, AWSCURRENT holds a password the server no longer accepts and the new one is
the AWSPENDING version. `connect_with_pending_fallback` logs in with AWSCURRENT and, only when the
server refuses the password, with AWSPENDING. The Lambdas (master secret), the migration runner and
the client helper (application secret) all use it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from contract.secret import SecretFormatError

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
FALLBACK_STAGES = (AWSCURRENT, AWSPENDING)

# SQLSTATEs with which PostgreSQL refuses the credentials themselves (class 28), and nothing else:
# - 28P01 invalid_password: a wrong password (or an unknown user, which PostgreSQL does not reveal)
#   under password, md5 and scram-sha-256 authentication, and under PAM, which RDS IAM
#   authentication uses;
# - 28000 invalid_authorization_specification: the same refusal under the other authentication
#   methods (PostgreSQL's auth_failed() picks 28P01 only for the password-based ones) and a role
#   that may not log in.
# Both say "these credentials are not accepted", which is exactly what a rotation in flight looks
# like, and retrying with AWSPENDING is harmless for either: when it fails too, the first error is
# raised. Network, TLS, timeout and every other server error are never retried.
WRONG_PASSWORD_SQLSTATES = frozenset({"28P01", "28000"})

L = TypeVar("L")
T = TypeVar("T")

_logger = logging.getLogger(__name__)


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error: pg8000 (``args[0]['C']``), psycopg/asyncpg (``sqlstate``),
    psycopg2 (``pgcode``), or any error carrying a ``sqlstate`` attribute."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(code, str):
        return code
    if error.args and isinstance(error.args[0], dict):
        value = error.args[0].get("C")
        return value if isinstance(value, str) else None
    return None


def is_wrong_password(error: BaseException) -> bool:
    return sqlstate_of(error) in WRONG_PASSWORD_SQLSTATES


@dataclass(frozen=True, kw_only=True)
class SecretVersion:
    """One version of a secret as read by a stage (the value is never in ``repr``)."""

    stage: str
    version_id: str | None
    secret_string: str = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.stage} version {self.version_id or '(unknown id)'}"


def get_secret_version(client: Any, secret_id: str, stage: str) -> SecretVersion:
    """GetSecretValue by stage with a boto3 Secrets Manager client (its errors propagate)."""
    response = client.get_secret_value(SecretId=secret_id, VersionStage=stage)
    value = response.get("SecretString")
    if not isinstance(value, str):
        raise SecretFormatError(f"secret {secret_id} has no SecretString at stage {stage}")
    return SecretVersion(stage=stage, version_id=response.get("VersionId"), secret_string=value)


def find_secret_version(client: Any, secret_id: str, stage: str) -> SecretVersion | None:
    """Like `get_secret_version`, but None when no version has `stage` (e.g. no rotation in progress)."""
    try:
        return get_secret_version(client, secret_id, stage)
    except client.exceptions.ResourceNotFoundException:
        return None


@dataclass(frozen=True, kw_only=True)
class Connected(Generic[L, T]):
    """What `connect` returned, with the stage and login that achieved it."""

    value: T
    stage: str
    login: L


@dataclass(frozen=True, kw_only=True)
class Rejected(Generic[L]):
    """A login the caller already tried and the server refused (e.g. a cached password)."""

    login: L
    error: BaseException


def connect_with_pending_fallback(
    connect: Callable[[L], T],
    fetch_version: Callable[[str], SecretVersion | None],
    parse: Callable[[str], L],
    *,
    rejected: Rejected[L] | None = None,
    warn: Callable[[str], None] = _logger.warning,
) -> Connected[L, T]:
    """`connect(login)` with AWSCURRENT's login; on a wrong-password refusal, with AWSPENDING's.

    `fetch_version(stage)` reads the secret by stage (None when no version has it, e.g. no rotation
    in progress); `parse` turns its text into a login and raises `SecretFormatError` when it cannot.
    Each version is tried on its own: a malformed one is skipped with a warning naming its stage and
    version id (never its value), a login equal to one already tried is not tried again. Errors that
    are not wrong-password refusals propagate at once. When nothing logs in, the first refusal is
    raised (it carries the server's message, never a password), else the first format error.
    """
    tried: list[L] = [rejected.login] if rejected else []
    refusal: BaseException | None = rejected.error if rejected else None
    format_error: SecretFormatError | None = None
    for stage in FALLBACK_STAGES:
        version = fetch_version(stage)
        if version is None:
            continue
        try:
            login = parse(version.secret_string)
        except SecretFormatError as error:
            warn(f"skipping {version.label} of the secret: {error}")
            format_error = format_error or error
            continue
        if login in tried:
            continue
        tried.append(login)
        try:
            return Connected(value=connect(login), stage=stage, login=login)
        except Exception as error:
            if not is_wrong_password(error):
                raise
            refusal = refusal or error
    if refusal is not None:
        raise refusal
    if format_error is not None:
        raise format_error
    raise SecretFormatError("the secret has no AWSCURRENT version")
