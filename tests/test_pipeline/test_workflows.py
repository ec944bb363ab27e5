"""Static checks of .github/workflows (CI runs them through `make test`): actionlint, zizmor, pinning,
and the release rules the workflows must keep (issue 17)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.environments import DEPLOYMENT

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
LOCAL = ("./", "$/")  # this repository's own actions and reusable workflows


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in document:
        document["on"] = document.pop(True)
    return document


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: `make setup` installs it (requirements-dev.txt)", pytrace=False
        )
    return str(path)


def uses_of(document: Any) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "uses" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(uses_of(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(uses_of(item))
    return found


def test_actionlint_finds_nothing():
    result = subprocess.run(
        [tool("actionlint"), "-no-color", *map(str, workflow_files())],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    """Offline audits (no GitHub API); an ignore comment must say why (see the next test)."""
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", "--persona", "auditor", str(WORKFLOWS)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_ignores_carry_a_reason():
    for path in workflow_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "zizmor: ignore" in line:
                reason = line.split("]", 1)[-1].strip(" -:#")
                assert len(reason) >= 20, f"{path.name}:{number}: a zizmor ignore without a reason"


def test_every_action_is_pinned_to_a_commit_sha():
    unpinned = [
        f"{path.name}: {uses}"
        for path in workflow_files()
        for uses in uses_of(yaml.safe_load(path.read_text()))
        if not uses.startswith(LOCAL) and not PINNED.match(uses.split(" ")[0])
    ]
    assert unpinned == []
    # The version each SHA stands for is written next to it, for reviewers and update tools.
    for path in workflow_files():
        for line in path.read_text().splitlines():
            if re.search(r"uses: [^$.].*@[0-9a-f]{40}", line):
                assert re.search(r"# v\d+\.\d+\.\d+", line), f"{path.name}: {line.strip()}"


def test_no_long_lived_credentials_anywhere():
    for path in workflow_files():
        text = path.read_text()
        for forbidden in (
            "aws-access-key-id",
            "aws-secret-access-key",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ):
            assert forbidden not in text, f"{path.name} mentions {forbidden}"


def test_deploys_run_on_main_one_at_a_time_staging_before_production():
    deploy = load("deploy.yml")
    assert deploy["on"]["push"] == {"branches": [DEPLOYMENT.branch]}
    assert set(deploy["on"]["workflow_dispatch"]["inputs"]) == {"allow_replace", "reason"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["permissions"] == {}
    jobs = deploy["jobs"]
    assert list(jobs) == ["staging", "production"]
    assert jobs["production"]["needs"] == "staging"
    for name, job in jobs.items():
        assert job["uses"].endswith("/.github/workflows/deploy-environment.yml")
        assert job["with"]["environment"] == DEPLOYMENT.target(name).github_environment
        assert job["permissions"] == {"contents": "write", "id-token": "write"}


def _steps(document: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = document["jobs"][job]["steps"]
    return steps


def _index(steps: list[dict[str, Any]], needle: str) -> int:
    return next(i for i, step in enumerate(steps) if needle in (step.get("name", "") + step.get("run", "")))


def test_each_environment_is_gated_guarded_deployed_and_smoke_checked_in_order():
    workflow = load("deploy-environment.yml")
    job = workflow["jobs"]["deploy"]
    assert job["environment"] == "${{ inputs.environment }}"
    steps = _steps(workflow, "deploy")
    order = [
        _index(steps, "make setup"),
        _index(steps, "make synth"),
        _index(steps, "make diff BASE"),
        _index(steps, "deploy role"),
        _index(steps, "cdk deploy --app cdk.out"),
        _index(steps, "smoke-check role"),
        _index(steps, "tools.smoke"),
        _index(steps, "Move deployed/"),
    ]
    assert order == sorted(order), order
    assert "--require-approval never" in steps[_index(steps, "cdk deploy --app")]["run"]
    # The diff's base is the tag moved after the last successful deploy of this environment.
    assert "refs/tags/deployed/${DEPLOY_ENV}" in steps[_index(steps, "Previously deployed commit")]["run"]
    # An allowance is honoured only from a manual dispatch, with a reason, and recorded in the summary.
    allowance = steps[_index(steps, "Record the replacement allowance")]["run"]
    assert '"$EVENT" != "workflow_dispatch"' in allowance and "GITHUB_STEP_SUMMARY" in allowance
    checkout = steps[0]
    assert checkout["with"]["persist-credentials"] is False


def test_roles_come_from_the_configuration():
    """The workflows hold no account ids or role ARNs: tools.deploy_target derives them from config."""
    for path in workflow_files():
        assert not re.search(r"\b\d{12}\b", path.read_text()), path.name
    for name in ("deploy-environment.yml", "migrate.yml"):
        assert "python -m tools.deploy_target --env" in (WORKFLOWS / name).read_text()


def test_migrations_are_a_separate_manual_act():
    migrate = load("migrate.yml")
    assert set(migrate["on"]) == {"workflow_dispatch"}
    job = migrate["jobs"]["migrate"]
    assert job["environment"] == "${{ inputs.environment }}-migration"
    assert {t.migration_github_environment for t in DEPLOYMENT.targets} == {
        f"{t.environment.name}-migration" for t in DEPLOYMENT.targets
    }
    assert "migrate_role_arn" in (WORKFLOWS / "migrate.yml").read_text()
    deploy_text = (WORKFLOWS / "deploy-environment.yml").read_text()
    assert "migrate_role_arn" not in deploy_text and "-m ops migrate" not in deploy_text
