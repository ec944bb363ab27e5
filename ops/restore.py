"""`python -m ops restore --env <env> (--to-time <ISO> | --snapshot <id>) [--dry-run]` (issue 15, item 5).

Restores the environment's database into a NEW instance (the original is never touched) with the
original's subnet group, parameter group, security groups, log exports, IAM auth, CA and tags (plus
`RestoredFrom`); the CMK comes with the data (RDS restores keep the source's or snapshot's key, the
restore APIs take no other). Enhanced Monitoring and Performance Insights are not restore parameters:
they are applied with ModifyDBInstance once the instance is available. It waits until it is available, runs the validation queries through the environment's
in-VPC restore validation function (the database subnets are isolated: an operator's machine cannot
reach them), and prints what to do next (docs/decisions/0007-restored-instance-under-cloudformation.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from config.schema import EnvironmentConfig

VALIDATION_OUTPUT = "RestoreValidationFunctionName"


class RestoreError(RuntimeError):
    """A restore cannot start or did not validate; the message says what to do."""


def add_restore_parser(commands: Any, environment_names: list[str]) -> None:
    sub = commands.add_parser("restore", help="restore the database into a new instance and validate it")
    sub.add_argument("--env", required=True, choices=environment_names)
    source = sub.add_mutually_exclusive_group(required=True)
    source.add_argument("--to-time", help="point in time, ISO 8601 with a zone (e.g. 2026-12-01T08:30:00Z)")
    source.add_argument("--snapshot", help="DB snapshot identifier or ARN (manual or AWS Backup)")
    sub.add_argument("--target", help="new instance identifier (default <instance>-restored-<UTC time>)")
    sub.add_argument("--dry-run", action="store_true", help="print the restore call; call no AWS API")
    sub.add_argument("--poll-seconds", type=float, default=30.0, help=argparse.SUPPRESS)


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RestoreError(
            f"--to-time {text!r} is not an ISO 8601 time such as 2026-12-01T08:30:00Z"
        ) from None
    if moment.tzinfo is None:
        raise RestoreError(f"--to-time {text!r} needs a time zone (e.g. a trailing Z for UTC)")
    return moment.astimezone(UTC)


@dataclass(frozen=True, kw_only=True)
class RestoreRequest:
    environment: EnvironmentConfig
    target: str
    to_time: datetime | None = None
    snapshot: str | None = None

    @property
    def source(self) -> str:
        return self.environment.database.instance_identifier


def same_settings(source: dict[str, Any], request: RestoreRequest) -> dict[str, Any]:
    """The restore call's parameters that make the new instance look like `source` (DescribeDBInstances)."""
    tags = [t for t in source.get("TagList", []) if not t["Key"].startswith("aws:")]
    tags.append(
        {
            "Key": "RestoredFrom",
            "Value": request.snapshot or f"{request.source}@{request.to_time:%Y-%m-%dT%H:%M:%SZ}",
        }
    )
    params: dict[str, Any] = {
        "DBInstanceClass": source["DBInstanceClass"],
        "DBSubnetGroupName": source["DBSubnetGroup"]["DBSubnetGroupName"],
        "DBParameterGroupName": source["DBParameterGroups"][0]["DBParameterGroupName"],
        "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]],
        "MultiAZ": bool(source.get("MultiAZ")),
        "PubliclyAccessible": False,
        "StorageType": source.get("StorageType", "gp3"),
        "EnableCloudwatchLogsExports": list(source.get("EnabledCloudwatchLogsExports", [])),
        "EnableIAMDatabaseAuthentication": bool(source.get("IAMDatabaseAuthenticationEnabled")),
        "CopyTagsToSnapshot": True,
        "DeletionProtection": True,
        "Tags": tags,
    }
    if source.get("CACertificateIdentifier"):
        params["CACertificateIdentifier"] = source["CACertificateIdentifier"]
    return params


def monitoring_settings(source: dict[str, Any]) -> dict[str, Any]:
    """ModifyDBInstance parameters for what the restore APIs do not take: Enhanced Monitoring, PI."""
    params: dict[str, Any] = {}
    if source.get("MonitoringInterval"):
        params["MonitoringInterval"] = source["MonitoringInterval"]
        params["MonitoringRoleArn"] = source["MonitoringRoleArn"]
    if source.get("PerformanceInsightsEnabled"):
        params["EnablePerformanceInsights"] = True
        params["PerformanceInsightsKMSKeyId"] = source["PerformanceInsightsKMSKeyId"]
        params["PerformanceInsightsRetentionPeriod"] = source["PerformanceInsightsRetentionPeriod"]
    return params


def restore_call(source: dict[str, Any], request: RestoreRequest) -> tuple[str, dict[str, Any]]:
    """(RDS operation, parameters) for the request."""
    if request.snapshot is not None:
        return "restore_db_instance_from_db_snapshot", {
            "DBInstanceIdentifier": request.target,
            "DBSnapshotIdentifier": request.snapshot,
            **same_settings(source, request),
        }
    assert request.to_time is not None
    return "restore_db_instance_to_point_in_time", {
        "SourceDBInstanceIdentifier": request.source,
        "TargetDBInstanceIdentifier": request.target,
        "RestoreTime": request.to_time,
        **same_settings(source, request),
    }


def describe_source(rds: Any, request: RestoreRequest) -> dict[str, Any]:
    try:
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=request.source)["DBInstances"]
    except rds.exceptions.DBInstanceNotFoundFault:
        raise RestoreError(
            f"the {request.environment.name} instance {request.source} does not exist in "
            f"{request.environment.region}: check the account you are signed in to"
        ) from None
    return dict(instance)


