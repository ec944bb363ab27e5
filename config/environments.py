"""The two deployment environments. Replace the account ids with your organisation's (README: "Accounts")."""

from __future__ import annotations

from config.deployment import DeploymentConfig, DeployTarget
from config.recovery import RecoveryConfig
from config.schema import (
    PHI_LOG_RETENTION_DAYS,
    AlertingConfig,
    DatabaseConfig,
    EnvironmentConfig,
    MigrationConfig,
    NetworkConfig,
    check_environments,
)
from config.validation import environment

# The deployment accounts. Replace these with your organisation's account ids (README: "Accounts").
STAGING_ACCOUNT = "111111111111"
PRODUCTION_ACCOUNT = "222222222222"
REGION = "us-east-1"
# Where the daily snapshot is copied (issue 15): another region, same account.
DR_REGION = "us-west-2"

# PLACEHOLDER: the digest of the backend release production runs. Replace it with the real digest of
# `revenuepilot/backend` (README: "Releasing a backend version"); every release changes this line in a PR.
PRODUCTION_BACKEND_IMAGE_DIGEST = "sha256:" + "0" * 64

STAGING = EnvironmentConfig(
    name=environment("staging"),  # first: errors in the sections below name the environment
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
        # A restore from a production snapshot needs every log retention at PHI_LOG_RETENTION_DAYS (config checks).
        restore_from_snapshot_identifier=None,
        # Staging meets the end of standard support first and is upgraded by RDS then: that is the rehearsal.
        engine_lifecycle_support="open-source-rds-extended-support-disabled",
        database_insights_mode="standard",
    ),
    # Production's runbook reads staging's applied-revision records (production accepts only those).
    migration=MigrationConfig(applied_record_reader_accounts=(PRODUCTION_ACCOUNT,)),
    # No CloudTrail log group here: audit alerts use the EventBridge rules.
    alerting=AlertingConfig(email_addresses=("database-alerts-staging@revenuepilot.example",)),
    # Staging: a governance lock (a privileged principal can still lift it), weekly restore tests (Monday).
    recovery=RecoveryConfig(
        dr_region=DR_REGION,
        vault_lock_mode="governance",
        vault_lock_changeable_for_days=None,
        restore_test_schedule="cron(0 9 ? * MON *)",
        restore_test_max_interval_days=8,
    ),
)

PRODUCTION = EnvironmentConfig(
    name=environment("production"),
    account=PRODUCTION_ACCOUNT,
    region=REGION,
    # Production keeps every log 6 years (HIPAA documentation retention, config enforces it); staging 1 year
    # unless it is restored from a production snapshot (then 6 years too, enforced as well).
    network=NetworkConfig(
        cidr="10.40.0.0/16", max_azs=3, nat_gateways=3, flow_log_retention_days=PHI_LOG_RETENTION_DAYS
    ),
    # Pinned by digest (a tag is refused in production): a new backend release is a reviewed change here.
    migration=MigrationConfig(
        log_retention_days=PHI_LOG_RETENTION_DAYS,
        backend_image_tag=None,
        backend_image_digest=PRODUCTION_BACKEND_IMAGE_DIGEST,
        # Six years, compliance mode: nobody can delete or shorten a migration's evidence record.
        evidence_retention_mode="compliance",
        evidence_retention_days=PHI_LOG_RETENTION_DAYS,
        # Only revisions staging's runbook has applied (its SSM record), by exact id.
        require_applied_in="staging",
    ),
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
        log_retention_days=PHI_LOG_RETENTION_DAYS,
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
    # Production: a compliance lock (immutable once its 7-day grace period has passed), monthly restore
    # tests (1st of the month), and quarterly restore tests of the DR copies in the DR region (15th).
    recovery=RecoveryConfig(
        dr_region=DR_REGION,
        vault_lock_mode="compliance",
        vault_lock_changeable_for_days=7,
        restore_test_schedule="cron(0 9 1 * ? *)",
        restore_test_max_interval_days=32,
        dr_restore_test_schedule="cron(0 9 15 1,4,7,10 ? *)",
        dr_restore_test_max_interval_days=95,
        dr_network_cidr="10.90.0.0/24",
        dr_availability_zones=(f"{DR_REGION}a", f"{DR_REGION}b"),
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
