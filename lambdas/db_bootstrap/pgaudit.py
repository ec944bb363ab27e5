"""pgAudit in the database, set up by the bootstrap as the RDS master user (issue 16).

The parameter group loads the library (`shared_preload_libraries`) and configures session auditing
(`pgaudit.log = 'role,ddl'`, no parameters, no catalog) and object auditing through the role named
by `pgaudit.role` (RDS's convention: `rds_pgaudit`). This module does the part only SQL can do:

* `CREATE EXTENSION IF NOT EXISTS pgaudit` (RDS lets its master user create it). Skipped, and
  reported, while the library is not loaded yet: an existing instance loads it only after the
  reboot its parameter group change waits for. The next bootstrap run creates it.
* The audit role `rds_pgaudit` (NOLOGIN, no members). Object auditing logs a statement when this
  role holds a privilege on a relation it touches; it gets SELECT/INSERT/UPDATE/DELETE on the
  application schemas' tables (now and, through default privileges, those `migration` creates
  later), so every ad-hoc read or write of patient tables is logged, by statement and relation,
  never by value (`pgaudit.log_parameter = 0`).
* The application and migration roles are exempt from object auditing (`ALTER ROLE ... SET
  pgaudit.role = ''`): their DML is the application's own traffic, never `read`/`write` audited.
  Session auditing of `role` and `ddl` still covers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pg8000.native
from pg8000.native import identifier

from contract.names import AUDIT_ROLE

EXTENSION = "pgaudit"
AUDITED_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


@dataclass(frozen=True)
class AuditSetup:
    """What `ensure_pgaudit` found and did: nothing here is secret."""

    library_loaded: bool
    extension_installed: bool


def library_loaded(conn: pg8000.native.Connection) -> bool:
    """Whether the running server preloaded pgAudit (a parameter group change needs a reboot first)."""
    # A preloaded library's settings are in pg_settings; the placeholders of an unloaded one are not.
    # (`SHOW shared_preload_libraries` needs pg_read_all_settings.)
    return bool(conn.run("SELECT 1 FROM pg_settings WHERE name = 'pgaudit.log'"))


def ensure_pgaudit(
    conn: pg8000.native.Connection,
    *,
    schemas: Sequence[str],
    migration_role: str,
    exempt_roles: Sequence[str],
) -> AuditSetup:
    """Idempotently create the extension (when loaded), the audit role and its object-audit grants.

    Call as the master inside the bootstrap's transaction, after the privilege model is applied
    (``migration`` owns the schemas and the master may ``SET ROLE migration``).
    """
    loaded = library_loaded(conn)
    if loaded:
        conn.run(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
    if not conn.run("SELECT 1 FROM pg_roles WHERE rolname = :role", role=AUDIT_ROLE):
        conn.run(f"CREATE ROLE {identifier(AUDIT_ROLE)} NOLOGIN")
    audit, mig = identifier(AUDIT_ROLE), identifier(migration_role)
    conn.run(f"SET ROLE {mig}")
    for schema in schemas:
        sch = identifier(schema)
        conn.run(f"GRANT {AUDITED_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {sch} TO {audit}")
        conn.run(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA {sch} "
            f"GRANT {AUDITED_TABLE_PRIVILEGES} ON TABLES TO {audit}"
        )
    conn.run("RESET ROLE")
    if loaded:
        # pgaudit.role exists only once the library is loaded; until then there is nothing to exempt from.
        for role in exempt_roles:
            conn.run(f"ALTER ROLE {identifier(role)} SET pgaudit.role = ''")
    installed = bool(conn.run("SELECT 1 FROM pg_extension WHERE extname = :name", name=EXTENSION))
    return AuditSetup(library_loaded=loaded, extension_installed=installed)
