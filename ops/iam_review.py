"""Which IAM principals the synthesized stacks allow to read the application secret or decrypt with
the database CMK (the IAM half of `python -m ops access-review`).

Reads the environment's templates from a cloud assembly (`cdk.out/assembly-<Stage>`): identity
policies (`AWS::IAM::Policy`, `AWS::IAM::ManagedPolicy`, a role's inline `Policies`) attached to
roles, the key policy, and secret resource policies. A statement counts when it allows an action
that grants the capability (wildcards expanded, e.g. `secretsmanager:*`, `kms:*`, `*`) on a resource
that is the secret or the key, or `*`. Cross-stack values (`Fn::GetStackOutput`) are followed to the
stack that owns them. Conditions are reported as written.

Limits (stated in the report): AWS managed policies attached to a role are listed by ARN but their
documents are not in the templates; principals outside these stacks that the account root
delegation (`arn:aws:iam::<account>:root` in the key policy) admits are decided by the account's
IAM policies, which only the deployed account can answer (IAM Access Analyzer, or
`aws iam simulate-principal-policy`).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET_READ_ACTIONS = ("secretsmanager:GetSecretValue",)
KEY_DECRYPT_ACTIONS = ("kms:Decrypt",)

Templates = Mapping[str, dict[str, Any]]  # deployed stack name -> template


def load_stage_templates(assembly_dir: Path, stage_id: str) -> dict[str, dict[str, Any]]:
    """The templates of one Stage's nested assembly (`<assembly>/assembly-<Stage>`), by stack name."""
    stage_dir = assembly_dir / f"assembly-{stage_id}"
    manifest = json.loads((stage_dir / "manifest.json").read_text())
    templates: dict[str, dict[str, Any]] = {}
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") == "aws:cloudformation:stack":
            properties = artifact["properties"]
            templates[properties["stackName"]] = json.loads(
                (stage_dir / properties["templateFile"]).read_text()
            )
    return templates


@dataclass(frozen=True, order=True)
class Ref:
    """A resource of a stack: `Production-Data/ApplicationCredentialsSecret71772FF2`."""

    stack: str
    logical_id: str

    def __str__(self) -> str:
        return f"{self.stack}/{self.logical_id}"


def references(value: Any, stack: str, templates: Templates) -> set[Ref]:
    """Resources a template value points at (Ref, Fn::GetAtt, ${X} in Fn::Sub, followed Fn::GetStackOutput)."""
    found: set[Ref] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and not inner.startswith("AWS::"):
                found.add(Ref(stack, inner))
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found.add(Ref(stack, target))
            elif key == "Fn::GetStackOutput":
                owner = inner["StackName"]
                output = templates.get(owner, {}).get("Outputs", {}).get(inner["OutputName"], {})
                found |= references(output.get("Value"), owner, templates)
            else:
                found |= references(inner, stack, templates)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner, stack, templates)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows(statement: Mapping[str, Any], wanted: tuple[str, ...]) -> list[str]:
    """The wanted actions an Allow statement grants (NotAction statements count as granting all but theirs)."""
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement:
        excluded = [str(a).lower() for a in _as_list(statement["NotAction"])]
        return [w for w in wanted if not any(fnmatch.fnmatchcase(w.lower(), e) for e in excluded)]
    patterns = [str(a).lower() for a in _as_list(statement.get("Action", []))]
    return [w for w in wanted if any(fnmatch.fnmatchcase(w.lower(), p) for p in patterns)]


def _on(statement: Mapping[str, Any], target: Ref, stack: str, templates: Templates) -> bool:
    resources = _as_list(statement.get("Resource", []))
    return any(r == "*" for r in resources) or target in references(resources, stack, templates)


@dataclass(frozen=True)
class Grant:
    """One principal that may perform `actions` on the secret or the key, and through what."""

    capability: str  # "read the application secret" | "decrypt with the database CMK"
    principal: str  # a role (stack/logical id) or a key/secret-policy principal as written
    principal_detail: str  # who assumes the role, or "key policy"
    actions: tuple[str, ...]
    via: str  # the policy (stack/logical id) and statement
    conditions: str  # JSON of the statement's Condition, or ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "principal": self.principal,
            "principal_detail": self.principal_detail,
            "actions": list(self.actions),
            "via": self.via,
            "conditions": self.conditions,
        }


def _resources(templates: Templates) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack, template in sorted(templates.items()):
        for logical_id, resource in sorted(template.get("Resources", {}).items()):
            yield stack, logical_id, resource


def _role_detail(role: Mapping[str, Any]) -> str:
    principals = []
    for statement in role.get("Properties", {}).get("AssumeRolePolicyDocument", {}).get("Statement", []):
        principal = statement.get("Principal", {})
        for kind in ("Service", "AWS", "Federated"):
            principals += [str(p) for p in _as_list(principal.get(kind, []))]
    return "assumed by " + ", ".join(principals) if principals else "role"


def _policy_roles(stack: str, logical_id: str, resource: Mapping[str, Any], templates: Templates) -> set[Ref]:
    """The roles an identity policy is attached to (its `Roles`, or roles listing it in ManagedPolicyArns)."""
    properties = resource.get("Properties", {})
    roles = references(properties.get("Roles", []), stack, templates)
    if resource["Type"] == "AWS::IAM::ManagedPolicy":
        me = Ref(stack, logical_id)
        for role_stack, role_id, role in _resources(templates):
            if role["Type"] == "AWS::IAM::Role" and me in references(
                role.get("Properties", {}).get("ManagedPolicyArns", []), role_stack, templates
            ):
                roles.add(Ref(role_stack, role_id))
    return roles


