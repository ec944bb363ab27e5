"""`make bench`: the full synth against the CDK start-up floor, `make diff` cold and warm, the test suite,
the rotation and the rotation bundle.

- The floor is a one-topic CDK app synthesized with the same context as the real app (cdk.json's feature
  flags and cdk.context.json, as `cdk synth` passes them) and the same pinned Node: what any app of this
  project pays before its first resource (Python and jsii start-up, loading aws-cdk-lib, the built-in
  CloudFormation validation engine the feature flags turn on).
- Floor and full synth alternate, `--runs` times each, each in a fresh process into a fresh directory
  (as `cdk synth` does), so load from other users of the machine hits both alike. Reported: the median
  wall time of each, their ratio, and the median CPU time (user + system of the process tree), which
  other users' load disturbs less.
- `make diff` cold (empty base cache: two synths at once) then warm (cached base: one synth), into a
  scratch output and a scratch cache, against the usual base (merge-base with main).
- With `--baseline REV`, the full synth of REV too (in a temporary worktree, in the same rounds):
  before and after a change against the same floor.
- The test suite (`pytest -q`) unless `--skip-tests`; the README says which.

Prints a table and, last, one JSON line with every number; the README's Benchmarks table comes from it
with the machine line. Wall times depend on the machine and its load: these are not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.assembly import stack_artifacts
from tools.node_runtime import pinned_node_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5

# Both apps get the context `cdk synth` gives the real app (tests/support/synth.py: app_context).
FULL_APP = """
import sys
import aws_cdk as cdk
from config.environments import DEPLOYMENT, ENVIRONMENTS
from stacks.cdk_app import define_app
from tests.support.synth import app_context, synthesize_under_gate
app = cdk.App(context=app_context(), outdir=sys.argv[1])
define_app(app, ENVIRONMENTS, DEPLOYMENT)
sys.exit(1 if synthesize_under_gate(app) else 0)
"""
FLOOR_APP = """
import sys
import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from tests.support.synth import app_context
app = cdk.App(context=app_context(), outdir=sys.argv[1])
sns.Topic(cdk.Stack(app, "Floor"), "Topic")
app.synth()
"""


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float  # user + system seconds of the process and its children (jsii's Node processes)


def timed(args: Sequence[str], env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> Sample:
    """Run a command to completion; its wall time and the CPU time of its whole process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(list(args), cwd=cwd, env=env or pinned_node_environment(), capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)[:80]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return Sample(wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))


def synth_sample(code: str, outdir: Path, app_dir: Path = REPO_ROOT) -> Sample:
    return timed([sys.executable, "-c", code, str(outdir)], cwd=app_dir)


def median(samples: Sequence[Sample]) -> Sample:
    return Sample(statistics.median(s.wall for s in samples), statistics.median(s.cpu for s in samples))


