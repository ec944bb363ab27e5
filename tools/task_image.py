"""The migration task's image, built and run locally without a Docker engine (used by `make rehearse`).

Three images, each kept in the local container storage under a tag derived from its inputs (so an
unchanged input is never rebuilt; `podman rmi` a tag to force it):

1. **base**: a Debian root filesystem made by `mmdebstrap` from Debian's packages (Python 3, pip,
   CA certificates) and imported with `podman import` (there is no registry for base images here);
2. **backend**: `rehearsal/backend_image/Dockerfile` on the base, standing in for the backend image:
   Alembic, SQLAlchemy, psycopg2 and the rehearsal's Alembic project at `backend/alembic/`;
3. **migration**: the project's Dockerfile from the *synthesized* asset directory
   (`cdk.out/asset.<hash>`, found through the task definition's image and the stack's asset
   manifest) with the asset's build arguments, `BACKEND_IMAGE` pointed at the stand-in.

Containers run the way the synthesized task definition's container does: its user, read-only root
filesystem, volumes (with Fargate's semantics: a bind-mount volume is a root-owned 0755 directory,
unless the image declares the path a `VOLUME`, whose directory, owner and mode are then copied),
memory and command arguments; on the host network, where the rehearsal's PostgreSQL and moto listen.

Tools: buildah, podman, runc and mmdebstrap, Debian packages that `.ci/run` installs (APT_PACKAGES).
`REQUIRE_CONTAINERS=1` (set by `.ci/run`) turns their absence into an error instead of a fallback.
Pitfalls of this host (shared/notes/local-emulation.md): crun refuses the cgroup setup (runc is
used), and without CAP_SYS_RESOURCE the container's rlimits must be given explicitly (RUN_ULIMITS).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKEND_CONTEXT = REPO_ROOT / "rehearsal" / "backend_image"
ALEMBIC_PROJECT = REPO_ROOT / "rehearsal" / "alembic_project"

APT_PACKAGES = ("buildah", "podman", "runc", "mmdebstrap", "uidmap")
TOOLS = ("buildah", "podman", "runc", "mmdebstrap")
INSTALL_HINT = f"apt-get install -y {' '.join(APT_PACKAGES)}"
REQUIRE_ENV_VAR = "REQUIRE_CONTAINERS"

BASE_SUITE = "bookworm"
BASE_VARIANT = "essential"
BASE_PACKAGES = ("python3", "python3-pip", "python-is-python3", "ca-certificates")
IMAGE_PREFIX = "localhost/revenuepilot-rehearsal"
BACKEND_IMAGE_ARG = "BACKEND_IMAGE"
# The host's CA bundle, mounted into builds: package downloads go through a TLS-intercepting proxy here.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUNTIME = "runc"
RUN_ULIMITS = ("nofile=1024:1024", "nproc=4096:4096")
BUILD_TIMEOUT_SECONDS = 900
# Serialises image builds of concurrent rehearsals on this machine (they share the container storage).
LOCK_FILE = Path(tempfile.gettempdir()) / "revenuepilot-rehearsal-images.lock"
# Stands in for the deploy-time secret ARN in the task definition's command.
SECRET_ID_PLACEHOLDER = "<secret-id>"  # noqa: S105 - a placeholder, not a secret


class TaskImageError(RuntimeError):
    """The assembly has no usable task definition or image asset, or a tool is missing or broken."""


class CommandRunner(Protocol):
    """Runs a command (its output kept by the caller for the secrecy check); raises if it fails."""

    def __call__(self, source: str, argv: list[str], env: dict[str, str], timeout: float) -> str: ...


# -- the tools -----------------------------------------------------------------------------------------
def containers_required(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get(REQUIRE_ENV_VAR, "") not in ("", "0")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def tools_problem() -> str | None:
    """None when the tools are installed and podman answers; otherwise what is wrong and what to do."""
    missing = missing_tools()
    if missing:
        return f"{', '.join(missing)} not found: run `{INSTALL_HINT}`"
    try:
        probe = subprocess.run(
            ["podman", "info", "--format", "{{.Store.GraphDriverName}}"],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"podman does not answer: {error}"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return f"podman does not work here: {last}"
    return None


# -- the synthesized task definition and image asset ------------------------------------------------------
@dataclass(frozen=True)
class ImageAsset:
    asset_id: str
    directory: Path
    dockerfile: str
    build_args: dict[str, str]
    platform: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class TaskContainer:
    """What the rehearsal reproduces of the task definition's (single) container."""

    name: str
    image: ImageAsset
    user: str | None
    read_only_root: bool
    # container path -> read-only?; every volume is an ephemeral bind mount (no host path, no EFS).
    volumes: dict[str, bool]
    # the command without its final action, the secret ARN replaced by SECRET_ID_PLACEHOLDER
    base_arguments: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    memory_mib: int | None = None

    def arguments(self, secret_id: str, *action: str) -> list[str]:
        return [secret_id if a == SECRET_ID_PLACEHOLDER else a for a in self.base_arguments] + list(action)