def check_source_point(rds: Any, source: dict[str, Any], request: RestoreRequest) -> None:
    if request.snapshot is not None:
        try:
            rds.describe_db_snapshots(DBSnapshotIdentifier=request.snapshot)
        except rds.exceptions.DBSnapshotNotFoundFault:
            raise RestoreError(
                f"unknown snapshot {request.snapshot!r} in {request.environment.name} "
                f"({request.environment.region}): list them with `aws rds describe-db-snapshots "
                f"--db-instance-identifier {request.source}` (AWS Backup's are named awsbackup:job-...)"
            ) from None
        return
    assert request.to_time is not None
    latest = source.get("LatestRestorableTime")
    if latest is not None and request.to_time > latest:
        raise RestoreError(
            f"--to-time {request.to_time:%Y-%m-%dT%H:%M:%SZ} is after the latest restorable time "
            f"{latest:%Y-%m-%dT%H:%M:%SZ} of {request.source}"
        )


def validation_function_name(cloudformation: Any, environment: EnvironmentConfig) -> str:
    stack_name = f"{environment.stage_id}-Recovery"
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == VALIDATION_OUTPUT:
            return str(output["OutputValue"])
    raise RestoreError(
        f"stack {stack_name} has no output {VALIDATION_OUTPUT}: deploy the Recovery stack first"
    )


def validate(lambda_client: Any, function_name: str, target: str) -> dict[str, Any]:
    response = lambda_client.invoke(
        FunctionName=function_name, Payload=json.dumps({"validate_instance": target}).encode()
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError") or not isinstance(payload, dict):
        raise RestoreError(f"the validation function failed: {payload}")
    return payload


# The Data stack's instance (pinned in tests/test_infrastructure/test_stacks.py).
INSTANCE_LOGICAL_ID = "DatabaseInstanceAA8A5FDE"


def cutover_allow_key(environment: EnvironmentConfig) -> str:
    """The replacement guard's key for the instance replacement a cutover deploy makes."""
    return f"{environment.stage_id}/Data/{INSTANCE_LOGICAL_ID}"


def next_steps(request: RestoreRequest, endpoint: str) -> list[str]:
    env = request.environment
    return [
        f"The restored instance {request.target} ({endpoint}) is running beside {request.source}; nothing points at it yet.",
        "To make it the environment's instance under CloudFormation (docs/decisions/0007-restored-instance-under-cloudformation.md):",
        f"  1. aws rds create-db-snapshot --db-instance-identifier {request.target} "
        f"--db-snapshot-identifier {request.target}-cutover",
        f'  2. set database.restore_from_snapshot_identifier="{request.target}-cutover" for {env.name} in '
        "config/environments.py and open a PR; keep it there for as long as the instance lives (removing it "
        "would replace the instance with an empty one)",
        *(
            [
                f'     production: also database.restore_cutover=RestoreCutover(snapshot_identifier="{request.target}'
                '-cutover", change_ticket="CHG-...", approved_by=("<incident lead>", "<second reviewer>")), '
                "the approval config requires; it stays with the identifier"
            ]
            if env.name == "production"
            else []
        ),
        "  3. make diff: the replacement guard BLOCKS on the instance replacement; "
        f"rerun it as make diff ALLOW_REPLACE='{cutover_allow_key(env)}' and paste its verdict into the PR",
        f"  4. npx cdk deploy '{env.stage_id}/*' (the old instance leaves a final snapshot: removal policy SNAPSHOT)",
        f"  5. delete {request.target} once the deployed instance validates: disable its deletion protection first",
    ]


def run_restore(
    args: argparse.Namespace,
    *,
    environment: EnvironmentConfig,
    clients: Callable[[str], Any],
    out: TextIO,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    target = args.target or f"{environment.database.instance_identifier}-restored-{now():%Y%m%d%H%M}"
    request = RestoreRequest(
        environment=environment,
        target=target,
        to_time=parse_time(args.to_time) if args.to_time else None,
        snapshot=args.snapshot,
    )
    if args.dry_run:
        print("DRY RUN: nothing is restored.", file=out)
        source_text = request.snapshot or f"{request.source} at {request.to_time:%Y-%m-%dT%H:%M:%SZ}"
        print(f"would restore {source_text} into {target} with the settings of {request.source}", file=out)
        return 0
    rds = clients("rds")
    source = describe_source(rds, request)
    check_source_point(rds, source, request)
    operation, params = restore_call(source, request)
    getattr(rds, operation)(**params)
    print(f"restoring into {target} ({operation})", file=out, flush=True)
    waiter_config = {"Delay": max(1, int(args.poll_seconds)), "MaxAttempts": 240}
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=target, WaiterConfig=waiter_config)
    monitoring = monitoring_settings(source)
    if monitoring:
        rds.modify_db_instance(DBInstanceIdentifier=target, ApplyImmediately=True, **monitoring)
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=target, WaiterConfig=waiter_config)
    (restored,) = rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"]
    endpoint = f"{restored['Endpoint']['Address']}:{restored['Endpoint']['Port']}"
    print(f"available: {endpoint}", file=out, flush=True)
    result = validate(
        clients("lambda"), validation_function_name(clients("cloudformation"), environment), target
    )
    print(f"validation: {json.dumps(result, sort_keys=True)}", file=out)
    if not result.get("passed"):
        print(f"FAILED: the restored instance {target} did not validate; keep it for investigation", file=out)
        return 1
    for line in next_steps(request, endpoint):
        print(line, file=out)
    return 0
