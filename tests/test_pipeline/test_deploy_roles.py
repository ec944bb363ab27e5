"""The DeployAccess stacks: who GitHub may be in each account, and what it may do there (issue 17)."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from config.deployment import GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST
from config.environments import DEPLOYMENT, ENVIRONMENTS
from tests.support.synth import SynthesizedApp

REPOSITORY = DEPLOYMENT.repository
ROLES = ("DeployRole", "SmokeRole", "MigrateRole")


def _template(synthesized_app: SynthesizedApp, stage_id: str) -> dict[str, Any]:
    return synthesized_app.template_json("DeployAccess", stage_id)


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _role(template: dict[str, Any], construct_id: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, r)
        for logical_id, r in _resources(template, "AWS::IAM::Role").items()
        if logical_id.startswith(f"GitHub{construct_id}")
    ]
    return found


def _matches(operator: str, expected: Any, actual: str | None) -> bool:
    values = expected if isinstance(expected, list) else [expected]
    if actual is None:
        return False
    if operator == "StringEquals":
        return actual in values
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(actual, v) for v in values)
    raise AssertionError(f"unexpected condition operator {operator}")


def can_assume(role: dict[str, Any], claims: dict[str, str]) -> bool:
    """IAM's decision for AssumeRoleWithWebIdentity with a GitHub token carrying these claims."""
    for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
        if statement["Effect"] != "Allow" or statement["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        conditions = statement.get("Condition", {})
        if all(
            _matches(
                operator, value, claims.get(key.split(":", 1)[1] if key.startswith(GITHUB_OIDC_HOST) else key)
            )
            for operator, entries in conditions.items()
            for key, value in entries.items()
        ):
            return True
    return False


def token(subject: str, audience: str = GITHUB_OIDC_AUDIENCE) -> dict[str, str]:
    return {"sub": subject, "aud": audience}


@pytest.fixture(scope="module", params=[c.name for c in ENVIRONMENTS])
def target(request: pytest.FixtureRequest, synthesized_app: SynthesizedApp) -> tuple[Any, dict[str, Any]]:
    deploy_target = DEPLOYMENT.target(request.param)
    return deploy_target, _template(synthesized_app, deploy_target.environment.stage_id)


def test_one_oidc_provider_for_github_retained(target):
    _, template = target
    (provider,) = _resources(template, "AWS::IAM::OIDCProvider").values()
    assert provider["Properties"] == {
        "ClientIdList": [GITHUB_OIDC_AUDIENCE],
        "Url": f"https://{GITHUB_OIDC_HOST}",
    }
    assert provider["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("construct_id", ROLES)
def test_roles_trust_only_this_repository_and_environment(target, construct_id):
    deploy_target, template = target
    logical_id, role = _role(template, construct_id)
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    environment = (
        deploy_target.migration_github_environment
        if construct_id == "MigrateRole"
        else deploy_target.github_environment
    )
    provider_id = next(iter(_resources(template, "AWS::IAM::OIDCProvider")))
    assert statement == {
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {
                f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                f"{GITHUB_OIDC_HOST}:sub": f"repo:{REPOSITORY}:environment:{environment}",
            }
        },
        "Effect": "Allow",
        "Principal": {"Federated": {"Ref": provider_id}},
    }, logical_id
    assert role["Properties"]["MaxSessionDuration"] == 3600
    assert "Policies" not in role["Properties"], "no inline policies"


@pytest.mark.parametrize("construct_id", ROLES)
def test_roles_refuse_other_subjects(target, construct_id):
    deploy_target, template = target
    _, role = _role(template, construct_id)
    own = (
        deploy_target.migration_github_environment
        if construct_id == "MigrateRole"
        else deploy_target.github_environment
    )
    assert can_assume(role, token(f"repo:{REPOSITORY}:environment:{own}"))
    refused = [
        f"repo:{REPOSITORY}:ref:refs/heads/main",  # a job without an environment
        f"repo:{REPOSITORY}:pull_request",
        f"repo:{REPOSITORY}:environment:{own}-copy",
        f"repo:{REPOSITORY}x:environment:{own}",
        f"repo:someone-else/{DEPLOYMENT.github_repository}:environment:{own}",
        *(
            f"repo:{REPOSITORY}:environment:{name}"
            for t in DEPLOYMENT.targets
            for name in (t.github_environment, t.migration_github_environment)
            if name != own
        ),
    ]
    for subject in refused:
        assert not can_assume(role, token(subject)), subject
    assert not can_assume(
        role, token(f"repo:{REPOSITORY}:environment:{own}", audience="https://github.com/x")
    )


def test_production_roles_cannot_be_assumed_from_the_staging_environment(synthesized_app):
    production = _template(synthesized_app, "Production")
    for construct_id in ROLES:
        _, role = _role(production, construct_id)
        for name in ("staging", "staging-migration"):
            assert not can_assume(role, token(f"repo:{REPOSITORY}:environment:{name}")), (construct_id, name)


def _policy_statements(template: dict[str, Any], construct_id: str) -> tuple[list[dict[str, Any]], list[Any]]:
    (policy,) = [
        p for logical_id, p in _resources(template, "AWS::IAM::ManagedPolicy").items()
        if logical_id.startswith(f"GitHub{construct_id}")
    ]  # fmt: skip
    return policy["Properties"]["PolicyDocument"]["Statement"], policy["Properties"]["Roles"]


def test_deploy_role_may_only_assume_the_cdk_bootstrap_roles(target):
    deploy_target, template = target
    account, region = deploy_target.environment.account, deploy_target.environment.region
    statements, roles = _policy_statements(template, "DeployPolicy")
    deploy_role_id, _ = _role(template, "DeployRole")
    assert roles == [{"Ref": deploy_role_id}]
    assert statements == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Resource": [
                f"arn:aws:iam::{account}:role/cdk-hnb659fds-{kind}-role-{account}-{region}"
                for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
            ],
            "Sid": "AssumeCdkBootstrapRoles",
        }
    ]
    # Nothing else grants the deploy role anything: one managed policy, no inline policy resource.
    attached = [
        p for p in _resources(template, "AWS::IAM::ManagedPolicy").values()
        if {"Ref": deploy_role_id} in p["Properties"].get("Roles", [])
    ]  # fmt: skip
    assert len(attached) == 1
    assert not _resources(template, "AWS::IAM::Policy")


