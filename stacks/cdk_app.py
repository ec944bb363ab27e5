"""The whole CDK app: one Stage per environment and the compliance gate.

Shared by `app.py` and the tests, so the tests synthesize exactly what `cdk synth` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks

from config.deployment import DeploymentConfig
from config.schema import EnvironmentConfig
from stacks.database_environment import DatabaseEnvironment
from stacks.deploy_access_stack import STAGE_ID as DEPLOY_ACCESS_STAGE_ID
from stacks.deploy_access_stack import DeployAccess


class MissingContextError(RuntimeError):
    """The app needed a context lookup that is not in cdk.context.json."""


def define_app(
    app: cdk.App,
    environments: Iterable[EnvironmentConfig],
    deployment: DeploymentConfig | None = None,
    *,
    peers: Iterable[EnvironmentConfig] | None = None,
) -> dict[str, DatabaseEnvironment]:
    """Add one Stage per environment and every cdk-nag pack; return the stages by environment name.

    `peers`: every environment of the project, for references across environments (production's runbook
    reads staging's applied-revision records through a role in staging's account); by default the
    synthesized `environments`. A variant synth of one environment passes the others here.
    With `deployment`, also the `DeployAccess` Stage: the pipeline's OIDC provider and roles per account.
    """
    configs = tuple(environments)
    known = {config.name: config for config in (peers if peers is not None else ())}
    known.update({config.name: config for config in configs})
    stages = {
        config.name: DatabaseEnvironment(
            app, config.stage_id, config=config, environments=tuple(known.values())
        )
        for config in configs
    }
    if deployment is not None:
        DeployAccess(app, DEPLOY_ACCESS_STAGE_ID, deployment=deployment)
    add_compliance_checks(app)
    return stages


def add_compliance_checks(app: cdk.App) -> None:
    """Every cdk-nag pack as a validation plugin: any unacknowledged finding fails synthesis."""
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), HIPAASecurityChecks(app), NIST80053R5Checks(app), PCIDSS321Checks(app)
    )


def require_complete_context(assembly_directory: str) -> None:
    """Fail when synthesis needed a lookup: without it CDK silently writes dummy values (e.g. AZs)."""
    missing = sorted(
        {
            entry["key"]
            for manifest in _manifests(Path(assembly_directory))
            for entry in manifest.get("missing", [])
        }
    )
    if missing:
        raise MissingContextError(
            f"synthesis needs context that cdk.context.json lacks: {', '.join(missing)}. Run `cdk synth` once with "
            "credentials for the account, review the new entries in cdk.context.json and commit them."
        )


def _manifests(directory: Path) -> list[dict[str, Any]]:
    """The assembly's manifest and those of its nested (Stage) assemblies."""
    manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    nested = [
        artifact["properties"]["directoryName"]
        for artifact in manifest.get("artifacts", {}).values()
        if artifact.get("type") == "cdk:cloud-assembly"
    ]
    return [manifest, *(m for name in nested for m in _manifests(directory / name))]
