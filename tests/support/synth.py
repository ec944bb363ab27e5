"""Synthesizing the app in tests: the session's one synth per environment and the few variant synths.

A variant synth is the real app (same context, same Stage, same cdk-nag packs, same context check)
for an `EnvironmentConfig` a test modified with `modified()`. It costs seconds: add one only where a
setting cannot be seen in the session's synth (e.g. restoring from a snapshot).

Run as `python -m tests.support.synth <outdir>` it synthesizes the real environments into <outdir> in
a fresh process and prints `{"validation_error": ...}` (the determinism test's second synth).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tools.assembly import stack_artifacts
from tools.node_runtime import pinned_node_environment

if TYPE_CHECKING:
    import aws_cdk as cdk

    from config.deployment import DeploymentConfig
    from config.schema import EnvironmentConfig

# Before aws_cdk is imported anywhere: jsii (and every CLI a test starts) runs on the pinned Node LTS,
# also when pytest is started without `make`.
os.environ.update(pinned_node_environment())

REPO_ROOT = Path(__file__).resolve().parents[2]

_Config = TypeVar("_Config")


@dataclass(frozen=True)
class SynthesizedApp:
    """The cloud assembly of one synth of the app, as `cdk synth` would produce it."""

    directory: Path
    validation_error: str | None  # the cdk-nag findings' message; None when the gate passed

    def stage_directory(self, stage_id: str) -> Path:
        return self.directory / f"assembly-{stage_id}"

    def template_json(self, stage_id: str, stack_id: str) -> dict[str, Any]:
        return self._artifact(stage_id, stack_id).template()

    def stack_manifest(self, stage_id: str, stack_id: str) -> dict[str, Any]:
        manifest = json.loads((self.stage_directory(stage_id) / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact.get("displayName") == f"{stage_id}/{stack_id}":
                return dict(artifact)
        raise KeyError(f"no stack {stage_id}/{stack_id} in the assembly")

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.directory / "validation-report.json").read_text())
        return report

    def findings(self) -> list[str]:
        """Every cdk-nag finding of the report as '<pack>: <rule> at <construct path>'."""
        return [
            f"{report['pluginName']}: {violation['ruleName']} at {construct['constructPath']}"
            for report in self.validation_report()["pluginReports"]
            if report["conclusion"] != "success"
            for violation in report.get("violations", [])
            for construct in violation["violatingConstructs"]
        ]

    def metadata_files(self) -> list[Path]:
        return sorted(self.directory.glob("assembly-*/*.metadata.json"))

    def _artifact(self, stage_id: str, stack_id: str) -> Any:
        try:
            return stack_artifacts(self.directory)[f"{stage_id}/{stack_id}"]
        except KeyError:
            raise KeyError(f"no stack {stage_id}/{stack_id} in the assembly") from None


def app_context() -> dict[str, Any]:
    """The context `cdk synth` gives the app: cdk.json's feature flags and cdk.context.json's lookups."""
    context: dict[str, Any] = dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    context.update(json.loads((REPO_ROOT / "cdk.context.json").read_text()))
    return context


def modified(config: _Config, **sections: Mapping[str, Any] | Any) -> _Config:
    """A copy of a config dataclass with some fields changed; a dict changes fields of that section.

    `modified(STAGING, database={"restore_from_snapshot_identifier": arn})` re-runs every validation
    of the config (`__post_init__`), as a real environment definition would.
    """
    changes = {
        name: dataclasses.replace(getattr(config, name), **value) if isinstance(value, Mapping) else value
        for name, value in sections.items()
    }
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def synthesize_under_gate(app: cdk.App) -> str | None:
    """`app.synth()` with the cdk-nag packs: their findings' message, or None. Other errors propagate.

    The templates and `validation-report.json` are written even when the gate finds something.
    """
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
        return str(error)
    return None


def synthesize_app(
    environments: Iterable[EnvironmentConfig],
    outdir: Path,
    deployment: DeploymentConfig | None = None,
    *,
    peers: Iterable[EnvironmentConfig] | None = None,
) -> SynthesizedApp:
    """The real app (one Stage per environment, every cdk-nag pack) synthesized into `outdir`.

    `peers`: the project's other environments, referenced but not synthesized (a variant synth of one
    environment still knows the others, as the real app does); by default config.environments'. With `deployment` (as app.py passes it),
    also the DeployAccess Stage of the pipeline's roles.
    """
    import aws_cdk as cdk

    from stacks.cdk_app import define_app, require_complete_context

    app = cdk.App(context=app_context(), outdir=str(outdir))
    from config.environments import ENVIRONMENTS

    define_app(app, environments, deployment, peers=ENVIRONMENTS if peers is None else peers)
    validation_error = synthesize_under_gate(app)
    require_complete_context(str(outdir))
    return SynthesizedApp(directory=outdir, validation_error=validation_error)


if __name__ == "__main__":
    from config.environments import DEPLOYMENT, ENVIRONMENTS

    result = synthesize_app(ENVIRONMENTS, Path(sys.argv[1]), DEPLOYMENT)
    print(json.dumps({"validation_error": result.validation_error}))
