"""The migration runbook of the ops guide as a Step Functions state machine, one visible state per step.

Input: `{"action": "upgrade" | "downgrade", "revision": "<alembic revision>"}`.

    ValidateInput -> PlanMigration -> DescribeDatabase -> CheckPreconditions
      -> CreateSnapshot -> TagSnapshot -> WaitForSnapshot <-> DescribeSnapshot -> CheckSnapshot
      -> UpgradeOrDowngrade -> RunUpgrade | RunDowngrade -> CheckMigrationExitCode
      -> ValidateData -> NotifySuccess
    any failure -> Describe<Reason> -> NotifyFailure (snapshot id + rollback instructions) -> RunbookFailed

The pre-checks refuse to start unless the instance is `available`, keeps automated backups for
at least the configured days and its latest restorable time (PITR) is recent. The snapshot is
`pre-migration-<yyyy-mm-dd-hhmm>` (UTC, from the execution's start time); the instance copies its
tags to snapshots and the runbook adds the revision and execution. The migration runs as an ECS
task (`.sync`); validation runs the same task definition with `validate`, which reports its row
counts back through the task token. The state machine uses JSONata (date formatting and
arithmetic the JSONPath intrinsics lack); see docs/decisions/migration-runbook.md. The expressions
themselves are plain Python in constructs/runbook_expressions.py, unit-tested without a synth.

Exposes `state_machine`, `log_group`.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from config.schema import MigrationConfig
from constructs import Construct
from constructs import runbook_expressions as expr
from constructs.checkov import skip_checkov
from constructs.compliance import acknowledge
from constructs.log_group import EncryptedLogGroup
from constructs.migration_task import MigrationTask
from constructs.runbook_expressions import SNAPSHOT_PREFIX, jsonata
from contract.compliance import REGULATORY_PACKS
from contract.names import TASK_TOKEN_ENV_VAR, state_machine_name

SNAPSHOT_POLL_SECONDS = 30
# Throttling and transient service errors of the AWS SDK integrations (exact error names).
RDS_TRANSIENT_ERRORS = ["Rds.RdsException", "Rds.SdkClientException"]
ECS_TRANSIENT_ERRORS = ["ECS.AmazonECSException", "ECS.SdkClientException"]


class MigrationRunbook(Construct):
    """Pre-checks, snapshot, migration task, validation and notification, per environment.

    Built one phase per method (input, failure path, pre-checks, snapshot, migration, validation and
    success), then the state machine and its role's acknowledgments; every state has a literal id.
    """

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
        self._config = config
        self._environment_name = environment_name
        self._instance_identifier = instance_identifier
        self._task = task
        stack = cdk.Stack.of(self)
        self._instance_arn = stack.format_arn(
            service="rds",
            resource="db",
            resource_name=instance_identifier,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self._snapshot_arn_prefix = stack.format_arn(
            service="rds", resource="snapshot", resource_name="", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        self._snapshot_arns = f"{self._snapshot_arn_prefix}{SNAPSHOT_PREFIX}*"

        validate_input, plan = self._input_states()
        self._notify_failure = self._failure_path(notification_topic)
        describe_database, check_preconditions = self._precheck_states()
        check_snapshot = self._snapshot_states(check_preconditions)
        upgrade_or_downgrade, check_exit_code = self._migration_states()
        validate_data = self._validation_state(check_exit_code)
        validate_data.next(self._success_state(notification_topic))
        check_snapshot.when(
            sfn.Condition.jsonata(jsonata(expr.SNAPSHOT_AVAILABLE)), upgrade_or_downgrade
        ).when(sfn.Condition.jsonata(jsonata(expr.SNAPSHOT_CREATING)), self._wait_for_snapshot).otherwise(
            self._fail_with("SnapshotNotCreated", "SnapshotFailed", expr.SNAPSHOT_FAILED_CAUSE)
        )
        plan.next(describe_database).next(check_preconditions)

        self.log_group = EncryptedLogGroup(
            self, "Logs", retention_days=log_retention_days, encryption_key=encryption_key
        ).log_group
        self.state_machine = self._state_machine(validate_input)
        self._allow_publishing(encryption_key)
        self._acknowledge_role_policy()

    # --- phases ---------------------------------------------------------------------------------
    def _input_states(self) -> tuple[sfn.Choice, sfn.Pass]:
        """ValidateInput -> PlanMigration (names the snapshot) | InvalidInput."""
        invalid_input = sfn.Fail.jsonata(
            self,
            "InvalidInput",
            error="InvalidInput",
            cause='input must be {"action": "upgrade" | "downgrade", "revision": "<alembic revision, 1-64 chars>"}',
        )
        plan = sfn.Pass.jsonata(
            self,
            "PlanMigration",
            comment="Name the pre-migration snapshot after the execution's start time (UTC)",
            assign={
                "action": jsonata(expr.INPUT_ACTION),
                "revision": jsonata(expr.INPUT_REVISION),
                "snapshotId": jsonata(expr.SNAPSHOT_ID),
                "snapshotCreated": False,
                "counts": None,
            },
        )
        validate_input = sfn.Choice.jsonata(
            self, "ValidateInput", comment="upgrade or downgrade, and a revision"
        )
        validate_input.when(sfn.Condition.jsonata(jsonata(expr.VALID_INPUT)), plan).otherwise(invalid_input)
        return validate_input, plan

    def _failure_path(self, notification_topic: sns.ITopic) -> tasks.SnsPublish:
        """NotifyFailure (snapshot id and rollback instructions) -> RunbookFailed."""
        runbook_failed = sfn.Fail.jsonata(
            self, "RunbookFailed", error=jsonata(expr.FAILURE_ERROR), cause=jsonata(expr.FAILURE_CAUSE)
        )
        notify_failure = tasks.SnsPublish.jsonata(
            self,
            "NotifyFailure",
            topic=notification_topic,
            subject=f"RevenuePilot {self._environment_name}: database migration FAILED",
            message=sfn.TaskInput.from_text(jsonata(expr.failure_notice(self._environment_name))),
        )
        notify_failure.add_retry(
            errors=["States.TaskFailed"], max_attempts=3, interval=cdk.Duration.seconds(5)
        )
        notify_failure.add_catch(runbook_failed, errors=["States.ALL"])
        notify_failure.next(runbook_failed)
        return notify_failure

    def _precheck_states(self) -> tuple[tasks.CallAwsService, sfn.Choice]:
        """DescribeDatabase -> CheckPreconditions (available, backups retained, PITR recent)."""
        describe_database = tasks.CallAwsService.jsonata(
            self,
            "DescribeDatabase",
            service="rds",
            action="describeDBInstances",
            iam_action="rds:DescribeDBInstances",
            iam_resources=[self._instance_arn],
            parameters={"DbInstanceIdentifier": self._instance_identifier},
            assign={
                "database": {
                    "status": jsonata(expr.DATABASE_STATUS),
                    "backupRetentionDays": jsonata(expr.DATABASE_BACKUP_RETENTION_DAYS),
                    "latestRestorableTime": jsonata(expr.DATABASE_LATEST_RESTORABLE_TIME),
                }
            },
        )
        describe_database.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        self._catch_into_failure(describe_database, "DescribeDatabaseFailed")
        check_preconditions = sfn.Choice.jsonata(
            self, "CheckPreconditions", comment="available, backups retained, PITR recent"
        )
        return describe_database, check_preconditions

    def _snapshot_states(self, check_preconditions: sfn.Choice) -> sfn.Choice:
        """CreateSnapshot -> TagSnapshot -> WaitForSnapshot <-> DescribeSnapshot -> CheckSnapshot.

        Also routes CheckPreconditions: a failed pre-check ends in its own failure state, otherwise
        the snapshot is created.
        """
        create_snapshot = tasks.CallAwsService.jsonata(
            self,
            "CreateSnapshot",
            comment="Manual snapshot; the instance copies its tags to it (CopyTagsToSnapshot)",
            service="rds",
            action="createDBSnapshot",
            iam_action="rds:CreateDBSnapshot",
            iam_resources=[self._instance_arn, self._snapshot_arns],
            parameters={
                "DbInstanceIdentifier": self._instance_identifier,
                "DbSnapshotIdentifier": jsonata(expr.SNAPSHOT_ID_VARIABLE),
            },
            assign={"snapshotCreated": True},
        )
        self._route_preconditions(check_preconditions, create_snapshot)
        create_snapshot.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(10), backoff_rate=2
        )
        self._catch_into_failure(create_snapshot, "CreateSnapshotFailed")
        tag_snapshot = self._tag_snapshot_state()
        self._wait_for_snapshot = sfn.Wait.jsonata(
            self, "WaitForSnapshot", time=sfn.WaitTime.duration(cdk.Duration.seconds(SNAPSHOT_POLL_SECONDS))
        )
        describe_snapshot = tasks.CallAwsService.jsonata(
            self,
            "DescribeSnapshot",
            service="rds",
            action="describeDBSnapshots",
            iam_action="rds:DescribeDBSnapshots",
            iam_resources=[self._instance_arn, self._snapshot_arns],
            parameters={"DbSnapshotIdentifier": jsonata(expr.SNAPSHOT_ID_VARIABLE)},
            assign={"snapshotStatus": jsonata(expr.SNAPSHOT_STATUS)},
        )
        describe_snapshot.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=5, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        self._catch_into_failure(describe_snapshot, "DescribeSnapshotFailed")
        check_snapshot = sfn.Choice.jsonata(
            self, "CheckSnapshot", comment="wait until the snapshot is available"
        )
        create_snapshot.next(tag_snapshot).next(self._wait_for_snapshot).next(describe_snapshot).next(
            check_snapshot
        )
        return check_snapshot

    def _route_preconditions(self, check_preconditions: sfn.Choice, create_snapshot: sfn.IChainable) -> None:
        minimum_days = self._config.minimum_backup_retention_days
        max_lag_minutes = self._config.max_restore_lag_minutes
        check_preconditions.when(
            sfn.Condition.jsonata(jsonata(expr.DATABASE_NOT_AVAILABLE)),
            self._fail_with(
                "DatabaseNotAvailable",
                "DatabaseNotAvailable",
                expr.database_not_available_cause(self._instance_identifier),
            ),
        ).when(
            sfn.Condition.jsonata(jsonata(expr.backup_retention_too_short(minimum_days))),
            self._fail_with(
                "BackupRetentionTooShort",
                "BackupRetentionTooShort",
                expr.backup_retention_too_short_cause(minimum_days),
            ),
        ).when(
            sfn.Condition.jsonata(jsonata(expr.point_in_time_recovery_stale(max_lag_minutes))),
            self._fail_with(
                "PointInTimeRecoveryStale",
                "PointInTimeRecoveryStale",
                expr.point_in_time_recovery_stale_cause(max_lag_minutes),
            ),
        ).otherwise(create_snapshot)

    def _tag_snapshot_state(self) -> tasks.CallAwsService:
        tag_snapshot = tasks.CallAwsService.jsonata(
            self,
            "TagSnapshot",
            service="rds",
            action="addTagsToResource",
            iam_action="rds:AddTagsToResource",
            iam_resources=[self._snapshot_arns],
            parameters={
                "ResourceName": jsonata(expr.snapshot_arn(self._snapshot_arn_prefix)),
                "Tags": [
                    {"Key": "revenuepilot:purpose", "Value": "pre-migration"},
                    {"Key": "revenuepilot:migration-action", "Value": jsonata(expr.ACTION)},
                    {"Key": "revenuepilot:migration-revision", "Value": jsonata(expr.REVISION)},
                    {"Key": "revenuepilot:execution", "Value": jsonata(expr.EXECUTION_NAME)},
                ],
            },
        )
        tag_snapshot.add_retry(
            errors=RDS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        self._catch_into_failure(tag_snapshot, "TagSnapshotFailed")
        return tag_snapshot

    def _migration_states(self) -> tuple[sfn.Choice, sfn.Choice]:
        """UpgradeOrDowngrade -> RunUpgrade | RunDowngrade -> CheckMigrationExitCode."""
        check_exit_code = sfn.Choice.jsonata(
            self, "CheckMigrationExitCode", comment="Alembic's exit status is the migration container's"
        )
        migration_steps: list[tasks.EcsRunTask] = []
        for action, state_id in (("upgrade", "RunUpgrade"), ("downgrade", "RunDowngrade")):
            step = self._run_task(
                state_id,
                [*self._task.base_arguments, action, jsonata(expr.REVISION)],
                comment=f"alembic {action} <revision> as the migration role (ECS task, .sync)",
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                task_timeout=sfn.Timeout.duration(
                    cdk.Duration.minutes(self._config.migration_timeout_minutes)
                ),
                assign={
                    "exitCode": jsonata(expr.MIGRATION_EXIT_CODE),
                    "stoppedReason": jsonata(expr.MIGRATION_STOPPED_REASON),
                },
            )
            step.add_retry(
                errors=ECS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(15), backoff_rate=2
            )
            self._catch_into_failure(step, "MigrationTaskFailed")
            step.next(check_exit_code)
            migration_steps.append(step)
        run_upgrade, run_downgrade = migration_steps
        upgrade_or_downgrade = sfn.Choice.jsonata(self, "UpgradeOrDowngrade")
        upgrade_or_downgrade.when(
            sfn.Condition.jsonata(jsonata(expr.DOWNGRADE_REQUESTED)), run_downgrade
        ).otherwise(run_upgrade)
        return upgrade_or_downgrade, check_exit_code

    def _validation_state(self, check_exit_code: sfn.Choice) -> tasks.EcsRunTask:
        """CheckMigrationExitCode -> ValidateData (row counts via the task token) | MigrationExitedNonZero."""
        validation_arguments: list[str] = []
        for query_name, sql in self._config.validation_queries:
            validation_arguments += ["--query", f"{query_name}={sql}"]
        validate_data = self._run_task(
            "ValidateData",
            [*self._task.base_arguments, "validate", *validation_arguments],
            # The run's own callback token, not configuration: the task definition has no environment.
            environment=[
                tasks.TaskEnvironmentVariable(name=TASK_TOKEN_ENV_VAR, value=jsonata(expr.TASK_TOKEN))
            ],
            comment="Row counts as the migration role in a read-only transaction; reported via the task token",
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(self._config.validation_timeout_minutes)),
            assign={"counts": jsonata(expr.VALIDATION_COUNTS)},
        )
        validate_data.add_retry(
            errors=ECS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(15), backoff_rate=2
        )
        self._catch_into_failure(validate_data, "ValidationFailed")
        check_exit_code.when(
            sfn.Condition.jsonata(jsonata(expr.MIGRATION_SUCCEEDED)), validate_data
        ).otherwise(self._fail_with("MigrationExitedNonZero", "MigrationFailed", expr.MIGRATION_FAILED_CAUSE))
        return validate_data

    def _success_state(self, notification_topic: sns.ITopic) -> tasks.SnsPublish:
        """NotifySuccess: the summary is both the notification and the execution's output."""
        notify_success = tasks.SnsPublish.jsonata(
            self,
            "NotifySuccess",
            topic=notification_topic,
            subject=f"RevenuePilot {self._environment_name}: database migration succeeded",
            message=sfn.TaskInput.from_text(jsonata(expr.success_notice(self._environment_name))),
            outputs=jsonata(expr.success_summary(self._environment_name)),
        )
        notify_success.add_retry(
            errors=["States.TaskFailed"], max_attempts=3, interval=cdk.Duration.seconds(5)
        )
        return notify_success

    # --- the state machine and its role ---------------------------------------------------------
    def _state_machine(self, start: sfn.IChainable) -> sfn.StateMachine:
        config = self._config
        return sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name(self._environment_name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            query_language=sfn.QueryLanguage.JSONATA,
            comment=f"RevenuePilot {self._environment_name}: the migration runbook (ops guide) with rollback notices",
            definition_body=sfn.DefinitionBody.from_chainable(start),
            timeout=cdk.Duration.minutes(
                config.migration_timeout_minutes + config.validation_timeout_minutes + 180
            ),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )

    def _allow_publishing(self, encryption_key: kms.IKey) -> None:
        """The topic is encrypted with the database CMK: publishing needs a data key."""
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[encryption_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"sns.{cdk.Stack.of(self).region}.amazonaws.com"}
                },
            )
        )

    def _acknowledge_role_policy(self) -> None:
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
            f"AwsSolutions-IAM5[Resource::{self._snapshot_arns}]",
            "Each execution creates a new snapshot named pre-migration-<start time>; the grant covers only "
            "that prefix in this account and region.",
        )
        for pack in REGULATORY_PACKS:
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

    # --- shared steps -----------------------------------------------------------------------------
    def _fail_with(self, state_id: str, error: str, cause_expression: str) -> sfn.Chain:
        """A failure state: assign `$failure` and notify."""
        return sfn.Pass.jsonata(self, state_id, assign=expr.failure(error, cause_expression)).next(
            self._notify_failure
        )

    def _catch_into_failure(
        self, state: tasks.SnsPublish | tasks.CallAwsService | tasks.EcsRunTask, error: str
    ) -> None:
        state.add_catch(
            self._notify_failure,
            errors=["States.ALL"],
            assign=expr.failure(error, expr.CAUGHT_ERROR_CAUSE),
        )

    def _run_task(
        self,
        state_id: str,
        command: list[str],
        environment: list[tasks.TaskEnvironmentVariable] | None = None,
        **kwargs: Any,
    ) -> tasks.EcsRunTask:
        """The migration task definition run with `command` (and `environment`) as a Fargate task."""
        task = self._task
        return tasks.EcsRunTask.jsonata(
            self,
            state_id,
            cluster=task.cluster,
            task_definition=task.task_definition,
            launch_target=tasks.EcsFargateLaunchTarget(
                platform_version=cdk.aws_ecs.FargatePlatformVersion.LATEST
            ),
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
