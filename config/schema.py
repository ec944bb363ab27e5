"""The configuration schema: one frozen dataclass per section, each validating itself when built.

Every value that differs between staging and production lives in `config/environments.py`, in code, so
a PR that changes one shows up in review next to its `cdk diff`. A bad value stops `cdk synth` with a
message naming the field and what is allowed. Nothing is ever silently corrected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from config.aws_limits import (
    ADVANCED_INSIGHTS_MIN_RETENTION_DAYS,
    CLOUDWATCH_RETENTION_DAYS,
    DATABASE_INSIGHTS_MODES,
    ENGINE_LIFECYCLE_SUPPORT,
    ENHANCED_MONITORING_INTERVALS,
    FARGATE_MEMORY_MIB,
    INSTANCE_CLASS_MEMORY_GIB,
    LIBPQ_SSLMODES,
    PERFORMANCE_INSIGHTS_RETENTION_DAYS,
    POSTGRES_MAJOR_VERSIONS,
    RDS_EVENT_CATEGORIES,
    VERIFYING_SSLMODES,
    default_max_connections,
)
from config.recovery import RecoveryConfig, RestoreCutover
from config.validation import (
    MINUTES_PER_DAY,
    config_section,
    daily_window_minutes,
    environment_scope,
    require,
    weekly_window_minutes,
    windows_overlap,
)

ROTATION_INTERVALS_DAYS = (90, 120)
# HIPAA documentation retention (164.316(b)(2)(i)): six years. Production keeps every log this long, and so
# does an environment restored from a production snapshot: it then holds patient data too.
PHI_LOG_RETENTION_DAYS = 2192
# EventBridge receives IAM's CloudTrail events (a global service) only in this region.
IAM_EVENTS_REGION = "us-east-1"
MASTER_ROTATION_DAYS_RANGE = (1, 90)
# The credentials check must finish (2-minute timeout) well before the next run starts.
CREDENTIALS_CHECK_INTERVALS_MINUTES = (5, 60)
ENVIRONMENT_NAMES = ("staging", "production")
EVIDENCE_RETENTION_MODES = ("governance", "compliance")
POSTGRES_RESERVED_ROLE_NAMES = ("postgres", "admin", "rdsadmin", "root", "migration", "app_user")

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")
_INSTANCE_CLASS = re.compile(r"^[a-z][a-z0-9]*\.[a-z0-9]+$")
# A created VPC's settings when not given; an imported VPC takes none of them.
DEFAULT_MAX_AZS = 3
DEFAULT_NAT_GATEWAYS = 1
DEFAULT_FLOW_LOG_RETENTION_DAYS = 365
CREATED_VPC_FIELDS = ("cidr", "max_azs", "nat_gateways", "flow_log_retention_days", "availability_zones")


@dataclass(frozen=True, kw_only=True)
class CreatedVpcSettings:
    """The settings of a VPC this app creates, every one resolved (see `NetworkConfig.created_vpc`)."""

    cidr: str
    max_azs: int
    nat_gateways: int
    flow_log_retention_days: int
    availability_zones: tuple[str, ...] | None


@config_section("network")
@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The VPC that hosts the database and the application tasks that reach it.

    Bring your own or we create it, never both: with `existing_vpc_id` the VPC is looked up (its
    lookup must be in cdk.context.json) and its owner provides subnets, NACLs, endpoints and flow
    logs, so the settings of a created VPC (`CREATED_VPC_FIELDS`) must be left out (None means "not
    given"); without it `cidr` is required and the others fall back to their defaults.

    `availability_zones` names the account's AZs explicitly (the VPC uses the first `max_azs`), so
    synthesis needs no `availability-zones` lookup and no credentials (README: first deploy). None:
    the lookup in cdk.context.json.
    """

    cidr: str | None = None
    max_azs: int | None = None
    nat_gateways: int | None = None
    flow_log_retention_days: int | None = None
    availability_zones: tuple[str, ...] | None = None
    existing_vpc_id: str | None = None

    def __post_init__(self) -> None:
        if self.existing_vpc_id is not None:
            self._check_imported_vpc(self.existing_vpc_id)
        else:
            self._check_created_vpc(self.created_vpc())

    @property
    def creates_vpc(self) -> bool:
        return self.existing_vpc_id is None

    def created_vpc(self) -> CreatedVpcSettings:
        """The resolved settings of the VPC to create (a ConfigError for an imported VPC)."""
        require(self.creates_vpc, "network.existing_vpc_id", "the VPC is imported: no settings to create one")
        require(
            self.cidr is not None,
            "network.cidr",
            "is required when the app creates the VPC (no existing_vpc_id given)",
        )
        assert self.cidr is not None
        return CreatedVpcSettings(
            cidr=self.cidr,
            max_azs=DEFAULT_MAX_AZS if self.max_azs is None else self.max_azs,
            nat_gateways=DEFAULT_NAT_GATEWAYS if self.nat_gateways is None else self.nat_gateways,
            flow_log_retention_days=(
                DEFAULT_FLOW_LOG_RETENTION_DAYS
                if self.flow_log_retention_days is None
                else self.flow_log_retention_days
            ),
            availability_zones=self.availability_zones,
        )

    def _check_imported_vpc(self, vpc_id: str) -> None:
        require(
            _VPC_ID.match(vpc_id) is not None,
            "network.existing_vpc_id",
            f"{vpc_id!r} is not a VPC id (vpc-<8 or 17 hex digits>)",
        )
        for name in CREATED_VPC_FIELDS:
            require(
                getattr(self, name) is None,
                f"network.{name}",
                f"{getattr(self, name)!r} applies only to a VPC this app creates, but existing_vpc_id "
                f"({vpc_id!r}) imports one: remove network.{name} or existing_vpc_id",
            )

    @staticmethod
    def _check_created_vpc(vpc: CreatedVpcSettings) -> None:
        require(vpc.max_azs >= 2, "network.max_azs", f"{vpc.max_azs} is too few: at least 2 AZs")
        require(
            1 <= vpc.nat_gateways <= vpc.max_azs,
            "network.nat_gateways",
            f"{vpc.nat_gateways} must be between 1 and max_azs ({vpc.max_azs})",
        )
        require(
            re.match(r"^\d+\.\d+\.\d+\.\d+/(1[6-9]|2[0-4])$", vpc.cidr) is not None,
            "network.cidr",
            f"{vpc.cidr!r} must be an IPv4 CIDR with a prefix between /16 and /24",
        )
        require(
            vpc.flow_log_retention_days in CLOUDWATCH_RETENTION_DAYS,
            "network.flow_log_retention_days",
            f"{vpc.flow_log_retention_days} is not one of {CLOUDWATCH_RETENTION_DAYS}",
        )
        if vpc.availability_zones is not None:
            zones = vpc.availability_zones
            require(
                all(_AVAILABILITY_ZONE.match(zone) for zone in zones) and len(set(zones)) == len(zones),
                "network.availability_zones",
                f"{zones!r} must be distinct availability zone names such as 'us-east-1a'",
            )
            require(
                len(zones) >= vpc.max_azs,
                "network.availability_zones",
                f"{zones!r} names {len(zones)}, fewer than max_azs ({vpc.max_azs}) AZs",
            )


