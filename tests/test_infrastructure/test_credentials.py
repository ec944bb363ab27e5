"""The two-user application secret, its bootstrap and its rotation, as synthesized."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from assets.lambda_bundle import CA_BUNDLE_PATH

# `MasterUserSecret.SecretArn` of the instance: the RDS-managed master secret.
MASTER_SECRET_ARN = {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "MasterUserSecret.SecretArn"]}


def _one(env, stack_id, resource_type, prefix):
    matches = {k: v for k, v in env.resources(stack_id, resource_type).items() if k.startswith(prefix)}
    assert len(matches) == 1, (prefix, list(matches))
    return next(iter(matches.items()))


def _secret(env):
    return _one(env, "Data", "AWS::SecretsManager::Secret", "ApplicationCredentialsSecret")


def test_application_secret_has_the_ops_guide_shape_and_no_password(env):
    _, secret = _secret(env)
    props = secret["Properties"]
    assert props["Name"] == env.config.database.application_secret_name
    assert props["KmsKeyId"] == {"Fn::GetAtt": ["DatabaseKey7998E78F", "Arn"]}
    assert secret["DeletionPolicy"] == "Retain"
    # Static values only: a CloudFormation update of the value would drop the bootstrap's passwords.
    assert json.loads(props["SecretString"]) == {
        "port": 5432,
        "database": env.config.database.database_name,
        "migration": {"username": "migration"},
        "app_user": {"username": "app_user"},
    }


# The rotation schedule's logical id: renaming it would replace the schedule (and rotate at once).
ROTATION_SCHEDULE_ID = "ApplicationCredentialsRotationScheduleBD8C410C"
# Ops guide: both credentials rotate every 90 or 120 days; README: every 90 days.
ROTATION_EXPRESSION = "rate(90 days)"
# Logs of a HIPAA workload: at least a year; production keeps six years (documentation retention).
MINIMUM_LOG_RETENTION_DAYS = {"staging": 365, "production": 2192}


def test_rotation_runs_every_90_days_after_the_bootstrap(env):
    secret_id, _ = _secret(env)
    (schedule_id, schedule) = _one(
        env, "Data", "AWS::SecretsManager::RotationSchedule", "ApplicationCredentials"
    )
    function_id, _ = _one(env, "Data", "AWS::Lambda::Function", "ApplicationCredentialsRotationFunction")
    assert schedule["Properties"] == {
        "SecretId": {"Ref": secret_id},
        "RotationLambdaARN": {"Fn::GetAtt": [function_id, "Arn"]},
        "RotationRules": {
            "ScheduleExpression": ROTATION_EXPRESSION,
            "Duration": "3h",
        },
        "RotateImmediatelyOnUpdate": False,
    }
    bootstrap_id, _ = _one(env, "Data", "Custom::DatabaseRoles", "ApplicationCredentialsBootstrapResource")
    assert bootstrap_id in schedule["DependsOn"]
    assert schedule_id == ROTATION_SCHEDULE_ID


def test_only_secrets_manager_for_this_secret_in_this_account_may_invoke_the_rotation(env):
    secret_id, _ = _secret(env)
    function_id, _ = _one(env, "Data", "AWS::Lambda::Function", "ApplicationCredentialsRotationFunction")
    permissions = [
        p["Properties"]
        for p in env.resources("Data", "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "Principal": "secretsmanager.amazonaws.com",
            "SourceAccount": env.config.account,
            "SourceArn": {"Ref": secret_id},
        }
    ]


def test_bootstrap_custom_resource_gets_both_secrets_and_the_schemas(env):
    secret_id, _ = _secret(env)
    _, resource = _one(env, "Data", "Custom::DatabaseRoles", "ApplicationCredentialsBootstrapResource")
    props = resource["Properties"]
    assert props["AppSecretArn"] == {"Ref": secret_id}
    assert props["MasterSecretArn"] == MASTER_SECRET_ARN
    assert props["Schemas"] == list(env.config.database.application_schemas)
    assert props["Endpoint"] == {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "Endpoint.Address"]}
    assert props["Port"] == {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "Endpoint.Port"]}
    assert json.loads(props["SecretTemplate"])["database"] == env.config.database.database_name
    assert resource["DeletionPolicy"] == "Retain"
    assert "DatabaseInstanceAA8A5FDE" in resource["DependsOn"]


def test_credential_functions_are_isolated_concurrency_one_on_the_newest_runtime(env):
    for prefix, handler in (
        ("ApplicationCredentialsRotationFunction", "lambdas.secret_rotation.handler.lambda_handler"),
        ("ApplicationCredentialsBootstrapFunction", "lambdas.db_bootstrap.handler.on_event"),
    ):
        _, function = _one(env, "Data", "AWS::Lambda::Function", prefix)
        props = function["Properties"]
        assert props["Handler"] == handler
        assert props["Runtime"] == "python3.14"
        assert props["ReservedConcurrentExecutions"] == 1
        assert all("OperationsSubnet" in str(s) for s in props["VpcConfig"]["SubnetIds"])
        log_group = env.raw["Data"]["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["DatabaseKey7998E78F", "Arn"]}
        retention = log_group["Properties"]["RetentionInDays"]
        assert retention >= MINIMUM_LOG_RETENTION_DAYS[env.config.name], prefix
        assert retention == env.config.database.log_retention_days
        assert "Variables" not in props.get("Environment", {}) or not any(
            "password" in key.lower() for key in props["Environment"]["Variables"]
        )
    _, rotation = _one(env, "Data", "AWS::Lambda::Function", "ApplicationCredentialsRotationFunction")
    assert rotation["Properties"]["Environment"]["Variables"]["MASTER_SECRET_ARN"] == MASTER_SECRET_ARN
    for prefix in ("ApplicationCredentialsRotationFunction", "ApplicationCredentialsBootstrapFunction"):
        _, function = _one(env, "Data", "AWS::Lambda::Function", prefix)
        # The endpoint comes from the instance, never from a (possibly stale) secret value.
        assert {
            k: v for k, v in function["Properties"]["Environment"]["Variables"].items() if k.startswith("DB_")
        } == {
            "DB_HOST": {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "Endpoint.Address"]},
            "DB_PORT": {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "Endpoint.Port"]},
        }


def _endpoints_security_group_id(env):
    """The Network stack's security group in front of the interface endpoints."""
    (logical_id,) = [
        logical_id
        for logical_id, group in env.resources("Network", "AWS::EC2::SecurityGroup").items()
        if group["Properties"]["GroupDescription"].startswith("Interface endpoints")
    ]
    return logical_id


