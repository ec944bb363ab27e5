"""Cross-stack references (`Fn::GetStackOutput`, CDK's weak references) only where CloudFormation documents them.

CloudFormation documents `Fn::GetStackOutput` as a resource property value, as an argument of
`Fn::Join`, `Fn::If`, `Fn::Select`, `Fn::Sub` and `Fn::Base64`, and as an Output value. Not inside
`Fn::Split` (CDK renders a name parsed from an imported ARN that way; aws-cdk#37948), not in
Conditions, Metadata or Parameters, and not in what a transform or macro processes before
CloudFormation resolves intrinsics (the Secrets Manager transform's `HostedRotationLambda`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DOCUMENTED_FUNCTIONS = frozenset({"Fn::Join", "Fn::If", "Fn::Select", "Fn::Sub", "Fn::Base64"})
# Transform (name without its version date) -> (resource type, property) it rewrites before intrinsic
# functions are resolved; any other transform (AWS::Serverless) -> its AWS::Serverless:: resources, whole.
TRANSFORM_PROCESSED = {
    "AWS::SecretsManager": ("AWS::SecretsManager::RotationSchedule", "HostedRotationLambda"),
}


def stack_output_paths(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path (keys and list indexes) of every Fn::GetStackOutput in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetStackOutput":
                yield path
            yield from stack_output_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from stack_output_paths(value, (*path, str(index)))


def undocumented_positions(template: dict[str, Any]) -> list[str]:
    """Every Fn::GetStackOutput outside a documented position, as a readable path."""
    problems = []
    for path in stack_output_paths(template):
        in_property = len(path) >= 3 and path[0] == "Resources" and path[2] == "Properties"
        in_output = len(path) >= 3 and path[0] == "Outputs" and path[2] == "Value"
        functions = {key for key in path if key.startswith("Fn::")}
        if not (in_property or in_output) or not functions <= DOCUMENTED_FUNCTIONS:
            problems.append("/".join(path))
    return problems


def transform_processed_positions(template: dict[str, Any]) -> list[str]:
    """Every Fn::GetStackOutput in what a transform or a macro (Fn::Transform) processes."""
    transforms = template.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else transforms
    problems = ["/".join(path) for path in stack_output_paths(template) if "Fn::Transform" in path]
    for transform in transforms:
        resource_type, property_name = TRANSFORM_PROCESSED.get(
            transform.split("-", 1)[0], ("AWS::Serverless::", "")
        )
        for logical_id, resource in template.get("Resources", {}).items():
            if not resource["Type"].startswith(resource_type):
                continue
            processed = resource.get("Properties", {}).get(property_name) if property_name else resource
            problems.extend(
                f"Resources/{logical_id}/{property_name}/" + "/".join(path)
                for path in stack_output_paths(processed)
            )
    return problems


def test_the_checks_recognise_what_they_must_refuse() -> None:
    reference = {"Fn::GetStackOutput": {"StackName": "S", "OutputName": "O"}}
    split = {"Fn::Select": [6, {"Fn::Split": [":", reference]}]}
    assert undocumented_positions({"Resources": {"R": {"Type": "T", "Properties": {"P": split}}}}) == [
        "Resources/R/Properties/P/Fn::Select/1/Fn::Split/1"
    ]
    assert undocumented_positions({"Conditions": {"C": {"Fn::Equals": [reference, "x"]}}}) != []
    documented = {"Fn::Join": ["", [{"Fn::Sub": ["${x}", {"x": reference}]}, {"Fn::Base64": reference}]]}
    assert undocumented_positions({"Outputs": {"O": {"Value": documented}}}) == []
    hosted = {
        "Transform": "AWS::SecretsManager-2024-09-16",
        "Resources": {
            "R": {
                "Type": "AWS::SecretsManager::RotationSchedule",
                "Properties": {"HostedRotationLambda": {"VpcSubnetIds": {"Fn::Join": [",", [reference]]}}},
            }
        },
    }
    assert transform_processed_positions(hosted) == [
        "Resources/R/HostedRotationLambda/VpcSubnetIds/Fn::Join/1/0"
    ]


def test_no_stack_output_reference_in_an_undocumented_position(env) -> None:
    problems = {stack: undocumented_positions(template) for stack, template in env.raw.items()}
    assert {stack: paths for stack, paths in problems.items() if paths} == {}


# The hosted rotation of the master secret (its transform's VpcSubnetIds read the Network stack's subnets)
# is gone with the RDS-managed master secret (issue 11); this fails if a transform comes back with one.
def test_no_stack_output_reference_in_a_transform_processed_property(env) -> None:
    problems = {stack: transform_processed_positions(template) for stack, template in env.raw.items()}
    assert {stack: paths for stack, paths in problems.items() if paths} == {}
