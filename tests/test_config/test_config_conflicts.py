"""Conflicting or missing inputs stop synthesis with a ConfigError naming the field, never a silent choice."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import CREATED_VPC_FIELDS, DatabaseConfig, NetworkConfig
from config.validation import ConfigError

VPC_ID = "vpc-0123456789abcdef0"


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("cidr", "10.40.0.0/16"), ("max_azs", 3), ("nat_gateways", 1), ("flow_log_retention_days", 365)],
)
def test_an_imported_vpc_refuses_the_settings_of_a_created_one(field_name, value):
    with pytest.raises(ConfigError) as raised:
        NetworkConfig(existing_vpc_id=VPC_ID, **{field_name: value})
    assert raised.value.field_path == f"network.{field_name}"
    assert f"network.{field_name}" in str(raised.value)
    assert "existing_vpc_id" in str(raised.value)


def test_every_created_vpc_field_is_refused_with_an_imported_vpc():
    """The conflict list covers every field besides existing_vpc_id (a new field must be classified)."""
    assert set(CREATED_VPC_FIELDS) == {f.name for f in dataclasses.fields(NetworkConfig)} - {
        "existing_vpc_id"
    }


def test_an_imported_vpc_alone_is_accepted():
    network = NetworkConfig(existing_vpc_id=VPC_ID)
    assert not network.creates_vpc
    with pytest.raises(ConfigError, match=r"network\.existing_vpc_id"):
        network.created_vpc()


def test_creating_a_vpc_requires_its_cidr():
    with pytest.raises(ConfigError) as raised:
        NetworkConfig(max_azs=3)
    assert raised.value.field_path == "network.cidr"
    assert "required" in str(raised.value)


def test_a_created_vpc_fills_in_the_defaults_of_what_is_not_given():
    settings = NetworkConfig(cidr="10.50.0.0/16").created_vpc()
    assert (settings.max_azs, settings.nat_gateways, settings.flow_log_retention_days) == (3, 1, 365)


def test_the_environments_keep_their_network_values():
    """The values the templates were synthesized from before the fields became optional."""
    assert dataclasses.astuple(STAGING.network.created_vpc()) == ("10.41.0.0/16", 2, 1, 365)
    assert dataclasses.astuple(PRODUCTION.network.created_vpc()) == ("10.40.0.0/16", 3, 3, 2192)


def test_production_max_azs_rule_does_not_apply_to_an_imported_vpc():
    production = dataclasses.replace(PRODUCTION, network=NetworkConfig(existing_vpc_id=VPC_ID))
    assert production.network.existing_vpc_id == VPC_ID


def test_the_application_secret_name_is_required():
    with pytest.raises(TypeError, match="application_secret_name"):
        DatabaseConfig(instance_identifier="x-db")  # type: ignore[call-arg]


def test_each_environment_names_its_own_application_secret():
    assert STAGING.database.application_secret_name == "revenuepilot/staging/database"
    # Production's retained secret keeps its original name (deriving it would replace the secret).
    assert PRODUCTION.database.application_secret_name == "revenuepilot/prod/database"


def test_a_bad_application_secret_name_names_the_field():
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(PRODUCTION.database, application_secret_name="has spaces")
    assert raised.value.field_path == "database.application_secret_name"
