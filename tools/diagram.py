"""`make diagram`: the architecture of each environment, as Mermaid, derived from the cloud assembly.

Reads the synthesized templates (through tools/assembly.py) and writes docs/architecture.md. Nothing
in the picture is hand-written: nodes are resources of the types in `NODE_KINDS` (counted resources,
such as alarms, become one node each), and edges come from the templates:

- **database access**: `AWS::EC2::SecurityGroupIngress` rules (or inline ingress) on the database
  instance's security group that admit TCP 5432, drawn from whatever uses the source security group
  (a Lambda's `VpcConfig`, a hosted rotation's `VpcSecurityGroupIds`, the ECS task a state machine
  runs with it); a security group nothing in the assembly uses is drawn itself;
- **credentials**: IAM statements (`AWS::IAM::Policy`, `ManagedPolicy`, inline role policies) that
  allow `secretsmanager:*` on a secret, to the Lambda, task or state machine that has the role (or
  to the role itself); rotation schedules from the rotating function to its secret;
- **other calls**: IAM statements for the actions in `ACTION_LABELS` (snapshot, publish, run task,
  invoke, read parameters) whose resources are nodes;
- **logs**: Lambda `LoggingConfig`, the task's `awslogs` driver, the state machine's logging
  configuration, VPC flow logs, the instance's log exports (`/aws/rds/instance/<id>/<log>`),
  subscription filters and metric filters;
- **alerts**: alarm actions, event rule targets, RDS event subscriptions and topic subscriptions.

Resources inside the VPC are placed in their subnet tier (the `aws-cdk:subnet-name` tag of the
subnets they reference); everything else is grouped by stack. Plumbing is left out: roles and
policies (they become edges), log retention and default-security-group custom resources (Lambdas
outside the VPC), security-group egress, route tables, NACL entries.

    python -m tools.diagram [--assembly cdk.out] [--output docs/architecture.md] [--check]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tools.assembly import StackArtifact, stack_artifacts

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "architecture.md"
POSTGRES_PORT = 5432

Ref = tuple[str, str]  # (stack display name, logical id)

# Resource type -> node kind (its style); COUNTED types become one node per stack with a count.
NODE_KINDS = {
    "AWS::RDS::DBInstance": "database",
    "AWS::KMS::Key": "key",
    "AWS::SecretsManager::Secret": "secret",
    "AWS::Lambda::Function": "compute",
    "AWS::ECS::TaskDefinition": "compute",
    "AWS::StepFunctions::StateMachine": "compute",
    "AWS::SNS::Topic": "alerting",
    "AWS::Logs::LogGroup": "logs",
    "AWS::Backup::BackupVault": "database",
    "AWS::EC2::NatGateway": "network",
    "AWS::EC2::VPCEndpoint": "network",
    "AWS::CloudWatch::Alarm": "alerting",
    "AWS::Events::Rule": "alerting",
    "AWS::RDS::EventSubscription": "alerting",
    "AWS::Logs::MetricFilter": "alerting",
    "AWS::SSM::Parameter": "config",
    "AWS::Chatbot::SlackChannelConfiguration": "alerting",
}
COUNTED = {
    "AWS::EC2::NatGateway": "NAT gateway",
    "AWS::CloudWatch::Alarm": "CloudWatch alarm",
    "AWS::Events::Rule": "EventBridge rule",
    "AWS::RDS::EventSubscription": "RDS event subscription",
    "AWS::Logs::MetricFilter": "metric filter",
    "AWS::SSM::Parameter": "SSM parameter",
}
TITLES = {
    "AWS::RDS::DBInstance": "RDS instance",
    "AWS::Lambda::Function": "Lambda function",
    "AWS::KMS::Key": "KMS key",
    "AWS::SecretsManager::Secret": "Secret",
    "AWS::ECS::TaskDefinition": "ECS Fargate task",
    "AWS::StepFunctions::StateMachine": "Step Functions",
    "AWS::SNS::Topic": "SNS topic",
    "AWS::Logs::LogGroup": "Log group",
    "AWS::Backup::BackupVault": "AWS Backup vault",
    "AWS::Chatbot::SlackChannelConfiguration": "Slack via AWS Chatbot",
}
# IAM actions drawn as edges (besides secretsmanager, drawn as credentials) and how they read.
ACTION_LABELS = {
    "rds:CreateDBSnapshot": "snapshot",
    "sns:Publish": "publish",
    "ecs:RunTask": "run",
    "lambda:InvokeFunction": "invoke",
    "ssm:GetParameters": "read",
    "ssm:GetParameter": "read",
    "states:SendTaskSuccess": "report",
    "rds-db:connect": "IAM auth",
}
STYLES = {
    "database": "fill:#dbeafe,stroke:#1e40af",
    "key": "fill:#fef3c7,stroke:#92400e",
    "secret": "fill:#fde68a,stroke:#92400e",
    "compute": "fill:#dcfce7,stroke:#166534",
    "logs": "fill:#f3f4f6,stroke:#4b5563",
    "alerting": "fill:#fce7f3,stroke:#9d174d",
    "network": "fill:#e0e7ff,stroke:#3730a3",
    "config": "fill:#f5f5f4,stroke:#57534e",
    "external": "fill:#ffffff,stroke:#6b7280,stroke-dasharray:4 3",
}
EDGE_STYLES = {  # edge category -> (arrow, linkStyle)
    "access": ("==>", "stroke:#b91c1c,stroke-width:3px"),
    "credentials": ("-.->", "stroke:#b45309,stroke-width:2px"),
    "logs": ("-->", "stroke:#6b7280"),
    "alerts": ("-->", "stroke:#be185d"),
    "calls": ("-->", "stroke:#15803d"),
}


@dataclass
class Node:
    id: str
    kind: str
    lines: list[str]
    stack: str
    tier: str | None = None
    count: int = 1
    title: str = ""  # for counted nodes

    def label(self) -> str:
        lines = [f"{self.title} x{self.count}" if self.count > 1 else self.title] if self.title else []
        return "<br/>".join(escape(line) for line in [*lines, *self.lines] if line)


@dataclass(frozen=True, order=True)
class Edge:
    category: str
    source: str
    target: str
    label: str


def escape(text: str) -> str:
    return text.replace('"', "'").replace("<", "&lt;").replace(">", "&gt;")


def node_id(ref: Ref) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", f"{ref[0]}_{ref[1]}")


@dataclass
class Environment:
    """The stacks of one Stage: templates, construct paths and cross-stack reference resolution."""

    name: str
    artifacts: dict[str, StackArtifact]  # display name -> artifact
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[Ref, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for display_name, artifact in self.artifacts.items():
            self.templates[display_name] = artifact.template()
            metadata = artifact.template_path.with_name(
                artifact.template_path.name.replace(".template.json", ".metadata.json")
            )
            if metadata.exists():
                for path, entries in json.loads(metadata.read_text()).items():
                    for entry in entries:
                        if entry.get("type") == "aws:cdk:logicalId":
                            self.paths[(display_name, entry["data"])] = path
        self.by_stack_name = {a.stack_name: name for name, a in self.artifacts.items()}

    def resources(self) -> Iterator[tuple[Ref, dict[str, Any]]]:
        for stack, template in sorted(self.templates.items()):
            for logical_id, resource in sorted(template.get("Resources", {}).items()):
                yield (stack, logical_id), resource

    def resource(self, ref: Ref) -> dict[str, Any]:
        resource: dict[str, Any] = self.templates[ref[0]]["Resources"][ref[1]]
        return resource

    def construct_path(self, ref: Ref) -> str:
        """`Data/ApplicationCredentials/Rotation/Function`: the construct, without Stage and `Resource`."""
        path = self.paths.get(ref, f"/{ref[0]}/{ref[1]}").strip("/").split("/")
        while path and path[-1] in ("Resource", "Default"):
            path.pop()
        return "/".join(path[1:])

    def refs(self, stack: str, value: Any) -> set[Ref]:
        """The resources a template value refers to, following `Fn::GetStackOutput` into other stacks."""
        found: set[Ref] = set()
        resources = self.templates[stack].get("Resources", {})
        if isinstance(value, dict):
            if isinstance(value.get("Ref"), str) and value["Ref"] in resources:
                found.add((stack, value["Ref"]))
            get_att = value.get("Fn::GetAtt")
            if isinstance(get_att, list) and get_att and get_att[0] in resources:
                found.add((stack, get_att[0]))
            output = value.get("Fn::GetStackOutput")
            if isinstance(output, dict) and output.get("StackName") in self.by_stack_name:
                producer = self.by_stack_name[output["StackName"]]
                produced = self.templates[producer].get("Outputs", {}).get(output.get("OutputName"), {})
                found |= self.refs(producer, produced.get("Value"))
            for key, item in value.items():
                if key not in ("Ref", "Fn::GetAtt", "Fn::GetStackOutput"):
                    found |= self.refs(stack, item)
        elif isinstance(value, list):
            for item in value:
                found |= self.refs(stack, item)
        elif isinstance(value, str):
            found |= {ref for suffix, ref in self.arn_suffixes.items() if value.endswith(suffix)}
            found |= {ref for token, ref in self.quoted_names.items() if token in value}
        return found

    @cached_property
    def quoted_names(self) -> dict[str, Ref]:
        """Task definition families, as a state machine's definition names the task it runs."""
        return {
            f'"{family}"': ref
            for ref, r in self.resources()
            if r["Type"] == "AWS::ECS::TaskDefinition"
            and isinstance(family := r.get("Properties", {}).get("Family"), str)
        }

    @cached_property
    def arn_suffixes(self) -> dict[str, Ref]:
        """Literal ARNs the CDK writes for named resources (the instance, the state machine, parameters)."""
        named = {"AWS::RDS::DBInstance": ("DBInstanceIdentifier", ":db:"),
                 "AWS::StepFunctions::StateMachine": ("StateMachineName", ":stateMachine:"),
                 "AWS::SSM::Parameter": ("Name", ":parameter")}  # fmt: skip
        suffixes: dict[str, Ref] = {}
        for ref, resource in self.resources():
            key, prefix = named.get(resource["Type"], ("", ""))
            name = resource.get("Properties", {}).get(key) if key else None
            if isinstance(name, str):
                suffixes[f"{prefix}{name}"] = ref
        return suffixes


