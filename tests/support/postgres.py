"""A throwaway local PostgreSQL cluster for tests, configured like RDS where it matters.

* TLS with a freshly generated CA and server certificate (SAN ``DNS:localhost``, ``IP:127.0.0.1``);
  ``pg_hba.conf`` accepts only ``hostssl`` + ``scram-sha-256`` (and rejects ``hostnossl`` explicitly).
  ``tls=False`` gives a plaintext-only server instead (for "a non-TLS server is refused" tests).
* ``password_encryption=scram-sha-256``, ``log_statement=ddl`` into a log file you can read back.
* An RDS-like, non-superuser "master" role (LOGIN CREATEROLE CREATEDB, member of ``rds_superuser``)
  owning the databases made with ``create_rds_like_database``.

Typical use::

    binaries = require_binaries()            # pytest.skip (or fail with REQUIRE_POSTGRES=1) if absent
    with running_server(binaries) as server:  # init + start; always stopped and removed afterwards
        db = server.create_rds_like_database("revenuepilot")
        conn = server.connect(db.master_user, db.master_password, database=db.name)
        server.stop(); server.start()          # simulate an outage
        server.server_log()                   # everything the server logged

Binaries come from the highest ``/usr/lib/postgresql/<ver>/bin`` or ``PATH``. As root, ``initdb`` and
``postgres`` run as the ``postgres`` OS user (via ``runuser``), which owns the whole temporary directory.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
from pg8000.native import identifier, literal

REQUIRE_ENV_VAR = "REQUIRE_POSTGRES"
INSTALL_HINT = "apt-get install -y postgresql"
POSTGRES_OS_USER = "postgres"
SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"
_REQUIRED_TOOLS = ("initdb", "pg_ctl", "postgres")


class PostgresHarnessError(RuntimeError):
    """The local server could not be created, started or stopped."""


@dataclass(frozen=True)
class PostgresBinaries:
    bindir: Path
    version: int

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def find_binaries() -> PostgresBinaries | None:
    """``initdb``/``pg_ctl``/``postgres`` from the newest ``/usr/lib/postgresql/<ver>/bin``, else ``PATH``."""
    candidates: list[Path] = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versioned = [p for p in root.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versioned, key=lambda p: int(p.name), reverse=True)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in _REQUIRED_TOOLS):
            return PostgresBinaries(bindir=bindir, version=_major_version(bindir))
    return None


def require_binaries() -> PostgresBinaries:
    """The binaries, or a pytest skip naming the install command (a failure when ``REQUIRE_POSTGRES=1``)."""
    import pytest

    binaries = find_binaries()
    if binaries is not None:
        return binaries
    message = f"PostgreSQL server binaries not found (initdb, pg_ctl, postgres): run `{INSTALL_HINT}`"
    if os.environ.get(REQUIRE_ENV_VAR) == "1":
        pytest.fail(f"{message}; {REQUIRE_ENV_VAR}=1 forbids skipping", pytrace=False)
    pytest.skip(message)


def _major_version(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)", out.stdout)
    if match is None:
        raise PostgresHarnessError(f"cannot parse pg_ctl --version output: {out.stdout!r}")
    return int(match.group(1))


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def make_tls_files(directory: Path, *, common_name: str = "localhost") -> TlsFiles:
    """A self-signed test CA and a server certificate for localhost/127.0.0.1 signed by it (openssl)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        ["openssl", "req", "-x509", *ec, "-keyout", str(files.ca_key), "-out", str(files.ca_cert),
         "-days", "3", "-subj", f"/CN=RevenuePilot test CA {secrets.token_hex(4)}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    )  # fmt: skip
    csr = directory / "server.csr"
    _run(["openssl", "req", *ec, "-keyout", str(files.server_key), "-out", str(csr), "-subj", f"/CN={common_name}"])
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName=DNS:localhost,IP:{LOOPBACK}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert), "-CAkey", str(files.ca_key),
         "-CAcreateserial", "-days", "3", "-extfile", str(extensions), "-out", str(files.server_cert)]
    )  # fmt: skip
    files.server_key.chmod(0o600)
    return files


