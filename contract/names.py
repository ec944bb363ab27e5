"""Names shared by the CDK code and the code it deploys."""

from __future__ import annotations

import string

# The two database roles the application secret holds (also its JSON keys).
MIGRATION_ROLE = "migration"
APPLICATION_ROLE = "app_user"
APPLICATION_ROLES = (MIGRATION_ROLE, APPLICATION_ROLE)

# pgAudit's object-audit role (`pgaudit.role` in the parameter group, config/parameter_group.py; created by
# the bootstrap). RDS's convention; tests/test_infrastructure/test_pgaudit_parameters.py keeps both equal.
AUDIT_ROLE = "rds_pgaudit"
# The line the migration task's `access-review` mode prints, followed by one JSON document (ops reads it back).
ACCESS_REVIEW_REPORT_MARKER = "ACCESS_REVIEW "

# Lambda environment variables: set where the functions are created, read by the handlers.
MASTER_SECRET_ARN_ENV_VAR = "MASTER_SECRET_ARN"  # noqa: S105 - a variable name, not a password
APP_SCHEMAS_ENV_VAR = "APP_SCHEMAS"
SERVICE_NAME_ENV_VAR = "POWERTOOLS_SERVICE_NAME"
CA_BUNDLE_ENV_VAR = "PGSSLROOTCERT"
# The credentials check (and, for the endpoint and role names, the bootstrap and rotation functions too).
APP_SECRET_ARN_ENV_VAR = "APP_SECRET_ARN"  # noqa: S105 - a variable name, not a password
METRIC_NAMESPACE_ENV_VAR = "METRIC_NAMESPACE"
# The DR restore validation (decision 0010): it logs in as LOGIN_ROLE with the application secret's replica
# (by name: the replica's ARN suffix is not known to the DR stack) instead of the master secret.
LOGIN_SECRET_ID_ENV_VAR = "LOGIN_SECRET_ID"  # noqa: S105 - a variable name, not a secret
LOGIN_ROLE_ENV_VAR = "LOGIN_ROLE"
# Optional: the instance endpoint as CloudFormation knows it (follows a replaced or restored instance).
DB_HOST_ENV_VAR = "DB_HOST"
DB_PORT_ENV_VAR = "DB_PORT"
# Optional: role names other than MIGRATION_ROLE / APPLICATION_ROLE (the tests' roles are per test).
MIGRATION_ROLE_NAME_ENV_VAR = "MIGRATION_ROLE_NAME"
APP_USER_ROLE_NAME_ENV_VAR = "APP_USER_ROLE_NAME"

# The credentials check's CloudWatch metrics (embedded metric format), for its alarm.
CREDENTIALS_METRIC_NAMESPACE = "RevenuePilot/Database"
CREDENTIALS_CHECK_FAILED_METRIC = "CredentialsCheckFailed"
CREDENTIALS_REPAIRED_METRIC = "CredentialsRepaired"
CREDENTIALS_SECRET_DIMENSION = "Secret"  # noqa: S105 - a dimension name; its value is the secret's name
# Set by the runbook as a container override of the migration task's validate run (its callback token).
TASK_TOKEN_ENV_VAR = "SFN_TASK_TOKEN"  # noqa: S105 - a variable name, not a secret

# Everything in string.punctuation except "-_." plus space: a DATABASE_URL built with jq needs no escaping.
PASSWORD_EXCLUDED_CHARACTERS = "".join(c for c in string.punctuation if c not in "-_.") + " "


def state_machine_name(environment_name: str) -> str:
    """The migration runbook's state machine name (the ops CLI finds it by this name)."""
    return f"revenuepilot-{environment_name}-migration-runbook"


# The Data stack instance's template metadata recording an approved restore cutover (decision 0007):
# written by constructs/database.py, read by the replacement guard (tools/replacement_guard.py).
RESTORE_CUTOVER_METADATA = "RevenuePilot::RestoreCutover"


# --- the runbook's records (issue 13, item 7) --------------------------------------------------------
# Evidence objects: `<EVIDENCE_PREFIX>/<env>/<YYYY>/<MM>/<execution name>.json` in the evidence bucket.
EVIDENCE_PREFIX = "migrations"
_MAX_BUCKET_NAME = 63


def _bucket_name(kind: str, environment_name: str, account: str, region: str) -> str:
    """`revenuepilot-<env>-<kind>-<account>-<region>`: globally unique, known at synth (no export needed)."""
    name = f"revenuepilot-{environment_name}-{kind}-{account}-{region}"
    if len(name) > _MAX_BUCKET_NAME:
        raise ValueError(f"bucket name {name!r} is longer than {_MAX_BUCKET_NAME} characters")
    return name


def evidence_bucket_name(environment_name: str, account: str, region: str) -> str:
    """The migration evidence bucket (Object Lock, the environment's CMK)."""
    return _bucket_name("evidence", environment_name, account, region)


def access_log_bucket_name(environment_name: str, account: str, region: str) -> str:
    """The S3 server access log bucket of the evidence bucket."""
    return _bucket_name("access-logs", environment_name, account, region)


def evidence_prefix(environment_name: str) -> str:
    """The key prefix the runbook of `environment_name` may write evidence under (no trailing '/')."""
    return f"{EVIDENCE_PREFIX}/{environment_name}"


def runbook_role_name(environment_name: str) -> str:
    """The runbook state machine's role: named, so another account can trust exactly it."""
    return f"revenuepilot-{environment_name}-migration-runbook"


def applied_reader_role_name(environment_name: str) -> str:
    """The role in `environment_name`'s account that another environment's runbook assumes to read
    `environment_name`'s applied-revision records (GetParameter only)."""
    return f"revenuepilot-{environment_name}-migration-applied-reader"


def applied_revision_path(environment_name: str) -> str:
    """SSM path of the applied-revision records: `<path>/<full revision id>` = JSON (execution, action, time)."""
    return f"/revenuepilot/{environment_name}/migration/applied"


def maintenance_parameter_name(environment_name: str) -> str:
    """The maintenance-mode flag (JSON: state on|off, execution, since). Written by the runbook and
    `python -m ops maintenance`, never by CloudFormation; absent means off."""
    return f"/revenuepilot/{environment_name}/maintenance-mode"
