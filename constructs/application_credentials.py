"""The application's two database roles and the one secret that holds both credentials.

Creates:

- the application secret (the ops guide's shape, CMK-encrypted, retained). CloudFormation
  writes only static values (port, database, usernames); the bootstrap adds the instance endpoint
  and the passwords, so no template change can ever replace a secret value that has passwords;
- the bootstrap custom resource (`lambdas/db_bootstrap`, through the Provider framework): creates
  `migration` (owns the application schemas) and `app_user` (DML only), sets both passwords from
  the secret, and re-runs whenever the endpoint, schemas or secret change. Delete never drops
  anything;
- the rotation function (`lambdas/secret_rotation`) and schedule (90 or 120 days, a 3-hour window
  from 00:00 UTC, before the backup and maintenance windows). Secrets Manager may invoke the
  function only for this secret in this account.

With `replica`, the secret is replicated to another region under a key there (decision 0010): Secrets
Manager rotates the primary and propagates each new version to the replica, which is read-only; the
rotation function and its schedule are unchanged.

Exposes `secret`, `bootstrap_function`, `rotation_function` and their managed policies
`bootstrap_policy`, `rotation_policy`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr

from config.schema import DatabaseConfig
from constructs import Construct
from constructs.compliance import acknowledge
from constructs.credentials_check import endpoint_environment
from constructs.database import POSTGRES_PORT, PostgresDatabase
from constructs.database_client_function import (
    DatabaseClientFunction,
    acknowledge_no_dead_letter_queue,
    vpc_lambda_role,
)
from constructs.log_group import EncryptedLogGroup
from constructs.network import DatabaseNetwork
from contract.compliance import REGULATORY_PACKS
from contract.names import (
    APP_SCHEMAS_ENV_VAR,
    APPLICATION_ROLE,
    MASTER_SECRET_ARN_ENV_VAR,
    MIGRATION_ROLE,
    SERVICE_NAME_ENV_VAR,
)
from contract.secret import DATABASE_FIELD, PORT_FIELD, USERNAME_FIELD

ROTATION_WINDOW = "3h"


@dataclass(frozen=True, kw_only=True)
class SecretReplica:
    """A region the application secret is replicated to, and the alias of the CMK it is kept under there
    (an alias: the key lives in another region's stack, whose key id this stack cannot know)."""

    region: str
    key_alias: str


class ApplicationCredentials(Construct):
    """`migration` and `app_user`, their shared secret, its bootstrap and its rotation."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DatabaseConfig,
        network: DatabaseNetwork,
        database: PostgresDatabase,
        encryption_key: kms.IKey,
        bootstrap_code: lambda_.Code,
        rotation_code: lambda_.Code,
        lambda_runtime: lambda_.Runtime,
        replica: SecretReplica | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._replica = replica
        self._network = network
        self._database = database
        self._encryption_key = encryption_key
        self._bootstrap_code = bootstrap_code
        self._rotation_code = rotation_code
        self._lambda_runtime = lambda_runtime
        # Only static values: CloudFormation writes a new secret version whenever this template changes,
        # and that version would have no passwords. The bootstrap adds the endpoint and the passwords.
        self._secret_template = {
            PORT_FIELD: POSTGRES_PORT,
            DATABASE_FIELD: config.database_name,
            MIGRATION_ROLE: {USERNAME_FIELD: MIGRATION_ROLE},
            APPLICATION_ROLE: {USERNAME_FIELD: APPLICATION_ROLE},
        }
        self.secret = self._application_secret()
        bootstrap_resource = self._bootstrap()
        self._rotation(bootstrap_resource)

    # --- the secret ---------------------------------------------------------------------------------
    def _application_secret(self) -> secretsmanager.Secret:
        """The secret with only its static values (CMK-encrypted, retained), replicated if asked."""
        secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=self._config.application_secret_name,
            description="RevenuePilot database credentials of the migration and app_user roles",
            encryption_key=self._encryption_key,
            # No password here: CloudFormation only ever sees where to connect and who the users are.
            secret_string_value=cdk.SecretValue.unsafe_plain_text(
                json.dumps(self._secret_template, separators=(",", ":"))
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        if self._replica is not None:
            # The L1: the L2's ReplicaRegion takes an IKey and renders its ARN in *this* stack's region.
            # Secrets Manager resolves an alias in the replica's region ("the ARN, key ID, or alias").
            cfn_secret = secret.node.default_child
            assert isinstance(cfn_secret, secretsmanager.CfnSecret)
            cfn_secret.replica_regions = [
                secretsmanager.CfnSecret.ReplicaRegionProperty(
                    region=self._replica.region, kms_key_id=self._replica.key_alias
                )
            ]
        return secret

    def _function(
        self,
        construct_id: str,
        *,
        secret_statements: list[iam.PolicyStatement],
        **kwargs: Any,
    ) -> DatabaseClientFunction:
        """A credential Lambda: `secret_statements`, the secret key via Secrets Manager, random passwords."""
        secret_key_statement = iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[self._encryption_key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"secretsmanager.{cdk.Stack.of(self).region}.amazonaws.com"
                }
            },
        )
        random_password_statement = iam.PolicyStatement(
            actions=["secretsmanager:GetRandomPassword"], resources=["*"]
        )
        return DatabaseClientFunction(
            self,
            construct_id,
            statements=[*secret_statements, secret_key_statement, random_password_statement],
            network=self._network,
            database=self._database,
            encryption_key=self._encryption_key,
            log_retention_days=self._config.log_retention_days,
            runtime=self._lambda_runtime,
            **kwargs,
        )

    # --- the bootstrap ------------------------------------------------------------------------------
    def _bootstrap(self) -> cdk.CustomResource:
        """The bootstrap function and the custom resource that runs it (creates the roles, sets passwords)."""
        config, database = self._config, self._database
        bootstrap = self._function(
            "Bootstrap",
            code=self._bootstrap_code,
            handler="lambdas.db_bootstrap.handler.on_event",
            description="Creates the migration and app_user roles and their privileges",
            secret_statements=[
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    resources=[database.master_secret_arn],
                ),
                iam.PolicyStatement(
                    actions=[
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:PutSecretValue",
                    ],
                    resources=[self.secret.secret_arn],
                ),
            ],
            environment={SERVICE_NAME_ENV_VAR: "db-bootstrap", **endpoint_environment(database)},
        )
        self.bootstrap_function: lambda_.IFunction = bootstrap.function
        self.bootstrap_policy: iam.IManagedPolicy = bootstrap.policy
        provider = self._bootstrap_provider(
            bootstrap.function, network=self._network, encryption_key=self._encryption_key, config=config
        )
        bootstrap_resource = cdk.CustomResource(
            self,
            "BootstrapResource",
            service_token=provider.service_token,
            resource_type="Custom::DatabaseRoles",
            properties={
                "MasterSecretArn": database.master_secret_arn,
                "AppSecretArn": self.secret.secret_arn,
                "Schemas": list(config.application_schemas),
                # A new endpoint means a new (restored or replaced) database: run again, and write the
                # endpoint into the secret (keeping the passwords).
                "Endpoint": database.endpoint_address,
                "Port": database.endpoint_port,
                # A changed template (database name) rewrites the secret without passwords: run again.
                "SecretTemplate": json.dumps(self._secret_template, sort_keys=True),
            },
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        bootstrap_resource.node.add_dependency(database.instance)
        return bootstrap_resource

    # --- the rotation -------------------------------------------------------------------------------
    def _rotation(self, bootstrap_resource: cdk.CustomResource) -> None:
        """The rotation function, Secrets Manager's permission to invoke it, and the schedule."""
        config, database = self._config, self._database
        rotation = self._function(
            "Rotation",
            code=self._rotation_code,
            handler="lambdas.secret_rotation.handler.lambda_handler",
            description="Rotates the passwords of migration and app_user together",
            secret_statements=[
                iam.PolicyStatement(
                    actions=[
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                    ],
                    resources=[self.secret.secret_arn],
                ),
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[database.master_secret_arn],
                ),
            ],
            environment={
                MASTER_SECRET_ARN_ENV_VAR: database.master_secret_arn,
                APP_SCHEMAS_ENV_VAR: ",".join(config.application_schemas),
                SERVICE_NAME_ENV_VAR: "secret-rotation",
                **endpoint_environment(database),
            },
        )
        self.rotation_function: lambda_.IFunction = rotation.function
        self.rotation_policy: iam.IManagedPolicy = rotation.policy
        self._rotation_schedule(rotation.function, bootstrap_resource)

    def _rotation_schedule(self, function: lambda_.IFunction, bootstrap_resource: cdk.CustomResource) -> None:
        # Only Secrets Manager, only for this secret, only from this account.
        invoke_permission = lambda_.CfnPermission(
            self,
            "RotationInvokePermission",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=cdk.Stack.of(self).account,
            source_arn=self.secret.secret_arn,
        )
        schedule = secretsmanager.CfnRotationSchedule(
            self,
            "RotationSchedule",
            secret_id=self.secret.secret_arn,
            rotation_lambda_arn=function.function_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                schedule_expression=f"rate({self._config.secret_rotation_days} days)",
                duration=ROTATION_WINDOW,
            ),
            # The first rotation waits for the schedule: the bootstrap has just set fresh passwords.
            rotate_immediately_on_update=False,
        )
        schedule.add_resource_dependency(invoke_permission)
        # Rotation only makes sense once the roles exist.
        bootstrap_cfn = bootstrap_resource.node.default_child
        assert isinstance(bootstrap_cfn, cdk.CfnResource)
        schedule.add_resource_dependency(bootstrap_cfn)

    def _bootstrap_provider(
        self,
        handler: lambda_.IFunction,
        *,
        network: DatabaseNetwork,
        encryption_key: kms.IKey,
        config: DatabaseConfig,
    ) -> cr.Provider:
        """CDK's custom-resource framework, kept in the Operations tier like the function it invokes."""
        security_group = ec2.SecurityGroup(
            self,
            "BootstrapProviderSecurityGroup",
            vpc=network.vpc,
            description="Custom-resource framework: HTTPS to the Lambda endpoint and the S3 response URL",
            allow_all_outbound=False,
        )
        # The subnets are isolated: HTTPS can only reach the interface endpoints and the S3 gateway endpoint.
        security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs via VPC endpoints only"
        )
        log_group = EncryptedLogGroup(
            self,
            "BootstrapProviderLogs",
            retention_days=config.log_retention_days,
            encryption_key=encryption_key,
        ).log_group
        role, _ = vpc_lambda_role(
            self,
            role_id="BootstrapProviderRole",
            policy_id="BootstrapProviderPolicy",
            description="Custom-resource framework of the database bootstrap",
            policy_description="Custom-resource framework: logs and VPC attachment",
            log_group=log_group,
        )
        provider = cr.Provider(
            self,
            "BootstrapProvider",
            on_event_handler=handler,
            log_group=log_group,
            framework_on_event_role=role,
            vpc=network.vpc,
            vpc_subnets=network.operations_subnets,
            security_groups=[security_group],
            provider_function_env_encryption=encryption_key,
        )
        framework = provider.node.find_child("framework-onEvent")
        assert isinstance(framework, lambda_.Function)
        framework_cfn = framework.node.default_child
        assert isinstance(framework_cfn, lambda_.CfnFunction)
        # The Provider has no prop for it; one deployment at a time is all it ever serves.
        framework_cfn.reserved_concurrent_executions = 1
        acknowledge_no_dead_letter_queue(framework)
        default_policy = role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(default_policy, iam.CfnPolicy)
        handler_arn = cdk.Stack.of(self).get_logical_id(handler.node.default_child)  # type: ignore[arg-type]
        reason = (
            "The Provider framework grants itself lambda:InvokeFunction on exactly the bootstrap function "
            "(':*' covers its versions) and offers no managed-policy option."
        )
        acknowledge(default_policy, f"AwsSolutions-IAM5[Resource::<{handler_arn}.Arn>:*]", reason)
        for pack in REGULATORY_PACKS:
            acknowledge(default_policy, f"{pack}-IAMNoInlinePolicy", reason)
        return provider
