"""pgAudit as the parameter group configures it, against a real PostgreSQL with the extension loaded.

The npm PostgreSQL 17 the other tests prefer has no pgAudit: these tests run Debian's PostgreSQL 15 with
`postgresql-15-pgaudit` (`.ci/run` installs it), started with the production parameter group's settings
including `shared_preload_libraries=pg_stat_statements,pgaudit` (tests/support/postgres.py, `pgaudit=True`).
The bootstrap sets up the audit role as the RDS-like (non-superuser) master; then:

- a role change and a DDL statement are audited (`AUDIT: SESSION,...,ROLE|DDL,...`);
- an application INSERT of PHI-like values leaves no value in the log (bind parameters, no object audit of
  the application role, `pgaudit.log_parameter = 0`);
- an ad-hoc read by a person is object-audited (`AUDIT: OBJECT,...`) by statement, without values;
- a password change (the rotation's SCRAM verifier) leaves no plaintext password in the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pg8000.native
import pytest
from pg8000.native import identifier

from config.environments import PRODUCTION
from config.parameter_group import PGAUDIT_SETTINGS, parameter_group_settings
from contract.names import AUDIT_ROLE
from lambdas.common.roles import set_role_password
from lambdas.db_bootstrap.handler import on_event
from tests.support.postgres import PostgresServer, require_pgaudit_binaries, running_server
from tests.test_lambdas.conftest import Deployment, make_deployment

pytestmark = pytest.mark.postgres

PATIENT = "Jane Q. Testpatient"
DIAGNOSIS = "E11.9 type 2 diabetes, MRN 00424242"


@pytest.fixture(scope="module")
def pgaudit_server() -> Iterator[PostgresServer]:
    with running_server(require_pgaudit_binaries(), tls=True, pgaudit=True) as server:
        yield server


@pytest.fixture
def audited(
    pgaudit_server: PostgresServer, secretsmanager: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> Deployment:
    """A bootstrapped deployment on the pgAudit server, with a patient table `migration` owns."""
    deployment = make_deployment(pgaudit_server, secretsmanager, monkeypatch)
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    secret = deployment.current()
    migration = deployment.connect_as(deployment.migration_role, secret["migration"]["password"])
    try:
        migration.run("CREATE TABLE patients (id serial PRIMARY KEY, name text NOT NULL, diagnosis text)")
    finally:
        migration.close()
    return deployment


def _log_after(server: PostgresServer, mark: int) -> str:
    return server.server_log()[mark:]


def _master(deployment: Deployment) -> pg8000.native.Connection:
    return deployment.connect_as(deployment.database.master_user, deployment.database.master_password)


def test_the_server_runs_the_parameter_group_s_pgaudit_settings(audited: Deployment) -> None:
    connection = _master(audited)
    try:
        assert connection.run("SELECT extname FROM pg_extension WHERE extname = 'pgaudit'") == [["pgaudit"]]
        for name, value in PGAUDIT_SETTINGS.items():
            if name.startswith("pgaudit."):
                shown = connection.run("SELECT current_setting(:name)", name=name)[0][0]
                assert shown in (value, {"0": "off", "1": "on"}.get(value)), name
    finally:
        connection.close()
    assert (
        parameter_group_settings(PRODUCTION.database)["shared_preload_libraries"]
        == "pg_stat_statements,pgaudit"
    )


def test_bootstrap_creates_the_extension_and_the_audit_role(audited: Deployment) -> None:
    admin = audited.admin()
    try:
        role = admin.run("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r", r=AUDIT_ROLE)
        grants = admin.run(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = :r AND table_name = 'patients' ORDER BY 1",
            r=AUDIT_ROLE,
        )
        settings = admin.run(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            "WHERE r.rolname IN (:m, :a) ORDER BY 1",
            m=audited.migration_role,
            a=audited.app_role,
        )
    finally:
        admin.close()
    assert role == [[False]]  # NOLOGIN: nobody logs in as the audit role
    assert [g[0] for g in grants] == ["DELETE", "INSERT", "SELECT", "UPDATE"]  # default privileges reached it
    assert sorted(name for name, _ in settings) == sorted([audited.app_role, audited.migration_role])
    assert all(config == ["pgaudit.role="] for _, config in settings)


def test_role_changes_and_ddl_are_audited(audited: Deployment) -> None:
    mark = len(audited.server.server_log())
    connection = _master(audited)
    try:
        connection.run("CREATE ROLE audit_probe_reader NOLOGIN")
        connection.run("GRANT SELECT ON patients TO audit_probe_reader")
        connection.run("CREATE TABLE audit_probe (id int)")
        connection.run("DROP TABLE audit_probe")
        connection.run("REVOKE SELECT ON patients FROM audit_probe_reader")
        connection.run("DROP ROLE audit_probe_reader")
    finally:
        connection.close()
    log = _log_after(audited.server, mark)
    assert re.search(
        r"AUDIT: SESSION,\d+,\d+,ROLE,CREATE ROLE,,,CREATE ROLE audit_probe_reader NOLOGIN", log
    ), log
    assert re.search(r"AUDIT: SESSION,\d+,\d+,ROLE,GRANT,", log), log
    assert re.search(r"AUDIT: SESSION,\d+,\d+,DDL,CREATE TABLE,TABLE,public.audit_probe,", log), log
    assert re.search(r"AUDIT: SESSION,\d+,\d+,DDL,DROP TABLE,", log), log


def test_application_insert_leaves_no_value_in_the_log(audited: Deployment) -> None:
    password = audited.current()["app_user"]["password"]
    mark = len(audited.server.server_log())
    connection = audited.connect_as(audited.app_role, password)
    try:
        connection.run(
            "INSERT INTO patients (name, diagnosis) VALUES (:name, :diagnosis)",
            name=PATIENT,
            diagnosis=DIAGNOSIS,
        )
        assert connection.run("SELECT name FROM patients WHERE name = :name", name=PATIENT) == [[PATIENT]]
        # A failing statement with the values as bind parameters: not logged either.
        with pytest.raises(pg8000.native.DatabaseError):
            connection.run(
                "INSERT INTO patients (id, name) VALUES (:id, :name)", id="not-a-number", name=PATIENT
            )
    finally:
        connection.close()
    log = _log_after(audited.server, mark)
    assert "connection authorized: user=" + audited.app_role in log  # the log did record the session
    for value in (PATIENT, "Testpatient", DIAGNOSIS, "00424242", password):
        assert value not in log
    assert "AUDIT: OBJECT" not in log  # the application role is exempt from object auditing
    assert "AUDIT: SESSION" not in log  # no read/write session audit


def test_ad_hoc_reads_by_people_are_object_audited_without_values(audited: Deployment) -> None:
    app_password = audited.current()["app_user"]["password"]
    app = audited.connect_as(audited.app_role, app_password)
    try:
        app.run(
            "INSERT INTO patients (name, diagnosis) VALUES (:name, :diagnosis)",
            name=PATIENT,
            diagnosis=DIAGNOSIS,
        )
    finally:
        app.close()
    mark = len(audited.server.server_log())
    person = _master(audited)  # anyone who is not the application or migration role
    try:
        person.run(f"SET ROLE {identifier(audited.migration_role)}")  # reading as the owner: still audited
        person.run("SELECT diagnosis FROM patients WHERE name = :name", name=PATIENT)
    finally:
        person.close()
    log = _log_after(audited.server, mark)
    assert re.search(
        r"AUDIT: OBJECT,\d+,\d+,READ,SELECT,TABLE,public.patients,SELECT diagnosis FROM patients WHERE name = \$1",
        log,
    ), log
    for value in (PATIENT, DIAGNOSIS):
        assert value not in log


def test_password_change_leaves_no_plaintext_in_the_log(audited: Deployment) -> None:
    new_password = "Plaintext-Rotation-Password-4711"
    mark = len(audited.server.server_log())
    connection = _master(audited)
    try:
        set_role_password(connection, audited.app_role, new_password)  # what bootstrap and rotation send
    finally:
        connection.close()
    log = _log_after(audited.server, mark)
    assert re.search(r"AUDIT: SESSION,\d+,\d+,ROLE,ALTER ROLE,", log), log  # the change itself is audited
    assert new_password not in log
    assert audited.can_login(audited.app_role, new_password)
