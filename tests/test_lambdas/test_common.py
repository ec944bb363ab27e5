"""Unit tests of the small shared modules (no database)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import ssl
import string

import boto3
import pytest
from moto import mock_aws

from contract.names import PASSWORD_EXCLUDED_CHARACTERS
from contract.secret import AppSecret, SecretFormatError, parse_master_secret, utc_timestamp
from lambdas.common.config import parse_schema_list
from lambdas.common.passwords import generate_password
from lambdas.common.scram import scram_sha256_verifier
from lambdas.common.tls import DEFAULT_CA_BUNDLE, TlsConfigurationError, build_ssl_context, ca_bundle_path

SECRET = {
    "host": "db.example.com",
    "port": 5432,
    "database": "revenuepilot",
    "migration": {"username": "migration", "password": "m-secret-value"},
    "app_user": {"username": "app_user", "password": "a-secret-value"},
    "rotatedAt": "2025-01-01T00:00:00Z",
}


def test_scram_verifier_format_and_keys():
    salt = bytes(range(16))
    verifier = scram_sha256_verifier("pencil", salt=salt)
    match = re.fullmatch(r"SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)", verifier)
    assert match is not None
    assert base64.b64decode(match[1]) == salt
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(match[2]) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(match[3]) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert scram_sha256_verifier("pencil") != scram_sha256_verifier("pencil")  # random salt


def test_scram_rejects_non_ascii_without_echo():
    with pytest.raises(ValueError) as excinfo:
        scram_sha256_verifier("pässwörd")
    assert "pässwörd" not in str(excinfo.value)


def test_app_secret_round_trip_and_repr():
    secret = AppSecret.parse(json.dumps(SECRET))
    assert json.loads(secret.serialize()) == SECRET
    assert "secret-value" not in repr(secret)


def test_app_secret_template_without_passwords():
    template = {k: v for k, v in SECRET.items() if k != "rotatedAt"}
    template["migration"] = {"username": "migration"}
    parsed = AppSecret.parse(json.dumps(template), require_passwords=False)
    assert not parsed.has_passwords
    with pytest.raises(SecretFormatError):
        parsed.serialize()
    filled = parsed.with_passwords(migration="x1", app_user="y1", rotated_at="2025-02-02T00:00:00Z")
    assert json.loads(filled.serialize())["migration"] == {"username": "migration", "password": "x1"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("host"), "host"),
        (lambda d: d.__setitem__("port", "not-a-port"), "port"),
        (lambda d: d["migration"].pop("password"), "migration.password"),
        (lambda d: d.pop("app_user"), "app_user"),
    ],
)
def test_app_secret_errors_name_field_not_value(mutate, field):
    data = json.loads(json.dumps(SECRET))
    mutate(data)
    with pytest.raises(SecretFormatError, match=re.escape(field)) as excinfo:
        AppSecret.parse(json.dumps(data))
    assert "secret-value" not in str(excinfo.value)


def test_invalid_json_is_not_echoed():
    with pytest.raises(SecretFormatError) as excinfo:
        parse_master_secret('{"username": "u", "password": "hunter2-secret"')
    assert "hunter2" not in str(excinfo.value)
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


def test_utc_timestamp():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_timestamp())


def test_generated_passwords_are_url_safe():
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        passwords = [generate_password(client) for _ in range(20)]
    allowed = set(string.ascii_letters + string.digits + "-_.")
    assert set(PASSWORD_EXCLUDED_CHARACTERS) == (set(string.punctuation) - set("-_.")) | {" "}
    for password in passwords:
        assert len(password) == 40
        assert set(password) <= allowed


def test_tls_context_is_verify_full_with_bundled_cas():
    context = build_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert len(context.get_ca_certs()) >= 3


def test_tls_bundle_from_env_and_missing_bundle(monkeypatch, tmp_path):
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    assert ca_bundle_path() == DEFAULT_CA_BUNDLE
    missing = tmp_path / "nope.pem"
    monkeypatch.setenv("PGSSLROOTCERT", str(missing))
    assert ca_bundle_path() == missing
    with pytest.raises(TlsConfigurationError, match="missing or unreadable"):
        build_ssl_context()
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(TlsConfigurationError, match="no PEM certificate"):
        build_ssl_context(empty)


def test_schema_list_parsing():
    assert parse_schema_list(None) == ("public",)
    assert parse_schema_list(" public, billing ,public") == ("public", "billing")
    with pytest.raises(ValueError, match="reserved"):
        parse_schema_list("pg_toast")
