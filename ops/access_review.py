"""`python -m ops access-review --env <env>`: a dated access review, as Markdown and JSON.

Three sources, none of which yields a secret value:

1. **The database** (roles, attributes, memberships, privileges per schema, default privileges,
   pgAudit's state, the application secret's `rotatedAt`): collected inside the VPC by the
   migration task in its read-only `access-review` mode (`migration/runner/access_review.py`;
   docs/decisions/access-review.md says why there), started here with the exact cluster, task
   definition, network and secret arguments of the deployed runbook, and read back from the task's
   log stream. `--database-json` takes a saved copy of that JSON instead (offline, or a re-render).
2. **IAM** from the synthesized templates (`ops/iam_review.py`): who may read the application
   secret or decrypt with the database CMK.
3. **Secrets Manager** `DescribeSecret` of the application and master secrets: `LastRotatedDate`
   and the rotation schedule (metadata only; `GetSecretValue` is never called here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from config.schema import EnvironmentConfig
from contract.names import ACCESS_REVIEW_REPORT_MARKER
from ops.iam_review import aws_managed_policies, find_key, find_secret, grants, load_stage_templates

REPORT_MARKER = ACCESS_REVIEW_REPORT_MARKER  # what the migration task prints before the JSON
RUNBOOK_TASK_STATE = "RunUpgrade"
CONTAINER_ACTIONS = ("upgrade", "downgrade", "current", "validate")


class AccessReviewError(RuntimeError):
    """The review could not be collected (nothing secret in the message)."""


@dataclass(frozen=True)
class ReviewTask:
    """How the runbook runs the migration task, reused for the read-only access review."""

    cluster: str
    task_definition: str
    container: str
    network_configuration: dict[str, Any]
    base_command: list[str]  # the runner's global arguments (secret id, CA bundle...) without the action

    def run_task_arguments(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "launchType": "FARGATE",
            "networkConfiguration": self.network_configuration,
            "overrides": {
                "containerOverrides": [
                    {"name": self.container, "command": [*self.base_command, "access-review"]}
                ]
            },
            "propagateTags": "TASK_DEFINITION",
            "startedBy": "ops-access-review",
        }


def review_task_from_runbook(definition: Mapping[str, Any]) -> ReviewTask:
    """The task settings of the runbook's migration state (state machine definition, as deployed)."""
    try:
        arguments = definition["States"][RUNBOOK_TASK_STATE]["Arguments"]
        override = arguments["Overrides"]["ContainerOverrides"][0]
        command = list(override["Command"])
        vpc = arguments["NetworkConfiguration"]["AwsvpcConfiguration"]
    except (KeyError, IndexError, TypeError) as error:
        raise AccessReviewError(
            f"the runbook definition has no usable {RUNBOOK_TASK_STATE} task ({error})"
        ) from None
    action = next((i for i, word in enumerate(command) if word in CONTAINER_ACTIONS), len(command))
    network = {
        "awsvpcConfiguration": {
            "subnets": list(vpc["Subnets"]),
            "securityGroups": list(vpc.get("SecurityGroups", [])),
        }
    }
    if "AssignPublicIp" in vpc:
        network["awsvpcConfiguration"]["assignPublicIp"] = vpc["AssignPublicIp"]
    return ReviewTask(
        cluster=arguments["Cluster"],
        task_definition=arguments["TaskDefinition"],
        container=override["Name"],
        network_configuration=network,
        base_command=command[:action],
    )


