"""Alembic as a child process: its output streamed line by line (secrets redacted), its exit status kept."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from typing import TextIO

from migration.runner.revision import REVISION_RULE, is_valid_revision

ACTIONS = ("upgrade", "downgrade", "current")
REDACTED = "***"


class RevisionError(ValueError):
    """The target revision is not in the revision grammar (migration/runner/revision.py)."""


def check_revision(revision: object) -> str:
    """`revision` if the grammar allows it; never anything option-like (`--help`, `-h`, `--sql`)."""
    if not is_valid_revision(revision):
        raise RevisionError(f"revision {str(revision)[:70]!r} is not allowed: {REVISION_RULE}")
    assert isinstance(revision, str)
    return revision


def alembic_argv(python: str, config_path: str, action: str, revision: str | None) -> list[str]:
    """`python -m alembic -c <config> <action> [revision]`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown Alembic action {action!r}: one of {ACTIONS}")
    argv = [python, "-m", "alembic", "-c", config_path, action]
    if action != "current":
        if revision is None:
            raise RevisionError(f"{action} needs a target revision")
        argv.append(check_revision(revision))
    return argv


def redact(line: str, fragments: Iterable[str]) -> str:
    for fragment in fragments:
        if fragment:
            line = line.replace(fragment, REDACTED)
    return line


def run_streaming(
    argv: Sequence[str], *, env: dict[str, str], out: TextIO, fragments: Iterable[str] = ()
) -> int:
    """Run `argv`, copying its stdout and stderr (merged) to `out` as lines arrive; return its exit status."""
    secrets = tuple(fragments)
    with subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            out.write(redact(line, secrets))
            out.flush()
        return process.wait()
