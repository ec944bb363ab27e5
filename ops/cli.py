"""`python -m ops migrate|rollback --env <env> --revision <rev> [--dry-run]`: thin wiring over ops.runbook."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from config.environments import ENVIRONMENTS
from ops.runbook import (
    Plan,
    RunbookError,
    check_account,
    failure_details,
    follow,
    rollback_hint,
    snapshot_summary,
    start,
)

EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops", description="Run the database migration runbook")
    commands = parser.add_subparsers(dest="command", required=True)
    for command, default, help_text in (
        ("migrate", "head", "alembic upgrade <revision> through the runbook"),
        ("rollback", "-1", "alembic downgrade <revision> through the runbook"),
    ):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("--env", required=True, choices=[c.name for c in ENVIRONMENTS])
        sub.add_argument("--revision", default=default, help=f"Alembic revision (default {default})")
        sub.add_argument("--dry-run", action="store_true", help="print what would happen; call no AWS API")
        sub.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    return parser


def run(args: argparse.Namespace, *, clients: Any, out: TextIO) -> int:
    environment = next(c for c in ENVIRONMENTS if c.name == args.env)
    plan = Plan(
        environment=environment,
        action="upgrade" if args.command == "migrate" else "downgrade",
        revision=args.revision,
    )
    if args.dry_run:
        print("DRY RUN: nothing is started.", file=out)
        for line in plan.describe():
            print(line, file=out)
        return 0
    stepfunctions, rds, sts = clients("stepfunctions"), clients("rds"), clients("sts")
    try:
        check_account(sts, environment)
        execution_arn = start(stepfunctions, plan)
        print(f"started {execution_arn}", file=out, flush=True)
        execution = follow(stepfunctions, execution_arn, out=out, poll_seconds=args.poll_seconds)
    except RunbookError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_FAILED
    status = execution["status"]
    started = execution.get("startDate")
    if status == "SUCCEEDED":
        result = json.loads(execution.get("output") or "{}")
        snapshot = result.get("snapshotId")
        print(f"SUCCEEDED: {plan.action} to {plan.revision}", file=out)
        if snapshot:
            print(f"snapshot:   {snapshot_summary(rds, snapshot)}", file=out)
        print(f"validation: {json.dumps(result.get('validation', {}), sort_keys=True)}", file=out)
        if "durationSeconds" in result:
            print(f"duration:   {result['durationSeconds']} s", file=out)
        return 0
    details = failure_details(stepfunctions, execution_arn)
    print(f"{status}: {details['error']}: {details['cause']}", file=out)
    snapshot = _snapshot_from_history(stepfunctions, execution_arn)
    snapshot_text = snapshot_summary(rds, snapshot) if snapshot else None
    for line in rollback_hint(environment, snapshot_text, started):
        print(line, file=out)
    return EXIT_FAILED


def _snapshot_from_history(stepfunctions: Any, execution_arn: str) -> str | None:
    """The snapshot id the runbook created, if it got that far (CreateSnapshot's task parameters)."""
    # Every page: a long snapshot wait alone adds far more than one page (100 events) of polling.
    pages = stepfunctions.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    for event in (event for page in pages for event in page["events"]):
        details = event.get("taskScheduledEventDetails") or {}
        if details.get("resource") == "createDBSnapshot":
            try:
                return str(json.loads(details["parameters"])["DbSnapshotIdentifier"])
            except (KeyError, ValueError):
                return None
    return None


def main(argv: Sequence[str] | None = None, *, clients: Any = None, out: TextIO | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["refresh-staging"]:  # two accounts, its own options (ops/staging_refresh.py)
        from ops import staging_refresh

        try:
            return staging_refresh.main(
                arguments[1:], clients_for=clients, out=out or sys.stdout, environments=ENVIRONMENTS
            )
        except Exception as error:
            message = aws_error_message(error, "production/staging")
            if message is None:
                raise
            print(f"error: {message}", file=out or sys.stdout)
            return EXIT_FAILED
    args = build_parser().parse_args(arguments)
    if clients is None:
        import boto3

        environment = next(c for c in ENVIRONMENTS if c.name == args.env)
        session = boto3.session.Session(region_name=environment.region)
        clients = session.client
    try:
        return run(args, clients=clients, out=out or sys.stdout)
    except Exception as error:  # an AWS error is a message for the operator, not a traceback
        message = aws_error_message(error, args.env)
        if message is None:
            raise
        print(f"error: {message}", file=out or sys.stdout)
        return EXIT_FAILED


def aws_error_message(error: Exception, environment: str) -> str | None:
    """A one-line explanation of a credentials, permission or connection error of boto3; None otherwise."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        TokenRetrievalError,
    )

    if isinstance(error, NoCredentialsError | PartialCredentialsError | TokenRetrievalError):
        return (
            f"no usable AWS credentials for {environment}: sign in to the {environment} account "
            "(e.g. `aws sso login --profile <profile>` and AWS_PROFILE=<profile>) and run the command again"
        )
    if isinstance(error, ProfileNotFound | NoRegionError):
        return f"AWS configuration problem for {environment}: {error}"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS for {environment}: {error}"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        operation = getattr(error, "operation_name", "an AWS call")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "ExpiredToken",
                    "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):  # fmt: skip
            return (
                f"{operation} was refused in {environment} ({code}): your role lacks the permission or its "
                "session expired; see README: Migrations for the permissions `ops` needs"
            )
        return f"{operation} failed in {environment} ({code}): {error.response.get('Error', {}).get('Message', '')}"
    return None