def run_database_review(
    ecs: Any, logs: Any, task: ReviewTask, *, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Run the task in access-review mode, wait for it, and return the JSON it printed."""
    started = ecs.run_task(**task.run_task_arguments())
    if not started.get("tasks"):
        raise AccessReviewError(f"ECS did not start the task: {started.get('failures')}")
    task_arn = started["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=task.cluster, tasks=[task_arn])
    stopped = ecs.describe_tasks(cluster=task.cluster, tasks=[task_arn])["tasks"][0]
    containers = [c for c in stopped.get("containers", []) if c.get("name") == task.container]
    exit_code = containers[0].get("exitCode") if containers else None
    definition = ecs.describe_task_definition(taskDefinition=stopped["taskDefinitionArn"])["taskDefinition"]
    (container,) = [c for c in definition["containerDefinitions"] if c["name"] == task.container]
    options = container["logConfiguration"]["options"]
    stream = f"{options['awslogs-stream-prefix']}/{task.container}/{task_arn.rsplit('/', 1)[1]}"
    lines = _log_lines(logs, options["awslogs-group"], stream, sleep=sleep)
    reports = [line[len(REPORT_MARKER) :] for line in lines if line.startswith(REPORT_MARKER)]
    if exit_code != 0 or not reports:
        last = [line for line in lines if not line.startswith(REPORT_MARKER)][-5:]
        raise AccessReviewError(f"the access-review task exited with {exit_code}: {' | '.join(last)}")
    document: dict[str, Any] = json.loads(reports[-1])
    return document


def _log_lines(
    logs: Any, group: str, stream: str, *, sleep: Callable[[float], None], attempts: int = 6
) -> list[str]:
    """Every message of the task's log stream (CloudWatch Logs may lag the task's stop by seconds)."""
    for _ in range(attempts):
        lines: list[str] = []
        token = None
        while True:
            kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            try:
                page = logs.get_log_events(**kwargs)
            except Exception as error:  # the stream may not exist yet
                code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
                if code != "ResourceNotFoundException":
                    raise
                break
            lines += [event["message"] for event in page.get("events", [])]
            if page.get("nextForwardToken") in (None, token):
                break
            token = page["nextForwardToken"]
        if any(line.startswith(REPORT_MARKER) for line in lines):
            return lines
        sleep(5)
    return lines


def secret_metadata(secretsmanager: Any, secret_id: str) -> dict[str, Any]:
    """DescribeSecret: rotation metadata only (never the value)."""
    described = secretsmanager.describe_secret(SecretId=secret_id)
    return {
        "name": described.get("Name"),
        "last_rotated": _iso(described.get("LastRotatedDate")),
        "rotation_enabled": bool(described.get("RotationEnabled")),
        "rotation_days": (described.get("RotationRules") or {}).get("AutomaticallyAfterDays"),
        "next_rotation": _iso(described.get("NextRotationDate")),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime | date) else (str(value) if value else None)


def login_roles(
    database: Mapping[str, Any],
    *,
    master_username: str,
    app_secret: Mapping[str, Any],
    secrets: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Each role that can log in, and when (and by what) its password was last rotated."""
    usernames = dict(app_secret.get("usernames") or {})
    by_name = {name: user for user, name in usernames.items()}
    result = []
    for role in database.get("database", {}).get("roles", []):
        if not role.get("can_login"):
            continue
        name = role["name"]
        if name in by_name:
            source = f"application secret ({by_name[name]}): rotatedAt"
            rotated = app_secret.get("rotated_at") or (secrets.get("application") or {}).get("last_rotated")
        elif name == master_username:
            source = "master secret: LastRotatedDate"
            rotated = (secrets.get("master") or {}).get("last_rotated")
        else:
            source = "no managed secret: review who uses it"
            rotated = None
        result.append(
            {
                "role": name,
                "password_source": source,
                "password_rotated": rotated,
                "valid_until": role.get("valid_until"),
            }
        )
    return result


def build_report(
    *,
    environment: EnvironmentConfig,
    generated_at: datetime,
    database: Mapping[str, Any],
    templates: Mapping[str, dict[str, Any]],
    secrets: Mapping[str, Any],
) -> dict[str, Any]:
    """The whole review as one JSON-serializable document."""
    secret = find_secret(templates, environment.database.application_secret_name)
    key = find_key(templates, f"alias/revenuepilot/{environment.name}/database")
    app_secret = database.get("app_secret") or {}
    return {
        "environment": environment.name,
        "account": environment.account,
        "region": environment.region,
        "generated_at": generated_at.isoformat(),
        "database": database.get("database", {}),
        "login_roles": login_roles(
            database,
            master_username=environment.database.master_username,
            app_secret=app_secret,
            secrets=secrets,
        ),
        "secrets": dict(secrets),
        "iam": {
            "application_secret": str(secret),
            "database_key": str(key),
            "grants": [grant.as_dict() for grant in grants(templates, secret=secret, key=key)],
            "aws_managed_policies": aws_managed_policies(templates),
            "limits": (
                "From the synthesized templates. AWS managed policies are listed, not analysed; principals the "
                "key policy's account-root statements admit are decided by the account's IAM policies "
                "(check the deployed account with IAM Access Analyzer)."
            ),
        },
    }


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        text = (
            ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
        )
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return (
        lines
        if rows
        else [*lines, "| " + " | ".join("(none)" if i == 0 else "" for i in range(len(headers))) + " |"]
    )


