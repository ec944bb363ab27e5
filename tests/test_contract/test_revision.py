"""The revision grammar (contract/revision.py), in Python and as the JSONata the runbook evaluates."""

from __future__ import annotations

import json

import pytest
from jsonata import Jsonata

from contract.revision import InvalidRevisionError, check_revision, is_valid_revision, jsonata_revision_check

VALID = [
    "head", "heads", "base", "ae1027a6acf", "ae10", "0123456789abcdef0123456789abcdef01234567", "-1", "+2", "-999",
    "shoppingcart@head", "shoppingcart@base", "shoppingcart@ae1027a6acf", "shoppingcart@+2", "shoppingcart@-1",
    "ae1027a6acf@head", "branch_2@head",
]  # fmt: skip
INVALID = [
    "", "--help", "-h", "--sql", "-x", "-1x", "-0", "+0", "-1000", "--1", "head\n", "head ", " head", "HEAD",
    "Head", "ae1", "xyz1234", "ae1027a6acf; rm -rf /", "head;", "--tag=x", "@head", "branch@", "branch@heads",
    "a@b@head", "../x", "head -1", "a" * 65, "0" * 41, "-", "+", "heads\n", "$(id)",
]  # fmt: skip


@pytest.mark.parametrize("revision", VALID)
def test_valid_revisions(revision: str) -> None:
    assert is_valid_revision(revision)
    assert check_revision(revision) == revision


@pytest.mark.parametrize("revision", INVALID)
def test_invalid_revisions(revision: str) -> None:
    assert not is_valid_revision(revision)
    with pytest.raises(InvalidRevisionError, match="is not allowed: head, heads, base"):
        check_revision(revision)


@pytest.mark.parametrize("value", [None, 7, ["head"], {"revision": "head"}])
def test_non_strings_are_refused(value: object) -> None:
    assert not is_valid_revision(value)


@pytest.mark.parametrize("revision", [*VALID, *INVALID, None, 7, True])
def test_the_jsonata_check_agrees_with_python(revision: object) -> None:
    expression = f"($r := {json.dumps(revision)}; {jsonata_revision_check('$r')})"
    assert Jsonata(expression).evaluate(None) is is_valid_revision(revision)


@pytest.mark.parametrize(
    ("revision", "exact"),
    [
        ("ae1027a6acf0", True),
        ("0123456789abcdef0123456789abcdef01234567", True),
        ("ae1027a6acf", False),  # a prefix (11 digits): production looks records up by the full id
        ("head", False),
        ("heads", False),
        ("base", False),
        ("-1", False),
        ("+2", False),
        ("branch@ae1027a6acf0", False),
        ("AE1027A6ACF0", False),
        ("ae1027a6acf0\n", False),
        ("--help", False),
    ],
)
def test_the_exact_revision_rule(revision: str, exact: bool) -> None:
    from contract.revision import check_exact_revision, is_exact_revision

    assert is_exact_revision(revision) is exact
    if not exact:
        with pytest.raises(InvalidRevisionError, match="full Alembic revision id"):
            check_exact_revision(revision)
