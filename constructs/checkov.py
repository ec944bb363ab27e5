"""Checkov skips, one check on one resource at a time, next to the construct they concern.

Checkov (run by `make validate` on every synthesized template) reads skips from the resource's
template metadata: `Metadata: {checkov: {skip: [{id, comment}]}}`. There is no global skip list:
a check that does not fit is skipped on the exact resource, with the reason a reviewer needs.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from constructs import IConstruct
from contract.compliance import reason_problem


def skip_checkov(construct: IConstruct, check_id: str, comment: str) -> None:
    """Skip checkov's `check_id` (e.g. 'CKV_AWS_116') on the CloudFormation resource of `construct`."""
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to carry a checkov skip")
    problem = reason_problem(comment)
    if problem:
        raise ValueError(f"checkov skip of {check_id} on {construct.node.path}: {problem}, got {comment!r}")
    existing: Any = resource.get_metadata("checkov") or {}
    skips = [skip for skip in existing.get("skip", []) if skip.get("id") != check_id]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check_id, "comment": comment}]})