@config_section("database")
@dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    """The PostgreSQL instance, its backups, monitoring and logging."""

    instance_identifier: str
    # The major version only: AWS owns the minor (AutoMinorVersionUpgrade in the maintenance window), so
    # the template never falls behind the instance (README: "Engine versions"). Changing it is a major
    # upgrade: stage it in staging first (config refuses production ahead of staging).
    engine_version: str = "17"
    # Decided per environment, never by AWS's default: enrol in paid RDS Extended Support at the end of
    # standard support, or not (then RDS upgrades the major version itself). README: "Engine versions".
    engine_lifecycle_support: str
    # CloudWatch Database Insights: "advanced" (execution plans, lock analysis, fleet views) needs
    # performance_insights_retention_days >= 465; "standard" is the free tier.
    database_insights_mode: str
    # Set only in the PR that upgrades the major version: the version the instance runs now. That PR then
    # keeps this version's parameter group, adds one of the new family and allows the major upgrade;
    # the follow-up PR (after the upgrade) removes this field and with it the old parameter group.
    upgrading_from_engine_version: str | None = None
    # Accounts that may copy this database's snapshots (production -> staging refresh, README: Upgrading
    # PostgreSQL): the key policy lets them use the CMK through RDS only.
    snapshot_copy_account_ids: tuple[str, ...] = ()
    instance_class: str = "r7g.large"
    allocated_storage_gib: int = 100
    max_allocated_storage_gib: int = 500
    database_name: str = "revenuepilot"
    master_username: str = "rp_admin"
    application_schemas: tuple[str, ...] = ("public",)
    multi_az: bool = True
    deletion_protection: bool = True
    backup_retention_days: int = 14
    # UTC. The automated backup window, the AWS Backup snapshot and the maintenance window
    # never overlap (the ops guide: "daily snapshots outside the primary maintenance window").
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:05:00-sun:06:00"
    daily_snapshot_start: str = "07:00"
    daily_snapshot_retention_days: int = 35
    monitoring_interval_seconds: int = 5
    performance_insights_retention_days: int = 7
    log_retention_days: int = 2192
    slow_statement_threshold_ms: int = 500
    # Staging can be rebuilt from a production snapshot to rehearse upgrades (ops guide §5).
    restore_from_snapshot_identifier: str | None = None
    # Production only with this approval naming the same snapshot (decision 0007): the cutover of a
    # restored instance. Kept, like the identifier, after the deploy.
    restore_cutover: RestoreCutover | None = None
    secret_rotation_days: int = 90
    # The RDS-managed master secret (ManageMasterUserPassword) rotates on this schedule (RDS's default is
    # 7 days); only the credential Lambdas use it. decision 0008.
    master_secret_rotation_days: int = 7
    # The periodic credentials check (lambdas/credentials_check): how often both AWSCURRENT logins are
    # proven, and half-finished rotations repaired.
    credentials_check_interval_minutes: int = 15
    # The application secret's name: the ops guide's snippets read `revenuepilot/<env>/database`.
    # Required, per environment: a default would let a new environment collide with production's.
    application_secret_name: str
    # PostgreSQL `idle_session_timeout`: the server ends sessions idle (outside a transaction) this long.
    # Application pools recycle connections sooner (`runtime.pool_recycle_seconds`).
    idle_session_timeout_seconds: int = 3600

    def __post_init__(self) -> None:
        self._check_instance()
        self._check_storage()
        self._check_names()
        self._check_backups_and_windows()
        self._check_monitoring_and_logs()
        self._check_secrets_and_sessions()
        self._check_restore_source()

    def _check_instance(self) -> None:
        require(
            _IDENTIFIER.match(self.instance_identifier) is not None
            and "--" not in self.instance_identifier
            and not self.instance_identifier.endswith("-"),
            "database.instance_identifier",
            f"{self.instance_identifier!r} must be 1-63 lowercase letters, digits or single hyphens, "
            "starting with a letter",
        )
        require(
            self.engine_version in POSTGRES_MAJOR_VERSIONS,
            "database.engine_version",
            f"{self.engine_version!r} must be a major version only, one of {POSTGRES_MAJOR_VERSIONS}: minors are "
            "applied by RDS (auto minor version upgrade), and a pinned minor would make the template fall behind "
            "the instance and ask RDS for a downgrade",
        )
        if self.upgrading_from_engine_version is not None:
            require(
                self.upgrading_from_engine_version in POSTGRES_MAJOR_VERSIONS
                and int(self.upgrading_from_engine_version) < int(self.engine_version),
                "database.upgrading_from_engine_version",
                f"{self.upgrading_from_engine_version!r} must be the major version the instance runs now, one of "
                f"{POSTGRES_MAJOR_VERSIONS} and lower than engine_version {self.engine_version!r}",
            )
        require(
            all(_ACCOUNT.match(account) for account in self.snapshot_copy_account_ids),
            "database.snapshot_copy_account_ids",
            f"{self.snapshot_copy_account_ids!r} must list 12-digit AWS account ids",
        )
        require(
            self.engine_lifecycle_support in ENGINE_LIFECYCLE_SUPPORT,
            "database.engine_lifecycle_support",
            f"{self.engine_lifecycle_support!r} must be one of {ENGINE_LIFECYCLE_SUPPORT}",
        )
        require(
            _INSTANCE_CLASS.match(self.instance_class) is not None,
            "database.instance_class",
            f"{self.instance_class!r} must look like 'r7g.large' (without the 'db.' prefix)",
        )

    def _check_storage(self) -> None:
        require(
            20 <= self.allocated_storage_gib <= 65536,
            "database.allocated_storage_gib",
            f"{self.allocated_storage_gib} must be between 20 and 65536 GiB (gp3)",
        )
        require(
            self.max_allocated_storage_gib > self.allocated_storage_gib,
            "database.max_allocated_storage_gib",
            f"{self.max_allocated_storage_gib} must exceed allocated_storage_gib "
            f"({self.allocated_storage_gib}) so storage autoscaling can grow",
        )

    def _check_names(self) -> None:
        """The database, master user and schema names are PostgreSQL identifiers we may use."""
        require(
            _PG_NAME.match(self.database_name) is not None,
            "database.database_name",
            f"{self.database_name!r} must be a lowercase PostgreSQL identifier",
        )
        require(
            _PG_NAME.match(self.master_username) is not None
            and self.master_username not in POSTGRES_RESERVED_ROLE_NAMES,
            "database.master_username",
            f"{self.master_username!r} must be a lowercase identifier and not one of "
            f"{', '.join(POSTGRES_RESERVED_ROLE_NAMES)}",
        )
        require(
            len(self.application_schemas) >= 1
            and all(
                _PG_NAME.match(schema) and not schema.startswith("pg_") for schema in self.application_schemas
            ),
            "database.application_schemas",
            f"{self.application_schemas!r} must list at least one lowercase schema name not starting with pg_",
        )

    def _check_backups_and_windows(self) -> None:
        """Retention, and the backup, snapshot and maintenance windows never overlap."""
        require(
            7 <= self.backup_retention_days <= 35,
            "database.backup_retention_days",
            f"{self.backup_retention_days} must be between 7 and 35 days (ops guide minimum 7, RDS max 35)",
        )
        backup = daily_window_minutes(self.backup_window, "database.backup_window")
        maintenance = weekly_window_minutes(self.maintenance_window, "database.maintenance_window")
        require(
            not windows_overlap(backup, maintenance),
            "database.backup_window",
            f"{self.backup_window!r} overlaps the maintenance window {self.maintenance_window!r}",
        )
        snapshot_start = daily_window_minutes(
            f"{self.daily_snapshot_start}-00:00", "database.daily_snapshot_start"
        )[0]
        # AWS Backup starts the job within an hour of the scheduled time.
        snapshot = (snapshot_start, (snapshot_start + 60) % MINUTES_PER_DAY)
        require(
            not windows_overlap(snapshot, maintenance),
            "database.daily_snapshot_start",
            f"{self.daily_snapshot_start!r} (+1 h start window) overlaps the maintenance window "
            f"{self.maintenance_window!r}",
        )
        require(
            not windows_overlap(snapshot, backup),
            "database.daily_snapshot_start",
            f"{self.daily_snapshot_start!r} (+1 h start window) overlaps the backup window {self.backup_window!r}",
        )
        require(
            7 <= self.daily_snapshot_retention_days <= 3650,
            "database.daily_snapshot_retention_days",
            f"{self.daily_snapshot_retention_days} must be between 7 and 3650 days",
        )

    def _check_monitoring_and_logs(self) -> None:
        require(
            self.monitoring_interval_seconds in ENHANCED_MONITORING_INTERVALS,
            "database.monitoring_interval_seconds",
            f"{self.monitoring_interval_seconds} is not allowed: one of {ENHANCED_MONITORING_INTERVALS} "
            "seconds (ops guide: 1-5 s granularity)",
        )
        require(
            self.performance_insights_retention_days in PERFORMANCE_INSIGHTS_RETENTION_DAYS,
            "database.performance_insights_retention_days",
            f"{self.performance_insights_retention_days} is not accepted by RDS: 7, a multiple of 31 "
            "up to 713, or 731",
        )
        require(
            self.database_insights_mode in DATABASE_INSIGHTS_MODES,
            "database.database_insights_mode",
            f"{self.database_insights_mode!r} must be one of {DATABASE_INSIGHTS_MODES}",
        )
        require(
            self.database_insights_mode != "advanced"
            or self.performance_insights_retention_days >= ADVANCED_INSIGHTS_MIN_RETENTION_DAYS,
            "database.performance_insights_retention_days",
            f"{self.performance_insights_retention_days} is too short for database_insights_mode 'advanced', which "
            f"needs at least {ADVANCED_INSIGHTS_MIN_RETENTION_DAYS} days (15 months)",
        )
        require(
            self.log_retention_days in CLOUDWATCH_RETENTION_DAYS,
            "database.log_retention_days",
            f"{self.log_retention_days} is not one of CloudWatch's values {CLOUDWATCH_RETENTION_DAYS}",
        )
        require(
            self.log_retention_days >= 365,
            "database.log_retention_days",
            f"{self.log_retention_days} is too short: audit logs of a HIPAA workload keep >= 365 days",
        )
        require(
            100 <= self.slow_statement_threshold_ms <= 60_000,
            "database.slow_statement_threshold_ms",
            f"{self.slow_statement_threshold_ms} must be between 100 and 60000 ms",
        )

    def _check_secrets_and_sessions(self) -> None:
        require(
            self.secret_rotation_days in ROTATION_INTERVALS_DAYS,
            "database.secret_rotation_days",
            f"{self.secret_rotation_days} is not allowed: one of {ROTATION_INTERVALS_DAYS} days (ops guide)",
        )
        require(
            MASTER_ROTATION_DAYS_RANGE[0]
            <= self.master_secret_rotation_days
            <= MASTER_ROTATION_DAYS_RANGE[1],
            "database.master_secret_rotation_days",
            f"{self.master_secret_rotation_days} must be between {MASTER_ROTATION_DAYS_RANGE[0]} and "
            f"{MASTER_ROTATION_DAYS_RANGE[1]} days (the master rotates at least as often as the ops guide's 90)",
        )
        require(
            CREDENTIALS_CHECK_INTERVALS_MINUTES[0]
            <= self.credentials_check_interval_minutes
            <= CREDENTIALS_CHECK_INTERVALS_MINUTES[1],
            "database.credentials_check_interval_minutes",
            f"{self.credentials_check_interval_minutes} must be between {CREDENTIALS_CHECK_INTERVALS_MINUTES[0]} "
            f"and {CREDENTIALS_CHECK_INTERVALS_MINUTES[1]} minutes (a fault must be repaired or alarmed within "
            "the hour)",
        )
        require(
            re.match(r"^[A-Za-z0-9/_+=.@-]{1,512}$", self.application_secret_name) is not None,
            "database.application_secret_name",
            f"{self.application_secret_name!r} must be 1-512 of A-Z a-z 0-9 / _ + = . @ -",
        )
        require(
            60 <= self.idle_session_timeout_seconds <= 86_400,
            "database.idle_session_timeout_seconds",
            f"{self.idle_session_timeout_seconds} must be between 60 and 86400 seconds",
        )

    def _check_restore_source(self) -> None:
        if self.restore_cutover is not None:
            require(
                self.restore_cutover.snapshot_identifier == self.restore_from_snapshot_identifier,
                "database.restore_cutover.snapshot_identifier",
                f"{self.restore_cutover.snapshot_identifier!r} must be the snapshot the instance is restored "
                f"from (restore_from_snapshot_identifier {self.restore_from_snapshot_identifier!r}): an "
                "approval covers exactly one snapshot",
            )
        if self.restore_from_snapshot_identifier is None:
            return
        require(
            re.match(
                r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:snapshot:)?[a-z][a-z0-9-:]*$",
                self.restore_from_snapshot_identifier,
            )
            is not None,
            "database.restore_from_snapshot_identifier",
            f"{self.restore_from_snapshot_identifier!r} must be a snapshot identifier or snapshot ARN",
        )

    @property
    def engine_major_version(self) -> str:
        return self.engine_version


