"""Smoke checks after a deploy (issue 17): `python -m tools.smoke --env <env> --assembly cdk.out`.

Needs no database access from the runner, only the environment's smoke-check role
(`revenuepilot-<env>-github-smoke`, stack `DeployAccess-<Stage>`):

1. **Stack outputs**: every stack of the environment in the synthesized assembly is deployed and has
   every output its template declares (`cloudformation:DescribeStacks`).
2. **Credentials check**: the Data stack's output `CredentialsCheckFunctionName` names the Lambda
   (`lambdas/credentials_check`); it is invoked and must answer without a function error and without
   reporting a failure (`"healthy": false`, `"ok": false` or a `status` of failed/error). A missing
   output or function is a failure: the check proves both application logins right after the deploy.
3. **Runbook definition**: the deployed definition of `revenuepilot-<env>-migration-runbook`
   (`states:DescribeStateMachine`) equals the synthesized one, where each value CloudFormation
   resolves at deploy time (`Ref`, `Fn::GetAtt`, imports, pseudo parameters) matches any text.
4. **Migration dry run**: `python -m ops migrate --env <env> --dry-run` exits 0 (no AWS call).

Prints a Markdown table and appends it to `$GITHUB_STEP_SUMMARY` (or `--summary`); exit 1 when a
check failed. Logic in plain functions over boto3 clients passed in; tests run them against moto.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from config.schema import EnvironmentConfig
from contract.names import state_machine_name
from tools.assembly import StackArtifact, stack_artifacts

REPO_ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS_CHECK_OUTPUT = "CredentialsCheckFunctionName"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
_ICONS = {PASSED: "✅", FAILED: "❌", SKIPPED: "⚠️"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # passed | failed | skipped
    detail: str


def environment_stacks(assembly: Path, environment: EnvironmentConfig) -> list[StackArtifact]:
    """The synthesized stacks of the environment's Stage, e.g. Staging/Network ... Staging/Migration."""
    return [a for _, a in sorted(stack_artifacts(assembly).items()) if a.environment == environment.stage_id]