def _stack(assembly: Path, stage: str, stack: str) -> tuple[Path, dict[str, Any]]:
    stage_dir = assembly / f"assembly-{stage}"
    manifest_file = stage_dir / "manifest.json"
    if not manifest_file.is_file():
        raise TaskImageError(f"{manifest_file} not found: synthesize first (`make synth`)")
    manifest = json.loads(manifest_file.read_text())
    for artifact in manifest["artifacts"].values():
        if artifact.get("displayName") == f"{stage}/{stack}" and artifact.get("type") == (
            "aws:cloudformation:stack"
        ):
            template = json.loads((stage_dir / artifact["properties"]["templateFile"]).read_text())
            return stage_dir, template
    raise TaskImageError(f"no {stage}/{stack} stack in {stage_dir}")


def _image_asset(stage_dir: Path, asset_id: str) -> ImageAsset:
    for assets_file in sorted(stage_dir.glob("*.assets.json")):
        images = json.loads(assets_file.read_text()).get("dockerImages", {})
        if asset_id in images:
            source = images[asset_id]["source"]
            if "directory" not in source:
                raise TaskImageError(f"image asset {asset_id} is not built from a directory")
            directory = (stage_dir / source["directory"]).resolve()
            if not directory.is_dir():
                raise TaskImageError(f"image asset directory {directory} is missing: run `make synth`")
            return ImageAsset(
                asset_id=asset_id,
                directory=directory,
                dockerfile=source.get("dockerFile", "Dockerfile"),
                build_args={str(k): str(v) for k, v in source.get("dockerBuildArgs", {}).items()},
                platform=source.get("platform"),
                target=source.get("dockerBuildTarget"),
            )
    raise TaskImageError(f"no Docker image asset {asset_id} in {stage_dir}/*.assets.json")


def _image_tag(image: Any) -> str:
    reference = image.get("Fn::Sub") if isinstance(image, dict) else image
    if isinstance(reference, list):
        reference = reference[0]
    if not isinstance(reference, str) or ":" not in reference:
        raise TaskImageError(f"the container image {image!r} is not a CDK image asset")
    return reference.rsplit(":", 1)[1]


def _base_arguments(command: Sequence[Any]) -> tuple[str, ...]:
    if not command:
        raise TaskImageError("the task definition's container has no command")
    arguments: list[str] = []
    for index, item in enumerate(command[:-1]):  # the last one is the action the runbook overrides
        if isinstance(item, str):
            arguments.append(item)
        elif index > 0 and command[index - 1] == "--secret-id":
            arguments.append(SECRET_ID_PLACEHOLDER)
        else:
            raise TaskImageError(f"command argument {index} is a deploy-time value other than --secret-id")
    if SECRET_ID_PLACEHOLDER not in arguments:
        raise TaskImageError("the task definition's command passes no --secret-id")
    return tuple(arguments)


def locate_task(assembly: Path, stage: str, stack: str = "Migration") -> TaskContainer:
    """The migration task definition's container and its image asset, from the synthesized templates."""
    stage_dir, template = _stack(assembly, stage, stack)
    definitions = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
    ]
    if len(definitions) != 1:
        raise TaskImageError(f"expected one task definition in {stage}/{stack}, found {len(definitions)}")
    definition = definitions[0]
    containers = definition.get("ContainerDefinitions", [])
    if len(containers) != 1:
        raise TaskImageError(f"expected one container in the task definition, found {len(containers)}")
    container = containers[0]
    volumes = {volume["Name"]: volume for volume in definition.get("Volumes", [])}
    mounts: dict[str, bool] = {}
    for mount in container.get("MountPoints", []):
        volume = volumes.get(mount["SourceVolume"])
        if volume is None or set(volume) - {"Name"}:
            raise TaskImageError(
                f"volume {mount['SourceVolume']!r} is not an ephemeral bind mount: not emulated here"
            )
        mounts[mount["ContainerPath"]] = bool(mount.get("ReadOnly", False))
    environment: dict[str, str] = {}
    for variable in container.get("Environment", []):
        if not isinstance(variable.get("Value"), str):
            raise TaskImageError(f"environment variable {variable.get('Name')} is a deploy-time value")
        environment[variable["Name"]] = variable["Value"]
    memory = container.get("Memory") or definition.get("Memory")
    return TaskContainer(
        name=container.get("Name", "container"),
        image=_image_asset(stage_dir, _image_tag(container["Image"])),
        user=container.get("User"),
        read_only_root=bool(container.get("ReadonlyRootFilesystem", False)),
        volumes=mounts,
        base_arguments=_base_arguments(container.get("Command", [])),
        environment=environment,
        memory_mib=int(memory) if memory else None,
    )


