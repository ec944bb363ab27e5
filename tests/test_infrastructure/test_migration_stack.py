"""The Migration stack: task definition, IAM, and every state of the runbook state machine."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from contract.backend_image import BACKEND_IMAGE_LABEL, backend_image_uri
from contract.names import TASK_TOKEN_ENV_VAR, state_machine_name
from tests.test_infrastructure.conftest import EnvironmentTemplates


def _definition(env: EnvironmentTemplates) -> dict[str, Any]:
    (machine,) = env.resources("Migration", "AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    # Tokens (ARNs) are replaced by a marker; the structure is what these tests pin.
    text = "".join(part if isinstance(part, str) else "TOKEN" for part in parts)
    definition: dict[str, Any] = json.loads(text)
    return definition


def _statements(env: EnvironmentTemplates, logical_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, resource in env.resources("Migration", resource_type).items():
            if logical_id.startswith(logical_prefix):
                found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_task_definition_is_locked_down(env: EnvironmentTemplates) -> None:
    env["Migration"].has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "RequiresCompatibilities": ["FARGATE"],
            "Cpu": str(env.config.migration.task_cpu),
            "Memory": str(env.config.migration.task_memory_mib),
            "Volumes": [{"Name": "tmp"}],
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Name": "migration",
                        "ReadonlyRootFilesystem": True,
                        "User": "10001:10001",
                        "MountPoints": [{"ContainerPath": "/tmp", "SourceVolume": "tmp", "ReadOnly": False}],
                        "Environment": Match.absent(),
                        "Secrets": Match.absent(),
                        "LogConfiguration": Match.object_like({"LogDriver": "awslogs"}),
                        "Command": Match.array_with(
                            ["--alembic-config", env.config.migration.alembic_config_path, "current"]
                        ),
                    }
                )
            ],
        },
    )
    env["Migration"].has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enhanced"}]},
    )
    env["Migration"].has_resource_properties(
        "AWS::EC2::SecurityGroupIngress", {"FromPort": 5432, "ToPort": 5432, "IpProtocol": "tcp"}
    )
    for group in env.resources("Migration", "AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"] and group["DeletionPolicy"] == "Retain"


def test_task_definition_carries_the_configured_backend_image(env: EnvironmentTemplates) -> None:
    """`ops migrate` compares this label with the configuration (ops/image_check.py)."""
    config = env.config
    expected = backend_image_uri(
        config.migration.backend_image_reference, account=config.account, region=config.region
    )
    (task_definition,) = env.resources("Migration", "AWS::ECS::TaskDefinition").values()
    (container,) = task_definition["Properties"]["ContainerDefinitions"]
    assert container["DockerLabels"] == {BACKEND_IMAGE_LABEL: expected}
    if config.name == "production":
        assert f"@{config.migration.backend_image_digest}" in expected
    else:
        assert expected.endswith(":release")


def test_task_role_reads_the_app_secret_only(env: EnvironmentTemplates) -> None:
    statements = _statements(env, "MigrationTaskSecretReadPolicy") + _statements(
        env, "MigrationTaskRunbookCallbackPolicy"
    )
    assert _actions(statements) == {
        "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "kms:Decrypt",
        "states:SendTaskSuccess", "states:SendTaskFailure",
    }  # fmt: skip
    assert all(s["Resource"] != "*" for s in statements)
    kms = next(s for s in statements if s["Action"] == "kms:Decrypt")
    assert kms["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{env.config.region}.amazonaws.com"}
    }
    sfn = next(s for s in statements if "states:SendTaskSuccess" in s["Action"])
    assert sfn["Resource"].endswith(f":stateMachine:{state_machine_name(env.config.name)}")


def test_state_machine_settings(env: EnvironmentTemplates) -> None:
    env["Migration"].has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": f"revenuepilot-{env.config.name}-migration-runbook",
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )


def test_every_step_is_a_visible_state(env: EnvironmentTemplates) -> None:
    definition = _definition(env)
    states = definition["States"]
    assert definition["QueryLanguage"] == "JSONata"
    assert definition["StartAt"] == "ValidateInput"
    assert set(states) == {
        "ValidateInput", "InvalidInput", "PlanMigration", "ListRunningExecutions", "CheckNoOtherExecution",
        "AnotherExecutionRunning", "DescribeDatabase", "CheckPreconditions",
        "DatabaseNotAvailable", "BackupRetentionTooShort", "PointInTimeRecoveryStale",
        "CreateSnapshot", "TagSnapshot", "WaitForSnapshot", "DescribeSnapshot", "CheckSnapshot", "SnapshotNotCreated",
        "SnapshotTimedOut",
        "UpgradeOrDowngrade", "RunUpgrade", "RunDowngrade", "CheckMigrationExitCode", "MigrationExitedNonZero",
        "ValidateBefore", "ValidateData", "CompareCounts", "CheckCounts", "CountsDropped",
        "NotifySuccess", "NotifyFailure", "RunbookFailed",
        # issue 13, item 7: maintenance mode, the evidence record, the applied-revision record and check
        "MaintenanceRequested", "ReadMaintenanceMode", "CheckMaintenanceAlreadyOn", "MaintenanceAlreadyOn",
        "SetMaintenanceMode", "CheckMaintenanceAfterSuccess", "ClearMaintenanceMode",
        "CheckMaintenanceAfterFailure", "ClearMaintenanceAfterFailure", "WriteSuccessEvidence", "WriteFailureEvidence",
        *(
            ["CheckRevisionAppliedFirst", "RevisionNotApplied", "CheckAppliedState", "RevisionRolledBack",
             "AppliedRecordInvalid"]
            if env.config.name == "production"
            else ["CheckRevisionAfter", "RecordAppliedRevision", "CheckRevisionLeft", "RecordRolledBackRevision"]
        ),
    }  # fmt: skip
    assert "pre-migration-" in states["PlanMigration"]["Assign"]["snapshotId"]
    assert "[Y0001]-[M01]-[D01]-[H01][m01][s01]" in states["PlanMigration"]["Assign"]["snapshotId"]
    assert "$states.context.Execution.StartTime" in states["PlanMigration"]["Assign"]["snapshotId"]
    assert "$states.context.Execution.Name" in states["PlanMigration"]["Assign"]["snapshotId"]
    assert states["DescribeDatabase"]["Resource"].endswith("aws-sdk:rds:describeDBInstances")
    assert states["CreateSnapshot"]["Arguments"]["DbSnapshotIdentifier"] == "{% $snapshotId %}"
    assert states["TagSnapshot"]["Resource"].endswith("aws-sdk:rds:addTagsToResource")
    assert (
        states["WaitForSnapshot"]["Seconds"] == 30 and states["DescribeSnapshot"]["Next"] == "CheckSnapshot"
    )
    # The wait loop is bounded: past the deadline PlanMigration set, SnapshotTimedOut (before waiting again).
    assert states["CheckSnapshot"]["Choices"][1]["Next"] == "SnapshotTimedOut"
    assert "$snapshotDeadline" in states["CheckSnapshot"]["Choices"][1]["Condition"]
    assert "snapshotDeadline" in states["PlanMigration"]["Assign"]
    assert states["CheckSnapshot"]["Choices"][2]["Next"] == "WaitForSnapshot"
    assert states["NotifySuccess"]["End"] is True
    assert states["RunbookFailed"]["Type"] == "Fail"


def test_prechecks_use_configured_limits(env: EnvironmentTemplates) -> None:
    choices = _definition(env)["States"]["CheckPreconditions"]["Choices"]
    migration = env.config.migration
    assert [c["Next"] for c in choices] == [
        "DatabaseNotAvailable",
        "BackupRetentionTooShort",
        "PointInTimeRecoveryStale",
    ]
    assert '"available"' in choices[0]["Condition"]
    assert f"< {migration.minimum_backup_retention_days}" in choices[1]["Condition"]
    assert f"> {migration.max_restore_lag_minutes * 60_000}" in choices[2]["Condition"]
    assert _definition(env)["States"]["CheckPreconditions"]["Default"] == "MaintenanceRequested"
    assert _definition(env)["States"]["MaintenanceRequested"]["Default"] == "CreateSnapshot"


def test_migration_and_validation_tasks(env: EnvironmentTemplates) -> None:
    states = _definition(env)["States"]
    for state_id, action in (("RunUpgrade", "upgrade"), ("RunDowngrade", "downgrade")):
        state = states[state_id]
        assert state["Resource"].endswith(":states:::ecs:runTask.sync")
        (override,) = state["Arguments"]["Overrides"]["ContainerOverrides"]
        assert override["Command"][-2:] == [action, "{% $revision %}"]
        assert state["Arguments"]["LaunchType"] == "FARGATE"
        assert (
            state["Arguments"]["NetworkConfiguration"]["AwsvpcConfiguration"].get(
                "AssignPublicIp", "DISABLED"
            )
            == "DISABLED"
        )
        assert state["Next"] == "CheckMigrationExitCode"
    choice = states["UpgradeOrDowngrade"]
    assert choice["Choices"][0]["Next"] == "RunDowngrade" and choice["Default"] == "RunUpgrade"
    validate = states["ValidateData"]
    assert validate["Resource"].endswith(":states:::ecs:runTask.waitForTaskToken")
    (override,) = validate["Arguments"]["Overrides"]["ContainerOverrides"]
    assert "validate" in override["Command"]
    for name, sql in env.config.migration.validation_queries:
        assert f"{name}={sql}" in override["Command"]
    assert override["Environment"] == [
        {"Name": TASK_TOKEN_ENV_VAR, "Value": "{% $states.context.Task.Token %}"}
    ]


def test_retries_and_failure_path(env: EnvironmentTemplates) -> None:
    states = _definition(env)["States"]
    for state_id in ("DescribeDatabase", "CreateSnapshot", "TagSnapshot", "DescribeSnapshot"):
        assert states[state_id]["Retry"][0]["ErrorEquals"] == ["Rds.RdsException", "Rds.SdkClientException"]
    for state_id in ("ValidateBefore", "ValidateData"):  # read-only: a second run is harmless
        assert states[state_id]["Retry"][0]["ErrorEquals"][0] == "ECS.AmazonECSException"
    for state_id in ("RunUpgrade", "RunDowngrade"):  # a retry could start a second Alembic
        assert "Retry" not in states[state_id]
    # The records after the outcome is known: a failure there is reported, it does not change the outcome.
    records = {"NotifyFailure", "NotifySuccess", "WriteSuccessEvidence", "WriteFailureEvidence",
               "ClearMaintenanceMode", "ClearMaintenanceAfterFailure", "RecordAppliedRevision",
               "RecordRolledBackRevision", "CheckRevisionAppliedFirst", "ReadMaintenanceMode"}  # fmt: skip
    tasks = [s for s in states if states[s]["Type"] == "Task" and s not in records]
    # An absent maintenance flag is off (then set); any other error of the read fails the runbook.
    not_found, caught = states["ReadMaintenanceMode"]["Catch"]
    assert (not_found["ErrorEquals"], not_found["Next"]) == (
        ["Ssm.ParameterNotFoundException"],
        "SetMaintenanceMode",
    )
    assert (caught["ErrorEquals"], caught["Next"]) == (["States.ALL"], "CheckMaintenanceAfterFailure")
    for state_id in tasks:
        (catch,) = states[state_id]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "CheckMaintenanceAfterFailure"
        assert "$states.errorOutput" in catch["Assign"]["failure"]["cause"]
    for state_id in ("DatabaseNotAvailable", "BackupRetentionTooShort", "PointInTimeRecoveryStale",
                     "SnapshotNotCreated", "MigrationExitedNonZero", "AnotherExecutionRunning", "CountsDropped"):  # fmt: skip
        assert (
            states[state_id]["Next"] == "CheckMaintenanceAfterFailure"
            and "failure" in states[state_id]["Assign"]
        )
    assert states["WriteFailureEvidence"]["Next"] == "NotifyFailure"
    assert [c["Next"] for c in states["WriteFailureEvidence"]["Catch"]] == ["NotifyFailure"]
    assert [c["Next"] for c in states["WriteSuccessEvidence"]["Catch"]] == ["NotifySuccess"]
    notify = states["NotifyFailure"]
    assert notify["Next"] == "RunbookFailed"
    message = notify["Arguments"]["Message"]
    rollback = "<revisionBefore" if env.config.name == "production" else "-1"
    assert (
        "$snapshotId" in message
        and f"python -m ops rollback --env {env.config.name} --revision {rollback}" in message
    )
    assert states["RunbookFailed"]["Error"] == "{% $failure.error %}"
    success = states["NotifySuccess"]["Arguments"]["Message"]
    for field in ("environment", "revision", "snapshotId", "validation", "durationSeconds"):
        assert f'\\"{field}\\"' in json.dumps(success) or f'"{field}"' in success


def test_state_machine_iam_is_scoped(env: EnvironmentTemplates) -> None:
    statements = _statements(env, "RunbookStateMachineRole")
    actions = _actions(statements)
    assert {"rds:DescribeDBInstances", "rds:CreateDBSnapshot", "rds:DescribeDBSnapshots", "rds:AddTagsToResource",
            "ecs:RunTask", "iam:PassRole", "sns:Publish"} <= actions  # fmt: skip
    assert not any(a.endswith(":*") or a == "*" for a in actions)
    text = json.dumps(statements)
    identifier = env.config.database.instance_identifier
    assert f":db:{identifier}" in text and ":snapshot:pre-migration-*" in text
    create = next(s for s in statements if "rds:CreateDBSnapshot" in s["Action"])
    assert len(create["Resource"]) == 2
    pass_role = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert len(pass_role["Resource"]) == 2
