"""The operator CLI finds the pre-migration snapshot in a long execution history."""

from __future__ import annotations


def test_the_snapshot_is_found_however_long_the_history_is():
    """A long snapshot wait pushes CreateSnapshot far past the newest 100 events (one API page)."""
    import json as _json

    from ops.cli import _snapshot_from_history

    events = [{"id": 1, "type": "ExecutionStarted"}]
    events.append(
        {
            "id": 2,
            "type": "TaskScheduled",
            "taskScheduledEventDetails": {
                "resource": "createDBSnapshot",
                "parameters": _json.dumps({"DbSnapshotIdentifier": "pre-migration-2026-11-26-0600"}),
            },
        }
    )
    events += [{"id": n, "type": "WaitStateEntered"} for n in range(3, 400)]

    class Paginator:
        def paginate(self, **_):
            return ({"events": events[i : i + 100]} for i in range(0, len(events), 100))

    class StepFunctions:
        def get_paginator(self, name):
            assert name == "get_execution_history"
            return Paginator()

    assert _snapshot_from_history(StepFunctions(), "arn:execution") == "pre-migration-2026-11-26-0600"
