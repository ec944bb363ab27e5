"""`make rehearse`: the deployment and migration runbook, locally, with the real parts and no AWS account.

What runs is the synthesized code: the bootstrap and rotation Lambda handlers are executed from their
asset directories in the cloud assembly (`cdk.out/asset.<hash>`, found through the Data template's
`Code.S3Key`), in child processes with the asset first on `sys.path` (rehearsal/invoke_lambda.py).
Around them: a throwaway PostgreSQL (tests/support/postgres.py: TLS with its own CA, `hostssl` only,
PostgreSQL 17 where available) and moto's server on loopback standing in for Secrets Manager.

The migration steps run in the migration task's image (`--runner container`, tools/task_image.py):
a base image made from Debian's packages, a stand-in backend image with Alembic and the sample project,
and the synthesized image asset's Dockerfile built on it with its build arguments, all without a Docker
engine; each step is a container run with the task definition's user, read-only root filesystem,
volumes and command arguments. `--runner host` runs `python -m migration.runner` on this Python
instead; `auto` (the default) uses the image when buildah, podman, runc and mmdebstrap work here, and
otherwise says so and falls back to the host, unless REQUIRE_CONTAINERS=1 (CI), which makes it fail.

Steps: start both; create the master and application secrets in the seed's shape (the application
secret without passwords, as CloudFormation creates it); bootstrap (Create); `migration.runner upgrade
head` with the sample Alembic project (rehearsal/alembic_project); rotate the application secret
through the rotation function's four steps while a load client logs in as `app_user` with
dbclient.RotationAwareCredentials; `validate`; `downgrade -1`; check that no secret value appears in
anything printed or logged. A summary table follows; everything is torn down (also on Ctrl-C).

    python -m tools.rehearse [--assembly cdk.out] [--stage Staging] [--moto-port 0] [--runner auto]
    python -m tools.rehearse --assembly cdk.out --check-only   # exit 1 if assets are missing or stale

Exit status: 0 all steps passed, 1 a step failed, 2 a prerequisite is missing, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import quote

from tools import task_image

REPO_ROOT = Path(__file__).resolve().parent.parent
INVOKER = REPO_ROOT / "rehearsal" / "invoke_lambda.py"
ALEMBIC_INI = REPO_ROOT / "rehearsal" / "alembic_project" / "alembic.ini"
LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
# The handler each function of the Data template runs; how the rehearsal recognises them.
HANDLERS = {
    "bootstrap": "lambdas.db_bootstrap.handler.on_event",
    "rotation": "lambdas.secret_rotation.handler.lambda_handler",
}
STEP_TIMEOUT_SECONDS = 120
EXCERPT_LINES = 25
EXIT_FAILED, EXIT_PREREQUISITE, EXIT_INTERRUPTED = 1, 2, 130
RUNNERS = ("auto", "container", "host")


class RehearsalError(RuntimeError):
    """A prerequisite is missing or a step failed; the message says which and what to do."""


class StepError(RuntimeError):
    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class FunctionAsset:
    name: str
    handler: str
    directory: Path
    environment: dict[str, Any]


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class LoadStats:
    ok: int = 0
    ok_in_window: int = 0
    failed: int = 0
    first_failure: float | None = None
    last_failure: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def failure_seconds(self) -> float:
        if self.first_failure is None or self.last_failure is None:
            return 0.0
        return self.last_failure - self.first_failure


# -- the cloud assembly ------------------------------------------------------------------------------
def _data_template(assembly: Path, stage: str) -> dict[str, Any]:
    stage_dir = assembly / f"assembly-{stage}"
    manifest_file = stage_dir / "manifest.json"
    if not manifest_file.is_file():
        raise RehearsalError(f"{manifest_file} not found: synthesize first (`make synth`) or pass --assembly")
    manifest = json.loads(manifest_file.read_text())
    for artifact in manifest["artifacts"].values():
        if artifact.get("displayName") == f"{stage}/Data":
            template: dict[str, Any] = json.loads(
                (stage_dir / artifact["properties"]["templateFile"]).read_text()
            )
            return template
    raise RehearsalError(f"no {stage}/Data stack in {stage_dir}")


def locate_assets(assembly: Path, stage: str) -> tuple[dict[str, FunctionAsset], dict[str, Any]]:
    """The bootstrap and rotation function assets, and the bootstrap custom resource's properties."""
    template = _data_template(assembly, stage)
    assets: dict[str, FunctionAsset] = {}
    bootstrap_properties: dict[str, Any] = {}
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "Custom::DatabaseRoles":
            bootstrap_properties = dict(properties)
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        for name, handler in HANDLERS.items():
            if properties.get("Handler") == handler:
                asset_hash = properties["Code"]["S3Key"].removesuffix(".zip")
                directory = assembly / f"asset.{asset_hash}"
                if not directory.is_dir():
                    raise RehearsalError(
                        f"asset {directory} of the {name} function is missing: run `make synth`"
                    )
                variables = properties.get("Environment", {}).get("Variables", {})
                assets[name] = FunctionAsset(name, handler, directory, dict(variables))
    missing = sorted(set(HANDLERS) - set(assets))
    if missing:
        raise RehearsalError(f"no {', '.join(missing)} function in the {stage}/Data template")
    if not bootstrap_properties:
        raise RehearsalError(f"no Custom::DatabaseRoles resource in the {stage}/Data template")
    return assets, bootstrap_properties


