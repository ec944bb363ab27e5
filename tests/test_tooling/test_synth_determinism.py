"""Two synths of the same commit produce byte-identical templates (no timestamps, no random ids).

Reuses the session's synth and runs ONE more in a subprocess (a fresh jsii process, as `cdk synth`
would) with the same helper, context and gate, into another directory. A second synth that crashes
fails the test (with its stderr); cdk-nag findings must come out the same both times.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.synth import REPO_ROOT


def _templates(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.glob("**/*.template.json"))
    }


def test_two_synths_produce_identical_templates(synthesized_app):
    with tempfile.TemporaryDirectory(prefix="cdk-determinism-") as outdir:
        second_synth = subprocess.run(
            [sys.executable, "-m", "tests.support.synth", outdir],
            cwd=REPO_ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second_synth.returncode == 0, f"the second synth failed:\n{second_synth.stderr[-4000:]}"
        first, second = _templates(synthesized_app.directory), _templates(Path(outdir))
    result = json.loads(second_synth.stdout.strip().splitlines()[-1])
    assert result["validation_error"] == synthesized_app.validation_error
    assert first, "the session synth wrote no templates"
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"templates differ between two synths of the same commit: {differing}"
