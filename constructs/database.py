"""The PostgreSQL instance and everything that must exist before its first boot.

Creates the parameter group (TLS enforced, slow statements and DDL logged, no parameter values
logged), a DB subnet group of its own, a security group without rules of its own, the exported
log groups (CMK, retention, RETAIN; created here so their retention and key are ours, which is
why the instance identifier is fixed), the Enhanced Monitoring role, and the Multi-AZ instance
(or, for staging, an instance restored from a production snapshot).

The master password is managed by RDS (`ManageMasterUserPassword`): RDS generates it, stores
`{"username", "password"}` in a Secrets Manager secret (`rds!db-...`) encrypted with the database CMK
and rotates it itself; no CloudFormation-owned secret and no rotation Lambda exist for it (decision
0008). Its rotation schedule is set by `MasterSecretRotationSchedule` (constructs/master_secret_rotation.py).

Exposes `instance`, `master_secret` (the RDS-managed secret, read-only reference), `master_secret_arn`
(`MasterUserSecret.SecretArn`), `security_group`, `parameter_group`, `subnet_group`, `log_groups` (by
export name) and `allow_connections_from()` for consumers in other stacks.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager

from config.parameter_group import parameter_group_settings
from config.schema import DatabaseConfig
from constructs import Construct
from constructs.compliance import acknowledge
from constructs.log_group import EncryptedLogGroup
from contract.compliance import REGULATORY_PACKS
from contract.names import RESTORE_CUTOVER_METADATA

POSTGRES_PORT = 5432
# RDS for PostgreSQL exports only these two logs. There is no `slowquery` export (that is MySQL):
# slow statements land in the `postgresql` log through log_min_duration_statement.
LOG_EXPORTS = ("postgresql", "upgrade")
# RDS names the secret of an instance's managed master password `rds!db-<uuid>`.
MANAGED_MASTER_SECRET_NAME_PATTERN = "rds!db-*"  # noqa: S105 - a name pattern, not a secret
# Construct id of each family's parameter group: literals, never derived (17's is the deployed original).
PARAMETER_GROUP_IDS = {
    "16": "ParameterGroupPostgres16",
    "17": "ParameterGroup",
    "18": "ParameterGroupPostgres18",
}


class PostgresDatabase(Construct):
    """A Multi-AZ, CMK-encrypted PostgreSQL instance configured per the ops guide."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DatabaseConfig,
        vpc: ec2.IVpc,
        database_subnets: ec2.SubnetSelection,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(config.engine_version, config.engine_major_version)
        )
        self._parameter_group(engine)
        self._placement(vpc, database_subnets)
        self._log_groups(encryption_key)
        monitoring_role = self._monitoring_role()
        properties = self._instance_properties(
            engine=engine, vpc=vpc, encryption_key=encryption_key, monitoring_role=monitoring_role
        )
        self.instance: rds.DatabaseInstance | rds.DatabaseInstanceFromSnapshot = self._instance(
            properties, encryption_key=encryption_key
        )
        for log_group in self.log_groups.values():
            self.instance.node.add_dependency(log_group)
        self._expose_master_secret()
        self._explain_major_only_version()

    def _explain_major_only_version(self) -> None:
        """cfn-lint's W3691 on this one resource: its deprecated-version table lists every bare major
        ("16", "17") because DescribeDBEngineVersions names only full versions. A bare major is what we mean:
        RDS resolves it to its default minor and never downgrades (README: Engine versions). Every other
        cfn-lint rule still applies to the instance."""
        resource = self.instance.node.default_child
        assert isinstance(resource, cdk.CfnResource)
        resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3691"]}})

    def _parameter_group(self, engine: rds.IInstanceEngine) -> None:
        """The instance's parameter group, of its major version's family; during a major upgrade also the
        old family's, kept (unused) until the follow-up deploy so CloudFormation never deletes the group
        the instance still uses while the upgrade runs."""
        config = self._config
        self.parameter_group = self._family_parameter_group(config.engine_version, engine)
        previous = config.upgrading_from_engine_version
        if previous is not None:
            kept = self._family_parameter_group(
                previous,
                rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.of(previous, previous)),
            )
            # The L2 renders its resource only when bound; the kept group has no instance to bind it.
            kept.bind_to_instance()

    def _family_parameter_group(self, major_version: str, engine: rds.IInstanceEngine) -> rds.ParameterGroup:
        """One parameter group per PostgreSQL family, all from the one definition (config/parameter_group.py).

        The ids are literals per family: 17's keeps the original id "ParameterGroup" (deployed; a new id would
        replace it), later families get their own, so the new group exists before the instance moves to it.
        """
        construct_id = PARAMETER_GROUP_IDS.get(major_version)
        if construct_id is None:
            raise ValueError(
                f"database.engine_version {major_version!r}: add its parameter group id to PARAMETER_GROUP_IDS "
                f"(known: {', '.join(PARAMETER_GROUP_IDS)})"
            )
        return rds.ParameterGroup(
            self,
            construct_id,
            engine=engine,
            description=f"RevenuePilot PostgreSQL {major_version}: TLS enforced, PHI-safe logging",
            parameters=parameter_group_settings(self._config),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _placement(self, vpc: ec2.IVpc, database_subnets: ec2.SubnetSelection) -> None:
        """A DB subnet group of its own and a security group without rules of its own."""
        self.subnet_group = rds.SubnetGroup(
            self,
            "SubnetGroup",
            vpc=vpc,
            vpc_subnets=database_subnets,
            description="Isolated database subnets, separate from the application tier",
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="PostgreSQL: TCP 5432 from granted security groups only",
            allow_all_outbound=False,
        )

    def _log_groups(self, encryption_key: kms.IKey) -> None:
        """The exported logs' groups, created before the instance so retention and key are ours."""
        config = self._config
        self.log_groups: dict[str, logs.ILogGroup] = {
            export: EncryptedLogGroup(
                self,
                f"{export.capitalize()}Logs",
                log_group_name=f"/aws/rds/instance/{config.instance_identifier}/{export}",
                retention_days=config.log_retention_days,
                encryption_key=encryption_key,
            ).log_group
            for export in LOG_EXPORTS
        }

    def _monitoring_role(self) -> iam.Role:
        monitoring_role = iam.Role(
            self,
            "MonitoringRole",
            assumed_by=iam.ServicePrincipal("monitoring.rds.amazonaws.com"),
            description="Enhanced Monitoring agent publishes OS metrics to CloudWatch Logs",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonRDSEnhancedMonitoringRole")
            ],
        )
        acknowledge(
            monitoring_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]",
            "AWS maintains this policy for the Enhanced Monitoring agent; it only writes the RDSOSMetrics log group.",
        )

        return monitoring_role

    def _instance_properties(
        self,
        *,
        engine: rds.IInstanceEngine,
        vpc: ec2.IVpc,
        encryption_key: kms.IKey,
        monitoring_role: iam.IRole,
    ) -> dict[str, Any]:
        """The properties a new and a restored instance share."""
        config = self._config
        return {
            "engine": engine,
            "instance_identifier": config.instance_identifier,
            "instance_type": ec2.InstanceType(config.instance_class),
            "vpc": vpc,
            "subnet_group": self.subnet_group,
            "security_groups": [self.security_group],
            "parameter_group": self.parameter_group,
            "port": POSTGRES_PORT,
            "multi_az": config.multi_az,
            "publicly_accessible": False,
            "storage_type": rds.StorageType.GP3,
            "storage_encrypted": True,
            "storage_encryption_key": encryption_key,
            "allocated_storage": config.allocated_storage_gib,
            "max_allocated_storage": config.max_allocated_storage_gib,
            "ca_certificate": rds.CaCertificate.RDS_CA_RSA2048_G1,
            "iam_authentication": True,
            "auto_minor_version_upgrade": True,
            # Only in the upgrade PR (config.upgrading_from_engine_version): never a silent major upgrade.
            "allow_major_version_upgrade": config.upgrading_from_engine_version is not None,
            "backup_retention": cdk.Duration.days(config.backup_retention_days),
            "preferred_backup_window": config.backup_window,
            "preferred_maintenance_window": config.maintenance_window,
            "copy_tags_to_snapshot": True,
            "delete_automated_backups": False,
            "deletion_protection": config.deletion_protection,
            "removal_policy": cdk.RemovalPolicy.SNAPSHOT,
            # Both explicit (never AWS's defaults); the config holds the API values, the enums their names.
            "engine_lifecycle_support": rds.EngineLifecycleSupport[
                config.engine_lifecycle_support.upper().replace("-", "_")
            ],
            "database_insights_mode": rds.DatabaseInsightsMode[config.database_insights_mode.upper()],
            "enable_performance_insights": True,
            "performance_insight_encryption_key": encryption_key,
            "performance_insight_retention": _performance_insights_retention(
                config.performance_insights_retention_days
            ),
            "monitoring_interval": cdk.Duration.seconds(config.monitoring_interval_seconds),
            "monitoring_role": monitoring_role,
            "cloudwatch_logs_exports": list(LOG_EXPORTS),
        }

    def _instance(
        self, common: dict[str, Any], *, encryption_key: kms.IKey
    ) -> rds.DatabaseInstance | rds.DatabaseInstanceFromSnapshot:
        """A new instance, or one restored from a snapshot; either way RDS manages the master password."""
        config = self._config
        if config.restore_from_snapshot_identifier is None:
            return rds.DatabaseInstance(
                self,
                "Instance",
                database_name=config.database_name,
                # RDS generates, stores (under the CMK) and rotates the master password: decision 0008.
                manage_master_user_password=True,
                credentials=rds.Credentials.from_username(
                    config.master_username, encryption_key=encryption_key
                ),
                **common,
            )
        else:
            # Encryption comes from the snapshot: copy the production snapshot into this account
            # re-encrypted with this environment's CMK first (README, "Staging from a production snapshot").
            del common["storage_encrypted"], common["storage_encryption_key"]
            instance = rds.DatabaseInstanceFromSnapshot(
                self, "Instance", snapshot_identifier=config.restore_from_snapshot_identifier, **common
            )
            # The L2 has no manageMasterUserPassword for a restore: RDS replaces the snapshot's master
            # password with a managed one in a new secret under this environment's CMK.
            restored = instance.node.default_child
            assert isinstance(restored, rds.CfnDBInstance)
            restored.manage_master_user_password = True
            restored.master_user_secret = rds.CfnDBInstance.MasterUserSecretProperty(
                kms_key_id=encryption_key.key_arn
            )
            cutover = config.restore_cutover
            if cutover is not None:
                # The approval travels with the template (CloudFormation keeps it in the stack's history) and
                # the replacement guard reads it: a later snapshot change under the same ticket is refused.
                restored.add_metadata(
                    RESTORE_CUTOVER_METADATA,
                    {
                        "SnapshotIdentifier": cutover.snapshot_identifier,
                        "ChangeTicket": cutover.change_ticket,
                        "ApprovedBy": list(cutover.approved_by),
                    },
                )
            for rule in ("AwsSolutions-RDS2", *(f"{pack}-RDSStorageEncrypted" for pack in REGULATORY_PACKS)):
                acknowledge(
                    instance,
                    rule,
                    "Restored from an encrypted snapshot, which CloudFormation does not let us restate: the "
                    "snapshot is copied re-encrypted with this environment's CMK before the restore (README).",
                )
        return instance

    def _expose_master_secret(self) -> None:
        cfn_instance = self.instance.node.default_child
        assert isinstance(cfn_instance, rds.CfnDBInstance)
        # `MasterUserSecret.SecretArn`: the RDS-managed secret, {"username", "password"} only. RDS owns
        # it (and deletes it only with the instance or when management is turned off).
        self.master_secret_arn: str = cfn_instance.attr_master_user_secret_secret_arn
        self.master_secret: secretsmanager.ISecret = secretsmanager.Secret.from_secret_complete_arn(
            self, "MasterSecret", self.master_secret_arn
        )
        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The ops guide and every client (DATABASE_URL, NACLs, security groups) use 5432; a non-default "
            "port is obscurity, while TLS, the security group and the NACL are the actual controls.",
        )

    @property
    def endpoint_address(self) -> str:
        return self.instance.db_instance_endpoint_address

    @property
    def endpoint_port(self) -> str:
        return self.instance.db_instance_endpoint_port

    def client_security_group(
        self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, description: str, rule_id: str
    ) -> ec2.SecurityGroup:
        """A security group in `scope` for a client of the database: egress only to PostgreSQL here.

        The database admits it (rule `rule_id`, created in `scope`, see `allow_connections_from`). Callers
        add whatever else the client needs (e.g. HTTPS to the interface endpoints).
        """
        return postgres_client_security_group(
            scope,
            construct_id,
            vpc=vpc,
            database_security_group=self.security_group,
            description=description,
            rule_id=rule_id,
        )

    def allow_connections_from(self, peer: ec2.ISecurityGroup, *, scope: Construct, rule_id: str) -> None:
        """Admit TCP 5432 from `peer`, creating the rule in the consumer's `scope`.

        The rule lives in the consumer's stack, so the database stack never references consumers
        and no cross-stack cycle can form. `rule_id` is a stable PascalCase construct id.
        """
        admit_postgres_client(self.security_group, peer, scope=scope, rule_id=rule_id)


