"""`make rehearse` as the integration test: the synthesized Lambda assets against a real TLS PostgreSQL and
moto's server, on the session's cloud assembly (no extra synth)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from io import StringIO
from urllib.parse import quote

import pytest

from tests.support.postgres import require_binaries
from tools import task_image
from tools.rehearse import locate_assets, main

pytestmark = pytest.mark.postgres

EXPECTED_STEPS = (
    "PostgreSQL",
    "moto server",
    "master and application secrets",
    "bootstrap function (Create)",
    "upgrade head",
    "rotation (4 steps)",
    "validate",
    "downgrade -1",
    "no secret value",
    "teardown",
)
# Steps of the rehearsal in the task image (tools/task_image.py): in CI always (REQUIRE_CONTAINERS=1).
CONTAINER_STEPS = (
    "task image: base from Debian packages",
    "task image: stand-in backend",
    "task image: the synthesized asset's Dockerfile",
    "task container: user, read-only root filesystem",
)


def _containers_expected():
    return task_image.containers_required() or task_image.tools_problem() is None


@contextlib.contextmanager
def _captured_file_descriptors():
    """Everything written to fds 1 and 2 (this process and its children) while the block runs."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        sys.stdout.flush()
        sys.stderr.flush()
        captured = {"text": ""}
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured["text"] = sink.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def rehearsal(synthesized_app):
    require_binaries()
    out = StringIO()
    with _captured_file_descriptors() as descriptors:
        status = main(["--assembly", str(synthesized_app.directory)], out=out)
    return status, out.getvalue(), descriptors["text"]


def _secret_values():
    """Every password moto held during the rehearsal (the in-process server keeps its backend)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.secretsmanager.models import secretsmanager_backends

    values = set()
    for secret in secretsmanager_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].secrets.values():
        for version in secret.versions.values():
            document = json.loads(version.get("secret_string") or "{}")
            values.add(document.get("password"))
            for user in ("migration", "app_user"):
                values.add(document.get(user, {}).get("password"))
    return {value for value in values if value} | {quote(v, safe="") for v in values if v}


def _rows(output):
    return {
        name: line
        for line in output.splitlines()
        for name in (*EXPECTED_STEPS, *CONTAINER_STEPS)
        if name in line and re.search(r"\s(PASS|FAIL)\s", line)
    }


def test_it_runs_the_synthesized_assets(synthesized_app):
    assets, properties = locate_assets(synthesized_app.directory, "Staging")
    for asset in assets.values():
        assert asset.directory.parent == synthesized_app.directory
        assert (asset.directory / "lambdas" / asset.handler.split(".")[1] / "handler.py").is_file()
        assert (asset.directory / "pg8000").is_dir()
    assert properties["Schemas"] == ["public"]


def test_every_step_passes(rehearsal):
    status, output, _ = rehearsal
    rows = _rows(output)
    expected = {*EXPECTED_STEPS, *(CONTAINER_STEPS if _containers_expected() else ())}
    assert set(rows) == expected, output
    failed = {name: row for name, row in rows.items() if " PASS " not in row}
    assert not failed, output
    assert status == 0, output
    assert "all steps passed" in output
    assert "using the synthesized bootstrap function" in output
    assert "encounters=3, finalized_notes=2, recent_suggestions=2" in rows["validate"]
    assert "revision 0002" in rows["validate"]  # `alembic current` in the image, for the evidence record
    assert "0002 -> 0001" in rows["downgrade -1"]


def test_no_login_fails_during_the_rotation(rehearsal):
    _, output, _ = rehearsal
    row = _rows(output)["rotation (4 steps)"]
    match = re.search(r"(\d+) logins ok \((\d+) between setSecret and finishSecret\), (\d+) failed", row)
    assert match, row
    ok, in_window, failed = map(int, match.groups())
    assert failed == 0
    assert ok > 0 and in_window > 0  # the window where only AWSPENDING works was exercised


def test_no_secret_in_the_output(rehearsal):
    _, output, file_descriptor_output = rehearsal
    secrets = _secret_values()
    assert len(secrets) >= 4  # bootstrap's and rotation's passwords of both users, and the master's
    for text in (output, file_descriptor_output):
        for value in secrets:
            assert value not in text
    assert '"password"' not in output


def test_the_migration_steps_ran_in_the_task_image(rehearsal):
    """Upgrade, validate and downgrade ran in the image built from the synthesized asset, as the task."""
    if not _containers_expected():
        pytest.skip(
            f"container tools unusable here ({task_image.tools_problem()}); CI sets REQUIRE_CONTAINERS=1"
        )
    _, output, _ = rehearsal
    rows = _rows(output)
    for step in ("upgrade head", "validate", "downgrade -1"):
        assert "migration task in its image" in rows[step], output
    assert "using the synthesized image asset: " in output
    probe = rows["task container: user, read-only root filesystem"]
    assert "uid 10001:10001, root filesystem read-only, /tmp writable" in probe
    assert "build args BACKEND_IMAGE" in rows["task image: the synthesized asset's Dockerfile"]