def deployed_outputs(cloudformation: Any, stack_name: str) -> dict[str, str] | None:
    """The stack's outputs by key; None when the stack does not exist."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}


def check_outputs(
    cloudformation: Any, stacks: Sequence[StackArtifact]
) -> tuple[CheckResult, dict[str, dict[str, str]]]:
    problems: list[str] = []
    outputs: dict[str, dict[str, str]] = {}
    for artifact in stacks:
        expected = sorted(artifact.template().get("Outputs", {}))
        deployed = deployed_outputs(cloudformation, artifact.stack_name)
        if deployed is None:
            problems.append(f"{artifact.stack_name} is not deployed")
            continue
        outputs[artifact.stack] = deployed
        missing = [key for key in expected if key not in deployed]
        if missing:
            problems.append(f"{artifact.stack_name} lacks {', '.join(missing)}")
    count = sum(len(o) for o in outputs.values())
    if problems:
        return CheckResult("Stack outputs", FAILED, "; ".join(problems)), outputs
    return CheckResult("Stack outputs", PASSED, f"{len(stacks)} stacks, {count} outputs present"), outputs


def check_credentials(lambda_client: Any, data_outputs: dict[str, str]) -> CheckResult:
    name = "Credentials check"
    function = data_outputs.get(CREDENTIALS_CHECK_OUTPUT)
    if not function:
        return CheckResult(
            name, FAILED, f"the Data stack has no output {CREDENTIALS_CHECK_OUTPUT}: not invoked"
        )
    try:
        response = lambda_client.invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=b"{}"
        )
    except ClientError as error:
        return CheckResult(
            name, FAILED, f"{function} could not be invoked: {error.response['Error']['Code']}"
        )
    body = response["Payload"].read().decode(errors="replace")
    if response.get("FunctionError"):
        return CheckResult(name, FAILED, f"{function} raised {response['FunctionError']}: {_short(body)}")
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and (
        payload.get("ok") is False
        or payload.get("healthy") is False  # lambdas/credentials_check: {"healthy", "repaired", "problems"}
        or str(payload.get("status", "")).lower() in ("failed", "failure", "error")
    ):
        return CheckResult(name, FAILED, f"{function} reported a failure: {_short(body)}")
    return CheckResult(name, PASSED, f"{function} answered {_short(body) or '(no payload)'}")


def definition_pattern(definition: Any) -> re.Pattern[str]:
    """A regex for the definition CloudFormation deploys from a template's `DefinitionString`.

    Literal text must match exactly; every value resolved at deploy time (a `Ref`, `Fn::GetAtt`,
    `Fn::ImportValue`, ... inside the `Fn::Join`, or a `${...}` substitution) matches any text.
    """
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for index, piece in enumerate(re.split(r"\$\{[^}]+\}", value)):
                if index:
                    parts.append(".*?")
                parts.append(re.escape(piece))
        elif isinstance(value, dict) and set(value) == {"Fn::Join"}:
            separator, items = value["Fn::Join"]
            for index, item in enumerate(items):
                if index and separator:
                    parts.append(re.escape(separator))
                walk(item)
        else:
            parts.append(".*?")

    walk(definition)
    return re.compile("".join(parts), re.DOTALL)


def synthesized_definition(stacks: Sequence[StackArtifact], name: str) -> Any:
    for artifact in stacks:
        for resource in artifact.template().get("Resources", {}).values():
            properties = resource.get("Properties", {})
            if (
                resource["Type"] == "AWS::StepFunctions::StateMachine"
                and properties.get("StateMachineName") == name
            ):
                return properties["DefinitionString"]
    raise LookupError(f"no state machine {name} in the synthesized stacks")


def check_runbook(
    stepfunctions: Any, stacks: Sequence[StackArtifact], environment: EnvironmentConfig
) -> CheckResult:
    name = state_machine_name(environment.name)
    title = "Runbook definition"
    try:
        expected = synthesized_definition(stacks, name)
    except LookupError as error:
        return CheckResult(title, FAILED, str(error))
    partition = "aws-cn" if environment.region.startswith("cn-") else "aws"
    arn = f"arn:{partition}:states:{environment.region}:{environment.account}:stateMachine:{name}"
    deployed = stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"]
    if definition_pattern(expected).fullmatch(deployed):
        return CheckResult(title, PASSED, f"{name}: deployed definition equals the synthesized one")
    return CheckResult(title, FAILED, f"{name}: deployed definition differs from the synthesized one")


DRY_RUN_REVISION = "000000000000"


def check_migration_dry_run(
    environment: EnvironmentConfig, run: Callable[..., Any] = subprocess.run
) -> CheckResult:
    command = [sys.executable, "-m", "ops", "migrate", "--env", environment.name, "--dry-run"]
    if environment.migration.requires_exact_revision:
        # Production accepts only full revision ids (the default `head` is refused): the dry run checks the
        # wiring, so any well-formed id will do; it starts nothing.
        command[-1:-1] = ["--revision", DRY_RUN_REVISION]
    result = run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    title = "`ops migrate --dry-run`"
    if result.returncode != 0:
        return CheckResult(
            title, FAILED, f"exit {result.returncode}: {_short(result.stdout + result.stderr)}"
        )
    state_machine = next((line for line in result.stdout.splitlines() if "state machine:" in line), "")
    return CheckResult(title, PASSED, state_machine.strip() or "exit 0")


def run_checks(
    environment: EnvironmentConfig,
    assembly: Path,
    clients: Callable[[str], Any],
    run: Callable[..., Any] = subprocess.run,
) -> list[CheckResult]:
    stacks = environment_stacks(assembly, environment)
    outputs_result, outputs = check_outputs(clients("cloudformation"), stacks)
    return [
        outputs_result,
        check_credentials(clients("lambda"), outputs.get("Data", {})),
        check_runbook(clients("stepfunctions"), stacks, environment),
        check_migration_dry_run(environment, run),
    ]


def markdown(environment: EnvironmentConfig, results: Sequence[CheckResult]) -> str:
    lines = [
        f"### Smoke checks: {environment.name} (account {environment.account}, {environment.region})",
        "",
        "| Check | Result | Detail |",
        "| --- | --- | --- |",
    ]
    for result in results:
        detail = result.detail.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {result.name} | {_ICONS[result.status]} {result.status} | {detail} |")
    return "\n".join(lines) + "\n"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main(argv: Sequence[str] | None = None, *, clients: Callable[[str], Any] | None = None) -> int:
    from config.environments import ENVIRONMENTS

    parser = argparse.ArgumentParser(description="Smoke checks of a deployed environment.")
    parser.add_argument("--env", required=True, choices=[c.name for c in ENVIRONMENTS])
    parser.add_argument(
        "--assembly", type=Path, default=REPO_ROOT / "cdk.out", help="the deployed cloud assembly"
    )
    parser.add_argument("--summary", type=Path, default=os.environ.get("GITHUB_STEP_SUMMARY") or None,
                        help="Markdown file to append the results to (default $GITHUB_STEP_SUMMARY)")  # fmt: skip
    args = parser.parse_args(argv)
    environment = next(c for c in ENVIRONMENTS if c.name == args.env)
    if clients is None:
        import boto3

        clients = boto3.session.Session(region_name=environment.region).client
    results = run_checks(environment, args.assembly, clients)
    text = markdown(environment, results)
    print(text)
    for result in results:
        if result.status == SKIPPED:
            print(f"::notice title=Smoke check skipped::{result.name}: {result.detail}")
        elif result.status == FAILED:
            print(f"::error title=Smoke check failed::{result.name}: {result.detail}")
    if args.summary:
        with Path(args.summary).open("a") as summary:
            summary.write(text + "\n")
    return 1 if any(r.status == FAILED for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
