"""IAM statements for reading a Secrets Manager secret encrypted with a customer-managed key."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager


def secret_read_statements(secret: secretsmanager.ISecret, key: kms.IKey) -> list[iam.PolicyStatement]:
    """GetSecretValue/DescribeSecret on `secret`, and Decrypt on `key` only through Secrets Manager.

    Written as explicit statements for a managed policy: `secret.grant_read(role)` would add the
    reader to the key policy in the Data stack (a cross-stack cycle) and write an inline policy.
    """
    region = cdk.Stack.of(secret).region
    return [
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resources=[secret.secret_arn],
        ),
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        ),
    ]
