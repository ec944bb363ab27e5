"""Cross-stack part of the replacement guard: what a change does to the stacks that consume a value.

The app uses weak cross-stack references (`@aws-cdk/core:defaultCrossStackReferences: weak`): a
consumer reads a producer's output with `Fn::GetStackOutput` when the CONSUMER is deployed. Nothing
in CloudFormation stops the producer from replacing the resource behind an output: the producer's
update creates the new resource, its cleanup deletes the old one, and every consumer keeps pointing
at the deleted one until it is redeployed (e.g. a replaced database security group: the application's
and the migration task's ingress rules still name the old group, so applications lose the database).
A template-only diff of each stack shows the consumers as "unchanged", so this module looks across
stacks:

- which resources a change replaces, for ANY resource type, from the pinned CDK CLI's own resource
  specification (`node_modules/aws-cdk/db.json.gz`, `causesReplacement`), propagated through
  references inside the producer's template (a replaced VPC replaces its subnets and security groups);
- which outputs change value (removed, expression changed, or naming a replaced resource);
- which stacks consume those outputs (`Fn::GetStackOutput` with the producer's stack name).

Verdicts: an output whose resource is replaced or removed while another stack consumes it blocks the
guard (it is an outage between the two deploys, and the old resource's deletion may fail on the
consumers' references); a replaced VPC or subnet blocks whether or not it is consumed (everything in
it moves); an output whose value changes without a replacement is a warning that names the consumers
which must be redeployed with it (`cdk deploy` of both, in dependency order).
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.replacement_guard import Finding, references

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI_SPEC_DATABASE = REPO_ROOT / "node_modules" / "aws-cdk" / "db.json.gz"
# Network resources whose replacement moves everything inside them: never acceptable unannounced.
ALWAYS_BLOCKING_TYPES = frozenset({"AWS::EC2::VPC", "AWS::EC2::Subnet"})


@functools.cache
def replacement_properties(resource_type: str) -> Mapping[str, str]:
    """Property -> "yes" | "maybe": changing it replaces a resource of this type (the CLI's spec)."""
    return _specification().get(resource_type, {})


@functools.cache
def _specification() -> dict[str, dict[str, str]]:
    database = json.loads(gzip.decompress(CLI_SPEC_DATABASE.read_bytes()))
    entities = database["schema"]["resource"]["entities"]
    records = entities.values() if isinstance(entities, dict) else entities
    return {
        record["cloudFormationType"]: {
            name: prop["causesReplacement"]
            for name, prop in record.get("properties", {}).items()
            if prop.get("causesReplacement") in ("yes", "maybe")
        }
        for record in records
    }


def replaced_resources(base: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> why, for every resource of `base` that `new` removes or replaces."""
    base_resources, new_resources = base.get("Resources", {}), new.get("Resources", {})
    replaced: dict[str, str] = {}
    for logical_id, old in base_resources.items():
        current = new_resources.get(logical_id)
        if current is None:
            replaced[logical_id] = "removed"
        elif current.get("Type") != old.get("Type"):
            replaced[logical_id] = f"type changed to {current.get('Type')}"
        else:
            old_properties, new_properties = old.get("Properties", {}), current.get("Properties", {})
            for name, impact in sorted(replacement_properties(old.get("Type", "")).items()):
                if impact == "yes" and old_properties.get(name) != new_properties.get(name):
                    replaced[logical_id] = (
                        f"{name} {old_properties.get(name)!r} -> {new_properties.get(name)!r}"
                    )
                    break
    # A replacing property that names a replaced resource changes too (the new physical id).
    changed = True
    while changed:
        changed = False
        for logical_id, current in new_resources.items():
            if logical_id in replaced or logical_id not in base_resources:
                continue
            for name, impact in sorted(replacement_properties(current.get("Type", "")).items()):
                causes = references(current.get("Properties", {}).get(name)) & set(replaced)
                if impact == "yes" and causes:
                    replaced[logical_id] = f"{name} refers to {sorted(causes)[0]}, which is replaced"
                    changed = True
                    break
    return replaced


def changed_outputs(
    base: Mapping[str, Any], new: Mapping[str, Any], replaced: Mapping[str, str]
) -> dict[str, str]:
    """Output name -> why its value changes (removed, new expression, or a replaced resource behind it)."""
    result: dict[str, str] = {}
    new_outputs = new.get("Outputs", {})
    for name, output in base.get("Outputs", {}).items():
        current = new_outputs.get(name)
        if current is None:
            result[name] = "output removed"
            continue
        behind = sorted(references(current.get("Value")) & set(replaced))
        if behind:
            result[name] = f"{behind[0]} is replaced ({replaced[behind[0]]})"
        elif current.get("Value") != output.get("Value"):
            result[name] = f"value {output.get('Value')!r} -> {current.get('Value')!r}"
    return result


def consumers(templates: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """(producer stack name, output name) -> the display names of the stacks that read it."""
    found: dict[tuple[str, str], set[str]] = {}

    def walk(value: Any, consumer: str) -> None:
        if isinstance(value, dict):
            reference = value.get("Fn::GetStackOutput")
            if isinstance(reference, dict):
                key = (str(reference.get("StackName")), str(reference.get("OutputName")))
                found.setdefault(key, set()).add(consumer)
            for inner in value.values():
                walk(inner, consumer)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, consumer)

    for display_name, template in templates.items():
        walk({k: v for k, v in template.items() if k in ("Resources", "Outputs", "Conditions")}, display_name)
    return {key: sorted(names) for key, names in found.items()}


def cross_stack_findings(
    base: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    stack_names: Mapping[str, str],
) -> list[Finding]:
    """Findings for changes that reach other stacks; `stack_names` maps display names to deployed names."""
    readers = consumers(new)
    findings: list[Finding] = []
    for display_name in sorted(set(base) & set(new)):
        environment, _, stack = display_name.rpartition("/")
        replaced = replaced_resources(base[display_name], new[display_name])
        base_resources = base[display_name].get("Resources", {})
        for logical_id, why in sorted(replaced.items()):
            resource_type = base_resources[logical_id].get("Type", "")
            if resource_type in ALWAYS_BLOCKING_TYPES:
                findings.append(
                    Finding(environment, stack, logical_id, resource_type, "replace",
                            f"{why}: a replaced {resource_type.split('::')[-1]} moves every resource inside it")
                )  # fmt: skip
        outputs = base[display_name].get("Outputs", {})
        producer_name = stack_names.get(display_name, display_name.replace("/", "-"))
        for output_name, why in sorted(
            changed_outputs(base[display_name], new[display_name], replaced).items()
        ):
            stacks = [s for s in readers.get((producer_name, output_name), []) if s != display_name]
            if not stacks:
                continue
            behind = sorted(references(outputs[output_name].get("Value")) & set(replaced))
            if behind or why == "output removed":
                target = behind[0] if behind else output_name
                resource_type = base_resources.get(target, {}).get("Type", "AWS::CloudFormation::Output")
                findings.append(
                    Finding(environment, stack, target, resource_type, "replace",
                            f"{why}; consumed through Fn::GetStackOutput {output_name} by {', '.join(stacks)}, "
                            "which keep pointing at the old value until redeployed (an outage in between; "
                            "deleting the old resource can fail on their references)")
                )  # fmt: skip
            else:
                findings.append(
                    Finding(environment, stack, output_name, "AWS::CloudFormation::Output", "warning",
                            f"{why}: consumer(s) {', '.join(stacks)} must be redeployed with it "
                            "(weak references are read when the consumer deploys)")
                )  # fmt: skip
    return sorted(set(findings), key=lambda f: (f.key, f.action, f.detail))
