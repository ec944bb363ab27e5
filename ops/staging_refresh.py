"""Staging from a recent production snapshot, as one command (ops guide: stage upgrades on a restored snapshot).

`python -m ops refresh-staging --production-profile <p> --staging-profile <s> [--snapshot <id>] [--dry-run]`

1. In production: the snapshot to use (the given one, or the newest available snapshot of the production
   instance). An automated or AWS Backup snapshot cannot be shared, so it is first copied to a manual
   snapshot `staging-refresh-<time>` under the production CMK.
2. In production: share that manual snapshot with the staging account (`restore` attribute). The
   production CMK's key policy lets the staging account use it through RDS only
   (`database.snapshot_copy_account_ids`).
3. In staging: copy the shared snapshot, re-encrypted with the staging CMK, as `from-production-<time>`,
   and wait until it is available.
4. Print what to deploy: `restore_from_snapshot_identifier` on the staging database config.

Each step is a plain function over boto3 RDS/STS clients, so tests run them against moto.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from config.schema import EnvironmentConfig

REFRESH_PREFIX = "staging-refresh-"
COPY_PREFIX = "from-production-"


class RefreshError(RuntimeError):
    """A step of the refresh cannot proceed; the message says which and what to do."""


@dataclass(frozen=True)
class RefreshPlan:
    production: EnvironmentConfig
    staging: EnvironmentConfig
    stamp: str  # UTC time, second resolution: names are unique per run

    @property
    def production_key(self) -> str:
        return f"alias/revenuepilot/{self.production.name}/database"

    @property
    def staging_key(self) -> str:
        return f"alias/revenuepilot/{self.staging.name}/database"

    def describe(self, source: str | None) -> list[str]:
        return [
            f"1. production ({self.production.account}): snapshot {source or 'newest available of ' + self.production.database.instance_identifier}"
            f", copied to {REFRESH_PREFIX}{self.stamp} under {self.production_key} if it is not a manual one",
            f"2. production: share it with staging ({self.staging.account}) for restore",
            f"3. staging ({self.staging.account}): copy it as {COPY_PREFIX}{self.stamp}, re-encrypted with {self.staging_key}",
            "4. set staging's database.restore_from_snapshot_identifier to the copy and deploy 'Staging/*' "
            "(the staging instance is replaced: allow it with ALLOW_REPLACE in that PR)",
        ]


def new_plan(
    production: EnvironmentConfig, staging: EnvironmentConfig, now: datetime | None = None
) -> RefreshPlan:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d-%H%M%S")
    return RefreshPlan(production=production, staging=staging, stamp=stamp)


def check_identity(sts: Any, environment: EnvironmentConfig, profile_role: str) -> None:
    """The credentials given for `profile_role` belong to the environment's account."""
    account = sts.get_caller_identity()["Account"]
    if account != environment.account:
        raise RefreshError(
            f"the {profile_role} credentials are for account {account}, not {environment.name}'s {environment.account}"
        )


def newest_snapshot(rds: Any, instance_identifier: str) -> dict[str, Any]:
    """The newest available snapshot (manual, automated or AWS Backup) of the instance."""
    snapshots = [
        snapshot
        for page in rds.get_paginator("describe_db_snapshots").paginate(
            DBInstanceIdentifier=instance_identifier
        )
        for snapshot in page["DBSnapshots"]
        if snapshot.get("Status") == "available"
    ]
    if not snapshots:
        raise RefreshError(f"no available snapshot of {instance_identifier} in production")
    return max(snapshots, key=lambda snapshot: snapshot["SnapshotCreateTime"])


def named_snapshot(rds: Any, identifier: str) -> dict[str, Any]:
    try:
        return dict(rds.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"][0])
    except rds.exceptions.DBSnapshotNotFoundFault as error:
        raise RefreshError(f"production has no snapshot {identifier!r}") from error


def shareable_snapshot(
    rds: Any, snapshot: dict[str, Any], plan: RefreshPlan, wait: Callable[[Any, str], None]
) -> str:
    """A manual snapshot that can be shared: the snapshot itself, or a manual copy under the production CMK."""
    if snapshot.get("SnapshotType") == "manual":
        return str(snapshot["DBSnapshotIdentifier"])
    target = f"{REFRESH_PREFIX}{plan.stamp}"
    rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier=snapshot["DBSnapshotArn"],
        TargetDBSnapshotIdentifier=target,
        KmsKeyId=plan.production_key,
        CopyTags=True,
        Tags=[{"Key": "purpose", "Value": "staging-refresh"}],
    )
    wait(rds, target)
    return target


def share(rds: Any, snapshot_identifier: str, staging_account: str) -> str:
    """Share the manual snapshot with the staging account; its ARN, which staging copies from."""
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier=snapshot_identifier, AttributeName="restore", ValuesToAdd=[staging_account]
    )
    return str(
        rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_identifier)["DBSnapshots"][0]["DBSnapshotArn"]
    )


