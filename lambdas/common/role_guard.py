"""Which database roles the credential Lambdas may change: the two configured ones, nothing else.

The usernames in the application secret are data that more principals can write than should be able to
change the master's password (or an ``rds_*`` role's). Every step therefore checks them, first by name
against the configured role names (no database needed), then, before any ``ALTER ROLE``, in the database:
the role is not the master, holds no superuser-like attribute and is not a member of ``rds_superuser`` or
of the master role. A refusal raises ``ForbiddenRoleError`` before anything is changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contract.names import (
    APP_USER_ROLE_NAME_ENV_VAR,
    APPLICATION_ROLE,
    MIGRATION_ROLE,
    MIGRATION_ROLE_NAME_ENV_VAR,
)
from contract.secret import AppSecret

DEFAULT_MIGRATION_ROLE = MIGRATION_ROLE
DEFAULT_APP_USER_ROLE = APPLICATION_ROLE
RESERVED_PREFIXES = ("rds", "pg_", "aws_")


class ForbiddenRoleError(PermissionError):
    """A username in a secret is not one the Lambdas may manage. Nothing was changed."""


@dataclass(frozen=True, kw_only=True)
class RoleNames:
    """The configured names of the two application roles."""

    migration: str = DEFAULT_MIGRATION_ROLE
    app_user: str = DEFAULT_APP_USER_ROLE

    def __post_init__(self) -> None:
        for name in (self.migration, self.app_user):
            if not name or _reserved(name):
                raise ForbiddenRoleError(f"configured role name {name!r} is reserved")
        if self.migration == self.app_user:
            raise ForbiddenRoleError("the two configured role names must differ")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RoleNames:
        env = os.environ if environ is None else environ
        return cls(
            migration=env.get(MIGRATION_ROLE_NAME_ENV_VAR, "").strip() or DEFAULT_MIGRATION_ROLE,
            app_user=env.get(APP_USER_ROLE_NAME_ENV_VAR, "").strip() or DEFAULT_APP_USER_ROLE,
        )


def _reserved(name: str) -> bool:
    return name.lower().startswith(RESERVED_PREFIXES)


def check_usernames(
    secret: AppSecret, roles: RoleNames, *, what: str, master_username: str | None = None
) -> None:
    """``secret`` names exactly the configured roles (and never the master); else refuse."""
    for field_name, actual, expected in (
        ("migration", secret.migration.username, roles.migration),
        ("app_user", secret.app_user.username, roles.app_user),
    ):
        if actual != expected:
            raise ForbiddenRoleError(
                f"{what}: {field_name}.username is {actual!r}, not the configured role {expected!r}; "
                "refusing to change any password"
            )
        if master_username is not None and actual == master_username:
            raise ForbiddenRoleError(f"{what}: {field_name}.username is the master user; refusing")


def check_roles_in_database(conn: Any, usernames: Iterable[str], *, must_exist: bool = True) -> None:
    """As the master, before any change: each role exists (when ``must_exist``) and is an ordinary role."""
    master = conn.run("SELECT current_user")[0][0]
    for name in usernames:
        if name == master:
            raise ForbiddenRoleError(f"role {name!r} is the master user; refusing to change it")
        rows = conn.run(
            "SELECT rolsuper OR rolreplication OR rolbypassrls, "
            "  EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_superuser' "
            "          AND pg_has_role(:name, r.oid, 'MEMBER')), "
            "  pg_has_role(:name, current_user, 'MEMBER') "
            "FROM pg_roles WHERE rolname = :name",
            name=name,
        )
        if not rows:
            if must_exist:
                raise ForbiddenRoleError(f"role {name!r} does not exist; refusing to create it here")
            continue
        privileged, rds_superuser, member_of_master = rows[0]
        if privileged or rds_superuser or member_of_master:
            raise ForbiddenRoleError(
                f"role {name!r} is privileged (superuser, replication, bypassrls, rds_superuser or master "
                "membership); refusing to change its password"
            )