def verify_full_context(ca_cert: Path) -> ssl.SSLContext:
    """A client context trusting only ``ca_cert``, with hostname checking (libpq ``verify-full``)."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class RdsLikeDatabase:
    name: str
    master_user: str
    master_password: str


class PostgresServer:
    """One local cluster in its own temporary directory. Use ``running_server()`` to get a started one."""

    def __init__(self, binaries: PostgresBinaries, *, tls: bool = True, base_dir: Path | None = None) -> None:
        self.binaries = binaries
        self.tls = tls
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="rp-pg-"))
        self.data_dir = self.base_dir / "data"
        self.log_dir = self.base_dir / "log"
        self.socket_dir = self.base_dir / "sock"
        self.host = LOOPBACK
        self.port = _free_port()
        self.superuser = SUPERUSER
        self.superuser_password = secrets.token_urlsafe(24)
        self.tls_files: TlsFiles | None = None
        self._as_postgres = os.geteuid() == 0
        self._master_passwords: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def init(self) -> None:
        """``initdb`` plus the RDS-like configuration. Idempotent only on a fresh ``base_dir``."""
        for directory in (self.log_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if self.tls:
            self.tls_files = make_tls_files(self.base_dir / "tls")
        pwfile = self.base_dir / "superuser.pw"
        pwfile.write_text(self.superuser_password + "\n")
        self._hand_over_to_postgres()
        self._run_server_tool(
            "initdb", "-D", str(self.data_dir), "-U", self.superuser, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        pwfile.unlink()
        (self.data_dir / "postgresql.auto.conf").write_text(self._settings())
        (self.data_dir / "pg_hba.conf").write_text(self._hba())
        self._hand_over_to_postgres()

    def start(self, *, timeout: int = 30) -> None:
        self._run_server_tool(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.base_dir / "pg_ctl.log"),
            "-w", "-t", str(timeout), "start",
        )  # fmt: skip

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if running; falls back to signalling our postmaster if pg_ctl fails."""
        if not self.is_running():
            return
        try:
            self._run_server_tool("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "20", "-m", mode, "stop")
        except PostgresHarnessError:
            pid = self._postmaster_pid()
            if pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.5)

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def destroy(self) -> None:
        """Stop and delete everything, including the TLS keys and logs."""
        self.stop(mode="immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- clients -----------------------------------------------------------------------------------------
    @property
    def ca_cert(self) -> Path:
        if self.tls_files is None:
            raise PostgresHarnessError("this server runs without TLS")
        return self.tls_files.ca_cert

    def ssl_context(self) -> ssl.SSLContext:
        """Client context trusting this server's CA (verify-full)."""
        return verify_full_context(self.ca_cert)

    def connect(
        self, user: str, password: str, *, database: str = "postgres", host: str | None = None
    ) -> pg8000.native.Connection:
        """Verified TLS on a TLS server, plaintext (``ssl_context=False``) on a plaintext one."""
        ssl_context: ssl.SSLContext | bool = self.ssl_context() if self.tls else False
        return pg8000.native.Connection(
            user, password=password, host=host or self.host, port=self.port, database=database,
            ssl_context=ssl_context, timeout=10,
        )  # fmt: skip

    def admin(self, database: str = "postgres") -> pg8000.native.Connection:
        """A superuser connection (test setup and assertions only; the code under test never gets one)."""
        return self.connect(self.superuser, self.superuser_password, database=database)

    def create_rds_like_database(
        self, name: str, *, master_user: str = "rdsmaster", master_password: str | None = None
    ) -> RdsLikeDatabase:
        """A database owned by an RDS-like master role (created on first use; NOT a superuser).

        The master password is fixed on first creation; pass the same one (or None) afterwards.
        """
        admin = self.admin()
        try:
            admin.run("SET log_statement = 'none'")  # keep harness setup (and its password) out of the log
            exists = admin.run("SELECT 1 FROM pg_roles WHERE rolname = :r", r=master_user)
            password = master_password or self._master_passwords.get(master_user) or secrets.token_urlsafe(24)
            self._master_passwords[master_user] = password
            if not exists:
                if not admin.run("SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'"):
                    admin.run("CREATE ROLE rds_superuser NOLOGIN")
                admin.run(
                    f"CREATE ROLE {identifier(master_user)} LOGIN CREATEROLE CREATEDB "
                    f"PASSWORD {literal(password)} IN ROLE rds_superuser"
                )
            admin.run(f"CREATE DATABASE {identifier(name)} OWNER {identifier(master_user)} TEMPLATE template1")
        finally:
            admin.close()
        return RdsLikeDatabase(name=name, master_user=master_user, master_password=password)

    def server_log(self) -> str:
        """Everything the server wrote to its log files so far."""
        parts = [p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*")) if p.is_file()]
        return "".join(parts)

    # -- internals ---------------------------------------------------------------------------------------
    def _settings(self) -> str:
        lines = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "password_encryption": "'scram-sha-256'",
            "log_statement": "'ddl'",
            "log_connections": "on",
            "logging_collector": "on",
            "log_directory": f"'{self.log_dir}'",
            "log_filename": "'postgresql.log'",
            "log_min_messages": "warning",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "40",
            "shared_buffers": "'32MB'",
            "ssl": "on" if self.tls else "off",
        }
        if self.tls_files is not None:
            lines["ssl_cert_file"] = f"'{self.tls_files.server_cert}'"
            lines["ssl_key_file"] = f"'{self.tls_files.server_key}'"
            lines["ssl_min_protocol_version"] = "'TLSv1.2'"
        return "".join(f"{key} = {value}\n" for key, value in lines.items())

    def _hba(self) -> str:
        if self.tls:
            remote = (
                f"hostssl   all all {self.host}/32 scram-sha-256\n"
                "hostnossl all all 0.0.0.0/0 reject\n"
                "hostnossl all all ::/0 reject\n"
            )
        else:
            remote = f"host all all {self.host}/32 scram-sha-256\n"
        return "local all all scram-sha-256\n" + remote

    def _hand_over_to_postgres(self) -> None:
        if not self._as_postgres:
            return
        user = pwd.getpwnam(POSTGRES_OS_USER)
        for path in [self.base_dir, *self.base_dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.base_dir.chmod(0o700)

    def _run_server_tool(self, tool: str, *args: str) -> None:
        command = [self.binaries.tool(tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", POSTGRES_OS_USER, "--", *command]
        _run(command, cwd=self.base_dir)

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None


@contextmanager
def running_server(binaries: PostgresBinaries, *, tls: bool = True) -> Iterator[PostgresServer]:
    """Create, start and yield a server; on exit stop it and delete its directory (even after errors)."""
    server = PostgresServer(binaries, tls=tls)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


def _run(command: list[str], *, cwd: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)
    if result.returncode != 0:
        raise PostgresHarnessError(
            f"{' '.join(command[:6])} ... failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
