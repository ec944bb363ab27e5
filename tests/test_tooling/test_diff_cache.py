"""`make diff`'s base cache (tools/diff_cache.py): a warm diff synthesizes only the working tree.

No real synth here: `tools.diff.synth` is replaced by a fake that writes a small cloud assembly and
records which app it synthesized, so these tests cost milliseconds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tools import diff, diff_cache

COMMIT = "a" * 40


class _FinishedSynth:
    returncode = 0

    def communicate(self) -> tuple[str, None]:
        return "", None


def _write_assembly(outdir: Path, marker: str) -> None:
    stage = outdir / "assembly-Staging"
    stage.mkdir(parents=True, exist_ok=True)
    (outdir / "manifest.json").write_text(
        json.dumps({"artifacts": {"assembly-Staging": {"type": "cdk:cloud-assembly",
                                                       "properties": {"directoryName": "assembly-Staging"}}}})
    )  # fmt: skip
    (stage / "manifest.json").write_text(
        json.dumps({"artifacts": {"StagingData": {"type": "aws:cloudformation:stack", "displayName": "Staging/Data",
                                                  "properties": {"templateFile": "StagingData.template.json"}}}})
    )  # fmt: skip
    (stage / "StagingData.template.json").write_text(json.dumps({"Description": marker}))
    asset = outdir / "asset.0123"
    asset.mkdir(exist_ok=True)
    (asset / "big.json").write_text("{}")  # an asset: never cached


@pytest.fixture
def fake_synth(monkeypatch, tmp_path):
    """Every synth the diff starts, as the directory of the app it synthesized (base worktree or repo)."""
    synthesized: list[Path] = []

    def synth(app_dir: Path, outdir: Path) -> _FinishedSynth:
        synthesized.append(app_dir)
        _write_assembly(outdir, marker="base" if app_dir != diff.REPO_ROOT else "working tree")
        return _FinishedSynth()

    monkeypatch.setattr(diff, "synth", synth)
    monkeypatch.setattr(diff, "add_base_worktree", lambda commit, directory: directory.mkdir(parents=True))
    monkeypatch.setattr(diff, "remove_worktree", lambda directory: None)
    monkeypatch.setenv("DIFF_CACHE_DIR", str(tmp_path / "cache"))
    return synthesized


def _run(tmp_path: Path, name: str) -> Path:
    scratch = tmp_path / name
    scratch.mkdir()
    return diff.synthesize(COMMIT, tmp_path / f"{name}.out", scratch)


def _base_synths(synthesized: list[Path]) -> int:
    return sum(1 for app_dir in synthesized if app_dir != diff.REPO_ROOT)


def test_a_second_diff_on_the_same_base_synthesizes_only_the_working_tree(fake_synth, tmp_path):
    first = _run(tmp_path, "first")
    assert _base_synths(fake_synth) == 1
    second = _run(tmp_path, "second")
    assert _base_synths(fake_synth) == 1, "the warm diff synthesized the base again"
    assert len(fake_synth) == 3, "the working tree is synthesized every time"
    assert json.loads((second / "assembly-Staging" / "StagingData.template.json").read_text()) == {
        "Description": "base"
    }
    assert first == second
    assert not list(second.glob("asset.*")), "Lambda assets are not cached: the diff reads JSON only"


def test_a_changed_toolchain_is_a_miss(fake_synth, tmp_path, monkeypatch):
    _run(tmp_path, "first")
    original = diff_cache.toolchain
    monkeypatch.setattr(diff_cache, "toolchain", lambda *a: {**original(*a), "cdk-cli": "9.9.9"})
    _run(tmp_path, "second")
    assert _base_synths(fake_synth) == 2


def test_a_changed_base_commit_is_a_miss(fake_synth, tmp_path):
    _run(tmp_path, "first")
    scratch = tmp_path / "other"
    scratch.mkdir()
    diff.synthesize("b" * 40, tmp_path / "other.out", scratch)
    assert _base_synths(fake_synth) == 2


def test_no_cache_synthesizes_the_base(fake_synth, tmp_path):
    _run(tmp_path, "first")
    scratch = tmp_path / "again"
    scratch.mkdir()
    diff.synthesize(COMMIT, tmp_path / "again.out", scratch, use_cache=False)
    assert _base_synths(fake_synth) == 2


@pytest.mark.parametrize("damage", ["altered template", "missing template", "extra file", "no entry.json"])
def test_a_damaged_entry_is_a_miss_and_is_removed(fake_synth, tmp_path, damage):
    cached = _run(tmp_path, "first")
    template = cached / "assembly-Staging" / "StagingData.template.json"
    if damage == "altered template":
        template.write_text(json.dumps({"Description": "tampered"}))
    elif damage == "missing template":
        template.unlink()
    elif damage == "extra file":
        (cached / "assembly-Staging" / "Other.template.json").write_text("{}")
    else:
        (cached.parent / diff_cache.ENTRY_FILE).unlink()
    assert diff_cache.lookup(diff_cache.key_inputs(COMMIT)) is None
    assert not cached.parent.exists()
    again = _run(tmp_path, "second")
    assert _base_synths(fake_synth) == 2
    assert json.loads((again / "assembly-Staging" / "StagingData.template.json").read_text()) == {
        "Description": "base"
    }


def test_a_failed_base_synth_is_not_cached(fake_synth, tmp_path, monkeypatch):
    class _FailedSynth(_FinishedSynth):
        returncode = 1

    monkeypatch.setattr(diff, "synth", lambda app_dir, outdir: _FailedSynth())
    with pytest.raises(RuntimeError, match="synthesis of"):
        _run(tmp_path, "first")
    assert not list(diff_cache.cache_root().glob("*/entry.json"))


def test_an_unwritable_cache_does_not_fail_the_diff(fake_synth, tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("DIFF_CACHE_DIR", str(blocked))
    base = _run(tmp_path, "first")
    assert json.loads((base / "assembly-Staging" / "StagingData.template.json").read_text()) == {
        "Description": "base"
    }
    assert "were not cached" in capsys.readouterr().err


def test_the_key_covers_lock_files_and_the_pinned_cli(tmp_path):
    for name in diff_cache.TOOLCHAIN_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("v1")
    before = diff_cache.cache_key(diff_cache.key_inputs(COMMIT, tmp_path))
    assert before == diff_cache.cache_key(diff_cache.key_inputs(COMMIT, tmp_path)), "the key is not stable"
    for name in diff_cache.TOOLCHAIN_FILES:
        (tmp_path / name).write_text("v2")
        assert diff_cache.cache_key(diff_cache.key_inputs(COMMIT, tmp_path)) != before, name
        (tmp_path / name).write_text("v1")
    cli = tmp_path / "node_modules" / "aws-cdk" / "package.json"
    cli.parent.mkdir(parents=True)
    cli.write_text(json.dumps({"version": "2.1148.1"}))
    assert diff_cache.cache_key(diff_cache.key_inputs(COMMIT, tmp_path)) != before


def test_the_key_reads_this_checkouts_toolchain():
    inputs = diff_cache.key_inputs(COMMIT)
    cli = subprocess.run(
        ["node_modules/.bin/cdk", "--version"], cwd=diff.REPO_ROOT, capture_output=True, text=True, check=True,
        env=diff._environment(),
    )  # fmt: skip
    assert cli.stdout.split()[0] == inputs["cdk-cli"]
    assert inputs["python:aws-cdk-lib"] not in ("", "absent")
    assert inputs["node"] not in ("", "absent")
