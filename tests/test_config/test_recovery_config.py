"""Recovery settings (issue 15): each bad value stops synthesis with a message naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import PRODUCTION, STAGING
from config.recovery import DR_SUBNET_MASK, RecoveryConfig
from config.validation import ConfigError, environment_scope


def _recovery(**changes):
    return dataclasses.replace(STAGING.recovery, **changes)


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"vault_lock_mode": "strict"}, "recovery.vault_lock_mode", "governance"),
        (
            {"vault_lock_mode": "compliance", "vault_lock_changeable_for_days": 2},
            "recovery.vault_lock_changeable_for_days",
            "at least 3",
        ),
        (
            {"vault_lock_mode": "compliance", "vault_lock_changeable_for_days": None},
            "recovery.vault_lock_changeable_for_days",
            "compliance",
        ),
        ({"vault_lock_changeable_for_days": 7}, "recovery.vault_lock_changeable_for_days", "governance"),
        (
            {"vault_lock_min_retention_days": 40, "vault_lock_max_retention_days": 30},
            "recovery.vault_lock_min_retention_days",
            "at most",
        ),
        ({"restore_test_schedule": "rate(7 days)"}, "recovery.restore_test_schedule", "cron"),
        ({"restore_test_max_interval_days": 0}, "recovery.restore_test_max_interval_days", "between"),
        (
            {"restore_test_validation_window_hours": 169},
            "recovery.restore_test_validation_window_hours",
            "168",
        ),
        ({"restore_test_start_window_hours": 0}, "recovery.restore_test_start_window_hours", "between"),
        ({"restore_test_instance_class": "x1e.32xlarge"}, "recovery.restore_test_instance_class", "t4g"),
        ({"expected_roles": ("App-User",)}, "recovery.expected_roles", "lowercase"),
        ({"dr_region": "mars-1"}, "recovery.dr_region", "region"),
        ({"dr_copy_retention_days": 5}, "recovery.dr_copy_retention_days", "vault lock"),
        ({"rpo_minutes": 1}, "recovery.rpo_minutes", "PITR"),
        ({"rto_minutes": 10}, "recovery.rto_minutes", "between"),
    ],
)
def test_recovery_rules_reject_bad_values(changes, field, hint):
    with pytest.raises(ConfigError) as raised:
        _recovery(**changes)
    assert raised.value.field_path == field
    assert field in str(raised.value) and hint in str(raised.value)


def test_the_dr_region_must_differ_from_the_environment_region():
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING, recovery=_recovery(dr_region=STAGING.region))
    assert raised.value.field_path == "staging.recovery.dr_region"
    assert "another region" in str(raised.value)


def test_the_vault_lock_must_admit_the_backup_plans_retention():
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(
            STAGING, recovery=_recovery(vault_lock_max_retention_days=30, dr_copy_retention_days=30)
        )
    assert raised.value.field_path == "staging.recovery.vault_lock_min_retention_days"
    assert "daily_snapshot_retention_days" in str(raised.value)


def test_the_dr_copy_is_kept_at_least_as_long_as_the_original():
    database = dataclasses.replace(STAGING.database, daily_snapshot_retention_days=60)
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING, database=database, recovery=_recovery(dr_copy_retention_days=35))
    assert raised.value.field_path == "staging.recovery.dr_copy_retention_days"


def test_production_locks_its_vaults_in_compliance_mode():
    governance = dataclasses.replace(
        PRODUCTION.recovery, vault_lock_mode="governance", vault_lock_changeable_for_days=None
    )
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(PRODUCTION, recovery=governance)
    assert raised.value.field_path == "production.recovery.vault_lock_mode"


def test_the_environments_follow_the_issue():
    assert STAGING.recovery.vault_lock_mode == "governance"
    assert PRODUCTION.recovery.vault_lock_mode == "compliance"
    assert (PRODUCTION.recovery.vault_lock_changeable_for_days or 0) >= 3
    assert "MON" in STAGING.recovery.restore_test_schedule  # weekly
    assert PRODUCTION.recovery.restore_test_schedule.startswith("cron(0 9 1 ")  # monthly
    for config in (STAGING, PRODUCTION):
        assert config.recovery.dr_region != config.region


def test_recovery_requires_a_dr_region():
    with pytest.raises(TypeError):
        RecoveryConfig()  # type: ignore[call-arg]


# --- Restore tests of the DR copies (decision 0010) ----------------------------------------------------

DR_TESTS = {
    "dr_restore_test_schedule": "cron(0 9 15 1,4,7,10 ? *)",
    "dr_availability_zones": ("us-west-2a", "us-west-2b"),
}


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"dr_restore_test_schedule": "rate(90 days)"}, "recovery.dr_restore_test_schedule", "cron"),
        # Less often than the primary tests (staging's primary interval is 8 days), never more.
        (
            {"dr_restore_test_max_interval_days": 7},
            "recovery.dr_restore_test_max_interval_days",
            "less often",
        ),
        ({"dr_restore_test_max_interval_days": 120}, "recovery.dr_restore_test_max_interval_days", "95"),
        (
            {"dr_restore_test_instance_class": "r7g.16xlarge"},
            "recovery.dr_restore_test_instance_class",
            "t4g",
        ),
        ({"dr_network_cidr": "10.90.0.0/28"}, "recovery.dr_network_cidr", "/24"),
        ({"dr_availability_zones": None}, "recovery.dr_availability_zones", "at least 2"),
        ({"dr_availability_zones": ("us-west-2a",)}, "recovery.dr_availability_zones", "two AZs"),
        (
            {"dr_availability_zones": ("us-east-1a", "us-east-1b")},
            "recovery.dr_availability_zones",
            "us-west-2",
        ),
    ],
)
def test_dr_restore_test_rules_reject_bad_values(changes, field, hint):
    with pytest.raises(ConfigError) as raised:
        _recovery(**{**DR_TESTS, **changes})
    assert raised.value.field_path == field
    assert field in str(raised.value) and hint in str(raised.value)


def test_dr_restore_tests_are_off_without_a_schedule_and_then_need_no_zones():
    recovery = _recovery(dr_restore_test_schedule=None, dr_availability_zones=None)
    assert not recovery.tests_dr_copies
    assert _recovery(**DR_TESTS).tests_dr_copies


def test_production_restore_tests_its_dr_copies():
    off = dataclasses.replace(PRODUCTION.recovery, dr_restore_test_schedule=None)
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(PRODUCTION, recovery=off)
    assert raised.value.field_path == "production.recovery.dr_restore_test_schedule"
    assert PRODUCTION.recovery.tests_dr_copies
    assert (
        PRODUCTION.recovery.dr_restore_test_max_interval_days
        > PRODUCTION.recovery.restore_test_max_interval_days
    )


def test_a_dr_error_in_an_environment_names_it():
    with pytest.raises(ConfigError) as raised, environment_scope("production"):
        dataclasses.replace(PRODUCTION.recovery, dr_restore_test_instance_class="db.huge")
    assert raised.value.field_path == "production.recovery.dr_restore_test_instance_class"


@pytest.mark.parametrize(
    ("cidr", "hint"),
    [
        ("10.90.0/24", "not an IPv4 network"),
        ("10.90.0.300/24", "not an IPv4 network"),
        ("dr-network", "not an IPv4 network"),
        ("10.90.0.0/33", "not an IPv4 network"),
        # Host bits set: the network address is 10.90.0.0/24; a VPC given this would not be what was meant.
        ("10.90.0.1/24", "no host bits"),
        ("fd00:90::/56", "IPv4"),
        ("10.0.0.0/15", "/16 or longer"),
    ],
)
def test_the_dr_network_cidr_must_be_an_ipv4_network(cidr, hint):
    with pytest.raises(ConfigError) as raised, environment_scope("production"):
        _recovery(**DR_TESTS, dr_network_cidr=cidr)
    assert raised.value.field_path == "production.recovery.dr_network_cidr"
    assert hint in str(raised.value) and repr(cidr) in str(raised.value)


def test_the_dr_network_holds_two_tiers_of_subnets_in_every_configured_zone():
    three_zones = ("us-west-2a", "us-west-2b", "us-west-2c")
    # 2 tiers x 3 zones = 6 subnets of /26: a /24 holds only 4.
    with pytest.raises(ConfigError) as raised, environment_scope("production"):
        _recovery(**{**DR_TESTS, "dr_availability_zones": three_zones}, dr_network_cidr="10.90.0.0/24")
    assert raised.value.field_path == "production.recovery.dr_network_cidr"
    message = str(raised.value)
    assert f"6 subnets of /{DR_SUBNET_MASK}" in message and "/23 or shorter" in message
    assert _recovery(**{**DR_TESTS, "dr_availability_zones": three_zones}, dr_network_cidr="10.90.0.0/23")
    assert _recovery(**DR_TESTS, dr_network_cidr="10.90.4.0/24")  # two zones: exactly four /26


def test_the_dr_network_construct_uses_the_validated_subnet_mask():
    from constructs.disaster_recovery_network import SUBNET_MASK

    assert SUBNET_MASK == DR_SUBNET_MASK
