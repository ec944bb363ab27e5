"""Database passwords from Secrets Manager's generator, restricted to URL-safe characters."""

from __future__ import annotations

import string
from typing import Any

PASSWORD_LENGTH = 40
# Everything in string.punctuation except "-_." plus space: a DATABASE_URL built with jq needs no escaping.
EXCLUDE_CHARACTERS = "".join(c for c in string.punctuation if c not in "-_.") + " "


def generate_password(secretsmanager: Any) -> str:
    """A fresh password from ``secretsmanager.get_random_password`` (a boto3 Secrets Manager client)."""
    response = secretsmanager.get_random_password(
        PasswordLength=PASSWORD_LENGTH,
        ExcludeCharacters=EXCLUDE_CHARACTERS,
        RequireEachIncludedType=True,
    )
    password = response["RandomPassword"]
    if not isinstance(password, str) or len(password) != PASSWORD_LENGTH:
        raise RuntimeError("Secrets Manager returned an unexpected random password")
    return password
