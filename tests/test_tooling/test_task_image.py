"""tools/task_image.py: what the rehearsal reads from the synthesized task definition and how it runs it.

The builds and runs themselves are exercised by tests/test_rehearsal (the whole rehearsal in the image).
"""

from __future__ import annotations

import json
import re
import shutil
from io import StringIO
from pathlib import Path

import pytest

from tools import task_image
from tools.rehearse import Rehearsal, RehearsalError

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def task(synthesized_app):
    return task_image.locate_task(synthesized_app.directory, "Staging")


def _container_definition(synthesized_app):
    template = synthesized_app.template_json("Staging", "Migration")
    (definition,) = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"
    ]
    return definition["ContainerDefinitions"][0]


def test_the_task_container_comes_from_the_synthesized_task_definition(synthesized_app, task):
    container = _container_definition(synthesized_app)
    assert task.user == container["User"] == "10001:10001"
    assert task.read_only_root is container["ReadonlyRootFilesystem"] is True
    assert task.volumes == {m["ContainerPath"]: m["ReadOnly"] for m in container["MountPoints"]}
    assert task.volumes == {"/tmp": False}
    assert task.memory_mib == container["Memory"]
    assert list(task.base_arguments) == [
        task_image.SECRET_ID_PLACEHOLDER if not isinstance(a, str) else a for a in container["Command"][:-1]
    ]
    assert task.arguments("arn:secret", "upgrade", "head")[:2] == ["--secret-id", "arn:secret"]
    assert task.arguments("arn:secret", "upgrade", "head")[-2:] == ["upgrade", "head"]


def test_the_image_is_the_synthesized_asset_with_its_build_arguments(synthesized_app, task):
    asset = task.image
    assert asset.directory.parent == synthesized_app.directory.resolve()
    assert asset.directory.name == f"asset.{asset.asset_id}"
    assert (asset.directory / asset.dockerfile).read_text() == (
        REPO_ROOT / "migration" / "Dockerfile"
    ).read_text()
    assert (asset.directory / "certs" / "rds-ca-bundle.pem").is_file()
    assert set(asset.build_args) == {task_image.BACKEND_IMAGE_ARG}
    assert asset.platform == "linux/amd64"
    assert task_image.stale_asset_files(asset) == []


def test_a_changed_runner_makes_the_asset_stale(tmp_path, task):
    copy = tmp_path / "asset"
    shutil.copytree(task.image.directory, copy)
    (copy / "runner" / "cli.py").write_text("# older\n")
    stale = task_image.stale_asset_files(task_image.ImageAsset("x", copy, "Dockerfile", {}))
    assert stale == ["runner/cli.py"]


def _image(volumes=()):
    return task_image.ImageConfig(
        environment={"PGSSLROOTCERT": "/etc/ca.pem"}, volumes=frozenset(volumes), user="10001"
    )


def test_the_container_runs_as_the_task_definition_says(task, tmp_path):
    argv = task_image.run_argv(
        task, "localhost/x:1", _image(),
        arguments=task.arguments("arn:s", "validate"), forward=["AWS_SECRET_ACCESS_KEY"],
        volume_dirs={"/tmp": tmp_path}, files={"/etc/ca.pem": tmp_path / "ca.pem"},
    )  # fmt: skip
    text = " ".join(argv)
    assert argv[:2] == ["podman", "run"]
    assert "--user 10001:10001" in text
    assert "--read-only --read-only-tmpfs=false" in text  # only the task's volumes are writable
    assert f"--volume {tmp_path}:/tmp:rw" in text  # no VOLUME in the image: Fargate's empty root-owned dir
    assert f"--volume {tmp_path / 'ca.pem'}:/etc/ca.pem:ro" in text
    assert "--runtime runc" in text and "--network host" in text
    assert "--env AWS_SECRET_ACCESS_KEY" in text and "=" not in argv[argv.index("--env") + 1]
    arguments = task.arguments("arn:s", "validate")
    assert argv[-len(arguments) - 1 :] == ["localhost/x:1", *arguments]


def test_a_volume_the_image_declares_is_copied_from_the_image(task):
    argv = task_image.run_argv(
        task, "localhost/x:1", _image(volumes={"/tmp"}), arguments=[], forward=[], volume_dirs={}
    )
    # An anonymous volume: podman copies the image's /tmp (content, owner, mode) into it, as Fargate does.
    assert argv[argv.index("localhost/x:1") - 2 : argv.index("localhost/x:1")] == ["--volume", "/tmp"]


def test_the_dockerfile_declares_the_tmp_volume_of_the_task_definition(task):
    """Fargate mounts a bind-mount volume root-owned 0755 unless the image declares the path a VOLUME."""
    dockerfile = (REPO_ROOT / "migration" / "Dockerfile").read_text()
    declared = set()
    for match in re.finditer(r"^VOLUME\s+(\[.*\])\s*$", dockerfile, re.MULTILINE):
        declared |= set(json.loads(match.group(1)))
    assert {path for path, read_only in task.volumes.items() if not read_only} <= declared


def test_ci_installs_the_container_tools():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    match = re.search(r'^CONTAINER_PACKAGES="([^"]+)"', script, re.MULTILINE)
    assert match, "the CI script names no CONTAINER_PACKAGES"
    assert match.group(1).split() == list(task_image.APT_PACKAGES)
    assert "export REQUIRE_CONTAINERS=1" in script


def test_missing_tools_fail_the_rehearsal_when_containers_are_required(monkeypatch, synthesized_app):
    monkeypatch.setattr(task_image.shutil, "which", lambda tool: None)
    monkeypatch.setenv(task_image.REQUIRE_ENV_VAR, "1")
    out = StringIO()
    rehearsal = Rehearsal(assembly=synthesized_app.directory, stage="Staging", moto_port=0, out=out)
    with pytest.raises(
        RehearsalError, match=r"cannot be built or run here.*REQUIRE_CONTAINERS=1.*apt-get install"
    ):
        rehearsal._task_container()


def test_missing_tools_are_announced_when_falling_back_to_the_host(monkeypatch, synthesized_app):
    monkeypatch.setattr(task_image.shutil, "which", lambda tool: None)
    monkeypatch.delenv(task_image.REQUIRE_ENV_VAR, raising=False)
    out = StringIO()
    rehearsal = Rehearsal(assembly=synthesized_app.directory, stage="Staging", moto_port=0, out=out)
    assert rehearsal._task_container() is None
    assert (
        "WARNING: the migration steps run on this host's Python instead, NOT in the task image"
        in out.getvalue()
    )
    explicit = Rehearsal(
        assembly=synthesized_app.directory, stage="Staging", moto_port=0, out=out, runner="container"
    )
    with pytest.raises(RehearsalError, match="--runner container"):
        explicit._task_container()
