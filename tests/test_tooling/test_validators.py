"""cfn-lint, checkov and the Control Tower Guard rules on the session's templates (tools/validate.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from contract.compliance import reason_problem
from tools import validate


@pytest.fixture(scope="module")
def validation(synthesized_app):
    if not validate.CHECKOV.exists() and not os.environ.get("REQUIRE_VALIDATORS"):
        pytest.skip("checkov's virtualenv is missing: `make test` creates .venv-checkov")
    with tempfile.TemporaryDirectory(prefix="cdk-validate-") as copy:
        # Reports are written next to the templates: keep the shared assembly untouched.
        assembly = Path(
            shutil.copytree(
                synthesized_app.directory, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns("asset.*")
            )
        )
        results = {result.name: result for result in validate.validate(assembly)}
        reports = sorted(p.name for p in (assembly / "validation").iterdir())
        yield results, reports


@pytest.mark.parametrize("validator", ["cfn-lint", "checkov", "cfn-guard"])
def test_validator_has_no_findings(validation, validator):
    results, _ = validation
    assert results[validator].findings == [], "\n".join(results[validator].findings)


def test_reports_are_machine_readable(validation):
    _, reports = validation
    assert reports == ["cfn-guard.json", "cfn-lint.json", "checkov.json"]


def test_every_guard_exemption_has_a_reason():
    assert all(reason_problem(reason) is None for reason in validate.GUARD_EXEMPTIONS.values())


def test_every_checkov_skip_is_reported_with_its_reason(validation, synthesized_app):
    import json

    results, _ = validation
    skips = [
        skip
        for path in sorted(synthesized_app.directory.glob("assembly-*/*.template.json"))
        for resource in json.loads(path.read_text()).get("Resources", {}).values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    exempted = results["checkov"].exempted
    assert skips, "the templates carry checkov skips (constructs/checkov.py)"
    assert len(exempted) == len(skips), "every skip on a resource appears in the report"
    for skip in skips:
        assert any(line.startswith(skip["id"]) and line.endswith(skip["comment"]) for line in exempted), skip
