"""tools/smoke.py against moto: the checks the deploy workflow runs after each environment's deploy."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from config.environments import STAGING
from tests.support.aws import use_fake_aws_credentials
from tests.support.synth import SynthesizedApp
from tools import smoke

REGION = STAGING.region


def rendered(definition: Any) -> str:
    """What CloudFormation would deploy: every resolved value replaced by a plausible ARN."""
    if isinstance(definition, str):
        return definition
    if "Fn::Join" in definition:
        separator, items = definition["Fn::Join"]
        return separator.join(rendered(item) for item in items)
    return f"arn:aws:lambda:{REGION}:{STAGING.account}:function:resolved"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_aws_credentials(monkeypatch, region=REGION)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", STAGING.account)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield boto3.session.Session(region_name=REGION).client


def deploy_outputs(
    clients: Any, synthesized_app: SynthesizedApp, extra: dict[str, dict[str, str]] | None = None
) -> None:
    """Create each Staging stack in moto with the outputs its synthesized template declares."""
    cloudformation = clients("cloudformation")
    for artifact in smoke.environment_stacks(synthesized_app.directory, STAGING):
        outputs = {key: {"Value": "deployed"} for key in artifact.template().get("Outputs", {})}
        outputs.update({k: {"Value": v} for k, v in (extra or {}).get(artifact.stack, {}).items()})
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
        cloudformation.create_stack(StackName=artifact.stack_name, TemplateBody=json.dumps(template))


def deploy_runbook(clients: Any, synthesized_app: SynthesizedApp, tamper: bool = False) -> None:
    stacks = smoke.environment_stacks(synthesized_app.directory, STAGING)
    definition = rendered(smoke.synthesized_definition(stacks, "revenuepilot-staging-migration-runbook"))
    if tamper:
        definition = definition.replace('"MaxAttempts":3', '"MaxAttempts":0', 1)
        assert '"MaxAttempts":0' in definition
    role = clients("iam").create_role(RoleName="runbook", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    clients("stepfunctions").create_state_machine(
        name="revenuepilot-staging-migration-runbook", definition=definition, roleArn=role
    )


def credentials_check_function(clients: Any) -> str:
    role = clients("iam").create_role(RoleName="check", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {'ok': True}\n")
    name = "Staging-Data-CredentialsCheck1A2B3C"
    clients("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )
    return name


def by_name(results: list[smoke.CheckResult]) -> dict[str, smoke.CheckResult]:
    return {r.name: r for r in results}


def test_a_healthy_deploy_passes_every_check(aws, synthesized_app, tmp_path: Path):
    function = credentials_check_function(aws)
    deploy_outputs(aws, synthesized_app, {"Data": {"CredentialsCheckFunctionName": function}})
    deploy_runbook(aws, synthesized_app)
    summary = tmp_path / "summary.md"
    code = smoke.main(["--env", "staging", "--assembly", str(synthesized_app.directory), "--summary", str(summary)],
                      clients=aws)  # fmt: skip
    text = summary.read_text()
    assert code == 0, text
    from tools.assembly import stack_artifacts

    staging_stacks = [n for n in stack_artifacts(synthesized_app.directory) if n.startswith("Staging/")]
    assert f"| Stack outputs | ✅ passed | {len(staging_stacks)} stacks" in text
    assert f"| Credentials check | ✅ passed | {function} answered" in text
    assert "| Runbook definition | ✅ passed |" in text
    assert "| `ops migrate --dry-run` | ✅ passed | state machine: arn:aws:states:" in text


def test_the_data_stack_names_the_credentials_check(synthesized_app):
    data = next(a for a in smoke.environment_stacks(synthesized_app.directory, STAGING) if a.stack == "Data")
    output = data.template()["Outputs"][smoke.CREDENTIALS_CHECK_OUTPUT]
    function_ids = [
        k for k, v in data.template()["Resources"].items() if v["Type"] == "AWS::Lambda::Function"
    ]
    assert output["Value"]["Ref"] in function_ids
    assert output["Value"]["Ref"].startswith("CredentialsCheck")


def test_a_missing_credentials_check_output_fails(aws):
    result = smoke.check_credentials(aws("lambda"), {})
    assert result.status == smoke.FAILED
    assert "no output CredentialsCheckFunctionName" in result.detail


class _MissingFunction:
    """moto's docker-free Lambda answers for any function name, so the missing function is a fake."""

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        error = {"Error": {"Code": "ResourceNotFoundException", "Message": "Function not found"}}
        raise ClientError(error, "Invoke")


