#!/usr/bin/env python3
"""CDK entry point: App -> configs -> one Stage per environment -> cdk-nag -> synth, behind two gates.

- A stack command that would select no stack (`cdk diff`, `cdk deploy --all`: every stack lives in a
  Stage) is refused before synthesis with the command to type instead (stacks/synth_gates.py).
- After synthesis, a failed cdk-nag pack fails the app whatever the CLI selected, and with
  `-c strict=true` (make synth, CI) so does a context lookup missing from cdk.context.json. Without it
  the CDK CLI performs the lookup with your credentials and writes cdk.context.json (README: Accounts).
"""

import sys

from stacks.synth_gates import cli_argv, failed_validations, parse_cli_arguments, selection_error


def main() -> int:
    argv = cli_argv()
    refusal = selection_error(parse_cli_arguments(argv)) if argv is not None else None
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 1

    import aws_cdk as cdk

    from config.environments import DEPLOYMENT, ENVIRONMENTS
    from stacks.cdk_app import MissingContextError, define_app, require_complete_context

    app = cdk.App()
    define_app(app, ENVIRONMENTS, DEPLOYMENT)
    assembly = app.synth()
    if str(app.node.try_get_context("strict")).lower() == "true":
        try:
            require_complete_context(assembly.directory)
        except MissingContextError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    failures = failed_validations(assembly.directory)
    if failures:
        print(
            "error: the cdk-nag gate failed: " + "; ".join(failures) + ". Each finding is in "
            f"{assembly.directory}/validation-report.json and printed by `make synth` (`npx cdk synth '**'`).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
