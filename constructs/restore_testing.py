"""Scheduled restore tests of the daily snapshot, validated by a function, measured and alarmed on.

- `AWS::Backup::RestoreTestingPlan`: on `recovery.restore_test_schedule`, the latest snapshot in the
  environment's vault (selected within the last 7 days);
- `AWS::Backup::RestoreTestingSelection`: this instance, restored into the database subnet group and
  security group, no public access, single-AZ, `recovery.restore_test_instance_class`; RDS keeps the
  snapshot's CMK (a snapshot restore cannot re-key). AWS Backup deletes the restored instance after
  `recovery.restore_test_validation_window_hours` (through its service-linked role, not ours);
- the restore role: what an RDS snapshot restore needs, on this account's resources, nothing else
  (no `rds:DeleteDBInstance`, unlike `AWSBackupServiceRolePolicyForRestores`);
- the validation function (`lambdas/restore_validation`, in-VPC via `DatabaseClientFunction`), run by
  the restore job's COMPLETED event and daily for freshness; its log group (CMK, audit retention)
  holds the evidence records;
- alarms: a failed test (`RestoreTestFailed`), no successful test within
  `recovery.restore_test_max_interval_days` (`SecondsSinceLastSuccessfulRestoreTest`, missing data
  breaching), the function's errors.

The construct serves both restore tests: the primary region's (`primary_restore_tests`) and the DR
region's of the DR copies (`dr_restore_tests`, decision 0010). What differs is a `RestoreTestScope`:
plan, schedule, vault, what is selected, where the instance lands and which secret the validation
logs in with (`ValidationLogin`).

Exposes `plan`, `selection`, `restore_role`, `validation` (the `DatabaseClientFunction`), `alarms`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns

from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.audit_alerts import alarm_to_topic
from constructs.compliance import acknowledge
from constructs.database import PostgresDatabase
from constructs.database_client_function import ClientNetwork, DatabaseClientFunction, DatabaseClientTarget
from contract.names import (
    LOGIN_ROLE_ENV_VAR,
    LOGIN_SECRET_ID_ENV_VAR,
    MASTER_SECRET_ARN_ENV_VAR,
    MIGRATION_ROLE,
)

METRIC_NAMESPACE = "RevenuePilot/Recovery"  # lambdas/restore_validation/validation.py
SELECTION_WINDOW_DAYS = 7
DAY_SECONDS = 86_400


@dataclass(frozen=True, kw_only=True)
class ValidationLogin:
    """The secret the validation function logs in with: its environment variables, the IAM resource to read
    (an ARN, or a name pattern for a replica whose ARN suffix is not known here) and the key it is under."""

    environment: Mapping[str, str]
    secret_resource: str
    key: kms.IKey


@dataclass(frozen=True, kw_only=True)
class RestoreTestScope:
    """What one restore testing plan tests, and where its instances land."""

    plan_name: str
    selection_name: str
    schedule: str
    max_interval_days: int
    instance_class: str
    vault_arn: str
    # AWS Backup selects the plan's recovery points of these protected resources ("*": every resource
    # whose recovery points are in the plan's vaults).
    protected_resource_arns: tuple[str, ...]
    subnet_group_name: str
    security_group_id: str
    # The key of the recovery points (restores keep it): restore and validation use it through RDS.
    recovery_point_key: kms.IKey
    login: ValidationLogin
    function_description: str
    service_name: str
    alarm_subject: str  # "restore test" / "DR restore test", in alarm descriptions


def primary_restore_tests(
    config: EnvironmentConfig, *, database: PostgresDatabase, vault: backup.IBackupVault, key: kms.IKey
) -> RestoreTestScope:
    """The daily snapshots in the environment's own vault, restored beside the database as master."""
    recovery = config.recovery
    return RestoreTestScope(
        plan_name=f"revenuepilot_{config.name}_restore_test",
        selection_name=f"revenuepilot_{config.name}_database",
        schedule=recovery.restore_test_schedule,
        max_interval_days=recovery.restore_test_max_interval_days,
        instance_class=recovery.restore_test_instance_class,
        vault_arn=vault.backup_vault_arn,
        protected_resource_arns=(database.instance.instance_arn,),
        subnet_group_name=database.subnet_group.subnet_group_name,
        security_group_id=database.security_group.security_group_id,
        recovery_point_key=key,
        login=ValidationLogin(
            environment={MASTER_SECRET_ARN_ENV_VAR: database.master_secret.secret_arn},
            secret_resource=database.master_secret.secret_arn,
            key=key,
        ),
        function_description=f"RevenuePilot {config.name}: validates restore tests of the database",
        service_name=f"revenuepilot-{config.name}-restore-validation",
        alarm_subject="restore test",
    )


