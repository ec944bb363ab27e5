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
        # Before any construct asks for them (the VPC does): explicit AZs replace the context lookup.
        self._configured_zones = config.network.availability_zones
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        flow_log_key = EncryptionKey(
            self,
            "FlowLogKey",
            alias=f"alias/revenuepilot/{config.name}/network-logs",
            description=f"RevenuePilot {config.name}: VPC flow logs",
            users=KeyUsers(cloudwatch_logs=True),
        )
        self.network = DatabaseNetwork(self, "Network", config=config.network, flow_log_key=flow_log_key.key)

    @property
    def availability_zones(self) -> list[str]:
        """The configured `network.availability_zones`, else the `availability-zones` context lookup.

        With them, synthesis needs neither the lookup nor credentials (README: first deploy); the VPC
        uses the first `max_azs` of them, as it does with the lookup's list.
        """
        if self._configured_zones is not None:
            return list(self._configured_zones)
        return list(super().availability_zones)