def stale_asset_files(asset: ImageAsset) -> list[str]:
    """Files of the asset that differ from the working tree (`migration/`, `contract/`), or are missing."""
    differing: list[str] = []
    for bundled in sorted(p for p in asset.directory.rglob("*") if p.is_file()):
        relative = bundled.relative_to(asset.directory)
        if relative.parts[0] == "certs" or "__pycache__" in relative.parts:
            continue  # written at synth (the region's CA bundle)
        sources = [REPO_ROOT / "migration" / relative, REPO_ROOT / relative]
        source = next((s for s in sources if s.is_file()), None)
        if source is None or source.read_bytes() != bundled.read_bytes():
            differing.append(str(relative))
    for root, prefix in ((REPO_ROOT / "migration", ""), (REPO_ROOT / "contract", "contract/")):
        for source in sorted(root.rglob("*.py")):
            relative = Path(prefix + str(source.relative_to(root)))
            if "__pycache__" not in relative.parts and not (asset.directory / relative).is_file():
                differing.append(str(relative))
    return differing


# -- building ----------------------------------------------------------------------------------------------
def image_exists(tag: str) -> bool:
    result = subprocess.run(
        ["podman", "image", "exists", tag], capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    return result.returncode == 0


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tree_digest(digest: Any, root: Path, prefix: str) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"{prefix}/{path.relative_to(root)}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")


