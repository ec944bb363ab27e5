"""The pipeline's way into each account (issue 17): a Stage `DeployAccess` with one stack per account.

The deploy roles are not part of the environments' Stages on purpose:
- the pipeline deploys `Staging/*` and `Production/*`; `DeployAccess/...` matches neither pattern, so
  the pipeline can never change (or widen) the trust of the roles it runs as;
- they must exist before the first pipeline run: an administrator of the account deploys them once
  (and after every change) with `npx cdk deploy 'DeployAccess/Staging'` (README: "Releases").

Deployed stack names are `DeployAccess-<Stage>`, e.g. `DeployAccess-Production`, termination-protected.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from config.deployment import DeploymentConfig, DeployTarget
from constructs import Construct
from constructs.github_deploy_role import GitHubDeployAccess

STAGE_ID = "DeployAccess"


class DeployAccessStack(cdk.Stack):
    """Composes `GitHubDeployAccess` for one account. Exposes `access` (provider, deploy, smoke and migrate roles)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: DeploymentConfig,
        target: DeployTarget,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        self.access = GitHubDeployAccess(self, "GitHub", deployment=deployment, target=target)
        for output_id, role in (
            ("DeployRoleArn", self.access.deploy_role),
            ("SmokeRoleArn", self.access.smoke_role),
            ("MigrateRoleArn", self.access.migrate_role),
        ):
            cdk.CfnOutput(self, output_id, value=role.role_arn)


class DeployAccess(cdk.Stage):
    """One `DeployAccessStack` per deploy target, each in its environment's account and region.

    The stack ids are the environments' Stage ids (`DeployAccess/Staging`, `DeployAccess/Production`).
    """

    def __init__(self, scope: Construct, construct_id: str, *, deployment: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        tags = {"Application": "revenuepilot", "Purpose": "deploy-access"}
        self.stacks = {
            target.environment.name: DeployAccessStack(
                self,
                target.environment.stage_id,
                deployment=deployment,
                target=target,
                env=cdk.Environment(account=target.environment.account, region=target.environment.region),
                tags={**tags, "Environment": target.environment.name},
                description=f"RevenuePilot {target.environment.name}: GitHub OIDC deploy, smoke-check and migrate roles",
            )
            for target in deployment.targets
        }
