"""Network stack: the VPC and its flow-log key. Termination-protected: the database lives in it."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from config.schema import EnvironmentConfig
from constructs import Construct
from constructs.encryption import EncryptionKey, KeyUsers
from constructs.network import DatabaseNetwork


class NetworkStack(cdk.Stack):
    """Composes `DatabaseNetwork` with a CMK for its flow logs. Exposes `network`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        flow_log_key = EncryptionKey(
            self,
            "FlowLogKey",
            alias=f"alias/revenuepilot/{config.name}/network-logs",
            description=f"RevenuePilot {config.name}: VPC flow logs",
            users=KeyUsers(cloudwatch_logs=True),
        )
        self.network = DatabaseNetwork(self, "Network", config=config.network, flow_log_key=flow_log_key.key)
