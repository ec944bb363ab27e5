"""`make validate`: independent validators on every synthesized template, offline.

- cfn-lint (pinned in requirements-dev.txt, config in .cfnlintrc.yaml): zero errors and warnings.
- checkov (pinned in requirements-checkov.txt, own virtualenv .venv-checkov because it pins an old
  boto3): zero failed checks; skips live on the resources (constructs/checkov.py), never here.
- AWS Control Tower proactive controls: the cfn-guard binary and Guard rules bundled in
  `cdklabs.cdk-validator-cfnguard` (pinned in requirements-dev.txt). The package is a CDK policy
  validation plugin, but with 0.0.62 its jsii result marshalling crashes on our templates
  ("Of property Object.resourceLogicalId: Unable to serialize value as string"), and as a plugin it
  would add a third Node-side validation pass to every synth. We therefore run the very binary
  and rule files it ships, the way its plugin does (`cfn-guard validate --rules <ct rules> --data
  <templates> --output-format json --structured`), on the already synthesized templates: no
  second synth. Exemptions are per rule AND per resource, with a reason (GUARD_EXEMPTIONS).

Reports go to <assembly>/validation/{cfn-lint,checkov,cfn-guard}.json. Exit status 1 on any finding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.assembly import template_files

REPO_ROOT = Path(__file__).resolve().parent.parent
CFN_LINT = REPO_ROOT / ".venv" / "bin" / "cfn-lint"
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
GUARD_CACHE = REPO_ROOT / ".build" / "cfn-guard"
GUARD_PACKAGE = "cdklabs.cdk_validator_cfnguard"

# (Control Tower rule, logical id) -> why it does not apply. Logical ids are the same in both environments.
_IN_VPC_VIA_CROSS_STACK_REFERENCE = (
    "The function IS in the VPC (Operations subnets, its own security group), but its SubnetIds are "
    "Fn::GetStackOutput references to the Network stack (CDK weak cross-stack references), which "
    "cfn-guard cannot resolve, so the rule sees them as unresolved and fails."
)
GUARD_EXEMPTIONS: dict[tuple[str, str], str] = {
    ("rds_instance_no_default_ports_check", "DatabaseInstanceAA8A5FDE"): (
        "CT.RDS.PR.20: the ops guide and every client use 5432; TLS, the security group and the NACL are "
        "the controls, not port obscurity (same reasoning as the AwsSolutions-RDS11 acknowledgment)."
    ),
    (
        "lambda_inside_vpc_check",
        "ApplicationCredentialsBootstrapFunction2CAD5100",
    ): _IN_VPC_VIA_CROSS_STACK_REFERENCE,
    ("lambda_inside_vpc_check", "ApplicationCredentialsBootstrapProviderframeworkonEvent9C915362"): (
        _IN_VPC_VIA_CROSS_STACK_REFERENCE
    ),
    (
        "lambda_inside_vpc_check",
        "ApplicationCredentialsRotationFunction4B092B46",
    ): _IN_VPC_VIA_CROSS_STACK_REFERENCE,
    ("lambda_inside_vpc_check", "CredentialsCheckFunction42798E67"): _IN_VPC_VIA_CROSS_STACK_REFERENCE,
    # CDK's AwsCustomResource function that sets the master secret's rotation schedule (MasterSecretRotation).
    (
        "lambda_inside_vpc_check",
        "AWS679f53fac002430cb0da5b7982bd22872D164C4C",
    ): _IN_VPC_VIA_CROSS_STACK_REFERENCE,
    ("lambda_inside_vpc_check", "CustomVpcRestrictDefaultSGCustomResourceProviderHandlerDC833E5E"): (
        "CT.LAMBDA.PR.3: CDK's own handler for restrictDefaultSecurityGroup; it only calls the EC2 API to "
        "strip the default security group, and CDK offers no way to place it in the VPC."
    ),
    ("cloudwatch_log_group_encrypted_check", "MigrationTaskLogsLogGroup24E68460"): (
        "CT.CLOUDWATCH.PR.3: encrypted with the database CMK, whose ARN is an Fn::GetStackOutput reference "
        "to the Data stack that cfn-guard cannot resolve."
    ),
    ("cloudwatch_log_group_encrypted_check", "RunbookLogsLogGroup8608B283"): (
        "CT.CLOUDWATCH.PR.3: encrypted with the database CMK, whose ARN is an Fn::GetStackOutput reference "
        "to the Data stack that cfn-guard cannot resolve."
    ),
    # Issue 15: the restore validation function (Recovery stack) gets its subnets, security group and
    # log-group key from other stacks of the environment, as the functions above do.
    (
        "lambda_inside_vpc_check",
        "RestoreTestingValidationFunction4D4C7430",
    ): _IN_VPC_VIA_CROSS_STACK_REFERENCE,
    ("cloudwatch_log_group_encrypted_check", "RestoreTestingValidationLogsLogGroupEAFC9A15"): (
        "CT.CLOUDWATCH.PR.3: encrypted with the database CMK, whose ARN is an Fn::GetStackOutput reference "
        "to the Data stack that cfn-guard cannot resolve."
    ),
    # Issue 13: the server access log bucket of the migration evidence bucket (Data stack).
    ("s3_bucket_default_encryption_kms_check", "MigrationEvidenceAccessLogs174BA186"): (
        "CT.S3.PR.10: S3 server access logging delivers only to a target bucket with SSE-S3 default "
        "encryption (SSE-KMS is not supported for the target); the logs hold request metadata, no record "
        "contents (same reasoning as the S3DefaultEncryptionKMS acknowledgment)."
    ),
    ("s3_bucket_logging_enabled_check", "MigrationEvidenceAccessLogs174BA186"): (
        "CT.S3.PR.2: this bucket IS the server access log destination of the evidence bucket; logging it to "
        "itself would log its own deliveries. CloudTrail management events record changes to it."
    ),
    ("ecs_container_insights_enabled_check", "MigrationTaskCluster7954CFCC"): (
        "CT.ECS.PR.2: Container Insights is on, with enhanced observability (containerInsights=enhanced), "
        "a superset of 'enabled' that this rule version does not recognise."
    ),
}


@dataclass
class ValidatorResult:
    name: str
    version: str
    findings: list[str] = field(default_factory=list)
    exempted: list[str] = field(default_factory=list)
    report: Any = None

    @property
    def passed(self) -> bool:
        return not self.findings


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=REPO_ROOT, capture_output=True, text=True, check=False)


def run_cfn_lint(templates: Sequence[Path]) -> ValidatorResult:
    version = _run([str(CFN_LINT), "--version"]).stdout.strip()
    result = _run([str(CFN_LINT), "--format", "json", "--", *map(str, templates)])
    matches: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    outcome = ValidatorResult("cfn-lint", version, report=matches)
    for match in matches:
        # No project-side filtering: every match fails (ignores live in .cfnlintrc.yaml, with reasons).
        outcome.findings.append(
            f"{match['Rule']['Id']} {Path(match['Filename']).name} "
            f"{'/'.join(map(str, match['Location']['Path']))}: {match['Message']}"
        )
    if result.returncode not in (0, 2, 4, 6, 8, 10, 12, 14) and not matches:  # bit flags; other = crash
        outcome.findings.append(f"cfn-lint did not run: {result.stderr.strip()[-2000:]}")
    return outcome


def run_checkov(templates: Sequence[Path]) -> ValidatorResult:
    if not CHECKOV.exists():
        return ValidatorResult(
            "checkov",
            "missing",
            findings=[f"{CHECKOV} not found: run `make validate` (it creates .venv-checkov)"],
        )
    version = _run([str(CHECKOV), "--version"]).stdout.strip()
    files = [arg for template in templates for arg in ("--file", str(template))]
    result = _run(
        [
            str(CHECKOV),
            "--framework",
            "cloudformation",
            "--skip-download",
            # No --quiet: it drops the skipped checks from the JSON, and the report must list every
            # exemption with its reason (an auditor reads cdk.out/validation/checkov.json).
            "--compact",
            "--output",
            "json",
            *files,
        ]
    )
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError:
        return ValidatorResult(
            "checkov", version, findings=[f"checkov did not run: {result.stderr.strip()[-2000:]}"]
        )
    reports = parsed if isinstance(parsed, list) else [parsed]
    outcome = ValidatorResult("checkov", version, report=parsed)
    for report in reports:
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            outcome.findings.append(
                f"{check['check_id']} {Path(check['file_path']).name} {check['resource']}: {check['check_name']}"
            )
        for check in results.get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment") or "(no reason given)"
            outcome.exempted.append(
                f"{check['check_id']} {Path(check['file_path']).name} {check['resource']}: {reason}"
            )
    return outcome


def guard_package() -> Path:
    """The cdk-validator-cfnguard npm package (cfn-guard binary + Control Tower rules), unpacked once."""
    import importlib.metadata
    import importlib.util

    version = importlib.metadata.version("cdklabs.cdk-validator-cfnguard")
    target = GUARD_CACHE / version
    if not (target / "package" / "rules").is_dir():
        spec = importlib.util.find_spec(GUARD_PACKAGE)
        assert spec is not None and spec.origin is not None
        (tarball,) = (Path(spec.origin).parent / "_jsii").glob("*.jsii.tgz")
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(target, filter="data")
    return target / "package"


def run_cfn_guard(templates: Sequence[Path]) -> ValidatorResult:
    package = guard_package()
    binary = (
        package
        / "bin"
        / "ubuntu"
        / ("aarch64" if os.uname().machine == "aarch64" else "x86_64")
        / "cfn-guard"
    )
    binary.chmod(0o755)
    rules = package / "rules" / "control-tower" / "cfn-guard"
    guard_version = json.loads((package / "guard-version.json").read_text())["version"]
    plugin_version = json.loads((package / "package.json").read_text())["version"]
    data = [arg for template in templates for arg in ("--data", str(template))]
    result = _run(
        [
            str(binary),
            "validate",
            "--rules",
            str(rules),
            *data,
            "--output-format",
            "json",
            "--show-summary",
            "none",
            "--structured",
        ]
    )
    version = f"cdk-validator-cfnguard {plugin_version} (cfn-guard {guard_version})"
    try:
        documents: list[dict[str, Any]] = json.loads(result.stdout)
    except json.JSONDecodeError:
        return ValidatorResult(
            "cfn-guard", version, findings=[f"cfn-guard did not run: {result.stderr.strip()[-2000:]}"]
        )
    outcome = ValidatorResult("cfn-guard", version)
    summary = []
    for document in documents:
        for item in document.get("not_compliant") or []:
            rule = item.get("Rule", item)
            text = json.dumps(rule)
            control = re.search(r"\[(CT\.[A-Z0-9.]+)\]", text)
            for logical_id in sorted(set(re.findall(r"/Resources/([A-Za-z0-9]+)", text))) or ["(template)"]:
                line = f"{control[1] if control else ''} {rule.get('name')} {Path(document['name']).name} {logical_id}"
                reason = GUARD_EXEMPTIONS.get((str(rule.get("name")), logical_id))
                (outcome.exempted if reason else outcome.findings).append(
                    f"{line}{': ' + reason if reason else ''}"
                )
                summary.append({"file": document["name"], "rule": rule.get("name"), "control": control[1] if control else None,
                                "logical_id": logical_id, "exempted": reason})  # fmt: skip
    outcome.report = {"violations": summary, "raw": documents}
    return outcome


def validate(assembly: Path) -> list[ValidatorResult]:
    templates = template_files(assembly)
    if not templates:
        raise RuntimeError(f"no templates in {assembly}: run `make synth` first")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(run, templates) for run in (run_cfn_lint, run_checkov, run_cfn_guard)]
        results = [future.result() for future in futures]
    out = assembly / "validation"
    out.mkdir(parents=True, exist_ok=True)
    for result in results:
        payload = {
            "validator": result.name,
            "version": result.version,
            "passed": result.passed,
            "findings": result.findings,
            "exempted": result.exempted,
            "templates": [str(t.relative_to(assembly)) for t in templates],
            "report": result.report,
        }
        (out / f"{result.name}.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="cfn-lint, checkov and Control Tower cfn-guard rules on every template."
    )
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out")
    args = parser.parse_args(argv)
    results = validate(args.assembly)
    for result in results:
        status = "passed" if result.passed else f"FAILED ({len(result.findings)})"
        print(f"{result.name} [{result.version}]: {status}, {len(result.exempted)} exempted with a reason")
        for finding in result.findings:
            print(f"  {finding}")
        for exemption in result.exempted:
            print(f"  exempted: {exemption}")
    print(f"Reports: {args.assembly / 'validation'}/")
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
