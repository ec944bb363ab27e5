"""`python -m ops access-review`: IAM grants from the session's synthesized templates, the review task
taken from the deployed runbook's definition, the report read back from the task's log stream, and
the dated Markdown/JSON files (database part collected from the TLS PostgreSQL harness)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from config.environments import ENVIRONMENTS, PRODUCTION, STAGING
from migration.runner import access_review as task_side
from ops.access_review import (
    REPORT_MARKER,
    AccessReviewError,
    ReviewTask,
    review_task_from_runbook,
    run_database_review,
)
from ops.cli import main
from ops.iam_review import find_key, find_secret, grants, load_stage_templates
from tests.support.postgres import PostgresServer, require_binaries, running_server

READ = "read the application secret"
DECRYPT = "decrypt with the database CMK"


def test_the_marker_is_the_one_the_task_prints() -> None:
    assert REPORT_MARKER == task_side.REPORT_MARKER


@pytest.mark.parametrize("config", ENVIRONMENTS, ids=lambda c: c.name)
def test_secret_readers_from_the_synthesized_templates(synthesized_app, config) -> None:
    templates = load_stage_templates(synthesized_app.directory, config.stage_id)
    secret = find_secret(templates, config.database.application_secret_name)
    key = find_key(templates, f"alias/revenuepilot/{config.name}/database")
    stage = config.stage_id
    assert str(secret).startswith(f"{stage}-Data/") and str(key).startswith(f"{stage}-Data/")
    found = grants(templates, secret=secret, key=key)
    # Logical ids without CDK's 8-hex-digit hash suffix.
    readers = sorted({re.sub(r"[0-9A-F]{8}$", "", g.principal) for g in found if g.capability == READ})
    assert readers == [
        f"{stage}-ApplicationAccess/TaskRole",
        f"{stage}-Data/ApplicationCredentialsBootstrapRole",
        f"{stage}-Data/ApplicationCredentialsRotationRole",
        f"{stage}-Data/CredentialsCheckRole",
        f"{stage}-Migration/MigrationTaskTaskRole",
    ]
    for grant in found:
        if grant.capability == READ:
            assert grant.actions == ("secretsmanager:GetSecretValue",)
            assert "assumed by" in grant.principal_detail
    # Roles decrypt only through Secrets Manager (or SNS for the runbook's notification); the key
    # policy's account statements are reported as written, with their conditions.
    for grant in found:
        if grant.capability == DECRYPT and "assumed by" in grant.principal_detail:
            assert "kms:ViaService" in grant.conditions, grant
    assert any(
        g.principal == f"AWS: arn:aws:iam::{config.account}:root" for g in found if g.capability == DECRYPT
    )
    # Nothing in the Monitoring or Network stacks can read the secret.
    assert not [g for g in found if g.principal.startswith((f"{stage}-Monitoring/", f"{stage}-Network/"))]


def _definition_with_placeholders(template: dict[str, Any]) -> dict[str, Any]:
    """The runbook's DefinitionString with each CloudFormation value replaced by a placeholder string."""
    (machine,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else "TOKEN" for part in parts)
    document: dict[str, Any] = json.loads(text)
    return document