def dr_restore_tests(
    config: EnvironmentConfig,
    *,
    vault_arn: str,
    subnet_group_name: str,
    security_group_id: str,
    dr_key: kms.IKey,
    partition: str,
) -> RestoreTestScope:
    """The DR copies in the DR vault, restored in the DR region's isolated network, validated as `migration`
    with the application secret's replica (decision 0010)."""
    recovery = config.recovery
    assert recovery.dr_restore_test_schedule is not None, "only with a DR schedule (config)"
    secret_name = config.database.application_secret_name
    return RestoreTestScope(
        plan_name=f"revenuepilot_{config.name}_dr_restore_test",
        selection_name=f"revenuepilot_{config.name}_dr_copies",
        schedule=recovery.dr_restore_test_schedule,
        max_interval_days=recovery.dr_restore_test_max_interval_days,
        instance_class=recovery.dr_restore_test_instance_class,
        vault_arn=vault_arn,
        # The copies keep the primary instance's ARN as their resource ARN, and no protected resource of
        # that ARN exists in the DR region. "*" with the plan's IncludeVaults limited to the DR vault selects
        # exactly this environment's copies without depending on how AWS Backup matches a cross-Region ARN:
        # "A restore testing selection can include a wildcard value ("*") for ProtectedResourceArns along
        # with ProtectedResourceConditions" (AWS::Backup::RestoreTestingSelection), and IncludeVaults takes
        # "specific ARNs" (AWS::Backup::RestoreTestingPlan RestoreTestingRecoveryPointSelection, CloudFormation
        # template reference). The DR vault holds only this environment's copies of one instance.
        protected_resource_arns=("*",),
        subnet_group_name=subnet_group_name,
        security_group_id=security_group_id,
        recovery_point_key=dr_key,
        login=ValidationLogin(
            environment={LOGIN_SECRET_ID_ENV_VAR: secret_name, LOGIN_ROLE_ENV_VAR: MIGRATION_ROLE},
            # The replica's ARN is the primary's with the DR region; its 6-character suffix is random.
            secret_resource=(
                f"arn:{partition}:secretsmanager:{recovery.dr_region}:{config.account}:secret:{secret_name}-??????"
            ),
            key=dr_key,
        ),
        function_description=f"RevenuePilot {config.name}: validates restore tests of the DR copies",
        service_name=f"revenuepilot-{config.name}-dr-restore-validation",
        alarm_subject="DR restore test",
    )


