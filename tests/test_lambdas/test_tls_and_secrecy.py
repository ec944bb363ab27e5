"""TLS is verify-full with no fallback, and no password ever shows up anywhere observable."""

from __future__ import annotations

import io
import json
import logging
import socket
import ssl

import pytest

from lambdas.common.db import DatabaseConnectionError, Endpoint, connect
from lambdas.common.tls import DEFAULT_CA_BUNDLE, build_ssl_context
from lambdas.credentials_check.handler import lambda_handler as check_handler
from lambdas.db_bootstrap.handler import on_event
from lambdas.secret_rotation.handler import lambda_handler
from tests.support.postgres import make_tls_files, parameter_group, server_settings

pytestmark = pytest.mark.postgres


def test_the_test_server_runs_with_the_production_parameter_group(pg_server):
    """What these tests prove about logging and TLS holds for the parameter group RDS gets, read back
    from the running server (not a hand-copied list)."""
    expected = server_settings(tls=True)
    assert set(expected) == {name for name in parameter_group() if not name.startswith("rds.")}
    admin = pg_server.admin()
    try:
        rows = admin.run(
            "SELECT name, setting, vartype FROM pg_settings WHERE name = ANY(:names)", names=list(expected)
        )
    finally:
        admin.close()
    as_bool = {"1": "on", "true": "on", "on": "on", "0": "off", "false": "off", "off": "off"}
    running = {name: setting for name, setting, _ in rows}
    assert set(running) == set(expected)  # every setting exists on this PostgreSQL
    for name, setting, vartype in rows:
        wanted = as_bool[expected[name]] if vartype == "bool" else expected[name]
        assert setting == wanted, f"{name}: server runs {setting!r}, the parameter group says {wanted!r}"


def test_connects_with_verify_full(pg_server):
    db = pg_server.create_rds_like_database("tls_ok")
    endpoint = Endpoint(host="localhost", port=pg_server.port, database=db.name)
    conn = connect(endpoint, username=db.master_user, password=db.master_password,
                   ssl_context=build_ssl_context(pg_server.ca_cert))  # fmt: skip
    try:
        assert conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[True]]
    finally:
        conn.close()


@pytest.mark.parametrize("which", ["rds-bundle", "other-test-ca"])
def test_wrong_ca_is_refused(pg_server, tmp_path, which):
    db = pg_server.create_rds_like_database(f"tls_wrong_ca_{which.replace('-', '_')}")
    ca = DEFAULT_CA_BUNDLE if which == "rds-bundle" else make_tls_files(tmp_path).ca_cert
    endpoint = Endpoint(host="localhost", port=pg_server.port, database=db.name)
    with pytest.raises(DatabaseConnectionError, match=r"CERTIFICATE_VERIFY_FAILED") as exc:
        connect(
            endpoint, username=db.master_user, password=db.master_password, ssl_context=build_ssl_context(ca)
        )
    assert db.master_password not in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_hostname_mismatch_is_refused(pg_server):
    """The certificate is for localhost/127.0.0.1: any other name for the same server must fail."""
    db = pg_server.create_rds_like_database("tls_wrong_host")
    context = build_ssl_context(pg_server.ca_cert)
    # Same server, different expected name: resolve "db.example.com" to 127.0.0.1 for this one call.
    endpoint = Endpoint(host="127.0.0.1", port=pg_server.port, database=db.name)
    conn = connect(endpoint, username=db.master_user, password=db.master_password, ssl_context=context)
    conn.close()  # 127.0.0.1 is in the SAN

    original = socket.create_connection

    def to_loopback(address, *args, **kwargs):
        return original(("127.0.0.1", address[1]), *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "create_connection", to_loopback)
        with pytest.raises(DatabaseConnectionError, match=r"(?i)hostname mismatch"):
            connect(Endpoint(host="db.example.com", port=pg_server.port, database=db.name),
                    username=db.master_user, password=db.master_password, ssl_context=context)  # fmt: skip


def test_non_tls_server_is_refused(plaintext_server):
    db = plaintext_server.create_rds_like_database("plain")
    endpoint = Endpoint(host="127.0.0.1", port=plaintext_server.port, database=db.name)
    with pytest.raises(DatabaseConnectionError, match="refuses SSL") as exc:
        connect(endpoint, username=db.master_user, password=db.master_password,
                ssl_context=build_ssl_context(DEFAULT_CA_BUNDLE))  # fmt: skip
    assert db.master_password not in str(exc.value)
    # The harness itself can still talk to it in plaintext, proving the server really is up.
    plaintext_server.admin().close()


