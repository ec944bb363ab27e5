"""The rotation schedule of the RDS-managed master secret.

RDS creates the master secret (`ManageMasterUserPassword`) with managed rotation every 7 days.
Neither RDS (`CreateDBInstance`/`ModifyDBInstance` take no rotation settings) nor CloudFormation
(`AWS::RDS::DBInstance.MasterUserSecret` has only `KmsKeyId`/`SecretArn`;
`AWS::SecretsManager::RotationSchedule` documents a hosted or an own rotation Lambda, not managed
rotation) can set its schedule. Secrets Manager's `RotateSecret` can: for a secret with managed
rotation it takes `RotationRules` and no `RotationLambdaARN` (decision 0008).

Creates a custom resource (CDK's `AwsCustomResource`, an AWS SDK call from a singleton function in
the Operations subnets, HTTPS to the interface endpoints only) that calls
`RotateSecret(SecretId=<master>, RotationRules={ScheduleExpression: rate(<days> days), Duration},
RotateImmediately=false)` on create and whenever the schedule changes. Delete leaves the schedule
as it is (RDS deletes the secret with the instance). Its role may call `RotateSecret` and
`DescribeSecret` on the master secret only.

Exposes `resource`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr

from constructs import Construct
from constructs.checkov import skip_checkov
from constructs.database_client_function import acknowledge_no_dead_letter_queue, vpc_lambda_role
from constructs.log_group import EncryptedLogGroup
from constructs.network import DatabaseNetwork

# The rotation window: from 00:00 UTC (rate() schedules open their window at midnight), before the
# automated backup window (03:00) like the application secret's rotation.
MASTER_ROTATION_WINDOW = "2h"


def master_rotation_rules(rotation_days: int) -> dict[str, str]:
    """`RotationRules` for `RotateSecret` (and what the tests expect)."""
    return {"ScheduleExpression": f"rate({rotation_days} days)", "Duration": MASTER_ROTATION_WINDOW}


class MasterSecretRotationSchedule(Construct):
    """Sets (and keeps) the managed rotation schedule of the RDS master secret."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        master_secret_arn: str,
        rotation_days: int,
        network: DatabaseNetwork,
        encryption_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = EncryptedLogGroup(
            self, "Logs", retention_days=log_retention_days, encryption_key=encryption_key
        ).log_group
        role, policy = vpc_lambda_role(
            self,
            role_id="Role",
            policy_id="Policy",
            description="Sets the rotation schedule of the RDS-managed master secret",
            policy_description="Master secret rotation schedule: RotateSecret on that secret only",
            log_group=log_group,
            statements=[
                iam.PolicyStatement(
                    actions=["secretsmanager:RotateSecret", "secretsmanager:DescribeSecret"],
                    resources=[master_secret_arn],
                )
            ],
        )
        call = cr.AwsSdkCall(
            service="SecretsManager",
            action="rotateSecret",
            parameters={
                "SecretId": master_secret_arn,
                "RotationRules": master_rotation_rules(rotation_days),
                # Only the schedule: RDS rotates at the next window, never during a deploy.
                "RotateImmediately": False,
            },
            physical_resource_id=cr.PhysicalResourceId.of(f"master-rotation-{rotation_days}d"),
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Resource",
            resource_type="Custom::MasterSecretRotationSchedule",
            on_create=call,
            on_update=call,
            role=role,
            log_group=log_group,
            install_latest_aws_sdk=False,
            vpc=network.vpc,
            vpc_subnets=network.operations_subnets,
            timeout=cdk.Duration.minutes(2),
        )
        self.resource.node.add_dependency(policy)
        self._harden_singleton_function(network)

    def _harden_singleton_function(self, network: DatabaseNetwork) -> None:
        """The SDK-call function CDK creates: HTTPS to the endpoints only, one execution at a time."""
        stack = cdk.Stack.of(self)
        function = stack.node.find_child(_SINGLETON_ID)
        assert isinstance(function, lambda_.Function)
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        # The Lambda L2 creates the function's security group with all egress open; AwsCustomResource
        # has no prop for our own group, so its egress is narrowed here: HTTPS to the endpoints.
        (security_group,) = function.connections.security_groups
        cfn_security_group = security_group.node.default_child
        assert isinstance(cfn_security_group, ec2.CfnSecurityGroup)
        endpoints = network.endpoints_security_group
        https: dict[str, object] = {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "Description": "AWS APIs (Secrets Manager) through the interface endpoints",
        }
        if endpoints is not None:
            https["DestinationSecurityGroupId"] = endpoints.security_group_id
        else:
            # An imported VPC: its own CIDR block, where its owner's endpoints live (as allow_https_to_endpoints).
            https["CidrIp"] = network.vpc.vpc_cidr_block
        cfn_security_group.add_property_override("SecurityGroupEgress", [https])
        cfn_function.reserved_concurrent_executions = 1
        acknowledge_no_dead_letter_queue(function)
        skip_checkov(
            function,
            "CKV_AWS_173",
            "CDK's AWS SDK call function has no environment variables of ours; Lambda encrypts what it "
            "holds with its AWS-managed key and no secret value passes through it.",
        )


# CDK's fixed id of the AwsCustomResource singleton function in a stack.
_SINGLETON_ID = "AWS679f53fac002430cb0da5b7982bd2287"
