"""What Secrets Manager does around a rotation Lambda, applied to moto's in-memory backend.

moto only stages the empty AWSPENDING version (as RotateSecret does before invoking the function)
when it can invoke a rotation Lambda, which needs Docker. These helpers write that state into
moto's backend directly, so the four steps can be driven like Secrets Manager drives them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends


def _moto_secret(secret_arn: str, region: str) -> Any:
    return secretsmanager_backends[DEFAULT_ACCOUNT_ID][region].secrets[secret_arn]


def enable_rotation(secret_arn: str, *, region: str, days: int = 90) -> None:
    """What `AWS::SecretsManager::RotationSchedule` leaves on the secret."""
    secret = _moto_secret(secret_arn, region)
    secret.rotation_requested = True
    secret.rotation_enabled = True
    secret.rotation_lambda_arn = f"arn:aws:lambda:{region}:{DEFAULT_ACCOUNT_ID}:function:rotation"
    secret.auto_rotate_after_days = days


def stage_pending_version(secret_arn: str, *, region: str) -> str:
    """RotateSecret before it invokes the function: a new version labelled AWSPENDING, no value yet.

    Returns the ClientRequestToken the four steps are invoked with.
    """
    token = str(uuid.uuid4())
    secret = _moto_secret(secret_arn, region)
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {
        "createdate": int(time.time()),
        "version_id": token,
        "version_stages": ["AWSPENDING"],
    }
    return token


def keep_default_version_with_awscurrent(monkeypatch: Any) -> None:
    """Fix a moto gap: ``UpdateSecretVersionStage`` moving AWSCURRENT leaves moto's default version behind.

    A later ``PutSecretValue`` (stages ``AWSCURRENT``) then relabels that stale default version instead of
    the one AWSCURRENT is on, leaving two AWSCURRENT versions. Secrets Manager itself has exactly one.
    """
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> Any:
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].default_version_id = move_to_version_id
        return result

    monkeypatch.setattr(SecretsManagerBackend, "update_secret_version_stage", update_secret_version_stage)
