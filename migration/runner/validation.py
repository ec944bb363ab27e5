"""Validation queries (row counts) run as `migration` over verified TLS in a read-only transaction."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contract.query_errors import failure_message

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


@dataclass(frozen=True)
class Validation:
    """What a validate run reports: the counts by query name and the database's Alembic revisions."""

    counts: dict[str, int]
    revisions: list[str]  # `alembic current`: the rows of alembic_version (none before the first migration)


# What `alembic current` reads, inside the same READ ONLY transaction (no Alembic child process, no second
# connection). Absent table: no migration has run yet.
_VERSION_TABLE_EXISTS = "SELECT to_regclass('alembic_version') IS NOT NULL"
_VERSIONS = "SELECT version_num FROM alembic_version ORDER BY version_num"
# A revision id as Alembic writes it (hex by default; custom ids are identifiers). Anything else is not
# reported: the value travels to the execution history and the evidence record.
_REVISION_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def run_validation(
    connect: Callable[[], Connection],
    queries: Sequence[tuple[str, str]],
    *,
    statement_timeout_ms: int = 60_000,
) -> dict[str, int]:
    """Each query's single integer, by name, from one READ ONLY transaction that is rolled back."""
    return validate_database(connect, queries, statement_timeout_ms=statement_timeout_ms).counts


def validate_database(
    connect: Callable[[], Connection],
    queries: Sequence[tuple[str, str]],
    *,
    statement_timeout_ms: int = 60_000,
) -> Validation:
    """The counts and the current Alembic revisions, from one READ ONLY transaction that is rolled back."""
    connection = connect()
    counts: dict[str, int] = {}
    try:
        connection.run("START TRANSACTION READ ONLY")
        connection.run(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
        revisions = _current_revisions(connection)
        for name, sql in queries:
            try:
                rows = connection.run(sql)
            except Exception as exc:
                raise ValidationError(failure_message(name, exc)) from None
            if not rows or len(rows) != 1 or len(rows[0]) != 1 or not isinstance(rows[0][0], int):
                raise ValidationError(f"validation query {name!r} must return exactly one integer")
            counts[name] = int(rows[0][0])
    finally:
        try:
            connection.run("ROLLBACK")
        finally:
            connection.close()
    return Validation(counts=counts, revisions=revisions)


def _current_revisions(connection: Connection) -> list[str]:
    try:
        if not connection.run(_VERSION_TABLE_EXISTS)[0][0]:
            return []
        rows = connection.run(_VERSIONS)
    except Exception as exc:
        raise ValidationError(failure_message("alembic_version", exc)) from None
    revisions = [row[0] for row in rows]
    if not all(isinstance(r, str) and _REVISION_ID.match(r) for r in revisions):
        raise ValidationError("alembic_version holds a value that is not a revision id (not reported)")
    return revisions
