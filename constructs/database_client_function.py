"""A Lambda function that talks to the database from the isolated Operations subnets.

Shared shape of the bootstrap and rotation functions: VPC-attached with a security group whose
only egress is PostgreSQL to the database and HTTPS to the interface endpoints, a CMK-encrypted
log group with retention, a role whose permissions are one customer-managed policy (no inline
policies), reserved concurrency, and structured logging.

Takes what it needs, not the concrete constructs: a `ClientNetwork` (the primary `DatabaseNetwork`, or the
DR region's `DisasterRecoveryNetwork`) and a `DatabaseClientTarget` (the `PostgresDatabase`, or the DR
restore target whose instances the restore tests create).

Exposes `function`, `role`, `policy`, `security_group`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.checkov import skip_checkov
from constructs.compliance import acknowledge
from constructs.log_group import EncryptedLogGroup
from contract.compliance import HIPAA_SECURITY, NIST_800_53_R5


class ClientNetwork(Protocol):
    """Where the function runs: isolated subnets whose AWS API traffic goes through interface endpoints."""

    @property
    def vpc(self) -> ec2.IVpc: ...

    @property
    def operations_subnets(self) -> ec2.SubnetSelection: ...

    def allow_https_to_endpoints(self, security_group: ec2.ISecurityGroup, *, purpose: str) -> None: ...


class DatabaseClientTarget(Protocol):
    """The database (or the restored test instances) the function connects to."""

    def client_security_group(
        self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, description: str, rule_id: str
    ) -> ec2.SecurityGroup: ...


class DatabaseClientFunction(Construct):
    """A Python Lambda (`code`, staged by the stack) that connects to `database` over TLS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        runtime: lambda_.Runtime,
        handler: str,
        description: str,
        network: ClientNetwork,
        database: DatabaseClientTarget,
        encryption_key: kms.IKey,
        log_retention_days: int,
        statements: Sequence[iam.PolicyStatement],
        environment: Mapping[str, str],
        timeout_minutes: int = 2,
        reserved_concurrency: int = 1,
    ) -> None:
        super().__init__(scope, construct_id)

        self.security_group = database.client_security_group(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description=f"{description}: PostgreSQL and AWS API endpoints only",
            rule_id="DatabaseIngress",
        )
        network.allow_https_to_endpoints(
            self.security_group, purpose="AWS APIs through the interface endpoints"
        )

        log_group = EncryptedLogGroup(
            self, "Logs", retention_days=log_retention_days, encryption_key=encryption_key
        ).log_group
        self.role, self.policy = vpc_lambda_role(
            self,
            role_id="Role",
            policy_id="Policy",
            description=description,
            policy_description=f"{description}: least privilege",
            log_group=log_group,
            statements=statements,
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=runtime,
            architecture=lambda_.Architecture.X86_64,
            code=code,
            handler=handler,
            role=self.role,
            timeout=cdk.Duration.minutes(timeout_minutes),
            memory_size=256,
            reserved_concurrent_executions=reserved_concurrency,
            vpc=network.vpc,
            vpc_subnets=network.operations_subnets,
            security_groups=[self.security_group],
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment=dict(environment),
        )
        acknowledge_no_dead_letter_queue(self.function)
        skip_checkov(
            self.function,
            "CKV_AWS_173",
            "The environment holds identifiers only (secret ARN, schema and service names), never secret "
            "values; Lambda encrypts it at rest with its AWS-managed key.",
        )


def vpc_lambda_role(
    scope: Construct,
    *,
    role_id: str,
    policy_id: str,
    description: str,
    policy_description: str,
    log_group: logs.ILogGroup,
    statements: Sequence[iam.PolicyStatement] = (),
) -> tuple[iam.Role, iam.ManagedPolicy]:
    """An execution role for a VPC-attached function whose permissions are one customer-managed policy.

    The policy holds the writes to the function's own log group, the network-interface calls of VPC
    attachment and `statements`; no inline policy, no AWS-managed policy.
    """
    role = iam.Role(
        scope, role_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
    )
    policy = iam.ManagedPolicy(
        scope,
        policy_id,
        description=policy_description,
        statements=[
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:log-stream:*"],
            ),
            VPC_NETWORK_INTERFACES,
            *statements,
        ],
    )
    role.add_managed_policy(policy)
    acknowledge_vpc_network_interfaces(policy)
    log_group_id = cdk.Stack.of(scope).get_logical_id(log_group.node.default_child)  # type: ignore[arg-type]
    acknowledge(
        policy,
        f"AwsSolutions-IAM5[Resource::<{log_group_id}.Arn>:log-stream:*]",
        "Log stream names are chosen by the Lambda service at run time; the grant is confined to the "
        "function's own log group.",
    )
    return role, policy


# What Lambda needs to attach a function to the VPC (AWSLambdaVPCAccessExecutionRole, as our own policy).
VPC_NETWORK_INTERFACES = iam.PolicyStatement(
    actions=[
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    ],
    resources=["*"],
)


def acknowledge_vpc_network_interfaces(policy: iam.ManagedPolicy) -> None:
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Resource::*]",
        "Only for EC2 network-interface calls Lambda makes to attach the function to the VPC (they have no "
        "resource-level scoping) and secretsmanager:GetRandomPassword (no resource at all).",
    )
    skip_checkov(
        policy,
        "CKV_AWS_111",
        "The only unscoped writes are the EC2 network-interface calls Lambda needs for VPC attachment; they "
        "support no resource-level permissions (same statement as AWSLambdaVPCAccessExecutionRole).",
    )


def acknowledge_no_dead_letter_queue(function: lambda_.IFunction) -> None:
    """Why our credential functions (and the custom-resource framework) have no dead-letter queue.

    A queued failed event could never be replayed usefully: a rotation step belongs to a version
    token Secrets Manager retries itself, a custom-resource event to a pre-signed response URL that
    expires. Failures surface where they are acted on instead: Secrets Manager's RotationFailed
    event and CloudFormation's failed (or timed-out, rolled-back) stack operation, plus the
    functions' Errors alarms.
    """
    reason = (
        "A queued failed event could not be replayed (rotation tokens are retried by Secrets Manager, "
        "custom-resource response URLs expire); failures raise RotationFailed/Errors alarms or fail the stack."
    )
    for pack in (HIPAA_SECURITY, NIST_800_53_R5):
        acknowledge(function, f"{pack}-LambdaDLQ", reason)
    skip_checkov(function, "CKV_AWS_116", reason)
