"""Verify-full TLS for PostgreSQL: the server certificate must chain to the RDS CA and match the host."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from contract.names import CA_BUNDLE_ENV_VAR

DEFAULT_CA_BUNDLE = Path(__file__).resolve().parent / "certs" / "rds-ca-bundle.pem"


class TlsConfigurationError(RuntimeError):
    """The CA bundle is missing or unusable. There is deliberately no unverified fallback."""


def ca_bundle_path(environ: dict[str, str] | None = None) -> Path:
    """The CA bundle to trust: ``$PGSSLROOTCERT`` when set, else the bundle shipped next to this module."""
    env = os.environ if environ is None else environ
    configured = env.get(CA_BUNDLE_ENV_VAR, "").strip()
    return Path(configured) if configured else DEFAULT_CA_BUNDLE


def build_ssl_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """An ``SSLContext`` with libpq ``sslmode=verify-full`` semantics (chain + hostname), TLS 1.2 minimum."""
    path = ca_bundle_path() if ca_bundle is None else ca_bundle
    try:
        pem = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TlsConfigurationError(f"CA bundle {path} is missing or unreadable: {reason}") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise TlsConfigurationError(f"CA bundle {path} contains no PEM certificate")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    try:
        context.load_verify_locations(cadata=pem)
    except ssl.SSLError as exc:
        raise TlsConfigurationError(f"CA bundle {path} could not be loaded: {exc.reason or exc}") from None
    return context
