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
    }
