"""Configuration errors name the environment and the field, and never end in a traceback.

Field names and types are checked from the dataclass annotations (`config.validation.config_section`)
before a section's own rules run; `app.py` prints a ConfigError as one line and exits 1.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import AlertingConfig, DatabaseConfig, MigrationConfig, NetworkConfig
from config.validation import ConfigError
from tests.support.synth import REPO_ROOT


def _load_environments(tmp_path: Path, old: str, new: str) -> subprocess.CompletedProcess[str]:
    """app.py with config/environments.py edited (`old` -> `new`), in a fresh process."""
    package = tmp_path / "config"
    package.mkdir()
    for source in (REPO_ROOT / "config").glob("*.py"):
        text = source.read_text()
        if source.name == "environments.py":
            assert old in text
            text = text.replace(old, new, 1)
        (package / source.name).write_text(text)
    program = (
        f"import runpy, sys; sys.path.insert(0, {str(tmp_path)!r}); "
        f"runpy.run_path({str(REPO_ROOT / 'app.py')!r}, run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_section_error_names_its_environment(tmp_path: Path) -> None:
    # The first DatabaseConfig of environments.py is staging's.
    completed = _load_environments(
        tmp_path, "log_retention_days=365,", "log_retention_days=365, backup_retention_days=3,"
    )
    assert completed.returncode == 1
    assert completed.stderr.strip() == (
        "error: invalid configuration staging.database.backup_retention_days: 3 must be between 7 and 35 "
        "days (ops guide minimum 7, RDS max 35)"
    )
    assert "Traceback" not in completed.stderr and completed.stdout == ""


def test_a_misspelt_field_in_an_environment_is_one_line_listing_the_allowed_fields(tmp_path: Path) -> None:
    completed = _load_environments(
        tmp_path, "monitoring_interval_seconds=1,", "monitoring_intervall_seconds=1,"
    )
    assert completed.returncode == 1
    [line] = completed.stderr.strip().splitlines()
    assert line.startswith(
        "error: invalid configuration production.database.monitoring_intervall_seconds: DatabaseConfig has no "
        "field 'monitoring_intervall_seconds'; allowed: instance_identifier, "
    )
    assert "monitoring_interval_seconds" in line


def test_errors_outside_an_environment_keep_the_section_path() -> None:
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING.database, backup_retention_days=3)
    assert raised.value.field_path == "database.backup_retention_days"


def test_environment_level_rules_name_the_environment() -> None:
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING, account="12345")
    assert raised.value.field_path == "staging.account"


def test_a_misspelt_field_is_a_config_error_listing_the_allowed_fields() -> None:
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(STAGING.database, backup_retention_dayz=3)  # type: ignore[call-arg]
    assert raised.value.field_path == "database.backup_retention_dayz"
    assert "has no field 'backup_retention_dayz'; allowed: instance_identifier, engine_version" in str(
        raised.value
    )
    assert "backup_retention_days" in str(raised.value)


def test_a_one_element_tuple_without_its_comma_is_named_as_such() -> None:
    with pytest.raises(ConfigError) as raised:
        AlertingConfig(email_addresses=("oncall@revenuepilot.example"))  # type: ignore[arg-type]
    assert raised.value.field_path == "alerting.email_addresses"
    assert "is a string, not a tuple: a one-element tuple needs a trailing comma" in str(raised.value)
    assert "not an email address" not in str(raised.value)


@pytest.mark.parametrize(
    ("build", "field_path", "hint"),
    [
        (lambda: NetworkConfig(cidr="10.0.0.0/16", max_azs="3"), "network.max_azs", "of type str, not int"),  # type: ignore[arg-type]
        (lambda: MigrationConfig(task_cpu=True), "migration.task_cpu", "of type bool, not int"),
        (
            lambda: MigrationConfig(validation_queries=(("a", "SELECT 1", "x"),)),  # type: ignore[arg-type]
            "migration.validation_queries",
            "must have 2 elements",
        ),
        (
            lambda: dataclasses.replace(PRODUCTION, network={"cidr": "10.0.0.0/16"}),  # type: ignore[arg-type]
            "production.network",
            "of type dict, not NetworkConfig",
        ),
        (
            lambda: dataclasses.replace(STAGING.database, multi_az="yes"),  # type: ignore[arg-type]
            "database.multi_az",
            "of type str, not bool",
        ),
    ],
)
def test_field_types_come_from_the_annotations(build, field_path, hint) -> None:
    with pytest.raises(ConfigError) as raised:
        build()
    assert raised.value.field_path == field_path
    assert hint in str(raised.value)


def test_a_missing_required_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        DatabaseConfig(application_secret_name="x")  # type: ignore[call-arg]
    assert raised.value.field_path == "database.instance_identifier"
