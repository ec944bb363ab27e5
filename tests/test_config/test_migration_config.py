"""MigrationConfig refuses bad values, naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import PRODUCTION
from config.schema import MigrationConfig
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
