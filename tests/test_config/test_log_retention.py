"""Patient data keeps its logs six years: production, and staging whenever it is restored from a
production snapshot (issue 16). A shorter retention stops synthesis naming the environment and field."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import PHI_LOG_RETENTION_DAYS, EnvironmentConfig
from config.validation import ConfigError

SNAPSHOT = "arn:aws:rds:us-east-1:222222222222:snapshot:pre-upgrade-2026-11-20"
FIELDS = ("database.log_retention_days", "migration.log_retention_days", "network.flow_log_retention_days")


def restored_staging(**retentions: int) -> EnvironmentConfig:
    """Staging restored from a production snapshot, every retention PHI_LOG_RETENTION_DAYS unless given."""
    days = {field: retentions.get(field.replace(".", "_"), PHI_LOG_RETENTION_DAYS) for field in FIELDS}
    return dataclasses.replace(
        STAGING,
        database=dataclasses.replace(
            STAGING.database,
            restore_from_snapshot_identifier=SNAPSHOT,
            log_retention_days=days["database.log_retention_days"],
        ),
        migration=dataclasses.replace(
            STAGING.migration, log_retention_days=days["migration.log_retention_days"]
        ),
        network=dataclasses.replace(
            STAGING.network, flow_log_retention_days=days["network.flow_log_retention_days"]
        ),
    )


def test_production_keeps_every_log_six_years():
    assert PHI_LOG_RETENTION_DAYS == 2192
    assert PRODUCTION.holds_patient_data
    assert set(PRODUCTION.log_retentions()) == set(FIELDS)
    assert all(days == PHI_LOG_RETENTION_DAYS for days in PRODUCTION.log_retentions().values())


def test_staging_restored_from_production_keeps_production_log_retention():
    assert not STAGING.holds_patient_data  # staging as configured: one year is enough
    restored = restored_staging()
    assert restored.holds_patient_data
    assert restored.log_retentions() == PRODUCTION.log_retentions()


@pytest.mark.parametrize("field", FIELDS)
def test_log_retention_rules_name_the_environment_and_field(field):
    with pytest.raises(ConfigError) as raised:
        restored_staging(**{field.replace(".", "_"): 365})
    assert raised.value.field_path == f"staging.{field}"
    message = str(raised.value)
    assert (
        "365 days is shorter than 2192 days" in message and SNAPSHOT in message and "patient data" in message
    )


def test_production_cannot_shorten_its_log_retention():
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(
            PRODUCTION, migration=dataclasses.replace(PRODUCTION.migration, log_retention_days=365)
        )
    assert raised.value.field_path == "production.migration.log_retention_days"


def test_eventbridge_audit_path_needs_the_iam_events_region():
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING, region="eu-west-1")
    assert raised.value.field_path == "staging.alerting.cloudtrail_log_group_name"
    assert "us-east-1" in str(raised.value)
    assert dataclasses.replace(PRODUCTION, region="eu-west-1").region == "eu-west-1"  # CloudTrail path: fine
