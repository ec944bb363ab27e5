"""Issue 13, items 2, 4 and 5 on the runner's side, against the TLS PostgreSQL harness.

* item 2: the strict revision grammar; an option-like revision (`--help`, `-h`, `--sql`) never reaches
  Alembic and never exits 0;
* item 4: every exit of a validate run that has a task token sends SendTaskFailure (a matrix of the
  early exits: missing CA bundle, malformed secret, refused arguments, unreachable secret...);
* item 5: nothing in the secret can change DATABASE_URL's parameters (`sslmode` stays verify-full).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from contract.names import TASK_TOKEN_ENV_VAR as TASK_TOKEN_VARIABLE
from contract.secret import SecretFormatError
from migration.runner import revision as grammar
from migration.runner.alembic_command import RevisionError, alembic_argv, check_revision
from migration.runner.cli import main
from migration.runner.credentials import check_host, database_url
from tests.test_migration.conftest import ALEMBIC_INI, SPECIAL_PASSWORD, MigrationTarget

VALID = [
    "head", "heads", "base", "ae1027a6acf", "ae10", "0123456789abcdef0123456789abcdef01234567", "-1", "+2", "-999",
    "shoppingcart@head", "shoppingcart@base", "shoppingcart@ae1027a6acf", "shoppingcart@+2", "shoppingcart@-1",
    "ae1027a6acf@head", "branch_2@head", "0001", "0002",
]  # fmt: skip
INVALID = [
    "", "--help", "-h", "--sql", "-x", "-1x", "-0", "+0", "-1000", "--1", "head\n", "head ", " head", "HEAD",
    "ae1", "xyz1234", "ae1027a6acf; rm -rf /", "head;", "--tag=x", "@head", "branch@", "branch@heads",
    "a@b@head", "../x", "head -1", "a" * 65, "0" * 41, "-", "+", "$(id)", "head-1",
]  # fmt: skip
EVIL_HOST = "h/db?sslmode=disable&x="


class RecordingStepFunctions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, **kwargs: Any) -> None:
        self.calls.append(("success", kwargs))

    def send_task_failure(self, **kwargs: Any) -> None:
        self.calls.append(("failure", kwargs))


# -- item 2 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("revision", VALID)
def test_the_grammar_accepts(revision: str) -> None:
    assert check_revision(revision) == revision
    assert alembic_argv("py", "a.ini", "upgrade", revision)[-1] == revision


@pytest.mark.parametrize("revision", INVALID)
def test_the_grammar_refuses(revision: str) -> None:
    with pytest.raises(RevisionError, match="is not allowed: head, heads, base"):
        alembic_argv("py", "a.ini", "downgrade", revision)


def test_the_runner_grammar_is_the_contracts() -> None:
    """Until the runner imports contract/revision.py (branch runbook-sfn), the two must not drift."""
    contract = pytest.importorskip("contract.revision")
    assert grammar.REVISION_PATTERN == contract.REVISION_PATTERN
    assert grammar.REVISION_CHARACTERS == contract.REVISION_CHARACTERS
    assert grammar.MAX_REVISION_LENGTH == contract.MAX_REVISION_LENGTH
    for revision in (*VALID, *INVALID):
        assert grammar.is_valid_revision(revision) is contract.is_valid_revision(revision), revision


class NoSecrets:
    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the runner must stop before reading the secret")


@pytest.mark.parametrize("action", ["upgrade", "downgrade"])
@pytest.mark.parametrize("revision", ["--help", "-h", "--sql", "--help=1", "-x", "head;"])
def test_an_option_like_revision_exits_non_zero_before_anything_runs(
    action: str, revision: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    status = main(
        ["--secret-id", "arn:x", "--ca-bundle", str(ca), action, revision],
        secretsmanager=NoSecrets(),
        environ={},
    )
    captured = capsys.readouterr()
    assert status == 2, captured
    assert "usage: python -m migration.runner" not in captured.out  # no help printed as a "result"


# -- item 5 ------------------------------------------------------------------------------------------------
def _login(**overrides: Any) -> Any:
    from migration.runner.credentials import parse_migration_login

    secret = {
        "host": "db.example.internal", "port": 5432, "database": "revenuepilot",
        "migration": {"username": "migration", "password": SPECIAL_PASSWORD},
        "app_user": {"username": "app_user", "password": "unused-here"},
    }  # fmt: skip
    return dataclasses.replace(parse_migration_login(json.dumps(secret)), **overrides)


@pytest.mark.parametrize(
    "host",
    [EVIL_HOST, "h?sslmode=disable", "h#x", "h@evil", "user:pw@h", "h/x", "h x", "h%2F", "-h", "h..x", ""],
)
def test_a_host_with_url_syntax_is_refused(host: str) -> None:
    with pytest.raises(SecretFormatError, match="'host' is not a DNS name or an IP address") as error:
        database_url(_login(host=host))
    assert host not in str(error.value) or not host


@pytest.mark.parametrize(
    "host", ["localhost", "db.example.internal", "a-b.c1.rds.amazonaws.com", "127.0.0.1", "::1"]
)
def test_hosts_that_are_names_or_addresses_are_kept(host: str) -> None:
    assert check_host(host) == host


@pytest.mark.parametrize(
    "field,value",
    [
        ("database", "db?sslmode=disable&x="), ("database", "db/../x#y"),
        ("username", "u@h/db?sslmode=disable"), ("password", "p@ss?sslmode=disable&x=/#"),
    ],
)  # fmt: skip
def test_no_part_of_the_secret_changes_the_url_parameters(field: str, value: str) -> None:
    """What SQLAlchemy and libpq read from DATABASE_URL: the secret's values, and sslmode=verify-full."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import make_url

    login = _login(**{field: value})
    url = database_url(login)
    parsed = make_url(url)
    assert dict(parsed.query) == {"sslmode": "verify-full"}
    assert (parsed.host, parsed.port, parsed.database) == (login.host, login.port, login.database)
    assert (parsed.username, parsed.password) == (login.username, login.password)
    libpq = conninfo_to_dict(url)
    assert libpq["sslmode"] == "verify-full"
    assert unquote(str(libpq["dbname"])) == login.database


