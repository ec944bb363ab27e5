"""Recovery settings (issue 15): vault lock, restore tests, the DR copy, RPO/RTO targets.

Plain Python (no aws_cdk). `RecoveryConfig` validates itself; `check_against_database` holds the
rules that span the recovery and database sections (called by `EnvironmentConfig`). Every message
names the field as `<env>.recovery.<field>` so a reader knows which environment to fix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from config.validation import ConfigError, require

VAULT_LOCK_MODES = ("governance", "compliance")
# AWS Backup: a compliance-mode lock needs a grace period (ChangeableForDays) of at least 3 days.
MIN_CHANGEABLE_FOR_DAYS = 3
# AWS Backup restore testing: the validation window is 0-168 hours, the start window 1-168 hours.
MAX_VALIDATION_WINDOW_HOURS = 168
# The smallest RDS classes that run PostgreSQL 17 with our parameter group (burstable, Graviton).
RESTORE_TEST_INSTANCE_CLASSES = (
    "t4g.micro",
    "t4g.small",
    "t4g.medium",
    "t4g.large",
    "m7g.large",
    "r7g.large",
)
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# An EventBridge/AWS Backup cron: six fields.
_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")
# The DR network (constructs/disaster_recovery_network.py): two isolated tiers (the validation function
# and endpoints, the restored instances) in each AZ, one subnet of this prefix per tier and AZ. Here, so
# the construct and the capacity check below use one value.
DR_SUBNET_MASK = 26
DR_SUBNET_TIERS = 2
# A VPC's IPv4 CIDR block: between /16 and /28 (Amazon VPC quotas).
MIN_VPC_PREFIX = 16
MIN_DR_AVAILABILITY_ZONES = 2
# A change ticket of the organisation's change process ("CHG-1234", "INC-42").
_CHANGE_TICKET = re.compile(r"^[A-Z][A-Z0-9]{1,9}-\d{1,10}$")
_APPROVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_CUTOVER_APPROVERS = 2


@dataclass(frozen=True, kw_only=True)
class RestoreCutover:
    """The approval of rebuilding production's instance from one snapshot (docs/decisions/0007).

    Set together with `database.restore_from_snapshot_identifier` (the same snapshot) in the cutover PR;
    production refuses the identifier without it. Both stay afterwards: CloudFormation must keep seeing
    the identifier (removing it would replace the restored instance with an empty one), and this record
    says who approved it. A later cutover needs a new change ticket: the replacement guard refuses a
    changed snapshot under the old ticket (tools/replacement_guard.py).
    """

    snapshot_identifier: str
    change_ticket: str
    # At least two people: the incident lead and a second reviewer of the PR.
    approved_by: tuple[str, ...]

    def __post_init__(self) -> None:
        require(
            _CHANGE_TICKET.match(self.change_ticket) is not None,
            "database.restore_cutover.change_ticket",
            f"{self.change_ticket!r} must be a change ticket id such as 'CHG-1234'",
        )
        require(
            len(set(self.approved_by)) >= MIN_CUTOVER_APPROVERS
            and len(set(self.approved_by)) == len(self.approved_by)
            and all(_APPROVER.match(name) for name in self.approved_by),
            "database.restore_cutover.approved_by",
            f"{self.approved_by!r} must name at least {MIN_CUTOVER_APPROVERS} different approvers "
            "(user names or e-mail addresses)",
        )


@dataclass(frozen=True, kw_only=True)
class RecoveryConfig:
    """What makes a restore provable: immutable backups, scheduled restore tests, a copy in a DR region.

    `rpo_minutes` / `rto_minutes` are the targets the README states and the restore tests measure
    against (RecoveryPointAgeSeconds, RestoreTimeSeconds).
    """

    rpo_minutes: int = 15
    rto_minutes: int = 240
    # Vault Lock on the primary and DR vaults: governance can be removed by a privileged principal,
    # compliance cannot once `vault_lock_changeable_for_days` has passed.
    vault_lock_mode: str = "compliance"
    vault_lock_changeable_for_days: int | None = 3
    vault_lock_min_retention_days: int = 7
    vault_lock_max_retention_days: int = 3650
    # Restore testing (AWS Backup): schedule, expected cadence (for the "no test ran" alarm), the
    # instance the restore lands on and how long it is kept for validation before AWS Backup deletes it.
    restore_test_schedule: str = "cron(0 9 1 * ? *)"
    restore_test_max_interval_days: int = 32
    restore_test_start_window_hours: int = 8
    restore_test_validation_window_hours: int = 4
    restore_test_instance_class: str = "t4g.medium"
    # Roles the validation checks for in every restore (beyond the master user).
    expected_roles: tuple[str, ...] = ("migration", "app_user")
    # The DR region receives a copy of every daily snapshot, kept this long.
    dr_region: str
    dr_copy_retention_days: int = 35
    # Restore tests of the DR copies, in the DR region (decision 0010). None: off. Less often than the
    # primary tests: the overdue alarm allows `dr_restore_test_max_interval_days` (at least the primary's).
    dr_restore_test_schedule: str | None = None
    dr_restore_test_max_interval_days: int = 95
    dr_restore_test_instance_class: str = "t4g.medium"
    # The isolated network the copies are restored into (no internet gateway, no NAT): its CIDR and its
    # AZs in dr_region (explicit, so synthesis needs no lookup there). Required with a schedule.
    dr_network_cidr: str = "10.90.0.0/24"
    dr_availability_zones: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self._check_targets()
        self._check_vault_lock()
        self._check_restore_tests()
        self._check_dr()
        self._check_dr_restore_tests()

    @property
    def tests_dr_copies(self) -> bool:
        return self.dr_restore_test_schedule is not None

    def _check_targets(self) -> None:
        require(
            5 <= self.rpo_minutes <= 1440,
            "recovery.rpo_minutes",
            f"{self.rpo_minutes} must be between 5 (PITR granularity) and 1440 minutes",
        )
        require(
            30 <= self.rto_minutes <= 2880,
            "recovery.rto_minutes",
            f"{self.rto_minutes} must be between 30 and 2880 minutes",
        )

    def _check_vault_lock(self) -> None:
        require(
            self.vault_lock_mode in VAULT_LOCK_MODES,
            "recovery.vault_lock_mode",
            f"{self.vault_lock_mode!r} is not one of {VAULT_LOCK_MODES}",
        )
        if self.vault_lock_mode == "compliance":
            require(
                self.vault_lock_changeable_for_days is not None
                and self.vault_lock_changeable_for_days >= MIN_CHANGEABLE_FOR_DAYS,
                "recovery.vault_lock_changeable_for_days",
                f"{self.vault_lock_changeable_for_days} must be at least {MIN_CHANGEABLE_FOR_DAYS} days in "
                "compliance mode (the grace period in which the lock can still be removed)",
            )
        else:
            require(
                self.vault_lock_changeable_for_days is None,
                "recovery.vault_lock_changeable_for_days",
                f"{self.vault_lock_changeable_for_days} applies only to compliance mode: set None in governance mode",
            )
        require(
            1 <= self.vault_lock_min_retention_days <= self.vault_lock_max_retention_days <= 36500,
            "recovery.vault_lock_min_retention_days",
            f"{self.vault_lock_min_retention_days} must be at least 1 and at most vault_lock_max_retention_days "
            f"({self.vault_lock_max_retention_days}, itself at most 36500)",
        )

    def _check_restore_tests(self) -> None:
        for name in ("restore_test_schedule",):
            value = getattr(self, name)
            if value is not None:
                require(
                    _CRON.match(value) is not None,
                    f"recovery.{name}",
                    f"{value!r} must be a six-field cron expression, e.g. 'cron(0 9 ? * MON *)'",
                )
        require(
            1 <= self.restore_test_max_interval_days <= 95,
            "recovery.restore_test_max_interval_days",
            f"{self.restore_test_max_interval_days} must be between 1 and 95 days",
        )
        require(
            1 <= self.restore_test_start_window_hours <= MAX_VALIDATION_WINDOW_HOURS,
            "recovery.restore_test_start_window_hours",
            f"{self.restore_test_start_window_hours} must be between 1 and {MAX_VALIDATION_WINDOW_HOURS} hours",
        )
        require(
            1 <= self.restore_test_validation_window_hours <= MAX_VALIDATION_WINDOW_HOURS,
            "recovery.restore_test_validation_window_hours",
            f"{self.restore_test_validation_window_hours} must be between 1 and {MAX_VALIDATION_WINDOW_HOURS} "
            "hours (the validation function needs time to connect)",
        )
        require(
            self.restore_test_instance_class in RESTORE_TEST_INSTANCE_CLASSES,
            "recovery.restore_test_instance_class",
            f"{self.restore_test_instance_class!r} is not one of {RESTORE_TEST_INSTANCE_CLASSES}",
        )
        require(
            all(_ROLE_NAME.match(role) for role in self.expected_roles),
            "recovery.expected_roles",
            f"{self.expected_roles!r} must be lowercase PostgreSQL role names",
        )

    def _check_dr(self) -> None:
        require(
            _REGION.match(self.dr_region) is not None,
            "recovery.dr_region",
            f"{self.dr_region!r} is not an AWS region name such as 'us-west-2'",
        )
        require(
            self.vault_lock_min_retention_days
            <= self.dr_copy_retention_days
            <= self.vault_lock_max_retention_days,
            "recovery.dr_copy_retention_days",
            f"{self.dr_copy_retention_days} must lie within the vault lock's retention "
            f"({self.vault_lock_min_retention_days}-{self.vault_lock_max_retention_days} days)",
        )

    def _check_dr_restore_tests(self) -> None:
        if self.dr_restore_test_schedule is None:
            return
        require(
            _CRON.match(self.dr_restore_test_schedule) is not None,
            "recovery.dr_restore_test_schedule",
            f"{self.dr_restore_test_schedule!r} must be a six-field cron expression, e.g. "
            "'cron(0 9 15 1,4,7,10 ? *)' (quarterly), or None (no DR restore tests)",
        )
        require(
            self.restore_test_max_interval_days <= self.dr_restore_test_max_interval_days <= 95,
            "recovery.dr_restore_test_max_interval_days",
            f"{self.dr_restore_test_max_interval_days} must be between restore_test_max_interval_days "
            f"({self.restore_test_max_interval_days}: DR copies are tested less often, never more) and 95 days",
        )
        require(
            self.dr_restore_test_instance_class in RESTORE_TEST_INSTANCE_CLASSES,
            "recovery.dr_restore_test_instance_class",
            f"{self.dr_restore_test_instance_class!r} is not one of {RESTORE_TEST_INSTANCE_CLASSES}",
        )
        network = self._dr_network()
        zones = self.dr_availability_zones or ()
        require(
            len(zones) >= MIN_DR_AVAILABILITY_ZONES
            and len(set(zones)) == len(zones)
            and all(_AVAILABILITY_ZONE.match(zone) and zone[:-1] == self.dr_region for zone in zones),
            "recovery.dr_availability_zones",
            f"{self.dr_availability_zones!r} must name at least {MIN_DR_AVAILABILITY_ZONES} distinct zones of "
            f"dr_region {self.dr_region!r} ('{self.dr_region}a', ...): a DB subnet group spans two AZs",
        )
        subnets = DR_SUBNET_TIERS * len(zones)
        # The largest prefix that still holds `subnets` subnets of /DR_SUBNET_MASK.
        largest_prefix = DR_SUBNET_MASK - (subnets - 1).bit_length()
        require(
            network.prefixlen <= largest_prefix,
            "recovery.dr_network_cidr",
            f"{self.dr_network_cidr!r} is too small: {DR_SUBNET_TIERS} tiers x {len(zones)} dr_availability_zones "
            f"need {subnets} subnets of /{DR_SUBNET_MASK}, so a prefix of /{largest_prefix} or shorter "
            f"(and /{MIN_VPC_PREFIX} or longer)",
        )

    def _dr_network(self) -> ipaddress.IPv4Network:
        """`dr_network_cidr` as a network: an IPv4 network address (no host bits) with a VPC-sized prefix."""
        try:
            network = ipaddress.ip_network(self.dr_network_cidr, strict=True)
        except ValueError as error:
            raise ConfigError(
                "recovery.dr_network_cidr",
                f"{self.dr_network_cidr!r} is not an IPv4 network in CIDR notation ({error}); e.g. '10.90.0.0/24' "
                "(the network address: no host bits set)",
            ) from None
        require(
            isinstance(network, ipaddress.IPv4Network) and network.prefixlen >= MIN_VPC_PREFIX,
            "recovery.dr_network_cidr",
            f"{self.dr_network_cidr!r} must be an IPv4 network with a prefix of /{MIN_VPC_PREFIX} or longer "
            "(a VPC's CIDR block), e.g. '10.90.0.0/24'",
        )
        assert isinstance(network, ipaddress.IPv4Network)
        return network

    def check_against_environment(
        self, *, env_name: str, region: str, daily_snapshot_retention_days: int
    ) -> None:
        """Rules spanning sections: the DR region differs, retention fits the lock and policy."""
        require(
            self.dr_region != region,
            f"{env_name}.recovery.dr_region",
            f"{self.dr_region!r} is the environment's own region: the DR copy must go to another region",
        )
        require(
            self.vault_lock_min_retention_days
            <= daily_snapshot_retention_days
            <= self.vault_lock_max_retention_days,
            f"{env_name}.recovery.vault_lock_min_retention_days",
            f"the backup plan keeps snapshots {daily_snapshot_retention_days} days "
            "(database.daily_snapshot_retention_days), outside the vault lock's "
            f"{self.vault_lock_min_retention_days}-{self.vault_lock_max_retention_days} days: the vault "
            "would refuse the plan's recovery points",
        )
        require(
            self.dr_copy_retention_days >= daily_snapshot_retention_days,
            f"{env_name}.recovery.dr_copy_retention_days",
            f"{self.dr_copy_retention_days} is shorter than database.daily_snapshot_retention_days "
            f"({daily_snapshot_retention_days}): the DR copy must be kept at least as long as the original",
        )
        if env_name == "production":
            require(
                self.vault_lock_mode == "compliance",
                "production.recovery.vault_lock_mode",
                f"{self.vault_lock_mode!r} must be 'compliance' in production (no one may delete recovery points)",
            )
            require(
                self.tests_dr_copies,
                "production.recovery.dr_restore_test_schedule",
                "must be set in production: the DR copies are restored and validated on a schedule "
                "(e.g. 'cron(0 9 15 1,4,7,10 ? *)', quarterly)",
            )
