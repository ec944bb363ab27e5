"""A narrow wrapper over a boto3 Secrets Manager client: only the calls the database Lambdas make.

The client is passed in (``boto3.client("secretsmanager")`` in the handlers, a moto-backed one in tests).
Nothing here ever logs or formats a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract.auth import AWSCURRENT, AWSPENDING, SecretVersion, find_secret_version

__all__ = ["AWSCURRENT", "AWSPENDING", "SecretMetadata", "SecretStore"]


@dataclass(frozen=True, kw_only=True)
class SecretMetadata:
    rotation_enabled: bool
    version_stages: dict[str, list[str]]

    def version_with_stage(self, stage: str) -> str | None:
        for version_id, stages in self.version_stages.items():
            if stage in stages:
                return version_id
        return None


class SecretStore:
    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client

    def describe(self, secret_id: str) -> SecretMetadata:
        response = self._client.describe_secret(SecretId=secret_id)
        return SecretMetadata(
            rotation_enabled=bool(response.get("RotationEnabled")),
            version_stages={k: list(v) for k, v in response.get("VersionIdsToStages", {}).items()},
        )

    def get_string(self, secret_id: str, *, stage: str = AWSCURRENT, version_id: str | None = None) -> str:
        kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": stage}
        if version_id is not None:
            kwargs["VersionId"] = version_id
        response = self._client.get_secret_value(**kwargs)
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise ValueError(f"secret {secret_id} has no SecretString at stage {stage}")
        return value

    def find_version(self, secret_id: str, *, stage: str) -> SecretVersion | None:
        """The version that has ``stage`` (its id and text), ``None`` when no version has it."""
        return find_secret_version(self._client, secret_id, stage)

    def find_string(self, secret_id: str, *, stage: str, version_id: str | None = None) -> str | None:
        """Like ``get_string`` but ``None`` when that version/stage does not exist."""
        try:
            return self.get_string(secret_id, stage=stage, version_id=version_id)
        except self._client.exceptions.ResourceNotFoundException:
            return None

    def put_string(self, secret_id: str, value: str, *, stages: list[str], token: str | None = None) -> None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "SecretString": value, "VersionStages": stages}
        if token is not None:
            kwargs["ClientRequestToken"] = token
        self._client.put_secret_value(**kwargs)

    def move_stage(
        self, secret_id: str, stage: str, *, to_version: str | None, from_version: str | None
    ) -> None:
        kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": stage}
        if to_version is not None:
            kwargs["MoveToVersionId"] = to_version
        if from_version is not None:
            kwargs["RemoveFromVersionId"] = from_version
        self._client.update_secret_version_stage(**kwargs)
