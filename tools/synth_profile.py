"""Where the synth time goes: phase timings and jsii round trips of one synth, in this process.

Run `python -m tools.synth_profile [--floor] [--cprofile FILE] [--stages Staging,Production]` (make
exports the pinned Node). It builds the app exactly as app.py does (cdk.json's context, every Stage, the
four cdk-nag packs) and prints, as JSON, the wall time of each phase:

- `import`: importing aws_cdk and cdk_nag, which starts the jsii Node process and loads the libraries;
- `construct`: building the construct tree in Python (every construct is a jsii `create`, every
  property read or method call a round trip to Node);
- `synth`: `app.synth()`, which runs in Node (prepare, aspects, validation plugins, templates, assets)
  and calls back into Python only for Python-implemented interfaces;
- `exit`: stopping the Node process;

and the jsii requests per kind (`create`, `invoke`, `get`, ...) and the callbacks from Node, per phase.
With `--floor` it profiles the one-topic app bench.py uses as the floor, with the same context.
The numbers are docs/performance.md's evidence.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.node_runtime import pinned_node_environment


class _RoundTrips:
    """Counts every request Python sends to the jsii kernel, and the callbacks Node makes into Python."""

    def __init__(self) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        self.callbacks: collections.Counter[str] = collections.Counter()

    def install(self) -> None:
        from jsii._kernel import providers
        from jsii._kernel.providers import process

        counter = self
        original_send = process._NodeProcess.send

        def send(node: Any, request: Any, response_type: Any) -> Any:
            counter.requests[type(request).__name__.removesuffix("Request")] += 1
            return original_send(node, request, response_type)

        setattr(process._NodeProcess, "send", send)  # noqa: B010 - a counting wrapper, for profiling only

        import jsii._kernel as kernel

        original_callback = kernel._handle_callback

        def handle_callback(kernel_: Any, callback: Any) -> Any:
            counter.callbacks[str(callback.cookie)] += 1
            return original_callback(kernel_, callback)

        setattr(kernel, "_handle_callback", handle_callback)  # noqa: B010
        del providers

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests.most_common()),
            "total": sum(self.requests.values()),
            "callbacks": dict(self.callbacks.most_common()),
        }

    def reset(self) -> None:
        self.requests.clear()
        self.callbacks.clear()


def profile(
    *, floor: bool, stages: Sequence[str] | None, outdir: Path, cprofile: Path | None
) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    trips = _RoundTrips()
    trips.install()
    started = time.perf_counter()

    import aws_cdk as cdk
    import cdk_nag  # noqa: F401 - its load is part of the import phase of the real app

    from tests.support.synth import app_context

    phases["import"] = {"seconds": time.perf_counter() - started, **trips.snapshot()}
    trips.reset()

    profiler = cProfile.Profile() if cprofile else None
    mark = time.perf_counter()
    if profiler:
        profiler.enable()
    app = cdk.App(context=app_context(), outdir=str(outdir))
    if floor:
        from aws_cdk import aws_sns as sns

        sns.Topic(cdk.Stack(app, "Floor"), "Topic")
    else:
        from config.environments import DEPLOYMENT, ENVIRONMENTS
        from stacks.cdk_app import define_app

        chosen = [c for c in ENVIRONMENTS if stages is None or c.stage_id in stages]
        define_app(app, chosen, DEPLOYMENT if stages is None else None)
    phases["construct"] = {"seconds": time.perf_counter() - mark, **trips.snapshot()}
    trips.reset()

    mark = time.perf_counter()
    try:
        app.synth()
    except RuntimeError as error:  # the cdk-nag gate: still a full synth
        if "ValidationFailed" not in str(error):
            raise
    phases["synth"] = {"seconds": time.perf_counter() - mark, **trips.snapshot()}
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(cprofile))

    mark = time.perf_counter()
    from jsii._kernel import Kernel

    Kernel().provider._process.stop()  # type: ignore[attr-defined]  # what atexit would do
    phases["exit"] = {"seconds": time.perf_counter() - mark}
    phases["total_in_process"] = time.perf_counter() - started
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", action="store_true", help="profile the one-topic floor app instead")
    parser.add_argument("--stages", help="comma-separated Stage ids to build (default: the whole app)")
    parser.add_argument("--cprofile", type=Path, help="write a cProfile of construct + synth to this file")
    args = parser.parse_args(argv)
    import os

    os.environ.update(pinned_node_environment())
    with tempfile.TemporaryDirectory(prefix="cdk-profile-") as outdir:
        result = profile(
            floor=args.floor,
            stages=args.stages.split(",") if args.stages else None,
            outdir=Path(outdir),
            cprofile=args.cprofile,
        )
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
