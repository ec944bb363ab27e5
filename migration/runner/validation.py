"""Validation queries (row counts) run as `migration` over verified TLS in a read-only transaction."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

# The ops guide's "targeted row counts for high-risk tables".
DEFAULT_QUERIES: tuple[tuple[str, str], ...] = (
    ("encounters", "SELECT COUNT(*) FROM encounters"),
    ("finalized_notes", "SELECT COUNT(*) FROM notes WHERE status = 'finalized'"),
    (
        "recent_suggestions",
        "SELECT COUNT(*) FROM suggestions WHERE created_at >= current_date - INTERVAL '1 day'",
    ),
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ValidationError(RuntimeError):
    """A validation query failed or did not return one integer."""


class Connection(Protocol):
    def run(self, sql: str, **params: Any) -> Any: ...

    def close(self) -> None: ...


def parse_query(text: str) -> tuple[str, str]:
    """`name=SELECT ...` into (name, sql)."""
    name, separator, sql = text.partition("=")
    name, sql = name.strip(), sql.strip()
    if not separator or not _NAME.match(name) or not sql:
        raise ValueError(f"validation query {text[:40]!r}... must be 'name=SELECT ...' with a lowercase name")
    if not sql.lower().startswith(("select", "with")) or ";" in sql:
        raise ValueError(f"validation query {name!r} must be one SELECT statement without ';'")
    return name, sql


def run_validation(
    connect: Callable[[], Connection],
    queries: Sequence[tuple[str, str]],
    *,
    statement_timeout_ms: int = 60_000,
) -> dict[str, int]:
    """Each query's single integer, by name, from one READ ONLY transaction that is rolled back."""
    connection = connect()
    counts: dict[str, int] = {}
    try:
        connection.run("START TRANSACTION READ ONLY")
        connection.run(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
        for name, sql in queries:
            try:
                rows = connection.run(sql)
            except Exception as exc:
                raise ValidationError(f"validation query {name!r} failed: {_error_message(exc)}") from None
            if not rows or len(rows) != 1 or len(rows[0]) != 1 or not isinstance(rows[0][0], int):
                raise ValidationError(f"validation query {name!r} must return exactly one integer")
            counts[name] = int(rows[0][0])
    finally:
        try:
            connection.run("ROLLBACK")
        finally:
            connection.close()
    return counts


def _error_message(exc: Exception) -> str:
    """The server's message (pg8000 puts a dict of fields first); the SQL text is ours, never PHI."""
    first = exc.args[0] if exc.args else exc
    if isinstance(first, dict):
        return f"{first.get('C', '')} {first.get('M', '')}".strip()
    return type(exc).__name__