def test_credential_function_egress_is_postgres_to_the_database_and_https_to_endpoints(env):
    # Required: TCP 5432 to the database's security group, TCP 443 to the interface endpoints'
    # security group (exported by the Network stack), nothing else (no CIDR, no other port).
    endpoints_output = f"PublishOutputFnGetAtt{_endpoints_security_group_id(env)}GroupId"
    for prefix in (
        "ApplicationCredentialsRotationSecurityGroup",
        "ApplicationCredentialsBootstrapSecurityGroup",
    ):
        _, group = _one(env, "Data", "AWS::EC2::SecurityGroup", prefix)
        egress = group["Properties"]["SecurityGroupEgress"]
        assert len(egress) == 2, (prefix, egress)
        postgres, https = sorted(egress, key=lambda rule: -rule["FromPort"])
        assert {k: v for k, v in postgres.items() if k != "Description"} == {
            "IpProtocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "DestinationSecurityGroupId": {"Fn::GetAtt": ["DatabaseSecurityGroup5C91FDCB", "GroupId"]},
        }, prefix
        https_target = https["DestinationSecurityGroupId"]["Fn::GetStackOutput"]
        assert {k: v for k, v in https.items() if k not in ("Description", "DestinationSecurityGroupId")} == {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
        }, prefix
        assert https_target["StackName"] == f"{env.config.stage_id}-Network"
        assert https_target["Region"] == env.config.region
        assert https_target["OutputName"].startswith(endpoints_output), https_target


def _statements_granting(env, action, resource_fragment):
    """(stack, policy logical id) of every IAM policy that allows `action` on a resource containing the fragment."""
    found = set()
    for stack_id, template in env.raw.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] not in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                continue
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                if action in actions and resource_fragment in json.dumps(statement["Resource"]):
                    found.add((stack_id, logical_id))
    return found


def test_only_the_credential_functions_and_application_tasks_read_the_application_secret(env):
    secret_id, _ = _secret(env)
    readers = _statements_granting(env, "secretsmanager:GetSecretValue", secret_id)
    readers |= _statements_granting(env, "secretsmanager:GetSecretValue", "ApplicationCredentialsSecret")
    expected = {
        ("Data", "ApplicationCredentialsBootstrapPolicy"),
        ("Data", "ApplicationCredentialsRotationPolicy"),
        ("Data", "CredentialsCheckPolicy"),
        ("ApplicationAccess", "RuntimeContractReadPolicy"),
        ("Migration", "MigrationTaskSecretReadPolicy"),
    }
    assert {(stack, logical_id.rstrip("0123456789ABCDEF")) for stack, logical_id in readers} <= expected
    assert ("ApplicationAccess", "RuntimeContractReadPolicy") in {
        (stack, logical_id.rstrip("0123456789ABCDEF")) for stack, logical_id in readers
    }


def test_application_task_role_attaches_the_read_policy(env):
    env["ApplicationAccess"].has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {"Roles": [{"Ref": Match.string_like_regexp("^TaskRole")}]},
    )


def test_lambda_bundle_carries_code_dependencies_and_the_region_ca_bundle(synthesized_app, env):
    _, rotation = _one(env, "Data", "AWS::Lambda::Function", "ApplicationCredentialsRotationFunction")
    asset_hash = rotation["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    bundle = synthesized_app.directory / f"asset.{asset_hash}"
    assert (bundle / "lambdas" / "secret_rotation" / "handler.py").is_file()
    assert (bundle / "lambdas" / "common" / "tls.py").is_file()
    assert not (bundle / "lambdas" / "db_bootstrap").exists()
    assert (bundle / "pg8000").is_dir() and (bundle / "aws_lambda_powertools").is_dir()
    ca_bundle = (bundle / CA_BUNDLE_PATH).read_text()
    assert f"Amazon RDS {env.config.region} Root CA RSA2048 G1" in ca_bundle
    assert ca_bundle.count("BEGIN CERTIFICATE") >= 1
    assert not list(bundle.rglob("__pycache__"))
