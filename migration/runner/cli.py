"""Command line of the migration task. Thin wiring: parse arguments, build clients, call the functions.

Settings come as arguments (the task definition has no environment variables of its own) or from
the image's static environment (PGSSLROOTCERT, PGCONNECT_TIMEOUT). The secret is fetched with the
task role; the password only ever reaches the Alembic child through its environment.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from contract.auth import (
    AWSCURRENT,
    SecretVersion,
    connect_with_pending_fallback,
    find_secret_version,
    get_secret_version,
)
from contract.names import TASK_TOKEN_ENV_VAR
from contract.secret import DatabaseLogin, SecretFormatError
from migration.runner import access_review
from migration.runner.alembic_command import RevisionError, alembic_argv, check_revision, run_streaming
from migration.runner.credentials import (
    check_host,
    child_environment,
    parse_migration_login,
    secret_fragments,
    verify_full_context,
)
from migration.runner.validation import DEFAULT_QUERIES, ValidationError, parse_query, validate_database

DEFAULT_CA_BUNDLE = "/etc/revenuepilot/certs/rds-ca-bundle.pem"
DEFAULT_ALEMBIC_CONFIG = "backend/alembic/alembic.ini"
EXIT_USAGE = 2
EXIT_FAILED = 1
# Where the image installs the runner and its own dependencies; kept out of Alembic's PYTHONPATH.
RUNNER_ROOT = str(Path(__file__).resolve().parent.parent.parent)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m migration.runner", description=__doc__.splitlines()[0])
    parser.add_argument("--secret-id", required=True, help="ARN or name of the application secret")
    parser.add_argument("--alembic-config", default=DEFAULT_ALEMBIC_CONFIG, help="path to alembic.ini")
    parser.add_argument(
        "--ca-bundle",
        type=Path,
        default=Path(os.environ.get("PGSSLROOTCERT") or DEFAULT_CA_BUNDLE),
        help="RDS CA bundle (default: $PGSSLROOTCERT)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=int,
        default=int(os.environ.get("PGCONNECT_TIMEOUT") or 10),
        help="seconds to wait for a connection (default: $PGCONNECT_TIMEOUT or 10)",
    )
    parser.add_argument(
        "--url-scheme",
        default="postgresql",
        help="SQLAlchemy URL scheme of DATABASE_URL, e.g. postgresql or postgresql+psycopg",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter that has the backend's Alembic")
    commands = parser.add_subparsers(dest="command", required=True)
    for action in ("upgrade", "downgrade"):
        # No -h/--help here: the revision comes from the runbook's input, and `upgrade --help` would print
        # help and exit 0 (a "successful" migration). An option-like revision is a usage error (exit 2).
        sub = commands.add_parser(action, help=f"alembic {action} <revision>", add_help=False)
        sub.add_argument("revision", help="head, heads, base, a revision id, +N/-N or <branch>@<target>")
    commands.add_parser("current", help="alembic current")
    commands.add_parser("access-review", help="read roles and privileges (read-only), print one JSON line")
    validate = commands.add_parser(
        "validate", help="run the validation queries and read the Alembic revision, print one JSON line"
    )
    validate.add_argument(
        "--query",
        action="append",
        default=None,
        metavar="NAME=SQL",
        help="repeatable; default: the ops guide's",
    )
    validate.add_argument("--statement-timeout-ms", type=int, default=60_000)
    validate.add_argument(
        "--task-token",
        default=os.environ.get(TASK_TOKEN_ENV_VAR) or None,
        help=f"Step Functions task token to report the counts to (default: ${TASK_TOKEN_ENV_VAR})",
    )
    return parser


def run_alembic_command(
    args: argparse.Namespace, credentials: DatabaseLogin, *, environ: dict[str, str], out: TextIO
) -> int:
    try:
        env = child_environment(
            environ,
            credentials,
            ca_bundle=args.ca_bundle,
            connect_timeout=args.connect_timeout,
            scheme=args.url_scheme,
            runner_paths=(RUNNER_ROOT, str(Path(RUNNER_ROOT) / "lib")),
        )
    except (SecretFormatError, ValueError) as exc:
        print(f"error: {exc}", file=out, flush=True)
        return EXIT_USAGE
    argv = alembic_argv(args.python, args.alembic_config, args.command, getattr(args, "revision", None))
    print(
        f"running: alembic -c {args.alembic_config} {' '.join(argv[6:] or [args.command])}",
        file=out,
        flush=True,
    )
    status = run_streaming(argv, env=env, out=out, fragments=secret_fragments(credentials))
    print(f"alembic {args.command} exited with status {status}", file=out, flush=True)
    return status


def pg8000_connector(credentials: DatabaseLogin, *, ca_bundle: Path, timeout: int) -> Any:
    """A factory of verified-TLS pg8000 connections as `migration`."""
    import pg8000.native

    context = verify_full_context(ca_bundle)
    check_host(credentials.host)

    def connect() -> Any:
        return pg8000.native.Connection(
            credentials.username,
            password=credentials.password,
            host=credentials.host,
            port=credentials.port,
            database=credentials.database,
            ssl_context=context,
            timeout=timeout,
            application_name="revenuepilot-migration-validate",
        )

    return connect


def credentials_across_rotation(
    secretsmanager: Any, secret_id: str, current: SecretVersion, *, ca_bundle: Path, timeout: int
) -> DatabaseLogin:
    """AWSCURRENT's login, unless a rotation is between setSecret and finishSecret: then AWSPENDING's.

    In that window the database has the pending password and AWSCURRENT's is refused
    (contract.auth.connect_with_pending_fallback probes both). Any other outcome of the probe keeps
    AWSCURRENT's login (Alembic then reports what is wrong).
    """
    login = parse_migration_login(current.secret_string)

    def probe(candidate: DatabaseLogin) -> None:
        pg8000_connector(candidate, ca_bundle=ca_bundle, timeout=timeout)().close()

    def fetch(stage: str) -> SecretVersion | None:
        return current if stage == AWSCURRENT else find_secret_version(secretsmanager, secret_id, stage)

    try:
        return connect_with_pending_fallback(probe, fetch, parse_migration_login, warn=_warn).login
    except Exception:  # unreachable server, wrong passwords everywhere...: leave the diagnosis to Alembic
        return login


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def validate_command(
    args: argparse.Namespace, credentials: DatabaseLogin, *, out: TextIO, stepfunctions: Any = None
) -> int:
    queries = [parse_query(q) for q in args.query] if args.query else list(DEFAULT_QUERIES)
    try:
        connect = pg8000_connector(
            credentials,
            ca_bundle=args.ca_bundle,
            timeout=args.connect_timeout + args.statement_timeout_ms // 1000 + 30,
        )
        result = validate_database(connect, queries, statement_timeout_ms=args.statement_timeout_ms)
    except Exception as exc:
        known = isinstance(exc, ValidationError | SecretFormatError)  # texts without values
        message = str(exc) if known else f"validation failed: {type(exc).__name__}"
        for fragment in secret_fragments(credentials):
            message = message.replace(fragment, "***")
        print(message, file=out, flush=True)
        if args.task_token and stepfunctions is not None:
            stepfunctions.send_task_failure(
                taskToken=args.task_token, error="ValidationFailed", cause=message
            )
        return EXIT_FAILED
    line = json.dumps({"validation": result.counts, "revisions": result.revisions}, sort_keys=True)
    print(line, file=out, flush=True)
    if args.task_token and stepfunctions is not None:
        # The runbook's evidence record takes the revisions before and after the migration from here.
        report = {"counts": result.counts, "revisions": result.revisions}
        stepfunctions.send_task_success(taskToken=args.task_token, output=json.dumps(report))
    return 0


def access_review_command(
    args: argparse.Namespace, credentials: DatabaseLogin, *, secret_string: str, out: TextIO
) -> int:
    """The database half of `python -m ops access-review`: catalogs only, READ ONLY, no secret printed."""
    try:
        connection = pg8000_connector(credentials, ca_bundle=args.ca_bundle, timeout=args.connect_timeout)()
        try:
            database = access_review.collect(connection)
        finally:
            connection.close()
    except Exception as exc:  # the type only: a driver message could quote a connection string
        print(f"access review failed: {type(exc).__name__}", file=out, flush=True)
        return EXIT_FAILED
    app_secret = access_review.secret_metadata(secret_string)
    print(access_review.report_line(database, app_secret=app_secret), file=out, flush=True)
    return 0


def _run(
    argv: Sequence[str] | None = None,
    *,
    secretsmanager: Any = None,
    stepfunctions: Any = None,
    environ: dict[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    stream = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "revision"):
            check_revision(args.revision)
        for query in getattr(args, "query", None) or ():
            parse_query(query)
    except (RevisionError, ValueError) as exc:
        print(f"error: {exc}", file=stream, flush=True)
        return EXIT_USAGE
    if not args.ca_bundle.is_file():
        print(f"error: CA bundle {args.ca_bundle} not found", file=stream, flush=True)
        return EXIT_USAGE

    wants_callback = args.command == "validate" and bool(args.task_token)
    if secretsmanager is None or (wants_callback and stepfunctions is None):
        import boto3

        secretsmanager = secretsmanager or boto3.client("secretsmanager")
        stepfunctions = stepfunctions or boto3.client("stepfunctions")
    try:
        current = get_secret_version(secretsmanager, args.secret_id, AWSCURRENT)
        parse_migration_login(current.secret_string)
    except SecretFormatError as exc:
        print(f"error: {exc}", file=stream, flush=True)
        return EXIT_USAGE
    except Exception as exc:  # botocore errors carry no secret values; print the code only
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        print(f"error: could not read the application secret: {code}", file=stream, flush=True)
        if args.command == "validate" and args.task_token and stepfunctions is not None:
            stepfunctions.send_task_failure(
                taskToken=args.task_token, error="SecretUnavailable", cause=str(code)
            )
        return EXIT_FAILED
    credentials = credentials_across_rotation(
        secretsmanager, args.secret_id, current, ca_bundle=args.ca_bundle, timeout=args.connect_timeout
    )
    if args.command == "validate":
        return validate_command(args, credentials, out=stream, stepfunctions=stepfunctions)
    if args.command == "access-review":
        return access_review_command(args, credentials, secret_string=current.secret_string, out=stream)
    return run_alembic_command(
        args, credentials, environ=dict(os.environ if environ is None else environ), out=stream
    )


# -- every exit of a validate run reports back (issue 13, item 4) ------------------------------------------
class _Callback:
    """The Step Functions client, created on first use, remembering whether the task was reported."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reported = False

    def _get(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions")
        return self._client

    def send_task_success(self, **kwargs: Any) -> Any:
        self.reported = True
        return self._get().send_task_success(**kwargs)

    def send_task_failure(self, **kwargs: Any) -> Any:
        self.reported = True
        return self._get().send_task_failure(**kwargs)


class _LastError:
    """A stream that passes everything on and keeps the last `error: ...` line (they carry no secret)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.last_error = ""
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.startswith("error: "):
                self.last_error = line.removeprefix("error: ")
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


class _StoppedError(Exception):
    """SIGTERM: ECS stops the task (StopTask, the runbook's timeout); reported, then the exit status 143."""


def _raise_stopped(signum: int, frame: Any) -> None:
    raise _StoppedError


def _task_token(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The validate run's callback token, found even when the command line itself is refused."""
    for index, argument in enumerate(argv):
        if argument == "--task-token" and index + 1 < len(argv):
            return argv[index + 1] or None
        if argument.startswith("--task-token="):
            return argument.split("=", 1)[1] or None
    return environ.get(TASK_TOKEN_ENV_VAR) or None


def main(
    argv: Sequence[str] | None = None,
    *,
    secretsmanager: Any = None,
    stepfunctions: Any = None,
    environ: dict[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the command; with a task token (the validate run), any exit without a result sends SendTaskFailure.

    So a missing CA bundle, a malformed secret, a refused argument or an unexpected error fails the
    runbook's ValidateData state at once with the cause, instead of after its timeout.
    """
    stream = out or sys.stdout
    arguments = list(sys.argv[1:] if argv is None else argv)
    token = _task_token(arguments, os.environ if environ is None else environ)
    callback = _Callback(stepfunctions)
    recorder = _LastError(stream)
    error, cause = "RunnerFailed", ""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_stopped) if token and in_main_thread else None
    try:
        status = _run(
            arguments,
            secretsmanager=secretsmanager,
            stepfunctions=callback if token else stepfunctions,
            environ=environ,
            out=recorder,  # type: ignore[arg-type]
        )
    except _StoppedError:
        cause = "the task was stopped (SIGTERM)"
        print(f"error: {cause}", file=stream, flush=True)
        status, error = 128 + signal.SIGTERM, "RunnerStopped"
    except SystemExit as exit_:  # argparse: a usage error (2) or --help (0)
        status = exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
        error, cause = "RunnerUsageError", "the runner's command line was refused (usage in the task's log)"
    except Exception as exc:  # nothing of the exception's text: it may quote a value
        print(f"error: unexpected {type(exc).__name__}", file=stream, flush=True)
        status = EXIT_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if token and not callback.reported:
        status = status or EXIT_USAGE  # a validate run that ends without a result has failed
        cause = cause or recorder.last_error or f"the runner exited with status {status} without a result"
        try:
            callback.send_task_failure(taskToken=token, error=error, cause=cause[:1000])
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            print(f"error: could not report the failure to Step Functions: {code}", file=stream, flush=True)
    return status
