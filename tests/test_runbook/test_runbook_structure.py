"""The runbook's graph: no path reaches a migration task without the snapshot-available branch.

A walk over the synthesized definition (States, Next, Default, Choices, Catch) from StartAt that
may not take the Choice rule testing `$snapshotStatus = "available"`: if it still reaches a state
running `alembic upgrade|downgrade`, some path migrates without a finished snapshot. The test
proves it can fail on a definition where the snapshot check was moved after the migration.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from config.environments import ENVIRONMENTS
from tests.support.synth import SynthesizedApp

_SNAPSHOT_AVAILABLE = re.compile(r"""\$snapshotStatus\s*=\s*["']available["']""")


def _definition(synthesized_app: SynthesizedApp, stage_id: str) -> dict[str, Any]:
    template = synthesized_app.template_json(stage_id, "Migration")
    machine = next(
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    )
    parts = machine["DefinitionString"]["Fn::Join"][1]
    # Intrinsics only ever fill string values (ARNs, ids); a placeholder keeps the JSON whole.
    return dict(json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts)))


def _is_migration_task(state: dict[str, Any]) -> bool:
    if state.get("Type") != "Task" or "ecs:runTask" not in state.get("Resource", ""):
        return False
    commands = [o.get("Command", []) for o in state["Arguments"]["Overrides"]["ContainerOverrides"]]
    return any(word in command for command in commands for word in ("upgrade", "downgrade"))


def _edges(state: dict[str, Any]) -> list[tuple[str, bool]]:
    """(target, is the snapshot-available branch) for every transition out of a state."""
    edges = [(state[key], False) for key in ("Next", "Default") if key in state]
    edges += [
        (rule["Next"], bool(_SNAPSHOT_AVAILABLE.search(rule.get("Condition", ""))))
        for rule in state.get("Choices", [])
    ]
    edges += [(catcher["Next"], False) for catcher in state.get("Catch", [])]
    return edges


def reachable(
    definition: dict[str, Any], *, through_snapshot_gate: bool = True, avoiding: str = ""
) -> set[str]:
    states = definition["States"]
    seen, todo = {definition["StartAt"]}, [definition["StartAt"]]
    while todo:
        for target, is_gate in _edges(states[todo.pop()]):
            if (is_gate and not through_snapshot_gate) or target in seen or target == avoiding:
                continue
            seen.add(target)
            todo.append(target)
    return seen


def migration_tasks_reachable(definition: dict[str, Any], *, through_snapshot_gate: bool) -> set[str]:
    states = definition["States"]
    return {
        name
        for name in reachable(definition, through_snapshot_gate=through_snapshot_gate)
        if _is_migration_task(states[name])
    }


def unguarded_migration_tasks(definition: dict[str, Any]) -> set[str]:
    return migration_tasks_reachable(definition, through_snapshot_gate=False)


@pytest.mark.parametrize("stage_id", [c.stage_id for c in ENVIRONMENTS])
def test_every_migration_task_is_behind_the_snapshot_available_branch(
    synthesized_app: SynthesizedApp, stage_id: str
) -> None:
    definition = _definition(synthesized_app, stage_id)
    assert migration_tasks_reachable(definition, through_snapshot_gate=True) == {"RunUpgrade", "RunDowngrade"}
    assert unguarded_migration_tasks(definition) == set()


def test_the_walk_fails_when_the_snapshot_check_is_moved_after_the_migration(
    synthesized_app: SynthesizedApp,
) -> None:
    mutant = copy.deepcopy(_definition(synthesized_app, ENVIRONMENTS[0].stage_id))
    states = mutant["States"]
    gate = next(
        name
        for name, s in states.items()
        if any(_SNAPSHOT_AVAILABLE.search(r.get("Condition", "")) for r in s.get("Choices", []))
    )
    after_gate = next(
        r["Next"] for r in states[gate]["Choices"] if _SNAPSHOT_AVAILABLE.search(r["Condition"])
    )
    exit_check = states["RunUpgrade"]["Next"]
    after_migration = next(r["Next"] for r in states[exit_check]["Choices"])
    # Snapshot started, then straight to the migration; the wait/describe/check loop only afterwards.
    states["TagSnapshot"]["Next"] = after_gate
    states[exit_check]["Choices"][0]["Next"] = "WaitForSnapshot"
    for rule in states[gate]["Choices"]:
        if _SNAPSHOT_AVAILABLE.search(rule["Condition"]):
            rule["Next"] = after_migration

    assert unguarded_migration_tasks(mutant) == {"RunUpgrade", "RunDowngrade"}


@pytest.mark.parametrize("stage_id", [c.stage_id for c in ENVIRONMENTS])
def test_nothing_changes_before_the_one_execution_at_a_time_check(
    synthesized_app: SynthesizedApp, stage_id: str
) -> None:
    definition = _definition(synthesized_app, stage_id)
    guard = next(
        n
        for n, s in definition["States"].items()
        if s.get("Resource", "").endswith("aws-sdk:sfn:listExecutions")
    )
    # Not changes: notifications, the evidence record (append-only, written on every path), reads.
    records = ("sns:publish", "aws-sdk:s3:putObject", "aws-sdk:ssm:getParameter")
    changes = {
        n
        for n, s in definition["States"].items()
        if s.get("Type") == "Task" and not s["Resource"].endswith(records)
    } - {guard, "ClearMaintenanceAfterFailure"}
    assert {"CreateSnapshot", "SetMaintenanceMode"} <= changes
    before_guard = reachable(definition, avoiding=guard)
    assert before_guard & changes == set()
    # The failure path's clear is reachable from anywhere, but taken only once maintenance is on, which
    # only SetMaintenanceMode assigns (after the guard).
    # (MaintenanceAlreadyOn notes an operator's flag as on but not owned: nothing clears it.)
    setting_on = {n for n, s in definition["States"].items() if '"owned": true' in str(s.get("Assign", {}))}
    assert setting_on == {"SetMaintenanceMode"}
    assert "SetMaintenanceMode" not in before_guard


@pytest.mark.parametrize("stage_id", [c.stage_id for c in ENVIRONMENTS])
def test_a_migration_task_is_never_retried(synthesized_app: SynthesizedApp, stage_id: str) -> None:
    """A retried `.sync` RunTask after an error that followed the task's start would run a second Alembic."""
    states = _definition(synthesized_app, stage_id)["States"]
    migration_tasks = {name: s for name, s in states.items() if _is_migration_task(s)}
    assert set(migration_tasks) == {"RunUpgrade", "RunDowngrade"}
    for state in migration_tasks.values():
        assert "Retry" not in state
        assert [c["ErrorEquals"] for c in state["Catch"]] == [["States.ALL"]]
