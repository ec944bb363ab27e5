"""Validation of schema names handed to the Lambdas (custom-resource properties, environment)."""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_SCHEMAS: tuple[str, ...] = ("public",)
MAX_IDENTIFIER_BYTES = 63


def validate_schemas(names: Iterable[object]) -> tuple[str, ...]:
    """Non-empty, de-duplicated (order kept) schema names; rejects system schemas and over-long names."""
    result: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("schema names must be non-empty strings")
        if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            raise ValueError(f"schema name {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
        if name.startswith("pg_") or name == "information_schema":
            raise ValueError(f"schema name {name!r} is reserved")
        if name not in result:
            result.append(name)
    if not result:
        raise ValueError("at least one schema is required")
    return tuple(result)


def parse_schema_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated list (environment variable form); empty or unset means ``DEFAULT_SCHEMAS``."""
    if value is None or not value.strip():
        return DEFAULT_SCHEMAS
    return validate_schemas(part.strip() for part in value.split(","))
