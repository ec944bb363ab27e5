"""The runbook's records in the templates: the evidence bucket (Data stack), the state machine's scoped
grants, production's `Credentials` role ARN and staging's reader role (Migration stacks).

moto's Step Functions interpreter ignores a task's `Credentials` (tests/test_runbook/test_runbook_records.py
runs production's check in one account); what makes the cross-account read safe is proven here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.environments import PRODUCTION, STAGING

READER_ROLE_ARN = f"arn:aws:iam::{STAGING.account}:role/revenuepilot-staging-migration-applied-reader"
PRODUCTION_RUNBOOK_ROLE_ARN = (
    f"arn:aws:iam::{PRODUCTION.account}:role/revenuepilot-production-migration-runbook"
)


def _only(items: dict[str, Any]) -> tuple[str, Any]:
    assert len(items) == 1, list(items)
    return next(iter(items.items()))


def _buckets(env: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        resource["Properties"]["BucketName"]: (logical_id, resource)
        for logical_id, resource in env.resources("Data", "AWS::S3::Bucket").items()
    }


def _definition(env: Any) -> dict[str, Any]:
    _, machine = _only(env.resources("Migration", "AWS::StepFunctions::StateMachine"))
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return dict(json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts)))


def _runbook_statements(env: Any) -> list[dict[str, Any]]:
    policies = env.resources("Migration", "AWS::IAM::Policy")
    policy = next(p for logical_id, p in policies.items() if logical_id.startswith("RunbookStateMachineRole"))
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_the_evidence_bucket_locks_each_record_for_the_configured_mode_and_days(env):
    config = env.config
    name = f"revenuepilot-{config.name}-evidence-{config.account}-{config.region}"
    logical_id, bucket = _buckets(env)[name]
    assert logical_id == "MigrationEvidenceBucket5005091C"  # pinned: a new id would replace the bucket
    props = bucket["Properties"]
    assert props["ObjectLockEnabled"] is True
    mode, days = ("COMPLIANCE", 2192) if config.name == "production" else ("GOVERNANCE", 365)
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "KMSMasterKeyID": {"Fn::GetAtt": ["DatabaseKey7998E78F", "Arn"]},
                "SSEAlgorithm": "aws:kms",
            },
        }
    ]
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    log_bucket = f"revenuepilot-{config.name}-access-logs-{config.account}-{config.region}"
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": _buckets(env)[log_bucket][0]}
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


def test_both_buckets_refuse_requests_without_tls_and_are_retained(env):
    policies = env.resources("Data", "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
        }.items() <= statements[0].items()
        assert policy["DeletionPolicy"] == "Retain"
    for _, bucket in _buckets(env).values():
        assert bucket["DeletionPolicy"] == "Retain"


def test_the_key_lets_s3_use_it_for_the_evidence_bucket(env):
    _, key = _only(env.resources("Data", "AWS::KMS::Key"))
    statement = next(
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AccountPrincipalsUseKeyThroughServices"
    )
    assert f"s3.{env.config.region}.amazonaws.com" in statement["Condition"]["StringEquals"]["kms:ViaService"]


def test_the_runbook_role_may_only_put_evidence_under_its_prefix_and_write_its_own_parameters(env):
    config = env.config
    statements = _runbook_statements(env)
    s3 = [s for s in statements if any(str(a).startswith("s3:") for a in _actions(s))]
    assert s3 == [
        {
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Resource": f"arn:aws:s3:::revenuepilot-{config.name}-evidence-{config.account}-{config.region}"
            f"/migrations/{config.name}/*",
        }
    ]
    kms_via_s3 = [s for s in statements if "kms:ViaService" in json.dumps(s) and "s3." in json.dumps(s)]
    assert [s["Action"] for s in kms_via_s3] == ["kms:GenerateDataKey"]
    ssm = [s for s in statements if any(str(a).startswith("ssm:") for a in _actions(s))]
    parameter = f"arn:aws:ssm:{config.region}:{config.account}:parameter/revenuepilot/{config.name}"
    # Read (is an operator's flag on?) and write the maintenance flag; write (staging) its applied records.
    expected: list[tuple[Any, list[str]]] = [
        (["ssm:GetParameter", "ssm:PutParameter"], [f"{parameter}/maintenance-mode"])
    ]
    if config.name == "staging":
        expected.append(("ssm:PutParameter", [f"{parameter}/migration/applied/*"]))
    assert [
        (s["Action"], s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]) for s in ssm
    ] == expected
    assume = [s for s in statements if "sts:AssumeRole" in _actions(s)]
    if config.name == "production":
        assert [s["Resource"] for s in assume] == [READER_ROLE_ARN]
    else:
        assert assume == []


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_the_runbook_role_has_the_name_the_reader_role_trusts(env):
    roles = env.resources("Migration", "AWS::IAM::Role")
    names = {r["Properties"].get("RoleName") for r in roles.values()}
    assert f"revenuepilot-{env.config.name}-migration-runbook" in names
    assert roles["RunbookStateMachineRoleAB6A59E5"]["Properties"]["RoleName"] == (
        f"revenuepilot-{env.config.name}-migration-runbook"
    )


def test_production_reads_the_staging_record_with_the_reader_roles_credentials(environments):
    production = _definition(environments["production"])
    check = production["States"]["CheckRevisionAppliedFirst"]
    assert check["Resource"].endswith(":states:::aws-sdk:ssm:getParameter")
    assert check["Credentials"] == {"RoleArn": READER_ROLE_ARN}
    assert "/revenuepilot/staging/migration/applied/" in check["Arguments"]["Name"]
    assert production["States"]["PlanMigration"]["Next"] == "CheckRevisionAppliedFirst"
    assert check["Next"] == "CheckAppliedState"
    assert production["States"]["CheckAppliedState"]["Default"] == "ListRunningExecutions"
    assert [c["ErrorEquals"] for c in check["Catch"]] == [
        ["Ssm.ParameterNotFoundException"], ["States.QueryEvaluationError"], ["States.ALL"],
    ]  # fmt: skip
    # Only validated fields of the record are kept: never the value itself.
    assert "$parse($p.Value)" in check["Assign"]["appliedCheck"]
    assert '"record"' not in check["Assign"]["appliedCheck"]
    assert (
        "$contains($states.input.revision, /^[0-9a-f]{12,40}$/)"
        in production["States"]["ValidateInput"]["Choices"][0]["Condition"]
    )
    staging = _definition(environments["staging"])
    assert "CheckRevisionAppliedFirst" not in staging["States"]
    assert "RecordAppliedRevision" in staging["States"]
    assert "RecordAppliedRevision" not in production["States"]


def test_the_staging_reader_role_trusts_only_productions_runbook_and_may_only_read_records(environments):
    staging = environments["staging"]
    _, role = _only(
        {
            k: r
            for k, r in staging.resources("Migration", "AWS::IAM::Role").items()
            if "AppliedRevisionReader" in k
        }
    )
    props = role["Properties"]
    assert props["RoleName"] == "revenuepilot-staging-migration-applied-reader"
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{PRODUCTION.account}:root"},
            "Condition": {"ArnEquals": {"aws:PrincipalArn": [PRODUCTION_RUNBOOK_ROLE_ARN]}},
        }
    ]
    _, policy = _only(
        {
            k: p
            for k, p in staging.resources("Migration", "AWS::IAM::ManagedPolicy").items()
            if "AppliedRevision" in k
        }
    )
    assert policy["Properties"]["Roles"] == [{"Ref": "AppliedRevisionReaderRole3C9EDF74"}]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "ssm:GetParameter",
            "Effect": "Allow",
            "Resource": f"arn:aws:ssm:{STAGING.region}:{STAGING.account}:parameter/revenuepilot/staging/migration/applied/*",
        }
    ]
    production = environments["production"]
    assert not any("AppliedRevisionReader" in k for k in production.resources("Migration", "AWS::IAM::Role"))


@pytest.mark.parametrize("name", ["staging", "production"])
def test_the_maintenance_flag_is_not_owned_by_cloudformation(environments, name):
    """A deploy would reset it: the runbook and `ops maintenance` create it (absent = off)."""
    env = environments[name]
    for stack_id, template in env.raw.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SSM::Parameter":
                assert resource["Properties"]["Name"] != f"/revenuepilot/{name}/maintenance-mode", stack_id


def _status_change(status: str, state_machine_arn: str) -> Any:  # moto types it EventMessageType
    return {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": "arn:aws:states:::execution:x:y",
            "stateMachineArn": state_machine_arn,
            "status": status,
        },
    }


def test_a_runbook_that_times_out_or_is_stopped_alerts_the_topic(env):
    """TIMED_OUT and ABORTED run no failure path (no evidence, no notice, maintenance possibly on): a rule on
    the execution status change of this state machine tells the alert topic, with how to clear maintenance."""
    from moto.events.models import EventPattern

    name = env.config.name
    rules = {
        k: r for k, r in env.resources("Migration", "AWS::Events::Rule").items() if "EndedWithoutRecord" in k
    }
    _, rule = _only(rules)
    machine_id, _ = _only(env.resources("Migration", "AWS::StepFunctions::StateMachine"))
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine_id}]
    (target,) = rule["Properties"]["Targets"]
    assert "AlertsTopic" in target["Arn"]["Fn::GetStackOutput"]["OutputName"]  # the runbook's own topic
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "detail-executionArn": "$.detail.executionArn",
        "detail-status": "$.detail.status",
    }
    message = transformer["InputTemplate"]
    assert "without its evidence record" in message and "Maintenance mode may still be on" in message
    assert f"python -m ops maintenance --env {name} --off" in message
    # moto's EventBridge matcher, with the state machine's ARN in place of its Ref.
    arn = f"arn:aws:states:us-east-1:111111111111:stateMachine:revenuepilot-{name}-migration-runbook"
    matcher = EventPattern.load(
        json.dumps(pattern | {"detail": pattern["detail"] | {"stateMachineArn": [arn]}})
    )
    assert matcher.matches_event(_status_change("TIMED_OUT", arn))
    assert matcher.matches_event(_status_change("ABORTED", arn))
    for status in ("FAILED", "SUCCEEDED", "RUNNING"):  # the runbook's own path reports these
        assert not matcher.matches_event(_status_change(status, arn))
    assert not matcher.matches_event(_status_change("TIMED_OUT", arn + "-other"))
