"""The migration runbook of the ops guide as a Step Functions state machine, one visible state per step.

Input: `{"action": "upgrade" | "downgrade", "revision": "<revision, contract/revision.py grammar>"}`.

    ValidateInput -> PlanMigration -> ListRunningExecutions -> CheckNoOtherExecution
      -> DescribeDatabase -> CheckPreconditions
      -> CreateSnapshot -> TagSnapshot -> WaitForSnapshot <-> DescribeSnapshot -> CheckSnapshot
      -> UpgradeOrDowngrade -> RunUpgrade | RunDowngrade -> CheckMigrationExitCode
      -> ValidateData -> NotifySuccess
    any failure -> Describe<Reason> -> NotifyFailure (snapshot id + rollback instructions) -> RunbookFailed

The revision must match the shared grammar (no option-like values such as `--help`). The runbook
refuses to run while another execution of it is running. The pre-checks refuse to start unless
the instance is `available`, keeps automated backups for at least the configured days and its
latest restorable time (PITR) is recent. The snapshot is
`pre-migration-<yyyy-mm-dd-hhmmss>-<execution name>` (UTC start time; unique per execution); the
instance copies its tags to snapshots and the runbook adds the revision and execution. The
migration runs as an ECS task (`.sync`, never retried: a retry could start a second Alembic);
validation runs the same task definition with `validate`, which reports its row counts back
through the task token. The state machine uses JSONata (date formatting and arithmetic the
JSONPath intrinsics lack); see docs/decisions/migration-runbook.md.

Exposes `state_machine`, `log_group`.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from config.schema import MigrationConfig
from constructs import Construct
from constructs.checkov import skip_checkov
from constructs.compliance import acknowledge
from constructs.log_group import EncryptedLogGroup
from constructs.migration_task import MigrationTask
from contract.revision import REVISION_RULE, jsonata_revision_check

SNAPSHOT_PREFIX = "pre-migration-"
SNAPSHOT_POLL_SECONDS = 30
TASK_TOKEN_VARIABLE = "SFN_TASK_TOKEN"  # noqa: S105 (a variable name, not a secret)
# Throttling and transient service errors of the AWS SDK integrations (exact error names).
RDS_TRANSIENT_ERRORS = ["Rds.RdsException", "Rds.SdkClientException"]
ECS_TRANSIENT_ERRORS = ["ECS.AmazonECSException", "ECS.SdkClientException"]
SFN_TRANSIENT_ERRORS = ["Sfn.SfnException", "Sfn.SdkClientException"]
# `pre-migration-<yyyy-mm-dd-hhmmss>-<execution name>`: the execution name is unique per state machine
# (90 days), so two executions in the same second get different snapshots. Lower case, runs of anything
# but [a-z0-9] as one '-', no leading/trailing '-': RDS's identifier rules (letters, digits, single
# hyphens, starts with a letter, at most 255: 14 + 17 + 1 + 80 characters at most here).
SNAPSHOT_ID_EXPRESSION = (
    "($name := $replace($replace($lowercase($states.context.Execution.Name), /[^a-z0-9]+/, '-'), /^-+|-+$/, ''); "
    f"'{SNAPSHOT_PREFIX}' & $fromMillis($toMillis($states.context.Execution.StartTime), "
    "'[Y0001]-[M01]-[D01]-[H01][m01][s01]') & ($name = '' ? '' : '-' & $name))"
)


def state_machine_name(environment_name: str) -> str:
    """The physical name the operator CLI finds the runbook by."""
    return f"revenuepilot-{environment_name}-migration-runbook"


def _jsonata(expression: str) -> str:
    return "{% " + expression + " %}"


def _failure(error: str, cause_expression: str) -> dict[str, Any]:
    return {"failure": {"error": error, "cause": _jsonata(cause_expression)}}


class MigrationRunbook(Construct):
    """Pre-checks, snapshot, migration task, validation and notification, per environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MigrationConfig,
        environment_name: str,
        instance_identifier: str,
        task: MigrationTask,
        notification_topic: sns.ITopic,
        encryption_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        instance_arn = stack.format_arn(
            service="rds",
            resource="db",
            resource_name=instance_identifier,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        snapshot_arn_prefix = stack.format_arn(
            service="rds", resource="snapshot", resource_name="", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        snapshot_arns = f"{snapshot_arn_prefix}{SNAPSHOT_PREFIX}*"
        name = state_machine_name(environment_name)

        # --- input and plan -------------------------------------------------------------------
        invalid_input = sfn.Fail.jsonata(
            self,
            "InvalidInput",
            error="InvalidInput",
            cause=f'input must be {{"action": "upgrade" | "downgrade", "revision": "<{REVISION_RULE}>"}}',
        )
        plan = sfn.Pass.jsonata(
            self,
            "PlanMigration",
            comment="Name the pre-migration snapshot after the execution's start time (UTC) and name",
            assign={
                "action": _jsonata("$states.input.action"),
                "revision": _jsonata("$states.input.revision"),
                "snapshotId": _jsonata(SNAPSHOT_ID_EXPRESSION),
                "snapshotCreated": False,
                "counts": None,
                "countsBefore": None,
            },
        )
        validate_input = sfn.Choice.jsonata(
            self,
            "ValidateInput",
            comment="upgrade or downgrade, and a revision of the grammar (contract/revision.py)",
        )
        validate_input.when(
            sfn.Condition.jsonata(
                _jsonata(
                    '$states.input.action in ["upgrade", "downgrade"] and '
                    + jsonata_revision_check("$states.input.revision")
                )
            ),
            plan,
        ).otherwise(invalid_input)

        # --- failure path -----------------------------------------------------------------------
        runbook_failed = sfn.Fail.jsonata(
            self, "RunbookFailed", error=_jsonata("$failure.error"), cause=_jsonata("$failure.cause")
        )
        rollback = (
            f"Rollback: if the migration ran and is reversible, run `python -m ops rollback --env {environment_name} "
            "--revision -1` (this runbook, action downgrade). If data integrity is compromised, restore the "
            "snapshot (or PITR to just before the start time) to a new instance, point the application at it "
            "and re-run the last good revision. README: Running a migration."
        )
        notify_failure = tasks.SnsPublish.jsonata(
            self,
            "NotifyFailure",
            topic=notification_topic,
            subject=f"RevenuePilot {environment_name}: database migration FAILED",
            message=sfn.TaskInput.from_text(
                _jsonata(
                    "$string({"
                    f'"environment": "{environment_name}", "outcome": "failed", '
                    '"action": $action, "revision": $revision, '
                    '"snapshotId": $snapshotCreated ? $snapshotId : "none (failed before the snapshot)", '
                    '"error": $failure.error, "cause": $substring($failure.cause, 0, 4000), '
                    '"startedAt": $states.context.Execution.StartTime, '
                    '"execution": $states.context.Execution.Id, '
                    f'"rollback": {json.dumps(rollback)}'
                    "}, true)"
                )
            ),
        )
        notify_failure.add_retry(
            errors=["States.TaskFailed"], max_attempts=3, interval=cdk.Duration.seconds(5)
        )
        notify_failure.add_catch(runbook_failed, errors=["States.ALL"])
        notify_failure.next(runbook_failed)

        def fail_with(state_id: str, error: str, cause_expression: str) -> sfn.Chain:
            return sfn.Pass.jsonata(self, state_id, assign=_failure(error, cause_expression)).next(
                notify_failure
            )

        def catch_into_failure(
            state: tasks.SnsPublish | tasks.CallAwsService | tasks.EcsRunTask, error: str
        ) -> None:
            state.add_catch(
                notify_failure,
                errors=["States.ALL"],
                assign=_failure(error, "$states.errorOutput.Error & ': ' & $states.errorOutput.Cause"),
            )

        # --- one execution at a time -------------------------------------------------------------
        # Fails closed: two executions started together both see each other and both stop.
        list_running = tasks.CallAwsService.jsonata(
            self,
            "ListRunningExecutions",
            comment="Refuse to run while another execution of this runbook is running",
            service="sfn",
            action="listExecutions",
            iam_action="states:ListExecutions",
            iam_resources=[
                stack.format_arn(
                    service="states",
                    resource="stateMachine",
                    resource_name=name,
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            parameters={
                "StateMachineArn": _jsonata("$states.context.StateMachine.Id"),
                "StatusFilter": "RUNNING",
                "MaxResults": 100,
            },
            assign={
                "otherExecutions": _jsonata(
                    "[$states.result.Executions[ExecutionArn != $states.context.Execution.Id].ExecutionArn]"
                )
            },
        )
        list_running.add_retry(
            errors=SFN_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        catch_into_failure(list_running, "ConcurrencyCheckFailed")
        check_alone = sfn.Choice.jsonata(self, "CheckNoOtherExecution")

        # --- pre-checks -------------------------------------------------------------------------
        describe_database = tasks.CallAwsService.jsonata(
            self,
            "DescribeDatabase",
            service="rds",
            action="describeDBInstances",
            iam_action="rds:DescribeDBInstances",
            iam_resources=[instance_arn],
            parameters={"DbInstanceIdentifier": instance_identifier},
            assign={
                "database": {
                    "status": _jsonata(
                        '$exists($states.result.DbInstances[0].DbInstanceStatus) ? $states.result.DbInstances[0].DbInstanceStatus : "unknown"'
                    ),
                    "backupRetentionDays": _jsonata(
                        "$exists($states.result.DbInstances[0].BackupRetentionPeriod) ? $states.result.DbInstances[0].BackupRetentionPeriod : 0"
                    ),
                    "latestRestorableTime": _jsonata(
                        "$exists($states.result.DbInstances[0].LatestRestorableTime) ? $states.result.DbInstances[0].LatestRestorableTime : null"
                    ),
                }
            },
        )
        describe_database.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        catch_into_failure(describe_database, "DescribeDatabaseFailed")

        max_lag_ms = config.max_restore_lag_minutes * 60 * 1000
        restore_lag_ms = (
            "($t := $database.latestRestorableTime; "
            '$ms := $type($t) = "number" ? ($t < 100000000000 ? $t * 1000 : $t) : $toMillis($t); '
            "$toMillis($states.context.State.EnteredTime) - $ms)"
        )
        check_preconditions = sfn.Choice.jsonata(
            self, "CheckPreconditions", comment="available, backups retained, PITR recent"
        )
        create_snapshot = tasks.CallAwsService.jsonata(
            self,
            "CreateSnapshot",
            comment="Manual snapshot; the instance copies its tags to it (CopyTagsToSnapshot)",
            service="rds",
            action="createDBSnapshot",
            iam_action="rds:CreateDBSnapshot",
            iam_resources=[instance_arn, snapshot_arns],
            parameters={
                "DbInstanceIdentifier": instance_identifier,
                "DbSnapshotIdentifier": _jsonata("$snapshotId"),
            },
            assign={"snapshotCreated": True},
        )
        check_preconditions.when(
            sfn.Condition.jsonata(_jsonata('$database.status != "available"')),
            fail_with(
                "DatabaseNotAvailable",
                "DatabaseNotAvailable",
                "'instance " + instance_identifier + " is ' & $database.status & ', not available'",
            ),
        ).when(
            sfn.Condition.jsonata(
                _jsonata(f"$database.backupRetentionDays < {config.minimum_backup_retention_days}")
            ),
            fail_with(
                "BackupRetentionTooShort",
                "BackupRetentionTooShort",
                f"'automated backups are kept ' & $string($database.backupRetentionDays) & ' days; at least "
                f"{config.minimum_backup_retention_days} are required'",
            ),
        ).when(
            sfn.Condition.jsonata(
                _jsonata(f"$database.latestRestorableTime = null or {restore_lag_ms} > {max_lag_ms}")
            ),
            fail_with(
                "PointInTimeRecoveryStale",
                "PointInTimeRecoveryStale",
                "'latest restorable time ' & $string($database.latestRestorableTime) & ' is older than "
                f"{config.max_restore_lag_minutes} minutes: automated backups are not healthy'",
            ),
        ).otherwise(create_snapshot)

        # --- snapshot ---------------------------------------------------------------------------
        create_snapshot.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(10), backoff_rate=2
        )
        catch_into_failure(create_snapshot, "CreateSnapshotFailed")
        tag_snapshot = tasks.CallAwsService.jsonata(
            self,
            "TagSnapshot",
            service="rds",
            action="addTagsToResource",
            iam_action="rds:AddTagsToResource",
            iam_resources=[snapshot_arns],
            parameters={
                "ResourceName": _jsonata(f"'{snapshot_arn_prefix}' & $snapshotId"),
                "Tags": [
                    {"Key": "revenuepilot:purpose", "Value": "pre-migration"},
                    {"Key": "revenuepilot:migration-action", "Value": _jsonata("$action")},
                    {"Key": "revenuepilot:migration-revision", "Value": _jsonata("$revision")},
                    {"Key": "revenuepilot:execution", "Value": _jsonata("$states.context.Execution.Name")},
                ],
            },
        )
        tag_snapshot.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        catch_into_failure(tag_snapshot, "TagSnapshotFailed")
        wait_for_snapshot = sfn.Wait.jsonata(
            self, "WaitForSnapshot", time=sfn.WaitTime.duration(cdk.Duration.seconds(SNAPSHOT_POLL_SECONDS))
        )
        describe_snapshot = tasks.CallAwsService.jsonata(
            self,
            "DescribeSnapshot",
            service="rds",
            action="describeDBSnapshots",
            iam_action="rds:DescribeDBSnapshots",
            iam_resources=[instance_arn, snapshot_arns],
            parameters={"DbSnapshotIdentifier": _jsonata("$snapshotId")},
            assign={
                "snapshotStatus": _jsonata(
                    '$exists($states.result.DbSnapshots[0].Status) ? $states.result.DbSnapshots[0].Status : "unknown"'
                )
            },
        )
        describe_snapshot.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=5, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        catch_into_failure(describe_snapshot, "DescribeSnapshotFailed")
        check_snapshot = sfn.Choice.jsonata(
            self, "CheckSnapshot", comment="wait until the snapshot is available"
        )

        # --- migration --------------------------------------------------------------------------
        launch_target = tasks.EcsFargateLaunchTarget(
            platform_version=cdk.aws_ecs.FargatePlatformVersion.LATEST
        )

        def run_task(
            state_id: str,
            command: list[str],
            environment: list[tasks.TaskEnvironmentVariable] | None = None,
            **kwargs: Any,
        ) -> tasks.EcsRunTask:
            return tasks.EcsRunTask.jsonata(
                self,
                state_id,
                cluster=task.cluster,
                task_definition=task.task_definition,
                launch_target=launch_target,
                subnets=task.subnets,
                security_groups=[task.security_group],
                assign_public_ip=False,
                container_overrides=[
                    tasks.ContainerOverride(
                        container_definition=task.container, command=command, environment=environment
                    )
                ],
                propagated_tag_source=cdk.aws_ecs.PropagatedTagSource.TASK_DEFINITION,
                **kwargs,
            )

        check_exit_code = sfn.Choice.jsonata(
            self, "CheckMigrationExitCode", comment="Alembic's exit status is the migration container's"
        )
        migration_steps: list[tasks.EcsRunTask] = []
        for action, state_id in (("upgrade", "RunUpgrade"), ("downgrade", "RunDowngrade")):
            step = run_task(
                state_id,
                [*task.base_arguments, action, _jsonata("$revision")],
                comment=f"alembic {action} <revision> as the migration role (ECS task, .sync)",
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(config.migration_timeout_minutes)),
                assign={
                    "exitCode": _jsonata(
                        "$exists($states.result.Containers[0].ExitCode) ? $states.result.Containers[0].ExitCode : -1"
                    ),
                    "stoppedReason": _jsonata(
                        '$exists($states.result.StoppedReason) ? $states.result.StoppedReason : ""'
                    ),
                },
            )
            # No Retry: with `.sync`, an error after RunTask (a failed DescribeTasks poll) would start a
            # second Alembic next to the first. Any error goes to the failure notice; the operator checks
            # the cluster's tasks and reruns.
            catch_into_failure(step, "MigrationTaskFailed")
            step.next(check_exit_code)
            migration_steps.append(step)
        run_upgrade, run_downgrade = migration_steps
        upgrade_or_downgrade = sfn.Choice.jsonata(self, "UpgradeOrDowngrade")
        upgrade_or_downgrade.when(
            sfn.Condition.jsonata(_jsonata('$action = "downgrade"')), run_downgrade
        ).otherwise(run_upgrade)

        validation_arguments: list[str] = []
        for query_name, sql in config.validation_queries:
            validation_arguments += ["--query", f"{query_name}={sql}"]

        def validation_run(state_id: str, comment: str, counts_variable: str) -> tasks.EcsRunTask:
            step = run_task(
                state_id,
                [*task.base_arguments, "validate", *validation_arguments],
                # The run's own callback token, not configuration: the task definition has no environment.
                environment=[
                    tasks.TaskEnvironmentVariable(
                        name=TASK_TOKEN_VARIABLE, value=_jsonata("$states.context.Task.Token")
                    )
                ],
                comment=comment,
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(config.validation_timeout_minutes)),
                assign={counts_variable: _jsonata("$states.result.counts")},
            )
            # A second read-only validate run is harmless, unlike a second migration.
            step.add_retry(
                errors=ECS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(15), backoff_rate=2
            )
            catch_into_failure(step, "ValidationFailed")
            return step

        validate_before = validation_run(
            "ValidateBefore",
            "Row counts before the migration (read-only, as the migration role); reported via the task token",
            "countsBefore",
        )
        validate_before.next(upgrade_or_downgrade)
        validate_data = validation_run(
            "ValidateData",
            "Row counts after the migration (read-only, as the migration role); reported via the task token",
            "counts",
        )
        tolerances = {name: config.decrease_tolerance_percent(name) for name, _ in config.validation_queries}
        compare_counts = sfn.Pass.jsonata(
            self,
            "CompareCounts",
            comment="Each count after vs before; a drop beyond migration.validation_decrease_tolerance_percent fails",
            assign={
                "comparison": _jsonata(
                    f"($tolerance := {json.dumps(tolerances)}; $merge($map($keys($counts), function($q) {{ {{$q: {{"
                    '"before": $lookup($countsBefore, $q), "after": $lookup($counts, $q), '
                    '"allowedDecreasePercent": $lookup($tolerance, $q)} } })))'
                ),
            },
        )
        check_counts = sfn.Choice.jsonata(self, "CheckCounts")
        # Lambdas, not `$` as the context: Step Functions refuses a bare `$` in its JSONata (moto anywhere).
        dropped = (
            "[$filter($keys($comparison), function($q) { ($c := $lookup($comparison, $q); "
            "$c.after < $c.before * (1 - $c.allowedDecreasePercent / 100)) })]"
        )
        validate_data.next(compare_counts).next(check_counts)
        check_exit_code.when(sfn.Condition.jsonata(_jsonata("$exitCode = 0")), validate_data).otherwise(
            fail_with(
                "MigrationExitedNonZero",
                "MigrationFailed",
                "'alembic ' & $action & ' ' & $revision & ' exited with status ' & $string($exitCode) & "
                "($stoppedReason != '' ? ' (' & $stoppedReason & ')' : '')",
            )
        )

        summary = _jsonata(
            "{"
            f'"environment": "{environment_name}", "outcome": "succeeded", '
            '"action": $action, "revision": $revision, "snapshotId": $snapshotId, "validation": $counts, '
            '"validationBefore": $countsBefore, '
            '"durationSeconds": $round(($toMillis($states.context.State.EnteredTime) - '
            "$toMillis($states.context.Execution.StartTime)) / 1000), "
            '"execution": $states.context.Execution.Id'
            "}"
        )
        notify_success = tasks.SnsPublish.jsonata(
            self,
            "NotifySuccess",
            topic=notification_topic,
            subject=f"RevenuePilot {environment_name}: database migration succeeded",
            message=sfn.TaskInput.from_text(_jsonata(f"$string({summary[3:-3]}, true)")),
            outputs=summary,
        )
        notify_success.add_retry(
            errors=["States.TaskFailed"], max_attempts=3, interval=cdk.Duration.seconds(5)
        )
        check_counts.when(
            sfn.Condition.jsonata(_jsonata(f"$count({dropped}) > 0")),
            fail_with(
                "CountsDropped",
                "CountsDropped",
                f"'validation counts dropped beyond their tolerance: ' & $join($map({dropped}, function($q) {{ "
                "$q & ' ' & $string($lookup($comparison, $q).before) & ' -> ' & $string($lookup($comparison, $q).after)"
                " }), ', ') & '. The migration itself completed; check the data before rolling back'",
            ),
        ).otherwise(notify_success)

        check_snapshot.when(
            sfn.Condition.jsonata(_jsonata('$snapshotStatus = "available"')), validate_before
        ).when(sfn.Condition.jsonata(_jsonata('$snapshotStatus = "creating"')), wait_for_snapshot).otherwise(
            fail_with(
                "SnapshotNotCreated",
                "SnapshotFailed",
                "'snapshot ' & $snapshotId & ' is ' & $string($snapshotStatus) & ', not available'",
            )
        )
        create_snapshot.next(tag_snapshot).next(wait_for_snapshot).next(describe_snapshot).next(
            check_snapshot
        )
        check_alone.when(
            sfn.Condition.jsonata(_jsonata("$count($otherExecutions) > 0")),
            fail_with(
                "AnotherExecutionRunning",
                "ExecutionAlreadyRunning",
                "'another execution of this runbook is running (' & $join($otherExecutions, ', ') & '); "
                "nothing was changed: start again once it has ended'",
            ),
        ).otherwise(describe_database)
        plan.next(list_running).next(check_alone)
        describe_database.next(check_preconditions)

        self.log_group = EncryptedLogGroup(
            self, "Logs", retention_days=log_retention_days, encryption_key=encryption_key
        ).log_group
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            query_language=sfn.QueryLanguage.JSONATA,
            comment=f"RevenuePilot {environment_name}: the migration runbook (ops guide) with rollback notices",
            definition_body=sfn.DefinitionBody.from_chainable(validate_input),
            timeout=cdk.Duration.minutes(
                config.migration_timeout_minutes + config.validation_timeout_minutes + 180
            ),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        # The topic is encrypted with the database CMK: publishing needs a data key.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[encryption_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}},
            )
        )
        policy = self.state_machine.role.node.try_find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery (logs:CreateLogDelivery etc.), X-Ray and ecs:DescribeTasks/StopTask of the "
            "'.sync' integration support no resource-level permissions; every other action is scoped.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{snapshot_arns}]",
            "Each execution creates a new snapshot named pre-migration-<start time>; the grant covers only "
            "that prefix in this account and region.",
        )
        for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321"):
            acknowledge(
                policy,
                f"{pack}-IAMNoInlinePolicy",
                "Step Functions task states write their least-privilege statements into the state machine "
                "role's policy; the role serves only this state machine.",
            )
        skip_checkov(
            policy,
            "CKV_AWS_111",
            "The write actions without resource constraints are CloudWatch Logs delivery, X-Ray and the ECS "
            "'.sync' task calls, which IAM cannot scope; RDS snapshots, RunTask, PassRole and Publish are scoped.",
        )
