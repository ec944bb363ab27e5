"""The two deployment environments. Replace the account ids with your organisation's (README: "Accounts")."""

from __future__ import annotations

from config.deployment import DeploymentConfig, DeployTarget
from config.schema import (
    AlertingConfig,
    DatabaseConfig,
    EnvironmentConfig,
    MigrationConfig,
    NetworkConfig,
    check_environments,
)

# The deployment accounts. Replace these with your organisation's account ids (README: "Accounts").
STAGING_ACCOUNT = "111111111111"
PRODUCTION_ACCOUNT = "222222222222"
REGION = "us-east-1"

STAGING = EnvironmentConfig(
    name="staging",
    account=STAGING_ACCOUNT,
    region=REGION,
    network=NetworkConfig(cidr="10.41.0.0/16", max_azs=2, nat_gateways=1, flow_log_retention_days=365),
    database=DatabaseConfig(
        instance_identifier="revenuepilot-staging",
        application_secret_name="revenuepilot/staging/database",  # noqa: S106 - a name, not a secret
        instance_class="t4g.large",
        allocated_storage_gib=50,
        max_allocated_storage_gib=200,
        # Staging is patched first: its window is two days before production's.
        maintenance_window="fri:05:00-fri:06:00",
        log_retention_days=365,
        restore_from_snapshot_identifier=None,
        # Staging meets the end of standard support first and is upgraded by RDS then: that is the rehearsal.
        engine_lifecycle_support="open-source-rds-extended-support-disabled",
        database_insights_mode="standard",
    ),
    # No CloudTrail log group here: audit alerts use the EventBridge rules.
    alerting=AlertingConfig(email_addresses=("database-alerts-staging@revenuepilot.example",)),
)

PRODUCTION = EnvironmentConfig(
    name="production",
    account=PRODUCTION_ACCOUNT,
    region=REGION,
    # Production keeps every log 6 years (HIPAA documentation retention practice); staging 1 year.
    network=NetworkConfig(cidr="10.40.0.0/16", max_azs=3, nat_gateways=3, flow_log_retention_days=2192),
    migration=MigrationConfig(log_retention_days=2192),
    database=DatabaseConfig(
        instance_identifier="revenuepilot-production",
        # Production's secret predates the per-environment names; renaming it would replace a retained
        # secret (and every consumer's reference), so it keeps its original literal.
        application_secret_name="revenuepilot/prod/database",  # noqa: S106 - a name, not a secret
        instance_class="r7g.large",
        maintenance_window="sun:05:00-sun:06:00",
        # Database Insights advanced mode: execution plans, lock analysis; needs 15 months of retention.
        database_insights_mode="advanced",
        performance_insights_retention_days=465,
        log_retention_days=2192,
        monitoring_interval_seconds=1,
        # Paid Extended Support rather than a forced major upgrade of the clinical database: a deliberate
        # safety net; the upgrade runbook (README) is meant to finish long before standard support ends.
        engine_lifecycle_support="open-source-rds-extended-support",
        # Staging rehearses upgrades on copies of production snapshots (`python -m ops refresh-staging`).
        snapshot_copy_account_ids=(STAGING_ACCOUNT,),
    ),
    alerting=AlertingConfig(
        # Replace with the on-call distribution list (README: "Alerts"); each address confirms once.
        email_addresses=("database-alerts@revenuepilot.example",),
        # The production account's own trail delivers to this log group (it must exist in this account:
        # Control Tower's organization trail logs to the management account, where filters here cannot attach).
        cloudtrail_log_group_name="/aws/cloudtrail/revenuepilot-production",
    ),
)

ENVIRONMENTS: tuple[EnvironmentConfig, ...] = check_environments((STAGING, PRODUCTION))

# The pipeline (issue 17): who may deploy each environment (README: "Releases").
# Replace owner and repository with the repository that holds this code.
DEPLOYMENT = DeploymentConfig(
    github_owner="revenuepilot",
    github_repository="database-infrastructure",
    branch="main",
    targets=(
        DeployTarget(
            environment=STAGING,
            github_environment="staging",
            migration_github_environment="staging-migration",
        ),
        DeployTarget(
            environment=PRODUCTION,
            github_environment="production",
            migration_github_environment="production-migration",
        ),
    ),
)
