"""The credential-free onboarding path: explicit `network.availability_zones` instead of the context lookup.

New account ids (not in cdk.context.json) with explicit AZs synthesize with no missing context and
no `dummy` AZ, while an environment without them still needs the lookup that strict mode (`make
synth`) refuses to do without (one variant synth for both); then the config rules of the setting.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import EnvironmentConfig, NetworkConfig
from config.validation import ConfigError
from tests.support.synth import app_context, synthesize_under_gate
from tools.assembly import stack_artifacts

ZONES = {"staging": ("us-east-1b", "us-east-1c"), "production": ("us-east-1a", "us-east-1b", "us-east-1d")}
NEW_ACCOUNTS = {"staging": "333333333333", "production": "444444444444"}


def _new_account(config: EnvironmentConfig, *, zones: tuple[str, ...] | None) -> EnvironmentConfig:
    network = dataclasses.replace(config.network, availability_zones=zones)
    return dataclasses.replace(config, account=NEW_ACCOUNTS[config.name], network=network)


def test_explicit_zones_need_no_lookup_and_strict_mode_refuses_a_missing_one(tmp_path: Path) -> None:
    """One synth, both paths: production (new account) with explicit AZs, staging (new account) without."""
    import aws_cdk as cdk

    from stacks.cdk_app import MissingContextError, define_app, require_complete_context

    app = cdk.App(context=app_context(), outdir=str(tmp_path))
    define_app(app, [_new_account(STAGING, zones=None), _new_account(PRODUCTION, zones=ZONES["production"])])
    synthesize_under_gate(app)
    with pytest.raises(MissingContextError) as raised:
        require_complete_context(str(tmp_path))
    # Only staging's lookup is missing (what `make synth`'s strict mode refuses); production needs none.
    assert f"availability-zones:account={NEW_ACCOUNTS['staging']}:region=us-east-1" in str(raised.value)
    assert NEW_ACCOUNTS["production"] not in str(raised.value)

    artifacts = stack_artifacts(tmp_path)
    for stack in ("Network", "Data", "ApplicationAccess", "Monitoring", "Migration"):
        assert "dummy" not in json.dumps(artifacts[f"Production/{stack}"].template())
    network = artifacts["Production/Network"].template()
    zones = {
        resource["Properties"]["AvailabilityZone"]
        for resource in network["Resources"].values()
        if resource["Type"] == "AWS::EC2::Subnet"
    }
    assert zones == set(ZONES["production"])
    assert "dummy" in json.dumps(artifacts["Staging/Network"].template())  # what strict mode prevents


@pytest.mark.parametrize(
    ("zones", "hint"),
    [
        (("us-east-1a",), "fewer than max_azs (2)"),
        (("us-east-1a", "us-east-1a"), "distinct availability zone names"),
        (("us-east-1a", "use1-az1"), "distinct availability zone names"),
    ],
)
def test_zone_rules(zones: tuple[str, ...], hint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING.network, availability_zones=zones)
    assert raised.value.field_path == "network.availability_zones" and hint in str(raised.value)


def test_production_needs_three_zones() -> None:
    with pytest.raises(ConfigError, match=r"fewer than max_azs \(3\)"):
        dataclasses.replace(PRODUCTION.network, availability_zones=("us-east-1a", "us-east-1b"))


def test_zones_belong_to_the_environment_region() -> None:
    network = dataclasses.replace(STAGING.network, availability_zones=("eu-west-1a", "eu-west-1b"))
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING, network=network)
    assert raised.value.field_path == "staging.network.availability_zones"
    assert "region 'us-east-1'" in str(raised.value)


def test_zones_apply_only_to_a_created_vpc() -> None:
    with pytest.raises(ConfigError, match=r"network\.availability_zones"):
        NetworkConfig(
            existing_vpc_id="vpc-0123456789abcdef0", availability_zones=("us-east-1a", "us-east-1b")
        )
