"""The shape of the application database secret and of the RDS master secret.

Parse errors name the missing or malformed field and never echo a value. Passwords are excluded from
``repr`` so an accidental log of one of these objects does not leak them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any


class SecretFormatError(ValueError):
    """A secret does not have the expected JSON shape."""


@dataclass(frozen=True, kw_only=True)
class Credentials:
    username: str
    password: str | None = field(default=None, repr=False)

    def require_password(self) -> str:
        if not self.password:
            raise SecretFormatError(f"no password for user {self.username!r}")
        return self.password


@dataclass(frozen=True, kw_only=True)
class AppSecret:
    """``{"host","port","database","migration":{...},"app_user":{...},"rotatedAt"}``.

    CloudFormation creates the secret without passwords; the bootstrap custom resource fills them in.
    """

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

    def with_passwords(self, *, migration: str, app_user: str, rotated_at: str | None = None) -> AppSecret:
        return replace(
            self,
            migration=replace(self.migration, password=migration),
            app_user=replace(self.app_user, password=app_user),
            rotated_at=rotated_at or utc_timestamp(),
        )

    @classmethod
    def parse(cls, text: str, *, require_passwords: bool = True) -> AppSecret:
        data = _load_object(text, "application secret")
        secret = cls(
            host=_str_field(data, "host"),
            port=_port_field(data, "port"),
            database=_str_field(data, "database"),
            migration=_credentials_field(data, "migration", require_passwords),
            app_user=_credentials_field(data, "app_user", require_passwords),
            rotated_at=_optional_str_field(data, "rotatedAt"),
        )
        return secret

    def to_dict(self) -> dict[str, Any]:
        if not self.has_passwords:
            raise SecretFormatError("refusing to serialize an application secret without both passwords")
        out: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "migration": {"username": self.migration.username, "password": self.migration.password},
            "app_user": {"username": self.app_user.username, "password": self.app_user.password},
        }
        if self.rotated_at:
            out["rotatedAt"] = self.rotated_at
        return out

    def serialize(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def parse_master_secret(text: str) -> Credentials:
    """The RDS-generated master secret: at least ``username`` and ``password``."""
    data = _load_object(text, "master secret")
    return Credentials(username=_str_field(data, "username"), password=_str_field(data, "password"))


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, second precision."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _load_object(text: str, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        # The decoder's message quotes the document: do not chain it.
        raise SecretFormatError(f"{what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise SecretFormatError(f"{what} is not a JSON object")
    return data


def _str_field(data: Mapping[str, Any], name: str, prefix: str = "") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise SecretFormatError(f"field {prefix}{name!s} is missing or not a non-empty string")
    return value


def _optional_str_field(data: Mapping[str, Any], name: str, prefix: str = "") -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SecretFormatError(f"field {prefix}{name} is not a string")
    return value


def _port_field(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise SecretFormatError(f"field {name} is missing or not a valid port number")
    return value


def _credentials_field(data: Mapping[str, Any], name: str, require_password: bool) -> Credentials:
    value = data.get(name)
    if not isinstance(value, dict):
        raise SecretFormatError(f"field {name} is missing or not an object")
    prefix = f"{name}."
    username = _str_field(value, "username", prefix)
    if require_password:
        password: str | None = _str_field(value, "password", prefix)
    else:
        password = _optional_str_field(value, "password", prefix)
    return Credentials(username=username, password=password)