def test_unverified_context_is_rejected():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verifying"):
        connect(
            Endpoint(host="localhost", port=1, database="x"), username="u", password="p", ssl_context=context
        )
    with pytest.raises(ValueError, match="verifying"):
        connect(Endpoint(host="localhost", port=1, database="x"), username="u", password="p",
                ssl_context=None)  # type: ignore[arg-type]  # fmt: skip


def test_no_password_leaks_anywhere(deployment, lambda_context, caplog, capfd, monkeypatch):
    caplog.set_level(logging.DEBUG)  # even at DEBUG (botocore would log SecretString if not pinned)
    lambda_logs = io.StringIO()  # the Powertools handlers bound sys.stdout at import: read their output here
    streams = [(h, h.setStream(lambda_logs)) for h in _powertools_handlers()]
    observed: list[str] = []

    observed.append(json.dumps(on_event(deployment.bootstrap_event("Create"), lambda_context)))
    observed.append(json.dumps(on_event(deployment.bootstrap_event("Update"), lambda_context)))
    deployment.enable_rotation()
    monkeypatch.setenv("APP_SECRET_ARN", deployment.app_secret_arn)
    passwords = {deployment.database.master_password}

    for _ in range(2):
        passwords.update(_all_passwords(deployment.current()))
        token = deployment.begin_rotation()
        observed.append(
            repr(lambda_handler(deployment.rotation_event(token, "createSecret"), lambda_context))
        )
        passwords.update(_all_passwords(json.loads(
            deployment.store.get_string(deployment.app_secret_arn, stage="AWSPENDING", version_id=token))))  # fmt: skip
        deployment.server.stop()
        try:
            for step in ("setSecret", "testSecret"):
                # The server is down: the step fails with our sanitised error, not an auth failure.
                with pytest.raises(
                    DatabaseConnectionError, match=r"^cannot connect to localhost:\d+/.*Connection refused"
                ) as excinfo:
                    lambda_handler(deployment.rotation_event(token, step), lambda_context)
                assert excinfo.value.sqlstate is None and not excinfo.value.is_authentication_failure
                assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__
                observed += [str(excinfo.value), repr(excinfo.value), str(excinfo.getrepr())]
            observed.append(json.dumps(check_handler({}, lambda_context)))  # fails, alarms
        finally:
            deployment.server.start()
        for step in ("setSecret", "testSecret", "finishSecret"):
            observed.append(repr(lambda_handler(deployment.rotation_event(token, step), lambda_context)))
        # The check with a lost password to repair (it restores it as the master).
        admin = deployment.admin()
        try:
            admin.run("SET log_statement = 'none'")
            admin.run(f"ALTER ROLE {deployment.app_role} PASSWORD NULL")
        finally:
            admin.close()
        observed.append(json.dumps(check_handler({}, lambda_context)))
        # A failed login attempt with a wrong password is logged by the server: it must not echo it either.
        assert not deployment.can_login(
            deployment.app_role, "not-" + deployment.current()["app_user"]["password"]
        )

    captured = capfd.readouterr()
    for handler, stream in streams:
        handler.setStream(stream)
    haystacks = {
        "lambda logs": lambda_logs.getvalue(),
        "caplog": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
        "results/exceptions": "\n".join(observed),
        "server log": deployment.server.server_log(),
    }
    assert "ALTER ROLE" in haystacks["server log"]  # log_statement=ddl really is on
    assert (
        '"message":"rotation step done"' in haystacks["lambda logs"]
    )  # and the Lambda logs really were captured
    assert '"message":"credentials check passed"' in haystacks["lambda logs"]
    assert '"repaired":["restored ' in haystacks["lambda logs"]  # the check did repair something
    assert len(passwords) == 7  # master + 2 bootstrap + 2 x 2 rotated
    for where, text in haystacks.items():
        for password in passwords:
            assert password not in text, f"a password appeared in {where}"


def _powertools_handlers() -> list[logging.StreamHandler]:
    from lambdas.credentials_check.handler import logger as check_logger
    from lambdas.db_bootstrap.handler import logger as bootstrap_logger
    from lambdas.secret_rotation.handler import logger as rotation_logger

    handlers = {
        id(lg.registered_handler): lg.registered_handler
        for lg in (bootstrap_logger, rotation_logger, check_logger)
    }
    return [h for h in handlers.values() if isinstance(h, logging.StreamHandler)]


def _all_passwords(secret: dict) -> set[str]:
    return {secret["migration"]["password"], secret["app_user"]["password"]}