def render_markdown(report: Mapping[str, Any]) -> str:
    database = report["database"]
    audit = database.get("pgaudit", {})
    lines = [
        f"# Access review: {report['environment']} ({report['generated_at'][:10]})",
        "",
        f"Account {report['account']}, {report['region']}; database `{database.get('database')}` "
        f"(PostgreSQL {database.get('server_version')}), read as `{database.get('collected_as')}` in a read-only "
        f"transaction; generated {report['generated_at']}.",
        "",
        "## Roles",
        "",
        *_table(
            ["Role", "Attributes", "Connection limit", "Valid until", "Settings"],
            [
                [r["name"], r["attributes"], r["connection_limit"], r["valid_until"], r["settings"]]
                for r in database.get("roles", [])
            ],
        ),
        "",
        "## Login-capable roles and password rotation",
        "",
        *_table(
            ["Role", "Password from", "Last rotated", "Valid until"],
            [
                [r["role"], r["password_source"], r["password_rotated"], r["valid_until"]]
                for r in report["login_roles"]
            ],
        ),
        "",
        "## Memberships",
        "",
        *_table(
            ["Member", "Role", "Granted by", "Admin", "Inherit", "Set"],
            [
                [m["member"], m["role"], m["grantor"], m["admin"], m["inherit"], m["set"]]
                for m in database.get("memberships", [])
            ],
        ),
        "",
        "## Database privileges",
        "",
        *_table(
            ["Grantee", "Privilege"],
            [[p["grantee"], p["privilege"]] for p in database.get("database_privileges", [])],
        ),
        "",
        "## Privileges per schema",
    ]
    for schema in database.get("schemas", []):
        lines += [
            "",
            f"### `{schema['schema']}` (owner `{schema['owner']}`)",
            "",
            *_table(
                ["Grantee", "Privilege on the schema", "Grantable"],
                [[p["grantee"], p["privilege"], p["grantable"]] for p in schema["schema_privileges"]],
            ),
            "",
            *_table(
                ["Kind", "Grantee", "Privilege", "Objects"],
                [
                    [p["kind"], p["grantee"], p["privilege"], p["objects"]]
                    for p in schema["object_privileges"]
                ],
            ),
        ]
    lines += [
        "",
        "## Default privileges (objects created later)",
        "",
        *_table(
            ["Created by", "In schema", "Kind", "Grantee", "Privilege"],
            [
                [d["owner"], d["schema"] or "(all)", d["kind"], d["grantee"], d["privilege"]]
                for d in database.get("default_privileges", [])
            ],
        ),
        "",
        "## pgAudit",
        "",
        f"Loaded: {audit.get('loaded')}; extension version: {audit.get('extension_version')}.",
        "",
        *_table(["Setting", "Value"], [[k, v] for k, v in sorted((audit.get("settings") or {}).items())]),
        "",
        "## Secrets (metadata)",
        "",
        *_table(
            ["Secret", "Name", "Last rotated", "Rotation", "Every (days)", "Next"],
            [
                [
                    k,
                    s.get("name"),
                    s.get("last_rotated"),
                    s.get("rotation_enabled"),
                    s.get("rotation_days"),
                    s.get("next_rotation"),
                ]
                for k, s in sorted(report["secrets"].items())
            ],
        ),
        "",
        "## IAM principals that can read the application secret or decrypt with the database CMK",
        "",
        f"Secret `{report['iam']['application_secret']}`, key `{report['iam']['database_key']}`.",
        "",
        *_table(
            ["Can", "Principal", "Who", "Actions", "Through", "Conditions"],
            [
                [
                    g["capability"],
                    g["principal"],
                    g["principal_detail"],
                    g["actions"],
                    g["via"],
                    g["conditions"],
                ]
                for g in report["iam"]["grants"]
            ],
        ),
        "",
        "Roles with AWS managed policies (not analysed):",
        "",
        *_table(
            ["Role", "AWS managed policy"],
            [[p["role"], p["policy"]] for p in report["iam"]["aws_managed_policies"]],
        ),
        "",
        f"Limits: {report['iam']['limits']}",
        "",
    ]
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], output_dir: Path) -> tuple[Path, Path]:
    """`access-review-<env>-<yyyy-mm-dd>.md` and `.json` in `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = f"access-review-{report['environment']}-{report['generated_at'][:10]}"
    markdown, document = output_dir / f"{stem}.md", output_dir / f"{stem}.json"
    markdown.write_text(render_markdown(report))
    document.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return markdown, document


def collect_and_write(
    environment: EnvironmentConfig,
    *,
    clients: Callable[[str], Any],
    assembly_dir: Path,
    output_dir: Path,
    database_json: Path | None = None,
    now: datetime | None = None,
) -> tuple[Path, Path]:
    """The command: database (task or file), templates, secret metadata -> the two report files."""
    templates = load_stage_templates(assembly_dir, environment.stage_id)
    if database_json is not None:
        database = json.loads(database_json.read_text())
    else:
        definition = clients("stepfunctions").describe_state_machine(
            stateMachineArn=_state_machine_arn(environment)
        )
        task = review_task_from_runbook(json.loads(definition["definition"]))
        database = run_database_review(clients("ecs"), clients("logs"), task)
    outputs = _stack_outputs(clients("cloudformation"), f"{environment.stage_id}-Data")
    secretsmanager = clients("secretsmanager")
    secrets = {"application": secret_metadata(secretsmanager, environment.database.application_secret_name)}
    if outputs.get("MasterSecretArn"):
        secrets["master"] = secret_metadata(secretsmanager, outputs["MasterSecretArn"])
    report = build_report(
        environment=environment,
        generated_at=now or datetime.now(UTC),
        database=database,
        templates=templates,
        secrets=secrets,
    )
    return write_report(report, output_dir)


def _stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _state_machine_arn(environment: EnvironmentConfig) -> str:
    from ops.runbook import Plan

    return Plan(environment=environment, action="upgrade", revision="head").state_machine_arn
