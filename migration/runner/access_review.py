"""The database half of the access review (`python -m migration.runner access-review`).

Runs in the migration task (inside the VPC, verified TLS, the task role's read of the application
secret) as `migration`, in a READ ONLY transaction, and reads only the system catalogs, which every
role may read: roles and their attributes, memberships, privileges per schema (the schema's own and
those on its tables and sequences, counted per grantee), default privileges, the database's
privileges, pgAudit's state, and when the application secret's passwords were last rotated.

`pg_roles` shows `********` for every password: no password, hash or secret value is read or
printed. The report is one JSON line that the operator command (`python -m ops access-review`)
reads back from the task's log stream (REPORT_MARKER).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Protocol

from contract.names import ACCESS_REVIEW_REPORT_MARKER, APPLICATION_ROLE, MIGRATION_ROLE
from contract.secret import SecretFormatError, parse_app_secret

REPORT_MARKER = ACCESS_REVIEW_REPORT_MARKER
PGAUDIT_SETTINGS = (
    "pgaudit.log",
    "pgaudit.log_parameter",
    "pgaudit.log_catalog",
    "pgaudit.log_relation",
    "pgaudit.log_level",
    "pgaudit.role",
)
ROLE_ATTRIBUTES = (
    "rolsuper",
    "rolinherit",
    "rolcreaterole",
    "rolcreatedb",
    "rolcanlogin",
    "rolreplication",
    "rolbypassrls",
)


class Connection(Protocol):
    def run(self, sql: str, **params: Any) -> Any: ...


# Constant SQL (no interpolation). PUBLIC is grantee 0 in an ACL; user schemas exclude pg_* and information_schema.
_ROLES_SQL = """
SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
       rolconnlimit, rolvaliduntil, rolconfig
FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname
"""
_MEMBERSHIPS_SQL = """
SELECT pg_get_userbyid(m.member), pg_get_userbyid(m.roleid), pg_get_userbyid(m.grantor), m.admin_option, {options}
FROM pg_auth_members m ORDER BY 1, 2
"""
_MEMBERSHIPS_16_SQL = _MEMBERSHIPS_SQL.replace("{options}", "m.inherit_option, m.set_option")
_MEMBERSHIPS_15_SQL = _MEMBERSHIPS_SQL.replace("{options}", "NULL, NULL")
_SCHEMAS_SQL = """
SELECT n.nspname, pg_get_userbyid(n.nspowner) FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1
"""
_SCHEMA_ACL_SQL = """
SELECT n.nspname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
FROM pg_namespace n CROSS JOIN LATERAL aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1, 2, 3
"""
_OBJECT_ACL_SQL = """
SELECT n.nspname, CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, count(*)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(
    COALESCE(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner))) a
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""
_DEFAULT_ACL_SQL = """
SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL aclexplode(d.defaclacl) a ORDER BY 1, 2, 3, 4, 5
"""
_DATABASE_ACL_SQL = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type
FROM pg_database d CROSS JOIN LATERAL aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a
WHERE d.datname = current_database() ORDER BY 1, 2
"""


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def roles(conn: Connection) -> list[dict[str, Any]]:
    """Every role except PostgreSQL's predefined `pg_*` ones, with its attributes and settings."""
    result = []
    for row in conn.run(_ROLES_SQL):
        name, *flags, connlimit, valid_until, config = row
        attributes = [
            attribute[3:].upper() for attribute, flag in zip(ROLE_ATTRIBUTES, flags, strict=True) if flag
        ]
        result.append(
            {
                "name": name,
                "attributes": attributes,
                "can_login": "CANLOGIN" in attributes,
                "connection_limit": connlimit,
                "valid_until": _json_value(valid_until),
                "settings": list(config or []),
            }
        )
    return result


def memberships(conn: Connection) -> list[dict[str, Any]]:
    """Who is a member of which role, granted by whom, with which options (INHERIT/SET on 16+)."""
    version = int(conn.run("SHOW server_version_num")[0][0])
    rows = conn.run(_MEMBERSHIPS_16_SQL if version >= 160000 else _MEMBERSHIPS_15_SQL)
    return [
        {"member": member, "role": role, "grantor": grantor, "admin": admin, "inherit": inherit, "set": set_}
        for member, role, grantor, admin, inherit, set_ in rows
    ]


