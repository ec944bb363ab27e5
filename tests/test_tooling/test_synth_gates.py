"""Plain CDK habits cannot skip the gates: stack commands without a pattern are refused, nag failures fail."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.synth_gates import CliInvocation, failed_validations, parse_cli_arguments, selection_error
from tools.node_runtime import REPO_ROOT, pinned_node_environment


@pytest.mark.parametrize(
    ("typed", "refused"),
    [
        ("synth", False),  # synthesizes both stages; app.py applies the nag gate itself
        ("synth --all", False),
        ("synth **", False),
        ("ls", False),
        ("diff", True),
        ("diff --all", True),
        ("--profile prod diff", True),
        ("diff -c strict=true", True),
        ("diff --template base.json", True),
        ("deploy --all", True),
        ("deploy --require-approval never", True),
        ("destroy", True),
        ("diff **", False),
        ("diff Staging/*", False),
        ("deploy Production/*", False),
        ("deploy --all Production/*", False),
        ("deploy --profile prod Production/* --require-approval broadening", False),
        ("--app=cdk.out diff --exclusively Staging/Data", False),
    ],
)
def test_which_commands_are_refused(typed: str, refused: bool) -> None:
    error = selection_error(parse_cli_arguments(typed.split()))
    assert (error is not None) == refused, error
    if error:
        command = typed.replace("--profile prod ", "").split()[0]
        assert f"npx cdk {command} 'Staging/*'" in error or f"npx cdk {command} '**'" in error, error


def test_the_remedy_for_diff_names_make_diff() -> None:
    error = selection_error(CliInvocation(command="diff", patterns=(), all_stacks=False))
    assert error is not None and "make diff" in error and "npx cdk diff '**'" in error


@pytest.mark.parametrize("typed", ["diff", "deploy --all"])
def test_the_real_cli_refuses_before_synthesizing(typed: str, tmp_path: Path) -> None:
    # The pinned CDK CLI runs app.py exactly as for a user; the refusal happens before any jsii start-up.
    completed = subprocess.run(
        [str(REPO_ROOT / "node_modules" / ".bin" / "cdk"), *typed.split(), "--output", str(tmp_path / "out")],
        cwd=REPO_ROOT,
        env={
            **pinned_node_environment(),
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode != 0
    assert "selects no stack of this app" in completed.stderr, completed.stderr[-2000:]
    assert not (tmp_path / "out" / "manifest.json").exists(), "nothing was synthesized"


def test_a_passing_report_passes(synthesized_app: Any) -> None:
    assert synthesized_app.validation_error is None
    assert failed_validations(synthesized_app.directory) == []


def test_a_failed_pack_fails_whatever_the_selection(synthesized_app: Any, tmp_path: Path) -> None:
    report = json.loads((synthesized_app.directory / "validation-report.json").read_text())
    report["pluginReports"].append(
        {
            "pluginName": "AwsSolutions",
            "conclusion": "failure",
            "violations": [{"ruleName": "AwsSolutions-RDS11"}],
        }
    )
    (tmp_path / "validation-report.json").write_text(json.dumps(report))
    assert failed_validations(tmp_path) == ["AwsSolutions: 1 unacknowledged finding(s)"]
    shutil.rmtree(tmp_path)
    assert failed_validations(tmp_path) == []  # no report: nothing validated, nothing to fail on
