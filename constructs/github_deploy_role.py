"""GitHub Actions' way into one account: the OIDC provider and two roles trusted for one GitHub environment.

Creates
- the IAM OIDC provider for `token.actions.githubusercontent.com` (audience `sts.amazonaws.com`,
  RETAIN: every deploy of the account depends on it), unless the target names an existing one
  (bring your own or we create it; the config accepts one or the other, never both);
- `DeployRole` (`revenuepilot-<env>-github-deploy`): may call `sts:AssumeRole` on the four CDK
  bootstrap roles of this account and region (deploy, file-publishing, image-publishing, lookup)
  and nothing else: everything the CDK CLI does, it does through them;
- `SmokeRole` (`revenuepilot-<env>-github-smoke`): what the post-deploy smoke checks read
  (`tools/smoke.py`): the environment's stack outputs, the runbook state machine's definition, and
  invoking the credentials-check Lambda of the Data stack. No write access to anything.
- `MigrateRole` (`revenuepilot-<env>-github-migrate`): what `python -m ops migrate|rollback` calls:
  start and follow executions of the runbook state machine, describe its `pre-migration-*` snapshots.
  Trusted for the target's *migration* GitHub environment only, so a deploy job cannot migrate.

Secure defaults: every role trusts only web identities of this provider whose token has
`aud = sts.amazonaws.com` and `sub = repo:<owner>/<repository>:environment:<github environment>`
(exact `StringEquals`, no wildcard), so a job of another repository, of a pull request, or of this
repository outside the target's GitHub environment (which is where branch and reviewer rules live)
cannot assume them; sessions last at most `max_session_seconds` (1 h); permissions are customer
managed policies (no inline policies).

Attributes: `provider`, `deploy_role`, `smoke_role`, `migrate_role`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from config.deployment import (
    CDK_BOOTSTRAP_ROLES,
    GITHUB_OIDC_AUDIENCE,
    GITHUB_OIDC_HOST,
    DeploymentConfig,
    DeployTarget,
    bootstrap_role_name,
)
from constructs import Construct
from constructs.compliance import acknowledge
from contract.names import state_machine_name


class GitHubDeployAccess(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: DeploymentConfig, target: DeployTarget
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        environment = target.environment
        if target.existing_oidc_provider_arn is not None:
            self.provider: iam.IOidcProvider = iam.OidcProviderNative.from_oidc_provider_arn(
                self, "OidcProvider", target.existing_oidc_provider_arn
            )
        else:
            self.provider = iam.OidcProviderNative(
                self,
                "OidcProvider",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_ids=[GITHUB_OIDC_AUDIENCE],
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
        principal = self._github_principal(deployment.subject(target))
        session = cdk.Duration.seconds(deployment.max_session_seconds)
        arn = f"arn:{stack.partition}"

        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            role_name=target.deploy_role_name,
            assumed_by=principal,
            max_session_duration=session,
            description=f"GitHub Actions deploys {environment.name} ({deployment.subject(target)}) "
            "through the CDK bootstrap roles",
        )
        bootstrap_roles = [
            f"{arn}:iam::{environment.account}:role/{bootstrap_role_name(kind, environment.account, environment.region)}"
            for kind in CDK_BOOTSTRAP_ROLES
        ]
        iam.ManagedPolicy(
            self,
            "DeployPolicy",
            description="Assume the CDK bootstrap roles of this account and region, nothing else",
            roles=[self.deploy_role],
            statements=[
                iam.PolicyStatement(
                    sid="AssumeCdkBootstrapRoles", actions=["sts:AssumeRole"], resources=bootstrap_roles
                )
            ],
        )

        self.smoke_role = iam.Role(
            self,
            "SmokeRole",
            role_name=target.smoke_role_name,
            assumed_by=principal,
            max_session_duration=session,
            description=f"GitHub Actions reads {environment.name}'s stacks after a deploy (smoke checks)",
        )
        region_account = f"{environment.region}:{environment.account}"
        stage = environment.stage_id
        stacks_arn = f"{arn}:cloudformation:{region_account}:stack/{stage}-*/*"
        functions_arn = f"{arn}:lambda:{region_account}:function:{stage}-Data-*"
        smoke_policy = iam.ManagedPolicy(
            self,
            "SmokePolicy",
            description="Read the environment's stack outputs and runbook definition; run the credentials check",
            roles=[self.smoke_role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadStackOutputs",
                    actions=["cloudformation:DescribeStacks"],
                    resources=[stacks_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadRunbookDefinition",
                    actions=["states:DescribeStateMachine"],
                    resources=[
                        f"{arn}:states:{region_account}:stateMachine:{state_machine_name(environment.name)}"
                    ],
                ),
                iam.PolicyStatement(
                    sid="RunCredentialsCheck",
                    actions=["lambda:InvokeFunction"],
                    resources=[functions_arn],
                ),
            ],
        )
        for resource, why in (
            (
                stacks_arn,
                "DescribeStacks needs the stack id suffix CloudFormation appends to each stack name; the "
                f"grant is read-only and confined to this environment's stacks ({stage}-*).",
            ),
            (
                functions_arn,
                "The credentials-check function's name is generated by CloudFormation from the Data stack's "
                "name; the grant is confined to that stack's functions, invoke only.",
            ),
        ):
            # The finding names the resolved ARN (the stack's environment is concrete, so is its partition).
            acknowledge(smoke_policy, f"AwsSolutions-IAM5[Resource::{resource}]", why)

        self.migrate_role = iam.Role(
            self,
            "MigrateRole",
            role_name=target.migrate_role_name,
            assumed_by=self._github_principal(deployment.migration_subject(target)),
            max_session_duration=session,
            description=f"GitHub Actions runs the {environment.name} migration runbook "
            f"({deployment.migration_subject(target)})",
        )
        runbook = state_machine_name(environment.name)
        executions_arn = f"{arn}:states:{region_account}:execution:{runbook}:*"
        snapshots_arn = f"{arn}:rds:{region_account}:snapshot:pre-migration-*"
        migrate_policy = iam.ManagedPolicy(
            self,
            "MigratePolicy",
            description="Start and follow the migration runbook; describe its pre-migration snapshots",
            roles=[self.migrate_role],
            statements=[
                iam.PolicyStatement(
                    sid="StartRunbook",
                    actions=["states:StartExecution"],
                    resources=[f"{arn}:states:{region_account}:stateMachine:{runbook}"],
                ),
                iam.PolicyStatement(
                    sid="FollowRunbook",
                    actions=["states:DescribeExecution", "states:GetExecutionHistory"],
                    resources=[executions_arn],
                ),
                iam.PolicyStatement(
                    sid="DescribeSnapshots", actions=["rds:DescribeDBSnapshots"], resources=[snapshots_arn]
                ),
            ],
        )
        for resource, why in (
            (
                executions_arn,
                "Each runbook execution gets a new name chosen at start time; the grant is read-only and "
                "confined to executions of this environment's runbook state machine.",
            ),
            (
                snapshots_arn,
                "Each execution creates a new pre-migration-<start time> snapshot; the grant only describes "
                "snapshots with that prefix.",
            ),
        ):
            acknowledge(migrate_policy, f"AwsSolutions-IAM5[Resource::{resource}]", why)

    def _github_principal(self, subject: str) -> iam.WebIdentityPrincipal:
        """Web identities of the provider with exactly this `sub` and the STS audience."""
        return iam.WebIdentityPrincipal(
            self.provider.oidc_provider_arn,
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": subject,
                }
            },
        )
