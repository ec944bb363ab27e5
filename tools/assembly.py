"""Reading a synthesized cloud assembly: which stacks it has, per environment, and their templates.

`cdk synth` writes one nested assembly per CDK Stage (`cdk.out/assembly-Staging`, ...). The tools
that review a change (diff, replacement guard, validators) all need the same walk over them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StackArtifact:
    """One CloudFormation stack of the assembly, e.g. `Staging/Data`."""

    display_name: str  # how the CLI addresses it: "Staging/Data"
    environment: str  # the Stage id: "Staging"
    stack: str  # the stack id inside the Stage: "Data"
    stack_name: str  # the deployed name: "Staging-Data"
    template_path: Path

    def template(self) -> dict[str, Any]:
        template: dict[str, Any] = json.loads(self.template_path.read_text())
        return template


def stack_artifacts(assembly_dir: Path) -> dict[str, StackArtifact]:
    """Every stack of the assembly and its nested (Stage) assemblies, keyed by display name."""
    result: dict[str, StackArtifact] = {}
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    for artifact_id, artifact in sorted(manifest.get("artifacts", {}).items()):
        properties = artifact.get("properties", {})
        if artifact.get("type") == "cdk:cloud-assembly":
            result.update(stack_artifacts(assembly_dir / properties["directoryName"]))
        elif artifact.get("type") == "aws:cloudformation:stack":
            display_name = artifact.get("displayName", artifact_id)
            environment, _, stack = display_name.rpartition("/")
            result[display_name] = StackArtifact(
                display_name=display_name,
                environment=environment or "(app)",
                stack=stack,
                stack_name=properties.get("stackName", artifact_id),
                template_path=assembly_dir / properties["templateFile"],
            )
    return result


def template_files(assembly_dir: Path) -> list[Path]:
    """The template of every stack, sorted by display name."""
    return [artifact.template_path for _, artifact in sorted(stack_artifacts(assembly_dir).items())]