class RestoreTesting(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        tests: RestoreTestScope,
        network: ClientNetwork,
        database: DatabaseClientTarget,
        encryption_key: kms.IKey,
        topic: sns.ITopic,
        code: lambda_.Code,
        runtime: lambda_.Runtime,
    ) -> None:
        super().__init__(scope, construct_id)
        recovery = config.recovery
        stack = cdk.Stack.of(self)
        self.plan = backup.CfnRestoreTestingPlan(
            self,
            "Plan",
            restore_testing_plan_name=tests.plan_name,
            schedule_expression=tests.schedule,
            schedule_expression_timezone="Etc/UTC",
            start_window_hours=recovery.restore_test_start_window_hours,
            recovery_point_selection=backup.CfnRestoreTestingPlan.RestoreTestingRecoveryPointSelectionProperty(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=[tests.vault_arn],
                recovery_point_types=["SNAPSHOT"],
                selection_window_days=SELECTION_WINDOW_DAYS,
            ),
        )
        self.restore_role = self._restore_role(tests.subnet_group_name, tests.recovery_point_key)
        self.selection = backup.CfnRestoreTestingSelection(
            self,
            "Selection",
            restore_testing_plan_name=self.plan.restore_testing_plan_name,
            restore_testing_selection_name=tests.selection_name,
            protected_resource_type="RDS",
            protected_resource_arns=list(tests.protected_resource_arns),
            iam_role_arn=self.restore_role.role_arn,
            validation_window_hours=recovery.restore_test_validation_window_hours,
            # A snapshot restore keeps the recovery point's CMK (RDS cannot re-key it): the primary's key,
            # or for a DR copy the DR vault's key, with which AWS Backup re-encrypted the copy.
            restore_metadata_overrides={
                "dbInstanceClass": f"db.{tests.instance_class}",
                "dbSubnetGroupName": tests.subnet_group_name,
                "vpcSecurityGroupIds": json.dumps([tests.security_group_id]),
                "multiAZ": "false",
                "publiclyAccessible": "false",
                "deletionProtection": "false",
            },
        )
        self.selection.add_resource_dependency(self.plan)

        self.validation = DatabaseClientFunction(
            self,
            "Validation",
            code=code,
            runtime=runtime,
            handler="lambdas.restore_validation.handler.on_event",
            description=tests.function_description,
            network=network,
            database=database,
            encryption_key=encryption_key,
            log_retention_days=config.database.log_retention_days,
            statements=self._validation_statements(stack, tests.login),
            environment={
                "ENVIRONMENT_NAME": config.name,
                "RESTORE_TESTING_PLAN_ARN": self.plan.attr_restore_testing_plan_arn,
                **tests.login.environment,
                "VALIDATION_QUERIES": json.dumps(
                    [list(pair) for pair in config.migration.validation_queries]
                ),
                "EXPECTED_ROLES": json.dumps(list(recovery.expected_roles)),
                "POWERTOOLS_SERVICE_NAME": tests.service_name,
            },
            timeout_minutes=5,
        )
        acknowledge(
            self.validation.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "EC2 network-interface calls for VPC attachment, and AWS Backup's restore-job calls "
            "(DescribeRestoreJob, ListRestoreJobs, PutRestoreValidationResult), which support no resource "
            "ARN; cloudwatch:PutMetricData is limited to the recovery namespace by condition.",
        )
        acknowledge(
            self.validation.policy,
            f"AwsSolutions-IAM5[Resource::arn:{stack.partition}:rds:{stack.region}:{stack.account}:db:*]",
            "The restored test instance's name is chosen by AWS Backup at run time; DescribeDBInstances only.",
        )
        function = self.validation.function
        events.Rule(
            self,
            "RestoreCompleted",
            description="A restore job completed: validate it if it is one of this environment's restore tests",
            event_pattern=events.EventPattern(
                source=["aws.backup"],
                detail_type=["Restore Job State Change"],
                detail={"status": ["COMPLETED"], "resourceType": ["RDS"]},
            ),
            targets=[targets.LambdaFunction(function, retry_attempts=2)],
        )
        events.Rule(
            self,
            "DailyFreshness",
            description="Publish how long ago a restore test last passed",
            schedule=events.Schedule.cron(hour="12", minute="0"),
            targets=[
                targets.LambdaFunction(
                    function,
                    event=events.RuleTargetInput.from_object({"check": "freshness"}),
                    retry_attempts=2,
                )
            ],
        )
        self.alarms = self._alarms(config, tests, function, topic)

    def _restore_role(self, subnet_group_name: str, key: kms.IKey) -> iam.Role:
        stack = cdk.Stack.of(self)
        rds_arn = f"arn:{stack.partition}:rds:{stack.region}:{stack.account}"
        role = iam.Role(
            self,
            "RestoreRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup restores test instances from the database's snapshots (no deletes)",
        )
        policy = iam.ManagedPolicy(
            self,
            "RestorePolicy",
            description="Restore testing: restore RDS snapshots into new test instances",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "rds:RestoreDBInstanceFromDBSnapshot",
                        "rds:AddTagsToResource",
                        "rds:ListTagsForResource",
                    ],
                    resources=[
                        f"{rds_arn}:db:*",
                        f"{rds_arn}:snapshot:awsbackup:*",
                        f"{rds_arn}:subgrp:{subnet_group_name}",
                        f"{rds_arn}:og:*",
                        f"{rds_arn}:pg:*",
                    ],
                ),
                iam.PolicyStatement(
                    actions=["rds:DescribeDBInstances", "rds:DescribeDBSnapshots"],
                    resources=[f"{rds_arn}:db:*", f"{rds_arn}:snapshot:*"],
                ),
                iam.PolicyStatement(
                    actions=[
                        "kms:DescribeKey",
                        "kms:Decrypt",
                        "kms:GenerateDataKey",
                        "kms:GenerateDataKeyWithoutPlaintext",
                        "kms:ReEncryptFrom",
                        "kms:ReEncryptTo",
                    ],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"rds.{stack.region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    actions=["kms:CreateGrant"],
                    resources=[key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
            ],
        )
        role.add_managed_policy(policy)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{rds_arn}:db:*]",
            "AWS Backup names the restored test instance at run time; restore, tag and describe only.",
        )
        for pattern in ("snapshot:awsbackup:*", "snapshot:*", "og:*", "pg:*"):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{rds_arn}:{pattern}]",
                "AWS Backup's snapshot names and the default option/parameter groups a restore reads are only "
                "known at run time; the actions are restore, tag and describe in this account and region.",
            )
        return role

    @staticmethod
    def _validation_statements(stack: cdk.Stack, login: ValidationLogin) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                actions=[
                    "backup:DescribeRestoreJob",
                    "backup:ListRestoreJobs",
                    "backup:PutRestoreValidationResult",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                actions=["rds:DescribeDBInstances"],
                resources=[f"arn:{stack.partition}:rds:{stack.region}:{stack.account}:db:*"],
            ),
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[login.secret_resource],
            ),
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[login.key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}
                },
            ),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            ),
        ]

    def _alarms(
        self,
        config: EnvironmentConfig,
        tests: RestoreTestScope,
        function: lambda_.IFunction,
        topic: sns.ITopic,
    ) -> dict[str, cloudwatch.Alarm]:
        dimensions = {"Environment": config.name}
        day = cdk.Duration.days(1)
        alarms = {
            "RestoreTestFailed": cloudwatch.Alarm(
                self,
                "RestoreTestFailedAlarm",
                alarm_description=f"A {tests.alarm_subject}'s validation failed (see the evidence log)",
                metric=cloudwatch.Metric(
                    namespace=METRIC_NAMESPACE,
                    metric_name="RestoreTestFailed",
                    dimensions_map=dimensions,
                    statistic="Maximum",
                    period=day,
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "RestoreTestOverdue": cloudwatch.Alarm(
                self,
                "RestoreTestOverdueAlarm",
                alarm_description=(
                    f"No {tests.alarm_subject} passed within {tests.max_interval_days} days "
                    "(or the daily freshness check did not run)"
                ),
                metric=cloudwatch.Metric(
                    namespace=METRIC_NAMESPACE,
                    metric_name="SecondsSinceLastSuccessfulRestoreTest",
                    dimensions_map=dimensions,
                    statistic="Maximum",
                    period=day,
                ),
                threshold=tests.max_interval_days * DAY_SECONDS,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
            "ValidationErrors": cloudwatch.Alarm(
                self,
                "ValidationErrorsAlarm",
                alarm_description=f"The {tests.alarm_subject.removesuffix(' test')} validation function failed",
                metric=function.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        }
        for alarm in alarms.values():
            alarm_to_topic(alarm, topic)
        return alarms
