"""Templates of both environments, parsed once per session from the shared synth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from config.environments import ENVIRONMENTS
from config.schema import EnvironmentConfig
from tests.support.synth import SynthesizedApp

STACK_IDS = ("Network", "Data", "ApplicationAccess", "Monitoring", "Migration")


@dataclass(frozen=True)
class EnvironmentTemplates:
    config: EnvironmentConfig
    templates: dict[str, Any]  # stack id -> aws_cdk.assertions.Template
    raw: dict[str, dict[str, Any]]  # stack id -> template JSON

    def __getitem__(self, stack_id: str) -> Any:
        return self.templates[stack_id]

    def resources(self, stack_id: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.raw[stack_id]["Resources"].items()
            if resource["Type"] == resource_type
        }


@pytest.fixture(scope="session")
def environments(synthesized_app: SynthesizedApp) -> dict[str, EnvironmentTemplates]:
    from aws_cdk.assertions import Template

    result = {}
    for config in ENVIRONMENTS:
        raw = {stack_id: synthesized_app.template_json(config.stage_id, stack_id) for stack_id in STACK_IDS}
        result[config.name] = EnvironmentTemplates(
            config=config, templates={k: Template.from_json(v) for k, v in raw.items()}, raw=raw
        )
    return result


@pytest.fixture(params=[config.name for config in ENVIRONMENTS])
def env(
    request: pytest.FixtureRequest, environments: dict[str, EnvironmentTemplates]
) -> EnvironmentTemplates:
    """Each test that takes `env` runs once per environment."""
    return environments[request.param]
