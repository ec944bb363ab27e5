"""The runbook's definition is valid Amazon States Language (JSONata), checked by an independent validator.

`asl-validator` (npm, pinned in package.json) validates the schema of every state, the JSONata
query language fields and the transitions. CloudFormation tokens inside the definition are
replaced by well-formed stand-ins first (the validator checks ARN syntax).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"


def _stand_in(token: dict[str, Any], env) -> str:
    if token == {"Ref": "AWS::Partition"}:
        return "aws"
    if token == {"Ref": "AWS::Region"}:
        return env.config.region
    if token == {"Ref": "AWS::AccountId"}:
        return env.config.account
    # Resource ids and ARNs from this and other stacks: an opaque id keeps any surrounding ARN valid.
    return "stand-in-0123456789"


def _definition(env) -> dict[str, Any]:
    (machine,) = env.resources("Migration", "AWS::StepFunctions::StateMachine").values()
    definition = machine["Properties"]["DefinitionString"]
    if isinstance(definition, dict):
        separator, parts = definition["Fn::Join"]
        definition = separator.join(part if isinstance(part, str) else _stand_in(part, env) for part in parts)
    result: dict[str, Any] = json.loads(definition)
    return result


def test_runbook_definition_is_valid_states_language(env, tmp_path):
    definition = _definition(env)
    assert definition["QueryLanguage"] == "JSONata"
    path = tmp_path / "runbook.asl.json"
    path.write_text(json.dumps(definition))
    result = subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_definition(environments, tmp_path):
    """A control: a transition to a state that does not exist must fail validation."""
    definition = _definition(environments["staging"])
    first = definition["StartAt"]
    definition["States"][first]["Next"] = "NoSuchState"
    definition["States"][first].pop("End", None)
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(definition))
    result = subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
