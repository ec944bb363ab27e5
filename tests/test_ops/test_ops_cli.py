"""`python -m ops` against moto: Step Functions (executing a stand-in definition), RDS and STS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import boto3
import pytest
from moto import mock_aws

from config.environments import PRODUCTION
from contract.backend_image import BACKEND_IMAGE_LABEL
from ops.cli import main
from ops.image_check import configured_backend_image

REGION = PRODUCTION.region
SNAPSHOT = "pre-migration-2025-01-02-0304"
REV = "ae1027a6acf0"  # production accepts only full revision ids (config migration.require_applied_in)


def _definition(succeed: bool, task_definition: str) -> str:
    summary = {"environment": "production", "outcome": "succeeded", "action": "upgrade", "revision": "head",
               "snapshotId": SNAPSHOT, "validation": {"encounters": 2, "finalized_notes": 3}, "durationSeconds": 42}  # fmt: skip
    states: dict[str, Any] = {
        "DescribeDatabase": {"Type": "Pass", "Next": "CreateSnapshot"},
        "CreateSnapshot": {"Type": "Pass", "Next": "RunUpgrade"},
    }
    if succeed:
        states["RunUpgrade"] = {
            "Type": "Pass",
            "Parameters": {"TaskDefinition": task_definition},
            "Next": "NotifySuccess",
        }
        states["NotifySuccess"] = {"Type": "Pass", "Result": summary, "End": True}
    else:
        states["RunUpgrade"] = {
            "Type": "Pass",
            "Parameters": {"TaskDefinition": task_definition},
            "Next": "NotifyFailure",
        }
        states["NotifyFailure"] = {"Type": "Pass", "Next": "RunbookFailed"}
        states["RunbookFailed"] = {
            "Type": "Fail",
            "Error": "MigrationFailed",
            "Cause": "alembic upgrade head exited with status 1",
        }
    return json.dumps({"StartAt": "DescribeDatabase", "States": states})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "MOTO_ACCOUNT_ID": PRODUCTION.account}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        rds = boto3.client("rds", region_name=REGION)
        rds.create_db_instance(DBInstanceIdentifier=PRODUCTION.database.instance_identifier, Engine="postgres",
                               DBInstanceClass="db.t4g.large", AllocatedStorage=20, MasterUsername="rp_admin",
                               MasterUserPassword="not-a-real-password-1")  # fmt: skip
        rds.create_db_snapshot(
            DBInstanceIdentifier=PRODUCTION.database.instance_identifier, DBSnapshotIdentifier=SNAPSHOT
        )
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="runbook", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

        def deploy(succeed: bool, backend_image: str = configured_backend_image(PRODUCTION)) -> Any:
            """The Migration stack as deployed: a labelled task definition and the runbook that runs it."""
            task_definition = boto3.client("ecs", region_name=REGION).register_task_definition(
                family="ProductionMigrationTaskDefinition",
                containerDefinitions=[{"name": "migration", "image": "runner", "memory": 1024,
                                       "dockerLabels": {BACKEND_IMAGE_LABEL: backend_image}}],
            )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
            return boto3.client("stepfunctions", region_name=REGION).create_state_machine(
                name="revenuepilot-production-migration-runbook",
                definition=_definition(succeed, task_definition),
                roleArn=role,
            )

        yield deploy


def _run(*argv: str) -> tuple[int, str]:
    out = StringIO()
    status = main(
        [*argv, "--poll-seconds", "0.2"], clients=lambda name: boto3.client(name, region_name=REGION), out=out
    )
    return status, out.getvalue()


def test_migrate_follows_each_state_and_prints_the_result(aws: Any) -> None:
    aws(True)
    status, output = _run("migrate", "--env", "production", "--revision", REV)
    assert status == 0, output
    lines = output.splitlines()
    assert lines[0].startswith(
        "started arn:aws:states:us-east-1:222222222222:execution:revenuepilot-production-migration-runbook:upgrade-"
    )
    transitions = [line.split(maxsplit=1)[1] for line in lines if " -> " in line or " <- " in line]
    assert transitions == [
        "-> DescribeDatabase", "<- DescribeDatabase", "-> CreateSnapshot", "<- CreateSnapshot",
        "-> RunUpgrade", "<- RunUpgrade", "-> NotifySuccess", "<- NotifySuccess",
    ]  # fmt: skip
    assert f"SUCCEEDED: upgrade to {REV}" in output
    assert f"snapshot:   {SNAPSHOT} (available" in output
    assert 'validation: {"encounters": 2, "finalized_notes": 3}' in output
    assert "duration:   42 s" in output


def test_failure_exits_non_zero_with_the_rollback_hint(aws: Any) -> None:
    aws(False)
    status, output = _run("migrate", "--env", "production", "--revision", REV)
    assert status == 1
    assert "-> RunbookFailed" in output
    assert "FAILED: MigrationFailed: alembic upgrade head exited with status 1" in output
    assert "python -m ops rollback --env production --revision <the full revision id before" in output
    assert (
        "evidence:   s3://revenuepilot-production-evidence-222222222222-us-east-1/migrations/production/"
        in output
    )
    assert "PITR of revenuepilot-production" in output


def test_rollback_starts_a_downgrade(aws: Any) -> None:
    aws(True)
    status, _ = _run("rollback", "--env", "production", "--revision", REV, "--maintenance")
    assert status == 0
    client = boto3.client("stepfunctions", region_name=REGION)
    (execution,) = client.list_executions(
        stateMachineArn=client.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    )["executions"]
    described = client.describe_execution(executionArn=execution["executionArn"])
    caller = boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]
    assert json.loads(described["input"]) == {
        "action": "downgrade", "revision": REV, "maintenance": True, "requestedBy": caller,
    }  # fmt: skip
    assert execution["name"].startswith("downgrade-")


def test_wrong_account_is_refused(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws(True)
    status, output = _run("migrate", "--env", "staging")
    assert (
        status == 1
        and "credentials are for account 222222222222, but staging is account 111111111111" in output
    )


def test_migrate_refuses_a_task_definition_of_another_backend_release(aws: Any) -> None:
    old = "222222222222.dkr.ecr.us-east-1.amazonaws.com/revenuepilot/backend@sha256:" + "1" * 64
    aws(True, backend_image=old)
    status, output = _run("migrate", "--env", "production", "--revision", REV)
    assert status == 1
    [line] = output.splitlines()
    assert line.startswith(
        "error: the deployed migration task definition arn:aws:ecs:us-east-1:222222222222:"
    )
    assert f"was built from backend image {old}, but config/environments.py says " in line
    assert configured_backend_image(PRODUCTION).endswith(f"@{PRODUCTION.migration.backend_image_digest}")
    assert "deploy Production/Migration" in line and "nothing was started" in line
    executions = boto3.client("stepfunctions", region_name=REGION).list_executions(
        stateMachineArn=f"arn:aws:states:{REGION}:{PRODUCTION.account}:stateMachine:revenuepilot-production-migration-runbook"
    )["executions"]
    assert executions == []


def test_migrate_refuses_an_unlabelled_task_definition(aws: Any) -> None:
    aws(True, backend_image="")
    status, output = _run("migrate", "--env", "production", "--revision", REV)
    assert status == 1 and "was built from backend image (unlabelled)" in output


def test_dry_run_calls_no_aws_api() -> None:
    def no_clients(name: str) -> Any:
        raise AssertionError(f"dry run created a {name} client")

    out = StringIO()
    assert (
        main(
            ["migrate", "--env", "production", "--revision", REV, "--dry-run"],
            clients=no_clients,
            out=out,
        )
        == 0
    )
    text = out.getvalue()
    assert text.startswith("DRY RUN: nothing is started.")
    assert (
        "arn:aws:states:us-east-1:222222222222:stateMachine:revenuepilot-production-migration-runbook" in text
    )
    assert '{"action": "upgrade", "revision": "ae1027a6acf0"}' in text
    assert "refuse the revision unless staging's runbook recorded it as applied" in text
    assert "alembic -c backend/alembic/alembic.ini upgrade ae1027a6acf" in text


def test_dry_run_numbers_the_steps_in_the_runbooks_order() -> None:
    out = StringIO()
    args = ["migrate", "--env", "staging", "--revision", "head", "--maintenance", "--dry-run"]
    assert main(args, clients=lambda name: None, out=out) == 0
    steps = [line.strip() for line in out.getvalue().splitlines() if line.startswith("  ")]
    order = [
        "refuse to run while another execution",
        "pre-checks on revenuepilot-staging",
        "maintenance mode on (/revenuepilot/staging/maintenance-mode)",
        "manual snapshot pre-migration-",
        "validation row counts and alembic current before",
        "validation row counts and alembic current after",
        "record the revision now applied under /revenuepilot/staging/migration/applied/ (read by 222222222222)",
        "maintenance mode off after success",
        "evidence record s3://revenuepilot-staging-evidence-111111111111-us-east-1/migrations/staging/",
        "notify the operations topic",
    ]
    assert len(steps) == len(order)
    for number, (line, expected) in enumerate(zip(steps, order, strict=True), start=1):
        assert line.startswith(f"{number}. {expected}"), line


def test_no_credentials_is_one_clear_line_not_a_traceback(monkeypatch, capsys):
    from ops.cli import main

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(["migrate", "--env", "staging", "--revision", "head"])
    printed = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in printed.out + printed.err
    assert printed.out.strip().startswith("error: no usable AWS credentials for staging")


def test_an_access_denied_names_the_call_and_the_environment():
    from botocore.exceptions import ClientError

    from ops.cli import aws_error_message

    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "StartExecution")
    message = aws_error_message(error, "production")
    assert message is not None and "StartExecution" in message and "production" in message
    assert aws_error_message(ValueError("a bug"), "production") is None  # bugs still raise
