"""The runner's side of the strict revision grammar (issue 13, item 2).

The same grammar as `contract/revision.py` (branch runbook-sfn: ops and the runbook's JSONata check);
once that module is in main and the contract is copied into the image, this module becomes an import
of it (tests/test_migration/test_runner_revision.py checks that the two agree until then).

Accepted (lower case, at most 64 characters): `head`, `heads`, `base`; an Alembic revision id or a
unique prefix of one (4-40 hex digits); a relative step `+N`/`-N` (N = 1..999); `<branch>@<target>`.
Everything else is refused, in particular anything starting with `-` other than a relative step
(`--help`, `-h`, `--sql`): Alembic would read it as an option (`--help` prints help and exits 0).
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

_REVISION = re.compile(REVISION_PATTERN)
_ONLY_REVISION_CHARACTERS = re.compile(f"{REVISION_CHARACTERS}+")


def is_valid_revision(revision: object) -> bool:
    return (
        isinstance(revision, str)
        and 1 <= len(revision) <= MAX_REVISION_LENGTH
        and _ONLY_REVISION_CHARACTERS.fullmatch(revision) is not None
        and _REVISION.fullmatch(revision) is not None
    )
