"""The runtime contract's validation rules: each bad value is refused with a message naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from config.environments import PRODUCTION, STAGING
from config.schema import RuntimeContractConfig
from config.validation import ConfigError


def test_defaults_are_the_ops_guides_values():
    runtime = RuntimeContractConfig()
    assert (runtime.pgsslmode, runtime.pgsslrootcert, runtime.connect_timeout_seconds) == (
        "verify-full",
        "/etc/revenuepilot/certs/rds-ca-rsa2048-g1.pem",
        10,
    )
    assert (runtime.web_pool_size, runtime.worker_pool_size, runtime.max_overflow) == (10, 2, 5)
    assert (runtime.pool_recycle_seconds, runtime.statement_timeout_ms, runtime.healthcheck_timeout_ms) == (
        900,
        30_000,
        5_000,
    )
    assert STAGING.runtime == PRODUCTION.runtime == runtime


def test_the_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRODUCTION.runtime.web_pool_size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"web_pool_size": 0}, "runtime.web_pool_size", "at least 1"),
        ({"worker_pool_size": 0}, "runtime.worker_pool_size", "at least 1"),
        ({"max_overflow": -1}, "runtime.max_overflow", "0 or more"),
        ({"pool_recycle_seconds": 0}, "runtime.pool_recycle_seconds", "positive"),
        (
            {"statement_timeout_ms": 0, "healthcheck_timeout_ms": 1},
            "runtime.statement_timeout_ms",
            "at least 1",
        ),
        (
            {"statement_timeout_ms": 5_000},
            "runtime.statement_timeout_ms",
            "greater than healthcheck_timeout_ms",
        ),
        ({"statement_timeout_ms": 4_000}, "runtime.statement_timeout_ms", "must not be cancelled"),
        ({"healthcheck_timeout_ms": 0}, "runtime.healthcheck_timeout_ms", "at least 1 ms"),
        ({"connect_timeout_seconds": 0}, "runtime.connect_timeout_seconds", "between 1 and 60"),
        ({"connect_timeout_seconds": 61}, "runtime.connect_timeout_seconds", "between 1 and 60"),
        ({"pgsslmode": "require"}, "runtime.pgsslmode", "never"),
        ({"pgsslmode": "disable"}, "runtime.pgsslmode", "never"),
        ({"pgsslmode": "prefer"}, "runtime.pgsslmode", "never"),
        ({"pgsslmode": "allow"}, "runtime.pgsslmode", "never"),
        ({"pgsslmode": "VERIFY-FULL"}, "runtime.pgsslmode", "one of"),
        ({"pgsslrootcert": "certs/rds.pem"}, "runtime.pgsslrootcert", "absolute path"),
        ({"pgsslrootcert": "/etc/../rds.pem"}, "runtime.pgsslrootcert", "without '..'"),
    ],
)
def test_invalid_runtime_values_are_refused(changes, field, hint):
    with pytest.raises(ConfigError) as error:
        RuntimeContractConfig(**changes)
    assert error.value.field_path == field
    assert hint in str(error.value)
    assert str(error.value).startswith(f"invalid configuration {field}:")


def test_boundaries_that_are_allowed():
    RuntimeContractConfig(web_pool_size=1, worker_pool_size=1, max_overflow=0, connect_timeout_seconds=1)
    RuntimeContractConfig(connect_timeout_seconds=60, statement_timeout_ms=2, healthcheck_timeout_ms=1)


def test_verify_ca_is_allowed_outside_production_only():
    runtime = RuntimeContractConfig(pgsslmode="verify-ca")
    assert dataclasses.replace(STAGING, runtime=runtime).runtime.pgsslmode == "verify-ca"
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(PRODUCTION, runtime=runtime)
    assert error.value.field_path == "production.runtime.pgsslmode"


def test_pools_recycle_before_the_server_drops_idle_sessions():
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(STAGING, runtime=RuntimeContractConfig(pool_recycle_seconds=3600))
    assert error.value.field_path == "staging.runtime.pool_recycle_seconds"
    assert "idle_session_timeout_seconds (3600)" in str(error.value)
    shorter_server_timeout = dataclasses.replace(STAGING.database, idle_session_timeout_seconds=600)
    with pytest.raises(ConfigError):
        dataclasses.replace(STAGING, database=shorter_server_timeout)
    assert STAGING.runtime.pool_recycle_seconds < STAGING.database.idle_session_timeout_seconds


@pytest.mark.parametrize("seconds", [59, 86_401])
def test_server_idle_session_timeout_is_bounded(seconds):
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(STAGING.database, idle_session_timeout_seconds=seconds)
    assert error.value.field_path == "database.idle_session_timeout_seconds"
