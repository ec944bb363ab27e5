"""Test processes talk to moto only: fake credentials, a fixed region, no profile or endpoint leaking in."""

from __future__ import annotations

import pytest


def use_fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, *, region: str) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
