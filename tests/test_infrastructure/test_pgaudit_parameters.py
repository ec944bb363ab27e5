"""pgAudit in the synthesized parameter group of both environments (issue 16; behaviour against a real
server: tests/test_lambdas/test_pgaudit.py)."""

from __future__ import annotations

from config.parameter_group import PGAUDIT_SETTINGS
from contract.names import AUDIT_ROLE
from tools.replacement_guard import DYNAMIC_POSTGRES_PARAMETERS, STATIC_POSTGRES_PARAMETERS

REQUIRED = {
    # Loaded at start-up; pg_stat_statements stays (RDS's default, Performance Insights' SQL statistics).
    "shared_preload_libraries": "pg_stat_statements,pgaudit",
    "pgaudit.log": "role,ddl",
    "pgaudit.log_parameter": "0",
    "pgaudit.log_catalog": "0",
    "pgaudit.log_relation": "1",
    "pgaudit.role": "rds_pgaudit",
}


def test_parameter_group_loads_and_configures_pgaudit(env):
    (group,) = env.resources("Data", "AWS::RDS::DBParameterGroup").values()
    parameters = group["Properties"]["Parameters"]
    assert {name: parameters.get(name) for name in REQUIRED} == REQUIRED
    # Never the application's reads and writes, never SET noise, never values.
    classes = set(parameters["pgaudit.log"].split(","))
    assert not classes & {"read", "write", "all", "misc", "misc_set", "function"}


def test_the_audit_role_is_the_one_the_bootstrap_creates():
    assert PGAUDIT_SETTINGS["pgaudit.role"] == AUDIT_ROLE


def test_only_loading_the_library_needs_a_reboot():
    assert "shared_preload_libraries" in STATIC_POSTGRES_PARAMETERS
    assert {name for name in PGAUDIT_SETTINGS if name.startswith("pgaudit.")} <= DYNAMIC_POSTGRES_PARAMETERS


def test_readme_names_the_parameter_group_whose_reboot_is_allowed(env):
    """The README's ALLOW_REPLACE line for pgAudit's reboot names the real parameter group."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (logical_id,) = env.resources("Data", "AWS::RDS::DBParameterGroup")
    assert f"{env.config.stage_id}/Data/{logical_id}" in readme
