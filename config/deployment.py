"""Who may deploy: the GitHub repository, its environments and the deploy roles per account (issue 17).

Plain, validated Python (no aws_cdk), like the rest of `config/`; the instance, `DEPLOYMENT`, is in
`config/environments.py` next to the accounts. The deploy-access stacks
(`stacks/deploy_access_stack.py`) create from it, per account, the GitHub OIDC provider (or use an
existing one), a deploy role and a smoke-check role, each trusted only for
`repo:<owner>/<repository>:environment:<github environment>`; the workflows
(`.github/workflows/deploy.yml`, `migrate.yml`) address the same roles by name
(`tests/test_pipeline/test_workflows.py` keeps both sides in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.schema import ENVIRONMENT_NAMES, EnvironmentConfig
from config.validation import require


def _check(condition: bool, field_path: str, value: object, allowed: str) -> None:
    require(condition, field_path, f"{value!r} is not allowed: {allowed}")


GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
# The qualifier of `cdk bootstrap`'s default template; the deploy role may assume its four roles only.
CDK_BOOTSTRAP_QUALIFIER = "hnb659fds"
CDK_BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")
# IAM's shortest maximum session; role chaining (into the bootstrap roles) caps sessions at 1 h anyway.
MIN_SESSION_SECONDS = 3600
MAX_SESSION_SECONDS = 7200

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_GITHUB_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws(-[a-z]+)?:iam::\d{12}:oidc-provider/" + re.escape(GITHUB_OIDC_HOST) + "$"
)


@dataclass(frozen=True, kw_only=True)
class DeployTarget:
    """One environment the pipeline deploys, and the GitHub environment that gates it.

    The OIDC provider: bring your own (`existing_oidc_provider_arn`: an account has at most one
    provider per URL, e.g. created by another team) or this stack creates it (None).
    """

    environment: EnvironmentConfig
    github_environment: str
    # Migrations are a separate, deliberate act with reviewers of their own (`migrate.yml`): a second
    # GitHub environment, so a deploy job can never assume the role that starts the runbook.
    migration_github_environment: str
    existing_oidc_provider_arn: str | None = None

    def __post_init__(self) -> None:
        name = self.environment.name
        for field, value in (
            ("github_environment", self.github_environment),
            ("migration_github_environment", self.migration_github_environment),
        ):
            _check(
                bool(_GITHUB_ENVIRONMENT.match(value)),
                f"deployment.{name}.{field}",
                value,
                "a GitHub environment name (letters, digits, '-' and '_')",
            )
        if self.existing_oidc_provider_arn is not None:
            arn = self.existing_oidc_provider_arn
            _check(
                bool(_OIDC_PROVIDER_ARN.match(arn)),
                f"deployment.{name}.existing_oidc_provider_arn",
                arn,
                f"the ARN of the account's IAM OIDC provider for {GITHUB_OIDC_HOST}",
            )
            _check(
                arn.split(":")[4] == self.environment.account,
                f"deployment.{name}.existing_oidc_provider_arn",
                arn,
                f"a provider in the environment's account {self.environment.account}",
            )

    @property
    def deploy_role_name(self) -> str:
        return deploy_role_name(self.environment.name)

    @property
    def smoke_role_name(self) -> str:
        return smoke_role_name(self.environment.name)

    @property
    def migrate_role_name(self) -> str:
        return migrate_role_name(self.environment.name)


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    """The repository allowed to deploy, from which branch, and one target per environment."""

    github_owner: str
    github_repository: str
    branch: str = "main"
    targets: tuple[DeployTarget, ...]
    max_session_seconds: int = MIN_SESSION_SECONDS

    def __post_init__(self) -> None:
        _check(bool(_OWNER.match(self.github_owner)), "deployment.github_owner", self.github_owner,
                "a GitHub user or organisation name")  # fmt: skip
        _check(bool(_REPOSITORY.match(self.github_repository)), "deployment.github_repository",
                self.github_repository, "a GitHub repository name")  # fmt: skip
        _check(bool(_BRANCH.match(self.branch)), "deployment.branch", self.branch, "a branch name")
        names = [t.environment.name for t in self.targets]
        _check(sorted(names) == sorted(ENVIRONMENT_NAMES), "deployment.targets", names,
                f"exactly one target per environment {ENVIRONMENT_NAMES}")  # fmt: skip
        github_environments = [
            name for t in self.targets for name in (t.github_environment, t.migration_github_environment)
        ]
        _check(len(set(github_environments)) == len(github_environments), "deployment.targets",
                github_environments, "a GitHub environment of its own per target (one approval each)")  # fmt: skip
        accounts = [t.environment.account for t in self.targets]
        _check(len(set(accounts)) == len(accounts), "deployment.targets", accounts,
                "an account of its own per environment")  # fmt: skip
        _check(MIN_SESSION_SECONDS <= self.max_session_seconds <= MAX_SESSION_SECONDS,
                "deployment.max_session_seconds", self.max_session_seconds,
                f"{MIN_SESSION_SECONDS}-{MAX_SESSION_SECONDS} seconds (short-lived deploy sessions)")  # fmt: skip

    @property
    def repository(self) -> str:
        return f"{self.github_owner}/{self.github_repository}"

    def subject(self, target: DeployTarget) -> str:
        """The OIDC `sub` claim of a job that runs in the target's GitHub environment."""
        return f"repo:{self.repository}:environment:{target.github_environment}"

    def migration_subject(self, target: DeployTarget) -> str:
        """The OIDC `sub` claim of a job in the target's migration GitHub environment."""
        return f"repo:{self.repository}:environment:{target.migration_github_environment}"

    def target(self, environment_name: str) -> DeployTarget:
        return next(t for t in self.targets if t.environment.name == environment_name)


def deploy_role_name(environment_name: str) -> str:
    return f"revenuepilot-{environment_name}-github-deploy"


def smoke_role_name(environment_name: str) -> str:
    return f"revenuepilot-{environment_name}-github-smoke"


def migrate_role_name(environment_name: str) -> str:
    return f"revenuepilot-{environment_name}-github-migrate"


def bootstrap_role_name(kind: str, account: str, region: str) -> str:
    """`cdk-hnb659fds-deploy-role-<account>-<region>` and its three siblings."""
    return f"cdk-{CDK_BOOTSTRAP_QUALIFIER}-{kind}-role-{account}-{region}"
