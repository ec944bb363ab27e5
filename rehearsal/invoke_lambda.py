"""Run one Lambda handler from a synthesized asset directory, as the Lambda runtime would.

Usage (a child process of tools/rehearse.py, never imported by it)::

    python rehearsal/invoke_lambda.py <asset dir> <module.function> <event.json> <result.json>

The asset directory goes first on ``sys.path`` and becomes the working directory (Lambda's
``/var/task``), so the bundled ``lambdas`` package and its bundled dependencies are what run; the
interpreter's own site-packages come after it, as the Lambda runtime's boto3 does. The handler's
result (or the error's type and message) is written to ``result.json``; the handler's logs go to
stdout/stderr, which the parent keeps out of its output unless the step fails.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
import uuid
from pathlib import Path
from types import SimpleNamespace


def _context(function_name: str) -> SimpleNamespace:
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return SimpleNamespace(
        function_name=function_name,
        function_version="$LATEST",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{region}:123456789012:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{function_name}",
        log_stream_name="rehearsal",
        get_remaining_time_in_millis=lambda: 300_000,
    )


def main(argv: list[str]) -> int:
    asset_dir, handler_spec, event_file, result_file = argv
    script_dir = str(Path(__file__).resolve().parent)
    sys.path[:] = [asset_dir, *(p for p in sys.path if p not in ("", script_dir))]
    os.chdir(asset_dir)
    module_name, _, function_name = handler_spec.rpartition(".")
    result: dict[str, object]
    try:
        module = importlib.import_module(module_name)
        loaded_from = str(Path(module.__file__ or "").resolve())
        if not loaded_from.startswith(str(Path(asset_dir).resolve()) + os.sep):
            raise RuntimeError(f"{module_name} was imported from {loaded_from}, not from the asset")
        event = json.loads(Path(event_file).read_text())
        output = getattr(module, function_name)(event, _context(module_name.split(".")[1]))
        result = {"ok": True, "result": output, "module_file": loaded_from}
    except Exception as error:
        # Type and message only: the handlers never put secret values into exceptions.
        traceback.print_exc(limit=5)
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    Path(result_file).write_text(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
