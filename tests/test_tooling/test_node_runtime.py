"""The CDK CLI and jsii run on the Node.js LTS pinned in package.json, with no banner silenced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.node_runtime import PINNED_NODE, REPO_ROOT, pinned_node_environment, pinned_node_version

# Node's LTS lines are the even majors; 20 reached end of life on 2026-04-30.
OLDEST_SUPPORTED_MAJOR = 22


def test_package_json_pins_a_supported_lts() -> None:
    major = int(pinned_node_version().split(".")[0])
    assert major % 2 == 0, f"Node {pinned_node_version()} is not an LTS line"
    assert major >= OLDEST_SUPPORTED_MAJOR, f"Node {pinned_node_version()} is end of life"


def test_the_pinned_node_is_what_runs() -> None:
    version = subprocess.run(
        [str(PINNED_NODE), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version == f"v{pinned_node_version()}"
    # conftest exported it before aws_cdk was imported: this session's jsii runs on it.
    assert os.environ["JSII_NODE"] == str(PINNED_NODE)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(PINNED_NODE.parent)


def test_no_jsii_banner_is_silenced_and_none_is_printed() -> None:
    for path in (REPO_ROOT / "Makefile", REPO_ROOT / "tests" / "conftest.py", REPO_ROOT / ".ci" / "run"):
        assert "JSII_SILENCE" not in path.read_text(), f"{path.name} silences a jsii banner"
    environment = {k: v for k, v in pinned_node_environment().items() if not k.startswith("JSII_SILENCE")}
    started = subprocess.run(
        [sys.executable, "-c", "import aws_cdk; aws_cdk.App()"],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "end-of-life" not in started.stderr.lower() and "untested" not in started.stderr.lower(), (
        started.stderr
    )


def test_npx_runs_the_cli_on_the_pinned_node() -> None:
    # npx puts node_modules/.bin first on PATH; the cdk bin's `#!/usr/bin/env node` then finds the pin.
    shebang = (
        (Path(os.path.realpath(REPO_ROOT / "node_modules" / ".bin" / "cdk"))).read_text().splitlines()[0]
    )
    assert shebang == "#!/usr/bin/env node"
    assert (REPO_ROOT / "node_modules" / ".bin" / "node").resolve() == PINNED_NODE.resolve()
