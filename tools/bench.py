"""`make bench`: synth vs the jsii start-up floor, test-suite wall time, rotation time and bundle size.

Prints a small table; numbers go into the README's Benchmarks section with the machine they came from.
Not timed tests: wall times depend on the machine. The rotation benchmark is tools/bench_rotation.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.assembly import stack_artifacts
from tools.bench_rotation import rotation_seconds
from tools.node_runtime import pinned_node_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV = pinned_node_environment()

FULL_APP = """
import json, sys
import aws_cdk as cdk
from stacks.cdk_app import define_app
from config.environments import ENVIRONMENTS
from tests.conftest import app_context
app = cdk.App(context=app_context(), outdir=sys.argv[1])
define_app(app, ENVIRONMENTS)
app.synth()
"""
TRIVIAL_APP = """
import sys
import aws_cdk as cdk
from aws_cdk import aws_sns as sns
app = cdk.App(outdir=sys.argv[1])
sns.Topic(cdk.Stack(app, "Floor"), "Topic")
app.synth()
"""


def _timed(args: Sequence[str]) -> float:
    started = time.monotonic()
    subprocess.run(list(args), cwd=REPO_ROOT, env=ENV, check=True, capture_output=True)
    return time.monotonic() - started


def synth_seconds(code: str, outdir: Path) -> float:
    return _timed([sys.executable, "-c", code, str(outdir)])


def rotation_bundle_bytes(assembly: Path) -> int:
    data = next(a for name, a in stack_artifacts(assembly).items() if name.endswith("/Data")).template()
    function = next(r for logical_id, r in data["Resources"].items()
                    if r["Type"] == "AWS::Lambda::Function" and logical_id.startswith("ApplicationCredentialsRotationFunction"))  # fmt: skip
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset_dir = assembly / f"asset.{asset_hash}"
    return sum(p.stat().st_size for p in asset_dir.rglob("*") if p.is_file())


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    ram = int(
        next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {ram / 1024 / 1024:.0f} GiB RAM, Python {platform.python_version()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tests", action="store_true", help="do not time the test suite")
    args = parser.parse_args(argv)
    # Both assemblies live only as long as the measurement: nothing is left in /tmp.
    with tempfile.TemporaryDirectory(prefix="cdk-bench-") as scratch:
        floor = synth_seconds(TRIVIAL_APP, Path(scratch) / "floor")
        full = synth_seconds(FULL_APP, Path(scratch) / "full")
        bundle_bytes = rotation_bundle_bytes(Path(scratch) / "full")
    rows = [
        ("trivial app synth (jsii floor)", f"{floor:.1f} s", ""),
        (
            "full app synth (2 envs, 4 nag packs, bundling)",
            f"{full:.1f} s",
            f"{full / floor:.2f}x floor (target <= 1.5x)",
        ),
        (
            "rotation Lambda bundle",
            f"{bundle_bytes / 1024 / 1024:.1f} MiB",
            "unzipped asset dir",
        ),
    ]
    rows.append(
        (
            "rotation, 4 steps x 2 users (median of 5)",
            f"{rotation_seconds():.2f} s",
            "target <= 1.5 s, in-process",
        )
    )
    if not args.skip_tests:
        suite = _timed([str(REPO_ROOT / ".venv" / "bin" / "pytest"), "-q"])
        rows.append(("test suite (pytest -q)", f"{suite:.0f} s", "target <= 90 s warm"))
    print(f"Machine: {machine()}")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")
    print(json.dumps({r[0]: r[1] for r in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
