"""Two synths of the same commit produce byte-identical templates (no timestamps, no random ids).

Reuses the session's synth and runs ONE more in a subprocess (a fresh jsii process, as `cdk synth`
would), with the same context, into another directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import REPO_ROOT, app_context

SECOND_SYNTH = """
import json, sys
import aws_cdk as cdk
from stacks.cdk_app import define_app
from config.environments import ENVIRONMENTS
app = cdk.App(context=json.loads(sys.argv[1]), outdir=sys.argv[2])
define_app(app, ENVIRONMENTS)
try:
    app.synth()
except RuntimeError:
    pass  # cdk-nag findings are the compliance tests' business; the templates are written regardless
"""


def _templates(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.glob("**/*.template.json"))
    }


def test_two_synths_produce_identical_templates(synthesized_app):
    with tempfile.TemporaryDirectory(prefix="cdk-determinism-") as outdir:
        subprocess.run(
            [sys.executable, "-c", SECOND_SYNTH, json.dumps(app_context()), outdir],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        first, second = _templates(synthesized_app.directory), _templates(Path(outdir))
    assert first, "the session synth wrote no templates"
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"templates differ between two synths of the same commit: {differing}"
