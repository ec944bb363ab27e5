"""Monitoring stack: alerting and audit for one environment. Stateless; not termination-protected.

The alert topic (email, optional Slack), RDS event subscriptions, audit alerts on sensitive API
calls (CloudTrail metric filters, or EventBridge rules without a CloudTrail log group), secret
rotation failures, metric alarms and the dashboard, and optional shipping of the database logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_

from config.aws_limits import has_burstable_ebs
from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.alerting import AlertTopic
from constructs.audit_alerts import (
    RDS_MANAGED_SECRET_NAME_PREFIX,
    CloudTrailAuditAlarms,
    EventBridgeAuditRules,
    RotationFailureRule,
    WatchedSecret,
    add_audit_alerts,
    audit_rules,
    database_hardening_rules,
    role_policy_rules,
)
from constructs.credentials_check import CredentialsCheck
from constructs.credentials_check_alarms import CredentialsCheckAlarms
from constructs.database import PostgresDatabase
from constructs.database_alarms import DatabaseAlarms
from constructs.database_dashboard import DatabaseDashboard
from constructs.exhaustion_alarms import ExhaustionAlarms
from constructs.log_shipping import CentralLogShipping
from constructs.rds_event_subscriptions import RdsEventSubscriptions


class MonitoringStack(cdk.Stack):
    """Exposes `alert_topic` (the `AlertTopic`), `topic`, `database_alarms`, `exhaustion_alarms`,
    `dashboard`, `audit`.

    `functions` maps a stable PascalCase id to each Lambda whose `Errors` are alarmed on;
    `secrets` are watched for deletion, policy changes and cancelled rotation (the master
    secret is always included: by ARN, and by the name prefix of an RDS-managed master secret).
    `secret_reader_roles` (and the managed `secret_reader_policies` attached to them) are watched for IAM
    policy changes; the Migration stack watches its own role.
    `credentials_check` gets its failure and not-running alarms and a dashboard row.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        database: PostgresDatabase,
        encryption_key: kms.IKey,
        functions: Mapping[str, lambda_.IFunction],
        secrets: Sequence[WatchedSecret] = (),
        secret_reader_roles: Sequence[iam.IRole] = (),
        secret_reader_policies: Sequence[iam.IManagedPolicy] = (),
        credentials_check: CredentialsCheck | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        alerting = config.alerting
        self.alert_topic = AlertTopic(
            self,
            "Alerts",
            display_name=f"RevenuePilot {config.name} database alerts",
            encryption_key=encryption_key,
            email_addresses=alerting.email_addresses,
            slack=alerting.slack,
            slack_channel_name=f"revenuepilot-{config.name}-database-alerts",
        )
        self.topic = self.alert_topic.topic

        RdsEventSubscriptions(
            self,
            "RdsEvents",
            topic=self.topic,
            instance=database.instance,
            parameter_group=database.parameter_group,
            instance_event_categories=alerting.instance_event_categories,
            parameter_group_event_categories=alerting.parameter_group_event_categories,
            security_group_event_categories=alerting.security_group_event_categories,
            snapshot_event_categories=alerting.snapshot_event_categories,
        )

        self._audit_alerts(
            config,
            database=database,
            encryption_key=encryption_key,
            secrets=secrets,
            secret_reader_roles=secret_reader_roles,
            secret_reader_policies=secret_reader_policies,
        )
        self._database_alarms(config, database=database, functions=functions)
        if credentials_check is not None:
            CredentialsCheckAlarms(
                self,
                "CredentialsCheckAlarms",
                check=credentials_check,
                topic=self.topic,
                dashboard=self.dashboard,
            )

        if alerting.central_log_destination_arn is not None:
            CentralLogShipping(
                self,
                "CentralLogShipping",
                log_groups=database.log_groups,
                destination_arn=alerting.central_log_destination_arn,
            )

    def _audit_alerts(
        self,
        config: EnvironmentConfig,
        *,
        database: PostgresDatabase,
        encryption_key: kms.IKey,
        secrets: Sequence[WatchedSecret],
        secret_reader_roles: Sequence[iam.IRole],
        secret_reader_policies: Sequence[iam.IManagedPolicy],
    ) -> None:
        """Sensitive API calls: CloudTrail metric filters when a trail log group is configured, else EventBridge."""
        alerting = config.alerting
        master = WatchedSecret(arn=database.master_secret_arn, name_prefix=RDS_MANAGED_SECRET_NAME_PREFIX)
        rules = audit_rules(encryption_key=encryption_key, secrets=[master, *secrets])
        rules += database_hardening_rules(backup_retention_days=config.database.backup_retention_days)
        if secret_reader_roles:
            rules += role_policy_rules(
                name="SecretReader",
                subject="a role that can read the application secret",
                roles=secret_reader_roles,
                policies=secret_reader_policies,
            )
        self.audit: CloudTrailAuditAlarms | EventBridgeAuditRules = add_audit_alerts(
            self,
            "Audit",
            cloudtrail_log_group_name=alerting.cloudtrail_log_group_name,
            rules=rules,
            topic=self.topic,
        )
        RotationFailureRule(self, "SecretRotationFailures", topic=self.topic)

    def _database_alarms(
        self,
        config: EnvironmentConfig,
        *,
        database: PostgresDatabase,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        """Metric alarms and, under their scope, the dashboard."""
        alerting = config.alerting
        self.database_alarms = DatabaseAlarms(
            self,
            "DatabaseAlarms",
            instance=database.instance,
            allocated_storage_gib=config.database.allocated_storage_gib,
            max_connections=config.max_connections,
            thresholds=alerting.thresholds,
            functions=functions,
            topic=self.topic,
        )
        self.exhaustion_alarms = ExhaustionAlarms(
            self,
            "ExhaustionAlarms",
            instance=database.instance,
            thresholds=alerting.thresholds,
            burstable_ebs=has_burstable_ebs(config.database.instance_class),
            topic=self.topic,
        )
        # Under the alarms' scope, where it has always been: its construct path (and logical id) is unchanged.
        self.dashboard = DatabaseDashboard(
            self.database_alarms,
            "Dashboard",
            dashboard_name=f"revenuepilot-{config.name}-database",
            instance=database.instance,
            allocated_storage_gib=config.database.allocated_storage_gib,
            period_seconds=alerting.thresholds.period_seconds,
            alarms=[*self.database_alarms.alarms.values(), *self.exhaustion_alarms.alarms.values()],
            functions=functions,
        )