def test_an_unescaped_host_would_have_turned_tls_off() -> None:
    """The bug this guards against (issue 13, item 5), shown with the parser Alembic's env.py uses."""
    from sqlalchemy.engine import make_url

    naive = f"postgresql://u:p@{EVIL_HOST}:5432/db?sslmode=verify-full"
    assert make_url(naive).query["sslmode"] == "disable"


# -- item 4: the matrix ------------------------------------------------------------------------------------
def _secret(target: MigrationTarget, **changes: Any) -> str:
    document: dict[str, Any] = {
        "host": "localhost", "port": target.server.port, "database": target.database,
        "migration": {"username": target.role, "password": target.password},
        "app_user": {"username": "app_user", "password": "unused-here"},
    }  # fmt: skip
    document.update(changes)
    return json.dumps(document)


def _put_secret(target: MigrationTarget, secret_string: str) -> None:
    target.secretsmanager.put_secret_value(SecretId=target.secret_arn, SecretString=secret_string)


def _validate(
    target: MigrationTarget,
    extra: tuple[str, ...] = (),
    ca: Path | None = None,
    token_in: str = "argument",  # noqa: S107 - where the token is passed, not a token
    secret_id: str | None = None,
) -> tuple[int, list[tuple[str, dict[str, Any]]], str]:
    from io import StringIO

    sfn = RecordingStepFunctions()
    out = StringIO()
    token = ["--task-token", "token-42"] if token_in == "argument" else []
    status = main(
        [
            "--secret-id", secret_id or target.secret_arn, "--alembic-config", str(ALEMBIC_INI),
            "--ca-bundle", str(ca or target.server.ca_cert), "--connect-timeout", "3",
            "--python", sys.executable, "validate", *token, *extra,
        ],
        secretsmanager=target.secretsmanager,
        stepfunctions=sfn,
        environ={TASK_TOKEN_VARIABLE: "token-42"} if token_in == "environment" else {},
        out=out,
    )  # fmt: skip
    return status, sfn.calls, out.getvalue()


