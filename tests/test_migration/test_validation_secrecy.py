"""Issue 13, item 3: a failed validation query must not carry patient data anywhere.

PostgreSQL quotes the offending value in many error messages (`invalid input syntax for type integer:
"<value>"`). The failure cause goes to SendTaskFailure, and from there into the execution history, the
runbook's log group and the alert e-mail; the runner's output goes to the task's log group. So the
runner reports the query's name, the SQLSTATE and a fixed text, and nothing of the server's message.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from pg8000.native import identifier, literal

from migration.runner.validation import ValidationError, failure_message, run_validation
from tests.test_migration.conftest import ALEMBIC_INI, MigrationTarget

pytestmark = pytest.mark.postgres

PHI = "Jane Roe DOB 1970-01-01 MRN 889977"
PHI_FRAGMENTS = ("Jane", "Roe", "1970-01-01", "889977", "MRN")


class RecordingStepFunctions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, **kwargs: Any) -> None:
        self.calls.append(("success", kwargs))

    def send_task_failure(self, **kwargs: Any) -> None:
        self.calls.append(("failure", kwargs))


@pytest.fixture
def planted(target: MigrationTarget) -> MigrationTarget:
    target.admin_run("CREATE TABLE patients (id integer PRIMARY KEY, name text NOT NULL, mrn text NOT NULL)")
    target.admin_run(f"INSERT INTO patients VALUES (1, {literal(PHI)}, 'MRN 889977')")  # noqa: S608
    target.admin_run(f"GRANT SELECT ON patients TO {identifier(target.role)}")
    return target


# Queries that fail with the planted value in the server's message or detail.
FAILING_QUERIES = {
    "cast_to_integer": ("SELECT CAST(name AS integer) FROM patients", "22P02"),
    "cast_to_date": ("SELECT COUNT(*) FROM patients WHERE CAST(mrn AS date) IS NULL", "22007"),
    "many_rows": ("SELECT CAST(length(name) AS integer) FROM patients UNION ALL SELECT 2", None),
    "raise_with_value": ("SELECT COUNT(*) FROM patients WHERE CAST(name AS numeric) > 0", "22P02"),
}


@pytest.mark.parametrize("name", sorted(FAILING_QUERIES))
def test_a_failed_validation_query_leaks_no_value(
    planted: MigrationTarget, name: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from migration.runner.cli import main

    sql, sqlstate = FAILING_QUERIES[name]
    sfn = RecordingStepFunctions()
    caplog.set_level(logging.DEBUG)
    status = main(
        [
            "--secret-id", planted.secret_arn, "--alembic-config", str(ALEMBIC_INI),
            "--ca-bundle", str(planted.server.ca_cert), "--connect-timeout", "5", "--python", sys.executable,
            "validate", "--query", f"{name}={sql}", "--task-token", "token-phi",
        ],
        secretsmanager=planted.secretsmanager,
        stepfunctions=sfn,
        out=None,  # the real stdout: captured below at the file-descriptor level
    )  # fmt: skip
    captured = capfd.readouterr()
    assert status == 1
    assert [kind for kind, _ in sfn.calls] == ["failure"]
    failure = sfn.calls[0][1]
    assert failure["taskToken"] == "token-phi"
    assert failure["error"] == "ValidationFailed"
    assert failure["cause"].startswith(f"validation query {name!r} ")
    if sqlstate:
        assert f"SQLSTATE {sqlstate}" in failure["cause"]
    everything = "\n".join(
        [
            failure["cause"], failure["error"], captured.out, captured.err,
            *(record.getMessage() for record in caplog.records),
            *(str(record.args) for record in caplog.records),
        ]
    )  # fmt: skip
    for fragment in PHI_FRAGMENTS:
        assert fragment not in everything, f"{fragment!r} leaked"
    assert "invalid input syntax" not in everything  # the server's message is not passed on at all
    assert failure["cause"] in captured.out  # the same fixed text is what the task logs


def test_the_message_is_the_name_sqlstate_and_a_fixed_text() -> None:
    error = Exception({"S": "ERROR", "C": "22P02", "M": f'invalid input syntax for type integer: "{PHI}"'})
    assert failure_message("phi", error) == (
        "validation query 'phi' failed: SQLSTATE 22P02, "
        "data exception (a value could not be converted or was out of range)"
    )
    forged = Exception({"C": f"22P02 {PHI}", "M": PHI})
    assert PHI not in failure_message("phi", forged)
    assert "no SQLSTATE" in failure_message("phi", ValueError(PHI))
    assert PHI not in failure_message("phi", ValueError(PHI))


def test_run_validation_raises_without_the_cause_chained(planted: MigrationTarget) -> None:
    """No `__cause__`/`__context__` that a traceback printer could render with the server's message."""
    import pg8000.native

    def connect() -> Any:
        return pg8000.native.Connection(
            planted.role, password=planted.password, host="localhost", port=planted.server.port,
            database=planted.database, ssl_context=_context(planted),
        )  # fmt: skip

    with pytest.raises(ValidationError) as raised:
        run_validation(connect, [("cast", "SELECT CAST(name AS integer) FROM patients")])
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert PHI not in str(raised.value)


def _context(target: MigrationTarget) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(target.server.ca_cert))