def key_settings(value: Any) -> Iterator[Any]:
    """The values of a resource's KMS key properties (`KmsKeyId`, `KmsMasterKeyId`, `EncryptionKeyArn`...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if "kms" in key.lower() or "encryptionkey" in key.lower():
                yield item
            else:
                yield from key_settings(item)
    elif isinstance(value, list):
        for item in value:
            yield from key_settings(item)


def is_node(resource: dict[str, Any]) -> bool:
    if resource["Type"] not in NODE_KINDS:
        return False
    if resource["Type"] == "AWS::Lambda::Function":  # CDK's own singleton providers run outside the VPC
        return "VpcConfig" in resource.get("Properties", {})
    return True


class Diagram:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.nodes: dict[str, Node] = {}
        self.node_of: dict[Ref, str] = {}
        self.edges: set[Edge] = set()
        self.tiers: dict[Ref, str] = {}  # subnet -> tier name
        self.subnet_types: dict[str, str] = {}
        self.tier_subnets: dict[str, int] = defaultdict(int)
        self.tier_start: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
        self.vpc_label = ""
        self._collect_tiers()
        self._collect_nodes()
        self._rotation_edges()  # first: hosted rotations are nodes that reach the database
        self._database_access()
        self._iam_edges()
        self._log_edges()
        self._alert_edges()
        self._backup_edges()

    # -- nodes -------------------------------------------------------------------------------------
    def _collect_tiers(self) -> None:
        azs: set[str] = set()
        for ref, resource in self.env.resources():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::EC2::Subnet":
                tags = {t["Key"]: t["Value"] for t in properties.get("Tags", [])}
                tier = tags.get("aws-cdk:subnet-name", "Subnets")
                self.tiers[ref] = tier
                self.subnet_types[tier] = tags.get("aws-cdk:subnet-type", "")
                self.tier_subnets[tier] += 1
                cidr = ipaddress.ip_network(str(properties.get("CidrBlock", "0.0.0.0/32")))
                self.tier_start[tier] = min(self.tier_start.get(tier, cidr), cidr)
                azs.add(str(properties.get("AvailabilityZone")))
            if resource["Type"] == "AWS::EC2::VPC":
                self.vpc_ref = ref
                self.vpc_label = f"VPC {properties.get('CidrBlock', '')}"
        if self.vpc_label:
            self.vpc_label += f" · {len(azs)} AZs · {self.env.construct_path(self.vpc_ref)}"

    def tier_of(self, stack: str, value: Any) -> str | None:
        refs = self.env.refs(stack, value)
        for ref in list(refs):  # one hop through a DB subnet group
            if self.env.resource(ref)["Type"] == "AWS::RDS::DBSubnetGroup":
                refs |= self.env.refs(ref[0], self.env.resource(ref).get("Properties", {}))
        tiers = sorted({self.tiers[ref] for ref in refs if ref in self.tiers})
        return ", ".join(tiers) or None

    def _collect_nodes(self) -> None:
        for ref, resource in self.env.resources():
            if not is_node(resource):
                continue
            kind, type_ = NODE_KINDS[resource["Type"]], resource["Type"]
            properties = resource.get("Properties", {})
            tier = self.tier_of(ref[0], properties) if type_ != "AWS::StepFunctions::StateMachine" else None
            if type_ in COUNTED:
                key = f"{ref[0]}_{type_}_{tier}"
                nid = re.sub(r"[^A-Za-z0-9]", "_", key)
                if nid in self.nodes:
                    self.nodes[nid].count += 1
                else:
                    self.nodes[nid] = Node(nid, kind, [], ref[0], tier, title=COUNTED[type_])
                self.node_of[ref] = nid
                continue
            if type_ == "AWS::EC2::VPCEndpoint":
                self._endpoint_node(ref, properties, tier)
                continue
            nid = node_id(ref)
            self.nodes[nid] = Node(nid, kind, self.describe(ref, resource), ref[0], tier)
            self.node_of[ref] = nid
        self._key_usage()
        for ref, resource in self.env.resources():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::SecretsManager::SecretTargetAttachment":  # stands for its secret
                secret = next(iter(sorted(self.env.refs(ref[0], properties.get("SecretId")))), None)
                if secret in self.node_of:
                    self.node_of[ref] = self.node_of[secret]
            if resource["Type"] == "AWS::StepFunctions::StateMachine":  # the task runs where it is started
                for task in self.env.refs(ref[0], properties):
                    if task in self.node_of and self.env.resource(task)["Type"] == "AWS::ECS::TaskDefinition":
                        self.nodes[self.node_of[task]].tier = self.tier_of(ref[0], properties)

    def _key_usage(self) -> None:
        """A key's label counts what it encrypts: an edge to each would drown the picture."""
        keys = {ref for ref in self.node_of if self.env.resource(ref)["Type"] == "AWS::KMS::Key"}
        for key in sorted(keys):
            encrypted: dict[str, set[str]] = defaultdict(set)
            for ref, resource in self.env.resources():
                nid = self.node_of.get(ref)
                if nid and ref != key and key in self.env.refs(ref[0], list(key_settings(resource))):
                    encrypted[TITLES.get(resource["Type"], resource["Type"].split("::")[-1])].add(nid)
            summary = ", ".join(f"{len(ids)} x {title}" for title, ids in sorted(encrypted.items()))
            if summary:
                self.nodes[self.node_of[key]].lines.insert(-1, f"encrypts {summary}")

    def _endpoint_node(self, ref: Ref, properties: dict[str, Any], tier: str | None) -> None:
        name = properties.get("ServiceName", "")
        parts = name.get("Fn::Join", ["", []])[1] if isinstance(name, dict) else [name]
        literal = "".join(part if isinstance(part, str) else "{region}" for part in parts)
        service = literal.split(".", 3)[-1] if literal.startswith("com.amazonaws.") else literal
        gateway = properties.get("VpcEndpointType") == "Gateway"
        nid = re.sub(r"[^A-Za-z0-9]", "_", f"{ref[0]}_endpoints_{'gateway' if gateway else tier}")
        title = "Gateway endpoint" if gateway else "Interface endpoint"
        node = self.nodes.setdefault(nid, Node(nid, "network", [], ref[0], tier, count=0, title=title))
        node.count += 1
        node.lines = (
            [", ".join(sorted({*node.lines[0].split(", "), service} - {""}))] if node.lines else [service]
        )
        self.node_of[ref] = nid

    def describe(self, ref: Ref, resource: dict[str, Any]) -> list[str]:
        type_, properties = resource["Type"], resource.get("Properties", {})
        path = self.env.construct_path(ref)
        title = TITLES.get(type_, type_.split("::")[-1])
        if type_ == "AWS::RDS::DBInstance":
            details = [
                f"{properties.get('Engine')} {properties.get('EngineVersion')}",
                str(properties.get("DBInstanceClass")),
                "Multi-AZ" if properties.get("MultiAZ") is True else "",
                f"port {properties.get('Port')}" if properties.get("Port") else "",
            ]
            return [
                f"RDS {properties.get('DBInstanceIdentifier', '')}",
                " · ".join(d for d in details if d),
                path,
            ]
        if type_ == "AWS::KMS::Key":
            aliases = [
                r["Properties"]["AliasName"]
                for other, r in self.env.resources()
                if r["Type"] == "AWS::KMS::Alias" and ref in self.env.refs(other[0], r["Properties"])
            ]
            return [title, *aliases, path]
        if type_ == "AWS::Lambda::Function":
            return [f"Lambda {properties.get('Runtime', '')}".strip(), path]
        if type_ == "AWS::ECS::TaskDefinition":
            containers = ", ".join(c.get("Name", "") for c in properties.get("ContainerDefinitions", []))
            return [title, f"container {containers} · {properties.get('Cpu')} CPU units · {properties.get('Memory')} MiB", path]  # fmt: skip
        name = next(
            (
                properties[key]
                for key in ("Name", "StateMachineName", "LogGroupName", "BackupVaultName", "TopicName")
                if isinstance(properties.get(key), str)
            ),
            "",
        )
        return [title, name, path] if name else [title, path]

    def node_for(self, ref: Ref) -> str | None:
        return self.node_of.get(ref)

    def add_node(self, nid: str, kind: str, lines: list[str], stack: str, tier: str | None = None) -> str:
        self.nodes.setdefault(nid, Node(nid, kind, lines, stack, tier))
        return nid

    def edge(self, category: str, source: str | None, target: str | None, label: str) -> None:
        if source and target and source != target:
            self.edges.add(Edge(category, source, target, label))

    # -- who uses what -----------------------------------------------------------------------------
    def users_of(self, target: Ref) -> list[str]:
        """The nodes that reference a resource (a security group, a role), state machines' tasks included."""
        users: list[str] = []
        for ref, resource in self.env.resources():
            nid = self.node_for(ref)
            if nid is None or target not in self.env.refs(ref[0], resource.get("Properties", {})):
                continue
            if resource["Type"] == "AWS::StepFunctions::StateMachine" and self.is_security_group(target):
                tasks = [
                    self.node_for(r)
                    for r in self.env.refs(ref[0], resource.get("Properties", {}))
                    if self.env.resource(r)["Type"] == "AWS::ECS::TaskDefinition"
                ]
                users.extend(t for t in tasks if t)
                continue
            users.append(nid)
        return sorted(set(users))

    def is_security_group(self, ref: Ref) -> bool:
        return bool(self.env.resource(ref)["Type"] == "AWS::EC2::SecurityGroup")

    def _database_access(self) -> None:
        for ref, resource in self.env.resources():
            if resource["Type"] != "AWS::RDS::DBInstance":
                continue
            properties = resource.get("Properties", {})
            database = self.node_for(ref)
            for group in self.env.refs(ref[0], properties.get("VPCSecurityGroups", [])):
                for source_stack, rule in self.ingress_rules(group):
                    if not int(rule.get("FromPort", -1)) <= POSTGRES_PORT <= int(rule.get("ToPort", -1)):
                        continue
                    label = f"TCP {POSTGRES_PORT}"
                    for source in self.env.refs(source_stack, rule.get("SourceSecurityGroupId")):
                        users = self.users_of(source) or [self.security_group_node(source)]
                        for user in users:
                            self.edge("access", user, database, label)
                    if "CidrIp" in rule:
                        cidr = self.add_node(f"cidr_{rule['CidrIp']}", "external", [rule["CidrIp"]], "")
                        self.edge("access", cidr, database, label)

    def ingress_rules(self, group: Ref) -> Iterator[tuple[str, dict[str, Any]]]:
        for rule in self.env.resource(group).get("Properties", {}).get("SecurityGroupIngress", []):
            yield group[0], rule
        for ref, resource in self.env.resources():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::EC2::SecurityGroupIngress" and group in self.env.refs(
                ref[0], properties.get("GroupId")
            ):
                yield ref[0], properties

    def security_group_node(self, group: Ref) -> str:
        properties = self.env.resource(group).get("Properties", {})
        lines = ["Security group", self.env.construct_path(group)]
        description = properties.get("GroupDescription")
        return self.add_node(
            node_id(group), "network", [*lines, description] if description else lines, group[0]
        )

    # -- IAM ---------------------------------------------------------------------------------------
    def role_statements(self) -> dict[Ref, list[tuple[str, dict[str, Any]]]]:
        statements: dict[Ref, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        managed: dict[Ref, list[dict[str, Any]]] = {}
        for ref, resource in self.env.resources():
            properties = resource.get("Properties", {})
            document = properties.get("PolicyDocument", {}).get("Statement", [])
            if resource["Type"] == "AWS::IAM::ManagedPolicy":
                managed[ref] = document
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                for role in self.env.refs(ref[0], properties.get("Roles", [])):
                    statements[role].extend((ref[0], s) for s in document)
        for ref, resource in self.env.resources():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            properties = resource.get("Properties", {})
            for policy in self.env.refs(ref[0], properties.get("ManagedPolicyArns", [])):
                statements[ref].extend((policy[0], s) for s in managed.get(policy, []))
            for policy in properties.get("Policies", []):
                statements[ref].extend(
                    (ref[0], s) for s in policy.get("PolicyDocument", {}).get("Statement", [])
                )
        return statements

    def _iam_edges(self) -> None:
        for role, statements in sorted(self.role_statements().items()):
            for stack, statement in statements:
                if statement.get("Effect") != "Allow":
                    continue
                actions = statement.get("Action", [])
                actions = [actions] if isinstance(actions, str) else actions
                for target in sorted(self.env.refs(stack, statement.get("Resource"))):
                    node = self.node_for(target)
                    if node is None:
                        continue
                    secrets = [a for a in actions if a.startswith("secretsmanager:")]
                    labels = sorted({ACTION_LABELS[a] for a in actions if a in ACTION_LABELS})
                    if not secrets and not labels:
                        continue
                    principals = self.users_of(role) or [self.role_node(role)]
                    for principal in principals:
                        if secrets and self.nodes[node].kind == "secret":
                            writes = any(
                                a.endswith(("PutSecretValue", "UpdateSecretVersionStage")) for a in secrets
                            )
                            self.edge(
                                "credentials", node, principal, "read/write" if writes else "credentials"
                            )
                        elif labels:
                            self.edge("calls", principal, node, ", ".join(labels))

    def role_node(self, role: Ref) -> str:
        properties = self.env.resource(role).get("Properties", {})
        lines = ["IAM role", self.env.construct_path(role)]
        description = properties.get("Description")
        return self.add_node(
            node_id(role), "compute", [*lines, description] if description else lines, role[0]
        )

    def _rotation_edges(self) -> None:
        for ref, resource in self.env.resources():
            if resource["Type"] != "AWS::SecretsManager::RotationSchedule":
                continue
            properties = resource.get("Properties", {})
            secret = next(
                (self.node_for(r) for r in sorted(self.env.refs(ref[0], properties.get("SecretId")))), None
            )
            schedule = properties.get("RotationRules", {}).get("ScheduleExpression", "")
            hosted = properties.get("HostedRotationLambda")
            rotator: str | None
            if hosted:
                tier = self.tier_of(ref[0], hosted.get("VpcSubnetIds"))
                rotator = self.add_node(
                    node_id(ref),
                    "compute",
                    [
                        "AWS hosted rotation Lambda",
                        str(hosted.get("RotationType", "")),
                        self.env.construct_path(ref),
                    ],
                    ref[0],
                    tier,
                )
                self.node_of[ref] = rotator
            else:
                rotator = next(
                    (
                        self.node_for(r)
                        for r in sorted(self.env.refs(ref[0], properties.get("RotationLambdaARN")))
                    ),
                    None,
                )
            self.edge("credentials", rotator, secret, f"rotates {schedule}".strip())

    # -- logs and alerts ---------------------------------------------------------------------------
    def _log_edges(self) -> None:
        log_groups_by_name = {
            r.get("Properties", {}).get("LogGroupName"): ref
            for ref, r in self.env.resources()
            if r["Type"] == "AWS::Logs::LogGroup"
            and isinstance(r.get("Properties", {}).get("LogGroupName"), str)
        }
        for ref, resource in self.env.resources():
            properties, type_ = resource.get("Properties", {}), resource["Type"]
            source, destinations = self.node_for(ref), set()
            if type_ == "AWS::Lambda::Function":
                destinations = self.env.refs(ref[0], properties.get("LoggingConfig", {}).get("LogGroup"))
            elif type_ == "AWS::ECS::TaskDefinition":
                for container in properties.get("ContainerDefinitions", []):
                    options = container.get("LogConfiguration", {}).get("Options", {})
                    destinations |= self.env.refs(ref[0], options.get("awslogs-group"))
            elif type_ == "AWS::StepFunctions::StateMachine":
                destinations = self.env.refs(ref[0], properties.get("LoggingConfiguration"))
            elif type_ == "AWS::EC2::FlowLog":
                vpc = self.env.refs(ref[0], properties.get("ResourceId"))
                source = "vpc" if vpc else None
                destinations = self.env.refs(
                    ref[0], [properties.get("LogGroupName"), properties.get("LogDestination")]
                )
                self.edge(
                    "logs", source, next((self.node_for(d) for d in sorted(destinations)), None), "flow logs"
                )
                continue
            elif type_ == "AWS::RDS::DBInstance":
                identifier = properties.get("DBInstanceIdentifier")
                for export in properties.get("EnableCloudwatchLogsExports", []):
                    group = log_groups_by_name.get(f"/aws/rds/instance/{identifier}/{export}")
                    self.edge("logs", source, self.node_for(group) if group else None, export)
                continue
            elif type_ in ("AWS::Logs::SubscriptionFilter", "AWS::Logs::MetricFilter"):
                groups = self.env.refs(ref[0], properties.get("LogGroupName"))
                name = properties.get("LogGroupName")
                origin = next((self.node_for(g) for g in sorted(groups)), None)
                if origin is None and isinstance(name, str):
                    origin = log_groups_by_name.get(name) and self.node_for(log_groups_by_name[name])
                    origin = origin or self.add_node(
                        re.sub(r"[^A-Za-z0-9]", "_", f"external_{name}"),
                        "external",
                        ["Log group outside this app", name],
                        "",
                    )
                if type_ == "AWS::Logs::MetricFilter":
                    self.edge("alerts", origin, self.node_for(ref), "events")
                else:
                    target = self.add_node(
                        f"{node_id(ref)}_destination", "external", ["Central log destination"], ""
                    )
                    self.edge("logs", origin, target, "subscription")
                continue
            for destination in sorted(destinations):
                self.edge("logs", source, self.node_for(destination), "logs")

    def _alert_edges(self) -> None:
        for ref, resource in self.env.resources():
            properties, type_ = resource.get("Properties", {}), resource["Type"]
            source = self.node_for(ref)
            targets: set[Ref] = set()
            if type_ == "AWS::CloudWatch::Alarm":
                targets = self.env.refs(ref[0], [properties.get("AlarmActions"), properties.get("OKActions")])
                metric = (properties.get("Namespace"), properties.get("MetricName"))
                for other, filter_ in self.env.resources():
                    if filter_["Type"] == "AWS::Logs::MetricFilter" and metric in {
                        (t.get("MetricNamespace"), t.get("MetricName"))
                        for t in filter_.get("Properties", {}).get("MetricTransformations", [])
                    }:
                        self.edge("alerts", self.node_for(other), source, "metric")
            elif type_ == "AWS::Events::Rule":
                targets = self.env.refs(ref[0], properties.get("Targets"))
            elif type_ == "AWS::RDS::EventSubscription":
                targets = self.env.refs(ref[0], properties.get("SnsTopicArn"))
            elif type_ == "AWS::SNS::Subscription":
                topic = next(
                    (self.node_for(t) for t in sorted(self.env.refs(ref[0], properties.get("TopicArn")))),
                    None,
                )
                protocol = str(properties.get("Protocol"))
                subscriber = self.add_node(f"{topic}_{protocol}", "external", [f"{protocol} subscribers"], "")
                self.edge("alerts", topic, subscriber, "notify")
                continue
            elif type_ == "AWS::Chatbot::SlackChannelConfiguration":
                for topic_ref in sorted(self.env.refs(ref[0], properties.get("SnsTopicArns"))):
                    self.edge("alerts", self.node_for(topic_ref), source, "notify")
                continue
            for target in sorted(targets):
                if self.env.resource(target)["Type"] == "AWS::SNS::Topic":
                    self.edge("alerts", source, self.node_for(target), "alert")

    def _backup_edges(self) -> None:
        for ref, resource in self.env.resources():
            if resource["Type"] != "AWS::Backup::BackupSelection":
                continue
            selection = resource.get("Properties", {}).get("BackupSelection", {})
            plan = self.env.refs(ref[0], resource.get("Properties", {}).get("BackupPlanId"))
            vaults: set[Ref] = set()
            for plan_ref in plan:
                vaults |= self.env.refs(plan_ref[0], self.env.resource(plan_ref).get("Properties", {}))
            for protected in sorted(self.env.refs(ref[0], selection.get("Resources"))):
                for vault in sorted(vaults):
                    self.edge("calls", self.node_for(protected), self.node_for(vault), "daily snapshot")

    # -- rendering ---------------------------------------------------------------------------------
    def render(self) -> str:
        lines = ["```mermaid", "flowchart LR"]
        in_tier: dict[str, list[Node]] = defaultdict(list)
        by_stack: dict[str, list[Node]] = defaultdict(list)
        for node in sorted(self.nodes.values(), key=lambda n: n.id):
            if node.tier:
                in_tier[node.tier].append(node)
            else:
                by_stack[node.stack].append(node)
        if self.vpc_label:
            lines.append(f'  subgraph vpc["{escape(self.vpc_label)}"]')
            for tier in sorted(self.tier_subnets, key=self.tier_order):
                count = self.tier_subnets[tier]
                kind = self.subnet_types.get(tier, "").lower()
                lines.append(f'    subgraph tier_{tier}["{tier} subnets x{count} ({kind})"]')
                lines.append("      direction TB")
                for node in in_tier.pop(tier, []):
                    lines.append(f"      {node.id}{self.shape(node)}")
                if not self.has_nodes(tier):
                    lines.append(f'      tier_{tier}_empty[" "]:::empty')
                lines.append("    end")
            lines.append("  end")
        for node in [n for nodes in in_tier.values() for n in nodes]:  # tiers we could not name
            by_stack[node.stack].append(node)
        for stack in sorted(by_stack, key=lambda s: (s == "", s)):
            nodes = by_stack[stack]
            if stack:
                name = self.env.artifacts[stack].stack_name
                lines.append(f'  subgraph stack_{re.sub(r"[^A-Za-z0-9]", "_", stack)}["{name}"]')
                lines.append("    direction TB")
                lines.extend(f"    {node.id}{self.shape(node)}" for node in nodes)
                lines.append("  end")
            else:
                lines.extend(f"  {node.id}{self.shape(node)}" for node in nodes)
        merged: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for edge in sorted(self.edges):
            merged[(edge.category, edge.source, edge.target)].append(edge.label)
        link_styles: dict[str, list[int]] = defaultdict(list)
        for index, ((category, source, target), labels) in enumerate(sorted(merged.items())):
            arrow = EDGE_STYLES[category][0]
            label = escape(", ".join(dict.fromkeys(labels)))
            lines.append(f'  {source} {arrow}|"{label}"| {target}')
            link_styles[category].append(index)
        for kind, style in STYLES.items():
            lines.append(f"  classDef {kind} {style}")
        lines.append("  classDef empty fill:none,stroke:none")
        for category, indexes in sorted(link_styles.items()):
            lines.append(f"  linkStyle {','.join(map(str, indexes))} {EDGE_STYLES[category][1]}")
        lines.append("```")
        return "\n".join(lines) + "\n"

    def has_nodes(self, tier: str) -> bool:
        return any(node.tier == tier for node in self.nodes.values())

    def tier_order(self, tier: str) -> tuple[int, str]:
        start = self.tier_start.get(tier)  # as the VPC lays them out (lowest address first)
        return (int(start.network_address) if start else 0), tier

    def shape(self, node: Node) -> str:
        label = node.label()
        shapes = {
            "database": f'[("{label}")]',
            "key": f'{{{{"{label}"}}}}',
            "secret": f'[/"{label}"/]',
            "compute": f'(["{label}"])' if "Lambda" in label else f'["{label}"]',
        }
        return shapes.get(node.kind, f'["{label}"]') + f":::{node.kind}"


def environments(assembly: Path) -> dict[str, Environment]:
    grouped: dict[str, dict[str, StackArtifact]] = defaultdict(dict)
    for display_name, artifact in stack_artifacts(assembly).items():
        grouped[artifact.environment][display_name] = artifact
    return {name: Environment(name, artifacts) for name, artifacts in sorted(grouped.items())}


def stack_table(env: Environment) -> list[str]:
    lines = ["| Stack | Resources |", "| --- | --- |"]
    for display_name, artifact in sorted(env.artifacts.items()):
        count = len(env.templates[display_name].get("Resources", {}))
        lines.append(f"| `{artifact.stack_name}` | {count} |")
    return lines


def render(assembly: Path, order: Sequence[str] = ("Staging", "Production")) -> str:
    envs = environments(assembly)
    names = [n for n in order if n in envs] + [n for n in envs if n not in order]
    parts = [
        "# Architecture",
        "",
        "<!-- Generated by `make diagram` (tools/diagram.py) from the synthesized cloud assembly. Do not edit. -->",
        "",
        "What each environment deploys, drawn from the synthesized templates by `tools/diagram.py`",
        "(`make diagram` regenerates this page; `tests/test_tooling/test_diagram.py` fails when it is",
        "out of date). Resources inside the VPC sit in their subnet tier; everything else is grouped by",
        "stack. Edges:",
        "",
        "- **thick red, `TCP 5432`**: security-group ingress on the database's security group;",
        "- **dotted orange, `credentials` / `rotates`**: IAM grants on a secret, and rotation schedules;",
        "- **grey, `logs`**: where each component writes its logs (log exports, flow logs, log drivers);",
        "- **pink, `alert`**: alarms, rules and event subscriptions to the alert topic and its subscribers;",
        "- **green**: other calls granted by IAM (snapshot, run the task, publish, invoke, read parameters).",
        "",
        "Roles, policies, security-group egress, route tables and CDK's own helper Lambdas are left out.",
        "",
        "## Contents",
        "",
        *[f"- [{name}](#{name.lower()})" for name in names],
    ]
    for name in names:
        diagram = Diagram(envs[name])
        parts += ["", f"## {name}", "", *stack_table(envs[name]), "", diagram.render().rstrip("\n")]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the output is out of date")
    args = parser.parse_args(argv)
    text = render(args.assembly)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run `make diagram`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
