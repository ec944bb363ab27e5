"""config/deployment.py: a bad deployment setting stops synth with the field named."""

from __future__ import annotations

import dataclasses

import pytest

from config.deployment import DeploymentConfig, DeployTarget
from config.environments import DEPLOYMENT, PRODUCTION, STAGING
from config.validation import ConfigError


def test_the_configured_deployment_is_valid():
    assert DEPLOYMENT.subject(DEPLOYMENT.target("production")).endswith(":environment:production")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"github_owner": "-bad"}, "deployment.github_owner"),
        ({"github_repository": "a b"}, "deployment.github_repository"),
        ({"max_session_seconds": 43200}, "deployment.max_session_seconds"),
        ({"targets": (DEPLOYMENT.targets[0],)}, "deployment.targets"),
        (
            {
                "targets": (
                    DEPLOYMENT.targets[0],
                    dataclasses.replace(DEPLOYMENT.targets[1], github_environment="staging"),
                )
            },
            "deployment.targets",
        ),
    ],
)
def test_invalid_settings_are_refused(changes, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        dataclasses.replace(DEPLOYMENT, **changes)


def test_an_existing_provider_must_be_githubs_in_the_same_account():
    DeployTarget(
        environment=STAGING,
        github_environment="staging",
        migration_github_environment="staging-migration",
        existing_oidc_provider_arn=f"arn:aws:iam::{STAGING.account}:oidc-provider/token.actions.githubusercontent.com",
    )
    for arn in (
        f"arn:aws:iam::{PRODUCTION.account}:oidc-provider/token.actions.githubusercontent.com",
        f"arn:aws:iam::{STAGING.account}:oidc-provider/gitlab.com",
    ):
        with pytest.raises(ConfigError, match=r"deployment\.staging\.existing_oidc_provider_arn"):
            DeployTarget(
                environment=STAGING,
                github_environment="staging",
                migration_github_environment="staging-migration",
                existing_oidc_provider_arn=arn,
            )


def test_the_deploy_and_migration_environments_must_differ():
    with pytest.raises(ConfigError, match=r"deployment\.targets"):
        DeploymentConfig(
            github_owner="o",
            github_repository="r",
            targets=(
                DeployTarget(
                    environment=STAGING, github_environment="staging", migration_github_environment="staging"
                ),
                DEPLOYMENT.targets[1],
            ),
        )
