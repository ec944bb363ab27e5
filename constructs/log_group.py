"""CloudWatch log groups that keep audit data: CMK-encrypted, retained, with explicit retention."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct


class EncryptedLogGroup(Construct):
    """A log group encrypted with a CMK, kept when its stack goes away.

    Exposes `log_group`. `retention_days` must be one of CloudWatch's values (config validates it).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retention_days: int,
        encryption_key: kms.IKey,
        log_group_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=log_group_name,
            encryption_key=encryption_key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # RetentionDays is an enum of names; the validated number of days goes straight to CloudFormation.
        cfn_log_group = self.log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = retention_days
