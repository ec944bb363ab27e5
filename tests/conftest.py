"""Session-wide fixtures: the whole app is synthesized once per test session.

jsii starts a Node.js process per Python process (~2.5 s) and a full synth with four cdk-nag
packs takes several more, so every template test shares one cloud assembly. The synth itself, and
the few variant synths of a modified config, are `tests/support/synth.py`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported first: it puts the pinned Node LTS in the environment before aws_cdk is imported anywhere.
from tests.support.synth import REPO_ROOT, SynthesizedApp, app_context, synthesize_app

__all__ = ["REPO_ROOT", "SynthesizedApp", "app_context"]

_synth_failure: list[BaseException] = []


@pytest.fixture(scope="session")
def synthesized_app() -> Iterator[SynthesizedApp]:
    # pytest re-runs a session fixture that raised for every test that asks for it; a broken app
    # would then be synthesized once per template test. Fail fast with the first error instead.
    if _synth_failure:
        pytest.fail(f"the app did not synthesize (see the first error): {_synth_failure[0]}", pytrace=False)
    from config.environments import DEPLOYMENT, ENVIRONMENTS

    with tempfile.TemporaryDirectory(prefix="cdk-test-") as outdir:
        try:
            synthesized = synthesize_app(ENVIRONMENTS, Path(outdir), DEPLOYMENT)
        except BaseException as error:
            _synth_failure.append(error)
            raise
        yield synthesized
