"""Customer-managed KMS keys with an explicit, reviewable key policy.

The ops guide asks to "back up the key policy": here the policy *is* code, so every change to it
shows in `cdk diff`. Each key is scoped to the deployment account, rotates yearly, and is
retained when its stack is deleted (destroying a key destroys every backup encrypted with it).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


@dataclass(frozen=True, kw_only=True)
class KeyUsers:
    """Which AWS services may use the key, beyond IAM principals of the account."""

    # Services that use the key on behalf of a caller of this account (kms:ViaService).
    via_services: tuple[str, ...] = ()
    # Whether CloudWatch Logs may encrypt log groups of this account with the key.
    cloudwatch_logs: bool = False
    # Service principals that publish into encrypted resources (SNS topics) themselves,
    # e.g. events.rds.amazonaws.com and cloudwatch.amazonaws.com.
    publishing_services: tuple[str, ...] = ()
    # Other accounts (staging) that may copy this account's RDS snapshots encrypted with the key, through
    # RDS only: the staging refresh (`python -m ops refresh-staging`) re-encrypts the copy with their own key.
    snapshot_copy_accounts: tuple[str, ...] = ()


class EncryptionKey(Construct):
    """A symmetric CMK with rotation, an alias, RETAIN, and an explicit key policy.

    The account root statement delegates use of the key to IAM policies (CloudFormation and
    break-glass administration need it); service principals get only what they need, conditioned on
    this account, and grants can only be created for AWS services.

    Exposes `key` (the `kms.Key`).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, alias: str, description: str, users: KeyUsers
    ) -> None:
        super().__init__(scope, construct_id)
        statements = [*_administration_statements(), *_user_statements(users, cdk.Stack.of(self))]
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            alias=alias,
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            pending_window=cdk.Duration.days(30),
            policy=iam.PolicyDocument(statements=statements),
        )


def _administration_statements() -> list[iam.PolicyStatement]:
    """The account administers the key through IAM; only AWS services may create grants."""
    statements = [
        # Without this statement IAM policies of the account cannot grant use of the key.
        iam.PolicyStatement(
            sid="AccountAdministersKeyThroughIam",
            principals=[iam.AccountRootPrincipal()],
            actions=["kms:*"],
            resources=["*"],
        )
    ]
    # Grants are how services hold on to a key; only AWS services may create them (Control Tower CT.KMS.PR.3).
    statements.append(
        iam.PolicyStatement(
            sid="DenyGrantsExceptForAwsServices",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["kms:CreateGrant"],
            resources=["*"],
            conditions={
                "BoolIfExists": {
                    "kms:GrantIsForAWSResource": "false",
                    "aws:PrincipalIsAWSService": "false",
                }
            },
        )
    )
    return statements


def _user_statements(users: KeyUsers, stack: cdk.Stack) -> list[iam.PolicyStatement]:
    """Use of the key by the account through services, by CloudWatch Logs and by publishing services."""
    account, region, partition = stack.account, stack.region, stack.partition
    statements: list[iam.PolicyStatement] = []
    if users.via_services:
        statements.append(
            iam.PolicyStatement(
                sid="AccountPrincipalsUseKeyThroughServices",
                principals=[iam.AccountRootPrincipal()],
                actions=[*_USE_ACTIONS, "kms:CreateGrant", "kms:ListGrants"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:CallerAccount": account,
                        "kms:ViaService": [
                            f"{service}.{region}.amazonaws.com" for service in users.via_services
                        ],
                    }
                },
            )
        )
    if users.cloudwatch_logs:
        statements.append(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsAccountLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=_USE_ACTIONS,
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"
                    }
                },
            )
        )
    if users.snapshot_copy_accounts:
        statements.append(
            iam.PolicyStatement(
                sid="OtherAccountsCopySharedSnapshotsThroughRds",
                principals=[iam.AccountPrincipal(other) for other in users.snapshot_copy_accounts],
                # CopyDBSnapshot of a shared encrypted snapshot: RDS decrypts with this key (via a grant it
                # creates for itself) and re-encrypts with the copying account's key. Nothing else.
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"rds.{region}.amazonaws.com"}},
            )
        )
    if users.publishing_services:
        statements.append(
            iam.PolicyStatement(
                sid="ServicesPublishToEncryptedTopics",
                principals=[iam.ServicePrincipal(service) for service in users.publishing_services],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
    return statements
