"""One CDK Stage per environment: the same stacks, configured by that environment's config."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk

from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.audit_alerts import WatchedSecret
from stacks.application_access_stack import ApplicationAccessStack
from stacks.data_stack import DataStack
from stacks.disaster_recovery_stack import DisasterRecoveryStack
from stacks.disaster_recovery_testing_stack import DisasterRecoveryTestingStack
from stacks.migration_stack import MigrationStack
from stacks.monitoring_stack import MonitoringStack
from stacks.network_stack import NetworkStack
from stacks.recovery_stack import RecoveryStack


class DatabaseEnvironment(cdk.Stage):
    """Stacks `Network`, `Data`, `DisasterRecovery` (termination-protected), `ApplicationAccess`, `Monitoring`,
    `Migration` and `Recovery`; `DisasterRecoveryTesting` when the DR copies are restore-tested.

    Deployed stack names are `<Stage>-<Stack>`, e.g. `Production-Data`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        environments: Sequence[EnvironmentConfig] = (),
    ) -> None:
        """`environments`: every environment of the project (the Migration stacks' cross-account records)."""
        super().__init__(
            scope, construct_id, env=cdk.Environment(account=config.account, region=config.region)
        )
        tags = {"Application": "revenuepilot", "Environment": config.name, "DataClassification": "phi"}
        self.network_stack = NetworkStack(
            self,
            "Network",
            config=config,
            tags=tags,
            description=f"RevenuePilot {config.name}: VPC for the database",
        )
        # Issue 15: the DR vault, in the DR region; the Data stack's backup plan copies into it.
        self.disaster_recovery_stack = DisasterRecoveryStack(
            self,
            "DisasterRecovery",
            config=config,
            env=cdk.Environment(account=config.account, region=config.recovery.dr_region),
            tags=tags,
            description=f"RevenuePilot {config.name}: DR copies of the database snapshots (stateful)",
        )
        self.data_stack = DataStack(
            self,
            "Data",
            config=config,
            network=self.network_stack.network,
            tags=tags,
            description=f"RevenuePilot {config.name}: PostgreSQL, keys, secrets (stateful)",
        )
        self.application_access_stack = ApplicationAccessStack(
            self,
            "ApplicationAccess",
            config=config,
            network=self.network_stack.network,
            database=self.data_stack.database,
            app_secret=self.data_stack.app_secret,
            encryption_key=self.data_stack.key,
            tags=tags,
            description=f"RevenuePilot {config.name}: application security group and task role",
        )
        self.monitoring_stack = MonitoringStack(
            self,
            "Monitoring",
            config=config,
            database=self.data_stack.database,
            encryption_key=self.data_stack.key,
            # PascalCase id -> function: construct ids of the Errors alarms, never renamed.
            functions={
                "BootstrapFunction": self.data_stack.credentials.bootstrap_function,
                "RotationFunction": self.data_stack.credentials.rotation_function,
                "CredentialsCheckFunction": self.data_stack.credentials_check.function,
            },
            # The name from config, never derived from the ARN (no Fn::Split over a cross-stack reference).
            secrets=[
                WatchedSecret(
                    arn=self.data_stack.app_secret.secret_arn, name=config.database.application_secret_name
                )
            ],
            # Who can read the application secret (the migration task role: in the Migration stack).
            secret_reader_roles=[
                role
                for role in (
                    self.data_stack.credentials.bootstrap_function.role,
                    self.data_stack.credentials.rotation_function.role,
                    self.data_stack.credentials_check.role,
                    self.application_access_stack.task_role,
                )
                if role is not None
            ],
            secret_reader_policies=[
                self.data_stack.credentials.bootstrap_policy,
                self.data_stack.credentials.rotation_policy,
                self.data_stack.credentials_check.policy,
                self.application_access_stack.runtime_contract.read_policy,
            ],
            credentials_check=self.data_stack.credentials_check,
            tags=tags,
            description=f"RevenuePilot {config.name}: alerts, audit alarms, dashboard",
        )
        self.migration_stack = MigrationStack(
            self,
            "Migration",
            config=config,
            network=self.network_stack.network,
            database=self.data_stack.database,
            app_secret=self.data_stack.app_secret,
            encryption_key=self.data_stack.key,
            notification_topic=self.monitoring_stack.topic,
            environments=environments or (config,),
            tags=tags,
            description=f"RevenuePilot {config.name}: migration task and runbook state machine",
        )
        self.data_stack.add_stack_dependency(
            self.disaster_recovery_stack, "the backup plan copies into the DR vault"
        )
        # Issue 15: backup alerts, restore tests and their evidence.
        self.recovery_stack = RecoveryStack(
            self,
            "Recovery",
            config=config,
            topic=self.monitoring_stack.topic,
            network=self.network_stack.network,
            database=self.data_stack.database,
            vault=self.data_stack.daily_snapshot.vault,
            encryption_key=self.data_stack.key,
            tags=tags,
            description=f"RevenuePilot {config.name}: backup alerts, restore tests and their evidence",
        )
        # Issue 15 (decision 0010): restore tests of the DR copies, in the DR region, when configured.
        self.disaster_recovery_testing_stack: DisasterRecoveryTestingStack | None = None
        if config.recovery.tests_dr_copies:
            self.disaster_recovery_testing_stack = DisasterRecoveryTestingStack(
                self,
                "DisasterRecoveryTesting",
                config=config,
                vault_arn=self.disaster_recovery_stack.vault.vault.backup_vault_arn,
                dr_key=self.disaster_recovery_stack.vault.key,
                env=cdk.Environment(account=config.account, region=config.recovery.dr_region),
                tags=tags,
                description=f"RevenuePilot {config.name}: restore tests of the DR copies, in the DR region",
            )
            # Its validation logs in with the application secret's replica, which the Data stack creates.
            self.disaster_recovery_testing_stack.add_stack_dependency(
                self.data_stack, "the validation reads the application secret's replica"
            )
