"""The database half of the access review: `python -m migration.runner access-review` against the TLS
PostgreSQL, as the (non-superuser) `migration` role, in a read-only transaction, printing no secret."""

from __future__ import annotations

import json
from typing import Any

from pg8000.native import identifier

from migration.runner import access_review
from tests.test_migration.conftest import SPECIAL_PASSWORD, MigrationTarget


def _report(output: str) -> dict[str, Any]:
    (line,) = [line for line in output.splitlines() if line.startswith(access_review.REPORT_MARKER)]
    document: dict[str, Any] = json.loads(line[len(access_review.REPORT_MARKER) :])
    return document


def _grant_application_access(target: MigrationTarget) -> str:
    """An application role with DML on a table `migration` owns, and default privileges for later tables."""
    app = f"app_{target.role}"
    admin = target.server.admin(target.database)
    try:
        admin.run("SET log_statement = 'none'")
        admin.run(f"CREATE ROLE {identifier(app)} LOGIN")
        admin.run(f"GRANT {identifier(target.role)} TO CURRENT_USER")
        admin.run(f"SET ROLE {identifier(target.role)}")
        admin.run("CREATE TABLE patients (id serial PRIMARY KEY, name text)")
        admin.run(f"GRANT USAGE ON SCHEMA public TO {identifier(app)}")
        admin.run(f"GRANT SELECT, INSERT ON patients TO {identifier(app)}")
        admin.run(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {identifier(app)}"
        )
    finally:
        admin.close()
    return app


def test_access_review_reports_roles_privileges_and_rotation_without_secrets(target: MigrationTarget) -> None:
    app = _grant_application_access(target)
    status, output = target.run("access-review")
    assert status == 0, output
    report = _report(output)
    database = report["database"]
    assert database["database"] == target.database
    assert database["collected_as"] == target.role  # the migration role, not a superuser

    roles = {role["name"]: role for role in database["roles"]}
    assert roles[target.role]["can_login"] and "CANLOGIN" in roles[target.role]["attributes"]
    assert roles["postgres"]["attributes"][0] == "SUPER"
    assert not any(name.startswith("pg_") for name in roles)

    (public,) = [schema for schema in database["schemas"] if schema["schema"] == "public"]
    objects = {(p["kind"], p["grantee"], p["privilege"]): p["objects"] for p in public["object_privileges"]}
    assert objects[("table", app, "SELECT")] == 1 and objects[("table", app, "INSERT")] == 1
    assert ("table", app, "DELETE") not in objects
    assert objects[("sequence", target.role, "USAGE")] == 1  # the owner's implicit privileges
    assert {"grantee": app, "privilege": "USAGE", "grantable": False} in public["schema_privileges"]

    defaults = {
        (d["owner"], d["schema"], d["kind"], d["grantee"], d["privilege"])
        for d in database["default_privileges"]
    }
    assert (target.role, "public", "table", app, "DELETE") in defaults
    assert any(m["member"] == "postgres" or m["role"] == target.role for m in database["memberships"])
    assert database["pgaudit"]["loaded"] in (True, False)

    assert report["app_secret"] == {
        "rotated_at": "2025-01-01T00:00:00Z",
        "usernames": {"migration": target.role, "app_user": "app_" + target.role.removeprefix("migration_")},
    }
    for secret in (SPECIAL_PASSWORD, "unused-here"):
        assert secret not in output


class _Recorder:
    """A connection that records statements and answers every query with what `rows` says."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.statements: list[str] = []

    def run(self, sql: str, **params: Any) -> Any:
        self.statements.append(" ".join(sql.split()))
        return self.inner.run(sql, **params)


def test_collection_reads_one_read_only_snapshot_and_rolls_back(target: MigrationTarget) -> None:
    connection = target.server.connect(target.role, target.password, database=target.database)
    try:
        recorder = _Recorder(connection)
        access_review.collect(recorder)
    finally:
        connection.close()
    assert recorder.statements[0] == "START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
    assert recorder.statements[-1] == "ROLLBACK"
    assert not any(
        s.split()[0] in ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "GRANT")
        for s in recorder.statements
    )


def test_secret_metadata_keeps_only_rotation_time_and_usernames() -> None:
    secret = json.dumps(
        {
            "host": "h",
            "port": 5432,
            "database": "revenuepilot",
            "migration": {"username": "migration", "password": "pw-1"},
            "app_user": {"username": "app_user", "password": "pw-2"},
            "rotatedAt": "2026-11-26T04:00:00Z",
        }
    )
    metadata = access_review.secret_metadata(secret)
    assert metadata == {
        "rotated_at": "2026-11-26T04:00:00Z",
        "usernames": {"migration": "migration", "app_user": "app_user"},
    }
    assert access_review.secret_metadata("not json") == {"rotated_at": None, "usernames": {}}
