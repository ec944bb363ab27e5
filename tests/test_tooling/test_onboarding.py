"""Onboarding new accounts: the CDK CLI performs the context lookups and writes cdk.context.json.

A fresh copy of the repository with account ids that are not the committed ones and an empty
cdk.context.json is synthesized by the pinned CDK CLI exactly as the README tells a new user, with
moto's server standing in for STS and EC2 (AWS_ENDPOINT_URL). What this cannot prove: the CDK
bootstrap lookup role's trust in a real account, and AWS's real list of availability zones.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

from tools.node_runtime import REPO_ROOT, pinned_node_environment

NEW_ACCOUNTS = {"111111111111": "333333333333", "222222222222": "444444444444"}
SHARED = (".venv", "node_modules", ".build")  # installed tooling, borrowed rather than reinstalled


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fresh_clone(target: Path) -> Path:
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (REPO_ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, target / name)
    for name in SHARED:
        (target / name).symlink_to(REPO_ROOT / name)
    environments = target / "config" / "environments.py"
    text = environments.read_text()
    for committed, new in NEW_ACCOUNTS.items():
        assert committed in text
        text = text.replace(committed, new)
    environments.write_text(text)
    (target / "cdk.context.json").write_text("{}\n")
    return target


def test_cdk_synth_with_credentials_writes_the_lookups_for_new_accounts(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    clone = _fresh_clone(tmp_path / "clone")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        completed = subprocess.run(
            [str(clone / "node_modules" / ".bin" / "cdk"), "synth", "**", "--quiet"],
            cwd=clone,
            env={
                **pinned_node_environment(),
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
                "CDK_DISABLE_CLI_TELEMETRY": "true",
            },
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.stop()
    assert completed.returncode == 0, completed.stderr[-3000:]
    context = json.loads((clone / "cdk.context.json").read_text())
    assert sorted(context) == [
        f"availability-zones:account={account}:region=us-east-1" for account in sorted(NEW_ACCOUNTS.values())
    ]
    assert all(zones and not any(z.startswith("dummy") for z in zones) for zones in context.values())
