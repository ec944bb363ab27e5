"""Typed, validated configuration for each deployment environment.

Every value that differs between staging and production lives here, in code, so a PR that
changes one shows up in review next to its `cdk diff`. Each dataclass validates itself when it is
built: a bad value stops `cdk synth` with a message naming the field and what is allowed. Nothing
is ever silently corrected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# Performance Insights retention: 7 (free tier), any multiple of 31 up to 23 months, or 731 days.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = (7, *(31 * month for month in range(1, 24)), 731)
ENHANCED_MONITORING_INTERVALS = (1, 5)
ROTATION_INTERVALS_DAYS = (90, 120)
ENVIRONMENT_NAMES = ("staging", "production")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
POSTGRES_RESERVED_ROLE_NAMES = ("postgres", "admin", "rdsadmin", "root", "migration", "app_user")

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_DAILY_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_WEEKLY_WINDOW = re.compile(r"^([a-z]{3}):(\d{2}):(\d{2})-([a-z]{3}):(\d{2}):(\d{2})$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_INSTANCE_CLASS = re.compile(r"^[a-z][a-z0-9]*\.[a-z0-9]+$")


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field and what is allowed."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"invalid configuration {field_path}: {problem}")
        self.field_path = field_path


def _require(condition: bool, field_path: str, problem: str) -> None:
    if not condition:
        raise ConfigError(field_path, problem)


def _minute_of_day(hours: str, minutes: str, field_path: str) -> int:
    hour, minute = int(hours), int(minutes)
    _require(0 <= hour <= 23 and 0 <= minute <= 59, field_path, "hours must be 00-23 and minutes 00-59")
    return hour * 60 + minute


def daily_window_minutes(window: str, field_path: str) -> tuple[int, int]:
    """Parse an RDS daily window 'hh:mm-hh:mm' (UTC) into (start, end) minutes of the day.

    The end may be smaller than the start when the window crosses midnight; callers use
    `_intervals` to reason about it.
    """
    match = _DAILY_WINDOW.match(window)
    _require(match is not None, field_path, f"{window!r} is not of the form 'hh:mm-hh:mm' (UTC)")
    assert match is not None
    start = _minute_of_day(match[1], match[2], field_path)
    end = _minute_of_day(match[3], match[4], field_path)
    duration = (end - start) % MINUTES_PER_DAY
    _require(duration >= 30, field_path, f"{window!r} must last at least 30 minutes (RDS minimum)")
    return start, end


def weekly_window_minutes(window: str, field_path: str) -> tuple[int, int]:
    """Parse an RDS maintenance window 'ddd:hh:mm-ddd:hh:mm' (UTC) into minutes of the week."""
    match = _WEEKLY_WINDOW.match(window)
    _require(
        match is not None,
        field_path,
        f"{window!r} is not of the form 'ddd:hh:mm-ddd:hh:mm' with ddd one of {', '.join(WEEKDAYS)}",
    )
    assert match is not None
    for day in (match[1], match[4]):
        _require(day in WEEKDAYS, field_path, f"day {day!r} must be one of {', '.join(WEEKDAYS)}")
    start = WEEKDAYS.index(match[1]) * MINUTES_PER_DAY + _minute_of_day(match[2], match[3], field_path)
    end = WEEKDAYS.index(match[4]) * MINUTES_PER_DAY + _minute_of_day(match[5], match[6], field_path)
    duration = (end - start) % MINUTES_PER_WEEK
    _require(30 <= duration <= MINUTES_PER_DAY, field_path, f"{window!r} must last 30 minutes to 24 hours")
    return start, end


def _intervals(start: int, end: int, period: int) -> list[tuple[int, int]]:
    """Half-open intervals within [0, period) covering a window that may wrap around."""
    if start < end:
        return [(start, end)]
    return [(start, period), (0, end)]


def _weekly_intervals_of_daily_window(start: int, end: int) -> list[tuple[int, int]]:
    intervals: list[tuple[int, int]] = []
    for day in range(7):
        offset = day * MINUTES_PER_DAY
        shifted_end = end if start < end else end + MINUTES_PER_DAY
        intervals.extend(
            _intervals(
                (offset + start) % MINUTES_PER_WEEK,
                (offset + shifted_end) % MINUTES_PER_WEEK,
                MINUTES_PER_WEEK,
            )
        )
    return intervals


def windows_overlap(daily_window: tuple[int, int], weekly_window: tuple[int, int]) -> bool:
    """Whether a window that recurs every day overlaps a weekly window (both in UTC minutes)."""
    weekly = _intervals(*weekly_window, MINUTES_PER_WEEK)
    return any(
        a_start < b_end and b_start < a_end
        for a_start, a_end in _weekly_intervals_of_daily_window(*daily_window)
        for b_start, b_end in weekly
    )


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The VPC that hosts the database and the application tasks that reach it."""

    cidr: str = "10.40.0.0/16"
    max_azs: int = 3
    nat_gateways: int = 1
    # Use an existing VPC (looked up by id at synth; its lookup must be in cdk.context.json)
    # instead of creating one. Its owner then provides subnets, NACLs, endpoints and flow logs.
    existing_vpc_id: str | None = None
    flow_log_retention_days: int = 365

    def __post_init__(self) -> None:
        _require(self.max_azs >= 2, "network.max_azs", f"{self.max_azs} is too few: at least 2 AZs")
        _require(
            1 <= self.nat_gateways <= self.max_azs,
            "network.nat_gateways",
            f"{self.nat_gateways} must be between 1 and max_azs ({self.max_azs})",
        )
        _require(
            re.match(r"^\d+\.\d+\.\d+\.\d+/(1[6-9]|2[0-4])$", self.cidr) is not None,
            "network.cidr",
            f"{self.cidr!r} must be an IPv4 CIDR with a prefix between /16 and /24",
        )
        if self.existing_vpc_id is not None:
            _require(
                _VPC_ID.match(self.existing_vpc_id) is not None,
                "network.existing_vpc_id",
                f"{self.existing_vpc_id!r} is not a VPC id (vpc-<8 or 17 hex digits>)",
            )
        _require(
            self.flow_log_retention_days in CLOUDWATCH_RETENTION_DAYS,
            "network.flow_log_retention_days",
            f"{self.flow_log_retention_days} is not one of {CLOUDWATCH_RETENTION_DAYS}",
        )


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    """The PostgreSQL instance, its backups, monitoring and logging."""

    instance_identifier: str
    # Major version pinned here; the minor version is the newest the pinned aws-cdk-lib knows.
    engine_version: str = "17.9"
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
    secret_rotation_days: int = 90

    def __post_init__(self) -> None:
        _require(
            _IDENTIFIER.match(self.instance_identifier) is not None
            and "--" not in self.instance_identifier
            and not self.instance_identifier.endswith("-"),
            "database.instance_identifier",
            f"{self.instance_identifier!r} must be 1-63 lowercase letters, digits or single hyphens, "
            "starting with a letter",
        )
        _require(
            re.match(r"^\d{2}\.\d+$", self.engine_version) is not None,
            "database.engine_version",
            f"{self.engine_version!r} must be '<major>.<minor>', e.g. '17.9'",
        )
        _require(
            _INSTANCE_CLASS.match(self.instance_class) is not None,
            "database.instance_class",
            f"{self.instance_class!r} must look like 'r7g.large' (without the 'db.' prefix)",
        )
        _require(
            20 <= self.allocated_storage_gib <= 65536,
            "database.allocated_storage_gib",
            f"{self.allocated_storage_gib} must be between 20 and 65536 GiB (gp3)",
        )
        _require(
            self.max_allocated_storage_gib > self.allocated_storage_gib,
            "database.max_allocated_storage_gib",
            f"{self.max_allocated_storage_gib} must exceed allocated_storage_gib "
            f"({self.allocated_storage_gib}) so storage autoscaling can grow",
        )
        _require(
            _PG_NAME.match(self.database_name) is not None,
            "database.database_name",
            f"{self.database_name!r} must be a lowercase PostgreSQL identifier",
        )
        _require(
            _PG_NAME.match(self.master_username) is not None
            and self.master_username not in POSTGRES_RESERVED_ROLE_NAMES,
            "database.master_username",
            f"{self.master_username!r} must be a lowercase identifier and not one of "
            f"{', '.join(POSTGRES_RESERVED_ROLE_NAMES)}",
        )
        _require(
            len(self.application_schemas) >= 1
            and all(
                _PG_NAME.match(schema) and not schema.startswith("pg_") for schema in self.application_schemas
            ),
            "database.application_schemas",
            f"{self.application_schemas!r} must list at least one lowercase schema name not starting with pg_",
        )
        _require(
            7 <= self.backup_retention_days <= 35,
            "database.backup_retention_days",
            f"{self.backup_retention_days} must be between 7 and 35 days (ops guide minimum 7, RDS max 35)",
        )
        backup = daily_window_minutes(self.backup_window, "database.backup_window")
        maintenance = weekly_window_minutes(self.maintenance_window, "database.maintenance_window")
        _require(
            not windows_overlap(backup, maintenance),
            "database.backup_window",
            f"{self.backup_window!r} overlaps the maintenance window {self.maintenance_window!r}",
        )
        snapshot_start = daily_window_minutes(
            f"{self.daily_snapshot_start}-00:00", "database.daily_snapshot_start"
        )[0]
        # AWS Backup starts the job within an hour of the scheduled time.
        snapshot = (snapshot_start, (snapshot_start + 60) % MINUTES_PER_DAY)
        _require(
            not windows_overlap(snapshot, maintenance),
            "database.daily_snapshot_start",
            f"{self.daily_snapshot_start!r} (+1 h start window) overlaps the maintenance window "
            f"{self.maintenance_window!r}",
        )
        _require(
            not windows_overlap(snapshot, backup),
            "database.daily_snapshot_start",
            f"{self.daily_snapshot_start!r} (+1 h start window) overlaps the backup window {self.backup_window!r}",
        )
        _require(
            7 <= self.daily_snapshot_retention_days <= 3650,
            "database.daily_snapshot_retention_days",
            f"{self.daily_snapshot_retention_days} must be between 7 and 3650 days",
        )
        _require(
            self.monitoring_interval_seconds in ENHANCED_MONITORING_INTERVALS,
            "database.monitoring_interval_seconds",
            f"{self.monitoring_interval_seconds} is not allowed: one of {ENHANCED_MONITORING_INTERVALS} "
            "seconds (ops guide: 1-5 s granularity)",
        )
        _require(
            self.performance_insights_retention_days in PERFORMANCE_INSIGHTS_RETENTION_DAYS,
            "database.performance_insights_retention_days",
            f"{self.performance_insights_retention_days} is not accepted by RDS: 7, a multiple of 31 "
            "up to 713, or 731",
        )
        _require(
            self.log_retention_days in CLOUDWATCH_RETENTION_DAYS,
            "database.log_retention_days",
            f"{self.log_retention_days} is not one of CloudWatch's values {CLOUDWATCH_RETENTION_DAYS}",
        )
        _require(
            self.log_retention_days >= 365,
            "database.log_retention_days",
            f"{self.log_retention_days} is too short: audit logs of a HIPAA workload keep >= 365 days",
        )
        _require(
            100 <= self.slow_statement_threshold_ms <= 60_000,
            "database.slow_statement_threshold_ms",
            f"{self.slow_statement_threshold_ms} must be between 100 and 60000 ms",
        )
        _require(
            self.secret_rotation_days in ROTATION_INTERVALS_DAYS,
            "database.secret_rotation_days",
            f"{self.secret_rotation_days} is not allowed: one of {ROTATION_INTERVALS_DAYS} days (ops guide)",
        )
        if self.restore_from_snapshot_identifier is not None:
            _require(
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
        return self.engine_version.split(".", 1)[0]


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Everything one environment (one CDK Stage) needs."""

    name: str
    account: str
    region: str
    network: NetworkConfig = field(default_factory=NetworkConfig)
    database: DatabaseConfig

    def __post_init__(self) -> None:
        _require(self.name in ENVIRONMENT_NAMES, "name", f"{self.name!r} must be one of {ENVIRONMENT_NAMES}")
        _require(
            _ACCOUNT.match(self.account) is not None,
            f"{self.name}.account",
            f"{self.account!r} must be a 12-digit AWS account id",
        )
        _require(
            _REGION.match(self.region) is not None,
            f"{self.name}.region",
            f"{self.region!r} is not an AWS region name such as 'us-east-1'",
        )
        if self.name == "production":
            _require(self.database.multi_az, "production.database.multi_az", "must be True in production")
            _require(
                self.database.deletion_protection,
                "production.database.deletion_protection",
                "must be True in production",
            )
            _require(
                self.network.max_azs >= 3,
                "production.network.max_azs",
                f"{self.network.max_azs} is too few: production spans 3 AZs",
            )
            _require(
                self.database.restore_from_snapshot_identifier is None,
                "production.database.restore_from_snapshot_identifier",
                "must be None: production is never rebuilt from a snapshot by configuration",
            )

    @property
    def stage_id(self) -> str:
        """The CDK Stage id: a stable PascalCase literal (renaming it renames every stack)."""
        return self.name.capitalize()


# The deployment accounts. Replace these with your organisation's account ids (README: "Accounts").
STAGING_ACCOUNT = "111111111111"
PRODUCTION_ACCOUNT = "222222222222"
REGION = "us-east-1"

STAGING = EnvironmentConfig(
    name="staging",
    account=STAGING_ACCOUNT,
    region=REGION,
    network=NetworkConfig(cidr="10.41.0.0/16", max_azs=2, nat_gateways=1),
    database=DatabaseConfig(
        instance_identifier="revenuepilot-staging",
        instance_class="t4g.large",
        allocated_storage_gib=50,
        max_allocated_storage_gib=200,
        # Staging is patched first: its window is two days before production's.
        maintenance_window="fri:05:00-fri:06:00",
        log_retention_days=365,
        restore_from_snapshot_identifier=None,
    ),
)

PRODUCTION = EnvironmentConfig(
    name="production",
    account=PRODUCTION_ACCOUNT,
    region=REGION,
    network=NetworkConfig(cidr="10.40.0.0/16", max_azs=3, nat_gateways=3),
    database=DatabaseConfig(
        instance_identifier="revenuepilot-production",
        instance_class="r7g.large",
        maintenance_window="sun:05:00-sun:06:00",
        performance_insights_retention_days=31,
        log_retention_days=2192,
        monitoring_interval_seconds=1,
    ),
)

ENVIRONMENTS: tuple[EnvironmentConfig, ...] = (STAGING, PRODUCTION)
