"""Tables of what AWS (and libpq) accept, used by the configuration's checks.

Each table says where it comes from, so it can be checked against current documentation.
"""

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# Performance Insights retention: 7 (free tier), any multiple of 31 up to 23 months, or 731 days.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = (7, *(31 * month for month in range(1, 24)), 731)
ENHANCED_MONITORING_INTERVALS = (1, 5)

# RDS event categories each source type accepts (`aws rds describe-event-categories`).
RDS_EVENT_CATEGORIES: dict[str, frozenset[str]] = {
    "db-instance": frozenset(
        {
            "availability", "backup", "configuration change", "creation", "deletion", "failover",
            "failure", "low storage", "maintenance", "notification", "read replica", "recovery",
            "restoration", "security", "security patching",
        }
    ),
    "db-parameter-group": frozenset({"configuration change"}),
    "db-security-group": frozenset({"configuration change", "failure"}),
    "db-snapshot": frozenset({"creation", "deletion", "failure", "notification", "restoration"}),
}  # fmt: skip
# Memory (GiB) of the instance classes we run or would move to, for RDS's default
# max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000). Other classes need an
# explicit `alerting.thresholds.max_connections`.
INSTANCE_CLASS_MEMORY_GIB: dict[str, int] = {
    "t4g.micro": 1, "t4g.small": 2, "t4g.medium": 4, "t4g.large": 8, "t4g.xlarge": 16, "t4g.2xlarge": 32,
    "m7g.large": 8, "m7g.xlarge": 16, "m7g.2xlarge": 32, "m7g.4xlarge": 64, "m7g.8xlarge": 128,
    "r7g.large": 16, "r7g.xlarge": 32, "r7g.2xlarge": 64, "r7g.4xlarge": 128, "r7g.8xlarge": 256,
    "r6g.large": 16, "r6g.xlarge": 32, "r6g.2xlarge": 64, "r6g.4xlarge": 128, "r6g.8xlarge": 256,
}  # fmt: skip


def default_max_connections(instance_class: str) -> int | None:
    """RDS for PostgreSQL's default max_connections for a class in our table, else None.

    Uses the nominal memory of the class; RDS's DBInstanceClassMemory is a little smaller, so the
    real value is a few percent lower (configure `max_connections` to be exact).
    """
    memory_gib = INSTANCE_CLASS_MEMORY_GIB.get(instance_class)
    if memory_gib is None:
        return None
    return min(memory_gib * 1024**3 // 9531392, 5000)


# Fargate's CPU units and the memory (MiB) each allows.
FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}

# libpq's sslmode values; only the verifying ones are acceptable for PHI (production: verify-full).
LIBPQ_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
VERIFYING_SSLMODES = ("verify-ca", "verify-full")

# RDS for PostgreSQL major versions this project can run (and so name in `database.engine_version`).
# Check `aws rds describe-db-major-engine-versions --engine postgres` before adding one.
POSTGRES_MAJOR_VERSIONS = ("16", "17", "18")
# What happens at the end of a major version's standard support (CreateDBInstance EngineLifecycleSupport).
ENGINE_LIFECYCLE_SUPPORT = ("open-source-rds-extended-support", "open-source-rds-extended-support-disabled")
# CloudWatch Database Insights (Performance Insights' successor); advanced needs >= 15 months of retention.
DATABASE_INSIGHTS_MODES = ("standard", "advanced")
ADVANCED_INSIGHTS_MIN_RETENTION_DAYS = 465
