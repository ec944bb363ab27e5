"""The periodic credentials check: function, schedule, least privilege and its alarms, as synthesized."""

from __future__ import annotations

import json
from typing import Any

MASTER_SECRET_ARN = {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "MasterUserSecret.SecretArn"]}
TOPIC = "AlertsTopicCF7C81C9"
NAMESPACE = "RevenuePilot/Database"
CHECK_INTERVAL_SECONDS = 15 * 60  # issue 11: every 15 minutes; a lasting fault alarms within one interval


def _one(env, stack_id: str, resource_type: str, prefix: str) -> tuple[str, dict[str, Any]]:
    matches = {k: v for k, v in env.resources(stack_id, resource_type).items() if k.startswith(prefix)}
    assert len(matches) == 1, (prefix, list(matches))
    return next(iter(matches.items()))


def _function(env) -> tuple[str, dict[str, Any]]:
    return _one(env, "Data", "AWS::Lambda::Function", "CredentialsCheckFunction")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _output(value: Any) -> str:
    return value["Fn::GetStackOutput"]["OutputName"]


def test_check_is_an_isolated_tls_client_that_never_overlaps_itself(env):
    _, function = _function(env)
    props = function["Properties"]
    assert props["Handler"] == "lambdas.credentials_check.handler.lambda_handler"
    assert props["Runtime"] == "python3.14"
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Timeout"] == 120
    assert all("OperationsSubnet" in str(s) for s in props["VpcConfig"]["SubnetIds"])
    log_group = env.raw["Data"]["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["DatabaseKey7998E78F", "Arn"]}
    assert log_group["Properties"]["RetentionInDays"] == env.config.database.log_retention_days
    assert log_group["DeletionPolicy"] == "Retain"
    # Egress: PostgreSQL to the database, HTTPS to the interface endpoints; nothing else.
    (group_ref,) = props["VpcConfig"]["SecurityGroupIds"]
    egress = env.raw["Data"]["Resources"][group_ref["Fn::GetAtt"][0]]["Properties"]["SecurityGroupEgress"]
    assert sorted(rule["FromPort"] for rule in egress) == [443, 5432]
    assert "EndpointsSecurityGroup" in json.dumps(egress) and "DatabaseSecurityGroup" in json.dumps(egress)


def test_check_environment_names_both_secrets_the_schemas_the_metrics_and_the_endpoint(env):
    _, function = _function(env)
    (app_secret_id,) = [
        k
        for k in env.resources("Data", "AWS::SecretsManager::Secret")
        if k.startswith("ApplicationCredentials")
    ]
    assert function["Properties"]["Environment"]["Variables"] == {
        "APP_SECRET_ARN": {"Ref": app_secret_id},
        "MASTER_SECRET_ARN": MASTER_SECRET_ARN,
        "APP_SCHEMAS": ",".join(env.config.database.application_schemas),
        "METRIC_NAMESPACE": NAMESPACE,
        "POWERTOOLS_SERVICE_NAME": "credentials-check",
        "DB_HOST": {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "Endpoint.Address"]},
        "DB_PORT": {"Fn::GetAtt": ["DatabaseInstanceAA8A5FDE", "Endpoint.Port"]},
    }


def test_check_runs_on_the_configured_schedule_without_retries(env):
    function_id, _ = _function(env)
    _, rule = _one(env, "Data", "AWS::Events::Rule", "CredentialsCheckSchedule")
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "rate(15 minutes)"
    assert props["State"] == "ENABLED"
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": CHECK_INTERVAL_SECONDS,
    }
    _, invoke_config = _one(env, "Data", "AWS::Lambda::EventInvokeConfig", "CredentialsCheckFunction")
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0
    assert invoke_config["Properties"]["MaximumEventAgeInSeconds"] == CHECK_INTERVAL_SECONDS
    # Only this rule may invoke it.
    (permission,) = [
        p
        for p in env.resources("Data", "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert permission["Properties"]["SourceArn"]["Fn::GetAtt"][0].startswith("CredentialsCheckSchedule")


def test_check_role_has_exactly_the_rotation_permissions_on_the_app_secret_and_reads_the_master(env):
    _, function = _function(env)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = env.raw["Data"]["Resources"][role_id]
    assert "Policies" not in role["Properties"] and "ManagedPolicyArns" in role["Properties"]
    (policy_ref,) = role["Properties"]["ManagedPolicyArns"]
    policy = env.raw["Data"]["Resources"][policy_ref["Ref"]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (app_secret_id,) = [
        k
        for k in env.resources("Data", "AWS::SecretsManager::Secret")
        if k.startswith("ApplicationCredentials")
    ]
    by_resource = {json.dumps(s["Resource"], sort_keys=True): s for s in statements}
    assert sorted(_as_list(by_resource[json.dumps({"Ref": app_secret_id})]["Action"])) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert _as_list(by_resource[json.dumps(MASTER_SECRET_ARN, sort_keys=True)]["Action"]) == [
        "secretsmanager:GetSecretValue"
    ]
    key = by_resource[json.dumps({"Fn::GetAtt": ["DatabaseKey7998E78F", "Arn"]}, sort_keys=True)]
    assert sorted(key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{env.config.region}.amazonaws.com"}
    }
    actions = {action for s in statements for action in _as_list(s["Action"])}
    # Nothing else: no other secret, no password generation, no CloudWatch API (metrics are EMF log lines).
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert {a for s in wildcard for a in _as_list(s["Action"])} <= {
        a for a in actions if a.startswith("ec2:")
    }


def _alarm(env, prefix: str) -> dict[str, Any]:
    _, alarm = _one(env, "Monitoring", "AWS::CloudWatch::Alarm", prefix)
    props = alarm["Properties"]
    assert props["AlarmActions"] == [{"Ref": TOPIC}] and props["OKActions"] == [{"Ref": TOPIC}]
    return props


def test_failed_check_alarms_on_the_first_failure(env):
    props = _alarm(env, "CredentialsCheckAlarmsCredentialsCheckFailed")
    assert (props["Namespace"], props["MetricName"]) == (NAMESPACE, "CredentialsCheckFailed")
    assert props["Dimensions"] == [{"Name": "Secret", "Value": env.config.database.application_secret_name}]
    assert props["Statistic"] == "Sum"
    assert props["Period"] == CHECK_INTERVAL_SECONDS
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["Threshold"] == 1 and props["EvaluationPeriods"] == 1
    assert props["TreatMissingData"] == "notBreaching"


def test_a_check_that_stops_running_alarms(env):
    props = _alarm(env, "CredentialsCheckAlarmsCredentialsCheckNotRunning")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", "Invocations")
    assert _output(props["Dimensions"][0]["Value"]).startswith("PublishOutputRefCredentialsCheckFunction")
    assert props["Statistic"] == "Sum"
    assert props["Period"] == CHECK_INTERVAL_SECONDS
    assert props["ComparisonOperator"] == "LessThanThreshold" and props["Threshold"] == 1
    assert props["EvaluationPeriods"] == 2 and props["DatapointsToAlarm"] == 2
    assert props["TreatMissingData"] == "breaching"


def test_check_errors_alarm(env):
    props = _alarm(env, "DatabaseAlarmsCredentialsCheckFunctionErrors")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", "Errors")
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
