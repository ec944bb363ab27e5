"""The cutover procedure of docs/decisions/0007: a restored instance becomes staging's instance again
through a CloudFormation deploy from its snapshot, and the replacement guard's verdict on that deploy.

Base: the session's synth (the deployed state). New: a variant synth with the cutover snapshot set.
"""

from __future__ import annotations

import pytest

from config.environments import STAGING
from config.schema import PHI_LOG_RETENTION_DAYS
from ops.restore import INSTANCE_LOGICAL_ID, RestoreRequest, cutover_allow_key, next_steps
from tests.support.synth import modified, synthesize_app
from tools.replacement_guard import compare_stack, report

CUTOVER_SNAPSHOT = "revenuepilot-staging-restored-202612030910-cutover"


@pytest.fixture(scope="module")
def cutover(tmp_path_factory):
    # Any environment built from a snapshot may hold patient data: it keeps every log as long as production.
    config = modified(
        STAGING,
        database={
            "restore_from_snapshot_identifier": CUTOVER_SNAPSHOT,
            "log_retention_days": PHI_LOG_RETENTION_DAYS,
        },
        network={"flow_log_retention_days": PHI_LOG_RETENTION_DAYS},
        migration={"log_retention_days": PHI_LOG_RETENTION_DAYS},
    )
    return synthesize_app([config], tmp_path_factory.mktemp("cutover"))


def test_the_cutover_deploy_replaces_only_the_instance_and_the_guard_blocks_it_until_allowed(
    synthesized_app, cutover
):
    base = synthesized_app.template_json("Staging", "Data")
    new = cutover.template_json("Staging", "Data")
    assert new["Resources"][INSTANCE_LOGICAL_ID]["Properties"]["DBSnapshotIdentifier"] == CUTOVER_SNAPSHOT
    findings = compare_stack("Staging", "Data", base, new)
    blocking = [f for f in findings if f.blocking]
    assert {f.logical_id for f in blocking} == {INSTANCE_LOGICAL_ID}
    text, passed = report(findings)
    assert not passed and f"REPLACE: Staging/Data {INSTANCE_LOGICAL_ID}" in text
    text, passed = report(findings, allowed=[cutover_allow_key(STAGING)])
    assert passed, text
    # The key the command prints is the one the guard accepts.
    steps = "\n".join(next_steps(RestoreRequest(environment=STAGING, target="t"), "host:5432"))
    assert cutover_allow_key(STAGING) in steps


def test_the_cutover_template_passes_the_compliance_gate(cutover):
    assert cutover.validation_error is None, cutover.validation_error
