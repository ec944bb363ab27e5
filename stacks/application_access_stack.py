"""Application access: the security group and IAM task role of the application tier.

The ECS services themselves belong to the application's own deployment; they attach this
security group and assume this role. Grants are made here, on the consumer side, so the data
stack never depends on its consumers.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager

from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.database import PostgresDatabase
from constructs.network import DatabaseNetwork
from constructs.runtime_contract import RuntimeContract


class ApplicationAccessStack(cdk.Stack):
    """Exposes `security_group`, `task_role` and `runtime_contract` (its `read_policy` is attached to the role)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        network: DatabaseNetwork,
        database: PostgresDatabase,
        app_secret: secretsmanager.ISecret,
        encryption_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.security_group = ec2.SecurityGroup(
            self,
            "ApplicationSecurityGroup",
            vpc=network.vpc,
            description=f"RevenuePilot {config.name} application tasks",
            allow_all_outbound=True,
        )
        database.allow_connections_from(
            self.security_group, scope=self, rule_id="DatabaseIngressFromApplication"
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"RevenuePilot {config.name} application tasks: read the database runtime contract and secret",
        )
        # One managed policy in this stack (consumer side): the runtime contract's parameters, the one
        # secret and its key via Secrets Manager, nothing else.
        self.runtime_contract = RuntimeContract(
            self,
            "RuntimeContract",
            config=config,
            app_secret=app_secret,
            encryption_key=encryption_key,
            readers=[self.task_role],
        )
        cdk.CfnOutput(self, "ApplicationSecurityGroupId", value=self.security_group.security_group_id)
        cdk.CfnOutput(self, "ApplicationTaskRoleArn", value=self.task_role.role_arn)
