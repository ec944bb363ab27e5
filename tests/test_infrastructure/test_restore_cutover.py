"""The cutover procedure of docs/decisions/0007: a restored instance becomes the environment's instance
again through a CloudFormation deploy from its snapshot, and the replacement guard's verdict on that deploy.
Staging, and production behind its approved exception (`database.restore_cutover`).

Base: the session's synth (the deployed state). New: a variant synth with the cutover snapshot set.
Not proven here: what CloudFormation and RDS do in an account (the restore itself, the final snapshot
of the old instance); the guard's rules follow the CloudFormation template reference.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

from config.environments import PRODUCTION, STAGING
from config.recovery import RestoreCutover
from config.schema import PHI_LOG_RETENTION_DAYS
from config.validation import ConfigError, environment_scope
from contract.names import RESTORE_CUTOVER_METADATA
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


# --- Production: the same procedure behind an approved exception (decision 0007) --------------------

PRODUCTION_SNAPSHOT = "revenuepilot-production-restored-202612030910-cutover"
APPROVAL = RestoreCutover(
    snapshot_identifier=PRODUCTION_SNAPSHOT,
    change_ticket="CHG-4711",
    approved_by=("incident-lead", "second-reviewer"),
)


@pytest.fixture(scope="module")
def production_cutover(tmp_path_factory):
    config = modified(
        PRODUCTION,
        database={"restore_from_snapshot_identifier": PRODUCTION_SNAPSHOT, "restore_cutover": APPROVAL},
    )
    return synthesize_app([config], tmp_path_factory.mktemp("production-cutover"))


def test_production_refuses_a_snapshot_without_an_approved_cutover():
    with pytest.raises(ConfigError) as raised:
        modified(PRODUCTION, database={"restore_from_snapshot_identifier": PRODUCTION_SNAPSHOT})
    assert raised.value.field_path == "production.database.restore_from_snapshot_identifier"
    assert "restore_cutover=RestoreCutover(" in str(raised.value)


@pytest.mark.parametrize(
    ("approval", "field"),
    [
        (
            dataclasses.replace(APPROVAL, snapshot_identifier="another-snapshot"),
            "production.database.restore_cutover.snapshot_identifier",
        ),
        ({"change_ticket": "fix it"}, "production.database.restore_cutover.change_ticket"),
        ({"approved_by": ("incident-lead",)}, "production.database.restore_cutover.approved_by"),
        (
            {"approved_by": ("incident-lead", "incident-lead")},
            "production.database.restore_cutover.approved_by",
        ),
    ],
)
def test_an_approval_names_the_same_snapshot_a_ticket_and_two_approvers(approval, field):
    with pytest.raises(ConfigError) as raised, environment_scope("production"):
        if isinstance(approval, dict):
            approval = dataclasses.replace(APPROVAL, **approval)
        modified(
            PRODUCTION,
            database={"restore_from_snapshot_identifier": PRODUCTION_SNAPSHOT, "restore_cutover": approval},
        )
    assert raised.value.field_path == field, raised.value


def test_the_production_cutover_replaces_only_the_instance_and_the_guard_blocks_it_until_allowed(
    synthesized_app, production_cutover
):
    base = synthesized_app.template_json("Production", "Data")
    new = production_cutover.template_json("Production", "Data")
    instance = new["Resources"][INSTANCE_LOGICAL_ID]
    assert instance["Properties"]["DBSnapshotIdentifier"] == PRODUCTION_SNAPSHOT
    assert instance["Metadata"][RESTORE_CUTOVER_METADATA] == {
        "SnapshotIdentifier": PRODUCTION_SNAPSHOT,
        "ChangeTicket": "CHG-4711",
        "ApprovedBy": ["incident-lead", "second-reviewer"],
    }
    # Production's safety settings survive the restore.
    for key, value in {"MultiAZ": True, "DeletionProtection": True, "PubliclyAccessible": False}.items():
        assert instance["Properties"][key] == value, key
    findings = compare_stack("Production", "Data", base, new)
    assert {f.logical_id for f in findings if f.blocking} == {INSTANCE_LOGICAL_ID}
    text, passed = report(findings)
    assert not passed and f"REPLACE: Production/Data {INSTANCE_LOGICAL_ID}" in text
    text, passed = report(findings, allowed=[cutover_allow_key(PRODUCTION)])
    assert passed, text
    steps = "\n".join(next_steps(RestoreRequest(environment=PRODUCTION, target="t"), "host:5432"))
    assert cutover_allow_key(PRODUCTION) in steps and "restore_cutover=RestoreCutover(" in steps


def test_the_production_cutover_template_passes_the_compliance_gate(production_cutover):
    assert production_cutover.validation_error is None, production_cutover.validation_error


def test_the_next_deploy_with_the_identifier_kept_changes_nothing_stateful(production_cutover):
    # The follow-up PRs keep identifier and approval: CloudFormation does not restore again.
    deployed = production_cutover.template_json("Production", "Data")
    assert compare_stack("Production", "Data", deployed, copy.deepcopy(deployed)) == []


def test_removing_the_identifier_after_a_cutover_is_refused_whatever_is_allowed(
    synthesized_app, production_cutover
):
    # Removing restore_from_snapshot_identifier: CloudFormation would create an EMPTY instance.
    deployed = production_cutover.template_json("Production", "Data")
    without = synthesized_app.template_json("Production", "Data")
    findings = compare_stack("Production", "Data", deployed, without)
    refused = [f for f in findings if f.action == "refuse"]
    assert [f.logical_id for f in refused] == [INSTANCE_LOGICAL_ID]
    assert "EMPTY instance" in refused[0].detail
    text, passed = report(findings, allowed=[cutover_allow_key(PRODUCTION)])
    assert not passed and "(allowed)" not in text.split("REFUSE")[1].splitlines()[0]


def test_a_new_snapshot_under_the_old_approval_is_refused(production_cutover):
    deployed = production_cutover.template_json("Production", "Data")
    reused = copy.deepcopy(deployed)
    reused["Resources"][INSTANCE_LOGICAL_ID]["Properties"]["DBSnapshotIdentifier"] = "another-snapshot"
    findings = compare_stack("Production", "Data", deployed, reused)
    assert any(f.action == "refuse" and "CHG-4711" in f.detail for f in findings)
    _, passed = report(findings, allowed=[cutover_allow_key(PRODUCTION)])
    assert not passed
    # A new approval (new ticket) turns it back into an ordinary, allowable replacement.
    reused["Resources"][INSTANCE_LOGICAL_ID]["Metadata"][RESTORE_CUTOVER_METADATA]["ChangeTicket"] = (
        "CHG-4712"
    )
    findings = compare_stack("Production", "Data", deployed, reused)
    assert not any(f.action == "refuse" for f in findings)
    _, passed = report(findings, allowed=[cutover_allow_key(PRODUCTION)])
    assert passed


def test_resetting_a_restored_staging_stays_an_allowable_replacement(synthesized_app, cutover):
    # Without an approved cutover (staging), removing the identifier is a deliberate reset the PR can allow.
    restored = cutover.template_json("Staging", "Data")
    fresh = synthesized_app.template_json("Staging", "Data")
    findings = compare_stack("Staging", "Data", restored, fresh)
    assert not any(f.action == "refuse" for f in findings)
    assert any(f.action == "warning" and "EMPTY instance" in f.detail for f in findings)
    _, passed = report(findings)
    assert not passed
    _, passed = report(findings, allowed=[cutover_allow_key(STAGING)])
    assert passed


def test_a_later_replacement_that_keeps_the_cutover_snapshot_is_refused_whatever_is_allowed(
    production_cutover,
):
    # Months later a change replaces the instance for another reason (here its port) while decision 0007
    # keeps the identifier: CloudFormation would create the new instance from the cutover snapshot again.
    deployed = production_cutover.template_json("Production", "Data")
    later = copy.deepcopy(deployed)
    later["Resources"][INSTANCE_LOGICAL_ID]["Properties"]["Port"] = "5433"
    findings = compare_stack("Production", "Data", deployed, later)
    refused = [f for f in findings if f.action == "refuse"]
    assert [f.logical_id for f in refused] == [INSTANCE_LOGICAL_ID]
    assert PRODUCTION_SNAPSHOT in refused[0].detail and "LOST" in refused[0].detail
    _, passed = report(findings, allowed=[cutover_allow_key(PRODUCTION)])
    assert not passed
