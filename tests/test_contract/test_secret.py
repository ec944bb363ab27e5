"""contract.secret: the one parser of the application and master secrets, and the shared names."""

from __future__ import annotations

import json
import re

import pytest

from contract.auth import WRONG_PASSWORD_SQLSTATES, is_wrong_password, sqlstate_of
from contract.compliance import MINIMUM_REASON_LENGTH, NAG_PACKS, REGULATORY_PACKS, reason_problem
from contract.names import APPLICATION_ROLES, state_machine_name
from contract.secret import AppSecret, DatabaseLogin, SecretFormatError, parse_app_secret, parse_master_secret

VALUE = "Sup3r-secret.value"
SECRET = {
    "host": "db.example",
    "port": 5432,
    "database": "revenuepilot",
    "migration": {"username": "migration", "password": VALUE + "-m"},
    "app_user": {"username": "app_user", "password": VALUE + "-a"},
    "rotatedAt": "2026-01-01T00:00:00Z",
}


def _without_values(error: BaseException) -> None:
    assert VALUE not in str(error) and VALUE not in repr(error)
    assert error.__cause__ is None


def test_a_good_secret_parses_and_serializes_back():
    secret = parse_app_secret(json.dumps(SECRET))
    assert json.loads(secret.serialize()) == SECRET
    assert secret.login("migration") == DatabaseLogin(
        host="db.example", port=5432, database="revenuepilot", username="migration", password=VALUE + "-m"
    )
    assert AppSecret.parse(json.dumps(SECRET)) == secret
    assert VALUE not in repr(secret) and VALUE not in str(secret.login("app_user"))
    assert VALUE not in repr(secret.login("app_user"))


def test_a_string_port_is_accepted():
    assert parse_app_secret(json.dumps({**SECRET, "port": "5433"})).port == 5433


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("host"), "'host'"),
        (lambda d: d.pop("database"), "'database'"),
        (lambda d: d.__setitem__("port", VALUE), "'port'"),
        (lambda d: d.__setitem__("port", True), "'port'"),
        (lambda d: d.pop("migration"), "'migration'"),
        (lambda d: d.__setitem__("app_user", VALUE), "'app_user'"),
        (lambda d: d["migration"].pop("password"), "'migration.password'"),
        (lambda d: d["app_user"].__setitem__("password", 42), "'app_user.password'"),
        (lambda d: d["app_user"].__setitem__("username", ""), "'app_user.username'"),
        (lambda d: d.__setitem__("rotatedAt", {"v": VALUE}), "'rotatedAt'"),
    ],
)
def test_malformed_or_missing_fields_are_named_never_echoed(mutate, field):
    data = json.loads(json.dumps(SECRET))
    mutate(data)
    with pytest.raises(SecretFormatError, match=re.escape(field)) as raised:
        parse_app_secret(json.dumps(data))
    _without_values(raised.value)


@pytest.mark.parametrize(
    "text",
    [json.dumps(SECRET)[:-3], json.dumps([VALUE]), f'"{VALUE}"', ""],
    ids=["truncated", "array", "string", "empty"],
)
def test_documents_that_are_not_objects_are_not_echoed(text):
    for parse in (parse_app_secret, parse_master_secret):
        with pytest.raises(SecretFormatError, match=r"not JSON|not a JSON object") as raised:
            parse(text)
        _without_values(raised.value)
        assert raised.value.__suppress_context__ or raised.value.__context__ is None


def test_the_template_without_passwords_parses_only_when_asked():
    template = {k: v for k, v in SECRET.items() if k != "rotatedAt"}
    template["migration"] = {"username": "migration"}
    with pytest.raises(SecretFormatError, match=re.escape("'migration.password'")):
        parse_app_secret(json.dumps(template))
    parsed = parse_app_secret(json.dumps(template), require_passwords=False)
    assert not parsed.has_passwords
    with pytest.raises(SecretFormatError, match=re.escape("'migration.password'")):
        parsed.login("migration")
    with pytest.raises(SecretFormatError):
        parsed.serialize()


def test_master_secret():
    credentials = parse_master_secret(json.dumps({"username": "rdsmaster", "password": VALUE, "engine": "x"}))
    assert (credentials.username, credentials.password) == ("rdsmaster", VALUE)
    assert VALUE not in repr(credentials)
    with pytest.raises(SecretFormatError, match="'password'") as raised:
        parse_master_secret(json.dumps({"username": "rdsmaster", "pass": VALUE}))
    _without_values(raised.value)


def test_unknown_roles_are_refused():
    with pytest.raises(SecretFormatError, match="postgres"):
        parse_app_secret(json.dumps(SECRET)).login("postgres")
    assert {key for key in SECRET if isinstance(SECRET[key], dict)} == set(APPLICATION_ROLES)


def test_wrong_password_sqlstates_across_drivers():
    class PsycopgError(Exception):
        sqlstate = "28P01"

    class Psycopg2Error(Exception):
        pgcode = "28000"

    assert {"28P01", "28000"} == WRONG_PASSWORD_SQLSTATES
    assert is_wrong_password(PsycopgError()) and is_wrong_password(Psycopg2Error())
    assert is_wrong_password(Exception({"C": "28P01", "M": "password authentication failed"}))
    assert not is_wrong_password(Exception({"C": "3D000", "M": "database does not exist"}))
    assert not is_wrong_password(ConnectionRefusedError("refused"))
    assert sqlstate_of(Exception("plain")) is None


def test_names_and_compliance_rules():
    assert state_machine_name("staging") == "revenuepilot-staging-migration-runbook"
    assert ("AwsSolutions", *REGULATORY_PACKS) == NAG_PACKS
    assert reason_problem("x" * MINIMUM_REASON_LENGTH) is None
    assert reason_problem("  too short  " + " " * 50) is not None