def measure_synth(
    runs: int,
    scratch: Path,
    run: Callable[[str, Path, Path], Sample] = synth_sample,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Floor and full synth, alternating, `runs` times each; medians and ratios. With `baseline` (a
    checkout of another revision), its full synth too, in the same rounds: before/after in one run."""
    samples: dict[str, list[Sample]] = {"floor": [], "full": [], "baseline": []}
    for index in range(runs):
        samples["floor"].append(run(FLOOR_APP, scratch / f"floor-{index}", REPO_ROOT))
        if baseline is not None:
            samples["baseline"].append(run(FULL_APP, scratch / f"baseline-{index}", baseline))
        samples["full"].append(run(FULL_APP, scratch / f"full-{index}", REPO_ROOT))
    floor, full = median(samples["floor"]), median(samples["full"])
    results: dict[str, Any] = {
        "runs": runs,
        "floor_wall_s": floor.wall,
        "floor_cpu_s": floor.cpu,
        "full_wall_s": full.wall,
        "full_cpu_s": full.cpu,
        "ratio_wall": full.wall / floor.wall,
        "ratio_cpu": full.cpu / floor.cpu,
        "floor_walls_s": [s.wall for s in samples["floor"]],
        "full_walls_s": [s.wall for s in samples["full"]],
    }
    if samples["baseline"]:
        before = median(samples["baseline"])
        results.update(
            baseline_wall_s=before.wall,
            baseline_cpu_s=before.cpu,
            baseline_ratio_wall=before.wall / floor.wall,
            baseline_ratio_cpu=before.cpu / floor.cpu,
            baseline_walls_s=[s.wall for s in samples["baseline"]],
        )
    return results


def measure_diff(scratch: Path) -> dict[str, float]:
    """`make diff` with an empty base cache (cold), then again with the cache it filled (warm)."""
    env = {**pinned_node_environment(), "DIFF_CACHE_DIR": str(scratch / "diff-cache")}
    command = [sys.executable, "-m", "tools.diff", "--output", str(scratch / "diff.out")]
    cold = timed(command, env)
    warm = timed(command, env)
    return {"diff_cold_s": cold.wall, "diff_warm_s": warm.wall}


def rotation_bundle_bytes(assembly: Path) -> int:
    data = next(a for name, a in stack_artifacts(assembly).items() if name.endswith("/Data")).template()
    function = next(r for logical_id, r in data["Resources"].items()
                    if r["Type"] == "AWS::Lambda::Function" and logical_id.startswith("ApplicationCredentialsRotationFunction"))  # fmt: skip
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset_dir = assembly / f"asset.{asset_hash}"
    return sum(p.stat().st_size for p in asset_dir.rglob("*") if p.is_file())


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), platform.processor())  # fmt: skip
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    ram_kib = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{ram_kib / 1024 / 1024:.0f} GiB",
        "python": platform.python_version(),
        "load_average": " ".join(f"{load:.1f}" for load in os.getloadavg()),
    }


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The table: what, result, note/target."""
    table = [
        (
            "floor: one-topic app synth, same context (median)",
            f"{results['floor_wall_s']:.1f} s",
            f"CPU {results['floor_cpu_s']:.1f} s",
        ),
        (
            f"full app synth (median of {results['runs']})",
            f"{results['full_wall_s']:.1f} s",
            f"CPU {results['full_cpu_s']:.1f} s",
        ),
        (
            "full / floor",
            f"{results['ratio_wall']:.2f}x",
            f"CPU {results['ratio_cpu']:.2f}x; target <= {TARGET_RATIO}x "
            f"({'met' if results['ratio_wall'] <= TARGET_RATIO else 'missed'})",
        ),
    ]
    if "baseline_wall_s" in results:
        table.insert(
            1,
            (
                f"full app synth at {results['baseline']} (median)",
                f"{results['baseline_wall_s']:.1f} s",
                f"CPU {results['baseline_cpu_s']:.1f} s; {results['baseline_ratio_wall']:.2f}x floor "
                f"(CPU {results['baseline_ratio_cpu']:.2f}x)",
            ),
        )
    if "diff_cold_s" in results:
        table.append(
            ("make diff, cold (base not cached)", f"{results['diff_cold_s']:.1f} s", "two synths at once")
        )
        table.append(("make diff, warm (base cached)", f"{results['diff_warm_s']:.1f} s", "one synth"))
    if "rotation_bundle_mib" in results:
        table.append(
            ("rotation Lambda bundle", f"{results['rotation_bundle_mib']:.1f} MiB", "unzipped asset dir")
        )
    if "rotation_s" in results:
        table.append(
            ("rotation, 4 steps x 2 users (median of 5)", f"{results['rotation_s']:.2f} s", "target <= 1.5 s")
        )
    if "test_suite_s" in results:
        table.append(
            ("test suite (pytest -q)", f"{results['test_suite_s']:.0f} s", results["test_suite_outcome"])
        )
    return table


def render(results: dict[str, Any]) -> str:
    host = results["machine"]
    lines = [
        f"Machine: {host['nproc']} CPUs ({host['cpu']}), {host['memory']} RAM, Python {host['python']}, "
        f"load average at start {host['load_average']}"
    ]
    table = rows(results)
    width = max(len(name) for name, _, _ in table)
    lines += [f"{name:<{width}}  {value:>9}  {note}" for name, value, note in table]
    lines.append(json.dumps(results))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=5, help="synths of the floor and of the full app (median)"
    )
    parser.add_argument(
        "--skip-tests", action="store_true", help="do not time the test suite (it takes minutes)"
    )
    parser.add_argument("--baseline", help="also time the full synth of this revision (before/after)")
    parser.add_argument("--skip-diff", action="store_true", help="do not time `make diff` cold and warm")
    parser.add_argument(
        "--skip-rotation", action="store_true", help="do not time the rotation (needs PostgreSQL)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    results: dict[str, Any] = {"machine": machine()}
    # Assemblies and caches live only as long as the measurement: nothing is left in /tmp.
    with tempfile.TemporaryDirectory(prefix="cdk-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        if args.baseline:
            from tools.diff import add_base_worktree, remove_worktree, resolve_base

            commit = resolve_base(args.baseline)
            results["baseline"] = f"{args.baseline} ({commit[:12]})"
            add_base_worktree(commit, scratch / "baseline")
            try:
                results.update(measure_synth(args.runs, scratch, baseline=scratch / "baseline"))
            finally:
                remove_worktree(scratch / "baseline")
        else:
            results.update(measure_synth(args.runs, scratch))
        results["rotation_bundle_mib"] = rotation_bundle_bytes(scratch / "full-0") / 1024 / 1024
        if not args.skip_diff:
            results.update(measure_diff(scratch))
    if not args.skip_rotation:
        from tools.bench_rotation import rotation_seconds

        results["rotation_s"] = rotation_seconds()
    if not args.skip_tests:
        started = time.monotonic()
        suite = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "pytest"), "-q"], cwd=REPO_ROOT, env=pinned_node_environment(), capture_output=True, check=False)  # fmt: skip
        results["test_suite_s"] = time.monotonic() - started
        results["test_suite_outcome"] = (
            "passed" if suite.returncode == 0 else f"FAILED (exit {suite.returncode})"
        )
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
