"""docs/compliance-map.md: every row names a test, every named test exists, and the README links it."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MAP = REPO_ROOT / "docs" / "compliance-map.md"
TEST_REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _rows() -> list[str]:
    return [
        line
        for line in MAP.read_text().splitlines()
        if line.startswith("| ") and not line.startswith(("| Safeguard", "| Control", "| ---"))
    ]


@cache
def _test_names(path: str) -> frozenset[str]:
    tree = ast.parse((REPO_ROOT / path).read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    )


def test_the_map_has_hipaa_and_security_hub_rows():
    rows = _rows()
    assert sum(row.startswith("| 164.") for row in rows) >= 15
    for service in ("RDS.", "KMS.", "SecretsManager.", "Lambda.", "ECS.", "EC2."):
        assert any(row.startswith(f"| {service}") for row in rows), service


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row.split("|")[1].strip()[:40])
def test_every_row_names_an_existing_test(row):
    references = TEST_REFERENCE.findall(row.split("|")[3])
    assert references, "the Test column names no tests/<path>.py::<test>"
    for path, name in references:
        assert (REPO_ROOT / path).is_file(), f"{path} does not exist"
        assert name in _test_names(path), f"{path} has no test {name}"


def test_readme_links_the_map():
    assert "(docs/compliance-map.md)" in (REPO_ROOT / "README.md").read_text()
