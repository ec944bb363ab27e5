"""MigrationConfig refuses bad values, naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import MigrationConfig, check_environments
from config.validation import ConfigError


@pytest.mark.parametrize(
    ("changes", "field_path"),
    [
        ({"backend_image_repository": "Not A Repo"}, "migration.backend_image_repository"),
        ({"backend_image_tag": None}, "migration.backend_image_tag"),
        ({"backend_image_tag": "latest"}, "migration.backend_image_tag"),
        ({"backend_image_tag": None, "backend_image_digest": "sha256:abc"}, "migration.backend_image_digest"),
        ({"alembic_config_path": "../alembic.ini"}, "migration.alembic_config_path"),
        ({"validation_queries": ()}, "migration.validation_queries"),
        ({"validation_queries": (("x", "DELETE FROM notes"),)}, "migration.validation_queries"),
        ({"validation_queries": (("x", "SELECT 1; DROP TABLE notes"),)}, "migration.validation_queries"),
        (
            {"validation_decrease_tolerance_percent": (("nope", 5),)},
            "migration.validation_decrease_tolerance_percent",
        ),
        (
            {"validation_decrease_tolerance_percent": (("encounters", 101),)},
            "migration.validation_decrease_tolerance_percent",
        ),
        (
            {"validation_decrease_tolerance_percent": (("encounters", -1),)},
            "migration.validation_decrease_tolerance_percent",
        ),
        ({"task_cpu": 300}, "migration.task_cpu"),
        ({"task_memory_mib": 512}, "migration.task_memory_mib"),
        ({"log_retention_days": 30}, "migration.log_retention_days"),
        ({"minimum_backup_retention_days": 3}, "migration.minimum_backup_retention_days"),
        ({"max_restore_lag_minutes": 600}, "migration.max_restore_lag_minutes"),
        ({"migration_timeout_minutes": 1}, "migration.migration_timeout_minutes"),
    ],
)
def test_invalid_values_name_the_field(changes: dict[str, object], field_path: str) -> None:
    with pytest.raises(ConfigError) as error:
        MigrationConfig(**changes)  # type: ignore[arg-type]
    assert error.value.field_path == field_path


def test_image_reference_by_tag_or_digest() -> None:
    assert MigrationConfig().backend_image_reference == "revenuepilot/backend:release"
    digest = "sha256:" + "a" * 64
    pinned = MigrationConfig(backend_image_tag=None, backend_image_digest=digest)
    assert pinned.backend_image_reference == f"revenuepilot/backend@{digest}"


def test_precheck_minimum_cannot_exceed_the_database_retention() -> None:
    with pytest.raises(ConfigError, match="could never pass"):
        dataclasses.replace(PRODUCTION, migration=MigrationConfig(minimum_backup_retention_days=30))


def test_decrease_tolerance_defaults_to_none() -> None:
    config = MigrationConfig(validation_decrease_tolerance_percent=(("recent_suggestions", 10),))
    assert config.decrease_tolerance_percent("recent_suggestions") == 10
    assert config.decrease_tolerance_percent("encounters") == 0


# --- the runbook's records (issue 13, item 7) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field_path"),
    [
        ({"evidence_retention_mode": "legal-hold"}, "migration.evidence_retention_mode"),
        ({"evidence_retention_days": 0}, "migration.evidence_retention_days"),
        ({"require_applied_in": "qa"}, "migration.require_applied_in"),
        ({"applied_record_reader_accounts": ("2222",)}, "migration.applied_record_reader_accounts"),
    ],
)
def test_invalid_record_settings_name_the_field(changes: dict[str, object], field_path: str) -> None:
    with pytest.raises(ConfigError) as error:
        MigrationConfig(**changes)  # type: ignore[arg-type]
    assert error.value.field_path == field_path


def test_the_environments_keep_evidence_as_required() -> None:
    assert (PRODUCTION.migration.evidence_retention_mode, PRODUCTION.migration.evidence_retention_days) == (
        "compliance",
        2192,
    )
    assert STAGING.migration.evidence_retention_mode == "governance"
    assert PRODUCTION.migration.require_applied_in == "staging"
    assert PRODUCTION.migration.requires_exact_revision and not STAGING.migration.requires_exact_revision
    assert STAGING.migration.applied_record_reader_accounts == (PRODUCTION.account,)


@pytest.mark.parametrize(
    ("changes", "field_path", "message"),
    [
        (
            {"evidence_retention_mode": "governance"},
            "production.migration.evidence_retention_mode",
            "must be 'compliance' in production",
        ),
        (
            {"evidence_retention_days": 2191},
            "production.migration.evidence_retention_days",
            "2191 days is shorter than 2192 days",
        ),
        (
            {"require_applied_in": None},
            "production.migration.require_applied_in",
            "must name the environment",
        ),
        ({"require_applied_in": "production"}, "production.migration.require_applied_in", "must name"),
    ],
)
def test_production_keeps_six_years_of_locked_evidence_and_requires_staging_first(
    changes: dict[str, object], field_path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(PRODUCTION, migration=dataclasses.replace(PRODUCTION.migration, **changes))  # type: ignore[arg-type]
    assert error.value.field_path == field_path
    assert str(error.value).startswith(f"invalid configuration {field_path}: ")
    assert message in str(error.value)


def test_the_first_environment_must_let_production_read_its_records() -> None:
    staging = dataclasses.replace(
        STAGING, migration=dataclasses.replace(STAGING.migration, applied_record_reader_accounts=())
    )
    with pytest.raises(ConfigError) as error:
        check_environments((staging, PRODUCTION))
    assert error.value.field_path == "staging.migration.applied_record_reader_accounts"
    assert "must include production's account 222222222222" in str(error.value)
    with pytest.raises(ConfigError) as error:
        check_environments((PRODUCTION,))
    assert error.value.field_path == "production.migration.require_applied_in"
    assert "must be another configured environment" in str(error.value)
