"""An imported VPC (`network.existing_vpc_id`), the path neither environment takes, in a bare stack.

The vpc-provider lookup result is given in the App's context, so the synth runs offline, as the
real app does with cdk.context.json.
"""

from __future__ import annotations

from typing import Any

import pytest

from config.environments import STAGING
from config.schema import NetworkConfig

ACCOUNT = "111111111111"
REGION = "us-east-1"
VPC_ID = "vpc-0123456789abcdef0"
VPC_CIDR = "10.60.0.0/16"
LOOKUP_KEY = (
    f"vpc-provider:account={ACCOUNT}:filter.vpc-id={VPC_ID}:region={REGION}:returnAsymmetricSubnets=true"
)


def _subnets(tier: str, third_octets: tuple[int, ...]) -> dict[str, Any]:
    kind = {"Application": "Private", "Operations": "Isolated", "Database": "Isolated"}[tier]
    return {
        "name": tier,
        "type": kind,
        "subnets": [
            {
                "subnetId": f"subnet-{tier.lower()}{index}",
                "cidr": f"10.60.{octet}.0/24",
                "availabilityZone": f"{REGION}{'abc'[index]}",
                "routeTableId": f"rtb-{tier.lower()}{index}",
            }
            for index, octet in enumerate(third_octets)
        ],
    }


DATABASE_SUBNETS = _subnets("Database", (20, 21))
LOOKUP_RESULT: dict[str, Any] = {
    "vpcId": VPC_ID,
    "vpcCidrBlock": VPC_CIDR,
    "ownerAccountId": ACCOUNT,
    "availabilityZones": [],
    "subnetGroups": [
        _subnets("Application", (0, 1)),
        _subnets("Operations", (10, 11)),
        DATABASE_SUBNETS,
    ],
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_kms as kms
    from aws_cdk.assertions import Template

    from constructs.database import PostgresDatabase
    from constructs.master_secret_rotation import MasterSecretRotationSchedule
    from constructs.network import DatabaseNetwork
    from stacks.cdk_app import require_complete_context

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("existing-vpc")), context={LOOKUP_KEY: LOOKUP_RESULT})
    stack = cdk.Stack(app, "Imported", env=cdk.Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    network = DatabaseNetwork(
        stack, "Network", config=NetworkConfig(existing_vpc_id=VPC_ID), flow_log_key=key
    )
    database = PostgresDatabase(
        stack,
        "Database",
        config=STAGING.database,
        vpc=network.vpc,
        database_subnets=network.database_subnets,
        encryption_key=key,
    )
    MasterSecretRotationSchedule(
        stack,
        "MasterSecretRotation",
        master_secret_arn=database.master_secret_arn,
        rotation_days=STAGING.database.master_secret_rotation_days,
        network=network,
        encryption_key=key,
        log_retention_days=STAGING.database.log_retention_days,
    )
    client = ec2.SecurityGroup(stack, "Client", vpc=network.vpc, allow_all_outbound=False)
    network.allow_https_to_endpoints(client, purpose="AWS APIs")
    assembly = app.synth()
    require_complete_context(assembly.directory)
    return network, Template.from_stack(stack)


def test_the_lookup_is_answered_from_context(imported):
    network, _ = imported
    assert network.vpc.vpc_id == VPC_ID
    assert network.vpc.vpc_cidr_block == VPC_CIDR


def test_nothing_of_a_created_vpc_is_made(imported):
    _, template = imported
    for resource_type in (
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::NatGateway",
        "AWS::EC2::NetworkAcl",
        "AWS::EC2::VPCEndpoint",
        "AWS::EC2::FlowLog",
    ):
        template.resource_count_is(resource_type, 0)


def test_https_egress_goes_to_the_imported_vpc_cidr_not_the_internet(imported):
    network, template = imported
    assert network.endpoints_security_group is None
    client = next(
        resource
        for logical_id, resource in template.find_resources("AWS::EC2::SecurityGroup").items()
        if logical_id.startswith("Client")
    )
    assert client["Properties"]["SecurityGroupEgress"] == [
        {"CidrIp": VPC_CIDR, "Description": "AWS APIs", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}
    ]


def test_master_rotation_schedule_function_reaches_only_the_imported_vpc_cidr_over_https(imported):
    _, template = imported
    (group,) = [
        resource
        for logical_id, resource in template.find_resources("AWS::EC2::SecurityGroup").items()
        if logical_id.startswith("AWS679f53fac")
    ]
    assert group["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": VPC_CIDR,
            "Description": "AWS APIs (Secrets Manager) through the interface endpoints",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]


def test_the_database_uses_the_imported_database_subnets(imported):
    _, template = imported
    expected = [subnet["subnetId"] for subnet in DATABASE_SUBNETS["subnets"]]
    template.has_resource_properties("AWS::RDS::DBSubnetGroup", {"SubnetIds": expected})
