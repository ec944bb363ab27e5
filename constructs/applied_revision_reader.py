"""The read-only role through which another environment's runbook reads this environment's applied revisions.

Creates one IAM role, named `revenuepilot-<env>-migration-applied-reader` (contract.names, so the
other environment's runbook knows its ARN at synth), that:
- may be assumed only from the reader accounts (config `migration.applied_record_reader_accounts`)
  and only by the runbook role of the environment that requires the record
  (`aws:PrincipalArn` = `arn:<partition>:iam::<account>:role/revenuepilot-<env>-migration-runbook`);
- may call `ssm:GetParameter` on `/revenuepilot/<env>/migration/applied/*` and nothing else
  (String parameters: no KMS).

Exposes `role`.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.compliance import acknowledge
from contract.names import applied_reader_role_name, applied_revision_path


class AppliedRevisionReader(Construct):
    """A role for `reader_role_arns` (their accounts) to read this environment's applied-revision records."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        reader_role_arns: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        if not reader_role_arns:
            raise ValueError("AppliedRevisionReader needs at least one reader role ARN")
        stack = cdk.Stack.of(self)
        accounts = sorted({arn.split(":")[4] for arn in reader_role_arns})
        path = applied_revision_path(environment_name)
        self.role = iam.Role(
            self,
            "Role",
            role_name=applied_reader_role_name(environment_name),
            description=f"RevenuePilot {environment_name}: read the runbook's applied-revision records ({path}/*)",
            assumed_by=iam.CompositePrincipal(*(iam.AccountPrincipal(account) for account in accounts)),
            max_session_duration=cdk.Duration.hours(1),
        )
        # Only the named runbook roles, not any principal of those accounts.
        cfn_role = self.role.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        cfn_role.add_property_override(
            "AssumeRolePolicyDocument.Statement.0.Condition",
            {"ArnEquals": {"aws:PrincipalArn": list(reader_role_arns)}},
        )
        parameters = stack.format_arn(
            service="ssm",
            resource="parameter",
            resource_name=f"{path.lstrip('/')}/*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
        policy = iam.ManagedPolicy(
            self,
            "ReadPolicy",
            description=f"RevenuePilot {environment_name}: GetParameter on the applied-revision records",
            statements=[iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[parameters])],
            roles=[self.role],
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{parameters}]",
            "One SSM parameter per applied revision id (the runbook creates them); the grant is GetParameter "
            "only, on that path only, for a role only the named runbook role of the reader account may assume.",
        )
