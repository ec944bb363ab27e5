"""Networking & access control from the ops guide, on both environments' Network stacks."""

from __future__ import annotations

import ipaddress

from aws_cdk.assertions import Match

# Requirements (ops guide, README "What gets deployed"), not values read back from the config:
AVAILABILITY_ZONES = {"staging": 2, "production": 3}  # ops guide: at least two
NAT_GATEWAYS = {"staging": 1, "production": 3}
FLOW_LOG_RETENTION_DAYS = {"staging": 365, "production": 2192}  # HIPAA: >= 1 year; production 6 years


def _subnets(env, tier):
    return {
        logical_id: resource
        for logical_id, resource in env.resources("Network", "AWS::EC2::Subnet").items()
        if logical_id.startswith(f"NetworkVpc{tier}Subnet")
    }


def test_vpc_spans_at_least_two_azs_with_four_tiers(env):
    azs = AVAILABILITY_ZONES[env.config.name]
    assert azs >= 2 and env.config.network.max_azs == azs
    for tier in ("Public", "Application", "Operations", "Database"):
        subnets = _subnets(env, tier)
        assert len(subnets) == azs, tier
        assert len({str(s["Properties"]["AvailabilityZone"]) for s in subnets.values()}) == azs


def test_production_spans_three_azs(environments):
    assert len(_subnets(environments["production"], "Database")) == 3


def test_no_subnet_assigns_public_ips(env):
    for subnet in env.resources("Network", "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def _routes_of_tier(env, tier):
    tables = {
        logical_id
        for logical_id in env.resources("Network", "AWS::EC2::RouteTable")
        if logical_id.startswith(f"NetworkVpc{tier}Subnet")
    }
    return [
        route
        for route in env.resources("Network", "AWS::EC2::Route").values()
        if route["Properties"]["RouteTableId"]["Ref"] in tables
    ]


def test_isolated_tiers_have_no_route_out_of_the_vpc(env):
    for tier in ("Database", "Operations"):
        assert _routes_of_tier(env, tier) == [], tier


def test_application_tier_egresses_only_through_nat_gateways(env):
    routes = _routes_of_tier(env, "Application")
    assert routes and all("NatGatewayId" in route["Properties"] for route in routes)
    assert len(env.resources("Network", "AWS::EC2::NatGateway")) == NAT_GATEWAYS[env.config.name]


def test_database_acl_admits_only_postgres_from_clients_and_replies_to_them(env):
    (acl_id,) = env.resources("Network", "AWS::EC2::NetworkAcl")
    entries = list(env.resources("Network", "AWS::EC2::NetworkAclEntry").values())
    client_cidrs = {
        s["Properties"]["CidrBlock"]
        for tier in ("Application", "Operations")
        for s in _subnets(env, tier).values()
    }
    ingress = [e["Properties"] for e in entries if not e["Properties"].get("Egress")]
    egress = [e["Properties"] for e in entries if e["Properties"].get("Egress")]
    assert {e["CidrBlock"] for e in ingress} == client_cidrs == {e["CidrBlock"] for e in egress}
    for entry in ingress:
        assert (entry["Protocol"], entry["PortRange"], entry["RuleAction"]) == (
            6,
            {"From": 5432, "To": 5432},
            "allow",
        )
        assert entry["NetworkAclId"] == {"Ref": acl_id}
    for entry in egress:
        assert (entry["Protocol"], entry["PortRange"], entry["RuleAction"]) == (
            6,
            {"From": 1024, "To": 65535},
            "allow",
        )
    associations = env.resources("Network", "AWS::EC2::SubnetNetworkAclAssociation").values()
    assert sorted(a["Properties"]["SubnetId"]["Ref"] for a in associations) == sorted(
        _subnets(env, "Database")
    )


def test_database_subnets_do_not_overlap_the_clients(env):
    database = [
        ipaddress.ip_network(s["Properties"]["CidrBlock"]) for s in _subnets(env, "Database").values()
    ]
    clients = [
        ipaddress.ip_network(s["Properties"]["CidrBlock"])
        for tier in ("Application", "Operations")
        for s in _subnets(env, tier).values()
    ]
    assert not any(d.overlaps(c) for d in database for c in clients)


def test_default_security_group_is_stripped(env):
    env["Network"].resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_flow_logs_capture_all_traffic_into_an_encrypted_retained_group(env):
    env["Network"].has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    env["Network"].has_resource(
        "AWS::Logs::LogGroup",
        {
            "Properties": {
                "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^FlowLogKey"), "Arn"]},
                "RetentionInDays": FLOW_LOG_RETENTION_DAYS[env.config.name],
            },
            "DeletionPolicy": "Retain",
        },
    )


def test_interface_endpoints_serve_the_isolated_tiers_without_nat(env):
    services = sorted(
        str(e["Properties"]["ServiceName"])
        for e in env.resources("Network", "AWS::EC2::VPCEndpoint").values()
    )
    for service in ("secretsmanager", "kms", "logs", "ecr.api", "ecr.dkr", "s3"):
        assert any(f".{service}" in name for name in services), service
    for endpoint in env.resources("Network", "AWS::EC2::VPCEndpoint").values():
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            assert endpoint["Properties"]["PrivateDnsEnabled"] is True
            assert all("OperationsSubnet" in str(s) for s in endpoint["Properties"]["SubnetIds"])


def test_endpoint_security_group_admits_https_from_the_vpc_only(env):
    (vpc,) = env.resources("Network", "AWS::EC2::VPC").values()
    assert vpc["Properties"]["CidrBlock"] == env.config.network.cidr
    env["Network"].has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": Match.string_like_regexp("^Interface endpoints"),
            "SecurityGroupIngress": [
                {
                    "CidrIp": vpc["Properties"]["CidrBlock"],
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "Description": Match.any_value(),
                }
            ],
        },
    )
