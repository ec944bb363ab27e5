"""Each validation rule of the environment configuration rejects bad values with a readable message."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import DatabaseConfig, EnvironmentConfig, NetworkConfig
from config.validation import ConfigError, daily_window_minutes, weekly_window_minutes, windows_overlap


def _database(**changes):
    return dataclasses.replace(PRODUCTION.database, **changes)


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"backup_retention_days": 6}, "database.backup_retention_days", "between 7 and 35"),
        ({"backup_retention_days": 36}, "database.backup_retention_days", "between 7 and 35"),
        ({"monitoring_interval_seconds": 10}, "database.monitoring_interval_seconds", "(1, 5)"),
        ({"monitoring_interval_seconds": 0}, "database.monitoring_interval_seconds", "(1, 5)"),
        (
            {"performance_insights_retention_days": 30},
            "database.performance_insights_retention_days",
            "multiple of 31",
        ),
        ({"backup_window": "3:00-4:00"}, "database.backup_window", "hh:mm-hh:mm"),
        ({"backup_window": "03:00-03:15"}, "database.backup_window", "at least 30 minutes"),
        ({"backup_window": "25:00-26:00"}, "database.backup_window", "00-23"),
        ({"maintenance_window": "sunday:05:00-sunday:06:00"}, "database.maintenance_window", "ddd:hh:mm"),
        ({"maintenance_window": "sun:05:00-sun:05:10"}, "database.maintenance_window", "30 minutes"),
        ({"maintenance_window": "xyz:05:00-xyz:06:00"}, "database.maintenance_window", "mon, tue"),
        ({"backup_window": "05:30-06:30"}, "database.backup_window", "overlaps the maintenance window"),
        (
            {"daily_snapshot_start": "04:30"},
            "database.daily_snapshot_start",
            "overlaps the maintenance window",
        ),
        ({"daily_snapshot_start": "02:30"}, "database.daily_snapshot_start", "overlaps the backup window"),
        ({"log_retention_days": 400 + 1}, "database.log_retention_days", "CloudWatch"),
        ({"log_retention_days": 90}, "database.log_retention_days", ">= 365"),
        ({"secret_rotation_days": 30}, "database.secret_rotation_days", "(90, 120)"),
        ({"engine_version": "17.9"}, "database.engine_version", "major version only"),
        ({"engine_version": "12"}, "database.engine_version", "major version only"),
        ({"upgrading_from_engine_version": "17"}, "database.upgrading_from_engine_version", "lower than"),
        (
            {"engine_version": "18", "upgrading_from_engine_version": "15"},
            "database.upgrading_from_engine_version",
            "one of",
        ),
        ({"engine_lifecycle_support": "extended"}, "database.engine_lifecycle_support", "open-source-rds"),
        ({"database_insights_mode": "full"}, "database.database_insights_mode", "standard"),
        (
            {"database_insights_mode": "advanced", "performance_insights_retention_days": 372},
            "database.performance_insights_retention_days",
            "at least 465",
        ),
        ({"instance_class": "db.r7g.large"}, "database.instance_class", "without the 'db.' prefix"),
        ({"max_allocated_storage_gib": 100}, "database.max_allocated_storage_gib", "must exceed"),
        ({"master_username": "postgres"}, "database.master_username", "not one of"),
        ({"instance_identifier": "Prod_DB"}, "database.instance_identifier", "lowercase"),
        ({"application_schemas": ()}, "database.application_schemas", "at least one"),
        ({"application_schemas": ("pg_catalog",)}, "database.application_schemas", "pg_"),
        ({"slow_statement_threshold_ms": 0}, "database.slow_statement_threshold_ms", "between 100 and 60000"),
    ],
)
def test_database_rules_reject_bad_values(changes, field, hint):
    with pytest.raises(ConfigError) as raised:
        _database(**changes)
    assert raised.value.field_path == field
    assert field in str(raised.value)
    assert hint in str(raised.value)


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"max_azs": 1}, "network.max_azs", "at least 2"),
        ({"nat_gateways": 0}, "network.nat_gateways", "between 1 and max_azs"),
        ({"cidr": "10.0.0.0/8"}, "network.cidr", "/16 and /24"),
        ({"existing_vpc_id": "vpc-xyz"}, "network.existing_vpc_id", "VPC id"),
        ({"flow_log_retention_days": 100}, "network.flow_log_retention_days", "not one of"),
    ],
)
def test_network_rules_reject_bad_values(changes, field, hint):
    with pytest.raises(ConfigError, match=hint) as raised:
        dataclasses.replace(PRODUCTION.network, **changes)
    assert raised.value.field_path == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"database": dataclasses.replace(PRODUCTION.database, multi_az=False)},
            "production.database.multi_az",
        ),
        (
            {"database": dataclasses.replace(PRODUCTION.database, deletion_protection=False)},
            "production.database.deletion_protection",
        ),
        (
            {"network": NetworkConfig(cidr="10.40.0.0/16", max_azs=2, nat_gateways=1)},
            "production.network.max_azs",
        ),
        (
            {"database": dataclasses.replace(PRODUCTION.database, restore_from_snapshot_identifier="snap-1")},
            "production.database.restore_from_snapshot_identifier",
        ),
        ({"account": "12345"}, "production.account"),
        ({"region": "useast1"}, "production.region"),
    ],
)
def test_production_safety_cannot_be_configured_away(changes, field):
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(PRODUCTION, **changes)
    assert raised.value.field_path == field


def test_unknown_environment_name_is_rejected():
    with pytest.raises(ConfigError, match="must be one of"):
        dataclasses.replace(STAGING, name="dev")


def test_staging_may_restore_from_a_production_snapshot():
    staging = dataclasses.replace(
        STAGING,
        database=dataclasses.replace(
            STAGING.database, restore_from_snapshot_identifier="pre-upgrade-2026-11"
        ),
    )
    assert staging.database.restore_from_snapshot_identifier == "pre-upgrade-2026-11"


def test_defaults_follow_the_ops_guide():
    database = DatabaseConfig(
        instance_identifier="x-db",
        application_secret_name="x/db",
        engine_lifecycle_support="open-source-rds-extended-support-disabled",
        database_insights_mode="standard",
    )
    assert database.backup_retention_days == 14
    assert database.secret_rotation_days == 90
    assert database.multi_az and database.deletion_protection


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRODUCTION.database.multi_az = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("daily", "weekly", "overlap"),
    [
        ("03:00-04:00", "sun:05:00-sun:06:00", False),
        ("05:30-06:30", "sun:05:00-sun:06:00", True),
        ("23:30-00:30", "mon:00:00-mon:00:30", True),  # crosses midnight into Monday
        ("23:30-00:30", "sun:23:00-mon:00:00", True),  # weekly window crosses midnight too
        ("22:00-23:00", "sat:23:00-sun:00:30", False),
        ("00:00-00:30", "sun:23:30-mon:00:00", False),  # touching is not overlapping
    ],
)
def test_window_overlap(daily, weekly, overlap):
    assert windows_overlap(daily_window_minutes(daily, "d"), weekly_window_minutes(weekly, "w")) is overlap


def test_environment_requires_database():
    with pytest.raises(TypeError):
        EnvironmentConfig(name="staging", account="111111111111", region="us-east-1")  # type: ignore[call-arg]


def test_production_never_runs_a_major_version_ahead_of_staging():
    from config.schema import check_environments

    upgraded = dataclasses.replace(
        PRODUCTION, database=dataclasses.replace(PRODUCTION.database, engine_version="18")
    )
    with pytest.raises(ConfigError) as raised:
        check_environments((STAGING, upgraded))
    assert raised.value.field_path == "production.database.engine_version"
    assert "upgrade staging first" in str(raised.value)
    staged = dataclasses.replace(STAGING, database=dataclasses.replace(STAGING.database, engine_version="18"))
    assert check_environments((staged, PRODUCTION)) == (staged, PRODUCTION)  # staging ahead is the rehearsal
