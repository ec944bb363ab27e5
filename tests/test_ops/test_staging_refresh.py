"""`python -m ops refresh-staging` against moto, with one moto account per environment (STS AssumeRole).

What moto cannot do, and so what this does not prove: cross-account snapshot sharing. moto's RDS looks
a copy's source up in the copying account only, so the test stands a snapshot of the same name in the
staging account in for the share (marked below). The KMS key policy that lets staging use production's
CMK through RDS is asserted on the template instead (test_key_policy_lets_staging_copy_through_rds_only).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto import mock_aws

from config.environments import ENVIRONMENTS, PRODUCTION, STAGING
from ops.cli import main as ops_main

SNAPSHOT = "nightly-2026-12-02"


def _clients(account: str) -> Callable[[str], Any]:
    sts = boto3.client("sts", region_name="us-east-1")
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/operator", RoleSessionName="ops-test"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    ).client


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        clients = {"prod": _clients(PRODUCTION.account), "stage": _clients(STAGING.account)}
        for environment, factory in ((PRODUCTION, clients["prod"]), (STAGING, clients["stage"])):
            key = factory("kms").create_key()["KeyMetadata"]["KeyId"]
            factory("kms").create_alias(
                AliasName=f"alias/revenuepilot/{environment.name}/database", TargetKeyId=key
            )
        for factory in (clients["prod"], clients["stage"]):  # staging's copy: the stand-in for the share
            factory("rds").create_db_instance(
                DBInstanceIdentifier=PRODUCTION.database.instance_identifier, DBInstanceClass="db.r7g.large",
                Engine="postgres", MasterUsername="rp_admin", MasterUserPassword="not-a-real-password", AllocatedStorage=100,
            )  # fmt: skip
            factory("rds").create_db_snapshot(
                DBInstanceIdentifier=PRODUCTION.database.instance_identifier, DBSnapshotIdentifier=SNAPSHOT
            )
        yield clients


def _run(argv: list[str], clients: dict[str, Any]) -> tuple[int, str]:
    out = io.StringIO()
    code = ops_main(["refresh-staging", *argv], clients=lambda profile: clients[profile], out=out)
    return code, out.getvalue()


def test_dry_run_calls_nothing_and_names_every_step() -> None:
    code, printed = _run(["--production-profile", "prod", "--staging-profile", "stage", "--dry-run"], {})
    assert code == 0
    assert "DRY RUN" in printed and "alias/revenuepilot/staging/database" in printed
    assert "restore_from_snapshot_identifier" in printed


def test_shares_copies_under_the_staging_key_and_says_what_to_deploy(accounts: Any) -> None:
    code, printed = _run(
        [
            "--production-profile",
            "prod",
            "--staging-profile",
            "stage",
            "--snapshot",
            SNAPSHOT,
            "--poll-seconds",
            "0",
        ],
        accounts,
    )
    assert code == 0, printed
    shared = accounts["prod"]("rds").describe_db_snapshot_attributes(DBSnapshotIdentifier=SNAPSHOT)
    (restore,) = [
        a
        for a in shared["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
        if a["AttributeName"] == "restore"
    ]
    assert restore["AttributeValues"] == [STAGING.account]
    copies = [s for s in accounts["stage"]("rds").describe_db_snapshots()["DBSnapshots"]
              if s["DBSnapshotIdentifier"].startswith("from-production-")]  # fmt: skip
    assert len(copies) == 1 and copies[0]["Status"] == "available"
    staging_key = accounts["stage"]("kms").describe_key(KeyId="alias/revenuepilot/staging/database")[
        "KeyMetadata"
    ]
    assert copies[0]["KmsKeyId"] in (
        staging_key["Arn"],
        staging_key["KeyId"],
        "alias/revenuepilot/staging/database",
    )
    assert f"restore_from_snapshot_identifier={copies[0]['DBSnapshotArn']!r}" in printed


def test_newest_snapshot_is_the_default(accounts: Any) -> None:
    code, printed = _run(
        ["--production-profile", "prod", "--staging-profile", "stage", "--poll-seconds", "0"], accounts
    )
    assert code == 0 and f"source:  {SNAPSHOT}" in printed


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--snapshot", "no-such-snapshot"], "production has no snapshot 'no-such-snapshot'"),
        (["--production-profile", "stage"], f"the production credentials are for account {STAGING.account}"),
    ],
)
def test_clear_errors(accounts: Any, argv: list[str], expected: str) -> None:
    base = {"--production-profile": "prod", "--staging-profile": "stage"}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    code, printed = _run([*[x for pair in base.items() for x in pair], "--poll-seconds", "0"], accounts)
    assert code == 1 and expected in printed, printed
    assert "Traceback" not in printed


def test_a_refused_call_is_one_line(accounts: Any) -> None:
    from botocore.exceptions import ClientError

    def refusing(profile: str) -> Any:
        def client(service: str) -> Any:
            real = accounts[profile](service)
            if service != "rds":
                return real

            class Refusing:
                def __getattr__(self, name: str) -> Any:
                    def call(**_: Any) -> Any:
                        raise ClientError(
                            {"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeDBSnapshots"
                        )

                    return call if name.startswith("describe") else getattr(real, name)

            return Refusing()

        return client

    out = io.StringIO()
    code = ops_main(
        ["refresh-staging", "--production-profile", "prod", "--staging-profile", "stage"],
        clients=refusing,
        out=out,
    )
    assert code == 1 and "DescribeDBSnapshots was refused" in out.getvalue()


def test_environments_are_the_configured_ones() -> None:
    assert {e.name for e in ENVIRONMENTS} == {"staging", "production"}
    assert PRODUCTION.database.snapshot_copy_account_ids == (STAGING.account,)