_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_SLACK_WORKSPACE_ID = re.compile(r"^T[A-Z0-9]{8,}$")
_SLACK_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{8,}$")
_LOG_GROUP_NAME = re.compile(r"^[A-Za-z0-9_./#-]{1,512}$")
_LOGS_DESTINATION_ARN = re.compile(
    r"^arn:aws[a-z-]*:logs:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:destination:[^:*\s]{1,512}$"
)


@config_section("alerting.thresholds")
@dataclass(frozen=True, kw_only=True)
class DatabaseAlarmThresholds:
    """When the database's metric alarms fire. Each alarm needs `evaluation_periods` bad periods."""

    cpu_utilization_percent: float = 80
    freeable_memory_min_mib: int = 512
    free_storage_min_percent: float = 15
    database_connections_percent: float = 80
    # None: RDS's default for the instance class (see `default_max_connections`).
    max_connections: int | None = None
    read_latency_max_seconds: float = 0.02
    write_latency_max_seconds: float = 0.02
    disk_queue_depth_max: float = 10
    swap_usage_max_mib: int = 256
    lambda_errors_max: int = 1
    period_seconds: int = 300
    evaluation_periods: int = 3
    # Transaction ID wraparound: PostgreSQL stops accepting writes near 2^31 used XIDs; autovacuum
    # normally keeps the age under autovacuum_freeze_max_age (200 million). CloudWatch's recommended
    # alarm for RDS fires at 1 billion.
    maximum_used_transaction_ids_max: int = 1_000_000_000
    # Instance classes with burstable EBS bandwidth (config/aws_limits.py): the burst bucket's
    # remaining percentage; below it, storage throughput falls back to the baseline.
    ebs_byte_balance_min_percent: float = 20

    def __post_init__(self) -> None:
        require(
            200_000_000 <= self.maximum_used_transaction_ids_max <= 1_500_000_000,
            "alerting.thresholds.maximum_used_transaction_ids_max",
            f"{self.maximum_used_transaction_ids_max} must be between 200 million (autovacuum_freeze_max_age) "
            "and 1.5 billion (leave time to vacuum before the 2^31 wraparound limit)",
        )
        require(
            1 <= self.ebs_byte_balance_min_percent <= 100,
            "alerting.thresholds.ebs_byte_balance_min_percent",
            f"{self.ebs_byte_balance_min_percent} must be a percentage 1-100",
        )
        for name in ("cpu_utilization_percent", "free_storage_min_percent", "database_connections_percent"):
            value = getattr(self, name)
            require(1 <= value <= 100, f"alerting.thresholds.{name}", f"{value} must be a percentage 1-100")
        for name in (
            "freeable_memory_min_mib",
            "read_latency_max_seconds",
            "write_latency_max_seconds",
            "disk_queue_depth_max",
            "swap_usage_max_mib",
            "lambda_errors_max",
            "evaluation_periods",
        ):
            value = getattr(self, name)
            require(value > 0, f"alerting.thresholds.{name}", f"{value} must be positive")
        if self.max_connections is not None:
            require(
                self.max_connections > 0,
                "alerting.thresholds.max_connections",
                f"{self.max_connections} must be positive",
            )
        require(
            self.period_seconds in (60, 300, 900, 3600),
            "alerting.thresholds.period_seconds",
            f"{self.period_seconds} must be one of (60, 300, 900, 3600) seconds",
        )


