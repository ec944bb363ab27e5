"""Lambda code assets for our Python functions, bundled without Docker.

`PythonFunction` needs a Docker engine, which build machines here do not have. Instead a local
bundler assembles the asset from:

- the runtime dependencies (`lambdas/requirements.txt`), pip-installed once per requirements
  hash for the Lambda platform (`manylinux2014_x86_64`, binary wheels only) into `.build/` and
  reused by every later synth;
- the `lambdas/` package with only `common/` and the function's own folder, so handlers are
  imported as `lambdas.<function>.handler` exactly as in the tests;
- the shared `contract/` package (secret shape, names, the AWSPENDING fallback);
- the RDS CA bundle for the deployment region (assets.rds_ca_bundle).

The asset hash is the `assets.staging.Fingerprint` of those inputs, so unchanged code keeps its
hash (a stable `cdk diff`) and CDK skips bundling for an asset it has already staged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from assets import rds_ca_bundle
from assets.staging import BUILD_ROOT, CONTRACT_DIR, REPO_ROOT, Fingerprint, copy_tree, stage_once

LAMBDAS_DIR = REPO_ROOT / "lambdas"
REQUIREMENTS = LAMBDAS_DIR / "requirements.txt"
DEPENDENCY_CACHE = BUILD_ROOT / "lambda-dependencies"
CA_BUNDLE_PATH = Path("lambdas") / "common" / "certs" / "rds-ca-bundle.pem"
# The newest Python runtime the pinned aws-cdk-lib knows; wheels are resolved for it.
RUNTIME = lambda_.Runtime.PYTHON_3_14
RUNTIME_PYTHON_VERSION = "3.14"
PLATFORM = "manylinux2014_x86_64"


def python_lambda_code(*, function_package: str, region: str) -> lambda_.Code:
    """The asset for `lambdas/<function_package>` (with `contract/`), its CA bundle for `region`."""
    source_dirs = [LAMBDAS_DIR / "common", LAMBDAS_DIR / function_package, CONTRACT_DIR]
    for directory in source_dirs:
        if not directory.is_dir():
            raise FileNotFoundError(f"Lambda source folder {directory} does not exist")
    bundler = _LocalBundler(function_package=function_package, region=region)
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=bundler.fingerprint(),
        bundling=cdk.BundlingOptions(
            # Never used: the local bundler always succeeds or raises. CDK requires an image.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
            local=bundler,
        ),
    )


def _dependencies_key() -> str:
    fingerprint = Fingerprint(f"{PLATFORM}/{RUNTIME_PYTHON_VERSION}")
    return fingerprint.add_file(REQUIREMENTS, name="lambdas/requirements.txt").hexdigest(16)


def ensure_dependencies() -> Path:
    """pip-install the Lambda requirements for the Lambda platform once; reuse them afterwards."""
    return stage_once(DEPENDENCY_CACHE, _dependencies_key(), _install_dependencies)


def _install_dependencies(target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--requirement", str(REQUIREMENTS), "--target", str(target),
        "--platform", PLATFORM, "--implementation", "cp", "--python-version", RUNTIME_PYTHON_VERSION,
        "--only-binary=:all:", "--upgrade",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"installing Lambda dependencies failed:\n{result.stderr[-2000:]}")
    # Metadata that differs between installs must not reach the asset.
    for record in target.glob("*.dist-info/RECORD"):
        record.unlink()
    shutil.rmtree(target / "bin", ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (same file, same mode and mtime as `shutil.copy2` gives); a copy across filesystems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@jsii.implements(cdk.ILocalBundling)
class _LocalBundler:
    def __init__(self, *, function_package: str, region: str) -> None:
        self._function_package = function_package
        self._region = region

    def fingerprint(self) -> str:
        fingerprint = Fingerprint(f"{self._function_package}/{self._region}/{_dependencies_key()}")
        fingerprint.add_file(LAMBDAS_DIR / "__init__.py", name="lambdas/__init__.py")
        fingerprint.add_tree(LAMBDAS_DIR / "common", name="lambdas/common")
        fingerprint.add_tree(LAMBDAS_DIR / self._function_package, name=f"lambdas/{self._function_package}")
        fingerprint.add_tree(CONTRACT_DIR, name="contract")
        return rds_ca_bundle.add_source_to(fingerprint).hexdigest()

    def try_bundle(self, output_dir: str, *_options: Any, **_bundling_options: Any) -> bool:
        out = Path(output_dir)
        # The dependencies (~440 files) are linked, not copied: copying them for the four bundles took
        # 0.3 s of a synth on a quiet machine and over 1 s under load (docs/performance.md). The cache
        # is immutable once staged, and nothing writes into an asset directory.
        shutil.copytree(ensure_dependencies(), out, dirs_exist_ok=True, copy_function=_link_or_copy)
        package = out / "lambdas"
        package.mkdir(exist_ok=True)
        shutil.copy2(LAMBDAS_DIR / "__init__.py", package / "__init__.py")
        for name in ("common", self._function_package):
            copy_tree(LAMBDAS_DIR / name, package / name)
        copy_tree(CONTRACT_DIR, out / "contract")
        rds_ca_bundle.write_bundle(self._region, out / CA_BUNDLE_PATH)
        return True