def test_an_uninvocable_credentials_check_fails_with_the_error_code():
    result = smoke.check_credentials(_MissingFunction(), {"CredentialsCheckFunctionName": "Staging-Data-X"})
    assert result.status == smoke.FAILED
    assert result.detail == "Staging-Data-X could not be invoked: ResourceNotFoundException"


def test_missing_stacks_and_outputs_fail(aws, synthesized_app):
    deploy_outputs(aws, synthesized_app)
    aws("cloudformation").delete_stack(StackName="Staging-Monitoring")
    stacks = smoke.environment_stacks(synthesized_app.directory, STAGING)
    result, _ = smoke.check_outputs(aws("cloudformation"), stacks)
    assert result.status == smoke.FAILED
    assert "Staging-Monitoring is not deployed" in result.detail

    aws("cloudformation").delete_stack(StackName="Staging-Data")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"EndpointPort": {"Value": "5432"}},
    }
    aws("cloudformation").create_stack(StackName="Staging-Data", TemplateBody=json.dumps(template))
    result, _ = smoke.check_outputs(aws("cloudformation"), stacks)
    assert (
        "Staging-Data lacks ApplicationSecretArn, CredentialsCheckFunctionName, DatabaseSecurityGroupId,"
        in result.detail
    )


def test_a_runbook_that_differs_from_the_synthesized_one_fails(aws, synthesized_app):
    deploy_runbook(aws, synthesized_app, tamper=True)
    stacks = smoke.environment_stacks(synthesized_app.directory, STAGING)
    result = smoke.check_runbook(aws("stepfunctions"), stacks, STAGING)
    assert result.status == smoke.FAILED
    assert "differs" in result.detail


class _FailingLambda:
    """A function error: moto's docker-free Lambda only echoes the event, so this one is a plain fake."""

    def __init__(self, error: str | None, body: bytes) -> None:
        self.error, self.body = error, body

    def invoke(self, **_: Any) -> dict[str, Any]:
        response: dict[str, Any] = {"Payload": io.BytesIO(self.body), "StatusCode": 200}
        if self.error:
            response["FunctionError"] = self.error
        return response


@pytest.mark.parametrize(
    ("error", "body", "expected"),
    [
        ("Unhandled", b'{"errorMessage": "timeout"}', "raised Unhandled"),
        (None, b'{"ok": false, "failed": ["app_user"]}', "reported a failure"),
        (None, b'{"status": "FAILED"}', "reported a failure"),
        (
            None,
            b'{"healthy": false, "repaired": [], "problems": ["app_user: AWSCURRENT refused"]}',
            "reported a failure",
        ),
    ],
)
def test_a_red_credentials_check_fails(error, body, expected):
    result = smoke.check_credentials(_FailingLambda(error, body), {"CredentialsCheckFunctionName": "f"})
    assert result.status == smoke.FAILED
    assert expected in result.detail


def test_a_failing_dry_run_fails():
    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert command[1:] == ["-m", "ops", "migrate", "--env", "staging", "--dry-run"]
        return subprocess.CompletedProcess(command, 2, stdout="", stderr="usage: ...")

    result = smoke.check_migration_dry_run(STAGING, run)
    assert result.status == smoke.FAILED and "exit 2" in result.detail


def test_definition_pattern_treats_resolved_values_as_wildcards():
    pattern = smoke.definition_pattern({"Fn::Join": ["", ['{"R":"', {"Ref": "Fn"}, '","S":"${Sub}"}']]})
    assert pattern.fullmatch('{"R":"arn:aws:lambda:x","S":"anything"}')
    assert not pattern.fullmatch('{"R":"arn:aws:lambda:x","S":"anything","T":1}')


def test_the_production_dry_run_passes_a_full_revision_id_and_succeeds():
    """Production refuses `head` (exact revision ids only): the smoke check's dry run must still pass."""
    from config.environments import PRODUCTION

    result = smoke.check_migration_dry_run(PRODUCTION)  # runs `python -m ops` for real (no AWS call)
    assert result.status == smoke.PASSED, result.detail
    assert "revenuepilot-production-migration-runbook" in result.detail
