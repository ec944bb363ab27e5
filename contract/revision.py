"""The grammar of a migration target revision: written once, checked by ops, the runbook and the runner.

Accepted (lower case, at most 64 characters):
- `head`, `heads`, `base`;
- an Alembic revision id or a unique prefix of one: 4-40 hex digits (`ae1027a6acf`);
- a relative step: `+N` or `-N`, N = 1..999 (`-1` is the rollback default);
- a branch-qualified target: `<label>@head`, `<label>@base`, `<label>@<id>`, `<label>@+N`/`-N`,
  and `<id>@head`, with a branch label of a lower-case letter then letters, digits, `_` (at most 32).

Everything else is refused, in particular anything starting with `-` that is not a relative step
(`--help`, `-h`, `--sql`): the runner passes the revision to Alembic's command line, where an
option-like value would change what Alembic does (`--help` prints help and exits 0, so a runbook
would report "migrated" with nothing migrated).

A stricter rule, `is_exact_revision`, holds in an environment that requires a revision to have been
applied elsewhere first (production, config `migration.require_applied_in`): only a full Alembic
revision id (12-40 hex digits; Alembic generates 12), nothing symbolic (`head`, `heads`, `base`),
relative or branch-qualified, and no prefix: the staging record is looked up by the exact id.

`REVISION_PATTERN` uses only syntax that Python's `re`, JavaScript's RegExp (AWS's JSONata) and
jsonata-python read the same way; `REVISION_CHARACTERS` (no whitespace, no newline) closes the gap
between Python's `$` (which also matches before a final newline) and JavaScript's.
"""

from __future__ import annotations

import re

MAX_REVISION_LENGTH = 64
_TARGET = r"(head|base|[0-9a-f]{4,40}|[+-][1-9][0-9]{0,2})"
_LABEL = r"([a-z][a-z0-9_]{0,31}|[0-9a-f]{4,40})"
REVISION_PATTERN = rf"^(heads|{_TARGET}|{_LABEL}@{_TARGET})$"
REVISION_CHARACTERS = r"[a-z0-9_@+-]"
REVISION_RULE = (
    "head, heads, base, an Alembic revision id (4-40 hex digits), +N/-N, or <branch>@<target>; "
    f"lower case, at most {MAX_REVISION_LENGTH} characters"
)

EXACT_REVISION_PATTERN = r"^[0-9a-f]{12,40}$"
EXACT_REVISION_RULE = (
    "a full Alembic revision id (12-40 lower-case hex digits, as `alembic history` prints it); "
    "no head, heads, base, +N/-N, branch@target or prefix"
)

_REVISION = re.compile(REVISION_PATTERN)
_EXACT_REVISION = re.compile(EXACT_REVISION_PATTERN)
_ONLY_REVISION_CHARACTERS = re.compile(f"{REVISION_CHARACTERS}+")


class InvalidRevisionError(ValueError):
    """Not a target revision of the grammar above."""


def is_valid_revision(revision: object) -> bool:
    return (
        isinstance(revision, str)
        and 1 <= len(revision) <= MAX_REVISION_LENGTH
        and _ONLY_REVISION_CHARACTERS.fullmatch(revision) is not None
        and _REVISION.fullmatch(revision) is not None
    )


def check_revision(revision: object) -> str:
    """`revision` if it is valid, else InvalidRevisionError naming the rule (the value is shortened)."""
    if not is_valid_revision(revision):
        raise InvalidRevisionError(f"revision {str(revision)[:70]!r} is not allowed: {REVISION_RULE}")
    assert isinstance(revision, str)
    return revision


def is_exact_revision(revision: object) -> bool:
    """The stricter rule: a full revision id only (see the module docstring)."""
    return is_valid_revision(revision) and _EXACT_REVISION.fullmatch(str(revision)) is not None


def check_exact_revision(revision: object) -> str:
    """`revision` if it is a full revision id, else InvalidRevisionError naming the stricter rule."""
    if not is_exact_revision(revision):
        raise InvalidRevisionError(
            f"revision {str(revision)[:70]!r} is not allowed here: {EXACT_REVISION_RULE}"
        )
    assert isinstance(revision, str)
    return revision


def jsonata_exact_revision_check(value: str) -> str:
    """A JSONata boolean expression: `value` is a full revision id (implies `jsonata_revision_check`)."""
    return f"({jsonata_revision_check(value)} and $contains({value}, /{EXACT_REVISION_PATTERN}/))"


def jsonata_revision_check(value: str) -> str:
    """A JSONata boolean expression: `value` (an expression) is a valid revision."""
    return (
        f'($type({value}) = "string" and $length({value}) >= 1 and $length({value}) <= {MAX_REVISION_LENGTH} '
        f'and $length($replace({value}, /{REVISION_CHARACTERS}/, "")) = 0 '
        f"and $contains({value}, /{REVISION_PATTERN}/))"
    )