def copy_into_staging(rds: Any, shared_arn: str, plan: RefreshPlan, wait: Callable[[Any, str], None]) -> str:
    """Copy the shared snapshot into staging under the staging CMK; the copy's ARN."""
    target = f"{COPY_PREFIX}{plan.stamp}"
    copied = rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier=shared_arn,
        TargetDBSnapshotIdentifier=target,
        KmsKeyId=plan.staging_key,
        Tags=[{"Key": "purpose", "Value": "staging-refresh"}, {"Key": "source", "Value": shared_arn}],
    )
    wait(rds, target)
    return str(copied["DBSnapshot"]["DBSnapshotArn"])


def waiter(poll_seconds: float, timeout_seconds: float = 4 * 3600) -> Callable[[Any, str], None]:
    def wait(rds: Any, identifier: str) -> None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            status = rds.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"][0]["Status"]
            if status == "available":
                return
            if status in ("failed", "error", "incompatible-restore"):
                raise RefreshError(f"snapshot {identifier} is {status}")
            if time.monotonic() > deadline:
                raise RefreshError(f"snapshot {identifier} is still {status} after {timeout_seconds:.0f} s")
            time.sleep(poll_seconds)

    return wait


def refresh(
    *,
    plan: RefreshPlan,
    production_clients: Callable[[str], Any],
    staging_clients: Callable[[str], Any],
    snapshot: str | None,
    out: TextIO,
    wait: Callable[[Any, str], None],
) -> str:
    """Run the four steps; returns the staging copy's ARN."""
    check_identity(production_clients("sts"), plan.production, "production")
    check_identity(staging_clients("sts"), plan.staging, "staging")
    production_rds, staging_rds = production_clients("rds"), staging_clients("rds")
    source = (
        named_snapshot(production_rds, snapshot)
        if snapshot
        else newest_snapshot(production_rds, plan.production.database.instance_identifier)
    )
    print(
        f"source:  {source['DBSnapshotIdentifier']} ({source.get('SnapshotType')}, {source['SnapshotCreateTime']})",
        file=out,
    )
    manual = shareable_snapshot(production_rds, source, plan, wait)
    shared_arn = share(production_rds, manual, plan.staging.account)
    print(f"shared:  {shared_arn} with {plan.staging.account}", file=out)
    copy_arn = copy_into_staging(staging_rds, shared_arn, plan, wait)
    print(f"copied:  {copy_arn} (under {plan.staging_key})", file=out)
    print(
        "next:    in config/environments.py set STAGING's database restore_from_snapshot_identifier="
        f"{copy_arn!r}, open a PR (make diff shows the staging instance replaced: allow it with "
        "ALLOW_REPLACE), deploy 'Staging/*', rehearse, then remove the shared production copy "
        f"({manual}) when no longer needed",
        file=out,
    )
    return copy_arn


def build_parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m ops refresh-staging",
        description="Copy a recent production snapshot into staging, re-encrypted with staging's CMK",
    )
    parser.add_argument("--production-profile", required=True, help="AWS profile of the production account")
    parser.add_argument("--staging-profile", required=True, help="AWS profile of the staging account")
    parser.add_argument("--snapshot", help="production snapshot id (default: the newest available one)")
    parser.add_argument("--dry-run", action="store_true", help="print the steps; call no AWS API")
    parser.add_argument("--poll-seconds", type=float, default=30.0, help=argparse.SUPPRESS)
    return parser


def main(
    argv: list[str],
    *,
    clients_for: Callable[[str], Callable[[str], Any]] | None = None,
    out: TextIO,
    environments: tuple[EnvironmentConfig, ...],
) -> int:
    """`clients_for(profile)` -> a client factory for that profile (boto3 sessions by default)."""
    args = build_parser().parse_args(argv)
    by_name = {environment.name: environment for environment in environments}
    plan = new_plan(by_name["production"], by_name["staging"])
    if args.dry_run:
        print("DRY RUN: nothing is copied or shared.", file=out)
        for line in plan.describe(args.snapshot):
            print(line, file=out)
        return 0
    if clients_for is None:
        import boto3

        def clients_for(profile: str) -> Callable[[str], Any]:
            return boto3.session.Session(profile_name=profile, region_name=plan.production.region).client

    try:
        refresh(
            plan=plan,
            production_clients=clients_for(args.production_profile),
            staging_clients=clients_for(args.staging_profile),
            snapshot=args.snapshot,
            out=out,
            wait=waiter(args.poll_seconds),
        )
    except RefreshError as error:
        print(f"error: {error}", file=out)
        return 1
    return 0
