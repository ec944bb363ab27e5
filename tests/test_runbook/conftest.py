"""The staging runbook from the session's synth, deployed once for this package into moto (executing).

Package scope (this folder has an `__init__.py` for it): the mock and the moto patches end with the
last test here, before any other folder's tests run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.environments import PRODUCTION, STAGING
from tests.support.aws import use_fake_aws_credentials
from tests.support.stepfunctions import Runbook, local_runbook
from tests.support.synth import SynthesizedApp


@pytest.fixture(scope="package")
def deployed_runbook(synthesized_app: SynthesizedApp) -> Iterator[Runbook]:
    template = synthesized_app.template_json(STAGING.stage_id, "Migration")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_fake_aws_credentials(monkeypatch, region=STAGING.region)
        monkeypatch.setenv("MOTO_ACCOUNT_ID", STAGING.account)
        with local_runbook(
            template,
            stage_id=STAGING.stage_id,
            region=STAGING.region,
            account=STAGING.account,
            instance_identifier=STAGING.database.instance_identifier,
        ) as runbook:
            yield runbook


@pytest.fixture(scope="package")
def deployed_production_runbook(synthesized_app: SynthesizedApp, deployed_runbook: Runbook) -> Runbook:
    """Production's runbook in the same moto (and account) as staging's: moto's interpreter ignores a
    task's `Credentials`, so production's cross-account read of staging's record happens in this one
    account (the role ARN, trust and permissions are template tests: tests/test_infrastructure)."""
    import dataclasses

    production = dataclasses.replace(
        deployed_runbook,
        stage_id=PRODUCTION.stage_id,
        template=synthesized_app.template_json(PRODUCTION.stage_id, "Migration"),
        instance_identifier=PRODUCTION.database.instance_identifier,
        task_runs=[],
        _known_tasks=set(deployed_runbook.recorder.started_tasks),
        _finished_tasks=set(),
        _clients={},
    )
    production.deploy()
    return production


@pytest.fixture
def runbook(deployed_runbook: Runbook) -> Runbook:
    """The deployed runbook with a fresh, healthy instance and nothing left from the last scenario."""
    deployed_runbook.reset()
    return deployed_runbook


@pytest.fixture
def production_runbook(deployed_production_runbook: Runbook) -> Runbook:
    """Production's deployed runbook, reset like `runbook`."""
    deployed_production_runbook.reset()
    return deployed_production_runbook