def postgres_client_security_group(
    scope: Construct,
    construct_id: str,
    *,
    vpc: ec2.IVpc,
    database_security_group: ec2.ISecurityGroup,
    description: str,
    rule_id: str,
) -> ec2.SecurityGroup:
    """A client's security group (egress: PostgreSQL to `database_security_group` only), admitted by it."""
    security_group = ec2.SecurityGroup(
        scope, construct_id, vpc=vpc, description=description, allow_all_outbound=False
    )
    security_group.add_egress_rule(
        ec2.Peer.security_group_id(database_security_group.security_group_id),
        ec2.Port.tcp(POSTGRES_PORT),
        "PostgreSQL",
    )
    admit_postgres_client(database_security_group, security_group, scope=scope, rule_id=rule_id)
    return security_group


def admit_postgres_client(
    database_security_group: ec2.ISecurityGroup, peer: ec2.ISecurityGroup, *, scope: Construct, rule_id: str
) -> None:
    """TCP 5432 into `database_security_group` from `peer`, as a rule in `scope`."""
    ec2.CfnSecurityGroupIngress(
        scope,
        rule_id,
        group_id=database_security_group.security_group_id,
        source_security_group_id=peer.security_group_id,
        ip_protocol="tcp",
        from_port=POSTGRES_PORT,
        to_port=POSTGRES_PORT,
        description=f"PostgreSQL from {scope.node.path}",
    )


def _performance_insights_retention(days: int) -> rds.PerformanceInsightRetention:
    if days == 7:
        return rds.PerformanceInsightRetention.DEFAULT
    if days == 731:
        return rds.PerformanceInsightRetention.LONG_TERM
    return rds.PerformanceInsightRetention[f"MONTHS_{days // 31}"]