def test_smoke_role_reads_and_invokes_only_the_environment(target):
    deploy_target, template = target
    env = deploy_target.environment
    prefix = f"{env.region}:{env.account}"
    statements, _ = _policy_statements(template, "SmokePolicy")
    assert {(s["Action"], s["Resource"]) for s in statements} == {
        ("cloudformation:DescribeStacks", f"arn:aws:cloudformation:{prefix}:stack/{env.stage_id}-*/*"),
        (
            "states:DescribeStateMachine",
            f"arn:aws:states:{prefix}:stateMachine:revenuepilot-{env.name}-migration-runbook",
        ),
        ("lambda:InvokeFunction", f"arn:aws:lambda:{prefix}:function:{env.stage_id}-Data-*"),
    }


def test_migrate_role_starts_and_follows_only_the_runbook(target):
    deploy_target, template = target
    env = deploy_target.environment
    prefix = f"{env.region}:{env.account}"
    runbook = f"revenuepilot-{env.name}-migration-runbook"
    statements, _ = _policy_statements(template, "MigratePolicy")
    assert {(json.dumps(s["Action"]), s["Resource"]) for s in statements} == {
        ('"states:StartExecution"', f"arn:aws:states:{prefix}:stateMachine:{runbook}"),
        (
            '["states:DescribeExecution", "states:GetExecutionHistory"]',
            f"arn:aws:states:{prefix}:execution:{runbook}:*",
        ),
        ('"rds:DescribeDBSnapshots"', f"arn:aws:rds:{prefix}:snapshot:pre-migration-*"),
    }


def test_deploy_access_stacks_are_separate_from_what_the_pipeline_deploys(synthesized_app):
    """`cdk deploy 'Staging/*'` (the pipeline) must not select the roles it runs as."""
    from tools.assembly import stack_artifacts

    artifacts = stack_artifacts(synthesized_app.directory)
    access = {name: a for name, a in artifacts.items() if a.environment == "DeployAccess"}
    assert {a.stack_name for a in access.values()} == {"DeployAccess-Staging", "DeployAccess-Production"}
    for pattern in ("Staging/*", "Production/*"):
        selected = fnmatch.filter(artifacts, pattern)
        assert selected and not set(selected) & set(access), pattern
    for config in ENVIRONMENTS:
        manifest = synthesized_app.stack_manifest("DeployAccess", config.stage_id)
        assert manifest["environment"] == f"aws://{config.account}/{config.region}"
        assert manifest["properties"]["terminationProtection"] is True


def test_stack_outputs_name_the_roles_the_workflows_assume(target):
    from tools.deploy_target import target_outputs

    deploy_target, template = target
    outputs = target_outputs(DEPLOYMENT, deploy_target.environment.name)
    for output, construct_id, key in (
        ("DeployRoleArn", "DeployRole", "deploy_role_arn"),
        ("SmokeRoleArn", "SmokeRole", "smoke_role_arn"),
        ("MigrateRoleArn", "MigrateRole", "migrate_role_arn"),
    ):
        logical_id, role = _role(template, construct_id)
        assert template["Outputs"][output]["Value"] == {"Fn::GetAtt": [logical_id, "Arn"]}
        assert outputs[key].endswith(f":role/{role['Properties']['RoleName']}")
        assert f":{deploy_target.environment.account}:" in outputs[key]
