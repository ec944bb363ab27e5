"""The credentials settings: the master secret's rotation period and the credentials check's interval."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import ENVIRONMENTS, PRODUCTION
from config.validation import ConfigError


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        (
            {"credentials_check_interval_minutes": 4},
            "database.credentials_check_interval_minutes",
            "between 5",
        ),
        ({"credentials_check_interval_minutes": 61}, "database.credentials_check_interval_minutes", "and 60"),
        ({"master_secret_rotation_days": 0}, "database.master_secret_rotation_days", "between 1"),
        ({"master_secret_rotation_days": 91}, "database.master_secret_rotation_days", "and 90"),
    ],
)
def test_out_of_range_credentials_settings_are_refused(changes, field, hint):
    with pytest.raises(ConfigError, match=field) as error:
        dataclasses.replace(PRODUCTION.database, **changes)
    assert hint in str(error.value)


@pytest.mark.parametrize("config", ENVIRONMENTS, ids=lambda c: c.name)
def test_environments_check_every_15_minutes_and_rotate_the_master_weekly(config):
    # Issue 11: a lasting fault is repaired or alarmed within 15 minutes; RDS's default master rotation.
    assert config.database.credentials_check_interval_minutes == 15
    assert config.database.master_secret_rotation_days == 7
