"""The application secret and the RDS master secret: field names and the one parser.

Application secret (the ops guide's shape)::

    {"host", "port", "database", "migration": {"username", "password"},
     "app_user": {"username", "password"}, "rotatedAt"}

CloudFormation creates it without passwords and host; the bootstrap fills them in.
Parse errors name the missing or malformed field and never echo a value; passwords are excluded
from ``repr``/``str`` so an accidental log of one of these objects does not leak them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from contract.names import APPLICATION_ROLE, MIGRATION_ROLE

HOST_FIELD = "host"
PORT_FIELD = "port"
DATABASE_FIELD = "database"
USERNAME_FIELD = "username"
PASSWORD_FIELD = "password"  # noqa: S105 - a field name, not a password
ROTATED_AT_FIELD = "rotatedAt"


class SecretFormatError(ValueError):
    """A secret does not have the expected JSON shape (the message names fields, never values)."""


@dataclass(frozen=True, kw_only=True)
class Credentials:
    username: str
    password: str | None = field(default=None, repr=False)

    def require_password(self) -> str:
        if not self.password:
            raise SecretFormatError(f"no password for user {self.username!r}")
        return self.password


@dataclass(frozen=True, kw_only=True)
class DatabaseLogin:
    """Everything one role needs to log in (the password is never in ``repr`` or ``str``)."""

    host: str
    port: int
    database: str
    username: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True, kw_only=True)
class AppSecret:
    host: str
    port: int
    database: str
    migration: Credentials
    app_user: Credentials
    rotated_at: str | None = None

    @property
    def has_passwords(self) -> bool:
        return bool(self.migration.password) and bool(self.app_user.password)

    @property
    def users(self) -> tuple[Credentials, Credentials]:
        return (self.migration, self.app_user)

    def credentials(self, role: str) -> Credentials:
        if role == MIGRATION_ROLE:
            return self.migration
        if role == APPLICATION_ROLE:
            return self.app_user
        raise SecretFormatError(f"the application secret has no role {role!r}")

    def login(self, role: str) -> DatabaseLogin:
        """`role`'s login; raises when the role's password is not there (yet)."""
        credentials = self.credentials(role)
        if not credentials.password:
            raise SecretFormatError(f"field '{role}.{PASSWORD_FIELD}' is missing or not a non-empty string")
        return DatabaseLogin(
            host=self.host,
            port=self.port,
            database=self.database,
            username=credentials.username,
            password=credentials.password,
        )

    def with_passwords(self, *, migration: str, app_user: str, rotated_at: str | None = None) -> AppSecret:
        return replace(
            self,
            migration=replace(self.migration, password=migration),
            app_user=replace(self.app_user, password=app_user),
            rotated_at=rotated_at or utc_timestamp(),
        )

    @classmethod
    def parse(cls, text: str, *, require_passwords: bool = True) -> AppSecret:
        return parse_app_secret(text, require_passwords=require_passwords)

    def to_dict(self) -> dict[str, Any]:
        if not self.has_passwords:
            raise SecretFormatError("refusing to serialize an application secret without both passwords")
        out: dict[str, Any] = {
            HOST_FIELD: self.host,
            PORT_FIELD: self.port,
            DATABASE_FIELD: self.database,
            MIGRATION_ROLE: {
                USERNAME_FIELD: self.migration.username,
                PASSWORD_FIELD: self.migration.password,
            },
            APPLICATION_ROLE: {
                USERNAME_FIELD: self.app_user.username,
                PASSWORD_FIELD: self.app_user.password,
            },
        }
        if self.rotated_at:
            out[ROTATED_AT_FIELD] = self.rotated_at
        return out

    def serialize(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def parse_app_secret(text: str, *, require_passwords: bool = True) -> AppSecret:
    """The application secret; `require_passwords=False` also accepts the password-less template."""
    data = _load_object(text, "the application secret")
    return AppSecret(
        host=_str_field(data, HOST_FIELD),
        port=_port_field(data, PORT_FIELD),
        database=_str_field(data, DATABASE_FIELD),
        migration=_credentials_field(data, MIGRATION_ROLE, require_passwords),
        app_user=_credentials_field(data, APPLICATION_ROLE, require_passwords),
        rotated_at=_optional_str_field(data, ROTATED_AT_FIELD),
    )


def parse_master_secret(text: str) -> Credentials:
    """The RDS-generated master secret: at least ``username`` and ``password``."""
    data = _load_object(text, "the master secret")
    return Credentials(username=_str_field(data, USERNAME_FIELD), password=_str_field(data, PASSWORD_FIELD))


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, second precision."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _load_object(text: str, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        # The decoder's message quotes the document: do not chain it.
        raise SecretFormatError(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise SecretFormatError(f"{what} is not a JSON object")
    return data


def _str_field(data: Mapping[str, Any], name: str, prefix: str = "") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise SecretFormatError(f"field '{prefix}{name}' is missing or not a non-empty string")
    return value


def _optional_str_field(data: Mapping[str, Any], name: str, prefix: str = "") -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SecretFormatError(f"field '{prefix}{name}' is not a string")
    return value


def _port_field(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise SecretFormatError(f"field '{name}' is missing or not a valid port number")
    return value


def _credentials_field(data: Mapping[str, Any], name: str, require_password: bool) -> Credentials:
    value = data.get(name)
    if not isinstance(value, dict):
        raise SecretFormatError(f"field '{name}' is missing or not an object")
    prefix = f"{name}."
    username = _str_field(value, USERNAME_FIELD, prefix)
    if require_password:
        password: str | None = _str_field(value, PASSWORD_FIELD, prefix)
    else:
        password = _optional_str_field(value, PASSWORD_FIELD, prefix)
    return Credentials(username=username, password=password)