@config_section("alerting.slack")
@dataclass(frozen=True, kw_only=True)
class SlackChannelConfig:
    """A Slack channel for alerts through AWS Chatbot (the workspace is authorized once in the console)."""

    workspace_id: str
    channel_id: str

    def __post_init__(self) -> None:
        require(
            _SLACK_WORKSPACE_ID.match(self.workspace_id) is not None,
            "alerting.slack.workspace_id",
            f"{self.workspace_id!r} is not a Slack workspace id (T followed by 8+ uppercase letters/digits)",
        )
        require(
            _SLACK_CHANNEL_ID.match(self.channel_id) is not None,
            "alerting.slack.channel_id",
            f"{self.channel_id!r} is not a Slack channel id (C or G followed by 8+ uppercase letters/digits)",
        )


@config_section("alerting")
@dataclass(frozen=True, kw_only=True)
class AlertingConfig:
    """Where alerts go, which RDS events and API calls raise them, and where logs are shipped."""

    email_addresses: tuple[str, ...] = ()
    slack: SlackChannelConfig | None = None
    # The log group the account's CloudTrail delivers to: audit alerts become metric filters and
    # alarms on it. None: the same API calls are matched by EventBridge rules instead.
    cloudtrail_log_group_name: str | None = None
    # A CloudWatch Logs destination (usually in the central logging account) for the database logs.
    central_log_destination_arn: str | None = None
    instance_event_categories: tuple[str, ...] = (
        "availability", "backup", "configuration change", "deletion", "failover", "failure",
        "low storage", "maintenance", "notification", "recovery", "restoration", "security patching",
    )  # fmt: skip
    parameter_group_event_categories: tuple[str, ...] = ("configuration change",)
    security_group_event_categories: tuple[str, ...] = ("configuration change", "failure")
    snapshot_event_categories: tuple[str, ...] = ("creation", "deletion", "failure", "restoration")
    thresholds: DatabaseAlarmThresholds = field(default_factory=DatabaseAlarmThresholds)

    def __post_init__(self) -> None:
        require(
            len(self.email_addresses) > 0 or self.slack is not None,
            "alerting.email_addresses",
            "no email address and no Slack channel: alerts would reach nobody",
        )
        for address in self.email_addresses:
            require(
                _EMAIL.match(address) is not None,
                "alerting.email_addresses",
                f"{address!r} is not an email address",
            )
        require(
            len(set(self.email_addresses)) == len(self.email_addresses),
            "alerting.email_addresses",
            f"{self.email_addresses!r} lists an address twice",
        )
        for field_name, source_type in self.event_category_fields().items():
            categories = getattr(self, field_name)
            unknown = sorted(set(categories) - RDS_EVENT_CATEGORIES[source_type])
            require(
                not unknown and len(categories) > 0,
                f"alerting.{field_name}",
                f"{unknown or 'nothing'} is not a list of {source_type} event categories; allowed: "
                f"{', '.join(sorted(RDS_EVENT_CATEGORIES[source_type]))}",
            )
        if self.cloudtrail_log_group_name is not None:
            require(
                _LOG_GROUP_NAME.match(self.cloudtrail_log_group_name) is not None,
                "alerting.cloudtrail_log_group_name",
                f"{self.cloudtrail_log_group_name!r} is not a CloudWatch Logs log group name",
            )
        if self.central_log_destination_arn is not None:
            require(
                _LOGS_DESTINATION_ARN.match(self.central_log_destination_arn) is not None,
                "alerting.central_log_destination_arn",
                f"{self.central_log_destination_arn!r} is not a CloudWatch Logs destination ARN "
                "(arn:aws:logs:<region>:<account>:destination:<name>)",
            )

    @staticmethod
    def event_category_fields() -> dict[str, str]:
        """Config field -> the RDS event source type it configures."""
        return {
            "instance_event_categories": "db-instance",
            "parameter_group_event_categories": "db-parameter-group",
            "security_group_event_categories": "db-security-group",
            "snapshot_event_categories": "db-snapshot",
        }