def base_image_tag() -> str:
    version = subprocess.run(
        ["mmdebstrap", "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    ).stdout.strip()
    inputs = json.dumps([BASE_SUITE, BASE_VARIANT, sorted(BASE_PACKAGES), version])
    return f"{IMAGE_PREFIX}/base:{BASE_SUITE}-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}"


def backend_image_tag(base_tag: str) -> str:
    digest = hashlib.sha256(base_tag.encode())
    _tree_digest(digest, BACKEND_CONTEXT, "context")
    _tree_digest(digest, ALEMBIC_PROJECT, "alembic_project")
    return f"{IMAGE_PREFIX}/backend:{digest.hexdigest()[:16]}"


def migration_image_tag(asset: ImageAsset, backend_tag: str) -> str:
    digest = hashlib.sha256(json.dumps([asset.asset_id, backend_tag, asset.build_args]).encode())
    return f"{IMAGE_PREFIX}/migration:{asset.asset_id[:16]}-{digest.hexdigest()[:8]}"


def _build_volumes() -> list[str]:
    if not HOST_CA_BUNDLE.is_file():
        return []
    return ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]


def bud_argv(
    context: Path, dockerfile: Path, tag: str, build_args: Mapping[str, str], **options: Any
) -> list[str]:
    """`buildah bud` of a Dockerfile on local images only (chroot isolation: no daemon, no namespaces)."""
    argv = ["buildah", "bud", "--isolation", "chroot", "--pull=never", "--quiet"]
    if options.get("platform"):
        argv += ["--platform", str(options["platform"])]
    if options.get("target"):
        argv += ["--target", str(options["target"])]
    for name, value in sorted(build_args.items()):
        argv += ["--build-arg", f"{name}={value}"]
    return [*argv, *_build_volumes(), "--file", str(dockerfile), "--tag", tag, str(context)]


@dataclass
class BuiltImage:
    tag: str
    built: bool  # False: the cached image was used


def tool_environment() -> dict[str, str]:
    """The environment of buildah, podman and mmdebstrap: the host's (their storage, PATH, proxies)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}


def ensure_base_image(run: CommandRunner, workdir: Path) -> BuiltImage:
    tag = base_image_tag()
    with build_lock():
        if image_exists(tag):
            return BuiltImage(tag, built=False)
        rootfs = workdir / "base-rootfs.tar"
        try:
            run(
                "mmdebstrap (base image)",
                [
                    "mmdebstrap", "--quiet", f"--variant={BASE_VARIANT}",
                    f"--include={','.join(BASE_PACKAGES)}", BASE_SUITE, str(rootfs),
                ],
                tool_environment(),
                BUILD_TIMEOUT_SECONDS,
            )  # fmt: skip
            run(
                "podman import (base image)",
                ["podman", "import", "--quiet", "--change", 'CMD ["python3"]', str(rootfs), tag],
                tool_environment(),
                BUILD_TIMEOUT_SECONDS,
            )
        finally:
            rootfs.unlink(missing_ok=True)
    return BuiltImage(tag, built=True)


def ensure_backend_image(run: CommandRunner, workdir: Path, base_tag: str) -> BuiltImage:
    tag = backend_image_tag(base_tag)
    with build_lock():
        if image_exists(tag):
            return BuiltImage(tag, built=False)
        context = workdir / "backend-context"
        shutil.rmtree(context, ignore_errors=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(BACKEND_CONTEXT, context, ignore=ignore)
        shutil.copytree(ALEMBIC_PROJECT, context / "alembic_project", ignore=ignore)
        try:
            run(
                "buildah bud (stand-in backend image)",
                bud_argv(context, context / "Dockerfile", tag, {"BASE_IMAGE": base_tag}),
                tool_environment(),
                BUILD_TIMEOUT_SECONDS,
            )
        finally:
            shutil.rmtree(context, ignore_errors=True)
    return BuiltImage(tag, built=True)


def ensure_migration_image(run: CommandRunner, asset: ImageAsset, backend_tag: str) -> BuiltImage:
    """The synthesized asset's Dockerfile with its build arguments, FROM the stand-in backend image."""
    if BACKEND_IMAGE_ARG not in asset.build_args:
        raise TaskImageError(f"the image asset has no {BACKEND_IMAGE_ARG} build argument")
    build_args = {**asset.build_args, BACKEND_IMAGE_ARG: backend_tag}
    tag = migration_image_tag(asset, backend_tag)
    with build_lock():
        if image_exists(tag):
            return BuiltImage(tag, built=False)
        run(
            f"buildah bud (migration image from asset.{asset.asset_id[:12]})",
            bud_argv(
                asset.directory,
                asset.directory / asset.dockerfile,
                tag,
                build_args,
                platform=asset.platform,
                target=asset.target,
            ),
            tool_environment(),
            BUILD_TIMEOUT_SECONDS,
        )
    return BuiltImage(tag, built=True)


# -- running -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageConfig:
    environment: dict[str, str]
    volumes: frozenset[str]
    user: str


def inspect_image(tag: str) -> ImageConfig:
    result = subprocess.run(
        ["podman", "image", "inspect", tag], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, check=False, env=tool_environment(),
    )  # fmt: skip
    if result.returncode != 0:
        raise TaskImageError(f"podman image inspect {tag} failed: {result.stderr.strip()[-300:]}")
    config = json.loads(result.stdout)[0].get("Config", {})
    environment = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    return ImageConfig(
        environment=environment,
        volumes=frozenset(config.get("Volumes") or {}),
        user=config.get("User") or "",
    )


def run_argv(
    task: TaskContainer,
    tag: str,
    image: ImageConfig,
    *,
    arguments: Sequence[str],
    forward: Sequence[str],
    volume_dirs: Mapping[str, Path],
    files: Mapping[str, Path] | None = None,
    entrypoint: Sequence[str] = (),
) -> list[str]:
    """`podman run` as ECS would run the task definition's container.

    `forward`: variables passed from podman's own environment by name (values stay out of argv);
    `volume_dirs`: a fresh host directory per volume path the image does not declare a VOLUME
    (see `volume_directory`); `files`: container path -> host file, mounted read-only (the CA).
    """
    argv = [
        "podman", "run", "--rm", "--runtime", RUNTIME, "--network", "host", "--pull", "never",
        "--stop-timeout", "5",
    ]  # fmt: skip
    for limit in RUN_ULIMITS:
        argv += ["--ulimit", limit]
    if task.user:
        argv += ["--user", task.user]
    if task.read_only_root:
        # Only the task definition's volumes are writable (podman would add tmpfs on /tmp, /run...).
        argv += ["--read-only", "--read-only-tmpfs=false"]
    if task.memory_mib:
        argv += ["--memory", f"{task.memory_mib}m"]
    for path, read_only in sorted(task.volumes.items()):
        suffix = ":ro" if read_only else ""
        if path in image.volumes:
            # Fargate copies the image's directory (content, owner, mode) into the volume; so does an
            # anonymous podman volume (removed with the container).
            argv += ["--volume", f"{path}{suffix}"]
        else:
            argv += ["--volume", f"{volume_dirs[path]}:{path}{':ro' if read_only else ':rw'}"]
    for path, host_file in sorted((files or {}).items()):
        argv += ["--volume", f"{host_file}:{path}:ro"]
    for name in sorted({*forward, *task.environment}):
        argv += ["--env", name]
    if entrypoint:
        argv += ["--entrypoint", json.dumps(list(entrypoint))]
    return [*argv, tag, *arguments]


def volume_directory(parent: Path, path: str) -> Path:
    """An empty volume as Fargate makes one for a path the image does not declare: root-owned, 0755."""
    directory = Path(tempfile.mkdtemp(prefix="volume-", dir=parent))
    directory.chmod(0o755)
    return directory
