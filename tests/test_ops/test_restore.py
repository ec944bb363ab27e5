"""`python -m ops restore` against moto (RDS); the validation function and its stack output are fakes
(moto would need Docker to run a Lambda)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from config.environments import STAGING
from ops.cli import main
from tests.support.aws import use_fake_aws_credentials

REGION = STAGING.region
SOURCE = STAGING.database.instance_identifier
TARGET = "revenuepilot-staging-drill"


class Recording:
    """A boto3 client whose calls are recorded (name, parameters); `refuse` makes one raise AccessDenied."""

    def __init__(
        self, client: Any, calls: list[tuple[str, dict[str, Any]]], refuse: str | None = None
    ) -> None:
        self._client, self._calls, self._refuse = client, calls, refuse

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name in ("get_waiter", "exceptions"):
            return attribute

        def call(**kwargs: Any) -> Any:
            self._calls.append((name, kwargs))
            if name == self._refuse:
                raise ClientError(
                    {"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
                    "".join(part.capitalize() for part in name.split("_")),
                )
            return attribute(**kwargs)

        return call


class FakeLambda:
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.result).encode())}


class FakeCloudFormation:
    def describe_stacks(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs == {"StackName": "Staging-Recovery"}
        return {
            "Stacks": [
                {"Outputs": [{"OutputKey": "RestoreValidationFunctionName", "OutputValue": "validate-fn"}]}
            ]
        }


@pytest.fixture
def aws(monkeypatch) -> Iterator[dict[str, Any]]:
    use_fake_aws_credentials(monkeypatch, region=REGION)
    with mock_aws():
        rds = boto3.client("rds", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.41.{i}.0/24", AvailabilityZone=f"{REGION}{az}")[
                "Subnet"
            ]["SubnetId"]
            for i, az in ((1, "a"), (2, "b"))
        ]
        group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
        rds.create_db_subnet_group(
            DBSubnetGroupName="db-subnets", DBSubnetGroupDescription="db", SubnetIds=subnets
        )
        rds.create_db_parameter_group(
            DBParameterGroupName="db-params", DBParameterGroupFamily="postgres17", Description="p"
        )
        rds.create_db_instance(
            DBInstanceIdentifier=SOURCE, DBInstanceClass="db.t4g.large", Engine="postgres", EngineVersion="17.9",
            MasterUsername="rp_admin", MasterUserPassword="not-a-real-password-1", AllocatedStorage=50,
            DBSubnetGroupName="db-subnets", DBParameterGroupName="db-params", VpcSecurityGroupIds=[group],
            StorageEncrypted=True, KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/abc", MultiAZ=False,
            EnableCloudwatchLogsExports=["postgresql", "upgrade"], EnableIAMDatabaseAuthentication=True,
            Tags=[{"Key": "Environment", "Value": "staging"}],
            MonitoringInterval=5, MonitoringRoleArn="arn:aws:iam::123456789012:role/rds-monitoring",
        )  # fmt: skip
        rds.create_db_snapshot(DBInstanceIdentifier=SOURCE, DBSnapshotIdentifier="drill-snapshot")
        yield {"rds": rds, "group": group}


def _run(argv: list[str], *, refuse: str | None = None, result: dict[str, Any] | None = None):
    calls: list[tuple[str, dict[str, Any]]] = []
    fake_lambda = FakeLambda(result or {"passed": True, "message": "3 queries and 2 roles verified"})
    clients = {
        "rds": Recording(boto3.client("rds", region_name=REGION), calls, refuse),
        "lambda": fake_lambda,
        "cloudformation": FakeCloudFormation(),
    }
    out = StringIO()
    code = main(argv, clients=clients.__getitem__, out=out)
    return code, out.getvalue(), calls, fake_lambda


def test_restore_from_a_snapshot_copies_the_instance_settings_and_validates(aws):
    code, out, calls, fake_lambda = _run(
        [
            "restore",
            "--env",
            "staging",
            "--snapshot",
            "drill-snapshot",
            "--target",
            TARGET,
            "--poll-seconds",
            "1",
        ]
    )
    assert code == 0, out
    (params,) = [kwargs for name, kwargs in calls if name == "restore_db_instance_from_db_snapshot"]
    assert params["DBInstanceIdentifier"] == TARGET
    assert params["DBSnapshotIdentifier"] == "drill-snapshot"
    assert params["DBSubnetGroupName"] == "db-subnets"
    assert params["DBParameterGroupName"] == "db-params"
    assert params["VpcSecurityGroupIds"] == [aws["group"]]
    assert params["EnableCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert params["PubliclyAccessible"] is False and params["DeletionProtection"] is True
    assert {"Key": "Environment", "Value": "staging"} in params["Tags"]
    assert {"Key": "RestoredFrom", "Value": "drill-snapshot"} in params["Tags"]
    assert "KmsKeyId" not in params  # a restore keeps the snapshot's key (the API takes no other)
    assert fake_lambda.calls == [
        {"FunctionName": "validate-fn", "Payload": json.dumps({"validate_instance": TARGET}).encode()}
    ]
    assert "validation:" in out and "restore_from_snapshot_identifier" in out
    assert "ALLOW_REPLACE='Staging/Data/DatabaseInstanceAA8A5FDE'" in out


def test_restore_to_a_point_in_time_then_applies_monitoring(aws):
    when = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, calls, _ = _run(
        ["restore", "--env", "staging", "--to-time", when, "--target", TARGET, "--poll-seconds", "1"]
    )
    assert code == 0, out
    (params,) = [kwargs for name, kwargs in calls if name == "restore_db_instance_to_point_in_time"]
    assert params["SourceDBInstanceIdentifier"] == SOURCE
    assert params["TargetDBInstanceIdentifier"] == TARGET
    assert params["RestoreTime"] == datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    (modify,) = [kwargs for name, kwargs in calls if name == "modify_db_instance"]
    assert modify == {
        "DBInstanceIdentifier": TARGET,
        "ApplyImmediately": True,
        "MonitoringInterval": 5,
        "MonitoringRoleArn": "arn:aws:iam::123456789012:role/rds-monitoring",
    }


def test_dry_run_calls_nothing():
    code, out, calls, fake_lambda = _run(["restore", "--env", "staging", "--snapshot", "s", "--dry-run"])
    assert code == 0 and calls == [] and fake_lambda.calls == []
    assert out.startswith("DRY RUN")


def test_an_unknown_snapshot_is_named(aws):
    code, out, calls, _ = _run(
        ["restore", "--env", "staging", "--snapshot", "no-such-snapshot", "--target", TARGET]
    )
    assert code == 1
    assert "unknown snapshot 'no-such-snapshot' in staging" in out
    assert not [name for name, _ in calls if name.startswith("restore_")]


def test_a_missing_permission_is_named(aws):
    code, out, _, _ = _run(
        ["restore", "--env", "staging", "--snapshot", "drill-snapshot", "--target", TARGET],
        refuse="restore_db_instance_from_db_snapshot",
    )
    assert code == 1
    assert "RestoreDbInstanceFromDbSnapshot was refused in staging (AccessDenied)" in out


def test_a_failed_validation_fails_the_command(aws):
    code, out, _, _ = _run(
        [
            "restore",
            "--env",
            "staging",
            "--snapshot",
            "drill-snapshot",
            "--target",
            TARGET,
            "--poll-seconds",
            "1",
        ],
        result={"passed": False, "message": "roles missing: app_user"},
    )
    assert code == 1 and "did not validate" in out


def test_a_time_without_zone_is_refused():
    code, out, _, _ = _run(["restore", "--env", "staging", "--to-time", "2026-12-01T08:30:00", "--dry-run"])
    assert code == 1 and "needs a time zone" in out
