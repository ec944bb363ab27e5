"""`make diff`: the infrastructure change of the working tree against a base revision, offline.

1. Synthesizes the base revision (default `git merge-base HEAD main`) in a temporary git worktree
   that borrows this checkout's `.venv`, `node_modules` and `.build` (Lambda dependency cache)
   through symlinks, and the working tree into `cdk.out/`, both at once. The base's templates are
   then kept in a cache keyed by the base commit and the toolchain (tools/diff_cache.py): the next
   `make diff` on the same base synthesizes only the working tree (`--no-cache`/NO_CACHE=1: ignore it).
2. Runs the pinned CLI's `cdk diff --app cdk.out --exclusively --template <base template> <Env/Stack>`
   for every stack of every environment whose template changed (a stack absent from the base is
   diffed against an empty template and shown as new). No credentials, no AWS calls.
3. Runs the replacement guard (tools/replacement_guard.py) on the two assemblies and on the CLI's
   own "requires replacement" marks, and exits 1 when a stateful resource would be replaced,
   deleted or rebooted (unless listed in --allow / ALLOW_REPLACE).

The full report is also written as Markdown to cdk.out/diff/report.md (the CI posts it on the PR).
With credentials, `npx cdk diff 'Production/*'` still compares against the deployed stacks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tools import diff_cache
from tools.assembly import StackArtifact, stack_artifacts
from tools.cross_stack_guard import cross_stack_findings
from tools.node_runtime import pinned_node_environment
from tools.replacement_guard import Finding, compare_assemblies, parse_cdk_diff, report

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
SHARED_DIRS = (".venv", "node_modules", ".build")  # borrowed by the base worktree, never reinstalled
CLI_ENV = {"CDK_DISABLE_CLI_TELEMETRY": "true", "FORCE_COLOR": "0"}


@dataclass(frozen=True)
class StackDiff:
    display_name: str
    environment: str
    stack: str
    status: str  # new | changed | unchanged | removed
    cli_output: str = ""


def git(*args: str, cwd: Path = REPO_ROOT) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def resolve_base(base: str | None) -> str:
    """The base commit: --base/BASE if given, else the merge-base of HEAD with main (or origin/main)."""
    if base:
        return git("rev-parse", "--verify", f"{base}^{{commit}}")
    for candidate in ("main", "origin/main"):
        try:
            return git("merge-base", "HEAD", candidate)
        except RuntimeError:
            continue
    raise RuntimeError("no `main` or `origin/main` to diff against: pass BASE=<rev>")


def _environment() -> dict[str, str]:
    return {**pinned_node_environment(), **CLI_ENV}


def synth(app_dir: Path, outdir: Path) -> subprocess.Popen[str]:
    """Start `cdk synth '**'` of the app in `app_dir` into `outdir` (the pinned CLI, cdk.json's app)."""
    return subprocess.Popen(
        [str(CDK), "synth", "**", "--quiet", "--output", str(outdir)],
        cwd=app_dir,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(process: subprocess.Popen[str], what: str) -> None:
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"synthesis of {what} failed (exit {process.returncode}):\n{output[-4000:]}")


def add_base_worktree(commit: str, directory: Path) -> None:
    git("worktree", "add", "--detach", "--force", str(directory), commit)
    for name in SHARED_DIRS:
        source = REPO_ROOT / name
        if source.exists() and not (directory / name).exists():
            (directory / name).symlink_to(source, target_is_directory=True)


def remove_worktree(directory: Path) -> None:
    try:
        git("worktree", "remove", "--force", str(directory))
    except RuntimeError:
        shutil.rmtree(directory, ignore_errors=True)
        git("worktree", "prune")


def synthesize(commit: str, output: Path, scratch: Path, *, use_cache: bool = True) -> Path:
    """Synthesize the working tree into `output`; return the base's assembly (cached, or synthesized
    in a temporary worktree at the same time as the working tree and then cached)."""
    inputs = diff_cache.key_inputs(commit)
    cached = diff_cache.lookup(inputs) if use_cache else None
    if cached is not None:
        print(
            f"Synthesizing the working tree (the base {commit[:12]} is cached: {cached.parent})...",
            flush=True,
        )
        _wait(synth(REPO_ROOT, output), "the working tree")
        return cached
    print(f"Synthesizing the base ({commit[:12]}) and the working tree...", flush=True)
    worktree = scratch / "base"
    add_base_worktree(commit, worktree)
    try:
        base_out = scratch / "base.out"
        base_synth, new_synth = synth(worktree, base_out), synth(REPO_ROOT, output)
        _wait(new_synth, "the working tree")
        _wait(base_synth, f"the base {commit[:12]}")
    finally:
        remove_worktree(worktree)
    if not use_cache:
        return base_out
    try:
        return diff_cache.store(inputs, base_out)
    except OSError as error:  # a read-only or full cache folder costs the next diff a synth, not this one
        print(f"warning: the base's templates were not cached ({error})", file=sys.stderr)
        return base_out


def cli_diff(new_assembly: Path, base_template: Path, display_name: str) -> str:
    """The pinned CLI's diff of one stack of the new assembly against a template file (offline)."""
    command = [
        str(CDK), "diff", "--app", str(new_assembly), "--exclusively",
        "--template", str(base_template), display_name,
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=_environment(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"cdk diff {display_name} failed:\n{result.stdout}{result.stderr}")
    return (result.stdout + result.stderr).strip()


def diff_stacks(
    base: dict[str, StackArtifact], new: dict[str, StackArtifact], new_assembly: Path, scratch: Path
) -> list[StackDiff]:
    empty = scratch / "empty.template.json"
    empty.write_text("{}")
    jobs: dict[str, tuple[str, Path]] = {}
    results: list[StackDiff] = []
    for name, artifact in sorted(new.items()):
        if name not in base:
            jobs[name] = ("new", empty)
        elif json.loads(base[name].template_path.read_text()) != artifact.template():
            jobs[name] = ("changed", base[name].template_path)
        else:
            results.append(StackDiff(name, artifact.environment, artifact.stack, "unchanged"))
    for name, artifact in sorted(base.items()):
        if name not in new:
            results.append(StackDiff(name, artifact.environment, artifact.stack, "removed"))
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        outputs = {name: pool.submit(cli_diff, new_assembly, path, name) for name, (_, path) in jobs.items()}
        for name, (status, _) in jobs.items():
            results.append(
                StackDiff(name, new[name].environment, new[name].stack, status, outputs[name].result())
            )
    return sorted(results, key=lambda d: (d.environment, d.stack))


def summary(diffs: Sequence[StackDiff]) -> str:
    lines = []
    for environment in sorted({d.environment for d in diffs}):
        mine = [d for d in diffs if d.environment == environment]
        parts = [
            f"{label}: {', '.join(d.stack for d in mine if d.status == status)}"
            for status, label in (("changed", "changed"), ("new", "new"), ("removed", "removed from the app"))
            if any(d.status == status for d in mine)
        ]
        unchanged = [d.stack for d in mine if d.status == "unchanged"]
        if unchanged:
            parts.append(f"unchanged: {', '.join(unchanged)}")
        lines.append(f"{environment}: " + ("; ".join(parts) or "no stacks"))
    return "\n".join(lines)


def markdown(commit: str, diffs: Sequence[StackDiff], guard_text: str, passed: bool) -> str:
    icon = "✅" if passed else "❌"
    parts = [
        f"## Infrastructure diff against `{commit[:12]}`",
        "",
        f"{icon} **Replacement guard**",
        "",
        "```",
        guard_text,
        "```",
        "",
        "**Stacks per environment**",
        "",
        "```",
        summary(diffs),
        "```",
    ]
    for diff in diffs:
        if diff.cli_output:
            parts += [
                "",
                f"<details><summary>{diff.display_name} ({diff.status})</summary>",
                "",
                "```",
                diff.cli_output,
                "```",
                "</details>",
            ]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Offline infrastructure diff against a base revision.")
    parser.add_argument(
        "--base", default=os.environ.get("BASE") or None, help="base revision (default: merge-base with main)"
    )
    parser.add_argument("--allow", nargs="*", default=(os.environ.get("ALLOW_REPLACE") or "").split(),
                        help="Env/Stack/LogicalId replacements the change intends")  # fmt: skip
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "cdk.out", help="new assembly directory")
    parser.add_argument("--no-cache", action="store_true", default=bool(os.environ.get("NO_CACHE")),
                        help="synthesize the base even if its templates are cached (NO_CACHE=1)")  # fmt: skip
    args = parser.parse_args(argv)

    commit = resolve_base(args.base)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="cdk-diff-"))
    try:
        base_out = synthesize(commit, args.output, scratch, use_cache=not args.no_cache)
        base, new = stack_artifacts(base_out), stack_artifacts(args.output)
        diffs = diff_stacks(base, new, args.output, scratch)

        base_templates = {name: a.template() for name, a in base.items()}
        new_templates = {name: a.template() for name, a in new.items()}
        findings: list[Finding] = compare_assemblies(base_templates, new_templates)
        findings += cross_stack_findings(
            base_templates, new_templates, {name: a.stack_name for name, a in new.items()}
        )
        for diff in diffs:
            findings.extend(parse_cdk_diff(diff.environment, diff.stack, diff.cli_output))
        guard_text, passed = report(findings, args.allow)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    for diff in diffs:
        if diff.cli_output:
            print(f"\n{'=' * 100}\n{diff.display_name} ({diff.status})\n{diff.cli_output}")
    print(f"\n{'=' * 100}\nStacks per environment (base {commit[:12]} -> working tree):\n{summary(diffs)}\n")
    print(guard_text)
    report_dir = args.output / "diff"
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.md").write_text(markdown(commit, diffs, guard_text, passed))
    print(f"\nReport: {report_dir / 'report.md'} ({time.monotonic() - started:.0f} s)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
