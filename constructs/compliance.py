"""cdk-nag acknowledgments, one finding at a time, next to the construct they concern.

cdk-nag 3 records acknowledgments through CDK's own `Validations.of(construct).acknowledge`. It
accepts any reason, even an empty one; this wrapper refuses reasons too short to tell a reviewer
why the rule does not fit and what compensates.
"""

from __future__ import annotations

import aws_cdk as cdk

from constructs import IConstruct
from contract.compliance import reason_problem


class AcknowledgmentError(ValueError):
    """An acknowledgment without a reviewable reason."""


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (e.g. 'AwsSolutions-IAM4[Policy::...]') on `construct`."""
    problem = reason_problem(reason)
    if problem:
        raise AcknowledgmentError(
            f"acknowledgment of {rule_id} on {construct.node.path}: {problem}, got {reason!r}"
        )
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
