"""The Lambda bundler links the cached dependencies into the asset instead of copying them (synth speed,
docs/performance.md), and the asset is the same as a copy would be: same files, bytes and modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from assets import lambda_bundle


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def dependencies() -> Path:
    return lambda_bundle.ensure_dependencies()


def _bundle(output: Path) -> None:
    bundler = lambda_bundle._LocalBundler(function_package="secret_rotation", region="us-east-1")
    assert bundler.try_bundle(str(output))


def test_dependencies_are_hard_links_of_the_cache(tmp_path, dependencies):
    _bundle(tmp_path / "out")
    cached = sorted(p for p in dependencies.rglob("*") if p.is_file())
    assert cached, "the dependency cache is empty"
    for source in cached:
        linked = tmp_path / "out" / source.relative_to(dependencies)
        assert os.path.samefile(source, linked), f"{linked} is a copy, not a link"


def test_across_filesystems_it_copies_and_the_asset_is_the_same(tmp_path, monkeypatch, dependencies):
    _bundle(tmp_path / "linked")

    def cross_device(source: str, target: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(lambda_bundle.os, "link", cross_device)
    _bundle(tmp_path / "copied")
    copied = tmp_path / "copied"
    some_dependency = next(p for p in dependencies.rglob("*.py"))
    assert not os.path.samefile(some_dependency, copied / some_dependency.relative_to(dependencies))
    assert _tree(tmp_path / "linked") == _tree(copied)
