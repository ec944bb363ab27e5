"""The credential-free onboarding path: explicit `network.availability_zones` instead of the context lookup.

New account ids (not in cdk.context.json) with explicit AZs synthesize with no missing context and
no `dummy` AZ (a variant synth); then the config rules of the setting.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import EnvironmentConfig, NetworkConfig
from config.validation import ConfigError
from tests.support.synth import synthesize_app
from tools.assembly import stack_artifacts

ZONES = {"staging": ("us-east-1b", "us-east-1c"), "production": ("us-east-1a", "us-east-1b", "us-east-1d")}
NEW_ACCOUNTS = {"staging": "333333333333", "production": "444444444444"}


def _with_explicit_zones(config: EnvironmentConfig) -> EnvironmentConfig:
    network = dataclasses.replace(config.network, availability_zones=ZONES[config.name])
    return dataclasses.replace(config, account=NEW_ACCOUNTS[config.name], network=network)


def test_new_accounts_with_explicit_zones_need_no_lookup(tmp_path: Path) -> None:
    # synthesize_app fails (require_complete_context) if any stack reported missing context.
    synthesized = synthesize_app([_with_explicit_zones(STAGING), _with_explicit_zones(PRODUCTION)], tmp_path)
    assert synthesized.validation_error is None
    artifacts = stack_artifacts(tmp_path)
    for config in (STAGING, PRODUCTION):
        network = artifacts[f"{config.stage_id}/Network"].template()
        assert "dummy" not in json.dumps(network)
        zones = {
            resource["Properties"]["AvailabilityZone"]
            for resource in network["Resources"].values()
            if resource["Type"] == "AWS::EC2::Subnet"
        }
        assert zones == set(ZONES[config.name])
        assert all(
            "dummy" not in json.dumps(artifacts[f"{config.stage_id}/{s}"].template())
            for s in ("Data", "Migration")
        )


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
