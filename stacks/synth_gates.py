"""Gates around synthesis that a plain CDK habit must not be able to skip (run by app.py).

The stacks live inside two Stages (Staging, Production), so the CDK CLI's default selection (no stack
pattern, or `--all`) contains no stack at all: `cdk diff` reports "0 differences" on a branch that
changes templates, `cdk deploy --all` deploys nothing, and `cdk synth` exits 0 without applying the
cdk-nag gate, because the CLI only fails on the validation results of the stacks it selected.

- `selection_error`: app.py reads the command line of the CDK CLI that started it and refuses a
  stack command without a stack pattern, naming the command that does what the user meant. It exits
  before anything is synthesized, so the refusal is immediate.
- `failed_validations`: after synthesis app.py fails on any failed policy-validation report (the
  four cdk-nag packs), whatever the CLI selected, so `cdk synth` alone enforces the nag gate.

Not under the CDK CLI (tests, `python app.py`), `cli_argv` finds no CLI and nothing is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Stack commands that act on the selected stacks only: without a pattern they act on none of ours.
SELECTING_COMMANDS = frozenset(
    {"diff", "deploy", "destroy", "watch", "import", "drift", "rollback", "publish"}
)
# CLI options that take a value (`--opt value`), so the value is not mistaken for a stack pattern.
_OPTIONS_WITH_VALUE = frozenset(
    {
        "--app", "-a", "--build", "--context", "-c", "--plugin", "-p", "--profile", "--region", "--proxy",
        "--ca-bundle-path", "--role-arn", "-r", "--output", "-o", "--unstable", "--telemetry-file",
        "--template", "--require-approval", "--toolkit-stack-name", "--parameters", "--outputs-file", "-O",
        "--notification-arns", "--tags", "-t", "--change-set-name", "--method", "-m", "--concurrency",
        "--asset-parallelism", "--context-lines", "--build-exclude", "-E", "--resource-mapping",
        "--record-resource-mapping", "--exclude", "--toolkit-bucket-name", "--progress",
    }
)  # fmt: skip


@dataclass(frozen=True)
class CliInvocation:
    """What the user typed after `cdk`: the command, its stack patterns, and whether `--all` was given."""

    command: str
    patterns: tuple[str, ...]
    all_stacks: bool


def parse_cli_arguments(arguments: Sequence[str]) -> CliInvocation | None:
    """Parse the arguments after the `cdk` executable; None when there is no command."""
    positional: list[str] = []
    all_stacks = False
    skip_value = False
    for argument in arguments:
        if skip_value:
            skip_value = False
        elif argument == "--all":
            all_stacks = True
        elif argument.startswith("-"):
            skip_value = "=" not in argument and argument in _OPTIONS_WITH_VALUE
        else:
            positional.append(argument)
    if not positional:
        return None
    return CliInvocation(command=positional[0], patterns=tuple(positional[1:]), all_stacks=all_stacks)


def selection_error(invocation: CliInvocation | None) -> str | None:
    """Why this command would silently act on no stack, and what to type instead; None when it is fine."""
    if invocation is None or invocation.command not in SELECTING_COMMANDS or invocation.patterns:
        return None
    typed = f"cdk {invocation.command}{' --all' if invocation.all_stacks else ''}"
    remedy = {
        "diff": "`npx cdk diff '**'` (both environments, against the deployed stacks; needs credentials), "
        "`npx cdk diff 'Staging/*'`, or `make diff` (offline, against main, with the replacement guard)",
        "deploy": "`npx cdk deploy 'Staging/*'`, and after it succeeded `npx cdk deploy 'Production/*'` "
        "(README: Deploying)",
    }.get(
        invocation.command,
        f"`npx cdk {invocation.command} 'Staging/*'` or `npx cdk {invocation.command} 'Production/*'`",
    )
    return (
        f"`{typed}` selects no stack of this app: every stack lives in the Staging or Production stage, "
        f"so it would do nothing and report success. Name the stacks: {remedy}."
    )


def cli_argv(max_depth: int = 6) -> list[str] | None:
    """The command line of the CDK CLI process that started this app (walking up /proc), if any."""
    pid = os.getppid()
    for _ in range(max_depth):
        proc = Path("/proc") / str(pid)
        try:
            argv = [a for a in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
            stat = (proc / "stat").read_text()
        except OSError:
            return None
        for index, argument in enumerate(argv):
            if argument.endswith(("/cdk", "aws-cdk/bin/cdk")) or argument == "cdk":
                return argv[index + 1 :]
        # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            return None
    return None


def failed_validations(assembly_directory: str | Path) -> list[str]:
    """One line per failed policy-validation plugin (cdk-nag pack) in the assembly's validation report."""
    report_path = Path(assembly_directory) / "validation-report.json"
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text())
    return [
        f"{plugin['pluginName']}: {len(plugin.get('violations', []))} unacknowledged finding(s)"
        for plugin in report.get("pluginReports", [])
        if plugin.get("conclusion") == "failure"
    ]
