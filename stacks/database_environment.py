"""One CDK Stage per environment: the same stacks, configured by that environment's config."""

from __future__ import annotations

import aws_cdk as cdk

from config.schema import EnvironmentConfig
from constructs import Construct
from stacks.application_access_stack import ApplicationAccessStack
from stacks.data_stack import DataStack
from stacks.migration_stack import MigrationStack
from stacks.monitoring_stack import MonitoringStack
from stacks.network_stack import NetworkStack


class DatabaseEnvironment(cdk.Stage):
    """Stacks `Network`, `Data` (both termination-protected), `ApplicationAccess` and `Monitoring`.

    Deployed stack names are `<Stage>-<Stack>`, e.g. `Production-Data`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
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
            secrets=[self.data_stack.app_secret],
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
            tags=tags,
            description=f"RevenuePilot {config.name}: migration task and runbook state machine",
        )
