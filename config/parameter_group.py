"""The database's server parameters (the RDS parameter group): plain data, no aws_cdk import.

`constructs/database.py` puts them into the parameter group; the tests' local PostgreSQL runs with
the same settings (tests/support/postgres.py), so the logging rules are exercised, not only pinned.
"""

from __future__ import annotations

from config.schema import DatabaseConfig


def parameter_group_settings(config: DatabaseConfig) -> dict[str, str]:
    """Server parameters: TLS only, and logs that help operations without carrying PHI or secrets."""
    return {
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": "TLSv1.2",
        "password_encryption": "scram-sha-256",
        # Slow statements go to the `postgresql` log export (RDS has no `slowquery` export for PostgreSQL).
        "log_min_duration_statement": str(config.slow_statement_threshold_ms),
        "log_statement": "ddl",
        # Bind parameter values never reach the log: they may hold PHI.
        "log_parameter_max_length": "0",
        "log_parameter_max_length_on_error": "0",
        # A failing statement's text (with literals) is not logged either.
        "log_min_error_statement": "panic",
        "log_connections": "1",
        "log_disconnections": "1",
        "log_lock_waits": "1",
        "log_temp_files": "0",
        # Sessions idle longer than this are closed by the server; application pools recycle before it
        # (config checks DB_POOL_RECYCLE_SECONDS < idle_session_timeout_seconds). Milliseconds.
        "idle_session_timeout": str(config.idle_session_timeout_seconds * 1000),
        **PGAUDIT_SETTINGS,
    }


# pgAudit (docs/decisions/pgaudit.md). `shared_preload_libraries` is static: an existing instance loads
# pgAudit at its next reboot (README). RDS's default list is pg_stat_statements (Performance Insights' SQL
# statistics use it), so it stays.
PRELOADED_LIBRARIES = ("pg_stat_statements", "pgaudit")
PGAUDIT_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": ",".join(PRELOADED_LIBRARIES),
    # Session audit: role and privilege changes and DDL, by everyone. Never read/write (the application's
    # own traffic) and not misc_set (drivers SET on every connection).
    "pgaudit.log": "role,ddl",
    # Statement text only: bind values may be patient data; catalog reads of clients are noise.
    "pgaudit.log_parameter": "0",
    "pgaudit.log_catalog": "0",
    # One line per relation an audited statement touches (object audit: which patient table).
    "pgaudit.log_relation": "1",
    # Object audit of ad-hoc access by people: statements on relations this role holds privileges on
    # (the bootstrap grants it DML on the application schemas and exempts the application roles).
    "pgaudit.role": "rds_pgaudit",
}
