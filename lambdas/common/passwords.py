"""Database passwords from Secrets Manager's generator, restricted to URL-safe characters."""

from __future__ import annotations

from typing import Any

from contract.names import PASSWORD_EXCLUDED_CHARACTERS

PASSWORD_LENGTH = 40


def generate_password(secretsmanager: Any) -> str:
    """A fresh password from ``secretsmanager.get_random_password`` (a boto3 Secrets Manager client)."""
    response = secretsmanager.get_random_password(
        PasswordLength=PASSWORD_LENGTH,
        ExcludeCharacters=PASSWORD_EXCLUDED_CHARACTERS,
        RequireEachIncludedType=True,
    )
    password = response["RandomPassword"]
    if not isinstance(password, str) or len(password) != PASSWORD_LENGTH:
        raise RuntimeError("Secrets Manager returned an unexpected random password")
    return password
