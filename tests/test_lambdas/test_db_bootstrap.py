"""The bootstrap custom resource against a real (non-superuser master, TLS-only) PostgreSQL."""

from __future__ import annotations

import re

import pg8000.native
import pytest

from lambdas.db_bootstrap.bootstrap import BootstrapProperties, physical_resource_id
from lambdas.db_bootstrap.handler import on_event

pytestmark = pytest.mark.postgres


def _sqlstate(exc: pg8000.native.DatabaseError) -> str:
    return str(exc.args[0]["C"])


def test_master_is_not_a_superuser(deployment):
    admin = deployment.admin()
    try:
        rows = admin.run(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = :r",
            r=deployment.database.master_user,
        )
    finally:
        admin.close()
    assert rows == [[False, True, True]]


def test_create_generates_passwords_and_roles(deployment, lambda_context):
    result = on_event(deployment.bootstrap_event("Create"), lambda_context)

    assert result == {"PhysicalResourceId": physical_resource_id(deployment.app_secret_arn)}
    secret = deployment.current()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", secret["rotatedAt"])
    migration_pw, app_pw = secret["migration"]["password"], secret["app_user"]["password"]
    assert len(migration_pw) == 40 and len(app_pw) == 40 and migration_pw != app_pw
    assert deployment.can_login(deployment.migration_role, migration_pw)
    assert deployment.can_login(deployment.app_role, app_pw)
    admin = deployment.admin()
    try:
        rows = admin.run(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, left(rolpassword, 14) "
            "FROM pg_authid WHERE rolname IN (:m, :a) ORDER BY rolname",
            m=deployment.migration_role,
            a=deployment.app_role,
        )
        owner = admin.run("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'")
    finally:
        admin.close()
    assert [r[1:] for r in rows] == [[False, False, False, True, "SCRAM-SHA-256$"]] * 2
    assert owner == [[deployment.migration_role]]


def test_rerun_and_update_are_idempotent(deployment, lambda_context):
    first = on_event(deployment.bootstrap_event("Create"), lambda_context)
    secret = deployment.current()
    versions = len(deployment.stages())

    again = on_event(deployment.bootstrap_event("Create"), lambda_context)
    update = on_event(deployment.bootstrap_event("Update", Schemas=["public", "billing"]), lambda_context)

    assert first == again == update
    assert deployment.current() == secret  # passwords kept, no new secret version
    assert len(deployment.stages()) == versions
    assert deployment.can_login(deployment.migration_role, secret["migration"]["password"])
    assert deployment.can_login(deployment.app_role, secret["app_user"]["password"])
    conn = deployment.connect_as(deployment.migration_role, secret["migration"]["password"])
    try:
        conn.run("CREATE TABLE billing.invoices (id bigserial PRIMARY KEY)")
    finally:
        conn.close()
    app = deployment.connect_as(deployment.app_role, secret["app_user"]["password"])
    try:
        app.run("INSERT INTO billing.invoices DEFAULT VALUES")
        assert app.run("SELECT count(*) FROM billing.invoices") == [[1]]
    finally:
        app.close()


def test_delete_keeps_roles_and_needs_no_database(deployment, lambda_context, monkeypatch, tmp_path):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    secret = deployment.current()
    monkeypatch.setenv("PGSSLROOTCERT", str(tmp_path / "missing.pem"))

    event = deployment.bootstrap_event("Delete")
    assert on_event(event, lambda_context) == {"PhysicalResourceId": event["PhysicalResourceId"]}

    monkeypatch.setenv("PGSSLROOTCERT", str(deployment.server.ca_cert))
    assert deployment.can_login(deployment.migration_role, secret["migration"]["password"])
    assert deployment.can_login(deployment.app_role, secret["app_user"]["password"])


def test_privilege_model(deployment, lambda_context):
    on_event(deployment.bootstrap_event("Create"), lambda_context)
    secret = deployment.current()
    migration = deployment.connect_as(deployment.migration_role, secret["migration"]["password"])
    app = deployment.connect_as(deployment.app_role, secret["app_user"]["password"])
    try:
        # migration runs DDL after bootstrap: default privileges must cover the new table and sequence.
        migration.run("CREATE TABLE public.accounts (id serial PRIMARY KEY, name text NOT NULL)")
        app.run("INSERT INTO public.accounts (name) VALUES ('a')")
        app.run("UPDATE public.accounts SET name = 'b'")
        assert app.run("SELECT name FROM public.accounts") == [["b"]]
        app.run("SELECT nextval('public.accounts_id_seq')")
        app.run("DELETE FROM public.accounts")

        forbidden = [
            "CREATE TABLE public.sneaky (id int)",
            "DROP TABLE public.accounts",
            "ALTER TABLE public.accounts ADD COLUMN x int",
            "TRUNCATE public.accounts",
            "CREATE SCHEMA sneaky",
            "CREATE EXTENSION pgcrypto",
            "ALTER SCHEMA public RENAME TO other",
        ]
        for statement in forbidden:
            with pytest.raises(pg8000.native.DatabaseError) as excinfo:
                app.run(statement)
            assert _sqlstate(excinfo.value) == "42501", statement  # insufficient_privilege

        assert app.run("SELECT has_schema_privilege('public', 'CREATE')") == [[False]]
        assert app.run("SELECT has_database_privilege(current_database(), 'CREATE')") == [[False]]
        # migration owns the schema but cannot manage extensions either (no CREATE on the database).
        with pytest.raises(pg8000.native.DatabaseError) as excinfo:
            migration.run("CREATE EXTENSION pgcrypto")
        assert _sqlstate(excinfo.value) == "42501"
    finally:
        migration.close()
        app.close()


def test_properties_validation_and_unknown_properties():
    props = BootstrapProperties.from_event(
        {"MasterSecretArn": "m", "AppSecretArn": "a", "ServiceToken": "x", "SomethingNew": "y"}
    )
    assert props.schemas == ("public",)
    with pytest.raises(ValueError, match="AppSecretArn"):
        BootstrapProperties.from_event({"MasterSecretArn": "m"})
    with pytest.raises(ValueError, match="reserved"):
        BootstrapProperties.from_event(
            {"MasterSecretArn": "m", "AppSecretArn": "a", "Schemas": ["pg_catalog"]}
        )
    assert physical_resource_id("arn:a") == physical_resource_id("arn:a") != physical_resource_id("arn:b")


def test_endpoint_comes_from_the_resource_properties_and_passwords_survive_a_move(deployment, lambda_context):
    """CloudFormation's secret holds no endpoint (a template change would wipe the passwords)."""
    import json

    template = {k: v for k, v in deployment.current().items() if k not in ("host", "port")}
    deployment.client.put_secret_value(SecretId=deployment.app_secret_arn, SecretString=json.dumps(template))

    on_event(
        deployment.bootstrap_event("Create", Endpoint="localhost", Port=str(deployment.server.port)),
        lambda_context,
    )
    first = deployment.current()
    assert (first["host"], first["port"]) == ("localhost", deployment.server.port)
    assert deployment.can_login(deployment.app_role, first["app_user"]["password"])

    # A replaced or restored instance: new endpoint, same passwords (no password-less version).
    on_event(
        deployment.bootstrap_event("Update", Endpoint="127.0.0.1", Port=str(deployment.server.port)),
        lambda_context,
    )
    moved = deployment.current()
    assert moved["host"] == "127.0.0.1"
    assert (moved["migration"], moved["app_user"]) == (first["migration"], first["app_user"])
