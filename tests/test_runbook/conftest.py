"""The staging runbook from the session's synth, deployed once for this package into moto (executing).

Package scope (this folder has an `__init__.py` for it): the mock and the moto patches end with the
last test here, before any other folder's tests run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.environments import STAGING
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


@pytest.fixture
def runbook(deployed_runbook: Runbook) -> Runbook:
    """The deployed runbook with a fresh, healthy instance and nothing left from the last scenario."""
    deployed_runbook.reset()
    return deployed_runbook
