"""Session-wide fixtures: the whole app is synthesized once per test session.

jsii starts a Node.js process per Python process (~2.5 s) and a full synth with four cdk-nag
packs takes several more, so every template test shares one cloud assembly.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.node_runtime import pinned_node_environment

# Before aws_cdk is imported anywhere: jsii (and every CLI a test starts) runs on the pinned Node LTS,
# also when pytest is started without `make`.
os.environ.update(pinned_node_environment())

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SynthesizedApp:
    """The cloud assembly of one synth of the real app, as `cdk synth` would produce it."""

    directory: Path
    validation_error: str | None

    def stage_directory(self, stage_id: str) -> Path:
        return self.directory / f"assembly-{stage_id}"

    def template_json(self, stage_id: str, stack_id: str) -> dict[str, Any]:
        manifest = json.loads((self.stage_directory(stage_id) / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if (
                artifact["type"] == "aws:cloudformation:stack"
                and artifact.get("displayName") == f"{stage_id}/{stack_id}"
            ):
                file_name = artifact["properties"]["templateFile"]
                template: dict[str, Any] = json.loads(
                    (self.stage_directory(stage_id) / file_name).read_text()
                )
                return template
        raise KeyError(f"no stack {stage_id}/{stack_id} in the assembly")

    def stack_manifest(self, stage_id: str, stack_id: str) -> dict[str, Any]:
        manifest = json.loads((self.stage_directory(stage_id) / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact.get("displayName") == f"{stage_id}/{stack_id}":
                return dict(artifact)
        raise KeyError(f"no stack {stage_id}/{stack_id} in the assembly")

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.directory / "validation-report.json").read_text())
        return report

    def metadata_files(self) -> list[Path]:
        return sorted(self.directory.glob("assembly-*/*.metadata.json"))


def app_context() -> dict[str, Any]:
    """The context `cdk synth` gives the app: cdk.json's feature flags and cdk.context.json's lookups."""
    context: dict[str, Any] = dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    context.update(json.loads((REPO_ROOT / "cdk.context.json").read_text()))
    return context


_synth_failure: list[BaseException] = []


@pytest.fixture(scope="session")
def synthesized_app() -> Iterator[SynthesizedApp]:
    # pytest re-runs a session fixture that raised for every test that asks for it; a broken app
    # would then be synthesized once per template test. Fail fast with the first error instead.
    if _synth_failure:
        pytest.fail(f"the app did not synthesize (see the first error): {_synth_failure[0]}", pytrace=False)
    import aws_cdk as cdk

    from config.environments import ENVIRONMENTS
    from stacks.application import define_app, require_complete_context

    with tempfile.TemporaryDirectory(prefix="cdk-test-") as outdir:
        try:
            app = cdk.App(context=app_context(), outdir=outdir)
            define_app(app, ENVIRONMENTS)
            validation_error = None
            try:
                app.synth()
            except RuntimeError as error:  # cdk-nag findings: the templates are written all the same
                if "ValidationFailed" not in str(error):
                    raise
                validation_error = str(error)
            require_complete_context(outdir)
        except BaseException as error:
            _synth_failure.append(error)
            raise
        yield SynthesizedApp(directory=Path(outdir), validation_error=validation_error)