def stale_files(asset: FunctionAsset) -> list[str]:
    """Source files of `lambdas/` that differ from (or are missing in) the asset: it was synthesized earlier."""
    package = asset.handler.split(".")[1]
    differing: list[str] = []
    for folder in (REPO_ROOT / "lambdas" / "common", REPO_ROOT / "lambdas" / package):
        for source in sorted(folder.rglob("*.py")):
            relative = source.relative_to(REPO_ROOT)
            bundled = asset.directory / relative
            if not bundled.is_file() or not filecmp.cmp(source, bundled, shallow=False):
                differing.append(str(relative))
    return differing


# -- helpers -----------------------------------------------------------------------------------------
def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def redact(text: str, secrets: Sequence[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text


def _json_object(line: str) -> dict[str, Any]:
    """`line` as a JSON object, or {} if it is not one."""
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _revisions(output: str, action: str) -> str:
    """'0001 -> 0002' from Alembic's `Running upgrade 0001 -> 0002, <message>` lines."""
    marker = f"Running {action} "
    steps = [
        line.split(marker, 1)[1].split(",", 1)[0].strip() for line in output.splitlines() if marker in line
    ]
    steps = [f"base {step}" if step.startswith("->") else step for step in steps]
    return f"{action}: {', '.join(steps) or 'nothing to do'}"


def _passwords_in(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "password" and isinstance(value, str):
                yield value
            else:
                yield from _passwords_in(value)


class Rehearsal:
    """One run. `run()` returns the exit status; everything it started is stopped before it returns."""

    def __init__(
        self, *, assembly: Path, stage: str, moto_port: int, out: TextIO, runner: str = "auto"
    ) -> None:
        self.assembly = assembly
        self.stage = stage
        self.moto_port = moto_port
        self.runner = runner
        self.task: task_image.TaskContainer | None = None  # set when the steps run in the task image
        self.out = out
        self.steps: list[StepResult] = []
        self.captured: list[tuple[str, str]] = []  # (source, text) of every child's output
        self.printed: list[str] = []
        self._extra_secrets: list[str] = []
        self._workdir = Path(tempfile.mkdtemp(prefix="rp-rehearsal-"))
        self._load_phase = "before"

    # -- output ------------------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        line = redact(line, self.known_secrets())
        self.printed.append(line)
        print(line, file=self.out, flush=True)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """Time a step; a failure is recorded with its log excerpt and stops the rehearsal."""
        self.say(f"==> {name}")
        detail: list[str] = []
        started = time.monotonic()
        try:
            yield detail
        except StepError as error:
            self.steps.append(StepResult(name, False, time.monotonic() - started, str(error)))
            self.say(f"    FAILED: {error}")
            if error.log:
                excerpt = error.log.strip().splitlines()[-EXCERPT_LINES:]
                self.say(f"    last {len(excerpt)} log lines:")
                for line in excerpt:
                    self.say(f"    | {line}")
            raise
        except KeyboardInterrupt:
            self.steps.append(StepResult(name, False, time.monotonic() - started, "interrupted"))
            raise
        except Exception as error:
            self.steps.append(StepResult(name, False, time.monotonic() - started, f"{type(error).__name__}"))
            self.say(f"    FAILED: {type(error).__name__}: {error}")
            raise StepError(str(error)) from error
        self.steps.append(StepResult(name, True, time.monotonic() - started, "; ".join(detail)))

    # -- secrets (for redaction and the final check) -------------------------------------------------------
    def known_secrets(self) -> list[str]:
        values = set(self._extra_secrets)
        with contextlib.suppress(Exception):
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.secretsmanager.models import secretsmanager_backends

            for secret in list(secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets.values()):
                for version in list(secret.versions.values()):
                    with contextlib.suppress(ValueError, TypeError):
                        values.update(_passwords_in(json.loads(version.get("secret_string") or "{}")))
        values |= {quote(value, safe="") for value in values}
        return sorted(value for value in values if len(value) >= 8)

    # -- children ------------------------------------------------------------------------------------------
    def _run_child(
        self, source: str, argv: list[str], env: dict[str, str], timeout: float = STEP_TIMEOUT_SECONDS
    ) -> str:
        try:
            result = subprocess.run(
                argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as error:
            output = (error.stdout or "") + (error.stderr or "") if isinstance(error.stdout, str) else ""
            self.captured.append((source, output))
            raise StepError(f"{source} did not finish within {timeout:.0f} s", output) from None
        output = result.stdout + result.stderr
        self.captured.append((source, output))
        if result.returncode != 0:
            raise StepError(f"{source} exited with status {result.returncode}", output)
        return output

    def invoke(self, asset: FunctionAsset, event: dict[str, Any], env: dict[str, str]) -> Any:
        event_file = self._workdir / "event.json"
        result_file = self._workdir / "result.json"
        event_file.write_text(json.dumps(event))
        result_file.unlink(missing_ok=True)
        source = f"{asset.name} {event.get('RequestType') or event.get('Step')}"
        try:
            self._run_child(
                source,
                [
                    sys.executable,
                    str(INVOKER),
                    str(asset.directory),
                    asset.handler,
                    str(event_file),
                    str(result_file),
                ],
                env,
            )
        finally:
            event_file.unlink(missing_ok=True)
        result = json.loads(result_file.read_text())
        if not result.get("ok"):
            raise StepError(f"{source}: {result.get('error')}", self.captured[-1][1])
        return result.get("result")

    # -- the run -------------------------------------------------------------------------------------------
    def run(self) -> int:
        from tests.support.postgres import INSTALL_HINT, PostgresHarnessError, PostgresServer, find_binaries

        try:
            assets, bootstrap_properties = locate_assets(self.assembly, self.stage)
            try:
                binaries = find_binaries()
            except PostgresHarnessError as error:
                raise RehearsalError(f"{error}; or run `{INSTALL_HINT}`") from None
            if binaries is None:
                raise RehearsalError(
                    f"PostgreSQL server binaries not found (initdb, pg_ctl, postgres): run `{INSTALL_HINT}`"
                )
            if self.moto_port and not port_is_free(self.moto_port):
                raise RehearsalError(
                    f"port {self.moto_port} on {LOOPBACK} is in use: pass another --moto-port, or 0 for a free one"
                )
            self.task = self._task_container()
        except RehearsalError as error:
            self.say(f"error: {error}")
            return EXIT_PREREQUISITE
        for asset in assets.values():
            self.say(
                f"using the synthesized {asset.name} function: {asset.directory.relative_to(self.assembly.parent)}"
            )
            stale = stale_files(asset)
            if stale:
                self.say(
                    f"warning: the {asset.name} asset differs from lambdas/ ({', '.join(stale[:3])}): re-synthesize"
                )

        status = 0
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(self._remove_workdir)
            try:
                self._rehearse(cleanup, binaries, PostgresServer, assets, bootstrap_properties)
            except StepError:
                status = EXIT_FAILED
            except KeyboardInterrupt:
                self.say("interrupted: tearing down")
                status = EXIT_INTERRUPTED
            finally:
                started = time.monotonic()
                try:
                    cleanup.close()
                    self.steps.append(
                        StepResult("teardown", True, time.monotonic() - started, "nothing left running")
                    )
                except Exception as error:  # report, never hide, a failed teardown
                    self.steps.append(StepResult("teardown", False, time.monotonic() - started, str(error)))
                    status = status or EXIT_FAILED
        self._summary(status)
        return status

    def _task_container(self) -> task_image.TaskContainer | None:
        """The task definition's container when the steps run in its image; None: on this host."""
        if self.runner == "host":
            self.say("the migration steps run on this host's Python (--runner host), not in the task image")
            return None
        problem = task_image.tools_problem()
        if problem:
            required = self.runner == "container" or task_image.containers_required()
            why = "--runner container" if self.runner == "container" else f"{task_image.REQUIRE_ENV_VAR}=1"
            if required:
                raise RehearsalError(
                    f"the migration task image cannot be built or run here ({why}): {problem}"
                )
            self.say(f"WARNING: the migration task image cannot be built or run here: {problem}")
            self.say("WARNING: the migration steps run on this host's Python instead, NOT in the task image")
            return None
        try:
            task = task_image.locate_task(self.assembly, self.stage)
        except task_image.TaskImageError as error:
            raise RehearsalError(str(error)) from None
        self.say(
            f"using the synthesized image asset: {task.image.directory.relative_to(self.assembly.parent)}"
        )
        stale = task_image.stale_asset_files(task.image)
        if stale:
            self.say(
                f"warning: the image asset differs from migration/ ({', '.join(stale[:3])}): re-synthesize"
            )
        return task

    def _tool(self, source: str, argv: list[str], env: dict[str, str], timeout: float) -> str:
        return self._run_child(source, argv, env, timeout)

    def _build_images(self, task: task_image.TaskContainer) -> str:
        """The base, stand-in backend and migration images (each from its cache when its inputs are unchanged)."""
        with self.step("task image: base from Debian packages (mmdebstrap, podman import)") as detail:
            base = task_image.ensure_base_image(self._tool, self._workdir)
            detail.append(f"{'built' if base.built else 'cached'} {base.tag}")
        with self.step("task image: stand-in backend (Alembic, psycopg, sample project)") as detail:
            backend = task_image.ensure_backend_image(self._tool, self._workdir, base.tag)
            detail.append(f"{'built' if backend.built else 'cached'} {backend.tag}")
        with self.step("task image: the synthesized asset's Dockerfile (buildah)") as detail:
            migration = task_image.ensure_migration_image(self._tool, task.image, backend.tag)
            args = ", ".join(sorted(task.image.build_args))
            detail.append(f"{'built' if migration.built else 'cached'} {migration.tag} (build args {args})")
        return migration.tag

    def _rehearse(
        self,
        cleanup: contextlib.ExitStack,
        binaries: Any,
        server_class: Any,
        assets: dict[str, FunctionAsset],
        bootstrap_properties: dict[str, Any],
    ) -> None:
        from config.environments import STAGING

        config = STAGING
        image_tag = self._build_images(self.task) if self.task else ""
        with self.step(f"PostgreSQL {binaries.version} with TLS (own CA, hostssl only)") as detail:
            server = server_class(binaries, tls=True)
            cleanup.callback(server.destroy)
            self._extra_secrets.append(server.superuser_password)
            try:
                server.init()
                server.start()
            except Exception as error:
                log = ""
                with contextlib.suppress(OSError):
                    log = (server.base_dir / "pg_ctl.log").read_text(errors="replace")
                raise StepError(f"the server did not start: {error}", log) from None
            database = server.create_rds_like_database(
                config.database.database_name, master_user=config.database.master_username
            )
            self._extra_secrets.append(database.master_password)
            detail.append(f"{binaries.describe()} on {LOOPBACK}:{server.port}")

        with self.step("moto server (Secrets Manager) on loopback") as detail:
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            moto = ThreadedMotoServer(ip_address=LOOPBACK, port=self.moto_port, verbose=False)
            moto.start()
            cleanup.callback(moto.stop)
            host, port = moto.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            detail.append(endpoint)

        aws_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PGSSLROOTCERT": str(server.ca_cert),
        }
        import boto3

        client = boto3.client(
            "secretsmanager", endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing",  # noqa: S106 - moto's dummy credentials
        )  # fmt: skip

        with self.step("master and application secrets (seed shape, no app passwords)") as detail:
            master_arn = client.create_secret(
                Name=f"rds!db-{config.database.instance_identifier}",
                SecretString=json.dumps(
                    {
                        "engine": "postgres", "host": "localhost", "port": server.port,
                        "username": database.master_user, "password": database.master_password,
                        "dbname": database.name,
                    }
                ),
            )["ARN"]  # fmt: skip
            app_arn = client.create_secret(
                Name=config.database.application_secret_name,
                SecretString=json.dumps(
                    {
                        "host": "localhost", "port": server.port, "database": database.name,
                        "migration": {"username": "migration"}, "app_user": {"username": "app_user"},
                    }
                ),
            )["ARN"]  # fmt: skip
            detail.append(f"{config.database.application_secret_name} and the master secret")

        def function_env(asset: FunctionAsset) -> dict[str, str]:
            env = dict(aws_env)
            for name, value in asset.environment.items():
                if name == "MASTER_SECRET_ARN":
                    env[name] = master_arn
                elif name == "DB_HOST":  # the instance's endpoint in the template: this server's
                    env[name] = "localhost"
                elif name == "DB_PORT":
                    env[name] = str(server.port)
                elif isinstance(value, str):
                    env[name] = value
                else:
                    raise StepError(f"{asset.name} environment variable {name} is a deploy-time value")
            return env

        with self.step("bootstrap function (Create): roles and privileges") as detail:
            properties = {
                **bootstrap_properties,
                "ServiceToken": f"arn:aws:lambda:{REGION}:123456789012:function:provider",
                "MasterSecretArn": master_arn,
                "AppSecretArn": app_arn,
                # Deploy-time values in the template (the instance's endpoint): this server's.
                "Endpoint": "localhost",
                "Port": str(server.port),
            }
            event = {
                "RequestType": "Create", "ResourceProperties": properties, "StackId": "rehearsal",
                "RequestId": "rehearsal", "LogicalResourceId": "BootstrapResource", "ResourceType": "Custom::DatabaseRoles",
            }  # fmt: skip
            result = self.invoke(assets["bootstrap"], event, function_env(assets["bootstrap"]))
            admin = server.admin(database.name)
            try:
                roles = admin.run(
                    "SELECT rolname FROM pg_roles WHERE rolname IN ('migration', 'app_user') ORDER BY 1"
                )
            finally:
                admin.close()
            if [row[0] for row in roles] != ["app_user", "migration"]:
                raise StepError(f"roles after bootstrap: {roles}")
            detail.append(f"roles migration, app_user; {result.get('PhysicalResourceId', '')}")

        runner_env = {**aws_env, "PGCONNECT_TIMEOUT": str(config.runtime.connect_timeout_seconds)}

        container_runner = self._container_runner(image_tag, aws_env, server.ca_cert) if self.task else None

        def runner(*arguments: str) -> str:
            if container_runner is not None:
                return container_runner(app_arn, *arguments)
            argv = [
                sys.executable, "-m", "migration.runner", "--secret-id", app_arn,
                "--alembic-config", str(ALEMBIC_INI), "--ca-bundle", str(server.ca_cert),
                "--url-scheme", "postgresql+psycopg", "--python", sys.executable, *arguments,
            ]  # fmt: skip
            return self._run_child(f"migration.runner {' '.join(arguments)}", argv, runner_env)

        where = "migration task in its image" if self.task else "migration runner on the host"
        with self.step(f"{where}: upgrade head (sample project)") as detail:
            detail.append(_revisions(runner("upgrade", "head"), "upgrade"))

        with self.step("rotation (4 steps) while the application logs in") as detail:
            stats = self._rotate_under_load(
                client,
                app_arn,
                assets["rotation"],
                function_env(assets["rotation"]),
                server,
                database.name,
                config,
            )
            detail.append(
                f"{stats.ok} logins ok ({stats.ok_in_window} between setSecret and finishSecret), "
                f"{stats.failed} failed for {stats.failure_seconds:.2f} s"
            )
            if stats.failed or stats.ok_in_window == 0:
                raise StepError(
                    f"{stats.failed} failed logins over {stats.failure_seconds:.2f} s "
                    f"({stats.ok_in_window} logins during the rotation window)",
                    "\n".join(stats.errors[-EXCERPT_LINES:]),
                )

        with self.step(f"{where}: validate") as detail:
            output = runner("validate")
            reports = [_json_object(line) for line in output.splitlines() if line.startswith("{")]
            reports = [report for report in reports if "validation" in report]
            if not reports:
                raise StepError("validate printed no counts", output)
            counts = reports[-1]["validation"]
            detail.append(", ".join(f"{name}={count}" for name, count in sorted(counts.items())))
            # `alembic current` as the runbook's evidence record gets it (issue 13)
            detail.append(f"revision {','.join(reports[-1].get('revisions') or ['none'])}")

        with self.step(f"{where}: downgrade -1") as detail:
            detail.append(_revisions(runner("downgrade", "-1"), "downgrade"))

        with self.step("no secret value in any output or log") as detail:
            secrets = self.known_secrets()
            sources = [("rehearsal output", "\n".join(self.printed)), *self.captured]
            leaks = sorted({source for source, text in sources if any(value in text for value in secrets)})
            if len(secrets) < 4:
                raise StepError(f"only {len(secrets)} secret values known: the check would prove nothing")
            if leaks:
                raise StepError(f"a secret value appears in: {', '.join(leaks)}")
            detail.append(f"{len(secrets)} values checked against {len(sources)} outputs")

    def _container_runner(self, tag: str, aws_env: dict[str, str], ca_cert: Path) -> Callable[..., str]:
        """`run(secret_id, *arguments)`: one container of the task image, as ECS would start it.

        The server's CA replaces the RDS bundle at the image's PGSSLROOTCERT; the AWS settings (moto's
        endpoint, dummy credentials) are forwarded by name from podman's environment.
        """
        import shutil

        task = self.task
        assert task is not None
        image = task_image.inspect_image(tag)
        ca_path = image.environment.get("PGSSLROOTCERT")
        if not ca_path:
            raise StepError(f"the image {tag} sets no PGSSLROOTCERT: where is its RDS CA bundle?")
        ca_copy = self._workdir / "server-ca.pem"
        shutil.copyfile(ca_cert, ca_copy)
        ca_copy.chmod(0o644)
        forward = {name: value for name, value in aws_env.items() if name.startswith("AWS_")}
        env = {**task_image.tool_environment(), **forward, **task.environment}

        def run(secret_id: str, *arguments: str, entrypoint: Sequence[str] = ()) -> str:
            directories = {
                path: task_image.volume_directory(self._workdir, path)
                for path in task.volumes
                if path not in image.volumes
            }
            argv = task_image.run_argv(
                task, tag, image,
                arguments=list(arguments) if entrypoint else task.arguments(secret_id, *arguments),
                forward=sorted(forward), volume_dirs=directories, files={ca_path: ca_copy},
                entrypoint=entrypoint,
            )  # fmt: skip
            try:
                return self._run_child(f"migration task {' '.join(arguments)[:60]}", argv, env)
            finally:
                for directory in directories.values():
                    shutil.rmtree(directory, ignore_errors=True)

        with self.step("task container: user, read-only root filesystem, writable volumes") as detail:
            writable = sorted(path for path, read_only in task.volumes.items() if not read_only)
            output = run("", json.dumps(writable), entrypoint=("python", "-c", _CONTAINER_PROBE))
            probe = json.loads(output.strip().splitlines()[-1])
            detail.append(
                f"uid {probe['uid']}:{probe['gid']}, root filesystem read-only, {', '.join(writable)} writable"
            )
        return run

    def _rotate_under_load(
        self,
        client: Any,
        app_arn: str,
        asset: FunctionAsset,
        env: dict[str, str],
        server: Any,
        database: str,
        config: Any,
    ) -> LoadStats:
        import pg8000.native

        from contract.auth import sqlstate_of
        from dbclient.rotation_aware import RotationAwareCredentials
        from tests.support.moto_rotation import enable_rotation, stage_pending_version

        stats = LoadStats()
        stop = threading.Event()
        context = ssl.create_default_context(cafile=str(server.ca_cert))
        credentials = RotationAwareCredentials(client, app_arn, user="app_user")

        def login(username: str, password: str) -> Any:
            return pg8000.native.Connection(
                username, password=password, host="localhost", port=server.port, database=database,
                ssl_context=context, timeout=config.runtime.connect_timeout_seconds,
                application_name="revenuepilot-rehearsal-load",
            )  # fmt: skip

        def load() -> None:
            while not stop.is_set():
                try:
                    connection = credentials.connect(login)
                    try:
                        connection.run(f"SET statement_timeout = {int(config.runtime.statement_timeout_ms)}")
                        connection.run("SELECT count(*) FROM encounters")
                    finally:
                        connection.close()
                    stats.ok += 1
                    stats.ok_in_window += self._load_phase == "window"
                except Exception as error:
                    now = time.monotonic()
                    stats.failed += 1
                    stats.first_failure = stats.first_failure or now
                    stats.last_failure = now
                    stats.errors.append(f"{type(error).__name__} SQLSTATE {sqlstate_of(error)}")
                stop.wait(0.02)

        # What the rotation schedule and RotateSecret do before invoking the function.
        enable_rotation(app_arn, region=REGION, days=config.database.secret_rotation_days)
        token = stage_pending_version(app_arn, region=REGION)

        thread = threading.Thread(target=load, name="rehearsal-load", daemon=True)
        thread.start()
        try:
            time.sleep(0.5)
            for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
                self.invoke(asset, {"SecretId": app_arn, "ClientRequestToken": token, "Step": step}, env)
                self._load_phase = {"setSecret": "window", "finishSecret": "after"}.get(
                    step, self._load_phase
                )
            time.sleep(0.5)
        finally:
            stop.set()
            thread.join(timeout=30)
        stages = client.describe_secret(SecretId=app_arn)["VersionIdsToStages"]
        if "AWSCURRENT" not in stages.get(token, []):
            raise StepError(f"AWSCURRENT did not move to the new version: {stages}")
        return stats

    def _remove_workdir(self) -> None:
        import shutil

        shutil.rmtree(self._workdir, ignore_errors=True)

    def _summary(self, status: int) -> None:
        width = max([len(step.name) for step in self.steps] + [4])
        self.say("")
        self.say(f"{'step':<{width}}  result  seconds  detail")
        self.say(f"{'-' * width}  ------  -------  {'-' * 40}")
        for step in self.steps:
            result = "PASS" if step.ok else "FAIL"
            self.say(f"{step.name:<{width}}  {result:<6}  {step.seconds:7.2f}  {step.detail}")
        total = sum(step.seconds for step in self.steps)
        verdict = {0: "all steps passed", EXIT_INTERRUPTED: "INTERRUPTED"}.get(status, "REHEARSAL FAILED")
        self.say(f"{'total':<{width}}  {'':<6}  {total:7.2f}  {verdict}")


# Run in the task container: who it runs as, that / is read-only and every writable volume writable.
_CONTAINER_PROBE = """
import json, os, sys, tempfile
problems = []
try:
    open("/.rehearsal-probe", "w").close()
    problems.append("the root filesystem is writable")
except OSError:
    pass
for path in json.loads(sys.argv[1]):
    try:
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as error:
        problems.append(f"{path} is not writable by uid {os.getuid()}: {error.strerror}")
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "problems": problems}))
sys.exit(1 if problems else 0)
"""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.rehearse", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--assembly", type=Path, default=REPO_ROOT / "cdk.out", help="cloud assembly directory"
    )
    parser.add_argument("--stage", default="Staging", help="the Stage whose Data template names the assets")
    parser.add_argument("--moto-port", type=int, default=0, help="port for moto's server (0: a free one)")
    parser.add_argument(
        "--runner",
        choices=RUNNERS,
        default="auto",
        help="where the migration steps run: in the task image (container), on this Python (host), or "
        "the image when its tools work here (auto; REQUIRE_CONTAINERS=1 makes their absence an error)",
    )
    parser.add_argument(
        "--check-only", action="store_true", help="exit 1 if the assembly lacks the assets or they are stale"
    )
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    stream = out or sys.stdout
    assembly = args.assembly.resolve()
    if args.check_only:
        try:
            assets, _ = locate_assets(assembly, args.stage)
        except RehearsalError as error:
            print(f"{error}", file=stream)
            return 1
        stale = [path for asset in assets.values() for path in stale_files(asset)]
        try:
            stale += task_image.stale_asset_files(task_image.locate_task(assembly, args.stage).image)
        except task_image.TaskImageError as error:
            print(f"{error}", file=stream)
            return 1
        if stale:
            print(
                f"the assets in {assembly} are older than lambdas/ or migration/ ({', '.join(stale[:3])})",
                file=stream,
            )
        return 1 if stale else 0
    rehearsal = Rehearsal(
        assembly=assembly, stage=args.stage, moto_port=args.moto_port, out=stream, runner=args.runner
    )
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main_thread else None
    try:
        return rehearsal.run()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
