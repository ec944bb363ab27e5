"""`python -m ops migrate|rollback --env <env> --revision <rev> [--maintenance] [--dry-run]`,
`python -m ops maintenance --env <env> --on|--off`, `python -m ops access-review
--env <env>` and `python -m ops restore ...`: thin wiring over ops.runbook, ops.access_review and ops.restore
(`refresh-staging` is wired to ops.staging_refresh).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from config.environments import ENVIRONMENTS
from contract.revision import EXACT_REVISION_RULE, REVISION_RULE, InvalidRevisionError, check_revision
from ops.access_review import AccessReviewError, collect_and_write
from ops.image_check import check_backend_image
from ops.restore import RestoreError, add_restore_parser, run_restore
from ops.runbook import (
    Plan,
    RunbookError,
    check_account,
    evidence_uri,
    failure_details,
    follow,
    rollback_hint,
    set_maintenance,
    snapshot_summary,
    start,
)

EXIT_FAILED = 1
EXIT_USAGE = 2


def revision_argument(text: str) -> str:
    """argparse type of --revision: the shared grammar (contract/revision.py), so `--revision=--help` fails here."""
    try:
        return check_revision(text)
    except InvalidRevisionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops", description="Run the database migration runbook")
    commands = parser.add_subparsers(dest="command", required=True)
    for command, default, help_text in (
        ("migrate", "head", "alembic upgrade <revision> through the runbook"),
        ("rollback", "-1", "alembic downgrade <revision> through the runbook"),
    ):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("--env", required=True, choices=[c.name for c in ENVIRONMENTS])
        sub.add_argument(
            "--revision",
            default=default,
            type=revision_argument,
            help=f"target revision (default {default}): {REVISION_RULE}; where a revision must be applied in "
            f"another environment first (production): {EXACT_REVISION_RULE}",
        )
        sub.add_argument(
            "--maintenance",
            action="store_true",
            help="set maintenance mode before the snapshot and clear it after success (README: Running a migration)",
        )
        sub.add_argument("--dry-run", action="store_true", help="print what would happen; call no AWS API")
        sub.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    maintenance = commands.add_parser(
        "maintenance", help="set or clear the application's maintenance-mode flag by hand"
    )
    maintenance.add_argument("--env", required=True, choices=[c.name for c in ENVIRONMENTS])
    switch = maintenance.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", action="store_true", help="maintenance mode on")
    switch.add_argument("--off", action="store_true", help="maintenance mode off")
    add_restore_parser(commands, [c.name for c in ENVIRONMENTS])  # issue 15: ops/restore.py
    review = commands.add_parser(
        "access-review", help="dated access review (Markdown and JSON): database roles, secrets, IAM"
    )
    review.add_argument("--env", required=True, choices=[c.name for c in ENVIRONMENTS])
    review.add_argument("--assembly", type=Path, default=Path("cdk.out"), help="synthesized cloud assembly")
    review.add_argument(
        "--output-dir", type=Path, default=Path("access-reviews"), help="where the report goes"
    )
    review.add_argument(
        "--database-json",
        type=Path,
        default=None,
        help="the database part as printed by the migration task (default: run the task now)",
    )
    return parser


def run_access_review(args: argparse.Namespace, *, clients: Any, out: TextIO) -> int:
    environment = next(c for c in ENVIRONMENTS if c.name == args.env)
    try:
        check_account(clients("sts"), environment)
        markdown, document = collect_and_write(
            environment,
            clients=clients,
            assembly_dir=args.assembly,
            output_dir=args.output_dir,
            database_json=args.database_json,
        )
    except (RunbookError, AccessReviewError, LookupError, OSError) as exc:
        print(f"error: {exc}", file=out)
        return EXIT_FAILED
    print(f"access review written: {markdown} and {document}", file=out)
    return 0


def run(args: argparse.Namespace, *, clients: Any, out: TextIO) -> int:
    if args.command == "access-review":
        return run_access_review(args, clients=clients, out=out)
    environment = next(c for c in ENVIRONMENTS if c.name == args.env)
    if args.command == "restore":
        try:
            return run_restore(args, environment=environment, clients=clients, out=out)
        except RestoreError as exc:
            print(f"error: {exc}", file=out)
            return EXIT_FAILED
    if args.command == "maintenance":
        try:
            caller = check_account(clients("sts"), environment)
        except RunbookError as exc:
            print(f"error: {exc}", file=out)
            return EXIT_FAILED
        name = set_maintenance(clients("ssm"), environment, on=args.on, requested_by=caller)
        print(f"maintenance mode {'ON' if args.on else 'off'} in {environment.name} ({name})", file=out)
        return 0
    try:
        plan = Plan(
            environment=environment,
            action="upgrade" if args.command == "migrate" else "downgrade",
            revision=args.revision,
            maintenance=args.maintenance,
        )
    except InvalidRevisionError as exc:
        print(f"error: {environment.name}: {exc}", file=out)
        return EXIT_USAGE
    if args.dry_run:
        print("DRY RUN: nothing is started.", file=out)
        for line in plan.describe():
            print(line, file=out)
        return 0
    stepfunctions, rds, sts = clients("stepfunctions"), clients("rds"), clients("sts")
    try:
        plan = dataclasses.replace(plan, requested_by=check_account(sts, environment) or None)
        check_backend_image(stepfunctions, clients("ecs"), plan)
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
        if result.get("validationBefore") is not None:
            print(f"before:     {json.dumps(result['validationBefore'], sort_keys=True)}", file=out)
        print(f"validation: {json.dumps(result.get('validation', {}), sort_keys=True)}", file=out)
        if "durationSeconds" in result:
            print(f"duration:   {result['durationSeconds']} s", file=out)
        if result.get("alembicRevision") is not None:
            print(f"revision:   {json.dumps(result['alembicRevision'], sort_keys=True)}", file=out)
        if result.get("maintenanceMode"):
            print(f"maintenance: {result['maintenanceMode']}", file=out)
        evidence = result.get("evidence")
        print(f"evidence:   {evidence['s3Uri'] if isinstance(evidence, dict) else evidence}", file=out)
        return 0
    details = failure_details(stepfunctions, execution_arn)
    print(f"{status}: {details['error']}: {details['cause']}", file=out)
    snapshot = _snapshot_from_history(stepfunctions, execution_arn)
    snapshot_text = snapshot_summary(rds, snapshot) if snapshot else None
    for line in rollback_hint(environment, snapshot_text, started):
        print(line, file=out)
    if isinstance(started, datetime):
        print(f"evidence:   {evidence_uri(environment, execution_arn, started)} (the failure notice says "
              "whether it was written and whether maintenance mode is still on)", file=out)  # fmt: skip
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
