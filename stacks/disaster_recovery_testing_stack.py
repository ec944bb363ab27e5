"""DR restore-testing stack (issue 15, decision 0010): restore tests of the DR copies, in the DR region.

Deployed to `config.recovery.dr_region` as `<Stage>-DisasterRecoveryTesting`, only when
`recovery.dr_restore_test_schedule` is set. Stateless apart from its retained log groups (evidence, flow
logs) and their key; not termination-protected. It composes:

- a CMK of its own for its logs and its alert topic (the DR vault's key stays for the vault, the copies
  and the replicated application secret: KMS keys are regional, and the primary's cannot be used here);
- the isolated network the copies are restored into (constructs/disaster_recovery_network.py);
- the restore testing plan, selection, validation function, metrics, evidence and alarms
  (constructs/restore_testing.py with `dr_restore_tests`);
- an alert topic in the DR region with the environment's e-mail subscribers: CloudWatch alarms publish
  only to a topic in their own region;
- the AWS Backup alert rules (constructs/backup_alerts.py) again, in this region: EventBridge rules are
  regional, so the Recovery stack's rules never see a DR restore test that fails or is aborted, a DR
  validation that fails, or a change to the DR restore testing plan, the DR vault's lock or its recovery
  points. The rules for jobs that do not run here (backup, copy) match nothing and cost nothing.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms

from assets.lambda_bundle import RUNTIME as LAMBDA_RUNTIME
from assets.lambda_bundle import python_lambda_code
from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.alerting import PUBLISHING_SERVICES, AlertTopic
from constructs.backup_alerts import BackupAlertRules
from constructs.disaster_recovery_network import DisasterRecoveryNetwork
from constructs.encryption import EncryptionKey, KeyUsers
from constructs.restore_testing import RestoreTesting, dr_restore_tests


class DisasterRecoveryTestingStack(cdk.Stack):
    """Exposes `network`, `topic`, `restore_testing`, `backup_alerts`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        vault_arn: str,
        dr_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        recovery = config.recovery
        assert recovery.dr_availability_zones is not None, "validated with the DR schedule (config)"
        # Before any construct asks for them (the VPC does): the configured zones replace the context lookup.
        self._configured_zones = recovery.dr_availability_zones
        super().__init__(scope, construct_id, **kwargs)
        log_key = EncryptionKey(
            self,
            "LogKey",
            alias=f"alias/revenuepilot/{config.name}/dr-restore-testing",
            description=f"RevenuePilot {config.name}: DR restore-test evidence, flow logs and alerts",
            users=KeyUsers(cloudwatch_logs=True, publishing_services=PUBLISHING_SERVICES),
        ).key
        self.network = DisasterRecoveryNetwork(
            self,
            "Network",
            cidr=recovery.dr_network_cidr,
            availability_zones=recovery.dr_availability_zones,
            # The flow logs of a network that holds restored patient data: kept like the database's logs.
            flow_log_retention_days=config.database.log_retention_days,
            flow_log_key=log_key,
        )
        self.topic = AlertTopic(
            self,
            "Alerts",
            display_name=f"RevenuePilot {config.name} DR restore tests",
            encryption_key=log_key,
            email_addresses=config.alerting.email_addresses,
        ).topic
        self.backup_alerts = BackupAlertRules(self, "BackupAlerts", topic=self.topic)
        self.restore_testing = RestoreTesting(
            self,
            "RestoreTesting",
            config=config,
            tests=dr_restore_tests(
                config,
                vault_arn=vault_arn,
                subnet_group_name=self.network.subnet_group.subnet_group_name,
                security_group_id=self.network.security_group.security_group_id,
                dr_key=dr_key,
                partition=self.partition,
            ),
            network=self.network,
            database=self.network,
            encryption_key=log_key,
            topic=self.topic,
            code=python_lambda_code(function_package="restore_validation", region=self.region),
            runtime=LAMBDA_RUNTIME,
        )
        cdk.CfnOutput(
            self,
            "DrRestoreValidationFunctionName",
            value=self.restore_testing.validation.function.function_name,
            description="Validates restore tests of the DR copies (evidence in its log group)",
        )

    @property
    def availability_zones(self) -> list[str]:
        """`recovery.dr_availability_zones`: synthesis needs no lookup in the DR region."""
        return list(self._configured_zones)