def test_the_review_task_is_the_runbook_s_migration_task(synthesized_app) -> None:
    template = synthesized_app.template_json(PRODUCTION.stage_id, "Migration")
    task = review_task_from_runbook(_definition_with_placeholders(template))
    arguments = task.run_task_arguments()
    command = arguments["overrides"]["containerOverrides"][0]["command"]
    assert command[:2] == ["--secret-id", "TOKEN"] and command[-1] == "access-review"
    assert not {"upgrade", "downgrade", "{% $revision %}"} & set(command)
    assert arguments["overrides"]["containerOverrides"][0]["name"] == "migration"
    assert (
        len(arguments["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == PRODUCTION.network.max_azs
    )
    assert arguments["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == ["TOKEN"]
    assert arguments["launchType"] == "FARGATE"
    with pytest.raises(AccessReviewError, match="RunUpgrade"):
        review_task_from_runbook({"States": {}})


class _Waiter:
    def wait(self, **kwargs: Any) -> None:
        pass


class FakeEcs:
    def __init__(self, exit_code: int) -> None:
        self.exit_code = exit_code
        self.calls: list[dict[str, Any]] = []

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:1:task/cluster/abc123"}]}

    def get_waiter(self, name: str) -> _Waiter:
        assert name == "tasks_stopped"
        return _Waiter()

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "tasks": [
                {
                    "taskDefinitionArn": "td:1",
                    "containers": [{"name": "migration", "exitCode": self.exit_code}],
                }
            ]
        }

    def describe_task_definition(self, **kwargs: Any) -> dict[str, Any]:
        options = {"awslogs-group": "/migration", "awslogs-stream-prefix": "migration"}
        return {
            "taskDefinition": {
                "containerDefinitions": [{"name": "migration", "logConfiguration": {"options": options}}]
            }
        }


class FakeLogs:
    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        self.streams: list[str] = []

    def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.streams.append(kwargs["logStreamName"])
        return {
            "events": [{"message": m} for m in self.messages],
            "nextForwardToken": kwargs.get("nextToken", "t"),
        }


TASK = ReviewTask(
    cluster="cluster",
    task_definition="family",
    container="migration",
    network_configuration={"awsvpcConfiguration": {"subnets": ["s"], "securityGroups": ["g"]}},
    base_command=["--secret-id", "arn"],
)


def test_the_report_is_read_back_from_the_task_s_log_stream() -> None:
    ecs, logs = (
        FakeEcs(exit_code=0),
        FakeLogs(["starting", REPORT_MARKER + json.dumps({"database": {"roles": []}})]),
    )
    assert run_database_review(ecs, logs, TASK, sleep=lambda _: None) == {"database": {"roles": []}}
    assert ecs.calls[0]["overrides"]["containerOverrides"][0]["command"] == [
        "--secret-id",
        "arn",
        "access-review",
    ]
    assert logs.streams[0] == "migration/migration/abc123"


def test_a_failed_review_task_is_an_error_naming_its_last_lines() -> None:
    ecs, logs = FakeEcs(exit_code=1), FakeLogs(["access review failed: InterfaceError"])
    with pytest.raises(AccessReviewError, match="exited with 1: access review failed: InterfaceError"):
        run_database_review(ecs, logs, TASK, sleep=lambda _: None)


@pytest.fixture(scope="module")
def review_server() -> Iterator[PostgresServer]:
    with running_server(require_binaries(), tls=True) as server:
        yield server


class FakeAws:
    """STS, CloudFormation outputs and Secrets Manager metadata; no GetSecretValue exists here."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def __call__(self, service: str) -> Any:
        return self

    def get_caller_identity(self) -> dict[str, str]:
        return {"Account": self.config.account}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's keyword
        return {"Stacks": [{"Outputs": [{"OutputKey": "MasterSecretArn", "OutputValue": "arn:master"}]}]}

    def describe_secret(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's keyword
        return {
            "Name": SecretId,
            "LastRotatedDate": datetime(2026, 11, 26, 4, tzinfo=UTC),
            "RotationEnabled": True,
            "RotationRules": {"AutomaticallyAfterDays": 30 if SecretId == "arn:master" else 90},
        }


def test_access_review_command_writes_dated_markdown_and_json(
    synthesized_app, review_server, tmp_path: Path
) -> None:
    database = review_server.create_rds_like_database("review", master_user=STAGING.database.master_username)
    connection = review_server.connect(database.master_user, database.master_password, database="review")
    try:
        collected = task_side.collect(connection)
    finally:
        connection.close()
    database_json = tmp_path / "database.json"
    database_json.write_text(
        json.dumps(
            {
                "database": collected,
                "app_secret": {
                    "rotated_at": "2026-11-20T00:00:00Z",
                    "usernames": {"migration": "migration", "app_user": "app_user"},
                },
            }
        )
    )
    out = StringIO()
    status = main(
        [
            "access-review", "--env", "staging", "--assembly", str(synthesized_app.directory),
            "--output-dir", str(tmp_path / "reviews"), "--database-json", str(database_json),
        ],
        clients=FakeAws(STAGING),
        out=out,
    )  # fmt: skip
    assert status == 0, out.getvalue()
    today = datetime.now(UTC).date().isoformat()
    markdown = (tmp_path / "reviews" / f"access-review-staging-{today}.md").read_text()
    report = json.loads((tmp_path / "reviews" / f"access-review-staging-{today}.json").read_text())
    assert markdown.startswith(f"# Access review: staging ({today})")
    for heading in (
        "## Roles",
        "## Login-capable roles and password rotation",
        "## Memberships",
        "## Privileges per schema",
        "## Default privileges",
        "## IAM principals",
    ):
        assert heading in markdown
    logins = {r["role"]: r for r in report["login_roles"]}
    assert logins[database.master_user]["password_source"] == "master secret: LastRotatedDate"
    assert logins[database.master_user]["password_rotated"] == "2026-11-26T04:00:00+00:00"
    assert report["secrets"]["application"]["rotation_days"] == 90
    assert {g["capability"] for g in report["iam"]["grants"]} == {READ, DECRYPT}
    assert database.master_password not in markdown + json.dumps(report)
