"""The check's CloudWatch metrics as an Embedded Metric Format (EMF) log line.

EMF needs no ``cloudwatch:PutMetricData`` permission and no ``monitoring`` VPC endpoint: CloudWatch Logs
extracts the metrics from the function's log stream. The document is written by hand (not Powertools
Metrics) so the dimensions are exactly ``Secret`` and do not depend on the service name, which the alarm
would otherwise have to repeat. Only names, counts and the secret's *name* go in: never a value.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from contract.names import (
    CREDENTIALS_CHECK_FAILED_METRIC as CHECK_FAILED_METRIC,
)
from contract.names import (
    CREDENTIALS_REPAIRED_METRIC as REPAIRED_METRIC,
)
from contract.names import (
    CREDENTIALS_SECRET_DIMENSION as SECRET_DIMENSION,
)

__all__ = [
    "CHECK_FAILED_METRIC",
    "REPAIRED_METRIC",
    "SECRET_DIMENSION",
    "emf_document",
    "emf_line",
    "secret_name",
]
# arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>
_SECRET_ARN = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


def secret_name(secret_id: str) -> str:
    """The secret's name from its full ARN (no API call, so it works while Secrets Manager does not)."""
    match = _SECRET_ARN.match(secret_id)
    return match["name"] if match else secret_id


def emf_document(
    *, namespace: str, secret_id: str, values: Mapping[str, int], timestamp_ms: int | None = None
) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[SECRET_DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ],
        },
        SECRET_DIMENSION: secret_name(secret_id),
        **values,
    }


def emf_line(*, namespace: str, secret_id: str, values: Mapping[str, int]) -> str:
    return json.dumps(
        emf_document(namespace=namespace, secret_id=secret_id, values=values), separators=(",", ":")
    )
