"""The migration runbook of the ops guide as a Step Functions state machine, one visible state per step.

Input: `{"action": "upgrade" | "downgrade", "revision": "<revision, contract/revision.py grammar>",
"requestedBy": "<optional caller ARN>", "maintenance": <optional bool>}`.

    ValidateInput -> PlanMigration [-> CheckRevisionAppliedFirst (production: the staging record)]
      -> ListRunningExecutions -> CheckNoOtherExecution -> DescribeDatabase -> CheckPreconditions
      -> MaintenanceRequested [-> SetMaintenanceMode]
      -> CreateSnapshot -> TagSnapshot -> WaitForSnapshot <-> DescribeSnapshot -> CheckSnapshot
      -> ValidateBefore -> UpgradeOrDowngrade -> RunUpgrade | RunDowngrade -> CheckMigrationExitCode
      -> ValidateData -> CompareCounts -> CheckCounts
      [-> CheckRevisionAfter -> RecordAppliedRevision (staging: the record production reads)]
      -> CheckMaintenanceAfterSuccess [-> ClearMaintenanceMode] -> WriteSuccessEvidence -> NotifySuccess
    any failure -> <Reason> -> CheckMaintenanceAfterFailure [-> ClearMaintenanceAfterFailure (only if the
      migration had not started)] -> WriteFailureEvidence -> NotifyFailure (snapshot id, evidence link,
      maintenance state, rollback instructions) -> RunbookFailed

The revision must match the shared grammar (no option-like values such as `--help`). The runbook
refuses to run while another execution of it is running (fails closed). The pre-checks refuse to
start unless the instance is `available`, keeps automated backups for at least the configured days
and its latest restorable time (PITR) is recent. The snapshot is
`pre-migration-<yyyy-mm-dd-hhmmss>-<execution name>` (UTC start time; unique per execution); the
instance copies its tags to snapshots and the runbook adds the revision and execution. The
migration runs as an ECS task (`.sync`, never retried: a retry after the task started would run a
second Alembic); validation runs the same task definition with `validate` before and after the
migration, each reporting its row counts back through the task token, and a count that dropped
beyond its configured tolerance fails the runbook. The state machine uses JSONata (date formatting and
arithmetic the JSONPath intrinsics lack); see docs/decisions/migration-runbook.md. The expressions
themselves are plain Python in constructs/runbook_expressions.py, unit-tested without a synth.

Records (issue 13, item 7): an evidence object per execution (success and failure) in the Object Lock
bucket (`s3:PutObject` on this environment's prefix only, written with the bucket's default
retention); a failure to write it is caught and the notification says so. Where the configuration
says so, an applied-revision SSM record after success (staging), and, before anything else, a check
of another environment's record through a read-only role in its account (production; the task's
`Credentials`). Maintenance mode: an SSM parameter the runbook creates/overwrites (absent = off).

Exposes `state_machine`, `log_group`.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from constructs.runbook_end_alert import RunbookEndAlert
from constructs.runbook_expressions import SNAPSHOT_PREFIX, jsonata
from contract.compliance import REGULATORY_PACKS
from contract.names import (
    TASK_TOKEN_ENV_VAR,
    applied_revision_path,
    evidence_prefix,
    maintenance_parameter_name,
    runbook_role_name,
    state_machine_name,
)

SNAPSHOT_POLL_SECONDS = 30
# Throttling and transient service errors of the AWS SDK integrations (exact error names).
RDS_TRANSIENT_ERRORS = ["Rds.RdsException", "Rds.SdkClientException"]
ECS_TRANSIENT_ERRORS = ["ECS.AmazonECSException", "ECS.SdkClientException"]
SFN_TRANSIENT_ERRORS = ["Sfn.SfnException", "Sfn.SdkClientException"]
SSM_TRANSIENT_ERRORS = ["Ssm.SsmException", "Ssm.SdkClientException"]
S3_TRANSIENT_ERRORS = ["S3.S3Exception", "S3.SdkClientException"]
PARAMETER_NOT_FOUND = "Ssm.ParameterNotFoundException"


@dataclass(frozen=True, kw_only=True)
class AppliedCheck:
    """Where this runbook looks for the record that another environment applied the revision first."""

    environment_name: str  # the environment that must have applied it (config migration.require_applied_in)
    reader_role_arn: str  # the read-only role in that environment's account (GetParameter on its path)

    @property
    def parameter_path(self) -> str:
        return applied_revision_path(self.environment_name)


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
        evidence_bucket_name: str,
        applied_check: AppliedCheck | None = None,
        records_applied_revisions: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._environment_name = environment_name
        self._evidence_bucket = evidence_bucket_name
        self._applied_check = applied_check
        self._records_applied = records_applied_revisions
        self._exact_revision = config.requires_exact_revision
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
        self._region, self._partition = stack.region, stack.partition
        self._maintenance_parameter = maintenance_parameter_name(environment_name)
        self._applied_path = applied_revision_path(environment_name)
        self._applied_records = self._parameter_arn(self._applied_path + "/*")
        self._evidence_objects = (
            f"arn:{self._partition}:s3:::{evidence_bucket_name}/{evidence_prefix(environment_name)}/*"
        )

        self._state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name(environment_name),
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

        validate_input, plan = self._input_states()
        self._failure_entry = self._failure_path(notification_topic)
        list_running, check_alone = self._one_at_a_time_states()
        describe_database, check_preconditions = self._precheck_states()
        check_snapshot = self._snapshot_states(check_preconditions)
        upgrade_or_downgrade, check_exit_code = self._migration_states()
        validate_before, validate_data = self._validation_states(check_exit_code)
        validate_before.next(upgrade_or_downgrade)
        validate_data.next(self._count_comparison(self._success_path(notification_topic)))
        check_snapshot.when(sfn.Condition.jsonata(jsonata(expr.SNAPSHOT_AVAILABLE)), validate_before).when(
            sfn.Condition.jsonata(jsonata(expr.SNAPSHOT_TIMED_OUT)),
            self._fail_with("SnapshotTimedOut", "SnapshotTimedOut", expr.SNAPSHOT_TIMED_OUT_CAUSE),
        ).when(sfn.Condition.jsonata(jsonata(expr.SNAPSHOT_CREATING)), self._wait_for_snapshot).otherwise(
            self._fail_with("SnapshotNotCreated", "SnapshotFailed", expr.SNAPSHOT_FAILED_CAUSE)
        )
        check_alone.when(
            sfn.Condition.jsonata(jsonata(expr.ANOTHER_EXECUTION_RUNNING)),
            self._fail_with(
                "AnotherExecutionRunning", "ExecutionAlreadyRunning", expr.ANOTHER_EXECUTION_RUNNING_CAUSE
            ),
        ).otherwise(describe_database)
        if applied_check is not None:
            plan.next(self._applied_check_state(applied_check))
            self._check_applied_state.otherwise(list_running)
        else:
            plan.next(list_running)
        list_running.next(check_alone)
        describe_database.next(check_preconditions)

        self.log_group = EncryptedLogGroup(
            self, "Logs", retention_days=log_retention_days, encryption_key=encryption_key
        ).log_group
        self.state_machine = self._state_machine(validate_input)
        RunbookEndAlert(
            self,
            "EndedWithoutRecord",
            environment_name=environment_name,
            state_machine_arn=self.state_machine.state_machine_arn,
            topic=notification_topic,
        )
        self._name_role()
        self._allow_publishing(encryption_key)
        self._acknowledge_role_policy()

    # --- phases ---------------------------------------------------------------------------------
    def _input_states(self) -> tuple[sfn.Choice, sfn.Pass]:
        """ValidateInput -> PlanMigration (names the snapshot) | InvalidInput."""
        invalid_input = sfn.Fail.jsonata(
            self,
            "InvalidInput",
            error="InvalidInput",
            cause=expr.invalid_input_cause(exact_revision=self._exact_revision),
        )
        plan = sfn.Pass.jsonata(
            self,
            "PlanMigration",
            comment="Name the pre-migration snapshot after the execution's start time (UTC) and name",
            assign={
                "action": jsonata(expr.INPUT_ACTION),
                "revision": jsonata(expr.INPUT_REVISION),
                "snapshotId": jsonata(expr.SNAPSHOT_ID),
                "snapshotCreated": False,
                "snapshotDeadline": jsonata(expr.SNAPSHOT_DEADLINE),
                "countsBefore": None,
                "counts": None,
                "comparison": None,
                # The records (evidence, applied revision, maintenance mode); every path reads them.
                "requestedBy": jsonata(expr.REQUESTED_BY),
                "maintenance": jsonata(expr.MAINTENANCE_PLAN),
                "migrationStarted": False,
                "revisionsBefore": None,
                "revisionsAfter": None,
                "snapshotAvailableAt": None,
                "migrationStartedAt": None,
                "migrationEndedAt": None,
                "evidenceKey": jsonata(expr.evidence_key(self._environment_name)),
                "evidence": {"written": False, "error": "not attempted"},
                "appliedRecord": jsonata(
                    expr.APPLIED_RECORD_INITIAL if self._records_applied else expr.APPLIED_RECORD_NOT_KEPT
                ),
                "appliedCheck": None,
            },
        )
        rule = (
            "a full revision id (exact-id rule)" if self._exact_revision else "contract/revision.py's grammar"
        )
        validate_input = sfn.Choice.jsonata(
            self,
            "ValidateInput",
            comment=f"upgrade or downgrade, a revision of {rule}, optional requestedBy (an ARN) and maintenance",
        )
        validate_input.when(
            sfn.Condition.jsonata(jsonata(expr.valid_input(exact_revision=self._exact_revision))), plan
        ).otherwise(invalid_input)
        return validate_input, plan

    def _failure_path(self, notification_topic: sns.ITopic) -> sfn.Choice:
        """CheckMaintenanceAfterFailure [-> ClearMaintenanceAfterFailure] -> WriteFailureEvidence -> NotifyFailure
        (snapshot id, evidence link, maintenance state, rollback instructions) -> RunbookFailed.

        Maintenance mode is cleared only if the migration had not started; after that it stays on and the
        notice says how to clear it. A failure to write the evidence never swallows the notification.
        """
        runbook_failed = sfn.Fail.jsonata(
            self, "RunbookFailed", error=jsonata(expr.FAILURE_ERROR), cause=jsonata(expr.FAILURE_CAUSE)
        )
        notify_failure = tasks.SnsPublish.jsonata(
            self,
            "NotifyFailure",
            topic=notification_topic,
            subject=f"RevenuePilot {self._environment_name}: database migration FAILED",
            message=sfn.TaskInput.from_text(
                jsonata(
                    expr.failure_notice(
                        self._environment_name,
                        evidence_bucket=self._evidence_bucket,
                        region=self._region,
                        exact_revision=self._exact_revision,
                    )
                )
            ),
        )
        notify_failure.add_retry(
            errors=["States.TaskFailed"], max_attempts=3, interval=cdk.Duration.seconds(5)
        )
        notify_failure.add_catch(runbook_failed, errors=["States.ALL"])
        notify_failure.next(runbook_failed)
        write_evidence = self._evidence_write("WriteFailureEvidence", outcome="failed", then=notify_failure)
        clear = self._put_maintenance(
            "ClearMaintenanceAfterFailure",
            state="off",
            assign=expr.MAINTENANCE_CLEARED_AFTER_FAILURE,
            then=write_evidence,
        )
        return (
            sfn.Choice.jsonata(
                self,
                "CheckMaintenanceAfterFailure",
                comment="Clear maintenance mode only if the migration had not started",
            )
            .when(sfn.Condition.jsonata(jsonata(expr.MAINTENANCE_TO_CLEAR_AFTER_FAILURE)), clear)
            .otherwise(write_evidence)
        )

    def _evidence_write(self, state_id: str, *, outcome: str, then: sfn.IChainable) -> tasks.CallAwsService:
        """PutObject of the evidence record (the bucket's default retention applies); on error, go on to `then`."""
        write = tasks.CallAwsService.jsonata(
            self,
            state_id,
            comment="The evidence record of this execution (Object Lock bucket); no PHI, no secret",
            service="s3",
            action="putObject",
            iam_action="s3:PutObject",
            iam_resources=[self._evidence_objects],
            parameters={
                "Bucket": self._evidence_bucket,
                "Key": jsonata("$evidenceKey"),
                "Body": jsonata(expr.evidence_record(self._environment_name, outcome=outcome)),
                "ContentType": "application/json",
                # Object Lock refuses a PUT without an integrity checksum (Content-MD5 or a flexible checksum).
                "ChecksumAlgorithm": "SHA256",
            },
            assign={"evidence": jsonata(expr.EVIDENCE_WRITTEN)},
        )
        write.add_retry(
            errors=S3_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        write.add_catch(then, errors=["States.ALL"], assign={"evidence": jsonata(expr.EVIDENCE_NOT_WRITTEN)})
        write.next(then)
        return write

    def _put_maintenance(
        self, state_id: str, *, state: str, assign: str, then: sfn.IChainable | None = None
    ) -> tasks.CallAwsService:
        """PutParameter (Overwrite) of the maintenance-mode flag; the runbook owns it, not CloudFormation."""
        put = self._put_parameter(
            state_id,
            comment=f"Maintenance mode {state} ({self._maintenance_parameter})",
            resource=self._parameter_arn(self._maintenance_parameter),
            name=self._maintenance_parameter,
            value=expr.maintenance_value(state),
            assign={"maintenance": jsonata(assign)},
        )
        if then is not None:
            # Clearing failed: go on, and say in the notice that it is still on and how to clear it.
            put.add_catch(
                then,
                errors=["States.ALL"],
                assign={"maintenance": jsonata(expr.maintenance_not_cleared(self._environment_name))},
            )
            put.next(then)
        return put

    def _put_parameter(
        self, state_id: str, *, comment: str, resource: str, name: str, value: str, assign: dict[str, Any]
    ) -> tasks.CallAwsService:
        """An SSM PutParameter (String, Overwrite) of `value` (an expression) to `name` (a literal or an
        expression), retried on throttling; callers add their own catch."""
        put = tasks.CallAwsService.jsonata(
            self,
            state_id,
            comment=comment,
            service="ssm",
            action="putParameter",
            iam_action="ssm:PutParameter",
            iam_resources=[resource],
            parameters={"Name": name, "Value": jsonata(value), "Type": "String", "Overwrite": True},
            assign=assign,
        )
        put.add_retry(
            errors=SSM_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        return put

    def _parameter_arn(self, name: str) -> str:
        return cdk.Stack.of(self).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=name.lstrip("/"),
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _applied_check_state(self, check: AppliedCheck) -> tasks.CallAwsService:
        """CheckRevisionAppliedFirst: GetParameter `<path>/<revision>` in the other environment's account.

        The call runs with the credentials of the read-only role there (`Credentials`), so the state machine
        role's only grant for it is sts:AssumeRole on that role. A missing record is RevisionNotApplied.
        """
        read = tasks.CallAwsService.jsonata(
            self,
            "CheckRevisionAppliedFirst",
            comment=f"Refuse a revision {check.environment_name} has not recorded as applied (read-only role there)",
            service="ssm",
            action="getParameter",
            iam_action="sts:AssumeRole",
            iam_resources=[check.reader_role_arn],
            parameters={"Name": jsonata(expr.applied_check_name(check.parameter_path))},
            credentials=sfn.Credentials(
                role=sfn.TaskRole.from_role(
                    iam.Role.from_role_arn(self, "AppliedReaderRole", check.reader_role_arn, mutable=False)
                )
            ),
            assign={"appliedCheck": jsonata(expr.applied_check_found(check.parameter_path))},
            # Not the response: the value is another account's text (it stays in the TaskSucceeded event only).
            outputs=jsonata("$states.input"),
        )
        read.add_retry(
            errors=SSM_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        environment = check.environment_name.capitalize()
        not_applied = sfn.Pass.jsonata(
            self,
            "RevisionNotApplied",
            assign=expr.failure(
                f"RevisionNotAppliedIn{environment}",
                expr.revision_not_applied_cause(check.environment_name, check.parameter_path),
            ),
        ).next(self._failure_entry)
        invalid = self._fail_with(
            "AppliedRecordInvalid",
            f"RevisionNotAppliedIn{environment}",
            expr.applied_record_invalid_cause(check.environment_name, check.parameter_path),
        )
        read.add_catch(not_applied, errors=[PARAMETER_NOT_FOUND])
        # A value that is not JSON ($parse fails): fail closed, without the value.
        read.add_catch(
            invalid,
            errors=["States.QueryEvaluationError"],
            assign={"appliedCheck": jsonata(expr.APPLIED_CHECK_UNREADABLE)},
        )
        self._catch_into_failure(read, "AppliedCheckFailed")
        self._check_applied_state = (
            sfn.Choice.jsonata(
                self,
                "CheckAppliedState",
                comment=f'{check.environment_name}\'s record must say state "applied"',
            )
            .when(
                sfn.Condition.jsonata(jsonata(expr.APPLIED_CHECK_ROLLED_BACK)),
                self._fail_with(
                    "RevisionRolledBack",
                    f"RevisionRolledBackIn{environment}",
                    expr.revision_rolled_back_cause(check.environment_name, check.parameter_path),
                ),
            )
            .when(sfn.Condition.jsonata(jsonata(f"$not({expr.APPLIED_CHECK_PASSED})")), invalid)
        )
        read.next(self._check_applied_state)
        return read

    def _one_at_a_time_states(self) -> tuple[tasks.CallAwsService, sfn.Choice]:
        """ListRunningExecutions -> CheckNoOtherExecution: stop if another execution is running.

        Fails closed: two executions started together both see each other and both stop.
        """
        list_running = tasks.CallAwsService.jsonata(
            self,
            "ListRunningExecutions",
            comment="Refuse to run while another execution of this runbook is running",
            service="sfn",
            action="listExecutions",
            iam_action="states:ListExecutions",
            iam_resources=[self._state_machine_arn],
            parameters={
                "StateMachineArn": jsonata(expr.OWN_STATE_MACHINE),
                "StatusFilter": "RUNNING",
                "MaxResults": 100,
            },
            assign={"otherExecutions": jsonata(expr.OTHER_EXECUTIONS)},
        )
        list_running.add_retry(
            errors=SFN_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        self._catch_into_failure(list_running, "ConcurrencyCheckFailed")
        return list_running, sfn.Choice.jsonata(self, "CheckNoOtherExecution")

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
        self._route_preconditions(check_preconditions, self._maintenance_before(create_snapshot))
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
            assign={
                "snapshotStatus": jsonata(expr.SNAPSHOT_STATUS),
                "snapshotAvailableAt": jsonata(expr.SNAPSHOT_AVAILABLE_AT),
            },
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

    def _maintenance_before(self, create_snapshot: tasks.CallAwsService) -> sfn.Choice:
        """MaintenanceRequested -> ReadMaintenanceMode -> CheckMaintenanceAlreadyOn -> [SetMaintenanceMode (on)]
        -> CreateSnapshot: the snapshot follows the switch. A flag that is already on (an operator's) is left
        alone and never cleared by this execution."""
        set_on = self._put_maintenance("SetMaintenanceMode", state="on", assign=expr.MAINTENANCE_SET)
        self._catch_into_failure(set_on, "MaintenanceModeNotSet")
        set_on.next(create_snapshot)
        read = tasks.CallAwsService.jsonata(
            self,
            "ReadMaintenanceMode",
            comment=f"Is {self._maintenance_parameter} on already (absent: off)?",
            service="ssm",
            action="getParameter",
            iam_action="ssm:GetParameter",
            iam_resources=[self._parameter_arn(self._maintenance_parameter)],
            parameters={"Name": self._maintenance_parameter},
            assign={"maintenanceWasOn": jsonata(expr.MAINTENANCE_ALREADY_ON)},
            outputs=jsonata("$states.input"),
        )
        read.add_retry(
            errors=SSM_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(5), backoff_rate=2
        )
        read.add_catch(set_on, errors=[PARAMETER_NOT_FOUND], assign={"maintenanceWasOn": False})
        self._catch_into_failure(read, "MaintenanceModeNotRead")
        leave = sfn.Pass.jsonata(
            self,
            "MaintenanceAlreadyOn",
            comment="Set before this execution: leave it, and do not clear it afterwards",
            assign={"maintenance": jsonata(expr.MAINTENANCE_LEFT_AS_IT_WAS)},
        ).next(create_snapshot)
        read.next(
            sfn.Choice.jsonata(self, "CheckMaintenanceAlreadyOn")
            .when(sfn.Condition.jsonata(jsonata(expr.MAINTENANCE_WAS_ON)), leave)
            .otherwise(set_on)
        )
        return (
            sfn.Choice.jsonata(self, "MaintenanceRequested", comment="input maintenance: true")
            .when(sfn.Condition.jsonata(jsonata(expr.MAINTENANCE_REQUESTED)), read)
            .otherwise(create_snapshot)
        )

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
                    "migrationEndedAt": jsonata(expr.NOW),
                },
            )
            # No Retry: with `.sync`, an error after RunTask (a failed DescribeTasks poll) would start a
            # second Alembic next to the first. Any error goes to the failure notice; the operator checks
            # the cluster's tasks and reruns.
            self._catch_into_failure(step, "MigrationTaskFailed")
            step.next(check_exit_code)
            migration_steps.append(step)
        run_upgrade, run_downgrade = migration_steps
        upgrade_or_downgrade = sfn.Choice.jsonata(self, "UpgradeOrDowngrade")
        upgrade_or_downgrade.when(
            sfn.Condition.jsonata(jsonata(expr.DOWNGRADE_REQUESTED)), run_downgrade
        ).otherwise(run_upgrade)
        return upgrade_or_downgrade, check_exit_code

    def _validation_states(self, check_exit_code: sfn.Choice) -> tuple[tasks.EcsRunTask, tasks.EcsRunTask]:
        """ValidateBefore (after the snapshot) and, after CheckMigrationExitCode, ValidateData | MigrationExitedNonZero."""
        validate_before = self._validation_run(
            "ValidateBefore",
            "Row counts and revision before the migration (read-only, as the migration role); via the task token",
            {
                "countsBefore": jsonata(expr.VALIDATION_COUNTS),
                "revisionsBefore": jsonata(expr.VALIDATION_REVISIONS),
                # The migration task is next: from here on a failure leaves maintenance mode on.
                "migrationStarted": True,
                "migrationStartedAt": jsonata(expr.NOW),
            },
        )
        validate_data = self._validation_run(
            "ValidateData",
            "Row counts and revision after the migration (read-only, as the migration role); via the task token",
            {"counts": jsonata(expr.VALIDATION_COUNTS), "revisionsAfter": jsonata(expr.VALIDATION_REVISIONS)},
        )
        check_exit_code.when(
            sfn.Condition.jsonata(jsonata(expr.MIGRATION_SUCCEEDED)), validate_data
        ).otherwise(
            self._fail_with(
                "MigrationExitedNonZero",
                "MigrationFailed",
                expr.MIGRATION_FAILED_CAUSE,
                summary_expression=expr.MIGRATION_FAILED_SUMMARY,
            )
        )
        return validate_before, validate_data

    def _validation_run(self, state_id: str, comment: str, assign: dict[str, Any]) -> tasks.EcsRunTask:
        validation_arguments: list[str] = []
        for query_name, sql in self._config.validation_queries:
            validation_arguments += ["--query", f"{query_name}={sql}"]
        step = self._run_task(
            state_id,
            [*self._task.base_arguments, "validate", *validation_arguments],
            # The run's own callback token, not configuration: the task definition has no environment.
            environment=[
                tasks.TaskEnvironmentVariable(name=TASK_TOKEN_ENV_VAR, value=jsonata(expr.TASK_TOKEN))
            ],
            comment=comment,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(self._config.validation_timeout_minutes)),
            assign=assign,
        )
        # A second read-only validate run is harmless, unlike a second migration.
        step.add_retry(
            errors=ECS_TRANSIENT_ERRORS, max_attempts=3, interval=cdk.Duration.seconds(15), backoff_rate=2
        )
        self._catch_into_failure(step, "ValidationFailed")
        return step

    def _count_comparison(self, on_success: sfn.IChainable) -> sfn.Chain:
        """CompareCounts -> CheckCounts: a count that dropped beyond its tolerance fails (CountsDropped)."""
        tolerances = {
            name: self._config.decrease_tolerance_percent(name) for name, _ in self._config.validation_queries
        }
        compare_counts = sfn.Pass.jsonata(
            self,
            "CompareCounts",
            comment="Each count after vs before; a drop beyond migration.validation_decrease_tolerance_percent fails",
            assign={"comparison": jsonata(expr.counts_comparison(tolerances))},
        )
        check_counts = sfn.Choice.jsonata(self, "CheckCounts")
        check_counts.when(
            sfn.Condition.jsonata(jsonata(expr.COUNTS_DROPPED)),
            self._fail_with("CountsDropped", "CountsDropped", expr.COUNTS_DROPPED_CAUSE),
        ).otherwise(on_success)
        return compare_counts.next(check_counts)

    def _success_path(self, notification_topic: sns.ITopic) -> sfn.Choice:
        """[CheckRevisionAfter -> RecordAppliedRevision] -> CheckMaintenanceAfterSuccess [-> ClearMaintenanceMode]
        -> WriteSuccessEvidence -> NotifySuccess. A record, clear or write that fails is reported, not fatal:
        the migration itself has succeeded."""
        notify_success = tasks.SnsPublish.jsonata(
            self,
            "NotifySuccess",
            topic=notification_topic,
            subject=f"RevenuePilot {self._environment_name}: database migration succeeded",
            message=sfn.TaskInput.from_text(
                jsonata(
                    expr.success_notice(
                        self._environment_name, evidence_bucket=self._evidence_bucket, region=self._region
                    )
                )
            ),
            outputs=jsonata(
                expr.success_summary(
                    self._environment_name, evidence_bucket=self._evidence_bucket, region=self._region
                )
            ),
        )
        notify_success.add_retry(
            errors=["States.TaskFailed"], max_attempts=3, interval=cdk.Duration.seconds(5)
        )
        write_evidence = self._evidence_write(
            "WriteSuccessEvidence", outcome="succeeded", then=notify_success
        )
        clear = self._put_maintenance(
            "ClearMaintenanceMode", state="off", assign=expr.MAINTENANCE_CLEARED, then=write_evidence
        )
        after_records = (
            sfn.Choice.jsonata(self, "CheckMaintenanceAfterSuccess")
            .when(sfn.Condition.jsonata(jsonata(expr.MAINTENANCE_ON)), clear)
            .otherwise(write_evidence)
        )
        if not self._records_applied:
            return after_records
        record = self._put_parameter(
            "RecordAppliedRevision",
            comment=f"{self._applied_path}/<revision after>: what another environment's runbook checks",
            resource=self._applied_records,
            name=jsonata(expr.applied_record_name(self._applied_path)),
            value=expr.APPLIED_RECORD_VALUE,
            assign={"appliedRecord": jsonata(expr.applied_record_written(self._applied_path))},
        )
        left = self._rolled_back_record(after_records)
        record.add_catch(
            left,
            errors=["States.ALL"],
            assign={"appliedRecord": jsonata(expr.APPLIED_RECORD_NOT_WRITTEN)},
        )
        record.next(left)
        return (
            sfn.Choice.jsonata(
                self, "CheckRevisionAfter", comment="Record only a single revision after (not several heads)"
            )
            .when(sfn.Condition.jsonata(jsonata(expr.HAS_ONE_REVISION_AFTER)), record)
            .otherwise(left)
        )

    def _rolled_back_record(self, then: sfn.IChainable) -> sfn.Choice:
        """CheckRevisionLeft [-> RecordRolledBackRevision]: a downgrade overwrites the record of the revision it
        came from with state "rolled-back", so production no longer accepts it."""
        mark = self._put_parameter(
            "RecordRolledBackRevision",
            comment=f"{self._applied_path}/<revision before>: rolled back, no longer applied",
            resource=self._applied_records,
            name=jsonata(expr.rolled_back_record_name(self._applied_path)),
            value=expr.ROLLED_BACK_RECORD_VALUE,
            assign={"appliedRecord": jsonata(expr.rolled_back_record_written(self._applied_path))},
        )
        mark.add_catch(
            then,
            errors=["States.ALL"],
            assign={"appliedRecord": jsonata(expr.ROLLED_BACK_RECORD_NOT_WRITTEN)},
        )
        mark.next(then)
        return (
            sfn.Choice.jsonata(self, "CheckRevisionLeft", comment="A downgrade marks the revision it left")
            .when(sfn.Condition.jsonata(jsonata(expr.LEFT_ONE_REVISION)), mark)
            .otherwise(then)
        )

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
                # one migration and two validation runs (before and after), plus snapshot and checks
                config.migration_timeout_minutes + 2 * config.validation_timeout_minutes + 180
            ),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )

    def _name_role(self) -> None:
        """A deterministic role name: another environment's reader role trusts exactly this ARN."""
        role = self.state_machine.role.node.default_child
        assert isinstance(role, iam.CfnRole)
        role.role_name = runbook_role_name(self._environment_name)

    def _allow_publishing(self, encryption_key: kms.IKey) -> None:
        """The topic and the evidence bucket are encrypted with the database CMK: both need a data key."""
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[encryption_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sns.{self._region}.amazonaws.com"}},
            )
        )
        # SSE-KMS PutObject (with a bucket key) needs only GenerateDataKey.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey"],
                resources=[encryption_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{self._region}.amazonaws.com"}},
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
            "Each execution creates a new snapshot named pre-migration-<start time>-<execution>; the grant "
            "covers only that prefix in this account and region.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{self._evidence_objects}]",
            "One evidence object per execution (migrations/<env>/<YYYY>/<MM>/<execution>.json); s3:PutObject "
            "only, on this environment's prefix only; Object Lock keeps every version for its retention.",
        )
        if self._records_applied:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{self._applied_records}]",
                "One applied-revision record per revision id (its full id is the parameter's name); "
                "ssm:PutParameter only, on this environment's applied-revision path only.",
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
    def _fail_with(
        self, state_id: str, error: str, cause_expression: str, *, summary_expression: str | None = None
    ) -> sfn.Chain:
        """A failure state: assign `$failure`, then the failure path (maintenance, evidence, notice)."""
        return sfn.Pass.jsonata(
            self, state_id, assign=expr.failure(error, cause_expression, summary_expression)
        ).next(self._failure_entry)

    def _catch_into_failure(
        self, state: tasks.SnsPublish | tasks.CallAwsService | tasks.EcsRunTask, error: str
    ) -> None:
        state.add_catch(
            self._failure_entry,
            errors=["States.ALL"],
            assign=expr.failure(error, expr.CAUGHT_ERROR_CAUSE, expr.CAUGHT_ERROR_SUMMARY),
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