_ECR_REPOSITORY = re.compile(r"^(?:[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_QUERY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# The ops guide's "targeted row counts for high-risk tables" (migration runbook, step 4).
DEFAULT_VALIDATION_QUERIES: tuple[tuple[str, str], ...] = (
    ("encounters", "SELECT COUNT(*) FROM encounters"),
    ("finalized_notes", "SELECT COUNT(*) FROM notes WHERE status = 'finalized'"),
    (
        "recent_suggestions",
        "SELECT COUNT(*) FROM suggestions WHERE created_at >= current_date - INTERVAL '1 day'",
    ),
)


@config_section("migration")
@dataclass(frozen=True, kw_only=True)
class MigrationConfig:
    """The migration task (backend image + runner) and the runbook state machine's pre-checks."""

    # An ECR repository name in the environment's own account and region, or a full
    # `<registry>/<repository>` reference. Exactly one of tag or digest; production should pin a digest.
    backend_image_repository: str = "revenuepilot/backend"
    backend_image_tag: str | None = "release"
    backend_image_digest: str | None = None
    alembic_config_path: str = "backend/alembic/alembic.ini"
    validation_queries: tuple[tuple[str, str], ...] = DEFAULT_VALIDATION_QUERIES
    # The runbook counts before and after the migration and fails if a count dropped by more than its
    # tolerance: (query name, allowed decrease in percent, 0-100). A query not listed may not decrease.
    # Date-windowed queries (the default `recent_suggestions`) can drop when a migration spans midnight.
    validation_decrease_tolerance_percent: tuple[tuple[str, float], ...] = ()
    task_cpu: int = 512
    task_memory_mib: int = 1024
    log_retention_days: int = 365
    # Pre-checks refuse to migrate unless automated backups keep at least this many days and the
    # latest restorable time (PITR) is at most this many minutes old.
    minimum_backup_retention_days: int = 7
    max_restore_lag_minutes: int = 15
    connect_timeout_seconds: int = 10
    migration_timeout_minutes: int = 60
    validation_timeout_minutes: int = 15
    # The evidence record of every runbook execution (S3 Object Lock, the environment's CMK). Production:
    # compliance mode (nobody, not even root, can shorten or delete) for at least PHI_LOG_RETENTION_DAYS.
    evidence_retention_mode: str = "governance"
    evidence_retention_days: int = 365
    # The environment that must have applied a revision (runbook success there) before this one accepts it,
    # e.g. production: "staging". Then only exact revision ids are accepted here (contract/revision.py).
    require_applied_in: str | None = None
    # Accounts whose runbook may read this environment's applied-revision records (a read-only role).
    applied_record_reader_accounts: tuple[str, ...] = ()

    @property
    def requires_exact_revision(self) -> bool:
        """A revision must have been applied elsewhere first: it is looked up by its exact id."""
        return self.require_applied_in is not None

    def decrease_tolerance_percent(self, query_name: str) -> float:
        """The allowed decrease of a validation count from before to after the migration (default 0)."""
        return dict(self.validation_decrease_tolerance_percent).get(query_name, 0.0)

    def __post_init__(self) -> None:
        self._check_image()
        self._check_validation_queries()
        self._check_task()
        self._check_runbook_limits()
        self._check_records()

    def _check_records(self) -> None:
        """The evidence retention and the applied-revision records."""
        require(
            self.evidence_retention_mode in EVIDENCE_RETENTION_MODES,
            "migration.evidence_retention_mode",
            f"{self.evidence_retention_mode!r} is not allowed: one of {EVIDENCE_RETENTION_MODES}",
        )
        require(
            isinstance(self.evidence_retention_days, int) and 1 <= self.evidence_retention_days <= 36500,
            "migration.evidence_retention_days",
            f"{self.evidence_retention_days!r} must be a whole number of days between 1 and 36500",
        )
        require(
            self.require_applied_in is None or self.require_applied_in in ENVIRONMENT_NAMES,
            "migration.require_applied_in",
            f"{self.require_applied_in!r} must be None or one of {ENVIRONMENT_NAMES}",
        )
        for account in self.applied_record_reader_accounts:
            require(
                _ACCOUNT.match(account) is not None,
                "migration.applied_record_reader_accounts",
                f"{account!r} must be a 12-digit AWS account id",
            )

    def _check_image(self) -> None:
        """The backend image reference and the Alembic config path inside it."""
        require(
            _ECR_REPOSITORY.match(self.backend_image_repository) is not None,
            "migration.backend_image_repository",
            f"{self.backend_image_repository!r} must be an ECR repository name or '<registry>/<repository>'",
        )
        require(
            (self.backend_image_tag is None) != (self.backend_image_digest is None),
            "migration.backend_image_tag",
            "set exactly one of backend_image_tag and backend_image_digest",
        )
        if self.backend_image_tag is not None:
            require(
                _IMAGE_TAG.match(self.backend_image_tag) is not None and self.backend_image_tag != "latest",
                "migration.backend_image_tag",
                f"{self.backend_image_tag!r} must be a Docker tag other than 'latest' (a moving target)",
            )
        if self.backend_image_digest is not None:
            require(
                _IMAGE_DIGEST.match(self.backend_image_digest) is not None,
                "migration.backend_image_digest",
                f"{self.backend_image_digest!r} must be 'sha256:<64 hex digits>'",
            )
        require(
            re.match(r"^[A-Za-z0-9_./-]+\.ini$", self.alembic_config_path) is not None
            and ".." not in self.alembic_config_path.split("/"),
            "migration.alembic_config_path",
            f"{self.alembic_config_path!r} must be a relative or absolute path to an .ini file without '..'",
        )

    def _check_validation_queries(self) -> None:
        names = [name for name, _ in self.validation_queries]
        require(
            len(names) >= 1 and len(set(names)) == len(names),
            "migration.validation_queries",
            "must list at least one query, with unique names",
        )
        for name, sql in self.validation_queries:
            require(
                _QUERY_NAME.match(name) is not None,
                "migration.validation_queries",
                f"name {name!r} must be a lowercase identifier",
            )
            require(
                sql.strip().lower().startswith(("select", "with")) and ";" not in sql,
                "migration.validation_queries",
                f"{name!r} must be one SELECT statement returning one integer, without ';'",
            )
        for name, percent in self.validation_decrease_tolerance_percent:
            require(
                name in names and isinstance(percent, int | float) and 0 <= percent <= 100,
                "migration.validation_decrease_tolerance_percent",
                f"({name!r}, {percent!r}) must name a validation query and allow 0-100 percent",
            )

    def _check_task(self) -> None:
        """Fargate sizes and the task's log retention."""
        require(
            self.task_cpu in FARGATE_MEMORY_MIB,
            "migration.task_cpu",
            f"{self.task_cpu} is not a Fargate CPU value: one of {tuple(FARGATE_MEMORY_MIB)}",
        )
        require(
            self.task_memory_mib in FARGATE_MEMORY_MIB.get(self.task_cpu, ()),
            "migration.task_memory_mib",
            f"{self.task_memory_mib} MiB is not allowed with {self.task_cpu} CPU units: one of "
            f"{FARGATE_MEMORY_MIB.get(self.task_cpu, ())}",
        )
        require(
            self.log_retention_days in CLOUDWATCH_RETENTION_DAYS and self.log_retention_days >= 365,
            "migration.log_retention_days",
            f"{self.log_retention_days} must be one of CloudWatch's values and >= 365 days (audit evidence)",
        )

    def _check_runbook_limits(self) -> None:
        """The runbook's pre-check thresholds and timeouts."""
        require(
            7 <= self.minimum_backup_retention_days <= 35,
            "migration.minimum_backup_retention_days",
            f"{self.minimum_backup_retention_days} must be between 7 (ops guide) and 35 days",
        )
        require(
            5 <= self.max_restore_lag_minutes <= 60,
            "migration.max_restore_lag_minutes",
            f"{self.max_restore_lag_minutes} must be between 5 and 60 minutes (RDS updates it every ~5 minutes)",
        )
        require(
            1 <= self.connect_timeout_seconds <= 60,
            "migration.connect_timeout_seconds",
            f"{self.connect_timeout_seconds} must be between 1 and 60 seconds",
        )
        for name in ("migration_timeout_minutes", "validation_timeout_minutes"):
            value = getattr(self, name)
            require(5 <= value <= 720, f"migration.{name}", f"{value} must be between 5 and 720 minutes")

    @property
    def backend_image_reference(self) -> str:
        """`<repository>:<tag>` or `<repository>@<digest>` (the registry is added by the stack if absent)."""
        if self.backend_image_digest is not None:
            return f"{self.backend_image_repository}@{self.backend_image_digest}"
        return f"{self.backend_image_repository}:{self.backend_image_tag}"


@config_section("runtime")
@dataclass(frozen=True, kw_only=True)
class RuntimeContractConfig:
    """The application's database settings (ops guide, "Runtime database environment variables").

    Published without credentials as SSM String parameters (constructs/runtime_contract.py); the
    password only ever comes from the application secret. Defaults are the ops guide's values.
    """

    pgsslmode: str = "verify-full"
    pgsslrootcert: str = "/etc/revenuepilot/certs/rds-ca-rsa2048-g1.pem"
    connect_timeout_seconds: int = 10
    web_pool_size: int = 10
    worker_pool_size: int = 2
    max_overflow: int = 5
    pool_recycle_seconds: int = 900
    statement_timeout_ms: int = 30_000
    healthcheck_timeout_ms: int = 5_000

    def __post_init__(self) -> None:
        require(
            self.pgsslmode in VERIFYING_SSLMODES,
            "runtime.pgsslmode",
            f"{self.pgsslmode!r} is not allowed: one of {VERIFYING_SSLMODES} (the server certificate is "
            f"always verified; {', '.join(m for m in LIBPQ_SSLMODES if m not in VERIFYING_SSLMODES)} never)",
        )
        require(
            self.pgsslrootcert.startswith("/")
            and self.pgsslrootcert.endswith(".pem")
            and ".." not in self.pgsslrootcert.split("/"),
            "runtime.pgsslrootcert",
            f"{self.pgsslrootcert!r} must be an absolute path to a .pem file without '..'",
        )
        require(
            1 <= self.connect_timeout_seconds <= 60,
            "runtime.connect_timeout_seconds",
            f"{self.connect_timeout_seconds} must be between 1 and 60 seconds",
        )
        for name in ("web_pool_size", "worker_pool_size"):
            value = getattr(self, name)
            require(value >= 1, f"runtime.{name}", f"{value} must be at least 1 (a pool needs a connection)")
        require(self.max_overflow >= 0, "runtime.max_overflow", f"{self.max_overflow} must be 0 or more")
        require(
            self.pool_recycle_seconds > 0,
            "runtime.pool_recycle_seconds",
            f"{self.pool_recycle_seconds} must be positive",
        )
        require(
            self.healthcheck_timeout_ms >= 1,
            "runtime.healthcheck_timeout_ms",
            f"{self.healthcheck_timeout_ms} must be at least 1 ms",
        )
        # A probe is bounded by its own timeout; were statement_timeout shorter, the server would
        # cancel a slow-but-in-budget probe (57014) and a busy database would look down.
        require(
            self.statement_timeout_ms >= 1 and self.statement_timeout_ms > self.healthcheck_timeout_ms,
            "runtime.statement_timeout_ms",
            f"{self.statement_timeout_ms} must be at least 1 ms and greater than healthcheck_timeout_ms "
            f"({self.healthcheck_timeout_ms}): health probes must not be cancelled by the statement timeout",
        )


@config_section("")
@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Everything one environment (one CDK Stage) needs."""

    name: str
    account: str
    region: str
    network: NetworkConfig
    database: DatabaseConfig
    alerting: AlertingConfig
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    runtime: RuntimeContractConfig = field(default_factory=RuntimeContractConfig)
    # Issue 15 (config/recovery.py): vault lock, restore tests, DR region. Required: the DR region is a choice.
    recovery: RecoveryConfig

    def __post_init__(self) -> None:
        with environment_scope(self.name):
            self._check_sections_agree()
            self.recovery.check_against_environment(
                env_name=self.name,
                region=self.region,
                daily_snapshot_retention_days=self.database.daily_snapshot_retention_days,
            )
            self._check_identity()
            if self.name == "production":
                self._check_production_safety()
            if self.holds_patient_data:
                self._check_patient_data_log_retention()

    @property
    def holds_patient_data(self) -> bool:
        """Production, or an environment restored from a (production) snapshot."""
        return self.name == "production" or self.database.restore_from_snapshot_identifier is not None

    def log_retentions(self) -> dict[str, int]:
        """Every log retention this environment configures, by field (flow logs only for a created VPC)."""
        retentions = {
            "database.log_retention_days": self.database.log_retention_days,
            "migration.log_retention_days": self.migration.log_retention_days,
        }
        if self.network.creates_vpc:
            retentions["network.flow_log_retention_days"] = self.network.created_vpc().flow_log_retention_days
        return retentions

    def _check_patient_data_log_retention(self) -> None:
        why = (
            "production's retention"
            if self.name == "production"
            else "production's retention: restored from a production snapshot "
            f"({self.database.restore_from_snapshot_identifier!r}), it holds patient data"
        )
        for field_name, days in self.log_retentions().items():
            require(
                days >= PHI_LOG_RETENTION_DAYS,
                f"{self.name}.{field_name}",
                f"{days} days is shorter than {PHI_LOG_RETENTION_DAYS} days, {why}",
            )

    def _check_sections_agree(self) -> None:
        """Rules that span two sections."""
        # SQLAlchemy recycles a connection older than pool_recycle at checkout; a connection the server
        # closed for idleness is at least idle_session_timeout old, so it is recycled, never handed out.
        require(
            self.runtime.pool_recycle_seconds < self.database.idle_session_timeout_seconds,
            "runtime.pool_recycle_seconds",
            f"{self.runtime.pool_recycle_seconds} must be shorter than database.idle_session_timeout_seconds "
            f"({self.database.idle_session_timeout_seconds}): pools must recycle before the server drops idle sessions",
        )
        require(
            self.migration.minimum_backup_retention_days <= self.database.backup_retention_days,
            "migration.minimum_backup_retention_days",
            f"{self.migration.minimum_backup_retention_days} exceeds database.backup_retention_days "
            f"({self.database.backup_retention_days}): the migration pre-check could never pass",
        )
        require(
            self.alerting.thresholds.max_connections is not None
            or default_max_connections(self.database.instance_class) is not None,
            "alerting.thresholds.max_connections",
            f"must be set: the default max_connections of {self.database.instance_class!r} is unknown "
            f"(known classes: {', '.join(INSTANCE_CLASS_MEMORY_GIB)})",
        )

        require(
            self.alerting.cloudtrail_log_group_name is not None or self.region == IAM_EVENTS_REGION,
            "alerting.cloudtrail_log_group_name",
            f"must be set in {self.region}: without it the audit alerts are EventBridge rules, and EventBridge "
            f"receives IAM's events (the secret readers' policy changes) only in {IAM_EVENTS_REGION}",
        )

    def _check_identity(self) -> None:
        require(self.name in ENVIRONMENT_NAMES, "name", f"{self.name!r} must be one of {ENVIRONMENT_NAMES}")
        zones = self.network.availability_zones or ()
        require(
            all(zone[:-1] == self.region for zone in zones),
            "network.availability_zones",
            f"{zones!r} must all be zones of the environment's region {self.region!r} ('{self.region}a', ...)",
        )
        require(
            _ACCOUNT.match(self.account) is not None,
            f"{self.name}.account",
            f"{self.account!r} must be a 12-digit AWS account id",
        )
        require(
            _REGION.match(self.region) is not None,
            f"{self.name}.region",
            f"{self.region!r} is not an AWS region name such as 'us-east-1'",
        )

    def _check_production_safety(self) -> None:
        require(self.database.multi_az, "production.database.multi_az", "must be True in production")
        require(
            self.database.deletion_protection,
            "production.database.deletion_protection",
            "must be True in production",
        )
        if self.network.creates_vpc:
            max_azs = self.network.created_vpc().max_azs
            require(
                max_azs >= 3, "production.network.max_azs", f"{max_azs} is too few: production spans 3 AZs"
            )
        require(
            self.runtime.pgsslmode == "verify-full",
            "production.runtime.pgsslmode",
            f"{self.runtime.pgsslmode!r} must be 'verify-full' in production (the host name is verified too)",
        )
        snapshot = self.database.restore_from_snapshot_identifier
        require(
            snapshot is None or self.database.restore_cutover is not None,
            "production.database.restore_from_snapshot_identifier",
            f"{snapshot!r} needs an approved cutover: production is rebuilt from a snapshot only with "
            f"database.restore_cutover=RestoreCutover(snapshot_identifier={snapshot!r}, "
            "change_ticket='CHG-...', approved_by=('<incident lead>', '<reviewer>')) in the same PR "
            "(docs/decisions/0007)",
        )
        require(
            self.migration.backend_image_digest is not None,
            "production.migration.backend_image_tag",
            f"{self.migration.backend_image_tag!r} is a mutable tag: production pins the backend image by "
            "digest (backend_image_digest='sha256:...', backend_image_tag=None), so a new backend release "
            "changes the task definition and reaches `ops migrate` only through a reviewed deploy",
        )
        migration = self.migration
        require(
            migration.evidence_retention_mode == "compliance",
            "production.migration.evidence_retention_mode",
            f"{migration.evidence_retention_mode!r} must be 'compliance' in production: the migration evidence "
            "must not be deletable by any principal during its retention",
        )
        require(
            migration.evidence_retention_days >= PHI_LOG_RETENTION_DAYS,
            "production.migration.evidence_retention_days",
            f"{migration.evidence_retention_days} days is shorter than {PHI_LOG_RETENTION_DAYS} days (six years, "
            "HIPAA documentation retention)",
        )
        require(
            migration.require_applied_in is not None and migration.require_applied_in != self.name,
            "production.migration.require_applied_in",
            f"{migration.require_applied_in!r} must name the environment that applies a revision first "
            "(e.g. 'staging'): production accepts only revisions applied there",
        )

    @property
    def max_connections(self) -> int:
        """The database's max_connections: configured, or RDS's default for the instance class."""
        configured = self.alerting.thresholds.max_connections
        default = default_max_connections(self.database.instance_class)
        result = configured if configured is not None else default
        assert result is not None, "validated in __post_init__"
        return result

    @property
    def stage_id(self) -> str:
        """The CDK Stage id: a stable PascalCase literal (renaming it renames every stack)."""
        return self.name.capitalize()


def check_environments(environments: tuple[EnvironmentConfig, ...]) -> tuple[EnvironmentConfig, ...]:
    """Rules across environments: staging first (ops guide: stage every version upgrade in pre-production)."""
    by_name = {environment.name: environment for environment in environments}
    staging, production = by_name.get("staging"), by_name.get("production")
    if staging is not None and production is not None:
        require(
            int(production.database.engine_version) <= int(staging.database.engine_version),
            "production.database.engine_version",
            f"{production.database.engine_version} is ahead of staging's {staging.database.engine_version}: upgrade "
            "staging first, rehearse on a production snapshot, then production (README: Upgrading PostgreSQL)",
        )
    for environment in environments:
        _check_applied_in(environment, by_name)
    return environments


def _check_applied_in(environment: EnvironmentConfig, by_name: dict[str, EnvironmentConfig]) -> None:
    """`migration.require_applied_in` names an environment that lets this one read its records."""
    first = environment.migration.require_applied_in
    if first is None:
        return
    field_name = f"{environment.name}.migration.require_applied_in"
    require(
        first in by_name and first != environment.name,
        field_name,
        f"{first!r} must be another configured environment: one of "
        f"{tuple(name for name in by_name if name != environment.name)}",
    )
    require(
        environment.account in by_name[first].migration.applied_record_reader_accounts,
        f"{first}.migration.applied_record_reader_accounts",
        f"{by_name[first].migration.applied_record_reader_accounts!r} must include {environment.name}'s account "
        f"{environment.account}: {environment.name} reads {first}'s applied-revision records",
    )
    require(
        by_name[first].region == environment.region,
        field_name,
        f"{first} is in {by_name[first].region}, {environment.name} in {environment.region}: the applied-revision "
        "check reads the records in its own region",
    )
