"""The compliance gate: every cdk-nag pack runs and leaves zero unacknowledged findings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from constructs.compliance import AcknowledgmentError, acknowledge
from contract.compliance import MINIMUM_REASON_LENGTH, NAG_PACKS
from stacks.cdk_app import add_compliance_checks


def test_synth_passes_validation(synthesized_app):
    assert synthesized_app.validation_error is None, synthesized_app.validation_error


def test_no_pack_reports_a_finding(synthesized_app):
    # Passing plugins are left out of the report; a failing one is listed with its violations.
    assert synthesized_app.findings() == []


def test_no_validation_plugin_reports_even_a_warning(synthesized_app):
    """CDK's own CloudFormation validation reports warnings without failing synthesis: none may stand."""
    reports = synthesized_app.validation_report()["pluginReports"]
    assert "CloudFormation Validate" in {report["pluginName"] for report in reports}
    warnings = [
        f"{report['pluginName']}: {violation['ruleName']} at {construct['constructPath']}"
        for report in reports
        for violation in report.get("violations", [])
        for construct in violation["violatingConstructs"]
    ]
    assert warnings == []


def test_the_gate_fails_synthesis_on_a_finding_of_each_pack(tmp_path):
    """A control: the same plugins, on an unencrypted SNS topic, must fail synth and name every pack."""
    import aws_cdk as cdk
    from aws_cdk import aws_sns as sns

    app = cdk.App(outdir=str(tmp_path))
    sns.Topic(cdk.Stack(app, "Probe"), "Unencrypted")
    add_compliance_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    reports = {
        r["pluginName"]: r
        for r in json.loads((tmp_path / "validation-report.json").read_text())["pluginReports"]
    }
    for pack in NAG_PACKS:
        assert reports[pack]["conclusion"] == "failure", pack


def _acknowledgments(synthesized_app):
    for metadata_file in synthesized_app.metadata_files():
        for path, entries in json.loads(metadata_file.read_text()).items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule_id, reason in entry["data"].items():
                        # CDK acknowledges some of its own CloudFormation-Validate warnings; ours are nag rules.
                        if any(pack in rule_id for pack in NAG_PACKS):
                            yield path, rule_id, reason


def test_every_acknowledgment_is_on_a_resource_with_a_real_reason(synthesized_app):
    acknowledgments = list(_acknowledgments(synthesized_app))
    assert acknowledgments
    for path, rule_id, reason in acknowledgments:
        assert len(reason) >= MINIMUM_REASON_LENGTH, f"{rule_id} on {path}: {reason!r}"
        # Never stack- or stage-wide: /Stage/Stack/<construct>...
        assert path.count("/") >= 3, f"{rule_id} acknowledged on {path}, not on a construct"


def test_short_reasons_are_rejected():
    import aws_cdk as cdk

    stack = cdk.Stack(cdk.App(), "Probe")
    with pytest.raises(AcknowledgmentError, match="AwsSolutions-RDS11"):
        acknowledge(stack, "AwsSolutions-RDS11", "port 5432 ok")


def _normalised(path: str) -> str:
    """'/Staging/Network/Network/Vpc/PublicSubnet2/DefaultRoute' -> 'Network/Network/Vpc/PublicSubnet<n>/DefaultRoute'."""
    without_stage = "/".join(path.split("/")[2:])
    return re.sub(r"(PublicSubnet|PostgresFrom|RepliesTo)\d+", r"\1<n>", without_stage)


def test_readme_lists_every_acknowledgment(synthesized_app):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| ") and "`" in line]
    missing = set()
    for path, rule_id, _ in _acknowledgments(synthesized_app):
        rule = re.sub(r"\[.*\]$", "", rule_id.removeprefix("Annotation::")).split("-", 1)[-1]
        construct = _normalised(path)
        if not any(
            rule in row
            and (
                f"`{construct}`" in row
                or (
                    # "`X` and each of its entries"
                    f"`{construct.rsplit('/', 1)[0]}` and each of its entries" in row
                )
            )
            for row in rows
        ):
            missing.add(f"{rule} on {construct}")
    assert sorted(missing) == []
