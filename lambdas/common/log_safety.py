"""Keep the AWS SDK's debug logging away from secret values.

At DEBUG, botocore logs whole response bodies, including ``GetSecretValue``'s ``SecretString``. If the root
logger is ever turned up (Lambda advanced logging controls, a debugging session), that would put every
password in CloudWatch. The SDK loggers are therefore pinned at WARNING whatever the root level is.
"""

from __future__ import annotations

import logging

SDK_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3")


def quiet_sdk_loggers(level: int = logging.WARNING) -> None:
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.getEffectiveLevel() < level or sdk_logger.level < level:
            sdk_logger.setLevel(level)