def schema_privileges(conn: Connection) -> list[dict[str, Any]]:
    """Per user schema: owner, privileges on the schema, and table/sequence privileges per grantee."""
    schemas: dict[str, dict[str, Any]] = {
        schema: {"schema": schema, "owner": owner, "schema_privileges": [], "object_privileges": []}
        for schema, owner in conn.run(_SCHEMAS_SQL)
    }
    for schema, grantee, privilege, grantable in conn.run(_SCHEMA_ACL_SQL):
        schemas[schema]["schema_privileges"].append(
            {"grantee": grantee, "privilege": privilege, "grantable": grantable}
        )
    for schema, kind, grantee, privilege, count in conn.run(_OBJECT_ACL_SQL):
        schemas[schema]["object_privileges"].append(
            {"kind": kind, "grantee": grantee, "privilege": privilege, "objects": count}
        )
    return list(schemas.values())


def default_privileges(conn: Connection) -> list[dict[str, Any]]:
    """`ALTER DEFAULT PRIVILEGES`: for objects created later by `owner` (in `schema`, or anywhere)."""
    kinds = {"r": "table", "S": "sequence", "f": "function", "T": "type", "n": "schema"}
    return [
        {
            "owner": owner,
            "schema": schema,
            "kind": kinds.get(kind, kind),
            "grantee": grantee,
            "privilege": privilege,
        }
        for owner, schema, kind, grantee, privilege in conn.run(_DEFAULT_ACL_SQL)
    ]


def database_privileges(conn: Connection) -> list[dict[str, Any]]:
    return [
        {"grantee": grantee, "privilege": privilege} for grantee, privilege in conn.run(_DATABASE_ACL_SQL)
    ]


def pgaudit_state(conn: Connection) -> dict[str, Any]:
    """Whether pgAudit is loaded and installed, and its settings as this session sees them."""
    # A loaded library's settings are in pg_settings (placeholders of an unloaded one are not);
    # shared_preload_libraries itself is readable only with pg_read_all_settings.
    loaded = bool(conn.run("SELECT 1 FROM pg_settings WHERE name = 'pgaudit.log'"))
    installed = conn.run("SELECT extversion FROM pg_extension WHERE extname = 'pgaudit'")
    settings = {
        name: conn.run("SELECT current_setting(:name, true)", name=name)[0][0] for name in PGAUDIT_SETTINGS
    }
    return {
        "loaded": loaded,
        "extension_version": installed[0][0] if installed else None,
        "settings": settings,
    }


def collect(conn: Connection) -> dict[str, Any]:
    """The whole database section, read in one READ ONLY transaction (a consistent snapshot)."""
    conn.run("START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        database, server_version = conn.run("SELECT current_database(), current_setting('server_version')")[0]
        report = {
            "database": database,
            "server_version": server_version,
            "collected_as": conn.run("SELECT current_user")[0][0],
            "roles": roles(conn),
            "memberships": memberships(conn),
            "database_privileges": database_privileges(conn),
            "schemas": schema_privileges(conn),
            "default_privileges": default_privileges(conn),
            "pgaudit": pgaudit_state(conn),
        }
    finally:
        conn.run("ROLLBACK")
    return report


def secret_metadata(secret_string: str) -> dict[str, Any]:
    """Only `rotatedAt` and the usernames of the application secret; passwords are never kept."""
    try:
        secret = parse_app_secret(secret_string, require_passwords=False)
    except SecretFormatError:
        return {"rotated_at": None, "usernames": {}}
    return {
        "rotated_at": secret.rotated_at,
        "usernames": {MIGRATION_ROLE: secret.migration.username, APPLICATION_ROLE: secret.app_user.username},
    }


def report_line(database: dict[str, Any], *, app_secret: dict[str, Any]) -> str:
    """The line the task prints: the marker and one JSON document."""
    return REPORT_MARKER + json.dumps(
        {"database": database, "app_secret": app_secret}, sort_keys=True, default=str
    )
