"""`python -m tools.deploy_target --env <env>`: what the workflows need to know about a deploy target.

Prints `key=value` lines (append them to `$GITHUB_OUTPUT`): the Stage id, account, region and the
ARNs of the deploy, smoke-check and migrate roles, all from `config/` (DEPLOYMENT), so the workflows
hold no account ids or role names of their own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config.deployment import DeploymentConfig


def target_outputs(deployment: DeploymentConfig, environment_name: str) -> dict[str, str]:
    target = deployment.target(environment_name)
    environment = target.environment
    partition = "aws-cn" if environment.region.startswith("cn-") else "aws"

    def role(name: str) -> str:
        return f"arn:{partition}:iam::{environment.account}:role/{name}"

    return {
        "stage": environment.stage_id,
        "account": environment.account,
        "region": environment.region,
        "deploy_role_arn": role(target.deploy_role_name),
        "smoke_role_arn": role(target.smoke_role_name),
        "migrate_role_arn": role(target.migrate_role_name),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from config.environments import DEPLOYMENT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=[t.environment.name for t in DEPLOYMENT.targets])
    args = parser.parse_args(argv)
    for key, value in target_outputs(DEPLOYMENT, args.env).items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
