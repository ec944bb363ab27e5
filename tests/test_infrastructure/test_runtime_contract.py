"""The runtime contract in the ApplicationAccess stack: every parameter, its value, and the one read policy."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from constructs.runtime_contract import runtime_path

EXPECTED_VALUES = {
    "staging": {
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/etc/revenuepilot/certs/rds-ca-rsa2048-g1.pem",
        "PGCONNECT_TIMEOUT": "10",
        "DB_POOL_SIZE_WEB": "10",
        "DB_POOL_SIZE_WORKER": "2",
        "DB_MAX_OVERFLOW": "5",
        "DB_POOL_RECYCLE_SECONDS": "900",
        "DB_STATEMENT_TIMEOUT_MS": "30000",
        "DB_HEALTHCHECK_TIMEOUT_MS": "5000",
        "DATABASE_SECRET_NAME": "revenuepilot/staging/database",
        # The NAME of the maintenance-mode flag the runbook sets (absent flag = off).
        "MAINTENANCE_MODE_PARAMETER": "/revenuepilot/staging/maintenance-mode",
    },
    "production": {
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/etc/revenuepilot/certs/rds-ca-rsa2048-g1.pem",
        "PGCONNECT_TIMEOUT": "10",
        "DB_POOL_SIZE_WEB": "10",
        "DB_POOL_SIZE_WORKER": "2",
        "DB_MAX_OVERFLOW": "5",
        "DB_POOL_RECYCLE_SECONDS": "900",
        "DB_STATEMENT_TIMEOUT_MS": "30000",
        "DB_HEALTHCHECK_TIMEOUT_MS": "5000",
        "DATABASE_SECRET_NAME": "revenuepilot/prod/database",
        # The NAME of the maintenance-mode flag the runbook sets (absent flag = off).
        "MAINTENANCE_MODE_PARAMETER": "/revenuepilot/production/maintenance-mode",
    },
}


def _parameters(env):
    return {
        resource["Properties"]["Name"]: resource
        for resource in env.resources("ApplicationAccess", "AWS::SSM::Parameter").values()
    }


def _secret_arn_value(env):
    path = f"/revenuepilot/{env.config.name}/database/runtime/DATABASE_SECRET_ARN"
    return _parameters(env)[path]["Properties"]["Value"]


def test_every_parameter_and_its_value(env):
    path = f"/revenuepilot/{env.config.name}/database/runtime"
    assert runtime_path(env.config) == path
    parameters = _parameters(env)
    expected = {f"{path}/{name}": value for name, value in EXPECTED_VALUES[env.config.name].items()}
    assert set(parameters) == {*expected, f"{path}/DATABASE_SECRET_ARN"}
    for name, value in expected.items():
        properties = parameters[name]["Properties"]
        assert (properties["Type"], properties["Tier"], properties["Value"]) == ("String", "Standard", value)
        assert "not a secret" in properties["Description"]


def test_the_secret_arn_parameter_is_the_application_secrets_arn(env):
    value = _secret_arn_value(env)
    # A cross-stack reference to the Data stack's application secret (its Ref is the ARN).
    assert "Staging-Data" in str(value) or "Production-Data" in str(value)
    assert "ApplicationCredentialsSecret" in str(value)


def test_no_parameter_holds_a_secret_or_a_secure_string(env):
    for resource in _parameters(env).values():
        assert resource["Properties"]["Type"] == "String"
        assert "password" not in str(resource["Properties"]["Value"]).lower()


def test_one_read_policy_with_exactly_these_statements(env):
    policies = env.resources("ApplicationAccess", "AWS::IAM::ManagedPolicy")
    assert [logical_id.rstrip("0123456789ABCDEF") for logical_id in policies] == ["RuntimeContractReadPolicy"]
    (policy,) = policies.values()
    account, region, name = env.config.account, env.config.region, env.config.name
    prefix = f"arn:aws:ssm:{region}:{account}:parameter/revenuepilot/{name}/database/runtime"
    parameter_arns = sorted(
        [prefix]
        + [f"{prefix}/{parameter}" for parameter in [*EXPECTED_VALUES[name], "DATABASE_SECRET_ARN"]]
        # the application reads the maintenance-mode flag too (read-only, like everything here)
        + [f"arn:aws:ssm:{region}:{account}:parameter/revenuepilot/{name}/maintenance-mode"]
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert len(statements) == 3
    ssm, secrets, kms = statements
    assert ssm == {
        "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
        "Effect": "Allow",
        "Resource": parameter_arns,
    }
    assert secrets["Action"] == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert secrets["Effect"] == "Allow"
    assert secrets["Resource"] == _secret_arn_value(env)
    assert kms["Action"] == "kms:Decrypt"
    assert kms["Effect"] == "Allow"
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}
    assert "DatabaseKey" in str(kms["Resource"])
    assert set(ssm) | set(secrets) | set(kms) <= {"Action", "Effect", "Resource", "Condition"}


def test_the_policy_is_attached_to_the_task_role(env):
    env["ApplicationAccess"].has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("^TaskRole")}],
            "PolicyDocument": Match.object_like(
                {"Statement": Match.array_with([Match.object_like({"Action": "kms:Decrypt"})])}
            ),
        },
    )
    (role_id,) = env.resources("ApplicationAccess", "AWS::IAM::Role")
    assert role_id.startswith("TaskRole")
    (policy,) = env.resources("ApplicationAccess", "AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]


@pytest.mark.parametrize(
    "action", ["ssm:PutParameter", "ssm:DeleteParameter", "secretsmanager:PutSecretValue"]
)
def test_the_policy_grants_no_writes(env, action):
    (policy,) = env.resources("ApplicationAccess", "AWS::IAM::ManagedPolicy").values()
    assert action not in str(policy["Properties"]["PolicyDocument"])
