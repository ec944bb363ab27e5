"""Before a migration: the deployed task definition must carry the configured backend image.

The runbook's state machine names the migration task definition (a resolved ARN in its deployed
definition); the task definition's container carries the backend image it was built from as the
Docker label `contract.backend_image.BACKEND_IMAGE_LABEL`. A mismatch means the release in
config/environments.py has not been deployed yet (README: "Releasing a backend version").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from config.schema import EnvironmentConfig
from contract.backend_image import BACKEND_IMAGE_LABEL, backend_image_uri
from ops.runbook import Plan, RunbookError

_TASK_DEFINITION_ARN = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]+:\d+$"
)


def configured_backend_image(environment: EnvironmentConfig) -> str:
    return backend_image_uri(
        environment.migration.backend_image_reference, account=environment.account, region=environment.region
    )


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _task_definition_fields(node: Any) -> Iterator[str]:
    """Values of every `TaskDefinition` argument of the definition's ECS task states."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "TaskDefinition" and isinstance(value, str):
                yield value
            else:
                yield from _task_definition_fields(value)
    elif isinstance(node, list):
        for value in node:
            yield from _task_definition_fields(value)


def deployed_task_definitions(stepfunctions: Any, plan: Plan) -> list[str]:
    """The task definitions the deployed runbook runs (one: upgrade, downgrade and validate share it).

    CDK's RunTask states name the task definition by family (ECS then runs its latest ACTIVE revision,
    which is what DescribeTaskDefinition returns for a family), a hand-written one may use the ARN.
    """
    definition = json.loads(
        stepfunctions.describe_state_machine(stateMachineArn=plan.state_machine_arn)["definition"]
    )
    named = set(_task_definition_fields(definition))
    named |= {value for value in _strings(definition) if _TASK_DEFINITION_ARN.match(value)}
    return sorted(named)


def check_backend_image(stepfunctions: Any, ecs: Any, plan: Plan) -> None:
    """RunbookError unless every task definition of the runbook is labelled with the configured image."""
    expected = configured_backend_image(plan.environment)
    task_definitions = deployed_task_definitions(stepfunctions, plan)
    if not task_definitions:
        raise RunbookError(
            f"the deployed runbook {plan.state_machine_arn} names no ECS task definition: deploy "
            f"{plan.environment.stage_id}/Migration first"
        )
    for arn in task_definitions:
        description = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        labels = [
            c.get("dockerLabels", {}).get(BACKEND_IMAGE_LABEL) for c in description["containerDefinitions"]
        ]
        deployed = next((label for label in labels if label), None)
        if deployed != expected:
            raise RunbookError(
                f"the deployed migration task definition {arn} was built from backend image {deployed or '(unlabelled)'}, "
                f"but config/environments.py says {expected}: deploy {plan.environment.stage_id}/Migration "
                "(README: Releasing a backend version) and run the command again; nothing was started"
            )
