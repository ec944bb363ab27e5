"""The isolated network in the DR region that restore tests of the DR copies land in (decision 0010).

A VPC of two isolated subnet tiers in `availability_zones` (at least two: a DB subnet group spans two
AZs), one /26 each: `Operations` (the validation function, the interface endpoints) and `Database`
(the restored test instances, their own DB subnet group). No public subnet, so no internet gateway and
no NAT: nothing in it reaches, or is reached from, the internet. AWS APIs only through interface
endpoints for what the validation function calls (Secrets Manager for the replicated application
secret, AWS Backup, RDS, CloudWatch metrics), HTTPS from the VPC's CIDR only. VPC flow logs of all
traffic go to a CMK-encrypted group.

Also the restore target: the DB subnet group and the security group of the restored instances (no rules
of its own; the validation function's group is admitted on 5432), with the `DatabaseClientTarget`
method the validation function needs.

Exposes `vpc`, `operations_subnets`, `database_subnets`, `endpoints_security_group`, `subnet_group`,
`security_group`.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds

from config.recovery import DR_SUBNET_MASK
from constructs import Construct
from constructs.database import postgres_client_security_group
from constructs.network import add_flow_logs, add_interface_endpoints, skip_checkov_on_default_sg_handler

# One value with the capacity check of `recovery.dr_network_cidr` (config/recovery.py).
SUBNET_MASK = DR_SUBNET_MASK
# What the validation function calls from the isolated subnets (lambdas/restore_validation).
DR_INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Backup": ec2.InterfaceVpcEndpointAwsService.BACKUP,
    "Rds": ec2.InterfaceVpcEndpointAwsService.RDS,
    "CloudWatchMonitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
}


class DisasterRecoveryNetwork(Construct):
    """Isolated VPC, endpoints, flow logs, and the subnet group and security group of restored instances."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        availability_zones: Sequence[str],
        flow_log_retention_days: int,
        flow_log_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.operations_subnets = ec2.SubnetSelection(subnet_group_name="Operations")
        self.database_subnets = ec2.SubnetSelection(subnet_group_name="Database")
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            # Explicit zones of the DR region: no availability-zones lookup at synthesis.
            availability_zones=list(availability_zones),
            nat_gateways=0,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Operations", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=SUBNET_MASK
                ),
                ec2.SubnetConfiguration(
                    name="Database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=SUBNET_MASK
                ),
            ],
        )
        self.vpc: ec2.IVpc = vpc
        for subnet in vpc.isolated_subnets:
            cdk.Validations.of(subnet).acknowledge(
                cdk.Acknowledgment(
                    id="CloudFormation-Validate::W3010",
                    reason="The DR region's zones are configured (recovery.dr_availability_zones, validated "
                    "against the region) so that synthesis needs no lookup in an account it may never have read.",
                )
            )
        skip_checkov_on_default_sg_handler(vpc)
        add_flow_logs(self, vpc, retention_days=flow_log_retention_days, encryption_key=flow_log_key)

        self.endpoints_security_group = add_interface_endpoints(
            self,
            vpc,
            cidr=cidr,
            subnets=self.operations_subnets,
            services=DR_INTERFACE_ENDPOINTS,
            description="DR restore-test endpoints: HTTPS from inside the VPC only",
        )

        self.subnet_group = rds.SubnetGroup(
            self,
            "RestoreSubnetGroup",
            vpc=vpc,
            vpc_subnets=self.database_subnets,
            description="Isolated subnets for restore tests of the DR copies",
            # Holds no data; AWS Backup deletes the test instances in it after validation.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "RestoredInstanceSecurityGroup",
            vpc=vpc,
            description="Restored DR test instances: TCP 5432 from the validation function only",
            allow_all_outbound=False,
        )

    def allow_https_to_endpoints(self, security_group: ec2.ISecurityGroup, *, purpose: str) -> None:
        security_group.add_egress_rule(
            ec2.Peer.security_group_id(self.endpoints_security_group.security_group_id),
            ec2.Port.tcp(443),
            purpose,
        )

    def client_security_group(
        self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, description: str, rule_id: str
    ) -> ec2.SecurityGroup:
        return postgres_client_security_group(
            scope,
            construct_id,
            vpc=vpc,
            database_security_group=self.security_group,
            description=description,
            rule_id=rule_id,
        )
