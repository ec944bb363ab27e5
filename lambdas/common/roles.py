"""SQL for the ``migration`` / ``app_user`` roles and their privileges, shared by bootstrap and rotation.

Runs as the RDS master user, which is NOT a superuser: it has CREATEROLE and CREATEDB, owns the database
and is a member of ``rds_superuser``. Two consequences shape the SQL below:

* ``ALTER SCHEMA ... OWNER TO migration`` needs the caller to be able to ``SET ROLE migration`` (PostgreSQL
  16+ no longer implies that from CREATEROLE), so the master is granted ``migration`` (with
  ``INHERIT FALSE, SET TRUE`` on 16+, plain membership on 15 where those options do not exist).
* Grants on objects ``migration`` owns are issued *as* ``migration`` (``SET ROLE``), which works whether or
  not the master inherits its privileges.

Identifiers and literals are quoted with pg8000's ``identifier()`` / ``literal()``: utility statements such as
``ALTER ROLE`` cannot take bound parameters. Passwords are sent only as SCRAM verifiers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pg8000.native
from pg8000.native import identifier, literal

from lambdas.common.scram import scram_sha256_verifier

TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT"


@contextmanager
def transaction(conn: pg8000.native.Connection) -> Iterator[pg8000.native.Connection]:
    conn.run("BEGIN")
    try:
        yield conn
    except BaseException:
        conn.run("ROLLBACK")
        raise
    conn.run("COMMIT")


def server_version_num(conn: pg8000.native.Connection) -> int:
    rows = conn.run("SHOW server_version_num")
    return int(rows[0][0])


def role_exists(conn: pg8000.native.Connection, role: str) -> bool:
    return bool(conn.run("SELECT 1 FROM pg_roles WHERE rolname = :role", role=role))


def schema_exists(conn: pg8000.native.Connection, schema: str) -> bool:
    return bool(conn.run("SELECT 1 FROM pg_namespace WHERE nspname = :schema", schema=schema))


def ensure_login_role(conn: pg8000.native.Connection, role: str) -> None:
    """Create ``role`` (LOGIN, no special attributes) or make sure an existing one can log in."""
    if role_exists(conn, role):
        conn.run(f"ALTER ROLE {identifier(role)} WITH LOGIN NOCREATEDB NOCREATEROLE")
    else:
        conn.run(f"CREATE ROLE {identifier(role)} WITH LOGIN NOCREATEDB NOCREATEROLE")


def set_role_password(conn: pg8000.native.Connection, role: str, password: str) -> None:
    """``ALTER ROLE`` with a client-computed SCRAM-SHA-256 verifier: the plaintext never leaves the Lambda."""
    conn.run(f"ALTER ROLE {identifier(role)} WITH PASSWORD {literal(scram_sha256_verifier(password))}")


def grant_membership_for_set_role(conn: pg8000.native.Connection, role: str) -> None:
    """Let the connected (non-superuser) admin ``SET ROLE`` to ``role`` without inheriting its privileges."""
    if server_version_num(conn) >= 160000:
        conn.run(f"GRANT {identifier(role)} TO CURRENT_USER WITH INHERIT FALSE, SET TRUE")
    else:
        conn.run(f"GRANT {identifier(role)} TO CURRENT_USER")


def grant_schema_privileges(
    conn: pg8000.native.Connection,
    *,
    database: str,
    schemas: Sequence[str],
    migration_role: str,
    app_role: str,
) -> None:
    """Idempotently (re)apply the privilege model. Both roles must exist. Call inside a transaction.

    * nobody but the owner creates objects in the database or the public schema;
    * ``migration`` owns every application schema (created if missing) and so can run DDL/DML there;
    * ``app_user`` gets USAGE on the schemas, DML on all their tables and USAGE/SELECT on their sequences,
      now and (through default privileges) for everything ``migration`` creates later; never CREATE.
    """
    if not schemas:
        raise ValueError("at least one schema is required")
    db, mig, app = identifier(database), identifier(migration_role), identifier(app_role)

    grant_membership_for_set_role(conn, migration_role)
    conn.run(f"REVOKE CREATE ON DATABASE {db} FROM PUBLIC")
    conn.run(f"GRANT CONNECT ON DATABASE {db} TO {mig}, {app}")
    if "public" not in schemas and schema_exists(conn, "public"):
        conn.run("REVOKE CREATE ON SCHEMA public FROM PUBLIC")

    for schema in schemas:
        sch = identifier(schema)
        conn.run(f"CREATE SCHEMA IF NOT EXISTS {sch} AUTHORIZATION {mig}")
        conn.run(f"ALTER SCHEMA {sch} OWNER TO {mig}")

    conn.run(f"SET ROLE {mig}")
    for schema in schemas:
        sch = identifier(schema)
        conn.run(f"REVOKE CREATE ON SCHEMA {sch} FROM PUBLIC")
        conn.run(f"REVOKE CREATE ON SCHEMA {sch} FROM {app}")
        conn.run(f"GRANT USAGE ON SCHEMA {sch} TO {app}")
        conn.run(f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {sch} TO {app}")
        conn.run(f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {sch} TO {app}")
        conn.run(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA {sch} "
            f"GRANT {TABLE_PRIVILEGES} ON TABLES TO {app}"
        )
        conn.run(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA {sch} "
            f"GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {app}"
        )
    conn.run("RESET ROLE")