def _case_ca_missing(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    return {"ca": tmp_path / "nowhere.pem"}


def _case_ca_not_pem(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "garbage.pem").write_text("not a certificate")
    return {"ca": tmp_path / "garbage.pem"}


def _case_secret_not_json(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    _put_secret(target, "{not json " + SPECIAL_PASSWORD)
    return {}


def _case_secret_without_password(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    _put_secret(target, _secret(target, migration={"username": target.role}))
    return {}


def _case_secret_bad_port(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    _put_secret(target, _secret(target, port="fifty"))
    return {}


def _case_secret_host_with_url_syntax(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    _put_secret(target, _secret(target, host=EVIL_HOST))
    return {}


def _case_secret_missing(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    return {"secret_id": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"}


def _case_query_malformed(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    return {"extra": ("--query", "x=DELETE FROM notes")}


def _case_unknown_option(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    return {"extra": ("--bogus",)}


def _case_token_only_in_environment_and_bad_option(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    return {"extra": ("--bogus",), "token_in": "environment"}


def _case_wrong_password(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    _put_secret(target, _secret(target, migration={"username": target.role, "password": "wrong-" + "x" * 12}))
    return {}


def _case_server_unreachable(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _put_secret(target, _secret(target, port=port))
    return {}


def _case_query_fails(target: MigrationTarget, tmp_path: Path) -> dict[str, Any]:
    return {"extra": ("--query", "missing=SELECT count(*) FROM nowhere")}


EXITS = {
    "ca_missing": (_case_ca_missing, 2, "RunnerFailed", "nowhere.pem not found"),
    "ca_not_pem": (_case_ca_not_pem, 1, "ValidationFailed", "validation failed: SSLError"),
    "secret_not_json": (_case_secret_not_json, 2, "RunnerFailed", "not JSON"),
    "secret_without_password": (_case_secret_without_password, 2, "RunnerFailed", "migration"),
    "secret_bad_port": (_case_secret_bad_port, 2, "RunnerFailed", "'port'"),
    "secret_host_with_url_syntax": (_case_secret_host_with_url_syntax, 1, "ValidationFailed", "'host'"),
    "secret_missing": (_case_secret_missing, 1, "SecretUnavailable", "ResourceNotFoundException"),
    "query_malformed": (_case_query_malformed, 2, "RunnerFailed", "one SELECT"),
    "unknown_option": (_case_unknown_option, 2, "RunnerUsageError", "command line was refused"),
    "token_in_environment": (
        _case_token_only_in_environment_and_bad_option,
        2,
        "RunnerUsageError",
        "refused",
    ),
    "wrong_password": (_case_wrong_password, 1, "ValidationFailed", "validation failed"),
    "server_unreachable": (_case_server_unreachable, 1, "ValidationFailed", "validation failed"),
    "query_fails": (_case_query_fails, 1, "ValidationFailed", "SQLSTATE 42P01"),
}


@pytest.mark.postgres
@pytest.mark.parametrize("case", sorted(EXITS))
def test_every_exit_of_a_validate_run_reports_back(
    case: str, target: MigrationTarget, tmp_path: Path
) -> None:
    setup, expected_status, expected_error, cause_fragment = EXITS[case]
    status, calls, output = _validate(target, **setup(target, tmp_path))
    assert status == expected_status, output
    assert [kind for kind, _ in calls] == ["failure"], output
    failure = calls[0][1]
    assert failure["taskToken"] == "token-42"
    assert failure["error"] == expected_error
    assert cause_fragment in failure["cause"], failure
    for text in (failure["cause"], output):
        assert SPECIAL_PASSWORD not in text
        assert "wrong-xxxx" not in text


@pytest.mark.postgres
def test_a_successful_validate_run_reports_success_once(target: MigrationTarget) -> None:
    assert target.run("upgrade", "head")[0] == 0
    status, calls, output = _validate(target)
    assert status == 0, output
    assert [kind for kind, _ in calls] == ["success"]


def test_without_a_token_nothing_is_sent(tmp_path: Path) -> None:
    sfn = RecordingStepFunctions()
    status = main(
        ["--secret-id", "x", "--ca-bundle", str(tmp_path / "none.pem"), "validate"],
        stepfunctions=sfn,
        secretsmanager=NoSecrets(),
        environ={},
    )
    assert status == 2 and sfn.calls == []


def test_a_stopped_validate_run_reports_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """ECS stops a task with SIGTERM (StopTask, a timeout): the validate run still sends its failure."""
    import os
    import signal
    import time

    from migration.runner import cli

    def stopped_mid_query(*args: Any, **kwargs: Any) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the run")

    monkeypatch.setattr(cli, "_run", stopped_mid_query)
    sfn = RecordingStepFunctions()
    before = signal.getsignal(signal.SIGTERM)
    status = main(["--secret-id", "x", "validate"], stepfunctions=sfn, environ={TASK_TOKEN_VARIABLE: "t-9"})
    assert status == 143
    assert sfn.calls == [
        ("failure", {"taskToken": "t-9", "error": "RunnerStopped", "cause": "the task was stopped (SIGTERM)"})
    ]
    assert signal.getsignal(signal.SIGTERM) is before