def _identity_statements(templates: Templates) -> Iterator[tuple[str, Ref, set[Ref], dict[str, Any], int]]:
    """(stack, policy, roles it applies to, statement, index) for every identity policy statement."""
    for stack, logical_id, resource in _resources(templates):
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = _policy_roles(stack, logical_id, resource, templates)
            statements = properties.get("PolicyDocument", {}).get("Statement", [])
            for index, statement in enumerate(statements):
                yield stack, Ref(stack, logical_id), roles, statement, index
        elif kind == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                for index, statement in enumerate(policy.get("PolicyDocument", {}).get("Statement", [])):
                    yield stack, Ref(stack, logical_id), {Ref(stack, logical_id)}, statement, index


def grants(templates: Templates, *, secret: Ref, key: Ref) -> list[Grant]:
    """Every grant of reading `secret` or decrypting with `key` that the templates contain."""
    result: list[Grant] = []
    roles = {Ref(s, i): r for s, i, r in _resources(templates) if r["Type"] == "AWS::IAM::Role"}
    targets = (
        ("read the application secret", secret, SECRET_READ_ACTIONS),
        ("decrypt with the database CMK", key, KEY_DECRYPT_ACTIONS),
    )
    for stack, policy, attached, statement, index in _identity_statements(templates):
        for capability, target, wanted in targets:
            actions = _allows(statement, wanted)
            if actions and _on(statement, target, stack, templates):
                for role in sorted(attached):
                    result.append(
                        Grant(
                            capability=capability,
                            principal=str(role),
                            principal_detail=_role_detail(roles.get(role, {})),
                            actions=tuple(actions),
                            via=f"{policy} statement {index}",
                            conditions=json.dumps(statement.get("Condition", {}), sort_keys=True)
                            if statement.get("Condition")
                            else "",
                        )
                    )
    result += _resource_policy_grants(templates, secret=secret, key=key)
    return sorted(result, key=lambda g: (g.capability, g.principal, g.via))


def _resource_policy_grants(templates: Templates, *, secret: Ref, key: Ref) -> list[Grant]:
    result = []
    for stack, logical_id, resource in _resources(templates):
        properties = resource.get("Properties", {})
        if Ref(stack, logical_id) == key:
            document, capability, wanted = (
                properties.get("KeyPolicy", {}),
                "decrypt with the database CMK",
                KEY_DECRYPT_ACTIONS,
            )
        elif resource["Type"] == "AWS::SecretsManager::ResourcePolicy" and secret in references(
            properties.get("SecretId"), stack, templates
        ):
            document, capability, wanted = (
                properties.get("ResourcePolicy", {}),
                "read the application secret",
                SECRET_READ_ACTIONS,
            )
        else:
            continue
        for index, statement in enumerate(document.get("Statement", [])):
            actions = _allows(statement, wanted)
            if not actions:
                continue
            principal = statement.get("Principal", {})
            names = (
                ["*"]
                if principal == "*"
                else [
                    f"{kind}: {p}" for kind in ("AWS", "Service") for p in _as_list(principal.get(kind, []))
                ]
            )
            for name in names:
                result.append(
                    Grant(
                        capability=capability,
                        principal=json.dumps(name) if not isinstance(name, str) else name,
                        principal_detail="resource policy of " + str(Ref(stack, logical_id)),
                        actions=tuple(actions),
                        via=f"{Ref(stack, logical_id)} statement {statement.get('Sid', index)}",
                        conditions=json.dumps(statement.get("Condition", {}), sort_keys=True)
                        if statement.get("Condition")
                        else "",
                    )
                )
    return result


def find_secret(templates: Templates, secret_name: str) -> Ref:
    """The application secret: the `AWS::SecretsManager::Secret` named `secret_name`."""
    for stack, logical_id, resource in _resources(templates):
        if (
            resource["Type"] == "AWS::SecretsManager::Secret"
            and resource["Properties"].get("Name") == secret_name
        ):
            return Ref(stack, logical_id)
    raise LookupError(f"no secret named {secret_name!r} in the templates")


def find_key(templates: Templates, alias_name: str) -> Ref:
    """The database CMK: the key that `alias_name` points at."""
    for stack, _, resource in _resources(templates):
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::KMS::Alias" and properties.get("AliasName") == alias_name:
            (target,) = references(properties["TargetKeyId"], stack, templates)
            return target
    raise LookupError(f"no KMS alias {alias_name!r} in the templates")


def aws_managed_policies(templates: Templates) -> list[dict[str, str]]:
    """Roles with AWS managed policies (their documents are not in the templates: listed, not analysed)."""
    result = []
    for stack, logical_id, resource in _resources(templates):
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for arn in _as_list(resource.get("Properties", {}).get("ManagedPolicyArns", [])):
            text = json.dumps(arn)
            if ":iam::aws:policy/" in text:
                name = text.split(":iam::aws:policy/", 1)[1].split('"', 1)[0]
                result.append({"role": str(Ref(stack, logical_id)), "policy": name})
    return result
