"""The migration task: a Fargate cluster and a task definition that runs `migration.runner`.

Creates:
- an ECS cluster with Container Insights (enhanced observability);
- a CMK-encrypted, retained log group for the container's output (awslogs);
- a task role that can read the application secret only (and decrypt it through Secrets
  Manager with the database CMK), and report validation counts to the runbook state machine;
- an execution role (image pull from the CDK asset repository, log writes);
- the task definition: the image built from `build_context` (the `migration/` context the stack
  staged) on top of the backend image, read-only
  root filesystem with a writable /tmp volume, a non-root user, no environment variables (every
  setting is a command argument; credentials are fetched at run time);
- a security group with egress to PostgreSQL and HTTPS only, admitted to the database on 5432
  through `database.allow_connections_from` (the rule lives in the consumer's stack).

Exposes `cluster`, `task_definition`, `container`, `security_group`, `task_role`,
`execution_role`, `log_group`, `subnets` and `base_arguments` (the command prefix every run uses).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager

from config.schema import MigrationConfig
from constructs import Construct
from constructs.compliance import acknowledge
from constructs.database import PostgresDatabase
from constructs.log_group import EncryptedLogGroup
from constructs.secret_access import secret_read_statements
from contract.compliance import REGULATORY_PACKS

CONTAINER_NAME = "migration"
RUNNER_USER = "10001:10001"
TMP_VOLUME = "tmp"


class MigrationTask(Construct):
    """Cluster + task definition + security group of the migration runner."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MigrationConfig,
        environment_name: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: PostgresDatabase,
        app_secret: secretsmanager.ISecret,
        encryption_key: kms.IKey,
        region: str,
        account: str,
        state_machine_arn: str,
        build_context: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self.subnets = subnets
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENHANCED,
        )
        self.log_group = EncryptedLogGroup(
            self, "Logs", retention_days=config.log_retention_days, encryption_key=encryption_key
        ).log_group
        self._roles(
            environment_name=environment_name,
            app_secret=app_secret,
            encryption_key=encryption_key,
            state_machine_arn=state_machine_arn,
        )
        self._task_definition(config)
        self._container(
            config, app_secret=app_secret, region=region, account=account, build_context=build_context
        )
        self._acknowledge_execution_policy()
        self._security_group(environment_name=environment_name, vpc=vpc, database=database)

    def _roles(
        self,
        *,
        environment_name: str,
        app_secret: secretsmanager.ISecret,
        encryption_key: kms.IKey,
        state_machine_arn: str,
    ) -> None:
        """The task role (read the application secret, report to the runbook) and the execution role."""
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"RevenuePilot {environment_name} migration task: read the application secret only",
        )
        self.secret_read_policy = iam.ManagedPolicy(
            self,
            "SecretReadPolicy",
            description=f"RevenuePilot {environment_name} migration task: read the application secret",
            statements=secret_read_statements(app_secret, encryption_key),
        )
        # The validate run returns its counts through the runbook execution's task token.
        self.callback_policy = iam.ManagedPolicy(
            self,
            "RunbookCallbackPolicy",
            description=f"RevenuePilot {environment_name} migration task: report to the runbook execution",
            statements=[
                iam.PolicyStatement(
                    actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                    resources=[state_machine_arn],
                )
            ],
        )
        self.task_role.add_managed_policy(self.secret_read_policy)
        self.task_role.add_managed_policy(self.callback_policy)
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"RevenuePilot {environment_name} migration task: pull the image, write its logs",
        )

    def _task_definition(self, config: MigrationConfig) -> None:
        """Fargate, x86_64 Linux, with a scratch volume for /tmp (the root filesystem is read-only)."""
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=config.task_cpu,
            memory_limit_mib=config.task_memory_mib,
            task_role=self.task_role,
            execution_role=self.execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            volumes=[ecs.Volume(name=TMP_VOLUME)],
        )

    def _container(
        self,
        config: MigrationConfig,
        *,
        app_secret: secretsmanager.ISecret,
        region: str,
        account: str,
        build_context: Path,
    ) -> None:
        """The runner image on top of the backend image; non-root, read-only root, arguments only."""
        registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
        reference = config.backend_image_reference
        backend_image = reference if "." in reference.split("/", 1)[0] else f"{registry}/{reference}"
        self.base_arguments: list[str] = [
            "--secret-id",
            app_secret.secret_arn,
            "--alembic-config",
            config.alembic_config_path,
            "--connect-timeout",
            str(config.connect_timeout_seconds),
        ]
        self.container = self.task_definition.add_container(
            "Runner",
            container_name=CONTAINER_NAME,
            image=ecs.ContainerImage.from_asset(
                str(build_context),
                build_args={"BACKEND_IMAGE": backend_image},
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            command=[*self.base_arguments, "current"],
            essential=True,
            # A hard limit at the task size: a runaway migration is killed, not the neighbours starved.
            memory_limit_mib=config.task_memory_mib,
            readonly_root_filesystem=True,
            user=RUNNER_USER,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="migration", log_group=self.log_group),
        )
        self.container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume=TMP_VOLUME, read_only=False)  # noqa: S108
        )

    def _acknowledge_execution_policy(self) -> None:
        # Image pulls and log writes by the execution role: statements ECS's L2 adds to the role itself.
        execution_policy = self.execution_role.node.find_child("DefaultPolicy")
        acknowledge(
            execution_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions in IAM; the image layer actions "
            "are scoped to the CDK asset repository and log writes to this task's log group.",
        )
        for pack in REGULATORY_PACKS:
            acknowledge(
                execution_policy,
                f"{pack}-IAMNoInlinePolicy",
                "The ECS L2 writes the execution role's image-pull and log statements into this policy as it "
                "binds the image and log driver; the role serves only this task definition.",
            )

    def _security_group(self, *, environment_name: str, vpc: ec2.IVpc, database: PostgresDatabase) -> None:
        """Egress to PostgreSQL (admitted by the database) and HTTPS only."""
        self.security_group = database.client_security_group(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"RevenuePilot {environment_name} migration task: PostgreSQL and HTTPS egress only",
            rule_id="DatabaseIngressFromMigrationTask",
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(443),
            "AWS APIs: interface endpoints, S3 gateway (image layers) and Step Functions through NAT",
        )
