"""The one fingerprinting and staging helper of every asset we build at synth.

- `Fingerprint`: a SHA-256 over labels, single files and source trees (file names relative to a
  stable name, then contents), skipping caches and `certs/` folders (certificates are written
  at staging time from their own pinned source, which is fingerprinted instead);
- `copy_tree`: copies a source tree with the same exclusions;
- `stage_once`: builds a directory under `.build/` once per key, atomically (a temporary sibling
  renamed into place), and reuses it afterwards; safe against a concurrent synth.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = REPO_ROOT / ".build"
CONTRACT_DIR = REPO_ROOT / "contract"
_SKIPPED_PARTS = frozenset({"__pycache__", ".mypy_cache", "certs"})
_SKIPPED_SUFFIXES = frozenset({".pyc"})


def source_files(root: Path) -> list[Path]:
    """The files of a source tree, sorted, without caches, compiled files and `certs/`."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not _SKIPPED_PARTS.intersection(path.relative_to(root).parts)
        and path.suffix not in _SKIPPED_SUFFIXES
    )


def copy_tree(source: Path, target: Path) -> None:
    """Copy a source tree (same exclusions as `source_files`) into `target`, merging."""
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns(*_SKIPPED_PARTS, *(f"*{s}" for s in _SKIPPED_SUFFIXES)),
        dirs_exist_ok=True,
    )


class Fingerprint:
    """An order-sensitive SHA-256 of an asset's inputs."""

    def __init__(self, *labels: str) -> None:
        self._digest = hashlib.sha256()
        for label in labels:
            self.add_label(label)

    def add_label(self, label: str) -> Fingerprint:
        self._digest.update(label.encode())
        return self

    def add_file(self, path: Path, *, name: str) -> Fingerprint:
        self._digest.update(name.encode())
        self._digest.update(path.read_bytes())
        return self

    def add_tree(self, root: Path, *, name: str) -> Fingerprint:
        for path in source_files(root):
            self.add_file(path, name=f"{name}/{path.relative_to(root).as_posix()}")
        return self

    def hexdigest(self, length: int | None = None) -> str:
        return self._digest.hexdigest()[:length]


def stage_once(root: Path, key: str, populate: Callable[[Path], None]) -> Path:
    """`root/key`, created by `populate(directory)` the first time and reused afterwards."""
    target = root / key
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="stage-", dir=root))
    try:
        populate(staging)
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():  # a concurrent synth may have staged it first
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
